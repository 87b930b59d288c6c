//! What one virtual client does: its HTTP client and cookie jar (the browser
//! session), its DPoP key, its tokens, and each request of the scenarios.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, bail, Result};
use ephemera_client::DpopKey;
use ephemera_proto::PUSHED_CLIENT_URN;
use reqwest::redirect::Policy;
use reqwest::{RequestBuilder, Response, StatusCode};
use serde_json::Value;
use url::Url;

use crate::stats::Steps;
use crate::target::{dcr_body, pushed_registration, Kind, Target, REDIRECT};

/// The S256 pair of RFC 7636 Appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
/// Hops from the authorization endpoint to the redirect with the code.
const MAX_HOPS: usize = 8;

/// Which client a flow is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    /// The registered confidential client, `client_secret_basic`.
    App,
    /// Ephemera's pushed client: `client_id` is the URN, its metadata comes
    /// in the PAR's `client_registration`, and it authenticates with nothing
    /// but its DPoP key.
    Pushed,
}

pub struct Task {
    pub t: Arc<Target>,
    http: reqwest::Client,
    key: DpopKey,
    /// The last `DPoP-Nonce` the server sent, if it ever asks for one.
    nonce: Option<String>,
    pub steps: Steps,
    pub refresh_token: String,
    pub access_token: String,
    pub registration: Arc<str>,
    pub dcr: Arc<str>,
}

fn http_client() -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .redirect(Policy::none())
        .cookie_store(true)
        .pool_max_idle_per_host(4)
        .tcp_nodelay(true)
        .build()?)
}

async fn expect_status(res: Response, want: StatusCode, what: &str) -> Result<String> {
    let status = res.status();
    let body = res.text().await?;
    if status != want {
        let mut short = body;
        short.truncate(300);
        bail!("{what}: HTTP {status} (wanted {want}): {short}");
    }
    Ok(body)
}

fn str_field(v: &Value, name: &str) -> Result<String> {
    v[name]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("response has no `{name}`: {v}"))
}

fn csrf(html: &str) -> Result<String> {
    let marker = "name=\"csrf\" value=\"";
    let start = html
        .find(marker)
        .ok_or_else(|| anyhow!("page has no CSRF field"))?
        + marker.len();
    html[start..]
        .split('"')
        .next()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("unterminated CSRF field"))
}

fn is_redirect(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::FOUND | StatusCode::SEE_OTHER | StatusCode::TEMPORARY_REDIRECT
    )
}

fn location(res: &Response, base: &str) -> Result<Url> {
    let loc = res
        .headers()
        .get("location")
        .ok_or_else(|| anyhow!("redirect without a Location"))?
        .to_str()?;
    Ok(Url::parse(base)?.join(loc)?)
}

/// The registered client authenticates with HTTP Basic; the pushed one
/// with nothing but its DPoP key.
fn with_client(t: &Target, req: RequestBuilder, client: Client) -> RequestBuilder {
    match client {
        Client::App => req.basic_auth(&t.creds.app_id, Some(&t.creds.app_secret)),
        Client::Pushed => req,
    }
}

fn code_of(url: &Url) -> Result<String> {
    url.query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| anyhow!("no code in {url}"))
}

impl Task {
    pub fn new(t: Arc<Target>) -> Result<Self> {
        Ok(Self {
            t,
            http: http_client()?,
            key: DpopKey::generate(),
            nonce: None,
            steps: Steps::default(),
            refresh_token: String::new(),
            access_token: String::new(),
            registration: pushed_registration().into(),
            dcr: dcr_body().into(),
        })
    }

    /// Sends a request, with a DPoP proof for `url` when `dpop`; when the
    /// server answers `use_dpop_nonce` (RFC 9449 §8), sends it once more
    /// with the nonce it gave.
    async fn send(
        &mut self,
        url: &str,
        dpop: bool,
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Response> {
        for _ in 0..2 {
            let mut req = build(&self.http);
            if dpop {
                let proof = self.key.proof("POST", url, None, self.nonce.as_deref())?;
                req = req.header("DPoP", proof);
            }
            let res = req.send().await?;
            if let Some(n) = res
                .headers()
                .get("dpop-nonce")
                .and_then(|v| v.to_str().ok())
            {
                let fresh = self.nonce.as_deref() != Some(n);
                self.nonce = Some(n.to_owned());
                let asks = res.status() == StatusCode::BAD_REQUEST
                    || res.status() == StatusCode::UNAUTHORIZED;
                if dpop && fresh && asks {
                    continue;
                }
            }
            return Ok(res);
        }
        bail!("{url}: the server asked for a new DPoP nonce twice")
    }

    fn client_id(&self, client: Client) -> String {
        match client {
            Client::App => self.t.creds.app_id.clone(),
            Client::Pushed => PUSHED_CLIENT_URN.to_owned(),
        }
    }

    /// `GET /healthz`: `ok`, answered without the database.
    pub async fn healthz(&mut self) -> Result<()> {
        let url = format!("{}/healthz", self.t.base);
        let res = self.http.get(&url).send().await?;
        let body = expect_status(res, StatusCode::OK, "healthz").await?;
        if body != "ok" {
            bail!("healthz: not `ok`");
        }
        Ok(())
    }

    pub async fn discovery(&mut self) -> Result<()> {
        let res = self.http.get(&self.t.discovery).send().await?;
        let body = expect_status(res, StatusCode::OK, "discovery").await?;
        if !body.starts_with('{') {
            bail!("discovery: not a JSON object");
        }
        Ok(())
    }

    /// `POST` to the PAR endpoint; returns the `request_uri`.
    pub async fn par(&mut self, client: Client, dpop: bool) -> Result<String> {
        let began = Instant::now();
        let client_id = self.client_id(client);
        let mut form = vec![
            ("client_id", client_id.clone()),
            ("response_type", "code".to_owned()),
            ("redirect_uri", REDIRECT.to_owned()),
            ("state", "bench-state".to_owned()),
            ("scope", self.t.scope.clone()),
            ("code_challenge", CHALLENGE.to_owned()),
            ("code_challenge_method", "S256".to_owned()),
        ];
        if client == Client::Pushed {
            form.push(("client_registration", self.registration.to_string()));
        }
        let url = self.t.par.clone();
        let t = self.t.clone();
        let res = self
            .send(&url, dpop, |http| {
                with_client(&t, http.post(&url).form(&form), client)
            })
            .await?;
        let body = expect_status(res, StatusCode::CREATED, "PAR").await?;
        let uri = str_field(&serde_json::from_str(&body)?, "request_uri")?;
        self.steps.record("par", began);
        Ok(uri)
    }

    /// From a pushed request to its code: Ephemera's login page when the
    /// browser has no session yet and its consent page when consent is not
    /// remembered; the peer's interaction redirects, which complete on
    /// their own. Each kind of page is a step.
    pub async fn authorize(&mut self, client: Client, request_uri: &str) -> Result<String> {
        let client_id = self.client_id(client);
        let mut url = Url::parse(&self.t.authorize)?;
        url.query_pairs_mut()
            .append_pair("client_id", &client_id)
            .append_pair("request_uri", request_uri);
        let began = Instant::now();
        let mut logged_in = false;
        for _ in 0..MAX_HOPS {
            let res = self.http.get(url.as_str()).send().await?;
            if is_redirect(res.status()) {
                let next = location(&res, url.as_str())?;
                if next.as_str().starts_with(REDIRECT) {
                    self.steps.record("authorize", began);
                    return code_of(&next);
                }
                url = next;
                continue;
            }
            let html = expect_status(res, StatusCode::OK, "authorize").await?;
            self.steps.record("authorize", began);
            if self.t.kind != Kind::Ephemera {
                bail!("authorize: a page where a redirect was expected");
            }
            if html.contains("name=\"username\"") {
                if logged_in {
                    bail!("login page again after logging in");
                }
                self.login(&client_id, request_uri, &html).await?;
                logged_in = true;
                continue;
            }
            if !html.contains("name=\"decision\"") {
                bail!("authorize returned neither a login nor a consent page");
            }
            return self.consent(&client_id, request_uri, &html).await;
        }
        bail!("authorize: more than {MAX_HOPS} redirects")
    }

    async fn login(&mut self, client_id: &str, request_uri: &str, html: &str) -> Result<()> {
        let began = Instant::now();
        let res = self
            .http
            .post(self.t.url("/authorize/login"))
            .form(&[
                ("client_id", client_id),
                ("request_uri", request_uri),
                ("csrf", &csrf(html)?),
                ("username", &self.t.creds.user),
                ("password", &self.t.creds.password),
            ])
            .send()
            .await?;
        expect_status(res, StatusCode::SEE_OTHER, "login").await?;
        self.steps.record("login", began);
        Ok(())
    }

    async fn consent(&mut self, client_id: &str, request_uri: &str, html: &str) -> Result<String> {
        let began = Instant::now();
        let res = self
            .http
            .post(self.t.url("/authorize/consent"))
            .form(&[
                ("client_id", client_id),
                ("request_uri", request_uri),
                ("csrf", &csrf(html)?),
                ("decision", "approve"),
            ])
            .send()
            .await?;
        if res.status() != StatusCode::SEE_OTHER {
            expect_status(res, StatusCode::SEE_OTHER, "consent").await?;
            bail!("consent did not redirect");
        }
        let code = code_of(&location(&res, &self.t.base)?)?;
        self.steps.record("consent", began);
        Ok(code)
    }

    async fn token_request(
        &mut self,
        client: Client,
        dpop: bool,
        what: &'static str,
        form: Vec<(&'static str, String)>,
    ) -> Result<Value> {
        let began = Instant::now();
        let url = self.t.token.clone();
        let t = self.t.clone();
        let res = self
            .send(&url, dpop, |http| {
                with_client(&t, http.post(&url).form(&form), client)
            })
            .await?;
        let body = expect_status(res, StatusCode::OK, what).await?;
        let tokens: Value = serde_json::from_str(&body)?;
        let want = if dpop { "DPoP" } else { "Bearer" };
        let got = tokens["token_type"].as_str().unwrap_or_default();
        if !got.eq_ignore_ascii_case(want) {
            bail!("{what}: token_type {got:?}, wanted {want}");
        }
        self.access_token = str_field(&tokens, "access_token")?;
        self.steps.record(what, began);
        Ok(tokens)
    }

    /// The code for tokens; keeps both tokens.
    pub async fn exchange(&mut self, client: Client, dpop: bool, code: String) -> Result<()> {
        let client_id = self.client_id(client);
        let form = vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code),
            ("redirect_uri", REDIRECT.to_owned()),
            ("code_verifier", VERIFIER.to_owned()),
            ("client_id", client_id),
        ];
        let tokens = self.token_request(client, dpop, "token", form).await?;
        self.refresh_token = str_field(&tokens, "refresh_token")?;
        Ok(())
    }

    /// Rotates the refresh token this task holds.
    pub async fn refresh(&mut self, client: Client, dpop: bool) -> Result<()> {
        let client_id = self.client_id(client);
        let form = vec![
            ("grant_type", "refresh_token".to_owned()),
            ("refresh_token", std::mem::take(&mut self.refresh_token)),
            ("client_id", client_id),
        ];
        let tokens = self.token_request(client, dpop, "refresh", form).await?;
        self.refresh_token = str_field(&tokens, "refresh_token")?;
        Ok(())
    }

    /// Introspects the access token this task holds, as the resource server.
    pub async fn introspect(&mut self) -> Result<()> {
        let began = Instant::now();
        let res = self
            .http
            .post(&self.t.introspect)
            .basic_auth(&self.t.creds.rs_id, Some(&self.t.creds.rs_secret))
            .form(&[("token", self.access_token.as_str())])
            .send()
            .await?;
        let body: Value =
            serde_json::from_str(&expect_status(res, StatusCode::OK, "introspect").await?)?;
        if body["active"] != Value::Bool(true) {
            bail!("introspect: token not active: {body}");
        }
        self.steps.record("introspect", began);
        Ok(())
    }

    pub async fn client_credentials(&mut self) -> Result<()> {
        let res = self
            .http
            .post(&self.t.token)
            .basic_auth(&self.t.creds.rs_id, Some(&self.t.creds.rs_secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await?;
        let body: Value = serde_json::from_str(
            &expect_status(res, StatusCode::OK, "token (client_credentials)").await?,
        )?;
        str_field(&body, "access_token")?;
        Ok(())
    }

    pub async fn register(&mut self) -> Result<()> {
        let res = self
            .http
            .post(&self.t.register)
            .header("content-type", "application/json")
            .body(self.dcr.to_string())
            .send()
            .await?;
        let body: Value =
            serde_json::from_str(&expect_status(res, StatusCode::CREATED, "DCR").await?)?;
        str_field(&body, "client_id")?;
        Ok(())
    }

    /// The whole flow: PAR, authorization (with the task's session), the
    /// code for tokens, introspection of the access token, one refresh.
    pub async fn flow(&mut self, client: Client, dpop: bool) -> Result<()> {
        let request_uri = self.par(client, dpop).await?;
        let code = self.authorize(client, &request_uri).await?;
        self.exchange(client, dpop, code).await?;
        self.introspect().await?;
        self.refresh(client, dpop).await
    }
}

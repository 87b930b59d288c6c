//! A real server on port 0 with its own SQLite file, and the steps of a flow.

use std::sync::Arc;

use ephemera_proto::PUSHED_CLIENT_URN;
use ephemera_server::config::{Config, RawConfig};
use ephemera_server::model::Stats;
use ephemera_server::service::admin::{self, NewClient};
use ephemera_server::service::{Clock, Context};
use reqwest::redirect::Policy;
use serde_json::Value;
use tempfile::TempDir;
use url::Url;

pub const URN: &str = PUSHED_CLIENT_URN;
pub const REDIRECT: &str = "http://127.0.0.1:9999/cb";
pub const PASSWORD: &str = "correct horse battery";
/// The S256 pair of RFC 7636 Appendix B.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

pub struct TestApp {
    pub base: String,
    /// The operations listener (`metrics.listen`), when configured.
    pub operations_base: Option<String>,
    pub ctx: Context,
    pub config: Config,
    /// A client that follows no redirects, like an OAuth client's back channel.
    pub http: reqwest::Client,
    /// The server's certificate, when it speaks TLS.
    pub root: Option<reqwest::Certificate>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    _dir: TempDir,
}

/// A client that follows no redirects and, for a TLS server, trusts its certificate.
fn client_builder(root: Option<&reqwest::Certificate>) -> reqwest::ClientBuilder {
    let builder = reqwest::Client::builder().redirect(Policy::none());
    match root {
        Some(r) => builder.use_rustls_tls().add_root_certificate(r.clone()),
        None => builder,
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// A server whose configuration `adjust` may change first.
    pub async fn spawn_with(adjust: impl FnOnce(&mut RawConfig)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut raw = RawConfig {
            listen: addr.to_string(),
            database: format!("sqlite://{}", dir.path().join("test.db").display()),
            ..RawConfig::default()
        };
        raw.scopes.supported = vec!["read".into(), "write".into(), "admin".into()];
        raw.scopes.pushed = Some(vec!["read".into(), "write".into()]);
        adjust(&mut raw);
        let root = raw.tls.cert.as_ref().map(|path| {
            raw.issuer.get_or_insert_with(|| format!("https://{addr}"));
            reqwest::Certificate::from_pem(&std::fs::read(path).unwrap()).unwrap()
        });
        let config = Config::from_raw(raw).unwrap();
        let store = ephemera_server::open_store(&config).await.unwrap();
        let ctx = ephemera_server::context(&config, store, Arc::new(Clock::default()))
            .await
            .unwrap();
        // `metrics.listen` (port 0 in tests) is bound here, so the test
        // knows its port.
        let operations = match config.metrics.listen {
            Some(addr) => Some(tokio::net::TcpListener::bind(addr).await.unwrap()),
            None => None,
        };
        let operations_base = operations
            .as_ref()
            .map(|l| format!("http://{}", l.local_addr().unwrap()));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (serve_config, serve_ctx) = (config.clone(), ctx.clone());
        tokio::spawn(async move {
            ephemera_server::serve_on(&serve_config, serve_ctx, listener, operations, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        let app = Self {
            operations_base,
            base: config.issuer.clone(),
            ctx,
            config,
            http: client_builder(root.as_ref()).build().unwrap(),
            root,
            shutdown: Some(tx),
            _dir: dir,
        };
        admin::add_user(app.ctx.store.as_ref(), "alice", PASSWORD.into(), app.now())
            .await
            .unwrap();
        app
    }

    /// Tells the server to shut down (as SIGTERM does): it stops accepting
    /// and finishes the requests in flight.
    pub fn shut_down(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    pub fn now(&self) -> i64 {
        self.ctx.clock.now()
    }

    /// Moves the server's clock forward.
    pub fn advance(&self, seconds: i64) {
        self.ctx.clock.advance(seconds);
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn stats(&self) -> Stats {
        self.ctx.store.stats(self.now()).await.unwrap()
    }

    /// A browser: keeps cookies, follows no redirects (so tests see each one).
    pub fn browser(&self) -> reqwest::Client {
        client_builder(self.root.as_ref())
            .cookie_store(true)
            .build()
            .unwrap()
    }

    /// A back-channel client that presents `identity` in mutual TLS.
    pub fn with_certificate(&self, identity: reqwest::Identity) -> reqwest::Client {
        client_builder(self.root.as_ref())
            .identity(identity)
            .build()
            .unwrap()
    }

    pub async fn add_public_client(&self, id: &str, redirect_uris: &[&str]) {
        self.add_client(NewClient {
            client_id: id.into(),
            redirect_uris: redirect_uris.iter().map(|s| s.to_string()).collect(),
            ..NewClient::default()
        })
        .await;
    }

    /// A confidential client; returns its secret.
    pub async fn add_confidential_client(&self, id: &str, introspect: bool) -> String {
        let secret = format!("{id}-secret-0123456789abcdefghijklmnopqrstuvwxyz");
        self.add_client(NewClient {
            client_id: id.into(),
            redirect_uris: vec![REDIRECT.into()],
            confidential: true,
            secret: Some(secret.clone()),
            can_introspect: introspect,
            ..NewClient::default()
        })
        .await;
        secret
    }

    pub async fn add_client(&self, new: NewClient) {
        admin::add_client(self.ctx.store.as_ref(), &self.ctx.policy, new, self.now())
            .await
            .unwrap();
    }

    pub async fn post_form(&self, path: &str, params: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .form(params)
            .send()
            .await
            .unwrap()
    }

    /// A PAR of the pushed client with the usual parameters, `extra` added and
    /// any parameter named in `drop` left out.
    pub async fn push(
        &self,
        registration: Option<&str>,
        extra: &[(&str, &str)],
        drop: &[&str],
    ) -> reqwest::Response {
        let mut params: Vec<(&str, &str)> = vec![
            ("client_id", URN),
            ("response_type", "code"),
            ("redirect_uri", REDIRECT),
            ("state", "state-123"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ];
        if let Some(r) = registration {
            params.push(("client_registration", r));
        }
        params.retain(|(k, _)| !drop.contains(k) && !extra.iter().any(|(e, _)| e == k));
        params.extend_from_slice(extra);
        self.post_form("/par", &params).await
    }

    /// A PAR that must succeed; returns the request_uri.
    pub async fn push_ok(&self, registration: Option<&str>, extra: &[(&str, &str)]) -> String {
        let res = self.push(registration, extra, &[]).await;
        assert_eq!(res.status(), 201, "{:?}", res.text().await);
        let body: Value = res.json().await.unwrap();
        body["request_uri"].as_str().unwrap().to_owned()
    }

    pub fn authorize_url(&self, client_id: &str, request_uri: &str) -> String {
        let mut url = Url::parse(&self.url("/authorize")).unwrap();
        url.query_pairs_mut()
            .append_pair("client_id", client_id)
            .append_pair("request_uri", request_uri);
        url.to_string()
    }

    /// Logs `browser` in through the login form of `request_uri`.
    pub async fn login(&self, browser: &reqwest::Client, client_id: &str, request_uri: &str) {
        let page = browser
            .get(self.authorize_url(client_id, request_uri))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200);
        let html = page.text().await.unwrap();
        assert!(
            html.contains("name=\"username\""),
            "not a login page: {html}"
        );
        let res = browser
            .post(self.url("/authorize/login"))
            .form(&[
                ("client_id", client_id),
                ("request_uri", request_uri),
                ("csrf", &csrf(&html)),
                ("username", "alice"),
                ("password", PASSWORD),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303, "login failed");
    }

    /// The consent page of a logged-in `browser`.
    pub async fn consent_page(
        &self,
        browser: &reqwest::Client,
        client_id: &str,
        request_uri: &str,
    ) -> String {
        let res = browser
            .get(self.authorize_url(client_id, request_uri))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let html = res.text().await.unwrap();
        assert!(
            html.contains("name=\"decision\""),
            "not a consent page: {html}"
        );
        html
    }

    /// Submits the consent form; returns the redirect's Location.
    pub async fn decide(
        &self,
        browser: &reqwest::Client,
        client_id: &str,
        request_uri: &str,
        decision: &str,
    ) -> Url {
        let html = self.consent_page(browser, client_id, request_uri).await;
        let res = browser
            .post(self.url("/authorize/consent"))
            .form(&[
                ("client_id", client_id),
                ("request_uri", request_uri),
                ("csrf", &csrf(&html)),
                ("decision", decision),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303);
        location(&res)
    }

    /// Login, consent and the code, for a pushed request.
    pub async fn authorize(&self, client_id: &str, request_uri: &str) -> String {
        let browser = self.browser();
        self.login(&browser, client_id, request_uri).await;
        let to = self
            .decide(&browser, client_id, request_uri, "approve")
            .await;
        query(&to, "code").unwrap()
    }

    /// The whole pushed flow up to the token response.
    pub async fn pushed_tokens(&self, registration: Option<&str>) -> Value {
        let request_uri = self.push_ok(registration, &[]).await;
        let code = self.authorize(URN, &request_uri).await;
        let res = self.redeem(&code, &[]).await;
        assert_eq!(res.status(), 200);
        res.json().await.unwrap()
    }

    /// The pushed client's token request for `code`, with `extra` replacing
    /// the usual parameters.
    pub async fn redeem(&self, code: &str, extra: &[(&str, &str)]) -> reqwest::Response {
        let mut params: Vec<(&str, &str)> = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("client_id", URN),
        ];
        params.retain(|(k, _)| !extra.iter().any(|(e, _)| e == k));
        params.extend(extra.iter().filter(|(_, v)| !v.is_empty()));
        self.post_form("/token", &params).await
    }

    /// Introspects `token` as a resource server with the introspect right.
    pub async fn introspect(&self, token: &str) -> Value {
        if self.ctx.store.find_client("rs").await.unwrap().is_none() {
            self.add_client(NewClient {
                client_id: "rs".into(),
                confidential: true,
                secret: Some(RS_SECRET.into()),
                can_introspect: true,
                ..NewClient::default()
            })
            .await;
        }
        let res = self
            .http
            .post(self.url("/introspect"))
            .basic_auth("rs", Some(RS_SECRET))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        res.json().await.unwrap()
    }
}

pub const RS_SECRET: &str = "resource-server-secret-0123456789abcdef";

/// The registration most tests push.
/// Gives alice's record a name and an email (the claims ID Tokens and
/// `/userinfo` release); returns her user id (the `sub` they carry).
pub async fn alice_with_claims(app: &TestApp) -> String {
    let alice = app
        .ctx
        .store
        .find_user_by_name("alice")
        .await
        .unwrap()
        .unwrap();
    let claims = ephemera_server::model::UserClaims {
        name: Some("Alice Liddell".into()),
        given_name: Some("Alice".into()),
        email: Some("alice@example.com".into()),
        email_verified: Some(true),
        ..Default::default()
    };
    assert!(app
        .ctx
        .store
        .update_user_claims(&alice.id, &claims)
        .await
        .unwrap());
    alice.id
}

pub fn registration() -> String {
    serde_json::json!({
        "client_name": "Test Agent",
        "redirect_uris": [REDIRECT],
        "grant_types": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": "none",
        "client_uri": "https://agent.example/",
        "software_id": "test-agent",
    })
    .to_string()
}

pub fn csrf(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).expect("page has a CSRF field") + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

pub fn location(res: &reqwest::Response) -> Url {
    let loc = res.headers()["location"].to_str().unwrap();
    Url::parse(loc).unwrap()
}

pub fn query(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Asserts an RFC 6749 §5.2 error body and returns its description.
pub async fn assert_error(res: reqwest::Response, status: u16, error: &str) -> String {
    assert_eq!(res.status(), status, "status");
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], error, "{body}");
    let description = body["error_description"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        !description.is_empty(),
        "error_description must help: {body}"
    );
    description
}

/// Asserts an HTML error page (no redirect to the client).
pub async fn assert_error_page(res: reqwest::Response, error: &str) -> String {
    assert_eq!(res.status(), 400);
    assert!(res.headers().get("location").is_none());
    let html = res.text().await.unwrap();
    assert!(html.contains(&format!("id=\"error\">{error}<")), "{html}");
    html
}

/// A browser signed in on the account page as `username`: it and the page.
pub async fn sign_in(app: &TestApp, username: &str, password: &str) -> (reqwest::Client, String) {
    let browser = app.browser();
    let page = browser.get(app.url("/account")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("action=\"/account/login\""), "{html}");
    let res = browser
        .post(app.url("/account/login"))
        .form(&[
            ("csrf", csrf(&html).as_str()),
            ("username", username),
            ("password", password),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "{:?}", res.text().await);
    assert_eq!(location(&res).path(), "/account");
    let page = browser.get(app.url("/account")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    (browser, page.text().await.unwrap())
}

/// The `<li>` of `grant_id` on the account page.
pub fn entry<'a>(page: &'a str, grant_id: &str) -> &'a str {
    let start = page
        .find(&format!("data-grant-id=\"{grant_id}\""))
        .unwrap_or_else(|| panic!("{grant_id} is not listed: {page}"));
    let end = page[start..].find("</li>").unwrap();
    &page[start..start + end]
}

/// An https server on 127.0.0.1 with a self-signed certificate for that
/// address, serving until it is dropped: where tests host metadata
/// documents and federation statements.
pub struct HttpsServer {
    /// `https://127.0.0.1:PORT`.
    pub base: String,
    /// Its certificate (PEM), for the server under test to trust.
    pub cert_path: std::path::PathBuf,
    _dir: TempDir,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl HttpsServer {
    /// Serves the router `routes` builds, given the base URL first.
    pub async fn start(routes: impl FnOnce(&str) -> axum::Router) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
        let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert_path, ck.cert.pem()).unwrap();
        std::fs::write(&key_path, ck.key_pair.serialize_pem()).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("https://{}", listener.local_addr().unwrap());
        let config = ephemera_server::http::tls::server_config(&cert_path, &key_path).unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(ephemera_server::http::tls::serve(
            listener,
            config,
            routes(&base),
            async {
                let _ = stopped.await;
            },
        ));
        Self {
            base,
            cert_path,
            _dir: dir,
            _stop: stop,
        }
    }
}

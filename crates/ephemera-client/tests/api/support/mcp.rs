//! A fake MCP deployment on one port: a protected resource (`/mcp`, and
//! `/mcp/admin` needing the `admin` scope) with its RFC 9728 metadata, and
//! an authorization server whose issuer may have a path, whose metadata
//! sits at one of the well-known URIs MCP tries, and which may lack PAR,
//! pushed registration, metadata documents or Dynamic Client Registration.
//! The tests play the user with [`McpFake::approve`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use ephemera_client::{PendingAuthorization, Url};
use serde_json::{json, Value};
use tokio::net::TcpListener;

/// Where the authorization server's metadata is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataAt {
    /// `/.well-known/oauth-authorization-server<path>` (RFC 8414).
    OAuth,
    /// `/.well-known/openid-configuration<path>`.
    OpenIdInserted,
    /// `<path>/.well-known/openid-configuration`.
    OpenIdAppended,
}

/// What the fake deployment offers.
#[derive(Debug, Clone)]
pub struct McpOptions {
    /// The issuer's path (`""` or `"/tenant"`).
    pub issuer_path: &'static str,
    pub metadata_at: MetadataAt,
    /// The issuer the metadata names, when not its own.
    pub claimed_issuer: Option<String>,
    pub par: bool,
    pub pushed: bool,
    pub documents: bool,
    pub registration: bool,
    pub pkce: bool,
    pub iss_supported: bool,
    /// The `iss` the redirect carries, when not the issuer (`Some("")`: none).
    pub redirect_iss: Option<String>,
    /// The 401 names the metadata URL (`resource_metadata`).
    pub names_metadata: bool,
    /// The 401's `scope`.
    pub challenge_scope: Option<&'static str>,
    /// The `resource` of the metadata, when not `<base>/mcp`.
    pub claimed_resource: Option<String>,
}

impl Default for McpOptions {
    fn default() -> Self {
        Self {
            issuer_path: "",
            metadata_at: MetadataAt::OAuth,
            claimed_issuer: None,
            par: true,
            pushed: true,
            documents: false,
            registration: true,
            pkce: true,
            iss_supported: true,
            redirect_iss: None,
            names_metadata: true,
            challenge_scope: Some("read"),
            claimed_resource: None,
        }
    }
}

/// An authorization request as the server got it, pushed or in the URL.
#[derive(Debug, Clone, Default)]
pub struct Asked {
    pub params: Vec<(String, String)>,
}

impl Asked {
    pub fn get(&self, name: &str) -> Vec<&str> {
        self.params
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn one(&self, name: &str) -> Option<&str> {
        match self.get(name).as_slice() {
            [value] => Some(value),
            _ => None,
        }
    }
}

#[derive(Default)]
struct Inner {
    /// Every GET path, in order.
    gets: Vec<String>,
    registrations: Vec<Value>,
    pushed: HashMap<String, Asked>,
    authorizations: Vec<Asked>,
    codes: HashMap<String, Asked>,
    token_requests: Vec<Asked>,
    /// Access token -> its scope.
    tokens: HashMap<String, String>,
    counter: u64,
}

#[derive(Clone)]
pub struct McpFake {
    pub base: String,
    pub issuer: String,
    /// `<base>/mcp`, the resource identifier.
    pub resource: String,
    options: McpOptions,
    inner: Arc<Mutex<Inner>>,
}

impl McpFake {
    pub async fn start(options: McpOptions) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let issuer = format!("{base}{}", options.issuer_path);
        let path = options.issuer_path;
        let metadata_path = match options.metadata_at {
            MetadataAt::OAuth => format!("/.well-known/oauth-authorization-server{path}"),
            MetadataAt::OpenIdInserted => format!("/.well-known/openid-configuration{path}"),
            MetadataAt::OpenIdAppended => format!("{path}/.well-known/openid-configuration"),
        };
        let fake = Self {
            resource: format!("{base}/mcp"),
            base,
            issuer,
            options,
            inner: Arc::default(),
        };
        let app = Router::new()
            .route("/mcp", get(resource))
            .route("/mcp/admin", get(resource))
            .route("/.well-known/oauth-protected-resource/mcp", get(prm))
            .route(&metadata_path, get(metadata))
            .route(&format!("{path}/register"), post(register))
            .route(&format!("{path}/par"), post(par))
            .route(&format!("{path}/token"), post(token))
            .fallback(not_found)
            .with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        fake
    }

    /// Every GET the fake answered, by path, in order.
    pub fn gets(&self) -> Vec<String> {
        self.inner.lock().unwrap().gets.clone()
    }

    pub fn registrations(&self) -> Vec<Value> {
        self.inner.lock().unwrap().registrations.clone()
    }

    pub fn authorizations(&self) -> Vec<Asked> {
        self.inner.lock().unwrap().authorizations.clone()
    }

    pub fn token_requests(&self) -> Vec<Asked> {
        self.inner.lock().unwrap().token_requests.clone()
    }

    /// Plays the user approving `pending`: the request is read from the
    /// authorization URL (or the PAR it names), a code issued, and the
    /// redirect the browser would follow returned.
    pub fn approve(&self, pending: &PendingAuthorization) -> String {
        let url = &pending.authorization_url;
        assert_eq!(
            url.as_str().split('?').next().unwrap(),
            format!("{}/authorize", self.issuer)
        );
        let query = Asked {
            params: url.query_pairs().into_owned().collect(),
        };
        let mut inner = self.inner.lock().unwrap();
        let asked = match query.one("request_uri") {
            Some(request_uri) => inner.pushed.get(request_uri).cloned().unwrap(),
            None => query,
        };
        inner.authorizations.push(asked.clone());
        inner.counter += 1;
        let code = format!("code-{}", inner.counter);
        inner.codes.insert(code.clone(), asked.clone());
        let mut redirect = Url::parse(asked.one("redirect_uri").unwrap()).unwrap();
        {
            let mut pairs = redirect.query_pairs_mut();
            pairs.append_pair("code", &code);
            pairs.append_pair("state", asked.one("state").unwrap());
            match self.options.redirect_iss.as_deref() {
                None => {
                    pairs.append_pair("iss", &self.issuer);
                }
                Some("") => {}
                Some(other) => {
                    pairs.append_pair("iss", other);
                }
            }
        }
        redirect.to_string()
    }
}

fn record_get(fake: &McpFake, uri: &Uri) {
    fake.inner.lock().unwrap().gets.push(uri.path().to_owned());
}

async fn not_found(State(fake): State<McpFake>, uri: Uri) -> StatusCode {
    record_get(&fake, &uri);
    StatusCode::NOT_FOUND
}

fn bearer_challenge(fake: &McpFake, params: &[(&str, &str)]) -> String {
    let mut params: Vec<String> = params.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    if fake.options.names_metadata {
        params.push(format!(
            "resource_metadata=\"{}/.well-known/oauth-protected-resource/mcp\"",
            fake.base
        ));
    }
    format!("Bearer realm=\"mcp\", {}", params.join(", "))
}

/// `/mcp` needs `read`, `/mcp/admin` needs `admin` too: 401 without a
/// known token, 403 `insufficient_scope` without the scope.
async fn resource(State(fake): State<McpFake>, uri: Uri, headers: HeaderMap) -> Response {
    record_get(&fake, &uri);
    let needed = if uri.path() == "/mcp/admin" {
        "admin"
    } else {
        "read"
    };
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let scope = token.and_then(|t| fake.inner.lock().unwrap().tokens.get(&t).cloned());
    match scope {
        None => {
            let mut params = Vec::new();
            if let Some(scope) = fake.options.challenge_scope {
                params.push(("scope", scope));
            }
            let challenge = bearer_challenge(&fake, &params);
            (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, challenge)],
            )
                .into_response()
        }
        Some(scope) if !scope.split(' ').any(|s| s == needed) => {
            let challenge =
                bearer_challenge(&fake, &[("error", "insufficient_scope"), ("scope", needed)]);
            (
                StatusCode::FORBIDDEN,
                [(header::WWW_AUTHENTICATE, challenge)],
            )
                .into_response()
        }
        Some(scope) => Json(json!({"scope": scope})).into_response(),
    }
}

async fn prm(State(fake): State<McpFake>, uri: Uri) -> Json<Value> {
    record_get(&fake, &uri);
    Json(json!({
        "resource": fake.options.claimed_resource.clone().unwrap_or_else(|| fake.resource.clone()),
        "authorization_servers": [fake.issuer],
        "scopes_supported": ["read", "admin"],
    }))
}

async fn metadata(State(fake): State<McpFake>, uri: Uri) -> Json<Value> {
    record_get(&fake, &uri);
    let issuer = &fake.issuer;
    let o = &fake.options;
    let mut metadata = json!({
        "issuer": o.claimed_issuer.clone().unwrap_or_else(|| issuer.clone()),
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "response_types_supported": ["code"],
        "authorization_response_iss_parameter_supported": o.iss_supported,
        "pushed_client_registration_supported": o.pushed,
        "client_id_metadata_document_supported": o.documents,
    });
    if o.pkce {
        metadata["code_challenge_methods_supported"] = json!(["S256"]);
    }
    if o.par {
        metadata["pushed_authorization_request_endpoint"] = json!(format!("{issuer}/par"));
    }
    if o.registration {
        metadata["registration_endpoint"] = json!(format!("{issuer}/register"));
    }
    Json(metadata)
}

async fn register(State(fake): State<McpFake>, Json(metadata): Json<Value>) -> Response {
    let mut inner = fake.inner.lock().unwrap();
    inner.registrations.push(metadata.clone());
    inner.counter += 1;
    let mut information = metadata;
    information["client_id"] = json!(format!("dyn-{}", inner.counter));
    (StatusCode::CREATED, Json(information)).into_response()
}

fn form(body: &str) -> Asked {
    Asked {
        params: form_urlencoded::parse(body.as_bytes())
            .into_owned()
            .collect(),
    }
}

fn error(code: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": code}))).into_response()
}

async fn par(State(fake): State<McpFake>, body: String) -> Response {
    let asked = form(&body);
    let mut inner = fake.inner.lock().unwrap();
    inner.counter += 1;
    let request_uri = format!("urn:ietf:params:oauth:request_uri:r{}", inner.counter);
    inner.pushed.insert(request_uri.clone(), asked);
    (
        StatusCode::CREATED,
        Json(json!({"request_uri": request_uri, "expires_in": 60})),
    )
        .into_response()
}

/// The authorization_code grant, checking PKCE, `redirect_uri`,
/// `client_id` and that `resource` is the one asked for.
async fn token(State(fake): State<McpFake>, body: String) -> Response {
    let request = form(&body);
    let mut inner = fake.inner.lock().unwrap();
    inner.token_requests.push(request.clone());
    let Some(asked) = request.one("code").and_then(|c| inner.codes.remove(c)) else {
        return error("invalid_grant");
    };
    let verifier = request.one("code_verifier").unwrap_or_default();
    if ephemera_proto::pkce::s256(verifier) != asked.one("code_challenge").unwrap_or_default()
        || request.get("redirect_uri") != asked.get("redirect_uri")
        || request.get("client_id") != asked.get("client_id")
    {
        return error("invalid_grant");
    }
    if request.get("resource") != asked.get("resource") {
        return error("invalid_target");
    }
    inner.counter += 1;
    let access_token = format!("at-{}", inner.counter);
    let scope = asked.one("scope").unwrap_or("read").to_owned();
    inner.tokens.insert(access_token.clone(), scope.clone());
    Json(json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": 3600,
        "scope": scope,
    }))
    .into_response()
}

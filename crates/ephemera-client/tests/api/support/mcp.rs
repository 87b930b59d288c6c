//! A fake MCP deployment on one port: a protected resource (`/mcp`, and
//! `/mcp/admin` needing the `admin` scope) with its RFC 9728 metadata, and
//! an authorization server whose issuer may have a path, whose metadata
//! sits at one of the well-known URIs MCP tries, and which may lack PAR,
//! pushed registration, metadata documents or Dynamic Client Registration.
//! The tests play the user with [`McpFake::approve`], or let the fake's
//! `/authorize` approve by itself (a redirect to `/approved`, which
//! redirects back with the code). `/mcp` also speaks MCP's Streamable HTTP
//! on POST (`initialize`, `tools/list` answered as an event stream,
//! `tools/call`), behind the same 401 and 403.

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
    /// Every JSON-RPC message POSTed to `/mcp`, with its `Mcp-Session-Id`
    /// and `MCP-Protocol-Version` headers.
    mcp: Vec<(Value, Option<String>, Option<String>)>,
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
            .route("/mcp", get(resource).post(mcp))
            .route("/mcp/admin", get(resource).post(mcp))
            .route(&format!("{path}/authorize"), get(authorize))
            .route(&format!("{path}/approved"), get(approved))
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

    /// Every MCP message POSTed, with its session and version headers.
    pub fn mcp_messages(&self) -> Vec<(Value, Option<String>, Option<String>)> {
        self.inner.lock().unwrap().mcp.clone()
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
        self.approve_url(url)
    }

    fn approve_url(&self, url: &Url) -> String {
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

/// Approves without a person: a redirect to `/approved` with the same query.
async fn authorize(State(fake): State<McpFake>, uri: Uri) -> Response {
    record_get(&fake, &uri);
    let to = format!(
        "{}/approved?{}",
        fake.options.issuer_path,
        uri.query().unwrap_or_default()
    );
    (StatusCode::FOUND, [(header::LOCATION, to)]).into_response()
}

/// The approval [`McpFake::approve`] gives, as a redirect back.
async fn approved(State(fake): State<McpFake>, uri: Uri) -> Response {
    record_get(&fake, &uri);
    let url = Url::parse(&format!("{}{uri}", fake.base)).unwrap();
    let redirect = fake.approve_url(&url);
    (StatusCode::SEE_OTHER, [(header::LOCATION, redirect)]).into_response()
}

/// MCP over Streamable HTTP, behind [`resource`]'s 401 and 403:
/// `initialize` (a JSON answer assigning a session), notifications (202),
/// `tools/list` (an event stream with a notification before the answer),
/// `tools/call` of `echo` (JSON), anything else a JSON-RPC error.
async fn mcp(State(fake): State<McpFake>, uri: Uri, headers: HeaderMap, body: String) -> Response {
    let message: Value = serde_json::from_str(&body).unwrap();
    let header_of = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    fake.inner.lock().unwrap().mcp.push((
        message.clone(),
        header_of("mcp-session-id"),
        header_of("mcp-protocol-version"),
    ));
    if let Err(refused) = granted(&fake, &uri, &headers) {
        return refused;
    }
    let id = message["id"].clone();
    let answer = |result: Value| json!({"jsonrpc": "2.0", "id": id, "result": result});
    match message["method"].as_str().unwrap_or_default() {
        "initialize" => (
            [("mcp-session-id", "session-1")],
            Json(answer(json!({
                "protocolVersion": message["params"]["protocolVersion"],
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "fake", "version": "1"},
            }))),
        )
            .into_response(),
        method if method.starts_with("notifications/") => StatusCode::ACCEPTED.into_response(),
        "tools/list" => {
            let progress = json!({"jsonrpc": "2.0", "method": "notifications/message",
                "params": {"level": "info", "data": "listing"}});
            let tools =
                answer(json!({"tools": [{"name": "echo", "inputSchema": {"type": "object"}}]}));
            (
                [(header::CONTENT_TYPE, "text/event-stream")],
                format!("event: message\ndata: {progress}\n\nevent: message\ndata: {tools}\n\n"),
            )
                .into_response()
        }
        "tools/call" => Json(answer(json!({
            "content": [{"type": "text", "text": message["params"]["arguments"]["text"]}],
        })))
        .into_response(),
        _ => Json(json!({"jsonrpc": "2.0", "id": id,
            "error": {"code": -32601, "message": "Method not found"}}))
        .into_response(),
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
    match granted(&fake, &uri, &headers) {
        Ok(scope) => Json(json!({"scope": scope})).into_response(),
        Err(refused) => refused,
    }
}

/// The scope of the request's bearer token, or the 401 or 403 refusing it.
fn granted(fake: &McpFake, uri: &Uri, headers: &HeaderMap) -> Result<String, Response> {
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
            let challenge = bearer_challenge(fake, &params);
            Err((
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, challenge)],
            )
                .into_response())
        }
        Some(scope) if !scope.split(' ').any(|s| s == needed) => {
            let challenge =
                bearer_challenge(fake, &[("error", "insufficient_scope"), ("scope", needed)]);
            Err((
                StatusCode::FORBIDDEN,
                [(header::WWW_AUTHENTICATE, challenge)],
            )
                .into_response())
        }
        Some(scope) => Ok(scope),
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

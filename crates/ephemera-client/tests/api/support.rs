use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use ephemera_client::{AuthorizationServer, PendingAuthorization};
use serde_json::{json, Value};

pub const RS_BASIC: &str = "Basic cnM6cnMtc2VjcmV0"; // rs:rs-secret
pub const SVC_ID: &str = "svc";
pub const SVC_SECRET: &str = "s3cret";

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub path: &'static str,
    pub form: Vec<(String, String)>,
    pub authorization: Option<String>,
}

impl Recorded {
    pub fn get(&self, name: &str) -> Vec<&str> {
        self.form
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn one(&self, name: &str) -> &str {
        let values = self.get(name);
        assert_eq!(values.len(), 1, "{name} in {:?}", self.form);
        values[0]
    }
}

#[derive(Default)]
struct Inner {
    requests: Vec<Recorded>,
    pushed: HashMap<String, Recorded>,
    codes: HashMap<String, Recorded>,
    refresh_tokens: HashSet<String>,
    counter: u64,
}

/// A fake authorization server: enough of PAR, token, revocation and
/// introspection to drive the client, checking PKCE for real.
#[derive(Clone)]
pub struct FakeServer {
    /// Where the fake listens.
    pub base: String,
    /// The issuer its metadata names (its own base unless told otherwise).
    pub issuer: String,
    inner: Arc<Mutex<Inner>>,
}

impl FakeServer {
    pub async fn start() -> Self {
        Self::start_claiming(None).await
    }

    /// A fake whose metadata names `issuer` instead of its own address.
    pub async fn start_claiming(issuer: Option<&str>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let base = format!("http://{address}");
        let fake = Self {
            issuer: issuer.map_or_else(|| base.clone(), str::to_owned),
            base,
            inner: Arc::default(),
        };
        let app = Router::new()
            .route("/.well-known/oauth-authorization-server", get(discovery))
            .route("/par", post(par))
            .route("/token", post(token))
            .route("/revoke", post(revoke))
            .route("/introspect", post(introspect))
            .with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        fake
    }

    pub async fn client(&self) -> AuthorizationServer {
        AuthorizationServer::discover(&self.issuer).await.unwrap()
    }

    pub fn requests(&self, path: &str) -> Vec<Recorded> {
        let inner = self.inner.lock().unwrap();
        inner
            .requests
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    /// Plays the user approving the request: issues a code and returns the
    /// redirect the browser would follow.
    pub fn approve(&self, pending: &PendingAuthorization) -> String {
        let mut inner = self.inner.lock().unwrap();
        let par = inner.pushed.get(&pending.request_uri).cloned().unwrap();
        inner.counter += 1;
        let code = format!("code-{}", inner.counter);
        inner.codes.insert(code.clone(), par.clone());
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("code", &code)
            .append_pair("state", par.one("state"))
            .append_pair("iss", &self.issuer)
            .finish();
        format!("{}?{query}", par.one("redirect_uri"))
    }
}

async fn discovery(State(fake): State<FakeServer>) -> Json<Value> {
    let base = &fake.base;
    Json(json!({
        "issuer": fake.issuer,
        "authorization_endpoint": format!("{base}/authorize"),
        "token_endpoint": format!("{base}/token"),
        "pushed_authorization_request_endpoint": format!("{base}/par"),
        "introspection_endpoint": format!("{base}/introspect"),
        "revocation_endpoint": format!("{base}/revoke"),
        "require_pushed_authorization_requests": true,
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": true,
        "pushed_client_registration_supported": true,
    }))
}

fn record(fake: &FakeServer, path: &'static str, headers: &HeaderMap, body: &str) -> Recorded {
    let recorded = Recorded {
        path,
        form: form_urlencoded::parse(body.as_bytes())
            .into_owned()
            .collect(),
        authorization: headers
            .get(header::AUTHORIZATION)
            .map(|v| v.to_str().unwrap().to_owned()),
    };
    fake.inner.lock().unwrap().requests.push(recorded.clone());
    recorded
}

fn error(status: StatusCode, code: &str) -> Response {
    (
        status,
        Json(json!({"error": code, "error_description": "from the fake"})),
    )
        .into_response()
}

async fn par(State(fake): State<FakeServer>, headers: HeaderMap, body: String) -> Response {
    let request = record(&fake, "/par", &headers, &body);
    if request.get("code_challenge_method") != ["S256"] || request.get("state").is_empty() {
        return error(StatusCode::BAD_REQUEST, "invalid_request");
    }
    let mut inner = fake.inner.lock().unwrap();
    inner.counter += 1;
    let request_uri = format!("urn:ietf:params:oauth:request_uri:r{}", inner.counter);
    inner.pushed.insert(request_uri.clone(), request);
    (
        StatusCode::CREATED,
        Json(json!({"request_uri": request_uri, "expires_in": 60})),
    )
        .into_response()
}

fn tokens(inner: &mut Inner, scope: Option<&str>) -> Response {
    inner.counter += 1;
    let refresh_token = format!("rt-{}", inner.counter);
    inner.refresh_tokens.insert(refresh_token.clone());
    Json(json!({
        "access_token": format!("at-{}", inner.counter),
        "token_type": "Bearer",
        "expires_in": 3600,
        "refresh_token": refresh_token,
        "scope": scope,
    }))
    .into_response()
}

fn is_svc(request: &Recorded) -> bool {
    let basic = ephemera_client::identity::basic_authorization(SVC_ID, SVC_SECRET);
    request.authorization.as_deref() == Some(basic.as_str())
        || (request.get("client_id") == [SVC_ID] && request.get("client_secret") == [SVC_SECRET])
}

async fn token(State(fake): State<FakeServer>, headers: HeaderMap, body: String) -> Response {
    let request = record(&fake, "/token", &headers, &body);
    let mut inner = fake.inner.lock().unwrap();
    match request.get("grant_type").as_slice() {
        ["authorization_code"] => {
            let Some(par) = inner.codes.remove(request.one("code")) else {
                return error(StatusCode::BAD_REQUEST, "invalid_grant");
            };
            let pkce_ok = ephemera_proto::pkce::s256(request.one("code_verifier"))
                == par.one("code_challenge");
            if !pkce_ok
                || request.get("redirect_uri") != par.get("redirect_uri")
                || request.get("client_id") != par.get("client_id")
            {
                return error(StatusCode::BAD_REQUEST, "invalid_grant");
            }
            let scope = par.get("scope").first().map(|s| s.to_string());
            tokens(&mut inner, scope.as_deref())
        }
        ["refresh_token"] => {
            // Rotation: a refresh token works once.
            if !inner.refresh_tokens.remove(request.one("refresh_token")) {
                return error(StatusCode::BAD_REQUEST, "invalid_grant");
            }
            let scope = request.get("scope").first().map(|s| s.to_string());
            tokens(&mut inner, scope.as_deref())
        }
        ["client_credentials"] if is_svc(&request) => {
            let scope = request.get("scope").first().map(|s| s.to_string());
            tokens(&mut inner, scope.as_deref())
        }
        ["client_credentials"] => error(StatusCode::UNAUTHORIZED, "invalid_client"),
        _ => error(StatusCode::BAD_REQUEST, "unsupported_grant_type"),
    }
}

async fn revoke(State(fake): State<FakeServer>, headers: HeaderMap, body: String) -> Response {
    record(&fake, "/revoke", &headers, &body);
    StatusCode::OK.into_response()
}

async fn introspect(State(fake): State<FakeServer>, headers: HeaderMap, body: String) -> Response {
    let request = record(&fake, "/introspect", &headers, &body);
    if request.authorization.as_deref() != Some(RS_BASIC) {
        return error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    let active = request.one("token").starts_with("at-");
    if active {
        Json(json!({"active": true, "iss": fake.issuer, "scope": "read", "aud": ["a", "b"]}))
            .into_response()
    } else {
        Json(json!({"active": false})).into_response()
    }
}

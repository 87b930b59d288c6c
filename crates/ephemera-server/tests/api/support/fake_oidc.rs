//! A fake upstream identity provider on 127.0.0.1 (its own P-256 key), for
//! `upstream.rs` and `browser.rs`: OpenID Connect discovery, JWKS, token and
//! userinfo endpoints (and GitHub's shape at the same endpoints). Codes are
//! issued by the test with the ID Token it wants, or by `/authorize`, which
//! signs the person in at once and redirects straight back, as a provider
//! the person is already signed in to does for a browser.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ephemera_server::config::upstream::RawProvider;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use url::Url;

use crate::helpers::query;
use crate::keys::TestKey;

pub const CLIENT_ID: &str = "ephemera-at-fake";
pub const CLIENT_SECRET: &str = "fake-upstream-secret-0123456789abcdef";

/// What the fake's token endpoint answers for one code.
#[derive(Clone)]
struct Issued {
    challenge: String,
    id_token: Option<String>,
    userinfo: Value,
}

/// A fake provider: OpenID Connect discovery, JWKS, token and userinfo
/// endpoints (and GitHub's shape at the same endpoints); codes are issued
/// by the test with the ID Token it wants.
#[derive(Clone)]
pub struct Fake {
    pub issuer: String,
    pub key: Arc<TestKey>,
    codes: Arc<Mutex<HashMap<String, Issued>>>,
    tokens: Arc<Mutex<HashMap<String, Value>>>,
    /// How the client authenticated at each token request.
    pub auth_seen: Arc<Mutex<Vec<&'static str>>>,
    /// The authorization requests a browser brought to `/authorize`.
    pub authorized: Arc<Mutex<Vec<Url>>>,
}

impl Fake {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let fake = Self {
            issuer: format!("http://{}", listener.local_addr().unwrap()),
            key: Arc::new(TestKey::new()),
            codes: Arc::default(),
            tokens: Arc::default(),
            auth_seen: Arc::default(),
            authorized: Arc::default(),
        };
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route(
                "/jwks",
                get(|State(f): State<Fake>| async move { Json(f.key.jwks()) }),
            )
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .route("/userinfo", get(userinfo))
            .with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        fake
    }

    /// `[upstream.corp]`: OpenID Connect at this fake.
    pub fn oidc(&self) -> RawProvider {
        RawProvider {
            label: Some("Corp".into()),
            kind: "oidc".into(),
            issuer: Some(self.issuer.clone()),
            client_id: CLIENT_ID.into(),
            client_secret: Some(CLIENT_SECRET.into()),
            ..RawProvider::default()
        }
    }

    /// `[upstream.github]`: GitHub's shape at this fake.
    pub fn github(&self) -> RawProvider {
        RawProvider {
            label: Some("GitHub".into()),
            kind: "oauth2".into(),
            issuer: Some("https://github.com".into()),
            authorization_endpoint: Some(format!("{}/authorize", self.issuer)),
            token_endpoint: Some(format!("{}/token", self.issuer)),
            userinfo_url: Some(format!("{}/userinfo", self.issuer)),
            client_id: CLIENT_ID.into(),
            client_secret: Some(CLIENT_SECRET.into()),
            token_endpoint_auth_method: Some("client_secret_basic".into()),
            scopes: Some(vec!["read:user".into()]),
            ..RawProvider::default()
        }
    }

    /// The claims of a good ID Token for the authorization request `auth`.
    pub fn claims(&self, auth: &Url, now: i64) -> Value {
        json!({
            "iss": self.issuer, "aud": CLIENT_ID, "sub": "u-248289761001",
            "exp": now + 300, "iat": now, "nonce": query(auth, "nonce"),
            "preferred_username": "ada", "name": "Ada Lovelace", "email": "ada@example.com",
            "amr": ["hwk"], "acr": "urn:example:loa:3",
        })
    }

    pub fn sign(&self, claims: &Value) -> String {
        self.key.sign(json!({"kid": self.key.jkt}), claims)
    }

    /// A code for the authorization request `auth`, redeemed for this ID
    /// Token and userinfo.
    pub fn issue(&self, auth: &Url, id_token: Option<String>, userinfo: Value) -> String {
        let code = crate::keys::random_id();
        self.codes.lock().unwrap().insert(
            code.clone(),
            Issued {
                challenge: query(auth, "code_challenge").unwrap(),
                id_token,
                userinfo,
            },
        );
        code
    }
}

async fn discovery(State(f): State<Fake>) -> Json<Value> {
    let i = &f.issuer;
    Json(json!({
        "issuer": i,
        "authorization_endpoint": format!("{i}/authorize"),
        "token_endpoint": format!("{i}/token"),
        "userinfo_endpoint": format!("{i}/userinfo"),
        "jwks_uri": format!("{i}/jwks"),
        "response_types_supported": ["code"],
        "token_endpoint_auth_methods_supported": ["client_secret_post"],
        "authorization_response_iss_parameter_supported": true,
    }))
}

/// The authorization endpoint: the person is taken to be signed in here
/// and to consent, so the browser goes straight back to the callback with a
/// code for a good ID Token (the wall clock's, as the server's is in a test
/// that does not move it) and RFC 9207's `iss`.
async fn authorize(State(f): State<Fake>, uri: Uri) -> Response {
    let auth = Url::parse(&format!("{}{uri}", f.issuer)).unwrap();
    f.authorized.lock().unwrap().push(auth.clone());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let code = f.issue(&auth, Some(f.sign(&f.claims(&auth, now))), fake_info());
    let mut back = Url::parse(&query(&auth, "redirect_uri").unwrap()).unwrap();
    back.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &query(&auth, "state").unwrap())
        .append_pair("iss", &f.issuer);
    (StatusCode::FOUND, [(header::LOCATION, back.to_string())]).into_response()
}

async fn token(State(f): State<Fake>, headers: HeaderMap, body: String) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
    );
    let how = if headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&basic) {
        "client_secret_basic"
    } else if form.get("client_id").map(String::as_str) == Some(CLIENT_ID)
        && form.get("client_secret").map(String::as_str) == Some(CLIENT_SECRET)
    {
        "client_secret_post"
    } else {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    };
    f.auth_seen.lock().unwrap().push(how);
    let code = form.get("code").cloned().unwrap_or_default();
    let Some(issued) = f.codes.lock().unwrap().remove(&code) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant"})),
        )
            .into_response();
    };
    let verifier = form.get("code_verifier").cloned().unwrap_or_default();
    if URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) != issued.challenge {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant", "error_description": "PKCE"})),
        )
            .into_response();
    }
    let access_token = crate::keys::random_id();
    f.tokens
        .lock()
        .unwrap()
        .insert(access_token.clone(), issued.userinfo);
    let mut body = json!({"access_token": access_token, "token_type": "Bearer"});
    if let Some(t) = issued.id_token {
        body["id_token"] = json!(t);
    }
    Json(body).into_response()
}

async fn userinfo(State(f): State<Fake>, headers: HeaderMap) -> Response {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    match f.tokens.lock().unwrap().get(token) {
        Some(info) => Json(info.clone()).into_response(),
        None => StatusCode::UNAUTHORIZED.into_response(),
    }
}

/// The fake's userinfo answer for the subject of its ID Tokens.
pub fn fake_info() -> Value {
    json!({"sub": "u-248289761001"})
}

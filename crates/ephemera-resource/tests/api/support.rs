use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ephemera_resource::{IntrospectionConfig, IntrospectionLayer, TokenContext};
use serde_json::{json, Value};
use tower::ServiceExt as _;

pub const ISSUER: &str = "http://as.test";
pub const CLIENT_ID: &str = "resource-server";
pub const CLIENT_SECRET: &str = "rs-secret";

/// A fake introspection endpoint: answers from a token -> JSON table,
/// `{"active":false}` for anything else, and counts its calls.
#[derive(Clone, Default)]
pub struct FakeIntrospection {
    answers: Arc<HashMap<String, Value>>,
    calls: Arc<AtomicUsize>,
}

impl FakeIntrospection {
    pub fn new(answers: &[(&str, Value)]) -> Self {
        let answers = answers
            .iter()
            .map(|(t, v)| ((*t).to_owned(), v.clone()))
            .collect();
        Self {
            answers: Arc::new(answers),
            calls: Arc::default(),
        }
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// Serves on 127.0.0.1:0 and returns the endpoint URL.
    pub async fn serve(self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let app = Router::new()
            .route("/introspect", post(introspect))
            .with_state(self);
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{address}/introspect")
    }
}

async fn introspect(
    State(fake): State<FakeIntrospection>,
    headers: HeaderMap,
    body: String,
) -> Response {
    fake.calls.fetch_add(1, Ordering::SeqCst);
    let expected = format!(
        "Basic {}",
        STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
    );
    if headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        != Some(expected.as_str())
    {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    let token = form_urlencoded::parse(body.as_bytes())
        .find(|(name, _)| name == "token")
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default();
    let answer = fake
        .answers
        .get(&token)
        .cloned()
        .unwrap_or_else(|| json!({"active": false}));
    Json(answer).into_response()
}

/// An active token's introspection answer from our issuer.
pub fn active(scope: &str, aud: Value) -> Value {
    json!({
        "active": true,
        "iss": ISSUER,
        "sub": "alice",
        "scope": scope,
        "client_id": "urn:ietf:oauth:parameters:dynamic",
        "client_kind": "pushed",
        "client_metadata": {"client_name": "agent"},
        "grant_id": "g-1",
        "token_type": "Bearer",
        "aud": aud,
        "exp": 4_000_000_000u64,
    })
}

pub fn config(endpoint: String) -> IntrospectionConfig {
    IntrospectionConfig::new(endpoint, CLIENT_ID, CLIENT_SECRET, ISSUER).realm("test")
}

async fn whoami(ctx: TokenContext) -> String {
    format!(
        "{}|{}|{}|{}|{}",
        ctx.subject.unwrap_or_default(),
        ctx.scopes.join(" "),
        ctx.grant_id.unwrap_or_default(),
        ctx.client_kind.unwrap_or_default(),
        ctx.client_metadata
            .map(|m| m["client_name"].to_string())
            .unwrap_or_default(),
    )
}

/// The resource server under test: `GET /whoami` behind the layer.
pub fn app(config: IntrospectionConfig) -> Router {
    Router::new()
        .route("/whoami", get(whoami))
        .layer(IntrospectionLayer::new(config))
}

/// The same handler with no layer in front of it.
pub fn unprotected_app() -> Router {
    Router::new().route("/whoami", get(whoami))
}

pub struct Answer {
    pub status: StatusCode,
    pub challenge: Option<String>,
    pub body: String,
}

pub async fn call(app: &Router, authorization: Option<&str>) -> Answer {
    let mut request = Request::get("/whoami");
    if let Some(value) = authorization {
        request = request.header(header::AUTHORIZATION, value);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let challenge = response
        .headers()
        .get(header::WWW_AUTHENTICATE)
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = axum::body::to_bytes(response.into_body(), 64 * 1024)
        .await
        .unwrap();
    Answer {
        status,
        challenge,
        body: String::from_utf8(bytes.to_vec()).unwrap(),
    }
}

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use ephemera_proto::jose::sha256_b64;
use ephemera_resource::{
    metadata, IntrospectionConfig, IntrospectionLayer, ProtectedResourceMetadata, TokenContext,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::elliptic_curve::sec1::ToEncodedPoint as _;
use p256::pkcs8::EncodePrivateKey as _;
use serde_json::{json, Value};
use tower::ServiceExt as _;
use url::Url;

pub const ISSUER: &str = "http://as.test";
pub const CLIENT_ID: &str = "resource-server";
pub const CLIENT_SECRET: &str = "rs-secret";
/// The public base URL of the resource server under test.
pub const API: &str = "http://api.test";
/// The URL of `GET /whoami` as clients see it: the `htu` of good proofs.
pub const WHOAMI_URL: &str = "http://api.test/whoami";

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

/// A DPoP-bound token's introspection answer (RFC 9449 §6.2).
pub fn dpop_bound(scope: &str, jkt: &str) -> Value {
    let mut answer = active(scope, json!("https://api.test"));
    answer["token_type"] = json!("DPoP");
    answer["cnf"] = json!({ "jkt": jkt });
    answer
}

/// A certificate-bound token's introspection answer (RFC 8705 §3.2).
pub fn certificate_bound(scope: &str, certificate_der: &[u8]) -> Value {
    let mut answer = active(scope, json!("https://api.test"));
    answer["cnf"] = json!({ "x5t#S256": sha256_b64(certificate_der) });
    answer
}

pub fn config(endpoint: String) -> IntrospectionConfig {
    IntrospectionConfig::new(endpoint, CLIENT_ID, CLIENT_SECRET, ISSUER).realm("test")
}

/// [`config`] with DPoP on, at [`API`].
pub fn dpop_config(endpoint: String) -> IntrospectionConfig {
    config(endpoint).public_base_url(Url::parse(API).unwrap())
}

/// A client's ES256 DPoP key.
pub struct DpopKey {
    encoding: EncodingKey,
    jwk: Value,
}

impl DpopKey {
    pub fn generate() -> Self {
        let secret = p256::SecretKey::random(&mut rand::rngs::OsRng);
        let der = secret.to_pkcs8_der().unwrap();
        let point = secret.public_key().to_encoded_point(false);
        let jwk = json!({
            "kty": "EC",
            "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(point.x().unwrap()),
            "y": URL_SAFE_NO_PAD.encode(point.y().unwrap()),
        });
        Self {
            encoding: EncodingKey::from_ec_der(der.as_bytes()),
            jwk,
        }
    }

    /// The RFC 7638 thumbprint: the `cnf.jkt` of tokens bound to this key.
    pub fn thumbprint(&self) -> String {
        ephemera_proto::jose::thumbprint(self.jwk.as_object().unwrap()).unwrap()
    }

    /// A proof with these claims, `typ` dpop+jwt, ES256, and the key as `jwk`.
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some("dpop+jwt".into());
        header.jwk = Some(serde_json::from_value(self.jwk.clone()).unwrap());
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }

    /// A good proof for `GET /whoami` with `token`.
    pub fn proof(&self, token: &str) -> String {
        self.sign(&claims(token))
    }
}

/// The claims of a good proof for `GET /whoami` with `token`: a fresh
/// `jti`, `iat` now, and `ath`.
pub fn claims(token: &str) -> Value {
    json!({
        "jti": format!("{:032x}", rand::random::<u128>()),
        "htm": "GET",
        "htu": WHOAMI_URL,
        "iat": now(),
        "ath": sha256_b64(token.as_bytes()),
    })
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// `GET /whoami` with an `Authorization` header and the given `DPoP` headers.
pub fn request(authorization: &str, proofs: &[&str]) -> Request<Body> {
    let mut request = Request::get("/whoami").header(header::AUTHORIZATION, authorization);
    for proof in proofs {
        request = request.header("DPoP", *proof);
    }
    request.body(Body::empty()).unwrap()
}

async fn whoami(ctx: TokenContext) -> String {
    if ctx.is_bound() {
        return serde_json::to_string(&ctx).unwrap();
    }
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

/// [`app`] plus the RFC 9728 metadata route, outside the layer.
pub fn app_with_metadata(
    config: IntrospectionConfig,
    metadata: ProtectedResourceMetadata,
) -> Router {
    app(config).merge(metadata::router(metadata))
}

/// The same handler with no layer in front of it.
pub fn unprotected_app() -> Router {
    Router::new().route("/whoami", get(whoami))
}

pub struct Answer {
    pub status: StatusCode,
    /// The first `WWW-Authenticate` value.
    pub challenge: Option<String>,
    /// Every `WWW-Authenticate` value, in order.
    pub challenges: Vec<String>,
    pub dpop_nonce: Option<String>,
    pub body: String,
}

pub async fn call(app: &Router, authorization: Option<&str>) -> Answer {
    let mut request = Request::get("/whoami");
    if let Some(value) = authorization {
        request = request.header(header::AUTHORIZATION, value);
    }
    send(app, request.body(Body::empty()).unwrap()).await
}

pub async fn send(app: &Router, request: Request<Body>) -> Answer {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let challenges: Vec<String> = response
        .headers()
        .get_all(header::WWW_AUTHENTICATE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let dpop_nonce = response
        .headers()
        .get("DPoP-Nonce")
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = axum::body::to_bytes(response.into_body(), 64 * 1024)
        .await
        .unwrap();
    Answer {
        status,
        challenge: challenges.first().cloned(),
        challenges,
        dpop_nonce,
        body: String::from_utf8(bytes.to_vec()).unwrap(),
    }
}

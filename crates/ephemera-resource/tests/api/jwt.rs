//! JWT access tokens (RFC 9068) validated by the layer itself, with the
//! keys of a fake authorization server's `jwks_uri`: what is accepted
//! without introspection, what is refused, key rotation, and the binding
//! of a DPoP-bound JWT.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine as _;
use ephemera_resource::{IntrospectionConfig, JwtValidation};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::elliptic_curve::sec1::ToEncodedPoint as _;
use p256::pkcs8::EncodePrivateKey as _;
use serde_json::{json, Value};
use url::Url;

use crate::support::{
    active, app, call, now, request, send, DpopKey, FakeIntrospection, API, CLIENT_ID,
    CLIENT_SECRET,
};

/// The resource the tokens are for.
const RESOURCE: &str = "https://api.test/";

/// An authorization server's signing key.
struct SigningKey {
    kid: String,
    encoding: EncodingKey,
    jwk: Value,
}

impl SigningKey {
    fn generate(kid: &str) -> Self {
        let secret = p256::SecretKey::random(&mut rand::rngs::OsRng);
        let der = secret.to_pkcs8_der().unwrap();
        let point = secret.public_key().to_encoded_point(false);
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let jwk = json!({
            "kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "use": "sig",
            "x": b64(point.x().unwrap()), "y": b64(point.y().unwrap()),
        });
        Self {
            kid: kid.into(),
            encoding: EncodingKey::from_ec_der(der.as_bytes()),
            jwk,
        }
    }

    /// `claims` signed with `typ` as the header's type.
    fn sign_typed(&self, typ: &str, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some(typ.into());
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }

    fn sign(&self, claims: &Value) -> String {
        self.sign_typed("at+jwt", claims)
    }
}

/// A fake authorization server: its RFC 8414 metadata and its JWK Set,
/// whose keys a test changes, counting the JWK Set's fetches.
#[derive(Clone)]
struct FakeIssuer {
    issuer: String,
    keys: Arc<Mutex<Vec<Value>>>,
    fetches: Arc<AtomicUsize>,
}

impl FakeIssuer {
    async fn serve(keys: &[&SigningKey]) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let fake = Self {
            issuer,
            keys: Arc::new(Mutex::new(keys.iter().map(|k| k.jwk.clone()).collect())),
            fetches: Arc::default(),
        };
        let app = Router::new()
            .route("/.well-known/oauth-authorization-server", get(metadata))
            .route("/jwks", get(jwks))
            .with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        fake
    }

    fn publish(&self, keys: &[&SigningKey]) {
        *self.keys.lock().unwrap() = keys.iter().map(|k| k.jwk.clone()).collect();
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    /// Good claims for [`RESOURCE`], valid for an hour.
    fn claims(&self) -> Value {
        let now = now();
        json!({
            "iss": self.issuer, "aud": RESOURCE, "sub": "alice", "client_id": "app",
            "iat": now, "exp": now + 3600, "jti": format!("{:032x}", rand::random::<u128>()),
            "scope": "read write", "grant_id": "g-1",
        })
    }
}

async fn metadata(State(fake): State<FakeIssuer>) -> Json<Value> {
    Json(json!({"issuer": fake.issuer, "jwks_uri": format!("{}/jwks", fake.issuer)}))
}

async fn jwks(State(fake): State<FakeIssuer>) -> Json<Value> {
    fake.fetches.fetch_add(1, Ordering::SeqCst);
    Json(json!({"keys": *fake.keys.lock().unwrap()}))
}

/// The layer validating JWTs of `issuer` for [`RESOURCE`], with DPoP on,
/// introspecting other tokens at `introspection`.
fn config(issuer: &FakeIssuer, introspection: String) -> IntrospectionConfig {
    IntrospectionConfig::new(
        introspection,
        CLIENT_ID,
        CLIENT_SECRET,
        issuer.issuer.clone(),
    )
    .realm("test")
    .audience(RESOURCE)
    .public_base_url(Url::parse(API).unwrap())
    .validate_jwt_locally()
}

#[tokio::test]
async fn a_jwt_access_token_is_accepted_without_introspection() {
    let key = SigningKey::generate("k1");
    let issuer = FakeIssuer::serve(&[&key]).await;
    let introspection = FakeIntrospection::new(&[]);
    let app = app(config(&issuer, introspection.clone().serve().await).require_scope("read"));

    let token = key.sign(&issuer.claims());
    let answer = call(&app, Some(&format!("Bearer {token}"))).await;

    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.challenge);
    assert_eq!(answer.body, "alice|read write|g-1||");
    assert_eq!(introspection.calls(), 0);
    // The keys are cached: a second token costs no fetch.
    let again = call(
        &app,
        Some(&format!("Bearer {}", key.sign(&issuer.claims()))),
    )
    .await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(issuer.fetches(), 1);
}

#[tokio::test]
async fn an_opaque_token_is_still_introspected() {
    let key = SigningKey::generate("k1");
    let issuer = FakeIssuer::serve(&[&key]).await;
    let mut answer = active("read", json!(RESOURCE));
    answer["iss"] = json!(issuer.issuer);
    let introspection = FakeIntrospection::new(&[("opaque", answer)]);
    let app = app(config(&issuer, introspection.clone().serve().await));

    let answer = call(&app, Some("Bearer opaque")).await;

    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.challenge);
    assert_eq!(introspection.calls(), 1);
    assert_eq!(issuer.fetches(), 0);
}

#[tokio::test]
async fn jwts_that_fail_a_check_are_refused_as_invalid_tokens() {
    let key = SigningKey::generate("k1");
    let issuer = FakeIssuer::serve(&[&key]).await;
    let introspection = FakeIntrospection::new(&[]);
    let app = app(config(&issuer, introspection.clone().serve().await));
    let with = |name: &str, value: Value| {
        let mut claims = issuer.claims();
        claims[name] = value;
        key.sign(&claims)
    };
    let stranger = SigningKey::generate("k1");
    let cases = [
        (
            with("aud", json!("https://other.test/")),
            "not meant for this resource",
        ),
        (with("iss", json!("http://evil.test")), "expected issuer"),
        (with("exp", json!(now() - 60)), "expired"),
        (with("nbf", json!(now() + 600)), "not valid yet"),
        (
            key.sign_typed("JWT", &issuer.claims()),
            "typ must be at+jwt",
        ),
        (stranger.sign(&issuer.claims()), "signature does not verify"),
        (
            {
                let token = key.sign(&issuer.claims());
                let (head, _) = token.rsplit_once('.').unwrap();
                format!("{head}.{}", "A".repeat(86))
            },
            "signature does not verify",
        ),
    ];
    for (token, reason) in cases {
        let answer = call(&app, Some(&format!("Bearer {token}"))).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{reason}");
        let challenge = answer.challenge.unwrap_or_default();
        assert!(
            challenge.contains("error=\"invalid_token\"") && challenge.contains(reason),
            "{reason}: {challenge}"
        );
    }
    assert_eq!(introspection.calls(), 0);
}

#[tokio::test]
async fn an_hmac_or_unsigned_jwt_is_refused_whatever_it_claims() {
    let key = SigningKey::generate("k1");
    let issuer = FakeIssuer::serve(&[&key]).await;
    let app = app(config(&issuer, FakeIntrospection::new(&[]).serve().await));
    let mut header = Header::new(Algorithm::HS256);
    header.typ = Some("at+jwt".into());
    header.kid = Some("k1".into());
    // The public key's x coordinate as an HMAC secret: the classic
    // algorithm confusion.
    let secret = key.jwk["x"].as_str().unwrap().as_bytes().to_vec();
    let hmac = jsonwebtoken::encode(
        &header,
        &issuer.claims(),
        &EncodingKey::from_secret(&secret),
    )
    .unwrap();
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let unsigned = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "at+jwt"})),
        b64(&issuer.claims())
    );

    for token in [hmac, unsigned] {
        let answer = call(&app, Some(&format!("Bearer {token}"))).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
        assert!(answer
            .challenge
            .unwrap_or_default()
            .contains("error=\"invalid_token\""));
    }
}

/// The layer of [`config`] with `settings`.
async fn app_with(issuer: &FakeIssuer, settings: JwtValidation) -> Router {
    app(config(issuer, FakeIntrospection::new(&[]).serve().await).jwt_validation(settings))
}

async fn status(app: &Router, token: &str) -> StatusCode {
    call(app, Some(&format!("Bearer {token}"))).await.status
}

#[tokio::test]
async fn a_rotated_key_is_fetched_when_a_token_names_it() {
    let old = SigningKey::generate("old");
    let issuer = FakeIssuer::serve(&[&old]).await;
    let app = app_with(
        &issuer,
        JwtValidation {
            min_refetch_interval: Duration::ZERO,
            ..JwtValidation::default()
        },
    )
    .await;
    assert_eq!(
        status(&app, &old.sign(&issuer.claims())).await,
        StatusCode::OK
    );

    // The authorization server rotates: the new key signs, the old one is
    // still published until what it signed has expired.
    let new = SigningKey::generate("new");
    issuer.publish(&[&new, &old]);

    assert_eq!(
        status(&app, &new.sign(&issuer.claims())).await,
        StatusCode::OK
    );
    assert_eq!(
        status(&app, &old.sign(&issuer.claims())).await,
        StatusCode::OK
    );
    assert_eq!(issuer.fetches(), 2);
}

#[tokio::test]
async fn unknown_kids_cost_at_most_one_fetch_per_interval() {
    let key = SigningKey::generate("k1");
    let issuer = FakeIssuer::serve(&[&key]).await;
    let app = app_with(
        &issuer,
        JwtValidation {
            min_refetch_interval: Duration::from_secs(3600),
            ..JwtValidation::default()
        },
    )
    .await;
    assert_eq!(
        status(&app, &key.sign(&issuer.claims())).await,
        StatusCode::OK
    );

    for _ in 0..3 {
        let stranger = SigningKey::generate("made-up");
        let answer = call(
            &app,
            Some(&format!("Bearer {}", stranger.sign(&issuer.claims()))),
        )
        .await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
        assert!(answer
            .challenge
            .unwrap_or_default()
            .contains("a key the authorization server does not publish"));
    }

    assert_eq!(issuer.fetches(), 1);
}

#[tokio::test]
async fn a_dpop_bound_jwt_needs_a_proof_with_its_key() {
    let key = SigningKey::generate("k1");
    let issuer = FakeIssuer::serve(&[&key]).await;
    let app = app(config(&issuer, FakeIntrospection::new(&[]).serve().await));
    let client = DpopKey::generate();
    let mut claims = issuer.claims();
    claims["cnf"] = json!({"jkt": client.thumbprint()});
    let token = key.sign(&claims);

    let bearer = call(&app, Some(&format!("Bearer {token}"))).await;
    let no_proof = send(&app, request(&format!("DPoP {token}"), &[])).await;
    let other_key = send(
        &app,
        request(
            &format!("DPoP {token}"),
            &[&DpopKey::generate().proof(&token)],
        ),
    )
    .await;
    let good = send(
        &app,
        request(&format!("DPoP {token}"), &[&client.proof(&token)]),
    )
    .await;

    assert_eq!(bearer.status, StatusCode::UNAUTHORIZED);
    assert!(bearer.challenge.unwrap_or_default().contains("DPoP-bound"));
    assert_eq!(no_proof.status, StatusCode::UNAUTHORIZED);
    assert_eq!(other_key.status, StatusCode::UNAUTHORIZED);
    assert_eq!(good.status, StatusCode::OK, "{:?}", good.challenges);
    let context: Value = serde_json::from_str(&good.body).unwrap();
    assert_eq!(context["dpop_jkt"], json!(client.thumbprint()));
    assert_eq!(context["token_type"], "DPoP");
}

#[tokio::test]
async fn a_jwt_with_a_binding_the_layer_cannot_check_is_refused() {
    let key = SigningKey::generate("k1");
    let issuer = FakeIssuer::serve(&[&key]).await;
    let app = app(config(&issuer, FakeIntrospection::new(&[]).serve().await));
    let mut claims = issuer.claims();
    claims["cnf"] = json!({"jwk": {"kty": "EC"}});

    let answer = call(&app, Some(&format!("Bearer {}", key.sign(&claims)))).await;

    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn keys_that_cannot_be_fetched_make_the_layer_unavailable_not_open() {
    let key = SigningKey::generate("k1");
    let issuer = FakeIssuer::serve(&[&key]).await;
    let nowhere = IntrospectionConfig::new(
        "http://127.0.0.1:9/introspect",
        CLIENT_ID,
        CLIENT_SECRET,
        issuer.issuer.clone(),
    )
    .audience(RESOURCE)
    .jwt_validation(JwtValidation {
        jwks_uri: Some("http://127.0.0.1:9/jwks".into()),
        ..JwtValidation::default()
    });
    let app = app(nowhere);

    let answer = call(
        &app,
        Some(&format!("Bearer {}", key.sign(&issuer.claims()))),
    )
    .await;

    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
}

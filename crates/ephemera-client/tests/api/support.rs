//! The fake authorization server (and a resource endpoint) the tests drive.

// The checks below return the axum response to send as their error; its
// size does not matter in a test fake.
#![allow(clippy::result_large_err)]

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use ephemera_client::{AuthorizationServer, PendingAuthorization};
use ephemera_proto::{assertion, dpop};
use serde_json::{json, Value};

pub const RS_BASIC: &str = "Basic cnM6cnMtc2VjcmV0"; // rs:rs-secret
pub const SVC_ID: &str = "svc";
pub const SVC_SECRET: &str = "s3cret";
/// The nonce the fake resource server asks DPoP proofs to carry.
pub const RS_NONCE: &str = "rs-nonce";
/// The nonce the fake authorization server asks for when told to.
pub const AS_NONCE: &str = "as-nonce";

/// Whether the fake authorization server answers `use_dpop_nonce`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoncePolicy {
    /// Proofs need no nonce.
    None,
    /// Proofs must carry [`AS_NONCE`].
    Required,
    /// No proof is ever good enough: every one gets `use_dpop_nonce` with a
    /// new nonce (to see that the client retries only once).
    Unsatisfiable,
}

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub path: &'static str,
    pub form: Vec<(String, String)>,
    pub authorization: Option<String>,
    /// The `DPoP` header.
    pub dpop: Option<String>,
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

    /// The claims of the DPoP proof, unverified.
    pub fn dpop_claims(&self) -> Value {
        let proof = self.dpop.as_deref().expect("a DPoP header");
        let payload = proof.split('.').nth(1).unwrap();
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }
}

/// The keys a grant is bound to: the DPoP key's thumbprint and the pushed
/// `jwks` its client assertions must verify with.
#[derive(Debug, Clone, Default)]
struct Binding {
    jkt: Option<String>,
    jwks: Option<Value>,
}

#[derive(Default)]
struct Inner {
    requests: Vec<Recorded>,
    pushed: HashMap<String, (Recorded, Binding)>,
    codes: HashMap<String, (Recorded, Binding)>,
    refresh_tokens: HashMap<String, Binding>,
    access_tokens: HashMap<String, Binding>,
    assertion_jtis: HashSet<String>,
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
    nonce_policy: NoncePolicy,
    inner: Arc<Mutex<Inner>>,
}

impl FakeServer {
    pub async fn start() -> Self {
        Self::start_with(None, NoncePolicy::None).await
    }

    /// A fake whose metadata names `issuer` instead of its own address.
    pub async fn start_claiming(issuer: Option<&str>) -> Self {
        Self::start_with(issuer, NoncePolicy::None).await
    }

    /// A fake that wants DPoP nonces at PAR and token endpoints.
    pub async fn start_with_nonces(policy: NoncePolicy) -> Self {
        Self::start_with(None, policy).await
    }

    async fn start_with(issuer: Option<&str>, nonce_policy: NoncePolicy) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let base = format!("http://{address}");
        let fake = Self {
            issuer: issuer.map_or_else(|| base.clone(), str::to_owned),
            base,
            nonce_policy,
            inner: Arc::default(),
        };
        let app = Router::new()
            .route("/.well-known/oauth-authorization-server", get(discovery))
            .route("/par", post(par))
            .route("/token", post(token))
            .route("/revoke", post(revoke))
            .route("/introspect", post(introspect))
            .route("/resource", get(resource))
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
        let (par, binding) = inner.pushed.get(&pending.request_uri).cloned().unwrap();
        inner.counter += 1;
        let code = format!("code-{}", inner.counter);
        inner.codes.insert(code.clone(), (par.clone(), binding));
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
        dpop: headers.get("DPoP").map(|v| v.to_str().unwrap().to_owned()),
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
    // A pushed client with a key pushes the jwks its assertions verify with.
    let jwks = request
        .get("client_registration")
        .first()
        .and_then(|text| serde_json::from_str::<Value>(text).ok())
        .filter(|r| r["token_endpoint_auth_method"] == "private_key_jwt")
        .map(|r| r["jwks"].clone());
    if let Some(jwks) = &jwks {
        if let Err(response) = check_assertion(&fake, &request, jwks) {
            return response;
        }
    }
    let jkt = match check_dpop(&fake, &request, "/par") {
        Ok(jkt) => jkt,
        Err(response) => return response,
    };
    let mut inner = fake.inner.lock().unwrap();
    inner.counter += 1;
    let request_uri = format!("urn:ietf:params:oauth:request_uri:r{}", inner.counter);
    inner
        .pushed
        .insert(request_uri.clone(), (request, Binding { jkt, jwks }));
    (
        StatusCode::CREATED,
        Json(json!({"request_uri": request_uri, "expires_in": 60})),
    )
        .into_response()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Verifies the request's DPoP proof, if any, for `POST` to `path`, and
/// returns its key's thumbprint; or the error response to send.
fn check_dpop(
    fake: &FakeServer,
    request: &Recorded,
    path: &str,
) -> Result<Option<String>, Response> {
    let Some(proof) = &request.dpop else {
        return Ok(None);
    };
    let url = format!("{}{path}", fake.base);
    let expect = dpop::Expectations {
        method: "POST",
        url: &url,
        now: now(),
        max_age: 60,
        leeway: 5,
        access_token: None,
    };
    let verified = dpop::verify(proof, &expect)
        .map_err(|_| error(StatusCode::BAD_REQUEST, "invalid_dpop_proof"))?;
    let asks_for_nonce = match fake.nonce_policy {
        NoncePolicy::None => None,
        NoncePolicy::Required if verified.nonce.as_deref() == Some(AS_NONCE) => None,
        NoncePolicy::Required => Some(AS_NONCE.to_owned()),
        NoncePolicy::Unsatisfiable => Some(format!("never-{}", verified.jti)),
    };
    if let Some(nonce) = asks_for_nonce {
        let mut response = error(StatusCode::BAD_REQUEST, "use_dpop_nonce");
        response
            .headers_mut()
            .insert("DPoP-Nonce", nonce.parse().unwrap());
        return Err(response);
    }
    Ok(Some(verified.jkt))
}

/// Verifies the request's client assertion with `jwks` (`iss` = `sub` =
/// its `client_id`, `aud` = the issuer) and refuses a replayed `jti`.
fn check_assertion(fake: &FakeServer, request: &Recorded, jwks: &Value) -> Result<(), Response> {
    let unauthorized = || error(StatusCode::UNAUTHORIZED, "invalid_client");
    if request.get("client_assertion_type") != [assertion::JWT_BEARER_ASSERTION] {
        return Err(unauthorized());
    }
    let keys = assertion::parse_jwks(jwks).map_err(|_| unauthorized())?;
    let client_id = request
        .get("client_id")
        .first()
        .copied()
        .unwrap_or_default();
    let expect = assertion::Expectations {
        client_id,
        audiences: &[fake.issuer.as_str()],
        now: now(),
        max_lifetime: 300,
        leeway: 5,
    };
    let assertion = request
        .get("client_assertion")
        .first()
        .copied()
        .unwrap_or_default();
    let verified = assertion::verify(assertion, &keys, &expect).map_err(|_| unauthorized())?;
    if !fake
        .inner
        .lock()
        .unwrap()
        .assertion_jtis
        .insert(verified.jti)
    {
        return Err(unauthorized());
    }
    Ok(())
}

/// The checks every token request of a bound grant must pass.
fn check_binding(fake: &FakeServer, request: &Recorded, binding: &Binding) -> Result<(), Response> {
    if let Some(jwks) = &binding.jwks {
        check_assertion(fake, request, jwks)?;
    }
    let jkt = check_dpop(fake, request, "/token")?;
    if binding.jkt.is_some() && jkt != binding.jkt {
        return Err(error(StatusCode::BAD_REQUEST, "invalid_dpop_proof"));
    }
    Ok(())
}

fn tokens(inner: &mut Inner, scope: Option<&str>, binding: Binding) -> Response {
    inner.counter += 1;
    let access_token = format!("at-{}", inner.counter);
    let refresh_token = format!("rt-{}", inner.counter);
    let token_type = if binding.jkt.is_some() {
        "DPoP"
    } else {
        "Bearer"
    };
    inner
        .access_tokens
        .insert(access_token.clone(), binding.clone());
    inner.refresh_tokens.insert(refresh_token.clone(), binding);
    Json(json!({
        "access_token": access_token,
        "token_type": token_type,
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
    match request.get("grant_type").as_slice() {
        ["authorization_code"] => {
            let Some((par, binding)) = fake.inner.lock().unwrap().codes.remove(request.one("code"))
            else {
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
            if let Err(response) = check_binding(&fake, &request, &binding) {
                // Like a real server, a refused proof does not spend the code.
                fake.inner
                    .lock()
                    .unwrap()
                    .codes
                    .insert(request.one("code").to_owned(), (par, binding));
                return response;
            }
            let scope = par.get("scope").first().map(|s| s.to_string());
            tokens(&mut fake.inner.lock().unwrap(), scope.as_deref(), binding)
        }
        ["refresh_token"] => {
            let binding = fake
                .inner
                .lock()
                .unwrap()
                .refresh_tokens
                .get(request.one("refresh_token"))
                .cloned();
            let Some(binding) = binding else {
                return error(StatusCode::BAD_REQUEST, "invalid_grant");
            };
            if let Err(response) = check_binding(&fake, &request, &binding) {
                return response;
            }
            // Rotation: a refresh token works once.
            let mut inner = fake.inner.lock().unwrap();
            if inner
                .refresh_tokens
                .remove(request.one("refresh_token"))
                .is_none()
            {
                return error(StatusCode::BAD_REQUEST, "invalid_grant");
            }
            let scope = request.get("scope").first().map(|s| s.to_string());
            tokens(&mut inner, scope.as_deref(), binding)
        }
        ["client_credentials"] if is_svc(&request) => {
            let scope = request.get("scope").first().map(|s| s.to_string());
            tokens(
                &mut fake.inner.lock().unwrap(),
                scope.as_deref(),
                Binding::default(),
            )
        }
        ["client_credentials"] => error(StatusCode::UNAUTHORIZED, "invalid_client"),
        _ => error(StatusCode::BAD_REQUEST, "unsupported_grant_type"),
    }
}

async fn revoke(State(fake): State<FakeServer>, headers: HeaderMap, body: String) -> Response {
    let request = record(&fake, "/revoke", &headers, &body);
    let binding = {
        let inner = fake.inner.lock().unwrap();
        let token = request.one("token");
        inner
            .refresh_tokens
            .get(token)
            .or_else(|| inner.access_tokens.get(token))
            .cloned()
    };
    if let Some(jwks) = binding.and_then(|b| b.jwks) {
        if let Err(response) = check_assertion(&fake, &request, &jwks) {
            return response;
        }
    }
    StatusCode::OK.into_response()
}

/// A resource server: any token the fake issued, presented as its
/// `token_type` says; DPoP proofs must carry [`RS_NONCE`] (RFC 9449 §9).
async fn resource(State(fake): State<FakeServer>, headers: HeaderMap) -> Response {
    let request = record(&fake, "/resource", &headers, "");
    let unauthorized = |challenge: &str| {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, challenge.to_owned())],
        )
            .into_response()
    };
    let authorization = request.authorization.clone().unwrap_or_default();
    let Some((scheme, token)) = authorization.split_once(' ') else {
        return unauthorized("Bearer");
    };
    let binding = fake.inner.lock().unwrap().access_tokens.get(token).cloned();
    let Some(binding) = binding else {
        return unauthorized(r#"Bearer error="invalid_token""#);
    };
    match (scheme, &binding.jkt) {
        ("Bearer", None) => {}
        ("DPoP", Some(jkt)) => {
            let url = format!("{}/resource", fake.base);
            let expect = dpop::Expectations {
                method: "GET",
                url: &url,
                now: now(),
                max_age: 60,
                leeway: 5,
                access_token: Some(token),
            };
            let proof = request.dpop.as_deref().unwrap_or_default();
            let Ok(verified) = dpop::verify(proof, &expect) else {
                return unauthorized(r#"DPoP error="invalid_dpop_proof""#);
            };
            if &verified.jkt != jkt {
                return unauthorized(r#"DPoP error="invalid_token""#);
            }
            if verified.nonce.as_deref() != Some(RS_NONCE) {
                let mut response = unauthorized(r#"DPoP error="use_dpop_nonce", algs="ES256""#);
                response
                    .headers_mut()
                    .insert("DPoP-Nonce", RS_NONCE.parse().unwrap());
                return response;
            }
        }
        _ => return unauthorized(r#"Bearer error="invalid_token""#),
    }
    Json(json!({"token": token})).into_response()
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

//! The fake authorization server (and a resource endpoint) the tests drive,
//! over http or, like Ephemera terminating TLS itself, over https asking
//! every client for a certificate (RFC 8705). Its token exchange and JWT
//! bearer grants are in [`grants`].

// The checks below return the axum response to send as their error; its
// size does not matter in a test fake.
#![allow(clippy::result_large_err)]

pub mod grants;
pub mod mcp;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::{IncomingStream, Listener};
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ephemera_client::{AuthorizationServer, PendingAuthorization};
use ephemera_proto::{assertion, dpop};
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls::client::danger::HandshakeSignatureValid;
use tokio_rustls::rustls::crypto::{
    verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms,
};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use tokio_rustls::rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use tokio_rustls::rustls::{
    self, DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme,
};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

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
    /// The client certificate (DER) of the TLS connection it came on.
    pub certificate: Option<Vec<u8>>,
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

/// The keys a grant is bound to: the DPoP key's thumbprint, the pushed
/// `jwks` its client assertions must verify with, the certificate of a
/// `self_signed_tls_client_auth` client and the one its tokens are bound to
/// (`tls_client_certificate_bound_access_tokens`).
#[derive(Debug, Clone, Default)]
struct Binding {
    jkt: Option<String>,
    jwks: Option<Value>,
    client_certificate: Option<Vec<u8>>,
    bound_certificate: Option<Vec<u8>>,
}

#[derive(Default)]
struct Inner {
    requests: Vec<Recorded>,
    pushed: HashMap<String, (Recorded, Binding)>,
    codes: HashMap<String, (Recorded, Binding)>,
    refresh_tokens: HashMap<String, Binding>,
    access_tokens: HashMap<String, Binding>,
    assertion_jtis: HashSet<String>,
    /// ID-JAGs issued by token exchange, each good for one JWT bearer grant.
    assertions: HashSet<String>,
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
    /// For an https fake: its self-signed certificate (PEM), the root a
    /// client must trust.
    pub root_pem: Option<String>,
    nonce_policy: NoncePolicy,
    inner: Arc<Mutex<Inner>>,
}

impl FakeServer {
    pub async fn start() -> Self {
        Self::start_with(None, NoncePolicy::None, false).await
    }

    /// A fake whose metadata names `issuer` instead of its own address.
    pub async fn start_claiming(issuer: Option<&str>) -> Self {
        Self::start_with(issuer, NoncePolicy::None, false).await
    }

    /// A fake that wants DPoP nonces at PAR and token endpoints.
    pub async fn start_with_nonces(policy: NoncePolicy) -> Self {
        Self::start_with(None, policy, false).await
    }

    /// An https fake on `https://127.0.0.1:PORT` with a self-signed
    /// certificate ([`root_pem`](Self::root_pem)), asking every client for a
    /// certificate and taking any (or none), as Ephemera does.
    pub async fn start_tls() -> Self {
        Self::start_with(None, NoncePolicy::None, true).await
    }

    async fn start_with(issuer: Option<&str>, nonce_policy: NoncePolicy, tls: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let base = format!("{}://{address}", if tls { "https" } else { "http" });
        let certificate =
            tls.then(|| rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap());
        let fake = Self {
            issuer: issuer.map_or_else(|| base.clone(), str::to_owned),
            base,
            root_pem: certificate.as_ref().map(|c| c.cert.pem()),
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
            .with_state(fake.clone())
            .into_make_service_with_connect_info::<Peer>();
        match certificate {
            None => tokio::spawn(async move { axum::serve(listener, app).await }),
            Some(certificate) => {
                let listener = TlsListener {
                    listener,
                    acceptor: TlsAcceptor::from(server_config(&certificate)),
                };
                tokio::spawn(async move { axum::serve(listener, app).await })
            }
        };
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

fn record(
    fake: &FakeServer,
    peer: &Peer,
    path: &'static str,
    headers: &HeaderMap,
    body: &str,
) -> Recorded {
    let recorded = Recorded {
        certificate: peer.certificate.clone(),
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

async fn par(
    State(fake): State<FakeServer>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let request = record(&fake, &peer, "/par", &headers, &body);
    if request.get("code_challenge_method") != ["S256"] || request.get("state").is_empty() {
        return error(StatusCode::BAD_REQUEST, "invalid_request");
    }
    let registration = request
        .get("client_registration")
        .first()
        .and_then(|text| serde_json::from_str::<Value>(text).ok())
        .unwrap_or_default();
    // A pushed client with a key pushes the jwks its assertions verify with.
    let jwks = Some(registration["jwks"].clone())
        .filter(|_| registration["token_endpoint_auth_method"] == "private_key_jwt");
    if let Some(jwks) = &jwks {
        if let Err(response) = check_assertion(&fake, &request, jwks) {
            return response;
        }
    }
    // One with a certificate pushes it as the x5c of its jwks (RFC 8705
    // §2.2) and sends nothing else: the connection must present it.
    let client_certificate = (registration["token_endpoint_auth_method"]
        == "self_signed_tls_client_auth")
        .then(|| registration["jwks"]["keys"][0]["x5c"][0].as_str())
        .map(|x5c| {
            x5c.and_then(|c| STANDARD.decode(c).ok())
                .unwrap_or_default()
        });
    if let Some(certificate) = &client_certificate {
        if request.certificate.as_ref() != Some(certificate)
            || !request.get("client_assertion").is_empty()
        {
            return error(StatusCode::UNAUTHORIZED, "invalid_client");
        }
    }
    // Certificate-bound tokens need a certificate to bind to (RFC 8705 §3).
    let bound_certificate = if registration["tls_client_certificate_bound_access_tokens"] == true {
        match &request.certificate {
            Some(certificate) => Some(certificate.clone()),
            None => return error(StatusCode::BAD_REQUEST, "invalid_request"),
        }
    } else {
        None
    };
    let jkt = match check_dpop(&fake, &request, "/par") {
        Ok(jkt) => jkt,
        Err(response) => return response,
    };
    let mut inner = fake.inner.lock().unwrap();
    inner.counter += 1;
    let request_uri = format!("urn:ietf:params:oauth:request_uri:r{}", inner.counter);
    let binding = Binding {
        jkt,
        jwks,
        client_certificate,
        bound_certificate,
    };
    inner.pushed.insert(request_uri.clone(), (request, binding));
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
        issuer: fake.issuer.as_str(),
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
    check_certificate(request, binding)?;
    let jkt = check_dpop(fake, request, "/token")?;
    if binding.jkt.is_some() && jkt != binding.jkt {
        return Err(error(StatusCode::BAD_REQUEST, "invalid_dpop_proof"));
    }
    Ok(())
}

/// A grant's certificates must come with each of its requests.
fn check_certificate(request: &Recorded, binding: &Binding) -> Result<(), Response> {
    for certificate in [&binding.client_certificate, &binding.bound_certificate] {
        if certificate.is_some() && request.certificate != *certificate {
            return Err(error(StatusCode::UNAUTHORIZED, "invalid_client"));
        }
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

async fn token(
    State(fake): State<FakeServer>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let request = record(&fake, &peer, "/token", &headers, &body);
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
        [grant] if *grant == ephemera_client::exchange::TOKEN_EXCHANGE_GRANT => {
            grants::token_exchange(&fake, &request)
        }
        [grant] if *grant == ephemera_client::server::JWT_BEARER_GRANT => {
            grants::jwt_bearer(&fake, &request)
        }
        _ => error(StatusCode::BAD_REQUEST, "unsupported_grant_type"),
    }
}

async fn revoke(
    State(fake): State<FakeServer>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let request = record(&fake, &peer, "/revoke", &headers, &body);
    let binding = {
        let inner = fake.inner.lock().unwrap();
        let token = request.one("token");
        inner
            .refresh_tokens
            .get(token)
            .or_else(|| inner.access_tokens.get(token))
            .cloned()
    };
    if let Some(binding) = binding {
        if let Some(jwks) = &binding.jwks {
            if let Err(response) = check_assertion(&fake, &request, jwks) {
                return response;
            }
        }
        if binding.client_certificate.is_some() && request.certificate != binding.client_certificate
        {
            return error(StatusCode::UNAUTHORIZED, "invalid_client");
        }
    }
    StatusCode::OK.into_response()
}

/// A resource server: any token the fake issued, presented as its
/// `token_type` says; DPoP proofs must carry [`RS_NONCE`] (RFC 9449 §9); a
/// certificate-bound token must come over its certificate (RFC 8705 §3).
async fn resource(
    State(fake): State<FakeServer>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    headers: HeaderMap,
) -> Response {
    let request = record(&fake, &peer, "/resource", &headers, "");
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
    if binding.bound_certificate.is_some() && request.certificate != binding.bound_certificate {
        return unauthorized(r#"Bearer error="invalid_token""#);
    }
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

async fn introspect(
    State(fake): State<FakeServer>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let request = record(&fake, &peer, "/introspect", &headers, &body);
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

/// What the handlers know of a connection: the client certificate (DER) it
/// was made with, if it is TLS and the client sent one.
#[derive(Debug, Clone, Default)]
pub struct Peer {
    certificate: Option<Vec<u8>>,
}

impl Connected<IncomingStream<'_, TcpListener>> for Peer {
    fn connect_info(_: IncomingStream<'_, TcpListener>) -> Self {
        Self::default()
    }
}

impl Connected<IncomingStream<'_, TlsListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, TlsListener>) -> Self {
        stream.remote_addr().clone()
    }
}

/// TLS over a TCP listener: each accepted connection has finished its
/// handshake, and its "address" is its client certificate. Handshakes are
/// made one at a time, which is enough for tests; one that fails or stalls
/// is dropped.
pub struct TlsListener {
    listener: TcpListener,
    acceptor: TlsAcceptor,
}

impl Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = Peer;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, _)) = self.listener.accept().await else {
                continue;
            };
            let handshake = self.acceptor.accept(tcp);
            let Ok(Ok(tls)) = tokio::time::timeout(Duration::from_secs(10), handshake).await else {
                continue;
            };
            let certificate = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(|leaf| leaf.to_vec());
            return (tls, Peer { certificate });
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(Peer::default())
    }
}

/// A rustls server config with `certificate`, asking for a client
/// certificate and taking any, or none (the handlers decide).
fn server_config(certificate: &rcgen::CertifiedKey) -> Arc<ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(AnyClientCertificate(
        provider.signature_verification_algorithms,
    ));
    let key = PrivateKeyDer::try_from(certificate.key_pair.serialize_der()).unwrap();
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![certificate.cert.der().clone()], key)
        .unwrap();
    Arc::new(config)
}

/// Takes any client certificate whose handshake signature verifies: it is
/// an identity to compare, not a chain to trust (RFC 8705 §2.2).
#[derive(Debug)]
struct AnyClientCertificate(WebPkiSupportedAlgorithms);

impl ClientCertVerifier for AnyClientCertificate {
    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// A self-signed client certificate, as a test client holds it.
pub struct ClientCertificate {
    pub der: Vec<u8>,
    /// The certificate and its PKCS #8 key, for `client_certificate_pem`.
    pub identity_pem: Vec<u8>,
    /// Its public key as a JWK.
    pub jwk: Value,
}

impl ClientCertificate {
    pub fn new(name: &str) -> Self {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let ck = rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
        let raw = ck.key_pair.public_key_raw();
        let (x, y) = raw[1..].split_at(32);
        Self {
            der: ck.cert.der().to_vec(),
            identity_pem: format!("{}{}", ck.cert.pem(), ck.key_pair.serialize_pem()).into_bytes(),
            jwk: json!({
                "kty": "EC", "crv": "P-256",
                "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y),
            }),
        }
    }
}

impl FakeServer {
    /// An HTTP client that trusts this https fake and presents
    /// `certificate`, if given.
    pub fn http(&self, certificate: Option<&ClientCertificate>) -> reqwest::Client {
        ephemera_client::http_client(&ephemera_client::HttpClientOptions {
            extra_root_pem: self
                .root_pem
                .iter()
                .map(|p| p.clone().into_bytes())
                .collect(),
            client_certificate_pem: certificate.map(|c| c.identity_pem.clone()),
            ..Default::default()
        })
        .unwrap()
    }

    /// Discovers this fake with [`http`](Self::http)'s client.
    pub async fn client_with(
        &self,
        certificate: Option<&ClientCertificate>,
    ) -> AuthorizationServer {
        AuthorizationServer::discover_with(self.http(certificate), &self.issuer)
            .await
            .unwrap()
    }
}

//! Mutual TLS (RFC 8705): Ephemera terminating TLS itself, or believing the
//! `Client-Cert` header (RFC 9440) of a trusted proxy. A certificate bound at
//! PAR must be presented at every later step.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde_json::{json, Value};
use tempfile::TempDir;

use crate::helpers::*;

/// A self-signed certificate and its key.
struct Cert {
    der: Vec<u8>,
    identity_pem: String,
    jwk: Value,
}

impl Cert {
    fn new(name: &str) -> Self {
        let ck = rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
        let raw = ck.key_pair.public_key_raw();
        let (x, y) = raw[1..].split_at(32);
        Self {
            der: ck.cert.der().to_vec(),
            identity_pem: format!("{}{}", ck.cert.pem(), ck.key_pair.serialize_pem()),
            jwk: json!({
                "kty": "EC", "crv": "P-256",
                "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y),
                "x5c": [STANDARD.encode(ck.cert.der())],
            }),
        }
    }

    fn identity(&self) -> reqwest::Identity {
        reqwest::Identity::from_pem(self.identity_pem.as_bytes()).unwrap()
    }

    fn x5t(&self) -> String {
        ephemera_proto::jose::sha256_b64(&self.der)
    }
}

/// A server speaking TLS with a certificate for 127.0.0.1.
async fn tls_app() -> (TestApp, TempDir) {
    tls_app_with(|_| {}).await
}

/// [`tls_app`] with its configuration changed by `adjust` first; the
/// server's certificate is `cert.pem` in the directory returned.
pub async fn tls_app_with(
    adjust: impl FnOnce(&mut ephemera_server::config::RawConfig),
) -> (TestApp, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let server =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, server.cert.pem()).unwrap();
    std::fs::write(&key, server.key_pair.serialize_pem()).unwrap();
    let app = TestApp::spawn_with(|c| {
        c.tls.cert = Some(cert.clone());
        c.tls.key = Some(key.clone());
        adjust(c);
    })
    .await;
    assert!(app.base.starts_with("https://"));
    (app, dir)
}

fn bound_registration() -> String {
    json!({
        "client_name": "Certificate Agent",
        "redirect_uris": [REDIRECT],
        "grant_types": ["authorization_code", "refresh_token"],
        "tls_client_certificate_bound_access_tokens": true,
    })
    .to_string()
}

fn par_form(registration: &str) -> Vec<(&'static str, String)> {
    vec![
        ("client_id", URN.into()),
        ("response_type", "code".into()),
        ("redirect_uri", REDIRECT.into()),
        ("state", "s".into()),
        ("code_challenge", CHALLENGE.into()),
        ("code_challenge_method", "S256".into()),
        ("client_registration", registration.into()),
    ]
}

async fn push_with(
    app: &TestApp,
    client: &reqwest::Client,
    registration: &str,
) -> reqwest::Response {
    client
        .post(app.url("/par"))
        .form(&par_form(registration))
        .send()
        .await
        .unwrap()
}

async fn request_uri(res: reqwest::Response) -> String {
    assert_eq!(res.status(), 201, "{:?}", res.text().await);
    res.json::<Value>().await.unwrap()["request_uri"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn redeem_with(app: &TestApp, client: &reqwest::Client, code: &str) -> reqwest::Response {
    client
        .post(app.url("/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("client_id", URN),
        ])
        .send()
        .await
        .unwrap()
}

async fn refresh_with(app: &TestApp, client: &reqwest::Client, token: &str) -> reqwest::Response {
    client
        .post(app.url("/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", token),
            ("client_id", URN),
        ])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_certificate_bound_pushed_flow_over_mutual_tls() {
    let (app, _dir) = tls_app().await;
    let cert = Cert::new("agent-a");
    let agent = app.with_certificate(cert.identity());
    let uri = request_uri(push_with(&app, &agent, &bound_registration()).await).await;
    let code = app.authorize(URN, &uri).await;

    let stranger = app.with_certificate(Cert::new("agent-b").identity());
    assert_error(
        redeem_with(&app, &stranger, &code).await,
        400,
        "invalid_grant",
    )
    .await;
    assert_error(
        redeem_with(&app, &app.http, &code).await,
        400,
        "invalid_grant",
    )
    .await;
    let res = redeem_with(&app, &agent, &code).await;
    assert_eq!(res.status(), 200);
    let tokens: Value = res.json().await.unwrap();
    assert_eq!(tokens["token_type"], "Bearer");
    let info = app
        .introspect(tokens["access_token"].as_str().unwrap())
        .await;
    assert_eq!(info["cnf"]["x5t#S256"], cert.x5t().as_str());

    let rt = tokens["refresh_token"].as_str().unwrap();
    assert_error(
        refresh_with(&app, &app.http, rt).await,
        400,
        "invalid_grant",
    )
    .await;
    assert_error(
        refresh_with(&app, &stranger, rt).await,
        400,
        "invalid_grant",
    )
    .await;
    assert_eq!(refresh_with(&app, &agent, rt).await.status(), 200);
}

async fn revoke_with(app: &TestApp, client: &reqwest::Client, token: &str) -> reqwest::Response {
    client
        .post(app.url("/revoke"))
        .form(&[("token", token), ("client_id", URN)])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_certificate_bound_pushed_grant_is_revoked_only_over_its_certificate() {
    let (app, _dir) = tls_app().await;
    let cert = Cert::new("agent-a");
    let agent = app.with_certificate(cert.identity());
    let uri = request_uri(push_with(&app, &agent, &bound_registration()).await).await;
    let code = app.authorize(URN, &uri).await;
    let tokens: Value = redeem_with(&app, &agent, &code).await.json().await.unwrap();
    let (access, rt) = (
        tokens["access_token"].as_str().unwrap(),
        tokens["refresh_token"].as_str().unwrap(),
    );

    let stranger = app.with_certificate(Cert::new("agent-b").identity());
    for (who, client) in [("no certificate", &app.http), ("another one", &stranger)] {
        for token in [access, rt] {
            let d =
                assert_error(revoke_with(&app, client, token).await, 400, "invalid_grant").await;
            assert!(d.contains("certificate"), "{who}: {d}");
        }
    }
    assert_eq!(app.introspect(access).await["active"], true);
    assert_eq!(revoke_with(&app, &agent, rt).await.status(), 200);
    assert_eq!(app.introspect(access).await["active"], false);
    assert_eq!(app.stats().await.pushed_client_grants, 0);
}

#[tokio::test]
async fn a_registration_asking_for_certificate_bound_tokens_needs_a_certificate() {
    let (app, _dir) = tls_app().await;
    let d = assert_error(
        push_with(&app, &app.http, &bound_registration()).await,
        400,
        "invalid_request",
    )
    .await;
    assert!(d.contains("mutual TLS"));
}

#[tokio::test]
async fn a_certificate_binding_cannot_be_added_after_par() {
    let (app, _dir) = tls_app().await;
    let uri = request_uri(push_with(&app, &app.http, &registration()).await).await;
    let code = app.authorize(URN, &uri).await;
    let agent = app.with_certificate(Cert::new("late").identity());
    let d = assert_error(redeem_with(&app, &agent, &code).await, 400, "invalid_grant").await;
    assert!(d.contains("cannot be added"));
}

#[tokio::test]
async fn self_signed_tls_client_auth_with_the_pushed_certificate() {
    let (app, _dir) = tls_app().await;
    let cert = Cert::new("self-signed");
    let registration = json!({
        "redirect_uris": [REDIRECT],
        "grant_types": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": "self_signed_tls_client_auth",
        "jwks": {"keys": [cert.jwk]},
    })
    .to_string();
    let stranger = app.with_certificate(Cert::new("stranger").identity());
    assert_error(
        push_with(&app, &stranger, &registration).await,
        401,
        "invalid_client",
    )
    .await;
    assert_error(
        push_with(&app, &app.http, &registration).await,
        401,
        "invalid_client",
    )
    .await;

    let agent = app.with_certificate(cert.identity());
    let uri = request_uri(push_with(&app, &agent, &registration).await).await;
    let code = app.authorize(URN, &uri).await;
    assert_error(
        redeem_with(&app, &stranger, &code).await,
        401,
        "invalid_client",
    )
    .await;
    let res = redeem_with(&app, &agent, &code).await;
    assert_eq!(res.status(), 200);
    let tokens: Value = res.json().await.unwrap();
    let info = app
        .introspect(tokens["access_token"].as_str().unwrap())
        .await;
    assert_eq!(info["cnf"]["x5t#S256"], cert.x5t().as_str());
}

#[tokio::test]
async fn self_signed_tls_client_auth_needs_a_certificate_in_the_keys() {
    let (app, _dir) = tls_app().await;
    let mut jwk = Cert::new("x").jwk;
    jwk.as_object_mut().unwrap().remove("x5c");
    let registration = json!({
        "redirect_uris": [REDIRECT],
        "token_endpoint_auth_method": "self_signed_tls_client_auth",
        "jwks": {"keys": [jwk]},
    })
    .to_string();
    assert_error(
        push_with(&app, &app.http, &registration).await,
        400,
        "invalid_client_metadata",
    )
    .await;
}

fn client_cert_header(cert: &Cert) -> String {
    format!(":{}:", STANDARD.encode(&cert.der))
}

#[tokio::test]
async fn a_trusted_proxys_client_cert_header_binds_the_certificate() {
    let app = TestApp::spawn_with(|c| c.trusted_proxies = vec!["127.0.0.0/8".into()]).await;
    let cert = Cert::new("behind-proxy");
    let res = app
        .http
        .post(app.url("/par"))
        .header("Client-Cert", client_cert_header(&cert))
        .form(&par_form(&bound_registration()))
        .send()
        .await
        .unwrap();
    let uri = request_uri(res).await;
    let code = app.authorize(URN, &uri).await;
    let res = app
        .http
        .post(app.url("/token"))
        .header("Client-Cert", client_cert_header(&cert))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("client_id", URN),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let tokens: Value = res.json().await.unwrap();
    let info = app
        .introspect(tokens["access_token"].as_str().unwrap())
        .await;
    assert_eq!(info["cnf"]["x5t#S256"], cert.x5t().as_str());
}

#[tokio::test]
async fn a_client_cert_header_from_an_untrusted_peer_is_ignored() {
    let app = TestApp::spawn().await;
    let cert = Cert::new("forged");
    let res = app
        .http
        .post(app.url("/par"))
        .header("Client-Cert", client_cert_header(&cert))
        .form(&par_form(&bound_registration()))
        .send()
        .await
        .unwrap();
    let d = assert_error(res, 400, "invalid_request").await;
    assert!(d.contains("mutual TLS"));
}

#[tokio::test]
async fn a_registered_client_binds_its_certificate_at_the_token_endpoint() {
    let (app, _dir) = tls_app().await;
    let secret = app.add_confidential_client("svc", false).await;
    let cert = Cert::new("svc");
    let res = app
        .with_certificate(cert.identity())
        .post(app.url("/token"))
        .basic_auth("svc", Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let tokens: Value = res.json().await.unwrap();
    let info = app
        .introspect(tokens["access_token"].as_str().unwrap())
        .await;
    assert_eq!(info["cnf"]["x5t#S256"], cert.x5t().as_str());
}

#[tokio::test]
async fn metadata_advertises_certificate_bound_tokens() {
    let (app, _dir) = tls_app().await;
    let m: Value = app
        .http
        .get(app.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(m["issuer"], app.base.as_str());
    assert_eq!(m["tls_client_certificate_bound_access_tokens"], true);
    assert!(m["token_endpoint_auth_methods_supported"]
        .as_array()
        .unwrap()
        .contains(&json!("self_signed_tls_client_auth")));
}

#[tokio::test]
async fn userinfo_takes_a_certificate_bound_token_only_over_its_certificate() {
    let (app, _dir) = tls_app().await;
    let cert = Cert::new("agent-a");
    let agent = app.with_certificate(cert.identity());
    let mut form = par_form(&bound_registration());
    form.push(("scope", "openid".into()));
    form.push(("nonce", "n-1".into()));
    let res = agent
        .post(app.url("/par"))
        .form(&form)
        .send()
        .await
        .unwrap();
    let code = app.authorize(URN, &request_uri(res).await).await;
    let tokens: Value = redeem_with(&app, &agent, &code).await.json().await.unwrap();
    let bearer = format!("Bearer {}", tokens["access_token"].as_str().unwrap());
    let userinfo = |client: reqwest::Client| {
        let (url, bearer) = (app.url("/userinfo"), bearer.clone());
        async move {
            client
                .get(url)
                .header("Authorization", bearer)
                .send()
                .await
                .unwrap()
        }
    };

    let stranger = app.with_certificate(Cert::new("agent-b").identity());
    assert_error(userinfo(stranger).await, 401, "invalid_token").await;
    assert_error(userinfo(app.http.clone()).await, 401, "invalid_token").await;
    let ok = userinfo(agent).await;
    assert_eq!(ok.status(), 200);
    assert!(ok.json::<Value>().await.unwrap()["sub"].is_string());
}

#[tokio::test]
async fn a_certificate_bound_jwt_access_token_names_the_certificate_in_cnf() {
    const API: &str = "https://api.example/";
    let (app, _dir) = tls_app_with(|c| {
        c.resources = vec![ephemera_server::config::RawResourceEntry {
            identifier: API.into(),
            token_format: Some("jwt".into()),
            ..Default::default()
        }
        .into()]
    })
    .await;
    let cert = Cert::new("agent-a");
    let agent = app.with_certificate(cert.identity());
    let mut form = par_form(&bound_registration());
    form.push(("resource", API.into()));
    let res = agent
        .post(app.url("/par"))
        .form(&form)
        .send()
        .await
        .unwrap();
    let code = app.authorize(URN, &request_uri(res).await).await;

    let res = redeem_with(&app, &agent, &code).await;

    assert_eq!(res.status(), 200);
    let tokens: Value = res.json().await.unwrap();
    let token = tokens["access_token"].as_str().unwrap();
    assert_eq!(tokens["token_type"], "Bearer");
    let claims: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["cnf"], json!({"x5t#S256": cert.x5t()}));
    assert_eq!(claims["aud"], API);
}

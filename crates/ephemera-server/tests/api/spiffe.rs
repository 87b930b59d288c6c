//! SPIFFE workloads as clients (draft-ietf-oauth-spiffe-client-auth) over
//! real HTTP: a trust domain of the test's own (P-256 keys in a SPIFFE
//! bundle, as a file or served by a bundle endpoint on 127.0.0.1), whose
//! workloads authenticate at the token endpoint with JWT-SVIDs.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::routing::get;
use axum::{Json, Router};
use ephemera_proto::spiffe::JWT_SPIFFE_ASSERTION;
use ephemera_server::config::spiffe::{RawRule, RawTrustDomain};
use ephemera_server::config::trusted_issuers::RawTrustedIssuer;
use ephemera_server::config::{RawConfig, RawExchange, RawExchangePolicy, RawResourceEntry};
use serde_json::{json, Value};

use crate::helpers::{assert_error, TestApp};
use crate::keys::{random_id, TestKey};

const DOMAIN: &str = "example.org";
const API: &str = "https://api.example/";
const PROD: &str = "spiffe://example.org/ns/prod/sa/reporter";
const BATCH: &str = "spiffe://example.org/ns/batch/sa/nightly";
const AGENT: &str = "spiffe://example.org/ns/agents/sa/assistant";
const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// A SPIFFE bundle holding `keys` as `jwt-svid` keys.
fn bundle(keys: &[&TestKey], sequence: u64) -> Value {
    let keys: Vec<Value> = keys
        .iter()
        .map(|k| {
            let mut jwk = k.jwk.clone();
            jwk["kid"] = json!(k.jkt);
            jwk["use"] = json!("jwt-svid");
            jwk
        })
        .collect();
    json!({"keys": keys, "spiffe_sequence": sequence, "spiffe_refresh_hint": 300})
}

/// `prod` workloads get `client_credentials` (scope `read`, for `API`);
/// `batch` ones only token exchange.
fn rules() -> Vec<RawRule> {
    vec![
        RawRule {
            ids: vec!["spiffe://example.org/ns/prod/*".into()],
            grants: vec!["client_credentials".into()],
            scopes: Some(vec!["read".into()]),
            resources: Some(vec![API.into()]),
        },
        RawRule {
            ids: vec![BATCH.into()],
            grants: vec![EXCHANGE.into()],
            scopes: None,
            resources: None,
        },
        RawRule {
            ids: vec![AGENT.into()],
            grants: vec![JWT_BEARER.into()],
            scopes: None,
            resources: Some(vec![API.into()]),
        },
    ]
}

/// The test's trust domain with its bundle in a file.
struct FileDomain {
    key: TestKey,
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl FileDomain {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bundle.json");
        let key = TestKey::new();
        std::fs::write(&path, bundle(&[&key], 1).to_string()).unwrap();
        Self {
            key,
            path,
            _dir: dir,
        }
    }

    async fn app(&self) -> TestApp {
        self.app_with(|_| {}).await
    }

    /// A server serving `API` and trusting this domain, `adjust`ed.
    async fn app_with(&self, adjust: impl FnOnce(&mut RawConfig)) -> TestApp {
        let raw = RawTrustDomain {
            trust_domain: DOMAIN.into(),
            bundle_file: Some(self.path.clone()),
            rules: rules(),
            ..RawTrustDomain::default()
        };
        TestApp::spawn_with(|config| {
            config.resources = vec![API.into()];
            config.spiffe.insert("corp".into(), raw);
            adjust(config);
        })
        .await
    }
}

/// A JWT-SVID for `id` signed by `key`, its claims changed by `extra`.
fn svid(key: &TestKey, app: &TestApp, id: &str, extra: Value) -> String {
    let now = app.now();
    let mut claims = json!({"sub": id, "aud": [app.base], "exp": now + 300, "iat": now});
    for (k, v) in extra.as_object().unwrap() {
        claims[k] = v.clone();
    }
    key.sign(json!({"typ": "JWT", "kid": key.jkt}), &claims)
}

/// `client_credentials` for `API`, authenticated by `svid`, `extra`
/// adding or replacing parameters.
async fn token(app: &TestApp, svid: &str, extra: &[(&str, &str)]) -> reqwest::Response {
    let mut form = vec![
        ("grant_type", "client_credentials"),
        ("client_assertion_type", JWT_SPIFFE_ASSERTION),
        ("client_assertion", svid),
        ("scope", "read"),
        ("resource", API),
    ];
    for (name, value) in extra {
        match form.iter_mut().find(|(n, _)| n == name) {
            Some(kept) => kept.1 = value,
            None => form.push((name, value)),
        }
    }
    app.post_form("/token", &form).await
}

#[tokio::test]
async fn a_workload_with_a_jwt_svid_gets_a_client_credentials_token() {
    // Arrange
    let domain = FileDomain::new();
    let app = domain.app().await;
    let svid = svid(&domain.key, &app, PROD, json!({}));

    // Act
    let res = token(&app, &svid, &[("client_id", PROD)]).await;

    // Assert
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert!(body.get("refresh_token").is_none(), "{body}");
    let info = app.introspect(body["access_token"].as_str().unwrap()).await;
    assert_eq!(info["active"], true);
    assert_eq!(info["client_id"], PROD);
    assert_eq!(info["sub"], PROD);
    assert_eq!(info["client_kind"], "workload");
    assert_eq!(info["scope"], "read");
    assert_eq!(info["aud"], API);
    assert_eq!(
        info["client_metadata"],
        json!({"trust_domain": DOMAIN, "spiffe": "corp"})
    );
}

#[tokio::test]
async fn a_rotated_bundle_file_is_read_again_for_a_new_key() {
    // Arrange
    let domain = FileDomain::new();
    let app = domain.app().await;
    let next = TestKey::new();
    std::fs::write(&domain.path, bundle(&[&next], 2).to_string()).unwrap();

    // Act
    let res = token(&app, &svid(&next, &app, PROD, json!({})), &[]).await;

    // Assert
    assert_eq!(res.status(), 200);
    // A key it lacks after that waits for the next read.
    let third = TestKey::new();
    std::fs::write(&domain.path, bundle(&[&third], 3).to_string()).unwrap();
    let res = token(&app, &svid(&third, &app, PROD, json!({})), &[]).await;
    let d = assert_error(res, 401, "invalid_client").await;
    assert!(d.contains("kid"), "{d}");
    app.advance(31);
    let res = token(&app, &svid(&third, &app, PROD, json!({})), &[]).await;
    assert_eq!(res.status(), 200);
}

/// A bundle endpoint on 127.0.0.1 serving `served`, counting its fetches.
async fn bundle_endpoint(served: Arc<Mutex<Value>>) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fetches = Arc::new(AtomicUsize::new(0));
    let counted = fetches.clone();
    let app = Router::new().route(
        "/bundle",
        get(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            let body = served.lock().unwrap().clone();
            async move { Json(body) }
        }),
    );
    let url = format!("http://{}/bundle", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, fetches)
}

#[tokio::test]
async fn a_bundle_endpoint_is_fetched_once_and_again_for_a_new_key() {
    // Arrange
    let first = TestKey::new();
    let served = Arc::new(Mutex::new(bundle(&[&first], 1)));
    let (url, fetches) = bundle_endpoint(served.clone()).await;
    let raw = RawTrustDomain {
        trust_domain: DOMAIN.into(),
        bundle_endpoint: Some(url),
        rules: rules(),
        ..RawTrustDomain::default()
    };
    let app = TestApp::spawn_with(|config| {
        config.resources = vec![API.into()];
        config.spiffe.insert("corp".into(), raw);
    })
    .await;

    // Act
    for _ in 0..2 {
        let res = token(&app, &svid(&first, &app, PROD, json!({})), &[]).await;
        assert_eq!(res.status(), 200);
    }
    let next = TestKey::new();
    *served.lock().unwrap() = bundle(&[&first, &next], 2);
    app.advance(31);
    let res = token(&app, &svid(&next, &app, PROD, json!({})), &[]).await;

    // Assert
    assert_eq!(res.status(), 200);
    assert_eq!(fetches.load(Ordering::SeqCst), 2);
    // After its refresh hint, the bundle is fetched again unasked.
    app.advance(301);
    let res = token(&app, &svid(&first, &app, PROD, json!({})), &[]).await;
    assert_eq!(res.status(), 200);
    assert_eq!(fetches.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn svids_that_do_not_hold_are_invalid_client_saying_why() {
    // Arrange
    let domain = FileDomain::new();
    let app = domain.app().await;
    let stranger = TestKey::new();
    let forged = stranger.sign(
        json!({"typ": "JWT", "kid": domain.key.jkt}),
        &json!({"sub": PROD, "aud": app.base, "exp": app.now() + 60}),
    );
    let cases = [
        (
            svid(
                &domain.key,
                &app,
                "spiffe://other.org/ns/prod/sa/x",
                json!({}),
            ),
            "trust domain `other.org` is not trusted",
        ),
        (forged, "signature"),
        (
            svid(&domain.key, &app, PROD, json!({"exp": app.now() - 120})),
            "expired",
        ),
        (
            svid(&domain.key, &app, PROD, json!({"exp": app.now() + 7200})),
            "no more than 900 seconds",
        ),
        (
            svid(
                &domain.key,
                &app,
                PROD,
                json!({"aud": "https://elsewhere.example"}),
            ),
            "aud must name this server",
        ),
        (
            svid(
                &domain.key,
                &app,
                "spiffe://example.org/ns/dev/sa/x",
                json!({}),
            ),
            "outside every rule of [spiffe.corp]",
        ),
        (
            svid(&domain.key, &app, "workload", json!({})),
            "not a SPIFFE ID",
        ),
    ];

    for (assertion, expected) in cases {
        // Act
        let res = token(&app, &assertion, &[]).await;

        // Assert
        let d = assert_error(res, 401, "invalid_client").await;
        assert!(d.contains(expected), "{expected:?} not in {d:?}");
    }
    let res = token(
        &app,
        &svid(&domain.key, &app, PROD, json!({})),
        &[("client_id", BATCH)],
    )
    .await;
    let d = assert_error(res, 401, "invalid_client").await;
    assert!(d.contains("client_id"), "{d}");
}

#[tokio::test]
async fn a_jwt_svid_with_a_jti_is_taken_once_and_one_without_until_it_expires() {
    // Arrange
    let domain = FileDomain::new();
    let app = domain.app().await;
    let once = svid(&domain.key, &app, PROD, json!({"jti": random_id()}));
    let reused = svid(&domain.key, &app, PROD, json!({}));

    // Act
    let first = token(&app, &once, &[]).await;
    let second = token(&app, &once, &[]).await;

    // Assert
    assert_eq!(first.status(), 200);
    let d = assert_error(second, 401, "invalid_client").await;
    assert!(d.contains("jti"), "{d}");
    for _ in 0..2 {
        assert_eq!(token(&app, &reused, &[]).await.status(), 200);
    }
}

#[tokio::test]
async fn what_the_rule_does_not_allow_is_refused() {
    // Arrange
    let domain = FileDomain::new();
    let app = domain.app().await;

    // Act
    let batch = token(&app, &svid(&domain.key, &app, BATCH, json!({})), &[]).await;
    let other_resource = token(
        &app,
        &svid(&domain.key, &app, PROD, json!({})),
        &[("resource", "https://other.example/")],
    )
    .await;
    let wider_scope = token(
        &app,
        &svid(&domain.key, &app, PROD, json!({})),
        &[("scope", "write")],
    )
    .await;

    // Assert
    let d = assert_error(batch, 400, "unauthorized_client").await;
    assert!(d.contains("client_credentials"), "{d}");
    assert_error(other_resource, 400, "invalid_target").await;
    assert_error(wider_scope, 400, "invalid_scope").await;
}

#[tokio::test]
async fn a_workload_revokes_its_token_with_a_jwt_svid() {
    // Arrange
    let domain = FileDomain::new();
    let app = domain.app().await;
    let res = token(&app, &svid(&domain.key, &app, PROD, json!({})), &[]).await;
    let body: Value = res.json().await.unwrap();
    let access = body["access_token"].as_str().unwrap();

    // Act
    let res = app
        .post_form(
            "/revoke",
            &[
                ("token", access),
                ("client_assertion_type", JWT_SPIFFE_ASSERTION),
                (
                    "client_assertion",
                    &svid(&domain.key, &app, PROD, json!({})),
                ),
            ],
        )
        .await;

    // Assert
    assert_eq!(res.status(), 200);
    assert_eq!(app.introspect(access).await["active"], false);
}

#[tokio::test]
async fn a_workload_whose_rule_gives_it_token_exchange_exchanges_another_workloads_token() {
    // Arrange
    const DOWNSTREAM: &str = "https://downstream.example/";
    let domain = FileDomain::new();
    let app = domain
        .app_with(|config| {
            config.resources.push(
                RawResourceEntry {
                    identifier: DOWNSTREAM.into(),
                    exchange: Some(RawExchange::Policy(RawExchangePolicy {
                        clients: Some(vec![BATCH.into()]),
                        from: Some(vec![API.into()]),
                        impersonation: Vec::new(),
                    })),
                    ..RawResourceEntry::default()
                }
                .into(),
            );
        })
        .await;
    let res = token(&app, &svid(&domain.key, &app, PROD, json!({})), &[]).await;
    let body: Value = res.json().await.unwrap();
    let subject = body["access_token"].as_str().unwrap();

    // Act
    let res = app
        .post_form(
            "/token",
            &[
                ("grant_type", EXCHANGE),
                ("subject_token", subject),
                (
                    "subject_token_type",
                    "urn:ietf:params:oauth:token-type:access_token",
                ),
                ("resource", DOWNSTREAM),
                ("client_assertion_type", JWT_SPIFFE_ASSERTION),
                (
                    "client_assertion",
                    &svid(&domain.key, &app, BATCH, json!({})),
                ),
            ],
        )
        .await;

    // Assert
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    let info = app.introspect(body["access_token"].as_str().unwrap()).await;
    assert_eq!(info["client_id"], BATCH);
    assert_eq!(info["aud"], DOWNSTREAM);
    assert_eq!(info["act"]["sub"], BATCH);
}

/// A certificate authority of the test's own: an X.509-SVID issuer.
struct Authority {
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
}

impl Authority {
    fn new() -> Self {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "example.org SVID authority");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Self { cert, key }
    }

    /// Its root as an `x509-svid` key of a SPIFFE bundle.
    fn bundle_key(&self) -> Value {
        use base64::Engine as _;
        let der = base64::engine::general_purpose::STANDARD.encode(self.cert.der());
        json!({"kty": "EC", "crv": "P-256", "use": "x509-svid", "x5c": [der]})
    }

    /// An X.509-SVID for `id`: its DER, and the PEM identity mutual TLS presents.
    fn svid(&self, id: &str) -> (Vec<u8>, reqwest::Identity) {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.subject_alt_names = vec![rcgen::SanType::URI(id.try_into().unwrap())];
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        let pem = format!("{}{}", cert.pem(), key.serialize_pem());
        (
            cert.der().to_vec(),
            reqwest::Identity::from_pem(pem.as_bytes()).unwrap(),
        )
    }
}

#[tokio::test]
async fn an_x509_svid_over_mutual_tls_gets_a_certificate_bound_token_and_another_cas_is_refused() {
    // Arrange
    let authority = Authority::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bundle.json");
    std::fs::write(
        &path,
        json!({"keys": [authority.bundle_key()], "spiffe_sequence": 1}).to_string(),
    )
    .unwrap();
    let raw = RawTrustDomain {
        trust_domain: DOMAIN.into(),
        bundle_file: Some(path),
        rules: rules(),
        ..RawTrustDomain::default()
    };
    let (app, _tls) = crate::mtls::tls_app_with(|config| {
        config.resources = vec![API.into()];
        config.spiffe.insert("corp".into(), raw);
    })
    .await;
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", PROD),
        ("scope", "read"),
        ("resource", API),
    ];
    let (der, identity) = authority.svid(PROD);

    // Act
    let res = app
        .with_certificate(identity)
        .post(app.url("/token"))
        .form(&form)
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    let info = app.introspect(body["access_token"].as_str().unwrap()).await;
    assert_eq!(info["client_id"], PROD);
    assert_eq!(info["client_kind"], "workload");
    assert_eq!(
        info["cnf"]["x5t#S256"],
        ephemera_proto::jose::sha256_b64(&der)
    );
    let (_, stranger) = Authority::new().svid(PROD);
    let res = app
        .with_certificate(stranger)
        .post(app.url("/token"))
        .form(&form)
        .send()
        .await
        .unwrap();
    let d = assert_error(res, 401, "invalid_client").await;
    assert!(d.contains("does not chain"), "{d}");
    let (_, other_id) = authority.svid("spiffe://example.org/ns/prod/sa/other");
    let res = app
        .with_certificate(other_id)
        .post(app.url("/token"))
        .form(&form)
        .send()
        .await
        .unwrap();
    let d = assert_error(res, 401, "invalid_client").await;
    assert!(d.contains("URI SAN"), "{d}");
    let res = app.post_form("/token", &form).await;
    let d = assert_error(res, 401, "invalid_client").await;
    assert!(d.contains("X.509-SVID"), "{d}");
}

#[tokio::test]
async fn a_workload_whose_rule_gives_it_the_jwt_bearer_grant_presents_an_id_jag_within_its_resources(
) {
    // Arrange
    const IDP: &str = "https://idp.acme.example";
    const OTHER: &str = "https://other.example/";
    let domain = FileDomain::new();
    let idp = TestKey::new();
    let trusted = RawTrustedIssuer {
        issuer: IDP.into(),
        jwks: Some(idp.jwks().to_string()),
        grants: vec!["id-jag".into()],
        ..RawTrustedIssuer::default()
    };
    let app = domain
        .app_with(|config| {
            config.resources.push(OTHER.into());
            config.trusted_issuers.insert("acme".into(), trusted);
        })
        .await;
    let id_jag = |resource: &str| {
        let now = app.now();
        idp.sign(
            json!({"typ": "oauth-id-jag+jwt", "kid": idp.jkt}),
            &json!({
                "iss": IDP, "sub": "U0194", "aud": app.base, "client_id": AGENT,
                "jti": random_id(), "exp": now + 300, "iat": now, "resource": resource,
                "scope": "read", "preferred_username": "ada",
            }),
        )
    };
    let present = |assertion: String| {
        let svid = svid(&domain.key, &app, AGENT, json!({}));
        let app = &app;
        async move {
            app.post_form(
                "/token",
                &[
                    ("grant_type", JWT_BEARER),
                    ("assertion", &assertion),
                    ("client_assertion_type", JWT_SPIFFE_ASSERTION),
                    ("client_assertion", &svid),
                ],
            )
            .await
        }
    };

    // Act
    let res = present(id_jag(API)).await;
    let beyond = present(id_jag(OTHER)).await;

    // Assert
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    let info = app.introspect(body["access_token"].as_str().unwrap()).await;
    assert_eq!(info["client_id"], AGENT);
    assert_eq!(info["username"], "ada");
    assert_eq!(info["aud"], API);
    let d = assert_error(beyond, 400, "invalid_target").await;
    assert!(d.contains("its rule's resources"), "{d}");
}

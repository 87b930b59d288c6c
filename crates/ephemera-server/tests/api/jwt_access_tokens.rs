//! JWT access tokens (RFC 9068) for the resources the registry says take
//! them: the header and claims, the signature against `/jwks`, the binding
//! in `cnf`, `client_credentials`, refresh, revocation seen by
//! introspection, and `ephemera-resource` validating them locally (key
//! rotation, and what it refuses). The same tokens checked by the `jose`
//! npm library are in `jose`'s test below (Node, `tests/jose/`).

use std::path::PathBuf;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ephemera_proto::access_token::{self, Expected};
use ephemera_proto::jose::sha256_b64;
use ephemera_resource::{IntrospectionConfig, IntrospectionLayer, JwtValidation, TokenContext};
use ephemera_server::config::RawResourceEntry;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::keys::{random_id, TestKey};
use crate::support::node;

/// Takes JWT access tokens, for 600 seconds, `read` only.
const API: &str = "https://api.example/";
/// Takes opaque ones.
const FILES: &str = "https://files.example/";

async fn app() -> TestApp {
    TestApp::spawn_with(|c| {
        c.resources = vec![
            RawResourceEntry {
                identifier: API.into(),
                scopes: Some(vec!["read".into()]),
                token_format: Some("jwt".into()),
                access_token_lifetime: Some(600),
                ..RawResourceEntry::default()
            }
            .into(),
            FILES.into(),
        ];
    })
    .await
}

/// The pushed client's tokens for `resource` with `scope`, PAR and the token
/// request bound to `dpop` when given.
async fn tokens_for(app: &TestApp, resource: &str, scope: &str, dpop: Option<&TestKey>) -> Value {
    let registration = registration();
    let mut par = app.http.post(app.url("/par")).form(&[
        ("client_id", URN),
        ("response_type", "code"),
        ("redirect_uri", REDIRECT),
        ("state", "s"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
        ("client_registration", registration.as_str()),
        ("resource", resource),
        ("scope", scope),
        ("nonce", "n-0123456789"),
    ]);
    if let Some(key) = dpop {
        par = par.header("DPoP", key.proof(&app.url("/par"), app.now()));
    }
    let res = par.send().await.unwrap();
    assert_eq!(res.status(), 201, "{:?}", res.text().await);
    let request_uri: Value = res.json().await.unwrap();
    let code = app
        .authorize(URN, request_uri["request_uri"].as_str().unwrap())
        .await;
    let mut token = app.http.post(app.url("/token")).form(&[
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
        ("client_id", URN),
    ]);
    if let Some(key) = dpop {
        token = token.header("DPoP", key.proof(&app.url("/token"), app.now()));
    }
    let res = token.send().await.unwrap();
    assert_eq!(res.status(), 200, "{:?}", res.text().await);
    res.json().await.unwrap()
}

/// A part of a compact JWS, decoded.
fn part(jwt: &str, index: usize) -> Value {
    let segment = jwt.split('.').nth(index).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segment).unwrap()).unwrap()
}

/// `token` verified against the server's `/jwks` as a resource would, for
/// `audience`; the claims as JSON.
async fn verified(app: &TestApp, token: &str, audience: &str) -> Value {
    let jwks: Value = app
        .http
        .get(app.url("/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let keys = ephemera_proto::id_token::signing_keys(&jwks);
    let expected = Expected {
        issuer: &app.base,
        audience,
        now: app.now(),
        leeway: 0,
    };
    let claims = access_token::verify(token, &keys, &expected).unwrap();
    serde_json::to_value(claims).unwrap()
}

async fn alice_id(app: &TestApp) -> String {
    let alice = app.ctx.store.find_user_by_name("alice").await.unwrap();
    alice.unwrap().id
}

#[tokio::test]
async fn a_jwt_resource_gets_a_signed_at_jwt_with_the_rfc_9068_claims() {
    let app = app().await;

    let tokens = tokens_for(&app, API, "read write openid", None).await;

    let token = tokens["access_token"].as_str().unwrap();
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 600);
    let header = part(token, 0);
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "ES256");
    let claims = verified(&app, token, API).await;
    assert_eq!(header["kid"], app.ctx.keys.get().signing[0].0.kid.as_str());
    assert_eq!(claims["iss"], app.base.as_str());
    assert_eq!(claims["aud"], API);
    assert_eq!(claims["sub"], alice_id(&app).await.as_str());
    assert_eq!(claims["client_id"], URN);
    // `write` is not among what the resource accepts; `openid` is for
    // /userinfo, and stays.
    assert_eq!(claims["scope"], "openid read", "{claims}");
    assert_eq!(tokens["scope"], "openid read");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        600
    );
    assert!(claims["jti"].as_str().is_some_and(|j| j.len() >= 16));
    assert!(claims["auth_time"].is_i64(), "{claims}");
    assert!(claims.get("cnf").is_none(), "{claims}");
    // Introspection knows the token, as it knows an opaque one.
    let info = app.introspect(token).await;
    assert_eq!(info["active"], true);
    assert_eq!(info["aud"], API);
    assert_eq!(info["grant_id"], claims["grant_id"]);
    // And so does /userinfo.
    let res = app
        .http
        .get(app.url("/userinfo"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn opaque_tokens_stay_the_default() {
    let app = app().await;

    let for_files = tokens_for(&app, FILES, "read", None).await;
    let plain = TestApp::spawn().await.pushed_tokens(None).await;

    for tokens in [for_files, plain] {
        let token = tokens["access_token"].as_str().unwrap();
        assert!(!access_token::is_jwt(token), "{token}");
        assert_eq!(token.len(), 43);
    }
}

#[tokio::test]
async fn a_dpop_bound_jwt_names_the_key_in_cnf_jkt() {
    let app = app().await;
    let key = TestKey::new();

    let tokens = tokens_for(&app, API, "read", Some(&key)).await;

    assert_eq!(tokens["token_type"], "DPoP");
    let claims = verified(&app, tokens["access_token"].as_str().unwrap(), API).await;
    assert_eq!(claims["cnf"], json!({"jkt": key.jkt}));
}

#[tokio::test]
async fn a_client_credentials_jwt_names_the_client_as_its_subject() {
    let app = app().await;
    let secret = app.add_confidential_client("svc", false).await;

    let res = app
        .http
        .post(app.url("/token"))
        .basic_auth("svc", Some(secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("resource", API),
            ("scope", "read"),
        ])
        .send()
        .await
        .unwrap();

    assert_eq!(res.status(), 200);
    let tokens: Value = res.json().await.unwrap();
    let claims = verified(&app, tokens["access_token"].as_str().unwrap(), API).await;
    assert_eq!(claims["sub"], "svc");
    assert_eq!(claims["client_id"], "svc");
    assert!(claims.get("auth_time").is_none(), "{claims}");
}

#[tokio::test]
async fn a_refresh_gives_a_new_jwt_and_revoking_one_makes_introspection_say_inactive() {
    let app = app().await;
    let tokens = tokens_for(&app, API, "read", None).await;
    let first = tokens["access_token"].as_str().unwrap();

    let res = app
        .post_form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
                ("client_id", URN),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
    let refreshed: Value = res.json().await.unwrap();
    let second = refreshed["access_token"].as_str().unwrap();
    let (a, b) = (
        verified(&app, first, API).await,
        verified(&app, second, API).await,
    );
    assert_ne!(a["jti"], b["jti"]);
    assert_eq!(a["grant_id"], b["grant_id"]);

    let res = app
        .post_form("/revoke", &[("token", second), ("client_id", URN)])
        .await;
    assert_eq!(res.status(), 200);

    assert_eq!(app.introspect(second).await["active"], false);
    assert_eq!(app.introspect(first).await["active"], true);
    // Revoking the refresh token ends the grant, and every token of it.
    let res = app
        .post_form(
            "/revoke",
            &[
                ("token", refreshed["refresh_token"].as_str().unwrap()),
                ("client_id", URN),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(app.introspect(first).await["active"], false);
}

async fn whoami(ctx: TokenContext) -> String {
    ctx.subject.unwrap_or_default()
}

/// A resource server for [`API`] behind the layer, validating JWTs locally;
/// its introspection endpoint goes nowhere, so only local validation can
/// let a request through. Returns the URL of its `/whoami`.
async fn local_resource(app: &TestApp, settings: JwtValidation) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let config = IntrospectionConfig::new(
        "http://127.0.0.1:9/introspect",
        "rs",
        RS_SECRET,
        app.base.clone(),
    )
    .audience(API)
    .public_base_url(ephemera_client::Url::parse(&base).unwrap())
    .jwt_validation(settings);
    let api = Router::new()
        .route("/whoami", get(whoami))
        .layer(IntrospectionLayer::new(config));
    tokio::spawn(async move { axum::serve(listener, api).await.unwrap() });
    format!("{base}/whoami")
}

async fn call(app: &TestApp, url: &str, scheme: &str, token: &str, proof: Option<String>) -> u16 {
    let mut req = app
        .http
        .get(url)
        .header("Authorization", format!("{scheme} {token}"));
    if let Some(p) = proof {
        req = req.header("DPoP", p);
    }
    req.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn the_resource_layer_validates_them_locally_and_follows_a_key_rotation() {
    let app = app().await;
    let resource = local_resource(
        &app,
        JwtValidation {
            min_refetch_interval: Duration::ZERO,
            ..JwtValidation::default()
        },
    )
    .await;
    let before = tokens_for(&app, API, "read", None).await;
    let token = before["access_token"].as_str().unwrap();
    assert_eq!(call(&app, &resource, "Bearer", token, None).await, 200);

    // `ephemera keys rotate`, then the reload every node does.
    let store = app.ctx.store.as_ref();
    let cipher = ephemera_server::service::keys::KeyCipher::new(None);
    let kid = ephemera_server::service::keys::rotate(store, &cipher, app.now())
        .await
        .unwrap();
    app.ctx.keys.reload(store, app.now()).await.unwrap();
    let after = tokens_for(&app, API, "read", None).await;
    let rotated = after["access_token"].as_str().unwrap();
    assert_eq!(part(rotated, 0)["kid"], kid.as_str());

    assert_eq!(call(&app, &resource, "Bearer", rotated, None).await, 200);
    // The retired key is still published: its tokens still pass.
    assert_eq!(call(&app, &resource, "Bearer", token, None).await, 200);
}

#[tokio::test]
async fn the_resource_layer_refuses_another_audience_an_expired_token_and_a_bound_one_without_its_proof(
) {
    let app = app().await;
    let resource = local_resource(&app, JwtValidation::default()).await;
    let key = TestKey::new();
    let bound = tokens_for(&app, API, "read", Some(&key)).await;
    let bound = bound["access_token"].as_str().unwrap();
    // A token for another resource of the same server, made a JWT too.
    let other = TestApp::spawn_with(|c| {
        c.resources = vec![RawResourceEntry {
            identifier: FILES.into(),
            token_format: Some("jwt".into()),
            ..RawResourceEntry::default()
        }
        .into()]
    })
    .await;
    let foreign = tokens_for(&other, FILES, "read", None).await;
    // Issued two hours ago by the server's clock.
    app.advance(-7200);
    let expired = tokens_for(&app, API, "read", None).await;
    app.advance(7200);
    let proof = |method: &str| {
        key.proof_with(json!({
            "jti": random_id(), "htm": method, "htu": resource, "iat": app.now(),
            "ath": sha256_b64(bound.as_bytes()),
        }))
    };

    let statuses = [
        call(
            &app,
            &resource,
            "Bearer",
            foreign["access_token"].as_str().unwrap(),
            None,
        )
        .await,
        call(
            &app,
            &resource,
            "Bearer",
            expired["access_token"].as_str().unwrap(),
            None,
        )
        .await,
        call(&app, &resource, "Bearer", bound, None).await,
        call(&app, &resource, "DPoP", bound, None).await,
        call(&app, &resource, "DPoP", bound, Some(proof("POST"))).await,
        call(&app, &resource, "DPoP", bound, Some(proof("GET"))).await,
    ];

    assert_eq!(statuses, [401, 401, 401, 401, 401, 200]);
}

/// The `jose` npm package (pinned in `tests/jose/`), a JOSE library no one
/// here wrote: `jwtVerify` with `createRemoteJWKSet` against `/jwks`,
/// `typ: 'at+jwt'`, the issuer and the audience.
fn jose_folder() -> Option<PathBuf> {
    node::folder("jose", "jose", "the jose JWT access token test")
}

#[tokio::test]
async fn the_jose_library_verifies_a_jwt_access_token_against_the_jwks() {
    let Some(dir) = jose_folder() else { return };
    let app = app().await;
    let key = TestKey::new();
    let tokens = tokens_for(&app, API, "read", Some(&key)).await;
    let token = tokens["access_token"].as_str().unwrap();
    let opaque = tokens_for(&app, FILES, "read", None).await;

    let out = node::run(
        &dir,
        "verify.mjs",
        &[
            ("JWKS_URI", app.url("/jwks").as_str()),
            ("ISSUER", app.base.as_str()),
            ("AUDIENCE", API),
            ("TOKEN", token),
            ("OPAQUE", opaque["access_token"].as_str().unwrap()),
        ],
        Duration::from_secs(60),
    )
    .await;

    assert_eq!(out["header"]["typ"], "at+jwt", "{out}");
    assert_eq!(out["payload"]["aud"], API, "{out}");
    assert_eq!(out["payload"]["cnf"]["jkt"], key.jkt.as_str(), "{out}");
    assert_eq!(
        out["payload"]["sub"],
        alice_id(&app).await.as_str(),
        "{out}"
    );
    assert_eq!(
        out["wrong_audience"], "ERR_JWT_CLAIM_VALIDATION_FAILED",
        "{out}"
    );
    assert_eq!(out["wrong_typ"], "ERR_JWT_CLAIM_VALIDATION_FAILED", "{out}");
    assert_eq!(out["opaque"], "ERR_JWS_INVALID", "{out}");
}

//! Discovery (RFC 8414), JWKS and CORS.

use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn metadata_advertises_every_endpoint_and_capability() {
    let app = TestApp::spawn().await;
    let res = app
        .http
        .get(app.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let m: Value = res.json().await.unwrap();
    assert_eq!(m["issuer"], app.base.as_str());
    assert_eq!(m["pushed_client_registration_supported"], true);
    assert_eq!(
        m["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(m["authorization_response_iss_parameter_supported"], true);
    assert_eq!(
        m["scopes_supported"],
        serde_json::json!(["admin", "read", "write"])
    );
    for endpoint in [
        "authorization_endpoint",
        "token_endpoint",
        "pushed_authorization_request_endpoint",
        "introspection_endpoint",
        "revocation_endpoint",
        "jwks_uri",
    ] {
        let url = m[endpoint].as_str().unwrap();
        assert!(url.starts_with(&app.base), "{endpoint}");
    }
    // Every advertised endpoint answers (a GET to a POST endpoint is a 405, not a 404).
    for endpoint in [
        "pushed_authorization_request_endpoint",
        "token_endpoint",
        "revocation_endpoint",
    ] {
        let res = app
            .http
            .get(m[endpoint].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 405, "{endpoint}");
    }
}

#[tokio::test]
async fn the_jwks_publishes_the_es256_signing_key_without_private_parts() {
    let app = TestApp::spawn().await;
    let jwks: Value = app
        .http
        .get(app.url("/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(key["kty"], "EC");
    assert_eq!(key["crv"], "P-256");
    assert_eq!(key["alg"], "ES256");
    assert!(key["kid"].is_string());
    assert!(key.get("d").is_none());
}

#[tokio::test]
async fn the_signing_key_survives_a_restart() {
    let app = TestApp::spawn().await;
    let first = app.ctx.keys.jwks().clone();
    let store = ephemera_server::open_store(&app.config).await.unwrap();
    let again = ephemera_server::context(&app.config, store, app.ctx.clock.clone())
        .await
        .unwrap();
    assert_eq!(again.keys.jwks(), &first);
}

#[tokio::test]
async fn browser_clients_get_cors_on_the_back_channel() {
    let app = TestApp::spawn().await;
    for path in ["/token", "/par", "/revoke"] {
        let res = app
            .http
            .request(reqwest::Method::OPTIONS, app.url(path))
            .header("origin", "https://spa.example")
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type,dpop")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{path}");
        assert_eq!(res.headers()["access-control-allow-origin"], "*", "{path}");
        assert!(res
            .headers()
            .get("access-control-allow-credentials")
            .is_none());
    }
    for path in ["/.well-known/oauth-authorization-server", "/jwks"] {
        let res = app
            .http
            .get(app.url(path))
            .header("origin", "https://spa.example")
            .send()
            .await
            .unwrap();
        assert_eq!(res.headers()["access-control-allow-origin"], "*", "{path}");
    }
    let res = app
        .http
        .post(app.url("/token"))
        .header("origin", "https://spa.example")
        .form(&[("grant_type", "nope")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        "*",
        "errors too"
    );
}

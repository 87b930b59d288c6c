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
    let first = app.ctx.keys.get().jwks().clone();
    let store = ephemera_server::open_store(&app.config).await.unwrap();
    let again = ephemera_server::context(&app.config, store, app.ctx.clock.clone())
        .await
        .unwrap();
    assert_eq!(again.keys.get().jwks(), &first);
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

#[tokio::test]
async fn a_rotated_key_is_published_beside_the_retired_one_until_its_tokens_expire() {
    let app = TestApp::spawn().await;
    let cipher = ephemera_server::service::keys::KeyCipher::new(None);
    let old_kid = app.ctx.keys.get().jwks()["keys"][0]["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    let new_kid =
        ephemera_server::service::keys::rotate(app.ctx.store.as_ref(), &cipher, app.now())
            .await
            .unwrap();
    app.ctx
        .keys
        .reload(app.ctx.store.as_ref(), app.now())
        .await
        .unwrap();
    let jwks: Value = app
        .http
        .get(app.url("/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids, vec![new_kid.as_str(), old_kid.as_str()]);
    assert_eq!(app.ctx.keys.get().signing[0].0.kid, new_kid);

    app.advance(3601);
    app.ctx
        .keys
        .reload(app.ctx.store.as_ref(), app.now())
        .await
        .unwrap();
    let jwks: Value = app
        .http
        .get(app.url("/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
    assert_eq!(jwks["keys"][0]["kid"], new_kid.as_str());
}

#[tokio::test]
async fn private_signing_keys_are_sealed_at_rest_with_the_configured_key() {
    let app = TestApp::spawn_with(|c| {
        c.keys.encryption_key = Some("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".into())
    })
    .await;
    let stored = app.ctx.store.signing_keys(app.now()).await.unwrap();
    assert!(
        stored[0].private_der.starts_with(b"EPHK1"),
        "sealed, not PKCS#8"
    );
    // The same key opens them again after a restart; another key does not.
    let store = ephemera_server::open_store(&app.config).await.unwrap();
    assert!(
        ephemera_server::context(&app.config, store.clone(), app.ctx.clock.clone())
            .await
            .is_ok()
    );
    let mut other = app.config.clone();
    other.keys_encryption_key = Some([9; 32]);
    let err = ephemera_server::context(&other, store, app.ctx.clock.clone())
        .await
        .err()
        .unwrap();
    assert!(err.contains("encryption_key"), "{err}");
}

#[tokio::test]
async fn metadata_does_not_advertise_pushed_registration_when_it_is_off() {
    let app = TestApp::spawn_with(|c| c.pushed_clients.enabled = false).await;
    let m: Value = app
        .http
        .get(app.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(m["pushed_client_registration_supported"], false);
    // PAR itself still serves every other client.
    assert!(m["pushed_authorization_request_endpoint"].is_string());
}

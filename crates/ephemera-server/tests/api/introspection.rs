//! Introspection (RFC 7662): who may ask, and what inactive tokens look like.

use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn unknown_expired_and_revoked_tokens_are_inactive_and_nothing_more() {
    let app = TestApp::spawn().await;
    assert_eq!(
        app.introspect("no-such-token").await,
        serde_json::json!({"active": false})
    );
    let tokens = app.pushed_tokens(Some(&registration())).await;
    let access = tokens["access_token"].as_str().unwrap();
    app.advance(3601);
    assert_eq!(
        app.introspect(access).await,
        serde_json::json!({"active": false})
    );
}

#[tokio::test]
async fn a_refresh_token_introspects_as_such() {
    let app = TestApp::spawn().await;
    let tokens = app.pushed_tokens(Some(&registration())).await;
    let info = app
        .introspect(tokens["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(info["active"], true);
    assert_eq!(info["token_type"], "refresh_token");
    assert_eq!(info["client_id"], URN);
}

#[tokio::test]
async fn the_resource_appears_as_the_audience() {
    let app = TestApp::spawn().await;
    let request_uri = app
        .push_ok(
            Some(&registration()),
            &[("resource", "https://api.example/")],
        )
        .await;
    let code = app.authorize(URN, &request_uri).await;
    let tokens: Value = app.redeem(&code, &[]).await.json().await.unwrap();
    let info = app
        .introspect(tokens["access_token"].as_str().unwrap())
        .await;
    assert_eq!(info["aud"], "https://api.example/");
}

#[tokio::test]
async fn introspection_requires_an_authenticated_client_with_the_right() {
    let app = TestApp::spawn().await;
    let secret = app.add_confidential_client("web", false).await;
    let res = app.post_form("/introspect", &[("token", "x")]).await;
    assert_error(res, 401, "invalid_client").await;
    let res = app
        .http
        .post(app.url("/introspect"))
        .basic_auth("web", Some(&secret))
        .form(&[("token", "x")])
        .send()
        .await
        .unwrap();
    let d = assert_error(res, 401, "unauthorized_client").await;
    assert!(d.contains("introspect"));
    let res = app
        .post_form("/introspect", &[("token", "x"), ("client_id", URN)])
        .await;
    assert_error(res, 401, "invalid_client").await;
}

#[tokio::test]
async fn introspection_without_a_token_is_refused() {
    let app = TestApp::spawn().await;
    app.introspect("warm-up").await;
    let res = app
        .http
        .post(app.url("/introspect"))
        .basic_auth("rs", Some(RS_SECRET))
        .form(&[("token_type_hint", "access_token")])
        .send()
        .await
        .unwrap();
    assert_error(res, 400, "invalid_request").await;
}

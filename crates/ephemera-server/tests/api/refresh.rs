//! Refresh tokens: rotation on every use, reuse revokes the grant, rights
//! never grow.

use serde_json::Value;

use crate::helpers::*;

async fn refresh(app: &TestApp, token: &str, extra: &[(&str, &str)]) -> reqwest::Response {
    let mut params = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", token),
        ("client_id", URN),
    ];
    params.retain(|(k, _)| !extra.iter().any(|(e, _)| e == k));
    params.extend_from_slice(extra);
    app.post_form("/token", &params).await
}

async fn tokens(app: &TestApp) -> Value {
    let request_uri = app
        .push_ok(Some(&registration()), &[("scope", "read write")])
        .await;
    let code = app.authorize(URN, &request_uri).await;
    app.redeem(&code, &[]).await.json().await.unwrap()
}

#[tokio::test]
async fn a_refresh_rotates_the_refresh_token() {
    let app = TestApp::spawn().await;
    let first = tokens(&app).await;
    let old = first["refresh_token"].as_str().unwrap();
    let res = refresh(&app, old, &[]).await;
    assert_eq!(res.status(), 200);
    let second: Value = res.json().await.unwrap();
    let new = second["refresh_token"].as_str().unwrap();
    assert_ne!(old, new);
    assert_eq!(second["scope"], "read write");
    assert_eq!(app.introspect(old).await["active"], false);
    let info = app
        .introspect(second["access_token"].as_str().unwrap())
        .await;
    assert_eq!(info["active"], true);
    assert_eq!(info["client_metadata"]["client_name"], "Test Agent");
    assert_eq!(refresh(&app, new, &[]).await.status(), 200);
}

#[tokio::test]
async fn reusing_a_rotated_refresh_token_revokes_the_whole_grant() {
    let app = TestApp::spawn().await;
    let first = tokens(&app).await;
    let old = first["refresh_token"].as_str().unwrap();
    let second: Value = refresh(&app, old, &[]).await.json().await.unwrap();
    let d = assert_error(refresh(&app, old, &[]).await, 400, "invalid_grant").await;
    assert!(d.contains("revoked"));
    for t in [
        &first["access_token"],
        &second["access_token"],
        &second["refresh_token"],
    ] {
        assert_eq!(app.introspect(t.as_str().unwrap()).await["active"], false);
    }
    assert_error(
        refresh(&app, second["refresh_token"].as_str().unwrap(), &[]).await,
        400,
        "invalid_grant",
    )
    .await;
    assert_eq!(app.stats().await.pushed_client_grants, 0);
}

#[tokio::test]
async fn a_refresh_may_narrow_the_scope_but_never_widen_it() {
    let app = TestApp::spawn().await;
    let first = tokens(&app).await;
    let rt = first["refresh_token"].as_str().unwrap();
    let d = assert_error(
        refresh(&app, rt, &[("scope", "read admin")]).await,
        400,
        "invalid_scope",
    )
    .await;
    assert!(d.contains("admin"));
    let narrowed: Value = refresh(&app, rt, &[("scope", "read")])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(narrowed["scope"], "read");
    // The new refresh token keeps the original rights (RFC 6749 §6).
    let again: Value = refresh(&app, narrowed["refresh_token"].as_str().unwrap(), &[])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["scope"], "read write");
}

#[tokio::test]
async fn an_access_token_is_not_a_refresh_token() {
    let app = TestApp::spawn().await;
    let first = tokens(&app).await;
    let res = refresh(&app, first["access_token"].as_str().unwrap(), &[]).await;
    assert_error(res, 400, "invalid_grant").await;
}

#[tokio::test]
async fn a_refresh_by_another_client_is_refused() {
    let app = TestApp::spawn().await;
    app.add_public_client("spa", &[REDIRECT]).await;
    let first = tokens(&app).await;
    let res = refresh(
        &app,
        first["refresh_token"].as_str().unwrap(),
        &[("client_id", "spa")],
    )
    .await;
    assert_error(res, 400, "invalid_grant").await;
}

#[tokio::test]
async fn a_pushed_clients_refresh_token_expires_after_a_day() {
    let app = TestApp::spawn().await;
    let first = tokens(&app).await;
    app.advance(24 * 3600 + 1);
    let res = refresh(&app, first["refresh_token"].as_str().unwrap(), &[]).await;
    assert_error(res, 400, "invalid_grant").await;
}

#[tokio::test]
async fn a_refresh_without_a_token_is_refused() {
    let app = TestApp::spawn().await;
    let res = app
        .post_form(
            "/token",
            &[("grant_type", "refresh_token"), ("client_id", URN)],
        )
        .await;
    assert_error(res, 400, "invalid_request").await;
}

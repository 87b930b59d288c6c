//! Revocation (RFC 7009).

use crate::helpers::*;

async fn revoke(app: &TestApp, token: &str, client_id: &str) -> reqwest::Response {
    app.post_form("/revoke", &[("token", token), ("client_id", client_id)])
        .await
}

#[tokio::test]
async fn a_pushed_client_revokes_its_access_token_with_the_urn() {
    let app = TestApp::spawn().await;
    let tokens = app.pushed_tokens(Some(&registration())).await;
    let access = tokens["access_token"].as_str().unwrap();
    let res = revoke(&app, access, URN).await;
    assert_eq!(res.status(), 200);
    assert_eq!(app.introspect(access).await["active"], false);
    assert_eq!(
        app.introspect(tokens["refresh_token"].as_str().unwrap())
            .await["active"],
        true
    );
}

#[tokio::test]
async fn revoking_a_refresh_token_revokes_the_grant() {
    let app = TestApp::spawn().await;
    let tokens = app.pushed_tokens(Some(&registration())).await;
    let res = app
        .post_form(
            "/revoke",
            &[
                ("token", tokens["refresh_token"].as_str().unwrap()),
                ("token_type_hint", "refresh_token"),
                ("client_id", URN),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        app.introspect(tokens["access_token"].as_str().unwrap())
            .await["active"],
        false
    );
}

#[tokio::test]
async fn revoking_an_unknown_token_succeeds() {
    let app = TestApp::spawn().await;
    assert_eq!(revoke(&app, "no-such-token", URN).await.status(), 200);
}

#[tokio::test]
async fn a_token_of_another_client_is_not_revoked() {
    let app = TestApp::spawn().await;
    app.add_public_client("spa", &[REDIRECT]).await;
    let tokens = app.pushed_tokens(Some(&registration())).await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_error(revoke(&app, access, "spa").await, 400, "invalid_grant").await;
    assert_eq!(app.introspect(access).await["active"], true);
}

#[tokio::test]
async fn revocation_without_a_token_or_a_client_is_refused() {
    let app = TestApp::spawn().await;
    assert_error(
        app.post_form("/revoke", &[("client_id", URN)]).await,
        400,
        "invalid_request",
    )
    .await;
    assert_error(
        app.post_form("/revoke", &[("token", "x")]).await,
        401,
        "invalid_client",
    )
    .await;
}

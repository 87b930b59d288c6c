//! The token endpoint: codes (single use, lifetime, redirect_uri, PKCE, the
//! client they belong to) and bad requests.

use serde_json::Value;

use crate::helpers::*;

async fn fresh_code(app: &TestApp) -> String {
    let request_uri = app.push_ok(Some(&registration()), &[]).await;
    app.authorize(URN, &request_uri).await
}

#[tokio::test]
async fn a_code_redeemed_twice_fails_and_revokes_the_tokens_it_produced() {
    let app = TestApp::spawn().await;
    let code = fresh_code(&app).await;
    let first: Value = app.redeem(&code, &[]).await.json().await.unwrap();
    let access = first["access_token"].as_str().unwrap();
    assert_eq!(app.introspect(access).await["active"], true);

    let d = assert_error(app.redeem(&code, &[]).await, 400, "invalid_grant").await;
    assert!(d.contains("already used"));
    assert_eq!(app.introspect(access).await["active"], false);
    let refresh = first["refresh_token"].as_str().unwrap();
    assert_eq!(app.introspect(refresh).await["active"], false);
    assert_eq!(app.stats().await.pushed_client_grants, 0);
}

#[tokio::test]
async fn a_code_expires_after_sixty_seconds() {
    let app = TestApp::spawn().await;
    let code = fresh_code(&app).await;
    app.advance(61);
    let d = assert_error(app.redeem(&code, &[]).await, 400, "invalid_grant").await;
    assert!(d.contains("expired"));
}

#[tokio::test]
async fn a_wrong_redirect_uri_at_the_token_endpoint_is_refused() {
    let app = TestApp::spawn().await;
    let code = fresh_code(&app).await;
    let res = app
        .redeem(&code, &[("redirect_uri", "http://127.0.0.1:9999/other")])
        .await;
    assert_error(res, 400, "invalid_grant").await;
    let res = app.redeem(&code, &[("redirect_uri", "")]).await;
    assert_error(res, 400, "invalid_request").await;
    // The code was not burnt by the bad requests.
    assert_eq!(app.redeem(&code, &[]).await.status(), 200);
}

#[tokio::test]
async fn a_wrong_or_missing_code_verifier_is_refused() {
    let app = TestApp::spawn().await;
    let code = fresh_code(&app).await;
    let other = "x".repeat(43);
    assert_error(
        app.redeem(&code, &[("code_verifier", &other)]).await,
        400,
        "invalid_grant",
    )
    .await;
    assert_error(
        app.redeem(&code, &[("code_verifier", "")]).await,
        400,
        "invalid_request",
    )
    .await;
    assert_error(
        app.redeem(&code, &[("code_verifier", "short")]).await,
        400,
        "invalid_request",
    )
    .await;
}

#[tokio::test]
async fn a_code_verifier_without_a_challenge_is_refused() {
    // Only a pre-registered confidential client, with the policy relaxed,
    // can have a code without a challenge at all.
    let app =
        TestApp::spawn_with(|c| c.clients.pkce_optional_for_registered_confidential = true).await;
    let secret = app.add_confidential_client("web", false).await;
    let res = app
        .http
        .post(app.url("/par"))
        .basic_auth("web", Some(&secret))
        .form(&[("response_type", "code"), ("redirect_uri", REDIRECT)])
        .send()
        .await
        .unwrap();
    let request_uri = res.json::<Value>().await.unwrap()["request_uri"]
        .as_str()
        .unwrap()
        .to_owned();
    let code = app.authorize("web", &request_uri).await;
    let res = app
        .http
        .post(app.url("/token"))
        .basic_auth("web", Some(&secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    assert_error(res, 400, "invalid_grant").await;
}

#[tokio::test]
async fn a_code_presented_by_another_client_is_refused() {
    let app = TestApp::spawn().await;
    app.add_public_client("spa", &[REDIRECT]).await;
    let code = fresh_code(&app).await;
    let res = app.redeem(&code, &[("client_id", "spa")]).await;
    assert_error(res, 400, "invalid_grant").await;
}

#[tokio::test]
async fn an_unknown_code_is_refused() {
    let app = TestApp::spawn().await;
    assert_error(app.redeem("no-such-code", &[]).await, 400, "invalid_grant").await;
}

#[tokio::test]
async fn missing_and_unknown_grant_types_are_refused() {
    let app = TestApp::spawn().await;
    let res = app.post_form("/token", &[("client_id", URN)]).await;
    assert_error(res, 400, "invalid_request").await;
    let res = app
        .post_form("/token", &[("grant_type", "password"), ("client_id", URN)])
        .await;
    assert_error(res, 400, "unsupported_grant_type").await;
}

#[tokio::test]
async fn a_token_request_without_a_code_is_refused() {
    let app = TestApp::spawn().await;
    let res = app
        .post_form(
            "/token",
            &[("grant_type", "authorization_code"), ("client_id", URN)],
        )
        .await;
    assert_error(res, 400, "invalid_request").await;
}

#[tokio::test]
async fn repeated_token_parameters_are_refused() {
    let app = TestApp::spawn().await;
    let res = app
        .post_form(
            "/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", "a"),
                ("code", "b"),
            ],
        )
        .await;
    let d = assert_error(res, 400, "invalid_request").await;
    assert!(d.contains("code"));
}

#[tokio::test]
async fn a_token_request_that_is_not_a_form_is_refused() {
    let app = TestApp::spawn().await;
    let res = app
        .http
        .post(app.url("/token"))
        .header("content-type", "application/json")
        .body(r#"{"grant_type":"authorization_code"}"#)
        .send()
        .await
        .unwrap();
    assert_error(res, 400, "invalid_request").await;
}

#[tokio::test]
async fn an_oversized_token_request_is_refused() {
    let app = TestApp::spawn().await;
    let big = "c".repeat(100 * 1024);
    assert_error(app.redeem(&big, &[]).await, 413, "invalid_request").await;
}

#[tokio::test]
async fn a_token_request_without_any_client_is_refused() {
    let app = TestApp::spawn().await;
    let res = app
        .post_form(
            "/token",
            &[("grant_type", "authorization_code"), ("code", "x")],
        )
        .await;
    assert_error(res, 401, "invalid_client").await;
}

#[tokio::test]
async fn a_confidential_client_with_a_wrong_secret_or_two_methods_is_refused() {
    let app = TestApp::spawn().await;
    let secret = app.add_confidential_client("web", false).await;
    let res = app
        .http
        .post(app.url("/token"))
        .basic_auth("web", Some("wrong"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers()["www-authenticate"],
        "Basic realm=\"ephemera\""
    );
    assert_error(res, 401, "invalid_client").await;
    let res = app
        .http
        .post(app.url("/token"))
        .basic_auth("web", Some(&secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_secret", &secret),
        ])
        .send()
        .await
        .unwrap();
    assert_error(res, 400, "invalid_request").await;
    let res = app
        .post_form(
            "/token",
            &[("grant_type", "client_credentials"), ("client_id", "web")],
        )
        .await;
    assert_error(res, 401, "invalid_client").await;
    let res = app
        .http
        .post(app.url("/token"))
        .header("authorization", "Basic !!!")
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_error(res, 401, "invalid_client").await;
}

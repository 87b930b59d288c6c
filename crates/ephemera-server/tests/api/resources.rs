//! Resource indicators (RFC 8707): requested at PAR, narrowed at the token
//! endpoint, never widened; the policy lists what the server serves.

use serde_json::Value;

use ephemera_server::config::RawResourceEntry;

use crate::helpers::*;

const API: &str = "https://api.example/";
const FILES: &str = "https://files.example/";

async fn app() -> TestApp {
    TestApp::spawn_with(|c| c.resources = vec![API.into(), FILES.into()]).await
}

async fn code_for(app: &TestApp, resources: &[&str]) -> String {
    let registration = registration();
    let mut extra: Vec<(&str, &str)> = resources.iter().map(|r| ("resource", *r)).collect();
    extra.push(("scope", "read"));
    let request_uri = app.push_ok(Some(&registration), &extra).await;
    app.authorize(URN, &request_uri).await
}

#[tokio::test]
async fn tokens_are_audience_restricted_to_the_requested_resources() {
    let app = app().await;
    let code = code_for(&app, &[API, FILES]).await;
    let tokens: Value = app.redeem(&code, &[]).await.json().await.unwrap();
    let info = app
        .introspect(tokens["access_token"].as_str().unwrap())
        .await;
    assert_eq!(info["aud"], serde_json::json!([API, FILES]));
}

#[tokio::test]
async fn the_token_request_may_narrow_the_audience_but_not_widen_it() {
    let app = app().await;
    let code = code_for(&app, &[API]).await;
    let res = app.redeem(&code, &[("resource", FILES)]).await;
    assert_error(res, 400, "invalid_target").await;
    let res = app.redeem(&code, &[("resource", API)]).await;
    assert_eq!(res.status(), 200);
    let tokens: Value = res.json().await.unwrap();
    assert_eq!(
        app.introspect(tokens["access_token"].as_str().unwrap())
            .await["aud"],
        API
    );

    let code = code_for(&app, &[API, FILES]).await;
    let tokens: Value = app
        .redeem(&code, &[("resource", FILES)])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        app.introspect(tokens["access_token"].as_str().unwrap())
            .await["aud"],
        FILES
    );
    // A refresh may narrow again, from the grant's resources.
    let res = app
        .post_form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
                ("client_id", URN),
                ("resource", API),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
    let refreshed: Value = res.json().await.unwrap();
    assert_eq!(
        app.introspect(refreshed["access_token"].as_str().unwrap())
            .await["aud"],
        API
    );
}

#[tokio::test]
async fn a_resource_the_server_does_not_serve_is_refused() {
    let app = app().await;
    let res = app
        .push(
            Some(&registration()),
            &[("resource", "https://other.example/")],
            &[],
        )
        .await;
    let d = assert_error(res, 400, "invalid_target").await;
    assert!(d.contains("not served"));
    assert_eq!(app.stats().await.pending_pushed_requests, 0);
}

#[tokio::test]
async fn client_credentials_may_name_a_served_resource_only() {
    let app = app().await;
    let secret = app.add_confidential_client("svc", false).await;
    let ask = |resource: &'static str| {
        let app = &app;
        let secret = secret.clone();
        async move {
            app.http
                .post(app.url("/token"))
                .basic_auth("svc", Some(secret))
                .form(&[("grant_type", "client_credentials"), ("resource", resource)])
                .send()
                .await
                .unwrap()
        }
    };
    assert_error(ask("https://other.example/").await, 400, "invalid_target").await;
    let tokens: Value = ask(API).await.json().await.unwrap();
    assert_eq!(
        app.introspect(tokens["access_token"].as_str().unwrap())
            .await["aud"],
        API
    );
}

/// A code for `resources` with `scope`.
async fn code_with_scope(app: &TestApp, resources: &[&str], scope: &str) -> String {
    let registration = registration();
    let mut extra: Vec<(&str, &str)> = resources.iter().map(|r| ("resource", *r)).collect();
    extra.push(("scope", scope));
    let request_uri = app.push_ok(Some(&registration), &extra).await;
    app.authorize(URN, &request_uri).await
}

#[tokio::test]
async fn a_registry_entry_sets_the_lifetime_and_the_scopes_of_its_tokens() {
    let app = TestApp::spawn_with(|c| {
        c.resources = vec![
            RawResourceEntry {
                identifier: API.into(),
                scopes: Some(vec!["read".into()]),
                access_token_lifetime: Some(120),
                ..RawResourceEntry::default()
            }
            .into(),
            FILES.into(),
        ]
    })
    .await;
    let code = code_with_scope(&app, &[API], "read write").await;

    let tokens: Value = app.redeem(&code, &[]).await.json().await.unwrap();

    assert_eq!(tokens["expires_in"], 120, "{tokens}");
    assert_eq!(tokens["scope"], "read", "{tokens}");
    let info = app
        .introspect(tokens["access_token"].as_str().unwrap())
        .await;
    assert_eq!(info["scope"], "read");
    assert_eq!(
        info["exp"].as_i64().unwrap() - info["iat"].as_i64().unwrap(),
        120
    );
    // A refreshed token for the resource is narrowed the same way; a
    // resource listed without scopes gets every granted scope.
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
    let refreshed: Value = res.json().await.unwrap();
    assert_eq!(refreshed["scope"], "read", "{refreshed}");
    let code = code_with_scope(&app, &[FILES], "read write").await;
    let tokens: Value = app.redeem(&code, &[]).await.json().await.unwrap();
    assert_eq!(tokens["scope"], "read write", "{tokens}");
    assert_eq!(tokens["expires_in"], 3600, "{tokens}");
}

#[tokio::test]
async fn resources_that_take_different_token_formats_get_a_token_each() {
    let app = TestApp::spawn_with(|c| {
        c.resources = vec![
            RawResourceEntry {
                identifier: API.into(),
                token_format: Some("jwt".into()),
                ..RawResourceEntry::default()
            }
            .into(),
            FILES.into(),
        ]
    })
    .await;
    let code = code_with_scope(&app, &[API, FILES], "read").await;

    let res = app.redeem(&code, &[]).await;

    let d = assert_error(res, 400, "invalid_target").await;
    assert!(d.contains("different token formats"), "{d}");
    // The code was not spent: the client asks again for one resource.
    let res = app.redeem(&code, &[("resource", FILES)]).await;
    assert_eq!(res.status(), 200);
}

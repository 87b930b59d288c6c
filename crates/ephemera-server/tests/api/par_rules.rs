//! PAR rules of PROTOCOL.md and bad PAR inputs: each gets its RFC error and
//! leaves nothing stored.

use crate::helpers::*;

async fn refused(app: &TestApp, res: reqwest::Response, error: &str) -> String {
    let description = assert_error(res, 400, error).await;
    assert_eq!(
        app.stats().await.pending_pushed_requests,
        0,
        "nothing stored"
    );
    description
}

#[tokio::test]
async fn par_without_state_is_refused() {
    let app = TestApp::spawn().await;
    let res = app.push(Some(&registration()), &[], &["state"]).await;
    let d = refused(&app, res, "invalid_request").await;
    assert!(d.contains("state"));
}

#[tokio::test]
async fn par_without_redirect_uri_is_refused() {
    let app = TestApp::spawn().await;
    let res = app
        .push(Some(&registration()), &[], &["redirect_uri"])
        .await;
    let d = refused(&app, res, "invalid_request").await;
    assert!(d.contains("redirect_uri"));
}

#[tokio::test]
async fn par_without_pkce_is_refused() {
    let app = TestApp::spawn().await;
    let res = app
        .push(
            Some(&registration()),
            &[],
            &["code_challenge", "code_challenge_method"],
        )
        .await;
    let d = refused(&app, res, "invalid_request").await;
    assert!(d.contains("code_challenge"));
}

#[tokio::test]
async fn par_with_plain_pkce_is_refused() {
    let app = TestApp::spawn().await;
    let res = app
        .push(
            Some(&registration()),
            &[("code_challenge_method", "plain")],
            &[],
        )
        .await;
    let d = refused(&app, res, "invalid_request").await;
    assert!(d.contains("S256"));
    let res = app
        .push(Some(&registration()), &[], &["code_challenge_method"])
        .await;
    refused(&app, res, "invalid_request").await;
}

#[tokio::test]
async fn par_with_a_malformed_code_challenge_is_refused() {
    let app = TestApp::spawn().await;
    let res = app
        .push(Some(&registration()), &[("code_challenge", "short")], &[])
        .await;
    refused(&app, res, "invalid_request").await;
}

#[tokio::test]
async fn client_registration_that_is_not_a_json_object_is_refused() {
    let app = TestApp::spawn().await;
    for bad in ["[]", "\"agent\"", "42", "{not json"] {
        let res = app.push(Some(bad), &[], &[]).await;
        refused(&app, res, "invalid_request").await;
    }
}

#[tokio::test]
async fn client_registration_with_invalid_metadata_is_refused() {
    let app = TestApp::spawn().await;
    let cases = [
        r#"{"token_endpoint_auth_method":"magic"}"#,
        r#"{"token_endpoint_auth_method":"client_secret_basic"}"#,
        r#"{"redirect_uris":["http://127.0.0.1:1/other"]}"#,
        r#"{"redirect_uris":["not a url"]}"#,
        r#"{"logo_uri":"javascript:alert(1)"}"#,
        r#"{"client_name":["array"]}"#,
        r#"{"grant_types":["implicit"]}"#,
        r#"{"jwks_uri":"https://agent.example/jwks"}"#,
        r#"{"scope":"admin"}"#,
    ];
    for bad in cases {
        let res = app.push(Some(bad), &[], &[]).await;
        assert_eq!(res.status(), 400, "{bad}");
        refused(&app, res, "invalid_client_metadata").await;
    }
}

#[tokio::test]
async fn client_registration_larger_than_the_limit_is_refused() {
    let app = TestApp::spawn().await;
    let big = format!(
        r#"{{"client_name":"x","software_id":"{}"}}"#,
        "a".repeat(9000)
    );
    let res = app.push(Some(&big), &[], &[]).await;
    let d = refused(&app, res, "invalid_client_metadata").await;
    assert!(d.contains("larger than"));
}

#[tokio::test]
async fn a_redirect_uri_form_the_policy_refuses_is_refused() {
    let app = TestApp::spawn().await;
    let res = app
        .push(None, &[("redirect_uri", "http://agent.example/cb")], &[])
        .await;
    refused(&app, res, "invalid_request").await;
    let res = app
        .push(
            None,
            &[("redirect_uri", "https://agent.example/cb#frag")],
            &[],
        )
        .await;
    refused(&app, res, "invalid_request").await;
}

#[tokio::test]
async fn a_scope_the_pushed_policy_withholds_is_refused() {
    let app = TestApp::spawn().await;
    let res = app
        .push(Some(&registration()), &[("scope", "admin")], &[])
        .await;
    refused(&app, res, "invalid_scope").await;
    let res = app
        .push(Some(&registration()), &[("scope", "nonexistent")], &[])
        .await;
    refused(&app, res, "invalid_scope").await;
}

#[tokio::test]
async fn a_request_for_scopes_partly_withheld_is_granted_those_the_client_may_have() {
    // RFC 6749 §3.3: fewer scopes than asked, and the token response says so.
    let app = TestApp::spawn().await;
    let request_uri = app
        .push_ok(
            Some(&registration()),
            &[("scope", "admin read nonexistent")],
        )
        .await;
    let code = app.authorize(URN, &request_uri).await;
    let tokens: serde_json::Value = app.redeem(&code, &[]).await.json().await.unwrap();
    assert_eq!(tokens["scope"], "read", "{tokens}");
}

#[tokio::test]
async fn a_pushed_registration_listing_grant_types_it_cannot_use_keeps_those_it_can() {
    let app = TestApp::spawn().await;
    let registration = serde_json::json!({
        "redirect_uris": [REDIRECT],
        "grant_types": ["authorization_code", "client_credentials", "urn:example:custom"],
    })
    .to_string();
    let request_uri = app.push_ok(Some(&registration), &[]).await;
    let code = app.authorize(URN, &request_uri).await;
    let tokens: serde_json::Value = app.redeem(&code, &[]).await.json().await.unwrap();
    let info = app
        .introspect(tokens["access_token"].as_str().unwrap())
        .await;
    assert_eq!(
        info["client_metadata"]["grant_types"],
        serde_json::json!(["authorization_code"]),
        "{info}"
    );
}

#[tokio::test]
async fn a_malformed_resource_is_refused_with_invalid_target() {
    let app = TestApp::spawn().await;
    let res = app
        .push(Some(&registration()), &[("resource", "not-absolute")], &[])
        .await;
    refused(&app, res, "invalid_target").await;
}

#[tokio::test]
async fn an_unsupported_response_type_is_refused() {
    let app = TestApp::spawn().await;
    let res = app
        .push(Some(&registration()), &[("response_type", "token")], &[])
        .await;
    refused(&app, res, "unsupported_response_type").await;
}

#[tokio::test]
async fn a_request_uri_sent_to_par_is_refused() {
    let app = TestApp::spawn().await;
    let res = app
        .push(Some(&registration()), &[("request_uri", "urn:x")], &[])
        .await;
    refused(&app, res, "invalid_request").await;
}

#[tokio::test]
async fn repeated_parameters_are_refused() {
    let app = TestApp::spawn().await;
    let res = app
        .post_form(
            "/par",
            &[
                ("client_id", URN),
                ("state", "a"),
                ("state", "b"),
                ("redirect_uri", REDIRECT),
            ],
        )
        .await;
    let d = refused(&app, res, "invalid_request").await;
    assert!(d.contains("state"));
}

#[tokio::test]
async fn client_registration_with_a_registered_client_is_refused() {
    let app = TestApp::spawn().await;
    app.add_public_client("spa", &[REDIRECT]).await;
    let res = app
        .push(Some(&registration()), &[("client_id", "spa")], &[])
        .await;
    refused(&app, res, "invalid_request").await;
}

#[tokio::test]
async fn an_unknown_client_or_wrong_secret_is_refused_with_invalid_client() {
    let app = TestApp::spawn().await;
    app.add_confidential_client("web", false).await;
    let res = app.push(None, &[("client_id", "nobody")], &[]).await;
    assert_error(res, 401, "invalid_client").await;
    let res = app
        .http
        .post(app.url("/par"))
        .basic_auth("web", Some("wrong"))
        .form(&[("response_type", "code"), ("redirect_uri", REDIRECT)])
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers()["www-authenticate"],
        "Basic realm=\"ephemera\""
    );
    assert_error(res, 401, "invalid_client").await;
}

#[tokio::test]
async fn a_pushed_client_sending_a_secret_is_refused() {
    let app = TestApp::spawn().await;
    let res = app.push(None, &[("client_secret", "x")], &[]).await;
    assert_error(res, 401, "invalid_client").await;
}

#[tokio::test]
async fn pushed_clients_are_refused_when_the_policy_turns_them_off() {
    let app = TestApp::spawn_with(|c| c.pushed_clients.enabled = false).await;
    let res = app.push(Some(&registration()), &[], &[]).await;
    refused(&app, res, "unauthorized_client").await;
}

#[tokio::test]
async fn a_body_that_is_not_a_form_is_refused() {
    let app = TestApp::spawn().await;
    let res = app
        .http
        .post(app.url("/par"))
        .json(&serde_json::json!({"client_id": URN}))
        .send()
        .await
        .unwrap();
    let d = refused(&app, res, "invalid_request").await;
    assert!(d.contains("Content-Type"));
}

#[tokio::test]
async fn an_oversized_body_is_refused() {
    let app = TestApp::spawn().await;
    let big = "a".repeat(70 * 1024);
    let res = app.push(Some(&big), &[], &[]).await;
    assert_error(res, 413, "invalid_request").await;
}

#[tokio::test]
async fn a_push_beyond_the_pending_limit_gets_503_with_retry_after_and_stores_nothing() {
    let app = TestApp::spawn_with(|c| c.pushed_clients.max_pending_requests = 2).await;
    app.push_ok(Some(&registration()), &[]).await;
    app.advance(10);
    app.push_ok(Some(&registration()), &[]).await;

    let res = app.push(Some(&registration()), &[], &[]).await;

    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["cache-control"], "no-store");
    // The first request expires 60 s after it was pushed, 10 s ago (or a
    // second less: the test clock is the wall clock, which may tick).
    let retry: i64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((49..=50).contains(&retry), "Retry-After {retry}");
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("pending"));
    assert_eq!(app.stats().await.pending_pushed_requests, 2);
}

#[tokio::test]
async fn a_push_is_accepted_again_once_a_pending_request_expires() {
    let app = TestApp::spawn_with(|c| c.pushed_clients.max_pending_requests = 1).await;
    app.push_ok(Some(&registration()), &[]).await;
    assert_eq!(
        app.push(Some(&registration()), &[], &[]).await.status(),
        503
    );

    app.advance(61);

    app.push_ok(Some(&registration()), &[]).await;
    assert_eq!(app.stats().await.pending_pushed_requests, 1);
}

#[tokio::test]
async fn a_client_registration_nested_too_deeply_is_refused() {
    let app = TestApp::spawn().await;
    let nested = format!(
        r#"{{"redirect_uris":["{REDIRECT}"],"x":{}1{}}}"#,
        "[".repeat(40),
        "]".repeat(40)
    );
    let res = app.push(Some(&nested), &[], &[]).await;
    let d = refused(&app, res, "invalid_client_metadata").await;
    assert!(d.contains("deeper than 32"), "{d}");
}

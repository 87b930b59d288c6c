use axum::http::StatusCode;
use serde_json::json;

use crate::support::{active, app, call, config, unprotected_app, FakeIntrospection};

#[tokio::test]
async fn a_request_without_a_token_gets_a_bare_challenge() {
    let fake = FakeIntrospection::new(&[]);
    let app = app(config(fake.clone().serve().await));

    let answer = call(&app, None).await;

    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.challenge.as_deref(), Some("Bearer realm=\"test\""));
    assert_eq!(fake.calls(), 0);
}

#[tokio::test]
async fn a_request_without_a_token_learns_the_scopes_the_resource_requires() {
    // The MCP authorization specification: a client picks the scope to ask
    // for from the 401's `scope`.
    let fake = FakeIntrospection::new(&[]);
    let app = app(config(fake.clone().serve().await)
        .require_scope("read")
        .require_scope("write"));

    let answer = call(&app, None).await;

    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        answer.challenge.as_deref(),
        Some("Bearer realm=\"test\", scope=\"read write\"")
    );
    let answer = call(&app, Some("Bearer unknown")).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert!(
        answer.challenge.as_deref().is_some_and(
            |c| c.contains("error=\"invalid_token\"") && c.contains("scope=\"read write\"")
        ),
        "{:?}",
        answer.challenge
    );
}

#[tokio::test]
async fn a_request_with_another_scheme_gets_a_bare_challenge() {
    let fake = FakeIntrospection::new(&[]);
    let app = app(config(fake.clone().serve().await));

    let answer = call(&app, Some("Basic YTpi")).await;

    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.challenge.as_deref(), Some("Bearer realm=\"test\""));
}

#[tokio::test]
async fn a_malformed_bearer_header_is_an_invalid_request() {
    let fake = FakeIntrospection::new(&[]);
    let app = app(config(fake.clone().serve().await));

    let answer = call(&app, Some("Bearer a b")).await;

    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(answer
        .challenge
        .unwrap()
        .contains("error=\"invalid_request\""));
    assert_eq!(fake.calls(), 0);
}

#[tokio::test]
async fn an_inactive_token_is_an_invalid_token() {
    let fake = FakeIntrospection::new(&[]);
    let app = app(config(fake.clone().serve().await));

    let answer = call(&app, Some("Bearer unknown")).await;

    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    let challenge = answer.challenge.unwrap();
    assert!(challenge
        .starts_with("Bearer realm=\"test\", error=\"invalid_token\", error_description=\""));
    assert_eq!(fake.calls(), 1);
}

#[tokio::test]
async fn a_valid_token_reaches_the_handler_with_its_context() {
    let fake = FakeIntrospection::new(&[("good", active("read write", json!("https://api.test")))]);
    let app = app(config(fake.clone().serve().await).require_scope("read"));

    let answer = call(&app, Some("bearer good")).await;

    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body, "alice|read write|g-1|pushed|\"agent\"");
}

#[tokio::test]
async fn a_token_without_a_required_scope_is_forbidden() {
    let fake = FakeIntrospection::new(&[("good", active("read", json!("https://api.test")))]);
    let app = app(config(fake.clone().serve().await)
        .require_scope("read")
        .require_scope("admin"));

    let answer = call(&app, Some("Bearer good")).await;

    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(
        answer.challenge.as_deref(),
        Some("Bearer realm=\"test\", error=\"insufficient_scope\", scope=\"read admin\"")
    );
}

#[tokio::test]
async fn a_token_for_another_audience_is_an_invalid_token() {
    let fake = FakeIntrospection::new(&[
        ("other", active("read", json!(["https://other.test"]))),
        (
            "ours",
            active("read", json!(["https://other.test", "https://api.test"])),
        ),
    ]);
    let app = app(config(fake.clone().serve().await).audience("https://api.test"));

    let other = call(&app, Some("Bearer other")).await;
    let ours = call(&app, Some("Bearer ours")).await;

    assert_eq!(other.status, StatusCode::UNAUTHORIZED);
    assert!(other.challenge.unwrap().contains("error=\"invalid_token\""));
    assert_eq!(ours.status, StatusCode::OK);
}

#[tokio::test]
async fn a_token_from_another_issuer_is_an_invalid_token() {
    let mut foreign = active("read", json!("https://api.test"));
    foreign["iss"] = json!("http://evil.test");
    let fake = FakeIntrospection::new(&[("foreign", foreign)]);
    let app = app(config(fake.clone().serve().await));

    let answer = call(&app, Some("Bearer foreign")).await;

    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert!(answer
        .challenge
        .unwrap()
        .contains("error=\"invalid_token\""));
}

#[tokio::test]
async fn a_key_bound_token_cannot_be_used_as_a_bearer_token() {
    let mut dpop = active("read", json!("https://api.test"));
    dpop["token_type"] = json!("DPoP");
    let mut cnf = active("read", json!("https://api.test"));
    cnf["cnf"] = json!({"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"});
    let fake = FakeIntrospection::new(&[("dpop", dpop), ("cnf", cnf)]);
    let app = app(config(fake.clone().serve().await));

    for token in ["dpop", "cnf"] {
        let answer = call(&app, Some(&format!("Bearer {token}"))).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{token}");
        assert!(answer
            .challenge
            .unwrap()
            .contains("error=\"invalid_token\""));
    }
}

#[tokio::test]
async fn a_refresh_token_is_not_an_access_token() {
    let mut refresh = active("read", json!("https://api.test"));
    refresh["token_type"] = json!("refresh_token");
    let fake = FakeIntrospection::new(&[("refresh", refresh)]);
    let app = app(config(fake.clone().serve().await));

    let answer = call(&app, Some("Bearer refresh")).await;

    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        answer.challenge.as_deref(),
        Some("Bearer realm=\"test\", error=\"invalid_token\", error_description=\"the token is not an access token\"")
    );
}

#[tokio::test]
async fn an_unreachable_introspection_endpoint_is_a_503() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let app = app(config(format!("http://{address}/introspect")));

    let answer = call(&app, Some("Bearer good")).await;

    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.challenge, None);
}

#[tokio::test]
async fn an_introspection_endpoint_refusing_our_credentials_is_a_503() {
    let fake = FakeIntrospection::new(&[("good", active("read", json!("https://api.test")))]);
    let mut config = config(fake.clone().serve().await);
    config.client_secret = "wrong".into();
    let app = app(config);

    let answer = call(&app, Some("Bearer good")).await;

    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn a_handler_without_the_layer_rejects_instead_of_running() {
    let answer = call(&unprotected_app(), Some("Bearer good")).await;

    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.challenge.as_deref(), Some("Bearer"));
}

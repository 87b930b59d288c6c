use std::time::Duration;

use axum::http::StatusCode;
use serde_json::json;

use crate::support::{active, app, call, config, FakeIntrospection};

#[tokio::test]
async fn a_second_request_with_the_same_token_is_answered_from_the_cache() {
    let fake = FakeIntrospection::new(&[("good", active("read", json!("https://api.test")))]);
    let app = app(config(fake.clone().serve().await));

    let first = call(&app, Some("Bearer good")).await;
    let second = call(&app, Some("Bearer good")).await;

    assert_eq!(
        (first.status, second.status),
        (StatusCode::OK, StatusCode::OK)
    );
    assert_eq!(fake.calls(), 1);
}

#[tokio::test]
async fn a_cached_token_is_still_checked_for_scope() {
    let fake = FakeIntrospection::new(&[("good", active("read", json!("https://api.test")))]);
    let app = app(config(fake.clone().serve().await).require_scope("write"));

    let first = call(&app, Some("Bearer good")).await;
    let second = call(&app, Some("Bearer good")).await;

    assert_eq!(
        (first.status, second.status),
        (StatusCode::FORBIDDEN, StatusCode::FORBIDDEN)
    );
    assert_eq!(fake.calls(), 1);
}

#[tokio::test]
async fn inactive_answers_are_not_cached() {
    let fake = FakeIntrospection::new(&[]);
    let app = app(config(fake.clone().serve().await));

    call(&app, Some("Bearer unknown")).await;
    call(&app, Some("Bearer unknown")).await;

    assert_eq!(fake.calls(), 2);
}

#[tokio::test]
async fn a_zero_ttl_introspects_every_request() {
    let fake = FakeIntrospection::new(&[("good", active("read", json!("https://api.test")))]);
    let app = app(config(fake.clone().serve().await).cache_ttl(Duration::ZERO));

    call(&app, Some("Bearer good")).await;
    call(&app, Some("Bearer good")).await;

    assert_eq!(fake.calls(), 2);
}

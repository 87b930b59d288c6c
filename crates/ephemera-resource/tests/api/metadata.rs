use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use ephemera_resource::ProtectedResourceMetadata;
use serde_json::{json, Value};

use crate::support::{
    app, app_with_metadata, call, config, dpop_config, send, FakeIntrospection, API, ISSUER,
};

const METADATA_URL: &str = "http://api.test/.well-known/oauth-protected-resource";

#[tokio::test]
async fn the_metadata_route_serves_rfc_9728_metadata_without_a_token() {
    let fake = FakeIntrospection::new(&[]);
    let config = dpop_config(fake.clone().serve().await).require_scope("read");
    let mut metadata = ProtectedResourceMetadata::for_config(API, &config);
    metadata.resource_name = Some("Test API".into());
    let app = app_with_metadata(config, metadata);

    let response = tower::ServiceExt::oneshot(
        app,
        Request::get("/.well-known/oauth-protected-resource")
            .body(Body::empty())
            .unwrap(),
    )
    .await
    .unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    let bytes = axum::body::to_bytes(response.into_body(), 64 * 1024)
        .await
        .unwrap();
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        body,
        json!({
            "resource": API,
            "authorization_servers": [ISSUER],
            "scopes_supported": ["read"],
            "bearer_methods_supported": ["header"],
            "resource_name": "Test API",
            "tls_client_certificate_bound_access_tokens": false,
            "dpop_signing_alg_values_supported":
                ["ES256", "ES384", "EdDSA", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"],
            "dpop_bound_access_tokens_required": false,
        })
    );
    assert_eq!(fake.calls(), 0);
}

#[tokio::test]
async fn the_metadata_url_is_derived_from_the_resource() {
    let metadata = ProtectedResourceMetadata::new(API, ISSUER);

    assert_eq!(metadata.metadata_url().as_deref(), Some(METADATA_URL));
}

#[tokio::test]
async fn challenges_point_at_the_metadata() {
    let fake = FakeIntrospection::new(&[]);
    let app = app(config(fake.clone().serve().await).resource_metadata(METADATA_URL));

    let missing = call(&app, None).await;
    let inactive = call(&app, Some("Bearer gone")).await;

    assert_eq!(
        missing.challenges,
        [format!(
            "Bearer realm=\"test\", resource_metadata=\"{METADATA_URL}\""
        )]
    );
    assert!(inactive.challenges[0].starts_with("Bearer realm=\"test\", error=\"invalid_token\""));
    assert!(inactive.challenges[0].ends_with(&format!("resource_metadata=\"{METADATA_URL}\"")));
}

#[tokio::test]
async fn both_challenges_point_at_the_metadata_where_dpop_is_on() {
    let fake = FakeIntrospection::new(&[]);
    let app = app(dpop_config(fake.clone().serve().await).resource_metadata(METADATA_URL));

    let answer = send(&app, Request::get("/whoami").body(Body::empty()).unwrap()).await;

    assert_eq!(answer.challenges.len(), 2);
    for challenge in &answer.challenges {
        assert!(
            challenge.ends_with(&format!("resource_metadata=\"{METADATA_URL}\"")),
            "{challenge}"
        );
    }
}

use axum::http::StatusCode;
use ephemera_resource::ClientCertificate;
use serde_json::Value;

use crate::support::{app, certificate_bound, config, request, send, FakeIntrospection};

const CERT: &[u8] = b"0\x82\x01\x0a the client's certificate DER";
const OTHER: &[u8] = b"0\x82\x01\x0a another certificate DER";

fn with_certificate(der: &[u8]) -> axum::http::Request<axum::body::Body> {
    let mut request = request("Bearer tok", &[]);
    request
        .extensions_mut()
        .insert(ClientCertificate(der.to_vec()));
    request
}

fn with_header(der: &[u8]) -> axum::http::Request<axum::body::Body> {
    use base64::Engine as _;
    let mut request = request("Bearer tok", &[]);
    let value = format!(
        ":{}:",
        base64::engine::general_purpose::STANDARD.encode(der)
    );
    request
        .headers_mut()
        .insert("Client-Cert", value.parse().unwrap());
    request
}

fn is_invalid_token(challenge: Option<&String>) -> bool {
    challenge.is_some_and(|c| c.starts_with("Bearer realm=\"test\", error=\"invalid_token\""))
}

#[tokio::test]
async fn a_certificate_bound_token_with_its_certificate_reaches_the_handler() {
    let fake = FakeIntrospection::new(&[("tok", certificate_bound("read", CERT))]);
    let app = app(config(fake.clone().serve().await));

    let answer = send(&app, with_certificate(CERT)).await;

    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.challenges);
    let context: Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(
        context["certificate_thumbprint"],
        ephemera_proto::jose::sha256_b64(CERT)
    );
    assert_eq!(context["dpop_jkt"], Value::Null);
}

#[tokio::test]
async fn a_certificate_bound_token_with_another_certificate_is_an_invalid_token() {
    let fake = FakeIntrospection::new(&[("tok", certificate_bound("read", CERT))]);
    let app = app(config(fake.clone().serve().await));

    let answer = send(&app, with_certificate(OTHER)).await;

    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert!(is_invalid_token(answer.challenge.as_ref()));
    assert!(answer.challenges[0].contains("not the one the token is bound to"));
}

#[tokio::test]
async fn a_certificate_bound_token_without_a_certificate_is_an_invalid_token() {
    let fake = FakeIntrospection::new(&[("tok", certificate_bound("read", CERT))]);
    let app = app(config(fake.clone().serve().await));

    let answer = send(&app, request("Bearer tok", &[])).await;

    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert!(is_invalid_token(answer.challenge.as_ref()));
    assert!(answer.challenges[0].contains("the request has none"));
}

#[tokio::test]
async fn a_trusted_client_cert_header_carries_the_certificate() {
    let fake = FakeIntrospection::new(&[("tok", certificate_bound("read", CERT))]);
    let app = app(config(fake.clone().serve().await).trust_client_cert_header(true));

    let matching = send(&app, with_header(CERT)).await;
    let other = send(&app, with_header(OTHER)).await;

    assert_eq!(matching.status, StatusCode::OK, "{:?}", matching.challenges);
    assert_eq!(other.status, StatusCode::UNAUTHORIZED);
    assert!(is_invalid_token(other.challenge.as_ref()));
}

#[tokio::test]
async fn the_client_cert_header_is_ignored_unless_trusted() {
    let fake = FakeIntrospection::new(&[("tok", certificate_bound("read", CERT))]);
    let app = app(config(fake.clone().serve().await));

    let answer = send(&app, with_header(CERT)).await;

    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert!(answer.challenges[0].contains("the request has none"));
}

#[tokio::test]
async fn the_connection_certificate_wins_over_a_trusted_header() {
    let fake = FakeIntrospection::new(&[("tok", certificate_bound("read", CERT))]);
    let app = app(config(fake.clone().serve().await).trust_client_cert_header(true));
    let mut request = with_header(CERT);
    request
        .extensions_mut()
        .insert(ClientCertificate(OTHER.to_vec()));

    let answer = send(&app, request).await;

    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_unbound_token_needs_no_certificate() {
    let fake = FakeIntrospection::new(&[(
        "tok",
        crate::support::active("read", serde_json::json!("https://api.test")),
    )]);
    let app = app(config(fake.clone().serve().await));

    let answer = send(&app, with_certificate(OTHER)).await;

    assert_eq!(answer.status, StatusCode::OK);
}

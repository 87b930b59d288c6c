use ephemera_client::{AuthorizationRequest, ClientIdentity, Error, SecretMethod};
use ephemera_proto::error::ErrorCode;
use ephemera_proto::PUSHED_CLIENT_URN;
use serde_json::json;

use crate::support::FakeServer;

const REDIRECT_URI: &str = "http://127.0.0.1:9/callback";

fn pushed_client() -> ClientIdentity {
    ClientIdentity::pushed(json!({
        "client_name": "agent",
        "redirect_uris": [REDIRECT_URI],
        "token_endpoint_auth_method": "none",
    }))
}

#[tokio::test]
async fn a_pushed_client_pushes_its_registration_with_pkce_and_state() {
    let fake = FakeServer::start().await;
    let server = fake.client().await;
    let request = AuthorizationRequest::new(REDIRECT_URI)
        .scope("read")
        .resource("https://api.example");

    let pending = server.push(&pushed_client(), request).await.unwrap();

    let par = &fake.requests("/par")[0];
    assert_eq!(par.authorization, None);
    assert_eq!(par.one("client_id"), PUSHED_CLIENT_URN);
    let registration: serde_json::Value =
        serde_json::from_str(par.one("client_registration")).unwrap();
    assert_eq!(registration["client_name"], "agent");
    assert_eq!(par.one("response_type"), "code");
    assert_eq!(par.one("state"), pending.state);
    assert_eq!(
        par.one("code_challenge"),
        pending.code_verifier.challenge().as_str()
    );
    assert_eq!(par.one("resource"), "https://api.example");
    assert_eq!(pending.client_id, PUSHED_CLIENT_URN);
    let query: Vec<(String, String)> = pending
        .authorization_url
        .query_pairs()
        .into_owned()
        .collect();
    assert_eq!(
        query,
        [
            ("client_id".to_owned(), PUSHED_CLIENT_URN.to_owned()),
            ("request_uri".to_owned(), pending.request_uri.clone())
        ]
    );
    assert_eq!(pending.authorization_url.path(), "/authorize");
}

#[tokio::test]
async fn a_pushed_client_goes_from_par_to_tokens_and_refreshes_them() {
    let fake = FakeServer::start().await;
    let server = fake.client().await;
    let client = pushed_client();
    let pending = server
        .push(
            &client,
            AuthorizationRequest::new(REDIRECT_URI).scope("read"),
        )
        .await
        .unwrap();

    let callback = fake.approve(&pending);
    let code = pending
        .code_from_callback(&callback, server.issuer())
        .unwrap();
    let tokens = server.exchange_code(&pending, &code).await.unwrap();
    let refresh_token = tokens.refresh_token.clone().unwrap();
    let refreshed = server.refresh(&client, &refresh_token, None).await.unwrap();
    let replayed = server.refresh(&client, &refresh_token, None).await;

    assert_eq!(tokens.scope.as_deref(), Some("read"));
    assert_ne!(refreshed.access_token, tokens.access_token);
    assert!(matches!(replayed, Err(Error::OAuth { status: 400, .. })));
    let token_request = &fake.requests("/token")[0];
    assert_eq!(token_request.one("client_id"), PUSHED_CLIENT_URN);
    assert_eq!(token_request.one("redirect_uri"), REDIRECT_URI);
}

#[tokio::test]
async fn a_code_redeemed_twice_is_an_invalid_grant() {
    let fake = FakeServer::start().await;
    let server = fake.client().await;
    let pending = server
        .push(&pushed_client(), AuthorizationRequest::new(REDIRECT_URI))
        .await
        .unwrap();
    let code = pending
        .code_from_callback(&fake.approve(&pending), server.issuer())
        .unwrap();

    server.exchange_code(&pending, &code).await.unwrap();
    let second = server.exchange_code(&pending, &code).await;

    let error = second.unwrap_err();
    assert_eq!(error.error_code(), Some(ErrorCode::InvalidGrant));
    assert!(matches!(error, Error::OAuth { status: 400, .. }));
}

#[tokio::test]
async fn a_confidential_client_authenticates_its_par_with_basic() {
    let fake = FakeServer::start().await;
    let server = fake.client().await;
    let client = ClientIdentity::confidential("app", "secret", SecretMethod::Basic);

    let pending = server
        .push(&client, AuthorizationRequest::new(REDIRECT_URI))
        .await
        .unwrap();

    let par = &fake.requests("/par")[0];
    assert!(par.authorization.as_deref().unwrap().starts_with("Basic "));
    assert!(par.get("client_id").is_empty() && par.get("client_registration").is_empty());
    assert_eq!(
        pending.authorization_url.query_pairs().next().unwrap().1,
        "app"
    );
}

use ephemera_client::{
    AccessToken, AuthorizationRequest, AuthorizationServer, ClientIdentity, ClientKey, DpopKey,
    PendingAuthorization, TokenResponse,
};
use ephemera_proto::assertion::JWT_BEARER_ASSERTION;
use ephemera_proto::error::ErrorCode;
use ephemera_proto::PUSHED_CLIENT_URN;
use serde_json::{json, Value};

use crate::support::{FakeServer, NoncePolicy, AS_NONCE, RS_NONCE};

const REDIRECT_URI: &str = "http://127.0.0.1:9/callback";

fn registration() -> Value {
    json!({"client_name": "agent", "redirect_uris": [REDIRECT_URI]})
}

async fn authorize(
    fake: &FakeServer,
    server: &AuthorizationServer,
    identity: &ClientIdentity,
) -> (PendingAuthorization, String) {
    let pending = server
        .push(
            identity,
            AuthorizationRequest::new(REDIRECT_URI).scope("read"),
        )
        .await
        .unwrap();
    let code = pending
        .code_from_callback(&fake.approve(&pending), server.issuer())
        .unwrap();
    (pending, code)
}

async fn flow(
    fake: &FakeServer,
    server: &AuthorizationServer,
    identity: &ClientIdentity,
) -> TokenResponse {
    let (pending, code) = authorize(fake, server, identity).await;
    server.exchange_code(&pending, &code).await.unwrap()
}

#[tokio::test]
async fn a_dpop_key_binds_the_grant_from_par_to_refresh() {
    let fake = FakeServer::start().await;
    let server = fake.client().await;
    let key = DpopKey::generate();
    let identity = ClientIdentity::pushed(registration()).with_dpop(key.clone());

    let tokens = flow(&fake, &server, &identity).await;
    let refreshed = server
        .refresh(&identity, tokens.refresh_token.as_deref().unwrap(), None)
        .await
        .unwrap();

    assert_eq!(tokens.token_type, "DPoP");
    assert_eq!(refreshed.token_type, "DPoP");
    let par = &fake.requests("/par")[0];
    assert_eq!(par.dpop_claims()["htm"], "POST");
    assert_eq!(par.dpop_claims()["htu"], format!("{}/par", fake.base));
    let token_requests = fake.requests("/token");
    assert_eq!(token_requests.len(), 2);
    for request in &token_requests {
        assert_eq!(request.dpop_claims()["htu"], format!("{}/token", fake.base));
        assert!(request.dpop_claims().get("ath").is_none());
    }
    assert_ne!(
        token_requests[0].dpop_claims()["jti"],
        token_requests[1].dpop_claims()["jti"]
    );
}

#[tokio::test]
async fn a_refresh_without_the_key_or_with_another_key_is_refused() {
    let fake = FakeServer::start().await;
    let server = fake.client().await;
    let identity = ClientIdentity::pushed(registration()).with_dpop(DpopKey::generate());
    let tokens = flow(&fake, &server, &identity).await;
    let refresh_token = tokens.refresh_token.as_deref().unwrap();

    let without_key = ClientIdentity::pushed(registration());
    let with_other_key = without_key.clone().with_dpop(DpopKey::generate());
    let unproved = server.refresh(&without_key, refresh_token, None).await;
    let other = server.refresh(&with_other_key, refresh_token, None).await;
    let proved = server.refresh(&identity, refresh_token, None).await;

    assert_eq!(
        unproved.unwrap_err().error_code(),
        Some(ErrorCode::InvalidDpopProof)
    );
    assert_eq!(
        other.unwrap_err().error_code(),
        Some(ErrorCode::InvalidDpopProof)
    );
    assert!(proved.is_ok());
}

#[tokio::test]
async fn a_use_dpop_nonce_answer_is_retried_once_and_the_nonce_is_remembered() {
    let fake = FakeServer::start_with_nonces(NoncePolicy::Required).await;
    let server = fake.client().await;
    let identity = ClientIdentity::pushed_with_key(registration(), ClientKey::generate())
        .with_dpop(DpopKey::generate());

    let tokens = flow(&fake, &server, &identity).await;

    assert_eq!(tokens.token_type, "DPoP");
    assert_eq!(server.dpop_nonce().as_deref(), Some(AS_NONCE));
    let pars = fake.requests("/par");
    assert_eq!(pars.len(), 2, "one refusal, one retry");
    assert!(pars[0].dpop_claims().get("nonce").is_none());
    assert_eq!(pars[1].dpop_claims()["nonce"], AS_NONCE);
    // The retry carries a fresh assertion: the fake refuses a replayed jti.
    assert_ne!(
        pars[0].one("client_assertion"),
        pars[1].one("client_assertion")
    );
    // The token request used the remembered nonce the first time.
    let token_requests = fake.requests("/token");
    assert_eq!(token_requests.len(), 1);
    assert_eq!(token_requests[0].dpop_claims()["nonce"], AS_NONCE);
}

#[tokio::test]
async fn a_server_that_keeps_asking_for_a_nonce_gets_one_retry_only() {
    let fake = FakeServer::start_with_nonces(NoncePolicy::Unsatisfiable).await;
    let server = fake.client().await;
    let identity = ClientIdentity::pushed(registration()).with_dpop(DpopKey::generate());

    let result = server
        .push(&identity, AuthorizationRequest::new(REDIRECT_URI))
        .await;

    assert_eq!(
        result.unwrap_err().error_code(),
        Some(ErrorCode::UseDpopNonce)
    );
    assert_eq!(fake.requests("/par").len(), 2);
}

#[tokio::test]
async fn a_pushed_client_with_a_key_proves_it_on_every_request() {
    let fake = FakeServer::start().await;
    let server = fake.client().await;
    let key = ClientKey::generate();
    let identity = ClientIdentity::pushed_with_key(registration(), key.clone());

    let tokens = flow(&fake, &server, &identity).await;
    let refresh_token = tokens.refresh_token.clone().unwrap();
    let refreshed = server
        .refresh(&identity, &refresh_token, None)
        .await
        .unwrap();
    server
        .revoke(&identity, refreshed.refresh_token.as_deref().unwrap(), None)
        .await
        .unwrap();

    assert_eq!(tokens.token_type, "Bearer");
    let par = &fake.requests("/par")[0];
    let pushed: Value = serde_json::from_str(par.one("client_registration")).unwrap();
    assert_eq!(pushed["jwks"], key.jwks());
    assert_eq!(pushed["token_endpoint_auth_method"], "private_key_jwt");
    let mut requests = fake.requests("/par");
    requests.extend(fake.requests("/token"));
    requests.extend(fake.requests("/revoke"));
    assert_eq!(requests.len(), 4);
    for request in &requests {
        assert_eq!(request.one("client_id"), PUSHED_CLIENT_URN);
        assert_eq!(request.one("client_assertion_type"), JWT_BEARER_ASSERTION);
        assert_eq!(request.authorization, None);
    }
}

#[tokio::test]
async fn a_code_redeemed_with_another_key_is_refused() {
    let fake = FakeServer::start().await;
    let server = fake.client().await;
    let identity = ClientIdentity::pushed_with_key(registration(), ClientKey::generate());
    let (mut pending, code) = authorize(&fake, &server, &identity).await;

    pending.identity = ClientIdentity::pushed_with_key(registration(), ClientKey::generate());
    let result = server.exchange_code(&pending, &code).await;

    assert_eq!(
        result.unwrap_err().error_code(),
        Some(ErrorCode::InvalidClient)
    );
}

#[tokio::test]
async fn a_dpop_token_reaches_the_resource_server_after_one_nonce_retry() {
    let fake = FakeServer::start().await;
    let server = fake.client().await;
    let key = DpopKey::generate();
    let identity = ClientIdentity::pushed(registration()).with_dpop(key.clone());
    let tokens = flow(&fake, &server, &identity).await;
    let token = AccessToken::from_response(&tokens, Some(&key)).unwrap();
    let url = format!("{}/resource", fake.base);

    let first = token
        .send_with_nonce_retry(server.http().get(format!("{url}?page=1")))
        .await
        .unwrap();
    let second = token
        .send_with_nonce_retry(server.http().get(&url))
        .await
        .unwrap();

    assert_eq!(first.status(), 200);
    assert_eq!(second.status(), 200);
    let body: Value = second.json().await.unwrap();
    assert_eq!(body["token"], tokens.access_token);
    let requests = fake.requests("/resource");
    assert_eq!(
        requests.len(),
        3,
        "a refusal, its retry, then the nonce is known"
    );
    assert!(requests[0].dpop_claims().get("nonce").is_none());
    for request in &requests[1..] {
        assert_eq!(request.dpop_claims()["nonce"], RS_NONCE);
        assert_eq!(request.dpop_claims()["htu"], url);
        assert_eq!(
            request.authorization.as_deref(),
            Some(format!("DPoP {}", tokens.access_token).as_str())
        );
    }
    assert_eq!(token.dpop_nonce(&url).as_deref(), Some(RS_NONCE));
}

#[tokio::test]
async fn a_bearer_token_reaches_the_resource_server_without_a_proof() {
    let fake = FakeServer::start().await;
    let server = fake.client().await;
    let tokens = flow(&fake, &server, &ClientIdentity::pushed(registration())).await;
    let token = AccessToken::from_response(&tokens, None).unwrap();

    let response = token
        .send_with_nonce_retry(server.http().get(format!("{}/resource", fake.base)))
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    let request = &fake.requests("/resource")[0];
    assert_eq!(request.dpop, None);
    assert_eq!(
        request.authorization.as_deref(),
        Some(format!("Bearer {}", tokens.access_token).as_str())
    );
}

#[tokio::test]
async fn a_dpop_token_presented_as_bearer_is_refused() {
    let fake = FakeServer::start().await;
    let server = fake.client().await;
    let identity = ClientIdentity::pushed(registration()).with_dpop(DpopKey::generate());
    let tokens = flow(&fake, &server, &identity).await;

    let response = AccessToken::bearer(tokens.access_token)
        .send_with_nonce_retry(server.http().get(format!("{}/resource", fake.base)))
        .await
        .unwrap();

    assert_eq!(response.status(), 401);
    assert_eq!(fake.requests("/resource").len(), 1);
}

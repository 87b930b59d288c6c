use ephemera_client::exchange::TOKEN_EXCHANGE_GRANT;
use ephemera_client::identity::basic_authorization;
use ephemera_client::server::JWT_BEARER_GRANT;
use ephemera_client::{
    AccessToken, ClientIdentity, DpopKey, Error, SecretMethod, TokenExchangeRequest, TokenType,
};
use ephemera_proto::error::ErrorCode;

use crate::support::grants::{FORBIDDEN_RESOURCE, ID_TOKEN, WORKLOAD_JWT};
use crate::support::{FakeServer, NoncePolicy, AS_NONCE, SVC_ID, SVC_SECRET};

#[tokio::test]
async fn a_token_exchange_sends_every_rfc_8693_parameter_with_the_clients_authentication() {
    let fake = FakeServer::start().await;
    let server = fake.client().await;
    let service = ClientIdentity::confidential(SVC_ID, SVC_SECRET, SecretMethod::Basic);
    let users = server.client_credentials(&service, None).await.unwrap();
    let request = TokenExchangeRequest::new(&users.access_token, TokenType::ACCESS_TOKEN)
        .actor("actor-jwt", TokenType::JWT)
        .requested_token_type(TokenType::ACCESS_TOKEN)
        .resource(format!("{}/resource", fake.base))
        .audience("backend")
        .scope("read");

    let exchanged = server.token_exchange(&service, &request).await.unwrap();

    let sent = &fake.requests("/token")[1];
    assert_eq!(sent.one("grant_type"), TOKEN_EXCHANGE_GRANT);
    assert_eq!(sent.one("subject_token"), users.access_token);
    assert_eq!(
        sent.one("subject_token_type"),
        TokenType::ACCESS_TOKEN.as_str()
    );
    assert_eq!(sent.one("actor_token"), "actor-jwt");
    assert_eq!(sent.one("actor_token_type"), TokenType::JWT.as_str());
    assert_eq!(
        sent.one("requested_token_type"),
        TokenType::ACCESS_TOKEN.as_str()
    );
    assert_eq!(sent.get("resource"), [format!("{}/resource", fake.base)]);
    assert_eq!(sent.get("audience"), ["backend"]);
    assert_eq!(sent.one("scope"), "read");
    let basic = basic_authorization(SVC_ID, SVC_SECRET);
    assert_eq!(sent.authorization.as_deref(), Some(basic.as_str()));
    assert!(sent.get("client_secret").is_empty() && sent.dpop.is_none());
    assert_eq!(exchanged.issued_token_type, TokenType::ACCESS_TOKEN);
    assert_eq!(
        (exchanged.token_type.as_str(), exchanged.expires_in),
        ("Bearer", Some(300))
    );
    assert_eq!(exchanged.scope.as_deref(), Some("read"));
}

#[tokio::test]
async fn an_exchange_with_a_dpop_key_gets_a_dpop_bound_token_after_one_nonce_retry() {
    let fake = FakeServer::start_with_nonces(NoncePolicy::Required).await;
    let server = fake.client().await;
    let plain = ClientIdentity::confidential(SVC_ID, SVC_SECRET, SecretMethod::Post);
    let users = server.client_credentials(&plain, None).await.unwrap();
    let dpop = DpopKey::generate();
    let service = plain.clone().with_dpop(dpop.clone());
    let request = TokenExchangeRequest::new(&users.access_token, TokenType::ACCESS_TOKEN)
        .resource(format!("{}/resource", fake.base));

    let exchanged = server.token_exchange(&service, &request).await.unwrap();
    let token = AccessToken::from_exchange(&exchanged, service.dpop_key()).unwrap();
    let response = token
        .send_with_nonce_retry(server.http().get(format!("{}/resource", fake.base)))
        .await
        .unwrap();

    let sent = fake.requests("/token");
    assert_eq!(sent.len(), 3, "the grant, then the exchange twice");
    assert_eq!(sent[1].dpop_claims().get("nonce"), None);
    assert_eq!(sent[2].dpop_claims()["nonce"], AS_NONCE);
    assert_eq!(sent[2].one("client_secret"), SVC_SECRET);
    assert_eq!(exchanged.token_type, "DPoP");
    assert_eq!(token.scheme(), "DPoP");
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn an_id_jag_from_the_identity_provider_is_presented_as_a_jwt_bearer_grant() {
    // The fake is the enterprise identity provider and the authorization
    // server both.
    let fake = FakeServer::start().await;
    let server = fake.client().await;
    let client = ClientIdentity::confidential(SVC_ID, SVC_SECRET, SecretMethod::Basic);
    let mcp = "https://mcp.example/mcp";

    let request = TokenExchangeRequest::id_jag(ID_TOKEN, server.issuer(), mcp);
    let exchanged = server.token_exchange(&client, &request).await.unwrap();
    let id_jag = exchanged.token_of_type(&TokenType::ID_JAG).unwrap();
    let tokens = server
        .jwt_bearer(&client, id_jag, Some("read"), &[mcp.to_owned()])
        .await
        .unwrap();

    let sent = fake.requests("/token");
    assert_eq!(
        sent[0].one("subject_token_type"),
        TokenType::ID_TOKEN.as_str()
    );
    assert_eq!(
        sent[0].one("requested_token_type"),
        TokenType::ID_JAG.as_str()
    );
    assert_eq!(sent[0].get("audience"), [fake.issuer.as_str()]);
    assert_eq!(sent[0].get("resource"), [mcp]);
    assert_eq!(
        (exchanged.token_type.as_str(), exchanged.expires_in),
        ("N_A", None)
    );
    assert!(!exchanged.is_access_token());
    assert_eq!(sent[1].one("grant_type"), JWT_BEARER_GRANT);
    assert_eq!(sent[1].one("assertion"), id_jag);
    assert_eq!(sent[1].one("scope"), "read");
    assert_eq!(sent[1].get("resource"), [mcp]);
    assert!(sent[1].authorization.is_some());
    assert_eq!(tokens.token_type, "Bearer");
    assert_eq!(tokens.scope.as_deref(), Some("read"));
}

#[tokio::test]
async fn a_workload_presents_its_platform_jwt_as_a_public_client_with_dpop() {
    let fake = FakeServer::start().await;
    let server = fake.client().await;
    let workload = ClientIdentity::public("workload").with_dpop(DpopKey::generate());

    let tokens = server
        .jwt_bearer(&workload, WORKLOAD_JWT, None, &[])
        .await
        .unwrap();

    let sent = &fake.requests("/token")[0];
    assert_eq!(sent.one("grant_type"), JWT_BEARER_GRANT);
    assert_eq!(sent.one("assertion"), WORKLOAD_JWT);
    assert_eq!(sent.one("client_id"), "workload");
    assert!(sent.authorization.is_none());
    assert!(sent.get("scope").is_empty() && sent.get("resource").is_empty());
    assert_eq!(sent.dpop_claims()["htu"], format!("{}/token", fake.base));
    assert_eq!(tokens.token_type, "DPoP");
}

#[tokio::test]
async fn a_refused_exchange_or_assertion_is_an_oauth_error_and_not_retried() {
    let fake = FakeServer::start().await;
    let server = fake.client().await;
    let client = ClientIdentity::confidential(SVC_ID, SVC_SECRET, SecretMethod::Basic);

    let forbidden = TokenExchangeRequest::id_jag(ID_TOKEN, server.issuer(), FORBIDDEN_RESOURCE);
    let exchange = server.token_exchange(&client, &forbidden).await;
    let unknown = server.jwt_bearer(&client, "made-up", None, &[]).await;

    match exchange {
        Err(Error::OAuth { status, body }) => {
            assert_eq!(status, 400);
            assert_eq!(body.error, ErrorCode::InvalidTarget);
        }
        other => panic!("expected invalid_target, got {other:?}"),
    }
    assert_eq!(
        unknown.unwrap_err().error_code(),
        Some(ErrorCode::InvalidGrant)
    );
    assert_eq!(fake.requests("/token").len(), 2);
}

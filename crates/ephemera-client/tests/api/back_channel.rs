use ephemera_client::{ClientIdentity, Error, SecretMethod};
use ephemera_proto::error::ErrorCode;

use crate::support::{FakeServer, RS_BASIC, SVC_ID, SVC_SECRET};

#[tokio::test]
async fn client_credentials_work_with_basic_and_post() {
    let fake = FakeServer::start().await;
    let server = fake.client().await;

    let basic = ClientIdentity::confidential(SVC_ID, SVC_SECRET, SecretMethod::Basic);
    let post = ClientIdentity::confidential(SVC_ID, SVC_SECRET, SecretMethod::Post);
    let with_basic = server
        .client_credentials(&basic, Some("read"))
        .await
        .unwrap();
    let with_post = server.client_credentials(&post, None).await.unwrap();

    assert_eq!(with_basic.scope.as_deref(), Some("read"));
    assert_eq!(with_basic.token_type, "Bearer");
    assert!(!with_post.access_token.is_empty());
    let requests = fake.requests("/token");
    assert!(requests[0].get("client_secret").is_empty());
    assert_eq!(requests[1].one("client_secret"), SVC_SECRET);
}

#[tokio::test]
async fn client_credentials_for_a_resource_name_it_on_the_token_request() {
    let fake = FakeServer::start().await;
    let server = fake.client().await;
    let client = ClientIdentity::confidential(SVC_ID, SVC_SECRET, SecretMethod::Basic);
    let resources = ["https://mcp.example/mcp".to_owned()];

    server
        .client_credentials_for(&client, None, &resources)
        .await
        .unwrap();

    let requests = fake.requests("/token");
    assert_eq!(requests[0].one("grant_type"), "client_credentials");
    assert_eq!(requests[0].get("resource"), ["https://mcp.example/mcp"]);
}

#[tokio::test]
async fn a_wrong_secret_is_an_invalid_client_error() {
    let fake = FakeServer::start().await;
    let server = fake.client().await;
    let client = ClientIdentity::confidential(SVC_ID, "wrong", SecretMethod::Basic);

    let result = server.client_credentials(&client, None).await;

    match result {
        Err(Error::OAuth { status, body }) => {
            assert_eq!(status, 401);
            assert_eq!(body.error, ErrorCode::InvalidClient);
            assert_eq!(body.error_description.as_deref(), Some("from the fake"));
        }
        other => panic!("expected invalid_client, got {other:?}"),
    }
}

#[tokio::test]
async fn revocation_sends_the_token_hint_and_client_id() {
    let fake = FakeServer::start().await;
    let server = fake.client().await;

    server
        .revoke(
            &ClientIdentity::public("app"),
            "rt-1",
            Some("refresh_token"),
        )
        .await
        .unwrap();

    let revoke = &fake.requests("/revoke")[0];
    assert_eq!(revoke.one("token"), "rt-1");
    assert_eq!(revoke.one("token_type_hint"), "refresh_token");
    assert_eq!(revoke.one("client_id"), "app");
}

#[tokio::test]
async fn introspection_authenticates_with_basic_and_reads_the_answer() {
    let fake = FakeServer::start().await;
    let server = fake.client().await;
    let client = ClientIdentity::confidential(SVC_ID, SVC_SECRET, SecretMethod::Basic);
    let tokens = server.client_credentials(&client, None).await.unwrap();

    let active = server
        .introspect("rs", "rs-secret", &tokens.access_token)
        .await
        .unwrap();
    let inactive = server
        .introspect("rs", "rs-secret", "nonsense")
        .await
        .unwrap();
    let unauthenticated = server.introspect("rs", "wrong", &tokens.access_token).await;

    assert!(active.active);
    assert_eq!(active.iss.as_deref(), Some(fake.issuer.as_str()));
    assert_eq!(active.audiences(), ["a", "b"]);
    assert!(!inactive.active);
    assert_eq!(
        unauthenticated.unwrap_err().error_code(),
        Some(ErrorCode::InvalidClient)
    );
    assert_eq!(
        fake.requests("/introspect")[0].authorization.as_deref(),
        Some(RS_BASIC)
    );
}

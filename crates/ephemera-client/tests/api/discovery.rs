use ephemera_client::{AuthorizationServer, Error};

use crate::support::FakeServer;

#[tokio::test]
async fn discovery_reads_the_metadata_of_the_issuer() {
    let fake = FakeServer::start().await;

    let server = AuthorizationServer::discover(&fake.issuer).await.unwrap();

    assert_eq!(server.issuer(), fake.issuer);
    assert_eq!(
        server.metadata().token_endpoint,
        format!("{}/token", fake.base)
    );
    assert!(server.metadata().pushed_client_registration_supported);
}

#[tokio::test]
async fn discovery_refuses_metadata_naming_another_issuer() {
    let impostor = FakeServer::start_claiming(Some("http://as.example")).await;

    let result = AuthorizationServer::discover(&impostor.base).await;

    assert!(matches!(result, Err(Error::Protocol(m)) if m.contains("issuer")));
}

#[tokio::test]
async fn discovery_of_a_server_that_is_not_there_is_an_http_error() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);

    let result = AuthorizationServer::discover(&format!("http://{address}")).await;

    assert!(matches!(result, Err(Error::Http(_))));
}

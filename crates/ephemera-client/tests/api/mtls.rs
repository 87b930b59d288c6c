use ephemera_client::{
    AccessToken, AuthorizationRequest, AuthorizationServer, ClientIdentity, Error,
    PendingAuthorization, TokenResponse,
};
use ephemera_proto::error::ErrorCode;
use ephemera_proto::PUSHED_CLIENT_URN;
use serde_json::{json, Value};

use crate::support::{ClientCertificate, FakeServer};

const REDIRECT_URI: &str = "http://127.0.0.1:9/callback";

fn registration(bound: bool) -> Value {
    json!({
        "client_name": "agent",
        "redirect_uris": [REDIRECT_URI],
        "tls_client_certificate_bound_access_tokens": bound,
    })
}

fn identity(certificate: &ClientCertificate, bound: bool) -> ClientIdentity {
    ClientIdentity::pushed_with_certificate(
        registration(bound),
        &certificate.der,
        certificate.jwk.clone(),
    )
}

async fn authorize(
    fake: &FakeServer,
    server: &AuthorizationServer,
    identity: &ClientIdentity,
) -> Result<(PendingAuthorization, String), Error> {
    let pending = server
        .push(identity, AuthorizationRequest::new(REDIRECT_URI))
        .await?;
    let code = pending.code_from_callback(&fake.approve(&pending), server.issuer())?;
    Ok((pending, code))
}

async fn flow(
    fake: &FakeServer,
    server: &AuthorizationServer,
    identity: &ClientIdentity,
) -> TokenResponse {
    let (pending, code) = authorize(fake, server, identity).await.unwrap();
    server.exchange_code(&pending, &code).await.unwrap()
}

/// Every source of an error, for reading what rustls said.
fn sources(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text
}

#[tokio::test]
async fn an_https_issuer_is_discovered_with_its_root_and_refused_without() {
    let fake = FakeServer::start_tls().await;

    // The default client speaks TLS but does not know the fake's root.
    let unknown = AuthorizationServer::discover(&fake.issuer).await;
    let server = fake.client_with(None).await;

    match unknown {
        Err(Error::Http(e)) => {
            let text = sources(&e);
            assert!(text.contains("UnknownIssuer"), "{text}");
        }
        other => panic!("expected a certificate error, got {other:?}"),
    }
    assert!(fake.issuer.starts_with("https://"));
    assert_eq!(server.issuer(), fake.issuer);
}

#[tokio::test]
async fn a_pushed_client_authenticates_with_its_certificate_from_par_to_revocation() {
    let fake = FakeServer::start_tls().await;
    let agent = ClientCertificate::new("agent");
    let server = fake.client_with(Some(&agent)).await;
    let identity = identity(&agent, false);

    let tokens = flow(&fake, &server, &identity).await;
    let refresh_token = tokens.refresh_token.as_deref().unwrap();
    let refreshed = server
        .refresh(&identity, refresh_token, None)
        .await
        .unwrap();
    server
        .revoke(&identity, refreshed.refresh_token.as_deref().unwrap(), None)
        .await
        .unwrap();

    let par = &fake.requests("/par")[0];
    let pushed: Value = serde_json::from_str(par.one("client_registration")).unwrap();
    assert_eq!(
        pushed["token_endpoint_auth_method"],
        "self_signed_tls_client_auth"
    );
    assert_eq!(pushed["jwks"]["keys"][0]["x"], agent.jwk["x"]);
    assert_eq!(par.one("client_id"), PUSHED_CLIENT_URN);
    let mut requests = fake.requests("/par");
    requests.extend(fake.requests("/token"));
    requests.extend(fake.requests("/revoke"));
    assert_eq!(requests.len(), 4);
    for request in &requests {
        assert_eq!(request.certificate.as_ref(), Some(&agent.der));
        assert!(request.get("client_assertion").is_empty());
        assert!(request.get("client_secret").is_empty());
        assert_eq!(request.authorization, None);
    }
}

#[tokio::test]
async fn without_its_certificate_or_with_another_the_client_is_refused() {
    let fake = FakeServer::start_tls().await;
    let agent = ClientCertificate::new("agent");
    let thief = ClientCertificate::new("thief");

    for certificate in [None, Some(&thief)] {
        let server = fake.client_with(certificate).await;
        let result = authorize(&fake, &server, &identity(&agent, false)).await;
        assert_eq!(
            result.err().and_then(|e| e.error_code()),
            Some(ErrorCode::InvalidClient)
        );
    }
}

#[tokio::test]
async fn a_certificate_bound_token_works_over_the_same_client_only() {
    let fake = FakeServer::start_tls().await;
    let agent = ClientCertificate::new("agent");
    let server = fake.client_with(Some(&agent)).await;
    let tokens = flow(&fake, &server, &identity(&agent, true)).await;
    let resource = format!("{}/resource", fake.base);

    // RFC 8705 §3: still `Bearer`; the binding is the connection.
    assert_eq!(tokens.token_type, "Bearer");
    let token = AccessToken::from_response(&tokens, None).unwrap();
    let response = token
        .send_with_nonce_retry(server.http().get(&resource))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let thief = ClientCertificate::new("thief");
    for http in [fake.http(None), fake.http(Some(&thief))] {
        let response = token
            .send_with_nonce_retry(http.get(&resource))
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
    }
}

#[tokio::test]
async fn a_refresh_of_a_bound_grant_over_another_certificate_is_refused() {
    let fake = FakeServer::start_tls().await;
    let agent = ClientCertificate::new("agent");
    let server = fake.client_with(Some(&agent)).await;
    // A client without certificate authentication, with bound tokens.
    let identity = ClientIdentity::pushed(registration(true));
    let tokens = flow(&fake, &server, &identity).await;
    let refresh_token = tokens.refresh_token.as_deref().unwrap();

    let thief = fake
        .client_with(Some(&ClientCertificate::new("thief")))
        .await;
    let stolen = thief.refresh(&identity, refresh_token, None).await;
    let refreshed = server.refresh(&identity, refresh_token, None).await;

    assert_eq!(
        stolen.err().and_then(|e| e.error_code()),
        Some(ErrorCode::InvalidClient)
    );
    assert_eq!(refreshed.unwrap().token_type, "Bearer");
}

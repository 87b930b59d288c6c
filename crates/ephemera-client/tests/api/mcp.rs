//! The MCP client against a fake deployment (`support::mcp`): discovery
//! from a `401`, the well-known orders, the registration order, the
//! authorization request without PAR, `resource`, `iss` and step-up.
//! (Ephemera's own tests run the same client against the real server.)

use std::time::Duration;

use ephemera_client::challenge::{insufficient_scope, scope_union};
use ephemera_client::{
    AccessToken, AuthorizationRequest, AuthorizationServer, ClientIdentity, ClientRegistration,
    Error, MemoryTokenStore, PendingAuthorization, ProtectedResource, RegistrationMethod,
    StoredTokens, TokenKey, TokenResponse, TokenStore,
};
use serde_json::json;

use crate::support::mcp::{McpFake, McpOptions, MetadataAt};

const REDIRECT_URI: &str = "http://127.0.0.1:9/callback";
/// Every test ends well within this.
const BOUND: Duration = Duration::from_secs(30);

fn client() -> ClientRegistration {
    ClientRegistration::new(json!({
        "client_name": "MCP agent",
        "redirect_uris": [REDIRECT_URI],
        "grant_types": ["authorization_code"],
        "token_endpoint_auth_method": "none",
    }))
}

fn http() -> reqwest::Client {
    ephemera_client::server::default_http_client()
}

/// Discovery from the fake's `/mcp`, then the authorization server.
async fn discover(fake: &McpFake) -> (ProtectedResource, AuthorizationServer) {
    let resource = ProtectedResource::discover(&http(), &fake.resource)
        .await
        .unwrap();
    let server = resource.authorization_server(&http()).await.unwrap();
    (resource, server)
}

/// Registration, the authorization request for `scope` and `resource`,
/// the user's approval and the code exchange.
async fn login(
    fake: &McpFake,
    server: &AuthorizationServer,
    registration: &ClientRegistration,
    resource: &ProtectedResource,
    scope: Option<String>,
) -> (PendingAuthorization, TokenResponse) {
    let client = registration.register(server).await.unwrap();
    let request = AuthorizationRequest::new(REDIRECT_URI)
        .maybe_scope(scope)
        .resource(resource.resource());
    let pending = server.begin(&client.identity, request).await.unwrap();
    let callback = fake.approve(&pending);
    let code = pending.code(&callback).unwrap();
    let tokens = server.exchange_code(&pending, &code).await.unwrap();
    (pending, tokens)
}

#[tokio::test]
async fn discovery_follows_the_401_to_the_resource_metadata_and_a_path_issuers_openid_configuration(
) {
    tokio::time::timeout(BOUND, async {
        let fake = McpFake::start(McpOptions {
            issuer_path: "/tenant",
            metadata_at: MetadataAt::OpenIdInserted,
            ..McpOptions::default()
        })
        .await;

        let (resource, server) = discover(&fake).await;

        assert_eq!(resource.resource(), fake.resource);
        assert_eq!(resource.scope().as_deref(), Some("read"));
        assert_eq!(resource.issuer().unwrap(), fake.issuer);
        assert_eq!(server.issuer(), format!("{}/tenant", fake.base));
        assert_eq!(
            fake.gets(),
            [
                "/mcp",
                "/.well-known/oauth-protected-resource/mcp",
                "/.well-known/oauth-authorization-server/tenant",
                "/.well-known/openid-configuration/tenant",
            ]
        );
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn without_resource_metadata_in_the_challenge_the_well_known_uris_are_tried_in_order() {
    tokio::time::timeout(BOUND, async {
        let fake = McpFake::start(McpOptions {
            issuer_path: "/tenant",
            metadata_at: MetadataAt::OpenIdAppended,
            names_metadata: false,
            challenge_scope: None,
            ..McpOptions::default()
        })
        .await;

        let (resource, server) = discover(&fake).await;

        // No scope in the challenge: every scope the resource lists.
        assert_eq!(resource.scope().as_deref(), Some("read admin"));
        assert_eq!(server.issuer(), fake.issuer);
        assert_eq!(
            fake.gets(),
            [
                "/mcp",
                "/.well-known/oauth-protected-resource/mcp",
                "/.well-known/oauth-authorization-server/tenant",
                "/.well-known/openid-configuration/tenant",
                "/tenant/.well-known/openid-configuration",
            ]
        );
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_root_issuer_falls_back_to_its_openid_configuration() {
    tokio::time::timeout(BOUND, async {
        let fake = McpFake::start(McpOptions {
            metadata_at: MetadataAt::OpenIdInserted,
            ..McpOptions::default()
        })
        .await;

        let (_, server) = discover(&fake).await;

        assert_eq!(server.issuer(), fake.base);
        assert_eq!(
            &fake.gets()[2..],
            [
                "/.well-known/oauth-authorization-server",
                "/.well-known/openid-configuration",
            ]
        );
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn metadata_for_another_resource_or_naming_another_issuer_is_refused() {
    tokio::time::timeout(BOUND, async {
        let other_resource = McpFake::start(McpOptions {
            claimed_resource: Some("https://evil.example/mcp".into()),
            ..McpOptions::default()
        })
        .await;
        let error = ProtectedResource::discover(&http(), &other_resource.resource)
            .await
            .unwrap_err();
        assert!(
            matches!(&error, Error::Protocol(m) if m.contains("RFC 9728 §3.3")),
            "{error}"
        );

        let other_issuer = McpFake::start(McpOptions {
            issuer_path: "/tenant",
            metadata_at: MetadataAt::OpenIdAppended,
            claimed_issuer: Some("https://evil.example".into()),
            ..McpOptions::default()
        })
        .await;
        let resource = ProtectedResource::discover(&http(), &other_issuer.resource)
            .await
            .unwrap();
        let error = resource.authorization_server(&http()).await.unwrap_err();
        assert!(
            matches!(&error, Error::Protocol(m) if m.contains("RFC 8414 §3.3")),
            "{error}"
        );
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_server_without_par_or_pushed_registration_gets_dcr_and_the_whole_request_in_the_url() {
    tokio::time::timeout(BOUND, async {
        let fake = McpFake::start(McpOptions {
            par: false,
            pushed: false,
            ..McpOptions::default()
        })
        .await;
        let (resource, server) = discover(&fake).await;
        let registration = client();
        let registered = registration.register(&server).await.unwrap();
        assert_eq!(registered.method, RegistrationMethod::Dynamic);
        assert_eq!(fake.registrations()[0]["client_name"], "MCP agent");

        let (pending, tokens) =
            login(&fake, &server, &registration, &resource, resource.scope()).await;

        let asked = &fake.authorizations()[0];
        assert!(pending.request_uri.is_empty());
        assert!(pending.client_id.starts_with("dyn-"));
        assert_eq!(asked.one("client_id"), Some(pending.client_id.as_str()));
        assert_eq!(asked.one("response_type"), Some("code"));
        assert_eq!(asked.one("code_challenge_method"), Some("S256"));
        assert_eq!(asked.one("state"), Some(pending.state.as_str()));
        assert_eq!(asked.one("scope"), Some("read"));
        assert_eq!(asked.get("resource"), [fake.resource.as_str()]);
        let token_request = &fake.token_requests()[0];
        assert_eq!(token_request.get("resource"), [fake.resource.as_str()]);
        let response = AccessToken::from_response(&tokens, None)
            .unwrap()
            .send_with_nonce_retry(http().get(&fake.resource))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn pushed_registration_is_used_where_advertised_and_resource_goes_in_the_par() {
    tokio::time::timeout(BOUND, async {
        let fake = McpFake::start(McpOptions::default()).await;
        let (resource, server) = discover(&fake).await;

        let (pending, _) = login(&fake, &server, &client(), &resource, resource.scope()).await;

        assert_eq!(pending.client_id, ephemera_proto::PUSHED_CLIENT_URN);
        assert!(!pending.request_uri.is_empty());
        assert!(fake.registrations().is_empty());
        let pushed = &fake.authorizations()[0];
        assert!(pushed.one("client_registration").is_some());
        assert_eq!(pushed.get("resource"), [fake.resource.as_str()]);
        assert_eq!(
            fake.token_requests()[0].get("resource"),
            [fake.resource.as_str()]
        );
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_metadata_document_url_is_the_client_id_where_the_server_takes_them() {
    tokio::time::timeout(BOUND, async {
        const DOCUMENT: &str = "https://agent.example/client.json";
        let fake = McpFake::start(McpOptions {
            documents: true,
            par: false,
            ..McpOptions::default()
        })
        .await;
        let (resource, server) = discover(&fake).await;
        let registration = client().metadata_document(DOCUMENT);

        let registered = registration.register(&server).await.unwrap();
        let (pending, _) = login(&fake, &server, &registration, &resource, None).await;

        assert_eq!(registered.method, RegistrationMethod::MetadataDocument);
        assert_eq!(pending.client_id, DOCUMENT);
        assert_eq!(fake.authorizations()[0].one("client_id"), Some(DOCUMENT));
        assert_eq!(fake.authorizations()[0].one("scope"), None);
        assert!(fake.registrations().is_empty());
        // A pre-registered client_id comes first, whatever is advertised.
        let pre = registration
            .pre_registered(ClientIdentity::public("known"))
            .register(&server)
            .await
            .unwrap();
        assert_eq!(pre.method, RegistrationMethod::PreRegistered);
        assert_eq!(pre.identity.client_id(), "known");
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_redirect_naming_another_issuer_is_refused() {
    tokio::time::timeout(BOUND, async {
        let fake = McpFake::start(McpOptions {
            redirect_iss: Some("https://evil.example".into()),
            ..McpOptions::default()
        })
        .await;
        let (resource, server) = discover(&fake).await;
        let client = client().register(&server).await.unwrap();
        let request = AuthorizationRequest::new(REDIRECT_URI).resource(resource.resource());
        let pending = server.begin(&client.identity, request).await.unwrap();

        let error = pending.code(&fake.approve(&pending)).unwrap_err();

        assert!(
            matches!(&error, Error::Protocol(m) if m.contains("RFC 9207")),
            "{error}"
        );
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn iss_is_required_only_from_a_server_that_says_it_sends_it() {
    tokio::time::timeout(BOUND, async {
        for iss_supported in [true, false] {
            let fake = McpFake::start(McpOptions {
                redirect_iss: Some(String::new()),
                iss_supported,
                ..McpOptions::default()
            })
            .await;
            let (_, server) = discover(&fake).await;
            let client = client().register(&server).await.unwrap();
            let request = AuthorizationRequest::new(REDIRECT_URI);
            let pending = server.begin(&client.identity, request).await.unwrap();

            let result = pending.code(&fake.approve(&pending));

            assert_eq!(result.is_ok(), !iss_supported, "{result:?}");
        }
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_server_without_s256_or_any_way_to_register_is_refused_before_anything_is_sent() {
    tokio::time::timeout(BOUND, async {
        let no_pkce = McpFake::start(McpOptions {
            pkce: false,
            ..McpOptions::default()
        })
        .await;
        let (_, server) = discover(&no_pkce).await;
        let registered = client().register(&server).await.unwrap();
        let error = server
            .begin(
                &registered.identity,
                AuthorizationRequest::new(REDIRECT_URI),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(&error, Error::Protocol(m) if m.contains("S256")),
            "{error}"
        );
        assert!(no_pkce.authorizations().is_empty());

        let closed = McpFake::start(McpOptions {
            pushed: false,
            registration: false,
            ..McpOptions::default()
        })
        .await;
        let (_, server) = discover(&closed).await;
        let error = client().register(&server).await.unwrap_err();
        assert!(
            matches!(&error, Error::Protocol(m) if m.contains("no way to be a client")),
            "{error}"
        );
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_403_insufficient_scope_steps_up_to_the_union_and_the_new_tokens_replace_the_old() {
    tokio::time::timeout(BOUND, async {
        let fake = McpFake::start(McpOptions::default()).await;
        let (resource, server) = discover(&fake).await;
        let store = MemoryTokenStore::new();
        let key = TokenKey::new(server.issuer(), resource.resource());
        let registration = client();
        let (pending, tokens) =
            login(&fake, &server, &registration, &resource, resource.scope()).await;
        store
            .save(
                &key,
                StoredTokens::new(&pending.client_id, tokens, pending.scope.as_deref(), 0),
            )
            .unwrap();
        let admin = format!("{}/admin", fake.resource);

        let held = store.load(&key).unwrap().unwrap();
        let response = AccessToken::from_response(&held.tokens, None)
            .unwrap()
            .send_with_nonce_retry(http().get(&admin))
            .await
            .unwrap();
        assert_eq!(response.status(), 403);
        let needed = insufficient_scope(response.status().as_u16(), response.headers()).unwrap();
        assert_eq!(needed, "admin");
        let scope = scope_union(held.scope.as_deref(), &needed);
        let (pending, tokens) = login(&fake, &server, &registration, &resource, Some(scope)).await;
        store
            .save(
                &key,
                StoredTokens::new(&pending.client_id, tokens, pending.scope.as_deref(), 0),
            )
            .unwrap();

        assert_eq!(fake.authorizations()[1].one("scope"), Some("read admin"));
        let held = store.load(&key).unwrap().unwrap();
        assert_eq!(held.scope.as_deref(), Some("read admin"));
        let response = AccessToken::from_response(&held.tokens, None)
            .unwrap()
            .send_with_nonce_retry(http().get(&admin))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    })
    .await
    .unwrap();
}

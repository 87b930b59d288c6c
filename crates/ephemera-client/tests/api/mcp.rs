//! The MCP client against a fake deployment (`support::mcp`): discovery
//! from a `401`, the well-known orders, the registration order, the
//! authorization request without PAR, `resource`, `iss` and step-up; a
//! server that approves without a person; MCP's Streamable HTTP.
//! (Ephemera's own tests run the same client against the real server.)

use std::time::Duration;

use ephemera_client::challenge::{insufficient_scope, scope_union};
use ephemera_client::{
    AccessToken, AuthorizationRequest, AuthorizationServer, ClientIdentity, ClientRegistration,
    Error, McpAnswer, McpSession, MemoryTokenStore, PendingAuthorization, ProtectedResource,
    RegistrationMethod, StoredTokens, TokenKey, TokenResponse, TokenStore,
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

#[tokio::test]
async fn a_server_that_approves_by_itself_is_followed_to_the_redirect_back() {
    tokio::time::timeout(BOUND, async {
        let fake = McpFake::start(McpOptions {
            par: false,
            ..McpOptions::default()
        })
        .await;
        let (resource, server) = discover(&fake).await;
        let client = client().register(&server).await.unwrap();
        let request = AuthorizationRequest::new(REDIRECT_URI).resource(resource.resource());
        let pending = server.begin(&client.identity, request).await.unwrap();

        let callback = pending.follow_redirects(&http()).await.unwrap();

        // /authorize -> /approved -> the redirect_uri, which is not requested
        // (nothing listens on 127.0.0.1:9).
        assert!(
            callback.starts_with(&format!("{REDIRECT_URI}?code=")),
            "{callback}"
        );
        let gets = fake.gets();
        assert_eq!(gets[gets.len() - 2..], ["/authorize", "/approved"]);
        let code = pending.code(&callback).unwrap();
        server.exchange_code(&pending, &code).await.unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_page_instead_of_a_redirect_means_a_person_is_needed() {
    tokio::time::timeout(BOUND, async {
        let fake = McpFake::start(McpOptions {
            par: false,
            ..McpOptions::default()
        })
        .await;
        let (_, server) = discover(&fake).await;
        let client = client().register(&server).await.unwrap();
        let mut pending = server
            .begin(&client.identity, AuthorizationRequest::new(REDIRECT_URI))
            .await
            .unwrap();
        // The resource's JSON (a 401) stands in for a login page.
        pending.authorization_url = fake.resource.parse().unwrap();

        let error = pending.follow_redirects(&http()).await.unwrap_err();

        assert!(
            matches!(&error, Error::Protocol(m) if m.contains("needs a person")),
            "{error}"
        );
    })
    .await
    .unwrap();
}

/// A token for `scope` from the fake, by the whole flow.
async fn token_for(fake: &McpFake, scope: &str) -> AccessToken {
    let (resource, server) = discover(fake).await;
    let (_, tokens) = login(fake, &server, &client(), &resource, Some(scope.into())).await;
    AccessToken::from_response(&tokens, None).unwrap()
}

fn info() -> serde_json::Value {
    json!({"name": "agent", "version": "1.0.0"})
}

#[tokio::test]
async fn an_mcp_session_initializes_carries_its_session_and_reads_json_and_event_streams() {
    tokio::time::timeout(BOUND, async {
        let fake = McpFake::start(McpOptions::default()).await;
        let mut session = McpSession::new(
            http(),
            &fake.resource,
            ephemera_client::mcp::PROTOCOL_VERSION,
            info(),
        );

        let refused = session.initialize(None).await.unwrap();
        let McpAnswer::Refused { status, headers } = refused else {
            panic!("not refused: {refused:?}")
        };
        assert_eq!(status, 401);
        assert!(
            ProtectedResource::from_challenge(&http(), &fake.resource, &headers)
                .await
                .is_ok()
        );
        let token = token_for(&fake, "read").await;
        let initialized = session.initialize(Some(&token)).await.unwrap();
        let tools = session
            .request(Some(&token), "tools/list", json!({}))
            .await
            .unwrap();
        let called = session
            .request(
                Some(&token),
                "tools/call",
                json!({"name": "echo", "arguments": {"text": "hi"}}),
            )
            .await
            .unwrap();

        assert!(matches!(initialized, McpAnswer::Result(r) if r["serverInfo"]["name"] == "fake"));
        assert!(matches!(tools, McpAnswer::Result(r) if r["tools"][0]["name"] == "echo"));
        assert!(matches!(called, McpAnswer::Result(r) if r["content"][0]["text"] == "hi"));
        assert_eq!(session.session_id(), Some("session-1"));
        let sent = fake.mcp_messages();
        let methods: Vec<&str> = sent
            .iter()
            .map(|(m, _, _)| m["method"].as_str().unwrap())
            .collect();
        assert_eq!(
            methods,
            [
                "initialize",
                "initialize",
                "notifications/initialized",
                "tools/list",
                "tools/call"
            ]
        );
        // The session and the version go on every message after the handshake.
        assert_eq!(sent[1].1, None);
        assert_eq!(sent[1].2, None);
        for (message, session, version) in &sent[2..] {
            assert_eq!(session.as_deref(), Some("session-1"), "{message}");
            assert_eq!(version.as_deref(), Some("2025-11-25"), "{message}");
        }
        assert_eq!(sent[0].0["params"]["clientInfo"], info());
        assert_ne!(sent[3].0["id"], sent[4].0["id"]);
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn an_mcp_session_hands_back_a_403_and_a_json_rpc_error() {
    tokio::time::timeout(BOUND, async {
        let fake = McpFake::start(McpOptions::default()).await;
        let admin = format!("{}/admin", fake.resource);
        let token = token_for(&fake, "read").await;
        let mut session = McpSession::new(
            http(),
            &fake.resource,
            ephemera_client::mcp::PROTOCOL_VERSION,
            info(),
        );
        let mut at_admin = McpSession::new(
            http(),
            &admin,
            ephemera_client::mcp::PROTOCOL_VERSION,
            info(),
        );

        let forbidden = at_admin
            .request(Some(&token), "tools/list", json!({}))
            .await
            .unwrap();
        let error = session
            .request(Some(&token), "resources/list", json!({}))
            .await
            .unwrap_err();

        let McpAnswer::Refused { status, headers } = forbidden else {
            panic!("not refused: {forbidden:?}")
        };
        assert_eq!(status, 403);
        assert_eq!(
            insufficient_scope(status, &headers).as_deref(),
            Some("admin")
        );
        assert!(matches!(&error, Error::Mcp { code: -32601, .. }), "{error}");
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_stateless_session_skips_the_handshake_and_puts_the_version_in_every_request() {
    tokio::time::timeout(BOUND, async {
        let fake = McpFake::start(McpOptions::default()).await;
        let token = token_for(&fake, "read").await;
        let mut session = McpSession::new(
            http(),
            &fake.resource,
            ephemera_client::mcp::STATELESS_PROTOCOL_VERSION,
            info(),
        );

        session.initialize(Some(&token)).await.unwrap();
        session
            .request(Some(&token), "tools/list", json!({}))
            .await
            .unwrap();

        let sent = fake.mcp_messages();
        assert_eq!(sent.len(), 1, "no initialize: {sent:?}");
        let (message, _, version) = &sent[0];
        assert_eq!(message["method"], "tools/list");
        assert_eq!(version.as_deref(), Some("2026-07-28"));
        let meta = &message["params"]["_meta"];
        assert_eq!(
            meta["io.modelcontextprotocol/protocolVersion"],
            "2026-07-28"
        );
        assert_eq!(
            meta["io.modelcontextprotocol/clientCapabilities"],
            json!({})
        );
    })
    .await
    .unwrap();
}

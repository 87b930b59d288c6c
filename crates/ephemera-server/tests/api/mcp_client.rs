//! `ephemera-client` as an MCP client of the real server: discovery from
//! the `401` of a resource protected by `ephemera-resource`, each way to
//! become a client, the request with and without PAR, `resource` in the
//! tokens' audience, step-up on `insufficient_scope`; and the client's
//! `mcp_login` example run end to end.

use std::time::Duration;

use axum::routing::get;
use axum::{Json, Router};
use clap::Parser as _;
use ephemera_client::challenge::{insufficient_scope, scope_union};
use ephemera_client::{
    AccessToken, AuthorizationRequest, AuthorizationServer, ClientRegistration, MemoryTokenStore,
    PendingAuthorization, ProtectedResource, RegistrationMethod, StoredTokens, TokenKey,
    TokenResponse, TokenStore,
};
use ephemera_resource::{
    metadata, IntrospectionConfig, IntrospectionLayer, ProtectedResourceMetadata,
};
use serde_json::json;
use url::Url;

use crate::helpers::*;

// The client's example, run as the binary would run it (`main` aside).
#[allow(dead_code)]
#[path = "../../../ephemera-client/examples/mcp_login.rs"]
mod mcp_login;

/// Every test ends well within this.
const BOUND: Duration = Duration::from_secs(60);

/// An MCP server's stand-in, protected by `ephemera-resource` with `app`
/// as its authorization server: the resource `<base>/mcp` (needing `read`)
/// and below it `/mcp/write` (needing `read` and `write`), with its RFC 9728
/// metadata naming both scopes. Each answers GET with JSON and POST with
/// MCP ([`mcp_answer`]). Returns the resource's URL.
async fn mcp_resource(app: &TestApp) -> String {
    app.introspect("create the rs client").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let resource = format!("{base}/mcp");
    let mut resource_metadata = ProtectedResourceMetadata::new(&resource, app.base.clone());
    resource_metadata.scopes_supported = vec!["read".into(), "write".into()];
    let metadata_url = resource_metadata.metadata_url().unwrap();
    let config = |scopes: &[&str]| {
        let config =
            IntrospectionConfig::new(app.url("/introspect"), "rs", RS_SECRET, app.base.clone())
                .cache_ttl(Duration::ZERO)
                .public_base_url(Url::parse(&base).unwrap())
                .resource_metadata(metadata_url.clone());
        scopes
            .iter()
            .fold(config, |config, scope| config.require_scope(*scope))
    };
    let answer = || async { Json(json!({"ok": true})) };
    let api = Router::new()
        .route("/mcp", get(answer).post(mcp_answer))
        .layer(IntrospectionLayer::new(config(&["read"])))
        .merge(
            Router::new()
                .route("/mcp/write", get(answer).post(mcp_answer))
                .layer(IntrospectionLayer::new(config(&["read", "write"]))),
        )
        .merge(metadata::router(resource_metadata));
    tokio::spawn(async move { axum::serve(listener, api).await.unwrap() });
    resource
}

/// Just enough of an MCP server (JSON answers): `initialize`, `tools/list`
/// with one tool, `whoami`, and its `tools/call`; 202 for notifications.
async fn mcp_answer(Json(message): Json<serde_json::Value>) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let id = message["id"].clone();
    let result = match message["method"].as_str().unwrap_or_default() {
        "initialize" => json!({
            "protocolVersion": message["params"]["protocolVersion"],
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "stand-in", "version": "1"},
        }),
        "tools/list" => json!({"tools": [{"name": "whoami", "inputSchema": {"type": "object"}}]}),
        "tools/call" => json!({"content": [{"type": "text", "text": "alice"}]}),
        _ => return axum::http::StatusCode::ACCEPTED.into_response(),
    };
    Json(json!({"jsonrpc": "2.0", "id": id, "result": result})).into_response()
}

/// Plays the user at the authorization URL: a request sent whole is
/// stored by the server first and redirected to its `request_uri`; then
/// login and approval. Returns the redirect back.
async fn approve(app: &TestApp, authorization_url: &Url) -> Url {
    let browser = app.browser();
    let pushed_to = match query(authorization_url, "request_uri") {
        Some(_) => authorization_url.clone(),
        None => {
            let res = browser.get(authorization_url.clone()).send().await.unwrap();
            assert!(res.status().is_redirection(), "{}", res.status());
            location(&res)
        }
    };
    let client_id = query(&pushed_to, "client_id").unwrap();
    let request_uri = query(&pushed_to, "request_uri").unwrap();
    app.login(&browser, &client_id, &request_uri).await;
    app.decide(&browser, &client_id, &request_uri, "approve")
        .await
}

fn client() -> ClientRegistration {
    ClientRegistration::new(json!({
        "client_name": "MCP Agent",
        "redirect_uris": [REDIRECT],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    }))
}

/// The authorization request for `resource` and `scope` as `registration`
/// says, approved, and its code redeemed.
async fn login(
    app: &TestApp,
    server: &AuthorizationServer,
    registration: &ClientRegistration,
    resource: &ProtectedResource,
    scope: Option<String>,
) -> (PendingAuthorization, TokenResponse) {
    let client = registration.register(server).await.unwrap();
    let request = AuthorizationRequest::new(REDIRECT)
        .maybe_scope(scope)
        .resource(resource.resource());
    let pending = server.begin(&client.identity, request).await.unwrap();
    let callback = approve(app, &pending.authorization_url).await;
    let code = pending.code(callback.as_str()).unwrap();
    let tokens = server.exchange_code(&pending, &code).await.unwrap();
    (pending, tokens)
}

async fn call(url: &str, tokens: &TokenResponse) -> reqwest::Response {
    AccessToken::from_response(tokens, None)
        .unwrap()
        .send_with_nonce_retry(ephemera_client::server::default_http_client().get(url))
        .await
        .unwrap()
}

async fn discover(url: &str) -> (ProtectedResource, AuthorizationServer) {
    let http = ephemera_client::server::default_http_client();
    let resource = ProtectedResource::discover(&http, url).await.unwrap();
    let server = resource.authorization_server(&http).await.unwrap();
    (resource, server)
}

#[tokio::test]
async fn the_mcp_client_finds_ephemera_from_a_401_and_its_tokens_are_for_the_resource() {
    tokio::time::timeout(BOUND, async {
        let app = TestApp::spawn().await;
        let mcp = mcp_resource(&app).await;

        let (resource, server) = discover(&mcp).await;
        assert_eq!(resource.resource(), mcp);
        assert_eq!(resource.scope().as_deref(), Some("read"));
        assert_eq!(server.issuer(), app.base);
        let registration = client();
        assert_eq!(
            registration.method_for(server.metadata()).unwrap(),
            RegistrationMethod::Pushed
        );
        let (pending, tokens) =
            login(&app, &server, &registration, &resource, resource.scope()).await;

        assert_eq!(pending.client_id, URN);
        assert!(!pending.request_uri.is_empty());
        let info = app.introspect(&tokens.access_token).await;
        assert_eq!(info["aud"], mcp.as_str());
        assert_eq!(info["scope"], "read");
        let store = MemoryTokenStore::new();
        let key = TokenKey::new(server.issuer(), resource.resource());
        store
            .save(
                &key,
                StoredTokens::new(&pending.client_id, tokens, pending.scope.as_deref(), 0),
            )
            .unwrap();
        let held = store.load(&key).unwrap().unwrap();
        assert_eq!(call(&mcp, &held.tokens).await.status(), 200);
        // The refresh names the resource too, and keeps the audience.
        let refreshed = server
            .refresh_for(
                &pending.identity,
                held.tokens.refresh_token.as_deref().unwrap(),
                None,
                std::slice::from_ref(&mcp),
            )
            .await
            .unwrap();
        assert_eq!(
            app.introspect(&refreshed.access_token).await["aud"],
            mcp.as_str()
        );
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn with_pushed_registration_off_the_mcp_client_registers_dynamically() {
    tokio::time::timeout(BOUND, async {
        let app = TestApp::spawn_with(|c| c.pushed_clients.enabled = false).await;
        let mcp = mcp_resource(&app).await;
        let (resource, server) = discover(&mcp).await;
        // The metadata says pushed registration is off: the client picks
        // Dynamic Client Registration on its own.
        assert!(!server.metadata().pushed_client_registration_supported);
        let registration = client();

        let registered = registration.register(&server).await.unwrap();
        let (pending, tokens) =
            login(&app, &server, &registration, &resource, resource.scope()).await;

        assert_eq!(registered.method, RegistrationMethod::Dynamic);
        assert_ne!(pending.client_id, URN);
        let info = app.introspect(&tokens.access_token).await;
        assert_eq!(info["client_kind"], "dynamic");
        assert_eq!(info["client_id"], pending.client_id.as_str());
        assert_eq!(info["aud"], mcp.as_str());
        assert_eq!(call(&mcp, &tokens).await.status(), 200);
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn without_a_par_endpoint_the_mcp_client_sends_the_whole_request_through_the_browser() {
    tokio::time::timeout(BOUND, async {
        let app = TestApp::spawn().await;
        let mcp = mcp_resource(&app).await;
        let (resource, discovered) = discover(&mcp).await;
        let mut metadata = discovered.metadata().clone();
        metadata.pushed_authorization_request_endpoint = None;
        let server = AuthorizationServer::from_metadata(discovered.http().clone(), metadata);
        let registration = client();
        assert_eq!(
            registration.method_for(server.metadata()).unwrap(),
            RegistrationMethod::Dynamic
        );

        let (pending, tokens) =
            login(&app, &server, &registration, &resource, resource.scope()).await;

        assert!(pending.request_uri.is_empty());
        let sent = &pending.authorization_url;
        assert_eq!(query(sent, "resource").as_deref(), Some(mcp.as_str()));
        assert_eq!(
            query(sent, "code_challenge_method").as_deref(),
            Some("S256")
        );
        let info = app.introspect(&tokens.access_token).await;
        assert_eq!(info["aud"], mcp.as_str());
        assert_eq!(call(&mcp, &tokens).await.status(), 200);
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_metadata_document_url_is_the_mcp_clients_client_id_at_ephemera() {
    tokio::time::timeout(BOUND, async {
        let host = crate::mcp::client_metadata_document("Document Agent", REDIRECT).await;
        let cert = host.https.cert_path.clone();
        let app = TestApp::spawn_with(move |c| {
            c.metadata_documents.allow_hosts = vec!["127.0.0.1".into()];
            c.metadata_documents.extra_roots = vec![cert];
        })
        .await;
        let mcp = mcp_resource(&app).await;
        let (resource, server) = discover(&mcp).await;
        let registration = client().metadata_document(&host.url);
        assert_eq!(
            registration.method_for(server.metadata()).unwrap(),
            RegistrationMethod::MetadataDocument
        );

        let (pending, tokens) =
            login(&app, &server, &registration, &resource, resource.scope()).await;

        assert_eq!(pending.client_id, host.url);
        let info = app.introspect(&tokens.access_token).await;
        assert_eq!(info["client_kind"], "metadata_document");
        assert_eq!(info["client_id"], host.url.as_str());
        assert_eq!(call(&mcp, &tokens).await.status(), 200);
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_403_insufficient_scope_steps_the_mcp_client_up_to_the_union() {
    tokio::time::timeout(BOUND, async {
        let app = TestApp::spawn().await;
        let mcp = mcp_resource(&app).await;
        let write = format!("{mcp}/write");
        let (resource, server) = discover(&mcp).await;
        let registration = client();
        let (pending, tokens) =
            login(&app, &server, &registration, &resource, resource.scope()).await;

        let refused = call(&write, &tokens).await;
        assert_eq!(refused.status(), 403);
        let needed = insufficient_scope(403, refused.headers()).unwrap();
        let scope = scope_union(pending.scope.as_deref(), &needed);
        assert_eq!(scope, "read write");
        let (_, stepped_up) = login(&app, &server, &registration, &resource, Some(scope)).await;

        assert_eq!(
            app.introspect(&stepped_up.access_token).await["scope"],
            "read write"
        );
        assert_eq!(call(&write, &stepped_up).await.status(), 200);
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn the_mcp_login_example_logs_in_steps_up_and_calls_the_resource() {
    tokio::time::timeout(BOUND, async {
        let app = TestApp::spawn().await;
        let mcp = mcp_resource(&app).await;
        let write = format!("{mcp}/write");
        // `--scope read` on a resource that needs `read write`: a 403, then
        // a second login for both.
        let args = mcp_login::Args::parse_from([
            "mcp_login",
            write.as_str(),
            "--scope",
            "read",
            "--call",
            "whoami",
            "--timeout",
            "30",
        ]);
        let (lines, mut said) = tokio::sync::mpsc::unbounded_channel::<String>();
        let run = tokio::spawn(mcp_login::run(args, move |line| {
            let _ = lines.send(line);
        }));

        let mut shown = Vec::new();
        let mut logins = 0;
        while let Some(line) = said.recv().await {
            shown.push(line.clone());
            if let Some(url) = line.strip_prefix("open ") {
                logins += 1;
                let callback = approve(&app, &Url::parse(url).unwrap()).await;
                // The browser follows the redirect to the example's listener.
                let res = reqwest::get(callback).await.unwrap();
                assert_eq!(res.status(), 200);
            }
        }
        let result = run.await.unwrap().unwrap();

        assert_eq!(result["content"][0]["text"], "alice", "{shown:#?}");
        assert_eq!(logins, 2, "{shown:#?}");
        assert!(
            shown.contains(&format!("authorization server {}", app.base)),
            "{shown:#?}"
        );
        assert!(
            shown.contains(&format!("client {URN} (Pushed)")),
            "{shown:#?}"
        );
        assert!(
            shown.contains(&"insufficient_scope: asking again for read write".to_owned()),
            "{shown:#?}"
        );
        // Ephemera advertises DPoP (ES256): the tokens are bound to a key.
        assert!(
            shown.contains(&format!("tokens for {mcp} (scope read write, DPoP)")),
            "{shown:#?}"
        );
        assert!(
            shown.contains(&"initialized stand-in (2025-11-25)".to_owned()),
            "{shown:#?}"
        );
        assert!(
            shown.contains(
                &r#"tools/call whoami -> {"content":[{"text":"alice","type":"text"}]}"#.to_owned()
            ),
            "{shown:#?}"
        );
    })
    .await
    .unwrap();
}

//! The three parts of the flow together: `ephemera-client` drives the pushed
//! flow against the real server, and a resource server protected by
//! `ephemera-resource` accepts the token by introspection.

use std::time::Duration;

use axum::routing::get;
use axum::{Json, Router};
use ephemera_client::{AuthorizationRequest, AuthorizationServer, ClientIdentity};
use ephemera_resource::{IntrospectionConfig, IntrospectionLayer, TokenContext};
use serde_json::json;

use crate::helpers::*;

async fn client_flow(
    app: &TestApp,
    server: &AuthorizationServer,
    identity: &ClientIdentity,
    scope: &str,
) -> ephemera_client::TokenResponse {
    let pending = server
        .push(identity, AuthorizationRequest::new(REDIRECT).scope(scope))
        .await
        .unwrap();
    assert!(pending
        .authorization_url
        .as_str()
        .starts_with(&app.url("/authorize")));
    let browser = app.browser();
    let login_page = browser
        .get(pending.authorization_url.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(login_page.status(), 200);
    app.login(&browser, identity.client_id(), &pending.request_uri)
        .await;
    let callback = app
        .decide(
            &browser,
            identity.client_id(),
            &pending.request_uri,
            "approve",
        )
        .await;
    let code = pending
        .code_from_callback(callback.as_str(), server.issuer())
        .unwrap();
    server.exchange_code(&pending, &code).await.unwrap()
}

#[tokio::test]
async fn the_client_library_runs_the_pushed_flow_with_refresh_and_revocation() {
    let app = TestApp::spawn().await;
    let server = AuthorizationServer::discover(&app.base).await.unwrap();
    assert!(server.metadata().pushed_client_registration_supported);
    let identity = ClientIdentity::pushed(json!({
        "client_name": "Library Agent",
        "redirect_uris": [REDIRECT],
        "grant_types": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": "none",
    }));
    let tokens = client_flow(&app, &server, &identity, "read").await;
    assert_eq!(tokens.token_type, "Bearer");
    let refresh = tokens.refresh_token.clone().unwrap();
    let rotated = server.refresh(&identity, &refresh, None).await.unwrap();
    assert_ne!(rotated.refresh_token.as_deref(), Some(refresh.as_str()));

    app.introspect("create the rs client").await;
    let info = server
        .introspect("rs", RS_SECRET, &rotated.access_token)
        .await
        .unwrap();
    assert!(info.active);
    assert_eq!(
        info.client_metadata.unwrap()["client_name"],
        "Library Agent"
    );

    server
        .revoke(
            &identity,
            rotated.refresh_token.as_deref().unwrap(),
            Some("refresh_token"),
        )
        .await
        .unwrap();
    let info = server
        .introspect("rs", RS_SECRET, &rotated.access_token)
        .await
        .unwrap();
    assert!(!info.active);
    assert_eq!(app.stats().await.pushed_client_grants, 0);
}

#[tokio::test]
async fn a_reused_refresh_token_is_reported_to_the_library_as_invalid_grant() {
    let app = TestApp::spawn().await;
    let server = AuthorizationServer::discover(&app.base).await.unwrap();
    let identity = ClientIdentity::pushed(json!({
        "redirect_uris": [REDIRECT],
        "grant_types": ["authorization_code", "refresh_token"],
    }));
    let tokens = client_flow(&app, &server, &identity, "read").await;
    let refresh = tokens.refresh_token.unwrap();
    server.refresh(&identity, &refresh, None).await.unwrap();
    let err = server.refresh(&identity, &refresh, None).await.unwrap_err();
    assert_eq!(
        err.error_code(),
        Some(ephemera_proto::error::ErrorCode::InvalidGrant)
    );
}

async fn whoami(ctx: TokenContext) -> Json<serde_json::Value> {
    Json(json!({
        "client_id": ctx.client_id,
        "grant_id": ctx.grant_id,
        "client_name": ctx.client_metadata.as_ref().and_then(|m| m.get("client_name")).cloned(),
        "scopes": ctx.scopes,
    }))
}

#[tokio::test]
async fn a_resource_server_with_the_layer_accepts_the_pushed_clients_token_until_it_is_revoked() {
    let app = TestApp::spawn().await;
    app.introspect("create the rs client").await;
    let config =
        IntrospectionConfig::new(app.url("/introspect"), "rs", RS_SECRET, app.base.clone())
            .require_scope("read")
            .cache_ttl(Duration::ZERO);
    let api = Router::new()
        .route("/whoami", get(whoami))
        .layer(IntrospectionLayer::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api_url = format!("http://{}/whoami", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, api).await.unwrap() });

    let server = AuthorizationServer::discover(&app.base).await.unwrap();
    let identity =
        ClientIdentity::pushed(json!({"client_name": "RS Agent", "redirect_uris": [REDIRECT]}));
    let tokens = client_flow(&app, &server, &identity, "read write").await;

    let res = app
        .http
        .get(&api_url)
        .bearer_auth(&tokens.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["client_id"], URN);
    assert_eq!(body["client_name"], "RS Agent");
    assert!(body["grant_id"].is_string());

    let res = app.http.get(&api_url).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert!(res.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Bearer"));

    server
        .revoke(&identity, &tokens.access_token, None)
        .await
        .unwrap();
    let res = app
        .http
        .get(&api_url)
        .bearer_auth(&tokens.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert!(res.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("invalid_token"));
}

#[tokio::test]
async fn a_resource_server_refuses_a_token_without_the_scope_it_requires() {
    let app = TestApp::spawn().await;
    app.introspect("create the rs client").await;
    let config =
        IntrospectionConfig::new(app.url("/introspect"), "rs", RS_SECRET, app.base.clone())
            .require_scope("write");
    let api = Router::new()
        .route("/whoami", get(whoami))
        .layer(IntrospectionLayer::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api_url = format!("http://{}/whoami", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, api).await.unwrap() });
    let server = AuthorizationServer::discover(&app.base).await.unwrap();
    let identity = ClientIdentity::pushed(json!({"redirect_uris": [REDIRECT]}));
    let tokens = client_flow(&app, &server, &identity, "read").await;
    let res = app
        .http
        .get(&api_url)
        .bearer_auth(&tokens.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert!(res.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("insufficient_scope"));
}

#[tokio::test]
async fn the_client_library_binds_dpop_and_pushed_keys_and_the_server_enforces_them() {
    use ephemera_client::{ClientKey, DpopKey};
    let app = TestApp::spawn().await;
    let server = AuthorizationServer::discover(&app.base).await.unwrap();
    let dpop = DpopKey::generate();
    let identity = ClientIdentity::pushed_with_key(
        json!({
            "client_name": "Bound Agent",
            "redirect_uris": [REDIRECT],
            "grant_types": ["authorization_code", "refresh_token"],
        }),
        ClientKey::generate(),
    )
    .with_dpop(dpop.clone());
    let tokens = client_flow(&app, &server, &identity, "read").await;
    assert_eq!(tokens.token_type, "DPoP");
    app.introspect("create the rs client").await;
    let info = server
        .introspect("rs", RS_SECRET, &tokens.access_token)
        .await
        .unwrap();
    assert_eq!(info.cnf.unwrap()["jkt"], dpop.jkt());
    assert_eq!(
        info.client_metadata.unwrap()["token_endpoint_auth_method"],
        "private_key_jwt"
    );

    let refresh = tokens.refresh_token.unwrap();
    // The same client without its DPoP key, or with another signing key, is refused.
    let without_dpop = ClientIdentity::pushed_with_key(
        json!({"redirect_uris": [REDIRECT]}),
        identity.client_key().unwrap().clone(),
    );
    let err = server
        .refresh(&without_dpop, &refresh, None)
        .await
        .unwrap_err();
    assert_eq!(
        err.error_code(),
        Some(ephemera_proto::error::ErrorCode::InvalidDpopProof)
    );
    let other_key = ClientIdentity::pushed_with_key(
        json!({"redirect_uris": [REDIRECT]}),
        ClientKey::generate(),
    )
    .with_dpop(dpop.clone());
    let err = server
        .refresh(&other_key, &refresh, None)
        .await
        .unwrap_err();
    assert_eq!(
        err.error_code(),
        Some(ephemera_proto::error::ErrorCode::InvalidClient)
    );
    let rotated = server.refresh(&identity, &refresh, None).await.unwrap();
    assert_eq!(rotated.token_type, "DPoP");
    server
        .revoke(&identity, rotated.refresh_token.as_deref().unwrap(), None)
        .await
        .unwrap();
    assert_eq!(app.stats().await.pushed_client_grants, 0);
}

#[tokio::test]
async fn the_client_library_follows_the_servers_dpop_nonce() {
    use ephemera_client::DpopKey;
    let app = TestApp::spawn_with(|c| c.proofs.dpop_require_nonce = true).await;
    let server = AuthorizationServer::discover(&app.base).await.unwrap();
    let identity = ClientIdentity::pushed(json!({"redirect_uris": [REDIRECT], "grant_types": ["authorization_code", "refresh_token"]}))
        .with_dpop(DpopKey::generate());
    let tokens = client_flow(&app, &server, &identity, "read").await;
    assert_eq!(tokens.token_type, "DPoP");
    assert!(server.dpop_nonce().is_some());
    server
        .refresh(&identity, tokens.refresh_token.as_deref().unwrap(), None)
        .await
        .unwrap();
}

/// A resource server protected by the layer, configured by `adjust`;
/// returns the URL of its `/whoami`.
async fn resource_server(
    app: &TestApp,
    adjust: impl FnOnce(IntrospectionConfig) -> IntrospectionConfig,
) -> String {
    app.introspect("create the rs client").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let config = adjust(
        IntrospectionConfig::new(app.url("/introspect"), "rs", RS_SECRET, app.base.clone())
            .public_base_url(ephemera_client::Url::parse(&base).unwrap())
            .cache_ttl(Duration::ZERO),
    );
    let api = Router::new()
        .route("/whoami", get(whoami))
        .layer(IntrospectionLayer::new(config));
    tokio::spawn(async move { axum::serve(listener, api).await.unwrap() });
    format!("{base}/whoami")
}

#[tokio::test]
async fn a_stolen_dpop_token_is_useless_at_the_resource_server_without_the_key() {
    use ephemera_client::{AccessToken, DpopKey};
    let app = TestApp::spawn().await;
    let api = resource_server(&app, |c| c).await;
    let server = AuthorizationServer::discover(&app.base).await.unwrap();
    let key = DpopKey::generate();
    let identity =
        ClientIdentity::pushed(json!({"client_name": "DPoP Agent", "redirect_uris": [REDIRECT]}))
            .with_dpop(key.clone());
    let tokens = client_flow(&app, &server, &identity, "read").await;

    let access = AccessToken::from_response(&tokens, Some(&key)).unwrap();
    let req = access.authorize(app.http.get(&api), "GET", &api).unwrap();
    let res = req.send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap()["client_name"],
        "DPoP Agent"
    );

    // The thief has the token but not the key.
    let res = app
        .http
        .get(&api)
        .bearer_auth(&tokens.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let thief = AccessToken::from_response(&tokens, Some(&DpopKey::generate())).unwrap();
    let res = thief
        .authorize(app.http.get(&api), "GET", &api)
        .unwrap()
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let challenge = res.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.contains("invalid_dpop_proof"), "{challenge}");
    // A proof for another URL is refused too.
    let wrong = access
        .authorize(app.http.get(&api), "GET", &format!("{api}/else"))
        .unwrap();
    assert_eq!(wrong.send().await.unwrap().status(), 401);
}

#[tokio::test]
async fn a_stolen_certificate_bound_token_is_useless_without_the_certificate() {
    let app = TestApp::spawn_with(|c| c.tls.trusted_proxies = vec!["127.0.0.1".into()]).await;
    let api = resource_server(&app, |c| c.trust_client_cert_header(true)).await;
    let ck = rcgen::generate_simple_self_signed(vec!["agent".to_owned()]).unwrap();
    let header = format!(
        ":{}:",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, ck.cert.der())
    );
    let registration = json!({
        "redirect_uris": [REDIRECT],
        "tls_client_certificate_bound_access_tokens": true,
    })
    .to_string();
    let mut form = vec![
        ("client_id", URN.to_owned()),
        ("response_type", "code".to_owned()),
        ("redirect_uri", REDIRECT.to_owned()),
        ("state", "s".to_owned()),
        ("code_challenge", CHALLENGE.to_owned()),
        ("code_challenge_method", "S256".to_owned()),
        ("client_registration", registration),
    ];
    let res = app
        .http
        .post(app.url("/par"))
        .header("Client-Cert", &header)
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let request_uri = res.json::<serde_json::Value>().await.unwrap()["request_uri"]
        .as_str()
        .unwrap()
        .to_owned();
    let code = app.authorize(URN, &request_uri).await;
    form = vec![
        ("grant_type", "authorization_code".to_owned()),
        ("code", code),
        ("redirect_uri", REDIRECT.to_owned()),
        ("code_verifier", VERIFIER.to_owned()),
        ("client_id", URN.to_owned()),
    ];
    let res = app
        .http
        .post(app.url("/token"))
        .header("Client-Cert", &header)
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let token = res.json::<serde_json::Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    let res = app
        .http
        .get(&api)
        .bearer_auth(&token)
        .header("Client-Cert", &header)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = app.http.get(&api).bearer_auth(&token).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let other = rcgen::generate_simple_self_signed(vec!["thief".to_owned()]).unwrap();
    let forged = format!(
        ":{}:",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, other.cert.der())
    );
    let res = app
        .http
        .get(&api)
        .bearer_auth(&token)
        .header("Client-Cert", forged)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

#[tokio::test]
async fn the_example_resource_server_serves_a_pushed_clients_dpop_token_and_its_metadata() {
    use ephemera_client::{AccessToken, DpopKey};
    let app = TestApp::spawn().await;
    app.introspect("create the rs client").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let public = format!("http://{}", listener.local_addr().unwrap());
    let env = {
        let (issuer, public) = (app.base.clone(), public.clone());
        move |name: &str| match name {
            "EPHEMERA_RS_ISSUER" => Some(issuer.clone()),
            "EPHEMERA_RS_CLIENT_SECRET" => Some(RS_SECRET.to_owned()),
            "EPHEMERA_RS_PUBLIC_URL" => Some(public.clone()),
            _ => None,
        }
    };
    let (router, _) = crate::protected_api::build(env).await.unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    // A client discovers the AS from the resource alone (RFC 9728).
    let unauthenticated = app
        .http
        .get(format!("{public}/api/whoami"))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);
    let challenge = unauthenticated.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.contains("resource_metadata="), "{challenge}");
    let metadata: serde_json::Value = app
        .http
        .get(format!("{public}/.well-known/oauth-protected-resource"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["resource"], public.as_str());
    assert_eq!(metadata["authorization_servers"][0], app.base.as_str());

    let server =
        AuthorizationServer::discover(metadata["authorization_servers"][0].as_str().unwrap())
            .await
            .unwrap();
    let key = DpopKey::generate();
    let identity = ClientIdentity::pushed(
        json!({"client_name": "Example Agent", "redirect_uris": [REDIRECT]}),
    )
    .with_dpop(key.clone());
    let tokens = client_flow(&app, &server, &identity, "read").await;
    let url = format!("{public}/api/whoami");
    let access = AccessToken::from_response(&tokens, Some(&key)).unwrap();
    let res = access
        .authorize(app.http.get(&url), "GET", &url)
        .unwrap()
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let ctx: serde_json::Value = res.json().await.unwrap();
    assert_eq!(ctx["client_id"], URN);
    assert_eq!(ctx["client_metadata"]["client_name"], "Example Agent");
    assert_eq!(ctx["dpop_jkt"], key.jkt());
    let stolen = app
        .http
        .get(&url)
        .bearer_auth(&tokens.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(stolen.status(), 401);
}

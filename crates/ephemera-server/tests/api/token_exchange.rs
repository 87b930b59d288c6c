//! Token exchange (RFC 8693): an MCP server exchanges the user's token for
//! one to a downstream resource and calls it through `ephemera-resource`
//! with DPoP; a second service exchanges that token again (a nested `act`);
//! impersonation where policy names the client; ending the user's grant
//! ends every token exchanged from it; and each refusal of RFC 8693 §2.2.2.

use axum::routing::get;
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ephemera_proto::jose::sha256_b64;
use ephemera_resource::{IntrospectionConfig, IntrospectionLayer, TokenContext};
use ephemera_server::config::{RawExchange, RawExchangePolicy, RawResourceEntry};
use ephemera_server::service::admin::NewClient;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::keys::{random_id, TestKey};

const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";

/// The MCP server the user's client gets a token for; takes no exchanged
/// tokens itself.
const MCP: &str = "https://mcp.example/mcp";
/// Downstream of the MCP server: opaque tokens, exchanged only by
/// `mcp-server` and `svc-b`, only from tokens for [`MCP`].
const CALENDAR: &str = "https://calendar.example/api";
/// Downstream of the calendar: JWT access tokens, exchanged by any client
/// with the grant type from tokens for [`CALENDAR`]; `gateway`
/// impersonates.
const FILES: &str = "https://files.example/";

async fn app() -> TestApp {
    let app = TestApp::spawn_with(|c| {
        c.resources = vec![
            MCP.into(),
            RawResourceEntry {
                identifier: CALENDAR.into(),
                exchange: Some(RawExchange::Policy(RawExchangePolicy {
                    clients: Some(vec!["mcp-server".into(), "svc-b".into()]),
                    from: Some(vec![MCP.into()]),
                    impersonation: Vec::new(),
                })),
                ..RawResourceEntry::default()
            }
            .into(),
            RawResourceEntry {
                identifier: FILES.into(),
                token_format: Some("jwt".into()),
                exchange: Some(RawExchange::Policy(RawExchangePolicy {
                    clients: None,
                    from: Some(vec![CALENDAR.into()]),
                    impersonation: vec!["gateway".into()],
                })),
                ..RawResourceEntry::default()
            }
            .into(),
        ];
    })
    .await;
    for id in ["mcp-server", "svc-b", "gateway", "outsider"] {
        app.add_client(exchanger(id, &[GRANT_TYPE, "client_credentials"]))
            .await;
    }
    app.add_client(exchanger("plain", &["client_credentials"]))
        .await;
    app
}

fn exchanger(id: &str, grant_types: &[&str]) -> NewClient {
    NewClient {
        client_id: id.into(),
        confidential: true,
        secret: Some(secret(id)),
        grant_types: grant_types.iter().map(|g| (*g).to_owned()).collect(),
        ..NewClient::default()
    }
}

/// Form parameters with values built at run time.
type Params = Vec<(&'static str, String)>;

fn borrowed(params: &Params) -> Vec<(&str, &str)> {
    params.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

fn secret(id: &str) -> String {
    format!("{id}-secret-0123456789abcdefghijklmnopqrstuvwxyz")
}

/// The user's tokens for [`MCP`] (`read write`), from the pushed flow.
async fn users_tokens(app: &TestApp) -> Value {
    let request_uri = app
        .push_ok(
            Some(&registration()),
            &[("resource", MCP), ("scope", "read write")],
        )
        .await;
    let code = app.authorize(URN, &request_uri).await;
    let res = app.redeem(&code, &[]).await;
    assert_eq!(res.status(), 200, "{:?}", res.text().await);
    res.json().await.unwrap()
}

/// A token exchange request by `client`, with its DPoP proof when `key`.
async fn exchange(
    app: &TestApp,
    client: &str,
    params: &[(&str, &str)],
    key: Option<&TestKey>,
) -> reqwest::Response {
    let mut form = vec![("grant_type", GRANT_TYPE)];
    form.extend_from_slice(params);
    let mut req = app
        .http
        .post(app.url("/token"))
        .basic_auth(client, Some(secret(client)))
        .form(&form);
    if let Some(key) = key {
        req = req.header("DPoP", key.proof(&app.url("/token"), app.now()));
    }
    req.send().await.unwrap()
}

/// An exchange that must succeed: the response.
async fn exchanged(
    app: &TestApp,
    client: &str,
    subject_token: &str,
    resource: &str,
    key: Option<&TestKey>,
) -> Value {
    let res = exchange(
        app,
        client,
        &[
            ("subject_token", subject_token),
            ("subject_token_type", ACCESS_TOKEN),
            ("resource", resource),
        ],
        key,
    )
    .await;
    assert_eq!(res.status(), 200, "{:?}", res.text().await);
    res.json().await.unwrap()
}

async fn whoami(ctx: TokenContext) -> Json<TokenContext> {
    Json(ctx)
}

/// [`CALENDAR`] behind `ephemera-resource`, introspecting at `app` on every
/// request (no cache: a revocation shows at once). Returns the URL of its
/// `/whoami`, which answers with the token's context.
async fn calendar(app: &TestApp) -> String {
    // The resource server's own introspection client.
    app.introspect("nothing").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let config =
        IntrospectionConfig::new(app.url("/introspect"), "rs", RS_SECRET, app.base.clone())
            .audience(CALENDAR)
            .cache_ttl(std::time::Duration::ZERO)
            .public_base_url(ephemera_client::Url::parse(&base).unwrap());
    let api = Router::new()
        .route("/whoami", get(whoami))
        .layer(IntrospectionLayer::new(config));
    tokio::spawn(async move { axum::serve(listener, api).await.unwrap() });
    format!("{base}/whoami")
}

/// GET `url` with `token` as a DPoP-bound token, proved by `key`.
async fn call_with_dpop(app: &TestApp, url: &str, token: &str, key: &TestKey) -> reqwest::Response {
    let proof = key.proof_with(json!({
        "jti": random_id(), "htm": "GET", "htu": url, "iat": app.now(),
        "ath": sha256_b64(token.as_bytes()),
    }));
    app.http
        .get(url)
        .header("Authorization", format!("DPoP {token}"))
        .header("DPoP", proof)
        .send()
        .await
        .unwrap()
}

fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

async fn alice_id(app: &TestApp) -> String {
    let alice = app.ctx.store.find_user_by_name("alice").await.unwrap();
    alice.unwrap().id
}

#[tokio::test]
async fn an_mcp_server_exchanges_the_users_token_and_calls_the_downstream_resource_with_dpop() {
    let app = app().await;
    let url = calendar(&app).await;
    let user = users_tokens(&app).await;
    let subject = user["access_token"].as_str().unwrap();
    let mcp_key = TestKey::new();

    let downstream = exchanged(&app, "mcp-server", subject, CALENDAR, Some(&mcp_key)).await;

    // RFC 8693 §2.2.1, bound to the MCP server's key; no refresh token.
    assert_eq!(downstream["issued_token_type"], ACCESS_TOKEN);
    assert_eq!(downstream["token_type"], "DPoP");
    assert_eq!(downstream["scope"], "read write");
    assert!(downstream.get("refresh_token").is_none(), "{downstream}");
    assert!(downstream["expires_in"].as_u64() <= user["expires_in"].as_u64());
    let token = downstream["access_token"].as_str().unwrap();
    let seen = app.introspect(token).await;
    assert_eq!(seen["active"], true);
    assert_eq!(seen["sub"], alice_id(&app).await.as_str());
    assert_eq!(seen["username"], "alice");
    assert_eq!(seen["client_id"], "mcp-server");
    assert_eq!(seen["aud"], CALENDAR);
    assert_eq!(seen["cnf"]["jkt"], mcp_key.jkt.as_str());
    assert_eq!(
        seen["act"],
        json!({ "sub": "mcp-server", "client_id": "mcp-server" })
    );

    let res = call_with_dpop(&app, &url, token, &mcp_key).await;
    assert_eq!(res.status(), 200);
    let context: Value = res.json().await.unwrap();
    assert_eq!(context["subject"], alice_id(&app).await.as_str());
    assert_eq!(context["act"]["sub"], "mcp-server");
    assert_eq!(context["dpop_jkt"], mcp_key.jkt.as_str());
    // Another key cannot use it: it is the MCP server's.
    let res = call_with_dpop(&app, &url, token, &TestKey::new()).await;
    assert_eq!(res.status(), 401);
}

#[tokio::test]
async fn a_chain_of_two_exchanges_nests_the_prior_actor_in_act() {
    let app = app().await;
    let user = users_tokens(&app).await;
    let first = exchanged(
        &app,
        "mcp-server",
        user["access_token"].as_str().unwrap(),
        CALENDAR,
        None,
    )
    .await;

    let second = exchanged(
        &app,
        "svc-b",
        first["access_token"].as_str().unwrap(),
        FILES,
        None,
    )
    .await;

    let expected = json!({
        "sub": "svc-b",
        "client_id": "svc-b",
        "act": { "sub": "mcp-server", "client_id": "mcp-server" }
    });
    let token = second["access_token"].as_str().unwrap();
    let jwt = claims(token);
    assert_eq!(jwt["act"], expected);
    assert_eq!(jwt["sub"], alice_id(&app).await.as_str());
    assert_eq!(jwt["client_id"], "svc-b");
    assert_eq!(jwt["aud"], FILES);
    assert_eq!(app.introspect(token).await["act"], expected);
}

#[tokio::test]
async fn ending_the_users_grant_ends_every_token_exchanged_from_it() {
    let app = app().await;
    let url = calendar(&app).await;
    let user = users_tokens(&app).await;
    let key = TestKey::new();
    let first = exchanged(
        &app,
        "mcp-server",
        user["access_token"].as_str().unwrap(),
        CALENDAR,
        Some(&key),
    )
    .await;
    let first = first["access_token"].as_str().unwrap();
    let second = exchanged(&app, "svc-b", first, FILES, None).await;
    let second = second["access_token"].as_str().unwrap();
    assert_eq!(call_with_dpop(&app, &url, first, &key).await.status(), 200);

    // The user's client revokes its refresh token: the whole grant ends
    // (RFC 7009 §2.1).
    let res = app
        .post_form(
            "/revoke",
            &[
                ("token", user["refresh_token"].as_str().unwrap()),
                ("client_id", URN),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);

    assert_eq!(app.introspect(first).await["active"], false);
    assert_eq!(app.introspect(second).await["active"], false);
    let res = call_with_dpop(&app, &url, first, &key).await;
    assert_eq!(res.status(), 401, "{:?}", res.text().await);
    let res = exchange(
        &app,
        "svc-b",
        &[
            ("subject_token", first),
            ("subject_token_type", ACCESS_TOKEN),
            ("resource", FILES),
        ],
        None,
    )
    .await;
    assert_error(res, 400, "invalid_request").await;
}

#[tokio::test]
async fn an_actor_token_of_the_caller_names_the_actor_and_one_of_another_client_is_refused() {
    let app = app().await;
    let user = users_tokens(&app).await;
    let subject = user["access_token"].as_str().unwrap();
    let own = |client: &'static str| {
        let app = &app;
        async move {
            let res = app
                .http
                .post(app.url("/token"))
                .basic_auth(client, Some(secret(client)))
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
            let body: Value = res.json().await.unwrap();
            body["access_token"].as_str().unwrap().to_owned()
        }
    };
    let mcp_actor = own("mcp-server").await;
    let foreign_actor = own("svc-b").await;
    let with_actor = |actor: &str| -> Params {
        vec![
            ("subject_token", subject.to_owned()),
            ("subject_token_type", ACCESS_TOKEN.to_owned()),
            ("actor_token", actor.to_owned()),
            ("actor_token_type", ACCESS_TOKEN.to_owned()),
            ("resource", CALENDAR.to_owned()),
        ]
    };

    let res = exchange(&app, "mcp-server", &borrowed(&with_actor(&mcp_actor)), None).await;
    assert_eq!(res.status(), 200, "{:?}", res.text().await);
    let body: Value = res.json().await.unwrap();
    let seen = app.introspect(body["access_token"].as_str().unwrap()).await;
    assert_eq!(
        seen["act"],
        json!({ "sub": "mcp-server", "client_id": "mcp-server" })
    );

    let res = exchange(
        &app,
        "mcp-server",
        &borrowed(&with_actor(&foreign_actor)),
        None,
    )
    .await;
    let description = assert_error(res, 400, "invalid_request").await;
    assert!(description.contains("actor_token"), "{description}");
}

#[tokio::test]
async fn impersonation_leaves_no_act_of_the_client_and_only_where_policy_names_it() {
    let app = app().await;
    let user = users_tokens(&app).await;
    let calendar_token = exchanged(
        &app,
        "mcp-server",
        user["access_token"].as_str().unwrap(),
        CALENDAR,
        None,
    )
    .await;
    let calendar_token = calendar_token["access_token"].as_str().unwrap();

    let impersonated = exchanged(&app, "gateway", calendar_token, FILES, None).await;

    // The gateway adds no actor; the MCP server's delegation stays visible.
    let jwt = claims(impersonated["access_token"].as_str().unwrap());
    assert_eq!(
        jwt["act"],
        json!({ "sub": "mcp-server", "client_id": "mcp-server" })
    );
    assert_eq!(jwt["client_id"], "gateway");
    // The calendar does not name the gateway among its clients.
    let res = exchange(
        &app,
        "gateway",
        &[
            ("subject_token", user["access_token"].as_str().unwrap()),
            ("subject_token_type", ACCESS_TOKEN),
            ("resource", CALENDAR),
        ],
        None,
    )
    .await;
    let description = assert_error(res, 400, "invalid_target").await;
    assert!(description.contains("exchange.clients"), "{description}");
}

#[tokio::test]
async fn each_bad_exchange_gets_the_rfc_8693_error_and_stores_nothing() {
    let app = app().await;
    let user = users_tokens(&app).await;
    let subject = user["access_token"].as_str().unwrap();
    let refresh = user["refresh_token"].as_str().unwrap();
    let before = app.stats().await;
    let ok = |extra: &[(&'static str, &'static str)]| -> Params {
        let mut p: Vec<(&str, String)> = vec![
            ("subject_token", subject.to_owned()),
            ("subject_token_type", ACCESS_TOKEN.to_owned()),
            ("resource", CALENDAR.to_owned()),
        ];
        p.retain(|(k, _)| !extra.iter().any(|(e, _)| e == k));
        p.extend(
            extra
                .iter()
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, v)| (*k, (*v).to_owned())),
        );
        p
    };
    // (client, parameters, error, words of its description); all 400.
    let cases: Vec<(&str, Params, &str, &str)> = vec![
        (
            "mcp-server",
            ok(&[("subject_token", "")]),
            "invalid_request",
            "subject_token is required",
        ),
        (
            "mcp-server",
            ok(&[("subject_token_type", "")]),
            "invalid_request",
            "subject_token_type is required",
        ),
        (
            "mcp-server",
            ok(&[("subject_token", "not-a-token")]),
            "invalid_request",
            "not an active access token",
        ),
        (
            "mcp-server",
            vec![
                ("subject_token", refresh.to_owned()),
                ("subject_token_type", ACCESS_TOKEN.to_owned()),
                ("resource", CALENDAR.to_owned()),
            ],
            "invalid_request",
            "not an active access token",
        ),
        (
            "mcp-server",
            ok(&[(
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:id_token",
            )]),
            "invalid_request",
            "subject_token_type",
        ),
        (
            "mcp-server",
            ok(&[("subject_token_type", "urn:ietf:params:oauth:token-type:jwt")]),
            "invalid_request",
            "not a JWT",
        ),
        (
            "mcp-server",
            ok(&[("actor_token", "a")]),
            "invalid_request",
            "actor_token_type is required",
        ),
        (
            "mcp-server",
            ok(&[(
                "requested_token_type",
                "urn:ietf:params:oauth:token-type:refresh_token",
            )]),
            "invalid_request",
            "requested_token_type",
        ),
        (
            "mcp-server",
            ok(&[("resource", "")]),
            "invalid_request",
            "resource or audience is required",
        ),
        (
            "mcp-server",
            ok(&[("resource", "https://unknown.example/")]),
            "invalid_target",
            "not a resource",
        ),
        (
            "mcp-server",
            ok(&[("resource", MCP)]),
            "invalid_target",
            "does not take exchanged tokens",
        ),
        ("outsider", ok(&[]), "invalid_target", "exchange.clients"),
        // FILES takes only tokens for the calendar; this one is for the MCP server.
        (
            "mcp-server",
            ok(&[("resource", FILES)]),
            "invalid_request",
            "exchange.from",
        ),
        (
            "mcp-server",
            ok(&[("scope", "read admin")]),
            "invalid_scope",
            "only narrow",
        ),
        (
            "plain",
            ok(&[]),
            "unauthorized_client",
            "did not register the grant type",
        ),
    ];
    for (client, params, error, needle) in cases {
        let res = exchange(&app, client, &borrowed(&params), None).await;
        let description = assert_error(res, 400, error).await;
        assert!(
            description.contains(needle),
            "{client} {params:?}: {description}"
        );
    }
    // An audience names a resource as `resource` does.
    let res = exchange(
        &app,
        "mcp-server",
        &[
            ("subject_token", subject),
            ("subject_token_type", ACCESS_TOKEN),
            ("audience", MCP),
        ],
        None,
    )
    .await;
    assert_error(res, 400, "invalid_target").await;
    // A client that does not authenticate.
    let res = app
        .post_form(
            "/token",
            &[
                ("grant_type", GRANT_TYPE),
                ("client_id", URN),
                ("subject_token", subject),
                ("subject_token_type", ACCESS_TOKEN),
                ("resource", CALENDAR),
            ],
        )
        .await;
    assert_error(res, 400, "unauthorized_client").await;

    let after = app.stats().await;
    assert_eq!(
        after.grants, before.grants,
        "a refused exchange stores no grant"
    );
    assert_eq!(after.access_tokens, before.access_tokens);
}

#[tokio::test]
async fn the_metadata_lists_token_exchange_only_where_a_resource_takes_it() {
    let with = app().await;
    let without = TestApp::spawn().await;

    for (app, listed) in [(&with, true), (&without, false)] {
        let metadata: Value = app
            .http
            .get(app.url("/.well-known/oauth-authorization-server"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let grant_types = metadata["grant_types_supported"].as_array().unwrap();
        assert_eq!(grant_types.iter().any(|g| g == GRANT_TYPE), listed);
    }
}

#[tokio::test]
async fn an_mcp_server_built_on_ephemera_client_exchanges_and_calls_downstream_with_its_dpop_key() {
    use ephemera_client::{
        AccessToken, AuthorizationServer, ClientIdentity, DpopKey, SecretMethod,
        TokenExchangeRequest, TokenType,
    };
    let app = app().await;
    let url = calendar(&app).await;
    let user = users_tokens(&app).await;
    let server = AuthorizationServer::discover(&app.base).await.unwrap();
    let dpop = DpopKey::generate();
    let mcp_server =
        ClientIdentity::confidential("mcp-server", secret("mcp-server"), SecretMethod::Basic)
            .with_dpop(dpop.clone());

    let request = TokenExchangeRequest::new(
        user["access_token"].as_str().unwrap(),
        TokenType::ACCESS_TOKEN,
    )
    .resource(CALENDAR)
    .scope("read");
    let exchanged = server.token_exchange(&mcp_server, &request).await.unwrap();

    assert_eq!(exchanged.issued_token_type, TokenType::ACCESS_TOKEN);
    assert_eq!(exchanged.token_type, "DPoP");
    assert_eq!(exchanged.scope.as_deref(), Some("read"));
    let token = AccessToken::from_exchange(&exchanged, Some(&dpop)).unwrap();
    let res = token
        .send_with_nonce_retry(server.http().get(&url))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let context: Value = res.json().await.unwrap();
    assert_eq!(context["client_id"], "mcp-server");
    assert_eq!(context["act"]["sub"], "mcp-server");
    assert_eq!(context["scopes"], json!(["read"]));
}

#[tokio::test]
async fn a_token_of_no_user_keeps_its_clients_subject_down_a_chain_of_exchanges() {
    let app = app().await;
    // svc-b's own token for the MCP server: its `sub` is svc-b.
    let res = app
        .http
        .post(app.url("/token"))
        .basic_auth("svc-b", Some(secret("svc-b")))
        .form(&[("grant_type", "client_credentials"), ("resource", MCP)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let own: Value = res.json().await.unwrap();

    let first = exchanged(
        &app,
        "mcp-server",
        own["access_token"].as_str().unwrap(),
        CALENDAR,
        None,
    )
    .await;
    let second = exchanged(
        &app,
        "gateway",
        first["access_token"].as_str().unwrap(),
        FILES,
        None,
    )
    .await;

    let first = app
        .introspect(first["access_token"].as_str().unwrap())
        .await;
    assert_eq!(first["sub"], "svc-b");
    assert_eq!(first["client_id"], "mcp-server");
    let jwt = claims(second["access_token"].as_str().unwrap());
    assert_eq!(jwt["sub"], "svc-b");
    assert_eq!(jwt["client_id"], "gateway");
}

#[tokio::test]
async fn the_account_page_shows_who_acts_for_the_user_and_the_grant_it_came_from() {
    let app = app().await;
    let user = users_tokens(&app).await;
    let subject = user["access_token"].as_str().unwrap();
    let parent = app.introspect(subject).await["grant_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let downstream = exchanged(&app, "mcp-server", subject, CALENDAR, None).await;
    let child = app
        .introspect(downstream["access_token"].as_str().unwrap())
        .await["grant_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let (_, page) = sign_in(&app, "alice", PASSWORD).await;

    let child_entry = entry(&page, &child);
    assert!(
        child_entry.contains("data-field=\"exchanged\""),
        "{child_entry}"
    );
    assert!(
        child_entry.contains("<bdi>mcp-server</bdi> calls on your behalf"),
        "{child_entry}"
    );
    assert!(child_entry.contains(&parent), "{child_entry}");
    // The user's own grant is no exchange.
    let parent_entry = entry(&page, &parent);
    assert!(
        !parent_entry.contains("data-field=\"exchanged\""),
        "{parent_entry}"
    );
}

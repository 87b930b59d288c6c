//! Dynamic Client Registration (RFC 7591) and management (RFC 7592): the
//! happy path through a whole flow, bad metadata, the rate limit, identical
//! registrations coalescing and the time-to-live of unused clients.

use serde_json::{json, Value};

use crate::helpers::*;

async fn register(app: &TestApp, body: Value) -> reqwest::Response {
    app.http
        .post(app.url("/register"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

fn native_app() -> Value {
    json!({
        "client_name": "Registered Agent",
        "redirect_uris": [REDIRECT],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        "scope": "read",
    })
}

#[tokio::test]
async fn a_client_registers_and_runs_the_code_flow_with_its_new_client_id() {
    let app = TestApp::spawn().await;
    let res = register(&app, native_app()).await;
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let info: Value = res.json().await.unwrap();
    let client_id = info["client_id"].as_str().unwrap();
    assert_eq!(info["client_name"], "Registered Agent");
    assert_eq!(info["token_endpoint_auth_method"], "none");
    assert!(info.get("client_secret").is_none());
    assert!(info["registration_access_token"].is_string());
    assert_eq!(
        info["registration_client_uri"],
        format!("{}/register/{client_id}", app.base)
    );
    assert_eq!(app.stats().await.dynamic_clients, 1);

    let res = app
        .post_form(
            "/par",
            &[
                ("client_id", client_id),
                ("response_type", "code"),
                ("redirect_uri", REDIRECT),
                ("state", "s"),
                ("scope", "read"),
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "S256"),
            ],
        )
        .await;
    assert_eq!(res.status(), 201);
    let request_uri = res.json::<Value>().await.unwrap()["request_uri"]
        .as_str()
        .unwrap()
        .to_owned();
    let browser = app.browser();
    app.login(&browser, client_id, &request_uri).await;
    let consent = app.consent_page(&browser, client_id, &request_uri).await;
    assert!(
        consent.contains("not verified"),
        "self-registered details are self-asserted"
    );
    let to = app
        .decide(&browser, client_id, &request_uri, "approve")
        .await;
    let code = query(&to, "code").unwrap();
    let res = app.redeem(&code, &[("client_id", client_id)]).await;
    assert_eq!(res.status(), 200);
    let tokens: Value = res.json().await.unwrap();
    let introspected = app
        .introspect(tokens["access_token"].as_str().unwrap())
        .await;
    assert_eq!(introspected["client_id"], client_id);
    assert_eq!(introspected["client_kind"], "dynamic");
    assert_eq!(
        introspected["client_metadata"]["client_name"],
        "Registered Agent"
    );
}

#[tokio::test]
async fn a_confidential_registration_gets_a_secret_that_authenticates() {
    let app = TestApp::spawn().await;
    let res = register(
        &app,
        json!({"client_name": "svc", "grant_types": ["client_credentials"], "response_types": []}),
    )
    .await;
    assert_eq!(res.status(), 201);
    let info: Value = res.json().await.unwrap();
    assert_eq!(
        info["token_endpoint_auth_method"], "client_secret_basic",
        "RFC 7591 default"
    );
    let (id, secret) = (
        info["client_id"].as_str().unwrap(),
        info["client_secret"].as_str().unwrap(),
    );
    assert_eq!(info["client_secret_expires_at"], 0);
    let res = app
        .http
        .post(app.url("/token"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn the_registration_access_token_reads_updates_and_deletes_the_client() {
    let app = TestApp::spawn().await;
    let info: Value = register(&app, native_app()).await.json().await.unwrap();
    let uri = info["registration_client_uri"].as_str().unwrap();
    let token = info["registration_access_token"].as_str().unwrap();
    let id = info["client_id"].as_str().unwrap();

    let res = app.http.get(uri).bearer_auth(token).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<Value>().await.unwrap()["client_name"],
        "Registered Agent"
    );
    let res = app.http.get(uri).bearer_auth("wrong").send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert!(res.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("invalid_token"));
    assert_eq!(app.http.get(uri).send().await.unwrap().status(), 401);

    let mut changed = native_app();
    changed["client_id"] = json!(id);
    changed["client_name"] = json!("Renamed Agent");
    let res = app
        .http
        .put(uri)
        .bearer_auth(token)
        .json(&changed)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<Value>().await.unwrap()["client_name"],
        "Renamed Agent"
    );
    let mut wrong_id = changed.clone();
    wrong_id["client_id"] = json!("someone-else");
    let res = app
        .http
        .put(uri)
        .bearer_auth(token)
        .json(&wrong_id)
        .send()
        .await
        .unwrap();
    assert_error(res, 400, "invalid_request").await;

    let res = app
        .http
        .delete(uri)
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(
        app.http
            .get(uri)
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(app.stats().await.dynamic_clients, 0);
}

#[tokio::test]
async fn bad_metadata_is_refused_with_the_rfc_7591_error() {
    let app = TestApp::spawn().await;
    let cases = [
        (
            json!({"redirect_uris": ["https://a.example/cb#frag"], "token_endpoint_auth_method": "none"}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["http://a.example/cb"], "token_endpoint_auth_method": "none"}),
            "invalid_redirect_uri",
        ),
        (
            json!({"token_endpoint_auth_method": "none"}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "magic"}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": [REDIRECT], "client_name": 7}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": [REDIRECT], "jwks_uri": "https://a.example/jwks"}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": [REDIRECT], "scope": "admin"}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": [REDIRECT], "logo_uri": "javascript:alert(1)"}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": [REDIRECT], "software_statement": "eyJ.x.y"}),
            "unapproved_software_statement",
        ),
        (json!(["not", "an", "object"]), "invalid_client_metadata"),
    ];
    for (body, error) in cases {
        let res = register(&app, body.clone()).await;
        assert_error(res, 400, error).await;
    }
    let res = app
        .http
        .post(app.url("/register"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("client_name=x")
        .send()
        .await
        .unwrap();
    assert_error(res, 400, "invalid_request").await;
    assert_eq!(app.stats().await.dynamic_clients, 0, "nothing stored");
}

#[tokio::test]
async fn registrations_beyond_the_per_address_limit_get_429() {
    let app = TestApp::spawn_with(|c| c.registration.per_minute = 3).await;
    // Distinct clients: identical ones would coalesce into one.
    let named = |i: usize| {
        let mut body = native_app();
        body["client_name"] = json!(format!("Agent {i}"));
        body
    };
    for i in 0..3 {
        assert_eq!(register(&app, named(i)).await.status(), 201);
    }
    // Coalescing does not lift the limit.
    let res = register(&app, named(0)).await;
    assert_eq!(res.status(), 429);
    let retry: i64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry));
    assert_error(res, 429, "temporarily_unavailable").await;
    assert_eq!(app.stats().await.dynamic_clients, 3);
}

#[tokio::test]
async fn an_initial_access_token_protects_registration_when_configured() {
    let token = "initial-access-token-0123456789abcdef";
    let app =
        TestApp::spawn_with(|c| c.registration.initial_access_tokens = vec![token.into()]).await;
    let res = register(&app, native_app()).await;
    assert_eq!(res.status(), 401);
    let res = app
        .http
        .post(app.url("/register"))
        .bearer_auth("wrong")
        .json(&native_app())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let res = app
        .http
        .post(app.url("/register"))
        .bearer_auth(token)
        .json(&native_app())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
}

#[tokio::test]
async fn an_unused_registration_is_deleted_after_its_time_to_live() {
    let app = TestApp::spawn().await;
    let info: Value = register(&app, native_app()).await.json().await.unwrap();
    assert_eq!(app.stats().await.dynamic_clients, 1);
    app.advance(24 * 3600 + 1);
    let report = ephemera_server::service::sweep::sweep(app.ctx.store.as_ref(), app.now())
        .await
        .unwrap();
    assert_eq!(report.clients, 1);
    let res = app
        .post_form(
            "/par",
            &[
                ("client_id", info["client_id"].as_str().unwrap()),
                ("response_type", "code"),
                ("redirect_uri", REDIRECT),
            ],
        )
        .await;
    assert_error(res, 401, "invalid_client").await;
}

#[tokio::test]
async fn a_client_that_gets_tokens_outlives_the_unused_time_to_live() {
    let app = TestApp::spawn().await;
    let info: Value = register(
        &app,
        json!({"grant_types": ["client_credentials"], "response_types": [], "token_endpoint_auth_method": "client_secret_post"}),
    )
    .await
    .json()
    .await
    .unwrap();
    let (id, secret) = (
        info["client_id"].as_str().unwrap(),
        info["client_secret"].as_str().unwrap(),
    );
    let res = app
        .post_form(
            "/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", id),
                ("client_secret", secret),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
    app.advance(2 * 24 * 3600);
    let report = ephemera_server::service::sweep::sweep(app.ctx.store.as_ref(), app.now())
        .await
        .unwrap();
    assert_eq!(report.clients, 0);
    assert_eq!(app.stats().await.dynamic_clients, 1);
}

#[tokio::test]
async fn metadata_advertises_the_registration_endpoint() {
    let app = TestApp::spawn().await;
    let m: Value = app
        .http
        .get(app.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(m["registration_endpoint"], app.url("/register"));
    let off = TestApp::spawn_with(|c| c.registration.enabled = false).await;
    let m: Value = off
        .http
        .get(off.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(m.get("registration_endpoint").is_none());
    assert_eq!(register(&off, native_app()).await.status(), 404);
}

#[tokio::test]
async fn a_registration_body_nested_too_deeply_is_refused_and_stores_nothing() {
    let app = TestApp::spawn().await;
    let body = format!(
        r#"{{"redirect_uris":["{REDIRECT}"],"x":{}1{}}}"#,
        "[".repeat(40),
        "]".repeat(40)
    );
    let res = app
        .http
        .post(app.url("/register"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let d = assert_error(res, 400, "invalid_client_metadata").await;
    assert!(d.contains("deeper than 32"), "{d}");
    assert_eq!(app.stats().await.dynamic_clients, 0, "nothing stored");
}

#[tokio::test]
async fn a_registration_as_real_clients_send_it_is_accepted_on_a_server_with_no_scopes() {
    // Empty strings for optional fields, and fields this server does not know.
    let app = TestApp::spawn_with(|c| {
        c.scopes.supported = Vec::new();
        c.scopes.pushed = None;
    })
    .await;
    let res = register(
        &app,
        json!({
            "client_name": "Python MCP client",
            "redirect_uris": [REDIRECT],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            "scope": "",
            "client_uri": "",
            "logo_uri": "",
            "application_type": "native",
            "code_challenge_methods_used": ["S256"],
        }),
    )
    .await;
    assert_eq!(res.status(), 201, "{:?}", res.text().await);
    let info: Value = res.json().await.unwrap();
    assert!(info.get("scope").is_none(), "{info}");
    assert!(info.get("client_uri").is_none(), "{info}");
    assert_eq!(info["client_name"], "Python MCP client");
}

#[tokio::test]
async fn a_registration_asking_for_scopes_partly_closed_to_it_gets_those_open_to_it() {
    // `admin` exists but is closed to self-registered clients; asking only
    // for it is still refused (see the bad-metadata cases).
    let app = TestApp::spawn().await;
    let mut body = native_app();
    body["scope"] = json!("admin read");
    let res = register(&app, body).await;
    assert_eq!(res.status(), 201, "{:?}", res.text().await);
    let info: Value = res.json().await.unwrap();
    assert_eq!(info["scope"], "read", "{info}");
}

#[tokio::test]
async fn a_public_client_listing_grant_types_it_cannot_use_is_registered_with_those_it_can() {
    let app = TestApp::spawn().await;
    let mut body = native_app();
    body["grant_types"] = json!([
        "authorization_code",
        "urn:ietf:params:oauth:grant-type:jwt-bearer",
        "client_credentials",
        "refresh_token",
    ]);
    let res = register(&app, body).await;
    assert_eq!(res.status(), 201, "{:?}", res.text().await);
    let info: Value = res.json().await.unwrap();
    assert_eq!(
        info["grant_types"],
        json!(["authorization_code", "refresh_token"]),
        "{info}"
    );
    // Nothing usable left: refused, naming what this server serves.
    let mut body = native_app();
    body["grant_types"] = json!(["urn:ietf:params:oauth:grant-type:jwt-bearer"]);
    let d = assert_error(register(&app, body).await, 400, "invalid_client_metadata").await;
    assert!(d.contains("authorization_code"), "{d}");
}

#[tokio::test]
async fn identical_public_registrations_from_one_address_coalesce_into_one_client() {
    let app = TestApp::spawn().await;
    let first: Value = register(&app, native_app()).await.json().await.unwrap();
    let id = first["client_id"].as_str().unwrap();
    let uri = first["registration_client_uri"].as_str().unwrap();
    let token = first["registration_access_token"].as_str().unwrap();

    // The same metadata in another key order, from the same address.
    let reordered = format!(
        r#"{{"scope":"read","token_endpoint_auth_method":"none",
        "response_types":["code"],"grant_types":["authorization_code","refresh_token"],
        "redirect_uris":["{REDIRECT}"],"client_name":"Registered Agent"}}"#
    );
    let res = app
        .http
        .post(app.url("/register"))
        .header("content-type", "application/json")
        .body(reordered)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let again: Value = res.json().await.unwrap();
    assert_eq!(
        again["client_id"], id,
        "one client, not one row per connect"
    );
    assert_eq!(again["client_id_issued_at"], first["client_id_issued_at"]);
    assert_eq!(again["client_name"], "Registered Agent");
    assert!(
        again.get("registration_access_token").is_none()
            && again.get("registration_client_uri").is_none(),
        "a shared client has no single owner to manage it: {again}"
    );
    assert_eq!(app.stats().await.dynamic_clients, 1);
    // The first registrant's management ended with the sharing.
    let res = app.http.get(uri).bearer_auth(token).send().await.unwrap();
    assert_eq!(res.status(), 401);

    // The shared client works.
    let res = app
        .post_form(
            "/par",
            &[
                ("client_id", id),
                ("response_type", "code"),
                ("redirect_uri", REDIRECT),
                ("scope", "read"),
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "S256"),
            ],
        )
        .await;
    assert_eq!(res.status(), 201);

    // Different metadata is a different client.
    let mut other = native_app();
    other["client_name"] = json!("Another Agent");
    let other: Value = register(&app, other).await.json().await.unwrap();
    assert_ne!(other["client_id"], id);
    assert!(other["registration_access_token"].is_string());
    assert_eq!(app.stats().await.dynamic_clients, 2);
}

#[tokio::test]
async fn a_coalesced_registration_renews_the_unused_time_to_live() {
    let app = TestApp::spawn().await;
    let first: Value = register(&app, native_app()).await.json().await.unwrap();
    app.advance(24 * 3600 - 10);
    let again: Value = register(&app, native_app()).await.json().await.unwrap();
    assert_eq!(again["client_id"], first["client_id"]);
    app.advance(20);
    let report = ephemera_server::service::sweep::sweep(app.ctx.store.as_ref(), app.now())
        .await
        .unwrap();
    assert_eq!(report.clients, 0, "registered again ten seconds ago");
    assert_eq!(app.stats().await.dynamic_clients, 1);
    app.advance(24 * 3600);
    let report = ephemera_server::service::sweep::sweep(app.ctx.store.as_ref(), app.now())
        .await
        .unwrap();
    assert_eq!(report.clients, 1);
    // Reaped: the next identical registration is a new client.
    let after: Value = register(&app, native_app()).await.json().await.unwrap();
    assert_ne!(after["client_id"], first["client_id"]);
    assert!(after["registration_access_token"].is_string());
}

#[tokio::test]
async fn confidential_registrations_are_never_shared() {
    let app = TestApp::spawn().await;
    let mut body = native_app();
    body["token_endpoint_auth_method"] = json!("client_secret_basic");
    let a: Value = register(&app, body.clone()).await.json().await.unwrap();
    let b: Value = register(&app, body).await.json().await.unwrap();
    assert_ne!(a["client_id"], b["client_id"], "each has its own secret");
    assert!(a["client_secret"].is_string() && b["client_secret"].is_string());
    assert_ne!(a["client_secret"], b["client_secret"]);
    assert_eq!(app.stats().await.dynamic_clients, 2);
}

#[tokio::test]
async fn a_client_changed_through_rfc_7592_no_longer_coalesces() {
    let app = TestApp::spawn().await;
    let first: Value = register(&app, native_app()).await.json().await.unwrap();
    let id = first["client_id"].as_str().unwrap();
    let mut changed = native_app();
    changed["client_id"] = json!(id);
    changed["client_name"] = json!("Renamed Agent");
    let res = app
        .http
        .put(first["registration_client_uri"].as_str().unwrap())
        .bearer_auth(first["registration_access_token"].as_str().unwrap())
        .json(&changed)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let again: Value = register(&app, native_app()).await.json().await.unwrap();
    assert_ne!(
        again["client_id"], id,
        "the renamed client is not what was registered"
    );
    assert_eq!(app.stats().await.dynamic_clients, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_identical_registrations_end_as_one_client() {
    let app = TestApp::spawn().await;
    let mut handles = Vec::new();
    for _ in 0..8 {
        let http = app.http.clone();
        let url = app.url("/register");
        handles.push(tokio::spawn(async move {
            let res = http.post(url).json(&native_app()).send().await.unwrap();
            assert_eq!(res.status(), 201);
            res.json::<Value>().await.unwrap()["client_id"].clone()
        }));
    }
    let mut ids = Vec::new();
    for h in handles {
        ids.push(h.await.unwrap());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(app.stats().await.dynamic_clients, 1);
}

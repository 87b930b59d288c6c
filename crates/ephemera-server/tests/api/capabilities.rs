//! What a client registered is what it may do: its grant types and response
//! types hold at the authorization and token endpoints (`unauthorized_client`,
//! RFC 6749 §4.1.2.1 and §5.2), `client_credentials` only for the client
//! models policy opens it to, and PKCE for every client (OAuth 2.1; the
//! pushed-registration draft for pushed clients whatever they authenticate
//! with) unless policy relaxes it for pre-registered confidential clients.

use ephemera_proto::assertion::JWT_BEARER_ASSERTION;
use ephemera_server::service::admin::NewClient;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::keys::TestKey;

async fn register(app: &TestApp, body: Value) -> Value {
    let res = app
        .http
        .post(app.url("/register"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "{:?}", res.text().await);
    res.json().await.unwrap()
}

/// A PAR of `client_id` authenticated with `secret` (HTTP Basic), with
/// `extra` parameters added to the usual ones (no PKCE unless in `extra`).
async fn push_as(
    app: &TestApp,
    client_id: &str,
    secret: &str,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut form = vec![
        ("response_type", "code"),
        ("redirect_uri", REDIRECT),
        ("state", "s"),
    ];
    form.extend_from_slice(extra);
    app.http
        .post(app.url("/par"))
        .basic_auth(client_id, Some(secret))
        .form(&form)
        .send()
        .await
        .unwrap()
}

const PKCE: &[(&str, &str)] = &[
    ("code_challenge", CHALLENGE),
    ("code_challenge_method", "S256"),
];

async fn client_credentials(app: &TestApp, client_id: &str, secret: &str) -> reqwest::Response {
    app.http
        .post(app.url("/token"))
        .basic_auth(client_id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
}

/// The front-channel authorization request of `client_id`, without PKCE
/// unless `pkce`.
async fn front_channel(app: &TestApp, client_id: &str, pkce: bool) -> reqwest::Response {
    let mut url = url::Url::parse(&app.url("/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", client_id)
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("state", "s1");
    if pkce {
        url.query_pairs_mut()
            .append_pair("code_challenge", CHALLENGE)
            .append_pair("code_challenge_method", "S256");
    }
    app.browser().get(url).send().await.unwrap()
}

#[tokio::test]
async fn a_pushed_client_signing_with_its_own_keys_must_still_use_pkce() {
    let app = TestApp::spawn().await;
    let key = TestKey::new();
    let registration = json!({
        "client_name": "Keyed Agent",
        "redirect_uris": [REDIRECT],
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": key.jwks(),
    })
    .to_string();
    let assertion = key.assertion(URN, &app.base, app.now());
    let res = app
        .push(
            Some(&registration),
            &[
                ("client_assertion_type", JWT_BEARER_ASSERTION),
                ("client_assertion", &assertion),
            ],
            &["code_challenge", "code_challenge_method"],
        )
        .await;
    let d = assert_error(res, 400, "invalid_request").await;
    assert!(d.contains("code_challenge") && d.contains("pushed"), "{d}");
    assert_eq!(app.stats().await.pending_pushed_requests, 0);
}

#[tokio::test]
async fn a_registered_confidential_client_must_use_pkce_by_default() {
    let app = TestApp::spawn().await;
    let secret = app.add_confidential_client("web", false).await;
    let d = assert_error(
        push_as(&app, "web", &secret, &[]).await,
        400,
        "invalid_request",
    )
    .await;
    assert!(d.contains("code_challenge"), "{d}");
    // In the front channel the refusal goes to the (registered) redirect URI.
    let res = front_channel(&app, "web", false).await;
    assert_eq!(res.status(), 302);
    let to = location(&res);
    assert!(to.as_str().starts_with(REDIRECT), "{to}");
    assert_eq!(query(&to, "error").as_deref(), Some("invalid_request"));
    assert_eq!(query(&to, "state").as_deref(), Some("s1"));
    assert_eq!(app.stats().await.pending_pushed_requests, 0);
    assert_eq!(push_as(&app, "web", &secret, PKCE).await.status(), 201);
}

#[tokio::test]
async fn the_policy_lets_only_pre_registered_confidential_clients_leave_pkce_out() {
    let app =
        TestApp::spawn_with(|c| c.clients.pkce_optional_for_registered_confidential = true).await;
    let secret = app.add_confidential_client("web", false).await;
    let res = push_as(&app, "web", &secret, &[]).await;
    assert_eq!(res.status(), 201);
    let request_uri = res.json::<Value>().await.unwrap()["request_uri"]
        .as_str()
        .unwrap()
        .to_owned();
    let code = app.authorize("web", &request_uri).await;
    let res = app
        .http
        .post(app.url("/token"))
        .basic_auth("web", Some(&secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    // A public registered client, a dynamically registered confidential one
    // and a pushed client still must.
    app.add_public_client("spa", &[REDIRECT]).await;
    let res = front_channel(&app, "spa", false).await;
    assert_eq!(
        query(&location(&res), "error").as_deref(),
        Some("invalid_request")
    );
    let dcr = register(
        &app,
        json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "client_secret_basic"}),
    )
    .await;
    let (id, dcr_secret) = (
        dcr["client_id"].as_str().unwrap(),
        dcr["client_secret"].as_str().unwrap(),
    );
    assert_error(
        push_as(&app, id, dcr_secret, &[]).await,
        400,
        "invalid_request",
    )
    .await;
    let res = app
        .push(
            Some(&registration()),
            &[],
            &["code_challenge", "code_challenge_method"],
        )
        .await;
    assert_error(res, 400, "invalid_request").await;
}

#[tokio::test]
async fn a_client_registered_without_client_credentials_gets_no_machine_tokens() {
    let app = TestApp::spawn().await;
    // Pre-registered by the operator for the code flow only.
    let secret = "web-secret-0123456789abcdefghijklmnopqrstuvwxyz";
    app.add_client(NewClient {
        client_id: "web".into(),
        redirect_uris: vec![REDIRECT.into()],
        confidential: true,
        secret: Some(secret.into()),
        grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        ..NewClient::default()
    })
    .await;
    let d = assert_error(
        client_credentials(&app, "web", secret).await,
        400,
        "unauthorized_client",
    )
    .await;
    assert!(d.contains("client_credentials"), "{d}");
    // Self-registered for the code flow only (RFC 7591's default grant type).
    let dcr = register(
        &app,
        json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "client_secret_basic"}),
    )
    .await;
    let res = client_credentials(
        &app,
        dcr["client_id"].as_str().unwrap(),
        dcr["client_secret"].as_str().unwrap(),
    )
    .await;
    assert_error(res, 400, "unauthorized_client").await;
    assert_eq!(app.stats().await.grants, 0);
}

#[tokio::test]
async fn a_client_registered_only_for_client_credentials_cannot_run_the_code_flow() {
    let app = TestApp::spawn().await;
    let dcr = register(
        &app,
        json!({
            "redirect_uris": [REDIRECT],
            "grant_types": ["client_credentials"],
            "response_types": [],
            "token_endpoint_auth_method": "client_secret_basic",
        }),
    )
    .await;
    let (id, secret) = (
        dcr["client_id"].as_str().unwrap(),
        dcr["client_secret"].as_str().unwrap(),
    );
    let d = assert_error(
        push_as(&app, id, secret, PKCE).await,
        400,
        "unauthorized_client",
    )
    .await;
    assert!(d.contains("code"), "{d}");
    // The front channel sends the refusal to the registered redirect URI.
    let res = front_channel(&app, id, true).await;
    assert_eq!(res.status(), 302);
    let to = location(&res);
    assert!(to.as_str().starts_with(REDIRECT), "{to}");
    assert_eq!(query(&to, "error").as_deref(), Some("unauthorized_client"));
    assert_eq!(app.stats().await.pending_pushed_requests, 0);
    // What it did register works.
    assert_eq!(client_credentials(&app, id, secret).await.status(), 200);
}

#[tokio::test]
async fn an_operator_client_without_the_code_flow_gets_an_error_page_when_it_has_no_redirect_uri() {
    let app = TestApp::spawn().await;
    app.add_client(NewClient {
        client_id: "svc".into(),
        confidential: true,
        secret: Some("svc-secret-0123456789abcdefghijklmnopqrstuvwxyz".into()),
        grant_types: vec!["client_credentials".into()],
        ..NewClient::default()
    })
    .await;
    let res = front_channel(&app, "svc", true).await;
    assert_error_page(res, "unauthorized_client").await;
}

#[tokio::test]
async fn a_grant_type_dropped_from_a_registration_stops_working_at_once() {
    let app = TestApp::spawn().await;
    let body = json!({
        "redirect_uris": [REDIRECT],
        "grant_types": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": "none",
    });
    let dcr = register(&app, body.clone()).await;
    let id = dcr["client_id"].as_str().unwrap();
    let res = app
        .post_form(
            "/par",
            &[
                ("client_id", id),
                ("response_type", "code"),
                ("redirect_uri", REDIRECT),
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "S256"),
            ],
        )
        .await;
    let request_uri = res.json::<Value>().await.unwrap()["request_uri"]
        .as_str()
        .unwrap()
        .to_owned();
    let code = app.authorize(id, &request_uri).await;
    let tokens: Value = app
        .redeem(&code, &[("client_id", id)])
        .await
        .json()
        .await
        .unwrap();
    let refresh_token = tokens["refresh_token"].as_str().unwrap();

    // RFC 7592 update: the refresh_token grant is gone.
    let mut changed = body;
    changed["client_id"] = json!(id);
    changed["grant_types"] = json!(["authorization_code"]);
    let res = app
        .http
        .put(dcr["registration_client_uri"].as_str().unwrap())
        .bearer_auth(dcr["registration_access_token"].as_str().unwrap())
        .json(&changed)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = app
        .post_form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
                ("client_id", id),
            ],
        )
        .await;
    let d = assert_error(res, 400, "unauthorized_client").await;
    assert!(d.contains("refresh_token"), "{d}");
}

#[tokio::test]
async fn client_credentials_can_be_closed_to_a_client_model_by_policy() {
    let app =
        TestApp::spawn_with(|c| c.clients.client_credentials = vec!["registered".into()]).await;
    let dcr = register(
        &app,
        json!({
            "grant_types": ["client_credentials"],
            "response_types": [],
            "token_endpoint_auth_method": "client_secret_basic",
        }),
    )
    .await;
    let res = client_credentials(
        &app,
        dcr["client_id"].as_str().unwrap(),
        dcr["client_secret"].as_str().unwrap(),
    )
    .await;
    let d = assert_error(res, 400, "unauthorized_client").await;
    assert!(d.contains("dynamically registered"), "{d}");
    let secret = app.add_confidential_client("svc", false).await;
    assert_eq!(client_credentials(&app, "svc", &secret).await.status(), 200);
}

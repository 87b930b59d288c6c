//! Client ID Metadata Documents: a URL client_id resolved by fetching it,
//! over https only, with the SSRF guard (loopback is allowed here only
//! through the operator allow-list).

use std::sync::{Arc, Mutex};

use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::helpers::*;

/// An https server on 127.0.0.1 hosting documents, and the PEM of its certificate.
pub(crate) struct DocServer {
    pub(crate) https: HttpsServer,
    document: Arc<Mutex<Value>>,
    /// What `/jwks.json` serves.
    keys: Arc<Mutex<Value>>,
    /// Requests for `/gone.json`, which answers 404.
    gone_hits: Arc<std::sync::atomic::AtomicUsize>,
}

impl DocServer {
    pub(crate) async fn start() -> Self {
        let document = Arc::new(Mutex::new(Value::Null));
        let served = document.clone();
        let gone_hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = gone_hits.clone();
        let keys = Arc::new(Mutex::new(Value::Null));
        let served_keys = keys.clone();
        let router = Router::new()
            .route(
                "/client.json",
                get(move || async move { Json(served.lock().unwrap().clone()) }),
            )
            .route(
                "/jwks.json",
                get(move || async move { Json(served_keys.lock().unwrap().clone()) }),
            )
            .route(
                "/gone.json",
                get(move || async move {
                    counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    axum::http::StatusCode::NOT_FOUND
                }),
            )
            .route(
                "/big.json",
                get(|| async { Json(json!({"padding": "x".repeat(10_000)})) }),
            )
            .route(
                "/deep.json",
                get(|| async {
                    // One member nested 40 deep: the depth is checked before
                    // anything else in the document (its client_id included).
                    let url = "https://127.0.0.1/deep.json";
                    let body = format!(
                        r#"{{"client_id":"{url}","redirect_uris":["{REDIRECT}"],"x":{}1{}}}"#,
                        "[".repeat(40),
                        "]".repeat(40)
                    );
                    ([("content-type", "application/json")], body)
                }),
            )
            .route(
                "/moved.json",
                get(|| async {
                    (
                        axum::http::StatusCode::FOUND,
                        [("location", "/client.json")],
                        "",
                    )
                }),
            );
        let https = HttpsServer::start(|_| router).await;
        Self {
            https,
            document,
            keys,
            gone_hits,
        }
    }

    pub(crate) fn client_id(&self) -> String {
        format!("{}/client.json", self.https.base)
    }

    /// Serves a document for `client_id` with these fields.
    pub(crate) fn serve(&self, client_id: &str, extra: Value) {
        let mut doc = json!({
            "client_id": client_id,
            "client_name": "Document Agent",
            "redirect_uris": [REDIRECT],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        });
        for (k, v) in extra.as_object().unwrap() {
            doc[k] = v.clone();
        }
        *self.document.lock().unwrap() = doc;
    }
}

pub(crate) async fn app_trusting(docs: &DocServer) -> TestApp {
    let cert = docs.https.cert_path.clone();
    TestApp::spawn_with(move |c| {
        c.metadata_documents.allow_hosts = vec!["127.0.0.1".into()];
        c.metadata_documents.extra_roots = vec![cert];
    })
    .await
}

pub(crate) async fn push_for(app: &TestApp, client_id: &str) -> reqwest::Response {
    app.post_form(
        "/par",
        &[
            ("client_id", client_id),
            ("response_type", "code"),
            ("redirect_uri", REDIRECT),
            ("state", "s"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ],
    )
    .await
}

#[tokio::test]
async fn a_url_client_id_is_resolved_from_its_document_through_the_whole_flow() {
    let docs = DocServer::start().await;
    let client_id = docs.client_id();
    docs.serve(&client_id, json!({}));
    let app = app_trusting(&docs).await;

    let res = push_for(&app, &client_id).await;
    assert_eq!(res.status(), 201, "{:?}", res.text().await);
    let request_uri = res.json::<Value>().await.unwrap()["request_uri"]
        .as_str()
        .unwrap()
        .to_owned();
    let browser = app.browser();
    app.login(&browser, &client_id, &request_uri).await;
    let consent = app.consent_page(&browser, &client_id, &request_uri).await;
    let origin = docs.https.base.trim_start_matches("https://");
    assert!(
        consent.contains(&format!("<span class=\"host\">{origin}</span>")),
        "{consent}"
    );
    assert!(consent.contains("Document Agent"));
    let to = app
        .decide(&browser, &client_id, &request_uri, "approve")
        .await;
    let code = query(&to, "code").unwrap();
    let res = app.redeem(&code, &[("client_id", &client_id)]).await;
    assert_eq!(res.status(), 200);
    let tokens: Value = res.json().await.unwrap();
    let info = app
        .introspect(tokens["access_token"].as_str().unwrap())
        .await;
    assert_eq!(info["client_id"], client_id.as_str());
    assert_eq!(info["client_kind"], "metadata_document");
    assert_eq!(info["client_metadata"]["client_name"], "Document Agent");
    let refreshed = app
        .post_form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
                ("client_id", &client_id),
            ],
        )
        .await;
    assert_eq!(refreshed.status(), 200);
}

#[tokio::test]
async fn a_document_whose_client_id_differs_from_its_url_is_refused() {
    let docs = DocServer::start().await;
    docs.serve("https://elsewhere.example/client.json", json!({}));
    let app = app_trusting(&docs).await;
    let d = assert_error(
        push_for(&app, &docs.client_id()).await,
        401,
        "invalid_client",
    )
    .await;
    assert!(d.contains("client_id"), "{d}");
}

#[tokio::test]
async fn too_large_or_redirecting_documents_are_refused() {
    let docs = DocServer::start().await;
    let app = app_trusting(&docs).await;
    let big = format!("{}/big.json", docs.https.base);
    let d = assert_error(push_for(&app, &big).await, 401, "invalid_client").await;
    assert!(d.contains("too large"), "{d}");
    let moved = format!("{}/moved.json", docs.https.base);
    assert_error(push_for(&app, &moved).await, 401, "invalid_client").await;
}

/// Deep nesting is refused before the JSON parser sees it, and the refused
/// document leaves no pending request behind.
#[tokio::test]
async fn a_document_nested_too_deeply_is_refused_and_nothing_is_stored() {
    let docs = DocServer::start().await;
    let app = app_trusting(&docs).await;
    let deep = format!("{}/deep.json", docs.https.base);
    let d = assert_error(push_for(&app, &deep).await, 401, "invalid_client").await;
    assert!(d.contains("deeper than 32"), "{d}");
    assert_eq!(app.stats().await.pending_pushed_requests, 0);
}

#[tokio::test]
async fn loopback_documents_are_refused_without_the_allow_list() {
    let docs = DocServer::start().await;
    docs.serve(&docs.client_id(), json!({}));
    let cert = docs.https.cert_path.clone();
    let app = TestApp::spawn_with(move |c| c.metadata_documents.extra_roots = vec![cert]).await;
    assert_error(
        push_for(&app, &docs.client_id()).await,
        401,
        "invalid_client",
    )
    .await;
    // Nor may a client name a private address.
    assert_error(
        push_for(&app, "https://10.0.0.1/client.json").await,
        401,
        "invalid_client",
    )
    .await;
    assert_error(
        push_for(&app, "https://[::1]/client.json").await,
        401,
        "invalid_client",
    )
    .await;
}

#[tokio::test]
async fn plain_http_client_ids_are_refused() {
    let app = TestApp::spawn().await;
    let d = assert_error(
        push_for(&app, "http://agent.example/client.json").await,
        401,
        "invalid_client",
    )
    .await;
    assert!(d.contains("https"), "{d}");
}

#[tokio::test]
async fn a_redirect_uri_outside_the_document_is_refused() {
    let docs = DocServer::start().await;
    docs.serve(
        &docs.client_id(),
        json!({"redirect_uris": ["http://127.0.0.1:7777/other"]}),
    );
    let app = app_trusting(&docs).await;
    assert_error(
        push_for(&app, &docs.client_id()).await,
        400,
        "invalid_request",
    )
    .await;
}

#[tokio::test]
async fn the_front_channel_with_a_url_client_id_shows_an_error_page_when_the_document_is_bad() {
    let app = TestApp::spawn().await;
    let url = format!(
        "{}?client_id=https%3A%2F%2F127.0.0.1%3A1%2Fc.json&response_type=code&redirect_uri={}",
        app.url("/authorize"),
        url::form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>()
    );
    let res = app.http.get(url).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert!(res.headers().get("location").is_none());
}

#[tokio::test]
async fn metadata_advertises_url_client_ids() {
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
    assert_eq!(m["client_id_metadata_document_supported"], true);
    let off = TestApp::spawn_with(|c| c.metadata_documents.enabled = false).await;
    let m: Value = off
        .http
        .get(off.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(m["client_id_metadata_document_supported"], false);
    assert_error(
        push_for(&off, "https://agent.example/client.json").await,
        401,
        "invalid_client",
    )
    .await;
}

#[tokio::test]
async fn repeated_requests_naming_a_failing_document_reach_its_host_once() {
    let docs = DocServer::start().await;
    let app = app_trusting(&docs).await;
    let client_id = format!("{}/gone.json", docs.https.base);
    let mut url = url::Url::parse(&app.url("/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", &client_id)
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("code_challenge", CHALLENGE)
        .append_pair("code_challenge_method", "S256");

    let mut descriptions = std::collections::HashSet::new();
    for _ in 0..10 {
        let res = app.http.get(url.clone()).send().await.unwrap();
        descriptions.insert(assert_error_page(res, "invalid_client").await);
        let res = push_for(&app, &client_id).await;
        assert_error(res, 401, "invalid_client").await;
    }

    // Ten page loads and ten pushes: one fetch; the failure is remembered.
    assert_eq!(docs.gone_hits.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(descriptions.len(), 1);
    assert_eq!(app.stats().await.pending_pushed_requests, 0);
}

/// A `client_credentials` request by the document's client, signed by `key`.
async fn machine_token(
    app: &TestApp,
    client_id: &str,
    key: &crate::keys::TestKey,
) -> reqwest::Response {
    let assertion = key.assertion(client_id, &app.base, app.now());
    app.post_form(
        "/token",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            (
                "client_assertion_type",
                ephemera_proto::assertion::JWT_BEARER_ASSERTION,
            ),
            ("client_assertion", &assertion),
        ],
    )
    .await
}

#[tokio::test]
async fn a_document_with_a_key_mints_no_machine_tokens_unless_the_operator_allows_it() {
    let docs = DocServer::start().await;
    let client_id = docs.client_id();
    let key = crate::keys::TestKey::new();
    docs.serve(
        &client_id,
        json!({
            "grant_types": ["client_credentials"],
            "response_types": [],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": key.jwks(),
        }),
    );
    let app = app_trusting(&docs).await;

    let d = assert_error(
        machine_token(&app, &client_id, &key).await,
        400,
        "unauthorized_client",
    )
    .await;
    assert!(d.contains("metadata document"), "{d}");
    assert_eq!(app.stats().await.grants, 0);

    let cert = docs.https.cert_path.clone();
    let allowing = TestApp::spawn_with(move |c| {
        c.metadata_documents.allow_hosts = vec!["127.0.0.1".into()];
        c.metadata_documents.extra_roots = vec![cert];
        c.clients.client_credentials = vec!["registered".into(), "metadata_document".into()];
    })
    .await;
    let res = machine_token(&allowing, &client_id, &key).await;
    assert_eq!(res.status(), 200, "{:?}", res.text().await);
}

#[tokio::test]
async fn a_document_listing_methods_instead_of_naming_one_gets_the_strongest_it_can_use() {
    // Shaped like OpenID Federation relying-party metadata: a list of
    // methods, no token_endpoint_auth_method, no keys: it is public.
    let docs = DocServer::start().await;
    let client_id = docs.client_id();
    let mut document = json!({
        "token_endpoint_auth_methods_supported": ["private_key_jwt", "none"],
        "application_type": "native",
    });
    docs.serve(&client_id, document.clone());
    // `serve` sets token_endpoint_auth_method; the shape under test has none.
    docs.document
        .lock()
        .unwrap()
        .as_object_mut()
        .unwrap()
        .remove("token_endpoint_auth_method");
    let app = app_trusting(&docs).await;

    let res = push_for(&app, &client_id).await;
    assert_eq!(res.status(), 201, "{:?}", res.text().await);

    // A list offering nothing a document may use here is refused.
    document["token_endpoint_auth_methods_supported"] = json!(["client_secret_basic"]);
    docs.serve(&client_id, document);
    docs.document
        .lock()
        .unwrap()
        .as_object_mut()
        .unwrap()
        .remove("token_endpoint_auth_method");
    let app = app_trusting(&docs).await;
    let d = assert_error(push_for(&app, &client_id).await, 401, "invalid_client").await;
    assert!(d.contains("token_endpoint_auth_methods_supported"), "{d}");
}

#[tokio::test]
async fn the_consent_page_warns_when_a_document_returns_only_to_this_device() {
    // Anyone can publish a document naming a loopback redirect URI: the user
    // must know that access goes back to whatever listens on this computer.
    let docs = DocServer::start().await;
    let client_id = docs.client_id();
    docs.serve(&client_id, json!({}));
    let app = app_trusting(&docs).await;
    let res = push_for(&app, &client_id).await;
    let request_uri = res.json::<Value>().await.unwrap()["request_uri"]
        .as_str()
        .unwrap()
        .to_owned();
    let browser = app.browser();
    app.login(&browser, &client_id, &request_uri).await;
    let consent = app.consent_page(&browser, &client_id, &request_uri).await;
    assert!(consent.contains("id=\"loopback-warning\""), "{consent}");
    assert!(consent.contains("id=\"verified-origin\""), "{consent}");
    assert!(consent.contains("id=\"redirect-host\""), "{consent}");
}

#[tokio::test]
async fn the_consent_page_does_not_warn_for_an_https_redirect_or_an_operators_client() {
    let docs = DocServer::start().await;
    let client_id = docs.client_id();
    let https = "https://agent.example/callback";
    docs.serve(&client_id, json!({"redirect_uris": [https]}));
    let app = app_trusting(&docs).await;
    let res = app
        .post_form(
            "/par",
            &[
                ("client_id", client_id.as_str()),
                ("response_type", "code"),
                ("redirect_uri", https),
                ("state", "s"),
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "S256"),
            ],
        )
        .await;
    assert_eq!(res.status(), 201, "{:?}", res.text().await);
    let request_uri = res.json::<Value>().await.unwrap()["request_uri"]
        .as_str()
        .unwrap()
        .to_owned();
    let browser = app.browser();
    app.login(&browser, &client_id, &request_uri).await;
    let consent = app.consent_page(&browser, &client_id, &request_uri).await;
    assert!(!consent.contains("loopback-warning"), "{consent}");

    // The operator vouches for its own clients, loopback or not.
    app.add_public_client("cli", &[REDIRECT]).await;
    let res = app
        .post_form(
            "/par",
            &[
                ("client_id", "cli"),
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
    let consent = app.consent_page(&browser, "cli", &request_uri).await;
    assert!(!consent.contains("loopback-warning"), "{consent}");
}

/// A JWK Set of these keys.
fn key_set(keys: &[&crate::keys::TestKey]) -> Value {
    let keys: Vec<Value> = keys.iter().map(|k| k.jwks()["keys"][0].clone()).collect();
    json!({ "keys": keys })
}

/// The client assertion parameters for `client_id`, signed by `key`.
fn assertion_params(
    app: &TestApp,
    client_id: &str,
    key: &crate::keys::TestKey,
) -> [(String, String); 2] {
    [
        (
            "client_assertion_type".into(),
            ephemera_proto::assertion::JWT_BEARER_ASSERTION.into(),
        ),
        (
            "client_assertion".into(),
            key.assertion(client_id, &app.base, app.now()),
        ),
    ]
}

/// The whole flow for a `private_key_jwt` document client, signing with
/// `key`: its tokens.
async fn signed_flow(app: &TestApp, client_id: &str, key: &crate::keys::TestKey) -> Value {
    let auth = assertion_params(app, client_id, key);
    let mut params = vec![
        ("client_id", client_id),
        ("response_type", "code"),
        ("redirect_uri", REDIRECT),
        ("state", "s"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    params.extend(auth.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let res = app.post_form("/par", &params).await;
    assert_eq!(res.status(), 201, "{:?}", res.text().await);
    let request_uri = res.json::<Value>().await.unwrap()["request_uri"]
        .as_str()
        .unwrap()
        .to_owned();
    let browser = app.browser();
    app.login(&browser, client_id, &request_uri).await;
    let to = app
        .decide(&browser, client_id, &request_uri, "approve")
        .await;
    let code = query(&to, "code").unwrap();
    let auth = assertion_params(app, client_id, key);
    let mut extra = vec![("client_id", client_id)];
    extra.extend(auth.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let res = app.redeem(&code, &extra).await;
    assert_eq!(res.status(), 200, "{:?}", res.text().await);
    res.json().await.unwrap()
}

async fn signed_refresh(
    app: &TestApp,
    client_id: &str,
    key: &crate::keys::TestKey,
    refresh_token: &str,
) -> reqwest::Response {
    let auth = assertion_params(app, client_id, key);
    let mut params = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
        ("client_id", client_id),
    ];
    params.extend(auth.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    app.post_form("/token", &params).await
}

#[tokio::test]
async fn a_document_naming_its_keys_by_jwks_uri_authenticates_with_them() {
    let docs = DocServer::start().await;
    let client_id = docs.client_id();
    let (key, stranger) = (crate::keys::TestKey::new(), crate::keys::TestKey::new());
    *docs.keys.lock().unwrap() = key_set(&[&key]);
    docs.serve(
        &client_id,
        json!({
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks_uri": format!("{}/jwks.json", docs.https.base),
        }),
    );
    let app = app_trusting(&docs).await;

    // Without an assertion, or signed by a key the document does not name: refused.
    let d = assert_error(push_for(&app, &client_id).await, 401, "invalid_client").await;
    assert!(d.contains("private_key_jwt"), "{d}");
    let tokens = signed_flow(&app, &client_id, &key).await;
    let refresh = tokens["refresh_token"].as_str().unwrap();
    assert_error(
        signed_refresh(&app, &client_id, &stranger, refresh).await,
        401,
        "invalid_client",
    )
    .await;
    let res = signed_refresh(&app, &client_id, &key, refresh).await;
    assert_eq!(res.status(), 200, "{:?}", res.text().await);

    // Keys that cannot be had make the document no client.
    docs.keys.lock().unwrap().take();
    app.advance(24 * 3600 + 1);
    let d = assert_error(push_for(&app, &client_id).await, 401, "invalid_client").await;
    assert!(d.contains("jwks_uri"), "{d}");
}

#[tokio::test]
async fn a_grant_ends_once_its_document_publishes_none_of_the_keys_it_was_issued_under() {
    let docs = DocServer::start().await;
    let client_id = docs.client_id();
    let (old, new) = (crate::keys::TestKey::new(), crate::keys::TestKey::new());
    *docs.keys.lock().unwrap() = key_set(&[&old]);
    docs.serve(
        &client_id,
        json!({
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks_uri": format!("{}/jwks.json", docs.https.base),
        }),
    );
    let app = app_trusting(&docs).await;
    // Issued under {old}.
    let first = signed_flow(&app, &client_id, &old).await;

    // The client rotates: both keys published for a while. The first grant
    // lives on (its key is still published), and a second is issued under both.
    *docs.keys.lock().unwrap() = key_set(&[&old, &new]);
    app.advance(24 * 3600 + 1);
    let res = signed_refresh(
        &app,
        &client_id,
        &new,
        first["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(res.status(), 200, "{:?}", res.text().await);
    let first: Value = res.json().await.unwrap();
    let second = signed_flow(&app, &client_id, &new).await;
    assert_eq!(app.stats().await.grants, 2);

    // The old key is withdrawn.
    *docs.keys.lock().unwrap() = key_set(&[&new]);
    app.advance(24 * 3600 + 1);
    let d = assert_error(
        signed_refresh(
            &app,
            &client_id,
            &new,
            first["refresh_token"].as_str().unwrap(),
        )
        .await,
        400,
        "invalid_grant",
    )
    .await;
    assert!(d.contains("no longer publishes"), "{d}");
    assert_eq!(
        app.stats().await.grants,
        1,
        "the grant ended with its tokens"
    );
    let res = signed_refresh(
        &app,
        &client_id,
        &new,
        second["refresh_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(
        res.status(),
        200,
        "issued while the new key was published: {:?}",
        res.text().await
    );
}

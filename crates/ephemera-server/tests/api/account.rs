//! The account page (`/account`) and `ephemera grants`: every installation of
//! a client sharing one `client_id` (a metadata document, here) has a grant
//! of its own, listed apart and revoked alone, by its user or the operator.

use serde_json::{json, Value};

use crate::erasure::files_hold;
use crate::helpers::*;
use crate::keys::{random_id, TestKey};
use crate::metadata_document::{app_trusting, push_for, DocServer};
use crate::support::binary::{self, text};

/// One installation's authorization of `client_id` in its own browser:
/// its tokens.
async fn install(app: &TestApp, client_id: &str) -> Value {
    install_with(app, client_id, None).await
}

/// [`install`], its tokens bound at the token endpoint to `key` (DPoP) when
/// one is given.
async fn install_with(app: &TestApp, client_id: &str, key: Option<&TestKey>) -> Value {
    let res = push_for(app, client_id).await;
    assert_eq!(res.status(), 201, "{:?}", res.text().await);
    let request_uri = res.json::<Value>().await.unwrap()["request_uri"]
        .as_str()
        .unwrap()
        .to_owned();
    let browser = app.browser();
    app.login(&browser, client_id, &request_uri).await;
    let consent = app.consent_page(&browser, client_id, &request_uri).await;
    assert!(
        consent.contains("<a href=\"/account\">account page</a>"),
        "the consent page says where access ends: {consent}"
    );
    let to = app
        .decide(&browser, client_id, &request_uri, "approve")
        .await;
    let code = query(&to, "code").unwrap();
    let mut req = app.http.post(app.url("/token")).form(&[
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
        ("client_id", client_id),
    ]);
    if let Some(key) = key {
        req = req.header("DPoP", key.proof(&app.url("/token"), app.now()));
    }
    let res = req.send().await.unwrap();
    assert_eq!(res.status(), 200, "{:?}", res.text().await);
    res.json().await.unwrap()
}

/// The pushed flow as `username` (logging in through the form), the
/// request pushed with `extra` and a DPoP proof by `key` at the token
/// endpoint when given: the tokens.
async fn pushed_tokens_as(
    app: &TestApp,
    username: &str,
    password: &str,
    registration: &str,
    extra: &[(&str, &str)],
    key: Option<&TestKey>,
) -> Value {
    let request_uri = app.push_ok(Some(registration), extra).await;
    let browser = app.browser();
    let html = browser
        .get(app.authorize_url(URN, &request_uri))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let res = browser
        .post(app.url("/authorize/login"))
        .form(&[
            ("client_id", URN),
            ("request_uri", request_uri.as_str()),
            ("csrf", csrf(&html).as_str()),
            ("username", username),
            ("password", password),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "login as {username}");
    let to = app.decide(&browser, URN, &request_uri, "approve").await;
    let code = query(&to, "code").unwrap();
    let mut req = app.http.post(app.url("/token")).form(&[
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
        ("client_id", URN),
    ]);
    if let Some(key) = key {
        req = req.header("DPoP", key.proof(&app.url("/token"), app.now()));
    }
    let res = req.send().await.unwrap();
    assert_eq!(res.status(), 200, "{:?}", res.text().await);
    res.json().await.unwrap()
}

async fn add_bob(app: &TestApp) {
    ephemera_server::service::admin::add_user(
        app.ctx.store.as_ref(),
        "bob",
        "bob's long password".into(),
        app.now(),
    )
    .await
    .unwrap();
}

async fn active(app: &TestApp, tokens: &Value) -> bool {
    app.introspect(tokens["access_token"].as_str().unwrap())
        .await["active"]
        == true
}

async fn revoke_all(browser: &reqwest::Client, app: &TestApp, page: &str) -> reqwest::Response {
    browser
        .post(app.url("/account/revoke-all"))
        .form(&[("csrf", csrf(page).as_str())])
        .send()
        .await
        .unwrap()
}

async fn refresh(app: &TestApp, client_id: &str, tokens: &Value) -> reqwest::Response {
    app.post_form(
        "/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
            ("client_id", client_id),
        ],
    )
    .await
}

async fn revoke(
    browser: &reqwest::Client,
    app: &TestApp,
    page: &str,
    grant_id: &str,
) -> reqwest::Response {
    browser
        .post(app.url("/account/revoke"))
        .form(&[("csrf", csrf(page).as_str()), ("grant_id", grant_id)])
        .send()
        .await
        .unwrap()
}

async fn grant_id(app: &TestApp, tokens: &Value) -> String {
    let info = app
        .introspect(tokens["access_token"].as_str().unwrap())
        .await;
    info["grant_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_user_revokes_one_installation_of_a_shared_client_and_the_other_keeps_working() {
    let docs = DocServer::start().await;
    let client_id = docs.client_id();
    docs.serve(&client_id, json!({}));
    let app = app_trusting(&docs).await;
    let laptop = install(&app, &client_id).await;
    let desktop = install(&app, &client_id).await;
    let (laptop_grant, desktop_grant) = (
        grant_id(&app, &laptop).await,
        grant_id(&app, &desktop).await,
    );
    assert_ne!(laptop_grant, desktop_grant);

    let (browser, page) = sign_in(&app, "alice", PASSWORD).await;
    for id in [&laptop_grant, &desktop_grant] {
        assert!(page.contains(&format!("data-grant-id=\"{id}\"")), "{page}");
    }
    assert_eq!(page.matches("class=\"grant\"").count(), 2);
    assert!(page.contains("Document Agent"));
    let origin = docs.https.base.trim_start_matches("https://");
    assert!(
        page.contains(&format!("<span class=\"host\">{origin}</span>")),
        "{page}"
    );

    let res = revoke(&browser, &app, &page, &laptop_grant).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res).query(), Some("revoked=1"));
    assert_error(
        refresh(&app, &client_id, &laptop).await,
        400,
        "invalid_grant",
    )
    .await;
    let gone = app
        .introspect(laptop["access_token"].as_str().unwrap())
        .await;
    assert_eq!(gone["active"], false);
    let res = refresh(&app, &client_id, &desktop).await;
    assert_eq!(res.status(), 200, "the other installation is untouched");

    let page = browser
        .get(app.url("/account?revoked=1"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("id=\"revoked\""));
    assert!(!page.contains(&laptop_grant));
    assert!(page.contains(&desktop_grant));
}

#[tokio::test]
async fn a_user_cannot_revoke_a_grant_of_someone_else() {
    let docs = DocServer::start().await;
    let client_id = docs.client_id();
    docs.serve(&client_id, json!({}));
    let app = app_trusting(&docs).await;
    let alices = install(&app, &client_id).await;
    let alices_grant = grant_id(&app, &alices).await;
    ephemera_server::service::admin::add_user(
        app.ctx.store.as_ref(),
        "bob",
        "bob's long password".into(),
        app.now(),
    )
    .await
    .unwrap();

    let (browser, page) = sign_in(&app, "bob", "bob's long password").await;
    assert!(
        page.contains("id=\"no-grants\""),
        "bob sees none of alice's: {page}"
    );
    let res = revoke(&browser, &app, &page, &alices_grant).await;
    assert_eq!(res.status(), 400);
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("no such grant among yours"));
    assert_eq!(refresh(&app, &client_id, &alices).await.status(), 200);
}

#[tokio::test]
async fn the_account_forms_need_this_browsers_token_a_session_and_the_right_password() {
    let app = TestApp::spawn().await;
    let browser = app.browser();
    let html = browser
        .get(app.url("/account"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let res = browser
        .post(app.url("/account/login"))
        .form(&[
            ("csrf", csrf(&html).as_str()),
            ("username", "alice"),
            ("password", "wrong"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("Wrong username or password"));
    let res = browser
        .post(app.url("/account/login"))
        .form(&[
            ("csrf", "forged"),
            ("username", "alice"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("CSRF"));

    let (browser, page) = sign_in(&app, "alice", PASSWORD).await;
    assert!(page.contains("id=\"no-grants\""));
    let res = browser
        .post(app.url("/account/revoke"))
        .form(&[("csrf", "forged"), ("grant_id", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let res = browser
        .post(app.url("/account/revoke"))
        .form(&[("csrf", csrf(&page).as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400, "no grant_id");

    let res = browser
        .post(app.url("/account/logout"))
        .form(&[("csrf", csrf(&page).as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let html = browser
        .get(app.url("/account"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("action=\"/account/login\""),
        "signed out: {html}"
    );
    // A signed-out browser's revoke goes back to the sign-in form.
    let res = browser
        .post(app.url("/account/revoke"))
        .form(&[("csrf", csrf(&html).as_str()), ("grant_id", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res).path(), "/account");
}

#[tokio::test]
async fn the_operator_lists_a_clients_grants_and_revokes_one() {
    let docs = DocServer::start().await;
    let client_id = docs.client_id();
    docs.serve(&client_id, json!({}));
    let app = app_trusting(&docs).await;
    let first = install(&app, &client_id).await;
    app.advance(5);
    let second = install(&app, &client_id).await;
    let (first_grant, second_grant) = (grant_id(&app, &first).await, grant_id(&app, &second).await);
    let dir = tempfile::tempdir().unwrap();
    let ephemera = |args: &[&str]| {
        let mut all = vec!["--database", app.config.database.as_str()];
        all.extend_from_slice(args);
        binary::run(binary::command(dir.path(), &all), None)
    };

    let out = ephemera(&["grants", "list", "--client", &client_id, "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["grant_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [second_grant.as_str(), first_grant.as_str()],
        "newest first"
    );
    assert_eq!(listed[0]["client_kind"], "metadata_document");
    assert_eq!(listed[0]["username"], "alice");
    assert_eq!(listed[0]["live_tokens"], 2);
    // `grant` is an alias of `grants`.
    let out = ephemera(&["grant", "list", "--user", "alice"]);
    assert!(text(&out).contains(&first_grant) && text(&out).contains(&second_grant));
    let out = ephemera(&["grants", "list", "--user", "nobody"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("no user `nobody`"));

    let out = ephemera(&["grants", "revoke", &first_grant]);
    assert!(out.status.success(), "{}", text(&out));
    assert_error(
        refresh(&app, &client_id, &first).await,
        400,
        "invalid_grant",
    )
    .await;
    assert_eq!(refresh(&app, &client_id, &second).await.status(), 200);
    let out = ephemera(&["grants", "revoke", &first_grant]);
    assert!(!out.status.success());
    assert!(text(&out).contains("no grant"));
}

#[tokio::test]
async fn each_grant_shows_its_client_its_key_scopes_resources_and_times() {
    let docs = DocServer::start().await;
    let client_id = docs.client_id();
    docs.serve(&client_id, json!({}));
    let cert = docs.https.cert_path.clone();
    let app = TestApp::spawn_with(move |c| {
        c.metadata_documents.allow_hosts = vec!["127.0.0.1".into()];
        c.metadata_documents.extra_roots = vec![cert];
        c.resources = vec!["https://api.example/".into()];
    })
    .await;
    // A pushed client bound at PAR to a DPoP key, for one resource.
    let key = TestKey::new();
    let registration = json!({
        "client_name": "Pushed Agent",
        "redirect_uris": [REDIRECT],
        "grant_types": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": "none",
    })
    .to_string();
    app.advance(60);
    let before = app.now();
    let pushed = pushed_tokens_as(
        &app,
        "alice",
        PASSWORD,
        &registration,
        &[
            ("dpop_jkt", key.jkt.as_str()),
            ("resource", "https://api.example/"),
        ],
        Some(&key),
    )
    .await;
    // A metadata document client, bound at the token endpoint to another key.
    let other_key = TestKey::new();
    let document = install_with(&app, &client_id, Some(&other_key)).await;
    let (pushed_grant, document_grant) = (
        grant_id(&app, &pushed).await,
        grant_id(&app, &document).await,
    );

    let (_, page) = sign_in(&app, "alice", PASSWORD).await;
    // When it was allowed and last got tokens: the minute of the flow (the
    // server's clock is the wall clock, moved on).
    let minutes = [before, app.now()].map(ephemera_server::service::grants::utc);
    for field in ["granted", "last-active"] {
        let shown = entry(&page, &pushed_grant);
        assert!(
            minutes
                .iter()
                .any(|m| shown.contains(&format!("<dd data-field=\"{field}\">{m}</dd>"))),
            "{field}: {shown}"
        );
    }
    let shown = entry(&page, &pushed_grant);
    for expected in [
        "<bdi class=\"grant-name\">Pushed Agent</bdi>",
        "pushed, described by itself",
        "not verified: anyone could have chosen this name",
        "<span class=\"host\">127.0.0.1:9999</span>",
        &format!("DPoP key <span class=\"thumbprint\">{}</span>", key.jkt),
        "<dd data-field=\"scopes\">",
        "<span class=\"host\">https://api.example/</span>",
    ] {
        assert!(shown.contains(expected), "{expected} not in {shown}");
    }
    let shown = entry(&page, &document_grant);
    let origin = docs.https.base.trim_start_matches("https://");
    for expected in [
        "<bdi class=\"grant-name\">Document Agent</bdi>",
        "metadata document, described by a document at its own address",
        &format!("by its address, <span class=\"host\">{origin}</span>"),
        // Bound when it redeemed its code: its tokens carry the key.
        &format!(
            "DPoP key <span class=\"thumbprint\">{}</span>",
            other_key.jkt
        ),
        "none named: not limited to one",
    ] {
        assert!(shown.contains(expected), "{expected} not in {shown}");
    }
    assert!(!shown.contains("not verified"), "{shown}");
}

#[tokio::test]
async fn the_account_pages_carry_the_consent_pages_security_headers() {
    let app = TestApp::spawn().await;
    let request_uri = app.push_ok(Some(&registration()), &[]).await;
    let browser = app.browser();
    app.login(&browser, URN, &request_uri).await;
    let consent = browser
        .get(app.authorize_url(URN, &request_uri))
        .send()
        .await
        .unwrap();
    assert_eq!(consent.status(), 200);
    let signed_out = app.browser().get(app.url("/account")).send().await.unwrap();
    let (account_browser, _) = sign_in(&app, "alice", PASSWORD).await;
    let signed_in = account_browser
        .get(app.url("/account"))
        .send()
        .await
        .unwrap();
    for name in [
        "content-security-policy",
        "x-frame-options",
        "referrer-policy",
        "x-content-type-options",
        "cache-control",
        "pragma",
    ] {
        let want = consent.headers().get(name);
        assert!(want.is_some(), "the consent page has {name}");
        for (page, res) in [("sign-in", &signed_out), ("account", &signed_in)] {
            assert_eq!(res.headers().get(name), want, "{page} page: {name}");
        }
    }
}

#[tokio::test]
async fn end_all_ends_every_grant_of_the_user_and_no_one_elses() {
    let docs = DocServer::start().await;
    let client_id = docs.client_id();
    docs.serve(&client_id, json!({}));
    let app = app_trusting(&docs).await;
    add_bob(&app).await;
    let laptop = install(&app, &client_id).await;
    let pushed = pushed_tokens_as(&app, "alice", PASSWORD, &registration(), &[], None).await;
    let bobs = pushed_tokens_as(
        &app,
        "bob",
        "bob's long password",
        &registration(),
        &[],
        None,
    )
    .await;

    let (browser, page) = sign_in(&app, "alice", PASSWORD).await;
    assert!(page.contains("action=\"/account/revoke-all\""), "{page}");
    // The form needs this browser's CSRF token.
    let res = browser
        .post(app.url("/account/revoke-all"))
        .form(&[("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("CSRF"));
    let res = browser
        .post(app.url("/account/revoke-all"))
        .form(&[("other", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("CSRF"));
    assert!(active(&app, &laptop).await && active(&app, &pushed).await);

    let res = revoke_all(&browser, &app, &page).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res).query(), Some("revoked=all"));
    assert!(!active(&app, &laptop).await);
    assert!(!active(&app, &pushed).await);
    assert_error(
        refresh(&app, &client_id, &laptop).await,
        400,
        "invalid_grant",
    )
    .await;
    assert!(active(&app, &bobs).await, "bob's grant is untouched");
    let page = browser
        .get(app.url("/account?revoked=all"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("id=\"revoked-all\"") && page.contains("id=\"no-grants\""));
    assert!(!page.contains("action=\"/account/revoke-all\""));

    // Nothing left: a precise answer, and bob's grant still there.
    let res = revoke_all(&browser, &app, &page).await;
    assert_eq!(res.status(), 400);
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("none of your grants is left to end"));
    assert!(active(&app, &bobs).await);
    // Without a session, the form goes back to the sign-in page.
    let stranger = app.browser();
    let html = stranger
        .get(app.url("/account"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("action=\"/account/login\""));
    let res = revoke_all(&stranger, &app, &html).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res).path(), "/account");
    assert!(active(&app, &bobs).await);
}

#[tokio::test]
async fn ending_a_pushed_clients_grant_on_the_account_page_erases_its_metadata() {
    for how in ["revoke", "revoke-all"] {
        let app = TestApp::spawn().await;
        let marker = format!("erase-me-{}", random_id());
        let registration = json!({
            "client_name": marker,
            "redirect_uris": [REDIRECT],
            "grant_types": ["authorization_code", "refresh_token"],
        })
        .to_string();
        let tokens = app.pushed_tokens(Some(&registration)).await;
        let id = grant_id(&app, &tokens).await;
        assert!(files_hold(&app, &marker), "the grant was stored with it");
        let (browser, page) = sign_in(&app, "alice", PASSWORD).await;
        assert!(page.contains(&marker), "{how}: {page}");

        let res = match how {
            "revoke" => revoke(&browser, &app, &page, &id).await,
            _ => revoke_all(&browser, &app, &page).await,
        };
        assert_eq!(res.status(), 303, "{how}");

        let info = app
            .introspect(tokens["access_token"].as_str().unwrap())
            .await;
        assert_eq!(info, json!({"active": false}), "{how}");
        let stats = app.stats().await;
        assert_eq!(
            (
                stats.pushed_client_grants,
                stats.grants,
                stats.access_tokens,
                stats.refresh_tokens
            ),
            (0, 0, 0, 0),
            "{how}"
        );
        // The next sweep (every `sweep_interval`) empties the WAL.
        ephemera_server::service::sweep::sweep(app.ctx.store.as_ref(), app.now())
            .await
            .unwrap();
        assert!(
            !files_hold(&app, &marker),
            "{how}: erased, yet still in the files"
        );
    }
}

#[tokio::test]
async fn the_operator_ends_every_grant_bound_to_one_key_or_of_one_user() {
    let docs = DocServer::start().await;
    let client_id = docs.client_id();
    docs.serve(&client_id, json!({}));
    let app = app_trusting(&docs).await;
    add_bob(&app).await;
    // One agent instance's key, used by a metadata document installation
    // (bound at the token endpoint) and a pushed client (bound at PAR).
    let compromised = TestKey::new();
    let laptop = install_with(&app, &client_id, Some(&compromised)).await;
    let pushed = pushed_tokens_as(
        &app,
        "alice",
        PASSWORD,
        &registration(),
        &[("dpop_jkt", compromised.jkt.as_str())],
        Some(&compromised),
    )
    .await;
    let desktop = install_with(&app, &client_id, Some(&TestKey::new())).await;
    let bobs = pushed_tokens_as(
        &app,
        "bob",
        "bob's long password",
        &registration(),
        &[],
        None,
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let ephemera = |args: &[&str]| {
        let mut all = vec!["--database", app.config.database.as_str()];
        all.extend_from_slice(args);
        binary::run(binary::command(dir.path(), &all), None)
    };

    let out = ephemera(&["grants", "list", "--key", &compromised.jkt, "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["grant_id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    let mut expected = [grant_id(&app, &laptop).await, grant_id(&app, &pushed).await];
    expected.sort_unstable();
    assert_eq!(ids, expected);
    for g in listed.as_array().unwrap() {
        assert_eq!(g["dpop_jkt"], compromised.jkt.as_str());
        assert_eq!(g["redirect_uri"], REDIRECT);
    }

    let out = ephemera(&["grants", "revoke", "--key", &compromised.jkt]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("revoked 2 grants"), "{}", text(&out));
    assert!(!active(&app, &laptop).await && !active(&app, &pushed).await);
    assert!(active(&app, &desktop).await && active(&app, &bobs).await);
    let out = ephemera(&["grants", "revoke", "--key", &compromised.jkt]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("no grant is bound to key"),
        "{}",
        text(&out)
    );

    let out = ephemera(&["grants", "revoke", "--user", "alice"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("revoked 1 grant\n"), "{}", text(&out));
    assert!(!active(&app, &desktop).await);
    assert!(active(&app, &bobs).await, "bob's grant is untouched");
    let out = ephemera(&["grants", "revoke", "--user", "alice"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("user `alice` has no grant"));
    let out = ephemera(&["grants", "revoke", "--user", "nobody"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("no user `nobody`"));
    // Exactly one of an id, --key and --user.
    for args in [
        &["grants", "revoke"][..],
        &["grants", "revoke", "some-id", "--user", "bob"][..],
        &["grants", "revoke", "--key", "k", "--user", "bob"][..],
    ] {
        let out = ephemera(args);
        assert!(!out.status.success(), "{args:?}");
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
    }
    assert!(active(&app, &bobs).await);
}

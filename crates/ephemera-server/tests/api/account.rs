//! The account page (`/account`) and `ephemera grants`: every installation of
//! a client sharing one `client_id` (a metadata document, here) has a grant
//! of its own, listed apart and revoked alone, by its user or the operator.

use serde_json::{json, Value};

use crate::helpers::*;
use crate::metadata_document::{app_trusting, push_for, DocServer};
use crate::support::binary::{self, text};

/// One installation's authorization of `client_id` in its own browser:
/// its tokens.
async fn install(app: &TestApp, client_id: &str) -> Value {
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
    let res = app.redeem(&code, &[("client_id", client_id)]).await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
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

/// A browser signed in on the account page as `username`: it and the page.
async fn sign_in(app: &TestApp, username: &str, password: &str) -> (reqwest::Client, String) {
    let browser = app.browser();
    let page = browser.get(app.url("/account")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("action=\"/account/login\""), "{html}");
    let res = browser
        .post(app.url("/account/login"))
        .form(&[
            ("csrf", csrf(&html).as_str()),
            ("username", username),
            ("password", password),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "{:?}", res.text().await);
    assert_eq!(location(&res).path(), "/account");
    let page = browser.get(app.url("/account")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    (browser, page.text().await.unwrap())
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
    let origin = docs.base.trim_start_matches("https://");
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

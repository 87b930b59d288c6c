//! Pre-registered clients, the classic way: front-channel requests, PAR with
//! a client secret, and client_credentials.

use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn a_public_registered_client_uses_the_front_channel_with_pkce() {
    let app = TestApp::spawn().await;
    app.add_public_client("spa", &[REDIRECT]).await;
    let browser = app.browser();
    let mut url = url::Url::parse(&app.url("/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", "spa")
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("state", "s1")
        .append_pair("scope", "read write")
        .append_pair("code_challenge", CHALLENGE)
        .append_pair("code_challenge_method", "S256");
    let res = browser.get(url).send().await.unwrap();
    assert_eq!(res.status(), 302);
    let stored = location(&res);
    let request_uri = query(&stored, "request_uri").unwrap();
    app.login(&browser, "spa", &request_uri).await;
    let to = app.decide(&browser, "spa", &request_uri, "approve").await;
    assert_eq!(query(&to, "state").as_deref(), Some("s1"));
    let code = query(&to, "code").unwrap();
    let res = app.redeem(&code, &[("client_id", "spa")]).await;
    assert_eq!(res.status(), 200);
    let tokens: Value = res.json().await.unwrap();
    assert_eq!(tokens["scope"], "read write");
    let info = app
        .introspect(tokens["access_token"].as_str().unwrap())
        .await;
    assert_eq!(info["client_id"], "spa");
    assert_eq!(info["client_kind"], "registered");
    assert!(info.get("client_metadata").is_none());
}

#[tokio::test]
async fn a_registered_clients_consent_is_remembered() {
    let app = TestApp::spawn().await;
    app.add_public_client("spa", &[REDIRECT]).await;
    let browser = app.browser();
    let push = |app: &TestApp, scope: &'static str| {
        let app_http = app.http.clone();
        let url = app.url("/par");
        async move {
            let res = app_http
                .post(url)
                .form(&[
                    ("client_id", "spa"),
                    ("response_type", "code"),
                    ("redirect_uri", REDIRECT),
                    ("code_challenge", CHALLENGE),
                    ("code_challenge_method", "S256"),
                    ("scope", scope),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 201);
            res.json::<Value>().await.unwrap()["request_uri"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let first = push(&app, "read write").await;
    app.login(&browser, "spa", &first).await;
    app.decide(&browser, "spa", &first, "approve").await;
    // A narrower request is answered at once, and does not narrow what is
    // remembered: a later request for the rest is answered at once too.
    for scope in ["read", "write", "read write"] {
        let next = push(&app, scope).await;
        let res = browser
            .get(app.authorize_url("spa", &next))
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            302,
            "remembered consent answers `{scope}` at once"
        );
        let code = query(&location(&res), "code").unwrap();
        let res = app.redeem(&code, &[("client_id", "spa")]).await;
        let tokens: Value = res.json().await.unwrap();
        assert_eq!(tokens["scope"], scope);
    }
}

#[tokio::test]
async fn a_confidential_client_pushes_with_client_secret_basic_and_redeems_with_client_secret_post()
{
    let app = TestApp::spawn().await;
    let secret = app.add_confidential_client("web", false).await;
    let res = app
        .http
        .post(app.url("/par"))
        .basic_auth("web", Some(&secret))
        .form(&[
            ("response_type", "code"),
            ("redirect_uri", REDIRECT),
            ("state", "s"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let request_uri = res.json::<Value>().await.unwrap()["request_uri"]
        .as_str()
        .unwrap()
        .to_owned();
    let code = app.authorize("web", &request_uri).await;
    let res = app
        .post_form(
            "/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("client_id", "web"),
                ("client_secret", &secret),
                ("code_verifier", VERIFIER),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn a_confidential_client_gets_tokens_with_client_credentials() {
    let app = TestApp::spawn().await;
    let secret = app.add_confidential_client("svc", false).await;
    let res = app
        .http
        .post(app.url("/token"))
        .basic_auth("svc", Some(&secret))
        .form(&[("grant_type", "client_credentials"), ("scope", "read")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let tokens: Value = res.json().await.unwrap();
    assert!(tokens.get("refresh_token").is_none());
    let info = app
        .introspect(tokens["access_token"].as_str().unwrap())
        .await;
    assert_eq!(info["sub"], "svc");
    assert_eq!(info["scope"], "read");
}

#[tokio::test]
async fn client_credentials_is_refused_to_public_and_pushed_clients() {
    let app = TestApp::spawn().await;
    app.add_public_client("spa", &[REDIRECT]).await;
    for id in ["spa", URN] {
        let res = app
            .post_form(
                "/token",
                &[("grant_type", "client_credentials"), ("client_id", id)],
            )
            .await;
        assert_error(res, 400, "unauthorized_client").await;
    }
}

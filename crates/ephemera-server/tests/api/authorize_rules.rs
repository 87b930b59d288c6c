//! The authorization endpoint's rules: errors before the redirect URI is
//! trusted are pages, never redirects; request_uri lifetime and single use;
//! CSRF; page headers.

use crate::helpers::*;

#[tokio::test]
async fn a_pushed_client_that_skips_par_gets_an_error_page_not_a_redirect() {
    let app = TestApp::spawn().await;
    let mut url = url::Url::parse(&app.url("/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", URN)
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("state", "s")
        .append_pair("code_challenge", CHALLENGE)
        .append_pair("code_challenge_method", "S256");
    let res = app.http.get(url).send().await.unwrap();
    let html = assert_error_page(res, "invalid_request").await;
    assert!(html.contains("PAR"));
}

#[tokio::test]
async fn an_unknown_request_uri_gets_an_error_page() {
    let app = TestApp::spawn().await;
    let res = app
        .http
        .get(app.authorize_url(URN, "urn:ietf:params:oauth:request_uri:nothing"))
        .send()
        .await
        .unwrap();
    assert_error_page(res, "invalid_request").await;
}

#[tokio::test]
async fn a_request_uri_expires_after_sixty_seconds() {
    let app = TestApp::spawn().await;
    let request_uri = app.push_ok(Some(&registration()), &[]).await;
    app.advance(61);
    let res = app
        .http
        .get(app.authorize_url(URN, &request_uri))
        .send()
        .await
        .unwrap();
    let html = assert_error_page(res, "invalid_request").await;
    assert!(html.contains("expired"));
}

#[tokio::test]
async fn a_request_uri_has_one_deadline_however_often_its_page_is_reloaded() {
    let app = TestApp::spawn().await;
    let request_uri = app.push_ok(Some(&registration()), &[]).await;
    let browser = app.browser();
    let open = || async {
        browser
            .get(app.authorize_url(URN, &request_uri))
            .send()
            .await
            .unwrap()
    };
    // The first opening, 30 s in, starts the interaction window (600 s).
    app.advance(30);
    assert_eq!(open().await.status(), 200);
    // Reloads do not start it again, however many and however late.
    for _ in 0..5 {
        app.advance(100);
        assert_eq!(open().await.status(), 200);
    }
    app.advance(99);
    assert_eq!(open().await.status(), 200, "599 s after the first opening");
    app.advance(1);
    let html = assert_error_page(open().await, "invalid_request").await;
    assert!(html.contains("expired"));
}

#[tokio::test]
async fn a_request_uri_is_single_use_but_survives_page_reloads() {
    let app = TestApp::spawn().await;
    let request_uri = app.push_ok(Some(&registration()), &[]).await;
    let browser = app.browser();
    // Reloads of the login page do not consume it.
    for _ in 0..3 {
        let res = browser
            .get(app.authorize_url(URN, &request_uri))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    app.login(&browser, URN, &request_uri).await;
    app.consent_page(&browser, URN, &request_uri).await;
    app.decide(&browser, URN, &request_uri, "approve").await;
    // The response consumed it.
    let res = browser
        .get(app.authorize_url(URN, &request_uri))
        .send()
        .await
        .unwrap();
    assert_error_page(res, "invalid_request").await;
}

#[tokio::test]
async fn a_mismatched_client_id_at_the_authorization_endpoint_gets_an_error_page() {
    let app = TestApp::spawn().await;
    app.add_public_client("spa", &[REDIRECT]).await;
    let request_uri = app.push_ok(Some(&registration()), &[]).await;
    let res = app
        .http
        .get(app.authorize_url("spa", &request_uri))
        .send()
        .await
        .unwrap();
    let html = assert_error_page(res, "invalid_request").await;
    assert!(html.contains("client_id"));
    // The request is still there for its real client.
    let res = app
        .http
        .get(app.authorize_url(URN, &request_uri))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn a_missing_client_id_gets_an_error_page() {
    let app = TestApp::spawn().await;
    let res = app
        .http
        .get(app.url("/authorize?request_uri=x"))
        .send()
        .await
        .unwrap();
    assert_error_page(res, "invalid_request").await;
}

#[tokio::test]
async fn an_unregistered_redirect_uri_gets_an_error_page_not_a_redirect() {
    let app = TestApp::spawn().await;
    app.add_public_client("spa", &[REDIRECT]).await;
    let url = format!(
        "{}?client_id=spa&response_type=code&redirect_uri=https%3A%2F%2Fevil.example%2Fcb&code_challenge={CHALLENGE}&code_challenge_method=S256",
        app.url("/authorize")
    );
    let res = app.http.get(url).send().await.unwrap();
    assert_error_page(res, "invalid_request").await;
}

#[tokio::test]
async fn errors_after_the_redirect_uri_is_trusted_go_back_to_the_client() {
    let app = TestApp::spawn().await;
    app.add_public_client("spa", &[REDIRECT]).await;
    let url = format!(
        "{}?client_id=spa&response_type=code&redirect_uri={}&state=s9",
        app.url("/authorize"),
        urlencode(REDIRECT)
    );
    let res = app.http.get(url).send().await.unwrap();
    assert_eq!(res.status(), 302);
    let to = location(&res);
    assert!(to.as_str().starts_with(REDIRECT));
    assert_eq!(query(&to, "error").as_deref(), Some("invalid_request"));
    assert_eq!(query(&to, "state").as_deref(), Some("s9"));
    assert_eq!(query(&to, "iss").as_deref(), Some(app.base.as_str()));
    assert!(query(&to, "error_description")
        .unwrap()
        .contains("code_challenge"));
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn a_wrong_password_shows_the_login_page_again() {
    let app = TestApp::spawn().await;
    let request_uri = app.push_ok(Some(&registration()), &[]).await;
    let browser = app.browser();
    let html = browser
        .get(app.authorize_url(URN, &request_uri))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for (user, password) in [("alice", "wrong password"), ("nobody", PASSWORD)] {
        let res = browser
            .post(app.url("/authorize/login"))
            .form(&[
                ("client_id", URN),
                ("request_uri", request_uri.as_str()),
                ("csrf", &csrf(&html)),
                ("username", user),
                ("password", password),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401);
        let page = res.text().await.unwrap();
        assert!(page.contains("Wrong username or password"));
        assert!(page.contains("name=\"password\""));
    }
    assert_eq!(app.stats().await.sessions, 0);
}

#[tokio::test]
async fn forms_without_the_right_csrf_token_are_refused() {
    let app = TestApp::spawn().await;
    let request_uri = app.push_ok(Some(&registration()), &[]).await;
    let browser = app.browser();
    browser
        .get(app.authorize_url(URN, &request_uri))
        .send()
        .await
        .unwrap();
    let res = browser
        .post(app.url("/authorize/login"))
        .form(&[
            ("client_id", URN),
            ("request_uri", request_uri.as_str()),
            ("csrf", "forged"),
            ("username", "alice"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_error_page(res, "invalid_request").await;
    app.login(&browser, URN, &request_uri).await;
    let res = browser
        .post(app.url("/authorize/consent"))
        .form(&[
            ("client_id", URN),
            ("request_uri", request_uri.as_str()),
            ("decision", "approve"),
        ])
        .send()
        .await
        .unwrap();
    assert_error_page(res, "invalid_request").await;
    assert_eq!(app.stats().await.grants, 0);
}

#[tokio::test]
async fn the_pages_carry_security_headers_and_no_cors() {
    let app = TestApp::spawn().await;
    let request_uri = app.push_ok(Some(&registration()), &[]).await;
    let res = app
        .http
        .get(app.authorize_url(URN, &request_uri))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    let h = res.headers();
    assert!(h["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert!(h.get("access-control-allow-origin").is_none());
    let cookie = h["set-cookie"].to_str().unwrap();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"));
}

#[tokio::test]
async fn hostile_client_metadata_is_rendered_inert() {
    let app = TestApp::spawn().await;
    let reg = serde_json::json!({
        "client_name": "<script>alert(1)</script>\u{202E}evil",
        "redirect_uris": [REDIRECT],
        "client_uri": "https://x.example/\"><img src=x onerror=alert(1)>",
    })
    .to_string();
    let request_uri = app.push_ok(Some(&reg), &[]).await;
    let html = app
        .http
        .get(app.authorize_url(URN, &request_uri))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!html.contains("<script>alert"));
    assert!(!html.contains("<img"));
    assert!(!html.contains('\u{202E}'));
    assert!(html.contains("&#60;script&#62;"));
}

#[tokio::test]
async fn an_unknown_decision_is_refused_and_keeps_the_request() {
    let app = TestApp::spawn().await;
    let request_uri = app.push_ok(Some(&registration()), &[]).await;
    let browser = app.browser();
    app.login(&browser, URN, &request_uri).await;
    let html = app.consent_page(&browser, URN, &request_uri).await;
    let res = browser
        .post(app.url("/authorize/consent"))
        .form(&[
            ("client_id", URN),
            ("request_uri", request_uri.as_str()),
            ("csrf", &csrf(&html)),
            ("decision", "maybe"),
        ])
        .send()
        .await
        .unwrap();
    assert_error_page(res, "invalid_request").await;
    assert_eq!(app.stats().await.pending_pushed_requests, 1);
}

//! The whole Pushed Client Registration flow, through the HTML forms.

use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn a_pushed_client_runs_the_whole_flow_through_the_login_and_consent_forms() {
    let app = TestApp::spawn().await;
    let registration = registration();

    // Steps 1-2: PAR with the URN and the registration.
    let res = app
        .push(Some(&registration), &[("scope", "read")], &[])
        .await;
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["expires_in"], 60);
    let request_uri = body["request_uri"].as_str().unwrap();
    assert!(request_uri.starts_with("urn:ietf:params:oauth:request_uri:"));

    // Steps 3-4: only client_id and request_uri in the front channel.
    let browser = app.browser();
    app.login(&browser, URN, request_uri).await;
    let consent = app.consent_page(&browser, URN, request_uri).await;
    assert!(consent.contains("Test Agent"));
    assert!(consent.contains("not verified"));
    assert!(consent.contains("id=\"redirect-host\">127.0.0.1:9999<"));
    assert!(consent.contains("<li>read</li>"));
    let to = app.decide(&browser, URN, request_uri, "approve").await;
    assert_eq!(
        format!("{}://{}{}", to.scheme(), to.authority(), to.path()),
        REDIRECT
    );
    assert_eq!(query(&to, "state").as_deref(), Some("state-123"));
    assert_eq!(query(&to, "iss").as_deref(), Some(app.base.as_str()));
    let code = query(&to, "code").unwrap();

    // Steps 5-6: the token request.
    let res = app.redeem(&code, &[]).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let tokens: Value = res.json().await.unwrap();
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 3600);
    assert_eq!(tokens["scope"], "read");
    let access = tokens["access_token"].as_str().unwrap();
    assert!(tokens["refresh_token"].is_string());

    // Step 7: the resource server learns everything from introspection.
    let info = app.introspect(access).await;
    assert_eq!(info["active"], true);
    assert_eq!(info["client_id"], URN);
    assert_eq!(info["client_kind"], "pushed");
    assert_eq!(info["client_metadata"]["client_name"], "Test Agent");
    assert_eq!(info["client_metadata"]["software_id"], "test-agent");
    assert_eq!(info["scope"], "read");
    assert_eq!(info["username"], "alice");
    assert_eq!(info["iss"], app.base.as_str());
    assert_eq!(info["token_type"], "Bearer");
    assert!(info["sub"].is_string());
    assert!(info["grant_id"].is_string());
    assert!(info["exp"].as_i64().unwrap() > info["iat"].as_i64().unwrap());
}

#[tokio::test]
async fn two_pushed_clients_get_different_grant_ids_and_keep_their_own_metadata() {
    let app = TestApp::spawn().await;
    let other = registration().replace("Test Agent", "Other Agent");
    let a = app.pushed_tokens(Some(&registration())).await;
    let b = app.pushed_tokens(Some(&other)).await;
    let ia = app.introspect(a["access_token"].as_str().unwrap()).await;
    let ib = app.introspect(b["access_token"].as_str().unwrap()).await;
    assert_ne!(ia["grant_id"], ib["grant_id"]);
    assert_eq!(ia["client_metadata"]["client_name"], "Test Agent");
    assert_eq!(ib["client_metadata"]["client_name"], "Other Agent");
}

#[tokio::test]
async fn a_pushed_client_without_registration_uses_its_redirect_uri_alone() {
    let app = TestApp::spawn().await;
    let tokens = app.pushed_tokens(None).await;
    // RFC 7591 §2: grant_types defaults to authorization_code, so no refresh token.
    assert!(tokens.get("refresh_token").is_none());
    let info = app
        .introspect(tokens["access_token"].as_str().unwrap())
        .await;
    assert_eq!(info["client_id"], URN);
}

#[tokio::test]
async fn a_pushed_client_is_asked_for_consent_every_time() {
    let app = TestApp::spawn().await;
    let browser = app.browser();
    let first = app.push_ok(Some(&registration()), &[]).await;
    app.login(&browser, URN, &first).await;
    app.decide(&browser, URN, &first, "approve").await;
    let second = app.push_ok(Some(&registration()), &[]).await;
    let res = browser
        .get(app.authorize_url(URN, &second))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "a consent page, not a redirect");
    assert!(res.text().await.unwrap().contains("name=\"decision\""));
}

#[tokio::test]
async fn denying_consent_redirects_with_access_denied_and_issues_nothing() {
    let app = TestApp::spawn().await;
    let browser = app.browser();
    let request_uri = app.push_ok(Some(&registration()), &[]).await;
    app.login(&browser, URN, &request_uri).await;
    let to = app.decide(&browser, URN, &request_uri, "deny").await;
    assert_eq!(query(&to, "error").as_deref(), Some("access_denied"));
    assert_eq!(query(&to, "state").as_deref(), Some("state-123"));
    assert_eq!(query(&to, "iss").as_deref(), Some(app.base.as_str()));
    assert!(query(&to, "code").is_none());
    let stats = app.stats().await;
    assert_eq!((stats.grants, stats.pending_pushed_requests), (0, 0));
}

#[tokio::test]
async fn the_default_scope_applies_when_a_pushed_request_names_none() {
    let app = TestApp::spawn_with(|c| c.scopes.default = vec!["read".into()]).await;
    let tokens = app.pushed_tokens(Some(&registration())).await;
    assert_eq!(tokens["scope"], "read");
}

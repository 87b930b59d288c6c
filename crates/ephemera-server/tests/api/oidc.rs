//! OpenID Connect (Core 1.0, the code flow): ID Tokens verified against
//! `/jwks`, `nonce`, `auth_time` and `max_age`, `prompt`, `/userinfo`
//! (Bearer and DPoP), the two discovery documents, the audience of a pushed
//! client's ID Token, and refresh.

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{json, Value};

use crate::helpers::*;
use crate::keys::{random_id, TestKey};

const NONCE: &str = "n-0S6_WzA2Mj";

/// A pushed OpenID request with `extra` parameters; returns the request_uri.
async fn push_openid(app: &TestApp, extra: &[(&str, &str)]) -> String {
    let mut params = vec![("scope", "openid profile email read"), ("nonce", NONCE)];
    params.retain(|(k, _)| !extra.iter().any(|(e, _)| e == k));
    params.extend_from_slice(extra);
    app.push_ok(Some(&registration()), &params).await
}

/// The claims of `id_token`, after checking its signature against the
/// server's `/jwks`, its issuer and that `aud` holds `audience` (also for
/// `browser.rs`).
pub async fn verified(app: &TestApp, id_token: &str, audience: &str) -> Value {
    let header = jsonwebtoken::decode_header(id_token).unwrap();
    assert_eq!(header.alg, Algorithm::ES256);
    let kid = header.kid.expect("an ID Token names its key");
    let jwks: jsonwebtoken::jwk::JwkSet = app
        .http
        .get(app.url("/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jwk = jwks.find(&kid).expect("the signing key is published");
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_issuer(&[app.base.as_str()]);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "sub", "aud"]);
    jsonwebtoken::decode::<Value>(id_token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
        .unwrap()
        .claims
}

/// Login and consent for a pushed request, then the token response.
async fn pushed_flow(app: &TestApp, request_uri: &str) -> Value {
    let code = app.authorize(URN, request_uri).await;
    let res = app.redeem(&code, &[]).await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

async fn userinfo(app: &TestApp, authorization: &str) -> reqwest::Response {
    app.http
        .get(app.url("/userinfo"))
        .header("Authorization", authorization)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_openid_request_gets_a_signed_id_token_with_the_users_claims_by_scope() {
    let app = TestApp::spawn().await;
    let alice = alice_with_claims(&app).await;
    let login_at = app.now();

    let tokens = pushed_flow(&app, &push_openid(&app, &[]).await).await;

    assert_eq!(tokens["scope"], "email openid profile read");
    let id_token = tokens["id_token"].as_str().expect("an id_token");
    let claims = verified(&app, id_token, URN).await;
    assert_eq!(claims["iss"], app.base.as_str());
    assert_eq!(claims["sub"], alice.as_str());
    assert_eq!(claims["nonce"], NONCE);
    assert_eq!(claims["azp"], URN);
    assert_eq!(claims["amr"], json!(["pwd"]));
    assert!(claims["auth_time"].as_i64().unwrap() >= login_at);
    assert!(claims["exp"].as_i64().unwrap() > claims["iat"].as_i64().unwrap());
    assert_eq!(claims["name"], "Alice Liddell");
    assert_eq!(claims["given_name"], "Alice");
    assert_eq!(claims["preferred_username"], "alice");
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["email_verified"], true);
    // at_hash (Core §3.1.3.6): the left half of SHA-256 of the access token.
    use base64::Engine as _;
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(tokens["access_token"].as_str().unwrap().as_bytes());
    assert_eq!(
        claims["at_hash"],
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..16])
    );
}

#[tokio::test]
async fn without_the_openid_scope_there_is_no_id_token_and_scopes_release_only_their_claims() {
    let app = TestApp::spawn().await;
    alice_with_claims(&app).await;

    let plain = pushed_flow(&app, &app.push_ok(Some(&registration()), &[]).await).await;
    let email_only =
        pushed_flow(&app, &push_openid(&app, &[("scope", "openid email")]).await).await;

    assert!(plain.get("id_token").is_none(), "{plain}");
    let claims = verified(&app, email_only["id_token"].as_str().unwrap(), URN).await;
    assert_eq!(claims["email"], "alice@example.com");
    assert!(claims.get("name").is_none(), "{claims}");
    assert!(claims.get("preferred_username").is_none(), "{claims}");
}

#[tokio::test]
async fn a_pushed_clients_id_token_names_its_grant_beside_the_shared_client_id() {
    let app = TestApp::spawn().await;

    let first = pushed_flow(&app, &push_openid(&app, &[]).await).await;
    let second = pushed_flow(&app, &push_openid(&app, &[]).await).await;

    let a = verified(&app, first["id_token"].as_str().unwrap(), URN).await;
    let b = verified(&app, second["id_token"].as_str().unwrap(), URN).await;
    let grant_of = |tokens: &Value| {
        let token = tokens["access_token"].as_str().unwrap().to_owned();
        let app = &app;
        async move {
            app.introspect(&token).await["grant_id"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let (grant_a, grant_b) = (grant_of(&first).await, grant_of(&second).await);
    assert_eq!(
        a["aud"],
        json!([URN, format!("{}/grants/{grant_a}", app.base)])
    );
    assert_eq!(
        b["aud"],
        json!([URN, format!("{}/grants/{grant_b}", app.base)])
    );
    assert_ne!(a["aud"], b["aud"]);
    assert_eq!(a["azp"], URN);
}

#[tokio::test]
async fn a_pushed_client_asking_for_openid_must_send_a_nonce() {
    let app = TestApp::spawn().await;

    let res = app
        .push(Some(&registration()), &[("scope", "openid")], &[])
        .await;

    let description = assert_error(res, 400, "invalid_request").await;
    assert!(description.contains("nonce"), "{description}");
}

#[tokio::test]
async fn bad_prompt_and_max_age_values_are_refused_with_invalid_request() {
    let app = TestApp::spawn().await;
    for (name, value, says) in [
        ("prompt", "none login", "none"),
        ("prompt", "always", "always"),
        ("max_age", "-5", "max_age"),
        ("max_age", "soon", "max_age"),
    ] {
        let res = app
            .push(
                Some(&registration()),
                &[("scope", "openid"), ("nonce", NONCE), (name, value)],
                &[],
            )
            .await;
        let description = assert_error(res, 400, "invalid_request").await;
        assert!(description.contains(says), "{name}={value}: {description}");
    }
}

#[tokio::test]
async fn a_registered_clients_id_token_has_its_client_id_as_the_only_audience() {
    let app = TestApp::spawn().await;
    app.add_public_client("web", &[REDIRECT]).await;
    let browser = app.browser();

    let to = front_channel(&app, &browser, &[("scope", "openid"), ("nonce", NONCE)]).await;
    let code = query(&to, "code").unwrap();
    let tokens: Value = app
        .redeem(&code, &[("client_id", "web")])
        .await
        .json()
        .await
        .unwrap();

    let claims = verified(&app, tokens["id_token"].as_str().unwrap(), "web").await;
    assert_eq!(claims["aud"], "web");
    assert!(claims.get("azp").is_none(), "{claims}");
    assert_eq!(claims["nonce"], NONCE);
}

/// A front-channel request of the public client `web` by `browser`, logged
/// in on the way if the server asks, approved if it asks; the redirect back.
async fn front_channel(
    app: &TestApp,
    browser: &reqwest::Client,
    extra: &[(&str, &str)],
) -> url::Url {
    let mut url = url::Url::parse(&app.url("/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", "web")
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("state", "st")
        .append_pair("code_challenge", CHALLENGE)
        .append_pair("code_challenge_method", "S256")
        .extend_pairs(extra);
    let res = browser.get(url).send().await.unwrap();
    assert_eq!(res.status(), 302);
    let stored = location(&res);
    if stored.as_str().starts_with(REDIRECT) {
        return stored;
    }
    let request_uri = query(&stored, "request_uri").unwrap();
    let page = browser.get(stored.as_str()).send().await.unwrap();
    if page.status() == 302 {
        return location(&page);
    }
    let html = page.text().await.unwrap();
    if html.contains("name=\"username\"") {
        let res = browser
            .post(app.url("/authorize/login"))
            .form(&[
                ("client_id", "web"),
                ("request_uri", request_uri.as_str()),
                ("csrf", &csrf(&html)),
                ("username", "alice"),
                ("password", PASSWORD),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303, "login failed");
        let next = browser.get(location(&res).as_str()).send().await.unwrap();
        if next.status() == 302 {
            return location(&next);
        }
    }
    app.decide(browser, "web", &request_uri, "approve").await
}

#[tokio::test]
async fn prompt_none_without_a_session_is_login_required_at_the_redirect_uri() {
    let app = TestApp::spawn().await;
    let request_uri = push_openid(&app, &[("prompt", "none")]).await;

    let res = app
        .browser()
        .get(app.authorize_url(URN, &request_uri))
        .send()
        .await
        .unwrap();

    assert_eq!(res.status(), 302);
    let to = location(&res);
    assert!(to.as_str().starts_with(REDIRECT), "{to}");
    assert_eq!(query(&to, "error").as_deref(), Some("login_required"));
    assert_eq!(query(&to, "state").as_deref(), Some("state-123"));
    assert_eq!(query(&to, "iss").as_deref(), Some(app.base.as_str()));
    assert!(query(&to, "error_description").is_some());
    // The request is consumed.
    let again = app
        .browser()
        .get(app.authorize_url(URN, &request_uri))
        .send()
        .await
        .unwrap();
    assert_error_page(again, "invalid_request").await;
}

#[tokio::test]
async fn prompt_none_with_a_session_but_no_consent_is_consent_required() {
    let app = TestApp::spawn().await;
    let browser = app.browser();
    let first = push_openid(&app, &[]).await;
    app.login(&browser, URN, &first).await;
    let second = push_openid(&app, &[("prompt", "none")]).await;

    let res = browser
        .get(app.authorize_url(URN, &second))
        .send()
        .await
        .unwrap();

    assert_eq!(res.status(), 302);
    let to = location(&res);
    assert_eq!(query(&to, "error").as_deref(), Some("consent_required"));
}

#[tokio::test]
async fn prompt_none_with_remembered_consent_answers_with_a_code_and_no_page() {
    let app = TestApp::spawn().await;
    app.add_public_client("web", &[REDIRECT]).await;
    let browser = app.browser();
    front_channel(&app, &browser, &[("scope", "openid")]).await;

    let to = front_channel(&app, &browser, &[("scope", "openid"), ("prompt", "none")]).await;

    assert!(query(&to, "code").is_some(), "{to}");
}

#[tokio::test]
async fn prompt_consent_shows_the_consent_page_even_when_consent_is_remembered() {
    let app = TestApp::spawn().await;
    app.add_public_client("web", &[REDIRECT]).await;
    let browser = app.browser();
    front_channel(&app, &browser, &[("scope", "openid")]).await;

    let mut url = url::Url::parse(&app.url("/authorize")).unwrap();
    url.query_pairs_mut().extend_pairs([
        ("client_id", "web"),
        ("response_type", "code"),
        ("redirect_uri", REDIRECT),
        ("scope", "openid"),
        ("prompt", "consent"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ]);
    let stored = location(&browser.get(url).send().await.unwrap());
    let page = browser.get(stored.as_str()).send().await.unwrap();

    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("name=\"decision\""));
}

#[tokio::test]
async fn prompt_login_asks_a_signed_in_user_to_sign_in_again_and_auth_time_moves() {
    let app = TestApp::spawn().await;
    let browser = app.browser();
    let first = push_openid(&app, &[]).await;
    app.login(&browser, URN, &first).await;
    let first_login = app.now();
    app.advance(120);
    let request_uri = push_openid(&app, &[("prompt", "login")]).await;

    // The session is there, yet the login page is shown.
    app.login(&browser, URN, &request_uri).await;
    let to = app.decide(&browser, URN, &request_uri, "approve").await;
    let tokens: Value = app
        .redeem(&query(&to, "code").unwrap(), &[])
        .await
        .json()
        .await
        .unwrap();

    let claims = verified(&app, tokens["id_token"].as_str().unwrap(), URN).await;
    assert!(claims["auth_time"].as_i64().unwrap() >= first_login + 120);
}

#[tokio::test]
async fn a_session_older_than_max_age_signs_in_again_and_a_younger_one_does_not() {
    let app = TestApp::spawn().await;
    let browser = app.browser();
    let first = push_openid(&app, &[]).await;
    app.login(&browser, URN, &first).await;
    let signed_in = app.now();
    app.advance(600);

    // Younger than max_age: straight to consent, auth_time the first sign-in.
    let young = push_openid(&app, &[("max_age", "3600")]).await;
    let to = app.decide(&browser, URN, &young, "approve").await;
    let tokens: Value = app
        .redeem(&query(&to, "code").unwrap(), &[])
        .await
        .json()
        .await
        .unwrap();
    let claims = verified(&app, tokens["id_token"].as_str().unwrap(), URN).await;
    assert!((signed_in - 1..=signed_in + 1).contains(&claims["auth_time"].as_i64().unwrap()));

    // Older than max_age: the login page again.
    let old = push_openid(&app, &[("max_age", "60")]).await;
    app.login(&browser, URN, &old).await;
}

#[tokio::test]
async fn prompt_none_with_a_session_older_than_max_age_is_login_required() {
    let app = TestApp::spawn().await;
    let browser = app.browser();
    let first = push_openid(&app, &[]).await;
    app.login(&browser, URN, &first).await;
    app.advance(600);
    let request_uri = push_openid(&app, &[("prompt", "none"), ("max_age", "60")]).await;

    let res = browser
        .get(app.authorize_url(URN, &request_uri))
        .send()
        .await
        .unwrap();

    assert_eq!(
        query(&location(&res), "error").as_deref(),
        Some("login_required")
    );
}

#[tokio::test]
async fn userinfo_answers_the_claims_of_the_scope_for_a_bearer_token_by_get_and_post() {
    let app = TestApp::spawn().await;
    let alice = alice_with_claims(&app).await;
    let tokens = pushed_flow(&app, &push_openid(&app, &[("scope", "openid email")]).await).await;
    let bearer = format!("Bearer {}", tokens["access_token"].as_str().unwrap());

    let by_get = userinfo(&app, &bearer).await;
    let by_post = app
        .http
        .post(app.url("/userinfo"))
        .header("Authorization", &bearer)
        .send()
        .await
        .unwrap();

    assert_eq!(by_get.status(), 200);
    assert_eq!(by_get.headers()["cache-control"], "no-store");
    let claims: Value = by_get.json().await.unwrap();
    assert_eq!(
        claims,
        json!({"sub": alice, "email": "alice@example.com", "email_verified": true})
    );
    assert_eq!(by_post.status(), 200);
    assert_eq!(by_post.json::<Value>().await.unwrap(), claims);
}

#[tokio::test]
async fn userinfo_refuses_a_token_without_openid_with_403_insufficient_scope() {
    let app = TestApp::spawn().await;
    let tokens = app.pushed_tokens(Some(&registration())).await;

    let res = userinfo(
        &app,
        &format!("Bearer {}", tokens["access_token"].as_str().unwrap()),
    )
    .await;

    let challenge = res.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );
    assert!(challenge.contains("scope=\"openid\""), "{challenge}");
    assert_error(res, 403, "insufficient_scope").await;
}

#[tokio::test]
async fn userinfo_refuses_missing_unknown_and_expired_tokens_with_401_and_a_challenge() {
    let app = TestApp::spawn().await;
    let tokens = pushed_flow(&app, &push_openid(&app, &[]).await).await;

    let missing = app.http.get(app.url("/userinfo")).send().await.unwrap();
    assert_eq!(missing.status(), 401);
    // RFC 6750 §3.1: no credentials, no error code.
    assert_eq!(missing.headers()["www-authenticate"], "Bearer");

    let unknown = userinfo(&app, "Bearer not-a-token").await;
    let challenge = unknown.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert_error(unknown, 401, "invalid_token").await;

    let malformed = userinfo(&app, "Basic YTpi").await;
    assert_error(malformed, 400, "invalid_request").await;

    app.advance(app.config.policy.lifetimes.access_token + 1);
    let expired = userinfo(
        &app,
        &format!("Bearer {}", tokens["access_token"].as_str().unwrap()),
    )
    .await;
    assert_error(expired, 401, "invalid_token").await;
}

/// A pushed OpenID flow bound to `key` with DPoP; the token response.
async fn dpop_flow(app: &TestApp, key: &TestKey) -> Value {
    let res = app
        .http
        .post(app.url("/par"))
        .header("DPoP", key.proof(&app.url("/par"), app.now()))
        .form(&[
            ("client_id", URN),
            ("response_type", "code"),
            ("redirect_uri", REDIRECT),
            ("state", "s"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
            ("client_registration", &registration()),
            ("scope", "openid profile"),
            ("nonce", NONCE),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let request_uri: Value = res.json().await.unwrap();
    let code = app
        .authorize(URN, request_uri["request_uri"].as_str().unwrap())
        .await;
    let res = app
        .http
        .post(app.url("/token"))
        .header("DPoP", key.proof(&app.url("/token"), app.now()))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("client_id", URN),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// A DPoP proof for the UserInfo endpoint with `ath` for `token`.
fn userinfo_proof(app: &TestApp, key: &TestKey, method: &str, token: &str) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    let ath = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(token.as_bytes()));
    key.proof_with(json!({
        "jti": random_id(), "htm": method, "htu": app.url("/userinfo"),
        "iat": app.now(), "ath": ath,
    }))
}

#[tokio::test]
async fn userinfo_takes_a_dpop_bound_token_with_a_proof_by_its_key_and_nothing_less() {
    let app = TestApp::spawn().await;
    let key = TestKey::new();
    let tokens = dpop_flow(&app, &key).await;
    assert_eq!(tokens["token_type"], "DPoP");
    let token = tokens["access_token"].as_str().unwrap();

    let ok = app
        .http
        .get(app.url("/userinfo"))
        .header("Authorization", format!("DPoP {token}"))
        .header("DPoP", userinfo_proof(&app, &key, "GET", token))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(
        ok.json::<Value>().await.unwrap()["preferred_username"],
        "alice"
    );

    // As a bearer token (RFC 9449 §7.2).
    let as_bearer = userinfo(&app, &format!("Bearer {token}")).await;
    assert!(as_bearer.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("DPoP "));
    assert_error(as_bearer, 401, "invalid_token").await;

    // Without a proof, with another key's, with the wrong method.
    let no_proof = userinfo(&app, &format!("DPoP {token}")).await;
    assert_error(no_proof, 401, "invalid_dpop_proof").await;
    let other = TestKey::new();
    let wrong_key = app
        .http
        .get(app.url("/userinfo"))
        .header("Authorization", format!("DPoP {token}"))
        .header("DPoP", userinfo_proof(&app, &other, "GET", token))
        .send()
        .await
        .unwrap();
    let challenge = wrong_key.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.contains("error=\"invalid_dpop_proof\""),
        "{challenge}"
    );
    assert_error(wrong_key, 401, "invalid_dpop_proof").await;
    let wrong_method = app
        .http
        .get(app.url("/userinfo"))
        .header("Authorization", format!("DPoP {token}"))
        .header("DPoP", userinfo_proof(&app, &key, "POST", token))
        .send()
        .await
        .unwrap();
    assert_error(wrong_method, 401, "invalid_dpop_proof").await;
}

#[tokio::test]
async fn a_refresh_with_openid_gets_a_new_id_token_with_the_original_auth_time_and_no_nonce() {
    let app = TestApp::spawn().await;
    let tokens = pushed_flow(&app, &push_openid(&app, &[]).await).await;
    let first = verified(&app, tokens["id_token"].as_str().unwrap(), URN).await;
    app.advance(300);

    let res = app
        .post_form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
                ("client_id", URN),
            ],
        )
        .await;

    assert_eq!(res.status(), 200);
    let refreshed: Value = res.json().await.unwrap();
    let second = verified(&app, refreshed["id_token"].as_str().unwrap(), URN).await;
    assert_eq!(second["auth_time"], first["auth_time"]);
    assert_eq!(second["sub"], first["sub"]);
    assert_eq!(second["aud"], first["aud"]);
    assert!(second["iat"].as_i64().unwrap() >= first["iat"].as_i64().unwrap() + 300);
    assert!(second.get("nonce").is_none(), "{second}");
}

#[tokio::test]
async fn the_openid_configuration_states_the_same_facts_plus_the_openid_fields() {
    let app = TestApp::spawn().await;
    let get = |path: &'static str| {
        let app = &app;
        async move {
            let res = app.http.get(app.url(path)).send().await.unwrap();
            assert_eq!(res.status(), 200, "{path}");
            assert_eq!(res.headers()["access-control-allow-origin"], "*");
            res.json::<Value>().await.unwrap()
        }
    };
    let oauth = get("/.well-known/oauth-authorization-server").await;
    let openid = get("/.well-known/openid-configuration").await;

    for same in [
        "issuer",
        "authorization_endpoint",
        "token_endpoint",
        "jwks_uri",
        "pushed_authorization_request_endpoint",
        "userinfo_endpoint",
        "code_challenge_methods_supported",
        "response_types_supported",
    ] {
        assert_eq!(oauth[same], openid[same], "{same}");
    }
    assert_eq!(openid["userinfo_endpoint"], app.url("/userinfo"));
    assert_eq!(openid["subject_types_supported"], json!(["public"]));
    assert_eq!(
        openid["id_token_signing_alg_values_supported"],
        json!(["ES256"])
    );
    assert_eq!(openid["claims_parameter_supported"], false);
    assert_eq!(
        openid["prompt_values_supported"],
        json!(["none", "login", "consent", "select_account"])
    );
    for claim in ["sub", "auth_time", "nonce", "email", "name"] {
        assert!(
            openid["claims_supported"]
                .as_array()
                .unwrap()
                .contains(&json!(claim)),
            "{claim}"
        );
    }
    assert_eq!(
        openid["scopes_supported"],
        json!(["admin", "email", "openid", "profile", "read", "write"])
    );
    // The OAuth document lists the configured scopes only: MCP clients ask
    // for every scope it lists.
    assert_eq!(oauth["scopes_supported"], json!(["admin", "read", "write"]));
}

#[tokio::test]
async fn a_server_with_no_configuration_completes_an_openid_flow() {
    let app = TestApp::spawn_with(|c| {
        c.scopes.supported = Vec::new();
        c.scopes.pushed = None;
    })
    .await;
    let openid: Value = app
        .http
        .get(app.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        openid["scopes_supported"],
        json!(["email", "openid", "profile"])
    );

    let tokens = pushed_flow(
        &app,
        &push_openid(&app, &[("scope", "openid profile")]).await,
    )
    .await;

    assert_eq!(tokens["scope"], "openid profile");
    verified(&app, tokens["id_token"].as_str().unwrap(), URN).await;
}

#[tokio::test]
async fn the_consent_page_says_what_each_identity_scope_releases() {
    let app = TestApp::spawn().await;
    let browser = app.browser();
    let request_uri = push_openid(&app, &[]).await;
    app.login(&browser, URN, &request_uri).await;

    let html = app.consent_page(&browser, URN, &request_uri).await;

    for (scope, meaning) in [
        ("openid", "sign you in: your account identifier"),
        ("profile", "your name and profile details"),
        ("email", "your email address"),
    ] {
        assert!(
            html.contains(&format!(
                "<li>{scope} <span class=\"muted\">({meaning})</span></li>"
            )),
            "{scope}: {html}"
        );
    }
    // A scope of the operator's own is shown by its name alone.
    assert!(html.contains("<li>read</li>"), "{html}");
}

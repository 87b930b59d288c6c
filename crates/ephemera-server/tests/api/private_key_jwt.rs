//! private_key_jwt with pushed keys (RFC 7523): the keys a pushed client
//! registers at PAR must sign that PAR and every later request of its grant.

use serde_json::{json, Value};

use crate::helpers::*;
use crate::keys::{random_id, TestKey};
use ephemera_proto::assertion::JWT_BEARER_ASSERTION;

fn keyed_registration(key: &TestKey) -> String {
    json!({
        "client_name": "Keyed Agent",
        "redirect_uris": [REDIRECT],
        "grant_types": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": key.jwks(),
    })
    .to_string()
}

async fn push_keyed(app: &TestApp, key: &TestKey, assertion: Option<String>) -> reqwest::Response {
    let registration = keyed_registration(key);
    let mut extra = vec![];
    let assertion = assertion.unwrap_or_default();
    if !assertion.is_empty() {
        extra.push(("client_assertion_type", JWT_BEARER_ASSERTION));
        extra.push(("client_assertion", assertion.as_str()));
    }
    app.push(Some(&registration), &extra, &[]).await
}

async fn keyed_code(app: &TestApp, key: &TestKey) -> String {
    let res = push_keyed(app, key, Some(key.assertion(URN, &app.base, app.now()))).await;
    assert_eq!(res.status(), 201, "{:?}", res.text().await);
    let request_uri = res.json::<Value>().await.unwrap()["request_uri"]
        .as_str()
        .unwrap()
        .to_owned();
    app.authorize(URN, &request_uri).await
}

async fn redeem_signed(app: &TestApp, code: &str, assertion: &str) -> reqwest::Response {
    app.redeem(
        code,
        &[
            ("client_assertion_type", JWT_BEARER_ASSERTION),
            ("client_assertion", assertion),
        ],
    )
    .await
}

#[tokio::test]
async fn a_pushed_client_with_its_own_keys_runs_the_whole_flow_signing_every_request() {
    let app = TestApp::spawn().await;
    let key = TestKey::new();
    let code = keyed_code(&app, &key).await;
    let res = redeem_signed(&app, &code, &key.assertion(URN, &app.base, app.now())).await;
    assert_eq!(res.status(), 200);
    let tokens: Value = res.json().await.unwrap();
    let info = app
        .introspect(tokens["access_token"].as_str().unwrap())
        .await;
    assert_eq!(
        info["client_metadata"]["token_endpoint_auth_method"],
        "private_key_jwt"
    );
    assert_eq!(
        info["client_metadata"]["jwks"]["keys"][0]["kid"],
        key.jkt.as_str()
    );

    let rt = tokens["refresh_token"].as_str().unwrap();
    let refresh = |assertion: String| {
        let app = &app;
        async move {
            app.post_form(
                "/token",
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", rt),
                    ("client_id", URN),
                    ("client_assertion_type", JWT_BEARER_ASSERTION),
                    ("client_assertion", &assertion),
                ],
            )
            .await
        }
    };
    let other = TestKey::new();
    assert_error(
        refresh(other.assertion(URN, &app.base, app.now())).await,
        401,
        "invalid_client",
    )
    .await;
    let res = refresh(key.assertion(URN, &app.base, app.now())).await;
    assert_eq!(res.status(), 200);
    let refreshed: Value = res.json().await.unwrap();

    // Revocation is signed too.
    let revoke = |assertion: Option<String>| {
        let app = &app;
        let token = refreshed["refresh_token"].as_str().unwrap().to_owned();
        async move {
            let mut params = vec![("token", token), ("client_id", URN.to_owned())];
            if let Some(a) = assertion {
                params.push(("client_assertion_type", JWT_BEARER_ASSERTION.to_owned()));
                params.push(("client_assertion", a));
            }
            app.http
                .post(app.url("/revoke"))
                .form(&params)
                .send()
                .await
                .unwrap()
        }
    };
    assert_error(revoke(None).await, 401, "invalid_client").await;
    assert_eq!(
        revoke(Some(key.assertion(URN, &app.base, app.now())))
            .await
            .status(),
        200
    );
    assert_eq!(app.stats().await.pushed_client_grants, 0);
}

#[tokio::test]
async fn par_with_pushed_keys_needs_an_assertion_signed_by_them() {
    let app = TestApp::spawn().await;
    let key = TestKey::new();
    assert_error(push_keyed(&app, &key, None).await, 401, "invalid_client").await;
    let other = TestKey::new();
    let d = assert_error(
        push_keyed(&app, &key, Some(other.assertion(URN, &app.base, app.now()))).await,
        401,
        "invalid_client",
    )
    .await;
    assert!(d.contains("key"));
    assert_eq!(app.stats().await.pending_pushed_requests, 0);
}

#[tokio::test]
async fn a_token_request_without_the_assertion_or_with_another_key_is_refused() {
    let app = TestApp::spawn().await;
    let key = TestKey::new();
    let code = keyed_code(&app, &key).await;
    assert_error(app.redeem(&code, &[]).await, 401, "invalid_client").await;
    let other = TestKey::new().assertion(URN, &app.base, app.now());
    assert_error(
        redeem_signed(&app, &code, &other).await,
        401,
        "invalid_client",
    )
    .await;
    // The code survives refused attempts.
    let res = redeem_signed(&app, &code, &key.assertion(URN, &app.base, app.now())).await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn a_replayed_assertion_is_refused() {
    let app = TestApp::spawn().await;
    let key = TestKey::new();
    let assertion = key.assertion(URN, &app.base, app.now());
    assert_eq!(
        push_keyed(&app, &key, Some(assertion.clone()))
            .await
            .status(),
        201
    );
    let d = assert_error(
        push_keyed(&app, &key, Some(assertion)).await,
        401,
        "invalid_client",
    )
    .await;
    assert!(d.contains("jti"));
}

#[tokio::test]
async fn assertions_with_bad_claims_are_refused() {
    let app = TestApp::spawn().await;
    let key = TestKey::new();
    let now = app.now();
    let base = |overrides: Value| {
        let mut claims = json!({"iss": URN, "sub": URN, "aud": app.base, "exp": now + 60, "iat": now, "jti": random_id()});
        for (k, v) in overrides.as_object().unwrap() {
            if v.is_null() {
                claims.as_object_mut().unwrap().remove(k);
            } else {
                claims[k] = v.clone();
            }
        }
        key.assertion_with(claims)
    };
    for (what, overrides) in [
        ("aud", json!({"aud": "https://elsewhere.example"})),
        ("iss", json!({"iss": "someone-else"})),
        ("sub", json!({"sub": "someone-else"})),
        ("exp", json!({"exp": now + 3600})),
        ("expired", json!({"exp": now - 60})),
        ("exp", json!({"exp": null})),
        ("jti", json!({"jti": null})),
        ("future", json!({"iat": now + 600})),
        ("too old", json!({"iat": now - 3600})),
    ] {
        let res = push_keyed(&app, &key, Some(base(overrides))).await;
        let d = assert_error(res, 401, "invalid_client").await;
        assert!(
            d.contains(what) || (what == "future" && d.contains("iat")),
            "{what}: {d}"
        );
    }
}

#[tokio::test]
async fn the_assertion_type_must_be_jwt_bearer() {
    let app = TestApp::spawn().await;
    let key = TestKey::new();
    let registration = keyed_registration(&key);
    let assertion = key.assertion(URN, &app.base, app.now());
    let res = app
        .push(
            Some(&registration),
            &[
                ("client_assertion_type", "urn:example:other"),
                ("client_assertion", &assertion),
            ],
            &[],
        )
        .await;
    assert_error(res, 401, "invalid_client").await;
    let res = app
        .push(
            Some(&registration),
            &[("client_assertion", &assertion)],
            &[],
        )
        .await;
    assert_error(res, 400, "invalid_request").await;
}

#[tokio::test]
async fn a_pushed_client_without_keys_cannot_start_signing_later() {
    let app = TestApp::spawn().await;
    let request_uri = app.push_ok(Some(&registration()), &[]).await;
    let code = app.authorize(URN, &request_uri).await;
    let key = TestKey::new();
    let res = redeem_signed(&app, &code, &key.assertion(URN, &app.base, app.now())).await;
    let d = assert_error(res, 401, "invalid_client").await;
    assert!(d.contains("cannot be added"));
}

#[tokio::test]
async fn pushed_keys_must_be_public_and_complete() {
    let app = TestApp::spawn().await;
    let key = TestKey::new();
    let mut private = key.jwks();
    private["keys"][0]["d"] = json!("AAAA");
    for reg in [
        json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "private_key_jwt", "jwks": private}),
        json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "private_key_jwt"}),
        json!({"redirect_uris": [REDIRECT], "jwks": key.jwks()}),
        json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": []}}),
    ] {
        let res = app.push(Some(&reg.to_string()), &[], &[]).await;
        assert_error(res, 400, "invalid_client_metadata").await;
    }
}

#[tokio::test]
async fn a_registered_client_authenticates_with_private_key_jwt() {
    let app = TestApp::spawn().await;
    let key = TestKey::new();
    app.add_client(ephemera_server::service::admin::NewClient {
        client_id: "svc".into(),
        jwks: Some(key.jwks()),
        ..Default::default()
    })
    .await;
    let token = |assertion: String| {
        let app = &app;
        async move {
            app.post_form(
                "/token",
                &[
                    ("grant_type", "client_credentials"),
                    ("client_assertion_type", JWT_BEARER_ASSERTION),
                    ("client_assertion", &assertion),
                ],
            )
            .await
        }
    };
    let res = token(key.assertion("svc", &app.base, app.now())).await;
    assert_eq!(res.status(), 200);
    let res = token(TestKey::new().assertion("svc", &app.base, app.now())).await;
    assert_error(res, 401, "invalid_client").await;
    let res = app
        .post_form(
            "/token",
            &[("grant_type", "client_credentials"), ("client_id", "svc")],
        )
        .await;
    assert_error(res, 401, "invalid_client").await;
}

#[tokio::test]
async fn an_assertion_audience_must_be_the_issuer_alone() {
    let app = TestApp::spawn().await;
    let key = TestKey::new();
    let now = app.now();
    let with_aud = |aud: Value| {
        key.assertion_with(json!({
            "iss": URN, "sub": URN, "aud": aud,
            "exp": now + 60, "iat": now, "jti": random_id(),
        }))
    };
    // draft-ietf-oauth-rfc7523bis §4: the issuer identifier as the sole value.
    for refused in [
        json!([app.base, "https://elsewhere.example"]),
        json!(["https://elsewhere.example", app.base]),
        json!([app.base, app.url("/token")]),
        json!(app.url("/token")),
        json!(app.url("/par")),
        json!([]),
        json!(format!("{}/", app.base)),
    ] {
        let res = push_keyed(&app, &key, Some(with_aud(refused.clone()))).await;
        let d = assert_error(res, 401, "invalid_client").await;
        assert!(d.contains("aud") && d.contains(&app.base), "{refused}: {d}");
    }
    assert_eq!(app.stats().await.pending_pushed_requests, 0);
    for accepted in [json!(app.base), json!([app.base])] {
        let res = push_keyed(&app, &key, Some(with_aud(accepted.clone()))).await;
        assert_eq!(res.status(), 201, "{accepted}: {:?}", res.text().await);
    }
}

#[tokio::test]
async fn an_assertion_issued_up_to_ten_seconds_ahead_is_accepted_and_beyond_is_refused() {
    // The default leeway is 5 s; FAPI 2.0 requires accepting 0 to 10 s of skew.
    let app = TestApp::spawn().await;
    let key = TestKey::new();
    let issued_at = |iat: i64| {
        key.assertion_with(json!({
            "iss": URN, "sub": URN, "aud": app.base,
            "exp": iat + 60, "iat": iat, "nbf": iat, "jti": random_id(),
        }))
    };
    let now = app.now();
    let res = push_keyed(&app, &key, Some(issued_at(now + 9))).await;
    assert_eq!(res.status(), 201, "{:?}", res.text().await);
    let res = push_keyed(&app, &key, Some(issued_at(now + 30))).await;
    let d = assert_error(res, 401, "invalid_client").await;
    assert!(d.contains("future"), "{d}");
}

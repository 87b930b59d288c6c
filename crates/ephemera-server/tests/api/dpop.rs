//! DPoP (RFC 9449): a key bound at PAR must be proven at every later step,
//! and nothing about the binding can change after PAR.

use serde_json::{json, Value};

use crate::helpers::*;
use crate::keys::{alg_none_proof, random_id, TestKey};

/// PAR with a DPoP proof by `key`; returns the request_uri.
async fn push_bound(app: &TestApp, key: &TestKey) -> String {
    let proof = key.proof(&app.url("/par"), app.now());
    let res = app
        .http
        .post(app.url("/par"))
        .header("DPoP", proof)
        .form(&par_params())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "{:?}", res.text().await);
    res.json::<Value>().await.unwrap()["request_uri"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn par_params() -> Vec<(&'static str, String)> {
    vec![
        ("client_id", URN.into()),
        ("response_type", "code".into()),
        ("redirect_uri", REDIRECT.into()),
        ("state", "s".into()),
        ("code_challenge", CHALLENGE.into()),
        ("code_challenge_method", "S256".into()),
        ("client_registration", registration()),
    ]
}

/// The token request for `code` with an optional DPoP proof.
async fn redeem_with(app: &TestApp, code: &str, proof: Option<String>) -> reqwest::Response {
    let mut req = app.http.post(app.url("/token")).form(&[
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
        ("client_id", URN),
    ]);
    if let Some(p) = proof {
        req = req.header("DPoP", p);
    }
    req.send().await.unwrap()
}

async fn refresh_with(
    app: &TestApp,
    refresh_token: &str,
    proof: Option<String>,
) -> reqwest::Response {
    let mut req = app.http.post(app.url("/token")).form(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
        ("client_id", URN),
    ]);
    if let Some(p) = proof {
        req = req.header("DPoP", p);
    }
    req.send().await.unwrap()
}

async fn bound_code(app: &TestApp, key: &TestKey) -> String {
    let request_uri = push_bound(app, key).await;
    app.authorize(URN, &request_uri).await
}

#[tokio::test]
async fn a_dpop_bound_pushed_flow_issues_dpop_tokens_and_refreshes_with_the_same_key() {
    let app = TestApp::spawn().await;
    let key = TestKey::new();
    let code = bound_code(&app, &key).await;
    let res = redeem_with(&app, &code, Some(key.proof(&app.url("/token"), app.now()))).await;
    assert_eq!(res.status(), 200);
    let tokens: Value = res.json().await.unwrap();
    assert_eq!(tokens["token_type"], "DPoP");
    let info = app
        .introspect(tokens["access_token"].as_str().unwrap())
        .await;
    assert_eq!(info["token_type"], "DPoP");
    assert_eq!(info["cnf"]["jkt"], key.jkt.as_str());

    let rt = tokens["refresh_token"].as_str().unwrap();
    let res = refresh_with(&app, rt, Some(key.proof(&app.url("/token"), app.now()))).await;
    assert_eq!(res.status(), 200);
    let refreshed: Value = res.json().await.unwrap();
    assert_eq!(refreshed["token_type"], "DPoP");
    // The public client's refresh token is bound too.
    let info = app
        .introspect(refreshed["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(info["cnf"]["jkt"], key.jkt.as_str());
}

#[tokio::test]
async fn a_token_request_without_the_proof_is_refused() {
    let app = TestApp::spawn().await;
    let key = TestKey::new();
    let code = bound_code(&app, &key).await;
    let d = assert_error(
        redeem_with(&app, &code, None).await,
        400,
        "invalid_dpop_proof",
    )
    .await;
    assert!(d.contains("bound"));
}

#[tokio::test]
async fn a_proof_by_another_key_is_refused_at_the_token_endpoint() {
    let app = TestApp::spawn().await;
    let code = bound_code(&app, &TestKey::new()).await;
    let other = TestKey::new().proof(&app.url("/token"), app.now());
    assert_error(
        redeem_with(&app, &code, Some(other)).await,
        400,
        "invalid_dpop_proof",
    )
    .await;
}

#[tokio::test]
async fn a_refresh_without_proof_or_with_another_key_is_refused() {
    let app = TestApp::spawn().await;
    let key = TestKey::new();
    let code = bound_code(&app, &key).await;
    let tokens: Value = redeem_with(&app, &code, Some(key.proof(&app.url("/token"), app.now())))
        .await
        .json()
        .await
        .unwrap();
    let rt = tokens["refresh_token"].as_str().unwrap();
    assert_error(
        refresh_with(&app, rt, None).await,
        400,
        "invalid_dpop_proof",
    )
    .await;
    let other = TestKey::new().proof(&app.url("/token"), app.now());
    assert_error(
        refresh_with(&app, rt, Some(other)).await,
        400,
        "invalid_dpop_proof",
    )
    .await;
    // Still usable by its key: the refused requests did not burn it.
    let res = refresh_with(&app, rt, Some(key.proof(&app.url("/token"), app.now()))).await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn a_replayed_proof_is_refused() {
    let app = TestApp::spawn().await;
    let key = TestKey::new();
    let proof = key.proof(&app.url("/par"), app.now());
    let send = || {
        app.http
            .post(app.url("/par"))
            .header("DPoP", proof.clone())
            .form(&par_params())
            .send()
    };
    assert_eq!(send().await.unwrap().status(), 201);
    let d = assert_error(send().await.unwrap(), 400, "invalid_dpop_proof").await;
    assert!(d.contains("jti"));
}

#[tokio::test]
async fn proofs_with_wrong_htm_htu_or_iat_are_refused() {
    let app = TestApp::spawn().await;
    let key = TestKey::new();
    let now = app.now();
    let par = app.url("/par");
    let cases = [
        (
            "htm",
            json!({"jti": random_id(), "htm": "GET", "htu": par, "iat": now}),
        ),
        (
            "htu",
            json!({"jti": random_id(), "htm": "POST", "htu": app.url("/token"), "iat": now}),
        ),
        (
            "iat",
            json!({"jti": random_id(), "htm": "POST", "htu": par, "iat": now - 3600}),
        ),
        (
            "iat",
            json!({"jti": random_id(), "htm": "POST", "htu": par, "iat": now + 3600}),
        ),
        ("jti", json!({"htm": "POST", "htu": par, "iat": now})),
    ];
    for (what, claims) in cases {
        let res = app
            .http
            .post(&par)
            .header("DPoP", key.proof_with(claims))
            .form(&par_params())
            .send()
            .await
            .unwrap();
        let d = assert_error(res, 400, "invalid_dpop_proof").await;
        assert!(d.contains(what), "{what}: {d}");
    }
    assert_eq!(app.stats().await.pending_pushed_requests, 0);
}

#[tokio::test]
async fn a_query_in_htu_is_ignored() {
    let app = TestApp::spawn().await;
    let key = TestKey::new();
    let claims = json!({"jti": random_id(), "htm": "POST", "htu": format!("{}?x=1", app.url("/par")), "iat": app.now()});
    let res = app
        .http
        .post(app.url("/par"))
        .header("DPoP", key.proof_with(claims))
        .form(&par_params())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
}

#[tokio::test]
async fn unsigned_proofs_private_keys_and_wrong_types_are_refused() {
    let app = TestApp::spawn().await;
    let key = TestKey::new();
    let par = app.url("/par");
    let now = app.now();
    let mut private = key.jwk.clone();
    private["d"] = json!("AAAA");
    // The raw signer works: the same proof with the public key is accepted.
    let control = key.sign_raw(
        &json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": key.jwk}),
        &json!({"jti": random_id(), "htm": "POST", "htu": par, "iat": now}),
    );
    let res = app
        .http
        .post(&par)
        .header("DPoP", control)
        .form(&par_params())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let cases = vec![
        alg_none_proof(&key.jwk, &par, now),
        key.sign_raw(
            &json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": private}),
            &json!({"jti": random_id(), "htm": "POST", "htu": par, "iat": now}),
        ),
        key.sign(
            json!({"typ": "JWT", "jwk": key.jwk}),
            &json!({"jti": random_id(), "htm": "POST", "htu": par, "iat": now}),
        ),
        key.sign(
            json!({"typ": "dpop+jwt"}),
            &json!({"jti": random_id(), "htm": "POST", "htu": par, "iat": now}),
        ),
        "not-a-jwt".to_owned(),
    ];
    for proof in cases {
        let res = app
            .http
            .post(&par)
            .header("DPoP", proof)
            .form(&par_params())
            .send()
            .await
            .unwrap();
        assert_error(res, 400, "invalid_dpop_proof").await;
    }
}

#[tokio::test]
async fn two_dpop_headers_are_refused() {
    let app = TestApp::spawn().await;
    let key = TestKey::new();
    let res = app
        .http
        .post(app.url("/par"))
        .header("DPoP", key.proof(&app.url("/par"), app.now()))
        .header("DPoP", key.proof(&app.url("/par"), app.now()))
        .form(&par_params())
        .send()
        .await
        .unwrap();
    assert_error(res, 400, "invalid_dpop_proof").await;
}

#[tokio::test]
async fn a_binding_cannot_be_added_after_par() {
    let app = TestApp::spawn().await;
    let request_uri = app.push_ok(Some(&registration()), &[]).await;
    let code = app.authorize(URN, &request_uri).await;
    let proof = TestKey::new().proof(&app.url("/token"), app.now());
    let d = assert_error(
        redeem_with(&app, &code, Some(proof)).await,
        400,
        "invalid_dpop_proof",
    )
    .await;
    assert!(d.contains("cannot be added"));
}

#[tokio::test]
async fn a_binding_cannot_be_added_at_refresh() {
    let app = TestApp::spawn().await;
    let tokens = app.pushed_tokens(Some(&registration())).await;
    let proof = TestKey::new().proof(&app.url("/token"), app.now());
    let res = refresh_with(&app, tokens["refresh_token"].as_str().unwrap(), Some(proof)).await;
    assert_error(res, 400, "invalid_dpop_proof").await;
}

#[tokio::test]
async fn dpop_jkt_at_par_binds_the_grant() {
    let app = TestApp::spawn().await;
    let key = TestKey::new();
    let request_uri = app
        .push_ok(Some(&registration()), &[("dpop_jkt", &key.jkt)])
        .await;
    let code = app.authorize(URN, &request_uri).await;
    assert_error(
        redeem_with(&app, &code, None).await,
        400,
        "invalid_dpop_proof",
    )
    .await;
    let res = redeem_with(&app, &code, Some(key.proof(&app.url("/token"), app.now()))).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["token_type"], "DPoP");
}

#[tokio::test]
async fn dpop_jkt_that_does_not_match_the_proof_is_refused() {
    let app = TestApp::spawn().await;
    let key = TestKey::new();
    let other = TestKey::new();
    let mut params = par_params();
    params.push(("dpop_jkt", other.jkt.clone()));
    let res = app
        .http
        .post(app.url("/par"))
        .header("DPoP", key.proof(&app.url("/par"), app.now()))
        .form(&params)
        .send()
        .await
        .unwrap();
    assert_error(res, 400, "invalid_dpop_proof").await;
    let res = app
        .push(Some(&registration()), &[("dpop_jkt", "short")], &[])
        .await;
    assert_error(res, 400, "invalid_request").await;
}

#[tokio::test]
async fn the_server_nonce_is_required_when_configured() {
    let app = TestApp::spawn_with(|c| c.proofs.dpop_require_nonce = true).await;
    let key = TestKey::new();
    let res = app
        .http
        .post(app.url("/par"))
        .header("DPoP", key.proof(&app.url("/par"), app.now()))
        .form(&par_params())
        .send()
        .await
        .unwrap();
    let nonce = res.headers()["dpop-nonce"].to_str().unwrap().to_owned();
    assert_error(res, 400, "use_dpop_nonce").await;
    let claims = json!({"jti": random_id(), "htm": "POST", "htu": app.url("/par"), "iat": app.now(), "nonce": nonce});
    let res = app
        .http
        .post(app.url("/par"))
        .header("DPoP", key.proof_with(claims))
        .form(&par_params())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
}

#[tokio::test]
async fn a_registration_asking_for_dpop_bound_tokens_needs_a_proof() {
    let app = TestApp::spawn().await;
    let reg = json!({"redirect_uris": [REDIRECT], "dpop_bound_access_tokens": true}).to_string();
    let res = app.push(Some(&reg), &[], &[]).await;
    assert_error(res, 400, "invalid_request").await;
}

#[tokio::test]
async fn the_policy_can_require_a_binding_for_pushed_clients() {
    let app = TestApp::spawn_with(|c| c.pushed_clients.require_sender_constraint = true).await;
    let res = app.push(Some(&registration()), &[], &[]).await;
    let d = assert_error(res, 400, "invalid_request").await;
    assert!(d.contains("DPoP"));
    push_bound(&app, &TestKey::new()).await;
}

#[tokio::test]
async fn a_registered_client_may_bind_at_the_token_endpoint() {
    let app = TestApp::spawn().await;
    app.add_public_client("spa", &[REDIRECT]).await;
    let res = app
        .post_form(
            "/par",
            &[
                ("client_id", "spa"),
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
    let code = app.authorize("spa", &request_uri).await;
    let key = TestKey::new();
    let res = app
        .http
        .post(app.url("/token"))
        .header("DPoP", key.proof(&app.url("/token"), app.now()))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("client_id", "spa"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let tokens: Value = res.json().await.unwrap();
    assert_eq!(tokens["token_type"], "DPoP");
    let info = app
        .introspect(tokens["access_token"].as_str().unwrap())
        .await;
    assert_eq!(info["cnf"]["jkt"], key.jkt.as_str());
}

#[tokio::test]
async fn metadata_advertises_the_dpop_algorithms() {
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
    let algs = m["dpop_signing_alg_values_supported"].as_array().unwrap();
    assert!(algs.contains(&json!("ES256")) && algs.contains(&json!("EdDSA")));
    assert!(!algs.contains(&json!("none")) && !algs.contains(&json!("HS256")));
    assert!(m["token_endpoint_auth_methods_supported"]
        .as_array()
        .unwrap()
        .contains(&json!("private_key_jwt")));
}

#[tokio::test]
async fn a_proof_issued_up_to_ten_seconds_ahead_is_accepted() {
    // The default leeway is 5 s; FAPI 2.0 requires accepting 0 to 10 s of skew.
    let app = TestApp::spawn().await;
    let key = TestKey::new();
    let par = app.url("/par");
    let ahead = |seconds: i64| {
        key.proof_with(
            json!({"jti": random_id(), "htm": "POST", "htu": par, "iat": app.now() + seconds}),
        )
    };
    let send = |proof: String| {
        let app = &app;
        async move {
            app.http
                .post(app.url("/par"))
                .header("DPoP", proof)
                .form(&par_params())
                .send()
                .await
                .unwrap()
        }
    };
    let res = send(ahead(9)).await;
    assert_eq!(res.status(), 201, "{:?}", res.text().await);
    let d = assert_error(send(ahead(20)).await, 400, "invalid_dpop_proof").await;
    assert!(d.contains("iat"), "{d}");
}

/// Revokes `token` as the pushed client, with a DPoP proof if given.
async fn revoke_with(app: &TestApp, token: &str, proof: Option<String>) -> reqwest::Response {
    let mut req = app
        .http
        .post(app.url("/revoke"))
        .form(&[("token", token), ("client_id", URN)]);
    if let Some(p) = proof {
        req = req.header("DPoP", p);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn a_dpop_bound_pushed_grant_is_revoked_only_with_a_proof_by_its_key() {
    let app = TestApp::spawn().await;
    let key = TestKey::new();
    let code = bound_code(&app, &key).await;
    let res = redeem_with(&app, &code, Some(key.proof(&app.url("/token"), app.now()))).await;
    let tokens: Value = res.json().await.unwrap();
    let rt = tokens["refresh_token"].as_str().unwrap();

    // The URN is everyone's client_id: naming it proves nothing.
    let d = assert_error(revoke_with(&app, rt, None).await, 400, "invalid_dpop_proof").await;
    assert!(d.contains("DPoP"), "{d}");
    let other = TestKey::new().proof(&app.url("/revoke"), app.now());
    assert_error(
        revoke_with(&app, rt, Some(other)).await,
        400,
        "invalid_dpop_proof",
    )
    .await;
    // A proof made for another endpoint is not one for revocation.
    let elsewhere = key.proof(&app.url("/token"), app.now());
    assert_error(
        revoke_with(&app, rt, Some(elsewhere)).await,
        400,
        "invalid_dpop_proof",
    )
    .await;
    assert_eq!(app.introspect(rt).await["active"], true);
    assert_eq!(app.stats().await.pushed_client_grants, 1);

    let proof = key.proof(&app.url("/revoke"), app.now());
    assert_eq!(revoke_with(&app, rt, Some(proof)).await.status(), 200);
    assert_eq!(app.introspect(rt).await["active"], false);
    assert_eq!(app.stats().await.pushed_client_grants, 0);
}

#[tokio::test]
async fn an_unbound_pushed_grant_stays_revocable_by_its_token_alone() {
    let app = TestApp::spawn().await;
    let tokens = app.pushed_tokens(Some(&registration())).await;
    let rt = tokens["refresh_token"].as_str().unwrap();
    assert_eq!(revoke_with(&app, rt, None).await.status(), 200);
    assert_eq!(app.stats().await.pushed_client_grants, 0);
}

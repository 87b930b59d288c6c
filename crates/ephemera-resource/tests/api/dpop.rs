use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{json, Value};
use url::Url;

use crate::support::{
    active, app, claims, config, dpop_bound, dpop_config, now, request, send, DpopKey,
    FakeIntrospection, WHOAMI_URL,
};

const ALGS: &str = "algs=\"ES256 ES384 EdDSA RS256 RS384 RS512 PS256 PS384 PS512\"";

fn is_invalid_dpop_proof(challenges: &[String]) -> bool {
    challenges.first().is_some_and(|c| {
        c.starts_with("DPoP realm=\"test\", error=\"invalid_dpop_proof\"") && c.ends_with(ALGS)
    })
}

#[tokio::test]
async fn a_dpop_bound_token_with_a_good_proof_reaches_the_handler_with_its_key() {
    let key = DpopKey::generate();
    let fake = FakeIntrospection::new(&[("tok", dpop_bound("read", &key.thumbprint()))]);
    let app = app(dpop_config(fake.clone().serve().await));

    let answer = send(&app, request("DPoP tok", &[&key.proof("tok")])).await;

    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.challenges);
    let context: Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(context["dpop_jkt"], json!(key.thumbprint()));
    assert_eq!(context["token_type"], "DPoP");
    assert_eq!(context["certificate_thumbprint"], Value::Null);
    assert_eq!(answer.dpop_nonce, None);
}

#[tokio::test]
async fn the_dpop_scheme_is_case_insensitive() {
    let key = DpopKey::generate();
    let fake = FakeIntrospection::new(&[("tok", dpop_bound("read", &key.thumbprint()))]);
    let app = app(dpop_config(fake.clone().serve().await));

    for scheme in ["dpop", "DPOP"] {
        let answer = send(
            &app,
            request(&format!("{scheme} tok"), &[&key.proof("tok")]),
        )
        .await;
        assert_eq!(answer.status, StatusCode::OK, "{scheme}");
    }
}

#[tokio::test]
async fn every_request_needs_its_own_proof_even_when_the_token_is_cached() {
    let key = DpopKey::generate();
    let fake = FakeIntrospection::new(&[("tok", dpop_bound("read", &key.thumbprint()))]);
    let app = app(dpop_config(fake.clone().serve().await));

    let first = send(&app, request("DPoP tok", &[&key.proof("tok")])).await;
    let second = send(&app, request("DPoP tok", &[&key.proof("tok")])).await;
    let without = send(&app, request("DPoP tok", &[])).await;

    assert_eq!(
        (first.status, second.status),
        (StatusCode::OK, StatusCode::OK)
    );
    assert_eq!(without.status, StatusCode::UNAUTHORIZED);
    assert!(is_invalid_dpop_proof(&without.challenges));
    assert_eq!(fake.calls(), 1);
}

#[tokio::test]
async fn a_dpop_request_without_a_proof_is_an_invalid_dpop_proof_and_costs_no_introspection() {
    let key = DpopKey::generate();
    let fake = FakeIntrospection::new(&[("tok", dpop_bound("read", &key.thumbprint()))]);
    let app = app(dpop_config(fake.clone().serve().await));

    let answer = send(&app, request("DPoP tok", &[])).await;

    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert!(
        is_invalid_dpop_proof(&answer.challenges),
        "{:?}",
        answer.challenges
    );
    assert_eq!(answer.challenges[1], "Bearer realm=\"test\"");
    assert_eq!(fake.calls(), 0);
}

#[tokio::test]
async fn a_dpop_request_with_two_proofs_is_refused() {
    let key = DpopKey::generate();
    let fake = FakeIntrospection::new(&[("tok", dpop_bound("read", &key.thumbprint()))]);
    let app = app(dpop_config(fake.clone().serve().await));

    let answer = send(
        &app,
        request("DPoP tok", &[&key.proof("tok"), &key.proof("tok")]),
    )
    .await;

    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert!(is_invalid_dpop_proof(&answer.challenges));
}

#[tokio::test]
async fn a_proof_signed_by_another_key_is_refused() {
    let key = DpopKey::generate();
    let thief = DpopKey::generate();
    let fake = FakeIntrospection::new(&[("tok", dpop_bound("read", &key.thumbprint()))]);
    let app = app(dpop_config(fake.clone().serve().await));

    let answer = send(&app, request("DPoP tok", &[&thief.proof("tok")])).await;

    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert!(is_invalid_dpop_proof(&answer.challenges));
    assert!(answer.challenges[0].contains("not signed with the key the token is bound to"));
}

#[tokio::test]
async fn a_replayed_proof_is_refused() {
    let key = DpopKey::generate();
    let fake = FakeIntrospection::new(&[("tok", dpop_bound("read", &key.thumbprint()))]);
    let app = app(dpop_config(fake.clone().serve().await));
    let proof = key.proof("tok");

    let first = send(&app, request("DPoP tok", &[&proof])).await;
    let replay = send(&app, request("DPoP tok", &[&proof])).await;

    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED);
    assert!(is_invalid_dpop_proof(&replay.challenges));
    assert!(replay.challenges[0].contains("already used"));
}

/// Sends a proof for the DPoP-bound token `tok` with `change` made to
/// the good claims, and returns the answer.
async fn with_claims(change: impl FnOnce(&mut Value)) -> crate::support::Answer {
    let key = DpopKey::generate();
    let fake = FakeIntrospection::new(&[("tok", dpop_bound("read", &key.thumbprint()))]);
    let app = app(dpop_config(fake.clone().serve().await));
    let mut claims = claims("tok");
    change(&mut claims);
    let answer = send(&app, request("DPoP tok", &[&key.sign(&claims)])).await;
    assert_eq!(
        fake.calls(),
        0,
        "a bad proof must not cost an introspection"
    );
    answer
}

#[tokio::test]
async fn a_proof_for_another_method_is_refused() {
    let answer = with_claims(|c| c["htm"] = json!("POST")).await;

    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert!(is_invalid_dpop_proof(&answer.challenges));
    assert!(answer.challenges[0].contains("htm"));
}

#[tokio::test]
async fn a_proof_for_another_url_is_refused() {
    for htu in [
        "http://other.test/whoami",
        "http://api.test/other",
        "https://api.test/whoami",
    ] {
        let answer = with_claims(|c| c["htu"] = json!(htu)).await;

        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{htu}");
        assert!(is_invalid_dpop_proof(&answer.challenges), "{htu}");
    }
}

#[tokio::test]
async fn a_proof_url_with_a_query_or_default_port_still_matches() {
    let key = DpopKey::generate();
    let fake = FakeIntrospection::new(&[("tok", dpop_bound("read", &key.thumbprint()))]);
    let app = app(dpop_config(fake.clone().serve().await));
    let mut claims = claims("tok");
    claims["htu"] = json!("http://API.test:80/whoami?x=1");

    let answer = send(&app, request("DPoP tok", &[&key.sign(&claims)])).await;

    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.challenges);
}

#[tokio::test]
async fn a_stale_or_future_proof_is_refused() {
    for iat in [now() - 120, now() + 60] {
        let answer = with_claims(|c| c["iat"] = json!(iat)).await;

        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
        assert!(is_invalid_dpop_proof(&answer.challenges));
        assert!(answer.challenges[0].contains("iat"));
    }
}

#[tokio::test]
async fn a_proof_without_the_access_token_hash_or_with_another_is_refused() {
    let missing = with_claims(|c| {
        c.as_object_mut().unwrap().remove("ath");
    })
    .await;
    let wrong = with_claims(|c| c["ath"] = json!(ephemera_proto::jose::sha256_b64(b"other"))).await;

    for answer in [missing, wrong] {
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
        assert!(is_invalid_dpop_proof(&answer.challenges));
        assert!(answer.challenges[0].contains("ath"));
    }
}

#[tokio::test]
async fn a_proof_without_a_jti_is_refused() {
    let answer = with_claims(|c| {
        c.as_object_mut().unwrap().remove("jti");
    })
    .await;

    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert!(is_invalid_dpop_proof(&answer.challenges));
}

#[tokio::test]
async fn a_dpop_bound_token_sent_as_a_bearer_token_is_refused_with_both_challenges() {
    let key = DpopKey::generate();
    let fake = FakeIntrospection::new(&[("tok", dpop_bound("read", &key.thumbprint()))]);
    let app = app(dpop_config(fake.clone().serve().await));

    // Even with a good proof beside it: the scheme is the downgrade.
    let answer = send(&app, request("Bearer tok", &[&key.proof("tok")])).await;

    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert!(answer.challenges[0]
        .starts_with("Bearer realm=\"test\", error=\"invalid_token\", error_description=\"the token is DPoP-bound"));
    assert_eq!(answer.challenges[1], format!("DPoP realm=\"test\", {ALGS}"));
}

#[tokio::test]
async fn an_unbound_token_with_the_dpop_scheme_and_a_good_proof_is_accepted() {
    let key = DpopKey::generate();
    let fake = FakeIntrospection::new(&[("tok", active("read", json!("https://api.test")))]);
    let app = app(dpop_config(fake.clone().serve().await));

    let good = send(&app, request("DPoP tok", &[&key.proof("tok")])).await;
    let bad = send(&app, request("DPoP tok", &[&key.proof("other")])).await;

    assert_eq!(good.status, StatusCode::OK);
    assert_eq!(good.body, "alice|read|g-1|pushed|\"agent\"");
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    assert!(is_invalid_dpop_proof(&bad.challenges));
}

#[tokio::test]
async fn an_inactive_token_with_the_dpop_scheme_gets_its_error_in_the_dpop_challenge() {
    let key = DpopKey::generate();
    let fake = FakeIntrospection::new(&[]);
    let app = app(dpop_config(fake.clone().serve().await));

    let answer = send(&app, request("DPoP gone", &[&key.proof("gone")])).await;

    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert!(answer.challenges[0].starts_with("DPoP realm=\"test\", error=\"invalid_token\""));
    assert!(answer.challenges[0].ends_with(ALGS));
    assert_eq!(answer.challenges[1], "Bearer realm=\"test\"");
}

#[tokio::test]
async fn a_request_without_a_token_learns_both_schemes() {
    let fake = FakeIntrospection::new(&[]);
    let app = app(dpop_config(fake.clone().serve().await));

    let answer = crate::support::call(&app, None).await;

    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        answer.challenges,
        [
            "Bearer realm=\"test\"".to_owned(),
            format!("DPoP realm=\"test\", {ALGS}")
        ]
    );
}

#[tokio::test]
async fn without_a_public_base_url_dpop_is_off() {
    let key = DpopKey::generate();
    let fake = FakeIntrospection::new(&[("tok", dpop_bound("read", &key.thumbprint()))]);
    let app = app(config(fake.clone().serve().await));

    let dpop = send(&app, request("DPoP tok", &[&key.proof("tok")])).await;
    let bearer = send(&app, request("Bearer tok", &[])).await;

    assert_eq!(dpop.status, StatusCode::UNAUTHORIZED);
    assert_eq!(dpop.challenges, ["Bearer realm=\"test\""]);
    assert_eq!(bearer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(bearer.challenges.len(), 1);
    assert!(bearer.challenges[0].contains("error=\"invalid_token\""));
}

#[tokio::test]
async fn the_htu_includes_the_path_of_the_public_base_url() {
    let key = DpopKey::generate();
    let fake = FakeIntrospection::new(&[("tok", dpop_bound("read", &key.thumbprint()))]);
    let config = config(fake.clone().serve().await)
        .public_base_url(Url::parse("https://gateway.test/api/").unwrap());
    let app = app(config);
    let mut at_gateway = claims("tok");
    at_gateway["htu"] = json!("https://gateway.test/api/whoami");

    let good = send(&app, request("DPoP tok", &[&key.sign(&at_gateway)])).await;
    let direct = send(&app, request("DPoP tok", &[&key.proof("tok")])).await;

    assert_eq!(good.status, StatusCode::OK, "{:?}", good.challenges);
    assert_eq!(direct.status, StatusCode::UNAUTHORIZED);
    assert!(WHOAMI_URL.starts_with("http://api.test"));
}

#[tokio::test]
async fn with_nonces_on_a_proof_must_carry_the_servers_nonce() {
    let key = DpopKey::generate();
    let fake = FakeIntrospection::new(&[("tok", dpop_bound("read", &key.thumbprint()))]);
    let app =
        app(dpop_config(fake.clone().serve().await).require_dpop_nonce(Duration::from_secs(60)));

    let without = send(&app, request("DPoP tok", &[&key.proof("tok")])).await;
    assert_eq!(without.status, StatusCode::UNAUTHORIZED);
    assert!(without.challenges[0]
        .starts_with("DPoP realm=\"test\", error=\"use_dpop_nonce\", error_description=\""));
    let nonce = without.dpop_nonce.expect("a DPoP-Nonce header");
    assert_eq!(fake.calls(), 0);

    let mut wrong = claims("tok");
    wrong["nonce"] = json!("made-up");
    let wrong = send(&app, request("DPoP tok", &[&key.sign(&wrong)])).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.challenges[0].contains("error=\"use_dpop_nonce\""));

    let mut with = claims("tok");
    with["nonce"] = json!(nonce);
    let with = send(&app, request("DPoP tok", &[&key.sign(&with)])).await;
    assert_eq!(with.status, StatusCode::OK, "{:?}", with.challenges);
    assert_eq!(with.dpop_nonce.as_deref(), Some(nonce.as_str()));
}

#[tokio::test]
async fn a_bad_proof_with_nonces_on_is_an_invalid_proof_with_a_nonce() {
    let key = DpopKey::generate();
    let fake = FakeIntrospection::new(&[("tok", dpop_bound("read", &key.thumbprint()))]);
    let app =
        app(dpop_config(fake.clone().serve().await).require_dpop_nonce(Duration::from_secs(60)));
    let mut claims = claims("tok");
    claims["htm"] = json!("DELETE");

    let answer = send(&app, request("DPoP tok", &[&key.sign(&claims)])).await;

    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert!(is_invalid_dpop_proof(&answer.challenges));
    assert!(answer.dpop_nonce.is_some());
}

//! The JWT bearer grant (RFC 7523 §2.1) over real HTTP: ID-JAGs
//! (draft-ietf-oauth-identity-assertion-authz-grant) from an identity
//! provider of the test's own, presented by a registered client, and a
//! workload's JWT (MCP workload identity federation) presented as the MCP
//! conformance suite's `auth/wif-jwt-bearer` client presents it. The
//! provider is a P-256 key whose JWKS a tiny server on 127.0.0.1 serves.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::routing::get;
use axum::{Json, Router};
use ephemera_proto::assertion_grant::{GRANT_TYPE, ID_JAG_PROFILE};
use ephemera_server::config::trusted_issuers::RawTrustedIssuer;
use ephemera_server::config::RawConfig;
use ephemera_server::service::admin::NewClient;
use serde_json::{json, Value};

use crate::helpers::{assert_error, TestApp};
use crate::keys::{random_id, TestKey};

const API: &str = "https://api.example/";
const CLIENT: &str = "wiki";
const SECRET: &str = "wiki-secret-0123456789abcdefghijklmnopqrstuvwxyz";
const ENTERPRISE_SUB: &str = "U019488227";
const WORKLOAD: &str = "spiffe://cluster.test/ns/agents/sa/router";

/// The test's identity provider: a key, the JWKS it serves, and how often
/// that was fetched.
struct Idp {
    issuer: String,
    key: TestKey,
    fetches: Arc<AtomicUsize>,
}

impl Idp {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let key = TestKey::new();
        let jwks = Arc::new(Mutex::new(key.jwks()));
        let fetches = Arc::new(AtomicUsize::new(0));
        let (served, counted) = (jwks.clone(), fetches.clone());
        let app = Router::new().route(
            "/jwks",
            get(move || {
                counted.fetch_add(1, Ordering::SeqCst);
                let body = served.lock().unwrap().clone();
                async move { Json(body) }
            }),
        );
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            issuer,
            key,
            fetches,
        }
    }

    /// `[trusted_issuers.acme]` for these grants, its keys at its JWKS URL.
    fn trusted(&self, grants: &[&str]) -> RawTrustedIssuer {
        let workloads = grants.contains(&"workload");
        RawTrustedIssuer {
            issuer: self.issuer.clone(),
            jwks_uri: Some(format!("{}/jwks", self.issuer)),
            grants: grants.iter().map(|g| (*g).to_owned()).collect(),
            subjects: if workloads {
                vec!["spiffe://cluster.test/ns/agents/*".into()]
            } else {
                Vec::new()
            },
            ..RawTrustedIssuer::default()
        }
    }

    /// An ID-JAG (`typ: oauth-id-jag+jwt`) with these claims.
    fn id_jag(&self, claims: &Value) -> String {
        self.key.sign(
            json!({"typ": "oauth-id-jag+jwt", "kid": self.key.jkt}),
            claims,
        )
    }

    /// A good ID-JAG's claims for `app` and the client `wiki`, `extra` replacing some.
    fn jag_claims(&self, app: &TestApp, extra: Value) -> Value {
        let now = app.now();
        let mut claims = json!({
            "iss": self.issuer, "sub": ENTERPRISE_SUB, "aud": app.base, "client_id": CLIENT,
            "jti": random_id(), "exp": now + 300, "iat": now, "resource": API,
            "scope": "read write", "auth_time": now - 60, "amr": ["mfa", "hwk"],
            "preferred_username": "ada", "name": "Ada Lovelace", "email": "ada@acme.example",
        });
        for (k, v) in extra.as_object().unwrap() {
            claims[k] = v.clone();
        }
        claims
    }

    /// A workload's JWT as the conformance suite makes one: no `typ`, no
    /// `kid`, the server's issuer as its audience.
    fn workload_jwt(&self, app: &TestApp, subject: &str) -> String {
        let now = app.now();
        self.key.sign(
            json!({}),
            &json!({
                "iss": self.issuer, "sub": subject, "aud": app.base,
                "exp": now + 300, "iat": now, "jti": random_id(),
            }),
        )
    }
}

/// A server trusting `idp` for `grants`, serving `API`, with the
/// confidential client `wiki` that may use the JWT bearer grant.
async fn app_trusting(idp: &Idp, grants: &[&str]) -> TestApp {
    app_with(idp, grants, |_| {}).await
}

async fn app_with(idp: &Idp, grants: &[&str], adjust: impl FnOnce(&mut RawConfig)) -> TestApp {
    let trusted = idp.trusted(grants);
    let app = TestApp::spawn_with(|raw| {
        raw.resources = vec![API.into()];
        raw.trusted_issuers.insert("acme".into(), trusted);
        adjust(raw);
    })
    .await;
    app.add_client(NewClient {
        client_id: CLIENT.into(),
        confidential: true,
        secret: Some(SECRET.into()),
        grant_types: vec![GRANT_TYPE.into()],
        ..NewClient::default()
    })
    .await;
    app
}

/// The token request of `client` (HTTP Basic) presenting `assertion`, with `extra`.
async fn present(
    app: &TestApp,
    client: Option<(&str, &str)>,
    assertion: &str,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut form = vec![("grant_type", GRANT_TYPE), ("assertion", assertion)];
    form.extend_from_slice(extra);
    let mut request = app.http.post(app.url("/token")).form(&form);
    if let Some((id, secret)) = client {
        request = request.basic_auth(id, Some(secret));
    }
    request.send().await.unwrap()
}

/// `wiki` presenting `assertion`.
async fn wiki(app: &TestApp, assertion: &str) -> reqwest::Response {
    present(app, Some((CLIENT, SECRET)), assertion, &[]).await
}

/// The `sub` introspection gives for the access token of `body`.
async fn subject(app: &TestApp, body: &Value) -> Value {
    app.introspect(body["access_token"].as_str().unwrap()).await["sub"].clone()
}

async fn access_token(res: reqwest::Response) -> Value {
    assert_eq!(res.status(), 200, "{:?}", res.text().await);
    res.json().await.unwrap()
}

#[tokio::test]
async fn an_id_jag_gets_an_access_token_for_its_person_and_no_refresh_token() {
    let idp = Idp::start().await;
    let app = app_trusting(&idp, &["id-jag"]).await;

    let body = access_token(wiki(&app, &idp.id_jag(&idp.jag_claims(&app, json!({})))).await).await;

    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "read write");
    assert!(body.get("refresh_token").is_none(), "{body}");
    assert!(body.get("id_token").is_none(), "{body}");
    let info = app.introspect(body["access_token"].as_str().unwrap()).await;
    assert_eq!(info["active"], true);
    assert_eq!(info["client_id"], CLIENT);
    assert_eq!(info["client_kind"], "registered");
    assert_eq!(info["username"], "ada");
    assert_eq!(info["scope"], "read write");
    assert_eq!(info["aud"], API);
    let ada = app
        .ctx
        .store
        .find_user_by_name("ada")
        .await
        .unwrap()
        .expect("the person became a user");
    assert_eq!(info["sub"], ada.id.as_str());
    assert_eq!(ada.claims.email.as_deref(), Some("ada@acme.example"));
    assert!(ada.password_hash.is_none());
}

#[tokio::test]
async fn an_id_jag_is_taken_once() {
    let idp = Idp::start().await;
    let app = app_trusting(&idp, &["id-jag"]).await;
    let jag = idp.id_jag(&idp.jag_claims(&app, json!({})));
    access_token(wiki(&app, &jag).await).await;

    let d = assert_error(wiki(&app, &jag).await, 400, "invalid_grant").await;

    assert!(d.contains("already used"), "{d}");
    assert_eq!(app.stats().await.grants, 1);
}

#[tokio::test]
async fn the_same_enterprise_subject_is_the_same_local_user_each_time() {
    let idp = Idp::start().await;
    let app = app_trusting(&idp, &["id-jag"]).await;
    let first = access_token(wiki(&app, &idp.id_jag(&idp.jag_claims(&app, json!({})))).await).await;
    // The provider renamed the person; the subject is what identifies them.
    let renamed = json!({"preferred_username": "ada2", "name": "Ada King"});

    let second = access_token(wiki(&app, &idp.id_jag(&idp.jag_claims(&app, renamed))).await).await;

    assert_eq!(subject(&app, &first).await, subject(&app, &second).await);
    assert_eq!(app.stats().await.users, 2, "alice and ada");
    let ada = app
        .ctx
        .store
        .find_user_by_name("ada")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ada.claims.name.as_deref(), Some("Ada King"));
}

#[tokio::test]
async fn with_link_existing_an_id_jag_is_the_local_user_of_its_username() {
    let idp = Idp::start().await;
    let app = app_with(&idp, &["id-jag"], |raw| {
        raw.trusted_issuers.get_mut("acme").unwrap().link_existing = true;
    })
    .await;
    let claims = idp.jag_claims(&app, json!({"preferred_username": "alice"}));

    let body = access_token(wiki(&app, &idp.id_jag(&claims)).await).await;

    let info = app.introspect(body["access_token"].as_str().unwrap()).await;
    let alice = app
        .ctx
        .store
        .find_user_by_name("alice")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(info["sub"], alice.id.as_str());
    assert_eq!(app.stats().await.users, 1);
}

#[tokio::test]
async fn each_bad_id_jag_is_refused_as_an_invalid_grant_saying_why_and_nothing_is_stored() {
    let idp = Idp::start().await;
    let app = app_trusting(&idp, &["id-jag"]).await;
    let now = app.now();
    let other_key = TestKey::new();
    let stranger = json!({"iss": "https://idp.stranger.example"});
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "another audience",
            idp.id_jag(&idp.jag_claims(&app, json!({"aud": "https://other-as.example"}))),
            "aud must be this authorization server's issuer",
        ),
        (
            "this server among others",
            idp.id_jag(
                &idp.jag_claims(&app, json!({"aud": [app.base, "https://other-as.example"]})),
            ),
            "as its only value",
        ),
        (
            "expired",
            idp.id_jag(&idp.jag_claims(&app, json!({"iat": now - 400, "exp": now - 100}))),
            "has expired",
        ),
        (
            "living a day",
            idp.id_jag(&idp.jag_claims(&app, json!({"exp": now + 86_400}))),
            "lives too long",
        ),
        (
            "an unknown issuer",
            idp.id_jag(&idp.jag_claims(&app, stranger)),
            "is not trusted here",
        ),
        (
            "signed by another key under the issuer's kid",
            other_key.sign(
                json!({"typ": "oauth-id-jag+jwt", "kid": idp.key.jkt}),
                &idp.jag_claims(&app, json!({})),
            ),
            "signature does not verify",
        ),
        (
            "typ JWT from an ID-JAG issuer",
            idp.key.sign(
                json!({"typ": "JWT", "kid": idp.key.jkt}),
                &idp.jag_claims(&app, json!({})),
            ),
            "trusted for ID-JAGs only",
        ),
        (
            "an access token's typ",
            idp.key.sign(
                json!({"typ": "at+jwt", "kid": idp.key.jkt}),
                &idp.jag_claims(&app, json!({})),
            ),
            "typ `at+jwt`",
        ),
        (
            "issued for another client",
            idp.id_jag(&idp.jag_claims(&app, json!({"client_id": "chat"}))),
            "issued for client `chat`",
        ),
        (
            "without jti",
            idp.id_jag(&idp.jag_claims(&app, json!({"jti": ""}))),
            "jti",
        ),
        ("not a JWT", "not-a-jwt".to_owned(), "not a signed JWT"),
    ];
    for (case, assertion, expected) in cases {
        let d = assert_error(wiki(&app, &assertion).await, 400, "invalid_grant").await;
        assert!(d.contains(expected), "{case}: {expected:?} not in {d:?}");
    }
    let stats = app.stats().await;
    assert_eq!((stats.grants, stats.access_tokens, stats.users), (0, 0, 1));
}

#[tokio::test]
async fn an_id_jag_for_a_resource_not_served_here_is_an_invalid_target() {
    let idp = Idp::start().await;
    let app = app_trusting(&idp, &["id-jag"]).await;
    let elsewhere = json!({"resource": "https://elsewhere.example/"});

    let res = wiki(&app, &idp.id_jag(&idp.jag_claims(&app, elsewhere))).await;

    let d = assert_error(res, 400, "invalid_target").await;
    assert!(d.contains("https://elsewhere.example/"), "{d}");
    assert_eq!(app.stats().await.users, 1);
}

#[tokio::test]
async fn the_request_may_narrow_an_id_jags_scope_but_not_widen_it() {
    let idp = Idp::start().await;
    let app = app_trusting(&idp, &["id-jag"]).await;
    let claims = || idp.jag_claims(&app, json!({"scope": "read"}));

    let narrowed = present(
        &app,
        Some((CLIENT, SECRET)),
        &idp.id_jag(&claims()),
        &[("scope", "read")],
    )
    .await;
    let widened = present(
        &app,
        Some((CLIENT, SECRET)),
        &idp.id_jag(&claims()),
        &[("scope", "read write")],
    )
    .await;

    assert_eq!(access_token(narrowed).await["scope"], "read");
    let d = assert_error(widened, 400, "invalid_scope").await;
    assert!(d.contains("`write`"), "{d}");
}

#[tokio::test]
async fn a_client_that_may_not_use_the_grant_is_an_unauthorized_client() {
    let idp = Idp::start().await;
    let app = app_trusting(&idp, &["id-jag"]).await;
    let chat_secret = app.add_confidential_client("chat", false).await;
    app.add_public_client("notes", &[crate::helpers::REDIRECT])
        .await;
    let for_client = |c: &str| idp.id_jag(&idp.jag_claims(&app, json!({ "client_id": c })));

    let confidential = present(&app, Some(("chat", &chat_secret)), &for_client("chat"), &[]).await;
    let public = present(&app, None, &for_client("notes"), &[("client_id", "notes")]).await;

    let d = assert_error(confidential, 400, "unauthorized_client").await;
    assert!(d.contains(GRANT_TYPE), "{d}");
    let d = assert_error(public, 400, "unauthorized_client").await;
    assert!(d.contains("authenticate"), "{d}");
    assert_eq!(app.stats().await.grants, 0);
}

#[tokio::test]
async fn a_missing_assertion_is_an_invalid_request() {
    let idp = Idp::start().await;
    let app = app_trusting(&idp, &["id-jag"]).await;

    let res = app
        .http
        .post(app.url("/token"))
        .basic_auth(CLIENT, Some(SECRET))
        .form(&[("grant_type", GRANT_TYPE)])
        .send()
        .await
        .unwrap();

    let d = assert_error(res, 400, "invalid_request").await;
    assert!(d.contains("assertion"), "{d}");
}

#[tokio::test]
async fn an_id_jag_bound_to_a_dpop_key_needs_a_proof_of_it_and_its_token_is_bound() {
    let idp = Idp::start().await;
    let app = app_trusting(&idp, &["id-jag"]).await;
    let dpop = TestKey::new();
    let bound = || idp.id_jag(&idp.jag_claims(&app, json!({"cnf": {"jkt": dpop.jkt}})));
    let proof = |key: &TestKey| key.proof(&app.url("/token"), app.now());

    let without = wiki(&app, &bound()).await;
    let other_key = app
        .http
        .post(app.url("/token"))
        .basic_auth(CLIENT, Some(SECRET))
        .header("DPoP", proof(&TestKey::new()))
        .form(&[("grant_type", GRANT_TYPE), ("assertion", &bound())])
        .send()
        .await
        .unwrap();
    let with = app
        .http
        .post(app.url("/token"))
        .basic_auth(CLIENT, Some(SECRET))
        .header("DPoP", proof(&dpop))
        .form(&[("grant_type", GRANT_TYPE), ("assertion", &bound())])
        .send()
        .await
        .unwrap();

    let d = assert_error(without, 400, "invalid_grant").await;
    assert!(d.contains("cnf.jkt"), "{d}");
    assert_error(other_key, 400, "invalid_grant").await;
    let body = access_token(with).await;
    assert_eq!(body["token_type"], "DPoP");
    let info = app.introspect(body["access_token"].as_str().unwrap()).await;
    assert_eq!(info["cnf"]["jkt"], dpop.jkt.as_str());
}

#[tokio::test]
async fn an_unknown_kid_fetches_the_issuers_keys_again_at_most_every_30_seconds() {
    let idp = Idp::start().await;
    let app = app_trusting(&idp, &["id-jag"]).await;
    access_token(wiki(&app, &idp.id_jag(&idp.jag_claims(&app, json!({})))).await).await;
    let unknown = TestKey::new();

    for _ in 0..3 {
        let jag = unknown.sign(
            json!({"typ": "oauth-id-jag+jwt", "kid": unknown.jkt}),
            &idp.jag_claims(&app, json!({})),
        );
        assert_error(wiki(&app, &jag).await, 400, "invalid_grant").await;
    }

    assert_eq!(idp.fetches.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_workload_jwt_gets_a_token_whose_subject_is_the_workload() {
    let idp = Idp::start().await;
    let app = app_trusting(&idp, &["workload"]).await;
    let jwt = idp.workload_jwt(&app, WORKLOAD);

    // As an MCP client with `token_endpoint_auth_method` `none` sends it:
    // its client_id, which names nothing here, and the resource.
    let res = present(
        &app,
        None,
        &jwt,
        &[
            ("client_id", "conformance-wif-workload"),
            ("resource", API),
            ("scope", "read"),
        ],
    )
    .await;

    let body = access_token(res).await;
    assert!(body.get("refresh_token").is_none(), "{body}");
    let info = app.introspect(body["access_token"].as_str().unwrap()).await;
    assert_eq!(info["sub"], WORKLOAD);
    assert_eq!(info["client_id"], WORKLOAD);
    assert_eq!(info["client_kind"], "workload");
    assert_eq!(info["client_metadata"]["iss"], idp.issuer.as_str());
    assert_eq!(info["client_metadata"]["trusted_issuer"], "acme");
    assert!(info.get("username").is_none(), "{info}");
    assert_eq!(info["scope"], "read");
    assert_eq!(info["aud"], API);
    assert_eq!(app.stats().await.users, 1, "a workload is no user");
    // Its JWT is taken once too.
    let again = present(&app, None, &jwt, &[("resource", API)]).await;
    assert_error(again, 400, "invalid_grant").await;
}

#[tokio::test]
async fn a_workload_may_name_the_token_endpoint_as_its_audience() {
    let idp = Idp::start().await;
    let app = app_trusting(&idp, &["workload"]).await;
    let now = app.now();
    let jwt = idp.key.sign(
        json!({"typ": "JWT", "kid": idp.key.jkt}),
        &json!({
            "iss": idp.issuer, "sub": WORKLOAD, "aud": app.url("/token"),
            "exp": now + 300, "iat": now, "jti": random_id(),
        }),
    );

    access_token(present(&app, None, &jwt, &[]).await).await;
}

#[tokio::test]
async fn a_workload_the_issuer_does_not_admit_or_named_like_a_local_client_is_refused() {
    let idp = Idp::start().await;
    let app = app_with(&idp, &["workload"], |raw| {
        let acme = raw.trusted_issuers.get_mut("acme").unwrap();
        acme.subjects.push(CLIENT.into());
    })
    .await;

    let stranger = present(
        &app,
        None,
        &idp.workload_jwt(&app, "spiffe://cluster.test/ns/other/sa/x"),
        &[],
    )
    .await;
    let impostor = present(&app, None, &idp.workload_jwt(&app, CLIENT), &[]).await;
    let authenticated = present(
        &app,
        Some((CLIENT, SECRET)),
        &idp.workload_jwt(&app, WORKLOAD),
        &[],
    )
    .await;

    let d = assert_error(stranger, 400, "invalid_grant").await;
    assert!(d.contains("`subjects`"), "{d}");
    let d = assert_error(impostor, 400, "invalid_grant").await;
    assert!(d.contains("user or client of this server"), "{d}");
    let d = assert_error(authenticated, 400, "invalid_request").await;
    assert!(d.contains("without client authentication"), "{d}");
    assert_eq!(app.stats().await.grants, 0);
}

#[tokio::test]
async fn a_workload_jwt_for_another_audience_or_expired_is_refused() {
    let idp = Idp::start().await;
    let app = app_trusting(&idp, &["workload"]).await;
    let now = app.now();
    let jwt = |aud: &str, exp: i64| {
        idp.key.sign(
            json!({}),
            &json!({"iss": idp.issuer, "sub": WORKLOAD, "aud": aud, "exp": exp,
                    "iat": now - 120, "jti": random_id()}),
        )
    };

    let wrong = present(&app, None, &jwt("https://wrong.example", now + 300), &[]).await;
    let expired = present(&app, None, &jwt(&app.base, now - 60), &[]).await;

    let d = assert_error(wrong, 400, "invalid_grant").await;
    assert!(d.contains("does not name this authorization server"), "{d}");
    let d = assert_error(expired, 400, "invalid_grant").await;
    assert!(d.contains("expired"), "{d}");
}

#[tokio::test]
async fn an_id_jag_issuer_takes_no_workload_jwts_and_a_workload_platform_no_id_jags() {
    let idp = Idp::start().await;
    let workloads_only = app_trusting(&idp, &["workload"]).await;

    let jag = idp.id_jag(&idp.jag_claims(&workloads_only, json!({})));
    let d = assert_error(wiki(&workloads_only, &jag).await, 400, "invalid_grant").await;
    assert!(d.contains("not for ID-JAGs"), "{d}");

    let people_only = app_trusting(&idp, &["id-jag"]).await;
    let jwt = idp.workload_jwt(&people_only, WORKLOAD);
    let d = assert_error(
        present(&people_only, None, &jwt, &[]).await,
        400,
        "invalid_grant",
    )
    .await;
    assert!(d.contains("ID-JAGs only"), "{d}");
}

#[tokio::test]
async fn the_metadata_lists_the_jwt_bearer_grant_only_when_an_issuer_is_trusted() {
    let idp = Idp::start().await;
    let plain = TestApp::spawn().await;
    let trusting = app_trusting(&idp, &["id-jag"]).await;
    let workloads = app_trusting(&idp, &["workload"]).await;
    let document = |app: &TestApp, path: &'static str| {
        let url = app.url(path);
        let http = app.http.clone();
        async move {
            let res = http.get(url).send().await.unwrap();
            res.json::<Value>().await.unwrap()
        }
    };
    let lists = |doc: &Value| {
        doc["grant_types_supported"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g == GRANT_TYPE)
    };

    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let none = document(&plain, path).await;
        assert!(!lists(&none), "{path}: {none}");
        assert!(none.get("authorization_grant_profiles_supported").is_none());
        let id_jag = document(&trusting, path).await;
        assert!(lists(&id_jag), "{path}: {id_jag}");
        assert_eq!(
            id_jag["authorization_grant_profiles_supported"],
            json!([ID_JAG_PROFILE])
        );
        // Which issuers are trusted is never said (the draft's §8.4).
        assert!(!id_jag.to_string().contains(&idp.issuer));
        let workload = document(&workloads, path).await;
        assert!(lists(&workload), "{path}: {workload}");
        assert!(workload
            .get("authorization_grant_profiles_supported")
            .is_none());
    }
    let res = present(&plain, Some((CLIENT, SECRET)), "a.b.c", &[]).await;
    assert_error(res, 400, "unsupported_grant_type").await;
}

#[tokio::test]
async fn ephemera_client_presents_an_id_jag_and_a_workload_jwt_and_gets_tokens() {
    use ephemera_client::{AuthorizationServer, ClientIdentity, SecretMethod};
    let idp = Idp::start().await;
    let app = app_trusting(&idp, &["id-jag", "workload"]).await;
    let server = AuthorizationServer::discover(&app.base).await.unwrap();
    let wiki = ClientIdentity::confidential(CLIENT, SECRET, SecretMethod::Basic);
    let jag = idp.id_jag(&idp.jag_claims(&app, json!({})));

    let tokens = server
        .jwt_bearer(&wiki, &jag, Some("read"), &[API.to_owned()])
        .await
        .unwrap();

    let seen = app.introspect(&tokens.access_token).await;
    assert_eq!(seen["active"], true);
    assert_eq!(seen["client_id"], CLIENT);
    assert_eq!(seen["scope"], "read");
    assert_eq!(seen["aud"], API);
    assert!(tokens.refresh_token.is_none());
    // The workload is a public client naming itself, as the MCP workload
    // identity extension's clients do.
    let workload = ClientIdentity::public(WORKLOAD);
    let jwt = idp.workload_jwt(&app, WORKLOAD);
    let tokens = server.jwt_bearer(&workload, &jwt, None, &[]).await.unwrap();
    let seen = app.introspect(&tokens.access_token).await;
    assert_eq!(seen["sub"], WORKLOAD);
    assert_eq!(seen["client_kind"], "workload");
}

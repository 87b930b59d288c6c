//! OpenID Federation 1.0: the server's own Entity Configuration, and
//! clients that register automatically through a trust chain (a trust
//! anchor, an intermediate and a leaf, served over https on 127.0.0.1 with a
//! test CA, keys minted here).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use ephemera_proto::federation::{
    fetch_url, EntityStatement, ENTITY_STATEMENT_MEDIA_TYPE, ENTITY_STATEMENT_TYP, TRUST_MARK_TYP,
};
use ephemera_server::config::federation::{RawFederation, RawKeyedEntity, RawTrustMark};
use ephemera_server::config::RawConfig;
use p256::pkcs8::EncodePrivateKey as _;
use serde_json::{json, Value};
use tempfile::TempDir;

use crate::helpers::*;
use crate::keys::{random_id, TestKey};

/// A federation signing key in a PEM file, the server's certificate and key,
/// and the directory holding them.
struct Files {
    dir: TempDir,
}

impl Files {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let key = p256::SecretKey::random(&mut rand::rngs::OsRng);
        let der = key.to_pkcs8_der().unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_bytes());
        std::fs::write(
            dir.path().join("federation.pem"),
            format!("-----BEGIN PRIVATE KEY-----\n{b64}\n-----END PRIVATE KEY-----\n"),
        )
        .unwrap();
        let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
        std::fs::write(dir.path().join("cert.pem"), ck.cert.pem()).unwrap();
        std::fs::write(dir.path().join("key.pem"), ck.key_pair.serialize_pem()).unwrap();
        Self { dir }
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }
}

/// A server over https with `[federation]` trusting `anchor` (id, keys).
async fn federated_app(
    files: &Files,
    anchor: (&str, Value),
    adjust: impl FnOnce(&mut ephemera_server::config::RawConfig),
) -> TestApp {
    let (key, cert, tls_key) = (
        files.path("federation.pem"),
        files.path("cert.pem"),
        files.path("key.pem"),
    );
    let anchor = RawKeyedEntity {
        entity_id: anchor.0.to_owned(),
        jwks: Some(anchor.1),
        jwks_file: None,
    };
    TestApp::spawn_with(move |c| {
        c.tls.cert = Some(cert);
        c.tls.key = Some(tls_key);
        c.federation = Some(RawFederation {
            signing_key: Some(key),
            trust_anchors: vec![anchor],
            authority_hints: vec!["https://ta.example.org".into()],
            ..RawFederation::default()
        });
        adjust(c);
    })
    .await
}

#[tokio::test]
async fn the_entity_configuration_is_signed_with_the_federation_key_and_describes_the_server() {
    // Arrange
    let files = Files::new();
    let anchor = TestKey::new();
    let app = federated_app(&files, ("https://ta.example.org", anchor.jwks()), |_| {}).await;

    // Act
    let res = app
        .http
        .get(app.url("/.well-known/openid-federation"))
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["content-type"].to_str().unwrap(),
        ENTITY_STATEMENT_MEDIA_TYPE
    );
    let jwt = res.text().await.unwrap();
    let own_keys = EntityStatement::peek(&jwt).unwrap().jwks;
    let ec = EntityStatement::verify(&jwt, &own_keys, "of its own").unwrap();
    assert_eq!(ec.iss, app.base);
    assert_eq!(ec.sub, app.base);
    assert!(ec.exp > app.now() && ec.iat <= app.now());
    assert_eq!(
        ec.authority_hints,
        vec!["https://ta.example.org".to_owned()]
    );
    let rfc8414: Value = app
        .http
        .get(app.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut expected = rfc8414.clone();
    expected["client_registration_types_supported"] = json!(["automatic"]);
    expected["request_authentication_methods_supported"] =
        json!({"pushed_authorization_request_endpoint": ["private_key_jwt"]});
    assert_eq!(ec.metadata["oauth_authorization_server"], expected);
    let op = &ec.metadata["openid_provider"];
    assert_eq!(op["issuer"], json!(app.base));
    assert_eq!(
        op["client_registration_types_supported"],
        json!(["automatic"])
    );
    assert!(op["id_token_signing_alg_values_supported"].is_array());
    // The federation key is not a token-signing key.
    let token_keys: Value = app
        .http
        .get(app.url("/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let fed_kid = &own_keys["keys"][0]["kid"];
    assert!(token_keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .all(|k| &k["kid"] != fed_kid));
}

#[tokio::test]
async fn without_federation_there_is_no_entity_configuration() {
    let app = TestApp::spawn().await;

    let res = app
        .http
        .get(app.url("/.well-known/openid-federation"))
        .send()
        .await
        .unwrap();

    assert_eq!(res.status(), 404);
}

/// Entity statements served over https on 127.0.0.1, by path and query.
struct FederationServer {
    https: HttpsServer,
    statements: Arc<Mutex<HashMap<String, String>>>,
}

impl FederationServer {
    async fn start() -> Self {
        let statements: Arc<Mutex<HashMap<String, String>>> = Arc::default();
        let served = statements.clone();
        let https = HttpsServer::start(|_| {
            axum::Router::new().fallback(move |uri: axum::http::Uri| {
                let served = served.clone();
                async move {
                    let key = uri.path_and_query().map(|p| p.as_str()).unwrap_or_default();
                    match served.lock().unwrap().get(key) {
                        Some(jwt) => (
                            axum::http::StatusCode::OK,
                            [("content-type", ENTITY_STATEMENT_MEDIA_TYPE)],
                            jwt.clone(),
                        ),
                        None => (
                            axum::http::StatusCode::NOT_FOUND,
                            [("content-type", "text/plain")],
                            String::new(),
                        ),
                    }
                }
            })
        })
        .await;
        Self { https, statements }
    }

    fn id(&self, name: &str) -> String {
        format!("{}/{name}", self.https.base)
    }

    /// Serves `jwt` at `url` (one of this server's).
    fn put(&self, url: &str, jwt: String) {
        let path = url.strip_prefix(&self.https.base).unwrap().to_owned();
        self.statements.lock().unwrap().insert(path, jwt);
    }
}

/// A trust anchor (`/ta`), an intermediate (`/int`) and a leaf relying party
/// (`/rp`), each with its federation key; the leaf also has the key it
/// authenticates with as a client, in its metadata's `jwks`.
struct Federation {
    server: FederationServer,
    ta: TestKey,
    int: TestKey,
    rp: TestKey,
    rp_client: TestKey,
    /// Claims replacing the defaults, per statement: the leaf's Entity
    /// Configuration, the intermediate's and the anchor's statements
    /// about their subordinates, and the intermediate's configuration.
    leaf: Value,
    about_rp: Value,
    about_int: Value,
    int_configuration: Value,
    /// Signs the intermediate's statement about the leaf instead of its key.
    about_rp_signer: Option<TestKey>,
}

impl Federation {
    async fn start() -> Self {
        Self {
            server: FederationServer::start().await,
            ta: TestKey::new(),
            int: TestKey::new(),
            rp: TestKey::new(),
            rp_client: TestKey::new(),
            leaf: json!({}),
            about_rp: json!({}),
            about_int: json!({}),
            int_configuration: json!({}),
            about_rp_signer: None,
        }
    }

    fn ta_id(&self) -> String {
        self.server.id("ta")
    }

    fn int_id(&self) -> String {
        self.server.id("int")
    }

    fn rp_id(&self) -> String {
        self.server.id("rp")
    }

    fn statement(key: &TestKey, mut claims: Value, changes: &Value) -> String {
        for (k, v) in changes.as_object().unwrap() {
            claims[k] = v.clone();
        }
        key.sign(
            json!({"typ": ENTITY_STATEMENT_TYP, "kid": key.jkt}),
            &claims,
        )
    }

    /// Publishes every statement as of `now`, with the changes set.
    fn publish(&self, now: i64) {
        let (ta, int, rp) = (self.ta_id(), self.int_id(), self.rp_id());
        let fetch = |id: &str| format!("{id}/fetch");
        let configuration = |id: &str| format!("{id}/.well-known/openid-federation");
        let times = |exp: i64| (now - 10, now + exp);
        let (iat, exp) = times(3600);
        self.server.put(
            &configuration(&ta),
            Self::statement(
                &self.ta,
                json!({"iss": ta, "sub": ta, "iat": iat, "exp": exp, "jwks": self.ta.jwks(),
                    "metadata": {"federation_entity": {"federation_fetch_endpoint": fetch(&ta)}}}),
                &json!({}),
            ),
        );
        self.server.put(
            fetch_url(&fetch(&ta), &int).unwrap().as_str(),
            Self::statement(
                &self.ta,
                json!({"iss": ta, "sub": int, "iat": iat, "exp": exp, "jwks": self.int.jwks(),
                    "metadata_policy": {"openid_relying_party": {
                        "token_endpoint_auth_method": {"one_of": ["private_key_jwt"], "essential": true},
                        "grant_types": {"subset_of": ["authorization_code", "refresh_token"]},
                        "contacts": {"add": ["helpdesk@ta.example.org"]}}}}),
                &self.about_int,
            ),
        );
        self.server.put(
            &configuration(&int),
            Self::statement(
                &self.int,
                json!({"iss": int, "sub": int, "iat": iat, "exp": exp, "jwks": self.int.jwks(),
                    "authority_hints": [ta],
                    "metadata": {"federation_entity": {"federation_fetch_endpoint": fetch(&int)}}}),
                &self.int_configuration,
            ),
        );
        let (iat, exp) = times(1800);
        self.server.put(
            fetch_url(&fetch(&int), &rp).unwrap().as_str(),
            Self::statement(
                self.about_rp_signer.as_ref().unwrap_or(&self.int),
                json!({"iss": int, "sub": rp, "iat": iat, "exp": exp, "jwks": self.rp.jwks(),
                    "metadata_policy": {"openid_relying_party": {
                        "scope": {"subset_of": ["read"]}}},
                    "metadata": {"openid_relying_party": {"policy_uri": "https://int.example.org/policy"}}}),
                &self.about_rp,
            ),
        );
        let (iat, exp) = times(3600);
        self.server.put(
            &configuration(&rp),
            Self::statement(
                &self.rp,
                json!({"iss": rp, "sub": rp, "iat": iat, "exp": exp, "jwks": self.rp.jwks(),
                    "authority_hints": [int],
                    "metadata": {"openid_relying_party": {
                        "client_name": "Federated Agent",
                        "client_registration_types": ["automatic"],
                        "redirect_uris": [REDIRECT],
                        "grant_types": ["authorization_code", "refresh_token"],
                        "response_types": ["code"],
                        "scope": "read write",
                        "token_endpoint_auth_method": "private_key_jwt",
                        "jwks": self.rp_client.jwks()}}}),
                &self.leaf,
            ),
        );
    }

    /// A server trusting this federation's anchor, fetching from its host.
    async fn app(&self, files: &Files, adjust: impl FnOnce(&mut RawConfig)) -> TestApp {
        let cert = self.server.https.cert_path.clone();
        federated_app(files, (&self.ta_id(), self.ta.jwks()), move |c| {
            c.metadata_documents.allow_hosts = vec!["127.0.0.1".into()];
            c.metadata_documents.extra_roots = vec![cert];
            adjust(c);
        })
        .await
    }

    /// A PAR as the leaf, authenticated with `private_key_jwt`.
    async fn push(&self, app: &TestApp) -> reqwest::Response {
        let rp = self.rp_id();
        let assertion = self.rp_client.assertion(&rp, &app.base, app.now());
        app.post_form(
            "/par",
            &[
                ("client_id", &rp),
                ("response_type", "code"),
                ("redirect_uri", REDIRECT),
                ("state", "s"),
                ("scope", "read"),
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "S256"),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", &assertion),
            ],
        )
        .await
    }
}

#[tokio::test]
async fn a_federation_leaf_registers_automatically_and_completes_the_flow() {
    // Arrange
    let fed = Federation::start().await;
    let files = Files::new();
    let app = fed.app(&files, |_| {}).await;
    fed.publish(app.now());
    let rp = fed.rp_id();

    // Act: PAR as the leaf, the user's login and consent, the token.
    let res = fed.push(&app).await;
    assert_eq!(res.status(), 201, "{:?}", res.text().await);
    let request_uri = res.json::<Value>().await.unwrap()["request_uri"]
        .as_str()
        .unwrap()
        .to_owned();
    let browser = app.browser();
    app.login(&browser, &rp, &request_uri).await;
    let consent = app.consent_page(&browser, &rp, &request_uri).await;
    assert!(consent.contains("Federated Agent"), "{consent}");
    assert!(
        consent.contains("member of a federation this server trusts"),
        "{consent}"
    );
    let to = app.decide(&browser, &rp, &request_uri, "approve").await;
    let code = query(&to, "code").unwrap();
    let assertion = fed.rp_client.assertion(&rp, &app.base, app.now());
    let res = app
        .redeem(
            &code,
            &[
                ("client_id", &rp),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", &assertion),
            ],
        )
        .await;

    // Assert
    assert_eq!(res.status(), 200, "{:?}", res.text().await);
    let tokens: Value = res.json().await.unwrap();
    let info = app
        .introspect(tokens["access_token"].as_str().unwrap())
        .await;
    assert_eq!(info["active"], true);
    assert_eq!(info["client_id"], rp.as_str());
    assert_eq!(info["client_kind"], "federation");
    assert_eq!(info["scope"], "read");
    // The resolved metadata: the intermediate's metadata and both policies applied.
    let md = &info["client_metadata"];
    assert_eq!(md["token_endpoint_auth_method"], "private_key_jwt");
    assert_eq!(md["policy_uri"], "https://int.example.org/policy");
    assert_eq!(md["scope"], "read");
    // Nothing is stored per federation client.
    assert!(app.ctx.store.find_client(&rp).await.unwrap().is_none());
}

#[tokio::test]
async fn a_federation_client_must_prove_its_keys_with_private_key_jwt() {
    let fed = Federation::start().await;
    let files = Files::new();
    let app = fed.app(&files, |_| {}).await;
    fed.publish(app.now());
    let rp = fed.rp_id();

    let unsigned = app
        .post_form(
            "/par",
            &[
                ("client_id", rp.as_str()),
                ("response_type", "code"),
                ("redirect_uri", REDIRECT),
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "S256"),
            ],
        )
        .await;
    let other_key = TestKey::new().assertion(&rp, &app.base, app.now());
    let wrong_key = app
        .post_form(
            "/par",
            &[
                ("client_id", rp.as_str()),
                ("response_type", "code"),
                ("redirect_uri", REDIRECT),
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "S256"),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", &other_key),
            ],
        )
        .await;

    assert_error(unsigned, 401, "invalid_client").await;
    assert_error(wrong_key, 401, "invalid_client").await;
}

/// PAR as the leaf must fail with `invalid_client` and a description
/// containing `expected`; nothing is stored.
async fn refused(fed: &Federation, app: &TestApp, expected: &str) {
    let res = fed.push(app).await;
    let description = assert_error(res, 401, "invalid_client").await;
    assert!(
        description.contains(expected),
        "`{description}` does not say `{expected}`"
    );
    assert!(app
        .ctx
        .store
        .find_client(&fed.rp_id())
        .await
        .unwrap()
        .is_none());
    assert_eq!(app.stats().await.grants, 0);
}

#[tokio::test]
async fn a_statement_signed_by_a_key_its_superior_did_not_vouch_for_is_refused() {
    let mut fed = Federation::start().await;
    fed.about_rp_signer = Some(TestKey::new());
    let files = Files::new();
    let app = fed.app(&files, |_| {}).await;
    fed.publish(app.now());

    refused(
        &fed,
        &app,
        "is not signed by a key its superior vouches for",
    )
    .await;
}

#[tokio::test]
async fn an_expired_statement_is_refused() {
    let mut fed = Federation::start().await;
    let files = Files::new();
    let app = fed.app(&files, |_| {}).await;
    fed.about_rp = json!({"exp": app.now() - 60});
    fed.publish(app.now());

    refused(&fed, &app, "has expired").await;
}

#[tokio::test]
async fn a_chain_to_an_anchor_the_server_does_not_trust_is_refused() {
    let fed = Federation::start().await;
    let files = Files::new();
    let cert = fed.server.https.cert_path.clone();
    let other = TestKey::new();
    let app = federated_app(&files, ("https://ta.example.org", other.jwks()), move |c| {
        c.metadata_documents.allow_hosts = vec!["127.0.0.1".into()];
        c.metadata_documents.extra_roots = vec![cert];
    })
    .await;
    fed.publish(app.now());

    refused(&fed, &app, "no trust anchor this server trusts").await;
}

#[tokio::test]
async fn metadata_that_violates_the_anchors_policy_is_refused() {
    let mut fed = Federation::start().await;
    let files = Files::new();
    let app = fed.app(&files, |_| {}).await;
    fed.leaf = json!({"metadata": {"openid_relying_party": {
        "client_registration_types": ["automatic"],
        "redirect_uris": [REDIRECT],
        "token_endpoint_auth_method": "client_secret_basic",
        "jwks": fed.rp_client.jwks()}}});
    fed.publish(app.now());

    refused(&fed, &app, "violates the federation's policy").await;
}

#[tokio::test]
async fn authority_hints_that_loop_are_refused() {
    let mut fed = Federation::start().await;
    let files = Files::new();
    let app = fed.app(&files, |_| {}).await;
    fed.int_configuration = json!({"authority_hints": [fed.rp_id()]});
    fed.publish(app.now());

    refused(&fed, &app, "loop back to").await;
}

#[tokio::test]
async fn a_chain_longer_than_allowed_is_refused() {
    let fed = Federation::start().await;
    let files = Files::new();
    let app = fed
        .app(&files, |c| {
            c.federation.as_mut().unwrap().max_chain_length = 1;
        })
        .await;
    fed.publish(app.now());

    refused(&fed, &app, "too long").await;
}

#[tokio::test]
async fn a_client_without_a_required_trust_mark_is_refused_and_one_with_it_registers() {
    // Arrange: the server requires a trust mark by a configured issuer.
    let mut fed = Federation::start().await;
    let files = Files::new();
    let issuer = TestKey::new();
    let trust_mark_type = "https://ta.example.org/trust-marks/certified";
    let issuer_id = "https://tmi.example.org";
    let required = RawTrustMark {
        trust_mark_type: trust_mark_type.into(),
        issuer: RawKeyedEntity {
            entity_id: issuer_id.into(),
            jwks: Some(issuer.jwks()),
            jwks_file: None,
        },
    };
    let app = fed
        .app(&files, move |c| {
            c.federation.as_mut().unwrap().required_trust_marks = vec![required];
        })
        .await;
    fed.publish(app.now());

    // Act and assert: without the trust mark.
    refused(&fed, &app, "trust mark").await;

    // With it (the server caches no failure).
    let mark = issuer.sign(
        json!({"typ": TRUST_MARK_TYP, "kid": issuer.jkt}),
        &json!({"iss": issuer_id, "sub": fed.rp_id(), "trust_mark_type": trust_mark_type,
            "iat": app.now() - 10, "exp": app.now() + 3600, "jti": random_id()}),
    );
    fed.leaf = json!({"trust_marks": [{"trust_mark_type": trust_mark_type, "trust_mark": mark}]});
    fed.publish(app.now());
    let res = fed.push(&app).await;
    assert_eq!(res.status(), 201, "{:?}", res.text().await);
}

#[tokio::test]
async fn a_resolved_chain_is_reused_until_its_earliest_exp() {
    // Arrange: a chain resolved once.
    let fed = Federation::start().await;
    let files = Files::new();
    let app = fed.app(&files, |_| {}).await;
    fed.publish(app.now());
    let first = fed.push(&app).await;
    assert_eq!(first.status(), 201, "{:?}", first.text().await);

    // Act and assert: with nothing served any more, the cached chain holds.
    fed.server.statements.lock().unwrap().clear();
    let cached = fed.push(&app).await;
    assert_eq!(cached.status(), 201, "{:?}", cached.text().await);

    // Past the earliest exp (the intermediate's statement, 30 minutes), the
    // chain is built again, from the same statements, now expired.
    fed.publish(app.now());
    app.advance(1900);
    refused(&fed, &app, "has expired").await;
}

#[tokio::test]
async fn with_federation_on_a_url_serving_no_entity_configuration_is_a_metadata_document() {
    let fed = Federation::start().await;
    let docs = crate::metadata_document::DocServer::start().await;
    let client_id = docs.client_id();
    docs.serve(&client_id, json!({}));
    let files = Files::new();
    let doc_cert = docs.https.cert_path.clone();
    let app = fed
        .app(&files, move |c| {
            c.metadata_documents.extra_roots.push(doc_cert)
        })
        .await;

    let res = crate::metadata_document::push_for(&app, &client_id).await;

    assert_eq!(res.status(), 201, "{:?}", res.text().await);
}

#[tokio::test]
async fn a_federation_client_cannot_start_in_the_front_channel() {
    let fed = Federation::start().await;
    let files = Files::new();
    let app = fed.app(&files, |_| {}).await;
    fed.publish(app.now());
    let mut url = url::Url::parse(&app.url("/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", &fed.rp_id())
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("state", "s")
        .append_pair("code_challenge", CHALLENGE)
        .append_pair("code_challenge_method", "S256");

    let res = app.browser().get(url.as_str()).send().await.unwrap();

    let page = assert_error_page(res, "invalid_request").await;
    assert!(page.contains("pushed authorization request"), "{page}");
}

#[tokio::test]
async fn superiors_statements_are_reused_until_their_exp() {
    // Arrange: a chain resolved once; its leaf's statement expires first.
    let fed = Federation::start().await;
    let files = Files::new();
    let app = fed.app(&files, |_| {}).await;
    fed.publish(app.now());
    let first = fed.push(&app).await;
    assert_eq!(first.status(), 201, "{:?}", first.text().await);

    // Act: past the leaf statement's exp, only the leaf's configuration
    // and its superior's statement about it are served, both fresh.
    app.advance(1900);
    let keep = [
        format!("{}/.well-known/openid-federation", fed.rp_id()),
        fetch_url(&format!("{}/fetch", fed.int_id()), &fed.rp_id())
            .unwrap()
            .to_string(),
    ];
    fed.publish(app.now());
    fed.server
        .statements
        .lock()
        .unwrap()
        .retain(|path, _| keep.iter().any(|k| k.ends_with(path.as_str())));
    let again = fed.push(&app).await;

    // Assert: the anchor's and the intermediate's statements came from the cache.
    assert_eq!(again.status(), 201, "{:?}", again.text().await);
}

#[tokio::test]
async fn authority_hints_are_tried_in_order_until_one_leads_to_the_anchor() {
    // Arrange: the leaf's first superior does not exist.
    let mut fed = Federation::start().await;
    let files = Files::new();
    let app = fed.app(&files, |_| {}).await;
    fed.leaf = json!({"authority_hints": [fed.server.id("gone"), fed.int_id()]});
    fed.publish(app.now());

    // Act
    let res = fed.push(&app).await;

    // Assert
    assert_eq!(res.status(), 201, "{:?}", res.text().await);
}

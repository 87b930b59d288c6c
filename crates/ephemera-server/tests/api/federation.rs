//! OpenID Federation 1.0: the server's own Entity Configuration, and
//! clients that register automatically through a trust chain (a trust
//! anchor, an intermediate and a leaf, served over https on 127.0.0.1 with a
//! test CA, keys minted here).

use base64::Engine as _;
use ephemera_proto::federation::{EntityStatement, ENTITY_STATEMENT_MEDIA_TYPE};
use ephemera_server::config::federation::{RawFederation, RawKeyedEntity};
use p256::pkcs8::EncodePrivateKey as _;
use serde_json::{json, Value};
use tempfile::TempDir;

use crate::helpers::*;
use crate::keys::TestKey;

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

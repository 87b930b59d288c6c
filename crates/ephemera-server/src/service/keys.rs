//! Signing keys: an ES256 key is created on first start and kept in the
//! store; the JWKS publishes the public halves.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ephemera_proto::jose::thumbprint;
use p256::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::model::{SigningKey, Timestamp};
use crate::store::{Store, StoreError};

/// The keys in force, parsed once at start-up.
pub struct KeySet {
    pub signing: Vec<(SigningKey, p256::ecdsa::SigningKey)>,
    jwks: Value,
    /// Secret for stateless DPoP nonces, derived from the newest signing key
    /// so every node with the same keys makes the same nonces.
    nonce_secret: [u8; 32],
}

impl KeySet {
    /// The DPoP nonce of the time window `window` (RFC 9449 §8).
    pub fn dpop_nonce(&self, window: i64) -> String {
        let mut h = Sha256::new();
        h.update(self.nonce_secret);
        h.update(window.to_be_bytes());
        h.update(self.nonce_secret);
        URL_SAFE_NO_PAD.encode(&h.finalize()[..18])
    }

    /// The JWK Set document (RFC 7517 §5).
    pub fn jwks(&self) -> &Value {
        &self.jwks
    }
}

/// Loads the active keys, creating the first one if there is none.
pub async fn ensure(store: &dyn Store, now: Timestamp) -> Result<KeySet, StoreError> {
    let mut keys = store.active_signing_keys().await?;
    if keys.is_empty() {
        let key = generate(now)?;
        tracing::info!(kid = %key.kid, "created the first ES256 signing key");
        store.insert_signing_key(&key).await?;
        keys = store.active_signing_keys().await?;
    }
    let mut signing = Vec::new();
    for key in keys {
        let parsed = p256::ecdsa::SigningKey::from_pkcs8_der(&key.private_der)
            .map_err(|e| StoreError::Corrupt(format!("signing key {}: {e}", key.kid)))?;
        signing.push((key, parsed));
    }
    let jwks =
        json!({ "keys": signing.iter().map(|(k, _)| k.public_jwk.clone()).collect::<Vec<_>>() });
    let mut h = Sha256::new();
    h.update(b"ephemera dpop nonce");
    if let Some((k, _)) = signing.first() {
        h.update(&k.private_der);
    }
    Ok(KeySet {
        signing,
        jwks,
        nonce_secret: h.finalize().into(),
    })
}

fn generate(now: Timestamp) -> Result<SigningKey, StoreError> {
    let secret = p256::SecretKey::random(&mut rand::rngs::OsRng);
    let der = secret
        .to_pkcs8_der()
        .map_err(|e| StoreError::Corrupt(format!("encoding a new key: {e}")))?;
    let jwk: Value = serde_json::from_str(&secret.public_key().to_jwk_string())
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let kid = jwk
        .as_object()
        .and_then(thumbprint)
        .ok_or_else(|| StoreError::Corrupt("new key has no coordinates".into()))?;
    let mut public = jwk;
    if let Value::Object(m) = &mut public {
        m.insert("kid".into(), Value::from(kid.as_str()));
        m.insert("alg".into(), Value::from("ES256"));
        m.insert("use".into(), Value::from("sig"));
    }
    Ok(SigningKey {
        kid,
        alg: "ES256".into(),
        private_der: der.as_bytes().to_vec(),
        public_jwk: public,
        created_at: now,
    })
}

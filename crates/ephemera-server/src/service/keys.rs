//! Signing keys: an ES256 key is created on first start and kept in the
//! store, its private half sealed with `keys.encryption_key` when one is
//! configured; `ephemera keys rotate` adds a new key and retires the old
//! ones, which the JWKS keeps publishing until what they signed has expired.
//! Every node reloads the keys periodically, so a rotation on one node
//! reaches all of them within the reload interval.

use std::sync::{Arc, RwLock};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};
use chacha20poly1305::XChaCha20Poly1305;
use ephemera_proto::jose::thumbprint;
use p256::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::model::{SigningKey, Timestamp};
use crate::store::{Store, StoreError};

/// Marks a sealed private key: magic, 24-byte nonce, ciphertext.
const SEALED: &[u8] = b"EPHK1";

/// Seals and opens private keys with the configured key-encryption key.
#[derive(Clone)]
pub struct KeyCipher(Option<[u8; 32]>);

impl KeyCipher {
    pub fn new(key: Option<[u8; 32]>) -> Self {
        Self(key)
    }

    fn seal(&self, der: &[u8]) -> Result<Vec<u8>, StoreError> {
        let Some(key) = &self.0 else {
            return Ok(der.to_vec());
        };
        let cipher = XChaCha20Poly1305::new(key.into());
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = cipher
            .encrypt(&nonce, der)
            .map_err(|_| StoreError::Corrupt("sealing a signing key failed".into()))?;
        Ok([SEALED, &nonce[..], &sealed].concat())
    }

    fn open(&self, kid: &str, stored: &[u8]) -> Result<Vec<u8>, StoreError> {
        let Some(body) = stored.strip_prefix(SEALED) else {
            return Ok(stored.to_vec());
        };
        let Some(key) = &self.0 else {
            return Err(StoreError::Corrupt(format!(
                "signing key {kid} is encrypted: set keys.encryption_key (EPHEMERA_KEYS__ENCRYPTION_KEY)"
            )));
        };
        if body.len() < 24 {
            return Err(StoreError::Corrupt(format!(
                "signing key {kid} is truncated"
            )));
        }
        let (nonce, sealed) = body.split_at(24);
        XChaCha20Poly1305::new(key.into())
            .decrypt(nonce.into(), sealed)
            .map_err(|_| {
                StoreError::Corrupt(format!(
                    "signing key {kid} does not open with keys.encryption_key"
                ))
            })
    }
}

/// The keys in force.
pub struct KeySet {
    /// Keys that sign, newest first.
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

    /// A JWS in compact serialization (RFC 7515 §7.1) of `claims`, signed
    /// with the newest signing key (ES256, RFC 7518 §3.4: the signature is
    /// R and S, 32 bytes each). `None` when no key signs, which `ensure`
    /// prevents.
    pub fn sign(&self, typ: &str, claims: &Value) -> Option<String> {
        use p256::ecdsa::signature::Signer as _;
        let (meta, key) = self.signing.first()?;
        let header = json!({ "alg": "ES256", "kid": meta.kid, "typ": typ });
        let mut jws = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).ok()?);
        jws.push('.');
        URL_SAFE_NO_PAD.encode_string(serde_json::to_vec(claims).ok()?, &mut jws);
        let signature: p256::ecdsa::Signature = key.sign(jws.as_bytes());
        jws.push('.');
        URL_SAFE_NO_PAD.encode_string(signature.to_bytes(), &mut jws);
        Some(jws)
    }

    /// The JWK Set document (RFC 7517 §5): signing keys and retired keys
    /// still within the lifetime of what they signed.
    pub fn jwks(&self) -> &Value {
        &self.jwks
    }
}

/// The node's current keys, swapped as a whole on reload.
pub struct KeyRing {
    current: RwLock<Arc<KeySet>>,
    cipher: KeyCipher,
    /// How long a retired key stays published, seconds.
    publish_after_retirement: i64,
}

impl KeyRing {
    pub fn get(&self) -> Arc<KeySet> {
        match self.current.read() {
            Ok(k) => k.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Reads the keys again (another node may have rotated them).
    pub async fn reload(&self, store: &dyn Store, now: Timestamp) -> Result<(), StoreError> {
        let set = load(store, &self.cipher, now, self.publish_after_retirement).await?;
        if let Ok(mut current) = self.current.write() {
            *current = Arc::new(set);
        }
        Ok(())
    }
}

/// Loads the keys, creating the first one if there is none.
pub async fn ensure(
    store: &dyn Store,
    cipher: KeyCipher,
    now: Timestamp,
    publish_after_retirement: i64,
) -> Result<KeyRing, StoreError> {
    if store
        .signing_keys(now)
        .await?
        .iter()
        .all(|k| k.retired_at.is_some())
    {
        // Several nodes may get here at once on an empty database: only one
        // key is stored, and every node loads that one.
        let key = generate(&cipher, now)?;
        if store.insert_first_signing_key(&key).await? {
            tracing::info!(kid = %key.kid, "created the first ES256 signing key");
        }
    }
    let set = load(store, &cipher, now, publish_after_retirement).await?;
    Ok(KeyRing {
        current: RwLock::new(Arc::new(set)),
        cipher,
        publish_after_retirement,
    })
}

/// Adds a new signing key and retires every other one; returns the new kid.
pub async fn rotate(
    store: &dyn Store,
    cipher: &KeyCipher,
    now: Timestamp,
) -> Result<String, StoreError> {
    let key = generate(cipher, now)?;
    store.insert_signing_key(&key).await?;
    store.retire_signing_keys(&key.kid, now).await?;
    Ok(key.kid)
}

async fn load(
    store: &dyn Store,
    cipher: &KeyCipher,
    now: Timestamp,
    publish_after_retirement: i64,
) -> Result<KeySet, StoreError> {
    let keys = store.signing_keys(now - publish_after_retirement).await?;
    let mut signing = Vec::new();
    let mut published = Vec::new();
    for key in keys {
        published.push(key.public_jwk.clone());
        if key.retired_at.is_none() {
            let der = cipher.open(&key.kid, &key.private_der)?;
            let parsed = p256::ecdsa::SigningKey::from_pkcs8_der(&der)
                .map_err(|e| StoreError::Corrupt(format!("signing key {}: {e}", key.kid)))?;
            signing.push((key, parsed));
        }
    }
    let mut h = Sha256::new();
    h.update(b"ephemera dpop nonce");
    if let Some((_, k)) = signing.first() {
        h.update(k.to_bytes());
    }
    Ok(KeySet {
        signing,
        jwks: json!({ "keys": published }),
        nonce_secret: h.finalize().into(),
    })
}

fn generate(cipher: &KeyCipher, now: Timestamp) -> Result<SigningKey, StoreError> {
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
        private_der: cipher.seal(der.as_bytes())?,
        public_jwk: public,
        created_at: now,
        retired_at: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_keys_open_only_with_the_same_key() {
        let cipher = KeyCipher::new(Some([7; 32]));
        let sealed = cipher.seal(b"private").unwrap_or_default();
        assert!(sealed.starts_with(SEALED));
        assert!(!sealed.windows(7).any(|w| w == b"private"));
        assert_eq!(cipher.open("k", &sealed).ok(), Some(b"private".to_vec()));
        assert!(KeyCipher::new(Some([8; 32])).open("k", &sealed).is_err());
        assert!(KeyCipher::new(None).open("k", &sealed).is_err());
        assert_eq!(
            KeyCipher::new(None).open("k", b"0plain").ok(),
            Some(b"0plain".to_vec())
        );
    }
}

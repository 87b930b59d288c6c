//! Secrets the server hands out (tokens, codes, request_uris, client secrets,
//! session ids): generation, hashing for storage, constant-time comparison.
//!
//! Each is 256 bits from the operating system's CSPRNG, so SHA-256 is the
//! right storage hash: a slow hash adds nothing to a high-entropy secret.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A freshly generated secret, shown once to its holder; never logged.
pub struct Secret(String);

impl Secret {
    /// 32 random bytes, base64url without padding (43 characters).
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        // The thread-local CSPRNG (ChaCha, seeded and reseeded from the OS):
        // no system call per secret.
        rand::thread_rng().fill_bytes(&mut bytes);
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Wraps a secret received from outside (an operator's client secret).
    pub fn from_string(s: String) -> Self {
        Self(s)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }

    pub fn hash(&self) -> SecretHash {
        SecretHash::of(&self.0)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// The SHA-256 of a secret: what storage keeps and looks up by.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SecretHash([u8; 32]);

impl SecretHash {
    pub fn of(secret: &str) -> Self {
        Self(Sha256::digest(secret.as_bytes()).into())
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(Self)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Whether `secret` hashes to this value, compared in constant time.
    pub fn verify(&self, secret: &str) -> bool {
        Self::of(secret).0.ct_eq(&self.0).into()
    }
}

impl std::fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretHash(..)")
    }
}

/// Constant-time equality of two strings (CSRF tokens).
pub fn ct_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// Constant-time equality of two byte strings (hashes).
pub fn ct_eq_bytes(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// A value derived from a secret for another purpose (the CSRF token of a
/// browser cookie): SHA-256 over a label and the secret, base64url.
pub fn derive(label: &str, secret: &str) -> String {
    let mut h = Sha256::new();
    h.update(label.as_bytes());
    h.update([0u8]);
    h.update(secret.as_bytes());
    URL_SAFE_NO_PAD.encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_are_distinct_and_verify_against_their_hash() {
        let a = Secret::generate();
        let b = Secret::generate();
        assert_ne!(a.expose(), b.expose());
        assert_eq!(a.expose().len(), 43);
        assert!(a.hash().verify(a.expose()));
        assert!(!a.hash().verify(b.expose()));
    }

    #[test]
    fn debug_output_never_shows_the_secret() {
        let s = Secret::generate();
        assert!(!format!("{s:?}").contains(s.expose()));
    }
}

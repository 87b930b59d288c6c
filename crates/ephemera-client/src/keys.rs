//! ES256 keys the client signs with, and [`ClientKey`]: the key of a
//! `private_key_jwt` client (RFC 7523 §2.2) and the assertions it signs.
//!
//! Both [`ClientKey`] and [`DpopKey`](crate::DpopKey) wrap the same
//! `EcKey`: a P-256 private key, its public JWK and that JWK's RFC 7638
//! thumbprint, computed once. Signing is p256's ECDSA (RFC 6979
//! deterministic nonces); the compact JWS around it (RFC 7515 §3.1) is three
//! base64url strings, and `ephemera_proto`'s verifiers (jsonwebtoken) are what
//! the tests check it against.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use p256::ecdsa::signature::Signer as _;
use p256::elliptic_curve::zeroize::Zeroizing;
use p256::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _, LineEnding};
use rand::RngCore as _;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};

/// How long a client assertion is valid: RFC 7523 §3 wants a short `exp`,
/// and the assertion is made fresh for every request.
pub const ASSERTION_LIFETIME_SECS: i64 = 60;

/// A P-256 private key with its public JWK and thumbprint.
pub(crate) struct EcKey {
    signing: p256::ecdsa::SigningKey,
    /// `{"crv","kty","x","y"}` only: no private member, no `kid`.
    public_jwk: Value,
    /// RFC 7638 SHA-256 thumbprint of `public_jwk`, base64url.
    thumbprint: String,
}

impl EcKey {
    pub(crate) fn generate() -> Self {
        Self::from_signing(p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng))
    }

    pub(crate) fn from_pkcs8_pem(pem: &str) -> Result<Self> {
        let signing = p256::ecdsa::SigningKey::from_pkcs8_pem(pem)
            .map_err(|e| Error::Key(format!("not a PKCS #8 P-256 private key: {e}")))?;
        Ok(Self::from_signing(signing))
    }

    fn from_signing(signing: p256::ecdsa::SigningKey) -> Self {
        // SEC 1 §2.3.3 uncompressed point: 0x04 || X (32 bytes) || Y (32 bytes).
        let point = signing.verifying_key().to_encoded_point(false);
        let bytes = point.as_bytes();
        let x = URL_SAFE_NO_PAD.encode(&bytes[1..33]);
        let y = URL_SAFE_NO_PAD.encode(&bytes[33..65]);
        // RFC 7638 §3.2: the required members in lexicographic order, no
        // whitespace. The unit tests check this against
        // `ephemera_proto::jose::thumbprint`, which the server uses.
        let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        let thumbprint = URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()));
        Self {
            signing,
            public_jwk: json!({"kty": "EC", "crv": "P-256", "x": x, "y": y}),
            thumbprint,
        }
    }

    pub(crate) fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>> {
        self.signing
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| Error::Key(format!("encoding the private key: {e}")))
    }

    pub(crate) fn public_jwk(&self) -> &Value {
        &self.public_jwk
    }

    pub(crate) fn thumbprint(&self) -> &str {
        &self.thumbprint
    }

    /// A compact JWS (RFC 7515 §7.1) over `claims` with `header`, which must
    /// name `"alg": "ES256"`. The signature is `R || S`, 64 bytes
    /// (RFC 7518 §3.4), not DER.
    pub(crate) fn sign(&self, header: &Value, claims: &Value) -> Result<String> {
        let encode = |value: &Value| -> Result<String> {
            let bytes = serde_json::to_vec(value)
                .map_err(|e| Error::Key(format!("encoding a JWT: {e}")))?;
            Ok(URL_SAFE_NO_PAD.encode(bytes))
        };
        let signing_input = format!("{}.{}", encode(header)?, encode(claims)?);
        let signature: p256::ecdsa::Signature = self
            .signing
            .try_sign(signing_input.as_bytes())
            .map_err(|e| Error::Key(format!("signing: {e}")))?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.to_bytes())
        ))
    }
}

impl std::fmt::Debug for EcKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EcKey")
            .field("thumbprint", &self.thumbprint)
            .finish_non_exhaustive()
    }
}

/// Seconds since the Unix epoch, for `iat` and `exp`.
pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// A fresh `jti`: 32 random bytes, base64url (256 bits; RFC 9449 §4.2 and
/// RFC 7523 §3 want it unguessable and unique).
pub(crate) fn random_jti() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The ES256 key of a `private_key_jwt` client (RFC 7523 §2.2): its public
/// half goes in the client's `jwks`, and it signs a fresh client assertion
/// for every back-channel request. Its `kid` is its RFC 7638 thumbprint.
///
/// `Clone` shares the key (it is reference-counted), it does not copy it:
/// an identity and every [`PendingAuthorization`](crate::PendingAuthorization)
/// made from it hold the same key. `Debug` shows only the `kid`.
#[derive(Clone)]
pub struct ClientKey {
    key: Arc<EcKey>,
}

impl ClientKey {
    /// A new random P-256 key.
    pub fn generate() -> Self {
        Self {
            key: Arc::new(EcKey::generate()),
        }
    }

    /// Loads a key saved with [`to_pkcs8_pem`](Self::to_pkcs8_pem): a
    /// registered client must sign with the key the server has on file.
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self> {
        Ok(Self {
            key: Arc::new(EcKey::from_pkcs8_pem(pem)?),
        })
    }

    /// The private key as PKCS #8 PEM, wiped from memory when dropped.
    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>> {
        self.key.to_pkcs8_pem()
    }

    /// The key id: the RFC 7638 thumbprint of the public key.
    pub fn kid(&self) -> &str {
        self.key.thumbprint()
    }

    /// The public JWK with `kid`, `alg` `ES256` and `use` `sig`.
    pub fn public_jwk(&self) -> Value {
        let mut jwk = self.key.public_jwk().clone();
        if let Value::Object(members) = &mut jwk {
            members.insert("kid".into(), Value::from(self.kid()));
            members.insert("alg".into(), Value::from("ES256"));
            members.insert("use".into(), Value::from("sig"));
        }
        jwk
    }

    /// The JWK Set to register or push as the client's `jwks`
    /// (RFC 7591 §2): `{"keys": [public_jwk]}`.
    pub fn jwks(&self) -> Value {
        json!({ "keys": [self.public_jwk()] })
    }

    /// A client assertion (RFC 7523 §3) valid for
    /// [`ASSERTION_LIFETIME_SECS`]: `iss` = `sub` = `client_id`,
    /// `aud` = `audience` (Ephemera wants its issuer identifier), a fresh
    /// `jti`, and the `kid` in the header so the server picks the key.
    pub fn assertion(&self, client_id: &str, audience: &str) -> Result<String> {
        self.assertion_at(client_id, audience, now())
    }

    pub(crate) fn assertion_at(&self, client_id: &str, audience: &str, now: i64) -> Result<String> {
        let header = json!({"alg": "ES256", "typ": "JWT", "kid": self.kid()});
        let claims = json!({
            "iss": client_id,
            "sub": client_id,
            "aud": audience,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME_SECS,
            "jti": random_jti(),
        });
        self.key.sign(&header, &claims)
    }
}

impl std::fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientKey")
            .field("kid", &self.kid())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use ephemera_proto::assertion::{self, parse_jwks, AssertionError, Expectations};
    use ephemera_proto::jose;
    use ephemera_proto::PUSHED_CLIENT_URN;

    const ISSUER: &str = "https://as.example";

    fn expect(now: i64) -> Expectations<'static> {
        Expectations {
            client_id: PUSHED_CLIENT_URN,
            issuer: ISSUER,
            now,
            max_lifetime: 300,
            leeway: 5,
        }
    }

    #[test]
    fn an_assertion_verifies_with_the_published_jwks() {
        let key = ClientKey::generate();
        let keys = parse_jwks(&key.jwks()).unwrap();

        let signed = key.assertion(PUSHED_CLIENT_URN, ISSUER).unwrap();
        let verified = assertion::verify(&signed, &keys, &expect(now())).unwrap();

        assert_eq!(verified.jkt, key.kid());
        assert!(verified.exp > now() && verified.exp <= now() + ASSERTION_LIFETIME_SECS);
        assert_eq!(jose::header(&signed).unwrap()["kid"], key.kid());
        let second = key.assertion(PUSHED_CLIENT_URN, ISSUER).unwrap();
        let again = assertion::verify(&second, &keys, &expect(now())).unwrap();
        assert_ne!(verified.jti, again.jti);
    }

    #[test]
    fn an_assertion_fails_with_another_key_client_or_audience() {
        let key = ClientKey::generate();
        let other = ClientKey::generate();
        let signed = key.assertion(PUSHED_CLIENT_URN, ISSUER).unwrap();

        let with_other_key =
            assertion::verify(&signed, &parse_jwks(&other.jwks()).unwrap(), &expect(now()));
        let keys = parse_jwks(&key.jwks()).unwrap();
        let for_other_client = key.assertion("someone-else", ISSUER).unwrap();
        let for_other_audience = key.assertion(PUSHED_CLIENT_URN, "https://x").unwrap();

        assert_eq!(with_other_key, Err(AssertionError::UnknownKey));
        assert_eq!(
            assertion::verify(&for_other_client, &keys, &expect(now())),
            Err(AssertionError::Subject)
        );
        assert_eq!(
            assertion::verify(&for_other_audience, &keys, &expect(now())),
            Err(AssertionError::Audience(ISSUER.to_owned()))
        );
    }

    #[test]
    fn an_old_assertion_has_expired() {
        let key = ClientKey::generate();
        let keys = parse_jwks(&key.jwks()).unwrap();
        let old = key
            .assertion_at(PUSHED_CLIENT_URN, ISSUER, now() - 120)
            .unwrap();
        assert_eq!(
            assertion::verify(&old, &keys, &expect(now())),
            Err(AssertionError::Expired)
        );
    }

    #[test]
    fn the_kid_is_the_rfc7638_thumbprint_and_the_jwks_is_public() {
        let key = ClientKey::generate();
        let jwk = key.public_jwk();
        let parsed = jose::PublicJwk::parse(&jwk).unwrap();

        assert_eq!(parsed.thumbprint, key.kid());
        assert_eq!(parsed.kid(), Some(key.kid()));
        assert_eq!(jwk["alg"], "ES256");
        assert_eq!(jwk["use"], "sig");
        assert_eq!(jwk["kty"], "EC");
        assert_eq!(jwk["crv"], "P-256");
        assert!(jwk.get("d").is_none());
        assert_eq!(key.jwks()["keys"][0], jwk);
    }

    #[test]
    fn a_key_survives_a_pem_round_trip() {
        let key = ClientKey::generate();
        let pem = key.to_pkcs8_pem().unwrap();
        let loaded = ClientKey::from_pkcs8_pem(&pem).unwrap();

        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert_eq!(loaded.kid(), key.kid());
        assert!(matches!(
            ClientKey::from_pkcs8_pem("nope"),
            Err(Error::Key(_))
        ));
    }

    #[test]
    fn debug_output_never_shows_the_private_key() {
        let key = ClientKey::generate();
        let private = URL_SAFE_NO_PAD.encode(key.key.signing.to_bytes());
        let printed = format!("{key:?}");
        assert!(printed.contains(key.kid()));
        assert!(!printed.contains(&private));
    }
}

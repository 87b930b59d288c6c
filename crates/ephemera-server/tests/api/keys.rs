//! Keys that sign DPoP proofs and client assertions in tests, with every
//! claim under the test's control (the happy paths use ephemera-client).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{EncodingKey, Header};
use p256::pkcs8::EncodePrivateKey as _;
use rand::RngCore as _;
use serde_json::{json, Value};

pub struct TestKey {
    secret: p256::SecretKey,
    encoding: EncodingKey,
    pub jwk: Value,
    pub jkt: String,
}

pub fn random_id() -> String {
    let mut b = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

impl TestKey {
    pub fn new() -> Self {
        let secret = p256::SecretKey::random(&mut rand::rngs::OsRng);
        let der = secret.clone().to_pkcs8_der().unwrap();
        let jwk: Value = serde_json::from_str(&secret.public_key().to_jwk_string()).unwrap();
        let jkt = ephemera_proto::jose::thumbprint(jwk.as_object().unwrap()).unwrap();
        Self {
            secret,
            encoding: EncodingKey::from_ec_der(der.as_bytes()),
            jwk,
            jkt,
        }
    }

    /// Signs `claims` with a header whose members `header` gives.
    pub fn sign(&self, header: Value, claims: &Value) -> String {
        let mut h: Header = serde_json::from_value(json!({"alg": "ES256"})).unwrap();
        let extra = header.as_object().unwrap();
        if let Some(t) = extra.get("typ") {
            h.typ = t.as_str().map(str::to_owned);
        }
        if let Some(k) = extra.get("kid") {
            h.kid = k.as_str().map(str::to_owned);
        }
        if let Some(j) = extra.get("jwk") {
            h.jwk = Some(serde_json::from_value(j.clone()).unwrap());
        }
        jsonwebtoken::encode(&h, claims, &self.encoding).unwrap()
    }

    /// Signs exactly this header and these claims (ES256), for headers no
    /// JOSE library would write (a private key in `jwk`).
    pub fn sign_raw(&self, header: &Value, claims: &Value) -> String {
        use p256::ecdsa::signature::Signer as _;
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let key = p256::ecdsa::SigningKey::from(&self.secret);
        let sig: p256::ecdsa::Signature = key.sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()))
    }

    /// A DPoP proof with the given claims.
    pub fn proof_with(&self, claims: Value) -> String {
        self.sign(json!({"typ": "dpop+jwt", "jwk": self.jwk}), &claims)
    }

    /// A fresh, valid DPoP proof for `htm` `htu` at time `now`.
    pub fn proof(&self, htu: &str, now: i64) -> String {
        self.proof_with(json!({"jti": random_id(), "htm": "POST", "htu": htu, "iat": now}))
    }

    pub fn jwks(&self) -> Value {
        let mut k = self.jwk.clone();
        k["kid"] = json!(self.jkt);
        k["alg"] = json!("ES256");
        json!({"keys": [k]})
    }

    /// A client assertion (RFC 7523) with the given claims.
    pub fn assertion_with(&self, claims: Value) -> String {
        self.sign(json!({"kid": self.jkt}), &claims)
    }

    /// A valid client assertion for `client_id` and audience `aud` at `now`.
    pub fn assertion(&self, client_id: &str, aud: &str, now: i64) -> String {
        self.assertion_with(json!({
            "iss": client_id, "sub": client_id, "aud": aud,
            "exp": now + 60, "iat": now, "jti": random_id(),
        }))
    }
}

/// An unsigned proof (`alg: none`), which must never be accepted.
pub fn alg_none_proof(jwk: &Value, htu: &str, now: i64) -> String {
    let header =
        URL_SAFE_NO_PAD.encode(json!({"typ": "dpop+jwt", "alg": "none", "jwk": jwk}).to_string());
    let claims = URL_SAFE_NO_PAD
        .encode(json!({"jti": random_id(), "htm": "POST", "htu": htu, "iat": now}).to_string());
    format!("{header}.{claims}.")
}

//! Test keys: a P-256 key that signs compact JWS with a `kid`.
#![allow(clippy::unwrap_used)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use p256::ecdsa::signature::Signer as _;
use serde_json::{json, Value};

pub struct Key {
    kid: String,
    key: p256::ecdsa::SigningKey,
}

impl Key {
    pub fn new(kid: &str) -> Self {
        Self {
            kid: kid.to_owned(),
            key: p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng),
        }
    }

    pub fn jwks(&self) -> Value {
        let public = p256::PublicKey::from(self.key.verifying_key());
        let mut jwk: Value = serde_json::from_str(&public.to_jwk_string()).unwrap();
        jwk["kid"] = json!(self.kid);
        jwk["alg"] = json!("ES256");
        json!({ "keys": [jwk] })
    }

    pub fn sign(&self, typ: &str, claims: &Value) -> String {
        self.sign_header(
            &json!({"alg": "ES256", "kid": self.kid, "typ": typ}),
            claims,
        )
    }

    pub fn sign_without_kid(&self, typ: &str, claims: &Value) -> String {
        self.sign_header(&json!({"alg": "ES256", "typ": typ}), claims)
    }

    fn sign_header(&self, header: &Value, claims: &Value) -> String {
        let mut jws = URL_SAFE_NO_PAD.encode(serde_json::to_vec(header).unwrap());
        jws.push('.');
        URL_SAFE_NO_PAD.encode_string(serde_json::to_vec(claims).unwrap(), &mut jws);
        let signature: p256::ecdsa::Signature = self.key.sign(jws.as_bytes());
        jws.push('.');
        URL_SAFE_NO_PAD.encode_string(signature.to_bytes(), &mut jws);
        jws
    }
}

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

/// A 2048-bit RSA key made for these tests only (`openssl genpkey`), to
/// check RS256 statements: its private half, and its public JWK.
pub const RSA_TEST_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQCwpS6YrSI8ImJy
Vw57d30QYo9IP1RHppQyC9dt5iuaT1SO2OoUlx3yMRfmoVqOszPBbftpetcdUiXn
KDB8aYOfMnpEjPHc2gNx1kMK+KNYH1h2qM/gF4RULLpF4fA5rqM9mAc4TAd/8Nst
J0+X5tkbXKq1n2nHaxzVmNANMHKDP3Mhgn3VzKD/x05IleA8WmmJOrAHMMt2cX+V
+3kMxwfDmLTqZt6oORMvWk5dI/mYJD/40kv05MiHTWDiEZmbZfoRTlnW0N++JLXY
9WBzQT33XAcGIw5+EefafN6SylUVORtse15YNMIPNEbCWsfVVPEWOsYR2ukC0GwB
AZkS6BWzAgMBAAECggEAHd1Pa3CaASCvFDWztRwWgNao8sYCMbrwAyYNXf80D/qp
iR0TNjf2UCQMrmlJLicN8P3vK34hMEvbLKGW0PHl1txp330Uxwn02yImY4x10Ug7
ZJRV0MUpEjIdrALu4lGsN5WkYtg3zGGkLJYg1sWonv+jvOEeuSBa16HmStSOB7JC
c52p5FbPMOkeBQu3HSXVgIS4+jPPekZGHop6Ess+sS+MZba8UTBXRqP7foFzBh4d
rNrlDYSqBJBifZRLYDXOe4I/WKaqUvTGb6G07SdLZMyV7CLu3gcp01AsuMGuf9h9
8igUGVycov0uve7bEYcx4m/TuuFDQez1ERe3xECjwQKBgQDh2dyE7HjvgWTt9dmW
0LPtxQdgH/Yy4zON7Hy4FYZZOPpOzcV5IFPKPCvEAGCbtjbHf+QURsFi9jBrsT6c
h+bTnKMke9UbtIjpQdFj8lOH8gmj3/FP5FzoK03ZXUcV0WePesKG8j3dLqqul1SI
4GV46USgPzk1XYcVyF4AE7a3BwKBgQDIOcho4HBC96FuOntQDgIaBoF2vnQ5+4rT
ysCKr8hRd0BfVgrkVMXaEijC3XsPVioCejYTQff4e/xyvhFxDNCxm6cTdpH4TyDZ
nK6xq7ad5bcPlgBS0WN9Ibya5+r1S2uRPkpZTknursYuXnb5Q5+5wVi1YQaqg9Nv
CNclwFa09QKBgCbwK7/TEUqhsWgBYgFJfCv7MzlUaVr+pu3KHvqR43bQhv89JNWs
SCXu19DUC9Psx2b/2q/QPxkzvsdiaJwOJjLHp6zrmKNNLemhSluD9PjUNutE+dK/
WXFBvgtCtLXDQ6qODKm9bAMNP6oYNx/eKEB/XzCNlexocpjD0ckLnQ3TAoGAKYQ5
tu1aubgJBAciTI4rB2Rz8cA570/mEFZJKDicq6+zbFE1/vRI9hev1gAApURzf4IB
tmqGVUK4LL6WdT94AmvI7/M0/yzBHf4sBvEY85KPK68psAJ0w5x8NA6EnIof6sTk
u7HNCK26sCCsQLEx7F1X3Hwa2r5s1+gYXF6OXAUCgYBznoXAcOeKxO4t8lAYMWnC
z6ilU7iopnAckpnrnNQLrIkSV1GYEJCTWgMB6gvby0rTHZBfulZdnL8sK1aOxAlE
2Fi6oNM2hu/16aIHG06rcYJ201SlP9d2kBMKwbbj5KUPx0rAGCRZejkL/2V2nfqV
u795jqUAJZSqf2fa4D/6Sg==
-----END PRIVATE KEY-----\n";

pub fn rsa_jwks() -> Value {
    json!({"keys": [{"kty": "RSA", "kid": "rsa", "alg": "RS256", "e": "AQAB",
        "n": "sKUumK0iPCJiclcOe3d9EGKPSD9UR6aUMgvXbeYrmk9UjtjqFJcd8jEX5qFajrMzwW37aXrXHVIl5ygwfGmDnzJ6RIzx3NoDcdZDCvijWB9YdqjP4BeEVCy6ReHwOa6jPZgHOEwHf_DbLSdPl-bZG1yqtZ9px2sc1ZjQDTBygz9zIYJ91cyg_8dOSJXgPFppiTqwBzDLdnF_lft5DMcHw5i06mbeqDkTL1pOXSP5mCQ_-NJL9OTIh01g4hGZm2X6EU5Z1tDfviS12PVgc0E991wHBiMOfhHn2nzekspVFTkbbHteWDTCDzRGwlrH1VTxFjrGEdrpAtBsAQGZEugVsw"}]})
}

pub fn sign_rs256(typ: &str, claims: &Value) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.typ = Some(typ.to_owned());
    header.kid = Some("rsa".to_owned());
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(RSA_TEST_KEY.as_bytes()).unwrap();
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

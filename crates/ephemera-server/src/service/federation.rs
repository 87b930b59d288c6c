//! OpenID Federation 1.0: the server as a federation entity. Its own Entity
//! Configuration (§9), signed with the federation key (kept apart from the
//! token-signing keys, `config/federation.rs` says why).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ephemera_proto::federation::ENTITY_STATEMENT_TYP;
use serde_json::{json, Map, Value};

use crate::config::federation::FederationConfig;
use crate::model::Timestamp;

/// The server as a federation entity, and what it has resolved.
pub struct Federation {
    pub config: FederationConfig,
    /// The federation key's public JWK, with its `kid` (its thumbprint).
    public_jwk: Value,
    kid: String,
}

impl std::fmt::Debug for Federation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Federation")
            .field("entity_id", &self.config.entity_id)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl Federation {
    pub fn new(config: FederationConfig) -> Result<Self, String> {
        let public = p256::PublicKey::from(config.signing_key.verifying_key());
        let mut jwk: Value = serde_json::from_str(&public.to_jwk_string())
            .map_err(|e| format!("the federation key: {e}"))?;
        let kid = jwk
            .as_object()
            .and_then(ephemera_proto::jose::thumbprint)
            .ok_or("the federation key has no public coordinates")?;
        if let Value::Object(m) = &mut jwk {
            m.insert("kid".into(), Value::from(kid.as_str()));
            m.insert("alg".into(), Value::from("ES256"));
            m.insert("use".into(), Value::from("sig"));
        }
        Ok(Self {
            config,
            public_jwk: jwk,
            kid,
        })
    }

    /// The federation key's JWK Set.
    pub fn jwks(&self) -> Value {
        json!({ "keys": [self.public_jwk] })
    }

    /// The server's Entity Configuration (§3, §9) as of `now`: its
    /// authorization server metadata (and, as an OpenID Provider, its
    /// provider metadata), each with the automatic registration it offers
    /// (§5.1.3, §12.1), its superiors, and the federation key.
    pub fn entity_configuration(
        &self,
        authorization_server: &Value,
        openid_provider: &Value,
        now: Timestamp,
    ) -> Option<String> {
        let federated = |metadata: &Value| {
            let mut m = metadata.as_object().cloned().unwrap_or_default();
            m.insert(
                "client_registration_types_supported".into(),
                json!(["automatic"]),
            );
            // §12.1.1: the client proves its keys with private_key_jwt at PAR.
            m.insert(
                "request_authentication_methods_supported".into(),
                json!({"pushed_authorization_request_endpoint": ["private_key_jwt"]}),
            );
            Value::Object(m)
        };
        let mut claims = Map::new();
        let id = &self.config.entity_id;
        claims.insert("iss".into(), Value::from(id.as_str()));
        claims.insert("sub".into(), Value::from(id.as_str()));
        claims.insert("iat".into(), Value::from(now));
        claims.insert(
            "exp".into(),
            Value::from(now.saturating_add(self.config.configuration_lifetime)),
        );
        claims.insert("jwks".into(), self.jwks());
        if !self.config.authority_hints.is_empty() {
            claims.insert("authority_hints".into(), json!(self.config.authority_hints));
        }
        claims.insert(
            "metadata".into(),
            json!({
                "oauth_authorization_server": federated(authorization_server),
                "openid_provider": federated(openid_provider),
            }),
        );
        self.sign(&Value::Object(claims))
    }

    /// A compact JWS of `claims` by the federation key (ES256).
    fn sign(&self, claims: &Value) -> Option<String> {
        use p256::ecdsa::signature::Signer as _;
        let header = json!({ "alg": "ES256", "kid": self.kid, "typ": ENTITY_STATEMENT_TYP });
        let mut jws = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).ok()?);
        jws.push('.');
        URL_SAFE_NO_PAD.encode_string(serde_json::to_vec(claims).ok()?, &mut jws);
        let signature: p256::ecdsa::Signature = self.config.signing_key.sign(jws.as_bytes());
        jws.push('.');
        URL_SAFE_NO_PAD.encode_string(signature.to_bytes(), &mut jws);
        Some(jws)
    }
}

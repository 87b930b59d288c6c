//! OpenID Federation 1.0: the server as a federation entity. Its own Entity
//! Configuration (§9), signed with the federation key (kept apart from the
//! token-signing keys, `config/federation.rs` says why), and the trust
//! chains of clients that register automatically (§12.1): built by
//! fetching statements through a [`StatementSource`] from the client's
//! Entity Configuration up its `authority_hints` to a configured anchor,
//! validated by `ephemera_proto::federation::chain`, and cached until the
//! chain's earliest `exp`.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ephemera_proto::federation::chain::{self, Checks, ResolvedChain};
use ephemera_proto::federation::{
    check_trust_mark, configuration_url, fetch_url, EntityStatement, ExpectedTrustMark,
    FederationError, ENTITY_STATEMENT_TYP,
};
use serde_json::{json, Map, Value};

use super::OAuthError;

use crate::config::federation::FederationConfig;
use crate::model::Timestamp;

/// Fetches entity statements over the network: the adapter is
/// `crate::documents`, under the same guard and limits as metadata documents.
#[async_trait]
pub trait StatementSource: Send + Sync + 'static {
    /// The body of `url`, served as `application/entity-statement+jwt`.
    async fn fetch_statement(&self, url: &str, now: Timestamp) -> Result<String, StatementError>;
}

/// Why a statement could not be fetched. As with metadata documents, the
/// network cause is only logged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatementError {
    #[error("{0} could not be fetched: it must answer 200 OK with an application/entity-statement+jwt (no redirect), from a public address, in time")]
    Unreachable(String),
    #[error("{0} is not fetched from: {1}")]
    Refused(String, String),
    #[error("the entity statement at {0} is too large")]
    TooLarge(String),
}

/// How long a URL found to be no federation entity is remembered (seconds):
/// meanwhile it resolves as a metadata document without a new probe.
const NOT_AN_ENTITY_FOR: Timestamp = 60;

/// The most chains, and apart the most URLs without an Entity
/// Configuration, remembered per node: beyond that nothing new is cached
/// until entries expire (the per-host limit bounds the fetches meanwhile).
const MAX_CACHED: usize = 10_000;

/// The longest a superior's statement is reused, whatever its `exp` (seconds):
/// as long as a metadata document at most.
const MAX_STATEMENT_REUSE: Timestamp = 24 * 60 * 60;

/// The server as a federation entity, and what it has resolved.
pub struct Federation {
    pub config: FederationConfig,
    /// The federation key's public JWK, with its `kid` (its thumbprint).
    public_jwk: Value,
    kid: String,
    source: Arc<dyn StatementSource>,
    /// Resolved chains by the client's entity identifier, until they expire.
    chains: Mutex<HashMap<String, Arc<ResolvedChain>>>,
    /// URLs that serve no Entity Configuration, until when.
    not_entities: Mutex<HashMap<String, Timestamp>>,
    /// Superiors' statements by URL, until their `exp`.
    statements: Mutex<HashMap<String, (String, Timestamp)>>,
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
    pub fn new(config: FederationConfig, source: Arc<dyn StatementSource>) -> Result<Self, String> {
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
            source,
            chains: Mutex::default(),
            not_entities: Mutex::default(),
            statements: Mutex::default(),
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

/// A chain being climbed: the statements fetched so far lead here.
type Climb<'a> = Pin<Box<dyn Future<Output = Result<Vec<String>, FederationError>> + Send + 'a>>;

impl Federation {
    /// The trust chain of a URL `client_id`, when it names a federation
    /// entity: `Ok(None)` when the URL serves no Entity Configuration (it is
    /// then a metadata document's URL). Once it does, every failure is the
    /// chain's, never a fallback to the weaker model: `invalid_client`,
    /// saying what failed. A chain is cached until its earliest `exp`; a
    /// URL without an Entity Configuration for a minute.
    pub async fn resolve_client(
        &self,
        client_id: &str,
        now: Timestamp,
        leeway: i64,
    ) -> Result<Option<Arc<ResolvedChain>>, OAuthError> {
        if let Some(chain) = lock(&self.chains)
            .get(client_id)
            .filter(|c| c.expires_at > now)
            .cloned()
        {
            return Ok(Some(chain));
        }
        if lock(&self.not_entities)
            .get(client_id)
            .is_some_and(|until| *until > now)
        {
            return Ok(None);
        }
        let Ok(url) = configuration_url(client_id) else {
            return Ok(None);
        };
        let configuration = match self.source.fetch_statement(url.as_str(), now).await {
            Ok(jwt) => jwt,
            Err(e) => {
                tracing::debug!(client_id, error = %e, "no Entity Configuration: resolved as a metadata document");
                let mut not_entities = lock(&self.not_entities);
                not_entities.retain(|_, until| *until > now);
                if not_entities.len() < MAX_CACHED {
                    not_entities.insert(client_id.to_owned(), now + NOT_AN_ENTITY_FOR);
                }
                return Ok(None);
            }
        };
        let chain = self
            .build(client_id, &configuration, now, leeway)
            .await
            .map_err(|e| {
                tracing::info!(client_id, error = %e, "a federation client's trust chain was refused");
                OAuthError::invalid_client(format!("the client's trust chain: {e}"))
            })?;
        let chain = Arc::new(chain);
        let mut chains = lock(&self.chains);
        chains.retain(|_, c| c.expires_at > now);
        if chains.len() < MAX_CACHED {
            chains.insert(client_id.to_owned(), chain.clone());
        }
        Ok(Some(chain))
    }

    /// From the leaf's Entity Configuration up to an anchor, then the
    /// chain's validation and the required trust marks.
    async fn build(
        &self,
        leaf_id: &str,
        configuration: &str,
        now: Timestamp,
        leeway: i64,
    ) -> Result<ResolvedChain, FederationError> {
        let leaf = self_signed(leaf_id, configuration)?;
        leaf.check_times(now, leeway)?;
        let subordinates = self
            .climb(leaf, vec![leaf_id.to_owned()], now, leeway)
            .await?;
        let resolved = chain::validate(
            configuration,
            &subordinates,
            &Checks {
                anchors: &self.config.trust_anchors,
                max_statements: self.config.max_chain_length,
                now,
                leeway,
            },
        )?;
        for required in &self.config.required_trust_marks {
            check_trust_mark(
                &resolved.configuration.trust_marks,
                &ExpectedTrustMark {
                    trust_mark_type: &required.trust_mark_type,
                    issuer: &required.issuer,
                    issuer_jwks: &required.issuer_jwks,
                    subject: leaf_id,
                    now,
                    leeway,
                },
            )?;
        }
        Ok(resolved)
    }

    /// The subordinate statements from `current`'s superior up to an
    /// anchor: each superior named in `authority_hints`, in order, until one
    /// leads to a configured anchor (§10.1). `path` holds the entities
    /// climbed so far, to find loops and bound the length.
    fn climb<'a>(
        &'a self,
        current: EntityStatement,
        path: Vec<String>,
        now: Timestamp,
        leeway: i64,
    ) -> Climb<'a> {
        Box::pin(async move {
            let mut last = FederationError::UnknownAnchor(path[0].clone());
            for hint in &current.authority_hints {
                if path.contains(hint) {
                    last = FederationError::Loop(hint.clone());
                    continue;
                }
                if path.len() > self.config.max_chain_length {
                    return Err(FederationError::PathTooLong(format!(
                        "no trust anchor within {} subordinate statements of `{}`",
                        self.config.max_chain_length, path[0]
                    )));
                }
                let anchor = self
                    .config
                    .trust_anchors
                    .iter()
                    .find(|a| &a.entity_id == hint);
                let superior = match self
                    .superior(hint, anchor.map(|a| &a.jwks), now, leeway)
                    .await
                {
                    Ok(s) => s,
                    Err(e) => {
                        last = e;
                        continue;
                    }
                };
                let Some(endpoint) = superior.fetch_endpoint() else {
                    last = FederationError::Linkage(format!(
                        "`{hint}` publishes no federation_fetch_endpoint"
                    ));
                    continue;
                };
                let statement = self
                    .fetch(fetch_url(endpoint, &current.sub)?.as_str(), now)
                    .await?;
                if anchor.is_some() {
                    return Ok(vec![statement]);
                }
                let mut above = path.clone();
                above.push(hint.clone());
                match self.climb(superior, above, now, leeway).await {
                    Ok(rest) => return Ok([vec![statement], rest].concat()),
                    Err(e) => last = e,
                }
            }
            Err(last)
        })
    }

    /// A superior's Entity Configuration: an anchor's verified with its
    /// configured keys, any other entity's with its own.
    async fn superior(
        &self,
        entity_id: &str,
        anchor_keys: Option<&Value>,
        now: Timestamp,
        leeway: i64,
    ) -> Result<EntityStatement, FederationError> {
        let jwt = self
            .fetch(configuration_url(entity_id)?.as_str(), now)
            .await?;
        let configuration = match anchor_keys {
            Some(keys) => {
                let c = EntityStatement::verify(&jwt, keys, "of the trust anchor")?;
                if c.iss != entity_id || !c.is_configuration() {
                    return Err(FederationError::Linkage(format!(
                        "the Entity Configuration at `{entity_id}` is about `{}`",
                        c.sub
                    )));
                }
                c
            }
            None => self_signed(entity_id, &jwt)?,
        };
        configuration.check_times(now, leeway)?;
        Ok(configuration)
    }

    /// A superior's statement (its configuration, or one it issued about a
    /// subordinate), reused until its `exp`: every leaf below a superior
    /// needs the same ones, and a chain is validated whole each time it is
    /// built, so a statement reused is checked like one fetched.
    async fn fetch(&self, url: &str, now: Timestamp) -> Result<String, FederationError> {
        if let Some((jwt, _)) = lock(&self.statements)
            .get(url)
            .filter(|(_, exp)| *exp > now)
        {
            return Ok(jwt.clone());
        }
        let jwt = self
            .source
            .fetch_statement(url, now)
            .await
            .map_err(|e| FederationError::Linkage(e.to_string()))?;
        if let Ok(statement) = EntityStatement::peek(&jwt) {
            let mut statements = lock(&self.statements);
            statements.retain(|_, (_, exp)| *exp > now);
            if statements.len() < MAX_CACHED {
                let until = statement.exp.min(now.saturating_add(MAX_STATEMENT_REUSE));
                statements.insert(url.to_owned(), (jwt.clone(), until));
            }
        }
        Ok(jwt)
    }
}

/// An Entity Configuration of `entity_id`, signed by a key of its own
/// `jwks` (§3: it is self-signed; its superior's statement is what makes
/// those keys trusted, checked with the chain).
fn self_signed(entity_id: &str, jwt: &str) -> Result<EntityStatement, FederationError> {
    let peeked = EntityStatement::peek(jwt)?;
    if peeked.iss != entity_id || !peeked.is_configuration() {
        return Err(FederationError::Linkage(format!(
            "the Entity Configuration at `{entity_id}` is about `{}`",
            peeked.sub
        )));
    }
    EntityStatement::verify(jwt, &peeked.jwks, "of its own")
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock leaves a map that is still valid.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

//! Dynamic Client Registration (RFC 7591) and its management protocol
//! (RFC 7592). A self-registered client resolves, like every client model,
//! into a `ClientSnapshot` (kind `dynamic`); open registration's known
//! weakness, abuse, is met with per-address limits and a time-to-live after
//! which an unused or idle client is deleted.

use std::net::IpAddr;

use ephemera_proto::error::ErrorCode;
use ephemera_proto::metadata::{ClientMetadata, MetadataError};
use serde_json::{Map, Value};

use super::{new_id, resolve, Context, OAuthError};
use crate::model::{AuthMethod, StoredClient, Timestamp};
use crate::secret::{self, Secret, SecretHash};
use crate::store::StoreError;

/// A refusal of the registration endpoint, as RFC 7591 §3.2.2 and RFC 7592 §2 shape it.
#[derive(Debug)]
pub enum RegisterError {
    /// 400 with an RFC 7591 error code.
    Invalid(OAuthError),
    /// 401 `invalid_token`: no such client, or a wrong registration access token.
    Unauthorized(&'static str),
    /// 429 with `Retry-After` seconds.
    TooMany(i64),
    /// 404: registration is off.
    Disabled,
}

impl From<StoreError> for RegisterError {
    fn from(e: StoreError) -> Self {
        Self::Invalid(e.into())
    }
}

fn metadata_error(description: impl Into<std::borrow::Cow<'static, str>>) -> RegisterError {
    RegisterError::Invalid(OAuthError::new(
        ErrorCode::InvalidClientMetadata,
        description,
    ))
}

/// `POST /register`: validates the metadata and creates the client.
pub async fn register(
    ctx: &Context,
    body: &[u8],
    initial_access_token: Option<&str>,
    peer: Option<IpAddr>,
    now: Timestamp,
) -> Result<Value, RegisterError> {
    let policy = &ctx.policy.registration;
    if !policy.enabled {
        return Err(RegisterError::Disabled);
    }
    if !policy.initial_access_tokens.is_empty() {
        let ok = initial_access_token.is_some_and(|t| {
            policy
                .initial_access_tokens
                .iter()
                .any(|known| secret::ct_eq(known, t))
        });
        if !ok {
            return Err(RegisterError::Unauthorized(
                "registration here needs an initial access token (Authorization: Bearer)",
            ));
        }
    }
    if let Some(ip) = peer {
        // One window per minute, counted in the store: the limit holds for
        // the whole deployment, whichever node a request reaches.
        let window = now - now.rem_euclid(60);
        let hits = ctx
            .store
            .hit_rate_limit(&format!("register:{ip}"), window)
            .await?;
        if hits > i64::from(policy.per_minute) {
            return Err(RegisterError::TooMany(window + 60 - now));
        }
    }
    let request = parse_body(body)?;
    let client_id = new_id();
    let registration_token = Secret::generate();
    let (mut client, client_secret) = build_client(ctx, &client_id, &request, now)?;
    let fingerprint = peer.and_then(|ip| fingerprint(&client, ip));
    if let Some(fingerprint) = &fingerprint {
        if let Some(shared) = coalesce(ctx, fingerprint, now).await? {
            return Ok(response(ctx, &shared, None, None));
        }
    }
    if let Some(d) = &mut client.self_described {
        d.registration_token_hash = Some(registration_token.hash());
        d.fingerprint = fingerprint.clone();
    }
    match ctx.store.insert_client(&client).await {
        Ok(()) => {}
        // An identical registration from the same address won the race.
        Err(StoreError::Conflict) => {
            if let Some(fingerprint) = &fingerprint {
                if let Some(shared) = coalesce(ctx, fingerprint, now).await? {
                    return Ok(response(ctx, &shared, None, None));
                }
            }
            return Err(StoreError::Conflict.into());
        }
        Err(e) => return Err(e.into()),
    }
    tracing::info!(client_id = %client.client_id, "client registered (RFC 7591)");
    Ok(response(
        ctx,
        &client,
        client_secret.as_ref(),
        Some(&registration_token),
    ))
}

/// What makes two registrations the same client: a public client's validated
/// metadata (its `software_id` and `software_version` among it) and the
/// address it registered from. Confidential clients are never shared: each
/// registration gets its own secret.
fn fingerprint(client: &StoredClient, peer: IpAddr) -> Option<SecretHash> {
    let d = client.self_described.as_ref()?;
    if d.auth_method != AuthMethod::None {
        return None;
    }
    let metadata = serde_json::to_string(&d.metadata).ok()?;
    Some(SecretHash::of(&format!(
        "ephemera-registration\0{metadata}\0{peer}"
    )))
}

/// An identical earlier registration, now shared: it lives on as if just
/// registered, and nobody manages it any more (RFC 7592 needs one owner;
/// a shared row has several), so its registration access token ends and the
/// response carries none (RFC 7591 §3.2.1 makes it optional).
async fn coalesce(
    ctx: &Context,
    fingerprint: &SecretHash,
    now: Timestamp,
) -> Result<Option<StoredClient>, RegisterError> {
    let Some(mut shared) = ctx.store.find_client_by_fingerprint(fingerprint).await? else {
        return Ok(None);
    };
    if let Some(d) = &mut shared.self_described {
        d.registration_token_hash = None;
        d.expires_at = d.expires_at.max(now + ctx.policy.registration.unused_ttl);
    }
    if !ctx.store.update_client(&shared).await? {
        // Reaped in between: register afresh.
        return Ok(None);
    }
    tracing::info!(client_id = %shared.client_id, "identical registration coalesced (RFC 7591)");
    Ok(Some(shared))
}

/// `GET /register/{client_id}` (RFC 7592 §2.1).
pub async fn read(
    ctx: &Context,
    client_id: &str,
    token: Option<&str>,
) -> Result<Value, RegisterError> {
    let client = authorize(ctx, client_id, token).await?;
    Ok(response(ctx, &client, None, None))
}

/// `PUT /register/{client_id}` (RFC 7592 §2.2): replaces the metadata.
pub async fn update(
    ctx: &Context,
    client_id: &str,
    token: Option<&str>,
    body: &[u8],
    now: Timestamp,
) -> Result<Value, RegisterError> {
    let current = authorize(ctx, client_id, token).await?;
    let request = parse_body(body)?;
    if request.get("client_id").and_then(Value::as_str) != Some(client_id) {
        return Err(RegisterError::Invalid(OAuthError::invalid_request(
            "the update must carry this client's client_id (RFC 7592 §2.2)",
        )));
    }
    if let Some(sent) = request.get("client_secret").and_then(Value::as_str) {
        if !current.secret_hash.as_ref().is_some_and(|h| h.verify(sent)) {
            return Err(RegisterError::Invalid(OAuthError::invalid_request(
                "client_secret does not match this client's secret",
            )));
        }
    }
    let (mut client, new_secret) = build_client(ctx, client_id, &request, current.created_at)?;
    // Keep what the client already holds: its secret (if it still needs one)
    // and its registration access token.
    let secret = match (&client.secret_hash, &current.secret_hash) {
        (Some(_), Some(old)) => {
            client.secret_hash = Some(old.clone());
            None
        }
        _ => new_secret,
    };
    // The fingerprint of the old metadata no longer describes the client:
    // an identical registration of it is a new client.
    if let (Some(d), Some(old)) = (&mut client.self_described, &current.self_described) {
        d.registration_token_hash = old.registration_token_hash.clone();
        d.expires_at = old.expires_at.max(now + ctx.policy.registration.unused_ttl);
    }
    ctx.store.update_client(&client).await?;
    Ok(response(ctx, &client, secret.as_ref(), None))
}

/// `DELETE /register/{client_id}` (RFC 7592 §2.3): the client and its grants go.
pub async fn delete(
    ctx: &Context,
    client_id: &str,
    token: Option<&str>,
) -> Result<(), RegisterError> {
    authorize(ctx, client_id, token).await?;
    ctx.store.delete_client(client_id).await?;
    Ok(())
}

/// RFC 7592 §2: the registration access token of that very client.
async fn authorize(
    ctx: &Context,
    client_id: &str,
    token: Option<&str>,
) -> Result<StoredClient, RegisterError> {
    let refused = RegisterError::Unauthorized("unknown client or wrong registration access token");
    if !ctx.policy.registration.enabled {
        return Err(RegisterError::Disabled);
    }
    let Some(token) = token else {
        return Err(refused);
    };
    let Some(client) = ctx.store.find_client(client_id).await? else {
        return Err(refused);
    };
    match client
        .self_described
        .as_ref()
        .and_then(|d| d.registration_token_hash.as_ref())
    {
        Some(hash) if hash.verify(token) => Ok(client),
        _ => Err(refused),
    }
}

fn parse_body(body: &[u8]) -> Result<Map<String, Value>, RegisterError> {
    use ephemera_proto::json::{too_deep, MAX_DEPTH};
    if too_deep(body, MAX_DEPTH) {
        return Err(metadata_error(format!(
            "the body nests arrays or objects deeper than {MAX_DEPTH} levels"
        )));
    }
    match serde_json::from_slice(body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(metadata_error(
            "the body must be a JSON object of client metadata (RFC 7591 §2)",
        )),
    }
}

/// Validates `request` into a client; returns the new secret it needs, if any.
fn build_client(
    ctx: &Context,
    client_id: &str,
    request: &Map<String, Value>,
    created_at: Timestamp,
) -> Result<(StoredClient, Option<Secret>), RegisterError> {
    if request.contains_key("software_statement") {
        return Err(RegisterError::Invalid(OAuthError::new(
            ErrorCode::UnapprovedSoftwareStatement,
            "software statements are not accepted by this server",
        )));
    }
    let policy = &ctx.policy;
    let md = ClientMetadata::from_object(request, &policy.pushed.limits).map_err(|e| match e {
        MetadataError::RedirectUri { .. } => RegisterError::Invalid(OAuthError::new(
            ErrorCode::InvalidRedirectUri,
            e.to_string(),
        )),
        other => metadata_error(other.to_string()),
    })?;
    let mut client = resolve::self_registered(
        policy,
        client_id,
        &md,
        created_at,
        created_at + policy.registration.unused_ttl,
    )
    .map_err(|e| match e {
        resolve::Refusal::RedirectUri(m) => {
            RegisterError::Invalid(OAuthError::new(ErrorCode::InvalidRedirectUri, m))
        }
        resolve::Refusal::Metadata(m) => metadata_error(m),
    })?;
    let secret = client
        .self_described
        .as_ref()
        .is_some_and(|d| d.auth_method == AuthMethod::ClientSecret)
        .then(Secret::generate);
    client.secret_hash = secret.as_ref().map(Secret::hash);
    Ok((client, secret))
}

/// The client information response (RFC 7591 §3.2.1, RFC 7592 §3).
fn response(
    ctx: &Context,
    client: &StoredClient,
    secret: Option<&Secret>,
    token: Option<&Secret>,
) -> Value {
    let mut body = client
        .self_described
        .as_ref()
        .map(|d| d.metadata.clone())
        .unwrap_or_else(|| Value::Object(Map::new()));
    if let Value::Object(m) = &mut body {
        m.insert("client_id".into(), Value::from(client.client_id.as_str()));
        m.insert("client_id_issued_at".into(), Value::from(client.created_at));
        if let Some(s) = secret {
            m.insert("client_secret".into(), Value::from(s.expose()));
            m.insert("client_secret_expires_at".into(), Value::from(0));
        }
        if let Some(t) = token {
            m.insert("registration_access_token".into(), Value::from(t.expose()));
        }
        // A shared (coalesced) client has no owner to manage it.
        let managed = client
            .self_described
            .as_ref()
            .is_some_and(|d| d.registration_token_hash.is_some());
        if managed {
            m.insert(
                "registration_client_uri".into(),
                Value::from(format!("{}/register/{}", ctx.issuer, client.client_id)),
            );
        }
    }
    body
}

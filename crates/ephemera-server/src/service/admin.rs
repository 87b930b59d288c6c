//! Administration, for the CLI: users and registered clients.

use ephemera_proto::redirect::RedirectUri;
use ephemera_proto::scope::Scope;
use ephemera_proto::ClientRef;

use super::{login, new_id};
use crate::model::{StoredClient, Timestamp, User, UserClaims};
use crate::policy::Policy;
use crate::secret::Secret;
use crate::store::{Store, StoreError};

/// Why an administrative change was refused; printed to the operator.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    Invalid(String),
    #[error("`{0}` already exists")]
    Exists(String),
    #[error("`{0}` does not exist")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("password hashing failed")]
    Hash,
}

fn invalid(msg: impl Into<String>) -> AdminError {
    AdminError::Invalid(msg.into())
}

/// The shortest client secret accepted from an operator: shared secrets are
/// stored with a fast hash, so they must carry their own entropy.
pub const MIN_SECRET_LEN: usize = 32;

pub async fn add_user(
    store: &dyn Store,
    username: &str,
    password: String,
    now: Timestamp,
) -> Result<User, AdminError> {
    add_user_with_claims(store, username, password, UserClaims::default(), now).await
}

/// [`add_user`] with the standard claims of the person's record, stored
/// with it in one write.
pub async fn add_user_with_claims(
    store: &dyn Store,
    username: &str,
    password: String,
    claims: UserClaims,
    now: Timestamp,
) -> Result<User, AdminError> {
    if username.is_empty()
        || username.len() > 64
        || username
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(invalid("a username is 1 to 64 characters without spaces"));
    }
    if password.chars().count() < 8 {
        return Err(invalid("a password must have at least 8 characters"));
    }
    let user = User {
        id: new_id(),
        username: username.to_owned(),
        password_hash: Some(
            login::hash_password(password)
                .await
                .map_err(|_| AdminError::Hash)?,
        ),
        claims,
        created_at: now,
    };
    match store.insert_user(&user).await {
        Err(StoreError::Conflict) => Err(AdminError::Exists(username.to_owned())),
        other => other.map(|()| user).map_err(Into::into),
    }
}

/// On an empty database, creates `admin` with a random password and returns
/// the password (to be shown once).
pub async fn ensure_admin(store: &dyn Store, now: Timestamp) -> Result<Option<String>, AdminError> {
    if !store.list_users().await?.is_empty() {
        return Ok(None);
    }
    let password = Secret::generate().into_string();
    match add_user(store, "admin", password.clone(), now).await {
        Ok(_) => Ok(Some(password)),
        // Another node created it at the same moment.
        Err(AdminError::Exists(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A registered client as the operator describes it.
#[derive(Debug, Default)]
pub struct NewClient {
    pub client_id: String,
    pub name: Option<String>,
    pub redirect_uris: Vec<String>,
    pub scopes: Vec<String>,
    pub confidential: bool,
    /// A secret given by the operator; generated when `None`.
    pub secret: Option<String>,
    pub can_introspect: bool,
    /// Public keys (a JWK Set) for `private_key_jwt`, instead of a secret.
    pub jwks: Option<serde_json::Value>,
    /// The grant types it may use; empty: the defaults
    /// ([`crate::model::default_grant_types`]).
    pub grant_types: Vec<String>,
}

/// The grant types an operator may give a registered client.
const GRANT_TYPES: &[&str] = &[
    "authorization_code",
    "refresh_token",
    "client_credentials",
    ephemera_proto::token::TOKEN_EXCHANGE,
    ephemera_proto::assertion_grant::GRANT_TYPE,
];

/// Creates a registered client; returns its secret if one was generated.
pub async fn add_client(
    store: &dyn Store,
    policy: &Policy,
    new: NewClient,
    now: Timestamp,
) -> Result<(StoredClient, Option<Secret>), AdminError> {
    let id = new.client_id.as_str();
    match ClientRef::parse(id) {
        ClientRef::PushedUrn => {
            return Err(invalid(format!(
                "`{id}` is reserved for pushed clients and can never be registered"
            )))
        }
        ClientRef::Url(_) => {
            return Err(invalid(
                "URL client ids are reserved for client ID metadata documents",
            ))
        }
        ClientRef::Id(_) => {}
    }
    if id.is_empty() || id.len() > 255 || id.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid("a client id is 1 to 255 characters without spaces"));
    }
    for uri in &new.redirect_uris {
        RedirectUri::parse(uri).map_err(|e| invalid(format!("{uri}: {e}")))?;
    }
    let confidential = new.confidential || new.jwks.is_some();
    let grant_types = grant_types(&new.grant_types, confidential)?;
    let uses_code = grant_types
        .as_ref()
        .is_none_or(|g| g.iter().any(|g| g == "authorization_code"));
    if !confidential && uses_code && new.redirect_uris.is_empty() {
        return Err(invalid("a public client needs at least one --redirect-uri"));
    }
    if new.secret.is_some() && !new.confidential {
        return Err(invalid("only a --confidential client has a secret"));
    }
    if let Some(jwks) = &new.jwks {
        if new.secret.is_some() {
            return Err(invalid(
                "a client authenticates with a secret or with keys, not both",
            ));
        }
        ephemera_proto::assertion::parse_jwks(jwks).map_err(|e| invalid(format!("jwks: {e}")))?;
    }
    let allowed_scope = if new.scopes.is_empty() {
        None
    } else {
        let s =
            Scope::from_tokens(new.scopes.iter().cloned()).map_err(|e| invalid(e.to_string()))?;
        if let Some(t) = s.difference(&policy.scopes_supported).next() {
            return Err(invalid(format!("scope `{t}` is not in scopes.supported")));
        }
        Some(s)
    };
    let (secret_hash, shown) = match (new.confidential && new.jwks.is_none(), new.secret) {
        (false, _) => (None, None),
        (true, Some(given)) if given.chars().count() < MIN_SECRET_LEN => {
            return Err(invalid(format!(
                "a client secret must have at least {MIN_SECRET_LEN} characters"
            )))
        }
        (true, Some(given)) => (Some(Secret::from_string(given).hash()), None),
        (true, None) => {
            let s = Secret::generate();
            (Some(s.hash()), Some(s))
        }
    };
    let client = StoredClient {
        client_id: id.to_owned(),
        name: new.name,
        redirect_uris: new.redirect_uris,
        allowed_scope,
        confidential,
        can_introspect: new.can_introspect,
        created_at: now,
        jwks: new.jwks,
        grant_types,
        self_described: None,
        secret_hash,
    };
    match store.insert_client(&client).await {
        Err(StoreError::Conflict) => Err(AdminError::Exists(id.to_owned())),
        other => other.map(|()| (client, shown)).map_err(Into::into),
    }
}

/// The operator's grant types, checked: known, each once, `client_credentials`
/// and the JWT bearer grant only for a client that authenticates,
/// `refresh_token` only with `authorization_code`. `None` when the
/// operator named none.
fn grant_types(named: &[String], confidential: bool) -> Result<Option<Vec<String>>, AdminError> {
    if named.is_empty() {
        return Ok(None);
    }
    let mut out: Vec<String> = Vec::new();
    for g in named {
        if !GRANT_TYPES.contains(&g.as_str()) {
            return Err(invalid(format!(
                "grant type `{g}` is not one of {}",
                GRANT_TYPES.join(", ")
            )));
        }
        if !out.contains(g) {
            out.push(g.clone());
        }
    }
    let has = |g: &str| out.iter().any(|o| o == g);
    if let Some(g) = ["client_credentials", ephemera_proto::token::TOKEN_EXCHANGE]
        .into_iter()
        .find(|g| has(g) && !confidential)
    {
        return Err(invalid(format!(
            "{g} needs a client that authenticates (--confidential or --jwks-file)"
        )));
    }
    // draft-ietf-oauth-identity-assertion-authz-grant §8.1: ID-JAGs are for
    // confidential clients.
    if has(ephemera_proto::assertion_grant::GRANT_TYPE) && !confidential {
        return Err(invalid(
            "the JWT bearer grant (ID-JAGs) needs a client that authenticates (--confidential or --jwks-file)",
        ));
    }
    if has("refresh_token") && !has("authorization_code") {
        return Err(invalid(
            "refresh_token goes with authorization_code: there is nothing to refresh otherwise",
        ));
    }
    Ok(Some(out))
}

pub async fn delete_client(store: &dyn Store, client_id: &str) -> Result<(), AdminError> {
    if store.delete_client(client_id).await? {
        Ok(())
    } else {
        Err(AdminError::NotFound(client_id.to_owned()))
    }
}

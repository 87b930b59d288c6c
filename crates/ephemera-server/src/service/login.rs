//! Logging a user in: CSRF check, password check (argon2, off the async
//! threads), and a fresh session id (never the pre-login cookie, so a planted
//! cookie cannot fixate a session).

use std::sync::OnceLock;

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, SaltString};
use argon2::Argon2;
use ephemera_proto::form::Params;

use super::pending::{find_pending, Pending};
use super::{Context, OAuthError};
use crate::model::{Session, SignIn, Timestamp, User};
use crate::secret::{self, Secret};

/// The outcome of a login form.
#[derive(Debug)]
pub enum LoginOutcome {
    /// A new session; the browser goes back to the authorization endpoint.
    LoggedIn { session: Secret, next: String },
    /// Wrong username or password: the same page again, with a message.
    Retry(Box<Pending>),
}

/// The CSRF token of the forms shown to the holder of `cookie`: derived from
/// the cookie, which a cross-site page can neither read nor set.
pub fn csrf_token(cookie: &str) -> String {
    secret::derive("ephemera csrf", cookie)
}

/// Whether a form's `csrf` field belongs to the browser that sent it.
pub fn csrf_valid(cookie: Option<&str>, form: &Params) -> bool {
    match (cookie, form.get("csrf")) {
        (Some(c), Some(token)) => secret::ct_eq(&csrf_token(c), token),
        _ => false,
    }
}

pub fn csrf_error() -> OAuthError {
    OAuthError::invalid_request(
        "the form was not sent by this browser's page (CSRF check failed); go back and reload it",
    )
}

pub async fn login(
    ctx: &Context,
    form: &Params,
    cookie: Option<&str>,
    now: Timestamp,
) -> Result<LoginOutcome, OAuthError> {
    if !csrf_valid(cookie, form) {
        return Err(csrf_error());
    }
    passwords_on(ctx)?;
    let (Some(client_id), Some(request_uri)) = (form.get("client_id"), form.get("request_uri"))
    else {
        return Err(OAuthError::invalid_request(
            "the login form lost its client_id or request_uri",
        ));
    };
    let pending = find_pending(ctx, client_id, request_uri, now).await?;
    let Some(user) = check_password(ctx, form).await? else {
        tracing::info!(client_id, "login failed");
        return Ok(LoginOutcome::Retry(Box::new(pending)));
    };
    let session = start_session(ctx, &user, SignIn::password(), now).await?;
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", client_id)
        .append_pair("request_uri", request_uri)
        .finish();
    Ok(LoginOutcome::LoggedIn {
        session,
        next: format!("{}/authorize?{query}", ctx.issuer),
    })
}

/// Signing in on the account page, where no authorization request waits:
/// a new session, or `None` for a wrong username or password.
pub async fn account_login(
    ctx: &Context,
    form: &Params,
    cookie: Option<&str>,
    now: Timestamp,
) -> Result<Option<Secret>, OAuthError> {
    if !csrf_valid(cookie, form) {
        return Err(csrf_error());
    }
    passwords_on(ctx)?;
    let Some(user) = check_password(ctx, form).await? else {
        tracing::info!("account login failed");
        return Ok(None);
    };
    Ok(Some(
        start_session(ctx, &user, SignIn::password(), now).await?,
    ))
}

/// The user a form's `username` and `password` name, if the password is right.
async fn check_password(ctx: &Context, form: &Params) -> Result<Option<User>, OAuthError> {
    let username = form.get("username").unwrap_or_default();
    let password = form.get("password").unwrap_or_default().to_owned();
    let user = ctx.store.find_user_by_name(username).await?;
    // An unknown user costs the same hash as a known one, so timing does not
    // tell which usernames exist.
    // A user without a local password (one of an upstream provider) is
    // checked against the same dummy hash and never matches.
    let hash = user.as_ref().and_then(|u| u.password_hash.clone());
    let ok = verify_password(hash, password).await;
    Ok(user.filter(|u| ok && u.password_hash.is_some()))
}

/// Refuses a password when local passwords are turned off (`[login]
/// passwords = false`): the form is not shown then, and a post is refused.
fn passwords_on(ctx: &Context) -> Result<(), OAuthError> {
    if ctx.upstream.config.passwords {
        Ok(())
    } else {
        Err(OAuthError::invalid_request(
            "signing in with a password is turned off on this server; use one of the sign-in providers on the page",
        ))
    }
}

/// A fresh session for `user` (never the pre-login cookie), remembering how
/// they signed in.
pub(super) async fn start_session(
    ctx: &Context,
    user: &User,
    sign_in: SignIn,
    now: Timestamp,
) -> Result<Secret, OAuthError> {
    let session = Secret::generate();
    ctx.store
        .insert_session(&Session {
            hash: session.hash(),
            user_id: user.id.clone(),
            username: user.username.clone(),
            created_at: now,
            expires_at: now + ctx.policy.lifetimes.session,
            sign_in,
        })
        .await?;
    Ok(session)
}

/// Hashes a password with argon2id (for `ephemera user add`).
pub async fn hash_password(password: String) -> Result<String, OAuthError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
    })
    .await
    .map_err(|_| OAuthError::server_error())?
    .map_err(|_| OAuthError::server_error())
}

/// Password checks running at once: one per core. Each argon2id check
/// takes 19 MiB and tens of milliseconds of one core, so a burst of logins
/// queues here instead of taking the memory and the cores of every other
/// request.
fn hashing_permits() -> &'static tokio::sync::Semaphore {
    static PERMITS: OnceLock<tokio::sync::Semaphore> = OnceLock::new();
    PERMITS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        tokio::sync::Semaphore::new(cores)
    })
}

async fn verify_password(hash: Option<String>, password: String) -> bool {
    let Ok(_permit) = hashing_permits().acquire().await else {
        return false;
    };
    let result = tokio::task::spawn_blocking(move || {
        let hash = hash.or_else(|| dummy_hash().cloned());
        let Some(hash) = hash else { return false };
        // One argon2 work area per permit, kept: allocating 19 MiB per check
        // leaves it in the allocator's arenas after a burst of logins.
        let mut blocks = BLOCKS
            .lock()
            .ok()
            .and_then(|mut pool| pool.pop())
            .unwrap_or_default();
        let ok = verify_with_memory(&hash, password.as_bytes(), &mut blocks);
        if let Ok(mut pool) = BLOCKS.lock() {
            pool.push(blocks);
        }
        ok
    })
    .await;
    result.unwrap_or(false)
}

/// The argon2 work areas of finished checks, reused by the next ones (at
/// most one per hashing permit).
static BLOCKS: std::sync::Mutex<Vec<Vec<argon2::Block>>> = std::sync::Mutex::new(Vec::new());

/// Verifies `password` against a PHC string like argon2's own
/// `verify_password`, but in `blocks` (resized as the hash's parameters need).
fn verify_with_memory(hash: &str, password: &[u8], blocks: &mut Vec<argon2::Block>) -> bool {
    use subtle::ConstantTimeEq as _;
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Some(expected), Some(salt)) = (parsed.hash, parsed.salt) else {
        return false;
    };
    let Ok(algorithm) = argon2::Algorithm::try_from(parsed.algorithm) else {
        return false;
    };
    let version = match parsed.version.map(argon2::Version::try_from) {
        None => argon2::Version::default(),
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let Ok(params) = argon2::Params::try_from(&parsed) else {
        return false;
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    blocks.resize(params.block_count(), argon2::Block::default());
    let mut out = vec![0u8; expected.len()];
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password, salt, &mut out, &mut blocks[..])
        .is_ok()
        && bool::from(out.as_slice().ct_eq(expected.as_bytes()))
}

/// A hash of a random password, verified against for unknown users.
fn dummy_hash() -> Option<&'static String> {
    static DUMMY: OnceLock<Option<String>> = OnceLock::new();
    DUMMY
        .get_or_init(|| {
            let salt = SaltString::generate(&mut OsRng);
            Argon2::default()
                .hash_password(Secret::generate().expose().as_bytes(), &salt)
                .map(|h| h.to_string())
                .ok()
        })
        .as_ref()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_password_verifies_against_its_hash_and_nothing_else_does() {
        let hash = hash_password("correct horse battery".into()).await;
        assert!(hash.is_ok(), "hashing failed");
        let hash = hash.unwrap_or_default();
        assert!(verify_password(Some(hash.clone()), "correct horse battery".into()).await);
        assert!(!verify_password(Some(hash.clone()), "correct horse batterY".into()).await);
        assert!(!verify_password(Some("not a hash".into()), "x".into()).await);
        // Work areas are reused, not piled up.
        assert!(verify_password(Some(hash), "correct horse battery".into()).await);
        assert!(BLOCKS.lock().map(|p| p.len()).unwrap_or(0) <= 2);
    }
}

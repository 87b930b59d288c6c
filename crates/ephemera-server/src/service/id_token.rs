//! ID Tokens (OpenID Connect Core 1.0 §2, §3.1.3.6): minted beside the
//! access token when `openid` is granted, at code redemption and at each
//! refresh (§12.2), and signed with the server's newest signing key.
//! Also the claims a user record releases by scope (§5.4), which
//! `/userinfo` answers too.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ephemera_proto::oidc::{self, OPENID};
use ephemera_proto::scope::Scope;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::{resolve, Context, OAuthError};
use crate::model::{Grant, Timestamp, User};

/// When in a grant's life an ID Token is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moment {
    /// The code is redeemed: the `nonce` of the request is echoed.
    CodeRedemption,
    /// A refresh (Core §12.2): the original `auth_time`, no `nonce`.
    Refresh,
}

/// The second `aud` value of an ID Token whose client's `client_id` is
/// shared by every instance of its model (pushed clients): it names the one
/// grant, so an ID Token of one instance is no ID Token of another.
pub fn grant_audience(issuer: &str, grant_id: &str) -> String {
    format!("{issuer}/grants/{grant_id}")
}

/// The ID Token for `grant`'s new access token, or `None` when `scope`
/// lacks `openid` or the grant has no signed-in user (`client_credentials`,
/// grants made before OpenID Connect).
pub async fn mint(
    ctx: &Context,
    grant: &Grant,
    scope: &Scope,
    access_token: &str,
    moment: Moment,
    now: Timestamp,
) -> Result<Option<String>, OAuthError> {
    if !scope.contains(OPENID) {
        return Ok(None);
    }
    let (Some(subject), Some(authentication)) = (&grant.subject, &grant.authentication) else {
        return Ok(None);
    };
    let Some(user) = ctx.store.find_user(subject).await? else {
        return Err(OAuthError::invalid_grant(
            "the user of this grant no longer exists",
        ));
    };
    let client_id = grant.client.client_id.as_str();
    let shared = resolve::caps(&ctx.policy, &grant.client).shared_client_id;
    let mut claims = Map::new();
    claims.insert("iss".into(), Value::from(&*ctx.issuer));
    claims.insert("sub".into(), Value::from(user.id.as_str()));
    if shared {
        // The client_id first, so libraries that look for it find it; the
        // grant beside it; `azp` says which of the two is the client
        // (Core §2, §3.1.3.7 steps 3 to 5).
        claims.insert(
            "aud".into(),
            json!([client_id, grant_audience(&ctx.issuer, &grant.id)]),
        );
        claims.insert("azp".into(), Value::from(client_id));
    } else {
        claims.insert("aud".into(), Value::from(client_id));
    }
    claims.insert("exp".into(), Value::from(now + id_token_lifetime(ctx)));
    claims.insert("iat".into(), Value::from(now));
    // Always sent: required with `max_age` (Core §3.1.2.1), and the
    // refreshed ID Token keeps the original (§12.2).
    claims.insert("auth_time".into(), Value::from(authentication.auth_time));
    if moment == Moment::CodeRedemption {
        if let Some(nonce) = &authentication.nonce {
            claims.insert("nonce".into(), Value::from(nonce.as_str()));
        }
    }
    if let Some(acr) = &authentication.acr {
        claims.insert("acr".into(), Value::from(acr.as_str()));
    }
    if !authentication.amr.is_empty() {
        claims.insert("amr".into(), json!(authentication.amr));
    }
    claims.insert("at_hash".into(), Value::from(at_hash(access_token)));
    claims.extend(user_claims(&user, scope));
    let keys = ctx.keys.get();
    match keys.sign("JWT", &Value::Object(claims)) {
        Some(jws) => Ok(Some(jws)),
        None => {
            tracing::error!("no signing key to sign an ID Token with");
            Err(OAuthError::server_error())
        }
    }
}

/// How long an ID Token is valid: as long as an access token, which is how
/// long a retired signing key stays published.
fn id_token_lifetime(ctx: &Context) -> i64 {
    ctx.policy.lifetimes.access_token
}

/// `at_hash` (Core §3.1.3.6): the left half of the SHA-256 of the access
/// token, base64url.
pub fn at_hash(access_token: &str) -> String {
    let digest = Sha256::digest(access_token.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..16])
}

/// The standard claims `scope` releases from `user`'s record (Core §5.4),
/// those it holds; `sub` is the caller's to add.
pub fn user_claims(user: &User, scope: &Scope) -> Map<String, Value> {
    let wanted = oidc::claims_for_scope(scope.iter());
    let record = match serde_json::to_value(&user.claims) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    let mut claims: Map<String, Value> = record
        .into_iter()
        .filter(|(k, _)| wanted.contains(&k.as_str()))
        .collect();
    // `preferred_username` (Core §5.1) is the login name, with `profile`.
    if scope.contains("profile") {
        claims.insert(
            "preferred_username".into(),
            Value::from(user.username.as_str()),
        );
    }
    claims
}

/// Every claim an ID Token or `/userinfo` may carry, for discovery
/// (`claims_supported`).
pub fn claims_supported() -> Vec<&'static str> {
    let mut claims = vec![
        "sub",
        "iss",
        "aud",
        "azp",
        "exp",
        "iat",
        "auth_time",
        "nonce",
        "acr",
        "amr",
        "at_hash",
        "preferred_username",
    ];
    claims.extend_from_slice(oidc::PROFILE_CLAIMS);
    claims.extend_from_slice(oidc::EMAIL_CLAIMS);
    claims
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::UserClaims;

    fn user() -> User {
        User {
            id: "u1".into(),
            username: "alice".into(),
            password_hash: None,
            claims: UserClaims {
                name: Some("Alice Liddell".into()),
                email: Some("alice@example.com".into()),
                email_verified: Some(true),
                ..UserClaims::default()
            },
            created_at: 0,
        }
    }

    #[test]
    fn claims_are_released_by_scope() {
        let only_openid = user_claims(&user(), &Scope::parse("openid").unwrap());
        assert!(only_openid.is_empty(), "{only_openid:?}");
        let email = user_claims(&user(), &Scope::parse("openid email").unwrap());
        assert_eq!(email.get("email"), Some(&json!("alice@example.com")));
        assert_eq!(email.get("email_verified"), Some(&json!(true)));
        assert!(email.get("name").is_none());
        let profile = user_claims(&user(), &Scope::parse("openid profile").unwrap());
        assert_eq!(profile.get("name"), Some(&json!("Alice Liddell")));
        assert_eq!(profile.get("preferred_username"), Some(&json!("alice")));
        // Absent claims are left out, not null.
        assert!(profile.get("given_name").is_none());
    }

    #[test]
    fn at_hash_is_the_left_half_of_the_sha256_base64url() {
        // 16 bytes -> 22 base64url characters.
        assert_eq!(at_hash("token").len(), 22);
        assert_ne!(at_hash("a"), at_hash("b"));
    }
}

//! The local user a person another issuer vouches for is: an identity keyed
//! by the issuer and its subject (`upstream_identities`), its claims read
//! through the configured mapping. Upstream sign-in (`upstream`) and
//! ID-JAGs (`assertion_grant`) both come here, so one person signing in
//! through their enterprise provider and arriving in an ID-JAG from it is
//! one user.

use serde_json::{Map, Value};

use super::{new_id, Context, OAuthError};
use crate::config::upstream::ClaimMapping;
use crate::model::{Timestamp, UpstreamIdentity, User, UserClaims};
use crate::store::StoreError;

/// Who an issuer says someone is.
#[derive(Debug)]
pub struct Identity {
    /// Stable at its issuer: the mapped subject claim, never an email.
    pub subject: String,
    pub username: Option<String>,
    pub claims: UserClaims,
}

impl Identity {
    /// `claims` read through `mapping`; `None` when the subject claim is missing.
    pub fn from_claims(claims: &Map<String, Value>, mapping: &ClaimMapping) -> Option<Self> {
        let text = |k: &str| claim_text(claims, k);
        Some(Self {
            subject: text(&mapping.subject)?,
            username: text(&mapping.username),
            claims: UserClaims {
                name: text(&mapping.name),
                given_name: text("given_name"),
                family_name: text("family_name"),
                email: text(&mapping.email),
                email_verified: claims.get("email_verified").and_then(Value::as_bool),
                picture: text("picture"),
                locale: text("locale"),
            },
        })
    }
}

/// Where an identity comes from.
#[derive(Debug, Clone, Copy)]
pub struct Federation<'a> {
    /// The issuer its subjects are unique at.
    pub issuer: &'a str,
    /// The configured name (an upstream provider's, a trusted issuer's):
    /// kept with the identity, and the start of a username made for it.
    pub name: &'a str,
    /// A username that exists locally (and is linked to no identity of this
    /// issuer) is that user.
    pub link_existing: bool,
}

/// A claim as text: a string, or a number (GitHub's `id`), at most 255
/// characters.
fn claim_text(claims: &Map<String, Value>, name: &str) -> Option<String> {
    let text = match claims.get(name)? {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    (!text.is_empty() && text.len() <= 255).then_some(text)
}

/// The user `identity` is: the one linked to it; else, with
/// `link_existing`, the local user of its username; else a new user with no
/// local password, under its username made unique. Its claims are brought
/// up to date.
pub async fn user_for(
    ctx: &Context,
    from: Federation<'_>,
    identity: &Identity,
    now: Timestamp,
) -> Result<User, OAuthError> {
    let issuer = from.issuer;
    if let Some(user) = ctx
        .store
        .find_upstream_user(issuer, &identity.subject)
        .await?
    {
        return refresh_claims(ctx, user, &identity.claims).await;
    }
    let wanted = username_from(from.name, identity);
    let link = |user_id: &str| UpstreamIdentity {
        issuer: issuer.to_owned(),
        subject: identity.subject.clone(),
        user_id: user_id.to_owned(),
        provider: from.name.to_owned(),
        created_at: now,
    };
    if from.link_existing {
        if let Some(user) = ctx.store.find_user_by_name(&wanted).await? {
            match ctx.store.link_upstream_identity(&link(&user.id)).await {
                Ok(()) | Err(StoreError::Conflict) => {}
                Err(e) => return Err(e.into()),
            }
            tracing::info!(issuer = %from.name, user = %user.id, "an identity from another issuer was linked to an existing user");
            return refresh_claims(ctx, user, &identity.claims).await;
        }
    }
    for attempt in 0..12u32 {
        let username = match attempt {
            0 => wanted.clone(),
            1..=8 => suffixed(&wanted, &(attempt + 1).to_string()),
            _ => suffixed(&wanted, new_id().get(14..22).unwrap_or("x")),
        };
        let user = User {
            id: new_id(),
            username,
            password_hash: None,
            claims: identity.claims.clone(),
            created_at: now,
        };
        match ctx.store.insert_upstream_user(&user, &link(&user.id)).await {
            Ok(()) => return Ok(user),
            Err(StoreError::Conflict) => {
                // The identity itself may have been created meanwhile (the
                // same person arriving twice at once).
                if let Some(user) = ctx
                    .store
                    .find_upstream_user(issuer, &identity.subject)
                    .await?
                {
                    return Ok(user);
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    tracing::error!(issuer = %from.name, "no free username for a new user from another issuer");
    Err(OAuthError::server_error())
}

/// The username the mapped claim gives (without spaces or control
/// characters, at most 64 characters), else `<name>-<subject>`.
fn username_from(name: &str, identity: &Identity) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .filter(|c| !c.is_whitespace() && !c.is_control())
            .take(64)
            .collect()
    };
    identity
        .username
        .as_deref()
        .map(clean)
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| clean(&format!("{name}-{}", identity.subject)))
}

fn suffixed(base: &str, suffix: &str) -> String {
    let keep = 64 - suffix.len() - 1;
    format!("{}-{suffix}", base.chars().take(keep).collect::<String>())
}

async fn refresh_claims(
    ctx: &Context,
    mut user: User,
    claims: &UserClaims,
) -> Result<User, OAuthError> {
    if &user.claims != claims {
        ctx.store.update_user_claims(&user.id, claims).await?;
        user.claims = claims.clone();
    }
    Ok(user)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_cleaned_and_suffixes_keep_them_short() {
        assert_eq!(suffixed(&"a".repeat(64), "2").len(), 64);
        assert_eq!(suffixed("alice", "2"), "alice-2");
        let nameless = Identity {
            subject: "u 1".into(),
            username: Some(" \t".into()),
            claims: UserClaims::default(),
        };
        assert_eq!(username_from("corp", &nameless), "corp-u1");
    }

    #[test]
    fn claims_are_read_through_the_mapping_and_the_subject_is_required() {
        let mapping = ClaimMapping {
            subject: "id".into(),
            username: "login".into(),
            name: "name".into(),
            email: "email".into(),
        };
        let claims = serde_json::json!({"id": 42, "login": "ada", "email": "ada@example.com"});
        let claims = claims.as_object().cloned().unwrap_or_default();
        let identity = Identity::from_claims(&claims, &mapping);
        assert_eq!(
            identity
                .as_ref()
                .map(|i| (i.subject.as_str(), i.username.as_deref())),
            Some(("42", Some("ada")))
        );
        let mut nobody = claims;
        nobody.remove("id");
        assert!(Identity::from_claims(&nobody, &mapping).is_none());
    }
}

//! OpenID Connect Core 1.0 parameters of the authorization request
//! (`prompt`, `max_age`, `nonce`, §3.1.2.1), the scopes that ask for
//! identity, and the standard claims each scope releases (§5.4).

use std::fmt;

use serde::{Deserialize, Serialize};

/// The scope that makes a request an OpenID Connect request (Core §3.1.2.1).
pub const OPENID: &str = "openid";

/// The scopes an OpenID provider understands beyond `openid` (Core §5.4):
/// each releases some of the standard claims.
pub const IDENTITY_SCOPES: &[&str] = &[OPENID, "profile", "email"];

/// The claims `profile` releases, of those a user record holds (Core §5.4).
pub const PROFILE_CLAIMS: &[&str] = &["name", "given_name", "family_name", "picture", "locale"];

/// The claims `email` releases (Core §5.4).
pub const EMAIL_CLAIMS: &[&str] = &["email", "email_verified"];

/// The longest `nonce` accepted: it is echoed in every ID Token of the grant.
pub const MAX_NONCE_LEN: usize = 512;

/// The standard claims `scope` releases (Core §5.4); `sub` always.
pub fn claims_for_scope<'a>(scopes: impl IntoIterator<Item = &'a str>) -> Vec<&'static str> {
    let mut claims = Vec::new();
    for s in scopes {
        match s {
            "profile" => claims.extend_from_slice(PROFILE_CLAIMS),
            "email" => claims.extend_from_slice(EMAIL_CLAIMS),
            _ => {}
        }
    }
    claims
}

/// What `prompt` asked of the authorization server (Core §3.1.2.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prompt {
    /// `none`: no page may be shown; an error if one would be.
    #[serde(default, skip_serializing_if = "is_false")]
    pub none: bool,
    /// `login` (or `select_account`, treated alike): the user signs in
    /// again even with a session.
    #[serde(default, skip_serializing_if = "is_false")]
    pub login: bool,
    /// `consent`: the consent page is shown even when consent is remembered.
    #[serde(default, skip_serializing_if = "is_false")]
    pub consent: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Why a `prompt`, `max_age` or `nonce` value was refused (`invalid_request`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OidcParamError {
    UnknownPrompt(String),
    NoneWithOthers,
    MaxAge,
    NonceTooLong,
    EmptyNonce,
}

impl fmt::Display for OidcParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownPrompt(v) => write!(
                f,
                "prompt `{v}` is not supported; use none, login, consent or select_account"
            ),
            Self::NoneWithOthers => f.write_str(
                "prompt `none` cannot be combined with other values (OpenID Connect Core §3.1.2.1)",
            ),
            Self::MaxAge => f.write_str("max_age must be a non-negative whole number of seconds"),
            Self::NonceTooLong => write!(f, "nonce is longer than {MAX_NONCE_LEN} characters"),
            Self::EmptyNonce => f.write_str("nonce must not be empty"),
        }
    }
}

impl std::error::Error for OidcParamError {}

impl Prompt {
    /// Parses the space-separated `prompt` value.
    pub fn parse(raw: &str) -> Result<Self, OidcParamError> {
        let mut prompt = Self::default();
        let mut count = 0;
        for value in raw.split(' ').filter(|v| !v.is_empty()) {
            count += 1;
            match value {
                "none" => prompt.none = true,
                "login" | "select_account" => prompt.login = true,
                "consent" => prompt.consent = true,
                other => return Err(OidcParamError::UnknownPrompt(other.to_owned())),
            }
        }
        if prompt.none && count > 1 {
            return Err(OidcParamError::NoneWithOthers);
        }
        Ok(prompt)
    }
}

/// `max_age` (Core §3.1.2.1): the most seconds since the user last signed
/// in that the client accepts.
pub fn parse_max_age(raw: &str) -> Result<i64, OidcParamError> {
    if raw.is_empty() || raw.len() > 12 || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(OidcParamError::MaxAge);
    }
    raw.parse().map_err(|_| OidcParamError::MaxAge)
}

/// `nonce` (Core §3.1.2.1): any string, within a bound.
pub fn parse_nonce(raw: &str) -> Result<&str, OidcParamError> {
    if raw.is_empty() {
        return Err(OidcParamError::EmptyNonce);
    }
    if raw.len() > MAX_NONCE_LEN {
        return Err(OidcParamError::NonceTooLong);
    }
    Ok(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_values_parse_and_none_stands_alone() {
        assert_eq!(
            Prompt::parse("login consent"),
            Ok(Prompt {
                none: false,
                login: true,
                consent: true
            })
        );
        assert!(Prompt::parse("select_account").is_ok_and(|p| p.login));
        assert!(Prompt::parse("none").is_ok_and(|p| p.none));
        assert_eq!(
            Prompt::parse("none login"),
            Err(OidcParamError::NoneWithOthers)
        );
        assert!(matches!(
            Prompt::parse("always"),
            Err(OidcParamError::UnknownPrompt(v)) if v == "always"
        ));
        assert_eq!(Prompt::parse(""), Ok(Prompt::default()));
    }

    #[test]
    fn max_age_is_a_non_negative_integer() {
        assert_eq!(parse_max_age("0"), Ok(0));
        assert_eq!(parse_max_age("3600"), Ok(3600));
        for bad in ["", "-1", "1.5", "ten", "9999999999999", "+5"] {
            assert_eq!(parse_max_age(bad), Err(OidcParamError::MaxAge), "{bad}");
        }
    }

    #[test]
    fn nonces_are_bounded() {
        assert_eq!(parse_nonce("n-0S6_WzA2Mj"), Ok("n-0S6_WzA2Mj"));
        assert_eq!(parse_nonce(""), Err(OidcParamError::EmptyNonce));
        assert_eq!(
            parse_nonce(&"a".repeat(MAX_NONCE_LEN + 1)),
            Err(OidcParamError::NonceTooLong)
        );
    }

    #[test]
    fn each_scope_releases_its_claims() {
        assert_eq!(claims_for_scope(["openid"]), Vec::<&str>::new());
        assert_eq!(
            claims_for_scope(["openid", "email"]),
            vec!["email", "email_verified"]
        );
        assert!(claims_for_scope(["profile"]).contains(&"name"));
    }
}

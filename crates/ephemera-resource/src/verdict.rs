//! From an introspection answer to a [`TokenContext`] or a [`Rejection`]:
//! the checks that do not depend on the request (active, issuer, audience,
//! bearer usability), and the scope check that does.

use ephemera_proto::wire::IntrospectionResponse;

use crate::config::IntrospectionConfig;
use crate::context::TokenContext;
use crate::rejection::Rejection;

/// Accepts an introspection answer as a bearer access token for this
/// resource server, or says why not.
pub fn accept(
    response: &IntrospectionResponse,
    config: &IntrospectionConfig,
) -> Result<TokenContext, Rejection> {
    if !response.active {
        return Err(Rejection::InvalidToken("the token is not active"));
    }
    // An answer for another issuer's token (or without one) does not vouch
    // for a token of ours.
    if response.iss.as_deref() != Some(config.issuer.as_str()) {
        return Err(Rejection::InvalidToken(
            "the token was not issued by the expected issuer",
        ));
    }
    let audiences = response.audiences();
    if let Some(audience) = &config.audience {
        if !audiences.iter().any(|a| a == audience) {
            return Err(Rejection::InvalidToken(
                "the token is not meant for this resource",
            ));
        }
    }
    // A sender-constrained token (DPoP, RFC 9449 §6; mTLS, RFC 8705 §3.1)
    // must never be accepted on a bare Authorization: Bearer header, or
    // stealing it would be enough to use it.
    if response.cnf.is_some() {
        return Err(Rejection::InvalidToken("the token is bound to a key"));
    }
    match response.token_type.as_deref() {
        None => {}
        Some(t) if t.eq_ignore_ascii_case("Bearer") => {}
        Some(t) if t.eq_ignore_ascii_case("DPoP") => {
            return Err(Rejection::InvalidToken("the token is bound to a key"));
        }
        // Anything else (a refresh token, say) is not a bearer access token.
        Some(_) => {
            return Err(Rejection::InvalidToken(
                "the token is not a bearer access token",
            ))
        }
    }
    Ok(TokenContext {
        subject: response.sub.clone(),
        scopes: response
            .scope
            .as_deref()
            .unwrap_or_default()
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        client_id: response.client_id.clone(),
        grant_id: response.grant_id.clone(),
        client_kind: response.client_kind.clone(),
        client_metadata: response.client_metadata.clone(),
        audiences,
        expires_at: response.exp,
    })
}

/// Every required scope must be among the token's (RFC 6750 §3.1).
pub fn check_scopes(context: &TokenContext, required: &[String]) -> Result<(), Rejection> {
    if required.iter().all(|scope| context.has_scope(scope)) {
        Ok(())
    } else {
        Err(Rejection::InsufficientScope(required.join(" ")))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    const ISSUER: &str = "http://as.example";

    fn config() -> IntrospectionConfig {
        IntrospectionConfig::new("http://as.example/introspect", "rs", "secret", ISSUER)
    }

    fn active() -> IntrospectionResponse {
        IntrospectionResponse {
            active: true,
            iss: Some(ISSUER.into()),
            sub: Some("alice".into()),
            scope: Some("read write".into()),
            client_id: Some("app".into()),
            token_type: Some("Bearer".into()),
            aud: Some(json!(["https://api.example", "https://other.example"])),
            exp: Some(2_000_000_000),
            ..IntrospectionResponse::default()
        }
    }

    #[test]
    fn an_active_token_from_our_issuer_is_accepted_with_its_details() {
        let context = accept(&active(), &config()).unwrap();
        assert_eq!(context.subject.as_deref(), Some("alice"));
        assert_eq!(context.scopes, ["read", "write"]);
        assert_eq!(
            context.audiences,
            ["https://api.example", "https://other.example"]
        );
        assert_eq!(context.expires_at, Some(2_000_000_000));
    }

    #[test]
    fn inactive_or_foreign_tokens_are_invalid() {
        let inactive = IntrospectionResponse::inactive();
        assert!(matches!(
            accept(&inactive, &config()),
            Err(Rejection::InvalidToken(_))
        ));
        let foreign = IntrospectionResponse {
            iss: Some("http://evil.example".into()),
            ..active()
        };
        assert!(matches!(
            accept(&foreign, &config()),
            Err(Rejection::InvalidToken(_))
        ));
        let anonymous = IntrospectionResponse {
            iss: None,
            ..active()
        };
        assert!(matches!(
            accept(&anonymous, &config()),
            Err(Rejection::InvalidToken(_))
        ));
    }

    #[test]
    fn the_audience_may_be_a_string_or_an_array_and_must_match() {
        let config = config().audience("https://api.example");
        assert!(accept(&active(), &config).is_ok());
        let single = IntrospectionResponse {
            aud: Some(json!("https://api.example")),
            ..active()
        };
        assert!(accept(&single, &config).is_ok());
        let other = IntrospectionResponse {
            aud: Some(json!("https://other.example")),
            ..active()
        };
        assert!(matches!(
            accept(&other, &config),
            Err(Rejection::InvalidToken(_))
        ));
        let none = IntrospectionResponse {
            aud: None,
            ..active()
        };
        assert!(matches!(
            accept(&none, &config),
            Err(Rejection::InvalidToken(_))
        ));
    }

    #[test]
    fn bound_tokens_are_not_bearer_tokens() {
        let dpop = IntrospectionResponse {
            token_type: Some("DPoP".into()),
            ..active()
        };
        assert!(matches!(
            accept(&dpop, &config()),
            Err(Rejection::InvalidToken(_))
        ));
        let cnf = IntrospectionResponse {
            cnf: Some(json!({"jkt": "x"})),
            ..active()
        };
        assert!(matches!(
            accept(&cnf, &config()),
            Err(Rejection::InvalidToken(_))
        ));
        let refresh = IntrospectionResponse {
            token_type: Some("refresh_token".into()),
            ..active()
        };
        assert!(matches!(
            accept(&refresh, &config()),
            Err(Rejection::InvalidToken(_))
        ));
        let untyped = IntrospectionResponse {
            token_type: None,
            ..active()
        };
        assert!(accept(&untyped, &config()).is_ok());
    }

    #[test]
    fn every_required_scope_must_be_present() {
        let context = accept(&active(), &config()).unwrap();
        assert_eq!(check_scopes(&context, &["read".into()]), Ok(()));
        assert_eq!(
            check_scopes(&context, &["read".into(), "admin".into()]),
            Err(Rejection::InsufficientScope("read admin".into()))
        );
        assert_eq!(check_scopes(&context, &[]), Ok(()));
    }
}

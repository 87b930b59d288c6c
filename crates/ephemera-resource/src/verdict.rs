//! From an introspection answer to a [`TokenContext`] or a [`Rejection`]:
//! the checks that do not depend on the request (active, issuer, audience,
//! an access token, a binding we can check), and the scope check that does.
//! Whether the request proves the binding is `binding`'s business.

use ephemera_proto::wire::IntrospectionResponse;
use serde_json::Value;

use crate::config::IntrospectionConfig;
use crate::context::TokenContext;
use crate::rejection::Rejection;

/// The `cnf` member of a DPoP-bound token (RFC 9449 §6.1).
const JKT: &str = "jkt";
/// The `cnf` member of a certificate-bound token (RFC 8705 §3.1).
const X5T_S256: &str = "x5t#S256";

/// Accepts an introspection answer as an access token for this resource
/// server, with the binding it must be presented with, or says why not.
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
    let dpop_typed = match response.token_type.as_deref() {
        None => false,
        Some(t) if t.eq_ignore_ascii_case("Bearer") => false,
        Some(t) if t.eq_ignore_ascii_case("DPoP") => true,
        // Anything else (a refresh token, say) is not an access token.
        Some(_) => return Err(Rejection::InvalidToken("the token is not an access token")),
    };
    let (dpop_jkt, certificate_thumbprint) = binding(response.cnf.as_ref())?;
    // RFC 9449 §6.2: a DPoP token's introspection names its key; without
    // the key there is nothing to hold the presenter to.
    if dpop_typed && dpop_jkt.is_none() {
        return Err(Rejection::InvalidToken(
            "the token is DPoP-bound but its key is unknown",
        ));
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
        token_type: response.token_type.clone(),
        dpop_jkt,
        certificate_thumbprint,
        act: response.extra.get("act").cloned(),
    })
}

/// The key thumbprint and certificate thumbprint of `cnf` (RFC 7800 §3.1).
/// A confirmation this resource server cannot check (`jwk`, `kid`, ...)
/// or an empty one refuses the token: failing open would turn a
/// sender-constrained token back into a bearer token.
pub fn binding(cnf: Option<&Value>) -> Result<(Option<String>, Option<String>), Rejection> {
    const UNCHECKABLE: Rejection =
        Rejection::InvalidToken("the token is bound in a way this resource server cannot check");
    let Some(cnf) = cnf else {
        return Ok((None, None));
    };
    let Value::Object(members) = cnf else {
        return Err(UNCHECKABLE);
    };
    if members.is_empty() || members.keys().any(|k| k != JKT && k != X5T_S256) {
        return Err(UNCHECKABLE);
    }
    let member = |name: &str| match members.get(name) {
        None => Ok(None),
        Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
        Some(_) => Err(UNCHECKABLE),
    };
    Ok((member(JKT)?, member(X5T_S256)?))
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
    fn a_refresh_token_is_not_an_access_token() {
        let refresh = IntrospectionResponse {
            token_type: Some("refresh_token".into()),
            ..active()
        };
        assert_eq!(
            accept(&refresh, &config()),
            Err(Rejection::InvalidToken("the token is not an access token"))
        );
        let untyped = IntrospectionResponse {
            token_type: None,
            ..active()
        };
        assert!(accept(&untyped, &config()).is_ok());
    }

    #[test]
    fn bound_tokens_carry_their_binding() {
        let dpop = IntrospectionResponse {
            token_type: Some("DPoP".into()),
            cnf: Some(json!({"jkt": "key-thumbprint"})),
            ..active()
        };
        let context = accept(&dpop, &config()).unwrap();
        assert_eq!(context.dpop_jkt.as_deref(), Some("key-thumbprint"));
        assert_eq!(context.certificate_thumbprint, None);
        assert_eq!(context.token_type.as_deref(), Some("DPoP"));
        let mtls = IntrospectionResponse {
            cnf: Some(json!({"x5t#S256": "cert-thumbprint"})),
            ..active()
        };
        let context = accept(&mtls, &config()).unwrap();
        assert_eq!(context.dpop_jkt, None);
        assert_eq!(
            context.certificate_thumbprint.as_deref(),
            Some("cert-thumbprint")
        );
        assert!(context.is_bound());
        assert!(!accept(&active(), &config()).unwrap().is_bound());
    }

    #[test]
    fn bindings_that_cannot_be_checked_refuse_the_token() {
        for cnf in [
            json!({"jwk": {"kty": "EC"}}),
            json!({"jkt": "k", "kid": "x"}),
            json!({}),
            json!({"jkt": 1}),
            json!({"jkt": ""}),
            json!("jkt"),
        ] {
            let answer = IntrospectionResponse {
                cnf: Some(cnf.clone()),
                ..active()
            };
            assert!(
                matches!(accept(&answer, &config()), Err(Rejection::InvalidToken(_))),
                "{cnf}"
            );
        }
        let keyless_dpop = IntrospectionResponse {
            token_type: Some("DPoP".into()),
            ..active()
        };
        assert!(matches!(
            accept(&keyless_dpop, &config()),
            Err(Rejection::InvalidToken(_))
        ));
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

//! Ephemera's wire types and stateless protocol checks.
//!
//! Everything here is pure: no I/O, no clock, no randomness. The server, the
//! client library and the resource-server layer all depend on this crate and
//! never on each other.
//!
//! | module | owns |
//! |---|---|
//! | [`error`] | the closed set of OAuth error codes and the RFC 6749 §5.2 error body |
//! | [`form`] | `application/x-www-form-urlencoded` bodies: duplicates and empty values (RFC 6749 §3.1) |
//! | [`pkce`] | `code_challenge` / `code_verifier` syntax and the S256 transform (RFC 7636) |
//! | [`redirect`] | `redirect_uri` parsing, the three allowed forms, loopback matching (RFC 8252) |
//! | [`scope`] | scope strings as sets of scope-tokens (RFC 6749 §3.3) |
//! | [`resource`] | resource indicators (RFC 8707 §2) |
//! | [`metadata`] | RFC 7591 client metadata, parsed and validated (the pushed `client_registration`) |
//! | [`jose`] | public JWKs, RFC 7638 thumbprints, the algorithm allow-list, signature checks |
//! | [`dpop`] | DPoP proofs (RFC 9449) |
//! | [`assertion`] | JWT client assertions (RFC 7523, `private_key_jwt`) |
//! | [`assertion_grant`] | JWTs as authorization grants (RFC 7523 §2.1): ID-JAGs and workloads' JWTs |
//! | [`access_token`] | JWT access tokens (RFC 9068): their claims, and the checks a resource server makes on one |
//! | [`id_token`] | an upstream provider's ID Token as a relying party checks it (OpenID Connect Core §3.1.3.7) |
//! | [`federation`] | OpenID Federation 1.0: entity statements, metadata policies, constraints, trust marks, trust chain validation |
//! | [`client_document`] | Client ID Metadata Documents: the URL and document rules, and the addresses never fetched from |
//! | [`json`] | the limit on JSON nesting, checked before parsing |
//! | [`oidc`] | OpenID Connect request parameters (`prompt`, `max_age`, `nonce`), the identity scopes and the claims each releases |
//! | [`spiffe`] | SPIFFE workloads as clients: SPIFFE IDs, trust bundles, the stateless checks of a JWT-SVID client assertion |
//! | [`token`] | the token request: its grant type and each grant type's parameters, typed |
//! | [`wire`] | JSON response bodies: PAR, token, introspection, server metadata (RFC 8414) |

pub mod access_token;
pub mod assertion;
pub mod assertion_grant;
pub mod client_document;
pub mod dpop;
pub mod error;
pub mod federation;
pub mod form;
pub mod id_token;
pub mod jose;
pub mod json;
pub mod metadata;
pub mod oidc;
pub mod pkce;
pub mod redirect;
pub mod resource;
pub mod scope;
pub mod spiffe;
pub mod token;
pub mod wire;

/// The `client_id` a client with no prior registration uses at PAR
/// (draft-richer-oauth-pushed-client-registration, byte for byte).
pub const PUSHED_CLIENT_URN: &str = "urn:ietf:oauth:parameters:dynamic";

/// The prefix of every `request_uri` the PAR endpoint issues (RFC 9126 §2.2).
pub const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// The least clock skew a proof's `iat` (and an assertion's `nbf`) is
/// allowed into the future, in seconds: the FAPI 2.0 Security Profile
/// (§5.3.2.1) requires accepting 0 to 10 seconds.
pub const MIN_FUTURE_SKEW: i64 = 10;

/// How far into the future `iat` and `nbf` may lie with `leeway` configured:
/// the leeway, but never less than [`MIN_FUTURE_SKEW`].
pub fn future_skew(leeway: i64) -> i64 {
    leeway.max(MIN_FUTURE_SKEW)
}

/// Whether `client_id` names a pushed client.
pub fn is_pushed_client_urn(client_id: &str) -> bool {
    ClientRef::parse(client_id) == ClientRef::PushedUrn
}

/// What a `client_id` names, read before anything is looked up: which
/// client model resolves it. (SPIFFE IDs will be a variant of their own.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientRef<'a> {
    /// [`PUSHED_CLIENT_URN`]: the client describes itself in its pushed
    /// request, and later requests find it in their grant.
    PushedUrn,
    /// A URL: the client's metadata document
    /// (draft-ietf-oauth-client-id-metadata-document), or, on a server in an
    /// OpenID Federation, possibly an entity identifier: the string cannot
    /// tell them apart, the server's resolver asks the URL for an Entity
    /// Configuration. `http://` URLs land here too, to be refused with a
    /// clear message.
    Url(&'a str),
    /// An identifier the server issued (RFC 7591) or its operator chose.
    Id(&'a str),
}

impl<'a> ClientRef<'a> {
    pub fn parse(client_id: &'a str) -> Self {
        if client_id == PUSHED_CLIENT_URN {
            Self::PushedUrn
        } else if client_id.starts_with("https://") || client_id.starts_with("http://") {
            Self::Url(client_id)
        } else {
            Self::Id(client_id)
        }
    }

    /// The `client_id` as sent.
    pub fn as_str(&self) -> &'a str {
        match self {
            Self::PushedUrn => PUSHED_CLIENT_URN,
            Self::Url(s) | Self::Id(s) => s,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_id_names_the_urn_a_url_or_an_id() {
        assert_eq!(ClientRef::parse(PUSHED_CLIENT_URN), ClientRef::PushedUrn);
        assert_eq!(
            ClientRef::parse("https://app.example/client.json"),
            ClientRef::Url("https://app.example/client.json")
        );
        assert_eq!(
            ClientRef::parse("http://app.example/c"),
            ClientRef::Url("http://app.example/c")
        );
        assert_eq!(ClientRef::parse("my-app"), ClientRef::Id("my-app"));
        // Byte for byte: a near miss is somebody's id, not the URN.
        assert_eq!(
            ClientRef::parse("URN:ietf:oauth:parameters:dynamic"),
            ClientRef::Id("URN:ietf:oauth:parameters:dynamic")
        );
        assert_eq!(ClientRef::parse("my-app").as_str(), "my-app");
    }
}

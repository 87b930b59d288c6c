//! PKCE (RFC 7636): syntax of challenges and verifiers, and the S256 check.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Why a PKCE value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PkceError {
    #[error("code_challenge_method must be S256 (plain is not allowed)")]
    UnsupportedMethod,
    #[error("code_challenge must be 43 to 128 characters of [A-Za-z0-9-._~] (RFC 7636 §4.2)")]
    MalformedChallenge,
    #[error("code_verifier must be 43 to 128 characters of [A-Za-z0-9-._~] (RFC 7636 §4.1)")]
    MalformedVerifier,
}

fn is_pkce_syntax(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// An S256 `code_challenge`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeChallenge(String);

impl CodeChallenge {
    /// Parses a challenge and its method; only `S256` is accepted. A missing
    /// method means `plain` (RFC 7636 §4.3), which is refused.
    pub fn parse(challenge: &str, method: Option<&str>) -> Result<Self, PkceError> {
        if method != Some("S256") {
            return Err(PkceError::UnsupportedMethod);
        }
        if !is_pkce_syntax(challenge) {
            return Err(PkceError::MalformedChallenge);
        }
        Ok(Self(challenge.to_owned()))
    }

    /// Rebuilds a challenge that was validated before it was stored.
    pub fn from_stored(challenge: String) -> Self {
        Self(challenge)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// RFC 7636 §4.6: `BASE64URL(SHA256(verifier)) == challenge`, in constant time.
    pub fn is_satisfied_by(&self, verifier: &CodeVerifier) -> bool {
        let computed = s256(&verifier.0);
        computed.as_bytes().ct_eq(self.0.as_bytes()).into()
    }
}

/// A `code_verifier`; deliberately neither `Clone` nor printable.
pub struct CodeVerifier(String);

impl CodeVerifier {
    pub fn parse(verifier: &str) -> Result<Self, PkceError> {
        if !is_pkce_syntax(verifier) {
            return Err(PkceError::MalformedVerifier);
        }
        Ok(Self(verifier.to_owned()))
    }

    pub fn secret(&self) -> &str {
        &self.0
    }

    /// The S256 challenge for this verifier.
    pub fn challenge(&self) -> CodeChallenge {
        CodeChallenge(s256(&self.0))
    }
}

impl std::fmt::Debug for CodeVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CodeVerifier([redacted])")
    }
}

/// `BASE64URL-ENCODE(SHA256(ASCII(input)))`.
pub fn s256(input: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(input.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b_example_verifies() {
        let verifier = CodeVerifier::parse("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        let challenge =
            CodeChallenge::parse("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", Some("S256"));
        assert!(matches!((verifier, challenge), (Ok(v), Ok(c)) if c.is_satisfied_by(&v)));
    }

    #[test]
    fn plain_and_missing_methods_are_refused() {
        let c = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert_eq!(
            CodeChallenge::parse(c, Some("plain")),
            Err(PkceError::UnsupportedMethod)
        );
        assert_eq!(
            CodeChallenge::parse(c, None),
            Err(PkceError::UnsupportedMethod)
        );
    }

    #[test]
    fn short_or_odd_values_are_refused() {
        assert_eq!(
            CodeChallenge::parse("abc", Some("S256")),
            Err(PkceError::MalformedChallenge)
        );
        assert!(CodeVerifier::parse(&"a".repeat(129)).is_err());
        assert!(CodeVerifier::parse(&format!("{}!", "a".repeat(50))).is_err());
    }

    #[test]
    fn a_different_verifier_does_not_satisfy() {
        let v1 = CodeVerifier::parse(&"a".repeat(43));
        let v2 = CodeVerifier::parse(&"b".repeat(43));
        assert!(matches!((v1, v2), (Ok(a), Ok(b)) if !a.challenge().is_satisfied_by(&b)));
    }
}

//! Scope values as sets of scope-tokens (RFC 6749 §3.3).

use std::collections::BTreeSet;

/// Why a scope string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("scope is malformed: scope-tokens are separated by single spaces and use %x21 / %x23-5B / %x5D-7E (RFC 6749 §3.3)")]
pub struct ScopeError;

/// A set of scope-tokens; the order of the request does not matter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope(BTreeSet<String>);

fn is_scope_token(t: &str) -> bool {
    !t.is_empty()
        && t.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

impl Scope {
    pub fn parse(s: &str) -> Result<Self, ScopeError> {
        let mut set = BTreeSet::new();
        for token in s.split(' ') {
            if !is_scope_token(token) {
                return Err(ScopeError);
            }
            set.insert(token.to_owned());
        }
        Ok(Self(set))
    }

    pub fn from_tokens<I, S>(tokens: I) -> Result<Self, ScopeError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut set = BTreeSet::new();
        for token in tokens {
            let token = token.into();
            if !is_scope_token(&token) {
                return Err(ScopeError);
            }
            set.insert(token);
        }
        Ok(Self(set))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn is_subset(&self, other: &Scope) -> bool {
        self.0.is_subset(&other.0)
    }

    pub fn contains(&self, token: &str) -> bool {
        self.0.contains(token)
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// The tokens of `self` that are not in `other`.
    pub fn difference<'a>(&'a self, other: &'a Scope) -> impl Iterator<Item = &'a str> {
        self.0.difference(&other.0).map(String::as_str)
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut first = true;
        for t in &self.0 {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(t)?;
            first = false;
        }
        Ok(())
    }
}

impl serde::Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Scope {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.is_empty() {
            return Ok(Scope::default());
        }
        Scope::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_compare_as_sets() {
        let a = Scope::parse("write read");
        let b = Scope::parse("read write admin");
        assert!(matches!((&a, &b), (Ok(a), Ok(b)) if a.is_subset(b) && !b.is_subset(a)));
        assert_eq!(a.map(|s| s.to_string()).as_deref(), Ok("read write"));
    }

    #[test]
    fn malformed_scopes_are_refused() {
        assert_eq!(Scope::parse("a  b"), Err(ScopeError));
        assert_eq!(Scope::parse("a\"b"), Err(ScopeError));
        assert_eq!(Scope::parse("a\\b"), Err(ScopeError));
        assert_eq!(Scope::parse(" a"), Err(ScopeError));
    }
}

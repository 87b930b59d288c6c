//! Form-encoded parameters as RFC 6749 §3.1 reads them: a parameter sent
//! without a value is treated as omitted, and no parameter may appear twice.

use std::collections::{BTreeMap, BTreeSet};

/// Why a form body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    #[error("parameter `{0}` is included more than once")]
    Repeated(String),
    #[error("too many parameters (at most {0})")]
    TooMany(usize),
}

/// Parsed parameters of a query string or form body, at most one value each
/// (except the multi-valued ones of [`MULTI_VALUED`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    values: BTreeMap<String, String>,
    multi: BTreeMap<String, Vec<String>>,
}

/// Parameters that may legitimately repeat: `resource` (RFC 8707 §2) and
/// `audience` (RFC 8693 §2.1).
pub const MULTI_VALUED: &[&str] = &["resource", "audience"];

/// The most parameters one request may carry; no OAuth request needs more.
pub const MAX_PARAMS: usize = 64;

impl Params {
    /// Parses `a=1&b=2`; empty values are dropped, repeats are refused.
    pub fn parse(input: &[u8]) -> Result<Self, FormError> {
        let mut values = BTreeMap::new();
        let mut multi: BTreeMap<String, Vec<String>> = BTreeMap::new();
        // Every single-valued name sent, with or without a value: an empty
        // value is treated as omitted but still counts as the parameter being
        // sent, so `a=&a=1` repeats `a` as much as `a=1&a=` does (RFC 6749 §3.1).
        let mut sent = BTreeSet::new();
        let mut count = 0usize;
        for (name, value) in form_urlencoded::parse(input) {
            count += 1;
            if count > MAX_PARAMS {
                return Err(FormError::TooMany(MAX_PARAMS));
            }
            if MULTI_VALUED.contains(&name.as_ref()) {
                if !value.is_empty() {
                    multi
                        .entry(name.into_owned())
                        .or_default()
                        .push(value.into_owned());
                }
                continue;
            }
            if !sent.insert(name.clone()) {
                return Err(FormError::Repeated(name.into_owned()));
            }
            if !value.is_empty() {
                values.insert(name.into_owned(), value.into_owned());
            }
        }
        Ok(Self { values, multi })
    }

    /// Every value of a multi-valued parameter such as `resource`.
    pub fn get_all(&self, name: &str) -> &[String] {
        self.multi.get(name).map(Vec::as_slice).unwrap_or_default()
    }

    /// The value of `name`, if present and non-empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// Whether `name` was sent with a value.
    pub fn contains(&self, name: &str) -> bool {
        self.values.contains_key(name) || self.multi.contains_key(name)
    }

    /// All parameter names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        let mut names: Vec<&str> = self
            .values
            .keys()
            .chain(self.multi.keys())
            .map(String::as_str)
            .collect();
        names.sort_unstable();
        names.into_iter()
    }

    /// Builds parameters from pairs (tests and re-encoding).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let encoded = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        Self::parse(encoded.as_bytes()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_sorted_across_single_and_multi_valued_parameters() {
        let names = Params::parse(b"scope=a&resource=https%3A%2F%2Frs.example")
            .map(|p| p.names().map(str::to_owned).collect::<Vec<_>>());
        assert_eq!(names, Ok(vec!["resource".to_owned(), "scope".to_owned()]));
    }

    #[test]
    fn repeated_parameters_are_refused() {
        assert_eq!(
            Params::parse(b"a=1&a=2"),
            Err(FormError::Repeated("a".into()))
        );
    }

    #[test]
    fn a_parameter_sent_empty_and_then_with_a_value_is_refused() {
        // Found by the `form` fuzz target: only the other order was refused.
        assert_eq!(
            Params::parse(b"a=&a=1"),
            Err(FormError::Repeated("a".into()))
        );
        assert_eq!(
            Params::parse(b"a=1&a="),
            Err(FormError::Repeated("a".into()))
        );
        assert_eq!(
            Params::parse(b"a=&a="),
            Err(FormError::Repeated("a".into()))
        );
    }

    #[test]
    fn empty_values_count_as_omitted() {
        let p = Params::parse(b"a=&b=2").unwrap_or_default();
        assert_eq!(p.get("a"), None);
        assert_eq!(p.get("b"), Some("2"));
    }

    #[test]
    fn percent_and_plus_are_decoded() {
        let p = Params::parse(b"scope=read+write&x=%2F").unwrap_or_default();
        assert_eq!(p.get("scope"), Some("read write"));
        assert_eq!(p.get("x"), Some("/"));
    }

    #[test]
    fn resource_may_repeat() {
        let p =
            Params::parse(b"resource=https%3A%2F%2Fa&resource=https%3A%2F%2Fb").unwrap_or_default();
        assert_eq!(p.get_all("resource"), ["https://a", "https://b"]);
    }

    #[test]
    fn too_many_parameters_are_refused() {
        let body: Vec<String> = (0..=MAX_PARAMS).map(|i| format!("p{i}=v")).collect();
        assert_eq!(
            Params::parse(body.join("&").as_bytes()),
            Err(FormError::TooMany(MAX_PARAMS))
        );
    }
}

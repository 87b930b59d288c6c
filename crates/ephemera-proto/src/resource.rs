//! Resource indicators (RFC 8707 §2): absolute URIs without a fragment.

use url::Url;

/// Why a `resource` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("resource must be an absolute URI without a fragment (RFC 8707 §2)")]
pub struct ResourceError;

/// One `resource` parameter value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ResourceIndicator(String);

impl ResourceIndicator {
    pub fn parse(raw: &str) -> Result<Self, ResourceError> {
        let url = Url::parse(raw).map_err(|_| ResourceError)?;
        if url.fragment().is_some() || raw.contains('#') || url.cannot_be_a_base() {
            return Err(ResourceError);
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_must_be_absolute_without_fragment() {
        assert!(ResourceIndicator::parse("https://api.example/v1").is_ok());
        assert_eq!(ResourceIndicator::parse("api"), Err(ResourceError));
        assert_eq!(
            ResourceIndicator::parse("https://api.example/#x"),
            Err(ResourceError)
        );
    }
}

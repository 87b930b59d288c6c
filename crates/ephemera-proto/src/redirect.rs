//! `redirect_uri` values: parsing, the forms a deployment may allow, and
//! matching against registered values (RFC 6749 §3.1.2, RFC 8252 §7).

use url::{Host, Url};

/// Why a redirect URI was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedirectUriError {
    #[error("redirect_uri is not an absolute URI")]
    NotAbsolute,
    #[error("redirect_uri must not contain a fragment (RFC 6749 §3.1.2)")]
    Fragment,
    #[error("redirect_uri must not contain user information")]
    UserInfo,
    #[error("redirect_uri is longer than {0} characters")]
    TooLong(usize),
    #[error("redirect_uri scheme `{0}` is not allowed")]
    Scheme(String),
}

/// The shape of a redirect URI, which policy allows or refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedirectForm {
    /// `https://host/...`
    Https,
    /// `http://127.0.0.1`, `http://[::1]` or `http://localhost`, any port (RFC 8252 §7.3).
    LoopbackHttp,
    /// A private-use scheme with a dot in it, `com.example.app:/cb` (RFC 8252 §7.1).
    PrivateUse,
    /// Plain `http` to a non-loopback host.
    Http,
}

/// The longest redirect URI accepted.
pub const MAX_REDIRECT_URI_LEN: usize = 2000;

/// A syntactically valid redirect URI, kept exactly as the client sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectUri {
    raw: String,
    url: Url,
    form: RedirectForm,
}

/// Schemes that can never be a redirect target: they run code or read files.
const FORBIDDEN_SCHEMES: &[&str] = &["javascript", "data", "vbscript", "file", "about", "blob"];

impl RedirectUri {
    pub fn parse(raw: &str) -> Result<Self, RedirectUriError> {
        if raw.len() > MAX_REDIRECT_URI_LEN {
            return Err(RedirectUriError::TooLong(MAX_REDIRECT_URI_LEN));
        }
        let url = Url::parse(raw).map_err(|_| RedirectUriError::NotAbsolute)?;
        if url.fragment().is_some() || raw.contains('#') {
            return Err(RedirectUriError::Fragment);
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(RedirectUriError::UserInfo);
        }
        let scheme = url.scheme();
        if FORBIDDEN_SCHEMES.contains(&scheme) {
            return Err(RedirectUriError::Scheme(scheme.to_owned()));
        }
        let form = match scheme {
            "https" if url.host().is_some() => RedirectForm::Https,
            "http" if is_loopback(&url) => RedirectForm::LoopbackHttp,
            "http" if url.host().is_some() => RedirectForm::Http,
            "http" | "https" => return Err(RedirectUriError::NotAbsolute),
            s if s.contains('.') => RedirectForm::PrivateUse,
            s => return Err(RedirectUriError::Scheme(s.to_owned())),
        };
        Ok(Self {
            raw: raw.to_owned(),
            url,
            form,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }

    pub fn form(&self) -> RedirectForm {
        self.form
    }

    /// The host shown to the user on the consent page (the scheme for
    /// private-use URIs, which have no host).
    pub fn display_host(&self) -> String {
        match self.url.host_str() {
            Some(host) => match self.url.port() {
                Some(port) => format!("{host}:{port}"),
                None => host.to_owned(),
            },
            None => format!("{}:", self.url.scheme()),
        }
    }

    /// Whether this URI, sent in a request, matches `registered`: simple string
    /// comparison (RFC 6749 §3.1.2.2), except that a loopback URI may use any
    /// port (RFC 8252 §7.3).
    pub fn matches(&self, registered: &RedirectUri) -> bool {
        if self.raw == registered.raw {
            return true;
        }
        self.form == RedirectForm::LoopbackHttp
            && registered.form == RedirectForm::LoopbackHttp
            && self.url.host() == registered.url.host()
            && self.url.path() == registered.url.path()
            && self.url.query() == registered.url.query()
    }

    /// This URI with the authorization response parameters appended to its
    /// query (RFC 6749 §4.1.2), keeping any query it already had.
    pub fn with_params<'a>(&self, params: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
        let mut url = self.url.clone();
        url.query_pairs_mut().extend_pairs(params);
        url.to_string()
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(s: &str) -> Result<RedirectForm, RedirectUriError> {
        RedirectUri::parse(s).map(|r| r.form())
    }

    #[test]
    fn forms_are_classified() {
        assert_eq!(form("https://app.example/cb"), Ok(RedirectForm::Https));
        assert_eq!(
            form("http://127.0.0.1:4000/cb"),
            Ok(RedirectForm::LoopbackHttp)
        );
        assert_eq!(form("http://[::1]/cb"), Ok(RedirectForm::LoopbackHttp));
        assert_eq!(
            form("http://localhost:1/cb"),
            Ok(RedirectForm::LoopbackHttp)
        );
        assert_eq!(form("com.example.app:/cb"), Ok(RedirectForm::PrivateUse));
        assert_eq!(form("http://app.example/cb"), Ok(RedirectForm::Http));
    }

    #[test]
    fn dangerous_or_malformed_uris_are_refused() {
        assert_eq!(
            form("javascript:alert(1)"),
            Err(RedirectUriError::Scheme("javascript".into()))
        );
        assert_eq!(
            form("data:text/html,x"),
            Err(RedirectUriError::Scheme("data".into()))
        );
        assert_eq!(
            form("https://a.example/cb#x"),
            Err(RedirectUriError::Fragment)
        );
        assert_eq!(
            form("https://u:p@a.example/cb"),
            Err(RedirectUriError::UserInfo)
        );
        assert_eq!(form("/relative"), Err(RedirectUriError::NotAbsolute));
        assert_eq!(
            form("myapp:/cb"),
            Err(RedirectUriError::Scheme("myapp".into()))
        );
    }

    #[test]
    fn loopback_matches_any_port_but_nothing_else_varies() {
        let reg = RedirectUri::parse("http://127.0.0.1/cb");
        let req = RedirectUri::parse("http://127.0.0.1:5555/cb");
        let other = RedirectUri::parse("http://127.0.0.1:5555/other");
        assert!(matches!((&req, &reg), (Ok(a), Ok(b)) if a.matches(b)));
        assert!(matches!((&other, &reg), (Ok(a), Ok(b)) if !a.matches(b)));
        let https = RedirectUri::parse("https://a.example/cb/");
        let https_reg = RedirectUri::parse("https://a.example/cb");
        assert!(matches!((&https, &https_reg), (Ok(a), Ok(b)) if !a.matches(b)));
    }

    #[test]
    fn response_params_keep_the_existing_query() {
        let uri = RedirectUri::parse("https://a.example/cb?x=1");
        let out = uri.map(|u| u.with_params([("code", "c"), ("state", "s t")]));
        assert_eq!(
            out.as_deref(),
            Ok("https://a.example/cb?x=1&code=c&state=s+t")
        );
    }
}

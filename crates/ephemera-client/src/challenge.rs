//! [`Challenge`]: the `WWW-Authenticate` challenges of a resource server
//! (RFC 9110 §11.6.1), read for what an MCP client acts on: the
//! `resource_metadata` URL (RFC 9728 §5.1), the `scope` it needs
//! (RFC 6750 §3) and `error="insufficient_scope"`, the cue for step-up
//! authorization (RFC 6750 §3.1).

use reqwest::header::{HeaderMap, WWW_AUTHENTICATE};

/// One challenge: its scheme and its auth-params, names lowercased
/// (RFC 9110 §11.2: they are case-insensitive), values unquoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// `Bearer`, `DPoP`, … as sent.
    pub scheme: String,
    pub params: Vec<(String, String)>,
}

impl Challenge {
    /// The value of the auth-param `name` (case-insensitive), if present.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// Every challenge of every `WWW-Authenticate` field in `headers`, in
    /// order. Fields that cannot be read are skipped.
    pub fn all(headers: &HeaderMap) -> Vec<Challenge> {
        headers
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(parse)
            .collect()
    }
}

/// The first value of the auth-param `name` in any of `challenges`.
pub fn find_param<'a>(challenges: &'a [Challenge], name: &str) -> Option<&'a str> {
    challenges
        .iter()
        .find_map(|challenge| challenge.param(name))
}

/// The scope a `403` with `error="insufficient_scope"` asks for
/// (RFC 6750 §3.1), or `None` for any other answer. MCP (2025-11-25,
/// "Scope Challenge Handling") answers a token that lacks a scope this way.
pub fn insufficient_scope(status: u16, headers: &HeaderMap) -> Option<String> {
    if status != 403 {
        return None;
    }
    let challenges = Challenge::all(headers);
    challenges
        .iter()
        .find(|c| c.param("error") == Some("insufficient_scope"))
        .and_then(|c| c.param("scope"))
        .map(str::to_owned)
}

/// The scope to ask for when stepping up: every scope of `held` (what was
/// asked for or granted before) and of `needed`, each once, in that order.
/// Asking for the union keeps what the client already had (MCP 2025-11-25,
/// "Step-Up Authorization Flow").
pub fn scope_union(held: Option<&str>, needed: &str) -> String {
    let mut scopes: Vec<&str> = Vec::new();
    for scope in held
        .unwrap_or_default()
        .split_ascii_whitespace()
        .chain(needed.split_ascii_whitespace())
    {
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    scopes.join(" ")
}

/// Parses one `WWW-Authenticate` field value: `#challenge` (RFC 9110
/// §11.6.1), where a challenge is a scheme followed by auth-params
/// (`name=token` or `name="quoted"`) or a token68. A comma separates both
/// params and challenges: a name followed by `=` is a param, anything else
/// starts the next challenge. Malformed input yields what could be read.
pub fn parse(value: &str) -> Vec<Challenge> {
    let mut scanner = Scanner {
        text: value.as_bytes(),
        at: 0,
    };
    let mut challenges: Vec<Challenge> = Vec::new();
    loop {
        scanner.skip(|c| c == b' ' || c == b'\t' || c == b',');
        let Some(scheme) = scanner.token() else {
            break;
        };
        let mut challenge = Challenge {
            scheme,
            params: Vec::new(),
        };
        loop {
            let start = scanner.at;
            scanner.skip(|c| c == b' ' || c == b'\t' || c == b',');
            let Some(name) = scanner.token() else {
                // A token68 (`Basic dXNlcg==`) or garbage: skip to the next comma.
                scanner.skip(|c| c != b',');
                if scanner.at == start {
                    break;
                }
                continue;
            };
            scanner.skip(|c| c == b' ' || c == b'\t');
            if scanner.peek() != Some(b'=') {
                // Not a param: the next challenge's scheme.
                scanner.at = start;
                break;
            }
            scanner.at += 1;
            if matches!(scanner.peek(), Some(b'=' | b',') | None) {
                // `name=` then `=`, `,` or the end: a token68 (`dXNlcg==`), not a param.
                scanner.skip(|c| c == b'=');
                continue;
            }
            scanner.skip(|c| c == b' ' || c == b'\t');
            let value = if scanner.peek() == Some(b'"') {
                scanner.quoted()
            } else {
                let value = scanner.token().unwrap_or_default();
                // token68 padding (`abc==`) is not a param value; drop it.
                scanner.skip(|c| c == b'=');
                value
            };
            challenge.params.push((name.to_ascii_lowercase(), value));
        }
        challenges.push(challenge);
    }
    challenges
}

struct Scanner<'a> {
    text: &'a [u8],
    at: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }

    fn skip(&mut self, mut while_: impl FnMut(u8) -> bool) {
        while self.peek().is_some_and(&mut while_) {
            self.at += 1;
        }
    }

    /// A `token` (RFC 9110 §5.6.2), or `None` when none starts here.
    fn token(&mut self) -> Option<String> {
        let start = self.at;
        self.skip(is_tchar);
        (self.at > start).then(|| String::from_utf8_lossy(&self.text[start..self.at]).into_owned())
    }

    /// A `quoted-string` (RFC 9110 §5.6.4) starting at `"`, unescaped; an
    /// unterminated one runs to the end.
    fn quoted(&mut self) -> String {
        let mut value = Vec::new();
        self.at += 1;
        while let Some(c) = self.peek() {
            self.at += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    if let Some(escaped) = self.peek() {
                        value.push(escaped);
                        self.at += 1;
                    }
                }
                _ => value.push(c),
            }
        }
        String::from_utf8_lossy(&value).into_owned()
    }
}

fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn params(challenge: &Challenge) -> Vec<(&str, &str)> {
        challenge
            .params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    #[test]
    fn a_bearer_challenge_with_quoted_params_is_read() {
        let parsed = parse(
            r#"Bearer realm="api", scope="read write", resource_metadata="https://rs.example/.well-known/oauth-protected-resource""#,
        );
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed[0].scheme, "Bearer");
        assert_eq!(
            params(&parsed[0]),
            [
                ("realm", "api"),
                ("scope", "read write"),
                (
                    "resource_metadata",
                    "https://rs.example/.well-known/oauth-protected-resource"
                )
            ]
        );
    }

    #[test]
    fn several_challenges_in_one_field_are_told_apart() {
        let parsed = parse(
            r#"Basic dXNlcjpwYXNz==, Bearer error=invalid_token,scope="a", DPoP algs="ES256 PS256", Negotiate"#,
        );
        let schemes: Vec<&str> = parsed.iter().map(|c| c.scheme.as_str()).collect();
        assert_eq!(schemes, ["Basic", "Bearer", "DPoP", "Negotiate"]);
        assert!(parsed[0].params.is_empty());
        assert_eq!(
            params(&parsed[1]),
            [("error", "invalid_token"), ("scope", "a")]
        );
        assert_eq!(parsed[2].param("ALGS"), Some("ES256 PS256"));
    }

    #[test]
    fn escapes_in_quoted_strings_are_undone_and_garbage_does_not_loop() {
        let parsed = parse(r#"Bearer error_description="say \"hi\"\\", x"#);
        assert_eq!(parsed[0].param("error_description"), Some(r#"say "hi"\"#));
        assert_eq!(parsed[1].scheme, "x");
        for garbage in [
            "",
            ",,,",
            "Bearer =",
            "Bearer a=\"open",
            "= = =",
            "Bearer ,=,",
        ] {
            let _ = parse(garbage);
        }
    }

    #[test]
    fn insufficient_scope_is_read_only_from_a_403() {
        let mut headers = HeaderMap::new();
        headers.append(
            WWW_AUTHENTICATE,
            r#"Bearer realm="api", error="insufficient_scope", scope="write""#
                .parse()
                .unwrap(),
        );
        assert_eq!(insufficient_scope(403, &headers).as_deref(), Some("write"));
        assert_eq!(insufficient_scope(401, &headers), None);
        assert_eq!(insufficient_scope(403, &HeaderMap::new()), None);
    }

    #[test]
    fn challenges_of_several_fields_are_all_read() {
        let mut headers = HeaderMap::new();
        headers.append(WWW_AUTHENTICATE, "Bearer realm=\"a\"".parse().unwrap());
        headers.append(
            WWW_AUTHENTICATE,
            "DPoP resource_metadata=\"https://x\"".parse().unwrap(),
        );
        let all = Challenge::all(&headers);
        assert_eq!(all.len(), 2);
        assert_eq!(find_param(&all, "resource_metadata"), Some("https://x"));
    }

    #[test]
    fn the_step_up_scope_is_the_union_without_repeats() {
        assert_eq!(
            scope_union(Some("read write"), "write admin"),
            "read write admin"
        );
        assert_eq!(scope_union(None, "write"), "write");
        assert_eq!(scope_union(Some(""), ""), "");
    }
}

//! Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document):
//! the rules a `client_id` URL and its document must follow, and which
//! addresses a server fetching them must never connect to. No I/O: the
//! server's fetcher applies these to what it fetched.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde_json::Value;
use url::{Host, Url};

use crate::metadata::{ClientMetadata, MetadataLimits};

/// JWK members that carry private or symmetric key material (RFC 7518 §6).
const PRIVATE_JWK_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// The longest `client_id` URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// A `client_id` URL that follows the draft's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentUrl {
    pub url: Url,
    /// The host, with the port when it is not 443: the origin a consent
    /// page shows as verified.
    pub shown_host: String,
}

/// Why a `client_id` URL was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlRefusal {
    /// It breaks the draft's "Client Identifier URL" rules.
    Invalid(String),
    /// Its host is an IP address the caller must not fetch from.
    Forbidden(IpAddr),
}

/// Checks `client_id` against the draft's URL rules: https, a host, a path,
/// no fragment, no userinfo, no dot segments, written in normalized form.
/// An IP-literal host is refused when `forbidden` says so (a fetcher
/// connects to one without resolving it, so it is judged here).
pub fn check_url(
    client_id: &str,
    forbidden: impl Fn(IpAddr) -> bool,
) -> Result<DocumentUrl, UrlRefusal> {
    let invalid = |msg: &str| UrlRefusal::Invalid(msg.to_owned());
    if client_id.len() > MAX_URL_LEN {
        return Err(UrlRefusal::Invalid(format!(
            "longer than {MAX_URL_LEN} characters"
        )));
    }
    let url = Url::parse(client_id).map_err(|e| UrlRefusal::Invalid(format!("{e}")))?;
    if url.scheme() != "https" {
        return Err(invalid("the scheme must be https"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("it must not contain a username or password"));
    }
    if url.fragment().is_some() || client_id.contains('#') {
        return Err(invalid("it must not contain a fragment"));
    }
    if has_dot_segment(client_id) {
        return Err(invalid("it must not contain `.` or `..` path segments"));
    }
    if !has_path(client_id) {
        return Err(invalid("it must contain a path component"));
    }
    let literal = match url.host() {
        Some(Host::Domain(_)) => None,
        Some(Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        None => return Err(invalid("it must have a host")),
    };
    if let Some(ip) = literal.filter(|ip| forbidden(*ip)) {
        return Err(UrlRefusal::Forbidden(ip));
    }
    // The draft compares client_ids as plain strings (RFC 3986 §6.2.1), so
    // `https://a.example:443/c` and `https://a.example/c` would be two
    // clients sharing one document; only the normalized spelling is taken.
    if url.as_str() != client_id {
        return Err(UrlRefusal::Invalid(format!(
            "it must be written in normalized form: `{url}`"
        )));
    }
    let host = url.host_str().unwrap_or_default();
    let shown_host = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    };
    Ok(DocumentUrl { url, shown_host })
}

/// The path of a raw `https://` URL, if it has one (the URL parser would
/// add `/` to a URL without).
fn raw_path(raw: &str) -> Option<&str> {
    let rest = raw.get("https://".len()..)?;
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let path = rest[authority_end..].split(['?', '#']).next()?;
    (!path.is_empty()).then_some(path)
}

fn has_path(raw: &str) -> bool {
    raw_path(raw).is_some()
}

/// Whether the raw URL's path has a `.` or `..` segment, plain or
/// percent-encoded (the URL parser would silently remove them).
fn has_dot_segment(raw: &str) -> bool {
    raw_path(raw).unwrap_or_default().split('/').any(|segment| {
        let s = segment.to_ascii_lowercase().replace("%2e", ".");
        s == "." || s == ".."
    })
}

/// Whether a `Content-Type` is JSON: `application/json` or a more specific
/// `application/…+json` (the draft, "Client ID Metadata Document").
pub fn is_json_media_type(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// The draft's rules for the document itself, on top of RFC 7591 parsing.
pub fn check_document(client_id: &str, json: &Value) -> Result<ClientMetadata, String> {
    let invalid = |msg: String| msg;
    let Value::Object(map) = json else {
        return Err(invalid("the document must be a JSON object".into()));
    };
    match map.get("client_id") {
        Some(Value::String(id)) if id == client_id => {}
        Some(Value::String(_)) => {
            return Err(invalid(
                "the document's client_id does not equal the URL it was fetched from".into(),
            ))
        }
        _ => return Err(invalid("the document has no client_id string".into())),
    }
    // The draft ("Credential and Key Material Restrictions"): the document
    // is public, so it holds no shared secret and no private key.
    for field in ["client_secret", "client_secret_expires_at"] {
        if map.contains_key(field) {
            return Err(invalid(format!(
                "{field} must not appear in a client metadata document: the document is public"
            )));
        }
    }
    if let Some(jwks) = map.get("jwks") {
        if has_private_members(jwks) {
            return Err(invalid(
                "jwks must hold public keys only: a key has private key members".into(),
            ));
        }
    }
    if let Some(uri) = map.get("jwks_uri") {
        // Fetched by the server like the document itself: the same URL
        // rules, and the same guard on the addresses it connects to.
        let uri = uri
            .as_str()
            .ok_or_else(|| invalid("jwks_uri must be a string".into()))?;
        if let Err(UrlRefusal::Invalid(m)) = check_url(uri, |_| false) {
            return Err(invalid(format!(
                "jwks_uri is not a URL this server fetches: {m}"
            )));
        }
    }
    let chosen;
    let map = match chosen_auth_method(map)? {
        Some(method) => {
            let mut with = map.clone();
            with.insert("token_endpoint_auth_method".into(), method.into());
            chosen = with;
            &chosen
        }
        None => map,
    };
    let metadata = ClientMetadata::from_object(map, &MetadataLimits::default())
        .map_err(|e| invalid(e.to_string()))?;
    if metadata.redirect_uris.is_empty() {
        return Err(invalid(
            "redirect_uris must list at least one redirect URI".into(),
        ));
    }
    match metadata.token_endpoint_auth_method.as_deref() {
        None | Some("none") => {}
        Some("private_key_jwt") if metadata.jwks.is_some() || metadata.jwks_uri.is_some() => {}
        Some("private_key_jwt") => {
            return Err(invalid(
                "private_key_jwt needs the client's public keys, in jwks or at jwks_uri".into(),
            ))
        }
        Some(other) => {
            return Err(invalid(format!(
                "token_endpoint_auth_method `{other}` is not allowed: a public document cannot hold a secret; use `none` or `private_key_jwt`"
            )))
        }
    }
    Ok(metadata)
}

/// The method a document that lists `token_endpoint_auth_methods_supported`
/// (OpenID Federation's relying-party metadata) instead of naming one
/// `token_endpoint_auth_method` authenticates with: the strongest both sides
/// support (`private_key_jwt` with keys in `jwks`, then `none`). `None` when
/// the document names its method, or lists none.
fn chosen_auth_method(
    map: &serde_json::Map<String, Value>,
) -> Result<Option<&'static str>, String> {
    if map.contains_key("token_endpoint_auth_method") {
        return Ok(None);
    }
    let Some(listed) = map.get("token_endpoint_auth_methods_supported") else {
        return Ok(None);
    };
    let Some(listed) = listed.as_array() else {
        return Err("token_endpoint_auth_methods_supported must be an array of strings".into());
    };
    let offers = |m: &str| listed.iter().any(|v| v.as_str() == Some(m));
    if offers("private_key_jwt") && (map.contains_key("jwks") || map.contains_key("jwks_uri")) {
        return Ok(Some("private_key_jwt"));
    }
    if offers("none") {
        return Ok(Some("none"));
    }
    Err(
        "none of token_endpoint_auth_methods_supported is available to a metadata document here: it may use `none`, or `private_key_jwt` with its keys in jwks or at jwks_uri"
            .into(),
    )
}

/// Whether a JWK Set holds a key with private or symmetric key material.
fn has_private_members(jwks: &Value) -> bool {
    jwks.get("keys")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|key| PRIVATE_JWK_MEMBERS.iter().any(|m| key.get(m).is_some()))
}

/// The rules for the JWK Set a document's `jwks_uri` serves: a JSON object
/// with 1 to 10 public keys this server can use (`assertion::parse_jwks`),
/// none with private or symmetric key material.
pub fn check_jwks(json: &Value) -> Result<(), String> {
    if has_private_members(json) {
        return Err("the JWK Set must hold public keys only: a key has private key members".into());
    }
    crate::assertion::parse_jwks(json)
        .map(|_| ())
        .map_err(|e| format!("not a usable JWK Set: {e}"))
}

/// How long to reuse a document, in seconds: `max-age` less `Age`, clamped to
/// `min` and `max`. `no-store`, `no-cache` and an absent `max-age` all
/// give the minimum: the document is public metadata, not a private response,
/// and the floor is what bounds how often anyone can make the server fetch.
/// `cache_control` holds the response's `Cache-Control` values, `age` its
/// `Age`; `min` and `max` are seconds.
pub fn cache_lifetime<'a>(
    cache_control: impl IntoIterator<Item = &'a str>,
    age: Option<&str>,
    min: i64,
    max: i64,
) -> i64 {
    let max = max.max(min);
    let mut max_age = None;
    let mut uncacheable = false;
    for value in cache_control {
        for directive in value.split(',') {
            let (name, arg) = match directive.split_once('=') {
                Some((n, a)) => (n.trim(), Some(a.trim().trim_matches('"'))),
                None => (directive.trim(), None),
            };
            if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
                uncacheable = true;
            } else if name.eq_ignore_ascii_case("max-age") {
                max_age = arg.and_then(|a| a.parse::<u64>().ok());
            }
        }
    }
    let age = age.and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(0);
    match max_age {
        Some(max_age) if !uncacheable => {
            let fresh = i64::try_from(max_age.saturating_sub(age)).unwrap_or(i64::MAX);
            fresh.clamp(min, max)
        }
        _ => min,
    }
}

/// IPv4 ranges that are not globally reachable unicast (IANA special-purpose
/// registry, RFC 6890 and successors).
const FORBIDDEN_V4: &[([u8; 4], u32)] = &[
    ([0, 0, 0, 0], 8),       // "this network", unspecified
    ([10, 0, 0, 0], 8),      // private (RFC 1918)
    ([100, 64, 0, 0], 10),   // shared address space, CGNAT (RFC 6598)
    ([127, 0, 0, 0], 8),     // loopback
    ([169, 254, 0, 0], 16),  // link-local, cloud metadata services
    ([172, 16, 0, 0], 12),   // private (RFC 1918)
    ([192, 0, 0, 0], 24),    // IETF protocol assignments
    ([192, 0, 2, 0], 24),    // documentation (TEST-NET-1)
    ([192, 88, 99, 0], 24),  // 6to4 relay anycast (deprecated)
    ([192, 168, 0, 0], 16),  // private (RFC 1918)
    ([198, 18, 0, 0], 15),   // benchmarking
    ([198, 51, 100, 0], 24), // documentation (TEST-NET-2)
    ([203, 0, 113, 0], 24),  // documentation (TEST-NET-3)
    ([224, 0, 0, 0], 4),     // multicast
    ([240, 0, 0, 0], 4),     // reserved, and the limited broadcast address
];

/// IPv6 ranges inside global unicast 2000::/3 that are not globally
/// reachable; everything outside 2000::/3 is refused anyway (loopback,
/// unspecified, ULA fc00::/7, link-local fe80::/10, multicast ff00::/8, …).
const FORBIDDEN_V6: &[(u128, u32)] = &[
    (0x2001_0000_u128 << 96, 23), // IETF protocol assignments: Teredo, benchmarking, ORCHID
    (0x2001_0db8_u128 << 96, 32), // documentation
    (0x3fff_u128 << 112, 20),     // documentation (RFC 9637)
];

/// Whether a server fetching documents must never connect to `ip`: loopback,
/// private, link-local, multicast, CGNAT, documentation and other
/// special-use addresses (RFC 6890; the draft's "SSRF Attacks" section).
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => forbidden_v4(ip),
        IpAddr::V6(ip) => forbidden_v6(ip),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> bool {
    let bits = u32::from(ip);
    FORBIDDEN_V4.iter().any(|(net, len)| {
        let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
        bits & mask == u32::from_be_bytes(*net) & mask
    })
}

fn forbidden_v6(ip: Ipv6Addr) -> bool {
    // Forms that carry an IPv4 address are judged by that address.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return forbidden_v4(v4); // ::ffff:0:0/96
    }
    let bits = u128::from(ip);
    if bits >> 32 == 0x0064_ff9b_u128 << 64 {
        return forbidden_v4(Ipv4Addr::from(bits as u32)); // NAT64 64:ff9b::/96 (RFC 6052)
    }
    if bits >> 112 == 0x2002 {
        return forbidden_v4(Ipv4Addr::from((bits >> 80) as u32)); // 6to4 2002::/16 (RFC 3056)
    }
    if bits >> 125 != 0b001 {
        return true;
    }
    FORBIDDEN_V6.iter().any(|(net, len)| {
        let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
        bits & mask == net & mask
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_addresses_cover_internal_ranges_and_nothing_public() {
        let forbidden = [
            "127.0.0.1",
            "10.1.2.3",
            "172.31.255.255",
            "192.168.0.1",
            "169.254.1.1",
            "100.127.255.255",
            "0.0.0.0",
            "255.255.255.255",
            "239.1.1.1",
            "198.18.0.1",
            "203.0.113.9",
            "::",
            "::1",
            "fc00::1",
            "fdff::1",
            "fe80::1",
            "fec0::1",
            "ff0e::1",
            "::ffff:127.0.0.1",
            "::ffff:192.168.1.1",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "64:ff9b:1::1",
            "2002:a00:1::1",
            "2001::1",
            "2001:db8::1",
            "3fff::1",
            "100::1",
        ];
        let public = [
            "8.8.8.8",
            "1.1.1.1",
            "100.63.255.255",
            "100.128.0.0",
            "172.32.0.1",
            "2606:4700:4700::1111",
            "2a00:1450::1",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ];
        for ip in forbidden {
            assert!(
                is_forbidden(ip.parse().unwrap()),
                "{ip} should be forbidden"
            );
        }
        for ip in public {
            assert!(!is_forbidden(ip.parse().unwrap()), "{ip} should be allowed");
        }
    }

    #[test]
    fn cache_lifetime_follows_max_age_less_age_within_the_bounds() {
        assert_eq!(cache_lifetime(["max-age=300"], None, 60, 3600), 300);
        assert_eq!(
            cache_lifetime(["public, max-age=300"], Some("100"), 60, 3600),
            200
        );
        assert_eq!(cache_lifetime(["max-age=5"], None, 60, 3600), 60);
        assert_eq!(cache_lifetime(["max-age=99999"], None, 60, 3600), 3600);
        assert_eq!(
            cache_lifetime(["no-store, max-age=300"], None, 60, 3600),
            60
        );
        assert_eq!(cache_lifetime([], None, 60, 3600), 60);
    }

    #[test]
    fn private_key_jwt_may_name_its_keys_by_jwks_uri_under_the_url_rules() {
        let url = "https://app.example/client.json";
        let doc = |uri: Value| {
            serde_json::json!({"client_id": url, "redirect_uris": ["http://127.0.0.1/cb"],
                "token_endpoint_auth_method": "private_key_jwt", "jwks_uri": uri})
        };
        let md = check_document(url, &doc("https://app.example/jwks.json".into())).unwrap();
        assert_eq!(
            md.jwks_uri.as_deref(),
            Some("https://app.example/jwks.json")
        );
        assert_eq!(
            md.token_endpoint_auth_method.as_deref(),
            Some("private_key_jwt")
        );
        for (bad, why) in [
            ("http://app.example/jwks.json", "https"),
            ("https://app.example/a/../jwks.json", "segments"),
            ("https://user@app.example/jwks.json", "username"),
            ("https://app.example/jwks.json#k", "fragment"),
        ] {
            let refused = check_document(url, &doc(bad.into())).unwrap_err();
            assert!(
                refused.contains("jwks_uri") && refused.contains(why),
                "{bad}: {refused}"
            );
        }
        assert!(check_document(url, &doc(7.into()))
            .unwrap_err()
            .contains("jwks_uri must be a string"));
        let mut both = doc("https://app.example/jwks.json".into());
        both["jwks"] = serde_json::json!({"keys": []});
        assert!(
            check_document(url, &both).is_err(),
            "jwks and jwks_uri together"
        );
        // Offered a choice, a document with jwks_uri gets private_key_jwt.
        let offered = serde_json::json!({"client_id": url, "redirect_uris": ["http://127.0.0.1/cb"],
            "token_endpoint_auth_methods_supported": ["none", "private_key_jwt"],
            "jwks_uri": "https://app.example/jwks.json"});
        assert_eq!(
            check_document(url, &offered)
                .unwrap()
                .token_endpoint_auth_method
                .as_deref(),
            Some("private_key_jwt")
        );
    }

    #[test]
    fn a_fetched_jwk_set_must_hold_usable_public_keys() {
        let public = serde_json::json!({"kty": "EC", "crv": "P-256",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"});
        assert_eq!(
            check_jwks(&serde_json::json!({"keys": [public.clone()]})),
            Ok(())
        );
        let mut private = public.clone();
        private["d"] = "secret".into();
        assert!(check_jwks(&serde_json::json!({"keys": [private]}))
            .unwrap_err()
            .contains("public keys only"));
        assert!(check_jwks(&serde_json::json!({"keys": []}))
            .unwrap_err()
            .contains("JWK Set"));
        assert!(check_jwks(&serde_json::json!([public])).is_err());
        assert!(check_jwks(&serde_json::json!({"keys": [{"kty": "oct", "k": "AAAA"}]})).is_err());
    }

    #[test]
    fn a_list_of_methods_gets_the_strongest_both_sides_support() {
        let url = "https://app.example/client.json";
        let doc = |extra: Value| {
            let mut d =
                serde_json::json!({"client_id": url, "redirect_uris": ["http://127.0.0.1/cb"]});
            for (k, v) in extra.as_object().unwrap() {
                d[k] = v.clone();
            }
            d
        };
        let jwks = serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]});
        let method = |d: Value| check_document(url, &d).map(|m| m.token_endpoint_auth_method);
        assert_eq!(
            method(doc(
                serde_json::json!({"token_endpoint_auth_methods_supported": ["private_key_jwt", "none"], "jwks": jwks})
            )),
            Ok(Some("private_key_jwt".into()))
        );
        assert_eq!(
            method(doc(
                serde_json::json!({"token_endpoint_auth_methods_supported": ["private_key_jwt", "none"]})
            )),
            Ok(Some("none".into()))
        );
        assert_eq!(
            method(doc(
                serde_json::json!({"token_endpoint_auth_methods_supported": ["client_secret_basic", "none"]})
            )),
            Ok(Some("none".into()))
        );
        assert!(method(doc(
            serde_json::json!({"token_endpoint_auth_methods_supported": ["client_secret_basic"]})
        ))
        .is_err());
        // A named method wins over a list.
        assert_eq!(
            method(doc(
                serde_json::json!({"token_endpoint_auth_method": "none", "token_endpoint_auth_methods_supported": ["private_key_jwt"]})
            )),
            Ok(Some("none".into()))
        );
    }

    #[test]
    fn an_ip_literal_is_judged_before_the_spelling() {
        let refused = check_url("https://0x7f000001/x", is_forbidden);
        assert_eq!(
            refused,
            Err(UrlRefusal::Forbidden("127.0.0.1".parse().unwrap()))
        );
        assert!(matches!(
            check_url("https://A.example/c", is_forbidden),
            Err(UrlRefusal::Invalid(m)) if m.contains("normalized")
        ));
        let ok = check_url("https://a.example:8443/c.json", is_forbidden).unwrap();
        assert_eq!(ok.shown_host, "a.example:8443");
    }
}

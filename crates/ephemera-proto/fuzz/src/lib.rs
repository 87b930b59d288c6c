//! The fuzz harnesses of `ephemera-proto`: one function per parser, each
//! feeding arbitrary bytes to the parser and asserting what must hold of
//! whatever it accepts (round trips, the RFC's syntax rules, agreement with an
//! independent reading of the same input), not only that it does not panic.
//!
//! The cargo-fuzz targets in `fuzz_targets/` call these functions, and so does
//! `tests/fuzz_corpus.rs` in `ephemera-proto`, which replays the committed
//! corpus on the stable toolchain in `cargo test`. This file must therefore
//! compile as a plain module of that test too: it uses only crates that
//! `ephemera-proto` itself depends on.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ephemera_proto::form::{Params, MAX_PARAMS, MULTI_VALUED};
use ephemera_proto::metadata::{ClientMetadata, MetadataLimits, KNOWN_AUTH_METHODS};
use ephemera_proto::pkce::{self, CodeChallenge, CodeVerifier};
use ephemera_proto::redirect::{RedirectForm, RedirectUri, MAX_REDIRECT_URI_LEN};
use ephemera_proto::resource::ResourceIndicator;
use ephemera_proto::scope::Scope;
use ephemera_proto::{assertion, dpop, jose, wire};
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{json, Value};
use url::{Position, Url};

/// Every target by name, as cargo-fuzz and the corpus directories name them.
/// A harness: arbitrary bytes in, a panic when an invariant fails.
pub type Harness = fn(&[u8]);

pub const TARGETS: &[(&str, Harness)] = &[
    ("form", form),
    ("metadata", metadata),
    ("redirect", redirect),
    ("scope", scope),
    ("pkce", pkce),
    ("resource", resource),
    ("jose", jose),
    ("dpop", dpop),
    ("dpop_signature", dpop_signature),
    ("assertion", assertion),
    ("wire", wire),
];

/// `Params::parse` (RFC 6749 §3.1): nothing accepted repeats, every value
/// sent can be read back, and re-encoding the result parses to the same thing.
pub fn form(data: &[u8]) {
    let Ok(params) = Params::parse(data) else {
        return;
    };
    let raw: Vec<(String, String)> = form_urlencoded::parse(data).into_owned().collect();
    assert!(raw.len() <= MAX_PARAMS);
    let mut seen = BTreeSet::new();
    for (name, value) in &raw {
        let multi = MULTI_VALUED.contains(&name.as_str());
        if !multi {
            assert!(seen.insert(name.as_str()), "`{name}` was accepted twice");
        }
        match (multi, value.is_empty()) {
            (true, false) => assert!(params.get_all(name).contains(value)),
            (false, false) => assert_eq!(params.get(name), Some(value.as_str())),
            (_, true) => assert_eq!(params.get(name), None),
        }
    }
    let names: Vec<&str> = params.names().collect();
    assert!(
        names.windows(2).all(|w| w[0] < w[1]),
        "names are not sorted and unique: {names:?}"
    );
    let mut out = form_urlencoded::Serializer::new(String::new());
    for name in &names {
        assert!(params.contains(name));
        if MULTI_VALUED.contains(name) {
            for value in params.get_all(name) {
                out.append_pair(name, value);
            }
        } else if let Some(value) = params.get(name) {
            out.append_pair(name, value);
        }
    }
    assert_eq!(Params::parse(out.finish().as_bytes()).as_ref(), Ok(&params));
}

/// RFC 7591 client metadata (the pushed `client_registration`, a DCR body,
/// or a Client ID Metadata Document): what is accepted keeps the limits and
/// rules, and `to_json` parses back to the same metadata.
pub fn metadata(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let limits = MetadataLimits::default();
    let Ok(md) = ClientMetadata::parse_json(text, &limits) else {
        return;
    };
    assert!(md.redirect_uris.len() <= limits.max_redirect_uris);
    for uri in &md.redirect_uris {
        check_redirect_uri(uri);
    }
    assert!(md.contacts.len() <= limits.max_contacts);
    let strings = [
        &md.client_name,
        &md.token_endpoint_auth_method,
        &md.software_id,
        &md.software_version,
    ];
    let urls = [
        &md.client_uri,
        &md.logo_uri,
        &md.tos_uri,
        &md.policy_uri,
        &md.jwks_uri,
    ];
    for s in strings.iter().chain(&urls).copied().flatten() {
        assert!(s.chars().count() <= limits.max_string_len);
    }
    for u in urls.into_iter().flatten() {
        assert!(is_web_url(u), "{u:?} was accepted as a URL");
    }
    for (key, value) in &md.localized {
        assert!(value.chars().count() <= limits.max_string_len);
        if !key.starts_with("client_name#") {
            assert!(is_web_url(value), "{key}: {value:?} was accepted as a URL");
        }
    }
    if let Some(m) = &md.token_endpoint_auth_method {
        assert!(KNOWN_AUTH_METHODS.contains(&m.as_str()));
    }
    assert!(md.jwks.is_none() || md.jwks_uri.is_none());
    let again = ClientMetadata::parse_json(&md.to_json().to_string(), &limits);
    assert_eq!(again.as_ref(), Ok(&md));
}

fn is_web_url(s: &str) -> bool {
    Url::parse(s).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
}

/// `RedirectUri::parse` and `matches` (RFC 6749 §3.1.2, RFC 8252 §7): the
/// input is one URI, or a requested and a registered URI on two lines.
pub fn redirect(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (first, second) = match text.split_once('\n') {
        Some((a, b)) => (a, Some(b)),
        None => (text, None),
    };
    let a = RedirectUri::parse(first).ok();
    if let Some(a) = &a {
        check_redirect_uri(a);
    }
    let b = second.and_then(|s| RedirectUri::parse(s).ok());
    if let Some(b) = &b {
        check_redirect_uri(b);
    }
    if let (Some(a), Some(b)) = (&a, &b) {
        if a.matches(b) {
            assert!(b.matches(a), "matching is not symmetric");
            assert_eq!(a.form(), b.form());
            let (ua, ub) = (parsed(a), parsed(b));
            assert_eq!(ua.scheme(), ub.scheme());
            assert_eq!(ua.host(), ub.host());
            assert_eq!(ua.path(), ub.path());
            assert_eq!(ua.query(), ub.query());
            if a.form() != RedirectForm::LoopbackHttp {
                assert_eq!(a.as_str(), b.as_str());
            }
        }
    }
}

fn parsed(uri: &RedirectUri) -> Url {
    match Url::parse(uri.as_str()) {
        Ok(u) => u,
        Err(e) => unreachable!("an accepted redirect URI does not parse: {e}"),
    }
}

/// What holds of every accepted redirect URI.
fn check_redirect_uri(uri: &RedirectUri) {
    let raw = uri.as_str();
    assert!(raw.len() <= MAX_REDIRECT_URI_LEN);
    assert!(!raw.contains('#'), "{raw:?} has a fragment");
    let url = parsed(uri);
    assert!(url.fragment().is_none());
    assert!(url.username().is_empty() && url.password().is_none());
    let scheme = url.scheme();
    assert!(!["javascript", "data", "vbscript", "file", "about", "blob"].contains(&scheme));
    match uri.form() {
        RedirectForm::Https => assert!(scheme == "https" && url.host().is_some()),
        RedirectForm::Http | RedirectForm::LoopbackHttp => {
            assert!(scheme == "http" && url.host().is_some())
        }
        RedirectForm::PrivateUse => assert!(scheme.contains('.')),
    }
    assert!(uri.matches(uri));
    assert_eq!(RedirectUri::parse(raw).as_ref(), Ok(uri));
    // The authorization response goes where the URI points, and a state
    // value cannot add a fragment or change the target.
    let out = uri.with_params([("code", "c"), ("state", "s#t&u=v")]);
    let Ok(out_url) = Url::parse(&out) else {
        unreachable!("the response URI {out:?} does not parse")
    };
    assert!(out_url.fragment().is_none(), "{out:?} has a fragment");
    assert_eq!(&out_url[..Position::AfterPath], &url[..Position::AfterPath]);
    let pairs: Vec<(String, String)> = out_url.query_pairs().into_owned().collect();
    assert!(pairs.ends_with(&[
        ("code".to_owned(), "c".to_owned()),
        ("state".to_owned(), "s#t&u=v".to_owned())
    ]));
}

/// `Scope::parse` (RFC 6749 §3.3): tokens keep the syntax, the set is the
/// tokens sent, and both `Display` and serde round-trip.
pub fn scope(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = Scope::parse(text);
    let via_serde = serde_json::from_value::<Scope>(Value::from(text));
    assert_eq!(
        via_serde.is_ok(),
        text.is_empty() || parsed.is_ok(),
        "serde and parse disagree on {text:?}"
    );
    let Ok(scope) = parsed else {
        return;
    };
    assert!(!scope.is_empty());
    for token in scope.iter() {
        assert!(!token.is_empty());
        assert!(token
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b)));
    }
    for token in text.split(' ') {
        assert!(scope.contains(token));
    }
    assert_eq!(
        scope.iter().count(),
        text.split(' ').collect::<BTreeSet<_>>().len()
    );
    assert_eq!(Scope::parse(&scope.to_string()).as_ref(), Ok(&scope));
    assert_eq!(Scope::from_tokens(text.split(' ')).as_ref(), Ok(&scope));
    assert!(scope.is_subset(&scope) && scope.difference(&scope).next().is_none());
    let json = serde_json::to_value(&scope).ok();
    let back = json.and_then(|v| serde_json::from_value::<Scope>(v).ok());
    assert_eq!(back.as_ref(), Some(&scope));
}

/// PKCE (RFC 7636 §4.1, §4.2, §4.6): the syntax rule, S256 only, and a
/// verifier satisfies exactly its own challenge.
pub fn pkce(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let syntax = (43..=128).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    let challenge = CodeChallenge::parse(text, Some("S256"));
    assert_eq!(challenge.is_ok(), syntax);
    assert!(CodeChallenge::parse(text, Some("plain")).is_err());
    assert!(CodeChallenge::parse(text, None).is_err());
    let verifier = CodeVerifier::parse(text);
    assert_eq!(verifier.is_ok(), syntax);
    if let Ok(v) = verifier {
        assert_eq!(v.secret(), text);
        let own = v.challenge();
        assert_eq!(own.as_str(), pkce::s256(text));
        assert!(CodeChallenge::parse(own.as_str(), Some("S256")).is_ok());
        assert!(own.is_satisfied_by(&v));
        if let Ok(c) = &challenge {
            assert_eq!(c.is_satisfied_by(&v), c.as_str() == own.as_str());
        }
    }
}

/// Resource indicators (RFC 8707 §2): absolute, no fragment, kept as sent.
pub fn resource(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(r) = ResourceIndicator::parse(text) else {
        return;
    };
    assert_eq!(r.as_str(), text);
    assert!(!text.contains('#'));
    let Ok(url) = Url::parse(text) else {
        unreachable!("an accepted resource does not parse")
    };
    assert!(!url.cannot_be_a_base() && url.fragment().is_none());
}

/// JOSE pieces: compact JWS headers, the algorithm allow-list, public JWKs,
/// their RFC 7638 thumbprints and JWK Sets.
pub fn jose(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(header) = jose::header(text) {
        assert_eq!(text.split('.').count(), 3);
        if let Ok(alg) = jose::allowed_alg(&header) {
            let name = header
                .get("alg")
                .and_then(Value::as_str)
                .unwrap_or_default();
            assert!(jose::ALLOWED_ALGS.contains(&name));
            assert!(!matches!(
                alg,
                Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
            ));
            // No fuzzer forges an Ed25519 signature; this must not panic.
            let _ = jose::verify(text, alg, &fixed().public);
        }
    }
    let Ok(value) = serde_json::from_str::<Value>(text) else {
        return;
    };
    let thumbprint = value.as_object().and_then(jose::thumbprint);
    if let Some(t) = &thumbprint {
        assert_eq!(t.len(), 43);
        assert_eq!(URL_SAFE_NO_PAD.decode(t).map(|b| b.len()), Ok(32));
    }
    if let Ok(key) = jose::PublicJwk::parse(&value) {
        assert_eq!(Some(&key.thumbprint), thumbprint.as_ref());
        assert_eq!(key.value, value);
        for member in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
            assert!(value.get(member).is_none(), "a private JWK was accepted");
        }
        // RFC 7638 §3: members other than the required ones do not count.
        let mut other = value.clone();
        if let Some(m) = other.as_object_mut() {
            m.insert("kid".into(), Value::from("another"));
            m.insert("use".into(), Value::from("sig"));
        }
        let t = other.as_object().and_then(jose::thumbprint);
        assert_eq!(t.as_ref(), Some(&key.thumbprint));
    }
    if let Ok(keys) = assertion::parse_jwks(&value) {
        assert!((1..=10).contains(&keys.len()));
    }
}

/// The fixed Ed25519 key the proof and assertion targets sign with.
struct Fixed {
    encoding: EncodingKey,
    public: jose::PublicJwk,
    jwk: Value,
}

/// A throwaway Ed25519 key made for these harnesses; it guards nothing.
const FIXED_PRIVATE_PEM: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEICxKIMqs5NhcaD03ZS8ivfn/ItNjETdpSK2km31K34V8
-----END PRIVATE KEY-----
";
const FIXED_PUBLIC_X: &str = "a7m53S8X4oF5Nv6Ylbzv1d9xnCY1Gg6Q1hFGgzFNf5I";

fn fixed() -> &'static Fixed {
    static FIXED: OnceLock<Fixed> = OnceLock::new();
    FIXED.get_or_init(|| {
        let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": FIXED_PUBLIC_X, "kid": "fuzz"});
        let (Ok(encoding), Ok(public)) = (
            EncodingKey::from_ed_pem(FIXED_PRIVATE_PEM.as_bytes()),
            jose::PublicJwk::parse(&jwk),
        ) else {
            unreachable!("the fixed key does not load")
        };
        Fixed {
            encoding,
            public,
            jwk,
        }
    })
}

/// A compact JWS of `header` and the exact `claims` bytes, signed by the fixed key.
fn sign(header: &Value, claims: &[u8]) -> String {
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims)
    );
    match jsonwebtoken::crypto::sign(message.as_bytes(), &fixed().encoding, Algorithm::EdDSA) {
        Ok(sig) => format!("{message}.{sig}"),
        Err(e) => unreachable!("signing failed: {e}"),
    }
}

const NOW: i64 = 1_700_000_000;
const HTU: &str = "https://as.example/token";
const ACCESS_TOKEN: &str = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU";

fn dpop_expectations(access_token: Option<&str>) -> dpop::Expectations<'_> {
    dpop::Expectations {
        method: "POST",
        url: HTU,
        now: NOW,
        max_age: 60,
        leeway: 5,
        access_token,
    }
}

fn dpop_header() -> Value {
    json!({"typ": "dpop+jwt", "alg": "EdDSA", "jwk": fixed().jwk})
}

/// What RFC 9449 §4.3 says of a proof's claims, read independently of
/// `dpop::verify`: `htu` is compared on everything before the query.
fn dpop_claims_ok(claims: &Value, e: &dpop::Expectations<'_>) -> bool {
    let Value::Object(m) = claims else {
        return false;
    };
    let s = |n: &str| m.get(n).and_then(Value::as_str);
    let htu_ok = match (s("htu").map(Url::parse), Url::parse(e.url)) {
        (Some(Ok(a)), Ok(b)) => a[..Position::AfterPath] == b[..Position::AfterPath],
        _ => false,
    };
    s("jti").is_some_and(|j| !j.is_empty() && j.len() <= dpop::MAX_JTI_LEN)
        && s("htm") == Some(e.method)
        && htu_ok
        && m.get("iat")
            .and_then(Value::as_i64)
            .is_some_and(|iat| iat >= e.now - e.max_age && iat <= e.now + e.leeway.max(10))
        && e.access_token
            .is_none_or(|t| s("ath") == Some(jose::sha256_b64(t.as_bytes()).as_str()))
}

/// DPoP proofs (RFC 9449 §4.3): the input as a proof, then as the claims of
/// a proof the fixed key signs; a signed proof is accepted exactly when its
/// claims meet the rules, and what is accepted is reported faithfully.
pub fn dpop(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for at in [None, Some(ACCESS_TOKEN)] {
        if let Ok(p) = dpop::verify(text, &dpop_expectations(at)) {
            assert!(!p.jti.is_empty() && p.jti.len() <= dpop::MAX_JTI_LEN);
            assert!(p.iat >= NOW - 60 && p.iat <= NOW + 5);
        }
    }
    let Ok(claims) = serde_json::from_str::<Value>(text) else {
        return;
    };
    let canonical = claims.to_string();
    for at in [None, Some(ACCESS_TOKEN)] {
        let e = dpop_expectations(at);
        let expected = dpop_claims_ok(&claims, &e);
        // As sent (duplicate members and all): never more than the rules allow.
        let raw = dpop::verify(&sign(&dpop_header(), data), &e);
        assert!(
            expected || raw.is_err(),
            "accepted against the rules: {raw:?}"
        );
        // Re-serialized: accepted exactly when the rules allow.
        let result = dpop::verify(&sign(&dpop_header(), canonical.as_bytes()), &e);
        assert_eq!(result.is_ok(), expected, "{result:?}");
        if let Ok(p) = result {
            assert_eq!(p.jkt, fixed().public.thumbprint);
            assert_eq!(p.jwk, fixed().jwk);
            assert_eq!(Some(p.jti.as_str()), claims["jti"].as_str());
            assert_eq!(Some(p.iat), claims["iat"].as_i64());
            assert_eq!(p.nonce.as_deref(), claims["nonce"].as_str());
        }
    }
}

/// The parts of one valid proof: header and claims segments, and its signature.
fn valid_proof() -> &'static (String, String) {
    static PROOF: OnceLock<(String, String)> = OnceLock::new();
    PROOF.get_or_init(|| {
        let claims = json!({"jti": "e1j3V_bKic8-LAEB", "htm": "POST", "htu": HTU, "iat": NOW});
        let proof = sign(&dpop_header(), claims.to_string().as_bytes());
        match proof.rsplit_once('.') {
            Some((message, sig)) => (message.to_owned(), sig.to_owned()),
            None => unreachable!(),
        }
    })
}

/// A structurally valid DPoP proof with a fuzzed signature: the first byte
/// picks whether the rest is the signature segment as text (0) or the raw
/// signature bytes (else). Only the one genuine signature verifies (Ed25519
/// signatures are not malleable, and base64url has one canonical form here).
pub fn dpop_signature(data: &[u8]) {
    let Some((mode, rest)) = data.split_first() else {
        return;
    };
    let sig = if *mode == 0 {
        String::from_utf8_lossy(rest).into_owned()
    } else {
        URL_SAFE_NO_PAD.encode(rest)
    };
    let (message, genuine) = valid_proof();
    let proof = format!("{message}.{sig}");
    let result = dpop::verify(&proof, &dpop_expectations(None));
    assert_eq!(
        result.is_ok(),
        &sig == genuine,
        "signature {sig:?}: {result:?}"
    );
    let claims = jose::verify(&proof, Algorithm::EdDSA, &fixed().public);
    assert_eq!(claims.is_ok(), &sig == genuine);
}

const CLIENT_ID: &str = "https://client.example/metadata.json";
const ISSUER: &str = "https://as.example";

fn assertion_expectations() -> assertion::Expectations<'static> {
    assertion::Expectations {
        client_id: CLIENT_ID,
        issuer: ISSUER,
        now: NOW,
        max_lifetime: 300,
        leeway: 5,
    }
}

/// RFC 7523 §3 read independently of `assertion::verify`.
fn assertion_claims_ok(claims: &Value, e: &assertion::Expectations<'_>) -> bool {
    let Value::Object(m) = claims else {
        return false;
    };
    let s = |n: &str| m.get(n).and_then(Value::as_str);
    // RFC 7523bis: the issuer and nothing else, as a string or a list of one.
    let aud_ok = match m.get("aud") {
        Some(Value::String(a)) => a == e.issuer,
        Some(Value::Array(list)) => list.len() == 1 && list[0].as_str() == Some(e.issuer),
        _ => false,
    };
    let skew = e.leeway.max(10);
    let not_future = |n: &str| {
        m.get(n)
            .is_none_or(|t| t.as_i64().is_some_and(|t| t <= e.now + skew))
    };
    s("iss") == Some(e.client_id)
        && s("sub") == Some(e.client_id)
        && aud_ok
        && m.get("exp")
            .and_then(Value::as_i64)
            .is_some_and(|exp| exp > e.now - e.leeway && exp <= e.now + e.max_lifetime)
        && not_future("iat")
        && not_future("nbf")
        && m.get("iat")
            .and_then(Value::as_i64)
            .is_none_or(|iat| iat >= e.now - e.max_lifetime - e.leeway)
        && s("jti").is_some_and(|j| !j.is_empty() && j.len() <= 256)
}

/// Client assertions (RFC 7523 §3): the input as an assertion, then as the
/// claims of one the fixed key signs, as `dpop` does.
pub fn assertion(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let keys = [fixed().public.clone()];
    let e = assertion_expectations();
    if let Ok(a) = assertion::verify(text, &keys, &e) {
        assert!(a.exp > NOW - 5 && a.exp <= NOW + 300);
    }
    let Ok(claims) = serde_json::from_str::<Value>(text) else {
        return;
    };
    let expected = assertion_claims_ok(&claims, &e);
    for header in [
        json!({"alg": "EdDSA", "kid": "fuzz"}),
        json!({"alg": "EdDSA"}),
    ] {
        let raw = assertion::verify(&sign(&header, data), &keys, &e);
        assert!(
            expected || raw.is_err(),
            "accepted against the rules: {raw:?}"
        );
        let result = assertion::verify(&sign(&header, claims.to_string().as_bytes()), &keys, &e);
        assert_eq!(result.is_ok(), expected, "{result:?}");
        if let Ok(a) = result {
            assert_eq!(a.jkt, fixed().public.thumbprint);
            assert_eq!(Some(a.jti.as_str()), claims["jti"].as_str());
            assert_eq!(Some(a.exp), claims["exp"].as_i64());
        }
    }
    // A key the header's kid does not name is never tried.
    let other = sign(
        &json!({"alg": "EdDSA", "kid": "other"}),
        claims.to_string().as_bytes(),
    );
    assert!(assertion::verify(&other, &keys, &e).is_err());
}

/// The JSON bodies of `wire` (RFC 8414 server metadata, RFC 7662
/// introspection, RFC 6749 §5.1 token, RFC 9126 PAR): what deserializes
/// serializes, and deserializes again to the same value.
pub fn wire(data: &[u8]) {
    round_trip::<wire::AuthorizationServerMetadata>(data);
    round_trip::<wire::IntrospectionResponse>(data);
    round_trip::<wire::TokenResponse>(data);
    round_trip::<wire::PushedAuthorizationResponse>(data);
    if let Ok(r) = serde_json::from_slice::<wire::IntrospectionResponse>(data) {
        let audiences = r.audiences();
        match &r.aud {
            Some(Value::String(_)) => assert_eq!(audiences.len(), 1),
            Some(Value::Array(a)) => assert!(audiences.len() <= a.len()),
            _ => assert!(audiences.is_empty()),
        }
    }
}

fn round_trip<T>(data: &[u8])
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let Ok(value) = serde_json::from_slice::<T>(data) else {
        return;
    };
    let text = serde_json::to_vec(&value);
    let Ok(text) = text else {
        unreachable!("{value:?} does not serialize: {text:?}")
    };
    let again = serde_json::from_slice::<T>(&text);
    assert!(
        matches!(&again, Ok(v) if *v == value),
        "{value:?} came back as {again:?}"
    );
}

//! JWTs as authorization grants (RFC 7523 §2.1, §3): everything about the
//! assertion a client trades for an access token that can be checked
//! without state. Two profiles: the Identity Assertion JWT Authorization
//! Grant (ID-JAG, draft-ietf-oauth-identity-assertion-authz-grant), a
//! person's identity from an enterprise identity provider, and a plain JWT
//! that a workload's platform issued it (MCP workload identity federation).
//! The caller picks the issuer's keys (from [`peek`]), remembers `jti`, and
//! decides who the subject is here.

use serde_json::{Map, Value};

use crate::form::Params;
use crate::jose::{self, JoseError, PublicJwk};
use crate::token::TokenRequestError;

/// RFC 7523 §2.1 `grant_type`.
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// The `typ` of an ID-JAG (draft-ietf-oauth-identity-assertion-authz-grant
/// §3; explicit typing, RFC 8725 §3.11).
pub const ID_JAG_TYP: &str = "oauth-id-jag+jwt";

/// What an authorization server that takes ID-JAGs lists in
/// `authorization_grant_profiles_supported` (the draft's §7.2).
pub const ID_JAG_PROFILE: &str = "urn:ietf:params:oauth:grant-profile:id-jag";

/// The largest `jti` remembered.
const MAX_JTI: usize = 256;

/// A JWT bearer token request's parameters (RFC 7523 §2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrantRequest<'a> {
    pub assertion: &'a str,
    /// RFC 6749 §3.3: at most what the assertion allows.
    pub scope: Option<&'a str>,
    /// RFC 8707 §2: at most what the assertion allows.
    pub resources: &'a [String],
}

impl<'a> GrantRequest<'a> {
    pub fn parse(params: &'a Params) -> Result<Self, TokenRequestError> {
        Ok(Self {
            assertion: params
                .get("assertion")
                .ok_or(TokenRequestError::Missing("assertion"))?,
            scope: params.get("scope"),
            resources: params.get_all("resource"),
        })
    }
}

/// Which kind of assertion it is, by its `typ`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// `typ: oauth-id-jag+jwt`: a person, for the client named in `client_id`.
    IdJag,
    /// No `typ`, or `JWT`: a workload, which is the client itself.
    Workload,
}

/// Why an assertion was refused; each message is the `error_description`
/// of an `invalid_grant` (RFC 7521 §5.2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssertionGrantError {
    #[error("the assertion is not a signed JWT")]
    Malformed,
    #[error("the assertion: {0}")]
    Jose(JoseError),
    #[error("the assertion's typ `{0}` is neither `oauth-id-jag+jwt` (an ID-JAG) nor `JWT`: it is some other kind of token")]
    Type(String),
    #[error("the assertion has no iss")]
    NoIssuer,
    #[error("no key of the issuer fits the assertion's header (its kid names none of them)")]
    NoKey,
    #[error("the assertion's signature does not verify with the issuer's keys")]
    Signature,
    #[error("the assertion was issued by `{0}`, not by the issuer whose keys signed it")]
    Issuer(String),
    #[error("an ID-JAG's aud must be this authorization server's issuer identifier `{0}` as its only value")]
    IdJagAudience(String),
    #[error(
        "the assertion's aud does not name this authorization server (its issuer identifier `{0}`)"
    )]
    Audience(String),
    #[error("the assertion has no sub")]
    Subject,
    #[error("the assertion needs exp and iat")]
    Times,
    #[error("the assertion has expired")]
    Expired,
    #[error("the assertion lives too long: its exp may lie at most {0} seconds ahead")]
    Lifetime(i64),
    #[error("the assertion's iat or nbf is in the future")]
    NotYetValid,
    #[error("the assertion was issued more than {0} seconds ago")]
    Stale(i64),
    #[error("the assertion needs a jti of 1 to 256 characters")]
    Jti,
    #[error("an ID-JAG needs a client_id claim: the client it was issued for")]
    ClientId,
    #[error("the ID-JAG's `{0}` claim is malformed")]
    Claim(&'static str),
}

/// What an assertion says of itself before its signature is checked: only
/// to find the issuer's keys and the profile to check it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unverified {
    pub issuer: String,
    pub profile: Profile,
}

/// The issuer and profile of `assertion`, unverified.
pub fn peek(assertion: &str) -> Result<Unverified, AssertionGrantError> {
    let header = jose::header(assertion).map_err(|_| AssertionGrantError::Malformed)?;
    let profile = match header.get("typ") {
        None => Profile::Workload,
        Some(Value::String(typ)) => profile_of(typ)
            .ok_or_else(|| AssertionGrantError::Type(typ.chars().take(64).collect()))?,
        Some(_) => return Err(AssertionGrantError::Malformed),
    };
    let payload = assertion
        .split('.')
        .nth(1)
        .ok_or(AssertionGrantError::Malformed)?;
    let bytes = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
        .map_err(|_| AssertionGrantError::Malformed)?;
    if crate::json::too_deep(&bytes, crate::json::MAX_DEPTH) {
        return Err(AssertionGrantError::Malformed);
    }
    let claims: Value =
        serde_json::from_slice(&bytes).map_err(|_| AssertionGrantError::Malformed)?;
    match claims.get("iss") {
        Some(Value::String(iss)) if !iss.is_empty() => Ok(Unverified {
            issuer: iss.clone(),
            profile,
        }),
        _ => Err(AssertionGrantError::NoIssuer),
    }
}

/// RFC 7515 §4.1.9: `typ` is a media type, compared without case, its
/// `application/` prefix optional.
fn profile_of(typ: &str) -> Option<Profile> {
    let bare = typ
        .get(..12)
        .filter(|p| p.eq_ignore_ascii_case("application/"))
        .map_or(typ, |_| &typ[12..]);
    if bare.eq_ignore_ascii_case(ID_JAG_TYP) {
        Some(Profile::IdJag)
    } else if bare.eq_ignore_ascii_case("jwt") {
        Some(Profile::Workload)
    } else {
        None
    }
}

/// What the assertion must match.
#[derive(Debug, Clone, Copy)]
pub struct Expectations<'a> {
    /// The trusted issuer's identifier, compared exactly with `iss`.
    pub issuer: &'a str,
    pub profile: Profile,
    /// This authorization server's issuer identifier, which every
    /// assertion's `aud` may name (RFC 7523 §3 item 3).
    pub server: &'a str,
    /// More values a workload's `aud` may name instead (this server's token
    /// endpoint URL, configured audiences); never for an ID-JAG.
    pub other_audiences: &'a [String],
    pub now: i64,
    /// The furthest ahead `exp` may lie, and the oldest `iat` may be.
    pub max_lifetime: i64,
    /// Clock skew allowed, seconds.
    pub leeway: i64,
}

/// What an ID-JAG carries beyond its subject (the draft's §3).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdJag {
    /// The client at this server the grant was issued for.
    pub client_id: String,
    /// RFC 8707 resource indicators, unchecked: the server knows its resources.
    pub resources: Vec<String>,
    /// The scope the identity provider authorized, unparsed.
    pub scope: Option<String>,
    pub auth_time: Option<i64>,
    pub acr: Option<String>,
    pub amr: Vec<String>,
    /// `cnf.jkt`: the DPoP key the grant is bound to (the draft's §8.6.1.2).
    pub jkt: Option<String>,
}

/// A verified assertion.
#[derive(Debug, Clone, PartialEq)]
pub struct AssertionGrant {
    pub subject: String,
    pub jti: String,
    pub exp: i64,
    /// Every claim, for the server's claim mapping.
    pub claims: Map<String, Value>,
    /// For [`Profile::IdJag`].
    pub id_jag: Option<IdJag>,
}

/// Verifies `assertion` with one of `keys` (the one its `kid` names, when
/// it names one) and checks its claims.
pub fn verify(
    assertion: &str,
    keys: &[PublicJwk],
    expect: &Expectations<'_>,
) -> Result<AssertionGrant, AssertionGrantError> {
    let header = jose::header(assertion).map_err(|_| AssertionGrantError::Malformed)?;
    let alg = jose::allowed_alg(&header).map_err(AssertionGrantError::Jose)?;
    let kid = header.get("kid").and_then(Value::as_str);
    let candidates: Vec<&PublicJwk> = keys
        .iter()
        .filter(|k| kid.is_none() || k.kid().is_none() || k.kid() == kid)
        .collect();
    if candidates.is_empty() {
        return Err(AssertionGrantError::NoKey);
    }
    let mut claims = None;
    for key in candidates {
        match jose::verify(assertion, alg, key) {
            Ok(c) => {
                claims = Some(c);
                break;
            }
            Err(JoseError::Malformed) => return Err(AssertionGrantError::Malformed),
            Err(_) => continue,
        }
    }
    let claims = claims.ok_or(AssertionGrantError::Signature)?;
    check_claims(claims, expect)
}

/// The checks of RFC 7523 §3 (and the ID-JAG's, the draft's §4.4.1) after
/// the signature.
pub fn check_claims(
    claims: Map<String, Value>,
    e: &Expectations<'_>,
) -> Result<AssertionGrant, AssertionGrantError> {
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    let iss = text("iss").unwrap_or_default();
    if iss != e.issuer {
        return Err(AssertionGrantError::Issuer(iss.chars().take(200).collect()));
    }
    check_audience(claims.get("aud"), e)?;
    let subject = text("sub")
        .filter(|s| !s.is_empty() && s.len() <= 255)
        .ok_or(AssertionGrantError::Subject)?
        .to_owned();
    let (Some(exp), Some(iat)) = (
        claims.get("exp").and_then(Value::as_i64),
        claims.get("iat").and_then(Value::as_i64),
    ) else {
        return Err(AssertionGrantError::Times);
    };
    if exp <= e.now.saturating_sub(e.leeway) {
        return Err(AssertionGrantError::Expired);
    }
    if exp
        > e.now
            .saturating_add(e.max_lifetime)
            .saturating_add(e.leeway)
    {
        return Err(AssertionGrantError::Lifetime(e.max_lifetime));
    }
    let future = e.now.saturating_add(crate::future_skew(e.leeway));
    let nbf = match claims.get("nbf") {
        None => None,
        Some(v) => Some(v.as_i64().ok_or(AssertionGrantError::Times)?),
    };
    if iat > future || nbf.is_some_and(|n| n > future) {
        return Err(AssertionGrantError::NotYetValid);
    }
    // Issued long ago, it is stale even if its exp is still ahead.
    if iat
        < e.now
            .saturating_sub(e.max_lifetime)
            .saturating_sub(e.leeway)
    {
        return Err(AssertionGrantError::Stale(e.max_lifetime));
    }
    let jti = text("jti")
        .filter(|j| !j.is_empty() && j.len() <= MAX_JTI)
        .ok_or(AssertionGrantError::Jti)?
        .to_owned();
    let id_jag = match e.profile {
        Profile::IdJag => Some(id_jag(&claims)?),
        Profile::Workload => None,
    };
    Ok(AssertionGrant {
        subject,
        jti,
        exp,
        claims,
        id_jag,
    })
}

/// RFC 7523 §3 item 3: `aud` names this server. An ID-JAG names its issuer
/// identifier as its only value (the draft's §4.4.1: anything else could
/// have been made for another server); a workload's platform may list
/// other audiences beside it, and may name the token endpoint instead.
fn check_audience(aud: Option<&Value>, e: &Expectations<'_>) -> Result<(), AssertionGrantError> {
    let values: Vec<&str> = match aud {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let is_server = |a: &str| is_issuer(a, e.server);
    match e.profile {
        Profile::IdJag => match values.as_slice() {
            [one]
                if is_server(one) && aud.and_then(Value::as_array).is_none_or(|l| l.len() == 1) =>
            {
                Ok(())
            }
            _ => Err(AssertionGrantError::IdJagAudience(e.server.to_owned())),
        },
        Profile::Workload => {
            if values
                .iter()
                .any(|a| is_server(a) || e.other_audiences.iter().any(|o| o.as_str() == *a))
            {
                Ok(())
            } else {
                Err(AssertionGrantError::Audience(e.server.to_owned()))
            }
        }
    }
}

/// `aud` is the issuer identifier: exactly, or with the `/` a URL with an
/// empty path may be written with (RFC 3986 §6.2.3); an issuer never has a
/// path here.
fn is_issuer(aud: &str, issuer: &str) -> bool {
    aud == issuer || aud.strip_suffix('/') == Some(issuer)
}

fn id_jag(claims: &Map<String, Value>) -> Result<IdJag, AssertionGrantError> {
    let client_id = match claims.get("client_id") {
        Some(Value::String(c)) if !c.is_empty() && c.len() <= 255 => c.clone(),
        _ => return Err(AssertionGrantError::ClientId),
    };
    let resources = match claims.get("resource") {
        None => Vec::new(),
        Some(Value::String(r)) => vec![r.clone()],
        Some(Value::Array(list)) if list.len() <= 10 => list
            .iter()
            .map(|r| r.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or(AssertionGrantError::Claim("resource"))?,
        Some(_) => return Err(AssertionGrantError::Claim("resource")),
    };
    let optional_text = |name: &'static str| match claims.get(name) {
        None => Ok(None),
        Some(Value::String(s)) if s.len() <= 1024 => Ok(Some(s.clone())),
        Some(_) => Err(AssertionGrantError::Claim(name)),
    };
    let auth_time = match claims.get("auth_time") {
        None => None,
        Some(t) => Some(t.as_i64().ok_or(AssertionGrantError::Claim("auth_time"))?),
    };
    let amr = match claims.get("amr") {
        None => Vec::new(),
        Some(Value::Array(list)) => list
            .iter()
            .take(10)
            .map(|m| m.as_str().filter(|m| m.len() <= 64).map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or(AssertionGrantError::Claim("amr"))?,
        Some(_) => return Err(AssertionGrantError::Claim("amr")),
    };
    let jkt = match claims.get("cnf") {
        None => None,
        Some(cnf) => Some(
            cnf.get("jkt")
                .and_then(Value::as_str)
                .ok_or(AssertionGrantError::Claim("cnf"))?
                .to_owned(),
        ),
    };
    Ok(IdJag {
        client_id,
        resources,
        scope: optional_text("scope")?,
        auth_time,
        acr: optional_text("acr")?,
        amr,
        jkt,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use serde_json::json;

    const SERVER: &str = "https://as.example";

    fn expect(profile: Profile, now: i64) -> Expectations<'static> {
        Expectations {
            issuer: "https://idp.example",
            profile,
            server: SERVER,
            other_audiences: &[],
            now,
            max_lifetime: 600,
            leeway: 5,
        }
    }

    fn claims(extra: Value) -> Map<String, Value> {
        let mut base = json!({
            "iss": "https://idp.example", "sub": "U019488227", "aud": SERVER,
            "client_id": "f53f191f9311af35", "jti": "9e43f81b64a33f20116179",
            "exp": 1300, "iat": 1000, "resource": "https://api.example/",
            "scope": "chat.read chat.history", "auth_time": 990, "amr": ["mfa", "hwk"],
        });
        if let (Value::Object(b), Value::Object(x)) = (&mut base, extra) {
            b.extend(x);
        }
        match base {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    fn jwt(header: Value, claims: Value) -> String {
        let part = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());
        format!("{}.{}.c2ln", part(header), part(claims))
    }

    #[test]
    fn the_draft_example_id_jag_passes_with_its_claims() {
        let checked = check_claims(claims(json!({})), &expect(Profile::IdJag, 1010));
        let Ok(grant) = checked else {
            return assert!(checked.is_ok(), "{checked:?}");
        };
        assert_eq!(grant.subject, "U019488227");
        assert_eq!(grant.exp, 1300);
        let jag = grant.id_jag.unwrap_or_default();
        assert_eq!(jag.client_id, "f53f191f9311af35");
        assert_eq!(jag.resources, ["https://api.example/"]);
        assert_eq!(jag.scope.as_deref(), Some("chat.read chat.history"));
        assert_eq!((jag.auth_time, jag.amr.len()), (Some(990), 2));
    }

    #[test]
    fn each_wrong_claim_has_its_own_error() {
        let e = expect(Profile::IdJag, 1010);
        let cases = [
            (
                json!({"iss": "https://evil.example"}),
                AssertionGrantError::Issuer("https://evil.example".into()),
            ),
            (
                json!({"aud": "https://other.example"}),
                AssertionGrantError::IdJagAudience(SERVER.into()),
            ),
            (
                json!({"aud": [SERVER, "https://other.example"]}),
                AssertionGrantError::IdJagAudience(SERVER.into()),
            ),
            (json!({"sub": ""}), AssertionGrantError::Subject),
            (json!({"iat": "now"}), AssertionGrantError::Times),
            (json!({"exp": 2000}), AssertionGrantError::Lifetime(600)),
            (json!({"iat": 1100}), AssertionGrantError::NotYetValid),
            (json!({"nbf": 1100}), AssertionGrantError::NotYetValid),
            (json!({"jti": ""}), AssertionGrantError::Jti),
            (json!({"client_id": 7}), AssertionGrantError::ClientId),
            (
                json!({"resource": {"a": 1}}),
                AssertionGrantError::Claim("resource"),
            ),
            (json!({"amr": "pwd"}), AssertionGrantError::Claim("amr")),
            (json!({"cnf": {}}), AssertionGrantError::Claim("cnf")),
        ];
        for (extra, error) in cases {
            assert_eq!(
                check_claims(claims(extra.clone()), &e).map(|_| ()),
                Err(error),
                "{extra}"
            );
        }
        assert_eq!(
            check_claims(claims(json!({})), &expect(Profile::IdJag, 1306)).map(|_| ()),
            Err(AssertionGrantError::Expired)
        );
        let old = claims(json!({"iat": 100, "exp": 1300}));
        assert_eq!(
            check_claims(old, &e).map(|_| ()),
            Err(AssertionGrantError::Stale(600))
        );
    }

    #[test]
    fn an_id_jag_names_the_issuer_alone_and_a_workload_may_name_more() {
        let listed = claims(json!({"aud": [format!("{SERVER}/")]}));
        assert!(check_claims(listed, &expect(Profile::IdJag, 1010)).is_ok());
        let token_endpoint = [format!("{SERVER}/token")];
        let workload = Expectations {
            other_audiences: &token_endpoint,
            ..expect(Profile::Workload, 1010)
        };
        for aud in [
            json!(["https://kubernetes.default.svc", SERVER]),
            json!(format!("{SERVER}/token")),
        ] {
            let c = claims(json!({ "aud": aud }));
            assert!(check_claims(c, &workload).is_ok(), "{aud}");
        }
        let c = claims(json!({"aud": format!("{SERVER}/token")}));
        assert!(check_claims(c, &expect(Profile::IdJag, 1010)).is_err());
        let c = claims(json!({"aud": "https://as.example.evil"}));
        assert_eq!(
            check_claims(c, &workload).map(|_| ()),
            Err(AssertionGrantError::Audience(SERVER.into()))
        );
    }

    #[test]
    fn a_workload_needs_no_client_id_and_carries_none() {
        let mut c = claims(json!({}));
        c.remove("client_id");
        let grant = check_claims(c, &expect(Profile::Workload, 1010));
        assert!(matches!(grant, Ok(AssertionGrant { id_jag: None, .. })));
    }

    #[test]
    fn the_profile_comes_from_typ_and_other_tokens_are_refused() {
        let body = json!({"iss": "https://idp.example"});
        for (typ, profile) in [
            (json!("oauth-id-jag+jwt"), Profile::IdJag),
            (json!("application/OAUTH-ID-JAG+JWT"), Profile::IdJag),
            (json!("JWT"), Profile::Workload),
        ] {
            let token = jwt(json!({"alg": "ES256", "typ": typ}), body.clone());
            assert_eq!(peek(&token).map(|u| u.profile), Ok(profile), "{typ}");
        }
        let untyped = jwt(json!({"alg": "ES256"}), body.clone());
        assert_eq!(
            peek(&untyped),
            Ok(Unverified {
                issuer: "https://idp.example".into(),
                profile: Profile::Workload
            })
        );
        for typ in ["at+jwt", "dpop+jwt", "application/"] {
            let token = jwt(json!({"alg": "ES256", "typ": typ}), body.clone());
            assert_eq!(peek(&token), Err(AssertionGrantError::Type(typ.into())));
        }
        let no_iss = jwt(json!({"alg": "ES256"}), json!({"sub": "x"}));
        assert_eq!(peek(&no_iss), Err(AssertionGrantError::NoIssuer));
        assert_eq!(peek("a.b"), Err(AssertionGrantError::Malformed));
    }

    #[test]
    fn unsigned_and_hmac_assertions_are_refused_before_any_key_is_tried() {
        for alg in ["none", "HS256"] {
            let token = jwt(json!({"alg": alg}), json!({}));
            assert!(matches!(
                verify(&token, &[], &expect(Profile::Workload, 1010)),
                Err(AssertionGrantError::Jose(JoseError::Algorithm(_)))
            ));
        }
        let token = jwt(json!({"alg": "ES256"}), json!({}));
        assert_eq!(
            verify(&token, &[], &expect(Profile::Workload, 1010)),
            Err(AssertionGrantError::NoKey)
        );
    }

    #[test]
    fn the_request_needs_an_assertion() {
        let p = Params::parse(b"grant_type=x&scope=read&resource=https%3A%2F%2Fr").ok();
        let p = p.unwrap_or_default();
        assert_eq!(
            GrantRequest::parse(&p),
            Err(TokenRequestError::Missing("assertion"))
        );
    }
}

//! Extractors that own every rejection: a malformed request gets an OAuth
//! error in the shape of its endpoint family, never framework plain text.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::Response;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ephemera_proto::error::ErrorCode;
use ephemera_proto::form::Params;

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;

use super::tls::PeerCertificate;
use super::{error, App};
use crate::config::TrustedProxies;
use crate::service::client_auth::Credentials;
use crate::service::OAuthError;

/// The largest request body read.
pub const BODY_LIMIT: usize = 64 * 1024;

enum BodyError {
    TooLarge,
    Refused(OAuthError),
}

async fn read_form(req: Request) -> Result<Params, BodyError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    if !essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Err(BodyError::Refused(OAuthError::invalid_request(
            "Content-Type must be application/x-www-form-urlencoded",
        )));
    }
    let bytes = axum::body::to_bytes(req.into_body(), BODY_LIMIT)
        .await
        .map_err(|_| BodyError::TooLarge)?;
    Params::parse(&bytes)
        .map_err(|e| BodyError::Refused(OAuthError::invalid_request(e.to_string())))
}

/// A form body of a back-channel endpoint; refusals are RFC 6749 §5.2 JSON.
pub struct BackChannelForm(pub Params);

impl<S: Send + Sync> FromRequest<S> for BackChannelForm {
    type Rejection = Response;

    async fn from_request(req: Request, _: &S) -> Result<Self, Self::Rejection> {
        match read_form(req).await {
            Ok(p) => Ok(Self(p)),
            Err(BodyError::TooLarge) => Err(error::body_too_large(BODY_LIMIT)),
            Err(BodyError::Refused(e)) => Err(error::back_channel(e, false)),
        }
    }
}

/// A back-channel call: its form and the client credentials it carries.
pub struct BackChannel {
    pub params: Params,
    pub credentials: Credentials,
    /// Whether HTTP Basic was tried, for the `invalid_client` challenge.
    pub basic: bool,
    /// The `DPoP` header (RFC 9449 §4), at most one.
    pub dpop: Option<String>,
}

impl FromRequest<App> for BackChannel {
    type Rejection = Response;

    async fn from_request(req: Request, app: &App) -> Result<Self, Self::Rejection> {
        let authorization = req.headers().get(header::AUTHORIZATION).cloned();
        let certificate = client_certificate(&req, &app.trusted_proxies);
        let mut proofs = req.headers().get_all("dpop").iter();
        let dpop = match (proofs.next(), proofs.next()) {
            (Some(_), Some(_)) => {
                let e = OAuthError::new(
                    ErrorCode::InvalidDpopProof,
                    "more than one DPoP header was sent",
                );
                return Err(error::back_channel(e, false));
            }
            (Some(v), None) => Some(v.to_str().unwrap_or_default().to_owned()),
            (None, _) => None,
        };
        let BackChannelForm(params) = BackChannelForm::from_request(req, app).await?;
        match credentials(authorization.as_ref(), &params, certificate) {
            Ok((credentials, basic)) => Ok(Self {
                credentials,
                params,
                basic,
                dpop,
            }),
            Err(e) => Err(error::back_channel(e, true)),
        }
    }
}

/// The client's address, as rate limits count it ([`client_address`]).
pub struct ClientAddress(pub Option<IpAddr>);

impl FromRequestParts<App> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        Ok(Self(client_address(
            &parts.headers,
            &parts.extensions,
            &app.trusted_proxies,
        )))
    }
}

/// The client certificate (DER) of a request: from its own TLS connection,
/// or from the `Client-Cert` header (RFC 9440) when a trusted proxy sent it.
fn client_certificate(req: &Request, trusted: &TrustedProxies) -> Option<Vec<u8>> {
    certificate_of(req.headers(), req.extensions(), trusted)
}

fn certificate_of(
    headers: &HeaderMap,
    extensions: &axum::http::Extensions,
    trusted: &TrustedProxies,
) -> Option<Vec<u8>> {
    if let Some(PeerCertificate(der)) = extensions.get::<PeerCertificate>() {
        return Some(der.clone());
    }
    let header = headers.get("client-cert")?;
    let peer = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    if !peer.is_some_and(|ip| trusted.trusts(ip)) {
        tracing::warn!(?peer, "Client-Cert header from an untrusted peer ignored");
        return None;
    }
    // An RFC 8941 byte sequence: `:base64:`.
    let value = header.to_str().ok()?.trim();
    let inner = value.strip_prefix(':')?.strip_suffix(':')?;
    STANDARD.decode(inner).ok()
}

/// What a request to a protected endpoint (`/userinfo`) presents beside
/// its `Authorization` header: its `DPoP` headers (the service refuses
/// more than one) and its client certificate. Never rejects: the body,
/// if any, is not read.
pub struct PresentedToken {
    pub dpop: Vec<String>,
    pub certificate: Option<Vec<u8>>,
}

impl FromRequestParts<App> for PresentedToken {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        Ok(Self {
            dpop: parts
                .headers
                .get_all("dpop")
                .iter()
                .map(|v| v.to_str().unwrap_or_default().to_owned())
                .collect(),
            certificate: certificate_of(&parts.headers, &parts.extensions, &app.trusted_proxies),
        })
    }
}

/// A form body posted by one of our pages; refusals are error pages.
pub struct PageForm(pub Params);

impl<S: Send + Sync> FromRequest<S> for PageForm {
    type Rejection = Response;

    async fn from_request(req: Request, _: &S) -> Result<Self, Self::Rejection> {
        match read_form(req).await {
            Ok(p) => Ok(Self(p)),
            Err(BodyError::TooLarge) => Err(error::error_page(OAuthError::invalid_request(
                "the form is too large",
            ))),
            Err(BodyError::Refused(e)) => Err(error::error_page(e)),
        }
    }
}

/// The query of a front-channel request; refusals are error pages.
pub struct QueryParams(pub Params);

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        Params::parse(query.as_bytes())
            .map(Self)
            .map_err(|e| error::error_page(OAuthError::invalid_request(e.to_string())))
    }
}

/// The client credentials of a back-channel request: `Authorization: Basic`
/// (RFC 6749 §2.3.1, each part form-decoded) and the body's `client_id` and
/// `client_secret`. Also says whether Basic was used, for the error's challenge.
fn credentials(
    authorization: Option<&HeaderValue>,
    params: &Params,
    certificate: Option<Vec<u8>>,
) -> Result<(Credentials, bool), OAuthError> {
    let basic = match authorization {
        None => None,
        Some(value) => Some(parse_basic(value.to_str().unwrap_or_default())?),
    };
    let used_basic = basic.is_some();
    Ok((
        Credentials {
            basic,
            client_id: params.get("client_id").map(str::to_owned),
            client_secret: params.get("client_secret").map(str::to_owned),
            client_assertion: params.get("client_assertion").map(str::to_owned),
            client_assertion_type: params.get("client_assertion_type").map(str::to_owned),
            certificate,
        },
        used_basic,
    ))
}

fn parse_basic(value: &str) -> Result<(String, String), OAuthError> {
    let malformed = || {
        OAuthError::invalid_client("the Authorization header is not valid HTTP Basic credentials")
    };
    let (scheme, rest) = value.split_once(' ').ok_or_else(malformed)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::invalid_request(format!(
            "Authorization scheme `{scheme}` is not accepted here; use Basic"
        )));
    }
    let decoded = STANDARD.decode(rest.trim()).map_err(|_| malformed())?;
    let text = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (id, secret) = text.split_once(':').ok_or_else(malformed)?;
    // Each part is application/x-www-form-urlencoded (RFC 6749 §2.3.1).
    let decode = |s: &str| -> Result<String, OAuthError> {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8()
            .map(|d| d.into_owned())
            .map_err(|_| malformed())
    };
    let (id, secret) = (decode(id)?, decode(secret)?);
    if id.is_empty() {
        return Err(malformed());
    }
    Ok((id, secret))
}

/// The value of cookie `name`, if the browser sent it.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

/// The address a request is counted under for rate limits: the peer, or,
/// when the peer is a trusted proxy, the nearest address in
/// `X-Forwarded-For` that is not itself a trusted proxy (the entries to its
/// left are the client's to write, so they are not believed).
pub fn client_address(
    headers: &HeaderMap,
    extensions: &axum::http::Extensions,
    trusted: &TrustedProxies,
) -> Option<IpAddr> {
    let peer = extensions.get::<ConnectInfo<SocketAddr>>()?.0.ip();
    if !trusted.trusts(peer) {
        return Some(peer);
    }
    let mut entries = headers
        .get_all("x-forwarded-for")
        .iter()
        .rev()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.rsplit(','));
    let forwarded = entries.find_map(|e| {
        let ip: IpAddr = e.trim().parse().ok()?;
        Some(ip).filter(|ip| !trusted.trusts(*ip))
    });
    Some(forwarded.unwrap_or(peer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_decoded() {
        let header = format!("Basic {}", STANDARD.encode("my%20client:s%3Acret"));
        let parsed = parse_basic(&header).ok();
        assert_eq!(parsed, Some(("my client".into(), "s:cret".into())));
    }

    #[test]
    fn malformed_basic_credentials_are_refused() {
        assert!(parse_basic("Basic !!!").is_err());
        assert!(parse_basic(&format!("Basic {}", STANDARD.encode("nocolon"))).is_err());
        assert!(parse_basic("Bearer abc").is_err());
    }
}

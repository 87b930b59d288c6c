//! Certificate-bound access tokens (RFC 8705 §3): where the client
//! certificate of a request comes from, and whether it is the one the
//! token is bound to.

use axum::http::{Extensions, HeaderMap, HeaderName};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ephemera_proto::jose::sha256_b64;

use crate::rejection::Rejection;

/// The RFC 9440 `Client-Cert` header.
pub static CLIENT_CERT: HeaderName = HeaderName::from_static("client-cert");

/// The DER of the client certificate the request's TLS connection was
/// authenticated with. The TLS acceptor (rustls, say) puts it in each
/// request's extensions, for example with a `map_request` layer that
/// copies it from the connection; the layer reads it from there.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientCertificate(pub Vec<u8>);

impl std::fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClientCertificate({} bytes)", self.0.len())
    }
}

/// The `x5t#S256` thumbprint (RFC 8705 §3.1) of the request's client
/// certificate: from the [`ClientCertificate`] extension, else, when
/// `trust_header`, from the `Client-Cert` header. A malformed or repeated
/// header counts as no certificate.
pub fn presented_thumbprint(
    extensions: &Extensions,
    headers: &HeaderMap,
    trust_header: bool,
) -> Option<String> {
    if let Some(ClientCertificate(der)) = extensions.get::<ClientCertificate>() {
        return Some(sha256_b64(der));
    }
    if !trust_header {
        return None;
    }
    let mut values = headers.get_all(&CLIENT_CERT).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    client_cert_header(value.to_str().ok()?).map(|der| sha256_b64(&der))
}

/// RFC 9440 §2.2: the header is an RFC 8941 byte sequence, `:` base64 `:`.
fn client_cert_header(value: &str) -> Option<Vec<u8>> {
    let inner = value
        .trim_matches(' ')
        .strip_prefix(':')?
        .strip_suffix(':')?;
    STANDARD.decode(inner).ok().filter(|der| !der.is_empty())
}

/// A certificate-bound token is accepted only with its certificate
/// (RFC 8705 §3.2).
pub fn check(bound_to: &str, presented: Option<&str>) -> Result<(), Rejection> {
    match presented {
        None => Err(Rejection::InvalidToken(
            "the token is bound to a client certificate and the request has none",
        )),
        Some(thumbprint) if thumbprint != bound_to => Err(Rejection::InvalidToken(
            "the client certificate is not the one the token is bound to",
        )),
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_header(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.append(CLIENT_CERT.clone(), HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn the_extension_wins_over_the_header() {
        let mut extensions = Extensions::new();
        extensions.insert(ClientCertificate(b"der".to_vec()));
        let headers = with_header(":b3RoZXI=:");
        assert_eq!(
            presented_thumbprint(&extensions, &headers, true),
            Some(sha256_b64(b"der"))
        );
    }

    #[test]
    fn the_header_counts_only_when_trusted() {
        let extensions = Extensions::new();
        let headers = with_header(":b3RoZXI=:");
        assert_eq!(
            presented_thumbprint(&extensions, &headers, true),
            Some(sha256_b64(b"other"))
        );
        assert_eq!(presented_thumbprint(&extensions, &headers, false), None);
    }

    #[test]
    fn malformed_or_repeated_headers_are_no_certificate() {
        let extensions = Extensions::new();
        for value in ["b3RoZXI=", ":b3RoZXI=", ":not base64!:", "::"] {
            assert_eq!(
                presented_thumbprint(&extensions, &with_header(value), true),
                None,
                "{value}"
            );
        }
        let mut headers = with_header(":b3RoZXI=:");
        headers.append(CLIENT_CERT.clone(), HeaderValue::from_static(":b3RoZXI=:"));
        assert_eq!(presented_thumbprint(&extensions, &headers, true), None);
    }

    #[test]
    fn only_the_bound_certificate_passes() {
        assert_eq!(check("t", Some("t")), Ok(()));
        assert!(matches!(
            check("t", Some("u")),
            Err(Rejection::InvalidToken(_))
        ));
        assert!(matches!(check("t", None), Err(Rejection::InvalidToken(_))));
    }
}

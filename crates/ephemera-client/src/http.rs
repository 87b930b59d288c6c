//! The HTTP client every call goes through: rustls (with the ring
//! provider and the Mozilla roots of `webpki-roots`), no redirects, a
//! timeout; and [`http_client`] for extra trusted roots and a client
//! certificate for mutual TLS (RFC 8705).
//!
//! **Mutual TLS.** A client that authenticates with its certificate
//! (`self_signed_tls_client_auth`, RFC 8705 §2.2, see
//! [`ClientIdentity::pushed_with_certificate`](crate::ClientIdentity::pushed_with_certificate))
//! or whose registration asks for certificate-bound access tokens
//! (`"tls_client_certificate_bound_access_tokens": true`, RFC 8705 §3) must
//! present that certificate on *every* connection to the authorization
//! server — PAR, token, refresh, revocation — and, for a bound token, to
//! the resource servers. The certificate belongs to the HTTP client, not to
//! each request: build one with [`http_client`] and a
//! [`client_certificate_pem`](HttpClientOptions::client_certificate_pem),
//! give it to [`AuthorizationServer::discover_with`](crate::AuthorizationServer::discover_with),
//! and send resource requests with the same client
//! ([`AuthorizationServer::http`](crate::AuthorizationServer::http)).
//!
//! ```no_run
//! use ephemera_client::http::{http_client, HttpClientOptions};
//! use ephemera_client::AuthorizationServer;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let http = http_client(&HttpClientOptions {
//!     // The certificate (chain) and its PKCS #8 private key, PEM.
//!     client_certificate_pem: Some(std::fs::read("agent.pem")?),
//!     // A private CA the server's certificate is issued by, if any.
//!     extra_root_pem: vec![std::fs::read("ca.pem")?],
//!     ..HttpClientOptions::default()
//! })?;
//! let server = AuthorizationServer::discover_with(http, "https://as.example").await?;
//! # drop(server);
//! # Ok(())
//! # }
//! ```

use std::time::Duration;

use crate::error::{Error, Result};

/// How long [`default_http_client`] waits for an answer.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// What [`http_client`] builds: the roots it trusts besides the built-in
/// ones, the certificate it presents, and its timeout.
///
/// `Debug` never shows the client certificate's private key.
#[derive(Clone)]
pub struct HttpClientOptions {
    /// More trust anchors for server certificates, each a PEM file with one
    /// or more `CERTIFICATE` blocks (a private CA, a self-signed test
    /// server). The Mozilla roots stay trusted.
    pub extra_root_pem: Vec<Vec<u8>>,
    /// The client certificate for mutual TLS: one PEM with the certificate
    /// chain (leaf first) and its private key (PKCS #8 `PRIVATE KEY`; SEC 1
    /// `EC PRIVATE KEY` and PKCS #1 `RSA PRIVATE KEY` work too), as
    /// `reqwest::Identity::from_pem` reads it. It is presented to every
    /// server that asks for one.
    pub client_certificate_pem: Option<Vec<u8>>,
    /// How long a request may take in all; [`DEFAULT_TIMEOUT`] by default.
    pub timeout: Duration,
}

impl Default for HttpClientOptions {
    fn default() -> Self {
        Self {
            extra_root_pem: Vec::new(),
            client_certificate_pem: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

impl std::fmt::Debug for HttpClientOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClientOptions")
            .field("extra_root_pem", &self.extra_root_pem.len())
            .field(
                "client_certificate_pem",
                &self.client_certificate_pem.as_ref().map(|_| "[redacted]"),
            )
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The HTTP client [`AuthorizationServer::discover`](crate::AuthorizationServer::discover)
/// uses: rustls with the Mozilla roots, no client certificate, no redirects
/// (a back-channel endpoint that redirects is misconfigured, and
/// credentials must not follow it), and a [`DEFAULT_TIMEOUT`].
pub fn default_http_client() -> reqwest::Client {
    builder(DEFAULT_TIMEOUT).build().unwrap_or_default()
}

/// An HTTP client like [`default_http_client`] (rustls, no redirects) with
/// `options`' extra roots, client certificate and timeout: for an
/// authorization server with a certificate from a private CA, and for
/// mutual TLS (RFC 8705; see the [module docs](self)).
///
/// Fails with [`Error::Key`] when a PEM holds no certificate, cannot be
/// read, or the client certificate and key do not make a usable identity.
pub fn http_client(options: &HttpClientOptions) -> Result<reqwest::Client> {
    let mut builder = builder(options.timeout);
    for (index, pem) in options.extra_root_pem.iter().enumerate() {
        let roots = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| Error::Key(format!("extra root PEM #{index}: {}", chain(&e))))?;
        if roots.is_empty() {
            return Err(Error::Key(format!(
                "extra root PEM #{index} holds no CERTIFICATE"
            )));
        }
        for root in roots {
            builder = builder.add_root_certificate(root);
        }
    }
    if let Some(pem) = &options.client_certificate_pem {
        let identity = reqwest::Identity::from_pem(pem)
            .map_err(|e| Error::Key(format!("client certificate PEM: {}", chain(&e))))?;
        builder = builder.identity(identity);
    }
    builder
        .build()
        .map_err(|e| Error::Key(format!("TLS configuration: {}", chain(&e))))
}

fn builder(timeout: Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .use_rustls_tls()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
}

/// An error and its sources, `: `-separated: reqwest's own message leaves
/// out what rustls said.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn self_signed(name: &str) -> rcgen::CertifiedKey {
        rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap()
    }

    #[test]
    fn a_client_certificate_and_extra_roots_make_a_client() {
        let client = self_signed("agent");
        let (ca, other) = (self_signed("ca.example"), self_signed("other.example"));
        let options = HttpClientOptions {
            extra_root_pem: vec![
                ca.cert.pem().into_bytes(),
                format!("{}{}", ca.cert.pem(), other.cert.pem()).into_bytes(),
            ],
            client_certificate_pem: Some(
                format!("{}{}", client.cert.pem(), client.key_pair.serialize_pem()).into_bytes(),
            ),
            timeout: Duration::from_secs(5),
        };

        http_client(&options).unwrap();
        http_client(&HttpClientOptions::default()).unwrap();
    }

    #[test]
    fn a_client_certificate_without_its_key_is_a_key_error() {
        let client = self_signed("agent");
        let options = HttpClientOptions {
            client_certificate_pem: Some(client.cert.pem().into_bytes()),
            ..HttpClientOptions::default()
        };

        let error = http_client(&options).unwrap_err();

        assert!(
            matches!(&error, Error::Key(m) if m.contains("client certificate")),
            "{error}"
        );
    }

    #[test]
    fn a_key_that_is_not_the_certificates_is_refused() {
        let (client, other) = (self_signed("agent"), self_signed("thief"));
        let options = HttpClientOptions {
            client_certificate_pem: Some(
                format!("{}{}", client.cert.pem(), other.key_pair.serialize_pem()).into_bytes(),
            ),
            ..HttpClientOptions::default()
        };

        let error = http_client(&options).unwrap_err();

        assert!(matches!(&error, Error::Key(_)), "{error}");
    }

    #[test]
    fn garbage_is_not_a_root_or_an_identity() {
        for pem in [&b"not a PEM"[..], b"-----BEGIN CERTIFICATE-----\n!!\n"] {
            let roots = HttpClientOptions {
                extra_root_pem: vec![pem.to_vec()],
                ..HttpClientOptions::default()
            };
            let error = http_client(&roots).unwrap_err();
            assert!(
                matches!(&error, Error::Key(m) if m.contains("extra root PEM #0")),
                "{error}"
            );

            let identity = HttpClientOptions {
                client_certificate_pem: Some(pem.to_vec()),
                ..HttpClientOptions::default()
            };
            let error = http_client(&identity).unwrap_err();
            assert!(matches!(&error, Error::Key(_)), "{error}");
        }
    }

    #[test]
    fn debug_output_never_shows_the_private_key() {
        let client = self_signed("agent");
        let key = client.key_pair.serialize_pem();
        let options = HttpClientOptions {
            client_certificate_pem: Some(format!("{}{key}", client.cert.pem()).into_bytes()),
            ..HttpClientOptions::default()
        };

        let printed = format!("{options:?}");

        assert!(printed.contains("[redacted]") && !printed.contains("PRIVATE KEY"));
    }
}

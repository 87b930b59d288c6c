//! [`IntrospectionLayer`] and the service it wraps routes in: read the
//! access token (and DPoP proof, client certificate), validate it here when
//! it is a JWT access token and local validation is on, else find or fetch
//! its introspection, check it and its binding, and put a [`TokenContext`]
//! in the request extensions, or answer with the rejection.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderValue, Request};
use axum::response::Response;
use ephemera_proto::access_token;
use ephemera_proto::dpop::DpopProof;
use tower::{Layer, Service};

use crate::authorization::{credentials, uses_dpop_scheme, Scheme};
use crate::cache::{self, Cache};
use crate::certificate;
use crate::config::IntrospectionConfig;
use crate::context::TokenContext;
use crate::dpop::DpopCheck;
use crate::introspect::{default_http_client, Introspector};
use crate::jwt::JwtValidator;
use crate::rejection::{Challenges, Rejection, DPOP_NONCE};
use crate::verdict::{accept, check_scopes};

/// How many tokens the cache holds at most.
const CACHE_CAPACITY: usize = 10_000;

/// A tower layer that lets through only requests with a valid access
/// token, presented as the token's binding demands:
///
/// - an unbound token with `Authorization: Bearer`, or with
///   `Authorization: DPoP` and a valid proof (RFC 9449 §7.2 lets a
///   resource take it; the proof is checked all the same);
/// - a DPoP-bound token (`cnf.jkt`) only with `Authorization: DPoP` and
///   one `DPoP` proof signed by that key, for this method, URL and token,
///   fresh, not replayed, with the server nonce when nonces are on;
/// - a certificate-bound token (`cnf["x5t#S256"]`) only on a request with
///   that client certificate ([`ClientCertificate`](crate::ClientCertificate)
///   extension, or the trusted `Client-Cert` header).
///
/// ```no_run
/// use axum::{routing::get, Router};
/// use ephemera_resource::{
///     metadata, IntrospectionConfig, IntrospectionLayer, ProtectedResourceMetadata, TokenContext,
/// };
///
/// async fn whoami(ctx: TokenContext) -> String {
///     ctx.subject.unwrap_or_default()
/// }
///
/// # fn main() -> Result<(), url::ParseError> {
/// let resource = "https://api.example";
/// let config = IntrospectionConfig::new(
///     "http://127.0.0.1:8080/introspect", "my-api", "its-secret", "http://127.0.0.1:8080",
/// )
/// .audience(resource)
/// .require_scope("read")
/// .public_base_url(url::Url::parse(resource)?);
/// let metadata = ProtectedResourceMetadata::for_config(resource, &config);
/// let config = match metadata.metadata_url() {
///     Some(url) => config.resource_metadata(url),
///     None => config,
/// };
/// let app: Router = Router::new()
///     .route("/whoami", get(whoami))
///     .layer(IntrospectionLayer::new(config))
///     .merge(metadata::router(metadata));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct IntrospectionLayer {
    shared: Arc<Shared>,
}

struct Shared {
    introspector: Introspector,
    /// `None` when JWT access tokens are introspected like any other.
    jwt: Option<JwtValidator>,
    cache: Cache,
    /// `None` when DPoP is off.
    dpop: Option<DpopCheck>,
    /// The required scopes as a 401 challenge names them (`None`: none).
    scope: Option<String>,
    config: IntrospectionConfig,
}

impl IntrospectionLayer {
    /// A layer calling the introspection endpoint with a default HTTP client
    /// (no redirects, 10 s timeout).
    pub fn new(config: IntrospectionConfig) -> Self {
        Self::with_http_client(config, default_http_client())
    }

    /// A layer calling the introspection endpoint (and, with local JWT
    /// validation, fetching the authorization server's keys) with the given
    /// client.
    pub fn with_http_client(config: IntrospectionConfig, http: reqwest::Client) -> Self {
        let jwt = match (&config.jwt_validation, &config.audience) {
            (Some(settings), Some(_)) => {
                Some(JwtValidator::new(http.clone(), &config.issuer, settings))
            }
            (Some(_), None) => {
                tracing::warn!("JWT access tokens are introspected: local validation needs the audience (IntrospectionConfig::audience) to check `aud` against");
                None
            }
            (None, _) => None,
        };
        let shared = Shared {
            introspector: Introspector::new(http, &config),
            jwt,
            cache: Cache::new(config.cache_ttl, CACHE_CAPACITY),
            dpop: DpopCheck::new(&config, Instant::now()),
            scope: (!config.required_scopes.is_empty()).then(|| config.required_scopes.join(" ")),
            config,
        };
        Self {
            shared: Arc::new(shared),
        }
    }
}

impl std::fmt::Debug for IntrospectionLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntrospectionLayer")
            .field("config", &self.shared.config)
            .finish()
    }
}

impl<S> Layer<S> for IntrospectionLayer {
    type Service = IntrospectionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        IntrospectionService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The service [`IntrospectionLayer`] produces.
#[derive(Clone)]
pub struct IntrospectionService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> std::fmt::Debug for IntrospectionService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntrospectionService")
            .finish_non_exhaustive()
    }
}

impl<S, B> Service<Request<B>> for IntrospectionService<S>
where
    S: Service<Request<B>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        // The clone that was polled ready is the one that must be called.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let shared = self.shared.clone();
        // Everything read from the request is read here, so the future
        // holds no borrow of it.
        let presented = shared.presented(&request);
        let dpop_request = shared.dpop.is_some() && uses_dpop_scheme(request.headers());
        Box::pin(async move {
            let outcome = match presented {
                Ok(presented) => shared.authorize(presented).await,
                Err(rejection) => Err(rejection),
            };
            let mut response = match outcome {
                Ok(context) => {
                    request.extensions_mut().insert(context);
                    inner.call(request).await?
                }
                Err(rejection) => rejection.into_response_with(&Challenges {
                    realm: &shared.config.realm,
                    dpop: shared.dpop.is_some(),
                    dpop_request,
                    resource_metadata: shared.config.resource_metadata.as_deref(),
                    scope: shared.scope.as_deref(),
                }),
            };
            // RFC 9449 §9: every answer to a DPoP request carries the
            // nonce to use next, so a rotation costs the client no 401.
            if dpop_request {
                let nonce = shared.dpop.as_ref().and_then(|d| d.nonce(Instant::now()));
                if let Some(value) = nonce.and_then(|n| HeaderValue::from_str(&n).ok()) {
                    response
                        .headers_mut()
                        .entry(DPOP_NONCE.clone())
                        .or_insert(value);
                }
            }
            Ok(response)
        })
    }
}

/// What a request presents: its token, the verified DPoP proof of a
/// `DPoP` scheme request, and its client certificate's thumbprint.
struct Presented {
    token: String,
    proof: Option<DpopProof>,
    certificate: Option<String>,
}

impl Shared {
    /// Reads the request's credentials and checks what needs no
    /// introspection: a bad DPoP proof costs the authorization server
    /// no call.
    fn presented<B>(&self, request: &Request<B>) -> Result<Presented, Rejection> {
        let credentials = credentials(request.headers(), self.dpop.is_some())?;
        let proof = match (credentials.scheme, &self.dpop) {
            (Scheme::Dpop, Some(dpop)) => Some(dpop.verify(
                request.headers(),
                request.method(),
                request.uri().path(),
                credentials.token,
                unix_now(),
                Instant::now(),
            )?),
            _ => None,
        };
        Ok(Presented {
            token: credentials.token.to_owned(),
            proof,
            certificate: certificate::presented_thumbprint(
                request.extensions(),
                request.headers(),
                self.config.trust_client_cert_header,
            ),
        })
    }

    async fn authorize(&self, presented: Presented) -> Result<TokenContext, Rejection> {
        let context = match (&self.jwt, &self.config.audience) {
            (Some(jwt), Some(audience)) if access_token::is_jwt(&presented.token) => {
                jwt.validate(&presented.token, &self.config.issuer, audience)
                    .await?
            }
            _ => self.introspected(&presented.token).await?,
        };
        self.check_binding(&context, &presented)?;
        check_scopes(&context, &self.config.required_scopes)?;
        Ok(context)
    }

    /// The context of a token the authorization server vouches for, from
    /// the cache or a new introspection.
    async fn introspected(&self, token: &str) -> Result<TokenContext, Rejection> {
        let key = cache::key(token);
        let context = match self.cache.get(&key, Instant::now()) {
            Some(context) => context,
            None => {
                let response = self.introspector.introspect(token).await.map_err(|error| {
                    tracing::warn!(%error, "token introspection failed");
                    Rejection::Unavailable
                })?;
                let context = accept(&response, &self.config)?;
                self.cache.insert(
                    key,
                    context.clone(),
                    Instant::now(),
                    u64::try_from(unix_now()).unwrap_or_default(),
                );
                context
            }
        };
        Ok(context)
    }

    /// The request must prove what the token is bound to.
    fn check_binding(
        &self,
        context: &TokenContext,
        presented: &Presented,
    ) -> Result<(), Rejection> {
        match (&presented.proof, &self.dpop) {
            (Some(proof), Some(dpop)) => {
                dpop.bind(proof, context.dpop_jkt.as_deref(), Instant::now())?;
            }
            // RFC 9449 §7.2: a DPoP-bound token sent as a bearer token is
            // a downgrade and is refused.
            _ if context.dpop_jkt.is_some() => {
                return Err(Rejection::InvalidToken(if self.dpop.is_some() {
                    "the token is DPoP-bound: send it with the DPoP scheme and a DPoP proof"
                } else {
                    "the token is DPoP-bound and this resource server does not accept DPoP"
                }));
            }
            _ => {}
        }
        if let Some(thumbprint) = &context.certificate_thumbprint {
            certificate::check(thumbprint, presented.certificate.as_deref())?;
        }
        Ok(())
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

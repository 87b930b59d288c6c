//! [`IntrospectionLayer`] and the service it wraps routes in: read the
//! bearer token, find or fetch its introspection, check it, and put a
//! [`TokenContext`] in the request extensions, or answer with the rejection.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::http::Request;
use axum::response::Response;
use tower::{Layer, Service};

use crate::bearer::bearer_token;
use crate::cache::{self, Cache};
use crate::config::IntrospectionConfig;
use crate::context::TokenContext;
use crate::introspect::{default_http_client, Introspector};
use crate::rejection::Rejection;
use crate::verdict::{accept, check_scopes};

/// How many tokens the cache holds at most.
const CACHE_CAPACITY: usize = 10_000;

/// A tower layer that lets through only requests with a valid bearer token.
///
/// ```no_run
/// use axum::{routing::get, Router};
/// use ephemera_resource::{IntrospectionConfig, IntrospectionLayer, TokenContext};
///
/// async fn whoami(ctx: TokenContext) -> String {
///     ctx.subject.unwrap_or_default()
/// }
///
/// let config = IntrospectionConfig::new(
///     "http://127.0.0.1:8080/introspect", "my-api", "its-secret", "http://127.0.0.1:8080",
/// )
/// .audience("https://api.example")
/// .require_scope("read");
/// let app: Router = Router::new()
///     .route("/whoami", get(whoami))
///     .layer(IntrospectionLayer::new(config));
/// ```
#[derive(Clone)]
pub struct IntrospectionLayer {
    shared: Arc<Shared>,
}

struct Shared {
    introspector: Introspector,
    cache: Cache,
    config: IntrospectionConfig,
}

impl IntrospectionLayer {
    /// A layer calling the introspection endpoint with a default HTTP client
    /// (no redirects, 10 s timeout).
    pub fn new(config: IntrospectionConfig) -> Self {
        Self::with_http_client(config, default_http_client())
    }

    /// A layer calling the introspection endpoint with the given client.
    pub fn with_http_client(config: IntrospectionConfig, http: reqwest::Client) -> Self {
        let shared = Shared {
            introspector: Introspector::new(http, &config),
            cache: Cache::new(config.cache_ttl, CACHE_CAPACITY),
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
        let token = bearer_token(request.headers()).map(str::to_owned);
        Box::pin(async move {
            let outcome = match token {
                Ok(token) => shared.authorize(&token).await,
                Err(rejection) => Err(rejection),
            };
            match outcome {
                Ok(context) => {
                    request.extensions_mut().insert(context);
                    inner.call(request).await
                }
                Err(rejection) => Ok(rejection.into_response(&shared.config.realm)),
            }
        })
    }
}

impl Shared {
    async fn authorize(&self, token: &str) -> Result<TokenContext, Rejection> {
        let key = cache::key(token);
        let context = match self.cache.get(&key, Instant::now()) {
            Some(context) => context,
            None => {
                let response = self.introspector.introspect(token).await.map_err(|error| {
                    tracing::warn!(%error, "token introspection failed");
                    Rejection::Unavailable
                })?;
                let context = accept(&response, &self.config)?;
                self.cache
                    .insert(key, context.clone(), Instant::now(), unix_now());
                context
            }
        };
        check_scopes(&context, &self.config.required_scopes)?;
        Ok(context)
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

//! axum only: extract, one service call, map the result.
//!
//! | module | owns |
//! |---|---|
//! | [`error`] | ALL error -> HTTP mapping (back-channel JSON, front-channel error responses and pages) |
//! | [`respond`] | successful answers: no-store JSON, pages with their security headers, redirects |
//! | [`extract`] | form bodies, queries, client credentials, cookies; every rejection |
//! | [`metadata`] | RFC 8414 discovery and OpenID Provider metadata |
//! | [`federation`] | `/.well-known/openid-federation`: the Entity Configuration (OpenID Federation) |
//! | [`par`] [`authorize`] [`login`] [`upstream`] [`consent`] [`account`] [`token`] [`introspect`] [`revoke`] [`register`] [`userinfo`] [`jwks`] [`health`] | one endpoint (or endpoint family) each |
//! | [`tls`] | the rustls server configuration that asks for client certificates |
//! | [`limit`] | the per-address rate limits of `/par`, `/authorize`, `/token` and the login form |
//! | [`metrics`] | `GET /metrics` (Prometheus text) and the middleware counting every request |

pub mod account;
pub mod authorize;
pub mod consent;
pub mod error;
pub mod extract;
pub mod federation;
pub mod health;
pub mod introspect;
pub mod jwks;
pub mod limit;
pub mod login;
pub mod metadata;
pub mod metrics;
pub mod par;
pub mod register;
pub mod respond;
pub mod revoke;
pub mod tls;
pub mod token;
pub mod upstream;
pub mod userinfo;

use std::future::Future;
use std::sync::Arc;

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderName, HeaderValue, Method, Request, Response};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use ephemera_proto::wire::AuthorizationServerMetadata;
use tokio::net::TcpListener;
use tower_http::cors::{Any, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::service::Context;

/// The state every handler gets. Every layer and handler takes a clone of
/// it per request, so it is one shared allocation: a clone is one reference
/// count, not one per field.
#[derive(Clone)]
pub struct App(Arc<AppState>);

impl std::ops::Deref for App {
    type Target = AppState;

    fn deref(&self) -> &AppState {
        &self.0
    }
}

impl From<AppState> for App {
    fn from(state: AppState) -> Self {
        Self(Arc::new(state))
    }
}

impl App {
    pub fn new(ctx: Context) -> Self {
        AppState::new(ctx).into()
    }
}

/// What [`App`] shares.
pub struct AppState {
    pub ctx: Context,
    pub metadata: Arc<AuthorizationServerMetadata>,
    /// The same, serialized once: the body of every discovery response.
    pub metadata_json: axum::body::Bytes,
    /// The OpenID Provider metadata, serialized once.
    pub openid_json: axum::body::Bytes,
    /// `Secure` cookies with the `__Host-` prefix when the issuer is https.
    pub secure_cookies: bool,
    /// Peers whose `X-Forwarded-For` and `Client-Cert` (RFC 9440) headers
    /// are believed.
    pub trusted_proxies: Arc<crate::config::TrustedProxies>,
    /// This process's request counters, shown by `GET /metrics`.
    pub metrics: Arc<metrics::Metrics>,
    /// This node's rate limiters.
    pub limits: Arc<crate::throttle::Limiters>,
    /// `GET /metrics` wants `Authorization: Bearer` with this token.
    pub metrics_token: Option<Arc<str>>,
    /// Whether the main listener serves `GET /metrics` (not when it has an
    /// address of its own).
    pub metrics_on_main: bool,
}

impl AppState {
    pub fn new(ctx: Context) -> Self {
        let metadata = metadata::build(&ctx.issuer, &ctx.policy);
        let secure_cookies = ctx.issuer.starts_with("https://");
        // Serializing a derived struct of strings cannot fail.
        let metadata_json = serde_json::to_vec(&metadata).unwrap_or_default().into();
        let openid_json = serde_json::to_vec(&metadata::build_openid(&ctx.issuer, &ctx.policy))
            .unwrap_or_default()
            .into();
        Self {
            ctx,
            metadata: Arc::new(metadata),
            metadata_json,
            openid_json,
            secure_cookies,
            trusted_proxies: Arc::default(),
            metrics: Arc::default(),
            limits: Arc::default(),
            metrics_token: None,
            metrics_on_main: true,
        }
    }

    pub fn cookie_name(&self) -> &'static str {
        if self.secure_cookies {
            "__Host-ephemera"
        } else {
            "ephemera"
        }
    }
}

/// The `Set-Cookie` value for the browser's session cookie.
pub fn session_cookie(app: &App, value: &str) -> String {
    let secure = if app.secure_cookies { "; Secure" } else { "" };
    format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
        app.cookie_name(),
        app.ctx.policy.lifetimes.session
    )
}

const STYLE: &str = include_str!("../../assets/ephemera.css");

/// All routes. Browser-based clients get CORS on the back-channel endpoints
/// they call (any origin, no cookies); the pages never get it.
pub fn router(app: App) -> Router {
    let limited = |app: &App, family| {
        axum::middleware::from_fn_with_state((app.clone(), family), limit::limit)
    };
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("dpop"),
        ])
        .expose_headers([
            header::WWW_AUTHENTICATE,
            HeaderName::from_static("dpop-nonce"),
        ]);
    let cross_origin = Router::new()
        .route(
            "/.well-known/oauth-authorization-server",
            get(metadata::get),
        )
        .route(
            "/.well-known/openid-configuration",
            get(metadata::get_openid),
        )
        .route("/.well-known/openid-federation", get(federation::get))
        .route("/jwks", get(jwks::get))
        .route("/userinfo", get(userinfo::handle).post(userinfo::handle))
        .route(
            "/par",
            post(par::post).route_layer(limited(&app, limit::Family::Par)),
        )
        .route(
            "/token",
            post(token::post).route_layer(limited(&app, limit::Family::Token)),
        )
        .route("/revoke", post(revoke::post))
        .route("/register", post(register::create))
        .route(
            "/register/{client_id}",
            get(register::read)
                .put(register::update)
                .delete(register::delete),
        )
        .layer(cors);
    let same_origin = Router::new()
        .route(
            "/authorize",
            get(authorize::get).route_layer(limited(&app, limit::Family::Authorize)),
        )
        .route(
            "/authorize/login",
            post(login::post).route_layer(limited(&app, limit::Family::Login)),
        )
        .route(
            "/login/upstream/{name}",
            post(upstream::start).route_layer(limited(&app, limit::Family::Login)),
        )
        .route("/login/upstream/{name}/callback", get(upstream::callback))
        .route("/authorize/consent", post(consent::post))
        .route("/account", get(account::get))
        .route(
            "/account/login",
            post(account::login).route_layer(limited(&app, limit::Family::Login)),
        )
        .route("/account/revoke", post(account::revoke))
        .route("/account/revoke-all", post(account::revoke_all))
        .route("/account/logout", post(account::logout))
        .route("/introspect", post(introspect::post))
        .route("/healthz", get(health::live))
        .route("/readyz", get(health::ready))
        .route(
            "/assets/ephemera.css",
            get(|| async {
                (
                    [
                        (
                            header::CONTENT_TYPE,
                            HeaderValue::from_static("text/css; charset=utf-8"),
                        ),
                        (
                            header::CACHE_CONTROL,
                            HeaderValue::from_static("public, max-age=3600"),
                        ),
                    ],
                    STYLE,
                )
                    .into_response()
            }),
        );
    // Request ids (`x-request-id`, kept when a proxy set one) and one log
    // line per request. Only the path is logged: queries carry request_uris.
    let request_id = HeaderName::from_static("x-request-id");
    let trace = TraceLayer::new_for_http()
        .make_span_with(|req: &Request<Body>| {
            let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default();
            tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
        })
        .on_request(())
        .on_response(|res: &Response<Body>, latency: Duration, _: &tracing::Span| {
            tracing::info!(status = res.status().as_u16(), latency_us = latency.as_micros() as u64, "served");
        });
    let same_origin = if app.metrics_on_main {
        same_origin.route("/metrics", get(metrics::get))
    } else {
        same_origin
    };
    // RFC 6797: a browser that reached an https issuer once keeps to https.
    let hsts = app.secure_cookies.then(|| {
        tower_http::set_header::SetResponseHeaderLayer::if_not_present(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        )
    });
    // Every route and the fallback (`unmatched`) is counted for `/metrics`.
    let counted = axum::middleware::from_fn_with_state(app.metrics.clone(), metrics::track);
    cross_origin
        .merge(same_origin)
        .layer(counted)
        .with_state(app)
        .layer(tower::util::option_layer(hsts))
        .layer(
            tower::ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
                .layer(trace)
                .layer(PropagateRequestIdLayer::new(request_id)),
        )
}

/// The routes of the operations listener (`metrics.listen`): `/metrics`,
/// `/healthz` and `/readyz`, nothing else.
pub fn operations_router(app: App) -> Router {
    Router::new()
        .route("/metrics", get(metrics::get))
        .route("/healthz", get(health::live))
        .route("/readyz", get(health::ready))
        .with_state(app)
}

/// Serves on `listener` until `shutdown` resolves, then finishes the
/// requests in flight. Every connection, plain or TLS, enforces the
/// connection limits of `[limits]`: a client must send a request's line and
/// headers within `header_read_timeout` (which also closes idle keep-alive
/// connections), within `max_header_bytes` and `max_headers`; a TLS client
/// must also finish its handshake within `header_read_timeout`.
pub async fn serve(
    listener: TcpListener,
    app: App,
    tls: Option<Arc<rustls::ServerConfig>>,
    limits: crate::config::ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_router(listener, router(app), tls, limits, shutdown).await
}

/// [`serve`] for any router.
pub async fn serve_router(
    listener: TcpListener,
    router: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    limits: crate::config::ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;
    use tower::ServiceExt as _;
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    if let Some(n) = limits.max_headers {
        builder.max_headers(n);
    }
    if let Some(n) = limits.max_header_bytes {
        builder.max_buf_size(n);
    }
    let builder = Arc::new(builder);
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let handshake_timeout = limits.header_read_timeout.unwrap_or(tls::HANDSHAKE_TIMEOUT);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let (router, builder, watcher) = (router.clone(), builder.clone(), graceful.watcher());
        let Some(acceptor) = acceptor.clone() else {
            let service = router.map_request(move |mut req: Request<hyper::body::Incoming>| {
                req.extensions_mut()
                    .insert(axum::extract::ConnectInfo::<std::net::SocketAddr>(peer));
                req
            });
            let connection =
                builder.serve_connection(TokioIo::new(tcp), TowerToHyperService::new(service));
            tokio::spawn(async move {
                if let Err(e) = watcher.watch(connection).await {
                    tracing::debug!(error = %e, %peer, "connection ended with an error");
                }
            });
            continue;
        };
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => return tracing::debug!(error = %e, %peer, "TLS handshake failed"),
                Err(_) => return tracing::debug!(%peer, "TLS handshake timed out"),
            };
            let certificate = tls::peer_certificate(&stream);
            let service = router.map_request(move |mut req: Request<hyper::body::Incoming>| {
                req.extensions_mut()
                    .insert(axum::extract::ConnectInfo::<std::net::SocketAddr>(peer));
                if let Some(c) = &certificate {
                    req.extensions_mut().insert(c.clone());
                }
                req
            });
            let connection =
                builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
            if let Err(e) = watcher.watch(connection).await {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
        });
    }
    // Stop accepting; let the requests in flight finish (idle keep-alive
    // connections are closed at once).
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

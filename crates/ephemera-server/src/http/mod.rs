//! axum only: extract, one service call, map the result.
//!
//! | module | owns |
//! |---|---|
//! | [`error`] | ALL outcome -> HTTP mapping (status, headers, bodies, pages, redirects) |
//! | [`extract`] | form bodies, queries, client credentials, cookies; every rejection |
//! | [`metadata`] | RFC 8414 discovery |
//! | [`par`] [`authorize`] [`login`] [`consent`] [`token`] [`introspect`] [`revoke`] [`jwks`] [`health`] | one endpoint each |
//! | [`metrics`] | `GET /metrics` (Prometheus text) and the middleware counting every request |

pub mod authorize;
pub mod consent;
pub mod error;
pub mod extract;
pub mod health;
pub mod introspect;
pub mod jwks;
pub mod login;
pub mod metadata;
pub mod metrics;
pub mod par;
pub mod register;
pub mod revoke;
pub mod tls;
pub mod token;

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

/// The state every handler gets.
#[derive(Clone)]
pub struct App {
    pub ctx: Context,
    pub metadata: Arc<AuthorizationServerMetadata>,
    /// `Secure` cookies with the `__Host-` prefix when the issuer is https.
    pub secure_cookies: bool,
    /// Peers whose `Client-Cert` header (RFC 9440) is believed.
    pub trusted_proxies: Arc<[std::net::IpAddr]>,
    /// This process's request counters, shown by `GET /metrics`.
    pub metrics: Arc<metrics::Metrics>,
}

impl App {
    pub fn new(ctx: Context) -> Self {
        let metadata = metadata::build(&ctx.issuer, &ctx.policy);
        let secure_cookies = ctx.issuer.starts_with("https://");
        Self {
            ctx,
            metadata: Arc::new(metadata),
            secure_cookies,
            trusted_proxies: Arc::from(Vec::new()),
            metrics: Arc::default(),
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
        .route("/jwks", get(jwks::get))
        .route("/par", post(par::post))
        .route("/token", post(token::post))
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
        .route("/authorize", get(authorize::get))
        .route("/authorize/login", post(login::post))
        .route("/authorize/consent", post(consent::post))
        .route("/introspect", post(introspect::post))
        .route("/healthz", get(health::live))
        .route("/readyz", get(health::ready))
        .route("/metrics", get(metrics::get))
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
    // Every route and the fallback (`unmatched`) is counted for `/metrics`.
    let counted = axum::middleware::from_fn_with_state(app.metrics.clone(), metrics::track);
    cross_origin
        .merge(same_origin)
        .layer(counted)
        .with_state(app)
        .layer(
            tower::ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
                .layer(trace)
                .layer(PropagateRequestIdLayer::new(request_id)),
        )
}

/// Serves on `listener` until `shutdown` resolves, then finishes the
/// requests in flight.
pub async fn serve(
    listener: TcpListener,
    app: App,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = router(app);
    match tls {
        Some(config) => tls::serve(listener, config, router, shutdown).await,
        None => {
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .with_graceful_shutdown(shutdown)
            .await
        }
    }
}

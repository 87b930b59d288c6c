//! Ephemera: an OAuth 2 authorization server built around Pushed Client
//! Registration (draft-richer-oauth-pushed-client-registration).
//!
//! | module | owns |
//! |---|---|
//! | [`config`] | raw settings (file, env, flags) -> validated [`config::Config`] |
//! | [`cli`] | `serve`, `migrate`, `user …`, `client …`, `stats` |
//! | [`model`] | plain data: grants, client snapshots, codes, tokens, users |
//! | [`policy`] | what this deployment allows, and lifetimes |
//! | [`secret`] | generating, hashing and comparing secrets |
//! | [`throttle`] | in-memory per-node rate limiters (per address, per username) |
//! | [`service`] | the OAuth logic, one module per flow |
//! | [`store`] | persistence behind one trait |
//! | [`documents`] | the fetcher of client ID metadata documents, behind `service::metadata_document::DocumentSource` |
//! | [`upstream`] | the HTTP side of upstream identity providers: discovery, keys, token and userinfo requests |
//! | [`http`] | axum handlers and all HTTP mapping |
//!
//! Where a change goes (the whole design is `docs/architecture.md`):
//!
//! | change | file |
//! |---|---|
//! | a parameter or syntax rule | `ephemera-proto/src/<topic>.rs` |
//! | a business rule (lifetimes, who may do what) | `service/<flow>.rs` or `policy.rs` |
//! | a new client model | a `ClientRef` variant in `ephemera-proto`, then `service/resolve.rs` (plus its storage) |
//! | a column or query | `store/mod.rs`, `store/sqlite/mod.rs`, `store/postgres.rs`, both `migrations/` folders, `store/conformance.rs` |
//! | a status code, header or error body | `http/error.rs` |
//! | page markup | `templates/*.html` |
//! | an admin command | `cli.rs`, calling `service/admin.rs` |

pub mod cli;
pub mod config;
pub mod documents;
pub mod http;
pub mod model;
pub mod policy;
pub mod secret;
pub mod service;
pub mod store;
pub mod throttle;
pub mod upstream;

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::config::Config;
use crate::config::DatabaseKind;
use crate::documents::DocumentFetcher;
use crate::service::{keys, sweep, Clock, Context};
use crate::store::postgres::PostgresStore;
use crate::store::sqlite::SqliteStore;
use crate::store::{Store, StoreError};

/// Opens the database named by the configuration, with the backend its URL's
/// scheme names, and brings its schema up to date.
pub async fn open_store(config: &Config) -> Result<Arc<dyn Store>, StoreError> {
    let store: Arc<dyn Store> = match DatabaseKind::of(&config.database) {
        Some(DatabaseKind::Postgres) => Arc::new(PostgresStore::open(&config.database).await?),
        // `Config` accepts no other scheme, so this is `sqlite:`.
        Some(DatabaseKind::Sqlite) | None => Arc::new(SqliteStore::open(&config.database).await?),
    };
    store.migrate().await?;
    Ok(store)
}

/// Everything the services need, from an open store.
pub async fn context(
    config: &Config,
    store: Arc<dyn Store>,
    clock: Arc<Clock>,
) -> Result<Context, String> {
    let cipher = keys::KeyCipher::new(config.keys_encryption_key);
    let keys = keys::ensure(
        store.as_ref(),
        cipher,
        clock.now(),
        config.policy.longest_access_token_lifetime(),
    )
    .await
    .map_err(|e| format!("loading signing keys: {e}"))?;
    let documents = Arc::new(
        DocumentFetcher::new(config.documents.clone())
            .map_err(|e| format!("metadata documents: {e}"))?,
    );
    let upstream = upstream::UpstreamClient::new(config.upstream.clone())?;
    let federation = match &config.federation {
        Some(f) => Some(Arc::new(service::federation::Federation::new(
            f.clone(),
            documents.clone(),
        )?)),
        None => None,
    };
    Ok(Context {
        federation,
        upstream: Arc::new(upstream),
        store,
        policy: Arc::new(config.policy.clone()),
        issuer: Arc::from(config.issuer.as_str()),
        keys: Arc::new(keys),
        clock,
        documents,
        gauges: Arc::default(),
    })
}

/// Runs the server on `listener` with the background sweeper, until
/// `shutdown` resolves; `/metrics` on an address of its own when
/// `metrics.listen` is set (bound here).
pub async fn serve(
    config: &Config,
    ctx: Context,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let operations = match config.metrics.listen {
        Some(addr) => Some(TcpListener::bind(addr).await.map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot listen on {addr} (metrics.listen): {e}"),
            )
        })?),
        None => None,
    };
    serve_on(config, ctx, listener, operations, shutdown).await
}

/// [`serve`] on listeners bound already: `operations`, when given, serves
/// `/metrics`, `/healthz` and `/readyz` only, and the main listener then
/// serves no `/metrics`.
pub async fn serve_on(
    config: &Config,
    ctx: Context,
    listener: TcpListener,
    operations: Option<TcpListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let store = ctx.store.clone();
    let clock = ctx.clock.clone();
    let mut sweeper_stop = stop_rx.clone();
    let sweeper = tokio::spawn(sweep::run(
        store,
        config.sweep_interval,
        move || clock.now(),
        async move {
            let _ = sweeper_stop.wait_for(|v| *v).await;
        },
    ));
    // Keys rotated on another node arrive within the reload interval.
    let mut reload_stop = stop_rx.clone();
    let (ring, store, clock, every) = (
        ctx.keys.clone(),
        ctx.store.clone(),
        ctx.clock.clone(),
        config.keys_reload_interval,
    );
    let reloader = tokio::spawn(async move {
        let mut ticker = tokio::time::interval(every);
        ticker.tick().await;
        loop {
            tokio::select! {
                _ = reload_stop.changed() => return,
                _ = ticker.tick() => {
                    if let Err(e) = ring.reload(store.as_ref(), clock.now()).await {
                        tracing::error!(error = %e, "reloading signing keys failed");
                    }
                }
            }
        }
    });
    // The gauges of /metrics, recounted here rather than per scrape. A
    // recount reads every live row: on a large database it takes seconds of
    // a core, so the next one waits at least a hundred times as long as the
    // last one took (`gauges::next_recount`).
    let mut gauges_stop = stop_rx.clone();
    let (gauges, store, clock, every) = (
        ctx.gauges.clone(),
        ctx.store.clone(),
        ctx.clock.clone(),
        config.metrics.refresh_interval,
    );
    let recounter = tokio::spawn(async move {
        let mut pause = std::time::Duration::ZERO;
        loop {
            tokio::select! {
                _ = gauges_stop.changed() => return,
                () = tokio::time::sleep(pause) => {
                    let began = std::time::Instant::now();
                    if let Err(e) = gauges.refresh(store.as_ref(), clock.now()).await {
                        tracing::error!(error = %e, "recounting the gauges of /metrics failed");
                    }
                    pause = crate::service::gauges::next_recount(every, began.elapsed());
                }
            }
        }
    });
    let tls = match &config.tls {
        Some((cert, key)) => {
            Some(http::tls::server_config(cert, key).map_err(std::io::Error::other)?)
        }
        None => None,
    };
    let mut app = http::AppState::new(ctx);
    app.trusted_proxies = Arc::new(config.trusted_proxies.clone());
    app.limits = Arc::new(throttle::Limiters::new(&config.limits));
    app.metrics_token = config.metrics.bearer_token.as_deref().map(Arc::from);
    app.metrics_on_main = operations.is_none();
    let app = http::App::from(app);
    let operations = operations.map(|l| {
        let (router, limits, mut stop) = (
            http::operations_router(app.clone()),
            config.limits.connections,
            stop_rx.clone(),
        );
        tokio::spawn(http::serve_router(l, router, None, limits, async move {
            let _ = stop.wait_for(|v| *v).await;
        }))
    });
    let result = http::serve(listener, app, tls, config.limits.connections, async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    })
    .await;
    let _ = sweeper.await;
    let _ = reloader.await;
    let _ = recounter.await;
    if let Some(operations) = operations {
        let _ = operations.await;
    }
    result
}

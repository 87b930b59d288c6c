//! Ephemera in-process (the default target), and grants stored ahead of a
//! run (`--preload-grants`), written straight into the store.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, Context as _, Result};
use ephemera_proto::scope::Scope;
use ephemera_server::config::{Config, RawConfig};
use ephemera_server::model::{Grant, KeyBinding};
use ephemera_server::service::admin::{self, NewClient};
use ephemera_server::service::{issue, new_id, Clock, Context};
use tokio::sync::oneshot;

use crate::target::{Credentials, REDIRECT};

/// Keeps the in-process server (and its database directory) alive.
pub struct Embedded {
    shutdown: Option<oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

impl Embedded {
    pub async fn stop(mut self) -> Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        (&mut self.server).await??;
        Ok(())
    }
}

/// The configuration every benchmark server runs with: scopes `read` and
/// `write`, and the per-address limits out of the way (all the load comes
/// from one address: they would measure themselves); pending requests pile
/// up in the `par` scenarios.
fn bench_config(database: String, listen: String) -> Result<Config> {
    let mut raw = RawConfig {
        listen,
        database,
        ..RawConfig::default()
    };
    raw.scopes.supported = vec!["read".into(), "write".into()];
    raw.limits.par_per_minute = 0;
    raw.limits.authorize_per_minute = 0;
    raw.limits.token_per_minute = 0;
    raw.limits.login_per_minute = 0;
    raw.registration.per_minute = u32::MAX;
    raw.pushed_clients.max_pending_requests = 10_000_000;
    Config::from_raw(raw).map_err(|e| anyhow!("configuration: {e}"))
}

async fn open(config: &Config) -> Result<Context> {
    let store = ephemera_server::open_store(config)
        .await
        .map_err(|e| anyhow!("opening the store: {e}"))?;
    ephemera_server::context(config, store, Arc::new(Clock::default()))
        .await
        .map_err(|e| anyhow!("context: {e}"))
}

/// The user, the resource server and the registered app of [`Credentials`].
async fn seed(ctx: &Context, c: &Credentials) -> Result<()> {
    let now = ctx.clock.now();
    admin::add_user(ctx.store.as_ref(), &c.user, c.password.clone(), now)
        .await
        .map_err(|e| anyhow!("adding the user: {e}"))?;
    let clients = [
        NewClient {
            client_id: c.rs_id.clone(),
            confidential: true,
            secret: Some(c.rs_secret.clone()),
            can_introspect: true,
            ..NewClient::default()
        },
        NewClient {
            client_id: c.app_id.clone(),
            confidential: true,
            secret: Some(c.app_secret.clone()),
            redirect_uris: vec![REDIRECT.into()],
            ..NewClient::default()
        },
    ];
    for client in clients {
        admin::add_client(ctx.store.as_ref(), &ctx.policy, client, now)
            .await
            .map_err(|e| anyhow!("adding a client: {e}"))?;
    }
    Ok(())
}

/// Starts Ephemera on 127.0.0.1:0 with a fresh SQLite file, seeded, with
/// `preload` grants already stored.
pub async fn start(creds: &Credentials, preload: u64) -> Result<(String, Embedded)> {
    let dir = tempfile::tempdir()?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let database = format!("sqlite://{}", dir.path().join("bench.db").display());
    let config = bench_config(database, addr.to_string())?;
    let ctx = open(&config).await?;
    seed(&ctx, creds).await?;
    if preload > 0 {
        store_grants(&ctx, creds, preload).await?;
    }
    let (tx, rx) = oneshot::channel::<()>();
    let base = config.issuer.clone();
    let server = tokio::spawn(async move {
        ephemera_server::serve(&config, ctx, listener, async {
            let _ = rx.await;
        })
        .await
    });
    Ok((
        base,
        Embedded {
            shutdown: Some(tx),
            server,
            _dir: dir,
        },
    ))
}

/// `--preload-grants N --preload-into URL`: stores N grants in a database
/// that `ephemera migrate` created and `bench/pinned.sh` seeded.
pub async fn preload_into(database: &str, creds: &Credentials, n: u64) -> Result<()> {
    let config = bench_config(database.to_owned(), "127.0.0.1:0".into())?;
    let ctx = open(&config).await?;
    store_grants(&ctx, creds, n).await
}

/// Grants of the user to the registered app, each with a live access and
/// refresh token, as a finished flow leaves them; written many at a time so
/// that the store commits them in groups.
async fn store_grants(ctx: &Context, creds: &Credentials, n: u64) -> Result<()> {
    let began = Instant::now();
    let client = ctx
        .store
        .find_client(&creds.app_id)
        .await
        .map_err(|e| anyhow!("finding {}: {e}", creds.app_id))?
        .context("the app client is not registered")?
        .snapshot();
    let user = ctx
        .store
        .find_user_by_name(&creds.user)
        .await
        .map_err(|e| anyhow!("finding {}: {e}", creds.user))?
        .context("the user does not exist")?;
    let scope = Scope::parse("read").map_err(|e| anyhow!("scope: {e}"))?;
    let mut writes = tokio::task::JoinSet::new();
    for _ in 0..n {
        let now = ctx.clock.now();
        let grant = Grant {
            id: new_id(),
            client: client.clone(),
            key_binding: KeyBinding::default(),
            subject: Some(user.id.clone()),
            username: Some(user.username.clone()),
            scope: scope.clone(),
            resources: Vec::new(),
            created_at: now,
            redirect_uri: None,
            authentication: None,
            exchanged: None,
        };
        let shape = issue::Shape {
            scope: &scope,
            refresh_scope: Some(&scope),
            jkt: None,
            x5t: None,
            audience: None,
            not_after: None,
        };
        let rows = issue::mint(ctx, &grant, shape, now)
            .map_err(|e| anyhow!("minting tokens: {e:?}"))?
            .rows;
        let store = ctx.store.clone();
        writes.spawn(async move { store.insert_grant_with_tokens(&grant, &rows).await });
        if writes.len() >= 512 {
            if let Some(done) = writes.join_next().await {
                done?.map_err(|e| anyhow!("storing a grant: {e}"))?;
            }
        }
    }
    while let Some(done) = writes.join_next().await {
        done?.map_err(|e| anyhow!("storing a grant: {e}"))?;
    }
    eprintln!(
        "stored {n} grants with their tokens in {:.1} s",
        began.elapsed().as_secs_f64()
    );
    Ok(())
}

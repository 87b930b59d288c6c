//! The command line: `serve` and the administrative commands beside it. Every
//! command reads the same configuration (`--config`, `--database`, env).

use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};

use crate::config::{Config, LogFormat, Overrides, RawConfig};
use crate::service::admin::{self, NewClient};
use crate::service::Clock;

#[derive(Parser, Debug)]
#[command(
    name = "ephemera",
    version,
    about = "An OAuth 2 authorization server for open-world clients"
)]
pub struct Cli {
    /// TOML configuration file.
    #[arg(long, global = true, env = "EPHEMERA_CONFIG")]
    config: Option<PathBuf>,
    /// Database URL, e.g. sqlite://data/ephemera.db.
    #[arg(long, global = true)]
    database: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the authorization server.
    Serve {
        /// Address to listen on, e.g. 127.0.0.1:8080.
        #[arg(long)]
        listen: Option<String>,
        /// Issuer identifier (the public base URL).
        #[arg(long)]
        issuer: Option<String>,
        /// PEM certificate chain: serve TLS (and accept client certificates, RFC 8705).
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// PEM private key of --tls-cert.
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
    },
    /// Create or upgrade the database schema, then exit.
    Migrate,
    /// Manage users (resource owners).
    #[command(subcommand)]
    User(UserCommand),
    /// Manage pre-registered clients.
    #[command(subcommand)]
    Client(ClientCommand),
    /// Manage signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// List and revoke grants (each authorization a user made, so each
    /// installation of a shared client apart).
    #[command(subcommand, name = "grants", visible_alias = "grant")]
    Grant(GrantCommand),
    /// Print live counts of requests, grants and tokens.
    Stats {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
enum UserCommand {
    /// Add a user; the password is read from standard input.
    Add {
        name: String,
        /// Read the password from standard input (required: passwords never go on the command line).
        #[arg(long, required = true)]
        password_stdin: bool,
        /// The person's full name (the `name` claim of ID Tokens and /userinfo).
        #[arg(long = "full-name")]
        full_name: Option<String>,
        /// The person's email address (the `email` claim), as verified by the operator.
        #[arg(long)]
        email: Option<String>,
    },
    /// List users.
    List,
}

#[derive(Subcommand, Debug)]
enum GrantCommand {
    /// List grants, newest first: id, client, client kind, user, granted,
    /// last got tokens, live tokens, scope, bound key.
    List {
        /// Only this client's grants.
        #[arg(long)]
        client: Option<String>,
        /// Only this user's grants.
        #[arg(long)]
        user: Option<String>,
        /// Only the grants bound to this key: a DPoP key thumbprint (RFC 9449
        /// `jkt`) or a certificate SHA-256 thumbprint (RFC 8705 `x5t#S256`),
        /// as the list shows it.
        #[arg(long)]
        key: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke grants with their codes and tokens: one by its id (the
    /// client's other grants, other installations and other users, are
    /// untouched), every grant bound to one key (one compromised
    /// installation of an agent), or every grant of one user. Prints how
    /// many ended.
    #[command(group(
        clap::ArgGroup::new("which")
            .required(true)
            .args(["id", "key", "user"])
    ))]
    Revoke {
        /// The grant's id.
        id: Option<String>,
        /// Every grant bound to this key: a DPoP key thumbprint or a
        /// certificate SHA-256 thumbprint.
        #[arg(long)]
        key: Option<String>,
        /// Every grant of this user.
        #[arg(long)]
        user: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum KeysCommand {
    /// Add a new signing key and retire the others (every node picks it up
    /// within keys.reload_interval; the JWKS keeps retired keys until what
    /// they signed has expired).
    Rotate,
    /// List signing keys.
    List,
}

#[derive(Subcommand, Debug)]
enum ClientCommand {
    /// Register a client.
    Add(ClientAdd),
    /// List registered clients.
    List,
    /// Delete a client with its grants and tokens.
    Delete { id: String },
}

#[derive(Args, Debug)]
struct ClientAdd {
    id: String,
    /// A redirect URI (repeatable).
    #[arg(long = "redirect-uri")]
    redirect_uris: Vec<String>,
    /// A confidential client with a secret (printed once unless --secret-stdin).
    #[arg(long)]
    confidential: bool,
    /// Read the secret from standard input instead of generating one.
    #[arg(long, requires = "confidential")]
    secret_stdin: bool,
    /// May call the introspection endpoint (for resource servers).
    #[arg(long)]
    introspect: bool,
    /// A scope this client may be granted (repeatable; default: any).
    #[arg(long = "scope")]
    scopes: Vec<String>,
    /// Display name shown on the consent page.
    #[arg(long)]
    name: Option<String>,
    /// A JWK Set file with the client's public keys: it authenticates with
    /// private_key_jwt (RFC 7523) instead of a secret.
    #[arg(long, conflicts_with = "secret_stdin")]
    jwks_file: Option<PathBuf>,
    /// A grant type it may use: authorization_code, refresh_token,
    /// client_credentials, urn:ietf:params:oauth:grant-type:jwt-bearer
    /// (ID-JAGs; repeatable; default: authorization_code and refresh_token,
    /// and client_credentials for a confidential client).
    #[arg(long = "grant-type")]
    grant_types: Vec<String>,
}

/// Parses the command line and runs it; errors are printed, not panicked.
pub async fn run() -> ExitCode {
    let cli = Cli::parse();
    match run_cli(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("ephemera: {message}");
            ExitCode::FAILURE
        }
    }
}

fn load(cli: &Cli) -> Result<Config, String> {
    let mut overrides = Overrides {
        database: cli.database.clone(),
        ..Overrides::default()
    };
    if let Command::Serve {
        listen,
        issuer,
        tls_cert,
        tls_key,
    } = &cli.command
    {
        overrides.listen = listen.clone();
        overrides.issuer = issuer.clone();
        if tls_cert.is_some() {
            overrides.tls = Some(crate::config::RawTls {
                cert: tls_cert.clone(),
                key: tls_key.clone(),
                trusted_proxies: Vec::new(),
            });
        }
    }
    let raw = RawConfig::load(cli.config.as_deref(), &overrides).map_err(|e| e.to_string())?;
    Config::from_raw(raw).map_err(|e| e.to_string())
}

fn read_stdin(what: &str) -> Result<String, String> {
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .map_err(|e| format!("reading the {what} from standard input: {e}"))?;
    let s = s.trim_end_matches(['\n', '\r']).to_owned();
    if s.is_empty() {
        return Err(format!("no {what} on standard input"));
    }
    Ok(s)
}

async fn run_cli(cli: Cli) -> Result<(), String> {
    let config = load(&cli)?;
    let clock = Arc::new(Clock::default());
    let store = crate::open_store(&config).await.map_err(|e| {
        format!(
            "opening the database {}: {e}",
            crate::config::redacted(&config.database)
        )
    })?;
    let now = clock.now();
    match cli.command {
        Command::Serve { .. } => serve(config, store, clock).await,
        Command::Migrate => {
            println!(
                "database {} is up to date",
                crate::config::redacted(&config.database)
            );
            Ok(())
        }
        Command::User(UserCommand::Add {
            name,
            full_name,
            email,
            ..
        }) => {
            let password = read_stdin("password")?;
            let claims = crate::model::UserClaims {
                name: full_name,
                email_verified: email.as_ref().map(|_| true),
                email,
                ..Default::default()
            };
            let user = admin::add_user_with_claims(store.as_ref(), &name, password, claims, now)
                .await
                .map_err(|e| e.to_string())?;
            println!("added user {} ({})", user.username, user.id);
            Ok(())
        }
        Command::User(UserCommand::List) => {
            for u in store.list_users().await.map_err(|e| e.to_string())? {
                println!("{}\t{}", u.username, u.id);
            }
            Ok(())
        }
        Command::Client(ClientCommand::Add(add)) => {
            let jwks = match &add.jwks_file {
                Some(path) => {
                    let text = std::fs::read_to_string(path)
                        .map_err(|e| format!("reading {}: {e}", path.display()))?;
                    Some(
                        serde_json::from_str(&text)
                            .map_err(|e| format!("{}: not JSON: {e}", path.display()))?,
                    )
                }
                None => None,
            };
            let secret = if add.secret_stdin {
                Some(read_stdin("client secret")?)
            } else {
                None
            };
            let new = NewClient {
                client_id: add.id,
                name: add.name,
                redirect_uris: add.redirect_uris,
                scopes: add.scopes,
                confidential: add.confidential,
                secret,
                can_introspect: add.introspect,
                jwks,
                grant_types: add.grant_types,
            };
            let (client, shown) = admin::add_client(store.as_ref(), &config.policy, new, now)
                .await
                .map_err(|e| e.to_string())?;
            let kind = if client.confidential {
                "confidential"
            } else {
                "public"
            };
            println!("added {kind} client {}", client.client_id);
            if let Some(secret) = shown {
                println!("client_secret: {}", secret.expose());
                println!("(shown once: Ephemera keeps only its hash)");
            }
            Ok(())
        }
        Command::Client(ClientCommand::List) => {
            for c in store.list_clients().await.map_err(|e| e.to_string())? {
                let kind = if c.confidential {
                    "confidential"
                } else {
                    "public"
                };
                let introspect = if c.can_introspect { " introspect" } else { "" };
                println!(
                    "{}\t{kind}{introspect}\t{}\t{}",
                    c.client_id,
                    c.redirect_uris.join(" "),
                    c.snapshot().grant_types.join(",")
                );
            }
            Ok(())
        }
        Command::Client(ClientCommand::Delete { id }) => {
            admin::delete_client(store.as_ref(), &id)
                .await
                .map_err(|e| e.to_string())?;
            println!("deleted client {id}");
            Ok(())
        }
        Command::Keys(KeysCommand::Rotate) => {
            let cipher = crate::service::keys::KeyCipher::new(config.keys_encryption_key);
            let kid = crate::service::keys::rotate(store.as_ref(), &cipher, now)
                .await
                .map_err(|e| e.to_string())?;
            println!("new signing key {kid}; the others are retired");
            Ok(())
        }
        Command::Keys(KeysCommand::List) => {
            let published_since = now - config.policy.longest_access_token_lifetime();
            for k in store
                .signing_keys(published_since)
                .await
                .map_err(|e| e.to_string())?
            {
                let state = if k.retired_at.is_some() {
                    "retired"
                } else {
                    "signing"
                };
                println!("{}\t{}\t{state}", k.kid, k.alg);
            }
            Ok(())
        }
        Command::Grant(GrantCommand::List {
            client,
            user,
            key,
            json,
        }) => {
            let filter = crate::model::GrantFilter {
                subject: user_id(store.as_ref(), user).await?,
                client_id: client,
                key,
                limit: crate::service::grants::LIST_LIMIT,
            };
            let list = crate::service::grants::list(store.as_ref(), &filter, now)
                .await
                .map_err(|e| e.to_string())?;
            print_grants(&list, json)
        }
        Command::Grant(GrantCommand::Revoke {
            id: Some(id),
            key: None,
            user: None,
        }) => {
            if !crate::service::grants::revoke(store.as_ref(), &id)
                .await
                .map_err(|e| e.to_string())?
            {
                return Err(format!("no grant `{id}`"));
            }
            println!("revoked grant {id}");
            Ok(())
        }
        Command::Grant(GrantCommand::Revoke {
            id: None,
            key,
            user,
        }) => {
            let nothing = match (&key, &user) {
                (Some(k), _) => format!("no grant is bound to key `{k}`"),
                (None, Some(u)) => format!("user `{u}` has no grant"),
                (None, None) => "name one grant id, --key or --user".to_owned(),
            };
            let filter = crate::model::GrantFilter {
                subject: user_id(store.as_ref(), user).await?,
                key,
                ..crate::model::GrantFilter::default()
            };
            let ended = crate::service::grants::revoke_matching(store.as_ref(), &filter, now)
                .await
                .map_err(|e| e.to_string())?;
            if ended == 0 {
                return Err(nothing);
            }
            println!("revoked {ended} grant{}", if ended == 1 { "" } else { "s" });
            Ok(())
        }
        // clap's group lets exactly one of them through.
        Command::Grant(GrantCommand::Revoke { .. }) => {
            Err("name one grant id, --key or --user".to_owned())
        }
        Command::Stats { json } => {
            let stats = store.stats(now).await.map_err(|e| e.to_string())?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&stats).map_err(|e| e.to_string())?
                );
            } else {
                let value = serde_json::to_value(&stats).map_err(|e| e.to_string())?;
                if let Some(map) = value.as_object() {
                    for (k, v) in map {
                        println!("{k:<24} {v}");
                    }
                }
            }
            Ok(())
        }
    }
}

/// The id of the user named `name`, if one is named.
async fn user_id(
    store: &dyn crate::store::Store,
    name: Option<String>,
) -> Result<Option<String>, String> {
    let Some(name) = name else { return Ok(None) };
    let user = store
        .find_user_by_name(&name)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no user `{name}`"))?;
    Ok(Some(user.id))
}

/// `ephemera grants list`: one line per grant, tab-separated, or JSON.
fn print_grants(list: &[crate::model::GrantSummary], json: bool) -> Result<(), String> {
    use crate::service::grants::utc;
    if json {
        let rows: Vec<serde_json::Value> = list
            .iter()
            .map(|s| {
                let g = &s.grant;
                let key = s.key();
                serde_json::json!({
                    "grant_id": g.id,
                    "client_id": g.client.client_id,
                    "client_kind": g.client.kind.as_str(),
                    "client_name": g.client.name,
                    "verified_origin": g.client.verified_origin,
                    "username": g.username,
                    "scope": g.scope.to_string(),
                    "created_at": g.created_at,
                    "last_issued": s.last_issued,
                    "live_tokens": s.live_tokens,
                    "redirect_uri": g.redirect_uri,
                    "resources": g.resources,
                    "dpop_jkt": key.dpop_jkt,
                    "x5t#S256": key.x5t_s256,
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&rows).map_err(|e| e.to_string())?
        );
        return Ok(());
    }
    for s in list {
        let g = &s.grant;
        let key = match (&s.key().dpop_jkt, &s.key().x5t_s256) {
            (Some(jkt), _) => format!("dpop:{jkt}"),
            (None, Some(x5t)) => format!("x5t:{x5t}"),
            (None, None) => "-".to_owned(),
        };
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{key}",
            g.id,
            g.client.client_id,
            g.client.kind.as_str(),
            g.username.as_deref().unwrap_or("-"),
            utc(g.created_at),
            s.last_issued.map_or_else(|| "never".to_owned(), utc),
            s.live_tokens,
            g.scope,
        );
    }
    Ok(())
}

/// The log filter: `EPHEMERA_LOG`, else `RUST_LOG`, else `info`. A filter
/// that does not parse stops the start-up rather than being ignored.
fn log_filter() -> Result<tracing_subscriber::EnvFilter, String> {
    for var in ["EPHEMERA_LOG", "RUST_LOG"] {
        if let Ok(value) = std::env::var(var) {
            return tracing_subscriber::EnvFilter::try_new(&value)
                .map_err(|e| format!("{var}={value:?} is not a log filter: {e}"));
        }
    }
    Ok(tracing_subscriber::EnvFilter::new("info"))
}

/// Logs to standard error, in colour only when that is a terminal.
fn init_logging(format: LogFormat) -> Result<(), String> {
    use std::io::IsTerminal as _;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(log_filter()?)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
    }
    Ok(())
}

async fn serve(
    config: Config,
    store: Arc<dyn crate::store::Store>,
    clock: Arc<Clock>,
) -> Result<(), String> {
    init_logging(config.log_format)?;
    // With local passwords off, people sign in only through the upstream
    // providers: a password account would be one nobody can use.
    let first_admin = if config.upstream.passwords {
        admin::ensure_admin(store.as_ref(), clock.now())
            .await
            .map_err(|e| e.to_string())?
    } else {
        None
    };
    if let Some(password) = first_admin {
        println!("created user `admin` with password: {password}");
        println!("(shown once: change it or add your own users with `ephemera user add`)");
    }
    if let Some((cert, key)) = &config.tls {
        // Fail before listening, with the file named.
        crate::http::tls::server_config(cert, key)?;
    }
    let ctx = crate::context(&config, store, clock).await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let operations = match config.metrics.listen {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| format!("cannot listen on {addr} (metrics.listen): {e}"))?,
        ),
        None => None,
    };
    tracing::info!(listen = %config.listen, metrics = ?config.metrics.listen, issuer = %config.issuer, database = %crate::config::redacted(&config.database), "ephemera is serving");
    crate::serve_on(&config, ctx, listener, operations, shutdown_signal())
        .await
        .map_err(|e| format!("server failed: {e}"))
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}

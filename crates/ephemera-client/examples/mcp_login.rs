//! `mcp_login`: an MCP client's login, from a resource URL alone.
//!
//! ```text
//! cargo run -p ephemera-client --example mcp_login -- http://127.0.0.1:9090/api/whoami
//! ```
//!
//! It asks the resource without a token and follows its `401` to the
//! resource metadata (RFC 9728) and the authorization server's metadata
//! (RFC 8414 or OpenID discovery), becomes a client there (`--client-id`,
//! else `--client-metadata-url` where the server takes metadata documents,
//! else Pushed Client Registration where advertised, else Dynamic Client
//! Registration), prints the authorization URL to open, waits for the
//! browser on a loopback redirect (RFC 8252), exchanges the code with
//! `resource` (RFC 8707) and calls the resource with the token. A `403`
//! `insufficient_scope` sends the user once more, asking for the union of
//! the scopes. The process exits 0 when the last call succeeds.
//!
//! The steps are the library's (see the crate docs, "MCP"); this file only
//! strings them together. Ephemera's integration tests run [`run`] against
//! the real server.

use std::error::Error;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Parser;
use ephemera_client::challenge::{insufficient_scope, scope_union};
use ephemera_client::server::default_http_client;
use ephemera_client::{
    AccessToken, AuthorizationRequest, AuthorizationServer, ClientIdentity, ClientRegistration,
    DpopKey, LoopbackRedirect, MemoryTokenStore, ProtectedResource, RegisteredClient, SecretMethod,
    StoredTokens, TokenKey, TokenStore,
};

/// Whatever stops the run, said once by `main`.
pub type Failure = Box<dyn Error + Send + Sync>;

/// Log in to an MCP server (any OAuth-protected resource) and call it.
#[derive(Debug, Parser)]
#[command(name = "mcp_login")]
pub struct Args {
    /// The resource to call (an MCP server's URL).
    pub resource: String,
    /// A client_id registered beforehand at the authorization server.
    #[arg(long)]
    pub client_id: Option<String>,
    /// The secret of that client, if it is confidential (client_secret_basic).
    #[arg(long, requires = "client_id")]
    pub client_secret: Option<String>,
    /// The https URL of this client's Client ID Metadata Document (you
    /// publish it), used where the server takes metadata documents.
    #[arg(long)]
    pub client_metadata_url: Option<String>,
    /// The scope to ask for first, instead of the one the resource names.
    #[arg(long)]
    pub scope: Option<String>,
    /// Never use Pushed Client Registration.
    #[arg(long)]
    pub no_pushed_registration: bool,
    /// Bind the tokens to a fresh DPoP key (RFC 9449).
    #[arg(long)]
    pub dpop: bool,
    /// Seconds to wait for the browser to come back.
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
}

/// Runs the login and the call; returns the resource's last status.
/// `say` gets every line to show, the authorization URL as
/// `open <url>`.
pub async fn run(args: Args, say: impl Fn(String)) -> Result<u16, Failure> {
    let http = default_http_client();
    let resource = ProtectedResource::discover(&http, &args.resource).await?;
    say(format!(
        "resource {} (metadata at {})",
        resource.resource(),
        resource.metadata_url
    ));
    let server = resource.authorization_server(&http).await?;
    say(format!("authorization server {}", server.issuer()));

    let loopback = LoopbackRedirect::bind().await?;
    let client = registration(&args, &loopback).register(&server).await?;
    say(format!(
        "client {} ({:?})",
        client.identity.client_id(),
        client.method
    ));

    let store = MemoryTokenStore::new();
    let key = TokenKey::new(server.issuer(), resource.resource());
    let mut scope = args.scope.clone().or_else(|| resource.scope());
    let mut stepped_up = false;
    loop {
        let stored = login(&args, &server, &client, &resource, &loopback, scope, &say).await?;
        store.save(&key, stored.clone())?;
        say(format!(
            "tokens for {} (scope {})",
            resource.resource(),
            stored.scope.as_deref().unwrap_or("-")
        ));
        let token = AccessToken::from_response(&stored.tokens, client.identity.dpop_key())?;
        let response = token
            .send_with_nonce_retry(http.get(&args.resource))
            .await?;
        let status = response.status().as_u16();
        say(format!("GET {} -> {status}", args.resource));
        // Step up once (MCP 2025-11-25, "Step-Up Authorization Flow"): a
        // second refusal means the user or the server will not grant it.
        match insufficient_scope(status, response.headers()) {
            Some(needed) if !stepped_up => {
                stepped_up = true;
                let union = scope_union(stored.scope.as_deref(), &needed);
                say(format!("insufficient_scope: asking again for {union}"));
                scope = Some(union);
            }
            _ => {
                let body = response.text().await.unwrap_or_default();
                say(body.chars().take(2000).collect());
                return Ok(status);
            }
        }
    }
}

/// Who this client is: what `--client-id` and `--client-metadata-url`
/// say, and the metadata it pushes or registers otherwise.
fn registration(args: &Args, loopback: &LoopbackRedirect) -> ClientRegistration {
    let mut registration = ClientRegistration::new(serde_json::json!({
        "client_name": "Ephemera mcp_login example",
        "redirect_uris": [loopback.redirect_uri()],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    }));
    if let Some(client_id) = &args.client_id {
        registration = registration.pre_registered(match &args.client_secret {
            Some(secret) => ClientIdentity::confidential(client_id, secret, SecretMethod::Basic),
            None => ClientIdentity::public(client_id),
        });
    }
    if let Some(url) = &args.client_metadata_url {
        registration = registration.metadata_document(url);
    }
    if args.no_pushed_registration {
        registration = registration.without_pushed_registration();
    }
    if args.dpop {
        registration = registration.with_dpop(DpopKey::generate());
    }
    registration
}

/// One authorization: the request, the user (through the printed URL),
/// the redirect back and the code exchange.
async fn login(
    args: &Args,
    server: &AuthorizationServer,
    client: &RegisteredClient,
    resource: &ProtectedResource,
    loopback: &LoopbackRedirect,
    scope: Option<String>,
    say: &impl Fn(String),
) -> Result<StoredTokens, Failure> {
    let request = AuthorizationRequest::new(loopback.redirect_uri())
        .maybe_scope(scope)
        .resource(resource.resource());
    let pending = server.begin(&client.identity, request).await?;
    say(format!("open {}", pending.authorization_url));
    let callback =
        tokio::time::timeout(Duration::from_secs(args.timeout), loopback.next_callback())
            .await
            .map_err(|_| "the browser did not come back in time")??;
    let code = pending.code(&callback)?;
    let tokens = server.exchange_code(&pending, &code).await?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    Ok(StoredTokens::new(
        &pending.client_id,
        tokens,
        pending.scope.as_deref(),
        now,
    ))
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match run(args, |line| println!("{line}")).await {
        Ok(status) if (200..300).contains(&status) => std::process::ExitCode::SUCCESS,
        Ok(_) => std::process::ExitCode::FAILURE,
        Err(error) => {
            eprintln!("mcp_login: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

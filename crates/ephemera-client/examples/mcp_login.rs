//! `mcp_login`: an MCP client, from a server URL alone.
//!
//! ```text
//! cargo run -p ephemera-client --example mcp_login -- http://127.0.0.1:9090/mcp --call whoami
//! ```
//!
//! It speaks MCP's Streamable HTTP ([`McpSession`]): `initialize`,
//! `tools/list` and, with `--call`, `tools/call`. Whenever the server
//! answers `401` it follows the challenge to the resource metadata
//! (RFC 9728) and the authorization server's metadata (RFC 8414 or OpenID
//! discovery), becomes a client there once per issuer (`--client-id`, else
//! `--client-metadata-url` where the server takes metadata documents, else
//! Pushed Client Registration where advertised, else Dynamic Client
//! Registration), prints the authorization URL to open, waits for the
//! browser on a loopback redirect (RFC 8252), exchanges the code with
//! `resource` (RFC 8707) and sends the request again with the token. A
//! `403` `insufficient_scope` sends the user once more, asking for the
//! union of the scopes; a server that asks for no scope it was not already
//! asked for is not asked again. The process exits 0 when every request
//! succeeds.
//!
//! The tokens are bound to a DPoP key (RFC 9449) where the server
//! advertises ES256 for DPoP, or always with `--dpop`. A client with
//! credentials of its own at a server that offers only the
//! `client_credentials` grant (MCP's client credentials extension) uses it,
//! and so does `--client-credentials`. `--without-user` is for
//! authorization servers that approve without a person (a test server, a
//! grant approved beforehand): the example requests the authorization URL
//! itself and reads the code from the redirect back.
//!
//! No person logs in either with a JWT another party issued, presented as
//! a JWT bearer grant (RFC 7523 §2.1): `--assertion-file`, the JWT a
//! workload's platform issued it (MCP's workload identity federation,
//! SEP-1933); or `--id-token-file` with `--idp-issuer` and
//! `--idp-client-id`, the user's ID token from an enterprise identity
//! provider, exchanged there (RFC 8693) for an ID-JAG naming the MCP
//! server and its authorization server (MCP's Enterprise-Managed
//! Authorization, SEP-990).
//!
//! `--conformance` runs it as the MCP conformance suite's client
//! (`conformance client --command "mcp_login --conformance"`): without a
//! user, the protocol version of `MCP_CONFORMANCE_PROTOCOL_VERSION`, the
//! credentials of `MCP_CONFORMANCE_CONTEXT` (`client_id`, `client_secret`,
//! `private_key_pem`; the workload's `valid_jwt`; the enterprise
//! `idp_issuer`, `idp_client_id` and `idp_id_token`), the suite's metadata
//! document URL, and a call to the first tool listed.
//!
//! The steps are the library's (see the crate docs, "MCP"); this file only
//! strings them together. Ephemera's integration tests run [`run`] against
//! the real server, and the conformance suite runs the binary.

use std::collections::HashMap;
use std::error::Error;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Parser;
use ephemera_client::challenge::{insufficient_scope, scope_union};
use ephemera_client::mcp::PROTOCOL_VERSION;
use ephemera_client::server::default_http_client;
use ephemera_client::{
    AccessToken, AuthorizationRequest, AuthorizationServer, ClientIdentity, ClientKey,
    ClientRegistration, DpopKey, LoopbackRedirect, McpAnswer, McpSession, MemoryTokenStore,
    ProtectedResource, RegisteredClient, SecretMethod, StoredTokens, TokenExchangeRequest,
    TokenKey, TokenResponse, TokenStore, TokenType,
};
use serde_json::{json, Value};

/// Whatever stops the run, said once by `main`.
pub type Failure = Box<dyn Error + Send + Sync>;

/// The Client ID Metadata Document URL the conformance suite expects (it
/// never fetches it).
pub const CONFORMANCE_METADATA_URL: &str = "https://conformance-test.local/client-metadata.json";

/// Authorizations for one request at most: a login, a step-up, a login at
/// a new authorization server. MCP asks clients to bound these retries.
const MAX_AUTHORIZATIONS: usize = 3;

/// Log in to an MCP server (any OAuth-protected MCP server) and call it.
#[derive(Debug, Parser)]
#[command(name = "mcp_login")]
pub struct Args {
    /// The MCP server's URL.
    pub resource: String,
    /// A client_id registered beforehand at the authorization server.
    #[arg(long)]
    pub client_id: Option<String>,
    /// The secret of that client, if it is confidential (client_secret_basic).
    #[arg(long, requires = "client_id", conflicts_with = "client_key")]
    pub client_secret: Option<String>,
    /// The PKCS #8 PEM file of that client's private_key_jwt key (ES256).
    #[arg(long, requires = "client_id")]
    pub client_key: Option<PathBuf>,
    /// The https URL of this client's Client ID Metadata Document (you
    /// publish it), used where the server takes metadata documents.
    #[arg(long)]
    pub client_metadata_url: Option<String>,
    /// The scope to ask for first, instead of the one the server names.
    #[arg(long)]
    pub scope: Option<String>,
    /// Never use Pushed Client Registration.
    #[arg(long)]
    pub no_pushed_registration: bool,
    /// Bind the tokens to a fresh DPoP key (RFC 9449) even where the
    /// server does not advertise DPoP.
    #[arg(long)]
    pub dpop: bool,
    /// Use the client_credentials grant (needs --client-id and a secret or key).
    #[arg(long, requires = "client_id")]
    pub client_credentials: bool,
    /// A file holding a JWT this workload's platform issued for the
    /// authorization server, presented as a JWT bearer grant (RFC 7523
    /// §2.1; MCP's workload identity federation) instead of a login.
    #[arg(long, conflicts_with_all = ["client_credentials", "id_token_file"])]
    pub assertion_file: Option<PathBuf>,
    /// A file holding the user's ID token from an enterprise identity
    /// provider: exchanged there for an ID-JAG (RFC 8693), presented as a
    /// JWT bearer grant instead of a login (MCP's Enterprise-Managed
    /// Authorization).
    #[arg(long, requires_all = ["idp_issuer", "idp_client_id"], conflicts_with = "client_credentials")]
    pub id_token_file: Option<PathBuf>,
    /// The issuer of that identity provider (its metadata names the token
    /// endpoint).
    #[arg(long, requires = "id_token_file")]
    pub idp_issuer: Option<String>,
    /// This client's client_id at the identity provider.
    #[arg(long, requires = "id_token_file")]
    pub idp_client_id: Option<String>,
    /// This client's secret at the identity provider, if it has one
    /// (client_secret_basic).
    #[arg(long, requires = "idp_client_id")]
    pub idp_client_secret: Option<String>,
    /// No person: request the authorization URL here and take the code
    /// from the redirect back (for servers that approve by themselves).
    #[arg(long)]
    pub without_user: bool,
    /// The MCP protocol version to speak (2026-07-28: the stateless draft).
    #[arg(long, default_value = PROTOCOL_VERSION)]
    pub protocol_version: String,
    /// The tool to call after listing them.
    #[arg(long)]
    pub call: Option<String>,
    /// The tool's arguments, a JSON object.
    #[arg(long, default_value = "{}")]
    pub arguments: String,
    /// Seconds to wait for the browser to come back.
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
    /// Run as the MCP conformance suite's client (see the file's docs).
    #[arg(long)]
    pub conformance: bool,
}

/// What the run does, once the arguments and the conformance suite's
/// environment are read.
struct Settings {
    args: Args,
    /// `--client-key`'s PEM, or the suite's `private_key_pem`.
    client_key_pem: Option<String>,
    /// `--assertion-file`'s JWT, or the suite's `valid_jwt`.
    assertion: Option<String>,
    /// `--id-token-file` and the `--idp-*` options, or the suite's `idp_*`.
    enterprise: Option<Enterprise>,
    /// Call the first tool listed when `--call` names none.
    call_first_tool: bool,
}

/// The enterprise identity provider a user's ID token comes from, and this
/// client there (MCP's Enterprise-Managed Authorization).
struct Enterprise {
    issuer: String,
    identity: ClientIdentity,
    id_token: String,
}

impl Settings {
    fn new(mut args: Args) -> Result<Self, Failure> {
        let mut client_key_pem = match &args.client_key {
            Some(path) => Some(std::fs::read_to_string(path)?),
            None => None,
        };
        // A JWT in a file, without the line end editors and `echo` add.
        let jwt = |path: &Option<PathBuf>| -> Result<Option<String>, Failure> {
            match path {
                Some(path) => Ok(Some(std::fs::read_to_string(path)?.trim().to_owned())),
                None => Ok(None),
            }
        };
        let mut assertion = jwt(&args.assertion_file)?;
        let mut enterprise = match (
            jwt(&args.id_token_file)?,
            &args.idp_issuer,
            &args.idp_client_id,
        ) {
            (Some(id_token), Some(issuer), Some(client_id)) => Some(Enterprise {
                issuer: issuer.clone(),
                identity: match &args.idp_client_secret {
                    Some(secret) => {
                        ClientIdentity::confidential(client_id, secret, SecretMethod::Basic)
                    }
                    None => ClientIdentity::public(client_id),
                },
                id_token,
            }),
            _ => None,
        };
        if args.conformance {
            args.without_user = true;
            if let Ok(version) = std::env::var("MCP_CONFORMANCE_PROTOCOL_VERSION") {
                args.protocol_version = version;
            }
            if let Ok(context) = std::env::var("MCP_CONFORMANCE_CONTEXT") {
                let context: Value = serde_json::from_str(&context)?;
                let text = |name: &str| context[name].as_str().map(str::to_owned);
                args.client_id = args.client_id.or_else(|| text("client_id"));
                args.client_secret = args.client_secret.or_else(|| text("client_secret"));
                client_key_pem = client_key_pem.or_else(|| text("private_key_pem"));
                // auth/wif-jwt-bearer: the workload's JWT (the others it
                // gives are made to be refused).
                assertion = assertion.or_else(|| text("valid_jwt"));
                // auth/enterprise-managed-authorization: the identity
                // provider, found by its issuer's metadata.
                if let (None, Some(issuer), Some(client_id), Some(id_token)) = (
                    &enterprise,
                    text("idp_issuer"),
                    text("idp_client_id"),
                    text("idp_id_token"),
                ) {
                    enterprise = Some(Enterprise {
                        issuer,
                        identity: ClientIdentity::public(client_id),
                        id_token,
                    });
                }
            }
            args.client_metadata_url = args
                .client_metadata_url
                .or_else(|| Some(CONFORMANCE_METADATA_URL.to_owned()));
        }
        Ok(Self {
            call_first_tool: args.conformance && args.call.is_none(),
            args,
            client_key_pem,
            assertion,
            enterprise,
        })
    }

    /// The pre-registered client `--client-id` (and a secret or key) names.
    fn pre_registered(&self) -> Result<Option<ClientIdentity>, Failure> {
        let Some(client_id) = &self.args.client_id else {
            return Ok(None);
        };
        Ok(Some(
            match (&self.args.client_secret, &self.client_key_pem) {
                (_, Some(pem)) => {
                    ClientIdentity::private_key_jwt(client_id, ClientKey::from_pkcs8_pem(pem)?)
                }
                (Some(secret), None) => {
                    ClientIdentity::confidential(client_id, secret, SecretMethod::Basic)
                }
                (None, None) => ClientIdentity::public(client_id),
            },
        ))
    }
}

/// Runs the session: `initialize`, `tools/list` and the call, each
/// authorized as the server asks. Returns the last result. `say` gets
/// every line to show, the authorization URL as `open <url>`.
pub async fn run(args: Args, say: impl Fn(String)) -> Result<Value, Failure> {
    let settings = Settings::new(args)?;
    let http = default_http_client();
    let mut session = McpSession::new(
        http.clone(),
        &settings.args.resource,
        &settings.args.protocol_version,
        json!({"name": "ephemera-mcp-login", "version": env!("CARGO_PKG_VERSION")}),
    );
    let mut auth = Authorizer {
        loopback: LoopbackRedirect::bind().await?,
        settings: &settings,
        http,
        clients: HashMap::new(),
        store: MemoryTokenStore::new(),
        token: None,
        scope: None,
        say: &say,
    };

    let server = auth.send(&mut session, &Step::Initialize).await?;
    if !session.is_stateless() {
        say(format!(
            "initialized {} ({})",
            server["serverInfo"]["name"].as_str().unwrap_or("?"),
            session.protocol_version()
        ));
    }
    let listed = auth
        .send(&mut session, &Step::Request("tools/list", json!({})))
        .await?;
    let tools: Vec<&str> = listed["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|tool| tool["name"].as_str())
        .collect();
    say(format!("tools: {}", tools.join(", ")));
    let tool = match &settings.args.call {
        Some(tool) => Some(tool.as_str()),
        None if settings.call_first_tool => tools.first().copied(),
        None => None,
    };
    let Some(tool) = tool else {
        return Ok(listed);
    };
    let arguments: Value = serde_json::from_str(&settings.args.arguments)?;
    let params = json!({"name": tool, "arguments": arguments});
    let result = auth
        .send(&mut session, &Step::Request("tools/call", params))
        .await?;
    say(format!("tools/call {tool} -> {result}"));
    if result["isError"] == true {
        return Err(format!("the tool {tool} failed").into());
    }
    Ok(result)
}

/// One MCP message to send, as often as authorization needs.
enum Step {
    Initialize,
    Request(&'static str, Value),
}

/// The token and all it took: the clients per issuer, the scope asked for.
struct Authorizer<'a, S: Fn(String)> {
    settings: &'a Settings,
    http: reqwest::Client,
    loopback: LoopbackRedirect,
    /// One client per authorization server: credentials of one are never
    /// shown to another (an MCP server may move to a new one).
    clients: HashMap<String, RegisteredClient>,
    store: MemoryTokenStore,
    token: Option<AccessToken>,
    scope: Option<String>,
    say: &'a S,
}

impl<S: Fn(String)> Authorizer<'_, S> {
    /// Sends `step`, authorizing on each `401` (from the challenge: the
    /// server may have moved to another authorization server) and `403`
    /// `insufficient_scope` (the union of the scopes, unless it asks for
    /// nothing new), at most [`MAX_AUTHORIZATIONS`] times.
    async fn send(&mut self, session: &mut McpSession, step: &Step) -> Result<Value, Failure> {
        let mut authorizations = 0;
        loop {
            let answer = match step {
                Step::Initialize => session.initialize(self.token.as_ref()).await?,
                Step::Request(method, params) => {
                    session
                        .request(self.token.as_ref(), method, params.clone())
                        .await?
                }
            };
            let (status, headers) = match answer {
                McpAnswer::Result(result) => return Ok(result),
                McpAnswer::Refused { status, headers } => (status, headers),
            };
            let url = &self.settings.args.resource;
            (self.say)(format!("{} -> {status}", step.name()));
            if authorizations == MAX_AUTHORIZATIONS {
                return Err(format!("still {status} after {authorizations} authorizations").into());
            }
            authorizations += 1;
            let resource = ProtectedResource::from_challenge(&self.http, url, &headers).await?;
            let scope = match insufficient_scope(status, &headers) {
                Some(needed) => {
                    let union = scope_union(self.scope.as_deref(), &needed);
                    if self.scope.as_deref() == Some(union.as_str()) {
                        return Err(format!(
                            "insufficient_scope for {needed}, which was asked for already: \
                             the server will not grant it"
                        )
                        .into());
                    }
                    (self.say)(format!("insufficient_scope: asking again for {union}"));
                    Some(union)
                }
                None if status == 401 => self
                    .settings
                    .args
                    .scope
                    .clone()
                    .or_else(|| resource.scope()),
                None => return Err(format!("{} -> {status}", step.name()).into()),
            };
            self.authorize(&resource, scope).await?;
        }
    }

    /// Becomes a client of the resource's authorization server (once per
    /// issuer), gets a token for `scope` and keeps it.
    async fn authorize(
        &mut self,
        resource: &ProtectedResource,
        scope: Option<String>,
    ) -> Result<(), Failure> {
        let say = self.say;
        say(format!(
            "resource {} (metadata at {})",
            resource.resource(),
            resource.metadata_url
        ));
        let server = resource.authorization_server(&self.http).await?;
        say(format!("authorization server {}", server.issuer()));
        let client = match self.clients.get(server.issuer()) {
            Some(client) => client.clone(),
            None => {
                let client = self.registration(&server)?.register(&server).await?;
                say(format!(
                    "client {} ({:?})",
                    client.identity.client_id(),
                    client.method
                ));
                self.clients
                    .insert(server.issuer().to_owned(), client.clone());
                client
            }
        };
        let scope = with_offline_access(scope, &server);
        let resources = [resource.resource().to_owned()];
        let (tokens, asked) = if let Some(enterprise) = &self.settings.enterprise {
            let id_jag = self
                .id_jag(enterprise, &server, resource, scope.as_deref())
                .await?;
            let tokens = server
                .jwt_bearer(&client.identity, &id_jag, scope.as_deref(), &resources)
                .await?;
            (tokens, scope)
        } else if let Some(assertion) = &self.settings.assertion {
            let tokens = server
                .jwt_bearer(&client.identity, assertion, scope.as_deref(), &resources)
                .await?;
            (tokens, scope)
        } else if self.uses_client_credentials(&server, &client) {
            let tokens = server
                .client_credentials_for(&client.identity, scope.as_deref(), &resources)
                .await?;
            (tokens, scope)
        } else {
            self.authorization_code(&server, &client, resource, scope)
                .await?
        };
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
        let key = TokenKey::new(server.issuer(), resource.resource());
        let stored = StoredTokens::new(client.identity.client_id(), tokens, asked.as_deref(), now);
        self.store.save(&key, stored.clone())?;
        say(format!(
            "tokens for {} (scope {}, {})",
            resource.resource(),
            stored.scope.as_deref().unwrap_or("-"),
            stored.tokens.token_type
        ));
        self.token = Some(AccessToken::from_response(
            &stored.tokens,
            client.identity.dpop_key(),
        )?);
        self.scope = asked;
        Ok(())
    }

    /// Who this client is at `server`: what `--client-id` and
    /// `--client-metadata-url` say, and the metadata it pushes or
    /// registers otherwise; with a DPoP key where the server takes ES256
    /// proofs or `--dpop` asks for one.
    fn registration(&self, server: &AuthorizationServer) -> Result<ClientRegistration, Failure> {
        let args = &self.settings.args;
        let mut registration = ClientRegistration::new(json!({
            "client_name": "Ephemera mcp_login example",
            "redirect_uris": [self.loopback.redirect_uri()],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            // A loopback redirect URI: a native app (OpenID Connect
            // Registration §2, which MCP asks clients to send).
            "application_type": "native",
        }));
        if let Some(identity) = self.settings.pre_registered()? {
            registration = registration.pre_registered(identity);
        }
        if let Some(url) = &args.client_metadata_url {
            registration = registration.metadata_document(url);
        }
        if args.no_pushed_registration {
            registration = registration.without_pushed_registration();
        }
        let offers_dpop = server
            .metadata()
            .extra
            .get("dpop_signing_alg_values_supported")
            .and_then(Value::as_array)
            .is_some_and(|algs| algs.iter().any(|alg| alg == "ES256"));
        if args.dpop || offers_dpop {
            registration = registration.with_dpop(DpopKey::generate());
        }
        Ok(registration)
    }

    /// The user's ID token exchanged at the enterprise identity provider
    /// for an ID-JAG (RFC 8693; SEP-990) naming `server` as its audience
    /// and the MCP server as its resource, for the JWT bearer grant there.
    async fn id_jag(
        &self,
        enterprise: &Enterprise,
        server: &AuthorizationServer,
        resource: &ProtectedResource,
        scope: Option<&str>,
    ) -> Result<String, Failure> {
        let idp = AuthorizationServer::discover_with(self.http.clone(), &enterprise.issuer).await?;
        let request = TokenExchangeRequest::id_jag(
            &enterprise.id_token,
            server.issuer(),
            resource.resource(),
        )
        .maybe_scope(scope.map(str::to_owned));
        let exchanged = idp.token_exchange(&enterprise.identity, &request).await?;
        (self.say)(format!(
            "ID-JAG from {} for {}",
            idp.issuer(),
            server.issuer()
        ));
        Ok(exchanged.token_of_type(&TokenType::ID_JAG)?.to_owned())
    }

    /// `--client-credentials`, or a client with credentials of its own at
    /// a server whose only grant for it is `client_credentials`.
    fn uses_client_credentials(
        &self,
        server: &AuthorizationServer,
        client: &RegisteredClient,
    ) -> bool {
        let grants = &server.metadata().grant_types_supported;
        let only_client_credentials = grants.iter().any(|g| g == "client_credentials")
            && !grants.iter().any(|g| g == "authorization_code");
        let authenticates = client.identity.token_endpoint_auth_method() != "none";
        self.settings.args.client_credentials || (only_client_credentials && authenticates)
    }

    /// The authorization request, the user (through the printed URL, or
    /// none), the redirect back and the code exchange. Returns the tokens
    /// and the scope asked for.
    async fn authorization_code(
        &self,
        server: &AuthorizationServer,
        client: &RegisteredClient,
        resource: &ProtectedResource,
        scope: Option<String>,
    ) -> Result<(TokenResponse, Option<String>), Failure> {
        let request = AuthorizationRequest::new(self.loopback.redirect_uri())
            .maybe_scope(scope)
            .resource(resource.resource());
        let pending = server.begin(&client.identity, request).await?;
        let callback = if self.settings.args.without_user {
            pending.follow_redirects(&self.http).await?
        } else {
            (self.say)(format!("open {}", pending.authorization_url));
            let wait = Duration::from_secs(self.settings.args.timeout);
            tokio::time::timeout(wait, self.loopback.next_callback())
                .await
                .map_err(|_| "the browser did not come back in time")??
        };
        let code = pending.code(&callback)?;
        let tokens = server.exchange_code(&pending, &code).await?;
        Ok((tokens, pending.scope.clone()))
    }
}

impl Step {
    fn name(&self) -> &str {
        match self {
            Step::Initialize => "initialize",
            Step::Request(method, _) => method,
        }
    }
}

/// `scope` with `offline_access` added where the authorization server lists
/// it: this client asks for refresh tokens (its `grant_types` say so), and
/// MCP (SEP-2207) has clients ask for it then, and only then.
fn with_offline_access(scope: Option<String>, server: &AuthorizationServer) -> Option<String> {
    let offered = server
        .metadata()
        .scopes_supported
        .iter()
        .any(|s| s == "offline_access");
    match scope {
        Some(scope) if offered => Some(scope_union(Some(&scope), "offline_access")),
        other => other,
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match run(args, |line| println!("{line}")).await {
        Ok(_) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("mcp_login: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

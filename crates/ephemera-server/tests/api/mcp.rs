//! The official MCP TypeScript SDK (npm `@modelcontextprotocol/sdk`, pinned in
//! `tests/mcp/package.json`, installed by `.ci/run`) as the client, run by
//! Node from `tests/mcp/flow.mjs`. From the example resource server of
//! `ephemera-resource` alone, the SDK discovers this server (RFC 9728, then
//! RFC 8414), registers (a Client ID Metadata Document URL, or Dynamic Client
//! Registration, RFC 7591), runs the code flow with PKCE (RFC 7636) and
//! `resource` (RFC 8707), and calls the resource with the token. The script
//! fills in the login and consent forms where a user would.
//!
//! Without Node or the installed packages these tests say so and pass, except
//! on CI (`CI` set), where they fail: CI must run them.
//!
//! The example resource server, the metadata document's host and the
//! assertions on a flow are shared with `mcp_python.rs` (the Python SDK).

use std::path::PathBuf;
use std::time::Duration;

use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::helpers::*;
use crate::support::node;

/// Generous: the whole flow takes about a second.
pub(crate) const FLOW_TIMEOUT: Duration = Duration::from_secs(60);
/// The redirect_uri the script uses. Nothing listens there: the script reads
/// the code from the redirect's Location.
pub(crate) const MCP_REDIRECT: &str = "http://127.0.0.1:9999/callback";

/// The script's folder, when Node and the SDK are installed; `None` (test
/// skipped) when not, except on CI, where a missing SDK fails the test.
fn sdk_folder() -> Option<PathBuf> {
    node::folder(
        "mcp",
        "@modelcontextprotocol/sdk",
        "the MCP SDK end-to-end test",
    )
}

/// The example resource server (`protected_api.rs`) for `app`; returns its
/// base URL, which is also its RFC 9728 `resource`.
pub(crate) async fn example_resource_server(app: &TestApp) -> String {
    app.introspect("create the rs client").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let public = format!("http://{}", listener.local_addr().unwrap());
    let env = {
        let (issuer, public) = (app.base.clone(), public.clone());
        move |name: &str| match name {
            "EPHEMERA_RS_ISSUER" => Some(issuer.clone()),
            "EPHEMERA_RS_CLIENT_SECRET" => Some(RS_SECRET.to_owned()),
            "EPHEMERA_RS_PUBLIC_URL" => Some(public.clone()),
            _ => None,
        }
    };
    let (router, _) = crate::protected_api::build(env).await.unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    public
}

/// A client's metadata document served over https by a certificate the
/// authorization server is told to trust: its URL is the client_id.
pub(crate) struct MetadataDocument {
    pub url: String,
    /// Its host; `https.cert_path` goes into `metadata_documents.extra_roots`.
    pub https: HttpsServer,
}

/// Serves the metadata document of a public client named `client_name`
/// with one redirect URI, for the rest of the test.
pub(crate) async fn client_metadata_document(
    client_name: &str,
    redirect_uri: &str,
) -> MetadataDocument {
    let mut url = String::new();
    let https = HttpsServer::start(|base| {
        url = format!("{base}/client.json");
        let document = json!({
            "client_id": url,
            "client_name": client_name,
            "redirect_uris": [redirect_uri],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        });
        Router::new().route(
            "/client.json",
            get(move || {
                let document = document.clone();
                async move { Json(document) }
            }),
        )
    })
    .await;
    MetadataDocument { url, https }
}

/// What every run shows, whichever way the client registered: discovery from
/// the resource, PKCE and `resource` in the authorization request, both
/// pages filled in, and the resource accepting the token for itself.
fn assert_flow(app: &TestApp, resource: &str, out: &Value) {
    assert_flow_with_scopes(app, resource, out, json!(["read"]));
}

/// [`assert_flow`], the token carrying `scopes`.
pub(crate) fn assert_flow_with_scopes(app: &TestApp, resource: &str, out: &Value, scopes: Value) {
    assert_eq!(out["authorization_server"], app.base.as_str(), "{out}");
    assert_eq!(out["resource_metadata"]["resource"], resource, "{out}");
    let request = &out["authorization_request"];
    assert_eq!(request["endpoint"], app.url("/authorize").as_str());
    assert_eq!(request["response_type"], "code");
    assert_eq!(request["code_challenge_method"], "S256");
    assert_eq!(request["has_code_challenge"], true);
    assert_eq!(request["has_state"], true);
    assert_eq!(request["redirect_uri"], MCP_REDIRECT);
    assert_eq!(request["resource"], json!([resource]), "{out}");
    assert_eq!(request["client_id"], out["client_id"]);
    assert_eq!(out["pages"], json!(["login", "consent"]), "{out}");
    assert_eq!(out["token_type"], "Bearer");
    assert_eq!(out["resource_status"], 200);
    let whoami = &out["whoami"];
    assert_eq!(whoami["client_id"], out["client_id"], "{out}");
    assert_eq!(whoami["scopes"], scopes, "{out}");
    assert!(
        whoami["audiences"]
            .as_array()
            .is_some_and(|a| a.iter().any(|aud| aud == resource)),
        "the token's audiences must name the resource: {out}"
    );
}

#[tokio::test]
async fn the_mcp_sdk_discovers_registers_dynamically_and_calls_the_protected_resource() {
    let Some(dir) = sdk_folder() else { return };
    let app = TestApp::spawn().await;
    let resource = example_resource_server(&app).await;

    let out = node::run(
        &dir,
        "flow.mjs",
        &[
            ("RESOURCE_URL", &format!("{resource}/api/whoami")),
            ("LOGIN_USERNAME", "alice"),
            ("LOGIN_PASSWORD", PASSWORD),
            ("REGISTRATION", "dcr"),
            ("REDIRECT_URL", MCP_REDIRECT),
        ],
        FLOW_TIMEOUT,
    )
    .await;

    assert_flow(&app, &resource, &out);
    let client_id = out["client_id"].as_str().unwrap();
    assert!(
        app.ctx
            .store
            .find_client(client_id)
            .await
            .unwrap()
            .is_some(),
        "the SDK's client_id {client_id} was not registered here"
    );
    assert_eq!(out["whoami"]["client_kind"], "dynamic", "{out}");
    assert_eq!(app.stats().await.dynamic_clients, 1);
    assert_eq!(out["has_refresh_token"], true, "{out}");
}

#[tokio::test]
async fn the_mcp_sdk_uses_its_metadata_document_url_as_client_id_and_calls_the_protected_resource()
{
    let Some(dir) = sdk_folder() else { return };
    let document = client_metadata_document("MCP SDK end-to-end test", MCP_REDIRECT).await;
    let app = TestApp::spawn_with(|c| {
        c.metadata_documents.enabled = true;
        c.metadata_documents.allow_hosts = vec!["127.0.0.1".into()];
        c.metadata_documents.extra_roots = vec![document.https.cert_path.clone()];
    })
    .await;
    let resource = example_resource_server(&app).await;

    let out = node::run(
        &dir,
        "flow.mjs",
        &[
            ("RESOURCE_URL", &format!("{resource}/api/whoami")),
            ("LOGIN_USERNAME", "alice"),
            ("LOGIN_PASSWORD", PASSWORD),
            ("REGISTRATION", "cimd"),
            ("CLIENT_METADATA_URL", &document.url),
            ("REDIRECT_URL", MCP_REDIRECT),
        ],
        FLOW_TIMEOUT,
    )
    .await;

    assert_flow(&app, &resource, &out);
    assert_eq!(out["client_id"], document.url.as_str(), "{out}");
    assert_eq!(out["whoami"]["client_kind"], "metadata_document", "{out}");
    assert_eq!(
        app.stats().await.dynamic_clients,
        0,
        "the SDK registered instead of using its URL"
    );
}

#[tokio::test]
async fn the_mcp_sdk_completes_the_flow_against_a_server_with_no_scopes_configured() {
    // As a new user meets Ephemera: no scopes, so discovery advertises none
    // and the client registers with `"scope": ""` (as the MCP SDKs do then).
    let Some(dir) = sdk_folder() else { return };
    let app = TestApp::spawn_with(|c| {
        c.scopes.supported = Vec::new();
        c.scopes.pushed = None;
    })
    .await;
    let metadata: Value = app
        .http
        .get(app.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(metadata.get("scopes_supported").is_none(), "{metadata}");
    let resource = example_resource_server(&app).await;

    let out = node::run(
        &dir,
        "flow.mjs",
        &[
            ("RESOURCE_URL", &format!("{resource}/api/whoami")),
            ("LOGIN_USERNAME", "alice"),
            ("LOGIN_PASSWORD", PASSWORD),
            ("REGISTRATION", "dcr"),
            ("REDIRECT_URL", MCP_REDIRECT),
            ("CLIENT_SCOPE", "none"),
        ],
        FLOW_TIMEOUT,
    )
    .await;

    assert_flow_with_scopes(&app, &resource, &out, json!([]));
    assert_eq!(out["whoami"]["client_kind"], "dynamic", "{out}");
}

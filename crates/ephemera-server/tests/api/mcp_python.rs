//! The official MCP Python SDK (PyPI `mcp`, pinned with its dependencies in
//! `tests/mcp-python/requirements.txt`, installed in `tests/mcp-python/.venv`
//! by `.ci/run`) as the client, run from `tests/mcp-python/flow.py`. Its
//! `OAuthClientProvider`, the auth of an HTTP client, meets the 401 of the
//! example resource server of `ephemera-resource`, discovers this server
//! (RFC 9728, then RFC 8414), registers (Dynamic Client Registration, RFC
//! 7591, or a Client ID Metadata Document URL), runs the code flow with PKCE
//! (RFC 7636) and `resource` (RFC 8707), and repeats the request with the
//! token. The script fills in the login and consent forms where a user would.
//! The server, the resource server and the assertions are `mcp.rs`'s.
//!
//! Without the venv these tests say so and pass, except on CI (`CI` set),
//! where they fail: CI must run them.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::helpers::*;
use crate::mcp::{
    assert_flow_with_scopes, client_metadata_document, example_resource_server, FLOW_TIMEOUT,
    MCP_REDIRECT,
};
use crate::support::python;

/// The script's folder, when the venv has the pinned SDK; `None` (test
/// skipped) when not, except on CI, where a missing SDK fails the test.
fn sdk_folder() -> Option<PathBuf> {
    python::folder("mcp-python", "mcp", "the MCP Python SDK end-to-end test")
}

/// Runs `flow.py` against the resource at `resource` with `vars` added.
async fn run_flow(dir: &Path, resource: &str, vars: &[(&str, &str)]) -> Value {
    let url = format!("{resource}/api/whoami");
    let mut all = vec![
        ("RESOURCE_URL", url.as_str()),
        ("LOGIN_USERNAME", "alice"),
        ("LOGIN_PASSWORD", PASSWORD),
        ("REDIRECT_URL", MCP_REDIRECT),
    ];
    all.extend_from_slice(vars);
    python::run(dir, "flow.py", &all, FLOW_TIMEOUT).await
}

/// What the SDK sent, in order, as `METHOD URL STATUS`.
fn requests(out: &Value) -> Vec<String> {
    out["requests"]
        .as_array()
        .unwrap_or_else(|| panic!("no requests: {out}"))
        .iter()
        .map(|r| {
            format!(
                "{} {} {}",
                r["method"].as_str().unwrap(),
                r["url"].as_str().unwrap(),
                r["status"]
            )
        })
        .collect()
}

/// The SDK's own requests, in order: the 401, the resource's metadata at
/// the URL of the 401's `resource_metadata` (RFC 9728), this server's
/// metadata at its RFC 8414 URL, registration when it `registers`, the code
/// redeemed, and the request again with the token. And the redirect brought
/// back `code`, `state` and `iss` (RFC 9207), the last two checked by the SDK.
fn assert_sdk_steps(app: &TestApp, resource: &str, out: &Value, registers: bool) {
    assert_eq!(
        out["callback_parameters"],
        json!(["code", "iss", "state"]),
        "{out}"
    );
    assert_eq!(
        out["resource_metadata_url"],
        format!("{resource}/.well-known/oauth-protected-resource").as_str(),
        "{out}"
    );
    let mut expected = vec![
        format!("GET {resource}/api/whoami 401"),
        format!("GET {resource}/.well-known/oauth-protected-resource 200"),
        format!(
            "GET {} 200",
            app.url("/.well-known/oauth-authorization-server")
        ),
    ];
    if registers {
        expected.push(format!("POST {} 201", app.url("/register")));
    }
    expected.push(format!("POST {} 200", app.url("/token")));
    expected.push(format!("GET {resource}/api/whoami 200"));
    assert_eq!(requests(out), expected, "{out}");
}

/// A client registered here by the SDK: it is in the store, the token says
/// so, and it is the only one.
async fn assert_registered_dynamically(app: &TestApp, out: &Value) {
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
}

#[tokio::test]
async fn the_mcp_python_sdk_registers_dynamically_and_completes_the_flow_against_a_server_with_no_scopes_configured(
) {
    // As a new user meets Ephemera: no scopes. From an empty
    // scopes_supported the SDK makes the scope "" and registers with
    // `"scope": ""`, refused as malformed before 274ce10 (where this test
    // fails so); with scopes_supported left out it sends no scope at all.
    let Some(dir) = sdk_folder() else { return };
    let app = TestApp::spawn_with(|c| {
        c.scopes.supported = Vec::new();
        c.scopes.pushed = None;
    })
    .await;
    let resource = example_resource_server(&app).await;

    let out = run_flow(&dir, &resource, &[("REGISTRATION", "dcr")]).await;

    assert_flow_with_scopes(&app, &resource, &out, json!([]));
    assert_eq!(out["authorization_request"]["scope"], Value::Null, "{out}");
    assert!(
        out["whoami"]["client_metadata"].get("scope").is_none(),
        "the SDK registered with a scope: {out}"
    );
    assert_sdk_steps(&app, &resource, &out, true);
    assert_registered_dynamically(&app, &out).await;
    assert_eq!(out["has_refresh_token"], true, "{out}");
}

#[tokio::test]
async fn the_mcp_python_sdk_asks_for_every_published_scope_and_gets_those_open_to_it() {
    // The SDK asks for every scope in scopes_supported (its fallback when
    // neither the 401 nor the resource's metadata names one); `admin` is
    // closed to self-registered clients here (`scopes.pushed` is read and
    // write), so it registers and is granted the other two (RFC 7591
    // §3.2.1, RFC 6749 §3.3) instead of being refused.
    let Some(dir) = sdk_folder() else { return };
    let app = TestApp::spawn().await;
    let resource = example_resource_server(&app).await;

    let out = run_flow(&dir, &resource, &[("REGISTRATION", "dcr")]).await;

    assert_eq!(
        out["authorization_request"]["scope"], "admin read write",
        "{out}"
    );
    assert_eq!(
        out["whoami"]["client_metadata"]["scope"], "read write",
        "{out}"
    );
    assert_flow_with_scopes(&app, &resource, &out, json!(["read", "write"]));
    assert_sdk_steps(&app, &resource, &out, true);
    assert_registered_dynamically(&app, &out).await;
    assert_eq!(out["has_refresh_token"], true, "{out}");
}

#[tokio::test]
async fn the_mcp_python_sdk_uses_its_metadata_document_url_as_client_id_and_calls_the_protected_resource(
) {
    let Some(dir) = sdk_folder() else { return };
    let document = client_metadata_document("MCP Python SDK end-to-end test", MCP_REDIRECT).await;
    let app = TestApp::spawn_with(|c| {
        c.metadata_documents.enabled = true;
        c.metadata_documents.allow_hosts = vec!["127.0.0.1".into()];
        c.metadata_documents.extra_roots = vec![document.https.cert_path.clone()];
    })
    .await;
    let resource = example_resource_server(&app).await;

    let out = run_flow(
        &dir,
        &resource,
        &[
            ("REGISTRATION", "cimd"),
            ("CLIENT_METADATA_URL", &document.url),
        ],
    )
    .await;

    // It asked for every published scope; `admin` is closed to documents.
    assert_flow_with_scopes(&app, &resource, &out, json!(["read", "write"]));
    assert_sdk_steps(&app, &resource, &out, false);
    assert_eq!(out["client_id"], document.url.as_str(), "{out}");
    assert_eq!(out["whoami"]["client_kind"], "metadata_document", "{out}");
    assert_eq!(
        app.stats().await.dynamic_clients,
        0,
        "the SDK registered instead of using its URL"
    );
}

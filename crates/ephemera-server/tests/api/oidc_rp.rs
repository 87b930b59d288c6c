//! oauth4webapi (npm, pinned in `tests/oidc-rp/package.json`, installed by
//! `.ci/run`), a certified OpenID relying-party library no one here wrote,
//! as the client, run by Node from `tests/oidc-rp/flow.mjs`: OpenID
//! discovery, the code flow with PKCE, `state`, `nonce` and `max_age`,
//! `processAuthorizationCodeResponse` with its ID Token validation, the
//! signature checked against the `jwks_uri`, `processUserInfoResponse`, and
//! a refresh. The script fills in the login and consent forms where a user
//! would.
//!
//! Without Node or the installed package these tests say so and pass, except
//! on CI (`CI` set), where they fail.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::helpers::*;
use crate::support::node;

const FLOW_TIMEOUT: Duration = Duration::from_secs(60);
/// Nothing listens there: the script reads the code from the Location.
const RP_REDIRECT: &str = "http://127.0.0.1:9999/oidc-callback";

fn rp_folder() -> Option<PathBuf> {
    node::folder(
        "oidc-rp",
        "oauth4webapi",
        "the oauth4webapi relying-party test",
    )
}

async fn run(
    app: &TestApp,
    dir: &std::path::Path,
    client_id: &str,
    mode: &str,
    dpop: bool,
) -> Value {
    node::run(
        dir,
        "flow.mjs",
        &[
            ("ISSUER", app.base.as_str()),
            ("CLIENT_ID", client_id),
            ("REDIRECT_URL", RP_REDIRECT),
            ("LOGIN_USERNAME", "alice"),
            ("LOGIN_PASSWORD", PASSWORD),
            ("MODE", mode),
            ("DPOP", if dpop { "1" } else { "0" }),
        ],
        FLOW_TIMEOUT,
    )
    .await
}

#[tokio::test]
async fn oauth4webapi_signs_in_a_pre_registered_client_and_reads_userinfo() {
    let Some(dir) = rp_folder() else { return };
    let app = TestApp::spawn().await;
    let sub = alice_with_claims(&app).await;
    app.add_public_client("rp", &[RP_REDIRECT]).await;

    let out = run(&app, &dir, "rp", "front_channel", false).await;

    assert_eq!(out["discovered"]["issuer"], app.base.as_str(), "{out}");
    assert_eq!(out["discovered"]["userinfo_endpoint"], app.url("/userinfo"));
    assert_eq!(
        out["pages"],
        serde_json::json!(["login", "consent"]),
        "{out}"
    );
    assert_eq!(out["claims"]["sub"], sub.as_str(), "{out}");
    assert_eq!(out["claims"]["aud"], "rp", "{out}");
    assert_eq!(out["claims"]["name"], "Alice Liddell", "{out}");
    assert!(out["claims"]["nonce"].is_string(), "{out}");
    assert!(out["claims"]["auth_time"].is_number(), "{out}");
    assert_eq!(out["userinfo"]["sub"], sub.as_str(), "{out}");
    assert_eq!(out["userinfo"]["email"], "alice@example.com", "{out}");
    assert_eq!(out["other_subject_refused"], true, "{out}");
    assert_eq!(out["refreshed"]["sub"], sub.as_str(), "{out}");
    assert_eq!(
        out["refreshed"]["auth_time"], out["claims"]["auth_time"],
        "{out}"
    );
}

#[tokio::test]
async fn oauth4webapi_accepts_a_pushed_clients_id_token_and_its_dpop_bound_userinfo() {
    let Some(dir) = rp_folder() else { return };
    let app = TestApp::spawn().await;
    let sub = alice_with_claims(&app).await;

    let out = run(&app, &dir, URN, "pushed", true).await;

    assert_eq!(out["token_type"], "dpop", "{out}");
    assert_eq!(out["claims"]["sub"], sub.as_str(), "{out}");
    // The shared client_id, the grant beside it, and azp (docs/protocol.md).
    assert_eq!(out["claims"]["aud"][0], URN, "{out}");
    assert!(
        out["claims"]["aud"][1]
            .as_str()
            .is_some_and(|a| a.starts_with(&app.url("/grants/"))),
        "{out}"
    );
    assert_eq!(out["claims"]["azp"], URN, "{out}");
    assert_eq!(out["userinfo"]["name"], "Alice Liddell", "{out}");
    assert_eq!(out["other_subject_refused"], true, "{out}");
    assert_eq!(out["refreshed"]["aud"], out["claims"]["aud"], "{out}");
}

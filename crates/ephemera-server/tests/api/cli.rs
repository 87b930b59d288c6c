//! The `ephemera` command line, run as a process.

use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::support::binary::{self, text};

fn ephemera(dir: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    binary::run(binary::command(dir, args), stdin)
}

#[test]
fn the_cli_manages_users_and_clients_and_reports_stats() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = ephemera(d, &["migrate"], None);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        d.join("data/ephemera.db").exists(),
        "the default database is ./data/ephemera.db"
    );

    let out = ephemera(
        d,
        &["user", "add", "bob", "--password-stdin"],
        Some("a long password\n"),
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = ephemera(d, &["user", "list"], None);
    assert!(text(&out).contains("bob"));
    let out = ephemera(
        d,
        &["user", "add", "bob", "--password-stdin"],
        Some("a long password\n"),
    );
    assert!(!out.status.success());
    assert!(text(&out).contains("already exists"));

    let out = ephemera(
        d,
        &[
            "client",
            "add",
            "app",
            "--redirect-uri",
            "https://app.example/cb",
            "--scope",
            "read",
        ],
        None,
    );
    assert!(!out.status.success(), "scope must exist: {}", text(&out));
    let out = ephemera(
        d,
        &[
            "client",
            "add",
            "app",
            "--redirect-uri",
            "https://app.example/cb",
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = ephemera(
        d,
        &["client", "add", "rs", "--confidential", "--introspect"],
        None,
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("client_secret: "));
    let out = ephemera(
        d,
        &["client", "add", "svc", "--confidential", "--secret-stdin"],
        Some("0123456789abcdef0123456789abcdef-svc\n"),
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(!text(&out).contains("client_secret: "));
    let out = ephemera(d, &["client", "list"], None);
    let listed = text(&out);
    assert!(
        listed.contains("app")
            && listed.contains("rs\tconfidential introspect")
            && listed.contains("svc")
    );
    let out = ephemera(d, &["client", "delete", "app"], None);
    assert!(out.status.success());
    let out = ephemera(d, &["client", "delete", "app"], None);
    assert!(!out.status.success());

    // `migrate` creates no key; the first rotation makes one, the second retires it.
    for _ in 0..2 {
        let out = ephemera(d, &["keys", "rotate"], None);
        assert!(out.status.success(), "{}", text(&out));
    }
    let out = ephemera(d, &["keys", "list"], None);
    let listed = text(&out);
    assert_eq!(listed.matches("\tsigning").count(), 1, "{listed}");
    assert_eq!(listed.matches("\tretired").count(), 1, "{listed}");

    let out = ephemera(d, &["stats", "--json"], None);
    assert!(out.status.success());
    let stats: Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in [
        "pending_pushed_requests",
        "grants",
        "pushed_client_grants",
        "codes",
        "access_tokens",
        "refresh_tokens",
    ] {
        assert_eq!(stats[key], 0, "{key}");
    }
    assert_eq!(stats["registered_clients"], 2);
}

#[test]
fn the_cli_refuses_to_register_the_pushed_client_urn() {
    let dir = tempfile::tempdir().unwrap();
    let out = ephemera(
        dir.path(),
        &[
            "client",
            "add",
            "urn:ietf:oauth:parameters:dynamic",
            "--redirect-uri",
            "https://a.example/cb",
        ],
        None,
    );
    assert!(!out.status.success());
    assert!(text(&out).contains("reserved"));
}

const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

#[test]
fn the_cli_registers_the_grant_types_an_operator_names_and_refuses_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let add = |args: &[&str]| {
        let mut all = vec!["client", "add"];
        all.extend_from_slice(args);
        ephemera(d, &all, None)
    };
    let out = add(&[
        "svc",
        "--confidential",
        "--grant-type",
        "client_credentials",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let out = add(&["web", "--redirect-uri", "https://web.example/cb"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = add(&["mcp", "--confidential", "--grant-type", TOKEN_EXCHANGE]);
    assert!(out.status.success(), "{}", text(&out));
    let listed = text(&ephemera(d, &["client", "list"], None));
    assert!(
        listed.contains(&format!("mcp\tconfidential\t\t{TOKEN_EXCHANGE}\n")),
        "{listed}"
    );
    assert!(
        listed.contains("svc\tconfidential\t\tclient_credentials\n"),
        "{listed}"
    );
    assert!(
        listed.contains("web\tpublic\thttps://web.example/cb\tauthorization_code,refresh_token\n"),
        "{listed}"
    );

    for (args, says) in [
        (
            &[
                "a",
                "--redirect-uri",
                "https://a.example/cb",
                "--grant-type",
                "client_credentials",
            ][..],
            "needs a client that authenticates",
        ),
        (
            &["p", "--grant-type", TOKEN_EXCHANGE][..],
            "needs a client that authenticates",
        ),
        (
            &["b", "--confidential", "--grant-type", "implicit"][..],
            "is not one of",
        ),
        (
            &["c", "--confidential", "--grant-type", "refresh_token"][..],
            "goes with authorization_code",
        ),
        (
            &[
                "d",
                "--redirect-uri",
                "https://d.example/cb",
                "--grant-type",
                "urn:ietf:params:oauth:grant-type:jwt-bearer",
            ][..],
            "needs a client that authenticates",
        ),
    ] {
        let out = add(args);
        assert!(!out.status.success(), "{args:?}");
        assert!(text(&out).contains(says), "{args:?}: {}", text(&out));
    }
}

#[test]
fn bad_configuration_fails_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = ephemera(d, &["serve", "--listen", "not-an-address"], None);
    assert!(!out.status.success());
    assert!(text(&out).contains("listen"), "{}", text(&out));

    std::fs::write(
        d.join("bad.toml"),
        "issuer = \"https://as.example\"\nnonsense = 1\n",
    )
    .unwrap();
    let out = ephemera(d, &["--config", "bad.toml", "migrate"], None);
    assert!(!out.status.success());
    assert!(text(&out).contains("nonsense"), "{}", text(&out));

    let out = ephemera(d, &["--config", "missing.toml", "migrate"], None);
    assert!(!out.status.success());
    assert!(text(&out).contains("does not exist"));

    let out = binary::command(d, &["migrate"])
        .env("EPHEMERA_LIFETIMES__CODE", "9999")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(text(&out).contains("lifetimes.code"), "{}", text(&out));
}

/// A `[trusted_issuers.<name>]` mistake stops the start-up naming the
/// table, whether it came from the file or from `EPHEMERA_*` variables
/// (where a list is written as an array).
#[test]
fn a_bad_trusted_issuer_stops_the_start_up_with_its_table_named() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("keyless.toml"),
        "[trusted_issuers.acme]\nissuer = \"https://idp.acme.example\"\ngrants = [\"id-jag\"]\n",
    )
    .unwrap();
    let out = ephemera(d, &["--config", "keyless.toml", "migrate"], None);
    assert!(!out.status.success());
    let said = text(&out);
    assert!(
        said.contains("[trusted_issuers.acme]: no key source"),
        "{said}"
    );

    let out = binary::command(d, &["migrate"])
        .env(
            "EPHEMERA_TRUSTED_ISSUERS__ACME__ISSUER",
            "https://idp.acme.example",
        )
        .env(
            "EPHEMERA_TRUSTED_ISSUERS__ACME__JWKS_URI",
            "https://idp.acme.example/jwks",
        )
        .env(
            "EPHEMERA_TRUSTED_ISSUERS__ACME__GRANTS",
            "[\"id-jag\", \"saml\"]",
        )
        .output()
        .unwrap();
    assert!(!out.status.success());
    let said = text(&out);
    assert!(
        said.contains("[trusted_issuers.acme]: grant `saml`"),
        "{said}"
    );
}

/// A log filter that does not parse stops `serve` with the variable named,
/// rather than being replaced by the default in silence.
#[test]
fn a_bad_log_filter_stops_the_start_up() {
    let dir = tempfile::tempdir().unwrap();
    for (var, other) in [("EPHEMERA_LOG", "RUST_LOG"), ("RUST_LOG", "EPHEMERA_LOG")] {
        let out = binary::command(dir.path(), &["serve", "--listen", "127.0.0.1:0"])
            .env_remove(other)
            .env(var, "ephemera=[")
            .output()
            .unwrap();
        assert!(!out.status.success());
        let said = text(&out);
        assert!(
            said.contains(&format!("{var}=\"ephemera=[\" is not a log filter")),
            "{said}"
        );
    }
}

#[test]
fn the_config_file_and_database_flag_are_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("e.toml"),
        "database = \"sqlite://custom/x.db\"\n[scopes]\nsupported = [\"read\"]\n",
    )
    .unwrap();
    let out = ephemera(
        d,
        &[
            "--config",
            "e.toml",
            "client",
            "add",
            "app",
            "--redirect-uri",
            "https://a.example/cb",
            "--scope",
            "read",
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(d.join("custom/x.db").exists());
    let out = ephemera(d, &["--database", "sqlite://other.db", "migrate"], None);
    assert!(out.status.success());
    assert!(d.join("other.db").exists());
}

/// `ephemera serve` on a free port in `installation` until it answers.
async fn serve_until_ready(installation: &binary::Installation) -> binary::Serve {
    let listen = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let mut child = installation.serve(&listen, &[], &[], "serve.log");
    let http = reqwest::Client::new();
    installation
        .wait_until_answering(
            &http,
            &format!("http://{listen}/readyz"),
            std::time::Duration::from_secs(30),
            "serve.log",
            || child.exited(),
        )
        .await;
    child
}

#[tokio::test]
async fn a_first_start_creates_admin_only_where_local_passwords_are_on() {
    let sqlite = |dir: &Path| format!("sqlite://{}", dir.join("ephemera.db").display());
    let default = binary::Installation::new(sqlite, &[]);
    // Passwords off: people sign in through a provider (never reached here:
    // its discovery waits for the first sign-in).
    let upstream_only = binary::Installation::new(
        sqlite,
        &[
            ("EPHEMERA_LOGIN__PASSWORDS", "false"),
            ("EPHEMERA_UPSTREAM__CORP__KIND", "oidc"),
            (
                "EPHEMERA_UPSTREAM__CORP__ISSUER",
                "https://idp.corp.example",
            ),
            ("EPHEMERA_UPSTREAM__CORP__CLIENT_ID", "ephemera"),
            (
                "EPHEMERA_UPSTREAM__CORP__CLIENT_SECRET",
                "corp-secret-0123456789",
            ),
        ],
    );

    let first = serve_until_ready(&default).await;
    let second = serve_until_ready(&upstream_only).await;
    drop((first, second));

    let users = |i: &binary::Installation| text(&i.admin(&["user", "list"], None));
    assert!(
        users(&default).starts_with("admin\t"),
        "{}",
        users(&default)
    );
    assert_eq!(
        users(&upstream_only),
        "",
        "no password account with passwords off"
    );
}

#[tokio::test]
async fn user_add_stores_the_name_and_email_it_is_given() {
    let app = crate::helpers::TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--database",
        app.config.database.as_str(),
        "user",
        "add",
        "carol",
        "--password-stdin",
        "--full-name",
        "Carol Quinn",
        "--email",
        "carol@example.com",
    ];

    let out = ephemera(dir.path(), &args, Some("a long password\n"));

    assert!(out.status.success(), "{}", text(&out));
    let carol = app
        .ctx
        .store
        .find_user_by_name("carol")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(carol.claims.name.as_deref(), Some("Carol Quinn"));
    assert_eq!(carol.claims.email.as_deref(), Some("carol@example.com"));
    assert_eq!(carol.claims.email_verified, Some(true));
    assert!(carol.password_hash.is_some());
}

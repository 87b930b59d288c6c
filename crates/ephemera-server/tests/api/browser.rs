//! Hostile client metadata on the login and consent pages, in a real
//! browser: Debian's headless Chromium (`/usr/bin/chromium`) driven by
//! `playwright-core` (pinned in `tests/browser/package.json`, installed by
//! `.ci/run`) from `tests/browser/check.mjs`. A pushed client and a
//! dynamically registered one describe themselves with markup, script, a
//! bidi override, a long unbroken name and URLs built to break out of an
//! attribute; the script logs in through the real form, stops at the consent
//! page and reports what the browser did; the assertions are here.
//!
//! What the server refuses at registration (`javascript:` and `data:` URLs,
//! names over the length limit) is asserted over HTTP, without a browser.
//!
//! The account page gets the same treatment: a browser approves a pushed
//! client with a hostile name, another signs in on `/account` as narrow as a
//! phone (360 px), reads the grant, and ends it with the page's button; the
//! token is then inactive.
//!
//! And with passwords off and an upstream provider (the fake of
//! `support/fake_oidc.rs`) configured, a browser signs in only through the
//! provider's button, approves a pushed client, and, in the same session,
//! ends the grant on `/account` at 360 px (`tests/browser/upstream.mjs`); the
//! user is the provider's, the ID Token's `amr` the provider's, and the
//! token is then inactive.
//!
//! Without Node, Chromium or the installed package the browser tests say so
//! and pass, except on CI (`CI` set), where they fail: CI must run them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ephemera_server::secret::SecretHash;
use serde_json::{json, Value};
use url::Url;

use crate::helpers::*;
use crate::keys::TestKey;
use crate::support::fake_oidc::{Fake, CLIENT_ID};
use crate::support::{self, node};

const CHROMIUM: &str = "/usr/bin/chromium";
/// Generous: three logins and pages take a few seconds.
const CHECK_TIMEOUT: Duration = Duration::from_secs(120);
/// The viewport width of the screenshot.
const SCREENSHOT_WIDTH: u32 = 720;
/// What the hostile script and event handlers would set, were they run.
const FLAG: &str = "__ephemeraPwned";
const RLO: char = '\u{202E}';
/// The test the skip message names.
const CHECK: &str = "the headless Chromium check of the consent page";

/// The script's folder, when Chromium, Node and playwright-core are there;
/// `None` (test skipped) when not, except on CI, where that fails the test.
fn browser_folder() -> Option<PathBuf> {
    if !Path::new(CHROMIUM).exists() {
        let why = format!("{CHROMIUM} is missing (apt-get install chromium)");
        support::skip(CHECK, &why);
        return None;
    }
    node::folder("browser", "playwright-core", CHECK)
}

/// A name with markup that would run script, show an image and fire a
/// dialog if it were parsed, then a right-to-left override before a file
/// name that would read reversed (`exe.txt` shown as `txt.exe`).
fn markup_name() -> String {
    format!("<script>window.{FLAG}=1</script><img src=x onerror=alert(1)>{RLO}txt.exe")
}

/// URLs that are http(s) (so registration takes them) but try to close the
/// attribute they would be put in and add markup or a handler.
fn breakout_url(n: u32) -> String {
    format!("https://evil.example/{n}\"><script>window.{FLAG}='uri{n}'</script><img src=x onerror=alert({n})>")
}

/// The pushed client's registration: every self-asserted field hostile.
fn hostile_registration(name: &str) -> String {
    json!({
        "client_name": name,
        "redirect_uris": [REDIRECT],
        "token_endpoint_auth_method": "none",
        "client_uri": breakout_url(1),
        "logo_uri": breakout_url(2),
        "policy_uri": breakout_url(3),
        "tos_uri": breakout_url(4),
    })
    .to_string()
}

#[tokio::test]
async fn javascript_and_data_urls_and_overlong_names_are_refused_at_registration() {
    let app = TestApp::spawn().await;
    let mut cases = Vec::new();
    for field in ["client_uri", "logo_uri", "policy_uri", "tos_uri"] {
        for url in [
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+",
        ] {
            cases.push(json!({ field: url }));
        }
    }
    cases.push(json!({ "client_name": "W".repeat(5000) }));
    for case in cases {
        let mut metadata = json!({
            "client_name": "Agent",
            "redirect_uris": [REDIRECT],
            "token_endpoint_auth_method": "none",
        });
        for (k, v) in case.as_object().unwrap() {
            metadata[k] = v.clone();
        }
        // Pushed Client Registration, in the PAR.
        let res = app.push(Some(&metadata.to_string()), &[], &[]).await;
        let description = assert_error(res, 400, "invalid_client_metadata").await;
        let field = case.as_object().unwrap().keys().next().unwrap();
        assert!(
            description.contains(field.as_str()),
            "{case}: {description}"
        );
        // Dynamic Client Registration (RFC 7591 §3.2.2).
        let res = app
            .http
            .post(app.url("/register"))
            .json(&metadata)
            .send()
            .await
            .unwrap();
        assert_error(res, 400, "invalid_client_metadata").await;
    }
    let stats = app.stats().await;
    assert_eq!(stats.pending_pushed_requests, 0, "nothing pushed was kept");
    assert_eq!(stats.dynamic_clients, 0, "nothing was registered");
}

/// What the browser did with one client's pages (see `check.mjs`).
struct Seen<'a> {
    label: &'a str,
    report: &'a Value,
}

impl Seen<'_> {
    /// The checks every page must pass, whatever the client said.
    fn assert_inert(&self, page: &str) {
        let (label, facts) = (self.label, &self.report[page]);
        let at = format!("{label}, {page} page");
        assert_eq!(facts["pwned"], Value::Null, "{at}: metadata script ran");
        // Only the elements the templates write: nothing from the metadata.
        let allowed = [
            "html", "head", "meta", "title", "link", "body", "main", "h1", "bdi", "span", "p",
            "strong", "ul", "li", "form", "input", "label", "div", "button", "a",
        ];
        for element in facts["elements"].as_array().unwrap() {
            let element = element.as_str().unwrap();
            assert!(
                allowed.contains(&element),
                "{at}: a <{element}> element is on the page"
            );
        }
        for attribute in facts["attributes"].as_array().unwrap() {
            let name = attribute["name"].as_str().unwrap();
            let value = attribute["value"].as_str().unwrap().trim().to_lowercase();
            assert!(
                !name.starts_with("on"),
                "{at}: an event handler attribute: {attribute}"
            );
            assert!(
                !value.starts_with("javascript:") && !value.starts_with("data:"),
                "{at}: a script or data URL: {attribute}"
            );
            assert!(
                !value.contains("evil.example"),
                "{at}: a metadata URL in an attribute: {attribute}"
            );
            // The only links are the templates' own: the stylesheet and the
            // account page.
            if name == "href" {
                assert!(
                    ["/assets/ephemera.css", "/account"].contains(&value.as_str()),
                    "{at}: a link the templates do not write: {attribute}"
                );
            }
        }
        // The name, and the page's text, carry no bidi override, and the name
        // is isolated from the text around it (<bdi>, HTML §4.5.24).
        assert_eq!(facts["name_element"], "bdi", "{at}: {facts}");
        assert_eq!(facts["name_unicode_bidi"], "isolate", "{at}");
        assert!(
            !facts["text"].as_str().unwrap().contains(RLO),
            "{at}: a U+202E reached the page"
        );
        // Nothing widens the page beyond the viewport, phone or desktop.
        for w in facts["widths"].as_array().unwrap() {
            assert!(
                w["scroll_width"].as_u64().unwrap() <= w["viewport"].as_u64().unwrap(),
                "{at}: the page is wider than the viewport: {w}"
            );
        }
    }

    /// The name shown, as text.
    fn name(&self, page: &str) -> &str {
        self.report[page]["name_text"].as_str().unwrap()
    }

    /// No dialog, no console message, no page error, and no request but to
    /// the server's pages and stylesheet, for the whole visit.
    fn assert_quiet(&self, app: &TestApp) {
        let label = self.label;
        for what in ["dialogs", "page_errors"] {
            assert_eq!(self.report[what], json!([]), "{label}: {what}");
        }
        // Chromium asks for /favicon.ico on its own; Ephemera has none (404).
        for message in self.report["console"].as_array().unwrap() {
            let favicon = message["url"]
                .as_str()
                .is_some_and(|u| u == format!("{}/favicon.ico", app.base));
            assert!(favicon, "{label}: console: {message}");
        }
        for url in self.report["requests"].as_array().unwrap() {
            let url = url.as_str().unwrap();
            let path = url.strip_prefix(&app.base).unwrap_or(url);
            assert!(
                path.starts_with("/authorize")
                    || path == "/assets/ephemera.css"
                    || path == "/favicon.ico",
                "{label}: the page requested {url}"
            );
        }
    }
}

#[tokio::test]
async fn the_login_and_consent_pages_render_hostile_client_metadata_inert_in_chromium() {
    let Some(dir) = browser_folder() else { return };
    let app = TestApp::spawn().await;
    // 1. A pushed client: markup and a bidi override in the name, breakout URLs.
    let markup = markup_name();
    let markup_uri = app.push_ok(Some(&hostile_registration(&markup)), &[]).await;
    // 2. A pushed client with the longest name registration takes, unbroken.
    let long = "W".repeat(1000);
    let long_uri = app.push_ok(Some(&hostile_registration(&long)), &[]).await;
    // 3. A dynamically registered client (RFC 7591) with markup of its own.
    let dcr_name =
        format!("<svg onload=alert(5)></svg><a href=\"javascript:alert(6)\">home</a>{RLO}");
    let mut metadata: Value = serde_json::from_str(&hostile_registration(&dcr_name)).unwrap();
    metadata["grant_types"] = json!(["authorization_code"]);
    let res = app
        .http
        .post(app.url("/register"))
        .json(&metadata)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "{:?}", res.text().await);
    let registered: Value = res.json().await.unwrap();
    let dcr_id = registered["client_id"].as_str().unwrap().to_owned();
    let res = app
        .post_form(
            "/par",
            &[
                ("client_id", &dcr_id),
                ("response_type", "code"),
                ("redirect_uri", REDIRECT),
                ("state", "s"),
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "S256"),
            ],
        )
        .await;
    assert_eq!(res.status(), 201, "{:?}", res.text().await);
    let dcr_uri = res.json::<Value>().await.unwrap()["request_uri"]
        .as_str()
        .unwrap()
        .to_owned();

    let clients = json!([
        {"label": "pushed, markup", "authorize_url": app.authorize_url(URN, &markup_uri)},
        {"label": "pushed, long name", "authorize_url": app.authorize_url(URN, &long_uri)},
        {"label": "registered, markup", "authorize_url": app.authorize_url(&dcr_id, &dcr_uri)},
    ]);
    let screenshot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("consent-hostile-metadata.png");
    let _ = std::fs::remove_file(&screenshot);
    let report = node::run(
        &dir,
        "check.mjs",
        &[
            ("CHROMIUM", CHROMIUM),
            ("CLIENTS", &clients.to_string()),
            ("LOGIN_USERNAME", "alice"),
            ("LOGIN_PASSWORD", PASSWORD),
            ("SCREENSHOT", screenshot.to_str().unwrap()),
            ("SCREENSHOT_WIDTH", &SCREENSHOT_WIDTH.to_string()),
        ],
        CHECK_TIMEOUT,
    )
    .await;

    let report = report.as_array().unwrap();
    assert_eq!(report.len(), 3, "{report:?}");
    let seen: Vec<Seen> = report
        .iter()
        .map(|r| Seen {
            label: r["label"].as_str().unwrap(),
            report: r,
        })
        .collect();
    for s in &seen {
        assert_eq!(s.report["login_status"], 200, "{}", s.label);
        assert_eq!(s.report["login"]["kind"], "login", "{}", s.label);
        assert_eq!(s.report["consent"]["kind"], "consent", "{}", s.label);
        s.assert_inert("login");
        s.assert_inert("consent");
        s.assert_quiet(&app);
    }
    // The markup is shown as the text it is, without the override.
    let shown: String = markup.chars().filter(|c| *c != RLO).collect();
    for page in ["login", "consent"] {
        assert_eq!(seen[0].name(page), shown, "{page}");
        assert_eq!(seen[2].name(page), dcr_name.trim_end_matches(RLO), "{page}");
        // Shortened for display, and still text.
        let long_shown = seen[1].name(page);
        assert!(
            !long_shown.is_empty() && long.starts_with(long_shown.trim_end_matches('…')),
            "{page}: {long_shown}"
        );
    }
    // The breakout URL is on the page as text, never as a link.
    let text = seen[0].report["consent"]["text"].as_str().unwrap();
    assert!(
        text.contains("https://evil.example/1\"><script>"),
        "client_uri shown as text: {text}"
    );
    let png = std::fs::read(&screenshot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG"),
        "no screenshot at {}",
        screenshot.display()
    );
    eprintln!("consent page screenshot: {}", screenshot.display());
}

#[tokio::test]
async fn the_account_page_lists_a_grant_readably_at_360_px_and_ends_it_in_chromium() {
    let Some(dir) = browser_folder() else { return };
    let app = TestApp::spawn_with(|c| c.resources = vec!["https://api.example/".into()]).await;
    // A pushed client with markup and a long unbroken run in its name, bound
    // at PAR to a DPoP key; the proof of the token request is made here.
    let name = format!("{}{}", markup_name(), "W".repeat(500));
    let key = TestKey::new();
    let request_uri = app
        .push_ok(
            Some(&hostile_registration(&name)),
            &[
                ("dpop_jkt", key.jkt.as_str()),
                ("resource", "https://api.example/"),
            ],
        )
        .await;
    let account = json!({
        "authorize_url": app.authorize_url(URN, &request_uri),
        "redirect_uri": REDIRECT,
        "token_url": app.url("/token"),
        "token_form": {
            "grant_type": "authorization_code",
            "redirect_uri": REDIRECT,
            "code_verifier": VERIFIER,
            "client_id": URN,
        },
        "token_headers": {"DPoP": key.proof(&app.url("/token"), app.now())},
        "account_url": app.url("/account"),
    });
    let screenshot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("account-360px.png");
    let before = app.now();
    let _ = std::fs::remove_file(&screenshot);
    let report = node::run(
        &dir,
        "check.mjs",
        &[
            ("CHROMIUM", CHROMIUM),
            ("CLIENTS", "[]"),
            ("ACCOUNT", &account.to_string()),
            ("LOGIN_USERNAME", "alice"),
            ("LOGIN_PASSWORD", PASSWORD),
            ("SCREENSHOT", screenshot.to_str().unwrap()),
            ("SCREENSHOT_WIDTH", "360"),
        ],
        CHECK_TIMEOUT,
    )
    .await;

    let seen = &report.as_array().unwrap()[0];
    assert_eq!(seen["label"], "account");
    assert_eq!(seen["token_status"], 200, "{}", seen["tokens"]);
    // Bound to the key of the PAR (the script has ended it by now: it is
    // introspected below).
    assert_eq!(seen["tokens"]["token_type"], "DPoP");
    let access_token = seen["tokens"]["access_token"].as_str().unwrap();
    assert_eq!(seen["sign_in_status"], 200);

    // Readable on a phone: nothing reaches past 360 px.
    let page = &seen["account"];
    assert_eq!(page["inner_width"], 360);
    assert!(
        page["scroll_width"].as_u64().unwrap() <= 360,
        "the account page is wider than the phone: {}",
        page["scroll_width"]
    );
    assert!(
        page["widest"].as_f64().unwrap() <= 360.0,
        "an element reaches past 360 px: {}",
        page["widest"]
    );
    // The metadata is inert here too: no script ran, no element or link of its own.
    assert_eq!(page["pwned"], Value::Null);
    let allowed = [
        "html", "head", "meta", "title", "link", "body", "main", "h1", "bdi", "span", "p",
        "strong", "ul", "li", "form", "input", "label", "div", "button", "dl", "dt", "dd",
    ];
    for element in page["elements"].as_array().unwrap() {
        let element = element.as_str().unwrap();
        assert!(
            allowed.contains(&element),
            "a <{element}> on the account page"
        );
    }
    for attribute in page["attributes"].as_array().unwrap() {
        let (name, value) = (
            attribute["name"].as_str().unwrap(),
            attribute["value"].as_str().unwrap(),
        );
        assert!(!name.starts_with("on"), "{attribute}");
        assert!(!value.contains("evil.example"), "{attribute}");
        if name == "href" {
            assert_eq!(value, "/assets/ephemera.css", "{attribute}");
        }
    }
    assert!(!page["text"].as_str().unwrap().contains(RLO));

    // The grant, with its fields.
    let grants = page["grants"].as_array().unwrap();
    assert_eq!(grants.len(), 1, "{grants:?}");
    let grant = &grants[0];
    assert!(!grant["id"].as_str().unwrap().is_empty());
    let shown = grant["name"].as_str().unwrap();
    assert!(
        shown.starts_with("<script>window.__ephemeraPwned=1</script>") && shown.ends_with('…'),
        "the name, as text and shortened: {shown}"
    );
    let fields = &grant["fields"];
    let field = |f: &str| fields[f].as_str().unwrap_or_default().to_owned();
    assert!(field("model").starts_with("pushed"), "{fields}");
    assert!(field("origin").contains("not verified"), "{fields}");
    assert_eq!(field("redirect"), "127.0.0.1:9999");
    assert_eq!(field("key"), format!("DPoP key {}", key.jkt));
    assert_eq!(field("resources"), "https://api.example/");
    // The minute of the flow (the server's clock is the wall clock).
    let minutes = [before, app.now()].map(ephemera_server::service::grants::utc);
    for f in ["granted", "last-active"] {
        assert!(minutes.contains(&field(f)), "{f}: {fields}");
    }
    assert!(fields.get("scopes").is_some(), "{fields}");

    // Ended with the page's button: the page says so, and the token is dead.
    let after = &seen["after"];
    assert_eq!(after["ended"], true, "{after}");
    assert_eq!(after["none_left"], true);
    assert_eq!(after["grants"], json!([]));
    assert_eq!(app.introspect(access_token).await, json!({"active": false}));
    assert_eq!(app.stats().await.pushed_client_grants, 0);

    // Only the account pages and the stylesheet were asked for.
    for what in ["dialogs", "page_errors"] {
        assert_eq!(seen[what], json!([]), "{what}");
    }
    for url in seen["requests"].as_array().unwrap() {
        let url = url.as_str().unwrap();
        let path = url.strip_prefix(&app.base).unwrap_or(url);
        assert!(
            path.starts_with("/account")
                || path == "/assets/ephemera.css"
                || path == "/favicon.ico",
            "the account page requested {url}"
        );
    }
    let png = std::fs::read(&screenshot).unwrap();
    assert!(png.starts_with(b"\x89PNG"));
    eprintln!("account page screenshot: {}", screenshot.display());
}

/// Runs one step of `upstream.mjs` with the browser's cookies in `state`.
async fn upstream_step(dir: &Path, state: &Path, step: &str, vars: &[(&str, &str)]) -> Value {
    let mut all = vec![
        ("CHROMIUM", CHROMIUM),
        ("STEP", step),
        ("STATE", state.to_str().unwrap()),
    ];
    all.extend_from_slice(vars);
    let seen = node::run(dir, "upstream.mjs", &all, CHECK_TIMEOUT).await;
    for what in ["dialogs", "page_errors"] {
        assert_eq!(seen[what], json!([]), "{step}: {what}");
    }
    seen
}

#[tokio::test]
async fn with_passwords_off_a_person_signs_in_upstream_approves_and_ends_the_grant_in_chromium() {
    let Some(dir) = browser_folder() else { return };
    let fake = Fake::start().await;
    let app = TestApp::spawn_with(|raw| {
        raw.upstream.insert("corp".into(), fake.oidc());
        raw.login.passwords = false;
    })
    .await;
    // A pushed client asking for an ID Token, bound at PAR to a DPoP key.
    let key = TestKey::new();
    let nonce = "n-upstream-chromium";
    let request_uri = app
        .push_ok(
            Some(&registration()),
            &[
                ("dpop_jkt", key.jkt.as_str()),
                ("scope", "openid profile read"),
                ("nonce", nonce),
            ],
        )
        .await;
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state.json");
    let screenshot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("account-upstream-360px.png");
    let _ = std::fs::remove_file(&screenshot);

    // 1. The login page, the provider and back, the consent page, approved.
    let authorize_url = app.authorize_url(URN, &request_uri);
    let seen = upstream_step(
        &dir,
        &state,
        "approve",
        &[
            ("AUTHORIZE_URL", &authorize_url),
            ("PROVIDER", "corp"),
            ("REDIRECT_URI", REDIRECT),
        ],
    )
    .await;
    let login = &seen["login"];
    assert_eq!(seen["login_status"], 200);
    assert_eq!(login["password_inputs"], 0, "a password field: {login}");
    assert_eq!(login["username_inputs"], 0, "a username field: {login}");
    assert_eq!(login["forms"], json!(["/login/upstream/corp"]), "{login}");
    assert_eq!(
        login["buttons"],
        json!([{"id": "upstream-corp", "text": "Continue with Corp"}])
    );
    assert_eq!(seen["consent"]["kind"], "consent");
    assert_eq!(seen["consent"]["name_text"], "Test Agent");
    assert_eq!(seen["consent"]["url"], authorize_url.as_str());
    // The browser went to the provider and came back through the callback
    // to the same request, with nothing between.
    let navigations: Vec<&str> = seen["navigations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    let callback = app.url("/login/upstream/corp/callback");
    let expected = [
        format!("GET {authorize_url}"),
        format!("POST {}", app.url("/login/upstream/corp")),
        format!("GET {}/authorize?", fake.issuer),
        format!("GET {callback}?"),
        format!("GET {authorize_url}"),
        format!("POST {}", app.url("/authorize/consent")),
        format!("GET {REDIRECT}?"),
    ];
    assert_eq!(navigations.len(), expected.len(), "{navigations:#?}");
    for (n, e) in navigations.iter().zip(&expected) {
        assert!(
            n == e || (e.ends_with('?') && n.starts_with(e.as_str())),
            "{e} expected: {navigations:#?}"
        );
    }
    let asked = fake.authorized.lock().unwrap().clone();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(query(&asked[0], "client_id").as_deref(), Some(CLIENT_ID));
    assert_eq!(query(&asked[0], "redirect_uri"), Some(callback));
    for url in seen["requests"].as_array().unwrap() {
        let url = url.as_str().unwrap();
        assert!(
            url.starts_with(&app.base)
                || url.starts_with(&fake.issuer)
                || url.starts_with(REDIRECT),
            "the browser requested {url}"
        );
    }

    // 2. The client redeems the code, with a proof of its key.
    let to = Url::parse(seen["redirect"].as_str().unwrap()).unwrap();
    assert_eq!(query(&to, "state").as_deref(), Some("state-123"));
    let res = app
        .http
        .post(app.url("/token"))
        .header("DPoP", key.proof(&app.url("/token"), app.now()))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &query(&to, "code").unwrap()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("client_id", URN),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{:?}", res.text().await);
    let tokens: Value = res.json().await.unwrap();
    assert_eq!(tokens["token_type"], "DPoP");
    let access_token = tokens["access_token"].as_str().unwrap();
    // The person is the one the provider named: a user it created, without
    // a password, signed in by the provider's methods (not `pwd`).
    let user = app
        .ctx
        .store
        .find_upstream_user(&fake.issuer, "u-248289761001")
        .await
        .unwrap()
        .expect("the provider's user");
    assert_eq!(user.username, "ada");
    assert_eq!(user.password_hash, None);
    let info = app.introspect(access_token).await;
    assert_eq!(info["active"], true);
    assert_eq!(info["username"], "ada");
    let id_token = crate::oidc::verified(&app, tokens["id_token"].as_str().unwrap(), URN).await;
    assert_eq!(id_token["sub"], user.id.to_string());
    assert_eq!(id_token["nonce"], nonce);
    assert_eq!(id_token["preferred_username"], "ada");
    assert_eq!(id_token["amr"], json!(["hwk"]), "the provider's, not pwd");
    let cookies: Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    let cookie = cookies["cookies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "ephemera")
        .expect("the session cookie");
    let session = app
        .ctx
        .store
        .find_session(
            &SecretHash::of(cookie["value"].as_str().unwrap()),
            app.now(),
        )
        .await
        .unwrap()
        .expect("the browser's session");
    assert_eq!(session.username, "ada");
    assert_eq!(session.sign_in.provider.as_deref(), Some("corp"));

    // 3. The same browser session on the account page at 360 px: the grant,
    // readable, then ended with "End all".
    let seen = upstream_step(
        &dir,
        &state,
        "account",
        &[
            ("ACCOUNT_URL", &app.url("/account")),
            ("SCREENSHOT", screenshot.to_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(seen["status"], 200);
    let page = &seen["account"];
    assert_eq!(page["heading"], "Applications with access to ada");
    assert_eq!(page["password_inputs"], 0);
    assert_eq!(page["inner_width"], 360);
    assert!(page["scroll_width"].as_u64().unwrap() <= 360, "{page}");
    assert!(page["widest"].as_f64().unwrap() <= 360.0, "{page}");
    let grants = page["grants"].as_array().unwrap();
    assert_eq!(grants.len(), 1, "{grants:?}");
    assert_eq!(grants[0]["name"], "Test Agent");
    let fields = &grants[0]["fields"];
    let field = |f: &str| fields[f].as_str().unwrap_or_default().to_owned();
    assert!(field("model").starts_with("pushed"), "{fields}");
    assert_eq!(field("redirect"), "127.0.0.1:9999");
    assert_eq!(field("key"), format!("DPoP key {}", key.jkt));
    for scope in ["openid", "profile", "read"] {
        assert!(field("scopes").contains(scope), "{fields}");
    }
    let after = &seen["after"];
    assert_eq!(after["ended"], true, "{after}");
    assert_eq!(after["none_left"], true);
    assert_eq!(app.introspect(access_token).await, json!({"active": false}));
    assert_eq!(app.stats().await.pushed_client_grants, 0);
    for url in seen["requests"].as_array().unwrap() {
        let path = url.as_str().unwrap().strip_prefix(&app.base).unwrap_or("?");
        assert!(
            path.starts_with("/account")
                || path == "/assets/ephemera.css"
                || path == "/favicon.ico",
            "the account page requested {url}"
        );
    }
    assert!(std::fs::read(&screenshot).unwrap().starts_with(b"\x89PNG"));
    eprintln!("account page screenshot: {}", screenshot.display());
}

//! Signing in through an upstream identity provider, over real HTTP:
//! node-oidc-provider (an independent OpenID Connect implementation, from
//! `tests/oidc-provider/`), a second Ephemera (an OpenID provider itself),
//! a GitHub-shaped OAuth 2 provider, and a fake OpenID Connect provider
//! (`support/fake_oidc.rs`, its own P-256 key) for the ID Tokens no real
//! provider would send: wrong `iss`, wrong `nonce`, expired, signed by
//! another key; plus `state` mismatches, replays, the provider's error
//! responses and a provider that is down.

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Child, ChildStdin, Command, Stdio};

use ephemera_server::config::upstream::{RawClaims, RawProvider};
use ephemera_server::config::RawConfig;
use ephemera_server::secret::SecretHash;
use serde_json::{json, Value};
use url::Url;

use crate::helpers::{alice_with_claims, csrf, location, query, registration, TestApp, URN};
use crate::keys::TestKey;
use crate::support::fake_oidc::{fake_info, Fake, CLIENT_ID};

/// A server with these upstream providers.
async fn app_with(
    providers: Vec<(&str, RawProvider)>,
    adjust: impl FnOnce(&mut RawConfig),
) -> TestApp {
    TestApp::spawn_with(|raw| {
        for (name, p) in providers {
            raw.upstream.insert(name.to_owned(), p);
        }
        adjust(raw);
    })
    .await
}

/// A pushed request, its login page opened in `browser`; returns the
/// request_uri and the page.
async fn login_page(app: &TestApp, browser: &reqwest::Client) -> (String, String) {
    let request_uri = app.push_ok(Some(&registration()), &[]).await;
    let page = browser
        .get(app.authorize_url(URN, &request_uri))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    (request_uri, page.text().await.unwrap())
}

/// Clicks "Continue with …" on the login page: the provider's authorization URL.
async fn continue_with(
    app: &TestApp,
    browser: &reqwest::Client,
    provider: &str,
    request_uri: &str,
    html: &str,
) -> Url {
    let res = browser
        .post(app.url(&format!("/login/upstream/{provider}")))
        .form(&[
            ("client_id", URN),
            ("request_uri", request_uri),
            ("csrf", &csrf(html)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "{:?}", res.text().await);
    location(&res)
}

/// The provider's answer at the callback the authorization request named.
async fn answer(
    browser: &reqwest::Client,
    auth: &Url,
    params: &[(&str, &str)],
) -> reqwest::Response {
    let mut callback = Url::parse(&query(auth, "redirect_uri").unwrap()).unwrap();
    callback.query_pairs_mut().extend_pairs(params);
    browser.get(callback).send().await.unwrap()
}

/// The session a sign-in's response set.
async fn session_of(app: &TestApp, res: &reqwest::Response) -> ephemera_server::model::Session {
    let cookie = res.headers()["set-cookie"].to_str().unwrap();
    let value = cookie.split(';').next().unwrap().split_once('=').unwrap().1;
    app.ctx
        .store
        .find_session(&SecretHash::of(value), app.now())
        .await
        .unwrap()
        .expect("a session")
}

async fn users(app: &TestApp) -> Vec<String> {
    app.ctx
        .store
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.username)
        .collect()
}

#[tokio::test]
async fn a_person_signs_in_through_the_fake_oidc_provider_and_the_pushed_client_gets_its_code() {
    let fake = Fake::start().await;
    let app = app_with(vec![("corp", fake.oidc())], |_| {}).await;
    let browser = app.browser();

    let (request_uri, html) = login_page(&app, &browser).await;
    assert!(html.contains("Continue with Corp"), "{html}");
    let auth = continue_with(&app, &browser, "corp", &request_uri, &html).await;
    assert!(auth
        .as_str()
        .starts_with(&format!("{}/authorize?", fake.issuer)));
    assert_eq!(
        query(&auth, "code_challenge_method").as_deref(),
        Some("S256")
    );
    assert_eq!(
        query(&auth, "scope").as_deref(),
        Some("openid profile email")
    );
    assert_eq!(
        query(&auth, "redirect_uri"),
        Some(app.url("/login/upstream/corp/callback"))
    );
    let id_token = fake.sign(&fake.claims(&auth, app.now()));
    let code = fake.issue(
        &auth,
        Some(id_token),
        json!({"sub": "u-248289761001", "locale": "en-GB"}),
    );
    let state = query(&auth, "state").unwrap();
    let back = answer(
        &browser,
        &auth,
        &[("code", &code), ("state", &state), ("iss", &fake.issuer)],
    )
    .await;

    assert_eq!(back.status(), 302, "{:?}", back.text().await);
    assert_eq!(
        location(&back).as_str(),
        app.authorize_url(URN, &request_uri)
    );
    let session = session_of(&app, &back).await;
    assert_eq!(session.username, "ada");
    assert_eq!(session.sign_in.amr, vec!["hwk".to_owned()]);
    assert_eq!(session.sign_in.acr.as_deref(), Some("urn:example:loa:3"));
    assert_eq!(session.sign_in.provider.as_deref(), Some("corp"));
    let user = app
        .ctx
        .store
        .find_upstream_user(&fake.issuer, "u-248289761001")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.password_hash, None);
    assert_eq!(user.claims.name.as_deref(), Some("Ada Lovelace"));
    assert_eq!(
        user.claims.locale.as_deref(),
        Some("en-GB"),
        "userinfo adds what the ID Token left out"
    );
    // The discovery document allows only client_secret_post.
    assert_eq!(*fake.auth_seen.lock().unwrap(), vec!["client_secret_post"]);
    // The pending request survived the round trip: consent, code, tokens.
    let to = app.decide(&browser, URN, &request_uri, "approve").await;
    let code = query(&to, "code").unwrap();
    let res = app.redeem(&code, &[]).await;
    assert_eq!(res.status(), 200);
    let tokens: Value = res.json().await.unwrap();
    let info = app
        .introspect(tokens["access_token"].as_str().unwrap())
        .await;
    assert_eq!(info["username"], "ada");
}

#[tokio::test]
async fn a_github_shaped_provider_signs_in_by_userinfo_keyed_by_its_numeric_id() {
    let fake = Fake::start().await;
    let app = app_with(vec![("github", fake.github())], |_| {}).await;
    for name in ["Octo Cat", "The Octocat"] {
        let browser = app.browser();
        let (request_uri, html) = login_page(&app, &browser).await;
        let auth = continue_with(&app, &browser, "github", &request_uri, &html).await;
        assert_eq!(
            query(&auth, "nonce"),
            None,
            "no nonce without OpenID Connect"
        );
        assert_eq!(query(&auth, "scope").as_deref(), Some("read:user"));
        let code = fake.issue(
            &auth,
            None,
            json!({"id": 583231, "login": "octocat", "name": name}),
        );
        let state = query(&auth, "state").unwrap();
        let back = answer(&browser, &auth, &[("code", &code), ("state", &state)]).await;
        assert_eq!(back.status(), 302, "{:?}", back.text().await);
        assert_eq!(
            session_of(&app, &back).await.sign_in.amr,
            vec!["fed".to_owned()]
        );
    }

    // The same identity both times: one user, its name brought up to date.
    let user = app
        .ctx
        .store
        .find_upstream_user("https://github.com", "583231")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.username, "octocat");
    assert_eq!(user.claims.name.as_deref(), Some("The Octocat"));
    assert_eq!(users(&app).await, vec!["alice", "octocat"]);
    assert_eq!(
        *fake.auth_seen.lock().unwrap(),
        vec!["client_secret_basic"; 2]
    );
}

#[tokio::test]
async fn every_bad_id_token_is_refused_with_its_reason_and_no_user_is_stored() {
    let fake = Fake::start().await;
    let other_key = TestKey::new();
    let app = app_with(vec![("corp", fake.oidc())], |_| {}).await;
    type Spoil = Box<dyn Fn(&Fake, &mut Value) -> Option<String>>;
    let cases: Vec<(&str, Spoil)> = vec![
        (
            "`nonce` is not the one sent",
            Box::new(|_, c| {
                c["nonce"] = json!("another");
                None
            }),
        ),
        (
            "was issued by `https://evil.example`",
            Box::new(|_, c| {
                c["iss"] = json!("https://evil.example");
                None
            }),
        ),
        (
            "the ID Token has expired",
            Box::new(|_, c| {
                c["exp"] = json!(c["iat"].as_i64().unwrap() - 600);
                None
            }),
        ),
        (
            "`aud` does not name its client_id",
            Box::new(|_, c| {
                c["aud"] = json!("someone-else");
                None
            }),
        ),
        (
            "signature does not verify",
            Box::new(move |f, c| Some(other_key.sign(json!({"kid": f.key.jkt}), c))),
        ),
    ];
    for (reason, spoil) in cases {
        let browser = app.browser();
        let (request_uri, html) = login_page(&app, &browser).await;
        let auth = continue_with(&app, &browser, "corp", &request_uri, &html).await;
        let mut claims = fake.claims(&auth, app.now());
        let id_token = spoil(&fake, &mut claims).unwrap_or_else(|| fake.sign(&claims));
        let code = fake.issue(&auth, Some(id_token), fake_info());
        let state = query(&auth, "state").unwrap();

        let back = answer(
            &browser,
            &auth,
            &[("code", &code), ("state", &state), ("iss", &fake.issuer)],
        )
        .await;

        assert_eq!(back.status(), 400, "{reason}");
        assert!(
            back.headers().get("set-cookie").is_none(),
            "{reason}: a session"
        );
        let page = back.text().await.unwrap();
        assert!(
            page.contains("signing in through Corp failed"),
            "{reason}: {page}"
        );
        assert!(page.contains(reason), "{reason}: {page}");
        assert_eq!(
            users(&app).await,
            vec!["alice"],
            "{reason}: a user was stored"
        );
    }
}

#[tokio::test]
async fn a_wrong_iss_in_the_answer_an_unknown_state_and_a_replay_are_refused() {
    let fake = Fake::start().await;
    let app = app_with(vec![("corp", fake.oidc())], |_| {}).await;
    let browser = app.browser();
    let (request_uri, html) = login_page(&app, &browser).await;

    // RFC 9207: the provider says it sends `iss`; another one's is refused.
    let auth = continue_with(&app, &browser, "corp", &request_uri, &html).await;
    let state = query(&auth, "state").unwrap();
    let code = fake.issue(
        &auth,
        Some(fake.sign(&fake.claims(&auth, app.now()))),
        fake_info(),
    );
    let wrong = answer(
        &browser,
        &auth,
        &[
            ("code", &code),
            ("state", &state),
            ("iss", "https://evil.example"),
        ],
    )
    .await;
    assert_eq!(wrong.status(), 400);
    assert!(wrong
        .text()
        .await
        .unwrap()
        .contains("`iss` is not the provider"));
    // The sign-in was used up by the refused answer.
    let again = answer(
        &browser,
        &auth,
        &[("code", &code), ("state", &state), ("iss", &fake.issuer)],
    )
    .await;
    assert!(again
        .text()
        .await
        .unwrap()
        .contains("the `state` matches no sign-in in progress"));
    // Missing `iss` where the provider says it always sends it.
    let auth = continue_with(&app, &browser, "corp", &request_uri, &html).await;
    let state = query(&auth, "state").unwrap();
    let missing = answer(&browser, &auth, &[("code", "x"), ("state", &state)]).await;
    assert!(missing.text().await.unwrap().contains("has no `iss`"));

    // A good answer, then the same answer replayed.
    let auth = continue_with(&app, &browser, "corp", &request_uri, &html).await;
    let state = query(&auth, "state").unwrap();
    let code = fake.issue(
        &auth,
        Some(fake.sign(&fake.claims(&auth, app.now()))),
        fake_info(),
    );
    let params = [
        ("code", code.as_str()),
        ("state", state.as_str()),
        ("iss", fake.issuer.as_str()),
    ];
    let good = answer(&browser, &auth, &params).await;
    assert_eq!(good.status(), 302, "{:?}", good.text().await);
    let replay = answer(&browser, &auth, &params).await;
    assert_eq!(replay.status(), 400);
    assert!(replay.headers().get("set-cookie").is_none());
    // A made-up state.
    let made_up = answer(
        &browser,
        &auth,
        &[("code", "x"), ("state", "made-up"), ("iss", &fake.issuer)],
    )
    .await;
    assert!(made_up
        .text()
        .await
        .unwrap()
        .contains("matches no sign-in in progress"));
}

#[tokio::test]
async fn an_answer_in_another_browser_or_at_another_providers_callback_is_refused() {
    let fake = Fake::start().await;
    let app = app_with(
        vec![("corp", fake.oidc()), ("github", fake.github())],
        |_| {},
    )
    .await;
    let browser = app.browser();
    let (request_uri, html) = login_page(&app, &browser).await;

    let auth = continue_with(&app, &browser, "corp", &request_uri, &html).await;
    let state = query(&auth, "state").unwrap();
    let code = fake.issue(
        &auth,
        Some(fake.sign(&fake.claims(&auth, app.now()))),
        fake_info(),
    );
    let elsewhere = answer(
        &app.browser(),
        &auth,
        &[("code", &code), ("state", &state), ("iss", &fake.issuer)],
    )
    .await;
    assert_eq!(elsewhere.status(), 400);
    assert!(elsewhere
        .text()
        .await
        .unwrap()
        .contains("started in another browser"));

    // Mix-up: corp's answer brought to github's callback.
    let auth = continue_with(&app, &browser, "corp", &request_uri, &html).await;
    let state = query(&auth, "state").unwrap();
    let res = browser
        .get(app.url(&format!(
            "/login/upstream/github/callback?code=x&state={state}"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("callback than the one the sign-in went to"));
    assert_eq!(users(&app).await, vec!["alice"]);
}

#[tokio::test]
async fn the_providers_access_denied_reaches_the_client_and_other_errors_are_shown() {
    let fake = Fake::start().await;
    let app = app_with(vec![("corp", fake.oidc())], |_| {}).await;
    let browser = app.browser();
    let (request_uri, html) = login_page(&app, &browser).await;

    let auth = continue_with(&app, &browser, "corp", &request_uri, &html).await;
    let state = query(&auth, "state").unwrap();
    let failed = answer(
        &browser,
        &auth,
        &[
            ("error", "temporarily_unavailable"),
            ("state", &state),
            ("iss", &fake.issuer),
        ],
    )
    .await;
    assert_eq!(failed.status(), 400);
    assert!(failed
        .text()
        .await
        .unwrap()
        .contains("Corp did not sign you in: temporarily_unavailable"));

    let auth = continue_with(&app, &browser, "corp", &request_uri, &html).await;
    let state = query(&auth, "state").unwrap();
    let denied = answer(
        &browser,
        &auth,
        &[
            ("error", "access_denied"),
            ("state", &state),
            ("iss", &fake.issuer),
        ],
    )
    .await;
    assert_eq!(denied.status(), 302);
    let to = location(&denied);
    assert!(to.as_str().starts_with(crate::helpers::REDIRECT));
    assert_eq!(query(&to, "error").as_deref(), Some("access_denied"));
    assert_eq!(query(&to, "state").as_deref(), Some("state-123"));
    assert_eq!(query(&to, "iss"), Some(app.base.clone()));
}

#[tokio::test]
async fn a_provider_that_is_down_gives_a_clear_page_and_does_not_stop_the_server() {
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let down = RawProvider {
        label: Some("Corp".into()),
        kind: "oidc".into(),
        issuer: Some(issuer),
        client_id: CLIENT_ID.into(),
        ..RawProvider::default()
    };
    let app = app_with(vec![("corp", down)], |_| {}).await;
    let browser = app.browser();
    let (request_uri, html) = login_page(&app, &browser).await;

    let res = browser
        .post(app.url("/login/upstream/corp"))
        .form(&[
            ("client_id", URN),
            ("request_uri", request_uri.as_str()),
            ("csrf", &csrf(&html)),
        ])
        .send()
        .await
        .unwrap();

    assert_eq!(res.status(), 503);
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("Corp is not answering right now"));
    // Nothing was stored for it, and the password form still works.
    assert_eq!(app.stats().await.sessions, 0);
    app.login(&browser, URN, &request_uri).await;
}

#[tokio::test]
async fn with_passwords_off_the_form_is_gone_and_a_password_post_is_refused() {
    let fake = Fake::start().await;
    let app = app_with(vec![("corp", fake.oidc())], |raw| {
        raw.login.passwords = false
    })
    .await;
    let browser = app.browser();
    let (request_uri, html) = login_page(&app, &browser).await;
    assert!(!html.contains("name=\"password\""), "{html}");
    assert!(html.contains("Continue with Corp"));

    let res = browser
        .post(app.url("/authorize/login"))
        .form(&[
            ("client_id", URN),
            ("request_uri", request_uri.as_str()),
            ("csrf", &csrf(&html)),
            ("username", "alice"),
            ("password", crate::helpers::PASSWORD),
        ])
        .send()
        .await
        .unwrap();

    assert_eq!(res.status(), 400);
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("signing in with a password is turned off"));
    let account = browser
        .get(app.url("/account"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!account.contains("name=\"password\"") && account.contains("Continue with Corp"));
}

#[tokio::test]
async fn the_account_page_signs_in_through_a_provider_and_comes_back_to_the_account() {
    let fake = Fake::start().await;
    let app = app_with(vec![("github", fake.github())], |_| {}).await;
    let browser = app.browser();
    let html = browser
        .get(app.url("/account"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Continue with GitHub"), "{html}");

    let res = browser
        .post(app.url("/login/upstream/github"))
        .form(&[("return", "account"), ("csrf", &csrf(&html))])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let auth = location(&res);
    let code = fake.issue(&auth, None, json!({"id": 1, "login": "octocat"}));
    let back = answer(
        &browser,
        &auth,
        &[("code", &code), ("state", &query(&auth, "state").unwrap())],
    )
    .await;

    assert_eq!(back.status(), 302);
    assert_eq!(location(&back).as_str(), app.url("/account"));
    let page = browser
        .get(app.url("/account"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("octocat"), "{page}");
}

#[tokio::test]
async fn a_taken_username_gets_a_suffix_unless_the_operator_links_existing_users() {
    let fake = Fake::start().await;
    let linked = RawProvider {
        link_existing: true,
        ..fake.github()
    };
    let separate = RawProvider {
        issuer: Some("https://separate.example".into()),
        claims: RawClaims {
            username: Some("login".into()),
            ..RawClaims::default()
        },
        ..fake.github()
    };
    let app = app_with(vec![("linked", linked), ("separate", separate)], |_| {}).await;
    let alice = app
        .ctx
        .store
        .find_user_by_name("alice")
        .await
        .unwrap()
        .unwrap();

    for (provider, expected) in [("separate", "alice-2"), ("linked", "alice")] {
        let browser = app.browser();
        let (request_uri, html) = login_page(&app, &browser).await;
        let auth = continue_with(&app, &browser, provider, &request_uri, &html).await;
        let code = fake.issue(
            &auth,
            None,
            json!({"id": 7, "login": "alice", "email": "alice@example.com"}),
        );
        let back = answer(
            &browser,
            &auth,
            &[("code", &code), ("state", &query(&auth, "state").unwrap())],
        )
        .await;
        assert_eq!(back.status(), 302);
        assert_eq!(session_of(&app, &back).await.username, expected);
    }
    let linked_user = app
        .ctx
        .store
        .find_upstream_user("https://github.com", "7")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(linked_user.id, alice.id);
    assert!(
        linked_user.password_hash.is_some(),
        "the local password stays"
    );
}

/// node-oidc-provider, started by `tests/oidc-provider/provider.mjs`:
/// stopped when dropped.
struct NodeProvider {
    issuer: String,
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Drop for NodeProvider {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl NodeProvider {
    fn start(dir: &std::path::Path) -> Self {
        let mut child = Command::new("node")
            .arg("provider.mjs")
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines
            .next()
            .expect("the provider printed its issuer")
            .unwrap();
        let issuer = serde_json::from_str::<Value>(&first).unwrap()["issuer"]
            .as_str()
            .unwrap()
            .to_owned();
        // The rest of its output is read and dropped: a closed pipe would
        // end it at its next write.
        std::thread::spawn(move || lines.for_each(drop));
        Self {
            issuer,
            child,
            stdin,
        }
    }

    /// Gives the provider its client's redirect URI; it serves from then on.
    fn serve(&mut self, redirect_uri: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{redirect_uri}").unwrap();
        stdin.flush().unwrap();
    }
}

#[tokio::test]
async fn a_person_signs_in_through_node_oidc_provider_and_a_pushed_client_gets_its_tokens() {
    let Some(dir) = crate::support::node::folder(
        "oidc-provider",
        "oidc-provider",
        "the node-oidc-provider sign-in test",
    ) else {
        return;
    };
    let mut provider = tokio::task::spawn_blocking(move || NodeProvider::start(&dir))
        .await
        .unwrap();
    let upstream = RawProvider {
        label: Some("Node".into()),
        kind: "oidc".into(),
        issuer: Some(provider.issuer.clone()),
        client_id: "ephemera".into(),
        client_secret_env: Some("UPSTREAM_TEST_NODE_OIDC_SECRET".into()),
        ..RawProvider::default()
    };
    // The secret from the environment, as an operator would give it.
    std::env::set_var(
        "UPSTREAM_TEST_NODE_OIDC_SECRET",
        "ephemera-upstream-secret-0123456789abcdef",
    );
    let app = app_with(vec![("node", upstream)], |_| {}).await;
    provider.serve(&app.url("/login/upstream/node/callback"));
    let browser = app.browser();
    let (request_uri, html) = login_page(&app, &browser).await;

    // The browser follows every redirect through the provider (its login
    // and consent complete at once) back to Ephemera's callback.
    let mut next = continue_with(&app, &browser, "node", &request_uri, &html).await;
    let callback = loop {
        assert!(
            next.as_str().starts_with(&provider.issuer),
            "left the provider: {next}"
        );
        let res = browser.get(next.clone()).send().await.unwrap();
        assert!(
            res.status().is_redirection(),
            "{}: {:?}",
            res.status(),
            res.text().await
        );
        // node-oidc-provider's own redirects are relative.
        let to = next
            .join(res.headers()["location"].to_str().unwrap())
            .unwrap();
        if to.as_str().starts_with(&app.base) {
            break to;
        }
        next = to;
    };
    assert_eq!(
        query(&callback, "iss"),
        Some(provider.issuer.clone()),
        "RFC 9207"
    );
    let back = browser.get(callback).send().await.unwrap();

    assert_eq!(back.status(), 302, "{:?}", back.text().await);
    assert_eq!(
        location(&back).as_str(),
        app.authorize_url(URN, &request_uri)
    );
    let session = session_of(&app, &back).await;
    assert_eq!(session.username, "grace");
    assert_eq!(
        session.sign_in.amr,
        vec!["pwd".to_owned(), "otp".to_owned()]
    );
    assert_eq!(session.sign_in.acr.as_deref(), Some("urn:example:loa:2"));
    let user = app
        .ctx
        .store
        .find_upstream_user(&provider.issuer, "grace-0001")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.claims.name.as_deref(), Some("Grace Hopper"));
    assert_eq!(user.claims.email.as_deref(), Some("grace@example.com"));
    assert_eq!(user.claims.email_verified, Some(true));
    let to = app.decide(&browser, URN, &request_uri, "approve").await;
    let res = app.redeem(&query(&to, "code").unwrap(), &[]).await;
    assert_eq!(res.status(), 200);
    let tokens: Value = res.json().await.unwrap();
    let info = app
        .introspect(tokens["access_token"].as_str().unwrap())
        .await;
    assert_eq!(info["active"], true);
    assert_eq!(info["username"], "grace");
}

#[tokio::test]
async fn a_person_signs_in_through_a_second_ephemera_as_an_openid_provider() {
    // The upstream Ephemera: alice (password) with a name and an email, and
    // a confidential client for the downstream one, allowed the identity
    // scopes. Each site has its own cookie jar, as two hosts would.
    let upstream = TestApp::spawn().await;
    let alice = alice_with_claims(&upstream).await;
    let secret = "downstream-secret-0123456789abcdefghijklmnop";
    let provider = RawProvider {
        label: Some("Upstream Ephemera".into()),
        kind: "oidc".into(),
        issuer: Some(upstream.base.clone()),
        client_id: "downstream".into(),
        client_secret: Some(secret.into()),
        ..RawProvider::default()
    };
    // Passwords off downstream: only the upstream sign-in is offered.
    let app = app_with(vec![("corp", provider)], |raw| raw.login.passwords = false).await;
    upstream
        .add_client(ephemera_server::service::admin::NewClient {
            client_id: "downstream".into(),
            redirect_uris: vec![app.url("/login/upstream/corp/callback")],
            scopes: vec!["openid".into(), "profile".into(), "email".into()],
            confidential: true,
            secret: Some(secret.into()),
            ..Default::default()
        })
        .await;
    let browser = app.browser();
    let at_upstream = upstream.browser();
    let (request_uri, html) = login_page(&app, &browser).await;
    assert!(!html.contains("name=\"password\""), "{html}");

    let auth = continue_with(&app, &browser, "corp", &request_uri, &html).await;
    assert!(
        auth.as_str()
            .starts_with(&format!("{}/authorize?", upstream.base)),
        "{auth}"
    );
    assert_eq!(query(&auth, "client_id").as_deref(), Some("downstream"));
    assert_eq!(
        query(&auth, "code_challenge_method").as_deref(),
        Some("S256")
    );
    assert!(query(&auth, "nonce").is_some(), "{auth}");
    // The upstream Ephemera stores the front-channel request and sends the
    // browser to it by request_uri; alice signs in there and approves.
    let stored = at_upstream.get(auth.clone()).send().await.unwrap();
    let page = if stored.status().is_redirection() {
        location(&stored)
    } else {
        auth.clone()
    };
    let upstream_request = query(&page, "request_uri").expect("a request_uri at the upstream");
    upstream
        .login(&at_upstream, "downstream", &upstream_request)
        .await;
    let callback = upstream
        .decide(&at_upstream, "downstream", &upstream_request, "approve")
        .await;
    assert!(
        callback
            .as_str()
            .starts_with(&app.url("/login/upstream/corp/callback")),
        "{callback}"
    );
    assert_eq!(query(&callback, "iss"), Some(upstream.base.clone()));
    let back = browser.get(callback).send().await.unwrap();

    assert_eq!(back.status(), 302, "{:?}", back.text().await);
    assert_eq!(
        location(&back).as_str(),
        app.authorize_url(URN, &request_uri)
    );
    let session = session_of(&app, &back).await;
    assert_eq!(session.sign_in.provider.as_deref(), Some("corp"));
    assert_eq!(
        session.sign_in.amr,
        vec!["pwd".to_owned()],
        "the upstream's amr"
    );
    let user = app
        .ctx
        .store
        .find_upstream_user(&upstream.base, &alice)
        .await
        .unwrap()
        .expect("the user keyed by the upstream's issuer and alice's id there");
    assert_eq!(user.password_hash, None);
    assert_eq!(user.claims.name.as_deref(), Some("Alice Liddell"));
    assert_eq!(user.claims.email.as_deref(), Some("alice@example.com"));
    let to = app.decide(&browser, URN, &request_uri, "approve").await;
    let res = app.redeem(&query(&to, "code").unwrap(), &[]).await;
    assert_eq!(res.status(), 200);
    let tokens: Value = res.json().await.unwrap();
    let info = app
        .introspect(tokens["access_token"].as_str().unwrap())
        .await;
    assert_eq!(info["active"], true);
    assert_eq!(info["sub"], user.id.as_str());
}

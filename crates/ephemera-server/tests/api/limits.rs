//! Per-address rate limits (`[limits]`) and per-username login throttling:
//! each refusal is 429 with `Retry-After` in its endpoint family's shape, and
//! stores nothing.

use crate::helpers::*;

/// `Retry-After` in seconds, checked to be `expected` (or a second less: the
/// test's clock is the wall clock, which may tick between two requests).
fn assert_retry_after(res: &reqwest::Response, expected: i64) {
    let seconds: i64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (expected - 1..=expected).contains(&seconds),
        "Retry-After {seconds}, expected {expected}"
    );
}

async fn assert_rate_limited_json(res: reqwest::Response, retry_after: i64) {
    assert_eq!(res.status(), 429);
    assert_retry_after(&res, retry_after);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("this address"));
}

#[tokio::test]
async fn a_push_beyond_the_per_address_limit_gets_429_and_stores_nothing() {
    let app = TestApp::spawn_with(|c| c.limits.par_per_minute = 2).await;
    app.push_ok(Some(&registration()), &[]).await;
    app.advance(20);
    app.push_ok(Some(&registration()), &[]).await;

    let res = app.push(Some(&registration()), &[], &[]).await;

    // The window opened with the first push, 20 s ago.
    assert_rate_limited_json(res, 40).await;
    assert_eq!(app.stats().await.pending_pushed_requests, 2);
}

#[tokio::test]
async fn pushes_are_accepted_again_when_the_window_ends() {
    let app = TestApp::spawn_with(|c| c.limits.par_per_minute = 1).await;
    app.push_ok(Some(&registration()), &[]).await;
    assert_eq!(
        app.push(Some(&registration()), &[], &[]).await.status(),
        429
    );

    app.advance(60);

    app.push_ok(Some(&registration()), &[]).await;
}

#[tokio::test]
async fn token_requests_beyond_the_per_address_limit_get_429() {
    let app = TestApp::spawn_with(|c| c.limits.token_per_minute = 2).await;
    for _ in 0..2 {
        let res = app
            .post_form("/token", &[("grant_type", "client_credentials")])
            .await;
        assert_eq!(res.status(), 401, "counted, then refused as usual");
    }

    let res = app
        .post_form("/token", &[("grant_type", "client_credentials")])
        .await;

    assert_rate_limited_json(res, 60).await;
}

#[tokio::test]
async fn a_limit_set_to_zero_is_off() {
    let app = TestApp::spawn_with(|c| c.limits.token_per_minute = 0).await;
    for _ in 0..30 {
        let res = app
            .post_form("/token", &[("grant_type", "client_credentials")])
            .await;
        assert_eq!(res.status(), 401);
    }
}

#[tokio::test]
async fn login_posts_beyond_the_per_address_limit_get_a_429_page() {
    let app = TestApp::spawn_with(|c| c.limits.login_per_minute = 1).await;
    let browser = app.browser();
    let res = browser
        .post(app.url("/authorize/login"))
        .form(&[("username", "alice")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400, "no CSRF token: refused as usual");

    let res = browser
        .post(app.url("/authorize/login"))
        .form(&[("username", "alice")])
        .send()
        .await
        .unwrap();

    assert_eq!(res.status(), 429);
    assert_retry_after(&res, 60);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = res.text().await.unwrap();
    assert!(
        html.contains("Too many login attempts from this address"),
        "{html}"
    );
}

/// Posts the login form of a fresh pushed request as `username`.
async fn try_login(app: &TestApp, username: &str, password: &str) -> reqwest::Response {
    let request_uri = app.push_ok(Some(&registration()), &[]).await;
    let browser = app.browser();
    let page = browser
        .get(app.authorize_url(URN, &request_uri))
        .send()
        .await
        .unwrap();
    let html = page.text().await.unwrap();
    browser
        .post(app.url("/authorize/login"))
        .form(&[
            ("client_id", URN),
            ("request_uri", request_uri.as_str()),
            ("csrf", &csrf(&html)),
            ("username", username),
            ("password", password),
        ])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_username_with_too_many_failures_is_refused_the_same_way_whether_or_not_it_exists() {
    let app = TestApp::spawn_with(|c| {
        c.limits.login_failures = 2;
        c.limits.login_failure_window = 300;
    })
    .await;
    for name in ["alice", "nobody"] {
        for _ in 0..2 {
            let res = try_login(&app, name, "wrong").await;
            assert_eq!(res.status(), 401, "the login page again");
            assert!(res
                .text()
                .await
                .unwrap()
                .contains("Wrong username or password."));
        }
    }

    // Even the right password is refused for alice now, like any password
    // for the unknown user: the same status, header and page.
    let known = try_login(&app, "alice", PASSWORD).await;
    let unknown = try_login(&app, "nobody", PASSWORD).await;

    for res in [&known, &unknown] {
        assert_eq!(res.status(), 429);
        // alice's window opened first, a little earlier than nobody's.
        let seconds: i64 = res.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((290..=300).contains(&seconds), "{seconds}");
        assert!(res.headers().get("set-cookie").is_none(), "no session");
    }
    let (known, unknown) = (known.text().await.unwrap(), unknown.text().await.unwrap());
    // The pages differ only in the seconds to wait, if at all.
    let digits = |s: &str| s.replace(|c: char| c.is_ascii_digit(), "");
    assert_eq!(digits(&known), digits(&unknown));
    assert!(known.contains("failed logins for this username"));
    assert_eq!(app.stats().await.sessions, 0);
}

#[tokio::test]
async fn a_successful_login_is_not_counted_as_a_failure() {
    let app = TestApp::spawn_with(|c| c.limits.login_failures = 1).await;
    for _ in 0..3 {
        assert_eq!(try_login(&app, "alice", PASSWORD).await.status(), 303);
    }
}

/// Reads what the server sends until it closes the connection; panics if it
/// keeps the connection open for 10 s.
async fn read_until_closed(stream: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt as _;
    let mut seen = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut seen),
    )
    .await;
    assert!(read.is_ok(), "the server kept the connection open");
    String::from_utf8_lossy(&seen).into_owned()
}

async fn connect(app: &TestApp) -> tokio::net::TcpStream {
    let addr = app.base.trim_start_matches("http://").to_owned();
    tokio::net::TcpStream::connect(addr).await.unwrap()
}

#[tokio::test]
async fn a_client_that_stops_halfway_through_its_headers_is_disconnected() {
    use tokio::io::AsyncWriteExt as _;
    let app = TestApp::spawn_with(|c| c.limits.header_read_timeout = 1).await;
    let mut stream = connect(&app).await;

    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Sl")
        .await
        .unwrap();

    let seen = read_until_closed(&mut stream).await;
    assert!(!seen.contains("200 OK"), "{seen}");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_header_read_timeout() {
    use tokio::io::AsyncWriteExt as _;
    let app = TestApp::spawn_with(|c| c.limits.header_read_timeout = 1).await;
    let mut stream = connect(&app).await;

    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();

    // The response, then nothing more from a client that keeps the
    // connection open: the server closes it.
    let seen = read_until_closed(&mut stream).await;
    assert!(seen.starts_with("HTTP/1.1 200 OK"), "{seen}");
}

#[tokio::test]
async fn a_request_with_too_many_headers_is_refused_with_431() {
    use tokio::io::AsyncWriteExt as _;
    let app = TestApp::spawn_with(|c| c.limits.max_headers = 16).await;
    let mut stream = connect(&app).await;
    let mut request = String::from("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    for i in 0..20 {
        request.push_str(&format!("X-Filler-{i}: x\r\n"));
    }
    request.push_str("\r\n");

    stream.write_all(request.as_bytes()).await.unwrap();

    let seen = read_until_closed(&mut stream).await;
    assert!(seen.starts_with("HTTP/1.1 431"), "{seen}");
}

#[tokio::test]
async fn request_headers_larger_than_the_limit_are_refused_with_431() {
    use tokio::io::AsyncWriteExt as _;
    let app = TestApp::spawn_with(|c| c.limits.max_header_bytes = 8192).await;
    let mut stream = connect(&app).await;
    let request = format!(
        "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: {}\r\n\r\n",
        "a".repeat(20_000)
    );

    let _ = stream.write_all(request.as_bytes()).await;

    let seen = read_until_closed(&mut stream).await;
    assert!(seen.starts_with("HTTP/1.1 431"), "{seen}");
}

/// `GET /authorize` of the public client `spa` with the classic parameters.
async fn front_channel_request(app: &TestApp) -> reqwest::Response {
    let mut url = url::Url::parse(&app.url("/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", "spa")
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("code_challenge", CHALLENGE)
        .append_pair("code_challenge_method", "S256");
    app.http.get(url).send().await.unwrap()
}

#[tokio::test]
async fn front_channel_requests_beyond_the_per_address_limit_get_a_429_page_and_store_nothing() {
    let app = TestApp::spawn_with(|c| c.limits.authorize_per_minute = 2).await;
    app.add_public_client("spa", &[REDIRECT]).await;
    for _ in 0..2 {
        assert_eq!(front_channel_request(&app).await.status(), 302);
    }

    let res = front_channel_request(&app).await;

    assert_eq!(res.status(), 429);
    assert_retry_after(&res, 60);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(res.text().await.unwrap().contains("this address"));
    assert_eq!(app.stats().await.pending_pushed_requests, 2);
}

#[tokio::test]
async fn a_flood_of_front_channel_requests_cannot_starve_pushed_requests() {
    let app = TestApp::spawn_with(|c| {
        c.limits.authorize_per_minute = 0;
        c.pushed_clients.max_front_channel_requests = 3;
        c.pushed_clients.max_pending_requests = 3;
    })
    .await;
    app.add_public_client("spa", &[REDIRECT]).await;
    for _ in 0..3 {
        assert_eq!(front_channel_request(&app).await.status(), 302);
    }
    // The front channel's own budget is spent...
    let res = front_channel_request(&app).await;
    assert_eq!(res.status(), 503);
    assert!(res.headers().contains_key("retry-after"));
    // ...and PAR's is untouched.
    for _ in 0..3 {
        app.push_ok(Some(&registration()), &[]).await;
    }
    assert_eq!(app.stats().await.pending_pushed_requests, 6);
}

/// A registration sent through a proxy that forwarded `forwarded_for`.
async fn register_via(app: &TestApp, forwarded_for: &str) -> reqwest::Response {
    app.http
        .post(app.url("/register"))
        .header("x-forwarded-for", forwarded_for)
        .json(&serde_json::json!({
            "redirect_uris": [REDIRECT],
            "token_endpoint_auth_method": "none",
        }))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_registration_budget() {
    // The test's requests come from 127.0.0.1, inside the trusted range.
    let app = TestApp::spawn_with(|c| {
        c.registration.per_minute = 1;
        c.trusted_proxies = vec!["127.0.0.0/8".into()];
    })
    .await;
    assert_eq!(register_via(&app, "203.0.113.7").await.status(), 201);
    assert_eq!(register_via(&app, "203.0.113.8").await.status(), 201);
    // A client-written entry left of the real one is not believed.
    let res = register_via(&app, "198.51.100.1, 203.0.113.7").await;
    assert_eq!(res.status(), 429);
}

#[tokio::test]
async fn behind_a_trusted_proxy_every_per_address_limit_counts_the_forwarded_address() {
    let app = TestApp::spawn_with(|c| {
        c.limits.par_per_minute = 1;
        c.trusted_proxies = vec!["127.0.0.1".into()];
    })
    .await;
    let push_via = |forwarded_for: &'static str| {
        let app = &app;
        async move {
            let mut form = vec![
                ("client_id", URN.to_owned()),
                ("response_type", "code".to_owned()),
                ("redirect_uri", REDIRECT.to_owned()),
                ("state", "s".to_owned()),
                ("code_challenge", CHALLENGE.to_owned()),
                ("code_challenge_method", "S256".to_owned()),
            ];
            form.push(("client_registration", registration()));
            app.http
                .post(app.url("/par"))
                .header("x-forwarded-for", forwarded_for)
                .form(&form)
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(push_via("203.0.113.7").await.status(), 201);
    assert_eq!(push_via("203.0.113.8").await.status(), 201);
    assert_eq!(push_via("203.0.113.7").await.status(), 429);
}

#[tokio::test]
async fn without_trusted_proxies_a_forwarded_address_is_ignored() {
    let app = TestApp::spawn_with(|c| c.registration.per_minute = 1).await;
    assert_eq!(register_via(&app, "203.0.113.7").await.status(), 201);
    assert_eq!(register_via(&app, "203.0.113.8").await.status(), 429);
}

/// A TLS connection to `app` (its certificate in `dir`), handshake done.
async fn connect_tls(
    app: &TestApp,
    dir: &tempfile::TempDir,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, ServerName};
    let mut roots = rustls::RootCertStore::empty();
    let cert = CertificateDer::from_pem_file(dir.path().join("cert.pem")).unwrap();
    roots.add(cert).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let addr = app.base.trim_start_matches("https://").to_owned();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    connector.connect(name, tcp).await.unwrap()
}

/// What the server sends over TLS until it ends the connection; panics if it
/// keeps it open for 10 s.
async fn read_tls_until_closed(
    stream: &mut tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
) -> String {
    use tokio::io::AsyncReadExt as _;
    let mut seen = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut seen),
    )
    .await;
    assert!(read.is_ok(), "the server kept the connection open");
    String::from_utf8_lossy(&seen).into_owned()
}

#[tokio::test]
async fn over_tls_a_client_that_stops_halfway_through_its_headers_is_disconnected() {
    use tokio::io::AsyncWriteExt as _;
    let (app, dir) = crate::mtls::tls_app_with(|c| c.limits.header_read_timeout = 1).await;
    let mut stream = connect_tls(&app, &dir).await;

    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Sl")
        .await
        .unwrap();
    stream.flush().await.unwrap();

    let seen = read_tls_until_closed(&mut stream).await;
    assert!(!seen.contains("200 OK"), "{seen}");
}

#[tokio::test]
async fn over_tls_an_idle_keep_alive_connection_is_closed_after_the_header_read_timeout() {
    use tokio::io::AsyncWriteExt as _;
    let (app, dir) = crate::mtls::tls_app_with(|c| c.limits.header_read_timeout = 1).await;
    let mut stream = connect_tls(&app, &dir).await;

    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    stream.flush().await.unwrap();

    let seen = read_tls_until_closed(&mut stream).await;
    assert!(seen.starts_with("HTTP/1.1 200 OK"), "{seen}");
}

#[tokio::test]
async fn over_tls_a_request_with_too_many_headers_is_refused_with_431() {
    use tokio::io::AsyncWriteExt as _;
    let (app, dir) = crate::mtls::tls_app_with(|c| c.limits.max_headers = 16).await;
    let mut stream = connect_tls(&app, &dir).await;
    let mut request = String::from("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    for i in 0..20 {
        request.push_str(&format!("X-Filler-{i}: x\r\n"));
    }
    request.push_str("\r\n");

    stream.write_all(request.as_bytes()).await.unwrap();
    stream.flush().await.unwrap();

    let seen = read_tls_until_closed(&mut stream).await;
    assert!(seen.starts_with("HTTP/1.1 431"), "{seen}");
}

#[tokio::test]
async fn over_tls_request_headers_larger_than_the_limit_are_refused_with_431() {
    use tokio::io::AsyncWriteExt as _;
    let (app, dir) = crate::mtls::tls_app_with(|c| c.limits.max_header_bytes = 8192).await;
    let mut stream = connect_tls(&app, &dir).await;
    let request = format!(
        "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: {}\r\n\r\n",
        "a".repeat(20_000)
    );

    let _ = stream.write_all(request.as_bytes()).await;
    let _ = stream.flush().await;

    let seen = read_tls_until_closed(&mut stream).await;
    assert!(seen.starts_with("HTTP/1.1 431"), "{seen}");
}

#[tokio::test]
async fn over_tls_a_client_that_never_finishes_its_handshake_is_disconnected() {
    use tokio::io::AsyncReadExt as _;
    let (app, _dir) = crate::mtls::tls_app_with(|c| c.limits.header_read_timeout = 1).await;
    let addr = app.base.trim_start_matches("https://").to_owned();
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();

    // Nothing is sent: not even a ClientHello.
    let mut seen = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        tcp.read_to_end(&mut seen),
    )
    .await;

    assert!(read.is_ok(), "the server kept the connection open");
}

#[tokio::test]
async fn over_tls_shutting_down_closes_idle_connections_and_finishes() {
    use tokio::io::AsyncWriteExt as _;
    // Without a header-read timeout, only the shutdown can end the connection.
    let (mut app, dir) = crate::mtls::tls_app_with(|c| c.limits.header_read_timeout = 0).await;
    let mut stream = connect_tls(&app, &dir).await;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    stream.flush().await.unwrap();
    // The whole response arrives; the connection then waits, kept alive.
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).ends_with("\r\n\r\nok") {
        let mut buf = [0u8; 1024];
        let n = tokio::io::AsyncReadExt::read(&mut stream, &mut buf)
            .await
            .unwrap();
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }

    app.shut_down();

    assert_eq!(read_tls_until_closed(&mut stream).await, "");
}

#[tokio::test]
async fn shutting_down_closes_idle_plain_connections_and_finishes() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    // Without a header-read timeout, only the shutdown can end the connection.
    let mut app = TestApp::spawn_with(|c| c.limits.header_read_timeout = 0).await;
    let mut stream = connect(&app).await;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).ends_with("\r\n\r\nok") {
        let mut buf = [0u8; 1024];
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }

    app.shut_down();

    assert_eq!(read_until_closed(&mut stream).await, "");
}

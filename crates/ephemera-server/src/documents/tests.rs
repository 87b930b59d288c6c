//! Tests of the fetcher against local https servers on 127.0.0.1. Only
//! loopback is ever contacted: the internal-address tests are refused before
//! any connection.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use hyper::body::Frame;
use serde_json::{json, Map};

use super::*;
use ephemera_proto::client_document::MAX_URL_LEN;
use ephemera_proto::metadata::ClientMetadata;

/// What the test server's `/doc` serves, changeable by the test.
#[derive(Clone, Default)]
struct Served {
    hits: Arc<AtomicUsize>,
    /// Fields laid over the default document; `null` removes one.
    overlay: Arc<Mutex<Map<String, Value>>>,
    cache_control: Arc<Mutex<Option<String>>>,
    /// What `/jwks` serves (a JWK Set), and how often it was asked.
    keys: Arc<Mutex<Value>>,
    key_hits: Arc<AtomicUsize>,
    keys_cache_control: Arc<Mutex<Option<String>>>,
}

impl Served {
    fn set(&self, field: &str, value: Value) {
        self.overlay.lock().unwrap().insert(field.into(), value);
    }
    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// The default document names itself by the Host it was asked under.
async fn document(State(s): State<Served>, headers: HeaderMap, uri: Uri) -> Response {
    s.hits.fetch_add(1, Ordering::SeqCst);
    let host = headers[header::HOST].to_str().unwrap();
    let mut doc = json!({
        "client_id": format!("https://{host}{}", uri.path()),
        "client_name": "Test agent",
        "redirect_uris": ["https://agent.example/callback"],
        "token_endpoint_auth_method": "none",
    });
    let map = doc.as_object_mut().unwrap();
    for (k, v) in s.overlay.lock().unwrap().iter() {
        match v {
            Value::Null => map.remove(k),
            v => map.insert(k.clone(), v.clone()),
        };
    }
    let mut response = axum::Json(doc).into_response();
    if let Some(cc) = s.cache_control.lock().unwrap().clone() {
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, cc.parse().unwrap());
    }
    response
}

/// The JWK Set of `Served::keys`, as `application/jwk-set+json`.
async fn keys(State(s): State<Served>) -> Response {
    s.key_hits.fetch_add(1, Ordering::SeqCst);
    let mut response = (
        [(header::CONTENT_TYPE, "application/jwk-set+json")],
        s.keys.lock().unwrap().to_string(),
    )
        .into_response();
    if let Some(cc) = s.keys_cache_control.lock().unwrap().clone() {
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, cc.parse().unwrap());
    }
    response
}

/// 404, counted.
async fn missing(State(s): State<Served>) -> StatusCode {
    s.hits.fetch_add(1, Ordering::SeqCst);
    StatusCode::NOT_FOUND
}

/// The document, after half a second: time for concurrent fetches to meet.
async fn slow_document(state: State<Served>, headers: HeaderMap, uri: Uri) -> Response {
    tokio::time::sleep(Duration::from_millis(500)).await;
    document(state, headers, uri).await
}

/// A body that yields 1 KiB of JSON whitespace forever, or (`stall`)
/// once and then never again.
struct Endless {
    stall: bool,
    sent: bool,
}

impl hyper::body::Body for Endless {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.stall && self.sent {
            return Poll::Pending;
        }
        self.sent = true;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(&[b' '; 1024])))))
    }
}

fn json_body(body: Body) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// A rustls server configuration for the test server's certificate.
fn tls_config(cert_pem: &str, key_pem: &str) -> Arc<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain = vec![CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// Serves `router` over TLS until `stop` fires: the documents' host.
async fn serve_tls(
    listener: tokio::net::TcpListener,
    config: Arc<rustls::ServerConfig>,
    router: Router,
    stop: tokio::sync::oneshot::Receiver<()>,
) {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::service::TowerToHyperService;
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    tokio::pin!(stop);
    loop {
        let tcp = tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(_) => continue,
            },
        };
        let (acceptor, router) = (acceptor.clone(), router.clone());
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), TowerToHyperService::new(router))
                .await;
        });
    }
}

struct TestServer {
    port: u16,
    cert_pem: Vec<u8>,
    served: Served,
    _stop: tokio::sync::oneshot::Sender<()>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    async fn start() -> Self {
        let served = Served::default();
        let router = Router::new()
            .route("/doc", get(document))
            .route("/other/doc", get(document))
            .route(
                "/redirect",
                get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/doc")]) }),
            )
            .route("/missing", get(missing))
            .route("/jwks", get(keys))
            .route("/slow", get(slow_document))
            .route("/never", get(std::future::pending::<axum::Json<Value>>))
            .route(
                "/stall",
                get(|| async {
                    json_body(Body::new(Endless {
                        stall: true,
                        sent: false,
                    }))
                }),
            )
            .route(
                "/endless",
                get(|| async {
                    json_body(Body::new(Endless {
                        stall: false,
                        sent: false,
                    }))
                }),
            )
            .route(
                "/declared-large",
                get(|| async { json_body(Body::from(vec![b' '; 6000])) }),
            )
            .route("/text", get(|| async { "hello" }))
            .route("/array", get(|| async { axum::Json(json!([1, 2])) }))
            .route(
                "/broken",
                get(|| async { json_body(Body::from("{\"a\":")) }),
            )
            .with_state(served.clone());
        let cert = rcgen::generate_simple_self_signed(vec![
            "127.0.0.1".to_owned(),
            "localhost".to_owned(),
        ])
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert_path, cert.cert.pem()).unwrap();
        std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
        let config = tls_config(&cert.cert.pem(), &cert.key_pair.serialize_pem());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(serve_tls(listener, config, router, stopped));
        Self {
            port,
            cert_pem: cert.cert.pem().into_bytes(),
            served,
            _stop: stop,
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    /// A fetcher trusting this server's certificate, allowing `allow`.
    fn fetcher(&self, allow: &[&str], policy: DocumentPolicy) -> DocumentFetcher {
        DocumentFetcher::new(DocumentPolicy {
            enabled: true,
            allow_hosts: allow.iter().map(|h| h.to_string()).collect(),
            extra_roots_pem: vec![self.cert_pem.clone()],
            ..policy
        })
        .unwrap()
    }
}

const NOW: i64 = 1_700_000_000;

#[tokio::test]
async fn a_valid_document_is_fetched_once_and_then_served_from_the_cache() {
    let server = TestServer::start().await;
    let fetcher = server.fetcher(&["127.0.0.1"], DocumentPolicy::default());
    let url = server.url("/doc");

    let first = fetcher.fetch(&url, NOW).await.unwrap();
    let second = fetcher.fetch(&url, NOW + 30).await.unwrap();

    assert_eq!(first.metadata.client_name.as_deref(), Some("Test agent"));
    assert_eq!(
        first.metadata.redirect_uris[0].as_str(),
        "https://agent.example/callback"
    );
    assert_eq!(first.host, format!("127.0.0.1:{}", server.port));
    assert_eq!(first.json["client_id"], url.as_str());
    assert_eq!(first, second);
    assert_eq!(server.served.hits(), 1);
}

#[tokio::test]
async fn a_changed_document_is_seen_once_the_cache_expires() {
    let server = TestServer::start().await;
    let policy = DocumentPolicy {
        min_cache: Duration::from_secs(10),
        max_cache: Duration::from_secs(100),
        ..DocumentPolicy::default()
    };
    *server.served.cache_control.lock().unwrap() = Some("public, max-age=86400".into());
    let fetcher = server.fetcher(&["127.0.0.1"], policy);
    let url = server.url("/doc");
    fetcher.fetch(&url, NOW).await.unwrap();

    server.served.set("client_name", json!("Renamed agent"));
    let cached = fetcher.fetch(&url, NOW + 99).await.unwrap();
    let refetched = fetcher.fetch(&url, NOW + 100).await.unwrap();

    assert_eq!(cached.metadata.client_name.as_deref(), Some("Test agent"));
    assert_eq!(
        refetched.metadata.client_name.as_deref(),
        Some("Renamed agent")
    );
    assert_eq!(server.served.hits(), 2);
}

#[tokio::test]
async fn max_age_sets_the_cache_lifetime() {
    let server = TestServer::start().await;
    *server.served.cache_control.lock().unwrap() = Some("max-age=120".into());
    let fetcher = server.fetcher(&["127.0.0.1"], DocumentPolicy::default());
    let url = server.url("/doc");

    fetcher.fetch(&url, NOW).await.unwrap();
    fetcher.fetch(&url, NOW + 119).await.unwrap();
    assert_eq!(server.served.hits(), 1);
    fetcher.fetch(&url, NOW + 120).await.unwrap();
    assert_eq!(server.served.hits(), 2);
}

#[test]
fn cache_lifetime_follows_cache_control_within_the_bounds() {
    let policy = DocumentPolicy::default();
    let lifetime = |pairs: &[(&'static str, &'static str)]| {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        cache_lifetime(&h, &policy)
    };
    assert_eq!(lifetime(&[]), 60);
    assert_eq!(lifetime(&[("cache-control", "max-age=300")]), 300);
    assert_eq!(lifetime(&[("cache-control", "max-age=\"300\"")]), 300);
    assert_eq!(
        lifetime(&[("cache-control", "max-age=300"), ("age", "100")]),
        200
    );
    assert_eq!(lifetime(&[("cache-control", "max-age=5")]), 60);
    assert_eq!(
        lifetime(&[("cache-control", "max-age=99999999999")]),
        86_400
    );
    assert_eq!(lifetime(&[("cache-control", "no-store")]), 60);
    assert_eq!(lifetime(&[("cache-control", "max-age=300, no-cache")]), 60);
    assert_eq!(lifetime(&[("cache-control", "max-age=banana")]), 60);
}

#[test]
fn a_full_cache_evicts_expired_then_soonest_expiring_entries() {
    let cache = Cache::new(2);
    let doc = FetchedDocument {
        metadata: ClientMetadata::default(),
        json: Value::Null,
        host: "a.example".into(),
        keys: None,
    };
    cache.put("https://a.example/1", doc.clone(), NOW, 100);
    cache.put("https://a.example/2", doc.clone(), NOW, 50);
    cache.put("https://a.example/3", doc.clone(), NOW, 100);

    assert_eq!(cache.len(), 2);
    assert!(cache.get("https://a.example/2", NOW).is_none());
    assert!(cache.get("https://a.example/1", NOW).is_some());
    cache.put("https://a.example/4", doc, NOW + 100, 100);
    assert_eq!(cache.len(), 1);
}

#[tokio::test]
async fn a_document_larger_than_the_limit_is_refused() {
    let server = TestServer::start().await;
    let fetcher = server.fetcher(&["127.0.0.1"], DocumentPolicy::default());

    let declared = fetcher.fetch(&server.url("/declared-large"), NOW).await;
    // No Content-Length and no end: only a limit enforced while reading stops it.
    let endless = fetcher.fetch(&server.url("/endless"), NOW).await;

    assert_eq!(declared, Err(DocumentError::TooLarge));
    assert_eq!(endless, Err(DocumentError::TooLarge));
}

#[tokio::test]
async fn a_server_that_does_not_finish_in_time_is_given_up_on() {
    let server = TestServer::start().await;
    let policy = DocumentPolicy {
        total_timeout: Duration::from_millis(300),
        ..DocumentPolicy::default()
    };
    let fetcher = server.fetcher(&["127.0.0.1"], policy);

    let no_headers = fetcher.fetch(&server.url("/never"), NOW).await;
    let stalled_body = fetcher.fetch(&server.url("/stall"), NOW).await;

    assert_eq!(no_headers, Err(DocumentError::Unreachable));
    assert_eq!(stalled_body, Err(DocumentError::Unreachable));
}

#[tokio::test]
async fn a_redirect_is_not_followed() {
    let server = TestServer::start().await;
    let fetcher = server.fetcher(&["127.0.0.1"], DocumentPolicy::default());

    let result = fetcher.fetch(&server.url("/redirect"), NOW).await;

    assert_eq!(result, Err(DocumentError::Unreachable));
    assert_eq!(server.served.hits(), 0);
}

#[tokio::test]
async fn a_status_other_than_200_is_refused() {
    let server = TestServer::start().await;
    let fetcher = server.fetcher(&["127.0.0.1"], DocumentPolicy::default());

    let result = fetcher.fetch(&server.url("/missing"), NOW).await;

    assert_eq!(result, Err(DocumentError::Unreachable));
}

#[tokio::test]
async fn a_document_naming_another_client_id_is_refused() {
    let server = TestServer::start().await;
    let fetcher = server.fetcher(&["127.0.0.1"], DocumentPolicy::default());
    server
        .served
        .set("client_id", json!(server.url("/other/doc")));

    let result = fetcher.fetch(&server.url("/doc"), NOW).await;

    assert!(matches!(result, Err(DocumentError::Invalid(m)) if m.contains("does not equal")));
}

#[tokio::test]
async fn a_body_that_is_not_a_json_object_is_refused() {
    let server = TestServer::start().await;
    let fetcher = server.fetcher(&["127.0.0.1"], DocumentPolicy::default());

    for path in ["/text", "/array", "/broken"] {
        let result = fetcher.fetch(&server.url(path), NOW).await;
        assert!(
            matches!(result, Err(DocumentError::Invalid(_))),
            "{path}: {result:?}"
        );
    }
}

#[tokio::test]
async fn a_document_without_redirect_uris_is_refused() {
    let server = TestServer::start().await;
    let fetcher = server.fetcher(&["127.0.0.1"], DocumentPolicy::default());

    server.served.set("redirect_uris", Value::Null);
    let absent = fetcher.fetch(&server.url("/doc"), NOW).await;
    server.served.set("redirect_uris", json!([]));
    let empty = fetcher.fetch(&server.url("/other/doc"), NOW).await;

    assert!(matches!(absent, Err(DocumentError::Invalid(m)) if m.contains("redirect_uris")));
    assert!(matches!(empty, Err(DocumentError::Invalid(m)) if m.contains("redirect_uris")));
}

#[tokio::test]
async fn secrets_and_secret_based_authentication_are_refused() {
    let server = TestServer::start().await;
    // Each case changes the document at one URL: no failure is remembered.
    let policy = DocumentPolicy {
        failure_cache: Duration::ZERO,
        ..DocumentPolicy::default()
    };
    let fetcher = server.fetcher(&["127.0.0.1"], policy);
    let url = server.url("/doc");
    let jwks = json!({"keys": [{"kty": "EC", "crv": "P-256", "x": "x", "y": "y"}]});
    let cases = [
        (
            "token_endpoint_auth_method",
            json!("client_secret_basic"),
            "not allowed",
        ),
        (
            "token_endpoint_auth_method",
            json!("client_secret_post"),
            "not allowed",
        ),
        (
            "token_endpoint_auth_method",
            json!("private_key_jwt"),
            "jwks",
        ),
        ("client_secret", json!("hunter2"), "client_secret"),
        (
            "jwks",
            json!({"keys": [{"kty": "EC", "crv": "P-256", "x": "x", "y": "y", "d": "d"}]}),
            "public keys only",
        ),
        ("jwks_uri", json!("http://agent.example/jwks"), "jwks_uri"),
    ];

    for (field, value, expected) in cases {
        server.served.overlay.lock().unwrap().clear();
        server.served.set(field, value);
        let result = fetcher.fetch(&url, NOW).await;
        assert!(
            matches!(&result, Err(DocumentError::Invalid(m)) if m.contains(expected)),
            "{field}: {result:?}"
        );
    }
    server.served.overlay.lock().unwrap().clear();
    server
        .served
        .set("token_endpoint_auth_method", json!("private_key_jwt"));
    server.served.set("jwks", jwks);
    let with_keys = fetcher.fetch(&url, NOW).await.unwrap();
    assert_eq!(
        with_keys.metadata.token_endpoint_auth_method.as_deref(),
        Some("private_key_jwt")
    );
}

#[tokio::test]
async fn loopback_is_refused_unless_allow_listed() {
    let server = TestServer::start().await;
    let guarded = server.fetcher(&[], DocumentPolicy::default());
    let allowing = server.fetcher(&["LocalHost"], DocumentPolicy::default());
    let by_name = format!("https://localhost:{}/doc", server.port);

    let literal = guarded.fetch(&server.url("/doc"), NOW).await;
    let resolved = guarded.fetch(&by_name, NOW).await;
    assert!(
        matches!(literal, Err(DocumentError::Forbidden(_))),
        "{literal:?}"
    );
    // Resolved to loopback: told apart from nothing else that failed.
    assert_eq!(resolved, Err(DocumentError::Unreachable));
    assert_eq!(server.served.hits(), 0);

    let allowed = allowing.fetch(&by_name, NOW).await.unwrap();
    assert_eq!(allowed.host, format!("localhost:{}", server.port));
    assert_eq!(server.served.hits(), 1);
}

#[tokio::test]
async fn internal_ip_literals_are_refused_before_any_connection() {
    // Never send traffic anywhere but loopback: each URL is first checked
    // offline, and `fetch` runs the same check before any network access.
    let fetcher = DocumentFetcher::new(DocumentPolicy {
        enabled: true,
        connect_timeout: Duration::from_millis(1),
        ..DocumentPolicy::default()
    })
    .unwrap();
    for url in [
        "https://10.0.0.1/x",
        "https://172.16.5.4/x",
        "https://192.168.1.1/x",
        "https://169.254.169.254/latest/meta-data",
        "https://100.64.0.1/x",
        "https://0.0.0.0/x",
        "https://255.255.255.255/x",
        "https://224.0.0.1/x",
        "https://192.0.2.1/x",
        "https://[fd00::1]/x",
        "https://[fe80::1]/x",
        "https://[::1]/x",
        "https://[::]/x",
        "https://[ff02::1]/x",
        "https://[::ffff:a00:1]/x",
        "https://[2001:db8::1]/x",
        "https://0x7f000001/x",
    ] {
        let offline = check_client_id(url, &[]);
        assert!(
            matches!(offline, Err(DocumentError::Forbidden(_))),
            "{url}: {offline:?}"
        );
        let fetched = fetcher.fetch(url, NOW).await;
        assert!(
            matches!(fetched, Err(DocumentError::Forbidden(_))),
            "{url}: {fetched:?}"
        );
    }
}

#[tokio::test]
async fn urls_breaking_the_draft_rules_are_refused_offline() {
    let fetcher = DocumentFetcher::new(DocumentPolicy {
        enabled: true,
        ..DocumentPolicy::default()
    })
    .unwrap();
    let long = format!("https://agent.example/{}", "a".repeat(MAX_URL_LEN));
    for url in [
        "http://agent.example/client.json",
        "https://agent.example/client.json#frag",
        "https://user:pass@agent.example/client.json",
        "https://agent.example/a/../client.json",
        "https://agent.example/./client.json",
        "https://agent.example/a/%2E%2e/client.json",
        "https://agent.example",
        "https://Agent.Example/client.json",
        "https://agent.example:443/client.json",
        "not a url",
        long.as_str(),
    ] {
        let result = fetcher.fetch(url, NOW).await;
        assert!(
            matches!(result, Err(DocumentError::InvalidUrl(_))),
            "{url}: {result:?}"
        );
    }
    for url in [
        "https://agent.example/client.json?v=1",
        "https://agent.example/",
        "https://agent.example:8443/a/client.json",
    ] {
        assert!(check_client_id(url, &[]).is_ok(), "{url}");
    }
}

#[tokio::test]
async fn a_fetcher_is_disabled_by_default_and_then_fetches_nothing() {
    let fetcher = DocumentFetcher::new(DocumentPolicy::default()).unwrap();

    let result = fetcher
        .fetch("https://agent.example/client.json", NOW)
        .await;

    assert_eq!(result, Err(DocumentError::Disabled));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_fetches_of_one_url_make_one_request() {
    let server = TestServer::start().await;
    let fetcher = Arc::new(server.fetcher(&["127.0.0.1"], DocumentPolicy::default()));
    let url = server.url("/slow");

    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let (fetcher, url) = (fetcher.clone(), url.clone());
        tasks.spawn(async move { fetcher.fetch(&url, NOW).await });
    }
    while let Some(done) = tasks.join_next().await {
        assert!(done.unwrap().is_ok());
    }

    assert_eq!(server.served.hits(), 1);
}

#[tokio::test]
async fn a_failure_is_remembered_briefly_and_never_served_as_a_document() {
    let server = TestServer::start().await;
    let fetcher = server.fetcher(&["127.0.0.1"], DocumentPolicy::default());
    let url = server.url("/doc");
    server
        .served
        .set("client_id", json!("https://someone-else.example/doc"));

    for later in [0, 10, 29] {
        let failed = fetcher.fetch(&url, NOW + later).await;
        assert!(
            matches!(failed, Err(DocumentError::Invalid(_))),
            "{failed:?}"
        );
    }
    assert_eq!(server.served.hits(), 1, "one fetch for the three requests");

    // Fixed meanwhile: once the failure is forgotten, the document is fetched.
    server.served.set("client_id", Value::Null);
    server.served.overlay.lock().unwrap().remove("client_id");
    let fixed = fetcher.fetch(&url, NOW + 30).await;
    assert!(fixed.is_ok(), "{fixed:?}");
    assert_eq!(server.served.hits(), 2);

    let missing = server.url("/missing");
    assert_eq!(
        fetcher.fetch(&missing, NOW).await,
        Err(DocumentError::Unreachable)
    );
    assert_eq!(
        fetcher.fetch(&missing, NOW + 1).await,
        Err(DocumentError::Unreachable)
    );
    assert_eq!(server.served.hits(), 3);
}

#[tokio::test]
async fn fetches_from_one_host_are_limited_whatever_the_path() {
    let server = TestServer::start().await;
    let policy = DocumentPolicy {
        per_host_per_minute: 3,
        ..DocumentPolicy::default()
    };
    let fetcher = server.fetcher(&["127.0.0.1"], policy);

    // A path of its own each time: no cache or merging helps.
    for i in 0..3 {
        let result = fetcher
            .fetch(&server.url(&format!("/missing?n={i}")), NOW)
            .await;
        assert_eq!(result, Err(DocumentError::Unreachable));
    }
    let refused = fetcher.fetch(&server.url("/doc"), NOW + 10).await;

    assert_eq!(refused, Err(DocumentError::Unreachable));
    assert_eq!(server.served.hits(), 3);
    // The next minute, the host may be fetched from again.
    assert!(fetcher.fetch(&server.url("/doc"), NOW + 60).await.is_ok());
}

#[tokio::test]
async fn every_way_a_fetch_fails_reads_the_same_to_the_client() {
    let server = TestServer::start().await;
    let policy = DocumentPolicy {
        total_timeout: Duration::from_millis(300),
        ..DocumentPolicy::default()
    };
    let fetcher = server.fetcher(&["127.0.0.1", "localhost"], policy);
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let guarded = server.fetcher(&[], DocumentPolicy::default());

    let outcomes = [
        fetcher.fetch(&server.url("/never"), NOW).await,
        fetcher.fetch(&server.url("/missing"), NOW).await,
        fetcher.fetch(&server.url("/redirect"), NOW).await,
        fetcher
            .fetch(&format!("https://127.0.0.1:{closed}/doc"), NOW)
            .await,
        guarded
            .fetch(&format!("https://localhost:{}/doc", server.port), NOW)
            .await,
    ];

    for outcome in &outcomes {
        assert_eq!(outcome, &Err(DocumentError::Unreachable));
    }
    let description = DocumentError::Unreachable.to_string();
    assert!(!description.contains("404") && !description.contains("timed out"));
}

/// A public P-256 key, as a JWK.
fn public_key(x: &str) -> Value {
    // Any valid point will do; these are the coordinates of RFC 7515's
    // example key, and `x` only tells two sets apart in their `kid`.
    json!({"kty": "EC", "crv": "P-256", "kid": x,
        "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"})
}

#[tokio::test]
async fn keys_named_by_jwks_uri_are_fetched_with_the_document_and_cached_with_it() {
    let server = TestServer::start().await;
    *server.served.keys.lock().unwrap() = json!({"keys": [public_key("one")]});
    *server.served.cache_control.lock().unwrap() = Some("max-age=600".into());
    *server.served.keys_cache_control.lock().unwrap() = Some("max-age=120".into());
    server
        .served
        .set("token_endpoint_auth_method", json!("private_key_jwt"));
    server.served.set("jwks_uri", json!(server.url("/jwks")));
    let fetcher = server.fetcher(&["127.0.0.1"], DocumentPolicy::default());
    let url = server.url("/doc");

    let doc = fetcher.fetch(&url, NOW).await.unwrap();
    assert_eq!(doc.keys, Some(json!({"keys": [public_key("one")]})));
    assert_eq!(doc.metadata.jwks_uri, Some(server.url("/jwks")));

    // Cached as long as the shorter-lived of the two.
    *server.served.keys.lock().unwrap() = json!({"keys": [public_key("two")]});
    let cached = fetcher.fetch(&url, NOW + 119).await.unwrap();
    assert_eq!(cached.keys, doc.keys);
    assert_eq!(
        (
            server.served.hits(),
            server.served.key_hits.load(Ordering::SeqCst)
        ),
        (1, 1)
    );
    let refetched = fetcher.fetch(&url, NOW + 120).await.unwrap();
    assert_eq!(refetched.keys, Some(json!({"keys": [public_key("two")]})));
    assert_eq!(server.served.key_hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_document_whose_keys_cannot_be_had_is_refused() {
    let server = TestServer::start().await;
    let policy = DocumentPolicy {
        failure_cache: Duration::ZERO,
        ..DocumentPolicy::default()
    };
    let fetcher = server.fetcher(&["127.0.0.1"], policy);
    let url = server.url("/doc");
    server
        .served
        .set("token_endpoint_auth_method", json!("private_key_jwt"));
    let mut private = public_key("one");
    private["d"] = json!("private");
    let cases: [(String, Value, &str); 5] = [
        (server.url("/missing"), Value::Null, "unreachable"),
        (server.url("/redirect"), Value::Null, "unreachable"),
        (server.url("/text"), Value::Null, "Content-Type"),
        (
            server.url("/jwks"),
            json!({"keys": [private]}),
            "public keys only",
        ),
        (server.url("/jwks"), json!({"keys": []}), "JWK Set"),
    ];
    for (jwks_uri, served_keys, expected) in cases {
        *server.served.keys.lock().unwrap() = served_keys;
        server.served.set("jwks_uri", json!(jwks_uri));
        let result = fetcher.fetch(&url, NOW).await;
        match expected {
            "unreachable" => assert_eq!(result, Err(DocumentError::KeysUnreachable), "{jwks_uri}"),
            _ => assert!(
                matches!(&result, Err(DocumentError::Invalid(m)) if m.contains("jwks_uri") && m.contains(expected)),
                "{jwks_uri}: {result:?}"
            ),
        }
    }
    let told = DocumentError::KeysUnreachable.to_string();
    assert!(told.contains("jwks_uri") && !told.contains("404"), "{told}");
}

#[tokio::test]
async fn a_jwks_uri_on_an_internal_address_is_never_fetched() {
    let server = TestServer::start().await;
    // The document's own host is allowed; the keys' host is not.
    let fetcher = server.fetcher(&["localhost"], DocumentPolicy::default());
    let url = format!("https://localhost:{}/doc", server.port);
    server
        .served
        .set("token_endpoint_auth_method", json!("private_key_jwt"));
    *server.served.keys.lock().unwrap() = json!({"keys": [public_key("one")]});

    server.served.set("jwks_uri", json!(server.url("/jwks")));
    let literal = fetcher.fetch(&url, NOW).await;
    assert!(
        matches!(&literal, Err(DocumentError::Invalid(m)) if m.contains("jwks_uri") && m.contains("internal")),
        "{literal:?}"
    );
    assert_eq!(server.served.key_hits.load(Ordering::SeqCst), 0);
}

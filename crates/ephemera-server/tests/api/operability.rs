//! What an operator watches: liveness (`/healthz`), readiness (`/readyz`)
//! and the Prometheus metrics (`/metrics`).

use serde_json::{json, Value};

use crate::helpers::*;

async fn scrape(app: &TestApp) -> String {
    let res = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let content_type = res.headers()["content-type"].to_str().unwrap();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    res.text().await.unwrap()
}

/// Recounts the gauges now, as the background task does every
/// `metrics.refresh_interval`.
async fn recount(app: &TestApp) {
    app.ctx
        .gauges
        .refresh(app.ctx.store.as_ref(), app.now())
        .await
        .unwrap();
}

/// The value of the sample named `series` (name and labels), if present.
fn sample(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|value| value.parse().unwrap())
}

async fn register(app: &TestApp) -> reqwest::Response {
    app.http
        .post(app.url("/register"))
        .json(&json!({
            "redirect_uris": [REDIRECT],
            "token_endpoint_auth_method": "none",
        }))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn healthz_answers_ok_while_the_process_runs() {
    let app = TestApp::spawn().await;
    let res = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "ok");
}

#[tokio::test]
async fn readyz_answers_ready_when_the_database_answers() {
    let app = TestApp::spawn().await;
    let res = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "ready");
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_show_the_grants_without_secrets() {
    // Arrange: a PAR and a token request.
    let app = TestApp::spawn().await;
    let request_uri = app.push_ok(Some(&registration()), &[]).await;
    let code = app.authorize(URN, &request_uri).await;
    let res = app.redeem(&code, &[]).await;
    assert_eq!(res.status(), 200);
    let tokens: Value = res.json().await.unwrap();

    // Act
    let res = app
        .http
        .get(app.url("/metrics"))
        .header("origin", "https://elsewhere.example")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().get("access-control-allow-origin").is_none());
    assert!(res.headers().get("set-cookie").is_none());
    recount(&app).await;
    let body = scrape(&app).await;
    let stats = app.stats().await;

    // Assert: request counters and the latency histogram, by route template.
    let par = r#"endpoint="/par""#;
    assert_eq!(
        sample(
            &body,
            &format!(r#"ephemera_http_requests_total{{{par},method="POST",status="201"}}"#)
        ),
        Some(1.0),
        "{body}"
    );
    assert_eq!(
        sample(
            &body,
            r#"ephemera_http_requests_total{endpoint="/token",method="POST",status="200"}"#
        ),
        Some(1.0),
        "{body}"
    );
    assert!(body.contains("# TYPE ephemera_http_request_duration_seconds histogram"));
    assert!(sample(
        &body,
        &format!(r#"ephemera_http_request_duration_seconds_bucket{{{par},le="0.0005"}}"#)
    )
    .is_some());
    assert_eq!(
        sample(
            &body,
            &format!(r#"ephemera_http_request_duration_seconds_bucket{{{par},le="+Inf"}}"#)
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &body,
            &format!("ephemera_http_request_duration_seconds_count{{{par}}}")
        ),
        Some(1.0)
    );
    let sum = sample(
        &body,
        &format!("ephemera_http_request_duration_seconds_sum{{{par}}}"),
    )
    .unwrap();
    assert!(sum > 0.0 && sum < 10.0, "{sum}");

    // The gauges are what the database holds.
    assert_eq!(stats.pushed_client_grants, 1);
    for (name, value) in [
        ("ephemera_grants", stats.grants),
        ("ephemera_pushed_client_grants", stats.pushed_client_grants),
        ("ephemera_access_tokens", stats.access_tokens),
        ("ephemera_refresh_tokens", stats.refresh_tokens),
        ("ephemera_codes", stats.codes),
        (
            "ephemera_pending_pushed_requests",
            stats.pending_pushed_requests,
        ),
        ("ephemera_sessions", stats.sessions),
        ("ephemera_dynamic_clients", stats.dynamic_clients),
        ("ephemera_registered_clients", stats.registered_clients),
    ] {
        assert_eq!(sample(&body, name), Some(value as f64), "{name}");
    }
    assert_eq!(sample(&body, "ephemera_database_up"), Some(1.0));

    // No secret anywhere.
    assert!(!body.contains(&request_uri));
    assert!(!body.contains(&code));
    for t in ["access_token", "refresh_token"] {
        assert!(!body.contains(tokens[t].as_str().unwrap()), "{t} leaked");
    }
}

#[tokio::test]
async fn metrics_label_routes_by_template_and_unknown_paths_as_unmatched() {
    let app = TestApp::spawn().await;
    let res = register(&app).await;
    assert_eq!(res.status(), 201);
    let client_id = res.json::<Value>().await.unwrap()["client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = app
        .http
        .get(app.url(&format!("/register/{client_id}")))
        .bearer_auth("not-the-registration-access-token")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let res = app
        .http
        .get(app.url("/no-such-page/private-looking-path"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);

    let body = scrape(&app).await;

    assert_eq!(
        sample(
            &body,
            r#"ephemera_http_requests_total{endpoint="/register/{client_id}",method="GET",status="401"}"#
        ),
        Some(1.0),
        "{body}"
    );
    assert_eq!(
        sample(
            &body,
            r#"ephemera_http_requests_total{endpoint="unmatched",method="GET",status="404"}"#
        ),
        Some(1.0),
        "{body}"
    );
    assert!(!body.contains(&client_id));
    assert!(!body.contains("private-looking-path"));
}

#[tokio::test]
async fn metrics_count_responses_refused_with_429() {
    let app = TestApp::spawn_with(|c| c.registration.per_minute = 1).await;
    assert_eq!(register(&app).await.status(), 201);
    assert_eq!(register(&app).await.status(), 429);

    let body = scrape(&app).await;

    assert_eq!(sample(&body, "ephemera_rate_limited_total"), Some(1.0));
    assert_eq!(
        sample(
            &body,
            r#"ephemera_http_requests_total{endpoint="/register",method="POST",status="429"}"#
        ),
        Some(1.0),
        "{body}"
    );
}

#[tokio::test]
async fn a_scrape_runs_no_query_its_gauges_are_the_last_recount() {
    let app = TestApp::spawn_with(|c| c.metrics.refresh_interval = 3600).await;
    // The background task recounts once at start-up, then not for an hour.
    for _ in 0..100 {
        if app.ctx.gauges.latest().is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    recount(&app).await;
    let before = scrape(&app).await;
    assert_eq!(
        sample(&before, "ephemera_pending_pushed_requests"),
        Some(0.0)
    );
    let at = sample(&before, "ephemera_gauges_timestamp_seconds").unwrap();
    assert!((at - app.now() as f64).abs() <= 2.0, "{at}");

    app.push_ok(Some(&registration()), &[]).await;
    // However often it is scraped, the database is not asked...
    for _ in 0..5 {
        let body = scrape(&app).await;
        assert_eq!(sample(&body, "ephemera_pending_pushed_requests"), Some(0.0));
    }
    // ...until the next recount.
    recount(&app).await;
    let after = scrape(&app).await;
    assert_eq!(
        sample(&after, "ephemera_pending_pushed_requests"),
        Some(1.0)
    );
}

#[tokio::test]
async fn the_gauges_are_recounted_in_the_background() {
    let app = TestApp::spawn_with(|c| c.metrics.refresh_interval = 1).await;
    app.push_ok(Some(&registration()), &[]).await;
    // Wait (at most 10 s) for a recount that sees the pushed request.
    let mut seen = None;
    for _ in 0..100 {
        seen = sample(&scrape(&app).await, "ephemera_pending_pushed_requests");
        if seen == Some(1.0) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(seen, Some(1.0));
}

#[tokio::test]
async fn metrics_behind_a_bearer_token_answer_only_with_it() {
    let token = "metrics-token-0123456789abcdefghijklmnop";
    let app = TestApp::spawn_with(|c| c.metrics.bearer_token = Some(token.into())).await;
    for sent in [None, Some("wrong-token-0123456789abcdefghijklmnop")] {
        let mut req = app.http.get(app.url("/metrics"));
        if let Some(t) = sent {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 401);
        assert!(res.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer"));
        assert!(!res.text().await.unwrap().contains("ephemera_"));
    }
    let res = app
        .http
        .get(app.url("/metrics"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("ephemera_http_requests_total"));
}

#[tokio::test]
async fn metrics_on_their_own_address_are_not_served_on_the_main_one() {
    let app = TestApp::spawn_with(|c| c.metrics.listen = Some("127.0.0.1:0".into())).await;
    let ops = app.operations_base.clone().unwrap();

    let main = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(main.status(), 404);
    let res = app.http.get(format!("{ops}/metrics")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let body = res.text().await.unwrap();
    assert!(body.contains("ephemera_database_up"), "{body}");
    // The main listener's traffic is what it counts.
    assert!(
        body.contains(r#"endpoint="unmatched",method="GET",status="404""#),
        "{body}"
    );
    for path in ["/healthz", "/readyz"] {
        let res = app.http.get(format!("{ops}{path}")).send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
    }
    // Nothing else is there.
    let res = app.http.get(format!("{ops}/token")).send().await.unwrap();
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn an_https_issuer_sends_hsts_and_an_http_one_does_not() {
    let (app, _dir) = crate::mtls::tls_app_with(|_| {}).await;
    for path in ["/.well-known/oauth-authorization-server", "/healthz"] {
        let res = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(
            res.headers()["strict-transport-security"],
            "max-age=31536000",
            "{path}"
        );
    }
    let plain = TestApp::spawn().await;
    let res = plain.http.get(plain.url("/healthz")).send().await.unwrap();
    assert!(res.headers().get("strict-transport-security").is_none());
}

#[tokio::test]
async fn an_https_issuer_behind_a_tls_proxy_sends_hsts_over_plain_http() {
    // Ephemera speaks plain HTTP; the proxy in front terminates TLS.
    let app = TestApp::spawn_with(|c| c.issuer = Some("https://auth.example".into())).await;
    let direct = format!("http://{}/healthz", app.config.listen);
    let res = app.http.get(direct).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["strict-transport-security"],
        "max-age=31536000"
    );
}

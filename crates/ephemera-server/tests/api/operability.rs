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

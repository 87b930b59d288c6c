//! A pushed client lives in its grant and goes with it.

use crate::helpers::*;

#[tokio::test]
async fn revoking_both_tokens_of_a_pushed_flow_erases_the_client() {
    let app = TestApp::spawn().await;
    let tokens = app.pushed_tokens(Some(&registration())).await;
    let stats = app.stats().await;
    assert_eq!(
        (
            stats.pushed_client_grants,
            stats.access_tokens,
            stats.refresh_tokens
        ),
        (1, 1, 1)
    );
    for t in ["refresh_token", "access_token"] {
        let res = app
            .post_form(
                "/revoke",
                &[("token", tokens[t].as_str().unwrap()), ("client_id", URN)],
            )
            .await;
        assert_eq!(res.status(), 200);
    }
    let stats = app.stats().await;
    assert_eq!(
        (
            stats.pushed_client_grants,
            stats.grants,
            stats.access_tokens,
            stats.refresh_tokens
        ),
        (0, 0, 0, 0)
    );
}

#[tokio::test]
async fn revoking_the_only_access_token_of_a_grant_without_refresh_erases_it() {
    let app = TestApp::spawn().await;
    let tokens = app.pushed_tokens(None).await;
    assert_eq!(app.stats().await.pushed_client_grants, 1);
    let res = app
        .post_form(
            "/revoke",
            &[
                ("token", tokens["access_token"].as_str().unwrap()),
                ("client_id", URN),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(app.stats().await.pushed_client_grants, 0);
}

#[tokio::test]
async fn the_sweeper_erases_a_pushed_client_when_its_last_token_expires() {
    let app = TestApp::spawn().await;
    app.pushed_tokens(Some(&registration())).await;
    let pending = app.push_ok(Some(&registration()), &[]).await;
    assert!(!pending.is_empty());
    let before = app.stats().await;
    assert_eq!(
        (before.pushed_client_grants, before.pending_pushed_requests),
        (1, 1)
    );

    // The access token has expired, the refresh token has not: the grant stays.
    app.advance(3601);
    ephemera_server::service::sweep::sweep(app.ctx.store.as_ref(), app.now())
        .await
        .unwrap();
    let mid = app.stats().await;
    assert_eq!(
        (
            mid.pushed_client_grants,
            mid.access_tokens,
            mid.refresh_tokens
        ),
        (1, 0, 1)
    );

    app.advance(24 * 3600);
    let report = ephemera_server::service::sweep::sweep(app.ctx.store.as_ref(), app.now())
        .await
        .unwrap();
    assert_eq!(report.grants, 1);
    let after = app.stats().await;
    assert_eq!(
        (
            after.pushed_client_grants,
            after.grants,
            after.pending_pushed_requests
        ),
        (0, 0, 0)
    );
}

#[tokio::test]
async fn an_unredeemed_code_is_swept_with_its_grant() {
    let app = TestApp::spawn().await;
    let request_uri = app.push_ok(Some(&registration()), &[]).await;
    app.authorize(URN, &request_uri).await;
    assert_eq!(app.stats().await.codes, 1);
    app.advance(61);
    ephemera_server::service::sweep::sweep(app.ctx.store.as_ref(), app.now())
        .await
        .unwrap();
    let stats = app.stats().await;
    assert_eq!((stats.codes, stats.pushed_client_grants), (0, 0));
}

#[tokio::test]
async fn when_every_token_has_ended_the_client_starts_again_with_nothing_carried_over() {
    let app = TestApp::spawn().await;
    let first = app.pushed_tokens(Some(&registration())).await;
    let first_grant = app
        .introspect(first["access_token"].as_str().unwrap())
        .await["grant_id"]
        .clone();
    app.advance(24 * 3600 + 1);
    let res = app
        .post_form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", first["refresh_token"].as_str().unwrap()),
                ("client_id", URN),
            ],
        )
        .await;
    assert_error(res, 400, "invalid_grant").await;
    let second = app.pushed_tokens(Some(&registration())).await;
    let info = app
        .introspect(second["access_token"].as_str().unwrap())
        .await;
    assert_eq!(info["active"], true);
    assert_ne!(info["grant_id"], first_grant);
}

/// Whether the database file or its WAL holds `marker` anywhere, in live
/// rows, free space or old page images alike.
pub(crate) fn files_hold(app: &TestApp, marker: &str) -> bool {
    let db = app
        .config
        .database
        .trim_start_matches("sqlite://")
        .to_owned();
    [db.clone(), format!("{db}-wal")].iter().any(|path| {
        std::fs::read(path)
            .is_ok_and(|bytes| bytes.windows(marker.len()).any(|w| w == marker.as_bytes()))
    })
}

#[tokio::test]
async fn erased_metadata_cannot_be_read_back_from_the_database_files() {
    let app = TestApp::spawn().await;
    let marker = format!("erase-me-{}", crate::keys::random_id());
    let registration = serde_json::json!({
        "client_name": marker,
        "redirect_uris": [REDIRECT],
        "grant_types": ["authorization_code", "refresh_token"],
    })
    .to_string();
    let tokens = app.pushed_tokens(Some(&registration)).await;
    assert!(files_hold(&app, &marker), "the grant was stored with it");

    let res = app
        .post_form(
            "/revoke",
            &[
                ("token", tokens["refresh_token"].as_str().unwrap()),
                ("client_id", URN),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(app.stats().await.pushed_client_grants, 0);
    // The next sweep (every `sweep_interval`) empties the WAL.
    ephemera_server::service::sweep::sweep(app.ctx.store.as_ref(), app.now())
        .await
        .unwrap();

    assert!(!files_hold(&app, &marker), "erased, yet still in the files");
}

#[tokio::test]
async fn nothing_a_client_pushed_reaches_the_database_files_before_consent() {
    let app = TestApp::spawn().await;
    let marker = format!("pending-{}", crate::keys::random_id());
    let registration = serde_json::json!({
        "client_name": marker,
        "redirect_uris": [REDIRECT],
    })
    .to_string();
    let request_uri = app.push_ok(Some(&registration), &[]).await;
    // Its page is shown (the request is opened), and a sweep runs.
    let res = app
        .http
        .get(app.authorize_url(URN, &request_uri))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains(&marker));
    ephemera_server::service::sweep::sweep(app.ctx.store.as_ref(), app.now())
        .await
        .unwrap();

    assert_eq!(app.stats().await.pending_pushed_requests, 1);
    assert!(
        !files_hold(&app, &marker),
        "a pending request reached the files"
    );
}

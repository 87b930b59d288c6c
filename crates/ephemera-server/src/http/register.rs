//! `POST /register` (RFC 7591) and `GET|PUT|DELETE /register/{client_id}` (RFC 7592).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::extract::{ClientAddress, BODY_LIMIT};
use super::{error, respond, App};
use crate::service::register::{self, RegisterError};
use crate::service::OAuthError;

/// The token of `Authorization: Bearer` (RFC 6750 §2.1).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The body must be JSON (RFC 7591 §3.1) and within the size limit.
fn json_body<'a>(headers: &HeaderMap, body: &'a Bytes) -> Result<&'a [u8], Box<Response>> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    if !essence.eq_ignore_ascii_case("application/json") {
        let e =
            OAuthError::invalid_request("Content-Type must be application/json (RFC 7591 §3.1)");
        return Err(Box::new(error::registration(RegisterError::Invalid(e))));
    }
    if body.len() > BODY_LIMIT {
        return Err(Box::new(error::body_too_large(BODY_LIMIT)));
    }
    Ok(body)
}

pub async fn create(
    State(app): State<App>,
    ClientAddress(peer): ClientAddress,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = match json_body(&headers, &body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    match register::register(&app.ctx, body, bearer(&headers), peer, app.ctx.clock.now()).await {
        Ok(info) => respond::no_store_json(StatusCode::CREATED, info),
        Err(e) => error::registration(e),
    }
}

pub async fn read(
    State(app): State<App>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    match register::read(&app.ctx, &client_id, bearer(&headers)).await {
        Ok(info) => respond::no_store_json(StatusCode::OK, info),
        Err(e) => error::registration(e),
    }
}

pub async fn update(
    State(app): State<App>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = match json_body(&headers, &body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    match register::update(
        &app.ctx,
        &client_id,
        bearer(&headers),
        body,
        app.ctx.clock.now(),
    )
    .await
    {
        Ok(info) => respond::no_store_json(StatusCode::OK, info),
        Err(e) => error::registration(e),
    }
}

pub async fn delete(
    State(app): State<App>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    match register::delete(&app.ctx, &client_id, bearer(&headers)).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => error::registration(e),
    }
}

//! `GET /userinfo` and `POST /userinfo` (OpenID Connect Core §5.3).

use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::Response;

use super::extract::PresentedToken;
use super::{error, respond, App};
use crate::service::userinfo::{self, Presentation};

pub async fn handle(
    State(app): State<App>,
    method: Method,
    headers: HeaderMap,
    presented: PresentedToken,
) -> Response {
    let now = app.ctx.clock.now();
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let presentation = Presentation {
        authorization,
        dpop: &presented.dpop,
        method: method.as_str(),
        certificate: presented.certificate.as_deref(),
    };
    match userinfo::userinfo(&app.ctx, presentation, now).await {
        Ok(claims) => respond::no_store_json(StatusCode::OK, serde_json::Value::Object(claims)),
        Err(refusal) => error::userinfo(refusal),
    }
}

//! `GET /healthz` (liveness: the process answers) and `GET /readyz`
//! (readiness: its database answers too).
//!
//! Liveness never touches the database, so an orchestrator does not restart
//! every node when the shared database is briefly away; readiness does, so a
//! load balancer sends no traffic to a node that cannot serve it.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::App;

/// `GET /healthz`: always 200 `ok` while the process serves HTTP.
pub async fn live() -> Response {
    (StatusCode::OK, "ok").into_response()
}

/// `GET /readyz`: 200 `ready` when the database answers, else 503.
pub async fn ready(State(app): State<App>) -> Response {
    match app.ctx.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(e) => {
            tracing::error!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response()
        }
    }
}

//! The per-address rate limits of `POST /par`, `GET /authorize`,
//! `POST /token` and `POST /authorize/login`, checked before the body is read. A refusal is
//! `429 Too Many Requests` with `Retry-After` in the shape of the endpoint's
//! family: RFC 6749 §5.2 JSON for the back channel, a page for the form.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::extract::client_address;
use super::{error, App};
use crate::throttle::address_key;

/// Which limit a route counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Par,
    Authorize,
    Token,
    Login,
}

/// Counts the request against its sender's address; refuses it when the
/// address has spent its count for the window. Used as
/// `from_fn_with_state((app, family), limit)` on one route.
pub async fn limit(
    State((app, family)): State<(App, Family)>,
    req: Request,
    next: Next,
) -> Response {
    let limiter = match family {
        Family::Par => app.limits.par.as_ref(),
        Family::Authorize => app.limits.authorize.as_ref(),
        Family::Token => app.limits.token.as_ref(),
        Family::Login => app.limits.login.as_ref(),
    };
    if let Some((limiter, ip)) = limiter.zip(client_address(
        req.headers(),
        req.extensions(),
        &app.trusted_proxies,
    )) {
        if let Err(retry) = limiter.hit(address_key(ip), app.ctx.clock.now()) {
            tracing::info!(%ip, ?family, "rate limited");
            return match family {
                Family::Par => error::rate_limited(
                    retry,
                    "too many pushed authorization requests from this address; retry later",
                ),
                Family::Token => error::rate_limited(
                    retry,
                    "too many token requests from this address; retry later",
                ),
                Family::Authorize => {
                    error::rate_limited_page(retry, "authorization requests from this address")
                }
                Family::Login => {
                    error::rate_limited_page(retry, "login attempts from this address")
                }
            };
        }
    }
    next.run(req).await
}

//! The fake's token exchange (RFC 8693) and JWT bearer grant (RFC 7523
//! §2.1). It plays an enterprise identity provider too: an ID token
//! ([`ID_TOKEN`]) exchanged for an ID-JAG is an assertion its own JWT
//! bearer grant then takes, as is a workload's platform JWT
//! ([`WORKLOAD_JWT`]).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::{check_dpop, error, is_svc, tokens, Binding, FakeServer, Recorded};

/// The ID token (as the identity provider issued it) the fake exchanges
/// for an ID-JAG.
pub const ID_TOKEN: &str = "id-token-of-the-user";
/// A JWT a workload's platform issued, which the JWT bearer grant takes.
pub const WORKLOAD_JWT: &str = "jwt-of-the-workload";
/// A resource the fake never issues for: `invalid_target` (RFC 8693 §2.2.2).
pub const FORBIDDEN_RESOURCE: &str = "https://forbidden.example/";

const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
const ID_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:id_token";
const ID_JAG_TYPE: &str = "urn:ietf:params:oauth:token-type:id-jag";

/// Token exchange for the confidential client `svc`: an access token the
/// fake issued for another access token (DPoP-bound to the proof's key, if
/// any), or [`ID_TOKEN`] for an ID-JAG (`token_type` `N_A`, no
/// `expires_in`).
pub fn token_exchange(fake: &FakeServer, request: &Recorded) -> Response {
    if !is_svc(request) {
        return error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    let jkt = match check_dpop(fake, request, "/token") {
        Ok(jkt) => jkt,
        Err(response) => return response,
    };
    if request.get("resource").contains(&FORBIDDEN_RESOURCE) {
        return error(StatusCode::BAD_REQUEST, "invalid_target");
    }
    let subject = request.one("subject_token");
    let mut inner = fake.inner.lock().unwrap();
    match (
        request.one("subject_token_type"),
        request.get("requested_token_type").as_slice(),
    ) {
        (ID_TOKEN_TYPE, [ID_JAG_TYPE]) if subject == ID_TOKEN => {
            inner.counter += 1;
            let id_jag = format!("id-jag-{}", inner.counter);
            inner.assertions.insert(id_jag.clone());
            Json(json!({
                "access_token": id_jag,
                "issued_token_type": ID_JAG_TYPE,
                "token_type": "N_A",
            }))
            .into_response()
        }
        (ACCESS_TOKEN_TYPE, [] | [ACCESS_TOKEN_TYPE])
            if inner.access_tokens.contains_key(subject) =>
        {
            inner.counter += 1;
            let access_token = format!("xt-{}", inner.counter);
            let token_type = if jkt.is_some() { "DPoP" } else { "Bearer" };
            let binding = Binding {
                jkt,
                ..Binding::default()
            };
            inner.access_tokens.insert(access_token.clone(), binding);
            Json(json!({
                "access_token": access_token,
                "issued_token_type": ACCESS_TOKEN_TYPE,
                "token_type": token_type,
                "expires_in": 300,
                "scope": request.get("scope").first(),
            }))
            .into_response()
        }
        _ => error(StatusCode::BAD_REQUEST, "invalid_grant"),
    }
}

/// The JWT bearer grant: an ID-JAG the fake issued (once) or
/// [`WORKLOAD_JWT`], from `svc` or from a public client naming itself.
pub fn jwt_bearer(fake: &FakeServer, request: &Recorded) -> Response {
    let claims_secret = request.authorization.is_some() || !request.get("client_secret").is_empty();
    if (claims_secret && !is_svc(request)) || request.get("client_id").len() > 1 {
        return error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    if !claims_secret && request.get("client_id").is_empty() {
        return error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    let jkt = match check_dpop(fake, request, "/token") {
        Ok(jkt) => jkt,
        Err(response) => return response,
    };
    let assertion = request.one("assertion");
    let mut inner = fake.inner.lock().unwrap();
    if assertion != WORKLOAD_JWT && !inner.assertions.remove(assertion) {
        return error(StatusCode::BAD_REQUEST, "invalid_grant");
    }
    let scope = request.get("scope").first().map(|s| s.to_string());
    let binding = Binding {
        jkt,
        ..Binding::default()
    };
    tokens(&mut inner, scope.as_deref(), binding)
}

//! The account page: a signed-in user sees every grant they made (one per
//! authorization, so each installation of a shared client apart) and
//! ends any one of them, or all at once. `GET /account`,
//! `POST /account/login`, `POST /account/revoke`, `POST /account/revoke-all`,
//! `POST /account/logout`.

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::authorize::display_text;
use super::extract::{cookie, PageForm, QueryParams};
use super::{error, respond, session_cookie, App};
use crate::model::{GrantSummary, Session, Trust};
use crate::secret::{Secret, SecretHash};
use crate::service::grants;
use crate::service::login::{self, csrf_error, csrf_token, csrf_valid};
use crate::service::pending::find_session;
use crate::service::resolve;
use crate::service::upstream;

const PATH: &str = "/account";

/// `GET /account`: the user's grants, or the sign-in form.
pub async fn get(
    State(app): State<App>,
    headers: HeaderMap,
    QueryParams(params): QueryParams,
) -> Response {
    let cookie_value = cookie(&headers, app.cookie_name());
    let now = app.ctx.clock.now();
    let session = match find_session(&app.ctx, cookie_value.as_deref(), now).await {
        Ok(s) => s,
        Err(e) => return error::error_page(e),
    };
    let (Some(session), Some(cookie_value)) = (session, cookie_value.clone()) else {
        return login_page(&app, cookie_value, None);
    };
    match grants::of_user(&app.ctx, &session, now).await {
        Ok(list) => {
            let page = AccountPage {
                username: display_text(&session.username, 80),
                grants: list.iter().map(|g| GrantView::of(&app, g)).collect(),
                csrf: csrf_token(&cookie_value),
                revoked: params.get("revoked") == Some("1"),
                revoked_all: params.get("revoked") == Some("all"),
            };
            respond::page(StatusCode::OK, &page, None)
        }
        Err(e) => error::error_page(e),
    }
}

/// `POST /account/login`.
pub async fn login(
    State(app): State<App>,
    headers: HeaderMap,
    PageForm(form): PageForm,
) -> Response {
    let cookie_value = cookie(&headers, app.cookie_name());
    let now = app.ctx.clock.now();
    // The same per-username throttle as the authorization login.
    let username = form.get("username").unwrap_or_default();
    if let Some(page) = super::login::throttled(&app, username, now) {
        return page;
    }
    match login::account_login(&app.ctx, &form, cookie_value.as_deref(), now).await {
        Ok(Some(session)) => respond::redirect(
            &format!("{}{PATH}", app.ctx.issuer),
            true,
            Some(session_cookie(&app, session.expose())),
        ),
        Ok(None) => {
            super::login::count_failure(&app, username, now);
            login_page(&app, cookie_value, Some("Wrong username or password."))
        }
        Err(e) => error::error_page(e),
    }
}

/// `POST /account/revoke`: ends one of the user's grants.
pub async fn revoke(
    State(app): State<App>,
    headers: HeaderMap,
    PageForm(form): PageForm,
) -> Response {
    let cookie_value = cookie(&headers, app.cookie_name());
    let now = app.ctx.clock.now();
    let session = match signed_in(&app, cookie_value.as_deref(), &form, now).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Some(grant_id) = form.get("grant_id") else {
        return error::error_page(crate::service::OAuthError::invalid_request(
            "the form lost its grant_id",
        ));
    };
    match grants::revoke_for_user(&app.ctx, &session, grant_id).await {
        Ok(true) => respond::redirect(&format!("{}{PATH}?revoked=1", app.ctx.issuer), true, None),
        // Not this user's, or already gone: nothing to end.
        Ok(false) => error::error_page(crate::service::OAuthError::invalid_request(
            "no such grant among yours: it may have ended already",
        )),
        Err(e) => error::error_page(e),
    }
}

/// `POST /account/revoke-all`: ends every grant of the user ("End all").
pub async fn revoke_all(
    State(app): State<App>,
    headers: HeaderMap,
    PageForm(form): PageForm,
) -> Response {
    let cookie_value = cookie(&headers, app.cookie_name());
    let now = app.ctx.clock.now();
    let session = match signed_in(&app, cookie_value.as_deref(), &form, now).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    match grants::revoke_all_for_user(&app.ctx, &session, now).await {
        Ok(0) => error::error_page(crate::service::OAuthError::invalid_request(
            "none of your grants is left to end: they may have ended already",
        )),
        Ok(_) => respond::redirect(&format!("{}{PATH}?revoked=all", app.ctx.issuer), true, None),
        Err(e) => error::error_page(e),
    }
}

/// `POST /account/logout`: ends the session.
pub async fn logout(
    State(app): State<App>,
    headers: HeaderMap,
    PageForm(form): PageForm,
) -> Response {
    let cookie_value = cookie(&headers, app.cookie_name());
    let now = app.ctx.clock.now();
    if let Err(r) = signed_in(&app, cookie_value.as_deref(), &form, now).await {
        return r;
    }
    if let Some(c) = &cookie_value {
        if let Err(e) = app.ctx.store.delete_session(&SecretHash::of(c)).await {
            return error::error_page(e.into());
        }
    }
    respond::redirect(&format!("{}{PATH}", app.ctx.issuer), true, None)
}

/// The session of a form post from the account page: its CSRF token must
/// match the browser's cookie, and the session must be live (else back to
/// the sign-in form).
async fn signed_in(
    app: &App,
    cookie_value: Option<&str>,
    form: &ephemera_proto::form::Params,
    now: i64,
) -> Result<Session, Response> {
    if !csrf_valid(cookie_value, form) {
        return Err(error::error_page(csrf_error()));
    }
    match find_session(&app.ctx, cookie_value, now).await {
        Ok(Some(s)) => Ok(s),
        Ok(None) => Err(respond::redirect(
            &format!("{}{PATH}", app.ctx.issuer),
            true,
            None,
        )),
        Err(e) => Err(error::error_page(e)),
    }
}

/// The sign-in form; gives the browser an anonymous cookie (for the CSRF
/// token) when it has none. Nothing is stored for it.
fn login_page(app: &App, cookie_value: Option<String>, message: Option<&str>) -> Response {
    let (value, set) = match cookie_value {
        Some(v) => (v, None),
        None => {
            let v = Secret::generate().into_string();
            let set = session_cookie(app, &v);
            (v, Some(set))
        }
    };
    let (providers, passwords) = upstream::offers(&app.ctx);
    let page = AccountLoginPage {
        providers,
        passwords,
        csrf: csrf_token(&value),
        message,
    };
    let status = if message.is_some() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    respond::page(status, &page, set)
}

/// One grant as the account page shows it.
pub struct GrantView {
    pub id: String,
    pub name: String,
    pub client_id: String,
    /// The client model: pre-registered, pushed, dynamically registered,
    /// metadata document.
    pub model: &'static str,
    /// Who vouches for its name.
    pub trust: &'static str,
    /// The host its metadata document came from.
    pub verified_origin: Option<String>,
    /// Nobody vouches for its name (it described itself).
    pub unverified: bool,
    /// Where its authorization response went (host and port, or the
    /// private-use scheme); `None` without one (`client_credentials`, or a
    /// grant stored before it was kept).
    pub redirect_host: Option<String>,
    pub granted_at: String,
    pub last_active: String,
    pub scopes: String,
    /// RFC 8707 resources (the audiences of its tokens).
    pub resources: Vec<String>,
    /// What its tokens are bound to, in words, and the thumbprint (what
    /// tells two installations apart best, and what
    /// `ephemera grants revoke --key` takes).
    pub key: Option<(&'static str, String)>,
    /// For a grant made by token exchange (RFC 8693): the grant it came
    /// from (ending that one ends this one) and who acts, the current
    /// actor's `sub`.
    pub exchanged: Option<(String, Option<String>)>,
}

impl GrantView {
    fn of(app: &App, summary: &GrantSummary) -> Self {
        let grant = &summary.grant;
        let client = &grant.client;
        let binding = summary.key();
        let key = match (&binding.dpop_jkt, &binding.x5t_s256) {
            (Some(jkt), _) => Some(("DPoP key", display_text(jkt, 100))),
            (None, Some(x5t)) => Some(("certificate", display_text(x5t, 100))),
            (None, None) => None,
        };
        let trust = resolve::caps(&app.ctx.policy, client).trust;
        Self {
            id: grant.id.clone(),
            name: display_text(client.name.as_deref().unwrap_or(&client.client_id), 80),
            client_id: display_text(&client.client_id, 200),
            model: client.kind.describe(),
            trust: match trust {
                Trust::Operator => "registered by this server's operator",
                Trust::VerifiedOrigin => "described by a document at its own address",
                Trust::SelfAsserted => "described by itself",
                Trust::Issuer => "vouched for by an issuer this server trusts",
                Trust::TrustAnchor => "vouched for by a federation trust anchor",
            },
            verified_origin: client.verified_origin.clone(),
            unverified: trust == Trust::SelfAsserted,
            redirect_host: grant.redirect_uri.as_deref().map(redirect_host),
            granted_at: grants::utc(grant.created_at),
            last_active: summary
                .last_issued
                .map_or_else(|| "never".to_owned(), grants::utc),
            scopes: grant.scope.to_string(),
            resources: grant
                .resources
                .iter()
                .map(|r| display_text(r, 200))
                .collect(),
            key,
            exchanged: grant.exchanged.as_ref().map(|e| {
                let actor = grant
                    .act()
                    .and_then(|a| a.get("sub"))
                    .and_then(|s| s.as_str())
                    .map(|s| display_text(s, 200));
                (display_text(&e.parent, 100), actor)
            }),
        }
    }
}

/// The host (and port) of a redirect URI, or its scheme when it has no host
/// (a private-use scheme, RFC 8252 §7.1).
fn redirect_host(uri: &str) -> String {
    let shown = match url::Url::parse(uri) {
        Ok(url) => match (url.host_str(), url.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_owned(),
            (None, _) => format!("{}:", url.scheme()),
        },
        Err(_) => uri.to_owned(),
    };
    display_text(&shown, 200)
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    username: String,
    grants: Vec<GrantView>,
    csrf: String,
    revoked: bool,
    revoked_all: bool,
}

#[derive(Template)]
#[template(path = "account_login.html")]
struct AccountLoginPage<'a> {
    providers: Vec<upstream::Offer>,
    passwords: bool,
    csrf: String,
    message: Option<&'a str>,
}

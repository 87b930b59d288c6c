//! `GET /authorize` and the two pages it leads to (login, consent).

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use ephemera_proto::redirect::{RedirectForm, RedirectUri};

use super::extract::{cookie, QueryParams};
use super::{error, respond, session_cookie, App};
use crate::model::Trust;
use crate::secret::Secret;
use crate::service::authorize::{self, Step};
use crate::service::login::csrf_token;
use crate::service::pending::Pending;
use crate::service::upstream::{self, Offer};

pub async fn get(
    State(app): State<App>,
    headers: HeaderMap,
    QueryParams(params): QueryParams,
) -> Response {
    let cookie_value = cookie(&headers, app.cookie_name());
    let now = app.ctx.clock.now();
    match authorize::authorize(&app.ctx, &params, cookie_value.as_deref(), now).await {
        Ok(Step::Redirect(location)) => respond::redirect(&location, false, None),
        Ok(Step::Login(pending)) => login_page(&app, &pending, cookie_value, None),
        Ok(Step::Consent(pending, _session)) => {
            let csrf = cookie_value.as_deref().map(csrf_token).unwrap_or_default();
            respond::page(StatusCode::OK, &ConsentPage::new(&pending, csrf), None)
        }
        Err(e) => error::authorization(e, &app.ctx.issuer, false),
    }
}

/// The login page; gives the browser an anonymous cookie (for the CSRF
/// token) when it has none. Nothing is stored for it.
pub fn login_page(
    app: &App,
    pending: &Pending,
    cookie_value: Option<String>,
    message: Option<&str>,
) -> Response {
    let (value, set) = match cookie_value {
        Some(v) => (v, None),
        None => {
            let v = Secret::generate().into_string();
            let set = session_cookie(app, &v);
            (v, Some(set))
        }
    };
    let (providers, passwords) = upstream::offers(&app.ctx);
    let page = LoginPage {
        providers,
        passwords,
        client: ClientView::of(pending),
        client_id: &pending.request.client.client_id,
        request_uri: &pending.request_uri,
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

/// What the pages show about a client. Self-asserted text is cleaned of
/// control and bidi characters and shortened; askama escapes the rest.
pub struct ClientView {
    pub name: String,
    pub pushed: bool,
    pub redirect_host: String,
    pub redirect_uri: String,
    pub client_uri: Option<String>,
    /// Each scope, with what it releases in words for the ones whose name
    /// does not say (the OpenID Connect identity scopes).
    pub scopes: Vec<(String, Option<&'static str>)>,
    /// The host a metadata document (or a federation entity's
    /// configuration) was fetched from.
    pub verified_origin: Option<String>,
    /// Its details reached the server through a trust chain to an anchor
    /// the operator trusts (OpenID Federation).
    pub federated: bool,
    /// A client that describes itself and returns only to this device
    /// (every redirect URI on loopback): the page warns that any program on
    /// the device could be the one listening (the MCP authorization
    /// specification asks for it with metadata documents).
    pub loopback_only: bool,
}

/// What an identity scope releases, as the consent page says it (OpenID
/// Connect Core §5.4); `None` for the others, whose names are the
/// operator's own words.
pub fn scope_meaning(scope: &str) -> Option<&'static str> {
    match scope {
        "openid" => Some("sign you in: your account identifier"),
        "profile" => Some("your name and profile details"),
        "email" => Some("your email address"),
        "offline_access" => Some("access while you are away"),
        _ => None,
    }
}

impl ClientView {
    pub fn of(pending: &Pending) -> Self {
        let r = &pending.request;
        // Anything not registered by the operator describes itself.
        let pushed = pending.caps.trust != Trust::Operator;
        let name = r
            .client
            .name
            .as_deref()
            .map(|n| display_text(n, 80))
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| {
                if pushed {
                    "An unnamed application".to_owned()
                } else {
                    display_text(&r.client.client_id, 80)
                }
            });
        let client_uri = r
            .client
            .metadata
            .get("client_uri")
            .and_then(|v| v.as_str())
            .map(|u| display_text(u, 120));
        let loopback = |uri: &str| {
            RedirectUri::parse(uri).is_ok_and(|u| u.form() == RedirectForm::LoopbackHttp)
        };
        let loopback_only = pushed
            && loopback(&r.redirect_uri)
            && r.client.redirect_uris.iter().all(|u| loopback(u));
        Self {
            federated: pending.caps.trust == Trust::TrustAnchor,
            loopback_only,
            name,
            pushed,
            redirect_host: RedirectUri::parse(&r.redirect_uri)
                .map(|u| display_text(&u.display_host(), 120))
                .unwrap_or_default(),
            redirect_uri: display_text(&r.redirect_uri, 200),
            client_uri,
            scopes: r
                .scope
                .iter()
                .map(|s| (s.to_owned(), scope_meaning(s)))
                .collect(),
            verified_origin: r
                .client
                .verified_origin
                .as_deref()
                .map(|o| display_text(o, 120)),
        }
    }
}

/// Removes control and bidirectional-formatting characters (which can make
/// a name read as something else) and cuts the text to `max` characters.
pub fn display_text(s: &str, max: usize) -> String {
    let cleaned: String = s
        .chars()
        .filter(|c| {
            !c.is_control()
                && !matches!(c, '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
        })
        .collect();
    if cleaned.chars().count() > max {
        let mut cut: String = cleaned.chars().take(max).collect();
        cut.push('…');
        cut
    } else {
        cleaned
    }
}

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage<'a> {
    /// "Continue with …", one per upstream provider.
    pub providers: Vec<Offer>,
    /// Whether the password form is shown.
    pub passwords: bool,
    pub client: ClientView,
    pub client_id: &'a str,
    pub request_uri: &'a str,
    pub csrf: String,
    pub message: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "consent.html")]
pub struct ConsentPage<'a> {
    pub client: ClientView,
    pub client_id: &'a str,
    pub request_uri: &'a str,
    pub csrf: String,
}

impl<'a> ConsentPage<'a> {
    pub fn new(pending: &'a Pending, csrf: String) -> Self {
        Self {
            client: ClientView::of(pending),
            client_id: &pending.request.client.client_id,
            request_uri: &pending.request_uri,
            csrf,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_text_drops_bidi_overrides_and_cuts_long_names() {
        assert_eq!(display_text("good\u{202E}gnp.exe", 80), "goodgnp.exe");
        assert_eq!(display_text("abcdef", 3), "abc…");
        assert_eq!(display_text("a\nb", 10), "ab");
    }
}

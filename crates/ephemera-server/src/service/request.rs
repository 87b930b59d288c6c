//! Validation of an authorization request for a resolved client, shared by
//! the PAR endpoint and front-channel requests of registered clients.
//!
//! The redirect URI is checked first: until it is trusted, no error may be
//! sent to it (RFC 6749 §4.1.2.1).

use ephemera_proto::error::ErrorCode;
use ephemera_proto::form::Params;
use ephemera_proto::oidc;
use ephemera_proto::pkce::CodeChallenge;
use ephemera_proto::redirect::RedirectUri;
use ephemera_proto::resource::ResourceIndicator;
use ephemera_proto::scope::Scope;

use super::{resolve, OAuthError};
use crate::model::{
    Capabilities, ClientSnapshot, KeyBinding, OidcRequest, PendingRequest, RedirectRule, Timestamp,
};
use crate::policy::Policy;

/// The longest `state` accepted.
pub const MAX_STATE_LEN: usize = 4096;

/// Why the front channel (the authorization endpoint and its forms) refused
/// a request, and where the refusal goes; `http/error.rs` answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeError {
    /// The redirect URI is missing, malformed or not the client's, or no
    /// request is known yet: the user sees an error page.
    Page(OAuthError),
    /// The redirect URI is the client's: the authorization error response
    /// goes there (RFC 6749 §4.1.2.1), with `state` and `iss` (RFC 9207).
    Redirect {
        error: OAuthError,
        redirect_uri: String,
        state: Option<String>,
    },
}

impl AuthorizeError {
    /// The error itself, for a back channel (PAR) that answers every
    /// refusal the same way.
    pub fn into_error(self) -> OAuthError {
        match self {
            Self::Page(e) | Self::Redirect { error: e, .. } => e,
        }
    }
}

impl From<OAuthError> for AuthorizeError {
    fn from(e: OAuthError) -> Self {
        Self::Page(e)
    }
}

impl From<crate::store::StoreError> for AuthorizeError {
    fn from(e: crate::store::StoreError) -> Self {
        Self::Page(e.into())
    }
}

/// Validates the authorization request `params` of `client`; the result
/// expires `ttl` seconds from `now`.
pub fn validate(
    policy: &Policy,
    client: ClientSnapshot,
    params: &Params,
    now: Timestamp,
    ttl: i64,
) -> Result<PendingRequest, AuthorizeError> {
    let caps = resolve::caps(policy, &client).into_owned();
    // RFC 6749 §4.1.2.1: a client that did not register the code flow is
    // `unauthorized_client`, sent to its redirect URI only if that is trusted.
    let refusal =
        code_flow_refusal(&client).map(|d| OAuthError::new(ErrorCode::UnauthorizedClient, d));
    let (redirect_uri, redirect_uri_sent) = match redirect_uri(policy, &client, &caps, params) {
        Ok(found) => found,
        Err(e) => return Err(AuthorizeError::Page(refusal.unwrap_or(e))),
    };
    let state = params.get("state").map(str::to_owned);
    let fail = |error: OAuthError| AuthorizeError::Redirect {
        error,
        redirect_uri: redirect_uri.clone(),
        state: state.clone(),
    };
    if let Some(refusal) = refusal {
        return Err(fail(refusal));
    }

    match params.get("response_type") {
        None => {
            return Err(fail(OAuthError::invalid_request(
                "response_type is required",
            )))
        }
        Some("code") => {}
        Some(other) => {
            return Err(fail(OAuthError::new(
                ErrorCode::UnsupportedResponseType,
                format!("response_type `{other}` is not supported; use `code`"),
            )))
        }
    }
    if let Some(mode) = params.get("response_mode") {
        if mode != "query" {
            return Err(fail(OAuthError::invalid_request(format!(
                "response_mode `{mode}` is not supported; responses use the query"
            ))));
        }
    }
    if params.contains("request") {
        return Err(fail(OAuthError::invalid_request(
            "request objects (RFC 9101) are not supported; push the parameters with PAR",
        )));
    }
    match &state {
        None if caps.state_required => {
            return Err(fail(OAuthError::invalid_request(
                "state is required for pushed clients",
            )))
        }
        Some(s) if s.len() > MAX_STATE_LEN => {
            return Err(fail(OAuthError::invalid_request(format!(
                "state is longer than {MAX_STATE_LEN} characters"
            ))))
        }
        _ => {}
    }

    let code_challenge = match (
        params.get("code_challenge"),
        params.get("code_challenge_method"),
    ) {
        (Some(c), method) => Some(
            CodeChallenge::parse(c, method)
                .map_err(|e| fail(OAuthError::invalid_request(e.to_string())))?
                .as_str()
                .to_owned(),
        ),
        (None, Some(_)) => {
            return Err(fail(OAuthError::invalid_request(
                "code_challenge_method was sent without code_challenge",
            )))
        }
        (None, None) if caps.pkce_required => {
            return Err(fail(OAuthError::invalid_request(
                pkce_required_description(&client, &caps),
            )))
        }
        (None, None) => None,
    };

    let scope = requested_scope(policy, &caps, params.get("scope")).map_err(fail)?;

    let resources = resources(policy, params.get_all("resource")).map_err(fail)?;

    let oidc = oidc_request(&caps, &scope, params).map_err(fail)?;

    Ok(PendingRequest {
        client,
        redirect_uri,
        redirect_uri_sent,
        state,
        scope,
        resources,
        code_challenge,
        key_binding: KeyBinding::default(),
        created_at: now,
        expires_at: now + ttl,
        front_channel: false,
        oidc,
    })
}

/// The OpenID Connect parameters (Core §3.1.2.1). `prompt` and `max_age`
/// are honored whatever the scope (they are about the sign-in); a client
/// whose `client_id` is shared (pushed clients) must send a `nonce` with
/// `openid`, since only the nonce ties an ID Token to its own request.
fn oidc_request(
    caps: &Capabilities,
    scope: &Scope,
    params: &Params,
) -> Result<OidcRequest, OAuthError> {
    let bad = |e: oidc::OidcParamError| OAuthError::invalid_request(e.to_string());
    let prompt = params
        .get("prompt")
        .map(oidc::Prompt::parse)
        .transpose()
        .map_err(bad)?
        .unwrap_or_default();
    let max_age = params
        .get("max_age")
        .map(oidc::parse_max_age)
        .transpose()
        .map_err(bad)?;
    let nonce = params
        .get("nonce")
        .map(oidc::parse_nonce)
        .transpose()
        .map_err(bad)?
        .map(str::to_owned);
    if nonce.is_none() && caps.shared_client_id && scope.contains(oidc::OPENID) {
        return Err(OAuthError::invalid_request(
            "nonce is required with the openid scope for pushed clients: their client_id is shared, so only the nonce binds an ID Token to this request",
        ));
    }
    // `claims`, `id_token_hint`, `login_hint`, `acr_values`, `display` and
    // `ui_locales` are ignored, as Core §5.5 and §3.1.2.1 allow.
    Ok(OidcRequest {
        nonce,
        max_age,
        prompt,
    })
}

/// Why PKCE is required of `client`, for the error a request without it gets.
pub fn pkce_required_description(client: &ClientSnapshot, caps: &Capabilities) -> &'static str {
    if caps.redirect == RedirectRule::SentWithRequest {
        "code_challenge is required: pushed clients must use PKCE with S256, whatever they authenticate with"
    } else if client.is_public() {
        "code_challenge is required: public clients must use PKCE with S256 (RFC 7636)"
    } else {
        "code_challenge is required: this server requires PKCE with S256 of every client (OAuth 2.1)"
    }
}

/// The grant types a refusal names.
fn registered(client: &ClientSnapshot) -> String {
    if client.grant_types.is_empty() {
        "none".to_owned()
    } else {
        client.grant_types.join(", ")
    }
}

/// Why `client` may not use `grant_type` (RFC 6749 §5.2
/// `unauthorized_client`), or `None` when it may: it must have registered
/// the grant type, and `client_credentials` must be open to its model.
pub fn grant_type_refusal(
    client: &ClientSnapshot,
    caps: &Capabilities,
    grant_type: &str,
) -> Option<String> {
    if !client.may_use_grant(grant_type) {
        return Some(format!(
            "this client did not register the grant type `{grant_type}` (its grant_types: {})",
            registered(client)
        ));
    }
    if grant_type == "client_credentials" && !caps.client_credentials {
        return Some(format!(
            "client_credentials is not open to {} clients on this server",
            client.kind.describe()
        ));
    }
    None
}

/// Why `client` may not use the authorization code flow (RFC 6749
/// §4.1.2.1 `unauthorized_client`), or `None`: it must have registered
/// both the response type `code` and the grant type `authorization_code`.
pub fn code_flow_refusal(client: &ClientSnapshot) -> Option<String> {
    if !client.response_types.iter().any(|t| t == "code") {
        return Some(
            "this client did not register the response type `code` (its response_types are empty)"
                .to_owned(),
        );
    }
    if !client.may_use_grant("authorization_code") {
        return Some(format!(
            "this client did not register the grant type `authorization_code` (its grant_types: {})",
            registered(client)
        ));
    }
    None
}

fn redirect_uri(
    policy: &Policy,
    client: &ClientSnapshot,
    caps: &Capabilities,
    params: &Params,
) -> Result<(String, bool), OAuthError> {
    let Some(raw) = params.get("redirect_uri") else {
        return match (caps.redirect, client.redirect_uris.as_slice()) {
            (RedirectRule::Registered, [only]) => Ok((only.clone(), false)),
            (RedirectRule::Registered, _) => Err(OAuthError::invalid_request(
                "redirect_uri is required: this client has more than one registered",
            )),
            (RedirectRule::SentWithRequest, _) => {
                Err(OAuthError::invalid_request("redirect_uri is required"))
            }
        };
    };
    let uri = RedirectUri::parse(raw).map_err(|e| OAuthError::invalid_request(e.to_string()))?;
    let registered = || {
        client
            .redirect_uris
            .iter()
            .filter_map(|r| RedirectUri::parse(r).ok())
    };
    match caps.redirect {
        RedirectRule::Registered => {
            if !registered().any(|r| uri.matches(&r)) {
                return Err(OAuthError::invalid_request(
                    "redirect_uri is not registered for this client",
                ));
            }
        }
        RedirectRule::SentWithRequest => {
            // The pushed form policy is applied here too, for a client that
            // sent no client_registration at all.
            if !client.redirect_uris.is_empty() && !registered().any(|r| uri.matches(&r)) {
                return Err(OAuthError::new(
                    ErrorCode::InvalidClientMetadata,
                    "redirect_uri is not one of client_registration.redirect_uris",
                ));
            }
            if !policy.pushed.redirect_forms.contains(&uri.form()) {
                return Err(OAuthError::invalid_request(
                    "redirect_uri must be https, http on a loopback address, or a private-use scheme",
                ));
            }
        }
    }
    Ok((raw.to_owned(), true))
}

/// Validated `resource` values (RFC 8707 §2): absolute URIs without a
/// fragment and, when the deployment lists the resources it serves, among them.
pub fn resources(policy: &Policy, raw: &[String]) -> Result<Vec<String>, OAuthError> {
    raw.iter()
        .map(|r| {
            let parsed = ResourceIndicator::parse(r)
                .map_err(|e| OAuthError::new(ErrorCode::InvalidTarget, e.to_string()))?;
            if !policy.resources.is_empty() && policy.resource(parsed.as_str()).is_none() {
                return Err(OAuthError::new(
                    ErrorCode::InvalidTarget,
                    format!("resource `{r}` is not served by this authorization server"),
                ));
            }
            Ok(parsed.as_str().to_owned())
        })
        .collect()
}

/// The scope in force: the request's, or the deployment default (RFC 6749
/// §3.3), never beyond what this client may be granted.
pub fn requested_scope(
    policy: &Policy,
    caps: &Capabilities,
    raw: Option<&str>,
) -> Result<Scope, OAuthError> {
    let allowed = |t: &str| caps.grantable_scope.contains(t);
    match raw {
        None => Scope::from_tokens(
            policy
                .default_scope
                .iter()
                .filter(|t| allowed(t))
                .map(str::to_owned),
        )
        .map_err(|e| OAuthError::new(ErrorCode::InvalidScope, e.to_string())),
        // RFC 6749 §3.3: the server may grant fewer scopes than asked (the
        // token response then says which). Clients that ask for every scope
        // a server publishes get those they may have; a request for none
        // of them is refused, naming one.
        Some(raw) => {
            let scope = Scope::parse(raw)
                .map_err(|e| OAuthError::new(ErrorCode::InvalidScope, e.to_string()))?;
            let granted = Scope::from_tokens(
                scope
                    .iter()
                    .filter(|t| policy.scopes_supported.contains(t) && allowed(t))
                    .map(str::to_owned),
            )
            .map_err(|e| OAuthError::new(ErrorCode::InvalidScope, e.to_string()))?;
            if !granted.is_empty() {
                return Ok(granted);
            }
            if let Some(t) = scope.iter().find(|t| !policy.scopes_supported.contains(t)) {
                return Err(OAuthError::new(
                    ErrorCode::InvalidScope,
                    format!("scope `{t}` does not exist here"),
                ));
            }
            let refused = scope.iter().next().map(|t| {
                OAuthError::new(
                    ErrorCode::InvalidScope,
                    format!("scope `{t}` is not available to this client"),
                )
            });
            match refused {
                Some(e) => Err(e),
                None => Ok(granted),
            }
        }
    }
}

/// RFC 6749 §5.2 `unauthorized_client`: the client registered no such grant
/// type, or policy closes it to the client's model.
pub fn grant_type_allowed(
    ctx: &super::Context,
    client: &ClientSnapshot,
    grant_type: &str,
) -> Result<(), OAuthError> {
    let caps = resolve::caps(&ctx.policy, client);
    match grant_type_refusal(client, &caps, grant_type) {
        Some(d) => Err(OAuthError::new(ErrorCode::UnauthorizedClient, d)),
        None => Ok(()),
    }
}

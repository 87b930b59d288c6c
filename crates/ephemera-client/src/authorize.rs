//! The authorization request and its answer: the PAR form with PKCE and
//! `state` (RFC 9126, RFC 7636), the authorization URL that carries only
//! `client_id` and `request_uri` (RFC 9126 §4) or, for a server without a
//! PAR endpoint, the whole request (RFC 6749 §4.1.1), and the checks on the
//! redirect back (RFC 6749 §4.1.2, RFC 9207).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ephemera_proto::error::{ErrorCode, ErrorResponse};
use ephemera_proto::pkce::CodeVerifier;
use rand::RngCore as _;
use url::Url;

use crate::error::{Error, Result};
use crate::identity::{ClientIdentity, Form};

/// What the client asks for. `state` and PKCE are added by
/// [`AuthorizationServer::push`](crate::AuthorizationServer::push),
/// [`authorize`](crate::AuthorizationServer::authorize) or
/// [`begin`](crate::AuthorizationServer::begin).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizationRequest {
    /// Where the authorization server sends the user back.
    pub redirect_uri: String,
    /// The scope asked for (RFC 6749 §3.3), space-separated.
    pub scope: Option<String>,
    /// Resource indicators (RFC 8707 §2), one `resource` parameter each;
    /// sent again on the token request (§2.2).
    pub resources: Vec<String>,
    /// Further parameters, appended to the PAR body as they are (also useful
    /// to send a deliberately odd request in tests).
    pub extra: Vec<(String, String)>,
}

impl AuthorizationRequest {
    /// A request with only a `redirect_uri`.
    pub fn new(redirect_uri: impl Into<String>) -> Self {
        Self {
            redirect_uri: redirect_uri.into(),
            ..Self::default()
        }
    }

    /// Sets `scope`.
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// Sets `scope`, or leaves it out for `None` (MCP: a client with no
    /// scope to ask for omits the parameter).
    pub fn maybe_scope(mut self, scope: Option<String>) -> Self {
        self.scope = scope;
        self
    }

    /// Adds a `resource`.
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.resources.push(resource.into());
        self
    }

    /// Adds an extra parameter.
    pub fn param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.extra.push((name.into(), value.into()));
        self
    }
}

/// An authorization request waiting for the user: send them to
/// `authorization_url`, then hand the redirect back to
/// [`code`](Self::code).
#[derive(Debug)]
pub struct PendingAuthorization {
    /// The `request_uri` the PAR endpoint issued (RFC 9126 §2.2); empty for
    /// a request sent whole in the authorization URL (no PAR endpoint).
    pub request_uri: String,
    /// Seconds the `request_uri` stays valid (0 without one).
    pub expires_in: u64,
    /// `authorization_endpoint?client_id=…&request_uri=…`, or with the
    /// whole request for a server without PAR.
    pub authorization_url: Url,
    /// The `state` sent; the redirect must bring it back.
    pub state: String,
    /// The PKCE verifier whose S256 challenge was sent.
    pub code_verifier: CodeVerifier,
    /// The `redirect_uri` sent, sent again at the token endpoint.
    pub redirect_uri: String,
    /// The `client_id` sent (the dynamic URN for a pushed client).
    pub client_id: String,
    /// The client that sent the request; it redeems the code, with the
    /// same client authentication and DPoP key.
    pub identity: ClientIdentity,
    /// The issuer the request went to: the `iss` the redirect must carry
    /// (RFC 9207 §2.4).
    pub issuer: String,
    /// Whether the redirect must carry `iss`: the server says it sends it
    /// (`authorization_response_iss_parameter_supported`, RFC 9207 §3).
    pub iss_required: bool,
    /// The scope asked for.
    pub scope: Option<String>,
    /// The resources asked for (RFC 8707), sent again on the token request.
    pub resources: Vec<String>,
}

impl PendingAuthorization {
    /// Checks the redirect back to `redirect_uri` and returns the `code`.
    ///
    /// In order: `state` must equal ours (RFC 6749 §10.12), then `iss`, when
    /// present, must equal the issuer the request went to (RFC 9207 §2.4),
    /// and it must be present when that server said it sends it (§2.4 with
    /// `authorization_response_iss_parameter_supported`, §3); only then is
    /// `error` read (RFC 6749 §4.1.2.1): a response that fails the first two
    /// checks did not come from our authorization server for this request
    /// and is not trusted even to report an error. Each parameter may appear
    /// at most once (RFC 6749 §3.1).
    pub fn code(&self, callback_url: &str) -> Result<String> {
        check_callback(self, callback_url, &self.issuer, self.iss_required)
    }

    /// [`code`](Self::code) with `expected_issuer` instead of the one the
    /// request went to, and `iss` required whatever the server advertised
    /// (Ephemera always sends it).
    pub fn code_from_callback(&self, callback_url: &str, expected_issuer: &str) -> Result<String> {
        check_callback(self, callback_url, expected_issuer, true)
    }

    /// The redirect back, from an authorization server that answers without
    /// a person (a grant approved beforehand, a test server): requests the
    /// [`authorization_url`](Self::authorization_url) as a user agent with
    /// no user would, follows up to [`MAX_REDIRECTS`] redirects, and returns
    /// the first one to `redirect_uri` (same origin and path) without
    /// requesting it, ready for [`code`](Self::code). Any other answer (a
    /// login page, an error) is a [`Error::Protocol`]: a person is needed.
    /// `http` must not follow redirects itself (see
    /// [`default_http_client`](crate::server::default_http_client)).
    pub async fn follow_redirects(&self, http: &reqwest::Client) -> Result<String> {
        let back = Url::parse(&self.redirect_uri)
            .map_err(|e| Error::protocol(format!("redirect_uri is not a URL: {e}")))?;
        let mut current = self.authorization_url.clone();
        for _ in 0..MAX_REDIRECTS {
            let response = http.get(current.clone()).send().await?;
            let status = response.status();
            if !status.is_redirection() {
                return Err(Error::protocol(format!(
                    "{current} answered HTTP {}, not a redirect: the authorization needs a person",
                    status.as_u16()
                )));
            }
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| {
                    Error::protocol(format!("{current} redirected without a Location"))
                })?;
            let next = current
                .join(location)
                .map_err(|e| Error::protocol(format!("Location {location:?} is not a URL: {e}")))?;
            if next.origin() == back.origin() && next.path() == back.path() {
                return Ok(next.into());
            }
            current = next;
        }
        Err(Error::protocol(format!(
            "no redirect to {} after {MAX_REDIRECTS} redirects",
            self.redirect_uri
        )))
    }
}

/// How many redirects [`PendingAuthorization::follow_redirects`] follows.
pub const MAX_REDIRECTS: usize = 10;

fn check_callback(
    pending: &PendingAuthorization,
    callback_url: &str,
    expected_issuer: &str,
    iss_required: bool,
) -> Result<String> {
    let url = Url::parse(callback_url)
        .map_err(|e| Error::protocol(format!("callback URL is not a URL: {e}")))?;
    let params = CallbackParams::parse(&url)?;

    match params.state.as_deref() {
        Some(state) if state == pending.state => {}
        Some(_) => return Err(Error::protocol("state in the callback does not match")),
        None => return Err(Error::protocol("callback has no state")),
    }
    match params.iss.as_deref() {
        Some(iss) if iss == expected_issuer => {}
        Some(iss) => {
            return Err(Error::protocol(format!(
                "iss in the callback is {iss:?}, expected {expected_issuer:?} (RFC 9207)"
            )))
        }
        None if iss_required => return Err(Error::protocol("callback has no iss (RFC 9207)")),
        None => {}
    }
    if let Some(error) = params.error {
        let code: ErrorCode = serde_json::from_value(serde_json::Value::String(error.clone()))
            .map_err(|_| {
                Error::protocol(format!("authorization failed with unknown error {error:?}"))
            })?;
        return Err(Error::Authorization(ErrorResponse {
            error: code,
            error_description: params.error_description,
        }));
    }
    match params.code {
        Some(code) if !code.is_empty() => Ok(code),
        _ => Err(Error::protocol("callback has neither code nor error")),
    }
}

/// The parameters of an authorization response that matter to us.
#[derive(Default)]
struct CallbackParams {
    code: Option<String>,
    state: Option<String>,
    iss: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

impl CallbackParams {
    fn parse(url: &Url) -> Result<Self> {
        let mut params = Self::default();
        for (name, value) in url.query_pairs() {
            let slot = match name.as_ref() {
                "code" => &mut params.code,
                "state" => &mut params.state,
                "iss" => &mut params.iss,
                "error" => &mut params.error,
                "error_description" => &mut params.error_description,
                _ => continue,
            };
            if slot.is_some() {
                return Err(Error::protocol(format!("callback repeats {name}")));
            }
            *slot = Some(value.into_owned());
        }
        Ok(params)
    }
}

/// 32 random bytes, base64url: an unguessable `state`.
pub(crate) fn random_state() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A fresh PKCE verifier: 32 random bytes give the 43-character base64url
/// verifier RFC 7636 §4.1 recommends.
pub(crate) fn random_verifier() -> Result<CodeVerifier> {
    CodeVerifier::parse(&random_state())
        .map_err(|e| Error::protocol(format!("generated verifier was refused: {e}")))
}

/// The PAR body (RFC 9126 §2.1) and the `Authorization` header, if the
/// client authenticates with one. A client assertion in it is for
/// `audience` and fresh: build the form again for a retry.
pub(crate) fn par_form(
    identity: &ClientIdentity,
    request: &AuthorizationRequest,
    state: &str,
    verifier: &CodeVerifier,
    audience: &str,
) -> Result<(Form, Option<String>)> {
    let mut form = Vec::new();
    let authorization = identity.authenticate(&mut form, audience)?;
    if let Some(registration) = identity.registration() {
        let text = serde_json::to_string(registration)
            .map_err(|e| Error::protocol(format!("client_registration is not JSON: {e}")))?;
        form.push(("client_registration".into(), text));
    }
    request_params(&mut form, request, state, verifier);
    Ok((form, authorization))
}

/// The authorization URL of a request sent whole (RFC 6749 §4.1.1 with
/// PKCE, RFC 7636 §4.3): `client_id` and every parameter in the query of
/// `authorization_endpoint`, keeping any query it has. No client
/// authentication travels in the front channel.
pub(crate) fn classic_authorization_url(
    endpoint: &str,
    client_id: &str,
    request: &AuthorizationRequest,
    state: &str,
    verifier: &CodeVerifier,
) -> Result<Url> {
    let mut url = Url::parse(endpoint)
        .map_err(|e| Error::protocol(format!("authorization_endpoint is not a URL: {e}")))?;
    let mut form = vec![("client_id".to_owned(), client_id.to_owned())];
    request_params(&mut form, request, state, verifier);
    url.query_pairs_mut().extend_pairs(form);
    Ok(url)
}

/// The parameters of an authorization request, pushed or not.
fn request_params(
    form: &mut Form,
    request: &AuthorizationRequest,
    state: &str,
    verifier: &CodeVerifier,
) {
    form.push(("response_type".into(), "code".into()));
    form.push(("redirect_uri".into(), request.redirect_uri.clone()));
    form.push(("state".into(), state.into()));
    form.push((
        "code_challenge".into(),
        verifier.challenge().as_str().into(),
    ));
    form.push(("code_challenge_method".into(), "S256".into()));
    if let Some(scope) = &request.scope {
        form.push(("scope".into(), scope.clone()));
    }
    for resource in &request.resources {
        form.push(("resource".into(), resource.clone()));
    }
    form.extend(request.extra.iter().cloned());
}

/// `authorization_endpoint` with `client_id` and `request_uri` appended,
/// keeping any query the endpoint already has (RFC 6749 §3.1).
pub(crate) fn authorization_url(endpoint: &str, client_id: &str, request_uri: &str) -> Result<Url> {
    let mut url = Url::parse(endpoint)
        .map_err(|e| Error::protocol(format!("authorization_endpoint is not a URL: {e}")))?;
    url.query_pairs_mut()
        .append_pair("client_id", client_id)
        .append_pair("request_uri", request_uri);
    Ok(url)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::ClientKey;
    use ephemera_proto::assertion::{self, parse_jwks, Expectations, JWT_BEARER_ASSERTION};
    use ephemera_proto::PUSHED_CLIENT_URN;

    const ISSUER: &str = "http://127.0.0.1:8080";

    fn pending(state: &str) -> PendingAuthorization {
        PendingAuthorization {
            request_uri: "urn:ietf:params:oauth:request_uri:abc".into(),
            expires_in: 60,
            authorization_url: Url::parse("http://127.0.0.1:8080/authorize").unwrap(),
            state: state.into(),
            code_verifier: random_verifier().unwrap(),
            redirect_uri: "http://127.0.0.1:9999/callback".into(),
            client_id: PUSHED_CLIENT_URN.into(),
            identity: ClientIdentity::pushed(serde_json::json!({})),
            issuer: ISSUER.into(),
            iss_required: true,
            scope: None,
            resources: Vec::new(),
        }
    }

    fn callback(query: &str) -> String {
        format!("http://127.0.0.1:9999/callback?{query}")
    }

    #[test]
    fn state_and_verifier_are_43_base64url_characters_and_differ_each_time() {
        let (a, b) = (random_state(), random_state());
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        assert_eq!(random_verifier().unwrap().secret().len(), 43);
    }

    #[test]
    fn authorization_url_carries_only_client_id_and_request_uri_encoded() {
        let url = authorization_url(
            "http://127.0.0.1:8080/authorize",
            PUSHED_CLIENT_URN,
            "urn:ietf:params:oauth:request_uri:a+b",
        )
        .unwrap();
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:8080/authorize?client_id=urn%3Aietf%3Aoauth%3Aparameters%3Adynamic\
             &request_uri=urn%3Aietf%3Aparams%3Aoauth%3Arequest_uri%3Aa%2Bb"
        );
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        assert_eq!(pairs[1].1, "urn:ietf:params:oauth:request_uri:a+b");
    }

    #[test]
    fn authorization_url_keeps_an_existing_query() {
        let url = authorization_url("http://as.example/authorize?tenant=x", "c", "r").unwrap();
        assert_eq!(
            url.as_str(),
            "http://as.example/authorize?tenant=x&client_id=c&request_uri=r"
        );
    }

    #[test]
    fn par_form_of_a_pushed_client_carries_its_registration_and_pkce() {
        let verifier = random_verifier().unwrap();
        let registration = serde_json::json!({"client_name": "agent", "redirect_uris": ["x"]});
        let request = AuthorizationRequest::new("http://127.0.0.1:9999/callback")
            .scope("read write")
            .resource("https://api.example/a")
            .resource("https://api.example/b")
            .param("prompt", "consent");
        let (form, header) = par_form(
            &ClientIdentity::pushed(registration.clone()),
            &request,
            "st",
            &verifier,
            ISSUER,
        )
        .unwrap();
        assert_eq!(header, None);
        let get = |name: &str| -> Vec<&str> {
            form.iter()
                .filter(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                .collect()
        };
        assert_eq!(get("client_id"), [PUSHED_CLIENT_URN]);
        let sent: serde_json::Value = serde_json::from_str(get("client_registration")[0]).unwrap();
        assert_eq!(sent, registration);
        assert_eq!(get("response_type"), ["code"]);
        assert_eq!(get("redirect_uri"), ["http://127.0.0.1:9999/callback"]);
        assert_eq!(get("state"), ["st"]);
        assert_eq!(get("code_challenge"), [verifier.challenge().as_str()]);
        assert_eq!(get("code_challenge_method"), ["S256"]);
        assert_eq!(get("scope"), ["read write"]);
        assert_eq!(
            get("resource"),
            ["https://api.example/a", "https://api.example/b"]
        );
        assert_eq!(get("prompt"), ["consent"]);
    }

    #[test]
    fn par_form_of_a_registered_client_has_no_registration() {
        let verifier = random_verifier().unwrap();
        let request = AuthorizationRequest::new("https://app.example/cb");
        let (form, _) = par_form(
            &ClientIdentity::public("app"),
            &request,
            "st",
            &verifier,
            ISSUER,
        )
        .unwrap();
        assert!(form
            .iter()
            .all(|(k, _)| k != "client_registration" && k != "scope"));
    }

    #[test]
    fn par_form_of_a_pushed_client_with_a_key_carries_jwks_and_an_assertion() {
        let verifier = random_verifier().unwrap();
        let key = ClientKey::generate();
        let identity = ClientIdentity::pushed_with_key(
            serde_json::json!({"client_name": "agent", "redirect_uris": ["x"]}),
            key.clone(),
        );
        let request = AuthorizationRequest::new("http://127.0.0.1:9999/callback");

        let (form, header) = par_form(&identity, &request, "st", &verifier, ISSUER).unwrap();

        assert_eq!(header, None);
        let get = |name: &str| -> Vec<&str> {
            form.iter()
                .filter(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                .collect()
        };
        let sent: serde_json::Value = serde_json::from_str(get("client_registration")[0]).unwrap();
        assert_eq!(sent["jwks"], key.jwks());
        assert_eq!(sent["token_endpoint_auth_method"], "private_key_jwt");
        assert_eq!(sent["client_name"], "agent");
        assert_eq!(get("client_id"), [PUSHED_CLIENT_URN]);
        assert_eq!(get("client_assertion_type"), [JWT_BEARER_ASSERTION]);
        let keys = parse_jwks(&sent["jwks"]).unwrap();
        let expect = Expectations {
            client_id: PUSHED_CLIENT_URN,
            issuer: ISSUER,
            now: crate::keys::now(),
            max_lifetime: 60,
            leeway: 5,
        };
        assert!(assertion::verify(get("client_assertion")[0], &keys, &expect).is_ok());
    }

    #[test]
    fn a_matching_callback_yields_the_code() {
        let code = pending("abc")
            .code_from_callback(
                &callback("code=c0de&state=abc&iss=http%3A%2F%2F127.0.0.1%3A8080"),
                ISSUER,
            )
            .unwrap();
        assert_eq!(code, "c0de");
    }

    #[test]
    fn a_callback_with_another_state_is_refused() {
        let result = pending("abc").code_from_callback(&callback("code=c&state=xyz&iss=x"), ISSUER);
        assert!(matches!(result, Err(Error::Protocol(m)) if m.contains("state")));
        let result = pending("abc").code_from_callback(&callback("code=c"), ISSUER);
        assert!(matches!(result, Err(Error::Protocol(m)) if m.contains("state")));
    }

    #[test]
    fn a_callback_from_another_issuer_or_without_iss_is_refused() {
        let other = callback("code=c&state=abc&iss=http%3A%2F%2Fevil.example");
        let result = pending("abc").code_from_callback(&other, ISSUER);
        assert!(matches!(result, Err(Error::Protocol(m)) if m.contains("iss")));
        let missing = callback("code=c&state=abc");
        let result = pending("abc").code_from_callback(&missing, ISSUER);
        assert!(matches!(result, Err(Error::Protocol(m)) if m.contains("iss")));
    }

    #[test]
    fn without_the_servers_promise_a_missing_iss_is_accepted_but_a_wrong_one_is_not() {
        let mut classic = pending("abc");
        classic.iss_required = false;
        assert_eq!(classic.code(&callback("code=c1&state=abc")).unwrap(), "c1");
        let wrong = callback("code=c1&state=abc&iss=http%3A%2F%2Fevil.example");
        assert!(matches!(classic.code(&wrong), Err(Error::Protocol(m)) if m.contains("iss")));
        let promised = pending("abc");
        assert!(matches!(
            promised.code(&callback("code=c1&state=abc")),
            Err(Error::Protocol(m)) if m.contains("iss")
        ));
    }

    #[test]
    fn a_classic_authorization_url_carries_the_whole_request() {
        let verifier = random_verifier().unwrap();
        let request = AuthorizationRequest::new("http://127.0.0.1:9999/callback")
            .scope("read")
            .resource("https://mcp.example/mcp");
        let url = classic_authorization_url(
            "https://as.example/authorize?tenant=x",
            "app",
            &request,
            "st",
            &verifier,
        )
        .unwrap();
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        let get = |name: &str| -> Vec<&str> {
            pairs
                .iter()
                .filter(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                .collect()
        };
        assert_eq!(get("tenant"), ["x"]);
        assert_eq!(get("client_id"), ["app"]);
        assert_eq!(get("response_type"), ["code"]);
        assert_eq!(get("redirect_uri"), ["http://127.0.0.1:9999/callback"]);
        assert_eq!(get("state"), ["st"]);
        assert_eq!(get("code_challenge"), [verifier.challenge().as_str()]);
        assert_eq!(get("code_challenge_method"), ["S256"]);
        assert_eq!(get("scope"), ["read"]);
        assert_eq!(get("resource"), ["https://mcp.example/mcp"]);
        assert!(get("client_secret").is_empty() && get("client_registration").is_empty());
    }

    #[test]
    fn an_error_callback_becomes_an_authorization_error() {
        let url = callback(
            "error=access_denied&error_description=the+user+said+no&state=abc&iss=http%3A%2F%2F127.0.0.1%3A8080",
        );
        let result = pending("abc").code_from_callback(&url, ISSUER);
        match result {
            Err(Error::Authorization(body)) => {
                assert_eq!(body.error, ErrorCode::AccessDenied);
                assert_eq!(body.error_description.as_deref(), Some("the user said no"));
            }
            other => panic!("expected an authorization error, got {other:?}"),
        }
    }

    #[test]
    fn an_error_callback_with_a_wrong_state_is_not_trusted() {
        let url = callback("error=access_denied&state=nope&iss=http%3A%2F%2F127.0.0.1%3A8080");
        let result = pending("abc").code_from_callback(&url, ISSUER);
        assert!(matches!(result, Err(Error::Protocol(_))));
    }

    #[test]
    fn an_unknown_error_code_or_a_repeated_parameter_is_a_protocol_error() {
        let iss = "iss=http%3A%2F%2F127.0.0.1%3A8080";
        let url = callback(&format!("error=made_up&state=abc&{iss}"));
        assert!(matches!(
            pending("abc").code_from_callback(&url, ISSUER),
            Err(Error::Protocol(_))
        ));
        let url = callback(&format!("code=a&code=b&state=abc&{iss}"));
        assert!(matches!(
            pending("abc").code_from_callback(&url, ISSUER),
            Err(Error::Protocol(_))
        ));
        let url = callback(&format!("state=abc&{iss}"));
        assert!(matches!(
            pending("abc").code_from_callback(&url, ISSUER),
            Err(Error::Protocol(_))
        ));
    }
}

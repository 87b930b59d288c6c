//! [`AuthorizationServer`]: discovery (RFC 8414, then OpenID Connect
//! Discovery, in the order MCP gives) and every back-channel call (PAR,
//! token with each grant, token exchange, registration, revocation,
//! introspection), with the DPoP proof of the client's key and the
//! server's DPoP nonce (RFC 9449 §8); and the authorization request sent
//! whole when the server has no PAR endpoint.

use std::sync::{Arc, Mutex};

use ephemera_proto::error::ErrorResponse;
use ephemera_proto::wire::{
    AuthorizationServerMetadata, IntrospectionResponse, PushedAuthorizationResponse, TokenResponse,
};
use serde::de::DeserializeOwned;
use url::Url;

use crate::authorize::{
    authorization_url, classic_authorization_url, par_form, random_state, random_verifier,
    AuthorizationRequest, PendingAuthorization,
};
use crate::dpop::{self, DpopKey, DPOP_HEADER};
use crate::error::{Error, Result};
use crate::exchange::{TokenExchangeRequest, TokenExchangeResponse};
use crate::identity::{basic_authorization, ClientIdentity, Form};

/// The `grant_type` of a JWT used as an authorization grant (RFC 7523 §2.1).
pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// An authorization server, known by its metadata.
///
/// It also remembers the last `DPoP-Nonce` the server sent (RFC 9449 §8.2:
/// the client uses the latest one until it gets another) and puts it in every
/// later proof; clones share it.
#[derive(Debug, Clone)]
pub struct AuthorizationServer {
    http: reqwest::Client,
    metadata: AuthorizationServerMetadata,
    dpop_nonce: Arc<Mutex<Option<String>>>,
}

pub use crate::http::default_http_client;

/// Where RFC 8414 §3.1 puts the metadata of `issuer`: the well-known suffix
/// goes between the host and any path of the issuer.
pub fn well_known_url(issuer: &str) -> Result<Url> {
    let (url, path) = issuer_url(issuer)?;
    Ok(with_path(
        &url,
        &format!("/.well-known/oauth-authorization-server{path}"),
    ))
}

/// Every URL the metadata of `issuer` may be at, in the order MCP
/// (2025-11-25, "Authorization Server Metadata Discovery") tries them. For
/// an issuer with a path (`https://as.example/tenant`): RFC 8414 with the
/// path inserted (`/.well-known/oauth-authorization-server/tenant`), OpenID
/// Connect Discovery with the path inserted
/// (`/.well-known/openid-configuration/tenant`), then with it appended
/// (`/tenant/.well-known/openid-configuration`, OpenID Connect Discovery
/// 1.0 §4). Without a path: `/.well-known/oauth-authorization-server`, then
/// `/.well-known/openid-configuration`.
pub fn metadata_urls(issuer: &str) -> Result<Vec<Url>> {
    let (url, path) = issuer_url(issuer)?;
    let mut urls = vec![
        with_path(
            &url,
            &format!("/.well-known/oauth-authorization-server{path}"),
        ),
        with_path(&url, &format!("/.well-known/openid-configuration{path}")),
    ];
    if !path.is_empty() {
        urls.push(with_path(
            &url,
            &format!("{path}/.well-known/openid-configuration"),
        ));
    }
    Ok(urls)
}

/// `issuer` parsed, and its path without a trailing `/` (empty for none).
fn issuer_url(issuer: &str) -> Result<(Url, String)> {
    let url =
        Url::parse(issuer).map_err(|e| Error::protocol(format!("issuer is not a URL: {e}")))?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Error::protocol(
            "issuer must have no query or fragment (RFC 8414 §2)",
        ));
    }
    let path = url.path().trim_end_matches('/').to_owned();
    Ok((url, path))
}

fn with_path(url: &Url, path: &str) -> Url {
    let mut url = url.clone();
    url.set_path(path);
    url
}

impl AuthorizationServer {
    /// Fetches the metadata of `issuer` with [`default_http_client`].
    pub async fn discover(issuer: &str) -> Result<Self> {
        Self::discover_with(default_http_client(), issuer).await
    }

    /// Fetches the metadata of `issuer` with the given HTTP client and checks
    /// that it names the same issuer (RFC 8414 §3.3), which stops one server
    /// from impersonating another.
    ///
    /// The URLs of [`metadata_urls`] are tried in turn: a 4xx answer moves
    /// on to the next, anything else but 200 (a 5xx, no connection) is an
    /// error, and so is metadata naming another issuer, wherever it was
    /// found.
    ///
    /// The client is used for every later call: for mutual TLS (RFC 8705)
    /// pass one made by [`http_client`](crate::http::http_client) with the
    /// client certificate, so every request presents it.
    pub async fn discover_with(http: reqwest::Client, issuer: &str) -> Result<Self> {
        let mut tried = Vec::new();
        for url in metadata_urls(issuer)? {
            let response = http
                .get(url.clone())
                .header(reqwest::header::ACCEPT, "application/json")
                .send()
                .await?;
            let status = response.status().as_u16();
            if (400..500).contains(&status) {
                tried.push(format!("{url} ({status})"));
                continue;
            }
            let body = response.bytes().await?;
            let metadata: AuthorizationServerMetadata = interpret(status, &body, 200)?;
            if metadata.issuer != issuer {
                return Err(Error::protocol(format!(
                    "metadata at {url} names issuer {:?}, expected {issuer:?} (RFC 8414 §3.3)",
                    metadata.issuer
                )));
            }
            return Ok(Self::from_metadata(http, metadata));
        }
        Err(Error::protocol(format!(
            "no metadata for issuer {issuer:?}: tried {}",
            tried.join(", ")
        )))
    }

    /// A server whose metadata is already known.
    pub fn from_metadata(http: reqwest::Client, metadata: AuthorizationServerMetadata) -> Self {
        Self {
            http,
            metadata,
            dpop_nonce: Arc::default(),
        }
    }

    pub fn metadata(&self) -> &AuthorizationServerMetadata {
        &self.metadata
    }

    pub fn issuer(&self) -> &str {
        &self.metadata.issuer
    }

    /// The HTTP client used for every call. Send resource requests with it
    /// too when it presents a client certificate: a certificate-bound
    /// access token (RFC 8705 §3) works only over such a connection.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The last `DPoP-Nonce` this server sent, which the next proof carries.
    pub fn dpop_nonce(&self) -> Option<String> {
        self.dpop_nonce
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn remember_dpop_nonce(&self, nonce: String) {
        *self
            .dpop_nonce
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(nonce);
    }

    /// Pushes an authorization request (RFC 9126) with a fresh `state` and
    /// PKCE S256 challenge, and returns what the redirect back is checked
    /// against. A pushed client sends its metadata as `client_registration`;
    /// an identity with a DPoP key sends a `DPoP` proof, which binds the
    /// grant to that key (RFC 9449 §10.1).
    pub async fn push(
        &self,
        identity: &ClientIdentity,
        request: AuthorizationRequest,
    ) -> Result<PendingAuthorization> {
        let endpoint = required(
            &self.metadata.pushed_authorization_request_endpoint,
            "pushed_authorization_request_endpoint",
        )?;
        let state = random_state();
        let code_verifier = random_verifier()?;
        let issuer = self.issuer();
        // RFC 9126 §2.2: success is 201 Created.
        let pushed: PushedAuthorizationResponse = self
            .post_form(endpoint, identity.dpop_key(), 201, || {
                par_form(identity, &request, &state, &code_verifier, issuer)
            })
            .await?;
        let client_id = identity.client_id().to_owned();
        let authorization_url = authorization_url(
            &self.metadata.authorization_endpoint,
            &client_id,
            &pushed.request_uri,
        )?;
        Ok(self.pending(
            identity,
            request,
            (pushed.request_uri, pushed.expires_in),
            authorization_url,
            state,
            code_verifier,
        ))
    }

    /// Prepares an authorization request sent whole in the authorization
    /// URL (RFC 6749 §4.1.1), for a server without a PAR endpoint: a fresh
    /// `state` and PKCE S256 challenge (RFC 7636 §4.3), `scope` and
    /// `resource` (RFC 8707 §2) as asked, and `dpop_jkt` for an identity
    /// with a DPoP key (RFC 9449 §10), which binds the code to that key.
    /// Nothing is sent: open the URL. A pushed client needs PAR and is
    /// refused.
    pub fn authorize(
        &self,
        identity: &ClientIdentity,
        mut request: AuthorizationRequest,
    ) -> Result<PendingAuthorization> {
        if identity.registration().is_some() {
            return Err(Error::protocol(
                "a pushed client registers inside a PAR: the server has no PAR endpoint",
            ));
        }
        if let Some(key) = identity.dpop_key() {
            request
                .extra
                .push(("dpop_jkt".to_owned(), key.jkt().to_owned()));
        }
        let state = random_state();
        let code_verifier = random_verifier()?;
        let client_id = identity.client_id().to_owned();
        let authorization_url = classic_authorization_url(
            &self.metadata.authorization_endpoint,
            &client_id,
            &request,
            &state,
            &code_verifier,
        )?;
        Ok(self.pending(
            identity,
            request,
            (String::new(), 0),
            authorization_url,
            state,
            code_verifier,
        ))
    }

    /// Starts an authorization request the way this server takes it:
    /// pushed ([`push`](Self::push)) when it has a PAR endpoint, else sent
    /// whole ([`authorize`](Self::authorize)). Either way with PKCE S256,
    /// which MCP (2025-11-25, "Authorization Code Protection") requires:
    /// a server whose metadata does not list `S256` in
    /// `code_challenge_methods_supported` is refused before anything is sent.
    pub async fn begin(
        &self,
        identity: &ClientIdentity,
        request: AuthorizationRequest,
    ) -> Result<PendingAuthorization> {
        if !self
            .metadata
            .code_challenge_methods_supported
            .iter()
            .any(|method| method == "S256")
        {
            return Err(Error::protocol(
                "the server does not list S256 in code_challenge_methods_supported (RFC 8414 §2): \
                 no PKCE, no authorization",
            ));
        }
        if self
            .metadata
            .pushed_authorization_request_endpoint
            .is_some()
        {
            self.push(identity, request).await
        } else {
            self.authorize(identity, request)
        }
    }

    fn pending(
        &self,
        identity: &ClientIdentity,
        request: AuthorizationRequest,
        (request_uri, expires_in): (String, u64),
        authorization_url: Url,
        state: String,
        code_verifier: ephemera_proto::pkce::CodeVerifier,
    ) -> PendingAuthorization {
        PendingAuthorization {
            request_uri,
            expires_in,
            authorization_url,
            state,
            code_verifier,
            redirect_uri: request.redirect_uri,
            client_id: identity.client_id().to_owned(),
            identity: identity.clone(),
            issuer: self.issuer().to_owned(),
            iss_required: self.metadata.authorization_response_iss_parameter_supported,
            scope: request.scope,
            resources: request.resources,
        }
    }

    /// Registers a client (RFC 7591 §3.1): POSTs `metadata` to the
    /// `registration_endpoint` and returns the client information response
    /// (§3.2.1), which holds at least a `client_id`.
    pub async fn register(&self, metadata: &serde_json::Value) -> Result<serde_json::Value> {
        let endpoint = required(
            &self.metadata.registration_endpoint,
            "registration_endpoint",
        )?;
        let response = self
            .http
            .post(endpoint)
            .header(reqwest::header::ACCEPT, "application/json")
            .json(metadata)
            .send()
            .await?;
        let status = response.status().as_u16();
        let body = response.bytes().await?;
        // §3.2.1 says 201; some servers answer 200.
        let expected = if status == 200 { 200 } else { 201 };
        let information: serde_json::Value = interpret(status, &body, expected)?;
        match information.get("client_id") {
            Some(serde_json::Value::String(id)) if !id.is_empty() => Ok(information),
            _ => Err(Error::protocol(
                "the registration response has no client_id (RFC 7591 §3.2.1)",
            )),
        }
    }

    /// Redeems an authorization code (RFC 6749 §4.1.3, RFC 7636 §4.5) as
    /// the identity that sent the request, with a DPoP proof if it has a
    /// key (the answer's `token_type` is then `DPoP`), and the request's
    /// resources again (RFC 8707 §2.2; MCP requires `resource` on the
    /// token request too).
    pub async fn exchange_code(
        &self,
        pending: &PendingAuthorization,
        code: &str,
    ) -> Result<TokenResponse> {
        let mut form = vec![
            ("grant_type".to_owned(), "authorization_code".to_owned()),
            ("code".to_owned(), code.to_owned()),
            ("redirect_uri".to_owned(), pending.redirect_uri.clone()),
            (
                "code_verifier".to_owned(),
                pending.code_verifier.secret().to_owned(),
            ),
        ];
        push_resources(&mut form, &pending.resources);
        self.token_request(&pending.identity, form).await
    }

    /// Uses a refresh token (RFC 6749 §6). Ephemera rotates refresh tokens:
    /// keep the one in the answer, the old one is spent. Pass the identity
    /// the grant was made with: a DPoP-bound grant needs a proof by the same
    /// key (RFC 9449 §5), and a `private_key_jwt` client an assertion.
    pub async fn refresh(
        &self,
        identity: &ClientIdentity,
        refresh_token: &str,
        scope: Option<&str>,
    ) -> Result<TokenResponse> {
        self.refresh_for(identity, refresh_token, scope, &[]).await
    }

    /// [`refresh`](Self::refresh) naming the resources the new access token
    /// is for (RFC 8707 §2.2), as MCP asks of every token request.
    pub async fn refresh_for(
        &self,
        identity: &ClientIdentity,
        refresh_token: &str,
        scope: Option<&str>,
        resources: &[String],
    ) -> Result<TokenResponse> {
        let mut form = vec![
            ("grant_type".to_owned(), "refresh_token".to_owned()),
            ("refresh_token".to_owned(), refresh_token.to_owned()),
        ];
        if let Some(scope) = scope {
            form.push(("scope".to_owned(), scope.to_owned()));
        }
        push_resources(&mut form, resources);
        self.token_request(identity, form).await
    }

    /// Asks for a token for the client itself (RFC 6749 §4.4); only
    /// confidential clients may. An identity with a DPoP key gets a
    /// DPoP-bound token.
    pub async fn client_credentials(
        &self,
        identity: &ClientIdentity,
        scope: Option<&str>,
    ) -> Result<TokenResponse> {
        self.client_credentials_for(identity, scope, &[]).await
    }

    /// [`client_credentials`](Self::client_credentials) naming the
    /// resources the token is for (RFC 8707 §2), as MCP asks of every token
    /// request (and its client credentials extension, SEP-1046, of this one).
    pub async fn client_credentials_for(
        &self,
        identity: &ClientIdentity,
        scope: Option<&str>,
        resources: &[String],
    ) -> Result<TokenResponse> {
        let mut form = vec![("grant_type".to_owned(), "client_credentials".to_owned())];
        if let Some(scope) = scope {
            form.push(("scope".to_owned(), scope.to_owned()));
        }
        push_resources(&mut form, resources);
        self.token_request(identity, form).await
    }

    /// Presents a JWT as an authorization grant (RFC 7523 §2.1):
    /// `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer` with the JWT
    /// as `assertion`, and `scope` and one `resource` per resource (RFC 8707
    /// §2) as given. The JWT is one another party issued for this server:
    /// an ID-JAG from [`token_exchange`](Self::token_exchange) at an
    /// enterprise identity provider (MCP's Enterprise-Managed
    /// Authorization, SEP-990), or the token a workload's platform issued
    /// it (MCP's workload identity federation, SEP-1933).
    ///
    /// The client authenticates as for any grant (RFC 7523 §3: the grant
    /// is not client authentication), and an identity with a DPoP key gets
    /// a DPoP-bound token. A refused assertion is an [`Error::OAuth`],
    /// usually `invalid_grant` (§3.1), and is not sent again (only a
    /// `use_dpop_nonce` answer is, as for every call): the JWT would be
    /// refused again.
    pub async fn jwt_bearer(
        &self,
        identity: &ClientIdentity,
        assertion: &str,
        scope: Option<&str>,
        resources: &[String],
    ) -> Result<TokenResponse> {
        let mut form = vec![
            ("grant_type".to_owned(), JWT_BEARER_GRANT.to_owned()),
            ("assertion".to_owned(), assertion.to_owned()),
        ];
        if let Some(scope) = scope {
            form.push(("scope".to_owned(), scope.to_owned()));
        }
        push_resources(&mut form, resources);
        self.token_request(identity, form).await
    }

    /// Exchanges a token for another (RFC 8693 §2): `request`'s subject
    /// (and actor) token, the type asked for, `audience`, `resource` and
    /// `scope`, sent to the token endpoint as `identity`, with its client
    /// authentication and, for an identity with a DPoP key, a DPoP proof
    /// (the answer's `token_type` is then `DPoP` where the server binds
    /// the new token). The answer says what was issued
    /// ([`issued_token_type`](TokenExchangeResponse::issued_token_type));
    /// a refusal is an [`Error::OAuth`] (`invalid_request`,
    /// `invalid_target` for an audience or resource the server will not
    /// issue for, §2.2.2).
    pub async fn token_exchange(
        &self,
        identity: &ClientIdentity,
        request: &TokenExchangeRequest,
    ) -> Result<TokenExchangeResponse> {
        self.token_request(identity, request.form()).await
    }

    /// Revokes a token (RFC 7009 §2.1). Unknown tokens are not an error: the
    /// server answers 200 for them too (§2.2). An identity with a DPoP key
    /// sends a proof by it: Ephemera lets only the key's holder revoke a
    /// DPoP-bound token of a client that does not authenticate (a pushed
    /// client above all, whose `client_id` is everyone's).
    pub async fn revoke(
        &self,
        identity: &ClientIdentity,
        token: &str,
        hint: Option<&str>,
    ) -> Result<()> {
        let endpoint = required(&self.metadata.revocation_endpoint, "revocation_endpoint")?;
        let mut form = vec![("token".to_owned(), token.to_owned())];
        if let Some(hint) = hint {
            form.push(("token_type_hint".to_owned(), hint.to_owned()));
        }
        let (status, body) = self
            .send(endpoint, identity.dpop_key(), || {
                self.authenticated(identity, &form)
            })
            .await?;
        if status == 200 {
            Ok(())
        } else {
            Err(error_from(status, &body))
        }
    }

    /// Introspects a token (RFC 7662) as the confidential client `client_id`
    /// (`client_secret_basic`), as a resource server does.
    pub async fn introspect(
        &self,
        client_id: &str,
        secret: &str,
        token: &str,
    ) -> Result<IntrospectionResponse> {
        let endpoint = required(
            &self.metadata.introspection_endpoint,
            "introspection_endpoint",
        )?;
        let form = vec![("token".to_owned(), token.to_owned())];
        let authorization = basic_authorization(client_id, secret);
        self.post_form(endpoint, None, 200, || {
            Ok((form.clone(), Some(authorization.clone())))
        })
        .await
    }

    /// A token endpoint request as `identity`, with its DPoP proof.
    async fn token_request<T: DeserializeOwned>(
        &self,
        identity: &ClientIdentity,
        form: Form,
    ) -> Result<T> {
        self.post_form(
            &self.metadata.token_endpoint,
            identity.dpop_key(),
            200,
            || self.authenticated(identity, &form),
        )
        .await
    }

    /// `form` with `identity`'s authentication added (a fresh assertion each
    /// time), and the `Authorization` header to send.
    fn authenticated(
        &self,
        identity: &ClientIdentity,
        form: &Form,
    ) -> Result<(Form, Option<String>)> {
        let mut form = form.clone();
        let authorization = identity.authenticate(&mut form, self.issuer())?;
        Ok((form, authorization))
    }

    async fn post_form<T: DeserializeOwned>(
        &self,
        endpoint: &str,
        dpop: Option<&DpopKey>,
        expected_status: u16,
        build: impl Fn() -> Result<(Form, Option<String>)>,
    ) -> Result<T> {
        let (status, body) = self.send(endpoint, dpop, build).await?;
        interpret(status, &body, expected_status)
    }

    /// POSTs the form `build` makes, with a DPoP proof by `dpop` if given.
    ///
    /// When the server answers `use_dpop_nonce` with a `DPoP-Nonce`
    /// (RFC 9449 §8), the request is sent once more, built afresh (a new
    /// client assertion: the first one's `jti` may be spent) with a proof
    /// carrying that nonce. Every `DPoP-Nonce` seen is remembered for later
    /// proofs.
    async fn send(
        &self,
        endpoint: &str,
        dpop: Option<&DpopKey>,
        build: impl Fn() -> Result<(Form, Option<String>)>,
    ) -> Result<(u16, Vec<u8>)> {
        let mut retried = false;
        loop {
            let (form, authorization) = build()?;
            let mut request = self
                .http
                .post(endpoint)
                .header(reqwest::header::ACCEPT, "application/json")
                .form(&form);
            if let Some(value) = authorization {
                request = request.header(reqwest::header::AUTHORIZATION, value);
            }
            if let Some(key) = dpop {
                let nonce = self.dpop_nonce();
                let proof = key.proof("POST", endpoint, None, nonce.as_deref())?;
                request = request.header(DPOP_HEADER, proof);
            }
            let response = request.send().await?;
            let status = response.status().as_u16();
            let fresh_nonce = dpop::nonce_of(response.headers());
            if let Some(nonce) = &fresh_nonce {
                self.remember_dpop_nonce(nonce.clone());
            }
            let body = response.bytes().await?;
            let asks_for_nonce =
                status == 400 && fresh_nonce.is_some() && dpop::is_use_dpop_nonce_body(&body);
            if dpop.is_some() && asks_for_nonce && !retried {
                retried = true;
                continue;
            }
            return Ok((status, body.to_vec()));
        }
    }
}

/// One `resource` parameter per resource (RFC 8707 §2).
fn push_resources(form: &mut Form, resources: &[String]) {
    for resource in resources {
        form.push(("resource".to_owned(), resource.clone()));
    }
}

fn required<'a>(endpoint: &'a Option<String>, name: &str) -> Result<&'a str> {
    endpoint
        .as_deref()
        .ok_or_else(|| Error::protocol(format!("server metadata has no {name}")))
}

/// Reads an answer: the expected status with a JSON body of type `T`, or an
/// RFC 6749 §5.2 error, or else a protocol error.
fn interpret<T: DeserializeOwned>(status: u16, body: &[u8], expected_status: u16) -> Result<T> {
    if status != expected_status {
        return Err(error_from(status, body));
    }
    serde_json::from_slice(body).map_err(|e| {
        Error::protocol(format!(
            "HTTP {status} body is not the expected JSON: {e}: {}",
            snippet(body)
        ))
    })
}

fn error_from(status: u16, body: &[u8]) -> Error {
    match serde_json::from_slice::<ErrorResponse>(body) {
        Ok(body) => Error::OAuth { status, body },
        Err(_) => Error::protocol(format!("unexpected HTTP {status}: {}", snippet(body))),
    }
}

/// The start of a body, for error messages.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    text.chars().take(200).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use ephemera_proto::error::ErrorCode;

    #[test]
    fn well_known_url_of_a_host_only_issuer() {
        assert_eq!(
            well_known_url("http://127.0.0.1:8080").unwrap().as_str(),
            "http://127.0.0.1:8080/.well-known/oauth-authorization-server"
        );
        assert_eq!(
            well_known_url("http://127.0.0.1:8080/").unwrap().as_str(),
            "http://127.0.0.1:8080/.well-known/oauth-authorization-server"
        );
    }

    #[test]
    fn well_known_url_of_an_issuer_with_a_path_puts_the_path_last() {
        assert_eq!(
            well_known_url("https://as.example/tenant/1")
                .unwrap()
                .as_str(),
            "https://as.example/.well-known/oauth-authorization-server/tenant/1"
        );
        assert!(well_known_url("https://as.example/?x=1").is_err());
    }

    #[test]
    fn metadata_urls_follow_the_mcp_order() {
        let urls = |issuer: &str| -> Vec<String> {
            metadata_urls(issuer)
                .unwrap()
                .into_iter()
                .map(String::from)
                .collect()
        };
        assert_eq!(
            urls("https://as.example"),
            [
                "https://as.example/.well-known/oauth-authorization-server",
                "https://as.example/.well-known/openid-configuration",
            ]
        );
        assert_eq!(
            urls("https://as.example/tenant/one/"),
            [
                "https://as.example/.well-known/oauth-authorization-server/tenant/one",
                "https://as.example/.well-known/openid-configuration/tenant/one",
                "https://as.example/tenant/one/.well-known/openid-configuration",
            ]
        );
        assert!(metadata_urls("https://as.example/?q=1").is_err());
    }

    #[test]
    fn an_error_body_becomes_an_oauth_error() {
        let body = br#"{"error":"invalid_grant","error_description":"used"}"#;
        let result: Result<TokenResponse> = interpret(400, body, 200);
        match result {
            Err(Error::OAuth { status, body }) => {
                assert_eq!(status, 400);
                assert_eq!(body.error, ErrorCode::InvalidGrant);
            }
            other => panic!("expected an OAuth error, got {other:?}"),
        }
    }

    #[test]
    fn an_unexpected_status_or_body_is_a_protocol_error() {
        let result: Result<PushedAuthorizationResponse> =
            interpret(200, br#"{"request_uri":"u","expires_in":60}"#, 201);
        assert!(matches!(result, Err(Error::Protocol(m)) if m.contains("200")));
        let result: Result<PushedAuthorizationResponse> = interpret(201, b"<html>", 201);
        assert!(matches!(result, Err(Error::Protocol(_))));
        let result: Result<PushedAuthorizationResponse> =
            interpret(201, br#"{"request_uri":"u","expires_in":60}"#, 201);
        assert!(matches!(result, Ok(r) if r.request_uri == "u"));
    }
}

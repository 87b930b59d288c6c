//! `GET /.well-known/oauth-authorization-server` (RFC 8414) and
//! `GET /.well-known/openid-configuration` (OpenID Connect Discovery 1.0
//! §3): every endpoint and capability, stated truthfully; the second is the
//! first plus what an OpenID relying party reads.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use ephemera_proto::wire::AuthorizationServerMetadata;

use super::App;

pub async fn get(State(app): State<App>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        app.metadata_json.clone(),
    )
        .into_response()
}

pub async fn get_openid(State(app): State<App>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        app.openid_json.clone(),
    )
        .into_response()
}

/// The OpenID Provider metadata (Discovery §3): the RFC 8414 document,
/// every scope (the identity scopes too), and the OpenID fields. Built once
/// at start-up.
pub fn build_openid(issuer: &str, policy: &crate::policy::Policy) -> AuthorizationServerMetadata {
    let s =
        |v: &[&str]| serde_json::Value::from(v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>());
    let mut metadata = build(issuer, policy);
    metadata.scopes_supported = policy.scopes_supported.iter().map(str::to_owned).collect();
    metadata.extra.extend(
        [
            ("subject_types_supported", s(&["public"])),
            // The server's own keys are ES256 (service/keys.rs).
            ("id_token_signing_alg_values_supported", s(&["ES256"])),
            ("userinfo_signing_alg_values_supported", s(&[])),
            (
                "claims_supported",
                s(&crate::service::id_token::claims_supported()),
            ),
            (
                "prompt_values_supported",
                s(&["none", "login", "consent", "select_account"]),
            ),
            ("claims_parameter_supported", serde_json::Value::from(false)),
            (
                "request_parameter_supported",
                serde_json::Value::from(false),
            ),
            (
                "request_uri_parameter_supported",
                serde_json::Value::from(true),
            ),
            (
                "require_request_uri_registration",
                serde_json::Value::from(false),
            ),
            ("claim_types_supported", s(&["normal"])),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v)),
    );
    metadata
}

/// The grant types served: token exchange (RFC 8693) only when some
/// resource accepts exchanged tokens.
fn grant_types(policy: &crate::policy::Policy) -> Vec<String> {
    let mut grant_types: Vec<String> =
        ["authorization_code", "refresh_token", "client_credentials"]
            .map(str::to_owned)
            .to_vec();
    if policy.resources.iter().any(|r| r.exchange.is_some()) {
        grant_types.push(ephemera_proto::token::TOKEN_EXCHANGE.to_owned());
    }
    grant_types
}

/// Built once at start-up. `scopes_supported` lists the configured scopes:
/// MCP clients ask for every scope this document lists, and the identity
/// scopes (`openid`, `profile`, `email`), always available, are listed in
/// the OpenID document only.
pub fn build(issuer: &str, policy: &crate::policy::Policy) -> AuthorizationServerMetadata {
    let scopes = policy.advertised_scopes.iter().map(str::to_owned).collect();
    let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
    let algs = serde_json::Value::from(s(ephemera_proto::jose::ALLOWED_ALGS));
    let mut metadata = AuthorizationServerMetadata {
        issuer: issuer.to_owned(),
        authorization_endpoint: format!("{issuer}/authorize"),
        token_endpoint: format!("{issuer}/token"),
        pushed_authorization_request_endpoint: Some(format!("{issuer}/par")),
        require_pushed_authorization_requests: false,
        introspection_endpoint: Some(format!("{issuer}/introspect")),
        revocation_endpoint: Some(format!("{issuer}/revoke")),
        jwks_uri: Some(format!("{issuer}/jwks")),
        registration_endpoint: policy
            .registration
            .enabled
            .then(|| format!("{issuer}/register")),
        scopes_supported: scopes,
        response_types_supported: s(&["code"]),
        response_modes_supported: s(&["query"]),
        grant_types_supported: grant_types(policy),
        token_endpoint_auth_methods_supported: s(&[
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
            "self_signed_tls_client_auth",
            "none",
        ]),
        introspection_endpoint_auth_methods_supported: s(&[
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
        ]),
        revocation_endpoint_auth_methods_supported: s(&[
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
            "none",
        ]),
        code_challenge_methods_supported: s(&["S256"]),
        authorization_response_iss_parameter_supported: true,
        // Off, a pushed registration gets unauthorized_client: a client
        // reading this must not choose it.
        pushed_client_registration_supported: policy.pushed.enabled,
        extra: [
            // RFC 8414 §2 lets the OpenID fields in; the endpoint is the same.
            (
                "userinfo_endpoint",
                serde_json::Value::from(format!("{issuer}/userinfo")),
            ),
            ("dpop_signing_alg_values_supported", algs.clone()),
            (
                "client_id_metadata_document_supported",
                serde_json::Value::from(policy.documents_enabled),
            ),
            // RFC 8705 §3.3; a certificate is honoured over TLS or from a trusted proxy.
            (
                "tls_client_certificate_bound_access_tokens",
                serde_json::Value::from(true),
            ),
            (
                "token_endpoint_auth_signing_alg_values_supported",
                algs.clone(),
            ),
            (
                "introspection_endpoint_auth_signing_alg_values_supported",
                algs.clone(),
            ),
            (
                "revocation_endpoint_auth_signing_alg_values_supported",
                algs,
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect(),
    };
    assertion_grants(&mut metadata, policy);
    metadata
}

/// RFC 7523 §2.1 is served when some issuer is trusted; the ID-JAG profile
/// (draft-ietf-oauth-identity-assertion-authz-grant §7.2) when some
/// issuer's ID-JAGs are taken. Which issuers is not said (§8.4).
fn assertion_grants(metadata: &mut AuthorizationServerMetadata, policy: &crate::policy::Policy) {
    use ephemera_proto::assertion_grant::{GRANT_TYPE, ID_JAG_PROFILE};
    let trusted = &policy.trusted_issuers;
    if trusted.any() {
        metadata.grant_types_supported.push(GRANT_TYPE.to_owned());
    }
    if trusted.any_id_jag() {
        metadata.extra.insert(
            "authorization_grant_profiles_supported".to_owned(),
            serde_json::Value::from(vec![ID_JAG_PROFILE]),
        );
    }
}

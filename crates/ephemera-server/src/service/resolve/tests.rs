//! What each client model resolves to, and what it may register.

#![allow(clippy::unwrap_used, clippy::panic)] // tests fail loudly

use super::*;

#[test]
fn a_pushed_client_without_registration_is_a_bare_public_client() {
    let snap = pushed(&Policy::default(), None);
    assert!(matches!(snap, Ok(s) if s.kind == ClientKind::Pushed && s.redirect_uris.is_empty()));
}

#[test]
fn secrets_and_remote_keys_are_refused_for_pushed_clients() {
    let p = Policy::default();
    for reg in [
        r#"{"token_endpoint_auth_method":"client_secret_basic"}"#,
        r#"{"jwks_uri":"https://a.example/jwks"}"#,
        r#"{"grant_types":["client_credentials"],"response_types":[]}"#,
        r#"{"redirect_uris":["http://a.example/cb"]}"#,
    ] {
        let err = pushed(&p, Some(reg)).err().map(|e| e.code);
        assert_eq!(err, Some(ErrorCode::InvalidClientMetadata), "{reg}");
    }
    let err = pushed(&p, Some("[]")).err().map(|e| e.code);
    assert_eq!(err, Some(ErrorCode::InvalidRequest));
}

fn policy() -> Policy {
    let mut p = Policy {
        scopes_supported: ephemera_proto::scope::Scope::parse("read write admin")
            .unwrap_or_default(),
        pushed_scopes: ephemera_proto::scope::Scope::parse("read write").unwrap_or_default(),
        ..Policy::default()
    };
    p.pushed.require_sender_constraint = true;
    p
}

fn stored(confidential: bool, dynamic: Option<ClientKind>) -> StoredClient {
    StoredClient {
        client_id: "c".into(),
        name: None,
        redirect_uris: vec!["https://c.example/cb".into()],
        allowed_scope: ephemera_proto::scope::Scope::parse("read admin").ok(),
        confidential,
        can_introspect: false,
        created_at: 0,
        jwks: None,
        grant_types: None,
        self_described: dynamic.map(|kind| SelfDescription {
            kind,
            verified_origin: None,
            metadata: serde_json::json!({}),
            grant_types: vec!["authorization_code".into()],
            auth_method: if confidential {
                AuthMethod::ClientSecret
            } else {
                AuthMethod::None
            },
            expires_at: 0,
            registration_token_hash: None,
            fingerprint: None,
        }),
        secret_hash: None,
    }
}

fn caps_of(policy: &Policy, client: &StoredClient) -> Capabilities {
    snapshot(policy, client)
        .caps
        .unwrap_or_else(|| capabilities(policy, &client.snapshot()))
}

#[test]
fn an_operators_client_is_trusted_remembered_and_may_bind_late() {
    let caps = caps_of(&policy(), &stored(true, None));
    assert_eq!(caps.trust, Trust::Operator);
    assert!(caps.remember_consent);
    assert_eq!(caps.redirect, RedirectRule::Registered);
    assert_eq!(caps.binding, BindingRule::default());
    assert!(caps.pkce_required && !caps.state_required);
    assert!(caps.client_credentials && !caps.renew_on_use);
    assert_eq!(caps.refresh_lifetime, 30 * 24 * 3600);
    // Its own scopes, within everything that exists here.
    assert_eq!(caps.grantable_scope.to_string(), "admin read");
}

#[test]
fn only_an_operators_confidential_client_can_be_let_off_pkce() {
    let mut p = policy();
    p.clients.pkce_optional_for_registered_confidential = true;
    assert!(!caps_of(&p, &stored(true, None)).pkce_required);
    assert!(caps_of(&p, &stored(false, None)).pkce_required);
    assert!(caps_of(&p, &stored(true, Some(ClientKind::SelfRegistered))).pkce_required);
    assert!(pushed(&p, None)
        .ok()
        .and_then(|s| s.caps)
        .is_some_and(|c| c.pkce_required));
}

#[test]
fn a_pushed_client_is_bound_at_par_asked_each_time_and_short_lived() {
    let reg = r#"{"redirect_uris":["https://a.example/cb"],"tls_client_certificate_bound_access_tokens":true,"dpop_bound_access_tokens":true,"scope":"write"}"#;
    let client = pushed(&policy(), Some(reg)).ok();
    let caps = client.and_then(|c| c.caps);
    let Some(caps) = caps else { panic!("refused") };
    assert_eq!(caps.trust, Trust::SelfAsserted);
    assert!(!caps.remember_consent);
    assert_eq!(caps.redirect, RedirectRule::SentWithRequest);
    assert_eq!(
        caps.binding,
        BindingRule {
            fixed_at_par: true,
            certificate: true,
            dpop: true,
            required: true,
        }
    );
    assert!(caps.pkce_required && caps.state_required);
    assert!(!caps.client_credentials && !caps.renew_on_use);
    assert_eq!(caps.refresh_lifetime, 24 * 3600);
    assert_eq!(caps.grantable_scope.to_string(), "write");
}

#[test]
fn self_registered_and_document_clients_differ_in_trust_renewal_and_machine_tokens() {
    let p = policy();
    let dynamic = caps_of(&p, &stored(true, Some(ClientKind::SelfRegistered)));
    assert_eq!(dynamic.trust, Trust::SelfAsserted);
    assert!(dynamic.renew_on_use && dynamic.client_credentials);
    assert!(!dynamic.remember_consent);
    // Open-world clients get the pushed scopes, within their own.
    assert_eq!(dynamic.grantable_scope.to_string(), "read");
    let document = caps_of(&p, &stored(false, Some(ClientKind::MetadataDocument)));
    assert_eq!(document.trust, Trust::VerifiedOrigin);
    assert!(!document.renew_on_use && !document.client_credentials);
    assert!(document.grants_end_with_keys && !dynamic.grants_end_with_keys);
}

#[test]
fn a_federation_client_is_vouched_for_by_its_anchor_and_its_grants_end_with_its_keys() {
    let p = policy();
    let federation = caps_of(&p, &stored(true, Some(ClientKind::Federation)));
    assert_eq!(federation.trust, Trust::TrustAnchor);
    assert!(federation.grants_end_with_keys && federation.pkce_required);
    assert!(!federation.remember_consent && !federation.renew_on_use);
    assert!(federation.par_required);
    assert!(!caps_of(&p, &stored(false, Some(ClientKind::MetadataDocument))).par_required);
    // Machine tokens only when the operator opens them to the model.
    assert!(!federation.client_credentials);
    assert_eq!(federation.grantable_scope.to_string(), "read");
}

#[test]
fn a_snapshot_stored_without_capabilities_gets_them_decided_now() {
    let p = policy();
    let client = stored(false, None);
    let legacy = client.snapshot();
    assert!(legacy.caps.is_none());
    assert_eq!(*caps(&p, &legacy), caps_of(&p, &client));
    // Stored with them, they are read as they were decided.
    let mut decided = snapshot(&p, &client);
    if let Some(c) = decided.caps.as_mut() {
        c.refresh_lifetime = 7;
    }
    assert_eq!(caps(&p, &decided).refresh_lifetime, 7);
}

#[test]
fn disabled_policy_refuses_pushed_clients() {
    let mut p = Policy::default();
    p.pushed.enabled = false;
    assert_eq!(
        pushed(&p, None).err().map(|e| e.code),
        Some(ErrorCode::UnauthorizedClient)
    );
}

//! Minting tokens: opaque 256-bit values, stored only as hashes.

use ephemera_proto::scope::Scope;
use ephemera_proto::wire::TokenResponse;

use crate::model::{Grant, Timestamp, Token, TokenKind};
use crate::policy::Policy;
use crate::secret::Secret;

/// New tokens: the rows to store and the response to send.
pub struct Minted {
    pub rows: Vec<Token>,
    pub response: TokenResponse,
}

/// An access token with `scope`, and a refresh token with `refresh_scope`
/// when the client may refresh.
pub fn mint(
    policy: &Policy,
    grant: &Grant,
    scope: &Scope,
    refresh_scope: Option<&Scope>,
    jkt: Option<&str>,
    x5t: Option<&str>,
    now: Timestamp,
) -> Minted {
    let access = Secret::generate();
    let access_ttl = policy.lifetimes.access_token;
    let mut rows = vec![Token {
        hash: access.hash(),
        grant_id: grant.id.clone(),
        kind: TokenKind::Access,
        scope: scope.clone(),
        issued_at: now,
        expires_at: now + access_ttl,
        used_at: None,
        jkt: jkt.map(str::to_owned),
        x5t: x5t.map(str::to_owned),
    }];
    let refresh_x5t = x5t.filter(|_| grant.client.is_public()).map(str::to_owned);
    let refresh_jkt = jkt.filter(|_| grant.client.is_public()).map(str::to_owned);
    let refresh = refresh_scope.map(|refresh_scope| {
        let secret = Secret::generate();
        rows.push(Token {
            hash: secret.hash(),
            grant_id: grant.id.clone(),
            kind: TokenKind::Refresh,
            scope: refresh_scope.clone(),
            issued_at: now,
            expires_at: now + policy.refresh_lifetime(grant.client.kind),
            used_at: None,
            jkt: refresh_jkt.clone(),
            x5t: refresh_x5t.clone(),
        });
        secret.into_string()
    });
    Minted {
        rows,
        response: TokenResponse {
            access_token: access.into_string(),
            token_type: if jkt.is_some() { "DPoP" } else { "Bearer" }.to_owned(),
            expires_in: access_ttl.unsigned_abs(),
            refresh_token: refresh,
            scope: (!scope.is_empty()).then(|| scope.to_string()),
        },
    }
}

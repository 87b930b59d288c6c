//! `[clients]`: what clients may do beyond what they registered, raw then
//! validated into [`ClientPolicy`].

use serde::{Deserialize, Serialize};

use super::{invalid, ConfigError};
use crate::model::ClientKind;
use crate::policy::ClientPolicy;

/// `[clients]` as written by the operator.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawClients {
    /// Pre-registered confidential clients may leave PKCE out; every other
    /// client must use it whatever this says.
    pub pkce_optional_for_registered_confidential: bool,
    /// Client models that may use `client_credentials`: `registered`,
    /// `dynamic`, `metadata_document` (never `pushed`).
    pub client_credentials: Vec<String>,
}

impl Default for RawClients {
    fn default() -> Self {
        let p = ClientPolicy::default();
        Self {
            pkce_optional_for_registered_confidential: p.pkce_optional_for_registered_confidential,
            client_credentials: p
                .client_credentials
                .iter()
                .map(|k| k.as_str().to_owned())
                .collect(),
        }
    }
}

impl RawClients {
    pub fn validate(&self) -> Result<ClientPolicy, ConfigError> {
        let client_credentials = self
            .client_credentials
            .iter()
            .map(|name| match ClientKind::parse(name) {
                Some(ClientKind::Pushed) => Err(invalid(
                    "clients.client_credentials",
                    "pushed clients can never use client_credentials: they exist only inside a user's grant",
                )),
                Some(ClientKind::Workload) => Err(invalid(
                    "clients.client_credentials",
                    "workloads get tokens only with the JWT their platform issued ([trusted_issuers.<name>])",
                )),
                Some(kind) => Ok(kind),
                None => Err(invalid(
                    "clients.client_credentials",
                    format!("`{name}` is not one of registered, dynamic, metadata_document"),
                )),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ClientPolicy {
            pkce_optional_for_registered_confidential: self
                .pkce_optional_for_registered_confidential,
            client_credentials,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pushed_clients_can_never_be_given_client_credentials() {
        let raw = RawClients {
            client_credentials: vec!["registered".into(), "pushed".into()],
            ..RawClients::default()
        };
        assert!(matches!(
            raw.validate(),
            Err(ConfigError::Invalid {
                key: "clients.client_credentials",
                ..
            })
        ));
    }

    #[test]
    fn defaults_open_client_credentials_to_registered_and_dynamic_clients_only() {
        let policy = RawClients::default().validate().ok();
        assert_eq!(
            policy.map(|p| p.client_credentials),
            Some(vec![ClientKind::Registered, ClientKind::SelfRegistered])
        );
    }
}

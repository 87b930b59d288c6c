//! Trust chain validation (OpenID Federation 1.0 §10.2) of statements
//! already fetched: the subject's Entity Configuration, then the
//! Subordinate Statements from its immediate superior up to the one a trust
//! anchor issued. The anchor's keys are configured, never taken from the
//! chain. The result is the subject's resolved metadata (§6.1.4), the
//! anchor, and when the chain expires.

use serde_json::{Map, Value};

use super::policy::MetadataPolicy;
use super::{Constraints, EntityStatement, FederationError};

/// A trust anchor this server trusts: its entity identifier and keys.
#[derive(Debug, Clone, PartialEq)]
pub struct TrustAnchor {
    pub entity_id: String,
    /// Its Federation Entity Keys (a JWK Set), configured.
    pub jwks: Value,
}

/// What the validation needs besides the statements.
#[derive(Debug, Clone, Copy)]
pub struct Checks<'a> {
    pub anchors: &'a [TrustAnchor],
    /// At most this many Subordinate Statements (the anchor's included).
    pub max_statements: usize,
    pub now: i64,
    pub leeway: i64,
}

/// A valid chain and what it resolves to.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedChain {
    /// The chain's subject (the leaf).
    pub subject: String,
    /// The trust anchor it ends at.
    pub anchor: String,
    /// The subject's Entity Configuration, verified.
    pub configuration: EntityStatement,
    /// The subject's metadata for every entity type it has, with the
    /// immediate superior's `metadata` and the merged policy applied.
    pub metadata: Map<String, Value>,
    /// The earliest `exp` of the chain's statements: the chain holds until then.
    pub expires_at: i64,
}

/// Validates a chain: `configuration` is the subject's Entity
/// Configuration, `subordinates[0]` the statement its immediate superior
/// issued about it, and the last one a statement issued by a trust anchor.
pub fn validate(
    configuration: &str,
    subordinates: &[String],
    checks: &Checks<'_>,
) -> Result<ResolvedChain, FederationError> {
    let leaf = EntityStatement::peek(configuration)?;
    let Some(last) = subordinates.last() else {
        return Err(FederationError::UnknownAnchor(leaf.sub));
    };
    if subordinates.len() > checks.max_statements {
        return Err(FederationError::PathTooLong(format!(
            "{} subordinate statements, at most {} are followed",
            subordinates.len(),
            checks.max_statements
        )));
    }
    let top = EntityStatement::peek(last)?;
    let Some(anchor) = checks.anchors.iter().find(|a| a.entity_id == top.iss) else {
        return Err(FederationError::UnknownAnchor(leaf.sub));
    };

    // From the anchor down: each statement is verified with the keys its
    // superior's statement vouches for (the anchor's: configured), and
    // names as its issuer the subject of the statement above it.
    let mut keys = anchor.jwks.clone();
    let mut by = "of the trust anchor";
    let mut expected_iss = anchor.entity_id.clone();
    let mut verified: Vec<EntityStatement> = Vec::with_capacity(subordinates.len());
    for jwt in subordinates.iter().rev() {
        let st = EntityStatement::verify(jwt, &keys, by)?;
        if st.iss != expected_iss {
            return Err(FederationError::Linkage(format!(
                "a statement by `{}` stands where one by `{expected_iss}` belongs",
                st.iss
            )));
        }
        if st.is_configuration() {
            return Err(FederationError::Linkage(format!(
                "`{}` issued a statement about itself where one about a subordinate belongs",
                st.iss
            )));
        }
        st.check_times(checks.now, checks.leeway)?;
        keys = st.jwks.clone();
        by = "its superior vouches for";
        expected_iss = st.sub.clone();
        verified.push(st);
    }
    verified.reverse();

    // The subject's own configuration, with the keys its immediate
    // superior published for it.
    let configuration = EntityStatement::verify(configuration, &keys, by)?;
    if !configuration.is_configuration() || configuration.sub != expected_iss {
        return Err(FederationError::Linkage(format!(
            "the statements are about `{expected_iss}`, not about `{}`",
            configuration.sub
        )));
    }
    configuration.check_times(checks.now, checks.leeway)?;
    let superior = &verified[0].iss;
    if !configuration.authority_hints.iter().any(|h| h == superior) {
        return Err(FederationError::Linkage(format!(
            "`{}` does not name `{superior}` in its authority_hints",
            configuration.sub
        )));
    }

    // No entity twice on the path.
    let mut path = vec![configuration.sub.clone()];
    for st in &verified {
        if path.contains(&st.iss) {
            return Err(FederationError::Loop(st.iss.clone()));
        }
        path.push(st.iss.clone());
    }

    // Constraints (§6.2), each statement's on its own: statement k's issuer
    // has k intermediates between itself and the subject.
    let mut allowed_types: Option<Vec<String>> = None;
    for (k, st) in verified.iter().enumerate() {
        let Some(c) = &st.constraints else { continue };
        check_constraints(c, k, &st.iss, &path[..=k])?;
        if let Some(types) = &c.allowed_entity_types {
            allowed_types = Some(match allowed_types {
                None => types.clone(),
                Some(prev) => prev.into_iter().filter(|t| types.contains(t)).collect(),
            });
        }
    }

    // Metadata (§6.1.4.2): the immediate superior's `metadata` first, then
    // the allowed entity types, then the policy merged from the top down.
    let mut metadata = configuration.metadata.clone();
    for (entity_type, params) in &verified[0].metadata {
        let (Some(params), Some(Value::Object(own))) =
            (params.as_object(), metadata.get_mut(entity_type))
        else {
            if let Some(params) = params.as_object() {
                metadata.insert(entity_type.clone(), Value::Object(params.clone()));
            }
            continue;
        };
        for (k, v) in params {
            own.insert(k.clone(), v.clone());
        }
    }
    if let Some(types) = &allowed_types {
        metadata.retain(|t, _| t == "federation_entity" || types.contains(t));
    }
    let crit: Vec<String> = verified
        .iter()
        .flat_map(|s| s.metadata_policy_crit.iter().cloned())
        .collect();
    let mut merged: Option<MetadataPolicy> = None;
    for st in verified.iter().rev() {
        let Some(p) = &st.metadata_policy else {
            continue;
        };
        let p = MetadataPolicy::parse(p, &crit)?;
        merged = Some(match merged {
            None => p,
            Some(current) => current.merge(&p)?,
        });
    }
    if let Some(policy) = merged {
        metadata = policy.apply(&metadata)?;
    }

    let expires_at = verified
        .iter()
        .map(|s| s.exp)
        .chain([configuration.exp])
        .min()
        .unwrap_or(configuration.exp);
    Ok(ResolvedChain {
        subject: configuration.sub.clone(),
        anchor: anchor.entity_id.clone(),
        configuration,
        metadata,
        expires_at,
    })
}

/// One statement's `max_path_length` and `naming_constraints`, for an
/// issuer with `intermediates` entities between it and the subject, over
/// the entities below it (`below`: the subject first).
fn check_constraints(
    c: &Constraints,
    intermediates: usize,
    issuer: &str,
    below: &[String],
) -> Result<(), FederationError> {
    if let Some(max) = c.max_path_length {
        if intermediates > max {
            return Err(FederationError::PathTooLong(format!(
                "`{issuer}` allows at most {max} intermediates below it (max_path_length), there are {intermediates}"
            )));
        }
    }
    if let Some(naming) = &c.naming {
        if let Some(entity) = below.iter().find(|e| !naming.allows(e)) {
            return Err(FederationError::Naming {
                by: issuer.to_owned(),
                entity: entity.clone(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::super::testing::Key;
    use super::super::ENTITY_STATEMENT_TYP;
    use super::*;
    use serde_json::json;

    const TA: &str = "https://ta.example.org";
    const INT: &str = "https://org.example.org";
    const RP: &str = "https://rp.example.org";

    /// A three-level federation (anchor, intermediate, leaf) with the
    /// specification's example policies (§6.1.5).
    struct Federation {
        ta: Key,
        int: Key,
        rp: Key,
        /// Extra claims per statement: (leaf EC, INT about RP, TA about INT).
        extra: [Value; 3],
    }

    impl Federation {
        fn new() -> Self {
            Self {
                ta: Key::new("ta"),
                int: Key::new("int"),
                rp: Key::new("rp"),
                extra: [json!({}), json!({}), json!({})],
            }
        }

        fn statement(key: &Key, mut claims: Value, extra: &Value) -> String {
            for (k, v) in extra.as_object().unwrap() {
                claims[k] = v.clone();
            }
            key.sign(ENTITY_STATEMENT_TYP, &claims)
        }

        fn chain(&self) -> (String, Vec<String>) {
            let leaf = Self::statement(
                &self.rp,
                json!({"iss": RP, "sub": RP, "iat": 1000, "exp": 5000, "jwks": self.rp.jwks(),
                "authority_hints": [INT],
                "metadata": {"openid_relying_party": {
                    "redirect_uris": ["https://rp.example.org/callback"],
                    "response_types": ["code"],
                    "token_endpoint_auth_method": "self_signed_tls_client_auth",
                    "contacts": ["rp_admins@rp.example.org"]}}}),
                &self.extra[0],
            );
            let about_rp = Self::statement(
                &self.int,
                json!({"iss": INT, "sub": RP, "iat": 1000, "exp": 4000, "jwks": self.rp.jwks(),
                "metadata_policy": {"openid_relying_party": {
                    "grant_types": {"subset_of": ["authorization_code"]},
                    "token_endpoint_auth_method": {"one_of": ["self_signed_tls_client_auth"]},
                    "contacts": {"add": ["helpdesk@org.example.org"]}}},
                "metadata": {"openid_relying_party": {
                    "sector_identifier_uri": "https://org.example.org/sector-ids.json",
                    "policy_uri": "https://org.example.org/policy.html"}}}),
                &self.extra[1],
            );
            let about_int = Self::statement(
                &self.ta,
                json!({"iss": TA, "sub": INT, "iat": 1000, "exp": 6000, "jwks": self.int.jwks(),
                "metadata_policy": {"openid_relying_party": {
                    "grant_types": {"default": ["authorization_code"],
                        "subset_of": ["authorization_code", "refresh_token"],
                        "superset_of": ["authorization_code"]},
                    "token_endpoint_auth_method": {
                        "one_of": ["private_key_jwt", "self_signed_tls_client_auth"], "essential": true},
                    "token_endpoint_auth_signing_alg": {"one_of": ["PS256", "ES256"]},
                    "subject_type": {"value": "pairwise"},
                    "contacts": {"add": ["helpdesk@federation.example.org"]}}}}),
                &self.extra[2],
            );
            (leaf, vec![about_rp, about_int])
        }

        fn anchors(&self) -> Vec<TrustAnchor> {
            vec![TrustAnchor {
                entity_id: TA.into(),
                jwks: self.ta.jwks(),
            }]
        }

        fn validate(&self, now: i64) -> Result<ResolvedChain, FederationError> {
            let (leaf, subs) = self.chain();
            let anchors = self.anchors();
            validate(
                &leaf,
                &subs,
                &Checks {
                    anchors: &anchors,
                    max_statements: 4,
                    now,
                    leeway: 0,
                },
            )
        }
    }

    #[test]
    fn a_three_level_chain_resolves_to_the_specifications_figure_16() {
        let resolved = Federation::new().validate(2000).unwrap();
        assert_eq!(resolved.subject, RP);
        assert_eq!(resolved.anchor, TA);
        assert_eq!(resolved.expires_at, 4000);
        assert_eq!(
            resolved.metadata["openid_relying_party"],
            json!({
                "redirect_uris": ["https://rp.example.org/callback"],
                "grant_types": ["authorization_code"],
                "response_types": ["code"],
                "token_endpoint_auth_method": "self_signed_tls_client_auth",
                "subject_type": "pairwise",
                "sector_identifier_uri": "https://org.example.org/sector-ids.json",
                "policy_uri": "https://org.example.org/policy.html",
                "contacts": ["rp_admins@rp.example.org", "helpdesk@federation.example.org",
                    "helpdesk@org.example.org"]
            })
        );
    }

    #[test]
    fn an_expired_statement_breaks_the_chain() {
        assert!(matches!(
            Federation::new().validate(4000),
            Err(FederationError::Expired { iss, .. }) if iss == INT
        ));
    }

    #[test]
    fn a_statement_not_signed_by_its_superiors_key_breaks_the_chain() {
        let mut f = Federation::new();
        let (leaf, mut subs) = f.chain();
        // The intermediate's statement re-signed by a key the anchor never vouched for.
        f.int = Key::new("int");
        subs[0] = f.chain().1[0].clone();
        let anchors = f.anchors();
        let checks = Checks {
            anchors: &anchors,
            max_statements: 4,
            now: 2000,
            leeway: 0,
        };
        assert!(matches!(
            validate(&leaf, &subs, &checks),
            Err(FederationError::Signature { iss, .. }) if iss == INT
        ));
    }

    #[test]
    fn a_chain_to_an_anchor_not_configured_is_refused() {
        let f = Federation::new();
        let (leaf, subs) = f.chain();
        let other = [TrustAnchor {
            entity_id: "https://other-ta.example.org".into(),
            jwks: f.ta.jwks(),
        }];
        let checks = Checks {
            anchors: &other,
            max_statements: 4,
            now: 2000,
            leeway: 0,
        };
        assert!(matches!(
            validate(&leaf, &subs, &checks),
            Err(FederationError::UnknownAnchor(_))
        ));
        // The anchor's id with another key: its statement does not verify.
        let wrong_key = [TrustAnchor {
            entity_id: TA.into(),
            jwks: Key::new("ta").jwks(),
        }];
        let checks = Checks {
            anchors: &wrong_key,
            ..checks
        };
        assert!(matches!(
            validate(&leaf, &subs, &checks),
            Err(FederationError::Signature { .. })
        ));
    }

    #[test]
    fn a_policy_the_metadata_violates_breaks_the_chain() {
        let mut f = Federation::new();
        f.extra[0] = json!({"metadata": {"openid_relying_party": {
            "redirect_uris": ["https://rp.example.org/callback"],
            "token_endpoint_auth_method": "client_secret_basic"}}});
        assert!(matches!(
            f.validate(2000),
            Err(FederationError::Policy(
                super::super::policy::PolicyError::Violation { .. }
            ))
        ));
    }

    #[test]
    fn conflicting_policies_of_superior_and_subordinate_break_the_chain() {
        let mut f = Federation::new();
        f.extra[1] = json!({"metadata_policy": {"openid_relying_party": {
            "subject_type": {"value": "public"}}}});
        assert!(matches!(
            f.validate(2000),
            Err(FederationError::Policy(
                super::super::policy::PolicyError::Conflict { .. }
            ))
        ));
    }

    #[test]
    fn max_path_length_counts_the_intermediates_below_the_issuer() {
        let mut f = Federation::new();
        f.extra[2] = json!({"constraints": {"max_path_length": 0}});
        assert!(matches!(
            f.validate(2000),
            Err(FederationError::PathTooLong(_))
        ));
        f.extra[2] = json!({"constraints": {"max_path_length": 1}});
        assert!(f.validate(2000).is_ok());
        let (leaf, subs) = f.chain();
        let anchors = f.anchors();
        let checks = Checks {
            anchors: &anchors,
            max_statements: 1,
            now: 2000,
            leeway: 0,
        };
        assert!(matches!(
            validate(&leaf, &subs, &checks),
            Err(FederationError::PathTooLong(_))
        ));
    }

    #[test]
    fn naming_constraints_and_allowed_entity_types_apply_below_their_issuer() {
        let mut f = Federation::new();
        f.extra[2] =
            json!({"constraints": {"naming_constraints": {"permitted": [".example.com"]}}});
        assert!(matches!(
            f.validate(2000),
            Err(FederationError::Naming { by, .. }) if by == TA
        ));
        f.extra[2] = json!({"constraints": {"allowed_entity_types": ["openid_provider"]}});
        let resolved = f.validate(2000).unwrap();
        assert!(!resolved.metadata.contains_key("openid_relying_party"));
    }

    #[test]
    fn a_leaf_that_does_not_name_its_superior_or_comes_back_as_a_superior_is_refused() {
        let mut f = Federation::new();
        f.extra[0] = json!({"authority_hints": ["https://elsewhere.example.org"]});
        assert!(matches!(f.validate(2000), Err(FederationError::Linkage(_))));
        // RP -> INT -> RP -> TA: the leaf shows up again as a superior.
        let (ta, int, rp) = (Key::new("ta"), Key::new("int"), Key::new("rp"));
        let st = |key: &Key, iss: &str, sub: &str, jwks: Value| {
            key.sign(
                ENTITY_STATEMENT_TYP,
                &json!({"iss": iss, "sub": sub, "iat": 1000, "exp": 5000, "jwks": jwks,
                    "authority_hints": [INT]}),
            )
        };
        let leaf = st(&rp, RP, RP, rp.jwks());
        let subs = [
            st(&int, INT, RP, rp.jwks()),
            st(&rp, RP, INT, int.jwks()),
            st(&ta, TA, RP, rp.jwks()),
        ];
        let anchors = [TrustAnchor {
            entity_id: TA.into(),
            jwks: ta.jwks(),
        }];
        let checks = Checks {
            anchors: &anchors,
            max_statements: 4,
            now: 2000,
            leeway: 0,
        };
        assert_eq!(
            validate(&leaf, &subs, &checks),
            Err(FederationError::Loop(RP.into()))
        );
    }
}

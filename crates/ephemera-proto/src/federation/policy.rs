//! Metadata policies (OpenID Federation 1.0 §6.1): the seven standard
//! operators, the combinations each allows, merging a subordinate's policy
//! into its superior's (§6.1.4.1), and applying the merged policy to an
//! entity's metadata in the operators' order (§6.1.4.2).
//!
//! A policy is JSON as the statements carry it: entity type ->
//! metadata parameter -> operator -> value. Operators this module does not
//! know are dropped, unless a statement lists them in
//! `metadata_policy_crit` (§6.1.3.2): then the chain is refused.

use serde_json::{Map, Value};

/// The standard operators, in their order of application (§6.1.3.1).
pub const OPERATORS: [&str; 7] = [
    "value",
    "add",
    "default",
    "one_of",
    "subset_of",
    "superset_of",
    "essential",
];

/// Why a policy could not be resolved or applied: a policy error in the
/// spec's words, which makes the whole trust chain invalid (§6.1.4).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The policy itself is malformed or combines operators it may not.
    #[error("metadata_policy for `{parameter}`: {reason}")]
    Invalid { parameter: String, reason: String },
    /// A superior's and a subordinate's operator values cannot be merged.
    #[error("metadata_policy for `{parameter}`: the `{operator}` of a subordinate conflicts with its superior's ({reason})")]
    Conflict {
        parameter: String,
        operator: &'static str,
        reason: &'static str,
    },
    /// The entity's metadata does not satisfy the policy.
    #[error("metadata `{parameter}` violates the federation's policy: {reason}")]
    Violation { parameter: String, reason: String },
    /// An operator named in `metadata_policy_crit` that is not understood.
    #[error(
        "metadata_policy uses the critical operator `{0}`, which this server does not understand"
    )]
    CriticalOperator(String),
}

/// A metadata policy for all entity types (`metadata_policy`), validated.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetadataPolicy(Map<String, Value>);

impl MetadataPolicy {
    /// Validates a `metadata_policy` claim: three levels of objects, known
    /// operators with values of their types, in allowed combinations.
    /// Unknown operators are dropped, or refused when `crit` names them.
    pub fn parse(claim: &Value, crit: &[String]) -> Result<Self, PolicyError> {
        let invalid = |parameter: &str, reason: &str| PolicyError::Invalid {
            parameter: parameter.to_owned(),
            reason: reason.to_owned(),
        };
        let Value::Object(types) = claim else {
            return Err(invalid("*", "metadata_policy must be a JSON object"));
        };
        let mut out = Map::new();
        for (entity_type, params) in types {
            let Value::Object(params) = params else {
                return Err(invalid(entity_type, "must be a JSON object"));
            };
            let mut kept = Map::new();
            for (param, ops) in params {
                let Value::Object(ops) = ops else {
                    return Err(invalid(param, "must be a JSON object of operators"));
                };
                let mut known = Map::new();
                for (op, v) in ops {
                    if OPERATORS.contains(&op.as_str()) {
                        known.insert(op.clone(), v.clone());
                    } else if crit.iter().any(|c| c == op) {
                        return Err(PolicyError::CriticalOperator(op.clone()));
                    }
                }
                check_parameter_policy(param, &known)?;
                kept.insert(param.clone(), Value::Object(known));
            }
            out.insert(entity_type.clone(), Value::Object(kept));
        }
        Ok(Self(out))
    }

    /// The policy for one entity type, if any.
    pub fn for_type(&self, entity_type: &str) -> Option<&Map<String, Value>> {
        self.0.get(entity_type).and_then(Value::as_object)
    }

    /// Merges a subordinate's policy into this one (the superior's), level
    /// by level (§6.1.4.1): what only one side has is copied; operators both
    /// have are merged by each operator's rule; the result is checked again.
    pub fn merge(&self, subordinate: &Self) -> Result<Self, PolicyError> {
        let mut out = self.0.clone();
        for (entity_type, sub_params) in &subordinate.0 {
            let Some(sub_params) = sub_params.as_object() else {
                continue;
            };
            let current = out
                .entry(entity_type.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            let Value::Object(current) = current else {
                continue;
            };
            for (param, sub_ops) in sub_params {
                let Some(sub_ops) = sub_ops.as_object() else {
                    continue;
                };
                let merged = match current.get(param).and_then(Value::as_object) {
                    None => sub_ops.clone(),
                    Some(ops) => merge_operators(param, ops, sub_ops)?,
                };
                check_parameter_policy(param, &merged)?;
                current.insert(param.clone(), Value::Object(merged));
            }
        }
        Ok(Self(out))
    }

    /// Applies the policy to an entity's metadata (all its entity types):
    /// the resolved metadata, or the first violation.
    pub fn apply(&self, metadata: &Map<String, Value>) -> Result<Map<String, Value>, PolicyError> {
        let mut out = metadata.clone();
        for (entity_type, params) in &self.0 {
            // Policies for entity types the entity does not have are moot.
            let Some(Value::Object(md)) = out.get_mut(entity_type) else {
                continue;
            };
            if let Some(params) = params.as_object() {
                *md = apply_type(params, md)?;
            }
        }
        Ok(out)
    }
}

/// Applies one entity type's parameter policies to its metadata.
pub fn apply_type(
    policy: &Map<String, Value>,
    metadata: &Map<String, Value>,
) -> Result<Map<String, Value>, PolicyError> {
    let mut out = metadata.clone();
    for (param, ops) in policy {
        let Some(ops) = ops.as_object() else { continue };
        // §6.1.3.1.8: `scope` is a space-separated string, treated as an
        // array by the operators and written back as a string.
        let is_scope = param == "scope";
        let mut current = out.remove(param).map(|v| match (is_scope, v) {
            (true, Value::String(s)) => Value::Array(
                s.split(' ')
                    .filter(|t| !t.is_empty())
                    .map(Value::from)
                    .collect(),
            ),
            (_, v) => v,
        });
        apply_operators(param, ops, &mut current)?;
        if let Some(v) = current {
            let v = match (is_scope, v) {
                (true, Value::Array(items)) => Value::String(
                    items
                        .iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(" "),
                ),
                (_, v) => v,
            };
            out.insert(param.clone(), v);
        }
    }
    Ok(out)
}

fn apply_operators(
    param: &str,
    ops: &Map<String, Value>,
    current: &mut Option<Value>,
) -> Result<(), PolicyError> {
    let violation = |reason: String| PolicyError::Violation {
        parameter: param.to_owned(),
        reason,
    };
    for op in OPERATORS {
        let Some(v) = ops.get(op) else { continue };
        match op {
            "value" => {
                *current = (!v.is_null()).then(|| v.clone());
            }
            "add" => {
                let add = v.as_array().cloned().unwrap_or_default();
                match current {
                    None => *current = Some(Value::Array(add)),
                    Some(Value::Array(items)) => {
                        for a in add {
                            if !items.contains(&a) {
                                items.push(a);
                            }
                        }
                    }
                    Some(_) => return Err(violation("`add` needs an array".into())),
                }
            }
            "default" if current.is_none() => {
                *current = Some(v.clone());
            }
            "one_of" => {
                if let Some(value) = current {
                    if value.is_array() {
                        return Err(violation("`one_of` needs a single value".into()));
                    }
                    if !set(v).contains(&&*value) {
                        return Err(violation(format!("{value} is not one of {v}")));
                    }
                }
            }
            "subset_of" => match current {
                None => {}
                Some(Value::Array(items)) => {
                    let allowed = set(v);
                    items.retain(|i| allowed.contains(&i));
                }
                Some(_) => return Err(violation("`subset_of` needs an array".into())),
            },
            "superset_of" => match current {
                None => {}
                Some(Value::Array(items)) => {
                    if let Some(missing) = set(v).into_iter().find(|r| !items.contains(r)) {
                        return Err(violation(format!("it must include {missing}")));
                    }
                }
                Some(_) => return Err(violation("`superset_of` needs an array".into())),
            },
            "essential" if v == &Value::Bool(true) && current.is_none() => {
                return Err(violation("it is essential and missing".into()));
            }
            _ => {}
        }
    }
    Ok(())
}

/// The elements of an operator's array value.
fn set(v: &Value) -> Vec<&Value> {
    v.as_array().map(|a| a.iter().collect()).unwrap_or_default()
}

fn is_subset(a: &Value, b: &Value) -> bool {
    let b = set(b);
    set(a).iter().all(|x| b.contains(x))
}

/// Each operator's value types (§6.1.3.1) and the allowed combinations in
/// one parameter's policy.
fn check_parameter_policy(param: &str, ops: &Map<String, Value>) -> Result<(), PolicyError> {
    let invalid = |reason: String| PolicyError::Invalid {
        parameter: param.to_owned(),
        reason,
    };
    for (op, v) in ops {
        let ok = match op.as_str() {
            "value" => !v.is_object(),
            "default" => !v.is_null() && !v.is_object(),
            "add" | "subset_of" | "superset_of" => v.is_array(),
            "one_of" => v.as_array().is_some_and(|a| !a.is_empty()),
            "essential" => v.is_boolean(),
            _ => true,
        };
        if !ok {
            return Err(invalid(format!("`{op}` has a value of the wrong type")));
        }
    }
    let get = |op: &str| ops.get(op);
    if let Some(value) = get("value") {
        // A `null` value removes the parameter: it is the empty set.
        let values = if value.is_null() {
            Value::Array(Vec::new())
        } else {
            value.clone()
        };
        if value.is_null() && get("default").is_some() {
            return Err(invalid(
                "`value` null cannot be combined with `default`".into(),
            ));
        }
        if value.is_null() && get("essential") == Some(&Value::Bool(true)) {
            return Err(invalid("`value` null cannot be essential".into()));
        }
        if let Some(add) = get("add") {
            if !values.is_array() || !is_subset(add, &values) {
                return Err(invalid(
                    "the values of `add` must be among `value`'s".into(),
                ));
            }
        }
        if let Some(one_of) = get("one_of") {
            if !set(one_of).contains(&value) {
                return Err(invalid("`value` must be one of `one_of`".into()));
            }
        }
        if let Some(subset_of) = get("subset_of") {
            if !values.is_array() || !is_subset(&values, subset_of) {
                return Err(invalid("`value` must be a subset of `subset_of`".into()));
            }
        }
        if let Some(superset_of) = get("superset_of") {
            if !values.is_array() || !is_subset(superset_of, &values) {
                return Err(invalid(
                    "`value` must be a superset of `superset_of`".into(),
                ));
            }
        }
    }
    if get("one_of").is_some() {
        if let Some(other) = ["add", "subset_of", "superset_of"]
            .into_iter()
            .find(|o| get(o).is_some())
        {
            return Err(invalid(format!(
                "`one_of` cannot be combined with `{other}`"
            )));
        }
    }
    if let (Some(add), Some(subset_of)) = (get("add"), get("subset_of")) {
        if !is_subset(add, subset_of) {
            return Err(invalid(
                "the values of `add` must be a subset of `subset_of`".into(),
            ));
        }
    }
    if let (Some(subset_of), Some(superset_of)) = (get("subset_of"), get("superset_of")) {
        if !is_subset(superset_of, subset_of) {
            return Err(invalid(
                "`subset_of` must be a superset of `superset_of`".into(),
            ));
        }
    }
    Ok(())
}

/// Merges two policies of one parameter, operator by operator (§6.1.3.1).
fn merge_operators(
    param: &str,
    superior: &Map<String, Value>,
    subordinate: &Map<String, Value>,
) -> Result<Map<String, Value>, PolicyError> {
    let conflict = |operator: &'static str, reason: &'static str| PolicyError::Conflict {
        parameter: param.to_owned(),
        operator,
        reason,
    };
    let mut out = superior.clone();
    for op in OPERATORS {
        let Some(sub) = subordinate.get(op) else {
            continue;
        };
        let Some(sup) = superior.get(op) else {
            out.insert(op.to_owned(), sub.clone());
            continue;
        };
        let merged = match op {
            "value" | "default" => {
                if sup != sub {
                    return Err(conflict(
                        if op == "value" { "value" } else { "default" },
                        "the values must be equal",
                    ));
                }
                sup.clone()
            }
            "add" | "superset_of" => {
                let mut union: Vec<Value> = set(sup).into_iter().cloned().collect();
                for v in set(sub) {
                    if !union.contains(v) {
                        union.push(v.clone());
                    }
                }
                Value::Array(union)
            }
            "one_of" | "subset_of" => {
                let theirs = set(sub);
                let both: Vec<Value> = set(sup)
                    .into_iter()
                    .filter(|v| theirs.contains(v))
                    .cloned()
                    .collect();
                if op == "one_of" && both.is_empty() {
                    return Err(conflict("one_of", "the two lists have no value in common"));
                }
                Value::Array(both)
            }
            "essential" => Value::Bool(sup == &Value::Bool(true) || sub == &Value::Bool(true)),
            _ => continue,
        };
        out.insert(op.to_owned(), merged);
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy(v: Value) -> MetadataPolicy {
        MetadataPolicy::parse(&v, &[]).unwrap()
    }

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    /// OpenID Federation 1.0 §6.1.5, Figure 12.
    fn trust_anchor_policy() -> Value {
        json!({"openid_relying_party": {
            "grant_types": {
                "default": ["authorization_code"],
                "subset_of": ["authorization_code", "refresh_token"],
                "superset_of": ["authorization_code"]
            },
            "token_endpoint_auth_method": {
                "one_of": ["private_key_jwt", "self_signed_tls_client_auth"],
                "essential": true
            },
            "token_endpoint_auth_signing_alg": {"one_of": ["PS256", "ES256"]},
            "subject_type": {"value": "pairwise"},
            "contacts": {"add": ["helpdesk@federation.example.org"]}
        }})
    }

    /// Figure 13: the intermediate's policy (its `metadata` is applied by
    /// the chain, see `chain.rs`).
    fn intermediate_policy() -> Value {
        json!({"openid_relying_party": {
            "grant_types": {"subset_of": ["authorization_code"]},
            "token_endpoint_auth_method": {"one_of": ["self_signed_tls_client_auth"]},
            "contacts": {"add": ["helpdesk@org.example.org"]}
        }})
    }

    #[test]
    fn the_specifications_example_policies_merge_into_figure_14() {
        let merged = policy(trust_anchor_policy())
            .merge(&policy(intermediate_policy()))
            .unwrap();
        let expected = json!({
            "grant_types": {
                "default": ["authorization_code"],
                "superset_of": ["authorization_code"],
                "subset_of": ["authorization_code"]
            },
            "token_endpoint_auth_method": {
                "one_of": ["self_signed_tls_client_auth"],
                "essential": true
            },
            "token_endpoint_auth_signing_alg": {"one_of": ["PS256", "ES256"]},
            "subject_type": {"value": "pairwise"},
            "contacts": {"add": ["helpdesk@federation.example.org", "helpdesk@org.example.org"]}
        });
        assert_eq!(
            Value::Object(merged.for_type("openid_relying_party").unwrap().clone()),
            expected
        );
    }

    #[test]
    fn the_merged_example_policy_resolves_figure_15_into_figure_16() {
        let merged = policy(trust_anchor_policy())
            .merge(&policy(intermediate_policy()))
            .unwrap();
        // Figure 15, with the intermediate's `metadata` of Figure 13
        // already applied (as the chain does before the policy).
        let leaf = json!({"openid_relying_party": {
            "redirect_uris": ["https://rp.example.org/callback"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "self_signed_tls_client_auth",
            "contacts": ["rp_admins@rp.example.org"],
            "sector_identifier_uri": "https://org.example.org/sector-ids.json",
            "policy_uri": "https://org.example.org/policy.html"
        }});
        let resolved = merged.apply(&obj(leaf)).unwrap();
        assert_eq!(
            resolved["openid_relying_party"],
            json!({
                "redirect_uris": ["https://rp.example.org/callback"],
                "grant_types": ["authorization_code"],
                "response_types": ["code"],
                "token_endpoint_auth_method": "self_signed_tls_client_auth",
                "subject_type": "pairwise",
                "sector_identifier_uri": "https://org.example.org/sector-ids.json",
                "policy_uri": "https://org.example.org/policy.html",
                "contacts": [
                    "rp_admins@rp.example.org",
                    "helpdesk@federation.example.org",
                    "helpdesk@org.example.org"
                ]
            })
        );
    }

    #[test]
    fn essential_and_subset_of_give_the_outputs_of_table_1() {
        let cases = [
            (true, json!(["a", "e"]), Some(json!(["a"]))),
            (false, json!(["a", "e"]), Some(json!(["a"]))),
            (true, json!(["d", "e"]), Some(json!([]))),
            (false, json!(["d", "e"]), Some(json!([]))),
            (true, Value::Null, None),
            (false, Value::Null, Some(Value::Null)),
        ];
        for (essential, input, output) in cases {
            let p = obj(json!({"x": {"essential": essential, "subset_of": ["a", "b", "c"]}}));
            let md = if input.is_null() {
                Map::new()
            } else {
                obj(json!({ "x": input }))
            };
            let result = apply_type(&p, &md);
            match output {
                None => assert!(matches!(result, Err(PolicyError::Violation { .. }))),
                Some(Value::Null) => assert_eq!(result.unwrap().get("x"), None),
                Some(v) => assert_eq!(result.unwrap()["x"], v),
            }
        }
    }

    #[test]
    fn each_operator_applies_in_its_order() {
        let p = obj(json!({
            "a": {"value": "x"},
            "b": {"value": null},
            "c": {"add": ["y"], "default": ["z"]},
            "d": {"default": "ES256", "one_of": ["ES256", "PS256"]},
            "scope": {"subset_of": ["openid", "email"], "superset_of": ["openid"]}
        }));
        let md = obj(json!({"a": "w", "b": "gone", "scope": "openid email admin"}));
        let out = apply_type(&p, &md).unwrap();
        assert_eq!(
            Value::Object(out),
            json!({"a": "x", "c": ["y"], "d": "ES256", "scope": "openid email"})
        );
    }

    #[test]
    fn metadata_outside_the_policy_is_a_violation() {
        for (p, md) in [
            (json!({"x": {"one_of": ["a", "b"]}}), json!({"x": "c"})),
            (
                json!({"x": {"superset_of": ["a", "b"]}}),
                json!({"x": ["a"]}),
            ),
            (json!({"x": {"essential": true}}), json!({})),
            (json!({"x": {"add": ["a"]}}), json!({"x": "not an array"})),
        ] {
            let r = apply_type(&obj(p.clone()), &obj(md));
            assert!(matches!(r, Err(PolicyError::Violation { .. })), "{p}");
        }
    }

    #[test]
    fn operator_values_that_cannot_merge_are_conflicts() {
        for (sup, sub, op) in [
            (json!({"value": "a"}), json!({"value": "b"}), "value"),
            (json!({"default": "a"}), json!({"default": "b"}), "default"),
            (json!({"one_of": ["a"]}), json!({"one_of": ["b"]}), "one_of"),
        ] {
            let r = policy(json!({"t": {"x": sup}})).merge(&policy(json!({"t": {"x": sub}})));
            assert!(
                matches!(&r, Err(PolicyError::Conflict { operator, .. }) if *operator == op),
                "{r:?}"
            );
        }
        // Merges that produce a combination that is not allowed.
        let r = policy(json!({"t": {"x": {"value": ["c"]}}}))
            .merge(&policy(json!({"t": {"x": {"subset_of": ["a", "b"]}}})));
        assert!(matches!(r, Err(PolicyError::Invalid { .. })));
        let r = policy(json!({"t": {"x": {"superset_of": ["a", "c"]}}}))
            .merge(&policy(json!({"t": {"x": {"subset_of": ["a", "b"]}}})));
        assert!(matches!(r, Err(PolicyError::Invalid { .. })));
    }

    #[test]
    fn values_merge_by_each_operators_rule() {
        let merged = policy(json!({"t": {"x": {
            "subset_of": ["a", "b", "c"], "superset_of": ["a"], "essential": false, "add": ["a"]
        }}}))
        .merge(&policy(json!({"t": {"x": {
            "subset_of": ["b", "a", "d"], "superset_of": ["b"], "essential": true, "add": ["b"]
        }}})))
        .unwrap();
        assert_eq!(
            Value::Object(merged.for_type("t").unwrap().clone()),
            json!({"x": {
                "subset_of": ["a", "b"], "superset_of": ["a", "b"], "essential": true, "add": ["a", "b"]
            }})
        );
    }

    #[test]
    fn combinations_the_operators_forbid_are_refused() {
        for p in [
            json!({"value": null, "default": "a"}),
            json!({"value": null, "essential": true}),
            json!({"value": "c", "one_of": ["a", "b"]}),
            json!({"value": ["a"], "add": ["b"]}),
            json!({"value": ["a"], "superset_of": ["a", "b"]}),
            json!({"one_of": ["a"], "subset_of": ["a"]}),
            json!({"add": ["c"], "subset_of": ["a"]}),
            json!({"subset_of": ["a"], "superset_of": ["a", "b"]}),
            json!({"one_of": []}),
            json!({"essential": "yes"}),
            json!({"add": "a"}),
        ] {
            let r = MetadataPolicy::parse(&json!({"t": {"x": p.clone()}}), &[]);
            assert!(matches!(r, Err(PolicyError::Invalid { .. })), "{p}");
        }
    }

    #[test]
    fn unknown_operators_are_ignored_unless_critical() {
        let p = json!({"t": {"x": {"regexp": "^a", "default": "a"}}});
        let parsed = MetadataPolicy::parse(&p, &[]).unwrap();
        assert_eq!(
            Value::Object(parsed.for_type("t").unwrap().clone()),
            json!({"x": {"default": "a"}})
        );
        assert_eq!(
            MetadataPolicy::parse(&p, &["regexp".into()]),
            Err(PolicyError::CriticalOperator("regexp".into()))
        );
    }
}

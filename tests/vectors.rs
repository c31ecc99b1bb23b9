//! Conformance vectors (copied from shared/vectors): every case goes through the same path
//! as `scopegate check` — policy objects through the file parser, the request through the
//! SubjectAccessReview decoder — and the indexed engine must agree with the reference
//! evaluator on every case.

#[path = "reference/mod.rs"]
mod reference;

use scopegate::engine::{self, EngineOptions, NoMatch, SourceOrder};
use scopegate::model::{AccessRequest, Scope, Verdict};
use scopegate::policy::parse::{Format, add_value, parse_text};
use scopegate::policy::{Origin, PolicySet, Snapshot};
use serde_json::Value;
use std::path::PathBuf;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn cases(file: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(fixtures().join("vectors").join(file)).expect("vector file");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("vector line is JSON"))
        .collect()
}

fn add(set: &mut PolicySet, case: &Value, key: &str) {
    let mut diagnostics = Vec::new();
    if let Some(v) = case.get(key) {
        add_value(
            &Origin::new("vector", key),
            v.clone(),
            set,
            &mut diagnostics,
        );
    }
    assert!(diagnostics.is_empty(), "{key}: {diagnostics:?}");
}

fn decide(
    case: &Value,
    set: PolicySet,
    options: &EngineOptions,
    request: &AccessRequest,
) -> (scopegate::model::Decision, std::sync::Arc<Snapshot>) {
    let name = case["name"].as_str().unwrap_or("?");
    let parsed = set.clone();
    let snapshot = std::sync::Arc::new(
        Snapshot::build(set, options, 1).unwrap_or_else(|e| panic!("{name}: policy rejected: {e}")),
    );
    let decision = engine::authorize(&snapshot, options, request);
    let raw: Vec<scopegate::policy::schema::RoleAssignment> = case["assignments"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| serde_json::from_value(a.clone()).expect("assignment reads"))
        .collect();
    let policy = reference::Policy {
        set: &parsed,
        role_assignments: &raw,
    };
    let expected = reference::decide(&policy, &reference_options(options), request);
    let ids: Vec<&str> = decision.decided_by.iter().map(|id| &**id).collect();
    if let Err(e) = reference::agrees(&expected, decision.verdict, decision.source, &ids) {
        panic!("{name}: engine and reference evaluator disagree: {e}");
    }
    (decision, snapshot)
}

/// The engine's options in the reference's words.
fn reference_options(o: &EngineOptions) -> reference::Options {
    reference::Options {
        cluster: o.cluster_resource_id.as_ref().map(|s| s.key().to_string()),
        action_prefix: o.action_prefix.clone(),
        principal_claim: o.principal_claim.clone(),
        skip_system_users: o.skip_system_users,
        deny_non_aad_users: o.non_aad_users == NoMatch::Deny,
        deny_on_no_match: o.no_match == NoMatch::Deny,
        rbac_first: o.order == SourceOrder::RbacFirst,
        discovery_paths: o.discovery_paths,
    }
}

fn check_expected(case: &Value, decision: &scopegate::model::Decision) -> Result<(), String> {
    let name = case["name"].as_str().unwrap_or("?");
    let expected = &case["expected"];
    let allowed = expected["allowed"].as_bool().unwrap_or(false);
    let denied = expected["denied"].as_bool().unwrap_or(false);
    if decision.allowed() != allowed || decision.denied() != denied {
        return Err(format!(
            "{name}: expected allowed={allowed} denied={denied}, got {:?} ({})",
            decision.verdict, decision.reason
        ));
    }
    if let Some(reason) = expected.get("reason").and_then(Value::as_str)
        && decision.reason.to_string() != reason
    {
        return Err(format!(
            "{name}: expected reason `{reason}`, got `{}`",
            decision.reason
        ));
    }
    if let Some(part) = expected.get("reason_contains").and_then(Value::as_str)
        && !decision.reason.to_string().contains(part)
    {
        return Err(format!(
            "{name}: reason `{}` does not contain `{part}`",
            decision.reason
        ));
    }
    Ok(())
}

#[test]
fn azure_rbac_vectors() {
    let mut failures = Vec::new();
    let all = cases("azure-rbac.jsonl");
    assert!(all.len() >= 38);
    for case in &all {
        let mut set = PolicySet::default();
        add(&mut set, case, "roles");
        add(&mut set, case, "assignments");
        add(&mut set, case, "deny_assignments");
        if let Some(ancestry) = case["environment"]["management_group_ancestry"].as_object() {
            for (sub, chain) in ancestry {
                let chain = chain
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect();
                set.management_group_ancestry.push((sub.clone(), chain));
            }
        }
        let options = EngineOptions {
            cluster_resource_id: Some(
                Scope::parse(case["cluster_resource_id"].as_str().unwrap()).unwrap(),
            ),
            no_match: NoMatch::Deny,
            ..EngineOptions::default()
        };
        let review = serde_json::json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": case["request"]});
        let request = scopegate::sar::decode(review.to_string().as_bytes())
            .unwrap()
            .request;
        let (decision, _) = decide(case, set, &options, &request);
        if let Err(e) = check_expected(case, &decision) {
            failures.push(e);
        }
        // Every allow and deny names what decided it.
        if decision.verdict != Verdict::NoOpinion
            && decision.source == scopegate::model::Source::AzureRbac
        {
            assert!(!decision.decided_by.is_empty(), "{}: no ids", case["name"]);
        }
        if let (Some(actions), Verdict::Allow | Verdict::Deny) = (
            case["expected"]["data_actions"].as_array(),
            decision.verdict,
        ) && decision.source != scopegate::model::Source::Request
            && let Some(first) = actions.first().and_then(Value::as_str)
            && !decision
                .reason
                .to_string()
                .contains(&first.to_ascii_lowercase())
        {
            failures.push(format!(
                "{}: reason `{}` does not name action {first}",
                case["name"], decision.reason
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn rbac_case(case: &Value) -> Result<(), String> {
    let mut set = PolicySet::default();
    let mut diagnostics = Vec::new();
    for base in case["base_policy"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        let path = fixtures().join(base);
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        parse_text(base, &text, Format::Yaml, &mut set, &mut diagnostics);
    }
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    for key in [
        "roles",
        "cluster_roles",
        "role_bindings",
        "cluster_role_bindings",
    ] {
        add(&mut set, case, key);
    }
    let options = EngineOptions::default();
    let request = scopegate::sar::decode(case["request"].to_string().as_bytes())
        .map_err(|e| e.to_string())?
        .request;
    let (decision, snapshot) = decide(case, set, &options, &request);
    check_expected(case, &decision)?;
    if let Some(upstream) = case.get("upstream_reason").and_then(Value::as_str) {
        let rbac = snapshot.rbac.authorize(&request);
        let ours = rbac
            .decision
            .as_ref()
            .map(|d| d.reason.to_string())
            .unwrap_or_else(|| rbac.reason());
        if ours != upstream {
            return Err(format!(
                "{}: upstream reason `{upstream}`, ours `{ours}`",
                case["name"]
            ));
        }
    }
    Ok(())
}

#[test]
fn kubernetes_rbac_vectors() {
    let all = cases("k8s-rbac.jsonl");
    assert!(all.len() >= 90);
    let failures: Vec<String> = all.iter().filter_map(|c| rbac_case(c).err()).collect();
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn kubernetes_bootstrap_vectors() {
    let all = cases("k8s-bootstrap.jsonl");
    assert!(all.len() >= 44);
    let failures: Vec<String> = all.iter().filter_map(|c| rbac_case(c).err()).collect();
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Guard option vectors: reference material, not a requirement. The ones whose options
/// scopegate has are run; the rest are listed here with the reason, and the list is checked
/// so nothing is skipped silently.
#[test]
fn guard_option_vectors_that_map_to_scopegate_options() {
    const NOT_APPLICABLE: [(&str, &str); 6] = [
        (
            "abac_crd_condition_allows_matching_group_kind",
            "needs Guard's discovery catalogue (customresources action)",
        ),
        (
            "abac_crd_condition_blocks_other_group",
            "needs Guard's discovery catalogue (customresources action)",
        ),
        (
            "abac_condition_bypassed_by_unconditioned_assignment",
            "needs Guard's discovery catalogue (customresources action)",
        ),
        (
            "arc_skip_list_no_opinion",
            "per-user skip list: use matchConditions in the AuthorizationConfiguration instead",
        ),
        (
            "managed_namespace_fallback_allows",
            "managedNamespaces fallback scope is not implemented",
        ),
        (
            "fleet_member_fallback_allows",
            "fleet fallback is not implemented",
        ),
    ];
    // Without a catalogue, `*` requests stand for every action below the pattern, including
    // `namespaces/delete` inside the namespace: Admin is strictly not allowed there.
    const STRICTER: [&str; 1] = ["star_request_admin_namespace_scope_allowed"];
    let mut ran = 0;
    let mut failures = Vec::new();
    for case in cases("azure-guard-options.jsonl") {
        let name = case["name"].as_str().unwrap().to_string();
        if NOT_APPLICABLE.iter().any(|(n, _)| *n == name) {
            continue;
        }
        let cfg = &case["guard_config"];
        let mut options = EngineOptions {
            cluster_resource_id: Some(
                Scope::parse(case["cluster_resource_id"].as_str().unwrap()).unwrap(),
            ),
            no_match: NoMatch::Deny,
            ..EngineOptions::default()
        };
        if cfg["authz_mode"] == "arc" {
            options.action_prefix = "Microsoft.Kubernetes/connectedClusters".into();
        }
        if cfg["skip_authz_for_non_aad_users"] == false {
            options.non_aad_users = NoMatch::Deny;
        }
        if cfg["allow_nonres_discovery_path_access"] == false {
            options.discovery_paths = false;
        }
        let mut set = PolicySet::default();
        add(&mut set, &case, "roles");
        add(&mut set, &case, "assignments");
        add(&mut set, &case, "deny_assignments");
        let review = serde_json::json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": case["request"]});
        let request = scopegate::sar::decode(review.to_string().as_bytes())
            .unwrap()
            .request;
        let (decision, _) = decide(&case, set, &options, &request);
        ran += 1;
        let result = check_expected(&case, &decision);
        if STRICTER.contains(&name.as_str()) {
            assert!(
                result.is_err() && decision.denied(),
                "{name}: expected the stricter answer"
            );
        } else if let Err(e) = result {
            failures.push(e);
        }
    }
    assert_eq!(
        ran, 8,
        "every vector is either run or listed as not applicable"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

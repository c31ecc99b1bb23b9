//! Azure RBAC vectors: verdict, `decision`, `reason`, every `data_actions` entry (exact list,
//! in order, from both the mapping and the engine's explanation) and `checked_scopes` (exact
//! list, in order: the scopes the decision is checked at).

use super::*;
use scopegate::engine::NoMatch;
use scopegate::engine::explain::explain;
use scopegate::model::Source;

/// The vector's policy, with the management group ancestry of its environment.
fn policy(case: &Value) -> PolicySet {
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
    set
}

fn cluster(case: &Value) -> Scope {
    Scope::parse(case["cluster_resource_id"].as_str().expect("cluster id")).expect("cluster id")
}

/// The vector's request (a SubjectAccessReview `spec`) through the decoder.
fn request(case: &Value) -> AccessRequest {
    let review = serde_json::json!({
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": case["request"],
    });
    scopegate::sar::decode(review.to_string().as_bytes())
        .unwrap_or_else(|e| panic!("{}: {e}", name(case)))
        .request
}

/// The actions and the nearest scope the engine's explanation lists for the Azure check.
fn explained(text: &str) -> (Vec<String>, Option<String>) {
    let actions = text
        .lines()
        .filter_map(|l| l.strip_prefix("  action:    "))
        .map(String::from)
        .collect();
    let scope = text
        .lines()
        .skip_while(|l| *l != "  scope chain (nearest first):")
        .nth(1)
        .map(|l| l.trim().to_string());
    (actions, scope)
}

/// A string list of the expectation, lower-cased: Azure action strings and scope ids compare
/// case-insensitively.
fn lowered(list: &Value) -> Option<Vec<String>> {
    list.as_array().map(|items| {
        items
            .iter()
            .map(|v| v.as_str().unwrap_or_default().to_ascii_lowercase())
            .collect()
    })
}

/// Compares every field of an Azure vector's expectation; `data_actions` may be replaced by
/// a documented difference.
fn check(
    case: &Value,
    index: &IndexOptions,
    options: &EngineOptions,
    data_actions: Option<Vec<String>>,
) -> Result<Decision, String> {
    let name = name(case);
    let request = request(case);
    let (decision, snapshot) = decide(case, policy(case), index, options, &request);
    check_verdict_and_reason(case, &decision)?;
    // Every Azure allow and deny names what decided it.
    if decision.verdict != Verdict::NoOpinion
        && decision.source == Source::AzureRbac
        && decision.decided_by.is_empty()
    {
        return Err(format!("{name}: no ids for {:?}", decision.verdict));
    }
    let (explained_actions, explained_scope) = explained(&explain(&snapshot, options, &request).1);
    let mapped = azure_target(&request, &index.action_prefix, &cluster(case));
    let expected = &case["expected"];
    if let Some(want) = data_actions.or_else(|| lowered(&expected["data_actions"])) {
        let (actions, _) = mapped.as_ref().map_err(|e| format!("{name}: {e}"))?;
        if *actions != want {
            return Err(format!(
                "{name}: data actions {want:?}, the mapping gives {actions:?}"
            ));
        }
        if explained_actions != want {
            return Err(format!(
                "{name}: data actions {want:?}, explain lists {explained_actions:?}"
            ));
        }
    }
    if let Some(want) = lowered(&expected["checked_scopes"]) {
        let (_, scope) = mapped.as_ref().map_err(|e| format!("{name}: {e}"))?;
        let ours = vec![scope.to_string()];
        if ours != want {
            return Err(format!(
                "{name}: checked scopes {want:?}, the mapping gives {ours:?}"
            ));
        }
        if explained_scope.as_ref() != want.first() {
            return Err(format!(
                "{name}: checked scopes {want:?}, explain's chain starts at {explained_scope:?}"
            ));
        }
    }
    Ok(decision)
}

#[test]
fn azure_rbac_vectors() {
    let all = cases("azure-rbac.jsonl");
    assert_eq!(all.len(), 38);
    let mut failures = Vec::new();
    for case in &all {
        let index = IndexOptions::for_cluster(cluster(case));
        let options = EngineOptions {
            no_match: NoMatch::Deny,
            ..EngineOptions::default()
        };
        if let Err(e) = check(case, &index, &options, None) {
            failures.push(e);
        }
    }
    assert_no_failures(&failures);
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
    // Without a catalogue, verb `*` is one pattern below the resource, not the catalogued
    // list; the verdict and scope are still compared.
    const OWN_ACTIONS: [(&str, &[&str]); 1] = [(
        "star_verb_on_pods_writer",
        &["microsoft.containerservice/managedclusters/pods/*"],
    )];
    let all = cases("azure-guard-options.jsonl");
    assert_eq!(all.len(), 14);
    let mut ran = 0;
    let mut failures = Vec::new();
    for case in &all {
        let name = name(case);
        if NOT_APPLICABLE.iter().any(|(n, _)| *n == name) {
            continue;
        }
        let cfg = &case["guard_config"];
        let mut index = IndexOptions::for_cluster(cluster(case));
        let mut options = EngineOptions {
            no_match: NoMatch::Deny,
            ..EngineOptions::default()
        };
        if cfg["authz_mode"] == "arc" {
            index.action_prefix = "Microsoft.Kubernetes/connectedClusters".into();
        }
        if cfg["skip_authz_for_non_aad_users"] == false {
            options.non_aad_users = NoMatch::Deny;
        }
        if cfg["allow_nonres_discovery_path_access"] == false {
            options.discovery_paths = false;
        }
        let own = OWN_ACTIONS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, a)| a.iter().map(|s| s.to_string()).collect());
        ran += 1;
        let result = check(case, &index, &options, own);
        if STRICTER.contains(&name) {
            let request = request(case);
            let (decision, _) = decide(case, policy(case), &index, &options, &request);
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
    assert_no_failures(&failures);
}

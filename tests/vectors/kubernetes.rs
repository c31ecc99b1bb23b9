//! Kubernetes RBAC vectors: verdict (`allowed`, `denied`), `reason_contains`, and the exact
//! `upstream_reason` the in-tree RBAC authorizer gives.

use super::*;
use scopegate::policy::parse::{Format, parse_text};

fn rbac_case(case: &Value) -> Result<(), String> {
    let name = name(case);
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
        .map_err(|e| format!("{name}: {e}"))?
        .request;
    let (decision, snapshot) = decide(case, set, &IndexOptions::default(), &options, &request);
    check_verdict_and_reason(case, &decision)?;
    let upstream = case
        .get("upstream_reason")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{name}: no upstream_reason"))?;
    let rbac = scopegate::engine::k8s_rbac::authorize(&snapshot.rbac, &request);
    let ours = rbac
        .decision
        .as_ref()
        .map(|d| d.reason.to_string())
        .unwrap_or_else(|| rbac.reason());
    if ours != upstream {
        return Err(format!(
            "{name}: upstream reason `{upstream}`, ours `{ours}`"
        ));
    }
    Ok(())
}

#[test]
fn kubernetes_rbac_vectors() {
    let all = cases("k8s-rbac.jsonl");
    assert_eq!(all.len(), 90);
    let failures: Vec<String> = all.iter().filter_map(|c| rbac_case(c).err()).collect();
    assert_no_failures(&failures);
}

#[test]
fn kubernetes_bootstrap_vectors() {
    let all = cases("k8s-bootstrap.jsonl");
    assert_eq!(all.len(), 44);
    let failures: Vec<String> = all.iter().filter_map(|c| rbac_case(c).err()).collect();
    assert_no_failures(&failures);
}

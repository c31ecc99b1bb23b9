//! Conformance vectors (copied from shared/vectors) and literal mapping expectations. Every
//! field an expectation holds is compared, and every file's case count is exact.
//!
//! Decision vectors go through the same path as `scopegate check` — policy objects through
//! the file parser, the request through the SubjectAccessReview decoder — and the indexed
//! engine must agree with the reference evaluator on every case.
//!
//! - `azure`: azure-rbac.jsonl and azure-guard-options.jsonl (verdict, reason, data actions,
//!   checked scopes)
//! - `kubernetes`: k8s-rbac.jsonl and k8s-bootstrap.jsonl (verdict, reason, upstream reason)
//! - `webhook`: webhook-protocol-cases.jsonl over real HTTPS, and the `resp-*.json` bodies
//!   through the encoder and decoder
//! - `mapping`: a hand-written table of request -> Azure data actions for every verb and
//!   connect subresource the mapping knows

#[path = "../support/mod.rs"]
mod support;

mod azure;
mod checkaccess;
mod kubernetes;
mod mapping;
mod tokenreview;
mod webhook;

#[path = "../reference/mod.rs"]
mod reference;

use scopegate::engine::{self, EngineOptions, NoMatch, SourceOrder};
/// The request -> Azure actions and scope mapping under test: imported here only, so a move
/// of the function is a one-line change.
use scopegate::model::mapping::map_request as azure_mapping;
use scopegate::model::{AccessRequest, Decision, Scope, Verdict};
use scopegate::policy::parse::add_value;
use scopegate::policy::{IndexOptions, Origin, PolicySet, Snapshot};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;

pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The cases of one vector file, one JSON object a line.
pub fn cases(file: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(fixtures().join("vectors").join(file)).expect("vector file");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("vector line is JSON"))
        .collect()
}

pub fn name(case: &Value) -> &str {
    case["name"].as_str().unwrap_or("?")
}

/// Adds the policy objects under `key` through the file parser; they must parse cleanly.
pub fn add(set: &mut PolicySet, case: &Value, key: &str) {
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

/// Builds the snapshot and decides; the indexed engine and the reference evaluator must agree.
pub fn decide(
    case: &Value,
    set: PolicySet,
    index: &IndexOptions,
    options: &EngineOptions,
    request: &AccessRequest,
) -> (Decision, Arc<Snapshot>) {
    let name = name(case);
    let parsed = set.clone();
    let snapshot = Arc::new(
        Snapshot::build(set, index, 1).unwrap_or_else(|e| panic!("{name}: policy rejected: {e}")),
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
    let expected = reference::decide(&policy, &reference_options(index, options), request);
    let ids: Vec<&str> = decision.decided_by.iter().map(|id| &**id).collect();
    if let Err(e) = reference::agrees(&expected, decision.verdict, decision.source, &ids) {
        panic!("{name}: engine and reference evaluator disagree: {e}");
    }
    (decision, snapshot)
}

/// The engine's options in the reference's words.
fn reference_options(index: &IndexOptions, o: &EngineOptions) -> reference::Options {
    reference::Options {
        cluster: index
            .cluster_resource_id
            .as_ref()
            .map(|s| s.key().to_string()),
        action_prefix: index.action_prefix.clone(),
        principal_claim: o.principal_claim.clone(),
        skip_system_users: o.skip_system_users,
        deny_non_aad_users: o.non_aad_users == NoMatch::Deny,
        deny_on_no_match: o.no_match == NoMatch::Deny,
        rbac_first: o.order == SourceOrder::RbacFirst,
        discovery_paths: o.discovery_paths,
    }
}

/// A vector's `decision` spelling of a verdict.
pub fn verdict_name(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Allow => "Allow",
        Verdict::Deny => "Deny",
        Verdict::NoOpinion => "NoOpinion",
    }
}

/// Compares the fields every decision vector may hold: `allowed`, `denied`, `decision`,
/// `reason` (exact) and `reason_contains`.
pub fn check_verdict_and_reason(case: &Value, decision: &Decision) -> Result<(), String> {
    let name = name(case);
    let expected = &case["expected"];
    let field = |key: &str| {
        expected[key]
            .as_bool()
            .ok_or_else(|| format!("{name}: expected.{key} is not a bool"))
    };
    let (allowed, denied) = (field("allowed")?, field("denied")?);
    if decision.allowed() != allowed || decision.denied() != denied {
        return Err(format!(
            "{name}: expected allowed={allowed} denied={denied}, got {:?} ({})",
            decision.verdict, decision.reason
        ));
    }
    if let Some(verdict) = expected.get("decision").and_then(Value::as_str)
        && verdict != verdict_name(decision.verdict)
    {
        return Err(format!(
            "{name}: expected decision {verdict}, got {:?}",
            decision.verdict
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

/// What the mapping makes of a request: its Azure data actions (as the mapping writes them,
/// lower-cased) and the scope it is checked at below `cluster`.
pub fn azure_target(
    request: &AccessRequest,
    prefix: &str,
    cluster: &Scope,
) -> Result<(Vec<String>, Scope), String> {
    let target = azure_mapping(
        request.resource_attributes.as_deref(),
        request.non_resource_attributes.as_ref(),
        prefix,
    )
    .map_err(|e| e.to_string())?;
    let actions = target
        .actions()
        .iter()
        .map(|a| a.as_str().to_string())
        .collect();
    Ok((actions, target.scope(cluster)))
}

/// Fails with every message, or passes when there are none.
pub fn assert_no_failures(failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

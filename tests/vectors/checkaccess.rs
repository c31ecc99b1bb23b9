//! checkaccess.jsonl: every case in process (policy objects through the file parser, the
//! question built from the case's `request` here, `engine::check_access::decide`), compared
//! decision by decision with `expected`.

use super::*;
use scopegate::engine::check_access;
use scopegate::model::Timestamp;
use scopegate::model::check_access::{CheckAccess, OperationRequest, Subject};

/// The case's policy objects, with the management group ancestry of its environment.
fn policy(case: &Value) -> PolicySet {
    let mut set = PolicySet::default();
    for key in [
        "roles",
        "assignments",
        "deny_assignments",
        "identities",
        "federated_credentials",
        "service_accounts",
    ] {
        add(&mut set, case, key);
    }
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

/// The case's Azure-shaped request, read field by field as the vector README describes it.
fn azure_question(request: &Value) -> Option<CheckAccess> {
    let attributes = &request.get("Subject")?["Attributes"];
    let object_id = attributes["ObjectId"].as_str()?.parse().ok()?;
    let groups = attributes["Groups"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|g| g.as_str().and_then(|g| g.parse().ok()))
        .collect::<Option<Vec<_>>>()?;
    let actions = request["Actions"]
        .as_array()?
        .iter()
        .map(|a| {
            Some(OperationRequest {
                id: a["Id"].as_str()?.to_string(),
                is_data_action: a["IsDataAction"].as_bool()?,
                attributes: Default::default(),
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(CheckAccess {
        subject: Subject::Principal { object_id, groups },
        actions,
        resource: Scope::parse(request["Resource"]["Id"].as_str()?).ok()?,
    })
}

/// The decisions as `(actionId, accessDecision)` pairs.
fn expected(case: &Value) -> Vec<(String, String)> {
    case["expected"]
        .as_array()
        .expect("expected list")
        .iter()
        .map(|e| {
            (
                e["actionId"].as_str().expect("actionId").to_string(),
                e["accessDecision"]
                    .as_str()
                    .expect("accessDecision")
                    .to_string(),
            )
        })
        .collect()
}

#[test]
fn azure_subject_cases_in_process() {
    let all = cases("checkaccess.jsonl");
    assert_eq!(all.len(), 35);
    let mut failures = Vec::new();
    let mut run = 0;
    for case in &all {
        let Some(question) = azure_question(&case["request"]) else {
            continue;
        };
        run += 1;
        let snapshot = Snapshot::build(policy(case), &IndexOptions::default(), 1)
            .unwrap_or_else(|e| panic!("{}: policy rejected: {e}", name(case)));
        let answer = check_access::decide(
            &snapshot,
            &question,
            Timestamp::from_unix_millis(1_800_000_000_000),
        );
        let got: Vec<(String, String)> = question
            .actions
            .iter()
            .zip(&answer.decisions)
            .map(|(a, d)| (a.id.clone(), d.decision.as_str().to_string()))
            .collect();
        if got != expected(case) {
            failures.push(format!(
                "{}: got {got:?}, expected {:?}",
                name(case),
                expected(case)
            ));
        }
    }
    assert_eq!(run, 23);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

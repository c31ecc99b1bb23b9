//! checkaccess.jsonl: every case three ways — in process (the body through the CheckAccess
//! decoder, `engine::check_access::decide`), through `scopegate check -f` on policy files, and
//! through `POST {resource}/providers/Microsoft.Authorization/checkaccess` over HTTPS with
//! mTLS — each compared decision by decision with `expected` (`actionId`, `accessDecision`).
//! The policy objects go in as the files an operator exports: roles, assignments, deny
//! assignments, `az identity list`, `az identity federated-credential list`, ServiceAccounts,
//! and the management group ancestry as `az account management-group entities list` prints it.

use super::support::{self, Pki};
use super::*;
use scopegate::engine::check_access;
use scopegate::model::Timestamp;

/// The case count of the copied vector file.
const CASES: usize = 35;

/// Entities of `az account management-group entities list` for the case's ancestry.
fn management_group_entities(case: &Value) -> Vec<Value> {
    let group = |name: &str| format!("/providers/Microsoft.Management/managementGroups/{name}");
    let mut entities = Vec::new();
    for (sub, chain) in case["environment"]["management_group_ancestry"]
        .as_object()
        .into_iter()
        .flatten()
    {
        let chain: Vec<&str> = chain
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g.as_str().unwrap())
            .collect();
        entities.push(serde_json::json!({
            "id": format!("/subscriptions/{sub}"), "name": sub, "type": "/subscriptions",
            "parent": {"id": group(chain[0])},
        }));
        for pair in chain.windows(2) {
            entities.push(serde_json::json!({
                "id": group(pair[0]), "name": pair[0], "type": "Microsoft.Management/managementGroups",
                "parent": {"id": group(pair[1])},
            }));
        }
    }
    entities
}

/// A policy directory with one file per kind the case holds.
fn workspace(case: &Value) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    std::fs::create_dir(&policies).unwrap();
    for key in [
        "roles",
        "assignments",
        "deny_assignments",
        "identities",
        "federated_credentials",
        "service_accounts",
    ] {
        if let Some(objects) = case.get(key) {
            std::fs::write(policies.join(format!("{key}.json")), objects.to_string()).unwrap();
        }
    }
    let entities = management_group_entities(case);
    if !entities.is_empty() {
        std::fs::write(
            policies.join("management-groups.json"),
            Value::Array(entities).to_string(),
        )
        .unwrap();
    }
    dir
}

/// The decisions as `(actionId, accessDecision)` pairs.
fn pairs(list: &Value) -> Vec<(String, String)> {
    list.as_array()
        .map(|items| {
            items
                .iter()
                .map(|e| {
                    (
                        e["actionId"].as_str().unwrap_or("?").to_string(),
                        e["accessDecision"].as_str().unwrap_or("?").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn compare(case: &Value, answer: &Value) -> Result<(), String> {
    let (got, want) = (pairs(answer), pairs(&case["expected"]));
    if got == want && !want.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{}: got {got:?}, expected {want:?}: {answer}",
            name(case)
        ))
    }
}

fn body(case: &Value) -> Vec<u8> {
    case["request"].to_string().into_bytes()
}

#[test]
fn every_case_in_process() {
    let all = cases("checkaccess.jsonl");
    assert_eq!(all.len(), CASES);
    let mut failures = Vec::new();
    for case in &all {
        let dir = workspace(case);
        let loaded = scopegate::load_snapshot(
            &[dir.path().join("policies")],
            None,
            &IndexOptions::default(),
            1,
        )
        .unwrap_or_else(|e| panic!("{}: policy rejected: {e}", name(case)));
        let question = scopegate::sar::check_access::decode(&body(case))
            .unwrap_or_else(|e| panic!("{}: {e}", name(case)));
        let now = Timestamp::from_system(std::time::SystemTime::now());
        let answer = check_access::decide(&loaded.snapshot, &question, now);
        let encoded = scopegate::sar::check_access::encode(
            question.actions.iter().zip(&answer.decisions),
            answer.time_to_live_ms(now),
        );
        if let Err(e) = compare(case, &serde_json::from_slice(&encoded).unwrap()) {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_case_through_check() {
    let all = cases("checkaccess.jsonl");
    assert_eq!(all.len(), CASES);
    let mut failures = Vec::new();
    for case in &all {
        let dir = workspace(case);
        let request = dir.path().join("request.json");
        std::fs::write(&request, body(case)).unwrap();
        let policies = dir.path().join("policies").display().to_string();
        let request = request.display().to_string();
        let out = support::scopegate(&["check", "-f", &request, "--policies", &policies]);
        let answer: Value = match serde_json::from_slice(&out.stdout) {
            Ok(answer) => answer,
            Err(e) => {
                failures.push(format!(
                    "{}: no answer ({e}): {}",
                    name(case),
                    support::stderr(&out)
                ));
                continue;
            }
        };
        let all_allowed = pairs(&case["expected"]).iter().all(|(_, d)| d == "Allowed");
        if out.status.code() != Some(if all_allowed { 0 } else { 1 }) {
            failures.push(format!("{}: exit code {:?}", name(case), out.status.code()));
        }
        if let Err(e) = compare(case, &answer) {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn every_case_through_the_endpoint() {
    let all = cases("checkaccess.jsonl");
    let pki = Pki::new();
    let mut failures = Vec::new();
    for case in &all {
        let dir = workspace(case);
        let running = support::serve_tls(&pki, &dir.path().join("policies"), &[]).await;
        let mut conn = support::connect_apiserver(running.addr, &pki).await;
        let resource = case["request"]
            .get("Resource")
            .map(|r| r["Id"].clone())
            .unwrap_or_else(|| case["request"]["resource"].clone());
        let path = format!(
            "{}/providers/Microsoft.Authorization/checkaccess?api-version=2018-09-01-preview",
            resource.as_str().unwrap()
        );
        let (code, answer) = conn.post_to(&path, body(case)).await.unwrap();
        if code != 200 {
            failures.push(format!("{}: HTTP {code}: {answer}", name(case)));
        } else if let Err(e) = compare(case, &answer) {
            failures.push(e);
        }
        running.stop().await;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

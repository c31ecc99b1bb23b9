//! Time-bound (PIM) access on the command line: `check --now` before, inside and after an
//! activation window, and `explain` naming the window and the eligibilities.

mod support;

use serde_json::json;
use std::process::Output;
use support::{CLUSTER, root, scopegate, stderr};

const ALICE: &str = "a3bb8764-cb92-4276-9d2a-ca1e895e55ea";
/// Azure Kubernetes Service RBAC Reader.
const READER: &str = "7f6c6a51-bcf8-42ba-9220-52d62157d7db";
/// Azure Kubernetes Service RBAC Writer.
const WRITER: &str = "a7ffa36f-339b-4b5c-8bdf-e2c188b2c0eb";

/// A policy directory: the shipped built-in roles, one activation of RBAC Reader for Alice
/// (09:00 to 17:00) as an ARM page, and an eligibility for RBAC Writer as a bare array.
fn policies() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        root().join("policies/azure/aks-builtin-roles.json"),
        dir.path().join("roles.json"),
    )
    .unwrap();
    let activation = json!({"value": [{
        "properties": {
            "originRoleAssignmentId": format!("{CLUSTER}/providers/Microsoft.Authorization/roleAssignments/0d6b1c3e-8a41-4f3c-9e55-2b7d1f0a9c11"),
            "assignmentType": "Activated",
            "scope": CLUSTER,
            "roleDefinitionId": format!("/providers/Microsoft.Authorization/roleDefinitions/{READER}"),
            "principalId": ALICE,
            "principalType": "User",
            "status": "Provisioned",
            "roleAssignmentScheduleId": format!("{CLUSTER}/providers/Microsoft.Authorization/roleAssignmentSchedules/5c2e9f1a-3b7d-4e60-8f21-9a0c4d6e8b13"),
            "startDateTime": "2026-01-31T09:00:00Z",
            "endDateTime": "2026-01-31T17:00:00Z",
            "memberType": "Direct"
        },
        "name": "0d6b1c3e-8a41-4f3c-9e55-2b7d1f0a9c11",
        "id": format!("{CLUSTER}/providers/Microsoft.Authorization/roleAssignmentScheduleInstances/0d6b1c3e-8a41-4f3c-9e55-2b7d1f0a9c11"),
        "type": "Microsoft.Authorization/roleAssignmentScheduleInstances"
    }]});
    let eligibility = json!([{
        "properties": {
            "scope": CLUSTER,
            "roleDefinitionId": format!("/providers/Microsoft.Authorization/roleDefinitions/{WRITER}"),
            "principalId": ALICE,
            "principalType": "User",
            "status": "Provisioned",
            "roleEligibilityScheduleId": format!("{CLUSTER}/providers/Microsoft.Authorization/roleEligibilitySchedules/7a1d3c5e-2f4b-4d6a-8c9e-1b3d5f7a9c24"),
            "startDateTime": "2026-01-01T00:00:00Z",
            "endDateTime": "2026-12-31T00:00:00Z",
            "memberType": "Direct"
        },
        "name": "7a1d3c5e-2f4b-4d6a-8c9e-1b3d5f7a9c24",
        "id": format!("{CLUSTER}/providers/Microsoft.Authorization/roleEligibilityScheduleInstances/7a1d3c5e-2f4b-4d6a-8c9e-1b3d5f7a9c24"),
        "type": "Microsoft.Authorization/roleEligibilityScheduleInstances"
    }]);
    std::fs::write(dir.path().join("activations.json"), activation.to_string()).unwrap();
    std::fs::write(dir.path().join("eligible.json"), eligibility.to_string()).unwrap();
    dir
}

/// `scopegate <command>` for Alice doing `verb` on pods in `team-a`, at `now`.
fn alice(command: &str, dir: &tempfile::TempDir, verb: &str, now: &str) -> Output {
    let oid = format!("scopegate.io/oid={ALICE}");
    scopegate(&[
        command,
        "--policies",
        dir.path().to_str().unwrap(),
        "--cluster-resource-id",
        CLUSTER,
        "--principal-claim",
        "scopegate.io/oid",
        "--as",
        "alice@contoso.com",
        "--extra",
        &oid,
        "--verb",
        verb,
        "--resource",
        "pods",
        "-n",
        "team-a",
        "--now",
        now,
    ])
}

fn allowed(out: &Output) -> bool {
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("check prints JSON: {}", stderr(out)));
    v["status"]["allowed"] == true
}

#[test]
fn check_now_grants_only_inside_the_activation_window() {
    let dir = policies();
    let cases = [
        ("2026-01-31T08:59:59Z", false),
        ("2026-01-31T09:00:00Z", true),
        ("2026-01-31T10:00:00+01:00", true),
        ("2026-01-31T16:59:59Z", true),
        ("2026-01-31T17:00:00Z", false),
        ("2026-02-01T12:00:00Z", false),
    ];
    for (now, grants) in cases {
        let out = alice("check", &dir, "get", now);
        assert_eq!(allowed(&out), grants, "at {now}: {}", stderr(&out));
        assert_eq!(
            out.status.code(),
            Some(if grants { 0 } else { 2 }),
            "at {now}"
        );
    }
    // The eligibility for Writer never grants a write, even inside its own window.
    let out = alice("check", &dir, "create", "2026-01-31T10:00:00Z");
    assert!(!allowed(&out), "an eligibility granted");
}

#[test]
fn explain_names_the_window_and_what_could_be_activated() {
    let dir = policies();
    let out = alice("explain", &dir, "get", "2026-01-31T10:00:00Z");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "time:      2026-01-31T10:00:00Z",
        "roleAssignmentScheduleInstances/0d6b1c3e-8a41-4f3c-9e55-2b7d1f0a9c11",
        "window from 2026-01-31T09:00:00Z until 2026-01-31T17:00:00Z",
        "holds:     until 2026-01-31T17:00:00Z",
        "eligibility schedule instance",
        "eligible, not activated: grants nothing (could activate from 2026-01-01T00:00:00Z until 2026-12-31T00:00:00Z",
    ] {
        assert!(text.contains(needle), "missing `{needle}` in:\n{text}");
    }
}

#[test]
fn a_malformed_now_is_a_usage_error() {
    let dir = policies();
    let out = alice("check", &dir, "get", "tomorrow at nine");
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("RFC 3339"), "{}", stderr(&out));
}

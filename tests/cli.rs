//! The `scopegate` binary on real files: exit codes, output and diagnostics.

mod support;

use std::process::{Command, Output};

const CLUSTER: &str = "/subscriptions/3f2a6b1c-5d4e-4f70-8a9b-0c1d2e3f4a5b/resourceGroups/rg-platform/providers/Microsoft.ContainerService/managedClusters/aks-prod";

use support::root;

fn scopegate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_scopegate"))
        .args(args)
        .current_dir(root())
        .env_remove("SCOPEGATE_CLUSTER_RESOURCE_ID")
        .output()
        .expect("run scopegate")
}

fn check_file(file: &str) -> Output {
    scopegate(&[
        "check",
        "--policies",
        "policies",
        "--cluster-resource-id",
        CLUSTER,
        "-f",
        file,
    ])
}

fn stdout_json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).expect("check prints JSON")
}

#[test]
fn check_allows_with_exit_0_and_names_the_assignment() {
    let out = check_file("tests/fixtures/requests/alice-create-deployment.json");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = stdout_json(&out);
    assert_eq!(v["status"]["allowed"], true);
    assert_eq!(v["spec"]["user"], "alice@contoso.com");
    let reason = v["status"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("5b1f1c9e-7a43-4c36-9a54-0f6f1e2d3c41") && reason.contains("RBAC Writer"),
        "{reason}"
    );
}

#[test]
fn check_denies_v1beta1_with_exit_1() {
    let out = check_file("tests/fixtures/requests/alice-get-secret.json");
    assert_eq!(out.status.code(), Some(1));
    let v = stdout_json(&out);
    assert_eq!(v["apiVersion"], "authorization.k8s.io/v1beta1");
    assert_eq!(v["status"]["allowed"], false);
    assert_eq!(v["status"]["denied"], true);
    assert!(
        v["status"]["reason"]
            .as_str()
            .unwrap()
            .contains("no-secrets-outside-platform")
    );
}

#[test]
fn management_group_assignment_reaches_cluster_scope() {
    let out = check_file("tests/fixtures/requests/auditor-list-pods-all-namespaces.json");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn check_builds_requests_from_flags_and_reads_env() {
    let out = Command::new(env!("CARGO_BIN_EXE_scopegate"))
        .args([
            "check",
            "--policies",
            "policies",
            "--as",
            "alice@contoso.com",
            "--extra",
            "oid=11111111-2222-4333-8444-555555555555",
        ])
        .args([
            "--as-group",
            "6f0b7e4a-1c2d-4e5f-8a9b-000000000f1d",
            "--verb",
            "create",
            "--resource",
            "pods/exec",
            "-n",
            "finance-app",
            "--name",
            "web-0",
        ])
        .env("SCOPEGATE_CLUSTER_RESOURCE_ID", CLUSTER)
        .current_dir(root())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = stdout_json(&out);
    assert_eq!(v["spec"]["resourceAttributes"]["subresource"], "exec");
    assert!(
        v["status"]["reason"]
            .as_str()
            .unwrap()
            .contains("pods/exec/action")
    );
    // Same user, other namespace: not allowed; no opinion by default, deny with --no-match deny.
    let other = |extra: &[&str]| {
        let mut args = vec![
            "check",
            "--policies",
            "policies",
            "--cluster-resource-id",
            CLUSTER,
            "--as",
            "alice",
            "--extra",
            "oid=11111111-2222-4333-8444-555555555555",
        ];
        args.extend([
            "--as-group",
            "6f0b7e4a-1c2d-4e5f-8a9b-000000000f1d",
            "--verb",
            "get",
            "--resource",
            "pods",
            "-n",
            "payments",
        ]);
        args.extend(extra);
        stdout_json(&scopegate(&args))
    };
    assert!(other(&[])["status"].get("denied").is_none());
    assert_eq!(other(&["--no-match", "deny"])["status"]["denied"], true);
}

#[test]
fn explain_shows_the_path() {
    let out = scopegate(&[
        "explain",
        "--policies",
        "policies",
        "--cluster-resource-id",
        CLUSTER,
        "-f",
        "tests/fixtures/requests/alice-get-secret.json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "scope chain",
        "mg-platform",
        "APPLIES",
        "GRANTS the action",
        "decision:  deny",
    ] {
        assert!(text.contains(needle), "missing `{needle}` in:\n{text}");
    }
}

fn broken_policy(name: &str, text: &str) -> (tempfile::TempDir, Output) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        root().join("policies/azure/aks-builtin-roles.json"),
        dir.path().join("roles.json"),
    )
    .unwrap();
    std::fs::write(dir.path().join(name), text).unwrap();
    let out = scopegate(&["validate", "--policies", dir.path().to_str().unwrap()]);
    (dir, out)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

#[test]
fn validate_reports_place_and_exits_2() {
    let (_d, out) = broken_policy(
        "bad.yaml",
        "roleAssignments:\n  - id: x\n    principalId: [\n",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("bad.yaml") && stderr(&out).contains("line"),
        "{}",
        stderr(&out)
    );

    let (_d, out) = broken_policy(
        "bad.json",
        "{\"principalId\": \"6f0b7e4a-1c2d-4e5f-8a9b-000000000f1d\", \"id\": \"ra\", \"scope\": \"/\",\n \"roleDefinitionId\": \"/providers/Microsoft.Authorization/roleDefinitions/deadbeef\" }",
    );
    // A role not loaded is a warning (the assignment grants nothing), reported by validate.
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("warning: ")
            && stdout.contains("bad.json: $.roleDefinitionId")
            && stdout.contains("1 assignment of role `deadbeef` (not loaded) grants nothing"),
        "{stdout}"
    );

    let (_d, out) = broken_policy(
        "scope.json",
        "[{\"principalId\": \"6f0b7e4a-1c2d-4e5f-8a9b-000000000f1d\", \"id\": \"ra\", \"scope\": \"/subscriptions/x/resourceGroups\", \"roleDefinitionId\": \"7f6c6a51-bcf8-42ba-9220-52d62157d7db\"}]",
    );
    assert!(
        stderr(&out).contains("scope.json: $[0].scope"),
        "{}",
        stderr(&out)
    );

    let (_d, out) = broken_policy("unknown.yaml", "kind: ConfigMap\nmetadata: {name: x}\n");
    assert!(
        stderr(&out).contains("unknown policy object (kind `ConfigMap`)"),
        "{}",
        stderr(&out)
    );

    let (_d, out) = broken_policy(
        "dup.json",
        &std::fs::read_to_string(root().join("policies/azure/aks-builtin-roles.json")).unwrap(),
    );
    assert!(
        stderr(&out).contains("duplicate role definition id"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn everyone_is_refused_where_azure_cannot_name_it() {
    // A role assignment to Everyone would grant every caller; Azure makes none.
    let (_d, out) = broken_policy(
        "everyone.json",
        "[{\"principalId\": \"00000000-0000-0000-0000-000000000000\", \"id\": \"ra\", \"scope\": \"/subscriptions/3f2a6b1c-5d4e-4f70-8a9b-0c1d2e3f4a5b\", \"roleDefinitionId\": \"7f6c6a51-bcf8-42ba-9220-52d62157d7db\"}]",
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("everyone.json: $[0].principalId")
            && stderr(&out).contains("only deny assignments"),
        "{}",
        stderr(&out)
    );
    // Azure names Everyone only in `principals`: an exclusion of it has no meaning to follow.
    let deny = std::fs::read_to_string(root().join("policies/azure/deny-assignments.json"))
        .unwrap()
        .replacen(
            "\"excludePrincipals\": [",
            "\"excludePrincipals\": [{\"id\": \"00000000-0000-0000-0000-000000000000\", \"type\": \"SystemDefined\"}, ",
            1,
        );
    assert!(
        deny.contains("SystemDefined\"}, "),
        "the example deny assignment excludes someone"
    );
    let (_d, out) = broken_policy("deny.json", &deny);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("deny.json") && stderr(&out).contains("cannot be excluded"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_broken_set_loads_nothing_and_check_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    support::copy_dir(&root().join("policies"), dir.path());
    std::fs::write(
        dir.path().join("azure/zz-broken.json"),
        "[{\"roleName\": \"x\", \"permissions\": 5}]",
    )
    .unwrap();
    let out = scopegate(&[
        "check",
        "--policies",
        dir.path().to_str().unwrap(),
        "--cluster-resource-id",
        CLUSTER,
        "-f",
        "tests/fixtures/requests/alice-create-deployment.json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty(), "nothing decided from a broken set");
    assert!(stderr(&out).contains("zz-broken.json"));
}

#[test]
fn malformed_request_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("req.json");
    std::fs::write(
        &file,
        "{\"kind\": \"TokenReview\", \"apiVersion\": \"authentication.k8s.io/v1\"}",
    )
    .unwrap();
    let out = scopegate(&[
        "check",
        "--policies",
        "policies",
        "-f",
        file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("TokenReview"));
}

#[test]
fn configmap_symlink_layout_loads_once() {
    // Kubernetes ConfigMap volumes: real files in ..<timestamp>/, ..data -> it, top-level links.
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("..2026_11_28_00_00_00.000");
    std::fs::create_dir(&real).unwrap();
    std::fs::copy(
        root().join("policies/azure/aks-builtin-roles.json"),
        real.join("roles.json"),
    )
    .unwrap();
    std::os::unix::fs::symlink("..2026_11_28_00_00_00.000", dir.path().join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/roles.json", dir.path().join("roles.json")).unwrap();
    let out = scopegate(&["validate", "--policies", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("8 role definitions"));
}

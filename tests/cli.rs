//! The `scopegate` binary on real files: exit codes, output and diagnostics.

mod support;

use std::process::{Command, Output};
use support::{CLUSTER, root, scopegate, stderr};

/// `scopegate <command> --policies <policies> --cluster-resource-id CLUSTER`, then `rest`.
fn on_cluster(command: &str, policies: &str, rest: &[&str]) -> Output {
    let mut args = vec![
        command,
        "--policies",
        policies,
        "--cluster-resource-id",
        CLUSTER,
        "--principal-claim",
        "scopegate.io/oid",
    ];
    args.extend(rest);
    scopegate(&args)
}

fn check_file(file: &str) -> Output {
    on_cluster("check", "policies", &["-f", file])
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
            "scopegate.io/oid=11111111-2222-4333-8444-555555555555",
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
        .env("SCOPEGATE_PRINCIPAL_CLAIM", "scopegate.io/oid")
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
        stdout_json(&check_alice(
            "payments",
            &[&["--resource", "pods"], extra].concat(),
        ))
    };
    assert!(other(&[])["status"].get("denied").is_none());
    assert_eq!(other(&["--no-match", "deny"])["status"]["denied"], true);
}

#[test]
fn explain_shows_the_path() {
    let out = on_cluster(
        "explain",
        "policies",
        &["-f", "tests/fixtures/requests/alice-get-secret.json"],
    );
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

#[test]
fn validate_reports_place_and_exits_3() {
    let (_d, out) = broken_policy(
        "bad.yaml",
        "roleAssignments:\n  - id: x\n    principalId: [\n",
    );
    assert_eq!(out.status.code(), Some(3));
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

    // The shipped roles read twice (two directories, two overlapping exports): identical
    // copies load once, with one note for the pair of files.
    let shipped =
        std::fs::read_to_string(root().join("policies/azure/aks-builtin-roles.json")).unwrap();
    let (_d, out) = broken_policy("dup.json", &shipped);
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(
        all.contains("dup.json")
            && all.contains("identical copies of objects in `")
            && all.contains("roles.json"),
        "{all}"
    );
    assert_eq!(all.matches("identical cop").count(), 1, "{all}");

    // One permission changed in the copy: an error naming both files.
    let mut roles: serde_json::Value = serde_json::from_str(&shipped).unwrap();
    let actions = roles["roles"]
        .as_array_mut()
        .and_then(|r| {
            r.iter_mut()
                .find(|r| r["permissions"][0]["dataActions"][0].is_string())
        })
        .map(|r| &mut r["permissions"][0]["dataActions"][0])
        .expect("a shipped role with a data action");
    *actions = serde_json::json!("Microsoft.ContainerService/managedClusters/pods/exec/action");
    let (_d, out) = broken_policy("dup.json", &roles.to_string());
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("dup.json")
            && stderr(&out).contains("duplicate role definition id")
            && stderr(&out).contains("also at ")
            && stderr(&out).contains("roles.json")
            && stderr(&out).contains("drop one of the two"),
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
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
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
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("deny.json") && stderr(&out).contains("cannot be excluded"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_broken_set_loads_nothing_and_check_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    support::copy_dir(&root().join("policies"), dir.path());
    std::fs::write(
        dir.path().join("azure/zz-broken.json"),
        "[{\"roleName\": \"x\", \"permissions\": 5}]",
    )
    .unwrap();
    let out = on_cluster(
        "check",
        dir.path().to_str().unwrap(),
        &["-f", "tests/fixtures/requests/alice-create-deployment.json"],
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(out.stdout.is_empty(), "nothing decided from a broken set");
    assert!(stderr(&out).contains("zz-broken.json"));
}

#[test]
fn malformed_request_exits_3() {
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
    assert_eq!(out.status.code(), Some(3));
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

/// `check` with flags as alice in `namespace`, plus `extra` arguments.
fn check_alice(namespace: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "--as",
        "alice",
        "--extra",
        "scopegate.io/oid=11111111-2222-4333-8444-555555555555",
        "--as-group",
        "6f0b7e4a-1c2d-4e5f-8a9b-000000000f1d",
        "--verb",
        "get",
        "-n",
        namespace,
    ];
    args.extend(extra);
    on_cluster("check", "policies", &args)
}

#[test]
fn exit_codes_tell_deny_from_no_opinion() {
    let no_opinion = check_alice("payments", &["--resource", "pods"]);
    assert!(stdout_json(&no_opinion)["status"].get("denied").is_none());
    assert_eq!(no_opinion.status.code(), Some(2), "{}", stderr(&no_opinion));
    let denied = check_alice("payments", &["--resource", "pods", "--no-match", "deny"]);
    assert_eq!(stdout_json(&denied)["status"]["denied"], true);
    assert_eq!(denied.status.code(), Some(1), "{}", stderr(&denied));
    let explain = on_cluster(
        "explain",
        "policies",
        &[
            "--as",
            "alice",
            "--verb",
            "get",
            "--resource",
            "pods",
            "-n",
            "payments",
        ],
    );
    assert_eq!(explain.status.code(), Some(2));
}

#[test]
fn an_unknown_resource_is_warned_with_the_one_meant() {
    let out = check_alice("payments", &["--resource", "pod"]);
    assert!(
        stderr(&out).contains("warning: `pod` is not a resource kube-apiserver serves in the core group: did you mean `pods`"),
        "{}",
        stderr(&out)
    );
    let out = check_alice("payments", &["--resource", "deployments"]);
    assert!(
        stderr(&out).contains("did you mean `deployments` in --api-group apps"),
        "{}",
        stderr(&out)
    );
    let out = check_alice("payments", &["--resource", "pods"]);
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
}

#[test]
fn offline_commands_refuse_the_live_source() {
    for command in ["check", "explain", "validate"] {
        for flags in [
            &["--watch-cluster-rbac"][..],
            &["--kubeconfig", "/dev/null"],
        ] {
            let mut args = flags.to_vec();
            if command != "validate" {
                args.extend(["--as", "alice", "--verb", "get", "--resource", "pods"]);
            }
            let out = on_cluster(command, "policies", &args);
            assert_eq!(out.status.code(), Some(3), "{command} {flags:?}");
            assert!(
                stderr(&out).contains("is for `serve` only"),
                "{command} {flags:?}: {}",
                stderr(&out)
            );
            assert!(out.stdout.is_empty(), "{command} {flags:?}");
        }
    }
}

#[test]
fn print_kubeconfig_warns_about_a_wildcard_listen_address() {
    let print = |extra: &[&str]| {
        let mut args = vec![
            "serve",
            "--policies",
            "policies",
            "--tls-cert-file",
            "server.crt",
            "--tls-private-key-file",
            "server.key",
            "--print-kubeconfig",
        ];
        args.extend(extra);
        scopegate(&args)
    };
    let out = print(&["--listen", "0.0.0.0:8443"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("server: https://0.0.0.0:8443/authorize")
    );
    assert!(
        stderr(&out).contains("warning: the listen address `0.0.0.0:8443` is a wildcard")
            && stderr(&out).contains("--advertise-url"),
        "{}",
        stderr(&out)
    );
    let out = print(&[
        "--listen",
        "0.0.0.0:8443",
        "--advertise-url",
        "https://sg.example:8443/authorize",
    ]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("server: https://sg.example:8443/authorize")
    );
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
}

fn certs(out_dir: &std::path::Path, extra: &[&str]) -> Output {
    let dir = out_dir.display().to_string();
    let mut args = vec!["certs", "--out-dir", dir.as_str()];
    args.extend_from_slice(extra);
    scopegate(&args)
}

fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The DER of a PEM certificate file.
fn cert_der(path: &std::path::Path) -> Vec<u8> {
    use rustls_pki_types::pem::PemObject;
    rustls_pki_types::CertificateDer::from_pem_file(path)
        .unwrap()
        .to_vec()
}

#[test]
fn certs_keys_are_private_and_certificates_readable_by_a_non_root_reader() {
    let tmp = tempfile::tempdir().unwrap();
    let out = certs(tmp.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    for name in ["ca.crt", "server.crt", "client.crt"] {
        // A container running as another user reads a mounted certificate through "other".
        assert_eq!(mode(&tmp.path().join(name)), 0o644, "{name}");
    }
    for name in ["ca.key", "server.key", "client.key"] {
        assert_eq!(mode(&tmp.path().join(name)), 0o600, "{name}");
    }
    // Read for real by another user (65534, `nobody`, as a non-root container runs), where the
    // test may switch user: the certificates open, the keys do not.
    // SAFETY: geteuid reads the calling process's effective user id and touches no memory.
    if unsafe { libc::geteuid() } == 0 {
        use std::os::unix::fs::PermissionsExt;
        use std::os::unix::process::CommandExt;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let read_as_nobody = |name: &str| {
            Command::new("cat")
                .arg(tmp.path().join(name))
                .uid(65534)
                .gid(65534)
                .output()
                .unwrap()
        };
        for name in ["ca.crt", "server.crt", "client.crt"] {
            let out = read_as_nobody(name);
            assert!(out.status.success(), "{name}: {}", stderr(&out));
            assert!(String::from_utf8_lossy(&out.stdout).contains("BEGIN CERTIFICATE"));
        }
        for name in ["ca.key", "server.key", "client.key"] {
            assert!(
                !read_as_nobody(name).status.success(),
                "{name} is readable by others"
            );
        }
    }
}

#[test]
fn certs_refuse_to_replace_files_without_force() {
    let tmp = tempfile::tempdir().unwrap();
    assert_eq!(certs(tmp.path(), &[]).status.code(), Some(0));
    let ca = std::fs::read(tmp.path().join("ca.crt")).unwrap();
    let key = std::fs::read(tmp.path().join("server.key")).unwrap();

    let out = certs(tmp.path(), &[]);
    assert_eq!(out.status.code(), Some(3));
    let err = stderr(&out);
    assert!(err.contains("ca.crt") && err.contains("--force"), "{err}");
    assert_eq!(std::fs::read(tmp.path().join("ca.crt")).unwrap(), ca);
    assert_eq!(std::fs::read(tmp.path().join("server.key")).unwrap(), key);

    // A key left readable by others gets its mode back when replaced.
    use std::os::unix::fs::PermissionsExt;
    let server_key = tmp.path().join("server.key");
    std::fs::set_permissions(&server_key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = certs(tmp.path(), &["--force"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_ne!(std::fs::read(tmp.path().join("ca.crt")).unwrap(), ca);
    assert_eq!(mode(&server_key), 0o600);
}

#[test]
fn certs_refuse_hosts_that_are_not_names_or_addresses() {
    for bad in [
        "bad_name.example",
        "-lead.example",
        "trail-.example",
        "a..b",
        "10.0.0.256",
        "*",
        "a.*.example",
        "scopegate.example.",
        "white space",
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let host = format!("--host={bad}");
        let out = certs(tmp.path(), &[&host]);
        assert_eq!(out.status.code(), Some(3), "{bad}");
        assert!(
            stderr(&out).contains(&format!("`{bad}`")),
            "{}",
            stderr(&out)
        );
        assert!(
            !tmp.path().join("ca.crt").exists(),
            "{bad}: nothing written"
        );
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = certs(
        tmp.path(),
        &[
            "--host",
            "*.scopegate.svc",
            "--host",
            "scopegate.kube-system.svc.cluster.local",
            "--host",
            "::1",
            "--host",
            "10.0.0.25",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn certs_issue_leaves_from_an_existing_ca() {
    let ca_dir = tempfile::tempdir().unwrap();
    assert_eq!(certs(ca_dir.path(), &[]).status.code(), Some(0));
    let (ca_cert, ca_key) = (ca_dir.path().join("ca.crt"), ca_dir.path().join("ca.key"));
    let (ca_cert_s, ca_key_s) = (ca_cert.display().to_string(), ca_key.display().to_string());

    let leaves = tempfile::tempdir().unwrap();
    let out = certs(
        leaves.path(),
        &["--ca-cert", &ca_cert_s, "--ca-key", &ca_key_s],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!leaves.path().join("ca.crt").exists());
    assert!(!leaves.path().join("ca.key").exists());

    let ca_der = cert_der(&ca_cert);
    let (_, ca) = x509_parser::parse_x509_certificate(&ca_der).unwrap();
    for name in ["server.crt", "client.crt"] {
        let der = cert_der(&leaves.path().join(name));
        let (_, leaf) = x509_parser::parse_x509_certificate(&der).unwrap();
        assert_eq!(leaf.issuer(), ca.subject(), "{name}");
        leaf.verify_signature(Some(ca.public_key()))
            .unwrap_or_else(|e| panic!("{name} does not verify against the CA: {e}"));
    }

    // A key that is not the CA's, or a certificate that is no CA, issues nothing.
    let other = tempfile::tempdir().unwrap();
    let server_key = ca_dir.path().join("server.key").display().to_string();
    let out = certs(
        other.path(),
        &["--ca-cert", &ca_cert_s, "--ca-key", &server_key],
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("does not belong"), "{}", stderr(&out));
    let server_crt = ca_dir.path().join("server.crt").display().to_string();
    let out = certs(
        other.path(),
        &["--ca-cert", &server_crt, "--ca-key", &server_key],
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("not a CA"), "{}", stderr(&out));
    assert!(!other.path().join("server.crt").exists());
}

#[test]
fn validate_rejects_a_misspelled_subjects_field_and_an_unknown_subject_kind_with_their_lines() {
    let binding = "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: readers\n  namespace: finance\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: view\nsubjects:\n- apiGroup: rbac.authorization.k8s.io\n  kind: Group\n  name: finance-team\n";
    let (_d, out) = broken_policy("rb.yaml", &binding.replace("subjects:", "subject:"));
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("rb.yaml: line 10, column 1: unknown field `subject` in a RoleBinding (did you mean `subjects`?)"),
        "{}",
        stderr(&out)
    );

    let (_d, out) = broken_policy("rb.yaml", &binding.replace("kind: Group", "kind: Grup"));
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("rb.yaml: line 12, column 3: unknown subject kind `Grup`"),
        "{}",
        stderr(&out)
    );

    let role = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: reader\nrules:\n- apiGroups: [\"\"]\n  resources: [pods]\n  verbs: get\n";
    let (_d, out) = broken_policy("role.yaml", role);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out)
            .contains("role.yaml: line 8, column 3: invalid ClusterRole at `rules[0].verbs`"),
        "{}",
        stderr(&out)
    );
}

/// The product has no benchmark switch: the load benchmark's empty handler exists only in a
/// `--features bench-support` build.
#[test]
fn serve_help_shows_no_benchmark_switch() {
    let out = scopegate(&["serve", "--help"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("--listen"), "{help}");
    assert!(!help.to_lowercase().contains("benchmark"), "{help}");
    let refused = scopegate(&[
        "serve",
        "--benchmark-empty-handler",
        "--policies",
        "policies",
    ]);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
}

/// A config file with the live source on still gives `check` its `clusterRbacCopies`: the
/// offline commands decide on files, and the copies are the files that stand for the
/// cluster's own RBAC.
#[test]
fn offline_commands_load_the_cluster_rbac_copies_even_with_the_live_source_configured() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = std::fs::read_to_string(root().join("deploy/scopegate.yaml")).unwrap();
    let config = dir.path().join("scopegate.yaml");
    std::fs::write(&config, format!("{shipped}\nwatchClusterRbac: true\n")).unwrap();
    let config = config.display().to_string();
    // kube-scheduler lists pods through the bootstrap ClusterRoleBinding `system:kube-scheduler`.
    let out = scopegate(&[
        "check",
        "--config",
        &config,
        "--as",
        "system:kube-scheduler",
        "--verb",
        "list",
        "--resource",
        "pods",
        "-n",
        "default",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("clusterRbacCopies"),
        "{}",
        stderr(&out)
    );
}

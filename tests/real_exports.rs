//! Real exports beside the shipped policy: an `az role assignment list --all` of a whole
//! subscription (roles unrelated to Kubernetes among the AKS ones) and a `kubectl get … -A -o
//! yaml` of a cluster next to `policies/kubernetes/bootstrap/`.

mod support;

use scopegate::engine::{self, EngineOptions};
use scopegate::metrics::Metrics;
use scopegate::model::Scope;
use scopegate::policy::DiagnosticKind;
use scopegate::policy::IndexOptions;
use support::{CLUSTER, root, scopegate, stderr};

const AZ_EXPORT: &str = "tests/fixtures/exports/az-role-assignment-list-all.json";
const READER: &str = "acdd72a7-3385-48ef-bd42-f606fba81ae7";
const STORAGE_BLOB_DATA_READER: &str = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1";

fn index(cluster: &str) -> IndexOptions {
    IndexOptions::for_cluster(Scope::parse(cluster).unwrap())
}

/// Decision options: the object id key the request fixtures carry.
fn decisions() -> EngineOptions {
    EngineOptions {
        principal_claim: "scopegate.io/oid".into(),
        ..EngineOptions::default()
    }
}

/// The shipped policy with its role assignments replaced by the `az … --all` export.
fn shipped_with_az_export() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    support::copy_dir(&root().join("policies"), dir.path());
    std::fs::copy(
        root().join(AZ_EXPORT),
        dir.path().join("azure/role-assignments.json"),
    )
    .unwrap();
    dir
}

fn request(name: &str) -> scopegate::model::AccessRequest {
    let bytes = support::request_fixture(name);
    scopegate::sar::decode(&bytes).unwrap().request
}

#[test]
fn an_az_export_with_unrelated_roles_loads_and_its_aks_assignments_still_grant() {
    let dir = shipped_with_az_export();
    let loaded = scopegate::load_snapshot(&[dir.path().to_path_buf()], None, &index(CLUSTER), 1)
        .unwrap_or_else(|e| panic!("an export with unrelated roles must load: {e}"));
    // Reader (3 assignments), Storage Blob Data Reader (2) and Owner (1) are not loaded.
    let unknown: Vec<String> = loaded
        .snapshot
        .warnings
        .iter()
        .filter(|w| w.kind == DiagnosticKind::UnknownRole)
        .map(|w| w.message.clone())
        .collect();
    assert_eq!(unknown.len(), 3, "{unknown:?}");
    assert!(
        unknown.contains(&format!(
            "3 assignments of role `{READER}` (not loaded) grant nothing"
        )),
        "{unknown:?}"
    );
    assert!(
        unknown.contains(&format!(
            "2 assignments of role `{STORAGE_BLOB_DATA_READER}` (not loaded) grant nothing"
        )),
        "{unknown:?}"
    );
    assert_eq!(loaded.snapshot.stats().role_assignments, 3, "the AKS ones");

    // The AKS Writer assignment of alice's group still grants; the Reader assignment on the
    // subscription grants nothing on the cluster.
    let decision = engine::authorize(
        &std::sync::Arc::new(loaded.snapshot.clone()),
        &decisions(),
        &request("alice-create-deployment.json"),
    );
    assert!(decision.allowed(), "{decision:?}");

    let metrics = Metrics::new();
    metrics.set_policy_warnings(&loaded.snapshot.warnings);
    let text = metrics.render();
    assert_eq!(
        support::metric(&text, r#"scopegate_policy_warnings{kind="unknown_role"}"#),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        support::metric(
            &text,
            r#"scopegate_policy_warnings{kind="provider_mismatch"}"#
        ),
        Some(0.0),
        "{text}"
    );
}

#[test]
fn validate_summarises_the_assignments_of_each_role_not_loaded() {
    let dir = shipped_with_az_export();
    let out = scopegate(&["validate", "--policies", dir.path().to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", stderr(&out));
    for line in [
        format!("3 assignments of role `{READER}` (not loaded) grant nothing"),
        format!("2 assignments of role `{STORAGE_BLOB_DATA_READER}` (not loaded) grant nothing"),
    ] {
        assert_eq!(
            stdout
                .lines()
                .filter(|l| l.starts_with("warning: ") && l.ends_with(&line))
                .count(),
            1,
            "`{line}` once in:\n{stdout}"
        );
    }
}

#[test]
fn an_assignment_whose_scope_does_not_parse_is_still_an_error() {
    let dir = shipped_with_az_export();
    let file = dir.path().join("azure/role-assignments.json");
    let text = std::fs::read_to_string(&file).unwrap();
    // Reader's first assignment, at the subscription: its scope cut short.
    let broken = text.replacen(
        r#""scope": "/subscriptions/3f2a6b1c-5d4e-4f70-8a9b-0c1d2e3f4a5b","#,
        r#""scope": "/subscriptions","#,
        2,
    );
    assert_ne!(broken, text);
    std::fs::write(&file, broken).unwrap();
    let Err(e) = scopegate::load_snapshot(&[dir.path().to_path_buf()], None, &index(CLUSTER), 1)
    else {
        panic!("a scope that does not parse must fail the load");
    };
    assert!(
        e.0.iter()
            .any(|d| d.is_error() && d.origin.position.ends_with(".scope")),
        "{e}"
    );
}

/// An Arc-enabled cluster's id with AKS's action prefix: the Arc roles shipped beside the
/// AKS ones grant nothing then, which the load says.
#[test]
fn a_cluster_of_the_other_provider_than_the_action_prefix_is_a_warning() {
    let arc = "/subscriptions/3f2a6b1c-5d4e-4f70-8a9b-0c1d2e3f4a5b/resourceGroups/rg-edge/providers/Microsoft.Kubernetes/connectedClusters/edge-1";
    let policies = [root().join("policies/azure")];
    let mismatch = |options: &IndexOptions| {
        let loaded = scopegate::load_snapshot(&policies, None, options, 1).unwrap();
        loaded
            .snapshot
            .warnings
            .iter()
            .filter(|w| w.kind == DiagnosticKind::ProviderMismatch)
            .map(ToString::to_string)
            .collect::<Vec<_>>()
    };
    let warned = mismatch(&index(arc));
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(
        warned[0].contains("`Microsoft.Kubernetes/connectedClusters`"),
        "{warned:?}"
    );
    let arc_prefix = IndexOptions {
        action_prefix: "Microsoft.Kubernetes/connectedClusters".into(),
        ..index(arc)
    };
    assert_eq!(mismatch(&arc_prefix), Vec::<String>::new());
    assert_eq!(mismatch(&index(CLUSTER)), Vec::<String>::new());
    let aks_with_arc_prefix = IndexOptions {
        action_prefix: "Microsoft.Kubernetes/connectedClusters".into(),
        ..index(CLUSTER)
    };
    assert_eq!(mismatch(&aks_with_arc_prefix).len(), 1);
}

/// The Arc roles shipped grant on an Arc cluster with the Arc prefix, as the AKS ones do on
/// AKS: Viewer reads pods and not secrets, Writer writes deployments.
#[test]
fn the_shipped_arc_roles_grant_on_an_arc_cluster() {
    let arc = "/subscriptions/3f2a6b1c-5d4e-4f70-8a9b-0c1d2e3f4a5b/resourceGroups/rg-edge/providers/Microsoft.Kubernetes/connectedClusters/edge-1";
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        root().join("policies/azure/arc-builtin-roles.json"),
        dir.path().join("arc-builtin-roles.json"),
    )
    .unwrap();
    let assignment = |name: &str, role: &str| {
        serde_json::json!({
            "id": format!("{arc}/providers/Microsoft.Authorization/roleAssignments/{name}"),
            "name": name,
            "principalId": "11111111-2222-4333-8444-555555555555",
            "principalType": "User",
            "roleDefinitionId": format!("/subscriptions/3f2a6b1c-5d4e-4f70-8a9b-0c1d2e3f4a5b/providers/Microsoft.Authorization/roleDefinitions/{role}"),
            "scope": arc,
            "type": "Microsoft.Authorization/roleAssignments",
        })
    };
    let write = |role: &str| {
        std::fs::write(
            dir.path().join("role-assignments.json"),
            serde_json::to_string(&[assignment("9a0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d", role)])
                .unwrap(),
        )
        .unwrap();
    };
    let options = IndexOptions {
        action_prefix: "Microsoft.Kubernetes/connectedClusters".into(),
        ..index(arc)
    };
    let decide = |verb: &str, group: &str, resource: &str| {
        let loaded =
            scopegate::load_snapshot(&[dir.path().to_path_buf()], None, &options, 1).unwrap();
        assert_eq!(loaded.snapshot.stats().role_definitions, 4);
        let mut request = request("alice-create-deployment.json");
        if let Some(r) = request.resource_attributes.as_mut() {
            r.verb = verb.into();
            r.group = group.into();
            r.resource = resource.into();
        }
        engine::authorize(
            &std::sync::Arc::new(loaded.snapshot),
            &decisions(),
            &request,
        )
        .allowed()
    };
    write("63f0a09d-1495-4db4-a681-037d84835eb4"); // Azure Arc Kubernetes Viewer
    assert!(decide("get", "", "pods"));
    assert!(!decide("get", "", "secrets"));
    assert!(!decide("create", "apps", "deployments"));
    write("5b999177-9696-4545-85c7-50de3797e5a1"); // Azure Arc Kubernetes Writer
    assert!(decide("create", "apps", "deployments"));
    assert!(!decide(
        "create",
        "rbac.authorization.k8s.io",
        "rolebindings"
    ));
}

const KUBECTL_EXPORT: &str = "tests/fixtures/exports/kubectl-get-rbac-all.yaml";

/// The shipped policy with a cluster's export beside `kubernetes/bootstrap/`, `edit` as given.
fn shipped_with_cluster_export(edit: impl Fn(String) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    support::copy_dir(&root().join("policies"), dir.path());
    let text = std::fs::read_to_string(root().join(KUBECTL_EXPORT)).unwrap();
    std::fs::write(
        dir.path().join("kubernetes/cluster-export.yaml"),
        edit(text),
    )
    .unwrap();
    dir
}

#[test]
fn a_cluster_export_beside_the_bootstrap_files_loads_each_object_once() {
    let dir = shipped_with_cluster_export(|t| t);
    let loaded = scopegate::load_snapshot(&[dir.path().to_path_buf()], None, &index(CLUSTER), 1)
        .unwrap_or_else(|e| panic!("identical copies must load: {e}"));
    let copies: usize = loaded
        .snapshot
        .warnings
        .iter()
        .filter(|w| w.kind == DiagnosticKind::IdenticalCopy)
        .map(|w| {
            assert!(!w.is_error() && !w.is_warning(), "a note: {w}");
            assert!(w.origin.file.ends_with("cluster-export.yaml"), "{w}");
            assert!(w.message.contains("/bootstrap/"), "{w}");
            w.message
                .split_whitespace()
                .next()
                .and_then(|n| n.parse::<usize>().ok())
                .unwrap_or(0)
        })
        .sum();
    assert_eq!(copies, 57, "every default object of the export");
    let bootstrap_only =
        scopegate::load_snapshot(&[root().join("policies")], None, &index(CLUSTER), 1).unwrap();
    let (with, without) = (loaded.snapshot.stats(), bootstrap_only.snapshot.stats());
    assert_eq!(with.k8s_roles, without.k8s_roles);
    assert_eq!(
        with.k8s_bindings,
        without.k8s_bindings + 1,
        "the export's own RoleBinding"
    );
}

#[test]
fn a_changed_copy_is_an_error_naming_both_files_and_what_to_do() {
    // In the cluster, the cluster-admin binding names another group than the shipped file.
    let dir = shipped_with_cluster_export(|t| {
        assert!(t.contains("name: system:masters"));
        t.replacen("name: system:masters", "name: system:admins", 1)
    });
    let Err(e) = scopegate::load_snapshot(&[dir.path().to_path_buf()], None, &index(CLUSTER), 1)
    else {
        panic!("a copy with other content must fail the load");
    };
    let errors: Vec<String> =
        e.0.iter()
            .filter(|d| d.is_error())
            .map(ToString::to_string)
            .collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    let error = &errors[0];
    for needle in [
        "cluster-export.yaml",
        "bootstrap/cluster-role-bindings.yaml",
        "ClusterRoleBinding `cluster-admin`",
        "drop one of the two directories",
    ] {
        assert!(error.contains(needle), "`{needle}` in {error}");
    }
}

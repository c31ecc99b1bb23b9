//! Literal expectations for the request -> Azure data action mapping, written by hand from
//! the verb table of the Azure RBAC spec and scopegate's documented strict choices (README,
//! "How a request maps to Azure"): `get|list|watch` -> `read`, `create|update|patch` ->
//! `write`, `delete|deletecollection` -> `delete`, any other verb -> `<verb>/action` (Guard
//! leaves `approve`, `sign`, `attest` suffix-less; scopegate names them), and the connect
//! subresources `exec`, `attach`, `portforward`, `proxy` on pods, services and nodes ->
//! `<resource>/<subresource>/action` whatever the verb.

use super::*;

const AKS: &str = "Microsoft.ContainerService/managedClusters";
const CLUSTER: &str = "/subscriptions/00000000-0000-0000-0000-00000000aaaa/resourceGroups/rg-aks/providers/Microsoft.ContainerService/managedClusters/aks1";

/// A resource request: verb, API group, resource, subresource, namespace.
fn resource(verb: &str, group: &str, resource: &str, subresource: &str, ns: &str) -> AccessRequest {
    let spec = serde_json::json!({
        "user": "alice",
        "resourceAttributes": {
            "verb": verb, "group": group, "resource": resource,
            "subresource": subresource, "namespace": ns,
        },
    });
    decoded(spec)
}

fn non_resource(verb: &str, path: &str) -> AccessRequest {
    decoded(serde_json::json!({
        "user": "alice",
        "nonResourceAttributes": {"verb": verb, "path": path},
    }))
}

fn decoded(spec: Value) -> AccessRequest {
    let review = serde_json::json!({
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": spec,
    });
    scopegate::sar::decode(review.to_string().as_bytes())
        .expect("a valid review")
        .request
}

/// `(verb, group, resource, subresource, actions)` with actions written out in full.
#[rustfmt::skip]
const RESOURCE_TABLE: &[(&str, &str, &str, &str, &[&str])] = &[
    // CRUD verbs.
    ("get", "", "pods", "", &["Microsoft.ContainerService/managedClusters/pods/read"]),
    ("list", "", "pods", "", &["Microsoft.ContainerService/managedClusters/pods/read"]),
    ("watch", "", "pods", "", &["Microsoft.ContainerService/managedClusters/pods/read"]),
    ("create", "", "pods", "", &["Microsoft.ContainerService/managedClusters/pods/write"]),
    ("update", "", "pods", "", &["Microsoft.ContainerService/managedClusters/pods/write"]),
    ("patch", "", "pods", "", &["Microsoft.ContainerService/managedClusters/pods/write"]),
    ("delete", "", "pods", "", &["Microsoft.ContainerService/managedClusters/pods/delete"]),
    ("deletecollection", "", "pods", "", &["Microsoft.ContainerService/managedClusters/pods/delete"]),
    ("get", "apps", "deployments", "", &["Microsoft.ContainerService/managedClusters/apps/deployments/read"]),
    ("patch", "batch", "cronjobs", "", &["Microsoft.ContainerService/managedClusters/batch/cronjobs/write"]),
    ("watch", "events.k8s.io", "events", "", &["Microsoft.ContainerService/managedClusters/events.k8s.io/events/read"]),
    ("update", "scheduling.k8s.io", "priorityclasses", "", &["Microsoft.ContainerService/managedClusters/scheduling.k8s.io/priorityclasses/write"]),
    ("deletecollection", "certificates.k8s.io", "certificatesigningrequests", "", &["Microsoft.ContainerService/managedClusters/certificates.k8s.io/certificatesigningrequests/delete"]),
    // Verbs outside the CRUD table: `<verb>/action`.
    ("bind", "rbac.authorization.k8s.io", "clusterroles", "", &["Microsoft.ContainerService/managedClusters/rbac.authorization.k8s.io/clusterroles/bind/action"]),
    ("escalate", "rbac.authorization.k8s.io", "roles", "", &["Microsoft.ContainerService/managedClusters/rbac.authorization.k8s.io/roles/escalate/action"]),
    ("impersonate", "", "users", "", &["Microsoft.ContainerService/managedClusters/users/impersonate/action"]),
    ("impersonate", "authentication.k8s.io", "userextras", "scopes", &["Microsoft.ContainerService/managedClusters/authentication.k8s.io/userextras/impersonate/action"]),
    ("use", "policy", "podsecuritypolicies", "", &["Microsoft.ContainerService/managedClusters/policy/podsecuritypolicies/use/action"]),
    ("approve", "certificates.k8s.io", "signers", "", &["Microsoft.ContainerService/managedClusters/certificates.k8s.io/signers/approve/action"]),
    ("sign", "certificates.k8s.io", "signers", "", &["Microsoft.ContainerService/managedClusters/certificates.k8s.io/signers/sign/action"]),
    ("attest", "certificates.k8s.io", "signers", "", &["Microsoft.ContainerService/managedClusters/certificates.k8s.io/signers/attest/action"]),
    ("unsafe-delete-ignore-read-errors", "", "secrets", "", &["Microsoft.ContainerService/managedClusters/secrets/unsafe-delete-ignore-read-errors/action"]),
    // Constrained impersonation.
    ("impersonate:user-info", "", "users", "", &["Microsoft.ContainerService/managedClusters/users/impersonate:user-info/action"]),
    ("impersonate:serviceaccount", "", "serviceaccounts", "", &["Microsoft.ContainerService/managedClusters/serviceaccounts/impersonate:serviceaccount/action"]),
    ("impersonate:arbitrary-node", "", "nodes", "", &["Microsoft.ContainerService/managedClusters/nodes/impersonate:arbitrary-node/action"]),
    ("impersonate:associated-node", "", "nodes", "", &["Microsoft.ContainerService/managedClusters/nodes/impersonate:associated-node/action"]),
    ("impersonate-on:user-info:list", "", "pods", "", &["Microsoft.ContainerService/managedClusters/pods/impersonate-on:user-info:list/action"]),
    ("impersonate-on:serviceaccount:get", "apps", "deployments", "", &["Microsoft.ContainerService/managedClusters/apps/deployments/impersonate-on:serviceaccount:get/action"]),
    ("impersonate-on:arbitrary-node:create", "", "configmaps", "", &["Microsoft.ContainerService/managedClusters/configmaps/impersonate-on:arbitrary-node:create/action"]),
    // Connect subresources: one action whatever the verb.
    ("create", "", "pods", "exec", &["Microsoft.ContainerService/managedClusters/pods/exec/action"]),
    ("get", "", "pods", "exec", &["Microsoft.ContainerService/managedClusters/pods/exec/action"]),
    ("create", "", "pods", "attach", &["Microsoft.ContainerService/managedClusters/pods/attach/action"]),
    ("get", "", "pods", "attach", &["Microsoft.ContainerService/managedClusters/pods/attach/action"]),
    ("create", "", "pods", "portforward", &["Microsoft.ContainerService/managedClusters/pods/portforward/action"]),
    ("get", "", "pods", "portforward", &["Microsoft.ContainerService/managedClusters/pods/portforward/action"]),
    ("get", "", "pods", "proxy", &["Microsoft.ContainerService/managedClusters/pods/proxy/action"]),
    ("delete", "", "pods", "proxy", &["Microsoft.ContainerService/managedClusters/pods/proxy/action"]),
    ("get", "", "services", "proxy", &["Microsoft.ContainerService/managedClusters/services/proxy/action"]),
    ("patch", "", "services", "proxy", &["Microsoft.ContainerService/managedClusters/services/proxy/action"]),
    ("get", "", "nodes", "proxy", &["Microsoft.ContainerService/managedClusters/nodes/proxy/action"]),
    ("create", "", "nodes", "proxy", &["Microsoft.ContainerService/managedClusters/nodes/proxy/action"]),
    // Every other subresource is ignored: the resource's own verb suffix.
    ("get", "", "pods", "log", &["Microsoft.ContainerService/managedClusters/pods/read"]),
    ("delete", "", "pods", "status", &["Microsoft.ContainerService/managedClusters/pods/delete"]),
    ("create", "", "pods", "eviction", &["Microsoft.ContainerService/managedClusters/pods/write"]),
    ("create", "", "serviceaccounts", "token", &["Microsoft.ContainerService/managedClusters/serviceaccounts/write"]),
    ("update", "apps", "deployments", "scale", &["Microsoft.ContainerService/managedClusters/apps/deployments/write"]),
    // Wildcards stand for every action below the pattern; group `*` for core and named groups.
    ("*", "", "pods", "", &["Microsoft.ContainerService/managedClusters/pods/*"]),
    ("get", "", "pods", "*", &["Microsoft.ContainerService/managedClusters/pods/*"]),
    ("get", "*", "pods", "", &["Microsoft.ContainerService/managedClusters/pods/read", "Microsoft.ContainerService/managedClusters/*/pods/read"]),
];

/// `(verb, path, action)`: non-resource requests, always at the cluster scope.
#[rustfmt::skip]
const NON_RESOURCE_TABLE: &[(&str, &str, &str)] = &[
    ("get", "/metrics", "Microsoft.ContainerService/managedClusters/metrics/read"),
    ("get", "/logs", "Microsoft.ContainerService/managedClusters/logs/read"),
    ("list", "/apis", "Microsoft.ContainerService/managedClusters/apis/read"),
    ("get", "/openapi/v2", "Microsoft.ContainerService/managedClusters/openapi/v2/read"),
    ("post", "/logs", "Microsoft.ContainerService/managedClusters/logs/post/action"),
    ("*", "/metrics", "Microsoft.ContainerService/managedClusters/metrics/*"),
];

fn lower(actions: &[&str]) -> Vec<String> {
    actions.iter().map(|a| a.to_ascii_lowercase()).collect()
}

#[test]
fn every_verb_and_connect_subresource_maps_to_its_literal_actions() {
    let cluster = Scope::parse(CLUSTER).expect("cluster id");
    let mut failures = Vec::new();
    for (verb, group, res, sub, want) in RESOURCE_TABLE {
        for ns in ["", "team-a"] {
            let request = resource(verb, group, res, sub, ns);
            let got = azure_target(&request, AKS, &cluster);
            let scope = match ns {
                "" => cluster.clone(),
                ns => Scope::parse(&format!("{CLUSTER}/namespaces/{ns}")).expect("scope"),
            };
            if got != Ok((lower(want), scope)) {
                failures.push(format!("{verb} {group}/{res}/{sub} in `{ns}`: {got:?}"));
            }
        }
    }
    for (verb, path, want) in NON_RESOURCE_TABLE {
        let got = azure_target(&non_resource(verb, path), AKS, &cluster);
        if got != Ok((lower(&[want]), cluster.clone())) {
            failures.push(format!("{verb} {path}: {got:?}"));
        }
    }
    assert_no_failures(&failures);
}

#[test]
fn the_action_prefix_is_the_clusters_provider() {
    let arc = "/subscriptions/00000000-0000-0000-0000-00000000aaaa/resourceGroups/rg/providers/Microsoft.Kubernetes/connectedClusters/arc1";
    let cluster = Scope::parse(arc).expect("cluster id");
    let got = azure_target(
        &resource("get", "", "pods", "exec", ""),
        "Microsoft.Kubernetes/connectedClusters",
        &cluster,
    );
    assert_eq!(
        got,
        Ok((
            lower(&["Microsoft.Kubernetes/connectedClusters/pods/exec/action"]),
            cluster
        ))
    );
}

#[test]
fn requests_that_cannot_be_mapped_are_errors() {
    let cluster = Scope::parse(CLUSTER).expect("cluster id");
    for request in [
        resource("get", "", "pods", "", "../../aks10"),
        resource("get", "", "pods/../secrets", "", ""),
        resource("get", "", "pods", "../x", ""),
        resource("get", "apps/..", "deployments", "", ""),
        resource("", "", "pods", "", ""),
        resource("get", "", "", "", ""),
        non_resource("get", "/metrics/../x"),
        non_resource("get", "metrics"),
        decoded(serde_json::json!({"user": "alice"})),
    ] {
        let got = azure_target(&request, AKS, &cluster);
        assert!(got.is_err(), "{request:?}: {got:?}");
    }
}

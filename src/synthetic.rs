//! Synthetic policy sets with a realistic shape, for benchmarks and peers: the AKS built-in
//! roles plus custom roles; assignments spread over management groups, subscriptions,
//! resource groups, clusters and namespaces; most principals unrelated to the cluster under
//! test; a requester in 1 to 200 groups of which only a few matter; Kubernetes RBAC bindings.
//! Deterministic: the same parameters give the same objects.

#![allow(
    clippy::indexing_slicing,
    reason = "indexes are bounded by the generator's own constant tables"
)]

use crate::model::{AccessRequest, ResourceAttributes};
use serde_json::{Value, json};

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub assignments: usize,
    pub groups_per_user: usize,
    pub rbac_bindings: usize,
}

/// The AKS cluster every request is checked against.
pub const CLUSTER: &str = "/subscriptions/00000000-0000-4000-8000-000000000000/resourceGroups/rg-0/providers/Microsoft.ContainerService/managedClusters/aks-0";
/// Object id of the benchmark user.
pub const USER_OID: &str = "aaaaaaaa-0000-4000-8000-000000000001";
/// The group that has Writer in `ns-0`.
pub const WRITERS: &str = "bbbbbbbb-0000-4000-8000-000000000001";
/// The group excluded from the secrets deny assignment.
pub const PLATFORM: &str = "bbbbbbbb-0000-4000-8000-000000000002";

const READER: &str = "7f6c6a51-bcf8-42ba-9220-52d62157d7db";
const WRITER: &str = "a7ffa36f-339b-4b5c-8bdf-e2c188b2c0eb";
const ADMIN: &str = "3498e952-d568-435e-9b2c-8d77e338d7f7";
const CLUSTER_ADMIN: &str = "b1ff04bb-8a4e-4dc4-8eb5-8693973ce19b";

/// splitmix64: a tiny deterministic generator, enough for spreading objects.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn guid(kind: u32, n: u64) -> String {
    format!(
        "{kind:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        (n >> 48) & 0xffff,
        (n >> 36) & 0xfff,
        (n >> 24) & 0xfff,
        n & 0xffff_ffff_ffff
    )
}

fn subscription(i: usize) -> String {
    guid(0, i as u64)
}

fn cluster_scope(sub: usize, rg: usize, cluster: usize) -> String {
    format!(
        "/subscriptions/{}/resourceGroups/rg-{rg}/providers/Microsoft.ContainerService/managedClusters/aks-{cluster}",
        subscription(sub)
    )
}

const SUBSCRIPTIONS: usize = 20;
const GROUPS_PER_SUB: usize = 5;
const CLUSTERS_PER_RG: usize = 2;
const NAMESPACES: usize = 50;
const CUSTOM_ROLES: usize = 20;

const DATA_ACTIONS: [&str; 14] = [
    "Microsoft.ContainerService/managedClusters/pods/read",
    "Microsoft.ContainerService/managedClusters/pods/*",
    "Microsoft.ContainerService/managedClusters/apps/deployments/*",
    "Microsoft.ContainerService/managedClusters/apps/*/read",
    "Microsoft.ContainerService/managedClusters/configmaps/*",
    "Microsoft.ContainerService/managedClusters/services/read",
    "Microsoft.ContainerService/managedClusters/*/read",
    "Microsoft.ContainerService/managedClusters/batch/jobs/*",
    "Microsoft.ContainerService/managedClusters/events/read",
    "Microsoft.ContainerService/managedClusters/namespaces/read",
    "Microsoft.ContainerService/managedClusters/networking.k8s.io/ingresses/*",
    "Microsoft.ContainerService/managedClusters/persistentvolumeclaims/*",
    "Microsoft.ContainerService/managedClusters/secrets/read",
    "Microsoft.ContainerService/managedClusters/serviceaccounts/read",
];

/// The generated objects as JSON values, in the shapes `az` and `kubectl` print.
pub struct Generated {
    pub role_definitions: Vec<Value>,
    pub role_assignments: Vec<Value>,
    pub deny_assignments: Vec<Value>,
    pub management_groups: Vec<Value>,
    pub rbac: Vec<Value>,
    /// The requester's groups (the first few matter, the rest are unrelated).
    pub user_groups: Vec<String>,
}

impl Generated {
    /// Every object in one JSON array, for a single policy file or the in-memory parser.
    pub fn all(&self) -> Value {
        let mut all = Vec::new();
        for list in [
            &self.role_definitions,
            &self.role_assignments,
            &self.deny_assignments,
            &self.management_groups,
            &self.rbac,
        ] {
            all.extend(list.iter().cloned());
        }
        Value::Array(all)
    }
}

fn assignment(id: usize, principal: &str, role: &str, scope: &str) -> Value {
    json!({
        "id": format!("/subscriptions/{}/providers/Microsoft.Authorization/roleAssignments/{}", subscription(0), guid(0xe, id as u64)),
        "principalId": principal, "principalType": "Group",
        "roleDefinitionId": format!("/providers/Microsoft.Authorization/roleDefinitions/{role}"),
        "scope": scope, "type": "Microsoft.Authorization/roleAssignments",
    })
}

/// Generates a policy set.
pub fn generate(shape: Shape, builtin_roles: &Value) -> Generated {
    let mut rng = Rng(0x5C09_E6A7);
    let mut role_definitions: Vec<Value> = builtin_roles["roles"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut role_ids: Vec<String> = vec![
        READER.into(),
        WRITER.into(),
        ADMIN.into(),
        CLUSTER_ADMIN.into(),
    ];
    for i in 0..CUSTOM_ROLES {
        let id = guid(0xc, i as u64);
        let actions: Vec<&str> = (0..3)
            .map(|_| DATA_ACTIONS[rng.below(DATA_ACTIONS.len())])
            .collect();
        let not: Vec<&str> = if i % 4 == 0 {
            vec!["Microsoft.ContainerService/managedClusters/secrets/*"]
        } else {
            vec![]
        };
        role_definitions.push(json!({
            "id": format!("/subscriptions/{}/providers/Microsoft.Authorization/roleDefinitions/{id}", subscription(0)),
            "name": id, "roleName": format!("custom-{i}"), "roleType": "CustomRole", "type": "Microsoft.Authorization/roleDefinitions",
            "assignableScopes": [format!("/subscriptions/{}", subscription(0))],
            "permissions": [{"actions": [], "notActions": [], "dataActions": actions, "notDataActions": not}],
        }));
        role_ids.push(id);
    }
    let mgs = ["mg-root", "mg-platform", "mg-apps", "mg-sandbox"];
    let mut management_groups = vec![
        json!({"id": "/providers/Microsoft.Management/managementGroups/mg-root", "name": "mg-root", "type": "Microsoft.Management/managementGroups", "parent": null}),
    ];
    for mg in &mgs[1..] {
        management_groups.push(json!({"id": format!("/providers/Microsoft.Management/managementGroups/{mg}"), "name": mg, "type": "Microsoft.Management/managementGroups", "parent": {"id": "/providers/Microsoft.Management/managementGroups/mg-root"}}));
    }
    for s in 0..SUBSCRIPTIONS {
        management_groups.push(json!({"id": format!("/subscriptions/{}", subscription(s)), "name": subscription(s), "type": "/subscriptions", "parent": {"id": format!("/providers/Microsoft.Management/managementGroups/{}", mgs[1 + s % 3])}}));
    }
    // Principals: many groups and users unrelated to the requester.
    let principal_pool = (shape.assignments / 3).max(10);
    let mut role_assignments = Vec::with_capacity(shape.assignments);
    // The requester's own grants: Writer in ns-0 through a group, Reader at its resource group.
    role_assignments.push(assignment(
        0,
        WRITERS,
        WRITER,
        &format!("{CLUSTER}/namespaces/ns-0"),
    ));
    role_assignments.push(assignment(
        1,
        USER_OID,
        READER,
        &format!("/subscriptions/{}/resourceGroups/rg-0", subscription(0)),
    ));
    role_assignments.push(assignment(
        2,
        PLATFORM,
        CLUSTER_ADMIN,
        &format!("/subscriptions/{}", subscription(0)),
    ));
    for i in role_assignments.len()..shape.assignments {
        let principal = guid(
            if rng.below(10) < 7 { 0x9 } else { 0x7 },
            rng.below(principal_pool) as u64,
        );
        let role = &role_ids[rng.below(role_ids.len())];
        let (s, g, c) = (
            rng.below(SUBSCRIPTIONS),
            rng.below(GROUPS_PER_SUB),
            rng.below(CLUSTERS_PER_RG),
        );
        let scope = match rng.below(100) {
            0..=4 => format!(
                "/providers/Microsoft.Management/managementGroups/{}",
                mgs[rng.below(mgs.len())]
            ),
            5..=14 => format!("/subscriptions/{}", subscription(s)),
            15..=29 => format!("/subscriptions/{}/resourceGroups/rg-{g}", subscription(s)),
            30..=59 => cluster_scope(s, g, c),
            _ => format!(
                "{}/namespaces/ns-{}",
                cluster_scope(s, g, c),
                rng.below(NAMESPACES)
            ),
        };
        role_assignments.push(assignment(i, &principal, role, &scope));
    }
    let deny_assignments = vec![json!({
        "id": format!("{CLUSTER}/providers/Microsoft.Authorization/denyAssignments/{}", guid(0xd, 0)),
        "denyAssignmentName": "no-secrets", "type": "Microsoft.Authorization/denyAssignments",
        "permissions": [{"dataActions": ["Microsoft.ContainerService/managedClusters/secrets/*"]}],
        "principals": [{"id": "00000000-0000-0000-0000-000000000000", "type": "SystemDefined"}],
        "excludePrincipals": [{"id": PLATFORM, "type": "Group"}],
        "scope": CLUSTER, "doNotApplyToChildScopes": false,
    })];
    // The requester's groups: the writers group, then groups that exist in the policy (other
    // clusters), then groups with no assignment at all.
    let mut user_groups = vec![WRITERS.to_string()];
    for i in 1..shape.groups_per_user {
        user_groups.push(if i % 4 == 0 {
            guid(0x9, (i * 7 % principal_pool) as u64)
        } else {
            guid(0x5, i as u64)
        });
    }
    user_groups.truncate(shape.groups_per_user.max(1));
    user_groups.push("system:authenticated".into());
    Generated {
        role_definitions,
        role_assignments,
        deny_assignments,
        management_groups,
        rbac: rbac_bindings(shape.rbac_bindings, &mut rng),
        user_groups,
    }
}

/// `n` RoleBindings and ClusterRoleBindings to the bootstrap `view`/`edit` roles for
/// unrelated users and groups, plus one RoleBinding for the benchmark user.
fn rbac_bindings(n: usize, rng: &mut Rng) -> Vec<Value> {
    let mut out = Vec::with_capacity(n + 2);
    out.push(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "bench-reader"},
        "rules": [{"apiGroups": ["", "apps"], "resources": ["pods", "deployments", "configmaps"], "verbs": ["get", "list", "watch"]}]}));
    out.push(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "bench-user", "namespace": "ns-1"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "bench-reader"},
        "subjects": [{"kind": "User", "name": "bench-user"}]}));
    for i in 0..n {
        let subject = if rng.below(2) == 0 {
            json!({"kind": "User", "name": format!("user-{i}")})
        } else {
            json!({"kind": "Group", "name": format!("group-{}", rng.below(n.max(1)))})
        };
        if i % 5 == 0 {
            out.push(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": format!("crb-{i}")},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "bench-reader"}, "subjects": [subject]}));
        } else {
            out.push(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": format!("rb-{i}"), "namespace": format!("ns-{}", rng.below(NAMESPACES))},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "bench-reader"}, "subjects": [subject]}));
        }
    }
    out
}

/// The benchmark cases: an Azure allow, an Azure deny, an Azure no-match, and an RBAC allow.
pub fn request(case: &str, groups: &[String]) -> AccessRequest {
    let (user, verb, resource, namespace, oid) = match case {
        "allow" => ("alice@contoso.com", "list", "pods", "ns-0", true),
        "deny" => ("alice@contoso.com", "get", "secrets", "ns-0", true),
        "no_match" => ("alice@contoso.com", "create", "pods", "ns-7", true),
        _ => ("bench-user", "list", "pods", "ns-1", false),
    };
    let mut r = AccessRequest {
        user: user.into(),
        groups: groups.iter().collect(),
        resource_attributes: Some(Box::new(ResourceAttributes {
            verb: verb.into(),
            resource: resource.into(),
            namespace: namespace.into(),
            version: "v1".into(),
            ..ResourceAttributes::default()
        })),
        ..AccessRequest::default()
    };
    if oid {
        r.extra.insert("oid".into(), vec![USER_OID.into()]);
    }
    r
}

/// The AKS built-in role definitions shipped in `policies/`, for unit tests.
#[cfg(test)]
pub(crate) fn example_builtin_roles() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("policies/azure/aks-builtin-roles.json");
    std::fs::read(path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .expect("policies/azure/aks-builtin-roles.json holds the built-in roles")
}

//! Differential property test: random policies and requests, built through the real file
//! parser, must get the same verdict, deciding source and deciding id from the indexed engine
//! and the independent reference evaluator (`tests/reference`). `SCOPEGATE_DIFF_CASES` sets
//! the number of random policies (default 10,000).

#[path = "reference/mod.rs"]
mod reference;

use proptest::prelude::*;
use scopegate::engine::{self, EngineOptions, NoMatch, SourceOrder};
use scopegate::model::{AccessRequest, NonResourceAttributes, ResourceAttributes, Scope};
use scopegate::policy::IndexOptions;
use scopegate::policy::parse::add_value;
use scopegate::policy::schema::RoleAssignment;
use scopegate::policy::{Origin, PolicySet, Snapshot};
use serde_json::{Value, json};

const SUB: &str = "00000000-0000-0000-0000-00000000aaaa";
const CLUSTER: &str = "/subscriptions/00000000-0000-0000-0000-00000000aaaa/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks1";
const PRINCIPALS: [&str; 6] = [
    "aaaaaaaa-0000-4000-8000-000000000001",
    "aaaaaaaa-0000-4000-8000-000000000002",
    "bbbbbbbb-0000-4000-8000-000000000001",
    "bbbbbbbb-0000-4000-8000-000000000002",
    "bbbbbbbb-0000-4000-8000-000000000003",
    "00000000-0000-0000-0000-000000000000",
];
const NAMESPACES: [&str; 4] = ["", "dev", "prod", "Bad_NS"];
const VERBS: [&str; 16] = [
    "get",
    "list",
    "create",
    "delete",
    "*",
    "impersonate",
    "bind",
    "approve",
    "patch",
    "update",
    "watch",
    "deletecollection",
    "escalate",
    "use",
    "sign",
    "impersonate:user-info",
];
const RESOURCES: [(&str, &str, &str); 10] = [
    ("", "pods", ""),
    ("", "pods", "exec"),
    ("", "pods", "log"),
    ("", "secrets", ""),
    ("apps", "deployments", ""),
    ("apps", "deployments", "scale"),
    ("", "*", ""),
    ("*", "*", ""),
    // Not built in, named by a role literally and sent in mixed case: interned by its text.
    ("example.com", "Widgets", ""),
    // Its actions hold `/read` before their end: a pattern's last part must match at the end.
    ("example.com", "readers", ""),
];
const PATTERNS: [&str; 21] = [
    "Microsoft.ContainerService/managedClusters/*",
    "Microsoft.ContainerService/managedClusters/pods/*",
    "Microsoft.ContainerService/managedClusters/pods/read",
    "Microsoft.ContainerService/managedClusters/*/read",
    "Microsoft.ContainerService/managedClusters/secrets/*",
    "Microsoft.ContainerService/managedClusters/apps/deployments/write",
    "Microsoft.ContainerService/managedClusters/pods/exec/action",
    "microsoft.containerservice/MANAGEDCLUSTERS/apps/*",
    "Microsoft.ContainerService/managedClusters/metrics/read",
    "Microsoft.ContainerService/managedClusters/users/impersonate/action",
    "*",
    "Microsoft.ContainerService/managedClusters/pods/delete",
    "Microsoft.ContainerService/managedClusters/example.com/widgets/read",
    "Microsoft.ContainerService/managedClusters/pods/write",
    "Microsoft.ContainerService/managedClusters/*/delete",
    "Microsoft.ContainerService/managedClusters/apps/deployments/*",
    "Microsoft.ContainerService/managedClusters/users/impersonate:user-info/action",
    // Wildcards in the middle and a last literal part that also occurs earlier in the action.
    "Microsoft.ContainerService/managedClusters/p*s/*/read",
    "Microsoft.ContainerService/managedClusters/*/write",
    "microsoft.containerservice/*/EXEC/action",
    // A head that differs from every action's.
    "Microsoft.ContainerService/fleets/*/read",
];

fn scopes() -> Vec<String> {
    vec![
        "/".into(),
        "/providers/Microsoft.Management/managementGroups/mg-a".into(),
        "/providers/Microsoft.Management/managementGroups/mg-b".into(),
        format!("/subscriptions/{SUB}"),
        "/subscriptions/00000000-0000-0000-0000-00000000bbbb".into(),
        format!("/subscriptions/{SUB}/resourceGroups/rg"),
        format!("/subscriptions/{SUB}/resourceGroups/RG2"),
        CLUSTER.into(),
        format!("{CLUSTER}0"),
        format!("{CLUSTER}/namespaces/dev"),
        format!("{CLUSTER}/namespaces/PROD"),
    ]
}

prop_compose! {
    fn role()(allow in prop::collection::vec(0..PATTERNS.len(), 1..3), deny in prop::collection::vec(0..PATTERNS.len(), 0..2)) -> (Vec<usize>, Vec<usize>) {
        (allow, deny)
    }
}

prop_compose! {
    fn assignment()(principal in 0..5usize, role in 0..4usize, scope in 0..11usize, conditioned in prop::bool::weighted(0.1)) -> (usize, usize, usize, bool) {
        (principal, role, scope, conditioned)
    }
}

prop_compose! {
    fn deny()(principal in 0..6usize, excluded in prop::option::of(0..5usize), scope in 0..11usize, children in any::<bool>(), pattern in 0..PATTERNS.len()) -> (usize, Option<usize>, usize, bool, usize) {
        (principal, excluded, scope, children, pattern)
    }
}

prop_compose! {
    fn binding()(cluster in any::<bool>(), subject in 0..7usize, role in 0..4usize, ns in 1..3usize) -> (bool, usize, usize, usize) {
        (cluster, subject, role, ns)
    }
}

prop_compose! {
    fn request()(
        oid in prop::option::of(0..11usize),
        groups in prop::collection::vec((0..5usize, prop::bool::weighted(0.3)), 0..4),
        verb in 0..VERBS.len(),
        resource in 0..RESOURCES.len(),
        ns in 0..NAMESPACES.len(),
        non_resource in prop::bool::weighted(0.15),
        user in 0..4usize,
    ) -> AccessRequest {
        let mut r = AccessRequest { user: ["alice", "system:kube-proxy", "bob", "system:serviceaccount:dev:ci"][user].into(), ..Default::default() };
        if let Some(o) = oid {
            // Every spelling an object id may arrive in, valid or not: the engine checks the
            // canonical form itself and leaves the rest to `uuid`; the reference parses all.
            let value = match o {
                5 => "not-a-guid".to_string(),
                6 => PRINCIPALS[0].to_ascii_uppercase(),
                7 => format!(" {{{}}} ", PRINCIPALS[1]),
                8 => PRINCIPALS[2].replace('-', ""),
                9 => format!("{}-", PRINCIPALS[3].replacen('-', "", 1)),
                10 => PRINCIPALS[4].replacen(|c: char| c.is_ascii_hexdigit(), "g", 1),
                _ => PRINCIPALS[o].to_string(),
            };
            r.extra.insert("oid".into(), vec![value]);
        }
        // Some object ids upper-cased: Azure compares them case-insensitively.
        r.groups = groups
            .iter()
            .map(|(g, upper)| if *upper { PRINCIPALS[*g].to_ascii_uppercase() } else { PRINCIPALS[*g].to_string() })
            .chain(["devs".to_string(), "system:serviceaccounts:dev".to_string()])
            .collect();
        if non_resource {
            r.non_resource_attributes = Some(NonResourceAttributes { path: ["/metrics", "/api", "/logs/x"][verb % 3].into(), verb: VERBS[verb].into() });
        } else {
            let (g, res, sub) = RESOURCES[resource];
            r.resource_attributes = Some(Box::new(ResourceAttributes {
                namespace: NAMESPACES[ns].into(), verb: VERBS[verb].into(), group: g.into(), resource: res.into(),
                subresource: sub.into(), name: ["web", "", "db"][verb % 3].into(), ..Default::default()
            }));
        }
        r
    }
}

type Policy = (
    Vec<(Vec<usize>, Vec<usize>)>,
    Vec<(usize, usize, usize, bool)>,
    Vec<(usize, Option<usize>, usize, bool, usize)>,
    Vec<(bool, usize, usize, usize)>,
);

/// The generated policy as the engine's snapshot, and as parsed for the reference.
fn build(policy: &Policy, options: &IndexOptions) -> (Snapshot, PolicySet, Vec<RoleAssignment>) {
    let (roles, assignments, denies, bindings) = policy;
    let scopes = scopes();
    let mut objects = Vec::new();
    let mut raw = Vec::new();
    for (i, (allow, except)) in roles.iter().enumerate() {
        objects.push(json!({
            "name": format!("c0000000-0000-4000-8000-00000000000{i}"), "roleName": format!("role {i}"), "type": "Microsoft.Authorization/roleDefinitions",
            "permissions": [{"dataActions": allow.iter().map(|p| PATTERNS[*p]).collect::<Vec<_>>(), "notDataActions": except.iter().map(|p| PATTERNS[*p]).collect::<Vec<_>>()}],
        }));
    }
    for (i, (p, r, s, conditioned)) in assignments.iter().enumerate() {
        let role = r % roles.len().max(1);
        let mut a = json!({"id": format!("ra-{i}"), "principalId": PRINCIPALS[*p], "roleDefinitionId": format!("/providers/Microsoft.Authorization/roleDefinitions/c0000000-0000-4000-8000-00000000000{role}"), "scope": scopes[*s]});
        if *conditioned {
            a["condition"] = json!(if i % 2 == 0 {
                "((!(ActionMatches{'Microsoft.ContainerService/managedClusters/pods/read'})) OR (@Request[Microsoft.ContainerService/managedClusters/resources:subresource] StringEquals 'log'))"
            } else {
                "@Principal[x] StringEquals 'y'"
            });
            a["conditionVersion"] = json!("2.0");
        }
        raw.push(serde_json::from_value(a.clone()).expect("assignment reads"));
        objects.push(a);
    }
    for (i, (p, ex, s, children, pattern)) in denies.iter().enumerate() {
        objects.push(json!({"id": format!("deny-{i}"), "type": "Microsoft.Authorization/denyAssignments", "scope": scopes[*s], "doNotApplyToChildScopes": !children,
            "principals": [{"id": PRINCIPALS[*p]}], "excludePrincipals": ex.iter().map(|e| json!({"id": PRINCIPALS[*e]})).collect::<Vec<_>>(),
            "permissions": [{"dataActions": [PATTERNS[*pattern]]}]}));
    }
    objects.push(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "reader"}, "rules": [{"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list"]}, {"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]}));
    objects.push(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "all"}, "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]}));
    // Aggregated: takes the rules of every ClusterRole labelled `agg: edit`, its own dropped.
    objects.push(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "edit"},
        "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"agg": "edit"}}]}, "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]}));
    objects.push(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "edit-pods", "labels": {"agg": "edit"}},
        "rules": [{"apiGroups": [""], "resources": ["pods", "*/exec"], "verbs": ["patch", "create", "update"]}]}));
    objects.push(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "edit-more", "labels": {"agg": "edit"}},
        "aggregationRule": {"clusterRoleSelectors": [{"matchExpressions": [{"key": "tier", "operator": "In", "values": ["x"]}]}]}}));
    objects.push(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "secrets-one", "labels": {"tier": "x"}},
        "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "delete"], "resourceNames": ["db"]}, {"nonResourceURLs": ["/logs/*"], "verbs": ["*"]}]}));
    objects.push(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "deployer", "namespace": "dev"}, "rules": [{"apiGroups": ["apps"], "resources": ["deployments", "*/scale"], "verbs": ["*"], "resourceNames": ["web"]}]}));
    for (i, (cluster, subject, role, ns)) in bindings.iter().enumerate() {
        let subject = [
            json!({"kind": "User", "name": "alice"}),
            json!({"kind": "Group", "name": "devs"}),
            json!({"kind": "User", "name": "system:kube-proxy"}),
            json!({"kind": "Group", "name": PRINCIPALS[2]}),
            json!({"kind": "ServiceAccount", "name": "ci"}),
            json!({"kind": "ServiceAccount", "name": "ci", "namespace": "dev"}),
            json!({"kind": "Group", "name": "system:serviceaccounts:dev"}),
        ][*subject]
            .clone();
        let role_ref = [
            json!({"kind": "ClusterRole", "name": "reader"}),
            json!({"kind": "ClusterRole", "name": "all"}),
            json!({"kind": "Role", "name": "deployer"}),
            json!({"kind": "ClusterRole", "name": "edit"}),
        ][*role]
            .clone();
        if *cluster && *role != 2 {
            objects.push(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": format!("crb-{i}")}, "roleRef": role_ref, "subjects": [subject]}));
        } else {
            objects.push(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": format!("rb-{i}"), "namespace": NAMESPACES[*ns]}, "roleRef": role_ref, "subjects": [subject]}));
        }
    }
    let mut set = PolicySet::default();
    let mut diagnostics = Vec::new();
    add_value(
        &Origin::new("generated", "$"),
        Value::Array(objects),
        &mut set,
        &mut diagnostics,
    );
    assert!(diagnostics.iter().all(|d| !d.is_error()), "{diagnostics:?}");
    set.management_group_ancestry
        .push((SUB.into(), vec!["mg-a".into(), "root".into()]));
    let parsed = set.clone();
    let snapshot = Snapshot::build(set, options, 1).expect("generated policy is valid");
    (snapshot, parsed, raw)
}

/// The number of random policies for each of the two halves (the test harness runs them on
/// two threads): half of `SCOPEGATE_DIFF_CASES`, else of 10,000.
fn cases() -> u32 {
    let total = std::env::var("SCOPEGATE_DIFF_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000u32);
    total.div_ceil(2)
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: cases(),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn engine_agrees_with_independent_reference(
        policy in policy(),
    ) {
        check(policy)?;
    }

    #[test]
    fn engine_agrees_with_independent_reference_second_half(
        policy in policy(),
    ) {
        check(policy)?;
    }
}

/// A random policy, the requests to decide on it, and the decision options.
type Case = (Policy, Vec<AccessRequest>, bool, bool);

fn policy() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec(role(), 1..4),
        prop::collection::vec(assignment(), 0..8),
        prop::collection::vec(deny(), 0..3),
        prop::collection::vec(binding(), 0..4),
        prop::collection::vec(request(), 1..6),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(roles, assignments, denies, bindings, requests, deny_on_no_match, rbac_first)| {
                (
                    (roles, assignments, denies, bindings),
                    requests,
                    deny_on_no_match,
                    rbac_first,
                )
            },
        )
}

fn check(case: Case) -> Result<(), TestCaseError> {
    let ((roles, assignments, denies, bindings), requests, deny_on_no_match, rbac_first) = case;
    {
        let options = EngineOptions {
            no_match: if deny_on_no_match {
                NoMatch::Deny
            } else {
                NoMatch::NoOpinion
            },
            order: if rbac_first {
                SourceOrder::RbacFirst
            } else {
                SourceOrder::DenyFirst
            },
            ..EngineOptions::default()
        };
        let index = IndexOptions::for_cluster(Scope::parse(CLUSTER).unwrap());
        let (snapshot, set, raw) = build(&(roles, assignments, denies, bindings), &index);
        let snapshot = std::sync::Arc::new(snapshot);
        let policy = reference::Policy {
            set: &set,
            role_assignments: &raw,
        };
        let reference_options = reference::Options {
            cluster: Some(CLUSTER.into()),
            deny_on_no_match,
            rbac_first,
            ..reference::Options::default()
        };
        for r in &requests {
            let fast = engine::authorize(&snapshot, &options, r);
            let expected = reference::decide(&policy, &reference_options, r);
            let ids: Vec<&str> = fast.decided_by.iter().map(|id| &**id).collect();
            let agreed = reference::agrees(&expected, fast.verdict, fast.source, &ids);
            prop_assert!(
                agreed.is_ok(),
                "request {:?}: {} ({})",
                r,
                agreed.unwrap_err(),
                fast.reason
            );
            prop_assert!(!(fast.allowed() && fast.denied()));
        }
    }
    Ok(())
}

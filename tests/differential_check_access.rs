//! Differential property test for CheckAccess at any ARM scope: random roles (Actions,
//! NotActions, DataActions, NotDataActions), role assignments and deny assignments, read
//! through the real file parser, and random questions must get the same decision for every
//! operation from `engine::check_access::decide` and the independent reference evaluator
//! (`tests/reference/check_access.rs`), and the assignment the engine reports must be one the
//! reference found deciding. `SCOPEGATE_DIFF_CASES` sets the number of random policies
//! (default 2,000).

#[path = "reference/mod.rs"]
mod reference;

use proptest::prelude::*;
use reference::check_access::{Operation, Question};
use scopegate::engine::check_access;
use scopegate::model::check_access::{AccessDecision, CheckAccess, OperationRequest, Subject};
use scopegate::model::{Scope, Timestamp};
use scopegate::policy::parse::add_value;
use scopegate::policy::schema::RoleAssignment;
use scopegate::policy::{IndexOptions, Origin, PolicySet, Snapshot};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use uuid::Uuid;

const SUB: &str = "00000000-0000-0000-0000-00000000aaaa";
const OTHER_SUB: &str = "00000000-0000-0000-0000-00000000bbbb";
const EVERYONE: &str = "00000000-0000-0000-0000-000000000000";
const PRINCIPALS: [&str; 5] = [
    "aaaaaaaa-0000-4000-8000-000000000001",
    "aaaaaaaa-0000-4000-8000-000000000002",
    "bbbbbbbb-0000-4000-8000-000000000001",
    "bbbbbbbb-0000-4000-8000-000000000002",
    "bbbbbbbb-0000-4000-8000-000000000003",
];

/// Patterns for every list of a permissions block: control-plane and data operations mixed,
/// so the same string lands in a list of either kind.
const PATTERNS: [&str; 20] = [
    "*",
    "*/read",
    "Microsoft.ContainerService/managedClusters/*",
    "Microsoft.ContainerService/managedClusters/listClusterUserCredential/action",
    "Microsoft.ContainerService/managedClusters/write",
    "Microsoft.ContainerService/managedClusters/read",
    "microsoft.containerservice/MANAGEDCLUSTERS/*/read",
    "Microsoft.ContainerService/managedClusters/pods/*",
    "Microsoft.ContainerService/managedClusters/pods/read",
    "Microsoft.ContainerService/managedClusters/list*/action",
    "Microsoft.KeyVault/vaults/*",
    "Microsoft.KeyVault/vaults/secrets/*",
    "Microsoft.KeyVault/vaults/read",
    "Microsoft.KeyVault/vaults/secrets/getSecret/action",
    "microsoft.keyvault/VAULTS/secrets/GETSECRET/action",
    "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
    "Microsoft.KeyVault/*/action",
    "Microsoft.Storage/*",
    "*/action",
    "Microsoft.ContainerService/managedClusters/secrets/*",
];

/// Concrete operations asked about (each asked as a data or a control-plane one).
const OPERATIONS: [&str; 12] = [
    "Microsoft.ContainerService/managedClusters/listClusterUserCredential/action",
    "Microsoft.ContainerService/managedClusters/read",
    "Microsoft.ContainerService/managedClusters/write",
    "Microsoft.ContainerService/managedClusters/pods/read",
    "Microsoft.ContainerService/managedClusters/pods/exec/action",
    "Microsoft.ContainerService/managedClusters/secrets/read",
    "Microsoft.KeyVault/vaults/read",
    "Microsoft.KeyVault/vaults/secrets/getSecret/action",
    "MICROSOFT.KEYVAULT/vaults/secrets/getsecret/ACTION",
    "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
    "Microsoft.Storage/storageAccounts/read",
    "Microsoft.Storage/storageAccounts/listKeys/action",
];

/// Conditions: one on the request's subresource attribute, one the engine cannot evaluate
/// (fails closed both ways), one on the control-plane cluster actions.
const CONDITIONS: [&str; 3] = [
    "((!(ActionMatches{'Microsoft.KeyVault/vaults/secrets/getSecret/action'})) OR (@Request[Microsoft.ContainerService/managedClusters/resources:subresource] StringEquals 'log'))",
    "@Principal[x] StringEquals 'y'",
    "(ActionMatches{'Microsoft.ContainerService/managedClusters/*'}) AND (@Request[Microsoft.ContainerService/managedClusters/resources:subresource] StringEqualsIgnoreCase 'EXEC')",
];

/// Request attributes an operation may carry, names lower-cased as the decoder folds them.
const ATTRIBUTES: [Option<(&str, &str)>; 3] = [
    None,
    Some((
        "microsoft.containerservice/managedclusters/resources:subresource",
        "log",
    )),
    Some((
        "microsoft.containerservice/managedclusters/resources:subresource",
        "exec",
    )),
];

fn group(name: &str) -> String {
    format!("/providers/Microsoft.Management/managementGroups/{name}")
}

/// Scopes for assignments, deny assignments and resources: the root, management groups
/// (mg-root ⊃ mg-a ⊃ mg-child ⊃ SUB; mg-root ⊃ mg-b ⊃ OTHER_SUB), subscriptions, resource
/// groups, a cluster, a namespace, a key vault, a secret, and near misses: other case,
/// `aks10` beside `aks1`, `kv10`, a resource with a `providers` step but no resource group,
/// a resource group named `providers`, a trailing slash.
fn scopes() -> Vec<String> {
    let sub = format!("/subscriptions/{SUB}");
    let rg = format!("{sub}/resourceGroups/rg");
    let cluster = format!("{rg}/providers/Microsoft.ContainerService/managedClusters/aks1");
    let vault = format!("{rg}/providers/Microsoft.KeyVault/vaults/kv1");
    vec![
        "/".into(),
        group("mg-root"),
        group("mg-a"),
        group("mg-child"),
        group("mg-b"),
        group("MG-A"),
        sub.clone(),
        format!("/subscriptions/{OTHER_SUB}"),
        rg.clone(),
        format!("{sub}/resourceGroups/RG"),
        format!("{sub}/resourceGroups/rg2"),
        cluster.clone(),
        format!("{cluster}0"),
        format!("{cluster}/namespaces/dev"),
        format!("{}/namespaces/DEV", cluster.to_uppercase()),
        vault.clone(),
        format!("{vault}/secrets/s1"),
        format!("{vault}0"),
        format!("{sub}/providers/Microsoft.KeyVault/vaults/kv1"),
        format!("{sub}/resourceGroups/providers"),
        format!("{sub}/"),
        format!("/subscriptions/{OTHER_SUB}/resourceGroups/rg"),
    ]
}

const SCOPES: usize = 22;

/// One permissions block: indices into [`PATTERNS`] for actions, notActions, dataActions,
/// notDataActions.
type Block = [Vec<usize>; 4];

fn block() -> impl Strategy<Value = Block> {
    let list = |max| prop::collection::vec(0..PATTERNS.len(), 0..max);
    (list(4), list(2), list(4), list(2)).prop_map(|(a, na, d, nd)| [a, na, d, nd])
}

fn block_json(block: &Block) -> Value {
    let names = |list: &Vec<usize>| list.iter().map(|p| PATTERNS[*p]).collect::<Vec<_>>();
    json!({"actions": names(&block[0]), "notActions": names(&block[1]),
        "dataActions": names(&block[2]), "notDataActions": names(&block[3])})
}

#[derive(Debug, Clone)]
struct Assignment {
    principal: usize,
    role: usize,
    scope: usize,
    condition: Option<usize>,
}

#[derive(Debug, Clone)]
struct Deny {
    /// Indices into [`PRINCIPALS`]; `PRINCIPALS.len()` is Everyone.
    principals: Vec<usize>,
    excluded: Vec<usize>,
    scope: usize,
    children: bool,
    block: Block,
    condition: Option<usize>,
}

#[derive(Debug, Clone)]
struct Ask {
    object_id: usize,
    groups: Vec<usize>,
    /// (operation, is_data_action, attributes)
    operations: Vec<(usize, bool, usize)>,
    resource: usize,
}

#[derive(Debug, Clone)]
struct Case {
    roles: Vec<Vec<Block>>,
    assignments: Vec<Assignment>,
    denies: Vec<Deny>,
    questions: Vec<Ask>,
}

fn condition() -> impl Strategy<Value = Option<usize>> {
    prop::option::weighted(0.15, 0..CONDITIONS.len())
}

fn assignment() -> impl Strategy<Value = Assignment> {
    (0..PRINCIPALS.len(), 0..4usize, 0..SCOPES, condition()).prop_map(
        |(principal, role, scope, condition)| Assignment {
            principal,
            role,
            scope,
            condition,
        },
    )
}

fn deny() -> impl Strategy<Value = Deny> {
    (
        prop::collection::vec(0..=PRINCIPALS.len(), 1..3),
        prop::collection::vec(0..PRINCIPALS.len(), 0..2),
        0..SCOPES,
        any::<bool>(),
        block(),
        condition(),
    )
        .prop_map(
            |(principals, excluded, scope, children, block, condition)| Deny {
                principals,
                excluded,
                scope,
                children,
                block,
                condition,
            },
        )
}

fn ask() -> impl Strategy<Value = Ask> {
    (
        0..PRINCIPALS.len(),
        prop::collection::vec(0..PRINCIPALS.len(), 0..4),
        prop::collection::vec(
            (0..OPERATIONS.len(), any::<bool>(), 0..ATTRIBUTES.len()),
            1..6,
        ),
        0..SCOPES,
    )
        .prop_map(|(object_id, groups, operations, resource)| Ask {
            object_id,
            groups,
            operations,
            resource,
        })
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec(prop::collection::vec(block(), 1..3), 1..4),
        prop::collection::vec(assignment(), 0..14),
        prop::collection::vec(deny(), 0..6),
        prop::collection::vec(ask(), 1..6),
    )
        .prop_map(|(roles, assignments, denies, questions)| Case {
            roles,
            assignments,
            denies,
            questions,
        })
}

fn role_guid(i: usize) -> String {
    format!("c0000000-0000-4000-8000-00000000000{i}")
}

/// The management group hierarchy as `az account management-group entities list` prints it.
fn management_group_entities() -> Vec<Value> {
    vec![
        json!({"id": format!("/subscriptions/{SUB}"), "name": SUB, "type": "/subscriptions", "parent": {"id": group("mg-child")}}),
        json!({"id": format!("/subscriptions/{OTHER_SUB}"), "name": OTHER_SUB, "type": "/subscriptions", "parent": {"id": group("mg-b")}}),
        json!({"id": group("mg-child"), "name": "mg-child", "type": "Microsoft.Management/managementGroups", "parent": {"id": group("mg-a")}}),
        json!({"id": group("mg-a"), "name": "mg-a", "type": "Microsoft.Management/managementGroups", "parent": {"id": group("mg-root")}}),
        json!({"id": group("mg-b"), "name": "mg-b", "type": "Microsoft.Management/managementGroups", "parent": {"id": group("mg-root")}}),
    ]
}

/// The generated policy as the engine's snapshot, and as parsed for the reference.
fn build(case: &Case) -> (Snapshot, PolicySet, Vec<RoleAssignment>) {
    let scopes = scopes();
    let mut objects = management_group_entities();
    let mut raw = Vec::new();
    for (i, blocks) in case.roles.iter().enumerate() {
        objects.push(json!({
            "name": role_guid(i), "roleName": format!("role {i}"), "type": "Microsoft.Authorization/roleDefinitions",
            "permissions": blocks.iter().map(block_json).collect::<Vec<_>>(),
        }));
    }
    for (i, a) in case.assignments.iter().enumerate() {
        let guid = role_guid(a.role % case.roles.len());
        // Role ids both tenant-wide and subscription-scoped, as `az` prints either.
        let role = if i % 2 == 0 {
            format!("/providers/Microsoft.Authorization/roleDefinitions/{guid}")
        } else {
            format!("/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{guid}")
        };
        let mut object = json!({"id": format!("ra-{i}"), "principalId": PRINCIPALS[a.principal],
            "roleDefinitionId": role, "scope": scopes[a.scope]});
        if let Some(c) = a.condition {
            object["condition"] = json!(CONDITIONS[c]);
            object["conditionVersion"] = json!("2.0");
        }
        raw.push(serde_json::from_value(object.clone()).expect("assignment reads"));
        objects.push(object);
    }
    let principal = |p: &usize| json!({"id": PRINCIPALS.get(*p).copied().unwrap_or(EVERYONE)});
    for (i, d) in case.denies.iter().enumerate() {
        let mut object = json!({"id": format!("deny-{i}"), "type": "Microsoft.Authorization/denyAssignments",
            "scope": scopes[d.scope], "doNotApplyToChildScopes": !d.children,
            "principals": d.principals.iter().map(principal).collect::<Vec<_>>(),
            "excludePrincipals": d.excluded.iter().map(principal).collect::<Vec<_>>(),
            "permissions": [block_json(&d.block)]});
        if let Some(c) = d.condition {
            object["condition"] = json!(CONDITIONS[c]);
            object["conditionVersion"] = json!("2.0");
        }
        objects.push(object);
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
    let parsed = set.clone();
    let snapshot =
        Snapshot::build(set, &IndexOptions::default(), 1).expect("generated policy is valid");
    (snapshot, parsed, raw)
}

/// The number of random policies for each of the two halves (the test harness runs them on
/// two threads): half of `SCOPEGATE_DIFF_CASES`, else of 2,000.
fn cases() -> u32 {
    let total = std::env::var("SCOPEGATE_DIFF_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2_000u32);
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
    fn check_access_agrees_with_independent_reference(case in case()) {
        check(&case)?;
    }

    #[test]
    fn check_access_agrees_with_independent_reference_second_half(case in case()) {
        check(&case)?;
    }
}

fn uuid(text: &str) -> Uuid {
    Uuid::parse_str(text).expect("a generated object id")
}

fn check(case: &Case) -> Result<(), TestCaseError> {
    let (snapshot, set, raw) = build(case);
    let scopes = scopes();
    let now = Timestamp::from_system(std::time::SystemTime::now());
    let attributes: Vec<BTreeMap<String, String>> = ATTRIBUTES
        .iter()
        .map(|a| {
            a.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .collect();
    for ask in &case.questions {
        let resource = &scopes[ask.resource];
        let question = CheckAccess {
            subject: Subject::Principal {
                object_id: uuid(PRINCIPALS[ask.object_id]),
                groups: ask.groups.iter().map(|g| uuid(PRINCIPALS[*g])).collect(),
            },
            actions: ask
                .operations
                .iter()
                .map(|(op, data, a)| OperationRequest {
                    id: OPERATIONS[*op].into(),
                    is_data_action: *data,
                    attributes: attributes[*a].clone(),
                })
                .collect(),
            resource: Scope::parse(resource).expect("a generated scope"),
        };
        let answer = check_access::decide(&snapshot, &question, now);
        let expected = reference::check_access::decide(
            &set,
            &raw,
            &Question {
                principals: std::iter::once(ask.object_id)
                    .chain(ask.groups.iter().copied())
                    .map(|p| PRINCIPALS[p].to_string())
                    .collect(),
                resource,
                operations: ask
                    .operations
                    .iter()
                    .map(|(op, data, a)| Operation {
                        id: OPERATIONS[*op],
                        is_data_action: *data,
                        attributes: &attributes[*a],
                    })
                    .collect(),
            },
        );
        prop_assert_eq!(answer.decisions.len(), expected.len());
        for ((op, got), want) in question
            .actions
            .iter()
            .zip(&answer.decisions)
            .zip(&expected)
        {
            let context = || {
                format!(
                    "{} `{}` at `{resource}` for {:?}",
                    if op.is_data_action {
                        "data action"
                    } else {
                        "action"
                    },
                    op.id,
                    question.subject
                )
            };
            prop_assert_eq!(
                got.decision,
                want.decision,
                "{}: engine {:?}, reference {:?} by {:?}",
                context(),
                got,
                want.decision,
                want.deciders
            );
            let reported = match got.decision {
                AccessDecision::Allowed => got.role_assignment.as_ref().map(|a| &*a.id),
                AccessDecision::Denied => got.deny_assignment.as_ref().map(|d| &*d.id),
                AccessDecision::NotAllowed => None,
            };
            let named: Vec<&str> = reported.into_iter().collect();
            if let Err(e) = reference::deciders_agree(&want.deciders, &named) {
                prop_assert!(false, "{}: {}", context(), e);
            }
        }
    }
    Ok(())
}

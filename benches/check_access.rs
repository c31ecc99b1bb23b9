//! CheckAccess in process (`engine::check_access::decide`): one operation, 200 operations, and
//! a workload identity question, at 100k role assignments spread over 10k Azure scopes
//! (subscriptions, resource groups, Key Vaults, storage accounts, clusters). The requester is
//! a user in 10 groups; its assignments sit at the resource, its resource group and its
//! subscription among everyone else's.

mod support;

use criterion::{Criterion, criterion_group, criterion_main};
use scopegate::engine::check_access;
use scopegate::model::check_access::{AccessDecision, CheckAccess, OperationRequest, Subject};
use scopegate::model::workload::{WorkloadMode, WorkloadQuestion};
use scopegate::model::{Scope, Timestamp};
use scopegate::policy::{IndexOptions, Origin, PolicySet, Snapshot};
use serde_json::{Value, json};
use std::hint::black_box;

const ASSIGNMENTS: usize = 100_000;
const SCOPES: usize = 10_000;
const PRINCIPALS: usize = 10_000;

fn guid(kind: u32, n: usize) -> String {
    format!("{kind:08x}-0000-4000-8000-{n:012x}")
}

/// Scope `i` of the 10k: 20 subscriptions, 25 resource groups each, resources below them.
fn scope(i: usize) -> String {
    let sub = guid(0x5, i % 20);
    let rg = (i / 20) % 25;
    match i % 4 {
        0 => format!("/subscriptions/{sub}/resourceGroups/rg-{rg}"),
        1 => format!(
            "/subscriptions/{sub}/resourceGroups/rg-{rg}/providers/Microsoft.KeyVault/vaults/kv-{i}"
        ),
        2 => format!(
            "/subscriptions/{sub}/resourceGroups/rg-{rg}/providers/Microsoft.Storage/storageAccounts/st{i}"
        ),
        _ => format!(
            "/subscriptions/{sub}/resourceGroups/rg-{rg}/providers/Microsoft.ContainerService/managedClusters/aks-{i}"
        ),
    }
}

fn role(guid: &str, name: &str, actions: &[&str], data_actions: &[&str]) -> Value {
    json!({"id": format!("/providers/Microsoft.Authorization/roleDefinitions/{guid}"), "name": guid,
           "roleName": name, "type": "Microsoft.Authorization/roleDefinitions",
           "permissions": [{"actions": actions, "notActions": [], "dataActions": data_actions, "notDataActions": []}],
           "assignableScopes": ["/"]})
}

fn assignment(n: usize, principal: &str, role: &str, scope: &str) -> Value {
    json!({"id": format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{}", guid(0xa, n)),
           "principalId": principal, "principalType": "Group",
           "roleDefinitionId": format!("/providers/Microsoft.Authorization/roleDefinitions/{role}"),
           "scope": scope})
}

const SECRETS_USER: &str = "4633458b-17de-408a-b874-0445c86b69e6";
const VAULT_CONTRIBUTOR: &str = "f25e0fa2-a7c8-4377-a976-54943a77a395";
const READER: &str = "acdd72a7-3385-48ef-bd42-f606fba81ae7";

/// The resource the questions are about, its user and the user's groups.
const RESOURCE: usize = 1 + 4 * 7;

/// Managed identities, each federated to one ServiceAccount; their principals are among the
/// 10k that hold the assignments.
const IDENTITIES: usize = 1_000;
const ISSUER: &str = "https://westeurope.oic.prod-aks.azure.com/11111111-2222-4333-8444-555555555555/7c0e7d0a-1b2c-4d3e-8f40-5a6b7c8d9e01/";

/// Identity `i`, its federated credential and its ServiceAccount `team-<i>/app`.
fn workload(i: usize) -> [Value; 3] {
    let id = format!(
        "/subscriptions/{}/resourcegroups/rg-identities/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-{i}",
        guid(0x5, 0)
    );
    let client_id = guid(0xf, i);
    [
        json!({"id": id, "name": format!("id-{i}"), "type": "Microsoft.ManagedIdentity/userAssignedIdentities",
               "clientId": client_id, "principalId": guid(0xb, i), "tenantId": "11111111-2222-4333-8444-555555555555",
               "location": "westeurope", "resourceGroup": "rg-identities"}),
        json!({"id": format!("{id}/federatedIdentityCredentials/aks"), "name": "aks",
               "type": "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials",
               "issuer": ISSUER, "subject": format!("system:serviceaccount:team-{i}:app"),
               "audiences": ["api://AzureADTokenExchange"], "resourceGroup": "rg-identities"}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount",
               "metadata": {"name": "app", "namespace": format!("team-{i}"),
                            "annotations": {"azure.workload.identity/client-id": client_id}}}),
    ]
}

fn policy() -> (Snapshot, Vec<uuid::Uuid>) {
    let mut objects = support::builtin_roles()["roles"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    objects.push(role(
        SECRETS_USER,
        "Key Vault Secrets User",
        &[],
        &[
            "Microsoft.KeyVault/vaults/secrets/getSecret/action",
            "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
        ],
    ));
    objects.push(role(
        VAULT_CONTRIBUTOR,
        "Key Vault Contributor",
        &[
            "Microsoft.KeyVault/*",
            "Microsoft.Resources/deployments/*",
            "Microsoft.Authorization/*/read",
        ],
        &[],
    ));
    objects.push(role(READER, "Reader", &["*/read"], &[]));
    let roles = [SECRETS_USER, VAULT_CONTRIBUTOR, READER];
    for n in 0..ASSIGNMENTS {
        let principal = guid(0xb, (n * 7919) % PRINCIPALS);
        objects.push(assignment(
            n,
            &principal,
            roles[n % 3],
            &scope((n * 104_729) % SCOPES),
        ));
    }
    // The requester's groups hold roles at the resource, its resource group and subscription.
    let groups: Vec<String> = (0..10).map(|g| guid(0xc, g)).collect();
    let resource = scope(RESOURCE);
    let rg = resource
        .split("/providers/")
        .next()
        .unwrap_or_default()
        .to_string();
    let sub = rg
        .split("/resourceGroups/")
        .next()
        .unwrap_or_default()
        .to_string();
    for i in 0..IDENTITIES {
        objects.extend(workload(i));
    }
    // The bench's ServiceAccount: identity 7's principal holds Secrets User at the vault.
    objects.push(assignment(
        ASSIGNMENTS + 100,
        &guid(0xb, 7),
        SECRETS_USER,
        &resource,
    ));
    for (i, (group, at)) in groups
        .iter()
        .zip([&resource, &rg, &sub].into_iter().cycle())
        .enumerate()
    {
        objects.push(assignment(ASSIGNMENTS + i, group, roles[i % 3], at));
    }
    let mut set = PolicySet::default();
    let mut diagnostics = Vec::new();
    scopegate::policy::parse::add_value(
        &Origin::new("bench", "$"),
        Value::Array(objects),
        &mut set,
        &mut diagnostics,
    );
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    let snapshot = Snapshot::build(set, &IndexOptions::default(), 1).expect("policy builds");
    let groups = groups.iter().map(|g| g.parse().expect("guid")).collect();
    (snapshot, groups)
}

fn operations(n: usize) -> Vec<OperationRequest> {
    let pool = [
        ("Microsoft.KeyVault/vaults/secrets/getSecret/action", true),
        ("Microsoft.KeyVault/vaults/write", false),
        ("Microsoft.KeyVault/vaults/read", false),
        ("Microsoft.KeyVault/vaults/secrets/setSecret/action", true),
        ("Microsoft.Storage/storageAccounts/listKeys/action", false),
    ];
    (0..n)
        .map(|i| {
            let (id, data) = pool[i % pool.len()];
            OperationRequest {
                id: id.to_string(),
                is_data_action: data,
                attributes: Default::default(),
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let (snapshot, groups) = policy();
    let now = Timestamp::from_unix_millis(1_800_000_000_000);
    let question = |n: usize| CheckAccess {
        subject: Subject::Principal {
            object_id: guid(0xd, 1).parse().expect("guid"),
            groups: groups.clone(),
        },
        actions: operations(n),
        resource: Scope::parse(&format!("{}/secrets/db-password", scope(RESOURCE))).expect("scope"),
    };
    let one = question(1);
    let answer = check_access::decide(&snapshot, &one, now);
    assert_eq!(
        answer.decisions.first().map(|d| d.decision),
        Some(AccessDecision::Allowed),
        "the bench measures an allow"
    );
    let many = question(200);
    let answer = check_access::decide(&snapshot, &many, now);
    assert!(
        answer
            .decisions
            .iter()
            .any(|d| d.decision == AccessDecision::NotAllowed)
    );
    let workload_question = CheckAccess {
        subject: Subject::ServiceAccount(WorkloadQuestion {
            namespace: "team-7".into(),
            name: "app".into(),
            issuer: ISSUER.into(),
            audience: "api://AzureADTokenExchange".into(),
            mode: WorkloadMode::Configured,
        }),
        ..question(1)
    };
    let answer = check_access::decide(&snapshot, &workload_question, now);
    assert_eq!(
        answer.decisions.first().map(|d| d.decision),
        Some(AccessDecision::Allowed),
        "the bench measures a workload identity's allow: {answer:?}"
    );
    let mut group = c.benchmark_group("check_access");
    group.bench_function("1 operation", |b| {
        b.iter(|| check_access::decide(&snapshot, black_box(&one), now))
    });
    group.bench_function("200 operations", |b| {
        b.iter(|| check_access::decide(&snapshot, black_box(&many), now))
    });
    group.bench_function("workload identity", |b| {
        b.iter(|| check_access::decide(&snapshot, black_box(&workload_question), now))
    });
    group.finish();
}

criterion_group! { name = benches; config = support::criterion(); targets = bench }
criterion_main!(benches);

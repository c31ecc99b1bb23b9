//! `scopegate validate` on workload identity policy: the objects load from the shapes `az`
//! and `kubectl` print, bad ones are errors at their place, and the lints are warnings.

mod support;

use serde_json::{Value, json};
use std::process::Output;
use support::{scopegate, stderr};

const ISSUER: &str = "https://westeurope.oic.prod-aks.azure.com/11111111-2222-4333-8444-555555555555/7c0e7d0a-1b2c-4d3e-8f40-5a6b7c8d9e01/";
const SUB: &str = "/subscriptions/00000000-0000-0000-0000-00000000aaaa";
const PAYMENTS_PRINCIPAL: &str = "9b1c0000-0000-4000-8000-00000000a001";
const IDLE_PRINCIPAL: &str = "9b1c0000-0000-4000-8000-00000000a003";
const OWNER: &str = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635";
const SECRETS_USER: &str = "4633458b-17de-408a-b874-0445c86b69e6";
const STORAGE_ALL: &str = "0c0c0c0c-0000-4000-8000-000000000001";

fn identity_id(name: &str) -> String {
    format!(
        "{SUB}/resourcegroups/rg-app/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}"
    )
}

fn identity(name: &str, client: &str, principal: &str) -> Value {
    json!({"clientId": client, "id": identity_id(name), "name": name, "principalId": principal,
           "tenantId": "11111111-2222-4333-8444-555555555555",
           "type": "Microsoft.ManagedIdentity/userAssignedIdentities"})
}

fn credential(identity: &str, name: &str, subject: &str) -> Value {
    json!({"audiences": ["api://AzureADTokenExchange"],
           "id": format!("{}/federatedIdentityCredentials/{name}", identity_id(identity)),
           "issuer": ISSUER, "name": name, "subject": subject,
           "type": "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials"})
}

fn role(guid: &str, name: &str, actions: &[&str], data_actions: &[&str]) -> Value {
    json!({"id": format!("/providers/Microsoft.Authorization/roleDefinitions/{guid}"), "name": guid,
           "roleName": name, "type": "Microsoft.Authorization/roleDefinitions",
           "permissions": [{"actions": actions, "notActions": [], "dataActions": data_actions, "notDataActions": []}]})
}

fn assignment(n: u32, principal: &str, role: &str, scope: &str) -> Value {
    json!({"id": format!("{SUB}/providers/Microsoft.Authorization/roleAssignments/ra-{n}"),
           "principalId": principal, "principalType": "ServicePrincipal",
           "roleDefinitionId": format!("{SUB}/providers/Microsoft.Authorization/roleDefinitions/{role}"),
           "scope": scope})
}

const SERVICE_ACCOUNTS: &str = "apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ServiceAccount
  metadata:
    name: api
    namespace: payments
    annotations:
      azure.workload.identity/client-id: 5e3f0c2a-7b1d-4e6f-9a80-1c2d3e4f5c1d
- apiVersion: v1
  kind: ServiceAccount
  metadata:
    name: orphan
    namespace: payments
    annotations:
      azure.workload.identity/client-id: 00000000-1111-4222-8333-444444444444
";

/// `validate` on a directory of the given files.
fn validate(files: &[(&str, String)]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let out = scopegate(&["validate", "--policies", dir.path().to_str().unwrap()]);
    eprintln!("{}", String::from_utf8_lossy(&out.stdout));
    out
}

fn healthy_files() -> Vec<(&'static str, String)> {
    let mut credentials = vec![credential(
        "id-payments",
        "aks1-payments-api",
        "system:serviceaccount:payments:api",
    )];
    // 21 credentials on id-busy, one past Azure's limit; one names no loaded ServiceAccount.
    for i in 0..21 {
        credentials.push(credential(
            "id-busy",
            &format!("c{i}"),
            "system:serviceaccount:payments:api",
        ));
    }
    credentials.push(credential(
        "id-busy",
        "ghost",
        "system:serviceaccount:payments:ghost",
    ));
    vec![
        (
            "identities.json",
            json!([
                identity(
                    "id-payments",
                    "5e3f0c2a-7b1d-4e6f-9a80-1c2d3e4f5c1d",
                    PAYMENTS_PRINCIPAL
                ),
                identity(
                    "id-busy",
                    "6a4f1d3b-8c2e-4f70-8b91-2d3e4f5a6b7c",
                    "9b1c0000-0000-4000-8000-00000000a002"
                ),
                identity(
                    "id-idle",
                    "7b5a2e4c-9d3f-4a81-9ca2-3e4f5a6b7c8d",
                    IDLE_PRINCIPAL
                ),
            ])
            .to_string(),
        ),
        ("credentials.json", Value::from(credentials).to_string()),
        ("serviceaccounts.yaml", SERVICE_ACCOUNTS.to_string()),
        (
            "roles.json",
            json!([
                role(OWNER, "Owner", &["*"], &[]),
                role(
                    SECRETS_USER,
                    "Key Vault Secrets User",
                    &[],
                    &["Microsoft.KeyVault/vaults/secrets/getSecret/action"]
                ),
                role(
                    STORAGE_ALL,
                    "Storage Everything",
                    &[],
                    &["Microsoft.Storage/*"]
                ),
            ])
            .to_string(),
        ),
        (
            "assignments.json",
            json!([
                // Warned: a federated identity with Owner at the subscription, and with
                // wildcard data actions at a management group.
                assignment(1, PAYMENTS_PRINCIPAL, OWNER, SUB),
                assignment(
                    2,
                    PAYMENTS_PRINCIPAL,
                    STORAGE_ALL,
                    "/providers/Microsoft.Management/managementGroups/mg-prod"
                ),
                // Not warned: a narrow role at the subscription, Owner at a resource group,
                // Owner held by an identity no credential federates.
                assignment(3, PAYMENTS_PRINCIPAL, SECRETS_USER, SUB),
                assignment(
                    4,
                    PAYMENTS_PRINCIPAL,
                    OWNER,
                    &format!("{SUB}/resourceGroups/rg-app")
                ),
                assignment(5, IDLE_PRINCIPAL, OWNER, SUB),
            ])
            .to_string(),
        ),
    ]
}

#[test]
fn validate_warns_about_workload_identity_risks() {
    let out = validate(&healthy_files());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let warnings: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("warning: "))
        .collect();
    let with = |text: &str| warnings.iter().filter(|w| w.contains(text)).count();
    assert_eq!(
        with(
            "trusts subject `system:serviceaccount:payments:ghost`, which names no loaded ServiceAccount"
        ),
        1,
        "{stdout}"
    );
    assert_eq!(with("names no loaded ServiceAccount"), 1, "{stdout}");
    assert_eq!(
        with(
            "ServiceAccount `payments/orphan` names client id `00000000-1111-4222-8333-444444444444`"
        ),
        1,
        "{stdout}"
    );
    assert_eq!(with("which no loaded managed identity has"), 1, "{stdout}");
    assert_eq!(
        with(
            "managed identity `id-busy` has 22 federated identity credentials: Azure allows at most 20"
        ),
        1,
        "{stdout}"
    );
    assert_eq!(
        with(&format!(
            "workload identity `id-payments` (principal `{PAYMENTS_PRINCIPAL}`) holds `Owner` at `{}`: its Actions include `*`",
            SUB
        )),
        1,
        "{stdout}"
    );
    assert_eq!(
        with(
            "holds `Storage Everything` at `/providers/microsoft.management/managementgroups/mg-prod`: its DataActions include `Microsoft.Storage/*`"
        ),
        1,
        "{stdout}"
    );
    assert_eq!(with("workload identity `"), 2, "{stdout}");
    assert!(!stdout.contains("id-idle"), "{stdout}");
}

#[test]
fn bad_workload_objects_are_errors_at_their_place() {
    let mut files = healthy_files();
    files.push((
        "broken-identity.json",
        json!([identity("id-bad", "not-a-guid", PAYMENTS_PRINCIPAL)]).to_string(),
    ));
    let out = validate(&files);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("broken-identity.json: line ")
            && stderr(&out).contains("managed identity `clientId` `not-a-guid` is not a GUID"),
        "{}",
        stderr(&out)
    );

    // An ARM page that more pages follow.
    let mut files = healthy_files();
    files.push((
        "page.json",
        json!({"value": [identity("id-more", "8c6b3f5d-0e4a-4b92-8db3-4f5a6b7c8d9e", "9b1c0000-0000-4000-8000-00000000a009")],
               "nextLink": "https://management.azure.com/subscriptions/x/providers/Microsoft.ManagedIdentity/userAssignedIdentities?$skiptoken=y"})
        .to_string(),
    ));
    let out = validate(&files);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("page.json") && stderr(&out).contains("incomplete export"),
        "{}",
        stderr(&out)
    );

    // The same identity id with another principal id in a second file.
    let mut files = healthy_files();
    files.push((
        "again.json",
        json!([identity(
            "id-payments",
            "5e3f0c2a-7b1d-4e6f-9a80-1c2d3e4f5c1d",
            IDLE_PRINCIPAL
        )])
        .to_string(),
    ));
    let out = validate(&files);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("duplicate managed identity"),
        "{}",
        stderr(&out)
    );

    // An identical copy loads once, with a note; a claimsMatchingExpression credential is
    // not loaded, with a warning.
    let mut files = healthy_files();
    files.push(("copy.yaml", SERVICE_ACCOUNTS.to_string()));
    files.push((
        "flexible.json",
        json!([{"audiences": ["api://AzureADTokenExchange"],
                "id": format!("{}/federatedIdentityCredentials/flex", identity_id("id-payments")),
                "issuer": ISSUER, "name": "flex",
                "claimsMatchingExpression": {"value": "claims['sub'] startswith 'system:serviceaccount:payments:'", "languageVersion": 1},
                "type": "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials"}])
        .to_string(),
    ));
    let out = validate(&files);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("note: ") && stdout.contains("2 objects are identical copies"),
        "{stdout}"
    );
    assert!(
        stdout.contains("matches by `claimsMatchingExpression`"),
        "{stdout}"
    );
}

//! Every link of the chain, on policy read through the loader from the shapes `az` and
//! `kubectl` print.

use super::*;
use crate::policy::parse::valid_set;
use crate::policy::{IndexOptions, PolicySet};
use serde_json::{Value, json};

const ISSUER: &str = "https://westeurope.oic.prod-aks.azure.com/11111111-2222-4333-8444-555555555555/7c0e7d0a-1b2c-4d3e-8f40-5a6b7c8d9e01/";
const AUDIENCE: &str = "api://AzureADTokenExchange";
const TENANT: &str = "11111111-2222-4333-8444-555555555555";
const PAYMENTS_CLIENT: &str = "5e3f0c2a-7b1d-4e6f-9a80-1c2d3e4f5c1d";
const PAYMENTS_PRINCIPAL: &str = "9b1c0000-0000-4000-8000-00000000a001";
const REPORTS_CLIENT: &str = "6a4f1d3b-8c2e-4f70-8b91-2d3e4f5a6b7c";
const REPORTS_PRINCIPAL: &str = "9b1c0000-0000-4000-8000-00000000a002";

fn identity_id(name: &str) -> String {
    format!(
        "/subscriptions/00000000-0000-0000-0000-00000000aaaa/resourcegroups/rg-app/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}"
    )
}

/// An `az identity list` entry.
fn identity(name: &str, client: &str, principal: &str) -> Value {
    json!({"clientId": client, "id": identity_id(name), "location": "westeurope", "name": name,
           "principalId": principal, "resourceGroup": "rg-app", "tags": {}, "tenantId": TENANT,
           "type": "Microsoft.ManagedIdentity/userAssignedIdentities"})
}

/// An `az identity federated-credential list` entry.
fn credential(identity: &str, name: &str, issuer: &str, subject: &str, audience: &str) -> Value {
    json!({"audiences": [audience], "id": format!("{}/federatedIdentityCredentials/{name}", identity_id(identity)),
           "issuer": issuer, "name": name, "resourceGroup": "rg-app", "subject": subject,
           "type": "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials"})
}

fn service_account(namespace: &str, name: &str, annotations: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ServiceAccount",
           "metadata": {"name": name, "namespace": namespace, "annotations": annotations}})
}

fn annotated(client: &str) -> Value {
    json!({"azure.workload.identity/client-id": client})
}

fn snapshot(objects: Value) -> Snapshot {
    let set: PolicySet = valid_set(objects);
    Snapshot::build(set, &IndexOptions::default(), 1).unwrap()
}

fn question(name: &str, mode: WorkloadMode) -> WorkloadQuestion {
    WorkloadQuestion::from_user(
        &format!("system:serviceaccount:payments:{name}"),
        ISSUER,
        AUDIENCE,
        mode,
    )
    .unwrap()
}

/// The policy of the spec's example: `payments/api` -> `id-payments` -> credential.
fn example(credential_parts: (&str, &str, &str), annotations: Value) -> Value {
    let (issuer, subject, audience) = credential_parts;
    json!([
        identity("id-payments", PAYMENTS_CLIENT, PAYMENTS_PRINCIPAL),
        credential(
            "id-payments",
            "aks1-payments-api",
            issuer,
            subject,
            audience
        ),
        service_account("payments", "api", annotations),
    ])
}

fn broken(objects: Value, q: &WorkloadQuestion) -> BrokenLink {
    match resolve(&snapshot(objects), q) {
        Ok(chain) => panic!("resolved: {chain:?}"),
        Err(e) => e,
    }
}

#[test]
fn the_whole_chain_resolves_to_the_principal_id() {
    let subject = "system:serviceaccount:payments:api";
    let s = snapshot(example(
        (ISSUER, subject, AUDIENCE),
        annotated(PAYMENTS_CLIENT),
    ));
    let chain = resolve(&s, &question("api", WorkloadMode::Configured)).unwrap();
    assert_eq!(chain.links.len(), 1);
    let link = &chain.links[0];
    assert_eq!(&*link.identity.name, "id-payments");
    assert_eq!(&*link.credential.name, "aks1-payments-api");
    assert_eq!(
        link.principals(&s).as_slice(),
        [PAYMENTS_PRINCIPAL.parse::<uuid::Uuid>().unwrap()]
    );
    // The client id annotation matches in any case (a GUID).
    let s = snapshot(example(
        (ISSUER, subject, AUDIENCE),
        annotated(&PAYMENTS_CLIENT.to_uppercase()),
    ));
    assert!(resolve(&s, &question("api", WorkloadMode::Configured)).is_ok());
}

#[test]
fn a_missing_service_account_breaks_the_first_link_in_both_modes() {
    let objects = example(
        (ISSUER, "system:serviceaccount:payments:api", AUDIENCE),
        annotated(PAYMENTS_CLIENT),
    );
    for mode in [WorkloadMode::Configured, WorkloadMode::Possible] {
        let e = broken(objects.clone(), &question("batch", mode));
        assert_eq!(
            e,
            BrokenLink::ServiceAccountNotFound {
                namespace: "payments".into(),
                name: "batch".into()
            }
        );
        assert_eq!(
            e.to_string(),
            "service account `payments/batch` is not in the policy (neither the files nor, with the live source, the cluster)"
        );
    }
}

#[test]
fn configured_mode_needs_the_annotation_and_a_known_client_id() {
    let parts = (ISSUER, "system:serviceaccount:payments:api", AUDIENCE);
    let e = broken(
        example(parts, json!({})),
        &question("api", WorkloadMode::Configured),
    );
    assert!(
        matches!(e, BrokenLink::NoClientIdAnnotation { .. }),
        "{e:?}"
    );
    assert!(
        e.to_string().contains("azure.workload.identity/client-id"),
        "{e}"
    );

    let other = "00000000-1111-4222-8333-444444444444";
    let e = broken(
        example(parts, annotated(other)),
        &question("api", WorkloadMode::Configured),
    );
    assert_eq!(
        e,
        BrokenLink::UnknownClientId {
            client_id: other.into()
        }
    );
    assert!(
        e.to_string()
            .starts_with("no managed identity has client id"),
        "{e}"
    );

    // Possible mode ignores the annotation: the credential trusts the account.
    let s = snapshot(example(parts, json!({})));
    let chain = resolve(&s, &question("api", WorkloadMode::Possible)).unwrap();
    assert_eq!(&*chain.links[0].identity.name, "id-payments");
}

#[test]
fn a_tenant_annotation_must_name_the_identity_tenant() {
    let parts = (ISSUER, "system:serviceaccount:payments:api", AUDIENCE);
    let annotations = json!({"azure.workload.identity/client-id": PAYMENTS_CLIENT,
                             "azure.workload.identity/tenant-id": "99999999-0000-4000-8000-000000000000"});
    let e = broken(
        example(parts, annotations),
        &question("api", WorkloadMode::Configured),
    );
    assert!(matches!(e, BrokenLink::TenantMismatch { .. }), "{e:?}");
    assert!(e.to_string().contains(TENANT), "{e}");
    let annotations = json!({"azure.workload.identity/client-id": PAYMENTS_CLIENT,
                             "azure.workload.identity/tenant-id": TENANT.to_uppercase()});
    let s = snapshot(example(parts, annotations));
    assert!(resolve(&s, &question("api", WorkloadMode::Configured)).is_ok());
}

#[test]
fn each_credential_part_must_match_exactly_and_the_message_says_which() {
    let subject = "system:serviceaccount:payments:api";
    let cases = [
        // (credential issuer, subject, audience), broken part, near miss, text in the message
        (
            (ISSUER.trim_end_matches('/'), subject, AUDIENCE),
            CredentialPart::Issuer,
            Some(Near::TrailingSlash),
            "trailing `/`",
        ),
        (
            (ISSUER, "system:serviceaccount:Payments:api", AUDIENCE),
            CredentialPart::Subject,
            Some(Near::CaseOnly),
            "only in case",
        ),
        (
            (ISSUER, "system:serviceaccount:payment:api", AUDIENCE),
            CredentialPart::Subject,
            None,
            "`system:serviceaccount:payment:api`",
        ),
        (
            (ISSUER, subject, "api://AzureADTokenExchange/"),
            CredentialPart::Audience,
            Some(Near::TrailingSlash),
            "audiences `api://AzureADTokenExchange/`",
        ),
        (
            (&ISSUER.to_uppercase(), subject, AUDIENCE),
            CredentialPart::Issuer,
            Some(Near::CaseOnly),
            "only in case",
        ),
    ];
    for (parts, part, near, text) in cases {
        let e = broken(
            example(parts, annotated(PAYMENTS_CLIENT)),
            &question("api", WorkloadMode::Configured),
        );
        let BrokenLink::NoMatchingCredential {
            nearest: Some(nearest),
            identity,
            ..
        } = &e
        else {
            panic!("{e:?}");
        };
        assert_eq!(identity, "id-payments");
        assert_eq!((nearest.part, nearest.near), (part, near), "{e}");
        assert!(e.to_string().contains(text), "{e}");
        assert!(
            e.to_string()
                .starts_with("no federated credential of managed identity `id-payments` matches"),
            "{e}"
        );
        // Possible mode: no identity trusts the account; the near miss is named when the
        // credential is meant for this account.
        let e = broken(
            example(parts, annotated(PAYMENTS_CLIENT)),
            &question("api", WorkloadMode::Possible),
        );
        let BrokenLink::NoTrustingIdentity { nearest, .. } = &e else {
            panic!("{e:?}");
        };
        assert_eq!(
            nearest.is_some(),
            near.is_some() || part != CredentialPart::Subject,
            "{e}"
        );
    }
}

#[test]
fn an_identity_without_credentials_is_named() {
    let objects = json!([
        identity("id-payments", PAYMENTS_CLIENT, PAYMENTS_PRINCIPAL),
        service_account("payments", "api", annotated(PAYMENTS_CLIENT)),
    ]);
    let e = broken(objects, &question("api", WorkloadMode::Configured));
    assert_eq!(
        e.to_string(),
        "managed identity `id-payments` has no federated credential, so \
         `system:serviceaccount:payments:api` cannot use it"
    );
}

#[test]
fn another_account_with_the_same_annotation_gets_no_token() {
    let mut objects = example(
        (ISSUER, "system:serviceaccount:payments:api", AUDIENCE),
        annotated(PAYMENTS_CLIENT),
    );
    objects.as_array_mut().unwrap().push(service_account(
        "payments",
        "batch",
        annotated(PAYMENTS_CLIENT),
    ));
    let e = broken(objects, &question("batch", WorkloadMode::Configured));
    let BrokenLink::NoMatchingCredential {
        nearest: Some(n), ..
    } = e
    else {
        panic!("{e:?}")
    };
    assert_eq!(n.part, CredentialPart::Subject);
}

#[test]
fn possible_mode_takes_every_trusting_identity_and_their_groups() {
    let subject = "system:serviceaccount:payments:api";
    let group = "7d3e0000-0000-4000-8000-0000000000f1";
    let objects = json!([
        identity("id-payments", PAYMENTS_CLIENT, PAYMENTS_PRINCIPAL),
        identity("id-reports", REPORTS_CLIENT, REPORTS_PRINCIPAL),
        identity("id-idle", "7b5a2e4c-9d3f-4a81-9ca2-3e4f5a6b7c8d", "9b1c0000-0000-4000-8000-00000000a003"),
        credential("id-payments", "aks1-payments-api", ISSUER, subject, AUDIENCE),
        credential("id-reports", "aks1-payments-api", ISSUER, subject, AUDIENCE),
        credential("id-idle", "other", ISSUER, "system:serviceaccount:payments:other", AUDIENCE),
        service_account("payments", "api", annotated(PAYMENTS_CLIENT)),
        {"@odata.type": "#microsoft.graph.group", "id": group, "displayName": "readers",
         "members": [{"@odata.type": "#microsoft.graph.servicePrincipal", "id": REPORTS_PRINCIPAL}]},
    ]);
    let s = snapshot(objects);
    let chain = resolve(&s, &question("api", WorkloadMode::Possible)).unwrap();
    let names: Vec<&str> = chain.links.iter().map(|l| &*l.identity.name).collect();
    assert_eq!(names, ["id-payments", "id-reports"]);
    let mut reports: Vec<uuid::Uuid> = [REPORTS_PRINCIPAL, group]
        .iter()
        .map(|p| p.parse().unwrap())
        .collect();
    reports.sort();
    assert_eq!(chain.links[1].principals(&s).as_slice(), reports);
    assert_eq!(
        chain.links[0].principals(&s).as_slice(),
        [PAYMENTS_PRINCIPAL.parse::<uuid::Uuid>().unwrap()]
    );
    // Configured mode follows the annotation to one identity.
    let chain = resolve(&s, &question("api", WorkloadMode::Configured)).unwrap();
    assert_eq!(chain.links.len(), 1);
    assert_eq!(&*chain.links[0].identity.name, "id-payments");
}

#[test]
fn rest_shapes_with_properties_resolve_alike() {
    let subject = "system:serviceaccount:payments:api";
    let objects = json!({"value": [
        {"id": identity_id("id-payments"), "name": "id-payments", "location": "westeurope",
         "type": "Microsoft.ManagedIdentity/userAssignedIdentities",
         "properties": {"clientId": PAYMENTS_CLIENT, "principalId": PAYMENTS_PRINCIPAL, "tenantId": TENANT}},
        {"id": format!("{}/federatedIdentityCredentials/fic", identity_id("ID-PAYMENTS")), "name": "fic",
         "type": "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials",
         "properties": {"issuer": ISSUER, "subject": subject, "audiences": [AUDIENCE]}},
        {"kind": "List", "apiVersion": "v1", "items": [service_account("payments", "api", annotated(PAYMENTS_CLIENT))]}
    ]});
    let s = snapshot(objects);
    let chain = resolve(&s, &question("api", WorkloadMode::Configured)).unwrap();
    assert_eq!(
        &*chain.links[0].credential.name, "fic",
        "the identity id matches in any case"
    );
}

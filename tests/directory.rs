//! The directory snapshot: Entra users, groups and member files read from the policy
//! directories, and the groups the Azure decision takes from it.

mod support;

use scopegate::engine::{EngineOptions, GroupsFrom, authorize};
use scopegate::model::{AccessRequest, ResourceAttributes, Scope, Verdict};
use scopegate::policy::{IndexOptions, Snapshot};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use support::*;

const ALICE: &str = "a11ce000-0000-4000-8000-000000000001";
const BOB: &str = "b0b00000-0000-4000-8000-000000000002";
const PLATFORM: &str = "9a7f0000-0000-4000-8000-00000000000a";
const TEAM: &str = "7ea70000-0000-4000-8000-00000000000b";
const STRANGER: &str = "5e000000-0000-4000-8000-000000000009";

fn write(dir: &Path, name: &str, value: &Value) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, serde_json::to_vec_pretty(value).unwrap()).unwrap();
}

fn load(dirs: &[PathBuf]) -> Result<scopegate::Loaded, Vec<String>> {
    let options = IndexOptions {
        cluster_resource_id: Some(Scope::parse(CLUSTER).unwrap()),
        ..IndexOptions::default()
    };
    scopegate::load_snapshot(dirs, None, &options, 1)
        .map_err(|e| e.0.iter().map(ToString::to_string).collect())
}

fn load_dir(dir: &Path) -> Result<scopegate::Loaded, Vec<String>> {
    load(&[dir.to_path_buf()])
}

fn groups_of(snapshot: &Snapshot, id: &str) -> Vec<String> {
    let directory = snapshot.directory.as_ref().expect("a directory snapshot");
    directory
        .member_of(id)
        .unwrap_or_default()
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn warnings(loaded: &scopegate::Loaded) -> Vec<String> {
    loaded.warnings.iter().map(ToString::to_string).collect()
}

fn member(kind: &str, id: &str) -> Value {
    json!({"@odata.type": format!("#microsoft.graph.{kind}"), "id": id})
}

#[test]
fn users_as_an_array_and_groups_as_a_graph_page_load_with_ids_lower_cased() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "entra-users.json",
        &json!([{"id": ALICE.to_uppercase(), "userPrincipalName": "alice@contoso.com",
                 "accountEnabled": false}]),
    );
    write(
        dir.path(),
        "entra-groups.json",
        &json!({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#groups",
                "value": [{"id": TEAM.to_uppercase(), "displayName": "team",
                           "members": [member("user", &ALICE.to_uppercase())]}]}),
    );
    let loaded = load_dir(dir.path()).unwrap();
    let directory = loaded.snapshot.directory.clone().unwrap();
    assert_eq!(directory.account_enabled(ALICE), Some(false));
    assert_eq!(
        directory
            .user(ALICE)
            .unwrap()
            .user_principal_name
            .as_deref(),
        Some("alice@contoso.com")
    );
    assert_eq!(groups_of(&loaded.snapshot, ALICE), [TEAM]);
    // Stored lower-case, looked up in any case (ids as a request sends them).
    assert_eq!(&*directory.user(&ALICE.to_uppercase()).unwrap().id, ALICE);
    assert_eq!(
        directory.member_of(&ALICE.to_uppercase()),
        directory.member_of(ALICE)
    );
    let stats = loaded.snapshot.stats();
    assert_eq!(
        (
            stats.directory_users,
            stats.directory_groups,
            stats.directory_memberships
        ),
        (1, 1, 1)
    );
}

#[test]
fn a_page_with_a_next_link_is_an_incomplete_export_and_rejected() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "entra-users.json",
        &json!({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users",
                "value": [{"id": ALICE, "userPrincipalName": "alice@contoso.com"}],
                "@odata.nextLink": "https://graph.microsoft.com/v1.0/users?$skiptoken=X"}),
    );
    let errors = load_dir(dir.path()).unwrap_err();
    assert!(
        errors
            .iter()
            .any(|e| e.contains("incomplete export") && e.contains("@odata.nextLink")),
        "{errors:?}"
    );
    // The link before the list, and a page that is not streamed (in YAML), alike.
    write(
        dir.path(),
        "entra-users.json",
        &json!({"@odata.nextLink": "https://graph.microsoft.com/v1.0/users?$skiptoken=X",
                "value": [{"id": ALICE}]}),
    );
    assert!(load_dir(dir.path()).is_err());
    std::fs::remove_file(dir.path().join("entra-users.json")).unwrap();
    std::fs::write(
        dir.path().join("users.yaml"),
        "'@odata.nextLink': https://graph.microsoft.com/v1.0/users?$skiptoken=X\nvalue:\n- {'@odata.type': '#microsoft.graph.user', id: x}\n",
    )
    .unwrap();
    let errors = load_dir(dir.path()).unwrap_err();
    assert!(
        errors.iter().any(|e| e.contains("incomplete export")),
        "{errors:?}"
    );
}

#[test]
fn a_member_file_replaces_the_expanded_members_and_twenty_members_warn() {
    let dir = tempfile::tempdir().unwrap();
    let twenty: Vec<Value> = (0..20)
        .map(|i| member("user", &format!("00000000-0000-4000-8000-0000000000{i:02}")))
        .collect();
    write(
        dir.path(),
        "entra-groups.json",
        &json!([
            {"id": TEAM, "members": twenty},
            {"id": PLATFORM, "members": twenty},
        ]),
    );
    // PLATFORM's member file lists only Alice.
    write(
        dir.path(),
        &format!("entra-group-members/{}.json", PLATFORM.to_uppercase()),
        &json!([member("user", ALICE)]),
    );
    let loaded = load_dir(dir.path()).unwrap();
    let truncated: Vec<String> = warnings(&loaded)
        .into_iter()
        .filter(|w| w.contains("possibly truncated"))
        .collect();
    assert_eq!(truncated.len(), 1, "{truncated:?}");
    assert!(truncated[0].contains(TEAM), "{truncated:?}");
    assert!(
        truncated[0].contains(&format!(
            "az ad group member list --group {TEAM}` to entra-group-members/{TEAM}.json"
        )),
        "{truncated:?}"
    );
    assert_eq!(groups_of(&loaded.snapshot, ALICE), [PLATFORM]);
    assert_eq!(
        groups_of(&loaded.snapshot, "00000000-0000-4000-8000-000000000000"),
        [TEAM],
        "the member file replaced PLATFORM's expanded members"
    );
    // An empty member file states that the group has no members.
    write(
        dir.path(),
        &format!("entra-group-members/{TEAM}.json"),
        &json!([]),
    );
    let loaded = load_dir(dir.path()).unwrap();
    assert!(!warnings(&loaded).iter().any(|w| w.contains("truncated")));
    assert!(groups_of(&loaded.snapshot, "00000000-0000-4000-8000-000000000000").is_empty());
}

#[test]
fn duplicates_and_members_of_unknown_types_warn() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "entra-users.json",
        // `az ad user list` (no accountEnabled) beside a `$select=accountEnabled` export.
        &json!([{"id": ALICE, "userPrincipalName": "alice@contoso.com"},
                {"id": ALICE.to_uppercase(), "accountEnabled": false}]),
    );
    write(
        dir.path(),
        "entra-groups.json",
        &json!([{"id": TEAM, "members": [member("device", BOB), member("user", ALICE)]},
                {"id": TEAM}]),
    );
    let loaded = load_dir(dir.path()).unwrap();
    let directory = loaded.snapshot.directory.as_ref().unwrap();
    assert_eq!(directory.user_count(), 1);
    assert_eq!(
        directory.account_enabled(ALICE),
        Some(false),
        "a disabled copy is not hidden by the first one"
    );
    let found = warnings(&loaded);
    assert!(
        found
            .iter()
            .any(|w| w.contains(&format!("user `{ALICE}` is listed more than once"))),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .any(|w| w.contains(&format!("group `{TEAM}` is listed more than once"))),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .any(|w| w.contains("1 member(s) of a type that is not a user")),
        "{found:?}"
    );
    assert!(
        groups_of(&loaded.snapshot, BOB).is_empty(),
        "a device never expands"
    );
    assert_eq!(groups_of(&loaded.snapshot, ALICE), [TEAM]);
}

#[test]
fn directory_files_and_other_policy_objects_are_not_taken_for_one_another() {
    let dir = tempfile::tempdir().unwrap();
    // The fixture's role assignment and the built-in roles beside a users file.
    copy_dir(&root().join("tests/fixtures/directory"), dir.path());
    std::fs::copy(
        root().join("policies/azure/aks-builtin-roles.json"),
        dir.path().join("aks-builtin-roles.json"),
    )
    .unwrap();
    let loaded = load_dir(dir.path()).unwrap();
    let stats = loaded.snapshot.stats();
    assert_eq!(stats.role_assignments, 1);
    assert!(stats.role_definitions > 0);
    assert_eq!((stats.directory_users, stats.directory_groups), (2, 2));
    // A role assignment in the users file is an error, not a user.
    let assignments: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("role-assignments.json")).unwrap())
            .unwrap();
    write(dir.path(), "entra-users.json", &assignments);
    let errors = load_dir(dir.path()).unwrap_err();
    assert!(
        errors
            .iter()
            .any(|e| e.contains("a role assignment in entra-users.json")),
        "{errors:?}"
    );
    // A Graph user in a file of another name is a user.
    std::fs::remove_file(dir.path().join("entra-users.json")).unwrap();
    write(
        dir.path(),
        "users-export.json",
        &json!({"@odata.context": "x", "value": [
            {"@odata.type": "#microsoft.graph.user", "id": STRANGER}]}),
    );
    let loaded = load_dir(dir.path()).unwrap();
    assert!(
        loaded
            .snapshot
            .directory
            .as_ref()
            .unwrap()
            .user(STRANGER)
            .is_some()
    );
    assert_eq!(loaded.snapshot.stats().role_assignments, 1);
}

/// The fixture: a role assignment of Azure Kubernetes Service RBAC Reader in `payments` to
/// group PLATFORM, which nests group TEAM, whose member file lists Alice.
fn fixture_snapshot() -> Arc<Snapshot> {
    let loaded = load(&[
        root().join("policies/azure/aks-builtin-roles.json"),
        root().join("tests/fixtures/directory"),
    ])
    .unwrap();
    Arc::new(loaded.snapshot)
}

fn list_pods(oid: &str, groups: &[&str]) -> AccessRequest {
    AccessRequest {
        user: "someone@contoso.com".into(),
        groups: groups.iter().collect(),
        extra: [("oid".to_string(), vec![oid.to_string()])].into(),
        resource_attributes: Some(Box::new(ResourceAttributes {
            namespace: "payments".into(),
            verb: "list".into(),
            resource: "pods".into(),
            version: "v1".into(),
            ..ResourceAttributes::default()
        })),
        ..AccessRequest::default()
    }
}

fn options(groups_from: GroupsFrom) -> EngineOptions {
    EngineOptions {
        groups_from,
        ..EngineOptions::default()
    }
}

#[test]
fn a_parent_groups_assignment_grants_members_of_a_nested_group() {
    let snapshot = fixture_snapshot();
    let token = options(GroupsFrom::Token);
    let directory = options(GroupsFrom::Directory);
    // The token lists TEAM only; PLATFORM holds the assignment and nests TEAM.
    let decision = authorize(&snapshot, &token, &list_pods(ALICE, &[TEAM]));
    assert_eq!(decision.verdict, Verdict::Allow, "{}", decision.reason);
    assert_ne!(
        authorize(&snapshot, &token, &list_pods(ALICE, &[])).verdict,
        Verdict::Allow,
        "token mode takes the groups from the request"
    );
    // Directory mode: Alice is in TEAM (member file) and so in PLATFORM, whatever the token says.
    assert_eq!(
        authorize(&snapshot, &directory, &list_pods(ALICE, &[])).verdict,
        Verdict::Allow
    );
    assert_eq!(
        authorize(
            &snapshot,
            &directory,
            &list_pods(&ALICE.to_uppercase(), &[])
        )
        .verdict,
        Verdict::Allow
    );
    // A user the directory does not know has no groups, even when the request lists one.
    assert_ne!(
        authorize(&snapshot, &directory, &list_pods(STRANGER, &[PLATFORM])).verdict,
        Verdict::Allow
    );
    let (_, text) = scopegate::engine::explain::explain(
        &snapshot,
        &directory,
        &list_pods(STRANGER, &[PLATFORM]),
    );
    assert!(
        text.contains(&format!(
            "`{STRANGER}` is unknown to the directory snapshot"
        )),
        "{text}"
    );
}

#[test]
fn cli_check_and_validate_read_the_directory() {
    let policies = format!(
        "{},{}",
        root()
            .join("policies/azure/aks-builtin-roles.json")
            .display(),
        root().join("tests/fixtures/directory").display()
    );
    let base = [
        "--policies",
        &policies,
        "--cluster-resource-id",
        CLUSTER,
        "--verb",
        "list",
        "--resource",
        "pods",
        "-n",
        "payments",
    ];
    let extra = format!("oid={ALICE}");
    let check = |more: &[&str]| {
        let mut args = vec!["check"];
        args.extend(base);
        args.extend(["--extra", &extra]);
        args.extend(more);
        scopegate(&args).status.code()
    };
    assert_eq!(check(&["--as-group", TEAM]), Some(0), "nested group grants");
    assert_eq!(check(&[]), Some(2), "no group in the request");
    assert_eq!(check(&["--groups-from", "directory"]), Some(0));
    let out = scopegate(&["validate", "--policies", &policies]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", stderr(&out));
    // Alice: TEAM and PLATFORM; Bob: PLATFORM; TEAM: PLATFORM.
    assert!(
        text.contains("directory: 2 users, 2 groups, 4 memberships"),
        "{text}"
    );
}

/// CheckAccess takes the same transitive groups: Alice, a member of TEAM nested in PLATFORM,
/// may read pods where PLATFORM holds Reader, with no group in the question; a stranger may not.
#[test]
fn check_access_counts_the_directorys_nested_groups() {
    let snapshot = fixture_snapshot();
    let ask = |oid: &str, groups: &[&str]| {
        let body = json!({
            "Subject": {"Attributes": {"ObjectId": oid, "Groups": groups}},
            "Actions": [{"Id": "Microsoft.ContainerService/managedClusters/pods/read", "IsDataAction": true}],
            "Resource": {"Id": format!("{CLUSTER}/namespaces/payments")},
        });
        let question = scopegate::sar::check_access::decode(body.to_string().as_bytes()).unwrap();
        let now = scopegate::model::Timestamp::from_system(std::time::SystemTime::now());
        let answer = scopegate::engine::check_access::decide(&snapshot, &question, now);
        let encoded = scopegate::sar::check_access::encode(
            question.actions.iter().zip(&answer.decisions),
            answer.time_to_live_ms(now),
        );
        let answer: Value = serde_json::from_slice(&encoded).unwrap();
        answer[0]["accessDecision"].as_str().unwrap().to_string()
    };
    assert_eq!(ask(ALICE, &[]), "Allowed");
    // Ids in any case: the directory lists TEAM in upper case.
    assert_eq!(ask(&ALICE.to_uppercase(), &[]), "Allowed");
    assert_eq!(ask(STRANGER, &[]), "NotAllowed");
    // A group given by the caller is expanded to its parents too.
    assert_eq!(ask(STRANGER, &[TEAM]), "Allowed");
}

use super::*;
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use serde_json::json;

fn binding(name: &str, user: &str) -> RoleBinding {
    serde_json::from_value(json!({"metadata": {"name": name, "namespace": "dev"}, "roleRef": {"kind": "ClusterRole", "name": "view"}, "subjects": [{"kind": "User", "name": user}]})).unwrap()
}

/// Lists every kind but `except` empty.
fn list_all(source: &ClusterSource, except: Option<Kind>) {
    for kind in Kind::ALL.into_iter().filter(|k| Some(*k) != except) {
        match kind {
            Kind::Role => {
                source.apply(Event::<Role>::Init).unwrap();
                source.apply(Event::<Role>::InitDone).unwrap();
            }
            Kind::ClusterRole => {
                source.apply(Event::<ClusterRole>::Init).unwrap();
                source.apply(Event::<ClusterRole>::InitDone).unwrap();
            }
            Kind::RoleBinding => {
                source.apply(Event::<RoleBinding>::Init).unwrap();
                source.apply(Event::<RoleBinding>::InitDone).unwrap();
            }
            Kind::ClusterRoleBinding => {
                source.apply(Event::<ClusterRoleBinding>::Init).unwrap();
                source.apply(Event::<ClusterRoleBinding>::InitDone).unwrap();
            }
            Kind::ServiceAccount => {
                source.apply(Event::<ServiceAccount>::Init).unwrap();
                source.apply(Event::<ServiceAccount>::InitDone).unwrap();
            }
        }
    }
}

fn bindings(source: &ClusterSource) -> Vec<(String, String, String)> {
    let (set, _) = source.policy_set().unwrap();
    set.role_bindings
        .iter()
        .map(|(origin, b)| {
            (
                format!("{}:{}", origin.file, origin.position),
                b.metadata.name.clone(),
                b.subjects.iter().map(|s| s.name.as_str()).collect(),
            )
        })
        .collect()
}

#[test]
fn relist_is_buffered_and_swapped_whole() {
    let source = ClusterSource::new();
    list_all(&source, Some(Kind::RoleBinding));
    assert!(!source.is_ready());
    source.apply(Event::<RoleBinding>::Init).unwrap();
    source
        .apply(Event::InitApply(binding("a", "alice")))
        .unwrap();
    assert!(bindings(&source).is_empty(), "nothing held before InitDone");
    source.apply(Event::<RoleBinding>::InitDone).unwrap();
    assert!(source.is_ready());
    assert_eq!(
        bindings(&source),
        [(
            "cluster:RoleBinding/dev/a".into(),
            "a".into(),
            "alice".into()
        )]
    );
    // A later relist replaces the whole kind: `a` is gone, `b` is there.
    source.apply(Event::<RoleBinding>::Init).unwrap();
    source.apply(Event::InitApply(binding("b", "bob"))).unwrap();
    assert_eq!(bindings(&source).len(), 1, "the old listing until InitDone");
    assert_eq!(bindings(&source)[0].1, "a");
    source.apply(Event::<RoleBinding>::InitDone).unwrap();
    assert_eq!(
        bindings(&source),
        [("cluster:RoleBinding/dev/b".into(), "b".into(), "bob".into())]
    );
}

#[test]
fn watch_events_apply_and_delete() {
    let source = ClusterSource::new();
    list_all(&source, None);
    source.apply(Event::Apply(binding("b", "bob"))).unwrap();
    source.apply(Event::Apply(binding("a", "alice"))).unwrap();
    source.apply(Event::Apply(binding("a", "carol"))).unwrap();
    assert_eq!(
        bindings(&source),
        [
            (
                "cluster:RoleBinding/dev/a".into(),
                "a".into(),
                "carol".into()
            ),
            ("cluster:RoleBinding/dev/b".into(), "b".into(), "bob".into()),
        ],
        "a modify replaces; objects come by namespace and name"
    );
    source.apply(Event::Delete(binding("a", "carol"))).unwrap();
    source.apply(Event::Delete(binding("a", "carol"))).unwrap();
    assert_eq!(bindings(&source).len(), 1);
    assert_eq!(
        source.counts(),
        [
            (Kind::Role, 0),
            (Kind::ClusterRole, 0),
            (Kind::RoleBinding, 1),
            (Kind::ClusterRoleBinding, 0),
            (Kind::ServiceAccount, 0)
        ]
    );
}

#[test]
fn cluster_scoped_objects_keep_an_empty_namespace_in_their_origin() {
    let source = ClusterSource::new();
    list_all(&source, None);
    let role: ClusterRole = serde_json::from_value(json!({"metadata": {"name": "reader"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]}))
    .unwrap();
    source.apply(Event::Apply(role)).unwrap();
    let (set, _) = source.policy_set().unwrap();
    let [(origin, role)] = set.cluster_roles.as_slice() else {
        panic!("{:?}", set.cluster_roles)
    };
    assert_eq!(&*origin.file, "cluster");
    assert_eq!(origin.position, "ClusterRole//reader");
    assert_eq!(role.rules[0].verbs, ["get"]);
}

#[test]
fn source_becomes_ready_only_when_every_kind_listed() {
    let source = ClusterSource::new();
    let mut rx = source.subscribe();
    list_all(&source, Some(Kind::ClusterRoleBinding));
    assert!(!source.is_ready());
    assert!(!rx.has_changed().unwrap());
    source.apply(Event::<ClusterRoleBinding>::Init).unwrap();
    source.apply(Event::<ClusterRoleBinding>::InitDone).unwrap();
    assert!(source.is_ready());
    assert!(rx.has_changed().unwrap());
    rx.borrow_and_update();
    source.apply(Event::InitApply(binding("x", "y"))).unwrap();
    assert!(
        !rx.has_changed().unwrap(),
        "a relist in progress publishes nothing"
    );
    source.apply(Event::Apply(binding("x", "y"))).unwrap();
    assert!(
        rx.has_changed().unwrap(),
        "a change after listing wakes the reloader"
    );
    let (set, version) = source.policy_set().unwrap();
    assert_eq!(set.role_bindings.len(), 1);
    assert_eq!(version, 2);
}

#[test]
fn a_poisoned_lock_fails_the_source_instead_of_emptying_it() {
    let source = ClusterSource::new();
    list_all(&source, None);
    source.apply(Event::Apply(binding("a", "alice"))).unwrap();
    let mut rx = source.subscribe();
    rx.borrow_and_update();
    // A panic while the writers' lock is held.
    let poisoner = source.clone();
    let _ = std::thread::spawn(move || {
        let _feed = poisoner.feed.lock();
        panic!("while applying an event");
    })
    .join();
    assert!(matches!(source.policy_set(), Err(SourceError::Poisoned)));
    assert!(
        rx.has_changed().unwrap(),
        "the reloader is woken to report it"
    );
    assert!(matches!(
        source.apply(Event::Delete(binding("a", "alice"))),
        Err(SourceError::Poisoned)
    ));
    assert!(matches!(source.policy_set(), Err(SourceError::Poisoned)));
    // What the stores hold is untouched; the source just cannot vouch for it.
    assert_eq!(source.counts()[2], (Kind::RoleBinding, 1));
}

#[test]
fn a_failed_source_stays_failed_and_says_why() {
    let source = ClusterSource::new();
    list_all(&source, None);
    source.fail("RoleBinding: its watch ended");
    source.fail("a later failure");
    let err = source.policy_set().unwrap_err();
    assert_eq!(
        err.to_string(),
        "the cluster RBAC source failed: RoleBinding: its watch ended"
    );
}

#[test]
fn events_cannot_be_fed_once_watchers_own_the_writers() {
    let source = ClusterSource::new();
    *source.feed.lock().unwrap() = None;
    assert!(matches!(
        source.apply(Event::<Role>::Init),
        Err(SourceError::Watched)
    ));
    assert!(source.policy_set().is_ok(), "not a fault of the source");
}

fn service_account(name: &str, client_id: Option<&str>) -> ServiceAccount {
    let annotations = match client_id {
        Some(id) => {
            json!({"azure.workload.identity/client-id": id, "kubectl.kubernetes.io/last-applied-configuration": "{}"})
        }
        None => json!({}),
    };
    serde_json::from_value(json!({"metadata": {"name": name, "namespace": "payments",
        "annotations": annotations, "resourceVersion": "7"}}))
    .unwrap()
}

/// ServiceAccounts from the API reach the policy set through the same parser as files, with
/// their workload identity annotations; the source is ready only once they have listed.
#[test]
fn service_accounts_reach_the_policy_set_with_their_annotations() {
    let source = ClusterSource::new();
    list_all(&source, Some(Kind::ServiceAccount));
    assert!(!source.is_ready(), "ServiceAccounts not listed yet");
    source.apply(Event::<ServiceAccount>::Init).unwrap();
    source
        .apply(Event::InitApply(service_account(
            "api",
            Some("5e3f0c2a-7b1d-4e6f-9a80-1c2d3e4f5c1d"),
        )))
        .unwrap();
    source
        .apply(Event::InitApply(service_account("batch", None)))
        .unwrap();
    source.apply(Event::<ServiceAccount>::InitDone).unwrap();
    assert!(source.is_ready());
    let (set, _) = source.policy_set().unwrap();
    let accounts: Vec<_> = set
        .service_accounts
        .iter()
        .map(|(origin, a)| {
            (
                origin.position.clone(),
                a.name.to_string(),
                a.client_id.as_deref().map(str::to_string),
            )
        })
        .collect();
    assert_eq!(
        accounts,
        [
            (
                "ServiceAccount/payments/api".to_string(),
                "api".to_string(),
                Some("5e3f0c2a-7b1d-4e6f-9a80-1c2d3e4f5c1d".to_string())
            ),
            ("ServiceAccount/payments/batch".into(), "batch".into(), None),
        ]
    );
    source
        .apply(Event::Delete(service_account("batch", None)))
        .unwrap();
    assert_eq!(source.policy_set().unwrap().0.service_accounts.len(), 1);
}

/// The cluster's ServiceAccount replaces a file's copy of it.
#[test]
fn a_cluster_service_account_replaces_the_file_copy() {
    let source = ClusterSource::new();
    list_all(&source, None);
    source
        .apply(Event::Apply(service_account(
            "api",
            Some("5e3f0c2a-7b1d-4e6f-9a80-1c2d3e4f5c1d"),
        )))
        .unwrap();
    let (cluster, _) = source.policy_set().unwrap();
    let mut files = crate::policy::parse::valid_set(json!([
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "api", "namespace": "payments"}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "other", "namespace": "payments"}}
    ]));
    let replaced = files.overlay(cluster);
    assert_eq!(replaced.len(), 1);
    assert_eq!(replaced[0].1, "ServiceAccount `payments/api`");
    let api: Vec<_> = files
        .service_accounts
        .iter()
        .filter(|(_, a)| &*a.name == "api")
        .collect();
    assert_eq!(api.len(), 1);
    assert!(api[0].1.client_id.is_some(), "the cluster's copy is kept");
}

/// Without workload identity the ServiceAccounts are not watched: their store lists empty at
/// start, so the source is ready once the four RBAC kinds have listed.
#[test]
fn unwatched_service_accounts_do_not_hold_back_readiness() {
    let source = ClusterSource::new();
    source.start(None, false);
    list_all(&source, Some(Kind::ServiceAccount));
    assert!(source.is_ready());
    let watched = ClusterSource::new();
    watched.start(None, true);
    list_all(&watched, Some(Kind::ServiceAccount));
    assert!(!watched.is_ready(), "a watched kind must list first");
}

/// Readiness waits for ServiceAccounts only when they are watched (workload identity): a
/// cluster whose ClusterRole has no `serviceaccounts` is ready from the RBAC kinds alone.
#[test]
fn service_accounts_hold_readiness_back_only_when_watched() {
    let unwatched = ClusterSource::with_client(None);
    unwatched.start(None, false);
    list_all(&unwatched, Some(Kind::ServiceAccount));
    assert!(unwatched.is_ready());

    let watched = ClusterSource::with_client(None);
    watched.start(None, true);
    list_all(&watched, Some(Kind::ServiceAccount));
    assert!(!watched.is_ready());
    watched.apply(Event::<ServiceAccount>::Init).unwrap();
    watched.apply(Event::<ServiceAccount>::InitDone).unwrap();
    assert!(watched.is_ready());
}

//! The live Kubernetes RBAC source: watchers (kube-rs) on Roles, ClusterRoles, RoleBindings
//! and ClusterRoleBindings. Each kind's state is replaced whole at the end of a (re)list —
//! never a half-built set — and kept current from watch events. The server publishes a
//! snapshot with them as soon as every kind has synced once, and is ready only once a serving
//! snapshot holds that first full listing ([`ClusterSource::is_served`]); a lost connection
//! keeps the last state while the watcher retries with backoff. The cluster's objects replace
//! file copies of the same objects ([`crate::policy::PolicySet::overlay`]).
//!
//! Objects go through the same parser as policy files (serialised back to JSON), so a
//! RoleBinding from the API and one from a file are the same thing to the engine.

use crate::metrics::Metrics;
use crate::policy::parse::add_value;
use crate::policy::{Origin, PolicySet};
use futures::StreamExt;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use tokio::sync::watch;

/// The four RBAC kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Role,
    ClusterRole,
    RoleBinding,
    ClusterRoleBinding,
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::Role,
        Kind::ClusterRole,
        Kind::RoleBinding,
        Kind::ClusterRoleBinding,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Role => "Role",
            Kind::ClusterRole => "ClusterRole",
            Kind::RoleBinding => "RoleBinding",
            Kind::ClusterRoleBinding => "ClusterRoleBinding",
        }
    }
}

/// One kind's objects: the live map and the buffer of a relist in progress.
#[derive(Debug, Default)]
struct KindState {
    objects: BTreeMap<String, Value>,
    relist: Option<BTreeMap<String, Value>>,
    synced: bool,
}

/// Objects held from the cluster, by kind.
#[derive(Debug, Default)]
pub struct ClusterState {
    kinds: BTreeMap<Kind, KindState>,
}

fn object_key(object: &Value) -> String {
    let meta = &object["metadata"];
    format!(
        "{}/{}",
        meta["namespace"].as_str().unwrap_or(""),
        meta["name"].as_str().unwrap_or("")
    )
}

impl ClusterState {
    /// Applies one watcher event (the path every event takes, tested directly).
    /// Returns whether the published objects changed.
    pub fn apply(&mut self, kind: Kind, event: Event<Value>) -> bool {
        let state = self.kinds.entry(kind).or_default();
        match event {
            Event::Apply(mut object) => {
                set_kind(&mut object, kind);
                state.objects.insert(object_key(&object), object);
                state.synced
            }
            Event::Delete(object) => {
                state.objects.remove(&object_key(&object)).is_some() && state.synced
            }
            Event::Init => {
                state.relist = Some(BTreeMap::new());
                false
            }
            Event::InitApply(mut object) => {
                set_kind(&mut object, kind);
                state
                    .relist
                    .get_or_insert_with(BTreeMap::new)
                    .insert(object_key(&object), object);
                false
            }
            Event::InitDone => {
                state.objects = state.relist.take().unwrap_or_default();
                state.synced = true;
                true
            }
        }
    }

    /// Whether every kind has completed its first list.
    pub fn synced(&self) -> bool {
        Kind::ALL
            .iter()
            .all(|k| self.kinds.get(k).is_some_and(|s| s.synced))
    }

    /// Number of objects of a kind.
    pub fn count(&self, kind: Kind) -> usize {
        self.kinds.get(&kind).map_or(0, |s| s.objects.len())
    }

    /// The objects as a policy set, through the policy file parser.
    pub fn policy_set(&self) -> PolicySet {
        let mut set = PolicySet::default();
        let mut diagnostics = Vec::new();
        for (kind, state) in &self.kinds {
            for (key, object) in &state.objects {
                let origin = Origin::new("cluster", &format!("{}/{key}", kind.as_str()));
                add_value(&origin, object.clone(), &mut set, &mut diagnostics);
            }
        }
        for d in diagnostics {
            tracing::warn!("cluster object skipped: {d}");
        }
        set
    }
}

/// API objects arrive without `apiVersion`/`kind` from typed lists; the parser wants them.
fn set_kind(object: &mut Value, kind: Kind) {
    if let Value::Object(map) = object {
        map.insert(
            "apiVersion".into(),
            Value::String("rbac.authorization.k8s.io/v1".into()),
        );
        map.insert("kind".into(), Value::String(kind.as_str().into()));
    }
}

/// A live source: the objects, whether every kind has synced, and a version that wakes the
/// reloader on every published change. Version 0 is "not every kind listed yet"; from 1 on,
/// the objects hold a full listing of every kind.
pub struct ClusterSource {
    state: Mutex<ClusterState>,
    ready: AtomicBool,
    version: watch::Sender<u64>,
    /// The version of the objects in the snapshot serving (0: none of them yet).
    served: AtomicU64,
    /// The API client, taken when the watchers start.
    client: Mutex<Option<kube::Client>>,
}

impl ClusterSource {
    /// A source without a client: nothing is watched, events are fed with [`Self::apply`].
    pub fn new() -> Arc<Self> {
        Arc::new(ClusterSource {
            state: Mutex::new(ClusterState::default()),
            ready: AtomicBool::new(false),
            version: watch::channel(0).0,
            served: AtomicU64::new(0),
            client: Mutex::new(None),
        })
    }

    /// Connects when `--watch-cluster-rbac` is set (the kubeconfig file, else in-cluster or
    /// the default kubeconfig). Watchers start with [`Self::start`].
    pub async fn connect(resolved: &crate::config::Resolved) -> anyhow::Result<Option<Arc<Self>>> {
        if !resolved.watch_cluster_rbac {
            return Ok(None);
        }
        let config = match &resolved.kubeconfig {
            Some(path) => {
                let kubeconfig = kube::config::Kubeconfig::read_from(path)?;
                kube::Config::from_custom_kubeconfig(
                    kubeconfig,
                    &kube::config::KubeConfigOptions::default(),
                )
                .await?
            }
            None => kube::Config::infer().await?,
        };
        let client = kube::Client::try_from(config)?;
        let source = ClusterSource::new();
        if let Ok(mut slot) = source.client.lock() {
            *slot = Some(client);
        }
        Ok(Some(source))
    }

    /// Spawns one watcher per kind (once; a source without client watches nothing).
    pub fn start(self: &Arc<Self>, metrics: Option<Metrics>) {
        use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
        let Some(client) = self.client.lock().ok().and_then(|mut c| c.take()) else {
            return;
        };
        tokio::spawn(run_watcher(
            self.clone(),
            Kind::Role,
            kube::Api::<Role>::all(client.clone()),
            metrics.clone(),
        ));
        tokio::spawn(run_watcher(
            self.clone(),
            Kind::ClusterRole,
            kube::Api::<ClusterRole>::all(client.clone()),
            metrics.clone(),
        ));
        tokio::spawn(run_watcher(
            self.clone(),
            Kind::RoleBinding,
            kube::Api::<RoleBinding>::all(client.clone()),
            metrics.clone(),
        ));
        tokio::spawn(run_watcher(
            self.clone(),
            Kind::ClusterRoleBinding,
            kube::Api::<ClusterRoleBinding>::all(client),
            metrics,
        ));
    }

    /// Feeds one event; bumps the version (waking the reloader) when published objects change.
    pub fn apply(&self, kind: Kind, event: Event<Value>) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        let changed = state.apply(kind, event);
        let synced = state.synced();
        drop(state);
        if synced && !self.ready.swap(true, Ordering::AcqRel) {
            self.version.send_modify(|v| *v += 1);
        } else if changed && synced {
            self.version.send_modify(|v| *v += 1);
        }
    }

    /// Whether every kind has synced once (the listing may not be serving yet: see
    /// [`Self::is_served`]).
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Whether the snapshot serving holds the cluster's first full listing: what readiness
    /// and answers wait for, so no binding that exists answers "no opinion" for lack of it.
    pub fn is_served(&self) -> bool {
        self.served.load(Ordering::Acquire) > 0
    }

    /// Records that a snapshot with the objects of `version` (from [`Self::policy_set`]) is
    /// now serving. Call after publishing it.
    pub fn mark_served(&self, version: u64) {
        self.served.fetch_max(version, Ordering::AcqRel);
    }

    /// The current objects and the version they belong to. The version is read first: the
    /// objects are then at least as new, so a version from 1 on always comes with a full
    /// listing of every kind.
    pub fn policy_set(&self) -> (PolicySet, u64) {
        let version = *self.version.borrow();
        let set = self
            .state
            .lock()
            .map(|s| s.policy_set())
            .unwrap_or_default();
        (set, version)
    }

    /// Object counts by kind.
    pub fn counts(&self) -> Vec<(Kind, usize)> {
        let state = self.state.lock();
        Kind::ALL
            .iter()
            .map(|k| (*k, state.as_ref().map_or(0, |s| s.count(*k))))
            .collect()
    }

    /// Wakes on every published change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }
}

async fn run_watcher<K>(
    source: Arc<ClusterSource>,
    kind: Kind,
    api: kube::Api<K>,
    metrics: Option<Metrics>,
) where
    K: kube::Resource
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + serde::Serialize
        + Send
        + 'static,
{
    let mut stream = watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    while let Some(item) = stream.next().await {
        match item {
            Ok(event) => {
                let label = match &event {
                    Event::Apply(_) => "apply",
                    Event::Delete(_) => "delete",
                    Event::Init => "init",
                    Event::InitApply(_) => "init_apply",
                    Event::InitDone => "init_done",
                };
                if let Some(m) = &metrics {
                    m.cluster_events
                        .with_label_values(&[kind.as_str(), label])
                        .inc();
                }
                let event = match event {
                    Event::Apply(o) => serde_json::to_value(o).map(Event::Apply),
                    Event::Delete(o) => serde_json::to_value(o).map(Event::Delete),
                    Event::InitApply(o) => serde_json::to_value(o).map(Event::InitApply),
                    Event::Init => Ok(Event::Init),
                    Event::InitDone => Ok(Event::InitDone),
                };
                match event {
                    Ok(e) => source.apply(kind, e),
                    Err(e) => {
                        tracing::warn!(kind = kind.as_str(), error = %e, "cannot convert watched object")
                    }
                }
                if let Some(m) = &metrics {
                    for (k, n) in source.counts() {
                        m.cluster_objects
                            .with_label_values(&[k.as_str()])
                            .set(n as i64);
                    }
                }
            }
            Err(e) => {
                if let Some(m) = &metrics {
                    m.cluster_events
                        .with_label_values(&[kind.as_str(), "error"])
                        .inc();
                }
                tracing::warn!(kind = kind.as_str(), error = %e, "cluster RBAC watch failed; keeping the last state and retrying");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn binding(name: &str, user: &str) -> Value {
        json!({"metadata": {"name": name, "namespace": "dev"}, "roleRef": {"kind": "ClusterRole", "name": "view"}, "subjects": [{"kind": "User", "name": user}]})
    }

    fn sync_all(state: &mut ClusterState, except: Option<Kind>) {
        for kind in Kind::ALL {
            if Some(kind) != except {
                state.apply(kind, Event::Init);
                state.apply(kind, Event::InitDone);
            }
        }
    }

    #[test]
    fn relist_is_buffered_and_swapped_whole() {
        let mut s = ClusterState::default();
        sync_all(&mut s, Some(Kind::RoleBinding));
        assert!(!s.synced());
        s.apply(Kind::RoleBinding, Event::Init);
        assert!(!s.apply(Kind::RoleBinding, Event::InitApply(binding("a", "alice"))));
        assert_eq!(
            s.count(Kind::RoleBinding),
            0,
            "nothing published before InitDone"
        );
        assert!(s.apply(Kind::RoleBinding, Event::InitDone));
        assert!(s.synced());
        assert_eq!(s.policy_set().role_bindings.len(), 1);
        // A later relist replaces the whole kind: `a` is gone, `b` is there.
        s.apply(Kind::RoleBinding, Event::Init);
        s.apply(Kind::RoleBinding, Event::InitApply(binding("b", "bob")));
        assert_eq!(s.count(Kind::RoleBinding), 1);
        s.apply(Kind::RoleBinding, Event::InitDone);
        let set = s.policy_set();
        assert_eq!(set.role_bindings.len(), 1);
        assert_eq!(set.role_bindings[0].1.metadata.name, "b");
    }

    #[test]
    fn watch_events_apply_and_delete() {
        let mut s = ClusterState::default();
        sync_all(&mut s, None);
        assert!(s.apply(Kind::RoleBinding, Event::Apply(binding("a", "alice"))));
        assert!(
            s.apply(Kind::RoleBinding, Event::Apply(binding("a", "carol"))),
            "modify replaces"
        );
        assert_eq!(s.policy_set().role_bindings[0].1.subjects[0].name, "carol");
        assert!(s.apply(Kind::RoleBinding, Event::Delete(binding("a", "carol"))));
        assert!(
            !s.apply(Kind::RoleBinding, Event::Delete(binding("a", "carol"))),
            "deleting twice changes nothing"
        );
        assert_eq!(s.count(Kind::RoleBinding), 0);
    }

    #[test]
    fn source_becomes_ready_only_when_every_kind_synced() {
        let source = ClusterSource::new();
        let mut rx = source.subscribe();
        for kind in [Kind::Role, Kind::ClusterRole, Kind::RoleBinding] {
            source.apply(kind, Event::Init);
            source.apply(kind, Event::InitDone);
        }
        assert!(!source.is_ready());
        assert!(!rx.has_changed().unwrap());
        source.apply(Kind::ClusterRoleBinding, Event::Init);
        source.apply(Kind::ClusterRoleBinding, Event::InitDone);
        assert!(source.is_ready());
        assert!(rx.has_changed().unwrap());
        rx.borrow_and_update();
        source.apply(Kind::RoleBinding, Event::Apply(binding("x", "y")));
        assert!(
            rx.has_changed().unwrap(),
            "a change after sync wakes the reloader"
        );
        let (set, version) = source.policy_set();
        assert_eq!(set.role_bindings.len(), 1);
        assert_eq!(version, 2);
    }
}

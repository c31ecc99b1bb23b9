//! The live Kubernetes RBAC source: watchers (kube-rs) on Roles, ClusterRoles, RoleBindings
//! and ClusterRoleBindings. Each kind's state is replaced whole at the end of a (re)list —
//! never a half-built set — and kept current from watch events. The server publishes a new
//! snapshot only after every kind has synced once; a lost connection keeps the last state
//! while the watcher retries with backoff.
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
use std::sync::atomic::{AtomicBool, Ordering};
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

/// A running live source.
pub struct ClusterSource {
    state: Mutex<ClusterState>,
    ready: AtomicBool,
    version: watch::Sender<u64>,
}

impl ClusterSource {
    /// A source with no watchers yet (tests feed it events).
    pub fn new() -> Arc<Self> {
        Arc::new(ClusterSource {
            state: Mutex::new(ClusterState::default()),
            ready: AtomicBool::new(false),
            version: watch::channel(0).0,
        })
    }

    /// Starts watchers when `--watch-cluster-rbac` is set.
    pub async fn from_args(args: &crate::config::EngineArgs) -> anyhow::Result<Option<Arc<Self>>> {
        if !args.watch_cluster_rbac {
            return Ok(None);
        }
        let config = match &args.kubeconfig {
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
        source.spawn(client, None);
        Ok(Some(source))
    }

    /// Spawns one watcher per kind.
    pub fn spawn(self: &Arc<Self>, client: kube::Client, metrics: Option<Metrics>) {
        use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
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

    /// Whether every kind has synced once.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// The current objects and the version they belong to.
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

//! The live Kubernetes RBAC source: a kube-rs watcher and reflector store per kind (Roles,
//! ClusterRoles, RoleBindings, ClusterRoleBindings, and ServiceAccounts for workload
//! identity), holding the typed k8s-openapi objects.
//! A store swaps a relist in whole at its end — never a half-built kind — and follows watch
//! events after. The server publishes a snapshot with them as soon as every store has
//! listed once, and is ready only once a serving snapshot holds that first full listing
//! ([`ClusterSource::is_served`]); a lost connection keeps the last state while the watcher
//! retries with backoff. The cluster's objects replace file copies of the same objects
//! ([`crate::policy::PolicySet::overlay`]).
//!
//! A source that can no longer say what the cluster holds (a watcher stopped, a poisoned
//! lock) fails every reload from then on ([`SourceError`]): the policy last published keeps
//! serving and `/readyz` says why, rather than a reload publishing the cluster's grants gone.

mod convert;
mod error;
mod kind;
mod stores;
mod watch;

pub use error::SourceError;
pub use kind::Kind;
pub use stores::RbacObject;
pub use stores::Writers;

use crate::metrics::Metrics;
use crate::policy::PolicySet;
use kube::runtime::watcher::Event;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use stores::Stores;
use tokio::sync::watch as version_watch;

/// A live source: the stores, whether every kind has listed, and a version that wakes the
/// reloader on every published change. Version 0 is "not every kind listed yet"; from 1 on,
/// the stores hold a full listing of every kind.
pub struct ClusterSource {
    stores: Stores,
    /// The writers, until the watchers take them ([`Self::start`]); events fed with
    /// [`Self::apply`] go through them.
    feed: Mutex<Option<Writers>>,
    /// The API client the watchers use (none: nothing is watched).
    client: Option<kube::Client>,
    ready: AtomicBool,
    /// ServiceAccounts are watched (workload identity): only then must they list for the
    /// source to be ready.
    service_accounts: AtomicBool,
    version: version_watch::Sender<u64>,
    /// The version of the objects in the snapshot serving (0: none of them yet).
    served: AtomicU64,
    /// Why the source no longer follows the cluster, once it does not.
    fault: OnceLock<SourceError>,
    /// The objects converted for the last version asked for: a reload on a file change or
    /// the periodic re-read takes them again instead of converting every object anew.
    converted: Mutex<Option<(u64, PolicySet)>>,
}

/// Whether an event, once applied, changes what a listed store publishes (a relist's
/// objects are published together by its `InitDone`).
fn publishes<K>(event: &Event<K>) -> bool {
    matches!(event, Event::Apply(_) | Event::Delete(_) | Event::InitDone)
}

impl ClusterSource {
    /// A source without a client: nothing is watched, events are fed with [`Self::apply`].
    pub fn new() -> Arc<Self> {
        Self::with_client(None)
    }

    fn with_client(client: Option<kube::Client>) -> Arc<Self> {
        let (stores, writers) = stores::stores();
        Arc::new(ClusterSource {
            stores,
            feed: Mutex::new(Some(writers)),
            client,
            ready: AtomicBool::new(false),
            service_accounts: AtomicBool::new(true),
            version: version_watch::channel(0).0,
            served: AtomicU64::new(0),
            fault: OnceLock::new(),
            converted: Mutex::new(None),
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
        Ok(Some(Self::with_client(Some(client))))
    }

    /// Spawns one watcher per kind, each owning its store's writer (once; a source without a
    /// client watches nothing and keeps its writers for [`Self::apply`]). ServiceAccounts are
    /// watched only for workload identity (`watch_service_accounts`): otherwise readiness does
    /// not wait for them, so a ClusterRole without `serviceaccounts` (one from before workload
    /// identity) never holds back the RBAC kinds.
    pub fn start(self: &Arc<Self>, metrics: Option<Metrics>, watch_service_accounts: bool) {
        self.service_accounts
            .store(watch_service_accounts, Ordering::Release);
        let Some(client) = self.client.clone() else {
            return;
        };
        let writers = match self.feed.lock() {
            Ok(mut feed) => feed.take(),
            Err(_) => {
                self.set_fault(SourceError::Poisoned);
                return;
            }
        };
        let Some(w) = writers else {
            return;
        };
        watch::spawn(self, w.roles, client.clone(), metrics.clone());
        watch::spawn(self, w.cluster_roles, client.clone(), metrics.clone());
        watch::spawn(self, w.role_bindings, client.clone(), metrics.clone());
        watch::spawn(
            self,
            w.cluster_role_bindings,
            client.clone(),
            metrics.clone(),
        );
        if watch_service_accounts {
            watch::spawn(self, w.service_accounts, client, metrics);
        }
    }

    /// Feeds one event into its kind's store, as a watcher would; bumps the version (waking
    /// the reloader) when published objects change. A lock that cannot be taken fails the
    /// source (the event is lost, so the stores no longer match the cluster).
    pub fn apply<K: RbacObject>(&self, event: Event<K>) -> Result<(), SourceError> {
        let mut feed = match self.feed.lock() {
            Ok(feed) => feed,
            Err(_) => {
                self.set_fault(SourceError::Poisoned);
                return Err(SourceError::Poisoned);
            }
        };
        let writers = feed.as_mut().ok_or(SourceError::Watched)?;
        K::writer(writers).apply_watcher_event(&event);
        drop(feed);
        self.observe(publishes(&event));
        Ok(())
    }

    /// After an event reached its store: publishes the first time every kind has listed,
    /// and on every change after.
    fn observe(&self, changes: bool) {
        match self
            .stores
            .all_listed(self.service_accounts.load(Ordering::Acquire))
        {
            Ok(true) => {
                if !self.ready.swap(true, Ordering::AcqRel) || changes {
                    self.version.send_modify(|v| *v += 1);
                }
            }
            Ok(false) => {}
            Err(e) => self.set_fault(e),
        }
    }

    /// Marks the source failed: its stores no longer follow the cluster, so every reload
    /// fails from now on and the policy last published keeps serving.
    pub fn fail(&self, why: impl Into<String>) {
        self.set_fault(SourceError::Failed(why.into()));
    }

    /// Records the first fault and wakes the reloader, so the failure shows at once.
    fn set_fault(&self, fault: SourceError) {
        let message = fault.to_string();
        if self.fault.set(fault).is_ok() {
            tracing::error!("{message}; reloads fail and the last published policy keeps serving");
            self.version.send_modify(|v| *v += 1);
        }
    }

    /// Whether every kind has listed once (the listing may not be serving yet: see
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
    /// listing of every kind. A failed source is an error, never an empty set.
    pub fn policy_set(&self) -> Result<(PolicySet, u64), SourceError> {
        let version = *self.version.borrow();
        if self.feed.is_poisoned() {
            self.set_fault(SourceError::Poisoned);
        }
        if let Some(fault) = self.fault.get() {
            return Err(fault.clone());
        }
        // A cache that a panic left behind is only a cache: it is rebuilt.
        let mut converted = self.converted.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, set)) = converted.as_ref()
            && *at == version
        {
            return Ok((set.clone(), version));
        }
        // Objects change only with a new version (a relist's at its end), so the set
        // converted now stands for `version` until the next one.
        let set = convert::policy_set(&self.stores)?;
        *converted = Some((version, set.clone()));
        Ok((set, version))
    }

    /// Object counts by kind.
    pub fn counts(&self) -> Vec<(Kind, usize)> {
        Kind::ALL
            .iter()
            .map(|k| (*k, self.stores.count(*k)))
            .collect()
    }

    /// Wakes on every published change (and on a failure).
    pub fn subscribe(&self) -> version_watch::Receiver<u64> {
        self.version.subscribe()
    }
}

#[cfg(test)]
mod tests;

//! Hot reload, off the request path. Triggers: a file closed after writing, renamed, created
//! or removed in a watched policy directory (debounced; the directory is watched, so a
//! ConfigMap's `..data` symlink swap is seen), SIGHUP, a periodic re-read, and live cluster
//! events. Each reload parses, validates and indexes the whole set aside and swaps it in; a
//! broken set is rejected whole and the last good snapshot keeps serving.
//!
//! A file being written is never read: no trigger reads a file changed within the settle
//! time (its previous content keeps serving; a reload is due when it has been still for that
//! long), and a write alone triggers nothing before then. A change that would remove every
//! deny assignment, or more than half of a kind of object, is held back until the next
//! change (or `--allow-large-removals`): losing that much at once is almost never meant.

use super::tls::TlsState;
use crate::cluster::ClusterSource;
use crate::metrics::Metrics;
use crate::policy::IndexOptions;
use crate::policy::SnapshotStats;
use crate::policy::load::ParsedFiles;
use crate::policy::store::PolicyStore;
use notify::{RecursiveMode, Watcher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, watch};

/// Quiet time after a file event before reloading, so a burst of writes is one reload.
const DEBOUNCE: Duration = Duration::from_millis(200);

/// How long a reload waits for decisions on the snapshot it replaced, to free it itself.
const RETIRE_PATIENCE: Duration = Duration::from_secs(5);

/// Builds and publishes policy generations.
pub struct Reloader {
    pub store: Arc<PolicyStore>,
    pub paths: Vec<PathBuf>,
    /// What each generation is indexed for.
    pub options: IndexOptions,
    pub metrics: Metrics,
    pub cluster: Option<Arc<ClusterSource>>,
    /// What each policy file parsed to, so a reload parses only the files that changed.
    pub parsed: std::sync::Mutex<ParsedFiles>,
    /// A file changed more recently than this is not read (see [`ParsedFiles::settle_files`]).
    pub settle: Duration,
    /// Publish a change however much it removes.
    pub allow_large_removals: bool,
    /// When a reload is due for files that were still being written.
    retry_at: std::sync::Mutex<Option<Instant>>,
    /// The sources of a change held back, so an unchanged re-read does not rebuild it.
    held: std::sync::Mutex<Option<u64>>,
}

/// Why a change is held back, if it removes too much of what is serving: every deny
/// assignment, or more than half (and at least two) of any kind of object.
pub fn large_removal(serving: &SnapshotStats, next: &SnapshotStats) -> Option<String> {
    if serving.deny_assignments > 0 && next.deny_assignments == 0 {
        return Some(format!(
            "it removes every deny assignment ({} serving)",
            serving.deny_assignments
        ));
    }
    let kinds = [
        (
            "role definitions",
            serving.role_definitions,
            next.role_definitions,
        ),
        (
            "role assignments",
            serving.role_assignments,
            next.role_assignments,
        ),
        (
            "deny assignments",
            serving.deny_assignments,
            next.deny_assignments,
        ),
        ("Kubernetes roles", serving.k8s_roles, next.k8s_roles),
        (
            "Kubernetes bindings",
            serving.k8s_bindings,
            next.k8s_bindings,
        ),
        // A lost users file drops the disabled-account check; a lost groups file every
        // membership read from the directory.
        ("Entra users", serving.directory_users, next.directory_users),
        (
            "Entra groups",
            serving.directory_groups,
            next.directory_groups,
        ),
    ];
    kinds.iter().find_map(|(kind, before, after)| {
        let removed = before.saturating_sub(*after);
        (removed >= 2 && removed * 2 > *before)
            .then(|| format!("it removes {removed} of {before} {kind}"))
    })
}

impl Reloader {
    /// A reloader of `paths` (plus the live cluster's objects) into `store`, with the
    /// default settle time and the large-removal guard on.
    pub fn new(
        store: Arc<PolicyStore>,
        paths: Vec<PathBuf>,
        options: IndexOptions,
        metrics: Metrics,
        cluster: Option<Arc<ClusterSource>>,
    ) -> Self {
        Reloader {
            store,
            paths,
            options,
            metrics,
            cluster,
            parsed: Default::default(),
            settle: super::defaults::POLICY_SETTLE,
            allow_large_removals: false,
            retry_at: std::sync::Mutex::new(None),
            held: std::sync::Mutex::new(None),
        }
    }

    /// When a reload is due because files were still being written at the last one.
    pub fn retry_at(&self) -> Option<Instant> {
        *self.retry_at.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Loads everything and publishes a new generation if the sources changed (or `force`).
    /// Blocking: run it on a blocking thread.
    pub fn reload(&self, trigger: &str, force: bool) -> bool {
        let (extra, cluster_version) = match self.cluster.as_ref().map(|c| c.policy_set()) {
            Some(Ok((set, version))) => (Some(set), version),
            // A live source that cannot give the cluster's objects: the reload fails (an
            // empty cluster set would revoke every live grant).
            Some(Err(e)) => {
                self.refuse(trigger, &e);
                return false;
            }
            None => (None, 0),
        };
        let generation = self.store.next_generation();
        let started = std::time::Instant::now();
        // Paced: on a busy core the reload gives way to decisions every few hundred µs.
        let read = crate::policy::pace::paced(|| {
            self.read_and_build(trigger, force, extra, cluster_version, generation)
        });
        self.note_unsettled(&read.unsettled);
        let Some(loaded) = read.built else {
            let result = if read.unsettled.iter().any(|u| !u.previous_kept) {
                "unsettled"
            } else {
                "unchanged"
            };
            self.metrics
                .reloads
                .with_label_values(&[result, trigger])
                .inc();
            return false;
        };
        match loaded {
            Ok((loaded, fingerprint)) => {
                let facts = Publication {
                    trigger,
                    generation,
                    cluster_version,
                    unread: read.unread,
                    started,
                };
                self.publish(loaded, fingerprint, &facts, &read.unsettled)
            }
            Err(e) => {
                self.reject(trigger, &e);
                false
            }
        }
    }

    /// Reads the policy files (kept parses where unchanged) and builds the next generation,
    /// unless a file is still being written with nothing to stand in for it, or the sources
    /// are those being served or held back (and `force` is off).
    fn read_and_build(
        &self,
        trigger: &str,
        force: bool,
        extra: Option<crate::policy::PolicySet>,
        cluster_version: u64,
        generation: u64,
    ) -> SourcesRead {
        // Reloads run one at a time; a panic in an earlier one leaves nothing half-kept
        // that a later load would trust (entries are replaced whole).
        let mut parsed = self.parsed.lock().unwrap_or_else(|e| e.into_inner());
        // A file event or a cluster change trusts unchanged file metadata; SIGHUP and
        // the periodic re-read read every byte again, the safety net for a file system
        // whose metadata cannot be trusted.
        parsed.trust_stamps(matches!(trigger, "watch" | "cluster" | "settle" | "sync"));
        parsed.settle_files(Some(self.settle));
        let sources = crate::read_sources(&self.paths, extra, Some(&mut parsed));
        let unread = parsed.unread();
        let unsettled = sources.unsettled().to_vec();
        // A file being written with nothing read before to stand in for it (a new file,
        // or the first load): nothing is published until it has been still.
        if unsettled.iter().any(|u| !u.previous_kept) {
            return SourcesRead {
                built: None,
                unread,
                unsettled,
            };
        }
        let fingerprint =
            sources.fingerprint() ^ cluster_version.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        if fingerprint == self.store.fingerprint() {
            // Back to the sources being served: nothing is held back, and nothing that
            // failed is still wanted.
            self.release_hold();
            self.set_failure(None);
        }
        let held = *self.held.lock().unwrap_or_else(|e| e.into_inner());
        // The sources of the policy being served (the periodic re-read, a file rewritten
        // with the same bytes), or of a change already held back: nothing to copy,
        // validate or index.
        if !force
            && self.store.is_ready()
            && sources.all_read()
            && (fingerprint == self.store.fingerprint() || Some(fingerprint) == held)
        {
            return SourcesRead {
                built: None,
                unread,
                unsettled,
            };
        }
        let built = sources.build(Some(&parsed), &self.options, generation);
        SourcesRead {
            built: Some(built.map(|loaded| (loaded, fingerprint))),
            unread,
            unsettled,
        }
    }

    /// Publishes a built generation (or holds it back if it removes too much), logs it,
    /// and frees the snapshot it replaced once no decision holds it.
    fn publish(
        &self,
        loaded: crate::Loaded,
        fingerprint: u64,
        facts: &Publication<'_>,
        unsettled: &[crate::policy::load::Unsettled],
    ) -> bool {
        let Publication {
            trigger,
            generation,
            cluster_version,
            unread,
            started,
        } = *facts;
        for w in &loaded.warnings {
            tracing::warn!(file = %w.origin.file, position = %w.origin.position, "{}", w.message);
        }
        let stats = loaded.snapshot.stats();
        if !self.allow_large_removals
            && self.store.is_ready()
            && let Some(why) = large_removal(&self.store.load().stats(), &stats)
        {
            self.hold(loaded, fingerprint, trigger, &why);
            return false;
        }
        self.release_hold();
        let retired = self.store.publish(loaded.snapshot, fingerprint);
        self.set_failure(None);
        if let Some(c) = &self.cluster {
            c.mark_served(cluster_version);
        }
        self.metrics
            .reloads
            .with_label_values(&["success", trigger])
            .inc();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        self.metrics.last_reload_success.set(now);
        tracing::info!(
            generation,
            trigger,
            role_assignments = stats.role_assignments,
            deny_assignments = stats.deny_assignments,
            kubernetes_bindings = stats.k8s_bindings,
            files_unread = unread,
            took_ms = started.elapsed().as_millis() as u64,
            "policy loaded"
        );
        let retire = || {
            crate::policy::store::retire(
                retired,
                RETIRE_PATIENCE,
                crate::policy::Snapshot::dismantle,
            )
        };
        if !crate::policy::pace::paced(retire) {
            tracing::warn!(
                patience_s = RETIRE_PATIENCE.as_secs(),
                "a decision still holds the replaced policy; it is freed when that ends"
            );
        }
        self.note_unsettled(unsettled);
        true
    }

    /// A policy set that fails validation: counted, each error logged, and the last good
    /// policy keeps serving.
    fn reject(&self, trigger: &str, e: &crate::policy::LoadError) {
        for d in e.0.iter().filter(|d| d.is_error()) {
            tracing::error!(file = %d.origin.file, position = %d.origin.position, trigger, "policy rejected: {}", d.message);
        }
        self.refuse(trigger, e);
    }

    /// Counts and logs a rejected change and records why (`/readyz`, the failure gauge); the
    /// last good policy keeps serving.
    fn refuse(&self, trigger: &str, why: &dyn std::fmt::Display) {
        self.metrics
            .reloads
            .with_label_values(&["error", trigger])
            .inc();
        tracing::error!(
            trigger,
            generation = self.store.load().generation,
            "policy change rejected; the last good policy keeps serving: {why}"
        );
        self.set_failure(Some(why.to_string()));
    }
}

/// What reading the sources gave: the built generation with its fingerprint (`None`: nothing
/// to publish), how many files were taken unread, and the files still being written.
struct SourcesRead {
    built: Option<Result<(crate::Loaded, u64), crate::policy::LoadError>>,
    unread: usize,
    unsettled: Vec<crate::policy::load::Unsettled>,
}

/// The facts of one reload that its "policy loaded" line and the metrics report.
#[derive(Clone, Copy)]
struct Publication<'a> {
    trigger: &'a str,
    generation: u64,
    cluster_version: u64,
    unread: usize,
    started: Instant,
}

impl Reloader {
    /// Keeps a built change back from publication (see [`large_removal`]).
    fn hold(&self, loaded: crate::Loaded, fingerprint: u64, trigger: &str, why: &str) {
        *self.held.lock().unwrap_or_else(|e| e.into_inner()) = Some(fingerprint);
        // Built whole: whatever failed before no longer does (the hold has its own reason).
        self.set_failure(None);
        self.metrics
            .reloads
            .with_label_values(&["held", trigger])
            .inc();
        self.metrics.reload_held.set(1);
        tracing::error!(
            trigger,
            generation = self.store.load().generation,
            "policy change held back, not published: {why}; the last good policy keeps \
             serving until the next change (start with --allow-large-removals to publish such \
             a change)"
        );
        self.store
            .set_pending(vec![format!("policy change held back: {why}")]);
        let free = || loaded.snapshot.dismantle();
        crate::policy::pace::paced(free);
    }

    /// Records why the last reload failed (None: it did not), for `/readyz` and the gauge.
    fn set_failure(&self, reason: Option<String>) {
        self.metrics
            .last_reload_failed
            .set(i64::from(reason.is_some()));
        self.store.set_failure(reason);
    }

    fn release_hold(&self) {
        *self.held.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.metrics.reload_held.set(0);
    }

    /// Schedules a reload for when the files still being written have been still for the
    /// settle time, and says so in `/readyz?verbose`.
    fn note_unsettled(&self, unsettled: &[crate::policy::load::Unsettled]) {
        let due = unsettled
            .iter()
            .map(|u| u.settles_in)
            .max()
            // A little after: a time stamp's last tick is not the instant of the write.
            .map(|d| Instant::now() + d + Duration::from_millis(20));
        *self.retry_at.lock().unwrap_or_else(|e| e.into_inner()) = due;
        let held = self
            .held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some();
        if held {
            return;
        }
        for u in unsettled {
            tracing::info!(
                file = %u.file,
                settle_ms = self.settle.as_millis() as u64,
                previous_kept = u.previous_kept,
                "policy file is being written; it is read once it has been still for the settle time"
            );
        }
        self.store.set_pending(
            unsettled
                .iter()
                .map(|u| format!("policy file `{}` is being written; not read yet", u.file))
                .collect(),
        );
    }
}

/// A registered file watch: the watcher (kept alive with it) and its signals.
pub struct FileWatch {
    _watcher: Option<notify::RecommendedWatcher>,
    /// A file was closed after writing, renamed, created or removed: its content is final.
    changes: mpsc::Receiver<()>,
    /// A file was written to and is still open: a reload then could read it half written.
    writes: mpsc::Receiver<()>,
}

/// What a file event means for a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileSignal {
    /// The content is final: reload (after the debounce).
    Changed,
    /// Written, not yet closed: reload only once it has been still (a backend that reports
    /// no close events still gets its reload, then).
    Writing,
    /// Nothing to do (reads, opens).
    Ignored,
}

/// Classifies a file event (inotify on Linux reports close-after-write; other back ends
/// only modification, which then reloads after the settle time).
pub fn signal_of(kind: &notify::EventKind) -> FileSignal {
    use notify::EventKind;
    use notify::event::{AccessKind, AccessMode, ModifyKind};
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => FileSignal::Changed,
        EventKind::Access(_) => FileSignal::Ignored,
        EventKind::Modify(ModifyKind::Name(_)) => FileSignal::Changed,
        EventKind::Modify(_) => FileSignal::Writing,
        EventKind::Create(_) | EventKind::Remove(_) | EventKind::Any | EventKind::Other => {
            FileSignal::Changed
        }
    }
}

/// Watches `paths` (directories recursively; for files, their parent directory) and sends a
/// unit on every change. Called before the files are first read, so no change between that
/// read and the watch is missed.
pub fn watch_paths(paths: &[PathBuf]) -> FileWatch {
    let (changed, changes) = mpsc::channel(1);
    let (written, writes) = mpsc::channel(1);
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(e) = event else { return };
        // A full channel already means "reload pending": coalesce.
        match signal_of(&e.kind) {
            FileSignal::Changed => {
                let _ = changed.try_send(());
            }
            // Writes to other files (a log, an editor's swap file) are no reason to look.
            FileSignal::Writing
                if e.paths
                    .iter()
                    .any(|p| crate::policy::parse::Format::of_path(p).is_some()) =>
            {
                let _ = written.try_send(());
            }
            FileSignal::Writing => {}
            FileSignal::Ignored => {}
        }
    });
    let mut watcher = match watcher {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(error = %e, "file watching unavailable; relying on SIGHUP and the periodic re-read");
            return FileWatch {
                _watcher: None,
                changes,
                writes,
            };
        }
    };
    for path in paths {
        let (target, mode) = if path.is_dir() {
            (path.as_path(), RecursiveMode::Recursive)
        } else {
            (
                path.parent().unwrap_or(Path::new(".")),
                RecursiveMode::NonRecursive,
            )
        };
        if let Err(e) = watcher.watch(target, mode) {
            tracing::warn!(path = %target.display(), error = %e, "cannot watch path");
        }
    }
    FileWatch {
        _watcher: Some(watcher),
        changes,
        writes,
    }
}

/// Waits until events stop for [`DEBOUNCE`], but at most five times that, so a steady
/// stream of writes still reloads.
async fn debounce(rx: &mut mpsc::Receiver<()>) {
    for _ in 0..5 {
        tokio::time::sleep(DEBOUNCE).await;
        if rx.try_recv().is_err() {
            return;
        }
    }
}

/// Runs one reload on a thread of its own at the lowest CPU priority, paced (see
/// [`crate::policy::pace`]): a reload is background work and gives way to decisions.
pub(super) async fn reload_blocking(reloader: &Arc<Reloader>, trigger: &'static str, force: bool) {
    let r = reloader.clone();
    let (done, finished) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("scopegate-reload".into())
        .spawn(move || {
            background_priority();
            let _ = done.send(r.reload(trigger, force));
        });
    match spawned {
        Ok(_) => {
            let _ = finished.await;
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot start a reload thread; reloading on a blocking thread");
            let r = reloader.clone();
            let _ = tokio::task::spawn_blocking(move || r.reload(trigger, force)).await;
        }
    }
}

/// Lowers the calling thread's CPU priority to nice 19 (per thread on Linux). Failing is
/// harmless: the reload then runs at normal priority, still paced.
fn background_priority() {
    if let Err(error) = crate::sys::lower_thread_priority() {
        tracing::debug!(%error, "cannot lower the reload thread's priority");
    }
}

/// Runs the policy reload triggers until shutdown.
pub async fn watch_policies(
    reloader: Arc<Reloader>,
    mut watch: FileWatch,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let files = &mut watch.changes;
    let writes = &mut watch.writes;
    // The source's watchers started before this subscription: a listing that completed in
    // between would be seen only by the next poll. Marked changed, the first turn of the loop
    // merges whatever is there (nothing to do if the startup load already had it).
    let mut cluster_events = reloader.cluster.as_ref().map(|c| {
        let mut events = c.subscribe();
        events.mark_changed();
        events
    });
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        // A reload is due when files still being written have been still for the settle time
        // (the startup load may have found some).
        let due = reloader.retry_at();
        tokio::select! {
            Some(()) = files.recv() => {
                debounce(files).await;
                reload_blocking(&reloader, "watch", false).await;
            }
            Some(()) = writes.recv() => {
                // Written, not closed: look again once it may have settled. The earlier time
                // wins: that reload schedules the next one if a file is still being written.
                let at = Instant::now() + reloader.settle + Duration::from_millis(20);
                let sooner = reloader.retry_at().map_or(at, |due| due.min(at));
                *reloader.retry_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(sooner);
            }
            _ = tokio::time::sleep_until(due.unwrap_or_else(Instant::now).into()), if due.is_some() => {
                *reloader.retry_at.lock().unwrap_or_else(|e| e.into_inner()) = None;
                reload_blocking(&reloader, "settle", false).await;
            }
            Some(()) = async { match hup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => {
                reload_blocking(&reloader, "sighup", true).await;
            }
            Ok(()) = async { match cluster_events.as_mut() { Some(c) => c.changed().await, None => std::future::pending().await } } => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                reload_blocking(&reloader, "cluster", false).await;
            }
            _ = tick.tick() => reload_blocking(&reloader, "poll", false).await,
            _ = shutdown.changed() => return,
        }
    }
}

/// Re-reads TLS files when they change (and periodically); a bad new set keeps the old one.
pub async fn watch_tls(
    tls: Arc<TlsState>,
    mut watch: FileWatch,
    metrics: Metrics,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let files = &mut watch.changes;
    let mut tick = tokio::time::interval(interval);
    tick.tick().await;
    loop {
        tokio::select! {
            Some(()) = files.recv() => debounce(files).await,
            Some(()) = watch.writes.recv() => debounce(&mut watch.writes).await,
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        let t = tls.clone();
        match tokio::task::spawn_blocking(move || t.reload()).await {
            Ok(Ok(super::tls::Reloaded::Unchanged)) => {
                metrics.tls_reloads.with_label_values(&["unchanged"]).inc();
            }
            Ok(Ok(super::tls::Reloaded::Changed(built))) => {
                metrics.tls_reloads.with_label_values(&["success"]).inc();
                if let Some(e) = built.serving_expiry {
                    metrics.tls_expiry.with_label_values(&["serving"]).set(e);
                }
                if let Some(e) = built.client_ca_expiry {
                    metrics.tls_expiry.with_label_values(&["client_ca"]).set(e);
                }
                tracing::info!("new TLS credentials in use");
            }
            Ok(Err(e)) => {
                metrics.tls_reloads.with_label_values(&["error"]).inc();
                tracing::error!(error = %e, "new TLS credentials rejected; the previous ones stay in use");
            }
            Err(e) => tracing::error!(error = %e, "TLS reload task failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn losing_most_of_the_directory_export_is_a_large_removal() {
        let serving = SnapshotStats {
            directory_users: 100,
            directory_groups: 10,
            ..SnapshotStats::default()
        };
        let lost_users = SnapshotStats {
            directory_users: 0,
            ..serving
        };
        let why = large_removal(&serving, &lost_users).unwrap_or_default();
        assert!(why.contains("100 of 100 Entra users"), "{why}");
        let lost_groups = SnapshotStats {
            directory_groups: 4,
            ..serving
        };
        assert!(large_removal(&serving, &lost_groups).is_some());
        let ordinary = SnapshotStats {
            directory_users: 60,
            ..serving
        };
        assert_eq!(large_removal(&serving, &ordinary), None);
    }
}

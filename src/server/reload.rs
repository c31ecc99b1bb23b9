//! Hot reload, off the request path. Triggers: a change in a watched policy directory
//! (debounced; the directory is watched, so a ConfigMap's `..data` symlink swap is seen),
//! SIGHUP, a periodic re-read, and live cluster events. Each reload parses, validates and
//! indexes the whole set aside and swaps it in; a broken set is rejected whole and the last
//! good snapshot keeps serving.

use super::tls::TlsState;
use crate::cluster::ClusterSource;
use crate::engine::EngineOptions;
use crate::metrics::Metrics;
use crate::policy::load::ParsedFiles;
use crate::policy::store::PolicyStore;
use notify::{RecursiveMode, Watcher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, watch};

/// Quiet time after a file event before reloading, so a burst of writes is one reload.
const DEBOUNCE: Duration = Duration::from_millis(200);

/// How long a reload waits for decisions on the snapshot it replaced, to free it itself.
const RETIRE_PATIENCE: Duration = Duration::from_secs(5);

/// Builds and publishes policy generations.
pub struct Reloader {
    pub store: Arc<PolicyStore>,
    pub paths: Vec<PathBuf>,
    pub options: EngineOptions,
    pub metrics: Metrics,
    pub cluster: Option<Arc<ClusterSource>>,
    /// What each policy file parsed to, so a reload parses only the files that changed.
    pub parsed: std::sync::Mutex<ParsedFiles>,
}

impl Reloader {
    /// Loads everything and publishes a new generation if the sources changed (or `force`).
    /// Blocking: run it on a blocking thread.
    pub fn reload(&self, trigger: &str, force: bool) -> bool {
        let (extra, cluster_version) = match &self.cluster {
            Some(c) => {
                let (set, version) = c.policy_set();
                (Some(set), version)
            }
            None => (None, 0),
        };
        let generation = self.store.next_generation();
        let started = std::time::Instant::now();
        // Paced: on a busy core the reload gives way to decisions every few hundred µs.
        let (outcome, unread) = crate::policy::pace::paced(|| {
            // Reloads run one at a time; a panic in an earlier one leaves nothing half-kept
            // that a later load would trust (entries are replaced whole).
            let mut parsed = self.parsed.lock().unwrap_or_else(|e| e.into_inner());
            // A file event or a cluster change trusts unchanged file metadata; SIGHUP and
            // the periodic re-read read every byte again, the safety net for a file system
            // whose metadata cannot be trusted.
            parsed.trust_stamps(matches!(trigger, "watch" | "cluster"));
            let sources = crate::read_sources(&self.paths, extra, Some(&mut parsed));
            let unread = parsed.unread();
            let fingerprint =
                sources.fingerprint() ^ cluster_version.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            // The sources of the policy being served (the periodic re-read, a file rewritten
            // with the same bytes): nothing to copy, validate or index.
            if !force
                && self.store.is_ready()
                && sources.all_read()
                && fingerprint == self.store.fingerprint()
            {
                return (None, unread);
            }
            let built = sources.build(Some(&parsed), &self.options, generation);
            (Some(built.map(|loaded| (loaded, fingerprint))), unread)
        });
        let Some(loaded) = outcome else {
            self.metrics
                .reloads
                .with_label_values(&["unchanged", trigger])
                .inc();
            return false;
        };
        match loaded {
            Ok((loaded, fingerprint)) => {
                for w in &loaded.warnings {
                    tracing::warn!(file = %w.origin.file, position = %w.origin.position, "{}", w.message);
                }
                let stats = loaded.snapshot.stats();
                let retired = self.store.publish(loaded.snapshot, fingerprint);
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
                true
            }
            Err(e) => {
                self.metrics
                    .reloads
                    .with_label_values(&["error", trigger])
                    .inc();
                for d in e.0.iter().filter(|d| d.is_error()) {
                    tracing::error!(file = %d.origin.file, position = %d.origin.position, trigger, "policy rejected: {}", d.message);
                }
                tracing::error!(
                    trigger,
                    errors = e.0.iter().filter(|d| d.is_error()).count(),
                    generation = self.store.load().generation,
                    "policy change rejected; the last good policy keeps serving"
                );
                false
            }
        }
    }
}

/// A registered file watch: the watcher (kept alive with it) and its change signals.
pub struct FileWatch {
    _watcher: Option<notify::RecommendedWatcher>,
    changes: mpsc::Receiver<()>,
}

/// Watches `paths` (directories recursively; for files, their parent directory) and sends a
/// unit on every change. Called before the files are first read, so no change between that
/// read and the watch is missed.
pub fn watch_paths(paths: &[PathBuf]) -> FileWatch {
    let (tx, rx) = mpsc::channel(1);
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(e) = event
            && !matches!(e.kind, notify::EventKind::Access(_))
        {
            // A full channel already means "reload pending": coalesce.
            let _ = tx.try_send(());
        }
    });
    let mut watcher = match watcher {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(error = %e, "file watching unavailable; relying on SIGHUP and the periodic re-read");
            return FileWatch {
                _watcher: None,
                changes: rx,
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
        changes: rx,
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
async fn reload_blocking(reloader: &Arc<Reloader>, trigger: &'static str, force: bool) {
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
    // SAFETY: setpriority takes plain integers and touches no memory of ours; who = 0 is the
    // calling thread.
    let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 19) };
    if rc != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "cannot lower the reload thread's priority");
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
    let mut cluster_events = reloader.cluster.as_ref().map(|c| c.subscribe());
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            Some(()) = files.recv() => {
                debounce(files).await;
                reload_blocking(&reloader, "watch", false).await;
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
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        let t = tls.clone();
        match tokio::task::spawn_blocking(move || t.reload()).await {
            Ok(Ok(built)) => {
                metrics.tls_reloads.with_label_values(&["success"]).inc();
                if let Some(e) = built.serving_expiry {
                    metrics.tls_expiry.with_label_values(&["serving"]).set(e);
                }
                if let Some(e) = built.client_ca_expiry {
                    metrics.tls_expiry.with_label_values(&["client_ca"]).set(e);
                }
                tracing::debug!("TLS credentials re-read");
            }
            Ok(Err(e)) => {
                metrics.tls_reloads.with_label_values(&["error"]).inc();
                tracing::error!(error = %e, "new TLS credentials rejected; the previous ones stay in use");
            }
            Err(e) => tracing::error!(error = %e, "TLS reload task failed"),
        }
    }
}

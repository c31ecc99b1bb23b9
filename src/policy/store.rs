//! The live policy: one [`Snapshot`] behind an `ArcSwap`. Readers take the current
//! generation without locks; a reload builds the next one aside and swaps it in whole.

use super::Snapshot;
use arc_swap::ArcSwap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Current policy plus whether a first good load has happened.
#[derive(Debug)]
pub struct PolicyStore {
    current: ArcSwap<Snapshot>,
    ready: AtomicBool,
    /// Fingerprint of the sources of the current snapshot, to skip no-op reloads.
    fingerprint: AtomicU64,
    /// Why the policy on disk is not the one serving, if it is not: a change held back or
    /// files still being written. For `/readyz?verbose`.
    pending: std::sync::Mutex<Vec<String>>,
    /// Why the last reload was rejected, until one succeeds.
    failure: std::sync::Mutex<Option<String>>,
}

impl Default for PolicyStore {
    fn default() -> Self {
        PolicyStore::new()
    }
}

impl PolicyStore {
    /// An empty store: generation 0, not ready. Decisions from it grant nothing.
    pub fn new() -> Self {
        PolicyStore {
            current: ArcSwap::from_pointee(Snapshot::empty()),
            ready: AtomicBool::new(false),
            fingerprint: AtomicU64::new(0),
            pending: std::sync::Mutex::new(Vec::new()),
            failure: std::sync::Mutex::new(None),
        }
    }

    /// Says why the files' policy is not (yet) the one serving; empty once it is.
    pub fn set_pending(&self, reasons: Vec<String>) {
        *self.pending.lock().unwrap_or_else(|e| e.into_inner()) = reasons;
    }

    /// See [`PolicyStore::set_pending`].
    pub fn pending(&self) -> Vec<String> {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Records why the last reload was rejected (`None`: it succeeded).
    pub fn set_failure(&self, reason: Option<String>) {
        *self.failure.lock().unwrap_or_else(|e| e.into_inner()) = reason;
    }

    /// Why the last reload was rejected, if it was: the policy serving (if any) is the last
    /// good one, not what the sources now say.
    pub fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The current snapshot; a decision uses exactly this one.
    pub fn load(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// The generation the next snapshot gets.
    pub fn next_generation(&self) -> u64 {
        self.current.load().generation + 1
    }

    /// Publishes a new snapshot and marks the store ready. Returns the one it replaces, for
    /// the caller to [`retire`] off the request path.
    #[must_use = "the replaced snapshot is freed where it is dropped; retire it"]
    pub fn publish(&self, snapshot: Snapshot, fingerprint: u64) -> Arc<Snapshot> {
        let retired = self.current.swap(Arc::new(snapshot));
        self.fingerprint.store(fingerprint, Ordering::Release);
        self.ready.store(true, Ordering::Release);
        retired
    }

    /// Whether a first good policy load has happened.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Fingerprint of the current snapshot's sources.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint.load(Ordering::Acquire)
    }
}

/// How often [`retire`] looks whether the last decision on a replaced snapshot has finished.
const RETIRE_POLL: Duration = Duration::from_millis(1);

/// Frees a replaced snapshot with `free` on the calling (reload) thread once no decision
/// holds it, and returns whether it did. A decision in flight keeps the snapshot it started with; whoever
/// drops the last reference frees it, and freeing 100k assignments takes ~3.5 ms — on a
/// serving thread, a stall for every request queued behind it. Nothing can take a new
/// reference once the store no longer holds it, so a count of one stays one. After
/// `patience` (a decision stuck that long has worse problems) the last holder frees it. The
/// caller waits meanwhile: the next reload starts after this one has freed its predecessor.
pub fn retire<T>(mut retired: Arc<T>, patience: Duration, free: impl FnOnce(T)) -> bool {
    let started = Instant::now();
    loop {
        match Arc::try_unwrap(retired) {
            Ok(last) => {
                free(last);
                return true;
            }
            Err(held) if started.elapsed() < patience => {
                retired = held;
                std::thread::sleep(RETIRE_POLL);
            }
            Err(_) => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replaced_snapshot_is_freed_by_the_retiring_thread_not_by_the_last_decision() {
        let store = PolicyStore::new();
        let first = store.publish(Snapshot::empty(), 1);
        assert!(
            retire(first, Duration::ZERO, drop),
            "nobody held the initial snapshot"
        );
        // A decision in flight holds generation 1 while generation 2 is published.
        let in_flight = store.load();
        let retired = store.publish(Snapshot::empty(), 2);
        assert!(Arc::ptr_eq(&in_flight, &retired));
        let started = Instant::now();
        let decision = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            // The decision ends: its reference is not the last, so it frees nothing.
            Arc::into_inner(in_flight).is_none()
        });
        assert!(retire(
            retired,
            Duration::from_secs(10),
            Snapshot::dismantle
        ));
        assert!(started.elapsed() >= Duration::from_millis(30));
        assert_eq!(decision.join().ok(), Some(true));
        assert_eq!(store.fingerprint(), 2);
    }

    #[test]
    fn a_snapshot_held_past_the_patience_is_left_to_its_last_holder() {
        let held = Arc::new(5u8);
        let started = Instant::now();
        assert!(!retire(held.clone(), Duration::from_millis(20), drop));
        assert!(started.elapsed() >= Duration::from_millis(20));
        assert_eq!(Arc::strong_count(&held), 1);
    }
}

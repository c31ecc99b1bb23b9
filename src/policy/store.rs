//! The live policy: one [`Snapshot`] behind an `ArcSwap`. Readers take the current
//! generation without locks; a reload builds the next one aside and swaps it in whole.

use super::Snapshot;
use arc_swap::ArcSwap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Current policy plus whether a first good load has happened.
#[derive(Debug)]
pub struct PolicyStore {
    current: ArcSwap<Snapshot>,
    ready: AtomicBool,
    /// Fingerprint of the sources of the current snapshot, to skip no-op reloads.
    fingerprint: AtomicU64,
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
        }
    }

    /// The current snapshot; a decision uses exactly this one.
    pub fn load(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// The generation the next snapshot gets.
    pub fn next_generation(&self) -> u64 {
        self.current.load().generation + 1
    }

    /// Publishes a new snapshot and marks the store ready.
    pub fn publish(&self, snapshot: Snapshot, fingerprint: u64) {
        self.current.store(Arc::new(snapshot));
        self.fingerprint.store(fingerprint, Ordering::Release);
        self.ready.store(true, Ordering::Release);
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

//! The decision cache: bounded in entries and time, keyed by every input the engine reads
//! plus the policy generation — never the user name alone (Guard's username-only key kept
//! revoked access alive). A reload changes the generation, so old entries are never served.

use crate::model::{AccessRequest, Decision};
use moka::sync::Cache;
use std::sync::Arc;
use std::time::Duration;

/// The key: generation and the canonical request (everything but the request uid).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DecisionKey {
    generation: u64,
    request: Arc<str>,
}

impl DecisionKey {
    /// Builds the key; `None` if the request cannot be serialised (then it is not cached).
    pub fn new(generation: u64, request: &AccessRequest) -> Option<Self> {
        let canonical = AccessRequest {
            uid: String::new(),
            ..request.clone()
        };
        let text = serde_json::to_string(&canonical).ok()?;
        Some(DecisionKey {
            generation,
            request: Arc::from(text),
        })
    }
}

/// Bounded decision cache.
#[derive(Clone)]
pub struct DecisionCache {
    inner: Cache<DecisionKey, Arc<Decision>>,
}

impl DecisionCache {
    /// A cache of at most `capacity` entries, each kept at most `ttl`.
    pub fn new(capacity: u64, ttl: Duration) -> Self {
        DecisionCache {
            inner: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build(),
        }
    }

    pub fn get(&self, key: &DecisionKey) -> Option<Arc<Decision>> {
        self.inner.get(key)
    }

    pub fn insert(&self, key: DecisionKey, decision: Arc<Decision>) {
        self.inner.insert(key, decision);
    }

    pub fn entries(&self) -> u64 {
        self.inner.entry_count()
    }
}

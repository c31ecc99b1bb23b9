//! The decision cache: bounded in bytes, entries and time, keyed by every input the engine
//! reads plus the policy generation — never the user name alone (Guard's username-only key kept
//! revoked access alive). A reload changes the generation, so old entries are never served.
//!
//! Each entry weighs its bytes (key, rendered reason, error, ids, a fixed overhead), but at
//! least `max_bytes / max_entries`: moka bounds the total weight by `max_bytes`, which then
//! bounds the entries by `max_entries` too. A request whose key would exceed [`MAX_KEY_BYTES`]
//! is not cached at all: large requests are rare, and one of them would take the room of
//! hundreds of ordinary ones.
//!
//! A decision that rests on a time-bound (PIM) assignment carries the next window boundary
//! ([`Decision::valid_until`]): its entry expires then, and [`DecisionCache::get_at`] never
//! serves it from then on, so an activation starts and ends to the second.

use crate::model::{AccessRequest, Decision, Timestamp};
use moka::sync::Cache;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// The largest key (canonical request text) that is cached. Real reviews are a few hundred
/// bytes; an Entra user with 200 groups makes about 8 KiB of groups, so such a user's
/// reviews are decided every time rather than cached.
pub const MAX_KEY_BYTES: usize = 4096;

/// What an entry costs beyond its text: moka's node, the `Arc`s and the `Decision`.
const ENTRY_OVERHEAD_BYTES: usize = 256;

/// The key: generation and the canonical request (everything but the request uid).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DecisionKey {
    generation: u64,
    request: Arc<str>,
}

impl DecisionKey {
    /// Builds the key; `None` if the request cannot be serialised or its key would be larger
    /// than [`MAX_KEY_BYTES`] (then it is not cached).
    pub fn new(generation: u64, request: &AccessRequest) -> Option<Self> {
        let canonical = AccessRequest {
            uid: String::new(),
            ..request.clone()
        };
        // Serialising stops at the limit: an oversized request is never written out whole.
        let mut text = Bounded(Vec::with_capacity(256));
        serde_json::to_writer(&mut text, &canonical).ok()?;
        let text = String::from_utf8(text.0).ok()?;
        Some(DecisionKey {
            generation,
            request: Arc::from(text),
        })
    }

    /// Bytes of the canonical request text.
    pub fn len(&self) -> usize {
        self.request.len()
    }

    pub fn is_empty(&self) -> bool {
        self.request.is_empty()
    }
}

/// A buffer that refuses to grow past [`MAX_KEY_BYTES`].
struct Bounded(Vec<u8>);

impl std::io::Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.0.len() + buf.len() > MAX_KEY_BYTES {
            return Err(std::io::Error::other("decision key too large"));
        }
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Counts the bytes of a rendered text without keeping it.
#[derive(Default)]
struct ByteCount(usize);

impl std::fmt::Write for ByteCount {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0 += s.len();
        Ok(())
    }
}

/// The bytes an entry holds.
fn entry_bytes(key: &DecisionKey, decision: &Decision) -> usize {
    let mut reason = ByteCount::default();
    let _ = write!(reason, "{}", decision.reason);
    ENTRY_OVERHEAD_BYTES
        + key.len()
        + reason.0
        + decision.evaluation_error.as_ref().map_or(0, String::len)
        + decision.decided_by.iter().map(|id| id.len()).sum::<usize>()
}

/// Expires an entry at its decision's [`Decision::valid_until`] (the cache's TTL bounds the
/// others), so entries past a window boundary leave rather than take room.
struct UntilBoundary;

impl moka::Expiry<DecisionKey, Arc<Decision>> for UntilBoundary {
    fn expire_after_create(
        &self,
        _key: &DecisionKey,
        decision: &Arc<Decision>,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        let until = decision.valid_until?;
        Some(Timestamp::from_system(SystemTime::now()).until(until))
    }
}

/// Bounded decision cache.
#[derive(Clone)]
pub struct DecisionCache {
    inner: Cache<DecisionKey, Arc<Decision>>,
}

impl DecisionCache {
    /// A cache of at most `max_entries` entries and `max_bytes` bytes, each kept at most `ttl`.
    pub fn new(max_entries: u64, max_bytes: u64, ttl: Duration) -> Self {
        let floor = usize::try_from(max_bytes / max_entries.max(1)).unwrap_or(usize::MAX);
        DecisionCache {
            inner: Cache::builder()
                .max_capacity(max_bytes)
                .weigher(move |key: &DecisionKey, decision: &Arc<Decision>| {
                    let bytes = entry_bytes(key, decision).max(floor);
                    u32::try_from(bytes).unwrap_or(u32::MAX)
                })
                .time_to_live(ttl)
                .expire_after(UntilBoundary)
                .build(),
        }
    }

    pub fn get(&self, key: &DecisionKey) -> Option<Arc<Decision>> {
        self.inner.get(key)
    }

    /// The cached decision for a request decided at `now`, unless a window boundary it
    /// rests on has come (then the request must be decided again).
    pub fn get_at(&self, key: &DecisionKey, now: Timestamp) -> Option<Arc<Decision>> {
        self.inner
            .get(key)
            .filter(|d| d.valid_until.is_none_or(|until| now < until))
    }

    pub fn insert(&self, key: DecisionKey, decision: Arc<Decision>) {
        self.inner.insert(key, decision);
    }

    pub fn entries(&self) -> u64 {
        self.inner.entry_count()
    }

    /// The weighed size of the entries, in bytes.
    pub fn bytes(&self) -> u64 {
        self.inner.weighted_size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ResourceAttributes, Source, Verdict};

    fn request(name: &str) -> AccessRequest {
        AccessRequest {
            user: "alice".into(),
            groups: ["dev", "ops"].into_iter().collect(),
            uid: "7c1a".into(),
            resource_attributes: Some(Box::new(ResourceAttributes {
                namespace: "team-a".into(),
                verb: "get".into(),
                resource: "configmaps".into(),
                name: name.into(),
                ..ResourceAttributes::default()
            })),
            ..AccessRequest::default()
        }
    }

    fn decision(reason: String) -> Arc<Decision> {
        Arc::new(Decision::new(Verdict::Allow, Source::AzureRbac, reason))
    }

    #[test]
    fn large_entries_stay_within_the_byte_budget() {
        let budget: u64 = 64 * 1024;
        let cache = DecisionCache::new(10_000, budget, Duration::from_secs(60));
        for i in 0..500 {
            // Keys just under the key limit, reasons as long: about 6 KiB an entry.
            let name = format!("{i:05}-{}", "x".repeat(3000));
            let key = DecisionKey::new(1, &request(&name)).unwrap();
            cache.insert(key, decision(format!("granted for `{name}`")));
        }
        cache.inner.run_pending_tasks();
        let held: usize = cache
            .inner
            .iter()
            .map(|(k, d)| k.len() + d.reason.to_string().len())
            .sum();
        assert!(cache.entries() > 0, "nothing cached");
        assert!(
            held as u64 <= budget,
            "{held} bytes held for a {budget} budget"
        );
        assert!(cache.bytes() <= budget, "weighed {}", cache.bytes());
    }

    #[test]
    fn the_entry_bound_still_holds_for_small_entries() {
        let cache = DecisionCache::new(10, 64 << 20, Duration::from_secs(60));
        for i in 0..200 {
            let key = DecisionKey::new(1, &request(&format!("cm-{i}"))).unwrap();
            cache.insert(key, decision("granted".into()));
        }
        cache.inner.run_pending_tasks();
        assert!(cache.entries() <= 10, "{} entries", cache.entries());
    }

    /// An allow resting on a time-bound assignment is served until its window ends and not
    /// from that millisecond on; one resting on nothing time-bound is served whenever asked.
    #[test]
    fn a_cached_allow_is_not_served_past_its_window_end() {
        let cache = DecisionCache::new(100, 64 << 20, Duration::from_secs(3600));
        let now = Timestamp::from_system(SystemTime::now());
        let end = Timestamp::from_unix_millis(now.unix_millis() + 60_000);
        let mut timed = Decision::new(Verdict::Allow, Source::AzureRbac, "time-bound grant");
        timed.valid_until = Some(end);
        let timed_key = DecisionKey::new(1, &request("timed")).unwrap();
        cache.insert(timed_key.clone(), Arc::new(timed));
        let lasting_key = DecisionKey::new(1, &request("lasting")).unwrap();
        cache.insert(lasting_key.clone(), decision("lasting grant".into()));

        let just_before = Timestamp::from_unix_millis(end.unix_millis() - 1);
        let hit = cache
            .get_at(&timed_key, just_before)
            .expect("served inside the window");
        assert_eq!(hit.verdict, Verdict::Allow);
        assert!(cache.get_at(&timed_key, end).is_none(), "served at the end");
        let later = Timestamp::from_unix_millis(end.unix_millis() + 3_600_000);
        assert!(cache.get_at(&timed_key, later).is_none());
        assert!(cache.get_at(&lasting_key, later).is_some());
    }

    /// The entry itself leaves at the boundary (its room is freed), not at the cache's TTL.
    #[test]
    fn an_entry_expires_at_its_boundary() {
        let cache = DecisionCache::new(100, 64 << 20, Duration::from_secs(3600));
        let now = Timestamp::from_system(SystemTime::now());
        let mut timed = Decision::new(Verdict::Allow, Source::AzureRbac, "time-bound grant");
        timed.valid_until = Some(Timestamp::from_unix_millis(now.unix_millis() + 50));
        let key = DecisionKey::new(1, &request("timed")).unwrap();
        cache.insert(key.clone(), Arc::new(timed));
        assert!(cache.get(&key).is_some());
        std::thread::sleep(Duration::from_millis(200));
        assert!(cache.get(&key).is_none(), "kept past its boundary");
    }

    #[test]
    fn an_oversized_request_is_not_cached() {
        assert!(DecisionKey::new(1, &request(&"x".repeat(MAX_KEY_BYTES))).is_none());
        assert!(DecisionKey::new(1, &request(&"x".repeat(1 << 20))).is_none());
        let fits = DecisionKey::new(1, &request(&"x".repeat(MAX_KEY_BYTES / 2))).unwrap();
        assert!(fits.len() <= MAX_KEY_BYTES);
    }

    #[test]
    fn a_cached_answer_is_the_answer_inserted_for_that_request_only() {
        let cache = DecisionCache::new(100, 64 << 20, Duration::from_secs(60));
        let mut answers = Vec::new();
        for i in 0..20 {
            let name = format!("cm-{i}");
            let verdict = if i % 2 == 0 {
                Verdict::Allow
            } else {
                Verdict::Deny
            };
            let d = Arc::new(Decision::new(
                verdict,
                Source::AzureRbac,
                format!("for {name}"),
            ));
            cache.insert(DecisionKey::new(1, &request(&name)).unwrap(), d.clone());
            answers.push((name, d));
        }
        for (name, expected) in &answers {
            let mut same = request(name);
            same.uid = "another-uid".into();
            let hit = cache.get(&DecisionKey::new(1, &same).unwrap()).unwrap();
            assert_eq!(hit.verdict, expected.verdict, "{name}");
            assert_eq!(
                hit.reason.to_string(),
                expected.reason.to_string(),
                "{name}"
            );
            // Another generation or another user is another question.
            assert!(cache.get(&DecisionKey::new(2, &same).unwrap()).is_none());
            let other = AccessRequest {
                user: "bob".into(),
                ..same.clone()
            };
            assert!(cache.get(&DecisionKey::new(1, &other).unwrap()).is_none());
        }
    }
}

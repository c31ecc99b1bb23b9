//! Verified tokens by the SHA-256 of the token, so a token presented again is not verified
//! again. Only what the signature and claims establish is kept ([`VerifiedToken`]); the
//! directory (groups, disabled accounts) is applied at every review, so a reload takes
//! effect at once. An entry expires with its token, and the cache is bounded.

use super::token::VerifiedToken;
use moka::sync::Cache;
use std::sync::Arc;
use std::time::Duration;

/// SHA-256 of a token: the cache key and, shortened, the token's name in logs.
pub type TokenDigest = [u8; 32];

pub fn digest(token: &str) -> TokenDigest {
    let hash = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(hash.as_ref());
    out
}

/// The first 8 bytes of the digest in hex: how logs name a token.
pub fn log_name(digest: &TokenDigest) -> String {
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

#[derive(Clone)]
struct Entry {
    token: Arc<VerifiedToken>,
    ttl: Duration,
}

struct UntilExpiry;

impl moka::Expiry<TokenDigest, Entry> for UntilExpiry {
    fn expire_after_create(
        &self,
        _key: &TokenDigest,
        value: &Entry,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// A bounded cache of verified tokens.
#[derive(Clone)]
pub struct TokenCache {
    entries: Cache<TokenDigest, Entry>,
}

impl TokenCache {
    pub fn new(max_entries: u64) -> TokenCache {
        TokenCache {
            entries: Cache::builder()
                .max_capacity(max_entries)
                .expire_after(UntilExpiry)
                .build(),
        }
    }

    /// The verified token for this digest, if cached and still valid at `now`.
    pub fn get(&self, digest: &TokenDigest, now: u64) -> Option<Arc<VerifiedToken>> {
        let entry = self.entries.get(digest)?;
        (now < entry.token.valid_until).then_some(entry.token)
    }

    /// Keeps a verified token until it expires.
    pub fn insert(&self, digest: TokenDigest, token: Arc<VerifiedToken>, now: u64) {
        let ttl = Duration::from_secs(token.valid_until.saturating_sub(now));
        if !ttl.is_zero() {
            self.entries.insert(digest, Entry { token, ttl });
        }
    }

    /// Forgets every token (the signing keys changed: a removed key must not keep working).
    pub fn clear(&self) {
        self.entries.invalidate_all();
    }

    pub fn entry_count(&self) -> u64 {
        self.entries.run_pending_tasks();
        self.entries.entry_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::token::TokenGroups;

    fn token(valid_until: u64) -> Arc<VerifiedToken> {
        Arc::new(VerifiedToken {
            oid: "aaaaaaaa-0000-4000-8000-000000000001".into(),
            tid: None,
            username: "alice".into(),
            groups: TokenGroups::Absent,
            audiences: vec![],
            valid_until,
            kid: "k".into(),
        })
    }

    #[test]
    fn an_entry_is_not_served_at_or_after_its_tokens_expiry() {
        let cache = TokenCache::new(16);
        let key = digest("t1");
        cache.insert(key, token(1_000), 900);
        assert!(cache.get(&key, 999).is_some());
        assert!(cache.get(&key, 1_000).is_none());
        assert!(cache.get(&digest("t2"), 900).is_none());
        cache.insert(digest("late"), token(1_000), 1_000);
        assert!(cache.get(&digest("late"), 999).is_none());
        assert_eq!(log_name(&key).len(), 16);
    }
}

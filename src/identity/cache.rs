//! Verified tokens, so a token presented again is not verified again. Only what the
//! signature and claims establish is kept ([`VerifiedToken`]); the directory (groups,
//! disabled accounts) is applied at every review, so a reload takes effect at once. An entry
//! expires with its token, and the cache is bounded in bytes. An entry is served only for the
//! generation of signing keys that verified it, so a key no longer published stops working
//! whatever read of the keys changed them; older entries are left to expire or be evicted.
//!
//! The key is the SHA-256 of the token's signature segment, and an entry keeps the signed
//! part (`header.payload`) it was verified for, compared in full on every hit: a hit needs
//! the same signature and the same signed bytes, that is the same token. Hashing 342 bytes
//! instead of a 2 KB token is most of a hit's cost saved, and the cache never holds a usable
//! token (no signature is kept).

use super::token::VerifiedToken;
use moka::sync::Cache;
use std::sync::Arc;
use std::time::Duration;

/// SHA-256 of a token's signature segment: the cache key and, shortened, the token's name in
/// logs.
pub type TokenDigest = [u8; 32];

/// The signed part and the signature of a compact token (the whole text and nothing when it
/// has no `.`).
fn split(token: &str) -> (&str, &str) {
    token.rsplit_once('.').unwrap_or((token, ""))
}

pub fn digest(token: &str) -> TokenDigest {
    let (_, signature) = split(token);
    let hash = ring::digest::digest(&ring::digest::SHA256, signature.as_bytes());
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
    /// `header.payload` of the token verified.
    signed: Arc<str>,
    token: Arc<VerifiedToken>,
    /// Generation of the key set that verified it ([`crate::identity::KeySet::generation`]).
    keys: u64,
    ttl: Duration,
}

impl Entry {
    /// About what the entry holds: the signed part, the user's strings and the overhead.
    fn bytes(&self) -> usize {
        let t = &self.token;
        let groups = match &t.groups {
            super::token::TokenGroups::Listed(groups) => groups.iter().map(|g| g.len() + 24).sum(),
            _ => 0,
        };
        let audiences: usize = t.audiences.iter().map(|a| a.len() + 24).sum();
        self.signed.len() + t.username.len() + t.oid.len() + groups + audiences + ENTRY_OVERHEAD
    }
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

/// Bytes an entry is counted for besides its signed part.
const ENTRY_OVERHEAD: usize = 512;

/// A bounded cache of verified tokens.
#[derive(Clone)]
pub struct TokenCache {
    entries: Cache<TokenDigest, Entry>,
}

impl TokenCache {
    /// A cache holding at most about `max_bytes`.
    pub fn new(max_bytes: u64) -> TokenCache {
        TokenCache {
            entries: Cache::builder()
                .max_capacity(max_bytes)
                .weigher(|_, entry: &Entry| u32::try_from(entry.bytes()).unwrap_or(u32::MAX))
                .expire_after(UntilExpiry)
                .build(),
        }
    }

    /// The verified token, if this very token is cached, was verified by the key set of
    /// generation `keys` and is still valid at `now`.
    pub fn get(
        &self,
        token: &str,
        digest: &TokenDigest,
        keys: u64,
        now: u64,
    ) -> Option<Arc<VerifiedToken>> {
        let entry = self.entries.get(digest)?;
        let (signed, _) = split(token);
        (now < entry.token.valid_until && entry.keys == keys && *entry.signed == *signed)
            .then_some(entry.token)
    }

    /// Keeps a token verified by the key set of generation `keys` until it expires.
    pub fn insert(
        &self,
        token: &str,
        digest: TokenDigest,
        verified: Arc<VerifiedToken>,
        keys: u64,
        now: u64,
    ) {
        let ttl = Duration::from_secs(verified.valid_until.saturating_sub(now));
        if !ttl.is_zero() {
            let (signed, _) = split(token);
            self.entries.insert(
                digest,
                Entry {
                    signed: Arc::from(signed),
                    token: verified,
                    keys,
                    ttl,
                },
            );
        }
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
        })
    }

    #[test]
    fn an_entry_is_not_served_at_or_after_its_tokens_expiry() {
        let cache = TokenCache::new(1 << 20);
        let t1 = "h.p.s1";
        cache.insert(t1, digest(t1), token(1_000), 0, 900);
        assert!(cache.get(t1, &digest(t1), 0, 999).is_some());
        assert!(cache.get(t1, &digest(t1), 0, 1_000).is_none());
        assert!(cache.get("h.p.s2", &digest("h.p.s2"), 0, 900).is_none());
        let late = "h.p.late";
        cache.insert(late, digest(late), token(1_000), 0, 1_000);
        assert!(cache.get(late, &digest(late), 0, 999).is_none());
        assert_eq!(log_name(&digest(t1)).len(), 16);
    }

    #[test]
    fn a_hit_needs_the_same_signed_part_as_well_as_the_same_signature() {
        let cache = TokenCache::new(1 << 20);
        let real = "eyJhbGciOiJSUzI1NiJ9.eyJvaWQiOiJhIn0.c2lnbmF0dXJl";
        cache.insert(real, digest(real), token(1_000), 0, 900);
        // The real signature on another payload: same key, not the same token.
        let forged = "eyJhbGciOiJSUzI1NiJ9.eyJvaWQiOiJiIn0.c2lnbmF0dXJl";
        assert_eq!(digest(real), digest(forged));
        assert!(cache.get(forged, &digest(forged), 0, 950).is_none());
        assert!(cache.get(real, &digest(real), 0, 950).is_some());
        // Verified by keys no longer in use: not served.
        assert!(cache.get(real, &digest(real), 1, 950).is_none());
    }
}

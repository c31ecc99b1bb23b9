//! Prefilters: one bit per hash bucket of the keys a policy names. A token carries up to 200
//! groups and the policy names few of them; a clear bit turns a group away with one load,
//! before its whole text is hashed and looked up. A set bit only means "look it up".

pub use crate::model::name_hash::{guid_hash, mix, name_hash};

/// A bit per bucket, 16 buckets per key (at least `min_buckets`), indexed by the top bits of
/// a 64-bit hash.
#[derive(Debug, Clone, Default)]
pub struct BitFilter {
    bits: Vec<u64>,
    /// `64 - log2(bucket count)`.
    shift: u32,
}

impl BitFilter {
    pub fn new(hashes: impl ExactSizeIterator<Item = u64>, min_buckets: usize) -> Self {
        let buckets = (hashes.len() * 16)
            .max(min_buckets)
            .max(64)
            .next_power_of_two();
        let mut filter = BitFilter {
            bits: vec![0; buckets / 64],
            shift: 64 - buckets.trailing_zeros(),
        };
        for hash in hashes {
            let bit = filter.bucket(hash);
            if let Some(w) = filter.bits.get_mut(bit / 64) {
                *w |= 1 << (bit % 64);
            }
        }
        filter
    }

    #[inline]
    fn bucket(&self, hash: u64) -> usize {
        // `shift` is at most 58 (`new` makes 64 buckets or more) and 0 for the default filter,
        // which has no bits.
        (hash >> self.shift) as usize
    }

    /// Whether a key with this hash may be in the set (never `false` for one that is).
    #[inline]
    pub fn may_contain(&self, hash: u64) -> bool {
        let bit = self.bucket(hash);
        self.bits
            .get(bit / 64)
            .is_some_and(|w| w & (1 << (bit % 64)) != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_inserted_hash_may_be_contained_and_most_others_not() {
        let inserted: Vec<u64> = (0..100u64).map(|i| mix(i + 1)).collect();
        let filter = BitFilter::new(inserted.iter().copied(), 1024);
        assert!(inserted.iter().all(|h| filter.may_contain(*h)));
        let false_positives = (1000..11_000u64)
            .filter(|i| filter.may_contain(mix(*i)))
            .count();
        assert!(false_positives < 1_000, "{false_positives} of 10,000");
        assert!(!BitFilter::default().may_contain(mix(1)));
    }
}

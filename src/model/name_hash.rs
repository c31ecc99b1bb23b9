//! The prefilter hash of a name: object ids and group names, from requests and policy alike.
//! Requests carry each group's hash from decoding on (see [`super::request::Groups`]); the
//! policy's prefilters ([`crate::policy::filter`]) are built with the same function.

/// The prefilter hash of a name (an object id or any group name), shared by the Azure
/// principal filter and the Kubernetes RBAC group filter so each group of a request is
/// hashed once. An object id's text is three fixed loads: its first and last groups (random
/// in Entra ids, and where test ids differ) folded to lower case (`| 0x20` is a no-op for
/// `0-9`, `a-f` and `-`, and lower-cases `A-F`); other names, their first and last eight
/// bytes and their length.
#[inline]
pub fn name_hash(name: &[u8]) -> u64 {
    if let Ok(guid) = <&[u8; 36]>::try_from(name) {
        return guid_hash(guid);
    }
    let head = name.first_chunk::<8>().map_or_else(
        || {
            let mut padded = [0u8; 8];
            if let Some(dst) = padded.get_mut(..name.len()) {
                dst.copy_from_slice(name);
            }
            u64::from_le_bytes(padded)
        },
        |c| u64::from_le_bytes(*c),
    );
    let tail = name.last_chunk::<8>().map_or(0, |c| u64::from_le_bytes(*c));
    mix(head ^ tail.rotate_left(32) ^ name.len() as u64)
}

/// [`name_hash`] of a 36-byte object id text.
#[inline]
pub fn guid_hash(text: &[u8; 36]) -> u64 {
    const FOLD: u64 = 0x2020_2020_2020_2020;
    let (words, tail) = text.as_chunks::<8>();
    let word = |i: usize| words.get(i).map_or(0, |w| u64::from_le_bytes(*w) | FOLD);
    let tail = tail
        .first_chunk::<4>()
        .map_or(0, |t| u64::from(u32::from_le_bytes(*t)) | (FOLD >> 32));
    mix(word(0) ^ word(3).rotate_left(32) ^ tail)
}

/// Multiplicative mixing: the top bits depend on every input bit.
#[inline]
pub fn mix(x: u64) -> u64 {
    x.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

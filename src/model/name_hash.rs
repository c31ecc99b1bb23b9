//! The prefilter hash of a name: object ids and group names, from requests and policy alike.
//! Requests carry each group's hash from decoding on (see [`super::request::Groups`]); the
//! policy's prefilters ([`crate::policy::filter`]) are built with the same function. Also the
//! cheap check for an object id's canonical text, which every Azure decision makes.

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

/// Whether two object id texts are equal with bit `0x20` set in every byte, a word at a time:
/// implied by case-insensitive equality, so a `false` settles it.
#[inline]
pub fn folded_eq(a: &[u8; 36], b: &[u8; 36]) -> bool {
    const FOLD: u64 = 0x2020_2020_2020_2020;
    let ((a_words, a_tail), (b_words, b_tail)) = (a.as_chunks::<8>(), b.as_chunks::<8>());
    let words = a_words
        .iter()
        .zip(b_words)
        .all(|(x, y)| u64::from_le_bytes(*x) | FOLD == u64::from_le_bytes(*y) | FOLD);
    words && a_tail.iter().zip(b_tail).all(|(x, y)| x | 0x20 == y | 0x20)
}

/// Whether two short texts are equal, compared a word at a time in line. `==` on slices
/// calls the C library's `memcmp`, whose call and length dispatch cost more than comparing
/// the few words of a verb, a resource name or an object id (`perf`: 3 % of the server's
/// CPU in `memcmp`, from these comparisons).
#[inline]
pub fn short_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let ((a_words, a_tail), (b_words, b_tail)) = (a.as_chunks::<8>(), b.as_chunks::<8>());
    a_words
        .iter()
        .zip(b_words)
        .all(|(x, y)| u64::from_ne_bytes(*x) == u64::from_ne_bytes(*y))
        && a_tail.iter().zip(b_tail).all(|(x, y)| x == y)
}

/// Multiplicative mixing: the top bits depend on every input bit.
#[inline]
pub fn mix(x: u64) -> u64 {
    x.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Whether `text` is an object id in canonical form: 36 bytes, hyphens at 8, 13, 18 and 23,
/// hex digits elsewhere (either case). Every such text is a GUID `uuid` parses; this is the
/// form Entra ID sends, checked on every request without `uuid`'s general parser (a tenth
/// of a decision). Other spellings go to `uuid`.
#[inline]
pub fn is_hyphenated_guid(text: &[u8]) -> bool {
    let Ok(text) = <&[u8; 36]>::try_from(text) else {
        return false;
    };
    // Byte arithmetic with no branch and no early exit, so the loop compiles to vector
    // compares (16 bytes at a time).
    const HYPHEN: [u8; 36] = {
        let mut mask = [0u8; 36];
        mask[8] = 1;
        mask[13] = 1;
        mask[18] = 1;
        mask[23] = 1;
        mask
    };
    let mut ok = 1u8;
    for (&b, &hyphen) in text.iter().zip(&HYPHEN) {
        let digit = u8::from(b.wrapping_sub(b'0') < 10);
        let letter = u8::from((b | 0x20).wrapping_sub(b'a') < 6);
        let dash = u8::from(b == b'-');
        ok &= (hyphen & dash) | ((hyphen ^ 1) & (digit | letter));
    }
    ok == 1
}

/// The object id `text` names, if it is written as Entra ID writes object ids
/// ([`is_hyphenated_guid`]); other spellings of a GUID are not object ids here.
pub fn object_id(text: &str) -> Option<uuid::Uuid> {
    uuid::Uuid::try_parse(text)
        .ok()
        .filter(|_| is_hyphenated_guid(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::{is_hyphenated_guid, short_eq};
    use proptest::prelude::*;

    #[test]
    fn canonical_guids_only() {
        assert!(is_hyphenated_guid(b"3f2a6b1c-5d4e-4f70-8a9b-0c1d2e3f4a5b"));
        assert!(is_hyphenated_guid(b"3F2A6B1C-5D4E-4F70-8A9B-0C1D2E3F4A5B"));
        assert!(!is_hyphenated_guid(b"3f2a6b1c-5d4e-4f70-8a9b-0c1d2e3f4a5g"));
        assert!(!is_hyphenated_guid(b"3f2a6b1c5d4e-4f70-8a9b-0c1d2e3f4a5b-"));
        assert!(!is_hyphenated_guid(b" 3f2a6b1c-5d4e-4f70-8a9b-0c1d2e3f4a5"));
        assert!(!is_hyphenated_guid(b"3f2a6b1c5d4e4f708a9b0c1d2e3f4a5b"));
        assert!(!is_hyphenated_guid(b""));
    }

    proptest! {
        /// Accepts exactly the 36-byte texts `uuid` reads as a hyphenated GUID: mostly hex
        /// digits, hyphens mostly where they belong, and now and then a byte that is neither.
        #[test]
        fn agrees_with_uuid(
            chars in proptest::collection::vec(
                prop_oneof![20 => proptest::char::ranges(vec!['0'..='9', 'a'..='f', 'A'..='F'].into()),
                            1 => proptest::char::ranges(vec![':'..='@', 'G'..='G', '`'..='`', ' '..='/'].into())],
                36,
            ),
            hyphens in any::<[bool; 5]>(),
        ) {
            let mut text: Vec<u8> = chars.iter().map(|c| *c as u8).collect();
            for (at, put) in [8, 13, 18, 23].into_iter().zip(hyphens) {
                if put || hyphens[4] {
                    text[at] = b'-';
                }
            }
            let hyphenated = text.iter().enumerate().all(|(i, b)| {
                matches!(i, 8 | 13 | 18 | 23) == (*b == b'-')
            });
            let uuid_ok = uuid::Uuid::try_parse_ascii(&text).is_ok();
            prop_assert_eq!(is_hyphenated_guid(&text), uuid_ok && hyphenated);
        }

        /// Equal to `==` on every pair: texts of 0–40 bytes, the second one the first with
        /// at most one byte changed (anywhere: in a word or in the tail) or cut short.
        #[test]
        fn short_eq_is_slice_equality(
            a in proptest::collection::vec(any::<u8>(), 0..40),
            at in any::<proptest::sample::Index>(),
            change in any::<u8>(),
            cut in any::<bool>(),
        ) {
            let mut b = a.clone();
            if !b.is_empty() {
                let i = at.index(b.len());
                if cut { b.truncate(i) } else { b[i] ^= change }
            }
            prop_assert_eq!(short_eq(&a, &b), a == b);
            prop_assert!(short_eq(&a, &a));
        }

        #[test]
        fn real_guids_pass(bytes in any::<[u8; 16]>(), upper in any::<bool>()) {
            let id = uuid::Uuid::from_bytes(bytes).hyphenated().to_string();
            let id = if upper { id.to_ascii_uppercase() } else { id };
            prop_assert!(is_hyphenated_guid(id.as_bytes()));
        }
    }
}

//! An issuer's signing keys, read from a JSON Web Key Set (RFC 7517) as Entra's discovery
//! `jwks_uri` or an offline file gives it. Only keys usable for signature verification are
//! kept: RSA of at least 2048 bits and P-256 EC; the others are listed as skipped.

use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;

/// RSA keys shorter than this are refused (spec B4 step 4).
pub const MIN_RSA_BITS: usize = 2048;

/// What kind of verification a key supports: it must match the token's `alg` family, so a
/// public RSA key can never verify an HMAC (`alg` confusion).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Rsa,
    EcP256,
}

/// One usable key, with the issuers whose key set lists it.
#[derive(Clone)]
pub struct VerifyingKey {
    pub kind: KeyKind,
    pub key: DecodingKey,
    /// The public key's parameters (`n`/`e` or `x`/`y`): two entries with one `kid` are the
    /// same key only if these are equal.
    material: String,
    /// Issuers whose discovery listed this key; empty when the keys are not tied to an
    /// issuer (an offline JWKS file serves every configured issuer).
    pub issuers: Vec<String>,
}

impl VerifyingKey {
    /// Whether tokens of `issuer` may be verified with this key.
    pub fn serves(&self, issuer: &str) -> bool {
        self.issuers.is_empty() || self.issuers.iter().any(|i| i == issuer)
    }
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kind", &self.kind)
            .field("issuers", &self.issuers)
            .finish_non_exhaustive()
    }
}

/// Keys by `kid`. Two issuers may publish different keys under one `kid`: both are kept,
/// each tied to its issuers.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: HashMap<String, Vec<Arc<VerifyingKey>>>,
    /// Which set of the source this is: a verification is remembered only as long as the
    /// keys it used are the ones in use.
    generation: u64,
}

/// A JWKS document that cannot be used at all.
#[derive(Debug, thiserror::Error)]
pub enum KeySetError {
    #[error("not a JSON Web Key Set: {0}")]
    Malformed(String),
}

#[derive(Deserialize)]
struct Document {
    keys: Vec<serde_json::Value>,
}

impl KeySet {
    /// Reads a JWKS document, its keys tied to no issuer. Returns the usable keys and, for
    /// every key left out, why.
    pub fn from_jwks(bytes: &[u8]) -> Result<(KeySet, Vec<String>), KeySetError> {
        let document: Document =
            serde_json::from_slice(bytes).map_err(|e| KeySetError::Malformed(e.to_string()))?;
        let mut set = KeySet::default();
        let mut skipped = Vec::new();
        for (i, value) in document.keys.into_iter().enumerate() {
            match usable_key(value) {
                Ok((kid, key)) => set.add(kid, key),
                Err(why) => skipped.push(format!("keys[{i}]: {why}")),
            }
        }
        Ok((set, skipped))
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// This set as the successor of `previous`: its generation is the next one.
    pub fn succeeding(mut self, previous: &KeySet) -> KeySet {
        self.generation = previous.generation.wrapping_add(1);
        self
    }

    /// Ties every key to `issuer` (the issuer whose discovery gave this set).
    pub fn published_by(mut self, issuer: &str) -> KeySet {
        for entries in self.keys.values_mut() {
            for key in entries.iter_mut() {
                Arc::make_mut(key).issuers = vec![issuer.to_string()];
            }
        }
        self
    }

    fn add(&mut self, kid: String, key: VerifyingKey) {
        let entries = self.keys.entry(kid).or_default();
        match entries.iter_mut().find(|k| k.material == key.material) {
            // The same key from another issuer (Entra's v1 and v2 key sets): one entry
            // serving both.
            Some(same) => {
                let same = Arc::make_mut(same);
                if same.issuers.is_empty() || key.issuers.is_empty() {
                    same.issuers.clear();
                } else {
                    for issuer in key.issuers {
                        if !same.issuers.contains(&issuer) {
                            same.issuers.push(issuer);
                        }
                    }
                }
            }
            None => entries.push(Arc::new(key)),
        }
    }

    /// The keys published under this `kid`.
    pub fn get(&self, kid: &str) -> &[Arc<VerifyingKey>] {
        self.keys.get(kid).map_or(&[], Vec::as_slice)
    }

    /// Adds every key of `other`.
    pub fn extend(&mut self, other: &KeySet) {
        for (kid, entries) in &other.keys {
            for key in entries {
                self.add(kid.clone(), (**key).clone());
            }
        }
    }

    /// Keys held.
    pub fn len(&self) -> usize {
        self.keys.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The `kid`s held, sorted (for logs).
    pub fn kids(&self) -> Vec<&str> {
        let mut kids: Vec<&str> = self.keys.keys().map(String::as_str).collect();
        kids.sort_unstable();
        kids
    }

    /// Everything that decides what the set verifies, in a stable order: two sets with the
    /// same fingerprint accept the same tokens.
    pub fn fingerprint(&self) -> Vec<(&str, &str, &[String])> {
        let mut all: Vec<(&str, &str, &[String])> = self
            .keys
            .iter()
            .flat_map(|(kid, entries)| {
                entries
                    .iter()
                    .map(move |k| (kid.as_str(), k.material.as_str(), k.issuers.as_slice()))
            })
            .collect();
        all.sort_unstable();
        all
    }
}

fn usable_key(value: serde_json::Value) -> Result<(String, VerifyingKey), String> {
    let jwk: Jwk = serde_json::from_value(value).map_err(|e| format!("not a key: {e}"))?;
    let kid = jwk
        .common
        .key_id
        .clone()
        .filter(|kid| !kid.is_empty())
        .ok_or("no `kid`")?;
    if let Some(usage) = &jwk.common.public_key_use
        && *usage != PublicKeyUse::Signature
    {
        return Err(format!("`{kid}` is not a signing key (`use` is not `sig`)"));
    }
    let (kind, material) = match &jwk.algorithm {
        AlgorithmParameters::RSA(rsa) => {
            let bits = modulus_bits(&rsa.n).ok_or_else(|| format!("`{kid}`: bad modulus"))?;
            if bits < MIN_RSA_BITS {
                return Err(format!(
                    "`{kid}`: RSA key of {bits} bits (at least {MIN_RSA_BITS})"
                ));
            }
            (KeyKind::Rsa, format!("{}.{}", rsa.n, rsa.e))
        }
        AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => {
            (KeyKind::EcP256, format!("{}.{}", ec.x, ec.y))
        }
        _ => return Err(format!("`{kid}`: neither an RSA nor a P-256 key")),
    };
    let key = DecodingKey::from_jwk(&jwk).map_err(|e| format!("`{kid}`: {e}"))?;
    Ok((
        kid,
        VerifyingKey {
            kind,
            key,
            material,
            issuers: Vec::new(),
        },
    ))
}

/// Bits of a base64url big-endian modulus, leading zero bytes not counted.
fn modulus_bits(n: &str) -> Option<usize> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(n.trim_end_matches('='))
        .ok()?;
    let first = bytes.iter().position(|b| *b != 0)?;
    let top = *bytes.get(first)?;
    Some((bytes.len() - first - 1) * 8 + (8 - top.leading_zeros() as usize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_rsa_keys_and_non_signing_keys_are_skipped() {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let n2048 = b64.encode([0xc1u8; 256]);
        let n1024 = b64.encode([0xc1u8; 128]);
        let jwks = serde_json::json!({"keys": [
            {"kty": "RSA", "kid": "big", "use": "sig", "n": n2048, "e": "AQAB"},
            {"kty": "RSA", "kid": "small", "n": n1024, "e": "AQAB"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": n2048, "e": "AQAB"},
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
            {"kty": "RSA", "n": n2048, "e": "AQAB"},
        ]});
        let (set, skipped) = KeySet::from_jwks(jwks.to_string().as_bytes()).unwrap();
        assert_eq!(set.kids(), vec!["big"]);
        assert_eq!(skipped.len(), 4, "{skipped:?}");
        assert!(skipped.iter().any(|s| s.contains("1024 bits")));
    }

    #[test]
    fn modulus_bits_ignore_leading_zeros() {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut n = vec![0u8; 1];
        n.extend([0x01u8; 256]);
        assert_eq!(modulus_bits(&b64.encode(&n)), Some(255 * 8 + 1));
        assert!(KeySet::from_jwks(b"{\"keys\": 3}").is_err());
    }
}

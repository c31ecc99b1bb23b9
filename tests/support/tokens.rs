//! Test tokens as `vectors/README.md` mints them: three RSA-2048 keys made by `openssl` for
//! the test run (`sg-test-k1`, `sg-test-k2` published in the JWKS, a third unpublished),
//! header and claims encoded as base64url JSON, signed with `jsonwebtoken`, then tampered
//! with as the case's `signing` says.

use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::Value;
use std::path::Path;
use std::sync::OnceLock;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// One RSA key pair.
pub struct TestKey {
    pub private_pem: Vec<u8>,
    /// SubjectPublicKeyInfo PEM (what `hs256-with-public-key` uses as the HMAC secret).
    pub public_pem: Vec<u8>,
    /// Modulus, base64url.
    pub n: String,
}

pub struct TestKeys {
    pub k1: TestKey,
    pub k2: TestKey,
    pub unpublished: TestKey,
}

/// The test run's keys (made once; RSA key generation takes a moment).
pub fn keys() -> &'static TestKeys {
    static KEYS: OnceLock<TestKeys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        TestKeys {
            k1: generate(dir.path(), "k1"),
            k2: generate(dir.path(), "k2"),
            unpublished: generate(dir.path(), "k3"),
        }
    })
}

/// Seconds since the epoch, as token times count.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Runs `openssl` with `args`: its standard output.
pub fn openssl(args: &[&str]) -> Vec<u8> {
    let out = std::process::Command::new("openssl")
        .args(args)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn generate(dir: &Path, name: &str) -> TestKey {
    let private = dir.join(format!("{name}.pem"));
    let private = private.to_str().unwrap();
    openssl(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        private,
    ]);
    let public_pem = openssl(&["pkey", "-in", private, "-pubout"]);
    let modulus =
        String::from_utf8(openssl(&["rsa", "-in", private, "-noout", "-modulus"])).unwrap();
    let hex = modulus.trim().strip_prefix("Modulus=").unwrap();
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    TestKey {
        private_pem: std::fs::read(private).unwrap(),
        public_pem,
        n: B64.encode(bytes),
    }
}

/// The issuer's JWKS: `sg-test-k1` and `sg-test-k2`, as Entra publishes keys.
pub fn jwks() -> Value {
    let k = keys();
    let entry = |kid: &str, key: &TestKey| serde_json::json!({"kty": "RSA", "use": "sig", "kid": kid, "x5t": kid, "n": key.n, "e": "AQAB"});
    serde_json::json!({"keys": [entry("sg-test-k1", &k.k1), entry("sg-test-k2", &k.k2)]})
}

fn published(kid: Option<&str>) -> &'static TestKey {
    match kid {
        Some("sg-test-k2") => &keys().k2,
        _ => &keys().k1,
    }
}

/// A token for a case's `header`, `claims` (after `inflate`) and `signing`.
pub fn mint(header: &Value, claims: &Value, inflate: Option<&Value>, signing: &str) -> String {
    let mut claims = claims.clone();
    if let Some(inflate) = inflate {
        let claim = inflate["claim"].as_str().unwrap();
        let length = inflate["length"].as_u64().unwrap() as usize;
        claims[claim] = Value::String("A".repeat(length));
    }
    let encode = |v: &Value| B64.encode(serde_json::to_vec(v).unwrap());
    let header_b64 = encode(header);
    let payload_b64 = encode(&claims);
    let signed = format!("{header_b64}.{payload_b64}");
    let kid = header.get("kid").and_then(Value::as_str);
    let alg = header.get("alg").and_then(Value::as_str).unwrap_or("RS256");
    let rsa_sign = |key: &TestKey, alg: &str| {
        let algorithm = match alg {
            "RS512" => Algorithm::RS512,
            "RS384" => Algorithm::RS384,
            "PS256" => Algorithm::PS256,
            _ => Algorithm::RS256,
        };
        let key = EncodingKey::from_rsa_pem(&key.private_pem).unwrap();
        jsonwebtoken::crypto::sign(signed.as_bytes(), &key, algorithm).unwrap()
    };
    match signing {
        "valid" => format!("{signed}.{}", rsa_sign(published(kid), alg)),
        "tampered-payload" => {
            let signature = rsa_sign(published(kid), alg);
            let mut tampered = claims.clone();
            tampered["tampered"] = Value::Bool(true);
            format!("{header_b64}.{}.{signature}", encode(&tampered))
        }
        "tampered-signature" => {
            let mut signature = B64.decode(rsa_sign(published(kid), alg)).unwrap();
            let last = signature.len() - 1;
            signature[last] ^= 1;
            format!("{signed}.{}", B64.encode(signature))
        }
        "alg-none" => format!("{signed}."),
        "hs256-with-public-key" => {
            let key = EncodingKey::from_secret(&published(kid).public_pem);
            let signature =
                jsonwebtoken::crypto::sign(signed.as_bytes(), &key, Algorithm::HS256).unwrap();
            format!("{signed}.{signature}")
        }
        "unknown-kid" | "wrong-key" => format!("{signed}.{}", rsa_sign(&keys().unpublished, alg)),
        other => panic!("unknown signing `{other}`"),
    }
}

/// Moves every time claim (`exp`, `nbf`, `iat`) by `delta` seconds, so a case written for
/// its `now` can run against the system clock.
pub fn shift_times(claims: &Value, delta: i64) -> Value {
    let mut claims = claims.clone();
    for key in ["exp", "nbf", "iat"] {
        if let Some(t) = claims.get(key).and_then(Value::as_i64) {
            claims[key] = Value::from(t + delta);
        }
    }
    claims
}

/// A TokenReview body as kube-apiserver sends it (v1, no `spec.audiences`).
pub fn token_review(token: &str) -> Value {
    serde_json::json!({
        "kind": "TokenReview",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"creationTimestamp": null},
        "spec": {"token": token},
        "status": {"user": {}}
    })
}

//! TokenReview costs, without HTTP: a token seen before (SHA-256, cache lookup, the
//! directory applied, the answer encoded), a token verified from scratch, and the JWT crate's
//! own RS256 verification of the same token, which the uncached figure is compared with.
//! Keys are RSA-2048 made by `openssl` for the run, tokens minted as the tests mint them.

mod support;
#[path = "../tests/support/tokens.rs"]
#[allow(dead_code)]
mod tokens;

use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::Algorithm;
use scopegate::identity::cache::TokenCache;
use scopegate::identity::{self, GroupsFrom, KeySet, TokenRules};
use scopegate::sar::token_review;
use scopegate::server::authenticate::Authn;
use scopegate::server::issuer_keys::{IssuerKeys, KeySource};
use std::hint::black_box;
use std::sync::Arc;

const ISSUER: &str = "https://sts.windows.net/11111111-2222-4333-8444-555555555555/";
const AUDIENCE: &str = "6dae42f8-4368-4678-94ff-3960e28e3630";
const NOW: u64 = 1_767_225_600;

/// A typical Entra v1 access token with 20 groups, signed by the tests' `sg-test-k1`.
fn entra_token() -> String {
    let groups: Vec<String> = (0..20)
        .map(|i| format!("bbbbbbbb-0000-4000-8000-{i:012}"))
        .collect();
    let claims = serde_json::json!({
        "aud": AUDIENCE, "iss": ISSUER, "iat": NOW - 60, "nbf": NOW - 60, "exp": NOW + 3600,
        "oid": "aaaaaaaa-0000-4000-8000-000000000001", "tid": "11111111-2222-4333-8444-555555555555",
        "upn": "alice@contoso.com", "unique_name": "alice@contoso.com", "groups": groups, "ver": "1.0",
        "appid": "80faf920-1908-4b52-b5ef-a8e7bedfc67a", "scp": "user.read",
    });
    let header =
        serde_json::json!({"typ": "JWT", "alg": "RS256", "kid": "sg-test-k1", "x5t": "sg-test-k1"});
    tokens::mint(&header, &claims, None, "valid")
}

fn identity(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("dir");
    let token = entra_token();
    let jwks = tokens::jwks().to_string().into_bytes();
    let rules = TokenRules {
        issuers: vec![identity::Issuer::new(ISSUER)],
        audiences: vec![AUDIENCE.to_string()],
        ..TokenRules::default()
    };
    let (keys, _) = KeySet::from_jwks(&jwks).expect("jwks");
    identity::verify(&token, &keys, &rules, NOW).expect("the token verifies");

    let jwks_file = dir.path().join("jwks.json");
    std::fs::write(&jwks_file, &jwks).expect("write");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let issuer_keys = IssuerKeys::new(KeySource::File(jwks_file), None).expect("keys");
    runtime.block_on(issuer_keys.refresh()).expect("read keys");
    let digest = scopegate::identity::cache::digest(&token);
    let authn = Authn {
        rules: rules.clone(),
        keys: Arc::new(issuer_keys),
        cache: TokenCache::new(64 << 20),
        groups_from: GroupsFrom::Token,
    };
    runtime
        .block_on(authn.verify(&token, &digest, NOW))
        .expect("verified");

    let mut group = c.benchmark_group("token_review");
    group.bench_function("cached_token", |b| {
        b.iter(|| {
            let token = black_box(&token);
            let digest = scopegate::identity::cache::digest(token);
            let verified = authn
                .verify_with_keys_held(token, &digest, NOW)
                .expect("cached");
            let user = identity::resolve(&verified, None, GroupsFrom::Token).expect("user");
            token_review::encode_authenticated(token_review::AuthnVersion::V1, &user, &[])
        })
    });
    group.bench_function("verify_uncached", |b| {
        b.iter(|| identity::verify(black_box(&token), &keys, &rules, NOW).expect("valid"))
    });
    let (message, signature) = token.rsplit_once('.').expect("three parts");
    let key = keys.get("sg-test-k1").first().expect("sg-test-k1");
    group.bench_function("jsonwebtoken_crypto_verify", |b| {
        b.iter(|| {
            jsonwebtoken::crypto::verify(
                black_box(signature),
                message.as_bytes(),
                &key.key,
                Algorithm::RS256,
            )
            .expect("verifies")
        })
    });
    group.finish();
}

criterion_group! { name = benches; config = support::criterion(); targets = identity }
criterion_main!(benches);

//! A decision counted in instructions, for callgrind (repeatable on a noisy machine):
//!
//! ```text
//! cargo bench -F bench-support --bench instructions --no-run
//! valgrind --tool=callgrind --toggle-collect='scopegate::engine::authorize*' target/release/deps/instructions-<hash> [CASE] [GROUPS]
//! ```
//! Instructions per decision = total Ir / 1000 (the decision runs 1000 times). `sar-allow 20`
//! runs the whole round trip from request bytes instead (toggle `instructions::sar_roundtrip`).

mod support;

use scopegate::engine;
use scopegate::synthetic::{self, Shape};
use std::hint::black_box;

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| !a.starts_with('-'));
    let case = args.next().unwrap_or_else(|| "allow".into());
    let groups: usize = args.next().and_then(|g| g.parse().ok()).unwrap_or(10);
    // Built-in roles, the synthetic cluster, no match = deny; the server's allocator.
    let roles = support::builtin_roles();
    let options = support::options();
    let (snapshot, generated) = scopegate::synthetic_snapshot(
        Shape {
            assignments: 100_000,
            groups_per_user: groups,
            // Side by side with Kubernetes RBAC, as deployed: no-match requests consult it.
            rbac_bindings: 100,
        },
        &roles,
        &support::index(),
    );
    if let Some(case) = case.strip_prefix("sar-") {
        // The whole round trip from request bytes: decode -> decide -> encode.
        let review = serde_json::json!({
            "kind": "SubjectAccessReview", "apiVersion": "authorization.k8s.io/v1", "metadata": {},
            "spec": synthetic::request(case, &generated.user_groups), "status": {"allowed": false},
        });
        let body = serde_json::to_vec(&review).expect("JSON");
        let mut bytes = 0;
        for _ in 0..1000 {
            bytes += sar_roundtrip(&snapshot, &options, black_box(&body)).len();
        }
        println!("sar-{case} with {groups} groups: {bytes} bytes answered");
        return;
    }
    let request = synthetic::request(&case, &generated.user_groups);
    let mut allowed = 0;
    for _ in 0..1000 {
        allowed += usize::from(
            engine::authorize(black_box(&snapshot), &options, black_box(&request)).allowed(),
        );
    }
    println!("{case} with {groups} groups: {allowed} of 1000 allowed");
}

/// One SubjectAccessReview from bytes to answer bytes (callgrind: `--toggle-collect='instructions::sar_roundtrip'`).
#[inline(never)]
fn sar_roundtrip(
    snapshot: &std::sync::Arc<scopegate::policy::Snapshot>,
    options: &engine::EngineOptions,
    body: &[u8],
) -> Vec<u8> {
    let review = scopegate::sar::decode(body).expect("valid review");
    let decision = engine::authorize(snapshot, options, &review.request);
    scopegate::sar::encode_response(review.api_version, &decision)
}

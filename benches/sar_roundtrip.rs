//! A full SubjectAccessReview in process: bytes as kube-apiserver sends them -> decode ->
//! decide -> encode, with 5 to 200 groups, on a 100k-assignment policy.

mod support;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use scopegate::synthetic::{self, Shape};
use scopegate::{engine, sar};
use std::hint::black_box;

fn roundtrip(c: &mut Criterion) {
    let options = support::options();
    let (snapshot, generated) = scopegate::synthetic_snapshot(
        Shape {
            assignments: 100_000,
            groups_per_user: 200,
            rbac_bindings: 100,
        },
        &support::builtin_roles(),
        &options,
    );
    let mut group = c.benchmark_group("sar_roundtrip");
    for g in [5usize, 20, 100, 200] {
        let groups: Vec<String> = generated.user_groups.iter().take(g).cloned().collect();
        for case in ["allow", "deny", "no_match"] {
            let review = serde_json::json!({
                "kind": "SubjectAccessReview", "apiVersion": "authorization.k8s.io/v1", "metadata": {},
                "spec": synthetic::request(case, &groups), "status": {"allowed": false},
            });
            let body = serde_json::to_vec(&review).expect("JSON");
            group.bench_with_input(BenchmarkId::new(case, format!("{g}g")), &body, |b, body| {
                b.iter(|| {
                    let review = sar::decode(black_box(body)).expect("valid review");
                    let decision = engine::authorize(&snapshot, &options, &review.request);
                    sar::encode_response(review.api_version, &decision)
                })
            });
        }
    }
    group.finish();
}

criterion_group! { name = benches; config = support::criterion(); targets = roundtrip }
criterion_main!(benches);

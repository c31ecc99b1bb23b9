//! A full SubjectAccessReview in process: bytes as kube-apiserver sends them -> decode ->
//! decide -> encode, with 5 to 200 groups, on a 100k-assignment policy; and the load test's
//! mix of group counts and answers, one body after another.

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
        &support::index(),
    );
    let body = |case: &str, g: usize| {
        let groups: Vec<String> = generated.user_groups.iter().take(g).cloned().collect();
        let review = serde_json::json!({
            "kind": "SubjectAccessReview", "apiVersion": "authorization.k8s.io/v1", "metadata": {},
            "spec": synthetic::request(case, &groups), "status": {"allowed": false},
        });
        serde_json::to_vec(&review).expect("JSON")
    };
    let roundtrip = |body: &[u8]| {
        let review = sar::decode(black_box(body)).expect("valid review");
        let decision = engine::authorize(&snapshot, &options, &review.request);
        sar::encode_response(review.api_version, &decision)
    };
    let mut group = c.benchmark_group("sar_roundtrip");
    for g in [5usize, 20, 100, 200] {
        for case in ["allow", "deny", "no_match"] {
            group.bench_with_input(
                BenchmarkId::new(case, format!("{g}g")),
                &body(case, g),
                |b, body| b.iter(|| roundtrip(body)),
            );
        }
    }
    // The load test's mix (`benches/load`: 1–201 groups, median 29; allow, deny and no
    // match), one body after another: the mean cost per request the server's handler pays.
    let mix: Vec<Vec<u8>> = [
        1usize, 3, 7, 9, 12, 18, 23, 29, 33, 45, 60, 90, 109, 150, 193,
    ]
    .into_iter()
    .flat_map(|g| ["allow", "deny", "no_match"].map(|case| body(case, g)))
    .collect();
    group.bench_function("load_mix", |b| {
        let mut next = mix.iter().cycle();
        b.iter(|| roundtrip(next.next().map_or(&[][..], Vec::as_slice)))
    });
    group.finish();
}

criterion_group! { name = benches; config = support::criterion(); targets = roundtrip }
criterion_main!(benches);

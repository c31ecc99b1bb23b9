//! Does a decision cache pay? A hit costs building the key (every input the engine reads,
//! canonicalised) and a moka lookup; compare with deciding again (`decide` bench).

mod support;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use scopegate::cache::{DecisionCache, DecisionKey};
use scopegate::engine;
use scopegate::synthetic::{self, Shape};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

fn cache(c: &mut Criterion) {
    let options = support::options();
    let (snapshot, generated) = scopegate::synthetic_snapshot(
        Shape {
            assignments: 100_000,
            groups_per_user: 200,
            rbac_bindings: 0,
        },
        &support::builtin_roles(),
        &support::index(),
    );
    let mut group = c.benchmark_group("decision_cache");
    for g in [10usize, 200] {
        let groups: Vec<String> = generated.user_groups.iter().take(g).cloned().collect();
        let request = synthetic::request("allow", &groups);
        let cache = DecisionCache::new(10_000, 64 << 20, Duration::from_secs(60));
        let key = DecisionKey::new(1, &request).expect("key");
        cache.insert(
            key,
            Arc::new(engine::authorize(&snapshot, &options, &request)),
        );
        group.bench_with_input(
            BenchmarkId::new("hit", format!("{g}g")),
            &request,
            |b, r| b.iter(|| cache.get(&DecisionKey::new(1, black_box(r)).expect("key"))),
        );
        group.bench_with_input(
            BenchmarkId::new("decide", format!("{g}g")),
            &request,
            |b, r| b.iter(|| engine::authorize(&snapshot, &options, black_box(r))),
        );
    }
    group.finish();
}

criterion_group! { name = benches; config = support::criterion(); targets = cache }
criterion_main!(benches);

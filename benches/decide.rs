//! Engine-only decision cost (`engine::authorize`) on synthetic policy: Azure allow, deny and
//! no-match at 1k to 1M assignments and 1 to 200 groups, and Kubernetes RBAC at 100 to 100k
//! bindings. Cost must follow the requester's principals and scope depth, not the policy size.

mod support;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use scopegate::engine::{self, EngineOptions};
use scopegate::model::Verdict;
use scopegate::policy::Snapshot;
use scopegate::synthetic::{self, Shape};
use std::hint::black_box;

fn expect(
    snapshot: &std::sync::Arc<Snapshot>,
    options: &EngineOptions,
    case: &str,
    groups: &[String],
) {
    let want = match case {
        "allow" | "rbac_allow" => Verdict::Allow,
        _ => Verdict::Deny,
    };
    let got = engine::authorize(snapshot, options, &synthetic::request(case, groups)).verdict;
    assert_eq!(
        got, want,
        "{case}: the bench must measure the case it names"
    );
}

fn azure(c: &mut Criterion) {
    let roles = support::builtin_roles();
    let options = support::options();
    // SCOPEGATE_BENCH_SIZES=1000,1000000 picks the policy sizes (default 1k, 10k, 100k).
    let sizes: Vec<usize> = std::env::var("SCOPEGATE_BENCH_SIZES")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1_000, 10_000, 100_000]);
    let mut group = c.benchmark_group("decide/azure");
    for &n in &sizes {
        let (snapshot, generated) = scopegate::synthetic_snapshot(
            Shape {
                assignments: n,
                groups_per_user: 200,
                // Side by side with Kubernetes RBAC, as deployed: no-match requests consult it.
                rbac_bindings: 100,
            },
            &roles,
            &support::index(),
        );
        for g in [1usize, 10, 50, 200] {
            if n != 100_000 && g != 10 {
                continue;
            }
            let groups: Vec<String> = generated
                .user_groups
                .iter()
                .take(g)
                .chain(generated.user_groups.last())
                .cloned()
                .collect();
            for case in ["allow", "deny", "no_match"] {
                expect(&snapshot, &options, case, &groups);
                let request = synthetic::request(case, &groups);
                group.bench_with_input(
                    BenchmarkId::new(case, format!("{n}a/{g}g")),
                    &request,
                    |b, r| {
                        b.iter(|| engine::authorize(black_box(&snapshot), &options, black_box(r)))
                    },
                );
            }
        }
    }
    group.finish();
}

fn rbac(c: &mut Criterion) {
    let roles = support::builtin_roles();
    let options = support::options();
    let mut group = c.benchmark_group("decide/rbac");
    for n in [100usize, 10_000, 100_000] {
        let (snapshot, generated) = scopegate::synthetic_snapshot(
            Shape {
                assignments: 1_000,
                groups_per_user: 10,
                rbac_bindings: n,
            },
            &roles,
            &support::index(),
        );
        let groups = generated.user_groups.clone();
        expect(&snapshot, &options, "rbac_allow", &groups);
        let request = synthetic::request("rbac_allow", &groups);
        group.bench_with_input(
            BenchmarkId::new("allow", format!("{n}b")),
            &request,
            |b, r| b.iter(|| engine::authorize(black_box(&snapshot), &options, black_box(r))),
        );
    }
    group.finish();
}

criterion_group! { name = benches; config = support::criterion(); targets = azure, rbac }
criterion_main!(benches);

//! Reload cost: read policy files from disk, parse, validate and index (what a hot reload
//! does off the request path), at 1k to 100k assignments and with 10k RBAC bindings.

mod support;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use scopegate::synthetic::{self, Shape};
use std::time::Duration;

/// Writes a generated set as policy files, one per kind, the way operators keep them.
pub fn write_policy(dir: &std::path::Path, shape: Shape) {
    let g = synthetic::generate(shape, &support::builtin_roles());
    for (name, list) in [
        ("roles.json", &g.role_definitions),
        ("assignments.json", &g.role_assignments),
        ("denies.json", &g.deny_assignments),
        ("management-groups.json", &g.management_groups),
        ("rbac.json", &g.rbac),
    ] {
        std::fs::write(dir.join(name), serde_json::to_vec(list).expect("JSON"))
            .expect("write policy");
    }
}

fn index_build(c: &mut Criterion) {
    let options = support::index();
    let mut group = c.benchmark_group("index_build");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    for (n, bindings) in [
        (1_000usize, 100usize),
        (10_000, 100),
        (100_000, 100),
        (1_000, 10_000),
    ] {
        let dir = tempfile::tempdir().expect("temp dir");
        write_policy(
            dir.path(),
            Shape {
                assignments: n,
                groups_per_user: 10,
                rbac_bindings: bindings,
            },
        );
        let paths = vec![dir.path().to_path_buf()];
        group.bench_function(
            BenchmarkId::from_parameter(format!("{n}a/{bindings}b")),
            |b| {
                b.iter(|| {
                    scopegate::load_snapshot(&paths, None, &options, 1).expect("policy loads")
                })
            },
        );
    }
    group.finish();
}

criterion_group! { name = benches; config = support::criterion(); targets = index_build }
criterion_main!(benches);

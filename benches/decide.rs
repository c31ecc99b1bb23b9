//! Engine-only decision cost on the example policies (allow, deny, no match).

use criterion::{Criterion, criterion_group, criterion_main};
use scopegate::engine::{self, EngineOptions};
use scopegate::model::{AccessRequest, ResourceAttributes, Scope};
use std::hint::black_box;
use std::path::PathBuf;

const CLUSTER: &str = "/subscriptions/3f2a6b1c-5d4e-4f70-8a9b-0c1d2e3f4a5b/resourceGroups/rg-platform/providers/Microsoft.ContainerService/managedClusters/aks-prod";

fn request(verb: &str, resource: &str, namespace: &str) -> AccessRequest {
    let mut r = AccessRequest {
        user: "alice@contoso.com".into(),
        groups: vec![
            "6f0b7e4a-1c2d-4e5f-8a9b-000000000f1d".into(),
            "system:authenticated".into(),
        ],
        resource_attributes: Some(ResourceAttributes {
            verb: verb.into(),
            resource: resource.into(),
            namespace: namespace.into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    r.extra.insert(
        "oid".into(),
        vec!["11111111-2222-4333-8444-555555555555".into()],
    );
    r
}

fn bench(c: &mut Criterion) {
    let options = EngineOptions {
        cluster_resource_id: Some(Scope::parse(CLUSTER).expect("cluster id")),
        ..EngineOptions::default()
    };
    let policies = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("policies");
    let snapshot = scopegate::load_snapshot(&[policies], None, &options, 1)
        .expect("example policies load")
        .snapshot;
    let mut group = c.benchmark_group("decide/example");
    for (name, req) in [
        ("allow", request("list", "pods", "finance-app")),
        ("deny", request("get", "secrets", "finance-app")),
        ("no_match", request("list", "pods", "payments")),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| engine::authorize(black_box(&snapshot), &options, black_box(&req)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

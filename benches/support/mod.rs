//! Shared bench setup: the built-in roles, engine options for the synthetic cluster, and
//! criterion settings sized for a 2-core machine.
#![allow(dead_code)]

use criterion::Criterion;
use scopegate::engine::EngineOptions;
use scopegate::model::Scope;
use scopegate::policy::IndexOptions;
use std::time::Duration;

/// The allocator the server binary uses, so benches measure what ships.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub fn builtin_roles() -> serde_json::Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("policies/azure/aks-builtin-roles.json");
    serde_json::from_slice(&std::fs::read(path).expect("built-in roles")).expect("JSON")
}

/// What the synthetic policy is indexed for: the synthetic cluster.
pub fn index() -> IndexOptions {
    IndexOptions::for_cluster(Scope::parse(scopegate::synthetic::CLUSTER).expect("cluster id"))
}

/// Decision options: answer `deny` when nothing grants.
pub fn options() -> EngineOptions {
    EngineOptions {
        no_match: scopegate::engine::NoMatch::Deny,
        ..EngineOptions::default()
    }
}

/// Short runs: many parameter points on a noisy 2-core machine; compare ratios, quote medians.
pub fn criterion() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
        .configure_from_args()
}

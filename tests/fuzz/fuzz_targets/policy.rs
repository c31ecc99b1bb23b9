//! A policy file, arbitrary: parsing it as JSON (whole and element by element) and as YAML
//! never panics; whatever parses is validated and indexed without panicking, and the result
//! decides the sample requests as the independent reference evaluator
//! (`tests/reference`) does: verdict, source and deciding id.
#![no_main]

#[path = "../../reference/mod.rs"]
mod reference;

use libfuzzer_sys::fuzz_target;
use scopegate::engine::{self, EngineOptions};
use scopegate::policy::IndexOptions;
use scopegate::model::{AccessRequest, Scope};
use scopegate::policy::parse::{self, Format};
use scopegate::policy::schema::RoleAssignment;
use scopegate::policy::{PolicySet, Snapshot};
use std::sync::{Arc, LazyLock};

const CLUSTER: &str = "/subscriptions/3f2a6b1c-5d4e-4f70-8a9b-0c1d2e3f4a5b/resourceGroups/rg-platform/providers/Microsoft.ContainerService/managedClusters/aks-prod";

static INDEX: LazyLock<IndexOptions> =
    LazyLock::new(|| IndexOptions::for_cluster(Scope::parse(CLUSTER).expect("cluster id parses")));
static OPTIONS: LazyLock<EngineOptions> = LazyLock::new(EngineOptions::default);

/// The request bodies under `tests/fixtures/requests` and `tests/fixtures/sar`, decoded.
static REQUESTS: LazyLock<Vec<AccessRequest>> = LazyLock::new(|| {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures");
    let mut requests = Vec::new();
    for dir in ["requests", "sar"] {
        for entry in std::fs::read_dir(root.join(dir)).expect("fixture directory") {
            let bytes = std::fs::read(entry.expect("entry").path()).expect("fixture");
            if let Ok(review) = scopegate::sar::decode(&bytes) {
                requests.push(review.request);
            }
        }
    }
    assert!(requests.len() > 10, "fixtures found");
    requests
});

/// Decides the sample requests; compares with the reference when `raw` holds the set's
/// role assignments as parsed (read from JSON text; a YAML file's are not).
fn decide_all(set: PolicySet, raw: &[RoleAssignment]) {
    let parsed = set.clone();
    let Ok(snapshot) = Snapshot::build(set, &INDEX, 1) else {
        return;
    };
    let snapshot = Arc::new(snapshot);
    let comparable = parsed.role_assignments.len() == raw.len();
    let policy = reference::Policy { set: &parsed, role_assignments: raw };
    let options = reference::Options {
        cluster: Some(CLUSTER.into()),
        ..reference::Options::default()
    };
    for request in REQUESTS.iter() {
        let decision = engine::authorize(&snapshot, &OPTIONS, request);
        if comparable {
            let expected = reference::decide(&policy, &options, request);
            let ids: Vec<&str> = decision.decided_by.iter().map(|id| &**id).collect();
            if let Err(e) = reference::agrees(&expected, decision.verdict, decision.source, &ids) {
                panic!("{request:?}: {e} ({})", decision.reason);
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let raw = serde_json::from_str::<serde_json::Value>(text)
        .map(|v| reference::role_assignments_in(&v))
        .unwrap_or_default();
    for format in [Format::Json, Format::Yaml] {
        let mut set = PolicySet::default();
        let mut diagnostics = Vec::new();
        parse::parse_text("fuzz", text, format, &mut set, &mut diagnostics);
        decide_all(set, &raw);
    }
    let mut set = PolicySet::default();
    let mut diagnostics = Vec::new();
    parse::parse_json_str("fuzz", text, &mut set, &mut diagnostics);
    decide_all(set, &raw);
});

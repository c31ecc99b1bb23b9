//! A policy file, arbitrary: parsing it as JSON (whole and element by element) and as YAML
//! never panics; whatever parses is validated and indexed without panicking, and the result
//! decides the sample requests exactly as the plain reference evaluator does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scopegate::engine::{self, EngineOptions, reference};
use scopegate::model::{AccessRequest, Scope};
use scopegate::policy::parse::{self, Format};
use scopegate::policy::{PolicySet, Snapshot};
use std::sync::{Arc, LazyLock};

const CLUSTER: &str = "/subscriptions/3f2a6b1c-5d4e-4f70-8a9b-0c1d2e3f4a5b/resourceGroups/rg-platform/providers/Microsoft.ContainerService/managedClusters/aks-prod";

static OPTIONS: LazyLock<EngineOptions> = LazyLock::new(|| EngineOptions {
    cluster_resource_id: Some(Scope::parse(CLUSTER).expect("cluster id parses")),
    ..EngineOptions::default()
});

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

fn decide_all(set: PolicySet) {
    let Ok(snapshot) = Snapshot::build(set, &OPTIONS, 1) else {
        return;
    };
    let snapshot = Arc::new(snapshot);
    for request in REQUESTS.iter() {
        let decision = engine::authorize(&snapshot, &OPTIONS, request);
        assert_eq!(
            decision.verdict,
            reference::verdict(&snapshot, &OPTIONS, request),
            "{request:?}: {}",
            decision.reason
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for format in [Format::Json, Format::Yaml] {
        let mut set = PolicySet::default();
        let mut diagnostics = Vec::new();
        parse::parse_text("fuzz", text, format, &mut set, &mut diagnostics);
        decide_all(set);
    }
    let mut set = PolicySet::default();
    let mut diagnostics = Vec::new();
    parse::parse_json_str("fuzz", text, &mut set, &mut diagnostics);
    decide_all(set);
});

//! A request body as kube-apiserver would post it, but arbitrary: decoding never panics, and
//! every body that decodes is decided by the indexed engine exactly as the independent
//! reference evaluator (`tests/reference`) decides it (verdict, source, deciding id), against the example policies in `policies/`, under both no-match
//! answers and both source orders; the answer is well-formed JSON in the request's version,
//! says what the decision says, never both allows and denies, and reads back the reason whole.
#![no_main]

#[path = "../../reference/mod.rs"]
mod reference;

use libfuzzer_sys::fuzz_target;
use scopegate::engine::{self, EngineOptions, NoMatch, SourceOrder};
use scopegate::policy::IndexOptions;
use scopegate::model::Scope;
use scopegate::policy::parse::{self, Format};
use scopegate::policy::schema::RoleAssignment;
use scopegate::policy::{PolicySet, Snapshot};
use scopegate::sar;
use std::sync::{Arc, LazyLock};

const CLUSTER: &str = "/subscriptions/3f2a6b1c-5d4e-4f70-8a9b-0c1d2e3f4a5b/resourceGroups/rg-platform/providers/Microsoft.ContainerService/managedClusters/aks-prod";

/// The example policy as parsed, for the reference: every file under `policies/`.
static PARSED: LazyLock<(PolicySet, Vec<RoleAssignment>)> = LazyLock::new(|| {
    let mut set = PolicySet::default();
    let mut raw = Vec::new();
    let mut dirs = vec![std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).expect("policy directory") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("policy file");
            let json = path.extension().is_some_and(|e| e == "json");
            let format = if json { Format::Json } else { Format::Yaml };
            let mut diagnostics = Vec::new();
            parse::parse_text("policy", &text, format, &mut set, &mut diagnostics);
            if json {
                let value: serde_json::Value = serde_json::from_str(&text).expect("JSON");
                raw.extend(reference::role_assignments_in(&value));
            }
        }
    }
    (set, raw)
});

/// The engine's options in the reference's words.
fn reference_options(o: &EngineOptions) -> reference::Options {
    reference::Options {
        cluster: Some(CLUSTER.into()),
        deny_on_no_match: o.no_match == NoMatch::Deny,
        rbac_first: o.order == SourceOrder::RbacFirst,
        ..reference::Options::default()
    }
}

/// The four option sets and the example policy indexed under each.
static ENGINES: LazyLock<Vec<(EngineOptions, Arc<Snapshot>)>> = LazyLock::new(|| {
    let policies = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies");
    let mut engines = Vec::new();
    let index = IndexOptions::for_cluster(Scope::parse(CLUSTER).expect("cluster id parses"));
    for no_match in [NoMatch::NoOpinion, NoMatch::Deny] {
        for order in [SourceOrder::DenyFirst, SourceOrder::RbacFirst] {
            let options = EngineOptions {
                no_match,
                order,
                ..EngineOptions::default()
            };
            let loaded =
                scopegate::load_snapshot(std::slice::from_ref(&policies), None, &index, 1)
                    .expect("the example policies load");
            engines.push((options, Arc::new(loaded.snapshot)));
        }
    }
    engines
});

fuzz_target!(|body: &[u8]| {
    let Ok(review) = sar::decode(body) else {
        return;
    };
    for (options, snapshot) in ENGINES.iter() {
        let decision = engine::authorize(snapshot, options, &review.request);
        let (set, raw) = &*PARSED;
        let policy = reference::Policy { set, role_assignments: raw };
        let expected = reference::decide(&policy, &reference_options(options), &review.request);
        let ids: Vec<&str> = decision.decided_by.iter().map(|id| &**id).collect();
        if let Err(e) = reference::agrees(&expected, decision.verdict, decision.source, &ids) {
            panic!("{:?}: {e} ({})", review.request, decision.reason);
        }
        let answer = sar::encode_response(review.api_version, &decision);
        let answer: serde_json::Value =
            serde_json::from_slice(&answer).expect("the answer is JSON");
        assert_eq!(
            answer["apiVersion"].as_str(),
            Some(review.api_version.as_str())
        );
        let status = &answer["status"];
        assert_eq!(status["allowed"].as_bool(), Some(decision.allowed()));
        assert_eq!(
            status["denied"].as_bool().unwrap_or(false),
            decision.denied()
        );
        assert!(!(decision.allowed() && decision.denied()));
        // The reason carries request text (user, namespace, names): escaped, it reads back whole.
        let reason = decision.reason.to_string();
        assert_eq!(status["reason"].as_str().unwrap_or(""), reason);
    }
});

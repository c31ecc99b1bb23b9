//! A decision counted in instructions, for callgrind (repeatable on a noisy machine):
//!
//! ```text
//! cargo bench --bench instructions --no-run
//! valgrind --tool=callgrind --toggle-collect='scopegate::engine::authorize*' target/release/deps/instructions-<hash> [CASE] [GROUPS]
//! ```
//! Instructions per decision = total Ir / 1000 (the decision runs 1000 times).

use scopegate::engine;
use scopegate::synthetic::{self, Shape};
use std::hint::black_box;

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| !a.starts_with('-'));
    let case = args.next().unwrap_or_else(|| "allow".into());
    let groups: usize = args.next().and_then(|g| g.parse().ok()).unwrap_or(10);
    let roles: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("policies/azure/aks-builtin-roles.json"),
        )
        .expect("roles"),
    )
    .expect("JSON");
    let options = engine::EngineOptions {
        cluster_resource_id: Some(
            scopegate::model::Scope::parse(synthetic::CLUSTER).expect("cluster"),
        ),
        no_match: engine::NoMatch::Deny,
        ..Default::default()
    };
    let (snapshot, generated) = scopegate::synthetic_snapshot(
        Shape {
            assignments: 100_000,
            groups_per_user: groups,
            rbac_bindings: 0,
        },
        &roles,
        &options,
    );
    let request = synthetic::request(&case, &generated.user_groups);
    let mut allowed = 0;
    for _ in 0..1000 {
        allowed += usize::from(
            engine::authorize(black_box(&snapshot), &options, black_box(&request)).allowed(),
        );
    }
    println!("{case} with {groups} groups: {allowed} of 1000 allowed");
}

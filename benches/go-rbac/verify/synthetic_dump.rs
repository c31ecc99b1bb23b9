// Dumps src/synthetic.rs's RBAC bindings (1,000 assignments, 10 groups per user, as
// benches/decide.rs decide/rbac) in the canonical text form TestDump prints, so
// verify-replica.sh can diff the Go replica against the Rust generator itself.
// Compiled by verify-replica.sh with plain rustc (synthetic.rs + a stub `model`).
mod model {
    use std::collections::BTreeMap;
    #[derive(Default)]
    #[allow(dead_code)]
    pub struct AccessRequest {
        pub user: String,
        pub groups: Vec<String>,
        pub resource_attributes: Option<ResourceAttributes>,
        pub extra: BTreeMap<String, Vec<String>>,
    }
    #[derive(Default)]
    #[allow(dead_code)]
    pub struct ResourceAttributes {
        pub verb: String,
        pub resource: String,
        pub namespace: String,
        pub version: String,
    }
}
#[path = "../../../src/synthetic.rs"]
#[allow(dead_code)]
mod synthetic;

fn main() {
    let n: usize = std::env::args().nth(1).unwrap().parse().unwrap();
    let g = synthetic::generate(
        synthetic::Shape { assignments: 1000, groups_per_user: 10, rbac_bindings: n },
        &serde_json::json!({"roles": []}),
    );
    for o in &g.rbac {
        let s = &o["subjects"][0];
        println!(
            "{} {} {} {} {}",
            o["kind"].as_str().unwrap(),
            o["metadata"]["name"].as_str().unwrap(),
            o["metadata"]["namespace"].as_str().unwrap_or("-"),
            s["kind"].as_str().unwrap_or("-"),
            s["name"].as_str().unwrap_or("-"),
        );
    }
    println!("groups {}", g.user_groups.join(","));
}

//! What the input limits cost: `StringLike` on a long value with an adversarial pattern, a
//! condition at Azure's 8 KB limit, and the YAML alias budget on a file of about 1 MB
//! (against parsing the same file).

mod support;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use scopegate::model::mapping::Attributes;
use scopegate::policy::PolicySet;
use scopegate::policy::condition::{
    Condition, MAX_ATTRIBUTE_BYTES, MAX_CONDITION_BYTES, string_like,
};
use scopegate::policy::parse::{Format, parse_text};
use scopegate::policy::yaml_budget;
use std::hint::black_box;

const GROUP: &str = "microsoft.containerservice/managedclusters/customresources:group";

fn string_like_match(c: &mut Criterion) {
    let mut group = c.benchmark_group("string_like");
    // The matcher's worst case: the last star retries a 65-byte tail at every byte.
    let backtracking = format!("*{}b", "a".repeat(64));
    for len in [MAX_ATTRIBUTE_BYTES, 4_000] {
        let text = "a".repeat(len);
        for pattern in ["*a*a*b", "*a*a*a*a*a*b", backtracking.as_str()] {
            let name = if pattern.len() > 16 {
                "*a{64}b"
            } else {
                pattern
            };
            group.bench_with_input(BenchmarkId::new(name, len), &text, |b, text| {
                b.iter(|| string_like(black_box(text.as_bytes()), pattern.as_bytes()))
            });
        }
    }
    // Through a condition: a value past the limit is refused before any match.
    let condition = Condition::parse(&format!("@Request[{GROUP}] StringLike '*a*a*b'"))
        .expect("the condition parses");
    for len in [MAX_ATTRIBUTE_BYTES, 4_000] {
        let mut attributes = Attributes::new();
        attributes.insert(GROUP.into(), "a".repeat(len));
        group.bench_with_input(
            BenchmarkId::new("condition", len),
            &attributes,
            |b, attributes| b.iter(|| condition.eval("read", black_box(attributes))),
        );
    }
    group.finish();
}

fn condition_parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("condition_parse");
    let mut flat = String::new();
    for i in 0.. {
        let term = format!("@Request[x] StringEquals 'value-{i}'");
        if flat.len() + term.len() + 4 > MAX_CONDITION_BYTES {
            break;
        }
        if !flat.is_empty() {
            flat.push_str(" OR ");
        }
        flat.push_str(&term);
    }
    let depth = 32;
    let nested = format!(
        "{}@Request[x] StringEquals 'a'{}",
        "(".repeat(depth),
        ")".repeat(depth)
    );
    let over = "(".repeat(MAX_CONDITION_BYTES);
    for (name, text) in [
        ("flat_or_8kb", &flat),
        ("nested_32", &nested),
        ("nested_8kb_refused", &over),
    ] {
        group.bench_with_input(BenchmarkId::new(name, text.len()), text, |b, text| {
            b.iter(|| Condition::parse(black_box(text)))
        });
    }
    group.finish();
}

/// About 1 MB of RoleBindings, the bulk of a large cluster's YAML.
fn bindings_yaml() -> String {
    let mut text = String::new();
    let mut i = 0;
    while text.len() < 1_000_000 {
        text.push_str(&format!(
            "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  \
             name: binding-{i}\n  namespace: ns-{}\nroleRef:\n  apiGroup: \
             rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: view\nsubjects:\n- kind: \
             User\n  name: user-{i}@contoso.com\n- kind: Group\n  name: group-{}\n",
            i % 50,
            i % 700
        ));
        i += 1;
    }
    text
}

/// 1.1 MB: 500 references to a 1 MiB anchor (2.4 GB once expanded, before the budget).
fn amplified_yaml() -> String {
    let mut text = format!(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: a\n\
         rules:\n- apiGroups: [\"\"]\n  resources: [\"pods\"]\n  verbs: [\"get\"]\n  \
         resourceNames: &big [\"{}\"]\n",
        "x".repeat(1 << 20)
    );
    for _ in 0..500 {
        text.push_str(
            "- {apiGroups: [\"\"], resources: [\"pods\"], verbs: [\"get\"], resourceNames: *big}\n",
        );
    }
    text
}

fn yaml_budget_check(c: &mut Criterion) {
    let mut group = c.benchmark_group("yaml_budget");
    let bindings = bindings_yaml();
    let amplified = amplified_yaml();
    group.bench_with_input(
        BenchmarkId::new("check", format!("bindings_{}b", bindings.len())),
        &bindings,
        |b, text| b.iter(|| yaml_budget::check(black_box(text))),
    );
    group.bench_with_input(
        BenchmarkId::new("parse_text", format!("bindings_{}b", bindings.len())),
        &bindings,
        |b, text| {
            b.iter(|| {
                let (mut set, mut diagnostics) = (PolicySet::default(), Vec::new());
                parse_text(
                    "bench.yaml",
                    black_box(text),
                    Format::Yaml,
                    &mut set,
                    &mut diagnostics,
                );
                (set, diagnostics)
            })
        },
    );
    group.bench_with_input(
        BenchmarkId::new("check", format!("amplified_{}b", amplified.len())),
        &amplified,
        |b, text| b.iter(|| yaml_budget::check(black_box(text))),
    );
    group.finish();
}

criterion_group! {
    name = benches;
    config = support::criterion();
    targets = string_like_match, condition_parse, yaml_budget_check
}
criterion_main!(benches);

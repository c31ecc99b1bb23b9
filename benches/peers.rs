//! Peers: the same synthetic Azure RBAC policy and the same requests decided by scopegate,
//! by Cedar (`cedar-policy`) and by Rego (`regorus`), after checking that all three agree on
//! every decision of a sweep of requests (docs/azure-rbac.md#evaluation, restricted to what
//! `scopegate::synthetic` generates).
//!
//! - scopegate: `engine::authorize` on the indexed snapshot.
//! - Cedar: one `permit` template per role (the role's DataActions minus NotDataActions as
//!   `like` tests on `context.action`), one template-linked policy per role assignment
//!   (`principal in Principal::"<id>"`, `resource in Scope::"<scope>"`), one `forbid` per deny
//!   assignment; the requester is a `Principal` whose parents are its groups and the request
//!   scope is a `Scope` whose ancestors are the scope chain. Cedar evaluates every policy.
//! - Rego: `benches/peers/azure.rego` over data indexed by principal (assignments), role id
//!   (patterns) and scope (deny assignments); input = principals, action, scope chain.
//!
//! Every engine's measured call starts from the same `AccessRequest`: the peers map it to
//! (principals, action, scope chain) and build their own input inside the timed loop, as
//! scopegate does. The chain comes from a map built from the management group entities.
//! A summary (median per engine, ratio peer/scopegate) is printed at the end and written to
//! `<criterion dir>/peers-summary.csv`.

mod support;

use cedar_policy::{
    Authorizer, Context, Decision, Entities, Entity, EntityId, EntityTypeName, EntityUid, PolicyId,
    PolicySet, Request, RestrictedExpression, SlotId, Template,
};
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, measurement::WallTime};
use scopegate::engine::{self, EngineOptions};
use scopegate::model::{AccessRequest, ResourceAttributes, Verdict};
use scopegate::policy::Snapshot;
use scopegate::synthetic::{self, CLUSTER, Generated, PLATFORM, Shape, USER_OID};
use serde_json::{Value as Json, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, Instant, SystemTime};

const EVERYONE: &str = "00000000-0000-0000-0000-000000000000";
const ACTION_PREFIX: &str = "microsoft.containerservice/managedclusters";
const REGO: &str = include_str!("peers/azure.rego");
const REGO_RULE: &str = "data.scopegate.peer.allow";
const CASES: [&str; 3] = ["allow", "deny", "no_match"];
const ENGINES: [&str; 3] = ["scopegate", "cedar", "regorus"];

// ---------------------------------------------------------------------------------------
// The generated policy in a neutral, lower-cased form, read from the same JSON values that
// scopegate parses (not from scopegate's snapshot).

/// One permissions block: DataActions and NotDataActions, lower-cased.
#[derive(Clone)]
struct Block {
    data: Vec<String>,
    not: Vec<String>,
}

struct Grant {
    principal: String,
    role: String,
    scope: String,
}

struct DenyRule {
    scope: String,
    everyone: bool,
    principals: Vec<String>,
    excludes: Vec<String>,
    /// `!doNotApplyToChildScopes`
    children: bool,
    blocks: Vec<Block>,
}

struct Model {
    roles: BTreeMap<String, Vec<Block>>,
    grants: Vec<Grant>,
    denies: Vec<DenyRule>,
    /// Management group tree: subscription or group id -> parent group id.
    parents: HashMap<String, String>,
}

fn lower(v: &Json) -> String {
    v.as_str()
        .expect("string field")
        .trim_end_matches('/')
        .to_ascii_lowercase()
}

fn lower_list(v: &Json) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().map(lower).collect())
        .unwrap_or_default()
}

fn blocks(permissions: &Json) -> Vec<Block> {
    permissions
        .as_array()
        .map(|a| {
            a.iter()
                .map(|p| Block {
                    data: lower_list(&p["dataActions"]),
                    not: lower_list(&p["notDataActions"]),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn ids(list: &Json) -> Vec<String> {
    list.as_array()
        .map(|a| a.iter().map(|p| lower(&p["id"])).collect())
        .unwrap_or_default()
}

impl Model {
    fn new(g: &Generated) -> Model {
        let roles = g
            .role_definitions
            .iter()
            .map(|r| (lower(&r["name"]), blocks(&r["permissions"])))
            .collect();
        let grants = g
            .role_assignments
            .iter()
            .map(|a| Grant {
                principal: lower(&a["principalId"]),
                role: lower(&a["roleDefinitionId"])
                    .rsplit('/')
                    .next()
                    .expect("role id")
                    .to_string(),
                scope: lower(&a["scope"]),
            })
            .collect();
        let denies = g
            .deny_assignments
            .iter()
            .map(|d| {
                let principals = ids(&d["principals"]);
                DenyRule {
                    scope: lower(&d["scope"]),
                    everyone: principals.iter().any(|p| p == EVERYONE),
                    principals: principals.into_iter().filter(|p| p != EVERYONE).collect(),
                    excludes: ids(&d["excludePrincipals"]),
                    children: !d["doNotApplyToChildScopes"].as_bool().unwrap_or(false),
                    blocks: blocks(&d["permissions"]),
                }
            })
            .collect();
        let parents = g
            .management_groups
            .iter()
            .filter(|m| m["parent"].is_object())
            .map(|m| (lower(&m["id"]), lower(&m["parent"]["id"])))
            .collect();
        let model = Model {
            roles,
            grants,
            denies,
            parents,
        };
        for b in model
            .roles
            .values()
            .chain(model.denies.iter().map(|d| &d.blocks))
        {
            for p in b.iter().flat_map(|b| b.data.iter().chain(&b.not)) {
                assert!(
                    p.matches('*').count() <= 1 && !p.contains(['"', '\\']),
                    "pattern `{p}`: the peers handle one `*` and no quotes"
                );
            }
        }
        model
    }

    /// The scope and its ancestors, nearest first: the resource id's segment prefixes of even
    /// length (without `…/providers/<namespace>`), the subscription's management groups, `/`.
    fn chain(&self, scope: &str) -> Vec<String> {
        let segments: Vec<&str> = scope.split('/').filter(|s| !s.is_empty()).collect();
        assert_eq!(segments.first(), Some(&"subscriptions"), "{scope}");
        let mut out = Vec::with_capacity(10);
        for len in (2..=segments.len()).rev().filter(|l| l % 2 == 0) {
            if segments[len - 2] != "providers" {
                out.push(format!("/{}", segments[..len].join("/")));
            }
        }
        let mut at = out.last().cloned();
        while let Some(parent) = at.as_ref().and_then(|s| self.parents.get(s)) {
            out.push(parent.clone());
            at = Some(parent.clone());
        }
        out.push("/".into());
        out
    }
}

/// What a peer needs from a Kubernetes request, mapped independently of scopegate's `sar::map`
/// (resource requests with CRUD verbs only: what the bench sends).
struct PeerRequest {
    principals: Vec<String>,
    action: String,
    chain: Vec<String>,
}

fn peer_request(model: &Model, r: &AccessRequest) -> PeerRequest {
    let oid = r.extra.get("oid").and_then(|v| v.first()).expect("oid");
    let mut principals = Vec::with_capacity(r.groups.len() + 1);
    principals.push(oid.to_ascii_lowercase());
    principals.extend(
        r.groups
            .iter()
            .filter(|g| uuid::Uuid::try_parse(g).is_ok())
            .map(|g| g.to_ascii_lowercase()),
    );
    let ra = r.resource_attributes.as_ref().expect("resource request");
    let suffix = match ra.verb.as_str() {
        "get" | "list" | "watch" => "read",
        "create" | "update" | "patch" => "write",
        "delete" | "deletecollection" => "delete",
        other => panic!("verb `{other}` is not mapped by the peers"),
    };
    let mut action = String::from(ACTION_PREFIX);
    for piece in [ra.group.as_str(), ra.resource.as_str(), suffix] {
        if !piece.is_empty() {
            action.push('/');
            action.push_str(&piece.to_ascii_lowercase());
        }
    }
    let mut scope = CLUSTER.to_ascii_lowercase();
    if !ra.namespace.is_empty() {
        scope.push_str("/namespaces/");
        scope.push_str(&ra.namespace.to_ascii_lowercase());
    }
    PeerRequest {
        principals,
        action,
        chain: model.chain(&scope),
    }
}

// ---------------------------------------------------------------------------------------
// Cedar

struct CedarPeer {
    policies: PolicySet,
    authorizer: Authorizer,
    principal_type: EntityTypeName,
    scope_type: EntityTypeName,
    action: EntityUid,
}

fn any_like(patterns: &[String]) -> String {
    if patterns.is_empty() {
        return "false".into();
    }
    let tests: Vec<String> = patterns
        .iter()
        .map(|p| format!("context.action like \"{p}\""))
        .collect();
    format!("({})", tests.join(" || "))
}

/// DataActions minus NotDataActions, per block, any block.
fn cedar_condition(blocks: &[Block]) -> String {
    if blocks.is_empty() {
        return "false".into();
    }
    let parts: Vec<String> = blocks
        .iter()
        .map(|b| {
            if b.not.is_empty() {
                any_like(&b.data)
            } else {
                format!("({} && !{})", any_like(&b.data), any_like(&b.not))
            }
        })
        .collect();
    parts.join(" || ")
}

fn principal_set(ids: &[String]) -> String {
    let uids: Vec<String> = ids.iter().map(|p| format!("Principal::\"{p}\"")).collect();
    format!("[{}]", uids.join(", "))
}

impl CedarPeer {
    fn new(model: &Model) -> CedarPeer {
        let mut policies = PolicySet::new();
        let used: HashSet<&str> = model.grants.iter().map(|g| g.role.as_str()).collect();
        for (role, blocks) in &model.roles {
            if !used.contains(role.as_str()) {
                continue;
            }
            let src = format!(
                "permit(principal in ?principal, action == Action::\"data\", resource in ?resource) when {{ {} }};",
                cedar_condition(blocks)
            );
            let template = Template::parse(Some(PolicyId::new(format!("role-{role}"))), src)
                .expect("template");
            policies.add_template(template).expect("add template");
        }
        let principal_type = EntityTypeName::from_str("Principal").expect("type");
        let scope_type = EntityTypeName::from_str("Scope").expect("type");
        for (i, g) in model.grants.iter().enumerate() {
            let vals = HashMap::from([
                (
                    SlotId::principal(),
                    EntityUid::from_type_name_and_id(
                        principal_type.clone(),
                        EntityId::new(&g.principal),
                    ),
                ),
                (
                    SlotId::resource(),
                    EntityUid::from_type_name_and_id(scope_type.clone(), EntityId::new(&g.scope)),
                ),
            ]);
            policies
                .link(
                    PolicyId::new(format!("role-{}", g.role)),
                    PolicyId::new(format!("assignment-{i}")),
                    vals,
                )
                .expect("link");
        }
        for (i, d) in model.denies.iter().enumerate() {
            let resource = if d.children {
                format!("resource in Scope::\"{}\"", d.scope)
            } else {
                format!("resource == Scope::\"{}\"", d.scope)
            };
            let mut when = cedar_condition(&d.blocks);
            if !d.everyone {
                when = format!("principal in {} && ({when})", principal_set(&d.principals));
            }
            let unless = if d.excludes.is_empty() {
                String::new()
            } else {
                format!(" unless {{ principal in {} }}", principal_set(&d.excludes))
            };
            let src = format!(
                "@id(\"deny-{i}\") forbid(principal, action == Action::\"data\", {resource}) when {{ {when} }}{unless};"
            );
            let policy = cedar_policy::Policy::parse(Some(PolicyId::new(format!("deny-{i}"))), src)
                .expect("forbid policy");
            policies.add(policy).expect("add forbid");
        }
        CedarPeer {
            policies,
            authorizer: Authorizer::new(),
            principal_type,
            scope_type,
            action: EntityUid::from_str("Action::\"data\"").expect("action"),
        }
    }

    fn principal(&self, id: &str) -> EntityUid {
        EntityUid::from_type_name_and_id(self.principal_type.clone(), EntityId::new(id))
    }

    fn scope(&self, id: &str) -> EntityUid {
        EntityUid::from_type_name_and_id(self.scope_type.clone(), EntityId::new(id))
    }

    fn decide(&self, model: &Model, r: &AccessRequest) -> bool {
        let p = peer_request(model, r);
        let user = self.principal(&p.principals[0]);
        let groups: HashSet<EntityUid> = p.principals[1..]
            .iter()
            .map(|g| self.principal(g))
            .collect();
        let mut entities = Vec::with_capacity(p.chain.len() + 1);
        entities.push(Entity::new_no_attrs(user.clone(), groups));
        for (i, s) in p.chain.iter().enumerate() {
            let parents = p.chain.get(i + 1).map(|up| self.scope(up)).into_iter();
            entities.push(Entity::new_no_attrs(self.scope(s), parents.collect()));
        }
        let entities = Entities::from_entities(entities, None).expect("entities");
        let context = Context::from_pairs([(
            "action".to_string(),
            RestrictedExpression::new_string(p.action),
        )])
        .expect("context");
        let request = Request::new(
            user,
            self.action.clone(),
            self.scope(&p.chain[0]),
            context,
            None,
        )
        .expect("request");
        let response = self
            .authorizer
            .is_authorized(&request, &self.policies, &entities);
        let errors: Vec<String> = response
            .diagnostics()
            .errors()
            .map(ToString::to_string)
            .collect();
        assert!(errors.is_empty(), "cedar evaluation errors: {errors:?}");
        response.decision() == Decision::Allow
    }
}

// ---------------------------------------------------------------------------------------
// Rego (regorus)

fn rego_pattern(p: &str) -> Json {
    match p.split_once('*') {
        Some((prefix, suffix)) => {
            json!({"prefix": prefix, "suffix": suffix, "wild": true, "len": prefix.len() + suffix.len()})
        }
        None => json!({"prefix": p, "suffix": "", "wild": false, "len": p.len()}),
    }
}

fn rego_blocks(blocks: &[Block]) -> Json {
    blocks
        .iter()
        .map(|b| {
            json!({
                "data": b.data.iter().map(|p| rego_pattern(p)).collect::<Vec<_>>(),
                "not": b.not.iter().map(|p| rego_pattern(p)).collect::<Vec<_>>(),
            })
        })
        .collect()
}

fn rego_data(model: &Model) -> Json {
    let mut assignments: BTreeMap<&str, Vec<Json>> = BTreeMap::new();
    for g in &model.grants {
        assignments
            .entry(&g.principal)
            .or_default()
            .push(json!({"scope": g.scope, "role": g.role}));
    }
    let roles: BTreeMap<&str, Json> = model
        .roles
        .iter()
        .map(|(id, blocks)| (id.as_str(), rego_blocks(blocks)))
        .collect();
    let mut denies: BTreeMap<&str, Vec<Json>> = BTreeMap::new();
    for d in &model.denies {
        let set =
            |ids: &[String]| -> Json { ids.iter().map(|p| (p.clone(), json!(true))).collect() };
        denies.entry(&d.scope).or_default().push(json!({
            "everyone": d.everyone, "principals": set(&d.principals), "excludes": set(&d.excludes),
            "children": d.children, "blocks": rego_blocks(&d.blocks),
        }));
    }
    json!({"policy": {"assignments": assignments, "roles": roles, "denies": denies}})
}

struct RegoPeer {
    engine: regorus::Engine,
}

impl RegoPeer {
    fn new(model: &Model) -> RegoPeer {
        let mut engine = regorus::Engine::new();
        engine
            .add_policy("peers/azure.rego".into(), REGO.into())
            .expect("rego policy");
        engine
            .add_data(regorus::Value::from(rego_data(model)))
            .expect("rego data");
        RegoPeer { engine }
    }

    fn decide(&mut self, model: &Model, r: &AccessRequest) -> bool {
        use regorus::Value;
        let p = peer_request(model, r);
        let mut input = BTreeMap::new();
        input.insert(
            Value::from("principals"),
            Value::from(
                p.principals
                    .into_iter()
                    .map(Value::from)
                    .collect::<Vec<_>>(),
            ),
        );
        input.insert(Value::from("action"), Value::from(p.action));
        input.insert(
            Value::from("scope_set"),
            Value::from(
                p.chain
                    .iter()
                    .map(|s| (Value::from(s.as_str()), Value::from(true)))
                    .collect::<BTreeMap<_, _>>(),
            ),
        );
        input.insert(
            Value::from("scopes"),
            Value::from(p.chain.into_iter().map(Value::from).collect::<Vec<_>>()),
        );
        self.engine.set_input(Value::from(input));
        let v = self.engine.eval_rule(REGO_RULE.into()).expect("rego eval");
        match v {
            Value::Bool(b) => b,
            other => panic!("rego returned {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Agreement

fn scopegate_decide(
    snapshot: &std::sync::Arc<Snapshot>,
    options: &EngineOptions,
    r: &AccessRequest,
) -> bool {
    match engine::authorize(snapshot, options, r).verdict {
        Verdict::Allow => true,
        Verdict::Deny => false,
        Verdict::NoOpinion => panic!("no opinion with no_match = Deny: {r:?}"),
    }
}

fn access(
    oid: &str,
    groups: &[String],
    verb: &str,
    group: &str,
    resource: &str,
    ns: &str,
) -> AccessRequest {
    let mut r = AccessRequest {
        user: "peer@contoso.com".into(),
        groups: groups.iter().collect(),
        resource_attributes: Some(Box::new(ResourceAttributes {
            verb: verb.into(),
            group: group.into(),
            resource: resource.into(),
            namespace: ns.into(),
            version: "v1".into(),
            ..ResourceAttributes::default()
        })),
        ..AccessRequest::default()
    };
    r.extra.insert("oid".into(), vec![oid.into()]);
    r
}

/// Requests beyond the three measured cases: the bench user with and without the excluded
/// platform group, and principals that hold grants at each level above and below the
/// cluster, as users and as groups, over several namespaces, resources and verbs.
fn sweep(model: &Model, groups: &[String]) -> Vec<AccessRequest> {
    let cluster = CLUSTER.to_ascii_lowercase();
    let cluster_chain = model.chain(&cluster);
    let mut namespaces = vec![String::new(), "ns-0".into(), "ns-1".into(), "ns-7".into()];
    let mut picked: Vec<String> = Vec::new();
    let levels: [&dyn Fn(&str) -> bool; 5] = [
        &|s| s.starts_with("/providers/"),
        &|s| s.starts_with("/subscriptions/") && s.matches('/').count() == 2,
        &|s| s.contains("/resourcegroups/") && !s.contains("/providers/"),
        &|s| s == cluster,
        &|s| s.starts_with(&format!("{cluster}/namespaces/")),
    ];
    for level in levels {
        let found = model.grants.iter().skip(3).find(|g| {
            level(&g.scope)
                && (cluster_chain.contains(&g.scope) || g.scope.starts_with(&cluster))
                && !picked.contains(&g.principal)
        });
        if let Some(g) = found {
            picked.push(g.principal.clone());
            if let Some(ns) = g.scope.strip_prefix(&format!("{cluster}/namespaces/")) {
                namespaces.push(ns.to_string());
            }
        }
    }
    let mut platform = groups.to_vec();
    platform.push(PLATFORM.into());
    let mut identities: Vec<(String, Vec<String>)> = vec![
        (USER_OID.into(), groups.to_vec()),
        (USER_OID.into(), platform),
    ];
    for p in &picked {
        identities.push((p.clone(), vec![]));
        identities.push((
            "cccccccc-0000-4000-8000-000000000001".into(),
            vec![p.clone(), "system:authenticated".into()],
        ));
    }
    let resources = [
        ("", "pods"),
        ("", "secrets"),
        ("", "configmaps"),
        ("", "services"),
        ("", "namespaces"),
        ("apps", "deployments"),
        ("batch", "jobs"),
    ];
    let mut out = Vec::new();
    for (oid, groups) in &identities {
        for ns in &namespaces {
            for (group, resource) in resources {
                for verb in ["get", "create", "delete"] {
                    out.push(access(oid, groups, verb, group, resource, ns));
                }
            }
        }
    }
    out
}

fn describe(r: &AccessRequest) -> String {
    let a = r.resource_attributes.as_ref().expect("resource request");
    format!(
        "oid {} groups {} {} {}/{} in `{}`",
        r.extra["oid"][0],
        r.groups.len(),
        a.verb,
        a.group,
        a.resource,
        a.namespace
    )
}

/// Decides every request with the three engines; returns the disagreements.
fn disagreements(
    label: &str,
    requests: &[(String, AccessRequest)],
    snapshot: &std::sync::Arc<Snapshot>,
    options: &EngineOptions,
    model: &Model,
    cedar: &CedarPeer,
    rego: &mut RegoPeer,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut allowed = 0;
    let mut spent = [Duration::ZERO; 3];
    for (name, r) in requests {
        let t = Instant::now();
        let s = scopegate_decide(snapshot, options, r);
        spent[0] += t.elapsed();
        let t = Instant::now();
        let c = cedar.decide(model, r);
        spent[1] += t.elapsed();
        let t = Instant::now();
        let g = rego.decide(model, r);
        spent[2] += t.elapsed();
        allowed += usize::from(s);
        if s != c || s != g {
            out.push(format!(
                "{label} {name}: scopegate {s}, cedar {c}, regorus {g} ({})",
                describe(r)
            ));
        }
    }
    println!(
        "peers: {label}: {} requests checked ({allowed} allowed), {} disagreement(s); \
         time scopegate {:.2?}, cedar {:.2?}, regorus {:.2?}",
        requests.len(),
        out.len(),
        spent[0],
        spent[1],
        spent[2]
    );
    out
}

// ---------------------------------------------------------------------------------------
// Benchmarks

struct Ran {
    engine: &'static str,
    case: &'static str,
    assignments: usize,
    groups: usize,
}

fn peer_group<'a>(c: &'a mut Criterion, engine: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(format!("peers_{engine}"));
    if engine != "scopegate" {
        // Cedar evaluates every policy: tens of ms per request at 100k assignments.
        group
            .sample_size(10)
            .warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_secs(1))
            .sampling_mode(SamplingMode::Flat);
    }
    group
}

fn param(n: usize, g: usize) -> String {
    format!("{n}a_{g}g")
}

/// The requester's first `g` groups plus `system:authenticated`, as benches/decide.rs.
fn requester_groups(generated: &Generated, g: usize) -> Vec<String> {
    generated
        .user_groups
        .iter()
        .take(g)
        .chain(generated.user_groups.last())
        .cloned()
        .collect()
}

fn peers(c: &mut Criterion, ran: &mut Vec<Ran>) {
    let roles = support::builtin_roles();
    let options = support::options();
    for n in [1_000usize, 10_000, 100_000] {
        let t = Instant::now();
        let (snapshot, generated) = scopegate::synthetic_snapshot(
            Shape {
                assignments: n,
                groups_per_user: 200,
                rbac_bindings: 0,
            },
            &roles,
            &support::index(),
        );
        let built_scopegate = t.elapsed();
        let model = Model::new(&generated);
        let t = Instant::now();
        let cedar = CedarPeer::new(&model);
        let built_cedar = t.elapsed();
        let t = Instant::now();
        let mut rego = RegoPeer::new(&model);
        let built_rego = t.elapsed();
        println!(
            "peers: {n} assignments: setup scopegate {built_scopegate:.2?} (generate+parse+index), cedar {built_cedar:.2?} ({} policies), regorus {built_rego:.2?}",
            cedar.policies.policies().count()
        );
        let group_counts: &[usize] = if n == 100_000 { &[1, 10, 200] } else { &[10] };
        let mut problems = Vec::new();
        for &g in group_counts {
            let groups = requester_groups(&generated, g);
            let mut requests: Vec<(String, AccessRequest)> = CASES
                .iter()
                .map(|case| (case.to_string(), synthetic::request(case, &groups)))
                .collect();
            for (case, r) in &requests {
                let want = *case == "allow";
                assert_eq!(
                    scopegate_decide(&snapshot, &options, r),
                    want,
                    "{case}: the bench must measure the case it names"
                );
            }
            if g == 10 {
                // The whole sweep at 1k and 10k; every 10th request at 100k, where Cedar
                // takes long per request.
                let stride = if n >= 100_000 { 10 } else { 1 };
                let extra = sweep(&model, &groups).into_iter().step_by(stride);
                requests.extend(extra.map(|r| ("sweep".to_string(), r)));
            }
            problems.extend(disagreements(
                &format!("{n}a/{g}g"),
                &requests,
                &snapshot,
                &options,
                &model,
                &cedar,
                &mut rego,
            ));
        }
        assert!(
            problems.is_empty(),
            "engines disagree:\n{}",
            problems.join("\n")
        );
        for &g in group_counts {
            let groups = requester_groups(&generated, g);
            for engine_name in ENGINES {
                let mut group = peer_group(c, engine_name);
                for case in CASES {
                    let request = synthetic::request(case, &groups);
                    let id = BenchmarkId::new(case, param(n, g));
                    match engine_name {
                        "scopegate" => group.bench_with_input(id, &request, |b, r| {
                            b.iter(|| {
                                engine::authorize(black_box(&snapshot), &options, black_box(r))
                            })
                        }),
                        "cedar" => group.bench_with_input(id, &request, |b, r| {
                            b.iter(|| cedar.decide(&model, black_box(r)))
                        }),
                        _ => group.bench_with_input(id, &request, |b, r| {
                            b.iter(|| rego.decide(&model, black_box(r)))
                        }),
                    };
                    ran.push(Ran {
                        engine: engine_name,
                        case,
                        assignments: n,
                        groups: g,
                    });
                }
                group.finish();
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Summary

/// Where criterion writes (its own rule: `$CRITERION_HOME`, `$CARGO_TARGET_DIR/criterion`,
/// else this package's `target/criterion`); set explicitly so the summary reads the same place.
fn output_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return home.into();
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("criterion")
}

/// The median (ns) criterion estimated in this run, if the benchmark ran in this process.
fn median_ns(dir: &Path, ran: &Ran, since: SystemTime) -> Option<f64> {
    let path = dir
        .join(format!("peers_{}", ran.engine))
        .join(ran.case)
        .join(param(ran.assignments, ran.groups))
        .join("new/estimates.json");
    let fresh = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .is_ok_and(|t| t >= since);
    if !fresh {
        return None;
    }
    let v: Json = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
    v["median"]["point_estimate"].as_f64()
}

fn human(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

fn summary(dir: &Path, ran: &[Ran], since: SystemTime) {
    let mut medians: BTreeMap<(usize, usize, &str, &str), f64> = BTreeMap::new();
    let mut csv = String::from("engine,case,assignments,groups,median_ns\n");
    for r in ran {
        if let Some(m) = median_ns(dir, r, since) {
            medians.insert((r.assignments, r.groups, r.case, r.engine), m);
            let _ = writeln!(
                csv,
                "{},{},{},{},{m:.1}",
                r.engine, r.case, r.assignments, r.groups
            );
        }
    }
    if medians.is_empty() {
        return;
    }
    let mut rows: Vec<(usize, usize, &str)> = medians.keys().map(|k| (k.0, k.1, k.2)).collect();
    rows.dedup();
    println!();
    println!(
        "{:<9} {:>11} {:>6} {:>11} {:>11} {:>9} {:>11} {:>9}",
        "case", "assignments", "groups", "scopegate", "cedar", "cedar/sg", "regorus", "rego/sg"
    );
    for (n, g, case) in rows {
        let get = |e: &str| medians.get(&(n, g, case, e)).copied();
        let cell = |v: Option<f64>| v.map(human).unwrap_or_else(|| "-".into());
        let ratio = |v: Option<f64>| match (v, get("scopegate")) {
            (Some(p), Some(s)) if s > 0.0 => format!("{:.0}x", p / s),
            _ => "-".into(),
        };
        println!(
            "{case:<9} {n:>11} {g:>6} {:>11} {:>11} {:>9} {:>11} {:>9}",
            cell(get("scopegate")),
            cell(get("cedar")),
            ratio(get("cedar")),
            cell(get("regorus")),
            ratio(get("regorus")),
        );
    }
    let path = dir.join("peers-summary.csv");
    match std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, csv)) {
        Ok(()) => println!("\npeers: summary written to {}", path.display()),
        Err(e) => eprintln!("peers: cannot write {}: {e}", path.display()),
    }
}

fn main() {
    let dir = output_dir();
    let mut c = support::criterion().output_directory(&dir);
    let since = SystemTime::now();
    let mut ran = Vec::new();
    peers(&mut c, &mut ran);
    c.final_summary();
    summary(&dir, &ran, since);
}

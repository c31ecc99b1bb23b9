//! `scopegate sync` against loopback HTTPS services that speak the documented Entra token,
//! Resource Manager and Graph protocols (`fake_azure`): Azure itself cannot be reached from
//! here. The real sync code runs — client, retries, paging, delta queries, workload identity
//! credential, atomic publication — and its files are loaded by the real policy loader.

#[path = "support/mod.rs"]
mod support;

#[path = "fake_azure/mod.rs"]
mod fake_azure;

use fake_azure::{FakeAzure, World};
use scopegate::engine::{EngineOptions, NoMatch};
use scopegate::metrics::SyncMetrics;
use scopegate::model::Scope;
use scopegate::policy::IndexOptions;
use scopegate::sync::{Outcome, SyncConfig, SyncError, Syncer};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

const SUBSCRIPTION: &str = "/subscriptions/3f2a6b1c-5d4e-4f70-8a9b-0c1d2e3f4a5b";

/// An `az`-shaped object (flat) in Resource Manager's REST shape: everything but `id`,
/// `name` and `type` under `properties`; a role definition's `roleType` is its `type` there.
fn to_arm(object: &Value) -> Value {
    let Some(map) = object.as_object() else {
        return object.clone();
    };
    if map.contains_key("properties") {
        return object.clone();
    }
    let mut outer = serde_json::Map::new();
    let mut properties = serde_json::Map::new();
    for (k, v) in map {
        match k.as_str() {
            "id" | "name" | "type" => {
                outer.insert(k.clone(), v.clone());
            }
            "roleType" => {
                properties.insert("type".into(), v.clone());
            }
            _ => {
                properties.insert(k.clone(), v.clone());
            }
        }
    }
    if !outer.contains_key("name")
        && let Some(id) = map.get("id").and_then(Value::as_str)
    {
        outer.insert(
            "name".into(),
            json!(id.rsplit('/').next().unwrap_or_default()),
        );
    }
    outer.insert("properties".into(), Value::Object(properties));
    Value::Object(outer)
}

fn read_list(path: &Path) -> Vec<Value> {
    let v: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    match v {
        Value::Array(items) => items,
        Value::Object(ref o) if o.contains_key("value") => o["value"].as_array().unwrap().clone(),
        Value::Object(ref o) if o.contains_key("roles") => o["roles"].as_array().unwrap().clone(),
        other => vec![other],
    }
}

fn syncer(azure: &FakeAzure, config: &str) -> (Syncer, prometheus::Registry) {
    let config: SyncConfig = serde_yaml::from_str(config).unwrap();
    let registry = prometheus::Registry::new();
    let metrics = SyncMetrics::new(&registry);
    (Syncer::new(config, metrics, azure.env()).unwrap(), registry)
}

fn metrics_text(registry: &prometheus::Registry) -> String {
    use prometheus::Encoder;
    let mut out = Vec::new();
    prometheus::TextEncoder::new()
        .encode(&registry.gather(), &mut out)
        .unwrap();
    String::from_utf8(out).unwrap()
}

#[track_caller]
fn assert_published(results: &[(&'static str, Result<Outcome, SyncError>)], source: &str) {
    assert!(
        matches!(result(results, source), Ok(Outcome::Published(_))),
        "{results:?}"
    );
}

#[track_caller]
fn assert_unchanged(results: &[(&'static str, Result<Outcome, SyncError>)], source: &str) {
    assert!(
        matches!(result(results, source), Ok(Outcome::Unchanged(_))),
        "{results:?}"
    );
}

fn result<'a>(
    results: &'a [(&'static str, Result<Outcome, SyncError>)],
    source: &str,
) -> &'a Result<Outcome, SyncError> {
    &results.iter().find(|(s, _)| *s == source).unwrap().1
}

/// The example policy's Azure objects, served by the fake Resource Manager.
fn load_examples(w: &mut World) {
    let azure = support::root().join("policies/azure");
    for file in [
        "aks-builtin-roles.json",
        "arc-builtin-roles.json",
        "keyvault-builtin-roles.json",
    ] {
        w.role_definitions
            .extend(read_list(&azure.join(file)).iter().map(to_arm));
    }
    w.role_assignments = read_list(&azure.join("role-assignments.json"))
        .iter()
        .map(to_arm)
        .collect();
    w.deny_assignments = read_list(&azure.join("deny-assignments.json"))
        .iter()
        .map(to_arm)
        .collect();
    w.entities = read_list(&azure.join("management-groups.json"))
        .iter()
        .map(to_arm)
        .collect();
}

/// The requests to compare decisions on: the captured kube-apiserver bodies and the README's.
fn request_bodies() -> Vec<(PathBuf, Vec<u8>)> {
    let mut bodies = Vec::new();
    for dir in [
        support::root().join("../shared/fixtures/sar"),
        support::root().join("tests/fixtures/sar"),
        support::root().join("tests/fixtures/requests"),
    ] {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "json") {
                bodies.push((path.clone(), std::fs::read(&path).unwrap()));
            }
        }
    }
    bodies
}

fn snapshot(dirs: &[PathBuf], options: &IndexOptions) -> Arc<scopegate::policy::Snapshot> {
    let loaded = scopegate::load_snapshot(dirs, None, options, 1).unwrap();
    Arc::new(loaded.snapshot)
}

#[tokio::test]
async fn synced_files_validate_and_decide_as_the_hand_written_ones() {
    let azure = FakeAzure::start().await;
    azure.with(|w| {
        load_examples(w);
        w.page_size = 7;
    });
    let out = tempfile::tempdir().unwrap();
    let synced = out.path().join("synced");
    let (sync, registry) = syncer(&azure, &azure.config(&synced, &[SUBSCRIPTION], false));
    let results = sync.run_once().await;
    assert_published(&results, "arm");
    // Built-in roles are listed under the subscription; each is written once.
    let defs = read_list(&synced.join("arm/role-definitions.json"));
    let served = azure.with(|w| w.role_definitions.len());
    assert_eq!(defs.len(), served);

    // `scopegate validate` accepts the synced directory beside the Kubernetes files.
    let policies = out.path().join("policies");
    support::copy_dir(&support::root().join("policies/kubernetes"), &{
        let k = policies.join("kubernetes");
        std::fs::create_dir_all(&k).unwrap();
        k
    });
    for file in ["managed-identities.json", "federated-credentials.json"] {
        std::fs::copy(
            support::root().join("policies/azure").join(file),
            policies.join(file),
        )
        .unwrap();
    }
    let validate = support::scopegate(&[
        "validate",
        "--policies",
        policies.to_str().unwrap(),
        "--policies",
        synced.to_str().unwrap(),
    ]);
    assert!(validate.status.success(), "{}", support::stderr(&validate));
    let printed = String::from_utf8_lossy(&validate.stdout).to_string();
    let hand = support::scopegate(&["validate", "--policies", "policies"]);
    let hand = String::from_utf8_lossy(&hand.stdout).to_string();
    assert_eq!(
        printed.lines().next(),
        hand.lines().next(),
        "object counts differ"
    );

    // Every request decides the same with the synced files as with the hand-written ones.
    let options = IndexOptions::for_cluster(Scope::parse(support::CLUSTER).unwrap());
    let by_hand = snapshot(&[support::root().join("policies")], &options);
    let by_sync = snapshot(&[policies.clone(), synced.clone()], &options);
    let engine = EngineOptions::default();
    let bodies = request_bodies();
    assert!(bodies.len() >= 19, "{} request bodies", bodies.len());
    let mut allowed = 0;
    for (path, body) in &bodies {
        let Ok(review) = scopegate::sar::decode(body) else {
            continue;
        };
        let a = scopegate::engine::authorize(&by_hand, &engine, &review.request);
        let b = scopegate::engine::authorize(&by_sync, &engine, &review.request);
        assert_eq!(
            (a.verdict, a.source, &a.decided_by),
            (b.verdict, b.source, &b.decided_by),
            "{}",
            path.display()
        );
        allowed += usize::from(a.allowed());
    }
    assert!(
        allowed > 0,
        "no request was allowed: the comparison shows nothing"
    );

    // Paging: every list was followed through its nextLink pages.
    let log = azure.log();
    let pages = log
        .iter()
        .filter(|l| l.service == "arm" && l.target.contains("roleDefinitions"))
        .count();
    assert_eq!(pages, served.div_ceil(7), "role definition pages");
    let text = metrics_text(&registry);
    assert_eq!(
        support::metric(
            &text,
            "scopegate_sync_runs_total{result=\"success\",source=\"arm\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert!(
        support::metric(
            &text,
            "scopegate_sync_last_success_timestamp_seconds{source=\"arm\"}"
        )
        .unwrap()
            > 1.7e9
    );

    // A second run with nothing changed publishes nothing new.
    let before = std::fs::read_link(synced.join("arm")).unwrap();
    let results = sync.run_once().await;
    assert_unchanged(&results, "arm");
    assert_eq!(std::fs::read_link(synced.join("arm")).unwrap(), before);
}

/// Each Azure RBAC conformance vector, its policy served by Resource Manager and synced,
/// decides as the vector expects.
#[tokio::test]
async fn azure_rbac_vectors_decide_the_same_through_sync() {
    let cases = vector_cases("azure-rbac.jsonl");
    assert_eq!(cases.len(), 38);
    let azure = FakeAzure::start().await;
    let out = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let name = case["name"].as_str().unwrap();
        let cluster = case["cluster_resource_id"].as_str().unwrap();
        let subscription: String = cluster.split('/').take(3).collect::<Vec<_>>().join("/");
        serve_vector(&azure, case, 2);
        let synced = out.path().join(format!("case-{i}"));
        let (sync, _) = syncer(&azure, &azure.config(&synced, &[&subscription], false));
        let results = sync.run_once().await;
        if let Err(e) = result(&results, "arm") {
            failures.push(format!("{name}: sync failed: {e}"));
            continue;
        }
        let options = IndexOptions::for_cluster(Scope::parse(cluster).unwrap());
        let snapshot = snapshot(&[synced], &options);
        let review = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": case["request"]});
        let request = scopegate::sar::decode(review.to_string().as_bytes())
            .unwrap()
            .request;
        let engine = EngineOptions {
            no_match: NoMatch::Deny,
            ..EngineOptions::default()
        };
        let decision = scopegate::engine::authorize(&snapshot, &engine, &request);
        let expected = &case["expected"];
        if Some(decision.allowed()) != expected["allowed"].as_bool()
            || Some(decision.denied()) != expected["denied"].as_bool()
        {
            failures.push(format!(
                "{name}: expected allowed={} denied={}, got {:?} ({})",
                expected["allowed"], expected["denied"], decision.verdict, decision.reason
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Each CheckAccess conformance vector, its role, role and deny assignments and management
/// groups served by Resource Manager and synced (the workload identity objects beside them as
/// files), answers each operation as the vector expects.
#[tokio::test]
async fn check_access_vectors_decide_the_same_through_sync() {
    let cases = vector_cases("checkaccess.jsonl");
    assert_eq!(cases.len(), 35);
    let azure = FakeAzure::start().await;
    let out = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let name = case["name"].as_str().unwrap();
        let resource = case["request"]["Resource"]["Id"].as_str().unwrap_or("/");
        // The list is asked at the resource's subscription (or the resource itself above one).
        let scope = if resource.to_ascii_lowercase().starts_with("/subscriptions/") {
            resource.split('/').take(3).collect::<Vec<_>>().join("/")
        } else {
            resource.trim_end_matches('/').to_string()
        };
        let scope = if scope.is_empty() {
            "/".to_string()
        } else {
            scope
        };
        serve_vector(&azure, case, 3);
        let work = out.path().join(format!("case-{i}"));
        let synced = work.join("synced");
        let (sync, _) = syncer(&azure, &azure.config(&synced, &[&scope], false));
        let results = sync.run_once().await;
        if let Err(e) = result(&results, "arm") {
            failures.push(format!("{name}: sync failed: {e}"));
            continue;
        }
        let files = work.join("workload");
        std::fs::create_dir_all(&files).unwrap();
        for key in ["identities", "federated_credentials", "service_accounts"] {
            if let Some(objects) = case.get(key) {
                std::fs::write(files.join(format!("{key}.json")), objects.to_string()).unwrap();
            }
        }
        let loaded =
            scopegate::load_snapshot(&[synced, files], None, &IndexOptions::default(), 1).unwrap();
        let question =
            scopegate::sar::check_access::decode(case["request"].to_string().as_bytes()).unwrap();
        let now = scopegate::model::Timestamp::from_system(std::time::SystemTime::now());
        let answer = scopegate::engine::check_access::decide(&loaded.snapshot, &question, now);
        let encoded = scopegate::sar::check_access::encode(
            question.actions.iter().zip(&answer.decisions),
            answer.time_to_live_ms(now),
        );
        let answer: Value = serde_json::from_slice(&encoded).unwrap();
        let pairs = |list: &Value| -> Vec<(String, String)> {
            list.as_array()
                .into_iter()
                .flatten()
                .map(|e| {
                    (
                        e["actionId"].as_str().unwrap_or("?").to_string(),
                        e["accessDecision"].as_str().unwrap_or("?").to_string(),
                    )
                })
                .collect()
        };
        if pairs(&answer) != pairs(&case["expected"]) || pairs(&answer).is_empty() {
            failures.push(format!(
                "{name}: got {answer}, expected {}",
                case["expected"]
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// The cases of a conformance vector file.
fn vector_cases(file: &str) -> Vec<Value> {
    let path = support::root().join("tests/fixtures/vectors").join(file);
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A vector's roles, role and deny assignments and management groups, served by the fake
/// Resource Manager in its REST shapes, `page_size` objects a page.
fn serve_vector(azure: &FakeAzure, case: &Value, page_size: usize) {
    let list = |key: &str, kind: &str| -> Vec<Value> {
        case[key]
            .as_array()
            .into_iter()
            .flatten()
            .map(|o| at_its_scope(to_arm(o), kind))
            .collect()
    };
    azure.with(|w| {
        w.role_definitions = list("roles", "");
        w.role_assignments = list("assignments", "roleAssignments");
        w.deny_assignments = list("deny_assignments", "denyAssignments");
        w.entities = ancestry_entities(case);
        w.page_size = page_size;
    });
}

/// An assignment as Resource Manager names it: `{scope}/providers/Microsoft.Authorization/
/// {kind}/{name}` (a vector's short ids such as `ra-003` are its names).
fn at_its_scope(mut object: Value, kind: &str) -> Value {
    if kind.is_empty() {
        return object;
    }
    let name = object["name"].as_str().unwrap_or_default().to_string();
    let scope = object["properties"]["scope"]
        .as_str()
        .unwrap_or("/")
        .trim_end_matches('/')
        .to_string();
    object["id"] = json!(format!(
        "{scope}/providers/Microsoft.Authorization/{kind}/{name}"
    ));
    object
}

/// `getEntities` entries for a vector's management group ancestry.
fn ancestry_entities(case: &Value) -> Vec<Value> {
    let mut entities = Vec::new();
    let Some(ancestry) = case["environment"]["management_group_ancestry"].as_object() else {
        return entities;
    };
    let mg = |name: &str| format!("/providers/Microsoft.Management/managementGroups/{name}");
    for (subscription, chain) in ancestry {
        let chain: Vec<&str> = chain
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let mut child = (
            format!("/subscriptions/{subscription}"),
            subscription.clone(),
            "/subscriptions",
        );
        for parent in &chain {
            entities.push(json!({"id": child.0, "name": child.1, "type": child.2,
                "properties": {"displayName": child.1, "parent": {"id": mg(parent)}}}));
            child = (
                mg(parent),
                parent.to_string(),
                "Microsoft.Management/managementGroups",
            );
        }
        entities.push(json!({"id": child.0, "name": child.1, "type": child.2,
            "properties": {"displayName": child.1, "parent": null}}));
    }
    entities
}

fn assignment(n: usize) -> Value {
    let id = format!(
        "{SUBSCRIPTION}/providers/Microsoft.Authorization/roleAssignments/00000000-0000-4000-8000-{n:012}"
    );
    json!({
        "id": id,
        "name": format!("00000000-0000-4000-8000-{n:012}"),
        "type": "Microsoft.Authorization/roleAssignments",
        "properties": {
            "principalId": format!("11111111-0000-4000-8000-{n:012}"),
            "principalType": "User",
            "roleDefinitionId": "/providers/Microsoft.Authorization/roleDefinitions/7f6c6a51-bcf8-42ba-9220-52d62157d7db",
            "scope": SUBSCRIPTION,
        }
    })
}

fn world_with_assignments(w: &mut World, n: usize) {
    w.role_definitions = read_list(&support::root().join("policies/azure/aks-builtin-roles.json"))
        .iter()
        .map(to_arm)
        .collect();
    w.role_assignments = (0..n).map(assignment).collect();
}

#[tokio::test]
async fn throttling_waits_as_retry_after_says() {
    let azure = FakeAzure::start().await;
    azure.with(|w| {
        world_with_assignments(w, 3);
        w.throttle_next = 2;
        w.retry_after = "1".into();
    });
    let out = tempfile::tempdir().unwrap();
    let (sync, registry) = syncer(&azure, &azure.config(out.path(), &[SUBSCRIPTION], false));
    let results = sync.run_once().await;
    assert_published(&results, "arm");
    let arm: Vec<_> = azure.calls("arm");
    assert_eq!(arm[0].status, 429);
    assert_eq!(arm[1].status, 429);
    assert_eq!(arm[2].status, 200);
    for pair in arm.windows(2).take(2) {
        let waited = pair[1].at.duration_since(pair[0].at);
        assert!(
            waited >= Duration::from_millis(950),
            "waited only {waited:?} after a 429"
        );
    }
    assert_eq!(
        arm[2].target, arm[0].target,
        "the throttled call is the one repeated"
    );
    let text = metrics_text(&registry);
    assert_eq!(
        support::metric(
            &text,
            "scopegate_sync_retries_total{api=\"arm\",reason=\"throttled\"}"
        ),
        Some(2.0)
    );
    assert_eq!(
        read_list(&out.path().join("arm/role-assignments.json")).len(),
        3
    );
}

#[tokio::test]
async fn few_remaining_reads_slow_the_next_call() {
    let azure = FakeAzure::start().await;
    azure.with(|w| {
        world_with_assignments(w, 1);
        w.remaining_reads = Some(3);
    });
    let out = tempfile::tempdir().unwrap();
    let (sync, _) = syncer(&azure, &azure.config(out.path(), &[SUBSCRIPTION], false));
    sync.run_once().await;
    let arm: Vec<_> = azure.calls("arm");
    assert!(arm.len() >= 5);
    for pair in arm.windows(2) {
        let gap = pair[1].at.duration_since(pair[0].at);
        assert!(
            gap >= Duration::from_millis(290),
            "calls {gap:?} apart with 3 reads left"
        );
    }
    // With plenty left, no pause.
    azure.with(|w| {
        w.log.clear();
        w.remaining_reads = Some(11_999);
    });
    let started = std::time::Instant::now();
    sync.run_once().await;
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_5xx_storm_keeps_the_last_good_files_and_a_short_one_is_retried() {
    let azure = FakeAzure::start().await;
    azure.with(|w| world_with_assignments(w, 4));
    let out = tempfile::tempdir().unwrap();
    let config = azure.config(out.path(), &[SUBSCRIPTION], true);
    let (sync, registry) = syncer(&azure, &config);
    let results = sync.run_once().await;
    assert!(results.iter().all(|(_, r)| r.is_ok()), "{results:?}");
    let good = std::fs::read(out.path().join("arm/role-assignments.json")).unwrap();

    azure.with(|w| {
        w.role_assignments.push(assignment(99));
        w.unavailable_next = 1_000;
    });
    let results = sync.run_once().await;
    let Err(e) = result(&results, "arm") else {
        panic!("a 5xx storm published: {results:?}");
    };
    let message = e.to_string();
    assert!(
        message.contains("503") && message.contains("after 6 tries"),
        "{message}"
    );
    assert!(
        result(&results, "graph").is_ok(),
        "graph is a source of its own"
    );
    assert_eq!(
        std::fs::read(out.path().join("arm/role-assignments.json")).unwrap(),
        good
    );
    let status = sync.status.snapshot();
    assert!(status["arm"].failure.as_deref().unwrap().contains("503"));
    assert!(status["graph"].failure.is_none());
    assert!(sync.status.readiness().is_ok(), "last good files serve");
    assert!(sync.status.detail().contains("[!] sync arm: failing"));
    let text = metrics_text(&registry);
    assert_eq!(
        support::metric(
            &text,
            "scopegate_sync_runs_total{result=\"error\",source=\"arm\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        support::metric(
            &text,
            "scopegate_sync_retries_total{api=\"arm\",reason=\"server_error\"}"
        ),
        Some(5.0)
    );

    // Three failures, then the service answers: retried with backoff, published.
    azure.with(|w| w.unavailable_next = 3);
    let results = sync.run_once().await;
    assert_published(&results, "arm");
    assert_eq!(
        read_list(&out.path().join("arm/role-assignments.json")).len(),
        5
    );
    assert!(sync.status.snapshot()["arm"].failure.is_none());
}

#[tokio::test]
async fn a_token_expiring_mid_sync_is_renewed_once() {
    let azure = FakeAzure::start().await;
    azure.with(|w| {
        world_with_assignments(w, 6);
        w.page_size = 2;
        w.expire_tokens_after = Some(2);
    });
    let out = tempfile::tempdir().unwrap();
    let (sync, registry) = syncer(&azure, &azure.config(out.path(), &[SUBSCRIPTION], false));
    let results = sync.run_once().await;
    assert_published(&results, "arm");
    let log = azure.log();
    let tokens = log.iter().filter(|l| l.service == "token").count();
    assert_eq!(tokens, 2, "one token, then one renewal");
    let refused = log.iter().position(|l| l.status == 401).expect("a 401");
    let retried = &log[refused + 2];
    assert_eq!(log[refused + 1].service, "token");
    assert_eq!(retried.target, log[refused].target);
    assert_ne!(retried.bearer, log[refused].bearer, "the new token is used");
    assert_eq!(
        read_list(&out.path().join("arm/role-assignments.json")).len(),
        6
    );
    let text = metrics_text(&registry);
    assert_eq!(
        support::metric(
            &text,
            "scopegate_sync_retries_total{api=\"arm\",reason=\"unauthorized\"}"
        ),
        Some(1.0)
    );
    // A token that stays refused is an error, not a loop.
    azure.with(|w| {
        w.federated_token = "another-token".into();
        w.valid_tokens.clear();
    });
    let results = sync.run_once().await;
    let message = result(&results, "arm").as_ref().unwrap_err().to_string();
    assert!(message.contains("AADSTS700213"), "{message}");
}

#[tokio::test]
async fn the_projected_token_file_is_read_for_each_new_token() {
    let azure = FakeAzure::start().await;
    azure.with(|w| {
        world_with_assignments(w, 1);
        w.expires_in = 1;
    });
    let out = tempfile::tempdir().unwrap();
    let (sync, _) = syncer(&azure, &azure.config(out.path(), &[SUBSCRIPTION], false));
    assert!(sync.run_once().await.iter().all(|(_, r)| r.is_ok()));
    // The kubelet rotates the token: the next token request presents the new one.
    std::fs::write(&azure.token_file, "rotated-projected-token").unwrap();
    azure.with(|w| w.federated_token = "rotated-projected-token".into());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let results = sync.run_once().await;
    assert!(results.iter().all(|(_, r)| r.is_ok()), "{results:?}");
    let tokens = azure.calls("token").len();
    assert!(tokens >= 2, "{tokens}");
}

/// The fallbacks: a certificate (a client assertion signed with its key) and a client secret.
#[tokio::test]
async fn a_certificate_or_a_secret_is_the_fallback_credential() {
    let azure = FakeAzure::start().await;
    azure.with(|w| world_with_assignments(w, 2));
    let dir = tempfile::tempdir().unwrap();
    let (key, cert) = (dir.path().join("key.pem"), dir.path().join("cert.pem"));
    let self_signed = |name: &str, out: &Path| {
        let subject = format!("/CN={name}");
        support::tokens::openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            &subject,
            "-keyout",
            key.to_str().unwrap(),
            "-out",
            out.to_str().unwrap(),
        ]);
    };
    self_signed("scopegate-sync", &cert);
    let cert_path = cert.to_str().unwrap();
    let public = support::tokens::openssl(&["x509", "-in", cert_path, "-pubkey", "-noout"]);
    // openssl's SHA-1 fingerprint, `AB:CD:…`, as the base64url `x5t` Entra names it by.
    let fingerprint = String::from_utf8(support::tokens::openssl(&[
        "x509",
        "-in",
        cert_path,
        "-fingerprint",
        "-sha1",
        "-noout",
    ]))
    .unwrap();
    let hex = fingerprint
        .trim()
        .rsplit('=')
        .next()
        .unwrap()
        .replace(':', "");
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    let x5t = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes);
    azure.with(|w| w.certificate = Some((public, x5t)));
    let bundle = dir.path().join("sync-cert.pem");
    let write_bundle = || {
        let mut pem = std::fs::read(&cert).unwrap();
        pem.extend(std::fs::read(&key).unwrap());
        std::fs::write(&bundle, pem).unwrap();
    };
    let out = dir.path().join("out");
    // A sync with no environment: the config's credential alone.
    let syncer_with = |line: String| {
        let text = format!(
            "{}credential:\n  tenantId: {}\n  clientId: {}\n  authorityHost: {}\n  {line}\n",
            azure.config(&out, &[SUBSCRIPTION], false),
            fake_azure::TENANT,
            fake_azure::CLIENT_ID,
            azure.token_origin
        );
        let config: SyncConfig = serde_yaml::from_str(&text).unwrap();
        Syncer::new(
            config,
            SyncMetrics::new(&prometheus::Registry::new()),
            |_: &str| None,
        )
        .unwrap()
    };
    write_bundle();
    let sync = syncer_with(format!("certificateFile: {}", bundle.display()));
    let results = sync.run_once().await;
    assert_published(&results, "arm");

    // Another key under the same certificate name is refused by the token endpoint.
    self_signed("other", &dir.path().join("other.pem"));
    write_bundle();
    let sync = syncer_with(format!("certificateFile: {}", bundle.display()));
    let message = result(&sync.run_once().await, "arm")
        .as_ref()
        .unwrap_err()
        .to_string();
    assert!(message.contains("invalid_client"), "{message}");

    // A client secret from a file.
    let secret = dir.path().join("client-secret");
    std::fs::write(&secret, "s3cr3t\n").unwrap();
    azure.with(|w| w.client_secret = Some("s3cr3t".into()));
    let sync = syncer_with(format!("clientSecretFile: {}", secret.display()));
    assert!(sync.run_once().await.iter().all(|(_, r)| r.is_ok()));
}

#[tokio::test]
async fn a_mass_deletion_is_held_until_allowed() {
    let azure = FakeAzure::start().await;
    azure.with(|w| world_with_assignments(w, 10));
    let out = tempfile::tempdir().unwrap();
    let config = azure.config(out.path(), &[SUBSCRIPTION], false);
    let (sync, registry) = syncer(&azure, &config);
    assert!(sync.run_once().await.iter().all(|(_, r)| r.is_ok()));
    let file = out.path().join("arm/role-assignments.json");
    let good = std::fs::read(&file).unwrap();

    // Four of ten go: within the default half.
    azure.with(|w| w.role_assignments.truncate(6));
    let results = sync.run_once().await;
    assert_published(&results, "arm");
    assert_eq!(read_list(&file).len(), 6);
    let six = std::fs::read(&file).unwrap();
    assert_ne!(six, good);

    // The scope answers empty: held, the six stay.
    azure.with(|w| w.role_assignments.clear());
    let results = sync.run_once().await;
    let Err(SyncError::Held(message)) = result(&results, "arm") else {
        panic!("not held: {results:?}");
    };
    assert!(
        message.contains("delete 6 of the 6 role assignments"),
        "{message}"
    );
    assert!(message.contains("--allow-large-deletions"), "{message}");
    assert_eq!(std::fs::read(&file).unwrap(), six);
    let text = metrics_text(&registry);
    assert_eq!(
        support::metric(
            &text,
            "scopegate_sync_runs_total{result=\"held\",source=\"arm\"}"
        ),
        Some(1.0)
    );

    // The operator confirms.
    let (allowed, _) = syncer(&azure, &format!("{config}allowLargeDeletions: true\n"));
    let results = allowed.run_once().await;
    assert_published(&results, "arm");
    assert_eq!(read_list(&file).len(), 0);
}

#[tokio::test]
async fn a_next_link_to_another_host_is_not_followed() {
    let azure = FakeAzure::start().await;
    azure.with(|w| {
        world_with_assignments(w, 3);
        w.page_size = 1;
    });
    let out = tempfile::tempdir().unwrap();
    // Resource Manager configured as `localhost`, while its pages link to `127.0.0.1`: the
    // same server under another origin, which must not be sent the token.
    let localhost = azure.arm_origin.replace("127.0.0.1", "localhost");
    let config = azure.config(out.path(), &[SUBSCRIPTION], false).replace(
        &format!("endpoint: {}", azure.arm_origin),
        &format!("endpoint: {localhost}"),
    );
    let (sync, _) = syncer(&azure, &config);
    let results = sync.run_once().await;
    let message = result(&results, "arm").as_ref().unwrap_err().to_string();
    assert!(
        message.contains("nextLink leads to another host"),
        "{message}"
    );
    let arm: Vec<_> = azure.calls("arm");
    assert_eq!(arm.len(), 1, "the link was followed: {arm:?}");
    assert!(!arm[0].target.contains("$skiptoken"));
    assert!(!out.path().join("arm").exists());
}

/// A token Resource Manager keeps refusing after a renewal is an error after one renewal,
/// not a loop.
#[tokio::test]
async fn a_refused_renewed_token_is_an_error_not_a_loop() {
    let azure = FakeAzure::start().await;
    azure.with(|w| {
        world_with_assignments(w, 1);
        w.refuse_all_tokens = true;
    });
    let out = tempfile::tempdir().unwrap();
    let (sync, _) = syncer(&azure, &azure.config(out.path(), &[SUBSCRIPTION], false));
    let results = sync.run_once().await;
    let message = result(&results, "arm").as_ref().unwrap_err().to_string();
    assert!(
        message.contains("401") && message.contains("ExpiredAuthenticationToken"),
        "{message}"
    );
    let log = azure.log();
    assert_eq!(log.iter().filter(|l| l.service == "arm").count(), 2);
    assert_eq!(log.iter().filter(|l| l.service == "token").count(), 2);
}

/// A lifetime no token has is kept to a day, not an overflow.
#[tokio::test]
async fn an_endless_token_lifetime_is_capped() {
    let azure = FakeAzure::start().await;
    azure.with(|w| {
        world_with_assignments(w, 1);
        w.expires_in = u64::MAX;
    });
    let out = tempfile::tempdir().unwrap();
    let (sync, _) = syncer(&azure, &azure.config(out.path(), &[SUBSCRIPTION], false));
    assert!(sync.run_once().await.iter().all(|(_, r)| r.is_ok()));
}

fn user(id: &str, upn: &str, enabled: bool) -> Value {
    json!({"id": id, "userPrincipalName": upn, "accountEnabled": enabled, "displayName": upn})
}

const USER: &str = "#microsoft.graph.user";
const GROUP: &str = "#microsoft.graph.group";

fn version(
    users: &[(&str, bool)],
    groups: &[(&str, &[(&str, &str)])],
) -> fake_azure::DirectoryVersion {
    let mut v = fake_azure::DirectoryVersion::default();
    for (id, enabled) in users {
        v.users.insert(
            id.to_string(),
            user(id, &format!("{id}@contoso.example"), *enabled),
        );
    }
    for (id, members) in groups {
        v.groups.insert(
            id.to_string(),
            (
                json!({"id": id, "displayName": format!("group {id}")}),
                members
                    .iter()
                    .map(|(t, m)| (t.to_string(), m.to_string()))
                    .collect(),
            ),
        );
    }
    v
}

fn members(dir: &Path, group: &str) -> Vec<String> {
    let path = dir.join(format!("graph/entra-group-members/{group}.json"));
    if !path.exists() {
        return Vec::new();
    }
    let mut ids: Vec<String> = read_list(&path)
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

const U1: &str = "aaaaaaaa-0000-4000-8000-000000000001";
const U2: &str = "aaaaaaaa-0000-4000-8000-000000000002";
const U3: &str = "aaaaaaaa-0000-4000-8000-000000000003";
const G1: &str = "bbbbbbbb-0000-4000-8000-000000000001";
const G2: &str = "bbbbbbbb-0000-4000-8000-000000000002";

#[tokio::test]
async fn the_directory_is_read_once_then_by_delta() {
    let azure = FakeAzure::start().await;
    azure.with(|w| {
        w.graph_page_size = 2;
        w.versions = vec![version(
            &[(U1, true), (U2, true), (U3, true)],
            &[
                (G1, &[(USER, U1), (USER, U2), (GROUP, G2)]),
                (G2, &[(USER, U3)]),
            ],
        )];
    });
    let out = tempfile::tempdir().unwrap();
    let (sync, registry) = syncer(&azure, &azure.config(out.path(), &[], true));
    let results = sync.run_once().await;
    let Ok(Outcome::Published(summary)) = result(&results, "graph") else {
        panic!("{results:?}");
    };
    assert!(
        summary.contains("3 users, 2 groups, 4 memberships (full read)"),
        "{summary}"
    );
    assert_eq!(members(out.path(), G1), [U1, U2, G2]);
    let graph_calls = azure.calls("graph").len();
    assert!(graph_calls >= 4, "paged: {graph_calls} calls");

    // The directory validates and expands nested groups.
    let loaded = scopegate::load_snapshot(
        &[out.path().to_path_buf()],
        None,
        &IndexOptions::default(),
        1,
    )
    .unwrap();
    let stats = loaded.snapshot.stats();
    assert_eq!(stats.directory_users, 3, "{stats:?}");
    assert_eq!(stats.directory_groups, 2, "{stats:?}");

    // Changes: U2 disabled, U1 leaves G1, U3 deleted from the tenant.
    azure.with(|w| {
        w.log.clear();
        w.versions.push(version(
            &[(U1, true), (U2, false)],
            &[(G1, &[(USER, U2), (GROUP, G2)]), (G2, &[])],
        ));
    });
    let results = sync.run_once().await;
    let Ok(Outcome::Published(summary)) = result(&results, "graph") else {
        panic!("{results:?}");
    };
    assert!(summary.contains("(delta)"), "{summary}");
    let log = azure.log();
    assert!(
        log.iter()
            .filter(|l| l.service == "graph")
            .all(|l| l.target.contains("$deltatoken="))
    );
    assert_eq!(members(out.path(), G1), [U2, G2]);
    assert!(members(out.path(), G2).is_empty());
    let users = read_list(&out.path().join("graph/entra-users.json"));
    assert_eq!(users.len(), 2);
    let u2 = users.iter().find(|u| u["id"] == U2).unwrap();
    assert_eq!(u2["accountEnabled"], false);

    // Nothing changed: nothing published, the delta link moves on.
    let results = sync.run_once().await;
    assert_unchanged(&results, "graph");

    // Graph forgot the delta state (410 Gone): a full read gives the whole directory again.
    azure.with(|w| {
        w.versions.push(version(
            &[(U1, true), (U2, false)],
            &[(G1, &[(USER, U1), (USER, U2), (GROUP, G2)])],
        ));
        w.oldest_delta_token = 2;
    });
    let results = sync.run_once().await;
    let Ok(Outcome::Published(summary)) = result(&results, "graph") else {
        panic!("{results:?}");
    };
    assert!(summary.contains("(full read)"), "{summary}");
    assert_eq!(members(out.path(), G1), [U1, U2, G2]);
    assert_eq!(
        read_list(&out.path().join("graph/entra-groups.json")).len(),
        1
    );
    let text = metrics_text(&registry);
    assert_eq!(
        support::metric(
            &text,
            "scopegate_sync_objects{kind=\"memberships\",source=\"graph\"}"
        ),
        Some(3.0)
    );

    // A restarted sync continues from the published files and delta links.
    azure.with(|w| {
        w.log.clear();
        w.versions.push(version(
            &[(U1, true), (U2, true)],
            &[(G1, &[(USER, U1), (USER, U2)])],
        ));
    });
    let (restarted, _) = syncer(&azure, &azure.config(out.path(), &[], true));
    let results = restarted.run_once().await;
    assert_published(&results, "graph");
    assert!(
        azure
            .log()
            .iter()
            .filter(|l| l.service == "graph")
            .all(|l| l.target.contains("$deltatoken="))
    );
    assert_eq!(members(out.path(), G1), [U1, U2]);

    // Every membership gone at once: held, the files stay.
    azure.with(|w| {
        w.versions
            .push(version(&[(U1, true), (U2, true)], &[(G1, &[])]))
    });
    let results = restarted.run_once().await;
    let Err(SyncError::Held(message)) = result(&results, "graph") else {
        panic!("not held: {results:?}");
    };
    assert!(
        message.contains("delete 2 of the 2 group memberships"),
        "{message}"
    );
    assert_eq!(members(out.path(), G1), [U1, U2]);
}

#[test]
fn bad_configs_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("output: /x\n", "nothing to sync"),
        ("output: /x\narm:\n  scopes: []\n", "arm.scopes is empty"),
        (
            "output: /x\narm:\n  scopes: [subscriptions/x]\n",
            "not an Azure resource id",
        ),
        (
            "output: /x\ngraph:\n  endpoint: http://graph\n",
            "not an https:// URL",
        ),
        (
            "output: /x\ngraph: {}\nmaxDeletionFraction: 2\n",
            "between 0 and 1",
        ),
        (
            "output: /x\ngraph: {}\ninterval: soon\n",
            "`soon` is not a duration",
        ),
        (
            "output: /x\ngraph: {}\nscopes: [a]\n",
            "unknown field `scopes`",
        ),
    ];
    for (text, want) in cases {
        let path = dir.path().join("sync.yaml");
        std::fs::write(&path, text).unwrap();
        let e = SyncConfig::read(&path).unwrap_err();
        assert!(e.contains(want), "{text}: {e}");
        assert!(e.contains("sync.yaml"), "{e}");
    }
}

#[test]
fn sync_once_from_the_command_line_reports_a_missing_credential() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sync.yaml");
    std::fs::write(
        &path,
        format!("output: {}\ngraph: {{}}\n", dir.path().display()),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_scopegate"))
        .args(["sync", "--once", "--config", path.to_str().unwrap()])
        .env_remove("AZURE_TENANT_ID")
        .env_remove("AZURE_CLIENT_ID")
        .env_remove("AZURE_FEDERATED_TOKEN_FILE")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(
        support::stderr(&out).contains("AZURE_TENANT_ID"),
        "{}",
        support::stderr(&out)
    );
}

/// A policy directory (the Kubernetes examples and the `also` files of policies/azure) and a
/// sync config beside it that syncs Resource Manager into `<policies>/synced` every
/// `interval`, its credential named in the file (the server reads no test environment).
fn policies_with_sync(
    azure: &FakeAzure,
    interval: &str,
    also: &[&str],
) -> (tempfile::TempDir, PathBuf) {
    let policies = tempfile::tempdir().unwrap();
    support::copy_dir(
        &support::root().join("policies/kubernetes"),
        policies.path(),
    );
    for file in also {
        std::fs::copy(
            support::root().join("policies/azure").join(file),
            policies.path().join(file),
        )
        .unwrap();
    }
    let config = policies.path().with_extension("sync.yaml");
    let text = format!(
        "output: {out}\ninterval: {interval}\ncaFile: {ca}\ncredential:\n  tenantId: {tenant}\n  clientId: {client}\n  authorityHost: {authority}/\n  federatedTokenFile: {token}\narm:\n  endpoint: {arm}\n  scopes: [{SUBSCRIPTION}]\n",
        out = policies.path().join("synced").display(),
        ca = azure.ca_file.display(),
        tenant = fake_azure::TENANT,
        client = fake_azure::CLIENT_ID,
        authority = azure.token_origin,
        token = azure.token_file.display(),
        arm = azure.arm_origin,
    );
    std::fs::write(&config, text).unwrap();
    (policies, config)
}

/// `serve --sync-config`: not ready until the sync has published, then the synced
/// assignments decide, and a change in Azure reaches the decisions with no file edited.
#[tokio::test]
async fn serve_with_sync_config_decides_from_what_azure_says() {
    let azure = FakeAzure::start().await;
    azure.with(|w| {
        load_examples(w);
        // The first calls are throttled: the server is up before the sync has published.
        w.throttle_next = 1;
        w.retry_after = "2".into();
    });
    let pki = support::Pki::new();
    let (policies, config) = policies_with_sync(&azure, "1s", &[]);
    let server = support::serve_tls(
        &pki,
        policies.path(),
        &["--sync-config", config.to_str().unwrap()],
    )
    .await;
    let (status, body) = support::admin_get(server.admin_addr, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("sync has not published yet: arm"), "{body}");
    assert!(support::readyz_becomes(server.admin_addr, 200, 15).await);

    let ask = |name: &'static str| {
        let pki = &pki;
        let addr = server.addr;
        async move {
            let mut conn = support::connect_apiserver(addr, pki).await;
            let (_, answer) = conn.post(support::request_fixture(name)).await.unwrap();
            answer["status"].clone()
        }
    };
    // The synced deny assignment and role assignments decide.
    let secret = ask("alice-get-secret.json").await;
    assert_eq!(secret["denied"], true, "{secret}");
    assert!(
        secret["reason"]
            .as_str()
            .unwrap()
            .contains("no-secrets-outside-platform")
    );
    let deployment = ask("alice-create-deployment.json").await;
    assert_eq!(deployment["allowed"], true, "{deployment}");

    // Azure removes the finance developers' assignment: the next sync takes their access.
    azure.with(|w| {
        w.role_assignments
            .retain(|a| a["properties"]["principalId"] != "6f0b7e4a-1c2d-4e5f-8a9b-000000000f1d")
    });
    let mut revoked = false;
    for _ in 0..80 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if ask("alice-create-deployment.json").await["allowed"] == false {
            revoked = true;
            break;
        }
    }
    assert!(revoked, "the removed assignment still grants");
    let text = support::metrics(server.admin_addr).await;
    assert!(
        support::metric(
            &text,
            "scopegate_sync_runs_total{result=\"success\",source=\"arm\"}"
        )
        .unwrap()
            >= 2.0,
        "{text}"
    );
    let (_, verbose) = support::admin_get(server.admin_addr, "/readyz?verbose").await;
    assert!(verbose.contains("[+] sync arm: ok"), "{verbose}");
    let _ = std::fs::remove_file(&config);
}

#[test]
fn a_sync_output_outside_the_policy_directories_is_refused_at_start() {
    let policies = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let config = elsewhere.path().join("sync.yaml");
    std::fs::write(
        &config,
        format!(
            "output: {}\ncredential: {{tenantId: t, clientId: c, federatedTokenFile: /t}}\ngraph: {{}}\n",
            elsewhere.path().join("out").display()
        ),
    )
    .unwrap();
    let out = support::scopegate(&[
        "serve",
        "--insecure-http",
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
        "--policies",
        policies.path().to_str().unwrap(),
        "--sync-config",
        config.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        support::stderr(&out).contains("is not below a policy directory"),
        "{}",
        support::stderr(&out)
    );
}

#[test]
fn the_example_sync_config_is_read() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_scopegate"))
        .args(["sync", "--check", "--config", "deploy/sync.yaml"])
        .current_dir(support::root())
        .env("AZURE_TENANT_ID", fake_azure::TENANT)
        .env("AZURE_CLIENT_ID", fake_azure::CLIENT_ID)
        .env(
            "AZURE_FEDERATED_TOKEN_FILE",
            "/var/run/secrets/azure/tokens/azure-identity-token",
        )
        .env_remove("AZURE_AUTHORITY_HOST")
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", support::stderr(&out));
    assert!(printed.contains("every 5m"), "{printed}");
    assert!(
        printed.contains("arm: https://management.azure.com at 1 scope(s)"),
        "{printed}"
    );
    assert!(printed.contains("workload identity"), "{printed}");
    assert!(
        printed.contains(&format!(
            "https://login.microsoftonline.com/{}/oauth2/v2.0/token",
            fake_azure::TENANT
        )),
        "{printed}"
    );
}

/// Synced files the server refuses (here a built-in role that Azure changed, also loaded from
/// the shipped file) never count as published: the server stays unready and says why.
#[tokio::test]
async fn synced_files_the_server_refuses_keep_it_unready() {
    let azure = FakeAzure::start().await;
    azure.with(|w| {
        load_examples(w);
        let reader = w
            .role_definitions
            .iter_mut()
            .find(|d| d["properties"]["roleName"] == "Azure Kubernetes Service RBAC Reader")
            .unwrap();
        reader["properties"]["permissions"][0]["dataActions"]
            .as_array_mut()
            .unwrap()
            .push(json!(
                "Microsoft.ContainerService/managedClusters/secrets/read"
            ));
    });
    let pki = support::Pki::new();
    let (policies, config) = policies_with_sync(&azure, "1h", &["aks-builtin-roles.json"]);
    let server = support::serve_tls(
        &pki,
        policies.path(),
        &["--sync-config", config.to_str().unwrap()],
    )
    .await;
    let mut said = String::new();
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (status, body) = support::admin_get(server.admin_addr, "/readyz").await;
        assert_eq!(status, 503, "{body}");
        if body.contains("does not serve them") {
            said = body;
            break;
        }
    }
    assert!(said.contains("duplicate role definition"), "{said}");
    let text = support::metrics(server.admin_addr).await;
    assert_eq!(
        support::metric(
            &text,
            "scopegate_sync_runs_total{result=\"error\",source=\"arm\"}"
        ),
        Some(1.0),
        "{text}"
    );
    let _ = std::fs::remove_file(&config);
}

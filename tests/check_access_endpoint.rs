//! `POST {resourceId}/providers/Microsoft.Authorization/checkaccess` over real HTTPS with the
//! client certificate kube-apiserver would present, the way Guard calls ARM: the path with
//! `?api-version=2018-09-01-preview`, batches of 200 actions sent at once, ARM error bodies.
//! The policy is a checkaccess.jsonl case written to a temp dir as the `az` exports it holds.

mod support;

use serde_json::{Value, json};
use support::{Pki, admin_metric, connect_apiserver, readyz_becomes, serve_tls};

const API_VERSION: &str = "api-version=2018-09-01-preview";
const OID: &str = "aaaaaaaa-0000-4000-8000-000000000001";
const CLUSTER: &str = "/subscriptions/00000000-0000-0000-0000-00000000aaaa/resourceGroups/rg-aks/providers/Microsoft.ContainerService/managedClusters/aks1";
const ADMIN_CREDENTIAL: &str =
    "Microsoft.ContainerService/managedClusters/listClusterAdminCredential/action";
const RUNCOMMAND: &str = "Microsoft.ContainerService/managedClusters/runcommand/action";

/// The vector case whose policy the server holds: a Cluster Admin Role assignment at `aks1`
/// and a deny assignment for everyone on `listClusterAdminCredential/action`.
fn case() -> Value {
    let text =
        std::fs::read_to_string(support::root().join("tests/fixtures/vectors/checkaccess.jsonl"))
            .unwrap();
    text.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|c| c["name"] == "deny_everyone_blocks_admin_credential")
        .unwrap()
}

/// The case's policy objects as files, the shapes `az` prints.
fn policy_dir(case: &Value) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for key in ["roles", "assignments", "deny_assignments"] {
        std::fs::write(
            dir.path().join(format!("{key}.json")),
            case[key].to_string(),
        )
        .unwrap();
    }
    dir
}

fn path(resource: &str) -> String {
    format!("{resource}/providers/Microsoft.Authorization/checkaccess?{API_VERSION}")
}

/// Guard's body: `IsDataAction` as given, `Attributes` null.
fn body(resource: &str, actions: &[(&str, bool)]) -> Value {
    let actions: Vec<Value> = actions
        .iter()
        .map(|(id, data)| json!({"Id": id, "IsDataAction": data, "Attributes": null}))
        .collect();
    json!({"Subject": {"Attributes": {"ObjectId": OID}}, "Actions": actions, "Resource": {"Id": resource}})
}

/// The decision the case's policy gives each kind of operation asked about here: the
/// vector's expectations for its two actions, and NotAllowed for an operation the role lists
/// only among `actions` asked as a data action (spec F3: the other list grants nothing).
fn expected(case: &Value, id: &str, data: bool) -> &'static str {
    if data {
        return "NotAllowed";
    }
    let found = case["expected"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["actionId"] == id)
        .unwrap();
    match found["accessDecision"].as_str().unwrap() {
        "Allowed" => "Allowed",
        "Denied" => "Denied",
        other => panic!("unexpected {other}"),
    }
}

async fn start(case: &Value) -> (Pki, tempfile::TempDir, scopegate::server::Running) {
    let pki = Pki::new();
    let policies = policy_dir(case);
    let running = serve_tls(&pki, policies.path(), &[]).await;
    assert!(readyz_becomes(running.admin_addr, 200, 10).await);
    (pki, policies, running)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guard_batches_of_200_are_answered_in_order() {
    let case = case();
    let (pki, _policies, running) = start(&case).await;
    let kinds = [
        (ADMIN_CREDENTIAL, false),
        (RUNCOMMAND, false),
        (RUNCOMMAND, true),
    ];
    let actions: Vec<(&str, bool)> = (0..450).map(|i| kinds[i % 3]).collect();
    // Guard sends every batch of 200 at once, each on its own connection.
    let batches: Vec<Vec<(&str, bool)>> = actions.chunks(200).map(<[_]>::to_vec).collect();
    assert_eq!(
        batches.iter().map(Vec::len).collect::<Vec<_>>(),
        [200, 200, 50]
    );
    let mut calls = Vec::new();
    for batch in &batches {
        let mut conn = connect_apiserver(running.addr, &pki).await;
        let request = body(CLUSTER, batch).to_string();
        calls.push(tokio::spawn(async move {
            conn.post_to(&path(CLUSTER), request).await.unwrap()
        }));
    }
    for (batch, call) in batches.iter().zip(calls) {
        let (status, answer) = call.await.unwrap();
        assert_eq!(status, 200, "{answer}");
        let answer = answer.as_array().unwrap();
        assert_eq!(answer.len(), batch.len());
        for ((id, data), decision) in batch.iter().zip(answer) {
            assert_eq!(decision["actionId"], *id);
            assert_eq!(decision["isDataAction"], *data);
            assert_eq!(decision["timeToLiveInMs"], 300_000);
            let want = expected(&case, id, *data);
            assert_eq!(
                decision["accessDecision"], want,
                "{id} data={data}: {decision}"
            );
            match want {
                "Allowed" => {
                    assert_eq!(
                        decision["roleAssignment"]["id"], case["assignments"][0]["id"],
                        "{decision}"
                    );
                    assert_eq!(decision["roleAssignment"]["principalId"], OID);
                    assert!(decision.get("denyAssignment").is_none(), "{decision}");
                }
                "Denied" => {
                    assert_eq!(
                        decision["denyAssignment"]["id"], case["deny_assignments"][0]["id"],
                        "{decision}"
                    );
                    assert!(decision.get("roleAssignment").is_none(), "{decision}");
                }
                _ => {
                    assert!(decision.get("roleAssignment").is_none(), "{decision}");
                    assert!(decision.get("denyAssignment").is_none(), "{decision}");
                }
            }
        }
    }
    let counted = admin_metric(
        running.admin_addr,
        r#"scopegate_check_access_decisions_total{decision="Denied"}"#,
    )
    .await;
    assert_eq!(counted, Some(150.0));

    // The path in another case, Guard's namespace form and the root form.
    let mut conn = connect_apiserver(running.addr, &pki).await;
    let upper = format!("{CLUSTER}/PROVIDERS/microsoft.authorization/CheckAccess?{API_VERSION}");
    let (status, answer) = conn
        .post_to(&upper, body(CLUSTER, &[(RUNCOMMAND, false)]).to_string())
        .await
        .unwrap();
    assert_eq!(
        (status, answer[0]["accessDecision"].clone()),
        (200, json!("Allowed"))
    );
    let namespace = format!("{CLUSTER}/namespaces/dev");
    let (status, answer) = conn
        .post_to(
            &path(&namespace),
            body(&namespace, &[(ADMIN_CREDENTIAL, false)]).to_string(),
        )
        .await
        .unwrap();
    assert_eq!(
        (status, answer[0]["accessDecision"].clone()),
        (200, json!("Denied"))
    );
    let (status, answer) = conn
        .post_to(
            &path(""),
            body(&CLUSTER.to_ascii_uppercase(), &[(RUNCOMMAND, true)]).to_string(),
        )
        .await
        .unwrap();
    assert_eq!(
        (status, answer[0]["accessDecision"].clone()),
        (200, json!("NotAllowed"))
    );
    running.stop().await;
}

/// A body larger than `--max-body-bytes` is refused with 413 and ARM's error body, never
/// answered, and counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_question_is_413_with_arms_error_body() {
    let case = case();
    let pki = Pki::new();
    let policies = policy_dir(&case);
    let running = serve_tls(&pki, policies.path(), &["--max-body-bytes", "4096"]).await;
    assert!(readyz_becomes(running.admin_addr, 200, 10).await);
    let many: Vec<(&str, bool)> = (0..100).map(|_| (RUNCOMMAND, false)).collect();
    let request = body(CLUSTER, &many).to_string();
    assert!(request.len() > 4096);
    let mut conn = connect_apiserver(running.addr, &pki).await;
    let (status, answer) = conn.post_to(&path(CLUSTER), request).await.unwrap();
    assert_eq!(status, 413, "{answer}");
    assert_eq!(answer["error"]["code"], "RequestEntityTooLarge", "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("larger than 4096 bytes"),
        "{answer}"
    );
    assert_eq!(
        admin_metric(
            running.admin_addr,
            r#"scopegate_check_access_requests_total{result="too_large"}"#
        )
        .await,
        Some(1.0)
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_400_with_arms_error_body() {
    let case = case();
    let (pki, _policies, running) = start(&case).await;
    let mut conn = connect_apiserver(running.addr, &pki).await;
    let one = [(RUNCOMMAND, false)];
    let too_many: Vec<(&str, bool)> = (0..201).map(|_| (RUNCOMMAND, false)).collect();
    let mut unknown = body(CLUSTER, &one);
    unknown["Actions"][0]["Effect"] = json!("Allow");
    let mut no_subject = body(CLUSTER, &one);
    no_subject["Subject"]["Attributes"] =
        json!({"Groups": ["bbbbbbbb-0000-4000-8000-000000000001"]});
    let malformed = "/subscriptions/00000000-0000-0000-0000-00000000aaaa/resourceGroups";
    let cases: Vec<(String, Value, &str)> = vec![
        (
            path(CLUSTER),
            body(CLUSTER, &too_many),
            "`Actions` has 201 actions; at most 200 are allowed in one call",
        ),
        (path(CLUSTER), unknown, "unknown field `Effect`"),
        (
            path(CLUSTER),
            no_subject,
            "`Subject.Attributes` has neither `ObjectId` nor `ServiceAccount`",
        ),
        (
            path(""),
            body(malformed, &one),
            "`Resource.Id` is not an Azure resource id",
        ),
        (
            path(malformed),
            body(CLUSTER, &one),
            "the resource id in the path is not an Azure resource id",
        ),
        (
            path(&format!("{CLUSTER}0")),
            body(CLUSTER, &one),
            "is not the body's resource",
        ),
    ];
    for (at, request, message) in cases {
        let (status, answer) = conn.post_to(&at, request.to_string()).await.unwrap();
        assert_eq!(status, 400, "{at}: {answer}");
        assert_eq!(answer["error"]["code"], "BadRequest", "{answer}");
        let text = answer["error"]["message"].as_str().unwrap();
        assert!(text.contains(message), "{at}: {text}\n  want: {message}");
    }
    let (status, answer) = conn.post_to(&path(CLUSTER), "{\"Subject\":").await.unwrap();
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not a valid CheckAccess request")
    );
    assert_eq!(
        admin_metric(
            running.admin_addr,
            r#"scopegate_check_access_requests_total{result="bad_request"}"#
        )
        .await,
        Some(7.0)
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_answer_before_the_first_good_policy() {
    let case = case();
    let pki = Pki::new();
    let policies = policy_dir(&case);
    std::fs::write(policies.path().join("broken.json"), "{ not json").unwrap();
    let running = serve_tls(&pki, policies.path(), &[]).await;
    let mut conn = connect_apiserver(running.addr, &pki).await;
    let (status, answer) = conn
        .post_to(
            &path(CLUSTER),
            body(CLUSTER, &[(RUNCOMMAND, false)]).to_string(),
        )
        .await
        .unwrap();
    assert_eq!(status, 503, "{answer}");
    assert_eq!(answer["error"]["code"], "ServiceUnavailable", "{answer}");
    running.stop().await;
}

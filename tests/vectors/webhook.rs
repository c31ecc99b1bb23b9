//! Wire-level vectors: webhook-protocol-cases.jsonl through the real HTTPS server (mutual
//! TLS, as kube-apiserver connects), and the `resp-*.json` answers through the encoder and
//! the decoder.

use super::support::{connect_apiserver, request_fixture, serve_examples};
use super::*;
use scopegate::model::Source;
use scopegate::sar::{ApiVersion, DecodeError, encode_response, status_value};

/// A body the vectors name as `sar-examples/<file>`: the copy in tests/fixtures/sar.
fn sar_fixture(path: &str) -> Vec<u8> {
    let file = path.rsplit('/').next().unwrap_or(path);
    std::fs::read(fixtures().join("sar").join(file)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The request body of a server-side case.
fn body(case: &Value) -> Option<Vec<u8>> {
    if let Some(file) = case["request_file"].as_str() {
        return Some(sar_fixture(file));
    }
    case.get("request_inline")
        .map(|v| serde_json::to_vec(v).expect("JSON"))
}

/// The same body with `edit` applied to its JSON.
fn edited(body: &[u8], edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(body).expect("JSON body");
    edit(&mut v);
    serde_json::to_vec(&v).expect("JSON")
}

/// Checks the generic `expect` keys of a server-side case against one answer.
fn check_expect(name: &str, expect: &Value, status: u16, answer: &Value) -> Result<(), String> {
    let fail = |what: String| Err(format!("{name}: {what}; answer {status} {answer}"));
    for (key, want) in expect.as_object().into_iter().flatten() {
        match key.as_str() {
            "http_status" if want.as_u64() != Some(u64::from(status)) => {
                return fail(format!("HTTP status {want}"));
            }
            "response.apiVersion" if answer["apiVersion"] != *want => {
                return fail(format!("apiVersion {want}"));
            }
            "response.kind" if answer["kind"] != *want => return fail(format!("kind {want}")),
            "response.status.allowed" => {
                let allowed = &answer["status"]["allowed"];
                let ok = if *want == "<bool, required>" {
                    allowed.is_boolean()
                } else {
                    allowed == want
                };
                if !ok {
                    return fail(format!("status.allowed {want}"));
                }
            }
            "forbid" if *want == "status.allowed && status.denied" => {
                if answer["status"]["allowed"] == true && answer["status"]["denied"] == true {
                    return fail("allowed and denied together".into());
                }
            }
            "http_status" | "response.apiVersion" | "response.kind" | "note" => {}
            "apiserver_effect" => {}
            other => return fail(format!("unknown expectation `{other}`")),
        }
    }
    Ok(())
}

/// Cases about kube-apiserver's side (its retries, caches, TLS client and matchConditions):
/// they describe the caller, not an answer this server gives.
const APISERVER_SIDE: usize = 14;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_protocol_cases_through_the_https_server() {
    let all = cases("webhook-protocol-cases.jsonl");
    assert_eq!(all.len(), 23);
    let (pki, _policies, server) = serve_examples(&[]).await;
    let mut conn = connect_apiserver(server.addr, &pki).await;
    let mut answers: Vec<(String, Value)> = Vec::new();
    let mut failures = Vec::new();
    let mut ran = 0;
    let mut apiserver_side = 0;
    for case in &all {
        let name = name(case).to_string();
        match case["side"].as_str() {
            Some("apiserver") => {
                apiserver_side += 1;
                continue;
            }
            Some("server") => {}
            other => panic!("{name}: unknown side {other:?}"),
        }
        ran += 1;
        let expect = &case["expect"];
        // A case without a body of its own: a request the example policies do not allow.
        let not_allowed = name.starts_with("a 'not allowed' answer");
        let body = match (body(case), case["response_file"].as_str()) {
            (Some(body), _) => body,
            (None, Some(file)) => {
                // An invalid answer: the encoder can never write it (see the resp-* test);
                // every answer of this run is checked below.
                let invalid: Value =
                    serde_json::from_slice(&sar_fixture(file)).expect("JSON fixture");
                assert_eq!(invalid["status"]["allowed"], true, "{name}");
                assert_eq!(invalid["status"]["denied"], true, "{name}");
                continue;
            }
            (None, None) if not_allowed => request_fixture("alice-get-secret.json"),
            (None, None) => panic!("{name}: no request"),
        };
        let (status, answer) = conn
            .post(body.clone())
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        if let Err(e) = check_expect(&name, expect, status, &answer) {
            failures.push(e);
        }
        if not_allowed && answer["status"]["allowed"] != false {
            failures.push(format!("{name}: the request is allowed: {answer}"));
        }
        // The answer must not change when what may only narrow the request is dropped.
        let narrowing = if case["request_inline"].is_object() {
            Some("rawSelector")
        } else if name.starts_with("selectors present") {
            Some("selectors")
        } else {
            None
        };
        if let Some(what) = narrowing {
            let without = edited(&body, |v| {
                let attributes = &mut v["spec"]["resourceAttributes"];
                if let Some(a) = attributes.as_object_mut() {
                    a.remove("fieldSelector");
                    a.remove("labelSelector");
                }
            });
            assert_ne!(without, body, "{name}: nothing to drop");
            let (_, plain) = conn
                .post(without)
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            if answer["status"]["allowed"] == true && plain["status"]["allowed"] != true {
                failures.push(format!("{name}: {what} broadened the answer"));
            }
            if answer["status"] != plain["status"] {
                failures.push(format!(
                    "{name}: {what} changed the answer: {answer} vs {plain}"
                ));
            }
        }
        answers.push((name, answer));
    }
    for (name, answer) in &answers {
        assert!(
            !(answer["status"]["allowed"] == true && answer["status"]["denied"] == true),
            "{name}: {answer}"
        );
    }
    assert_eq!((ran, apiserver_side), (9, APISERVER_SIDE));
    server.stop().await;
    assert_no_failures(&failures);
}

/// The decision an answer fixture states: verdict from `allowed`/`denied`, its reason and
/// evaluation error.
fn stated(status: &Value) -> Decision {
    let verdict = match (status["allowed"].as_bool(), status["denied"].as_bool()) {
        (Some(true), _) => Verdict::Allow,
        (_, Some(true)) => Verdict::Deny,
        _ => Verdict::NoOpinion,
    };
    let reason = status["reason"].as_str().unwrap_or_default().to_string();
    let decision = Decision::new(verdict, Source::Request, reason);
    match status["evaluationError"].as_str() {
        Some(e) => decision.with_error(e),
        None => decision,
    }
}

#[test]
fn response_fixtures_through_the_encoder_and_decoder() {
    let dir = fixtures().join("sar");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("sar fixtures")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("resp-") && n.ends_with(".json"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 5, "{files:?}");
    for file in &files {
        let bytes = std::fs::read(dir.join(file)).expect("fixture");
        let fixture: Value = serde_json::from_slice(&bytes).expect("JSON fixture");
        let status = &fixture["status"];
        let decision = stated(status);
        let encoded: Value = serde_json::from_slice(&encode_response(ApiVersion::V1, &decision))
            .expect("the encoder writes JSON");
        if status["allowed"] == true && status["denied"] == true {
            // Not a valid answer: no decision encodes to it.
            assert_eq!(encoded["status"]["denied"], Value::Null, "{file}");
            for verdict in [Verdict::Allow, Verdict::Deny, Verdict::NoOpinion] {
                let d = Decision::new(verdict, Source::Request, "r");
                let v: Value =
                    serde_json::from_slice(&encode_response(ApiVersion::V1, &d)).expect("JSON");
                assert!(
                    !(v["status"]["allowed"] == true && v["status"]["denied"] == true),
                    "{verdict:?}: {v}"
                );
            }
        } else {
            // Exactly the fixture, plus the empty `metadata` kube-apiserver's own
            // serialiser writes too.
            let mut want = fixture.clone();
            want["metadata"] = serde_json::json!({});
            assert_eq!(encoded, want, "{file}");
            assert_eq!(status_value(&decision), *status, "{file}");
        }
        // An answer sent back as a request is a review without a spec: denied, not read
        // as a request.
        match scopegate::sar::decode(&bytes) {
            Err(DecodeError::Unevaluable(u)) => {
                assert_eq!(u.api_version, ApiVersion::V1, "{file}");
                assert!(u.why.contains("no spec"), "{file}: {}", u.why);
                assert!(u.decision().denied(), "{file}");
            }
            other => panic!("{file}: {other:?}"),
        }
    }
}

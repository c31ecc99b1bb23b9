//! The webhook over real HTTPS: fixture bodies exactly as kube-apiserver sends them,
//! mutual TLS, malformed, oversized and slow requests, metrics and readiness.

mod support;

use serde_json::Value;
use support::*;
use tokio::io::AsyncWriteExt;

fn fixture_bodies() -> Vec<(String, Vec<u8>)> {
    let dir = root().join("tests/fixtures/sar");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name.ends_with(".json") && !name.starts_with("resp-") {
            out.push((name, std::fs::read(&path).unwrap()));
        }
    }
    let captured =
        std::fs::read_to_string(dir.join("captured-kube-apiserver-v1.36.jsonl")).unwrap();
    for (i, line) in captured.lines().enumerate() {
        let v: Value = serde_json::from_str(line).unwrap();
        out.push((
            format!("captured #{i}: {}", v["kubectl"]),
            serde_json::to_vec(&v["sar"]).unwrap(),
        ));
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fixture_gets_a_valid_answer_in_its_own_version() {
    let (pki, _policies, server) = serve_examples(&[]).await;
    let mut conn = connect_apiserver(server.addr, &pki).await;
    let bodies = fixture_bodies();
    assert!(bodies.len() >= 100, "fixtures: {}", bodies.len());
    for (name, body) in bodies {
        let request: Value = serde_json::from_slice(&body).unwrap();
        let (status, answer) = conn
            .post(body)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(status, 200, "{name}: {answer}");
        assert_eq!(answer["apiVersion"], request["apiVersion"], "{name}");
        assert_eq!(answer["kind"], "SubjectAccessReview", "{name}");
        let allowed = answer["status"]["allowed"]
            .as_bool()
            .unwrap_or_else(|| panic!("{name}: no allowed"));
        let denied = answer["status"]["denied"].as_bool().unwrap_or(false);
        assert!(!(allowed && denied), "{name}");
    }
    // The captured users carry no Entra object id: Azure has no opinion on them.
    let m = metrics(server.admin_addr).await;
    assert!(metric(&m, "scopegate_http_requests_total{code=\"200\"}").unwrap() >= 100.0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_match_the_engine_and_v1beta1_is_answered_in_v1beta1() {
    let (pki, _policies, server) = serve_examples(&[]).await;
    let mut conn = connect_apiserver(server.addr, &pki).await;
    let allow = request_fixture("alice-create-deployment.json");
    let (status, answer) = conn.post(allow).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(answer["status"]["allowed"], true);
    assert!(
        answer["status"]["reason"]
            .as_str()
            .unwrap()
            .contains("RBAC Writer")
    );
    let deny = request_fixture("alice-get-secret.json");
    let (_, answer) = conn.post(deny).await.unwrap();
    assert_eq!(answer["apiVersion"], "authorization.k8s.io/v1beta1");
    assert_eq!(answer["status"]["allowed"], false);
    assert_eq!(answer["status"]["denied"], true);
    let m = metrics(server.admin_addr).await;
    assert_eq!(
        metric(
            &m,
            "scopegate_decisions_total{decision=\"allow\",source=\"azure_rbac\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(
            &m,
            "scopegate_decisions_total{decision=\"deny\",source=\"azure_rbac\"}"
        ),
        Some(1.0)
    );
    assert!(m.contains("scopegate_decision_duration_seconds_bucket{le=\"0.000001\"}"));
    assert!(
        metric(
            &m,
            "scopegate_tls_certificate_expiry_timestamp_seconds{certificate=\"serving\"}"
        )
        .unwrap()
            > 1.7e9
    );
    assert_eq!(metric(&m, "scopegate_policy_generation"), Some(1.0));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_are_required_and_checked() {
    let (pki, _policies, server) =
        serve_examples(&["--allowed-client-names", "kube-apiserver"]).await;
    let body = request_fixture("alice-create-deployment.json");
    // No client certificate: the handshake or the first request fails; the engine never runs.
    let without = connect_and_post(
        server.addr,
        client_config(&pki.ca.pem.cert, None),
        body.clone(),
    )
    .await;
    assert!(without.is_err(), "a client without certificate was served");
    // A certificate from another CA is refused too.
    let other = scopegate::certs::Authority::new("other").unwrap();
    let stranger = other.client("kube-apiserver", 1).unwrap();
    let refused = connect_and_post(
        server.addr,
        client_config(&pki.ca.pem.cert, Some(&stranger)),
        body.clone(),
    )
    .await;
    assert!(
        refused.is_err(),
        "a certificate from another CA was accepted"
    );
    // A valid certificate with a name not on the list: 403, never decided.
    let intruder = pki.ca.client("someone-else", 1).unwrap();
    let mut conn = connect_as(server.addr, &pki, &intruder).await;
    let (status, answer) = conn.post(body.clone()).await.unwrap();
    assert_eq!(status, 403, "{answer}");
    // The right client is served.
    let mut conn = connect_apiserver(server.addr, &pki).await;
    assert_eq!(conn.post(body).await.unwrap().0, 200);
    let m = metrics(server.admin_addr).await;
    assert_eq!(
        metric(
            &m,
            "scopegate_decisions_total{decision=\"allow\",source=\"azure_rbac\"}"
        ),
        Some(1.0),
        "only the allowed client reached the engine"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_errors() {
    let (pki, _policies, server) =
        serve_examples(&["--max-body-bytes", "4096", "--read-timeout-seconds", "1"]).await;
    let config = pki.apiserver_config();
    let mut conn = connect(server.addr, config.clone()).await.unwrap();
    for (body, code, needle) in [
        ("not json", 400, "not a valid SubjectAccessReview"),
        (
            "{\"kind\":\"TokenReview\",\"apiVersion\":\"authentication.k8s.io/v1\"}",
            400,
            "TokenReview",
        ),
        (
            "{\"kind\":\"SubjectAccessReview\",\"apiVersion\":\"authorization.k8s.io/v2\",\"spec\":{}}",
            400,
            "apiVersion",
        ),
    ] {
        let (status, answer) = conn.post(body).await.unwrap();
        assert_eq!(status, code, "{body}: {answer}");
        assert_eq!(answer["kind"], "Status");
        assert!(
            answer["message"].as_str().unwrap().contains(needle),
            "{answer}"
        );
    }
    // Oversized: 413.
    let mut big = connect(server.addr, config.clone()).await.unwrap();
    let (status, answer) = big.post(vec![b' '; 10_000]).await.unwrap();
    assert_eq!(status, 413, "{answer}");
    // A malformed but decodable review is answered, never allowed.
    let odd = r#"{"kind":"SubjectAccessReview","apiVersion":"authorization.k8s.io/v1","spec":{"user":"alice","extra":{"scopegate.io/oid":["11111111-2222-4333-8444-555555555555"]},"resourceAttributes":{"verb":"get","resource":"pods","namespace":"../../aks10"}}}"#;
    let (status, answer) = conn.post(odd).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(answer["status"]["allowed"], false);
    assert_eq!(answer["status"]["denied"], true);
    assert!(
        answer["status"]["reason"]
            .as_str()
            .unwrap()
            .contains("DNS-1123")
    );
    // Slow client: headers never finish; the server cuts it off after the read timeout.
    let mut tls = tls_connect(server.addr, config).await.unwrap();
    tls.write_all(b"POST /authorize HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut buf = [0u8; 256];
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        tokio::io::AsyncReadExt::read(&mut tls, &mut buf),
    )
    .await;
    assert!(read.is_ok(), "slow client was not cut off");
    assert!(started.elapsed() < std::time::Duration::from_secs(4));
    // Other paths: 404 with a JSON error.
    // (the earlier connection has idled past the 1 s read timeout and was closed)
    let mut conn = connect_apiserver(server.addr, &pki).await;
    let (status, answer) = conn.post_to("/", "{}").await.unwrap();
    assert_eq!(status, 404);
    assert!(answer["message"].as_str().unwrap().contains("/authorize"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_ready_until_first_good_load_and_no_answer_meanwhile() {
    let pki = Pki::new();
    let policies = policy_dir();
    std::fs::write(policies.path().join("azure/broken.json"), "{ not json").unwrap();
    let server = serve_tls(&pki, policies.path(), &["--no-match", "deny"]).await;
    let (status, text) = admin_get(server.admin_addr, "/readyz").await;
    assert_eq!(status, 503, "{text}");
    assert_eq!(admin_get(server.admin_addr, "/livez").await.0, 200);
    let mut conn = connect_apiserver(server.addr, &pki).await;
    let body = request_fixture("alice-create-deployment.json");
    // No policy is no answer: neither a deny of its own nor a "no opinion" that would pass
    // the request on past every deny assignment. The failure policy decides.
    let (status, answer) = conn.post(body.clone()).await.unwrap();
    assert_eq!(status, 503, "{answer}");
    assert_eq!(answer["kind"], "Status", "{answer}");
    assert!(
        answer["message"].as_str().unwrap().contains("no policy"),
        "{answer}"
    );
    // Fix the file: ready within seconds, and the decision is made.
    std::fs::remove_file(policies.path().join("azure/broken.json")).unwrap();
    assert!(readyz_becomes(server.admin_addr, 200, 10).await);
    assert_eq!(conn.post(body).await.unwrap().1["status"]["allowed"], true);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shadow_mode_answers_no_opinion_and_plain_http_needs_the_flag() {
    let policies = policy_dir();
    let p = policies.path().display().to_string();
    let server = serve(&[
        "--policies",
        &p,
        "--insecure-http",
        "--mode",
        "shadow",
        "--no-match",
        "deny",
    ])
    .await;
    let mut conn = connect_plain(server.addr).await;
    let deny = request_fixture("alice-get-secret.json");
    let (status, answer) = conn.post(deny).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(answer["status"]["allowed"], false);
    assert!(answer["status"].get("denied").is_none());
    assert!(
        answer["status"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("shadow mode: scopegate would deny")
    );
    server.stop().await;
    // Without certificates and without --insecure-http, serve refuses to start.
    let argv = ["scopegate", "serve", "--policies", &p];
    let scopegate::cli::Command::Serve(args) =
        <scopegate::cli::Cli as clap::Parser>::try_parse_from(argv)
            .unwrap()
            .command
    else {
        unreachable!()
    };
    let engine = args.engine.resolve().unwrap();
    assert!(
        args.settings(&engine.file.server)
            .unwrap_err()
            .to_string()
            .contains("--tls-cert-file")
    );
}

/// A fixture's JSON with `edit` applied.
fn fixture_with(name: &str, edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut review: Value = serde_json::from_slice(&request_fixture(name)).unwrap();
    edit(&mut review);
    serde_json::to_vec(&review).unwrap()
}

/// Asserts a 200 answer in `api_version` that denies, with a reason containing `needle`.
fn assert_denied(status: u16, answer: &Value, api_version: &str, needle: &str) {
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["apiVersion"], api_version, "{answer}");
    assert_eq!(answer["kind"], "SubjectAccessReview", "{answer}");
    assert_eq!(answer["status"]["allowed"], false, "{answer}");
    assert_eq!(answer["status"]["denied"], true, "{answer}");
    let reason = answer["status"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains(needle), "`{needle}` not in {answer}");
}

/// As [`assert_denied`], for a review that could not be evaluated: it says so in
/// `evaluationError` too.
fn assert_unevaluable(status: u16, answer: &Value, api_version: &str, needle: &str) {
    assert_denied(status, answer, api_version, needle);
    let error = answer["status"]["evaluationError"]
        .as_str()
        .unwrap_or_default();
    assert!(error.contains(needle), "`{needle}` not in {answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reviews_that_cannot_be_evaluated_are_denied_not_refused() {
    let (pki, _policies, server) = serve_examples(&["--max-body-bytes", "4096"]).await;
    let config = pki.apiserver_config();
    let mut conn = connect(server.addr, config.clone()).await.unwrap();
    let v1 = "authorization.k8s.io/v1";
    let v1beta1 = "authorization.k8s.io/v1beta1";
    // alice reading a secret: a deny assignment applies. An extra key whose value is `null`
    // must not turn that into a 4xx (failurePolicy NoOpinion would then ask RBAC).
    let null_extra = fixture_with("alice-get-secret.json", |r| {
        r["spec"]["extra"]["scopes"] = Value::Null;
    });
    let (status, answer) = conn.post(null_extra).await.unwrap();
    assert_unevaluable(status, &answer, v1beta1, "cannot be evaluated");
    // A field of the wrong type, and a review without spec.
    let wrong_type = fixture_with("alice-create-deployment.json", |r| {
        r["spec"]["groups"] = Value::from(5);
    });
    let (status, answer) = conn.post(wrong_type).await.unwrap();
    assert_unevaluable(status, &answer, v1, "invalid type");
    let no_spec = fixture_with("alice-create-deployment.json", |r| {
        r.as_object_mut().unwrap().remove("spec");
    });
    let (status, answer) = conn.post(no_spec).await.unwrap();
    assert_unevaluable(status, &answer, v1, "no spec");
    // Larger than --max-body-bytes, with apiVersion and kind first as kube-apiserver writes
    // them: denied in the request's version, never allowed.
    let large = fixture_with("alice-get-secret.json", |r| {
        let groups = r["spec"]["group"].as_array_mut().unwrap();
        groups.extend((0..400).map(|i| Value::from(format!("padding-group-{i}"))));
    });
    assert!(large.len() > 4096);
    let (status, answer) = conn.post(large).await.unwrap();
    assert_unevaluable(status, &answer, v1beta1, "larger than 4096 bytes");
    // Too large and nothing in the first 4096 bytes says it is a SubjectAccessReview: 413
    // (each on a new connection).
    let spec_first = format!(
        "{{\"spec\":{{\"user\":\"{}\"}},\"kind\":\"SubjectAccessReview\",\"apiVersion\":\"{v1}\"}}",
        "a".repeat(5000)
    );
    let token_review = format!(
        "{{\"kind\":\"TokenReview\",\"apiVersion\":\"authentication.k8s.io/v1\",\"spec\":{{\"token\":\"{}\"}}}}",
        "a".repeat(5000)
    );
    for body in [spec_first, token_review] {
        let (status, answer) = connect_and_post(server.addr, config.clone(), body)
            .await
            .unwrap();
        assert_eq!(status, 413, "{answer}");
    }
    // Every one of them is counted as a decision of the request itself.
    let m = metrics(server.admin_addr).await;
    assert_eq!(
        metric(
            &m,
            "scopegate_decisions_total{decision=\"deny\",source=\"request\"}"
        ),
        Some(4.0),
        "{m}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loose_spellings_are_not_read_as_requests() {
    let (pki, _policies, server) = serve_examples(&[]).await;
    let mut conn = connect_apiserver(server.addr, &pki).await;
    let v1 = "authorization.k8s.io/v1";
    // The fixture is allowed through alice's group (Writer in finance-app).
    let allowed = fixture_with("alice-create-deployment.json", |_| {});
    assert_eq!(
        conn.post(allowed).await.unwrap().1["status"]["allowed"],
        true
    );
    // Object ids: only the hyphenated 8-4-4-4-12 form (any case) is one.
    for oid in [
        "{11111111-2222-4333-8444-555555555555}",
        "urn:uuid:11111111-2222-4333-8444-555555555555",
        "11111111222243338444555555555555",
        " 11111111-2222-4333-8444-555555555555 ",
    ] {
        let body = fixture_with("alice-create-deployment.json", |r| {
            r["spec"]["extra"]["scopegate.io/oid"] = serde_json::json!([oid]);
        });
        let (status, answer) = conn.post(body).await.unwrap();
        assert_denied(status, &answer, v1, "is not an object id");
    }
    let upper = fixture_with("alice-create-deployment.json", |r| {
        r["spec"]["extra"]["scopegate.io/oid"] =
            serde_json::json!(["11111111-2222-4333-8444-55555555555A"]);
    });
    assert_eq!(conn.post(upper).await.unwrap().1["status"]["allowed"], true);
    // A group spelled in braces is not the group the policy names.
    let braced_group = fixture_with("alice-create-deployment.json", |r| {
        r["spec"]["groups"] = serde_json::json!(["{6f0b7e4a-1c2d-4e5f-8a9b-000000000f1d}"]);
    });
    let (status, answer) = conn.post(braced_group).await.unwrap();
    assert_eq!(
        (status, &answer["status"]["allowed"]),
        (200, &Value::Bool(false)),
        "{answer}"
    );
    // `spec` (or an attributes block) given as a JSON array is not read field by field.
    let spec_array = fixture_with("alice-create-deployment.json", |r| {
        let s = r["spec"].take();
        r["spec"] = serde_json::json!([
            s["resourceAttributes"],
            null,
            s["user"],
            s["groups"],
            s["extra"],
            s["uid"]
        ]);
    });
    let (status, answer) = conn.post(spec_array).await.unwrap();
    assert_unevaluable(status, &answer, v1, "expected an object");
    let attributes_array = fixture_with("alice-create-deployment.json", |r| {
        r["spec"]["resourceAttributes"] =
            serde_json::json!(["finance-app", "create", "apps", "v1", "deployments"]);
    });
    let (status, answer) = conn.post(attributes_array).await.unwrap();
    assert_unevaluable(status, &answer, v1, "expected an object");
    // Resources and subresources may not climb out of the resource (`pods/*` grants pods).
    for (resource, subresource) in [
        ("pods/../secrets", ""),
        ("pods", "../../secrets"),
        ("pods", "log/x"),
        ("..", ""),
    ] {
        let body = fixture_with("alice-create-deployment.json", |r| {
            r["spec"]["resourceAttributes"] = serde_json::json!({
                "namespace": "finance-app", "verb": "get", "version": "v1",
                "resource": resource, "subresource": subresource,
            });
        });
        let (status, answer) = conn.post(body).await.unwrap();
        assert_denied(status, &answer, v1, "may not contain `/` or `..`");
    }
    // Discovery is whole path segments: `/apis/apps/v1` is, `/apifoo` and `/api/../x` are not.
    let path = |p: &str| {
        fixture_with("alice-create-deployment.json", |r| {
            let spec = r["spec"].as_object_mut().unwrap();
            spec.remove("resourceAttributes");
            spec.insert(
                "nonResourceAttributes".into(),
                serde_json::json!({"path": p, "verb": "get"}),
            );
        })
    };
    for p in [
        "/api",
        "/APIs/apps/v1",
        "/openapi/v3",
        "/version",
        "/healthz/etcd",
    ] {
        let (_, answer) = conn.post(path(p)).await.unwrap();
        assert_eq!(answer["status"]["allowed"], true, "{p}: {answer}");
    }
    for p in ["/apifoo", "/versions", "/healthzz"] {
        let (_, answer) = conn.post(path(p)).await.unwrap();
        assert_eq!(answer["status"]["allowed"], false, "{p}: {answer}");
    }
    for p in ["/api/../metrics", "/apis/./x"] {
        let (status, answer) = conn.post(path(p)).await.unwrap();
        assert_denied(status, &answer, v1, "may not contain");
    }
    // A request value a reason quotes is cut: here the action built from a long resource.
    let long = fixture_with("alice-create-deployment.json", |r| {
        r["spec"]["resourceAttributes"]["resource"] = Value::from("x".repeat(5000));
    });
    let (status, answer) = conn.post(long).await.unwrap();
    let reason = answer["status"]["reason"].as_str().unwrap_or_default();
    assert_eq!(status, 200);
    assert!(
        reason.len() < 1024 && reason.contains("bytes)` at scope"),
        "{reason}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_with_several_common_names_are_refused() {
    let pki = Pki::new();
    // A second client CA whose certificate names two subjects: the allowed name first, as
    // a lenient reader would take it, and another last, as Go's crypto/x509 takes it.
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::default();
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "second-ca");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "kube-apiserver");
    params.distinguished_name.push(
        rcgen::DnType::CustomDnType(vec![2, 5, 4, 3]),
        "someone-else",
    );
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.signed_by(&key, &issuer).unwrap();
    let two_names = scopegate::certs::Pem {
        cert: cert.pem(),
        key: key.serialize_pem(),
    };
    let names = x509_parser::parse_x509_certificate(cert.der())
        .unwrap()
        .1
        .subject()
        .iter_common_name()
        .count();
    assert_eq!(names, 2, "the test certificate must carry two common names");
    std::fs::write(
        pki.path("ca.crt"),
        format!("{}{}", pki.ca.pem.cert, ca_cert.pem()),
    )
    .unwrap();
    let policies = policy_dir();
    let server = serve_tls(
        &pki,
        policies.path(),
        &["--allowed-client-names", "kube-apiserver"],
    )
    .await;
    let body = fixture_with("alice-create-deployment.json", |_| {});
    let mut conn = connect_as(server.addr, &pki, &two_names).await;
    let (status, answer) = conn.post(body.clone()).await.unwrap();
    assert_eq!(status, 403, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("2 subject common names"),
        "{answer}"
    );
    // The ordinary client certificate still works.
    let mut conn = connect_apiserver(server.addr, &pki).await;
    assert_eq!(conn.post(body).await.unwrap().0, 200);
    server.stop().await;
}

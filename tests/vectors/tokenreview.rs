//! tokenreview.jsonl: every case through `scopegate check -f` (the case's clock via `--now`,
//! keys from a JWKS file) and through `POST /authenticate` over HTTPS with mTLS (the case's
//! times moved to the system clock). The directory goes in as `entra-users.json` and
//! `entra-groups.json` in the policy directory, as an operator exports it.

use super::support::tokens;
use super::support::{self, Pki};
use super::{cases, name};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;

/// The flags a case's `config` names.
fn flags(case: &Value, jwks: &Path) -> Vec<String> {
    let config = &case["config"];
    let mut flags = Vec::new();
    let issuers: Vec<&str> = match &config["issuer"] {
        Value::String(one) => vec![one.as_str()],
        Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
        other => panic!("{}: issuer {other}", name(case)),
    };
    for issuer in issuers {
        flags.extend(["--authn-issuer".to_string(), issuer.to_string()]);
    }
    for audience in config["audiences"].as_array().unwrap() {
        flags.extend([
            "--authn-audience".to_string(),
            audience.as_str().unwrap().to_string(),
        ]);
    }
    if let Some(claim) = config["username_claim"].as_str() {
        flags.extend(["--authn-username-claim".to_string(), claim.to_string()]);
    }
    if let Some(from) = config["groups_from"].as_str() {
        flags.extend(["--groups-from".to_string(), from.to_string()]);
    }
    flags.extend(["--authn-jwks-file".to_string(), jwks.display().to_string()]);
    flags
}

/// A policy directory with the case's directory export and the issuer's JWKS beside it.
fn workspace(case: &Value) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    std::fs::create_dir(&policies).unwrap();
    if let Some(directory) = case["config"].get("directory") {
        if let Some(users) = directory.get("users") {
            std::fs::write(policies.join("entra-users.json"), users.to_string()).unwrap();
        }
        if let Some(groups) = directory.get("groups") {
            std::fs::write(policies.join("entra-groups.json"), groups.to_string()).unwrap();
        }
    }
    let jwks = dir.path().join("jwks.json");
    std::fs::write(&jwks, tokens::jwks().to_string()).unwrap();
    (dir, jwks)
}

/// Compares a TokenReview answer with the case's `expected`.
fn compare(case: &Value, answer: &Value) -> Result<(), String> {
    let name = name(case);
    let expected = &case["expected"];
    let status = &answer["status"];
    let authenticated = expected["authenticated"].as_bool().unwrap();
    if status["authenticated"].as_bool() != Some(authenticated) {
        return Err(format!(
            "{name}: expected authenticated={authenticated}, got {status}"
        ));
    }
    if !authenticated && status.get("user").is_some() {
        return Err(format!("{name}: a rejected token names a user: {status}"));
    }
    let user = &status["user"];
    for key in ["username", "uid"] {
        if let Some(want) = expected.get(key)
            && &user[key] != want
        {
            return Err(format!("{name}: {key} {} != {want}", user[key]));
        }
    }
    if let Some(want) = expected.get("groups") {
        let set = |v: &Value| -> BTreeSet<String> {
            v.as_array()
                .into_iter()
                .flatten()
                .filter_map(|g| g.as_str().map(str::to_string))
                .collect()
        };
        if set(&user["groups"]) != set(want) {
            return Err(format!("{name}: groups {} != {want}", user["groups"]));
        }
    }
    if let Some(want) = expected.get("extra")
        && &user["extra"] != want
    {
        return Err(format!("{name}: extra {} != {want}", user["extra"]));
    }
    if let Some(tag) = expected.get("error_contains").and_then(Value::as_str) {
        let error = status["error"].as_str().unwrap_or("");
        if !error.starts_with(tag) {
            return Err(format!(
                "{name}: error `{error}` does not start with `{tag}`"
            ));
        }
    }
    Ok(())
}

#[test]
fn every_case_through_check() {
    let cases = cases("tokenreview.jsonl");
    assert_eq!(cases.len(), 30);
    let mut failures = Vec::new();
    for case in &cases {
        let token = tokens::mint(
            &case["header"],
            &case["claims"],
            case.get("inflate"),
            case["signing"].as_str().unwrap(),
        );
        let (dir, jwks) = workspace(case);
        let review = dir.path().join("review.json");
        std::fs::write(&review, tokens::token_review(&token).to_string()).unwrap();
        let now = time::OffsetDateTime::from_unix_timestamp(case["now"].as_i64().unwrap())
            .unwrap()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        let mut args = vec![
            "check".to_string(),
            "-f".to_string(),
            review.display().to_string(),
            "--policies".to_string(),
            dir.path().join("policies").display().to_string(),
            "--now".to_string(),
            now,
        ];
        args.extend(flags(case, &jwks));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = support::scopegate(&args);
        let answer: Value = match serde_json::from_slice(&out.stdout) {
            Ok(answer) => answer,
            Err(e) => {
                failures.push(format!(
                    "{}: no answer ({e}): {}",
                    name(case),
                    support::stderr(&out)
                ));
                continue;
            }
        };
        let authenticated = case["expected"]["authenticated"].as_bool().unwrap();
        assert_eq!(
            out.status.code(),
            Some(if authenticated { 0 } else { 1 }),
            "{}",
            name(case)
        );
        if let Err(e) = compare(case, &answer) {
            failures.push(e);
        }
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains(&token)
                && !support::stderr(&out).contains(&token),
            "{}: the token was printed",
            name(case)
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn every_case_through_the_authenticate_endpoint() {
    let cases = cases("tokenreview.jsonl");
    let pki = Pki::new();
    let system_now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut failures = Vec::new();
    for case in &cases {
        let delta = system_now - case["now"].as_i64().unwrap();
        let claims = tokens::shift_times(&case["claims"], delta);
        let token = tokens::mint(
            &case["header"],
            &claims,
            case.get("inflate"),
            case["signing"].as_str().unwrap(),
        );
        let (dir, jwks) = workspace(case);
        let flags = flags(case, &jwks);
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let running = support::serve_tls(&pki, &dir.path().join("policies"), &flags).await;
        let mut conn = support::connect_apiserver(running.addr, &pki).await;
        let (code, answer) = conn
            .post_to(
                "/authenticate",
                tokens::token_review(&token).to_string().into_bytes(),
            )
            .await
            .unwrap();
        assert_eq!(code, 200, "{}: {answer}", name(case));
        assert_eq!(answer["apiVersion"], "authentication.k8s.io/v1");
        if let Err(e) = compare(case, &answer) {
            failures.push(e);
        }
        running.stop().await;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

//! Workload identity questions from the command line and from a projected token:
//! `scopegate check --service-account NS/NAME` (and `--object-id`) with `--resource` and
//! `--action`, the usage errors those flags refuse, `--service-account-token FILE` checked
//! against the cluster issuer's keys (`--cluster-jwks-file`), and the same tokens on the
//! CheckAccess endpoint in both body shapes.
//!
//! The policy is written here: a ServiceAccount `payments/api` whose
//! `azure.workload.identity/client-id` annotation names the managed identity `id-payments`,
//! a federated credential on it trusting that account at the cluster issuer, and the
//! identity's `Key Vault Secrets User` assignment at a vault. That role grants the secret read
//! as a data action only, so each answer below follows from it.

mod support;

use serde_json::{Value, json};
use std::path::Path;
use support::tokens;

const SUBSCRIPTION: &str = "00000000-0000-0000-0000-00000000aaaa";
const TENANT: &str = "11111111-2222-4333-8444-555555555555";
const ISSUER: &str = "https://westeurope.oic.prod-aks.azure.com/11111111-2222-4333-8444-555555555555/7c0e7d0a-1b2c-4d3e-8f40-5a6b7c8d9e01/";
const OTHER_ISSUER: &str = "https://northeurope.oic.prod-aks.azure.com/11111111-2222-4333-8444-555555555555/0f0e0d0c-0b0a-4909-8807-060504030201/";
const AUDIENCE: &str = "api://AzureADTokenExchange";
const CLIENT_ID: &str = "5e3f0c2a-7b1d-4e6f-9a80-1c2d3e4f5c1d";
const PRINCIPAL_ID: &str = "9b1c0000-0000-4000-8000-00000000a001";
const SECRETS_USER: &str = "4633458b-17de-408a-b874-0445c86b69e6";
const GET_SECRET: &str = "Microsoft.KeyVault/vaults/secrets/getSecret/action";
const ANNOTATION: &str = "azure.workload.identity/client-id";
const IDENTITY: &str = "id-payments";
const CREDENTIAL: &str = "aks1-payments-api";
const ASSIGNMENT: &str = "ra-payments-secrets-user";

fn vault() -> String {
    format!(
        "/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-app/providers/Microsoft.KeyVault/vaults/kv-payments"
    )
}

fn secret() -> String {
    format!("{}/secrets/db-password", vault())
}

fn assignment_id() -> String {
    format!(
        "/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Authorization/roleAssignments/{ASSIGNMENT}"
    )
}

/// The workload identity policy as an operator exports it; the ServiceAccount carries the
/// client-id annotation when `annotated`.
fn policies(annotated: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let identity_id = format!(
        "/subscriptions/{SUBSCRIPTION}/resourcegroups/rg-app/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{IDENTITY}"
    );
    let role = json!([{
        "id": format!("/providers/Microsoft.Authorization/roleDefinitions/{SECRETS_USER}"),
        "name": SECRETS_USER,
        "roleName": "Key Vault Secrets User",
        "roleType": "BuiltInRole",
        "type": "Microsoft.Authorization/roleDefinitions",
        "assignableScopes": ["/"],
        "permissions": [{
            "actions": [],
            "notActions": [],
            "dataActions": [GET_SECRET, "Microsoft.KeyVault/vaults/secrets/readMetadata/action"],
            "notDataActions": []
        }]
    }]);
    let assignment = json!([{
        "id": assignment_id(),
        "principalId": PRINCIPAL_ID,
        "principalType": "ServicePrincipal",
        "roleDefinitionId": format!("/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Authorization/roleDefinitions/{SECRETS_USER}"),
        "scope": vault(),
    }]);
    let identity = json!([{
        "clientId": CLIENT_ID,
        "id": identity_id,
        "location": "westeurope",
        "name": IDENTITY,
        "principalId": PRINCIPAL_ID,
        "resourceGroup": "rg-app",
        "tags": {},
        "tenantId": TENANT,
        "type": "Microsoft.ManagedIdentity/userAssignedIdentities"
    }]);
    let credential = json!([{
        "audiences": [AUDIENCE],
        "id": format!("{identity_id}/federatedIdentityCredentials/{CREDENTIAL}"),
        "issuer": ISSUER,
        "name": CREDENTIAL,
        "resourceGroup": "rg-app",
        "subject": "system:serviceaccount:payments:api",
        "type": "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials"
    }]);
    let mut metadata = json!({"name": "api", "namespace": "payments"});
    if annotated {
        metadata["annotations"] = json!({ ANNOTATION: CLIENT_ID });
    }
    let accounts = json!({
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata},
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "worker", "namespace": "payments"}}
        ]
    });
    for (file, objects) in [
        ("roles.json", role),
        ("assignments.json", assignment),
        ("identities.json", identity),
        ("federated-credentials.json", credential),
        ("service-accounts.json", accounts),
    ] {
        std::fs::write(dir.path().join(file), objects.to_string()).unwrap();
    }
    dir
}

/// Runs the binary with `args`, with no cluster settings from the environment.
fn scopegate(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_scopegate"))
        .args(args)
        .current_dir(support::root())
        .env_remove("SCOPEGATE_CLUSTER_RESOURCE_ID")
        .env_remove("SCOPEGATE_CLUSTER_ISSUER")
        .env_remove("SCOPEGATE_CLUSTER_JWKS_FILE")
        .output()
        .expect("run scopegate")
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// `check` with `args` on `dir`: the exit code and the JSON array of decisions.
fn check(dir: &Path, args: &[&str]) -> (Option<i32>, Value) {
    let policies = dir.display().to_string();
    let mut argv = vec!["check"];
    argv.extend_from_slice(args);
    argv.extend(["--policies", &policies]);
    let out = scopegate(&argv);
    let answer = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no answer ({e}): stdout {} stderr {}",
            stdout(&out),
            support::stderr(&out)
        )
    });
    (out.status.code(), answer)
}

/// The one decision of an answer about one operation.
fn only(answer: &Value) -> &Value {
    let decisions = answer.as_array().expect("a JSON array of decisions");
    assert_eq!(decisions.len(), 1, "{answer}");
    &decisions[0]
}

/// The flags asking whether `payments/api` may read the secret.
fn about_the_account(resource: &str) -> Vec<&str> {
    vec![
        "--service-account",
        "payments/api",
        "--cluster-issuer",
        ISSUER,
        "--resource",
        resource,
        "--action",
        GET_SECRET,
    ]
}

#[test]
fn a_service_account_reads_the_secret_as_a_data_action() {
    let dir = policies(true);
    let secret = secret();
    let mut args = about_the_account(&secret);
    args.push("--data-action");
    let (code, answer) = check(dir.path(), &args);
    let decision = only(&answer);
    assert_eq!(decision["accessDecision"], "Allowed", "{answer}");
    assert_eq!(decision["actionId"], GET_SECRET);
    assert_eq!(decision["isDataAction"], true);
    assert_eq!(
        decision["roleAssignment"]["id"],
        assignment_id(),
        "{answer}"
    );
    assert_eq!(
        decision["roleAssignment"]["principalId"], PRINCIPAL_ID,
        "{answer}"
    );
    assert_eq!(code, Some(0));
}

#[test]
fn the_same_text_as_a_control_plane_action_is_not_granted() {
    let dir = policies(true);
    let secret = secret();
    let (code, answer) = check(dir.path(), &about_the_account(&secret));
    let decision = only(&answer);
    assert_eq!(decision["accessDecision"], "NotAllowed", "{answer}");
    assert_eq!(decision["isDataAction"], false);
    assert!(decision.get("roleAssignment").is_none_or(Value::is_null));
    assert_eq!(code, Some(1));
}

#[test]
fn without_the_annotation_only_possible_mode_finds_the_identity() {
    let dir = policies(false);
    let secret = secret();
    let mut args = about_the_account(&secret);
    args.push("--data-action");

    let (code, answer) = check(dir.path(), &args);
    let decision = only(&answer);
    assert_eq!(decision["accessDecision"], "NotAllowed", "{answer}");
    let reason = decision["reason"].as_str().unwrap_or_default();
    assert!(reason.contains(ANNOTATION), "reason: {answer}");
    assert_eq!(code, Some(1));

    args.extend(["--mode", "possible"]);
    let (code, answer) = check(dir.path(), &args);
    assert_eq!(only(&answer)["accessDecision"], "Allowed", "{answer}");
    assert_eq!(code, Some(0));
}

#[test]
fn an_account_no_credential_trusts_is_not_allowed() {
    let dir = policies(true);
    let secret = secret();
    let (code, answer) = check(
        dir.path(),
        &[
            "--service-account",
            "payments/worker",
            "--cluster-issuer",
            ISSUER,
            "--resource",
            &secret,
            "--action",
            GET_SECRET,
            "--data-action",
            "--mode",
            "possible",
        ],
    );
    assert_eq!(only(&answer)["accessDecision"], "NotAllowed", "{answer}");
    assert_eq!(code, Some(1));
}

#[test]
fn the_identity_by_object_id_reads_the_secret() {
    let dir = policies(true);
    let secret = secret();
    let args = [
        "--object-id",
        PRINCIPAL_ID,
        "--resource",
        &secret,
        "--action",
        GET_SECRET,
    ];
    let mut data = args.to_vec();
    data.push("--data-action");
    let (code, answer) = check(dir.path(), &data);
    assert_eq!(only(&answer)["accessDecision"], "Allowed", "{answer}");
    assert_eq!(only(&answer)["roleAssignment"]["id"], assignment_id());
    assert_eq!(code, Some(0));

    let (code, answer) = check(dir.path(), &args);
    assert_eq!(only(&answer)["accessDecision"], "NotAllowed", "{answer}");
    assert_eq!(code, Some(1));
}

#[test]
fn explain_prints_the_chain_and_exits_like_check() {
    let dir = policies(true);
    let policies = dir.path().display().to_string();
    let secret = secret();
    let mut args = vec!["explain"];
    args.extend(about_the_account(&secret));
    args.extend(["--policies", &policies]);

    let mut data = args.clone();
    data.push("--data-action");
    let out = scopegate(&data);
    let text = stdout(&out);
    for link in [IDENTITY, CREDENTIAL, PRINCIPAL_ID, "Allowed"] {
        assert!(text.contains(link), "`{link}` missing from:\n{text}");
    }
    assert_eq!(out.status.code(), Some(0), "{}", support::stderr(&out));

    let out = scopegate(&args);
    let text = stdout(&out);
    assert!(text.contains(IDENTITY), "{text}");
    assert!(text.contains("NotAllowed"), "{text}");
    assert_eq!(out.status.code(), Some(1), "{}", support::stderr(&out));
}

/// Runs `check` with `args`; asserts exit 3, no answer on stdout, and stderr containing each
/// of `expected`.
fn refused(args: &[&str], expected: &[&str]) -> String {
    let out = scopegate(args);
    let err = support::stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{args:?}: {err}");
    assert!(
        out.stdout.is_empty(),
        "{args:?} printed an answer: {}",
        stdout(&out)
    );
    for text in expected {
        assert!(err.contains(text), "{args:?}: `{text}` missing from: {err}");
    }
    err
}

#[test]
fn malformed_questions_are_usage_errors() {
    let dir = policies(true);
    let policies = dir.path().display().to_string();
    let secret = secret();
    let tail = ["--policies", policies.as_str(), "--data-action"];
    fn ask<'a>(flags: &[&'a str], tail: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec!["check"];
        args.extend_from_slice(flags);
        args.extend_from_slice(tail);
        args
    }
    refused(
        &ask(
            &[
                "--service-account",
                "payments/api",
                "--resource",
                &secret,
                "--action",
                GET_SECRET,
            ],
            &tail,
        ),
        &["--cluster-issuer"],
    );
    refused(
        &ask(
            &[
                "--service-account",
                "payments",
                "--cluster-issuer",
                ISSUER,
                "--resource",
                &secret,
                "--action",
                GET_SECRET,
            ],
            &tail,
        ),
        &["`payments`", "NAMESPACE/NAME"],
    );
    refused(
        &ask(
            &[
                "--object-id",
                "not-a-guid",
                "--resource",
                &secret,
                "--action",
                GET_SECRET,
            ],
            &tail,
        ),
        &["not-a-guid", "GUID"],
    );
    refused(
        &ask(
            &[
                "--service-account",
                "payments/api",
                "--cluster-issuer",
                ISSUER,
                "--resource",
                &secret,
            ],
            &tail,
        ),
        &["--action"],
    );
    refused(
        &ask(
            &[
                "--service-account",
                "payments/api",
                "--cluster-issuer",
                ISSUER,
                "--action",
                GET_SECRET,
            ],
            &tail,
        ),
        &["--resource"],
    );
    let mut many = vec!["--object-id", PRINCIPAL_ID, "--resource", secret.as_str()];
    for _ in 0..201 {
        many.extend(["--action", GET_SECRET]);
    }
    refused(&ask(&many, &tail), &["201", "200"]);
    // The limit itself is a question like any other.
    let (code, answer) = check(dir.path(), &{
        let mut at_limit = many.clone();
        at_limit.truncate(many.len() - 2);
        at_limit.push("--data-action");
        at_limit
    });
    assert_eq!(answer.as_array().map(Vec::len), Some(200));
    assert_eq!(code, Some(0));
}

/// The claims kube-apiserver writes in a projected token for `payments/api` with audience
/// `api://AzureADTokenExchange`, valid for an hour from `issued`.
fn projected_claims(issued: i64) -> Value {
    json!({
        "aud": [AUDIENCE],
        "exp": issued + 3600,
        "iat": issued,
        "nbf": issued,
        "iss": ISSUER,
        "sub": "system:serviceaccount:payments:api",
        "kubernetes.io": {
            "namespace": "payments",
            "pod": {"name": "api-7d9f8c6b5-x2kqz", "uid": "3c1e7f0a-2b4d-4e6f-8a1c-9d0e1f2a3b4c"},
            "serviceaccount": {"name": "api", "uid": "6a2f4c8e-1b3d-4f5a-9c7e-0d1f2a3b4c5d"}
        }
    })
}

fn header() -> Value {
    json!({"alg": "RS256", "kid": "sg-test-k1"})
}

fn sign(claims: &Value) -> String {
    tokens::mint(&header(), claims, None, "valid")
}

/// Files the token questions need: the issuer's JWKS, and each token written to its own file.
struct TokenFiles {
    dir: tempfile::TempDir,
    jwks: String,
}

impl TokenFiles {
    fn new() -> TokenFiles {
        let dir = tempfile::tempdir().unwrap();
        let jwks = dir.path().join("jwks.json");
        std::fs::write(&jwks, tokens::jwks().to_string()).unwrap();
        let jwks = jwks.display().to_string();
        TokenFiles { dir, jwks }
    }

    fn token(&self, name: &str, token: &str) -> String {
        let path = self.dir.path().join(name);
        // As a projected volume mounts it: the token with no trailing newline.
        std::fs::write(&path, token).unwrap();
        path.display().to_string()
    }
}

/// `check --service-account-token FILE` about reading the secret, plus `extra` flags.
fn token_question<'a>(
    files: &'a TokenFiles,
    file: &'a str,
    secret: &'a str,
    policies: &'a str,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec![
        "check",
        "--service-account-token",
        file,
        "--cluster-issuer",
        ISSUER,
        "--cluster-jwks-file",
        &files.jwks,
        "--resource",
        secret,
        "--action",
        GET_SECRET,
        "--data-action",
        "--policies",
        policies,
    ];
    args.extend_from_slice(extra);
    args
}

#[test]
fn a_projected_token_is_answered_as_the_account_it_names() {
    let dir = policies(true);
    let policies = dir.path().display().to_string();
    let secret = secret();
    let files = TokenFiles::new();
    let file = files.token("api.jwt", &sign(&projected_claims(tokens::now() - 60)));
    let out = scopegate(&token_question(&files, &file, &secret, &policies, &[]));
    assert_eq!(out.status.code(), Some(0), "{}", support::stderr(&out));
    let by_token: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(only(&by_token)["accessDecision"], "Allowed", "{by_token}");

    let mut args = about_the_account(&secret);
    args.push("--data-action");
    let (_, by_name) = check(dir.path(), &args);
    assert_eq!(by_token, by_name);

    // The worker's token passes, and the worker is not trusted by any credential.
    let mut worker = projected_claims(tokens::now() - 60);
    worker["sub"] = json!("system:serviceaccount:payments:worker");
    worker["kubernetes.io"]["serviceaccount"]["name"] = json!("worker");
    let file = files.token("worker.jwt", &sign(&worker));
    let out = scopegate(&token_question(&files, &file, &secret, &policies, &[]));
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(only(&answer)["accessDecision"], "NotAllowed", "{answer}");
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn a_token_is_checked_at_the_decision_time() {
    let dir = policies(true);
    let policies = dir.path().display().to_string();
    let secret = secret();
    let files = TokenFiles::new();
    // Issued 2026-01-31T09:00:00Z, valid until 10:00.
    let issued = 1_769_850_000;
    let token = sign(&projected_claims(issued));
    let file = files.token("api.jwt", &token);
    let inside = ["--now", "2026-01-31T09:30:00Z"];
    let out = scopegate(&token_question(&files, &file, &secret, &policies, &inside));
    assert_eq!(out.status.code(), Some(0), "{}", support::stderr(&out));
    // Past `exp` and the five minutes of skew.
    let after = ["--now", "2026-01-31T10:06:00Z"];
    let out = scopegate(&token_question(&files, &file, &secret, &policies, &after));
    let err = support::stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("token expired"), "{err}");
}

#[test]
fn refused_tokens_are_errors_never_answers() {
    let dir = policies(true);
    let policies = dir.path().display().to_string();
    let secret = secret();
    let files = TokenFiles::new();
    let issued = tokens::now() - 60;
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut claims = projected_claims(issued);
        edit(&mut claims);
        claims
    };
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        (
            "expired",
            sign(&with(&|c| {
                c["iat"] = json!(issued - 7200);
                c["nbf"] = json!(issued - 7200);
                c["exp"] = json!(issued - 3600);
            })),
            vec!["token expired"],
        ),
        (
            "other-audience",
            sign(&with(&|c| {
                c["aud"] = json!(["https://kubernetes.default.svc"])
            })),
            vec!["audience mismatch"],
        ),
        (
            "other-issuer",
            sign(&with(&|c| c["iss"] = json!(OTHER_ISSUER))),
            vec!["issuer mismatch"],
        ),
        (
            "tampered-signature",
            tokens::mint(
                &header(),
                &projected_claims(issued),
                None,
                "tampered-signature",
            ),
            vec!["invalid signature"],
        ),
        (
            "tampered-payload",
            tokens::mint(
                &header(),
                &projected_claims(issued),
                None,
                "tampered-payload",
            ),
            vec!["invalid signature"],
        ),
        (
            "not-a-service-account",
            sign(&with(&|c| c["sub"] = json!("system:node:aks-nodepool1-0"))),
            vec!["invalid subject"],
        ),
        (
            "kubernetes-claim-of-another-account",
            sign(&with(&|c| {
                c["kubernetes.io"]["serviceaccount"]["name"] = json!("worker")
            })),
            vec![
                "invalid subject",
                "the kubernetes.io claim names `payments/worker`",
            ],
        ),
        (
            "kubernetes-claim-of-another-namespace",
            sign(&with(&|c| {
                c["kubernetes.io"]["namespace"] = json!("billing")
            })),
            vec![
                "invalid subject",
                "the kubernetes.io claim names `billing/api`",
            ],
        ),
        (
            "unknown-kid",
            tokens::mint(
                &json!({"alg": "RS256", "kid": "sg-test-k9"}),
                &projected_claims(issued),
                None,
                "unknown-kid",
            ),
            vec!["unknown kid"],
        ),
    ];
    for (name, token, said) in &cases {
        let file = files.token(name, token);
        let mut expected = vec!["service-account token refused"];
        expected.extend(said);
        let err = refused(
            &token_question(&files, &file, &secret, &policies, &[]),
            &expected,
        );
        let (signed, signature) = token.rsplit_once('.').unwrap();
        let payload = signed.split_once('.').unwrap().1;
        assert!(
            !err.contains(signature) && !err.contains(payload),
            "{name}: the token is printed: {err}"
        );
    }
}

/// The CheckAccess path of `resource`.
fn check_access_path(resource: &str) -> String {
    format!(
        "{resource}/providers/Microsoft.Authorization/checkaccess?api-version=2018-09-01-preview"
    )
}

fn workload_body(subject: (&str, &str)) -> Value {
    json!({
        subject.0: subject.1,
        "resource": secret(),
        "actions": [{"id": GET_SECRET, "isDataAction": true}],
    })
}

fn azure_token_body(token: &str) -> Value {
    json!({
        "Subject": {"Attributes": {"ServiceAccountToken": token}},
        "Actions": [{"Id": GET_SECRET, "IsDataAction": true, "Attributes": null}],
        "Resource": {"Id": secret()},
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_endpoint_verifies_tokens_against_the_cluster_issuer() {
    let dir = policies(true);
    let files = TokenFiles::new();
    let pki = support::Pki::new();
    let running = support::serve_tls(
        &pki,
        dir.path(),
        &[
            "--cluster-issuer",
            ISSUER,
            "--cluster-jwks-file",
            &files.jwks,
        ],
    )
    .await;
    let mut conn = support::connect_apiserver(running.addr, &pki).await;
    let path = check_access_path(&secret());
    let token = sign(&projected_claims(tokens::now() - 60));

    for body in [
        workload_body(("serviceAccountToken", &token)),
        azure_token_body(&token),
        // A service account with no issuer is asked about at --cluster-issuer.
        workload_body(("serviceAccount", "system:serviceaccount:payments:api")),
    ] {
        let (code, answer) = conn.post_to(&path, body.to_string()).await.unwrap();
        assert_eq!(code, 200, "{body}: {answer}");
        let decision = only(&answer);
        assert_eq!(decision["accessDecision"], "Allowed", "{body}: {answer}");
        assert_eq!(decision["roleAssignment"]["id"], assignment_id());
    }

    let mut expired = projected_claims(tokens::now() - 7200);
    expired["exp"] = json!(tokens::now() - 3600);
    let expired = sign(&expired);
    for body in [
        workload_body(("serviceAccountToken", &expired)),
        azure_token_body(&expired),
    ] {
        let (code, answer) = conn.post_to(&path, body.to_string()).await.unwrap();
        assert_eq!(code, 400, "{answer}");
        assert_eq!(answer["error"]["code"], "BadRequest", "{answer}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("service-account token refused") && message.contains("token expired"),
            "{answer}"
        );
        let signature = expired.rsplit_once('.').unwrap().1;
        assert!(
            !message.contains(signature),
            "the token is echoed: {answer}"
        );
    }
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_cluster_issuer_the_endpoint_asks_for_one() {
    let dir = policies(true);
    let pki = support::Pki::new();
    let running = support::serve_tls(&pki, dir.path(), &[]).await;
    let mut conn = support::connect_apiserver(running.addr, &pki).await;
    let path = check_access_path(&secret());

    let body = workload_body(("serviceAccount", "system:serviceaccount:payments:api"));
    let (code, answer) = conn.post_to(&path, body.to_string()).await.unwrap();
    assert_eq!(code, 400, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("`issuer`"), "{answer}");

    // Naming the issuer in the body answers the question.
    let mut named = body.clone();
    named["issuer"] = json!(ISSUER);
    let (code, answer) = conn.post_to(&path, named.to_string()).await.unwrap();
    assert_eq!(code, 200, "{answer}");
    assert_eq!(only(&answer)["accessDecision"], "Allowed", "{answer}");

    // A token cannot be checked without the issuer's keys.
    let token = sign(&projected_claims(tokens::now() - 60));
    let body = workload_body(("serviceAccountToken", &token));
    let (code, answer) = conn.post_to(&path, body.to_string()).await.unwrap();
    assert_eq!(code, 400, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("--cluster-issuer"), "{answer}");
    running.stop().await;
}

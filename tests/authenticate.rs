//! `POST /authenticate` against a loopback OpenID provider: discovery and JWKS over real HTTPS
//! (rustls, the test CA passed with `--authn-ca-file`), key rotation, an unreachable issuer,
//! and every kind of bad token answered `authenticated: false`, counted by reason.
//! Entra itself cannot be reached from here: the provider speaks the documented protocol
//! (`/.well-known/openid-configuration` -> `jwks_uri` -> `{"keys": [...]}`).

mod support;

use http_body_util::Full;
use hyper::body::Bytes;
use rustls_pki_types::pem::PemObject;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use support::tokens;
use support::{Pki, admin_metric, connect_apiserver, serve_tls};

const TENANT: &str = "11111111-2222-4333-8444-555555555555";
const AUDIENCE: &str = "6dae42f8-4368-4678-94ff-3960e28e3630";
const OID: &str = "aaaaaaaa-0000-4000-8000-000000000001";

/// A loopback OpenID provider: its JWKS can be changed, its JWKS reads are counted, and it
/// can be stopped.
struct Provider {
    issuer: String,
    jwks: Arc<Mutex<Value>>,
    jwks_reads: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

async fn provider(pki: &Pki, jwks: Value) -> Provider {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let issuer = format!("https://127.0.0.1:{port}/{TENANT}/v2.0");
    let certs = rustls_pki_types::CertificateDer::pem_file_iter(pki.path("server.crt"))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = rustls_pki_types::PrivateKeyDer::from_pem_file(pki.path("server.key")).unwrap();
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let jwks = Arc::new(Mutex::new(jwks));
    let jwks_reads = Arc::new(AtomicUsize::new(0));
    let (served_jwks, reads, document_issuer) = (jwks.clone(), jwks_reads.clone(), issuer.clone());
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let Ok(tls) = acceptor.accept(stream).await else {
                continue;
            };
            let (jwks, reads, issuer) =
                (served_jwks.clone(), reads.clone(), document_issuer.clone());
            let service = hyper::service::service_fn(move |request: hyper::Request<_>| {
                let body = match request.uri().path() {
                    p if p.ends_with("/.well-known/openid-configuration") => json!({
                        "issuer": issuer,
                        "jwks_uri": format!("{}/discovery/keys", issuer.trim_end_matches("/v2.0")),
                        "id_token_signing_alg_values_supported": ["RS256"],
                    }),
                    p if p.ends_with("/discovery/keys") => {
                        reads.fetch_add(1, Ordering::SeqCst);
                        jwks.lock().unwrap().clone()
                    }
                    _ => json!({"error": "not found"}),
                };
                async move {
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(Bytes::from(
                        body.to_string(),
                    ))))
                }
            });
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    Provider {
        issuer,
        jwks,
        jwks_reads,
        task,
    }
}

fn jwks_of(kids: &[&str]) -> Value {
    let all = tokens::jwks();
    let keys: Vec<Value> = all["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| kids.contains(&k["kid"].as_str().unwrap()))
        .cloned()
        .collect();
    json!({"keys": keys})
}

fn claims(issuer: &str, upn: &str) -> Value {
    json!({
        "aud": AUDIENCE, "iss": issuer, "tid": TENANT, "oid": OID, "upn": upn,
        "groups": ["bbbbbbbb-0000-4000-8000-000000000011"],
        "iat": tokens::now() - 60, "nbf": tokens::now() - 60, "exp": tokens::now() + 3600, "ver": "2.0",
    })
}

fn header(kid: &str) -> Value {
    json!({"alg": "RS256", "typ": "JWT", "kid": kid})
}

/// A token signed with the valid test key under `kid`, for `upn` from `issuer`.
fn valid_token(issuer: &str, kid: &str, upn: &str) -> String {
    tokens::mint(&header(kid), &claims(issuer, upn), None, "valid")
}

async fn review(conn: &mut support::Conn, token: &str) -> Value {
    let (code, answer) = conn
        .post_to(
            "/authenticate",
            tokens::token_review(token).to_string().into_bytes(),
        )
        .await
        .unwrap();
    assert_eq!(code, 200, "{answer}");
    answer["status"].clone()
}

async fn start(pki: &Pki, provider: &Provider) -> (tempfile::TempDir, scopegate::server::Running) {
    let policies = tempfile::tempdir().unwrap();
    let ca = pki.path("ca.crt");
    let running = serve_tls(
        pki,
        policies.path(),
        &[
            "--authn-issuer",
            &provider.issuer,
            "--authn-audience",
            AUDIENCE,
            "--authn-ca-file",
            &ca,
        ],
    )
    .await;
    (policies, running)
}

#[tokio::test]
async fn keys_are_discovered_and_reread_on_an_unknown_kid_at_most_once_per_interval() {
    let pki = Pki::new();
    let provider = provider(&pki, jwks_of(&["sg-test-k1"])).await;
    let (_policies, running) = start(&pki, &provider).await;
    assert_eq!(
        provider.jwks_reads.load(Ordering::SeqCst),
        1,
        "read at start"
    );
    let mut conn = connect_apiserver(running.addr, &pki).await;

    let alice = valid_token(&provider.issuer, "sg-test-k1", "alice@contoso.com");
    let status = review(&mut conn, &alice).await;
    assert_eq!(status["authenticated"], true, "{status}");
    assert_eq!(status["user"]["username"], "alice@contoso.com");
    assert_eq!(status["user"]["extra"]["oid"], json!([OID]));
    assert_eq!(status["user"]["extra"]["tid"], json!([TENANT]));

    // The issuer rotates in k2: the first token naming it makes scopegate read the keys again.
    *provider.jwks.lock().unwrap() = jwks_of(&["sg-test-k1", "sg-test-k2"]);
    let bob = valid_token(&provider.issuer, "sg-test-k2", "bob@contoso.com");
    let status = review(&mut conn, &bob).await;
    assert_eq!(status["authenticated"], true, "{status}");
    assert_eq!(provider.jwks_reads.load(Ordering::SeqCst), 2);

    // A kid nobody publishes: one more read would be allowed only after the interval.
    let forged = tokens::mint(
        &header("sg-test-k9"),
        &claims(&provider.issuer, "eve@contoso.com"),
        None,
        "unknown-kid",
    );
    for _ in 0..3 {
        let status = review(&mut conn, &forged).await;
        assert_eq!(status["authenticated"], false);
        assert!(
            status["error"].as_str().unwrap().starts_with("unknown kid"),
            "{status}"
        );
    }
    assert_eq!(
        provider.jwks_reads.load(Ordering::SeqCst),
        2,
        "no read within the interval"
    );

    // The issuer goes away: the keys held keep working for new tokens.
    provider.task.abort();
    let carol = valid_token(&provider.issuer, "sg-test-k2", "carol@contoso.com");
    let status = review(&mut conn, &carol).await;
    assert_eq!(status["authenticated"], true, "{status}");
    let authenticated = admin_metric(
        running.admin_addr,
        "scopegate_token_reviews_total{reason=\"ok\",result=\"authenticated\"}",
    )
    .await;
    assert_eq!(authenticated, Some(3.0));
    running.stop().await;
}

/// A key the issuer stopped publishing verifies nothing once the keys were read again, even
/// a token verified (and cached) with it before: here the read is the one an unknown kid
/// causes, not the routine one.
#[tokio::test]
async fn a_cached_token_of_a_removed_key_is_refused_after_an_unknown_kid_read() {
    let pki = Pki::new();
    let provider = provider(&pki, jwks_of(&["sg-test-k1"])).await;
    let (_policies, running) = start(&pki, &provider).await;
    let mut conn = connect_apiserver(running.addr, &pki).await;
    let alice = valid_token(&provider.issuer, "sg-test-k1", "alice@contoso.com");
    for _ in 0..2 {
        let status = review(&mut conn, &alice).await;
        assert_eq!(status["authenticated"], true, "{status}");
    }

    // k1 replaced by k2: a token naming k2 makes scopegate read the keys again.
    *provider.jwks.lock().unwrap() = jwks_of(&["sg-test-k2"]);
    let bob = valid_token(&provider.issuer, "sg-test-k2", "bob@contoso.com");
    let status = review(&mut conn, &bob).await;
    assert_eq!(status["authenticated"], true, "{status}");
    assert_eq!(provider.jwks_reads.load(Ordering::SeqCst), 2);

    let status = review(&mut conn, &alice).await;
    assert_eq!(status["authenticated"], false, "{status}");
    assert!(
        status["error"].as_str().unwrap().starts_with("unknown kid"),
        "{status}"
    );
    running.stop().await;
}

#[tokio::test]
async fn bad_tokens_are_refused_with_their_reason_and_counted() {
    let pki = Pki::new();
    let provider = provider(&pki, jwks_of(&["sg-test-k1", "sg-test-k2"])).await;
    let (_policies, running) = start(&pki, &provider).await;
    let mut conn = connect_apiserver(running.addr, &pki).await;
    let issuer = provider.issuer.clone();
    let good = claims(&issuer, "alice@contoso.com");
    let with = |key: &str, value: Value| {
        let mut c = good.clone();
        c[key] = value;
        c
    };
    let without = |key: &str| {
        let mut c = good.clone();
        c.as_object_mut().unwrap().remove(key);
        c
    };
    let h = header("sg-test-k1");
    let cases: Vec<(&str, String)> = vec![
        (
            "token expired",
            tokens::mint(&h, &with("exp", json!(tokens::now() - 400)), None, "valid"),
        ),
        (
            "token not yet valid",
            tokens::mint(&h, &with("nbf", json!(tokens::now() + 400)), None, "valid"),
        ),
        (
            "audience mismatch",
            tokens::mint(&h, &with("aud", json!("spn:other")), None, "valid"),
        ),
        (
            "issuer mismatch",
            tokens::mint(&h, &with("iss", json!(format!("{issuer}/"))), None, "valid"),
        ),
        (
            "unsupported alg",
            tokens::mint(
                &json!({"alg": "none", "kid": "sg-test-k1"}),
                &good,
                None,
                "alg-none",
            ),
        ),
        (
            "unsupported alg",
            tokens::mint(
                &json!({"alg": "HS256", "kid": "sg-test-k1"}),
                &good,
                None,
                "hs256-with-public-key",
            ),
        ),
        (
            "unknown kid",
            tokens::mint(&header("nope"), &good, None, "unknown-kid"),
        ),
        (
            "invalid signature",
            tokens::mint(&h, &good, None, "tampered-payload"),
        ),
        (
            "invalid signature",
            tokens::mint(&h, &good, None, "tampered-signature"),
        ),
        (
            "invalid signature",
            tokens::mint(&h, &good, None, "wrong-key"),
        ),
        (
            "token too large",
            tokens::mint(
                &h,
                &good,
                Some(&json!({"claim": "pad", "length": 40000})),
                "valid",
            ),
        ),
        ("malformed token", "not-a-token".to_string()),
        ("malformed token", "e30.!!!.c2ln".to_string()),
        (
            "malformed token",
            format!("{}.bm90IGpzb24.c2ln", "eyJhbGciOiJSUzI1NiJ9"),
        ),
        (
            "missing oid",
            tokens::mint(&h, &without("oid"), None, "valid"),
        ),
        (
            "tenant mismatch",
            tokens::mint(
                &h,
                &with("tid", json!("22222222-2222-4333-8444-555555555555")),
                None,
                "valid",
            ),
        ),
        (
            "unsupported token type",
            tokens::mint(
                &json!({"alg": "RS256", "kid": "sg-test-k1", "typ": "pop"}),
                &good,
                None,
                "valid",
            ),
        ),
        (
            "invalid username claim",
            tokens::mint(
                &h,
                &with("upn", json!("system:kube-controller-manager")),
                None,
                "valid",
            ),
        ),
    ];
    for (tag, token) in &cases {
        let status = review(&mut conn, token).await;
        assert_eq!(status["authenticated"], false, "{tag}: {status}");
        assert!(status.get("user").is_none(), "{tag}: {status}");
        let error = status["error"].as_str().unwrap();
        assert!(error.starts_with(tag), "expected `{tag}`, got `{error}`");
        assert!(
            !error.contains(token.as_str()),
            "{tag}: the answer repeats the token"
        );
    }
    for tag in ["invalid signature", "malformed token", "unsupported alg"] {
        let expected = cases.iter().filter(|(t, _)| t == &tag).count() as f64;
        let series =
            format!("scopegate_token_reviews_total{{reason=\"{tag}\",result=\"rejected\"}}");
        assert_eq!(
            admin_metric(running.admin_addr, &series).await,
            Some(expected),
            "{series}"
        );
    }
    // Kubernetes' own groups never come from a token.
    let groups = json!(["system:masters", "bbbbbbbb-0000-4000-8000-000000000011"]);
    let masters = tokens::mint(&h, &with("groups", groups), None, "valid");
    let status = review(&mut conn, &masters).await;
    assert_eq!(status["authenticated"], true, "{status}");
    assert_eq!(
        status["user"]["groups"],
        json!(["bbbbbbbb-0000-4000-8000-000000000011"])
    );
    // Not a TokenReview at all: a bad request, not an answer.
    let (code, _) = conn
        .post_to(
            "/authenticate",
            br#"{"kind":"TokenReview","apiVersion":"v2"}"#.to_vec(),
        )
        .await
        .unwrap();
    assert_eq!(code, 400);
    running.stop().await;
}

/// Two issuers, each with its own key: a token naming issuer A but signed with B's key is
/// refused, though B's key is held and the signature is good.
#[tokio::test]
async fn a_key_of_one_issuer_never_verifies_another_issuers_token() {
    let pki = Pki::new();
    let a = provider(&pki, jwks_of(&["sg-test-k1"])).await;
    let b = provider(&pki, jwks_of(&["sg-test-k2"])).await;
    let policies = tempfile::tempdir().unwrap();
    let ca = pki.path("ca.crt");
    let running = serve_tls(
        &pki,
        policies.path(),
        &[
            "--authn-issuer",
            &a.issuer,
            "--authn-issuer",
            &b.issuer,
            "--authn-audience",
            AUDIENCE,
            "--authn-ca-file",
            &ca,
        ],
    )
    .await;
    let mut conn = connect_apiserver(running.addr, &pki).await;
    let own = valid_token(&b.issuer, "sg-test-k2", "bob@contoso.com");
    assert_eq!(review(&mut conn, &own).await["authenticated"], true);
    let forged = valid_token(&a.issuer, "sg-test-k2", "alice@contoso.com");
    let status = review(&mut conn, &forged).await;
    assert_eq!(status["authenticated"], false, "{status}");
    assert!(
        status["error"]
            .as_str()
            .unwrap()
            .starts_with("issuer mismatch"),
        "{status}"
    );
    running.stop().await;
}

/// A body larger than `--max-body-bytes` is HTTP 413 with a Kubernetes `Status`, counted as
/// a TokenReview error, even when what was read shows a SubjectAccessReview (which
/// `/authorize` would deny).
#[tokio::test]
async fn an_oversized_token_review_is_413_and_counted() {
    let pki = Pki::new();
    let provider = provider(&pki, jwks_of(&["sg-test-k1"])).await;
    let policies = tempfile::tempdir().unwrap();
    let ca = pki.path("ca.crt");
    let running = serve_tls(
        &pki,
        policies.path(),
        &[
            "--authn-issuer",
            &provider.issuer,
            "--authn-audience",
            AUDIENCE,
            "--authn-ca-file",
            &ca,
            "--max-body-bytes",
            "4096",
        ],
    )
    .await;
    let big_token = format!("{}.e30.c2ln", "A".repeat(8192));
    let review = tokens::token_review(&big_token).to_string();
    let sar = json!({
        "kind": "SubjectAccessReview",
        "apiVersion": "authorization.k8s.io/v1",
        "spec": {"user": "alice", "groups": ["x".repeat(8192)]},
    })
    .to_string();
    for body in [review, sar] {
        assert!(body.len() > 4096);
        // A new connection each time: the server stops reading a body at the limit.
        let mut conn = connect_apiserver(running.addr, &pki).await;
        let (code, answer) = conn
            .post_to("/authenticate", body.into_bytes())
            .await
            .unwrap();
        assert_eq!(code, 413, "{answer}");
        assert_eq!(answer["kind"], "Status", "{answer}");
        assert_eq!(answer["reason"], "RequestEntityTooLarge", "{answer}");
    }
    let counted = |series: &'static str| admin_metric(running.admin_addr, series);
    assert_eq!(
        counted(r#"scopegate_token_reviews_total{reason="too large",result="error"}"#).await,
        Some(2.0)
    );
    assert_eq!(
        counted(r#"scopegate_http_requests_total{code="413"}"#).await,
        Some(2.0)
    );
    running.stop().await;
}

#[tokio::test]
async fn without_issuers_the_endpoint_says_it_is_not_configured() {
    let pki = Pki::new();
    let policies = tempfile::tempdir().unwrap();
    let running = serve_tls(&pki, policies.path(), &[]).await;
    let mut conn = connect_apiserver(running.addr, &pki).await;
    let (code, answer) = conn
        .post_to(
            "/authenticate",
            tokens::token_review("x.y.z").to_string().into_bytes(),
        )
        .await
        .unwrap();
    assert_eq!(code, 404);
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("--authn-issuer")
    );
    running.stop().await;
}

/// ES256 is accepted only when allowed (`--authn-algorithm ES256`), with a P-256 key; RS256
/// stays the only default.
#[test]
fn es256_is_accepted_only_when_allowed() {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("ec.pem");
    tokens::openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        key.to_str().unwrap(),
    ]);
    // The SubjectPublicKeyInfo ends with the uncompressed point 04 || x || y.
    let spki = tokens::openssl(&[
        "pkey",
        "-in",
        key.to_str().unwrap(),
        "-pubout",
        "-outform",
        "DER",
    ]);
    let point = &spki[spki.len() - 64..];
    let jwks = json!({"keys": [{"kty": "EC", "crv": "P-256", "use": "sig", "kid": "ec1",
        "x": b64.encode(&point[..32]), "y": b64.encode(&point[32..])}]});
    std::fs::write(dir.path().join("jwks.json"), jwks.to_string()).unwrap();
    let issuer = format!("https://login.microsoftonline.com/{TENANT}/v2.0");
    let header = json!({"alg": "ES256", "typ": "JWT", "kid": "ec1"});
    let signed = format!(
        "{}.{}",
        b64.encode(header.to_string()),
        b64.encode(claims(&issuer, "alice@contoso.com").to_string())
    );
    let signing = jsonwebtoken::EncodingKey::from_ec_pem(&std::fs::read(&key).unwrap()).unwrap();
    let signature =
        jsonwebtoken::crypto::sign(signed.as_bytes(), &signing, jsonwebtoken::Algorithm::ES256)
            .unwrap();
    std::fs::write(
        dir.path().join("review.json"),
        tokens::token_review(&format!("{signed}.{signature}")).to_string(),
    )
    .unwrap();
    let policies = dir.path().join("policies");
    std::fs::create_dir(&policies).unwrap();
    let check = |extra: &[&str]| {
        let mut args: Vec<String> = vec![
            "check".into(),
            "-f".into(),
            dir.path().join("review.json").display().to_string(),
            "--policies".into(),
            policies.display().to_string(),
            "--authn-issuer".into(),
            issuer.clone(),
            "--authn-audience".into(),
            AUDIENCE.into(),
            "--authn-jwks-file".into(),
            dir.path().join("jwks.json").display().to_string(),
        ];
        args.extend(extra.iter().map(|a| a.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = support::scopegate(&args);
        let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
        answer["status"].clone()
    };
    let refused = check(&[]);
    assert_eq!(refused["authenticated"], false);
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .starts_with("unsupported alg"),
        "{refused}"
    );
    let accepted = check(&["--authn-algorithm", "RS256,ES256"]);
    assert_eq!(accepted["authenticated"], true, "{accepted}");
    assert_eq!(accepted["user"]["username"], "alice@contoso.com");
}

/// The config file's `server.authentication` section sets token authentication; a flag
/// takes precedence over it.
#[test]
fn the_config_file_sets_token_authentication_and_flags_win() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = format!("https://login.microsoftonline.com/{TENANT}/v2.0");
    std::fs::write(
        dir.path().join("jwks.json"),
        jwks_of(&["sg-test-k1"]).to_string(),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    let config = format!(
        "policies: [{policies}]\nserver:\n  authentication:\n    issuers: [\"{issuer}\"]\n    audiences: [\"{AUDIENCE}\"]\n    jwksFile: {jwks}\n",
        policies = dir.path().join("policies").display(),
        jwks = dir.path().join("jwks.json").display(),
    );
    std::fs::write(dir.path().join("config.yaml"), config).unwrap();
    let token = valid_token(&issuer, "sg-test-k1", "alice@contoso.com");
    std::fs::write(
        dir.path().join("review.json"),
        tokens::token_review(&token).to_string(),
    )
    .unwrap();
    let check = |extra: &[&str]| {
        let review = dir.path().join("review.json").display().to_string();
        let config = dir.path().join("config.yaml").display().to_string();
        let mut args = vec!["check", "-f", &review, "--config", &config];
        args.extend_from_slice(extra);
        let out = support::scopegate(&args);
        let answer: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", support::stderr(&out)));
        answer["status"].clone()
    };
    let status = check(&[]);
    assert_eq!(status["authenticated"], true, "{status}");
    let status = check(&["--authn-audience", "api://another"]);
    assert_eq!(status["authenticated"], false, "{status}");
    assert!(
        status["error"]
            .as_str()
            .unwrap()
            .starts_with("audience mismatch")
    );
}

//! TLS rotation: the serving certificate and the client CA are re-read when their files
//! change; open connections keep working; a bad new certificate is rejected and the old one
//! stays.

mod support;

use support::*;

async fn serving_cert(addr: std::net::SocketAddr, pki: &Pki) -> Vec<u8> {
    let conn = connect_apiserver(addr, pki).await;
    conn.peer_cert.unwrap().as_ref().to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serving_certificate_rotates_without_dropping_clients() {
    let (pki, _policies, server) = serve_examples(&["--reload-interval-seconds", "3600"]).await;
    let body = request_fixture("alice-create-deployment.json");
    let mut open = connect_apiserver(server.addr, &pki).await;
    assert_eq!(open.post(body.clone()).await.unwrap().0, 200);
    let before = serving_cert(server.addr, &pki).await;

    // Rotate: a new serving certificate from the same CA.
    let next = pki.ca.server(&["127.0.0.1".into()], 30).unwrap();
    write_server(pki.dir.path(), &next);
    assert!(
        eventually(10, || async {
            serving_cert(server.addr, &pki).await != before
        })
        .await,
        "new certificate not served"
    );
    assert_eq!(
        open.post(body.clone()).await.unwrap().0,
        200,
        "an open connection survives rotation"
    );
    let rotated = serving_cert(server.addr, &pki).await;

    // A broken certificate file is rejected; the rotated one stays in use.
    std::fs::write(
        pki.dir.path().join("server.crt"),
        "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    assert!(
        eventually(10, || async {
            let errors = admin_metric(
                server.admin_addr,
                "scopegate_tls_reloads_total{result=\"error\"}",
            );
            errors.await.unwrap_or(0.0) >= 1.0
        })
        .await
    );
    assert_eq!(serving_cert(server.addr, &pki).await, rotated);
    let mut fresh = connect_apiserver(server.addr, &pki).await;
    assert_eq!(fresh.post(body).await.unwrap().0, 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_ca_rotation_applies_to_new_connections() {
    let (pki, _policies, server) = serve_examples(&["--reload-interval-seconds", "3600"]).await;
    let body = request_fixture("alice-create-deployment.json");
    let new_ca = scopegate::certs::Authority::new("next-ca").unwrap();
    let new_client = new_ca.client("kube-apiserver", 30).unwrap();
    let works = |client: scopegate::certs::Pem| {
        let (addr, ca, body) = (server.addr, pki.ca.pem.cert.clone(), body.clone());
        async move {
            connect_and_post(addr, client_config(&ca, Some(&client)), body)
                .await
                .is_ok_and(|(s, _)| s == 200)
        }
    };
    let old_client = || scopegate::certs::Pem {
        cert: pki.client.cert.clone(),
        key: pki.client.key.clone(),
    };
    let new_client_pem = || scopegate::certs::Pem {
        cert: new_client.cert.clone(),
        key: new_client.key.clone(),
    };
    assert!(works(old_client()).await);
    assert!(!works(new_client_pem()).await);
    // Trust both during the hand-over, then only the new CA.
    std::fs::write(
        pki.dir.path().join("ca.crt"),
        format!("{}{}", pki.ca.pem.cert, new_ca.pem.cert),
    )
    .unwrap();
    assert!(eventually(10, || works(new_client_pem())).await);
    assert!(works(old_client()).await);
    std::fs::write(pki.dir.path().join("ca.crt"), &new_ca.pem.cert).unwrap();
    assert!(eventually(10, || async { !works(old_client()).await }).await);
    assert!(works(new_client_pem()).await);
    server.stop().await;
}

/// cert-manager's Secret layout: `tls.crt`, `tls.key` and `ca.crt`, the last one the client
/// CA bundle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_a_cert_manager_secret_directory() {
    let pki = Pki::new();
    let secret = tempfile::tempdir().unwrap();
    let server_pem = pki.ca.server(&["127.0.0.1".into()], 30).unwrap();
    std::fs::write(secret.path().join("tls.crt"), &server_pem.cert).unwrap();
    std::fs::write(secret.path().join("tls.key"), &server_pem.key).unwrap();
    std::fs::write(secret.path().join("ca.crt"), &pki.ca.pem.cert).unwrap();
    let policies = policy_dir();
    let (p, dir) = (
        policies.path().display().to_string(),
        secret.path().display().to_string(),
    );
    let server = serve(&["--policies", &p, "--tls-secret-dir", &dir]).await;

    let mut conn = connect_apiserver(server.addr, &pki).await;
    let body = request_fixture("alice-create-deployment.json");
    assert_eq!(conn.post(body).await.unwrap().0, 200);
    assert_eq!(
        conn.peer_cert.unwrap().as_ref(),
        cert_der(&server_pem.cert).as_slice()
    );
    let anonymous = client_config(&pki.ca.pem.cert, None);
    assert!(
        connect_and_post(server.addr, anonymous, b"{}".to_vec())
            .await
            .is_err(),
        "ca.crt is the client CA: a client without a certificate is refused"
    );
    server.stop().await;
}

fn cert_der(pem: &str) -> Vec<u8> {
    use rustls_pki_types::pem::PemObject;
    rustls_pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .to_vec()
}

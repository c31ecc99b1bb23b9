//! Shared test support: certificates made in the test, an in-process server on a free
//! loopback port, and a real HTTPS client (rustls + hyper) with or without a client cert.
#![allow(dead_code)]

pub mod tokens;

use axum::body::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use scopegate::certs::{Authority, Pem};
use scopegate::cli::{Cli, Command};
use scopegate::policy::IndexOptions;
use scopegate::server::reload::Reloader;
use scopegate::server::{self, Running};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

pub const CLUSTER: &str = "/subscriptions/3f2a6b1c-5d4e-4f70-8a9b-0c1d2e3f4a5b/resourceGroups/rg-platform/providers/Microsoft.ContainerService/managedClusters/aks-prod";

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs the `scopegate` binary with `args` in the crate root, without the cluster id from the
/// environment.
pub fn scopegate(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_scopegate"))
        .args(args)
        .current_dir(root())
        .env_remove("SCOPEGATE_CLUSTER_RESOURCE_ID")
        .output()
        .expect("run scopegate")
}

/// What a run of `scopegate` wrote to stderr.
pub fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

/// Certificates written to a temp dir: ca, server, client (CN kube-apiserver).
pub struct Pki {
    pub dir: tempfile::TempDir,
    pub ca: Authority,
    pub client: Pem,
}

impl Pki {
    pub fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let ca = Authority::new("test-ca").unwrap();
        let server = ca
            .server(&["127.0.0.1".into(), "localhost".into()], 30)
            .unwrap();
        let client = ca.client("kube-apiserver", 30).unwrap();
        std::fs::write(dir.path().join("ca.crt"), &ca.pem.cert).unwrap();
        write_server(dir.path(), &server);
        Pki { dir, ca, client }
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// The client config kube-apiserver has: trusts the CA, presents the client certificate.
    pub fn apiserver_config(&self) -> Arc<rustls::ClientConfig> {
        client_config(&self.ca.pem.cert, Some(&self.client))
    }
}

/// The bytes of a request fixture (`tests/fixtures/requests/<name>`).
pub fn request_fixture(name: &str) -> Vec<u8> {
    std::fs::read(root().join("tests/fixtures/requests").join(name)).unwrap()
}

/// Replaces server.crt/server.key atomically (write aside, rename), as a Secret update would.
pub fn write_server(dir: &Path, pem: &Pem) {
    std::fs::write(dir.join("server.key.tmp"), &pem.key).unwrap();
    std::fs::write(dir.join("server.crt.tmp"), &pem.cert).unwrap();
    std::fs::rename(dir.join("server.key.tmp"), dir.join("server.key")).unwrap();
    std::fs::rename(dir.join("server.crt.tmp"), dir.join("server.crt")).unwrap();
}

/// A reloader of one policy directory, driven directly (no server, no watcher): its files
/// count as being written for `settle` after they change.
pub fn reloader(dir: &Path, options: IndexOptions, settle: Duration) -> Reloader {
    let mut reloader = Reloader::new(
        Arc::new(scopegate::policy::store::PolicyStore::new()),
        vec![dir.to_path_buf()],
        options,
        scopegate::metrics::Metrics::new(),
        None,
    );
    reloader.settle = settle;
    reloader
}

/// A copy of the example policies in a temp dir the test may change.
pub fn policy_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&root().join("policies"), dir.path());
    dir
}

pub fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Starts `scopegate serve` in-process with the given flags (ports default to 0 = free).
pub async fn serve(args: &[&str]) -> Running {
    serve_with_cluster(args, None).await
}

/// As [`serve`], with a live RBAC source the test feeds with watch events.
pub async fn serve_with_cluster(
    args: &[&str],
    cluster: Option<Arc<scopegate::cluster::ClusterSource>>,
) -> Running {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut argv = vec![
        "scopegate",
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
        "--cluster-resource-id",
        CLUSTER,
    ];
    // Test files are written just before the server starts: a short settle time keeps the
    // tests quick (production waits two seconds).
    if !args.contains(&"--policy-settle-ms") {
        argv.extend(["--policy-settle-ms", "150"]);
    }
    // The key the shipped configuration and the request fixtures use.
    if !args.contains(&"--principal-claim") {
        argv.extend(["--principal-claim", "scopegate.io/oid"]);
    }
    argv.extend_from_slice(args);
    let Command::Serve(serve_args) = Cli::try_parse_from(argv).unwrap().command else {
        unreachable!()
    };
    let engine = serve_args.engine.resolve().unwrap();
    let settings = serve_args.settings(&engine.file.server).unwrap();
    server::start(engine, settings, cluster).await.unwrap()
}

/// Starts a TLS server with mTLS on the PKI and the given policy dir.
pub async fn serve_tls(pki: &Pki, policies: &Path, extra: &[&str]) -> Running {
    serve_tls_with_cluster(pki, policies, extra, None).await
}

/// As [`serve_tls`], with a live RBAC source the test feeds with watch events.
pub async fn serve_tls_with_cluster(
    pki: &Pki,
    policies: &Path,
    extra: &[&str],
    cluster: Option<Arc<scopegate::cluster::ClusterSource>>,
) -> Running {
    let (cert, key, ca) = (
        pki.path("server.crt"),
        pki.path("server.key"),
        pki.path("ca.crt"),
    );
    let p = policies.display().to_string();
    let mut args = vec![
        "--policies",
        &p,
        "--tls-cert-file",
        &cert,
        "--tls-private-key-file",
        &key,
        "--client-ca-file",
        &ca,
    ];
    if !extra.contains(&"--reload-interval-seconds") {
        args.extend(["--reload-interval-seconds", "1"]);
    }
    args.extend_from_slice(extra);
    serve_with_cluster(&args, cluster).await
}

/// A new PKI and a copy of the example policies, served over mutual TLS with `extra` flags.
pub async fn serve_examples(extra: &[&str]) -> (Pki, tempfile::TempDir, Running) {
    let pki = Pki::new();
    let policies = policy_dir();
    let server = serve_tls(&pki, policies.path(), extra).await;
    (pki, policies, server)
}

/// rustls client config trusting `ca`, presenting `client` if given.
pub fn client_config(ca: &str, client: Option<&Pem>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let config = match client {
        Some(pem) => {
            let certs: Vec<_> = CertificateDer::pem_slice_iter(pem.cert.as_bytes())
                .map(Result::unwrap)
                .collect();
            let key = PrivateKeyDer::from_pem_slice(pem.key.as_bytes()).unwrap();
            builder.with_client_auth_cert(certs, key).unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    Arc::new(config)
}

/// An HTTPS connection (keep-alive) to the server.
pub struct Conn {
    pub sender: SendRequest<Full<Bytes>>,
    pub peer_cert: Option<CertificateDer<'static>>,
}

/// A TLS stream to the server with nothing sent over it yet (for tests that write raw HTTP).
pub async fn tls_connect(
    addr: std::net::SocketAddr,
    config: Arc<rustls::ClientConfig>,
) -> Result<TlsStream<TcpStream>, String> {
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    tcp.set_nodelay(true).unwrap();
    tokio_rustls::TlsConnector::from(config)
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .map_err(|e| e.to_string())
}

pub async fn connect(
    addr: std::net::SocketAddr,
    config: Arc<rustls::ClientConfig>,
) -> Result<Conn, String> {
    let tls = tls_connect(addr, config).await?;
    let peer_cert = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.clone().into_owned());
    let (sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    Ok(Conn { sender, peer_cert })
}

/// An HTTPS connection as kube-apiserver (the PKI's client certificate).
pub async fn connect_apiserver(addr: std::net::SocketAddr, pki: &Pki) -> Conn {
    connect_as(addr, pki, &pki.client).await
}

/// An HTTPS connection trusting the PKI's CA and presenting `client`, which the handshake
/// must accept.
pub async fn connect_as(addr: std::net::SocketAddr, pki: &Pki, client: &Pem) -> Conn {
    connect(addr, client_config(&pki.ca.pem.cert, Some(client)))
        .await
        .unwrap()
}

/// Connects with `config` and POSTs `body` to /authorize: Err if the handshake or the
/// request failed (a client the server refuses).
pub async fn connect_and_post(
    addr: std::net::SocketAddr,
    config: Arc<rustls::ClientConfig>,
    body: impl Into<Bytes>,
) -> Result<(u16, serde_json::Value), String> {
    connect(addr, config).await?.post(body).await
}

/// A plain-HTTP connection.
pub async fn connect_plain(addr: std::net::SocketAddr) -> Conn {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    Conn {
        sender,
        peer_cert: None,
    }
}

impl Conn {
    /// POSTs a body to /authorize; returns status and JSON body. A request the server cut
    /// off returns Err.
    pub async fn post(
        &mut self,
        body: impl Into<Bytes>,
    ) -> Result<(u16, serde_json::Value), String> {
        self.post_to("/authorize", body).await
    }

    /// POSTs to any path.
    pub async fn post_to(
        &mut self,
        path: &str,
        body: impl Into<Bytes>,
    ) -> Result<(u16, serde_json::Value), String> {
        self.sender.ready().await.map_err(|e| e.to_string())?;
        let req = hyper::Request::post(path)
            .header("content-type", "application/json")
            .header("host", "127.0.0.1")
            .body(Full::new(body.into()))
            .unwrap();
        let resp = self
            .sender
            .send_request(req)
            .await
            .map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        let json = serde_json::from_slice(&bytes)
            .map_err(|e| format!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))?;
        Ok((status, json))
    }

    /// GET on this connection: status and text.
    pub async fn get(&mut self, path: &str) -> (u16, String) {
        self.sender.ready().await.unwrap();
        let req = hyper::Request::get(path)
            .header("host", "127.0.0.1")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let resp = self.sender.send_request(req).await.unwrap();
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&bytes).to_string())
    }
}

/// GET on the admin port (a new connection): status and text.
pub async fn admin_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    connect_plain(addr).await.get(path).await
}

/// The admin port's `/metrics` text.
pub async fn metrics(admin: std::net::SocketAddr) -> String {
    admin_get(admin, "/metrics").await.1
}

/// One metric read from the admin port's `/metrics` (see [`metric`]).
pub async fn admin_metric(admin: std::net::SocketAddr, series: &str) -> Option<f64> {
    metric(&metrics(admin).await, series)
}

/// Waits until `/readyz` answers `status`, up to `secs`.
pub async fn readyz_becomes(admin: std::net::SocketAddr, status: u16, secs: u64) -> bool {
    eventually(secs, || async {
        admin_get(admin, "/readyz").await.0 == status
    })
    .await
}

/// The value of a metric line (`name{labels} value`) in Prometheus text.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)
            .and_then(|rest| rest.trim().parse().ok())
    })
}

/// Waits until `f` is true (polling), up to `secs`.
pub async fn eventually<F: std::future::Future<Output = bool>>(
    secs: u64,
    mut f: impl FnMut() -> F,
) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if f().await {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    false
}

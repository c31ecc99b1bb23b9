//! `scopegate serve`: the webhook kube-apiserver calls (HTTPS, optional mutual TLS), and a
//! separate plain-HTTP admin listener for probes and metrics.
//!
//! ```text
//! accept (backs off on errors) -> connection slot (cap; oldest idle out) -> TCP_NODELAY
//!   -> TLS handshake (current config, timeout) -> client name check
//!   -> hyper http1 (header read timeout) -> axum: POST /authorize -> engine (one snapshot)
//! watchers: policy dirs | SIGHUP | poll -> reload off the request path -> ArcSwap
//!           TLS files -> rebuild ServerConfig -> ArcSwap (new connections)
//! ```

pub mod admin;
pub mod authenticate;
pub mod authorize;
pub mod check_access;
pub mod defaults;
pub mod exposure;
pub mod issuer_keys;
pub mod listener;
pub mod reload;
pub mod tls;

use crate::cache::DecisionCache;
use crate::config::EngineArgs;
use crate::metrics::Metrics;
use crate::policy::store::PolicyStore;
use crate::telemetry::LogFormat;
use anyhow::Context;
use authorize::{AppState, Mode, PeerIdentity, Shared};
use clap::Args;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Flags of `serve` (each also `SCOPEGATE_*` and `server:` in the config file).
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Webhook listen address [default: 127.0.0.1:8443].
    #[arg(long, value_name = "ADDR:PORT", env = "SCOPEGATE_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Admin listen address (plain HTTP: /livez, /readyz, /metrics) [default: 127.0.0.1:9090].
    #[arg(long, value_name = "ADDR:PORT", env = "SCOPEGATE_ADMIN_LISTEN")]
    pub admin_listen: Option<SocketAddr>,
    /// Serving certificate (PEM, leaf first).
    #[arg(long, value_name = "FILE", env = "SCOPEGATE_TLS_CERT_FILE")]
    pub tls_cert_file: Option<PathBuf>,
    /// Serving private key (PEM).
    #[arg(long, value_name = "FILE", env = "SCOPEGATE_TLS_PRIVATE_KEY_FILE")]
    pub tls_private_key_file: Option<PathBuf>,
    /// CA bundle client certificates must chain to (repeatable). Set: mutual TLS is required.
    #[arg(
        long,
        value_name = "FILE",
        env = "SCOPEGATE_CLIENT_CA_FILE",
        value_delimiter = ','
    )]
    pub client_ca_file: Vec<PathBuf>,
    /// A cert-manager Secret as mounted: `tls.crt` and `tls.key` serve, `ca.crt` is the client
    /// CA bundle unless --client-ca-file is given.
    #[arg(
        long,
        value_name = "DIR",
        env = "SCOPEGATE_TLS_SECRET_DIR",
        conflicts_with_all = ["tls_cert_file", "tls_private_key_file"]
    )]
    pub tls_secret_dir: Option<PathBuf>,
    /// Client certificate common names allowed to call (repeatable; empty = any verified client).
    #[arg(
        long,
        value_name = "NAME",
        env = "SCOPEGATE_ALLOWED_CLIENT_NAMES",
        value_delimiter = ','
    )]
    pub allowed_client_names: Vec<String>,
    /// Serve plain HTTP instead of HTTPS (testing only).
    #[arg(long, env = "SCOPEGATE_INSECURE_HTTP")]
    pub insecure_http: bool,
    /// `enforce` answers what the policy decides; `shadow` logs it and answers no opinion.
    #[arg(long, value_enum, env = "SCOPEGATE_MODE")]
    pub mode: Option<Mode>,
    /// Log format.
    #[arg(long, value_enum, env = "SCOPEGATE_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Largest accepted request body in bytes [default: 1048576].
    #[arg(long, value_name = "BYTES", env = "SCOPEGATE_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Time allowed for reading a request's headers (also the keep-alive idle limit) and body
    /// [default: 30].
    #[arg(long, value_name = "SECONDS", env = "SCOPEGATE_READ_TIMEOUT_SECONDS")]
    pub read_timeout_seconds: Option<u64>,
    /// Time allowed for a new connection's TLS handshake [default: 5].
    #[arg(
        long,
        value_name = "SECONDS",
        env = "SCOPEGATE_TLS_HANDSHAKE_TIMEOUT_SECONDS"
    )]
    pub tls_handshake_timeout_seconds: Option<u64>,
    /// Open webhook connections at most; at the cap a new one replaces the connection idle the
    /// longest, or is refused when none is idle [default: 4096].
    #[arg(long, value_name = "N", env = "SCOPEGATE_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Safety-net re-read of policy and TLS files, in seconds [default: 60].
    #[arg(
        long,
        value_name = "SECONDS",
        env = "SCOPEGATE_RELOAD_INTERVAL_SECONDS"
    )]
    pub reload_interval_seconds: Option<u64>,
    /// A policy file changed more recently than this is not read yet (it may be half
    /// written); its previous content keeps serving. Write policy files atomically anyway
    /// [default: 2000].
    #[arg(long, value_name = "MS", env = "SCOPEGATE_POLICY_SETTLE_MS")]
    pub policy_settle_ms: Option<u64>,
    /// Publish a policy change even if it removes every deny assignment or more than half
    /// of a kind of object (held back otherwise).
    #[arg(long, env = "SCOPEGATE_ALLOW_LARGE_REMOVALS")]
    pub allow_large_removals: bool,
    /// Decision cache entries (0 disables the cache) [default: 0].
    #[arg(long, value_name = "N", env = "SCOPEGATE_DECISION_CACHE_SIZE")]
    pub decision_cache_size: Option<u64>,
    /// Decision cache budget in bytes (keys, reasons and overhead) [default: 64 MiB].
    #[arg(long, value_name = "BYTES", env = "SCOPEGATE_DECISION_CACHE_MAX_BYTES")]
    pub decision_cache_max_bytes: Option<u64>,
    /// Decision cache entry lifetime in seconds [default: 30].
    #[arg(
        long,
        value_name = "SECONDS",
        env = "SCOPEGATE_DECISION_CACHE_TTL_SECONDS"
    )]
    pub decision_cache_ttl_seconds: Option<u64>,
    /// Print the webhook kubeconfig for this configuration and exit.
    #[arg(long)]
    pub print_kubeconfig: bool,
    /// Benchmark ceiling: answer every POST with a fixed no-opinion body, without decoding or
    /// deciding, over the same listener, TLS and HTTP stack. Only in builds for the load
    /// benchmark (`--features bench-support`), never in the product.
    #[cfg(feature = "bench-support")]
    #[arg(long)]
    pub benchmark_empty_handler: bool,
    /// URL kube-apiserver uses to reach this webhook (for --print-kubeconfig).
    #[arg(long, value_name = "URL", env = "SCOPEGATE_ADVERTISE_URL")]
    pub advertise_url: Option<String>,
    #[command(flatten)]
    pub authn: crate::config::AuthnArgs,
    #[command(flatten)]
    pub workload: crate::config::WorkloadArgs,
    /// Keep policy current from Azure inside this process: the sync config file (README
    /// "Keeping policy current: sync"); its `output` must be below a policy directory.
    #[arg(long, value_name = "FILE", env = "SCOPEGATE_SERVE_SYNC_CONFIG")]
    pub sync_config: Option<PathBuf>,
}

/// The `server:` section of the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServerFile {
    pub listen: Option<SocketAddr>,
    pub admin_listen: Option<SocketAddr>,
    pub tls_cert_file: Option<PathBuf>,
    pub tls_private_key_file: Option<PathBuf>,
    #[serde(default)]
    pub client_ca_file: Vec<PathBuf>,
    pub tls_secret_dir: Option<PathBuf>,
    #[serde(default)]
    pub allowed_client_names: Vec<String>,
    #[serde(default)]
    pub insecure_http: bool,
    pub mode: Option<Mode>,
    pub log_format: Option<LogFormat>,
    pub max_body_bytes: Option<usize>,
    pub read_timeout_seconds: Option<u64>,
    pub tls_handshake_timeout_seconds: Option<u64>,
    pub max_connections: Option<usize>,
    pub reload_interval_seconds: Option<u64>,
    pub policy_settle_ms: Option<u64>,
    #[serde(default)]
    pub allow_large_removals: bool,
    pub decision_cache_size: Option<u64>,
    pub decision_cache_max_bytes: Option<u64>,
    pub decision_cache_ttl_seconds: Option<u64>,
    pub advertise_url: Option<String>,
    /// Token authentication (`POST /authenticate`); the `--authn-*` flags take precedence.
    pub authentication: Option<crate::config::AuthnArgs>,
    /// Workload identity questions (CheckAccess about service accounts); the flags take
    /// precedence.
    pub workload_identity: Option<crate::config::WorkloadArgs>,
    /// The sync config file (as --sync-config).
    pub sync_config: Option<PathBuf>,
}

/// Server settings after flags, environment, config file and defaults.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub listen: SocketAddr,
    pub admin_listen: SocketAddr,
    pub tls: Option<tls::TlsFiles>,
    pub allowed_client_names: Vec<String>,
    pub mode: Mode,
    pub log_format: LogFormat,
    pub max_body_bytes: usize,
    pub read_timeout: Duration,
    pub tls_handshake_timeout: Duration,
    pub max_connections: usize,
    pub reload_interval: Duration,
    pub policy_settle: Duration,
    pub allow_large_removals: bool,
    pub decision_cache_size: u64,
    pub decision_cache_max_bytes: u64,
    pub decision_cache_ttl: Duration,
    pub advertise_url: Option<String>,
    /// Token authentication (`POST /authenticate`), when issuers are configured.
    pub authn: Option<crate::config::AuthnSettings>,
    /// Workload identity: the cluster issuer questions assume and projected tokens are
    /// checked against.
    pub workload: crate::config::WorkloadSettings,
    /// In-process sync (`--sync-config`).
    pub sync: Option<crate::sync::SyncConfig>,
    /// See `ServeArgs::benchmark_empty_handler`.
    #[cfg(feature = "bench-support")]
    pub empty_handler: bool,
}

impl ServerFile {
    /// The config file's `server:` section (absent: every default).
    pub fn read(section: &serde_json::Value) -> anyhow::Result<ServerFile> {
        if section.is_null() {
            return Ok(ServerFile::default());
        }
        serde_json::from_value(section.clone())
            .context("invalid `server:` section in the config file")
    }
}

impl ServeArgs {
    /// Merges flags over the config file's `server:` section over defaults.
    pub fn settings(&self, file: &serde_json::Value) -> anyhow::Result<ServerSettings> {
        let f = ServerFile::read(file)?;
        let mut cert = self.tls_cert_file.clone().or(f.tls_cert_file);
        let mut key = self.tls_private_key_file.clone().or(f.tls_private_key_file);
        let mut client_cas = if self.client_ca_file.is_empty() {
            f.client_ca_file
        } else {
            self.client_ca_file.clone()
        };
        if let Some(dir) = self.tls_secret_dir.clone().or(f.tls_secret_dir) {
            anyhow::ensure!(
                cert.is_none() && key.is_none(),
                "the TLS secret directory `{}` names tls.crt and tls.key itself: drop the certificate and key files",
                dir.display()
            );
            cert = Some(dir.join("tls.crt"));
            key = Some(dir.join("tls.key"));
            if client_cas.is_empty() {
                client_cas = vec![dir.join("ca.crt")];
            }
        }
        let insecure = self.insecure_http || f.insecure_http;
        let tls = match (cert, key, insecure) {
            (Some(cert), Some(key), false) => Some(tls::TlsFiles {
                cert,
                key,
                client_cas,
            }),
            (_, _, true) => None,
            _ => anyhow::bail!(
                "serving needs --tls-cert-file and --tls-private-key-file (or --insecure-http for plain HTTP)"
            ),
        };
        Ok(ServerSettings {
            listen: self.listen.or(f.listen).unwrap_or(defaults::LISTEN),
            admin_listen: self
                .admin_listen
                .or(f.admin_listen)
                .unwrap_or(defaults::ADMIN_LISTEN),
            tls,
            allowed_client_names: if self.allowed_client_names.is_empty() {
                f.allowed_client_names
            } else {
                self.allowed_client_names.clone()
            },
            mode: self.mode.or(f.mode).unwrap_or_default(),
            log_format: self.log_format.or(f.log_format).unwrap_or_default(),
            max_body_bytes: self
                .max_body_bytes
                .or(f.max_body_bytes)
                .unwrap_or(defaults::MAX_BODY_BYTES),
            read_timeout: seconds(
                self.read_timeout_seconds.or(f.read_timeout_seconds),
                defaults::READ_TIMEOUT,
            ),
            tls_handshake_timeout: seconds(
                self.tls_handshake_timeout_seconds
                    .or(f.tls_handshake_timeout_seconds),
                defaults::TLS_HANDSHAKE_TIMEOUT,
            ),
            max_connections: self
                .max_connections
                .or(f.max_connections)
                .unwrap_or(defaults::MAX_CONNECTIONS)
                .max(1),
            reload_interval: seconds(
                self.reload_interval_seconds.or(f.reload_interval_seconds),
                defaults::RELOAD_INTERVAL,
            ),
            policy_settle: self
                .policy_settle_ms
                .or(f.policy_settle_ms)
                .map_or(defaults::POLICY_SETTLE, Duration::from_millis),
            allow_large_removals: self.allow_large_removals || f.allow_large_removals,
            decision_cache_size: self
                .decision_cache_size
                .or(f.decision_cache_size)
                .unwrap_or(defaults::DECISION_CACHE_SIZE),
            decision_cache_max_bytes: self
                .decision_cache_max_bytes
                .or(f.decision_cache_max_bytes)
                .unwrap_or(defaults::DECISION_CACHE_MAX_BYTES),
            decision_cache_ttl: seconds(
                self.decision_cache_ttl_seconds
                    .or(f.decision_cache_ttl_seconds),
                defaults::DECISION_CACHE_TTL,
            ),
            advertise_url: self.advertise_url.clone().or(f.advertise_url),
            authn: self.authn.over(f.authentication.as_ref()).resolve()?,
            workload: self.workload.over(f.workload_identity.as_ref()).resolve()?,
            sync: match self.sync_config.clone().or(f.sync_config) {
                Some(path) => {
                    Some(crate::sync::SyncConfig::read(&path).map_err(anyhow::Error::msg)?)
                }
                None => None,
            },
            #[cfg(feature = "bench-support")]
            empty_handler: self.benchmark_empty_handler,
        })
    }
}

/// A setting in whole seconds, at least one, or its default.
fn seconds(set: Option<u64>, default: Duration) -> Duration {
    set.map_or(default, |s| Duration::from_secs(s.max(1)))
}

/// The webhook kubeconfig kube-apiserver needs for this configuration.
pub fn kubeconfig(settings: &ServerSettings) -> String {
    let scheme = if settings.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let url = settings
        .advertise_url
        .clone()
        .unwrap_or_else(|| format!("{scheme}://{}/authorize", settings.listen));
    let dir = settings
        .tls
        .as_ref()
        .and_then(|t| {
            t.cert.parent().map(|p| {
                std::fs::canonicalize(p)
                    .unwrap_or_else(|_| p.to_path_buf())
                    .display()
                    .to_string()
            })
        })
        .unwrap_or_else(|| "/etc/kubernetes/scopegate".into());
    format!(
        "# webhook kubeconfig for kube-apiserver (AuthorizationConfiguration connectionInfo.kubeConfigFile)\n\
apiVersion: v1\nkind: Config\nclusters:\n- name: scopegate\n  cluster:\n    server: {url}\n    certificate-authority: {dir}/ca.crt\n\
users:\n- name: kube-apiserver\n  user:\n    client-certificate: {dir}/client.crt\n    client-key: {dir}/client.key\n\
contexts:\n- name: webhook\n  context:\n    cluster: scopegate\n    user: kube-apiserver\ncurrent-context: webhook\n"
    )
}

/// A running server: its bound addresses and a handle to stop it.
pub struct Running {
    pub addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub state: AppState,
    shutdown: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Stops accepting, lets open requests finish (bounded), and returns.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
    }
}

/// Starts listeners, watchers and the first policy load; returns once listening.
pub async fn start(
    engine: crate::config::Resolved,
    settings: ServerSettings,
    cluster: Option<Arc<crate::cluster::ClusterSource>>,
) -> anyhow::Result<Running> {
    let metrics = Metrics::new();
    if let Some(c) = &cluster {
        // ServiceAccounts matter only to workload identity questions, which need the
        // cluster's issuer.
        c.start(
            Some(metrics.clone()),
            settings.workload.cluster_issuer.is_some(),
        );
    }
    let store = Arc::new(PolicyStore::new());
    let reloader = policy_reloader(&engine, &settings, &store, &metrics, cluster.as_ref());
    // Files are watched before they are first read, so no change in between is missed.
    let policy_watch = reload::watch_paths(&engine.policies);
    first_load(&reloader, &store, settings.policy_settle).await;
    let authn = match &settings.authn {
        Some(authn) => {
            Some(token_authentication(authn, engine.options.groups_from, &metrics).await?)
        }
        None => None,
    };
    let workload = Arc::new(workload_identity(&settings.workload, Some(&metrics)).await?);
    let syncer = match &settings.sync {
        Some(config) => {
            let mut syncer = in_process_sync(config, &engine.policies, &metrics)?;
            // Synced files are complete when published: read them once the settle time
            // has passed, without waiting for the watcher; then say whether they serve.
            let (reloader, settle, store) =
                (reloader.clone(), settings.policy_settle, store.clone());
            syncer.after_publish(Arc::new(move |published| {
                let (reloader, store) = (reloader.clone(), store.clone());
                Box::pin(async move {
                    if published {
                        tokio::time::sleep(settle + Duration::from_millis(20)).await;
                        reload::reload_blocking(&reloader, "sync", false).await;
                    }
                    serving_files(&store)
                })
            }));
            Some(Arc::new(syncer))
        }
        None => None,
    };
    let state = webhook_state(
        &engine,
        &settings,
        store,
        &metrics,
        cluster.as_ref(),
        Services {
            authn: authn.clone(),
            workload: workload.clone(),
            sync: syncer.as_ref().map(|s| s.status.clone()),
        },
    );
    let tls = load_tls(settings.tls.as_ref(), &metrics)?;
    let listener = bind(settings.listen).await?;
    let admin_listener = bind(settings.admin_listen).await?;
    let addr = listener.local_addr()?;
    let admin_addr = admin_listener.local_addr()?;
    let (shutdown, shutdown_rx) = watch::channel(false);
    let mut tasks = Vec::new();
    let webhook = listener::Listener::new(settings.max_connections, metrics.clone());
    // Alive from here, not from the task's first poll: a probe right after start sees it.
    let accepting = webhook.accepting();
    tasks.push(tokio::spawn(accept_loop(
        listener,
        accepting,
        tls.as_ref().map(|(state, _)| state.clone()),
        webhook_router(&settings, &state),
        Timeouts {
            handshake: settings.tls_handshake_timeout,
            read: settings.read_timeout,
        },
        metrics.clone(),
        shutdown_rx.clone(),
    )));
    tasks.push(tokio::spawn(serve_admin(
        admin_listener,
        admin::app(state.clone(), webhook),
        shutdown_rx.clone(),
    )));
    tasks.push(tokio::spawn(reload::watch_policies(
        reloader,
        policy_watch,
        settings.reload_interval,
        shutdown_rx.clone(),
    )));
    if let Some(authn) = authn {
        tasks.push(tokio::spawn(refresh_issuer_keys(
            authn.keys.clone(),
            shutdown_rx.clone(),
        )));
    }
    if let Some((_, keys)) = &workload.tokens {
        tasks.push(tokio::spawn(refresh_issuer_keys(
            keys.clone(),
            shutdown_rx.clone(),
        )));
    }
    if let Some(syncer) = syncer {
        let mut stop = shutdown_rx.clone();
        tasks.push(tokio::spawn(syncer.run_every(async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        })));
    }
    tasks.push(tokio::spawn(authorize::warn_missing_claim(
        state.clone(),
        authorize::CLAIM_WATCH_WINDOW,
        shutdown_rx.clone(),
    )));
    if let Some((tls_state, tls_watch)) = tls {
        tasks.push(tokio::spawn(reload::watch_tls(
            tls_state,
            tls_watch,
            metrics.clone(),
            settings.reload_interval,
            shutdown_rx.clone(),
        )));
    }
    tracing::info!(%addr, %admin_addr, tls = settings.tls.is_some(), mode = ?settings.mode, "scopegate listening");
    Ok(Running {
        addr,
        admin_addr,
        state,
        shutdown,
        tasks,
    })
}

/// The reloader of the configured policy files (and the live cluster's objects) into
/// `store`, with the settings' settle time and large-removal guard.
fn policy_reloader(
    engine: &crate::config::Resolved,
    settings: &ServerSettings,
    store: &Arc<PolicyStore>,
    metrics: &Metrics,
    cluster: Option<&Arc<crate::cluster::ClusterSource>>,
) -> Arc<reload::Reloader> {
    let mut reloader = reload::Reloader::new(
        store.clone(),
        engine.policies.clone(),
        engine.index.clone(),
        metrics.clone(),
        cluster.cloned(),
    );
    reloader.settle = settings.policy_settle;
    reloader.allow_large_removals = settings.allow_large_removals;
    Arc::new(reloader)
}

/// Token authentication: the issuers' keys read once before listening (a failure is logged;
/// the keys are read again on the first token naming one, and routinely).
async fn token_authentication(
    settings: &crate::config::AuthnSettings,
    groups_from: crate::model::GroupsFrom,
    metrics: &Metrics,
) -> anyhow::Result<Arc<authenticate::Authn>> {
    let keys = issuer_keys::IssuerKeys::new(settings.keys.clone(), Some(metrics.clone()))?;
    match keys.refresh().await {
        Ok(_) => tracing::info!(
            keys = keys.keys().len(),
            issuers = ?settings.rules.issuers.iter().map(crate::identity::Issuer::name).collect::<Vec<_>>(),
            "token authentication on: POST /authenticate"
        ),
        Err(e) => tracing::warn!(
            error = %e,
            "cannot read the issuers' signing keys yet; tokens are refused until they are read"
        ),
    }
    Ok(Arc::new(authenticate::Authn {
        rules: settings.rules.clone(),
        keys: Arc::new(keys),
        cache: crate::identity::cache::TokenCache::new(authenticate::TOKEN_CACHE_BYTES),
        groups_from,
    }))
}

/// Workload identity on the CheckAccess endpoint: the defaults questions assume and, with a
/// cluster issuer, its keys read once before listening (a failure is logged; they are read
/// again on the first token naming one, and routinely).
pub async fn workload_identity(
    settings: &crate::config::WorkloadSettings,
    metrics: Option<&Metrics>,
) -> anyhow::Result<check_access::WorkloadIdentity> {
    let tokens = match &settings.tokens {
        Some(tokens) => {
            let keys = issuer_keys::IssuerKeys::new(tokens.keys.clone(), metrics.cloned())?;
            match keys.refresh().await {
                Ok(_) => tracing::info!(
                    keys = keys.keys().len(),
                    issuer = ?settings.cluster_issuer,
                    "service-account tokens accepted on CheckAccess"
                ),
                Err(e) => tracing::warn!(
                    error = %e,
                    "cannot read the cluster issuer's signing keys yet; service-account tokens are refused until they are read"
                ),
            }
            Some((tokens.rules.clone(), Arc::new(keys)))
        }
        None => None,
    };
    Ok(check_access::WorkloadIdentity {
        defaults: settings.defaults(),
        tokens,
    })
}

/// Reads the issuers' keys again every [`issuer_keys::ROUTINE_INTERVAL`], or every
/// [`issuer_keys::RETRY_INTERVAL`] while none could be read yet. Keys that change take a
/// new generation, and a verified token is served from the cache only for the generation
/// that verified it.
async fn refresh_issuer_keys(
    keys: Arc<issuer_keys::IssuerKeys>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let wait = if keys.keys().is_empty() {
            issuer_keys::RETRY_INTERVAL
        } else {
            issuer_keys::ROUTINE_INTERVAL
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => return,
        }
        if let Err(e) = keys.refresh().await {
            tracing::warn!(error = %e, "cannot read the issuers' signing keys; the keys held stay in use")
        }
    }
}

/// What serves beside the authorizer: token authentication, workload identity questions,
/// the in-process sync.
struct Services {
    authn: Option<Arc<authenticate::Authn>>,
    workload: Arc<check_access::WorkloadIdentity>,
    sync: Option<Arc<crate::sync::SyncStatus>>,
}

/// What the webhook's requests are answered with: the policy store, the engine options,
/// the decision cache and the request limits.
fn webhook_state(
    engine: &crate::config::Resolved,
    settings: &ServerSettings,
    store: Arc<PolicyStore>,
    metrics: &Metrics,
    cluster: Option<&Arc<crate::cluster::ClusterSource>>,
    services: Services,
) -> AppState {
    let Services {
        authn,
        workload,
        sync,
    } = services;
    AppState::new(Shared {
        store,
        options: engine.options.clone(),
        metrics: metrics.clone(),
        cache: decision_cache(settings),
        mode: settings.mode,
        max_body_bytes: settings.max_body_bytes,
        read_timeout: settings.read_timeout,
        allowed_client_names: settings.allowed_client_names.clone(),
        cluster: cluster.cloned(),
        claim_watch: authorize::ClaimWatch::default(),
        authn,
        workload,
        sync,
    })
}

/// Whether the policy serving is what the files say: no rejected reload, no change held back.
fn serving_files(store: &PolicyStore) -> Result<(), String> {
    if let Some(failure) = store.failure() {
        return Err(format!("the last policy reload failed: {failure}"));
    }
    let pending = store.pending();
    if pending.is_empty() {
        Ok(())
    } else {
        Err(pending.join("; "))
    }
}

/// The sync `serve --sync-config` runs: its output must be read as policy, so it must be a
/// policy directory or below one.
fn in_process_sync(
    config: &crate::sync::SyncConfig,
    policies: &[PathBuf],
    metrics: &Metrics,
) -> anyhow::Result<crate::sync::Syncer> {
    std::fs::create_dir_all(&config.output)
        .with_context(|| format!("sync output `{}`", config.output.display()))?;
    let output = std::fs::canonicalize(&config.output)?;
    let read = policies
        .iter()
        .filter_map(|p| std::fs::canonicalize(p).ok())
        .any(|p| output.starts_with(p));
    anyhow::ensure!(
        read,
        "sync output `{}` is not below a policy directory (--policies): its files would never be read",
        config.output.display()
    );
    let syncer = crate::sync::Syncer::new(config.clone(), metrics.sync.clone(), |name| {
        std::env::var(name).ok()
    })
    .map_err(anyhow::Error::msg)?;
    Ok(syncer)
}

/// The first load, before listening, so a good policy answers from the first request.
/// Files still being written are waited for (a few settle times at most; then the watcher
/// takes over and the server starts unready).
async fn first_load(reloader: &Arc<reload::Reloader>, store: &PolicyStore, settle: Duration) {
    let waited_since = std::time::Instant::now();
    loop {
        let first = reloader.clone();
        let _ = tokio::task::spawn_blocking(move || first.reload("startup", true)).await;
        match reloader.retry_at() {
            Some(at) if !store.is_ready() && waited_since.elapsed() < settle * 5 => {
                tokio::time::sleep_until(at.into()).await;
            }
            _ => break,
        }
    }
}

/// The decision cache the settings ask for; none when either bound is zero.
fn decision_cache(settings: &ServerSettings) -> Option<DecisionCache> {
    (settings.decision_cache_size > 0 && settings.decision_cache_max_bytes > 0).then(|| {
        DecisionCache::new(
            settings.decision_cache_size,
            settings.decision_cache_max_bytes,
            settings.decision_cache_ttl,
        )
    })
}

/// The TLS state and the watch of its files, taken before they are first read; none
/// without TLS settings.
fn load_tls(
    files: Option<&tls::TlsFiles>,
    metrics: &Metrics,
) -> anyhow::Result<Option<(Arc<tls::TlsState>, reload::FileWatch)>> {
    let Some(files) = files else {
        return Ok(None);
    };
    let watch = reload::watch_paths(&files.paths());
    let built = tls::build(files).context("cannot load TLS credentials")?;
    set_tls_metrics(metrics, &built);
    Ok(Some((
        Arc::new(tls::TlsState::new(files.clone(), &built)),
        watch,
    )))
}

/// Binds a listening socket, naming the address if it cannot.
async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))
}

/// The webhook's router: the authorization API (or, for benchmarks that ask, a handler that
/// does nothing, to measure the transport alone).
#[cfg_attr(not(feature = "bench-support"), allow(unused_variables))]
fn webhook_router(settings: &ServerSettings, state: &AppState) -> axum::Router {
    #[cfg(feature = "bench-support")]
    if settings.empty_handler {
        return authorize::empty_app();
    }
    authorize::app(state.clone())
}

/// Serves the admin endpoints until shutdown, letting open requests finish.
async fn serve_admin(
    listener: TcpListener,
    admin: axum::Router,
    mut shutdown: watch::Receiver<bool>,
) {
    let _ = axum::serve(listener, admin)
        .with_graceful_shutdown(async move {
            let _ = shutdown.changed().await;
        })
        .await;
}

/// Publishes the expiry of the serving certificate and the client CA as gauges.
fn set_tls_metrics(metrics: &Metrics, built: &tls::BuiltTls) {
    if let Some(t) = built.serving_expiry {
        metrics.tls_expiry.with_label_values(&["serving"]).set(t);
    }
    if let Some(t) = built.client_ca_expiry {
        metrics.tls_expiry.with_label_values(&["client_ca"]).set(t);
    }
}

/// How long a connection may take before its first request, and to send each request.
#[derive(Clone, Copy)]
struct Timeouts {
    handshake: Duration,
    read: Duration,
}

/// Accepts webhook connections until shutdown: each admitted one is served on a task of its
/// own; failures to accept pause the loop (growing) instead of spinning.
async fn accept_loop(
    listener: TcpListener,
    accepting: listener::AcceptLoopGuard,
    tls: Option<Arc<tls::TlsState>>,
    router: axum::Router,
    timeouts: Timeouts,
    metrics: Metrics,
    mut shutdown: watch::Receiver<bool>,
) {
    let webhook = accepting.listener();
    let mut backoff = None;
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => {
                    backoff = None;
                    a
                }
                Err(e) if listener::is_connection_error(&e) => continue,
                Err(e) => {
                    // Out of file descriptors, typically: pause (growing) instead of spinning.
                    webhook.accept_failed(&e);
                    let pause = listener::accept_backoff(backoff);
                    backoff = Some(pause);
                    tracing::warn!(error = %e, pause_ms = pause.as_millis() as u64, "accept failed");
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => {}
                        _ = shutdown.changed() => return,
                    }
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        // At the cap with every connection busy: closed at once rather than left to queue.
        let Some(slot) = webhook.admit() else {
            tracing::debug!(%peer, "connection refused: connection limit reached");
            continue;
        };
        // Without TCP_NODELAY a request/response round trip waits on Nagle + delayed ACK.
        let _ = stream.set_nodelay(true);
        let serving = Serving {
            tls: tls.clone(),
            router: router.clone(),
            timeouts,
            metrics: metrics.clone(),
            shutdown: shutdown.clone(),
        };
        tokio::spawn(serving.accepted(stream, peer, slot));
    }
}

/// What each accepted connection is served with.
struct Serving {
    tls: Option<Arc<tls::TlsState>>,
    router: axum::Router,
    timeouts: Timeouts,
    metrics: Metrics,
    shutdown: watch::Receiver<bool>,
}

impl Serving {
    /// Serves one accepted connection: over TLS after its handshake when TLS is on, plain
    /// otherwise.
    async fn accepted(self, stream: tokio::net::TcpStream, peer: SocketAddr, slot: listener::Slot) {
        let Serving {
            tls,
            router,
            timeouts,
            metrics,
            shutdown,
        } = self;
        let Some(tls) = tls else {
            let identity = PeerIdentity::default();
            serve_connection(stream, identity, slot, router, timeouts.read, shutdown).await;
            return;
        };
        let acceptor = tokio_rustls::TlsAcceptor::from(tls.current());
        let handshake = tokio::time::timeout(timeouts.handshake, acceptor.accept(stream));
        let stream = tokio::select! {
            done = handshake => match done {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    metrics.tls_handshake_timeouts.inc();
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            },
            _ = slot.evicted() => {
                tracing::debug!(%peer, "closed in TLS handshake to make room");
                return;
            }
        };
        let identity = tls_identity(&stream);
        serve_connection(stream, identity, slot, router, timeouts.read, shutdown).await;
    }
}

/// The client's identity from its certificate: the common name, or why it has none usable.
fn tls_identity<S>(stream: &tokio_rustls::server::TlsStream<S>) -> PeerIdentity {
    let name = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map_or(Ok(None), tls::common_name);
    PeerIdentity {
        common_name: name.clone().ok().flatten(),
        name_error: name.err(),
        tls: true,
    }
}

async fn serve_connection<S>(
    stream: S,
    identity: PeerIdentity,
    slot: listener::Slot,
    router: axum::Router,
    read_timeout: Duration,
    mut shutdown: watch::Receiver<bool>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    use tower::ServiceExt;
    let identity = Arc::new(identity);
    let slot = Arc::new(slot);
    let (on_request, on_response) = (slot.clone(), slot.clone());
    // Busy from a request's headers to its response; idle in between (what eviction may close).
    let service = router
        .map_request(
            move |mut req: axum::extract::Request<hyper::body::Incoming>| {
                on_request.busy();
                req.extensions_mut().insert(identity.clone());
                req
            },
        )
        .map_response(move |response| {
            on_response.idle();
            response
        });
    let service = hyper_util::service::TowerToHyperService::new(service);
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(read_timeout)
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = slot.evicted() => {
            // Idle when picked: closes now, or after a response still being written.
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(read_timeout, conn).await;
        }
        _ = shutdown.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
        }
    }
}

/// Turns transparent huge pages off for this process. The allocator asks for huge pages, and
/// the kernel zeroes a 2 MiB page on first touch: when a reload had replaced a generation, the
/// request that next took fresh memory waited for that (with a reload every second, p99 3.3–4.6
/// ms against 1.6–2.2 ms without huge pages). Failing is harmless.
fn disable_transparent_huge_pages() {
    if let Err(error) = crate::sys::disable_transparent_huge_pages() {
        tracing::debug!(%error, "cannot turn transparent huge pages off");
    }
}

/// Raises the soft limit on open files to the hard limit (as Go programs do at start), and
/// warns when the connection cap does not fit under it: the listener would then run out of
/// descriptors before the cap takes effect.
fn raise_open_file_limit(max_connections: usize) {
    let Some(soft) = crate::sys::raise_open_file_limit() else {
        return;
    };
    // Room for policy files, watches, the admin listener and its clients.
    let needed = (max_connections as u64).saturating_add(256);
    if soft < needed {
        tracing::warn!(
            open_file_limit = soft,
            max_connections,
            "the open file limit is below --max-connections plus 256: accepts fail before the cap applies"
        );
    }
}

/// Runs `serve` until SIGTERM or Ctrl-C.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let engine = args.engine.resolve()?;
    let settings = args.settings(&engine.file.server)?;
    if args.print_kubeconfig {
        if let Some(warning) = exposure::kubeconfig_warning(&settings) {
            eprintln!("warning: {warning}");
        }
        print!("{}", kubeconfig(&settings));
        return Ok(());
    }
    crate::telemetry::init(settings.log_format);
    for warning in exposure::at_start(&settings, &engine.index) {
        tracing::warn!("{warning}");
    }
    disable_transparent_huge_pages();
    raise_open_file_limit(settings.max_connections);
    let cluster = crate::cluster::ClusterSource::connect(&engine).await?;
    let running = start(engine, settings, cluster).await?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!("shutting down");
    running.stop().await;
    Ok(())
}

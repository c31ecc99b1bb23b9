//! `scopegate sync`: keeps a policy directory current from the sources of truth — Azure
//! Resource Manager ([`arm`]) and Microsoft Graph ([`graph`]) — with an Entra token from
//! workload identity ([`credential`]). Each source publishes its files as one atomic
//! generation ([`output`]), so the server's policy watcher reloads them like any other file;
//! a source that fails keeps its last good files and says so (metrics, `/readyz`).

pub mod admin;
pub mod arm;
pub mod credential;
pub mod graph;
pub mod http;
pub mod output;

use crate::metrics::SyncMetrics;
use credential::{Credential, CredentialConfig};
use http::{Api, ApiError, Auth, RetryPolicy};
use output::{SourceDir, to_json, write_atomically};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// How often the sources are read when the config does not say.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(300);
/// The share of role or deny assignments one run may delete without --allow-large-deletions.
pub const DEFAULT_MAX_DELETION_FRACTION: f64 = 0.5;

/// The sync config file (YAML).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyncConfig {
    /// The directory the sources publish into (`<output>/arm`, `<output>/graph`); it must be
    /// one of the server's policy directories or below one.
    pub output: PathBuf,
    /// Time between runs [default: 5m].
    #[serde(default, deserialize_with = "optional_duration")]
    pub interval: Option<Duration>,
    /// A run that would delete more than this share of the role (or deny) assignments
    /// published is held [default: 0.5].
    #[serde(default = "default_fraction")]
    pub max_deletion_fraction: f64,
    /// Publish such a run anyway (as --allow-large-deletions).
    #[serde(default)]
    pub allow_large_deletions: bool,
    #[serde(default)]
    pub credential: CredentialConfig,
    pub arm: Option<arm::ArmConfig>,
    pub graph: Option<graph::GraphConfig>,
    #[serde(default)]
    pub retry: RetryPolicy,
    /// CA bundle trusted for Resource Manager, Graph and the token endpoint instead of the
    /// system's roots (a TLS-inspecting proxy; tests).
    pub ca_file: Option<PathBuf>,
}

fn default_fraction() -> f64 {
    DEFAULT_MAX_DELETION_FRACTION
}

fn optional_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    http::humantime_serde::deserialize(d).map(Some)
}

impl SyncConfig {
    /// Reads and checks a config file.
    pub fn read(path: &Path) -> Result<SyncConfig, String> {
        let name = path.display();
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("sync config `{name}`: {e}"))?;
        let config: SyncConfig =
            serde_yaml::from_str(&text).map_err(|e| format!("sync config `{name}`: {e}"))?;
        config
            .check()
            .map_err(|e| format!("sync config `{name}`: {e}"))?;
        Ok(config)
    }

    fn check(&self) -> Result<(), String> {
        if self.arm.is_none() && self.graph.is_none() {
            return Err("nothing to sync: add an `arm:` or a `graph:` section".into());
        }
        if let Some(arm) = &self.arm {
            arm.check()?;
        }
        if let Some(graph) = &self.graph {
            graph.check()?;
        }
        if !(0.0..=1.0).contains(&self.max_deletion_fraction) {
            return Err(format!(
                "maxDeletionFraction {} is not between 0 and 1",
                self.max_deletion_fraction
            ));
        }
        if self.retry.attempts == 0 {
            return Err("retry.attempts must be at least 1".into());
        }
        if self.interval.is_some_and(|i| i < Duration::from_secs(1)) {
            return Err("interval must be at least 1s".into());
        }
        Ok(())
    }

    /// The sources this config reads.
    pub fn sources(&self) -> Vec<&'static str> {
        let mut sources = Vec::new();
        if self.arm.is_some() {
            sources.push(ARM);
        }
        if self.graph.is_some() {
            sources.push(GRAPH);
        }
        sources
    }
}

pub const ARM: &str = "arm";
pub const GRAPH: &str = "graph";

/// What a source's run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// New files published.
    Published(String),
    /// The sources said what the published files say.
    Unchanged(String),
}

/// Why a source's run published nothing (its last good files stay).
#[derive(Debug, Clone, thiserror::Error)]
pub enum SyncError {
    #[error("{0}")]
    Api(#[from] ApiError),
    /// It would delete too many assignments at once.
    #[error("{0}")]
    Held(String),
    /// The files could not be written, or do not load.
    #[error("{0}")]
    Files(String),
}

impl SyncError {
    fn result(&self) -> &'static str {
        match self {
            SyncError::Held(_) => "held",
            _ => "error",
        }
    }
}

/// Each source's state, for `/readyz` and the log.
#[derive(Debug, Default)]
pub struct SyncStatus {
    sources: Mutex<BTreeMap<&'static str, SourceStatus>>,
}

#[derive(Debug, Clone, Default)]
pub struct SourceStatus {
    /// Files are published (by this process or an earlier one).
    pub has_files: bool,
    pub last_success: Option<SystemTime>,
    /// The last run's failure, cleared by a success.
    pub failure: Option<String>,
}

impl SyncStatus {
    pub fn snapshot(&self) -> BTreeMap<&'static str, SourceStatus> {
        self.sources
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn update(&self, source: &'static str, f: impl FnOnce(&mut SourceStatus)) {
        let mut sources = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        f(sources.entry(source).or_default());
    }

    /// Ready once every source has published files: before that the policy lacks them.
    pub fn readiness(&self) -> Result<(), String> {
        let waiting: Vec<String> = self
            .snapshot()
            .into_iter()
            .filter(|(_, s)| !s.has_files)
            .map(|(name, s)| match s.failure {
                Some(f) => format!("{name}: {f}"),
                None => name.to_string(),
            })
            .collect();
        if waiting.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "sync has not published yet: {}",
                waiting.join("; ")
            ))
        }
    }

    /// One line per source: when it last succeeded and why its last run failed.
    pub fn detail(&self) -> String {
        let mut text = String::new();
        for (name, s) in self.snapshot() {
            let success = s.last_success.map_or("never".to_string(), |t| {
                crate::model::Timestamp::from_system(t).to_string()
            });
            match s.failure {
                Some(f) => text.push_str(&format!(
                    "[!] sync {name}: failing, the last good files stay (last success {success}): {f}\n"
                )),
                None => text.push_str(&format!("[+] sync {name}: ok (last success {success})\n")),
            }
        }
        text
    }
}

/// The sync of one config: its client, credential and the directory held between runs.
pub struct Syncer {
    config: SyncConfig,
    api: Api,
    credential: Credential,
    metrics: SyncMetrics,
    pub status: Arc<SyncStatus>,
    directory: tokio::sync::Mutex<Option<graph::Directory>>,
    after_publish: Option<AfterPublish>,
}

/// Run after each run, before its results are recorded: `serve --sync-config` reloads its
/// policy when files were published (`true`) and says whether the policy serving holds what the
/// files say. An `Err` (the reload was rejected, or held by the server's own guard) turns each
/// source's success into an error, so readiness and the alerts never run ahead of the policy
/// that serves.
pub type AfterPublish = Arc<
    dyn Fn(bool) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send>>
        + Send
        + Sync,
>;

impl Syncer {
    /// Prepares a sync; `env` reads the environment (`AZURE_*`).
    pub fn new(
        config: SyncConfig,
        metrics: SyncMetrics,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Syncer, String> {
        let credential = Credential::from_config(&config.credential, env)?;
        let api = Api::new(
            config.ca_file.as_deref(),
            config.retry.clone(),
            metrics.clone(),
        )
        .map_err(|e| format!("{e:#}"))?;
        let status = Arc::new(SyncStatus::default());
        for source in config.sources() {
            let has_files = SourceDir::new(&config.output, source).exists();
            status.update(source, |s| s.has_files = has_files);
        }
        Ok(Syncer {
            config,
            api,
            credential,
            metrics,
            status,
            directory: tokio::sync::Mutex::new(None),
            after_publish: None,
        })
    }

    /// Sets what runs after files are published (see [`AfterPublish`]).
    pub fn after_publish(&mut self, hook: AfterPublish) {
        self.after_publish = Some(hook);
    }

    pub fn config(&self) -> &SyncConfig {
        &self.config
    }

    /// What this sync reads, where it writes and how it signs in.
    pub fn describe(&self) -> String {
        let c = &self.config;
        let mut text = format!(
            "ok: sync into {} every {}",
            c.output.display(),
            humantime::format_duration(self.interval())
        );
        if let Some(arm) = &c.arm {
            text.push_str(&format!(
                "\narm: {} at {} scope(s): {}",
                arm.endpoint,
                arm.scopes.len(),
                arm.scopes.join(", ")
            ));
        }
        if let Some(graph) = &c.graph {
            text.push_str(&format!(
                "\ngraph: {} (users, groups, memberships by delta)",
                graph.endpoint
            ));
        }
        let proof = match &self.credential.proof {
            credential::Proof::FederatedToken(f) => {
                format!("workload identity, token file {}", f.display())
            }
            credential::Proof::Secret(f) => format!("client secret from {}", f.display()),
            credential::Proof::Certificate(f) => format!("certificate from {}", f.display()),
        };
        text.push_str(&format!(
            "\ncredential: client {} in tenant {} ({proof}), token endpoint {}",
            self.credential.client_id, self.credential.tenant_id, self.credential.token_url
        ));
        text
    }

    pub fn interval(&self) -> Duration {
        self.config.interval.unwrap_or(DEFAULT_INTERVAL)
    }

    /// Runs every source once, at the same time; each result is recorded.
    pub async fn run_once(&self) -> Vec<(&'static str, Result<Outcome, SyncError>)> {
        let arm = async {
            match &self.config.arm {
                Some(config) => Some((ARM, self.sync_arm(config).await)),
                None => None,
            }
        };
        let graph = async {
            match &self.config.graph {
                Some(config) => Some((GRAPH, self.sync_graph(config).await)),
                None => None,
            }
        };
        let (arm, graph) = tokio::join!(arm, graph);
        let mut results: Vec<_> = arm.into_iter().chain(graph).collect();
        let published = results
            .iter()
            .any(|(_, r)| matches!(r, Ok(Outcome::Published(_))));
        if let Some(hook) = &self.after_publish
            && let Err(why) = hook(published).await
        {
            for (_, result) in results.iter_mut() {
                if result.is_ok() {
                    *result = Err(SyncError::Files(format!(
                        "the files are written, but the server does not serve them: {why}"
                    )));
                }
            }
        }
        for (source, result) in &results {
            self.record(source, result);
        }
        results
    }

    fn record(&self, source: &'static str, result: &Result<Outcome, SyncError>) {
        match result {
            Ok(outcome) => {
                self.metrics
                    .runs
                    .with_label_values(&[source, "success"])
                    .inc();
                let now = SystemTime::now();
                let seconds = crate::model::Timestamp::from_system(now).unix_seconds() as i64;
                self.metrics
                    .last_success
                    .with_label_values(&[source])
                    .set(seconds);
                self.status.update(source, |s| {
                    s.has_files = true;
                    s.last_success = Some(now);
                    s.failure = None;
                });
                match outcome {
                    Outcome::Published(what) => tracing::info!(source, "sync published {what}"),
                    Outcome::Unchanged(what) => tracing::debug!(source, "sync unchanged: {what}"),
                }
            }
            Err(e) => {
                self.metrics
                    .runs
                    .with_label_values(&[source, e.result()])
                    .inc();
                let message = e.to_string();
                tracing::error!(source, "sync failed, the last good files stay: {message}");
                self.status.update(source, |s| s.failure = Some(message));
            }
        }
    }

    async fn sync_arm(&self, config: &arm::ArmConfig) -> Result<Outcome, SyncError> {
        let scope = config.token_scope();
        let auth = Auth {
            bearer: &self.credential,
            scope: &scope,
        };
        let objects = arm::fetch(&self.api, auth, config).await?;
        let dir = SourceDir::new(&self.config.output, ARM);
        if !self.config.allow_large_deletions {
            for (file, objects, what) in [
                (arm::FILES[1], &objects.role_assignments, "role assignments"),
                (arm::FILES[2], &objects.deny_assignments, "deny assignments"),
            ] {
                self.guard_deletions(&dir, file, objects, what)?;
            }
        }
        let files: Vec<(String, Vec<u8>)> = objects
            .files()
            .iter()
            .map(|(name, values)| (name.to_string(), to_json(values)))
            .collect();
        for (name, values) in objects.files() {
            let kind = name.trim_end_matches(".json");
            self.metrics
                .objects
                .with_label_values(&[ARM, kind])
                .set(values.len() as i64);
        }
        let summary = format!(
            "{} role definitions, {} role assignments, {} deny assignments, {} PIM instances, {} management group entities",
            objects.role_definitions.len(),
            objects.role_assignments.len(),
            objects.deny_assignments.len(),
            objects.assignment_instances.len() + objects.eligibility_instances.len(),
            objects.management_groups.len()
        );
        publish(dir, files, summary).await
    }

    /// Refuses a run that would delete more than the configured share of the published
    /// objects of one kind (an empty answer from a scope the identity lost access to).
    fn guard_deletions(
        &self,
        dir: &SourceDir,
        file: &str,
        objects: &[serde_json::Value],
        what: &str,
    ) -> Result<(), SyncError> {
        let Some(before) = dir.read(file).and_then(|b| arm::ids_in(&b)) else {
            return Ok(());
        };
        let after: std::collections::HashSet<String> = objects
            .iter()
            .filter_map(|v| v.get("id")?.as_str())
            .map(str::to_ascii_lowercase)
            .collect();
        self.guard(before.difference(&after).count(), before.len(), what)
    }

    /// Holds a run that deletes more than the configured share of `published` objects.
    fn guard(&self, deleted: usize, published: usize, what: &str) -> Result<(), SyncError> {
        let fraction = self.config.max_deletion_fraction;
        if deleted > 0 && deleted as f64 > fraction * published as f64 {
            return Err(SyncError::Held(format!(
                "held: this run would delete {deleted} of the {published} {what} published ({:.0} % > \
                 maxDeletionFraction {:.0} %), as when a scope answers empty after a change of \
                 access; nothing was written. Check the scopes and the identity's roles, then \
                 run with --allow-large-deletions (or allowLargeDeletions: true) if the \
                 deletion is meant",
                100.0 * deleted as f64 / published as f64,
                100.0 * fraction
            )));
        }
        Ok(())
    }

    async fn sync_graph(&self, config: &graph::GraphConfig) -> Result<Outcome, SyncError> {
        let scope = config.token_scope();
        let auth = Auth {
            bearer: &self.credential,
            scope: &scope,
        };
        let dir = SourceDir::new(&self.config.output, GRAPH);
        let delta_file = self.config.output.join(graph::DELTA_FILE);
        let mut held = self.directory.lock().await;
        if held.is_none() {
            // A restart continues from the published files and their delta links.
            let (published, delta_path) = (dir.current(), delta_file.clone());
            *held = tokio::task::spawn_blocking(move || {
                std::fs::read(&delta_path)
                    .ok()
                    .and_then(|delta| graph::Directory::restore(&published, &delta))
            })
            .await
            .ok()
            .flatten();
        }
        let start = held.clone().unwrap_or_default();
        let round = graph::fetch(&self.api, auth, config, &start).await?;
        let directory = round.directory;
        let files = directory.files();
        for (kind, n) in [
            ("users", directory.users.len()),
            ("groups", directory.groups.len()),
            ("memberships", directory.memberships()),
        ] {
            self.metrics
                .objects
                .with_label_values(&[GRAPH, kind])
                .set(n as i64);
        }
        let summary = format!(
            "{} users, {} groups, {} memberships ({})",
            directory.users.len(),
            directory.groups.len(),
            directory.memberships(),
            if round.full { "full read" } else { "delta" }
        );
        if let Some(before) = held.as_ref()
            && !self.config.allow_large_deletions
        {
            let deleted = before.memberships_not_in(&directory);
            self.guard(deleted, before.memberships(), "group memberships")?;
        }
        let outcome = if held
            .as_ref()
            .is_some_and(|before| before.same_objects(&directory))
        {
            Outcome::Unchanged(summary)
        } else {
            publish(dir, files, summary).await?
        };
        // The links are written after the files they lead on from: a crash in between
        // repeats changes already applied, which changes nothing.
        let links = serde_json::to_vec(&directory.delta).unwrap_or_default();
        write_atomically(&delta_file, &links).map_err(SyncError::Files)?;
        *held = Some(directory);
        Ok(outcome)
    }

    /// Runs every `interval` until `shutdown` resolves.
    pub async fn run_every(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            self.run_once().await;
            // A little jitter keeps replicas from calling at the same moment.
            let interval = self.interval();
            let wait = interval + interval.mul_f64(fastrand::f64() * 0.1);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = &mut shutdown => return,
            }
        }
    }
}

/// Publishes `files` unless they are what is published; the new generation must load as
/// policy on its own first. File and index work: on a blocking thread, off the webhook's.
async fn publish(
    dir: SourceDir,
    files: Vec<(String, Vec<u8>)>,
    summary: String,
) -> Result<Outcome, SyncError> {
    tokio::task::spawn_blocking(move || publish_now(&dir, &files, summary))
        .await
        .map_err(|e| SyncError::Files(format!("the publication stopped: {e}")))?
}

fn publish_now(
    dir: &SourceDir,
    files: &[(String, Vec<u8>)],
    summary: String,
) -> Result<Outcome, SyncError> {
    if dir.holds(files) {
        return Ok(Outcome::Unchanged(summary));
    }
    dir.publish(files, |generation| {
        crate::load_snapshot(
            &[generation.to_path_buf()],
            None,
            &crate::policy::IndexOptions::default(),
            0,
        )
        .map(|_| ())
        .map_err(|e| format!("the files read do not load as policy: {e}"))
    })
    .map_err(SyncError::Files)?;
    Ok(Outcome::Published(summary))
}

/// Flags of `scopegate sync`.
#[derive(Debug, Clone, clap::Args)]
pub struct SyncArgs {
    /// The sync config file (YAML; README "Keeping policy current: sync").
    #[arg(long, value_name = "FILE", env = "SCOPEGATE_SYNC_CONFIG")]
    pub config: PathBuf,
    /// Run every source once and exit: 0 when each published or was unchanged, 1 otherwise.
    #[arg(long)]
    pub once: bool,
    /// Check the config file and the credential it finds (environment included), print what
    /// would be synced, and exit without calling Azure.
    #[arg(long, conflicts_with = "once")]
    pub check: bool,
    /// Time between runs (`30s`, `5m`), over the config's `interval` [default: 5m].
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration, env = "SCOPEGATE_SYNC_INTERVAL")]
    pub interval: Option<Duration>,
    /// Publish a run even if it deletes more than maxDeletionFraction of the assignments.
    #[arg(long, env = "SCOPEGATE_SYNC_ALLOW_LARGE_DELETIONS")]
    pub allow_large_deletions: bool,
    /// Serve /livez, /readyz and /metrics here (plain HTTP), while looping.
    #[arg(long, value_name = "ADDR:PORT", env = "SCOPEGATE_SYNC_ADMIN_ADDRESS")]
    pub admin_address: Option<std::net::SocketAddr>,
    /// Log format.
    #[arg(
        long,
        value_enum,
        default_value = "plain",
        env = "SCOPEGATE_LOG_FORMAT"
    )]
    pub log_format: crate::telemetry::LogFormat,
}

/// `scopegate sync`: the exit code (0 all sources fine, 1 one failed or was held).
pub async fn run(args: SyncArgs) -> Result<u8, String> {
    crate::telemetry::init(args.log_format);
    let mut config = SyncConfig::read(&args.config)?;
    if args.interval.is_some() {
        config.interval = args.interval;
    }
    config.allow_large_deletions |= args.allow_large_deletions;
    let registry = prometheus::Registry::new();
    let metrics = SyncMetrics::new(&registry);
    let syncer = Arc::new(Syncer::new(config, metrics, |name| {
        std::env::var(name).ok()
    })?);
    if args.check {
        println!("{}", syncer.describe());
        return Ok(0);
    }
    if args.once {
        let results = syncer.run_once().await;
        let mut code = 0;
        for (source, result) in results {
            match result {
                Ok(Outcome::Published(what)) => println!("{source}: published {what}"),
                Ok(Outcome::Unchanged(what)) => println!("{source}: unchanged, {what}"),
                Err(e) => {
                    println!("{source}: {e}");
                    code = 1;
                }
            }
        }
        return Ok(code);
    }
    if let Some(address) = args.admin_address {
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .map_err(|e| format!("--admin-address {address}: {e}"))?;
        let app = admin::app(syncer.status.clone(), registry);
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!("sync admin listener stopped: {e}");
            }
        });
    }
    tracing::info!(
        output = %syncer.config().output.display(),
        interval_s = syncer.interval().as_secs(),
        sources = ?syncer.config().sources(),
        "sync started"
    );
    syncer.run_every(shutdown_signal()).await;
    Ok(0)
}

/// SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

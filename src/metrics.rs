//! Prometheus metrics, one registry per server. Names follow Prometheus conventions:
//! `scopegate_…_total` for counters, `_seconds` for durations.

use crate::model::{Source, Verdict};
use crate::policy::SnapshotStats;
use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// Every metric scopegate exports.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    pub decisions: IntCounterVec,
    pub decision_seconds: Histogram,
    pub http_requests: IntCounterVec,
    pub cache_hits: IntCounter,
    pub cache_misses: IntCounter,
    pub cache_entries: IntGauge,
    pub cache_bytes: IntGauge,
    pub reloads: IntCounterVec,
    pub generation: IntGauge,
    pub last_reload_success: IntGauge,
    /// 1 while the last policy reload failed (the previous policy serves), 0 after a success.
    pub last_reload_failed: IntGauge,
    /// 1 while a policy change is held back (it would remove too much at once).
    pub reload_held: IntGauge,
    pub policy_objects: IntGaugeVec,
    /// Entra objects of the directory snapshot in use by kind.
    pub directory_objects: IntGaugeVec,
    /// Warnings of the serving policy by kind (`unknown_role`, …).
    pub policy_warnings: IntGaugeVec,
    pub tls_reloads: IntCounterVec,
    pub tls_expiry: IntGaugeVec,
    pub cluster_events: IntCounterVec,
    pub cluster_objects: IntGaugeVec,
    pub connections_open: IntGauge,
    pub connections_rejected: IntCounter,
    pub connections_evicted: IntCounter,
    pub tls_handshake_timeouts: IntCounter,
    pub accept_errors: IntCounter,
    /// TokenReviews by `result` (`authenticated`, `rejected`, `error`) and `reason` (an error
    /// tag, a groups warning, or `ok`).
    pub token_reviews: IntCounterVec,
    /// CheckAccess calls by `result` (`answered`, `bad_request`, `too_large`, `unavailable`,
    /// `error`).
    pub check_access_requests: IntCounterVec,
    /// CheckAccess answers per operation by `decision` (`Allowed`, `NotAllowed`, `Denied`).
    pub check_access_decisions: IntCounterVec,
    /// Signing-key reads by `result` (`success`, `error`, `unchanged`).
    pub issuer_key_refreshes: IntCounterVec,
    /// Signing keys held for token validation.
    pub issuer_keys: IntGauge,
    /// `serve --sync-config`: the policy sync's metrics.
    pub sync: SyncMetrics,
    /// `decisions` for every (verdict, source), looked up once: finding a labelled child
    /// hashes its labels and takes a lock, twice per request otherwise.
    decided: [[IntCounter; 4]; 3],
    /// `http_requests` for code 200, the usual answer.
    http_ok: IntCounter,
}

/// Decision latency buckets: sub-microsecond to milliseconds.
const DECISION_BUCKETS: [f64; 14] = [
    0.000_000_5,
    0.000_001,
    0.000_002_5,
    0.000_005,
    0.000_01,
    0.000_025,
    0.000_05,
    0.000_1,
    0.000_25,
    0.000_5,
    0.001,
    0.002_5,
    0.01,
    0.1,
];

fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|e| unreachable_metric(name, e));
    let _ = registry.register(Box::new(c.clone()));
    c
}

fn gauge_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|e| unreachable_metric(name, e));
    let _ = registry.register(Box::new(g.clone()));
    g
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).unwrap_or_else(|e| unreachable_metric(name, e));
    let _ = registry.register(Box::new(c.clone()));
    c
}

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).unwrap_or_else(|e| unreachable_metric(name, e));
    let _ = registry.register(Box::new(g.clone()));
    g
}

/// Metric definitions are constants; an invalid one is a programming error caught by tests.
#[expect(
    clippy::panic,
    reason = "metric names and labels are compile-time constants"
)]
fn unreachable_metric(name: &str, e: prometheus::Error) -> ! {
    panic!("invalid metric definition {name}: {e}")
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Every verdict and source in declaration order, so `verdict as usize` and `source as usize`
/// index [`Metrics::decided`] (a test holds the orders equal).
const VERDICTS: [Verdict; 3] = [Verdict::Allow, Verdict::Deny, Verdict::NoOpinion];
const SOURCES: [Source; 4] = [
    Source::AzureRbac,
    Source::KubernetesRbac,
    Source::NoMatch,
    Source::Request,
];

impl Metrics {
    /// Counts one decision.
    pub fn count_decision(&self, verdict: Verdict, source: Source) {
        if let Some(counter) = self
            .decided
            .get(verdict as usize)
            .and_then(|row| row.get(source as usize))
        {
            counter.inc();
        }
    }

    /// Counts one answered HTTP request by its status code.
    pub fn count_http(&self, status: u16) {
        if status == 200 {
            self.http_ok.inc();
        } else {
            self.http_requests
                .with_label_values(&[status.to_string().as_str()])
                .inc();
        }
    }

    pub fn new() -> Self {
        let registry = Registry::new();
        // process_cpu_seconds_total, process_resident_memory_bytes, process_open_fds, … (Linux).
        #[cfg(target_os = "linux")]
        let _ = registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ));
        let decision_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "scopegate_decision_duration_seconds",
                "Time to decide one request (decode to encode).",
            )
            .buckets(DECISION_BUCKETS.to_vec()),
        )
        .unwrap_or_else(|e| unreachable_metric("scopegate_decision_duration_seconds", e));
        let _ = registry.register(Box::new(decision_seconds.clone()));
        let build = gauge_vec(
            &registry,
            "scopegate_build_info",
            "Build information.",
            &["version"],
        );
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        let decisions = counter_vec(
            &registry,
            "scopegate_decisions_total",
            "Decisions by result and deciding source.",
            &["decision", "source"],
        );
        let decided = VERDICTS
            .map(|v| SOURCES.map(|s| decisions.with_label_values(&[v.as_str(), s.as_str()])));
        let http_requests = counter_vec(
            &registry,
            "scopegate_http_requests_total",
            "HTTP requests to the webhook by status code.",
            &["code"],
        );
        let http_ok = http_requests.with_label_values(&["200"]);
        Metrics {
            decisions,
            decided,
            http_ok,
            decision_seconds,
            http_requests,
            cache_hits: counter(
                &registry,
                "scopegate_decision_cache_hits_total",
                "Decision cache hits.",
            ),
            cache_misses: counter(
                &registry,
                "scopegate_decision_cache_misses_total",
                "Decision cache misses.",
            ),
            cache_entries: gauge(
                &registry,
                "scopegate_decision_cache_entries",
                "Entries in the decision cache.",
            ),
            cache_bytes: gauge(
                &registry,
                "scopegate_decision_cache_bytes",
                "Weighed size of the decision cache in bytes.",
            ),
            reloads: counter_vec(
                &registry,
                "scopegate_policy_reloads_total",
                "Policy reloads by result and trigger.",
                &["result", "trigger"],
            ),
            generation: gauge(
                &registry,
                "scopegate_policy_generation",
                "Generation of the policy in use.",
            ),
            last_reload_failed: gauge(
                &registry,
                "scopegate_policy_last_reload_failed",
                "1 when the last policy reload was rejected (the previous policy keeps \
                 serving), 0 after a reload that published or found the served sources.",
            ),
            last_reload_success: gauge(
                &registry,
                "scopegate_policy_last_reload_success_timestamp_seconds",
                "Unix time of the last successful policy load.",
            ),
            reload_held: gauge(
                &registry,
                "scopegate_policy_change_held",
                "1 while a policy change is held back because it would remove every deny \
                 assignment or more than half of a kind of object (see --allow-large-removals).",
            ),
            policy_objects: gauge_vec(
                &registry,
                "scopegate_policy_objects",
                "Indexed policy objects by kind.",
                &["kind"],
            ),
            directory_objects: gauge_vec(
                &registry,
                "scopegate_directory_objects",
                "Objects of the directory snapshot in use by kind (users, groups, and \
                 memberships: resolved transitive group memberships).",
                &["kind"],
            ),
            policy_warnings: gauge_vec(
                &registry,
                "scopegate_policy_warnings",
                "Warnings of the policy in use by kind (unknown_role: a role not loaded that \
                 assignments name, one per role; provider_mismatch: the cluster id's provider is \
                 not the action prefix's; identical_copy: notes on objects read identically from two \
                 files; truncated_group: a directory group with exactly the 20 members Graph's \
                 $expand returns and no member file).",
                &["kind"],
            ),
            tls_reloads: counter_vec(
                &registry,
                "scopegate_tls_reloads_total",
                "TLS credential re-reads by result: `success` (new credentials in use), `unchanged` \
                 (the files hold the bytes in use), `error` (rejected; the previous ones stay).",
                &["result"],
            ),
            tls_expiry: gauge_vec(
                &registry,
                "scopegate_tls_certificate_expiry_timestamp_seconds",
                "Unix time the certificate expires.",
                &["certificate"],
            ),
            cluster_events: counter_vec(
                &registry,
                "scopegate_cluster_rbac_events_total",
                "Watch events from the live cluster RBAC source.",
                &["kind", "event"],
            ),
            cluster_objects: gauge_vec(
                &registry,
                "scopegate_cluster_rbac_objects",
                "RBAC objects held from the live cluster.",
                &["kind"],
            ),
            connections_open: gauge(
                &registry,
                "scopegate_webhook_connections_open",
                "Open connections to the webhook listener.",
            ),
            connections_rejected: counter(
                &registry,
                "scopegate_webhook_connections_rejected_total",
                "Connections closed on arrival: the cap was reached and none was idle.",
            ),
            connections_evicted: counter(
                &registry,
                "scopegate_webhook_connections_evicted_total",
                "Idle connections closed to make room for a new one.",
            ),
            tls_handshake_timeouts: counter(
                &registry,
                "scopegate_tls_handshake_timeouts_total",
                "Connections closed for not completing the TLS handshake in time.",
            ),
            accept_errors: counter(
                &registry,
                "scopegate_webhook_accept_errors_total",
                "Failed accepts on the webhook listener (such as out of file descriptors).",
            ),
            token_reviews: counter_vec(
                &registry,
                "scopegate_token_reviews_total",
                "TokenReviews answered, by `result` (`authenticated`, `rejected`, `error`) and \
                 `reason` (the error tag, a groups warning such as `no_directory`, or `ok`).",
                &["result", "reason"],
            ),
            check_access_requests: counter_vec(
                &registry,
                "scopegate_check_access_requests_total",
                "CheckAccess calls, by `result` (`answered`, `bad_request`, `too_large`, `unavailable`, \
                 `error`).",
                &["result"],
            ),
            check_access_decisions: counter_vec(
                &registry,
                "scopegate_check_access_decisions_total",
                "CheckAccess answers, one per operation asked about, by `decision` \
                 (`Allowed`, `NotAllowed`, `Denied`).",
                &["decision"],
            ),
            issuer_key_refreshes: counter_vec(
                &registry,
                "scopegate_issuer_key_refreshes_total",
                "Reads of the issuers' signing keys (discovery and JWKS, or the JWKS file), by \
                 `result`: `success`, `unchanged`, `error` (the keys held stay in use).",
                &["result"],
            ),
            issuer_keys: gauge(
                &registry,
                "scopegate_issuer_signing_keys",
                "Signing keys held for token validation.",
            ),
            sync: SyncMetrics::new(&registry),
            registry,
        }
    }

    /// Records the generation and sizes of the snapshot serving now.
    pub fn set_policy(&self, generation: u64, stats: SnapshotStats) {
        self.generation.set(generation as i64);
        for (kind, n) in [
            ("role_definitions", stats.role_definitions),
            ("role_assignments", stats.role_assignments),
            ("deny_assignments", stats.deny_assignments),
            ("principals", stats.principals),
            ("scopes", stats.scopes),
            ("kubernetes_roles", stats.k8s_roles),
            ("kubernetes_bindings", stats.k8s_bindings),
        ] {
            self.policy_objects.with_label_values(&[kind]).set(n as i64);
        }
        for (kind, n) in [
            ("users", stats.directory_users),
            ("groups", stats.directory_groups),
            ("memberships", stats.directory_memberships),
        ] {
            self.directory_objects
                .with_label_values(&[kind])
                .set(n as i64);
        }
    }

    /// Records the warnings and notes of the snapshot serving now, every kind (0 when it has
    /// none).
    pub fn set_policy_warnings(&self, warnings: &[crate::policy::Diagnostic]) {
        for kind in crate::policy::DiagnosticKind::ALL {
            let n = warnings
                .iter()
                .filter(|w| !w.is_error() && w.kind == kind)
                .count();
            self.policy_warnings
                .with_label_values(&[kind.as_str()])
                .set(n as i64);
        }
    }

    /// Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

/// The metrics of `scopegate sync`, in the server's registry (`serve --sync-config`) or in
/// the sync process's own.
#[derive(Clone)]
pub struct SyncMetrics {
    /// Runs by `source` (`arm`, `graph`) and `result` (`success`, `error`, `held`).
    pub runs: IntCounterVec,
    /// Unix time of each source's last successful run.
    pub last_success: IntGaugeVec,
    /// Objects in the files each source last wrote, by `kind`.
    pub objects: IntGaugeVec,
    requests: IntCounterVec,
    retries: IntCounterVec,
}

impl SyncMetrics {
    pub fn new(registry: &Registry) -> SyncMetrics {
        SyncMetrics {
            runs: counter_vec(
                registry,
                "scopegate_sync_runs_total",
                "Policy sync runs, by `source` (`arm`, `graph`) and `result`: `success` (files \
                 written or unchanged), `error` (the last good files stay), `held` (it would \
                 delete too many assignments at once; --allow-large-deletions).",
                &["source", "result"],
            ),
            last_success: gauge_vec(
                registry,
                "scopegate_sync_last_success_timestamp_seconds",
                "Unix time of each sync source's last successful run.",
                &["source"],
            ),
            objects: gauge_vec(
                registry,
                "scopegate_sync_objects",
                "Objects in the files each sync source last wrote, by `kind`.",
                &["source", "kind"],
            ),
            requests: counter_vec(
                registry,
                "scopegate_sync_requests_total",
                "HTTPS calls of the sync, by `api` (`arm`, `graph`, `token`) and `code` (the \
                 HTTP status, or `error` when no answer came).",
                &["api", "code"],
            ),
            retries: counter_vec(
                registry,
                "scopegate_sync_retries_total",
                "Sync calls repeated or slowed, by `api` and `reason` (`throttled`: 429, \
                 `server_error`: 5xx, `network`, `unauthorized`: a new token after a 401, \
                 `rate_limit`: few calls remained).",
                &["api", "reason"],
            ),
        }
    }

    pub fn request(&self, api: &str, code: &str) {
        self.requests.with_label_values(&[api, code]).inc();
    }

    pub fn retry(&self, api: &str, reason: &str) {
        self.retries.with_label_values(&[api, reason]).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_os = "linux")]
    fn process_metrics_are_exported() {
        let text = Metrics::new().render();
        for name in [
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_open_fds",
            "process_max_fds",
            "process_start_time_seconds",
        ] {
            let value = text
                .lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
                .and_then(|v| v.parse::<f64>().ok());
            assert!(value.is_some(), "no `{name}` in:\n{text}");
        }
        assert!(text.contains("\nscopegate_policy_last_reload_failed 0\n"));
    }

    #[test]
    fn the_label_tables_follow_declaration_order() {
        for (i, v) in VERDICTS.iter().enumerate() {
            assert_eq!(*v as usize, i, "{v:?}");
        }
        for (i, s) in SOURCES.iter().enumerate() {
            assert_eq!(*s as usize, i, "{s:?}");
        }
    }

    #[test]
    fn counts_land_in_their_labelled_series() {
        let m = Metrics::new();
        m.count_decision(Verdict::Deny, Source::KubernetesRbac);
        m.count_decision(Verdict::Deny, Source::KubernetesRbac);
        m.count_decision(Verdict::NoOpinion, Source::Request);
        m.count_http(200);
        m.count_http(413);
        let text = m.render();
        for line in [
            r#"scopegate_decisions_total{decision="deny",source="kubernetes_rbac"} 2"#,
            r#"scopegate_decisions_total{decision="no_opinion",source="request"} 1"#,
            r#"scopegate_decisions_total{decision="allow",source="azure_rbac"} 0"#,
            r#"scopegate_http_requests_total{code="200"} 1"#,
            r#"scopegate_http_requests_total{code="413"} 1"#,
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
    }
}

//! The admin listener: `/livez`, `/readyz` (ready once the first policy load succeeded and
//! the policy serving holds every live source's first full listing) and `/metrics`
//! (Prometheus text format).
//!
//! A rejected reload fails readiness when the live RBAC source is on: every later change of
//! the cluster's objects goes through the same rejected load, so the policy serving falls
//! behind the cluster (a binding deleted there would keep granting) until the cause is fixed.
//! Without a live source, a rejected file edit leaves `/readyz` ok: the last good policy is
//! exactly what the files said before the edit, and failing every replica's readiness for
//! an operator's typo would take the webhook out of service; `?verbose` names the failure.

use super::authorize::AppState;
use super::listener::Listener;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Extension, Router};
use std::sync::Arc;

pub fn app(state: AppState, webhook: Arc<Listener>) -> Router {
    Router::new()
        .route("/livez", get(livez))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .layer(Extension(webhook))
        .with_state(state)
}

/// Alive while the webhook listener's accept loop runs.
async fn livez(Extension(webhook): Extension<Arc<Listener>>) -> impl IntoResponse {
    match webhook.liveness() {
        Ok(()) => (StatusCode::OK, "ok\n".to_string()),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not alive: {reason}\n"),
        ),
    }
}

/// Ready once the webhook listener accepts, the first policy load succeeded and every live
/// source has synced. `?verbose` adds what keeps the files' policy from serving (a change held
/// back, files still being written).
async fn readyz(
    State(state): State<AppState>,
    Extension(webhook): Extension<Arc<Listener>>,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> impl IntoResponse {
    let verbose = query.contains_key("verbose");
    let (status, mut text) = ready(&state, &webhook, verbose);
    if verbose
        && status == StatusCode::OK
        && let Some(failure) = state.0.store.failure()
    {
        text.push_str(&format!(
            "[!] last reload failed; the last good policy keeps serving: {failure}\n"
        ));
    }
    if verbose {
        for reason in state.0.store.pending() {
            text.push_str(&format!("[!] {reason}\n"));
        }
        if let Some(sync) = &state.0.sync {
            text.push_str(&sync.detail());
        }
    }
    (status, text)
}

fn ready(state: &AppState, webhook: &Listener, verbose: bool) -> (StatusCode, String) {
    let s = &state.0;
    if let Err(reason) = webhook.readiness() {
        let check = if verbose {
            "[-]webhook-listener failed: "
        } else {
            "not ready: "
        };
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{check}{reason}\n"),
        );
    }
    let failure = s.store.failure();
    if !s.store.is_ready() {
        let why = failure.map_or(String::new(), |f| format!(": last reload failed: {f}"));
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: no successful policy load yet{why}\n"),
        );
    }
    let Some(cluster) = &s.cluster else {
        return ready_at(s);
    };
    if let Some(failure) = failure {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "not ready: last reload failed, the cluster's RBAC changes are not applied: {failure}\n"
            ),
        );
    }
    if !cluster.is_served() {
        let why = if cluster.is_ready() {
            "cluster RBAC listed, not serving yet"
        } else {
            "cluster RBAC not synced yet"
        };
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        );
    }
    ready_at(s)
}

fn ready_at(s: &super::authorize::Shared) -> (StatusCode, String) {
    // The synced files are part of the policy: without them Azure's assignments are missing.
    if let Some(Err(why)) = s.sync.as_ref().map(|sync| sync.readiness()) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        );
    }
    (
        StatusCode::OK,
        format!("ok: policy generation {}\n", s.store.load().generation),
    )
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    // The policy gauges describe the snapshot serving at scrape time, read from the store:
    // set by the reloader after publishing, a scrape in between would describe the one before.
    let serving = state.0.store.load();
    state
        .0
        .metrics
        .set_policy(serving.generation, serving.stats());
    state.0.metrics.set_policy_warnings(&serving.warnings);
    if let Some(cache) = &state.0.cache {
        state.0.metrics.cache_entries.set(cache.entries() as i64);
        state.0.metrics.cache_bytes.set(cache.bytes() as i64);
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.0.metrics.render(),
    )
}

//! `POST /authorize`: a thin handler. Read the body (bounded in size and time), decode,
//! decide on one snapshot, log, count, answer.

use crate::audit::{self, AuditEvent};
use crate::cache::{DecisionCache, DecisionKey};
use crate::engine::{self, EngineOptions};
use crate::metrics::Metrics;
use crate::model::{Decision, Source, Verdict};
use crate::policy::store::PolicyStore;
use crate::sar;
use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Router};
use http_body_util::{BodyExt, Limited};
use serde::Deserialize;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `enforce` answers the decision; `shadow` logs it and answers no opinion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Enforce,
    Shadow,
}

/// Who is on the other end of the connection.
#[derive(Debug, Clone, Default)]
pub struct PeerIdentity {
    /// Common name of the verified client certificate, if any.
    pub common_name: Option<String>,
    pub tls: bool,
}

/// Everything a request handler reads.
pub struct Shared {
    pub store: Arc<PolicyStore>,
    pub options: EngineOptions,
    pub metrics: Metrics,
    pub cache: Option<DecisionCache>,
    pub mode: Mode,
    pub max_body_bytes: usize,
    pub read_timeout: Duration,
    pub allowed_client_names: Vec<String>,
    pub cluster: Option<Arc<crate::cluster::ClusterSource>>,
}

/// Cheap-to-clone handle on [`Shared`].
#[derive(Clone)]
pub struct AppState(pub Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        AppState(Arc::new(shared))
    }
}

/// The webhook router (no socket needed: tests can drive it with `oneshot`).
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/authorize", post(authorize))
        .fallback(|| async {
            error(
                StatusCode::NOT_FOUND,
                "NotFound",
                "the webhook is served at POST /authorize",
            )
        })
        .with_state(state)
}

/// The benchmark ceiling: same stack, no decoding, no decision.
pub fn empty_app() -> Router {
    const BODY: &str = r#"{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","metadata":{},"status":{"allowed":false}}"#;
    Router::new().route(
        "/authorize",
        post(|body: Body| async move {
            let _ = body.collect().await;
            ([(header::CONTENT_TYPE, "application/json")], BODY)
        }),
    )
}

/// A Kubernetes `Status` error body.
fn error(code: StatusCode, reason: &str, message: &str) -> Response {
    let body = serde_json::json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code.as_u16(),
    });
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn authorize(
    State(state): State<AppState>,
    peer: Option<Extension<Arc<PeerIdentity>>>,
    body: Body,
) -> Response {
    let response = handle(&state.0, peer.map(|Extension(p)| p), body).await;
    state.0.metrics.count_http(response.status().as_u16());
    response
}

async fn handle(s: &Shared, peer: Option<Arc<PeerIdentity>>, body: Body) -> Response {
    if !s.allowed_client_names.is_empty() {
        let name = peer.as_ref().and_then(|p| p.common_name.as_deref());
        if !name.is_some_and(|n| s.allowed_client_names.iter().any(|a| a == n)) {
            return error(
                StatusCode::FORBIDDEN,
                "Forbidden",
                &format!(
                    "client certificate name `{}` is not allowed to call this webhook",
                    name.unwrap_or("")
                ),
            );
        }
    }
    let bytes = match tokio::time::timeout(
        s.read_timeout,
        Limited::new(body, s.max_body_bytes).collect(),
    )
    .await
    {
        Err(_) => {
            return error(
                StatusCode::REQUEST_TIMEOUT,
                "Timeout",
                "request body not received in time",
            );
        }
        Ok(Err(e))
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLarge",
                &format!("request body is larger than {} bytes", s.max_body_bytes),
            );
        }
        Ok(Err(e)) => {
            return error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                &format!("cannot read request body: {e}"),
            );
        }
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    let started = Instant::now();
    let review = match sar::decode(&bytes) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, "BadRequest", &e.to_string()),
    };
    let snapshot = s.store.load();
    let (decision, cached) =
        if !s.store.is_ready() || !s.cluster.as_ref().is_none_or(|c| c.is_ready()) {
            let d = Decision::new(
                Verdict::NoOpinion,
                Source::Request,
                "scopegate has no policy loaded yet",
            )
            .with_error("no successful policy load yet");
            (Arc::new(d), false)
        } else {
            decide(s, &snapshot, &review.request)
        };
    let (answer, answered) = match s.mode {
        Mode::Enforce => (decision.clone(), None),
        Mode::Shadow => (
            Arc::new(Decision::new(
                Verdict::NoOpinion,
                decision.source,
                format!(
                    "shadow mode: scopegate would {}: {}",
                    decision.verdict, decision.reason
                ),
            )),
            Some("no_opinion"),
        ),
    };
    let body = sar::encode_response(review.api_version, &answer);
    let elapsed = started.elapsed();
    s.metrics.decision_seconds.observe(elapsed.as_secs_f64());
    s.metrics.count_decision(decision.verdict, decision.source);
    audit::record(&AuditEvent {
        request: &review.request,
        decision: &decision,
        generation: snapshot.generation,
        cached,
        latency_us: elapsed.as_micros() as u64,
        answered,
    });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

fn decide(
    s: &Shared,
    snapshot: &Arc<crate::policy::Snapshot>,
    request: &crate::model::AccessRequest,
) -> (Arc<Decision>, bool) {
    let Some(cache) = &s.cache else {
        return (
            Arc::new(engine::authorize(snapshot, &s.options, request)),
            false,
        );
    };
    let key = DecisionKey::new(snapshot.generation, request);
    if let Some(hit) = key.as_ref().and_then(|k| cache.get(k)) {
        s.metrics.cache_hits.inc();
        return (hit, true);
    }
    s.metrics.cache_misses.inc();
    // Cached decisions carry their reason rendered: a lazy one would keep the whole snapshot
    // of its generation alive for as long as the entry lives.
    let decision = Arc::new(engine::authorize(snapshot, &s.options, request).detached());
    if let Some(key) = key {
        cache.insert(key, decision.clone());
    }
    s.metrics.cache_entries.set(cache.entries() as i64);
    (decision, false)
}

//! `POST /authorize`: a thin handler. Read the body (bounded in size and time), decode,
//! decide on one snapshot, log, count, answer.

use crate::audit::{self, AuditEvent};
use crate::cache::{DecisionCache, DecisionKey};
use crate::engine::{self, EngineOptions};
use crate::metrics::Metrics;
use crate::model::excerpt::{excerpt, excerpt_of};
use crate::model::{Decision, Verdict};
use crate::policy::store::PolicyStore;
use crate::sar;
use axum::body::Body;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Router};
use http_body_util::BodyExt;
use serde::Deserialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
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
    /// Why the certificate's common name cannot be used (several of them, say).
    pub name_error: Option<super::tls::ClientNameError>,
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
    pub claim_watch: ClaimWatch,
    /// Token authentication (`POST /authenticate`), when issuers are configured.
    pub authn: Option<Arc<super::authenticate::Authn>>,
    /// Workload identity questions on the CheckAccess endpoint.
    pub workload: Arc<super::check_access::WorkloadIdentity>,
    /// The in-process sync's sources (`--sync-config`).
    pub sync: Option<Arc<crate::sync::SyncStatus>>,
}

/// How often [`warn_missing_claim`] looks at [`ClaimWatch`].
pub const CLAIM_WATCH_WINDOW: Duration = Duration::from_secs(600);

/// Requests from users outside `system:` in the current window, and how many carried the
/// principal claim. Users and no claim at all means kube-apiserver does not write the key
/// scopegate reads, so every user's Azure assignments are skipped.
#[derive(Debug, Default)]
pub struct ClaimWatch {
    users: AtomicU64,
    with_claim: AtomicU64,
}

impl ClaimWatch {
    /// Counts one review.
    pub fn observe(&self, claim: &str, request: &crate::model::AccessRequest) {
        if request.is_system_user() {
            return;
        }
        self.users.fetch_add(1, Ordering::Relaxed);
        if request.extra.contains_key(claim) {
            self.with_claim.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Ends the window: the number of user requests when none carried the claim.
    pub fn end_window(&self) -> Option<u64> {
        let users = self.users.swap(0, Ordering::Relaxed);
        let with_claim = self.with_claim.swap(0, Ordering::Relaxed);
        (users > 0 && with_claim == 0).then_some(users)
    }
}

/// Logs a warning after every `window` in which users sent requests and none carried the
/// principal claim.
pub async fn warn_missing_claim(
    state: AppState,
    window: Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + window, window);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = shutdown.changed() => return,
        }
        if let Some(users) = state.0.claim_watch.end_window() {
            tracing::warn!(
                claim = %state.0.options.principal_claim,
                requests = users,
                window_seconds = window.as_secs(),
                "{users} request(s) from users outside `system:` and none carried extra[`{}`]: their Azure assignments were not consulted; check that kube-apiserver's authentication maps the object id to that key (deploy/apiserver/authentication-config.yaml) or set --principal-claim",
                state.0.options.principal_claim
            );
        }
    }
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
        .route("/authenticate", post(super::authenticate::authenticate))
        // `{resourceId}/providers/Microsoft.Authorization/checkaccess` has a resource id of any
        // length before a fixed tail, which no route pattern expresses.
        .fallback(super::check_access::check_access_or_not_found)
        .with_state(state)
}

/// The benchmark ceiling: same stack, no decoding, no decision.
#[cfg(feature = "bench-support")]
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
pub(super) fn error(code: StatusCode, reason: &str, message: &str) -> Response {
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

/// Answers one SubjectAccessReview: the caller's certificate name, the body, the review,
/// then the decision (from the cache or the engine).
async fn handle(s: &Shared, peer: Option<Arc<PeerIdentity>>, body: Body) -> Response {
    let bytes = match admitted_body(s, peer, body).await {
        Ok(ReadBody::Complete(bytes)) => bytes,
        // Denied when what was read shows a SubjectAccessReview: an error status would hand
        // the request to the next authorizer without the deny assignments.
        Ok(ReadBody::TooLarge(prefix)) => {
            return match sar::decode_truncated(&prefix, s.max_body_bytes) {
                Some(review) => unevaluable(s, &review, Instant::now()),
                None => too_large(s),
            };
        }
        Err(answered) => return answered,
    };
    let started = Instant::now();
    let mut review = match sar::decode(&bytes) {
        Ok(r) => {
            s.claim_watch
                .observe(&s.options.principal_claim, &r.request);
            r
        }
        Err(sar::DecodeError::Unevaluable(review)) => return unevaluable(s, &review, started),
        Err(e) => {
            // serde quotes the offending value; the answer repeats a bounded part of it.
            let message = excerpt_of(&e.to_string(), 1024).to_string();
            return error(StatusCode::BAD_REQUEST, "BadRequest", &message);
        }
    };
    if let Some(unavailable) = not_serving(s) {
        return unavailable;
    }
    let snapshot = s.store.load();
    // The engine has no clock: each review is decided at the time it arrives.
    review.request.now = Some(crate::model::Timestamp::from_system(
        std::time::SystemTime::now(),
    ));
    let (decision, cached) = decide(s, &snapshot, &review.request);
    answer(
        s,
        review.api_version,
        &review.request,
        decision,
        (snapshot.generation, cached),
        started,
    )
}

/// The body of a request from an allowed caller (client certificate name), read within the
/// time limit and cut at the size limit; the answer to send instead otherwise. Every webhook
/// endpoint starts here, and decides itself what a body too large is answered with.
pub(super) async fn admitted_body(
    s: &Shared,
    peer: Option<Arc<PeerIdentity>>,
    body: Body,
) -> Result<ReadBody, Response> {
    if !s.allowed_client_names.is_empty()
        && let Some(refused) = client_refusal(&s.allowed_client_names, peer.as_deref())
    {
        return Err(refused);
    }
    receive_body(s, body).await
}

/// The refusal of a caller whose client certificate name is not among `allowed` (or could
/// not be read): only the named kube-apiserver may ask.
fn client_refusal(allowed: &[String], peer: Option<&PeerIdentity>) -> Option<Response> {
    if let Some(problem) = peer.and_then(|p| p.name_error.as_ref()) {
        return Some(error(
            StatusCode::FORBIDDEN,
            "Forbidden",
            &problem.to_string(),
        ));
    }
    let name = peer.and_then(|p| p.common_name.as_deref());
    if !name.is_some_and(|n| allowed.iter().any(|a| a == n)) {
        return Some(error(
            StatusCode::FORBIDDEN,
            "Forbidden",
            &format!(
                "client certificate name `{}` is not allowed to call this webhook",
                excerpt(name.unwrap_or(""))
            ),
        ));
    }
    None
}

/// Reads the request body within the read timeout, keeping at most the size limit; the error
/// answer otherwise.
async fn receive_body(s: &Shared, body: Body) -> Result<ReadBody, Response> {
    match tokio::time::timeout(s.read_timeout, read_body(body, s.max_body_bytes)).await {
        Err(_) => Err(error(
            StatusCode::REQUEST_TIMEOUT,
            "Timeout",
            "request body not received in time",
        )),
        Ok(Err(e)) => Err(error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            &format!("cannot read request body: {e}"),
        )),
        Ok(Ok(read)) => Ok(read),
    }
}

/// The Kubernetes `Status` answer to a body larger than the limit.
pub(super) fn too_large(s: &Shared) -> Response {
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "RequestEntityTooLarge",
        &too_large_message(s),
    )
}

/// Why a body larger than the limit is refused.
pub(super) fn too_large_message(s: &Shared) -> String {
    format!("request body is larger than {} bytes", s.max_body_bytes)
}

/// The error answer while there is no whole policy to decide with. A "no opinion" would
/// send the request on to the next authorizer past every deny assignment, whatever failure
/// policy the operator chose; an error status lets kube-apiserver's failure policy decide.
#[inline]
fn not_serving(s: &Shared) -> Option<Response> {
    let message = unavailable(s)?;
    Some(error(
        StatusCode::SERVICE_UNAVAILABLE,
        "ServiceUnavailable",
        message,
    ))
}

/// Why there is no whole policy to decide with yet, if there is none.
#[inline]
pub(super) fn unavailable(s: &Shared) -> Option<&'static str> {
    if s.store.is_ready() && s.cluster.as_ref().is_none_or(|c| c.is_served()) {
        return None;
    }
    Some(if s.store.is_ready() {
        "scopegate is not yet serving the cluster's RBAC objects"
    } else {
        "scopegate has no policy loaded yet"
    })
}

/// A request body read up to the limit.
pub(super) enum ReadBody {
    Complete(Bytes),
    /// The body is larger than the limit: its first `limit` bytes.
    TooLarge(Vec<u8>),
}

/// Reads the body, keeping at most `limit` bytes. A body in one piece is kept without a copy.
async fn read_body(mut body: Body, limit: usize) -> Result<ReadBody, axum::Error> {
    // The first piece as it came; from the second on, every piece joined in one buffer.
    let mut first: Option<Bytes> = None;
    let mut joined: Vec<u8> = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        let held = first.as_ref().map_or(joined.len(), Bytes::len);
        if held + data.len() > limit {
            let mut prefix = match first.take() {
                Some(head) => head.to_vec(),
                None => joined,
            };
            prefix.extend_from_slice(data.get(..limit.saturating_sub(held)).unwrap_or_default());
            return Ok(ReadBody::TooLarge(prefix));
        }
        match first.take() {
            None if joined.is_empty() => first = Some(data),
            None => joined.extend_from_slice(&data),
            Some(head) => {
                joined.reserve(head.len() + data.len());
                joined.extend_from_slice(&head);
                joined.extend_from_slice(&data);
            }
        }
    }
    Ok(ReadBody::Complete(
        first.unwrap_or_else(|| Bytes::from(joined)),
    ))
}

/// Answers a SubjectAccessReview that cannot be evaluated: denied, counted and logged as
/// any other decision.
fn unevaluable(s: &Shared, review: &sar::Unevaluable, started: Instant) -> Response {
    let generation = s.store.load().generation;
    answer(
        s,
        review.api_version,
        &review.request,
        Arc::new(review.decision()),
        (generation, false),
        started,
    )
}

/// Writes the answer to a decided review; counts and logs the decision.
fn answer(
    s: &Shared,
    api_version: sar::ApiVersion,
    request: &crate::model::AccessRequest,
    decision: Arc<Decision>,
    (generation, cached): (u64, bool),
    started: Instant,
) -> Response {
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
    let body = sar::encode_response(api_version, &answer);
    let elapsed = started.elapsed();
    s.metrics.decision_seconds.observe(elapsed.as_secs_f64());
    s.metrics.count_decision(decision.verdict, decision.source);
    audit::record(&AuditEvent {
        request,
        decision: &decision,
        generation,
        cached,
        latency_us: elapsed.as_micros() as u64,
        answered,
        principal_claim: &s.options.principal_claim,
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
    let hit = match request.now {
        Some(now) => key.as_ref().and_then(|k| cache.get_at(k, now)),
        None => key.as_ref().and_then(|k| cache.get(k)),
    };
    if let Some(hit) = hit {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A cached time-bound allow is served inside its window and never from its end on: the
    /// request at the end is decided again, on the same snapshot, without a reload.
    #[test]
    fn a_cached_time_bound_allow_ends_with_its_window() {
        use crate::engine::schedule_tests::{instance, pods_read, snapshot};
        use crate::model::Timestamp;
        // The window is around the real clock's time: the cache also evicts by that clock.
        let clock = Timestamp::from_system(std::time::SystemTime::now()).unix_millis();
        let at = |offset_ms: i64| Timestamp::from_unix_millis(clock + offset_ms);
        let (start, end) = (at(-3_600_000), at(3_600_000));
        let built = snapshot(vec![instance(
            "a1",
            "Provisioned",
            &start.to_string(),
            Some(&end.to_string()),
        )]);
        let store = Arc::new(PolicyStore::new());
        drop(store.publish(Arc::unwrap_or_clone(built), 1));
        let snapshot = store.load();
        let shared = Shared {
            store,
            options: EngineOptions::default(),
            metrics: Metrics::new(),
            cache: Some(DecisionCache::new(100, 1 << 20, Duration::from_secs(3600))),
            mode: Mode::Enforce,
            max_body_bytes: 1 << 20,
            read_timeout: Duration::from_secs(1),
            allowed_client_names: Vec::new(),
            cluster: None,
            claim_watch: ClaimWatch::default(),
            authn: None,
            workload: Arc::default(),
            sync: None,
        };
        let asked = |now: Timestamp| decide(&shared, &snapshot, &pods_read(Some(now)));
        let (first, cached) = asked(at(0));
        assert!(first.allowed() && !cached, "{first:?} cached {cached}");
        let (again, cached) = asked(Timestamp::from_unix_millis(end.unix_millis() - 1));
        assert!(
            again.allowed() && cached,
            "the same question inside the window is a hit"
        );
        let (at_end, cached) = asked(end);
        assert!(
            !at_end.allowed() && !cached,
            "a cached allow was served at the window end"
        );
    }

    /// A body arriving in the given pieces.
    fn pieces(parts: &[&'static str]) -> Body {
        let frames = parts
            .iter()
            .map(|p| Ok::<_, std::io::Error>(Bytes::from_static(p.as_bytes())));
        Body::from_stream(futures::stream::iter(frames.collect::<Vec<_>>()))
    }

    async fn read(parts: &[&'static str], limit: usize) -> (bool, String) {
        match read_body(pieces(parts), limit).await.unwrap() {
            ReadBody::Complete(b) => (true, String::from_utf8(b.to_vec()).unwrap()),
            ReadBody::TooLarge(p) => (false, String::from_utf8(p).unwrap()),
        }
    }

    #[tokio::test]
    async fn bodies_in_pieces_are_joined_and_cut_at_the_limit() {
        assert_eq!(read(&["abc"], 3).await, (true, "abc".into()));
        assert_eq!(
            read(&["ab", "", "cd", "e"], 5).await,
            (true, "abcde".into())
        );
        assert_eq!(read(&["", "ab", "cd"], 5).await, (true, "abcd".into()));
        assert_eq!(read(&["abcdef"], 4).await, (false, "abcd".into()));
        assert_eq!(read(&["ab", "cdef"], 4).await, (false, "abcd".into()));
        assert_eq!(read(&["ab", "c", "def"], 4).await, (false, "abcd".into()));
        assert_eq!(read(&[], 4).await, (true, String::new()));
    }
}

#[cfg(test)]
mod claim_watch_tests {
    use super::*;
    use crate::model::AccessRequest;

    fn review(user: &str, extra_key: Option<&str>) -> AccessRequest {
        let mut r = AccessRequest {
            user: user.into(),
            ..AccessRequest::default()
        };
        if let Some(key) = extra_key {
            r.extra.insert(
                key.into(),
                vec!["11111111-2222-4333-8444-555555555555".into()],
            );
        }
        r
    }

    #[test]
    fn a_window_of_users_without_the_claim_is_reported_once() {
        let watch = ClaimWatch::default();
        let claim = "scopegate.io/oid";
        // kube-apiserver mapping the object id to `oid` (the earlier shipped key) while
        // scopegate reads `scopegate.io/oid`.
        watch.observe(claim, &review("aad:alice@contoso.com", Some("oid")));
        watch.observe(claim, &review("aad:bob@contoso.com", None));
        watch.observe(claim, &review("system:kube-scheduler", None));
        assert_eq!(watch.end_window(), Some(2));
        assert_eq!(watch.end_window(), None, "a new window starts empty");
    }

    #[test]
    fn one_request_with_the_claim_or_only_system_users_is_no_warning() {
        let watch = ClaimWatch::default();
        let claim = "scopegate.io/oid";
        watch.observe(claim, &review("legacy-user", None));
        watch.observe(claim, &review("aad:alice@contoso.com", Some(claim)));
        assert_eq!(watch.end_window(), None);
        watch.observe(claim, &review("system:node:worker-1", None));
        watch.observe(claim, &review("SYSTEM:serviceaccount:a:b", None));
        assert_eq!(watch.end_window(), None);
    }
}

//! `POST {resourceId}/providers/Microsoft.Authorization/checkaccess`: Azure's CheckAccess on
//! the webhook listener, so a client written for ARM (Guard's included) can ask scopegate.
//! The path's case is free and `?api-version=…` is ignored. Read the body like `/authorize`
//! (caller's certificate name, size and time limits), decode, check that the path and the
//! body name the same resource (the root form `/providers/Microsoft.Authorization/checkaccess`
//! takes the body's), decide on one snapshot, count, answer the JSON array of decisions.
//! Refusals carry ARM's error body `{"error":{"code","message"}}`.

use super::authorize::{AppState, PeerIdentity, Shared, admitted_body, error, unavailable};
use crate::engine::check_access;
use crate::model::Timestamp;
use crate::model::check_access::AccessDecision;
use crate::sar::check_access::{self as wire, CheckAccessPath};
use axum::Extension;
use axum::body::Body;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// Every path no route takes: a CheckAccess path, or not found.
pub async fn check_access_or_not_found(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    peer: Option<Extension<Arc<PeerIdentity>>>,
    body: Body,
) -> Response {
    let Some(path) = wire::parse_path(uri.path()) else {
        return error(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the webhook is served at POST /authorize (SubjectAccessReview), POST /authenticate (TokenReview) and POST {resourceId}/providers/Microsoft.Authorization/checkaccess (CheckAccess)",
        );
    };
    let response = handle(&state.0, &method, path, peer.map(|Extension(p)| p), body).await;
    state.0.metrics.count_http(response.status().as_u16());
    response
}

async fn handle(
    s: &Shared,
    method: &Method,
    path: Result<CheckAccessPath, wire::CheckAccessError>,
    peer: Option<Arc<PeerIdentity>>,
    body: Body,
) -> Response {
    if method != Method::POST {
        let mut refused = arm_error(
            s,
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "CheckAccess is asked with POST",
        );
        refused
            .headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("POST"));
        return refused;
    }
    let bytes = match admitted_body(s, peer, body).await {
        Ok(bytes) => bytes,
        Err(answered) => return answered,
    };
    let question = match path.and_then(|path| {
        let question = wire::decode(&bytes)?;
        wire::check_path(&path, &question)?;
        Ok(question)
    }) {
        Ok(question) => question,
        Err(e) => return bad_request(s, &e.to_string()),
    };
    if let Some(message) = unavailable(s) {
        return arm_error(
            s,
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            message,
        );
    }
    let snapshot = s.store.load();
    // The engine has no clock: each question is decided at the time it arrives.
    let now = Timestamp::from_system(std::time::SystemTime::now());
    let answer = check_access::decide(&snapshot, &question, now);
    if answer.decisions.len() != question.actions.len() {
        tracing::error!(
            asked = question.actions.len(),
            answered = answer.decisions.len(),
            "CheckAccess answered a different number of operations than asked"
        );
        return arm_error(
            s,
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            "scopegate answered a different number of operations than asked",
        );
    }
    let mut counts = [0u64; 3];
    for d in &answer.decisions {
        if let Some(n) = counts.get_mut(d.decision as usize) {
            *n += 1;
        }
    }
    for (decision, n) in DECISIONS.iter().zip(counts) {
        if n > 0 {
            s.metrics
                .check_access_decisions
                .with_label_values(&[decision.as_str()])
                .inc_by(n);
        }
    }
    s.metrics
        .check_access_requests
        .with_label_values(&["answered"])
        .inc();
    tracing::debug!(
        resource = %question.resource,
        operations = question.actions.len(),
        allowed = counts.first().copied().unwrap_or(0),
        generation = snapshot.generation,
        "CheckAccess answered"
    );
    let body = wire::encode(question.actions.iter().zip(&answer.decisions));
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// Every decision in declaration order, so `decision as usize` indexes it.
const DECISIONS: [AccessDecision; 3] = [
    AccessDecision::Allowed,
    AccessDecision::NotAllowed,
    AccessDecision::Denied,
];

fn bad_request(s: &Shared, message: &str) -> Response {
    arm_error(s, StatusCode::BAD_REQUEST, "BadRequest", message)
}

/// ARM's error answer, counted by result.
fn arm_error(s: &Shared, status: StatusCode, code: &str, message: &str) -> Response {
    let result = match status {
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        StatusCode::INTERNAL_SERVER_ERROR => "error",
        _ => "bad_request",
    };
    s.metrics
        .check_access_requests
        .with_label_values(&[result])
        .inc();
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        wire::encode_error(code, message),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decision_order_matches_the_enum() {
        for (i, d) in DECISIONS.iter().enumerate() {
            assert_eq!(*d as usize, i);
        }
    }
}

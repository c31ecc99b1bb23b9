//! `POST {resourceId}/providers/Microsoft.Authorization/checkaccess`: Azure's CheckAccess on
//! the webhook listener, so a client written for ARM (Guard's included) can ask scopegate.
//! The path's case is free and `?api-version=…` is ignored. Read the body like `/authorize`
//! (caller's certificate name, size and time limits), decode, check that the path and the
//! body name the same resource (the root form `/providers/Microsoft.Authorization/checkaccess`
//! takes the body's), decide on one snapshot, count, answer the JSON array of decisions.
//! Refusals carry ARM's error body `{"error":{"code","message"}}`.

use super::authorize::{
    AppState, PeerIdentity, ReadBody, Shared, admitted_body, error, too_large_message, unavailable,
};
use super::issuer_keys::IssuerKeys;
use crate::engine::check_access;
use crate::identity::{TokenError, TokenRules};
use crate::model::Timestamp;
use crate::model::check_access::{AccessDecision, CheckAccess, Subject};
use crate::model::workload::{WorkloadMode, WorkloadQuestion};
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
        Ok(ReadBody::Complete(bytes)) => bytes,
        Ok(ReadBody::TooLarge(_)) => {
            return arm_error(
                s,
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLarge",
                &too_large_message(s),
            );
        }
        Err(answered) => return answered,
    };
    let question = match path.and_then(|path| {
        let question = wire::decode_with(&bytes, &s.workload.defaults)?;
        wire::check_path(&path, &question)?;
        Ok(question)
    }) {
        Ok(question) => question,
        Err(e) => return bad_request(s, &e.to_string()),
    };
    // The engine has no clock: each question is decided at the time it arrives.
    let now = Timestamp::from_system(std::time::SystemTime::now());
    let question = match s.workload.verify_subject(question, now).await {
        Ok(question) => question,
        Err(message) => return bad_request(s, &message),
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
    let body = wire::encode(
        question.actions.iter().zip(&answer.decisions),
        answer.time_to_live_ms(now),
    );
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// Workload identity on the endpoint: what a question about a service account assumes, and
/// the cluster issuer's keys that projected tokens are checked against.
#[derive(Default)]
pub struct WorkloadIdentity {
    pub defaults: wire::Defaults,
    /// Rules and keys for projected tokens, when a cluster issuer is configured.
    pub tokens: Option<(TokenRules, Arc<IssuerKeys>)>,
}

impl WorkloadIdentity {
    /// The question with a projected token's subject replaced by the service account the
    /// token names, once it passes at `now`; a refused token is an error, never an answer.
    pub async fn verify_subject(
        &self,
        question: CheckAccess,
        now: Timestamp,
    ) -> Result<CheckAccess, String> {
        let Subject::ServiceAccountToken {
            token,
            audience,
            mode,
        } = &question.subject
        else {
            return Ok(question);
        };
        let account = self
            .verify_token(token, audience, *mode, now.unix_seconds())
            .await?;
        Ok(CheckAccess {
            subject: Subject::ServiceAccount(account),
            ..question
        })
    }

    async fn verify_token(
        &self,
        token: &str,
        audience: &str,
        mode: WorkloadMode,
        now: u64,
    ) -> Result<WorkloadQuestion, String> {
        let Some((rules, keys)) = &self.tokens else {
            return Err("a service-account token is checked against the cluster issuer's keys: start scopegate with --cluster-issuer".into());
        };
        let rules = TokenRules {
            audiences: vec![audience.to_string()],
            ..rules.clone()
        };
        let before = keys.keys().generation();
        let verify =
            || crate::identity::token::verify_service_account(token, &keys.keys(), &rules, now);
        let verified = match verify() {
            Err(TokenError::UnknownKid(kid)) => {
                // A read that changed the keys gave them a new generation.
                keys.refresh_for_unknown_kid().await;
                if keys.keys().generation() != before {
                    verify()
                } else {
                    Err(TokenError::UnknownKid(kid))
                }
            }
            other => other,
        }
        .map_err(|e| format!("service-account token refused: {e}"))?;
        Ok(WorkloadQuestion {
            namespace: verified.namespace,
            name: verified.name,
            issuer: verified.issuer,
            audience: audience.to_string(),
            mode,
        })
    }
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
        StatusCode::PAYLOAD_TOO_LARGE => "too_large",
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

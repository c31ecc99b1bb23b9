//! Encoding the answer: the request's apiVersion and kind, and `status`
//! (`allowed`, `denied`, `reason`, `evaluationError`). `allowed` and `denied` are never both true.

use super::ApiVersion;
use crate::model::Decision;
use crate::model::decision::Reason;
use serde::Serialize;
use serde_json::Value;

/// The response, serialised straight from borrowed fields (no intermediate JSON tree).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Response<'a> {
    api_version: &'a str,
    kind: &'static str,
    metadata: Empty,
    status: Status<'a>,
}

#[derive(Serialize)]
struct Empty {}

/// `SubjectAccessReviewStatus`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Status<'a> {
    allowed: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    denied: bool,
    #[serde(skip_serializing_if = "Reason::is_empty")]
    reason: &'a Reason,
    #[serde(skip_serializing_if = "Option::is_none")]
    evaluation_error: Option<&'a str>,
}

fn status(decision: &Decision) -> Status<'_> {
    Status {
        allowed: decision.allowed(),
        denied: decision.denied(),
        reason: &decision.reason,
        evaluation_error: decision.evaluation_error.as_deref(),
    }
}

/// The `status` object for a decision.
pub fn status_value(decision: &Decision) -> Value {
    serde_json::to_value(status(decision)).unwrap_or(Value::Null)
}

/// The response body kube-apiserver reads.
pub fn encode_response(api_version: ApiVersion, decision: &Decision) -> Vec<u8> {
    let response = Response {
        api_version: api_version.as_str(),
        kind: "SubjectAccessReview",
        metadata: Empty {},
        status: status(decision),
    };
    // Sized for the usual answer, so writing it does not grow the buffer step by step.
    let mut body = Vec::with_capacity(512);
    match serde_json::to_writer(&mut body, &response) {
        Ok(()) => body,
        Err(_) => Vec::new(),
    }
}

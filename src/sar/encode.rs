//! Encoding the answer: the request's apiVersion and kind, and `status`
//! (`allowed`, `denied`, `reason`, `evaluationError`). `allowed` and `denied` are never both true.

use super::ApiVersion;
use crate::model::Decision;
use serde_json::{Value, json};

/// The `status` object for a decision.
pub fn status_value(decision: &Decision) -> Value {
    let mut status = serde_json::Map::new();
    status.insert("allowed".into(), Value::Bool(decision.allowed()));
    if decision.denied() {
        status.insert("denied".into(), Value::Bool(true));
    }
    if !decision.reason.is_empty() {
        status.insert("reason".into(), Value::String(decision.reason.to_string()));
    }
    if let Some(e) = &decision.evaluation_error {
        status.insert("evaluationError".into(), Value::String(e.clone()));
    }
    Value::Object(status)
}

/// The response body kube-apiserver reads.
pub fn encode_response(api_version: ApiVersion, decision: &Decision) -> Vec<u8> {
    let body = json!({
        "apiVersion": api_version.as_str(),
        "kind": "SubjectAccessReview",
        "metadata": {},
        "status": status_value(decision),
    });
    serde_json::to_vec(&body).unwrap_or_default()
}

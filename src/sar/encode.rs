//! Encoding the answer: the request's apiVersion and kind, and `status`
//! (`allowed`, `denied`, `reason`, `evaluationError`). `allowed` and `denied` are never both true.

use super::ApiVersion;
use crate::model::Decision;
use crate::model::decision::Reason;
use serde::Serialize;
use serde_json::Value;
use std::fmt;

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

/// The response body kube-apiserver reads: the same bytes serde_json writes for
/// `{apiVersion, kind, metadata: {}, status}` (a test holds them equal), written directly
/// because escaping the reason byte by byte was a fifth of a round trip (callgrind).
pub fn encode_response(api_version: ApiVersion, decision: &Decision) -> Vec<u8> {
    // Sized for the usual answer, so writing it does not grow the buffer step by step.
    let mut body = Vec::with_capacity(512);
    body.extend_from_slice(b"{\"apiVersion\":\"");
    body.extend_from_slice(api_version.as_str().as_bytes());
    body.extend_from_slice(
        b"\",\"kind\":\"SubjectAccessReview\",\"metadata\":{},\"status\":{\"allowed\":",
    );
    body.extend_from_slice(if decision.allowed() {
        b"true"
    } else {
        b"false"
    });
    if decision.denied() {
        body.extend_from_slice(b",\"denied\":true");
    }
    if !decision.reason.is_empty() {
        body.extend_from_slice(b",\"reason\":");
        json_string(&mut body, &decision.reason);
    }
    if let Some(error) = &decision.evaluation_error {
        body.extend_from_slice(b",\"evaluationError\":");
        json_string(&mut body, error);
    }
    body.extend_from_slice(b"}}");
    body
}

/// Writes `value` as a JSON string. The text is written as it is, then checked in one pass;
/// if it holds anything to escape (rare: reasons are ids, names and actions), it is written
/// again through serde_json's escaping. Checking piece by piece as the text was formatted
/// cost more than the whole answer's other work (callgrind).
fn json_string(out: &mut Vec<u8>, value: &impl fmt::Display) {
    struct Raw<'a>(&'a mut Vec<u8>);
    impl fmt::Write for Raw<'_> {
        fn write_str(&mut self, piece: &str) -> fmt::Result {
            self.0.extend_from_slice(piece.as_bytes());
            Ok(())
        }
    }
    out.push(b'"');
    let start = out.len();
    // Writing into a Vec cannot fail; a Display that fails leaves what it wrote.
    let _ = fmt::write(&mut Raw(out), format_args!("{value}"));
    if out.get(start..).is_some_and(needs_escape) {
        let text = String::from_utf8_lossy(out.get(start..).unwrap_or_default()).into_owned();
        out.truncate(start);
        if let Ok(quoted) = serde_json::to_string(&text)
            && let Some(inner) = quoted.strip_prefix('"').and_then(|q| q.strip_suffix('"'))
        {
            out.extend_from_slice(inner.as_bytes());
        }
    }
    out.push(b'"');
}

/// Whether `bytes` hold a character JSON escapes (`"`, `\\`, control characters). A fold
/// with no early exit, so the compiler checks many bytes per step in vector registers.
fn needs_escape(bytes: &[u8]) -> bool {
    let flag = |b: u8| (b < 0x20) | (b == b'"') | (b == b'\\');
    bytes.iter().fold(false, |f, &b| f | flag(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Source, Verdict};
    use proptest::prelude::*;

    /// The answer as serde_json writes it from the typed shape.
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Response<'a> {
        api_version: &'a str,
        kind: &'static str,
        metadata: serde_json::Map<String, Value>,
        status: Status<'a>,
    }

    fn by_serde(api_version: ApiVersion, decision: &Decision) -> Vec<u8> {
        serde_json::to_vec(&Response {
            api_version: api_version.as_str(),
            kind: "SubjectAccessReview",
            metadata: serde_json::Map::new(),
            status: status(decision),
        })
        .expect("serialises")
    }

    proptest! {
        #[test]
        fn same_bytes_as_serde_json(
            verdict in prop::sample::select(vec![Verdict::Allow, Verdict::Deny, Verdict::NoOpinion]),
            v1 in any::<bool>(),
            reason in ".{0,80}",
            pieces in prop::collection::vec("[ -~]{0,12}|\\PC{0,4}|[\"\\\\\n\t\u{0}\u{1f}]{0,3}", 0..6),
            error in proptest::option::of("\\PC{0,20}|[\"\\\\\u{7}]{1,3}"),
        ) {
            let api = if v1 { ApiVersion::V1 } else { ApiVersion::V1beta1 };
            let owned = Decision::new(verdict, Source::Request, reason);
            let lazy = Decision::new(
                verdict,
                Source::Request,
                Reason::lazy(move |f| pieces.iter().try_for_each(|p| f.write_str(p))),
            );
            for mut decision in [owned, lazy] {
                decision.evaluation_error = error.clone();
                let ours = String::from_utf8(encode_response(api, &decision));
                let theirs = String::from_utf8(by_serde(api, &decision));
                prop_assert_eq!(ours.ok(), theirs.ok());
            }
        }
    }
}

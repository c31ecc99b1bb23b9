//! Decoding SubjectAccessReview bodies as kube-apiserver sends them: v1 (`spec.groups`) and
//! v1beta1 (`spec.group`), `metadata: {}` or `{"creationTimestamp": null}`.

use crate::model::AccessRequest;
use serde::Deserialize;
use std::borrow::Cow;

/// `authorization.k8s.io/v1` or `…/v1beta1`; the answer uses the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApiVersion {
    V1,
    V1beta1,
}

impl ApiVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            ApiVersion::V1 => "authorization.k8s.io/v1",
            ApiVersion::V1beta1 => "authorization.k8s.io/v1beta1",
        }
    }
}

/// A decoded review: its version and the request it asks about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    pub api_version: ApiVersion,
    pub request: AccessRequest,
}

/// Why a body is not a SubjectAccessReview.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Not JSON, or fields of the wrong type.
    #[error("body is not a valid SubjectAccessReview: {0}")]
    Json(#[from] serde_json::Error),
    /// `kind` is something else.
    #[error("kind `{0}` is not SubjectAccessReview")]
    Kind(String),
    /// `apiVersion` is not one this server speaks.
    #[error("apiVersion `{0}` is not authorization.k8s.io/v1 or authorization.k8s.io/v1beta1")]
    ApiVersion(String),
    /// No `spec`.
    #[error("SubjectAccessReview has no spec")]
    NoSpec,
}

/// The envelope; `apiVersion` and `kind` are borrowed from the body (no allocation) unless
/// they hold escapes.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire<'b> {
    #[serde(default, borrow)]
    api_version: Cow<'b, str>,
    #[serde(default, borrow)]
    kind: Cow<'b, str>,
    #[serde(default)]
    spec: Option<AccessRequest>,
}

/// Decodes a request body.
pub fn decode(body: &[u8]) -> Result<Review, DecodeError> {
    // One UTF-8 check over the whole body is cheaper than serde_json's check per string.
    let text = std::str::from_utf8(body).map_err(|e| {
        DecodeError::Json(serde::de::Error::custom(format_args!(
            "body is not UTF-8: {e}"
        )))
    })?;
    let wire: Wire = serde_json::from_str(text)?;
    if wire.kind != "SubjectAccessReview" {
        return Err(DecodeError::Kind(wire.kind.into_owned()));
    }
    let api_version = match &*wire.api_version {
        "authorization.k8s.io/v1" => ApiVersion::V1,
        "authorization.k8s.io/v1beta1" => ApiVersion::V1beta1,
        other => return Err(DecodeError::ApiVersion(other.to_string())),
    };
    let request = wire.spec.ok_or(DecodeError::NoSpec)?;
    Ok(Review {
        api_version,
        request,
    })
}

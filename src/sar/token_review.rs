//! TokenReview bodies (`authentication.k8s.io/v1` and `v1beta1`, spec `identity.md` A1):
//! kube-apiserver's request in, the answer out in the request's version. The answer never
//! repeats the token.

use crate::identity::{AuthenticatedUser, TokenError, UserGroups};
use serde::{Deserialize, Serialize};

/// `authentication.k8s.io/v1` or `…/v1beta1`; the answer uses the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum AuthnVersion {
    #[serde(rename = "authentication.k8s.io/v1")]
    V1,
    #[serde(rename = "authentication.k8s.io/v1beta1")]
    V1beta1,
}

impl AuthnVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthnVersion::V1 => "authentication.k8s.io/v1",
            AuthnVersion::V1beta1 => "authentication.k8s.io/v1beta1",
        }
    }
}

/// A decoded TokenReview.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenReview {
    pub api_version: AuthnVersion,
    pub token: String,
    /// `spec.audiences`: kube-apiserver's own audiences, not the token's.
    pub audiences: Vec<String>,
}

impl std::fmt::Debug for TokenReview {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenReview")
            .field("api_version", &self.api_version)
            .field("token", &"<redacted>")
            .field("audiences", &self.audiences)
            .finish()
    }
}

/// Why a body is not a TokenReview.
#[derive(Debug, thiserror::Error)]
pub enum TokenReviewError {
    #[error("body is not a valid TokenReview: {0}")]
    Json(String),
    #[error("body is not a TokenReview: kind is `{0}`")]
    Kind(String),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire {
    kind: String,
    api_version: AuthnVersion,
    #[serde(default)]
    spec: Spec,
}

#[derive(Deserialize, Default)]
struct Spec {
    #[serde(default)]
    token: String,
    #[serde(default)]
    audiences: Option<Vec<String>>,
}

/// Decodes a TokenReview body.
pub fn decode(bytes: &[u8]) -> Result<TokenReview, TokenReviewError> {
    // serde's messages quote unexpected values; a token in a wrong place must not be echoed.
    let wire: Wire = serde_json::from_slice(bytes).map_err(|e| {
        TokenReviewError::Json(format!(
            "{} at line {} column {}",
            category(&e),
            e.line(),
            e.column()
        ))
    })?;
    if wire.kind != "TokenReview" {
        return Err(TokenReviewError::Kind(
            crate::model::excerpt::excerpt_of(&wire.kind, 64).to_string(),
        ));
    }
    Ok(TokenReview {
        api_version: wire.api_version,
        token: wire.spec.token,
        audiences: wire.spec.audiences.unwrap_or_default(),
    })
}

fn category(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Io => "read error",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "wrong field or value",
        serde_json::error::Category::Eof => "unexpected end",
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Answer<'a> {
    api_version: &'static str,
    kind: &'static str,
    metadata: Empty,
    status: Status<'a>,
}

/// `{}`.
#[derive(Serialize)]
struct Empty {}

#[derive(Serialize)]
struct Status<'a> {
    authenticated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<User<'a>>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    audiences: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Serialize)]
struct User<'a> {
    username: &'a str,
    uid: &'a str,
    #[serde(skip_serializing_if = "Groups::is_empty")]
    groups: Groups<'a>,
    extra: Extra<'a>,
}

struct Groups<'a>(UserGroups<'a>);

impl Groups<'_> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for Groups<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter())
    }
}

/// `extra`: `{"oid": [oid], "tid": [tid]}`.
#[derive(Serialize)]
struct Extra<'a> {
    oid: [&'a str; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    tid: Option<[&'a str; 1]>,
}

/// `status.audiences`: kube-apiserver's audiences the token also names (spec A2.1).
pub fn answered_audiences(requested: &[String], token_audiences: &[String]) -> Vec<String> {
    requested
        .iter()
        .filter(|a| token_audiences.contains(a))
        .cloned()
        .collect()
}

/// The answer to an authenticated token: `extra` holds the unprefixed `oid` (and `tid`),
/// the shape AKS gives the authorizer.
pub fn encode_authenticated(
    version: AuthnVersion,
    user: &AuthenticatedUser,
    audiences: &[String],
) -> Vec<u8> {
    encode(
        version,
        Status {
            authenticated: true,
            user: Some(User {
                username: user.username(),
                uid: user.oid(),
                groups: Groups(user.groups),
                extra: Extra {
                    oid: [user.oid()],
                    tid: user.tid().map(|tid| [tid]),
                },
            }),
            audiences,
            error: None,
        },
    )
}

/// The answer to a rejected token: `authenticated: false` and the reason in `error`.
pub fn encode_rejected(version: AuthnVersion, error: &TokenError) -> Vec<u8> {
    encode(
        version,
        Status {
            authenticated: false,
            user: None,
            audiences: &[],
            error: Some(error.to_string()),
        },
    )
}

fn encode(version: AuthnVersion, status: Status<'_>) -> Vec<u8> {
    let answer = Answer {
        api_version: version.as_str(),
        kind: "TokenReview",
        metadata: Empty {},
        status,
    };
    // Plain strings and maps: serialising cannot fail.
    serde_json::to_vec(&answer).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_both_versions_and_never_echoes_the_token() {
        let body = br#"{"kind":"TokenReview","apiVersion":"authentication.k8s.io/v1beta1","metadata":{"creationTimestamp":null},"spec":{"token":"secret-token","audiences":["https://kubernetes.default.svc"]},"status":{"user":{}}}"#;
        let review = decode(body).unwrap();
        assert_eq!(review.api_version, AuthnVersion::V1beta1);
        assert_eq!(review.token, "secret-token");
        assert!(!format!("{review:?}").contains("secret-token"));
        let answer = encode_rejected(review.api_version, &TokenError::InvalidSignature);
        let value: serde_json::Value = serde_json::from_slice(&answer).unwrap();
        assert_eq!(value["apiVersion"], "authentication.k8s.io/v1beta1");
        assert_eq!(value["status"]["authenticated"], false);
        assert_eq!(value["status"]["error"], "invalid signature");
        assert!(!String::from_utf8_lossy(&answer).contains("secret-token"));

        let wrong = br#"{"kind":"TokenReview","apiVersion":"authentication.k8s.io/v1","spec":{"token":["secret-token"]}}"#;
        let error = decode(wrong).unwrap_err().to_string();
        assert!(!error.contains("secret-token"), "{error}");
        assert!(
            decode(br#"{"kind":"SubjectAccessReview","apiVersion":"authentication.k8s.io/v1"}"#)
                .is_err()
        );
    }

    #[test]
    fn audiences_answered_are_the_requested_ones_the_token_names() {
        let requested = vec![
            "https://kubernetes.default.svc".to_string(),
            "api".to_string(),
        ];
        let token = vec!["api".to_string(), "other".to_string()];
        assert_eq!(answered_audiences(&requested, &token), vec!["api"]);
        assert!(answered_audiences(&[], &token).is_empty());
    }
}

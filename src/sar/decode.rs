//! Decoding SubjectAccessReview bodies as kube-apiserver sends them: v1 (`spec.groups`) and
//! v1beta1 (`spec.group`), `metadata: {}` or `{"creationTimestamp": null}`.
//!
//! A body that is a SubjectAccessReview (right `kind` and `apiVersion`) but cannot be
//! evaluated — a field of the wrong type, no spec, too large — is [`Unevaluable`]: it is
//! answered, denied, never refused. An error status would make kube-apiserver apply its
//! failure policy, and with `NoOpinion` the next authorizer would decide without the deny
//! assignments. Only bodies that are not a SubjectAccessReview at all are refused.

use crate::model::excerpt::{excerpt, excerpt_of};
use crate::model::request::object;
use crate::model::{AccessRequest, Decision, Source, Verdict};
use serde::Deserialize;
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

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

    fn parse(text: &str) -> Option<ApiVersion> {
        match text {
            "authorization.k8s.io/v1" => Some(ApiVersion::V1),
            "authorization.k8s.io/v1beta1" => Some(ApiVersion::V1beta1),
            _ => None,
        }
    }
}

/// A decoded review: its version and the request it asks about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    pub api_version: ApiVersion,
    pub request: AccessRequest,
}

/// Most bytes of a decoding error an answer repeats (serde quotes the offending value).
const ERROR_BYTES: usize = 512;

/// A SubjectAccessReview that cannot be evaluated: answered in its version, denied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unevaluable {
    pub api_version: ApiVersion,
    /// What could be read of the request (`user`, `uid`), for the decision log.
    pub request: AccessRequest,
    /// Why it cannot be evaluated.
    pub why: String,
}

impl Unevaluable {
    /// The answer: denied, with the reason and the same text as the evaluation error.
    pub fn decision(&self) -> Decision {
        let error = format!("SubjectAccessReview cannot be evaluated: {}", self.why);
        Decision::new(
            Verdict::Deny,
            Source::Request,
            format!("request not allowed: {error}"),
        )
        .with_error(error)
    }
}

/// Why a body is not an answerable SubjectAccessReview.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Not JSON, or not a JSON object.
    #[error("body is not a valid SubjectAccessReview: {0}")]
    Json(#[from] serde_json::Error),
    /// `kind` is something else.
    #[error("kind `{0}` is not SubjectAccessReview")]
    Kind(String),
    /// `apiVersion` is not one this server speaks.
    #[error("apiVersion `{0}` is not authorization.k8s.io/v1 or authorization.k8s.io/v1beta1")]
    ApiVersion(String),
    /// A SubjectAccessReview that cannot be evaluated: to be answered, denied.
    #[error("SubjectAccessReview cannot be evaluated: {}", .0.why)]
    Unevaluable(Box<Unevaluable>),
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
    #[serde(default, deserialize_with = "crate::model::request::optional_object")]
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
    let mut de = serde_json::Deserializer::from_str(text);
    let wire = object::<_, Wire>(&mut de).and_then(|wire| de.end().map(|()| wire));
    let why = match wire {
        Ok(wire) => {
            if wire.kind != "SubjectAccessReview" {
                return Err(DecodeError::Kind(excerpt(&wire.kind).to_string()));
            }
            let Some(api_version) = ApiVersion::parse(&wire.api_version) else {
                return Err(DecodeError::ApiVersion(
                    excerpt(&wire.api_version).to_string(),
                ));
            };
            match wire.spec {
                Some(request) => {
                    return Ok(Review {
                        api_version,
                        request,
                    });
                }
                None => "SubjectAccessReview has no spec".to_string(),
            }
        }
        Err(e) => excerpt_of(&e.to_string(), ERROR_BYTES).to_string(),
    };
    // Read again without the spec's types: is this a SubjectAccessReview at all?
    let mut envelope = Envelope::default();
    let mut de = serde_json::Deserializer::from_str(text);
    (&mut envelope).deserialize(&mut de)?;
    de.end()?;
    Err(DecodeError::Unevaluable(Box::new(
        envelope.unevaluable(why)?,
    )))
}

/// A body cut at `limit` bytes (its whole is larger): the review to deny when the part read
/// shows a SubjectAccessReview (`kind` and `apiVersion` are the first fields kube-apiserver
/// writes), `None` when it does not (then the body is refused as too large).
pub fn decode_truncated(prefix: &[u8], limit: usize) -> Option<Unevaluable> {
    // A character cut at the end is left out; an invalid one elsewhere is not JSON.
    let text = match std::str::from_utf8(prefix) {
        Ok(text) => text,
        Err(e) if e.error_len().is_none() => {
            std::str::from_utf8(prefix.get(..e.valid_up_to())?).ok()?
        }
        Err(_) => return None,
    };
    let mut envelope = Envelope::default();
    let mut de = serde_json::Deserializer::from_str(text);
    match (&mut envelope).deserialize(&mut de) {
        Ok(()) => {}
        Err(e) if e.is_eof() => {}
        Err(_) => return None,
    }
    envelope
        .unevaluable(format!("request body is larger than {limit} bytes"))
        .ok()
}

/// What a body says about itself, read without the spec's types: `kind`, `apiVersion`, and
/// the spec's `user` and `uid` when they are strings. Filled as it is read, so a body cut
/// short still tells what came before the cut.
#[derive(Debug, Default)]
struct Envelope {
    api_version: Option<String>,
    kind: Option<String>,
    user: Option<String>,
    uid: Option<String>,
}

impl Envelope {
    fn unevaluable(self, why: String) -> Result<Unevaluable, DecodeError> {
        let kind = self.kind.unwrap_or_default();
        if kind != "SubjectAccessReview" {
            return Err(DecodeError::Kind(excerpt(&kind).to_string()));
        }
        let version = self.api_version.unwrap_or_default();
        let Some(api_version) = ApiVersion::parse(&version) else {
            return Err(DecodeError::ApiVersion(excerpt(&version).to_string()));
        };
        Ok(Unevaluable {
            api_version,
            request: AccessRequest {
                user: self.user.unwrap_or_default(),
                uid: self.uid.unwrap_or_default(),
                ..AccessRequest::default()
            },
            why,
        })
    }
}

/// The top level: an object whose fields fill the envelope.
impl<'de> DeserializeSeed<'de> for &mut Envelope {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        de.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for &mut Envelope {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            match &*key {
                "apiVersion" => self.api_version = map.next_value::<Text>()?.0,
                "kind" => self.kind = map.next_value::<Text>()?.0,
                "spec" => map.next_value_seed(Spec(self))?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// The spec, of any shape: `user` and `uid` are taken from an object.
struct Spec<'e>(&'e mut Envelope);

impl<'de> DeserializeSeed<'de> for Spec<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Spec<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            match &*key {
                "user" => self.0.user = map.next_value::<Text>()?.0,
                "uid" => self.0.uid = map.next_value::<Text>()?.0,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }
}

/// A string value, or anything else (read and left out).
struct Text(Option<String>);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct AnyValue;
        impl<'de> Visitor<'de> for AnyValue {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_str<E>(self, text: &str) -> Result<Text, E> {
                Ok(Text(Some(text.to_string())))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Text, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Text(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Text, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Text(None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Text, E> {
                Ok(Text(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Text, E> {
                Ok(Text(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Text, E> {
                Ok(Text(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Text, E> {
                Ok(Text(None))
            }
            fn visit_unit<E>(self) -> Result<Text, E> {
                Ok(Text(None))
            }
        }
        de.deserialize_any(AnyValue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAR: &str = r#"{"kind":"SubjectAccessReview","apiVersion":"authorization.k8s.io/v1beta1","metadata":{},"spec":{"user":"alice","uid":"u-1","resourceAttributes":{"verb":"get","resource":"pods"}"#;

    fn unevaluable(body: &str) -> Option<Unevaluable> {
        match decode(body.as_bytes()) {
            Err(DecodeError::Unevaluable(u)) => Some(*u),
            _ => None,
        }
    }

    #[test]
    fn reviews_of_the_wrong_shape_are_unevaluable_with_what_can_be_read() {
        for (tail, why) in [
            (r#","extra":{"k":null}}}"#, "invalid type: null"),
            (r#","groups":5}}"#, "invalid type: integer"),
            (
                r#","extra":{"k":["a"]},"resourceAttributes":[]}}"#,
                "duplicate field",
            ),
        ] {
            let body = format!("{SAR}{tail}");
            let u = unevaluable(&body).unwrap_or_else(|| panic!("{body}"));
            assert_eq!(u.api_version, ApiVersion::V1beta1);
            assert_eq!(
                (u.request.user.as_str(), u.request.uid.as_str()),
                ("alice", "u-1")
            );
            assert!(u.why.contains(why), "{}", u.why);
            let decision = u.decision();
            assert!(decision.denied() && !decision.allowed());
        }
        // A spec that is not an object, and no spec.
        let array = r#"{"kind":"SubjectAccessReview","apiVersion":"authorization.k8s.io/v1","spec":[null,null,"alice"]}"#;
        assert!(unevaluable(array).is_some_and(|u| u.why.contains("expected an object")));
        let none = r#"{"kind":"SubjectAccessReview","apiVersion":"authorization.k8s.io/v1"}"#;
        assert!(unevaluable(none).is_some_and(|u| u.why.contains("no spec")));
    }

    #[test]
    fn bodies_that_are_not_reviews_are_refused() {
        for (body, kind) in [
            ("not json", "Json"),
            (
                "[\"authorization.k8s.io/v1\",\"SubjectAccessReview\",{}]",
                "Json",
            ),
            (
                r#"{"kind":"SubjectAccessReview","apiVersion":"authorization.k8s.io/v1","spec":{"groups":5}"#,
                "Json",
            ),
            (
                r#"{"kind":"TokenReview","apiVersion":"authorization.k8s.io/v1","spec":{"groups":5}}"#,
                "Kind",
            ),
            (
                r#"{"kind":5,"apiVersion":"authorization.k8s.io/v1","spec":{}}"#,
                "Kind",
            ),
            (
                r#"{"kind":"SubjectAccessReview","apiVersion":"v2","spec":{"groups":5}}"#,
                "ApiVersion",
            ),
        ] {
            let got = match decode(body.as_bytes()) {
                Err(DecodeError::Json(_)) => "Json",
                Err(DecodeError::Kind(_)) => "Kind",
                Err(DecodeError::ApiVersion(_)) => "ApiVersion",
                Err(DecodeError::Unevaluable(_)) => "Unevaluable",
                Ok(_) => "Ok",
            };
            assert_eq!(got, kind, "{body}");
        }
    }

    #[test]
    fn a_cut_body_is_a_review_only_when_its_prefix_says_so() {
        let body = format!("{SAR},\"groups\":[\"{}\"]}}}}", "g".repeat(1000));
        for cut in [150, 200, 500] {
            let u = decode_truncated(body.as_bytes().get(..cut).unwrap_or_default(), cut);
            let u = u.unwrap_or_else(|| panic!("cut at {cut}"));
            assert_eq!(u.api_version, ApiVersion::V1beta1);
            assert!(u.why.contains(&format!("larger than {cut} bytes")));
        }
        // Cut before the version is read, or inside the kind's value: not known to be a review.
        assert!(decode_truncated(body.as_bytes().get(..40).unwrap_or_default(), 40).is_none());
        assert!(decode_truncated(b"{\"kind\":\"SubjectAcc", 19).is_none());
        // Not JSON, or another kind.
        assert!(decode_truncated(&[b' '; 64], 64).is_none());
        assert!(decode_truncated(b"{\"kind\":\"SubjectAccessReview\" 1", 31).is_none());
        let other = r#"{"kind":"TokenReview","apiVersion":"authentication.k8s.io/v1","spec":{"token":"aaaa"#;
        assert!(decode_truncated(other.as_bytes(), other.len()).is_none());
    }
}

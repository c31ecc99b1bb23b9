//! SubjectAccessReview adapters, without HTTP: bytes -> [`Review`] -> engine -> bytes.

pub mod decode;
pub mod encode;

pub use decode::{ApiVersion, DecodeError, Review, Unevaluable, decode, decode_truncated};
pub use encode::{encode_response, status_value};

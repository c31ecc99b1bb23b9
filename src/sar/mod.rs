//! Review adapters, without HTTP: SubjectAccessReview bytes -> [`Review`] -> engine -> bytes,
//! and TokenReview bytes -> token -> identity -> bytes.

pub mod check_access;
pub mod decode;
pub mod encode;
pub mod token_review;

pub use decode::{ApiVersion, DecodeError, Review, Unevaluable, decode, decode_truncated};
pub use encode::{encode_response, status_value};

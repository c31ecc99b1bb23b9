//! SubjectAccessReview adapters, without HTTP: bytes -> [`Review`] -> engine -> bytes.

pub mod decode;
pub mod encode;
pub mod map;

pub use decode::{ApiVersion, DecodeError, Review, decode};
pub use encode::{encode_response, status_value};

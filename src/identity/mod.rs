//! Identity: Entra access tokens -> Kubernetes users, for the TokenReview webhook.
//!
//! ```text
//!   token ──token::verify(keys, rules, now)──> VerifiedToken ──user::resolve(directory)──> AuthenticatedUser
//! ```
//!
//! Pure: the signing keys, the directory snapshot and "now" are inputs. Fetching keys (OIDC
//! discovery, JWKS over HTTPS) and caching verified tokens are the server's adapters.

pub mod cache;
pub mod error;
pub mod keys;
pub mod token;
pub mod user;

pub use crate::model::GroupsFrom;
pub use error::TokenError;
pub use keys::KeySet;
pub use token::{Issuer, TokenRules, VerifiedToken, verify};
pub use user::{AuthenticatedUser, GroupsWarning, UserGroups, resolve};

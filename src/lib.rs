//! # scopegate
//!
//! A Kubernetes authorization webhook that answers kube-apiserver's SubjectAccessReviews
//! from Azure RBAC (role definitions, role assignments at hierarchical scopes, deny
//! assignments) and Kubernetes RBAC held in memory.
//!
//! ```text
//!   policy files ──parse──> PolicySet ──validate+index──> Snapshot (one generation, immutable)
//!                                                             │
//!   SAR bytes ──sar::decode──> AccessRequest ──engine::authorize(&Snapshot)──> Decision ──sar::encode──> bytes
//!                                     │
//!                        sar::map: verb/group/resource/namespace -> Azure action + scope
//! ```
//!
//! `model`, `engine`, `sar` and the parsing and indexing parts of `policy` do no I/O: they are
//! shared by the CLI (`check`, `explain`, `validate`) and the server, and tested with
//! conformance vectors and property tests. A decision reads exactly one snapshot:
//! Azure deny assignments first, then any allow (Azure role assignment or Kubernetes RBAC
//! binding), then the configured no-match answer.

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

pub mod cli;
pub mod config;
pub mod engine;
pub mod model;
pub mod policy;
pub mod sar;

use engine::EngineOptions;
use policy::{Diagnostic, LoadError, Snapshot};
use std::path::PathBuf;

/// Loads, validates and indexes policy from disk: the one path the CLI and server share.
pub fn load_snapshot(
    paths: &[PathBuf],
    options: &EngineOptions,
    generation: u64,
) -> Result<(Snapshot, Vec<Diagnostic>), LoadError> {
    let (set, mut warnings) = policy::load::load_paths(paths)?;
    let snapshot = Snapshot::build(set, options, generation)?;
    warnings.extend(snapshot.warnings.iter().cloned());
    Ok((snapshot, warnings))
}

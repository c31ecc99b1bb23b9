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

#![deny(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

pub mod audit;
pub mod cache;
pub mod certs;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod engine;
pub mod identity;
pub mod metrics;
pub mod model;
pub mod outbound;
pub mod policy;
pub mod sar;
pub mod server;
pub mod sync;
#[cfg(any(test, feature = "bench-support"))]
pub mod synthetic;
pub mod sys;
pub mod telemetry;

use policy::load::ParsedFiles;
use policy::{Diagnostic, IndexOptions, LoadError, PolicySet, Snapshot};
use std::path::PathBuf;

/// A loaded policy generation with its warnings and a fingerprint of its sources.
#[derive(Debug)]
pub struct Loaded {
    pub snapshot: Snapshot,
    pub warnings: Vec<Diagnostic>,
    pub fingerprint: u64,
}

/// Loads, validates and indexes policy from disk, plus objects from other sources (the live
/// cluster): the one path the CLI and the server share.
pub fn load_snapshot(
    paths: &[PathBuf],
    extra: Option<PolicySet>,
    options: &IndexOptions,
    generation: u64,
) -> Result<Loaded, LoadError> {
    read_sources(paths, extra, None).build(None, options, generation)
}

/// Policy read from its sources but not yet put together, validated and indexed: a reload
/// whose sources have the fingerprint of the policy being served stops here.
#[derive(Debug)]
pub struct Sources {
    reading: policy::load::Reading,
    extra: Option<PolicySet>,
}

/// Reads the policy files (unchanged ones looked up in `parsed`, if given) beside `extra`.
pub fn read_sources(
    paths: &[PathBuf],
    extra: Option<PolicySet>,
    parsed: Option<&mut ParsedFiles>,
) -> Sources {
    Sources {
        reading: policy::load::read_paths(paths, parsed),
        extra,
    }
}

impl Sources {
    /// A hash of the files' names and bytes; `extra` is versioned by its own source.
    pub fn fingerprint(&self) -> u64 {
        self.reading.fingerprint
    }

    /// Whether every file could be read (the bytes of one that could not are in no
    /// fingerprint, so an equal fingerprint does not mean equal sources).
    pub fn all_read(&self) -> bool {
        self.reading.all_read()
    }

    /// Files not read because they changed within the settle time.
    pub fn unsettled(&self) -> &[policy::load::Unsettled] {
        &self.reading.unsettled
    }

    /// Puts the policy together (kept parses from `parsed`, the one given to
    /// [`read_sources`]; the live cluster's objects over the files' copies of them, see
    /// [`PolicySet::overlay`]), validates and indexes it as generation `generation`.
    pub fn build(
        self,
        parsed: Option<&ParsedFiles>,
        options: &IndexOptions,
        generation: u64,
    ) -> Result<Loaded, LoadError> {
        let fingerprint = self.reading.fingerprint;
        let (mut set, mut warnings) = self.reading.assemble(parsed)?;
        if let Some(cluster) = self.extra {
            let replaced = set.overlay(cluster);
            if let Some((origin, first)) = replaced.first() {
                // A note, not a problem: the files hold copies of the cluster's own objects
                // (a `kubectl get -o yaml` export, the bootstrap defaults).
                tracing::info!(
                    replaced = replaced.len(),
                    "the live cluster's RBAC objects replace their file copies (first: {first} at {origin})"
                );
            }
        }
        let snapshot = Snapshot::build(set, options, generation)?;
        warnings.extend(snapshot.warnings.iter().cloned());
        Ok(Loaded {
            snapshot,
            warnings,
            fingerprint,
        })
    }
}

/// Builds a synthetic snapshot in memory through the policy parser (benchmarks, peers),
/// shared as the server shares the one it serves.
#[cfg(any(test, feature = "bench-support"))]
pub fn synthetic_snapshot(
    shape: synthetic::Shape,
    builtin_roles: &serde_json::Value,
    options: &IndexOptions,
) -> (std::sync::Arc<Snapshot>, synthetic::Generated) {
    let generated = synthetic::generate(shape, builtin_roles);
    let mut set = PolicySet::default();
    let mut diagnostics = Vec::new();
    policy::parse::add_value(
        &policy::Origin::new("synthetic", "$"),
        generated.all(),
        &mut set,
        &mut diagnostics,
    );
    let snapshot = Snapshot::build(set, options, 1).unwrap_or_default();
    (std::sync::Arc::new(snapshot), generated)
}

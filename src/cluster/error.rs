//! What makes the live source unable to say what the cluster holds.

use kube::runtime::reflector::store::WriterDropped;
use std::sync::Arc;

/// A source that cannot give the cluster's objects: a reload with it fails, and the policy
/// last published keeps serving. Cloned out of the source's fault slot, so sources are
/// shared.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SourceError {
    /// The lock over the stores' writers was poisoned by a panic while an event was applied:
    /// the stores may have missed events.
    #[error("the cluster RBAC stores' lock is poisoned; events may have been lost")]
    Poisoned,
    /// The source stopped following the cluster (a watcher ended or stopped).
    #[error("the cluster RBAC source failed: {0}")]
    Failed(String),
    /// A kind's writer was dropped before its first list: that kind can never list.
    #[error("the cluster RBAC source failed: {kind} store: {source}")]
    Unlisted {
        kind: &'static str,
        #[source]
        source: Arc<WriterDropped>,
    },
    /// The watchers own the stores: events come from the cluster, not from callers.
    #[error("the cluster RBAC stores are fed by their watchers")]
    Watched,
    /// A stored object could not be written back as JSON for the policy parser.
    #[error("cannot convert cluster object {object}: {source}")]
    Convert {
        object: String,
        #[source]
        source: Arc<serde_json::Error>,
    },
}

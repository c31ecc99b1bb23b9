//! What makes the live source unable to say what the cluster holds.

/// A source that cannot give the cluster's objects: a reload with it fails, and the policy
/// last published keeps serving.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// The lock over the stores' writers was poisoned by a panic while an event was applied:
    /// the stores may have missed events.
    #[error("the cluster RBAC stores' lock is poisoned; events may have been lost")]
    Poisoned,
    /// The source stopped following the cluster (a watcher ended or a writer was dropped).
    #[error("the cluster RBAC source failed: {0}")]
    Failed(String),
    /// The watchers own the stores: events come from the cluster, not from callers.
    #[error("the cluster RBAC stores are fed by their watchers")]
    Watched,
    /// A stored object could not be turned back into the policy schema.
    #[error("cannot convert cluster object {object}: {message}")]
    Convert { object: String, message: String },
}

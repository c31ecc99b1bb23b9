//! The answer: allow, deny or no opinion, with the reason and the ids of what decided it.

use std::fmt;

/// The three answers an authorizer in kube-apiserver's chain can give.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    Allow,
    Deny,
    NoOpinion,
}

impl Verdict {
    /// Name used in metrics, logs and vectors.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Deny => "deny",
            Verdict::NoOpinion => "no_opinion",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which part of the policy decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// An Azure role assignment allowed, or a deny assignment denied.
    AzureRbac,
    /// A Kubernetes RBAC binding allowed.
    KubernetesRbac,
    /// Nothing matched; the configured no-match answer applies.
    NoMatch,
    /// The request itself decided: a skipped user, a malformed request, a discovery path.
    Request,
}

impl Source {
    /// Name used in metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::AzureRbac => "azure_rbac",
            Source::KubernetesRbac => "kubernetes_rbac",
            Source::NoMatch => "no_match",
            Source::Request => "request",
        }
    }
}

/// A decision with its explanation. `decided_by` holds the ids of the assignments,
/// deny assignments or bindings that determined it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub verdict: Verdict,
    pub source: Source,
    pub reason: String,
    pub evaluation_error: Option<String>,
    pub decided_by: Vec<String>,
}

impl Decision {
    pub fn new(verdict: Verdict, source: Source, reason: impl Into<String>) -> Self {
        Decision {
            verdict,
            source,
            reason: reason.into(),
            evaluation_error: None,
            decided_by: Vec::new(),
        }
    }

    /// Adds the id of what decided.
    pub fn by(mut self, id: impl Into<String>) -> Self {
        self.decided_by.push(id.into());
        self
    }

    /// Records an evaluation problem next to the verdict.
    pub fn with_error(mut self, error: impl Into<String>) -> Self {
        self.evaluation_error = Some(error.into());
        self
    }

    pub fn allowed(&self) -> bool {
        self.verdict == Verdict::Allow
    }

    pub fn denied(&self) -> bool {
        self.verdict == Verdict::Deny
    }
}

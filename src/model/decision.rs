//! The answer: allow, deny or no opinion, with the reason and the ids of what decided it.

use std::fmt;
use std::sync::Arc;

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

type Render = dyn Fn(&mut fmt::Formatter<'_>) -> fmt::Result + Send + Sync;

/// Why a decision was made. Rendered only when someone reads it (the answer, the decision
/// log, `explain`), so deciding does not pay for formatting long resource ids.
#[derive(Clone)]
pub struct Reason(ReasonText);

#[derive(Clone)]
enum ReasonText {
    Static(&'static str),
    Owned(String),
    Lazy(Arc<Render>),
}

impl Reason {
    /// A reason rendered later by `render`.
    pub fn lazy(
        render: impl Fn(&mut fmt::Formatter<'_>) -> fmt::Result + Send + Sync + 'static,
    ) -> Self {
        Reason(ReasonText::Lazy(Arc::new(render)))
    }

    /// The same reason rendered now, holding nothing of the policy it was decided on.
    pub fn detached(&self) -> Reason {
        match &self.0 {
            ReasonText::Lazy(_) => Reason(ReasonText::Owned(self.to_string())),
            other => Reason(other.clone()),
        }
    }

    /// Whether the rendered reason is empty.
    pub fn is_empty(&self) -> bool {
        match &self.0 {
            ReasonText::Static(s) => s.is_empty(),
            ReasonText::Owned(s) => s.is_empty(),
            ReasonText::Lazy(_) => false,
        }
    }
}

impl From<&'static str> for Reason {
    fn from(s: &'static str) -> Self {
        Reason(ReasonText::Static(s))
    }
}

impl From<String> for Reason {
    fn from(s: String) -> Self {
        Reason(ReasonText::Owned(s))
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            ReasonText::Static(s) => f.write_str(s),
            ReasonText::Owned(s) => f.write_str(s),
            ReasonText::Lazy(render) => render(f),
        }
    }
}

/// Serialised as a string, rendered straight into the output (no intermediate `String`).
impl serde::Serialize for Reason {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl fmt::Debug for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.to_string())
    }
}

impl PartialEq for Reason {
    fn eq(&self, other: &Self) -> bool {
        self.to_string() == other.to_string()
    }
}

impl Eq for Reason {}

/// A decision with its explanation. `decided_by` holds the ids of the assignments,
/// deny assignments or bindings that determined it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub verdict: Verdict,
    pub source: Source,
    pub reason: Reason,
    pub evaluation_error: Option<String>,
    /// Inline for the usual single id.
    pub decided_by: smallvec::SmallVec<[Arc<str>; 1]>,
    /// The next time a time-bound role assignment of the requester starts or ends, after the
    /// decision time: the answer may differ from then on, so it must not be reused past it.
    /// `None`: no time-bound assignment was considered.
    pub valid_until: Option<super::Timestamp>,
}

impl Decision {
    pub fn new(verdict: Verdict, source: Source, reason: impl Into<Reason>) -> Self {
        Decision {
            verdict,
            source,
            reason: reason.into(),
            evaluation_error: None,
            decided_by: smallvec::SmallVec::new(),
            valid_until: None,
        }
    }

    /// Adds the id of what decided.
    pub fn by(mut self, id: Arc<str>) -> Self {
        self.decided_by.push(id);
        self
    }

    /// The same decision with its reason rendered now (see [`Reason::detached`]), for
    /// keeping beyond the request, as the decision cache does.
    pub fn detached(mut self) -> Self {
        self.reason = self.reason.detached();
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

//! Problems found in policy, with the place each was found: shared by the loader, `validate`
//! and the reload's log lines.

use std::fmt;
use std::sync::Arc;

/// Where a policy object came from: the file and a position inside it (a line, or a path of
/// documents, items and fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: Arc<str>,
    pub position: String,
}

impl Origin {
    pub fn new(file: impl Into<Arc<str>>, position: &str) -> Self {
        Origin {
            file: file.into(),
            position: position.to_string(),
        }
    }

    /// A position given as line and column (1-based).
    pub fn at_line(file: impl Into<Arc<str>>, line: usize, column: usize) -> Self {
        Origin::new(file, &format!("line {line}, column {column}"))
    }

    /// The `i`-th element of an array at this position.
    pub fn item(&self, i: usize) -> Self {
        Origin::new(self.file.clone(), &format!("{}[{i}]", self.position))
    }

    /// A field of the object at this position.
    pub fn field(&self, name: &str) -> Self {
        Origin::new(self.file.clone(), &format!("{}.{name}", self.position))
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file, self.position)
    }
}

/// How bad a diagnostic is: errors reject the policy set, warnings and notes are reported
/// only (a note says how something was read, with nothing to fix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
    Note,
}

/// What a warning or note is about, for counting (`scopegate_policy_warnings{kind}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DiagnosticKind {
    Other,
    /// Role assignments of a role definition that is not loaded: they grant nothing.
    UnknownRole,
    /// The configured cluster's resource provider is not the one the action prefix names.
    ProviderMismatch,
    /// The same object read from two files: loaded once.
    IdenticalCopy,
    /// A directory group with exactly the 20 members Graph's `$expand` returns at most, and
    /// no member file: its membership is likely cut short.
    TruncatedGroup,
    /// A workload identity lint: a credential or annotation naming nothing loaded, too many
    /// credentials on an identity, or a federated identity holding a broad role.
    WorkloadIdentity,
}

impl DiagnosticKind {
    /// Every kind, in label order.
    pub const ALL: [DiagnosticKind; 6] = [
        DiagnosticKind::Other,
        DiagnosticKind::UnknownRole,
        DiagnosticKind::ProviderMismatch,
        DiagnosticKind::IdenticalCopy,
        DiagnosticKind::TruncatedGroup,
        DiagnosticKind::WorkloadIdentity,
    ];

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            DiagnosticKind::Other => "other",
            DiagnosticKind::UnknownRole => "unknown_role",
            DiagnosticKind::ProviderMismatch => "provider_mismatch",
            DiagnosticKind::IdenticalCopy => "identical_copy",
            DiagnosticKind::TruncatedGroup => "truncated_group",
            DiagnosticKind::WorkloadIdentity => "workload_identity",
        }
    }
}

/// A problem found in the policy, with its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub kind: DiagnosticKind,
    pub origin: Origin,
    pub message: String,
}

impl Diagnostic {
    pub fn error(origin: Origin, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            kind: DiagnosticKind::Other,
            origin,
            message: message.into(),
        }
    }

    pub fn warning(origin: Origin, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            kind: DiagnosticKind::Other,
            origin,
            message: message.into(),
        }
    }

    pub fn note(origin: Origin, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Note,
            kind: DiagnosticKind::Other,
            origin,
            message: message.into(),
        }
    }

    /// The same diagnostic, counted as `kind`.
    pub fn of_kind(self, kind: DiagnosticKind) -> Self {
        Diagnostic { kind, ..self }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    pub fn is_warning(&self) -> bool {
        self.severity == Severity::Warning
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "note",
        };
        write!(f, "{level}: {}: {}", self.origin, self.message)
    }
}

/// The error of a rejected policy set: every diagnostic, errors first.
#[derive(Debug, Clone, thiserror::Error)]
#[error("policy rejected with {} error(s): {}", errors(.0), first_error(.0))]
pub struct LoadError(pub Vec<Diagnostic>);

fn errors(d: &[Diagnostic]) -> usize {
    d.iter().filter(|d| d.is_error()).count()
}

fn first_error(d: &[Diagnostic]) -> String {
    d.iter()
        .find(|d| d.is_error())
        .map(ToString::to_string)
        .unwrap_or_default()
}

//! Policy: files -> parsed objects ([`PolicySet`]) -> validated, indexed, immutable
//! [`Snapshot`]. Loading is all or nothing: any error diagnostic rejects the whole set.

pub mod assignments;
pub mod condition;
pub mod filter;
pub mod index;
pub mod known_actions;
pub mod load;
pub mod pace;
pub mod parse;
pub mod schema;
pub mod scope_table;
pub mod store;

pub use index::{Snapshot, SnapshotStats};

use assignments::AssignmentSet;
use schema::{DenyAssignment, K8sBinding, K8sRole, ManagementGroupEntity, RoleDefinition};
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

/// How bad a diagnostic is: errors reject the policy set, warnings are reported only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// A problem found in the policy, with its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub origin: Origin,
    pub message: String,
}

impl Diagnostic {
    pub fn error(origin: Origin, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            origin,
            message: message.into(),
        }
    }

    pub fn warning(origin: Origin, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            origin,
            message: message.into(),
        }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
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

/// Every policy object read from the sources, before validation.
#[derive(Debug, Clone, Default)]
pub struct PolicySet {
    pub role_definitions: Vec<(Origin, RoleDefinition)>,
    /// Compiled as read.
    pub role_assignments: AssignmentSet,
    pub deny_assignments: Vec<(Origin, DenyAssignment)>,
    pub management_groups: Vec<(Origin, ManagementGroupEntity)>,
    pub roles: Vec<(Origin, K8sRole)>,
    pub cluster_roles: Vec<(Origin, K8sRole)>,
    pub role_bindings: Vec<(Origin, K8sBinding)>,
    pub cluster_role_bindings: Vec<(Origin, K8sBinding)>,
    /// Subscription -> management groups, nearest first, given directly (vectors, tests).
    pub management_group_ancestry: Vec<(String, Vec<String>)>,
}

impl PolicySet {
    /// Adds every object of `other`.
    pub fn extend(&mut self, other: PolicySet) {
        let PolicySet {
            role_definitions,
            role_assignments,
            deny_assignments,
            management_groups,
            roles,
            cluster_roles,
            role_bindings,
            cluster_role_bindings,
            management_group_ancestry,
        } = other;
        self.role_definitions.extend(role_definitions);
        self.role_assignments.extend(role_assignments);
        self.deny_assignments.extend(deny_assignments);
        self.management_groups.extend(management_groups);
        self.roles.extend(roles);
        self.cluster_roles.extend(cluster_roles);
        self.role_bindings.extend(role_bindings);
        self.cluster_role_bindings.extend(cluster_role_bindings);
        self.management_group_ancestry
            .extend(management_group_ancestry);
    }

    /// Adds a copy of every object of `other` (a file's kept parse), a few at a time between
    /// [`pace::point`]s: a reload copies what unchanged files held, up to a million objects.
    pub fn extend_from(&mut self, other: &PolicySet) {
        // Every field by name: a new one must be copied too.
        let PolicySet {
            role_definitions,
            role_assignments,
            deny_assignments,
            management_groups,
            roles,
            cluster_roles,
            role_bindings,
            cluster_role_bindings,
            management_group_ancestry,
        } = other;
        extend_paced(&mut self.role_definitions, role_definitions);
        self.role_assignments.extend_from(role_assignments);
        extend_paced(&mut self.deny_assignments, deny_assignments);
        extend_paced(&mut self.management_groups, management_groups);
        extend_paced(&mut self.roles, roles);
        extend_paced(&mut self.cluster_roles, cluster_roles);
        extend_paced(&mut self.role_bindings, role_bindings);
        extend_paced(&mut self.cluster_role_bindings, cluster_role_bindings);
        extend_paced(
            &mut self.management_group_ancestry,
            management_group_ancestry,
        );
    }

    /// Frees this set's lists an item at a time (see [`pace::drop_paced`]): a replaced parse
    /// of a large file is freed by the reload that replaces it.
    pub fn dismantle(self) {
        let PolicySet {
            role_definitions,
            role_assignments,
            deny_assignments,
            management_groups,
            roles,
            cluster_roles,
            role_bindings,
            cluster_role_bindings,
            management_group_ancestry,
        } = self;
        role_assignments.dismantle();
        pace::drop_paced(role_definitions);
        pace::drop_paced(deny_assignments);
        pace::drop_paced(management_groups);
        pace::drop_paced(roles);
        pace::drop_paced(cluster_roles);
        pace::drop_paced(role_bindings);
        pace::drop_paced(cluster_role_bindings);
        pace::drop_paced(management_group_ancestry);
    }

    /// Makes room for the objects of `sets` (on a reload, the kept parses it copies), so
    /// adding them regrows none of the large lists: a regrowth copies the whole list at
    /// once, milliseconds in which a paced reload cannot give the core back.
    pub fn reserve_for<'a>(&mut self, sets: impl Iterator<Item = &'a PolicySet> + Clone) {
        let total = |len: fn(&PolicySet) -> usize| sets.clone().map(len).sum::<usize>();
        let PolicySet {
            role_definitions,
            role_assignments,
            deny_assignments,
            management_groups,
            roles,
            cluster_roles,
            role_bindings,
            cluster_role_bindings,
            management_group_ancestry,
        } = self;
        role_definitions.reserve(total(|s| s.role_definitions.len()));
        role_assignments.reserve(total(|s| s.role_assignments.len()));
        deny_assignments.reserve(total(|s| s.deny_assignments.len()));
        management_groups.reserve(total(|s| s.management_groups.len()));
        roles.reserve(total(|s| s.roles.len()));
        cluster_roles.reserve(total(|s| s.cluster_roles.len()));
        role_bindings.reserve(total(|s| s.role_bindings.len()));
        cluster_role_bindings.reserve(total(|s| s.cluster_role_bindings.len()));
        management_group_ancestry.reserve(total(|s| s.management_group_ancestry.len()));
    }
}

/// Appends clones of `from`, passing a [`pace::point`] per item.
fn extend_paced<T: Clone>(into: &mut Vec<T>, from: &[T]) {
    into.reserve(from.len());
    for item in from {
        pace::point();
        into.push(item.clone());
    }
}

//! Policy objects compiled for decisions: role definitions, role assignments and deny
//! assignments with their permissions as pattern sets, principals as object ids and
//! conditions parsed.

#[cfg(doc)]
use super::Snapshot;

use super::condition::Condition;
use super::diagnostic::{Diagnostic, Origin};
use super::schema::Permission;
use super::scope_table::ScopeId;
use crate::model::action::ActionKind;
use crate::model::action::PatternSet;
use crate::model::name_hash::object_id;
use crate::model::{ActionPattern, Scope, Timestamp};
use std::sync::Arc;
use uuid::Uuid;

/// The principal id Azure uses for "Everyone" in deny assignments.
pub const EVERYONE: Uuid = Uuid::nil();

/// One permissions block, compiled: Actions minus NotActions for control-plane operations,
/// DataActions minus NotDataActions for data operations. The two never mix: a string in one
/// list grants nothing of the other kind.
#[derive(Debug, Clone)]
pub struct PermissionBlock {
    pub actions: PatternSet,
    pub not_actions: PatternSet,
    pub data_actions: PatternSet,
    pub not_data_actions: PatternSet,
}

impl PermissionBlock {
    pub fn compile(p: &Permission) -> Self {
        let set =
            |list: &[String]| PatternSet::new(list.iter().map(|a| ActionPattern::new(a)).collect());
        PermissionBlock {
            actions: set(&p.actions),
            not_actions: set(&p.not_actions),
            data_actions: set(&p.data_actions),
            not_data_actions: set(&p.not_data_actions),
        }
    }

    /// The granting and subtracting lists for operations of `kind`.
    pub fn lists(&self, kind: ActionKind) -> (&PatternSet, &PatternSet) {
        match kind {
            ActionKind::Control => (&self.actions, &self.not_actions),
            ActionKind::Data => (&self.data_actions, &self.not_data_actions),
        }
    }

    /// Whether the block grants a concrete, lower-cased data action (what a Kubernetes
    /// request asks for).
    #[inline]
    pub fn grants(&self, action: &str) -> bool {
        self.grants_as(ActionKind::Data, action)
    }

    /// Whether the block grants a concrete, lower-cased operation of `kind`.
    #[inline]
    pub fn grants_as(&self, kind: ActionKind, action: &str) -> bool {
        let (granted, cut) = self.lists(kind);
        granted.matches(action) && !cut.matches(action)
    }

    /// Whether some data action of `requested` falls in this block's effective set (for
    /// denies; an approximation that errs towards "yes").
    pub fn touches(&self, requested: &ActionPattern) -> bool {
        self.touches_as(ActionKind::Data, requested)
    }

    /// [`PermissionBlock::touches`] for operations of `kind`.
    pub fn touches_as(&self, kind: ActionKind, requested: &ActionPattern) -> bool {
        if !requested.is_wildcard() {
            return self.grants_as(kind, requested.as_str());
        }
        let (granted, cut) = self.lists(kind);
        granted.iter().any(|d| {
            d.intersects(requested) && !cut.iter().any(|n| n.covers(d) || n.covers(requested))
        })
    }
}

/// A role definition, compiled.
#[derive(Debug, Clone)]
pub struct Role {
    pub guid: Arc<str>,
    pub id: String,
    pub name: Arc<str>,
    pub blocks: Vec<PermissionBlock>,
    /// DataActions and NotDataActions patterns in all blocks.
    pub pattern_count: usize,
}

/// Roles with more patterns than this use the (role, action) memo.
pub const MEMO_MIN_PATTERNS: usize = 64;

/// A role assignment, resolved and compiled.
#[derive(Debug, Clone)]
pub struct Assignment {
    pub id: Arc<str>,
    pub principal: Uuid,
    pub role: usize,
    /// The assignment's scope; [`Snapshot::scope`] gives it back.
    pub scope_id: ScopeId,
    /// `None`: unconditional. `Some(Err)`: a condition that cannot be evaluated — never grants.
    /// Boxed: few assignments have one, and a million are held.
    pub condition: Option<Box<Result<Condition, String>>>,
    /// `None`: always in force. `Some`: a PIM schedule instance's window in
    /// [`Snapshot::windows`]; it grants only inside it. Fits the struct's padding: an
    /// assignment without a window costs no byte and one branch.
    pub window: Option<WindowId>,
}

/// The index of a [`Window`] in [`Snapshot::windows`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowId(std::num::NonZeroU32);

impl WindowId {
    /// The id of the window at `index`, if it fits.
    pub fn new(index: usize) -> Option<Self> {
        u32::try_from(index + 1)
            .ok()
            .and_then(std::num::NonZeroU32::new)
            .map(WindowId)
    }

    /// The window's index in [`Snapshot::windows`].
    pub fn index(self) -> usize {
        self.0.get() as usize - 1
    }
}

/// When a PIM schedule instance grants: `start <= t < end` (no end: from `start` on), to
/// the millisecond.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub start: Timestamp,
    pub end: Option<Timestamp>,
    /// The schedule instance the window is of.
    pub instance: Arc<str>,
}

impl Window {
    /// Whether the window holds `now`.
    pub fn contains(&self, now: Timestamp) -> bool {
        self.start <= now && self.end.is_none_or(|end| now < end)
    }

    /// The first of start and end after `now`, when the answer may change.
    pub fn next_boundary(&self, now: Timestamp) -> Option<Timestamp> {
        if now < self.start {
            Some(self.start)
        } else {
            self.end.filter(|end| now < *end)
        }
    }
}

/// A PIM schedule instance that grants nothing: an eligibility, or an assignment instance
/// whose status never grants. Kept for `explain`.
#[derive(Debug, Clone)]
pub struct InertSchedule {
    pub id: Arc<str>,
    pub principal: Uuid,
    /// Lower-cased role GUID (the last segment of `roleDefinitionId`).
    pub role_guid: Box<str>,
    pub scope: Scope,
    pub start: Option<Timestamp>,
    pub end: Option<Timestamp>,
    pub status: Option<Box<str>>,
    /// An eligibility (else an assignment instance of a status that never grants).
    pub eligibility: bool,
}

/// A deny assignment, compiled.
#[derive(Debug, Clone)]
pub struct Deny {
    pub id: Arc<str>,
    pub name: Arc<str>,
    pub blocks: Vec<PermissionBlock>,
    pub principals: Vec<Uuid>,
    pub excluded: Vec<Uuid>,
    pub applies_to_children: bool,
    pub scope: Scope,
    pub scope_id: ScopeId,
    /// As for assignments, but an unevaluable condition makes the deny apply (fail closed).
    pub condition: Option<Result<Condition, String>>,
}

/// Parses an object id, recording a diagnostic at `origin()` when it is not a GUID in the
/// hyphenated 8-4-4-4-12 form ARM and Entra ID write (either case; no braces, `urn:uuid:`,
/// bare hex digits or spaces). The origin is built only then: a load parses a million.
pub fn parse_principal(
    text: &str,
    origin: impl FnOnce() -> Origin,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<Uuid> {
    match object_id(text) {
        Some(id) => Some(id),
        None => {
            diagnostics.push(Diagnostic::error(
                origin(),
                format!("principal id `{text}` is not an object id (GUID)"),
            ));
            None
        }
    }
}

/// Compiles an object's ABAC condition: `None` without one, `Some(Err)` (with a warning, or
/// an error past Azure's limits) for one that cannot be evaluated.
pub fn compile_condition(
    text: Option<&str>,
    version: Option<&str>,
    origin: &Origin,
    diagnostics: &mut Vec<Diagnostic>,
    consequence: &str,
) -> Option<Result<Condition, String>> {
    let text = text.filter(|t| !t.trim().is_empty())?;
    if let Some(v) = version.filter(|v| *v != "2.0") {
        let message = format!("condition version `{v}` is not supported (only 2.0)");
        diagnostics.push(Diagnostic::warning(
            origin.field("conditionVersion"),
            format!("{message}; {consequence}"),
        ));
        return Some(Err(message));
    }
    match Condition::parse(text) {
        Ok(c) => Some(Ok(c)),
        // Azure refuses such a condition: the object is not one it could hold.
        Err(e) if e.is_limit() => {
            diagnostics.push(Diagnostic::error(origin.field("condition"), e.to_string()));
            Some(Err(e.to_string()))
        }
        Err(e) => {
            let e = e.to_string();
            diagnostics.push(Diagnostic::warning(
                origin.field("condition"),
                format!("condition cannot be evaluated: {e}; {consequence}"),
            ));
            Some(Err(e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(data: &[&str], not_data: &[&str]) -> PermissionBlock {
        PermissionBlock::compile(&Permission {
            data_actions: data.iter().map(|a| a.to_string()).collect(),
            not_data_actions: not_data.iter().map(|a| a.to_string()).collect(),
            ..Permission::default()
        })
    }

    /// The window id lives in the padding: an assignment is no larger with it.
    #[test]
    fn a_window_costs_an_assignment_no_byte() {
        assert_eq!(
            std::mem::size_of::<Assignment>(),
            std::mem::size_of::<(Arc<str>, Uuid, usize, ScopeId, Option<Box<u8>>)>()
        );
    }

    /// A wildcard request touches a deny block unless NotDataActions take away what the
    /// block's DataActions name (or the whole request).
    #[test]
    fn a_wildcard_request_touches_what_not_data_actions_leave() {
        let all = ActionPattern::new("Microsoft.ContainerService/managedClusters/*");
        let secrets = ["Microsoft.ContainerService/managedClusters/secrets/*"];
        assert!(block(&secrets, &[]).touches(&all));
        assert!(!block(&secrets, &secrets).touches(&all));
        assert!(!block(&secrets, &["Microsoft.ContainerService/managedClusters/*"]).touches(&all));
        assert!(
            block(
                &secrets,
                &["Microsoft.ContainerService/managedClusters/pods/*"]
            )
            .touches(&all)
        );
    }
}

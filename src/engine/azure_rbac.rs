//! Azure RBAC over the index: deny assignments first, then role assignments at the request
//! scope or an ancestor, for the requester's own principals only.

use crate::model::action::ActionKind;
use crate::model::mapping::AttributeSource;
use crate::model::{ActionPattern, Timestamp};
use crate::policy::compiled::{Assignment, Deny, PermissionBlock, WindowId};
use crate::policy::index::{PrincipalEntry, ScopeId, Snapshot};
use crate::policy::known_actions::KnownAction;
use crate::policy::target::AzureTarget;
use std::cell::Cell;

/// What Azure RBAC says about a mapped request. Actions are named by their index in the
/// target's actions, so the caller can move the one it reports instead of copying it.
#[derive(Debug, Clone)]
pub enum AzureOutcome<'s> {
    /// A deny assignment (its index in [`Snapshot::denies`]) applies to one of the actions.
    Denied {
        deny: &'s Deny,
        index: u32,
        action: usize,
    },
    /// Every action is granted; the first granting assignment per action, with its index in
    /// [`Snapshot::assignments`].
    Allowed {
        by: smallvec::SmallVec<[(u32, &'s Assignment); 2]>,
        action: usize,
    },
    /// Some action is not granted.
    NotGranted { action: usize },
}

/// The interned scope chain of a request: its namespace scope (if any) and the cluster's
/// precomputed chain. No allocation, no string building.
pub struct ScopeChain<'s> {
    namespace: Option<ScopeId>,
    cluster: &'s [ScopeId],
    /// The request's own scope id, for `doNotApplyToChildScopes`.
    pub exact: Option<ScopeId>,
}

impl<'s> ScopeChain<'s> {
    pub fn of(snapshot: &'s Snapshot, namespace: Option<&str>) -> ScopeChain<'s> {
        let cluster = &snapshot.cluster;
        match namespace {
            Some(ns) => {
                let ns_id = cluster.namespaces.get(ns).copied();
                ScopeChain {
                    namespace: ns_id,
                    cluster: &cluster.chain,
                    exact: ns_id,
                }
            }
            None => ScopeChain {
                namespace: None,
                cluster: &cluster.chain,
                exact: cluster.cluster_id,
            },
        }
    }

    fn contains(&self, id: ScopeId) -> bool {
        self.namespace == Some(id) || self.cluster.contains(&id)
    }
}

/// The decision time, and the next start or end of a time-bound assignment's window after
/// it among the windows a decision considered: until then the answer stands.
#[derive(Debug, Default)]
pub struct DecisionTime {
    now: Option<Timestamp>,
    next_boundary: Cell<Option<Timestamp>>,
}

impl DecisionTime {
    /// A decision taken at `now` (`None`: unknown, no time-bound assignment grants).
    pub fn at(now: Option<Timestamp>) -> Self {
        DecisionTime {
            now,
            next_boundary: Cell::new(None),
        }
    }

    /// Whether the window `id` holds the decision time, noting its next boundary.
    #[inline(never)]
    pub fn admits(&self, snapshot: &Snapshot, id: WindowId) -> bool {
        let (Some(now), Some(window)) = (self.now, snapshot.windows.get(id.index())) else {
            return false;
        };
        if let Some(boundary) = window.next_boundary(now) {
            let next = self.next_boundary.get();
            self.next_boundary
                .set(Some(next.map_or(boundary, |n| n.min(boundary))));
        }
        window.contains(now)
    }

    /// The earliest boundary noted (see [`crate::model::Decision::valid_until`]).
    pub fn next_boundary(&self) -> Option<Timestamp> {
        self.next_boundary.get()
    }
}

/// Evaluates a mapped request for the requester's principals as the policy knows them
/// (object id and groups that the policy names; see [`Snapshot::principal`]) at `time`.
pub fn evaluate<'s>(
    snapshot: &'s Snapshot,
    principals: &[&'s PrincipalEntry],
    target: &AzureTarget<'_>,
    time: &DecisionTime,
) -> AzureOutcome<'s> {
    let chain = ScopeChain::of(snapshot, target.namespace);
    if let Some((index, deny, action)) = find_deny(snapshot, principals, target, &chain) {
        return AzureOutcome::Denied {
            deny,
            index,
            action,
        };
    }
    let mut by = smallvec::SmallVec::new();
    let interned = target.interned();
    for (i, action) in target.actions().iter().enumerate() {
        match find_grant(
            snapshot,
            principals,
            action,
            interned,
            &target.attributes,
            &chain,
            time,
        ) {
            Some(a) => by.push(a),
            None => return AzureOutcome::NotGranted { action: i },
        }
    }
    AzureOutcome::Allowed { by, action: 0 }
}

fn find_deny<'s>(
    snapshot: &'s Snapshot,
    principals: &[&'s PrincipalEntry],
    target: &AzureTarget<'_>,
    chain: &ScopeChain<'_>,
) -> Option<(u32, &'s Deny, usize)> {
    let everyone = snapshot.everyone();
    let interned = target.interned();
    for entry in principals.iter().copied().chain(everyone) {
        for (index, deny) in entry
            .denies
            .iter()
            .filter_map(|i| Some((*i, snapshot.denies.get(*i as usize)?)))
        {
            if !chain.contains(deny.scope_id) {
                continue;
            }
            if !deny.applies_to_children && chain.exact != Some(deny.scope_id) {
                continue;
            }
            if deny
                .excluded
                .iter()
                .any(|x| principals.iter().any(|p| p.id == *x))
            {
                continue;
            }
            if let Some(known) = interned {
                // One action, interned: which denies name it was worked out at load.
                if known.denied_by(index as usize)
                    && deny_condition_applies(deny, &known.pattern, &target.attributes)
                {
                    return Some((index, deny, 0));
                }
                continue;
            }
            for (i, action) in target.actions().iter().enumerate() {
                if deny_covers(deny, action, &target.attributes) {
                    return Some((index, deny, i));
                }
            }
        }
    }
    None
}

/// Whether a deny assignment hits an action (shared with the reference evaluator).
pub fn deny_covers(deny: &Deny, action: &ActionPattern, attributes: &dyn AttributeSource) -> bool {
    deny.blocks.iter().any(|b| b.touches(action))
        && deny_condition_applies(deny, action, attributes)
}

/// Whether a deny assignment's condition lets it apply to an action its permissions name.
pub(super) fn deny_condition_applies(
    deny: &Deny,
    action: &ActionPattern,
    attributes: &dyn AttributeSource,
) -> bool {
    match &deny.condition {
        // A condition that cannot be evaluated for this request: the deny applies.
        Some(Ok(c)) if !action.is_wildcard() => c.eval(action.as_str(), attributes).unwrap_or(true),
        // No condition, or one that cannot be evaluated: the deny applies (fail closed).
        _ => true,
    }
}

fn find_grant<'s>(
    snapshot: &'s Snapshot,
    principals: &[&'s PrincipalEntry],
    action: &ActionPattern,
    interned: Option<&KnownAction>,
    attributes: &dyn AttributeSource,
    chain: &ScopeChain<'_>,
    time: &DecisionTime,
) -> Option<(u32, &'s Assignment)> {
    let applicable = || {
        principals
            .iter()
            .flat_map(|p| p.assignments.iter())
            .filter(|held| chain.contains(held.scope_id))
            .filter_map(|held| Some((held.index, snapshot.assignments.get(held.index as usize)?)))
            // A time-bound (PIM) assignment applies only inside its window.
            .filter(|(_, a)| a.window.is_none_or(|w| time.admits(snapshot, w)))
    };
    if !action.is_wildcard() {
        let text = action.as_str();
        // An interned action says which roles grant it; any other is matched against patterns.
        return match interned {
            Some(known) => applicable()
                .find(|(_, a)| known.granted_by(a.role) && condition_holds(a, text, attributes)),
            None => applicable().find(|(_, a)| assignment_grants(snapshot, a, text, attributes)),
        };
    }
    let blocks: Vec<((u32, &Assignment), &PermissionBlock)> = applicable()
        .filter(|(_, a)| a.condition.is_none())
        .filter_map(|(i, a)| snapshot.roles.get(a.role).map(|r| ((i, a), r)))
        .flat_map(|(a, r)| r.blocks.iter().map(move |b| (a, b)))
        .collect();
    let only_blocks: Vec<&PermissionBlock> = blocks.iter().map(|(_, b)| *b).collect();
    blocks
        .iter()
        .find(|(_, b)| covers_pattern(b, ActionKind::Data, action, &only_blocks))
        .map(|(a, _)| *a)
}

/// Whether an assignment grants a concrete action (role permissions and condition).
pub fn assignment_grants(
    snapshot: &Snapshot,
    assignment: &Assignment,
    action: &str,
    attributes: &dyn AttributeSource,
) -> bool {
    snapshot.role_grants(assignment.role, action) && condition_holds(assignment, action, attributes)
}

/// Whether an assignment's condition (if any) holds for a concrete action.
pub(super) fn condition_holds(
    assignment: &Assignment,
    action: &str,
    attributes: &dyn AttributeSource,
) -> bool {
    match assignment.condition.as_deref() {
        None => true,
        // A condition that cannot be evaluated for this request does not grant.
        Some(Ok(c)) => c.eval(action, attributes).unwrap_or(false),
        Some(Err(_)) => false,
    }
}

/// Whether `block` grants every operation of `kind` in the wildcard `requested`, where the
/// parts its NotActions or NotDataActions cut out may be granted whole by another block of
/// `all`.
pub fn covers_pattern(
    block: &PermissionBlock,
    kind: ActionKind,
    requested: &ActionPattern,
    all: &[&PermissionBlock],
) -> bool {
    let (granted, cut) = block.lists(kind);
    if !granted.iter().any(|d| d.covers(requested)) {
        return false;
    }
    cut.iter().filter(|n| n.intersects(requested)).all(|cut| {
        all.iter().any(|other| {
            let (granted, not) = other.lists(kind);
            granted.iter().any(|d| d.covers(cut)) && !not.iter().any(|n| n.intersects(cut))
        })
    })
}

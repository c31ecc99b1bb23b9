//! Azure RBAC over the index: deny assignments first, then role assignments at the request
//! scope or an ancestor, for the requester's own principals only.

use crate::model::{ActionPattern, Scope};
use crate::policy::condition::Attributes;
use crate::policy::index::{Assignment, Deny, EVERYONE, PermissionBlock, ScopeId, Snapshot};
use crate::sar::map::AzureTarget;
use uuid::Uuid;

/// What Azure RBAC says about a mapped request.
#[derive(Debug, Clone)]
pub enum AzureOutcome<'s> {
    /// A deny assignment applies to one of the actions.
    Denied {
        deny: &'s Deny,
        action: ActionPattern,
    },
    /// Every action is granted; the first granting assignment per action.
    Allowed {
        by: Vec<&'s Assignment>,
        action: ActionPattern,
    },
    /// Some action is not granted.
    NotGranted { action: ActionPattern },
}

/// The interned scope chain of a request, nearest first, and its own scope id.
pub struct ScopeChain {
    pub ids: Vec<ScopeId>,
    pub exact: Option<ScopeId>,
}

impl ScopeChain {
    /// Works the chain out from the snapshot's per-cluster tables: no string building.
    pub fn of(snapshot: &Snapshot, namespace: Option<&str>) -> ScopeChain {
        let cluster = &snapshot.cluster;
        match namespace {
            Some(ns) => {
                let ns_id = cluster.namespaces.get(ns).copied();
                let mut ids = Vec::with_capacity(cluster.chain.len() + 1);
                ids.extend(ns_id);
                ids.extend_from_slice(&cluster.chain);
                ScopeChain { ids, exact: ns_id }
            }
            None => ScopeChain {
                ids: cluster.chain.clone(),
                exact: cluster.cluster_id,
            },
        }
    }

    fn contains(&self, id: ScopeId) -> bool {
        self.ids.contains(&id)
    }
}

/// Evaluates a mapped request for a principal set (object id first, then groups).
pub fn evaluate<'s>(
    snapshot: &'s Snapshot,
    principals: &[Uuid],
    target: &AzureTarget,
) -> AzureOutcome<'s> {
    let chain = ScopeChain::of(snapshot, target.namespace.as_deref());
    if let Some((deny, action)) = find_deny(snapshot, principals, target, &chain) {
        return AzureOutcome::Denied { deny, action };
    }
    let mut by = Vec::with_capacity(target.actions.len());
    for action in &target.actions {
        match find_grant(snapshot, principals, action, &target.attributes, &chain) {
            Some(a) => by.push(a),
            None => {
                return AzureOutcome::NotGranted {
                    action: action.clone(),
                };
            }
        }
    }
    let action = target
        .actions
        .first()
        .cloned()
        .unwrap_or_else(|| ActionPattern::new(""));
    AzureOutcome::Allowed { by, action }
}

fn find_deny<'s>(
    snapshot: &'s Snapshot,
    principals: &[Uuid],
    target: &AzureTarget,
    chain: &ScopeChain,
) -> Option<(&'s Deny, ActionPattern)> {
    for p in principals.iter().chain(std::iter::once(&EVERYONE)) {
        for deny in snapshot.denies_of(p) {
            if !chain.contains(deny.scope_id) {
                continue;
            }
            if !deny.applies_to_children && chain.exact != Some(deny.scope_id) {
                continue;
            }
            if deny.excluded.iter().any(|x| principals.contains(x)) {
                continue;
            }
            for action in &target.actions {
                if deny_covers(deny, action, &target.attributes) {
                    return Some((deny, action.clone()));
                }
            }
        }
    }
    None
}

/// Whether a deny assignment hits an action (shared with the reference evaluator).
pub fn deny_covers(deny: &Deny, action: &ActionPattern, attributes: &Attributes) -> bool {
    if !deny.blocks.iter().any(|b| b.touches(action)) {
        return false;
    }
    match &deny.condition {
        Some(Ok(c)) if !action.is_wildcard() => c.eval(action.as_str(), attributes),
        // No condition, or one that cannot be evaluated: the deny applies (fail closed).
        _ => true,
    }
}

fn find_grant<'s>(
    snapshot: &'s Snapshot,
    principals: &[Uuid],
    action: &ActionPattern,
    attributes: &Attributes,
    chain: &ScopeChain,
) -> Option<&'s Assignment> {
    let applicable = || {
        principals
            .iter()
            .flat_map(|p| snapshot.assignments_of(p))
            .filter(|a| chain.contains(a.scope_id))
    };
    if !action.is_wildcard() {
        return applicable().find(|a| assignment_grants(snapshot, a, action.as_str(), attributes));
    }
    let blocks: Vec<(&Assignment, &PermissionBlock)> = applicable()
        .filter(|a| a.condition.is_none())
        .filter_map(|a| snapshot.roles.get(a.role).map(|r| (a, r)))
        .flat_map(|(a, r)| r.blocks.iter().map(move |b| (a, b)))
        .collect();
    let only_blocks: Vec<&PermissionBlock> = blocks.iter().map(|(_, b)| *b).collect();
    blocks
        .iter()
        .find(|(_, b)| covers_pattern(b, action, &only_blocks))
        .map(|(a, _)| *a)
}

/// Whether an assignment grants a concrete action (role permissions and condition).
pub fn assignment_grants(
    snapshot: &Snapshot,
    assignment: &Assignment,
    action: &str,
    attributes: &Attributes,
) -> bool {
    if !snapshot.role_grants(assignment.role, action) {
        return false;
    }
    match &assignment.condition {
        None => true,
        Some(Ok(c)) => c.eval(action, attributes),
        Some(Err(_)) => false,
    }
}

/// Whether `block` grants every action of the wildcard `requested`, where the parts its
/// NotDataActions cut out may be granted whole by another block of `all`.
pub fn covers_pattern(
    block: &PermissionBlock,
    requested: &ActionPattern,
    all: &[&PermissionBlock],
) -> bool {
    if !block.data_actions.iter().any(|d| d.covers(requested)) {
        return false;
    }
    block
        .not_data_actions
        .iter()
        .filter(|n| n.intersects(requested))
        .all(|cut| {
            all.iter().any(|other| {
                other.data_actions.iter().any(|d| d.covers(cut))
                    && !other.not_data_actions.iter().any(|n| n.intersects(cut))
            })
        })
}

/// The scope a decision was checked at, for reasons.
pub fn request_scope(snapshot: &Snapshot, target: &AzureTarget) -> Option<Scope> {
    snapshot.cluster.cluster.as_ref().map(|c| target.scope(c))
}

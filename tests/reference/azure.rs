//! Azure RBAC for one mapped request: deny assignments first (any that covers any action
//! denies), then every action must be granted by a role assignment of the requester's
//! principals at the request scope or above (DataActions − NotDataActions per block, its
//! condition holding). A wildcard action is granted only by unconditioned assignments whose
//! block covers it whole, every NotDataActions cut granted whole by another such block.

use super::condition::{self, Attributes};
use super::glob;
use super::scope::{self, Hierarchy};
use super::{EVERYONE, role_of};
use scopegate::policy::PolicySet;
use scopegate::policy::schema::{Permission, RoleAssignment};

/// Azure's answer: denied by these deny assignments, allowed by these role assignments, or
/// not granted.
pub enum Answer {
    Denied(Vec<String>),
    Allowed(Vec<String>),
    NotGranted,
}

pub struct Request<'a> {
    /// Lower-cased object ids: the user's and its groups'.
    pub principals: Vec<String>,
    pub scope: String,
    pub actions: &'a [String],
    pub attributes: Attributes<'a>,
}

fn is_wildcard(action: &str) -> bool {
    action.contains('*')
}

fn block_grants(block: &Permission, action: &str) -> bool {
    block.data_actions.iter().any(|d| glob::matches(d, action))
        && !block
            .not_data_actions
            .iter()
            .any(|n| glob::matches(n, action))
}

/// Whether a deny block reaches some action of `action` (for a wildcard: some DataAction
/// overlaps it and no NotDataAction takes away all of that DataAction or of the request).
fn deny_block_hits(block: &Permission, action: &str) -> bool {
    if !is_wildcard(action) {
        return block_grants(block, action);
    }
    block.data_actions.iter().any(|d| {
        glob::intersects(d, action)
            && !block
                .not_data_actions
                .iter()
                .any(|n| glob::covers(n, d) || glob::covers(n, action))
    })
}

pub fn evaluate(set: &PolicySet, assignments: &[RoleAssignment], request: &Request<'_>) -> Answer {
    let hierarchy = Hierarchy::of(set);
    let holds = |p: &str| request.principals.iter().any(|x| x.eq_ignore_ascii_case(p));
    let mut denied = Vec::new();
    for (_, deny) in &set.deny_assignments {
        let named = deny
            .principals
            .iter()
            .any(|p| p.id == EVERYONE || holds(&p.id));
        let excluded = deny.exclude_principals.iter().any(|p| holds(&p.id));
        let at_scope = if deny.do_not_apply_to_child_scopes {
            scope::same(&deny.scope, &request.scope)
        } else {
            scope::covers(&deny.scope, &request.scope, &hierarchy)
        };
        let hits = request.actions.iter().any(|action| {
            let listed = deny.permissions.iter().any(|b| deny_block_hits(b, action));
            // A condition that cannot be evaluated, or any condition on a wildcard: applies.
            let condition = match &deny.condition {
                Some(c) if !is_wildcard(action) => {
                    condition::eval(c, action, &request.attributes).unwrap_or(true)
                }
                _ => true,
            };
            listed && condition
        });
        if named && !excluded && at_scope && hits {
            denied.push(deny.id.clone());
        }
    }
    if !denied.is_empty() {
        return Answer::Denied(denied);
    }
    // The applicable assignments with their role's permission blocks.
    let applicable: Vec<(&RoleAssignment, &[Permission])> = assignments
        .iter()
        .filter(|ra| {
            holds(&ra.principal_id) && scope::covers(&ra.scope, &request.scope, &hierarchy)
        })
        .filter_map(|ra| role_of(set, ra).map(|r| (ra, r.permissions.as_slice())))
        .collect();
    let unconditioned: Vec<&Permission> = applicable
        .iter()
        .filter(|(ra, _)| ra.condition.is_none())
        .flat_map(|(_, blocks)| blocks.iter())
        .collect();
    let mut granted_by = Vec::new();
    for action in request.actions {
        let mut any = false;
        for (ra, blocks) in &applicable {
            let grants = if is_wildcard(action) {
                ra.condition.is_none()
                    && blocks
                        .iter()
                        .any(|b| covers_whole(b, action, &unconditioned))
            } else {
                let condition = match &ra.condition {
                    None => true,
                    Some(c) => condition::eval(c, action, &request.attributes).unwrap_or(false),
                };
                blocks.iter().any(|b| block_grants(b, action)) && condition
            };
            if grants {
                any = true;
                if !granted_by.contains(&ra.id) {
                    granted_by.push(ra.id.clone());
                }
            }
        }
        if !any {
            return Answer::NotGranted;
        }
    }
    Answer::Allowed(granted_by)
}

/// Whether `block` grants all of the wildcard `action`, its NotDataActions cuts each granted
/// whole by some block of `all` that cuts nothing out of them.
fn covers_whole(block: &Permission, action: &str, all: &[&Permission]) -> bool {
    block.data_actions.iter().any(|d| glob::covers(d, action))
        && block
            .not_data_actions
            .iter()
            .filter(|n| glob::intersects(n, action))
            .all(|cut| {
                all.iter().any(|other| {
                    other.data_actions.iter().any(|d| glob::covers(d, cut))
                        && !other
                            .not_data_actions
                            .iter()
                            .any(|n| glob::intersects(n, cut))
                })
            })
}

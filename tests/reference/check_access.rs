//! Azure CheckAccess at any ARM scope, one decision per operation (spec identity.md F3,
//! azure-rbac.md B3–B5): Denied if a deny assignment of the principals (or Everyone, none of
//! them excluded) at the resource or above (only at it when it does not apply to children)
//! touches the operation through the list of its kind minus that kind's Not-list, a
//! condition that cannot be evaluated counting as applying; else Allowed if a role assignment
//! of a principal at the resource or above has a role block that grants it the same way, its
//! condition true; else NotAllowed. Concrete operation ids only (no `*`).

use super::condition::{self, Attributes};
use super::glob;
use super::scope::{self, Hierarchy};
use super::{EVERYONE, role_of};
use scopegate::model::check_access::AccessDecision;
use scopegate::policy::PolicySet;
use scopegate::policy::schema::{Permission, RoleAssignment};
use std::collections::{BTreeMap, BTreeSet};

/// The action prefix whose request attributes Kubernetes conditions read.
const PREFIX: &str = "Microsoft.ContainerService/managedClusters";

/// One operation asked about.
pub struct Operation<'a> {
    pub id: &'a str,
    pub is_data_action: bool,
    /// Attribute names lower-cased, as the CheckAccess decoder gives them.
    pub attributes: &'a BTreeMap<String, String>,
}

/// The question: principals (object id and groups, any case), the resource, the operations.
pub struct Question<'a> {
    pub principals: Vec<String>,
    pub resource: &'a str,
    pub operations: Vec<Operation<'a>>,
}

/// The lists a block names for one kind of operation: granted (or denied) and cut out.
fn lists(block: &Permission, is_data_action: bool) -> (&[String], &[String]) {
    if is_data_action {
        (&block.data_actions, &block.not_data_actions)
    } else {
        (&block.actions, &block.not_actions)
    }
}

/// Whether `block` names the operation: some pattern of its list matches and none of its
/// Not-list does.
fn block_names(block: &Permission, op: &Operation<'_>) -> bool {
    let (named, cut) = lists(block, op.is_data_action);
    named.iter().any(|p| glob::matches(p, op.id)) && !cut.iter().any(|p| glob::matches(p, op.id))
}

/// What a condition may read: the operation's request attributes.
fn attributes<'a>(op: &'a Operation<'_>) -> Attributes<'a> {
    let get = |name: &str| {
        op.attributes
            .get(&format!("{PREFIX}/{name}").to_lowercase())
            .map_or("", String::as_str)
    };
    Attributes {
        prefix: PREFIX,
        group: get("customResources:group"),
        resource: get("customResources:kind"),
        subresource: get("resources:subresource"),
    }
}

/// One operation's decision and the id of every deny assignment (Denied) or role assignment
/// (Allowed) that decides it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub decision: AccessDecision,
    pub deciders: BTreeSet<String>,
}

/// The decision for each operation, in order.
pub fn decide(
    set: &PolicySet,
    assignments: &[RoleAssignment],
    question: &Question<'_>,
) -> Vec<Decision> {
    let hierarchy = Hierarchy::of(set);
    let holds = |id: &str| {
        question
            .principals
            .iter()
            .any(|p| p.eq_ignore_ascii_case(id))
    };
    question
        .operations
        .iter()
        .map(|op| {
            assert!(!op.id.contains('*'), "the reference takes concrete ids only");
            let denied: BTreeSet<String> = set.deny_assignments.iter().map(|(_, d)| d).filter(|deny| {
                let named = deny
                    .principals
                    .iter()
                    .any(|p| p.id == EVERYONE || holds(&p.id));
                let excluded = deny.exclude_principals.iter().any(|p| holds(&p.id));
                let reaches = if deny.do_not_apply_to_child_scopes {
                    scope::same(&deny.scope, question.resource)
                } else {
                    scope::covers(&deny.scope, question.resource, &hierarchy)
                };
                let touches = deny.permissions.iter().any(|b| block_names(b, op));
                // A condition that cannot be evaluated: the deny applies.
                let applies = deny.condition.as_ref().is_none_or(|c| {
                    condition::eval(c, op.id, &attributes(op)).unwrap_or(true)
                });
                named && !excluded && reaches && touches && applies
            }).map(|deny| deny.id.clone()).collect();
            if !denied.is_empty() {
                return Decision { decision: AccessDecision::Denied, deciders: denied };
            }
            let allowed: BTreeSet<String> = assignments.iter().filter(|a| {
                holds(&a.principal_id)
                    && scope::covers(&a.scope, question.resource, &hierarchy)
                    && role_of(set, a).is_some_and(|r| r.permissions.iter().any(|b| block_names(b, op)))
                    // A condition that cannot be evaluated does not grant.
                    && a.condition.as_ref().is_none_or(|c| {
                        condition::eval(c, op.id, &attributes(op)).unwrap_or(false)
                    })
            }).map(|a| a.id.clone()).collect();
            let decision = if allowed.is_empty() {
                AccessDecision::NotAllowed
            } else {
                AccessDecision::Allowed
            };
            Decision { decision, deciders: allowed }
        })
        .collect()
}

//! Azure CheckAccess at any ARM scope: for each operation, Denied when a deny assignment
//! blocks it, Allowed when a role assignment grants it, else NotAllowed. Control-plane
//! operations are matched against `Actions`/`NotActions`, data operations against
//! `DataActions`/`NotDataActions`; one kind never grants the other.

use super::azure_rbac::{DecisionTime, condition_holds, covers_pattern, deny_condition_applies};
use super::workload::WorkloadChain;
use crate::model::action::ActionKind;
use crate::model::check_access::{
    AccessDecision, CheckAccess, DenyingAssignment, GrantingAssignment, OperationDecision,
    OperationRequest, Subject, TIME_TO_LIVE_MS,
};
use crate::model::mapping::Attributes;
use crate::model::{ActionPattern, Scope, Timestamp};
use crate::policy::Snapshot;
use crate::policy::compiled::{Assignment, Deny, PermissionBlock};
use crate::policy::index::Holdings;
use smallvec::SmallVec;
use std::sync::Arc;
use uuid::Uuid;

/// The answers to a CheckAccess question, one per operation in request order, and until
/// when they stand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckAccessAnswer {
    pub decisions: Vec<OperationDecision>,
    /// The next start or end of a time-bound (PIM) assignment's window that could change an
    /// answer; `None`: no window bounds them.
    pub valid_until: Option<Timestamp>,
}

impl CheckAccessAnswer {
    /// How long a caller may keep the answers from `now`: Azure's five minutes, or less when
    /// a time-bound assignment's window starts or ends before.
    pub fn time_to_live_ms(&self, now: Timestamp) -> u64 {
        let until_boundary = self
            .valid_until
            .map(|until| u64::try_from(until.unix_millis() - now.unix_millis()).unwrap_or(0));
        until_boundary.map_or(TIME_TO_LIVE_MS, |ms| ms.min(TIME_TO_LIVE_MS))
    }
}

/// Answers a CheckAccess question at `now`.
pub fn decide(snapshot: &Snapshot, question: &CheckAccess, now: Timestamp) -> CheckAccessAnswer {
    match &question.subject {
        Subject::Principal { object_id, groups } => {
            let principals = principal_set(snapshot, *object_id, groups);
            decide_for(
                snapshot,
                &principals,
                &question.actions,
                &question.resource,
                now,
            )
        }
        // Verified by the caller first; an unverified token never grants.
        Subject::ServiceAccountToken { .. } => CheckAccessAnswer {
            decisions: question
                .actions
                .iter()
                .map(|_| {
                    OperationDecision::not_allowed(Some(Arc::from(
                        "the service-account token was not verified",
                    )))
                })
                .collect(),
            valid_until: None,
        },
        Subject::ServiceAccount(account) => match super::workload::resolve(snapshot, account) {
            Ok(chain) => decide_for_chain(snapshot, &chain, question, now),
            Err(broken) => {
                let reason: Arc<str> = Arc::from(broken.to_string());
                CheckAccessAnswer {
                    decisions: question
                        .actions
                        .iter()
                        .map(|_| OperationDecision::not_allowed(Some(reason.clone())))
                        .collect(),
                    valid_until: None,
                }
            }
        },
    }
}

/// Answers for a service account through its managed identities: each identity's principals
/// decide on their own; an operation is Denied if any identity is denied it, else Allowed if
/// one is allowed it (in configured mode there is one identity).
fn decide_for_chain(
    snapshot: &Snapshot,
    chain: &WorkloadChain,
    question: &CheckAccess,
    now: Timestamp,
) -> CheckAccessAnswer {
    let mut combined: Option<CheckAccessAnswer> = None;
    for link in &chain.links {
        let principals = link.principals(snapshot);
        let mut answer = decide_for(
            snapshot,
            &principals,
            &question.actions,
            &question.resource,
            now,
        );
        let identity = format!(
            "managed identity `{}` (principal {}, federated by credential `{}`)",
            link.identity.name, link.identity.principal_id, link.credential.name
        );
        // One text per kind of decision met, shared by its operations.
        let mut reasons: [Option<Arc<str>>; 3] = [None, None, None];
        for d in &mut answer.decisions {
            let (slot, before, after) = match d.decision {
                AccessDecision::Allowed => (0, "as ", ""),
                AccessDecision::Denied => (1, "denied to ", ""),
                AccessDecision::NotAllowed => (2, "no role assignment of ", " grants it here"),
            };
            if let Some(slot) = reasons.get_mut(slot) {
                let text =
                    slot.get_or_insert_with(|| Arc::from(format!("{before}{identity}{after}")));
                d.reason = Some(text.clone());
            }
        }
        combined = Some(match combined {
            None => answer,
            Some(mut so_far) => {
                for (kept, other) in so_far.decisions.iter_mut().zip(answer.decisions) {
                    let rank = |d: AccessDecision| match d {
                        AccessDecision::Denied => 2,
                        AccessDecision::Allowed => 1,
                        AccessDecision::NotAllowed => 0,
                    };
                    if rank(other.decision) > rank(kept.decision) {
                        *kept = other;
                    }
                }
                so_far.valid_until = match (so_far.valid_until, answer.valid_until) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                so_far
            }
        });
    }
    combined.unwrap_or_else(|| CheckAccessAnswer {
        decisions: question
            .actions
            .iter()
            .map(|_| OperationDecision::not_allowed(None))
            .collect(),
        valid_until: None,
    })
}

/// The principals a subject acts as: its object id, the groups given, and with a directory
/// snapshot the object's transitive groups and the given groups' parents (an assignment to
/// a group applies to members of groups nested in it).
pub fn principal_set(snapshot: &Snapshot, object_id: Uuid, groups: &[Uuid]) -> SmallVec<[Uuid; 8]> {
    let mut set: SmallVec<[Uuid; 8]> = std::iter::once(object_id)
        .chain(groups.iter().copied())
        .collect();
    if let Some(directory) = snapshot.directory.as_deref() {
        // The directory's groups are transitive: the named ids' are all there is to add.
        let named = set.len();
        for i in 0..named {
            if let Some(&id) = set.get(i) {
                set.extend_from_slice(directory.groups_of_object(id));
            }
        }
    }
    sorted(set)
}

/// Sorted and without repeats: membership is then a binary search, whatever the number of
/// groups a caller sends.
fn sorted(mut set: SmallVec<[Uuid; 8]>) -> SmallVec<[Uuid; 8]> {
    set.sort_unstable();
    set.dedup();
    set
}

/// Answers each operation on `resource` for a subject acting as `principals` (sorted, no
/// repeats: see [`principal_set`]) at `now`.
pub fn decide_for(
    snapshot: &Snapshot,
    principals: &[Uuid],
    operations: &[OperationRequest],
    resource: &Scope,
    now: Timestamp,
) -> CheckAccessAnswer {
    let applicable = Applicable::gather(snapshot, principals, resource);
    let time = DecisionTime::at(Some(now));
    let decisions = operations
        .iter()
        .map(|op| applicable.decide(snapshot, op, &time))
        .collect();
    CheckAccessAnswer {
        decisions,
        valid_until: time.next_boundary(),
    }
}

/// The assignments and deny assignments that reach a resource for a set of principals,
/// gathered once per question: each operation then reads only these.
struct Applicable<'s> {
    assignments: SmallVec<[&'s Assignment; 16]>,
    denies: SmallVec<[(u32, &'s Deny); 4]>,
}

impl<'s> Applicable<'s> {
    fn gather(snapshot: &'s Snapshot, principals: &[Uuid], resource: &Scope) -> Self {
        let chain = snapshot.scope_chain(resource);
        let exact = snapshot.scope_id(resource);
        let mut assignments = SmallVec::new();
        let mut denies: SmallVec<[(u32, &'s Deny); 4]> = SmallVec::new();
        let mut add_deny = |index: u32| {
            if let Some(d) = snapshot.denies.get(index as usize)
                && (d.applies_to_children || exact == Some(d.scope_id))
                && !d
                    .excluded
                    .iter()
                    .any(|x| principals.binary_search(x).is_ok())
                && !denies.iter().any(|(i, _)| *i == index)
            {
                denies.push((index, d));
            }
        };
        let holdings: SmallVec<[&Holdings; 8]> = std::iter::once(snapshot.everyone_holdings())
            .chain(principals.iter().filter_map(|p| snapshot.holdings(p)))
            .collect();
        // Nearest scope first: the assignment reported as granting is the nearest one.
        for scope in &chain {
            for held in &holdings {
                for deny in held.denies_at(*scope) {
                    add_deny(deny.index);
                }
                assignments.extend(
                    held.assignments_at(*scope)
                        .iter()
                        .filter_map(|a| snapshot.assignments.get(a.index as usize)),
                );
            }
        }
        Applicable {
            assignments,
            denies,
        }
    }

    fn decide(
        &self,
        snapshot: &Snapshot,
        op: &OperationRequest,
        time: &DecisionTime,
    ) -> OperationDecision {
        let kind = ActionKind::of_data_flag(op.is_data_action);
        let action = ActionPattern::new(&op.id);
        if let Some(deny) = self
            .denies
            .iter()
            .map(|(_, d)| *d)
            .find(|d| deny_blocks(d, kind, &action, &op.attributes))
        {
            return OperationDecision {
                decision: AccessDecision::Denied,
                role_assignment: None,
                deny_assignment: Some(DenyingAssignment {
                    id: deny.id.clone(),
                    name: deny.name.clone(),
                    scope: Arc::from(deny.scope.key()),
                }),
                reason: None,
            };
        }
        let in_force = self
            .assignments
            .iter()
            .copied()
            // A time-bound (PIM) assignment applies only inside its window.
            .filter(|a| a.window.is_none_or(|w| time.admits(snapshot, w)));
        let granting = if action.is_wildcard() {
            let blocks: SmallVec<[(&Assignment, &PermissionBlock); 16]> = in_force
                .filter(|a| a.condition.is_none())
                .filter_map(|a| snapshot.roles.get(a.role).map(|r| (a, r)))
                .flat_map(|(a, r)| r.blocks.iter().map(move |b| (a, b)))
                .collect();
            let all: SmallVec<[&PermissionBlock; 16]> = blocks.iter().map(|(_, b)| *b).collect();
            blocks
                .iter()
                .find(|(_, b)| covers_pattern(b, kind, &action, &all))
                .map(|(a, _)| *a)
        } else {
            let text = action.as_str();
            in_force
                .filter(|a| {
                    snapshot
                        .roles
                        .get(a.role)
                        .is_some_and(|r| r.blocks.iter().any(|b| b.grants_as(kind, text)))
                })
                .find(|a| condition_holds(a, text, &op.attributes))
        };
        match granting {
            Some(a) => OperationDecision {
                decision: AccessDecision::Allowed,
                role_assignment: Some(granting_assignment(snapshot, a)),
                deny_assignment: None,
                reason: None,
            },
            None => OperationDecision::not_allowed(None),
        }
    }
}

/// Whether a deny assignment blocks an operation of `kind`.
fn deny_blocks(
    deny: &Deny,
    kind: ActionKind,
    action: &ActionPattern,
    attributes: &Attributes,
) -> bool {
    deny.blocks.iter().any(|b| b.touches_as(kind, action))
        && deny_condition_applies(deny, action, attributes)
}

/// The role assignment as CheckAccess reports it.
fn granting_assignment(snapshot: &Snapshot, a: &Assignment) -> GrantingAssignment {
    let role_definition_id = snapshot
        .roles
        .get(a.role)
        .map(|r| {
            if r.id.is_empty() {
                Arc::from(format!(
                    "/providers/Microsoft.Authorization/roleDefinitions/{}",
                    r.guid
                ))
            } else {
                Arc::from(r.id.as_str())
            }
        })
        .unwrap_or_else(|| Arc::from(""));
    GrantingAssignment {
        id: a.id.clone(),
        role_definition_id,
        principal_id: a.principal,
        scope: Arc::from(snapshot.scope(a.scope_id).map_or("", |s| s.key())),
        condition: None,
    }
}

/// `explain` of a CheckAccess question: who the subject is to the policy, the scope chain,
/// every deny and role assignment that reaches the resource, and each operation's answer with
/// what decided it. The answer is exactly what [`decide`] gives.
pub fn explain(
    snapshot: &Snapshot,
    question: &CheckAccess,
    now: Timestamp,
) -> (CheckAccessAnswer, String) {
    use std::fmt::Write;
    let answer = decide(snapshot, question, now);
    let mut out = String::new();
    let _ = writeln!(out, "resource:  {}", question.resource.key());
    let _ = writeln!(out, "policy:    generation {}", snapshot.generation);
    let _ = writeln!(out, "time:      {now}");
    if let Subject::Principal { object_id, groups } = &question.subject {
        let principals = principal_set(snapshot, *object_id, groups);
        let _ = writeln!(
            out,
            "subject:   object id {object_id}, {} group(s) given, {} principal(s) with the directory's groups",
            groups.len(),
            principals.len()
        );
        explain_principals(snapshot, &principals, &question.resource, &mut out);
    }
    if let Subject::ServiceAccount(account) = &question.subject {
        let _ = writeln!(out, "subject:   {account}");
        match super::workload::resolve(snapshot, account) {
            Ok(chain) => {
                for link in &chain.links {
                    let via = match chain.mode {
                        crate::model::workload::WorkloadMode::Configured => {
                            "its client-id annotation names"
                        }
                        crate::model::workload::WorkloadMode::Possible => {
                            "a credential trusts it as"
                        }
                    };
                    let _ = writeln!(
                        out,
                        "  chain:   ServiceAccount `{}/{}` -> {via} managed identity `{}` (client id {}, principal {})\n           -> federated credential `{}` (issuer `{}`, subject `{}`)",
                        account.namespace,
                        account.name,
                        link.identity.name,
                        link.identity.client_id,
                        link.identity.principal_id,
                        link.credential.name,
                        link.credential.issuer,
                        link.credential.subject,
                    );
                    let principals = link.principals(snapshot);
                    explain_principals(snapshot, &principals, &question.resource, &mut out);
                }
            }
            Err(broken) => {
                let _ = writeln!(out, "  chain broken: {broken}");
            }
        }
    }
    for (op, decision) in question.actions.iter().zip(&answer.decisions) {
        let kind = if op.is_data_action {
            "data action"
        } else {
            "action"
        };
        let _ = write!(out, "{kind} `{}`: {}", op.id, decision.decision.as_str());
        if let Some(a) = &decision.role_assignment {
            let _ = write!(out, " by role assignment `{}` at `{}`", a.id, a.scope);
        }
        if let Some(d) = &decision.deny_assignment {
            let _ = write!(out, " by deny assignment `{}` at `{}`", d.id, d.scope);
        }
        if let Some(reason) = &decision.reason {
            let _ = write!(out, " ({reason})");
        }
        let _ = writeln!(out);
    }
    if let Some(until) = answer.valid_until {
        let _ = writeln!(
            out,
            "holds:     until {until} (a time-bound assignment's window starts or ends then)"
        );
    }
    (answer, out)
}

/// The scope chain and the assignments that reach the resource for `principals`.
fn explain_principals(
    snapshot: &Snapshot,
    principals: &[Uuid],
    resource: &Scope,
    out: &mut String,
) {
    use std::fmt::Write;
    let _ = writeln!(out, "  scope chain (nearest first):");
    for scope in resource.ancestors(&snapshot.management_groups) {
        let held = if snapshot.scope_id(&scope).is_some() {
            ""
        } else {
            " (nothing assigned)"
        };
        let _ = writeln!(out, "    {}{held}", scope.key());
    }
    let applicable = Applicable::gather(snapshot, principals, resource);
    for (_, d) in &applicable.denies {
        let _ = writeln!(out, "  deny assignment `{}` at `{}`", d.id, d.scope.key());
    }
    for a in &applicable.assignments {
        let role = snapshot.roles.get(a.role).map_or("?", |r| &r.name);
        let scope = snapshot.scope(a.scope_id).map_or("?", |s| s.key());
        let window = match a.window.and_then(|w| snapshot.windows.get(w.index())) {
            Some(w) => format!(", time-bound from {}", w.start),
            None => String::new(),
        };
        let _ = writeln!(
            out,
            "  role assignment `{}`: `{role}` for {} at `{scope}`{window}",
            a.id, a.principal
        );
    }
    if applicable.assignments.is_empty() && applicable.denies.is_empty() {
        let _ = writeln!(
            out,
            "  no role or deny assignment of these principals reaches the resource"
        );
    }
}

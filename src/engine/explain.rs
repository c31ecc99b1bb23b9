//! `scopegate explain`: the whole decision path in readable form — who the requester is to
//! each source, the action and scope chain, and every candidate assignment or binding with
//! why it did or did not apply.

use super::azure_rbac::{assignment_grants, deny_covers};
use super::k8s_rbac::{applies_to, describe, rule_allows};
use super::{
    EngineOptions, Exclusion, GroupsFrom, authorize, azure_gate, requester_names, target_of,
};
use crate::model::name_hash::object_id;
use crate::model::{AccessRequest, Decision, Scope, Timestamp};
use crate::policy::Snapshot;
use crate::policy::compiled::{Assignment, Deny, EVERYONE};
use crate::policy::target::AzureTarget;
use std::fmt::Write;
use std::sync::Arc;
use uuid::Uuid;

/// Explains a decision; the returned decision is exactly what [`authorize`] answers.
pub fn explain(
    snapshot: &Arc<Snapshot>,
    options: &EngineOptions,
    request: &AccessRequest,
) -> (Decision, String) {
    let decision = authorize(snapshot, options, request);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "request:   user `{}`, {} group(s), verb `{}`",
        request.user,
        request.groups.len(),
        request.verb()
    );
    if let Some(r) = &request.resource_attributes {
        let _ = writeln!(
            out,
            "           resource `{}{}{}` in group `{}`, namespace `{}`, name `{}`",
            r.resource,
            if r.subresource.is_empty() { "" } else { "/" },
            r.subresource,
            r.group,
            r.namespace,
            r.name
        );
    } else if let Some(n) = &request.non_resource_attributes {
        let _ = writeln!(out, "           path `{}`", n.path);
    }
    let _ = writeln!(out, "policy:    generation {}", snapshot.generation);
    match request.now {
        Some(now) => {
            let _ = writeln!(out, "time:      {now}");
        }
        None => {
            let _ = writeln!(
                out,
                "time:      unknown (time-bound assignments do not grant)"
            );
        }
    }
    explain_azure(snapshot, options, request, &mut out);
    explain_rbac(snapshot, request, &mut out);
    let _ = writeln!(
        out,
        "decision:  {} (source {})",
        decision.verdict,
        decision.source.as_str()
    );
    let _ = writeln!(out, "reason:    {}", decision.reason);
    if let Some(e) = &decision.evaluation_error {
        let _ = writeln!(out, "error:     {e}");
    }
    if let Some(until) = decision.valid_until {
        let _ = writeln!(
            out,
            "holds:     until {until} (a time-bound assignment's window starts or ends then)"
        );
    }
    (decision, out)
}

/// The Azure part of an explanation: the requester's principals, the action and scope
/// chain, then every deny assignment and role assignment that names a principal.
fn explain_azure(
    snapshot: &Snapshot,
    options: &EngineOptions,
    request: &AccessRequest,
    out: &mut String,
) {
    let _ = writeln!(out, "\nAzure RBAC");
    let principals = match azure_identity(snapshot, options, request) {
        Ok(p) => p,
        Err(Exclusion::Skipped { reason, .. }) => {
            let _ = writeln!(out, "  skipped: {reason}");
            return;
        }
        Err(Exclusion::Invalid(why)) => {
            let _ = writeln!(out, "  request not allowed: {why}");
            return;
        }
    };
    write_principals(options, &principals, out);
    write_directory_note(snapshot, options, &principals, request, out);
    let target = match target_of(snapshot, request) {
        Ok(t) => t,
        Err(e) => {
            let _ = writeln!(out, "  request not allowed: {e}");
            return;
        }
    };
    for a in target.actions() {
        let _ = writeln!(out, "  action:    {a}");
    }
    let Some(cluster) = &snapshot.cluster.cluster else {
        let _ = writeln!(
            out,
            "  no cluster resource id configured: Azure assignments cannot apply"
        );
        return;
    };
    let scope = target.scope(cluster);
    let chain = scope.ancestors(&snapshot.management_groups);
    let _ = writeln!(out, "  scope chain (nearest first):");
    for s in &chain {
        let _ = writeln!(out, "    {s}");
    }
    let at = RequestScope {
        target: &target,
        scope: &scope,
        chain: &chain,
    };
    let any_deny = explain_denies(snapshot, &principals, &at, out);
    let any_assignment = explain_assignments(snapshot, &principals, &at, request.now, out);
    let any_schedule = explain_inert_schedules(snapshot, &principals, &at, out);
    if !any_deny && !any_assignment && !any_schedule {
        let _ = writeln!(
            out,
            "  no assignment or deny assignment names these principals"
        );
    }
}

/// Where a mapped request lands: its target, its scope and that scope's chain (nearest
/// first), what each candidate assignment is checked against.
struct RequestScope<'a> {
    target: &'a AzureTarget<'a>,
    scope: &'a Scope,
    chain: &'a [Scope],
}

/// Writes the requester's object id (and the claim it came from) and its group object ids.
fn write_principals(options: &EngineOptions, principals: &[Uuid], out: &mut String) {
    let _ = writeln!(
        out,
        "  principal: {} (extra[`{}`])",
        principals
            .first()
            .map(ToString::to_string)
            .unwrap_or_default(),
        options.principal_claim
    );
    let groups: Vec<String> = principals.iter().skip(1).map(ToString::to_string).collect();
    let _ = writeln!(
        out,
        "  groups:    {} object id(s){}",
        groups.len(),
        if groups.is_empty() {
            String::new()
        } else {
            format!(": {}", groups.join(", "))
        }
    );
}

/// Says where the groups came from when a directory snapshot or `--groups-from directory`
/// decides them, and when the directory does not know the requester.
fn write_directory_note(
    snapshot: &Snapshot,
    options: &EngineOptions,
    principals: &[Uuid],
    request: &AccessRequest,
    out: &mut String,
) {
    let directory = snapshot.directory.as_deref();
    let oid = principals
        .first()
        .map(ToString::to_string)
        .unwrap_or_default();
    match (options.groups_from, directory) {
        (GroupsFrom::Token, None) => {}
        (GroupsFrom::Token, Some(_)) => {
            let _ = writeln!(
                out,
                "             (the request's {} group(s) and their parent groups in the directory snapshot)",
                request.groups.len()
            );
        }
        (GroupsFrom::Directory, None) => {
            let _ = writeln!(
                out,
                "             (--groups-from directory, but the policy holds no directory snapshot: no groups)"
            );
        }
        (GroupsFrom::Directory, Some(d)) if d.member_of(&oid).is_none() => {
            let _ = writeln!(
                out,
                "             (--groups-from directory: `{oid}` is unknown to the directory snapshot, so it has no groups; the request's {} group(s) are not used)",
                request.groups.len()
            );
        }
        (GroupsFrom::Directory, Some(_)) => {
            let _ = writeln!(
                out,
                "             (--groups-from directory: transitive groups from the directory snapshot; the request's {} group(s) are not used)",
                request.groups.len()
            );
        }
    }
}

/// Writes every deny assignment of the principals (and of everyone) with why it does or
/// does not apply; true if there was any.
fn explain_denies(
    snapshot: &Snapshot,
    principals: &[Uuid],
    at: &RequestScope<'_>,
    out: &mut String,
) -> bool {
    let named: Vec<Uuid> = principals.iter().copied().chain([EVERYONE]).collect();
    // One pass over the deny assignments, listed by principal as they name them.
    let mut by_principal: Vec<Vec<&Deny>> = vec![Vec::new(); named.len()];
    for deny in &snapshot.denies {
        for (i, p) in named.iter().enumerate() {
            if deny.principals.contains(p)
                && let Some(list) = by_principal.get_mut(i)
            {
                list.push(deny);
            }
        }
    }
    let mut any = false;
    for deny in by_principal.into_iter().flatten() {
        any = true;
        let why = if !at.chain.contains(&deny.scope) {
            "scope is not on the chain".to_string()
        } else if !deny.applies_to_children && deny.scope != *at.scope {
            "doNotApplyToChildScopes and the request is below its scope".to_string()
        } else if deny.excluded.iter().any(|x| principals.contains(x)) {
            "requester is excluded".to_string()
        } else if let Some(a) = at
            .target
            .actions()
            .iter()
            .find(|a| deny_covers(deny, a, &at.target.attributes))
        {
            format!("APPLIES: denies `{a}`")
        } else {
            "does not cover the action".to_string()
        };
        let _ = writeln!(
            out,
            "  deny assignment `{}` at `{}`: {why}",
            deny.id, deny.scope
        );
    }
    any
}

/// Writes every role assignment of the principals with why it does or does not grant;
/// true if there was any.
fn explain_assignments(
    snapshot: &Snapshot,
    principals: &[Uuid],
    at: &RequestScope<'_>,
    now: Option<Timestamp>,
    out: &mut String,
) -> bool {
    let target = at.target;
    // One pass over the role assignments, listed by principal.
    let mut by_principal: Vec<Vec<&Assignment>> = vec![Vec::new(); principals.len()];
    for a in &snapshot.assignments {
        if let Some(list) = principals
            .iter()
            .position(|p| *p == a.principal)
            .and_then(|i| by_principal.get_mut(i))
        {
            list.push(a);
        }
    }
    let mut any = false;
    for (p, assignments) in principals.iter().zip(by_principal) {
        for a in assignments {
            any = true;
            let role = snapshot.roles.get(a.role);
            let role_name = role.map_or("?", |r| &*r.name);
            let a_scope = snapshot
                .scope(a.scope_id)
                .cloned()
                .unwrap_or_else(Scope::root);
            let window = a.window.and_then(|w| snapshot.windows.get(w.index()));
            let active = window.is_none_or(|w| now.is_some_and(|t| w.contains(t)));
            let why = if !at.chain.contains(&a_scope) {
                "scope is not on the chain".to_string()
            } else if !active {
                "time-bound: not in force at the decision time".to_string()
            } else if matches!(a.condition.as_deref(), Some(Err(_))) {
                "condition cannot be evaluated: never grants".to_string()
            } else if target.actions().iter().all(|act| {
                !act.is_wildcard()
                    && assignment_grants(snapshot, a, act.as_str(), &target.attributes)
            }) {
                "GRANTS the action".to_string()
            } else if a.condition.is_some() {
                "role or condition does not grant the action".to_string()
            } else {
                "role does not grant the action (DataActions minus NotDataActions)".to_string()
            };
            let _ = writeln!(
                out,
                "  assignment `{}` of `{role_name}` to {p} at `{}`: {why}",
                a.id, a_scope
            );
            if let Some(w) = window {
                let _ = writeln!(
                    out,
                    "    PIM schedule instance `{}`, window {}",
                    w.instance,
                    window_text(Some(w.start), w.end)
                );
            }
        }
    }
    any
}

/// `from S until E` (or `without end`, or `without start`).
fn window_text(start: Option<Timestamp>, end: Option<Timestamp>) -> String {
    let start = start.map_or("without start".to_string(), |s| format!("from {s}"));
    match end {
        Some(end) => format!("{start} until {end}"),
        None => format!("{start} without end"),
    }
}

/// Writes the PIM schedule instances of the principals that grant nothing: eligibilities
/// (which could be activated) and assignment instances of a status that never grants;
/// true if there was any.
fn explain_inert_schedules(
    snapshot: &Snapshot,
    principals: &[Uuid],
    at: &RequestScope<'_>,
    out: &mut String,
) -> bool {
    let mut any = false;
    for p in principals {
        for s in snapshot
            .inert_schedules
            .iter()
            .filter(|s| s.principal == *p)
        {
            any = true;
            let role = snapshot.role_by_guid(&s.role_guid);
            let role_name = role.map_or(&*s.role_guid, |r| &*r.name);
            let window = window_text(s.start, s.end);
            let why = if s.eligibility {
                let would = if !at.chain.contains(&s.scope) {
                    "; its scope is not on the chain"
                } else if role.is_some_and(|r| {
                    at.target.actions().iter().all(|act| {
                        !act.is_wildcard() && r.blocks.iter().any(|b| b.grants(act.as_str()))
                    })
                }) {
                    "; its role would grant the action"
                } else {
                    ""
                };
                format!("eligible, not activated: grants nothing (could activate {window}{would})")
            } else {
                format!(
                    "status `{}`: grants nothing (window {window})",
                    s.status.as_deref().unwrap_or("")
                )
            };
            let kind = if s.eligibility {
                "eligibility schedule instance"
            } else {
                "assignment schedule instance"
            };
            let _ = writeln!(
                out,
                "  {kind} `{}` of `{role_name}` to {p} at `{}`: {why}",
                s.id, s.scope
            );
        }
    }
    any
}

/// The Kubernetes RBAC part of an explanation: every binding that names the requester,
/// with whether its rules allow the request.
fn explain_rbac(snapshot: &Snapshot, request: &AccessRequest, out: &mut String) {
    let _ = writeln!(out, "\nKubernetes RBAC");
    let mut any = false;
    let ids = snapshot.rbac.candidate_ids(request);
    for b in snapshot.rbac.bindings(&ids) {
        let Some(subject) = applies_to(b, request).and_then(|i| b.subjects.get(i)) else {
            continue;
        };
        any = true;
        let why = match &b.rules {
            Err(e) => format!("role reference fails: {e}"),
            Ok(rules) if rules.iter().any(|r| rule_allows(request, r)) => "ALLOWS".to_string(),
            Ok(rules) => format!("none of {} rule(s) matches", rules.len()),
        };
        let _ = writeln!(out, "  {} ({}): {why}", b.id, describe(b, subject));
    }
    if !any {
        let _ = writeln!(
            out,
            "  no binding names this user, its groups or its service account"
        );
    }
}

/// The Azure principals of a request for an explanation: the object id (checked by the
/// gate), then every group that is an object id, as the decision takes them (see
/// [`GroupsFrom`]); or why Azure does not evaluate the request.
pub(super) fn azure_identity(
    snapshot: &Snapshot,
    options: &EngineOptions,
    request: &AccessRequest,
) -> Result<Vec<Uuid>, Exclusion> {
    let oid = azure_gate(options, request)?;
    let directory = snapshot.directory.as_deref();
    let mut principals: Vec<Uuid> = Vec::new();
    for name in requester_names(options.groups_from, oid, request) {
        let names: Box<dyn Iterator<Item = &str>> = match directory {
            Some(d) if name.with_groups => Box::new(d.with_groups(name.text)),
            _ => Box::new(std::iter::once(name.text)),
        };
        for id in names.filter_map(object_id) {
            if !principals.contains(&id) {
                principals.push(id);
            }
        }
    }
    Ok(principals)
}

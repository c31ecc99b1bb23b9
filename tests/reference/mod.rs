//! An independent reference evaluator, for tests only: it reads the policy objects as parsed
//! (before compilation) and the decoded request, and decides with its own verb table, action
//! glob matcher, scope comparison and RBAC rule matching, written plainly from the docs
//! (README "How a request maps to Azure", `docs`/spec). It shares only the parser's data
//! types and the model's request and verdict types with the engine it checks.
#![allow(dead_code)]

mod azure;
pub mod check_access;
mod condition;
mod glob;
mod rbac;
mod scope;
mod verbs;

use scopegate::model::{AccessRequest, Source, Verdict};
use scopegate::policy::PolicySet;
use scopegate::policy::schema::{RoleAssignment, RoleDefinition};
use std::collections::BTreeSet;

/// Azure's Everyone principal: deny assignments may name it.
const EVERYONE: &str = "00000000-0000-0000-0000-000000000000";

/// The role an assignment names: by the GUID its `roleDefinitionId` ends with.
pub(super) fn role_of<'s>(
    set: &'s PolicySet,
    assignment: &RoleAssignment,
) -> Option<&'s RoleDefinition> {
    let guid = assignment
        .role_definition_id
        .rsplit('/')
        .next()
        .unwrap_or_default();
    set.role_definitions.iter().map(|(_, r)| r).find(|r| {
        let name = if r.name.is_empty() {
            r.id.rsplit('/').next().unwrap_or_default()
        } else {
            r.name.as_str()
        };
        name.eq_ignore_ascii_case(guid)
    })
}

/// What the reference is configured with (the engine's options, in its own words).
#[derive(Debug, Clone)]
pub struct Options {
    /// The cluster's ARM id; without it Azure grants nothing.
    pub cluster: Option<String>,
    pub action_prefix: String,
    pub principal_claim: String,
    pub skip_system_users: bool,
    /// Deny users without an object id (else no opinion).
    pub deny_non_aad_users: bool,
    /// Deny when nothing grants (else no opinion).
    pub deny_on_no_match: bool,
    /// Kubernetes RBAC grants before Azure deny assignments.
    pub rbac_first: bool,
    pub discovery_paths: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            cluster: None,
            action_prefix: "Microsoft.ContainerService/managedClusters".into(),
            principal_claim: "oid".into(),
            skip_system_users: true,
            deny_non_aad_users: false,
            deny_on_no_match: false,
            rbac_first: false,
            discovery_paths: true,
        }
    }
}

/// The policy as loaded. Role assignments are compiled while they are read, so the objects
/// as parsed come separately.
pub struct Policy<'a> {
    pub set: &'a PolicySet,
    pub role_assignments: &'a [RoleAssignment],
}

/// The reference's answer: the verdict, the source that decided, and every id that would
/// decide it (each denying deny assignment, each granting role assignment or binding).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub verdict: Verdict,
    pub source: Source,
    pub deciders: BTreeSet<String>,
}

fn outcome(verdict: Verdict, source: Source, ids: Vec<String>) -> Outcome {
    Outcome {
        verdict,
        source,
        deciders: ids.into_iter().collect(),
    }
}

/// Hyphenated 8-4-4-4-12 hex, either case: the only spelling of an Entra object id.
fn is_object_id(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Why Azure has no say: skipped (and whether for lack of an object id), or a malformed id.
enum Identity {
    Entra(Vec<String>),
    Skipped { non_aad: bool },
    Malformed,
}

fn identity(options: &Options, request: &AccessRequest) -> Identity {
    let system = request.user.to_lowercase().starts_with("system:");
    if options.skip_system_users && system {
        return Identity::Skipped { non_aad: false };
    }
    let oids = request
        .extra
        .get(&options.principal_claim)
        .cloned()
        .unwrap_or_default();
    match oids.as_slice() {
        [] => Identity::Skipped { non_aad: true },
        [oid] if is_object_id(oid) => {
            let mut principals = vec![oid.to_lowercase()];
            principals.extend(
                request
                    .groups
                    .iter()
                    .filter(|g| is_object_id(g))
                    .map(str::to_lowercase),
            );
            Identity::Entra(principals)
        }
        _ => Identity::Malformed,
    }
}

/// Decides a request.
pub fn decide(policy: &Policy<'_>, options: &Options, request: &AccessRequest) -> Outcome {
    let rbac_grants = || rbac::granting(policy.set, request);
    if options.rbac_first {
        let ids = rbac_grants();
        if !ids.is_empty() {
            return outcome(Verdict::Allow, Source::KubernetesRbac, ids);
        }
    }
    let (skipped, non_aad) = match identity(options, request) {
        Identity::Malformed => return outcome(Verdict::Deny, Source::Request, vec![]),
        Identity::Skipped { non_aad } => (true, non_aad),
        Identity::Entra(principals) => {
            if let Some(decided) = azure(policy, options, request, principals) {
                return decided;
            }
            (false, false)
        }
    };
    let ids = rbac_grants();
    if !ids.is_empty() {
        return outcome(Verdict::Allow, Source::KubernetesRbac, ids);
    }
    let deny = if non_aad {
        options.deny_non_aad_users
    } else if skipped {
        false
    } else {
        options.deny_on_no_match
    };
    let verdict = if deny {
        Verdict::Deny
    } else {
        Verdict::NoOpinion
    };
    outcome(verdict, Source::NoMatch, vec![])
}

/// Azure's final answer for an Entra user, or `None` if it grants nothing.
fn azure(
    policy: &Policy<'_>,
    options: &Options,
    request: &AccessRequest,
    principals: Vec<String>,
) -> Option<Outcome> {
    let resource = request.resource_attributes.as_deref();
    let non_resource = request.non_resource_attributes.as_ref();
    if let (None, Some(n)) = (resource, non_resource)
        && options.discovery_paths
        && verbs::is_discovery(n)
    {
        return Some(outcome(Verdict::Allow, Source::Request, vec![]));
    }
    let prefix = options.action_prefix.as_str();
    let mapped = match (resource, non_resource) {
        (Some(r), None) => verbs::resource(prefix, r),
        (None, Some(n)) => verbs::non_resource(prefix, n),
        _ => None,
    };
    let Some(mapped) = mapped else {
        return Some(outcome(Verdict::Deny, Source::Request, vec![]));
    };
    let cluster = options.cluster.as_deref()?;
    let scope = match &mapped.namespace {
        Some(ns) => format!("{cluster}/namespaces/{ns}"),
        None => cluster.to_string(),
    };
    let empty = String::new();
    let attributes = condition::Attributes {
        prefix,
        group: resource.map_or(&empty, |r| &r.group),
        resource: resource.map_or(&empty, |r| &r.resource),
        subresource: resource.map_or(&empty, |r| &r.subresource),
    };
    let target = azure::Request {
        principals,
        scope,
        actions: &mapped.actions,
        attributes,
    };
    match azure::evaluate(policy.set, policy.role_assignments, &target) {
        azure::Answer::Denied(ids) => Some(outcome(Verdict::Deny, Source::AzureRbac, ids)),
        azure::Answer::Allowed(ids) => Some(outcome(Verdict::Allow, Source::AzureRbac, ids)),
        azure::Answer::NotGranted => None,
    }
}

/// Checks an engine decision against the reference's: same verdict and source; every id the
/// engine names is one the reference found deciding, and it names one whenever some decides.
pub fn agrees(
    expected: &Outcome,
    verdict: Verdict,
    source: Source,
    decided_by: &[&str],
) -> Result<(), String> {
    if expected.verdict != verdict || expected.source != source {
        return Err(format!(
            "engine {verdict:?} by {source:?}, reference {:?} by {:?} ({:?})",
            expected.verdict, expected.source, expected.deciders
        ));
    }
    deciders_agree(&expected.deciders, decided_by)
}

/// Every id the engine names is one of the reference's deciders, and it names one whenever
/// some decides.
pub fn deciders_agree(deciders: &BTreeSet<String>, decided_by: &[&str]) -> Result<(), String> {
    if let Some(id) = decided_by.iter().find(|id| !deciders.contains(**id)) {
        return Err(format!(
            "engine names `{id}`, reference's deciders are {deciders:?}"
        ));
    }
    if decided_by.is_empty() != deciders.is_empty() {
        return Err(format!(
            "engine names {decided_by:?}, reference's deciders are {deciders:?}"
        ));
    }
    Ok(())
}

/// Every role assignment object in a JSON document (the `az` shape, or ARM's with
/// `properties`), for harnesses that have only the text of a policy file.
pub fn role_assignments_in(value: &serde_json::Value) -> Vec<RoleAssignment> {
    let mut out = Vec::new();
    match value {
        serde_json::Value::Array(items) => items
            .iter()
            .for_each(|v| out.extend(role_assignments_in(v))),
        serde_json::Value::Object(map) => {
            let mut flat = map.clone();
            if let Some(serde_json::Value::Object(p)) = map.get("properties") {
                flat.extend(p.clone());
            }
            if flat.contains_key("roleDefinitionId") {
                out.extend(serde_json::from_value(serde_json::Value::Object(flat)).ok());
            } else {
                map.values()
                    .for_each(|v| out.extend(role_assignments_in(v)));
            }
        }
        _ => {}
    }
    out
}

//! The decision core: pure and synchronous. `authorize(&Snapshot, &EngineOptions,
//! &AccessRequest) -> Decision`; no I/O, no clocks, no locks.
//!
//! Order of sources (docs/kubernetes-authz.md#source-order): Azure deny assignments, then any allow (Azure role
//! assignment or Kubernetes RBAC binding), then the configured no-match answer.

pub mod azure_rbac;
pub mod check_access;
pub mod explain;
pub mod k8s_rbac;
#[cfg(test)]
pub(crate) mod schedule_tests;
pub mod workload;

use crate::model::decision::Reason;
use crate::model::excerpt::{QUOTED_BYTES, cut, excerpt};
use crate::model::mapping::{self, MapError};
use crate::model::name_hash::is_hyphenated_guid;
use crate::model::{AccessRequest, Decision, Source, Verdict};
use crate::policy::Snapshot;
use crate::policy::compiled::{Assignment, Deny};
use crate::policy::index::PrincipalEntry;
use crate::policy::target::{AzureTarget, ReportedAction};
use azure_rbac::AzureOutcome;
use std::sync::Arc;

/// Guard's answer to users whose name starts with `system:`.
pub const SYSTEM_USER_REASON: &str = "Azure does not have opinion for this user.";
/// Guard's answer to users without an object id.
pub const NON_AAD_REASON: &str = "Azure does not have opinion for this non AAD user. If you are an AAD user, please set Extra:oid parameter for impersonated user in the kubeconfig";
/// Guard's denial of users without an object id when they are not skipped.
pub const NON_AAD_DENY_REASON: &str = "Access denied by Azure RBAC for non AAD users. Configure --azure.skip-authz-for-non-aad-users to enable access. If you are an AAD user, please set Extra:oid parameter for impersonated user in the kubeconfig.";

/// What to answer when nothing grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NoMatch {
    /// Let the next authorizer in kube-apiserver's chain decide (the default).
    #[default]
    NoOpinion,
    /// Deny, as AKS's Guard does; put scopegate after RBAC in the chain then.
    Deny,
}

impl NoMatch {
    fn verdict(self) -> Verdict {
        match self {
            NoMatch::NoOpinion => Verdict::NoOpinion,
            NoMatch::Deny => Verdict::Deny,
        }
    }
}

/// Which source speaks first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SourceOrder {
    /// Azure deny assignments, then any allow (Azure or Kubernetes RBAC), then no match.
    #[default]
    DenyFirst,
    /// Kubernetes RBAC allows first (an RBAC grant beats an Azure deny assignment), then
    /// Azure deny assignments, then Azure allows, then no match.
    RbacFirst,
}

pub use crate::model::GroupsFrom;

/// Engine configuration: everything a decision reads besides the policy and the request
/// (the cluster and the action prefix are the snapshot's, [`crate::policy::IndexOptions`]).
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// The `extra` key holding the Entra object id.
    pub principal_claim: String,
    /// Give users named `system:…` no Azure opinion (Guard's rule).
    pub skip_system_users: bool,
    /// What Azure answers users without an object id.
    pub non_aad_users: NoMatch,
    /// What to answer when nothing grants.
    pub no_match: NoMatch,
    /// Order of the sources.
    pub order: SourceOrder,
    /// Allow `get` on discovery paths (`/api`, `/openapi`, `/version`, `/healthz`) to every
    /// Entra user, as Guard does.
    pub discovery_paths: bool,
    /// Where the Azure decision takes the requester's groups from (Kubernetes RBAC always
    /// reads the request's groups as kube-apiserver sent them).
    pub groups_from: GroupsFrom,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            principal_claim: "oid".into(),
            skip_system_users: true,
            non_aad_users: NoMatch::NoOpinion,
            no_match: NoMatch::NoOpinion,
            order: SourceOrder::DenyFirst,
            discovery_paths: true,
            groups_from: GroupsFrom::Token,
        }
    }
}

/// Why Azure does not evaluate a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exclusion {
    /// A `system:` user or a user without object id; the reason says which.
    Skipped { reason: &'static str, non_aad: bool },
    /// The object id is malformed: the request is not allowed.
    Invalid(String),
}

/// The object id of a request Azure evaluates (its text as sent, checked to be a GUID), or
/// why Azure does not.
pub fn azure_gate<'r>(
    options: &EngineOptions,
    request: &'r AccessRequest,
) -> Result<&'r str, Exclusion> {
    if options.skip_system_users && request.is_system_user() {
        return Err(Exclusion::Skipped {
            reason: SYSTEM_USER_REASON,
            non_aad: false,
        });
    }
    let oids = request
        .extra
        .get(&options.principal_claim)
        .map(Vec::as_slice)
        .unwrap_or_default();
    match oids {
        [] => Err(Exclusion::Skipped {
            reason: NON_AAD_REASON,
            non_aad: true,
        }),
        // Only the form Entra ID writes (8-4-4-4-12, either case): braces, `urn:uuid:`, bare
        // hex digits or spaces would name the same GUID in a spelling no policy lookup uses.
        [one] if is_hyphenated_guid(one.as_bytes()) => Ok(one),
        [one] => Err(Exclusion::Invalid(format!(
            "extra[`{}`] value `{}` is not an object id (GUID)",
            options.principal_claim,
            excerpt(one)
        ))),
        many => Err(Exclusion::Invalid(format!(
            "extra[`{}`] must hold exactly one object id, found {}",
            options.principal_claim,
            many.len()
        ))),
    }
}

/// The Azure source's own answer, before Kubernetes RBAC and the no-match rule.
enum AzureStep {
    /// Decided (deny, allow, malformed request).
    Final(Decision),
    /// Nothing granted: the reason, and whether this is a skipped identity.
    Open {
        reason: Reason,
        skipped_non_aad: bool,
        skipped: bool,
        error: Option<String>,
    },
}

/// Decides one request at `request.now`. Pure; the same snapshot, options and request give
/// the same answer. [`Decision::valid_until`] says when a time-bound assignment may change it.
pub fn authorize(
    snapshot: &Arc<Snapshot>,
    options: &EngineOptions,
    request: &AccessRequest,
) -> Decision {
    let time = azure_rbac::DecisionTime::at(request.now);
    let mut decision = decide(snapshot, options, request, &time);
    decision.valid_until = time.next_boundary();
    decision
}

/// [`authorize`], noting in `time` the window boundaries it meets.
fn decide(
    snapshot: &Arc<Snapshot>,
    options: &EngineOptions,
    request: &AccessRequest,
    time: &azure_rbac::DecisionTime,
) -> Decision {
    let rbac_first = (options.order == SourceOrder::RbacFirst)
        .then(|| k8s_rbac::authorize(&snapshot.rbac, request));
    if let Some(decision) = rbac_first.as_ref().and_then(|r| r.decision.clone()) {
        return decision;
    }
    let open = match azure_step(snapshot, options, request, time) {
        AzureStep::Final(d) => return d,
        AzureStep::Open {
            reason,
            skipped_non_aad,
            skipped,
            error,
        } => (reason, skipped_non_aad, skipped, error),
    };
    let rbac = match rbac_first {
        Some(r) => r,
        None => k8s_rbac::authorize(&snapshot.rbac, request),
    };
    if let Some(decision) = rbac.decision {
        return decision;
    }
    let (mut reason, skipped_non_aad, skipped, error) = open;
    let verdict = if skipped_non_aad {
        options.non_aad_users.verdict()
    } else if skipped {
        Verdict::NoOpinion
    } else {
        options.no_match.verdict()
    };
    if skipped_non_aad && verdict == Verdict::Deny {
        reason = NON_AAD_DENY_REASON.into();
    }
    // Unresolvable RBAC role references are reported in the reason, as upstream does.
    let rbac_reason = rbac.reason();
    if !rbac_reason.is_empty() {
        reason = if skipped {
            rbac_reason.into()
        } else {
            format!("{reason}; {rbac_reason}").into()
        };
    }
    let mut decision = Decision::new(verdict, Source::NoMatch, reason);
    if let Some(e) = error {
        decision = decision.with_error(e);
    }
    decision
}

/// The Azure source's answer to one request: the identity gate, the discovery rule, the
/// mapped target, then the index's verdict turned into a decision or an open reason.
fn azure_step(
    snapshot: &Arc<Snapshot>,
    options: &EngineOptions,
    request: &AccessRequest,
    time: &azure_rbac::DecisionTime,
) -> AzureStep {
    let oid = match azure_gate(options, request) {
        Ok(text) => text,
        Err(exclusion) => return excluded_step(exclusion),
    };
    if let Some(decision) = discovery_allow(options, request) {
        return AzureStep::Final(decision);
    }
    let principals = policy_principals(snapshot, options.groups_from, oid, request);
    let mut target = match AzureTarget::of(
        request.resource_attributes.as_deref(),
        request.non_resource_attributes.as_ref(),
        &snapshot.options.action_prefix,
        Some(&snapshot.known_actions),
    ) {
        Ok(t) => t,
        Err(e) => return AzureStep::Final(request_not_allowed(e)),
    };
    if snapshot.cluster.cluster.is_none() {
        return AzureStep::Open {
            reason: "Azure RBAC: no cluster resource id is configured".into(),
            skipped_non_aad: false,
            skipped: false,
            error: Some(
                "no cluster resource id is configured, so Azure role assignments cannot apply"
                    .into(),
            ),
        };
    }
    let namespace = target.namespace.and_then(Label::new);
    match azure_rbac::evaluate(snapshot, &principals, &target, time) {
        AzureOutcome::Denied {
            deny,
            index,
            action,
        } => {
            // The reported action moves into the reason; nothing else reads the target now.
            let action = target.take_action(action);
            AzureStep::Final(denied_decision(snapshot, deny, index, action, namespace))
        }
        AzureOutcome::Allowed { by, action } => {
            let Some(&(first, _)) = by.first() else {
                return AzureStep::Final(Decision::new(
                    Verdict::Deny,
                    Source::Request,
                    "request maps to no action",
                ));
            };
            let action = target.take_action(action);
            AzureStep::Final(allowed_decision(snapshot, &by, first, action, namespace))
        }
        AzureOutcome::NotGranted { action } => {
            let action = target.take_action(action);
            AzureStep::Open {
                reason: not_granted_reason(snapshot, action, namespace),
                skipped_non_aad: false,
                skipped: false,
                error: None,
            }
        }
    }
}

/// The step for a request Azure does not evaluate: a skipped identity stays open for the
/// other sources, a malformed object id is not allowed.
fn excluded_step(exclusion: Exclusion) -> AzureStep {
    match exclusion {
        Exclusion::Skipped { reason, non_aad } => AzureStep::Open {
            reason: reason.into(),
            skipped_non_aad: non_aad,
            skipped: true,
            error: None,
        },
        Exclusion::Invalid(why) => AzureStep::Final(request_not_allowed(why)),
    }
}

/// The denial of a request that cannot be evaluated (malformed identity or attributes).
#[cold]
fn request_not_allowed(why: impl std::fmt::Display) -> Decision {
    Decision::new(
        Verdict::Deny,
        Source::Request,
        format!("request not allowed: {why}"),
    )
}

/// The requester as the policy knows it: only principals the policy names, looked up
/// straight from the request strings. On the stack: a token's groups rarely name more than
/// a handful of policy principals.
#[inline]
fn policy_principals<'s>(
    snapshot: &'s Snapshot,
    groups_from: GroupsFrom,
    oid: &str,
    request: &AccessRequest,
) -> smallvec::SmallVec<[&'s PrincipalEntry; 8]> {
    let mut principals = smallvec::SmallVec::new();
    if snapshot.directory.is_some() || groups_from == GroupsFrom::Directory {
        directory_principals(snapshot, groups_from, oid, request, &mut principals);
        return principals;
    }
    principals.extend(snapshot.principal(oid));
    // Groups by the hash they were decoded with: most are turned away by the prefilter
    // without reading their text.
    let groups = &request.groups;
    for entry in groups.entries() {
        if snapshot.may_be_principal(entry.len(), entry.hash)
            && let Some(principal) = snapshot.principal_lookup(groups.name(entry), entry.hash)
        {
            principals.push(principal);
        }
    }
    principals
}

/// The requester with a directory snapshot (or `--groups-from directory`), each policy
/// principal once: the names [`requester_names`] gives, through the snapshot's expansion
/// worked out at load (one lookup per name, no group's text read).
fn directory_principals<'s>(
    snapshot: &'s Snapshot,
    groups_from: GroupsFrom,
    oid: &str,
    request: &AccessRequest,
    principals: &mut smallvec::SmallVec<[&'s PrincipalEntry; 8]>,
) {
    let mut add = |p: &'s PrincipalEntry| {
        if !principals.iter().any(|q| std::ptr::eq(*q, p)) {
            principals.push(p);
        }
    };
    for name in requester_names(groups_from, oid, request) {
        if name.with_groups {
            snapshot
                .principal_with_groups(name.text, name.hash)
                .for_each(&mut add);
        } else if snapshot.may_be_principal(name.text.len(), name.hash) {
            // The name's hash is known: `principal` would hash it again.
            snapshot
                .principal_lookup(name.text, name.hash)
                .into_iter()
                .for_each(&mut add);
        }
    }
}

/// A name the Azure decision reads for a requester, and whether the groups it is a member of
/// in the directory snapshot count with it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequesterName<'r> {
    pub text: &'r str,
    /// [`crate::model::name_hash::name_hash`] of `text`.
    pub hash: u64,
    pub with_groups: bool,
}

/// The names the Azure decision takes for a requester (see [`GroupsFrom`]): with
/// `--groups-from directory` the object id with its transitive groups (the request's groups
/// are not read); otherwise the object id alone, then each of the request's groups with its
/// parent groups (Azure honours a group's assignment for the members of groups nested in it).
/// The decision and `explain` both expand these, so they cannot differ.
pub(crate) fn requester_names<'r>(
    groups_from: GroupsFrom,
    oid: &'r str,
    request: &'r AccessRequest,
) -> impl Iterator<Item = RequesterName<'r>> {
    let directory = groups_from == GroupsFrom::Directory;
    let groups = &request.groups;
    let from_token = if directory { &[][..] } else { groups.entries() };
    std::iter::once(RequesterName {
        text: oid,
        hash: crate::model::name_hash::name_hash(oid.as_bytes()),
        with_groups: directory,
    })
    .chain(from_token.iter().map(move |entry| RequesterName {
        text: groups.name(entry),
        hash: entry.hash,
        with_groups: true,
    }))
}

/// Guard's discovery rule: `get` on a discovery path is allowed to every Entra user when
/// the option is on.
#[inline]
fn discovery_allow(options: &EngineOptions, request: &AccessRequest) -> Option<Decision> {
    let n = request.non_resource_attributes.as_ref()?;
    (request.resource_attributes.is_none() && options.discovery_paths && mapping::is_discovery(n))
        .then(|| {
            Decision::new(
                Verdict::Allow,
                Source::Request,
                format!(
                    "discovery path `{}` is readable by every Entra ID user",
                    excerpt(&n.path)
                ),
            )
        })
}

// Reasons hold the snapshot (one reference count) and indexes into it, not a copy of each
// name they print: a decision then costs two atomic updates instead of a dozen.

/// The denial by deny assignment `index`, its reason rendered lazily from the snapshot.
#[inline]
fn denied_decision(
    snapshot: &Arc<Snapshot>,
    deny: &Deny,
    index: u32,
    action: ReportedAction,
    namespace: Option<Label>,
) -> Decision {
    let policy = Arc::clone(snapshot);
    let reason = Reason::lazy(move |f| {
        let Some(deny) = policy.denies.get(index as usize) else {
            return Ok(());
        };
        let shown = if deny.name.is_empty() {
            &deny.id
        } else {
            &deny.name
        };
        write_pieces(
            f,
            &[
                "Azure RBAC: denied by deny assignment `",
                shown,
                "` (",
                &deny.id,
                ") for ",
            ],
        )?;
        write_action_at_scope(f, &policy, &action, &namespace)
    });
    Decision::new(Verdict::Deny, Source::AzureRbac, reason).by(deny.id.clone())
}

/// The grant by the role assignments in `by` (`first` names the reason's), decided by each
/// distinct assignment once.
#[inline]
fn allowed_decision(
    snapshot: &Arc<Snapshot>,
    by: &[(u32, &Assignment)],
    first: u32,
    action: ReportedAction,
    namespace: Option<Label>,
) -> Decision {
    let policy = Arc::clone(snapshot);
    let reason = Reason::lazy(move |f| {
        let Some(a) = policy.assignments.get(first as usize) else {
            return Ok(());
        };
        let (role_name, role_guid) = policy
            .roles
            .get(a.role)
            .map_or(("", ""), |r| (&*r.name, &*r.guid));
        write_pieces(
            f,
            &[
                "Azure RBAC: allowed by role assignment `",
                &a.id,
                "` of role `",
                role_name,
                "` (",
                role_guid,
                ") for ",
            ],
        )?;
        write_action_at_scope(f, &policy, &action, &namespace)?;
        match a.window.and_then(|w| policy.windows.get(w.index())) {
            Some(w) => write_window(f, w),
            None => Ok(()),
        }
    });
    let mut d = Decision::new(Verdict::Allow, Source::AzureRbac, reason);
    for (_, a) in by {
        if !d.decided_by.contains(&a.id) {
            d.decided_by.push(a.id.clone());
        }
    }
    d
}

/// Names the PIM schedule instance of a time-bound grant and its window.
fn write_window(
    f: &mut std::fmt::Formatter<'_>,
    window: &crate::policy::compiled::Window,
) -> std::fmt::Result {
    write!(
        f,
        ", time-bound by PIM schedule instance `{}` from {}",
        window.instance, window.start
    )?;
    match window.end {
        Some(end) => write!(f, " until {end}"),
        None => f.write_str(" without end"),
    }
}

/// The open reason when some action is granted by no role assignment.
#[inline]
fn not_granted_reason(
    snapshot: &Arc<Snapshot>,
    action: ReportedAction,
    namespace: Option<Label>,
) -> Reason {
    let policy = Arc::clone(snapshot);
    Reason::lazy(move |f| {
        f.write_str("Azure RBAC: no role assignment grants ")?;
        write_action_at_scope(f, &policy, &action, &namespace)
    })
}

/// The text of an action a reason names.
fn action_text<'a>(snapshot: &'a Snapshot, action: &'a ReportedAction) -> &'a str {
    match action {
        ReportedAction::Known(i) => snapshot
            .known_actions
            .at(*i)
            .map_or("", |k| k.pattern.as_str()),
        ReportedAction::Owned(pattern) => pattern.as_str(),
    }
}

/// Writes "action `<action>` at scope `<scope>`", how every Azure RBAC reason ends; the
/// scope is the cluster's key and the namespace, never built as one string.
fn write_action_at_scope(
    f: &mut std::fmt::Formatter<'_>,
    snapshot: &Snapshot,
    action: &ReportedAction,
    namespace: &Option<Label>,
) -> std::fmt::Result {
    // An action the policy does not know is built from the request: quoted cut.
    let (text, omitted) = cut(action_text(snapshot, action), QUOTED_BYTES);
    write_pieces(f, &["action `", text])?;
    if omitted > 0 {
        write!(f, "…(+{omitted} bytes)")?;
    }
    write_pieces(f, &["` at scope `", &snapshot.cluster.cluster_key])?;
    if let Some(ns) = namespace {
        write_pieces(f, &["/namespaces/", ns.as_str()])?;
    }
    f.write_str("`")
}

/// Writes a reason's pieces one after another: `write!` would run each through the
/// formatting machinery (padding checks, argument tables), ~400 instructions per answer.
fn write_pieces(f: &mut std::fmt::Formatter<'_>, pieces: &[&str]) -> std::fmt::Result {
    pieces.iter().try_for_each(|p| f.write_str(p))
}

/// A namespace name held inline: a DNS-1123 label has at most 63 bytes, so a lazily
/// rendered reason keeps it without an allocation of its own.
#[derive(Clone, Copy)]
struct Label {
    len: u8,
    bytes: [u8; 63],
}

impl Label {
    /// `None` for text longer than a label.
    fn new(text: &str) -> Option<Label> {
        let mut bytes = [0u8; 63];
        bytes
            .get_mut(..text.len())?
            .copy_from_slice(text.as_bytes());
        Some(Label {
            len: text.len() as u8,
            bytes,
        })
    }

    fn as_str(&self) -> &str {
        let bytes = self.bytes.get(..usize::from(self.len)).unwrap_or_default();
        std::str::from_utf8(bytes).unwrap_or_default()
    }
}

impl std::fmt::Debug for Label {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

/// For callers that want the mapped target without deciding (explain, tools).
pub fn target_of<'r>(
    snapshot: &'r Snapshot,
    request: &'r AccessRequest,
) -> Result<AzureTarget<'r>, MapError> {
    AzureTarget::of(
        request.resource_attributes.as_deref(),
        request.non_resource_attributes.as_ref(),
        &snapshot.options.action_prefix,
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Scope;
    use crate::policy::IndexOptions;
    use crate::synthetic::{self, Shape};

    /// The index options of the synthetic cluster.
    fn synthetic_cluster() -> IndexOptions {
        IndexOptions::for_cluster(
            Scope::parse(synthetic::CLUSTER).expect("the synthetic cluster id parses"),
        )
    }

    fn snapshot() -> (Arc<Snapshot>, Vec<String>, EngineOptions) {
        let roles = synthetic::example_builtin_roles();
        let shape = Shape {
            assignments: 300,
            groups_per_user: 4,
            rbac_bindings: 0,
        };
        let (snapshot, generated) = crate::synthetic_snapshot(shape, &roles, &synthetic_cluster());
        (snapshot, generated.user_groups, EngineOptions::default())
    }

    /// Reasons are rendered from the snapshot they hold: each names the assignment, role,
    /// action and scope of its own decision; a detached copy renders the same text and holds
    /// nothing of the snapshot.
    #[test]
    fn reasons_name_what_decided_and_detach_from_the_snapshot() {
        let (snapshot, groups, options) = snapshot();
        let scope = format!("{}/namespaces/ns-0", snapshot.cluster.cluster_key);

        let allow = authorize(&snapshot, &options, &synthetic::request("allow", &groups));
        assert_eq!(allow.verdict, Verdict::Allow);
        let id = allow
            .decided_by
            .first()
            .expect("an allow names its assignment");
        let assignment = snapshot
            .assignments
            .iter()
            .find(|a| a.id == *id)
            .expect("the deciding assignment is in the snapshot");
        let role = &snapshot.roles[assignment.role];
        assert_eq!(
            allow.reason.to_string(),
            format!(
                "Azure RBAC: allowed by role assignment `{id}` of role `{}` ({}) for action \
                 `microsoft.containerservice/managedclusters/pods/read` at scope `{scope}`",
                role.name, role.guid
            )
        );

        let deny = authorize(&snapshot, &options, &synthetic::request("deny", &groups));
        assert_eq!(deny.verdict, Verdict::Deny);
        let reason = deny.reason.to_string();
        assert!(
            reason.starts_with("Azure RBAC: denied by deny assignment `")
                && reason.ends_with(&format!(
                    "for action `microsoft.containerservice/managedclusters/secrets/read` at scope `{scope}`"
                ))
                && reason.contains(&*deny.decided_by[0]),
            "{reason}"
        );

        let held = Arc::strong_count(&snapshot);
        assert!(held > 1, "a lazy reason holds the snapshot");
        let detached = allow.clone().detached();
        drop((allow.clone(), deny));
        let text = allow.reason.to_string();
        drop(allow);
        assert_eq!(
            Arc::strong_count(&snapshot),
            1,
            "only the test holds it now"
        );
        assert_eq!(detached.reason.to_string(), text);
    }

    #[test]
    fn a_reason_without_a_grant_names_the_action_and_the_namespace_scope() {
        let (snapshot, groups, options) = snapshot();
        let no_match = authorize(
            &snapshot,
            &options,
            &synthetic::request("no_match", &groups),
        );
        assert_eq!(
            no_match.reason.to_string(),
            format!(
                "Azure RBAC: no role assignment grants action \
                 `microsoft.containerservice/managedclusters/pods/write` at scope `{}/namespaces/ns-7`",
                snapshot.cluster.cluster_key
            )
        );
        // An action the policy has not interned is named from the reason's own copy.
        let mut custom = synthetic::request("no_match", &groups);
        if let Some(r) = custom.resource_attributes.as_mut() {
            r.group = "example.com".into();
            r.resource = "Widgets".into();
        }
        let no_match = authorize(&snapshot, &options, &custom);
        assert_eq!(
            no_match.reason.to_string(),
            format!(
                "Azure RBAC: no role assignment grants action \
                 `microsoft.containerservice/managedclusters/example.com/widgets/write` at scope `{}/namespaces/ns-7`",
                snapshot.cluster.cluster_key
            )
        );
    }

    /// A snapshot with a role granting every cluster data action to the synthetic user, on
    /// `assignment_condition`, and, given `deny_condition`, a deny assignment on it for Everyone.
    fn conditional(
        assignment_condition: Option<&str>,
        deny_condition: Option<&str>,
    ) -> Arc<Snapshot> {
        use crate::policy::parse;
        use serde_json::json;
        let role = "c0000000-0000-4000-8000-0000000000aa";
        let cluster = synthetic::CLUSTER;
        let mut assignment = json!({
            "id": format!("{cluster}/providers/Microsoft.Authorization/roleAssignments/e0000000-0000-4000-8000-000000000001"),
            "principalId": synthetic::USER_OID, "principalType": "User",
            "roleDefinitionId": format!("/providers/Microsoft.Authorization/roleDefinitions/{role}"),
            "scope": cluster, "type": "Microsoft.Authorization/roleAssignments",
        });
        if let Some(c) = assignment_condition {
            assignment["condition"] = json!(c);
            assignment["conditionVersion"] = json!("2.0");
        }
        let mut deny = json!({
            "id": format!("{cluster}/providers/Microsoft.Authorization/denyAssignments/d0000000-0000-4000-8000-000000000001"),
            "denyAssignmentName": "conditional", "type": "Microsoft.Authorization/denyAssignments",
            "permissions": [{"dataActions": ["Microsoft.ContainerService/managedClusters/*"]}],
            "principals": [{"id": "00000000-0000-0000-0000-000000000000", "type": "SystemDefined"}],
            "scope": cluster, "doNotApplyToChildScopes": false,
        });
        let mut objects = json!([
            {"id": format!("/providers/Microsoft.Authorization/roleDefinitions/{role}"),
             "name": role, "roleName": "everything", "type": "Microsoft.Authorization/roleDefinitions",
             "assignableScopes": ["/"],
             "permissions": [{"dataActions": ["Microsoft.ContainerService/managedClusters/*"]}]},
            assignment,
        ]);
        if let (Some(c), Some(list)) = (deny_condition, objects.as_array_mut()) {
            deny["condition"] = json!(c);
            list.push(deny);
        }
        let set = parse::valid_set(objects);
        let options = IndexOptions::for_cluster(
            Scope::parse(cluster).expect("the synthetic cluster id parses"),
        );
        Arc::new(Snapshot::build(set, &options, 1).expect("valid policy"))
    }

    fn custom_resource_request(group: &str) -> AccessRequest {
        let mut request = synthetic::request("allow", &[]);
        if let Some(r) = request.resource_attributes.as_mut() {
            r.group = group.into();
            r.resource = "widgets".into();
        }
        request
    }

    /// A request value longer than a condition compares (an API group of 4,000 bytes once
    /// held a worker for 45 s in `StringLike`) makes the condition unevaluable, which fails
    /// closed as an unparsable condition does: a conditional deny assignment still denies,
    /// a conditional role assignment does not grant.
    #[test]
    fn over_long_request_values_fail_closed_in_conditions() {
        let options = EngineOptions::default();
        let group = "Microsoft.ContainerService/managedClusters/customResources:group";
        let long = "a".repeat(4_000);
        let verdict = |snapshot: &Arc<Snapshot>, g: &str| {
            authorize(snapshot, &options, &custom_resource_request(g)).verdict
        };

        let like = format!("@Request[{group}] StringLike '*a*a*b'");
        let deny = conditional(None, Some(&like));
        assert_eq!(verdict(&deny, "example.com"), Verdict::Allow);
        assert_eq!(verdict(&deny, "aab.example.b"), Verdict::Deny);
        assert_eq!(verdict(&deny, &long), Verdict::Deny);
        assert_eq!(verdict(&deny, &long[..300]), Verdict::Deny);
        let negated = format!("!(@Request[{group}] StringNotLike '*a*a*b')");
        let deny = conditional(None, Some(&negated));
        assert_eq!(verdict(&deny, "example.com"), Verdict::Allow);
        assert_eq!(verdict(&deny, &long[..300]), Verdict::Deny);

        let not_equals = format!("@Request[{group}] StringNotEquals 'forbidden.example.com'");
        let allow = conditional(Some(&not_equals), None);
        assert_eq!(verdict(&allow, "example.com"), Verdict::Allow);
        assert_ne!(verdict(&allow, "forbidden.example.com"), Verdict::Allow);
        assert_ne!(verdict(&allow, &long[..300]), Verdict::Allow);
    }

    /// A conditional deny assignment applies to a wildcard request whatever its condition:
    /// the condition cannot be evaluated for a set of actions (fail closed).
    #[test]
    fn a_conditional_deny_applies_to_a_wildcard_request() {
        let group = "Microsoft.ContainerService/managedClusters/customResources:group";
        let only_other = format!("@Request[{group}] StringEquals 'other.example'");
        let deny = conditional(None, Some(&only_other));
        let options = EngineOptions::default();
        let mut request = custom_resource_request("example.com");
        assert_eq!(authorize(&deny, &options, &request).verdict, Verdict::Allow);
        if let Some(r) = request.resource_attributes.as_mut() {
            r.verb = "*".into();
        }
        assert_eq!(authorize(&deny, &options, &request).verdict, Verdict::Deny);
    }

    /// With a directory snapshot, the principals a decision reads (through the expansion
    /// worked out at load) are those the directory's transitive groups give, looked up one
    /// name at a time: nested groups, a cycle, names in upper case, ids that are not object
    /// ids, policy principals the directory does not know, names listed twice.
    #[test]
    fn directory_principals_are_the_policy_principals_of_the_transitive_groups() {
        use crate::policy::directory::{Group, Member, MemberType, User, canonical_id};
        use crate::policy::{Origin, parse};
        use serde_json::json;
        let cluster = synthetic::CLUSTER;
        let user = synthetic::USER_OID;
        let g = |n: u32| format!("6a000000-0000-4000-8000-{n:012}");
        let role = "c0000000-0000-4000-8000-0000000000aa";
        let mut objects = vec![json!({
            "id": format!("/providers/Microsoft.Authorization/roleDefinitions/{role}"),
            "name": role, "roleName": "everything", "type": "Microsoft.Authorization/roleDefinitions",
            "assignableScopes": ["/"],
            "permissions": [{"dataActions": ["Microsoft.ContainerService/managedClusters/*"]}]})];
        // The user and groups 1 to 5 hold an assignment; group 6 holds none.
        let holders = [user.to_string(), g(1), g(2), g(3), g(4), g(5)];
        for (i, principal) in holders.iter().enumerate() {
            objects.push(json!({
                "id": format!("{cluster}/providers/Microsoft.Authorization/roleAssignments/e0000000-0000-4000-8000-{i:012}"),
                "principalId": principal, "principalType": "Group",
                "roleDefinitionId": format!("/providers/Microsoft.Authorization/roleDefinitions/{role}"),
                "scope": cluster, "type": "Microsoft.Authorization/roleAssignments",
            }));
        }
        let mut set = parse::valid_set(json!(objects));
        let group = |id: &str, members: &[(&str, MemberType)]| {
            let members = members
                .iter()
                .map(|(id, kind)| Member {
                    id: canonical_id(id),
                    kind: *kind,
                })
                .collect();
            let group = Group {
                id: canonical_id(id),
                display_name: None,
                members,
            };
            (Origin::new("entra-groups.json", "-"), group)
        };
        set.directory_users.push((
            Origin::new("entra-users.json", "-"),
            User {
                id: canonical_id(user),
                ..User::default()
            },
        ));
        // 6 lists the user; 1 lists 6; 2 lists 1; 3 lists 2 and 1 lists 3 (a cycle); 5 lists
        // `Team-X`, a group whose id is no object id; 4 is not in the directory.
        set.directory_groups.extend([
            group(&g(6), &[(user, MemberType::User)]),
            group(
                &g(1),
                &[(&g(6), MemberType::Group), (&g(3), MemberType::Group)],
            ),
            group(&g(2), &[(&g(1), MemberType::Group)]),
            group(&g(3), &[(&g(2), MemberType::Group)]),
            group(&g(5), &[("Team-X", MemberType::Group)]),
            group("Team-X", &[]),
        ]);
        let options = IndexOptions::for_cluster(
            Scope::parse(cluster).expect("the synthetic cluster id parses"),
        );
        let snapshot = Snapshot::build(set, &options, 1).expect("valid policy");
        let directory = snapshot.directory.as_deref().expect("a directory snapshot");

        // The oracle: the names expanded through the directory's own lookups, then each
        // looked up by its text, first occurrence kept.
        let expected = |groups_from: GroupsFrom, oid: &str, groups: &[String]| {
            let mut names: Vec<String> = vec![oid.to_string()];
            let parents = |name: &str| -> Vec<String> {
                directory
                    .member_of(name)
                    .unwrap_or_default()
                    .iter()
                    .map(ToString::to_string)
                    .collect()
            };
            match groups_from {
                GroupsFrom::Directory => names.extend(parents(oid)),
                GroupsFrom::Token => {
                    for group in groups {
                        names.push(group.clone());
                        names.extend(parents(group));
                    }
                }
            }
            let mut ids: Vec<uuid::Uuid> = Vec::new();
            for name in names {
                if let Some(p) = snapshot.principal(&name)
                    && !ids.contains(&p.id)
                {
                    ids.push(p.id);
                }
            }
            ids
        };
        let cases: Vec<Vec<String>> = vec![
            vec![],
            vec![g(6)],
            vec![g(6).to_uppercase()],
            vec!["TEAM-X".into()],
            vec![g(4), g(2), g(4)],
            vec![g(3), "team-x".into(), g(7), "not-a-group".into()],
        ];
        for groups_from in [GroupsFrom::Token, GroupsFrom::Directory] {
            for oid in [user.to_string(), user.to_uppercase(), g(8)] {
                for groups in &cases {
                    let mut request = synthetic::request("allow", groups);
                    request.extra.insert("oid".into(), vec![oid.clone()]);
                    let got: Vec<uuid::Uuid> =
                        policy_principals(&snapshot, groups_from, &oid, &request)
                            .iter()
                            .map(|p| p.id)
                            .collect();
                    assert_eq!(
                        got,
                        expected(groups_from, &oid, groups),
                        "{groups_from:?}, oid {oid}, groups {groups:?}"
                    );
                    // `explain` names every object id among the same names.
                    let options = EngineOptions {
                        groups_from,
                        ..EngineOptions::default()
                    };
                    let explained = explain::azure_identity(&snapshot, &options, &request)
                        .expect("an object id");
                    assert!(
                        got.iter().all(|id| explained.contains(id)),
                        "{got:?} {explained:?}"
                    );
                }
            }
        }
        // The cases reach every kind of expansion.
        let token = |groups: &[String]| {
            let request = synthetic::request("allow", groups);
            policy_principals(&snapshot, GroupsFrom::Token, &g(8), &request).len()
        };
        assert_eq!(
            token(&[g(6)]),
            3,
            "6 brings 1, 2 and 3, which hold assignments"
        );
        assert_eq!(token(&["TEAM-X".into()]), 1, "Team-X brings 5");
        let directory_mode = policy_principals(
            &snapshot,
            GroupsFrom::Directory,
            user,
            &synthetic::request("allow", &[]),
        );
        assert_eq!(directory_mode.len(), 4, "the user, 1, 2 and 3");
        let explained = explain::azure_identity(
            &snapshot,
            &EngineOptions {
                groups_from: GroupsFrom::Directory,
                ..EngineOptions::default()
            },
            &synthetic::request("allow", &[g(5)]),
        )
        .expect("an object id");
        let mut groups: Vec<String> = explained.iter().skip(1).map(|id| id.to_string()).collect();
        groups.sort();
        assert_eq!(
            groups,
            [g(1), g(2), g(3), g(6)],
            "the directory's groups, not the request's"
        );
    }

    /// An action quoted in a reason is cut, and says how much was left out.
    #[test]
    fn a_long_action_is_cut_in_the_reason() {
        let (snapshot, groups, options) = snapshot();
        let mut request = synthetic::request("no_match", &groups);
        if let Some(r) = request.resource_attributes.as_mut() {
            r.resource = "x".repeat(2 * QUOTED_BYTES);
        }
        let reason = authorize(&snapshot, &options, &request).reason.to_string();
        assert!(
            reason.contains("…(+") && reason.contains(" bytes)` at scope `"),
            "{reason}"
        );
        assert!(reason.len() < 2 * QUOTED_BYTES, "{reason}");
    }

    /// A condition past Azure's size or nesting limit is an error at load that names the
    /// assignment's place, not a stack overflow.
    #[test]
    fn conditions_past_the_limits_are_load_errors() {
        use crate::policy::condition::{MAX_CONDITION_BYTES, MAX_CONDITION_NESTING};
        use crate::policy::parse;
        use serde_json::json;
        let term = "@Request[x] StringEquals 'a'";
        let cases = [
            (
                "1".repeat(MAX_CONDITION_BYTES + 1),
                "bytes long, more than Azure's limit",
            ),
            (
                format!("{}{term}{}", "(".repeat(2_000), ")".repeat(2_000)),
                "more than 32 levels deep",
            ),
            (
                format!("{}{term}", "!".repeat(MAX_CONDITION_NESTING + 1)),
                "levels deep",
            ),
        ];
        for (condition, message) in cases {
            let objects = json!([{
                "id": format!("{}/providers/Microsoft.Authorization/roleAssignments/e0000000-0000-4000-8000-000000000001", synthetic::CLUSTER),
                "principalId": synthetic::USER_OID, "principalType": "User",
                "roleDefinitionId": "/providers/Microsoft.Authorization/roleDefinitions/c0000000-0000-4000-8000-0000000000aa",
                "scope": synthetic::CLUSTER, "type": "Microsoft.Authorization/roleAssignments",
                "condition": condition, "conditionVersion": "2.0",
            }]);
            let (_, diagnostics) = parse::read_objects("assignments.json", objects);
            let error = diagnostics
                .iter()
                .find(|d| d.is_error())
                .unwrap_or_else(|| panic!("an error for `{message}`: {diagnostics:?}"));
            let text = error.to_string();
            assert!(
                text.contains("assignments.json: $[0].condition: condition ")
                    && text.contains(message),
                "{text}"
            );
        }
    }
}

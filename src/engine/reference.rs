//! The plain reference evaluator: a direct transcription of the rules (spec §B2, §3.1) that
//! walks every assignment and binding with string scope comparison. It is slow on purpose and
//! obviously right; the indexed engine is checked against it by differential tests.

use super::azure_rbac::{covers_pattern, deny_covers};
use super::{EngineOptions, Exclusion, NoMatch, azure_identity};
use crate::engine::k8s_rbac::{applies_to, rule_allows};
use crate::model::{AccessRequest, Verdict};
use crate::policy::Snapshot;
use crate::policy::index::{EVERYONE, PermissionBlock};
use crate::model::mapping as map;

/// The verdict the rules give, computed the slow way.
pub fn verdict(snapshot: &Snapshot, options: &EngineOptions, request: &AccessRequest) -> Verdict {
    if options.order == super::SourceOrder::RbacFirst && rbac_allows(snapshot, request) {
        return Verdict::Allow;
    }
    let mut skipped_non_aad = false;
    let mut skipped = false;
    match azure_identity(options, request) {
        Err(Exclusion::Invalid(_)) => return Verdict::Deny,
        Err(Exclusion::Skipped { non_aad, .. }) => {
            skipped = true;
            skipped_non_aad = non_aad;
        }
        Ok(principals) => {
            if let Some(n) = &request.non_resource_attributes
                && request.resource_attributes.is_none()
                && options.discovery_paths
                && map::is_discovery(n)
            {
                return Verdict::Allow;
            }
            let Ok(target) = super::target_of(snapshot, request) else {
                return Verdict::Deny;
            };
            if let Some(cluster) = &snapshot.cluster.cluster {
                let scope = target.scope(cluster);
                let groups = &snapshot.management_groups;
                // 1. any applicable deny assignment covering any action denies
                for deny in &snapshot.denies {
                    let named = deny
                        .principals
                        .iter()
                        .any(|p| *p == EVERYONE || principals.contains(p));
                    let excluded = deny.excluded.iter().any(|p| principals.contains(p));
                    let at_scope = if deny.applies_to_children {
                        deny.scope.covers(&scope, groups)
                    } else {
                        deny.scope == scope
                    };
                    if named
                        && !excluded
                        && at_scope
                        && target
                            .actions()
                            .iter()
                            .any(|a| deny_covers(deny, a, &target.attributes))
                    {
                        return Verdict::Deny;
                    }
                }
                // 2. every action must be granted by some assignment of the principal set
                let applicable: Vec<_> = snapshot
                    .assignments
                    .iter()
                    .filter(|a| {
                        principals.contains(&a.principal)
                            && snapshot
                                .scope(a.scope_id)
                                .is_some_and(|s| s.covers(&scope, groups))
                    })
                    .collect();
                let all_granted = target.actions().iter().all(|action| {
                    if action.is_wildcard() {
                        let blocks: Vec<&PermissionBlock> = applicable
                            .iter()
                            .filter(|a| a.condition.is_none())
                            .filter_map(|a| snapshot.roles.get(a.role))
                            .flat_map(|r| r.blocks.iter())
                            .collect();
                        blocks.iter().any(|b| covers_pattern(b, action, &blocks))
                    } else {
                        applicable.iter().any(|a| {
                            let role_grants = snapshot.roles.get(a.role).is_some_and(|r| {
                                r.blocks.iter().any(|b| b.grants(action.as_str()))
                            });
                            let condition_holds = match a.condition.as_deref() {
                                None => true,
                                Some(Ok(c)) => {
                                    c.eval(action.as_str(), &target.attributes).unwrap_or(false)
                                }
                                Some(Err(_)) => false,
                            };
                            role_grants && condition_holds
                        })
                    }
                });
                if all_granted {
                    return Verdict::Allow;
                }
            }
        }
    }
    // 3. Kubernetes RBAC
    if rbac_allows(snapshot, request) {
        return Verdict::Allow;
    }
    // 4. nothing allowed
    let answer = if skipped_non_aad {
        options.non_aad_users
    } else if skipped {
        NoMatch::NoOpinion
    } else {
        options.no_match
    };
    match answer {
        NoMatch::NoOpinion => Verdict::NoOpinion,
        NoMatch::Deny => Verdict::Deny,
    }
}

/// Kubernetes RBAC the slow way: every binding, cluster-wide ones first.
fn rbac_allows(snapshot: &Snapshot, request: &AccessRequest) -> bool {
    let rbac = &snapshot.rbac;
    let namespace = request.namespace();
    let mut bindings = rbac.cluster_role_bindings.iter().chain(
        rbac.role_bindings
            .iter()
            .filter(|b| !namespace.is_empty() && b.namespace == namespace),
    );
    bindings.any(|b| {
        applies_to(b, request).is_some()
            && b.rules
                .as_ref()
                .is_ok_and(|rules| rules.iter().any(|r| rule_allows(request, r)))
    })
}

//! Kubernetes RBAC as the in-tree authorizer evaluates it: ClusterRoleBindings, then the
//! RoleBindings of the request's namespace; a binding grants if a subject names the requester
//! and a rule of its role allows the request. Aggregated ClusterRoles take the rules of every
//! ClusterRole their selectors match (transitively), in place of their own.

use scopegate::model::AccessRequest;
use scopegate::policy::PolicySet;
use scopegate::policy::schema::{K8sBinding, LabelSelector, PolicyRule, Subject};
use std::collections::BTreeMap;

/// `metav1.LabelSelector`: every `matchLabels` pair and every expression; empty selects all.
fn selects(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let labels_ok = selector
        .match_labels
        .iter()
        .all(|(k, v)| labels.get(k) == Some(v));
    let expressions_ok = selector.match_expressions.iter().all(|e| {
        let value = labels.get(&e.key);
        match e.operator.as_str() {
            "In" => value.is_some() && e.values.contains(value.unwrap_or(&String::new())),
            "NotIn" => value.is_none() || !e.values.contains(value.unwrap_or(&String::new())),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        }
    });
    labels_ok && expressions_ok
}

/// Rules of every ClusterRole, aggregation applied until nothing changes.
fn cluster_role_rules(set: &PolicySet) -> BTreeMap<String, Vec<PolicyRule>> {
    let mut rules: BTreeMap<String, Vec<PolicyRule>> = set
        .cluster_roles
        .iter()
        .map(|(_, r)| (r.metadata.name.clone(), r.rules.clone()))
        .collect();
    loop {
        let mut changed = false;
        for (_, role) in &set.cluster_roles {
            let Some(aggregation) = &role.aggregation_rule else {
                continue;
            };
            let mut merged: Vec<PolicyRule> = Vec::new();
            for (_, other) in &set.cluster_roles {
                let picked = other.metadata.name != role.metadata.name
                    && aggregation
                        .cluster_role_selectors
                        .iter()
                        .any(|s| selects(s, &other.metadata.labels));
                if picked {
                    for rule in rules.get(&other.metadata.name).cloned().unwrap_or_default() {
                        if !merged.contains(&rule) {
                            merged.push(rule);
                        }
                    }
                }
            }
            let same = rules.get(&role.metadata.name).is_some_and(|old| {
                old.len() == merged.len() && merged.iter().all(|r| old.contains(r))
            });
            if !same {
                rules.insert(role.metadata.name.clone(), merged);
                changed = true;
            }
        }
        if !changed {
            return rules;
        }
    }
}

fn subject_matches(subject: &Subject, binding_namespace: &str, request: &AccessRequest) -> bool {
    match subject.kind.as_str() {
        "User" => request.user == subject.name,
        "Group" => request.groups.iter().any(|g| g == subject.name),
        "ServiceAccount" => {
            let ns = if subject.namespace.is_empty() {
                binding_namespace
            } else {
                &subject.namespace
            };
            !ns.is_empty() && request.user == format!("system:serviceaccount:{ns}:{}", subject.name)
        }
        _ => false,
    }
}

fn rule_allows(rule: &PolicyRule, request: &AccessRequest) -> bool {
    let has = |list: &[String], value: &str| list.iter().any(|x| x == "*" || x == value);
    if let Some(r) = &request.resource_attributes {
        let resource_ok = rule.resources.iter().any(|x| {
            x == "*"
                || (r.subresource.is_empty() && *x == r.resource)
                || (!r.subresource.is_empty()
                    && (*x == format!("{}/{}", r.resource, r.subresource)
                        || *x == format!("*/{}", r.subresource)))
        });
        let name_ok = rule.resource_names.is_empty()
            || (!r.name.is_empty() && rule.resource_names.contains(&r.name));
        return has(&rule.verbs, &r.verb)
            && has(&rule.api_groups, &r.group)
            && resource_ok
            && name_ok;
    }
    let Some(n) = &request.non_resource_attributes else {
        return false;
    };
    let url_ok = rule.non_resource_urls.iter().any(|u| {
        u == "*"
            || *u == n.path
            || (u.ends_with('*') && n.path.starts_with(u.trim_end_matches('*')))
    });
    has(&rule.verbs, &n.verb) && url_ok
}

/// The id the engine reports for a binding.
fn id(binding: &K8sBinding, namespaced: bool) -> String {
    if namespaced {
        format!(
            "RoleBinding/{}/{}",
            binding.metadata.namespace, binding.metadata.name
        )
    } else {
        format!("ClusterRoleBinding/{}", binding.metadata.name)
    }
}

/// Every binding that grants the request, by id.
pub fn granting(set: &PolicySet, request: &AccessRequest) -> Vec<String> {
    let cluster_roles = cluster_role_rules(set);
    let namespace = request
        .resource_attributes
        .as_ref()
        .map(|r| r.namespace.as_str())
        .unwrap_or_default();
    let role_rules = |binding: &K8sBinding, namespaced: bool| -> Vec<PolicyRule> {
        match binding.role_ref.kind.as_str() {
            "ClusterRole" => cluster_roles
                .get(&binding.role_ref.name)
                .cloned()
                .unwrap_or_default(),
            "Role" if namespaced => set
                .roles
                .iter()
                .find(|(_, r)| {
                    r.metadata.name == binding.role_ref.name
                        && r.metadata.namespace == binding.metadata.namespace
                })
                .map(|(_, r)| r.rules.clone())
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    };
    let cluster = set.cluster_role_bindings.iter().map(|(_, b)| (b, false));
    let local = set
        .role_bindings
        .iter()
        .filter(|(_, b)| !namespace.is_empty() && b.metadata.namespace == namespace)
        .map(|(_, b)| (b, true));
    let mut ids = Vec::new();
    for (binding, namespaced) in cluster.chain(local) {
        let ns = if namespaced {
            binding.metadata.namespace.as_str()
        } else {
            ""
        };
        let named = binding
            .subjects
            .iter()
            .any(|s| subject_matches(s, ns, request));
        if named
            && role_rules(binding, namespaced)
                .iter()
                .any(|r| rule_allows(r, request))
        {
            ids.push(id(binding, namespaced));
        }
    }
    ids
}

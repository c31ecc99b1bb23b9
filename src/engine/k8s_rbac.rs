//! Kubernetes RBAC, evaluated exactly as the in-tree authorizer does
//! (docs/kubernetes-authz.md#rbac-algorithm): ClusterRoleBindings first, then RoleBindings of
//! the request's namespace; the first rule that allows wins; RBAC never denies.

use crate::model::decision::Reason;
use crate::model::name_hash::short_eq;
use crate::model::{AccessRequest, Decision, Source, Verdict};
use crate::policy::rbac::{Binding, RbacIndex};
use crate::policy::schema::{PolicyRule, Subject};

/// RBAC's answer: an allow, or no opinion with the resolution errors met on the way.
#[derive(Debug, Clone, Default)]
pub struct RbacResult {
    pub decision: Option<Decision>,
    pub errors: Vec<String>,
}

impl RbacResult {
    /// Upstream's no-opinion reason: `""` or `RBAC: <errors>`.
    pub fn reason(&self) -> String {
        match self.errors.as_slice() {
            [] => String::new(),
            [one] => format!("RBAC: {one}"),
            many => format!("RBAC: [{}]", many.join(", ")),
        }
    }
}

/// Decides a request with Kubernetes RBAC alone.
pub fn authorize(index: &RbacIndex, request: &AccessRequest) -> RbacResult {
    let mut result = RbacResult::default();
    let ids = index.candidate_ids(request);
    for binding in index.bindings(&ids) {
        let Some(index) = applies_to(binding, request) else {
            continue;
        };
        match &binding.rules {
            Err(e) => {
                if !result.errors.contains(e) {
                    result.errors.push(e.clone());
                }
            }
            Ok(rules) => {
                if rules.iter().any(|r| rule_allows(request, r)) {
                    let shown = binding.clone();
                    let reason = Reason::lazy(move |f| match shown.subjects.get(index) {
                        Some(subject) => {
                            write!(f, "RBAC: allowed by {}", describe(&shown, subject))
                        }
                        None => f.write_str("RBAC: allowed"),
                    });
                    result.decision = Some(
                        Decision::new(Verdict::Allow, Source::KubernetesRbac, reason)
                            .by(binding.id.clone()),
                    );
                    return result;
                }
            }
        }
    }
    result
}

/// Upstream's describer: `ClusterRoleBinding "x" of ClusterRole "y" to Group "z"`.
pub fn describe(b: &Binding, s: &Subject) -> String {
    let subject = if s.kind == "ServiceAccount" {
        let ns = b.subject_namespace(s);
        format!("{} {:?}", s.kind, format!("{}/{ns}", s.name))
    } else {
        format!("{} {:?}", s.kind, s.name)
    };
    if b.namespace.is_empty() {
        format!(
            "ClusterRoleBinding {:?} of {} {:?} to {subject}",
            b.name, b.role_kind, b.role_name
        )
    } else {
        format!(
            "RoleBinding {:?} of {} {:?} to {subject}",
            format!("{}/{}", b.name, b.namespace),
            b.role_kind,
            b.role_name
        )
    }
}

/// The position of the first subject of a binding that names the requester (upstream
/// `appliesTo`); a position, so a lazily rendered reason can name it later.
pub fn applies_to(b: &Binding, request: &AccessRequest) -> Option<usize> {
    b.subjects.iter().position(|s| match s.kind.as_str() {
        "User" => request.user == s.name,
        "Group" => request.groups.contains(&s.name),
        "ServiceAccount" => {
            let ns = b.subject_namespace(s);
            !ns.is_empty()
                && request
                    .user
                    .strip_prefix("system:serviceaccount:")
                    .and_then(|rest| rest.split_once(':'))
                    .is_some_and(|(n, name)| n == ns && name == s.name)
        }
        _ => false,
    })
}

/// Upstream `RuleAllows`.
pub fn rule_allows(request: &AccessRequest, rule: &PolicyRule) -> bool {
    // `short_eq`: in line, not through memcmp (see `name_hash::short_eq`).
    let verb_matches = |verb: &str| {
        rule.verbs
            .iter()
            .any(|v| v == "*" || short_eq(v.as_bytes(), verb.as_bytes()))
    };
    match &request.resource_attributes {
        Some(r) => {
            verb_matches(&r.verb)
                && rule
                    .api_groups
                    .iter()
                    .any(|g| g == "*" || short_eq(g.as_bytes(), r.group.as_bytes()))
                && resource_matches(rule, &r.resource, &r.subresource)
                && (rule.resource_names.is_empty()
                    || (!r.name.is_empty() && rule.resource_names.contains(&r.name)))
        }
        None => {
            let (path, verb) = request
                .non_resource_attributes
                .as_ref()
                .map_or(("", ""), |n| (n.path.as_str(), n.verb.as_str()));
            verb_matches(verb) && rule.non_resource_urls.iter().any(|u| url_matches(u, path))
        }
    }
}

fn resource_matches(rule: &PolicyRule, resource: &str, subresource: &str) -> bool {
    rule.resources.iter().any(|r| {
        if r == "*" {
            return true;
        }
        if subresource.is_empty() {
            return short_eq(r.as_bytes(), resource.as_bytes());
        }
        let combined_len = resource.len() + 1 + subresource.len();
        (r.len() == combined_len
            && r.starts_with(resource)
            && r.as_bytes().get(resource.len()) == Some(&b'/')
            && r.ends_with(subresource))
            || (r.len() == subresource.len() + 2 && r.starts_with("*/") && r.ends_with(subresource))
    })
}

fn url_matches(rule_url: &str, path: &str) -> bool {
    if rule_url == "*" || rule_url == path {
        return true;
    }
    rule_url.ends_with('*') && path.starts_with(rule_url.trim_end_matches('*'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ResourceAttributes;

    fn service_account(name: &str, namespace: &str) -> Subject {
        Subject {
            kind: "ServiceAccount".into(),
            name: name.into(),
            namespace: namespace.into(),
            api_group: String::new(),
        }
    }

    fn binding(namespace: &str, subjects: Vec<Subject>) -> Binding {
        Binding {
            id: "RoleBinding/b".into(),
            name: "b".into(),
            namespace: namespace.into(),
            role_kind: "Role".into(),
            role_name: "r".into(),
            subjects,
            rules: Ok(Vec::new().into()),
        }
    }

    fn as_user(user: &str) -> AccessRequest {
        AccessRequest {
            user: user.into(),
            resource_attributes: Some(Box::new(ResourceAttributes::default())),
            ..AccessRequest::default()
        }
    }

    /// A ServiceAccount subject names one account: its namespace (the binding's when left
    /// out) and its name must both be the requester's; a ClusterRoleBinding's subject without
    /// a namespace names none.
    #[test]
    fn a_service_account_subject_needs_its_namespace_and_its_name() {
        let b = binding(
            "dev",
            vec![
                service_account("web", "prod"),
                service_account("api", ""),
                service_account("web", ""),
            ],
        );
        assert_eq!(
            applies_to(&b, &as_user("system:serviceaccount:dev:web")),
            Some(2)
        );
        assert_eq!(
            applies_to(&b, &as_user("system:serviceaccount:dev:api")),
            Some(1)
        );
        assert_eq!(
            applies_to(&b, &as_user("system:serviceaccount:prod:web")),
            Some(0)
        );
        assert_eq!(
            applies_to(&b, &as_user("system:serviceaccount:prod:api")),
            None
        );
        let cluster_wide = binding("", vec![service_account("web", "")]);
        assert_eq!(
            applies_to(&cluster_wide, &as_user("system:serviceaccount::web")),
            None
        );
    }

    /// `*/<subresource>` names that subresource of every resource; another rule naming a
    /// subresource names it of its own resource only, whatever its length.
    #[test]
    fn subresource_rules_name_their_resource_or_every_one() {
        let rule = |resource: &str| PolicyRule {
            verbs: vec!["get".into()],
            api_groups: vec![String::new()],
            resources: vec![resource.into()],
            ..PolicyRule::default()
        };
        let mut request = as_user("alice");
        if let Some(r) = request.resource_attributes.as_mut() {
            r.verb = "get".into();
            r.resource = "pods".into();
            r.subresource = "log".into();
        }
        assert!(rule_allows(&request, &rule("*/log")));
        assert!(rule_allows(&request, &rule("pods/log")));
        for other in ["p/log", "pods", "pods/status", "*/status", "nodes/log"] {
            assert!(!rule_allows(&request, &rule(other)), "{other}");
        }
    }
}

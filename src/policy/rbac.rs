//! Kubernetes RBAC objects compiled for decisions: ClusterRoles aggregated, role references
//! resolved, bindings indexed by subject so a decision looks only at bindings that name the
//! user, one of its groups or its service account (docs/kubernetes-authz.md#rbac).

use crate::model::AccessRequest;
use crate::policy::filter::{self, BitFilter};
use crate::policy::schema::{K8sBinding, K8sRole, LabelSelector, PolicyRule};
use crate::policy::{Diagnostic, Origin, PolicySet};
use rustc_hash::FxHashMap;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// A binding with its role resolved at load time.
#[derive(Debug, Clone)]
pub struct Binding {
    /// `ClusterRoleBinding/<name>` or `RoleBinding/<ns>/<name>`.
    pub id: Arc<str>,
    pub name: String,
    /// Empty for ClusterRoleBindings.
    pub namespace: String,
    pub role_kind: String,
    pub role_name: String,
    pub subjects: Vec<crate::policy::schema::Subject>,
    /// The rules, or the error upstream reports for an unresolvable role reference.
    pub rules: Result<Arc<[PolicyRule]>, String>,
}

impl Binding {
    /// A subject's namespace: a ServiceAccount subject without one is in the binding's
    /// namespace (empty for a ClusterRoleBinding: it then names no service account).
    pub fn subject_namespace<'b>(&'b self, subject: &'b crate::policy::schema::Subject) -> &'b str {
        if subject.namespace.is_empty() {
            &self.namespace
        } else {
            &subject.namespace
        }
    }
}

/// A request's candidate bindings, on the stack: a user is rarely bound more than a few times.
type Candidates = smallvec::SmallVec<[u32; 16]>;

/// The ClusterRoleBindings and RoleBindings (of the request's namespace) that may name a
/// requester, by index, in load order.
#[derive(Debug, Default)]
pub struct CandidateIds {
    cluster: Candidates,
    namespaced: Candidates,
}

/// Subject keys a binding is found under.
#[derive(Debug, Clone, Default)]
struct SubjectIndex {
    by_user: FxHashMap<String, Vec<u32>>,
    by_group: FxHashMap<String, Vec<u32>>,
}

impl SubjectIndex {
    fn add(&mut self, index: u32, binding: &Binding) {
        for s in &binding.subjects {
            match s.kind.as_str() {
                "User" => self.by_user.entry(s.name.clone()).or_default().push(index),
                "Group" => self.by_group.entry(s.name.clone()).or_default().push(index),
                "ServiceAccount" => {
                    let ns = binding.subject_namespace(s);
                    if !ns.is_empty() {
                        self.by_user
                            .entry(format!("system:serviceaccount:{ns}:{}", s.name))
                            .or_default()
                            .push(index);
                    }
                }
                _ => {}
            }
        }
    }

    /// Candidate bindings for a user (`None`: no binding names it), in load order.
    fn candidates(&self, user: Option<&str>, groups: &[&str]) -> Candidates {
        let mut out = Candidates::new();
        if let Some(ids) = user.and_then(|u| self.by_user.get(u)) {
            out.extend_from_slice(ids);
        }
        if !self.by_group.is_empty() {
            for g in groups {
                if let Some(ids) = self.by_group.get(*g) {
                    out.extend_from_slice(ids);
                }
            }
        }
        if out.len() > 1 {
            out.sort_unstable();
            out.dedup();
        }
        out
    }
}

/// Kubernetes RBAC objects, resolved (aggregation applied) and indexed by subject.
#[derive(Debug, Clone, Default)]
pub struct RbacIndex {
    pub cluster_role_bindings: Vec<Arc<Binding>>,
    pub role_bindings: Vec<Arc<Binding>>,
    cluster_subjects: SubjectIndex,
    namespace_subjects: FxHashMap<String, SubjectIndex>,
    /// Every group name any binding mentions, by [`filter::name_hash`]: Entra puts up to 200
    /// groups in a token and bindings name few.
    group_filter: BitFilter,
    /// The same for user names (service accounts included): Entra users are bound through
    /// their groups, so most requesters are turned away here without a map lookup.
    user_filter: BitFilter,
    cluster_roles: BTreeMap<String, Arc<[PolicyRule]>>,
    roles: HashMap<(String, String), Arc<[PolicyRule]>>,
}

// === impl RbacIndex ===

impl RbacIndex {
    /// Resolves aggregation and role references and indexes bindings, from a set holding one
    /// object per identity ([`PolicySet::merge_copies`] runs first). Missing roles are
    /// warnings: the binding grants nothing but nothing else is affected.
    pub(super) fn build(set: &PolicySet, diagnostics: &mut Vec<Diagnostic>) -> RbacIndex {
        let mut index = RbacIndex::default();
        index.add_cluster_roles(set);
        index.add_roles(set, diagnostics);
        index.add_cluster_role_bindings(set, diagnostics);
        index.add_role_bindings(set, diagnostics);
        // At least 8,192 bits (1 KiB, in L1): bindings name few groups, and each false
        // positive costs two map lookups.
        index.group_filter = index.subject_filter(|s| &s.by_group, 8192);
        index.user_filter = index.subject_filter(|s| &s.by_user, 1024);
        index
    }

    /// Takes the ClusterRoles, aggregated.
    fn add_cluster_roles(&mut self, set: &PolicySet) {
        let cluster_roles: BTreeMap<String, (&Origin, &K8sRole)> = set
            .cluster_roles
            .iter()
            .map(|(origin, role)| (role.metadata.name.clone(), (origin, role)))
            .collect();
        self.cluster_roles = aggregate(&cluster_roles);
    }

    /// Takes the Roles by namespace and name; a Role without namespace is an error.
    fn add_roles(&mut self, set: &PolicySet, diagnostics: &mut Vec<Diagnostic>) {
        for (origin, role) in &set.roles {
            if role.metadata.namespace.is_empty() {
                diagnostics.push(Diagnostic::error(
                    origin.field("metadata.namespace"),
                    "Role has no namespace",
                ));
            }
            let key = (role.metadata.namespace.clone(), role.metadata.name.clone());
            self.roles.insert(key, Arc::from(role.rules.clone()));
        }
    }

    /// Resolves and indexes the ClusterRoleBindings by subject.
    fn add_cluster_role_bindings(&mut self, set: &PolicySet, diagnostics: &mut Vec<Diagnostic>) {
        for (origin, b) in &set.cluster_role_bindings {
            crate::policy::pace::point();
            let binding = self.resolve(origin, b, "", diagnostics);
            self.cluster_subjects
                .add(self.cluster_role_bindings.len() as u32, &binding);
            self.cluster_role_bindings.push(Arc::new(binding));
        }
    }

    /// Resolves and indexes the RoleBindings by namespace and subject; one without
    /// namespace is an error and left out.
    fn add_role_bindings(&mut self, set: &PolicySet, diagnostics: &mut Vec<Diagnostic>) {
        for (origin, b) in &set.role_bindings {
            crate::policy::pace::point();
            let ns = b.metadata.namespace.clone();
            if ns.is_empty() {
                diagnostics.push(Diagnostic::error(
                    origin.field("metadata.namespace"),
                    "RoleBinding has no namespace",
                ));
                continue;
            }
            let binding = self.resolve(origin, b, &ns, diagnostics);
            self.namespace_subjects
                .entry(ns)
                .or_default()
                .add(self.role_bindings.len() as u32, &binding);
            self.role_bindings.push(Arc::new(binding));
        }
    }

    /// A prefilter over the names one kind of subject key holds, in every index.
    fn subject_filter(
        &self,
        keys: fn(&SubjectIndex) -> &FxHashMap<String, Vec<u32>>,
        min_buckets: usize,
    ) -> BitFilter {
        let names: Vec<u64> = std::iter::once(&self.cluster_subjects)
            .chain(self.namespace_subjects.values())
            .flat_map(|s| keys(s).keys())
            .map(|n| filter::name_hash(n.as_bytes()))
            .collect();
        BitFilter::new(names.into_iter(), min_buckets)
    }

    fn resolve(
        &self,
        origin: &Origin,
        b: &K8sBinding,
        namespace: &str,
        diagnostics: &mut Vec<Diagnostic>,
    ) -> Binding {
        let rules = match b.role_ref.kind.as_str() {
            "ClusterRole" => self
                .cluster_roles
                .get(&b.role_ref.name)
                .cloned()
                .ok_or_else(|| {
                    format!(
                        "clusterrole.rbac.authorization.k8s.io {:?} not found",
                        b.role_ref.name
                    )
                }),
            "Role" if !namespace.is_empty() => self
                .roles
                .get(&(namespace.to_string(), b.role_ref.name.clone()))
                .cloned()
                .ok_or_else(|| {
                    format!(
                        "role.rbac.authorization.k8s.io {:?} not found",
                        b.role_ref.name
                    )
                }),
            kind => Err(format!("unsupported role reference kind: {kind:?}")),
        };
        if let Err(e) = &rules {
            diagnostics.push(Diagnostic::warning(
                origin.field("roleRef"),
                format!("binding grants nothing: {e}"),
            ));
        }
        let id = if namespace.is_empty() {
            format!("ClusterRoleBinding/{}", b.metadata.name)
        } else {
            format!("RoleBinding/{namespace}/{}", b.metadata.name)
        };
        Binding {
            id: Arc::from(id),
            name: b.metadata.name.clone(),
            namespace: namespace.to_string(),
            role_kind: b.role_ref.kind.clone(),
            role_name: b.role_ref.name.clone(),
            subjects: b.subjects.clone(),
            rules,
        }
    }

    /// Number of Roles and ClusterRoles.
    pub fn role_count(&self) -> usize {
        self.cluster_roles.len() + self.roles.len()
    }

    /// Number of RoleBindings and ClusterRoleBindings.
    pub fn binding_count(&self) -> usize {
        self.cluster_role_bindings.len() + self.role_bindings.len()
    }

    /// The bindings a request's candidate ids name, ClusterRoleBindings first, iterated where
    /// the ids lie (the lists are not moved into the iterator).
    pub fn bindings<'a>(&'a self, ids: &'a CandidateIds) -> impl Iterator<Item = &'a Arc<Binding>> {
        ids.cluster
            .iter()
            .filter_map(|i| self.cluster_role_bindings.get(*i as usize))
            .chain(
                ids.namespaced
                    .iter()
                    .filter_map(|i| self.role_bindings.get(*i as usize)),
            )
    }

    /// The indexes of the bindings that may name the requester (see [`RbacIndex::bindings`]).
    pub fn candidate_ids(&self, request: &AccessRequest) -> CandidateIds {
        let groups = self.named_groups(request);
        let user = Some(request.user.as_str()).filter(|u| {
            self.user_filter
                .may_contain(filter::name_hash(u.as_bytes()))
        });
        if user.is_none() && groups.is_empty() {
            return CandidateIds::default();
        }
        let cluster = self.cluster_subjects.candidates(user, &groups);
        let namespace = request.namespace();
        let namespaced = if namespace.is_empty() {
            Candidates::new()
        } else {
            self.namespace_subjects
                .get(namespace)
                .map(|s| s.candidates(user, &groups))
                .unwrap_or_default()
        };
        CandidateIds {
            cluster,
            namespaced,
        }
    }

    /// The request's groups that some binding may name, by the hash they were decoded with
    /// (checked once for both indexes).
    fn named_groups<'r>(&self, request: &'r AccessRequest) -> smallvec::SmallVec<[&'r str; 8]> {
        let groups = &request.groups;
        let mut named = smallvec::SmallVec::new();
        for entry in groups.entries() {
            if self.group_filter.may_contain(entry.hash) {
                named.push(groups.name(entry));
            }
        }
        named
    }
}

/// The aggregation controller's fixpoint: an aggregated ClusterRole's rules are replaced by
/// the rules of every ClusterRole its selectors pick (sorted by name, itself skipped,
/// duplicates dropped), repeated until nothing changes.
fn aggregate(roles: &BTreeMap<String, (&Origin, &K8sRole)>) -> BTreeMap<String, Arc<[PolicyRule]>> {
    let mut rules: BTreeMap<String, Vec<PolicyRule>> = roles
        .iter()
        .map(|(name, (_, role))| (name.clone(), role.rules.clone()))
        .collect();
    for _ in 0..=roles.len() {
        let mut changed = false;
        for (name, (_, role)) in roles {
            let Some(aggregation) = &role.aggregation_rule else {
                continue;
            };
            let mut merged: Vec<PolicyRule> = Vec::new();
            for selector in &aggregation.cluster_role_selectors {
                for (other, (_, other_role)) in roles {
                    if other == name || !selector_matches(selector, &other_role.metadata.labels) {
                        continue;
                    }
                    for rule in rules.get(other).into_iter().flatten() {
                        if !merged.contains(rule) {
                            merged.push(rule.clone());
                        }
                    }
                }
            }
            if rules.get(name) != Some(&merged) {
                rules.insert(name.clone(), merged);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    rules.into_iter().map(|(k, v)| (k, Arc::from(v))).collect()
}

/// `metav1.LabelSelector` semantics; an empty selector selects everything.
pub fn selector_matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    selector
        .match_labels
        .iter()
        .all(|(k, v)| labels.get(k) == Some(v))
        && selector.match_expressions.iter().all(|e| {
            let value = labels.get(&e.key);
            match e.operator.as_str() {
                "In" => value.is_some_and(|v| e.values.contains(v)),
                "NotIn" => value.is_none_or(|v| !e.values.contains(v)),
                "Exists" => value.is_some(),
                "DoesNotExist" => value.is_none(),
                _ => false,
            }
        })
}

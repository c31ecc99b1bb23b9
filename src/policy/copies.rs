//! Objects read more than once: a `kubectl get roles,rolebindings,clusterroles,
//! clusterrolebindings -A -o yaml` export holds every default object that
//! `policies/kubernetes/bootstrap/` ships. An object whose identity (kind, namespace, name) and
//! content (rules and aggregation rule, or role reference and subjects) are those of one read
//! before is the same object: it is loaded once, with a note. The same identity with other
//! content is an error naming both places. (The live cluster's objects replace file copies
//! before this, in `PolicySet::overlay`.)

use super::diagnostic::{Diagnostic, DiagnosticKind, Origin};
use super::schema::{K8sBinding, K8sRole, ObjectMeta};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// A Kubernetes RBAC object as copies of it are found and compared.
pub(super) trait Object {
    fn metadata(&self) -> &ObjectMeta;
    /// Whether two objects with the same identity grant the same.
    fn same(&self, other: &Self) -> bool;

    /// The object's identity within its kind: a namespaced kind by namespace and name, a
    /// cluster-scoped one by name alone (a stray namespace on it means nothing to the API).
    fn identity(&self, namespaced: bool) -> (&str, &str) {
        let meta = self.metadata();
        let namespace = if namespaced {
            meta.namespace.as_str()
        } else {
            ""
        };
        (namespace, meta.name.as_str())
    }
}

impl Object for K8sRole {
    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }

    /// Labels count (aggregation selects by them); a role with an aggregation rule has its
    /// rules written by the aggregation controller, so a cluster's copy holds rules where a
    /// file holds none: only the rule counts.
    fn same(&self, other: &Self) -> bool {
        self.metadata.labels == other.metadata.labels
            && self.aggregation_rule == other.aggregation_rule
            && (self.aggregation_rule.is_some() || self.rules == other.rules)
    }
}

impl Object for K8sBinding {
    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn same(&self, other: &Self) -> bool {
        self.role_ref == other.role_ref && self.subjects == other.subjects
    }
}

/// Identical copies by (file of the copy, file of the object it copies): how many, and the
/// first. Azure objects (role definitions, role and deny assignments) read twice are counted
/// here too (`Snapshot::build`).
#[derive(Default)]
pub(super) struct Copies(BTreeMap<FilePair, CopyCount>);

/// The file of the copies and the file of the objects kept.
type FilePair = (Arc<str>, Arc<str>);

/// How many copies, where the first is and what it is.
type CopyCount = (usize, Origin, String);

impl Copies {
    pub(super) fn add(&mut self, copy: &Origin, kept: &Origin, what: String) {
        let entry = self
            .0
            .entry((copy.file.clone(), kept.file.clone()))
            .or_insert_with(|| (0, copy.clone(), what));
        entry.0 += 1;
    }

    /// One note per pair of files.
    pub(super) fn report(self, diagnostics: &mut Vec<Diagnostic>) {
        for ((_, kept), (count, first, what)) in self.0 {
            let objects = if count == 1 {
                "1 object is an identical copy".to_string()
            } else {
                format!("{count} objects are identical copies")
            };
            diagnostics.push(
                Diagnostic::note(
                    first,
                    format!("{objects} of objects in `{kept}` (first: {what}), loaded once"),
                )
                .of_kind(DiagnosticKind::IdenticalCopy),
            );
        }
    }
}

/// Leaves the first object of each identity in `list` (see the module doc), counting
/// identical copies in `copies` and reporting different ones.
pub(super) fn keep_first<T: Object>(
    list: &mut Vec<(Origin, T)>,
    kind: &str,
    namespaced: bool,
    copies: &mut Copies,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let mut first: HashMap<(String, String), usize> = HashMap::with_capacity(list.len());
    let mut dropped = vec![false; list.len()];
    for i in 0..list.len() {
        super::pace::point();
        let Some((_, object)) = list.get(i) else {
            continue;
        };
        let (namespace, name) = object.identity(namespaced);
        let key = (namespace.to_string(), name.to_string());
        let Some(&kept) = first.get(&key) else {
            first.insert(key, i);
            continue;
        };
        let (Some((kept_origin, kept_object)), Some((origin, object))) =
            (list.get(kept), list.get(i))
        else {
            continue;
        };
        let (namespace, name) = &key;
        let what = if namespace.is_empty() {
            format!("{kind} `{name}`")
        } else {
            format!("{kind} `{namespace}/{name}`")
        };
        if kept_object.same(object) {
            copies.add(origin, kept_origin, what);
        } else {
            diagnostics.push(Diagnostic::error(
                origin.field("metadata.name"),
                format!(
                    "{what} is also at {kept_origin} with other content; drop one of the two \
                     directories (for example `bootstrap/` when loading a cluster export)"
                ),
            ));
        }
        if let Some(d) = dropped.get_mut(i) {
            *d = true;
        }
    }
    let mut index = 0;
    list.retain(|_| {
        let keep = !dropped.get(index).copied().unwrap_or(false);
        index += 1;
        keep
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::PolicySet;
    use crate::policy::parse::parse_text;

    fn bindings(file: &str, group: &str) -> PolicySet {
        bindings_in(file, group, "")
    }

    /// A ClusterRoleBinding `ops` to `group`, with `metadata` holding `more` besides its name.
    fn bindings_in(file: &str, group: &str, more: &str) -> PolicySet {
        let (mut set, mut diagnostics) = (PolicySet::default(), Vec::new());
        let text = format!(
            "kind: ClusterRoleBinding\napiVersion: rbac.authorization.k8s.io/v1\n\
             metadata: {{name: ops{more}}}\nroleRef: {{kind: ClusterRole, name: view}}\n\
             subjects: [{{kind: Group, name: {group}}}]\n"
        );
        parse_text(
            file,
            &text,
            crate::policy::parse::Format::Yaml,
            &mut set,
            &mut diagnostics,
        );
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        set
    }

    fn subjects(set: &PolicySet) -> Vec<String> {
        set.cluster_role_bindings
            .iter()
            .flat_map(|(_, b)| b.subjects.iter().map(|s| s.name.clone()))
            .collect()
    }

    #[test]
    fn identical_copies_load_once_with_a_note_and_different_ones_are_errors() {
        let mut set = bindings("a.yaml", "ops");
        set.extend(bindings("b.yaml", "ops"));
        let (mut copies, mut diagnostics) = (Copies::default(), Vec::new());
        set.merge_copies(&mut copies, &mut diagnostics);
        copies.report(&mut diagnostics);
        assert_eq!(subjects(&set), ["ops"]);
        assert_eq!(diagnostics.len(), 1, "{diagnostics:?}");
        assert!(!diagnostics[0].is_error() && diagnostics[0].origin.file.contains("b.yaml"));

        let mut set = bindings("a.yaml", "ops");
        set.extend(bindings("b.yaml", "devs"));
        let (mut copies, mut diagnostics) = (Copies::default(), Vec::new());
        set.merge_copies(&mut copies, &mut diagnostics);
        let text = format!("{diagnostics:?}");
        assert!(diagnostics.iter().any(Diagnostic::is_error), "{text}");
        assert!(text.contains("a.yaml") && text.contains("b.yaml"), "{text}");
    }

    /// A cluster-scoped object is the same object whatever stray namespace a copy carries, as
    /// the live source's overlay counts it.
    #[test]
    fn a_stray_namespace_does_not_make_a_cluster_scoped_copy_another_object() {
        let mut set = bindings("a.yaml", "ops");
        set.extend(bindings_in("b.yaml", "ops", ", namespace: kube-system"));
        let (mut copies, mut diagnostics) = (Copies::default(), Vec::new());
        set.merge_copies(&mut copies, &mut diagnostics);
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        assert_eq!(subjects(&set), ["ops"]);
    }
}

//! Every policy object read from the sources, before validation, and the operations on whole
//! sets (merging what several files and the live cluster read).

use super::assignments::AssignmentSet;
use super::copies::{Copies, Object, keep_first};
use super::diagnostic::Diagnostic;
use super::diagnostic::Origin;
use super::directory::{Group, Member, User};
use super::pace;
use super::schema::{
    DenyAssignment, K8sBinding, K8sRole, ManagementGroupEntity, RoleDefinition, ScheduleInstance,
};
use super::workload::{FederatedCredential, ManagedIdentity, ServiceAccount};
use std::sync::Arc;

/// Every policy object read from the sources, before validation.
#[derive(Debug, Clone, Default)]
pub struct PolicySet {
    pub role_definitions: Vec<(Origin, RoleDefinition)>,
    /// Compiled as read.
    pub role_assignments: AssignmentSet,
    pub deny_assignments: Vec<(Origin, DenyAssignment)>,
    pub management_groups: Vec<(Origin, ManagementGroupEntity)>,
    pub roles: Vec<(Origin, K8sRole)>,
    pub cluster_roles: Vec<(Origin, K8sRole)>,
    pub role_bindings: Vec<(Origin, K8sBinding)>,
    pub cluster_role_bindings: Vec<(Origin, K8sBinding)>,
    /// Subscription -> management groups, nearest first, given directly (vectors, tests).
    pub management_group_ancestry: Vec<(String, Vec<String>)>,
    /// Entra users (`entra-users.json`, or objects of that shape), ids lower-cased.
    pub directory_users: Vec<(Origin, User)>,
    /// Entra groups with the members `$expand` gave them.
    pub directory_groups: Vec<(Origin, Group)>,
    /// Direct members read from `entra-group-members/<group id>.json`: (group id, member).
    pub directory_members: Vec<(Origin, (Arc<str>, Member))>,
    /// Groups that have a member file (even an empty one): it replaces their `members`.
    pub directory_member_files: Vec<(Origin, Arc<str>)>,
    /// PIM role assignment schedule instances: role assignments with a validity window.
    pub role_assignment_schedule_instances: Vec<(Origin, ScheduleInstance)>,
    /// PIM role eligibility schedule instances: they grant nothing.
    pub role_eligibility_schedule_instances: Vec<(Origin, ScheduleInstance)>,
    /// User-assigned managed identities (`az identity list`).
    pub managed_identities: Vec<(Origin, ManagedIdentity)>,
    /// Federated identity credentials (`az identity federated-credential list`).
    pub federated_credentials: Vec<(Origin, FederatedCredential)>,
    /// Kubernetes ServiceAccounts, with their workload identity annotations.
    pub service_accounts: Vec<(Origin, ServiceAccount)>,
}

/// Names every list of a [`PolicySet`] to `$each!`, once for all the operations on whole
/// sets below. Each use destructures the set with these names, so a field added to
/// `PolicySet` does not compile until it is listed here (and so handled everywhere).
macro_rules! policy_lists {
    ($each:ident) => {
        $each!(
            role_definitions,
            role_assignments,
            deny_assignments,
            management_groups,
            roles,
            cluster_roles,
            role_bindings,
            cluster_role_bindings,
            management_group_ancestry,
            directory_users,
            directory_groups,
            directory_members,
            directory_member_files,
            role_assignment_schedule_instances,
            role_eligibility_schedule_instances,
            managed_identities,
            federated_credentials,
            service_accounts
        )
    };
}

impl PolicySet {
    /// Leaves one of each Kubernetes RBAC object read more than once (see
    /// [`super::copies`]), counting identical copies in `copies`.
    pub(super) fn merge_copies(&mut self, copies: &mut Copies, diagnostics: &mut Vec<Diagnostic>) {
        keep_first(
            &mut self.cluster_roles,
            "ClusterRole",
            false,
            copies,
            diagnostics,
        );
        keep_first(&mut self.roles, "Role", true, copies, diagnostics);
        keep_first(
            &mut self.cluster_role_bindings,
            "ClusterRoleBinding",
            false,
            copies,
            diagnostics,
        );
        keep_first(
            &mut self.role_bindings,
            "RoleBinding",
            true,
            copies,
            diagnostics,
        );
    }

    /// Adds every object of `other`.
    pub fn extend(&mut self, other: PolicySet) {
        macro_rules! each {
            ($($list:ident),*) => {{
                let PolicySet { $($list),* } = other;
                $(self.$list.add_moved($list);)*
            }};
        }
        policy_lists!(each);
    }

    /// Lays the live cluster's RBAC objects over this set (the files'): a file copy of an
    /// object the cluster also has (same kind, namespace and name) is dropped, since the
    /// cluster's own object is the truth. Returns what was dropped, as `kind ns/name` and
    /// where it was read. `cluster` holds no duplicates of its own (its objects are keyed).
    pub fn overlay(&mut self, cluster: PolicySet) -> Vec<(Origin, String)> {
        let mut replaced = Vec::new();
        drop_same(&mut self.roles, &cluster.roles, "Role", true, &mut replaced);
        drop_same(
            &mut self.cluster_roles,
            &cluster.cluster_roles,
            "ClusterRole",
            false,
            &mut replaced,
        );
        drop_same(
            &mut self.role_bindings,
            &cluster.role_bindings,
            "RoleBinding",
            true,
            &mut replaced,
        );
        drop_same(
            &mut self.cluster_role_bindings,
            &cluster.cluster_role_bindings,
            "ClusterRoleBinding",
            false,
            &mut replaced,
        );
        drop_same_accounts(
            &mut self.service_accounts,
            &cluster.service_accounts,
            &mut replaced,
        );
        self.extend(cluster);
        replaced
    }

    /// Adds a copy of every object of `other` (a file's kept parse), a few at a time between
    /// [`pace::point`]s: a reload copies what unchanged files held, up to a million objects.
    pub fn extend_from(&mut self, other: &PolicySet) {
        macro_rules! each {
            ($($list:ident),*) => {{
                let PolicySet { $($list),* } = other;
                $(self.$list.add_copied($list);)*
            }};
        }
        policy_lists!(each);
    }

    /// Frees this set's lists an item at a time (see [`pace::drop_paced`]): a replaced parse
    /// of a large file is freed by the reload that replaces it.
    pub fn dismantle(self) {
        macro_rules! each {
            ($($list:ident),*) => {{
                let PolicySet { $($list),* } = self;
                $($list.free();)*
            }};
        }
        policy_lists!(each);
    }

    /// Makes room for the objects of `sets` (on a reload, the kept parses it copies), so
    /// adding them regrows none of the large lists: a regrowth copies the whole list at
    /// once, milliseconds in which a paced reload cannot give the core back.
    pub fn reserve_for<'a>(&mut self, sets: impl Iterator<Item = &'a PolicySet> + Clone) {
        macro_rules! each {
            ($($list:ident),*) => {{
                let PolicySet { $($list),* } = self;
                $($list.reserve_room(sets.clone().map(|s| s.$list.count()).sum());)*
            }};
        }
        policy_lists!(each);
    }
}

/// Removes from `files` every object `cluster` also has, noting each in `replaced`.
fn drop_same<T: Object>(
    files: &mut Vec<(Origin, T)>,
    cluster: &[(Origin, T)],
    kind: &str,
    namespaced: bool,
    replaced: &mut Vec<(Origin, String)>,
) {
    if cluster.is_empty() || files.is_empty() {
        return;
    }
    let live: std::collections::HashSet<(&str, &str)> = cluster
        .iter()
        .map(|(_, o)| o.identity(namespaced))
        .collect();
    files.retain(|(origin, object)| {
        let (namespace, name) = object.identity(namespaced);
        if !live.contains(&(namespace, name)) {
            return true;
        }
        let id = if namespaced {
            format!("{kind} `{namespace}/{name}`")
        } else {
            format!("{kind} `{name}`")
        };
        replaced.push((origin.clone(), id));
        false
    });
}

/// Removes from `files` every ServiceAccount `cluster` also has (same namespace and name),
/// noting each in `replaced`.
fn drop_same_accounts(
    files: &mut Vec<(Origin, ServiceAccount)>,
    cluster: &[(Origin, ServiceAccount)],
    replaced: &mut Vec<(Origin, String)>,
) {
    if cluster.is_empty() || files.is_empty() {
        return;
    }
    let live: std::collections::HashSet<(&str, &str)> = cluster
        .iter()
        .map(|(_, a)| (&*a.namespace, &*a.name))
        .collect();
    files.retain(|(origin, account)| {
        if !live.contains(&(&*account.namespace, &*account.name)) {
            return true;
        }
        replaced.push((
            origin.clone(),
            format!("ServiceAccount `{}/{}`", account.namespace, account.name),
        ));
        false
    });
}

/// What the operations on whole sets do to each of a [`PolicySet`]'s lists.
trait PolicyList {
    fn count(&self) -> usize;
    /// Moves `other`'s objects in.
    fn add_moved(&mut self, other: Self);
    /// Copies `other`'s objects in, passing a [`pace::point`] per object.
    fn add_copied(&mut self, other: &Self);
    fn reserve_room(&mut self, more: usize);
    /// Frees the objects, passing a [`pace::point`] per object.
    fn free(self);
}

impl<T: Clone> PolicyList for Vec<T> {
    fn count(&self) -> usize {
        self.len()
    }

    fn add_moved(&mut self, other: Self) {
        self.extend(other);
    }

    fn add_copied(&mut self, other: &Self) {
        self.reserve(other.len());
        for item in other {
            pace::point();
            self.push(item.clone());
        }
    }

    fn reserve_room(&mut self, more: usize) {
        self.reserve(more);
    }

    fn free(self) {
        pace::drop_paced(self);
    }
}

impl PolicyList for AssignmentSet {
    fn count(&self) -> usize {
        self.len()
    }

    fn add_moved(&mut self, other: Self) {
        self.extend(other);
    }

    fn add_copied(&mut self, other: &Self) {
        self.extend_from(other);
    }

    fn reserve_room(&mut self, more: usize) {
        self.reserve(more);
    }

    fn free(self) {
        self.dismantle();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::parse;
    use serde_json::json;

    fn set_of(file: &str, objects: serde_json::Value) -> PolicySet {
        let mut set = PolicySet::default();
        let mut diagnostics = Vec::new();
        parse::add_value(&Origin::new(file, "$"), objects, &mut set, &mut diagnostics);
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        set
    }

    fn role(kind: &str, namespace: &str, name: &str, verb: &str) -> serde_json::Value {
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind,
               "metadata": {"name": name, "namespace": namespace},
               "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": [verb]}]})
    }

    #[test]
    fn overlay_replaces_file_copies_of_the_same_object_only() {
        let mut files = set_of(
            "files.yaml",
            json!([
                role("ClusterRole", "", "view", "get"),
                role("ClusterRole", "", "app-only", "get"),
                role("Role", "dev", "reader", "get"),
                role("Role", "prod", "reader", "get"),
            ]),
        );
        let cluster = set_of(
            "cluster",
            json!([
                // A stray namespace on a cluster-scoped object does not make it another one.
                role("ClusterRole", "kube-system", "view", "list"),
                role("Role", "dev", "reader", "list"),
            ]),
        );
        let replaced = files.overlay(cluster);
        let names: Vec<_> = replaced.iter().map(|(_, id)| id.as_str()).collect();
        assert_eq!(names, ["Role `dev/reader`", "ClusterRole `view`"]);
        assert!(replaced.iter().all(|(o, _)| &*o.file == "files.yaml"));
        let view: Vec<_> = files
            .cluster_roles
            .iter()
            .filter(|(_, r)| r.metadata.name == "view")
            .collect();
        assert_eq!(view.len(), 1);
        assert_eq!(&*view[0].0.file, "cluster");
        assert_eq!(files.cluster_roles.len(), 2);
        let readers: Vec<_> = files
            .roles
            .iter()
            .map(|(o, r)| (&*o.file, r.metadata.namespace.as_str()))
            .collect();
        assert_eq!(readers, [("files.yaml", "prod"), ("cluster", "dev")]);
    }
}

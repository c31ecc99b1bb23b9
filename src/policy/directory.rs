//! The directory snapshot: Entra users and groups as Microsoft Graph or `az ad` print them,
//! reduced to what identity and authorization read — whether an account is enabled, and the
//! transitive group membership of every principal (users, groups, service principals).
//!
//! Membership is resolved once per generation (spec `identity.md` C3): memberOf(P) is the
//! least fixpoint of the groups listing P, closed over groups listing those groups. Cycles
//! terminate and every group on a cycle is returned. Ids are lower-case.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// What the directory knows about one user.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct User {
    pub id: Arc<str>,
    pub user_principal_name: Option<String>,
    /// `accountEnabled`; `None` when the export did not select it (unknown, not disabled).
    pub account_enabled: Option<bool>,
}

/// Kinds of directory objects a group can list as members (Graph `@odata.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberType {
    User,
    Group,
    ServicePrincipal,
    /// Devices, contacts and types this version does not know: kept, never expanded.
    Other,
}

impl MemberType {
    /// From Graph's `@odata.type` (`#microsoft.graph.user`, …).
    pub fn from_odata_type(text: &str) -> MemberType {
        match text.strip_prefix("#microsoft.graph.").unwrap_or(text) {
            "user" => MemberType::User,
            "group" => MemberType::Group,
            "servicePrincipal" => MemberType::ServicePrincipal,
            _ => MemberType::Other,
        }
    }
}

/// One direct member of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: Arc<str>,
    pub kind: MemberType,
}

/// A group with its direct members.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Group {
    pub id: Arc<str>,
    pub display_name: Option<String>,
    pub members: Vec<Member>,
}

/// An immutable, resolved directory.
#[derive(Debug, Default)]
pub struct Directory {
    users: HashMap<Arc<str>, User>,
    /// Every principal named anywhere (user list or a group's members) -> its transitive
    /// groups, sorted. Principals that are in no group map to an empty list.
    member_of: HashMap<Arc<str>, Box<[Arc<str>]>>,
    /// The same for principals and groups whose ids are object ids, as GUIDs: a CheckAccess
    /// question names its subject and groups by GUID and reads no text.
    member_of_objects: HashMap<uuid::Uuid, Box<[uuid::Uuid]>>,
    group_count: usize,
    membership_count: usize,
}

/// Lower-cases an object id; ids compare case-insensitively in Entra.
pub fn canonical_id(id: &str) -> Arc<str> {
    Arc::from(lower_case(id))
}

/// An id in lower case, copied only when it has an upper-case letter (lookups on the
/// request path take ids as sent).
fn lower_case(id: &str) -> std::borrow::Cow<'_, str> {
    if id.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Owned(id.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(id)
    }
}

impl Directory {
    /// Resolves users and groups (ids already canonical) into a directory.
    pub fn build(users: Vec<User>, groups: Vec<Group>) -> Directory {
        // Direct parents: member id -> groups that list it, as any kind (the first step up)
        // and as a group (every further step: only groups have members).
        let mut parents: HashMap<Arc<str>, Vec<Arc<str>>> = HashMap::new();
        let mut group_parents: HashMap<Arc<str>, Vec<Arc<str>>> = HashMap::new();
        for group in &groups {
            for member in &group.members {
                let table = match member.kind {
                    MemberType::Other => continue,
                    MemberType::Group => &mut group_parents,
                    MemberType::User | MemberType::ServicePrincipal => &mut parents,
                };
                table
                    .entry(member.id.clone())
                    .or_default()
                    .push(group.id.clone());
            }
        }
        for (member, groups) in &group_parents {
            parents
                .entry(member.clone())
                .or_default()
                .extend(groups.iter().cloned());
        }
        let mut member_of: HashMap<Arc<str>, Box<[Arc<str>]>> = HashMap::new();
        let mut membership_count = 0;
        let principals: Vec<Arc<str>> = users
            .iter()
            .map(|u| u.id.clone())
            .chain(parents.keys().cloned())
            .chain(groups.iter().map(|g| g.id.clone()))
            .collect();
        for principal in principals {
            if member_of.contains_key(&principal) {
                continue;
            }
            let closure = transitive_parents(&principal, &parents, &group_parents);
            membership_count += closure.len();
            member_of.insert(principal, closure);
        }
        let member_of_objects = member_of
            .iter()
            .filter_map(|(id, groups)| {
                let groups = groups
                    .iter()
                    .filter_map(|g| crate::model::name_hash::object_id(g))
                    .collect();
                Some((crate::model::name_hash::object_id(id)?, groups))
            })
            .collect();
        let users = users.into_iter().map(|u| (u.id.clone(), u)).collect();
        Directory {
            users,
            member_of,
            member_of_objects,
            group_count: groups.len(),
            membership_count,
        }
    }

    /// The user with this object id (any case), if the directory lists one.
    pub fn user(&self, id: &str) -> Option<&User> {
        self.users.get(&*lower_case(id))
    }

    /// `accountEnabled` of the user with this object id (any case); `None` when unknown.
    pub fn account_enabled(&self, id: &str) -> Option<bool> {
        self.user(id).and_then(|u| u.account_enabled)
    }

    /// The transitive groups of a principal (its id in any case; lower-case ids, sorted), or
    /// `None` when the principal is neither a listed user nor a member of any group.
    pub fn member_of(&self, id: &str) -> Option<&[Arc<str>]> {
        self.member_of
            .get(&*lower_case(id))
            .map(|groups| &groups[..])
    }

    /// The transitive groups of an object (those whose ids are object ids); empty when the
    /// directory does not know it.
    pub fn groups_of_object(&self, id: uuid::Uuid) -> &[uuid::Uuid] {
        self.member_of_objects
            .get(&id)
            .map_or(&[], |groups| &groups[..])
    }

    /// `id` (as given) then its transitive groups: the names a request naming `id` stands for
    /// when the groups it is a member of count with it.
    pub fn with_groups<'d>(&'d self, id: &'d str) -> impl Iterator<Item = &'d str> {
        std::iter::once(id).chain(self.member_of(id).unwrap_or_default().iter().map(|g| &**g))
    }

    /// Every principal the directory knows (lower-case id) with its transitive groups.
    pub fn memberships(&self) -> impl Iterator<Item = (&str, &[Arc<str>])> {
        self.member_of
            .iter()
            .map(|(id, groups)| (&**id, &groups[..]))
    }

    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    pub fn group_count(&self) -> usize {
        self.group_count
    }

    /// Resolved (transitive) memberships held.
    pub fn membership_count(&self) -> usize {
        self.membership_count
    }
}

/// Every group reachable upwards from `principal` (first step through any membership, then
/// through group memberships only), with a visited set so cycles end.
fn transitive_parents(
    principal: &Arc<str>,
    parents: &HashMap<Arc<str>, Vec<Arc<str>>>,
    group_parents: &HashMap<Arc<str>, Vec<Arc<str>>>,
) -> Box<[Arc<str>]> {
    let mut seen: HashSet<Arc<str>> = HashSet::new();
    let mut stack: Vec<&Arc<str>> = Vec::new();
    for parent in parents.get(principal).into_iter().flatten() {
        if seen.insert(parent.clone()) {
            stack.push(parent);
        }
    }
    while let Some(next) = stack.pop() {
        for parent in group_parents.get(next).into_iter().flatten() {
            if seen.insert(parent.clone()) {
                stack.push(parent);
            }
        }
    }
    let mut groups: Vec<Arc<str>> = seen.into_iter().collect();
    groups.sort_unstable();
    groups.into_boxed_slice()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(id: &str, members: &[(&str, MemberType)]) -> Group {
        Group {
            id: canonical_id(id),
            display_name: None,
            members: members
                .iter()
                .map(|(id, kind)| Member {
                    id: canonical_id(id),
                    kind: *kind,
                })
                .collect(),
        }
    }

    fn ids(groups: Option<&[Arc<str>]>) -> Vec<&str> {
        groups.unwrap_or_default().iter().map(|g| &**g).collect()
    }

    #[test]
    fn membership_is_transitive_and_cycles_end() {
        let users = vec![User {
            id: canonical_id("u1"),
            user_principal_name: None,
            account_enabled: Some(false),
        }];
        let groups = vec![
            group("g1", &[("U1", MemberType::User)]),
            group("g2", &[("g1", MemberType::Group)]),
            group("g3", &[("g2", MemberType::Group)]),
            // g1 lists g3: a cycle g1 -> g2 -> g3 -> g1.
            group("g1b", &[("g3", MemberType::Group)]),
            group("dev", &[("u1", MemberType::Other)]),
            // An inconsistent export lists g3 as a user: not a step up for g3's members.
            group("odd", &[("g3", MemberType::User)]),
        ];
        let mut groups = groups;
        groups[0].members.push(Member {
            id: canonical_id("g3"),
            kind: MemberType::Group,
        });
        let directory = Directory::build(users, groups);
        assert_eq!(
            ids(directory.member_of("u1")),
            vec!["g1", "g1b", "g2", "g3"]
        );
        assert_eq!(
            ids(directory.member_of("g2")),
            vec!["g1", "g1b", "g2", "g3"]
        );
        assert_eq!(directory.member_of("nobody"), None);
        assert_eq!(directory.account_enabled("u1"), Some(false));
        // A member of an unknown type is never expanded.
        assert!(!ids(directory.member_of("u1")).contains(&"dev"));
        assert!(!ids(directory.member_of("u1")).contains(&"odd"));
    }
}

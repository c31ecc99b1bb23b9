//! The directory objects of a policy set put together (spec `identity.md` C2): member files
//! replace what `$expand` gave a group, duplicates and likely truncations are reported.

use super::directory::{Directory, Group, Member, MemberType, User};
use super::{Diagnostic, DiagnosticKind, Origin, PolicySet};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

/// The most members Graph's `$expand=members` returns for one group.
pub const EXPAND_LIMIT: usize = 20;

/// Takes the directory objects out of `set` and resolves them; `None` when it has none.
pub fn take_directory(set: &mut PolicySet, diagnostics: &mut Vec<Diagnostic>) -> Option<Directory> {
    let users = std::mem::take(&mut set.directory_users);
    let groups = std::mem::take(&mut set.directory_groups);
    let members = std::mem::take(&mut set.directory_members);
    let files = std::mem::take(&mut set.directory_member_files);
    if users.is_empty() && groups.is_empty() && members.is_empty() && files.is_empty() {
        return None;
    }
    // A user listed twice (`az ad user list`, which has no `accountEnabled`, beside a
    // `$select=accountEnabled` export): one user, and a `false` from either copy holds.
    let mut index: std::collections::HashMap<Arc<str>, usize> = std::collections::HashMap::new();
    let mut kept_users: Vec<User> = Vec::with_capacity(users.len());
    for (origin, user) in users {
        match index.get(&user.id).and_then(|&i| kept_users.get_mut(i)) {
            None => {
                index.insert(user.id.clone(), kept_users.len());
                kept_users.push(user);
            }
            Some(kept) => {
                if user.account_enabled == Some(false) || kept.account_enabled.is_none() {
                    kept.account_enabled = user.account_enabled.or(kept.account_enabled);
                }
                if kept.user_principal_name.is_none() {
                    kept.user_principal_name = user.user_principal_name;
                }
                diagnostics.push(Diagnostic::note(
                    origin,
                    format!(
                        "user `{}` is listed more than once: read as one (disabled if any copy says so)",
                        user.id
                    ),
                ));
            }
        }
    }
    // Member files by group, in id order (a group may have one per policy directory).
    let mut listed: BTreeMap<Arc<str>, (Origin, Vec<Member>)> = BTreeMap::new();
    for (origin, group) in files {
        listed.entry(group).or_insert((origin, Vec::new()));
    }
    for (origin, (group, member)) in members {
        listed
            .entry(group)
            .or_insert_with(|| (origin, Vec::new()))
            .1
            .push(member);
    }
    let mut seen: HashSet<Arc<str>> = HashSet::new();
    let mut kept_groups: Vec<Group> = Vec::with_capacity(groups.len() + listed.len());
    for (origin, mut group) in groups {
        if !seen.insert(group.id.clone()) {
            diagnostics.push(Diagnostic::warning(
                origin,
                format!(
                    "group `{}` is listed more than once: the first is kept",
                    group.id
                ),
            ));
            continue;
        }
        match listed.remove(&group.id) {
            Some((_, members)) => group.members = members,
            None if group.members.len() == EXPAND_LIMIT => diagnostics.push(
                Diagnostic::warning(
                    origin.clone(),
                    format!(
                        "group `{id}` has exactly {EXPAND_LIMIT} members, possibly truncated: \
                         Graph's $expand returns at most {EXPAND_LIMIT} members; export \
                         `az ad group member list --group {id}` to entra-group-members/{id}.json",
                        id = group.id
                    ),
                )
                .of_kind(DiagnosticKind::TruncatedGroup),
            ),
            None => {}
        }
        warn_unexpanded(&origin, &group, diagnostics);
        kept_groups.push(group);
    }
    // Member files of groups `entra-groups.json` does not list.
    for (id, (origin, members)) in listed {
        let group = Group {
            id,
            display_name: None,
            members,
        };
        warn_unexpanded(&origin, &group, diagnostics);
        kept_groups.push(group);
    }
    Some(Directory::build(kept_users, kept_groups))
}

/// A warning for the members of a type membership does not pass through.
fn warn_unexpanded(origin: &Origin, group: &Group, diagnostics: &mut Vec<Diagnostic>) {
    let other = group
        .members
        .iter()
        .filter(|m| m.kind == MemberType::Other)
        .count();
    if other > 0 {
        diagnostics.push(Diagnostic::warning(
            origin.clone(),
            format!(
                "group `{}` lists {other} member(s) of a type that is not a user, group or \
                 service principal (device, contact, or no `@odata.type`): kept, never expanded",
                group.id
            ),
        ));
    }
}

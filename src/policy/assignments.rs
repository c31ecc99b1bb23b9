//! Role assignments, compiled as they are read. A reload of a million assignments must not
//! hold a million assignments' text (about 500 bytes each) next to the index it builds: each
//! one is checked and compiled on arrival, and only what the index keeps is stored.
//! Uniqueness of ids and the existence of the role are checked once everything is read, since
//! role definitions may come from a later file.

use super::compiled::{Assignment, EVERYONE, compile_condition, parse_principal};
use super::copies::Copies;
use super::schema::RoleAssignment;
use super::scope_table::ScopeTable;
use super::{Diagnostic, DiagnosticKind, Origin};
use crate::model::Scope;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

/// The role definition an assignment names, before roles are known.
#[derive(Debug, Clone)]
struct RoleRef {
    /// Lower-cased GUID: the last segment of `roleDefinitionId`.
    guid: Box<str>,
}

/// Compiled role assignments whose roles are not resolved yet, with the scopes they name.
#[derive(Debug, Clone, Default)]
pub struct AssignmentSet {
    /// `role` holds an index into `role_refs` until [`AssignmentSet::resolve`].
    items: Vec<Assignment>,
    /// The scopes `items` name, by id.
    scopes: ScopeTable,
    /// Where each item was read, for the checks that need everything read first.
    origins: Vec<Origin>,
    role_refs: Vec<RoleRef>,
    role_ref_ids: HashMap<Box<str>, usize>,
}

impl AssignmentSet {
    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The scopes the assignments name.
    pub fn scopes(&self) -> &ScopeTable {
        &self.scopes
    }

    /// Checks and compiles one assignment; problems become diagnostics and the assignment
    /// is left out (the load then fails on the error).
    pub fn add(&mut self, origin: &Origin, ra: &RoleAssignment, diagnostics: &mut Vec<Diagnostic>) {
        let before = diagnostics.len();
        if ra.id.is_empty() {
            diagnostics.push(Diagnostic::error(
                origin.field("id"),
                "role assignment has no `id`",
            ));
        }
        let principal = parse_principal(
            &ra.principal_id,
            || origin.field("principalId"),
            diagnostics,
        );
        if principal == Some(EVERYONE) {
            // Azure refuses it; a grant to every caller should never come from a typo'd id.
            diagnostics.push(Diagnostic::error(
                origin.field("principalId"),
                "`00000000-0000-0000-0000-000000000000` is Everyone, which only deny assignments \
                 can name: Azure makes no role assignment to it",
            ));
        }
        if ra.role_definition_id.trim().is_empty() {
            diagnostics.push(Diagnostic::error(
                origin.field("roleDefinitionId"),
                "role assignment has no `roleDefinitionId`",
            ));
        }
        let scope = match Scope::parse(&ra.scope) {
            Ok(s) => {
                check_id_scope(&ra.id, &ra.name, "roleAssignments", &s, origin, diagnostics);
                Some(s)
            }
            Err(e) => {
                diagnostics.push(Diagnostic::error(origin.field("scope"), e.to_string()));
                None
            }
        };
        let condition = compile_condition(
            ra.condition.as_deref(),
            ra.condition_version.as_deref(),
            origin,
            diagnostics,
            "this assignment never grants",
        );
        let (Some(principal), Some(scope)) = (principal, scope) else {
            return;
        };
        if diagnostics.iter().skip(before).any(Diagnostic::is_error) {
            return;
        }
        let guid = super::schema::role_definition_guid(&ra.role_definition_id);
        let role = self.role_ref(guid);
        self.items.push(Assignment {
            id: Arc::from(ra.id.as_str()),
            principal,
            role,
            scope_id: self.scopes.intern(scope),
            condition: condition.map(Box::new),
            window: None,
        });
        self.origins.push(origin.clone());
    }

    /// [`AssignmentSet::add`] for a PIM schedule instance, which grants only inside `window`.
    /// Instances are added once every file is merged (when the snapshot is built), so window
    /// ids are never renumbered.
    pub fn add_windowed(
        &mut self,
        origin: &Origin,
        ra: &RoleAssignment,
        window: super::compiled::WindowId,
        diagnostics: &mut Vec<Diagnostic>,
    ) {
        let before = self.items.len();
        self.add(origin, ra, diagnostics);
        if self.items.len() > before
            && let Some(last) = self.items.last_mut()
        {
            last.window = Some(window);
        }
    }

    fn role_ref(&mut self, guid: String) -> usize {
        if let Some(i) = self.role_ref_ids.get(guid.as_str()) {
            return *i;
        }
        let i = self.role_refs.len();
        let guid: Box<str> = guid.into();
        self.role_ref_ids.insert(guid.clone(), i);
        self.role_refs.push(RoleRef { guid });
        i
    }

    /// Makes room for `more` assignments, so adding them does not regrow the lists: a
    /// regrowth copies a whole list at once, milliseconds a paced reload cannot give back.
    pub fn reserve(&mut self, more: usize) {
        self.items.reserve(more);
        self.origins.reserve(more);
    }

    /// Frees this set's assignments an item at a time (see [`super::pace::drop_paced`]).
    pub fn dismantle(self) {
        super::pace::drop_paced(self.items);
        super::pace::drop_paced(self.origins);
    }

    /// Adds `other`'s assignments, their scope ids and roles renumbered into this set's.
    pub fn extend(&mut self, other: AssignmentSet) {
        if self.items.is_empty() && self.items.capacity() < other.items.len() {
            // A file parsed now, first in the set: taken over whole, not copied. Room reserved
            // for kept parses (`PolicySet::reserve_for`) is filled instead.
            *self = other;
            return;
        }
        let AssignmentSet {
            items,
            scopes,
            origins,
            role_refs,
            ..
        } = other;
        self.append(&scopes, &role_refs, items.into_iter().zip(origins));
    }

    /// Adds copies of `other`'s assignments (a file's kept parse), a few at a time between
    /// [`super::pace::point`]s.
    pub fn extend_from(&mut self, other: &AssignmentSet) {
        let items = other
            .items
            .iter()
            .cloned()
            .zip(other.origins.iter().cloned());
        self.append(&other.scopes, &other.role_refs, items);
    }

    fn append(
        &mut self,
        scopes: &ScopeTable,
        role_refs: &[RoleRef],
        items: impl Iterator<Item = (Assignment, Origin)>,
    ) {
        let scope_ids: Vec<_> = scopes
            .iter()
            .map(|(_, scope)| {
                super::pace::point();
                self.scopes.intern(scope.clone())
            })
            .collect();
        let role_ids: Vec<_> = role_refs
            .iter()
            .map(|r| {
                super::pace::point();
                self.role_ref(r.guid.to_string())
            })
            .collect();
        let (more, _) = items.size_hint();
        self.reserve(more);
        for (mut a, origin) in items {
            super::pace::point();
            a.scope_id = scope_ids
                .get(a.scope_id as usize)
                .copied()
                .unwrap_or(a.scope_id);
            a.role = role_ids.get(a.role).copied().unwrap_or(a.role);
            self.items.push(a);
            self.origins.push(origin);
        }
    }

    /// Checks that ids are unique (ignoring case, as Azure does) and that every named role
    /// exists in `roles` (lower-cased GUID -> role index); returns the assignments with their
    /// roles resolved, and the scopes they name. An assignment whose id was read before with
    /// the same content (principal, role, scope, condition; ids and scopes compared ignoring
    /// case) is the same assignment: it is loaded once, counted in `copies`. The same id with
    /// other content is an error (both are kept: the error fails the load). Assignments of a
    /// role not in `roles` are left out with a warning per role.
    pub(super) fn resolve(
        self,
        roles: &HashMap<String, usize>,
        copies: &mut Copies,
        diagnostics: &mut Vec<Diagnostic>,
    ) -> (Vec<Assignment>, ScopeTable) {
        let AssignmentSet {
            items,
            scopes,
            origins,
            role_refs,
            ..
        } = self;
        // Identical copies, ascending: left out below. Empty unless ids collide.
        let copied = find_copies(&items, &origins, copies, diagnostics);
        let resolved: Vec<Option<usize>> = role_refs
            .iter()
            .map(|r| roles.get(r.guid.as_ref()).copied())
            .collect();
        // An export of a whole tenant holds assignments of roles unrelated to Kubernetes
        // (Reader, Storage Blob Data Reader): they grant nothing here, and each role not
        // loaded is one warning (where it is first named, and how often), not one per
        // assignment.
        let mut unloaded: Vec<(usize, usize)> = vec![(0, 0); role_refs.len()];
        let mut kept = Vec::with_capacity(items.len() - copied.len());
        let mut copied = copied.into_iter().peekable();
        for (i, mut a) in items.into_iter().enumerate() {
            super::pace::point();
            if copied.next_if_eq(&i).is_some() {
                continue;
            }
            match resolved.get(a.role).copied().flatten() {
                Some(role) => {
                    a.role = role;
                    kept.push(a);
                }
                None => {
                    // Items come in order: the first one counted is where the role is named first.
                    if let Some((first, count)) = unloaded.get_mut(a.role) {
                        if *count == 0 {
                            *first = i;
                        }
                        *count += 1;
                    }
                }
            }
        }
        warn_unloaded_roles(&unloaded, &role_refs, &origins, diagnostics);
        super::pace::drop_paced(origins);
        (kept, scopes)
    }
}

/// Where item `i` was read (a placeholder if unknown).
fn origin_at(origins: &[Origin], i: usize) -> Origin {
    origins
        .get(i)
        .cloned()
        .unwrap_or_else(|| Origin::new("-", "-"))
}

/// The hash of an assignment id folded to lower case, eight bytes per step: byte by byte,
/// this hash was a quarter of a 100k-assignment reload (`perf record`).
#[inline]
pub(super) fn folded_id_hash(id: &str) -> u64 {
    let mut h = rustc_hash::FxBuildHasher.build_hasher();
    let mut chunks = id.as_bytes().chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        for (w, b) in word.iter_mut().zip(chunk) {
            *w = b.to_ascii_lowercase();
        }
        h.write_u64(u64::from_le_bytes(word));
    }
    for b in chunks.remainder() {
        h.write_u8(b.to_ascii_lowercase());
    }
    h.finish()
}

/// The items whose id (ignoring case) was read before, ascending. An identical copy is
/// counted in `copies`; the same id with other content is an error.
fn find_copies(
    items: &[Assignment],
    origins: &[Origin],
    copies: &mut Copies,
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<usize> {
    // Indexes into `items`, hashed by the case-folded id: 4 bytes per assignment rather
    // than a lower-cased copy of every id.
    let mut seen = hashbrown::HashTable::<u32>::with_capacity(items.len());
    let mut copied: Vec<usize> = Vec::new();
    for (i, a) in items.iter().enumerate() {
        super::pace::point();
        let hash = folded_id_hash(&a.id);
        let same = |j: &u32| {
            items
                .get(*j as usize)
                .is_some_and(|b| b.id.eq_ignore_ascii_case(&a.id))
        };
        match seen.find(hash, same) {
            Some(first) => {
                let first = *first as usize;
                // Within one set, equal role and scope indexes are equal GUIDs and
                // canonical scope keys.
                let identical = items.get(first).is_some_and(|b| {
                    b.principal == a.principal
                        && b.role == a.role
                        && b.scope_id == a.scope_id
                        && b.condition == a.condition
                });
                if identical {
                    copies.add(
                        &origin_at(origins, i),
                        &origin_at(origins, first),
                        format!("role assignment `{}`", a.id),
                    );
                    copied.push(i);
                } else {
                    diagnostics.push(Diagnostic::error(
                        origin_at(origins, i).field("id"),
                        format!(
                            "duplicate role assignment id `{}`: also at {} with other \
                             content (principal, role, scope or condition); drop one of the \
                             two files or directories",
                            a.id,
                            origin_at(origins, first)
                        ),
                    ));
                }
            }
            None => {
                let index = u32::try_from(i).unwrap_or(u32::MAX);
                seen.insert_unique(hash, index, |j| {
                    items.get(*j as usize).map_or(0, |b| folded_id_hash(&b.id))
                });
            }
        }
    }
    copied
}

/// One warning per role that is named but not loaded (in the order they are first named):
/// its assignments grant nothing.
fn warn_unloaded_roles(
    unloaded: &[(usize, usize)],
    role_refs: &[RoleRef],
    origins: &[Origin],
    diagnostics: &mut Vec<Diagnostic>,
) {
    let mut warned: Vec<_> = unloaded
        .iter()
        .zip(role_refs)
        .filter(|((_, count), _)| *count > 0)
        .collect();
    warned.sort_by_key(|((first, _), _)| *first);
    for ((first, count), role) in warned {
        let what = if *count == 1 {
            "1 assignment".to_string()
        } else {
            format!("{count} assignments")
        };
        let grant = if *count == 1 { "grants" } else { "grant" };
        diagnostics.push(
            Diagnostic::warning(
                origin_at(origins, *first).field("roleDefinitionId"),
                format!(
                    "{what} of role `{}` (not loaded) {grant} nothing",
                    role.guid
                ),
            )
            .of_kind(DiagnosticKind::UnknownRole),
        );
    }
}

/// In ARM's shape (with `name`), an object's `id` is `<scope>/providers/Microsoft.Authorization/<kind>/<name>`.
/// A `scope` other than the one in the id is what a cut or half-written file reads as (a
/// value cut to `/` or to the subscription would widen the object to everything below), so
/// it is an error. Objects without `name`, or ids not of that form, are not judged.
pub(crate) fn check_id_scope(
    id: &str,
    name: &str,
    kind: &str,
    scope: &Scope,
    origin: &Origin,
    diagnostics: &mut Vec<Diagnostic>,
) {
    if name.trim().is_empty() {
        return;
    }
    let Some(at) = Scope::of_extension_id(id, kind) else {
        return;
    };
    let named = id
        .rsplit('/')
        .next()
        .is_some_and(|last| last.eq_ignore_ascii_case(name.trim()));
    if at != *scope || !named {
        diagnostics.push(Diagnostic::error(
            origin.field("scope"),
            format!(
                "`id` does not lie at `scope` `{}` with `name` `{name}` (its scope is `{}`): \
                 the file may be cut or half written",
                scope.key(),
                at.key()
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::PolicySet;
    use crate::policy::parse::parse_json_str;

    const ROLE: &str = "7f6c6a51-bcf8-42ba-9220-52d62157d7db";

    fn file(assignments: &[(&str, &str)]) -> PolicySet {
        file_naming(assignments, ROLE)
    }

    fn file_naming(assignments: &[(&str, &str)], role: &str) -> PolicySet {
        let items: Vec<String> = assignments
            .iter()
            .map(|(id, scope)| {
                format!(
                    r#"{{"id":"{id}","principalId":"6f0b7e4a-1c2d-4e5f-8a9b-000000000f1d","roleDefinitionId":"{role}","scope":"{scope}"}}"#
                )
            })
            .collect();
        let (mut set, mut diagnostics) = (PolicySet::default(), Vec::new());
        parse_json_str(
            "f.json",
            &format!("[{}]", items.join(",")),
            &mut set,
            &mut diagnostics,
        );
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        set
    }

    /// Each assignment's id and scope key, after `extend` and `resolve`.
    fn scopes_of(set: PolicySet) -> (Vec<(String, String)>, Vec<Diagnostic>) {
        let roles = HashMap::from([(ROLE.to_string(), 0)]);
        let (mut diagnostics, mut copies) = (Vec::new(), Copies::default());
        let (assignments, scopes) =
            set.role_assignments
                .resolve(&roles, &mut copies, &mut diagnostics);
        copies.report(&mut diagnostics);
        let resolved = assignments
            .into_iter()
            .map(|a| {
                let scope = scopes.get(a.scope_id).map_or("?", |s| s.key());
                (a.id.to_string(), scope.to_string())
            })
            .collect();
        (resolved, diagnostics)
    }

    #[test]
    fn copies_of_kept_parses_merge_as_the_parses_themselves_do() {
        let first = file(&[("a", "/subscriptions/s1"), ("b", "/subscriptions/s2")]);
        let second = file(&[("c", "/subscriptions/s2"), ("d", "/subscriptions/s3")]);
        let mut owned = first.clone();
        owned.extend(second.clone());
        let mut copied = PolicySet::default();
        copied.extend_from(&first);
        copied.extend_from(&second);
        let (owned, copied) = (scopes_of(owned), scopes_of(copied));
        assert_eq!(owned.0.len(), 4);
        assert_eq!(owned.0, copied.0);
        assert_eq!(copied.1.len(), 0, "{:?}", copied.1);
        // The copies keep their origins: a duplicate id names where each was read.
        let mut dup = PolicySet::default();
        dup.extend_from(&file(&[("dup", "/subscriptions/s1")]));
        dup.extend_from(&file(&[("DUP", "/subscriptions/s2")]));
        let (_, diagnostics) = scopes_of(dup);
        assert!(
            diagnostics.iter().any(|d| d
                .to_string()
                .contains("duplicate role assignment id `DUP`: also at f.json: $[0]")),
            "{diagnostics:?}"
        );
    }

    #[test]
    fn a_set_with_room_reserved_is_filled_in_place_not_regrown_or_replaced() {
        let big = file(&[("a", "/subscriptions/s1"), ("b", "/subscriptions/s2")]);
        let small = file(&[("c", "/subscriptions/s3")]);
        let mut set = PolicySet::default();
        set.reserve_for([&big, &small].into_iter());
        let room = set.role_assignments.items.as_ptr();
        set.extend(big);
        set.extend_from(&small);
        assert_eq!(set.role_assignments.items.as_ptr(), room);
        assert_eq!(set.role_assignments.len(), 3);
        assert_eq!(set.role_assignments.origins.len(), 3);
    }

    #[test]
    fn files_merge_with_their_scopes_remapped_and_ids_checked_across_them() {
        let mut set = file(&[("a", "/subscriptions/s1"), ("b", "/subscriptions/s2")]);
        set.extend(file(&[
            ("c", "/subscriptions/s2"),
            ("d", "/subscriptions/s3"),
        ]));
        let (resolved, diagnostics) = scopes_of(set);
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        let expected = [
            ("a", "/subscriptions/s1"),
            ("b", "/subscriptions/s2"),
            ("c", "/subscriptions/s2"),
            ("d", "/subscriptions/s3"),
        ];
        assert_eq!(
            resolved,
            expected
                .map(|(i, s)| (i.to_string(), s.to_string()))
                .to_vec()
        );

        let mut set = file(&[("dup", "/subscriptions/s1")]);
        set.extend(file(&[("DUP", "/subscriptions/s2")]));
        let (_, diagnostics) = scopes_of(set);
        assert_eq!(diagnostics.len(), 1, "{diagnostics:?}");
        assert!(diagnostics[0].is_error());
        assert!(
            diagnostics[0].to_string().contains(
                "duplicate role assignment id `DUP`: also at f.json: $[0] with other content"
            ),
            "{}",
            diagnostics[0]
        );

        // Long ids: case differences inside the hashed eight-byte words and in the tail.
        let long = "/subscriptions/S1/providers/Microsoft.Authorization/roleAssignments/Ab1";
        let mut set = file(&[
            (long, "/subscriptions/s1"),
            (&long.replace("Ab1", "Ab2"), "/subscriptions/s1"),
        ]);
        set.extend(file(&[(&long.to_uppercase(), "/subscriptions/s2")]));
        set.extend(file(&[(&long.to_lowercase(), "/subscriptions/s2")]));
        let (_, diagnostics) = scopes_of(set);
        assert_eq!(diagnostics.len(), 2, "{diagnostics:?}");
        assert!(diagnostics.iter().all(Diagnostic::is_error));
    }

    /// Named files of assignments `(id, principal, role, scope, condition)`.
    fn named(name: &str, items: &[(&str, &str, &str, &str, Option<&str>)]) -> PolicySet {
        let items: Vec<String> = items
            .iter()
            .map(|(id, principal, role, scope, condition)| {
                let condition = condition.map_or(String::new(), |c| {
                    format!(r#","condition":{},"conditionVersion":"2.0""#, serde_json::json!(c))
                });
                format!(
                    r#"{{"id":"{id}","principalId":"{principal}","roleDefinitionId":"{role}","scope":"{scope}"{condition}}}"#
                )
            })
            .collect();
        let (mut set, mut diagnostics) = (PolicySet::default(), Vec::new());
        parse_json_str(
            name,
            &format!("[{}]", items.join(",")),
            &mut set,
            &mut diagnostics,
        );
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        set
    }

    const P: &str = "6f0b7e4a-1c2d-4e5f-8a9b-000000000f1d";
    const COND: &str = "@Request[Microsoft.ContainerService/managedClusters/customResources:group] StringEquals 'a'";

    #[test]
    fn an_identical_copy_in_another_file_loads_once_with_one_note_per_pair_of_files() {
        let role_id = format!(
            "/subscriptions/S1/providers/Microsoft.Authorization/roleDefinitions/{}",
            ROLE.to_uppercase()
        );
        let first = named(
            "a.json",
            &[
                ("ra-1", P, ROLE, "/subscriptions/s1", None),
                (
                    "ra-2",
                    P,
                    ROLE,
                    "/subscriptions/s1/resourceGroups/rg",
                    Some(COND),
                ),
                ("ra-3", P, ROLE, "/subscriptions/s2", None),
            ],
        );
        // Another export of the same assignments: ids, principal, role id and scope in
        // other case, the role by its full id.
        let second = named(
            "b.json",
            &[
                (
                    "RA-1",
                    &P.to_uppercase(),
                    &role_id,
                    "/subscriptions/S1/",
                    None,
                ),
                (
                    "ra-2",
                    P,
                    ROLE,
                    "/Subscriptions/S1/resourcegroups/RG",
                    Some(COND),
                ),
                ("ra-4", P, ROLE, "/subscriptions/s4", None),
            ],
        );
        let mut set = first;
        set.extend(second);
        let (resolved, diagnostics) = scopes_of(set);
        let ids: Vec<&str> = resolved.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["ra-1", "ra-2", "ra-3", "ra-4"]);
        assert_eq!(diagnostics.len(), 1, "{diagnostics:?}");
        let note = &diagnostics[0];
        assert!(!note.is_error());
        assert_eq!(note.kind, DiagnosticKind::IdenticalCopy);
        assert!(
            note.to_string()
                .contains("2 objects are identical copies of objects in `a.json`"),
            "{note}"
        );
    }

    #[test]
    fn the_same_assignment_id_with_other_content_is_an_error_naming_both_files() {
        let other = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0";
        for (what, copy) in [
            (
                "principal",
                ("ra-1", other, ROLE, "/subscriptions/s1", None),
            ),
            ("role", ("ra-1", P, other, "/subscriptions/s1", None)),
            (
                "scope",
                ("ra-1", P, ROLE, "/subscriptions/s1/resourceGroups/rg", None),
            ),
            (
                "condition",
                ("ra-1", P, ROLE, "/subscriptions/s1", Some(COND)),
            ),
        ] {
            let mut set = named("a.json", &[("ra-1", P, ROLE, "/subscriptions/s1", None)]);
            set.extend(named("b.json", &[copy]));
            let roles = HashMap::from([(ROLE.to_string(), 0), (other.to_string(), 1)]);
            let (mut diagnostics, mut copies) = (Vec::new(), Copies::default());
            let _ = set
                .role_assignments
                .resolve(&roles, &mut copies, &mut diagnostics);
            copies.report(&mut diagnostics);
            assert_eq!(diagnostics.len(), 1, "{what}: {diagnostics:?}");
            let error = diagnostics[0].to_string();
            assert!(diagnostics[0].is_error(), "{what}: {error}");
            assert!(
                error.contains("b.json: $[0].id")
                    && error.contains("also at a.json: $[0] with other content")
                    && error.contains("drop one of the two"),
                "{what}: {error}"
            );
        }
    }

    #[test]
    fn assignments_of_roles_not_loaded_grant_nothing_with_one_warning_per_role() {
        const READER: &str = "/subscriptions/s1/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7";
        let mut set = file(&[("a", "/subscriptions/s1")]);
        set.extend(file_naming(
            &[("b", "/subscriptions/s1"), ("c", "/subscriptions/s2")],
            READER,
        ));
        set.extend(file_naming(
            &[("d", "/subscriptions/s3")],
            &READER.replace("s1", "s3").to_uppercase(),
        ));
        let (resolved, diagnostics) = scopes_of(set);
        assert_eq!(
            resolved,
            [("a".to_string(), "/subscriptions/s1".to_string())],
            "only the assignment of a loaded role is kept"
        );
        assert_eq!(diagnostics.len(), 1, "{diagnostics:?}");
        let warning = &diagnostics[0];
        assert!(!warning.is_error());
        assert_eq!(warning.kind, crate::policy::DiagnosticKind::UnknownRole);
        assert_eq!(
            warning.to_string(),
            "warning: f.json: $[0].roleDefinitionId: 3 assignments of role \
             `acdd72a7-3385-48ef-bd42-f606fba81ae7` (not loaded) grant nothing"
        );
    }
}

//! The validated, indexed, immutable policy a decision reads: one [`Snapshot`] per generation.
//!
//! Assignments and deny assignments are grouped by principal object id, and every scope is
//! interned, so a decision touches only the requester's own principals and compares scope ids
//! along the request's ancestor chain — never the whole assignment set.

use super::assignments::AssignmentSet;
use super::compiled::{
    Assignment, Deny, EVERYONE, InertSchedule, MEMO_MIN_PATTERNS, PermissionBlock, Role, Window,
    WindowId, compile_condition, parse_principal,
};
use super::condition::Condition;
use super::copies::Copies;
use super::filter::{self, BitFilter};
use super::known_actions::{Bits, KnownActions};
use super::rbac::RbacIndex;
use super::schema::{DenyAssignment, Permission, PrincipalRef, RoleDefinition};
use super::{Diagnostic, LoadError, Origin, PolicySet, pace};
use crate::model::name_hash::{folded_eq, short_eq};
use crate::model::{ManagementGroups, Scope};
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

pub use super::scope_table::ScopeId;
use super::scope_table::ScopeTable;

/// What a snapshot is built for: the cluster whose chain of scopes is precomputed, and the
/// action prefix its interned actions are spelled with. Kept in the snapshot, so a decision
/// reads the ones its snapshot was built with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexOptions {
    /// The cluster's ARM id; Azure assignments are evaluated below it.
    pub cluster_resource_id: Option<Scope>,
    /// Action prefix (`Microsoft.ContainerService/managedClusters`).
    pub action_prefix: String,
}

/// The action prefix of AKS clusters.
pub const AKS_ACTION_PREFIX: &str = "Microsoft.ContainerService/managedClusters";

impl Default for IndexOptions {
    fn default() -> Self {
        IndexOptions {
            cluster_resource_id: None,
            action_prefix: AKS_ACTION_PREFIX.into(),
        }
    }
}

impl IndexOptions {
    /// The options for `cluster`, with the AKS action prefix.
    pub fn for_cluster(cluster: Scope) -> Self {
        IndexOptions {
            cluster_resource_id: Some(cluster),
            ..IndexOptions::default()
        }
    }
}

/// Scope ids for the configured cluster, worked out once per snapshot.
#[derive(Debug, Clone, Default)]
pub struct ClusterScopes {
    pub cluster: Option<Scope>,
    /// The cluster scope's key, shared into decision reasons.
    pub cluster_key: Arc<str>,
    /// Interned ids of the cluster scope and its ancestors, nearest first.
    pub chain: Vec<ScopeId>,
    /// The cluster scope's own id, if anything is assigned there.
    pub cluster_id: Option<ScopeId>,
    /// Namespace name -> id of `<cluster>/namespaces/<name>`, for namespaces with assignments.
    /// Fx: built from trusted policy, looked up once per decision.
    pub namespaces: HashMap<String, ScopeId, rustc_hash::FxBuildHasher>,
}

/// The bounded (role, action) memo of a snapshot.
#[derive(Clone)]
struct GrantsMemo(moka::sync::Cache<Box<str>, Arc<Bits>>);

/// Distinct actions remembered per generation; a cluster sees a few hundred.
const GRANTS_MEMO_CAPACITY: u64 = 16_384;

impl Default for GrantsMemo {
    fn default() -> Self {
        GrantsMemo(moka::sync::Cache::new(GRANTS_MEMO_CAPACITY))
    }
}

impl std::fmt::Debug for GrantsMemo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GrantsMemo({} entries)", self.0.entry_count())
    }
}

/// What the policy holds for one principal object id.
#[derive(Debug, Clone, Default)]
pub struct PrincipalEntry {
    pub id: Uuid,
    /// The principal's assignments on the cluster's scope chain.
    pub assignments: Vec<HeldAssignment>,
    /// Indexes into [`Snapshot::denies`].
    pub denies: Vec<u32>,
}

/// One of a principal's assignments, with its scope beside its index: a decision tests the
/// scope against the request's chain without loading the assignment, which for a group holding
/// roles in many namespaces was a cache miss per assignment (`perf` on the server).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeldAssignment {
    pub scope_id: ScopeId,
    /// Index into [`Snapshot::assignments`].
    pub index: u32,
}

/// What the policy holds for one principal at any scope: its role assignments and deny
/// assignments (`index` into [`Snapshot::assignments`] and [`Snapshot::denies`]), each list
/// sorted by scope id. A question looks up each scope of its chain by binary search, so its
/// cost follows the chain, not how much the principal holds elsewhere.
#[derive(Debug, Clone, Default)]
pub struct Holdings {
    pub assignments: Vec<HeldAssignment>,
    pub denies: Vec<HeldAssignment>,
}

impl Holdings {
    /// The role assignments at `scope`, in load order.
    pub fn assignments_at(&self, scope: ScopeId) -> &[HeldAssignment] {
        at_scope(&self.assignments, scope)
    }

    /// The deny assignments at `scope`, in load order.
    pub fn denies_at(&self, scope: ScopeId) -> &[HeldAssignment] {
        at_scope(&self.denies, scope)
    }

    /// Orders both lists by scope (a stable sort: load order within a scope).
    fn sort(&mut self) {
        self.assignments.sort_by_key(|h| h.scope_id);
        self.denies.sort_by_key(|h| h.scope_id);
    }
}

/// The run of a list sorted by scope id that is at `scope`.
fn at_scope(list: &[HeldAssignment], scope: ScopeId) -> &[HeldAssignment] {
    let start = list.partition_point(|h| h.scope_id < scope);
    let end = list.partition_point(|h| h.scope_id <= scope);
    list.get(start..end).unwrap_or_default()
}

/// An object id as 36 lower-case bytes (the canonical text form).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuidKey([u8; 36]);

/// The principals the policy names on the configured cluster's scope chain (its ancestors and
/// its namespaces), by object id: the only ones a decision for this cluster can need.
///
/// Hashed with the prefilter's case-folding hash, which requests carry for their groups from
/// decoding on: a lookup neither hashes the id again nor copies it to lower-case it. Keys come
/// from trusted policy, so no keyed hash is needed.
#[derive(Debug, Clone, Default)]
pub struct PrincipalIndex(hashbrown::HashTable<(GuidKey, PrincipalEntry)>);

impl PrincipalIndex {
    /// The table's hash for a prefilter hash: its well-mixed high half picks the bucket (a
    /// multiplicative hash's low bits depend only on the input's low bits).
    fn slot(hash: u64) -> u64 {
        hash.rotate_left(32)
    }

    /// The table's hash of a key.
    fn slot_of(key: &GuidKey) -> u64 {
        Self::slot(filter::guid_hash(&key.0))
    }

    fn entry(&mut self, id: &Uuid) -> &mut PrincipalEntry {
        let key = uuid_key(id);
        &mut self
            .0
            .entry(
                Self::slot_of(&key),
                |(k, _)| *k == key,
                |(k, _)| Self::slot_of(k),
            )
            .or_insert_with(|| {
                (
                    key,
                    PrincipalEntry {
                        id: *id,
                        ..PrincipalEntry::default()
                    },
                )
            })
            .into_mut()
            .1
    }

    fn remove(&mut self, key: &GuidKey) -> Option<PrincipalEntry> {
        let found = self
            .0
            .find_entry(Self::slot_of(key), |(k, _)| k == key)
            .ok()?;
        Some(found.remove().0.1)
    }

    fn keys(&self) -> impl ExactSizeIterator<Item = &GuidKey> {
        self.0.iter().map(|(k, _)| k)
    }

    /// The entry of a 36-byte id text in any case, given its [`filter::guid_hash`] (equal for
    /// every case of the same text, since it folds case).
    #[inline]
    fn get_text(&self, text: &[u8; 36], hash: u64) -> Option<&PrincipalEntry> {
        // Entra sends lower case: a plain compare first; then, for other cases, a word-wise
        // compare with case folded turns away the other ids that share the bucket before the
        // byte-wise case-insensitive one.
        self.0
            .find(Self::slot(hash), |(k, _)| {
                short_eq(&k.0, text) || (folded_eq(&k.0, text) && k.0.eq_ignore_ascii_case(text))
            })
            .map(|(_, e)| e)
    }
}

impl PrincipalIndex {
    /// The entry in bucket `bucket` (see [`GroupExpansion`]).
    #[inline]
    fn at_bucket(&self, bucket: u32) -> Option<&PrincipalEntry> {
        self.0.get_bucket(bucket as usize).map(|(_, e)| e)
    }
}

/// With a directory snapshot, the policy principals each name stands for: its own entry, then
/// those of its transitive groups (in the directory's order), each once. Worked out at load
/// for every id the policy or the directory knows, so a decision looks each name of the
/// request up once and reads no group's text. Lists hold bucket indexes of the snapshot's
/// [`PrincipalIndex`], which is immutable once built (and cloned bucket for bucket).
#[derive(Debug, Clone, Default)]
struct GroupExpansion {
    /// Names of 36 bytes (object ids), lower case, hashed as [`PrincipalIndex`] is.
    by_id: hashbrown::HashTable<(GuidKey, Span)>,
    /// Names of other lengths (the directory keeps ids as exported), lower case, hashed
    /// folded so a name in any case is found without a lower-cased copy.
    other: hashbrown::HashTable<(Box<str>, Span)>,
    /// The keys of `by_id`, by [`filter::guid_hash`].
    filter: BitFilter,
    /// The lists, back to back; equal lists are stored once.
    lists: Vec<u32>,
}

/// A list in [`GroupExpansion::lists`].
#[derive(Debug, Clone, Copy)]
struct Span {
    start: u32,
    len: u32,
}

impl GroupExpansion {
    /// The expansion of every principal `directory` knows and every principal `index` holds
    /// (those the directory does not know stand for themselves).
    fn build(directory: &super::directory::Directory, index: &PrincipalIndex) -> GroupExpansion {
        let mut expansion = GroupExpansion::default();
        let policy: rustc_hash::FxHashMap<&str, u32> = index
            .0
            .iter_buckets()
            .filter_map(|b| {
                let (key, _) = index.0.get_bucket(b)?;
                Some((std::str::from_utf8(&key.0).ok()?, u32::try_from(b).ok()?))
            })
            .collect();
        if policy.is_empty() {
            return expansion;
        }
        let mut interned: rustc_hash::FxHashMap<Vec<u32>, Span> = Default::default();
        let mut list: Vec<u32> = Vec::new();
        let mut add = |expansion: &mut GroupExpansion, id: &str, list: &[u32]| {
            let span = match interned.get(list) {
                Some(span) => *span,
                None => {
                    let span = Span {
                        start: expansion.lists.len() as u32,
                        len: list.len() as u32,
                    };
                    expansion.lists.extend_from_slice(list);
                    interned.insert(list.to_vec(), span);
                    span
                }
            };
            expansion.insert(id, span);
        };
        for (id, groups) in directory.memberships() {
            list.clear();
            for name in std::iter::once(id).chain(groups.iter().map(|g| &**g)) {
                if let Some(&bucket) = policy.get(name)
                    && !list.contains(&bucket)
                {
                    list.push(bucket);
                }
            }
            if !list.is_empty() {
                add(&mut expansion, id, &list);
            }
        }
        for (id, bucket) in &policy {
            if directory.member_of(id).is_none() {
                add(&mut expansion, id, &[*bucket]);
            }
        }
        expansion.filter = BitFilter::new(
            expansion.by_id.iter().map(|(k, _)| filter::guid_hash(&k.0)),
            64,
        );
        expansion
    }

    /// Adds a lower-case name not added before.
    fn insert(&mut self, id: &str, span: Span) {
        match <[u8; 36]>::try_from(id.as_bytes()) {
            Ok(text) => {
                let key = GuidKey(text);
                self.by_id
                    .insert_unique(PrincipalIndex::slot_of(&key), (key, span), |(k, _)| {
                        PrincipalIndex::slot_of(k)
                    });
            }
            Err(_) => {
                let hash = super::assignments::folded_id_hash(id);
                self.other
                    .insert_unique(hash, (Box::from(id), span), |(k, _)| {
                        super::assignments::folded_id_hash(k)
                    });
            }
        }
    }

    /// The list of a name in any case, given its [`filter::name_hash`].
    #[inline]
    fn get(&self, text: &str, hash: u64) -> &[u32] {
        let span = match <&[u8; 36]>::try_from(text.as_bytes()) {
            Ok(text) => {
                if !self.filter.may_contain(hash) {
                    return &[];
                }
                self.by_id
                    .find(PrincipalIndex::slot(hash), |(k, _)| {
                        short_eq(&k.0, text)
                            || (folded_eq(&k.0, text) && k.0.eq_ignore_ascii_case(text))
                    })
                    .map(|(_, span)| *span)
            }
            Err(_) if self.other.is_empty() => None,
            Err(_) => self
                .other
                .find(super::assignments::folded_id_hash(text), |(k, _)| {
                    k.eq_ignore_ascii_case(text)
                })
                .map(|(_, span)| *span),
        };
        span.and_then(|s| {
            self.lists
                .get(s.start as usize..(s.start as usize).saturating_add(s.len as usize))
        })
        .unwrap_or_default()
    }
}

/// [`EVERYONE`] as a key, worked out once.
const EVERYONE_KEY: GuidKey = GuidKey(*b"00000000-0000-0000-0000-000000000000");

fn uuid_key(id: &Uuid) -> GuidKey {
    let mut key = [0u8; 36];
    id.hyphenated().encode_lower(&mut key);
    GuidKey(key)
}

/// Sizes, for metrics and logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SnapshotStats {
    pub role_definitions: usize,
    pub role_assignments: usize,
    pub deny_assignments: usize,
    pub principals: usize,
    pub scopes: usize,
    pub k8s_roles: usize,
    pub k8s_bindings: usize,
    /// Entra users, groups and resolved (transitive) memberships of the directory snapshot.
    pub directory_users: usize,
    pub directory_groups: usize,
    pub directory_memberships: usize,
    /// Managed identities, federated identity credentials and ServiceAccounts loaded.
    pub managed_identities: usize,
    pub federated_credentials: usize,
    pub service_accounts: usize,
}

/// One generation of validated, indexed policy.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub generation: u64,
    /// What the snapshot was built for.
    pub options: IndexOptions,
    pub roles: Vec<Role>,
    pub assignments: Vec<Assignment>,
    pub denies: Vec<Deny>,
    pub management_groups: ManagementGroups,
    pub cluster: ClusterScopes,
    pub rbac: RbacIndex,
    /// Entra users and groups, when the policy directories hold an export of them.
    pub directory: Option<std::sync::Arc<super::directory::Directory>>,
    /// The windows of time-bound (PIM) assignments, by [`WindowId`].
    pub windows: Vec<Window>,
    /// PIM schedule instances that grant nothing (eligibilities, refused or ended
    /// activations), for `explain`.
    pub inert_schedules: Vec<InertSchedule>,
    /// Managed identities, their federated credentials and ServiceAccounts (workload
    /// identity).
    pub workload: Arc<super::workload::WorkloadIndex>,
    pub warnings: Vec<Diagnostic>,
    role_by_guid: HashMap<String, usize>,
    /// Per-generation memo: action -> the set of roles whose permissions grant it. Bounded,
    /// because actions come from request input.
    grants_memo: GrantsMemo,
    /// How many principals the role assignments name.
    principal_count: usize,
    /// Every principal the policy names, by its canonical text, for lookups straight from
    /// request strings without parsing (the decision path).
    principal_index: PrincipalIndex,
    /// The principals of `principal_index`, by [`filter::guid_hash`].
    principal_filter: BitFilter,
    /// With a directory snapshot, what each name stands for (see [`GroupExpansion`]).
    group_expansion: GroupExpansion,
    /// Deny assignments for Everyone on the chain: every decision reads them, so they are
    /// taken out of the index at load rather than looked up per request.
    everyone: Option<PrincipalEntry>,
    /// Interned scopes: assignments keep only the id.
    scopes: ScopeTable,
    /// Every principal's assignments and deny assignments at any scope, for questions about
    /// any Azure resource (CheckAccess); the Kubernetes path reads `principal_index` instead.
    anywhere: HashMap<Uuid, Holdings, rustc_hash::FxBuildHasher>,
    /// Deny assignments for Everyone at any scope.
    everyone_anywhere: Holdings,
    /// Built-in resources' actions (and those roles name), with the roles granting each.
    pub known_actions: KnownActions,
}

/// Checks that every action pattern names an operation as Azure spells them: `*`, or ending
/// in `/read`, `/write`, `/delete`, `/action` or `/*`. A pattern cut short (a half-written
/// file: `…/secrets/*` read as `…/sec`) would match nothing, and in a deny assignment or a
/// `NotDataActions` list that silently widens access. Returns whether all are well formed.
fn check_operations(
    permissions: &[super::schema::Permission],
    origin: &Origin,
    diagnostics: &mut Vec<Diagnostic>,
) -> bool {
    let mut ok = true;
    for (i, block) in permissions.iter().enumerate() {
        let lists = [
            ("actions", &block.actions),
            ("notActions", &block.not_actions),
            ("dataActions", &block.data_actions),
            ("notDataActions", &block.not_data_actions),
        ];
        for (field, patterns) in lists {
            for (j, pattern) in patterns.iter().enumerate() {
                if !names_an_operation(pattern) {
                    ok = false;
                    diagnostics.push(Diagnostic::error(
                        origin.field("permissions").item(i).field(field).item(j),
                        format!(
                            "`{pattern}` is not an Azure operation (`*`, or ending in `/read`, \
                             `/write`, `/delete`, `/action` or `/*`): the file may be cut or \
                             half written"
                        ),
                    ));
                }
            }
        }
    }
    ok
}

/// The Azure resource providers of clusters whose data actions scopegate evaluates: an AKS
/// cluster, and an Azure Arc-enabled one (both spelled as in ARM ids and role definitions).
const CLUSTER_PROVIDERS: [&str; 2] = [AKS_ACTION_PREFIX, "Microsoft.Kubernetes/connectedClusters"];

/// A warning when the configured cluster is one kind of cluster and the action prefix names
/// the other: the built-in roles of the cluster's kind would then grant nothing.
fn provider_mismatch(options: &IndexOptions) -> Option<Diagnostic> {
    let cluster = options.cluster_resource_id.as_ref()?;
    let key = cluster.key().to_ascii_lowercase();
    let provider = CLUSTER_PROVIDERS
        .iter()
        .find(|p| key.contains(&format!("/providers/{}/", p.to_ascii_lowercase())))?;
    if provider.eq_ignore_ascii_case(options.action_prefix.trim_end_matches('/')) {
        return None;
    }
    Some(
        Diagnostic::warning(
            Origin::new("configuration", "clusterResourceId"),
            format!(
                "cluster `{}` is a `{provider}` resource but the action prefix is `{}`: the \
                 built-in roles for this cluster grant nothing; set the action prefix to \
                 `{provider}`",
                cluster.key(),
                options.action_prefix
            ),
        )
        .of_kind(super::DiagnosticKind::ProviderMismatch),
    )
}

/// Whether two schedule instances grant the same role to the same principal at the same
/// scope under the same condition (ids compared ignoring case, as Azure does).
fn same_grant(a: &super::schema::ScheduleInstance, b: &super::schema::ScheduleInstance) -> bool {
    a.principal_id.eq_ignore_ascii_case(&b.principal_id)
        && a.role_definition_id
            .eq_ignore_ascii_case(&b.role_definition_id)
        && a.scope.eq_ignore_ascii_case(&b.scope)
        && a.condition == b.condition
}

/// Role assignment ids, compared ignoring case as Azure does, without lower-cased copies.
#[derive(Debug, Default)]
struct IdSet(hashbrown::HashTable<Box<str>>);

impl IdSet {
    fn insert(&mut self, id: &str) {
        let hash = super::assignments::folded_id_hash(id);
        if !self.contains_hashed(id, hash) {
            self.0.insert_unique(hash, Box::from(id), |k| {
                super::assignments::folded_id_hash(k)
            });
        }
    }

    fn contains(&self, id: &str) -> bool {
        self.contains_hashed(id, super::assignments::folded_id_hash(id))
    }

    fn contains_hashed(&self, id: &str, hash: u64) -> bool {
        self.0.find(hash, |k| k.eq_ignore_ascii_case(id)).is_some()
    }
}

fn names_an_operation(pattern: &str) -> bool {
    let p = pattern.trim().to_ascii_lowercase();
    p == "*"
        || ["/read", "/write", "/delete", "/action", "/*"]
            .iter()
            .any(|end| p.ends_with(end) && p.len() > end.len())
}

// === impl Snapshot ===

impl Snapshot {
    /// An empty snapshot (generation 0): what a server holds before the first good load.
    pub fn empty() -> Self {
        Snapshot::default()
    }

    /// Validates and indexes a policy set. Any error diagnostic rejects the whole set.
    pub fn build(
        mut set: PolicySet,
        options: &IndexOptions,
        generation: u64,
    ) -> Result<Snapshot, LoadError> {
        let mut diagnostics = Vec::new();
        let mut snapshot = Snapshot {
            generation,
            options: options.clone(),
            ..Snapshot::default()
        };
        snapshot.add_management_groups(&set, &mut diagnostics);
        // Objects read twice (two overlapping exports, the shipped roles or a cluster export
        // beside `bootstrap/`): one note per pair of files, whatever their kinds.
        let mut copies = Copies::default();
        snapshot.add_roles(&set.role_definitions, &mut copies, &mut diagnostics);
        let superseded = snapshot.add_schedules(&mut set, &mut diagnostics);
        snapshot.add_assignments(
            std::mem::take(&mut set.role_assignments),
            &mut copies,
            &mut diagnostics,
        );
        snapshot.drop_superseded(&superseded);
        snapshot.count_principals();
        snapshot.add_denies(&set, &mut copies, &mut diagnostics);
        snapshot.known_actions =
            KnownActions::build(&options.action_prefix, &snapshot.roles, &snapshot.denies);
        set.merge_copies(&mut copies, &mut diagnostics);
        let workload = super::workload::WorkloadIndex::build(
            std::mem::take(&mut set.managed_identities),
            std::mem::take(&mut set.federated_credentials),
            std::mem::take(&mut set.service_accounts),
            &mut copies,
            &mut diagnostics,
        );
        workload.lint_roles(
            (&snapshot.assignments, &snapshot.roles, &snapshot.scopes),
            &set.role_definitions,
            &mut diagnostics,
        );
        snapshot.workload = Arc::new(workload);
        copies.report(&mut diagnostics);
        snapshot.rbac = RbacIndex::build(&set, &mut diagnostics);
        snapshot.directory =
            super::directory_set::take_directory(&mut set, &mut diagnostics).map(Arc::new);
        diagnostics.extend(provider_mismatch(options));
        snapshot.index_cluster(options.cluster_resource_id.as_ref());
        snapshot.index_principals();
        if let Some(directory) = snapshot.directory.as_deref() {
            snapshot.group_expansion = GroupExpansion::build(directory, &snapshot.principal_index);
        }
        snapshot.index_anywhere();
        if diagnostics.iter().any(Diagnostic::is_error) {
            diagnostics.sort_by_key(|d| !d.is_error());
            return Err(LoadError(diagnostics));
        }
        snapshot.warnings = diagnostics;
        Ok(snapshot)
    }

    /// Frees this snapshot on the thread that retires it, its assignments and principal maps
    /// an item at a time (see [`pace::drop_paced`]); the rest is small next to them.
    pub fn dismantle(self) {
        pace::drop_paced(self.assignments);
    }

    /// Sizes of this snapshot.
    pub fn stats(&self) -> SnapshotStats {
        SnapshotStats {
            role_definitions: self.roles.len(),
            role_assignments: self.assignments.len(),
            deny_assignments: self.denies.len(),
            principals: self.principal_count,
            scopes: self.scopes.len(),
            k8s_roles: self.rbac.role_count(),
            k8s_bindings: self.rbac.binding_count(),
            directory_users: self.directory.as_ref().map_or(0, |d| d.user_count()),
            directory_groups: self.directory.as_ref().map_or(0, |d| d.group_count()),
            directory_memberships: self.directory.as_ref().map_or(0, |d| d.membership_count()),
            managed_identities: self.workload.identities().len(),
            federated_credentials: self.workload.credentials().len(),
            service_accounts: self.workload.service_accounts().len(),
        }
    }

    /// Whether role `role` grants the concrete, lower-cased `action` (DataActions minus
    /// NotDataActions of some permissions block), memoised per generation.
    pub fn role_grants(&self, role: usize, action: &str) -> bool {
        let Some(r) = self.roles.get(role) else {
            return false;
        };
        // A moka lookup costs about as much as matching a few dozen patterns (measured with
        // `cargo bench --bench decide`), so only large roles go through the memo.
        if r.pattern_count <= MEMO_MIN_PATTERNS {
            return r.blocks.iter().any(|b| b.grants(action));
        }
        let bits = match self.grants_memo.0.get(action) {
            Some(bits) => bits,
            None => {
                let bits = Arc::new(Bits::of(&self.roles, |r| {
                    r.blocks.iter().any(|b| b.grants(action))
                }));
                self.grants_memo.0.insert(Box::from(action), bits.clone());
                bits
            }
        };
        bits.get(role)
    }

    /// Deny assignments for Everyone.
    pub fn everyone(&self) -> Option<&PrincipalEntry> {
        self.everyone.as_ref()
    }

    /// The policy's entry for a principal named in a request (object id or group), if any.
    /// The filter check is inline (it turns most groups away); the lookup is not.
    #[inline]
    pub fn principal(&self, text: &str) -> Option<&PrincipalEntry> {
        let hash = filter::name_hash(text.as_bytes());
        if !self.may_be_principal(text.len(), hash) {
            return None;
        }
        self.principal_lookup(text, hash)
    }

    /// Whether a name whose [`filter::name_hash`] is `hash` may be a principal the policy
    /// names (then [`Snapshot::principal_lookup`] says).
    #[inline]
    pub fn may_be_principal(&self, len: usize, hash: u64) -> bool {
        // Only canonical 36-byte texts are in the filter; other spellings are looked up.
        len != 36 || self.principal_filter.may_contain(hash)
    }

    /// The policy's entry for a principal named in a request whose [`filter::name_hash`] is
    /// `hash`, without the prefilter.
    #[inline(never)]
    pub fn principal_lookup(&self, text: &str, hash: u64) -> Option<&PrincipalEntry> {
        // Only the hyphenated spelling names a principal (Entra ID's; no other has 36 bytes).
        let text = <&[u8; 36]>::try_from(text.as_bytes()).ok()?;
        self.principal_index.get_text(text, hash)
    }

    /// The policy's entries for a name of a request together with its transitive groups in
    /// the directory snapshot: its own entry, then those of its groups, each once (without a
    /// directory snapshot, its own entry alone). `hash` is the name's [`filter::name_hash`].
    #[inline]
    pub fn principal_with_groups(
        &self,
        text: &str,
        hash: u64,
    ) -> impl Iterator<Item = &PrincipalEntry> {
        let (own, list) = match self.directory {
            None => (self.principal(text), &[][..]),
            Some(_) => (None, self.group_expansion.get(text, hash)),
        };
        own.into_iter().chain(
            list.iter()
                .filter_map(|b| self.principal_index.at_bucket(*b)),
        )
    }

    /// The interned id of a scope, if anything is assigned there.
    pub fn scope_id(&self, scope: &Scope) -> Option<ScopeId> {
        self.scopes.id(scope.key())
    }

    /// An interned scope by id.
    pub fn scope(&self, id: ScopeId) -> Option<&Scope> {
        self.scopes.get(id)
    }

    fn add_management_groups(&mut self, set: &PolicySet, diagnostics: &mut Vec<Diagnostic>) {
        for (subscription, chain) in &set.management_group_ancestry {
            self.management_groups.add_ancestry(subscription, chain);
        }
        for (origin, entity) in &set.management_groups {
            let Some(parent) = entity.parent.as_ref().and_then(|p| p.id.as_deref()) else {
                continue;
            };
            let parent_group = match Scope::parse(parent) {
                Ok(scope) => match scope.management_group() {
                    Some(g) => g.to_string(),
                    None => {
                        diagnostics.push(Diagnostic::error(
                            origin.field("parent.id"),
                            format!("parent `{parent}` is not a management group"),
                        ));
                        continue;
                    }
                },
                Err(e) => {
                    diagnostics.push(Diagnostic::error(origin.field("parent.id"), e.to_string()));
                    continue;
                }
            };
            let kind = entity.kind.to_ascii_lowercase();
            let name = if entity.name.is_empty() {
                entity.id.rsplit('/').next().unwrap_or_default().to_string()
            } else {
                entity.name.clone()
            };
            if kind.ends_with("subscriptions") {
                self.management_groups
                    .set_subscription_parent(&name, &parent_group);
            } else {
                self.management_groups
                    .set_group_parent(&name, &parent_group);
            }
        }
        if let Some(cycle) = self.management_groups.find_cycle() {
            diagnostics.push(Diagnostic::error(
                Origin::new("management groups", "-"),
                format!("management group `{cycle}` is its own ancestor"),
            ));
        }
    }

    fn add_roles(
        &mut self,
        roles: &[(Origin, RoleDefinition)],
        copies: &mut Copies,
        diagnostics: &mut Vec<Diagnostic>,
    ) {
        // The first definition read of each GUID, by index into `roles`.
        let mut seen: HashMap<String, usize> = HashMap::with_capacity(roles.len());
        for (i, (origin, def)) in roles.iter().enumerate() {
            let guid = super::schema::role_guid(def);
            if guid.is_empty() {
                diagnostics.push(Diagnostic::error(
                    origin.clone(),
                    "role definition has neither `name` nor `id`",
                ));
                continue;
            }
            if let Some((first_origin, first)) = seen.get(&guid).and_then(|f| roles.get(*f)) {
                if same_role(first, def) {
                    copies.add(origin, first_origin, format!("role definition `{guid}`"));
                } else {
                    diagnostics.push(Diagnostic::error(
                        origin.field("name"),
                        format!(
                            "duplicate role definition id `{guid}`: also at {first_origin} with \
                             other permissions or assignableScopes; drop one of the two files or \
                             directories"
                        ),
                    ));
                }
                continue;
            }
            seen.insert(guid.clone(), i);
            if !check_operations(&def.permissions, origin, diagnostics) {
                continue;
            }
            for pattern in def
                .permissions
                .iter()
                .flat_map(|p| p.data_actions.iter().chain(&p.not_data_actions))
            {
                if pattern.matches('*').count() > 1 {
                    diagnostics.push(Diagnostic::warning(
                        origin.field("permissions"),
                        format!("`{pattern}` has more than one `*`, which Azure does not accept"),
                    ));
                }
            }
            self.role_by_guid.insert(guid.clone(), self.roles.len());
            self.roles.push(Role {
                guid: Arc::from(guid),
                id: def.id.clone(),
                name: Arc::from(if def.role_name.is_empty() {
                    def.name.as_str()
                } else {
                    def.role_name.as_str()
                }),
                blocks: def
                    .permissions
                    .iter()
                    .map(PermissionBlock::compile)
                    .collect(),
                pattern_count: def
                    .permissions
                    .iter()
                    .map(|p| p.data_actions.len() + p.not_data_actions.len())
                    .sum(),
            });
        }
    }

    /// Resolves the compiled assignments' roles and indexes them by principal.
    /// Takes over the scopes they name (deny assignments add theirs after).
    fn add_assignments(
        &mut self,
        set: AssignmentSet,
        copies: &mut Copies,
        diagnostics: &mut Vec<Diagnostic>,
    ) {
        (self.assignments, self.scopes) = set.resolve(&self.role_by_guid, copies, diagnostics);
    }

    /// Counts the principals the role assignments name (once the superseded ones are gone).
    fn count_principals(&mut self) {
        let mut principals = rustc_hash::FxHashSet::default();
        for a in &self.assignments {
            pace::point();
            principals.insert(a.principal);
        }
        self.principal_count = principals.len();
    }

    /// Compiles the PIM schedule instances: an assignment instance whose status may grant
    /// becomes a role assignment in `set` that grants only inside its window; the others,
    /// and every eligibility, are kept inert. Returns the ids of the role assignments the
    /// instances stand behind (`originRoleAssignmentId`): an export taken
    /// during an activation lists the activation as an ordinary role assignment too, and it
    /// must end with the window, not live on in the snapshot.
    fn add_schedules(&mut self, set: &mut PolicySet, diagnostics: &mut Vec<Diagnostic>) -> IdSet {
        let mut superseded = IdSet::default();
        let instances = std::mem::take(&mut set.role_assignment_schedule_instances);
        let eligibilities = std::mem::take(&mut set.role_eligibility_schedule_instances);
        // The first instance read of each id (lower-cased): a copy in another export is
        // loaded once; another window, status or grant under the same id is an error.
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (i, (origin, instance)) in instances.iter().enumerate() {
            let first = *seen.entry(instance.id.to_ascii_lowercase()).or_insert(i);
            if first != i {
                if let Some((first_origin, earlier)) = instances.get(first)
                    && (earlier.window() != instance.window()
                        || earlier.status_grants() != instance.status_grants()
                        || !same_grant(earlier, instance))
                {
                    diagnostics.push(Diagnostic::error(
                        origin.field("id"),
                        format!(
                            "duplicate schedule instance id `{}`: also at {first_origin} with \
                             another window, status, principal, role, scope or condition; drop \
                             one of the two files",
                            instance.id
                        ),
                    ));
                }
                continue;
            }
            if let Some(ra) = instance
                .origin_role_assignment_id
                .as_deref()
                .map(str::trim)
                .filter(|id| !id.is_empty())
            {
                superseded.insert(ra);
            }
            let (start, end) = instance.window();
            let Some(start) = start else {
                // Reported by the parser; an instance that reaches here without a start
                // grants nothing.
                continue;
            };
            if !instance.status_grants() {
                self.add_inert(origin, instance, false, diagnostics);
                continue;
            }
            let Some(id) = WindowId::new(self.windows.len()) else {
                diagnostics.push(Diagnostic::error(
                    origin.clone(),
                    "too many schedule instances",
                ));
                continue;
            };
            self.windows.push(Window {
                start,
                end,
                instance: Arc::from(instance.id.as_str()),
            });
            let ra = super::schema::RoleAssignment {
                id: instance.id.clone(),
                name: instance.name.clone(),
                principal_id: instance.principal_id.clone(),
                principal_type: instance.principal_type.clone(),
                role_definition_id: instance.role_definition_id.clone(),
                scope: instance.scope.clone(),
                condition: instance.condition.clone(),
                condition_version: instance.condition_version.clone(),
            };
            set.role_assignments
                .add_windowed(origin, &ra, id, diagnostics);
        }
        for (origin, instance) in &eligibilities {
            self.add_inert(origin, instance, true, diagnostics);
        }
        superseded
    }

    /// Keeps a schedule instance that grants nothing, checked like a role assignment.
    fn add_inert(
        &mut self,
        origin: &Origin,
        instance: &super::schema::ScheduleInstance,
        eligibility: bool,
        diagnostics: &mut Vec<Diagnostic>,
    ) {
        let principal = parse_principal(
            &instance.principal_id,
            || origin.field("principalId"),
            diagnostics,
        );
        let scope = match Scope::parse(&instance.scope) {
            Ok(s) => Some(s),
            Err(e) => {
                diagnostics.push(Diagnostic::error(origin.field("scope"), e.to_string()));
                None
            }
        };
        let (Some(principal), Some(scope)) = (principal, scope) else {
            return;
        };
        let (start, end) = instance.window();
        self.inert_schedules.push(InertSchedule {
            id: Arc::from(instance.id.as_str()),
            principal,
            role_guid: super::schema::role_definition_guid(&instance.role_definition_id).into(),
            scope,
            start,
            end,
            status: instance.status.as_deref().map(Box::from),
            eligibility,
        });
    }

    /// Leaves out the role assignments a schedule instance stands behind (see
    /// [`Snapshot::add_schedules`]): they grant through the instance, inside its window.
    fn drop_superseded(&mut self, superseded: &IdSet) {
        if superseded.0.is_empty() {
            return;
        }
        self.assignments.retain(|a| {
            pace::point();
            a.window.is_some() || !superseded.contains(&a.id)
        });
    }

    /// The role definition with a lower-cased GUID, if loaded.
    pub fn role_by_guid(&self, guid: &str) -> Option<&Role> {
        self.role_by_guid.get(guid).and_then(|i| self.roles.get(*i))
    }

    /// Checks and compiles the deny assignments; one read twice is loaded once (other content
    /// under the same id is an error).
    fn add_denies(
        &mut self,
        set: &PolicySet,
        copies: &mut Copies,
        diagnostics: &mut Vec<Diagnostic>,
    ) {
        // The first deny assignment read of each id (lower-cased), by index.
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (i, (origin, da)) in set.deny_assignments.iter().enumerate() {
            let id = if da.id.is_empty() {
                da.deny_assignment_name.clone()
            } else {
                da.id.clone()
            };
            if id.is_empty() {
                diagnostics.push(Diagnostic::error(
                    origin.field("id"),
                    "deny assignment has no `id`",
                ));
                continue;
            }
            let first = *seen.entry(id.to_ascii_lowercase()).or_insert(i);
            if first != i {
                if let Some((first_origin, first)) = set.deny_assignments.get(first) {
                    note_deny_copy(
                        &id,
                        (origin, da),
                        (first_origin, first),
                        copies,
                        diagnostics,
                    );
                }
                continue;
            }
            let Some(checked) = check_deny(origin, da, diagnostics) else {
                continue;
            };
            let scope_id = self.scopes.intern(checked.scope.clone());
            self.denies.push(Deny {
                id: Arc::from(id),
                name: Arc::from(da.deny_assignment_name.as_str()),
                blocks: da
                    .permissions
                    .iter()
                    .map(PermissionBlock::compile)
                    .collect(),
                principals: checked.principals,
                excluded: checked.excluded,
                applies_to_children: !da.do_not_apply_to_child_scopes,
                scope: checked.scope,
                scope_id,
                condition: checked.condition,
            });
        }
    }

    /// Indexes, by principal, every assignment and deny assignment at any scope.
    fn index_anywhere(&mut self) {
        let mut anywhere: HashMap<Uuid, Holdings, rustc_hash::FxBuildHasher> = HashMap::default();
        for (i, a) in self.assignments.iter().enumerate() {
            pace::point();
            anywhere
                .entry(a.principal)
                .or_default()
                .assignments
                .push(HeldAssignment {
                    scope_id: a.scope_id,
                    index: i as u32,
                });
        }
        let mut everyone = Holdings::default();
        for (i, d) in self.denies.iter().enumerate() {
            let held = HeldAssignment {
                scope_id: d.scope_id,
                index: i as u32,
            };
            for p in &d.principals {
                if *p == EVERYONE {
                    everyone.denies.push(held);
                } else {
                    anywhere.entry(*p).or_default().denies.push(held);
                }
            }
        }
        for holdings in anywhere.values_mut() {
            holdings.sort();
        }
        everyone.sort();
        self.anywhere = anywhere;
        self.everyone_anywhere = everyone;
    }

    /// What the policy holds for a principal at any scope.
    pub fn holdings(&self, principal: &Uuid) -> Option<&Holdings> {
        self.anywhere.get(principal)
    }

    /// Deny assignments for Everyone at any scope.
    pub fn everyone_holdings(&self) -> &Holdings {
        &self.everyone_anywhere
    }

    /// The interned ids of a scope and its ancestors that anything is assigned at, nearest
    /// first, ending at `/`: resource-id prefixes of whole type/name pairs, then the
    /// management groups above its subscription. Builds no string for the resource part.
    pub fn scope_chain(&self, scope: &Scope) -> smallvec::SmallVec<[ScopeId; 8]> {
        let mut chain = smallvec::SmallVec::new();
        let mut push = |key: &str| {
            if let Some(id) = self.scopes.id(key) {
                chain.push(id);
            }
        };
        let key = scope.key();
        if let Some(group) = scope.management_group() {
            push(key);
            for parent in self.management_groups.ancestors_of_group(group) {
                push(Scope::of_management_group(parent).key());
            }
        } else if key != "/" {
            // Where each segment starts (after its `/`), and the end of the key.
            let starts: smallvec::SmallVec<[usize; 16]> = key
                .match_indices('/')
                .map(|(at, _)| at + 1)
                .chain(std::iter::once(key.len() + 1))
                .collect();
            let segment = |n: usize| -> &str {
                match (starts.get(n), starts.get(n + 1)) {
                    (Some(from), Some(to)) => key.get(*from..to - 1).unwrap_or_default(),
                    _ => "",
                }
            };
            let mut len = starts.len() - 1;
            while len >= 2 {
                // `…/providers/<namespace>` is a path step, not a scope.
                if segment(len - 2) != "providers"
                    && let Some(end) = starts.get(len)
                {
                    push(key.get(..end - 1).unwrap_or_default());
                }
                len -= 2;
            }
            if let Some(subscription) = scope.subscription() {
                for group in self
                    .management_groups
                    .ancestors_of_subscription(subscription)
                {
                    push(Scope::of_management_group(group).key());
                }
            }
        }
        push("/");
        chain
    }

    /// Indexes, by principal, the assignments and deny assignments on the cluster's scope
    /// chain; everything elsewhere can never apply to a request for this cluster.
    fn index_principals(&mut self) {
        // One flag per interned scope: on the cluster's chain or one of its namespaces.
        let mut relevant = vec![false; self.scopes.len()];
        for id in self
            .cluster
            .chain
            .iter()
            .chain(self.cluster.namespaces.values())
        {
            if let Some(flag) = relevant.get_mut(*id as usize) {
                *flag = true;
            }
        }
        let relevant = |id: ScopeId| relevant.get(id as usize).copied().unwrap_or(false);
        let mut index = PrincipalIndex::default();
        for (i, a) in self.assignments.iter().enumerate() {
            pace::point();
            if relevant(a.scope_id) {
                index.entry(&a.principal).assignments.push(HeldAssignment {
                    scope_id: a.scope_id,
                    index: i as u32,
                });
            }
        }
        for (i, d) in self.denies.iter().enumerate() {
            if relevant(d.scope_id) {
                for p in &d.principals {
                    index.entry(p).denies.push(i as u32);
                }
                // Excluded principals must be found too, or an exclusion would be missed.
                for p in &d.excluded {
                    index.entry(p);
                }
            }
        }
        self.everyone = index.remove(&EVERYONE_KEY);
        self.principal_filter = BitFilter::new(index.keys().map(|k| filter::guid_hash(&k.0)), 64);
        self.principal_index = index;
    }

    fn index_cluster(&mut self, cluster: Option<&Scope>) {
        let Some(cluster) = cluster else {
            return;
        };
        let chain = cluster
            .ancestors(&self.management_groups)
            .iter()
            .filter_map(|s| self.scope_id(s))
            .collect();
        let prefix = format!("{}/namespaces/", cluster.key());
        let namespaces = self
            .scopes
            .iter()
            .filter_map(|(id, scope)| {
                let ns = scope.key().strip_prefix(&prefix)?;
                (!ns.contains('/')).then(|| (ns.to_string(), id))
            })
            .collect();
        self.cluster = ClusterScopes {
            cluster: Some(cluster.clone()),
            cluster_key: Arc::from(cluster.key()),
            chain,
            cluster_id: self.scope_id(cluster),
            namespaces,
        };
    }
}

/// Whether two role definitions with the same GUID grant the same: their permissions and
/// assignable scopes, ignoring case (Azure matches actions and scopes so).
fn same_role(a: &RoleDefinition, b: &RoleDefinition) -> bool {
    same_permissions(&a.permissions, &b.permissions)
        && same_list(&a.assignable_scopes, &b.assignable_scopes, same_scope)
}

/// Whether two deny assignments with the same id deny the same.
fn same_deny(a: &DenyAssignment, b: &DenyAssignment) -> bool {
    let ids = |x: &PrincipalRef, y: &PrincipalRef| x.id.trim().eq_ignore_ascii_case(y.id.trim());
    same_permissions(&a.permissions, &b.permissions)
        && same_list(&a.principals, &b.principals, ids)
        && same_list(&a.exclude_principals, &b.exclude_principals, ids)
        && same_scope(&a.scope, &b.scope)
        && a.do_not_apply_to_child_scopes == b.do_not_apply_to_child_scopes
        && a.condition
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty())
            == b.condition
                .as_deref()
                .map(str::trim)
                .filter(|c| !c.is_empty())
}

/// A deny assignment whose id was read before: an identical copy is counted, other content
/// under the same id is an error.
fn note_deny_copy(
    id: &str,
    (origin, da): (&Origin, &DenyAssignment),
    (first_origin, first): (&Origin, &DenyAssignment),
    copies: &mut Copies,
    diagnostics: &mut Vec<Diagnostic>,
) {
    if same_deny(first, da) {
        copies.add(origin, first_origin, format!("deny assignment `{id}`"));
    } else {
        diagnostics.push(Diagnostic::error(
            origin.field("id"),
            format!(
                "duplicate deny assignment id `{id}`: also at {first_origin} \
                 with other content (permissions, principals, \
                 excludePrincipals, scope, doNotApplyToChildScopes or \
                 condition); drop one of the two files or directories"
            ),
        ));
    }
}

/// The parts of a deny assignment that are checked before it is loaded.
struct CheckedDeny {
    principals: Vec<Uuid>,
    excluded: Vec<Uuid>,
    scope: Scope,
    condition: Option<Result<Condition, String>>,
}

/// Checks a deny assignment's principals, permissions, scope and condition; `None` (with
/// the errors in `diagnostics`) if it cannot be loaded.
fn check_deny(
    origin: &Origin,
    da: &DenyAssignment,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<CheckedDeny> {
    let mut ok = true;
    let mut ids = |list: &[PrincipalRef], field: &str| -> Vec<Uuid> {
        list.iter()
            .enumerate()
            .filter_map(|(i, p)| {
                let parsed = parse_principal(&p.id, || origin.field(field).item(i), diagnostics);
                ok &= parsed.is_some();
                parsed
            })
            .collect()
    };
    let principals = ids(&da.principals, "principals");
    let excluded = ids(&da.exclude_principals, "excludePrincipals");
    if excluded.contains(&EVERYONE) {
        diagnostics.push(Diagnostic::error(
            origin.field("excludePrincipals"),
            "Everyone (`00000000-0000-0000-0000-000000000000`) cannot be excluded: \
             Azure names it only in `principals`",
        ));
        return None;
    }
    // Azure requires both lists: an empty one is a cut or broken file, which must not
    // read as a deny assignment that denies nothing.
    if principals.is_empty() && ok {
        diagnostics.push(Diagnostic::error(
            origin.field("principals"),
            "deny assignment names no principal",
        ));
        return None;
    }
    if da.permissions.is_empty() {
        diagnostics.push(Diagnostic::error(
            origin.field("permissions"),
            "deny assignment has no `permissions`",
        ));
        return None;
    }
    if !check_operations(&da.permissions, origin, diagnostics) {
        return None;
    }
    let scope = match Scope::parse(&da.scope) {
        Ok(s) => {
            super::assignments::check_id_scope(
                &da.id,
                &da.name,
                "denyAssignments",
                &s,
                origin,
                diagnostics,
            );
            s
        }
        Err(e) => {
            diagnostics.push(Diagnostic::error(origin.field("scope"), e.to_string()));
            return None;
        }
    };
    let condition = compile_condition(
        da.condition.as_deref(),
        None,
        origin,
        diagnostics,
        "this deny assignment applies to every action it lists",
    );
    ok.then_some(CheckedDeny {
        principals,
        excluded,
        scope,
        condition,
    })
}

fn same_permissions(a: &[Permission], b: &[Permission]) -> bool {
    let text = |x: &String, y: &String| x.trim().eq_ignore_ascii_case(y.trim());
    same_list(a, b, |x, y| {
        same_list(&x.actions, &y.actions, text)
            && same_list(&x.not_actions, &y.not_actions, text)
            && same_list(&x.data_actions, &y.data_actions, text)
            && same_list(&x.not_data_actions, &y.not_data_actions, text)
    })
}

/// Scopes as `Scope::parse` reads them (case and a trailing `/` aside); text that does not
/// parse is compared as written.
fn same_scope(a: &String, b: &String) -> bool {
    match (Scope::parse(a), Scope::parse(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

fn same_list<T>(a: &[T], b: &[T], same: impl Fn(&T, &T) -> bool) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principal_ids_are_hyphenated_guids_only() {
        let mut diagnostics = Vec::new();
        let origin = || Origin::new("test", "principalId");
        let id = "6f0b7e4a-1c2d-4e5f-8a9b-000000000f1d";
        assert!(parse_principal(id, origin, &mut diagnostics).is_some());
        assert!(parse_principal(&id.to_ascii_uppercase(), origin, &mut diagnostics).is_some());
        assert!(diagnostics.is_empty());
        for loose in [
            format!("{{{id}}}"),
            format!("urn:uuid:{id}"),
            id.replace('-', ""),
            format!(" {id}"),
        ] {
            assert!(
                parse_principal(&loose, origin, &mut diagnostics).is_none(),
                "{loose}"
            );
        }
        assert_eq!(diagnostics.len(), 4);
    }
    use crate::policy::parse;
    use serde_json::json;

    const P: &str = "microsoft.containerservice/managedclusters/example.com";

    /// Roles with more than [`MEMO_MIN_PATTERNS`] patterns answer through the per-generation
    /// memo (one bitset of granting roles per action): each role's answer, first lookup and
    /// memoised, is what matching its own patterns says.
    #[test]
    fn large_roles_answer_through_the_memo_as_their_patterns_do() {
        let widgets = |range: std::ops::Range<usize>| -> Vec<String> {
            range.map(|i| format!("{P}/widgets{i}/read")).collect()
        };
        let mut large_a = widgets(0..70);
        large_a.push(format!("{P}/gadgets/*"));
        let large_c = widgets(35..110);
        let small = widgets(5..6);
        let role = |guid: &str, name: &str, data: &[String], not: &[String]| {
            json!({"name": guid, "roleName": name, "type": "Microsoft.Authorization/roleDefinitions",
                   "permissions": [{"dataActions": data, "notDataActions": not}]})
        };
        let objects = json!([
            role(
                "c0000000-0000-4000-8000-00000000000a",
                "large a",
                &large_a,
                &[format!("{P}/gadgets/delete")]
            ),
            role("c0000000-0000-4000-8000-00000000000b", "small", &small, &[]),
            role(
                "c0000000-0000-4000-8000-00000000000c",
                "large c",
                &large_c,
                &[]
            ),
        ]);
        let set = parse::valid_set(objects);
        let snapshot = Snapshot::build(set, &IndexOptions::default(), 1).expect("valid policy");
        let index = |name: &str| {
            snapshot
                .roles
                .iter()
                .position(|r| &*r.name == name)
                .expect("role loaded")
        };
        let (a, b, c) = (index("large a"), index("small"), index("large c"));
        assert!(snapshot.roles[a].pattern_count > MEMO_MIN_PATTERNS);
        assert!(snapshot.roles[c].pattern_count > MEMO_MIN_PATTERNS);
        let by_patterns = |role: usize, action: &str| {
            snapshot.roles[role].blocks.iter().any(|b| b.grants(action))
        };
        let cases = [
            ("widgets5/read", [true, true, false]),
            ("widgets50/read", [true, false, true]),
            ("widgets99/read", [false, false, true]),
            ("widgets200/read", [false, false, false]),
            ("gadgets/write", [true, false, false]),
            ("gadgets/delete", [false, false, false]),
        ];
        for round in 0..2 {
            for (action, expected) in &cases {
                let action = format!("{P}/{action}");
                for (role, want) in [a, b, c].into_iter().zip(expected) {
                    assert_eq!(by_patterns(role, &action), *want, "{action}");
                    assert_eq!(
                        snapshot.role_grants(role, &action),
                        *want,
                        "round {round}, role {role}, {action}"
                    );
                }
                assert!(
                    snapshot.grants_memo.0.get(action.as_str()).is_some(),
                    "{action} is memoised after a large role asked for it"
                );
            }
        }
    }

    /// Builds a snapshot from files of JSON objects, named as given.
    fn build_files(files: &[(&str, serde_json::Value)]) -> Result<Snapshot, LoadError> {
        let (mut set, mut diagnostics) = (PolicySet::default(), Vec::new());
        for (name, objects) in files {
            parse::parse_json_str(name, &objects.to_string(), &mut set, &mut diagnostics);
        }
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        Snapshot::build(set, &IndexOptions::default(), 1)
    }

    fn copy_notes(snapshot: &Snapshot) -> Vec<String> {
        snapshot
            .warnings
            .iter()
            .filter(|d| d.kind == super::super::DiagnosticKind::IdenticalCopy)
            .map(ToString::to_string)
            .collect()
    }

    const GUID: &str = "c0000000-0000-4000-8000-00000000000a";

    fn definition(read: &str, scope: &str) -> serde_json::Value {
        json!({"name": GUID, "roleName": "reader", "type": "Microsoft.Authorization/roleDefinitions",
               "assignableScopes": [scope],
               "permissions": [{"dataActions": [format!("{P}/{read}")], "notDataActions": []}]})
    }

    #[test]
    fn a_role_definition_read_twice_loads_once_unless_its_content_differs() {
        let snapshot = build_files(&[
            ("a.json", json!([definition("pods/read", "/")])),
            (
                "b.json",
                json!([definition("PODS/READ", "/"), {
                    "id": format!("/providers/Microsoft.Authorization/roleDefinitions/{}", GUID.to_uppercase()),
                    "roleName": "reader", "assignableScopes": ["/"],
                    "permissions": [{"dataActions": [format!("{P}/pods/read")]}]}]),
            ),
        ])
        .expect("identical copies load");
        assert_eq!(snapshot.roles.len(), 1);
        assert_eq!(copy_notes(&snapshot).len(), 1, "{:?}", snapshot.warnings);
        assert!(
            copy_notes(&snapshot)[0]
                .contains("2 objects are identical copies of objects in `a.json`"),
            "{:?}",
            copy_notes(&snapshot)
        );

        for copy in [
            definition("pods/write", "/"),
            definition("pods/read", "/subscriptions/s1"),
        ] {
            let error = build_files(&[
                ("a.json", json!([definition("pods/read", "/")])),
                ("b.json", json!([copy])),
            ])
            .expect_err("a different copy is an error")
            .to_string();
            assert!(
                error.contains("b.json: $[0].name")
                    && error.contains(&format!(
                        "duplicate role definition id `{GUID}`: also at a.json: $[0]"
                    ))
                    && error.contains("drop one of the two"),
                "{error}"
            );
        }
    }

    #[test]
    fn a_deny_assignment_read_twice_loads_once_unless_its_content_differs() {
        const ALICE: &str = "6f0b7e4a-1c2d-4e5f-8a9b-000000000f1d";
        const BOB: &str = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0";
        let deny =
            |id: &str, principal: &str, scope: &str, children: bool, condition: Option<&str>| {
                let mut d = json!({"id": id, "denyAssignmentName": "no deletes",
                   "permissions": [{"dataActions": [format!("{P}/*/delete")]}],
                   "principals": [{"id": principal, "type": "User"}],
                   "excludePrincipals": [{"id": BOB, "type": "User"}],
                   "scope": scope, "doNotApplyToChildScopes": children});
                if let Some(c) = condition {
                    d["condition"] = json!(c);
                }
                d
            };
        let first = || json!([deny("da-1", ALICE, "/subscriptions/s1", false, None)]);
        let snapshot = build_files(&[
            ("a.json", first()),
            (
                "b.json",
                json!([deny(
                    "DA-1",
                    &ALICE.to_uppercase(),
                    "/Subscriptions/S1/",
                    false,
                    None
                )]),
            ),
        ])
        .expect("identical copies load");
        assert_eq!(snapshot.denies.len(), 1);
        let notes = copy_notes(&snapshot);
        assert_eq!(notes.len(), 1, "{:?}", snapshot.warnings);
        assert!(
            notes[0].contains("1 object is an identical copy of objects in `a.json`"),
            "{notes:?}"
        );

        let cond = "@Request[Microsoft.ContainerService/managedClusters/customResources:group] StringEquals 'a'";
        for copy in [
            deny("da-1", BOB, "/subscriptions/s1", false, None),
            deny("da-1", ALICE, "/subscriptions/s2", false, None),
            deny("da-1", ALICE, "/subscriptions/s1", true, None),
            deny("da-1", ALICE, "/subscriptions/s1", false, Some(cond)),
        ] {
            let error = build_files(&[("a.json", first()), ("b.json", json!([copy]))])
                .expect_err("a different copy is an error")
                .to_string();
            assert!(
                error.contains("b.json: $[0].id")
                    && error.contains("duplicate deny assignment id `da-1`: also at a.json: $[0]")
                    && error.contains("drop one of the two"),
                "{error}"
            );
        }
    }
}

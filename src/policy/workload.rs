//! Workload identity: user-assigned managed identities, their federated identity credentials
//! and the Kubernetes ServiceAccounts that name them, as loaded and indexed for the chain
//! ServiceAccount -> `client-id` annotation -> identity -> credential -> `principalId`
//! (spec `identity.md` E).
//!
//! ```text
//! ServiceAccount (ns, name) --client-id--> ManagedIdentity --id prefix--> FederatedCredential
//!                                            |                        (issuer, subject, audience)
//!                                            +-- principalId: what role assignments name
//! ```
//!
//! Matching of a credential is exact and case-sensitive, as Entra matches it since August 2024.

use super::compiled::{Assignment, Role};
use super::copies::Copies;
use super::diagnostic::{Diagnostic, DiagnosticKind, Origin};
use super::schema::RoleDefinition;
use super::scope_table::ScopeTable;
use crate::model::workload::parse_service_account_user;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use uuid::Uuid;

/// The ServiceAccount annotation naming the managed identity's client id.
pub const CLIENT_ID_ANNOTATION: &str = "azure.workload.identity/client-id";
/// The ServiceAccount annotation naming the identity's tenant.
pub const TENANT_ID_ANNOTATION: &str = "azure.workload.identity/tenant-id";
/// The segment between an identity's id and its credentials' names.
pub const CREDENTIALS_SEGMENT: &str = "/federatedIdentityCredentials/";
/// Azure's limit of federated identity credentials on one identity.
pub const MAX_CREDENTIALS_PER_IDENTITY: usize = 20;

/// A user-assigned managed identity, ids checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedIdentity {
    /// The ARM id, as read.
    pub id: Arc<str>,
    pub name: Arc<str>,
    /// What a workload names (the `client-id` annotation).
    pub client_id: Uuid,
    /// What role assignments name.
    pub principal_id: Uuid,
    pub tenant_id: Option<Uuid>,
}

/// A federated identity credential with a `subject` (those with only a
/// `claimsMatchingExpression` are not loaded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FederatedCredential {
    /// The ARM id, as read: `<identity id>/federatedIdentityCredentials/<name>`.
    pub id: Arc<str>,
    pub name: Arc<str>,
    /// The id of the identity it belongs to, the part of `id` before the credentials segment.
    pub identity_id: Arc<str>,
    pub issuer: Arc<str>,
    pub subject: Arc<str>,
    pub audiences: Vec<Arc<str>>,
}

impl FederatedCredential {
    /// Whether a token with this issuer, subject and audience matches the credential, as
    /// Entra compares them: exactly, case-sensitively.
    pub fn trusts(&self, issuer: &str, subject: &str, audience: &str) -> bool {
        *self.issuer == *issuer
            && *self.subject == *subject
            && self.audiences.iter().any(|a| **a == *audience)
    }
}

/// A ServiceAccount: its place and the workload identity annotations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccount {
    pub namespace: Arc<str>,
    pub name: Arc<str>,
    /// `azure.workload.identity/client-id`, as written.
    pub client_id: Option<Arc<str>>,
    /// `azure.workload.identity/tenant-id`, as written.
    pub tenant_id: Option<Arc<str>>,
}

/// The identity id a credential id names (as written), if the id is
/// `<identity id>/federatedIdentityCredentials/<name>` (the segment in any case).
pub fn credential_identity_id(credential_id: &str) -> Option<&str> {
    // ASCII lower-casing keeps byte offsets.
    let lower = credential_id.to_ascii_lowercase();
    let at = lower.find(&CREDENTIALS_SEGMENT.to_ascii_lowercase())?;
    let name = credential_id.get(at + CREDENTIALS_SEGMENT.len()..)?;
    if at == 0 || name.is_empty() || name.contains('/') {
        return None;
    }
    credential_id.get(..at)
}

/// The loaded identities, credentials and ServiceAccounts, indexed for the chain.
#[derive(Debug, Clone, Default)]
pub struct WorkloadIndex {
    identities: Vec<ManagedIdentity>,
    credentials: Vec<FederatedCredential>,
    /// Where each credential was read (same index).
    credential_origins: Vec<Origin>,
    service_accounts: Vec<ServiceAccount>,
    /// Client id -> index into `identities`.
    by_client_id: HashMap<Uuid, usize>,
    /// Lower-cased identity id -> index into `identities`.
    by_id: HashMap<String, usize>,
    /// Per identity (same index), its credentials' indexes into `credentials`.
    credentials_of: Vec<Vec<usize>>,
    /// Namespace -> name -> index into `service_accounts` (looked up by `&str`, no key built).
    by_account: HashMap<Arc<str>, HashMap<Arc<str>, usize>>,
    /// Subject -> (credential, identity) indexes of credentials on a loaded identity.
    by_subject: HashMap<Arc<str>, Vec<(usize, usize)>>,
    /// Whether the policy held any ServiceAccount or identity (the lints need to know).
    has_service_accounts: bool,
    has_identities: bool,
}

// === impl WorkloadIndex ===

impl WorkloadIndex {
    /// Indexes the workload objects read, loading each once: an identical copy is counted in
    /// `copies`, another object under the same id (or namespace and name, or an identity
    /// under another id with the same client id) is an error.
    pub(super) fn build(
        identities: Vec<(Origin, ManagedIdentity)>,
        credentials: Vec<(Origin, FederatedCredential)>,
        service_accounts: Vec<(Origin, ServiceAccount)>,
        copies: &mut Copies,
        diagnostics: &mut Vec<Diagnostic>,
    ) -> WorkloadIndex {
        let mut index = WorkloadIndex {
            has_service_accounts: !service_accounts.is_empty(),
            has_identities: !identities.is_empty(),
            ..WorkloadIndex::default()
        };
        let mut origins: Vec<Origin> = Vec::new();
        for (origin, identity) in identities {
            let key = identity.id.to_ascii_lowercase();
            if let Some(&first) = index.by_id.get(&key) {
                let (Some(kept), Some(kept_origin)) =
                    (index.identities.get(first), origins.get(first))
                else {
                    continue;
                };
                if *kept == identity {
                    copies.add(
                        &origin,
                        kept_origin,
                        format!("managed identity `{}`", identity.id),
                    );
                } else {
                    diagnostics.push(Diagnostic::error(
                        origin.field("id"),
                        format!(
                            "duplicate managed identity `{}`: also at {kept_origin} with other \
                             client, principal or tenant id; drop one of the two files",
                            identity.id
                        ),
                    ));
                }
                continue;
            }
            if let Some(kept) = index
                .by_client_id
                .get(&identity.client_id)
                .and_then(|i| index.identities.get(*i).zip(origins.get(*i)))
            {
                diagnostics.push(Diagnostic::error(
                    origin.field("clientId"),
                    format!(
                        "managed identities `{}` and `{}` (at {}) have the same client id `{}`: \
                         a client id names one identity",
                        identity.id, kept.0.id, kept.1, identity.client_id
                    ),
                ));
                continue;
            }
            let i = index.identities.len();
            index.by_id.insert(key, i);
            index.by_client_id.insert(identity.client_id, i);
            index.identities.push(identity);
            index.credentials_of.push(Vec::new());
            origins.push(origin);
        }
        index.add_credentials(credentials, copies, diagnostics);
        index.add_service_accounts(service_accounts, copies, diagnostics);
        index
    }

    fn add_credentials(
        &mut self,
        credentials: Vec<(Origin, FederatedCredential)>,
        copies: &mut Copies,
        diagnostics: &mut Vec<Diagnostic>,
    ) {
        let mut seen: HashMap<String, (usize, Origin)> = HashMap::new();
        let mut unattached = 0usize;
        let mut first_unattached: Option<(Origin, Arc<str>)> = None;
        for (origin, credential) in credentials {
            let key = credential.id.to_ascii_lowercase();
            if let Some((first, kept_origin)) = seen.get(&key) {
                if self.credentials.get(*first) == Some(&credential) {
                    copies.add(
                        &origin,
                        kept_origin,
                        format!("federated identity credential `{}`", credential.id),
                    );
                } else {
                    diagnostics.push(Diagnostic::error(
                        origin.field("id"),
                        format!(
                            "duplicate federated identity credential `{}`: also at \
                             {kept_origin} with another issuer, subject or audiences; drop one \
                             of the two files",
                            credential.id
                        ),
                    ));
                }
                continue;
            }
            let i = self.credentials.len();
            seen.insert(key, (i, origin.clone()));
            match self.by_id.get(&credential.identity_id.to_ascii_lowercase()) {
                Some(&identity) => {
                    if let Some(list) = self.credentials_of.get_mut(identity) {
                        list.push(i);
                    }
                    self.by_subject
                        .entry(credential.subject.clone())
                        .or_default()
                        .push((i, identity));
                }
                None => {
                    unattached += 1;
                    first_unattached
                        .get_or_insert_with(|| (origin.clone(), credential.identity_id.clone()));
                }
            }
            self.credentials.push(credential);
            self.credential_origins.push(origin);
        }
        if let Some((origin, identity)) = first_unattached {
            let more = match unattached {
                1 => String::new(),
                n => format!(" ({} more credentials like it)", n - 1),
            };
            diagnostics.push(
                Diagnostic::warning(
                    origin.field("id"),
                    format!(
                        "federated identity credential of identity `{identity}`, which is not \
                         loaded: it federates nothing until the identity's `az identity list` \
                         entry is in the policy{more}"
                    ),
                )
                .of_kind(DiagnosticKind::WorkloadIdentity),
            );
        }
        for (identity, list) in self.identities.iter().zip(&self.credentials_of) {
            if list.len() > MAX_CREDENTIALS_PER_IDENTITY {
                let origin = list
                    .get(MAX_CREDENTIALS_PER_IDENTITY)
                    .and_then(|i| self.credential_origins.get(*i))
                    .cloned()
                    .unwrap_or_else(|| Origin::new("managed identities", "-"));
                diagnostics.push(
                    Diagnostic::warning(
                        origin,
                        format!(
                            "managed identity `{}` has {} federated identity credentials: Azure \
                             allows at most {MAX_CREDENTIALS_PER_IDENTITY} per identity, so some \
                             of these cannot exist as loaded",
                            identity.name_or_id(),
                            list.len()
                        ),
                    )
                    .of_kind(DiagnosticKind::WorkloadIdentity),
                );
            }
        }
    }

    fn add_service_accounts(
        &mut self,
        service_accounts: Vec<(Origin, ServiceAccount)>,
        copies: &mut Copies,
        diagnostics: &mut Vec<Diagnostic>,
    ) {
        let mut origins: Vec<Origin> = Vec::new();
        for (origin, account) in service_accounts {
            let first = self
                .by_account
                .get(&account.namespace)
                .and_then(|names| names.get(&account.name));
            if let Some(&first) = first {
                let (Some(kept), Some(kept_origin)) =
                    (self.service_accounts.get(first), origins.get(first))
                else {
                    continue;
                };
                let what = format!("ServiceAccount `{}/{}`", account.namespace, account.name);
                if *kept == account {
                    copies.add(&origin, kept_origin, what);
                } else {
                    diagnostics.push(Diagnostic::error(
                        origin.field("metadata.annotations"),
                        format!(
                            "{what} is also at {kept_origin} with other workload identity \
                             annotations; drop one of the two files"
                        ),
                    ));
                }
                continue;
            }
            self.by_account
                .entry(account.namespace.clone())
                .or_default()
                .insert(account.name.clone(), self.service_accounts.len());
            self.service_accounts.push(account);
            origins.push(origin);
        }
        // Lints: an annotation naming no loaded identity (when identities are loaded), a
        // credential subject naming no loaded ServiceAccount (when ServiceAccounts are).
        if self.has_identities {
            for (account, origin) in self.service_accounts.iter().zip(&origins) {
                let Some(client_id) = &account.client_id else {
                    continue;
                };
                if self.identity_by_client_id(client_id).is_none() {
                    diagnostics.push(
                        Diagnostic::warning(
                            origin.field("metadata.annotations"),
                            format!(
                                "ServiceAccount `{}/{}` names client id `{client_id}` \
                                 ({CLIENT_ID_ANNOTATION}), which no loaded managed identity has",
                                account.namespace, account.name
                            ),
                        )
                        .of_kind(DiagnosticKind::WorkloadIdentity),
                    );
                }
            }
        }
        if self.has_service_accounts {
            for (credential, origin) in self.credentials.iter().zip(&self.credential_origins) {
                let Ok((namespace, name)) = parse_service_account_user(&credential.subject) else {
                    continue;
                };
                if self.service_account(&namespace, &name).is_none() {
                    diagnostics.push(
                        Diagnostic::warning(
                            origin.field("subject"),
                            format!(
                                "federated identity credential `{}` trusts subject `{}`, which \
                                 names no loaded ServiceAccount",
                                credential.name, credential.subject
                            ),
                        )
                        .of_kind(DiagnosticKind::WorkloadIdentity),
                    );
                }
            }
        }
    }

    /// Warnings for workload identities (identities some credential federates) that hold,
    /// at a subscription, management group or the root, a role with wildcard data actions or
    /// Owner-like actions (`*`): any pod of a trusted ServiceAccount holds them too.
    pub(super) fn lint_roles(
        &self,
        (assignments, roles, scopes): (&[Assignment], &[Role], &ScopeTable),
        definitions: &[(Origin, RoleDefinition)],
        diagnostics: &mut Vec<Diagnostic>,
    ) {
        let federated: HashMap<Uuid, &ManagedIdentity> = self
            .identities
            .iter()
            .zip(&self.credentials_of)
            .filter(|(_, c)| !c.is_empty())
            .map(|(i, _)| (i.principal_id, i))
            .collect();
        if federated.is_empty() {
            return;
        }
        let mut by_guid: HashMap<String, &RoleDefinition> = HashMap::new();
        for (_, def) in definitions {
            by_guid.entry(super::schema::role_guid(def)).or_insert(def);
        }
        let mut reported: HashSet<(Uuid, usize, u32)> = HashSet::new();
        for assignment in assignments {
            let Some(identity) = federated.get(&assignment.principal) else {
                continue;
            };
            let Some(scope) = scopes.get(assignment.scope_id) else {
                continue;
            };
            if !is_broad_scope(scope.key()) {
                continue;
            }
            let Some(role) = roles.get(assignment.role) else {
                continue;
            };
            let Some(def) = by_guid.get(&*role.guid) else {
                continue;
            };
            let Some(why) = broad_role(def) else {
                continue;
            };
            if !reported.insert((identity.principal_id, assignment.role, assignment.scope_id)) {
                continue;
            }
            diagnostics.push(
                Diagnostic::warning(
                    Origin::new("role assignments", &assignment.id),
                    format!(
                        "workload identity `{}` (principal `{}`) holds `{}` at `{}`: {why}; any \
                         pod of a ServiceAccount its federated credentials trust can use it, so \
                         assign a narrower role at the resources the workload needs",
                        identity.name_or_id(),
                        identity.principal_id,
                        role.name,
                        scope.key()
                    ),
                )
                .of_kind(DiagnosticKind::WorkloadIdentity),
            );
        }
    }

    /// The ServiceAccount `namespace/name` (exact), if loaded.
    pub fn service_account(&self, namespace: &str, name: &str) -> Option<&ServiceAccount> {
        self.by_account
            .get(namespace)?
            .get(name)
            .and_then(|i| self.service_accounts.get(*i))
    }

    /// The identity with this client id (a GUID in any case), if loaded.
    pub fn identity_by_client_id(&self, client_id: &str) -> Option<&ManagedIdentity> {
        let id = Uuid::try_parse(client_id.trim()).ok()?;
        self.by_client_id
            .get(&id)
            .and_then(|i| self.identities.get(*i))
    }

    /// The credentials of a loaded identity: those whose id starts with
    /// `<identity id>/federatedIdentityCredentials/` (found by its client id, unique).
    pub fn credentials_of(
        &self,
        identity: &ManagedIdentity,
    ) -> impl Iterator<Item = &FederatedCredential> {
        self.by_client_id
            .get(&identity.client_id)
            .and_then(|i| self.credentials_of.get(*i))
            .into_iter()
            .flatten()
            .filter_map(|c| self.credentials.get(*c))
    }

    /// Every (identity, credential) whose credential trusts this issuer, subject and audience
    /// (exact, case-sensitive), identities in load order.
    pub fn trusting<'a, 'q>(
        &'a self,
        issuer: &'q str,
        subject: &str,
        audience: &'q str,
    ) -> impl Iterator<Item = (&'a ManagedIdentity, &'a FederatedCredential)> + 'q
    where
        'a: 'q,
    {
        self.by_subject
            .get(subject)
            .into_iter()
            .flatten()
            .filter_map(|(c, i)| Some((self.identities.get(*i)?, self.credentials.get(*c)?)))
            .filter(move |(_, c)| c.trusts(issuer, &c.subject, audience))
    }

    /// Every loaded identity, in load order.
    pub fn identities(&self) -> &[ManagedIdentity] {
        &self.identities
    }

    /// Every loaded credential (those of identities not loaded included), in load order.
    pub fn credentials(&self) -> &[FederatedCredential] {
        &self.credentials
    }

    /// Every loaded ServiceAccount, in load order.
    pub fn service_accounts(&self) -> &[ServiceAccount] {
        &self.service_accounts
    }
}

impl ManagedIdentity {
    /// The name, or the id when the export has no name.
    pub fn name_or_id(&self) -> &str {
        if self.name.is_empty() {
            &self.id
        } else {
            &self.name
        }
    }
}

/// Whether a scope key is the root, a management group or a subscription itself.
fn is_broad_scope(key: &str) -> bool {
    if key == "/" || key.starts_with("/providers/microsoft.management/managementgroups/") {
        return true;
    }
    key.strip_prefix("/subscriptions/")
        .is_some_and(|rest| !rest.contains('/'))
}

/// Why a role is too broad for a workload identity, if it is: a wildcard data action (`*`
/// or `<provider>/*`) or `*` in its actions (Owner, Contributor).
fn broad_role(def: &RoleDefinition) -> Option<String> {
    let blocks = &def.permissions;
    if blocks
        .iter()
        .any(|b| b.actions.iter().any(|a| a.trim() == "*"))
    {
        return Some(
            "its Actions include `*` (every control-plane operation, like Owner or Contributor)"
                .into(),
        );
    }
    let wildcard = blocks.iter().flat_map(|b| &b.data_actions).find(|d| {
        let d = d.trim();
        d == "*"
            || d.strip_suffix("/*")
                .is_some_and(|provider| !provider.contains('/'))
    })?;
    Some(format!(
        "its DataActions include `{wildcard}` (every data operation of the provider)"
    ))
}

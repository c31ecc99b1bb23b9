//! Azure's CheckAccess question — may this subject do these operations on this resource — and
//! its answer, one decision per operation. The subject is an Entra principal (object id and
//! groups) or a Kubernetes service account, reached through workload identity.

use super::Scope;
use super::workload::{WorkloadMode, WorkloadQuestion};
use std::collections::BTreeMap;
use std::sync::Arc;
use uuid::Uuid;

/// Most operations one CheckAccess call may ask about (Azure's limit, and Guard's batch).
pub const MAX_ACTIONS: usize = 200;

/// Most groups a CheckAccess subject may name: far above Entra's transitive memberships of a
/// real user, and a bound on the work one request can ask for.
pub const MAX_GROUPS: usize = 10_000;

/// How long a caller may keep an answer: Azure's CheckAccess answers 5 minutes.
pub const TIME_TO_LIVE_MS: u64 = 300_000;

/// One CheckAccess question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckAccess {
    pub subject: Subject,
    /// In request order; at most [`MAX_ACTIONS`].
    pub actions: Vec<OperationRequest>,
    /// The resource the operations are on.
    pub resource: Scope,
}

/// Who asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// An Entra principal: its object id and the groups the caller says it is in.
    Principal { object_id: Uuid, groups: Vec<Uuid> },
    /// A Kubernetes service account, through the managed identities it is federated to.
    ServiceAccount(WorkloadQuestion),
    /// A projected service-account token, not yet verified: the server or `check` verifies
    /// it against the cluster issuer's keys and asks about the account it names instead.
    ServiceAccountToken {
        token: String,
        audience: String,
        mode: WorkloadMode,
    },
}

/// One operation asked about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationRequest {
    /// The operation as the caller spelled it (`Microsoft.KeyVault/vaults/read`).
    pub id: String,
    /// Whether `id` is a data action (matched against DataActions) or a control-plane one
    /// (matched against Actions).
    pub is_data_action: bool,
    /// Attributes for ABAC conditions.
    pub attributes: BTreeMap<String, String>,
}

/// Azure's three answers for one operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccessDecision {
    Allowed,
    /// Nothing grants it.
    NotAllowed,
    /// A deny assignment blocks it.
    Denied,
}

impl AccessDecision {
    /// The spelling on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            AccessDecision::Allowed => "Allowed",
            AccessDecision::NotAllowed => "NotAllowed",
            AccessDecision::Denied => "Denied",
        }
    }
}

/// The role assignment that allowed an operation, as CheckAccess reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantingAssignment {
    pub id: Arc<str>,
    pub role_definition_id: Arc<str>,
    pub principal_id: Uuid,
    pub scope: Arc<str>,
    pub condition: Option<Arc<str>>,
}

/// The deny assignment that denied an operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DenyingAssignment {
    pub id: Arc<str>,
    pub name: Arc<str>,
    pub scope: Arc<str>,
}

/// The answer for one operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationDecision {
    pub decision: AccessDecision,
    pub role_assignment: Option<GrantingAssignment>,
    pub deny_assignment: Option<DenyingAssignment>,
    /// Why, in words: the link of a workload identity chain that broke, or what decided.
    pub reason: Option<Arc<str>>,
}

impl OperationDecision {
    /// Nothing grants the operation, for `reason`.
    pub fn not_allowed(reason: Option<Arc<str>>) -> Self {
        OperationDecision {
            decision: AccessDecision::NotAllowed,
            role_assignment: None,
            deny_assignment: None,
            reason,
        }
    }
}

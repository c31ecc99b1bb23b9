//! The policy objects as operators already have them: `az role definition list`,
//! `az role assignment list --all`, ARM deny assignments, `az account management-group
//! entities list`, and Kubernetes RBAC objects as `kubectl get -o yaml` prints them.
//! `null` lists read as empty.
//!
//! Unknown fields: Kubernetes RBAC objects are read strictly (the `*_FIELDS` lists below), as
//! `kubectl apply` does by default (server-side field validation `Strict`): a misspelled
//! `subject:` would otherwise bind nobody without a word. `metadata` is read leniently (real
//! exports carry `managedFields`, `annotations` and more). Azure objects are read leniently:
//! `az` and ARM add fields over time, and an export must keep loading.

use crate::model::Timestamp;
use crate::model::time::TimeError;
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;

fn null_as_default<'de, D, T>(de: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(de)?.unwrap_or_default())
}

/// An Azure role definition (built-in or custom).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleDefinition {
    #[serde(default)]
    pub id: String,
    /// The role's GUID (`name` in ARM and `az` output).
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub role_name: String,
    #[serde(default)]
    pub role_type: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub permissions: Vec<Permission>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub assignable_scopes: Vec<String>,
}

/// One permissions block of a role or deny assignment.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Permission {
    #[serde(default, deserialize_with = "null_as_default")]
    pub actions: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub not_actions: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub data_actions: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub not_data_actions: Vec<String>,
}

/// An Azure role assignment.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleAssignment {
    #[serde(default)]
    pub id: String,
    /// The assignment's GUID, the last segment of `id` (in ARM and `az` output).
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub principal_id: String,
    #[serde(default)]
    pub principal_type: Option<String>,
    #[serde(default)]
    pub role_definition_id: String,
    #[serde(default)]
    pub scope: String,
    #[serde(default)]
    pub condition: Option<String>,
    #[serde(default)]
    pub condition_version: Option<String>,
}

/// A principal reference in a deny assignment.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrincipalRef {
    #[serde(default)]
    pub id: String,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}

/// An Azure deny assignment (ARM shape).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DenyAssignment {
    #[serde(default)]
    pub id: String,
    /// The deny assignment's GUID, the last segment of `id` (in ARM output).
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub deny_assignment_name: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub permissions: Vec<Permission>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub principals: Vec<PrincipalRef>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub exclude_principals: Vec<PrincipalRef>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub do_not_apply_to_child_scopes: bool,
    #[serde(default)]
    pub scope: String,
    #[serde(default)]
    pub condition: Option<String>,
}

/// A management group or subscription from `az account management-group entities list`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManagementGroupEntity {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default, rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub parent: Option<ParentRef>,
}

/// `parent` of a management group entity.
#[derive(Debug, Clone, Deserialize)]
pub struct ParentRef {
    #[serde(default)]
    pub id: Option<String>,
}

/// `metadata` of a Kubernetes object (the parts RBAC reads).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ObjectMeta {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub labels: BTreeMap<String, String>,
}

/// `rbac.authorization.k8s.io/v1` PolicyRule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyRule {
    #[serde(default, deserialize_with = "null_as_default")]
    pub verbs: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub api_groups: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub resources: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub resource_names: Vec<String>,
    #[serde(
        default,
        rename = "nonResourceURLs",
        deserialize_with = "null_as_default"
    )]
    pub non_resource_urls: Vec<String>,
}

/// A label selector (`matchLabels` AND `matchExpressions`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelector {
    #[serde(default, deserialize_with = "null_as_default")]
    pub match_labels: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub match_expressions: Vec<LabelSelectorRequirement>,
}

/// One `matchExpressions` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct LabelSelectorRequirement {
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub operator: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub values: Vec<String>,
}

/// `aggregationRule` of a ClusterRole.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AggregationRule {
    #[serde(default, deserialize_with = "null_as_default")]
    pub cluster_role_selectors: Vec<LabelSelector>,
}

/// A Role or ClusterRole.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct K8sRole {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default, deserialize_with = "null_as_default")]
    pub rules: Vec<PolicyRule>,
    #[serde(default)]
    pub aggregation_rule: Option<AggregationRule>,
}

/// `roleRef` of a binding.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleRef {
    #[serde(default)]
    pub api_group: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub name: String,
}

/// A binding subject.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subject {
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub api_group: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: String,
}

/// A RoleBinding or ClusterRoleBinding.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct K8sBinding {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub role_ref: RoleRef,
    #[serde(default, deserialize_with = "null_as_default")]
    pub subjects: Vec<Subject>,
}

/// The API group of RBAC objects, and of `User` and `Group` subjects.
pub const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// Top-level fields of a Role. `status` is tolerated: RBAC objects have none, but tools that
/// write every object the same way add an empty one.
pub const ROLE_FIELDS: &[&str] = &["apiVersion", "kind", "metadata", "rules", "status"];
/// Top-level fields of a ClusterRole.
pub const CLUSTER_ROLE_FIELDS: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "rules",
    "aggregationRule",
    "status",
];
/// Top-level fields of a RoleBinding or ClusterRoleBinding.
pub const BINDING_FIELDS: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "roleRef",
    "subjects",
    "status",
];
/// Fields of a [`PolicyRule`].
pub const RULE_FIELDS: &[&str] = &[
    "verbs",
    "apiGroups",
    "resources",
    "resourceNames",
    "nonResourceURLs",
];
/// Fields of a [`Subject`].
pub const SUBJECT_FIELDS: &[&str] = &["kind", "apiGroup", "name", "namespace"];
/// Fields of a [`RoleRef`].
pub const ROLE_REF_FIELDS: &[&str] = &["apiGroup", "kind", "name"];
/// Fields of an [`AggregationRule`].
pub const AGGREGATION_RULE_FIELDS: &[&str] = &["clusterRoleSelectors"];
/// Fields of a [`LabelSelector`].
pub const LABEL_SELECTOR_FIELDS: &[&str] = &["matchLabels", "matchExpressions"];
/// Fields of a [`LabelSelectorRequirement`].
pub const REQUIREMENT_FIELDS: &[&str] = &["key", "operator", "values"];

/// Subject kinds the API server accepts.
pub const SUBJECT_KINDS: &[&str] = &["User", "Group", "ServiceAccount"];

/// `principalType` values of an Azure role assignment (ARM's `PrincipalType`).
pub const PRINCIPAL_TYPES: &[&str] = &[
    "User",
    "Group",
    "ServicePrincipal",
    "ForeignGroup",
    "Device",
];
/// `type` values of a deny assignment principal; `SystemDefined` is Everyone.
pub const DENY_PRINCIPAL_TYPES: &[&str] = &["User", "Group", "ServicePrincipal", "SystemDefined"];

/// An Entra user as `az ad user list` or Graph `GET /users` prints it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntraUser {
    pub id: String,
    #[serde(default, rename = "@odata.type")]
    pub odata_type: Option<String>,
    #[serde(default)]
    pub user_principal_name: Option<String>,
    #[serde(default)]
    pub account_enabled: Option<bool>,
}

/// An Entra group as `az ad group list` or Graph `GET /groups?$expand=members` prints it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntraGroup {
    pub id: String,
    #[serde(default, rename = "@odata.type")]
    pub odata_type: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub members: Vec<EntraMember>,
}

/// A directory object listed as a group member (`az ad group member list`, `$expand`).
#[derive(Debug, Clone, Deserialize)]
pub struct EntraMember {
    pub id: String,
    #[serde(default, rename = "@odata.type")]
    pub odata_type: Option<String>,
}

/// A role definition's lower-cased GUID: its `name`, or the last segment of its `id` when
/// the export has no name.
pub fn role_guid(def: &RoleDefinition) -> String {
    if def.name.is_empty() {
        role_definition_guid(&def.id)
    } else {
        def.name.to_ascii_lowercase()
    }
}

/// The role GUID a `roleDefinitionId` names: its last path segment, lower-cased (the
/// subscription-scoped and the bare form of one role give the same GUID).
pub fn role_definition_guid(role_definition_id: &str) -> String {
    role_definition_id
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase()
}

/// A PIM role assignment or role eligibility schedule instance (ARM `2020-10-01`
/// `roleAssignmentScheduleInstances` / `roleEligibilityScheduleInstances`, `properties`
/// lifted). Fields scopegate does not decide by (`memberType`, `expandedProperties`, linked
/// ids, `createdOn`) are read leniently and ignored.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleInstance {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub scope: String,
    #[serde(default)]
    pub role_definition_id: String,
    #[serde(default)]
    pub principal_id: String,
    #[serde(default)]
    pub principal_type: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    /// Parsed as read, once: the parser reports a bad time, the index reads the good ones.
    #[serde(default, deserialize_with = "schedule_time")]
    pub start_date_time: ScheduleTime,
    #[serde(default, deserialize_with = "schedule_time")]
    pub end_date_time: ScheduleTime,
    /// The role assignment this instance stands behind (assignment instances only).
    #[serde(default)]
    pub origin_role_assignment_id: Option<String>,
    /// `Activated` or `Assigned` (assignment instances only).
    #[serde(default)]
    pub assignment_type: Option<String>,
    #[serde(default)]
    pub member_type: Option<String>,
    #[serde(default)]
    pub condition: Option<String>,
    #[serde(default)]
    pub condition_version: Option<String>,
    #[serde(default)]
    pub role_assignment_schedule_id: Option<String>,
    #[serde(default)]
    pub role_eligibility_schedule_id: Option<String>,
}

/// A schedule instance's `startDateTime` or `endDateTime`: `None` when absent or blank, else
/// the time or why its text is not one.
pub type ScheduleTime = Option<Result<Timestamp, TimeError>>;

/// Reads a schedule time as text (a value of another type is a schema error) and parses it.
fn schedule_time<'de, D: Deserializer<'de>>(deserializer: D) -> Result<ScheduleTime, D::Error> {
    let text = Option::<String>::deserialize(deserializer)?;
    Ok(text
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(Timestamp::parse_rfc3339))
}

impl ScheduleInstance {
    /// The start and end of the instance's window; a missing or unreadable time (reported by
    /// the parser) is `None`.
    pub fn window(&self) -> (Option<Timestamp>, Option<Timestamp>) {
        let time = |t: &ScheduleTime| t.as_ref().and_then(|t| t.as_ref().ok().copied());
        (time(&self.start_date_time), time(&self.end_date_time))
    }

    /// Whether `status` lets the instance grant: every status but those PIM uses for a request
    /// that was refused, withdrawn or broke off.
    pub fn status_grants(&self) -> bool {
        self.status.as_deref().is_none_or(|s| {
            !SCHEDULE_STATUSES_NEVER_GRANTING
                .iter()
                .any(|n| n.eq_ignore_ascii_case(s.trim()))
        })
    }
}

/// `status` values of a schedule instance (ARM's `Status`).
pub const SCHEDULE_STATUSES: &[&str] = &[
    "Accepted",
    "PendingEvaluation",
    "Granted",
    "Denied",
    "PendingProvisioning",
    "Provisioned",
    "PendingRevocation",
    "Revoked",
    "Canceled",
    "Failed",
    "PendingApprovalProvisioning",
    "PendingApproval",
    "FailedAsResourceIsLocked",
    "PendingAdminDecision",
    "AdminApproved",
    "AdminDenied",
    "TimedOut",
    "ProvisioningStarted",
    "Invalid",
    "PendingScheduleCreation",
    "ScheduleCreated",
    "PendingExternalProvisioning",
];

/// Statuses with which a schedule instance never grants.
pub const SCHEDULE_STATUSES_NEVER_GRANTING: &[&str] = &[
    "Denied",
    "Revoked",
    "Canceled",
    "Failed",
    "FailedAsResourceIsLocked",
    "AdminDenied",
    "TimedOut",
    "Invalid",
];

/// A user-assigned managed identity as `az identity list` prints it (REST nests the three ids
/// under `properties`, lifted before this is read).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManagedIdentity {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub principal_id: Option<String>,
    #[serde(default)]
    pub tenant_id: Option<String>,
}

/// A federated identity credential as `az identity federated-credential list` prints it
/// (`properties` lifted).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FederatedCredential {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub issuer: Option<String>,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub audiences: Vec<String>,
    /// Preview API versions' flexible matching, in place of `subject`.
    #[serde(default)]
    pub claims_matching_expression: Option<serde_json::Value>,
}

/// A `v1` ServiceAccount, as `kubectl get serviceaccount -o yaml` prints it: only its name
/// and annotations are read.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct K8sServiceAccount {
    #[serde(default)]
    pub metadata: ServiceAccountMeta,
}

/// `metadata` of a ServiceAccount.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ServiceAccountMeta {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub annotations: BTreeMap<String, String>,
}

/// The ARM type of a user-assigned managed identity.
pub const MANAGED_IDENTITY_TYPE: &str = "Microsoft.ManagedIdentity/userAssignedIdentities";
/// The ARM type of a federated identity credential.
pub const FEDERATED_CREDENTIAL_TYPE: &str =
    "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials";

//! CheckAccess bodies (spec `identity.md` F1, E4): the question in, the JSON array of
//! decisions out. Pure: no I/O.
//!
//! Two request shapes are read, told apart by their fields:
//!
//! - Azure's v1 body, exactly as Guard sends it (PascalCase):
//!   `{"Subject":{"Attributes":{"ObjectId","Groups"?}},"Actions":[{"Id","IsDataAction","Attributes"}],"Resource":{"Id"}}`.
//!   `Groups` may be absent or null, an action's `Attributes` null. The subject may instead be
//!   a Kubernetes service account:
//!   `{"Attributes":{"ServiceAccount":"system:serviceaccount:<ns>:<sa>","Issuer","Audience"?,"Mode"?}}`
//!   (no `Groups` then). An empty `ObjectId` counts as absent, the way a Go client writes an
//!   unset one.
//! - The workload question (camelCase):
//!   `{"serviceAccount","issuer","audience"?,"resource","actions":[{"id","isDataAction"}],"mode"?}`.
//!
//! `Audience` defaults to `api://AzureADTokenExchange`, `Mode` to `configured`. Every other
//! gap or surplus is an error naming the field: unknown fields, a resource that is not an ARM
//! scope, ids that are not hyphenated GUIDs, no actions or more than [`MAX_ACTIONS`], an empty
//! action id, a subject with neither or both of an object id and a service account, a
//! malformed service account, an unknown mode, a body over [`MAX_BODY_BYTES`].

use crate::model::check_access::{
    CheckAccess, MAX_ACTIONS, MAX_GROUPS, OperationDecision, OperationRequest, Subject,
};
use crate::model::excerpt::{excerpt, excerpt_of};
use crate::model::request::{object, optional_object};
use crate::model::workload::{
    TOKEN_EXCHANGE_AUDIENCE, WorkloadMode, WorkloadQuestion, parse_service_account_user,
};
use crate::model::{Scope, ScopeError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

/// Largest body decoded: 200 actions with long ids and attributes take well under this.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// Most bytes of a JSON error message repeated (serde quotes the offending value).
const JSON_ERROR_BYTES: usize = 512;

/// Why a body is not a CheckAccess question. Every message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckAccessError {
    /// Larger than [`MAX_BODY_BYTES`].
    #[error("body is {0} bytes; at most {MAX_BODY_BYTES} bytes are read")]
    TooLarge(usize),
    /// Not JSON, a wrong type, a missing or unknown field; the path is the field's.
    #[error("body is not a valid CheckAccess request: {0}")]
    Json(String),
    /// Fields of both shapes, or of neither.
    #[error("{0}")]
    Shape(&'static str),
    /// A required string field is empty.
    #[error("`{0}` is empty")]
    Empty(String),
    /// The resource is not an ARM scope.
    #[error("`{field}` is not an Azure resource id: {error}")]
    Resource {
        field: &'static str,
        error: ScopeError,
    },
    /// An object or group id that is not a hyphenated GUID.
    #[error("`{field}` is `{value}`, not a GUID")]
    Guid { field: String, value: String },
    /// No actions.
    #[error("`{0}` is empty: ask about at least one action")]
    NoActions(&'static str),
    /// More than [`MAX_ACTIONS`] actions.
    #[error("`{field}` has {count} actions; at most {MAX_ACTIONS} are allowed in one call")]
    TooManyActions { field: &'static str, count: usize },
    /// More than [`MAX_GROUPS`] groups.
    #[error("`Subject.Attributes.Groups` has {0} groups; at most {MAX_GROUPS} are allowed")]
    TooManyGroups(usize),
    /// Neither an object id nor a service account, or both.
    #[error("`Subject.Attributes` {0}")]
    Subject(&'static str),
    /// Not `system:serviceaccount:<namespace>:<name>`.
    #[error("`{field}` is `{value}`, not system:serviceaccount:<namespace>:<name>")]
    ServiceAccount { field: &'static str, value: String },
    /// Not `configured` or `possible`.
    #[error("`{field}` is `{value}`; it is `configured` or `possible`")]
    Mode { field: &'static str, value: String },
    /// The resource id before `/providers/Microsoft.Authorization/checkaccess` is not a scope.
    #[error("the resource id in the path is not an Azure resource id: {0}")]
    PathResource(ScopeError),
    /// The path is not valid percent-encoded UTF-8.
    #[error("the path `{0}` is not valid percent-encoded UTF-8")]
    PathEncoding(String),
    /// The path's resource id and the body's are different scopes.
    #[error("the resource id in the path (`{path}`) is not the body's resource (`{body}`)")]
    PathMismatch { path: String, body: String },
}

/// The path suffix of Azure's CheckAccess, compared in any case.
pub const CHECK_ACCESS_SUFFIX: &str = "/providers/Microsoft.Authorization/checkaccess";

/// Where a CheckAccess is posted: `{resourceId}/providers/Microsoft.Authorization/checkaccess`
/// (Guard adds `/namespaces/{ns}` to the cluster's id), or the root form without a resource
/// id, which asks about the body's resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckAccessPath {
    /// `/providers/Microsoft.Authorization/checkaccess`: the body names the resource.
    Root,
    /// The resource id in the path; the body's must be the same scope.
    Resource(Scope),
}

/// The CheckAccess target of a request path (percent-encoded, without the query), `None`
/// when the path is not a CheckAccess path.
pub fn parse_path(path: &str) -> Option<Result<CheckAccessPath, CheckAccessError>> {
    let path = path.strip_suffix('/').unwrap_or(path);
    let at = path.len().checked_sub(CHECK_ACCESS_SUFFIX.len())?;
    let (prefix, suffix) = (path.get(..at)?, path.get(at..)?);
    if !suffix.eq_ignore_ascii_case(CHECK_ACCESS_SUFFIX) {
        return None;
    }
    if prefix.is_empty() {
        return Some(Ok(CheckAccessPath::Root));
    }
    let Some(decoded) = percent_decode(prefix) else {
        return Some(Err(CheckAccessError::PathEncoding(
            excerpt(prefix).to_string(),
        )));
    };
    Some(
        Scope::parse(&decoded)
            .map(CheckAccessPath::Resource)
            .map_err(|e| CheckAccessError::PathResource(bounded(e))),
    )
}

/// Checks that the path's resource is the question's, compared as ARM compares ids (any
/// case, a trailing slash ignored); the root form takes the body's.
pub fn check_path(path: &CheckAccessPath, question: &CheckAccess) -> Result<(), CheckAccessError> {
    match path {
        CheckAccessPath::Resource(scope) if *scope != question.resource => {
            Err(CheckAccessError::PathMismatch {
                path: excerpt(scope.key()).to_string(),
                body: excerpt(question.resource.key()).to_string(),
            })
        }
        _ => Ok(()),
    }
}

/// `%XX` escapes decoded; `None` when an escape is cut short or the result is not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Both shapes' fields: which are present tells the shape apart.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    #[serde(rename = "Subject", default, deserialize_with = "optional_object")]
    subject: Option<AzureSubject>,
    #[serde(rename = "Actions")]
    azure_actions: Option<Vec<Object<AzureAction>>>,
    #[serde(rename = "Resource", default, deserialize_with = "optional_object")]
    azure_resource: Option<AzureEntity>,
    #[serde(rename = "serviceAccount")]
    service_account: Option<String>,
    #[serde(rename = "serviceAccountToken")]
    service_account_token: Option<String>,
    issuer: Option<String>,
    audience: Option<String>,
    resource: Option<String>,
    actions: Option<Vec<Object<WorkloadAction>>>,
    mode: Option<String>,
}

/// A `T` read from a JSON object only: serde's derived structs also read an array, field by
/// field in order, which would give meaning to a body that has none.
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        object(de).map(Object)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AzureSubject {
    #[serde(rename = "Attributes", default, deserialize_with = "optional_object")]
    attributes: Option<SubjectAttributes>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubjectAttributes {
    #[serde(rename = "ObjectId")]
    object_id: Option<String>,
    #[serde(rename = "Groups")]
    groups: Option<Vec<String>>,
    #[serde(rename = "ServiceAccount")]
    service_account: Option<String>,
    #[serde(rename = "ServiceAccountToken")]
    service_account_token: Option<String>,
    #[serde(rename = "Issuer")]
    issuer: Option<String>,
    #[serde(rename = "Audience")]
    audience: Option<String>,
    #[serde(rename = "Mode")]
    mode: Option<String>,
    /// Guard's request that the PDP expand the subject's groups itself. scopegate always
    /// adds the directory snapshot's groups when it has one, so the flag changes nothing.
    #[serde(rename = "xms-pasrp-retrievegroupmemberships")]
    _expand_group_membership: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AzureAction {
    #[serde(rename = "Id")]
    id: String,
    #[serde(rename = "IsDataAction")]
    is_data_action: bool,
    #[serde(rename = "Attributes", default)]
    attributes: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AzureEntity {
    #[serde(rename = "Id")]
    id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct WorkloadAction {
    id: String,
    is_data_action: bool,
}

/// What a question about a service account assumes when the body does not say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Defaults {
    /// The cluster's service-account issuer (`--cluster-issuer`).
    pub issuer: Option<String>,
    pub audience: String,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            issuer: None,
            audience: TOKEN_EXCHANGE_AUDIENCE.into(),
        }
    }
}

/// Whether a JSON body is a CheckAccess question (either shape) rather than a Kubernetes
/// review: it has Azure's `Actions` or the workload question's `serviceAccount` or
/// `serviceAccountToken`.
pub fn is_check_access(body: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct Shape {
        #[serde(rename = "Actions")]
        azure_actions: Option<serde::de::IgnoredAny>,
        #[serde(rename = "serviceAccount")]
        service_account: Option<serde::de::IgnoredAny>,
        #[serde(rename = "serviceAccountToken")]
        service_account_token: Option<serde::de::IgnoredAny>,
    }
    serde_json::from_slice::<Shape>(body).is_ok_and(|s| {
        s.azure_actions.is_some()
            || s.service_account.is_some()
            || s.service_account_token.is_some()
    })
}

/// Decodes a CheckAccess body of either shape, with no configured issuer.
pub fn decode(body: &[u8]) -> Result<CheckAccess, CheckAccessError> {
    decode_with(body, &Defaults::default())
}

/// Decodes a CheckAccess body of either shape; a service account's missing issuer or
/// audience are taken from `defaults`.
pub fn decode_with(body: &[u8], defaults: &Defaults) -> Result<CheckAccess, CheckAccessError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(CheckAccessError::TooLarge(body.len()));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let Object(wire): Object<Wire> = serde_path_to_error::deserialize(&mut de)
        .map_err(|e| json_error(&e.path().to_string(), e.inner()))?;
    de.end().map_err(|e| json_error(".", &e))?;
    let azure =
        wire.subject.is_some() || wire.azure_actions.is_some() || wire.azure_resource.is_some();
    let workload = wire.service_account.is_some()
        || wire.service_account_token.is_some()
        || wire.issuer.is_some()
        || wire.audience.is_some()
        || wire.resource.is_some()
        || wire.actions.is_some()
        || wire.mode.is_some();
    match (azure, workload) {
        (true, true) => Err(CheckAccessError::Shape(
            "body mixes Azure's fields (`Subject`, `Actions`, `Resource`) with the workload question's (`serviceAccount`, `issuer`, `audience`, `resource`, `actions`, `mode`)",
        )),
        (false, false) => Err(CheckAccessError::Shape(
            "body has neither Azure's fields (`Subject`, `Actions`, `Resource`) nor the workload question's (`serviceAccount`, `issuer`, `resource`, `actions`)",
        )),
        (true, false) => azure_question(wire, defaults),
        (false, true) => workload_question(wire, defaults),
    }
}

fn json_error(path: &str, e: &serde_json::Error) -> CheckAccessError {
    let at = if path == "." {
        String::new()
    } else {
        format!("at `{path}`: ")
    };
    CheckAccessError::Json(format!(
        "{at}{}",
        excerpt_of(&e.to_string(), JSON_ERROR_BYTES)
    ))
}

fn required<T>(value: Option<T>, field: &'static str) -> Result<T, CheckAccessError> {
    value.ok_or_else(|| CheckAccessError::Json(format!("`{field}` is missing or null")))
}

fn azure_question(wire: Wire, defaults: &Defaults) -> Result<CheckAccess, CheckAccessError> {
    let subject = required(wire.subject, "Subject")?;
    let attributes = required(subject.attributes, "Subject.Attributes")?;
    let actions = required(wire.azure_actions, "Actions")?;
    let resource = required(wire.azure_resource, "Resource")?;
    let resource = scope(&resource.id, "Resource.Id")?;
    let subject = azure_subject(attributes, defaults)?;
    count(actions.len(), "Actions")?;
    let actions = actions
        .into_iter()
        .enumerate()
        .map(|(i, Object(a))| {
            if a.id.trim().is_empty() {
                return Err(CheckAccessError::Empty(format!("Actions[{i}].Id")));
            }
            Ok(OperationRequest {
                id: a.id,
                is_data_action: a.is_data_action,
                attributes: attribute_names_folded(a.attributes.unwrap_or_default(), i)?,
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(CheckAccess {
        subject,
        actions,
        resource,
    })
}

fn azure_subject(
    attributes: SubjectAttributes,
    defaults: &Defaults,
) -> Result<Subject, CheckAccessError> {
    let object_id = attributes.object_id.filter(|id| !id.is_empty());
    if let Some(token) = attributes.service_account_token {
        if object_id.is_some()
            || attributes.service_account.is_some()
            || attributes.groups.is_some()
            || attributes.issuer.is_some()
        {
            return Err(CheckAccessError::Subject(
                "has `ServiceAccountToken` with `ObjectId`, `ServiceAccount`, `Groups` or `Issuer`: the token names the account and its issuer",
            ));
        }
        return token_subject(
            token,
            attributes.audience,
            attributes.mode,
            defaults,
            [
                "Subject.Attributes.ServiceAccountToken",
                "Subject.Attributes.Audience",
                "Subject.Attributes.Mode",
            ],
        );
    }
    match (object_id, attributes.service_account) {
        (Some(object_id), None) => {
            let workload_field = [
                (attributes.issuer.is_some(), "Issuer"),
                (attributes.audience.is_some(), "Audience"),
                (attributes.mode.is_some(), "Mode"),
            ];
            if workload_field.iter().any(|(present, _)| *present) {
                return Err(CheckAccessError::Subject(
                    "has `Issuer`, `Audience` or `Mode` without `ServiceAccount`: they belong to a service account subject",
                ));
            }
            let object_id = guid(&object_id, || "Subject.Attributes.ObjectId".into())?;
            let groups = attributes.groups.unwrap_or_default();
            if groups.len() > MAX_GROUPS {
                return Err(CheckAccessError::TooManyGroups(groups.len()));
            }
            let groups = groups
                .iter()
                .enumerate()
                .map(|(i, g)| guid(g, || format!("Subject.Attributes.Groups[{i}]")))
                .collect::<Result<_, _>>()?;
            Ok(Subject::Principal { object_id, groups })
        }
        (None, Some(service_account)) => {
            if attributes.groups.is_some() {
                return Err(CheckAccessError::Subject(
                    "has `Groups` with `ServiceAccount`: a service account's groups come from its managed identities",
                ));
            }
            workload_subject(
                &service_account,
                attributes.issuer,
                attributes.audience,
                attributes.mode,
                defaults,
                [
                    "Subject.Attributes.ServiceAccount",
                    "Subject.Attributes.Issuer",
                    "Subject.Attributes.Audience",
                    "Subject.Attributes.Mode",
                ],
            )
            .map(Subject::ServiceAccount)
        }
        (None, None) => Err(CheckAccessError::Subject(
            "has neither `ObjectId` nor `ServiceAccount` (nor `ServiceAccountToken`): name a principal or a service account",
        )),
        (Some(_), Some(_)) => Err(CheckAccessError::Subject(
            "has both `ObjectId` and `ServiceAccount`: name one subject",
        )),
    }
}

fn workload_question(wire: Wire, defaults: &Defaults) -> Result<CheckAccess, CheckAccessError> {
    let resource = required(wire.resource, "resource")?;
    let actions = required(wire.actions, "actions")?;
    let resource = scope(&resource, "resource")?;
    let subject = match (wire.service_account, wire.service_account_token) {
        (Some(service_account), None) => Subject::ServiceAccount(workload_subject(
            &service_account,
            wire.issuer,
            wire.audience,
            wire.mode,
            defaults,
            ["serviceAccount", "issuer", "audience", "mode"],
        )?),
        (None, Some(token)) => {
            if wire.issuer.is_some() {
                return Err(CheckAccessError::Shape(
                    "body has `issuer` with `serviceAccountToken`: the token names its issuer",
                ));
            }
            token_subject(
                token,
                wire.audience,
                wire.mode,
                defaults,
                ["serviceAccountToken", "audience", "mode"],
            )?
        }
        (Some(_), Some(_)) => {
            return Err(CheckAccessError::Shape(
                "body has both `serviceAccount` and `serviceAccountToken`: name one subject",
            ));
        }
        (None, None) => {
            return Err(CheckAccessError::Json(
                "`serviceAccount` is missing or null".into(),
            ));
        }
    };
    count(actions.len(), "actions")?;
    let actions = actions
        .into_iter()
        .enumerate()
        .map(|(i, Object(a))| {
            if a.id.trim().is_empty() {
                return Err(CheckAccessError::Empty(format!("actions[{i}].id")));
            }
            Ok(OperationRequest {
                id: a.id,
                is_data_action: a.is_data_action,
                attributes: BTreeMap::new(),
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(CheckAccess {
        subject,
        actions,
        resource,
    })
}

/// An action's attributes with their names lower-cased: ABAC conditions name attributes in
/// any case (Guard sends `…/resources:subresource` with the provider's capitals). Two names
/// that differ only in case are an error, not a silent choice of one value.
fn attribute_names_folded(
    attributes: BTreeMap<String, String>,
    action: usize,
) -> Result<BTreeMap<String, String>, CheckAccessError> {
    let mut folded = BTreeMap::new();
    for (name, value) in attributes {
        let lower = name.to_ascii_lowercase();
        if folded.insert(lower, value).is_some() {
            return Err(CheckAccessError::Json(format!(
                "`Actions[{action}].Attributes` names `{}` twice (names are compared ignoring case)",
                excerpt(&name)
            )));
        }
    }
    Ok(folded)
}

/// A projected service-account token as the subject, to be verified before deciding.
fn token_subject(
    token: String,
    audience: Option<String>,
    mode: Option<String>,
    defaults: &Defaults,
    [token_field, audience_field, mode_field]: [&'static str; 3],
) -> Result<Subject, CheckAccessError> {
    if token.trim().is_empty() {
        return Err(CheckAccessError::Empty(token_field.into()));
    }
    let audience = audience.unwrap_or_else(|| defaults.audience.clone());
    if audience.is_empty() {
        return Err(CheckAccessError::Empty(audience_field.into()));
    }
    Ok(Subject::ServiceAccountToken {
        token: token.trim().to_string(),
        audience,
        mode: workload_mode(mode.as_deref(), mode_field)?,
    })
}

fn workload_mode(
    mode: Option<&str>,
    field: &'static str,
) -> Result<WorkloadMode, CheckAccessError> {
    match mode {
        None | Some("configured") => Ok(WorkloadMode::Configured),
        Some("possible") => Ok(WorkloadMode::Possible),
        Some(other) => Err(CheckAccessError::Mode {
            field,
            value: excerpt(other).to_string(),
        }),
    }
}

/// A service account subject; `fields` are the names of the account, issuer, audience and
/// mode in the body's shape.
fn workload_subject(
    service_account: &str,
    issuer: Option<String>,
    audience: Option<String>,
    mode: Option<String>,
    defaults: &Defaults,
    [account_field, issuer_field, audience_field, mode_field]: [&'static str; 4],
) -> Result<WorkloadQuestion, CheckAccessError> {
    let (namespace, name) = parse_service_account_user(service_account).map_err(|_| {
        CheckAccessError::ServiceAccount {
            field: account_field,
            value: excerpt(service_account).to_string(),
        }
    })?;
    // The issuer is compared exactly, as Entra does: it is kept as written.
    let issuer = issuer.or_else(|| defaults.issuer.clone()).ok_or_else(|| {
        CheckAccessError::Json(format!(
            "`{issuer_field}` is missing or null (and no --cluster-issuer is configured)"
        ))
    })?;
    if issuer.is_empty() {
        return Err(CheckAccessError::Empty(issuer_field.into()));
    }
    let audience = audience.unwrap_or_else(|| defaults.audience.clone());
    if audience.is_empty() {
        return Err(CheckAccessError::Empty(audience_field.into()));
    }
    let mode = workload_mode(mode.as_deref(), mode_field)?;
    Ok(WorkloadQuestion {
        namespace,
        name,
        issuer,
        audience,
        mode,
    })
}

fn scope(text: &str, field: &'static str) -> Result<Scope, CheckAccessError> {
    Scope::parse(text).map_err(|error| CheckAccessError::Resource {
        field,
        error: bounded(error),
    })
}

/// The scope error with the quoted id cut to a bounded length.
fn bounded(error: ScopeError) -> ScopeError {
    let cut = |text: String| excerpt(&text).to_string();
    match error {
        ScopeError::NotAbsolute(t) => ScopeError::NotAbsolute(cut(t)),
        ScopeError::EmptySegment(t) => ScopeError::EmptySegment(cut(t)),
        ScopeError::UnknownRoot(t) => ScopeError::UnknownRoot(cut(t)),
        ScopeError::MissingName(t) => ScopeError::MissingName(cut(t)),
        ScopeError::DotSegment(t) => ScopeError::DotSegment(cut(t)),
    }
}

fn count(count: usize, field: &'static str) -> Result<(), CheckAccessError> {
    match count {
        0 => Err(CheckAccessError::NoActions(field)),
        n if n > MAX_ACTIONS => Err(CheckAccessError::TooManyActions { field, count: n }),
        _ => Ok(()),
    }
}

/// A GUID in its 36-character hyphenated form.
fn guid(text: &str, field: impl FnOnce() -> String) -> Result<Uuid, CheckAccessError> {
    (text.len() == 36)
        .then(|| Uuid::try_parse(text).ok())
        .flatten()
        .ok_or_else(|| CheckAccessError::Guid {
            field: field(),
            value: excerpt(text).to_string(),
        })
}

/// One element of the answer, in Guard's spelling (`AuthorizationDecision`).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Answer<'a> {
    access_decision: &'static str,
    action_id: &'a str,
    is_data_action: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    role_assignment: Option<RoleAssignment<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    deny_assignment: Option<DenyAssignment<'a>>,
    time_to_live_in_ms: u64,
    /// Not Azure's: why, when there is more to say (a broken workload identity link).
    /// Guard ignores fields it does not know.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RoleAssignment<'a> {
    id: &'a str,
    role_definition_id: &'a str,
    principal_id: String,
    scope: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    condition: Option<&'a str>,
}

#[derive(Serialize)]
struct DenyAssignment<'a> {
    id: &'a str,
    name: &'a str,
    scope: &'a str,
}

/// The answer Guard reads: a JSON array with one decision per action, paired by position
/// (the question's action and the engine's decision for it), each to be kept at most
/// `time_to_live_ms`.
pub fn encode<'a>(
    answers: impl IntoIterator<Item = (&'a OperationRequest, &'a OperationDecision)>,
    time_to_live_ms: u64,
) -> Vec<u8> {
    let answers: Vec<Answer<'a>> = answers
        .into_iter()
        .map(|(action, decision)| Answer {
            access_decision: decision.decision.as_str(),
            action_id: &action.id,
            is_data_action: action.is_data_action,
            role_assignment: decision.role_assignment.as_ref().map(|r| RoleAssignment {
                id: &r.id,
                role_definition_id: &r.role_definition_id,
                principal_id: r.principal_id.to_string(),
                scope: &r.scope,
                condition: r.condition.as_deref(),
            }),
            deny_assignment: decision.deny_assignment.as_ref().map(|d| DenyAssignment {
                id: &d.id,
                name: &d.name,
                scope: &d.scope,
            }),
            time_to_live_in_ms: time_to_live_ms,
            reason: decision.reason.as_deref(),
        })
        .collect();
    // Strings, booleans and numbers: serialising cannot fail.
    serde_json::to_vec(&answers).unwrap_or_default()
}

/// ARM's error body, `{"error":{"code","message"}}`: what a CheckAccess caller reads from a
/// refused request.
pub fn encode_error(code: &str, message: &str) -> Vec<u8> {
    serde_json::json!({"error": {"code": code, "message": message}})
        .to_string()
        .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::check_access::{
        AccessDecision, DenyingAssignment, GrantingAssignment, TIME_TO_LIVE_MS,
    };
    use serde_json::{Value, json};
    use std::sync::Arc;

    const OID: &str = "aaaaaaaa-0000-4000-8000-000000000001";
    const GROUP: &str = "bbbbbbbb-0000-4000-8000-000000000001";
    const VAULT: &str = "/subscriptions/00000000-0000-0000-0000-00000000aaaa/resourceGroups/rg-app/providers/Microsoft.KeyVault/vaults/kv-payments";
    const ISSUER: &str = "https://westeurope.oic.prod-aks.azure.com/11111111-2222-4333-8444-555555555555/7c0e7d0a-1b2c-4d3e-8f40-5a6b7c8d9e01/";

    fn vector_requests() -> Vec<Value> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/vectors/checkaccess.jsonl"
        );
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str::<Value>(l).unwrap()["request"].clone())
            .collect()
    }

    /// Guard's older request for group expansion is read and changes nothing; more groups
    /// than the bound are refused; attribute names are folded to lower case, and two
    /// spellings of one name are refused.
    #[test]
    fn guard_fields_groups_and_attribute_names() {
        let body = |attributes: Value, action_attributes: Value| {
            json!({"Subject": {"Attributes": attributes},
                   "Actions": [{"Id": "Microsoft.ContainerService/managedClusters/pods/read",
                                "IsDataAction": true, "Attributes": action_attributes}],
                   "Resource": {"Id": "/subscriptions/00000000-0000-0000-0000-00000000aaaa"}})
            .to_string()
        };
        let with_flag = decode(
            body(
                json!({"ObjectId": OID, "xms-pasrp-retrievegroupmemberships": true}),
                Value::Null,
            )
            .as_bytes(),
        )
        .unwrap();
        let without = decode(body(json!({"ObjectId": OID}), Value::Null).as_bytes()).unwrap();
        assert_eq!(with_flag, without);

        let group = "bbbbbbbb-0000-4000-8000-000000000001";
        let many = vec![group; MAX_GROUPS + 1];
        let e = decode(body(json!({"ObjectId": OID, "Groups": many}), Value::Null).as_bytes())
            .unwrap_err();
        assert_eq!(e, CheckAccessError::TooManyGroups(MAX_GROUPS + 1));
        assert!(e.to_string().contains("10000"), "{e}");

        let name = "Microsoft.ContainerService/managedClusters/resources:subresource";
        let q = decode(body(json!({"ObjectId": OID}), json!({name: "exec"})).as_bytes()).unwrap();
        assert_eq!(
            q.actions[0]
                .attributes
                .get(&name.to_ascii_lowercase())
                .map(String::as_str),
            Some("exec")
        );
        let e = decode(
            body(
                json!({"ObjectId": OID}),
                json!({name: "exec", name.to_ascii_lowercase(): "log"}),
            )
            .as_bytes(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("twice"), "{e}");
    }

    /// Every vector's request decodes to the subject, resource and actions it writes.
    #[test]
    fn every_vector_request_decodes() {
        let requests = vector_requests();
        assert!(requests.len() >= 30, "{} requests", requests.len());
        for request in requests {
            let question =
                decode(request.to_string().as_bytes()).unwrap_or_else(|e| panic!("{e}: {request}"));
            let (resource, actions) = if request.get("Subject").is_some() {
                let attributes = &request["Subject"]["Attributes"];
                let Subject::Principal { object_id, groups } = &question.subject else {
                    panic!("not a principal: {request}");
                };
                assert_eq!(
                    object_id.to_string(),
                    attributes["ObjectId"].as_str().unwrap()
                );
                let written: Vec<&str> = attributes["Groups"]
                    .as_array()
                    .map(|g| g.iter().map(|g| g.as_str().unwrap()).collect())
                    .unwrap_or_default();
                let read: Vec<String> = groups.iter().map(Uuid::to_string).collect();
                assert_eq!(read, written);
                let actions: Vec<(String, bool)> = request["Actions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| {
                        (
                            a["Id"].as_str().unwrap().into(),
                            a["IsDataAction"].as_bool().unwrap(),
                        )
                    })
                    .collect();
                (request["Resource"]["Id"].as_str().unwrap(), actions)
            } else {
                let Subject::ServiceAccount(sa) = &question.subject else {
                    panic!("not a service account: {request}");
                };
                assert_eq!(
                    format!("system:serviceaccount:{}:{}", sa.namespace, sa.name),
                    request["serviceAccount"].as_str().unwrap()
                );
                assert_eq!(sa.issuer, request["issuer"].as_str().unwrap());
                assert_eq!(
                    sa.audience,
                    request["audience"]
                        .as_str()
                        .unwrap_or(TOKEN_EXCHANGE_AUDIENCE)
                );
                assert_eq!(
                    sa.mode.as_str(),
                    request["mode"].as_str().unwrap_or("configured")
                );
                let actions: Vec<(String, bool)> = request["actions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| {
                        (
                            a["id"].as_str().unwrap().into(),
                            a["isDataAction"].as_bool().unwrap(),
                        )
                    })
                    .collect();
                (request["resource"].as_str().unwrap(), actions)
            };
            assert_eq!(question.resource.key(), resource.to_ascii_lowercase());
            let read: Vec<(String, bool)> = question
                .actions
                .iter()
                .map(|a| (a.id.clone(), a.is_data_action))
                .collect();
            assert_eq!(read, actions);
        }
    }

    fn azure(actions: usize) -> Value {
        let actions: Vec<Value> = (0..actions)
            .map(|i| json!({"Id": format!("Microsoft.KeyVault/vaults/op{i}/action"), "IsDataAction": true, "Attributes": null}))
            .collect();
        json!({"Subject": {"Attributes": {"ObjectId": OID}}, "Actions": actions, "Resource": {"Id": VAULT}})
    }

    fn workload() -> Value {
        json!({
            "serviceAccount": "system:serviceaccount:payments:api", "issuer": ISSUER,
            "resource": VAULT,
            "actions": [{"id": "Microsoft.KeyVault/vaults/secrets/getSecret/action", "isDataAction": true}],
        })
    }

    fn error_of(body: &Value) -> String {
        decode(body.to_string().as_bytes())
            .map(|q| format!("decoded: {q:?}"))
            .unwrap_or_else(|e| e.to_string())
    }

    /// Sets `value` at the JSON pointer `at` (an object member, added if absent) of `body`.
    fn with(mut body: Value, at: &str, value: Value) -> Value {
        let (parent, key) = at.rsplit_once('/').unwrap();
        match body.pointer_mut(parent).unwrap() {
            Value::Array(items) => items[key.parse::<usize>().unwrap()] = value,
            Value::Object(members) => {
                members.insert(key.into(), value);
            }
            other => panic!("{other} has no member {key}"),
        }
        body
    }

    fn without(mut body: Value, at: &str, key: &str) -> Value {
        body.pointer_mut(at)
            .unwrap()
            .as_object_mut()
            .unwrap()
            .remove(key);
        body
    }

    #[test]
    fn guard_body_reads_groups_attributes_and_nulls() {
        let body = json!({
            "Subject": {"Attributes": {"ObjectId": OID, "Groups": [GROUP]}},
            "Actions": [{"Id": "Microsoft.ContainerService/managedClusters/pods/read", "IsDataAction": true, "Attributes": {"k": "v"}}],
            "Resource": {"Id": format!("{VAULT}/")},
        });
        let q = decode(body.to_string().as_bytes()).unwrap();
        assert_eq!(
            q.subject,
            Subject::Principal {
                object_id: Uuid::parse_str(OID).unwrap(),
                groups: vec![Uuid::parse_str(GROUP).unwrap()],
            }
        );
        assert_eq!(q.resource, Scope::parse(VAULT).unwrap());
        assert_eq!(
            q.actions
                .first()
                .unwrap()
                .attributes
                .get("k")
                .map(String::as_str),
            Some("v")
        );
        let null_groups = with(
            azure(1),
            "/Subject/Attributes",
            json!({"ObjectId": OID, "Groups": null}),
        );
        assert!(matches!(
            decode(null_groups.to_string().as_bytes()).unwrap().subject,
            Subject::Principal { groups, .. } if groups.is_empty()
        ));
    }

    #[test]
    fn a_service_account_subject_in_azure_shape() {
        let body = with(
            azure(1),
            "/Subject/Attributes",
            json!({"ServiceAccount": "system:serviceaccount:payments:api", "Issuer": ISSUER, "Mode": "possible"}),
        );
        let q = decode(body.to_string().as_bytes()).unwrap();
        assert_eq!(
            q.subject,
            Subject::ServiceAccount(WorkloadQuestion {
                namespace: "payments".into(),
                name: "api".into(),
                issuer: ISSUER.into(),
                audience: TOKEN_EXCHANGE_AUDIENCE.into(),
                mode: WorkloadMode::Possible,
            })
        );
        // A Go client's unset ObjectId is "".
        let empty_oid = with(
            azure(1),
            "/Subject/Attributes",
            json!({"ObjectId": "", "ServiceAccount": "system:serviceaccount:payments:api", "Issuer": ISSUER, "Audience": "aud"}),
        );
        let Subject::ServiceAccount(sa) = decode(empty_oid.to_string().as_bytes()).unwrap().subject
        else {
            panic!("not a service account");
        };
        assert_eq!(
            (sa.audience.as_str(), sa.mode),
            ("aud", WorkloadMode::Configured)
        );
    }

    #[test]
    fn the_action_limit_is_200() {
        assert_eq!(
            decode(azure(MAX_ACTIONS).to_string().as_bytes())
                .unwrap()
                .actions
                .len(),
            MAX_ACTIONS
        );
        assert_eq!(
            error_of(&azure(MAX_ACTIONS + 1)),
            "`Actions` has 201 actions; at most 200 are allowed in one call"
        );
        assert_eq!(
            error_of(&azure(0)),
            "`Actions` is empty: ask about at least one action"
        );
        assert_eq!(
            error_of(&with(workload(), "/actions", json!([]))),
            "`actions` is empty: ask about at least one action"
        );
    }

    #[test]
    fn bad_input_is_an_error_naming_the_field() {
        let sa_subject =
            json!({"ServiceAccount": "system:serviceaccount:payments:api", "Issuer": ISSUER});
        let cases: Vec<(Value, &str)> = vec![
            (
                with(
                    azure(1),
                    "/Subject/Attributes/ObjectId",
                    json!("not-a-guid"),
                ),
                "`Subject.Attributes.ObjectId` is `not-a-guid`, not a GUID",
            ),
            (
                with(
                    azure(1),
                    "/Subject/Attributes/ObjectId",
                    json!("aaaaaaaa00004000800000000000000001"),
                ),
                "not a GUID",
            ),
            (
                with(
                    azure(1),
                    "/Subject/Attributes",
                    json!({"ObjectId": OID, "Groups": [GROUP, "g2"]}),
                ),
                "`Subject.Attributes.Groups[1]` is `g2`, not a GUID",
            ),
            (
                with(azure(1), "/Subject/Attributes", json!({})),
                "`Subject.Attributes` has neither `ObjectId` nor `ServiceAccount`",
            ),
            (
                with(
                    azure(1),
                    "/Subject/Attributes",
                    json!({"ObjectId": "", "Groups": [GROUP]}),
                ),
                "`Subject.Attributes` has neither `ObjectId` nor `ServiceAccount`",
            ),
            (
                with(
                    azure(1),
                    "/Subject/Attributes/ServiceAccount",
                    json!("system:serviceaccount:payments:api"),
                ),
                "`Subject.Attributes` has both `ObjectId` and `ServiceAccount`",
            ),
            (
                with(azure(1), "/Subject/Attributes", json!(null)),
                "`Subject.Attributes` is missing or null",
            ),
            (
                with(azure(1), "/Subject/Attributes/Issuer", json!(ISSUER)),
                "without `ServiceAccount`",
            ),
            (
                with(
                    azure(1),
                    "/Subject/Attributes",
                    json!({"ServiceAccount": "system:serviceaccount:payments:api", "Issuer": ISSUER, "Groups": [GROUP]}),
                ),
                "has `Groups` with `ServiceAccount`",
            ),
            (
                with(
                    azure(1),
                    "/Subject/Attributes",
                    json!({"ServiceAccount": "payments/api", "Issuer": ISSUER}),
                ),
                "`Subject.Attributes.ServiceAccount` is `payments/api`, not system:serviceaccount:<namespace>:<name>",
            ),
            (
                with(
                    azure(1),
                    "/Subject/Attributes",
                    without(json!({"s": sa_subject.clone()}), "/s", "Issuer")["s"].clone(),
                ),
                "`Subject.Attributes.Issuer` is missing or null",
            ),
            (
                with(
                    azure(1),
                    "/Subject/Attributes",
                    with(json!({"s": sa_subject.clone()}), "/s/Issuer", json!(""))["s"].clone(),
                ),
                "`Subject.Attributes.Issuer` is empty",
            ),
            (
                with(
                    azure(1),
                    "/Subject/Attributes",
                    with(json!({"s": sa_subject}), "/s/Mode", json!("Possible"))["s"].clone(),
                ),
                "`Subject.Attributes.Mode` is `Possible`; it is `configured` or `possible`",
            ),
            (
                with(azure(1), "/Resource/Id", json!("subscriptions/x")),
                "`Resource.Id` is not an Azure resource id: scope `subscriptions/x` does not start with `/`",
            ),
            (
                with(
                    azure(1),
                    "/Resource/Id",
                    json!("/subscriptions/x/resourceGroups"),
                ),
                "`Resource.Id` is not an Azure resource id: scope `/subscriptions/x/resourceGroups` has a type segment without a name",
            ),
            (
                with(azure(1), "/Actions/0/Id", json!(" ")),
                "`Actions[0].Id` is empty",
            ),
            (
                with(azure(1), "/Actions/0/Extra", json!(1)),
                "at `Actions[0].Extra`: unknown field `Extra`",
            ),
            (
                with(azure(1), "/Resource/Name", json!("x")),
                "at `Resource.Name`: unknown field `Name`",
            ),
            (
                with(azure(1), "/Subject/Attributes/Upn", json!("x")),
                "at `Subject.Attributes.Upn`: unknown field `Upn`",
            ),
            (
                with(azure(1), "/Subject/Kind", json!("x")),
                "at `Subject.Kind`: unknown field `Kind`",
            ),
            (
                with(azure(1), "/Environment", json!({})),
                "unknown field `Environment`",
            ),
            (
                with(azure(1), "/Actions/0/IsDataAction", json!("true")),
                "at `Actions[0].IsDataAction`: invalid type",
            ),
            (
                without(azure(1), "/Actions/0", "IsDataAction"),
                "missing field `IsDataAction`",
            ),
            (
                without(azure(1), "", "Resource"),
                "`Resource` is missing or null",
            ),
            (
                with(
                    azure(1),
                    "/serviceAccount",
                    json!("system:serviceaccount:payments:api"),
                ),
                "body mixes Azure's fields",
            ),
            (json!({}), "body has neither"),
            (
                json!([]),
                "body is not a valid CheckAccess request: invalid type: sequence, expected an object",
            ),
            (
                json!({"Subject": [{"ObjectId": OID}], "Actions": [], "Resource": {"Id": VAULT}}),
                "at `Subject`: invalid type: sequence, expected an object",
            ),
            (
                with(azure(1), "/Actions/0", json!(["a", true, null])),
                "at `Actions[0]`: invalid type: sequence",
            ),
            (
                with(
                    workload(),
                    "/serviceAccount",
                    json!("system:serviceaccount:Payments:api"),
                ),
                "`serviceAccount` is `system:serviceaccount:Payments:api`, not system:serviceaccount:<namespace>:<name>",
            ),
            (
                with(workload(), "/mode", json!("all")),
                "`mode` is `all`; it is `configured` or `possible`",
            ),
            (
                with(workload(), "/audience", json!("")),
                "`audience` is empty",
            ),
            (
                without(workload(), "", "issuer"),
                "`issuer` is missing or null",
            ),
            (
                with(
                    workload(),
                    "/resource",
                    json!("/subscriptions/s/resourceGroups/rg/../x"),
                ),
                "`resource` is not an Azure resource id",
            ),
            (
                with(workload(), "/actions/0/id", json!("")),
                "`actions[0].id` is empty",
            ),
            (
                with(workload(), "/actions/0/attributes", json!({})),
                "at `actions[0].attributes`: unknown field `attributes`",
            ),
            (
                with(workload(), "/groups", json!([])),
                "unknown field `groups`",
            ),
        ];
        for (body, expected) in cases {
            let error = error_of(&body);
            assert!(
                error.contains(expected),
                "{body}\n  gave: {error}\n  want: {expected}"
            );
            assert!(!error.starts_with("decoded"), "{body} decoded");
        }
    }

    #[test]
    fn checkaccess_paths() {
        let suffix = "/providers/Microsoft.Authorization/checkaccess";
        let resource = |path: &str| parse_path(path).map(|r| r.map_err(|e| e.to_string()));
        assert_eq!(resource(suffix), Some(Ok(CheckAccessPath::Root)));
        assert_eq!(
            resource(&format!("{VAULT}{}/", suffix.to_ascii_uppercase())),
            Some(Ok(CheckAccessPath::Resource(Scope::parse(VAULT).unwrap())))
        );
        let namespaced = format!("{VAULT}/namespaces/dev{suffix}");
        assert_eq!(
            resource(&namespaced),
            Some(Ok(CheckAccessPath::Resource(
                Scope::parse(&format!("{VAULT}/namespaces/dev")).unwrap()
            )))
        );
        assert_eq!(
            resource(&format!("/subscriptions/s/resourceGroups/rg%20one{suffix}")),
            Some(Ok(CheckAccessPath::Resource(
                Scope::parse("/subscriptions/s/resourceGroups/rg one").unwrap()
            )))
        );
        assert_eq!(resource("/authorize"), None);
        assert_eq!(
            resource("/providers/Microsoft.Authorization/checkaccessx"),
            None
        );
        assert_eq!(resource("checkaccess"), None);
        let bad = resource(&format!("/subscriptions/s/resourceGroups{suffix}"));
        assert!(
            matches!(&bad, Some(Err(e)) if e.starts_with("the resource id in the path is not an Azure resource id")),
            "{bad:?}"
        );
        let bad = resource(&format!("/subscriptions/s/resourceGroups/rg%2{suffix}"));
        assert!(
            matches!(&bad, Some(Err(e)) if e.contains("percent-encoded")),
            "{bad:?}"
        );

        let question = decode(azure(1).to_string().as_bytes()).unwrap();
        let same = CheckAccessPath::Resource(
            Scope::parse(&format!("{}/", VAULT.to_ascii_uppercase())).unwrap(),
        );
        assert_eq!(check_path(&same, &question), Ok(()));
        assert_eq!(check_path(&CheckAccessPath::Root, &question), Ok(()));
        let other = CheckAccessPath::Resource(Scope::parse(&format!("{VAULT}/secrets/x")).unwrap());
        let error = check_path(&other, &question).unwrap_err().to_string();
        assert!(
            error.starts_with("the resource id in the path (`/subscriptions/"),
            "{error}"
        );
        assert!(error.contains("is not the body's resource"), "{error}");
    }

    #[test]
    fn malformed_and_oversize_bodies() {
        let error = decode(b"{\"Subject\": ").unwrap_err().to_string();
        assert!(
            error.starts_with("body is not a valid CheckAccess request: "),
            "{error}"
        );
        let trailing = format!("{} x", azure(1));
        assert!(matches!(
            decode(trailing.as_bytes()),
            Err(CheckAccessError::Json(_))
        ));
        let big = vec![b' '; MAX_BODY_BYTES + 1];
        assert_eq!(
            decode(&big).unwrap_err().to_string(),
            format!(
                "body is {} bytes; at most 1048576 bytes are read",
                MAX_BODY_BYTES + 1
            )
        );
        // A long bad value is quoted cut short.
        let long = "x".repeat(10_000);
        let error = error_of(&with(azure(1), "/Resource/Id", json!(long)));
        assert!(error.len() < 1_000, "{} bytes", error.len());
    }

    #[test]
    fn encode_writes_guards_field_names() {
        let actions = [
            OperationRequest {
                id: "a/read".into(),
                is_data_action: true,
                attributes: BTreeMap::new(),
            },
            OperationRequest {
                id: "b/write".into(),
                is_data_action: false,
                attributes: BTreeMap::new(),
            },
            OperationRequest {
                id: "c/delete".into(),
                is_data_action: true,
                attributes: BTreeMap::new(),
            },
        ];
        let decisions = [
            OperationDecision {
                decision: AccessDecision::Allowed,
                role_assignment: Some(GrantingAssignment {
                    id: Arc::from(
                        "/subscriptions/s/providers/Microsoft.Authorization/roleAssignments/ra1",
                    ),
                    role_definition_id: Arc::from(
                        "/providers/Microsoft.Authorization/roleDefinitions/rd1",
                    ),
                    principal_id: Uuid::parse_str(OID).unwrap(),
                    scope: Arc::from("/subscriptions/s"),
                    condition: None,
                }),
                deny_assignment: None,
                reason: None,
            },
            OperationDecision::not_allowed(Some(Arc::from("no federated credential matches"))),
            OperationDecision {
                decision: AccessDecision::Denied,
                role_assignment: None,
                deny_assignment: Some(DenyingAssignment {
                    id: Arc::from(
                        "/subscriptions/s/providers/Microsoft.Authorization/denyAssignments/d1",
                    ),
                    name: Arc::from("no deletes"),
                    scope: Arc::from("/subscriptions/s"),
                }),
                reason: None,
            },
        ];
        let body: Value =
            serde_json::from_slice(&encode(actions.iter().zip(&decisions), TIME_TO_LIVE_MS))
                .unwrap();
        assert_eq!(
            body,
            json!([
                {"accessDecision": "Allowed", "actionId": "a/read", "isDataAction": true,
                 "roleAssignment": {"id": "/subscriptions/s/providers/Microsoft.Authorization/roleAssignments/ra1",
                                    "roleDefinitionId": "/providers/Microsoft.Authorization/roleDefinitions/rd1",
                                    "principalId": OID, "scope": "/subscriptions/s"},
                 "timeToLiveInMs": 300000},
                {"accessDecision": "NotAllowed", "actionId": "b/write", "isDataAction": false,
                 "timeToLiveInMs": 300000, "reason": "no federated credential matches"},
                {"accessDecision": "Denied", "actionId": "c/delete", "isDataAction": true,
                 "denyAssignment": {"id": "/subscriptions/s/providers/Microsoft.Authorization/denyAssignments/d1",
                                    "name": "no deletes", "scope": "/subscriptions/s"},
                 "timeToLiveInMs": 300000},
            ])
        );
        // Guard allows iff every decision lower-cases to `allowed`.
        let error: Value = serde_json::from_slice(&encode_error("BadRequest", "bad")).unwrap();
        assert_eq!(
            error,
            json!({"error": {"code": "BadRequest", "message": "bad"}})
        );
    }
}

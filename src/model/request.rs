//! What is being asked: the user and the attributes of one Kubernetes request, as the
//! `spec` of a SubjectAccessReview carries them.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The `spec` of a SubjectAccessReview (v1 field names; v1beta1's `group` is accepted too).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_attributes: Option<ResourceAttributes>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub non_resource_attributes: Option<NonResourceAttributes>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user: String,
    #[serde(
        default,
        alias = "group",
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub groups: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub extra: BTreeMap<String, Vec<String>>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
}

/// `spec.resourceAttributes`. Selectors are carried but no rule reads them: they can only
/// narrow a request, so authorizing the unrestricted request is safe.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceAttributes {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub verb: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resource: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub subresource: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_selector: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<serde_json::Value>,
}

/// `spec.nonResourceAttributes`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NonResourceAttributes {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub verb: String,
}

/// Kubernetes serialises empty lists and maps as `null` in places; treat that as empty.
fn null_as_default<'de, D, T>(de: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(de)?.unwrap_or_default())
}

impl AccessRequest {
    /// The request's verb, whichever attribute block carries it.
    pub fn verb(&self) -> &str {
        match (&self.resource_attributes, &self.non_resource_attributes) {
            (Some(r), _) => &r.verb,
            (None, Some(n)) => &n.verb,
            (None, None) => "",
        }
    }

    /// The namespace of a resource request, `""` otherwise.
    pub fn namespace(&self) -> &str {
        self.resource_attributes
            .as_ref()
            .map_or("", |r| r.namespace.as_str())
    }
}

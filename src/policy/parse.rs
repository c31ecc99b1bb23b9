//! Policy text -> typed policy objects. Pure: the caller reads the file.
//!
//! A file holds one document, an array, a Kubernetes `List`, an ARM list (`{"value": […]}`)
//! or a bundle such as `aks-builtin-roles.json` (`{"roles": […]}`); YAML files may hold several
//! documents. Each object is recognised by its shape; anything else is a diagnostic.

use super::{Diagnostic, Origin, PolicySet};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::sync::Arc;

/// The syntax of a policy file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Yaml,
}

impl Format {
    /// The format of a file name, by extension, if it is a policy file.
    pub fn of_path(path: &std::path::Path) -> Option<Format> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "json" => Some(Format::Json),
            "yaml" | "yml" => Some(Format::Yaml),
            _ => None,
        }
    }
}

/// Parses one file's text into `set`, recording problems in `diagnostics`.
pub fn parse_text(
    file: &str,
    text: &str,
    format: Format,
    set: &mut PolicySet,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let file: Arc<str> = Arc::from(file);
    match format {
        Format::Json => match serde_json::from_str::<Value>(text) {
            Ok(value) => add_value(&Origin::new(file, "$"), value, set, diagnostics),
            Err(e) => diagnostics.push(Diagnostic::error(
                Origin::at_line(file, e.line(), e.column()),
                format!("invalid JSON: {e}"),
            )),
        },
        Format::Yaml => {
            for (index, document) in serde_yaml::Deserializer::from_str(text).enumerate() {
                match <serde_yaml::Value as serde::Deserialize>::deserialize(document) {
                    Ok(serde_yaml::Value::Null) => {}
                    Ok(yaml) => match serde_json::to_value(yaml) {
                        Ok(value) => {
                            let origin =
                                Origin::new(file.clone(), &format!("document {}", index + 1));
                            add_value(&origin, value, set, diagnostics);
                        }
                        Err(e) => diagnostics.push(Diagnostic::error(
                            Origin::new(file.clone(), &format!("document {}", index + 1)),
                            format!("YAML that has no JSON form: {e}"),
                        )),
                    },
                    Err(e) => {
                        let origin = match e.location() {
                            Some(at) => Origin::at_line(file.clone(), at.line(), at.column()),
                            None => Origin::new(file.clone(), &format!("document {}", index + 1)),
                        };
                        diagnostics.push(Diagnostic::error(origin, format!("invalid YAML: {e}")));
                        // The YAML stream cannot be resumed after a syntax error.
                        break;
                    }
                }
            }
        }
    }
}

/// Keys whose array values are lists of policy objects in a bundle document.
const CONTAINER_KEYS: [&str; 7] = [
    "items",
    "value",
    "roles",
    "roleDefinitions",
    "roleAssignments",
    "denyAssignments",
    "managementGroups",
];

/// Adds one parsed JSON value (object, array or container) to the set.
pub fn add_value(
    origin: &Origin,
    value: Value,
    set: &mut PolicySet,
    diagnostics: &mut Vec<Diagnostic>,
) {
    match value {
        Value::Array(items) => {
            for (i, item) in items.into_iter().enumerate() {
                add_value(&origin.item(i), item, set, diagnostics);
            }
        }
        Value::Object(map) => {
            let is_container = !map.is_empty()
                && map.iter().all(|(k, v)| {
                    k.starts_with('_')
                        || (CONTAINER_KEYS.contains(&k.as_str()) && v.is_array())
                        || k == "kind"
                        || k == "apiVersion"
                        || k == "metadata"
                })
                && map.keys().any(|k| CONTAINER_KEYS.contains(&k.as_str()));
            if is_container {
                for (key, inner) in map {
                    if CONTAINER_KEYS.contains(&key.as_str()) {
                        add_value(&origin.field(&key), inner, set, diagnostics);
                    }
                }
            } else {
                add_object(origin, Value::Object(map), set, diagnostics);
            }
        }
        Value::Null => {}
        other => diagnostics.push(Diagnostic::error(
            origin.clone(),
            format!(
                "expected a policy object or a list of them, found {}",
                kind_of(&other)
            ),
        )),
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// What an object is, judged by its `type`/`kind` or, failing that, its fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    RoleDefinition,
    RoleAssignment,
    DenyAssignment,
    ManagementGroupEntity,
    Role,
    ClusterRole,
    RoleBinding,
    ClusterRoleBinding,
}

fn shape_of(object: &serde_json::Map<String, Value>) -> Option<Shape> {
    let text = |k: &str| object.get(k).and_then(Value::as_str).unwrap_or("");
    let has = |k: &str| object.contains_key(k);
    if text("apiVersion").starts_with("rbac.authorization.k8s.io/")
        || (has("metadata") && has("kind"))
    {
        return match text("kind") {
            "Role" => Some(Shape::Role),
            "ClusterRole" => Some(Shape::ClusterRole),
            "RoleBinding" => Some(Shape::RoleBinding),
            "ClusterRoleBinding" => Some(Shape::ClusterRoleBinding),
            _ => None,
        };
    }
    match text("type").to_ascii_lowercase().as_str() {
        "microsoft.authorization/roledefinitions" => return Some(Shape::RoleDefinition),
        "microsoft.authorization/roleassignments" => return Some(Shape::RoleAssignment),
        "microsoft.authorization/denyassignments" => return Some(Shape::DenyAssignment),
        "microsoft.management/managementgroups"
        | "/subscriptions"
        | "microsoft.resources/subscriptions" => {
            return Some(Shape::ManagementGroupEntity);
        }
        _ => {}
    }
    if has("roleName") && has("permissions") {
        Some(Shape::RoleDefinition)
    } else if has("principalId") && has("roleDefinitionId") {
        Some(Shape::RoleAssignment)
    } else if has("principals") && has("permissions") {
        Some(Shape::DenyAssignment)
    } else {
        None
    }
}

/// Lifts ARM's `properties` into the object, keeping the outer `id`, `name` and `type`.
fn flatten_properties(
    mut object: serde_json::Map<String, Value>,
) -> serde_json::Map<String, Value> {
    if let Some(Value::Object(props)) = object.remove("properties") {
        for (k, v) in props {
            object.entry(k).or_insert(v);
        }
    }
    object
}

fn add_object(
    origin: &Origin,
    value: Value,
    set: &mut PolicySet,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let Value::Object(object) = value else {
        return;
    };
    let object = flatten_properties(object);
    let Some(shape) = shape_of(&object) else {
        let hint = object
            .get("kind")
            .and_then(Value::as_str)
            .map(|k| format!(" (kind `{k}`)"))
            .unwrap_or_default();
        diagnostics.push(Diagnostic::error(
            origin.clone(),
            format!(
                "unknown policy object{hint}: expected a role definition, role assignment, deny assignment, management group entity, or a Kubernetes Role, ClusterRole, RoleBinding or ClusterRoleBinding"
            ),
        ));
        return;
    };
    let value = Value::Object(object);
    match shape {
        Shape::RoleDefinition => push(
            origin,
            value,
            &mut set.role_definitions,
            diagnostics,
            "role definition",
        ),
        Shape::RoleAssignment => push(
            origin,
            value,
            &mut set.role_assignments,
            diagnostics,
            "role assignment",
        ),
        Shape::DenyAssignment => push(
            origin,
            value,
            &mut set.deny_assignments,
            diagnostics,
            "deny assignment",
        ),
        Shape::ManagementGroupEntity => push(
            origin,
            value,
            &mut set.management_groups,
            diagnostics,
            "management group entity",
        ),
        Shape::Role => push(origin, value, &mut set.roles, diagnostics, "Role"),
        Shape::ClusterRole => push(
            origin,
            value,
            &mut set.cluster_roles,
            diagnostics,
            "ClusterRole",
        ),
        Shape::RoleBinding => push(
            origin,
            value,
            &mut set.role_bindings,
            diagnostics,
            "RoleBinding",
        ),
        Shape::ClusterRoleBinding => push(
            origin,
            value,
            &mut set.cluster_role_bindings,
            diagnostics,
            "ClusterRoleBinding",
        ),
    }
}

fn push<T: DeserializeOwned>(
    origin: &Origin,
    value: Value,
    into: &mut Vec<(Origin, T)>,
    diagnostics: &mut Vec<Diagnostic>,
    what: &str,
) {
    match serde_json::from_value::<T>(value) {
        Ok(item) => into.push((origin.clone(), item)),
        Err(e) => diagnostics.push(Diagnostic::error(
            origin.clone(),
            format!("invalid {what}: {e}"),
        )),
    }
}

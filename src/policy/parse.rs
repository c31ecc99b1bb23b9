//! Policy text -> typed policy objects. Pure: the caller reads the file.
//!
//! A file holds one document, an array, a Kubernetes `List`, an ARM list (`{"value": […]}`)
//! or a bundle such as `aks-builtin-roles.json` (`{"roles": […]}`); YAML files may hold several
//! documents. Each object is recognised by its shape; anything else is a diagnostic.

use super::{Diagnostic, Origin, PolicySet};
use serde::Deserialize;
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
            Ok(Value::Null) => diagnostics.push(no_object(Origin::new(file, "$"))),
            Ok(value) => add_value(&Origin::new(file, "$"), value, set, diagnostics),
            Err(e) => diagnostics.push(Diagnostic::error(
                Origin::at_line(file, e.line(), e.column()),
                format!("invalid JSON: {e}"),
            )),
        },
        Format::Yaml => {
            if let Some(over) = super::yaml_budget::over_budget(&file, text) {
                diagnostics.push(over);
                return;
            }
            let mut documents = 0;
            let mut failed = false;
            for (index, document) in serde_yaml::Deserializer::from_str(text).enumerate() {
                match <serde_yaml::Value as serde::Deserialize>::deserialize(document) {
                    Ok(serde_yaml::Value::Null) => {}
                    Ok(yaml) => match serde_json::to_value(yaml) {
                        Ok(value) => {
                            documents += 1;
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
                        failed = true;
                        // The YAML stream cannot be resumed after a syntax error.
                        break;
                    }
                }
            }
            if documents == 0 && !failed {
                diagnostics.push(no_object(Origin::new(file, "-")));
            }
        }
    }
}

/// A file that states nothing (empty, `null`, only comments or `---`) is an error, not an
/// empty policy: it is what a truncated or half-written file, or `/dev/null`, reads as. An
/// empty list (`[]`, `items: []`) says "no objects" and loads.
fn no_object(origin: Origin) -> Diagnostic {
    Diagnostic::error(
        origin,
        "the file holds no policy object (empty, `null` or only comments); \
         write `[]` for a file that deliberately holds none",
    )
}

/// What [`parse_json_reader`] made of a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Streamed {
    /// Every object was added (or a diagnostic recorded).
    Done,
    /// The document is an object that held a list under a container key but turned out,
    /// from a later key, not to be a container: nothing was added; parse it whole instead.
    NotAContainer,
}

/// Parses a JSON document from `reader` one list element at a time, so a file of a million
/// assignments is never held as text or as one JSON tree: each element of the top-level
/// array, or of a container's lists (`{"value": [...]}`), is read, added and dropped in turn.
/// Objects are recognised exactly as [`add_value`] does.
pub fn parse_json_reader(
    file: &str,
    reader: impl std::io::Read,
    set: &mut PolicySet,
    diagnostics: &mut Vec<Diagnostic>,
) -> Streamed {
    let de = serde_json::Deserializer::from_reader(reader);
    parse_json(file, de, set, diagnostics)
}

/// [`parse_json_reader`] over text already in memory: the same element-at-a-time reading
/// (no JSON tree of the whole file), at in-memory parsing speed.
pub fn parse_json_str(
    file: &str,
    text: &str,
    set: &mut PolicySet,
    diagnostics: &mut Vec<Diagnostic>,
) -> Streamed {
    let de = serde_json::Deserializer::from_str(text);
    parse_json(file, de, set, diagnostics)
}

fn parse_json<'de, R: serde_json::de::Read<'de>>(
    file: &str,
    mut de: serde_json::Deserializer<R>,
    set: &mut PolicySet,
    diagnostics: &mut Vec<Diagnostic>,
) -> Streamed {
    let file: Arc<str> = Arc::from(file);
    // Objects are added to a set of their own first: an invalid document adds nothing.
    let mut read = PolicySet::default();
    let mut found = Vec::new();
    let document = Document {
        origin: Origin::new(file.clone(), "$"),
        set: &mut read,
        diagnostics: &mut found,
    };
    let outcome = serde::de::DeserializeSeed::deserialize(document, &mut de)
        .and_then(|outcome| de.end().map(|()| outcome));
    match outcome {
        Ok(Streamed::Done) => {
            set.extend(read);
            diagnostics.append(&mut found);
            Streamed::Done
        }
        Ok(Streamed::NotAContainer) => Streamed::NotAContainer,
        Err(e) => {
            diagnostics.push(Diagnostic::error(
                Origin::at_line(file, e.line(), e.column()),
                format!("invalid JSON: {e}"),
            ));
            Streamed::Done
        }
    }
}

/// The top level of a streamed JSON document.
struct Document<'a> {
    origin: Origin,
    set: &'a mut PolicySet,
    diagnostics: &'a mut Vec<Diagnostic>,
}

impl Document<'_> {
    fn scalar<E>(self, found: &str) -> Result<Streamed, E> {
        self.diagnostics.push(Diagnostic::error(
            self.origin,
            format!("expected a policy object or a list of them, found {found}"),
        ));
        Ok(Streamed::Done)
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for Document<'_> {
    type Value = Streamed;
    fn deserialize<D: serde::Deserializer<'de>>(self, de: D) -> Result<Streamed, D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Document<'_> {
    type Value = Streamed;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a policy object or a list of them")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Streamed, A::Error> {
        stream_items(&self.origin, seq, self.set, self.diagnostics)?;
        Ok(Streamed::Done)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Streamed, A::Error> {
        // Lists under container keys are streamed while every key so far fits a container;
        // the other entries are kept, to be judged with the whole object at the end.
        let mut entries = serde_json::Map::new();
        let mut fits_container = true;
        let mut streamed = false;
        while let Some(key) = map.next_key::<String>()? {
            if fits_container && CONTAINER_KEYS.contains(&key.as_str()) {
                let list = List {
                    origin: self.origin.field(&key),
                    set: &mut *self.set,
                    diagnostics: &mut *self.diagnostics,
                };
                match map.next_value_seed(list)? {
                    None => streamed = true,
                    Some(value) => {
                        fits_container = false;
                        entries.insert(key, value);
                    }
                }
                continue;
            }
            let value: Value = map.next_value()?;
            fits_container &= container_entry(&key, &value);
            entries.insert(key, value);
        }
        if streamed {
            return Ok(if fits_container {
                Streamed::Done
            } else {
                Streamed::NotAContainer
            });
        }
        add_value(
            &self.origin,
            Value::Object(entries),
            self.set,
            self.diagnostics,
        );
        Ok(Streamed::Done)
    }

    fn visit_unit<E>(self) -> Result<Streamed, E> {
        self.diagnostics.push(no_object(self.origin));
        Ok(Streamed::Done)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Streamed, E> {
        self.scalar("a boolean")
    }

    fn visit_i64<E>(self, _: i64) -> Result<Streamed, E> {
        self.scalar("a number")
    }

    fn visit_u64<E>(self, _: u64) -> Result<Streamed, E> {
        self.scalar("a number")
    }

    fn visit_f64<E>(self, _: f64) -> Result<Streamed, E> {
        self.scalar("a number")
    }

    fn visit_str<E>(self, _: &str) -> Result<Streamed, E> {
        self.scalar("a string")
    }
}

/// The value of a container key: an array is streamed (`None`), anything else is returned.
struct List<'a> {
    origin: Origin,
    set: &'a mut PolicySet,
    diagnostics: &'a mut Vec<Diagnostic>,
}

impl<'de> serde::de::DeserializeSeed<'de> for List<'_> {
    type Value = Option<Value>;
    fn deserialize<D: serde::Deserializer<'de>>(self, de: D) -> Result<Option<Value>, D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for List<'_> {
    type Value = Option<Value>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Option<Value>, A::Error> {
        stream_items(&self.origin, seq, self.set, self.diagnostics)?;
        Ok(None)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Option<Value>, A::Error> {
        let value = Value::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
        Ok(Some(value))
    }

    fn visit_unit<E>(self) -> Result<Option<Value>, E> {
        Ok(Some(Value::Null))
    }

    fn visit_bool<E>(self, v: bool) -> Result<Option<Value>, E> {
        Ok(Some(Value::Bool(v)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Option<Value>, E> {
        Ok(Some(Value::from(v)))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Option<Value>, E> {
        Ok(Some(Value::from(v)))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Option<Value>, E> {
        Ok(Some(Value::from(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Option<Value>, E> {
        Ok(Some(Value::from(v)))
    }
}

/// Adds each element of a JSON array as it is read.
fn stream_items<'de, A: serde::de::SeqAccess<'de>>(
    origin: &Origin,
    mut seq: A,
    set: &mut PolicySet,
    diagnostics: &mut Vec<Diagnostic>,
) -> Result<(), A::Error> {
    let mut i = 0;
    while let Some(item) = seq.next_element::<Value>()? {
        super::pace::point();
        add_value(&origin.item(i), item, set, diagnostics);
        i += 1;
    }
    Ok(())
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

/// Whether an entry may stand in a container document: a list under a container key, or a
/// key lists carry beside them (`kind`, `apiVersion`, `metadata`, `_`-prefixed notes).
fn container_entry(key: &str, value: &Value) -> bool {
    key.starts_with('_')
        || key == "kind"
        || key == "apiVersion"
        || key == "metadata"
        || (CONTAINER_KEYS.contains(&key) && value.is_array())
}

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
                super::pace::point();
                add_value(&origin.item(i), item, set, diagnostics);
            }
        }
        Value::Object(map) => {
            let is_container = !map.is_empty()
                && map.iter().all(|(k, v)| container_entry(k, v))
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
        // `- ` alone in YAML, or `[null]`: what a list cut after its dash reads as.
        Value::Null => diagnostics.push(Diagnostic::error(
            origin.clone(),
            "expected a policy object, found `null`",
        )),
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
        Shape::RoleAssignment => {
            match serde_json::from_value::<super::schema::RoleAssignment>(value) {
                Ok(ra) => set.role_assignments.add(origin, &ra, diagnostics),
                Err(e) => diagnostics.push(Diagnostic::error(
                    origin.clone(),
                    format!("invalid role assignment: {e}"),
                )),
            }
        }
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

/// Test setup: `objects` read as the content of a policy file named `file`, with every
/// diagnostic.
#[cfg(test)]
pub(crate) fn read_objects(file: &str, objects: Value) -> (PolicySet, Vec<Diagnostic>) {
    let (mut set, mut diagnostics) = (PolicySet::default(), Vec::new());
    add_value(&Origin::new(file, "$"), objects, &mut set, &mut diagnostics);
    (set, diagnostics)
}

/// Test setup: `objects` read as a policy file that must have no error.
#[cfg(test)]
pub(crate) fn valid_set(objects: Value) -> PolicySet {
    let (set, diagnostics) = read_objects("test", objects);
    assert!(diagnostics.iter().all(|d| !d.is_error()), "{diagnostics:?}");
    set
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROLE: &str = r#"{"name":"7f6c6a51-bcf8-42ba-9220-52d62157d7db","roleName":"Reader","permissions":[{"dataActions":["Microsoft.ContainerService/managedClusters/*/read"]}]}"#;

    fn assignment(n: u32) -> String {
        format!(
            r#"{{"id":"/subscriptions/s/providers/Microsoft.Authorization/roleAssignments/{n}","principalId":"6f0b7e4a-1c2d-4e5f-8a9b-{n:012}","roleDefinitionId":"7f6c6a51-bcf8-42ba-9220-52d62157d7db","scope":"/subscriptions/s"}}"#
        )
    }

    /// What a parse produced, in a comparable form.
    fn summary(set: &PolicySet, diagnostics: &[Diagnostic]) -> String {
        format!(
            "{} roles, {} assignments, {} scopes, {} bindings; {}",
            set.role_definitions.len(),
            set.role_assignments.len(),
            set.role_assignments.scopes().len(),
            set.role_bindings.len(),
            diagnostics
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" | ")
        )
    }

    fn whole(text: &str) -> String {
        let (mut set, mut diagnostics) = (PolicySet::default(), Vec::new());
        parse_text("f.json", text, Format::Json, &mut set, &mut diagnostics);
        summary(&set, &diagnostics)
    }

    fn streamed(text: &str) -> (Streamed, String) {
        let (mut set, mut diagnostics) = (PolicySet::default(), Vec::new());
        let outcome = parse_json_reader("f.json", text.as_bytes(), &mut set, &mut diagnostics);
        let (mut again, mut found) = (PolicySet::default(), Vec::new());
        let in_memory = parse_json_str("f.json", text, &mut again, &mut found);
        assert_eq!(
            (in_memory, summary(&again, &found)),
            (outcome, summary(&set, &diagnostics)),
            "{text}"
        );
        (outcome, summary(&set, &diagnostics))
    }

    #[test]
    fn streaming_reads_what_the_whole_document_parser_reads() {
        let documents = [
            format!("[{ROLE},{},{}]", assignment(1), assignment(2)),
            format!(r#"{{"value":[{},{}]}}"#, assignment(1), assignment(1)),
            format!(r#"{{"kind":"List","_note":1,"roleAssignments":[{}],"roles":[{ROLE}]}}"#, assignment(3)),
            r#"{"value":[]}"#.to_string(),
            r#"{"value":{"a":1}}"#.to_string(),
            format!(r#"{{"id":"x","value":[{}]}}"#, assignment(4)),
            format!("[[{}], null, 5]", assignment(5)),
            r#"{"kind":"RoleBinding","apiVersion":"rbac.authorization.k8s.io/v1","metadata":{"name":"b","namespace":"n"},"roleRef":{"kind":"Role","name":"r"},"subjects":[]}"#.to_string(),
            "{}".to_string(),
            "null".to_string(),
            "42".to_string(),
            "\"text\"".to_string(),
            "true".to_string(),
            "[1,".to_string(),
            format!("[{}] trailing", assignment(6)),
            r#"[{"id":"a","principalId":"not-a-guid","roleDefinitionId":"r","scope":"/subscriptions/s"}]"#.to_string(),
        ];
        for text in &documents {
            let (outcome, summary) = streamed(text);
            assert_eq!(outcome, Streamed::Done, "{text}");
            assert_eq!(summary, whole(text), "{text}");
        }
    }

    #[test]
    fn a_key_after_a_streamed_list_that_rules_out_a_container_asks_for_a_whole_parse() {
        // `value` is streamed, then `id` shows the object is not a container.
        let text = format!(r#"{{"value":[{}],"id":"x"}}"#, assignment(7));
        let (outcome, summary) = streamed(&text);
        assert_eq!(outcome, Streamed::NotAContainer);
        assert_eq!(summary, "0 roles, 0 assignments, 0 scopes, 0 bindings; ");
        assert!(
            whole(&text).contains("unknown policy object"),
            "{}",
            whole(&text)
        );
    }
}

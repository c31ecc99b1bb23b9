//! Policy text -> typed policy objects. Pure: the caller reads the file.
//!
//! A file holds one document, an array, a Kubernetes `List`, an ARM list (`{"value": […]}`)
//! or a bundle such as `aks-builtin-roles.json` (`{"roles": […]}`); YAML files may hold several
//! documents. Each object is recognised by its shape; anything else is a diagnostic.
//! Kubernetes RBAC objects are checked as the API server checks them (fields, subject and
//! roleRef kinds, api groups); a problem inside an object of a YAML file names its line.

use super::{Diagnostic, Origin, PolicySet, directory};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::cell::Cell;
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
    let lookups_left = Cell::new(POSITION_LOOKUPS);
    match format {
        Format::Json => match serde_json::from_str::<Value>(text) {
            Ok(Value::Null) => diagnostics.push(no_object(Origin::new(file, "$"))),
            Ok(value) => add_value_in(
                &Origin::new(file, "$"),
                &[],
                Some(Text::new(Source::Json(text), &lookups_left)),
                value,
                set,
                diagnostics,
            ),
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
                            let source = Source::Yaml {
                                text,
                                document: index,
                            };
                            let text = Some(Text::new(source, &lookups_left));
                            add_value_in(&origin, &[], text, value, set, diagnostics);
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
    parse_json(file, None, de, set, diagnostics)
}

/// [`parse_json_reader`] over text already in memory: the same element-at-a-time reading
/// (no JSON tree of the whole file), at in-memory parsing speed; problems inside objects get
/// a line.
pub fn parse_json_str(
    file: &str,
    text: &str,
    set: &mut PolicySet,
    diagnostics: &mut Vec<Diagnostic>,
) -> Streamed {
    let de = serde_json::Deserializer::from_str(text);
    parse_json(file, Some(text), de, set, diagnostics)
}

fn parse_json<'de, R: serde_json::de::Read<'de>>(
    file: &str,
    text: Option<&str>,
    mut de: serde_json::Deserializer<R>,
    set: &mut PolicySet,
    diagnostics: &mut Vec<Diagnostic>,
) -> Streamed {
    let file: Arc<str> = Arc::from(file);
    // Objects are added to a set of their own first: an invalid document adds nothing.
    let mut read = PolicySet::default();
    let mut found = Vec::new();
    let lookups_left = Cell::new(POSITION_LOOKUPS);
    let document = Document {
        origin: Origin::new(file.clone(), "$"),
        text: text.map(|t| Text::new(Source::Json(t), &lookups_left)),
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
    text: Option<Text<'a>>,
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
        let at = Stream {
            origin: &self.origin,
            path: &[],
            text: self.text,
        };
        stream_items(at, seq, self.set, self.diagnostics)?;
        Ok(Streamed::Done)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Streamed, A::Error> {
        // Lists under container keys are streamed while every key so far fits a container;
        // the other entries are kept, to be judged with the whole object at the end.
        let mut entries = serde_json::Map::new();
        let mut fits_container = true;
        let mut streamed = false;
        let mut next_link = false;
        while let Some(key) = map.next_key::<String>()? {
            next_link |= key == NEXT_LINK;
            if fits_container && CONTAINER_KEYS.contains(&key.as_str()) {
                let list = List {
                    origin: self.origin.field(&key),
                    key: Step::Key(key.clone()),
                    text: self.text,
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
            next_link |= key == ARM_NEXT_LINK && value.is_string();
            fits_container &= container_entry(&key, &value);
            entries.insert(key, value);
        }
        if streamed {
            if fits_container && next_link {
                self.diagnostics.push(incomplete_page(&self.origin));
            }
            return Ok(if fits_container {
                Streamed::Done
            } else {
                Streamed::NotAContainer
            });
        }
        add_value_in(
            &self.origin,
            &[],
            self.text,
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
    /// The container key the value is under.
    key: Step,
    text: Option<Text<'a>>,
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
        let at = Stream {
            origin: &self.origin,
            path: std::slice::from_ref(&self.key),
            text: self.text,
        };
        stream_items(at, seq, self.set, self.diagnostics)?;
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

/// A JSON array being streamed: its origin, its path in the document and the document's text.
struct Stream<'a> {
    origin: &'a Origin,
    path: &'a [Step],
    text: Option<Text<'a>>,
}

/// Adds each element of a JSON array as it is read.
fn stream_items<'de, A: serde::de::SeqAccess<'de>>(
    at: Stream<'_>,
    mut seq: A,
    set: &mut PolicySet,
    diagnostics: &mut Vec<Diagnostic>,
) -> Result<(), A::Error> {
    let mut i = 0;
    while let Some(item) = seq.next_element::<Value>()? {
        super::pace::point();
        // Paths serve only to find lines in the text: a streamed file builds none.
        let path: Vec<Step> = match at.text {
            Some(_) => at.path.iter().cloned().chain([Step::Item(i)]).collect(),
            None => Vec::new(),
        };
        add_value_in(&at.origin.item(i), &path, at.text, item, set, diagnostics);
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
/// key lists carry beside them (`kind`, `apiVersion`, `metadata`, `_`-prefixed notes, Graph's
/// `@odata.` annotations).
fn container_entry(key: &str, value: &Value) -> bool {
    key.starts_with('_')
        || key.starts_with("@odata.")
        || key == "kind"
        || key == "apiVersion"
        || key == "metadata"
        || (key == ARM_NEXT_LINK && (value.is_string() || value.is_null()))
        || (CONTAINER_KEYS.contains(&key) && value.is_array())
}

/// Adds one parsed JSON value (object, array or container) to the set.
pub fn add_value(
    origin: &Origin,
    value: Value,
    set: &mut PolicySet,
    diagnostics: &mut Vec<Diagnostic>,
) {
    add_value_in(origin, &[], None, value, set, diagnostics);
}

/// [`add_value`] for the value at `path` in a document, whose text (if it is at hand) gives
/// problems inside objects a line.
fn add_value_in(
    origin: &Origin,
    path: &[Step],
    text: Option<Text<'_>>,
    value: Value,
    set: &mut PolicySet,
    diagnostics: &mut Vec<Diagnostic>,
) {
    // Paths serve only to find lines in the text: streamed JSON lists build none.
    let below = |step: Step| match text {
        Some(_) => path.iter().cloned().chain([step]).collect(),
        None => Vec::new(),
    };
    match value {
        Value::Array(items) => {
            for (i, item) in items.into_iter().enumerate() {
                super::pace::point();
                let path = below(Step::Item(i));
                add_value_in(&origin.item(i), &path, text, item, set, diagnostics);
            }
        }
        Value::Object(map) => {
            let is_container = !map.is_empty()
                && map.iter().all(|(k, v)| container_entry(k, v))
                && map.keys().any(|k| CONTAINER_KEYS.contains(&k.as_str()));
            if is_container {
                if map.contains_key(NEXT_LINK)
                    || map.get(ARM_NEXT_LINK).is_some_and(Value::is_string)
                {
                    diagnostics.push(incomplete_page(origin));
                    return;
                }
                for (key, inner) in map {
                    if CONTAINER_KEYS.contains(&key.as_str()) {
                        let path = below(Step::Key(key.clone()));
                        add_value_in(&origin.field(&key), &path, text, inner, set, diagnostics);
                    }
                }
            } else {
                let at = Place { origin, path, text };
                add_object(&at, map, set, diagnostics);
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

/// Graph's link to the next page of a list.
const NEXT_LINK: &str = "@odata.nextLink";

/// ARM's link to the next page of a list (`null` or absent on the last page).
const ARM_NEXT_LINK: &str = "nextLink";

/// The error for a Graph or ARM page that more pages follow: loading it would drop every
/// object on the pages not exported.
#[cold]
fn incomplete_page(origin: &Origin) -> Diagnostic {
    Diagnostic::error(
        origin.field(NEXT_LINK),
        "incomplete export: this page still has `@odata.nextLink` or `nextLink`, so more pages \
         follow; export every page into the file (`az ad user list`, `az ad group list`, \
         `az ad group member list`, `az identity list` and `az role assignment list` follow \
         the links, `az rest` does not)",
    )
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
    EntraUser,
    EntraGroup,
    /// An object of an `entra-group-members/<group id>.json` file.
    EntraMember,
    /// A PIM role assignment schedule instance: a role assignment with a validity window.
    RoleAssignmentScheduleInstance,
    /// A PIM role eligibility schedule instance: grants nothing until activated.
    RoleEligibilityScheduleInstance,
    /// A user-assigned managed identity (`az identity list`).
    ManagedIdentity,
    /// A federated identity credential (`az identity federated-credential list`).
    FederatedCredential,
    /// A Kubernetes `v1` ServiceAccount.
    ServiceAccount,
}

impl Shape {
    /// The object's name in messages.
    fn name(self) -> &'static str {
        match self {
            Shape::RoleDefinition => "role definition",
            Shape::RoleAssignment => "role assignment",
            Shape::DenyAssignment => "deny assignment",
            Shape::ManagementGroupEntity => "management group entity",
            Shape::Role => "Role",
            Shape::ClusterRole => "ClusterRole",
            Shape::RoleBinding => "RoleBinding",
            Shape::ClusterRoleBinding => "ClusterRoleBinding",
            Shape::EntraUser => "Entra user",
            Shape::EntraGroup => "Entra group",
            Shape::EntraMember => "Entra group member",
            Shape::RoleAssignmentScheduleInstance => "role assignment schedule instance",
            Shape::RoleEligibilityScheduleInstance => "role eligibility schedule instance",
            Shape::ManagedIdentity => "managed identity",
            Shape::FederatedCredential => "federated identity credential",
            Shape::ServiceAccount => "ServiceAccount",
        }
    }

    /// The top-level fields of a shape read strictly (see [`super::schema`]).
    fn fields(self) -> Option<&'static [&'static str]> {
        use super::schema as s;
        match self {
            Shape::Role => Some(s::ROLE_FIELDS),
            Shape::ClusterRole => Some(s::CLUSTER_ROLE_FIELDS),
            Shape::RoleBinding | Shape::ClusterRoleBinding => Some(s::BINDING_FIELDS),
            _ => None,
        }
    }
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
            "ServiceAccount" => Some(Shape::ServiceAccount),
            _ => None,
        };
    }
    match text("type").to_ascii_lowercase().as_str() {
        "microsoft.authorization/roledefinitions" => return Some(Shape::RoleDefinition),
        "microsoft.authorization/roleassignments" => return Some(Shape::RoleAssignment),
        "microsoft.authorization/denyassignments" => return Some(Shape::DenyAssignment),
        "microsoft.authorization/roleassignmentscheduleinstances" => {
            return Some(Shape::RoleAssignmentScheduleInstance);
        }
        "microsoft.authorization/roleeligibilityscheduleinstances" => {
            return Some(Shape::RoleEligibilityScheduleInstance);
        }
        "microsoft.managedidentity/userassignedidentities" => {
            return Some(Shape::ManagedIdentity);
        }
        "microsoft.managedidentity/userassignedidentities/federatedidentitycredentials" => {
            return Some(Shape::FederatedCredential);
        }
        "microsoft.management/managementgroups"
        | "/subscriptions"
        | "microsoft.resources/subscriptions" => {
            return Some(Shape::ManagementGroupEntity);
        }
        _ => {}
    }
    if has("roleName") && has("permissions") {
        Some(Shape::RoleDefinition)
    } else if let Some(shape) = schedule_instance_shape(&has) {
        Some(shape)
    } else if has("principalId") && has("roleDefinitionId") {
        Some(Shape::RoleAssignment)
    } else if has("principals") && has("permissions") {
        Some(Shape::DenyAssignment)
    } else if has("clientId") && has("principalId") {
        Some(Shape::ManagedIdentity)
    } else if has("issuer") && has("audiences") {
        Some(Shape::FederatedCredential)
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

/// One step of the path from a document's root to a value.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Item(usize),
}

/// The text of the document an object was read from, to find the line of a path in it.
/// Each lookup reads the document again up to the place, so one file gets at most
/// [`POSITION_LOOKUPS`] of them (shared by its documents); later problems name their path.
#[derive(Debug, Clone, Copy)]
struct Text<'a> {
    source: Source<'a>,
    lookups_left: &'a Cell<u32>,
}

/// A document's text.
#[derive(Debug, Clone, Copy)]
enum Source<'a> {
    /// A YAML stream and the document's index in it.
    Yaml { text: &'a str, document: usize },
    /// A JSON document.
    Json(&'a str),
}

/// How many problems of one file get a line: an export of a million objects, each with the
/// same odd field, must not be read a million times over.
const POSITION_LOOKUPS: u32 = 32;

impl<'a> Text<'a> {
    fn new(source: Source<'a>, lookups_left: &'a Cell<u32>) -> Self {
        Text {
            source,
            lookups_left,
        }
    }

    /// The source, if this file has lookups left (taking one).
    fn lookup(self) -> Option<Source<'a>> {
        let left = self.lookups_left.get();
        (left > 0).then(|| {
            self.lookups_left.set(left - 1);
            self.source
        })
    }
}

/// Where an object is: its origin, its path in the document, and the document's text.
struct Place<'a> {
    origin: &'a Origin,
    path: &'a [Step],
    text: Option<Text<'a>>,
}

impl Place<'_> {
    /// The origin of the value at `below` inside the object: a line and column when the
    /// text is at hand, else the object's origin followed by the path.
    fn at(&self, below: &[Step]) -> Origin {
        let line = self.text.and_then(Text::lookup).and_then(|source| {
            let full: Vec<Step> = self.path.iter().chain(below).cloned().collect();
            position(source, &full)
        });
        match line {
            Some((line, column)) => Origin::at_line(self.origin.file.clone(), line, column),
            None => below
                .iter()
                .fold(self.origin.clone(), |o, step| match step {
                    Step::Key(key) => o.field(key),
                    Step::Item(i) => o.item(*i),
                }),
        }
    }
}

/// A problem inside an object, at a path below it.
struct Finding {
    path: Vec<Step>,
    error: bool,
    message: String,
}

impl Finding {
    fn error(path: Vec<Step>, message: String) -> Self {
        Finding {
            path,
            error: true,
            message,
        }
    }

    fn warning(path: Vec<Step>, message: String) -> Self {
        Finding {
            path,
            error: false,
            message,
        }
    }
}

/// Adds one policy object to `set` by its shape, with what is wrong with it (unknown
/// fields, values that do not fit) as diagnostics at their place.
fn add_object(
    at: &Place<'_>,
    object: serde_json::Map<String, Value>,
    set: &mut PolicySet,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let origin = at.origin;
    let in_properties = object.contains_key("properties");
    let object = flatten_properties(object);
    let shape = match directory_file(&origin.file) {
        Some(file) => match directory_shape_in(file, &object) {
            Ok(shape) => shape,
            Err(message) => return diagnostics.push(Diagnostic::error(origin.clone(), message)),
        },
        None => match shape_of(&object).or_else(|| entra_shape(&object)) {
            Some(shape) => shape,
            None => return diagnostics.push(unknown_object(origin, &object)),
        },
    };
    let mut findings = Vec::new();
    if let Some(fields) = shape.fields() {
        unknown_fields(
            &object,
            fields,
            shape.name(),
            &mut Vec::new(),
            &mut findings,
        );
    }
    let value = Value::Object(object);
    match shape {
        Shape::RoleDefinition => {
            if let Some(role) = typed(value, shape, &mut findings) {
                set.role_definitions.push((origin.clone(), role));
            }
        }
        Shape::RoleAssignment => {
            return add_role_assignment(at, value, findings, set, diagnostics);
        }
        Shape::DenyAssignment => add_checked(
            origin,
            shape,
            value,
            &mut findings,
            check_deny_principal_types,
            &mut set.deny_assignments,
        ),
        Shape::ManagementGroupEntity => {
            if let Some(entity) = typed(value, shape, &mut findings) {
                set.management_groups.push((origin.clone(), entity));
            }
        }
        Shape::Role | Shape::ClusterRole => {
            let list = if shape == Shape::Role {
                &mut set.roles
            } else {
                &mut set.cluster_roles
            };
            add_checked(origin, shape, value, &mut findings, check_role, list);
        }
        Shape::RoleBinding | Shape::ClusterRoleBinding => {
            let list = if shape == Shape::RoleBinding {
                &mut set.role_bindings
            } else {
                &mut set.cluster_role_bindings
            };
            let check = |binding: &_, findings: &mut _| check_binding(binding, shape, findings);
            add_checked(origin, shape, value, &mut findings, check, list);
        }
        Shape::EntraUser | Shape::EntraGroup | Shape::EntraMember => {
            add_directory_object(origin, shape, value, &mut findings, set);
        }
        Shape::RoleAssignmentScheduleInstance | Shape::RoleEligibilityScheduleInstance => {
            let list = if shape == Shape::RoleAssignmentScheduleInstance {
                &mut set.role_assignment_schedule_instances
            } else {
                &mut set.role_eligibility_schedule_instances
            };
            // Its times are checked here, where a problem gets a line; the rest as for role
            // assignments when the snapshot is built. One whose status never grants is kept
            // (inert), for `explain`. Problems point into ARM's `properties` when read there.
            let check = |instance: &_, findings: &mut Vec<Finding>| {
                let checked = findings.len();
                check_schedule_instance(instance, shape, findings);
                if in_properties {
                    for finding in findings.iter_mut().skip(checked) {
                        finding.path.insert(0, key("properties"));
                    }
                }
            };
            add_checked(origin, shape, value, &mut findings, check, list);
        }
        Shape::ManagedIdentity | Shape::FederatedCredential | Shape::ServiceAccount => {
            add_workload_object(origin, shape, value, in_properties, &mut findings, set);
        }
    }
    report(at, findings, diagnostics);
}

/// Adds a managed identity, federated identity credential or ServiceAccount, checked (see
/// [`super::workload`]). Problems point into ARM's `properties` when read there.
fn add_workload_object(
    origin: &Origin,
    shape: Shape,
    value: Value,
    in_properties: bool,
    findings: &mut Vec<Finding>,
    set: &mut PolicySet,
) {
    use super::schema::{FederatedCredential, K8sServiceAccount, ManagedIdentity};
    let checked = findings.len();
    match shape {
        Shape::ManagedIdentity => {
            if let Some(identity) = typed::<ManagedIdentity>(value, shape, findings)
                && let Some(identity) = check_identity(identity, findings)
            {
                set.managed_identities.push((origin.clone(), identity));
            }
        }
        Shape::FederatedCredential => {
            if let Some(credential) = typed::<FederatedCredential>(value, shape, findings)
                && let Some(credential) = check_credential(credential, findings)
            {
                set.federated_credentials.push((origin.clone(), credential));
            }
        }
        _ => {
            if let Some(account) = typed::<K8sServiceAccount>(value, shape, findings)
                && let Some(account) = check_service_account(account, findings)
            {
                set.service_accounts.push((origin.clone(), account));
            }
        }
    }
    if in_properties {
        for finding in findings.iter_mut().skip(checked) {
            if !matches!(finding.path.first(), Some(Step::Key(k)) if k == "id" || k == "name") {
                finding.path.insert(0, key("properties"));
            }
        }
    }
}

/// A GUID field of a managed identity: required unless `optional`, hyphenated form.
fn identity_guid(
    field: &str,
    text: Option<&str>,
    optional: bool,
    findings: &mut Vec<Finding>,
) -> Option<Option<uuid::Uuid>> {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        if optional {
            return Some(None);
        }
        findings.push(Finding::error(
            vec![key(field)],
            format!("managed identity has no `{field}`"),
        ));
        return None;
    };
    match crate::model::name_hash::object_id(text) {
        Some(id) => Some(Some(id)),
        None => {
            findings.push(Finding::error(
                vec![key(field)],
                format!("managed identity `{field}` `{text}` is not a GUID"),
            ));
            None
        }
    }
}

/// Checks a managed identity's id and GUIDs.
fn check_identity(
    identity: super::schema::ManagedIdentity,
    findings: &mut Vec<Finding>,
) -> Option<super::workload::ManagedIdentity> {
    let client_id = identity_guid("clientId", identity.client_id.as_deref(), false, findings);
    let principal_id = identity_guid(
        "principalId",
        identity.principal_id.as_deref(),
        false,
        findings,
    );
    let tenant_id = identity_guid("tenantId", identity.tenant_id.as_deref(), true, findings);
    let id = identity.id.trim();
    let marker = "/providers/microsoft.managedidentity/userassignedidentities/";
    if !id.to_ascii_lowercase().contains(marker) {
        findings.push(Finding::error(
            vec![key("id")],
            format!(
                "managed identity id `{id}` is not `/subscriptions/<id>/resourcegroups/<group>/\
                 providers/Microsoft.ManagedIdentity/userAssignedIdentities/<name>`"
            ),
        ));
        return None;
    }
    let name = if identity.name.is_empty() {
        id.rsplit('/').next().unwrap_or_default()
    } else {
        identity.name.as_str()
    };
    Some(super::workload::ManagedIdentity {
        id: Arc::from(id),
        name: Arc::from(name),
        client_id: client_id??,
        principal_id: principal_id??,
        tenant_id: tenant_id?,
    })
}

/// Checks a federated identity credential. One with a `claimsMatchingExpression` instead of
/// a `subject` is not loaded (a warning): scopegate matches subjects only.
fn check_credential(
    credential: super::schema::FederatedCredential,
    findings: &mut Vec<Finding>,
) -> Option<super::workload::FederatedCredential> {
    let id = credential.id.trim();
    let Some(identity_id) = super::workload::credential_identity_id(id) else {
        findings.push(Finding::error(
            vec![key("id")],
            format!(
                "federated identity credential id `{id}` is not `<identity id>\
                 {}<name>`",
                super::workload::CREDENTIALS_SEGMENT
            ),
        ));
        return None;
    };
    let subject = match credential.subject.as_deref() {
        Some(subject) if !subject.is_empty() => subject,
        _ if credential.claims_matching_expression.is_some() => {
            findings.push(Finding::warning(
                vec![key("claimsMatchingExpression")],
                format!(
                    "federated identity credential `{id}` matches by `claimsMatchingExpression`, which scopegate does not evaluate: not loaded, so it trusts no ServiceAccount here"
                ),
            ));
            return None;
        }
        _ => {
            findings.push(Finding::error(
                vec![key("subject")],
                format!("federated identity credential `{id}` has no `subject`"),
            ));
            return None;
        }
    };
    let Some(issuer) = credential.issuer.as_deref().filter(|i| !i.is_empty()) else {
        findings.push(Finding::error(
            vec![key("issuer")],
            format!("federated identity credential `{id}` has no `issuer`"),
        ));
        return None;
    };
    if credential.audiences.is_empty() {
        findings.push(Finding::error(
            vec![key("audiences")],
            format!("federated identity credential `{id}` has no audience"),
        ));
        return None;
    }
    if issuer.chars().any(char::is_whitespace) {
        findings.push(Finding::warning(
            vec![key("issuer")],
            format!(
                "issuer `{issuer}` holds whitespace: Entra does not use such a credential, so it \
                 is not loaded"
            ),
        ));
        return None;
    }
    for (field, text) in [("issuer", issuer), ("subject", subject)] {
        if text.contains('*') {
            findings.push(Finding::warning(
                vec![key(field)],
                format!(
                    "`{text}` holds `*`: federated credentials take no wildcards, so it matches only that exact text"
                ),
            ));
        }
    }
    Some(super::workload::FederatedCredential {
        id: Arc::from(id),
        name: Arc::from(if credential.name.is_empty() {
            id.rsplit('/').next().unwrap_or_default()
        } else {
            credential.name.as_str()
        }),
        identity_id: Arc::from(identity_id),
        issuer: Arc::from(issuer),
        subject: Arc::from(subject),
        audiences: credential
            .audiences
            .iter()
            .map(|a| Arc::from(a.as_str()))
            .collect(),
    })
}

/// Checks a ServiceAccount's name and workload identity annotations. An annotation that is
/// not a GUID is a warning only: the object may come from the live cluster, whose objects
/// must not stop the policy from loading.
fn check_service_account(
    account: super::schema::K8sServiceAccount,
    findings: &mut Vec<Finding>,
) -> Option<super::workload::ServiceAccount> {
    use super::workload::{CLIENT_ID_ANNOTATION, TENANT_ID_ANNOTATION};
    let meta = account.metadata;
    for (field, value) in [("name", &meta.name), ("namespace", &meta.namespace)] {
        if value.is_empty() {
            findings.push(Finding::error(
                vec![key("metadata"), key(field)],
                format!("ServiceAccount has no `metadata.{field}`"),
            ));
            return None;
        }
    }
    let annotation = |name: &str, findings: &mut Vec<Finding>| -> Option<Arc<str>> {
        let text = meta.annotations.get(name)?;
        if crate::model::name_hash::object_id(text.trim()).is_none() {
            findings.push(Finding::warning(
                vec![key("metadata"), key("annotations"), key(name)],
                format!(
                    "ServiceAccount `{}/{}` annotation `{name}` is `{text}`, not a GUID: no identity matches it",
                    meta.namespace, meta.name
                ),
            ));
        }
        Some(Arc::from(text.as_str()))
    };
    let client_id = annotation(CLIENT_ID_ANNOTATION, findings);
    let tenant_id = annotation(TENANT_ID_ANNOTATION, findings);
    Some(super::workload::ServiceAccount {
        namespace: Arc::from(meta.namespace.as_str()),
        name: Arc::from(meta.name.as_str()),
        client_id,
        tenant_id,
    })
}

/// The error for an object of no known shape, naming its `kind` if it has one.
#[cold]
fn unknown_object(origin: &Origin, object: &serde_json::Map<String, Value>) -> Diagnostic {
    let hint = object
        .get("kind")
        .and_then(Value::as_str)
        .map(|k| format!(" (kind `{k}`)"))
        .unwrap_or_default();
    Diagnostic::error(
        origin.clone(),
        format!(
            "unknown policy object{hint}: expected a role definition, role assignment, deny assignment, management group entity, PIM schedule instance, Entra user or group, managed identity, federated identity credential, or a Kubernetes Role, ClusterRole, RoleBinding, ClusterRoleBinding or ServiceAccount"
        ),
    )
}

/// The directory export a file holds, by its name (spec `identity.md` C2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirectoryFile<'a> {
    /// `entra-users.json`.
    Users,
    /// `entra-groups.json`.
    Groups,
    /// `entra-group-members/<group id>.json`: the direct members of that group.
    Members { group: &'a str },
}

/// The directory export `file` is, if its name is one of them.
pub fn directory_file(file: &str) -> Option<DirectoryFile<'_>> {
    // Cheap test first: every policy object passes here.
    if !file.contains("entra-") {
        return None;
    }
    let path = std::path::Path::new(file);
    match path.file_name()?.to_str()? {
        "entra-users.json" => return Some(DirectoryFile::Users),
        "entra-groups.json" => return Some(DirectoryFile::Groups),
        _ => {}
    }
    let parent = path.parent()?.file_name()?.to_str()?;
    let group = path.file_stem()?.to_str()?;
    (parent == "entra-group-members" && path.extension()? == "json" && !group.is_empty())
        .then_some(DirectoryFile::Members { group })
}

/// In a directory export every object is of the file's kind; an object of another known
/// shape (an assignment in `entra-users.json`) is an error, not read as a user.
fn directory_shape_in(
    file: DirectoryFile<'_>,
    object: &serde_json::Map<String, Value>,
) -> Result<Shape, String> {
    let (shape, file_name) = match file {
        DirectoryFile::Users => (Shape::EntraUser, "entra-users.json"),
        DirectoryFile::Groups => (Shape::EntraGroup, "entra-groups.json"),
        DirectoryFile::Members { .. } => (Shape::EntraMember, "an entra-group-members file"),
    };
    let other = shape_of(object).or_else(|| match entra_shape(object) {
        Some(found) if shape != Shape::EntraMember && found != shape => Some(found),
        _ => None,
    });
    match other {
        Some(other) => Err(format!(
            "a {} in {file_name}, which holds only {}s",
            other.name(),
            shape.name()
        )),
        None => Ok(shape),
    }
}

/// An Entra user or group outside the named export files, by its Graph `@odata.type` or,
/// failing that, fields only that kind carries.
fn entra_shape(object: &serde_json::Map<String, Value>) -> Option<Shape> {
    match object.get("@odata.type").and_then(Value::as_str) {
        Some("#microsoft.graph.user") => return Some(Shape::EntraUser),
        Some("#microsoft.graph.group") => return Some(Shape::EntraGroup),
        Some(_) => return None,
        None => {}
    }
    let has = |k: &str| object.contains_key(k);
    if !has("id") {
        None
    } else if has("userPrincipalName") || has("accountEnabled") {
        Some(Shape::EntraUser)
    } else if has("securityEnabled") || has("groupTypes") || has("mailEnabled") {
        Some(Shape::EntraGroup)
    } else {
        None
    }
}

/// Records that `file` is a group's member file, when it is one: the file states the
/// group's whole direct membership, even when it lists nobody.
pub fn note_member_file(file: &str, set: &mut PolicySet) {
    if let Some(DirectoryFile::Members { group }) = directory_file(file) {
        set.directory_member_files
            .push((Origin::new(file, "-"), directory::canonical_id(group)));
    }
}

/// An object id as the directory keeps it; empty is an error.
fn directory_id(id: &str, findings: &mut Vec<Finding>) -> Option<Arc<str>> {
    if id.trim().is_empty() {
        findings.push(Finding::error(vec![key("id")], "`id` is empty".into()));
        return None;
    }
    Some(directory::canonical_id(id.trim()))
}

fn member(m: &super::schema::EntraMember) -> Option<directory::Member> {
    let id = m.id.trim();
    (!id.is_empty()).then(|| directory::Member {
        id: directory::canonical_id(id),
        kind: directory::MemberType::from_odata_type(m.odata_type.as_deref().unwrap_or("")),
    })
}

/// Adds an Entra user, group or member-file entry, ids lower-cased.
fn add_directory_object(
    origin: &Origin,
    shape: Shape,
    value: Value,
    findings: &mut Vec<Finding>,
    set: &mut PolicySet,
) {
    use super::schema::{EntraGroup, EntraMember, EntraUser};
    match shape {
        Shape::EntraUser => {
            let Some(user) = typed::<EntraUser>(value, shape, findings) else {
                return;
            };
            let Some(id) = directory_id(&user.id, findings) else {
                return;
            };
            set.directory_users.push((
                origin.clone(),
                directory::User {
                    id,
                    user_principal_name: user.user_principal_name,
                    account_enabled: user.account_enabled,
                },
            ));
        }
        Shape::EntraGroup => {
            let Some(group) = typed::<EntraGroup>(value, shape, findings) else {
                return;
            };
            let Some(id) = directory_id(&group.id, findings) else {
                return;
            };
            set.directory_groups.push((
                origin.clone(),
                directory::Group {
                    id,
                    display_name: group.display_name,
                    members: group.members.iter().filter_map(member).collect(),
                },
            ));
        }
        _ => {
            let Some(DirectoryFile::Members { group }) = directory_file(&origin.file) else {
                return;
            };
            let Some(entry) = typed::<EntraMember>(value, shape, findings) else {
                return;
            };
            let Some(m) = member(&entry) else {
                findings.push(Finding::error(vec![key("id")], "`id` is empty".into()));
                return;
            };
            set.directory_members
                .push((origin.clone(), (directory::canonical_id(group), m)));
        }
    }
}

/// No finding is an error: the object may be loaded.
fn clean(findings: &[Finding]) -> bool {
    findings.iter().all(|f| !f.error)
}

/// Adds a role assignment. Exports hold up to a million: read without tracking the path
/// (their fields are flat, the message names the field).
fn add_role_assignment(
    at: &Place<'_>,
    value: Value,
    mut findings: Vec<Finding>,
    set: &mut PolicySet,
    diagnostics: &mut Vec<Diagnostic>,
) {
    match serde_json::from_value::<super::schema::RoleAssignment>(value) {
        Ok(ra) => {
            check_principal_type(&ra, &mut findings);
            report(at, findings, diagnostics);
            set.role_assignments.add(at.origin, &ra, diagnostics);
        }
        Err(e) => diagnostics.push(Diagnostic::error(
            at.origin.clone(),
            format!("invalid role assignment: {e}"),
        )),
    }
}

/// Reads an object of `shape` as `T`, checks it, and adds it to `list` unless a finding is
/// an error.
fn add_checked<T: DeserializeOwned>(
    origin: &Origin,
    shape: Shape,
    value: Value,
    findings: &mut Vec<Finding>,
    check: impl FnOnce(&T, &mut Vec<Finding>),
    list: &mut Vec<(Origin, T)>,
) {
    let Some(object) = typed::<T>(value, shape, findings) else {
        return;
    };
    check(&object, findings);
    if clean(findings) {
        list.push((origin.clone(), object));
    }
}

/// A schedule instance without `type`, by the field naming its schedule.
fn schedule_instance_shape(has: &dyn Fn(&str) -> bool) -> Option<Shape> {
    if !(has("principalId") && has("roleDefinitionId")) {
        return None;
    }
    if has("roleEligibilityScheduleId") {
        Some(Shape::RoleEligibilityScheduleInstance)
    } else if has("roleAssignmentScheduleId") || has("originRoleAssignmentId") {
        Some(Shape::RoleAssignmentScheduleInstance)
    } else {
        None
    }
}

/// Checks a schedule instance's window and status: `startDateTime` required, both times
/// RFC 3339, the end after the start; an unknown `status` or `principalType` is a warning.
fn check_schedule_instance(
    instance: &super::schema::ScheduleInstance,
    shape: Shape,
    findings: &mut Vec<Finding>,
) {
    use super::schema::ScheduleTime;
    use super::schema::{PRINCIPAL_TYPES, SCHEDULE_STATUSES};
    let what = shape.name();
    let time = |field: &str, time: &ScheduleTime, findings: &mut Vec<Finding>| match time {
        Some(Ok(t)) => Some(*t),
        Some(Err(e)) => {
            findings.push(Finding::error(
                vec![key(field)],
                format!("invalid {what} `{field}`: {e}"),
            ));
            None
        }
        None => None,
    };
    let start = time("startDateTime", &instance.start_date_time, findings);
    let end = time("endDateTime", &instance.end_date_time, findings);
    if instance.start_date_time.is_none() {
        findings.push(Finding::error(
            vec![key("startDateTime")],
            format!("{what} has no `startDateTime`: its window is unknown"),
        ));
    }
    if let (Some(start), Some(end)) = (start, end)
        && end <= start
    {
        findings.push(Finding::error(
            vec![key("endDateTime")],
            format!("{what} ends (`{end}`) before it starts (`{start}`): its window is empty"),
        ));
    }
    if let Some(status) = &instance.status
        && !SCHEDULE_STATUSES
            .iter()
            .any(|s| s.eq_ignore_ascii_case(status.trim()))
    {
        findings.push(Finding::warning(
            vec![key("status")],
            format!(
                "unknown status `{status}`: expected {} (treated as granting while in its \
                 window)",
                one_of(SCHEDULE_STATUSES)
            ),
        ));
    }
    if let Some(kind) = &instance.principal_type
        && !PRINCIPAL_TYPES.iter().any(|t| t.eq_ignore_ascii_case(kind))
    {
        findings.push(Finding::warning(
            vec![key("principalType")],
            format!(
                "unknown principalType `{kind}`: expected {} (ignored: scopegate matches the \
                 principal by id)",
                one_of(PRINCIPAL_TYPES)
            ),
        ));
    }
}

/// Records `findings` as diagnostics.
fn report(at: &Place<'_>, findings: Vec<Finding>, diagnostics: &mut Vec<Diagnostic>) {
    for finding in findings {
        let origin = at.at(&finding.path);
        diagnostics.push(if finding.error {
            Diagnostic::error(origin, finding.message)
        } else {
            Diagnostic::warning(origin, finding.message)
        });
    }
}

/// The typed object, or a finding at the path where the value does not fit the schema.
fn typed<T: DeserializeOwned>(
    value: Value,
    shape: Shape,
    findings: &mut Vec<Finding>,
) -> Option<T> {
    match serde_path_to_error::deserialize::<_, T>(value) {
        Ok(item) => Some(item),
        Err(e) => {
            let path: Vec<Step> = e
                .path()
                .iter()
                .filter_map(|segment| match segment {
                    serde_path_to_error::Segment::Seq { index } => Some(Step::Item(*index)),
                    serde_path_to_error::Segment::Map { key } => Some(Step::Key(key.clone())),
                    _ => None,
                })
                .collect();
            let field = if path.is_empty() {
                String::new()
            } else {
                format!(" at `{}`", path_text(&path))
            };
            findings.push(Finding::error(
                path,
                format!("invalid {}{field}: {}", shape.name(), e.into_inner()),
            ));
            None
        }
    }
}

/// A path as written in messages: `subjects[0].kind`.
fn path_text(path: &[Step]) -> String {
    let mut text = String::new();
    for step in path {
        match step {
            Step::Key(key) => {
                if !text.is_empty() {
                    text.push('.');
                }
                text.push_str(key);
            }
            Step::Item(i) => text.push_str(&format!("[{i}]")),
        }
    }
    text
}

/// Errors for fields of a Kubernetes RBAC object that `rbac.authorization.k8s.io/v1` does
/// not define, at the top level and in the nested objects it does define (not `metadata`).
fn unknown_fields(
    object: &serde_json::Map<String, Value>,
    known: &[&str],
    what: &str,
    path: &mut Vec<Step>,
    findings: &mut Vec<Finding>,
) {
    use super::schema as s;
    for (key, value) in object {
        path.push(Step::Key(key.clone()));
        if !known.contains(&key.as_str()) {
            findings.push(Finding::error(
                path.clone(),
                unknown_field(key, known, what),
            ));
        }
        let nested: Option<(&[&str], &str)> = match key.as_str() {
            "rules" => Some((s::RULE_FIELDS, "rule")),
            "subjects" => Some((s::SUBJECT_FIELDS, "subject")),
            "roleRef" => Some((s::ROLE_REF_FIELDS, "roleRef")),
            "aggregationRule" => Some((s::AGGREGATION_RULE_FIELDS, "aggregationRule")),
            "clusterRoleSelectors" => Some((s::LABEL_SELECTOR_FIELDS, "label selector")),
            "matchExpressions" => Some((s::REQUIREMENT_FIELDS, "label selector requirement")),
            _ => None,
        };
        if let (Some((fields, name)), true) = (nested, known.contains(&key.as_str())) {
            match value {
                Value::Object(inner) => unknown_fields(inner, fields, name, path, findings),
                Value::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        if let Value::Object(inner) = item {
                            path.push(Step::Item(i));
                            unknown_fields(inner, fields, name, path, findings);
                            path.pop();
                        }
                    }
                }
                _ => {}
            }
        }
        path.pop();
    }
}

fn unknown_field(key: &str, known: &[&str], what: &str) -> String {
    let near = known
        .iter()
        .filter(|k| **k != "status")
        .map(|k| {
            (
                strsim::levenshtein(&key.to_ascii_lowercase(), &k.to_ascii_lowercase()),
                k,
            )
        })
        .filter(|(distance, _)| *distance <= 2)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, k)| format!(" (did you mean `{k}`?)"))
        .unwrap_or_default();
    let expected = known
        .iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "unknown field `{key}` in a {what}{near}: expected one of {expected}; the API server \
         rejects it too (kubectl's default field validation is strict)"
    )
}

/// Values the API server rejects in a Role or ClusterRole.
fn check_role(role: &super::schema::K8sRole, findings: &mut Vec<Finding>) {
    let Some(rule) = &role.aggregation_rule else {
        return;
    };
    for (i, selector) in rule.cluster_role_selectors.iter().enumerate() {
        for (j, requirement) in selector.match_expressions.iter().enumerate() {
            const OPERATORS: &[&str] = &["In", "NotIn", "Exists", "DoesNotExist"];
            if !OPERATORS.contains(&requirement.operator.as_str()) {
                findings.push(Finding::error(
                    vec![
                        key("aggregationRule"),
                        key("clusterRoleSelectors"),
                        Step::Item(i),
                        key("matchExpressions"),
                        Step::Item(j),
                        key("operator"),
                    ],
                    format!(
                        "unknown label selector operator `{}`: expected {}",
                        requirement.operator,
                        one_of(OPERATORS)
                    ),
                ));
            }
        }
    }
}

/// A path from its parts; parts that are numbers are list positions.
/// A step to the field `name`.
fn key(name: &str) -> Step {
    Step::Key(name.to_string())
}

fn one_of(values: &[&str]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| format!("`{v}`")).collect();
    match quoted.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// Values the API server rejects in a binding's `roleRef` and `subjects`.
fn check_binding(binding: &super::schema::K8sBinding, shape: Shape, findings: &mut Vec<Finding>) {
    use super::schema::{RBAC_GROUP, SUBJECT_KINDS};
    let role_ref = &binding.role_ref;
    // Left out, it can mean only this group (the API server wants it written; scopegate
    // does not insist, so hand-written objects stay short).
    if !role_ref.api_group.is_empty() && role_ref.api_group != RBAC_GROUP {
        findings.push(Finding::error(
            vec![key("roleRef"), key("apiGroup")],
            format!(
                "roleRef apiGroup `{}` is not `{RBAC_GROUP}`",
                role_ref.api_group
            ),
        ));
    }
    let kinds: &[&str] = if shape == Shape::ClusterRoleBinding {
        &["ClusterRole"]
    } else {
        &["Role", "ClusterRole"]
    };
    if !kinds.contains(&role_ref.kind.as_str()) {
        findings.push(Finding::error(
            vec![key("roleRef"), key("kind")],
            format!(
                "unknown roleRef kind `{}` in a {}: expected {}",
                role_ref.kind,
                shape.name(),
                one_of(kinds)
            ),
        ));
    }
    for (i, subject) in binding.subjects.iter().enumerate() {
        let at = |field: &str| vec![key("subjects"), Step::Item(i), key(field)];
        let group = subject.api_group.as_str();
        match subject.kind.as_str() {
            "ServiceAccount" if !group.is_empty() => findings.push(Finding::error(
                at("apiGroup"),
                format!("a ServiceAccount subject has apiGroup `{group}`: it must be empty"),
            )),
            "User" | "Group" if !group.is_empty() && group != RBAC_GROUP => {
                findings.push(Finding::error(
                    at("apiGroup"),
                    format!(
                        "a {} subject has apiGroup `{group}`: it must be `{RBAC_GROUP}`",
                        subject.kind
                    ),
                ));
            }
            "User" | "Group" | "ServiceAccount" => {}
            kind => findings.push(Finding::error(
                at("kind"),
                format!(
                    "unknown subject kind `{kind}`: expected {}",
                    one_of(SUBJECT_KINDS)
                ),
            )),
        }
    }
}

/// A warning for a `principalType` ARM does not document. ARM declares the type an
/// extensible enum and scopegate does not decide by it, so a new value must not stop an
/// export from loading.
fn check_principal_type(ra: &super::schema::RoleAssignment, findings: &mut Vec<Finding>) {
    use super::schema::PRINCIPAL_TYPES;
    if let Some(kind) = &ra.principal_type
        && !PRINCIPAL_TYPES.iter().any(|t| t.eq_ignore_ascii_case(kind))
    {
        findings.push(Finding::warning(
            vec![key("principalType")],
            format!(
                "unknown principalType `{kind}`: expected {} (ignored: scopegate matches the \
                 principal by id)",
                one_of(PRINCIPAL_TYPES)
            ),
        ));
    }
}

/// A warning for each deny assignment principal `type` ARM does not document (see
/// [`check_principal_type`]).
fn check_deny_principal_types(da: &super::schema::DenyAssignment, findings: &mut Vec<Finding>) {
    use super::schema::DENY_PRINCIPAL_TYPES;
    for (field, list) in [
        ("principals", &da.principals),
        ("excludePrincipals", &da.exclude_principals),
    ] {
        for (i, principal) in list.iter().enumerate() {
            if let Some(kind) = &principal.kind
                && !DENY_PRINCIPAL_TYPES
                    .iter()
                    .any(|t| t.eq_ignore_ascii_case(kind))
            {
                findings.push(Finding::warning(
                    vec![key(field), Step::Item(i), key("type")],
                    format!(
                        "unknown principal type `{kind}`: expected {} (ignored: scopegate \
                         matches the principal by id)",
                        one_of(DENY_PRINCIPAL_TYPES)
                    ),
                ));
            }
        }
    }
}

/// The line and column of the value at `path` in a document (of the key, when the path ends
/// in one), found by reading the document again up to it: serde_yaml and serde_json give an
/// error, and only an error, the place it was raised. Runs only for a problem found.
fn position(source: Source<'_>, path: &[Step]) -> Option<(usize, usize)> {
    match source {
        Source::Yaml { text, document } => {
            let document = serde_yaml::Deserializer::from_str(text).nth(document)?;
            let error = serde::de::DeserializeSeed::deserialize(Seek(path), document).err()?;
            // The message carries serde_yaml's path first: `rules[0].verbs: scopegate: found at …`.
            if !error.to_string().contains(FOUND) {
                return None;
            }
            let at = error.location()?;
            Some((at.line(), at.column()))
        }
        Source::Json(text) => {
            let mut de = serde_json::Deserializer::from_str(text);
            let error = serde::de::DeserializeSeed::deserialize(Seek(path), &mut de).err()?;
            (error.to_string().contains(FOUND) && error.line() > 0)
                .then(|| (error.line(), error.column()))
        }
    }
}

/// The message of the error [`Seek`] raises at its target.
const FOUND: &str = "scopegate: found";

/// Walks a document along a path and fails at its end (see [`position`]).
struct Seek<'p>(&'p [Step]);

impl Seek<'_> {
    fn here<E: serde::de::Error>(self) -> Result<(), E> {
        if self.0.is_empty() {
            Err(E::custom(FOUND))
        } else {
            Ok(())
        }
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for Seek<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Seek<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any value")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some((Step::Key(want), rest)) = self.0.split_first() else {
            return self.here();
        };
        while let Some(matched) = map.next_key_seed(KeyIs {
            want,
            target: rest.is_empty(),
        })? {
            if matched {
                return map.next_value_seed(Seek(rest));
            }
            map.next_value::<serde::de::IgnoredAny>()?;
        }
        Ok(())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Some((Step::Item(want), rest)) = self.0.split_first() else {
            return self.here();
        };
        for _ in 0..*want {
            if seq.next_element::<serde::de::IgnoredAny>()?.is_none() {
                return Ok(());
            }
        }
        seq.next_element_seed(Seek(rest))?;
        Ok(())
    }

    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<(), E> {
        self.here()
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<(), E> {
        self.here()
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<(), E> {
        self.here()
    }

    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<(), E> {
        self.here()
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<(), E> {
        self.here()
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        self.here()
    }
}

/// A map key: whether it is `want`; fails there when the key itself is the target.
struct KeyIs<'a> {
    want: &'a str,
    target: bool,
}

impl<'de> serde::de::DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;
    fn deserialize<D: serde::Deserializer<'de>>(self, de: D) -> Result<bool, D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for KeyIs<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a map key")
    }

    fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<bool, E> {
        match (key == self.want, self.target) {
            (true, true) => Err(E::custom(FOUND)),
            (matched, _) => Ok(matched),
        }
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<bool, E> {
        Ok(false)
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

    fn yaml(text: &str) -> (PolicySet, Vec<String>) {
        let (mut set, mut diagnostics) = (PolicySet::default(), Vec::new());
        parse_text("rb.yaml", text, Format::Yaml, &mut set, &mut diagnostics);
        (set, diagnostics.iter().map(ToString::to_string).collect())
    }

    /// A RoleBinding as `kubectl get rolebinding -o yaml` prints it (with `managedFields`).
    const KUBECTL_ROLEBINDING: &str = r#"apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  annotations:
    kubectl.kubernetes.io/last-applied-configuration: |
      {"apiVersion":"rbac.authorization.k8s.io/v1","kind":"RoleBinding","metadata":{"annotations":{},"name":"finance-readers","namespace":"finance"},"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"view"},"subjects":[{"apiGroup":"rbac.authorization.k8s.io","kind":"Group","name":"finance-team"}]}
  creationTimestamp: "2025-03-04T09:12:44Z"
  labels:
    app.kubernetes.io/part-of: finance
  managedFields:
  - apiVersion: rbac.authorization.k8s.io/v1
    fieldsType: FieldsV1
    fieldsV1:
      f:metadata:
        f:annotations:
          .: {}
          f:kubectl.kubernetes.io/last-applied-configuration: {}
      f:roleRef: {}
      f:subjects: {}
    manager: kubectl-client-side-apply
    operation: Update
    time: "2025-03-04T09:12:44Z"
  name: finance-readers
  namespace: finance
  resourceVersion: "48213"
  uid: 3f0c1d52-8f7e-4b7a-9a55-0d9b1e0c6a21
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: view
subjects:
- apiGroup: rbac.authorization.k8s.io
  kind: Group
  name: finance-team
- kind: ServiceAccount
  name: reporter
  namespace: finance
"#;

    #[test]
    fn a_kubectl_export_with_managed_fields_loads_without_a_word() {
        let (set, diagnostics) = yaml(KUBECTL_ROLEBINDING);
        assert_eq!(diagnostics, Vec::<String>::new());
        assert_eq!(set.role_bindings.len(), 1);
        let list = format!(
            "apiVersion: v1\nkind: List\nmetadata:\n  resourceVersion: \"\"\nitems:\n{}",
            KUBECTL_ROLEBINDING
                .lines()
                .enumerate()
                .map(|(i, l)| format!("{}{l}\n", if i == 0 { "- " } else { "  " }))
                .collect::<String>()
        );
        let (set, diagnostics) = yaml(&list);
        assert_eq!(diagnostics, Vec::<String>::new());
        assert_eq!(set.role_bindings.len(), 1);
    }

    #[test]
    fn a_misspelled_subjects_field_is_an_error_at_its_line() {
        let text = KUBECTL_ROLEBINDING.replace("\nsubjects:\n", "\nsubject:\n");
        let line = 1 + text.lines().position(|l| l == "subject:").unwrap_or(0);
        let (set, diagnostics) = yaml(&text);
        assert_eq!(set.role_bindings.len(), 0);
        assert_eq!(diagnostics.len(), 1, "{diagnostics:?}");
        let d = &diagnostics[0];
        assert!(
            d.starts_with(&format!("error: rb.yaml: line {line}, column 1: unknown field `subject` in a RoleBinding (did you mean `subjects`?)")),
            "{d}"
        );
    }

    #[test]
    fn unknown_fields_in_subjects_rules_and_role_ref_are_errors() {
        let text = KUBECTL_ROLEBINDING
            .replace("  name: reporter", "  nmae: reporter")
            .replace("  name: view", "  name: view\n  namespace: finance");
        let (_, diagnostics) = yaml(&text);
        assert_eq!(diagnostics.len(), 2, "{diagnostics:?}");
        assert!(
            diagnostics
                .iter()
                .any(|d| d.contains("unknown field `nmae` in a subject (did you mean `name`?)")),
            "{diagnostics:?}"
        );
        assert!(
            diagnostics
                .iter()
                .any(|d| d.contains("unknown field `namespace` in a roleRef")),
            "{diagnostics:?}"
        );
        let role = "kind: Role\napiVersion: rbac.authorization.k8s.io/v1\nmetadata: {name: r, namespace: n}\nrules:\n- verbs: [get]\n  resource: [pods]\n";
        let (set, diagnostics) = yaml(role);
        assert_eq!(set.roles.len(), 0);
        assert_eq!(
            diagnostics,
            vec!["error: rb.yaml: line 6, column 3: unknown field `resource` in a rule (did you mean `resources`?): expected one of `verbs`, `apiGroups`, `resources`, `resourceNames`, `nonResourceURLs`; the API server rejects it too (kubectl's default field validation is strict)".to_string()]
        );
    }

    #[test]
    fn an_unknown_subject_kind_is_an_error_at_its_line() {
        let text = KUBECTL_ROLEBINDING.replace("  kind: Group", "  kind: Grup");
        let line = 1 + text.lines().position(|l| l == "  kind: Grup").unwrap_or(0);
        let (set, diagnostics) = yaml(&text);
        assert_eq!(set.role_bindings.len(), 0);
        assert_eq!(
            diagnostics,
            vec![format!(
                "error: rb.yaml: line {line}, column 3: unknown subject kind `Grup`: expected `User`, `Group` or `ServiceAccount`"
            )]
        );
    }

    #[test]
    fn role_ref_and_subject_values_the_api_server_rejects_are_errors() {
        for (from, to, message) in [
            (
                "  kind: ClusterRole",
                "  kind: Clusterrole",
                "unknown roleRef kind `Clusterrole` in a RoleBinding",
            ),
            (
                "  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole",
                "  apiGroup: rbac.authorization.k8s.io/v1\n  kind: ClusterRole",
                "roleRef apiGroup `rbac.authorization.k8s.io/v1` is not `rbac.authorization.k8s.io`",
            ),
            (
                "- kind: ServiceAccount",
                "- kind: ServiceAccount\n  apiGroup: rbac.authorization.k8s.io",
                "a ServiceAccount subject has apiGroup `rbac.authorization.k8s.io`: it must be empty",
            ),
        ] {
            let text = KUBECTL_ROLEBINDING.replace(from, to);
            assert_ne!(text, KUBECTL_ROLEBINDING);
            let (_, diagnostics) = yaml(&text);
            assert_eq!(diagnostics.len(), 1, "{diagnostics:?}");
            assert!(diagnostics[0].contains(message), "{diagnostics:?}");
        }
        let text = KUBECTL_ROLEBINDING
            .replace("kind: RoleBinding", "kind: ClusterRoleBinding")
            .replace("  kind: ClusterRole\n", "  kind: Role\n");
        let (_, diagnostics) = yaml(&text);
        assert!(
            diagnostics.iter().any(|d| d.contains(
                "unknown roleRef kind `Role` in a ClusterRoleBinding: expected `ClusterRole`"
            )),
            "{diagnostics:?}"
        );
    }

    #[test]
    fn a_string_for_a_list_is_reported_at_its_line() {
        let text = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: reader\nrules:\n- apiGroups: [\"\"]\n  resources: [pods]\n  verbs: get\n";
        let (set, diagnostics) = yaml(text);
        assert_eq!(set.cluster_roles.len(), 0);
        assert_eq!(diagnostics.len(), 1, "{diagnostics:?}");
        assert!(
            diagnostics[0].starts_with("error: rb.yaml: line 8, column 3: invalid ClusterRole at `rules[0].verbs`: invalid type: string \"get\", expected a sequence"),
            "{diagnostics:?}"
        );
        // In a later document of the same file, the line counts from the file's start.
        let (_, diagnostics) = yaml(&format!("{KUBECTL_ROLEBINDING}---\n{text}"));
        let line = KUBECTL_ROLEBINDING.lines().count() + 1 + 8;
        assert!(
            diagnostics[0].contains(&format!("rb.yaml: line {line}, column 3")),
            "{diagnostics:?}"
        );
    }

    #[test]
    fn json_problems_name_the_path_to_the_field() {
        let (set, diagnostics) = read_objects(
            "rb.json",
            serde_json::json!([{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": {"name": "b", "namespace": "n"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
                "subjects": [{"kind": "User", "name": "a"}, {"kind": "Grup", "name": "g"}]}]),
        );
        assert_eq!(set.role_bindings.len(), 0);
        assert_eq!(
            diagnostics.iter().map(ToString::to_string).collect::<Vec<_>>(),
            vec!["error: rb.json: $[0].subjects[1].kind: unknown subject kind `Grup`: expected `User`, `Group` or `ServiceAccount`".to_string()]
        );
    }

    #[test]
    fn json_files_give_problems_a_line() {
        let binding = r#"{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
  "metadata": {"name": "b", "namespace": "n"},
  "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
  "subject": [{"kind": "User", "name": "a"}]}"#;
        let role = r#"{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
  "metadata": {"name": "r", "namespace": "n"},
  "rules": [{"apiGroups": [""], "resources": ["pods"],
    "verbs": "get"}]}"#;
        // A top-level list, a `kubectl get -o json` List, and a plain object read whole.
        for text in [
            format!("[\n{binding},\n{role}\n]"),
            format!("{{\"kind\": \"List\", \"items\": [\n{binding},\n{role}\n]}}"),
        ] {
            let (mut set, mut diagnostics) = (PolicySet::default(), Vec::new());
            parse_json_str("x.json", &text, &mut set, &mut diagnostics);
            let lines: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
            assert_eq!(lines.len(), 2, "{lines:?}");
            assert!(
                lines[0].starts_with("error: x.json: line 5, column ")
                    && lines[0].contains("unknown field `subject`"),
                "{lines:?}"
            );
            assert!(
                lines[1].starts_with("error: x.json: line 9, column ")
                    && lines[1].contains("`rules[0].verbs`"),
                "{lines:?}"
            );
            let (mut again, mut found) = (PolicySet::default(), Vec::new());
            parse_text("x.json", &text, Format::Json, &mut again, &mut found);
            assert_eq!(found, diagnostics, "the whole parse places them alike");
        }
        let (mut set, mut diagnostics) = (PolicySet::default(), Vec::new());
        parse_json_str("one.json", role, &mut set, &mut diagnostics);
        assert!(
            diagnostics[0]
                .to_string()
                .starts_with("error: one.json: line 4, column "),
            "{diagnostics:?}"
        );
    }

    /// Problems past the first [`POSITION_LOOKUPS`] of a file name their path: each line is
    /// found by reading the text again, which a large export must not pay per object.
    #[test]
    fn a_file_gets_lines_for_its_first_problems_only() {
        let assignment = |i: usize| {
            format!(
                r#"{{"id": "/subscriptions/s/providers/Microsoft.Authorization/roleAssignments/{i}",
 "principalId": "6f0b7e4a-1c2d-4e5f-8a9b-000000000001", "principalType": "Grup",
 "roleDefinitionId": "7f6c6a51-bcf8-42ba-9220-52d62157d7db", "scope": "/subscriptions/s"}}"#
            )
        };
        let count = POSITION_LOOKUPS as usize + 8;
        let text = format!(
            "[\n{}\n]",
            (0..count).map(assignment).collect::<Vec<_>>().join(",\n")
        );
        let (mut set, mut diagnostics) = (PolicySet::default(), Vec::new());
        parse_json_str("ra.json", &text, &mut set, &mut diagnostics);
        assert_eq!(diagnostics.len(), count, "{diagnostics:?}");
        let with_line = diagnostics
            .iter()
            .filter(|d| d.origin.position.starts_with("line "))
            .count();
        assert_eq!(with_line, POSITION_LOOKUPS as usize, "{diagnostics:?}");
        let last = diagnostics
            .last()
            .map(ToString::to_string)
            .unwrap_or_default();
        assert!(
            last.contains(&format!("$[{}].principalType", count - 1)),
            "{last}"
        );
    }

    #[test]
    fn azure_objects_keep_loading_with_new_fields_and_warn_on_unknown_principal_types() {
        let (set, diagnostics) = read_objects(
            "ra.json",
            serde_json::json!([{
                "id": "/subscriptions/s/providers/Microsoft.Authorization/roleAssignments/1",
                "principalId": "6f0b7e4a-1c2d-4e5f-8a9b-000000000001",
                "principalType": "Grup",
                "roleDefinitionId": "7f6c6a51-bcf8-42ba-9220-52d62157d7db",
                "scope": "/subscriptions/s",
                "createdOn": "2025-01-01T00:00:00Z",
                "delegatedManagedIdentityResourceId": null,
                "someFieldAzureAddsNextYear": {"x": 1}
            }]),
        );
        assert_eq!(set.role_assignments.len(), 1);
        assert_eq!(
            diagnostics.iter().map(ToString::to_string).collect::<Vec<_>>(),
            vec!["warning: ra.json: $[0].principalType: unknown principalType `Grup`: expected `User`, `Group`, `ServicePrincipal`, `ForeignGroup` or `Device` (ignored: scopegate matches the principal by id)".to_string()]
        );
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

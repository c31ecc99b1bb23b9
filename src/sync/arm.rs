//! Azure Resource Manager: role definitions, role assignments, deny assignments and PIM
//! schedule instances of each configured scope (listed at, above and below it), and the
//! management group tree (`getEntities`, the list `az account management-group entities
//! list` prints), each followed through `nextLink` pages. Objects are written as ARM returns
//! them (`properties` and all), in the shapes the policy loader reads.

use super::http::{Api, ApiError, Auth, Body};
use hyper::Method;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

pub const DEFAULT_ENDPOINT: &str = "https://management.azure.com";
/// Pages followed at most in one list (a service that links pages in a circle stops here).
const MAX_PAGES: usize = 100_000;

/// The `arm:` section of the sync config.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ArmConfig {
    /// Resource Manager's address [default: https://management.azure.com].
    #[serde(default = "default_endpoint")]
    pub endpoint: String,
    /// Scopes to read (`/subscriptions/<id>`, `/providers/Microsoft.Management/managementGroups/<id>`,
    /// a resource group or a cluster): each lists what applies at, above and below it.
    pub scopes: Vec<String>,
    /// Which role definitions to write: `all` (built-in and custom), `custom` (when the
    /// built-in roles come from the shipped files) or `none`.
    #[serde(default)]
    pub role_definitions: RoleDefinitions,
    /// Write the management group tree (needed when assignments are made at management groups).
    #[serde(default = "yes")]
    pub management_groups: bool,
    /// Write PIM role assignment and eligibility schedule instances.
    #[serde(default = "yes")]
    pub pim: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RoleDefinitions {
    #[default]
    All,
    Custom,
    None,
}

fn default_endpoint() -> String {
    DEFAULT_ENDPOINT.to_string()
}

fn yes() -> bool {
    true
}

impl ArmConfig {
    /// The scope of tokens for this endpoint (`https://management.azure.com/.default`).
    pub fn token_scope(&self) -> String {
        format!("{}/.default", self.endpoint.trim_end_matches('/'))
    }

    /// Problems with the configured endpoint and scopes.
    pub fn check(&self) -> Result<(), String> {
        if !self.endpoint.starts_with("https://") {
            return Err(format!(
                "arm.endpoint `{}` is not an https:// URL",
                self.endpoint
            ));
        }
        if self.scopes.is_empty() {
            return Err(
                "arm.scopes is empty: name the subscriptions or management groups to read".into(),
            );
        }
        for scope in &self.scopes {
            let fine = scope.starts_with('/')
                && !scope.ends_with('/')
                && scope
                    .split('/')
                    .skip(1)
                    .all(|s| !s.is_empty() && s != "." && s != "..")
                && scope
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"/-_.()".contains(&b));
            if !fine {
                return Err(format!(
                    "arm.scopes: `{scope}` is not an Azure resource id (like /subscriptions/<id>)"
                ));
            }
        }
        Ok(())
    }
}

/// Everything one ARM run read, each kind without duplicates and ordered by id.
#[derive(Debug, Default)]
pub struct ArmObjects {
    pub role_definitions: Vec<Value>,
    pub role_assignments: Vec<Value>,
    pub deny_assignments: Vec<Value>,
    pub assignment_instances: Vec<Value>,
    pub eligibility_instances: Vec<Value>,
    pub management_groups: Vec<Value>,
}

/// The files an ARM run writes and what each holds.
pub const FILES: [&str; 6] = [
    "role-definitions.json",
    "role-assignments.json",
    "deny-assignments.json",
    "role-assignment-schedule-instances.json",
    "role-eligibility-schedule-instances.json",
    "management-groups.json",
];

impl ArmObjects {
    /// (file name, objects) in [`FILES`] order.
    pub fn files(&self) -> [(&'static str, &[Value]); 6] {
        [
            (FILES[0], &self.role_definitions),
            (FILES[1], &self.role_assignments),
            (FILES[2], &self.deny_assignments),
            (FILES[3], &self.assignment_instances),
            (FILES[4], &self.eligibility_instances),
            (FILES[5], &self.management_groups),
        ]
    }
}

/// Reads every kind for every scope.
pub async fn fetch(api: &Api, auth: Auth<'_>, config: &ArmConfig) -> Result<ArmObjects, ApiError> {
    let base = config.endpoint.trim_end_matches('/');
    let list = |scope: &str, kind: &str, version: &str, filter: Option<&str>| {
        let mut url =
            format!("{base}{scope}/providers/Microsoft.Authorization/{kind}?api-version={version}");
        if let Some(filter) = filter {
            url.push('&');
            url.push_str(
                &form_urlencoded::Serializer::new(String::new())
                    .append_pair("$filter", filter)
                    .finish(),
            );
        }
        url
    };
    let mut definitions = Unique::by_name();
    let mut assignments = Unique::by_id();
    let mut denies = Unique::by_id();
    let mut activations = Unique::by_id();
    let mut eligibilities = Unique::by_id();
    for scope in &config.scopes {
        let filter = match config.role_definitions {
            RoleDefinitions::All => Some(None),
            RoleDefinitions::Custom => Some(Some("type eq 'CustomRole'")),
            RoleDefinitions::None => None,
        };
        if let Some(filter) = filter {
            let url = list(scope, "roleDefinitions", "2022-04-01", filter);
            definitions.extend(pages(api, auth, Method::GET, &url, base).await?);
        }
        let url = list(scope, "roleAssignments", "2022-04-01", None);
        assignments.extend(pages(api, auth, Method::GET, &url, base).await?);
        let url = list(scope, "denyAssignments", "2022-04-01", None);
        denies.extend(pages(api, auth, Method::GET, &url, base).await?);
        if config.pim {
            let url = list(scope, "roleAssignmentScheduleInstances", "2020-10-01", None);
            activations.extend(pages(api, auth, Method::GET, &url, base).await?);
            let url = list(
                scope,
                "roleEligibilityScheduleInstances",
                "2020-10-01",
                None,
            );
            eligibilities.extend(pages(api, auth, Method::GET, &url, base).await?);
        }
    }
    let mut groups = Unique::by_id();
    if config.management_groups {
        let url =
            format!("{base}/providers/Microsoft.Management/getEntities?api-version=2020-05-01");
        groups.extend(pages(api, auth, Method::POST, &url, base).await?);
    }
    Ok(ArmObjects {
        role_definitions: definitions.into_values(),
        role_assignments: assignments.into_values(),
        deny_assignments: denies.into_values(),
        assignment_instances: activations.into_values(),
        eligibility_instances: eligibilities.into_values(),
        management_groups: groups.into_values(),
    })
}

/// Every object of a list, through its `nextLink` pages. A link to another origin than the
/// endpoint is refused: the token is for Resource Manager only.
async fn pages(
    api: &Api,
    auth: Auth<'_>,
    method: Method,
    first: &str,
    origin: &str,
) -> Result<Vec<Value>, ApiError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Page {
        #[serde(default)]
        value: Vec<Value>,
        next_link: Option<String>,
    }
    let mut objects = Vec::new();
    let mut url = first.to_string();
    let mut seen = std::collections::HashSet::new();
    // A list's pages are read with the list's own method: `getEntities` is a POST, and its
    // nextLink answers GET with 405.
    for _ in 0..MAX_PAGES {
        let body = match method {
            Method::POST => Body::Json(b"{}".to_vec()),
            _ => Body::Empty,
        };
        let page: Page = api
            .json("arm", method.clone(), &url, body, Some(auth))
            .await?;
        objects.extend(page.value);
        match page.next_link.filter(|l| !l.is_empty()) {
            None => return Ok(objects),
            Some(next) => {
                let problem = if !same_origin(&next, origin) {
                    Some("its nextLink leads to another host")
                } else if !seen.insert(next.clone()) {
                    Some("its nextLink repeats an earlier page")
                } else {
                    None
                };
                if let Some(problem) = problem {
                    return Err(ApiError::of(
                        &method,
                        &url,
                        format!("{problem}: the list is not read"),
                    ));
                }
                url = next;
            }
        }
    }
    Err(ApiError::of(
        &method,
        first,
        format!("more than {MAX_PAGES} pages"),
    ))
}

/// Whether `url` is on `origin` (`https://host[:port]`), exactly.
pub fn same_origin(url: &str, origin: &str) -> bool {
    url.strip_prefix(origin)
        .is_some_and(|rest| rest.starts_with('/') || rest.starts_with('?'))
}

/// Objects without duplicates (listed at two scopes), keyed by their lower-cased id (or, for
/// role definitions, GUID: a built-in role has an id per subscription).
struct Unique {
    objects: BTreeMap<String, Value>,
    by_name: bool,
}

impl Unique {
    fn by_id() -> Unique {
        Unique {
            objects: BTreeMap::new(),
            by_name: false,
        }
    }

    fn by_name() -> Unique {
        Unique {
            objects: BTreeMap::new(),
            by_name: true,
        }
    }

    fn extend(&mut self, values: Vec<Value>) {
        for value in values {
            let id = value.get("id").and_then(Value::as_str).unwrap_or_default();
            let key = if self.by_name {
                value
                    .get("name")
                    .and_then(Value::as_str)
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| id.rsplit('/').next().unwrap_or_default())
            } else {
                id
            }
            .to_ascii_lowercase();
            self.objects.entry(key).or_insert(value);
        }
    }

    fn into_values(self) -> Vec<Value> {
        self.objects.into_values().collect()
    }
}

/// The lower-cased ids of the objects in a written file (an ARM list file or array).
pub fn ids_in(bytes: &[u8]) -> Option<std::collections::HashSet<String>> {
    let values: Vec<Value> = serde_json::from_slice(bytes).ok()?;
    Some(
        values
            .iter()
            .filter_map(|v| v.get("id")?.as_str())
            .map(str::to_ascii_lowercase)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_must_be_resource_ids() {
        let config = |scopes: &[&str]| ArmConfig {
            endpoint: DEFAULT_ENDPOINT.into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            role_definitions: RoleDefinitions::All,
            management_groups: true,
            pim: true,
        };
        assert!(
            config(&["/subscriptions/3f2a6b1c-5d4e-4f70-8a9b-0c1d2e3f4a5b"])
                .check()
                .is_ok()
        );
        assert!(
            config(&["/providers/Microsoft.Management/managementGroups/mg-platform"])
                .check()
                .is_ok()
        );
        for bad in [
            "",
            "subscriptions/x",
            "/subscriptions/x/",
            "/subscriptions/../x",
            "/subscriptions/x?y",
            "/a b",
        ] {
            assert!(config(&[bad]).check().is_err(), "{bad}");
        }
        assert!(config(&[]).check().is_err());
        let mut plain = config(&["/subscriptions/x"]);
        plain.endpoint = "http://management.azure.com".into();
        assert!(plain.check().is_err());
    }

    #[test]
    fn links_stay_on_the_endpoint() {
        let arm = "https://management.azure.com";
        assert!(same_origin(
            "https://management.azure.com/subscriptions/x?$skiptoken=1",
            arm
        ));
        assert!(!same_origin(
            "https://management.azure.com.evil.example/x",
            arm
        ));
        assert!(!same_origin("https://evil.example/x", arm));
        assert!(!same_origin("http://management.azure.com/x", arm));
    }

    #[test]
    fn duplicates_across_scopes_are_kept_once() {
        let mut defs = Unique::by_name();
        defs.extend(vec![
            serde_json::json!({"id": "/subscriptions/a/providers/Microsoft.Authorization/roleDefinitions/G1", "name": "G1"}),
            serde_json::json!({"id": "/subscriptions/b/providers/Microsoft.Authorization/roleDefinitions/g1", "name": "g1"}),
            serde_json::json!({"id": "/providers/Microsoft.Authorization/roleDefinitions/g2"}),
        ]);
        assert_eq!(defs.into_values().len(), 2);
        let mut assignments = Unique::by_id();
        assignments.extend(vec![
            serde_json::json!({"id": "/subscriptions/a/providers/Microsoft.Authorization/roleAssignments/X"}),
            serde_json::json!({"id": "/subscriptions/A/providers/Microsoft.Authorization/roleAssignments/x"}),
        ]);
        assert_eq!(assignments.into_values().len(), 1);
    }
}

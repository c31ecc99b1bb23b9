//! Microsoft Graph: the directory snapshot (users with their account status, groups and
//! their direct members) by delta queries. The first run reads everything through
//! `/users/delta` and `/groups/delta` (`members@delta` carries memberships) following
//! `@odata.nextLink`; its last page's `@odata.deltaLink` is kept, so each later run moves only
//! what changed (added, updated, `@removed`). A delta link Graph no longer honours (410 Gone,
//! `syncStateNotFound`, `resyncRequired`) starts a full read again. Changes are applied to a
//! copy and kept only when the whole round was read.

use super::arm::same_origin;
use super::http::{Api, ApiError, Auth};
use super::output::to_json;
use hyper::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

pub const DEFAULT_ENDPOINT: &str = "https://graph.microsoft.com";
const MAX_PAGES: usize = 1_000_000;
/// The delta links, beside the published files (a name the policy loader skips).
pub const DELTA_FILE: &str = ".graph-delta.json";
pub const USERS_FILE: &str = "entra-users.json";
pub const GROUPS_FILE: &str = "entra-groups.json";
pub const MEMBERS_DIR: &str = "entra-group-members";

/// The `graph:` section of the sync config.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GraphConfig {
    /// Graph's address [default: https://graph.microsoft.com].
    #[serde(default = "default_endpoint")]
    pub endpoint: String,
}

impl Default for GraphConfig {
    fn default() -> Self {
        GraphConfig {
            endpoint: default_endpoint(),
        }
    }
}

fn default_endpoint() -> String {
    DEFAULT_ENDPOINT.to_string()
}

impl GraphConfig {
    pub fn token_scope(&self) -> String {
        format!("{}/.default", self.endpoint.trim_end_matches('/'))
    }

    pub fn check(&self) -> Result<(), String> {
        if self.endpoint.starts_with("https://") {
            Ok(())
        } else {
            Err(format!(
                "graph.endpoint `{}` is not an https:// URL",
                self.endpoint
            ))
        }
    }
}

/// The directory as the last complete round left it, and where the next round starts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Directory {
    /// Lower-cased id -> the user's properties.
    pub users: BTreeMap<String, Map<String, Value>>,
    pub groups: BTreeMap<String, Group>,
    pub delta: DeltaLinks,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Group {
    pub properties: Map<String, Value>,
    /// Lower-cased member id -> its `@odata.type`.
    pub members: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, Deserialize)]
pub struct DeltaLinks {
    pub users: Option<String>,
    pub groups: Option<String>,
}

/// How a round went: `full` when it read everything.
pub struct Round {
    pub directory: Directory,
    pub full: bool,
}

/// One round: from the held delta links, or a full read when there are none or Graph refuses
/// them.
pub async fn fetch(
    api: &Api,
    auth: Auth<'_>,
    config: &GraphConfig,
    held: &Directory,
) -> Result<Round, ApiError> {
    let base = config.endpoint.trim_end_matches('/');
    // Links saved for another endpoint (the config changed) are not followed with its token.
    let resumable = [&held.delta.users, &held.delta.groups]
        .iter()
        .all(|link| link.as_deref().is_some_and(|l| same_origin(l, base)));
    if resumable {
        let mut next = held.clone();
        match apply_rounds(api, auth, base, &mut next).await {
            Ok(()) => {
                return Ok(Round {
                    directory: next,
                    full: false,
                });
            }
            Err(e) if resync_needed(&e) => {
                tracing::info!(
                    "Graph no longer honours the delta links ({e}): reading the whole directory"
                );
            }
            Err(e) => return Err(e),
        }
    }
    let mut fresh = Directory::default();
    apply_rounds(api, auth, base, &mut fresh).await?;
    Ok(Round {
        directory: fresh,
        full: true,
    })
}

async fn apply_rounds(
    api: &Api,
    auth: Auth<'_>,
    base: &str,
    directory: &mut Directory,
) -> Result<(), ApiError> {
    let users_start = directory.delta.users.clone().unwrap_or_else(|| {
        format!("{base}/v1.0/users/delta?$select=id,displayName,userPrincipalName,accountEnabled")
    });
    let (users, users_link) = round(api, auth, &users_start, base).await?;
    let groups_start = directory
        .delta
        .groups
        .clone()
        .unwrap_or_else(|| format!("{base}/v1.0/groups/delta?$select=id,displayName,members"));
    let (groups, groups_link) = round(api, auth, &groups_start, base).await?;
    for user in users {
        apply_user(directory, user);
    }
    for group in groups {
        apply_group(directory, group);
    }
    directory.delta = DeltaLinks {
        users: Some(users_link),
        groups: Some(groups_link),
    };
    Ok(())
}

/// Every change of a delta round, and the link the next round starts from.
async fn round(
    api: &Api,
    auth: Auth<'_>,
    start: &str,
    origin: &str,
) -> Result<(Vec<Map<String, Value>>, String), ApiError> {
    #[derive(Deserialize)]
    struct Page {
        #[serde(default)]
        value: Vec<Map<String, Value>>,
        #[serde(rename = "@odata.nextLink")]
        next_link: Option<String>,
        #[serde(rename = "@odata.deltaLink")]
        delta_link: Option<String>,
    }
    let mut changes = Vec::new();
    let mut url = start.to_string();
    let refuse = |url: &str, message: &str| ApiError::of(&Method::GET, url, message);
    for _ in 0..MAX_PAGES {
        let page: Page = api.get_json("graph", &url, auth).await?;
        changes.extend(page.value);
        match (page.next_link, page.delta_link) {
            (Some(next), _) => {
                if !same_origin(&next, origin) || next == url {
                    return Err(refuse(&url, "its @odata.nextLink leads elsewhere or back"));
                }
                url = next;
            }
            (None, Some(delta)) => {
                if !same_origin(&delta, origin) {
                    return Err(refuse(&url, "its @odata.deltaLink leads to another host"));
                }
                return Ok((changes, delta));
            }
            (None, None) => {
                return Err(refuse(
                    &url,
                    "the last page has neither @odata.nextLink nor @odata.deltaLink",
                ));
            }
        }
    }
    Err(refuse(start, "too many pages"))
}

fn resync_needed(e: &ApiError) -> bool {
    e.status == Some(StatusCode::GONE)
        || e.code.as_deref().is_some_and(|c| {
            c.eq_ignore_ascii_case("syncStateNotFound")
                || c.eq_ignore_ascii_case("resyncRequired")
                || c.eq_ignore_ascii_case("syncStateInvalid")
        })
}

fn id_of(object: &Map<String, Value>) -> Option<String> {
    object
        .get("id")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
        .map(str::to_ascii_lowercase)
}

fn removed(object: &Map<String, Value>) -> bool {
    object.contains_key("@removed")
}

fn apply_user(directory: &mut Directory, change: Map<String, Value>) {
    let Some(id) = id_of(&change) else { return };
    if removed(&change) {
        directory.users.remove(&id);
        return;
    }
    // An update names the properties that changed: merged over what is held.
    let user = directory.users.entry(id).or_default();
    for (k, v) in change {
        if !k.starts_with('@') {
            user.insert(k, v);
        }
    }
}

fn apply_group(directory: &mut Directory, change: Map<String, Value>) {
    let Some(id) = id_of(&change) else { return };
    if removed(&change) {
        directory.groups.remove(&id);
        return;
    }
    let group = directory.groups.entry(id).or_default();
    for (k, v) in change {
        if k == "members@delta" {
            for member in v.as_array().into_iter().flatten() {
                let Some(member) = member.as_object() else {
                    continue;
                };
                let Some(member_id) = id_of(member) else {
                    continue;
                };
                if removed(member) {
                    group.members.remove(&member_id);
                } else {
                    let kind = member
                        .get("@odata.type")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    group.members.insert(member_id, kind.to_string());
                }
            }
        } else if !k.starts_with('@') && k != "members" {
            group.properties.insert(k, v);
        }
    }
}

impl Directory {
    /// The files of the directory snapshot: users, groups, and a member file per group with
    /// members (complete, unlike `$expand`'s first 20).
    pub fn files(&self) -> Vec<(String, Vec<u8>)> {
        let users: Vec<&Map<String, Value>> = self.users.values().collect();
        let groups: Vec<&Map<String, Value>> =
            self.groups.values().map(|g| &g.properties).collect();
        let mut files = vec![
            (USERS_FILE.to_string(), to_json(&users)),
            (GROUPS_FILE.to_string(), to_json(&groups)),
        ];
        for (id, group) in &self.groups {
            if group.members.is_empty() {
                continue;
            }
            let members: Vec<Value> = group
                .members
                .iter()
                .map(|(id, kind)| serde_json::json!({"@odata.type": kind, "id": id}))
                .collect();
            files.push((format!("{MEMBERS_DIR}/{id}.json"), to_json(&members)));
        }
        files
    }

    /// The directory as published files and delta links describe it (`None` when they do not:
    /// the next round reads everything).
    pub fn restore(published: &std::path::Path, delta: &[u8]) -> Option<Directory> {
        let delta: DeltaLinks = serde_json::from_slice(delta).ok()?;
        let read = |name: &str| -> Option<Vec<Map<String, Value>>> {
            serde_json::from_slice(&std::fs::read(published.join(name)).ok()?).ok()
        };
        let mut directory = Directory {
            delta,
            ..Directory::default()
        };
        for user in read(USERS_FILE)? {
            directory.users.insert(id_of(&user)?, user);
        }
        for group in read(GROUPS_FILE)? {
            directory.groups.insert(
                id_of(&group)?,
                Group {
                    properties: group,
                    members: BTreeMap::new(),
                },
            );
        }
        if let Ok(entries) = std::fs::read_dir(published.join(MEMBERS_DIR)) {
            for entry in entries {
                let name = entry.ok()?.file_name().into_string().ok()?;
                let id = name.strip_suffix(".json")?.to_string();
                let members = read(&format!("{MEMBERS_DIR}/{name}"))?;
                let group = directory.groups.get_mut(&id)?;
                for m in members {
                    let kind = m
                        .get("@odata.type")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    group.members.insert(id_of(&m)?, kind.to_string());
                }
            }
        }
        Some(directory)
    }

    /// Whether `other` holds the same users, groups and members (delta links aside).
    pub fn same_objects(&self, other: &Directory) -> bool {
        self.users == other.users && self.groups == other.groups
    }

    pub fn memberships(&self) -> usize {
        self.groups.values().map(|g| g.members.len()).sum()
    }

    /// Memberships held here that `next` no longer has.
    pub fn memberships_not_in(&self, next: &Directory) -> usize {
        self.groups
            .iter()
            .map(|(id, group)| match next.groups.get(id) {
                Some(kept) => group
                    .members
                    .keys()
                    .filter(|m| !kept.members.contains_key(*m))
                    .count(),
                None => group.members.len(),
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn delta_changes_add_update_and_remove() {
        let mut d = Directory::default();
        apply_user(
            &mut d,
            object(json!({"id": "U1", "userPrincipalName": "a@x", "accountEnabled": true})),
        );
        apply_user(
            &mut d,
            object(json!({"id": "u2", "userPrincipalName": "b@x", "accountEnabled": true})),
        );
        apply_user(&mut d, object(json!({"id": "u1", "accountEnabled": false})));
        apply_user(
            &mut d,
            object(json!({"id": "u2", "@removed": {"reason": "changed"}})),
        );
        assert_eq!(d.users.len(), 1);
        assert_eq!(d.users["u1"]["userPrincipalName"], "a@x");
        assert_eq!(d.users["u1"]["accountEnabled"], false);

        apply_group(
            &mut d,
            object(json!({"id": "g1", "displayName": "devs", "members@delta": [
            {"@odata.type": "#microsoft.graph.user", "id": "u1"}]})),
        );
        // The same group again on a later page with more members.
        apply_group(
            &mut d,
            object(json!({"id": "g1", "members@delta": [
            {"@odata.type": "#microsoft.graph.group", "id": "g2"}]})),
        );
        apply_group(&mut d, object(json!({"id": "g2", "displayName": "ops"})));
        assert_eq!(d.groups["g1"].members.len(), 2);
        assert_eq!(d.groups["g1"].properties["displayName"], "devs");
        apply_group(
            &mut d,
            object(json!({"id": "g1", "members@delta": [
            {"@odata.type": "#microsoft.graph.user", "id": "u1", "@removed": {"reason": "deleted"}}]})),
        );
        assert_eq!(d.groups["g1"].members.keys().collect::<Vec<_>>(), ["g2"]);
        apply_group(
            &mut d,
            object(json!({"id": "g2", "@removed": {"reason": "deleted"}})),
        );
        assert!(!d.groups.contains_key("g2"));
    }

    #[test]
    fn published_files_restore_the_same_directory() {
        let mut d = Directory::default();
        apply_user(
            &mut d,
            object(json!({"id": "u1", "userPrincipalName": "a@x", "accountEnabled": true})),
        );
        apply_group(
            &mut d,
            object(json!({"id": "g1", "displayName": "devs", "members@delta": [
            {"@odata.type": "#microsoft.graph.user", "id": "u1"}]})),
        );
        apply_group(&mut d, object(json!({"id": "g3", "displayName": "empty"})));
        d.delta = DeltaLinks {
            users: Some("https://graph/users?$deltatoken=1".into()),
            groups: Some("https://graph/groups?$deltatoken=2".into()),
        };
        let dir = tempfile::tempdir().unwrap();
        for (name, bytes) in d.files() {
            let path = dir.path().join(&name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, bytes).unwrap();
        }
        let delta = serde_json::to_vec(&d.delta).unwrap();
        assert_eq!(Directory::restore(dir.path(), &delta), Some(d));
        assert_eq!(Directory::restore(dir.path(), b"not json"), None);
    }
}

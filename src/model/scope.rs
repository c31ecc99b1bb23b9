//! Azure resource scopes: `/`, management groups, subscriptions, resource groups, resources and
//! their child scopes (an AKS cluster's `namespaces/<ns>`).
//!
//! Scopes are compared segment by segment and case-insensitively, so an assignment on `aks1`
//! never covers `aks10`. Management groups are not in the resource id at all: a subscription's
//! place in the management group tree is separate input ([`ManagementGroups`]).

use std::collections::HashMap;
use std::fmt;

/// A parsed, normalised scope. The key is the lower-cased path without a trailing slash
/// (`/` for the root), which is what scopes are compared and indexed by.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    key: String,
}

/// Why a scope string is not a scope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    #[error("scope `{0}` does not start with `/`")]
    NotAbsolute(String),
    #[error("scope `{0}` has an empty path segment")]
    EmptySegment(String),
    #[error("scope `{0}` must be `/`, a management group, or start with `/subscriptions/<id>`")]
    UnknownRoot(String),
    #[error("scope `{0}` has a type segment without a name")]
    MissingName(String),
    #[error("scope `{0}` has a `.` or `..` segment")]
    DotSegment(String),
}

const MG_PREFIX: &str = "/providers/microsoft.management/managementgroups/";

impl Scope {
    /// The tenant root scope `/`.
    pub fn root() -> Scope {
        Scope { key: "/".into() }
    }

    /// Parses an ARM scope. Accepts `/`, `/providers/Microsoft.Management/managementGroups/<mg>`
    /// and `/subscriptions/<id>[/<type>/<name>…]` with an even number of segments.
    pub fn parse(text: &str) -> Result<Scope, ScopeError> {
        let trimmed = text.trim();
        if trimmed == "/" {
            return Ok(Scope::root());
        }
        let body = trimmed
            .strip_prefix('/')
            .ok_or_else(|| ScopeError::NotAbsolute(text.into()))?;
        let body = body.strip_suffix('/').unwrap_or(body);
        let segments: Vec<&str> = body.split('/').collect();
        if segments.iter().any(|s| s.is_empty()) {
            return Err(ScopeError::EmptySegment(text.into()));
        }
        if segments.iter().any(|s| *s == "." || *s == "..") {
            return Err(ScopeError::DotSegment(text.into()));
        }
        let key = format!("/{}", segments.join("/")).to_ascii_lowercase();
        if let Some(mg) = key.strip_prefix(MG_PREFIX) {
            if mg.contains('/') {
                return Err(ScopeError::UnknownRoot(text.into()));
            }
            return Ok(Scope { key });
        }
        if !segments
            .first()
            .is_some_and(|s| s.eq_ignore_ascii_case("subscriptions"))
        {
            return Err(ScopeError::UnknownRoot(text.into()));
        }
        if !segments.len().is_multiple_of(2) {
            return Err(ScopeError::MissingName(text.into()));
        }
        if segments.len() >= 2
            && segments
                .get(segments.len() - 2)
                .is_some_and(|s| s.eq_ignore_ascii_case("providers"))
        {
            return Err(ScopeError::MissingName(text.into()));
        }
        Ok(Scope { key })
    }

    /// The normalised key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The management group name, if this is a management group scope.
    pub fn management_group(&self) -> Option<&str> {
        self.key.strip_prefix(MG_PREFIX)
    }

    /// The subscription id (lower-cased), if the scope is at or below a subscription.
    pub fn subscription(&self) -> Option<&str> {
        let rest = self.key.strip_prefix("/subscriptions/")?;
        Some(rest.split('/').next().unwrap_or(rest))
    }

    /// The scope of management group `name`.
    pub fn of_management_group(name: &str) -> Scope {
        management_group_scope(name)
    }

    /// This scope's child `<kind>/<name>` (for `namespaces/<ns>` below a cluster).
    pub fn child(&self, kind: &str, name: &str) -> Scope {
        let base = if self.key == "/" { "" } else { &self.key };
        Scope {
            key: format!("{base}/{kind}/{name}").to_ascii_lowercase(),
        }
    }

    /// The scope itself and every ancestor, nearest first, ending at `/`. Resource-id
    /// ancestors are the even-length segment prefixes; management groups come from `groups`.
    pub fn ancestors(&self, groups: &ManagementGroups) -> Vec<Scope> {
        let mut chain = Vec::new();
        if let Some(mg) = self.management_group() {
            chain.push(self.clone());
            chain.extend(groups.ancestors_of_group(mg).map(management_group_scope));
        } else if self.key != "/" {
            let segments: Vec<&str> = self.key.trim_start_matches('/').split('/').collect();
            let mut len = segments.len();
            while len >= 2 {
                let prefix = segments.get(..len).unwrap_or_default();
                // `…/providers/<namespace>` is a path step, not a scope.
                if segments.get(len - 2) != Some(&"providers") {
                    chain.push(Scope {
                        key: format!("/{}", prefix.join("/")),
                    });
                }
                len -= 2;
            }
            if let Some(sub) = self.subscription() {
                chain.extend(
                    groups
                        .ancestors_of_subscription(sub)
                        .map(management_group_scope),
                );
            }
        }
        chain.push(Scope::root());
        chain
    }

    /// The scope an ARM extension resource's id lies at: `<scope>` of
    /// `<scope>/providers/Microsoft.Authorization/<kind>/<name>`, `kind` being for example
    /// `roleAssignments`. None when the id is not of that form.
    pub fn of_extension_id(id: &str, kind: &str) -> Option<Scope> {
        let lower = id.trim().to_ascii_lowercase();
        let marker = format!(
            "/providers/microsoft.authorization/{}/",
            kind.to_ascii_lowercase()
        );
        let at = lower.rfind(&marker)?;
        let name = lower.get(at + marker.len()..)?;
        if name.is_empty() || name.contains('/') {
            return None;
        }
        let scope = lower.get(..at)?;
        Scope::parse(if scope.is_empty() { "/" } else { scope }).ok()
    }

    /// Whether `self` is `other` or one of its ancestors.
    pub fn covers(&self, other: &Scope, groups: &ManagementGroups) -> bool {
        other.ancestors(groups).iter().any(|s| s == self)
    }
}

fn management_group_scope(name: &str) -> Scope {
    Scope {
        key: format!("{MG_PREFIX}{}", name.to_ascii_lowercase()),
    }
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.key)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key)
    }
}

/// The management group tree: each subscription's and each group's parent group, by
/// lower-cased name. Cycles are cut when walking (validation reports them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManagementGroups {
    subscription_parent: HashMap<String, String>,
    group_parent: HashMap<String, String>,
}

impl ManagementGroups {
    /// Records that `subscription` sits directly below management group `group`.
    pub fn set_subscription_parent(&mut self, subscription: &str, group: &str) {
        self.subscription_parent.insert(
            subscription.to_ascii_lowercase(),
            group.to_ascii_lowercase(),
        );
    }

    /// Records that management group `child` sits directly below `parent`.
    pub fn set_group_parent(&mut self, child: &str, parent: &str) {
        self.group_parent
            .insert(child.to_ascii_lowercase(), parent.to_ascii_lowercase());
    }

    /// Builds the tree from a subscription's ancestry list, nearest group first (the shape
    /// of the conformance vectors' `management_group_ancestry`).
    pub fn add_ancestry(&mut self, subscription: &str, chain: &[String]) {
        if let Some(first) = chain.first() {
            self.set_subscription_parent(subscription, first);
        }
        for pair in chain.windows(2) {
            if let [child, parent] = pair {
                self.set_group_parent(child, parent);
            }
        }
    }

    /// The subscription's management groups, nearest first.
    pub fn ancestors_of_subscription<'a>(
        &'a self,
        subscription: &str,
    ) -> impl Iterator<Item = &'a str> {
        let first = self
            .subscription_parent
            .get(subscription)
            .map(String::as_str);
        self.walk(first)
    }

    /// A management group's ancestors (not itself), nearest first.
    pub fn ancestors_of_group<'a>(&'a self, group: &str) -> impl Iterator<Item = &'a str> {
        let first = self.group_parent.get(group).map(String::as_str);
        self.walk(first)
    }

    fn walk<'a>(&'a self, first: Option<&'a str>) -> impl Iterator<Item = &'a str> {
        let limit = self.group_parent.len() + 1;
        std::iter::successors(first, move |g| {
            self.group_parent.get(*g).map(String::as_str)
        })
        .take(limit)
    }

    /// Whether the tree has no entries.
    pub fn is_empty(&self) -> bool {
        self.subscription_parent.is_empty() && self.group_parent.is_empty()
    }

    /// A management group whose parent chain loops, if any.
    pub fn find_cycle(&self) -> Option<&str> {
        self.group_parent.keys().find_map(|start| {
            let mut seen = std::collections::HashSet::new();
            let mut at = start.as_str();
            while let Some(parent) = self.group_parent.get(at) {
                if !seen.insert(at) {
                    return Some(start.as_str());
                }
                at = parent;
            }
            None
        })
    }
}

/// Whether `name` is a DNS-1123 label, the form every Kubernetes namespace name has.
pub fn is_dns1123_label(name: &str) -> bool {
    let bytes = name.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes.first().is_some_and(alnum)
        && bytes.last().is_some_and(alnum)
        && bytes.iter().all(|b| alnum(b) || *b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_prefix_not_string_prefix() {
        let g = ManagementGroups::default();
        let aks1 = Scope::parse("/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks1").unwrap();
        let aks10_ns = Scope::parse("/subscriptions/S/resourcegroups/RG/providers/Microsoft.ContainerService/managedClusters/aks10/namespaces/dev").unwrap();
        assert!(!aks1.covers(&aks10_ns, &g));
        assert!(aks1.covers(&aks1.child("namespaces", "dev"), &g));
        assert!(
            Scope::parse("/subscriptions/s")
                .unwrap()
                .covers(&aks10_ns, &g)
        );
        assert!(Scope::root().covers(&aks10_ns, &g));
    }

    #[test]
    fn management_groups_come_from_the_tree() {
        let mut g = ManagementGroups::default();
        g.add_ancestry("s1", &["mg-a".into(), "root-mg".into()]);
        let mg = Scope::parse("/providers/Microsoft.Management/managementGroups/ROOT-mg").unwrap();
        assert!(mg.covers(
            &Scope::parse("/subscriptions/S1/resourceGroups/x").unwrap(),
            &g
        ));
        assert!(!mg.covers(&Scope::parse("/subscriptions/s2").unwrap(), &g));
    }

    /// A management group's chain: itself, its ancestors nearest first, then `/`.
    #[test]
    fn a_management_groups_ancestors_come_from_the_tree() {
        let mut g = ManagementGroups::default();
        g.add_ancestry("s1", &["mg-a".into(), "mg-b".into(), "root-mg".into()]);
        let chain: Vec<String> =
            Scope::parse("/providers/Microsoft.Management/managementGroups/MG-A")
                .unwrap()
                .ancestors(&g)
                .iter()
                .map(ToString::to_string)
                .collect();
        let mg = |name: &str| format!("/providers/microsoft.management/managementgroups/{name}");
        assert_eq!(
            chain,
            [mg("mg-a"), mg("mg-b"), mg("root-mg"), "/".to_string()]
        );
    }

    #[test]
    fn extension_ids_name_their_scope() {
        let scope = |s: &str| Scope::parse(s).expect("scope");
        let id = "/subscriptions/S/resourceGroups/RG/providers/Microsoft.Authorization/roleAssignments/g1";
        assert_eq!(
            Scope::of_extension_id(id, "roleAssignments"),
            Some(scope("/subscriptions/s/resourcegroups/rg"))
        );
        assert_eq!(
            Scope::of_extension_id(
                "/providers/Microsoft.Authorization/denyAssignments/d1",
                "denyAssignments"
            ),
            Some(Scope::root())
        );
        assert_eq!(Scope::of_extension_id(id, "denyAssignments"), None);
        assert_eq!(Scope::of_extension_id("ra-1", "roleAssignments"), None);
        assert_eq!(
            Scope::of_extension_id(&format!("{id}/x"), "roleAssignments"),
            None
        );
    }

    #[test]
    fn bad_scopes_are_errors() {
        assert!(Scope::parse("subscriptions/x").is_err());
        assert!(Scope::parse("/subscriptions/x/resourceGroups").is_err());
        assert!(Scope::parse("/subscriptions//x").is_err());
        assert!(Scope::parse("/foo/bar").is_err());
        assert!(Scope::parse("/subscriptions/x/../y").is_err());
    }

    #[test]
    fn dns_labels() {
        assert!(is_dns1123_label("finance-app"));
        assert!(!is_dns1123_label("../x"));
        assert!(!is_dns1123_label("Dev"));
        assert!(!is_dns1123_label("-a"));
        assert!(!is_dns1123_label(""));
    }
}

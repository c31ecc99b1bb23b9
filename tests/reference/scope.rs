//! ARM scopes: `/` ⊃ management groups (nested) ⊃ subscriptions ⊃ resource groups ⊃
//! resources ⊃ the cluster's `namespaces/<ns>`. Below a subscription containment is a
//! case-insensitive segment prefix; management group containment comes from the policy's
//! management group entities and subscription ancestry.

use scopegate::policy::PolicySet;
use std::collections::BTreeMap;

/// Parents: subscription or management group (lower-cased) -> its parent management group.
#[derive(Debug, Default)]
pub struct Hierarchy {
    subscription_parent: BTreeMap<String, String>,
    group_parent: BTreeMap<String, String>,
}

fn last_segment(id: &str) -> String {
    id.trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_lowercase()
}

impl Hierarchy {
    pub fn of(set: &PolicySet) -> Hierarchy {
        let mut h = Hierarchy::default();
        for (subscription, chain) in &set.management_group_ancestry {
            let mut child = (true, subscription.to_lowercase());
            for group in chain {
                let group = group.to_lowercase();
                match &child {
                    (true, s) => h.subscription_parent.insert(s.clone(), group.clone()),
                    (false, g) => h.group_parent.insert(g.clone(), group.clone()),
                };
                child = (false, group);
            }
        }
        for (_, entity) in &set.management_groups {
            let Some(parent) = entity.parent.as_ref().and_then(|p| p.id.as_deref()) else {
                continue;
            };
            let parent = last_segment(parent);
            let name = if entity.name.is_empty() {
                last_segment(&entity.id)
            } else {
                entity.name.to_lowercase()
            };
            if entity.kind.to_lowercase().ends_with("/subscriptions") {
                h.subscription_parent.insert(name, parent);
            } else {
                h.group_parent.insert(name, parent);
            }
        }
        h
    }

    /// Every management group above a subscription or group, nearest first.
    fn groups_above<'a>(&'a self, mut next: Option<&'a String>) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        while let Some(g) = next {
            if out.contains(g) {
                break;
            }
            out.push(g.clone());
            next = self.group_parent.get(g);
        }
        out
    }
}

/// Lower-cased, non-empty segments.
fn segments(scope: &str) -> Vec<String> {
    scope
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_lowercase)
        .collect()
}

fn management_group(segs: &[String]) -> Option<&str> {
    match segs {
        [p, ns, mgs, name]
            if p == "providers" && ns == "microsoft.management" && mgs == "managementgroups" =>
        {
            Some(name)
        }
        _ => None,
    }
}

/// Whether scope `a` is `b` or an ancestor of it.
pub fn covers(a: &str, b: &str, hierarchy: &Hierarchy) -> bool {
    let (sa, sb) = (segments(a), segments(b));
    if sa.is_empty() {
        return true;
    }
    if let Some(group) = management_group(&sa) {
        let above = match (management_group(&sb), sb.as_slice()) {
            (Some(g), _) => {
                let mut chain = vec![g.to_string()];
                chain.extend(hierarchy.groups_above(hierarchy.group_parent.get(g)));
                chain
            }
            (None, [s, id, ..]) if s == "subscriptions" => {
                hierarchy.groups_above(hierarchy.subscription_parent.get(id))
            }
            _ => Vec::new(),
        };
        return above.iter().any(|g| g == group);
    }
    sa.len() <= sb.len() && sa.iter().zip(&sb).all(|(x, y)| x == y)
}

/// Whether two scopes are the same (case-insensitive).
pub fn same(a: &str, b: &str) -> bool {
    segments(a) == segments(b)
}

//! The concrete actions most requests map to, interned once per generation with the roles
//! that grant each.
//!
//! A request on a built-in Kubernetes resource (or on one a role names literally) then takes
//! the shared action text instead of allocating its own, and an assignment is checked by one
//! bit instead of matching its role's patterns. Anything else takes the general path; the
//! answer is the same either way (`tests/differential.rs` compares against the reference
//! evaluator, which never interns).

use super::compiled::{Deny, Role};
use crate::model::mapping;
use crate::model::name_hash::{mix, short_eq};
use crate::model::{ActionPattern, ResourceAttributes};
use hashbrown::HashTable;
use rustc_hash::FxHashMap;

/// Resources served by kube-apiserver itself (Kubernetes 1.36), by API group.
const BUILT_IN: &[(&str, &[&str])] = &[
    (
        "",
        &[
            "bindings",
            "componentstatuses",
            "configmaps",
            "endpoints",
            "events",
            "limitranges",
            "namespaces",
            "nodes",
            "persistentvolumeclaims",
            "persistentvolumes",
            "pods",
            "podtemplates",
            "replicationcontrollers",
            "resourcequotas",
            "secrets",
            "serviceaccounts",
            "services",
        ],
    ),
    (
        "admissionregistration.k8s.io",
        &[
            "mutatingadmissionpolicies",
            "mutatingadmissionpolicybindings",
            "mutatingwebhookconfigurations",
            "validatingadmissionpolicies",
            "validatingadmissionpolicybindings",
            "validatingwebhookconfigurations",
        ],
    ),
    ("apiextensions.k8s.io", &["customresourcedefinitions"]),
    ("apiregistration.k8s.io", &["apiservices"]),
    (
        "apps",
        &[
            "controllerrevisions",
            "daemonsets",
            "deployments",
            "replicasets",
            "statefulsets",
        ],
    ),
    (
        "authentication.k8s.io",
        &["selfsubjectreviews", "tokenreviews"],
    ),
    (
        "authorization.k8s.io",
        &[
            "localsubjectaccessreviews",
            "selfsubjectaccessreviews",
            "selfsubjectrulesreviews",
            "subjectaccessreviews",
        ],
    ),
    ("autoscaling", &["horizontalpodautoscalers"]),
    ("batch", &["cronjobs", "jobs"]),
    (
        "certificates.k8s.io",
        &["certificatesigningrequests", "clustertrustbundles"],
    ),
    ("coordination.k8s.io", &["leases", "leasecandidates"]),
    ("discovery.k8s.io", &["endpointslices"]),
    ("events.k8s.io", &["events"]),
    (
        "flowcontrol.apiserver.k8s.io",
        &["flowschemas", "prioritylevelconfigurations"],
    ),
    ("metrics.k8s.io", &["nodes", "pods"]),
    (
        "networking.k8s.io",
        &[
            "ingressclasses",
            "ingresses",
            "ipaddresses",
            "networkpolicies",
            "servicecidrs",
        ],
    ),
    ("node.k8s.io", &["runtimeclasses"]),
    ("policy", &["poddisruptionbudgets"]),
    (
        "rbac.authorization.k8s.io",
        &[
            "clusterrolebindings",
            "clusterroles",
            "rolebindings",
            "roles",
        ],
    ),
    (
        "resource.k8s.io",
        &[
            "deviceclasses",
            "resourceclaims",
            "resourceclaimtemplates",
            "resourceslices",
        ],
    ),
    ("scheduling.k8s.io", &["priorityclasses"]),
    (
        "storage.k8s.io",
        &[
            "csidrivers",
            "csinodes",
            "csistoragecapacities",
            "storageclasses",
            "volumeattachments",
            "volumeattributesclasses",
        ],
    ),
];

/// For a request on `resource` in `group` that kube-apiserver does not serve, the built-in
/// resource it likely means: the plural of a singular (`pod`), or the same resource in its own
/// group (`deployments` is in `apps`). None for a built-in resource, a wildcard, or a group
/// that is not built in with nothing close (a custom resource).
pub fn resource_hint(group: &str, resource: &str) -> Option<String> {
    if resource.is_empty() || resource == "*" || group == "*" {
        return None;
    }
    let served = |g: &str, r: &str| BUILT_IN.iter().any(|(bg, rs)| *bg == g && rs.contains(&r));
    if served(group, resource) {
        return None;
    }
    let lower = resource.to_ascii_lowercase();
    let plurals = [
        lower.clone(),
        format!("{lower}s"),
        format!("{lower}es"),
        lower
            .strip_suffix('y')
            .map_or_else(String::new, |stem| format!("{stem}ies")),
    ];
    // The same group first, then any other.
    let candidates = BUILT_IN
        .iter()
        .filter(|(g, _)| *g == group)
        .chain(BUILT_IN.iter().filter(|(g, _)| *g != group));
    for (g, resources) in candidates {
        if let Some(found) = plurals
            .iter()
            .find(|p| !p.is_empty() && resources.contains(&p.as_str()))
        {
            let group_flag = if g.is_empty() {
                "the core group (no --api-group)".to_string()
            } else {
                format!("--api-group {g}")
            };
            return Some(format!(
                "`{resource}` is not a resource kube-apiserver serves in {}: \
                 did you mean `{found}` in {group_flag}?",
                group_name(group)
            ));
        }
    }
    BUILT_IN.iter().any(|(g, _)| *g == group).then(|| {
        format!(
            "`{resource}` is not a resource kube-apiserver serves in {}: \
             resources are plural and lowercase, as in `kubectl api-resources`",
            group_name(group)
        )
    })
}

fn group_name(group: &str) -> String {
    if group.is_empty() {
        "the core group".to_string()
    } else {
        format!("group `{group}`")
    }
}

/// Verbs outside the CRUD table that built-in resources answer to, as (group, resource, verb).
const SPECIAL_VERBS: &[(&str, &str, &str)] = &[
    ("", "users", "impersonate"),
    ("", "groups", "impersonate"),
    ("", "serviceaccounts", "impersonate"),
    ("authentication.k8s.io", "uids", "impersonate"),
    ("authentication.k8s.io", "userextras", "impersonate"),
    ("rbac.authorization.k8s.io", "roles", "bind"),
    ("rbac.authorization.k8s.io", "roles", "escalate"),
    ("rbac.authorization.k8s.io", "clusterroles", "bind"),
    ("rbac.authorization.k8s.io", "clusterroles", "escalate"),
    ("certificates.k8s.io", "signers", "approve"),
    ("certificates.k8s.io", "signers", "sign"),
];

/// The most requested of the subresources that map like their resource (`pods/status` update
/// is `pods/write`), interned under the request attributes too; a request on another one
/// builds its text and finds the same action by text.
const PLAIN_SUBRESOURCES: &[&str] = &["", "status", "scale", "log"];

/// Verbs of the CRUD table.
const CRUD_VERBS: &[&str] = &[
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
];

/// One interned action: its text, the roles whose permissions grant it and the deny
/// assignments whose permissions name it (conditions aside), by index in the snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownAction {
    pub pattern: ActionPattern,
    /// Its place in [`KnownActions`], so a reason can name it without a copy.
    index: u32,
    granted_by: Bits,
    denied_by: Bits,
}

impl KnownAction {
    /// Its place in the policy's [`KnownActions`] ([`KnownActions::at`]).
    pub fn index(&self) -> u32 {
        self.index
    }

    /// Whether role `role` grants this action.
    pub fn granted_by(&self, role: usize) -> bool {
        self.granted_by.get(role)
    }

    /// Whether deny assignment `deny`'s permissions cover this action.
    pub fn denied_by(&self, deny: usize) -> bool {
        self.denied_by.get(deny)
    }
}

/// A set of indexes (of roles, of deny assignments), one bit each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Bits(Box<[u64]>);

impl Bits {
    /// The indexes of the `items` that are `member`s.
    pub(crate) fn of<T>(items: &[T], member: impl Fn(&T) -> bool) -> Bits {
        let mut words = vec![0u64; items.len().div_ceil(64)].into_boxed_slice();
        for (i, item) in items.iter().enumerate() {
            if member(item)
                && let Some(word) = words.get_mut(i / 64)
            {
                *word |= 1 << (i % 64);
            }
        }
        Bits(words)
    }

    pub(crate) fn get(&self, i: usize) -> bool {
        self.0.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }
}

/// Request attributes an interned action is found by, exactly as sent.
#[derive(Debug, Clone)]
struct RequestKey {
    group: &'static str,
    resource: &'static str,
    subresource: &'static str,
    verb: &'static str,
    action: u32,
}

/// Interned actions, by their lower-cased text and by the request attributes that map to them.
#[derive(Debug, Clone, Default)]
pub struct KnownActions {
    actions: Vec<KnownAction>,
    by_text: FxHashMap<Box<str>, u32>,
    by_request: HashTable<RequestKey>,
}

/// The hash of a request's attributes (the parts the action depends on): each part's first
/// eight bytes (or three of a shorter one) and length, so the few short words a request names
/// cost a handful of instructions (every request hashes them).
fn request_hash(group: &str, resource: &str, subresource: &str, verb: &str) -> u64 {
    let word = |part: &str| {
        let bytes = part.as_bytes();
        // Shorter words (most verbs and many resources): first, middle and last byte.
        let head = bytes.first_chunk::<8>().map_or_else(
            || {
                let at = |i: usize| u64::from(bytes.get(i).copied().unwrap_or(0));
                at(0) | at(bytes.len() / 2) << 8 | at(bytes.len().wrapping_sub(1)) << 16
            },
            |c| u64::from_le_bytes(*c),
        );
        head ^ (bytes.len() as u64) << 56
    };
    mix(word(resource)
        ^ word(verb).rotate_left(16)
        ^ word(group).rotate_left(32)
        ^ word(subresource).rotate_left(48))
}

impl KnownActions {
    /// The built-in resources' actions under `prefix`, mapped by the request mapper itself so
    /// the texts are the ones requests produce, plus every literal data action a role names.
    pub fn build(prefix: &str, roles: &[Role], denies: &[Deny]) -> Self {
        let mut builder = Builder {
            known: KnownActions::default(),
            prefix,
            roles,
            denies,
        };
        for (group, resources) in BUILT_IN {
            for resource in *resources {
                for subresource in PLAIN_SUBRESOURCES {
                    for verb in CRUD_VERBS {
                        builder.add_request(group, resource, subresource, verb);
                    }
                }
            }
        }
        for resource in ["pods", "services", "nodes"] {
            for subresource in ["exec", "attach", "portforward", "proxy"] {
                for verb in ["get", "create"] {
                    builder.add_request("", resource, subresource, verb);
                }
            }
        }
        for (group, resource, verb) in SPECIAL_VERBS {
            builder.add_request(group, resource, "", verb);
        }
        for role in roles {
            for block in &role.blocks {
                let listed = block
                    .data_actions
                    .iter()
                    .chain(block.not_data_actions.iter());
                for pattern in listed.filter(|p| !p.is_wildcard()) {
                    builder.intern(pattern.as_str());
                }
            }
        }
        builder.known
    }

    /// The interned action at `index` ([`KnownAction::index`]).
    #[inline]
    pub fn at(&self, index: u32) -> Option<&KnownAction> {
        self.actions.get(index as usize)
    }

    /// The interned action with this lower-cased text, if any.
    pub fn get(&self, text: &str) -> Option<&KnownAction> {
        let i = self.by_text.get(text)?;
        self.actions.get(*i as usize)
    }

    /// The interned action a request maps to, found from its attributes without building
    /// the text; `None` for anything not interned under exactly these attributes.
    #[inline]
    pub fn for_request(&self, r: &ResourceAttributes) -> Option<&KnownAction> {
        let hash = request_hash(&r.group, &r.resource, &r.subresource, &r.verb);
        let key = self.by_request.find(hash, |k| {
            short_eq(k.verb.as_bytes(), r.verb.as_bytes())
                && short_eq(k.resource.as_bytes(), r.resource.as_bytes())
                && short_eq(k.group.as_bytes(), r.group.as_bytes())
                && short_eq(k.subresource.as_bytes(), r.subresource.as_bytes())
        })?;
        self.actions.get(key.action as usize)
    }
}

/// [`KnownActions`] being built, with what each action is checked against.
struct Builder<'a> {
    known: KnownActions,
    prefix: &'a str,
    roles: &'a [Role],
    denies: &'a [Deny],
}

impl Builder<'_> {
    /// The index of the action with this lower-cased text, added (with the roles that grant
    /// it and the deny assignments that deny it) if new.
    fn intern(&mut self, text: &str) -> u32 {
        let known = &mut self.known;
        if let Some(i) = known.by_text.get(text) {
            return *i;
        }
        crate::policy::pace::point();
        let i = known.actions.len() as u32;
        known.actions.push(KnownAction {
            pattern: ActionPattern::from_lowercase(text),
            index: i,
            granted_by: Bits::of(self.roles, |r| r.blocks.iter().any(|b| b.grants(text))),
            denied_by: Bits::of(self.denies, |d| d.blocks.iter().any(|b| b.grants(text))),
        });
        known.by_text.insert(Box::from(text), i);
        i
    }

    /// Maps a request of these attributes and, if it maps to one action, interns it and
    /// keys it by the attributes (the first mapping of a key is kept).
    fn add_request(
        &mut self,
        group: &'static str,
        resource: &'static str,
        subresource: &'static str,
        verb: &'static str,
    ) {
        let attributes = ResourceAttributes {
            verb: verb.into(),
            group: group.into(),
            resource: resource.into(),
            subresource: subresource.into(),
            ..ResourceAttributes::default()
        };
        // One action: not a wildcard request (those map to several or to patterns).
        let Ok(mapped) = mapping::map_request(Some(&attributes), None, self.prefix) else {
            return;
        };
        let actions = mapped.actions();
        let [action] = actions.as_slice() else {
            return;
        };
        let action = self.intern(action.as_str());
        let hash = request_hash(group, resource, subresource, verb);
        let by_request = &mut self.known.by_request;
        if by_request
            .find(hash, |k| {
                (k.group, k.resource, k.subresource, k.verb) == (group, resource, subresource, verb)
            })
            .is_none()
        {
            let key = RequestKey {
                group,
                resource,
                subresource,
                verb,
                action,
            };
            by_request.insert_unique(hash, key, |k| {
                request_hash(k.group, k.resource, k.subresource, k.verb)
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::index::Snapshot;

    const PREFIX: &str = "Microsoft.ContainerService/managedClusters";

    #[test]
    fn an_unknown_resource_names_the_built_in_one_meant() {
        let hint = |g, r| resource_hint(g, r).unwrap_or_default();
        assert!(hint("", "pod").contains("did you mean `pods` in the core group"));
        assert!(hint("", "deployments").contains("did you mean `deployments` in --api-group apps"));
        assert!(hint("apps", "deployment").contains("`deployments` in --api-group apps"));
        assert!(hint("", "Secret").contains("`secrets`"));
        assert!(hint("", "frobs").contains("plural and lowercase"));
        for (g, r) in [
            ("", "pods"),
            ("apps", "deployments"),
            ("example.com", "widgets"),
            ("", "*"),
        ] {
            assert_eq!(resource_hint(g, r), None, "{g}/{r}");
        }
    }

    /// Every action found by request attributes is the one the mapper builds for them.
    #[test]
    fn interned_actions_are_what_the_mapper_builds() {
        let known = KnownActions::build(PREFIX, &[], &[]);
        assert!(known.by_request.len() > 1000, "{}", known.by_request.len());
        for key in known.by_request.iter() {
            let r = ResourceAttributes {
                verb: key.verb.to_string(),
                group: key.group.to_string(),
                resource: key.resource.to_string(),
                subresource: key.subresource.to_string(),
                ..ResourceAttributes::default()
            };
            let built = mapping::map_request(Some(&r), None, PREFIX).unwrap();
            let interned = known.for_request(&r).unwrap();
            assert_eq!(
                built.actions().as_slice(),
                std::slice::from_ref(&interned.pattern)
            );
            assert_eq!(known.get(interned.pattern.as_str()), Some(interned));
        }
        let exec = ResourceAttributes {
            verb: "create".into(),
            resource: "pods".into(),
            subresource: "exec".into(),
            ..ResourceAttributes::default()
        };
        assert_eq!(
            known.for_request(&exec).unwrap().pattern.as_str(),
            "microsoft.containerservice/managedclusters/pods/exec/action"
        );
        // Not interned: a custom resource, a wildcard, a different spelling.
        for (group, resource, verb) in [
            ("example.com", "widgets", "get"),
            ("", "pods", "*"),
            ("", "Pods", "get"),
        ] {
            let r = ResourceAttributes {
                verb: verb.into(),
                group: group.into(),
                resource: resource.into(),
                ..ResourceAttributes::default()
            };
            assert!(known.for_request(&r).is_none(), "{group}/{resource} {verb}");
        }
    }

    #[test]
    fn bits_span_words() {
        let items: Vec<usize> = (0..200).collect();
        let bits = Bits::of(&items, |i| i % 7 == 3 || *i == 63 || *i == 64);
        for i in 0..260 {
            assert_eq!(
                bits.get(i),
                i < 200 && (i % 7 == 3 || i == 63 || i == 64),
                "{i}"
            );
        }
    }

    /// Role and deny bits say what matching their patterns says.
    #[test]
    fn bits_follow_the_permissions() {
        let snapshot: std::sync::Arc<Snapshot> = crate::synthetic_snapshot(
            crate::synthetic::Shape {
                assignments: 200,
                groups_per_user: 1,
                rbac_bindings: 0,
            },
            &crate::synthetic::example_builtin_roles(),
            &crate::policy::IndexOptions::default(),
        )
        .0;
        let known = &snapshot.known_actions;
        assert!(
            snapshot.roles.len() > 8 && !snapshot.denies.is_empty(),
            "{} roles, {} denies",
            snapshot.roles.len(),
            snapshot.denies.len()
        );
        for action in &known.actions {
            for (i, role) in snapshot.roles.iter().enumerate() {
                let matched = role
                    .blocks
                    .iter()
                    .any(|b| b.grants(action.pattern.as_str()));
                assert_eq!(
                    action.granted_by(i),
                    matched,
                    "{} {}",
                    role.name,
                    action.pattern
                );
            }
            for (i, deny) in snapshot.denies.iter().enumerate() {
                let matched = deny
                    .blocks
                    .iter()
                    .any(|b| b.grants(action.pattern.as_str()));
                assert_eq!(
                    action.denied_by(i),
                    matched,
                    "{} {}",
                    deny.id,
                    action.pattern
                );
            }
        }
    }
}

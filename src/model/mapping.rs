//! The Azure meaning of a Kubernetes request: the data actions and the scope AKS checks for
//! it (docs/azure-rbac.md). Pure functions on the request's attributes.
//!
//! As AKS's Guard does, with its documented holes closed: `exec`, `attach`, `portforward`
//! and `proxy` on pods, services and nodes are `…/<resource>/<subresource>/action` whatever
//! the verb; verbs outside the CRUD table are `<verb>/action`; namespaces must be DNS-1123
//! labels; non-resource paths may not climb with `..`. A `*` in verb, group or resource makes
//! the request stand for a set of actions.

use super::excerpt::excerpt;
use super::scope::is_dns1123_label;
use super::{ActionPattern, NonResourceAttributes, ResourceAttributes, Scope};

/// Subresources that open a connection into a workload, and the resources they exist on.
const CONNECT_SUBRESOURCES: [&str; 4] = ["exec", "attach", "portforward", "proxy"];
const CONNECT_RESOURCES: [&str; 3] = ["pods", "services", "nodes"];

/// Why a request cannot be mapped (and so is not allowed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MapError {
    #[error("request has neither resourceAttributes nor nonResourceAttributes")]
    NoAttributes,
    #[error("request has both resourceAttributes and nonResourceAttributes")]
    BothAttributes,
    #[error("request has no verb")]
    NoVerb,
    #[error("resource request has no resource")]
    NoResource,
    /// The namespace, cut to [`excerpt`] length.
    #[error("namespace `{0}` is not a valid DNS-1123 label")]
    BadNamespace(String),
    /// The path, cut to [`excerpt`] length.
    #[error("non-resource path `{0}` must start with `/` and may not contain `.` or `..` segments")]
    BadPath(String),
    /// A group, resource or subresource that would add or climb action segments (`pods/*`
    /// grants `pods/../secrets/read` by text); the value cut to [`excerpt`] length.
    #[error("{field} `{value}` may not contain `/` or `..`")]
    BadSegment { field: &'static str, value: String },
}

/// The actions of one request, on the stack.
pub type Actions = smallvec::SmallVec<[ActionPattern; 2]>;

/// The request attributes a condition can read, by full attribute name (lower-cased).
pub trait AttributeSource {
    fn attribute(&self, name: &str) -> Option<&str>;
}

/// Attributes in a map (tests, tools).
pub type Attributes = std::collections::BTreeMap<String, String>;

impl AttributeSource for Attributes {
    fn attribute(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

/// The attributes Azure ABAC conditions can read for a Kubernetes request:
/// `<prefix>/resources:subresource`, and for named API groups
/// `<prefix>/customResources:group` and `<prefix>/customResources:kind` (the plural resource).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RequestAttributes<'r> {
    pub prefix: &'r str,
    pub group: &'r str,
    pub resource: &'r str,
    pub subresource: &'r str,
}

impl AttributeSource for RequestAttributes<'_> {
    fn attribute(&self, name: &str) -> Option<&str> {
        let rest = name.get(self.prefix.len()..).filter(|_| {
            name.get(..self.prefix.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(self.prefix))
        })?;
        let value = match rest {
            "/resources:subresource" => self.subresource,
            "/customresources:group" => self.group,
            "/customresources:kind" if !self.group.is_empty() => self.resource,
            _ => return None,
        };
        (!value.is_empty()).then_some(value)
    }
}

/// A request checked and read as Azure sees it: where it is checked, what conditions may
/// read, and (through [`MappedRequest::each_action`]) the actions it stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappedRequest<'r> {
    /// The namespace, for namespaced requests (checked at `<cluster>/namespaces/<ns>`).
    pub namespace: Option<&'r str>,
    /// Request attributes ABAC conditions may read.
    pub attributes: RequestAttributes<'r>,
    what: What<'r>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum What<'r> {
    Resource(&'r ResourceAttributes),
    /// The path's segments after the prefix, and the verb (`None` for `*`).
    NonResource {
        segments: Vec<&'r str>,
        verb: Option<&'r str>,
    },
}

impl<'r> MappedRequest<'r> {
    /// The scope the request is checked at.
    pub fn scope(&self, cluster: &Scope) -> Scope {
        checked_scope(cluster, self.namespace)
    }

    /// How many actions [`MappedRequest::each_action`] gives: two for a request on every API
    /// group (`*`), else one.
    pub fn action_count(&self) -> usize {
        match &self.what {
            What::Resource(r) if r.group == "*" => 2,
            _ => 1,
        }
    }

    /// Calls `each` with the lower-cased text of every action the request stands for, built
    /// on the stack; all of them must be allowed.
    pub fn each_action(&self, mut each: impl FnMut(&str)) {
        let prefix = self.attributes.prefix;
        match &self.what {
            What::Resource(r) => {
                let connect = CONNECT_SUBRESOURCES.contains(&r.subresource.as_str())
                    && (CONNECT_RESOURCES.contains(&r.resource.as_str()) || r.resource == "*");
                // `*` as the group stands for the core group and every named group.
                let groups: smallvec::SmallVec<[Option<&str>; 2]> = match r.group.as_str() {
                    "" => smallvec::smallvec![None],
                    "*" => smallvec::smallvec![None, Some("*")],
                    g => smallvec::smallvec![Some(g)],
                };
                for g in groups {
                    let mut pieces: smallvec::SmallVec<[&str; 5]> = smallvec::SmallVec::new();
                    pieces.push(prefix);
                    pieces.extend(g);
                    pieces.push(&r.resource);
                    let verb = if connect {
                        pieces.extend([r.subresource.as_str(), "action"]);
                        None
                    } else if r.subresource == "*" || r.verb == "*" {
                        // Every verb maps to a suffix, so `*` stands for everything below the
                        // resource.
                        pieces.push("*");
                        None
                    } else {
                        Some(r.verb.as_str())
                    };
                    with_action(&pieces, verb, &mut each);
                }
            }
            What::NonResource { segments, verb } => {
                let mut pieces: smallvec::SmallVec<[&str; 5]> = smallvec::SmallVec::new();
                pieces.push(prefix);
                pieces.extend(segments.iter().copied());
                match verb {
                    Some(verb) => with_action(&pieces, Some(verb), &mut each),
                    None => {
                        pieces.push("*");
                        with_action(&pieces, None, &mut each);
                    }
                }
            }
        }
    }

    /// Every action the request stands for, each in a text of its own.
    pub fn actions(&self) -> Actions {
        let mut out = Actions::new();
        self.each_action(|text| out.push(ActionPattern::from_lowercase(text)));
        out
    }
}

/// The scope a request is checked at below `cluster`: `<cluster>/namespaces/<ns>` for a
/// namespaced request, the cluster itself otherwise.
pub fn checked_scope(cluster: &Scope, namespace: Option<&str>) -> Scope {
    match namespace {
        Some(ns) => cluster.child("namespaces", ns),
        None => cluster.clone(),
    }
}

/// The action suffix a verb maps to: `read`, `write`, `delete`, or `<verb>/action` for any
/// verb outside the CRUD table.
pub fn verb_suffix(verb: &str) -> VerbSuffix<'_> {
    match verb {
        "get" | "list" | "watch" => VerbSuffix::Read,
        "create" | "update" | "patch" => VerbSuffix::Write,
        "delete" | "deletecollection" => VerbSuffix::Delete,
        other => VerbSuffix::Action(other),
    }
}

/// What [`verb_suffix`] maps a verb to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerbSuffix<'v> {
    Read,
    Write,
    Delete,
    /// `<verb>/action`.
    Action(&'v str),
}

/// An action's text while it is put together: on the stack for any ordinary action.
type Text = smallvec::SmallVec<[u8; 128]>;

/// Builds one lower-cased action from pieces (and the verb's suffix) and gives it to `each`.
fn with_action(pieces: &[&str], verb: Option<&str>, each: &mut impl FnMut(&str)) {
    let mut text = Text::new();
    for (i, p) in pieces.iter().enumerate() {
        if i > 0 {
            text.push(b'/');
        }
        text.extend_from_slice(p.as_bytes());
    }
    if let Some(verb) = verb {
        text.push(b'/');
        match verb_suffix(verb) {
            VerbSuffix::Read => text.extend_from_slice(b"read"),
            VerbSuffix::Write => text.extend_from_slice(b"write"),
            VerbSuffix::Delete => text.extend_from_slice(b"delete"),
            VerbSuffix::Action(other) => {
                text.extend_from_slice(other.as_bytes());
                text.extend_from_slice(b"/action");
            }
        }
    }
    text.make_ascii_lowercase();
    // Whole `str`s joined by ASCII bytes: always UTF-8.
    match std::str::from_utf8(&text) {
        Ok(text) => each(text),
        Err(_) => each(&String::from_utf8_lossy(&text)),
    }
}

/// Checks a request's attributes and reads them as Azure does, under `prefix`
/// (`Microsoft.ContainerService/managedClusters`).
pub fn map_request<'r>(
    resource: Option<&'r ResourceAttributes>,
    non_resource: Option<&'r NonResourceAttributes>,
    prefix: &'r str,
) -> Result<MappedRequest<'r>, MapError> {
    match (resource, non_resource) {
        (Some(r), None) => map_resource(r, prefix),
        (None, Some(n)) => map_non_resource(n, prefix),
        (None, None) => Err(MapError::NoAttributes),
        (Some(_), Some(_)) => Err(MapError::BothAttributes),
    }
}

fn map_resource<'r>(
    r: &'r ResourceAttributes,
    prefix: &'r str,
) -> Result<MappedRequest<'r>, MapError> {
    if r.verb.is_empty() {
        return Err(MapError::NoVerb);
    }
    if r.resource.is_empty() {
        return Err(MapError::NoResource);
    }
    let namespace = match r.namespace.as_str() {
        "" => None,
        ns if is_dns1123_label(ns) => Some(ns),
        ns => return Err(MapError::BadNamespace(excerpt(ns).to_string())),
    };
    for (field, value) in [
        ("group", &r.group),
        ("resource", &r.resource),
        ("subresource", &r.subresource),
    ] {
        if value.contains('/') || value.contains("..") {
            return Err(MapError::BadSegment {
                field,
                value: excerpt(value).to_string(),
            });
        }
    }
    Ok(MappedRequest {
        namespace,
        attributes: RequestAttributes {
            prefix,
            group: &r.group,
            resource: &r.resource,
            subresource: &r.subresource,
        },
        what: What::Resource(r),
    })
}

fn map_non_resource<'r>(
    n: &'r NonResourceAttributes,
    prefix: &'r str,
) -> Result<MappedRequest<'r>, MapError> {
    if n.verb.is_empty() {
        return Err(MapError::NoVerb);
    }
    let bad_path = || MapError::BadPath(excerpt(&n.path).to_string());
    let Some(rest) = n.path.strip_prefix('/') else {
        return Err(bad_path());
    };
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    if segments.iter().any(|s| *s == "." || *s == "..") {
        return Err(bad_path());
    }
    Ok(MappedRequest {
        namespace: None,
        attributes: RequestAttributes {
            prefix,
            ..RequestAttributes::default()
        },
        what: What::NonResource {
            segments,
            verb: (n.verb != "*").then_some(n.verb.as_str()),
        },
    })
}

/// Guard's discovery shortcut: `get` on `/api`, `/apis`, `/openapi`, `/version` or
/// `/healthz` and paths below them. Guard tests a lower-cased prefix (so `/apifoo` and
/// `/api/../metrics` passed); here the first segment must be one of those, any case, and no
/// later segment may be empty, `.` or `..`. One trailing `/` is allowed (`/version/`).
pub fn is_discovery(n: &NonResourceAttributes) -> bool {
    const ROOTS: [&str; 5] = ["api", "apis", "openapi", "version", "healthz"];
    if !n.verb.eq_ignore_ascii_case("get") {
        return false;
    }
    let Some(rest) = n.path.strip_prefix('/') else {
        return false;
    };
    let mut segments = rest.strip_suffix('/').unwrap_or(rest).split('/');
    segments
        .next()
        .is_some_and(|root| ROOTS.iter().any(|r| root.eq_ignore_ascii_case(r)))
        && segments.all(|s| !matches!(s, "" | "." | ".."))
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = "Microsoft.ContainerService/managedClusters";

    fn res(
        verb: &str,
        group: &str,
        resource: &str,
        sub: &str,
        ns: &str,
    ) -> Result<Vec<String>, MapError> {
        let r = ResourceAttributes {
            verb: verb.into(),
            group: group.into(),
            resource: resource.into(),
            subresource: sub.into(),
            namespace: ns.into(),
            ..Default::default()
        };
        map_request(Some(&r), None, P)
            .map(|m| m.actions().iter().map(|a| a.as_str().to_string()).collect())
    }

    /// What ABAC conditions read of a request: the subresource, and for a named API group its
    /// group and resource (`customResources:kind` is the plural resource, as AKS passes it).
    #[test]
    fn conditions_read_the_subresource_and_a_named_groups_resource() {
        let attributes_of = |group: &str, resource: &str, sub: &str| {
            let r = ResourceAttributes {
                verb: "get".into(),
                group: group.into(),
                resource: resource.into(),
                subresource: sub.into(),
                ..Default::default()
            };
            let mapped = map_request(Some(&r), None, P).unwrap();
            let read = |name: &str| mapped.attributes.attribute(name).map(str::to_string);
            (
                read("microsoft.containerservice/managedclusters/resources:subresource"),
                read("microsoft.containerservice/managedclusters/customresources:group"),
                read("microsoft.containerservice/managedclusters/customresources:kind"),
            )
        };
        assert_eq!(
            attributes_of("", "pods", "status"),
            (Some("status".into()), None, None)
        );
        assert_eq!(
            attributes_of("example.com", "widgets", ""),
            (None, Some("example.com".into()), Some("widgets".into()))
        );
        // Another prefix, or an attribute AKS does not pass, reads nothing.
        let r = ResourceAttributes {
            verb: "get".into(),
            group: "example.com".into(),
            resource: "widgets".into(),
            subresource: "scale".into(),
            ..Default::default()
        };
        let mapped = map_request(Some(&r), None, P).unwrap();
        for name in [
            "microsoft.kubernetes/connectedclusters/resources:subresource",
            "microsoft.containerservice/managedclusters/resources:name",
            "microsoft.containerservice",
        ] {
            assert_eq!(mapped.attributes.attribute(name), None, "{name}");
        }
    }

    #[test]
    fn guard_table() {
        let p = P.to_ascii_lowercase();
        assert_eq!(
            res("list", "", "pods", "", "dev").unwrap(),
            vec![format!("{p}/pods/read")]
        );
        assert_eq!(
            res("delete", "", "pods", "status", "").unwrap(),
            vec![format!("{p}/pods/delete")]
        );
        assert_eq!(
            res("use", "policy", "podsecuritypolicies", "", "").unwrap(),
            vec![format!("{p}/policy/podsecuritypolicies/use/action")]
        );
        assert_eq!(
            res(
                "deletecollection",
                "certificates.k8s.io",
                "certificatesigningrequests",
                "",
                ""
            )
            .unwrap(),
            vec![format!(
                "{p}/certificates.k8s.io/certificatesigningrequests/delete"
            )]
        );
        assert_eq!(
            res("update", "apps", "deployments", "scale", "a").unwrap(),
            vec![format!("{p}/apps/deployments/write")]
        );
    }

    #[test]
    fn connect_subresources_are_actions_for_every_verb() {
        let p = P.to_ascii_lowercase();
        for verb in ["get", "create"] {
            for (r, s) in [
                ("pods", "exec"),
                ("pods", "attach"),
                ("pods", "portforward"),
                ("services", "proxy"),
                ("nodes", "proxy"),
            ] {
                assert_eq!(
                    res(verb, "", r, s, "").unwrap(),
                    vec![format!("{p}/{r}/{s}/action")]
                );
            }
        }
        assert_eq!(
            res("get", "", "pods", "log", "dev").unwrap(),
            vec![format!("{p}/pods/read")]
        );
    }

    /// A connect subresource on a resource that has none is read as the resource itself; on
    /// every resource (`*`) it is the connect action.
    #[test]
    fn connect_subresources_only_on_pods_services_and_nodes() {
        let p = P.to_ascii_lowercase();
        assert_eq!(
            res("get", "apps", "deployments", "proxy", "dev").unwrap(),
            vec![format!("{p}/apps/deployments/read")]
        );
        assert_eq!(
            res("create", "", "*", "exec", "dev").unwrap(),
            vec![format!("{p}/*/exec/action")]
        );
    }

    #[test]
    fn strict_inputs() {
        assert_eq!(
            res("get", "", "pods", "", "../../aks10"),
            Err(MapError::BadNamespace("../../aks10".into()))
        );
        assert_eq!(
            map_request(None, None, P).err(),
            Some(MapError::NoAttributes)
        );
        let n = NonResourceAttributes {
            path: "/metrics/../x".into(),
            verb: "get".into(),
        };
        assert!(map_request(None, Some(&n), P).is_err());
        let n = NonResourceAttributes {
            path: "/metrics/".into(),
            verb: "get".into(),
        };
        let t = map_request(None, Some(&n), P).unwrap();
        assert_eq!(
            t.actions()[0].as_str(),
            format!("{}/metrics/read", P.to_ascii_lowercase())
        );
    }

    #[test]
    fn discovery_prefixes() {
        let d = |p: &str, v: &str| {
            is_discovery(&NonResourceAttributes {
                path: p.into(),
                verb: v.into(),
            })
        };
        assert!(
            d("/api", "get")
                && d("/APIs/apps/v1", "get")
                && d("/version", "get")
                && d("/openapi/v2", "get")
        );
        assert!(!d("/livez", "get") && !d("/api", "post") && !d("/metrics", "get"));
        // Whole segments only, and nothing that climbs or doubles a separator.
        assert!(d("/api/", "get") && d("/version/", "get") && d("/healthz/etcd", "get"));
        for path in [
            "/apifoo",
            "/versions",
            "/api/../metrics",
            "/apis/./x",
            "/api//x",
            "/api/..",
            "api",
            "/",
            "",
        ] {
            assert!(!d(path, "get"), "{path}");
        }
    }

    #[test]
    fn segments_may_not_climb() {
        for (resource, sub) in [
            ("pods/../secrets", ""),
            ("pods", "../x"),
            ("pods", "a/b"),
            ("..", ""),
        ] {
            assert!(
                matches!(
                    res("get", "", resource, sub, ""),
                    Err(MapError::BadSegment { .. })
                ),
                "{resource} {sub}"
            );
        }
        assert!(matches!(
            res("get", "apps/..", "deployments", "", ""),
            Err(MapError::BadSegment { field: "group", .. })
        ));
        // Wildcards and dots inside names are fine.
        assert!(res("get", "*", "*", "*", "").is_ok());
        assert!(res("get", "cert-manager.io", "certificates", "status", "").is_ok());
        // Values quoted in errors are cut.
        let long = "a".repeat(5000);
        let error = res("get", "", "pods", "", &long)
            .err()
            .map(|e| e.to_string());
        assert!(error.is_some_and(|e| e.len() < 400 && e.contains("(+4744 bytes)")));
    }
}

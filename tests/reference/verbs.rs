//! A request -> the Azure data actions it stands for and the scope it is checked at, from the
//! mapping table of the docs: `<prefix>[/<group>]/<resource>/<suffix>`.

use scopegate::model::{NonResourceAttributes, ResourceAttributes};

/// The suffix a Kubernetes verb maps to.
pub fn suffix(verb: &str) -> String {
    match verb {
        "get" => "read".into(),
        "list" => "read".into(),
        "watch" => "read".into(),
        "create" => "write".into(),
        "update" => "write".into(),
        "patch" => "write".into(),
        "delete" => "delete".into(),
        "deletecollection" => "delete".into(),
        "bind" => "bind/action".into(),
        "escalate" => "escalate/action".into(),
        "use" => "use/action".into(),
        "impersonate" => "impersonate/action".into(),
        // Guard sends these without a suffix; scopegate makes every other verb an action.
        "approve" => "approve/action".into(),
        "sign" => "sign/action".into(),
        "attest" => "attest/action".into(),
        "unsafe-delete-ignore-read-errors" => "unsafe-delete-ignore-read-errors/action".into(),
        other => format!("{other}/action"),
    }
}

/// What the mapping gives: the actions (all must be allowed) and the namespace, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapped {
    pub actions: Vec<String>,
    pub namespace: Option<String>,
}

/// DNS-1123 label: 1-63 of `a-z0-9-`, starting and ending alphanumeric.
fn dns_label(s: &str) -> bool {
    let ok_end = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && ok_end(s.chars().next())
        && ok_end(s.chars().last())
}

/// Maps a resource request; `None`: the request is malformed and denied.
pub fn resource(prefix: &str, r: &ResourceAttributes) -> Option<Mapped> {
    if r.verb.is_empty() || r.resource.is_empty() {
        return None;
    }
    if !r.namespace.is_empty() && !dns_label(&r.namespace) {
        return None;
    }
    for part in [&r.group, &r.resource, &r.subresource] {
        if part.contains('/') || part.contains("..") {
            return None;
        }
    }
    let groups: Vec<Option<&str>> = match r.group.as_str() {
        "" => vec![None],
        "*" => vec![None, Some("*")],
        g => vec![Some(g)],
    };
    let connect = ["exec", "attach", "portforward", "proxy"].contains(&r.subresource.as_str())
        && ["pods", "services", "nodes", "*"].contains(&r.resource.as_str());
    let mut actions = Vec::new();
    for g in groups {
        let mut head = prefix.to_string();
        if let Some(g) = g {
            head = format!("{head}/{g}");
        }
        head = format!("{head}/{}", r.resource);
        let action = if connect {
            format!("{head}/{}/action", r.subresource)
        } else if r.verb == "*" || r.subresource == "*" {
            format!("{head}/*")
        } else {
            format!("{head}/{}", suffix(&r.verb))
        };
        actions.push(action.to_lowercase());
    }
    let namespace = (!r.namespace.is_empty()).then(|| r.namespace.clone());
    Some(Mapped { actions, namespace })
}

/// Maps a non-resource request (always at the cluster scope); `None`: malformed.
pub fn non_resource(prefix: &str, n: &NonResourceAttributes) -> Option<Mapped> {
    if n.verb.is_empty() {
        return None;
    }
    let rest = n.path.strip_prefix('/')?;
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    if segments.iter().any(|s| *s == "." || *s == "..") {
        return None;
    }
    let mut action = prefix.to_string();
    for s in segments {
        action = format!("{action}/{s}");
    }
    let last = if n.verb == "*" {
        "*".to_string()
    } else {
        suffix(&n.verb)
    };
    Some(Mapped {
        actions: vec![format!("{action}/{last}").to_lowercase()],
        namespace: None,
    })
}

/// The discovery shortcut: `get` (any case) on `/api`, `/apis`, `/openapi`, `/version`,
/// `/healthz` or below, whole segments, nothing empty or climbing after the first; one
/// trailing `/` allowed.
pub fn is_discovery(n: &NonResourceAttributes) -> bool {
    if !n.verb.eq_ignore_ascii_case("get") {
        return false;
    }
    let Some(rest) = n.path.strip_prefix('/') else {
        return false;
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let segments: Vec<&str> = rest.split('/').collect();
    let Some(first) = segments.first() else {
        return false;
    };
    ["api", "apis", "openapi", "version", "healthz"]
        .iter()
        .any(|r| first.eq_ignore_ascii_case(r))
        && segments[1..]
            .iter()
            .all(|s| !s.is_empty() && *s != "." && *s != "..")
}

//! Typed cluster objects into the policy schema, through the same parser as policy files: a
//! RoleBinding from the API and one from a file are the same thing to the engine, with the
//! same diagnostics. Each object's origin is `cluster`, at `Kind/namespace/name`.

use super::error::SourceError;
use super::stores::RbacObject;
use super::stores::Stores;
use crate::policy::parse::add_value;
use crate::policy::{Origin, PolicySet};
use kube::runtime::reflector::Store;
use std::sync::Arc;

/// Every stored object as a policy set, kinds in [`super::Kind::ALL`] order and each kind by
/// namespace and name (the order does not follow the stores' hashing).
pub(super) fn policy_set(stores: &Stores) -> Result<PolicySet, SourceError> {
    let mut set = PolicySet::default();
    let mut diagnostics = Vec::new();
    add_kind(&stores.roles, &mut set, &mut diagnostics)?;
    add_kind(&stores.cluster_roles, &mut set, &mut diagnostics)?;
    add_kind(&stores.role_bindings, &mut set, &mut diagnostics)?;
    add_kind(&stores.cluster_role_bindings, &mut set, &mut diagnostics)?;
    add_kind(&stores.service_accounts, &mut set, &mut diagnostics)?;
    for d in diagnostics {
        tracing::warn!("cluster object skipped: {d}");
    }
    Ok(set)
}

/// Where an object sits in the cluster: `namespace/name` (an empty namespace when
/// cluster-scoped).
fn key<K: RbacObject>(object: &K) -> String {
    let meta = object.meta();
    format!(
        "{}/{}",
        meta.namespace.as_deref().unwrap_or(""),
        meta.name.as_deref().unwrap_or("")
    )
}

fn add_kind<K: RbacObject>(
    store: &Store<K>,
    set: &mut PolicySet,
    diagnostics: &mut Vec<crate::policy::Diagnostic>,
) -> Result<(), SourceError> {
    let mut objects: Vec<(String, Arc<K>)> = store
        .state()
        .into_iter()
        .map(|o| (key(o.as_ref()), o))
        .collect();
    objects.sort_by(|a, b| a.0.cmp(&b.0));
    for (key, object) in objects {
        let position = format!("{}/{key}", K::KIND.as_str());
        // k8s-openapi writes `apiVersion` and `kind`, which the parser reads the kind from.
        let value = serde_json::to_value(object.as_ref()).map_err(|e| SourceError::Convert {
            object: position.clone(),
            source: Arc::new(e),
        })?;
        add_value(&Origin::new("cluster", &position), value, set, diagnostics);
    }
    Ok(())
}

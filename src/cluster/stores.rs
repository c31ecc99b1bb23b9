//! One kube-rs reflector store per kind: the writers the events go into and the readers the
//! policy is built from. A writer swaps a relist in whole at its end (`InitDone`), so a
//! reader never sees a half-listed kind; a store is ready from its kind's first full list.

use super::error::SourceError;
use super::kind::Kind;
use futures::FutureExt;
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::runtime::reflector::store::{self, Store, Writer};

/// The writing halves, one per kind (see [`RbacObject::writer`]).
#[derive(Debug)]
pub struct Writers {
    pub(super) roles: Writer<Role>,
    pub(super) cluster_roles: Writer<ClusterRole>,
    pub(super) role_bindings: Writer<RoleBinding>,
    pub(super) cluster_role_bindings: Writer<ClusterRoleBinding>,
    pub(super) service_accounts: Writer<ServiceAccount>,
}

/// The reading halves, one per kind.
#[derive(Debug, Clone)]
pub(super) struct Stores {
    pub roles: Store<Role>,
    pub cluster_roles: Store<ClusterRole>,
    pub role_bindings: Store<RoleBinding>,
    pub cluster_role_bindings: Store<ClusterRoleBinding>,
    pub service_accounts: Store<ServiceAccount>,
}

/// A fresh store per kind, nothing listed yet.
pub(super) fn stores() -> (Stores, Writers) {
    let (roles, roles_w) = store::store();
    let (cluster_roles, cluster_roles_w) = store::store();
    let (role_bindings, role_bindings_w) = store::store();
    let (cluster_role_bindings, cluster_role_bindings_w) = store::store();
    let (service_accounts, service_accounts_w) = store::store();
    (
        Stores {
            roles,
            cluster_roles,
            role_bindings,
            cluster_role_bindings,
            service_accounts,
        },
        Writers {
            roles: roles_w,
            cluster_roles: cluster_roles_w,
            role_bindings: role_bindings_w,
            cluster_role_bindings: cluster_role_bindings_w,
            service_accounts: service_accounts_w,
        },
    )
}

/// Whether a store has had its first full list, without waiting: `wait_until_ready` resolves
/// at once then. A writer dropped before that is an error (the kind can never list).
fn listed<K: RbacObject>(store: &Store<K>) -> Result<bool, SourceError> {
    match store.wait_until_ready().now_or_never() {
        None => Ok(false),
        Some(Ok(())) => Ok(true),
        Some(Err(e)) => Err(SourceError::Unlisted {
            kind: K::KIND.as_str(),
            source: std::sync::Arc::new(e),
        }),
    }
}

impl Stores {
    /// Whether every kind has had its first full list.
    pub fn all_listed(&self, service_accounts: bool) -> Result<bool, SourceError> {
        Ok(listed(&self.roles)?
            & listed(&self.cluster_roles)?
            & listed(&self.role_bindings)?
            & listed(&self.cluster_role_bindings)?
            & (!service_accounts || listed(&self.service_accounts)?))
    }

    /// Number of objects held of a kind.
    pub fn count(&self, kind: Kind) -> usize {
        match kind {
            Kind::Role => self.roles.len(),
            Kind::ClusterRole => self.cluster_roles.len(),
            Kind::RoleBinding => self.role_bindings.len(),
            Kind::ClusterRoleBinding => self.cluster_role_bindings.len(),
            Kind::ServiceAccount => self.service_accounts.len(),
        }
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Role {}
    impl Sealed for super::ClusterRole {}
    impl Sealed for super::RoleBinding {}
    impl Sealed for super::ClusterRoleBinding {}
    impl Sealed for super::ServiceAccount {}
}

/// A typed object the source holds: one of the four k8s-openapi `rbac/v1` types, or a `v1`
/// ServiceAccount.
pub trait RbacObject:
    sealed::Sealed
    + kube::Resource<DynamicType = ()>
    + Clone
    + std::fmt::Debug
    + serde::Serialize
    + serde::de::DeserializeOwned
    + Send
    + Sync
    + 'static
{
    const KIND: Kind;

    /// This kind's store writer among the source's.
    fn writer(writers: &mut Writers) -> &mut Writer<Self>;
}

impl RbacObject for Role {
    const KIND: Kind = Kind::Role;
    fn writer(writers: &mut Writers) -> &mut Writer<Self> {
        &mut writers.roles
    }
}

impl RbacObject for ClusterRole {
    const KIND: Kind = Kind::ClusterRole;
    fn writer(writers: &mut Writers) -> &mut Writer<Self> {
        &mut writers.cluster_roles
    }
}

impl RbacObject for RoleBinding {
    const KIND: Kind = Kind::RoleBinding;
    fn writer(writers: &mut Writers) -> &mut Writer<Self> {
        &mut writers.role_bindings
    }
}

impl RbacObject for ClusterRoleBinding {
    const KIND: Kind = Kind::ClusterRoleBinding;
    fn writer(writers: &mut Writers) -> &mut Writer<Self> {
        &mut writers.cluster_role_bindings
    }
}

impl RbacObject for ServiceAccount {
    const KIND: Kind = Kind::ServiceAccount;
    fn writer(writers: &mut Writers) -> &mut Writer<Self> {
        &mut writers.service_accounts
    }
}

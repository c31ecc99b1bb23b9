//! The four RBAC kinds the live source watches, and the typed k8s-openapi object of each.

use super::stores::Writers;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::runtime::reflector::store::Writer;

/// The four RBAC kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Role,
    ClusterRole,
    RoleBinding,
    ClusterRoleBinding,
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::Role,
        Kind::ClusterRole,
        Kind::RoleBinding,
        Kind::ClusterRoleBinding,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Role => "Role",
            Kind::ClusterRole => "ClusterRole",
            Kind::RoleBinding => "RoleBinding",
            Kind::ClusterRoleBinding => "ClusterRoleBinding",
        }
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Role {}
    impl Sealed for super::ClusterRole {}
    impl Sealed for super::RoleBinding {}
    impl Sealed for super::ClusterRoleBinding {}
}

/// A typed RBAC object the source holds: one of the four k8s-openapi `rbac/v1` types.
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

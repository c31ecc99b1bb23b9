//! The pure vocabulary every other module speaks: requests, actions, scopes and decisions.
//! Nothing here does I/O.

pub mod action;
pub mod check_access;
pub mod decision;
pub mod excerpt;
pub mod mapping;
pub mod name_hash;
pub mod request;
pub mod scope;
pub mod time;
pub mod workload;

pub use action::ActionPattern;
pub use decision::{Decision, Source, Verdict};
pub use request::{
    AccessRequest, GroupEntry, Groups, GroupsFrom, NonResourceAttributes, ResourceAttributes,
    SYSTEM_PREFIX,
};
pub use scope::{ManagementGroups, Scope, ScopeError};
pub use time::Timestamp;
pub use workload::{WorkloadMode, WorkloadQuestion};

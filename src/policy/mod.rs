//! Policy: files -> parsed objects ([`PolicySet`]) -> validated, indexed, immutable
//! [`Snapshot`]. Loading is all or nothing: any error diagnostic rejects the whole set.

pub mod assignments;
pub mod compiled;
pub mod condition;
pub mod copies;
pub mod diagnostic;
pub mod directory;
pub mod directory_set;
pub mod filter;
pub mod index;
pub mod known_actions;
pub mod load;
pub mod pace;
pub mod parse;
pub mod rbac;
pub mod schema;
pub mod scope_table;
pub mod set;
pub mod store;
pub mod target;
pub mod workload;
pub mod yaml_budget;

pub use index::{IndexOptions, Snapshot, SnapshotStats};

pub use diagnostic::{Diagnostic, DiagnosticKind, LoadError, Origin, Severity};
pub use set::PolicySet;

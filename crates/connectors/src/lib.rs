//! Connector implementations and the runner that drives sync jobs.
//!
//! [`local`] implements the engine's source and target traits over tenants hosted here; [`graph`] and [`scim`]
//! reach remote Graph tenants and SCIM services over HTTP. [`runner`] owns the tokio tasks that run cycles.

pub mod graph;
pub mod held;
mod inbound_guard;
pub mod local;
mod notify;
pub mod runner;
pub mod scim;
mod trust;

pub use graph::{GraphClient, GraphSource, GraphTarget};
pub use inbound_guard::refuse_protected_group;
pub use local::{LocalSource, LocalTarget};
pub use notify::raise_alert;
pub use runner::{JobRole, LeaseOptions, RunError, SyncRunner};
pub use scim::ScimTarget;

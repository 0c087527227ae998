//! Connector implementations and the runner that drives sync jobs.
//!
//! [`local`] implements the engine's source and target traits over tenants hosted here; [`graph`] and [`scim`]
//! reach remote Graph tenants and SCIM services over HTTP. [`runner`] owns the tokio tasks that run cycles.

pub mod graph;
mod inbound_guard;
pub mod local;
pub mod runner;
pub mod scim;

pub use graph::{GraphClient, GraphSource, GraphTarget};
pub use local::{LocalSource, LocalTarget};
pub use runner::{JobRole, LeaseOptions, RunError, SyncRunner};
pub use scim::ScimTarget;

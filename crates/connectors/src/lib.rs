//! Connector implementations and the runner that drives sync jobs.
//!
//! [`local`] implements the engine's source and target traits over tenants hosted here; remote Graph and SCIM
//! peers (issue 6) will sit beside it. [`runner`] owns the tokio tasks that run cycles.

pub mod local;
pub mod runner;
pub mod scim;

pub use local::{LocalSource, LocalTarget};
pub use runner::{RunError, SyncRunner};
pub use scim::ScimTarget;

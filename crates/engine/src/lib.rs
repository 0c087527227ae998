//! Cross-tenant synchronization jobs: the Azure2Azure schema ([`schema`]), job documents ([`job`]) behind one typed
//! repository ([`repo::SyncRepo`]), planning one user ([`plan`]), running a cycle ([`cycle`]) and provisioning log
//! entries ([`log`]); remote credentials are sealed at rest through the process's [`sealing::SecretSealer`].
//!
//! The engine sees directories only through the [`connector`] traits and storage only through the `Store`
//! trait; it does no IO of its own, starts no tasks and reads time from the `Clock` and ids from the
//! [`ids::IdSource`] it is given (`clippy.toml` enforces both).

pub mod admin;
pub mod alerts;
pub mod audit;
pub mod connector;
pub mod cycle;
pub mod dry_run;
pub mod groups;
pub mod ids;
pub mod job;
pub mod log;
pub mod plan;
pub mod policy;
pub mod repo;
pub mod schema;
pub mod sealing;
pub mod settings;
pub mod trust;

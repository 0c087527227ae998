//! Cross-tenant synchronization jobs: the Azure2Azure schema ([`schema`]), job documents ([`job`]), planning one
//! user ([`plan`]), running a cycle ([`cycle`]) and provisioning log entries ([`log`]); remote credentials
//! are sealed at rest through the process's [`sealing::SecretSealer`].
//!
//! The engine sees directories only through the [`connector`] traits and storage only through the `Store`
//! trait; it does no IO of its own, starts no tasks and reads time from the `Clock` it is given.

pub mod admin;
pub mod audit;
pub mod connector;
pub mod cycle;
pub mod dry_run;
pub mod job;
pub mod log;
pub mod plan;
pub mod policy;
pub mod schema;
pub mod sealing;
pub mod settings;

//! Cross-tenant synchronization (issue 4) through the real HTTP API: the Graph configuration sequence, the
//! lifecycle state table, managers, consent, loop-freedom and topologies, provision on demand, the schema, job
//! control and tenant isolation. Helpers live in `tenantsync_testkit::sync`.

mod config;
mod consent;
mod graph_groups;
mod groups;
mod isolation;
mod job_control;
mod lifecycle;
mod limits;
mod manager;
mod on_demand;
mod schema;
mod topology;

//! The integration tests: the real server on a real port, driven over HTTP. One test binary, one module per area
//! (STYLE §9), so link time is paid once.
// Exact Graph bodies are written as json! literals, which nest deeper than the default limit.
#![recursion_limit = "256"]

mod auth;
mod bad_input;
mod batch;
mod console;
mod contract;
mod deleted;
mod delta;
mod dynamic_groups;
mod groups;
mod guardrails;
mod guards;
mod isolation;
mod openapi;
mod ops;
mod postgres;
mod protocol_errors;
mod query;
mod query_options;
mod scim;
mod sync;
mod tenants;
mod trust;
mod users;

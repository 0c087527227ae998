//! Inbound sync guardrails (issue 12) through the real HTTP API: the policy documents, and their enforcement on the
//! writes of local sync jobs (held changes, approve and reject, audit mode). Each scenario runs on SQLite, and on
//! PostgreSQL when `TENANTSYNC_TEST_POSTGRES_URL` is set.

mod benign;
mod defence;
mod enforce;
mod policy;
mod remote;

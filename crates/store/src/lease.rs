//! Job leases and cross-process wake-ups: what several processes sharing one database need so that each sync job
//! is run by exactly one of them at a time (`docs/design/scale-out.md`).
//!
//! A lease names its holder (a process), its fencing token and when it expires. A claim takes only free or expired
//! leases and bumps the token; a renewal moves the expiry and keeps the token; the write that saves a cycle's work
//! share-locks the lease row ([`crate::DirectoryTx::share_lease`]: no claim takes it until that write commits) and
//! compares the token, so a process whose lease moved can no longer save anything.

use async_trait::async_trait;
use tenantsync_model::TenantId;
use time::OffsetDateTime;

use crate::StoreError;

/// One job's lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseRow {
    pub tenant: TenantId,
    pub job_id: String,
    /// The process holding it; None once released (or never claimed).
    pub holder: Option<String>,
    /// Bumped by every claim, never by a renewal: the fencing token.
    pub token: i64,
    pub expires_at: OffsetDateTime,
}

/// What a holder's heartbeat answers: how many holders are alive (itself included), how many jobs exist, and the
/// fewest unexpired leases any live holder has, so that shares stay within one of each other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseCensus {
    pub holders: u64,
    pub jobs: u64,
    pub fewest_held: u64,
}

/// A request to claim free or expired leases.
#[derive(Clone, Copy, Debug)]
pub struct LeaseClaim<'a> {
    pub holder: &'a str,
    /// The document collection whose keys are the jobs (a lease exists for each of its documents).
    pub jobs_collection: &'a str,
    pub now: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    /// At most this many leases.
    pub max: u32,
}

/// What a cross-process notification asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Wake {
    /// A tenant's directory changed (committed): wake the jobs reading it.
    Tenant(TenantId),
    /// One job was started, restarted or reconfigured.
    Job(TenantId, String),
    /// Notifications may have been lost (the connection was re-established): wake every job.
    All,
}

impl Wake {
    /// The notification's payload: `<tenant>` or `<tenant>/<job>`.
    pub fn payload(&self) -> String {
        match self {
            Wake::Tenant(tenant) => tenant.to_string(),
            Wake::Job(tenant, job) => format!("{tenant}/{job}"),
            Wake::All => "*".to_owned(),
        }
    }

    /// Reads a payload written by [`Wake::payload`]; None for anything else.
    pub fn parse(payload: &str) -> Option<Wake> {
        if payload == "*" {
            return Some(Wake::All);
        }
        let (tenant, job) = match payload.split_once('/') {
            Some((tenant, job)) => (tenant, Some(job)),
            None => (payload, None),
        };
        let tenant = TenantId::parse(tenant).ok()?;
        Some(match job {
            Some(job) if !job.is_empty() => Wake::Job(tenant, job.to_owned()),
            Some(_) => return None,
            None => Wake::Tenant(tenant),
        })
    }
}

/// Notifications from other processes sharing the database, in commit order.
#[async_trait]
pub trait WakeFeed: Send {
    /// The next notification; waits for it. After a lost connection the feed reconnects and answers [`Wake::All`].
    async fn next(&mut self) -> Result<Wake, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip() {
        let tenant = TenantId::new_random();
        for wake in [Wake::Tenant(tenant), Wake::Job(tenant, "Azure2Azure.abc".to_owned()), Wake::All] {
            assert_eq!(Wake::parse(&wake.payload()), Some(wake));
        }
        assert_eq!(Wake::parse("not-a-tenant"), None);
        assert_eq!(Wake::parse(&format!("{tenant}/")), None);
    }
}

//! Job leases and wake-ups across processes, through the repository like every other piece of a job's state
//! (`docs/design/scale-out.md`). Times come from the repository's clock; a lease lasts `ttl` from the call.

use std::time::Duration;

use tenantsync_store::{LeaseCensus, LeaseClaim, LeaseRow, Wake, WakeFeed};

use super::SyncRepo;
use crate::job::{JOBS, JobError, JobKey};

fn span(ttl: Duration) -> time::Duration {
    time::Duration::try_from(ttl).unwrap_or(time::Duration::MAX)
}

impl SyncRepo {
    /// Records that `holder` is alive for `ttl` and counts the live holders and the jobs.
    pub async fn heartbeat(&self, holder: &str, ttl: Duration) -> Result<LeaseCensus, JobError> {
        let now = self.now();
        Ok(self.store.heartbeat(holder, JOBS.name(), now, now + span(ttl)).await?)
    }

    /// Claims up to `max` free or expired job leases for `holder`, each for `ttl` with a new fencing token.
    pub async fn claim_leases(&self, holder: &str, ttl: Duration, max: u32) -> Result<Vec<LeaseRow>, JobError> {
        let now = self.now();
        let jobs = JOBS;
        let claim = LeaseClaim { holder, jobs_collection: jobs.name(), now, expires_at: now + span(ttl), max };
        Ok(self.store.claim_leases(&claim).await?)
    }

    /// Extends `holder`'s unexpired leases by `ttl`; the answer is every lease it still holds.
    pub async fn renew_leases(&self, holder: &str, ttl: Duration) -> Result<Vec<LeaseRow>, JobError> {
        let now = self.now();
        Ok(self.store.renew_leases(holder, JOBS.name(), now, now + span(ttl)).await?)
    }

    /// Frees `holder`'s leases of `jobs` (all of them, and its heartbeat, when None).
    pub async fn release_leases(&self, holder: &str, jobs: Option<&[JobKey]>) -> Result<u64, JobError> {
        let jobs: Option<Vec<_>> =
            jobs.map(|jobs| jobs.iter().map(|key| (key.tenant, key.job.as_str().to_owned())).collect());
        Ok(self.store.release_leases(holder, jobs.as_deref()).await?)
    }

    /// A job's lease (who runs it), if it was ever claimed.
    pub async fn lease(&self, key: &JobKey) -> Result<Option<LeaseRow>, JobError> {
        let mut tx = self.store.begin(key.tenant, tenantsync_store::TxMode::Read).await?;
        Ok(tx.get_lease(key.job.as_str()).await?)
    }

    /// Tells every process sharing the database about `wake` (a no-op on SQLite).
    pub async fn publish_wake(&self, wake: &Wake) -> Result<(), JobError> {
        Ok(self.store.publish_wake(wake).await?)
    }

    /// The wake-ups other processes publish; None where one process owns the database.
    pub async fn wake_feed(&self) -> Result<Option<Box<dyn WakeFeed>>, JobError> {
        Ok(self.store.wake_feed().await?)
    }
}

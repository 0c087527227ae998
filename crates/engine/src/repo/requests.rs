//! Job requests: one-off operations on a job (a provisioning on demand, approving staged deletions) asked of a
//! process that does not hold the job's lease (scale-out, `docs/design/scale-out.md`). Such an operation writes the
//! job's links, logs and target like a cycle does, so it must run where the cycles run: in the process holding the
//! lease, under its fencing token and its cycle lock. The asking process leaves a request document in the job's
//! tenant and wakes the holder; the holder takes it, runs it and writes the answer into the same document; the
//! asking process reads the answer and deletes the document.

use serde::{Deserialize, Serialize};
use tenantsync_model::ObjectId;
use time::OffsetDateTime;

use super::SyncRepo;
use crate::job::{self, Collection, JobError, JobKey};
use crate::log::Status;
use crate::plan::ObjectPlan;

/// What is asked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum JobRequest {
    /// `provisionOnDemand` of a user.
    ProvisionUser { id: ObjectId },
    /// `provisionOnDemand` of a group.
    ProvisionGroup { id: ObjectId },
    /// Apply the held deprovisionings an administrator approved (all of them without `source_id`).
    ApproveStaged { source_id: Option<ObjectId> },
}

/// How a request ended, as the holder saw it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum JobAnswer {
    Provisioned {
        plan: Box<ObjectPlan>,
        status: Status,
    },
    Approved {
        count: usize,
    },
    /// The operation failed; `code` names the error kind (see the runner), `message` says what happened.
    Failed {
        code: String,
        message: String,
    },
}

/// A request document (key: a time-ordered id).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestDoc {
    pub request: JobRequest,
    #[serde(with = "time::serde::rfc3339")]
    pub requested_at: OffsetDateTime,
    /// The process that took it, once one did.
    pub taken_by: Option<String>,
    pub answer: Option<JobAnswer>,
}

/// The collection of a job's requests.
pub fn requests_collection(job: &(impl AsRef<str> + ?Sized)) -> Collection<RequestDoc> {
    Collection::of_job("syncJobRequest", job)
}

/// Answered requests nobody collected (the asking process gave up or died) are deleted after this long.
const ABANDONED_AFTER: time::Duration = time::Duration::minutes(10);

impl SyncRepo {
    /// Leaves `request` for the holder of `key`'s lease; answers the request's key.
    pub async fn submit_request(&self, key: &JobKey, request: JobRequest) -> Result<String, JobError> {
        let id = ObjectId::new_time_ordered().to_string();
        let doc = RequestDoc { request, requested_at: self.now(), taken_by: None, answer: None };
        let mut tx = self.store.begin(key.tenant, tenantsync_store::TxMode::Write).await?;
        job::write(tx.as_mut(), &requests_collection(key.job.as_str()), &id, &doc, self.now()).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// The answer to request `id`, once there is one (the document is then deleted). `Ok(None)` while it waits.
    pub async fn collect_answer(&self, key: &JobKey, id: &str) -> Result<Option<JobAnswer>, JobError> {
        let collection = requests_collection(key.job.as_str());
        let mut tx = self.store.begin(key.tenant, tenantsync_store::TxMode::Read).await?;
        let doc = job::read(tx.as_mut(), &collection, id).await?;
        drop(tx);
        match doc.and_then(|doc| doc.answer) {
            Some(answer) => {
                let mut tx = self.store.begin(key.tenant, tenantsync_store::TxMode::Write).await?;
                job::delete(tx.as_mut(), &collection, id).await?;
                tx.commit().await?;
                Ok(Some(answer))
            }
            None => Ok(None),
        }
    }

    /// Withdraws request `id` (its asker stops waiting); true when a process had already taken it.
    pub async fn withdraw_request(&self, key: &JobKey, id: &str) -> Result<bool, JobError> {
        let collection = requests_collection(key.job.as_str());
        let mut tx = self.store.begin(key.tenant, tenantsync_store::TxMode::Write).await?;
        let doc = job::read_for_update(tx.as_mut(), &collection, id).await?;
        job::delete(tx.as_mut(), &collection, id).await?;
        tx.commit().await?;
        Ok(doc.is_some_and(|doc| doc.taken_by.is_some()))
    }

    /// Takes the job's waiting requests for `holder` (at most `limit`, oldest first), and deletes answered ones
    /// nobody collected for [`ABANDONED_AFTER`].
    pub async fn take_requests(
        &self,
        key: &JobKey,
        holder: &str,
        limit: usize,
    ) -> Result<Vec<(String, JobRequest)>, JobError> {
        let collection = requests_collection(key.job.as_str());
        let mut tx = self.store.begin(key.tenant, tenantsync_store::TxMode::Read).await?;
        let docs = job::read_all_keyed(tx.as_mut(), &collection).await?;
        drop(tx);
        if docs.is_empty() {
            return Ok(Vec::new());
        }
        let now = self.now();
        let mut taken = Vec::new();
        let mut tx = self.store.begin(key.tenant, tenantsync_store::TxMode::Write).await?;
        for (id, _) in docs {
            // Read again under the write lock: the asker may have withdrawn it, another holder taken it.
            let Some(mut doc) = job::read_for_update(tx.as_mut(), &collection, &id).await? else { continue };
            if doc.answer.is_some() {
                if now - doc.requested_at > ABANDONED_AFTER {
                    job::delete(tx.as_mut(), &collection, &id).await?;
                }
                continue;
            }
            if doc.taken_by.is_some() || taken.len() >= limit {
                continue;
            }
            doc.taken_by = Some(holder.to_owned());
            job::write(tx.as_mut(), &collection, &id, &doc, now).await?;
            taken.push((id, doc.request));
        }
        tx.commit().await?;
        Ok(taken)
    }

    /// Writes the answer to request `id`, unless its asker withdrew it meanwhile.
    pub async fn answer_request(&self, key: &JobKey, id: &str, answer: JobAnswer) -> Result<(), JobError> {
        let collection = requests_collection(key.job.as_str());
        let mut tx = self.store.begin(key.tenant, tenantsync_store::TxMode::Write).await?;
        if let Some(mut doc) = job::read_for_update(tx.as_mut(), &collection, id).await? {
            doc.answer = Some(answer);
            job::write(tx.as_mut(), &collection, id, &doc, self.now()).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

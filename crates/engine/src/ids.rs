//! Generated ids (cycle ids, provisioning log entry ids, job ids) come from an [`IdSource`] the caller hands in, as
//! time comes from a `Clock`: tests can make them predictable, and `clippy.toml` keeps `Uuid::new_v4` out of the
//! rest of the engine. This module does not decide id formats; callers wrap the UUID as they need.

use uuid::Uuid;

/// Where new ids come from.
pub trait IdSource: Send + Sync {
    fn new_id(&self) -> Uuid;
}

/// Random (version 4) UUIDs: the source every process uses.
pub struct RandomIds;

impl IdSource for RandomIds {
    #[allow(clippy::disallowed_methods)] // The one place the engine draws random ids.
    fn new_id(&self) -> Uuid {
        Uuid::new_v4()
    }
}

/// The process-wide random source.
pub static RANDOM: RandomIds = RandomIds;

/// Ids counted up from a seed: for tests that compare ids.
pub struct SequentialIds(std::sync::atomic::AtomicU64);

impl SequentialIds {
    pub fn new(first: u64) -> SequentialIds {
        SequentialIds(std::sync::atomic::AtomicU64::new(first))
    }
}

impl IdSource for SequentialIds {
    fn new_id(&self) -> Uuid {
        Uuid::from_u64_pair(0, self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
    }
}

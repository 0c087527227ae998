//! The tenant records this process read lately (the tenant row and its verified domains), so that the reads every
//! request makes (the token middleware's "does the tenant exist", a user write's domain check, SCIM's userPrincipalName
//! derivation) cost no statement. Without it the tenant row and its domains were half the statements of the SCIM
//! request mix (issue 14).
//!
//! Correctness in this process: every write of the tenants table or of a tenant's domains goes through
//! `Directory`, which calls [`TenantCache::forget`] once the write has committed, before it returns. An epoch
//! taken before each store read keeps a read that raced with such a write from storing what it read, so no answer
//! older than a committed write is served after the write returns. Today the only such write is
//! `Directory::create_tenant` (tenant rows and domains are never updated or deleted); a future rename, domain change
//! or tenant deletion must call `forget` the same way.
//!
//! Across processes (several servers sharing one PostgreSQL database) an entry is used for [`TENANT_TTL`] after it
//! was read, then read again: that bounds how long another process's write could go unseen here. A version check in
//! each request's transaction was the alternative; it costs a statement per request (the thing this cache removes),
//! and the middleware's existence check has no transaction to put it in. A tenant that was not found is not
//! remembered, so one created by another process is seen at once.
//!
//! Not here: lookups by name or domain (`find_tenant`, the token endpoint and sign-in, once per token).

use std::collections::HashMap;
use std::sync::RwLock;

use time::{Duration, OffsetDateTime};

use tenantsync_model::{Tenant, TenantId};

/// How long a cached tenant record is used before it is read again, which bounds how stale it can be when another
/// process changes it.
pub const TENANT_TTL: Duration = Duration::seconds(2);

/// Past this many entries an insert first drops the expired ones, and all of them if that is not enough: the cache
/// holds the tenants in use, not every tenant ever read.
const MAX_ENTRIES: usize = 4096;

/// Tenant records by id, each with the time it was read.
#[derive(Default)]
pub(crate) struct TenantCache {
    inner: RwLock<Inner>,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<TenantId, (Tenant, OffsetDateTime)>,
    /// Bumped by every [`TenantCache::forget`]; a read that started in an older epoch stores nothing.
    epoch: u64,
}

impl TenantCache {
    /// The cached record of `tenant` if it was read less than [`TENANT_TTL`] before `now` (and not after `now`: a
    /// clock that went back does not stretch an entry's life).
    pub(crate) fn get(&self, tenant: TenantId, now: OffsetDateTime) -> Option<Tenant> {
        let inner = self.inner.read().expect("tenant cache lock is never poisoned");
        let (record, read_at) = inner.entries.get(&tenant)?;
        let age = now - *read_at;
        (age >= Duration::ZERO && age < TENANT_TTL).then(|| record.clone())
    }

    /// The epoch to pass to [`TenantCache::put`], taken before the store read whose result is put.
    pub(crate) fn epoch(&self) -> u64 {
        self.inner.read().expect("tenant cache lock is never poisoned").epoch
    }

    /// Remembers `record`, read at `read_at`, unless a [`TenantCache::forget`] happened since `epoch` was taken.
    pub(crate) fn put(&self, record: &Tenant, read_at: OffsetDateTime, epoch: u64) {
        let mut inner = self.inner.write().expect("tenant cache lock is never poisoned");
        if inner.epoch != epoch {
            return;
        }
        if inner.entries.len() >= MAX_ENTRIES && !inner.entries.contains_key(&record.id) {
            inner.entries.retain(|_, (_, at)| {
                let age = read_at - *at;
                age >= Duration::ZERO && age < TENANT_TTL
            });
            if inner.entries.len() >= MAX_ENTRIES {
                inner.entries.clear();
            }
        }
        inner.entries.insert(record.id, (record.clone(), read_at));
    }

    /// Drops `tenant`'s record; called after a write of its row or domains has committed. Reads in flight that
    /// started before this call store nothing.
    pub(crate) fn forget(&self, tenant: TenantId) {
        let mut inner = self.inner.write().expect("tenant cache lock is never poisoned");
        inner.epoch += 1;
        inner.entries.remove(&tenant);
    }
}

#[cfg(test)]
mod tests {
    use tenantsync_model::TenantName;

    use super::*;

    fn tenant(name: &str) -> Tenant {
        let name = TenantName::parse(name).expect("test tenant name parses");
        Tenant {
            id: TenantId::new_random(),
            display_name: name.as_str().to_owned(),
            initial_domain: name.initial_domain(),
            domains: vec![name.initial_domain()],
            name,
            created_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    fn at(seconds: f64) -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH + Duration::seconds_f64(seconds)
    }

    #[test]
    fn an_entry_lives_for_the_ttl_only() {
        let cache = TenantCache::default();
        let contoso = tenant("contoso");
        cache.put(&contoso, at(100.0), cache.epoch());
        assert_eq!(cache.get(contoso.id, at(100.0)), Some(contoso.clone()));
        assert_eq!(cache.get(contoso.id, at(101.9)), Some(contoso.clone()));
        assert_eq!(cache.get(contoso.id, at(102.0)), None, "expired after TENANT_TTL");
        assert_eq!(cache.get(contoso.id, at(99.0)), None, "a clock that went back does not keep an entry alive");
        assert_eq!(cache.get(TenantId::new_random(), at(100.0)), None);
    }

    #[test]
    fn forget_drops_the_entry_and_refuses_reads_that_started_before_it() {
        let cache = TenantCache::default();
        let contoso = tenant("contoso");
        cache.put(&contoso, at(0.0), cache.epoch());
        // A read starts (takes the epoch), then a write commits and forgets, then the read's result arrives.
        let epoch_of_slow_read = cache.epoch();
        cache.forget(contoso.id);
        assert_eq!(cache.get(contoso.id, at(0.5)), None);
        cache.put(&contoso, at(0.5), epoch_of_slow_read);
        assert_eq!(cache.get(contoso.id, at(0.6)), None, "a read older than the write is not stored");
        // A read that starts after the write is stored.
        cache.put(&contoso, at(0.7), cache.epoch());
        assert_eq!(cache.get(contoso.id, at(0.8)), Some(contoso));
    }

    #[test]
    fn the_cache_stays_bounded() {
        let cache = TenantCache::default();
        for _ in 0..MAX_ENTRIES {
            cache.put(&tenant("fabrikam"), at(0.0), cache.epoch());
        }
        let newest = tenant("contoso");
        cache.put(&newest, at(10.0), cache.epoch());
        let len = cache.inner.read().expect("test lock").entries.len();
        assert_eq!(len, 1, "expired entries were dropped to make room");
        assert_eq!(cache.get(newest.id, at(10.0)), Some(newest));
    }
}

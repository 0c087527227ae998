//! The sliding hour of a partner's creates, kept by the target as per-minute counts (at most 60 entries, so the
//! document stays small however large the flood), and the partner's user count.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A partner's inbound volume, stored by the target per partner.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QuotaLedger {
    /// Users of the tenant from this partner, counted once from the directory and then kept by inbound creates
    /// and deletes.
    pub partner_users: u64,
    /// Creates per minute (key: Unix time in minutes).
    #[serde(default)]
    pub creates_by_minute: BTreeMap<i64, u64>,
}

impl QuotaLedger {
    /// Creates in the hour before `now` (Unix seconds), the current minute included.
    pub fn creates_last_hour(&self, now: i64) -> u64 {
        let minute = now.div_euclid(60);
        self.creates_by_minute.range(minute - 59..=minute).map(|(_, count)| count).sum()
    }

    /// Counts `n` creates at `now` and forgets minutes older than an hour.
    pub fn record_creates(&mut self, now: i64, n: u64) {
        let minute = now.div_euclid(60);
        if n > 0 {
            *self.creates_by_minute.entry(minute).or_default() += n;
            self.partner_users += n;
        }
        self.creates_by_minute.retain(|at, _| *at > minute - 60);
    }
}

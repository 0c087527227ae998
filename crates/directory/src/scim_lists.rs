//! SCIM lists at store speed (issue 14): windows of live users or groups that storage filters, orders and pages
//! ([`Directory::scim_window`]), and candidates in id order for the filters storage cannot answer alone
//! ([`Directory::scim_candidates`]), so that no list holds a whole tenant in memory.
//!
//! This module does not evaluate SCIM filters or render SCIM JSON; `tenantsync-api` does, on what it returns.

use tenantsync_model::{DirectoryObject, ObjectId, ObjectKind, TenantId};
use tenantsync_store::{KeyMatch, ScimKey, ScimSelect, TxMode};

use crate::objects::decode;
use crate::{Directory, DirectoryError, OpTimer};

/// A window of a SCIM list that storage answers entirely: the live objects of `kind` passing `conditions`, ordered
/// by `order`, `offset` skipped, at most `limit`.
#[derive(Clone, Debug)]
pub struct ScimWindow {
    pub kind: ObjectKind,
    pub conditions: Vec<(ScimKey, KeyMatch)>,
    pub order: ScimKey,
    pub descending: bool,
    /// An empty `order` value means the attribute is missing: such objects come last when ascending and first
    /// when descending (RFC 7644 §3.4.2.3), in id order either way.
    pub empty_is_missing: bool,
    pub offset: u64,
    pub limit: u32,
}

/// What [`Directory::scim_window`] found: how many objects pass the conditions, and the window's objects.
#[derive(Clone, Debug)]
pub struct ScimWindowPage {
    pub total: u64,
    pub items: Vec<DirectoryObject>,
}

impl Directory {
    /// One window of a SCIM list, and the count of all matches, from one read transaction.
    pub async fn scim_window(&self, tenant: TenantId, window: &ScimWindow) -> Result<ScimWindowPage, DirectoryError> {
        let _timer = OpTimer::start("scim_window");
        let mut tx = self.begin(tenant, TxMode::Read).await?;
        let total = tx.count_scim(window.kind, &window.conditions).await?;
        let select = |conditions: Vec<(ScimKey, KeyMatch)>, order: ScimKey, descending: bool, offset: u64, limit| {
            ScimSelect { kind: window.kind, conditions, order, descending, after: None, offset, limit }
        };
        let mut rows = Vec::new();
        if window.limit == 0 || window.offset >= total {
            // Nothing to read beyond the count.
        } else if !window.empty_is_missing || window.order == ScimKey::Id {
            let all = select(window.conditions.clone(), window.order, window.descending, window.offset, window.limit);
            rows = tx.select_scim(&all).await?;
        } else {
            // Two segments, each served by the order's index: the objects with a value in order, and those
            // without one in id order.
            let with_condition = |condition: KeyMatch| {
                let mut conditions = window.conditions.clone();
                conditions.push((window.order, condition));
                conditions
            };
            let (first, second) = if window.descending {
                (with_condition(KeyMatch::Empty), with_condition(KeyMatch::NotEmpty))
            } else {
                (with_condition(KeyMatch::NotEmpty), with_condition(KeyMatch::Empty))
            };
            let first_is_valued = !window.descending;
            let n_first = tx.count_scim(window.kind, &first).await?;
            let first_order = if first_is_valued { window.order } else { ScimKey::Id };
            let second_order = if first_is_valued { ScimKey::Id } else { window.order };
            if window.offset < n_first {
                let page =
                    select(first, first_order, window.descending && first_is_valued, window.offset, window.limit);
                rows = tx.select_scim(&page).await?;
            }
            let remaining = window.limit.saturating_sub(rows.len() as u32);
            if remaining > 0 {
                let offset = window.offset.saturating_sub(n_first);
                let page = select(second, second_order, window.descending && !first_is_valued, offset, remaining);
                rows.extend(tx.select_scim(&page).await?);
            }
        }
        tx.commit().await?;
        let items = rows.iter().map(decode).collect::<Result<Vec<_>, _>>()?;
        Ok(ScimWindowPage { total, items })
    }

    /// Up to `limit` live objects of `kind` passing `conditions` with an id above `after`, in id order: one page
    /// of candidates for a filter evaluated by the caller.
    pub async fn scim_candidates(
        &self,
        tenant: TenantId,
        kind: ObjectKind,
        conditions: &[(ScimKey, KeyMatch)],
        after: Option<ObjectId>,
        limit: u32,
    ) -> Result<Vec<DirectoryObject>, DirectoryError> {
        let _timer = OpTimer::start("scim_candidates");
        let mut tx = self.begin(tenant, TxMode::Read).await?;
        let select = ScimSelect {
            kind,
            conditions: conditions.to_vec(),
            order: ScimKey::Id,
            descending: false,
            after,
            offset: 0,
            limit,
        };
        let rows = tx.select_scim(&select).await?;
        tx.commit().await?;
        rows.iter().map(decode).collect()
    }
}

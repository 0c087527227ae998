//! SCIM lists at store speed (issue 14): windows of live users or groups that storage filters, orders and pages
//! ([`Directory::scim_window`]), and candidates in id order for the filters storage cannot answer alone
//! ([`Directory::scim_candidates`]), so that no list holds a whole tenant in memory.
//!
//! This module does not evaluate SCIM filters or render SCIM JSON; `tenantsync-api` does, on what it returns.

use std::collections::{HashMap, HashSet};

use tenantsync_model::{DirectoryObject, ObjectId, ObjectKind, TenantId, User};
use tenantsync_store::{DirectoryTx, KeyMatch, LinkKind, ScimKey, ScimSelect, TxMode};

use crate::objects::{decode, live_of_kind};
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

/// What [`Directory::scim_window`] found: how many objects pass the conditions, the window's objects, and the
/// live managers of its users (user id → manager id, as [`Directory::managers_of`] gives them).
#[derive(Clone, Debug)]
pub struct ScimWindowPage {
    pub total: u64,
    pub items: Vec<DirectoryObject>,
    pub managers: HashMap<ObjectId, ObjectId>,
}

impl Directory {
    /// One window of a SCIM list, and the count of all matches, from one read transaction.
    pub async fn scim_window(&self, tenant: TenantId, window: &ScimWindow) -> Result<ScimWindowPage, DirectoryError> {
        let _timer = OpTimer::start("scim_window");
        let mut tx = self.begin(tenant, TxMode::Read).await?;
        let select = |conditions: Vec<(ScimKey, KeyMatch)>, order: ScimKey, descending: bool, offset: u64, limit| {
            ScimSelect { kind: window.kind, conditions, order, descending, after: None, offset, limit }
        };
        let mut rows = Vec::new();
        let mut total = None;
        if window.limit == 0 {
            // Only the count.
        } else if !window.empty_is_missing || window.order == ScimKey::Id {
            let all = select(window.conditions.clone(), window.order, window.descending, window.offset, window.limit);
            rows = tx.select_scim(&all).await?;
            // A window that is not full and not empty ends the matches: no count needed (the common case of an
            // `eq` filter).
            if !rows.is_empty() && rows.len() < window.limit as usize {
                total = Some(window.offset + rows.len() as u64);
            }
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
        let total = match total {
            Some(total) => total,
            None => tx.count_scim(window.kind, &window.conditions).await?,
        };
        let user_ids: Vec<ObjectId> =
            rows.iter().filter(|row| row.kind == ObjectKind::User).map(|row| row.id).collect();
        let managers = managers_in(tx.as_mut(), &user_ids).await?;
        tx.commit().await?;
        let items = rows.iter().map(decode).collect::<Result<Vec<_>, _>>()?;
        Ok(ScimWindowPage { total, items, managers })
    }

    /// A live user (by object id or userPrincipalName) and its live manager's id, from one read transaction: what
    /// SCIM shows of a user.
    pub async fn user_with_manager(
        &self,
        tenant: TenantId,
        key: &str,
    ) -> Result<(User, Option<ObjectId>), DirectoryError> {
        let _timer = OpTimer::start("user_with_manager");
        let mut tx = self.begin(tenant, TxMode::Read).await?;
        let DirectoryObject::User(user) = live_of_kind(tx.as_mut(), key, ObjectKind::User).await? else {
            return Err(DirectoryError::not_found(key));
        };
        let managers = tx.links_from(LinkKind::Manager, user.id).await?;
        let manager = if managers.is_empty() { None } else { first_live(tx.get_objects(&managers).await?) };
        tx.commit().await?;
        Ok((user, manager))
    }

    /// The live managers of `users` (user id → manager id), as [`Directory::user_with_manager`] finds them, in
    /// two queries: for rendering a page of users.
    pub async fn managers_of(
        &self,
        tenant: TenantId,
        users: &[ObjectId],
    ) -> Result<HashMap<ObjectId, ObjectId>, DirectoryError> {
        if users.is_empty() {
            return Ok(HashMap::new());
        }
        let _timer = OpTimer::start("managers_of");
        let mut tx = self.begin(tenant, TxMode::Read).await?;
        let managers = managers_in(tx.as_mut(), users).await?;
        tx.commit().await?;
        Ok(managers)
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

/// The smallest id among the live rows, as `links_from` order would give first.
fn first_live(rows: Vec<tenantsync_store::ObjectRow>) -> Option<ObjectId> {
    rows.into_iter().filter(|row| row.deleted_at.is_none()).map(|row| row.id).min()
}

/// The live managers of `users` (user id → manager id): one query for the links, one more only when there are some.
async fn managers_in(
    tx: &mut dyn DirectoryTx,
    users: &[ObjectId],
) -> Result<HashMap<ObjectId, ObjectId>, DirectoryError> {
    if users.is_empty() {
        return Ok(HashMap::new());
    }
    let pairs = tx.links_from_many(LinkKind::Manager, users).await?;
    if pairs.is_empty() {
        return Ok(HashMap::new());
    }
    let manager_ids: Vec<ObjectId> = pairs.iter().map(|(_, manager)| *manager).collect();
    let live: HashSet<ObjectId> = tx
        .get_objects(&manager_ids)
        .await?
        .into_iter()
        .filter(|row| row.deleted_at.is_none())
        .map(|row| row.id)
        .collect();
    let mut managers = HashMap::new();
    // Pairs come ordered by user then manager: the first live one wins, as for a single user.
    for (user, manager) in pairs {
        if live.contains(&manager) {
            managers.entry(user).or_insert(manager);
        }
    }
    Ok(managers)
}

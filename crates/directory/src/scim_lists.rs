//! SCIM lists at store speed (issue 14): windows of live users or groups that storage filters, orders and pages
//! ([`Directory::scim_window`]), and candidates in id order for the filters storage cannot answer alone
//! ([`Directory::scim_candidates`]), so that no list holds a whole tenant in memory.
//!
//! This module does not evaluate SCIM filters or render SCIM JSON; `tenantsync-api` does, on what it returns.

use std::collections::HashMap;

use tenantsync_model::{DirectoryObject, ObjectId, ObjectKind, TenantId, User};
use tenantsync_store::{KeyMatch, ScimKey, ScimSelect, TxMode};

use crate::objects::decode;
use crate::sync_reads::{live_managers, live_user_with_manager};
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
            let first_order = if first_is_valued { window.order } else { ScimKey::Id };
            let second_order = if first_is_valued { ScimKey::Id } else { window.order };
            // The segment without values is in ascending id order whichever the direction.
            let page = select(first.clone(), first_order, false, window.offset, window.limit);
            rows = tx.select_scim(&page).await?;
            let remaining = window.limit.saturating_sub(rows.len() as u32);
            // Only a window reaching past the first segment needs its size (where the second one starts).
            if remaining > 0 {
                let n_first = tx.count_scim(window.kind, &first).await?;
                let offset = window.offset.saturating_sub(n_first);
                let page = select(second, second_order, window.descending, offset, remaining);
                rows.extend(tx.select_scim(&page).await?);
            }
        }
        let total = match total {
            Some(total) => total,
            None => tx.count_scim(window.kind, &window.conditions).await?,
        };
        let user_ids: Vec<ObjectId> =
            rows.iter().filter(|row| row.kind == ObjectKind::User).map(|row| row.id).collect();
        let managers = live_managers(tx.as_mut(), &user_ids).await?;
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
        let (user, manager) = live_user_with_manager(tx.as_mut(), key).await?;
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
        let managers = live_managers(tx.as_mut(), users).await?;
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

#[cfg(test)]
mod tests {

    use tenantsync_model::{DirectoryObject, ObjectId, ObjectKind, User};
    use tenantsync_store::{ScimKey, TxMode};

    use crate::ScimWindow;

    fn user(idx: usize, id: ObjectId, display_name: Option<&str>) -> User {
        let mut json = serde_json::json!({
            "id": id,
            "userPrincipalName": format!("user{idx}@contoso.example"),
            "mailNickname": format!("user{idx}"),
            "accountEnabled": true,
            "createdDateTime": "2030-01-01T09:00:00Z",
        });
        if let Some(display_name) = display_name {
            json["displayName"] = display_name.into();
        }
        serde_json::from_value(json).expect("a valid user")
    }

    /// Users without a display name are "missing" for `sortBy=displayName`: last when ascending, first when
    /// descending, in id order either way (RFC 7644 §3.4.2.3), across windows that straddle the two segments.
    #[tokio::test]
    async fn display_name_windows_put_missing_values_last_or_first() {
        let data_dir = tempfile::tempdir().expect("temporary directory");
        let (directory, tenant) = crate::test_support::directory_with_tenant(data_dir.path()).await;
        // Directory writes refuse a user without a display name, so the rows are written as storage holds them.
        let names = [Some("b"), None, Some("A"), Some(""), Some("c"), None, Some("a"), Some("B")];
        // Ids in the order of `names`, so that positions name the id order.
        let mut ids: Vec<ObjectId> = names.iter().map(|_| ObjectId::new_random()).collect();
        ids.sort();
        let users: Vec<User> = names.iter().enumerate().map(|(idx, name)| user(idx, ids[idx], *name)).collect();
        let mut tx = directory.store.begin(tenant.id, TxMode::Write).await.expect("begin");
        for user in &users {
            tx.insert_object(&crate::objects::encode_user(user)).await.expect("insert");
        }
        tx.commit().await.expect("commit");

        let id = |idx: usize| users[idx].id;
        // Ascending: a, A (ties by id: 2 before 6), b/B, c, then the missing ones (1, 3, 5) by id.
        let ascending = [2, 6, 0, 7, 4, 1, 3, 5].map(id);
        // Descending: the missing ones by id, then c, b/B, a/A (ties still by ascending id).
        let descending = [1, 3, 5, 4, 0, 7, 2, 6].map(id);
        for (is_descending, expected) in [(false, ascending), (true, descending)] {
            for offset in 0..8u64 {
                for limit in [1u32, 2, 3, 8] {
                    let window = ScimWindow {
                        kind: ObjectKind::User,
                        conditions: vec![],
                        order: ScimKey::DisplayName,
                        descending: is_descending,
                        empty_is_missing: true,
                        offset,
                        limit,
                    };
                    let page = directory.scim_window(tenant.id, &window).await.expect("window");
                    let ids: Vec<ObjectId> = page.items.iter().map(DirectoryObject::id).collect();
                    let want: Vec<ObjectId> =
                        expected.iter().skip(offset as usize).take(limit as usize).copied().collect();
                    assert_eq!(ids, want, "descending {is_descending}, offset {offset}, limit {limit}");
                    assert_eq!(page.total, 8, "descending {is_descending}, offset {offset}, limit {limit}");
                }
            }
        }
    }
}

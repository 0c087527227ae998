//! [`DirectoryTx`] over one SQLite transaction. Every statement names the tenant fixed at `begin`.

use std::sync::Arc;

use async_trait::async_trait;
use rusqlite::params;
use tenantsync_model::{ObjectId, ObjectKind, TenantId};
use tenantsync_store::{
    ChangeRow, DirectoryTx, DocRow, KeyMatch, LeaseRow, LinkKind, LogQuery, LogRow, ObjectRow, ScanOrder, ScanSpec,
    ScimKey, ScimSelect, StoreError, prefix_upper_bound,
};
use time::OffsetDateTime;
use tokio::sync::OwnedSemaphorePermit;

use crate::checkpoint::Checkpoints;
use crate::codec::{change_from_row, doc_from_row, get, log_from_row, micros, object_from_row, object_id, unavailable};
use crate::conn::{Bound, Conn, Sql, bound, execute, execute_unique, first, rows};

const OBJECT_COLUMNS: &str = "id, kind, upn, display_name, data, deleted_at, anchor";
/// The columns an object's row is written with ([`object_values`]).
const OBJECT_ROW_COLUMNS: &str = "id, tenant_id, kind, upn, upn_key, display_name, name_key, data, deleted_at, \
     anchor, anchor_key, scim_user_name, scim_external_id";
const DOC_COLUMNS: &str = "collection, doc_key, data, updated_at";
/// Rows per multi-row statement: well under SQLite's 32,766 bound parameters.
const ROWS_PER_STATEMENT: usize = 500;
/// Change-log entries written by one statement (seven parameters each).
const CHANGES_PER_STATEMENT: usize = 100;

/// The SCIM userName as migration 0023 indexes it: the expression must stay identical for SQLite to use the index.
const USER_NAME_KEY: &str = "lower(coalesce(scim_user_name, upn))";
/// The SCIM externalId as migration 0023 indexes it.
const EXTERNAL_ID_KEY: &str = "scim_external_id";

const LOG_COLUMNS: &str = "seq, id, job_id, cycle_id, at, action, status, source_id, target_id, data";

pub(crate) struct SqliteDirectoryTx {
    tenant: TenantId,
    tenant_text: String,
    /// The connection, in a transaction unless the mode was [`tenantsync_store::TxMode::ReadStatements`] (each
    /// statement then commits alone). Dropped without `commit`, it rolls back.
    conn: Conn,
    /// `COMMIT` at `commit` (nothing for statements that each committed alone).
    in_transaction: bool,
    /// A write transaction's turn among this process's writers, given back when the transaction ends (declared
    /// after `conn`, so dropped after it).
    _writer: Option<OwnedSemaphorePermit>,
    /// A write transaction tells the store's checkpoint task when it commits.
    checkpoints: Option<Arc<Checkpoints>>,
}

impl SqliteDirectoryTx {
    /// Starts the transaction with `begin` (`BEGIN` or `BEGIN IMMEDIATE`), or with none for statements that each
    /// commit alone.
    pub(crate) fn begin(
        tenant: TenantId,
        conn: Conn,
        begin: Option<&str>,
        writer: Option<OwnedSemaphorePermit>,
        checkpoints: Option<Arc<Checkpoints>>,
    ) -> Result<Self, StoreError> {
        if let Some(begin) = begin {
            conn.execute_batch(begin).map_err(unavailable)?;
        }
        Ok(Self {
            tenant,
            tenant_text: tenant.to_string(),
            conn,
            in_transaction: begin.is_some(),
            _writer: writer,
            checkpoints,
        })
    }

    fn tenant_missing(&self) -> StoreError {
        StoreError::NotFound { tenant: self.tenant, what: "tenant" }
    }
}

/// `kind = '<kind>'` for a query on `objects`, the kind as a literal: SQLite compares a bound kind with the
/// `kind = 'user'` of the partial indexes on `objects` and then prepares the statement again on every execution
/// (see [`Sql::push`]); with the literal it also sees which of those indexes apply.
fn kind_is(kind: ObjectKind) -> String {
    format!("kind = '{}'", kind.as_str())
}

fn lower(value: &Option<String>) -> Option<String> {
    value.as_ref().map(|text| text.to_lowercase())
}

fn name_key(row: &ObjectRow) -> String {
    row.display_name.clone().unwrap_or_default().to_lowercase()
}

impl SqliteDirectoryTx {
    /// The tenant's objects whose `column` (a trusted name) is one of `values`, a statement per chunk.
    fn objects_where_in(&self, column: &str, values: &[String]) -> Result<Vec<ObjectRow>, StoreError> {
        let mut found = Vec::with_capacity(values.len());
        // By id, the tenant term is written `+tenant_id`, which no index serves: without statistics SQLite otherwise
        // walks the tenant's whole `objects_by_id` range testing each id against the list (18 ms for 5 ids among
        // 100,000 users, growing with the tenant) instead of probing the primary key once per id (0.06 ms).
        let tenant_term = if column == "id" { "+tenant_id" } else { "tenant_id" };
        for chunk in values.chunks(ROWS_PER_STATEMENT) {
            let mut select = Sql::new(format!("SELECT {OBJECT_COLUMNS} FROM objects WHERE {tenant_term} = "));
            select.bind(&self.tenant_text).push(&format!(" AND {column} IN ("));
            select.bind_list(chunk.iter().map(Bound::from));
            select.push(")");
            found.extend(select.rows(&self.conn, object_from_row)?);
        }
        Ok(found)
    }

    /// (from, to) pairs of the tenant's `kind` links whose `column` (a trusted name) is one of `ids`, read from
    /// `source` (the `links` table, with an index hint or a join where needed), sorted.
    fn link_pairs_where_in(
        &self,
        kind: LinkKind,
        source: &str,
        column: &str,
        ids_in: &[ObjectId],
    ) -> Result<Vec<(ObjectId, ObjectId)>, StoreError> {
        let mut pairs = Vec::new();
        for chunk in ids_in.chunks(ROWS_PER_STATEMENT) {
            let mut select =
                Sql::new(format!("SELECT links.from_id, links.to_id FROM {source} WHERE links.tenant_id = "));
            select.bind(&self.tenant_text).push(" AND links.kind = ").bind(kind.as_str());
            select.push(&format!(" AND links.{column} IN ("));
            select.bind_list(chunk.iter().map(|id| Bound::from(id.to_string())));
            select.push(")");
            pairs.extend(select.rows(&self.conn, link_pair)?);
        }
        pairs.sort();
        Ok(pairs)
    }
}

/// A `(from_id, to_id)` pair from the first two columns.
fn link_pair(row: &rusqlite::Row<'_>) -> Result<(ObjectId, ObjectId), StoreError> {
    Ok((object_id(row, 0)?, object_id(row, 1)?))
}

/// `FROM objects WHERE …` for the live objects of `kind` passing every condition. The kind is written as a
/// literal, so that SQLite sees the `kind = 'user'` of the partial indexes of userName and externalId.
fn push_scim_where<'a>(query: &mut Sql<'a>, tenant: &'a str, kind: ObjectKind, conditions: &'a [(ScimKey, KeyMatch)]) {
    // Without statistics SQLite prefers walking `objects_by_id` in id order (no sort) over the index of a
    // condition, which reads the tenant's whole kind for one `userName eq`: the index of the first equality or
    // prefix condition is named.
    let index = conditions.iter().find_map(|(key, condition)| match (key, condition) {
        (ScimKey::Id, _) | (_, KeyMatch::Empty | KeyMatch::NotEmpty) => None,
        (_, KeyMatch::StartsWith(prefix)) if prefix.is_empty() => None,
        // The partial indexes hold users only.
        (ScimKey::UserName | ScimKey::ExternalId, _) if kind != ObjectKind::User => None,
        (ScimKey::UserName, _) => Some("objects_by_scim_user_name"),
        (ScimKey::ExternalId, _) => Some("objects_by_scim_external_id"),
        (ScimKey::DisplayName, _) => Some("objects_by_name"),
    });
    match index {
        Some(index) => query.push(&format!(" FROM objects INDEXED BY {index} WHERE tenant_id = ")),
        None => query.push(" FROM objects WHERE tenant_id = "),
    };
    query.bind(tenant);
    query.push(&format!(" AND {} AND deleted_at IS NULL", kind_is(kind)));
    for (key, condition) in conditions {
        let column = match key {
            ScimKey::Id => "id",
            ScimKey::UserName => USER_NAME_KEY,
            ScimKey::ExternalId => EXTERNAL_ID_KEY,
            ScimKey::DisplayName => "name_key",
        };
        push_key_match(query, column, condition);
    }
}

/// ` AND <column> …` for a condition on an indexed key; an absent value reads as the empty string.
fn push_key_match<'a>(query: &mut Sql<'a>, column: &str, condition: &'a KeyMatch) {
    match condition {
        KeyMatch::Equals(value) if value.is_empty() => {
            query.push(&format!(" AND coalesce({column}, '') = ''"));
        }
        KeyMatch::Equals(value) => {
            query.push(&format!(" AND {column} = ")).bind(value);
        }
        KeyMatch::StartsWith(prefix) if prefix.is_empty() => {}
        KeyMatch::StartsWith(prefix) => {
            query.push(&format!(" AND {column} >= ")).bind(prefix);
            if let Some(upper) = prefix_upper_bound(prefix) {
                query.push(&format!(" AND {column} < ")).bind(upper);
            }
        }
        KeyMatch::Empty => {
            query.push(&format!(" AND coalesce({column}, '') = ''"));
        }
        KeyMatch::NotEmpty => {
            query.push(&format!(" AND {column} > ''"));
        }
    }
}

/// The tenant's counters of sequence numbers (the change log's and the provisioning log's).
#[derive(Clone, Copy)]
enum Counter {
    Changes,
    Logs,
}

impl SqliteDirectoryTx {
    /// The documents of `collection` among `keys`, a statement per chunk of keys, each row decoded by `decode`
    /// from `columns`.
    fn docs_with_keys<T>(
        &self,
        columns: &str,
        collection: &str,
        keys: &[String],
        mut decode: impl FnMut(&rusqlite::Row<'_>) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let mut found = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(ROWS_PER_STATEMENT) {
            let mut select = Sql::new(format!("SELECT {columns} FROM documents WHERE tenant_id = "));
            select.bind(&self.tenant_text).push(" AND collection = ").bind(collection).push(" AND doc_key IN (");
            select.bind_list(chunk.iter().map(Bound::from));
            select.push(")");
            found.extend(select.rows(&self.conn, &mut decode)?);
        }
        Ok(found)
    }

    /// Takes the next `n` numbers of `counter` and answers the last of them. The update locks the tenant row, so
    /// the tenant's appenders wait for each other; numbers are never reused, even after pruning.
    fn take_numbers(&self, counter: Counter, n: i64) -> Result<i64, StoreError> {
        let sql = match counter {
            Counter::Changes => "UPDATE tenants SET last_seq = last_seq + ? WHERE id = ? RETURNING last_seq",
            Counter::Logs => "UPDATE tenants SET last_log_seq = last_log_seq + ? WHERE id = ? RETURNING last_log_seq",
        };
        first(&self.conn, sql, params![n, self.tenant_text], |row| get(row, 0))?.ok_or_else(|| self.tenant_missing())
    }

    fn tenant_counter(&self, column: &'static str) -> Result<i64, StoreError> {
        first(&self.conn, &format!("SELECT {column} FROM tenants WHERE id = ?"), [&self.tenant_text], |row| {
            get(row, 0)
        })?
        .ok_or_else(|| self.tenant_missing())
    }
}

#[async_trait]
impl DirectoryTx for SqliteDirectoryTx {
    fn tenant(&self) -> TenantId {
        self.tenant
    }

    async fn get_object(&mut self, id: ObjectId) -> Result<Option<ObjectRow>, StoreError> {
        let sql = format!("SELECT {OBJECT_COLUMNS} FROM objects WHERE tenant_id = ? AND id = ?");
        first(&self.conn, &sql, params![self.tenant_text, id.to_string()], object_from_row)
    }

    async fn find_by_upn(&mut self, upn: &str) -> Result<Option<ObjectRow>, StoreError> {
        let sql = format!("SELECT {OBJECT_COLUMNS} FROM objects WHERE tenant_id = ? AND upn_key = ?");
        first(&self.conn, &sql, params![self.tenant_text, upn.to_lowercase()], object_from_row)
    }

    async fn find_by_anchor(&mut self, anchor: &str) -> Result<Option<ObjectRow>, StoreError> {
        let sql = format!("SELECT {OBJECT_COLUMNS} FROM objects WHERE tenant_id = ? AND anchor_key = ?");
        first(&self.conn, &sql, params![self.tenant_text, anchor.to_lowercase()], object_from_row)
    }

    async fn find_users_by_scim_user_name(&mut self, user_name: &str) -> Result<Vec<ObjectRow>, StoreError> {
        // The expression is the index's (migration 0023), so SQLite uses it.
        let sql = format!(
            "SELECT {OBJECT_COLUMNS} FROM objects WHERE tenant_id = ? AND kind = 'user' \
             AND {USER_NAME_KEY} = lower(?) AND deleted_at IS NULL"
        );
        rows(&self.conn, &sql, params![self.tenant_text, user_name], object_from_row)
    }

    async fn insert_object(&mut self, row: &ObjectRow) -> Result<(), StoreError> {
        let sql = format!("INSERT INTO objects ({OBJECT_ROW_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
        execute_unique(&self.conn, &sql, bound(&object_values(&self.tenant_text, row)), "userPrincipalName or id")?;
        Ok(())
    }

    async fn update_object(&mut self, row: &ObjectRow) -> Result<(), StoreError> {
        // The parameters of an insert, by number (the kind, `?3`, never changes).
        let n_updated = execute_unique(
            &self.conn,
            "UPDATE objects SET upn = ?4, upn_key = ?5, display_name = ?6, name_key = ?7, data = ?8, \
             deleted_at = ?9, anchor = ?10, anchor_key = ?11, scim_user_name = ?12, scim_external_id = ?13 \
             WHERE tenant_id = ?2 AND id = ?1",
            bound(&object_values(&self.tenant_text, row)),
            "userPrincipalName",
        )?;
        if n_updated == 0 {
            return Err(StoreError::NotFound { tenant: self.tenant, what: "object" });
        }
        Ok(())
    }

    async fn purge_object(&mut self, id: ObjectId) -> Result<(), StoreError> {
        let id_text = id.to_string();
        execute(
            &self.conn,
            "DELETE FROM links WHERE tenant_id = ?1 AND (from_id = ?2 OR to_id = ?2)",
            params![self.tenant_text, id_text],
        )?;
        execute(&self.conn, "DELETE FROM objects WHERE tenant_id = ? AND id = ?", params![self.tenant_text, id_text])?;
        Ok(())
    }

    async fn scan_objects(&mut self, kind: ObjectKind, spec: &ScanSpec) -> Result<Vec<ObjectRow>, StoreError> {
        let key_column = |order: ScanOrder| match order {
            ScanOrder::Id => "id",
            ScanOrder::DisplayName => "name_key",
            ScanOrder::Upn => "COALESCE(upn_key, '')",
        };
        let (cmp, direction) = if spec.descending { ("<", "DESC") } else { (">", "ASC") };
        let deleted = if spec.deleted { "deleted_at IS NOT NULL" } else { "deleted_at IS NULL" };
        // A narrowing condition names its index: without statistics SQLite would rather walk the order's index
        // and test every row than sort the few rows the condition's index finds.
        let index = match &spec.within {
            Some((key, KeyMatch::Equals(text) | KeyMatch::StartsWith(text))) if !text.is_empty() => match key {
                ScanOrder::Id => "",
                ScanOrder::DisplayName => " INDEXED BY objects_by_name",
                ScanOrder::Upn => " INDEXED BY objects_upn",
            },
            _ => "",
        };
        let mut query = Sql::new(format!("SELECT {OBJECT_COLUMNS} FROM objects{index} WHERE tenant_id = "));
        query.bind(&self.tenant_text);
        query.push(&format!(" AND {} AND {deleted}", kind_is(kind)));
        if let Some((key, condition)) = &spec.within {
            let column = match key {
                ScanOrder::Id => "id",
                ScanOrder::DisplayName => "name_key",
                ScanOrder::Upn => "upn_key",
            };
            push_key_match(&mut query, column, condition);
        }
        let column = key_column(spec.order);
        if let Some(after) = &spec.after {
            match spec.order {
                ScanOrder::Id => {
                    query.push(&format!(" AND id {cmp} ")).bind(after.id.to_string());
                }
                _ => {
                    query.push(&format!(" AND ({column} {cmp} ")).bind(&after.value);
                    query.push(&format!(" OR ({column} = ")).bind(&after.value);
                    query.push(&format!(" AND id {cmp} ")).bind(after.id.to_string()).push("))");
                }
            }
        }
        match spec.order {
            ScanOrder::Id => query.push(&format!(" ORDER BY id {direction}")),
            _ => query.push(&format!(" ORDER BY {column} {direction}, id {direction}")),
        };
        query.push(&format!(" LIMIT {}", spec.limit));
        query.rows(&self.conn, object_from_row)
    }

    async fn count_objects(&mut self, kind: ObjectKind, deleted: bool) -> Result<u64, StoreError> {
        let deleted = if deleted { "deleted_at IS NOT NULL" } else { "deleted_at IS NULL" };
        let sql = format!("SELECT COUNT(*) FROM objects WHERE tenant_id = ? AND {} AND {deleted}", kind_is(kind));
        let n: Option<i64> = first(&self.conn, &sql, [&self.tenant_text], |row| get(row, 0))?;
        Ok(n.unwrap_or(0).max(0) as u64)
    }

    async fn select_scim(&mut self, select: &ScimSelect) -> Result<Vec<ObjectRow>, StoreError> {
        let mut query = Sql::new(format!("SELECT {OBJECT_COLUMNS}"));
        push_scim_where(&mut query, &self.tenant_text, select.kind, &select.conditions);
        if let Some(after) = select.after {
            query.push(" AND id > ").bind(after.to_string());
        }
        let direction = if select.descending { "DESC" } else { "ASC" };
        match select.order {
            ScimKey::Id => query.push(&format!(" ORDER BY id {direction}")),
            ScimKey::UserName => query.push(&format!(" ORDER BY {USER_NAME_KEY} {direction}, id ASC")),
            ScimKey::ExternalId => {
                query.push(&format!(" ORDER BY coalesce({EXTERNAL_ID_KEY}, '') {direction}, id ASC"))
            }
            ScimKey::DisplayName => query.push(&format!(" ORDER BY name_key {direction}, id ASC")),
        };
        query.push(&format!(" LIMIT {} OFFSET {}", select.limit, i64::try_from(select.offset).unwrap_or(i64::MAX)));
        query.rows(&self.conn, object_from_row)
    }

    async fn count_scim(&mut self, kind: ObjectKind, conditions: &[(ScimKey, KeyMatch)]) -> Result<u64, StoreError> {
        let mut query = Sql::new("SELECT COUNT(*)");
        push_scim_where(&mut query, &self.tenant_text, kind, conditions);
        let n: Vec<i64> = query.rows(&self.conn, |row| get(row, 0))?;
        Ok(n.first().copied().unwrap_or(0).max(0) as u64)
    }

    async fn deleted_before(&mut self, before: OffsetDateTime) -> Result<Vec<ObjectId>, StoreError> {
        rows(
            &self.conn,
            "SELECT id FROM objects WHERE tenant_id = ? AND deleted_at IS NOT NULL AND deleted_at < ? ORDER BY id",
            params![self.tenant_text, micros(before)],
            |row| object_id(row, 0),
        )
    }

    async fn add_link(&mut self, kind: LinkKind, from: ObjectId, to: ObjectId) -> Result<bool, StoreError> {
        let n_added = execute(
            &self.conn,
            "INSERT INTO links (tenant_id, kind, from_id, to_id) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
            params![self.tenant_text, kind.as_str(), from.to_string(), to.to_string()],
        )?;
        Ok(n_added > 0)
    }

    async fn remove_link(&mut self, kind: LinkKind, from: ObjectId, to: ObjectId) -> Result<bool, StoreError> {
        let n_removed = execute(
            &self.conn,
            "DELETE FROM links WHERE tenant_id = ? AND kind = ? AND from_id = ? AND to_id = ?",
            params![self.tenant_text, kind.as_str(), from.to_string(), to.to_string()],
        )?;
        Ok(n_removed > 0)
    }

    async fn links_from(&mut self, kind: LinkKind, from: ObjectId) -> Result<Vec<ObjectId>, StoreError> {
        rows(
            &self.conn,
            "SELECT to_id FROM links WHERE tenant_id = ? AND kind = ? AND from_id = ? ORDER BY to_id",
            params![self.tenant_text, kind.as_str(), from.to_string()],
            |row| object_id(row, 0),
        )
    }

    async fn links_to(&mut self, kind: LinkKind, to: ObjectId) -> Result<Vec<ObjectId>, StoreError> {
        // Without statistics SQLite prefers scanning the primary key (every link of the kind, as it covers the
        // query) over this index: a user's memberOf then read the tenant's whole membership table.
        rows(
            &self.conn,
            "SELECT from_id FROM links INDEXED BY links_by_target WHERE tenant_id = ? AND kind = ? AND to_id = ? \
             ORDER BY from_id",
            params![self.tenant_text, kind.as_str(), to.to_string()],
            |row| object_id(row, 0),
        )
    }

    async fn links_to_any(&mut self, kind: LinkKind, to: &[ObjectId]) -> Result<Vec<(ObjectId, ObjectId)>, StoreError> {
        let mut pairs = self.link_pairs_where_in(kind, "links INDEXED BY links_by_target", "to_id", to)?;
        pairs.sort_by_key(|pair| (pair.1, pair.0));
        Ok(pairs)
    }

    async fn add_links(&mut self, kind: LinkKind, pairs: &[(ObjectId, ObjectId)]) -> Result<u64, StoreError> {
        let mut n_added = 0;
        for batch in pairs.chunks(ROWS_PER_STATEMENT) {
            let mut insert = Sql::new("INSERT INTO links (tenant_id, kind, from_id, to_id) VALUES ");
            insert.bind_rows(batch.iter().map(|(from, to)| {
                [
                    Bound::from(&self.tenant_text),
                    Bound::from(kind.as_str()),
                    Bound::from(from.to_string()),
                    Bound::from(to.to_string()),
                ]
            }));
            insert.push(" ON CONFLICT DO NOTHING");
            n_added += insert.execute(&self.conn)? as u64;
        }
        Ok(n_added)
    }

    async fn remove_links(&mut self, kind: LinkKind, pairs: &[(ObjectId, ObjectId)]) -> Result<u64, StoreError> {
        // One statement per `from` and batch of `to`, so that each is a primary-key search (SQLite scans the
        // kind's links for a row-value IN list).
        let mut by_from: std::collections::BTreeMap<ObjectId, Vec<ObjectId>> = std::collections::BTreeMap::new();
        for (from, to) in pairs {
            by_from.entry(*from).or_default().push(*to);
        }
        let mut n_removed = 0;
        for (from, targets) in &by_from {
            for batch in targets.chunks(ROWS_PER_STATEMENT) {
                let mut delete = Sql::new("DELETE FROM links WHERE tenant_id = ");
                delete.bind(&self.tenant_text).push(" AND kind = ").bind(kind.as_str());
                delete.push(" AND from_id = ").bind(from.to_string()).push(" AND to_id IN (");
                delete.bind_list(batch.iter().map(|to| Bound::from(to.to_string())));
                delete.push(")");
                n_removed += delete.execute(&self.conn)? as u64;
            }
        }
        Ok(n_removed)
    }

    async fn append_changes(&mut self, changes: &[ChangeRow]) -> Result<i64, StoreError> {
        // One counter update for the whole batch: the entries take the numbers up to the new value, in order.
        let n_changes = i64::try_from(changes.len()).expect("a batch of changes fits in i64");
        let last = self.take_numbers(Counter::Changes, n_changes)?;
        let first_seq = last - n_changes + 1;
        for (chunk_idx, chunk) in changes.chunks(CHANGES_PER_STATEMENT).enumerate() {
            let base = first_seq + (chunk_idx * CHANGES_PER_STATEMENT) as i64;
            let mut insert =
                Sql::new("INSERT INTO changes (tenant_id, seq, object_id, kind, op, related, link_kind, at) VALUES ");
            insert.bind_rows(chunk.iter().enumerate().map(|(idx, change)| {
                [
                    Bound::from(&self.tenant_text),
                    Bound::from(base + idx as i64),
                    Bound::from(change.object_id.to_string()),
                    Bound::from(change.kind.as_str()),
                    Bound::from(change.op.as_str()),
                    Bound::from(change.related.map(|id| id.to_string())),
                    Bound::from(change.link_kind.map(LinkKind::as_str)),
                    Bound::from(micros(change.at)),
                ]
            }));
            insert.execute(&self.conn)?;
        }
        Ok(last)
    }

    async fn lock_tenant(&mut self) -> Result<(), StoreError> {
        // A write transaction already holds SQLite's write lock (`BEGIN IMMEDIATE`); this no-op update takes it in
        // a read transaction too, and finds an unknown tenant.
        let n_updated =
            execute(&self.conn, "UPDATE tenants SET last_seq = last_seq WHERE id = ?", [&self.tenant_text])?;
        if n_updated == 0 {
            return Err(self.tenant_missing());
        }
        Ok(())
    }

    async fn append_change(&mut self, change: &ChangeRow) -> Result<i64, StoreError> {
        self.append_changes(std::slice::from_ref(change)).await
    }

    async fn read_changes(&mut self, kind: ObjectKind, after: i64, limit: u32) -> Result<Vec<ChangeRow>, StoreError> {
        let sql = format!(
            "SELECT seq, object_id, kind, op, related, link_kind, at FROM changes \
             WHERE tenant_id = ? AND seq > ? AND kind = ? ORDER BY seq LIMIT {limit}"
        );
        rows(&self.conn, &sql, params![self.tenant_text, after, kind.as_str()], change_from_row)
    }

    async fn last_change_seq(&mut self) -> Result<i64, StoreError> {
        self.tenant_counter("last_seq")
    }

    async fn change_horizon(&mut self) -> Result<i64, StoreError> {
        self.tenant_counter("change_horizon")
    }

    async fn prune_changes(&mut self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let newest_old: Option<i64> = first(
            &self.conn,
            "SELECT MAX(seq) FROM changes WHERE tenant_id = ? AND at < ?",
            params![self.tenant_text, micros(before)],
            |row| get(row, 0),
        )?
        .flatten();
        let Some(newest_old) = newest_old else {
            return Ok(0);
        };
        let n_removed = execute(
            &self.conn,
            "DELETE FROM changes WHERE tenant_id = ? AND seq <= ?",
            params![self.tenant_text, newest_old],
        )?;
        execute(
            &self.conn,
            "UPDATE tenants SET change_horizon = MAX(change_horizon, ?) WHERE id = ?",
            params![newest_old, self.tenant_text],
        )?;
        Ok(n_removed as u64)
    }

    async fn get_doc(&mut self, collection: &str, key: &str) -> Result<Option<DocRow>, StoreError> {
        let sql = format!("SELECT {DOC_COLUMNS} FROM documents WHERE tenant_id = ? AND collection = ? AND doc_key = ?");
        first(&self.conn, &sql, params![self.tenant_text, collection, key], |row| doc_from_row(row, 0))
    }

    async fn put_doc(&mut self, doc: &DocRow) -> Result<(), StoreError> {
        execute(
            &self.conn,
            "INSERT INTO documents (tenant_id, collection, doc_key, data, updated_at) VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (tenant_id, collection, doc_key) \
             DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at",
            params![self.tenant_text, doc.collection, doc.key, doc.data, micros(doc.updated_at)],
        )?;
        Ok(())
    }

    async fn insert_doc(&mut self, doc: &DocRow) -> Result<(), StoreError> {
        // `DO NOTHING` rather than a unique violation, as on PostgreSQL, where a violation would abort the
        // transaction.
        let n_inserted = execute_unique(
            &self.conn,
            "INSERT INTO documents (tenant_id, collection, doc_key, data, updated_at) VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (tenant_id, collection, doc_key) DO NOTHING",
            params![self.tenant_text, doc.collection, doc.key, doc.data, micros(doc.updated_at)],
            "document",
        )?;
        if n_inserted == 0 {
            return Err(StoreError::Conflict { what: "document" });
        }
        Ok(())
    }

    async fn delete_doc(&mut self, collection: &str, key: &str) -> Result<bool, StoreError> {
        let n_removed = execute(
            &self.conn,
            "DELETE FROM documents WHERE tenant_id = ? AND collection = ? AND doc_key = ?",
            params![self.tenant_text, collection, key],
        )?;
        Ok(n_removed > 0)
    }

    async fn list_docs(
        &mut self,
        collection: &str,
        after_key: Option<&str>,
        limit: u32,
    ) -> Result<Vec<DocRow>, StoreError> {
        // SQLite's default BINARY collation compares UTF-8 bytes: the bytewise order the trait promises.
        let mut query = Sql::new(format!("SELECT {DOC_COLUMNS} FROM documents WHERE tenant_id = "));
        query.bind(&self.tenant_text).push(" AND collection = ").bind(collection);
        if let Some(after_key) = after_key {
            query.push(" AND doc_key > ").bind(after_key);
        }
        query.push(&format!(" ORDER BY doc_key LIMIT {limit}"));
        query.rows(&self.conn, |row| doc_from_row(row, 0))
    }

    async fn delete_collection(&mut self, collection: &str) -> Result<u64, StoreError> {
        let n_removed = execute(
            &self.conn,
            "DELETE FROM documents WHERE tenant_id = ? AND collection = ?",
            params![self.tenant_text, collection],
        )?;
        Ok(n_removed as u64)
    }

    async fn get_objects(&mut self, ids: &[ObjectId]) -> Result<Vec<ObjectRow>, StoreError> {
        let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
        self.objects_where_in("id", &ids)
    }

    async fn find_by_anchors(&mut self, anchors: &[String]) -> Result<Vec<ObjectRow>, StoreError> {
        let keys: Vec<String> = anchors.iter().map(|anchor| anchor.to_lowercase()).collect();
        self.objects_where_in("anchor_key", &keys)
    }

    async fn links_from_many(
        &mut self,
        kind: LinkKind,
        froms: &[ObjectId],
    ) -> Result<Vec<(ObjectId, ObjectId)>, StoreError> {
        self.link_pairs_where_in(kind, "links", "from_id", froms)
    }

    async fn live_links_from_many(
        &mut self,
        kind: LinkKind,
        froms: &[ObjectId],
    ) -> Result<Vec<(ObjectId, ObjectId)>, StoreError> {
        let live_targets = "links JOIN objects AS target \
             ON target.tenant_id = links.tenant_id AND target.id = links.to_id AND target.deleted_at IS NULL";
        self.link_pairs_where_in(kind, live_targets, "from_id", froms)
    }

    async fn get_object_with_live_links(
        &mut self,
        id: ObjectId,
        kind: LinkKind,
    ) -> Result<Option<(ObjectRow, Vec<ObjectId>)>, StoreError> {
        // A row per live link target (or one row without), in one statement instead of two or three.
        let mut object = None;
        let targets = rows(
            &self.conn,
            "SELECT objects.id, objects.kind, objects.upn, objects.display_name, objects.data, objects.deleted_at, \
             objects.anchor, live.to_id AS link_to FROM objects LEFT JOIN \
             (SELECT links.from_id, links.to_id FROM links JOIN objects AS target \
              ON target.tenant_id = links.tenant_id AND target.id = links.to_id \
              WHERE links.tenant_id = ?1 AND links.kind = ?2 AND links.from_id = ?3 AND target.deleted_at IS NULL) \
             AS live ON live.from_id = objects.id \
             WHERE objects.tenant_id = ?1 AND objects.id = ?3 ORDER BY live.to_id",
            params![self.tenant_text, kind.as_str(), id.to_string()],
            |row| {
                if object.is_none() {
                    object = Some(object_from_row(row)?);
                }
                // A row without a live link has NULL there; anything else (an id, or a value that does not
                // decode) is `object_id`'s to read or refuse.
                match row.get_ref(7).map_err(unavailable)? {
                    rusqlite::types::ValueRef::Null => Ok(None),
                    _ => object_id(row, 7).map(Some),
                }
            },
        )?;
        Ok(object.map(|object| (object, targets.into_iter().flatten().collect())))
    }

    async fn links_to_many(
        &mut self,
        kind: LinkKind,
        tos: &[ObjectId],
    ) -> Result<Vec<(ObjectId, ObjectId)>, StoreError> {
        // As in `links_to`: without statistics SQLite would scan the primary key instead of this index.
        self.link_pairs_where_in(kind, "links INDEXED BY links_by_target", "to_id", tos)
    }

    async fn insert_objects_skipping_conflicts(&mut self, rows: &[ObjectRow]) -> Result<Vec<bool>, StoreError> {
        let mut inserted_ids = std::collections::HashSet::new();
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let mut insert = Sql::new(format!("INSERT INTO objects ({OBJECT_ROW_COLUMNS}) VALUES "));
            insert.bind_rows(chunk.iter().map(|row| object_values(&self.tenant_text, row)));
            // Any unique clash (id, userPrincipalName, anchor) skips the row instead of failing the statement.
            insert.push(" ON CONFLICT DO NOTHING RETURNING id");
            inserted_ids.extend(insert.rows(&self.conn, |row| get::<String>(row, 0))?);
        }
        Ok(rows.iter().map(|row| inserted_ids.contains(&row.id.to_string())).collect())
    }

    async fn append_logs(&mut self, logs: &[LogRow]) -> Result<(), StoreError> {
        if logs.is_empty() {
            return Ok(());
        }
        // One counter update for the whole batch: the entries take the numbers up to the new value, in order.
        let n_logs = i64::try_from(logs.len()).expect("a batch of logs fits in i64");
        let last = self.take_numbers(Counter::Logs, n_logs)?;
        let first_seq = last - n_logs + 1;
        let stored: Vec<std::borrow::Cow<[u8]>> = logs.iter().map(crate::log_data::stored_form).collect();
        for (chunk_idx, (chunk, stored)) in
            logs.chunks(ROWS_PER_STATEMENT).zip(stored.chunks(ROWS_PER_STATEMENT)).enumerate()
        {
            let base = first_seq + (chunk_idx * ROWS_PER_STATEMENT) as i64;
            let mut insert = Sql::new(format!("INSERT INTO provisioning_logs (tenant_id, {LOG_COLUMNS}) VALUES "));
            insert.bind_rows(
                chunk
                    .iter()
                    .zip(stored)
                    .enumerate()
                    .map(|(idx, (log, data))| log_values(&self.tenant_text, base + idx as i64, log, data)),
            );
            insert.execute(&self.conn)?;
        }
        Ok(())
    }

    async fn put_docs(&mut self, docs: &[DocRow]) -> Result<(), StoreError> {
        // One statement may not touch a row twice: for a key given twice, keep the last.
        let mut last_of: std::collections::HashMap<(&str, &str), usize> = std::collections::HashMap::new();
        for (idx, doc) in docs.iter().enumerate() {
            last_of.insert((doc.collection.as_str(), doc.key.as_str()), idx);
        }
        let unique: Vec<&DocRow> = docs
            .iter()
            .enumerate()
            .filter(|(idx, doc)| last_of[&(doc.collection.as_str(), doc.key.as_str())] == *idx)
            .map(|(_, doc)| doc)
            .collect();
        for chunk in unique.chunks(ROWS_PER_STATEMENT) {
            let mut upsert =
                Sql::new("INSERT INTO documents (tenant_id, collection, doc_key, data, updated_at) VALUES ");
            upsert.bind_rows(chunk.iter().map(|doc| {
                [
                    Bound::from(&self.tenant_text),
                    Bound::from(&doc.collection),
                    Bound::from(&doc.key),
                    Bound::from(&doc.data),
                    Bound::from(micros(doc.updated_at)),
                ]
            }));
            upsert.push(
                " ON CONFLICT (tenant_id, collection, doc_key) \
                 DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at",
            );
            upsert.execute(&self.conn)?;
        }
        Ok(())
    }

    async fn get_docs(&mut self, collection: &str, keys: &[String]) -> Result<Vec<DocRow>, StoreError> {
        self.docs_with_keys(DOC_COLUMNS, collection, keys, |row| doc_from_row(row, 0))
    }

    async fn existing_doc_keys(
        &mut self,
        collection: &str,
        keys: &[String],
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        Ok(self.docs_with_keys("doc_key", collection, keys, |row| get::<String>(row, 0))?.into_iter().collect())
    }

    async fn append_log(&mut self, log: &LogRow) -> Result<i64, StoreError> {
        // A counter on the tenant row, not MAX(seq) + 1: pruning may delete the newest entries, and their numbers
        // must not come back.
        let seq = self.take_numbers(Counter::Logs, 1)?;
        let data = crate::log_data::stored_form(log);
        let mut insert = Sql::new(format!("INSERT INTO provisioning_logs (tenant_id, {LOG_COLUMNS}) VALUES "));
        insert.bind_row(log_values(&self.tenant_text, seq, log, &data));
        insert.execute(&self.conn)?;
        Ok(seq)
    }

    async fn read_logs(&mut self, query: &LogQuery) -> Result<Vec<LogRow>, StoreError> {
        // Only the filters that are set become conditions, so that each combination gets a plan using its index.
        let text_filters = [
            ("job_id", &query.job_id),
            ("action", &query.action),
            ("status", &query.status),
            ("source_id", &query.source_id),
            ("target_id", &query.target_id),
        ];
        let mut select = Sql::new(format!("SELECT {LOG_COLUMNS} FROM provisioning_logs WHERE tenant_id = "));
        select.bind(&self.tenant_text);
        for (column, value) in &text_filters {
            if let Some(value) = value {
                select.push(&format!(" AND {column} = ")).bind(value);
            }
        }
        if let Some(since) = query.since {
            select.push(" AND at >= ").bind(micros(since));
        }
        if let Some(until) = query.until {
            select.push(" AND at < ").bind(micros(until));
        }
        if let Some(before_seq) = query.before_seq {
            select.push(" AND seq < ").bind(before_seq);
        }
        select.push(&format!(" ORDER BY seq DESC LIMIT {}", query.limit));
        select.rows(&self.conn, log_from_row)
    }

    async fn prune_logs(&mut self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let n_removed = execute(
            &self.conn,
            "DELETE FROM provisioning_logs WHERE tenant_id = ? AND at < ?",
            params![self.tenant_text, micros(before)],
        )?;
        Ok(n_removed as u64)
    }

    async fn get_doc_for_update(&mut self, collection: &str, key: &str) -> Result<Option<DocRow>, StoreError> {
        // A write transaction (`BEGIN IMMEDIATE`) holds the database's write lock: no other writer until it ends.
        self.get_doc(collection, key).await
    }

    async fn get_lease(&mut self, job_id: &str) -> Result<Option<LeaseRow>, StoreError> {
        crate::leases::get_lease(&self.conn, &self.tenant_text, job_id)
    }

    async fn share_lease(&mut self, job_tenant: TenantId, job_id: &str) -> Result<Option<i64>, StoreError> {
        // As for documents: the write lock covers the lease row.
        let lease = crate::leases::get_lease(&self.conn, &job_tenant.to_string(), job_id)?;
        Ok(lease.map(|lease| lease.token))
    }

    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        let SqliteDirectoryTx { conn, in_transaction, _writer: turn, checkpoints, .. } = *self;
        if in_transaction {
            conn.execute_batch("COMMIT").map_err(unavailable)?;
        }
        // The connection goes back to its pool, and the turn passes to the next writer, once the transaction has
        // ended.
        drop(conn);
        drop(turn);
        if let Some(checkpoints) = checkpoints {
            checkpoints.committed();
        }
        Ok(())
    }
}

/// An object's values in the order of [`OBJECT_ROW_COLUMNS`].
fn object_values<'a>(tenant: &'a str, row: &'a ObjectRow) -> [Bound<'a>; 13] {
    let scim = row.scim_columns();
    [
        Bound::from(row.id.to_string()),
        Bound::from(tenant),
        Bound::from(row.kind.as_str()),
        Bound::from(row.upn.as_deref()),
        Bound::from(lower(&row.upn)),
        Bound::from(row.display_name.as_deref()),
        Bound::from(name_key(row)),
        Bound::from(&row.data),
        Bound::from(row.deleted_at.map(micros)),
        Bound::from(row.anchor.as_deref()),
        Bound::from(lower(&row.anchor)),
        Bound::from(scim.user_name),
        Bound::from(scim.external_id),
    ]
}

/// A provisioning-log entry's values in the order of `tenant_id, {LOG_COLUMNS}`.
fn log_values<'a>(tenant: &'a str, seq: i64, log: &'a LogRow, data: &'a [u8]) -> [Bound<'a>; 11] {
    [
        Bound::from(tenant),
        Bound::from(seq),
        Bound::from(&log.id),
        Bound::from(&log.job_id),
        Bound::from(&log.cycle_id),
        Bound::from(micros(log.at)),
        Bound::from(&log.action),
        Bound::from(&log.status),
        Bound::from(log.source_id.as_deref()),
        Bound::from(log.target_id.as_deref()),
        Bound::from(data),
    ]
}

//! [`DirectoryTx`] over one SQLite transaction. Every statement names the tenant fixed at `begin`.

use std::sync::Arc;

use async_trait::async_trait;
use sqlx::{Row, Sqlite, Transaction};
use tenantsync_model::{ObjectId, ObjectKind, TenantId};
use tenantsync_store::{
    ChangeRow, DirectoryTx, DocRow, KeyMatch, LeaseRow, LinkKind, LogQuery, LogRow, ObjectRow, ScanOrder, ScanSpec,
    ScimKey, ScimSelect, StoreError, prefix_upper_bound,
};
use time::OffsetDateTime;
use tokio::sync::OwnedSemaphorePermit;

use crate::checkpoint::Checkpoints;
use crate::codec::{
    change_from_row, classify, doc_from_row, log_from_row, micros, object_from_row, trusted, unavailable,
};

const OBJECT_COLUMNS: &str = "id, kind, upn, display_name, data, deleted_at, anchor";
const DOC_COLUMNS: &str = "collection, doc_key, data, updated_at";
/// Rows per multi-row statement: well under SQLite's 32,766 and PostgreSQL's 65,535 bound parameters.
const ROWS_PER_STATEMENT: usize = 500;
/// Change-log entries [`DirectoryTx::append_changes`] writes in one command with their numbers (six parameters
/// each).
const CHANGES_PER_COMMAND: usize = 100;

/// The SCIM userName as migration 0014 indexes it: the expression must stay identical for SQLite to use the index.
const USER_NAME_KEY: &str = "lower(coalesce(json_extract(data, '$.scimUserName'), upn))";
/// The SCIM externalId as migration 0020 indexes it.
const EXTERNAL_ID_KEY: &str = "json_extract(data, '$.scimExternalId')";

const LOG_COLUMNS: &str = "seq, id, job_id, cycle_id, at, action, status, source_id, target_id, data";

/// What a directory transaction runs its statements on: a transaction, or for [`TxMode::ReadStatements`] a
/// pooled connection whose statements each commit alone.
pub(crate) enum TxConn {
    Tx(Transaction<'static, Sqlite>),
    Statements(sqlx::pool::PoolConnection<Sqlite>),
}

impl std::ops::Deref for TxConn {
    type Target = sqlx::SqliteConnection;

    fn deref(&self) -> &Self::Target {
        match self {
            TxConn::Tx(tx) => tx,
            TxConn::Statements(conn) => conn,
        }
    }
}

impl std::ops::DerefMut for TxConn {
    fn deref_mut(&mut self) -> &mut Self::Target {
        match self {
            TxConn::Tx(tx) => tx,
            TxConn::Statements(conn) => conn,
        }
    }
}

impl TxConn {
    async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            TxConn::Tx(tx) => tx.commit().await,
            TxConn::Statements(_) => Ok(()),
        }
    }
}

pub(crate) struct SqliteDirectoryTx {
    tenant: TenantId,
    tenant_text: String,
    tx: TxConn,
    /// A write transaction's turn among this process's writers, given back when the transaction ends (declared
    /// after `tx`, so dropped after it).
    _writer: Option<OwnedSemaphorePermit>,
    /// A write transaction tells the store's checkpoint task when it commits.
    checkpoints: Option<Arc<Checkpoints>>,
}

impl SqliteDirectoryTx {
    pub(crate) fn new(
        tenant: TenantId,
        tx: TxConn,
        writer: Option<OwnedSemaphorePermit>,
        checkpoints: Option<Arc<Checkpoints>>,
    ) -> Self {
        Self { tenant, tenant_text: tenant.to_string(), tx, _writer: writer, checkpoints }
    }
}

/// `kind = '<kind>'` for a query on `objects`, the kind as a literal: SQLite compares a bound kind with the
/// `kind = 'user'` of the partial indexes on `objects` and then prepares the statement again on every execution
/// (see [`trusted`]); with the literal it also sees which of those indexes apply.
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
    async fn objects_where_in(&mut self, column: &str, values: Vec<String>) -> Result<Vec<ObjectRow>, StoreError> {
        let mut found = Vec::with_capacity(values.len());
        // By id, the tenant term is written `+tenant_id`, which no index serves: without statistics SQLite otherwise
        // walks the tenant's whole `objects_by_id` range testing each id against the list (18 ms for 5 ids among
        // 100,000 users, growing with the tenant) instead of probing the primary key once per id (0.06 ms).
        let tenant_term = if column == "id" { "+tenant_id" } else { "tenant_id" };
        for chunk in values.chunks(ROWS_PER_STATEMENT) {
            let mut select = sqlx::QueryBuilder::<sqlx::Sqlite>::new(format!(
                "SELECT {OBJECT_COLUMNS} FROM objects WHERE {tenant_term} = "
            ));
            select.push_bind(&self.tenant_text).push(format!(" AND {column} IN ("));
            let mut list = select.separated(", ");
            for value in chunk {
                list.push_bind(value);
            }
            select.push(")");
            for row in select.build().fetch_all(&mut *self.tx).await.map_err(unavailable)? {
                found.push(object_from_row(&row)?);
            }
        }
        Ok(found)
    }

    /// (from, to) pairs of the tenant's `kind` links whose `column` (a trusted name) is one of `ids`, read from
    /// `source` (the `links` table, with an index hint or a join where needed), sorted.
    async fn link_pairs_where_in(
        &mut self,
        kind: LinkKind,
        source: &str,
        column: &str,
        ids_in: &[ObjectId],
    ) -> Result<Vec<(ObjectId, ObjectId)>, StoreError> {
        let mut pairs = Vec::new();
        for chunk in ids_in.chunks(ROWS_PER_STATEMENT) {
            let mut select = sqlx::QueryBuilder::<sqlx::Sqlite>::new(format!(
                "SELECT links.from_id, links.to_id FROM {source} WHERE links.tenant_id = "
            ));
            select.push_bind(&self.tenant_text).push(" AND links.kind = ").push_bind(kind.as_str());
            select.push(format!(" AND links.{column} IN ("));
            let mut list = select.separated(", ");
            for id in chunk {
                list.push_bind(id.to_string());
            }
            select.push(")");
            let rows = select.build().fetch_all(&mut *self.tx).await.map_err(unavailable)?;
            pairs.extend(ids(&rows, "from_id")?.into_iter().zip(ids(&rows, "to_id")?));
        }
        pairs.sort();
        Ok(pairs)
    }
}

/// `FROM objects WHERE …` for the live objects of `kind` passing every condition. The kind is written as a
/// literal, so that SQLite sees the `kind = 'user'` of the partial indexes of userName and externalId.
fn push_scim_where(
    query: &mut sqlx::QueryBuilder<Sqlite>,
    tenant: &str,
    kind: ObjectKind,
    conditions: &[(ScimKey, KeyMatch)],
) {
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
        Some(index) => query.push(format!(" FROM objects INDEXED BY {index} WHERE tenant_id = ")),
        None => query.push(" FROM objects WHERE tenant_id = "),
    };
    query.push_bind(tenant.to_owned());
    query.push(format!(" AND {} AND deleted_at IS NULL", kind_is(kind)));
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
fn push_key_match(query: &mut sqlx::QueryBuilder<Sqlite>, column: &str, condition: &KeyMatch) {
    match condition {
        KeyMatch::Equals(value) if value.is_empty() => {
            query.push(format!(" AND coalesce({column}, '') = ''"));
        }
        KeyMatch::Equals(value) => {
            query.push(format!(" AND {column} = ")).push_bind(value.clone());
        }
        KeyMatch::StartsWith(prefix) if prefix.is_empty() => {}
        KeyMatch::StartsWith(prefix) => {
            query.push(format!(" AND {column} >= ")).push_bind(prefix.clone());
            if let Some(upper) = prefix_upper_bound(prefix) {
                query.push(format!(" AND {column} < ")).push_bind(upper);
            }
        }
        KeyMatch::Empty => {
            query.push(format!(" AND coalesce({column}, '') = ''"));
        }
        KeyMatch::NotEmpty => {
            query.push(format!(" AND {column} > ''"));
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
    /// `columns` of the documents of `collection` among `keys`, a statement per chunk of keys.
    async fn docs_with_keys(
        &mut self,
        columns: &str,
        collection: &str,
        keys: &[String],
    ) -> Result<Vec<sqlx::sqlite::SqliteRow>, StoreError> {
        let mut rows = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(ROWS_PER_STATEMENT) {
            let mut select =
                sqlx::QueryBuilder::<Sqlite>::new(format!("SELECT {columns} FROM documents WHERE tenant_id = "));
            select
                .push_bind(&self.tenant_text)
                .push(" AND collection = ")
                .push_bind(collection)
                .push(" AND doc_key IN (");
            let mut list = select.separated(", ");
            for key in chunk {
                list.push_bind(key);
            }
            select.push(")");
            rows.extend(select.build().fetch_all(&mut *self.tx).await.map_err(unavailable)?);
        }
        Ok(rows)
    }

    /// Up to [`CHANGES_PER_COMMAND`] change-log entries: the counter's update and the inserts are one command to
    /// the connection's worker thread (two statements sharing the tenant parameter `?1`). Answers the last number.
    async fn append_changes_in_one_command(&mut self, changes: &[ChangeRow]) -> Result<i64, StoreError> {
        let n_changes = changes.len();
        let values = (0..n_changes)
            .map(|idx| {
                let first = 2 + 6 * idx;
                let params: Vec<String> = (first..first + 6).map(|param| format!("?{param}")).collect();
                format!("({}, {})", idx + 1, params.join(", "))
            })
            .collect::<Vec<_>>()
            .join(", ");
        // The entries take the numbers after the counter's old value, in the order given.
        let sql = format!(
            "UPDATE tenants SET last_seq = last_seq + {n_changes} WHERE id = ?1; \
             INSERT INTO changes (tenant_id, seq, object_id, kind, op, related, link_kind, at) \
             SELECT t.id, t.last_seq - {n_changes} + v.column1, v.column2, v.column3, v.column4, v.column5, \
             v.column6, v.column7 FROM tenants t JOIN (VALUES {values}) v WHERE t.id = ?1 \
             ORDER BY v.column1 RETURNING seq"
        );
        let mut query = sqlx::query(trusted(sql)).bind(&self.tenant_text);
        for change in changes {
            query = query
                .bind(change.object_id.to_string())
                .bind(change.kind.as_str())
                .bind(change.op.as_str())
                .bind(change.related.map(|id| id.to_string()))
                .bind(change.link_kind.map(LinkKind::as_str))
                .bind(micros(change.at));
        }
        let rows = query.fetch_all(&mut *self.tx).await.map_err(unavailable)?;
        let mut last = None;
        for row in &rows {
            let seq: i64 = row.try_get("seq").map_err(unavailable)?;
            last = last.max(Some(seq));
        }
        last.ok_or(StoreError::NotFound { tenant: self.tenant, what: "tenant" })
    }

    /// Takes the next `n` numbers of `counter` and answers the last of them. The update locks the tenant row, so
    /// the tenant's appenders wait for each other; numbers are never reused, even after pruning.
    async fn take_numbers(&mut self, counter: Counter, n: i64) -> Result<i64, StoreError> {
        let sql = match counter {
            Counter::Changes => "UPDATE tenants SET last_seq = last_seq + ? WHERE id = ? RETURNING last_seq AS last",
            Counter::Logs => {
                "UPDATE tenants SET last_log_seq = last_log_seq + ? WHERE id = ? RETURNING last_log_seq AS last"
            }
        };
        sqlx::query(sql)
            .bind(n)
            .bind(&self.tenant_text)
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(unavailable)?
            .ok_or(StoreError::NotFound { tenant: self.tenant, what: "tenant" })?
            .try_get("last")
            .map_err(unavailable)
    }
}

#[async_trait]
impl DirectoryTx for SqliteDirectoryTx {
    fn tenant(&self) -> TenantId {
        self.tenant
    }

    async fn get_object(&mut self, id: ObjectId) -> Result<Option<ObjectRow>, StoreError> {
        let row = sqlx::query(trusted(format!("SELECT {OBJECT_COLUMNS} FROM objects WHERE tenant_id = ? AND id = ?")))
            .bind(&self.tenant_text)
            .bind(id.to_string())
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(unavailable)?;
        row.as_ref().map(object_from_row).transpose()
    }

    async fn find_by_upn(&mut self, upn: &str) -> Result<Option<ObjectRow>, StoreError> {
        let row =
            sqlx::query(trusted(format!("SELECT {OBJECT_COLUMNS} FROM objects WHERE tenant_id = ? AND upn_key = ?")))
                .bind(&self.tenant_text)
                .bind(upn.to_lowercase())
                .fetch_optional(&mut *self.tx)
                .await
                .map_err(unavailable)?;
        row.as_ref().map(object_from_row).transpose()
    }

    async fn find_by_anchor(&mut self, anchor: &str) -> Result<Option<ObjectRow>, StoreError> {
        let row = sqlx::query(trusted(format!(
            "SELECT {OBJECT_COLUMNS} FROM objects WHERE tenant_id = ? AND anchor_key = ?"
        )))
        .bind(&self.tenant_text)
        .bind(anchor.to_lowercase())
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(unavailable)?;
        row.as_ref().map(object_from_row).transpose()
    }

    async fn find_users_by_scim_user_name(&mut self, user_name: &str) -> Result<Vec<ObjectRow>, StoreError> {
        // The expression is the index's (migration 0014), so SQLite uses it.
        let rows = sqlx::query(trusted(format!(
            "SELECT {OBJECT_COLUMNS} FROM objects WHERE tenant_id = ? AND kind = 'user' \
             AND lower(coalesce(json_extract(data, '$.scimUserName'), upn)) = lower(?) AND deleted_at IS NULL"
        )))
        .bind(&self.tenant_text)
        .bind(user_name)
        .fetch_all(&mut *self.tx)
        .await
        .map_err(unavailable)?;
        rows.iter().map(object_from_row).collect()
    }

    async fn insert_object(&mut self, row: &ObjectRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO objects \
             (id, tenant_id, kind, upn, upn_key, display_name, name_key, data, deleted_at, anchor, anchor_key) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(row.id.to_string())
        .bind(&self.tenant_text)
        .bind(row.kind.as_str())
        .bind(&row.upn)
        .bind(lower(&row.upn))
        .bind(&row.display_name)
        .bind(name_key(row))
        .bind(&row.data)
        .bind(row.deleted_at.map(micros))
        .bind(&row.anchor)
        .bind(lower(&row.anchor))
        .execute(&mut *self.tx)
        .await
        .map_err(|err| classify(err, "userPrincipalName or id"))?;
        Ok(())
    }

    async fn update_object(&mut self, row: &ObjectRow) -> Result<(), StoreError> {
        let result = sqlx::query(
            "UPDATE objects SET upn = ?, upn_key = ?, display_name = ?, name_key = ?, data = ?, deleted_at = ?, \
             anchor = ?, anchor_key = ? WHERE tenant_id = ? AND id = ?",
        )
        .bind(&row.upn)
        .bind(lower(&row.upn))
        .bind(&row.display_name)
        .bind(name_key(row))
        .bind(&row.data)
        .bind(row.deleted_at.map(micros))
        .bind(&row.anchor)
        .bind(lower(&row.anchor))
        .bind(&self.tenant_text)
        .bind(row.id.to_string())
        .execute(&mut *self.tx)
        .await
        .map_err(|err| classify(err, "userPrincipalName"))?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound { tenant: self.tenant, what: "object" });
        }
        Ok(())
    }

    async fn purge_object(&mut self, id: ObjectId) -> Result<(), StoreError> {
        let id_text = id.to_string();
        sqlx::query("DELETE FROM links WHERE tenant_id = ?1 AND (from_id = ?2 OR to_id = ?2)")
            .bind(&self.tenant_text)
            .bind(&id_text)
            .execute(&mut *self.tx)
            .await
            .map_err(unavailable)?;
        sqlx::query("DELETE FROM objects WHERE tenant_id = ? AND id = ?")
            .bind(&self.tenant_text)
            .bind(&id_text)
            .execute(&mut *self.tx)
            .await
            .map_err(unavailable)?;
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
                ScanOrder::Upn => " INDEXED BY objects_by_upn",
            },
            _ => "",
        };
        let mut query = sqlx::QueryBuilder::<Sqlite>::new(format!(
            "SELECT {OBJECT_COLUMNS} FROM objects{index} WHERE tenant_id = "
        ));
        query.push_bind(self.tenant_text.clone());
        query.push(format!(" AND {} AND {deleted}", kind_is(kind)));
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
                    query.push(format!(" AND id {cmp} ")).push_bind(after.id.to_string());
                }
                _ => {
                    query.push(format!(" AND ({column} {cmp} ")).push_bind(after.value.clone());
                    query.push(format!(" OR ({column} = ")).push_bind(after.value.clone());
                    query.push(format!(" AND id {cmp} ")).push_bind(after.id.to_string()).push("))");
                }
            }
        }
        match spec.order {
            ScanOrder::Id => query.push(format!(" ORDER BY id {direction}")),
            _ => query.push(format!(" ORDER BY {column} {direction}, id {direction}")),
        };
        query.push(format!(" LIMIT {}", spec.limit));
        let rows = query.build().fetch_all(&mut *self.tx).await.map_err(unavailable)?;
        rows.iter().map(object_from_row).collect()
    }

    async fn count_objects(&mut self, kind: ObjectKind, deleted: bool) -> Result<u64, StoreError> {
        let deleted = if deleted { "deleted_at IS NOT NULL" } else { "deleted_at IS NULL" };
        let row = sqlx::query(trusted(format!(
            "SELECT COUNT(*) AS n FROM objects WHERE tenant_id = ? AND {} AND {deleted}",
            kind_is(kind)
        )))
        .bind(&self.tenant_text)
        .fetch_one(&mut *self.tx)
        .await
        .map_err(unavailable)?;
        Ok(row.try_get::<i64, _>("n").map_err(unavailable)?.max(0) as u64)
    }

    async fn select_scim(&mut self, select: &ScimSelect) -> Result<Vec<ObjectRow>, StoreError> {
        let mut query = sqlx::QueryBuilder::<Sqlite>::new(format!("SELECT {OBJECT_COLUMNS}"));
        push_scim_where(&mut query, &self.tenant_text, select.kind, &select.conditions);
        if let Some(after) = select.after {
            query.push(" AND id > ").push_bind(after.to_string());
        }
        let direction = if select.descending { "DESC" } else { "ASC" };
        match select.order {
            ScimKey::Id => query.push(format!(" ORDER BY id {direction}")),
            ScimKey::UserName => query.push(format!(" ORDER BY {USER_NAME_KEY} {direction}, id ASC")),
            ScimKey::ExternalId => query.push(format!(" ORDER BY coalesce({EXTERNAL_ID_KEY}, '') {direction}, id ASC")),
            ScimKey::DisplayName => query.push(format!(" ORDER BY name_key {direction}, id ASC")),
        };
        query.push(format!(" LIMIT {} OFFSET {}", select.limit, i64::try_from(select.offset).unwrap_or(i64::MAX)));
        let rows = query.build().fetch_all(&mut *self.tx).await.map_err(unavailable)?;
        rows.iter().map(object_from_row).collect()
    }

    async fn count_scim(&mut self, kind: ObjectKind, conditions: &[(ScimKey, KeyMatch)]) -> Result<u64, StoreError> {
        let mut query = sqlx::QueryBuilder::<Sqlite>::new("SELECT COUNT(*) AS n");
        push_scim_where(&mut query, &self.tenant_text, kind, conditions);
        let row = query.build().fetch_one(&mut *self.tx).await.map_err(unavailable)?;
        Ok(row.try_get::<i64, _>("n").map_err(unavailable)?.max(0) as u64)
    }

    async fn deleted_before(&mut self, before: OffsetDateTime) -> Result<Vec<ObjectId>, StoreError> {
        let rows = sqlx::query(
            "SELECT id FROM objects WHERE tenant_id = ? AND deleted_at IS NOT NULL AND deleted_at < ? ORDER BY id",
        )
        .bind(&self.tenant_text)
        .bind(micros(before))
        .fetch_all(&mut *self.tx)
        .await
        .map_err(unavailable)?;
        ids(&rows, "id")
    }

    async fn add_link(&mut self, kind: LinkKind, from: ObjectId, to: ObjectId) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "INSERT INTO links (tenant_id, kind, from_id, to_id) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(&self.tenant_text)
        .bind(kind.as_str())
        .bind(from.to_string())
        .bind(to.to_string())
        .execute(&mut *self.tx)
        .await
        .map_err(unavailable)?;
        Ok(result.rows_affected() > 0)
    }

    async fn remove_link(&mut self, kind: LinkKind, from: ObjectId, to: ObjectId) -> Result<bool, StoreError> {
        let result = sqlx::query("DELETE FROM links WHERE tenant_id = ? AND kind = ? AND from_id = ? AND to_id = ?")
            .bind(&self.tenant_text)
            .bind(kind.as_str())
            .bind(from.to_string())
            .bind(to.to_string())
            .execute(&mut *self.tx)
            .await
            .map_err(unavailable)?;
        Ok(result.rows_affected() > 0)
    }

    async fn links_from(&mut self, kind: LinkKind, from: ObjectId) -> Result<Vec<ObjectId>, StoreError> {
        let rows =
            sqlx::query("SELECT to_id FROM links WHERE tenant_id = ? AND kind = ? AND from_id = ? ORDER BY to_id")
                .bind(&self.tenant_text)
                .bind(kind.as_str())
                .bind(from.to_string())
                .fetch_all(&mut *self.tx)
                .await
                .map_err(unavailable)?;
        ids(&rows, "to_id")
    }

    async fn links_to(&mut self, kind: LinkKind, to: ObjectId) -> Result<Vec<ObjectId>, StoreError> {
        let rows =
            // Without statistics SQLite prefers scanning the primary key (every link of the kind, as it covers
            // the query) over this index: a user's memberOf then read the tenant's whole membership table.
            sqlx::query(
                "SELECT from_id FROM links INDEXED BY links_by_target WHERE tenant_id = ? AND kind = ? AND to_id = ? \
                 ORDER BY from_id",
            )
                .bind(&self.tenant_text)
                .bind(kind.as_str())
                .bind(to.to_string())
                .fetch_all(&mut *self.tx)
                .await
                .map_err(unavailable)?;
        ids(&rows, "from_id")
    }

    async fn links_to_any(&mut self, kind: LinkKind, to: &[ObjectId]) -> Result<Vec<(ObjectId, ObjectId)>, StoreError> {
        let mut pairs = Vec::new();
        // Bounded batches keep each statement under SQLite's limit on bound parameters.
        for batch in to.chunks(500) {
            let placeholders = vec!["?"; batch.len()].join(", ");
            let sql = format!(
                "SELECT from_id, to_id FROM links INDEXED BY links_by_target \
                 WHERE tenant_id = ? AND kind = ? AND to_id IN ({placeholders})"
            );
            let mut query = sqlx::query(trusted(sql)).bind(&self.tenant_text).bind(kind.as_str());
            for id in batch {
                query = query.bind(id.to_string());
            }
            let rows = query.fetch_all(&mut *self.tx).await.map_err(unavailable)?;
            pairs.extend(link_pairs(&rows)?);
        }
        pairs.sort_by_key(|pair| (pair.1, pair.0));
        Ok(pairs)
    }

    async fn add_links(&mut self, kind: LinkKind, pairs: &[(ObjectId, ObjectId)]) -> Result<u64, StoreError> {
        let mut n_added = 0;
        for batch in pairs.chunks(200) {
            let values = vec!["(?, ?, ?, ?)"; batch.len()].join(", ");
            let sql =
                format!("INSERT INTO links (tenant_id, kind, from_id, to_id) VALUES {values} ON CONFLICT DO NOTHING");
            let mut query = sqlx::query(trusted(sql));
            for (from, to) in batch {
                query = query.bind(&self.tenant_text).bind(kind.as_str()).bind(from.to_string()).bind(to.to_string());
            }
            n_added += query.execute(&mut *self.tx).await.map_err(unavailable)?.rows_affected();
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
            for batch in targets.chunks(500) {
                let placeholders = vec!["?"; batch.len()].join(", ");
                let sql = format!(
                    "DELETE FROM links WHERE tenant_id = ? AND kind = ? AND from_id = ? AND to_id IN ({placeholders})"
                );
                let mut query =
                    sqlx::query(trusted(sql)).bind(&self.tenant_text).bind(kind.as_str()).bind(from.to_string());
                for to in batch {
                    query = query.bind(to.to_string());
                }
                n_removed += query.execute(&mut *self.tx).await.map_err(unavailable)?.rows_affected();
            }
        }
        Ok(n_removed)
    }

    async fn append_changes(&mut self, changes: &[ChangeRow]) -> Result<i64, StoreError> {
        if changes.is_empty() {
            return self.take_numbers(Counter::Changes, 0).await;
        }
        // A command per hundred entries, each taking the numbers after the one before (one transaction).
        let mut last = 0;
        for chunk in changes.chunks(CHANGES_PER_COMMAND) {
            last = self.append_changes_in_one_command(chunk).await?;
        }
        Ok(last)
    }

    async fn lock_tenant(&mut self) -> Result<(), StoreError> {
        // A write transaction already holds SQLite's write lock (`BEGIN IMMEDIATE`); this no-op update takes it in
        // a read transaction too, and finds an unknown tenant.
        let result = sqlx::query("UPDATE tenants SET last_seq = last_seq WHERE id = ?")
            .bind(&self.tenant_text)
            .execute(&mut *self.tx)
            .await
            .map_err(unavailable)?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound { tenant: self.tenant, what: "tenant" });
        }
        Ok(())
    }

    async fn append_change(&mut self, change: &ChangeRow) -> Result<i64, StoreError> {
        // One command to the connection's worker thread: every user write appends one, and each command is a thread
        // hand-off each way (issue 14, the SCIM profile).
        self.append_changes_in_one_command(std::slice::from_ref(change)).await
    }

    async fn read_changes(&mut self, kind: ObjectKind, after: i64, limit: u32) -> Result<Vec<ChangeRow>, StoreError> {
        let rows = sqlx::query(trusted(format!(
            "SELECT seq, object_id, kind, op, related, link_kind, at FROM changes \
             WHERE tenant_id = ? AND seq > ? AND kind = ? ORDER BY seq LIMIT {limit}"
        )))
        .bind(&self.tenant_text)
        .bind(after)
        .bind(kind.as_str())
        .fetch_all(&mut *self.tx)
        .await
        .map_err(unavailable)?;
        rows.iter().map(change_from_row).collect()
    }

    async fn last_change_seq(&mut self) -> Result<i64, StoreError> {
        self.tenant_counter("last_seq").await
    }

    async fn change_horizon(&mut self) -> Result<i64, StoreError> {
        self.tenant_counter("change_horizon").await
    }

    async fn prune_changes(&mut self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let newest_old: Option<i64> = sqlx::query("SELECT MAX(seq) AS seq FROM changes WHERE tenant_id = ? AND at < ?")
            .bind(&self.tenant_text)
            .bind(micros(before))
            .fetch_one(&mut *self.tx)
            .await
            .map_err(unavailable)?
            .try_get("seq")
            .map_err(unavailable)?;
        let Some(newest_old) = newest_old else {
            return Ok(0);
        };
        let result = sqlx::query("DELETE FROM changes WHERE tenant_id = ? AND seq <= ?")
            .bind(&self.tenant_text)
            .bind(newest_old)
            .execute(&mut *self.tx)
            .await
            .map_err(unavailable)?;
        sqlx::query("UPDATE tenants SET change_horizon = MAX(change_horizon, ?) WHERE id = ?")
            .bind(newest_old)
            .bind(&self.tenant_text)
            .execute(&mut *self.tx)
            .await
            .map_err(unavailable)?;
        Ok(result.rows_affected())
    }

    async fn get_doc(&mut self, collection: &str, key: &str) -> Result<Option<DocRow>, StoreError> {
        let row = sqlx::query(trusted(format!(
            "SELECT {DOC_COLUMNS} FROM documents WHERE tenant_id = ? AND collection = ? AND doc_key = ?"
        )))
        .bind(&self.tenant_text)
        .bind(collection)
        .bind(key)
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(unavailable)?;
        row.as_ref().map(doc_from_row).transpose()
    }

    async fn put_doc(&mut self, doc: &DocRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO documents (tenant_id, collection, doc_key, data, updated_at) VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (tenant_id, collection, doc_key) \
             DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at",
        )
        .bind(&self.tenant_text)
        .bind(&doc.collection)
        .bind(&doc.key)
        .bind(&doc.data)
        .bind(micros(doc.updated_at))
        .execute(&mut *self.tx)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    async fn insert_doc(&mut self, doc: &DocRow) -> Result<(), StoreError> {
        // `DO NOTHING` rather than a unique violation, as on PostgreSQL, where a violation would abort the
        // transaction.
        let result = sqlx::query(
            "INSERT INTO documents (tenant_id, collection, doc_key, data, updated_at) VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (tenant_id, collection, doc_key) DO NOTHING",
        )
        .bind(&self.tenant_text)
        .bind(&doc.collection)
        .bind(&doc.key)
        .bind(&doc.data)
        .bind(micros(doc.updated_at))
        .execute(&mut *self.tx)
        .await
        .map_err(|err| classify(err, "document"))?;
        if result.rows_affected() == 0 {
            return Err(StoreError::Conflict { what: "document" });
        }
        Ok(())
    }

    async fn delete_doc(&mut self, collection: &str, key: &str) -> Result<bool, StoreError> {
        let result = sqlx::query("DELETE FROM documents WHERE tenant_id = ? AND collection = ? AND doc_key = ?")
            .bind(&self.tenant_text)
            .bind(collection)
            .bind(key)
            .execute(&mut *self.tx)
            .await
            .map_err(unavailable)?;
        Ok(result.rows_affected() > 0)
    }

    async fn list_docs(
        &mut self,
        collection: &str,
        after_key: Option<&str>,
        limit: u32,
    ) -> Result<Vec<DocRow>, StoreError> {
        // SQLite's default BINARY collation compares UTF-8 bytes: the bytewise order the trait promises.
        let after = if after_key.is_some() { " AND doc_key > ?" } else { "" };
        let mut query = sqlx::query(trusted(format!(
            "SELECT {DOC_COLUMNS} FROM documents WHERE tenant_id = ? AND collection = ?{after} \
             ORDER BY doc_key LIMIT {limit}"
        )))
        .bind(&self.tenant_text)
        .bind(collection);
        if let Some(after_key) = after_key {
            query = query.bind(after_key);
        }
        let rows = query.fetch_all(&mut *self.tx).await.map_err(unavailable)?;
        rows.iter().map(doc_from_row).collect()
    }

    async fn delete_collection(&mut self, collection: &str) -> Result<u64, StoreError> {
        let result = sqlx::query("DELETE FROM documents WHERE tenant_id = ? AND collection = ?")
            .bind(&self.tenant_text)
            .bind(collection)
            .execute(&mut *self.tx)
            .await
            .map_err(unavailable)?;
        Ok(result.rows_affected())
    }

    async fn get_objects(&mut self, ids: &[ObjectId]) -> Result<Vec<ObjectRow>, StoreError> {
        self.objects_where_in("id", ids.iter().map(ToString::to_string).collect()).await
    }

    async fn find_by_anchors(&mut self, anchors: &[String]) -> Result<Vec<ObjectRow>, StoreError> {
        self.objects_where_in("anchor_key", anchors.iter().map(|anchor| anchor.to_lowercase()).collect()).await
    }

    async fn links_from_many(
        &mut self,
        kind: LinkKind,
        froms: &[ObjectId],
    ) -> Result<Vec<(ObjectId, ObjectId)>, StoreError> {
        self.link_pairs_where_in(kind, "links", "from_id", froms).await
    }

    async fn live_links_from_many(
        &mut self,
        kind: LinkKind,
        froms: &[ObjectId],
    ) -> Result<Vec<(ObjectId, ObjectId)>, StoreError> {
        let live_targets = "links JOIN objects AS target \
             ON target.tenant_id = links.tenant_id AND target.id = links.to_id AND target.deleted_at IS NULL";
        self.link_pairs_where_in(kind, live_targets, "from_id", froms).await
    }

    async fn get_object_with_live_links(
        &mut self,
        id: ObjectId,
        kind: LinkKind,
    ) -> Result<Option<(ObjectRow, Vec<ObjectId>)>, StoreError> {
        // A row per live link target (or one row without), in one statement instead of two or three.
        let rows = sqlx::query(
            "SELECT objects.id, objects.kind, objects.upn, objects.display_name, objects.data, objects.deleted_at, \
             objects.anchor, live.to_id AS link_to FROM objects LEFT JOIN \
             (SELECT links.from_id, links.to_id FROM links JOIN objects AS target \
              ON target.tenant_id = links.tenant_id AND target.id = links.to_id \
              WHERE links.tenant_id = ?1 AND links.kind = ?2 AND links.from_id = ?3 AND target.deleted_at IS NULL) \
             AS live ON live.from_id = objects.id \
             WHERE objects.tenant_id = ?1 AND objects.id = ?3 ORDER BY live.to_id",
        )
        .bind(&self.tenant_text)
        .bind(kind.as_str())
        .bind(id.to_string())
        .fetch_all(&mut *self.tx)
        .await
        .map_err(unavailable)?;
        let Some(first) = rows.first() else { return Ok(None) };
        let object = object_from_row(first)?;
        // A row without a live link has NULL there; anything else (an id, or a value that does not decode) is
        // `ids`' to read or refuse.
        let linked = rows.iter().filter(|row| !matches!(row.try_get::<Option<&str>, _>("link_to"), Ok(None)));
        let targets = ids(linked, "link_to")?;
        Ok(Some((object, targets)))
    }

    async fn links_to_many(
        &mut self,
        kind: LinkKind,
        tos: &[ObjectId],
    ) -> Result<Vec<(ObjectId, ObjectId)>, StoreError> {
        // As in `links_to`: without statistics SQLite would scan the primary key instead of this index.
        self.link_pairs_where_in(kind, "links INDEXED BY links_by_target", "to_id", tos).await
    }

    async fn insert_objects_skipping_conflicts(&mut self, rows: &[ObjectRow]) -> Result<Vec<bool>, StoreError> {
        let mut inserted_ids = std::collections::HashSet::new();
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let mut insert = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                "INSERT INTO objects \
                 (id, tenant_id, kind, upn, upn_key, display_name, name_key, data, deleted_at, anchor, anchor_key) ",
            );
            insert.push_values(chunk, |mut values, row| {
                values
                    .push_bind(row.id.to_string())
                    .push_bind(&self.tenant_text)
                    .push_bind(row.kind.as_str())
                    .push_bind(&row.upn)
                    .push_bind(lower(&row.upn))
                    .push_bind(&row.display_name)
                    .push_bind(name_key(row))
                    .push_bind(&row.data)
                    .push_bind(row.deleted_at.map(micros))
                    .push_bind(&row.anchor)
                    .push_bind(lower(&row.anchor));
            });
            // Any unique clash (id, userPrincipalName, anchor) skips the row instead of failing the statement.
            insert.push(" ON CONFLICT DO NOTHING RETURNING id");
            for row in insert.build().fetch_all(&mut *self.tx).await.map_err(unavailable)? {
                inserted_ids.insert(row.try_get::<String, _>("id").map_err(unavailable)?);
            }
        }
        Ok(rows.iter().map(|row| inserted_ids.contains(&row.id.to_string())).collect())
    }

    async fn append_logs(&mut self, logs: &[LogRow]) -> Result<(), StoreError> {
        if logs.is_empty() {
            return Ok(());
        }
        // One counter update for the whole batch: the entries take the numbers up to the new value, in order.
        let n_logs = i64::try_from(logs.len()).expect("a batch of logs fits in i64");
        let last = self.take_numbers(Counter::Logs, n_logs).await?;
        let first = last - n_logs + 1;
        let stored: Vec<Vec<u8>> = logs.iter().map(|log| crate::log_data::encode(&log.data)).collect();
        for (chunk_idx, (chunk, stored)) in
            logs.chunks(ROWS_PER_STATEMENT).zip(stored.chunks(ROWS_PER_STATEMENT)).enumerate()
        {
            let base = first + (chunk_idx * ROWS_PER_STATEMENT) as i64;
            let mut insert = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                "INSERT INTO provisioning_logs \
                 (tenant_id, seq, id, job_id, cycle_id, at, action, status, source_id, target_id, data) ",
            );
            insert.push_values(chunk.iter().zip(stored).enumerate(), |mut row, (idx, (log, data))| {
                row.push_bind(&self.tenant_text)
                    .push_bind(base + idx as i64)
                    .push_bind(&log.id)
                    .push_bind(&log.job_id)
                    .push_bind(&log.cycle_id)
                    .push_bind(micros(log.at))
                    .push_bind(&log.action)
                    .push_bind(&log.status)
                    .push_bind(&log.source_id)
                    .push_bind(&log.target_id)
                    .push_bind(data);
            });
            insert.build().execute(&mut *self.tx).await.map_err(unavailable)?;
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
            let mut upsert = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                "INSERT INTO documents (tenant_id, collection, doc_key, data, updated_at) ",
            );
            upsert.push_values(chunk, |mut row, doc| {
                row.push_bind(&self.tenant_text)
                    .push_bind(&doc.collection)
                    .push_bind(&doc.key)
                    .push_bind(&doc.data)
                    .push_bind(micros(doc.updated_at));
            });
            upsert.push(
                " ON CONFLICT (tenant_id, collection, doc_key) \
                 DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at",
            );
            upsert.build().execute(&mut *self.tx).await.map_err(unavailable)?;
        }
        Ok(())
    }

    async fn get_docs(&mut self, collection: &str, keys: &[String]) -> Result<Vec<DocRow>, StoreError> {
        self.docs_with_keys(DOC_COLUMNS, collection, keys).await?.iter().map(doc_from_row).collect()
    }

    async fn existing_doc_keys(
        &mut self,
        collection: &str,
        keys: &[String],
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        let rows = self.docs_with_keys("doc_key", collection, keys).await?;
        rows.iter().map(|row| row.try_get::<String, _>("doc_key").map_err(unavailable)).collect()
    }

    async fn append_log(&mut self, log: &LogRow) -> Result<i64, StoreError> {
        // A counter on the tenant row, not MAX(seq) + 1: pruning may delete the newest entries, and their numbers
        // must not come back.
        let seq = self.take_numbers(Counter::Logs, 1).await?;
        sqlx::query(trusted(format!(
            "INSERT INTO provisioning_logs (tenant_id, {LOG_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )))
        .bind(&self.tenant_text)
        .bind(seq)
        .bind(&log.id)
        .bind(&log.job_id)
        .bind(&log.cycle_id)
        .bind(micros(log.at))
        .bind(&log.action)
        .bind(&log.status)
        .bind(&log.source_id)
        .bind(&log.target_id)
        .bind(crate::log_data::encode(&log.data))
        .execute(&mut *self.tx)
        .await
        .map_err(unavailable)?;
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
        let mut sql = format!("SELECT {LOG_COLUMNS} FROM provisioning_logs WHERE tenant_id = ?");
        for (column, value) in &text_filters {
            if value.is_some() {
                sql.push_str(&format!(" AND {column} = ?"));
            }
        }
        if query.since.is_some() {
            sql.push_str(" AND at >= ?");
        }
        if query.until.is_some() {
            sql.push_str(" AND at < ?");
        }
        if query.before_seq.is_some() {
            sql.push_str(" AND seq < ?");
        }
        sql.push_str(&format!(" ORDER BY seq DESC LIMIT {}", query.limit));
        let mut statement = sqlx::query(trusted(sql)).bind(&self.tenant_text);
        for value in text_filters.iter().filter_map(|(_, value)| value.as_ref()) {
            statement = statement.bind(value.clone());
        }
        if let Some(since) = query.since {
            statement = statement.bind(micros(since));
        }
        if let Some(until) = query.until {
            statement = statement.bind(micros(until));
        }
        if let Some(before_seq) = query.before_seq {
            statement = statement.bind(before_seq);
        }
        let rows = statement.fetch_all(&mut *self.tx).await.map_err(unavailable)?;
        rows.iter().map(log_from_row).collect()
    }

    async fn prune_logs(&mut self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let result = sqlx::query("DELETE FROM provisioning_logs WHERE tenant_id = ? AND at < ?")
            .bind(&self.tenant_text)
            .bind(micros(before))
            .execute(&mut *self.tx)
            .await
            .map_err(unavailable)?;
        Ok(result.rows_affected())
    }

    async fn get_doc_for_update(&mut self, collection: &str, key: &str) -> Result<Option<DocRow>, StoreError> {
        // A write transaction (`BEGIN IMMEDIATE`) holds the database's write lock: no other writer until it ends.
        self.get_doc(collection, key).await
    }

    async fn get_lease(&mut self, job_id: &str) -> Result<Option<LeaseRow>, StoreError> {
        crate::leases::get(&mut self.tx, &self.tenant_text, job_id).await
    }

    async fn share_lease(&mut self, job_tenant: TenantId, job_id: &str) -> Result<Option<i64>, StoreError> {
        // As for documents: the write lock covers the lease row.
        let lease = crate::leases::get(&mut self.tx, &job_tenant.to_string(), job_id).await?;
        Ok(lease.map(|lease| lease.token))
    }

    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        let SqliteDirectoryTx { tx, _writer: turn, checkpoints, .. } = *self;
        tx.commit().await.map_err(unavailable)?;
        // The turn passes to the next writer once the transaction has ended.
        drop(turn);
        if let Some(checkpoints) = checkpoints {
            checkpoints.committed();
        }
        Ok(())
    }
}

impl SqliteDirectoryTx {
    async fn tenant_counter(&mut self, column: &'static str) -> Result<i64, StoreError> {
        let row = sqlx::query(trusted(format!("SELECT {column} AS n FROM tenants WHERE id = ?")))
            .bind(&self.tenant_text)
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(unavailable)?
            .ok_or(StoreError::NotFound { tenant: self.tenant, what: "tenant" })?;
        row.try_get("n").map_err(unavailable)
    }
}

fn ids<'a>(
    rows: impl IntoIterator<Item = &'a sqlx::sqlite::SqliteRow>,
    column: &str,
) -> Result<Vec<ObjectId>, StoreError> {
    rows.into_iter()
        .map(|row| {
            let text: String = row.try_get(column).map_err(unavailable)?;
            text.parse::<ObjectId>()
                .map_err(|_| StoreError::Corrupt { detail: format!("bad id '{text}' in column {column}") })
        })
        .collect()
}

/// `(from_id, to_id)` pairs of link rows.
fn link_pairs(rows: &[sqlx::sqlite::SqliteRow]) -> Result<Vec<(ObjectId, ObjectId)>, StoreError> {
    let from = ids(rows, "from_id")?;
    let to = ids(rows, "to_id")?;
    Ok(from.into_iter().zip(to).collect())
}

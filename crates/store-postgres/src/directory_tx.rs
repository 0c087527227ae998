//! [`DirectoryTx`] over one PostgreSQL transaction. Every statement names the tenant fixed at `begin`.
//!
//! PostgreSQL aborts the whole transaction on a failed statement, where SQLite only fails the statement. The
//! writes that may fail on a unique key and leave the caller free to go on are therefore made so that they never
//! abort it: inserting and updating objects run inside a savepoint (so that the violated index, hence what clashed,
//! can be reported), inserting a document skips a conflicting row. Any other error leaves the transaction unusable;
//! the caller drops it, which rolls back.

use async_trait::async_trait;
use sqlx::postgres::{PgArguments, PgQueryResult};
use sqlx::query::Query;
use sqlx::{Acquire, Postgres, Row, Transaction};
use tenantsync_model::{ObjectId, ObjectKind, TenantId};
use tenantsync_store::{
    ChangeRow, DirectoryTx, DocRow, KeyMatch, LeaseRow, LinkKind, LogQuery, LogRow, ObjectRow, ScanOrder, ScanSpec,
    ScimKey, ScimSelect, StoreError, Wake, prefix_upper_bound,
};
use time::OffsetDateTime;

use crate::codec::{
    change_from_row, classify, doc_from_row, log_from_row, micros, object_from_row, trusted, unavailable,
};

const OBJECT_COLUMNS: &str = "id, kind, upn, display_name, data, deleted_at, anchor";
const DOC_COLUMNS: &str = "collection, doc_key, data, updated_at";
/// Rows per multi-row statement: well under SQLite's 32,766 and PostgreSQL's 65,535 bound parameters.
const ROWS_PER_STATEMENT: usize = 500;

/// The SCIM userName as migration 0023 indexes it (bytewise, the "C" collation): the expression must stay
/// identical for PostgreSQL to use the index.
const USER_NAME_KEY: &str = "(lower(coalesce(scim_user_name, upn)) COLLATE \"C\")";
/// The SCIM externalId as migration 0023 indexes it.
const EXTERNAL_ID_KEY: &str = "(scim_external_id COLLATE \"C\")";

const LOG_COLUMNS: &str = "seq, id, job_id, cycle_id, at, action, status, source_id, target_id, data";

/// What a directory transaction runs its statements on: a transaction, or for [`TxMode::ReadStatements`] a
/// pooled connection whose statements each commit alone.
pub(crate) enum TxConn {
    Tx(Transaction<'static, Postgres>),
    Statements(sqlx::pool::PoolConnection<Postgres>),
}

impl std::ops::Deref for TxConn {
    type Target = sqlx::PgConnection;

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

pub(crate) struct PgDirectoryTx {
    tenant: TenantId,
    tenant_text: String,
    tx: TxConn,
    /// A change was appended: the commit notifies other processes (`leases::notify`).
    changed: bool,
}

impl PgDirectoryTx {
    /// The tenant's objects whose `column` (a trusted name) is one of `keys`, one index probe per key (see the
    /// batched reads of the `DirectoryTx` impl).
    async fn objects_with_keys(&mut self, column: &str, keys: Vec<String>) -> Result<Vec<ObjectRow>, StoreError> {
        let rows = sqlx::query(trusted(format!(
            "SELECT found.* FROM UNNEST($2::text[]) AS wanted(key) CROSS JOIN LATERAL \
             (SELECT {OBJECT_COLUMNS} FROM objects WHERE tenant_id = $1 AND {column} = wanted.key OFFSET 0) AS found"
        )))
        .bind(&self.tenant_text)
        .bind(keys)
        .fetch_all(&mut *self.tx)
        .await
        .map_err(unavailable)?;
        rows.iter().map(object_from_row).collect()
    }

    pub(crate) fn new(tenant: TenantId, tx: TxConn) -> Self {
        Self { tenant, tenant_text: tenant.to_string(), tx, changed: false }
    }
}

fn lower(value: &Option<String>) -> Option<String> {
    value.as_ref().map(|text| text.to_lowercase())
}

fn name_key(row: &ObjectRow) -> String {
    row.display_name.clone().unwrap_or_default().to_lowercase()
}

/// `FROM objects WHERE …` for the live objects of `kind` passing every condition. The kind is written as a
/// literal, so that the planner sees the `kind = 'user'` of the partial indexes of userName and externalId.
fn push_scim_where(
    query: &mut sqlx::QueryBuilder<Postgres>,
    tenant: &str,
    kind: ObjectKind,
    conditions: &[(ScimKey, KeyMatch)],
) {
    query.push(" FROM objects WHERE tenant_id = ").push_bind(tenant.to_owned());
    query.push(format!(" AND kind = '{}' AND deleted_at IS NULL", kind.as_str()));
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
fn push_key_match(query: &mut sqlx::QueryBuilder<Postgres>, column: &str, condition: &KeyMatch) {
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

impl PgDirectoryTx {
    /// Takes the next `n` numbers of `counter` and answers the last of them. The update locks the tenant row, so
    /// the tenant's appenders wait for each other; numbers are never reused, even after pruning.
    async fn take_numbers(&mut self, counter: Counter, n: i64) -> Result<i64, StoreError> {
        let sql = match counter {
            Counter::Changes => "UPDATE tenants SET last_seq = last_seq + $1 WHERE id = $2 RETURNING last_seq AS last",
            Counter::Logs => {
                "UPDATE tenants SET last_log_seq = last_log_seq + $1 WHERE id = $2 RETURNING last_log_seq AS last"
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
impl DirectoryTx for PgDirectoryTx {
    fn tenant(&self) -> TenantId {
        self.tenant
    }

    async fn get_object(&mut self, id: ObjectId) -> Result<Option<ObjectRow>, StoreError> {
        let row =
            sqlx::query(trusted(format!("SELECT {OBJECT_COLUMNS} FROM objects WHERE tenant_id = $1 AND id = $2")))
                .bind(&self.tenant_text)
                .bind(id.to_string())
                .fetch_optional(&mut *self.tx)
                .await
                .map_err(unavailable)?;
        row.as_ref().map(object_from_row).transpose()
    }

    async fn find_by_upn(&mut self, upn: &str) -> Result<Option<ObjectRow>, StoreError> {
        let row =
            sqlx::query(trusted(format!("SELECT {OBJECT_COLUMNS} FROM objects WHERE tenant_id = $1 AND upn_key = $2")))
                .bind(&self.tenant_text)
                .bind(upn.to_lowercase())
                .fetch_optional(&mut *self.tx)
                .await
                .map_err(unavailable)?;
        row.as_ref().map(object_from_row).transpose()
    }

    async fn find_by_anchor(&mut self, anchor: &str) -> Result<Option<ObjectRow>, StoreError> {
        let row = sqlx::query(trusted(format!(
            "SELECT {OBJECT_COLUMNS} FROM objects WHERE tenant_id = $1 AND anchor_key = $2"
        )))
        .bind(&self.tenant_text)
        .bind(anchor.to_lowercase())
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(unavailable)?;
        row.as_ref().map(object_from_row).transpose()
    }

    async fn find_users_by_scim_user_name(&mut self, user_name: &str) -> Result<Vec<ObjectRow>, StoreError> {
        // The expression is the index's (migration 0023), so PostgreSQL uses it.
        let rows = sqlx::query(trusted(format!(
            "SELECT {OBJECT_COLUMNS} FROM objects WHERE tenant_id = $1 AND kind = 'user' \
             AND {USER_NAME_KEY} = lower($2) AND deleted_at IS NULL"
        )))
        .bind(&self.tenant_text)
        .bind(user_name)
        .fetch_all(&mut *self.tx)
        .await
        .map_err(unavailable)?;
        rows.iter().map(object_from_row).collect()
    }

    async fn insert_object(&mut self, row: &ObjectRow) -> Result<(), StoreError> {
        let scim = row.scim_columns();
        let query = sqlx::query(
            "INSERT INTO objects (id, tenant_id, kind, upn, upn_key, display_name, name_key, data, deleted_at, \
             anchor, anchor_key, scim_user_name, scim_external_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(row.id.to_string())
        .bind(self.tenant_text.clone())
        .bind(row.kind.as_str())
        .bind(row.upn.clone())
        .bind(lower(&row.upn))
        .bind(row.display_name.clone())
        .bind(name_key(row))
        .bind(row.data.clone())
        .bind(row.deleted_at.map(micros))
        .bind(row.anchor.clone())
        .bind(lower(&row.anchor))
        .bind(scim.user_name)
        .bind(scim.external_id);
        self.execute_in_savepoint(query, "userPrincipalName or id").await?;
        Ok(())
    }

    async fn update_object(&mut self, row: &ObjectRow) -> Result<(), StoreError> {
        let scim = row.scim_columns();
        let query = sqlx::query(
            "UPDATE objects SET upn = $1, upn_key = $2, display_name = $3, name_key = $4, data = $5, deleted_at = $6, \
             anchor = $7, anchor_key = $8, scim_user_name = $11, scim_external_id = $12 \
             WHERE tenant_id = $9 AND id = $10",
        )
        .bind(row.upn.clone())
        .bind(lower(&row.upn))
        .bind(row.display_name.clone())
        .bind(name_key(row))
        .bind(row.data.clone())
        .bind(row.deleted_at.map(micros))
        .bind(row.anchor.clone())
        .bind(lower(&row.anchor))
        .bind(self.tenant_text.clone())
        .bind(row.id.to_string())
        .bind(scim.user_name)
        .bind(scim.external_id);
        let result = self.execute_in_savepoint(query, "userPrincipalName").await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound { tenant: self.tenant, what: "object" });
        }
        Ok(())
    }

    async fn purge_object(&mut self, id: ObjectId) -> Result<(), StoreError> {
        let id_text = id.to_string();
        sqlx::query("DELETE FROM links WHERE tenant_id = $1 AND (from_id = $2 OR to_id = $2)")
            .bind(&self.tenant_text)
            .bind(&id_text)
            .execute(&mut *self.tx)
            .await
            .map_err(unavailable)?;
        sqlx::query("DELETE FROM objects WHERE tenant_id = $1 AND id = $2")
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
        let mut query =
            sqlx::QueryBuilder::<Postgres>::new(format!("SELECT {OBJECT_COLUMNS} FROM objects WHERE tenant_id = "));
        query.push_bind(self.tenant_text.clone());
        query.push(" AND kind = ").push_bind(kind.as_str());
        query.push(format!(" AND {deleted}"));
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
        query.push(" LIMIT ").push_bind(i64::from(spec.limit));
        let rows = query.build().fetch_all(&mut *self.tx).await.map_err(unavailable)?;
        rows.iter().map(object_from_row).collect()
    }

    async fn select_scim(&mut self, select: &ScimSelect) -> Result<Vec<ObjectRow>, StoreError> {
        let mut query = sqlx::QueryBuilder::<Postgres>::new(format!("SELECT {OBJECT_COLUMNS}"));
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
        query.push(" LIMIT ").push_bind(i64::from(select.limit));
        query.push(" OFFSET ").push_bind(i64::try_from(select.offset).unwrap_or(i64::MAX));
        let rows = query.build().fetch_all(&mut *self.tx).await.map_err(unavailable)?;
        rows.iter().map(object_from_row).collect()
    }

    async fn count_scim(&mut self, kind: ObjectKind, conditions: &[(ScimKey, KeyMatch)]) -> Result<u64, StoreError> {
        let mut query = sqlx::QueryBuilder::<Postgres>::new("SELECT COUNT(*) AS n");
        push_scim_where(&mut query, &self.tenant_text, kind, conditions);
        let row = query.build().fetch_one(&mut *self.tx).await.map_err(unavailable)?;
        Ok(row.try_get::<i64, _>("n").map_err(unavailable)?.max(0) as u64)
    }

    async fn count_objects(&mut self, kind: ObjectKind, deleted: bool) -> Result<u64, StoreError> {
        let deleted = if deleted { "deleted_at IS NOT NULL" } else { "deleted_at IS NULL" };
        let row = sqlx::query(trusted(format!(
            "SELECT COUNT(*) AS n FROM objects WHERE tenant_id = $1 AND kind = $2 AND {deleted}"
        )))
        .bind(&self.tenant_text)
        .bind(kind.as_str())
        .fetch_one(&mut *self.tx)
        .await
        .map_err(unavailable)?;
        Ok(row.try_get::<i64, _>("n").map_err(unavailable)?.max(0) as u64)
    }

    async fn deleted_before(&mut self, before: OffsetDateTime) -> Result<Vec<ObjectId>, StoreError> {
        let rows = sqlx::query(
            "SELECT id FROM objects WHERE tenant_id = $1 AND deleted_at IS NOT NULL AND deleted_at < $2 ORDER BY id",
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
            "INSERT INTO links (tenant_id, kind, from_id, to_id) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
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
        let result =
            sqlx::query("DELETE FROM links WHERE tenant_id = $1 AND kind = $2 AND from_id = $3 AND to_id = $4")
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
            sqlx::query("SELECT to_id FROM links WHERE tenant_id = $1 AND kind = $2 AND from_id = $3 ORDER BY to_id")
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
            sqlx::query("SELECT from_id FROM links WHERE tenant_id = $1 AND kind = $2 AND to_id = $3 ORDER BY from_id")
                .bind(&self.tenant_text)
                .bind(kind.as_str())
                .bind(to.to_string())
                .fetch_all(&mut *self.tx)
                .await
                .map_err(unavailable)?;
        ids(&rows, "from_id")
    }

    async fn links_to_any(&mut self, kind: LinkKind, to: &[ObjectId]) -> Result<Vec<(ObjectId, ObjectId)>, StoreError> {
        let mut pairs = self.links_by(kind, LinkEnd::To, to).await?;
        pairs.sort_by_key(|pair| (pair.1, pair.0));
        Ok(pairs)
    }

    async fn add_links(&mut self, kind: LinkKind, pairs: &[(ObjectId, ObjectId)]) -> Result<u64, StoreError> {
        if pairs.is_empty() {
            return Ok(0);
        }
        let (from, to): (Vec<String>, Vec<String>) =
            pairs.iter().map(|(from, to)| (from.to_string(), to.to_string())).unzip();
        let result = sqlx::query(
            "INSERT INTO links (tenant_id, kind, from_id, to_id) \
             SELECT $1, $2, pair.from_id, pair.to_id FROM UNNEST($3::text[], $4::text[]) AS pair(from_id, to_id) \
             ON CONFLICT DO NOTHING",
        )
        .bind(&self.tenant_text)
        .bind(kind.as_str())
        .bind(from)
        .bind(to)
        .execute(&mut *self.tx)
        .await
        .map_err(unavailable)?;
        Ok(result.rows_affected())
    }

    async fn remove_links(&mut self, kind: LinkKind, pairs: &[(ObjectId, ObjectId)]) -> Result<u64, StoreError> {
        if pairs.is_empty() {
            return Ok(0);
        }
        let (from, to): (Vec<String>, Vec<String>) =
            pairs.iter().map(|(from, to)| (from.to_string(), to.to_string())).unzip();
        // Index probes per pair, then a TID scan, for the same reason as in `links_to_any`: a join the planner may
        // turn into a scan of every link of the tenant.
        let result = sqlx::query(
            "DELETE FROM links WHERE ctid = ANY(ARRAY(SELECT found.ctid \
             FROM UNNEST($3::text[], $4::text[]) AS pair(from_id, to_id) CROSS JOIN LATERAL \
             (SELECT ctid FROM links WHERE tenant_id = $1 AND kind = $2 AND from_id = pair.from_id \
             AND to_id = pair.to_id OFFSET 0) AS found))",
        )
        .bind(&self.tenant_text)
        .bind(kind.as_str())
        .bind(from)
        .bind(to)
        .execute(&mut *self.tx)
        .await
        .map_err(unavailable)?;
        Ok(result.rows_affected())
    }

    async fn append_changes(&mut self, changes: &[ChangeRow]) -> Result<i64, StoreError> {
        let n_changes = changes.len() as i64;
        self.changed |= n_changes > 0;
        let last = self.take_numbers(Counter::Changes, n_changes).await?;
        if changes.is_empty() {
            return Ok(last);
        }
        let seqs: Vec<i64> = (last - n_changes + 1..=last).collect();
        let object_ids: Vec<String> = changes.iter().map(|change| change.object_id.to_string()).collect();
        let kinds: Vec<&str> = changes.iter().map(|change| change.kind.as_str()).collect();
        let ops: Vec<&str> = changes.iter().map(|change| change.op.as_str()).collect();
        let related: Vec<Option<String>> =
            changes.iter().map(|change| change.related.map(|id| id.to_string())).collect();
        let link_kinds: Vec<Option<&str>> =
            changes.iter().map(|change| change.link_kind.map(LinkKind::as_str)).collect();
        let ats: Vec<i64> = changes.iter().map(|change| micros(change.at)).collect();
        sqlx::query(
            "INSERT INTO changes (tenant_id, seq, object_id, kind, op, related, link_kind, at) \
             SELECT $1, row.seq, row.object_id, row.kind, row.op, row.related, row.link_kind, row.at \
             FROM UNNEST($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bigint[]) \
             AS row(seq, object_id, kind, op, related, link_kind, at)",
        )
        .bind(&self.tenant_text)
        .bind(seqs)
        .bind(object_ids)
        .bind(kinds)
        .bind(ops)
        .bind(related)
        .bind(link_kinds)
        .bind(ats)
        .execute(&mut *self.tx)
        .await
        .map_err(unavailable)?;
        Ok(last)
    }

    async fn lock_tenant(&mut self) -> Result<(), StoreError> {
        // The same row lock the first `append_change` takes (its UPDATE), held until commit.
        let row = sqlx::query("SELECT last_seq FROM tenants WHERE id = $1 FOR UPDATE")
            .bind(&self.tenant_text)
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(unavailable)?;
        if row.is_none() {
            return Err(StoreError::NotFound { tenant: self.tenant, what: "tenant" });
        }
        Ok(())
    }

    async fn append_change(&mut self, change: &ChangeRow) -> Result<i64, StoreError> {
        self.changed = true;
        // The counter's update and the entry's insert in one statement: one round trip for every user write.
        let row = sqlx::query(
            "WITH counter AS (UPDATE tenants SET last_seq = last_seq + 1 WHERE id = $1 RETURNING id, last_seq) \
             INSERT INTO changes (tenant_id, seq, object_id, kind, op, related, link_kind, at) \
             SELECT id, last_seq, $2, $3, $4, $5, $6, $7 FROM counter RETURNING seq",
        )
        .bind(&self.tenant_text)
        .bind(change.object_id.to_string())
        .bind(change.kind.as_str())
        .bind(change.op.as_str())
        .bind(change.related.map(|id| id.to_string()))
        .bind(change.link_kind.map(LinkKind::as_str))
        .bind(micros(change.at))
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(unavailable)?
        .ok_or(StoreError::NotFound { tenant: self.tenant, what: "tenant" })?;
        row.try_get("seq").map_err(unavailable)
    }

    async fn read_changes(&mut self, kind: ObjectKind, after: i64, limit: u32) -> Result<Vec<ChangeRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, object_id, kind, op, related, link_kind, at FROM changes \
             WHERE tenant_id = $1 AND seq > $2 AND kind = $3 ORDER BY seq LIMIT $4",
        )
        .bind(&self.tenant_text)
        .bind(after)
        .bind(kind.as_str())
        .bind(i64::from(limit))
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
        let newest_old: Option<i64> =
            sqlx::query("SELECT MAX(seq) AS seq FROM changes WHERE tenant_id = $1 AND at < $2")
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
        let result = sqlx::query("DELETE FROM changes WHERE tenant_id = $1 AND seq <= $2")
            .bind(&self.tenant_text)
            .bind(newest_old)
            .execute(&mut *self.tx)
            .await
            .map_err(unavailable)?;
        sqlx::query("UPDATE tenants SET change_horizon = GREATEST(change_horizon, $1) WHERE id = $2")
            .bind(newest_old)
            .bind(&self.tenant_text)
            .execute(&mut *self.tx)
            .await
            .map_err(unavailable)?;
        Ok(result.rows_affected())
    }

    async fn get_doc(&mut self, collection: &str, key: &str) -> Result<Option<DocRow>, StoreError> {
        let row = sqlx::query(trusted(format!(
            "SELECT {DOC_COLUMNS} FROM documents WHERE tenant_id = $1 AND collection = $2 AND doc_key = $3"
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
            "INSERT INTO documents (tenant_id, collection, doc_key, data, updated_at) VALUES ($1, $2, $3, $4, $5) \
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
        // `DO NOTHING` rather than a unique violation, which would abort the transaction. The primary key is the
        // only unique index of the table, so a skipped row always means the key exists.
        let result = sqlx::query(
            "INSERT INTO documents (tenant_id, collection, doc_key, data, updated_at) VALUES ($1, $2, $3, $4, $5) \
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
        let result = sqlx::query("DELETE FROM documents WHERE tenant_id = $1 AND collection = $2 AND doc_key = $3")
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
        // doc_key has the "C" collation: bytewise order, as the trait promises.
        let (after, limit_param) = if after_key.is_some() { (" AND doc_key > $3", 4) } else { ("", 3) };
        let mut query = sqlx::query(trusted(format!(
            "SELECT {DOC_COLUMNS} FROM documents WHERE tenant_id = $1 AND collection = $2{after} \
             ORDER BY doc_key LIMIT ${limit_param}"
        )))
        .bind(&self.tenant_text)
        .bind(collection);
        if let Some(after_key) = after_key {
            query = query.bind(after_key);
        }
        let rows = query.bind(i64::from(limit)).fetch_all(&mut *self.tx).await.map_err(unavailable)?;
        rows.iter().map(doc_from_row).collect()
    }

    async fn delete_collection(&mut self, collection: &str) -> Result<u64, StoreError> {
        let result = sqlx::query("DELETE FROM documents WHERE tenant_id = $1 AND collection = $2")
            .bind(&self.tenant_text)
            .bind(collection)
            .execute(&mut *self.tx)
            .await
            .map_err(unavailable)?;
        Ok(result.rows_affected())
    }

    async fn insert_objects_skipping_conflicts(&mut self, rows: &[ObjectRow]) -> Result<Vec<bool>, StoreError> {
        let mut inserted_ids = std::collections::HashSet::new();
        // Columns as arrays through `UNNEST`: one statement text whatever the batch, which PostgreSQL parses and
        // plans once per connection, where a `VALUES` list of 500 rows × 11 parameters was planned anew each time.
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let scim: Vec<_> = chunk.iter().map(ObjectRow::scim_columns).collect();
            let found = sqlx::query(
                "INSERT INTO objects (id, tenant_id, kind, upn, upn_key, display_name, name_key, data, deleted_at, \
                 anchor, anchor_key, scim_user_name, scim_external_id) \
                 SELECT id, $1, kind, upn, upn_key, display_name, name_key, data, deleted_at, anchor, anchor_key, \
                 scim_user_name, scim_external_id \
                 FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], \
                 $9::int8[], $10::text[], $11::text[], $12::text[], $13::text[]) \
                 AS batch(id, kind, upn, upn_key, display_name, name_key, data, deleted_at, anchor, anchor_key, \
                 scim_user_name, scim_external_id) \
                 ON CONFLICT DO NOTHING RETURNING id",
            )
            .bind(&self.tenant_text)
            .bind(chunk.iter().map(|row| row.id.to_string()).collect::<Vec<_>>())
            .bind(chunk.iter().map(|row| row.kind.as_str()).collect::<Vec<_>>())
            .bind(chunk.iter().map(|row| row.upn.clone()).collect::<Vec<_>>())
            .bind(chunk.iter().map(|row| lower(&row.upn)).collect::<Vec<_>>())
            .bind(chunk.iter().map(|row| row.display_name.clone()).collect::<Vec<_>>())
            .bind(chunk.iter().map(name_key).collect::<Vec<_>>())
            .bind(chunk.iter().map(|row| row.data.as_str()).collect::<Vec<_>>())
            .bind(chunk.iter().map(|row| row.deleted_at.map(micros)).collect::<Vec<_>>())
            .bind(chunk.iter().map(|row| row.anchor.clone()).collect::<Vec<_>>())
            .bind(chunk.iter().map(|row| lower(&row.anchor)).collect::<Vec<_>>())
            .bind(scim.iter().map(|columns| columns.user_name.as_deref()).collect::<Vec<_>>())
            .bind(scim.iter().map(|columns| columns.external_id.as_deref()).collect::<Vec<_>>())
            .fetch_all(&mut *self.tx)
            .await
            .map_err(unavailable)?;
            for row in found {
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
        for (chunk_idx, chunk) in logs.chunks(ROWS_PER_STATEMENT).enumerate() {
            let base = first + (chunk_idx * ROWS_PER_STATEMENT) as i64;
            sqlx::query(
                "INSERT INTO provisioning_logs \
                 (tenant_id, seq, id, job_id, cycle_id, at, action, status, source_id, target_id, data) \
                 SELECT $1, seq, id, job_id, cycle_id, at, action, status, source_id, target_id, data \
                 FROM UNNEST($2::int8[], $3::text[], $4::text[], $5::text[], $6::int8[], $7::text[], $8::text[], \
                 $9::text[], $10::text[], $11::text[]) \
                 AS batch(seq, id, job_id, cycle_id, at, action, status, source_id, target_id, data)",
            )
            .bind(&self.tenant_text)
            .bind((0..chunk.len()).map(|idx| base + idx as i64).collect::<Vec<_>>())
            .bind(chunk.iter().map(|log| log.id.as_str()).collect::<Vec<_>>())
            .bind(chunk.iter().map(|log| log.job_id.as_str()).collect::<Vec<_>>())
            .bind(chunk.iter().map(|log| log.cycle_id.as_str()).collect::<Vec<_>>())
            .bind(chunk.iter().map(|log| micros(log.at)).collect::<Vec<_>>())
            .bind(chunk.iter().map(|log| log.action.as_str()).collect::<Vec<_>>())
            .bind(chunk.iter().map(|log| log.status.as_str()).collect::<Vec<_>>())
            .bind(chunk.iter().map(|log| log.source_id.clone()).collect::<Vec<_>>())
            .bind(chunk.iter().map(|log| log.target_id.clone()).collect::<Vec<_>>())
            .bind(chunk.iter().map(|log| log.data.as_str()).collect::<Vec<_>>())
            .execute(&mut *self.tx)
            .await
            .map_err(unavailable)?;
        }
        Ok(())
    }

    // The batched reads below probe an index once per key: `UNNEST` of the keys joined LATERAL to a subquery kept
    // apart by `OFFSET 0`. Written as `IN (…)` or `= ANY($n)`, PostgreSQL planned scans of a whole collection on the
    // statistics of tables still being bulk-loaded (see `links_to_any`).
    async fn get_objects(&mut self, ids_in: &[ObjectId]) -> Result<Vec<ObjectRow>, StoreError> {
        self.objects_with_keys("id", ids_in.iter().map(ObjectId::to_string).collect()).await
    }

    async fn find_by_anchors(&mut self, anchors: &[String]) -> Result<Vec<ObjectRow>, StoreError> {
        self.objects_with_keys("anchor_key", anchors.iter().map(|anchor| anchor.to_lowercase()).collect()).await
    }

    async fn links_from_many(
        &mut self,
        kind: LinkKind,
        froms: &[ObjectId],
    ) -> Result<Vec<(ObjectId, ObjectId)>, StoreError> {
        let mut pairs = self.links_by(kind, LinkEnd::From, froms).await?;
        pairs.sort();
        Ok(pairs)
    }

    async fn live_links_from_many(
        &mut self,
        kind: LinkKind,
        froms: &[ObjectId],
    ) -> Result<Vec<(ObjectId, ObjectId)>, StoreError> {
        let mut pairs = self.links_by(kind, LinkEnd::FromLiveTarget, froms).await?;
        pairs.sort();
        Ok(pairs)
    }

    async fn get_object_with_live_links(
        &mut self,
        id: ObjectId,
        kind: LinkKind,
    ) -> Result<Option<(ObjectRow, Vec<ObjectId>)>, StoreError> {
        // A row per live link target (or one row without), in one round trip instead of two or three.
        let rows = sqlx::query(
            "SELECT objects.id, objects.kind, objects.upn, objects.display_name, objects.data, objects.deleted_at, \
             objects.anchor, live.to_id AS link_to FROM objects LEFT JOIN \
             (SELECT links.from_id, links.to_id FROM links JOIN objects AS target \
              ON target.tenant_id = links.tenant_id AND target.id = links.to_id \
              WHERE links.tenant_id = $1 AND links.kind = $2 AND links.from_id = $3 AND target.deleted_at IS NULL) \
             AS live ON live.from_id = objects.id \
             WHERE objects.tenant_id = $1 AND objects.id = $3 ORDER BY live.to_id",
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
        let mut pairs = self.links_to_any(kind, tos).await?;
        pairs.sort();
        Ok(pairs)
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
            sqlx::query(
                "INSERT INTO documents (tenant_id, collection, doc_key, data, updated_at) \
                 SELECT $1, collection, doc_key, data, updated_at \
                 FROM UNNEST($2::text[], $3::text[], $4::text[], $5::int8[]) \
                 AS batch(collection, doc_key, data, updated_at) \
                 ON CONFLICT (tenant_id, collection, doc_key) \
                 DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at",
            )
            .bind(&self.tenant_text)
            .bind(chunk.iter().map(|doc| doc.collection.as_str()).collect::<Vec<_>>())
            .bind(chunk.iter().map(|doc| doc.key.as_str()).collect::<Vec<_>>())
            .bind(chunk.iter().map(|doc| doc.data.as_str()).collect::<Vec<_>>())
            .bind(chunk.iter().map(|doc| micros(doc.updated_at)).collect::<Vec<_>>())
            .execute(&mut *self.tx)
            .await
            .map_err(unavailable)?;
        }
        Ok(())
    }

    async fn append_log(&mut self, log: &LogRow) -> Result<i64, StoreError> {
        // A counter on the tenant row, not MAX(seq) + 1: pruning may delete the newest entries, and their numbers
        // must not come back. The update locks the tenant row, so concurrent appenders wait for each other.
        let seq = self.take_numbers(Counter::Logs, 1).await?;
        sqlx::query(trusted(format!(
            "INSERT INTO provisioning_logs (tenant_id, {LOG_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
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
        .bind(&log.data)
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
        let mut sql = format!("SELECT {LOG_COLUMNS} FROM provisioning_logs WHERE tenant_id = $1");
        let mut n_params = 1;
        let mut condition = |sql: &mut String, template: &str| {
            n_params += 1;
            sql.push_str(&template.replace('?', &format!("${n_params}")));
        };
        for (column, value) in &text_filters {
            if value.is_some() {
                condition(&mut sql, &format!(" AND {column} = ?"));
            }
        }
        if query.since.is_some() {
            condition(&mut sql, " AND at >= ?");
        }
        if query.until.is_some() {
            condition(&mut sql, " AND at < ?");
        }
        if query.before_seq.is_some() {
            condition(&mut sql, " AND seq < ?");
        }
        condition(&mut sql, " ORDER BY seq DESC LIMIT ?");
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
        let rows = statement.bind(i64::from(query.limit)).fetch_all(&mut *self.tx).await.map_err(unavailable)?;
        rows.iter().map(log_from_row).collect()
    }

    async fn prune_logs(&mut self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let result = sqlx::query("DELETE FROM provisioning_logs WHERE tenant_id = $1 AND at < $2")
            .bind(&self.tenant_text)
            .bind(micros(before))
            .execute(&mut *self.tx)
            .await
            .map_err(unavailable)?;
        Ok(result.rows_affected())
    }

    async fn get_doc_for_update(&mut self, collection: &str, key: &str) -> Result<Option<DocRow>, StoreError> {
        let row = sqlx::query(trusted(format!(
            "SELECT {DOC_COLUMNS} FROM documents WHERE tenant_id = $1 AND collection = $2 AND doc_key = $3 FOR UPDATE"
        )))
        .bind(&self.tenant_text)
        .bind(collection)
        .bind(key)
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(unavailable)?;
        row.as_ref().map(doc_from_row).transpose()
    }

    async fn get_lease(&mut self, job_id: &str) -> Result<Option<LeaseRow>, StoreError> {
        crate::leases::get(&mut self.tx, &self.tenant_text, job_id).await
    }

    async fn share_lease(&mut self, job_tenant: TenantId, job_id: &str) -> Result<Option<i64>, StoreError> {
        crate::leases::share(&mut self.tx, &job_tenant.to_string(), job_id).await
    }

    async fn commit(mut self: Box<Self>) -> Result<(), StoreError> {
        if self.changed {
            // Delivered with the commit, to every process listening: their jobs reading this tenant wake.
            crate::leases::notify(&mut self.tx, &Wake::Tenant(self.tenant)).await?;
        }
        self.tx.commit().await.map_err(unavailable)
    }
}

impl PgDirectoryTx {
    /// Runs a write inside a savepoint, so that a unique violation fails this statement only and the transaction
    /// goes on, as on SQLite. The violation becomes a conflict on what clashed (see `classify`).
    async fn execute_in_savepoint(
        &mut self,
        query: Query<'static, Postgres, PgArguments>,
        what: &'static str,
    ) -> Result<PgQueryResult, StoreError> {
        let mut savepoint = self.tx.begin().await.map_err(unavailable)?;
        match query.execute(&mut *savepoint).await {
            Ok(result) => {
                savepoint.commit().await.map_err(unavailable)?;
                Ok(result)
            }
            Err(err) => {
                savepoint.rollback().await.map_err(unavailable)?;
                Err(classify(err, what))
            }
        }
    }

    async fn tenant_counter(&mut self, column: &'static str) -> Result<i64, StoreError> {
        let row = sqlx::query(trusted(format!("SELECT {column} AS n FROM tenants WHERE id = $1")))
            .bind(&self.tenant_text)
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(unavailable)?
            .ok_or(StoreError::NotFound { tenant: self.tenant, what: "tenant" })?;
        row.try_get("n").map_err(unavailable)
    }
}

fn ids<'a>(
    rows: impl IntoIterator<Item = &'a sqlx::postgres::PgRow>,
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
fn link_pairs(rows: &[sqlx::postgres::PgRow]) -> Result<Vec<(ObjectId, ObjectId)>, StoreError> {
    let from = ids(rows, "from_id")?;
    let to = ids(rows, "to_id")?;
    Ok(from.into_iter().zip(to).collect())
}

/// Which end of a link a batched read names.
#[derive(Clone, Copy)]
enum LinkEnd {
    From,
    To,
    /// From, and only links whose target object is live.
    FromLiveTarget,
}

impl PgDirectoryTx {
    /// `columns` of the documents of `collection` among `keys`, one index probe per key (see `links_by`).
    async fn docs_with_keys(
        &mut self,
        columns: &str,
        collection: &str,
        keys: &[String],
    ) -> Result<Vec<sqlx::postgres::PgRow>, StoreError> {
        sqlx::query(trusted(format!(
            "SELECT found.* FROM UNNEST($3::text[]) AS wanted(doc_key) CROSS JOIN LATERAL \
             (SELECT {columns} FROM documents WHERE tenant_id = $1 AND collection = $2 \
             AND doc_key = wanted.doc_key OFFSET 0) AS found"
        )))
        .bind(&self.tenant_text)
        .bind(collection)
        .bind(keys)
        .fetch_all(&mut *self.tx)
        .await
        .map_err(unavailable)
    }

    /// The `kind` links with one of `ids` at `end`, as (from, to) pairs in no particular order. One index probe per
    /// id, whatever the planner believes about the table: a LATERAL subquery kept apart by OFFSET 0. Written as
    /// `to_id = ANY($3)`, a generic plan without statistics (autovacuum off, or a table that grew since its last
    /// ANALYZE) read every link of the tenant and filtered, once per page.
    async fn links_by(
        &mut self,
        kind: LinkKind,
        end: LinkEnd,
        ids_in: &[ObjectId],
    ) -> Result<Vec<(ObjectId, ObjectId)>, StoreError> {
        let keys: Vec<String> = ids_in.iter().map(ObjectId::to_string).collect();
        let (source, column) = match end {
            LinkEnd::From => ("links", "from_id"),
            LinkEnd::To => ("links", "to_id"),
            LinkEnd::FromLiveTarget => (
                "links JOIN objects AS target ON target.tenant_id = links.tenant_id AND target.id = links.to_id \
                 AND target.deleted_at IS NULL",
                "from_id",
            ),
        };
        let rows = sqlx::query(trusted(format!(
            "SELECT found.from_id, found.to_id FROM UNNEST($3::text[]) AS wanted(id) CROSS JOIN LATERAL \
             (SELECT links.from_id, links.to_id FROM {source} WHERE links.tenant_id = $1 AND links.kind = $2 \
              AND links.{column} = wanted.id OFFSET 0) AS found"
        )))
        .bind(&self.tenant_text)
        .bind(kind.as_str())
        .bind(keys)
        .fetch_all(&mut *self.tx)
        .await
        .map_err(unavailable)?;
        link_pairs(&rows)
    }
}

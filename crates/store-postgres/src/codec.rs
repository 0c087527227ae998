//! Conversions between PostgreSQL rows and store rows, and the one place driver errors become [`StoreError`]s.

use sqlx::Row;
use sqlx::postgres::PgRow;
use tenantsync_model::{ClientId, ObjectId, ObjectKind, TenantId};
use tenantsync_store::{
    ChangeOp, ChangeRow, CredentialRow, DocRow, LinkKind, LogRow, ObjectRow, StoreError, TenantRow,
};
use time::OffsetDateTime;

pub(crate) fn unavailable(err: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Unavailable(Box::new(err))
}

/// Unique indexes whose violation names a more precise `what` than the caller's, by constraint or index name
/// (the names the migrations give them).
const CONFLICT_CONSTRAINTS: &[(&str, &str)] = &[
    ("objects_anchor", "anchor"),
    ("objects_upn", "userPrincipalName"),
    ("objects_pkey", "id"),
    ("documents_pkey", "document"),
];

/// Unique violations become conflicts on what clashed (`what` unless [`CONFLICT_CONSTRAINTS`] knows better);
/// everything else means the database is unusable.
pub(crate) fn classify(err: sqlx::Error, what: &'static str) -> StoreError {
    let Some(db_err) = err.as_database_error() else {
        return unavailable(err);
    };
    if db_err.kind() != sqlx::error::ErrorKind::UniqueViolation {
        return unavailable(err);
    }
    let what = db_err
        .constraint()
        .and_then(|constraint| CONFLICT_CONSTRAINTS.iter().find(|(name, _)| *name == constraint))
        .map_or(what, |(_, precise)| precise);
    StoreError::Conflict { what }
}

fn corrupt(detail: impl Into<String>) -> StoreError {
    StoreError::Corrupt { detail: detail.into() }
}

pub(crate) fn micros(at: OffsetDateTime) -> i64 {
    (at.unix_timestamp_nanos() / 1_000) as i64
}

pub(crate) fn from_micros(value: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(value) * 1_000)
        .map_err(|_| corrupt(format!("timestamp {value} out of range")))
}

fn get<'r, T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>>(
    row: &'r PgRow,
    column: &str,
) -> Result<T, StoreError> {
    row.try_get(column).map_err(unavailable)
}

fn id_column<T: std::str::FromStr>(row: &PgRow, column: &str) -> Result<T, StoreError> {
    let text: String = get(row, column)?;
    text.parse().map_err(|_| corrupt(format!("bad id '{text}' in column {column}")))
}

/// A tenant id read from `column`.
pub(crate) fn tenant_id_from_row(row: &PgRow, column: &str) -> Result<TenantId, StoreError> {
    id_column::<TenantId>(row, column)
}

pub(crate) fn tenant_from_row(row: &PgRow, domains: Vec<String>) -> Result<TenantRow, StoreError> {
    Ok(TenantRow {
        id: id_column::<TenantId>(row, "id")?,
        name: get(row, "name")?,
        display_name: get(row, "display_name")?,
        initial_domain: get(row, "initial_domain")?,
        domains,
        created_at: from_micros(get(row, "created_at")?)?,
    })
}

pub(crate) fn credential_from_row(row: &PgRow) -> Result<CredentialRow, StoreError> {
    Ok(CredentialRow {
        client_id: id_column::<ClientId>(row, "client_id")?,
        tenant: id_column::<TenantId>(row, "tenant_id")?,
        display_name: get(row, "display_name")?,
        secret_hash: get(row, "secret_hash")?,
        roles: get(row, "roles")?,
        created_at: from_micros(get(row, "created_at")?)?,
        secret_updated_at: from_micros(get(row, "secret_updated_at")?)?,
        revoked_at: get::<Option<i64>>(row, "revoked_at")?.map(from_micros).transpose()?,
    })
}

pub(crate) fn object_from_row(row: &PgRow) -> Result<ObjectRow, StoreError> {
    let kind: String = get(row, "kind")?;
    Ok(ObjectRow {
        id: id_column::<ObjectId>(row, "id")?,
        kind: ObjectKind::parse(&kind).ok_or_else(|| corrupt(format!("unknown object kind '{kind}'")))?,
        upn: get(row, "upn")?,
        display_name: get(row, "display_name")?,
        data: get(row, "data")?,
        deleted_at: get::<Option<i64>>(row, "deleted_at")?.map(from_micros).transpose()?,
        anchor: get(row, "anchor")?,
    })
}

pub(crate) fn doc_from_row(row: &PgRow) -> Result<DocRow, StoreError> {
    Ok(DocRow {
        collection: get(row, "collection")?,
        key: get(row, "doc_key")?,
        data: get(row, "data")?,
        updated_at: from_micros(get(row, "updated_at")?)?,
    })
}

pub(crate) fn log_from_row(row: &PgRow) -> Result<LogRow, StoreError> {
    Ok(LogRow {
        seq: get(row, "seq")?,
        id: get(row, "id")?,
        job_id: get(row, "job_id")?,
        cycle_id: get(row, "cycle_id")?,
        at: from_micros(get(row, "at")?)?,
        action: get(row, "action")?,
        status: get(row, "status")?,
        source_id: get(row, "source_id")?,
        target_id: get(row, "target_id")?,
        data: get(row, "data")?,
        stored: None,
    })
}

pub(crate) fn link_kind_from(text: &str) -> Result<LinkKind, StoreError> {
    match text {
        "member" => Ok(LinkKind::Member),
        "manager" => Ok(LinkKind::Manager),
        other => Err(corrupt(format!("unknown link kind '{other}'"))),
    }
}

pub(crate) fn change_from_row(row: &PgRow) -> Result<ChangeRow, StoreError> {
    let kind: String = get(row, "kind")?;
    let op: String = get(row, "op")?;
    let related: Option<String> = get(row, "related")?;
    let link_kind: Option<String> = get(row, "link_kind")?;
    Ok(ChangeRow {
        seq: get(row, "seq")?,
        object_id: id_column::<ObjectId>(row, "object_id")?,
        kind: ObjectKind::parse(&kind).ok_or_else(|| corrupt(format!("unknown object kind '{kind}'")))?,
        op: ChangeOp::parse(&op).ok_or_else(|| corrupt(format!("unknown change op '{op}'")))?,
        related: related
            .map(|text| text.parse::<ObjectId>().map_err(|_| corrupt(format!("bad related id '{text}'"))))
            .transpose()?,
        link_kind: link_kind.as_deref().map(link_kind_from).transpose()?,
        at: from_micros(get(row, "at")?)?,
    })
}

/// Marks SQL text built with `format!` as safe. Only for text assembled from this crate's constants and fixed
/// column names: every value goes through `bind`.
pub(crate) fn trusted(sql: String) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(sql)
}

//! Conversions between SQLite rows and store rows, and the one place driver errors become [`StoreError`]s.

use rusqlite::Row;
use rusqlite::types::{FromSql, ValueRef};
use tenantsync_model::{ClientId, ObjectId, ObjectKind, TenantId};
use tenantsync_store::{
    ChangeOp, ChangeRow, CredentialRow, DocRow, LinkKind, LogRow, ObjectRow, StoreError, TenantRow,
};
use time::OffsetDateTime;

pub(crate) fn unavailable(err: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Unavailable(Box::new(err))
}

/// Unique indexes whose violation names a more precise `what` than the caller's, recognized by the columns SQLite
/// lists in its message ("UNIQUE constraint failed: objects.tenant_id, objects.anchor_key"): SQLite reports no
/// index name.
const CONFLICT_COLUMNS: &[(&str, &str)] = &[
    ("objects.anchor_key", "anchor"),
    ("objects.upn_key", "userPrincipalName"),
    ("objects.id", "id"),
    ("documents.doc_key", "document"),
];

/// Unique violations become conflicts on what clashed (`what` unless [`CONFLICT_COLUMNS`] knows better);
/// everything else means the database is unusable.
pub(crate) fn classify(err: rusqlite::Error, what: &'static str) -> StoreError {
    let rusqlite::Error::SqliteFailure(failure, message) = &err else {
        return unavailable(err);
    };
    let unique = [rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE, rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY];
    if !unique.contains(&failure.extended_code) {
        return unavailable(err);
    }
    let message = message.as_deref().unwrap_or_default();
    let what = CONFLICT_COLUMNS
        .iter()
        .find(|(column, _)| message.split([':', ',']).any(|part| part.trim() == *column))
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

/// The value of a row's column, by name or position.
pub(crate) fn get<T: FromSql>(row: &Row<'_>, column: impl rusqlite::RowIndex) -> Result<T, StoreError> {
    row.get(column).map_err(unavailable)
}

/// A column holding an id as text, parsed without copying it.
fn id_column<T: std::str::FromStr>(row: &Row<'_>, column: usize) -> Result<T, StoreError> {
    let text = row.get_ref(column).and_then(|value| Ok(value.as_str()?)).map_err(unavailable)?;
    text.parse().map_err(|_| {
        let name = row.as_ref().column_name(column).unwrap_or("?");
        corrupt(format!("bad id '{text}' in column {name}"))
    })
}

/// The position of a column the statement selects by name.
fn position(row: &Row<'_>, name: &str) -> Result<usize, StoreError> {
    row.as_ref().column_index(name).map_err(unavailable)
}

/// A tenant id read from `column`.
pub(crate) fn tenant_id_from_row(row: &Row<'_>, column: &str) -> Result<TenantId, StoreError> {
    id_column::<TenantId>(row, position(row, column)?)
}

pub(crate) fn tenant_from_row(row: &Row<'_>, domains: Vec<String>) -> Result<TenantRow, StoreError> {
    Ok(TenantRow {
        id: tenant_id_from_row(row, "id")?,
        name: get(row, "name")?,
        display_name: get(row, "display_name")?,
        initial_domain: get(row, "initial_domain")?,
        domains,
        created_at: from_micros(get(row, "created_at")?)?,
    })
}

pub(crate) fn credential_from_row(row: &Row<'_>) -> Result<CredentialRow, StoreError> {
    Ok(CredentialRow {
        client_id: id_column::<ClientId>(row, position(row, "client_id")?)?,
        tenant: tenant_id_from_row(row, "tenant_id")?,
        display_name: get(row, "display_name")?,
        secret_hash: get(row, "secret_hash")?,
        roles: get(row, "roles")?,
        created_at: from_micros(get(row, "created_at")?)?,
        secret_updated_at: from_micros(get(row, "secret_updated_at")?)?,
        revoked_at: get::<Option<i64>>(row, "revoked_at")?.map(from_micros).transpose()?,
    })
}

fn object_kind(row: &Row<'_>, column: usize) -> Result<ObjectKind, StoreError> {
    let kind = row.get_ref(column).and_then(|value| Ok(value.as_str()?)).map_err(unavailable)?;
    ObjectKind::parse(kind).ok_or_else(|| corrupt(format!("unknown object kind '{kind}'")))
}

/// An object from the columns `id, kind, upn, display_name, data, deleted_at, anchor`, in that order.
pub(crate) fn object_from_row(row: &Row<'_>) -> Result<ObjectRow, StoreError> {
    Ok(ObjectRow {
        id: id_column::<ObjectId>(row, 0)?,
        kind: object_kind(row, 1)?,
        upn: get(row, 2)?,
        display_name: get(row, 3)?,
        data: get(row, 4)?,
        deleted_at: get::<Option<i64>>(row, 5)?.map(from_micros).transpose()?,
        anchor: get(row, 6)?,
    })
}

/// A document from the columns `collection, doc_key, data, updated_at`, in that order, from position `at` on.
pub(crate) fn doc_from_row(row: &Row<'_>, at: usize) -> Result<DocRow, StoreError> {
    Ok(DocRow {
        collection: get(row, at)?,
        key: get(row, at + 1)?,
        data: get(row, at + 2)?,
        updated_at: from_micros(get(row, at + 3)?)?,
    })
}

/// A provisioning-log entry from the columns `seq, id, job_id, cycle_id, at, action, status, source_id,
/// target_id, data`, in that order.
pub(crate) fn log_from_row(row: &Row<'_>) -> Result<LogRow, StoreError> {
    // Entries are stored as BLOBs; those written before compression are JSON text.
    let data = match row.get_ref(9).map_err(unavailable)? {
        ValueRef::Blob(bytes) | ValueRef::Text(bytes) => bytes.to_vec(),
        other => return Err(corrupt(format!("provisioning log entry of type {:?}", other.data_type()))),
    };
    Ok(LogRow {
        seq: get(row, 0)?,
        id: get(row, 1)?,
        job_id: get(row, 2)?,
        cycle_id: get(row, 3)?,
        at: from_micros(get(row, 4)?)?,
        action: get(row, 5)?,
        status: get(row, 6)?,
        source_id: get(row, 7)?,
        target_id: get(row, 8)?,
        data: crate::log_data::decode(data)?,
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

/// A change-log entry from the columns `seq, object_id, kind, op, related, link_kind, at`, in that order.
pub(crate) fn change_from_row(row: &Row<'_>) -> Result<ChangeRow, StoreError> {
    let op: String = get(row, 3)?;
    let related: Option<String> = get(row, 4)?;
    let link_kind: Option<String> = get(row, 5)?;
    Ok(ChangeRow {
        seq: get(row, 0)?,
        object_id: id_column::<ObjectId>(row, 1)?,
        kind: object_kind(row, 2)?,
        op: ChangeOp::parse(&op).ok_or_else(|| corrupt(format!("unknown change op '{op}'")))?,
        related: related
            .map(|text| text.parse::<ObjectId>().map_err(|_| corrupt(format!("bad related id '{text}'"))))
            .transpose()?,
        link_kind: link_kind.as_deref().map(link_kind_from).transpose()?,
        at: from_micros(get(row, 6)?)?,
    })
}

/// An object id from `column` (a position).
pub(crate) fn object_id(row: &Row<'_>, column: usize) -> Result<ObjectId, StoreError> {
    id_column::<ObjectId>(row, column)
}

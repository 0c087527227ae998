//! Directory audit entries (Graph's `directoryAudit`): configuration changes in the tenant that makes them, and,
//! in a target tenant, every write that cross-tenant sync makes there, naming the source partner and the job.
//! They are documents whose key inverts the time, so listing the collection in key order gives newest first.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tenantsync_store::{DirectoryTx, DocRow, StoreError};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The collection of audit entries.
pub const AUDITS: &str = "directoryAudit";
/// How long entries are kept, as Entra's premium retention.
pub const RETENTION: time::Duration = time::Duration::days(30);

/// One audit entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    pub id: String,
    pub category: String,
    pub activity_display_name: String,
    pub operation_type: String,
    pub logged_by_service: String,
    pub result: String,
    #[serde(with = "time::serde::rfc3339")]
    pub activity_date_time: OffsetDateTime,
    /// Who acted: the app (client id) or the sync job.
    pub initiated_by: String,
    pub target_id: String,
    pub target_display_name: Option<String>,
    pub target_type: String,
    #[serde(default)]
    pub additional_details: Vec<(String, String)>,
}

impl AuditEntry {
    /// A new entry at `at`: `activity` on the object `target_type`/`target_id`, done by `initiated_by`.
    pub fn new(
        at: OffsetDateTime,
        activity: &str,
        operation: &str,
        initiated_by: &str,
        target: (&str, &str),
    ) -> AuditEntry {
        AuditEntry {
            // Configuration changes and inbound writes are not replayed: the process's random source is enough.
            id: crate::ids::IdSource::new_id(&crate::ids::RANDOM).to_string(),
            category: "ProvisioningManagement".to_owned(),
            activity_display_name: activity.to_owned(),
            operation_type: operation.to_owned(),
            logged_by_service: "Account Provisioning".to_owned(),
            result: "success".to_owned(),
            activity_date_time: at,
            initiated_by: initiated_by.to_owned(),
            target_id: target.1.to_owned(),
            target_display_name: None,
            target_type: target.0.to_owned(),
            additional_details: Vec::new(),
        }
    }

    /// Sets the category and the service that logged the entry.
    pub fn logged_as(mut self, category: &str, service: &str) -> AuditEntry {
        self.category = category.to_owned();
        self.logged_by_service = service.to_owned();
        self
    }

    pub fn detail(mut self, key: &str, value: impl Into<String>) -> AuditEntry {
        self.additional_details.push((key.to_owned(), value.into()));
        self
    }

    pub fn named(mut self, display_name: Option<String>) -> AuditEntry {
        self.target_display_name = display_name;
        self
    }

    /// Graph's JSON.
    pub fn to_graph(&self) -> Value {
        json!({
            "id": self.id,
            "category": self.category,
            "correlationId": self.id,
            "result": self.result,
            "resultReason": "",
            "activityDisplayName": self.activity_display_name,
            "activityDateTime": self.activity_date_time.format(&Rfc3339).ok(),
            "loggedByService": self.logged_by_service,
            "operationType": self.operation_type,
            "initiatedBy": {"app": {"appId": self.initiated_by, "displayName": self.initiated_by, "servicePrincipalId": null}, "user": null},
            "targetResources": [{"id": self.target_id, "displayName": self.target_display_name, "type": self.target_type, "modifiedProperties": []}],
            "additionalDetails": self.additional_details.iter().map(|(key, value)| json!({"key": key, "value": value})).collect::<Vec<_>>(),
        })
    }
}

/// The key of an entry: newest first in key order, unique.
pub(crate) fn key_of(at: OffsetDateTime, id: &str) -> String {
    let micros = (at.unix_timestamp_nanos() / 1_000).max(0) as u64;
    format!("{:020}-{id}", u64::MAX - micros)
}

/// Appends an entry inside `tx`.
pub async fn record(tx: &mut dyn DirectoryTx, entry: &AuditEntry) -> Result<(), StoreError> {
    tx.put_doc(&doc_of(entry)).await
}

/// An entry as the document it is stored as (for a caller writing it in its own transaction).
pub fn doc_of(entry: &AuditEntry) -> DocRow {
    DocRow {
        collection: AUDITS.to_owned(),
        key: key_of(entry.activity_date_time, &entry.id),
        data: tenantsync_model::json::to_string(entry).expect("audit entries always serialize"),
        updated_at: entry.activity_date_time,
    }
}

/// Records many entries in a few statements.
pub async fn record_many(tx: &mut dyn DirectoryTx, entries: &[AuditEntry]) -> Result<(), StoreError> {
    let docs: Vec<DocRow> = entries.iter().map(doc_of).collect();
    tx.put_docs(&docs).await
}

/// Up to `limit` entries, newest first, after the entry keyed `after`; with each entry's key for paging.
pub async fn list(
    tx: &mut dyn DirectoryTx,
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<(String, AuditEntry)>, StoreError> {
    let docs = tx.list_docs(AUDITS, after, limit).await?;
    Ok(docs.into_iter().filter_map(|doc| serde_json::from_str(&doc.data).ok().map(|entry| (doc.key, entry))).collect())
}

/// Deletes entries older than `before`; returns how many went.
pub async fn prune(tx: &mut dyn DirectoryTx, before: OffsetDateTime) -> Result<u64, StoreError> {
    // Older entries have larger keys: everything after the cutoff's key is older.
    let cutoff = key_of(before, "");
    let mut n_deleted = 0;
    loop {
        let docs = tx.list_docs(AUDITS, Some(&cutoff), 500).await?;
        if docs.is_empty() {
            return Ok(n_deleted);
        }
        for doc in docs {
            tx.delete_doc(AUDITS, &doc.key).await?;
            n_deleted += 1;
        }
    }
}

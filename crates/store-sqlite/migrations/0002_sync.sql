-- What the sync engine stores: source anchors on objects, per-tenant JSON documents, provisioning logs.
-- Times are microseconds since the Unix epoch.

-- The anchor as written, and its lowercase form (computed by the store, like upn_key) for lookups and uniqueness.
ALTER TABLE objects ADD COLUMN anchor TEXT;
ALTER TABLE objects ADD COLUMN anchor_key TEXT;
-- The conflict classifier recognizes this index by its column name, objects.anchor_key.
CREATE UNIQUE INDEX objects_anchor ON objects (tenant_id, anchor_key) WHERE anchor_key IS NOT NULL;

-- The newest provisioning-log sequence number. A counter rather than MAX(seq) + 1, so that numbers are never
-- reused after pruning deletes the newest entries.
ALTER TABLE tenants ADD COLUMN last_log_seq INTEGER NOT NULL DEFAULT 0;

CREATE TABLE documents (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    collection TEXT NOT NULL,
    doc_key TEXT NOT NULL,
    data TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, collection, doc_key)
);
CREATE INDEX documents_by_collection ON documents (collection, tenant_id, doc_key);

CREATE TABLE provisioning_logs (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    seq INTEGER NOT NULL,
    id TEXT NOT NULL,
    job_id TEXT NOT NULL,
    cycle_id TEXT NOT NULL,
    at INTEGER NOT NULL,
    action TEXT NOT NULL,
    status TEXT NOT NULL,
    source_id TEXT,
    target_id TEXT,
    data TEXT NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);
CREATE INDEX provisioning_logs_by_job ON provisioning_logs (tenant_id, job_id, seq);
-- The object filters; seq last, so that one object's entries come out newest first without a sort.
CREATE INDEX provisioning_logs_by_source ON provisioning_logs (tenant_id, source_id, seq);
CREATE INDEX provisioning_logs_by_target ON provisioning_logs (tenant_id, target_id, seq);
-- For retention (prune_logs) and the since/until filters.
CREATE INDEX provisioning_logs_by_time ON provisioning_logs (tenant_id, at);

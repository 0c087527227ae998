-- Fewer B-trees per write (issue 14): a synced user paid 22 B-tree inserts on SQLite, three of them copies kept
-- for reads that another index or the primary key already serves.
--
-- `documents_by_collection` repeated every document's key in another order for one read, the documents of one
-- collection across all tenants (jobs and secrets, read at start-up): that read now walks the tenants and probes
-- the primary key (tenant_id, collection, doc_key) for each, so connection and audit documents no longer pay for it.
DROP INDEX documents_by_collection;

-- `objects_by_upn` (tenant_id, kind, upn_key, id) duplicated `objects_upn` (tenant_id, upn_key): only users have a
-- userPrincipalName, every key in it is unique, and a lookup or range on upn_key implies the partial index's
-- condition.
DROP INDEX objects_by_upn;

-- The change log keyed by its primary key alone: as a rowid table with a composite primary key each entry was
-- written twice (the row, and the primary key's index).
CREATE TABLE changes_v22 (
    tenant_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    object_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    op TEXT NOT NULL,
    related TEXT,
    link_kind TEXT,
    at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, seq)
) WITHOUT ROWID;
INSERT INTO changes_v22 (tenant_id, seq, object_id, kind, op, related, link_kind, at)
    SELECT tenant_id, seq, object_id, kind, op, related, link_kind, at FROM changes;
DROP TABLE changes;
ALTER TABLE changes_v22 RENAME TO changes;

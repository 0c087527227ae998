-- Fewer indexes per write (issue 14), as on SQLite.
--
-- `documents_by_collection` repeated every document's key in another order for one read, the documents of one
-- collection across all tenants (jobs and secrets, read at start-up): that read now walks the tenants and probes
-- the primary key (tenant_id, collection, doc_key) for each, so connection and audit documents no longer pay for it.
DROP INDEX documents_by_collection;

-- `objects_by_upn` (tenant_id, kind, upn_key, id) duplicated `objects_upn` (tenant_id, upn_key): only users have a
-- userPrincipalName, every key in it is unique, and a lookup or range on upn_key implies the partial index's
-- condition.
DROP INDEX objects_by_upn;

-- SCIM externalId lookups (issue 14): `externalId eq` and `sw` filters are index range scans instead of scans of
-- the tenant. externalId is case-exact, so the index holds the value as written. Only users that have one are
-- indexed, so users written by sync (which have none) cost nothing more on insert.
CREATE INDEX objects_by_scim_external_id
    ON objects (tenant_id, json_extract(data, '$.scimExternalId'))
    WHERE kind = 'user' AND json_extract(data, '$.scimExternalId') IS NOT NULL;

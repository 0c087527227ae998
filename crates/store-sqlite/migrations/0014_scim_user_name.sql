-- SCIM userName lookups (issue 14): a user's SCIM userName is what a SCIM client wrote (`scimUserName` in the
-- object's JSON) or else its userPrincipalName. Indexed by expression so `userName eq` filters and the uniqueness
-- check on create are point lookups instead of scans of the tenant. SQLite's lower() folds ASCII only, as the
-- uniqueness rule does (userName compares ignoring ASCII case).
CREATE INDEX objects_by_scim_user_name
    ON objects (tenant_id, lower(coalesce(json_extract(data, '$.scimUserName'), upn)))
    WHERE kind = 'user';

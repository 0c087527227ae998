-- A user's SCIM userName and externalId in columns of their own (issue 14): the indexes of migrations 0014 and
-- 0020 read them out of the object's JSON, so every insert and update of a user parsed its whole document for
-- them. The store now writes the columns from the same JSON (`ObjectRow::scim_columns`) and indexes those; the
-- keys compare as before (the userName, else the userPrincipalName, lowercased; the externalId as written).
ALTER TABLE objects ADD COLUMN scim_user_name TEXT;
ALTER TABLE objects ADD COLUMN scim_external_id TEXT;
UPDATE objects
SET scim_user_name = json_extract(data, '$.scimUserName'),
    scim_external_id = json_extract(data, '$.scimExternalId')
WHERE kind = 'user' AND (json_extract(data, '$.scimUserName') IS NOT NULL
    OR json_extract(data, '$.scimExternalId') IS NOT NULL);
DROP INDEX objects_by_scim_user_name;
DROP INDEX objects_by_scim_external_id;
CREATE INDEX objects_by_scim_user_name ON objects (tenant_id, lower(coalesce(scim_user_name, upn))) WHERE kind = 'user';
CREATE INDEX objects_by_scim_external_id ON objects (tenant_id, scim_external_id)
    WHERE kind = 'user' AND scim_external_id IS NOT NULL;

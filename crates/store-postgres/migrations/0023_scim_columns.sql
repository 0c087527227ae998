-- A user's SCIM userName and externalId in columns of their own (issue 14): the indexes of migration 0020 read
-- them out of the object's JSON, so every insert and update of a user parsed its whole document as jsonb once per
-- index. The store now writes the columns from the same JSON (`ObjectRow::scim_columns`) and indexes those; the
-- keys compare as before (the userName, else the userPrincipalName, lowercased, bytewise; the externalId as written).
ALTER TABLE objects ADD COLUMN scim_user_name TEXT, ADD COLUMN scim_external_id TEXT;
UPDATE objects
SET scim_user_name = (data::jsonb) ->> 'scimUserName',
    scim_external_id = (data::jsonb) ->> 'scimExternalId'
WHERE kind = 'user' AND ((data::jsonb) ? 'scimUserName' OR (data::jsonb) ? 'scimExternalId');
DROP INDEX objects_by_scim_user_name_c;
DROP INDEX objects_by_scim_external_id;
CREATE INDEX objects_by_scim_user_name_c
    ON objects (tenant_id, (lower(coalesce(scim_user_name, upn)) COLLATE "C"))
    WHERE kind = 'user';
CREATE INDEX objects_by_scim_external_id
    ON objects (tenant_id, (scim_external_id COLLATE "C"))
    WHERE kind = 'user' AND (scim_external_id COLLATE "C") IS NOT NULL;

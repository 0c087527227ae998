-- SCIM externalId lookups and userName ranges (issue 14). externalId is case-exact, so the index holds the value as
-- written; only users that have one are indexed, so users written by sync (which have none) cost nothing more on
-- insert. The userName index of migration 0014 uses the database's collation; `sw` ranges and sorting by userName
-- compare bytewise (as SQLite does), which needs the "C" collation in the index; equality under "C" is the same
-- as under the database's (deterministic) collation, so the new index replaces the old one for `eq` too.
DROP INDEX IF EXISTS objects_by_scim_user_name;
CREATE INDEX objects_by_scim_external_id
    ON objects (tenant_id, (((data::jsonb) ->> 'scimExternalId') COLLATE "C"))
    WHERE kind = 'user' AND (((data::jsonb) ->> 'scimExternalId') COLLATE "C") IS NOT NULL;
CREATE INDEX objects_by_scim_user_name_c
    ON objects (tenant_id, (lower(coalesce((data::jsonb) ->> 'scimUserName', upn)) COLLATE "C"))
    WHERE kind = 'user';

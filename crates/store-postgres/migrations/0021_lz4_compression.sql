-- Large JSON values (a provisioning-log entry is about 4.4 KB; documents and stored objects can pass the 2 KB
-- TOAST threshold too) are compressed with lz4 where the server was built with it: pglz, the default, was the
-- largest single item of PostgreSQL's CPU during a bulk sync (issue 14). It applies to values written from now on;
-- values already stored keep their compression and read as before. A server without lz4 keeps pglz.
DO $$
BEGIN
    IF EXISTS (
        SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals)
    ) THEN
        ALTER TABLE provisioning_logs ALTER COLUMN data SET COMPRESSION lz4;
        ALTER TABLE documents ALTER COLUMN data SET COMPRESSION lz4;
        ALTER TABLE objects ALTER COLUMN data SET COMPRESSION lz4;
    END IF;
END
$$;

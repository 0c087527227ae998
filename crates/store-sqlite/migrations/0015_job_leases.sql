-- Job leases (issue 15, scale-out). The embedded default is one process per file (the binary refuses a second one
-- that runs jobs), so these rows matter only to the conformance suite and to tools; the schema matches PostgreSQL's.
-- Numbered after the issue so that migrations written in parallel on other branches keep distinct versions.

CREATE TABLE job_leases (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    job_id TEXT NOT NULL,
    holder TEXT,
    token INTEGER NOT NULL DEFAULT 0,
    expires_at INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, job_id)
);
CREATE INDEX job_leases_by_holder ON job_leases (holder);

CREATE TABLE lease_holders (
    holder TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
);

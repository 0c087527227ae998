-- Job leases (issue 15, scale-out): each sync job is run by exactly one process at a time. Numbered after the
-- issue, not the previous file, so that migrations written in parallel on other branches keep distinct versions.
-- Times are microseconds since the Unix epoch.

-- One row per job, created on its first claim. `token` is the fencing token: bumped by every claim, never by a
-- renewal. A free lease has no holder and expires_at 0.
CREATE TABLE job_leases (
    tenant_id TEXT COLLATE "C" NOT NULL REFERENCES tenants (id),
    job_id TEXT COLLATE "C" NOT NULL,
    holder TEXT,
    token BIGINT NOT NULL DEFAULT 0,
    expires_at BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, job_id)
);
CREATE INDEX job_leases_by_holder ON job_leases (holder);

-- The processes that run jobs, with the time their heartbeat expires: each takes its share of the jobs.
CREATE TABLE lease_holders (
    holder TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);

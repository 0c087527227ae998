-- Tenants, credentials and directory objects. Times are microseconds since the Unix epoch.
CREATE TABLE tenants (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    initial_domain TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    -- The newest change-log sequence number; bumping it serializes the tenant's writers.
    last_seq INTEGER NOT NULL DEFAULT 0,
    -- Changes at or below this sequence number were pruned.
    change_horizon INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE tenant_domains (
    domain TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    position INTEGER NOT NULL
);
CREATE INDEX tenant_domains_by_tenant ON tenant_domains (tenant_id);

CREATE TABLE credentials (
    client_id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    display_name TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    roles TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    secret_updated_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX credentials_by_tenant ON credentials (tenant_id);

CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE objects (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    kind TEXT NOT NULL,
    upn TEXT,
    upn_key TEXT,
    display_name TEXT,
    name_key TEXT NOT NULL,
    data TEXT NOT NULL,
    deleted_at INTEGER
);
CREATE UNIQUE INDEX objects_upn ON objects (tenant_id, upn_key) WHERE upn_key IS NOT NULL;
CREATE INDEX objects_by_id ON objects (tenant_id, kind, id);
CREATE INDEX objects_by_name ON objects (tenant_id, kind, name_key, id);
CREATE INDEX objects_by_upn ON objects (tenant_id, kind, upn_key, id);
CREATE INDEX objects_deleted ON objects (tenant_id, deleted_at) WHERE deleted_at IS NOT NULL;

CREATE TABLE links (
    tenant_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    from_id TEXT NOT NULL,
    to_id TEXT NOT NULL,
    PRIMARY KEY (tenant_id, kind, from_id, to_id)
);
CREATE INDEX links_by_target ON links (tenant_id, kind, to_id);

CREATE TABLE changes (
    tenant_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    object_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    op TEXT NOT NULL,
    related TEXT,
    link_kind TEXT,
    at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);

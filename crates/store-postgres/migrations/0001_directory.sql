-- Tenants, credentials and directory objects. Times are microseconds since the Unix epoch.
-- Ids, keys and sorted names use the "C" collation: bytewise order, the same as SQLite's, which paging relies on.
CREATE TABLE tenants (
    id TEXT COLLATE "C" PRIMARY KEY,
    name TEXT COLLATE "C" NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    initial_domain TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    -- The newest change-log sequence number; bumping it (a row lock) serializes the tenant's writers.
    last_seq BIGINT NOT NULL DEFAULT 0,
    -- Changes at or below this sequence number were pruned.
    change_horizon BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE tenant_domains (
    domain TEXT COLLATE "C" PRIMARY KEY,
    tenant_id TEXT COLLATE "C" NOT NULL REFERENCES tenants (id),
    position BIGINT NOT NULL
);
CREATE INDEX tenant_domains_by_tenant ON tenant_domains (tenant_id);

CREATE TABLE credentials (
    client_id TEXT COLLATE "C" PRIMARY KEY,
    tenant_id TEXT COLLATE "C" NOT NULL REFERENCES tenants (id),
    display_name TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    roles TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    secret_updated_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX credentials_by_tenant ON credentials (tenant_id);

CREATE TABLE settings (
    key TEXT COLLATE "C" PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE objects (
    id TEXT COLLATE "C" PRIMARY KEY,
    tenant_id TEXT COLLATE "C" NOT NULL REFERENCES tenants (id),
    kind TEXT COLLATE "C" NOT NULL,
    upn TEXT,
    upn_key TEXT COLLATE "C",
    display_name TEXT,
    name_key TEXT COLLATE "C" NOT NULL,
    data TEXT NOT NULL,
    deleted_at BIGINT
);
CREATE UNIQUE INDEX objects_upn ON objects (tenant_id, upn_key) WHERE upn_key IS NOT NULL;
CREATE INDEX objects_by_id ON objects (tenant_id, kind, id);
CREATE INDEX objects_by_name ON objects (tenant_id, kind, name_key, id);
CREATE INDEX objects_by_upn ON objects (tenant_id, kind, upn_key, id);
CREATE INDEX objects_deleted ON objects (tenant_id, deleted_at) WHERE deleted_at IS NOT NULL;

CREATE TABLE links (
    tenant_id TEXT COLLATE "C" NOT NULL,
    kind TEXT COLLATE "C" NOT NULL,
    from_id TEXT COLLATE "C" NOT NULL,
    to_id TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (tenant_id, kind, from_id, to_id)
);
CREATE INDEX links_by_target ON links (tenant_id, kind, to_id);

CREATE TABLE changes (
    tenant_id TEXT COLLATE "C" NOT NULL,
    seq BIGINT NOT NULL,
    object_id TEXT COLLATE "C" NOT NULL,
    kind TEXT COLLATE "C" NOT NULL,
    op TEXT NOT NULL,
    related TEXT COLLATE "C",
    link_kind TEXT,
    at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);

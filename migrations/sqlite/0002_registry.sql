-- The creators' registry (issue 5): entries, the change log nodes follow, claims, feeds.
CREATE TABLE IF NOT EXISTS registry_entries (
    id TEXT PRIMARY KEY,
    creator TEXT NOT NULL,
    contact TEXT NOT NULL,
    url TEXT,
    domain TEXT,
    host TEXT NOT NULL,
    include_subdomains BIGINT NOT NULL,
    paths TEXT NOT NULL,
    purposes TEXT NOT NULL,
    source TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS registry_entries_host ON registry_entries (host);
CREATE INDEX IF NOT EXISTS registry_entries_source ON registry_entries (source);
-- Every write to registry_entries appends the ids it touched; nodes replay the log in seq order.
CREATE TABLE IF NOT EXISTS registry_changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    entry_id TEXT NOT NULL,
    changed_ms BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS registry_meta (
    key TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS registry_claims (
    id TEXT PRIMARY KEY,
    domain TEXT NOT NULL,
    contact TEXT NOT NULL,
    token TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL,
    verified_ms BIGINT,
    verified_by TEXT,
    api_key_sha256 TEXT UNIQUE
);
CREATE TABLE IF NOT EXISTS registry_feeds (
    url TEXT PRIMARY KEY,
    etag TEXT,
    checked_ms BIGINT NOT NULL,
    succeeded_ms BIGINT,
    entries BIGINT NOT NULL,
    error TEXT
);

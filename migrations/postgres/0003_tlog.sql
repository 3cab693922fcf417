-- The transparency log (src/tlog). Records wait in tlog_pending (written in the same
-- transaction as their audit row) until the sequencer appends them to the tree.
CREATE TABLE IF NOT EXISTS tlog_pending (
    id BIGSERIAL PRIMARY KEY,
    request_id TEXT NOT NULL,
    host TEXT NOT NULL,
    salt TEXT NOT NULL,
    record_sha256 TEXT NOT NULL
);
-- One row per leaf: which audit record it holds and the chain to the host's previous leaf.
CREATE TABLE IF NOT EXISTS tlog_leaves (
    leaf_index BIGINT PRIMARY KEY,
    request_id TEXT NOT NULL UNIQUE,
    host TEXT NOT NULL,
    salt TEXT NOT NULL,
    prev_leaf BIGINT
);
CREATE INDEX IF NOT EXISTS tlog_leaves_host ON tlog_leaves (host, leaf_index);
-- The latest leaf of each host (the head of its chain).
CREATE TABLE IF NOT EXISTS tlog_host_heads (
    host TEXT PRIMARY KEY,
    last_leaf BIGINT NOT NULL
);
-- Every stored hash of the tree, by its stored-hash index (golang.org/x/mod/sumdb/tlog layout).
CREATE TABLE IF NOT EXISTS tlog_hashes (
    idx BIGINT PRIMARY KEY,
    hash BYTEA NOT NULL
);
-- The tree head and its signed checkpoint; exactly one row.
CREATE TABLE IF NOT EXISTS tlog_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    origin TEXT NOT NULL,
    verifier_key TEXT NOT NULL,
    size BIGINT NOT NULL,
    root TEXT NOT NULL,
    checkpoint TEXT NOT NULL,
    updated_ms BIGINT NOT NULL
);

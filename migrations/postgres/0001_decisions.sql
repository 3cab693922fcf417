-- The audit log: one row per decision (DESIGN §5 "Audit record").
CREATE TABLE IF NOT EXISTS decisions (
    seq BIGSERIAL PRIMARY KEY,
    request_id TEXT NOT NULL UNIQUE,
    time_ms BIGINT NOT NULL,
    node TEXT NOT NULL,
    crawler TEXT NOT NULL,
    purposes TEXT NOT NULL,
    method TEXT NOT NULL,
    url TEXT NOT NULL,
    host TEXT NOT NULL,
    verdict TEXT NOT NULL,
    decision TEXT NOT NULL,
    stage TEXT NOT NULL,
    mode TEXT NOT NULL,
    status BIGINT NOT NULL,
    bytes BIGINT,
    duration_ms DOUBLE PRECISION NOT NULL,
    sources TEXT NOT NULL,
    reasons TEXT NOT NULL,
    notes TEXT NOT NULL,
    evidence TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS decisions_time ON decisions (time_ms);
CREATE INDEX IF NOT EXISTS decisions_decision_seq ON decisions (decision, seq);
CREATE INDEX IF NOT EXISTS decisions_host_seq ON decisions (host, seq);
CREATE INDEX IF NOT EXISTS decisions_crawler_seq ON decisions (crawler, seq);

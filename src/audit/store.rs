//! The audit store: the `decisions` table of the shared [`Database`].
//!
//! Placeholders are written `$1, $2, …` in ascending order of first use, which PostgreSQL reads
//! positionally and SQLite as named parameters numbered in order of appearance.

use std::fmt::Write as _;
use std::str::FromStr;

use serde::Serialize;
use sqlx::any::AnyRow;
// Dynamic SQL here is assembled only from constants and `$N` placeholders; values are bound.
use sqlx::{AnyPool, AssertSqlSafe, Row};

use super::{AuditRecord, EvidenceHash};
use crate::decide::Source;
pub use crate::storage::StoreError;
use crate::storage::{Backend, Database, escape_like, from_json, placeholders, to_json};
use crate::tlog::store::PendingEntry;

/// The audit log's table in the shared database.
#[derive(Debug, Clone)]
pub struct AuditStore {
    pool: AnyPool,
    backend: Backend,
    /// Queue every record for the transparency log in the same transaction.
    transparency: bool,
}

/// Which decisions to list; every field optional.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct Filter {
    /// `allow`, `block` or `would-block`.
    pub verdict: Option<String>,
    pub crawler: Option<String>,
    pub host: Option<String>,
    /// A reason source that disallowed, e.g. `robots`.
    pub source: Option<String>,
    /// Milliseconds since the epoch, inclusive.
    pub since: Option<i64>,
    /// Milliseconds since the epoch, exclusive.
    pub until: Option<i64>,
    /// URL substring.
    pub q: Option<String>,
    pub limit: Option<u32>,
    /// Opaque cursor from a previous page (records older than it).
    pub cursor: Option<String>,
}

/// One page of records, newest first.
#[derive(Debug, Clone, Serialize)]
pub struct Page {
    pub items: Vec<AuditRecord>,
    pub next_cursor: Option<String>,
}

/// Counts for the dashboard and `/api/stats`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    pub total: i64,
    pub by_verdict: Vec<(String, i64)>,
    pub by_source: Vec<(String, i64)>,
    pub by_host: Vec<(String, i64)>,
    pub by_crawler: Vec<(String, i64)>,
    /// Blocked decisions per time bucket: (bucket start ms, count).
    pub blocks_over_time: Vec<(i64, i64)>,
    /// The same per disallowing source: (source, [(bucket start ms, count)]).
    pub blocks_over_time_by_source: Vec<(String, Vec<(i64, i64)>)>,
    pub bucket_ms: i64,
}

const DEFAULT_LIMIT: u32 = 100;
/// Groups in the top lists of `/api/stats` (hosts, crawlers, verdicts).
const TOP_GROUPS: u32 = 20;
/// Time buckets one series may hold.
const MAX_BUCKETS: u32 = 2000;
const MAX_LIMIT: u32 = 1000;

impl AuditStore {
    /// Opens (creating and migrating if needed) the database at `url`.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        Ok(Self::new(&Database::open(url).await?))
    }

    /// The audit table of an open database.
    pub fn new(db: &Database) -> Self {
        Self { pool: db.pool.clone(), backend: db.backend, transparency: false }
    }

    /// The same store, queueing each record for the transparency log as it is written.
    pub fn with_transparency(mut self, on: bool) -> Self {
        self.transparency = on;
        self
    }

    /// Whether the store answers (for `/readyz`).
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    /// Commits a write that changes nothing, to learn whether the store can commit at all (a
    /// full disk still answers reads). SQLite rewrites its header's `user_version` with the
    /// value it has; PostgreSQL commits a transaction that takes a transaction id.
    pub async fn probe_write(&self) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        match self.backend {
            Backend::Sqlite => {
                let version: i64 = sqlx::query_scalar("PRAGMA user_version").fetch_one(&mut *tx).await?;
                sqlx::query(AssertSqlSafe(format!("PRAGMA user_version = {version}"))).execute(&mut *tx).await?;
            }
            Backend::Postgres => {
                sqlx::query("SELECT pg_current_xact_id()").execute(&mut *tx).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Appends records in one transaction (the writer's group commit).
    pub async fn insert_batch(&self, records: &[AuditRecord]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        // Multi-row statements: one round trip to the database per chunk, not per record.
        for chunk in records.chunks(ROWS_PER_STATEMENT) {
            let sql = insert_statement(chunk.len(), self.backend);
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for record in chunk {
                query = bind_record(query, record);
            }
            query.execute(&mut *tx).await?;
        }
        if self.transparency {
            let pending: Vec<PendingEntry> = records.iter().map(PendingEntry::new).collect();
            crate::tlog::store::insert_pending(&mut tx, &pending, self.backend).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// One record by request id.
    pub async fn get(&self, request_id: &str) -> Result<Option<AuditRecord>, StoreError> {
        let row = sqlx::query(AssertSqlSafe(format!("SELECT {COLUMNS} FROM decisions WHERE request_id = $1")))
            .bind(request_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| record_from_row(&row)).transpose()
    }

    /// Records matching `filter`, newest first, one page at a time.
    pub async fn list(&self, filter: &Filter) -> Result<Page, StoreError> {
        let limit = filter.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
        let mut conditions = Conditions::default();
        conditions.add_filter(filter);
        if let Some(cursor) = filter.cursor.as_deref().and_then(|c| i64::from_str(c).ok()) {
            conditions.push("seq < {}", Bind::Int(cursor));
        }
        let sql = format!(
            "SELECT seq, {COLUMNS} FROM decisions{} ORDER BY seq DESC LIMIT {}",
            conditions.where_clause(),
            limit + 1
        );
        let rows = conditions.bind_all(sqlx::query(AssertSqlSafe(sql))).fetch_all(&self.pool).await?;
        let mut items = Vec::with_capacity(rows.len());
        let mut last_seq = None;
        for row in rows.iter().take(limit as usize) {
            last_seq = Some(row.try_get::<i64, _>("seq")?);
            items.push(record_from_row(row)?);
        }
        let next_cursor = (rows.len() > limit as usize).then(|| last_seq.map(|s| s.to_string())).flatten();
        Ok(Page { items, next_cursor })
    }

    /// Counts by verdict, blocking source, host and crawler, and blocks over time.
    pub async fn stats(&self, filter: &Filter, bucket_ms: i64) -> Result<Stats, StoreError> {
        let bucket_ms = bucket_ms.max(1000);
        let mut stats = Stats { bucket_ms, ..Stats::default() };
        stats.total = self.count(filter).await?;
        stats.by_verdict = self.count_by(filter, "decision", None, TOP_GROUPS).await?;
        stats.by_host = self.count_by(filter, "host", Some("block"), TOP_GROUPS).await?;
        stats.by_crawler = self.count_by(filter, "crawler", Some("block"), TOP_GROUPS).await?;
        for source in Source::ALL.map(Source::as_str) {
            let mut per_source = filter.clone();
            per_source.source = Some(source.to_string());
            let count = self.count(&per_source).await?;
            if count > 0 {
                stats.by_source.push((source.to_string(), count));
            }
        }
        let mut blocks = filter.clone();
        blocks.verdict = Some("block".into());
        stats.blocks_over_time = self.over_time(&blocks, bucket_ms).await?;
        for (source, _) in &stats.by_source {
            let mut per_source = blocks.clone();
            per_source.source = Some(source.clone());
            let series = self.over_time(&per_source, bucket_ms).await?;
            if !series.is_empty() {
                stats.blocks_over_time_by_source.push((source.clone(), series));
            }
        }
        Ok(stats)
    }

    /// Records matching `filter` per time bucket, oldest first.
    async fn over_time(&self, filter: &Filter, bucket_ms: i64) -> Result<Vec<(i64, i64)>, StoreError> {
        let bucket = format!("(time_ms / {bucket_ms}) * {bucket_ms}");
        let mut series: Vec<(i64, i64)> = self
            .count_by(filter, &bucket, None, MAX_BUCKETS)
            .await?
            .into_iter()
            .filter_map(|(k, n)| Some((k.parse().ok()?, n)))
            .collect();
        series.sort();
        Ok(series)
    }

    /// How many records match `filter`.
    async fn count(&self, filter: &Filter) -> Result<i64, StoreError> {
        let mut conditions = Conditions::default();
        conditions.add_filter(filter);
        let sql = format!("SELECT COUNT(*) AS n FROM decisions{}", conditions.where_clause());
        let row = conditions.bind_all(sqlx::query(AssertSqlSafe(sql))).fetch_one(&self.pool).await?;
        Ok(row.try_get::<i64, _>("n")?)
    }

    /// `SELECT key, COUNT(*) … GROUP BY key`, largest first, at most `groups` groups.
    async fn count_by(
        &self,
        filter: &Filter,
        key: &str,
        only: Option<&str>,
        groups: u32,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let mut filter = filter.clone();
        if let Some(verdict) = only {
            filter.verdict = Some(verdict.into());
        }
        let mut conditions = Conditions::default();
        conditions.add_filter(&filter);
        let sql = format!(
            "SELECT CAST({key} AS TEXT) AS k, COUNT(*) AS n FROM decisions{} GROUP BY {key} ORDER BY n DESC LIMIT {groups}",
            conditions.where_clause()
        );
        let rows = conditions.bind_all(sqlx::query(AssertSqlSafe(sql))).fetch_all(&self.pool).await?;
        rows.iter().map(|row| Ok((row.try_get::<String, _>("k")?, row.try_get::<i64, _>("n")?))).collect()
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Records per INSERT statement: 19 parameters each stays well under SQLite's 32,766 and
/// PostgreSQL's 65,535 bound parameters.
const ROWS_PER_STATEMENT: usize = 256;
const INSERT_COLUMNS: usize = 19;

/// `INSERT … VALUES ($1, …, $19), ($20, …)` for `rows` records. SQLite gets plain `?`
/// placeholders: it resolves `$N` names one by one, which is quadratic in a long statement.
fn insert_statement(rows: usize, backend: Backend) -> String {
    let mut sql = String::from(
        "INSERT INTO decisions (request_id, time_ms, node, crawler, purposes, method, url, host, verdict, decision, \
         stage, mode, status, bytes, duration_ms, sources, reasons, notes, evidence) VALUES ",
    );
    for row in 0..rows {
        let _ = write!(
            sql,
            "{}({})",
            if row == 0 { "" } else { ", " },
            placeholders(INSERT_COLUMNS, row * INSERT_COLUMNS + 1, backend)
        );
    }
    sql
}

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

/// Binds one record's 19 values, in the column order of [`insert_statement`].
fn bind_record<'q>(query: AnyQuery<'q>, record: &'q AuditRecord) -> AnyQuery<'q> {
    query
        .bind(record.request_id.as_str())
        .bind(record.time_ms)
        .bind(record.node.as_str())
        .bind(record.crawler.as_str())
        .bind(to_json(&record.purposes))
        .bind(record.method.as_str())
        .bind(record.url.as_str())
        .bind(record.host.as_str())
        .bind(record.verdict.as_str())
        .bind(record.decision.as_str())
        .bind(record.stage.as_str())
        .bind(record.mode.as_str())
        .bind(i64::from(record.status))
        .bind(record.bytes.and_then(|b| i64::try_from(b).ok()))
        .bind(record.duration_ms)
        .bind(format!(",{},", record.blocking_sources().join(",")))
        .bind(to_json(&record.reasons))
        .bind(to_json(&record.notes))
        .bind(to_json(&record.evidence))
}

const COLUMNS: &str = "request_id, time_ms, node, crawler, purposes, method, url, host, verdict, decision, stage, mode, \
                       status, bytes, duration_ms, reasons, notes, evidence";

enum Bind {
    Int(i64),
    Text(String),
}

/// A WHERE clause built with `$N` placeholders in ascending order.
#[derive(Default)]
struct Conditions {
    clauses: Vec<String>,
    binds: Vec<Bind>,
}

impl Conditions {
    /// `template` holds one `{}` where the placeholder goes.
    fn push(&mut self, template: &str, bind: Bind) {
        self.binds.push(bind);
        self.clauses.push(template.replace("{}", &format!("${}", self.binds.len())));
    }

    fn add_filter(&mut self, filter: &Filter) {
        let text = |value: &Option<String>| value.as_ref().filter(|v| !v.is_empty()).cloned();
        if let Some(verdict) = text(&filter.verdict) {
            self.push("decision = {}", Bind::Text(verdict));
        }
        if let Some(crawler) = text(&filter.crawler) {
            self.push("crawler = {}", Bind::Text(crawler));
        }
        if let Some(host) = text(&filter.host) {
            self.push("host = {}", Bind::Text(host.to_ascii_lowercase()));
        }
        if let Some(source) = text(&filter.source) {
            self.push("sources LIKE {} ESCAPE '\\'", Bind::Text(format!("%,{},%", escape_like(&source))));
        }
        if let Some(since) = filter.since {
            self.push("time_ms >= {}", Bind::Int(since));
        }
        if let Some(until) = filter.until {
            self.push("time_ms < {}", Bind::Int(until));
        }
        if let Some(q) = text(&filter.q) {
            self.push("url LIKE {} ESCAPE '\\'", Bind::Text(format!("%{}%", escape_like(&q))));
        }
    }

    fn where_clause(&self) -> String {
        let mut sql = String::new();
        for (i, clause) in self.clauses.iter().enumerate() {
            let _ = write!(sql, "{}{clause}", if i == 0 { " WHERE " } else { " AND " });
        }
        sql
    }

    fn bind_all<'q>(&'q self, mut query: AnyQuery<'q>) -> AnyQuery<'q> {
        for bind in &self.binds {
            query = match bind {
                Bind::Int(value) => query.bind(*value),
                Bind::Text(value) => query.bind(value.as_str()),
            };
        }
        query
    }
}

pub(crate) fn record_from_row(row: &AnyRow) -> Result<AuditRecord, StoreError> {
    let text = |name: &str| row.try_get::<String, _>(name);
    let quoted = |value: String| format!("\"{value}\"");
    let time_ms: i64 = row.try_get("time_ms")?;
    Ok(AuditRecord {
        request_id: text("request_id")?,
        time: super::rfc3339(time_ms),
        time_ms,
        node: text("node")?,
        crawler: text("crawler")?,
        purposes: from_json(&text("purposes")?, "purposes")?,
        method: text("method")?,
        url: text("url")?,
        host: text("host")?,
        verdict: from_json(&quoted(text("verdict")?), "verdict")?,
        decision: text("decision")?,
        stage: from_json(&quoted(text("stage")?), "stage")?,
        mode: from_json(&quoted(text("mode")?), "mode")?,
        reasons: from_json(&text("reasons")?, "reasons")?,
        notes: from_json(&text("notes")?, "notes")?,
        status: u16::try_from(row.try_get::<i64, _>("status")?).unwrap_or(0),
        bytes: row.try_get::<Option<i64>, _>("bytes")?.and_then(|b| u64::try_from(b).ok()),
        evidence: from_json::<Vec<EvidenceHash>>(&text("evidence")?, "evidence")?,
        duration_ms: row.try_get("duration_ms")?,
    })
}

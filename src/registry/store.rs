//! The registry's tables in the shared database: entries, the change log, claims and feeds.
//!
//! Every write that touches `registry_entries` also appends the ids it touched to
//! `registry_changes`, in the same transaction. Nodes follow that log by sequence number (see
//! [`super::sync`]). Sequence numbers must become visible in order, or a follower could skip
//! one that commits late: SQLite serialises writers anyway (`BEGIN IMMEDIATE`), and on
//! PostgreSQL every registry write first takes one transaction-scoped advisory lock. Registry
//! writes are rare (imports, feeds, creators), so serialising them costs nothing that matters.

use std::collections::HashMap;
use std::fmt::Write as _;

use sqlx::any::AnyRow;
use sqlx::{Any, AnyPool, AssertSqlSafe, Row, Transaction};

use super::entry::{Entry, EntryTarget};
use crate::decide::Purpose;
use crate::storage::{Backend, Database, StoreError, escape_like, from_json, placeholders, to_json};

/// Advisory lock key that serialises registry writers on PostgreSQL ("CSRG").
const WRITE_LOCK_KEY: i64 = 0x4353_5247;
/// Change-log rows older than this are pruned; a node further behind reloads everything.
const CHANGE_RETENTION_MS: i64 = 24 * 3600 * 1000;
/// Rows per multi-row statement (12 parameters each, well under both databases' limits).
const ROWS_PER_STATEMENT: usize = 500;
const CLAIM_COLUMNS: &str = "id, domain, contact, token, created_ms, expires_ms, verified_ms, verified_by";
const ENTRY_COLUMNS: &str =
    "id, creator, contact, url, domain, host, include_subdomains, paths, purposes, source, created_ms, updated_ms";

/// The registry tables of an open database.
#[derive(Debug, Clone)]
pub struct RegistryStore {
    pool: AnyPool,
    backend: Backend,
}

/// What a bulk write changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct WriteSummary {
    pub added: usize,
    pub updated: usize,
    pub removed: usize,
    pub unchanged: usize,
}

/// Which entries to list.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Entries filed under this host or any of its subdomains.
    pub domain: Option<String>,
    /// Exactly this source (`import`, `feed:<url>`, `claim:<id>`).
    pub source: Option<String>,
    /// Sources starting with this (`claim:` for every portal-filed objection).
    pub source_prefix: Option<String>,
    /// Entries whose id sorts after this one (paging).
    pub after_id: Option<String>,
    pub limit: Option<u32>,
}

/// Changes since a sequence number.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    /// Ids touched, in order, with the last sequence number seen.
    pub ids: Vec<String>,
    pub last_seq: i64,
    /// Sequence numbers up to this one were pruned: a follower behind it must reload.
    pub pruned_through: i64,
}

/// A domain claim (creators' portal).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub id: String,
    pub domain: String,
    pub contact: String,
    pub token: String,
    pub created_ms: i64,
    pub expires_ms: i64,
    pub verified_ms: Option<i64>,
    pub verified_by: Option<String>,
}

/// The last pull of a feed, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FeedState {
    pub url: String,
    pub etag: Option<String>,
    pub checked_ms: i64,
    pub succeeded_ms: Option<i64>,
    pub entries: i64,
    pub error: Option<String>,
}

impl RegistryStore {
    pub fn new(db: &Database) -> Self {
        Self { pool: db.pool.clone(), backend: db.backend }
    }

    /// Starts a registry write: serialised against every other registry writer.
    async fn begin_write(&self) -> Result<Transaction<'static, Any>, StoreError> {
        match self.backend {
            Backend::Sqlite => Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?),
            Backend::Postgres => {
                let mut tx = self.pool.begin().await?;
                sqlx::query("SELECT 1 AS locked FROM (SELECT pg_advisory_xact_lock($1)) AS l")
                    .bind(WRITE_LOCK_KEY)
                    .execute(&mut *tx)
                    .await?;
                Ok(tx)
            }
        }
    }

    /// Adds or replaces `entries` (by id) in one transaction; `created_ms` of a replaced entry
    /// is kept.
    pub async fn upsert(&self, entries: &[Entry], now_ms: i64) -> Result<WriteSummary, StoreError> {
        let mut tx = self.begin_write().await?;
        let existing = existing_ids(&mut tx, entries.iter().map(|e| e.id.as_str()), self.backend).await?;
        upsert_rows(&mut tx, entries, self.backend).await?;
        append_changes(&mut tx, entries.iter().map(|e| e.id.as_str()), now_ms, self.backend).await?;
        prune_changes(&mut tx, now_ms).await?;
        tx.commit().await?;
        let updated = entries.iter().filter(|e| existing.contains_key(e.id.as_str())).count();
        Ok(WriteSummary { added: entries.len() - updated, updated, ..WriteSummary::default() })
    }

    /// Makes `entries` the whole set of `source`'s entries, atomically: entries no longer listed
    /// are removed, changed ones replaced, identical ones left alone (no change-log noise).
    pub async fn replace_source(
        &self,
        source: &str,
        entries: &[Entry],
        now_ms: i64,
    ) -> Result<WriteSummary, StoreError> {
        let mut tx = self.begin_write().await?;
        let rows =
            sqlx::query(AssertSqlSafe(format!("SELECT {ENTRY_COLUMNS} FROM registry_entries WHERE source = $1")))
                .bind(source)
                .fetch_all(&mut *tx)
                .await?;
        let mut current: HashMap<String, Entry> = HashMap::with_capacity(rows.len());
        for row in &rows {
            let entry = entry_from_row(row)?;
            current.insert(entry.id.clone(), entry);
        }
        let mut summary = WriteSummary::default();
        let mut changed = Vec::new();
        for entry in entries {
            match current.remove(&entry.id) {
                Some(old) if same_content(&old, entry) => summary.unchanged += 1,
                Some(_) => {
                    summary.updated += 1;
                    changed.push(entry.clone());
                }
                None => {
                    summary.added += 1;
                    changed.push(entry.clone());
                }
            }
        }
        let gone: Vec<String> = current.into_keys().collect();
        summary.removed = gone.len();
        // An id taken from another source would silently move that entry here: refuse instead.
        let foreign = existing_ids(&mut tx, changed.iter().map(|e| e.id.as_str()), self.backend).await?;
        if let Some((id, other)) = foreign.iter().find(|(_, s)| s.as_str() != source) {
            return Err(StoreError::Corrupt(format!("entry id {id:?} already belongs to source {other:?}")));
        }
        upsert_rows(&mut tx, &changed, self.backend).await?;
        delete_rows(&mut tx, &gone, self.backend).await?;
        let touched = changed.iter().map(|e| e.id.as_str()).chain(gone.iter().map(String::as_str));
        append_changes(&mut tx, touched, now_ms, self.backend).await?;
        prune_changes(&mut tx, now_ms).await?;
        tx.commit().await?;
        Ok(summary)
    }

    /// Removes one entry; `Ok(false)` when there is none with this id.
    pub async fn remove(&self, id: &str, now_ms: i64) -> Result<bool, StoreError> {
        self.remove_where(id, None, now_ms).await
    }

    /// Removes one entry only if it belongs to `source`.
    pub async fn remove_from_source(&self, id: &str, source: &str, now_ms: i64) -> Result<bool, StoreError> {
        self.remove_where(id, Some(source), now_ms).await
    }

    async fn remove_where(&self, id: &str, source: Option<&str>, now_ms: i64) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let result = match source {
            None => sqlx::query("DELETE FROM registry_entries WHERE id = $1").bind(id).execute(&mut *tx).await?,
            Some(source) => {
                sqlx::query("DELETE FROM registry_entries WHERE id = $1 AND source = $2")
                    .bind(id)
                    .bind(source)
                    .execute(&mut *tx)
                    .await?
            }
        };
        let removed = result.rows_affected() > 0;
        if removed {
            append_changes(&mut tx, std::iter::once(id), now_ms, self.backend).await?;
        }
        tx.commit().await?;
        Ok(removed)
    }

    pub async fn get(&self, id: &str) -> Result<Option<Entry>, StoreError> {
        let row = sqlx::query(AssertSqlSafe(format!("SELECT {ENTRY_COLUMNS} FROM registry_entries WHERE id = $1")))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(entry_from_row).transpose()
    }

    /// The entries with these ids that still exist.
    pub async fn get_many(&self, ids: &[String]) -> Result<Vec<Entry>, StoreError> {
        let mut entries = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(ROWS_PER_STATEMENT) {
            let placeholders = placeholders(chunk.len(), 1, self.backend);
            let sql = format!("SELECT {ENTRY_COLUMNS} FROM registry_entries WHERE id IN ({placeholders})");
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for id in chunk {
                query = query.bind(id.as_str());
            }
            for row in query.fetch_all(&self.pool).await? {
                entries.push(entry_from_row(&row)?);
            }
        }
        Ok(entries)
    }

    /// Entries in id order, one page at a time.
    pub async fn list(&self, filter: &ListFilter) -> Result<Vec<Entry>, StoreError> {
        let (conditions, binds) = list_conditions(filter);
        let limit = filter.limit.unwrap_or(1000).clamp(1, 100_000);
        let sql = format!("SELECT {ENTRY_COLUMNS} FROM registry_entries{conditions} ORDER BY id LIMIT {limit}");
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for value in &binds {
            query = query.bind(value.as_str());
        }
        query.fetch_all(&self.pool).await?.iter().map(entry_from_row).collect()
    }

    /// How many entries `filter` selects (its `after_id` and `limit` aside).
    pub async fn count(&self, filter: &ListFilter) -> Result<i64, StoreError> {
        let filter = ListFilter { after_id: None, limit: None, ..filter.clone() };
        let (conditions, binds) = list_conditions(&filter);
        let mut query = sqlx::query(AssertSqlSafe(format!("SELECT COUNT(*) AS n FROM registry_entries{conditions}")));
        for value in &binds {
            query = query.bind(value.as_str());
        }
        Ok(query.fetch_one(&self.pool).await?.try_get("n")?)
    }

    /// The newest change's sequence number (0 when there is none).
    pub async fn head_seq(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COALESCE(MAX(seq), 0) AS s FROM registry_changes").fetch_one(&self.pool).await?;
        Ok(row.try_get("s")?)
    }

    /// Up to `limit` changes after `since`.
    pub async fn changes_since(&self, since: i64, limit: u32) -> Result<Changes, StoreError> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT seq, entry_id FROM registry_changes WHERE seq > $1 ORDER BY seq LIMIT {limit}"
        )))
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        let mut changes =
            Changes { last_seq: since, pruned_through: self.pruned_through().await?, ..Changes::default() };
        for row in &rows {
            changes.last_seq = row.try_get("seq")?;
            changes.ids.push(row.try_get("entry_id")?);
        }
        Ok(changes)
    }

    async fn pruned_through(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT value FROM registry_meta WHERE key = 'pruned_through'")
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get::<i64, _>("value")).transpose()?.unwrap_or(0))
    }

    // === claims ===

    pub async fn insert_claim(&self, claim: &Claim) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO registry_claims (id, domain, contact, token, created_ms, expires_ms) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(claim.id.as_str())
        .bind(claim.domain.as_str())
        .bind(claim.contact.as_str())
        .bind(claim.token.as_str())
        .bind(claim.created_ms)
        .bind(claim.expires_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn claim(&self, id: &str) -> Result<Option<Claim>, StoreError> {
        let row = sqlx::query(AssertSqlSafe(format!("SELECT {CLAIM_COLUMNS} FROM registry_claims WHERE id = $1")))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(claim_from_row).transpose()
    }

    /// Marks a claim verified and stores the hash of its new API key (replacing any earlier key).
    pub async fn verify_claim(
        &self,
        id: &str,
        method: &str,
        api_key_sha256: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE registry_claims SET verified_ms = $1, verified_by = $2, api_key_sha256 = $3 WHERE id = $4")
            .bind(now_ms)
            .bind(method)
            .bind(api_key_sha256)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The verified claim an API key belongs to.
    pub async fn claim_by_key(&self, api_key_sha256: &str) -> Result<Option<Claim>, StoreError> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {CLAIM_COLUMNS} FROM registry_claims WHERE api_key_sha256 = $1 AND verified_ms IS NOT NULL"
        )))
        .bind(api_key_sha256)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(claim_from_row).transpose()
    }

    // === feeds ===

    pub async fn feed_state(&self, url: &str) -> Result<Option<FeedState>, StoreError> {
        let row = sqlx::query(
            "SELECT url, etag, checked_ms, succeeded_ms, entries, error FROM registry_feeds WHERE url = $1",
        )
        .bind(url)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(FeedState {
                url: row.try_get("url")?,
                etag: row.try_get("etag")?,
                checked_ms: row.try_get("checked_ms")?,
                succeeded_ms: row.try_get("succeeded_ms")?,
                entries: row.try_get("entries")?,
                error: row.try_get("error")?,
            })
        })
        .transpose()
    }

    pub async fn save_feed_state(&self, state: &FeedState) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO registry_feeds (url, etag, checked_ms, succeeded_ms, entries, error) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (url) DO UPDATE SET etag = excluded.etag, \
             checked_ms = excluded.checked_ms, succeeded_ms = excluded.succeeded_ms, \
             entries = excluded.entries, error = excluded.error",
        )
        .bind(state.url.as_str())
        .bind(state.etag.as_deref())
        .bind(state.checked_ms)
        .bind(state.succeeded_ms)
        .bind(state.entries)
        .bind(state.error.as_deref())
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// The WHERE clause of a [`ListFilter`] (empty, or starting with " WHERE ") and its binds.
fn list_conditions(filter: &ListFilter) -> (String, Vec<String>) {
    let mut clauses = Vec::new();
    let mut binds: Vec<String> = Vec::new();
    if let Some(domain) = &filter.domain {
        let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
        binds.push(format!("%.{}", escape_like(&domain)));
        binds.push(domain);
        clauses.push("(host LIKE $1 ESCAPE '\\' OR host = $2)".to_string());
    }
    if let Some(source) = &filter.source {
        binds.push(source.clone());
        clauses.push(format!("source = ${}", binds.len()));
    }
    if let Some(prefix) = &filter.source_prefix {
        binds.push(format!("{}%", escape_like(prefix)));
        clauses.push(format!("source LIKE ${} ESCAPE '\\'", binds.len()));
    }
    if let Some(after) = &filter.after_id {
        binds.push(after.clone());
        clauses.push(format!("id > ${}", binds.len()));
    }
    let mut sql = String::new();
    for (i, clause) in clauses.iter().enumerate() {
        let _ = write!(sql, "{}{clause}", if i == 0 { " WHERE " } else { " AND " });
    }
    (sql, binds)
}

/// Whether two versions of an entry say the same thing (times aside).
fn same_content(a: &Entry, b: &Entry) -> bool {
    a.creator == b.creator
        && a.contact == b.contact
        && a.target == b.target
        && a.purposes == b.purposes
        && a.source == b.source
}

/// `id → source` for the ids that exist already.
async fn existing_ids<'a>(
    tx: &mut Transaction<'static, Any>,
    ids: impl Iterator<Item = &'a str>,
    backend: Backend,
) -> Result<HashMap<String, String>, StoreError> {
    let ids: Vec<&str> = ids.collect();
    let mut found = HashMap::new();
    for chunk in ids.chunks(ROWS_PER_STATEMENT) {
        let list = placeholders(chunk.len(), 1, backend);
        let mut query =
            sqlx::query(AssertSqlSafe(format!("SELECT id, source FROM registry_entries WHERE id IN ({list})")));
        for id in chunk {
            query = query.bind(*id);
        }
        for row in query.fetch_all(&mut **tx).await? {
            found.insert(row.try_get("id")?, row.try_get("source")?);
        }
    }
    Ok(found)
}

async fn upsert_rows(
    tx: &mut Transaction<'static, Any>,
    entries: &[Entry],
    backend: Backend,
) -> Result<(), StoreError> {
    const COLUMNS: usize = 12;
    for chunk in entries.chunks(ROWS_PER_STATEMENT) {
        let mut sql = format!("INSERT INTO registry_entries ({ENTRY_COLUMNS}) VALUES ");
        for row in 0..chunk.len() {
            let _ = write!(
                sql,
                "{}({})",
                if row == 0 { "" } else { ", " },
                placeholders(COLUMNS, row * COLUMNS + 1, backend)
            );
        }
        sql.push_str(
            " ON CONFLICT (id) DO UPDATE SET creator = excluded.creator, contact = excluded.contact, \
             url = excluded.url, domain = excluded.domain, host = excluded.host, \
             include_subdomains = excluded.include_subdomains, paths = excluded.paths, \
             purposes = excluded.purposes, source = excluded.source, updated_ms = excluded.updated_ms",
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for entry in chunk {
            let (url, domain, include_subdomains, paths) = match &entry.target {
                EntryTarget::Url { url } => (Some(url.as_str()), None, false, "[]".to_string()),
                EntryTarget::Domain { domain, include_subdomains, paths } => {
                    (None, Some(domain.as_str()), *include_subdomains, to_json(paths))
                }
            };
            query = query
                .bind(entry.id.as_str())
                .bind(entry.creator.as_str())
                .bind(entry.contact.as_str())
                .bind(url)
                .bind(domain)
                .bind(entry.target.host().to_string())
                .bind(i64::from(include_subdomains))
                .bind(paths)
                .bind(to_json(&entry.purposes))
                .bind(entry.source.as_str())
                .bind(entry.created_ms)
                .bind(entry.updated_ms);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

async fn delete_rows(tx: &mut Transaction<'static, Any>, ids: &[String], backend: Backend) -> Result<(), StoreError> {
    for chunk in ids.chunks(ROWS_PER_STATEMENT) {
        let list = placeholders(chunk.len(), 1, backend);
        let mut query = sqlx::query(AssertSqlSafe(format!("DELETE FROM registry_entries WHERE id IN ({list})")));
        for id in chunk {
            query = query.bind(id.as_str());
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

async fn append_changes<'a>(
    tx: &mut Transaction<'static, Any>,
    ids: impl Iterator<Item = &'a str>,
    now_ms: i64,
    backend: Backend,
) -> Result<(), StoreError> {
    let ids: Vec<&str> = ids.collect();
    for chunk in ids.chunks(ROWS_PER_STATEMENT) {
        let mut sql = String::from("INSERT INTO registry_changes (entry_id, changed_ms) VALUES ");
        for row in 0..chunk.len() {
            let _ = write!(sql, "{}({})", if row == 0 { "" } else { ", " }, placeholders(2, row * 2 + 1, backend));
        }
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for id in chunk {
            query = query.bind(*id).bind(now_ms);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Drops change-log rows past the retention and records how far the log was pruned.
async fn prune_changes(tx: &mut Transaction<'static, Any>, now_ms: i64) -> Result<(), StoreError> {
    let cutoff = now_ms - CHANGE_RETENTION_MS;
    let row = sqlx::query("SELECT COALESCE(MAX(seq), 0) AS s FROM registry_changes WHERE changed_ms < $1")
        .bind(cutoff)
        .fetch_one(&mut **tx)
        .await?;
    let through: i64 = row.try_get("s")?;
    if through == 0 {
        return Ok(());
    }
    sqlx::query("DELETE FROM registry_changes WHERE seq <= $1").bind(through).execute(&mut **tx).await?;
    sqlx::query(
        "INSERT INTO registry_meta (key, value) VALUES ('pruned_through', $1) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )
    .bind(through)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn entry_from_row(row: &AnyRow) -> Result<Entry, StoreError> {
    let url: Option<String> = row.try_get("url")?;
    let domain: Option<String> = row.try_get("domain")?;
    let target = match (url, domain) {
        (Some(url), _) => EntryTarget::Url { url },
        (None, Some(domain)) => EntryTarget::Domain {
            domain,
            include_subdomains: row.try_get::<i64, _>("include_subdomains")? != 0,
            paths: from_json(&row.try_get::<String, _>("paths")?, "registry paths")?,
        },
        (None, None) => return Err(StoreError::Corrupt("a registry entry has neither url nor domain".into())),
    };
    Ok(Entry {
        id: row.try_get("id")?,
        creator: row.try_get("creator")?,
        contact: row.try_get("contact")?,
        target,
        purposes: from_json::<Vec<Purpose>>(&row.try_get::<String, _>("purposes")?, "registry purposes")?,
        source: row.try_get("source")?,
        created_ms: row.try_get("created_ms")?,
        updated_ms: row.try_get("updated_ms")?,
    })
}

fn claim_from_row(row: &AnyRow) -> Result<Claim, StoreError> {
    Ok(Claim {
        id: row.try_get("id")?,
        domain: row.try_get("domain")?,
        contact: row.try_get("contact")?,
        token: row.try_get("token")?,
        created_ms: row.try_get("created_ms")?,
        expires_ms: row.try_get("expires_ms")?,
        verified_ms: row.try_get("verified_ms")?,
        verified_by: row.try_get("verified_by")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::IN_MEMORY;

    fn entry(id: &str, domain: &str, source: &str) -> Entry {
        Entry {
            id: id.into(),
            creator: "Ann".into(),
            contact: String::new(),
            target: EntryTarget::Domain { domain: domain.into(), include_subdomains: true, paths: vec!["/a/".into()] },
            purposes: vec![Purpose::AiTrain],
            source: source.into(),
            created_ms: 1,
            updated_ms: 1,
        }
    }

    #[tokio::test]
    async fn replacing_a_source_writes_only_the_differences() {
        let store = RegistryStore::new(&Database::open(IN_MEMORY).await.expect("db"));
        let feed = "feed:https://r.example/f";
        let first = [entry("a", "a.example", feed), entry("b", "b.example", feed)];
        let summary = store.replace_source(feed, &first, 10).await.expect("first");
        assert_eq!((summary.added, summary.updated, summary.removed), (2, 0, 0));
        let head = store.head_seq().await.expect("head");

        let second = [entry("a", "a.example", feed), entry("c", "c.example", feed)];
        let summary = store.replace_source(feed, &second, 20).await.expect("second");
        assert_eq!((summary.added, summary.updated, summary.removed, summary.unchanged), (1, 0, 1, 1));
        let changes = store.changes_since(head, 100).await.expect("changes");
        let mut ids = changes.ids.clone();
        ids.sort();
        assert_eq!(ids, ["b", "c"], "the unchanged entry is not in the change log");
        assert!(store.get("b").await.expect("get").is_none());
        assert_eq!(store.get("a").await.expect("get").map(|e| e.created_ms), Some(1), "the first write stays");

        // An id that belongs to another source is refused, and nothing is written.
        store.upsert(&[entry("x", "x.example", "import")], 30).await.expect("import");
        let stolen = [entry("x", "evil.example", feed)];
        assert!(store.replace_source(feed, &stolen, 40).await.is_err());
        assert_eq!(
            store.get("x").await.expect("get").map(|e| e.target.host().to_string()).as_deref(),
            Some("x.example")
        );
    }

    #[tokio::test]
    async fn old_changes_are_pruned_and_followers_are_told() {
        let store = RegistryStore::new(&Database::open(IN_MEMORY).await.expect("db"));
        store.upsert(&[entry("a", "a.example", "import")], 1_000).await.expect("old write");
        let later = 1_000 + CHANGE_RETENTION_MS + 1;
        store.upsert(&[entry("b", "b.example", "import")], later).await.expect("new write");
        let changes = store.changes_since(0, 100).await.expect("changes");
        assert_eq!(changes.pruned_through, 1, "the first change was pruned");
        assert_eq!(changes.ids, ["b"]);
    }

    #[tokio::test]
    async fn list_filters_by_domain_on_label_boundaries() {
        let store = RegistryStore::new(&Database::open(IN_MEMORY).await.expect("db"));
        let entries = [
            entry("1", "example.org", "import"),
            entry("2", "www.example.org", "import"),
            entry("3", "badexample.org", "import"),
            entry("4", "ex_ample.org", "import"),
        ];
        store.upsert(&entries, 1).await.expect("upsert");
        let filter = ListFilter { domain: Some("Example.org.".into()), ..ListFilter::default() };
        let ids: Vec<String> = store.list(&filter).await.expect("list").into_iter().map(|e| e.id).collect();
        assert_eq!(ids, ["1", "2"]);
        let filter = ListFilter { domain: Some("ex_ample.org".into()), ..ListFilter::default() };
        assert_eq!(store.list(&filter).await.expect("list").len(), 1, "LIKE wildcards are escaped");
    }
}

//! The shared database: SQLite (WAL, in `data_dir`) or PostgreSQL behind one code path.
//!
//! The audit log and the creators' registry live in the same database, opened and migrated
//! once. sqlx's `Any` driver runs the same statements on both backends; times are integers (ms)
//! and JSON is text.

use std::path::Path;
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyConnection, AnyPool, Connection as _};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the database {url}: {source}")]
    Open { url: String, source: sqlx::Error },
    #[error("cannot migrate the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database: {0}")]
    Query(#[from] sqlx::Error),
    #[error("the database holds an unreadable row: {0}")]
    Corrupt(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A migrated connection pool.
#[derive(Debug, Clone)]
pub struct Database {
    pub(crate) pool: AnyPool,
    pub(crate) backend: Backend,
}

/// `storage.url` for a database that lives only as long as the process (used when
/// `storage.url = "none"` turns the audit log off: the registry still needs somewhere to be).
pub const IN_MEMORY: &str = "sqlite::memory:";

impl Database {
    /// Opens (creating if needed) the database at `url` and applies the migrations.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") { Backend::Sqlite } else { Backend::Postgres };
        let in_memory = url == IN_MEMORY;
        let connect_url = match backend {
            Backend::Sqlite if !in_memory => sqlite_url(url),
            _ => url.to_string(),
        };
        if backend == Backend::Sqlite
            && let Some(parent) = sqlite_path(url).and_then(|p| Path::new(&p).parent().map(Path::to_path_buf))
            && !parent.as_os_str().is_empty()
        {
            let _ = crate::tls::create_private_dir(&parent);
        }
        let mut options = AnyPoolOptions::new()
            .max_connections(match backend {
                // Every connection to `:memory:` is a database of its own: keep exactly one.
                Backend::Sqlite if in_memory => 1,
                Backend::Sqlite => 4,
                Backend::Postgres => 8,
            })
            .acquire_timeout(Duration::from_secs(5))
            .after_release(|conn, _meta| Box::pin(outside_transaction(conn)))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL + FULL: a committed batch survives a crash and a power cut.
                        sqlx::query("PRAGMA journal_mode = WAL").execute(&mut *conn).await?;
                        sqlx::query("PRAGMA synchronous = FULL").execute(&mut *conn).await?;
                        sqlx::query("PRAGMA busy_timeout = 5000").execute(&mut *conn).await?;
                    }
                    Ok(())
                })
            });
        if in_memory {
            options = options.min_connections(1).idle_timeout(None).max_lifetime(None);
        }
        let pool =
            options.connect(&connect_url).await.map_err(|source| StoreError::Open { url: redact(url), source })?;
        let db = Self { pool, backend };
        db.migrate().await?;
        Ok(db)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        match self.backend {
            Backend::Sqlite => sqlx::migrate!("migrations/sqlite").run(&self.pool).await?,
            Backend::Postgres => sqlx::migrate!("migrations/postgres").run(&self.pool).await?,
        }
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Whether a released connection may go back to the pool: only if the driver counts it outside
/// any transaction once the rollback a dropped transaction queued has run. When SQLite rolls a
/// failed transaction back by itself (disk full), sqlx's own ROLLBACK then fails and its depth
/// stays at 1: the next `begin` on that connection would open a savepoint inside a transaction
/// nobody commits, and a batch reported as committed would be lost. Such a connection is closed.
async fn outside_transaction(conn: &mut AnyConnection) -> Result<bool, sqlx::Error> {
    if conn.is_in_transaction() {
        conn.ping().await?;
    }
    Ok(!conn.is_in_transaction())
}

/// Held for as long as a node serves from a SQLite database: SQLite is one node's store. A second
/// `consentry run` on the same file would make two writers of one audit log, two followers of one
/// registry and (later) two sequencers of one transparency log; several nodes share PostgreSQL.
#[derive(Debug)]
pub struct NodeLock {
    _file: std::fs::File,
}

#[derive(Debug, thiserror::Error)]
pub enum NodeLockError {
    #[error(
        "another consentry node is already running on {url} (lock {path}). SQLite serves one node; \
         to run several nodes, point every node's storage.url at one PostgreSQL database \
         (storage.url = \"postgres://user@host/db\")"
    )]
    Taken { url: String, path: String },
    #[error("cannot create the node lock {path}: {source}")]
    Io { path: String, source: std::io::Error },
}

impl NodeLock {
    /// Takes the node lock of a SQLite `url`; `None` for PostgreSQL and in-memory databases.
    pub fn acquire(url: &str) -> Result<Option<Self>, NodeLockError> {
        let Some(path) = sqlite_path(url).filter(|p| url != IN_MEMORY && !p.is_empty() && p != ":memory:") else {
            return Ok(None);
        };
        let lock_path = format!("{path}.node-lock");
        let io = |source| NodeLockError::Io { path: lock_path.clone(), source };
        if let Some(parent) = Path::new(&path).parent().filter(|p| !p.as_os_str().is_empty()) {
            // data_dir may not exist yet (nothing else has written there before the first start).
            let _ = crate::tls::create_private_dir(parent);
        }
        let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path).map_err(io)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(Self { _file: file })),
            Err(std::fs::TryLockError::WouldBlock) => {
                Err(NodeLockError::Taken { url: redact(url), path: lock_path.clone() })
            }
            Err(std::fs::TryLockError::Error(source)) => Err(io(source)),
        }
    }
}

/// `sqlite://PATH` → the path.
fn sqlite_path(url: &str) -> Option<String> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    Some(rest.split('?').next().unwrap_or(rest).to_string())
}

/// Adds `mode=rwc` so the database file is created on first start.
fn sqlite_url(url: &str) -> String {
    if url.contains("mode=") {
        url.to_string()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    }
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

/// Milliseconds since the Unix epoch, the unit every stored time uses.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// `count` placeholders numbered from `first`: `?` on SQLite (it resolves `$N` names one by one,
/// quadratic in long statements), `$N` on PostgreSQL.
pub(crate) fn placeholders(count: usize, first: usize, backend: Backend) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(count * 4);
    for i in 0..count {
        out.push_str(if i == 0 { "" } else { ", " });
        match backend {
            Backend::Sqlite => out.push('?'),
            Backend::Postgres => {
                let _ = write!(out, "${}", first + i);
            }
        }
    }
    out
}

/// Makes `%`, `_` and `\\` match literally in a `LIKE … ESCAPE '\\'` pattern.
pub(crate) fn escape_like(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// `value` as JSON text (for the TEXT columns that hold lists).
pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

pub(crate) fn from_json<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_node_on_one_sqlite_file_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}/consentry.db", dir.path().display());
        let url_in_new_dir = format!("sqlite://{}/new/consentry.db", dir.path().display());
        assert!(NodeLock::acquire(&url_in_new_dir).expect("the directory is created").is_some());
        let first = NodeLock::acquire(&url).expect("first node").expect("a lock for SQLite");
        let second = NodeLock::acquire(&url).expect_err("second node");
        assert!(second.to_string().contains("PostgreSQL"), "{second}");
        drop(first);
        assert!(NodeLock::acquire(&url).expect("after the first stopped").is_some());
        assert!(NodeLock::acquire("postgres://u@h/db").expect("postgres").is_none());
        assert!(NodeLock::acquire(IN_MEMORY).expect("memory").is_none());
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("sqlite://x.db"), "sqlite://x.db");
    }
}

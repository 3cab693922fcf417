//! The transparency log's tables in the shared database, and the work done on them: sequencing
//! pending records into the tree, signing the new head, and reading tiles and proofs.
//!
//! The tree is kept as its *stored hashes* (the layout of golang.org/x/mod/sumdb/tlog, which
//! `tlog_tiles` implements): every leaf hash and every complete subtree hash, by stored-hash
//! index. Tiles and proofs are read from them. `tlog_tiles` computes with a synchronous
//! [`HashReader`]; which hashes a computation reads depends only on the tree's shape, never on
//! hash values, so each computation runs twice: once against a recorder to learn the indexes,
//! then, after one query fetched them, for real.

use std::cell::RefCell;
use std::collections::HashMap;

use sqlx::any::AnyRow;
use sqlx::{Any, AnyConnection, AnyPool, AssertSqlSafe, Connection as _, Row, Transaction};
use tlog_tiles::{Hash, HashReader};

use super::leaf::{self, SALT_BYTES};
use super::note::NoteSigner;
use crate::audit::AuditRecord;
use crate::storage::{Backend, Database, StoreError, escape_like, placeholders};

/// Height of the public tiles (C2SP tlog-tiles fixes it at 8: 256 hashes per tile).
pub const TILE_HEIGHT: u8 = 8;
/// Hashes per full tile.
pub const TILE_WIDTH: u64 = 1 << TILE_HEIGHT;
/// Rows or values per multi-row statement, well under both databases' parameter limits.
const CHUNK: usize = 500;
/// Most records one receipt holds.
pub const MAX_RECEIPT_RECORDS: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum TlogError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the transparency log's stored hashes are inconsistent: {0}")]
    Tree(#[from] tlog_tiles::Error),
    #[error("{0}")]
    BadRequest(String),
    #[error("the transparency log has not been created in this database yet")]
    NoLog,
    #[error("another sequencer appended to the tree at the same time; this batch was rolled back")]
    Raced,
    #[error(
        "the transparency log in this database is named {stored_origin:?} and verified by {stored_key}; this node \
         would sign as {our_origin:?} with {our_key}. Every node of one deployment must share `tlog.origin` and the \
         signing key (`tlog.key_file`)"
    )]
    Mismatch { stored_origin: String, stored_key: String, our_origin: String, our_key: String },
}

impl From<sqlx::Error> for TlogError {
    fn from(error: sqlx::Error) -> Self {
        Self::Store(StoreError::Query(error))
    }
}

/// The latest tree head and its signed checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct TreeHead {
    pub origin: String,
    pub verifier_key: String,
    pub size: u64,
    pub root: Hash,
    /// The signed note (C2SP tlog-checkpoint).
    pub checkpoint: String,
    pub updated_ms: i64,
}

impl TreeHead {
    /// Refuses a signer whose checkpoints would not verify as this log's (another name or key):
    /// two keys for one tree would look like a fork to every creator.
    pub fn check_signer(&self, signer: &NoteSigner) -> Result<(), TlogError> {
        if self.origin == signer.name() && self.verifier_key == signer.verifier_key() {
            return Ok(());
        }
        Err(TlogError::Mismatch {
            stored_origin: self.origin.clone(),
            stored_key: self.verifier_key.clone(),
            our_origin: signer.name().to_string(),
            our_key: signer.verifier_key(),
        })
    }
}

/// One sequenced record with what a creator needs to check it.
#[derive(Debug, Clone)]
pub struct LeafRecord {
    pub leaf_index: u64,
    pub prev_leaf_index: Option<u64>,
    pub salt: String,
    pub record: AuditRecord,
}

/// A record waiting for a leaf, as written by the audit writer.
#[derive(Debug, Clone)]
pub struct PendingEntry {
    pub request_id: String,
    pub host: String,
    pub salt: String,
    /// Hex SHA-256 of the record's canonical JSON (what the leaf commits to).
    pub record_digest: String,
}

impl PendingEntry {
    /// A fresh random salt for `record`.
    pub fn new(record: &AuditRecord) -> Self {
        use base64::Engine as _;
        let salt: [u8; SALT_BYTES] = rand::random();
        Self {
            request_id: record.request_id.clone(),
            host: record.host.clone(),
            salt: base64::engine::general_purpose::STANDARD.encode(salt),
            record_digest: leaf::record_digest(&super::canonical_record(record)),
        }
    }
}

/// The transparency log's tables.
#[derive(Debug, Clone)]
pub struct TlogStore {
    pool: AnyPool,
    backend: Backend,
}

impl TlogStore {
    pub fn new(db: &Database) -> Self {
        Self { pool: db.pool.clone(), backend: db.backend }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A connection of its own, outside the pool (the sequencer's: on PostgreSQL its session
    /// holds the leader lock, which must never go back to the pool with it).
    pub async fn dedicated_connection(&self) -> Result<AnyConnection, TlogError> {
        Ok(self.pool.acquire().await?.detach())
    }

    /// The latest head, if the log exists.
    pub async fn head(&self) -> Result<Option<TreeHead>, TlogError> {
        let mut conn = self.pool.acquire().await?;
        read_head(&mut conn).await
    }

    /// Creates the empty log (size 0, signed by `signer`) unless one exists; returns the head.
    pub async fn create_if_missing(&self, signer: &NoteSigner, now_ms: i64) -> Result<TreeHead, TlogError> {
        let checkpoint = sign_checkpoint(signer, 0, &tlog_tiles::EMPTY_HASH)?;
        sqlx::query(
            "INSERT INTO tlog_state (id, origin, verifier_key, size, root, checkpoint, updated_ms) \
             VALUES (1, $1, $2, 0, $3, $4, $5) ON CONFLICT (id) DO NOTHING",
        )
        .bind(signer.name())
        .bind(signer.verifier_key())
        .bind(leaf::encode_hash(&tlog_tiles::EMPTY_HASH))
        .bind(checkpoint)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        self.head().await?.ok_or(TlogError::NoLog)
    }

    /// [`Self::create_if_missing`], then a check that the stored log is the one `signer` signs.
    pub async fn ensure_log(&self, signer: &NoteSigner, now_ms: i64) -> Result<TreeHead, TlogError> {
        let head = self.create_if_missing(signer, now_ms).await?;
        head.check_signer(signer)?;
        Ok(head)
    }

    /// Queues `entries` for sequencing in a transaction of their own (the audit writer queues in
    /// its own transaction instead, with [`insert_pending`]).
    pub async fn enqueue(&self, entries: &[PendingEntry]) -> Result<(), TlogError> {
        let mut tx = self.pool.begin().await?;
        insert_pending(&mut tx, entries, self.backend).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records written but not yet in the tree.
    pub async fn pending_count(&self) -> Result<u64, TlogError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM tlog_pending").fetch_one(&self.pool).await?;
        Ok(u64::try_from(row.try_get::<i64, _>("n")?).unwrap_or(0))
    }

    /// The hash tile at `level`, `index` with `width` hashes (C2SP tlog-tiles), or `None` when
    /// the tree is too small to hold it.
    pub async fn tile(&self, level: u8, index: u64, width: u64) -> Result<Option<Vec<u8>>, TlogError> {
        let Some(head) = self.head().await? else { return Ok(None) };
        let Some(merkle_level) = level.checked_mul(TILE_HEIGHT).filter(|l| *l < 64) else { return Ok(None) };
        let nodes_at_level = head.size >> merkle_level;
        let Some(first) = index.checked_mul(TILE_WIDTH) else { return Ok(None) };
        let Some(end) = first.checked_add(width) else { return Ok(None) };
        if width == 0 || width > TILE_WIDTH || end > nodes_at_level {
            return Ok(None);
        }
        let indexes: Vec<u64> = (first..end).map(|n| tlog_tiles::stored_hash_index(merkle_level, n)).collect();
        let mut conn = self.pool.acquire().await?;
        let found = fetch_hashes(&mut conn, &indexes, self.backend).await?;
        let mut data = Vec::with_capacity(indexes.len() * tlog_tiles::HASH_SIZE);
        for index in &indexes {
            let hash = found.get(index).ok_or_else(|| missing_hash(*index))?;
            data.extend_from_slice(&hash.0);
        }
        Ok(Some(data))
    }

    /// A proof that the tree of size `new` extends the tree of size `old` (RFC 6962 §2.1.2).
    pub async fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, TlogError> {
        let head = self.head().await?.ok_or(TlogError::NoLog)?;
        if old == 0 || old > new || new > head.size {
            return Err(TlogError::BadRequest(format!(
                "need 1 <= old <= new <= {} (the current tree size), got old={old} new={new}",
                head.size
            )));
        }
        let mut conn = self.pool.acquire().await?;
        let mut known = HashMap::new();
        twice(&mut conn, self.backend, &mut known, |r| tlog_tiles::prove_tree(new, old, r)).await
    }

    /// Inclusion proofs of `leaves` in the tree of size `size` (RFC 6962 §2.1.1).
    pub async fn inclusion_proofs(&self, size: u64, leaves: &[u64]) -> Result<Vec<Vec<Hash>>, TlogError> {
        if let Some(bad) = leaves.iter().find(|&&n| n >= size) {
            return Err(TlogError::BadRequest(format!("leaf {bad} is not in the tree of size {size}")));
        }
        let mut conn = self.pool.acquire().await?;
        let mut known = HashMap::new();
        twice(&mut conn, self.backend, &mut known, |r| {
            leaves.iter().map(|&n| tlog_tiles::prove_record(size, n, r)).collect()
        })
        .await
    }

    /// The sequenced records of `domain` and its subdomains, oldest leaf first. With a time
    /// window, the records are those between the first leaf on or after `since` and the last
    /// leaf before `until`, so each host's chain inside the receipt has no gaps even where
    /// nodes' clocks and commit order disagree by a little.
    pub async fn domain_records(
        &self,
        domain: &str,
        since: Option<i64>,
        until: Option<i64>,
    ) -> Result<(Vec<LeafRecord>, bool), TlogError> {
        let host_like = format!("%.{}", escape_like(domain));
        let matches = "(l.host = $1 OR l.host LIKE $2 ESCAPE '\\')";
        let bound = |aggregate: &str, time: &str| {
            format!(
                "SELECT {aggregate}(l.leaf_index) AS n FROM tlog_leaves l JOIN decisions d ON d.request_id = l.request_id \
                 WHERE {matches} AND d.time_ms {time} $3"
            )
        };
        let mut first = 0_i64;
        let mut last = i64::MAX;
        for (value, aggregate, time, target) in [(since, "MIN", ">=", &mut first), (until, "MAX", "<", &mut last)] {
            let Some(value) = value else { continue };
            let row = sqlx::query(AssertSqlSafe(bound(aggregate, time)))
                .bind(domain)
                .bind(host_like.as_str())
                .bind(value)
                .fetch_one(&self.pool)
                .await?;
            match row.try_get::<Option<i64>, _>("n")? {
                Some(n) => *target = n,
                None => return Ok((Vec::new(), false)),
            }
        }
        let sql = format!(
            "SELECT l.leaf_index, l.prev_leaf, l.salt, d.* FROM tlog_leaves l JOIN decisions d ON d.request_id = l.request_id \
             WHERE {matches} AND l.leaf_index >= $3 AND l.leaf_index <= $4 ORDER BY l.leaf_index LIMIT {}",
            MAX_RECEIPT_RECORDS + 1
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(domain)
            .bind(host_like.as_str())
            .bind(first)
            .bind(last)
            .fetch_all(&self.pool)
            .await?;
        let truncated = rows.len() > MAX_RECEIPT_RECORDS;
        let records = rows.iter().take(MAX_RECEIPT_RECORDS).map(leaf_record_from_row).collect::<Result<_, _>>()?;
        Ok((records, truncated))
    }

    /// Records of `domain` and its subdomains that wait for a leaf.
    pub async fn domain_pending(&self, domain: &str) -> Result<Vec<AuditRecord>, TlogError> {
        let rows = sqlx::query(
            "SELECT d.* FROM tlog_pending p JOIN decisions d ON d.request_id = p.request_id \
             WHERE (p.host = $1 OR p.host LIKE $2 ESCAPE '\\') ORDER BY p.id LIMIT 1000",
        )
        .bind(domain)
        .bind(format!("%.{}", escape_like(domain)))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|row| Ok(crate::audit::store::record_from_row(row)?)).collect()
    }
}

/// Appends `entries` to `tx`'s pending queue (called inside the audit writer's transaction, so a
/// record and its place in the queue commit together).
pub async fn insert_pending(
    tx: &mut Transaction<'_, Any>,
    entries: &[PendingEntry],
    backend: Backend,
) -> Result<(), sqlx::Error> {
    for chunk in entries.chunks(CHUNK) {
        let sql = format!(
            "INSERT INTO tlog_pending (request_id, host, salt, record_sha256) VALUES {}",
            rows_sql(chunk.len(), 4, backend)
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for entry in chunk {
            query = query
                .bind(entry.request_id.as_str())
                .bind(entry.host.as_str())
                .bind(entry.salt.as_str())
                .bind(entry.record_digest.as_str());
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// What one sequencing transaction did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sequenced {
    pub appended: u64,
    pub size: u64,
}

/// Moves up to `max_batch` pending records into the tree and signs the new head, all in one
/// transaction: a crash leaves either the old tree and its checkpoint or the new ones, and the
/// records stay pending until they have a leaf.
pub async fn sequence_batch(
    conn: &mut AnyConnection,
    backend: Backend,
    signer: &NoteSigner,
    max_batch: usize,
    now_ms: i64,
) -> Result<Sequenced, TlogError> {
    let mut tx = match backend {
        // IMMEDIATE: take SQLite's write lock before reading the head.
        Backend::Sqlite => conn.begin_with("BEGIN IMMEDIATE").await?,
        Backend::Postgres => conn.begin().await?,
    };
    let head = read_head(&mut tx).await?.ok_or(TlogError::NoLog)?;
    let pending = read_pending(&mut tx, max_batch).await?;
    if pending.is_empty() {
        return Ok(Sequenced { appended: 0, size: head.size });
    }
    let leaves = chain_leaves(&mut tx, backend, head.size, &pending).await?;
    let leaf_hashes: Vec<Hash> = leaves.iter().map(|l| l.hash).collect();
    let (new_hashes, root) = append_to_tree(&mut tx, backend, head.size, &leaf_hashes).await?;
    let size = head.size + leaves.len() as u64;
    insert_hashes(&mut tx, &new_hashes, backend).await?;
    insert_leaves(&mut tx, &leaves, backend).await?;
    update_host_heads(&mut tx, &leaves, backend).await?;
    delete_pending(&mut tx, &pending, backend).await?;
    let checkpoint = sign_checkpoint(signer, size, &root)?;
    let moved = sqlx::query(
        "UPDATE tlog_state SET size = $1, root = $2, checkpoint = $3, updated_ms = $4 WHERE id = 1 AND size = $5",
    )
    .bind(as_i64(size))
    .bind(leaf::encode_hash(&root))
    .bind(checkpoint)
    .bind(now_ms)
    .bind(as_i64(head.size))
    .execute(&mut *tx)
    .await?;
    if moved.rows_affected() != 1 {
        return Err(TlogError::Raced);
    }
    tx.commit().await?;
    Ok(Sequenced { appended: leaves.len() as u64, size })
}

/// The C2SP checkpoint of a tree, signed.
pub fn sign_checkpoint(signer: &NoteSigner, size: u64, root: &Hash) -> Result<String, TlogError> {
    let text = checkpoint_text(signer.name(), size, root);
    signer.sign(&text).map_err(|e| TlogError::BadRequest(format!("cannot sign the checkpoint: {e}")))
}

/// `<origin>\n<size>\n<base64 root>\n` (C2SP tlog-checkpoint, no extension lines).
pub fn checkpoint_text(origin: &str, size: u64, root: &Hash) -> String {
    format!("{origin}\n{size}\n{}\n", leaf::encode_hash(root))
}

struct PendingRow {
    id: i64,
    host: String,
    request_id: String,
    salt: [u8; SALT_BYTES],
    salt_text: String,
    record_digest: String,
}

struct NewLeaf {
    index: u64,
    prev: Option<u64>,
    hash: Hash,
    request_id: String,
    host: String,
    salt: String,
}

async fn read_head(conn: &mut AnyConnection) -> Result<Option<TreeHead>, TlogError> {
    let row =
        sqlx::query("SELECT origin, verifier_key, size, root, checkpoint, updated_ms FROM tlog_state WHERE id = 1")
            .fetch_optional(&mut *conn)
            .await?;
    let Some(row) = row else { return Ok(None) };
    let root_text: String = row.try_get("root")?;
    let root = leaf::decode_hash(&root_text).ok_or_else(|| corrupt(format!("tlog_state.root {root_text:?}")))?;
    Ok(Some(TreeHead {
        origin: row.try_get("origin")?,
        verifier_key: row.try_get("verifier_key")?,
        size: as_u64(row.try_get("size")?),
        root,
        checkpoint: row.try_get("checkpoint")?,
        updated_ms: row.try_get("updated_ms")?,
    }))
}

async fn read_pending(conn: &mut AnyConnection, max_batch: usize) -> Result<Vec<PendingRow>, TlogError> {
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT id, request_id, host, salt, record_sha256 FROM tlog_pending ORDER BY id LIMIT {max_batch}"
    )))
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            let salt_text: String = row.try_get("salt")?;
            let salt =
                leaf::decode_salt(&salt_text).ok_or_else(|| corrupt(format!("tlog_pending.salt {salt_text:?}")))?;
            Ok(PendingRow {
                id: row.try_get("id")?,
                host: row.try_get("host")?,
                request_id: row.try_get("request_id")?,
                salt,
                salt_text,
                record_digest: row.try_get("record_sha256")?,
            })
        })
        .collect()
}

/// Gives each pending record its leaf index and links it to its host's previous leaf.
async fn chain_leaves(
    conn: &mut AnyConnection,
    backend: Backend,
    first_index: u64,
    pending: &[PendingRow],
) -> Result<Vec<NewLeaf>, TlogError> {
    let mut hosts: Vec<&str> = pending.iter().map(|p| p.host.as_str()).collect();
    hosts.sort_unstable();
    hosts.dedup();
    let mut heads: HashMap<String, u64> = HashMap::new();
    for chunk in hosts.chunks(CHUNK) {
        let sql = format!(
            "SELECT host, last_leaf FROM tlog_host_heads WHERE host IN ({})",
            placeholders(chunk.len(), 1, backend)
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for host in chunk {
            query = query.bind(*host);
        }
        for row in query.fetch_all(&mut *conn).await? {
            heads.insert(row.try_get("host")?, as_u64(row.try_get("last_leaf")?));
        }
    }
    let mut leaves = Vec::with_capacity(pending.len());
    for (offset, row) in pending.iter().enumerate() {
        let index = first_index + offset as u64;
        let prev = heads.insert(row.host.clone(), index);
        leaves.push(NewLeaf {
            index,
            prev,
            hash: tlog_tiles::record_hash(&leaf::entry_bytes_for_digest(&row.salt, prev, &row.record_digest)),
            request_id: row.request_id.clone(),
            host: row.host.clone(),
            salt: row.salt_text.clone(),
        });
    }
    Ok(leaves)
}

/// The stored hashes that appending `leaf_hashes` to a tree of `size` leaves creates, and the
/// new root.
async fn append_to_tree(
    conn: &mut AnyConnection,
    backend: Backend,
    size: u64,
    leaf_hashes: &[Hash],
) -> Result<(Vec<(u64, Hash)>, Hash), TlogError> {
    let new_size = size + leaf_hashes.len() as u64;
    let mut known = HashMap::new();
    // Pass 1: which existing hashes the appends and the new root read.
    let recorder = Reader::recording();
    let mut scratch = HashMap::new();
    for (offset, hash) in leaf_hashes.iter().enumerate() {
        let n = size + offset as u64;
        let stored = tlog_tiles::stored_hashes_for_record_hash(n, *hash, &recorder)?;
        remember(&mut scratch, n, &stored);
    }
    let mut wanted: Vec<u64> = recorder.recorded();
    wanted.extend(tlog_tiles::sub_tree_index(0, new_size, Vec::new()));
    let existing = tlog_tiles::stored_hash_count(size);
    wanted.retain(|&i| i < existing);
    wanted.sort_unstable();
    wanted.dedup();
    known.extend(fetch_hashes(conn, &wanted, backend).await?);
    // Pass 2: for real, each append reading the hashes of the ones before it.
    let mut created = Vec::new();
    for (offset, hash) in leaf_hashes.iter().enumerate() {
        let n = size + offset as u64;
        let stored = tlog_tiles::stored_hashes_for_record_hash(n, *hash, &Reader::Map(&known))?;
        let first = tlog_tiles::stored_hash_index(0, n);
        for (i, h) in stored.iter().enumerate() {
            created.push((first + i as u64, *h));
        }
        remember(&mut known, n, &stored);
    }
    let root = tlog_tiles::tree_hash(new_size, &Reader::Map(&known))?;
    Ok((created, root))
}

fn remember(map: &mut HashMap<u64, Hash>, n: u64, stored: &[Hash]) {
    let first = tlog_tiles::stored_hash_index(0, n);
    for (i, h) in stored.iter().enumerate() {
        map.insert(first + i as u64, *h);
    }
}

async fn insert_hashes(conn: &mut AnyConnection, hashes: &[(u64, Hash)], backend: Backend) -> Result<(), TlogError> {
    for chunk in hashes.chunks(CHUNK) {
        let sql = format!("INSERT INTO tlog_hashes (idx, hash) VALUES {}", rows_sql(chunk.len(), 2, backend));
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for (index, hash) in chunk {
            query = query.bind(as_i64(*index)).bind(hash.0.to_vec());
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

async fn insert_leaves(conn: &mut AnyConnection, leaves: &[NewLeaf], backend: Backend) -> Result<(), TlogError> {
    for chunk in leaves.chunks(CHUNK) {
        let sql = format!(
            "INSERT INTO tlog_leaves (leaf_index, request_id, host, salt, prev_leaf) VALUES {}",
            rows_sql(chunk.len(), 5, backend)
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for leaf in chunk {
            query = query
                .bind(as_i64(leaf.index))
                .bind(leaf.request_id.as_str())
                .bind(leaf.host.as_str())
                .bind(leaf.salt.as_str())
                .bind(leaf.prev.map(as_i64));
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

async fn update_host_heads(conn: &mut AnyConnection, leaves: &[NewLeaf], backend: Backend) -> Result<(), TlogError> {
    // The last leaf of each host in this batch becomes its head.
    let mut heads: HashMap<&str, u64> = HashMap::new();
    for leaf in leaves {
        heads.insert(leaf.host.as_str(), leaf.index);
    }
    let heads: Vec<(&str, u64)> = heads.into_iter().collect();
    for chunk in heads.chunks(CHUNK) {
        let sql = format!(
            "INSERT INTO tlog_host_heads (host, last_leaf) VALUES {} \
             ON CONFLICT (host) DO UPDATE SET last_leaf = excluded.last_leaf",
            rows_sql(chunk.len(), 2, backend)
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for (host, last) in chunk {
            query = query.bind(*host).bind(as_i64(*last));
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

async fn delete_pending(conn: &mut AnyConnection, pending: &[PendingRow], backend: Backend) -> Result<(), TlogError> {
    for chunk in pending.chunks(CHUNK) {
        let sql = format!("DELETE FROM tlog_pending WHERE id IN ({})", placeholders(chunk.len(), 1, backend));
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for row in chunk {
            query = query.bind(row.id);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// `(…), (…)` for `rows` rows of `columns` placeholders each.
fn rows_sql(rows: usize, columns: usize, backend: Backend) -> String {
    (0..rows)
        .map(|row| format!("({})", placeholders(columns, row * columns + 1, backend)))
        .collect::<Vec<_>>()
        .join(", ")
}

async fn fetch_hashes(
    conn: &mut AnyConnection,
    indexes: &[u64],
    backend: Backend,
) -> Result<HashMap<u64, Hash>, TlogError> {
    let mut found = HashMap::with_capacity(indexes.len());
    for chunk in indexes.chunks(CHUNK) {
        let sql = format!("SELECT idx, hash FROM tlog_hashes WHERE idx IN ({})", placeholders(chunk.len(), 1, backend));
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for index in chunk {
            query = query.bind(as_i64(*index));
        }
        for row in query.fetch_all(&mut *conn).await? {
            let index = as_u64(row.try_get("idx")?);
            let bytes: Vec<u8> = row.try_get("hash")?;
            let hash = bytes.try_into().map_err(|_| corrupt(format!("tlog_hashes {index} is not 32 bytes")))?;
            found.insert(index, Hash(hash));
        }
    }
    Ok(found)
}

/// Runs `compute` once to learn which stored hashes it reads, fetches those, and runs it again.
async fn twice<T>(
    conn: &mut AnyConnection,
    backend: Backend,
    known: &mut HashMap<u64, Hash>,
    compute: impl Fn(&Reader<'_>) -> Result<T, tlog_tiles::Error>,
) -> Result<T, TlogError> {
    let recorder = Reader::recording();
    compute(&recorder)?;
    let mut wanted = recorder.recorded();
    wanted.retain(|i| !known.contains_key(i));
    wanted.sort_unstable();
    wanted.dedup();
    known.extend(fetch_hashes(conn, &wanted, backend).await?);
    Ok(compute(&Reader::Map(known))?)
}

/// A [`HashReader`] that either records what is asked (answering zeros) or answers from a map.
enum Reader<'a> {
    Recording(RefCell<Vec<u64>>),
    Map(&'a HashMap<u64, Hash>),
}

impl Reader<'_> {
    fn recording() -> Self {
        Self::Recording(RefCell::new(Vec::new()))
    }

    fn recorded(self) -> Vec<u64> {
        match self {
            Self::Recording(indexes) => indexes.into_inner(),
            Self::Map(_) => Vec::new(),
        }
    }
}

impl HashReader for Reader<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
        match self {
            Self::Recording(seen) => {
                seen.borrow_mut().extend_from_slice(indexes);
                Ok(vec![Hash([0; 32]); indexes.len()])
            }
            Self::Map(map) => {
                indexes.iter().map(|i| map.get(i).copied().ok_or(tlog_tiles::Error::IndexesNotInTree)).collect()
            }
        }
    }
}

fn leaf_record_from_row(row: &AnyRow) -> Result<LeafRecord, TlogError> {
    Ok(LeafRecord {
        leaf_index: as_u64(row.try_get("leaf_index")?),
        prev_leaf_index: row.try_get::<Option<i64>, _>("prev_leaf")?.map(as_u64),
        salt: row.try_get("salt")?,
        record: crate::audit::store::record_from_row(row)?,
    })
}

fn missing_hash(index: u64) -> TlogError {
    corrupt(format!("stored hash {index} is missing"))
}

fn corrupt(what: String) -> TlogError {
    TlogError::Store(StoreError::Corrupt(what))
}

fn as_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn as_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;
    use sha2::{Digest, Sha256};

    /// RFC 6962 §2.1 MTH, written out directly: the reference the stored tree must agree with.
    fn reference_root(entries: &[Vec<u8>]) -> [u8; 32] {
        match entries.len() {
            0 => Sha256::digest(b"").into(),
            1 => Sha256::new().chain_update([0u8]).chain_update(&entries[0]).finalize().into(),
            n => {
                let split = n.next_power_of_two() / 2;
                let (left, right) = (reference_root(&entries[..split]), reference_root(&entries[split..]));
                Sha256::new().chain_update([1u8]).chain_update(left).chain_update(right).finalize().into()
            }
        }
    }

    /// A log in a SQLite file (an in-memory database is one connection, and the sequencer's
    /// connection leaves the pool).
    async fn log_of(signer: &NoteSigner) -> (Database, TlogStore, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Database::open(&format!("sqlite://{}", dir.path().join("t.db").display())).await.expect("db");
        let store = TlogStore::new(&db);
        store.ensure_log(signer, 0).await.expect("log");
        (db, store, dir)
    }

    fn record_json(n: u64) -> String {
        format!(r#"{{"request_id":"r{n}"}}"#)
    }

    fn pending(n: u64) -> PendingEntry {
        use base64::Engine as _;
        PendingEntry {
            request_id: format!("r{n}"),
            host: format!("h{}.example", n % 3),
            salt: base64::engine::general_purpose::STANDARD.encode([(n % 251) as u8; SALT_BYTES]),
            record_digest: leaf::record_digest(&record_json(n)),
        }
    }

    /// The entry bytes the log must have committed to for `pending(0..size)`, chained per host.
    fn expected_entries(size: u64) -> Vec<Vec<u8>> {
        let mut heads: HashMap<String, u64> = HashMap::new();
        (0..size)
            .map(|n| {
                let p = pending(n);
                let prev = heads.insert(p.host.clone(), n);
                let salt = leaf::decode_salt(&p.salt).expect("salt");
                leaf::entry_bytes(&salt, prev, &record_json(n))
            })
            .collect()
    }

    async fn append(db: &Database, store: &TlogStore, signer: &NoteSigner, from: u64, to: u64, max_batch: usize) {
        let entries: Vec<PendingEntry> = (from..to).map(pending).collect();
        store.enqueue(&entries).await.expect("pending");
        let mut conn = store.dedicated_connection().await.expect("conn");
        loop {
            let done = sequence_batch(&mut conn, db.backend, signer, max_batch, 1).await.expect("sequence");
            if done.appended == 0 {
                break;
            }
        }
    }

    #[tokio::test]
    async fn stored_trees_of_many_sizes_match_rfc6962_and_prove_every_leaf() {
        let signer = NoteSigner::new("test.example/log", SigningKey::from_bytes(&[3; 32])).expect("signer");
        let verifier = super::super::NoteVerifier::parse(&signer.verifier_key()).expect("verifier");
        let (db, store, _dir) = log_of(&signer).await;
        let mut size = 0;
        let mut previous: Option<TreeHead> = None;
        for target in [1u64, 2, 3, 7, 8, 9, 1000, 1025] {
            // Uneven batches, so appends cross subtree and tile boundaries mid-batch.
            append(&db, &store, &signer, size, target, 97).await;
            size = target;
            let head = store.head().await.expect("head").expect("log");
            assert_eq!(head.size, size);
            assert_eq!(head.root.0, reference_root(&expected_entries(size)), "root at size {size}");
            let text = verifier.verify(&head.checkpoint).expect("signed checkpoint");
            assert_eq!(text, checkpoint_text("test.example/log", size, &head.root));

            let leaves: Vec<u64> =
                if size > 20 { vec![0, 1, size / 2, size - 2, size - 1] } else { (0..size).collect() };
            let proofs = store.inclusion_proofs(size, &leaves).await.expect("proofs");
            let entries = expected_entries(size);
            for (n, proof) in leaves.iter().zip(&proofs) {
                let leaf_hash = tlog_tiles::record_hash(&entries[*n as usize]);
                tlog_tiles::check_record(proof, size, head.root, *n, leaf_hash).expect("inclusion");
                let wrong = tlog_tiles::record_hash(b"another entry");
                assert!(tlog_tiles::check_record(proof, size, head.root, *n, wrong).is_err());
            }
            if let Some(old) = previous {
                let proof = store.consistency_proof(old.size, size).await.expect("consistency");
                tlog_tiles::check_tree(&proof, size, head.root, old.size, old.root).expect("extends");
            }
            previous = Some(head);
        }
    }

    #[tokio::test]
    async fn tiles_hold_the_tree_hashes_and_only_what_exists() {
        let signer = NoteSigner::new("test.example/log", SigningKey::from_bytes(&[4; 32])).expect("signer");
        let (db, store, _dir) = log_of(&signer).await;
        append(&db, &store, &signer, 0, 300, 4096).await;
        let entries = expected_entries(300);
        let full = store.tile(0, 0, 256).await.expect("tile").expect("full tile exists");
        assert_eq!(full.len(), 256 * 32);
        assert_eq!(&full[32..64], tlog_tiles::record_hash(&entries[1]).0.as_slice());
        let partial = store.tile(0, 1, 44).await.expect("tile").expect("partial tile exists");
        assert_eq!(&partial[..32], tlog_tiles::record_hash(&entries[256]).0.as_slice());
        // Level 1 holds the hash of the first 256 leaves.
        let level1 = store.tile(1, 0, 1).await.expect("tile").expect("level-1 tile");
        assert_eq!(level1, reference_root(&entries[..256]).to_vec());
        assert_eq!(store.tile(0, 1, 45).await.expect("tile"), None, "beyond the tree");
        assert_eq!(store.tile(0, 2, 1).await.expect("tile"), None);
        assert_eq!(store.tile(7, u64::MAX, 256).await.expect("tile"), None);
    }

    #[tokio::test]
    async fn a_log_signed_by_another_key_is_refused_by_name() {
        let signer = NoteSigner::new("test.example/log", SigningKey::from_bytes(&[5; 32])).expect("signer");
        let (_db, store, _dir) = log_of(&signer).await;
        let stranger = NoteSigner::new("test.example/log", SigningKey::from_bytes(&[6; 32])).expect("signer");
        let error = store.ensure_log(&stranger, 0).await.expect_err("another key").to_string();
        assert!(error.contains("tlog.key_file") && error.contains(&signer.verifier_key()), "{error}");
        assert!(store.consistency_proof(0, 0).await.is_err());
        assert!(store.inclusion_proofs(0, &[0]).await.is_err());
    }
}

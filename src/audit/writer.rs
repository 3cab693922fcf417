//! The audit writer: one task that batches records into transactions (group commit).
//!
//! `sync` durability: [`AuditLog::record`] returns once the record's batch is committed; if the
//! commit fails, the caller learns it and answers `503` (fail closed), and the writer keeps
//! trying for later records, so service resumes by itself when the store is back. `async`
//! durability: records are queued (bounded); a full queue makes requests wait (back-pressure);
//! a failed batch is retried until it commits, so no record is ever dropped.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::{AuditRecord, AuditStore};
use crate::config::Durability;

/// Most records committed in one transaction.
const MAX_BATCH: usize = 1024;
/// Pause between retries of a failed commit.
const RETRY_PAUSE: Duration = Duration::from_millis(250);

/// The record could not be made durable; the request fails closed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the audit log is unavailable: {0}")]
pub struct AuditUnavailable(pub String);

struct Job {
    record: AuditRecord,
    /// `Some` in sync mode: told when the batch holding the record committed (or failed).
    committed: Option<oneshot::Sender<Result<(), AuditUnavailable>>>,
}

/// The sending side of the audit log, shared by every request.
#[derive(Debug, Clone)]
pub struct AuditLog {
    queue: mpsc::Sender<Job>,
    durability: Durability,
    failure: CommitFailure,
}

/// The error of the newest commit, while commits fail; readiness reports it.
#[derive(Debug, Clone, Default)]
struct CommitFailure(Arc<Mutex<Option<String>>>);

impl CommitFailure {
    fn set(&self, error: Option<String>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = error;
    }

    fn get(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

impl AuditLog {
    /// Starts the writer task; it ends once every `AuditLog` clone is dropped and the queue drained.
    pub fn start(store: AuditStore, durability: Durability, queue_size: usize) -> (Self, JoinHandle<()>) {
        let (queue, jobs) = mpsc::channel(queue_size.max(1));
        let failure = CommitFailure::default();
        let writer = tokio::spawn(write_batches(store, jobs, failure.clone()));
        (Self { queue, durability, failure }, writer)
    }

    /// Appends `record`; in `sync` mode, waits until it is committed.
    pub async fn record(&self, record: AuditRecord) -> Result<(), AuditUnavailable> {
        let closed = || AuditUnavailable("the audit writer has stopped".into());
        match self.durability {
            Durability::Async => self.queue.send(Job { record, committed: None }).await.map_err(|_| closed()),
            Durability::Sync => {
                let (committed, outcome) = oneshot::channel();
                self.queue.send(Job { record, committed: Some(committed) }).await.map_err(|_| closed())?;
                outcome.await.map_err(|_| closed())?
            }
        }
    }

    /// Why the newest commit failed, while commits fail (cleared by the next one that succeeds).
    pub fn commit_failure(&self) -> Option<String> {
        self.failure.get()
    }

    /// Clears the failure once a probe shows the store commits again (with no traffic, no
    /// batch would come to clear it).
    pub fn commits_again(&self) {
        self.failure.set(None);
    }

    /// Records waiting to be written.
    pub fn queue_depth(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }
}

async fn write_batches(store: AuditStore, mut jobs: mpsc::Receiver<Job>, failure: CommitFailure) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while jobs.recv_many(&mut batch, MAX_BATCH).await > 0 {
        metrics::gauge!("consentry_audit_queue_depth").set(jobs.len() as f64);
        metrics::histogram!("consentry_audit_batch_records").record(batch.len() as f64);
        commit_until_settled(&store, &mut batch, &failure).await;
        batch.clear();
    }
    store.close().await;
}

/// Commits `batch`. On failure, sync waiters are told at once (their requests fail closed) and
/// the async records are retried until they commit.
async fn commit_until_settled(store: &AuditStore, batch: &mut Vec<Job>, failure: &CommitFailure) {
    loop {
        let records: Vec<AuditRecord> = batch.iter().map(|job| job.record.clone()).collect();
        let started = Instant::now();
        match store.insert_batch(&records).await {
            Ok(()) => {
                failure.set(None);
                metrics::histogram!("consentry_audit_commit_seconds").record(started.elapsed().as_secs_f64());
                metrics::counter!("consentry_audit_records_total").increment(records.len() as u64);
                for job in batch.drain(..) {
                    if let Some(committed) = job.committed {
                        let _ = committed.send(Ok(()));
                    }
                }
                return;
            }
            Err(error) => {
                metrics::counter!("consentry_audit_store_errors_total").increment(1);
                tracing::error!(%error, records = records.len(), "audit commit failed");
                failure.set(Some(error.to_string()));
                let unavailable = AuditUnavailable(error.to_string());
                batch.retain_mut(|job| match job.committed.take() {
                    Some(committed) => {
                        let _ = committed.send(Err(unavailable.clone()));
                        false
                    }
                    None => true,
                });
                if batch.is_empty() {
                    return;
                }
                tokio::time::sleep(RETRY_PAUSE).await;
            }
        }
    }
}

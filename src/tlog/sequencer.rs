//! The sequencer: the one task per deployment that appends pending records to the tree and
//! signs each new head.
//!
//! Every node runs this task; exactly one of them sequences at a time. On SQLite that is the
//! single process (the node lock already refuses a second one). On PostgreSQL the leader is the
//! node whose dedicated connection holds a session advisory lock (`pg_try_advisory_lock`): if
//! the leader dies, its connection closes, the lock is released, and another node's next
//! attempt wins. The leader sequences on that same connection, so losing the connection loses
//! leadership and the transaction together. The state row is also updated with a compare on
//! the old size, so even two sequencers could never fork the tree.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::{AnyConnection, Connection as _, Row};
use tokio_util::sync::CancellationToken;

use super::note::NoteSigner;
use super::store::{self, TlogError, TlogStore};
use crate::storage::{Backend, now_ms};

/// Advisory lock key of the sequencer role on PostgreSQL ("CSTL").
const LEADER_LOCK_KEY: i64 = 0x4353_544C;
/// Pause after a failed attempt before trying again.
const RETRY_PAUSE: Duration = Duration::from_secs(1);

/// What the sequencer needs; cheap to clone.
#[derive(Clone)]
pub struct Sequencer {
    pub store: TlogStore,
    pub signer: Arc<NoteSigner>,
    pub interval: Duration,
    pub max_batch: usize,
}

impl Sequencer {
    /// Sequences until `stop` is cancelled, then drains what is pending once more if this node
    /// leads (so records written while the node drained its connections get a leaf now).
    pub async fn run(self, stop: CancellationToken) {
        metrics::gauge!("consentry_tlog_leader").set(0.0);
        while !stop.is_cancelled() {
            match self.lead(&stop).await {
                Ok(()) => {}
                Err(error) => {
                    metrics::counter!("consentry_tlog_sequencer_errors_total").increment(1);
                    tracing::error!(%error, "transparency log sequencer");
                }
            }
            metrics::gauge!("consentry_tlog_leader").set(0.0);
            tokio::select! {
                () = stop.cancelled() => {}
                () = tokio::time::sleep(self.interval.max(RETRY_PAUSE)) => {}
            }
        }
    }

    /// Tries to become the leader; as leader, sequences every interval until `stop` or an error.
    async fn lead(&self, stop: &CancellationToken) -> Result<(), TlogError> {
        let mut conn = self.store.dedicated_connection().await?;
        if !try_take_leadership(&mut conn, self.store.backend()).await? {
            let _ = conn.close().await;
            return Ok(());
        }
        tracing::info!(origin = self.signer.name(), "this node sequences the transparency log");
        metrics::gauge!("consentry_tlog_leader").set(1.0);
        let outcome = self.sequence_while_leading(&mut conn, stop).await;
        // Closing the session releases the advisory lock at once.
        let _ = conn.close().await;
        outcome
    }

    async fn sequence_while_leading(
        &self,
        conn: &mut AnyConnection,
        stop: &CancellationToken,
    ) -> Result<(), TlogError> {
        loop {
            self.drain(conn).await?;
            tokio::select! {
                () = stop.cancelled() => return self.drain(conn).await,
                () = tokio::time::sleep(self.interval) => {}
            }
        }
    }

    /// Sequences batches until nothing is pending.
    async fn drain(&self, conn: &mut AnyConnection) -> Result<(), TlogError> {
        loop {
            let started = Instant::now();
            let done =
                store::sequence_batch(conn, self.store.backend(), &self.signer, self.max_batch, now_ms()).await?;
            metrics::gauge!("consentry_tlog_tree_size").set(done.size as f64);
            if done.appended == 0 {
                return Ok(());
            }
            metrics::counter!("consentry_tlog_sequenced_total").increment(done.appended);
            metrics::histogram!("consentry_tlog_batch_seconds").record(started.elapsed().as_secs_f64());
            if done.appended < self.max_batch as u64 {
                return Ok(());
            }
        }
    }
}

async fn try_take_leadership(conn: &mut AnyConnection, backend: Backend) -> Result<bool, TlogError> {
    match backend {
        Backend::Sqlite => Ok(true),
        Backend::Postgres => {
            let row = sqlx::query("SELECT CAST(pg_try_advisory_lock($1) AS INTEGER) AS won")
                .bind(LEADER_LOCK_KEY)
                .fetch_one(&mut *conn)
                .await?;
            Ok(row.try_get::<i32, _>("won")? == 1)
        }
    }
}

//! The live registry of one node: the in-memory index kept in step with the database.
//!
//! At start the whole table is loaded (before the proxy accepts a request, so no request is
//! decided against a half-loaded registry). Afterwards the node follows `registry_changes`:
//! every `registry.sync_interval`, and at once after a write made by this process. Each change
//! names an entry id; the follower re-reads those entries and updates or removes them in the
//! index. A database outage leaves the index as it was (entries keep being honoured) and is
//! retried on the next tick.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::index::{RegistryIndex, RegistryMatch};
use super::store::{ListFilter, RegistryStore};
use crate::decide::{Effect, Finding, Source};
use crate::proxy::target::Target;
use crate::storage::StoreError;

/// Entries read per query while loading the whole table.
const LOAD_PAGE: u32 = 10_000;
/// Changes applied per round.
const CHANGES_PER_ROUND: u32 = 10_000;

/// The index, the store behind it, and how far this node has followed the change log.
#[derive(Debug)]
pub struct Registry {
    pub index: RegistryIndex,
    pub store: RegistryStore,
    applied_seq: AtomicI64,
    wake: Notify,
}

impl Registry {
    /// Loads every entry from the store.
    pub async fn load(store: RegistryStore) -> Result<Arc<Self>, StoreError> {
        let registry =
            Arc::new(Self { index: RegistryIndex::new(), store, applied_seq: AtomicI64::new(0), wake: Notify::new() });
        registry.reload().await?;
        Ok(registry)
    }

    /// Rebuilds the index from the whole table, without a moment where it is empty.
    async fn reload(&self) -> Result<(), StoreError> {
        // Changes after this point are replayed by the follower; replaying is idempotent.
        let head = self.store.head_seq().await?;
        let mut seen = HashSet::new();
        let mut filter = ListFilter { limit: Some(LOAD_PAGE), ..ListFilter::default() };
        loop {
            let page = self.store.list(&filter).await?;
            for entry in &page {
                self.index.upsert(entry);
                seen.insert(entry.id.clone());
            }
            match page.last() {
                Some(last) if page.len() == LOAD_PAGE as usize => filter.after_id = Some(last.id.clone()),
                _ => break,
            }
        }
        for id in self.index.ids() {
            if !seen.contains(&id) {
                self.index.remove(&id);
            }
        }
        self.applied_seq.store(head, Ordering::SeqCst);
        self.report();
        Ok(())
    }

    /// Tells the follower that this process just wrote to the registry.
    pub fn changed(&self) {
        self.wake.notify_one();
    }

    /// Applies the changes made since the last round; returns how many ids were touched.
    pub async fn catch_up(&self) -> Result<usize, StoreError> {
        let mut touched = 0;
        loop {
            let since = self.applied_seq.load(Ordering::SeqCst);
            let changes = self.store.changes_since(since, CHANGES_PER_ROUND).await?;
            if changes.pruned_through > since {
                tracing::info!(
                    since,
                    pruned_through = changes.pruned_through,
                    "registry change log pruned past us: reloading"
                );
                self.reload().await?;
                return Ok(touched);
            }
            if changes.ids.is_empty() {
                return Ok(touched);
            }
            let mut ids = changes.ids;
            ids.sort();
            ids.dedup();
            let present = self.store.get_many(&ids).await?;
            let present_ids: HashSet<&str> = present.iter().map(|e| e.id.as_str()).collect();
            for id in ids.iter().filter(|id| !present_ids.contains(id.as_str())) {
                self.index.remove(id);
            }
            for entry in &present {
                self.index.upsert(entry);
            }
            touched += ids.len();
            self.applied_seq.store(changes.last_seq, Ordering::SeqCst);
            self.report();
        }
    }

    /// Follows the change log until `shutdown`.
    pub async fn follow(self: Arc<Self>, interval: Duration, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(interval) => {}
            }
            match self.catch_up().await {
                Ok(0) => {}
                Ok(touched) => tracing::debug!(touched, "registry changes applied"),
                Err(error) => {
                    metrics::counter!("consentry_registry_sync_errors_total").increment(1);
                    tracing::warn!(%error, "cannot read registry changes; keeping the current index");
                }
            }
        }
    }

    fn report(&self) {
        metrics::gauge!("consentry_registry_entries").set(self.index.len() as f64);
        metrics::gauge!("consentry_registry_index_bytes").set(self.index.approx_bytes() as f64);
    }

    /// The registry's findings for a request target: one disallowing finding per matching entry.
    pub fn findings(&self, target: &Target) -> Vec<Finding> {
        if self.index.is_empty() {
            return Vec::new();
        }
        let matches = self.index.lookup(
            target.scheme.as_str(),
            &target.host_port.host,
            &target.authority(),
            &target.path_and_query,
        );
        matches.into_iter().map(finding).collect()
    }
}

fn finding(found: RegistryMatch) -> Finding {
    Finding {
        source: Source::Registry,
        effect: Effect::Disallow,
        purposes: found.purposes,
        rule: Some(found.pattern),
        line: None,
        evidence: Some(format!("registry entry {}", found.entry_id)),
        evidence_sha256: None,
        detail: Some(format!("objection filed by {} (source {})", found.creator, found.source)),
        entry_id: Some(found.entry_id),
        creator: Some(found.creator),
    }
}

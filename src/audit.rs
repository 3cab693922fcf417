//! Stage 8, record: every decision on a durable log.
//!
//! An [`AuditRecord`] is built for every request that reached a decision (allowed, blocked,
//! would-block, upstream error). The [`writer`] batches records into transactions (group commit);
//! with `storage.durability = "sync"` the crawler's answer waits for its record's commit, so
//! nothing a crawler received is missing after a crash. The [`store`] is SQLite (embedded
//! default) or PostgreSQL, one schema, one code path.

pub mod store;
pub mod writer;

use serde::{Deserialize, Serialize};

use crate::decide::{Decision, Effect, Mode, Purpose, Reason, Stage, Verdict};

pub use store::{AuditStore, Filter, Page, Stats, StoreError};
pub use writer::{AuditLog, AuditUnavailable};

/// One policy document a decision relied on, with the hash of the exact bytes evaluated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceHash {
    pub url: String,
    pub sha256: String,
}

/// The stored, queryable, verifiable record of one decision (DESIGN §5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub request_id: String,
    /// When the decision was taken, RFC 3339 UTC with milliseconds (derived from `time_ms`).
    pub time: String,
    /// Milliseconds since the Unix epoch.
    pub time_ms: i64,
    pub node: String,
    pub crawler: String,
    pub purposes: Vec<Purpose>,
    pub method: String,
    pub url: String,
    pub host: String,
    pub verdict: Verdict,
    /// `allow`, `block` or `would-block`: what the crawler was told.
    pub decision: String,
    pub stage: Stage,
    pub mode: Mode,
    pub reasons: Vec<Reason>,
    pub notes: Vec<String>,
    /// Status of the answer the crawler received.
    pub status: u16,
    /// Body bytes, when known when the record is written (`Content-Length`).
    pub bytes: Option<u64>,
    pub evidence: Vec<EvidenceHash>,
    pub duration_ms: f64,
}

impl AuditRecord {
    /// The record of `decision` for one request.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        request_id: &str,
        time_ms: i64,
        node: &str,
        crawler: &str,
        purposes: &[Purpose],
        method: &str,
        url: &str,
        host: &str,
        decision: &Decision,
        status: u16,
        bytes: Option<u64>,
        duration_ms: f64,
    ) -> Self {
        let mut evidence: Vec<EvidenceHash> = decision
            .reasons
            .iter()
            .filter_map(|r| Some(EvidenceHash { url: r.evidence.clone()?, sha256: r.evidence_sha256.clone()? }))
            .collect();
        evidence.dedup();
        Self {
            request_id: request_id.to_string(),
            time: rfc3339(time_ms),
            time_ms,
            node: node.to_string(),
            crawler: crawler.to_string(),
            purposes: purposes.to_vec(),
            method: method.to_string(),
            url: url.to_string(),
            host: host.to_string(),
            verdict: decision.verdict,
            decision: decision.header_value().to_string(),
            stage: decision.stage,
            mode: decision.mode,
            reasons: decision.reasons.clone(),
            notes: decision.notes.clone(),
            status,
            bytes,
            evidence,
            duration_ms,
        }
    }

    /// The sources of the disallowing reasons, e.g. `["robots"]`.
    pub fn blocking_sources(&self) -> Vec<&'static str> {
        let mut sources: Vec<&'static str> =
            self.reasons.iter().filter(|r| r.effect == Effect::Disallow).map(|r| r.source.as_str()).collect();
        sources.dedup();
        sources
    }
}

/// `time_ms` as RFC 3339 UTC with milliseconds.
pub fn rfc3339(time_ms: i64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(time_ms).unwrap_or(0));
    humantime::format_rfc3339_millis(at).to_string()
}

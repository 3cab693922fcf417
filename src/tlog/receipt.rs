//! Offline verification of receipts and of the log's growth.
//!
//! A creator downloads a *receipt* for their domain: the log's signed checkpoint and, for every
//! decision about one of the domain's hosts, the record, its salt, its predecessor in the host's
//! chain and its inclusion proof. [`verify_receipt`] checks it with nothing but the log's
//! verifier key; [`verify_consistency`] checks that a later checkpoint extends an earlier one,
//! so the operator cannot rewrite history between two downloads.
//!
//! Verification never stops at the first problem: the [`Report`] lists every check, so a
//! creator sees all that is wrong with a receipt at once. Nothing here panics on input:
//! sizes, indexes and proof lengths are validated before `tlog_tiles` sees them.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};
use tlog_tiles::{Checkpoint, EMPTY_HASH, Hash};

use super::leaf::{decode_hash, decode_salt, leaf_hash};
use super::note::NoteVerifier;

/// The `format` of every receipt this module understands.
pub const RECEIPT_FORMAT: &str = "consentry-receipt/v1";

/// An inclusion proof in a tree of at most 2⁶⁴ leaves has at most 64 hashes.
const MAX_INCLUSION_HASHES: usize = 64;

/// A consistency proof has at most two hashes per level.
const MAX_CONSISTENCY_HASHES: usize = 128;

/// What a creator downloads for their domain.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Receipt {
    pub format: String,
    pub domain: String,
    /// Start of the receipt's window, ms since the Unix epoch; `None` for the log's beginning.
    pub since: Option<i64>,
    /// End of the receipt's window, ms since the Unix epoch; `None` for the checkpoint.
    pub until: Option<i64>,
    /// The full signed note of a C2SP checkpoint.
    pub checkpoint: String,
    pub records: Vec<ReceiptRecord>,
}

/// One record of a receipt, with what it takes to recompute its leaf and prove it in the log.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ReceiptRecord {
    pub leaf_index: u64,
    /// Leaf of the previous record of the same host; part of the leaf hash.
    pub prev_leaf_index: Option<u64>,
    /// Base64 of the record's 32-byte salt.
    pub salt: String,
    /// The record's canonical JSON, hashed exactly as given.
    pub record: String,
    /// Base64 hashes of the RFC 6962 audit path, leaf side first.
    pub inclusion_proof: Vec<String>,
}

/// One line of a verification report: what was checked, and whether it held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub what: String,
    pub ok: bool,
    pub detail: String,
}

impl Check {
    fn new(what: impl Into<String>, outcome: Result<String, String>) -> Self {
        let (ok, detail) = match outcome {
            Ok(detail) => (true, detail),
            Err(detail) => (false, detail),
        };
        Self { what: what.into(), ok, detail }
    }
}

/// Every check of one verification, in the order they were made.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub checks: Vec<Check>,
}

impl Report {
    /// True when there is at least one check and every check held.
    pub fn ok(&self) -> bool {
        !self.checks.is_empty() && self.checks.iter().all(|check| check.ok)
    }

    /// The checks that did not hold.
    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|check| !check.ok)
    }
}

/// A parsed, signature-checked checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedCheckpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

// `tlog_tiles::Hash` compares its bytes but does not derive `Eq`; that equality is total.
impl Eq for VerifiedCheckpoint {}

/// Checks the checkpoint's signature by `verifier`, parses it, and checks that it is the
/// checkpoint of the log the key is named after.
pub fn verify_checkpoint(verifier: &NoteVerifier, note: &str) -> Result<VerifiedCheckpoint, String> {
    let text =
        verifier.verify(note).map_err(|e| format!("the checkpoint is not validly signed by the log's key: {e}"))?;
    let checkpoint = Checkpoint::from_bytes(text.as_bytes()).map_err(|_| {
        "the checkpoint's text is malformed: it must be an origin line, the tree size in decimal, \
         the base64 root hash and optional extension lines"
            .to_string()
    })?;
    if checkpoint.origin() != verifier.name() {
        return Err(format!(
            "the checkpoint is for log {}, but the key is that of log {}",
            checkpoint.origin(),
            verifier.name()
        ));
    }
    Ok(VerifiedCheckpoint {
        origin: checkpoint.origin().to_string(),
        size: checkpoint.size(),
        root: *checkpoint.hash(),
    })
}

/// Verifies every part of a receipt against the log's key; see the module documentation.
pub fn verify_receipt(verifier: &NoteVerifier, receipt: &Receipt) -> Report {
    let mut checks = vec![Check::new("format", check_format(receipt))];
    let checkpoint = verify_checkpoint(verifier, &receipt.checkpoint);
    checks.push(Check::new("checkpoint", checkpoint_detail(&checkpoint)));
    let trusted = checkpoint.ok();
    let mut hosts = Vec::with_capacity(receipt.records.len());
    for (position, record) in receipt.records.iter().enumerate() {
        let (record_checks, host) = check_record(position, record, &receipt.domain, trusted.as_ref());
        checks.extend(record_checks);
        hosts.push(host);
    }
    checks.push(Check::new("leaf order", check_leaf_order(&receipt.records)));
    checks.extend(chain_checks(receipt, &hosts));
    let summary = summarize(&checks, receipt, trusted.as_ref());
    checks.push(Check::new("summary", summary));
    Report { checks }
}

/// The host and inclusion checks of one record, and its normalized host when it is one of the
/// domain's (records of other domains' hosts have failed already: their chains are not ours).
fn check_record(
    position: usize,
    record: &ReceiptRecord,
    domain: &str,
    checkpoint: Option<&VerifiedCheckpoint>,
) -> ([Check; 2], Option<String>) {
    let fields = record_fields(&record.record);
    let label = record_label(position, record, fields.as_ref().ok());
    let host_outcome = check_host(&fields, domain);
    let host = host_outcome.is_ok().then_some(fields).and_then(Result::ok).map(|f| normalize_host(&f.host));
    let checks = [
        Check::new(format!("{label}: host"), host_outcome),
        Check::new(format!("{label}: inclusion"), check_inclusion(record, checkpoint)),
    ];
    (checks, host)
}

/// Verifies that the checkpoint `new_note` extends `old_note`, with the RFC 6962 consistency
/// proof `proof` (base64 hashes).
pub fn verify_consistency(verifier: &NoteVerifier, old_note: &str, new_note: &str, proof: &[String]) -> Report {
    let old = verify_checkpoint(verifier, old_note);
    let new = verify_checkpoint(verifier, new_note);
    let outcome = match (&old, &new) {
        (Ok(old), Ok(new)) => check_extension(old, new, proof),
        _ => Err("not checked: no trusted pair of checkpoints".to_string()),
    };
    let checks = vec![
        Check::new("old checkpoint", checkpoint_detail(&old)),
        Check::new("new checkpoint", checkpoint_detail(&new)),
        Check::new("consistency", outcome),
    ];
    Report { checks }
}

fn check_format(receipt: &Receipt) -> Result<String, String> {
    if receipt.format != RECEIPT_FORMAT {
        return Err(format!("the receipt's format is {:?}, not {RECEIPT_FORMAT:?}", receipt.format));
    }
    if receipt.domain.trim().is_empty() {
        return Err("the receipt names no domain".to_string());
    }
    Ok(format!("a {RECEIPT_FORMAT} receipt for {}", receipt.domain))
}

fn checkpoint_detail(checkpoint: &Result<VerifiedCheckpoint, String>) -> Result<String, String> {
    match checkpoint {
        Ok(cp) => Ok(format!("signed by {}: tree size {}, root {}", cp.origin, cp.size, cp.root)),
        Err(e) => Err(e.clone()),
    }
}

/// The fields of a record that the receipt's checks need.
struct RecordFields {
    request_id: String,
    host: String,
}

fn record_fields(record_json: &str) -> Result<RecordFields, String> {
    let value: serde_json::Value =
        serde_json::from_str(record_json).map_err(|e| format!("the record is not JSON: {e}"))?;
    let object = value.as_object().ok_or("the record is not a JSON object")?;
    let field = |name: &str| {
        object
            .get(name)
            .and_then(serde_json::Value::as_str)
            .map(str::to_string)
            .ok_or(format!("the record has no string field {name}"))
    };
    Ok(RecordFields { request_id: field("request_id")?, host: field("host")? })
}

/// "record 3 (leaf 12, request 0190…)": position counted from 1, as a person reads the list.
fn record_label(position: usize, record: &ReceiptRecord, fields: Option<&RecordFields>) -> String {
    match fields {
        Some(fields) => format!("record {} (leaf {}, request {})", position + 1, record.leaf_index, fields.request_id),
        None => format!("record {} (leaf {})", position + 1, record.leaf_index),
    }
}

/// Hosts compare case-insensitively and without a trailing root dot.
fn normalize_host(host: &str) -> String {
    host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase()
}

fn check_host(fields: &Result<RecordFields, String>, domain: &str) -> Result<String, String> {
    let fields = fields.as_ref().map_err(Clone::clone)?;
    let host = normalize_host(&fields.host);
    let wanted = normalize_host(domain);
    let belongs = !wanted.is_empty() && (host == wanted || host.ends_with(&format!(".{wanted}")));
    if belongs {
        Ok(format!("host {} belongs to {domain}", fields.host))
    } else {
        Err(format!("the record is for host {}, not for {domain}", fields.host))
    }
}

fn check_inclusion(record: &ReceiptRecord, checkpoint: Option<&VerifiedCheckpoint>) -> Result<String, String> {
    let checkpoint = checkpoint.ok_or("not checked: no trusted checkpoint")?;
    let salt = decode_salt(&record.salt).ok_or("the salt is not 32 bytes of base64")?;
    let proof = decode_proof(&record.inclusion_proof, MAX_INCLUSION_HASHES)?;
    if record.leaf_index >= checkpoint.size {
        return Err(format!("leaf {} is beyond the checkpoint's tree of size {}", record.leaf_index, checkpoint.size));
    }
    let leaf = leaf_hash(&salt, record.prev_leaf_index, &record.record);
    tlog_tiles::check_record(&proof, checkpoint.size, checkpoint.root, record.leaf_index, leaf).map_err(|_| {
        format!("not in the log at size {}: the record, its salt or its proof was altered", checkpoint.size)
    })?;
    Ok(format!("in the log at size {}", checkpoint.size))
}

fn decode_proof(hashes: &[String], max: usize) -> Result<Vec<Hash>, String> {
    if hashes.len() > max {
        return Err(format!("the proof has {} hashes, more than the {max} any tree needs", hashes.len()));
    }
    let decode = |(i, text): (usize, &String)| {
        decode_hash(text).ok_or(format!("proof hash {} is not a base64 SHA-256 hash", i + 1))
    };
    hashes.iter().enumerate().map(decode).collect()
}

fn check_leaf_order(records: &[ReceiptRecord]) -> Result<String, String> {
    let mut problems = Vec::new();
    for (position, pair) in records.windows(2).enumerate() {
        let (before, after) = (pair[0].leaf_index, pair[1].leaf_index);
        if after == before {
            problems.push(format!("leaf {after} appears twice (records {} and {})", position + 1, position + 2));
        } else if after < before {
            problems.push(format!("record {} (leaf {after}) comes after leaf {before}: out of order", position + 2));
        }
    }
    if problems.is_empty() {
        Ok(format!("{} leaf indexes, strictly increasing", records.len()))
    } else {
        Err(problems.join("; "))
    }
}

/// One check per host: its records, in leaf order, must form one unbroken `prev` chain.
fn chain_checks(receipt: &Receipt, hosts: &[Option<String>]) -> Vec<Check> {
    let mut by_host: BTreeMap<&str, Vec<&ReceiptRecord>> = BTreeMap::new();
    for (record, host) in receipt.records.iter().zip(hosts) {
        if let Some(host) = host {
            by_host.entry(host.as_str()).or_default().push(record);
        }
    }
    let all_leaves: HashSet<u64> = receipt.records.iter().map(|r| r.leaf_index).collect();
    let chain = Chain { since: receipt.since, all_leaves: &all_leaves };
    by_host
        .into_iter()
        .map(|(host, mut records)| {
            records.sort_by_key(|record| record.leaf_index);
            Check::new(format!("chain of host {host}"), chain.check(host, &records))
        })
        .collect()
}

/// What the chain check of every host needs to know about the whole receipt.
struct Chain<'a> {
    since: Option<i64>,
    all_leaves: &'a HashSet<u64>,
}

impl Chain<'_> {
    fn check(&self, host: &str, records: &[&ReceiptRecord]) -> Result<String, String> {
        let mut problems = Vec::new();
        let mut previous = None;
        for record in records {
            if let Some(problem) = self.link_problem(host, record, previous) {
                problems.push(problem);
            }
            previous = Some(record.leaf_index);
        }
        if problems.is_empty() {
            Ok(format!("{} records, each following the one before", records.len()))
        } else {
            Err(problems.join("; "))
        }
    }

    /// What is wrong with the link from `record` back to `previous`, the leaf of the host's
    /// previous record in the receipt. The link is part of the leaf hash, so the operator cannot
    /// fake it: a gap here is a record the receipt left out.
    fn link_problem(&self, host: &str, record: &ReceiptRecord, previous: Option<u64>) -> Option<String> {
        let leaf = record.leaf_index;
        match (record.prev_leaf_index, previous) {
            (Some(prev), _) if prev >= leaf => {
                Some(format!("record at leaf {leaf} names leaf {prev} as its predecessor, which is not earlier"))
            }
            (None, None) => None,
            // A window that starts mid-history begins with a record whose predecessor is older.
            (Some(_), None) if self.since.is_some() => None,
            (Some(prev), None) => Some(format!(
                "record at leaf {leaf} follows leaf {prev} of the same host, which is missing from the receipt"
            )),
            (Some(prev), Some(last)) if prev == last => None,
            (Some(prev), Some(_)) if !self.all_leaves.contains(&prev) => {
                Some(format!("leaf {prev}, a record of host {host}, is missing from the receipt: a record was dropped"))
            }
            (Some(prev), Some(last)) => Some(format!(
                "record at leaf {leaf} follows leaf {prev}, but host {host}'s previous record in the receipt \
                 is leaf {last}: the records do not form one chain"
            )),
            (None, Some(last)) => Some(format!(
                "record at leaf {leaf} claims to be host {host}'s first record, but leaf {last} of the same host \
                 precedes it"
            )),
        }
    }
}

fn summarize(checks: &[Check], receipt: &Receipt, checkpoint: Option<&VerifiedCheckpoint>) -> Result<String, String> {
    let failed = checks.iter().filter(|check| !check.ok).count();
    match checkpoint {
        Some(cp) if failed == 0 => Ok(format!(
            "{} records of {} verified against checkpoint size {}",
            receipt.records.len(),
            receipt.domain,
            cp.size
        )),
        _ => Err(format!(
            "{failed} of {} checks failed: the receipt does not prove the records of {}",
            checks.len(),
            receipt.domain
        )),
    }
}

fn check_extension(old: &VerifiedCheckpoint, new: &VerifiedCheckpoint, proof: &[String]) -> Result<String, String> {
    if old.origin != new.origin {
        return Err(format!("the checkpoints are of different logs: {} and {}", old.origin, new.origin));
    }
    if new.size < old.size {
        return Err(format!(
            "the new checkpoint is older: its tree has {} leaves, the old one's {}",
            new.size, old.size
        ));
    }
    if old.size == 0 && old.root != EMPTY_HASH {
        return Err("the old checkpoint claims an empty tree but its root is not the empty hash".to_string());
    }
    if old.size == new.size {
        return if old.root == new.root {
            Ok(format!("both checkpoints are of the same tree of size {}", new.size))
        } else {
            Err(format!("the log forked: two different trees of size {}", new.size))
        };
    }
    if old.size == 0 {
        return Ok("the empty tree is a prefix of every tree".to_string());
    }
    let proof = decode_proof(proof, MAX_CONSISTENCY_HASHES)?;
    // Sizes are validated above: 1 <= old.size < new.size, as check_tree requires.
    tlog_tiles::check_tree(&proof, new.size, new.root, old.size, old.root)
        .map_err(|_| "the new checkpoint does not extend the old one: the log was rewritten or forked".to_string())?;
    Ok(format!("the tree of size {} extends the tree of size {}", new.size, old.size))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::tlog::leaf::{SALT_BYTES, encode_hash, entry_bytes};
    use crate::tlog::note::NoteSigner;
    use ed25519_dalek::SigningKey;
    use tlog_tiles::{HashReader, prove_record, prove_tree, stored_hashes, tree_hash};

    const ORIGIN: &str = "log.consentry.example";
    const DOMAIN: &str = "example.org";

    /// Hosts of leaves 0..12: example.org's hosts interleave with others'.
    const HOSTS: [&str; 12] = [
        "a.example.org",
        "other.net",
        "example.org",
        "A.Example.org",
        "other.net",
        "example.org",
        "a.example.org",
        "x.com",
        "a.example.org",
        "example.org",
        "other.net",
        "a.example.org",
    ];

    /// Stored hashes of a tree, indexed as `tlog_tiles::stored_hash_index` lays them out.
    struct Storage(Vec<Hash>);

    impl HashReader for Storage {
        fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
            let read = |&i: &u64| self.0.get(usize::try_from(i).ok()?).copied();
            indexes.iter().map(read).collect::<Option<_>>().ok_or(tlog_tiles::Error::IndexesNotInTree)
        }
    }

    struct Leaf {
        host: String,
        salt: [u8; SALT_BYTES],
        prev: Option<u64>,
        record: String,
    }

    struct TestLog {
        leaves: Vec<Leaf>,
        storage: Storage,
    }

    impl TestLog {
        /// A log of `hosts`' records; `variant` changes every salt, so two variants are two
        /// different trees.
        fn new(hosts: &[&str], variant: u8) -> Self {
            let mut log = TestLog { leaves: Vec::new(), storage: Storage(Vec::new()) };
            for host in hosts {
                log.append(host, variant);
            }
            log
        }

        fn append(&mut self, host: &str, variant: u8) {
            let n = self.leaves.len() as u64;
            let prev = self.leaves.iter().rposition(|l| l.host.eq_ignore_ascii_case(host)).map(|p| p as u64);
            let record = format!(r#"{{"request_id":"req-{n}","host":"{host}","decision":"allow"}}"#);
            let salt = [n as u8 ^ variant.wrapping_mul(31); SALT_BYTES];
            let hashes = stored_hashes(n, &entry_bytes(&salt, prev, &record), &self.storage).unwrap();
            self.storage.0.extend(hashes);
            self.leaves.push(Leaf { host: host.to_string(), salt, prev, record });
        }

        fn root(&self, size: u64) -> Hash {
            tree_hash(size, &self.storage).unwrap()
        }

        fn checkpoint(&self, signer: &NoteSigner, size: u64) -> String {
            let text = Checkpoint::new(ORIGIN, size, self.root(size), "").unwrap().to_bytes();
            signer.sign(&String::from_utf8(text).unwrap()).unwrap()
        }

        fn receipt_record(&self, index: usize, size: u64) -> ReceiptRecord {
            let leaf = &self.leaves[index];
            let proof = prove_record(size, index as u64, &self.storage).unwrap();
            ReceiptRecord {
                leaf_index: index as u64,
                prev_leaf_index: leaf.prev,
                salt: base64::Engine::encode(&base64::engine::general_purpose::STANDARD, leaf.salt),
                record: leaf.record.clone(),
                inclusion_proof: proof.iter().map(encode_hash).collect(),
            }
        }

        fn receipt(&self, signer: &NoteSigner, domain: &str) -> Receipt {
            let size = self.leaves.len() as u64;
            let matches = |host: &str| {
                let host = host.to_ascii_lowercase();
                host == domain || host.ends_with(&format!(".{domain}"))
            };
            let records = (0..self.leaves.len())
                .filter(|&i| matches(&self.leaves[i].host))
                .map(|i| self.receipt_record(i, size))
                .collect();
            Receipt {
                format: RECEIPT_FORMAT.to_string(),
                domain: domain.to_string(),
                since: None,
                until: None,
                checkpoint: self.checkpoint(signer, size),
                records,
            }
        }

        fn consistency_proof(&self, new_size: u64, old_size: u64) -> Vec<String> {
            prove_tree(new_size, old_size, &self.storage).unwrap().iter().map(encode_hash).collect()
        }
    }

    fn log_signer(seed: u8) -> NoteSigner {
        NoteSigner::new(ORIGIN, SigningKey::from_bytes(&[seed; 32])).unwrap()
    }

    fn log_verifier() -> NoteVerifier {
        NoteVerifier::parse(&log_signer(1).verifier_key()).unwrap()
    }

    fn good_receipt() -> (TestLog, Receipt) {
        let log = TestLog::new(&HOSTS, 0);
        let receipt = log.receipt(&log_signer(1), DOMAIN);
        (log, receipt)
    }

    fn failures(report: &Report) -> Vec<(String, String)> {
        report.failures().map(|c| (c.what.clone(), c.detail.clone())).collect()
    }

    /// Asserts that the check named `what` failed with a detail containing `detail`.
    fn assert_failed(report: &Report, what: &str, detail: &str) {
        let found = report.failures().any(|c| c.what == what && c.detail.contains(detail));
        assert!(found, "expected {what:?} to fail with {detail:?}; failures: {:#?}", failures(report));
        assert!(!report.ok());
    }

    fn position_of(receipt: &Receipt, leaf: u64) -> usize {
        receipt.records.iter().position(|r| r.leaf_index == leaf).unwrap()
    }

    #[test]
    fn good_receipt_verifies() {
        let (_, receipt) = good_receipt();
        assert_eq!(receipt.records.len(), 8);
        let report = verify_receipt(&log_verifier(), &receipt);
        assert!(report.ok(), "{:#?}", failures(&report));
        let summary = report.checks.last().unwrap();
        assert_eq!(summary.what, "summary");
        assert_eq!(summary.detail, "8 records of example.org verified against checkpoint size 12");
        let whats: Vec<&str> = report.checks.iter().map(|c| c.what.as_str()).collect();
        assert_eq!(
            whats[..4],
            [
                "format",
                "checkpoint",
                "record 1 (leaf 0, request req-0): host",
                "record 1 (leaf 0, request req-0): inclusion"
            ]
        );
        assert!(whats.contains(&"chain of host a.example.org"));
        assert!(whats.contains(&"chain of host example.org"));
    }

    #[test]
    fn receipt_json_has_the_documented_field_names() {
        let (_, receipt) = good_receipt();
        let json = serde_json::to_value(&receipt).unwrap();
        let keys: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
        for key in ["format", "domain", "since", "until", "checkpoint", "records"] {
            assert!(keys.contains(&key), "{key}");
        }
        let record = json["records"][0].as_object().unwrap();
        for key in ["leaf_index", "prev_leaf_index", "salt", "record", "inclusion_proof"] {
            assert!(record.contains_key(key), "{key}");
        }
        let back: Receipt = serde_json::from_value(json).unwrap();
        assert_eq!(back, receipt);
    }

    #[test]
    fn edited_record_text_fails_inclusion() {
        let (_, mut receipt) = good_receipt();
        let i = position_of(&receipt, 5);
        receipt.records[i].record = receipt.records[i].record.replace("allow", "block");
        let report = verify_receipt(&log_verifier(), &receipt);
        assert_failed(
            &report,
            "record 4 (leaf 5, request req-5): inclusion",
            "not in the log at size 12: the record, its salt or its proof was altered",
        );
        assert_eq!(failures(&report).len(), 2, "{:#?}", failures(&report));
    }

    #[test]
    fn edited_salt_fails_inclusion() {
        let (_, mut receipt) = good_receipt();
        receipt.records[0].salt = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [0xaa; 32]);
        let report = verify_receipt(&log_verifier(), &receipt);
        assert_failed(&report, "record 1 (leaf 0, request req-0): inclusion", "not in the log at size 12");
        receipt.records[0].salt = "short".to_string();
        let report = verify_receipt(&log_verifier(), &receipt);
        assert_failed(&report, "record 1 (leaf 0, request req-0): inclusion", "the salt is not 32 bytes of base64");
    }

    #[test]
    fn wrong_leaf_index_fails_inclusion() {
        let (_, mut receipt) = good_receipt();
        let i = position_of(&receipt, 9);
        receipt.records[i].leaf_index = 10;
        let report = verify_receipt(&log_verifier(), &receipt);
        assert_failed(&report, "record 7 (leaf 10, request req-9): inclusion", "not in the log at size 12");
        receipt.records[i].leaf_index = 99;
        let report = verify_receipt(&log_verifier(), &receipt);
        assert_failed(
            &report,
            "record 7 (leaf 99, request req-9): inclusion",
            "leaf 99 is beyond the checkpoint's tree of size 12",
        );
    }

    #[test]
    fn garbage_proofs_fail_without_panicking() {
        let (_, mut receipt) = good_receipt();
        receipt.records[1].inclusion_proof[0] = "not a hash".to_string();
        receipt.records[2].inclusion_proof = vec![encode_hash(&EMPTY_HASH); 200];
        receipt.records[3].inclusion_proof.clear();
        let report = verify_receipt(&log_verifier(), &receipt);
        assert_failed(
            &report,
            "record 2 (leaf 2, request req-2): inclusion",
            "proof hash 1 is not a base64 SHA-256 hash",
        );
        assert_failed(&report, "record 3 (leaf 3, request req-3): inclusion", "more than the 64 any tree needs");
        assert_failed(&report, "record 4 (leaf 5, request req-5): inclusion", "not in the log at size 12");
    }

    #[test]
    fn dropped_middle_record_is_named() {
        let (_, mut receipt) = good_receipt();
        // a.example.org's records are at leaves 0, 3, 6, 8 and 11: drop leaf 6.
        receipt.records.remove(position_of(&receipt, 6));
        let report = verify_receipt(&log_verifier(), &receipt);
        assert_failed(
            &report,
            "chain of host a.example.org",
            "leaf 6, a record of host a.example.org, is missing from the receipt: a record was dropped",
        );
        assert_failed(&report, "summary", "the receipt does not prove the records of example.org");
    }

    #[test]
    fn dropped_first_record_is_named_unless_the_window_starts_later() {
        let (_, mut receipt) = good_receipt();
        receipt.records.remove(position_of(&receipt, 2));
        let report = verify_receipt(&log_verifier(), &receipt);
        assert_failed(
            &report,
            "chain of host example.org",
            "record at leaf 5 follows leaf 2 of the same host, which is missing from the receipt",
        );
        receipt.since = Some(1_700_000_000_000);
        let report = verify_receipt(&log_verifier(), &receipt);
        assert!(report.ok(), "{:#?}", failures(&report));
    }

    #[test]
    fn out_of_order_and_duplicate_leaves_are_named() {
        let (_, mut receipt) = good_receipt();
        receipt.records.swap(0, 1);
        let report = verify_receipt(&log_verifier(), &receipt);
        assert_failed(&report, "leaf order", "record 2 (leaf 0) comes after leaf 2: out of order");
        let (_, mut receipt) = good_receipt();
        let copy = receipt.records[1].clone();
        receipt.records.insert(1, copy);
        let report = verify_receipt(&log_verifier(), &receipt);
        assert_failed(&report, "leaf order", "leaf 2 appears twice (records 2 and 3)");
    }

    #[test]
    fn record_of_another_domain_is_named() {
        let (log, mut receipt) = good_receipt();
        let other = log.receipt_record(4, 12);
        receipt.records.insert(position_of(&receipt, 5), other);
        let report = verify_receipt(&log_verifier(), &receipt);
        assert_failed(
            &report,
            "record 4 (leaf 4, request req-4): host",
            "the record is for host other.net, not for example.org",
        );
        assert_eq!(failures(&report).len(), 2, "{:#?}", failures(&report));
    }

    #[test]
    fn suffix_without_a_dot_is_another_domain() {
        let log = TestLog::new(&["badexample.org", "example.org"], 0);
        let mut receipt = log.receipt(&log_signer(1), DOMAIN);
        receipt.records.insert(0, log.receipt_record(0, 2));
        let report = verify_receipt(&log_verifier(), &receipt);
        assert_failed(
            &report,
            "record 1 (leaf 0, request req-0): host",
            "the record is for host badexample.org, not for example.org",
        );
    }

    #[test]
    fn unparsable_record_and_wrong_format_are_named() {
        let (_, mut receipt) = good_receipt();
        receipt.format = "consentry-receipt/v0".to_string();
        receipt.records[0].record = "[1,2]".to_string();
        let report = verify_receipt(&log_verifier(), &receipt);
        assert_failed(&report, "format", "not \"consentry-receipt/v1\"");
        assert_failed(&report, "record 1 (leaf 0): host", "the record is not a JSON object");
        assert_failed(&report, "record 1 (leaf 0): inclusion", "not in the log at size 12");
    }

    #[test]
    fn checkpoint_signed_by_another_key_fails_every_record() {
        let log = TestLog::new(&HOSTS, 0);
        let receipt = log.receipt(&log_signer(2), DOMAIN);
        let report = verify_receipt(&log_verifier(), &receipt);
        assert_failed(&report, "checkpoint", "signed by another key");
        let skipped = report.failures().filter(|c| c.detail == "not checked: no trusted checkpoint").count();
        assert_eq!(skipped, receipt.records.len());
    }

    #[test]
    fn checkpoint_of_a_forked_tree_fails_inclusion() {
        let (_, mut receipt) = good_receipt();
        let fork = TestLog::new(&HOSTS, 1);
        receipt.checkpoint = fork.checkpoint(&log_signer(1), 12);
        let report = verify_receipt(&log_verifier(), &receipt);
        assert!(report.checks[1].ok, "the fork's checkpoint is validly signed");
        let altered = report.failures().filter(|c| c.detail.contains("not in the log at size 12")).count();
        assert_eq!(altered, receipt.records.len());
    }

    #[test]
    fn checkpoint_errors_are_specific() {
        let log = TestLog::new(&HOSTS, 0);
        let verifier = log_verifier();
        let good = verify_checkpoint(&verifier, &log.checkpoint(&log_signer(1), 12)).unwrap();
        assert_eq!(good, VerifiedCheckpoint { origin: ORIGIN.to_string(), size: 12, root: log.root(12) });
        let other_log = NoteSigner::new("other.example/log", SigningKey::from_bytes(&[1; 32])).unwrap();
        let text =
            String::from_utf8(Checkpoint::new("other.example/log", 1, EMPTY_HASH, "").unwrap().to_bytes()).unwrap();
        let other = verify_checkpoint(
            &NoteVerifier::parse(&other_log.verifier_key()).unwrap(),
            &other_log.sign(&text).unwrap(),
        );
        assert_eq!(other.unwrap().origin, "other.example/log");
        let mismatched = log_signer(1).sign(&text).unwrap();
        let err = verify_checkpoint(&verifier, &mismatched).unwrap_err();
        assert!(err.contains("the checkpoint is for log other.example/log"), "{err}");
        let err = verify_checkpoint(&verifier, &log_signer(1).sign("not a checkpoint\n").unwrap()).unwrap_err();
        assert!(err.contains("the checkpoint's text is malformed"), "{err}");
        let err = verify_checkpoint(&verifier, "garbage").unwrap_err();
        assert!(err.contains("not validly signed"), "{err}");
    }

    #[test]
    fn consistency_of_a_good_extension() {
        let log = TestLog::new(&HOSTS, 0);
        let signer = log_signer(1);
        for old_size in 1..=12 {
            let report = verify_consistency(
                &log_verifier(),
                &log.checkpoint(&signer, old_size),
                &log.checkpoint(&signer, 12),
                &log.consistency_proof(12, old_size),
            );
            assert!(report.ok(), "{old_size}: {:#?}", failures(&report));
        }
        let empty = log.checkpoint(&signer, 0);
        let report = verify_consistency(&log_verifier(), &empty, &log.checkpoint(&signer, 5), &[]);
        assert!(report.ok(), "{:#?}", failures(&report));
    }

    #[test]
    fn consistency_detects_a_fork_at_equal_size() {
        let log = TestLog::new(&HOSTS, 0);
        let fork = TestLog::new(&HOSTS, 1);
        let signer = log_signer(1);
        let report =
            verify_consistency(&log_verifier(), &log.checkpoint(&signer, 12), &fork.checkpoint(&signer, 12), &[]);
        assert_failed(&report, "consistency", "the log forked: two different trees of size 12");
    }

    #[test]
    fn consistency_detects_rewritten_history() {
        let log = TestLog::new(&HOSTS, 0);
        let fork = TestLog::new(&HOSTS, 1);
        let signer = log_signer(1);
        let report = verify_consistency(
            &log_verifier(),
            &fork.checkpoint(&signer, 5),
            &log.checkpoint(&signer, 12),
            &log.consistency_proof(12, 5),
        );
        assert_failed(
            &report,
            "consistency",
            "the new checkpoint does not extend the old one: the log was rewritten or forked",
        );
        let garbage = vec!["!".to_string(); 3];
        let report =
            verify_consistency(&log_verifier(), &log.checkpoint(&signer, 5), &log.checkpoint(&signer, 12), &garbage);
        assert_failed(&report, "consistency", "proof hash 1 is not a base64 SHA-256 hash");
    }

    #[test]
    fn consistency_detects_an_older_new_checkpoint() {
        let log = TestLog::new(&HOSTS, 0);
        let signer = log_signer(1);
        let report =
            verify_consistency(&log_verifier(), &log.checkpoint(&signer, 12), &log.checkpoint(&signer, 5), &[]);
        assert_failed(&report, "consistency", "the new checkpoint is older");
    }

    #[test]
    fn consistency_with_untrusted_checkpoints_is_not_checked() {
        let log = TestLog::new(&HOSTS, 0);
        let report = verify_consistency(
            &log_verifier(),
            &log.checkpoint(&log_signer(2), 5),
            &log.checkpoint(&log_signer(1), 12),
            &log.consistency_proof(12, 5),
        );
        assert_failed(&report, "old checkpoint", "signed by another key");
        assert_failed(&report, "consistency", "not checked");
    }

    #[test]
    fn empty_tree_with_a_bogus_root_is_not_a_prefix() {
        let signer = log_signer(1);
        let text = String::from_utf8(Checkpoint::new(ORIGIN, 0, Hash([1; 32]), "").unwrap().to_bytes()).unwrap();
        let log = TestLog::new(&HOSTS, 0);
        let report =
            verify_consistency(&log_verifier(), &signer.sign(&text).unwrap(), &log.checkpoint(&signer, 12), &[]);
        assert_failed(&report, "consistency", "not the empty hash");
    }
}

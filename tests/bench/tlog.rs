//! Transparency-log benchmarks: sequencing throughput (records appended and signed per
//! second, in batches of 4096 and of 1), and proof generation in a tree of 10^6 leaves
//! (`BENCH_TLOG_LEAVES` to change), all against SQLite in a temp dir, as a node runs by default.
//!
//! `cargo bench --bench tlog`

use std::time::{Duration, Instant};

use consentry::storage::Database;
use consentry::tlog::NoteSigner;
use consentry::tlog::store::{PendingEntry, TlogStore, sequence_batch};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ed25519_dalek::SigningKey;

fn entries(from: u64, count: u64) -> Vec<PendingEntry> {
    (from..from + count)
        .map(|n| PendingEntry {
            request_id: format!("01900000-0000-7000-8000-{n:012}"),
            host: format!("host{}.example", n % 1000),
            salt: "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".into(),
            record_digest: consentry::tlog::leaf::record_digest(&format!("record {n}")),
        })
        .collect()
}

struct Log {
    _dir: tempfile::TempDir,
    store: TlogStore,
    signer: NoteSigner,
    size: u64,
}

impl Log {
    async fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Database::open(&format!("sqlite://{}", dir.path().join("bench.db").display())).await.expect("db");
        let store = TlogStore::new(&db);
        let signer = NoteSigner::new("bench.example/log", SigningKey::from_bytes(&[7; 32])).expect("signer");
        store.ensure_log(&signer, 0).await.expect("log");
        Self { _dir: dir, store, signer, size: 0 }
    }

    /// Queues `count` records (not timed) and sequences them; returns the sequencing time.
    async fn append(&mut self, count: u64, max_batch: usize) -> Duration {
        self.store.enqueue(&entries(self.size, count)).await.expect("enqueue");
        let mut conn = self.store.dedicated_connection().await.expect("conn");
        let started = Instant::now();
        let mut left = count;
        while left > 0 {
            let done = sequence_batch(&mut conn, self.store.backend(), &self.signer, max_batch, 0).await.expect("seq");
            left -= done.appended;
        }
        self.size += count;
        started.elapsed()
    }
}

fn sequencing(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let mut log = runtime.block_on(Log::new());
    runtime.block_on(log.append(10_000, 4096));
    let mut group = c.benchmark_group("tlog_sequence");
    group.sample_size(20);
    for batch in [1u64, 4096] {
        group.throughput(Throughput::Elements(batch));
        group.bench_function(BenchmarkId::from_parameter(batch), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += runtime.block_on(log.append(batch, 4096));
                }
                total
            });
        });
    }
    group.finish();
}

fn proofs(c: &mut Criterion) {
    let leaves: u64 = std::env::var("BENCH_TLOG_LEAVES").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let mut log = runtime.block_on(Log::new());
    let started = Instant::now();
    let mut building = Duration::ZERO;
    while log.size < leaves {
        let chunk = (leaves - log.size).min(40_960);
        building += runtime.block_on(log.append(chunk, 4096));
    }
    eprintln!(
        "built a tree of {leaves} leaves in {:.1}s ({:.0} records/s sequenced)",
        started.elapsed().as_secs_f64(),
        leaves as f64 / building.as_secs_f64()
    );
    let mut group = c.benchmark_group(format!("tlog_prove_{leaves}"));
    let mut n = 0u64;
    group.bench_function("inclusion", |b| {
        b.iter(|| {
            n = (n + 7919) % leaves;
            runtime.block_on(log.store.inclusion_proofs(leaves, &[n])).expect("proof")
        });
    });
    group.bench_function("inclusion_100_records", |b| {
        b.iter(|| {
            let batch: Vec<u64> = (0..100).map(|i| (n + i * 9973) % leaves).collect();
            n = (n + 1) % leaves;
            runtime.block_on(log.store.inclusion_proofs(leaves, &batch)).expect("proofs")
        });
    });
    group.bench_function("consistency", |b| {
        b.iter(|| {
            n = (n + 7919) % leaves;
            runtime.block_on(log.store.consistency_proof(n.max(1), leaves)).expect("proof")
        });
    });
    group.bench_function("tile_level0", |b| {
        b.iter(|| {
            n = (n + 7919) % (leaves / 256);
            runtime.block_on(log.store.tile(0, n, 256)).expect("tile")
        });
    });
    group.finish();
}

criterion_group!(benches, sequencing, proofs);
criterion_main!(benches);

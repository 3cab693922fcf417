//! How many records per second the audit store commits, in the writer's batch sizes, on SQLite
//! (WAL, synchronous=FULL) and, when `CONSENTRY_BENCH_PG` is set (e.g.
//! `postgres://postgres@127.0.0.1:5432/postgres`), on PostgreSQL in a database of its own.
//!
//! `cargo bench --bench audit -- --warm-up-time 1 --measurement-time 5`

use std::time::{SystemTime, UNIX_EPOCH};

use consentry::audit::{AuditRecord, AuditStore};
use consentry::decide::{Crawler, Effect, Evidence, Finding, Mode, Purpose, Source, Stage, decide};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

fn records(batch: usize, round: &mut u64) -> Vec<AuditRecord> {
    let finding = Finding {
        source: Source::Robots,
        effect: Effect::Disallow,
        purposes: Vec::new(),
        rule: Some("Disallow: /private".into()),
        line: Some(3),
        evidence: Some("https://news.example/robots.txt".into()),
        evidence_sha256: Some("ab".repeat(32)),
        detail: Some("token AcmeBot; group User-agent: * (line 1); fetched (200), age 3s".into()),
        entry_id: None,
        creator: None,
    };
    let crawler = Crawler { name: "acme", purposes: &[Purpose::AiTrain], mode: Mode::Enforce };
    let decision = decide(&crawler, &Evidence { findings: vec![finding], notes: Vec::new() }, Stage::Request);
    let now = i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis())).unwrap_or(0);
    *round += 1;
    (0..batch)
        .map(|i| {
            let id = format!("bench-{round}-{i}-{}", uuid::Uuid::now_v7());
            let url = format!("https://news.example/private/{i}");
            let purposes = [Purpose::AiTrain];
            AuditRecord::new(
                &id,
                now,
                "bench",
                "acme",
                &purposes,
                "GET",
                &url,
                "news.example",
                &decision,
                451,
                None,
                0.4,
            )
        })
        .collect()
}

fn commit(c: &mut Criterion, name: &str, url: &str) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let store = runtime.block_on(AuditStore::open(url)).expect("store");
    let mut group = c.benchmark_group(format!("audit-commit/{name}"));
    let mut round = 0;
    for batch in [1usize, 64, 1024] {
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_with_input(BenchmarkId::from_parameter(batch), &batch, |b, &batch| {
            b.iter_batched(
                || records(batch, &mut round),
                |records| runtime.block_on(store.insert_batch(&records)).expect("commit"),
                criterion::BatchSize::SmallInput,
            )
        });
    }
    group.finish();
    runtime.block_on(store.close());
}

fn sqlite(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    commit(c, "sqlite", &format!("sqlite://{}/bench.db", dir.path().display()));
}

fn postgres(c: &mut Criterion) {
    let Ok(admin_url) = std::env::var("CONSENTRY_BENCH_PG") else { return };
    let name = format!("consentry_bench_{}", uuid::Uuid::now_v7().simple());
    let psql = |sql: String| {
        let _ = std::process::Command::new("psql").args(["-q", &admin_url, "-c", &sql]).status();
    };
    psql(format!("CREATE DATABASE {name}"));
    let base = admin_url.rsplit_once('/').map_or(admin_url.as_str(), |(base, _)| base);
    commit(c, "postgres", &format!("{base}/{name}"));
    psql(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
}

criterion_group!(benches, sqlite, postgres);
criterion_main!(benches);

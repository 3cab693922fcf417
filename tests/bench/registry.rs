//! Registry index benchmarks: one lookup (every proxied request makes one) with 10k and 1M
//! synthetic entries loaded, for a host the index does not know, a whole-domain entry, a
//! subdomain under a path pattern and an exact URL; and the memory the index takes per entry,
//! both as estimated by `approx_bytes` and as the process's resident-set growth.
//! Budget: at most 1 µs per lookup at 1M entries, matching or not.
//!
//! Import throughput: parsing and validating a JSON Lines file, and writing the entries to the
//! store (SQLite in a temp dir, one transaction, the change log included), in entries/s.
//!
//! `cargo bench --bench registry -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::time::Instant;

use consentry::decide::Purpose;
use consentry::registry::{Entry, EntryTarget, RegistryIndex, RegistryStore, import};
use consentry::storage::Database;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// Distinct requests per kind, cycled through so that a lookup does not always hit the same
/// (cache-hot) map slot.
const SPREAD: usize = 256;

const PATH_SETS: [&str; 3] = ["/private/*", "/drafts/", "*.pdf$"];

/// Synthetic entry `i`. Per ten entries: three exact URLs on one image host (30%), two
/// whole-domain entries (one with subdomains), two entries with subdomains and 1–3 path patterns,
/// and three entries sharing one domain (whole, one path, two paths).
fn synthetic(i: usize) -> Entry {
    let group = i / 10;
    let domain = |domain: String, include_subdomains: bool, paths: &[&str]| EntryTarget::Domain {
        domain,
        include_subdomains,
        paths: paths.iter().map(|p| p.to_string()).collect(),
    };
    let target = match i % 10 {
        k @ 0..=2 => EntryTarget::Url { url: format!("https://{}/{k}/photo-{i}.jpg", image_host(group)) },
        3 => domain(format!("site{i}.com"), false, &[]),
        4 => domain(format!("site{i}.com"), true, &[]),
        5 | 6 => domain(format!("blog{i}.org"), true, &PATH_SETS[..=i % 3]),
        7 => domain(format!("shared{group}.net"), true, &[]),
        8 => domain(format!("shared{group}.net"), true, &["/members/*"]),
        _ => domain(format!("shared{group}.net"), false, &["/*.jpg$", "/photos/"]),
    };
    Entry {
        id: format!("entry-{i:08}"),
        creator: format!("Creator {}", i % 5_000),
        contact: String::new(),
        target,
        purposes: vec![Purpose::AiInput, Purpose::AiTrain, Purpose::Tdm],
        source: "import".into(),
        created_ms: 0,
        updated_ms: 0,
    }
}

fn image_host(group: usize) -> String {
    format!("img{group}.cdn{}.net", group % 64)
}

fn resident_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    statm.split_whitespace().nth(1).and_then(|pages| pages.parse::<usize>().ok()).unwrap_or(0) * 4096
}

fn filled(n: usize) -> RegistryIndex {
    let index = RegistryIndex::new();
    for i in 0..n {
        index.upsert(&synthetic(i));
    }
    index
}

/// `(scheme, host, authority, path)` requests of one kind, spread over the index.
type Request = (&'static str, String, String, String);

fn requests(n: usize, kind: &str) -> Vec<Request> {
    let groups = n / 10;
    (0..SPREAD)
        .map(|j| {
            let group = (j * 7_919 + 13) % groups;
            let (host, path) = match kind {
                "miss" => (format!("www.nothere{j}.example"), "/index.html".to_string()),
                "domain" => (format!("site{}.com", group * 10 + 3), "/about/team".to_string()),
                "subdomain_path" => (format!("www.blog{}.org", group * 10 + 5), "/private/2024/notes.html".to_string()),
                _ => (image_host(group), format!("/0/photo-{}.jpg", group * 10)),
            };
            ("https", host.clone(), host, path)
        })
        .collect()
}

fn bench_size(c: &mut Criterion, label: &str, n: usize) {
    let rss_before = resident_bytes();
    let started = Instant::now();
    let index = filled(n);
    let built = started.elapsed();
    let rss_after = resident_bytes();
    let entries = index.len();
    eprintln!(
        "registry {label}: {entries} entries built in {built:.2?}; approx_bytes {} ({} B/entry); RSS growth {} ({} B/entry)",
        index.approx_bytes(),
        index.approx_bytes() / entries.max(1),
        rss_after.saturating_sub(rss_before),
        rss_after.saturating_sub(rss_before) / entries.max(1),
    );

    let mut group = c.benchmark_group(format!("registry_lookup/{label}"));
    for (kind, want) in [("miss", 0), ("domain", 1), ("subdomain_path", 1), ("url", 1)] {
        let requests = requests(n, kind);
        for (scheme, host, authority, path) in &requests {
            let found = index.lookup(scheme, host, authority, path);
            assert_eq!(found.len(), want, "{kind}: {host}{path} -> {found:?}");
        }
        let mut i = 0;
        group.bench_function(kind, |b| {
            b.iter(|| {
                i = (i + 1) % requests.len();
                let (scheme, host, authority, path) = &requests[i];
                black_box(index.lookup(black_box(scheme), black_box(host), black_box(authority), black_box(path)))
            })
        });
    }
    group.finish();
}

fn lookups(c: &mut Criterion) {
    bench_size(c, "10k", 10_000);
    bench_size(c, "1m", 1_000_000);
}

/// 10,000 JSON Lines, the shape `consentry registry import` reads.
fn import_file(n: usize) -> String {
    (0..n)
        .map(|i| {
            let entry = synthetic(i);
            let mut line = serde_json::json!({ "id": entry.id, "creator": entry.creator, "purposes": ["ai-train"] });
            match entry.target {
                EntryTarget::Url { url } => line["url"] = url.into(),
                EntryTarget::Domain { domain, include_subdomains, paths } => {
                    line["domain"] = domain.into();
                    line["include_subdomains"] = include_subdomains.into();
                    line["paths"] = paths.into();
                }
            }
            line.to_string() + "\n"
        })
        .collect()
}

fn imports(c: &mut Criterion) {
    const N: usize = 10_000;
    let text = import_file(N);
    let mut group = c.benchmark_group("registry_import");
    group.throughput(Throughput::Elements(N as u64));
    group.sample_size(10);
    group.bench_function("parse_validate_10k", |b| {
        b.iter(|| {
            let parsed = import::parse(black_box(&text), import::Format::JsonLines).expect("valid");
            assert_eq!(parsed.len(), N);
        })
    });
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/registry.db", dir.path().display());
    let store = RegistryStore::new(&runtime.block_on(Database::open(&url)).expect("database"));
    let entries: Vec<Entry> = import::parse(&text, import::Format::JsonLines)
        .expect("valid")
        .into_iter()
        .map(|(_, valid)| valid.into_entry(String::new, "import", 1))
        .collect();
    group.bench_function("store_upsert_10k_sqlite", |b| {
        b.iter(|| runtime.block_on(store.upsert(black_box(&entries), 1)).expect("upsert"))
    });
    group.finish();
}

criterion_group!(benches, lookups, imports);
criterion_main!(benches);

//! robots.txt matcher benchmarks: decision time with compiled rules on a small (~400 B) and a
//! large (100+ KB, many groups, long rule lists with wildcards) file, compile time per KiB, and
//! the `robotstxt` crate's own matcher (which re-parses the file on every call) for comparison.
//! Budget (DESIGN.md §7): a decision in at most 2 µs, flat in file size.
//!
//! `cargo bench --bench robots -- --warm-up-time 1 --measurement-time 3`

use std::fmt::Write as _;
use std::hint::black_box;

use consentry::signals::robots::{DEFAULT_MAX_BYTES, RobotsTxt};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use robotstxt::DefaultMatcher;

const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/examples/");

const SMALL: &str = "# robots.txt for www.example-news.com
User-agent: *
Disallow: /search
Disallow: /account/
Disallow: /*?utm_
Disallow: /*.pdf$
Allow: /search/about
Crawl-delay: 2

User-agent: GPTBot
User-agent: CCBot
User-agent: Google-Extended
Disallow: /

User-agent: Googlebot
Disallow: /drafts/
Allow: /

Content-Usage: train-ai=n
Sitemap: https://www.example-news.com/sitemap.xml
";

/// Request targets of a news site: articles, sections, queries, assets; some allowed, some not.
const PATHS: [&str; 12] = [
    "/",
    "/news/world/2024/03/17/election-results-live-updates",
    "/sport/football/2023/11/02/match-report?utm_source=feed&utm_medium=rss",
    "/business/2025/01/09/markets-rally/print",
    "/search?q=climate+change&page=2",
    "/account/settings",
    "/static/reports/annual-report-2024.pdf",
    "/culture/film/2022/07/21/review-a-long-title-with-many-words-in-it",
    "/video/tech/2026/05/05/%E3%83%84-interview",
    "/opinion/2021/12/31/columnist-year-in-review?share=twitter",
    "/amp/politics/2020/10/10/debate",
    "/robots.txt",
];

const SECTIONS: [&str; 24] = [
    "news",
    "world",
    "uk",
    "us",
    "politics",
    "business",
    "money",
    "sport",
    "football",
    "tech",
    "science",
    "health",
    "culture",
    "film",
    "music",
    "books",
    "opinion",
    "video",
    "live",
    "travel",
    "food",
    "style",
    "education",
    "weather",
];

/// A deterministic pseudo-random sequence (no `rand` in benches: the file must be the same on
/// every run).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, bound: usize) -> usize {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        usize::try_from((self.0 >> 33) % bound as u64).unwrap_or(0)
    }
}

/// One synthetic news-site rule: section/date trees, print and AMP variants, tracking and share
/// queries, file types, API endpoints.
fn news_rule(rng: &mut Lcg) -> String {
    let section = SECTIONS[rng.below(SECTIONS.len())];
    let year = 2005 + rng.below(22);
    let month = 1 + rng.below(12);
    let id = rng.below(1_000_000);
    match rng.below(12) {
        0 => format!("Disallow: /{section}/{year}/{month:02}/*/print$"),
        1 => format!("Disallow: /{section}/*?share="),
        2 => format!("Allow: /{section}/{year}/{month:02}/"),
        3 => format!("Disallow: /amp/{section}/{year}/"),
        4 => format!("Disallow: /api/v{}/{section}/{id}", 1 + rng.below(3)),
        5 => format!("Disallow: /*?{section}_ref={id}"),
        6 => format!("Disallow: /{section}/tag/{id}-*$"),
        7 => format!("Allow: /{section}/{year}/{month:02}/{id}-*.html$"),
        8 => format!("Disallow: /{section}/live/{year}/{month:02}/{id}"),
        9 => format!("Disallow: /preview/{section}/{id}/"),
        10 => format!("Disallow: /{section}/{year}/{month:02}/*/comments"),
        _ => format!("Disallow: /{section}/{year}/{month:02}/{id}/gallery"),
    }
}

/// A large robots.txt (~130 KB): the community AI-crawler block list, the Cloudflare managed
/// file, a dozen search-engine groups with a few hundred rules each, and a huge `*` group.
fn large_file() -> String {
    let read = |name: &str| std::fs::read_to_string(format!("{EXAMPLES}{name}")).expect("example robots.txt readable");
    let mut file = String::new();
    file.push_str(&read("cloudflare-managed-robots.txt"));
    file.push('\n');
    file.push_str(&read("ai.robots.txt-robots.txt"));
    let mut rng = Lcg(0x5eed);
    for bot in ["Googlebot", "Googlebot-News", "Bingbot", "Applebot", "DuckDuckBot", "YandexBot", "Baiduspider"] {
        let _ = writeln!(file, "\nUser-agent: {bot}");
        for _ in 0..300 {
            let _ = writeln!(file, "{}", news_rule(&mut rng));
        }
    }
    file.push_str("\nUser-agent: *\nCrawl-delay: 1\nDisallow: /*?utm_\nDisallow: /*.pdf$\nDisallow: /search\n");
    while file.len() < 130_000 {
        let _ = writeln!(file, "{}", news_rule(&mut rng));
    }
    file
}

fn decisions(c: &mut Criterion) {
    let large = large_file();
    let mut group = c.benchmark_group("robots/decision");
    for (size, body) in [("small", SMALL), ("large", large.as_str())] {
        let robots = RobotsTxt::parse(body.as_bytes(), DEFAULT_MAX_BYTES);
        eprintln!("{size}: {} bytes, {:?}", body.len(), robots.stats());
        // `AcmeBot` falls back to `*` (the largest group of the large file); `Googlebot` has its
        // own; one decision per iteration, cycling through the paths.
        for token in ["AcmeBot", "Googlebot"] {
            let mut i = 0;
            group.bench_function(BenchmarkId::new(format!("consentry/{token}"), size), |b| {
                b.iter(|| {
                    i = (i + 1) % PATHS.len();
                    black_box(robots.check(black_box(token), black_box(PATHS[i])).allowed)
                })
            });
        }
        let urls: Vec<String> = PATHS.iter().map(|p| format!("https://www.example-news.com{p}")).collect();
        let mut i = 0;
        group.bench_function(BenchmarkId::new("robotstxt-crate/AcmeBot", size), |b| {
            b.iter(|| {
                i = (i + 1) % urls.len();
                let mut matcher = DefaultMatcher::default();
                black_box(matcher.one_agent_allowed_by_robots(black_box(body), "AcmeBot", &urls[i]))
            })
        });
    }
    group.finish();
}

fn compile(c: &mut Criterion) {
    let large = large_file();
    let mut group = c.benchmark_group("robots/compile");
    for (size, body) in [("small", SMALL), ("large", large.as_str())] {
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(BenchmarkId::new("consentry", size), |b| {
            b.iter(|| RobotsTxt::parse(black_box(body.as_bytes()), DEFAULT_MAX_BYTES))
        });
    }
    group.finish();
}

criterion_group!(benches, decisions, compile);
criterion_main!(benches);

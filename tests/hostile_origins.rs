//! Hostile origins and faults, end to end with the real binary: origins that send too much, too
//! slowly, forever, compressed to explode, with thousands of headers, with bytes meant to break
//! the block answer, with bad certificates or stalled handshakes; an audit store that goes away
//! under load (PostgreSQL down, a full disk under SQLite), `kill -9` under load, and a policy
//! file that hangs while other origins are busy.
//!
//! Each test asserts what the crawler must see (a clear, specific answer; nothing blocked), that
//! the proxy did not panic, that its memory stayed bounded where a body could have been buffered,
//! and that it kept serving other origins. Origins that `TestOrigin` cannot play are written
//! here on raw TCP listeners.

mod common;

use std::collections::HashSet;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{ADMIN_TOKEN, Canned, CurlResult, TestDatabase, TestOrigin, TestProxy, curl, psql};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// `peak_rss_kib()` counts KiB.
const KIB_PER_MIB: u64 = 1024;

// ---------------------------------------------------------------------------------------------
// Raw origins

/// What a raw origin observed.
#[derive(Default)]
struct Tally {
    /// Body bytes written to the proxy, over all connections.
    sent: AtomicU64,
    /// Request paths, in arrival order.
    paths: Mutex<Vec<String>>,
    /// Set when a streaming reply stopped because the proxy closed the connection.
    peer_closed: AtomicBool,
}

impl Tally {
    fn sent(&self) -> u64 {
        self.sent.load(Ordering::SeqCst)
    }

    fn hits(&self, path: &str) -> usize {
        self.paths.lock().expect("lock").iter().filter(|p| *p == path).count()
    }
}

/// An origin written by hand on a raw TCP listener: every connection's request head is read and
/// handed, with the stream, to `serve`. One request per connection (replies say `close`).
struct RawOrigin {
    addr: SocketAddr,
    tally: Arc<Tally>,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for RawOrigin {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl RawOrigin {
    async fn start<F, Fut>(serve: F) -> Self
    where
        F: Fn(String, TcpStream, Arc<Tally>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind raw origin");
        let addr = listener.local_addr().expect("addr");
        let tally = Arc::new(Tally::default());
        let serve = Arc::new(serve);
        let task_tally = tally.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (serve, tally) = (serve.clone(), task_tally.clone());
                tokio::spawn(async move {
                    let Some(path) = read_request_head(&mut stream).await else { return };
                    tally.paths.lock().expect("lock").push(path.clone());
                    serve(path, stream, tally).await;
                });
            }
        });
        Self { addr, tally, accept }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

/// Reads one request head (bounded) and returns its path.
async fn read_request_head<S: AsyncRead + Unpin>(stream: &mut S) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 64 * 1024 || stream.read(&mut byte).await.ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    let line = String::from_utf8_lossy(&head).lines().next()?.to_string();
    line.split_whitespace().nth(1).map(str::to_string)
}

/// Writes a complete reply with `Content-Length` and `Connection: close`.
async fn reply<S: AsyncWrite + Unpin>(stream: &mut S, status: &str, headers: &[u8], body: &[u8]) {
    let mut out = format!("HTTP/1.1 {status}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len()).into_bytes();
    out.extend_from_slice(headers);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    let _ = stream.write_all(&out).await;
    let _ = stream.shutdown().await;
}

/// The policy files every origin is asked for: none published (404), unless `path` is the page.
async fn no_policy_files<S: AsyncWrite + Unpin>(path: &str, stream: &mut S) -> bool {
    if matches!(path, "/robots.txt" | "/ai.txt" | "/.well-known/tdmrep.json") {
        reply(stream, "404 Not Found", b"", b"none").await;
        return true;
    }
    false
}

/// Writes `chunks` (each a body piece) until one fails; counts what was written.
async fn stream_until_closed<S, I>(stream: &mut S, tally: &Tally, chunks: I)
where
    S: AsyncWrite + Unpin,
    I: IntoIterator<Item = Vec<u8>>,
{
    for chunk in chunks {
        if stream.write_all(&chunk).await.is_err() {
            tally.peer_closed.store(true, Ordering::SeqCst);
            return;
        }
        tally.sent.fetch_add(chunk.len() as u64, Ordering::SeqCst);
    }
}

/// One HTTP/1.1 chunk.
fn chunk(data: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    out
}

// ---------------------------------------------------------------------------------------------
// Checks shared by every test

/// The proxy did not panic.
fn assert_no_panic(proxy: &TestProxy) {
    let log = proxy.stderr();
    assert!(!log.contains("panicked"), "the proxy panicked:\n{log}");
}

/// A well-behaved origin still gets served, promptly.
async fn assert_still_serving(proxy: &TestProxy, good: &TestOrigin) {
    let started = Instant::now();
    let res = curl(&["-x", &proxy.url(), &good.url("/hello")]).await;
    assert_eq!(res.status, 200, "a good origin is no longer served: {}", res.text());
    assert_eq!(res.text(), "hello");
    assert!(started.elapsed() < Duration::from_secs(5), "a good origin took {:?}", started.elapsed());
}

/// `curl` through the proxy with a hard limit on the whole exchange.
async fn through(proxy: &TestProxy, url: &str, max_time: u64) -> CurlResult {
    curl(&["-x", &proxy.url(), "-m", &max_time.to_string(), url]).await
}

/// The first reason whose rule mentions `needle`.
fn reason_with(body: &serde_json::Value, needle: &str) -> serde_json::Value {
    body["reasons"]
        .as_array()
        .and_then(|reasons| reasons.iter().find(|r| r["rule"].as_str().is_some_and(|t| t.contains(needle))))
        .cloned()
        .unwrap_or_else(|| panic!("no reason mentions {needle:?}: {body}"))
}

/// Sends `request` to the proxy over raw TCP and returns the answer's head and body bytes.
async fn raw_exchange(proxy: SocketAddr, request: String) -> (String, Vec<u8>) {
    let mut stream = TcpStream::connect(proxy).await.expect("connect to the proxy");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "no complete answer within 30s");
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n").expect("a complete head");
    let head = String::from_utf8(answer[..split].to_vec()).expect("the answer's head is UTF-8");
    (head, answer[split + 4..].to_vec())
}

/// Every header line is `token: visible-ASCII`, nothing smuggled: no control characters, no
/// markup, only the fields Consentry sets on its own answers.
fn assert_head_well_formed(head: &str) {
    let mut lines = head.split("\r\n");
    let status = lines.next().expect("status line");
    assert!(status.starts_with("HTTP/1.1 "), "{status:?}");
    for line in lines {
        let (name, value) = line.split_once(": ").unwrap_or_else(|| panic!("malformed header line {line:?}"));
        assert!(name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'), "header name {name:?}");
        assert!(value.bytes().all(|b| (0x20..0x7f).contains(&b)), "header value {value:?}");
        assert!(!value.contains('<') && !value.contains('"'), "markup in header {line:?}");
        let allowed = ["content-type", "cache-control", "consentry-request-id", "consentry-decision", "content-length"];
        let lower = name.to_ascii_lowercase();
        assert!(allowed.contains(&lower.as_str()) || lower == "date" || lower == "connection", "unexpected {line:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Hostile robots.txt

/// The body of a huge robots.txt: `Disallow: /early` at the top, `Disallow: /late` past 50 MB.
fn huge_robots_chunks(total: usize) -> impl Iterator<Item = Vec<u8>> {
    let head = b"User-agent: *\nDisallow: /early\n".to_vec();
    let tail = b"Disallow: /late\n".to_vec();
    let line = b"# a comment line that only makes this robots.txt longer than anyone should read\n";
    let filler: Vec<u8> = line.iter().copied().cycle().take(64 * 1024).collect();
    let middle = (total - head.len() - tail.len()) / filler.len();
    let last = total - head.len() - tail.len() - middle * filler.len();
    std::iter::once(head)
        .chain(std::iter::repeat_n(filler.clone(), middle))
        .chain(std::iter::once(filler[..last].to_vec()))
        .chain(std::iter::once(tail))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_50_mb_robots_txt_is_read_only_up_to_max_bytes() {
    const TOTAL: usize = 50 * 1024 * 1024;
    let origin = RawOrigin::start(|path, mut stream, tally| async move {
        if path != "/robots.txt" {
            if !no_policy_files(&path, &mut stream).await {
                reply(&mut stream, "200 OK", b"", b"page").await;
            }
            return;
        }
        let head = format!("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {TOTAL}\r\n\r\n");
        let _ = stream.write_all(head.as_bytes()).await;
        stream_until_closed(&mut stream, &tally, huge_robots_chunks(TOTAL)).await;
    })
    .await;
    let good = TestOrigin::plain().await;
    let proxy = TestProxy::loopback("");
    assert_still_serving(&proxy, &good).await;
    let before = proxy.peak_rss_kib();

    let started = Instant::now();
    let res = through(&proxy, &origin.url("/early"), 30).await;
    let took = started.elapsed();
    assert_eq!(res.status, 451, "{}", res.text());
    let reason = reason_with(&res.json(), "Disallow: /early");
    assert_eq!(reason["source"], "robots");
    // The evidence hash is that of exactly the first robots.max_bytes (512000) bytes.
    let first: Vec<u8> = huge_robots_chunks(TOTAL).flatten().take(512_000).collect();
    assert_eq!(reason["evidence_sha256"], common::hex(&Sha256::digest(&first)).as_str());
    let res = through(&proxy, &origin.url("/late"), 30).await;
    assert_eq!(res.status, 200, "rules past max_bytes are never read: {}", res.text());
    assert_eq!(origin.tally.hits("/robots.txt"), 1);

    // The proxy stopped reading: the origin could not write the 50 MB.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !origin.tally.peer_closed.load(Ordering::SeqCst) {
        assert!(Instant::now() < deadline, "the proxy kept the 50 MB download open");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let sent = origin.tally.sent();
    let after = proxy.peak_rss_kib();
    eprintln!("50 MB robots.txt: answered in {took:?}, origin wrote {sent} bytes, peak RSS {before} -> {after} KiB");
    assert!(sent < 16 * 1024 * 1024, "the origin wrote {sent} bytes");
    assert!(after - before < 16 * KIB_PER_MIB, "peak RSS grew from {before} to {after} KiB");
    assert_still_serving(&proxy, &good).await;
    assert_no_panic(&proxy);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_robots_txt_ends_at_the_limit() {
    let origin = RawOrigin::start(|path, mut stream, tally| async move {
        if path != "/robots.txt" {
            if !no_policy_files(&path, &mut stream).await {
                reply(&mut stream, "200 OK", b"", b"page").await;
            }
            return;
        }
        let head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n";
        let _ = stream.write_all(head.as_bytes()).await;
        let first = chunk(b"User-agent: *\nDisallow: /blocked\n");
        let filler = chunk(&b"Disallow: /also-blocked-but-never-read-this-far\n".repeat(1000));
        stream_until_closed(&mut stream, &tally, std::iter::once(first).chain(std::iter::repeat(filler))).await;
    })
    .await;
    let good = TestOrigin::plain().await;
    let proxy = TestProxy::loopback("[robots]\nfetch_timeout = \"5s\"\n");
    assert_still_serving(&proxy, &good).await;
    let before = proxy.peak_rss_kib();

    let started = Instant::now();
    let res = through(&proxy, &origin.url("/blocked/page"), 30).await;
    let took = started.elapsed();
    assert_eq!(res.status, 451, "{}", res.text());
    assert_eq!(reason_with(&res.json(), "Disallow: /blocked")["source"], "robots");
    assert!(took < Duration::from_secs(4), "the endless file was cut at max_bytes, not at the timeout: {took:?}");
    assert_eq!(through(&proxy, &origin.url("/open"), 30).await.status, 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !origin.tally.peer_closed.load(Ordering::SeqCst) {
        assert!(Instant::now() < deadline, "the proxy kept reading the endless robots.txt");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let after = proxy.peak_rss_kib();
    eprintln!(
        "endless robots.txt: answered in {took:?}, origin wrote {} bytes, peak RSS {before} -> {after} KiB",
        origin.tally.sent()
    );
    assert!(after - before < 16 * KIB_PER_MIB, "peak RSS grew from {before} to {after} KiB");
    assert_still_serving(&proxy, &good).await;
    assert_no_panic(&proxy);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_robots_txt_at_one_byte_per_second_times_out_and_blocks_only_its_origin() {
    let origin = RawOrigin::start(|path, mut stream, tally| async move {
        if path != "/robots.txt" {
            if !no_policy_files(&path, &mut stream).await {
                reply(&mut stream, "200 OK", b"", b"page").await;
            }
            return;
        }
        let body = b"User-agent: *\nAllow: /\n";
        let head = format!("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n", body.len());
        let _ = stream.write_all(head.as_bytes()).await;
        for byte in body {
            if stream.write_all(&[*byte]).await.is_err() {
                tally.peer_closed.store(true, Ordering::SeqCst);
                return;
            }
            tally.sent.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
    .await;
    let good = TestOrigin::plain().await;
    let proxy = TestProxy::loopback("[robots]\nfetch_timeout = \"2s\"\n");
    assert_still_serving(&proxy, &good).await;

    let (proxy_url, url) = (proxy.url(), origin.url("/page"));
    let slow = tokio::spawn(async move {
        let started = Instant::now();
        let res = curl(&["-x", &proxy_url, "-m", "30", &url]).await;
        (res, started.elapsed())
    });
    // While that fetch trickles, other origins are answered at their normal pace.
    let mut others = Vec::new();
    let window = Instant::now();
    while window.elapsed() < Duration::from_millis(1500) {
        let started = Instant::now();
        let res = curl(&["-x", &proxy.url(), &good.url(&format!("/meanwhile/{}", others.len()))]).await;
        assert_eq!(res.status, 200);
        others.push(started.elapsed());
    }
    let (res, took) = slow.await.expect("slow request");
    assert_eq!(res.status, 451, "{}", res.text());
    let body = res.json();
    let reason = reason_with(&body, "unreachable");
    assert_eq!(reason["source"], "robots");
    let rule = reason["rule"].as_str().unwrap_or_default();
    assert!(rule.contains("timed out") && rule.contains("2s") && rule.contains("robots.fetch_timeout"), "{rule}");
    assert!(took >= Duration::from_millis(1900) && took < Duration::from_secs(6), "answered after {took:?}");
    assert_eq!(origin.tally.hits("/page"), 0, "nothing is fetched from a site whose robots.txt timed out");
    let slowest = others.iter().max().copied().unwrap_or_default();
    eprintln!(
        "1 byte/s robots.txt: 451 after {took:?}; {} other requests meanwhile, slowest {slowest:?}",
        others.len()
    );
    assert!(others.len() >= 3 && slowest < Duration::from_millis(1000), "head-of-line blocking: {others:?}");
    assert_no_panic(&proxy);
}

// ---------------------------------------------------------------------------------------------
// 1b. Hostile HTML heads

/// gzip of `prefix`, `zeros` NUL bytes, then `suffix`, compressed as it is generated.
fn gzip_bomb(prefix: &str, zeros: usize, suffix: &str) -> Vec<u8> {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(prefix.as_bytes()).expect("gzip");
    let block = vec![0u8; 1024 * 1024];
    for _ in 0..zeros / block.len() {
        encoder.write_all(&block).expect("gzip");
    }
    encoder.write_all(&block[..zeros % block.len()]).expect("gzip");
    encoder.write_all(suffix.as_bytes()).expect("gzip");
    encoder.finish().expect("gzip")
}

async fn decision_record(proxy: &TestProxy, id: &str) -> serde_json::Value {
    let url = proxy.admin_url(&format!("/api/decisions/{id}"));
    let res = curl(&["-H", &format!("Authorization: Bearer {ADMIN_TOKEN}"), &url]).await;
    assert_eq!(res.status, 200, "{}", res.text());
    res.json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gzip_bomb_in_the_head_is_scanned_only_up_to_max_head_bytes() {
    const ZEROS: usize = 10 * 1024 * 1024;
    // The opt-out sits behind 10 MB of zeros (in a comment, so the head goes on): never reached.
    let late = gzip_bomb(
        "<!doctype html><html><head><title>bomb</title><!--",
        ZEROS,
        "--><meta name=\"robots\" content=\"noai\"></head><body>late</body></html>",
    );
    // The opt-out comes first: seen at once, whatever follows.
    let early = gzip_bomb("<html><head><meta name=\"robots\" content=\"noai\"><!--", ZEROS, "--></head></html>");
    eprintln!("gzip bombs: {ZEROS} zeros compress to {} and {} bytes", late.len(), early.len());
    let origin = TestOrigin::plain().await;
    let html = |body: &Vec<u8>| {
        Canned::body(body.clone()).with_header("content-type", "text/html").with_header("content-encoding", "gzip")
    };
    origin.set("/late", html(&late));
    origin.set("/early", html(&early));
    let good = TestOrigin::plain().await;
    let proxy = TestProxy::loopback("");
    assert_still_serving(&proxy, &good).await;
    let before = proxy.peak_rss_kib();

    let started = Instant::now();
    let res = through(&proxy, &origin.url("/late"), 30).await;
    let took = started.elapsed();
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.header("consentry-decision"), Some("allow"));
    assert_eq!(res.header("content-encoding"), Some("gzip"));
    assert!(res.body == late, "the crawler gets the origin's bytes exactly ({} of {})", res.body.len(), late.len());
    // The record says the scan was cut short, and where.
    let id = res.header("consentry-request-id").expect("request id");
    let record = decision_record(&proxy, id).await;
    let notes = record["notes"].to_string();
    assert!(notes.contains("HTML head scan") && notes.contains("262144"), "{record}");

    let res = through(&proxy, &origin.url("/early"), 30).await;
    assert_eq!(res.status, 451, "{}", res.text());
    let body = res.json();
    assert_eq!(body["stage"], "response");
    assert!(reason_with(&body, "noai")["source"].is_string());
    assert!(!res.text().contains("<html>"), "nothing of the withheld page reaches the crawler");

    let after = proxy.peak_rss_kib();
    eprintln!("gzip bomb: allowed in {took:?}; peak RSS {before} -> {after} KiB");
    assert!(after - before < 16 * KIB_PER_MIB, "peak RSS grew from {before} to {after} KiB");
    assert_still_serving(&proxy, &good).await;
    assert_no_panic(&proxy);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_that_never_ends_is_bounded_in_bytes_and_in_time() {
    let origin = RawOrigin::start(|path, mut stream, tally| async move {
        if no_policy_files(&path, &mut stream).await {
            return;
        }
        let head = "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n";
        let _ = stream.write_all(head.as_bytes()).await;
        if path == "/endless" {
            // <meta> after <meta>, forever: the head never ends.
            let metas = chunk(&b"<meta name=\"filler\" content=\"still in the head\">\n".repeat(400));
            let start = chunk(b"<!doctype html><html><head>");
            stream_until_closed(&mut stream, &tally, std::iter::once(start).chain(std::iter::repeat(metas))).await;
        } else {
            // An open <title>, then nothing at all, on an open connection.
            let _ = stream.write_all(&chunk(b"<!doctype html><html><head><title>never")).await;
            let mut rest = Vec::new();
            let _ = stream.read_to_end(&mut rest).await;
            tally.peer_closed.store(true, Ordering::SeqCst);
        }
    })
    .await;
    let good = TestOrigin::plain().await;
    let proxy = TestProxy::loopback("[upstream]\nresponse_timeout = \"2s\"\n");
    assert_still_serving(&proxy, &good).await;
    let before = proxy.peak_rss_kib();

    // Endless: the scan stops at max_head_bytes and the page streams (it was not opted out).
    let started = Instant::now();
    let mut stream = TcpStream::connect(proxy.addr).await.expect("connect");
    let request = format!("GET {} HTTP/1.1\r\nHost: x\r\n\r\n", origin.url("/endless"));
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut received = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    while received.len() < 4 * 1024 * 1024 {
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await;
        let n = read.expect("the page keeps streaming").expect("read");
        assert!(n > 0, "the answer ended early: {}", String::from_utf8_lossy(&received[..received.len().min(500)]));
        received.extend_from_slice(&buf[..n]);
    }
    let took = started.elapsed();
    let text = String::from_utf8_lossy(&received[..2000]);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("consentry-decision: allow"), "{text}");
    drop(stream);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !origin.tally.peer_closed.load(Ordering::SeqCst) {
        assert!(Instant::now() < deadline, "the proxy kept the endless page open after the crawler left");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let after = proxy.peak_rss_kib();
    eprintln!(
        "endless head: 4 MiB relayed in {took:?}, origin wrote {} bytes, peak RSS {before} -> {after} KiB",
        origin.tally.sent()
    );
    assert!(after - before < 16 * KIB_PER_MIB, "peak RSS grew from {before} to {after} KiB");

    // Stalled: the head never ends and no more bytes come. The crawler gets a clear 504 in
    // bounded time (upstream.response_timeout), not a hang.
    origin.tally.peer_closed.store(false, Ordering::SeqCst);
    let started = Instant::now();
    let res = through(&proxy, &origin.url("/stalled"), 20).await;
    let took = started.elapsed();
    assert_eq!(res.status, 504, "after {took:?}: {} {}", res.text(), res.stderr);
    let body = res.json();
    assert_eq!(body["error"], "upstream_timeout");
    let reason = body["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("<head>") && reason.contains("2s"), "{reason}");
    assert!(took < Duration::from_secs(6), "answered after {took:?}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !origin.tally.peer_closed.load(Ordering::SeqCst) {
        assert!(Instant::now() < deadline, "the stalled origin connection was kept open");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!("stalled head: 504 after {took:?}");
    assert_still_serving(&proxy, &good).await;
    assert_no_panic(&proxy);
}

// ---------------------------------------------------------------------------------------------
// 1c. Hostile response heads

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_response_headers_get_a_clear_502() {
    let origin = RawOrigin::start(|path, mut stream, _tally| async move {
        if no_policy_files(&path, &mut stream).await {
            return;
        }
        let headers: Vec<u8> = (0..10_000).flat_map(|i| format!("X-Header-{i}: value {i}\r\n").into_bytes()).collect();
        reply(&mut stream, "200 OK", &headers, b"too many headers").await;
    })
    .await;
    let good = TestOrigin::plain().await;
    let proxy = TestProxy::loopback("");
    let started = Instant::now();
    let res = through(&proxy, &origin.url("/headers"), 30).await;
    let took = started.elapsed();
    assert_eq!(res.status, 502, "{}", res.text());
    let body = res.json();
    assert_eq!(body["error"], "upstream_failed");
    let reason = body["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("head") || reason.contains("header"), "{reason}");
    assert!(!res.text().contains("X-Header-"), "nothing of the origin's head is passed on");
    eprintln!("10,000 headers: 502 in {took:?}: {reason}");
    assert_still_serving(&proxy, &good).await;
    assert_no_panic(&proxy);
}

/// Hostile bytes for the signals a block answer quotes: quotes, backslashes, markup and
/// non-ASCII (UTF-8 and not), which a header value may carry ...
const MARKUP: &[u8] = b"\"\\<script>alert(1)</script> \xc3\xa9 \xff\xfe";
/// ... and control characters, which it may not (robots.txt may).
const CONTROL: &[u8] = b"\x07\x1b[2J\x7f\x01";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_bytes_in_signals_cannot_break_or_inject_into_the_block_answer() {
    // Response headers: (path, the header lines as sent, expected status).
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("/markup", [b"X-Robots-Tag: noai, ".as_slice(), MARKUP].concat(), 451),
        ("/control", [b"X-Robots-Tag: noai, ".as_slice(), MARKUP, CONTROL].concat(), 502),
        ("/latin1", b"X-Robots-Tag: noai, \xe9t\xe9\r\nContent-Usage: train-ai=n \xff".to_vec(), 451),
        ("/crlf", b"X-Robots-Tag: noai\r\nSet-Cookie: injected=1\r\nX-Evil: <script>".to_vec(), 451),
        ("/folded", b"X-Robots-Tag: noindex,\r\n noai".to_vec(), 502),
        ("/bare-cr", b"X-Robots-Tag: no\rai".to_vec(), 502),
        ("/nul", b"X-Robots-Tag: noai\x00\x01".to_vec(), 502),
    ];
    let table: Arc<Vec<(String, Vec<u8>)>> =
        Arc::new(cases.iter().map(|(path, header, _)| (path.to_string(), header.clone())).collect());
    let headers_origin = RawOrigin::start(move |path, mut stream, _tally| {
        let table = table.clone();
        async move {
            if no_policy_files(&path, &mut stream).await {
                return;
            }
            let header = table.iter().find(|(p, _)| *p == path).map(|(_, h)| h.clone()).unwrap_or_default();
            let headers = [b"Content-Type: text/html\r\n".as_slice(), &header, b"\r\n"].concat();
            reply(&mut stream, "200 OK", &headers, b"<html><body>the withheld page</body></html>").await;
        }
    })
    .await;
    // robots.txt: the same bytes in a group line, in rules and in an embedded signal.
    let robots = [
        b"User-agent: Consentry ".as_slice(),
        MARKUP,
        CONTROL,
        b"\nDisallow: /robots-blocked\nDisallow: /rules/\"\\<script>".as_slice(),
        CONTROL,
        b"*\nContent-Usage: train-ai=n;note=\"\\\"\\\\<script>alert(1)</script>\"\n".as_slice(),
    ]
    .concat();
    let robots_origin = TestOrigin::plain().await;
    robots_origin.set("/robots.txt", Canned::body(robots));
    robots_origin.set("/open", Canned::body("<html>the withheld page</html>").with_header("content-type", "text/html"));
    let good = TestOrigin::plain().await;
    let proxy = TestProxy::loopback("");

    let mut urls: Vec<(String, u16)> =
        cases.iter().map(|(path, _, status)| (headers_origin.url(path), *status)).collect();
    urls.push((robots_origin.url("/robots-blocked"), 451));
    urls.push((robots_origin.url("/rules/%22%5C%3Cscript%3E%07%1B[2J%7F%01/x"), 451));
    urls.push((robots_origin.url("/open"), 451));
    let mut quoted = 0;
    for (url, expected) in &urls {
        let request = format!("GET {url} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let (head, body) = raw_exchange(proxy.addr, request).await;
        assert_head_well_formed(&head);
        let text = String::from_utf8(body).unwrap_or_else(|e| panic!("{url}: the answer is not UTF-8: {e}"));
        let json: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{url}: the answer is not JSON ({e}): {text}"));
        assert!(!text.contains("the withheld page"), "{url}: {text}");
        assert_eq!(&head[9..12], expected.to_string(), "{url}: {json}");
        // C0 control characters travel escaped (\u0007), never raw (RFC 8259 §7; DEL may be raw).
        assert!(!text.trim_end().chars().any(|c| c < ' '), "{url}: raw control characters: {text:?}");
        // The hostile text is quoted as data: escaped in the JSON, intact once parsed.
        if json.to_string().contains("<script>") {
            quoted += 1;
        }
        if url.ends_with("/markup") {
            let rule = reason_with(&json, "noai")["rule"].clone();
            assert_eq!(rule, "X-Robots-Tag: noai, \"\\<script>alert(1)</script> \u{e9} \u{fffd}\u{fffd}");
        }
        if url.contains("/rules/") {
            let rule = reason_with(&json, "/rules/")["rule"].clone();
            assert_eq!(rule, "Disallow: /rules/\"\\<script>\u{7}\u{1b}[2J\u{7f}\u{1}*", "{json}");
        }
    }
    assert_eq!(quoted, 3, "the hostile text is quoted by /markup, /rules/… and /open");
    assert_eq!(robots_origin.hits("/robots-blocked") + robots_origin.hits("/open"), 0, "blocked before the fetch");
    assert_still_serving(&proxy, &good).await;
    assert_no_panic(&proxy);
}

// ---------------------------------------------------------------------------------------------
// 1d. Hostile TLS origins

/// What the TLS origin does with the next connection it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Handshake {
    /// A valid certificate from the CA the proxy trusts.
    Good = 0,
    /// From the trusted CA, but expired.
    Expired = 1,
    /// Valid dates, from a CA nobody trusts.
    Untrusted = 2,
    /// Accept TCP, read the ClientHello, never answer it.
    Stall = 3,
}

/// A TLS origin whose certificate (or silence) can be switched between connections.
struct TlsOrigin {
    raw: RawOrigin,
    mode: Arc<AtomicU8>,
    /// The CAs of the `Good` and `Expired` certificates, for `tls.upstream_roots`.
    ca_path: PathBuf,
    /// Handshakes stalled, and how many of those the proxy has since closed.
    stalled: Arc<AtomicU64>,
    stalled_closed: Arc<AtomicU64>,
    _dir: tempfile::TempDir,
}

fn server_config(leaf: &rcgen::Certificate, key: &rcgen::KeyPair) -> Arc<rustls::ServerConfig> {
    let key = rustls_pki_types::PrivateKeyDer::try_from(key.serialize_der()).expect("key der");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone()], key)
        .expect("server config");
    Arc::new(config)
}

/// A CA named `name`, and a leaf for 127.0.0.1 valid `from..until` (days from now) signed by it.
fn ca_and_leaf(name: &str, from: i64, until: i64) -> (rcgen::Certificate, Arc<rustls::ServerConfig>) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
    let ca_key = KeyPair::generate().expect("ca key");
    let mut ca_params = CertificateParams::default();
    ca_params.distinguished_name.push(DnType::CommonName, name);
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).expect("ca");
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().expect("leaf key");
    let mut leaf = CertificateParams::new(vec!["localhost".to_string()]).expect("params");
    leaf.subject_alt_names.push(SanType::IpAddress("127.0.0.1".parse().expect("ip")));
    let now = time::OffsetDateTime::now_utc();
    leaf.not_before = now + time::Duration::days(from);
    leaf.not_after = now + time::Duration::days(until);
    let leaf = leaf.signed_by(&leaf_key, &issuer).expect("leaf");
    (ca, server_config(&leaf, &leaf_key))
}

impl TlsOrigin {
    async fn start(mode: Handshake) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let (good_ca, good) = ca_and_leaf("good CA", -1, 30);
        // Expired yesterday, from a CA the proxy trusts too.
        let (expired_ca, expired) = ca_and_leaf("expiring CA", -30, -1);
        let (_, untrusted) = ca_and_leaf("nobody's CA", -1, 30);
        let ca_path = dir.path().join("trusted.pem");
        std::fs::write(&ca_path, [good_ca.pem(), expired_ca.pem()].concat()).expect("write ca");
        let configs = Arc::new([good, expired, untrusted]);
        let mode_switch = Arc::new(AtomicU8::new(mode as u8));
        let (stalled, stalled_closed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let (switch, stalls, closes) = (mode_switch.clone(), stalled.clone(), stalled_closed.clone());
        let raw = RawOrigin::start_tls(move |mut stream, tally| {
            let (configs, mode) = (configs.clone(), switch.load(Ordering::SeqCst));
            let (stalls, closes) = (stalls.clone(), closes.clone());
            async move {
                if mode == Handshake::Stall as u8 {
                    stalls.fetch_add(1, Ordering::SeqCst);
                    let mut sink = Vec::new();
                    let _ = stream.read_to_end(&mut sink).await;
                    closes.fetch_add(1, Ordering::SeqCst);
                    return;
                }
                let acceptor = tokio_rustls::TlsAcceptor::from(configs[usize::from(mode)].clone());
                let Ok(mut tls) = acceptor.accept(stream).await else { return };
                let Some(path) = read_request_head(&mut tls).await else { return };
                tally.paths.lock().expect("lock").push(path.clone());
                match path.as_str() {
                    "/robots.txt" => reply(&mut tls, "200 OK", b"", b"User-agent: *\nAllow: /\n").await,
                    "/ai.txt" | "/.well-known/tdmrep.json" => reply(&mut tls, "404 Not Found", b"", b"").await,
                    _ => reply(&mut tls, "200 OK", b"", format!("ok {path}").as_bytes()).await,
                }
            }
        })
        .await;
        Self { raw, mode: mode_switch, ca_path, stalled, stalled_closed, _dir: dir }
    }

    fn set(&self, mode: Handshake) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }

    fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.raw.addr)
    }
}

impl RawOrigin {
    /// Like [`RawOrigin::start`], but hands over the stream before anything is read (for TLS).
    async fn start_tls<F, Fut>(serve: F) -> Self
    where
        F: Fn(TcpStream, Arc<Tally>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind TLS origin");
        let addr = listener.local_addr().expect("addr");
        let tally = Arc::new(Tally::default());
        let serve = Arc::new(serve);
        let task_tally = tally.clone();
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, task_tally.clone()));
            }
        });
        Self { addr, tally, accept }
    }
}

/// `curl` through the proxy into an intercepted tunnel.
async fn through_tunnel(proxy: &TestProxy, ca: &Path, url: &str) -> (CurlResult, Duration) {
    let started = Instant::now();
    let res = curl(&["-x", &proxy.url(), "--cacert", ca.to_str().expect("path"), "-m", "20", url]).await;
    (res, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_certificates_and_stalled_handshakes_get_clear_answers_in_bounded_time() {
    let untrusted = TlsOrigin::start(Handshake::Untrusted).await;
    let expired = TlsOrigin::start(Handshake::Expired).await;
    let stalled = TlsOrigin::start(Handshake::Stall).await;
    let switching = TlsOrigin::start(Handshake::Good).await;
    let roots: Vec<String> =
        [&untrusted, &expired, &stalled, &switching].iter().map(|o| format!("\"{}\"", o.ca_path.display())).collect();
    let good = TestOrigin::plain().await;
    let proxy = TestProxy::loopback(&format!(
        "[tls]\nupstream_roots = [{}]\n[upstream]\nconnect_timeout = \"1s\"\nresponse_timeout = \"2s\"\n",
        roots.join(", ")
    ));
    let ca = proxy.ca_file();

    // From the first contact: robots.txt cannot be fetched, so nothing may be (RFC 9309), and
    // the reason names the TLS failure.
    for (origin, needle) in [(&untrusted, "UnknownIssuer"), (&expired, "expired"), (&stalled, "within 2s")] {
        let (res, took) = through_tunnel(&proxy, &ca, &origin.url("/page")).await;
        assert_eq!(res.status, 451, "{needle}: {} {}", res.text(), res.stderr);
        let reason = reason_with(&res.json(), "unreachable");
        let rule = reason["rule"].as_str().unwrap_or_default();
        eprintln!("first contact, {needle}: 451 after {took:?}: {rule}");
        assert!(rule.contains(needle), "{rule}");
        if needle != "within 2s" {
            assert!(rule.contains("TLS") && rule.contains("certificate"), "{rule}");
        }
        assert!(took < Duration::from_secs(8), "{needle}: answered after {took:?}");
        assert_eq!(origin.raw.tally.hits("/page"), 0);
    }

    // robots.txt fetched while the certificate was good; then the page's handshake fails.
    let (res, _) = through_tunnel(&proxy, &ca, &switching.url("/before")).await;
    assert_eq!(res.status, 200, "{}", res.text());
    for (mode, status, error, needle) in [
        (Handshake::Expired, 502, "upstream_failed", "expired"),
        (Handshake::Untrusted, 502, "upstream_failed", "UnknownIssuer"),
        (Handshake::Stall, 504, "upstream_timeout", "within 2s"),
    ] {
        switching.set(mode);
        let (res, took) = through_tunnel(&proxy, &ca, &switching.url(&format!("/{mode:?}"))).await;
        assert_eq!(res.status, status, "{mode:?}: {}", res.text());
        let body = res.json();
        assert_eq!(body["error"], error);
        let reason = body["reason"].as_str().unwrap_or_default();
        eprintln!("{mode:?} after robots.txt: {status} after {took:?}: {reason}");
        assert!(reason.contains(needle), "{reason}");
        if status == 502 {
            assert!(reason.contains("TLS") && reason.contains("certificate"), "{reason}");
        }
        assert!(took < Duration::from_secs(8), "{mode:?}: answered after {took:?}");
    }
    // The stalled handshakes are given up, not kept open.
    let deadline = Instant::now() + Duration::from_secs(10);
    for origin in [&stalled, &switching] {
        while origin.stalled_closed.load(Ordering::SeqCst) < origin.stalled.load(Ordering::SeqCst) {
            let open = origin.stalled.load(Ordering::SeqCst) - origin.stalled_closed.load(Ordering::SeqCst);
            assert!(Instant::now() < deadline, "{open} stalled handshakes still open");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    switching.set(Handshake::Good);
    let (res, _) = through_tunnel(&proxy, &ca, &switching.url("/after")).await;
    assert_eq!(res.status, 200, "recovered: {}", res.text());
    assert_still_serving(&proxy, &good).await;
    assert_no_panic(&proxy);
}

// ---------------------------------------------------------------------------------------------
// 2. Faults under load

/// One answer a load worker received.
#[derive(Debug, Clone)]
struct Answer {
    status: u16,
    request_id: Option<String>,
    /// `error` of a JSON error answer.
    error: Option<String>,
    latency: Duration,
    at: Instant,
}

/// Sends requests for `path` on `origin` one after another until told to stop; returns every
/// complete answer (an answer cut off by a dying proxy is not one).
async fn load(
    proxy: SocketAddr,
    origin: SocketAddr,
    path: String,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Vec<Answer> {
    let url = format!("http://{origin}{path}");
    let mut answers = Vec::new();
    while !*stop.borrow() {
        let started = Instant::now();
        let Ok(mut stream) = TcpStream::connect(proxy).await else { break };
        let request = format!("GET {url} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        if stream.write_all(request.as_bytes()).await.is_err() {
            break;
        }
        let mut raw = Vec::new();
        if stream.read_to_end(&mut raw).await.is_err() {
            break;
        }
        let text = String::from_utf8_lossy(&raw);
        let Some((head, body)) = text.split_once("\r\n\r\n") else { break };
        let length = head.lines().find_map(|l| l.strip_prefix("content-length: ")).and_then(|n| n.parse().ok());
        if length != Some(body.len()) {
            break;
        }
        let status = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
        let request_id = head.lines().find_map(|l| l.strip_prefix("consentry-request-id: ")).map(str::to_string);
        let error = serde_json::from_str::<serde_json::Value>(body)
            .ok()
            .and_then(|json| json["error"].as_str().map(str::to_string));
        answers.push(Answer { status, request_id, error, latency: started.elapsed(), at: Instant::now() });
    }
    answers
}

/// Rows of `sql` in the test database `name` (one column).
fn psql_column(name: &str, sql: &str) -> Vec<String> {
    let out = Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-d", name, "-At", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .output()
        .expect("psql");
    assert!(out.status.success(), "psql {sql:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_store_going_away_under_load_fails_closed_and_recovers_without_restart() {
    let database = TestDatabase::create();
    let origin = TestOrigin::plain().await;
    let proxy = TestProxy::loopback(&format!("[storage]\nurl = \"{}\"\ndurability = \"sync\"\n", database.url()));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let workers: Vec<_> =
        (0..4).map(|i| tokio::spawn(load(proxy.addr, origin.addr, format!("/load/{i}"), stop_rx.clone()))).collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    while origin.seen().len() < 100 {
        assert!(Instant::now() < deadline, "load did not get going");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let name = &database.name;
    let down_at = Instant::now();
    psql(&format!("ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false"));
    psql(&format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let ready_while_down = curl(&[&proxy.admin_url("/readyz")]).await.status;
    let up_at = Instant::now();
    psql(&format!("ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true"));
    // Recovery, by itself: answers are 200 again.
    let recovered_at = loop {
        let res = curl(&["-x", &proxy.url(), &origin.url("/probe")]).await;
        if res.status == 200 {
            break Instant::now();
        }
        assert!(up_at.elapsed() < Duration::from_secs(20), "no recovery: {} {}", res.status, res.text());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let readiness = curl(&[&proxy.admin_url("/readyz")]).await;
    assert_eq!(readiness.status, 200, "ready again once commits succeed: {}", readiness.text());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = stop_tx.send(true);
    let mut answers = Vec::new();
    for worker in workers {
        answers.extend(worker.await.expect("worker"));
    }

    // Fail closed: every answer is either a committed 200 or a 503 that says why.
    let failed: Vec<&Answer> = answers.iter().filter(|a| a.status != 200).collect();
    for answer in &failed {
        assert_eq!(answer.status, 503, "{answer:?}");
        assert_eq!(answer.error.as_deref(), Some("audit_unavailable"), "{answer:?}");
    }
    assert!(!failed.is_empty(), "the outage was not noticed");
    let slowest_503 = failed.iter().map(|a| a.latency).max().unwrap_or_default();
    assert!(slowest_503 < Duration::from_secs(8), "a 503 took {slowest_503:?}");
    let served: Vec<&Answer> = answers.iter().filter(|a| a.status == 200).collect();
    let after = served.iter().filter(|a| a.at > recovered_at).count();
    assert!(after > 0, "no 200 after recovery");
    assert_eq!(ready_while_down, 503, "/readyz says the store is down");
    assert_eq!(curl(&[&proxy.admin_url("/readyz")]).await.status, 200);

    let logged: HashSet<String> = psql_column(name, "SELECT request_id FROM decisions").into_iter().collect();
    let missing: Vec<&&Answer> =
        served.iter().filter(|a| !a.request_id.as_ref().is_some_and(|id| logged.contains(id))).collect();
    assert!(missing.is_empty(), "{} of {} 200s are not on the record: {missing:?}", missing.len(), served.len());
    eprintln!(
        "store outage: {} answers ({} x 200, {} x 503 audit_unavailable, slowest 503 {slowest_503:?}); down {:?}, \
         recovered {:?} after the database was back",
        answers.len(),
        served.len(),
        failed.len(),
        up_at - down_at,
        recovered_at - up_at
    );
    assert_no_panic(&proxy);
}

/// Tree size of `proxy`'s current checkpoint, and the checkpoint.
async fn checkpoint(proxy: &TestProxy) -> (u64, String) {
    let text = curl(&[&proxy.public_url("/tlog/checkpoint")]).await.text();
    let size = text.lines().nth(1).and_then(|size| size.parse().ok()).unwrap_or_else(|| panic!("{text}"));
    (size, text)
}

/// Every decision on the record, through the admin API (paged).
async fn decision_ids(proxy: &TestProxy) -> HashSet<String> {
    let mut ids = HashSet::new();
    let mut cursor = String::new();
    loop {
        let url = proxy.admin_url(&format!("/api/decisions?limit=1000{cursor}"));
        let page = curl(&["-H", &format!("Authorization: Bearer {ADMIN_TOKEN}"), &url]).await.json();
        let items = page["items"].as_array().expect("items");
        ids.extend(items.iter().filter_map(|r| r["request_id"].as_str().map(str::to_string)));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => return ids,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_kill_9_under_load_every_answer_is_on_the_record_and_in_a_consistent_tree() {
    let origin = TestOrigin::plain().await;
    let home = tempfile::tempdir().expect("tempdir");
    let extra = "[proxy]\nlisten = \"127.0.0.1:0\"\nallow_private_destinations = true\n\
                 [tlog]\nbatch_interval = \"100ms\"\n";
    let config = TestProxy::write_config(home.path(), extra);
    let proxy = TestProxy::start_with_file(tempfile::tempdir().expect("tempdir"), config.clone());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let workers: Vec<_> =
        (0..6).map(|i| tokio::spawn(load(proxy.addr, origin.addr, format!("/load/{i}"), stop_rx.clone()))).collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    // A checkpoint a creator saved during the load, then the kill a little later.
    let saved = loop {
        let (size, text) = checkpoint(&proxy).await;
        if size >= 100 {
            break text;
        }
        assert!(Instant::now() < deadline, "the tree did not grow under load");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let saved_path = home.path().join("before.ckpt");
    std::fs::write(&saved_path, &saved).expect("write checkpoint");
    let seen = origin.seen().len();
    while origin.seen().len() < seen + 200 {
        assert!(Instant::now() < deadline, "load stopped");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let killed = Command::new("kill").args(["-9", &proxy.pid().to_string()]).status().expect("kill");
    assert!(killed.success());
    let _ = stop_tx.send(true);
    let mut answered = Vec::new();
    for worker in workers {
        answered.extend(worker.await.expect("worker").into_iter().filter(|a| a.status == 200));
    }
    let ids: Vec<String> = answered.iter().filter_map(|a| a.request_id.clone()).collect();
    assert_eq!(ids.len(), answered.len(), "every answer carries its request id");
    assert!(ids.len() >= 200, "only {} answers before the kill", ids.len());
    assert_no_panic(&proxy);
    drop(proxy);

    // Restart on the same data directory.
    let restarted_at = Instant::now();
    let restarted = TestProxy::start_with_file(tempfile::tempdir().expect("tempdir"), config);
    let logged = decision_ids(&restarted).await;
    let missing: Vec<&String> = ids.iter().filter(|id| !logged.contains(*id)).collect();
    assert!(missing.is_empty(), "{} of {} answers are not in the audit log: {missing:?}", missing.len(), ids.len());

    // The sequencer catches up with every record written before the kill.
    let records = u64::try_from(logged.len()).expect("count");
    let (size, after) = loop {
        let (size, text) = checkpoint(&restarted).await;
        if size >= records {
            break (size, text);
        }
        assert!(restarted_at.elapsed() < Duration::from_secs(20), "the tree stayed at {size} of {records}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let caught_up = restarted_at.elapsed();
    let db = home.path().join("data/consentry.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=ro", db.display())).await.expect("open database");
    let leaves: HashSet<String> = sqlx::query_scalar::<_, String>("SELECT request_id FROM tlog_leaves")
        .fetch_all(&pool)
        .await
        .expect("leaves")
        .into_iter()
        .collect();
    pool.close().await;
    let leafless: Vec<&String> = ids.iter().filter(|id| !leaves.contains(*id)).collect();
    assert!(leafless.is_empty(), "{} answers have no leaf: {leafless:?}", leafless.len());

    // The tree after the restart extends the one a creator saw before the kill.
    let after_path = home.path().join("after.ckpt");
    std::fs::write(&after_path, &after).expect("write checkpoint");
    let (code, key, err) = restarted.cli(&["ca", "--tlog-key"]);
    assert_eq!(code, 0, "{err}");
    let out = Command::new(env!("CARGO_BIN_EXE_consentry"))
        .args(["verify", "consistency", "--key", key.trim(), "--old"])
        .arg(&saved_path)
        .arg("--new")
        .arg(&after_path)
        .args(["--from", &restarted.public_url("")])
        .output()
        .expect("consentry verify");
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{report}");
    eprintln!(
        "kill -9: {} answers before the kill, all on the record; tree of {size} leaves ({records} records) \
         {caught_up:?} after the restart; {}",
        ids.len(),
        report.trim()
    );
    assert_no_panic(&restarted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_policy_file_does_not_slow_other_origins() {
    // Accepts, reads the request, never answers (every path: robots.txt, ai.txt, tdmrep.json).
    let hanging = RawOrigin::start(|_path, mut stream, tally| async move {
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest).await;
        tally.peer_closed.store(true, Ordering::SeqCst);
    })
    .await;
    let good = TestOrigin::plain().await;
    let proxy = TestProxy::loopback("[robots]\nfetch_timeout = \"3s\"\n");
    let measure = |n: usize, label: &'static str| {
        let (proxy, good) = (proxy.addr, good.addr);
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            for i in 0..n {
                let started = Instant::now();
                let request = format!("GET http://{good}/{label}/{i} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
                let (head, _) = raw_exchange(proxy, request).await;
                assert!(head.starts_with("HTTP/1.1 200"), "{head}");
                latencies.push(started.elapsed());
            }
            latencies
        })
    };
    let percentile = |latencies: &mut Vec<Duration>, p: usize| {
        latencies.sort();
        latencies[(latencies.len() - 1) * p / 100]
    };
    let _ = measure(5, "warm").await.expect("warm-up");
    let mut baseline = measure(50, "baseline").await.expect("baseline");

    // 30 crawler requests wait on the hanging origin's policy files while others keep going.
    let started = Instant::now();
    let waiting: Vec<_> = (0..30)
        .map(|i| {
            let request =
                format!("GET {} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", hanging.url(&format!("/page/{i}")));
            tokio::spawn(raw_exchange(proxy.addr, request))
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut loaded = measure(50, "loaded").await.expect("loaded");
    let loaded_done = started.elapsed();
    for task in waiting {
        let (head, body) = task.await.expect("waiting request");
        assert!(head.starts_with("HTTP/1.1 451"), "{head}");
        let json: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        let rule = reason_with(&json, "unreachable")["rule"].as_str().unwrap_or_default().to_string();
        assert!(rule.contains("timed out") && rule.contains("3s"), "{rule}");
    }
    let hung_for = started.elapsed();
    assert_eq!(hanging.tally.hits("/robots.txt"), 1, "one fetch for all 30 waiting requests");
    assert_eq!(hanging.tally.paths.lock().expect("lock").iter().filter(|p| p.starts_with("/page")).count(), 0);
    let (base50, base_max) = (percentile(&mut baseline, 50), percentile(&mut baseline, 100));
    let (load50, load_max) = (percentile(&mut loaded, 50), percentile(&mut loaded, 100));
    eprintln!(
        "hanging policy file: 30 requests answered 451 after {hung_for:?}; meanwhile another origin: p50 \
         {base50:?} -> {load50:?}, max {base_max:?} -> {load_max:?} (50 requests done {loaded_done:?} in)"
    );
    assert!(loaded_done < Duration::from_secs(3), "the other origin's requests waited for the hanging one");
    assert!(load50 < base50 * 3 + Duration::from_millis(20), "p50 {base50:?} -> {load50:?}");
    assert!(load_max < Duration::from_millis(1000), "max {load_max:?}");
    assert_no_panic(&proxy);
}

/// A small tmpfs mounted for one test, unmounted when dropped; `None` where mounting is not
/// permitted (not root, or no `CAP_SYS_ADMIN` in this container).
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::tempdir().ok()?;
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .ok()?;
        mounted.status.success().then_some(Self { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a filler file until the disk is full; returns its path and size.
    fn fill(&self) -> (PathBuf, u64) {
        use std::io::Write as _;
        let path = self.path().join("filler");
        let mut file = std::fs::File::create(&path).expect("filler");
        let block = vec![0u8; 16 * 1024];
        let mut written = 0u64;
        while file.write_all(&block).and_then(|()| file.flush()).is_ok() {
            written += block.len() as u64;
        }
        // Then smaller writes take what a whole block no longer fits in.
        while file.write_all(&block[..512]).and_then(|()| file.flush()).is_ok() {
            written += 512;
        }
        (path, written)
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_under_the_sqlite_audit_log_fails_closed_and_recovers() {
    let Some(disk) = SmallDisk::mount("16m") else {
        eprintln!("skipped: mounting a tmpfs is not permitted here, so a full disk cannot be staged");
        return;
    };
    let origin = TestOrigin::plain().await;
    let db = disk.path().join("audit.db");
    let proxy = TestProxy::loopback(&format!("[storage]\nurl = \"sqlite://{}\"\n", db.display()));
    assert_eq!(curl(&["-x", &proxy.url(), &origin.url("/before")]).await.status, 200);
    let (filler, filled) = disk.fill();

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let workers: Vec<_> =
        (0..4).map(|i| tokio::spawn(load(proxy.addr, origin.addr, format!("/load/{i}"), stop_rx.clone()))).collect();
    // Fail closed: the store cannot take records, so answers become 503.
    let full_at = Instant::now();
    let first_503 = loop {
        let res = curl(&["-x", &proxy.url(), &origin.url("/probe")]).await;
        if res.status == 503 {
            assert_eq!(res.json()["error"], "audit_unavailable", "{}", res.text());
            break full_at.elapsed();
        }
        assert_eq!(res.status, 200, "{}", res.text());
        assert!(full_at.elapsed() < Duration::from_secs(30), "the full disk was never noticed");
    };
    // The load runs on against the full disk for a second.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let readiness = curl(&[&proxy.admin_url("/readyz")]).await;
    assert_eq!(readiness.status, 503, "not ready while commits fail: {}", readiness.text());
    assert!(readiness.text().contains("cannot commit"), "{}", readiness.text());
    let ready_while_full = readiness.status;
    std::fs::remove_file(&filler).expect("free the disk");
    let freed_at = Instant::now();
    let recovered_after = loop {
        let res = curl(&["-x", &proxy.url(), &origin.url("/probe")]).await;
        if res.status == 200 {
            break freed_at.elapsed();
        }
        assert!(freed_at.elapsed() < Duration::from_secs(20), "no recovery: {}", res.text());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let readiness = curl(&[&proxy.admin_url("/readyz")]).await;
    assert_eq!(readiness.status, 200, "ready again once commits succeed: {}", readiness.text());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = stop_tx.send(true);
    let mut answers = Vec::new();
    for worker in workers {
        answers.extend(worker.await.expect("worker"));
    }

    let failed = answers.iter().filter(|a| a.status != 200).inspect(|a| {
        assert_eq!((a.status, a.error.as_deref()), (503, Some("audit_unavailable")), "{a:?}");
    });
    let failed = failed.count();
    let served: Vec<String> = answers.iter().filter(|a| a.status == 200).filter_map(|a| a.request_id.clone()).collect();
    let logged = decision_ids(&proxy).await;
    let missing: Vec<&String> = served.iter().filter(|id| !logged.contains(*id)).collect();
    assert!(missing.is_empty(), "{} of {} 200s are not on the record: {missing:?}", missing.len(), served.len());
    // The transparency log catches up too: every record gets its leaf.
    let records = u64::try_from(logged.len()).expect("count");
    while checkpoint(&proxy).await.0 < records {
        assert!(freed_at.elapsed() < Duration::from_secs(20), "the tree stopped short of {records} records");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "full disk: filled with {filled} bytes; first 503 after {first_503:?}; /readyz {ready_while_full} while \
         full; {} x 200 (all on the record), {failed} x 503 audit_unavailable; recovered {recovered_after:?} \
         after the space was freed",
        served.len()
    );
    assert!(failed > 0, "the load never saw the full disk");
    assert_no_panic(&proxy);
    drop(proxy);
}

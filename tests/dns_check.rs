//! The domain-control TXT lookup against a real DNS server on loopback: records found, misses
//! named precisely, no caching of misses or of old tokens, TCP for large answers, and bounded
//! failures when the server is down or silent.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::dns::TestDns;
use consentry::public::dns::TxtChecker;

const NAME: &str = "_consentry-challenge.example.org";

fn checker(dns: &TestDns) -> TxtChecker {
    TxtChecker::new(&[dns.addr()], Duration::from_secs(5)).expect("checker")
}

#[tokio::test]
async fn finds_every_txt_record_and_joins_character_strings() {
    let dns = TestDns::start().await;
    dns.set_txt_strings(NAME, &[&["consentry-verify=abc123"], &["consentry-", "verify=", "def456"]]);
    let mut values = checker(&dns).txt_records(NAME).await.expect("records");
    values.sort();
    assert_eq!(values, ["consentry-verify=abc123", "consentry-verify=def456"]);
}

#[tokio::test]
async fn a_long_value_split_into_255_byte_strings_comes_back_whole() {
    let dns = TestDns::start().await;
    // 300 bytes with a multi-byte character across the 255-byte boundary.
    let value = format!("{}é{}", "a".repeat(254), "b".repeat(44));
    assert_eq!(value.len(), 300);
    dns.set_txt(NAME, &[&value]);
    assert_eq!(checker(&dns).txt_records(NAME).await.expect("records"), [value]);
}

#[tokio::test]
async fn an_answer_too_big_for_udp_is_fetched_over_tcp() {
    let dns = TestDns::start().await;
    let values: Vec<String> = (0..8).map(|i| format!("token-{i}-{}", "x".repeat(400))).collect();
    let refs: Vec<&str> = values.iter().map(String::as_str).collect();
    dns.set_txt(NAME, &refs);
    let mut got = checker(&dns).txt_records(NAME).await.expect("records");
    got.sort();
    assert_eq!(got, values);
    // The truncated UDP answer, then the TCP retry.
    assert!(dns.queries_for(NAME) >= 2, "queries: {}", dns.queries_for(NAME));
}

#[tokio::test]
async fn a_missing_name_is_reported_as_nxdomain() {
    let dns = TestDns::start().await;
    dns.set_txt("_consentry-challenge.other.example", &["x"]);
    let error = checker(&dns).txt_records("_consentry-challenge.missing.example").await.expect_err("missing");
    assert_eq!(error, "no TXT record at _consentry-challenge.missing.example (NXDOMAIN)");
}

#[tokio::test]
async fn an_existing_name_without_txt_is_reported_as_such() {
    let dns = TestDns::start().await;
    // `example.org` exists (it has a child) but holds no TXT record.
    dns.set_txt(NAME, &["x"]);
    let error = checker(&dns).txt_records("example.org").await.expect_err("no txt");
    assert_eq!(error, "no TXT record at example.org (no records of that type)");
}

#[tokio::test]
async fn a_record_added_after_a_miss_is_seen_at_once() {
    let dns = TestDns::start().await;
    let checker = checker(&dns);
    let error = checker.txt_records(NAME).await.expect_err("not yet there");
    assert!(error.contains("NXDOMAIN"), "{error}");

    // The miss carried an SOA with a one-hour negative TTL; a caching client would keep it.
    dns.set_txt(NAME, &["consentry-verify=abc123"]);
    let started = Instant::now();
    let values = checker.txt_records(NAME).await.expect("found on retry");
    assert_eq!(values, ["consentry-verify=abc123"]);
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(dns.queries_for(NAME), 2, "the retry went to the server");
}

#[tokio::test]
async fn a_changed_or_removed_record_is_seen_at_once() {
    let dns = TestDns::start().await;
    let checker = checker(&dns);
    dns.set_txt(NAME, &["consentry-verify=old"]);
    assert_eq!(checker.txt_records(NAME).await.expect("old"), ["consentry-verify=old"]);

    // The answer carried a one-hour TTL; a caching client would keep returning it.
    dns.set_txt(NAME, &["consentry-verify=new"]);
    assert_eq!(checker.txt_records(NAME).await.expect("new"), ["consentry-verify=new"]);

    dns.remove(NAME);
    let error = checker.txt_records(NAME).await.expect_err("removed");
    assert!(error.contains("NXDOMAIN"), "{error}");
}

#[tokio::test]
async fn lookups_go_to_the_configured_server_as_absolute_names() {
    let dns = TestDns::start().await;
    dns.set_txt(NAME, &["v"]);
    assert_eq!(dns.queries(), 0);
    let checker = checker(&dns);
    // Case and a root dot make no difference.
    assert_eq!(checker.txt_records("_Consentry-Challenge.EXAMPLE.org.").await.expect("found"), ["v"]);
    assert_eq!(checker.txt_records(NAME).await.expect("found"), ["v"]);
    assert!(dns.queries() > 0);
    // Exactly the names asked for: nothing else was tried (no search-domain variants).
    assert_eq!(dns.queries_for(NAME), dns.queries());
    assert_eq!(dns.queries(), 2);
}

#[tokio::test]
async fn concurrent_lookups_through_clones_all_succeed() {
    let dns = TestDns::start().await;
    dns.set_txt(NAME, &["v"]);
    let checker = checker(&dns);
    let lookups: Vec<_> = (0..16)
        .map(|_| {
            let checker = checker.clone();
            tokio::spawn(async move { checker.txt_records(NAME).await })
        })
        .collect();
    for lookup in lookups {
        assert_eq!(lookup.await.expect("task").expect("found"), ["v"]);
    }
    // hickory coalesces identical in-flight queries, so the server may see fewer than 16.
    let queries = dns.queries_for(NAME);
    assert!((1..=16).contains(&queries), "queries: {queries}");
}

#[tokio::test]
async fn a_server_that_is_down_fails_within_the_timeout() {
    // A port that was free a moment ago: nothing listens on UDP or TCP.
    let addr = {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        socket.local_addr().expect("addr")
    };
    let checker = TxtChecker::new(&[addr], Duration::from_secs(1)).expect("checker");
    let started = Instant::now();
    let error = checker.txt_records(NAME).await.expect_err("down");
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_millis(1500), "took {elapsed:?}");
    assert!(
        error == format!("DNS lookup of {NAME} timed out after 1s")
            || error.starts_with(&format!("DNS lookup of {NAME} failed: ")),
        "{error}"
    );
}

#[tokio::test]
async fn a_silent_server_times_out_after_the_configured_timeout() {
    // Bound on UDP and TCP but never answering: a black hole, not a refusal. (The kernel
    // completes TCP handshakes for the unaccepted listener, so TCP hangs too.)
    let mut pair = None;
    for _ in 0..50 {
        let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.expect("bind udp");
        let addr: SocketAddr = udp.local_addr().expect("addr");
        if let Ok(tcp) = tokio::net::TcpListener::bind(addr).await {
            pair = Some((udp, tcp, addr));
            break;
        }
    }
    let (_udp, _tcp, addr) = pair.expect("a free UDP+TCP port");
    let checker = TxtChecker::new(&[addr], Duration::from_secs(1)).expect("checker");
    let started = Instant::now();
    let error = checker.txt_records(NAME).await.expect_err("silent");
    let elapsed = started.elapsed();
    assert_eq!(error, format!("DNS lookup of {NAME} timed out after 1s"));
    assert!(elapsed >= Duration::from_millis(900) && elapsed < Duration::from_millis(1500), "took {elapsed:?}");
}

#[tokio::test]
async fn the_system_configuration_is_used_when_no_servers_are_given() {
    // Only construction: a lookup would need the network.
    if std::path::Path::new("/etc/resolv.conf").exists() {
        TxtChecker::new(&[], Duration::from_secs(1)).expect("system resolver");
    }
}

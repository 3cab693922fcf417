//! Connection floods against the real binary: idle connections, slowloris heads, idle CONNECT
//! tunnels, one address hoarding connections, and a client that stops reading. Each test checks
//! that a working crawler is still served at once, within the configured limits, and that the
//! proxy's own count of open connections says what happened.
//!
//! The flood comes from 127.0.0.2 and the working crawler from 127.0.0.1, as two machines would.
//! The full-size runs (10,000 idle connections, 10,000 slowloris heads, slow readers) are
//! `tests/stress/floods.py`.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{Canned, TestOrigin, TestProxy, curl};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const FLOOD_SOURCE: [u8; 4] = [127, 0, 0, 2];

async fn connect_from(source: [u8; 4], proxy: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.bind(SocketAddr::from((source, 0))).expect("bind flood source");
    socket.connect(proxy).await.expect("connect to the proxy")
}

/// What a flood connection does once connected.
#[derive(Clone, Copy)]
enum Flood {
    /// Sends nothing.
    Idle,
    /// Sends a request head one byte every 100 ms and never finishes it.
    Slowloris,
    /// Opens a CONNECT tunnel and never starts TLS in it.
    IdleTunnel,
}

/// Opens one flood connection and keeps it as the kind says, until the proxy closes it. The
/// returned task ends when the proxy has closed the connection.
async fn flood_connection(proxy: SocketAddr, origin_port: u16, kind: Flood) -> tokio::task::JoinHandle<()> {
    let mut stream = connect_from(FLOOD_SOURCE, proxy).await;
    if let Flood::IdleTunnel = kind {
        let connect = format!("CONNECT 127.0.0.1:{origin_port} HTTP/1.1\r\nHost: 127.0.0.1:{origin_port}\r\n\r\n");
        stream.write_all(connect.as_bytes()).await.expect("send CONNECT");
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).await.expect("read CONNECT answer");
        assert_eq!(&head, b"HTTP/1.1 200", "the tunnel opens");
    }
    tokio::spawn(async move {
        match kind {
            Flood::Slowloris => {
                let head = format!("GET http://127.0.0.1:{origin_port}/page HTTP/1.1\r\nHost: x\r\nX-Slow: ");
                let mut bytes = head.into_bytes().into_iter().chain(std::iter::repeat(b'a'));
                loop {
                    let byte = bytes.next().unwrap_or(b'a');
                    if stream.write_all(&[byte]).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            Flood::Idle | Flood::IdleTunnel => {
                let mut rest = Vec::new();
                let _ = stream.read_to_end(&mut rest).await;
            }
        }
    })
}

fn allow_all_origin(origin: &TestOrigin) {
    origin.robots("User-agent: *\nAllow: /\n");
    origin.set("/page", Canned::body("hello"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_idle_slowloris_and_tunnel_connections_cannot_starve_a_working_crawler() {
    let origin = TestOrigin::plain().await;
    allow_all_origin(&origin);
    origin.set("/long", Canned::body("slow but served").with_delay(Duration::from_secs(4)));
    // A long header timeout, so that only reclaiming can free the flood's slots in time.
    let proxy = TestProxy::loopback("max_connections = 24\nheader_read_timeout = \"120s\"\n");
    let proxy_addr = proxy.addr;

    // A crawler with a request in flight on its own connection all through the flood.
    let slow_url = origin.url("/long");
    let proxy_url = proxy.url();
    let working = tokio::spawn(async move { curl(&["-x", &proxy_url, &slow_url]).await });
    origin.wait_for_request("/long").await;

    let kinds = [Flood::Idle, Flood::Slowloris, Flood::IdleTunnel];
    let mut flood = Vec::new();
    for round in 0..10 {
        // The attacker tops the proxy up to its limit before each crawler request.
        let open = proxy.metric("consentry_client_connections").await as usize;
        for i in open..24 {
            flood.push(flood_connection(proxy_addr, origin.port(), kinds[(round + i) % kinds.len()]).await);
        }
        proxy.wait_for_metric("consentry_client_connections", |v| v >= 24.0, "the flood fills every slot").await;

        let started = Instant::now();
        let answer =
            curl(&["--interface", "127.0.0.1", "--max-time", "10", "-x", &proxy.url(), &origin.url("/page")]).await;
        assert_eq!(answer.status, 200, "round {round}: {}", answer.stderr);
        assert_eq!(answer.text(), "hello");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "round {round}: the crawler waited {:?}, as if for a flood connection to time out",
            started.elapsed()
        );
    }
    let reclaimed = proxy.metric("consentry_client_connections_reclaimed_total").await;
    assert!(reclaimed >= 10.0, "each crawler connection displaced a flood connection: {reclaimed}");
    // A slowloris connection notices the close at its next byte, 100 ms later at most.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let closed = flood.iter().filter(|task| task.is_finished()).count();
        if closed >= 10 {
            break;
        }
        assert!(Instant::now() < deadline, "the displaced flood connections were closed: {closed} of {}", flood.len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let working = working.await.expect("working crawler");
    assert_eq!(working.status, 200, "the busy connection was never reclaimed: {}", working.stderr);
    assert_eq!(working.text(), "slow but served");
    assert!(!proxy.stderr().contains("panicked"), "{}", proxy.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_over_its_connection_limit_gets_503_and_others_are_unaffected() {
    let origin = TestOrigin::plain().await;
    allow_all_origin(&origin);
    let proxy = TestProxy::loopback("max_connections_per_client = 3\n");
    let mut hoard = Vec::new();
    for _ in 0..3 {
        hoard.push(connect_from(FLOOD_SOURCE, proxy.addr).await);
    }
    proxy.wait_for_metric("consentry_client_connections", |v| v == 3.0, "three connections held").await;

    let mut fourth = connect_from(FLOOD_SOURCE, proxy.addr).await;
    let mut answer = String::new();
    fourth.read_to_string(&mut answer).await.expect("read the refusal");
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
    assert!(answer.contains("\"error\":\"too_many_connections\""), "{answer}");
    assert!(answer.contains("proxy.max_connections_per_client"), "{answer}");

    // curl sends its request at once; it still reads the refusal, not a reset.
    let refused = curl(&["--interface", "127.0.0.2", "-x", &proxy.url(), &origin.url("/page")]).await;
    assert_eq!(refused.status, 503, "{}", refused.stderr);
    assert_eq!(refused.json()["error"], "too_many_connections");

    let other = curl(&["--interface", "127.0.0.1", "-x", &proxy.url(), &origin.url("/page")]).await;
    assert_eq!(other.status, 200, "another address is served: {}", other.stderr);

    drop(hoard.pop());
    proxy.wait_for_metric("consentry_client_connections", |v| v == 2.0, "one connection closed").await;
    let again = curl(&["--interface", "127.0.0.2", "-x", &proxy.url(), &origin.url("/page")]).await;
    assert_eq!(again.status, 200, "below its limit again, the address is served: {}", again.stderr);
    let refusals = proxy.metric("consentry_client_connections_refused_total{reason=\"per_client\"}").await;
    assert_eq!(refusals, 2.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_disconnected_and_its_slot_freed() {
    const BIG: usize = 64 * 1024 * 1024;
    let origin = TestOrigin::plain().await;
    allow_all_origin(&origin);
    origin.set("/big", Canned::body(vec![b'x'; BIG]));
    let proxy = TestProxy::loopback("max_connections = 1\nclient_write_timeout = \"1s\"\n");

    let mut reader = TcpStream::connect(proxy.addr).await.expect("connect");
    let request = format!("GET {} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", origin.url("/big"));
    reader.write_all(request.as_bytes()).await.expect("send request");
    // The client reads nothing; once the socket buffers are full the proxy's writes stall.
    proxy.wait_for_metric("consentry_client_connections", |v| v == 1.0, "the reader is connected").await;
    proxy.wait_for_metric("consentry_client_connections", |v| v == 0.0, "the stalled reader is cut off").await;

    let mut received = Vec::new();
    let _ = reader.read_to_end(&mut received).await;
    assert!(received.len() < BIG, "the answer was cut short: {} of {BIG} bytes", received.len());
    let next = curl(&["-x", &proxy.url(), &origin.url("/page")]).await;
    assert_eq!(next.status, 200, "the only slot is free again: {}", next.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slowloris_head_is_closed_at_the_header_timeout_even_while_bytes_arrive() {
    let origin = TestOrigin::plain().await;
    allow_all_origin(&origin);
    let proxy = TestProxy::loopback("header_read_timeout = \"1s\"\n");
    let started = Instant::now();
    let dribbler = flood_connection(proxy.addr, origin.port(), Flood::Slowloris).await;
    tokio::time::timeout(Duration::from_secs(10), dribbler)
        .await
        .expect("the dribbling connection is closed")
        .expect("task");
    assert!(started.elapsed() >= Duration::from_millis(900), "closed by the timeout, not at once");
    proxy.wait_for_metric("consentry_client_connections", |v| v == 0.0, "nothing left open").await;
    assert_eq!(origin.hits("/page"), 0, "the unfinished request never reached the origin");
}

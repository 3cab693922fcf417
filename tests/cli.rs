//! The command line as a user meets it: `config check`, `ca`, `run` start-up errors and
//! graceful shutdown, and the listener's timeouts.

mod common;

use std::io::Read;
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Canned, TestOrigin, TestProxy, curl};

/// Sends `bytes` and reads until the proxy closes the connection: (time it took, what came back).
async fn send_and_wait_for_close(addr: std::net::SocketAddr, bytes: Vec<u8>) -> (Duration, String) {
    tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(addr).expect("connect");
        std::io::Write::write_all(&mut stream, &bytes).expect("write");
        stream.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
        let started = Instant::now();
        let mut buffer = Vec::new();
        let _ = stream.read_to_end(&mut buffer);
        (started.elapsed(), String::from_utf8_lossy(&buffer).to_string())
    })
    .await
    .expect("join")
}

fn consentry(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_consentry")).args(args).output().expect("run consentry")
}

#[test]
fn config_check_accepts_the_shipped_files() {
    for file in ["config/consentry.toml", "deploy/container.toml"] {
        let path = format!("{}/{file}", env!("CARGO_MANIFEST_DIR"));
        let out = consentry(&["config", "check", &path]);
        assert!(out.status.success(), "{file}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stdout).contains("valid"));
    }
}

#[test]
fn config_check_names_file_key_and_reason_and_exits_1() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("consentry.toml");
    std::fs::write(&path, "[proxy]\nblock_status = 200\nmode = \"monitor\"\n[tls]\nintercept = true\n").expect("write");
    let out = consentry(&["config", "check", path.to_str().expect("path")]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim(), format!("{}: `proxy.block_status`: must be 403 or 451, got 200", path.display()));

    std::fs::write(&path, "[proxy]\nlisten = \"nowhere\"\n").expect("write");
    let out = consentry(&["config", "check", path.to_str().expect("path")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`proxy.listen`"));

    let out = consentry(&["config", "check", "/nonexistent/consentry.toml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/consentry.toml"));
}

#[test]
fn run_refuses_an_invalid_config_before_listening() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[storage]\ndurability = \"sometimes\"\n").expect("write");
    let out = consentry(&["run", "-c", path.to_str().expect("path")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`storage.durability`"));
    assert!(out.stdout.is_empty(), "no ready line for a refused config");
}

#[test]
fn ca_prints_a_stable_pem_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("c.toml");
    std::fs::write(&path, format!("data_dir = \"{}\"\n", dir.path().join("data").display())).expect("write");
    let first = consentry(&["ca", "-c", path.to_str().expect("path")]);
    assert!(first.status.success());
    let pem = String::from_utf8_lossy(&first.stdout).to_string();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
    let second = consentry(&["ca", "-c", path.to_str().expect("path")]);
    assert_eq!(pem, String::from_utf8_lossy(&second.stdout), "the CA is created once");
    // openssl agrees it is a CA certificate for ECDSA P-256.
    let cert_path = dir.path().join("ca.pem");
    std::fs::write(&cert_path, &pem).expect("write");
    let text =
        Command::new("openssl").args(["x509", "-noout", "-text", "-in"]).arg(&cert_path).output().expect("openssl");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("CA:TRUE"), "{text}");
    assert!(text.contains("prime256v1"), "{text}");
}

#[tokio::test]
async fn sigterm_lets_in_flight_requests_finish() {
    let origin = TestOrigin::plain().await;
    let proxy = TestProxy::loopback("");
    let url = origin.url("/slow");
    let proxy_url = proxy.url();
    let request = tokio::spawn(async move { curl(&["-x", &proxy_url, &url]).await });
    // Readiness: the origin has received the request.
    origin.wait_for_request("/slow").await;
    let status = tokio::task::spawn_blocking(move || proxy.terminate()).await.expect("join");
    assert!(status.success(), "{status:?}");
    let res = request.await.expect("curl");
    assert_eq!(res.status, 200, "the in-flight request completed during the drain: {}", res.stderr);
    assert_eq!(res.text(), "slow");
}

#[tokio::test]
async fn slow_request_heads_are_cut_off_by_the_header_timeout() {
    let proxy = TestProxy::loopback("header_read_timeout = \"1s\"\n");
    let addr = proxy.addr;
    let partial_head = b"GET http://example.com/ HTTP/1.1\r\nHost: exa".to_vec();
    let (elapsed, answer) = send_and_wait_for_close(addr, partial_head).await;
    assert!(elapsed < Duration::from_secs(15), "connection held for {elapsed:?}");
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 408"), "{answer:?}");
}

#[tokio::test]
async fn idle_keep_alive_connections_are_closed() {
    let origin = TestOrigin::plain().await;
    let proxy = TestProxy::loopback("header_read_timeout = \"1s\"\n");
    let addr = proxy.addr;
    let request = format!("GET {} HTTP/1.1\r\nHost: x\r\n\r\n", origin.url("/hello"));
    let (elapsed, answer) = send_and_wait_for_close(addr, request.into_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    assert!(elapsed < Duration::from_secs(15), "an idle keep-alive connection was held for {elapsed:?}");
}

#[tokio::test]
async fn the_connection_limit_queues_further_clients_while_every_slot_is_busy() {
    let origin = TestOrigin::plain().await;
    origin.set("/long", Canned::body("long").with_delay(Duration::from_secs(4)));
    let proxy = TestProxy::loopback("max_connections = 1\n");
    // Occupy the only slot with a request in flight: a busy connection is never displaced.
    let (proxy_url, long_url) = (proxy.url(), origin.url("/long"));
    let busy = tokio::spawn(async move { curl(&["-x", &proxy_url, &long_url]).await });
    origin.wait_for_request("/long").await;
    let queued = curl(&["--max-time", "1", "-x", &proxy.url(), &origin.url("/hello")]).await;
    assert_eq!(queued.status, 0, "served beyond max_connections: {}", queued.text());
    assert_eq!(origin.hits("/hello"), 0);
    assert_eq!(busy.await.expect("busy request").status, 200);
    let served = curl(&["-x", &proxy.url(), &origin.url("/hello")]).await;
    assert_eq!(served.status, 200, "{}", served.stderr);

    // A connection that has sent nothing does not keep its slot from a newcomer: it is closed.
    let mut idle = TcpStream::connect(proxy.addr).expect("connect");
    proxy.wait_for_metric("consentry_client_connections", |open| open == 1.0, "the idle connection is counted").await;
    let served = curl(&["--max-time", "5", "-x", &proxy.url(), &origin.url("/hello")]).await;
    assert_eq!(served.status, 200, "the newcomer displaced the idle connection: {}", served.stderr);
    idle.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let mut buf = [0u8; 16];
    assert_eq!(idle.read(&mut buf).expect("closed, not timed out"), 0);
}

#[test]
fn a_second_node_on_the_same_sqlite_database_is_refused() {
    let first = TestProxy::loopback("");
    let output = Command::new(env!("CARGO_BIN_EXE_consentry"))
        .args(["run", "-c"])
        .arg(&first.config_path)
        .output()
        .expect("run a second node");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("another consentry node is already running"), "{stderr}");
    assert!(stderr.contains("PostgreSQL"), "the error says what to do: {stderr}");
    assert!(output.stdout.is_empty(), "no ready line");
}

#[test]
fn environment_overrides_apply_to_config_check_and_name_the_variable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("c.toml");
    std::fs::write(&file, "[proxy]\nblock_status = 451\n").expect("write");
    let run = |vars: &[(&str, &str)]| {
        Command::new(env!("CARGO_BIN_EXE_consentry"))
            .args(["config", "check"])
            .arg(&file)
            .envs(vars.iter().copied())
            .output()
            .expect("config check")
    };
    assert!(run(&[("CONSENTRY_STORAGE__URL", "postgres://consentry@db/consentry")]).status.success());
    let bad = run(&[("CONSENTRY_PROXY__BLOCK_STATUS", "200")]);
    assert_eq!(bad.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("`proxy.block_status`") && stderr.contains("CONSENTRY_PROXY__BLOCK_STATUS"), "{stderr}");
}

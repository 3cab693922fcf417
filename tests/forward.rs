//! Plain HTTP forwarding through the real proxy: bodies, headers, identity, network policy,
//! upstream failures and malformed requests.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{TestOrigin, TestProxy, big_body_sha256, curl};

const ACME: &str = r#"
[[crawlers]]
name = "acme"
password = "s3cret"
token = "AcmeBot"
user_agent = "AcmeBot/1.0 (+https://acme.example/bot)"
purposes = ["ai-train"]

[[crawlers]]
name = "plain"
password = "pw"
token = "PlainBot"
purposes = ["search"]
"#;

#[tokio::test]
async fn allowed_request_is_forwarded_with_consentry_headers() {
    let origin = TestOrigin::plain().await;
    let proxy = TestProxy::loopback("");
    let res = curl(&["-x", &proxy.url(), &origin.url("/hello")]).await;
    assert_eq!(res.status, 200, "{}", res.stderr);
    assert_eq!(res.text(), "hello");
    assert_eq!(res.header("consentry-decision"), Some("allow"));
    let id = res.header("consentry-request-id").expect("request id");
    assert_eq!(id.len(), 36, "a UUID: {id}");
    assert!(res.header("via").is_some_and(|v| v.ends_with("consentry")), "{:?}", res.headers);
    let seen = origin.last("/hello");
    assert_eq!(seen.header("via").as_deref(), Some("1.1 consentry"));
    assert_eq!(seen.header("host"), Some(origin.addr.to_string()));
}

#[tokio::test]
async fn large_bodies_stream_byte_exact_both_ways_with_bounded_memory() {
    const SIZE: usize = 50 * 1024 * 1024;
    let origin = TestOrigin::plain().await;
    let proxy = TestProxy::loopback("");
    let before = proxy.peak_rss_kib();

    let download = curl(&["-x", &proxy.url(), &origin.url(&format!("/big?bytes={SIZE}"))]).await;
    assert_eq!(download.status, 200, "{}", download.stderr);
    assert_eq!(download.body.len(), SIZE);
    assert_eq!(common::hex(&<sha2::Sha256 as sha2::Digest>::digest(&download.body)), big_body_sha256(SIZE));

    let dir = tempfile::tempdir().expect("tempdir");
    let upload_path = dir.path().join("upload.bin");
    let upload = common::big_body_chunk(0, SIZE);
    std::fs::write(&upload_path, &upload).expect("write upload");
    let data_arg = format!("@{}", upload_path.display());
    let res = curl(&["-x", &proxy.url(), "--data-binary", &data_arg, &origin.url("/echo")]).await;
    assert_eq!(res.status, 200, "{}", res.stderr);
    assert_eq!(res.text(), format!("{SIZE} {}", big_body_sha256(SIZE)));

    let after = proxy.peak_rss_kib();
    // 100 MB went through; a proxy that buffered a body would have grown by at least 50 MB.
    assert!(after < before + 20 * 1024, "peak RSS grew from {before} KiB to {after} KiB");
}

#[tokio::test]
async fn chunked_uploads_arrive_intact() {
    let origin = TestOrigin::plain().await;
    let proxy = TestProxy::loopback("");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("chunked.bin");
    let payload = common::big_body_chunk(0, 300_000);
    std::fs::write(&path, &payload).expect("write");
    let data_arg = format!("@{}", path.display());
    let res = curl(&[
        "-x",
        &proxy.url(),
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        &data_arg,
        &origin.url("/echo"),
    ])
    .await;
    assert_eq!(res.status, 200, "{}", res.stderr);
    assert_eq!(res.text(), format!("300000 {}", big_body_sha256(300_000)));
    let seen = origin.last("/echo");
    assert_eq!(seen.body_len, 300_000);
}

#[tokio::test]
async fn hop_by_hop_headers_are_stripped_both_ways() {
    let origin = TestOrigin::plain().await;
    let proxy = TestProxy::loopback("");
    let res = curl(&[
        "-x",
        &proxy.url(),
        "-H",
        "Connection: keep-alive, X-Client-Hop",
        "-H",
        "X-Client-Hop: secret",
        "-H",
        "Keep-Alive: timeout=5",
        "-H",
        "Proxy-Connection: keep-alive",
        "-H",
        "TE: trailers",
        "-H",
        "X-End-To-End: kept",
        &origin.url("/hop"),
    ])
    .await;
    assert_eq!(res.status, 200, "{}", res.stderr);
    let seen = origin.last("/hop");
    for name in ["x-client-hop", "keep-alive", "proxy-connection", "te", "proxy-authorization"] {
        assert_eq!(seen.header(name), None, "{name} reached the origin");
    }
    assert_eq!(seen.header("x-end-to-end").as_deref(), Some("kept"));
    assert_eq!(res.header("x-origin-hop"), None, "a field named in the origin's Connection reached the client");
    assert_eq!(res.header("keep-alive"), None);
    assert_eq!(res.header("x-end-to-end"), Some("kept"));
}

#[tokio::test]
async fn credentials_select_the_profile_and_its_user_agent() {
    let origin = TestOrigin::plain().await;
    let proxy = TestProxy::loopback(ACME);
    let res = curl(&["-x", &proxy.url(), "-U", "acme:s3cret", "-A", "curl-pretending", &origin.url("/hello")]).await;
    assert_eq!(res.status, 200, "{}", res.stderr);
    let seen = origin.last("/hello");
    assert_eq!(seen.header("user-agent").as_deref(), Some("AcmeBot/1.0 (+https://acme.example/bot)"));
    assert_eq!(seen.header("proxy-authorization"), None, "credentials never reach the origin");

    // A profile without user_agent keeps the crawler's own.
    let res = curl(&["-x", &proxy.url(), "-U", "plain:pw", "-A", "PlainBot/2.0", &origin.url("/hello")]).await;
    assert_eq!(res.status, 200);
    assert_eq!(origin.last("/hello").header("user-agent").as_deref(), Some("PlainBot/2.0"));
}

#[tokio::test]
async fn missing_or_wrong_credentials_get_407() {
    let origin = TestOrigin::plain().await;
    let proxy = TestProxy::loopback(ACME);
    let url = origin.url("/hello");
    let proxy_url = proxy.url();
    for credentials in [None, Some("acme:wrong"), Some("nobody:s3cret")] {
        let mut args = vec!["-x", proxy_url.as_str()];
        if let Some(credentials) = credentials {
            args.extend(["-U", credentials]);
        }
        args.push(&url);
        let res = curl(&args).await;
        assert_eq!(res.status, 407, "{credentials:?}");
        assert_eq!(res.header("proxy-authenticate"), Some("Basic realm=\"consentry\""));
        assert!(res.json()["reason"].as_str().is_some_and(|r| !r.is_empty()));
    }
    assert_eq!(origin.hits("/hello"), 0, "an unidentified request must not reach the origin");
}

#[tokio::test]
async fn private_destinations_are_refused_by_default() {
    let origin = TestOrigin::plain().await;
    let proxy = TestProxy::start("");
    let res = curl(&["-x", &proxy.url(), &origin.url("/hello")]).await;
    assert_eq!(res.status, 403);
    assert_eq!(res.header("consentry-decision"), Some("block"));
    let body = res.json();
    assert_eq!(body["verdict"], "block");
    assert_eq!(body["reasons"][0]["source"], "network-policy");
    assert!(body["reasons"][0]["rule"].as_str().is_some_and(|r| r.contains("loopback")), "{body}");
    assert_eq!(body["request_id"].as_str(), res.header("consentry-request-id"));
    assert_eq!(origin.hits("/hello"), 0);

    // The same through a resolve override: the check is on the address actually connected to.
    let proxy = TestProxy::start(&format!(
        "[proxy]\nlisten = \"127.0.0.1:0\"\n[upstream]\nresolve = {{ \"public.example:80\" = \"{}\" }}\n",
        origin.addr
    ));
    let res = curl(&["-x", &proxy.url(), "http://public.example/hello"]).await;
    assert_eq!(res.status, 403);
    assert_eq!(origin.hits("/hello"), 0);
}

#[tokio::test]
async fn resolve_overrides_route_like_curl_resolve() {
    let origin = TestOrigin::plain().await;
    let proxy =
        TestProxy::loopback(&format!("[upstream]\nresolve = {{ \"Site.Example:80\" = \"{}\" }}\n", origin.addr));
    let res = curl(&["-x", &proxy.url(), "http://site.example/hello"]).await;
    assert_eq!(res.status, 200, "{}", res.stderr);
    assert_eq!(origin.last("/hello").header("host").as_deref(), Some("site.example"));
}

/// An origin that answers `/robots.txt` with 404 and every other request with bytes that are
/// not HTTP, then closes.
async fn broken_origin() -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let answer: &[u8] = if head.starts_with(b"GET /robots.txt ") {
                    b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                } else {
                    b"this is not HTTP\r\n\r\n"
                };
                let _ = stream.write_all(answer).await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn broken_upstream_gets_502_and_stalled_upstream_504() {
    let origin = TestOrigin::plain().await;
    let broken = broken_origin().await;
    let proxy = TestProxy::loopback("[upstream]\nresponse_timeout = \"1s\"\n");
    let res = curl(&["-x", &proxy.url(), &format!("http://{broken}/x")]).await;
    assert_eq!(res.status, 502, "{}", res.text());
    let body = res.json();
    assert_eq!(body["error"], "upstream_failed");
    assert!(body["reason"].as_str().is_some_and(|r| !r.is_empty()), "{body}");
    assert!(body["request_id"].is_string());

    let res = curl(&["-x", &proxy.url(), &origin.url("/stall")]).await;
    assert_eq!(res.status, 504);
    assert_eq!(res.json()["error"], "upstream_timeout");
}

#[tokio::test]
async fn malformed_requests_get_400_and_the_proxy_keeps_serving() {
    let origin = TestOrigin::plain().await;
    let proxy = TestProxy::loopback("");
    let raw = |request: &str| -> String {
        let mut stream = TcpStream::connect(proxy.addr).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        stream.write_all(request.as_bytes()).expect("write");
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer
    };
    let cases = [
        "GET /relative HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "GET ftp://example.com/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "GET http://user:pw@example.com/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "CONNECT example.com HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n",
        "GARBAGE\r\n\r\n",
        "GET http://example.com/ HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
    ];
    for case in cases {
        let answer = raw(case);
        assert!(answer.starts_with("HTTP/1.1 400"), "{case:?} got {answer:?}");
    }
    let huge_header =
        format!("GET {} HTTP/1.1\r\nConnection: close\r\nX-Big: {}\r\n\r\n", origin.url("/hello"), "a".repeat(70_000));
    let answer = raw(&huge_header);
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer:?}");
    let many_headers: String = (0..150).map(|i| format!("X-H{i}: v\r\n")).collect();
    let answer = raw(&format!("GET {} HTTP/1.1\r\nConnection: close\r\n{many_headers}\r\n", origin.url("/hello")));
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer:?}");
    assert_eq!(origin.hits("/hello"), 0, "an oversized head must not be forwarded");
    let res = curl(&["-x", &proxy.url(), &origin.url("/hello")]).await;
    assert_eq!(res.status, 200, "the proxy still serves after malformed input");
}

#[tokio::test]
async fn requests_looping_back_through_consentry_are_refused() {
    let proxy = TestProxy::loopback("");
    let res = curl(&["-x", &proxy.url(), &format!("http://{}/loop", proxy.addr)]).await;
    assert_eq!(res.status, 508, "{}", res.text());
    assert_eq!(res.json()["error"], "loop_detected");
}

#[tokio::test]
async fn sigterm_drains_and_exits_cleanly() {
    let origin = TestOrigin::plain().await;
    let proxy = TestProxy::loopback("");
    let res = curl(&["-x", &proxy.url(), &origin.url("/hello")]).await;
    assert_eq!(res.status, 200);
    let status = proxy.terminate();
    assert!(status.success(), "exit status {status:?}");
}

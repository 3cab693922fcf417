//! Hostile requests against the real binary and real origins.
//!
//! Two classes: request smuggling and desync (raw bytes on the proxy port and inside an
//! intercepted CONNECT tunnel), and attempts to get around a crawler's policy (misdirected
//! tunnels, host, path and address tricks, redirects, HTTP/2 CONNECT, upgrades). Every test
//! checks what matters: the origin never saw a request the policy blocks, the crawler got a
//! specific answer, the proxy did not panic, and it still serves afterwards.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{Canned, TestOrigin, TestProxy, curl};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// The origin's robots.txt: everything under `/private` is off limits to every crawler.
const ROBOTS: &str = "User-agent: *\nDisallow: /private\n";

/// The plain origin's name (resolved to the test origin by `upstream.resolve`).
const HOST: &str = "blocked.example";

/// The TLS origin's name (its certificate covers it).
const TLS_HOST: &str = "site.test";

/// How long to wait for bytes the proxy should send.
const PATIENCE: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------------
// Harness: raw HTTP/1.1 on a byte stream.

/// One HTTP/1.1 response as read off the wire.
#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", self.head, String::from_utf8_lossy(&self.body)))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Parses one complete response at the start of `buf`; `None` while incomplete.
fn parse_answer(buf: &[u8]) -> Option<(Answer, usize)> {
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let mut answer = Answer { status, head, body: Vec::new() };
    if answer.header("transfer-encoding").is_some_and(|te| te.eq_ignore_ascii_case("chunked")) {
        let mut at = head_end;
        loop {
            let line_end = at + buf.get(at..)?.windows(2).position(|w| w == b"\r\n")?;
            let size_text = String::from_utf8_lossy(&buf[at..line_end]);
            let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
            at = line_end + 2;
            if size == 0 {
                // No trailers from these servers: the last chunk is followed by CRLF.
                return (buf.len() >= at + 2).then_some((answer, at + 2));
            }
            answer.body.extend_from_slice(buf.get(at..at + size)?);
            at += size + 2;
        }
    }
    let length: usize = answer.header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    answer.body = buf.get(head_end..head_end + length)?.to_vec();
    Some((answer, head_end + length))
}

/// A client connection speaking raw bytes.
struct Raw<S> {
    io: S,
    buf: Vec<u8>,
    eof: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Raw<S> {
    fn new(io: S) -> Self {
        Self { io, buf: Vec::new(), eof: false }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.io.write_all(bytes).await.expect("write to the proxy");
        self.io.flush().await.expect("flush");
    }

    async fn fill(&mut self, wait: Duration) -> bool {
        let mut chunk = [0u8; 16 * 1024];
        match tokio::time::timeout(wait, self.io.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                self.eof = true;
                false
            }
            Ok(Ok(n)) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
            Err(_) => false,
        }
    }

    /// The next complete response, or `None` when the connection ended (or stayed silent).
    async fn answer(&mut self) -> Option<Answer> {
        loop {
            if let Some((answer, used)) = parse_answer(&self.buf) {
                self.buf.drain(..used);
                return Some(answer);
            }
            if self.eof || !self.fill(PATIENCE).await {
                return None;
            }
        }
    }

    /// The next response, which must come.
    async fn expect(&mut self, what: &str) -> Answer {
        match self.answer().await {
            Some(answer) => answer,
            None => panic!("no answer to {what}; left over: {:?}", String::from_utf8_lossy(&self.buf)),
        }
    }

    /// Whether the proxy closed the connection without sending anything more.
    async fn closed(&mut self) -> bool {
        while self.buf.is_empty() && !self.eof {
            if !self.fill(Duration::from_secs(5)).await {
                break;
            }
        }
        self.eof && self.buf.is_empty()
    }
}

async fn connect(proxy: &TestProxy) -> Raw<TcpStream> {
    Raw::new(TcpStream::connect(proxy.addr).await.expect("connect to the proxy"))
}

/// Sends `bytes` on a fresh connection and returns the first answer.
async fn one_shot(proxy: &TestProxy, bytes: &str) -> Answer {
    let mut conn = connect(proxy).await;
    conn.send(bytes.as_bytes()).await;
    conn.expect(bytes).await
}

/// An absolute-form GET that closes the connection after its answer.
fn get(url: &str) -> String {
    let host = url.split('/').nth(2).unwrap_or("");
    format!("GET {url} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
}

// ---------------------------------------------------------------------------------------------
// Harness: origins, proxies, tunnels.

/// `upstream.resolve` sending each `name:port` to `origin`.
fn resolve(origin: &TestOrigin, names: &[String]) -> String {
    let entries: Vec<String> = names.iter().map(|name| format!("\"{name}\" = \"{}\"", origin.addr)).collect();
    format!("[upstream]\nresolve = {{ {} }}\n", entries.join(", "))
}

/// A plain origin with [`ROBOTS`] reachable as `blocked.example:<port>`, and a proxy that may
/// reach loopback. Returns the origin, the proxy and `http://blocked.example:<port>`.
async fn plain_setup(extra_names: &[&str]) -> (TestOrigin, TestProxy, String) {
    let origin = TestOrigin::plain().await;
    origin.robots(ROBOTS);
    let port = origin.port();
    let mut names = vec![format!("{HOST}:{port}")];
    names.extend(extra_names.iter().map(|name| format!("{name}:{port}")));
    let proxy = TestProxy::loopback(&resolve(&origin, &names));
    (origin, proxy, format!("http://{HOST}:{port}"))
}

/// A TLS origin with [`ROBOTS`] reachable as `site.test:443`, and an intercepting proxy.
async fn tls_setup() -> (TestOrigin, TestProxy) {
    let origin = TestOrigin::tls().await;
    origin.robots(ROBOTS);
    let config = format!(
        "[tls]\nupstream_roots = [\"{}\"]\n{}",
        origin.ca_path().display(),
        resolve(&origin, &[format!("{TLS_HOST}:443")])
    );
    let proxy = TestProxy::loopback(&config);
    (origin, proxy)
}

/// Accepts any server certificate: only for the test that presents a foreign SNI, where the
/// proxy answers with the CONNECT host's certificate on purpose.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A TLS client configuration trusting the proxy's CA (or, with `trust_any`, anything).
fn client_config(proxy: &TestProxy, alpn: &[&[u8]], trust_any: bool) -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("protocol versions");
    let mut config = if trust_any {
        builder.dangerous().with_custom_certificate_verifier(Arc::new(AnyCertificate(provider))).with_no_client_auth()
    } else {
        let pem = std::fs::read(proxy.ca_file()).expect("read the proxy CA");
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            roots.add(cert.expect("CA certificate")).expect("add CA");
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config
}

/// Opens `CONNECT authority` and a TLS session inside it naming `sni`.
async fn tunnel(proxy: &TestProxy, authority: &str, sni: &str, config: rustls::ClientConfig) -> TlsStream<TcpStream> {
    let mut tcp = TcpStream::connect(proxy.addr).await.expect("connect to the proxy");
    tcp.write_all(format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n").as_bytes())
        .await
        .expect("write CONNECT");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(PATIENCE, tcp.read(&mut byte)).await.expect("CONNECT answer").expect("read");
        assert_eq!(n, 1, "the proxy closed the connection during CONNECT: {:?}", String::from_utf8_lossy(&head));
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 200"), "CONNECT {authority}: {}", String::from_utf8_lossy(&head));
    let name = ServerName::try_from(sni.to_string()).expect("server name");
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    tokio::time::timeout(PATIENCE, connector.connect(name, tcp)).await.expect("TLS in time").expect("TLS handshake")
}

/// An HTTP/1.1 tunnel to `site.test:443` trusting the proxy's CA.
async fn h1_tunnel(proxy: &TestProxy) -> Raw<TlsStream<TcpStream>> {
    let authority = format!("{TLS_HOST}:443");
    Raw::new(tunnel(proxy, &authority, TLS_HOST, client_config(proxy, &[b"http/1.1"], false)).await)
}

type H2Sender = hyper::client::conn::http2::SendRequest<Empty<Bytes>>;

/// An HTTP/2 connection inside a tunnel to `site.test:443`.
async fn h2_tunnel(proxy: &TestProxy) -> H2Sender {
    let authority = format!("{TLS_HOST}:443");
    let tls = tunnel(proxy, &authority, TLS_HOST, client_config(proxy, &[b"h2"], false)).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]), "HTTP/2 negotiated");
    let (sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls)).await.expect("HTTP/2 handshake");
    tokio::spawn(connection);
    sender
}

/// Sends `request` on an HTTP/2 connection: the status and body, or the stream's error.
async fn h2_send(sender: &mut H2Sender, request: Request<Empty<Bytes>>) -> Result<(StatusCode, Vec<u8>), String> {
    sender.ready().await.map_err(|e| e.to_string())?;
    let response = tokio::time::timeout(PATIENCE, sender.send_request(request))
        .await
        .map_err(|_| "no answer in time".to_string())?
        .map_err(|e| format!("{e:?}"))?;
    let status = response.status();
    let body = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes().to_vec();
    Ok((status, body))
}

fn h2_get(uri: &str) -> Request<Empty<Bytes>> {
    Request::get(uri).body(Empty::new()).expect("request")
}

/// No request the policy blocks reached the origin (whatever spelling it arrived in).
fn assert_private_unseen(origin: &TestOrigin) {
    let leaked: Vec<String> =
        origin.seen().into_iter().map(|r| r.path).filter(|path| path.to_ascii_lowercase().contains("rivate")).collect();
    assert!(leaked.is_empty(), "the origin saw blocked paths: {leaked:?}");
}

/// The proxy logged no panic.
fn assert_no_panic(proxy: &TestProxy) {
    let log = proxy.stderr();
    assert!(!log.contains("panicked"), "the proxy panicked:\n{log}");
}

/// The proxy still forwards an ordinary allowed request.
async fn assert_still_serves(proxy: &TestProxy, url: &str) {
    let res = curl(&["-x", &proxy.url(), url]).await;
    assert_eq!(res.status, 200, "the proxy no longer serves {url}: {} {}", res.stderr, res.text());
    assert_no_panic(proxy);
}

/// The block answer for a robots.txt `Disallow: /private`, for `url`.
fn assert_robots_block(answer: &Answer, url: &str) {
    assert_eq!(answer.status, 451, "{url}: {}\n{}", answer.head, answer.text());
    assert_eq!(answer.header("consentry-decision").as_deref(), Some("block"));
    let body = answer.json();
    assert_eq!(body["url"], url, "{body}");
    assert_eq!(body["reasons"][0]["source"], "robots", "{body}");
    assert_eq!(body["reasons"][0]["rule"], "Disallow: /private", "{body}");
}

// ---------------------------------------------------------------------------------------------
// 1. Request smuggling and desync.

#[tokio::test]
async fn content_length_with_transfer_encoding_is_framed_by_chunked_and_closes() {
    let (origin, proxy, base) = plain_setup(&[]).await;
    let host = base.trim_start_matches("http://");
    let smuggled = format!("GET {base}/private HTTP/1.1\r\nHost: {host}\r\n\r\n");
    for (order, fields) in [
        ("CL first", "Content-Length: 4\r\nTransfer-Encoding: chunked"),
        ("TE first", "Transfer-Encoding: chunked\r\nContent-Length: 4"),
    ] {
        // A CL-framed reader takes "0\r\n\r" as the body and the rest as a second request; the
        // proxy frames by Transfer-Encoding (RFC 9112 §6.3), drops Content-Length, answers and
        // closes, so the bytes that follow are never read as a request.
        let mut conn = connect(&proxy).await;
        conn.send(
            format!("POST {base}/echo HTTP/1.1\r\nHost: {host}\r\n{fields}\r\n\r\n0\r\n\r\n{smuggled}").as_bytes(),
        )
        .await;
        let answer = conn.expect(order).await;
        assert_eq!(answer.status, 200, "{order}: {}", answer.head);
        assert_eq!(answer.text(), format!("0 {}", common::hex(&<sha2::Sha256 as sha2::Digest>::digest(b""))));
        assert!(conn.closed().await, "{order}: the connection stayed open after an ambiguous request");
        let seen = origin.last("/echo");
        assert_eq!(seen.body_len, 0, "{order}");
        assert_eq!(seen.header("content-length").as_deref().unwrap_or("0"), "0", "{order}: the stale length leaked");
    }

    // The chunked body itself carries a request: it reaches the origin as body bytes only.
    let body = format!("{:x}\r\n{smuggled}\r\n0\r\n\r\n", smuggled.len());
    let mut conn = connect(&proxy).await;
    conn.send(
        format!(
            "POST {base}/echo HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n{body}"
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(conn.expect("chunked smuggling").await.status, 200);
    assert_eq!(origin.last("/echo").body_len, smuggled.len());

    // The same against a blocked path: refused before any byte goes upstream.
    let mut conn = connect(&proxy).await;
    conn.send(format!("POST {base}/private HTTP/1.1\r\nHost: {host}\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{smuggled}").as_bytes())
        .await;
    assert_robots_block(&conn.expect("blocked CL+TE").await, &format!("{base}/private"));
    assert!(conn.closed().await);

    assert_private_unseen(&origin);
    assert_still_serves(&proxy, &format!("{base}/hello")).await;
}

#[tokio::test]
async fn malformed_framing_and_line_endings_get_400_before_any_decision() {
    let (origin, proxy, base) = plain_setup(&[]).await;
    let host = base.trim_start_matches("http://");
    let cases = [
        (
            "duplicate differing Content-Length",
            format!(
                "POST {base}/private HTTP/1.1\r\nHost: {host}\r\nContent-Length: 5\r\nContent-Length: 40\r\n\r\nhello"
            ),
        ),
        (
            "Content-Length list",
            format!("POST {base}/private HTTP/1.1\r\nHost: {host}\r\nContent-Length: 5, 40\r\n\r\nhello"),
        ),
        ("obs-fold continuation", format!("GET {base}/private HTTP/1.1\r\nHost: {host}\r\nX-Folded: a\r\n b\r\n\r\n")),
        (
            "obs-fold Transfer-Encoding",
            format!("POST {base}/private HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n"),
        ),
        (
            "space before the colon",
            format!("POST {base}/private HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n"),
        ),
        (
            "Transfer-Encoding not ending in chunked",
            format!(
                "POST {base}/private HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n"
            ),
        ),
        (
            "Transfer-Encoding in HTTP/1.0",
            format!("POST {base}/private HTTP/1.0\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        ),
        ("bare CR", format!("GET {base}/private HTTP/1.1\rHost: {host}\r\n\r\n")),
        ("NUL in a field value", format!("GET {base}/private HTTP/1.1\r\nHost: {host}\r\nX-A: a\0b\r\n\r\n")),
    ];
    for (what, request) in cases {
        let mut conn = connect(&proxy).await;
        conn.send(request.as_bytes()).await;
        let answer = conn.expect(what).await;
        assert_eq!(answer.status, 400, "{what}: {}", answer.head);
        assert!(conn.closed().await, "{what}: the connection stayed open after a framing error");
    }
    assert!(origin.seen().is_empty(), "malformed requests reached the origin: {:?}", origin.seen());
    assert_still_serves(&proxy, &format!("{base}/hello")).await;
}

#[tokio::test]
async fn bare_lf_line_endings_are_judged_like_crlf() {
    let (origin, proxy, base) = plain_setup(&[]).await;
    let host = base.trim_start_matches("http://");
    // RFC 9112 §2.2 lets a recipient accept a lone LF; the request is then judged like any other
    // and re-framed upstream with CRLF, so no reader downstream can disagree about it.
    let mut conn = connect(&proxy).await;
    conn.send(format!("GET {base}/private HTTP/1.1\nHost: {host}\n\nGET {base}/hello HTTP/1.1\nHost: {host}\nConnection: close\n\n").as_bytes())
        .await;
    assert_robots_block(&conn.expect("LF-only blocked request").await, &format!("{base}/private"));
    let answer = conn.expect("LF-only allowed request").await;
    assert_eq!(answer.status, 200, "{}", answer.head);
    assert_eq!(answer.text(), "hello");
    assert!(conn.closed().await);
    assert_private_unseen(&origin);
    assert_still_serves(&proxy, &format!("{base}/hello")).await;
}

#[tokio::test]
async fn oversized_chunk_size_is_refused_and_nothing_after_it_is_read() {
    let (origin, proxy, base) = plain_setup(&[]).await;
    let host = base.trim_start_matches("http://");
    let smuggled = format!("GET {base}/private HTTP/1.1\r\nHost: {host}\r\n\r\n");
    let bad_body = format!("ffffffffffffffffff\r\nabc\r\n0\r\n\r\n{smuggled}");

    // Towards a blocked path: the block answer comes first, and the body is never parsed into
    // a request.
    let mut conn = connect(&proxy).await;
    conn.send(
        format!("POST {base}/private HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\n{bad_body}")
            .as_bytes(),
    )
    .await;
    assert_robots_block(&conn.expect("blocked path").await, &format!("{base}/private"));
    assert!(conn.closed().await, "the bytes after a broken chunk were read as another request");

    // Towards an allowed path: the crawler is told its body is malformed (400, not a gateway
    // error), and the connection ends.
    let mut conn = connect(&proxy).await;
    conn.send(
        format!("POST {base}/echo HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\n{bad_body}").as_bytes(),
    )
    .await;
    let answer = conn.expect("allowed path").await;
    assert_eq!(answer.status, 400, "{}\n{}", answer.head, answer.text());
    let body = answer.json();
    assert_eq!(body["error"], "bad_request", "{body}");
    assert!(body["reason"].as_str().is_some_and(|r| r.contains("request body") && r.contains("chunk")), "{body}");
    assert!(conn.closed().await, "the bytes after a broken chunk were read as another request");

    assert_private_unseen(&origin);
    assert_still_serves(&proxy, &format!("{base}/hello")).await;
}

#[tokio::test]
async fn pipelined_requests_are_each_judged_and_bodies_stay_bodies() {
    let (origin, proxy, base) = plain_setup(&[]).await;
    let host = base.trim_start_matches("http://");
    let smuggled = format!("GET {base}/private/inner HTTP/1.1\r\nHost: {host}\r\n\r\n");
    let mut conn = connect(&proxy).await;
    let pipeline = [
        // Blocked, then blocked again (another spelling), then a body that is a request.
        format!("GET {base}/private HTTP/1.1\r\nHost: {host}\r\n\r\n"),
        format!("GET {base}/private/next?x=1 HTTP/1.1\r\nHost: {host}\r\n\r\n"),
        format!("POST {base}/private HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\n\r\n{smuggled}", smuggled.len()),
        format!("POST {base}/echo HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\n\r\n{smuggled}", smuggled.len()),
        // Origin-form after the body: not a proxy request at all.
        format!("GET /private HTTP/1.1\r\nHost: {host}\r\n\r\n"),
        format!("GET {base}/hello HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
    ]
    .concat();
    conn.send(pipeline.as_bytes()).await;
    assert_robots_block(&conn.expect("first").await, &format!("{base}/private"));
    assert_robots_block(&conn.expect("second").await, &format!("{base}/private/next?x=1"));
    assert_robots_block(&conn.expect("blocked POST").await, &format!("{base}/private"));
    let echo = conn.expect("allowed POST").await;
    assert_eq!(echo.status, 200, "{}", echo.head);
    assert!(echo.text().starts_with(&format!("{} ", smuggled.len())), "{}", echo.text());
    let origin_form = conn.expect("origin-form").await;
    assert_eq!(origin_form.status, 400, "{}", origin_form.head);
    assert_eq!(conn.expect("last").await.text(), "hello");
    assert!(conn.closed().await);
    assert_eq!(origin.last("/echo").body_len, smuggled.len(), "the smuggled request arrived as body bytes");
    assert_private_unseen(&origin);
    assert_still_serves(&proxy, &format!("{base}/hello")).await;
}

#[tokio::test]
async fn smuggling_inside_an_intercepted_tunnel_is_refused_the_same_way() {
    let (origin, proxy) = tls_setup().await;
    let host = TLS_HOST;
    let blocked = format!("https://{TLS_HOST}/private");
    let smuggled = format!("GET /private HTTP/1.1\r\nHost: {host}\r\n\r\n");

    // Pipelined: blocked, blocked, then a request hidden in a body.
    let mut conn = h1_tunnel(&proxy).await;
    let pipeline = [
        format!("GET /private HTTP/1.1\r\nHost: {host}\r\n\r\n"),
        format!("GET /private/again HTTP/1.1\r\nHost: {host}\r\n\r\n"),
        format!("POST /echo HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\n\r\n{smuggled}", smuggled.len()),
        format!("GET /hello HTTP/1.1\r\nHost: {host}\r\n\r\n"),
    ]
    .concat();
    conn.send(pipeline.as_bytes()).await;
    assert_robots_block(&conn.expect("first").await, &blocked);
    assert_robots_block(&conn.expect("second").await, &format!("{blocked}/again"));
    assert_eq!(conn.expect("echo").await.status, 200);
    assert_eq!(conn.expect("hello").await.text(), "hello");
    assert_eq!(origin.last("/echo").body_len, smuggled.len());

    // CL + TE: framed by chunked, and the tunnel's connection ends after the answer.
    let mut conn = h1_tunnel(&proxy).await;
    conn.send(format!("POST /echo HTTP/1.1\r\nHost: {host}\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{smuggled}").as_bytes())
        .await;
    assert_eq!(conn.expect("CL+TE").await.status, 200);
    assert!(conn.closed().await, "the tunnel stayed open after an ambiguous request");

    // Malformed framing: 400 and the connection ends.
    let cases = [
        (
            "duplicate Content-Length",
            format!("POST /private HTTP/1.1\r\nHost: {host}\r\nContent-Length: 5\r\nContent-Length: 40\r\n\r\nhello"),
        ),
        ("obs-fold", format!("GET /private HTTP/1.1\r\nHost: {host}\r\nX-Folded: a\r\n b\r\n\r\n")),
        ("bare CR", format!("GET /private HTTP/1.1\rHost: {host}\r\n\r\n")),
    ];
    for (what, request) in cases {
        let mut conn = h1_tunnel(&proxy).await;
        conn.send(request.as_bytes()).await;
        let answer = conn.expect(what).await;
        assert_eq!(answer.status, 400, "{what}: {}", answer.head);
        assert!(conn.closed().await, "{what}");
    }

    // Bare LF: judged like CRLF.
    let mut conn = h1_tunnel(&proxy).await;
    conn.send(format!("GET /private HTTP/1.1\nHost: {host}\n\n").as_bytes()).await;
    assert_robots_block(&conn.expect("bare LF").await, &blocked);

    // An oversized chunk size: blocked path answered, allowed path refused as a bad body.
    let bad_body = format!("ffffffffffffffffff\r\nabc\r\n0\r\n\r\n{smuggled}");
    let mut conn = h1_tunnel(&proxy).await;
    conn.send(
        format!("POST /private HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\n{bad_body}").as_bytes(),
    )
    .await;
    assert_robots_block(&conn.expect("chunk overflow, blocked").await, &blocked);
    assert!(conn.closed().await);
    let mut conn = h1_tunnel(&proxy).await;
    conn.send(
        format!("POST /echo HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\n{bad_body}").as_bytes(),
    )
    .await;
    let answer = conn.expect("chunk overflow, allowed").await;
    assert_eq!(answer.status, 400, "{}\n{}", answer.head, answer.text());
    assert_eq!(answer.json()["error"], "bad_request");
    assert!(conn.closed().await);

    assert_private_unseen(&origin);
    let mut conn = h1_tunnel(&proxy).await;
    conn.send(format!("GET /hello HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes()).await;
    assert_eq!(conn.expect("still serves").await.text(), "hello");
    assert_no_panic(&proxy);
}

// ---------------------------------------------------------------------------------------------
// 2. Policy bypass attempts.

#[tokio::test]
async fn tunnel_requests_naming_another_host_get_421() {
    let (origin, proxy) = tls_setup().await;
    let other = "optout.example";

    // HTTP/1.1: a Host header, a second Host header, an absolute-form target.
    let cases = [
        ("Host header", format!("GET /hello HTTP/1.1\r\nHost: {other}\r\n\r\n")),
        ("Host header with port", format!("GET /hello HTTP/1.1\r\nHost: {TLS_HOST}:8443\r\n\r\n")),
        ("second Host header", format!("GET /hello HTTP/1.1\r\nHost: {TLS_HOST}\r\nHost: {other}\r\n\r\n")),
        ("absolute-form target", format!("GET https://{other}/hello HTTP/1.1\r\nHost: {TLS_HOST}\r\n\r\n")),
        ("non-ASCII Host", "GET /hello HTTP/1.1\r\nHost: bl\u{f6}cked.example\r\n\r\n".to_string()),
    ];
    for (what, request) in cases {
        let mut conn = h1_tunnel(&proxy).await;
        conn.send(request.as_bytes()).await;
        let answer = conn.expect(what).await;
        assert_eq!(answer.status, 421, "{what}: {}\n{}", answer.head, answer.text());
        assert_eq!(answer.json()["error"], "misdirected_request", "{what}");
    }

    // HTTP/2: an :authority naming another host.
    let mut h2 = h2_tunnel(&proxy).await;
    let (status, body) = h2_send(&mut h2, h2_get(&format!("https://{other}/hello"))).await.expect("answer");
    assert_eq!(status, 421, "{}", String::from_utf8_lossy(&body));
    // The same connection still serves its own host.
    let (status, body) = h2_send(&mut h2, h2_get(&format!("https://{TLS_HOST}/hello"))).await.expect("answer");
    assert_eq!((status.as_u16(), body.as_slice()), (200, &b"hello"[..]));

    // TLS: an SNI naming another host than the CONNECT.
    let authority = format!("{TLS_HOST}:443");
    let tls = tunnel(&proxy, &authority, other, client_config(&proxy, &[b"http/1.1"], true)).await;
    let mut conn = Raw::new(tls);
    conn.send(format!("GET /hello HTTP/1.1\r\nHost: {TLS_HOST}\r\n\r\n").as_bytes()).await;
    let answer = conn.expect("SNI").await;
    assert_eq!(answer.status, 421, "{}", answer.text());
    assert!(answer.json()["reason"].as_str().is_some_and(|r| r.contains("SNI")), "{}", answer.text());

    assert_eq!(origin.hits("/hello"), 1, "only the tunnel host's own request reached the origin");
    assert_no_panic(&proxy);
}

#[tokio::test]
async fn userinfo_and_host_spelling_tricks_are_one_host() {
    let punycode = "xn--blcked-zua.example";
    let (origin, proxy, base) = plain_setup(&[punycode]).await;
    let port = origin.port();

    // Userinfo only serves to disguise the host: refused outright.
    for url in [format!("http://user@{HOST}:{port}/private"), format!("http://allowed.example@{HOST}:{port}/private")] {
        let answer = one_shot(&proxy, &get(&url)).await;
        assert_eq!(answer.status, 400, "{url}: {}", answer.head);
        assert!(answer.json()["reason"].as_str().is_some_and(|r| r.contains("userinfo")), "{}", answer.text());
    }

    // Case, a trailing dot and punycode case are the same host, judged by the same robots.txt.
    for (url, decided) in [
        (format!("http://BLOCKED.Example:{port}/private"), format!("{base}/private")),
        (format!("http://blocked.example.:{port}/private"), format!("{base}/private")),
        (format!("http://XN--BLCKED-ZUA.example:{port}/private"), format!("http://{punycode}:{port}/private")),
    ] {
        assert_robots_block(&one_shot(&proxy, &get(&url)).await, &decided);
    }

    // Raw Unicode and percent-encoded hosts are not hosts.
    for url in
        [format!("http://bl\u{f6}cked.example:{port}/private"), format!("http://blocked%2Eexample:{port}/private")]
    {
        let answer = one_shot(&proxy, &get(&url)).await;
        assert_eq!(answer.status, 400, "{url}: {}", answer.head);
    }

    assert_private_unseen(&origin);
    assert_still_serves(&proxy, &format!("{base}/hello")).await;
}

#[tokio::test]
async fn path_tricks_are_decided_as_the_path_they_reach() {
    let (origin, proxy, base) = plain_setup(&[]).await;
    for path in [
        "/%2e%2e/private",
        "/%2E%2E/private",
        "/public/../private",
        "/public/%2e%2e/private",
        "/public/.%2e/private",
        "/./private",
        "//private",
        "///private/x/..",
        "/%70rivate",
        "/public/../%70rivate",
    ] {
        let answer = one_shot(&proxy, &get(&format!("{base}{path}"))).await;
        assert_eq!(answer.status, 451, "{path}: {}\n{}", answer.head, answer.text());
        let url = answer.json()["url"].as_str().unwrap_or_default().to_string();
        assert!(url.starts_with(&format!("{base}/")), "{path} decided as {url}");
    }
    // What is allowed is fetched as decided: the origin sees the normalised path.
    let answer = one_shot(&proxy, &get(&format!("{base}/public/../hello"))).await;
    assert_eq!((answer.status, answer.text()), (200, "hello".to_string()), "{}", answer.head);
    assert_eq!(origin.hits("/public/../hello"), 0);

    // The same inside an intercepted tunnel, over HTTP/1.1 and HTTP/2.
    let (tls_origin, tls_proxy) = tls_setup().await;
    for path in ["/public/../private", "/%2e%2e/private", "//private"] {
        let mut conn = h1_tunnel(&tls_proxy).await;
        conn.send(format!("GET {path} HTTP/1.1\r\nHost: {TLS_HOST}\r\n\r\n").as_bytes()).await;
        assert_robots_block(&conn.expect(path).await, &format!("https://{TLS_HOST}/private"));
    }
    let mut h2 = h2_tunnel(&tls_proxy).await;
    for path in ["/public/../private", "/%70rivate"] {
        let (status, body) = h2_send(&mut h2, h2_get(&format!("https://{TLS_HOST}{path}"))).await.expect("answer");
        assert_eq!(status, 451, "{path}: {}", String::from_utf8_lossy(&body));
    }

    assert_private_unseen(&origin);
    assert_private_unseen(&tls_origin);
    assert_still_serves(&proxy, &format!("{base}/hello")).await;
    assert_no_panic(&tls_proxy);
}

#[tokio::test]
async fn paths_that_servers_read_differently_are_blocked_under_the_strictest_reading() {
    let (origin, proxy, base) = plain_setup(&[]).await;
    // Each is allowed as written, but nginx (%2F), IIS (backslashes) or Tomcat (`;` parameters)
    // serve it as /private.
    for path in [
        "/public%2F..%2Fprivate",
        "/public%2f..%2fprivate",
        "/public/..;/private",
        "/public/..;x=1/private",
        "/public%5C..%5Cprivate",
        "/public\\..\\private",
        "/private;jsessionid=1",
    ] {
        let answer = one_shot(&proxy, &get(&format!("{base}{path}"))).await;
        assert_eq!(answer.status, 451, "{path}: {}\n{}", answer.head, answer.text());
        assert_eq!(answer.json()["reasons"][0]["rule"], "Disallow: /private", "{path}");
    }
    // A reading that changes nothing blocked leaves the request as it was: sent unchanged.
    let answer = one_shot(&proxy, &get(&format!("{base}/hello;v=1"))).await;
    assert_eq!(answer.status, 200, "{}", answer.head);
    assert_eq!(origin.hits("/hello;v=1"), 1);
    assert_private_unseen(&origin);
    assert_still_serves(&proxy, &format!("{base}/hello")).await;
}

/// AFL++ (2026-12-07): `http://host?q` has an empty path, which RFC 3986 §6.2.3 makes `/`, but
/// the target kept `?q` as its path, so robots.txt rules (which all start with `/`) and registry
/// entries for `https://host/?q` never matched it.
#[tokio::test]
async fn an_empty_path_with_a_query_is_judged_as_the_root() {
    let origin = TestOrigin::plain().await;
    origin.robots("User-agent: *\nDisallow: /\n");
    let port = origin.port();
    let proxy = TestProxy::loopback(&resolve(&origin, &[format!("{HOST}:{port}")]));
    let answer = one_shot(&proxy, &get(&format!("http://{HOST}:{port}?page=1"))).await;
    assert_eq!(answer.status, 451, "{}\n{}", answer.head, answer.text());
    assert_eq!(answer.json()["url"], format!("http://{HOST}:{port}/?page=1"));
    assert_eq!(origin.hits("/"), 0, "the origin never saw it");
}

#[tokio::test]
async fn repeated_host_lines_get_400_even_when_they_agree() {
    let (origin, proxy, base) = plain_setup(&[]).await;
    let host = base.trim_start_matches("http://");
    let twice = format!("GET {base}/hello HTTP/1.1\r\nHost: {host}\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    let answer = one_shot(&proxy, &twice).await;
    assert_eq!(answer.status, 400, "{}", answer.head);
    assert!(answer.text().contains("more than one Host"), "{}", answer.text());
    assert_eq!(origin.hits("/hello"), 0);

    let (tls_origin, tls_proxy) = tls_setup().await;
    let mut conn = h1_tunnel(&tls_proxy).await;
    conn.send(format!("GET /hello HTTP/1.1\r\nHost: {TLS_HOST}\r\nHost: {TLS_HOST}\r\n\r\n").as_bytes()).await;
    let answer = conn.expect("two identical Host lines").await;
    assert_eq!(answer.status, 400, "{}", answer.head);
    assert_eq!(tls_origin.hits("/hello"), 0);
    assert_still_serves(&proxy, &format!("{base}/hello")).await;
}

#[tokio::test]
async fn numeric_and_mapped_loopback_addresses_are_refused() {
    let origin = TestOrigin::plain().await;
    let port = origin.port();
    let proxy = TestProxy::start("[proxy]\nlisten = \"127.0.0.1:0\"\nallow_private_destinations = false\n");
    for host in [
        "127.0.0.1",
        "2130706433",
        "0x7f000001",
        "0x7f.0.0.1",
        "0177.0.0.1",
        "127.1",
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
        "[::1]",
        "[::127.0.0.1]",
        "0.0.0.0",
    ] {
        let answer = one_shot(&proxy, &get(&format!("http://{host}:{port}/hello"))).await;
        // Whatever the spelling, the check is on the address the name resolves to.
        assert_eq!(answer.status, 403, "{host}: {}\n{}", answer.head, answer.text());
        let body = answer.json();
        assert_eq!(body["reasons"][0]["source"], "network-policy", "{host}: {body}");
        assert!(body["reasons"][0]["rule"].as_str().is_some_and(|r| r.contains("refused")), "{host}: {body}");
    }
    // The same through CONNECT: the tunnel's inner request is refused.
    let authority = format!("[::ffff:127.0.0.1]:{port}");
    let tls = tunnel(&proxy, &authority, "::ffff:127.0.0.1", client_config(&proxy, &[b"http/1.1"], true)).await;
    let mut conn = Raw::new(tls);
    conn.send(format!("GET /hello HTTP/1.1\r\nHost: {authority}\r\n\r\n").as_bytes()).await;
    let answer = conn.expect("tunnel to a mapped loopback address").await;
    assert_eq!(answer.status, 403, "{}", answer.text());
    assert_eq!(answer.json()["reasons"][0]["source"], "network-policy");
    assert!(origin.seen().is_empty(), "a refused destination was reached: {:?}", origin.seen());
    // Still serving: a fresh request gets its (network-policy) answer.
    let answer = one_shot(&proxy, &get(&format!("http://127.0.0.1:{port}/hello"))).await;
    assert_eq!(answer.status, 403);
    assert_no_panic(&proxy);
}

#[tokio::test]
async fn the_address_actually_connected_to_is_checked() {
    // A public-looking name that resolves to loopback (as a rebinding DNS server would answer).
    let origin = TestOrigin::plain().await;
    let tls_origin = TestOrigin::tls().await;
    let config = format!(
        "[proxy]\nlisten = \"127.0.0.1:0\"\nallow_private_destinations = false\n[tls]\nupstream_roots = [\"{}\"]\n[upstream]\nresolve = {{ \"public.example:80\" = \"{}\", \"site.test:443\" = \"{}\" }}\n",
        tls_origin.ca_path().display(),
        origin.addr,
        tls_origin.addr
    );
    let proxy = TestProxy::start(&config);
    let answer = one_shot(&proxy, &get("http://public.example/hello")).await;
    assert_eq!(answer.status, 403, "{}", answer.text());
    let body = answer.json();
    assert_eq!(body["reasons"][0]["source"], "network-policy");
    assert!(body["reasons"][0]["rule"].as_str().is_some_and(|r| r.contains("127.0.0.1")), "{body}");

    let mut conn = h1_tunnel(&proxy).await;
    conn.send(format!("GET /hello HTTP/1.1\r\nHost: {TLS_HOST}\r\n\r\n").as_bytes()).await;
    let answer = conn.expect("tunnel").await;
    assert_eq!(answer.status, 403, "{}", answer.text());
    assert_eq!(answer.json()["reasons"][0]["source"], "network-policy");

    assert!(origin.seen().is_empty());
    assert!(tls_origin.seen().is_empty());
    assert_no_panic(&proxy);
}

#[tokio::test]
async fn a_redirect_to_a_blocked_page_is_passed_through_and_the_follow_up_is_judged() {
    let (origin, proxy, base) = plain_setup(&[]).await;
    origin.set("/moved", Canned::redirect(&format!("{base}/private/page")));
    origin.set("/moved-relative", Canned::redirect("/private/other"));
    let answer = one_shot(&proxy, &get(&format!("{base}/moved"))).await;
    assert_eq!(answer.status, 301, "{}", answer.head);
    assert_eq!(answer.header("location"), Some(format!("{base}/private/page")));
    assert_eq!(answer.header("consentry-decision").as_deref(), Some("allow"));

    // A crawler following redirects gets the block answer for the target.
    for path in ["/moved", "/moved-relative"] {
        let res = curl(&["-x", &proxy.url(), "-L", &format!("{base}{path}")]).await;
        assert_eq!(res.status, 451, "{path}: {}", res.stderr);
        assert!(res.json()["url"].as_str().is_some_and(|u| u.contains("/private/")), "{}", res.text());
    }
    assert_eq!(origin.hits("/moved"), 2);
    assert_private_unseen(&origin);
    assert_still_serves(&proxy, &format!("{base}/hello")).await;
}

#[tokio::test]
async fn connect_over_http2_inside_a_tunnel_is_refused() {
    let (origin, proxy) = tls_setup().await;
    let mut h2 = h2_tunnel(&proxy).await;

    // Classic CONNECT (RFC 9113 §8.5) to the opted-out path's host: a 400 answer.
    let connect = Request::builder().method(Method::CONNECT).uri(format!("{TLS_HOST}:443")).body(Empty::new());
    let (status, body) = h2_send(&mut h2, connect.expect("request")).await.expect("an answer");
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("CONNECT"), "{}", String::from_utf8_lossy(&body));

    // Extended CONNECT (RFC 8441, e.g. WebSocket over HTTP/2) is not offered: the stream is
    // reset, never answered with 200.
    let mut extended = Request::builder()
        .method(Method::CONNECT)
        .uri(format!("https://{TLS_HOST}/private"))
        .body(Empty::new())
        .expect("request");
    extended.extensions_mut().insert(hyper::ext::Protocol::from_static("websocket"));
    match h2_send(&mut h2, extended).await {
        Err(_) => {}
        Ok((status, body)) => {
            assert!(!status.is_success(), "extended CONNECT accepted: {status} {}", String::from_utf8_lossy(&body))
        }
    }

    // The connection (or a new one) still serves.
    let mut h2 = match h2_send(&mut h2, h2_get(&format!("https://{TLS_HOST}/hello"))).await {
        Ok(_) => h2,
        Err(_) => h2_tunnel(&proxy).await,
    };
    let (status, _) = h2_send(&mut h2, h2_get(&format!("https://{TLS_HOST}/hello"))).await.expect("answer");
    assert_eq!(status, 200);
    assert_private_unseen(&origin);
    assert!(origin.seen().iter().all(|r| r.method != "CONNECT"), "{:?}", origin.seen());
    assert_no_panic(&proxy);
}

#[tokio::test]
async fn upgrade_requests_are_judged_and_never_upgraded() {
    let (origin, proxy, base) = plain_setup(&[]).await;
    let host = base.trim_start_matches("http://");
    let upgrade = "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";

    // A blocked path: the block answer, on the plain port and inside a tunnel.
    let answer = one_shot(&proxy, &format!("GET {base}/private/ws HTTP/1.1\r\nHost: {host}\r\n{upgrade}\r\n")).await;
    assert_robots_block(&answer, &format!("{base}/private/ws"));
    let (tls_origin, tls_proxy) = tls_setup().await;
    let mut conn = h1_tunnel(&tls_proxy).await;
    conn.send(format!("GET /private/ws HTTP/1.1\r\nHost: {TLS_HOST}\r\n{upgrade}\r\n").as_bytes()).await;
    assert_robots_block(&conn.expect("tunnel upgrade").await, &format!("https://{TLS_HOST}/private/ws"));

    // An allowed path: forwarded as an ordinary request (Upgrade is hop-by-hop), never 101, and
    // the connection stays HTTP: a blocked request after it is still judged.
    let mut conn = connect(&proxy).await;
    conn.send(
        format!(
            "GET {base}/ws HTTP/1.1\r\nHost: {host}\r\n{upgrade}\r\nGET {base}/private HTTP/1.1\r\nHost: {host}\r\n\r\n"
        )
        .as_bytes(),
    )
    .await;
    let answer = conn.expect("allowed upgrade").await;
    assert_eq!(answer.status, 200, "{}", answer.head);
    assert_robots_block(&conn.expect("after the upgrade attempt").await, &format!("{base}/private"));
    let seen = origin.last("/ws");
    assert_eq!(seen.header("upgrade"), None, "Upgrade reached the origin");

    // An origin that answers 101 anyway does not turn the crawler's connection into a raw pipe.
    origin.set("/switch", Canned::status(101).with_header("upgrade", "websocket"));
    let mut conn = connect(&proxy).await;
    conn.send(
        format!("GET {base}/switch HTTP/1.1\r\nHost: {host}\r\n{upgrade}\r\nGET {base}/private HTTP/1.1\r\nHost: {host}\r\n\r\n")
            .as_bytes(),
    )
    .await;
    let answer = conn.expect("origin 101").await;
    assert_eq!(answer.status, 502, "{}", answer.head);
    assert!(answer.json()["reason"].as_str().is_some_and(|r| r.contains("101")), "{}", answer.text());
    assert_robots_block(&conn.expect("after the origin's 101").await, &format!("{base}/private"));

    assert_private_unseen(&origin);
    assert_private_unseen(&tls_origin);
    assert_still_serves(&proxy, &format!("{base}/hello")).await;
    assert_no_panic(&tls_proxy);
}

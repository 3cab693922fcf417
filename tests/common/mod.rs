//! Test harness: real origins (plain and TLS) and the real `consentry` binary on ephemeral
//! loopback ports, plus helpers to drive real clients (`curl`, Python `requests`).
#![allow(dead_code)]

pub mod dns;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody, combinators::UnsyncBoxBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;

pub type Body = UnsyncBoxBody<Bytes, std::io::Error>;

/// A reply the origin gives for one path instead of its built-in routes.
#[derive(Debug, Clone, Default)]
pub struct Canned {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Wait this long before answering.
    pub delay: Option<Duration>,
    /// Drop the connection instead of answering.
    pub reset: bool,
}

impl Canned {
    pub fn status(status: u16) -> Self {
        Self { status, ..Self::default() }
    }

    pub fn body(body: impl Into<Vec<u8>>) -> Self {
        Self { status: 200, body: body.into(), ..Self::default() }
    }

    pub fn redirect(location: &str) -> Self {
        Self { status: 301, headers: vec![("location".into(), location.into())], ..Self::default() }
    }

    pub fn reset() -> Self {
        Self { reset: true, ..Self::default() }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }
}

type CannedRoutes = Arc<Mutex<HashMap<String, Canned>>>;

/// What the origin saw of one request.
#[derive(Debug, Clone)]
pub struct SeenRequest {
    pub method: String,
    pub path: String,
    pub version: http::Version,
    pub uri_authority: Option<String>,
    pub headers: http::HeaderMap,
    pub body_len: usize,
    pub body_sha256: String,
    /// When the request head arrived.
    pub at: std::time::Instant,
}

impl SeenRequest {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
    }

    /// The host the request named: `Host` in HTTP/1.1, `:authority` in HTTP/2.
    pub fn authority(&self) -> Option<String> {
        self.uri_authority.clone().or_else(|| self.header("host"))
    }
}

/// A real origin server on 127.0.0.1:0 with a fixed set of routes:
/// `/hello`, `/echo` (records the request, answers the body's sha256), `/slow` (answers after
/// 1.5 s, recorded on arrival), `/big?bytes=N` (a streamed
/// deterministic body), `/stall` (never answers), `/hop` (answers with hop-by-hop headers) and
/// anything else: 200 "ok <path>".
pub struct TestOrigin {
    pub addr: SocketAddr,
    pub tls: Option<TestCa>,
    seen: Arc<Mutex<Vec<SeenRequest>>>,
    canned: CannedRoutes,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl TestOrigin {
    pub async fn plain() -> Self {
        Self::start(None).await
    }

    /// A TLS origin whose certificate (for `localhost`, `127.0.0.1` and `site.test`) comes from
    /// a fresh test CA; hand `ca_path()` to the proxy as `tls.upstream_roots`.
    pub async fn tls() -> Self {
        Self::start(Some(TestCa::new())).await
    }

    async fn start(tls: Option<TestCa>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind origin");
        let addr = listener.local_addr().expect("origin addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
        let acceptor = tls.as_ref().map(|ca| ca.acceptor());
        let seen_by_server = seen.clone();
        let canned: CannedRoutes = Arc::default();
        let canned_by_server = canned.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = tokio::select! {
                    accepted = listener.accept() => match accepted { Ok(a) => a, Err(_) => continue },
                    _ = &mut rx => break,
                };
                let seen = seen_by_server.clone();
                let canned = canned_by_server.clone();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| route(req, seen.clone(), canned.clone()));
                    let builder = auto::Builder::new(TokioExecutor::new());
                    match acceptor {
                        Some(acceptor) => {
                            if let Ok(tls) = acceptor.accept(stream).await {
                                let _ = builder.serve_connection(TokioIo::new(tls), service).await;
                            }
                        }
                        None => {
                            let _ = builder.serve_connection(TokioIo::new(stream), service).await;
                        }
                    }
                });
            }
        });
        Self { addr, tls, seen, canned, _shutdown: tx }
    }

    /// Answers `path` with `reply` from now on.
    pub fn set(&self, path: &str, reply: Canned) {
        self.canned.lock().expect("lock").insert(path.to_string(), reply);
    }

    /// Serves `body` as `/robots.txt`.
    pub fn robots(&self, body: &str) {
        self.set("/robots.txt", Canned::body(body));
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn url(&self, path: &str) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}{path}", self.addr)
    }

    pub fn ca_path(&self) -> &Path {
        &self.tls.as_ref().expect("a TLS origin").cert_path
    }

    pub fn seen(&self) -> Vec<SeenRequest> {
        self.seen.lock().expect("lock").clone()
    }

    pub fn hits(&self, path: &str) -> usize {
        self.seen().iter().filter(|r| r.path == path).count()
    }

    /// Waits until the origin has received a request for `path` (it records `/slow` and delayed
    /// replies on arrival, so a test can tell such a request is in flight).
    pub async fn wait_for_request(&self, path: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while self.hits(path) == 0 {
            assert!(std::time::Instant::now() < deadline, "the request for {path} never reached the origin");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub fn last(&self, path: &str) -> SeenRequest {
        self.seen().into_iter().rev().find(|r| r.path == path).expect("the origin saw the request")
    }
}

async fn route(
    req: Request<Incoming>,
    seen: Arc<Mutex<Vec<SeenRequest>>>,
    canned: CannedRoutes,
) -> Result<Response<Body>, std::io::Error> {
    let arrived = std::time::Instant::now();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let uri_authority = req.uri().authority().map(|a| a.to_string());
    let (parts, body) = req.into_parts();
    // Hash the body as it streams in (an upload of 50 MB is never held whole).
    let mut hasher = Sha256::new();
    let mut body_len = 0usize;
    let mut body = body;
    if path == "/slow" {
        // Record on arrival, so a test can see the request is in flight.
        seen.lock().expect("lock").push(SeenRequest {
            method: parts.method.to_string(),
            path: path.clone(),
            version: parts.version,
            uri_authority: uri_authority.clone(),
            headers: parts.headers.clone(),
            body_len: 0,
            body_sha256: String::new(),
            at: std::time::Instant::now(),
        });
        tokio::time::sleep(Duration::from_millis(1500)).await;
        return Ok(text(StatusCode::OK, "slow"));
    }
    if path != "/stall" {
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else { break };
            if let Some(data) = frame.data_ref() {
                hasher.update(data);
                body_len += data.len();
            }
        }
    }
    let body_sha256 = hex(&hasher.finalize());
    seen.lock().expect("lock").push(SeenRequest {
        method: parts.method.to_string(),
        path: path.clone(),
        version: parts.version,
        uri_authority,
        headers: parts.headers.clone(),
        body_len,
        body_sha256: body_sha256.clone(),
        at: arrived,
    });
    let reply = canned.lock().expect("lock").get(&path).cloned();
    if let Some(canned) = reply {
        if let Some(delay) = canned.delay {
            tokio::time::sleep(delay).await;
        }
        if canned.reset {
            return Err(std::io::Error::other("reset on purpose"));
        }
        let mut response =
            Response::new(Full::new(Bytes::from(canned.body)).map_err(|never| match never {}).boxed_unsync());
        *response.status_mut() = StatusCode::from_u16(canned.status).expect("status");
        for (name, value) in canned.headers {
            response.headers_mut().append(
                http::HeaderName::from_bytes(name.as_bytes()).expect("name"),
                http::HeaderValue::from_str(&value).expect("value"),
            );
        }
        return Ok(response);
    }
    Ok(match path.as_str() {
        "/hello" => text(StatusCode::OK, "hello"),
        "/echo" => text(StatusCode::OK, &format!("{body_len} {body_sha256}")),
        "/big" => {
            let bytes = query.strip_prefix("bytes=").and_then(|n| n.parse().ok()).unwrap_or(1 << 20);
            streamed(bytes)
        }
        "/stall" => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            text(StatusCode::OK, "too late")
        }
        "/hop" => {
            let mut response = text(StatusCode::OK, "hop");
            let headers = response.headers_mut();
            headers.insert("connection", "x-origin-hop".parse().expect("value"));
            headers.insert("x-origin-hop", "secret".parse().expect("value"));
            headers.insert("keep-alive", "timeout=5".parse().expect("value"));
            headers.insert("x-end-to-end", "kept".parse().expect("value"));
            response
        }
        // No robots.txt unless a test sets one: 404 means allow all (RFC 9309 §2.3.1.3).
        "/robots.txt" | "/ai.txt" | "/.well-known/tdmrep.json" => text(StatusCode::NOT_FOUND, "no such policy file"),
        _ => text(StatusCode::OK, &format!("ok {path}")),
    })
}

fn text(status: StatusCode, body: &str) -> Response<Body> {
    let mut response =
        Response::new(Full::new(Bytes::from(body.to_string())).map_err(|never| match never {}).boxed_unsync());
    *response.status_mut() = status;
    response
}

/// The deterministic content of `/big`: byte i is `(i * 7 + i / 4096) % 251`.
pub fn big_body_chunk(offset: usize, len: usize) -> Vec<u8> {
    (offset..offset + len).map(|i| ((i * 7 + i / 4096) % 251) as u8).collect()
}

/// sha256 of the first `len` bytes of the `/big` content.
pub fn big_body_sha256(len: usize) -> String {
    let mut hasher = Sha256::new();
    let mut offset = 0;
    while offset < len {
        let n = (len - offset).min(64 * 1024);
        hasher.update(big_body_chunk(offset, n));
        offset += n;
    }
    hex(&hasher.finalize())
}

fn streamed(total: usize) -> Response<Body> {
    let chunks = (0..total.div_ceil(64 * 1024)).map(move |i| {
        let offset = i * 64 * 1024;
        let len = (total - offset).min(64 * 1024);
        Ok::<_, std::io::Error>(Frame::data(Bytes::from(big_body_chunk(offset, len))))
    });
    let stream = futures_util::stream::iter(chunks);
    Response::new(StreamBody::new(stream).boxed_unsync())
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A throwaway CA and a server certificate for the TLS origin.
pub struct TestCa {
    pub cert_path: PathBuf,
    _dir: tempfile::TempDir,
    server_config: Arc<rustls::ServerConfig>,
}

impl TestCa {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca_key = KeyPair::generate().expect("ca key");
        let mut ca_params = CertificateParams::default();
        ca_params.distinguished_name.push(DnType::CommonName, "Consentry test origin CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca_params.self_signed(&ca_key).expect("ca cert");
        let issuer = Issuer::new(ca_params, ca_key);
        let leaf_key = KeyPair::generate().expect("leaf key");
        let mut leaf = CertificateParams::new(vec!["localhost".to_string(), "site.test".to_string()]).expect("params");
        leaf.subject_alt_names.push(SanType::IpAddress("127.0.0.1".parse().expect("ip")));
        let leaf_cert = leaf.signed_by(&leaf_key, &issuer).expect("leaf");
        let cert_path = dir.path().join("origin-ca.pem");
        std::fs::write(&cert_path, ca_cert.pem()).expect("write ca");
        let key = rustls_pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der()).expect("key der");
        let mut server_config =
            rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("versions")
                .with_no_client_auth()
                .with_single_cert(vec![leaf_cert.der().clone(), ca_cert.der().clone()], key)
                .expect("server config");
        server_config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Self { cert_path, _dir: dir, server_config: Arc::new(server_config) }
    }

    fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.server_config.clone())
    }
}

/// A crawler profile for AI training with credentials `trainer:pw`, as `[[crawlers]]` TOML.
pub const TRAINER: &str = r#"
[[crawlers]]
name = "trainer"
password = "pw"
token = "TrainBot"
purposes = ["ai-train"]
"#;

/// The admin API token every test proxy uses.
pub const ADMIN_TOKEN: &str = "test-admin-token";

/// The real `consentry` binary, started with `run -c <generated config>`.
pub struct TestProxy {
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    /// The creators' portal (public listener).
    pub public: SocketAddr,
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    child: Child,
    stderr_path: PathBuf,
}

impl TestProxy {
    /// Starts the proxy with `extra` TOML appended to a base config that listens on port 0 and
    /// keeps its data in a temp dir. `extra` may not repeat the base's tables, so the base only
    /// sets top-level keys and `[admin]`/`[public]`: pass `[proxy]` etc. in `extra`. An `[admin]` or
    /// `[public]` table in `extra` gets the base's keys instead.
    pub fn start(extra: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let config_path = Self::write_config(dir.path(), extra);
        Self::start_with_file(dir, config_path)
    }

    /// Writes the config `start` would use into `dir` and returns its path.
    pub fn write_config(dir: &Path, extra: &str) -> PathBuf {
        let config_path = dir.join("consentry.toml");
        let public = "[public]\nlisten = \"127.0.0.1:0\"\n";
        let admin = format!("[admin]\nlisten = \"127.0.0.1:0\"\ntoken = \"{ADMIN_TOKEN}\"\n");
        // Top-level keys in `extra` (before its first table) must precede every table.
        let tables_at = if extra.starts_with('[') { 0 } else { extra.find("\n[").map_or(extra.len(), |i| i + 1) };
        let (top_level, extra) = extra.split_at(tables_at);
        let mut config = format!(
            "data_dir = \"{}\"\n{top_level}\n{}{}",
            dir.join("data").display(),
            if extra.contains("[admin]\n") { "" } else { &admin },
            if extra.contains("[public]\n") { "" } else { public }
        );
        config.push_str(&extra.replace("[public]\n", public).replace("[admin]\n", &admin));
        if !extra.contains("[proxy]") {
            config.push_str("\n[proxy]\nlisten = \"127.0.0.1:0\"\n");
        }
        std::fs::write(&config_path, &config).expect("write config");
        config_path
    }

    pub fn start_with_file(dir: tempfile::TempDir, config_path: PathBuf) -> Self {
        let stderr_path = dir.path().join("stderr.log");
        let stderr = std::fs::File::create(&stderr_path).expect("stderr file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_consentry"))
            .arg("run")
            .arg("-c")
            .arg(&config_path)
            .env("RUST_LOG", "info,consentry=debug")
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start consentry");
        // Readiness: the one line the binary prints on stdout once it listens.
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("read ready line");
        let fields: HashMap<&str, &str> = line.split_whitespace().filter_map(|field| field.split_once('=')).collect();
        let (Some(proxy), Some(admin), Some(public)) = (fields.get("proxy"), fields.get("admin"), fields.get("public"))
        else {
            let log = std::fs::read_to_string(&stderr_path).unwrap_or_default();
            panic!("consentry did not start: {line:?}\n{log}");
        };
        Self {
            addr: proxy.parse().expect("proxy addr"),
            admin: admin.parse().expect("admin addr"),
            public: public.parse().expect("public addr"),
            dir,
            config_path,
            child,
            stderr_path,
        }
    }

    /// Config for a proxy that may reach loopback origins (every test origin is on 127.0.0.1).
    pub fn loopback(extra: &str) -> Self {
        Self::start(&format!("[proxy]\nlisten = \"127.0.0.1:0\"\nallow_private_destinations = true\n{extra}"))
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin)
    }

    /// One value from `/metrics` (`series` with its labels, as rendered), 0 when the series does
    /// not exist yet.
    pub async fn metric(&self, series: &str) -> f64 {
        let text = curl(&[&self.admin_url("/metrics")]).await.text();
        text.lines()
            .find_map(|line| line.strip_prefix(series).filter(|rest| rest.starts_with(' ')))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or(0.0)
    }

    /// Polls `/metrics` until `series` satisfies `wanted`; panics naming `what` after 20 s.
    pub async fn wait_for_metric(&self, series: &str, wanted: impl Fn(f64) -> bool, what: &str) -> f64 {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let value = self.metric(series).await;
            if wanted(value) {
                return value;
            }
            assert!(std::time::Instant::now() < deadline, "{what}: {series} is still {value}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn public_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.public)
    }

    /// Runs `consentry <args> -c <this proxy's config>`; returns (exit code, stdout, stderr).
    pub fn cli(&self, args: &[&str]) -> (i32, String, String) {
        let output = Command::new(env!("CARGO_BIN_EXE_consentry"))
            .args(args)
            .arg("-c")
            .arg(&self.config_path)
            .output()
            .expect("run consentry");
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Writes `consentry ca -c <config>` output to a file and returns its path.
    pub fn ca_file(&self) -> PathBuf {
        let output = Command::new(env!("CARGO_BIN_EXE_consentry"))
            .args(["ca", "-c"])
            .arg(&self.config_path)
            .output()
            .expect("consentry ca");
        assert!(output.status.success(), "consentry ca failed: {}", String::from_utf8_lossy(&output.stderr));
        let path = self.dir.path().join("consentry-ca.pem");
        std::fs::write(&path, &output.stdout).expect("write ca");
        path
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Peak resident memory (VmHWM) of the proxy process, in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).expect("proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM")
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        self.child.wait().expect("wait")
    }
}

impl Drop for TestProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The outcome of one curl run.
#[derive(Debug)]
pub struct CurlResult {
    pub status: u16,
    /// Response headers of the final response, names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub stderr: String,
    pub http_version: String,
    /// Status of the CONNECT answer, when curl tunnelled (0 otherwise).
    pub connect_status: u16,
}

impl CurlResult {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// Runs curl (in a blocking thread) with `args`; the body goes to a temp file.
pub async fn curl(args: &[&str]) -> CurlResult {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || curl_blocking(&args)).await.expect("curl thread")
}

pub fn curl_blocking(args: &[String]) -> CurlResult {
    let dir = tempfile::tempdir().expect("tempdir");
    let body_path = dir.path().join("body");
    let headers_path = dir.path().join("headers");
    let output = Command::new("curl")
        .args(["-sS", "--max-time", "60", "-o"])
        .arg(&body_path)
        .arg("-D")
        .arg(&headers_path)
        .args(["-w", "%{http_code} %{http_version} %{http_connect}"])
        .args(args)
        .output()
        .expect("run curl");
    let written = String::from_utf8_lossy(&output.stdout).to_string();
    let mut parts = written.split_whitespace();
    let status = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let http_version = parts.next().unwrap_or("").to_string();
    let connect_status = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let raw_headers = std::fs::read_to_string(&headers_path).unwrap_or_default();
    // Keep only the last header block (after a CONNECT 200 or 100-continue).
    let last_block = raw_headers.trim_end().rsplit("\r\n\r\n").next().unwrap_or("").to_string();
    let headers = last_block
        .lines()
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    CurlResult {
        status,
        headers,
        body: std::fs::read(&body_path).unwrap_or_default(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        http_version,
        connect_status,
    }
}

/// Runs a Python snippet with `requests` available; returns (exit ok, stdout, stderr).
pub async fn python(script: &str, env: &[(&str, String)]) -> (bool, String, String) {
    let script = script.to_string();
    let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    tokio::task::spawn_blocking(move || {
        let output = Command::new("python3")
            .arg("-c")
            .arg(&script)
            .envs(env)
            .env_remove("http_proxy")
            .env_remove("https_proxy")
            .env_remove("NO_PROXY")
            .env_remove("no_proxy")
            .output()
            .expect("run python3");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    })
    .await
    .expect("python thread")
}

/// A PostgreSQL database of its own, dropped afterwards.
pub struct TestDatabase {
    pub name: String,
}

impl TestDatabase {
    pub fn create() -> Self {
        let name = format!("consentry_test_{}", uuid::Uuid::now_v7().simple());
        psql(&format!("CREATE DATABASE {name}"));
        Self { name }
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:5432/{}", self.name)
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-q", "-c"])
            .arg(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name))
            .output();
    }
}

pub fn psql(sql: &str) {
    let out = Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
        .output()
        .expect("psql (PostgreSQL client) is installed");
    assert!(out.status.success(), "psql {sql:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A transparency-log signing key (PKCS#8 PEM) in `dir`: every node on one PostgreSQL shares
/// it, as a Kubernetes Secret gives every pod the same one.
pub fn shared_tlog_key(dir: &Path) -> PathBuf {
    use ed25519_dalek::pkcs8::EncodePrivateKey as _;
    let key = ed25519_dalek::SigningKey::from_bytes(&rand::random());
    let path = dir.join("tlog-key.pem");
    std::fs::write(&path, key.to_pkcs8_pem(Default::default()).expect("pem").as_bytes()).expect("write key");
    path
}

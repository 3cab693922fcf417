//! Stage 6a, forward: the pooled upstream client and the header hygiene of a forward proxy.
//!
//! Requests and responses stream through (bodies are never buffered whole). Hop-by-hop headers are
//! removed in both directions (RFC 9110 §7.6.1: the fixed list plus every field named in
//! `Connection`), `Via` is added, and the `Host` header is derived from the target's authority.

use std::time::Duration;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, Version};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::ProxyBody;
use super::connector::{ConnectError, GuardedConnector};
use crate::config::Config;
use crate::tls::{TlsSetupError, upstream_client_config};

/// The pseudonym Consentry uses in `Via`.
pub const VIA_PSEUDONYM: &str = "consentry";

/// Why a forwarded request got no response.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The network policy refused the destination (answered with `403`, source `network-policy`).
    #[error("{0}")]
    Refused(String),
    /// Connecting or waiting for the response head took too long (answered with `504`).
    #[error("{0}")]
    Timeout(String),
    /// Anything else: DNS, connection, TLS or protocol failure (answered with `502`).
    #[error("{0}")]
    Failed(String),
}

/// The shared, pooled client used for every upstream request.
#[derive(Debug, Clone)]
pub struct Upstream {
    client: Client<HttpsConnector<GuardedConnector>, ProxyBody>,
    connector: GuardedConnector,
    response_timeout: Duration,
}

/// Largest read buffer of one upstream HTTP/1 connection.
const UPSTREAM_READ_BUFFER: usize = 64 * 1024;

impl Upstream {
    pub fn new(config: &Config) -> Result<Self, TlsSetupError> {
        let connector = GuardedConnector::new(&config.upstream, config.proxy.allow_private_destinations);
        let tls = upstream_client_config(&config.tls.upstream_roots)?;
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(connector.clone());
        let client = Client::builder(TokioExecutor::new())
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(config.upstream.pool_idle_timeout.0)
            .pool_max_idle_per_host(config.upstream.pool_max_idle_per_host)
            // Read-ahead per upstream connection (default ~400 KiB): what a stalled download can
            // hold in memory, so a thousand crawlers that stop reading cost 64 MiB, not 400.
            .http1_max_buf_size(UPSTREAM_READ_BUFFER)
            .build(https);
        Ok(Self { client, connector, response_timeout: config.upstream.response_timeout.0 })
    }

    /// The connector, for tunnels that bypass the HTTP client.
    pub fn connector(&self) -> &GuardedConnector {
        &self.connector
    }

    /// Sends `request` (absolute URI) and waits for the response head.
    pub async fn send(&self, request: Request<ProxyBody>) -> Result<Response<Incoming>, UpstreamError> {
        let started = std::time::Instant::now();
        let result = self.send_timed(request).await;
        let outcome = if result.is_ok() { "response" } else { "error" };
        metrics::histogram!("consentry_upstream_seconds", "outcome" => outcome).record(started.elapsed().as_secs_f64());
        result
    }

    async fn send_timed(&self, request: Request<ProxyBody>) -> Result<Response<Incoming>, UpstreamError> {
        match tokio::time::timeout(self.response_timeout, self.client.request(request)).await {
            Err(_) => Err(UpstreamError::Timeout(format!(
                "the origin sent no response head within {:?}",
                self.response_timeout
            ))),
            // Upgrade is hop-by-hop and never forwarded: a 101 would hand the crawler's connection
            // to nobody (or, with a pipe, to the origin past every later decision).
            Ok(Ok(response)) if response.status() == http::StatusCode::SWITCHING_PROTOCOLS => {
                Err(UpstreamError::Failed(
                    "the origin answered 101 Switching Protocols, but Consentry forwards no upgrade".into(),
                ))
            }
            Ok(Ok(response)) => Ok(response),
            Ok(Err(error)) => Err(classify(error)),
        }
    }
}

fn classify(error: hyper_util::client::legacy::Error) -> UpstreamError {
    match ConnectError::find_in(&error) {
        Some(connect @ (ConnectError::Refused { .. } | ConnectError::Timeout { .. })) => connect.into(),
        // rustls says "invalid peer certificate: …"; say that it was TLS, so nobody hunts a TCP fault.
        _ if is_tls_failure(&error) => {
            UpstreamError::Failed(format!("TLS handshake with the origin failed: {}", error_chain(&error)))
        }
        _ => UpstreamError::Failed(error_chain(&error)),
    }
}

/// Whether a rustls error is in the chain. tokio-rustls puts it inside an `io::Error` (which
/// hyper-rustls may wrap again), and `io::Error::source()` skips that payload: follow it instead.
fn is_tls_failure(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(e) = current {
        if e.is::<rustls::Error>() {
            return true;
        }
        current = match e.downcast_ref::<std::io::Error>().and_then(std::io::Error::get_ref) {
            Some(payload) => Some(payload),
            None => e.source(),
        };
    }
    false
}

impl From<&ConnectError> for UpstreamError {
    /// Network-policy refusals and timeouts keep their own answers (403, 504); the rest is 502.
    fn from(error: &ConnectError) -> Self {
        match error {
            ConnectError::Refused { .. } => UpstreamError::Refused(error.to_string()),
            ConnectError::Timeout { .. } => UpstreamError::Timeout(error.to_string()),
            _ => UpstreamError::Failed(error.to_string()),
        }
    }
}

/// `error: cause: cause` in one line, for answers and logs.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut current = error.source();
    while let Some(cause) = current {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        current = cause.source();
    }
    text
}

/// Removes hop-by-hop fields: those named in `Connection` and the fixed list of RFC 9110 §7.6.1
/// (plus `Proxy-Connection`, which old clients still send).
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        header::CONNECTION,
        HeaderName::from_static("keep-alive"),
        HeaderName::from_static("proxy-connection"),
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
    ] {
        headers.remove(name);
    }
}

/// Appends Consentry to `Via` for a message received with `version`.
pub fn add_via(headers: &mut HeaderMap, version: Version) {
    let protocol = match version {
        Version::HTTP_10 => "1.0",
        Version::HTTP_2 => "2",
        Version::HTTP_3 => "3",
        _ => "1.1",
    };
    if let Ok(value) = HeaderValue::from_str(&format!("{protocol} {VIA_PSEUDONYM}")) {
        headers.append(header::VIA, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_fields_are_removed_including_connection_listed_ones() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONNECTION, HeaderValue::from_static("keep-alive, X-Secret-Hop"));
        headers.append(header::CONNECTION, HeaderValue::from_static("x-other-hop"));
        headers.insert("x-secret-hop", HeaderValue::from_static("1"));
        headers.insert("x-other-hop", HeaderValue::from_static("1"));
        headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        headers.insert(header::PROXY_AUTHORIZATION, HeaderValue::from_static("Basic eDp5"));
        headers.insert("proxy-connection", HeaderValue::from_static("keep-alive"));
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert("x-end-to-end", HeaderValue::from_static("kept"));
        strip_hop_by_hop(&mut headers);
        let left: Vec<_> = headers.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, ["x-end-to-end"]);
    }

    #[test]
    fn via_is_appended() {
        let mut headers = HeaderMap::new();
        headers.insert(header::VIA, HeaderValue::from_static("1.1 upstream-cache"));
        add_via(&mut headers, Version::HTTP_2);
        let via: Vec<_> = headers.get_all(header::VIA).iter().map(|v| v.to_str().expect("ascii")).collect();
        assert_eq!(via, ["1.1 upstream-cache", "2 consentry"]);
    }
}

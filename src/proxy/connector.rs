//! Upstream TCP connections under the network policy.
//!
//! Every upstream connection (forwarded requests, tunnels, and later policy fetches) goes through
//! [`GuardedConnector`]: it resolves the host (or applies an `upstream.resolve` override), drops
//! every address in a non-public range unless `proxy.allow_private_destinations` is set, and
//! connects to one of the remaining addresses. The check is on the very address connected to, so
//! DNS rebinding between a check and the connect is impossible.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::config::{UpstreamConfig, split_host_port};

/// Why no upstream connection was made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("destination {host} resolves to {addr}, a {range} address; private destinations are refused")]
    Refused { host: String, addr: IpAddr, range: &'static str },
    #[error("cannot resolve {host}: {source}")]
    Resolve { host: String, source: io::Error },
    #[error("{host} resolves to no address")]
    NoAddress { host: String },
    #[error("connecting to {host}:{port} timed out after {after:?}")]
    Timeout { host: String, port: u16, after: Duration },
    #[error("cannot connect to {host} at {addr}: {source}")]
    Connect { host: String, addr: SocketAddr, source: io::Error },
    #[error("the upstream URI {0} names no host")]
    NoHost(String),
}

impl ConnectError {
    /// Finds a `ConnectError` in an error's source chain (hyper and hyper-rustls wrap it).
    pub fn find_in<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a ConnectError> {
        let mut current = Some(error);
        while let Some(e) = current {
            if let Some(found) = e.downcast_ref::<ConnectError>() {
                return Some(found);
            }
            current = e.source();
        }
        None
    }
}

/// Resolves, applies the network policy and connects.
#[derive(Debug, Clone)]
pub struct GuardedConnector {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// `host:port` (lower-case) → address, like curl's `--resolve`.
    overrides: HashMap<String, SocketAddr>,
    allow_private: bool,
    connect_timeout: Duration,
}

impl GuardedConnector {
    /// Builds the connector; `upstream.resolve` entries were validated with the config.
    pub fn new(upstream: &UpstreamConfig, allow_private: bool) -> Self {
        let overrides = upstream
            .resolve
            .iter()
            .filter_map(|(from, to)| {
                let (host, port) = split_host_port(from)?;
                let addr = to.parse().ok()?;
                Some((format!("{}:{port}", host.to_ascii_lowercase()), addr))
            })
            .collect();
        let connect_timeout = upstream.connect_timeout.0;
        Self { inner: Arc::new(Inner { overrides, allow_private, connect_timeout }) }
    }

    /// Connects to `host:port`, refusing non-public destinations unless allowed.
    pub async fn connect(&self, host: &str, port: u16) -> Result<TcpStream, ConnectError> {
        let inner = &self.inner;
        let candidates = inner.resolve(host, port).await?;
        let mut refused = None;
        let mut last_error = None;
        for addr in candidates {
            if !inner.allow_private
                && let Some(range) = non_public_range(addr.ip())
            {
                refused.get_or_insert(ConnectError::Refused { host: host.into(), addr: addr.ip(), range });
                continue;
            }
            match tokio::time::timeout(inner.connect_timeout, TcpStream::connect(addr)).await {
                Ok(Ok(stream)) => {
                    // Small request/response exchanges must not wait for Nagle.
                    let _ = stream.set_nodelay(true);
                    return Ok(stream);
                }
                Ok(Err(source)) => last_error = Some(ConnectError::Connect { host: host.into(), addr, source }),
                Err(_) => {
                    last_error = Some(ConnectError::Timeout { host: host.into(), port, after: inner.connect_timeout })
                }
            }
        }
        Err(last_error.or(refused).unwrap_or_else(|| ConnectError::NoAddress { host: host.into() }))
    }
}

impl Inner {
    async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, ConnectError> {
        let key = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
        if let Some(addr) = self.overrides.get(&key).or_else(|| self.overrides.get(&format!("{host}:{port}"))) {
            return Ok(vec![*addr]);
        }
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        let lookup = tokio::time::timeout(self.connect_timeout, tokio::net::lookup_host((host, port)));
        match lookup.await {
            Ok(Ok(addrs)) => Ok(addrs.collect()),
            Ok(Err(source)) => Err(ConnectError::Resolve { host: host.into(), source }),
            Err(_) => Err(ConnectError::Timeout { host: host.into(), port, after: self.connect_timeout }),
        }
    }
}

impl tower_service::Service<Uri> for GuardedConnector {
    type Response = TokioIo<TcpStream>;
    type Error = ConnectError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connector = self.clone();
        Box::pin(async move {
            let host = uri.host().ok_or_else(|| ConnectError::NoHost(uri.to_string()))?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let default_port = if uri.scheme_str() == Some("https") { 443 } else { 80 };
            let port = uri.port_u16().unwrap_or(default_port);
            connector.connect(host, port).await.map(TokioIo::new)
        })
    }
}

/// The non-public range an address belongs to, or `None` for a public address.
pub fn non_public_range(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_range(v4),
        IpAddr::V6(v6) => v6_range(v6),
    }
}

fn v4_range(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        _ if ip == Ipv4Addr::new(169, 254, 169, 254) => "cloud metadata",
        _ if ip == Ipv4Addr::new(100, 100, 100, 200) => "cloud metadata",
        (0, _, _) => "unspecified (0.0.0.0/8)",
        (127, _, _) => "loopback",
        (10, _, _) => "private (RFC 1918)",
        (172, 16..=31, _) => "private (RFC 1918)",
        (192, 168, _) => "private (RFC 1918)",
        (169, 254, _) => "link-local",
        (100, 64..=127, _) => "carrier-grade NAT (RFC 6598)",
        (192, 0, 0) => "IETF protocol assignments",
        (198, 18..=19, _) => "benchmarking (RFC 2544)",
        (224..=239, _, _) => "multicast",
        (240..=255, _, _) => "reserved",
        _ => return None,
    })
}

fn v6_range(ip: Ipv6Addr) -> Option<&'static str> {
    // Addresses that carry an IPv4 address are judged by it (mapped, NAT64 well-known prefix).
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_range(v4);
    }
    let segments = ip.segments();
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [a, b] = segments[6].to_be_bytes();
        let [c, d] = segments[7].to_be_bytes();
        return v4_range(Ipv4Addr::new(a, b, c, d));
    }
    Some(match segments[0] {
        _ if ip.is_loopback() => "loopback",
        _ if ip.is_unspecified() => "unspecified",
        _ if ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) => "cloud metadata",
        s if s & 0xfe00 == 0xfc00 => "unique-local (fc00::/7)",
        s if s & 0xffc0 == 0xfe80 => "link-local",
        s if s & 0xff00 == 0xff00 => "multicast",
        // IPv4-compatible (deprecated) addresses ::a.b.c.d.
        0 if segments[1..6] == [0; 5] => "IPv4-compatible (deprecated)",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(text: &str) -> Option<&'static str> {
        non_public_range(text.parse().expect("test address parses"))
    }

    #[test]
    fn private_ranges_are_recognised() {
        for (addr, expected) in [
            ("127.0.0.1", "loopback"),
            ("10.1.2.3", "private (RFC 1918)"),
            ("172.16.0.1", "private (RFC 1918)"),
            ("172.31.255.255", "private (RFC 1918)"),
            ("192.168.1.1", "private (RFC 1918)"),
            ("169.254.169.254", "cloud metadata"),
            ("169.254.1.1", "link-local"),
            ("100.64.0.1", "carrier-grade NAT (RFC 6598)"),
            ("0.0.0.0", "unspecified (0.0.0.0/8)"),
            ("::1", "loopback"),
            ("fd12::1", "unique-local (fc00::/7)"),
            ("fe80::1", "link-local"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:10.0.0.1", "private (RFC 1918)"),
            ("64:ff9b::a9fe:a9fe", "cloud metadata"),
            ("fd00:ec2::254", "cloud metadata"),
        ] {
            assert_eq!(range(addr), Some(expected), "{addr}");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for addr in ["1.1.1.1", "172.32.0.1", "100.128.0.1", "2606:4700::1111", "::ffff:8.8.8.8"] {
            assert_eq!(range(addr), None, "{addr}");
        }
    }

    #[tokio::test]
    async fn loopback_is_refused_unless_allowed() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let strict = GuardedConnector::new(&UpstreamConfig::default(), false);
        let err = strict.connect("127.0.0.1", port).await.expect_err("refused");
        assert!(matches!(err, ConnectError::Refused { range: "loopback", .. }), "{err}");
        let open = GuardedConnector::new(&UpstreamConfig::default(), true);
        open.connect("127.0.0.1", port).await.expect("allowed when configured");
    }

    #[tokio::test]
    async fn resolve_overrides_apply_before_the_policy() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut upstream = UpstreamConfig::default();
        upstream.resolve.insert("site.example:443".into(), addr.to_string());
        let strict = GuardedConnector::new(&upstream, false);
        let err = strict.connect("site.example", 443).await.expect_err("override is still checked");
        assert!(matches!(err, ConnectError::Refused { .. }));
        let open = GuardedConnector::new(&upstream, true);
        let stream = open.connect("site.example", 443).await.expect("override used");
        assert_eq!(stream.peer_addr().expect("peer"), addr);
    }
}

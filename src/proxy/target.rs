//! Stage 3, parse: the request target as Consentry matches and forwards it.
//!
//! A forward proxy receives absolute-form targets (`GET http://host/path`) and authority-form
//! `CONNECT host:port`. Hosts are lower-cased, a trailing dot is dropped, default ports are
//! dropped, and userinfo is refused (it only serves to disguise the real host).

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

use http::Uri;
use http::uri::{Authority, Scheme as UriScheme};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// A normalised host and port: host lower-case, no trailing dot, IPv6 without brackets.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

impl HostPort {
    /// `host:port` as written in an authority (IPv6 bracketed), always with the port.
    pub fn with_port(&self) -> String {
        format!("{}:{}", bracketed(&self.host), self.port)
    }

    /// The authority as used in URLs of `scheme`: the default port is left out.
    pub fn authority_for(&self, scheme: Scheme) -> String {
        if self.port == scheme.default_port() { bracketed(&self.host) } else { self.with_port() }
    }

    pub fn is_ip_literal(&self) -> bool {
        self.host.parse::<IpAddr>().is_ok()
    }
}

fn bracketed(host: &str) -> String {
    if host.contains(':') { format!("[{host}]") } else { host.to_string() }
}

/// The normalised target of a proxied request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub scheme: Scheme,
    pub host_port: HostPort,
    /// Path and query as received (at least `/`).
    pub path_and_query: String,
}

impl Target {
    pub fn new(scheme: Scheme, host_port: HostPort, path_and_query: &str) -> Self {
        let path_and_query = if path_and_query.is_empty() { "/".to_string() } else { path_and_query.to_string() };
        Self { scheme, host_port, path_and_query }
    }

    pub fn authority(&self) -> String {
        self.host_port.authority_for(self.scheme)
    }

    /// `scheme://host[:port]`: the unit robots.txt and other site-wide policy apply to.
    pub fn origin(&self) -> String {
        format!("{}://{}", self.scheme.as_str(), self.authority())
    }

    /// The absolute URI forwarded upstream.
    pub fn uri(&self) -> Result<Uri, http::Error> {
        Uri::builder()
            .scheme(self.scheme.as_str())
            .authority(self.authority())
            .path_and_query(self.path_and_query.as_str())
            .build()
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.origin(), self.path_and_query)
    }
}

/// Why a request target was refused; the text is shown to the crawler in the 400 answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error(
        "origin-form request target {0:?}: this is a forward proxy; send an absolute URL (GET http://host/path) or CONNECT host:port"
    )]
    OriginForm(String),
    #[error("unsupported scheme {0:?}: only http and https are proxied")]
    Scheme(String),
    #[error("the request target has no host")]
    MissingHost,
    #[error("userinfo in the request target is refused")]
    Userinfo,
    #[error("invalid host {0:?}")]
    BadHost(String),
    #[error("CONNECT needs host:port, got {0:?}")]
    ConnectAuthority(String),
    #[error("port 0 is not a valid destination")]
    PortZero,
}

/// Parses an absolute-form request target.
pub fn parse_absolute(uri: &Uri) -> Result<Target, TargetError> {
    let Some(scheme) = uri.scheme() else {
        return Err(TargetError::OriginForm(uri.to_string()));
    };
    let scheme = if *scheme == UriScheme::HTTP {
        Scheme::Http
    } else if *scheme == UriScheme::HTTPS {
        Scheme::Https
    } else {
        return Err(TargetError::Scheme(scheme.to_string()));
    };
    let authority = uri.authority().ok_or(TargetError::MissingHost)?;
    let host_port = parse_authority(authority, Some(scheme.default_port()))?;
    let path_and_query = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    Ok(Target::new(scheme, host_port, path_and_query))
}

/// Parses the authority-form target of `CONNECT` (the port is required).
pub fn parse_connect(uri: &Uri) -> Result<HostPort, TargetError> {
    let authority = uri.authority().ok_or_else(|| TargetError::ConnectAuthority(uri.to_string()))?;
    if uri.scheme().is_some() || uri.path_and_query().is_some_and(|p| p.as_str() != "/" && !p.as_str().is_empty()) {
        return Err(TargetError::ConnectAuthority(uri.to_string()));
    }
    parse_authority(authority, None)
}

/// Parses a `Host` header or `:authority` value seen inside a tunnel.
pub fn parse_host_header(value: &str, default_port: u16) -> Result<HostPort, TargetError> {
    let authority: Authority = value.parse().map_err(|_| TargetError::BadHost(value.to_string()))?;
    parse_authority(&authority, Some(default_port))
}

fn parse_authority(authority: &Authority, default_port: Option<u16>) -> Result<HostPort, TargetError> {
    if authority.as_str().contains('@') {
        return Err(TargetError::Userinfo);
    }
    let port = match (authority.port_u16(), default_port) {
        (Some(0), _) => return Err(TargetError::PortZero),
        (Some(port), _) => port,
        (None, Some(port)) => port,
        (None, None) => return Err(TargetError::ConnectAuthority(authority.to_string())),
    };
    let host = normalise_host(authority.host())?;
    Ok(HostPort { host, port })
}

/// Lower-cases a host, drops one trailing dot and the brackets of an IPv6 literal, and refuses
/// characters that have no place in a DNS name or IP literal.
fn normalise_host(raw: &str) -> Result<String, TargetError> {
    if let Some(inner) = raw.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner.parse::<Ipv6Addr>().map(|ip| ip.to_string()).map_err(|_| TargetError::BadHost(raw.to_string()));
    }
    let host = raw.strip_suffix('.').unwrap_or(raw).to_ascii_lowercase();
    let valid_label_chars = host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    if host.is_empty() || host.len() > 253 || !valid_label_chars || host.split('.').any(str::is_empty) {
        return Err(TargetError::BadHost(raw.to_string()));
    }
    Ok(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn absolute(text: &str) -> Result<Target, TargetError> {
        parse_absolute(&text.parse::<Uri>().expect("test URI parses"))
    }

    #[test]
    fn absolute_targets_are_normalised() {
        let t = absolute("http://Example.COM.:80/a?b=c").expect("valid");
        assert_eq!(t.to_string(), "http://example.com/a?b=c");
        assert_eq!(t.origin(), "http://example.com");
        let t = absolute("https://example.com:8443").expect("valid");
        assert_eq!(t.to_string(), "https://example.com:8443/");
        let t = absolute("http://[::1]:8080/x").expect("valid");
        assert_eq!(t.host_port.host, "::1");
        assert_eq!(t.to_string(), "http://[::1]:8080/x");
    }

    #[test]
    fn bad_targets_are_refused_with_a_reason() {
        assert!(matches!(parse_absolute(&"/path".parse().expect("uri")), Err(TargetError::OriginForm(_))));
        assert!(matches!(absolute("ftp://example.com/"), Err(TargetError::Scheme(_))));
        assert_eq!(absolute("http://user:pw@example.com/"), Err(TargetError::Userinfo));
        assert_eq!(absolute("http://example.com:0/"), Err(TargetError::PortZero));
        assert!(matches!(absolute("http://ex!ample.com/"), Err(TargetError::BadHost(_))));
        assert!(matches!(absolute("http://a..b/"), Err(TargetError::BadHost(_))));
    }

    #[test]
    fn connect_needs_a_port() {
        let hp = parse_connect(&"Example.com:443".parse().expect("uri")).expect("valid");
        assert_eq!(hp, HostPort { host: "example.com".into(), port: 443 });
        assert_eq!(hp.with_port(), "example.com:443");
        assert!(parse_connect(&"example.com".parse().expect("uri")).is_err());
    }

    #[test]
    fn host_headers_compare_after_normalisation() {
        let tunnel = HostPort { host: "example.com".into(), port: 443 };
        assert_eq!(parse_host_header("EXAMPLE.com", 443).expect("valid"), tunnel);
        assert_eq!(parse_host_header("example.com:443", 443).expect("valid"), tunnel);
        assert_ne!(parse_host_header("example.com:8443", 443).expect("valid"), tunnel);
        assert_ne!(parse_host_header("other.example", 443).expect("valid"), tunnel);
    }
}

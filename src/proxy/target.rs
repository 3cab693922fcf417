//! Stage 3, parse: the request target as Consentry matches and forwards it.
//!
//! A forward proxy receives absolute-form targets (`GET http://host/path`) and authority-form
//! `CONNECT host:port`. Hosts are lower-cased, a trailing dot is dropped, default ports are
//! dropped, and userinfo is refused (it only serves to disguise the real host). The path is
//! normalised the way origins resolve it (dot segments, also percent-encoded ones, removed and
//! runs of `/` merged), and the normalised path is both judged and fetched: `/a/../private`,
//! `/%2e%2e/private` and `//private` cannot step around a rule for `/private`.

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
    /// Path (normalised, see [`normalise_path`]) and query as received (at least `/`).
    pub path_and_query: String,
}

impl Target {
    pub fn new(scheme: Scheme, host_port: HostPort, path_and_query: &str) -> Self {
        // An empty path is `/` in http(s) URIs (RFC 3986 §6.2.3), also before a query.
        let path_and_query = match path_and_query {
            "" => "/".to_string(),
            query if query.starts_with('?') => normalise_path(&format!("/{query}")),
            _ => normalise_path(path_and_query),
        };
        Self { scheme, host_port, path_and_query }
    }

    /// The target as a server that decodes `%2F`, treats `\` as `/` or strips `;` parameters
    /// from segments (Tomcat, IIS, nginx serving files) would read it, when that differs.
    pub fn alternative_reading(&self) -> Option<Target> {
        let path = alternative_path(&self.path_and_query)?;
        Some(Target { scheme: self.scheme, host_port: self.host_port.clone(), path_and_query: path })
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

/// The path as an origin resolves it: dot segments removed (RFC 3986 §5.2.4), also when their
/// dots are percent-encoded (`%2e` is `.`, §6.2.2.2), and runs of `/` merged (web servers do so by
/// default, so `//private` is served as `/private`). The query is kept as received; a target that
/// is not a path (`*`) is left alone.
pub(crate) fn normalise_path(path_and_query: &str) -> String {
    let (path, query) = path_and_query.split_at(path_and_query.find('?').unwrap_or(path_and_query.len()));
    let untouched = !path.starts_with('/')
        || (!path.contains("//") && !path.split('/').any(|segment| dot_segment(segment).is_some()));
    if untouched {
        return path_and_query.to_string();
    }
    let mut segments: Vec<&str> = Vec::new();
    let mut trailing_slash = false;
    for segment in path.split('/').skip(1) {
        let dot = dot_segment(segment);
        match dot {
            Some(DotSegment::Current) => {}
            Some(DotSegment::Parent) => {
                segments.pop();
            }
            None if segment.is_empty() => {}
            None => segments.push(segment),
        }
        // `/a/`, `/a/.` and `/a/b/..` all name a directory.
        trailing_slash = segment.is_empty() || dot.is_some();
    }
    let mut out = String::with_capacity(path_and_query.len());
    for segment in &segments {
        out.push('/');
        out.push_str(segment);
    }
    if trailing_slash || out.is_empty() {
        out.push('/');
    }
    out.push_str(query);
    out
}

/// `path_and_query` with `%2F` and backslashes (raw or `%5C`) read as `/` and `;parameters`
/// dropped from each segment, then normalised; `None` when that changes nothing.
fn alternative_path(path_and_query: &str) -> Option<String> {
    let (path, query) = path_and_query.split_at(path_and_query.find('?').unwrap_or(path_and_query.len()));
    // Checked on every request that is not blocked outright: no allocation until it applies.
    let escaped_separator = |w: &[u8]| w[0] == b'%' && matches!((w[1], w[2] | 0x20), (b'2', b'f') | (b'5', b'c'));
    if !(path.contains(['\\', ';']) || path.as_bytes().windows(3).any(escaped_separator)) {
        return None;
    }
    let slashes =
        replace_ignoring_ascii_case(&replace_ignoring_ascii_case(path, "%2f", "/"), "%5c", "/").replace('\\', "/");
    let mut reread = String::with_capacity(path_and_query.len());
    for (i, segment) in slashes.split('/').enumerate() {
        if i > 0 {
            reread.push('/');
        }
        reread.push_str(segment.split(';').next().unwrap_or(""));
    }
    reread.push_str(query);
    let reread = normalise_path(&reread);
    (reread != path_and_query).then_some(reread)
}

/// `text` with every ASCII-case-insensitive occurrence of `from` (lower case) replaced by `to`.
fn replace_ignoring_ascii_case(text: &str, from: &str, to: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (at, _) in lower.match_indices(from) {
        out.push_str(&text[last..at]);
        out.push_str(to);
        last = at + from.len();
    }
    out.push_str(&text[last..]);
    out
}

enum DotSegment {
    Current,
    Parent,
}

/// Whether a path segment is `.` or `..`, with each dot possibly written `%2e` / `%2E`.
fn dot_segment(segment: &str) -> Option<DotSegment> {
    let is = |spellings: &[&str]| spellings.iter().any(|s| segment.eq_ignore_ascii_case(s));
    if is(&[".", "%2e"]) {
        Some(DotSegment::Current)
    } else if is(&["..", ".%2e", "%2e.", "%2e%2e"]) {
        Some(DotSegment::Parent)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn absolute(text: &str) -> Result<Target, TargetError> {
        parse_absolute(&text.parse::<Uri>().expect("test URI parses"))
    }

    #[test]
    fn alternative_readings_decode_slashes_backslashes_and_parameters() {
        for (path, reading) in [
            ("/public%2F..%2Fprivate", Some("/private")),
            ("/a%2fb?x=%2F", Some("/a/b?x=%2F")),
            ("/public%5C..%5cprivate", Some("/private")),
            ("/public\\..\\private", Some("/private")),
            ("/public/..;/private", Some("/private")),
            ("/private;jsessionid=1/doc", Some("/private/doc")),
            ("/hello;v=1", Some("/hello")),
            ("/plain/path?q=%2F;x", None),
            ("/caf%C3%A9", None),
        ] {
            assert_eq!(alternative_path(path).as_deref(), reading, "{path}");
        }
    }

    #[test]
    fn an_empty_path_before_a_query_is_the_root() {
        assert_eq!(absolute("http://example.com?a=1").expect("valid").path_and_query, "/?a=1");
        assert_eq!(absolute("http://example.com").expect("valid").path_and_query, "/");
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
    fn paths_are_normalised_as_origins_resolve_them() {
        for (received, normalised) in [
            ("/a/b?q=/../x", "/a/b?q=/../x"),
            ("/public/../private", "/private"),
            ("/%2e%2e/private", "/private"),
            ("/public/.%2E/private?x=1", "/private?x=1"),
            ("/./private", "/private"),
            ("//private", "/private"),
            ("/a//b/", "/a/b/"),
            ("/a/b/..", "/a/"),
            ("/a/.", "/a/"),
            ("/..", "/"),
            ("/%2e%2e%2fprivate", "/%2e%2e%2fprivate"),
            ("/a/...", "/a/..."),
        ] {
            let t = absolute(&format!("http://example.com{received}")).expect("valid");
            assert_eq!(t.path_and_query, normalised, "{received}");
        }
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

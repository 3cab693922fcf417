//! DNS TXT lookups for the creators' portal's domain-control check.
//!
//! A creator proves control of a domain by publishing a token in a TXT record at
//! `_consentry-challenge.<domain>`; [`TxtChecker`] fetches the TXT strings at such a name so the
//! portal can compare them with the token it issued.
//!
//! The checker is tuned for that job rather than for general resolution:
//! - names are always looked up as absolute names, so a resolver search list can never turn
//!   `_consentry-challenge.example.org` into `_consentry-challenge.example.org.corp.internal`;
//! - nothing is cached, positive or negative: a creator who sees "no TXT record", adds the
//!   record and retries seconds later must get a fresh answer, and a removed or replaced token
//!   must stop counting at once (only the upstream resolver's own cache remains, outside our
//!   control);
//! - every lookup is bounded by one overall timeout, and each failure is reported in words a
//!   creator can act on (NXDOMAIN, no TXT at an existing name, timeout, other failure).

use std::net::SocketAddr;
use std::time::Duration;

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError, NoRecords};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{Name, RData};
use hickory_resolver::{Resolver, TokioResolver};

/// Looks up TXT records, either through the system's resolvers or through given name servers.
///
/// Cheap to clone (the clones share connections); `Send + Sync`.
#[derive(Clone, Debug)]
pub struct TxtChecker {
    resolver: TokioResolver,
    timeout: Duration,
}

impl TxtChecker {
    /// `nameservers` empty = the system's resolver configuration (/etc/resolv.conf); otherwise
    /// exactly these `ip:port` servers (UDP, with TCP fallback). Every lookup bounded by `timeout`.
    pub fn new(nameservers: &[SocketAddr], timeout: Duration) -> Result<Self, String> {
        if timeout.is_zero() {
            return Err("the DNS lookup timeout must be longer than zero".to_string());
        }
        let mut builder = if nameservers.is_empty() {
            TokioResolver::builder_tokio()
                .map_err(|e| format!("cannot read the system's DNS resolver configuration: {e}"))?
        } else {
            let servers = nameservers
                .iter()
                .map(|addr| {
                    // `ConnectionConfig` is non-exhaustive: start from the constructors and set the port.
                    let mut udp = ConnectionConfig::udp();
                    udp.port = addr.port();
                    let mut tcp = ConnectionConfig::tcp();
                    tcp.port = addr.port();
                    NameServerConfig::new(addr.ip(), true, vec![udp, tcp])
                })
                .collect();
            Resolver::builder_with_config(ResolverConfig::from_name_servers(servers), TokioRuntimeProvider::default())
        };
        let options = builder.options_mut();
        // Per-attempt timeout; the UDP client retransmits within it, and `txt_records` bounds the
        // whole lookup (all attempts, all servers) by the same duration.
        options.timeout = timeout;
        // A TXT answer can legitimately be larger than a UDP datagram allows, and some networks
        // drop DNS over UDP: fall back to TCP on truncation and on UDP errors.
        options.try_tcp_on_error = true;
        // /etc/hosts has no TXT records; skip reading it.
        options.use_hosts_file = ResolveHosts::Never;
        // No caching (see the module docs): every cached entry expires the moment it is stored.
        // The minimums are reset too because a minimum above the maximum would be contradictory.
        options.positive_min_ttl = None;
        options.negative_min_ttl = None;
        options.positive_max_ttl = Some(Duration::ZERO);
        options.negative_max_ttl = Some(Duration::ZERO);
        let resolver = builder.build().map_err(|e| format!("cannot set up the DNS resolver: {e}"))?;
        Ok(Self { resolver, timeout })
    }

    /// The TXT strings at `name` (each record's character-strings concatenated, lossily decoded as UTF-8).
    /// Errors are human-readable and specific: "no TXT record at _consentry-challenge.example.org (NXDOMAIN)",
    /// "no TXT record at … (no records of that type)", "DNS lookup of … timed out after 10s", "DNS lookup of … failed: …".
    pub async fn txt_records(&self, name: &str) -> Result<Vec<String>, String> {
        // Shown in messages without the root dot, the way a creator writes it.
        let shown = name.strip_suffix('.').unwrap_or(name);
        if shown.is_empty() {
            return Err("cannot look up TXT records: the DNS name is empty".to_string());
        }
        // Relaxed parsing: the challenge label starts with `_`, which strict IDNA rejects in
        // other positions; non-ASCII labels still become punycode.
        let mut fqdn = Name::from_str_relaxed(shown)
            .map_err(|e| format!("cannot look up TXT records: {shown:?} is not a valid DNS name: {e}"))?;
        // Absolute: no search-domain appending.
        fqdn.set_fqdn(true);

        let lookup = match tokio::time::timeout(self.timeout, self.resolver.txt_lookup(fqdn)).await {
            Err(_) => return Err(timed_out(shown, self.timeout)),
            Ok(Err(e)) => return Err(describe(shown, self.timeout, &e)),
            Ok(Ok(lookup)) => lookup,
        };
        let values: Vec<String> = lookup
            .answers()
            .iter()
            .filter_map(|record| match &record.data {
                // Concatenate the bytes before decoding: a long value is split into 255-byte
                // character-strings without regard for UTF-8 boundaries.
                RData::TXT(txt) => {
                    let bytes: Vec<u8> = txt.txt_data.iter().flat_map(|s| s.iter().copied()).collect();
                    Some(String::from_utf8_lossy(&bytes).into_owned())
                }
                _ => None,
            })
            .collect();
        if values.is_empty() {
            // E.g. only a CNAME came back, pointing at a name without TXT records.
            return Err(no_txt(shown, "no records of that type"));
        }
        Ok(values)
    }
}

fn no_txt(name: &str, why: &str) -> String {
    format!("no TXT record at {name} ({why})")
}

fn timed_out(name: &str, timeout: Duration) -> String {
    format!("DNS lookup of {name} timed out after {}", humantime::format_duration(timeout))
}

/// Words for a resolver error, naming `name`.
fn describe(name: &str, timeout: Duration, error: &NetError) -> String {
    match error {
        NetError::Dns(DnsError::NoRecordsFound(NoRecords { response_code: ResponseCode::NXDomain, .. })) => {
            no_txt(name, "NXDOMAIN")
        }
        NetError::Dns(DnsError::NoRecordsFound(_)) => no_txt(name, "no records of that type"),
        NetError::Timeout => timed_out(name, timeout),
        NetError::Dns(DnsError::ResponseCode(code)) => {
            format!("DNS lookup of {name} failed: the DNS server answered {}", rcode_name(*code))
        }
        other => format!("DNS lookup of {name} failed: {other}"),
    }
}

/// The mnemonic DNS operators know (`SERVFAIL`), falling back to hickory's description.
fn rcode_name(code: ResponseCode) -> String {
    match code {
        ResponseCode::ServFail => "SERVFAIL".to_string(),
        ResponseCode::Refused => "REFUSED".to_string(),
        ResponseCode::FormErr => "FORMERR".to_string(),
        ResponseCode::NotImp => "NOTIMP".to_string(),
        ResponseCode::NotAuth => "NOTAUTH".to_string(),
        other => format!("{other} (rcode {})", u16::from(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync_clone<T: Send + Sync + Clone>() {}
    fn assert_send<T: Send>(_: &T) {}

    #[test]
    fn checker_is_send_sync_clone_and_its_lookup_future_is_send() {
        assert_send_sync_clone::<TxtChecker>();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let _guard = runtime.enter();
        let addr: SocketAddr = "127.0.0.1:53".parse().expect("addr");
        let checker = TxtChecker::new(&[addr], Duration::from_secs(1)).expect("checker");
        // Axum handlers need `Send` futures; never polled.
        let future = checker.txt_records("example.org");
        assert_send(&future);
    }

    #[test]
    fn construction_needs_no_runtime() {
        let addr: SocketAddr = "127.0.0.1:53".parse().expect("addr");
        assert!(TxtChecker::new(&[addr], Duration::from_secs(1)).is_ok());
    }

    #[test]
    fn zero_timeout_is_rejected() {
        let addr: SocketAddr = "127.0.0.1:53".parse().expect("addr");
        let error = TxtChecker::new(&[addr], Duration::ZERO).expect_err("zero timeout");
        assert!(error.contains("timeout"), "{error}");
    }

    #[tokio::test]
    async fn invalid_and_empty_names_are_rejected_before_any_lookup() {
        // Port 9 (discard): nothing answers, so a lookup would time out instead.
        let addr: SocketAddr = "127.0.0.1:9".parse().expect("addr");
        let checker = TxtChecker::new(&[addr], Duration::from_secs(5)).expect("checker");
        for name in ["", ".", "bad..name.example", "spaces in.example"] {
            let started = std::time::Instant::now();
            let error = checker.txt_records(name).await.expect_err(name);
            assert!(error.starts_with("cannot look up TXT records"), "{name:?}: {error}");
            assert!(started.elapsed() < Duration::from_secs(1), "{name:?} went to the network");
        }
    }

    #[test]
    fn errors_name_the_cause() {
        let name = "_consentry-challenge.example.org";
        let timeout = Duration::from_secs(10);
        let query = hickory_resolver::proto::op::Query::default();
        let nx = NetError::from(NoRecords::new(query.clone(), ResponseCode::NXDomain));
        assert_eq!(describe(name, timeout, &nx), "no TXT record at _consentry-challenge.example.org (NXDOMAIN)");
        let empty = NetError::from(NoRecords::new(query, ResponseCode::NoError));
        assert_eq!(
            describe(name, timeout, &empty),
            "no TXT record at _consentry-challenge.example.org (no records of that type)"
        );
        assert_eq!(
            describe(name, timeout, &NetError::Timeout),
            "DNS lookup of _consentry-challenge.example.org timed out after 10s"
        );
        let servfail = NetError::Dns(DnsError::ResponseCode(ResponseCode::ServFail));
        assert_eq!(
            describe(name, timeout, &servfail),
            "DNS lookup of _consentry-challenge.example.org failed: the DNS server answered SERVFAIL"
        );
        let io = NetError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(describe(name, timeout, &io).starts_with("DNS lookup of _consentry-challenge.example.org failed: "));
    }
}

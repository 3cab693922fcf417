//! The configuration tree: TOML in, validated [`Config`] out.
//!
//! Defaults live in code (`Default` impls), unknown keys are errors (a misspelt opt-out key in a
//! compliance proxy must never be silently ignored), and every problem names the file and the full
//! key, e.g. ``consentry.toml: `proxy.block_status`: must be 403 or 451, got 200``. Validation
//! reports every problem at once rather than only the first.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use crate::decide::{Mode, Purpose};

pub mod env;

/// Name of the crawler profile that needs no credentials in the built-in configuration.
pub const DEFAULT_PROFILE: &str = "default";

/// The whole configuration. Every field has a default, so an empty file is a valid config.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// CA, databases and signing keys live here; created with mode 0700.
    pub data_dir: PathBuf,
    /// This node's name in audit records; empty means the host name.
    pub node: String,
    pub proxy: ProxyConfig,
    pub tls: TlsConfig,
    pub upstream: UpstreamConfig,
    pub admin: AdminConfig,
    pub public: PublicConfig,
    pub storage: StorageConfig,
    pub robots: RobotsConfig,
    pub politeness: PolitenessConfig,
    pub signals: SignalsConfig,
    pub policy: PolicyConfig,
    pub inspect: InspectConfig,
    pub registry: RegistryConfig,
    pub tlog: TlogConfig,
    /// Crawler profiles. When the file names none, the built-in `default` profile applies.
    pub crawlers: Vec<CrawlerProfile>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProxyConfig {
    pub listen: SocketAddr,
    /// `enforce` blocks; `monitor` forwards everything and records what would have been blocked.
    pub mode: Mode,
    /// Status of the block answer: 451 (RFC 7725) or 403 for crawler stacks that mishandle 451.
    pub block_status: u16,
    /// Loopback, RFC 1918, link-local, CGNAT, unique-local and metadata addresses are refused
    /// unless this is true.
    pub allow_private_destinations: bool,
    /// Client connections served at once. When all are taken, a new client displaces the
    /// connection idle longest; when none is idle, it waits in the accept queue.
    pub max_connections: usize,
    /// Connections one client address may hold at once; more are refused with `503`. 0: no limit
    /// (the default, since behind a load balancer that does not keep client addresses every
    /// crawler may share one address).
    pub max_connections_per_client: usize,
    /// Time a client has to send a complete request head (also bounds idle keep-alive waits).
    pub header_read_timeout: HumanDuration,
    /// Largest request head accepted, in bytes (request line plus headers).
    pub max_header_bytes: usize,
    /// Most header fields accepted in one request.
    pub max_headers: usize,
    /// A client that reads nothing of its answer for this long is disconnected (slow-read attacks).
    pub client_write_timeout: HumanDuration,
    /// How long in-flight requests may run after SIGINT/SIGTERM before connections are cut.
    pub drain_timeout: HumanDuration,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// Terminate TLS inside CONNECT tunnels with leaf certificates minted from Consentry's CA.
    pub intercept: bool,
    /// Extra PEM files trusted for upstream TLS, besides the public (webpki) roots.
    pub upstream_roots: Vec<PathBuf>,
    /// Most minted leaf certificates kept in memory.
    pub leaf_cache_size: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct UpstreamConfig {
    /// `{ "host:port" = "ip:port" }` overrides, like curl's `--resolve`.
    pub resolve: BTreeMap<String, String>,
    pub connect_timeout: HumanDuration,
    /// Time the origin has to send its response head once the request is sent, and then the end
    /// of an HTML `<head>` that is scanned.
    pub response_timeout: HumanDuration,
    /// Idle pooled upstream connections are closed after this long.
    pub pool_idle_timeout: HumanDuration,
    /// Idle pooled connections kept per upstream host.
    pub pool_max_idle_per_host: usize,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    pub listen: SocketAddr,
    /// Bearer token for `/api`; empty means generated at first start.
    pub token: String,
    /// Wrong tokens one client address may present per minute; past that, the address is
    /// refused (429) until the allowance refills, whatever it presents.
    pub max_failed_auth_per_minute: u32,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PublicConfig {
    pub listen: SocketAddr,
    /// How long a domain claim may wait for its verification.
    pub claim_ttl: HumanDuration,
    /// Requests per minute one client IP may make to the `/v1` API (bursts up to this many).
    pub rate_limit_per_ip: u32,
    /// Requests per minute one creator API key may make.
    pub rate_limit_per_key: u32,
    /// Largest request body accepted by the `/v1` API, in bytes.
    pub max_body_bytes: usize,
    /// Nameservers (`ip:port`) for the DNS challenge; empty means the system's resolver.
    pub dns_nameservers: Vec<SocketAddr>,
    /// Time each verification check (DNS, HTTP) may take.
    pub verify_timeout: HumanDuration,
}

/// The creators' registry: how nodes follow it and which feeds they pull.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistryConfig {
    /// How often a node checks the database for registry changes made elsewhere (other
    /// processes, other nodes). Local changes apply at once.
    pub sync_interval: HumanDuration,
    /// Largest feed body accepted, in bytes.
    pub max_feed_bytes: usize,
    pub feeds: Vec<FeedConfig>,
}

/// A JSON Lines feed of registry entries, pulled over HTTP(S).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FeedConfig {
    pub url: String,
    #[serde(default = "FeedConfig::default_interval")]
    pub interval: HumanDuration,
    /// Base64 Ed25519 public key; when set, every feed body must carry a valid signature.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub public_key: String,
    /// Where the detached signature (base64, 64 bytes) is; empty means `<url>.sig`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub signature_url: String,
}

impl FeedConfig {
    fn default_interval() -> HumanDuration {
        HumanDuration::secs(15 * 60)
    }

    /// The URL of the feed's detached signature.
    pub fn signature_url(&self) -> String {
        if self.signature_url.is_empty() { format!("{}.sig", self.url) } else { self.signature_url.clone() }
    }
}

/// The transparency log: a Merkle tree of every audit record with signed checkpoints.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlogConfig {
    /// Publish every audit record into the transparency log (needs an audit store).
    pub enabled: bool,
    /// The log's name in its checkpoints (C2SP origin), e.g. `consentry.example/crawl-eu`; empty
    /// means the name the log already has in storage, or `consentry.local/<node>` for a new log.
    /// Every node of one deployment must agree.
    pub origin: String,
    /// PKCS#8 PEM Ed25519 key that signs checkpoints; empty means `<data_dir>/tlog-key.pem`,
    /// generated at first start. Every node of one deployment must share it.
    pub key_file: PathBuf,
    /// How often pending records are sequenced into the tree and a checkpoint is signed.
    pub batch_interval: HumanDuration,
    /// Most records sequenced in one transaction.
    pub max_batch: usize,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// `sqlite://PATH` or `postgres://user@host/db`; empty means `sqlite://<data_dir>/consentry.db`;
    /// `none` keeps no audit log (decisions are only logged; for benchmarks, never for compliance).
    pub url: String,
    pub durability: Durability,
    /// Records waiting to be committed in `async` durability; a full queue makes requests wait.
    pub queue_size: usize,
}

/// How robots.txt is fetched, cached and trusted (RFC 9309 with DESIGN §4's choices).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RobotsConfig {
    /// Bytes of a robots.txt that are parsed; RFC 9309 §2.5 requires at least 500 KiB.
    pub max_bytes: usize,
    /// Longest a fetched robots.txt is trusted (RFC 9309 §2.4: at most 24 h); a shorter
    /// `Cache-Control: max-age` from the site wins.
    pub cache_ttl: HumanDuration,
    /// `unreachable` treats 429 like 5xx (disallow all); `allow` follows RFC 9309 literally.
    pub on_429: On429,
    /// Time a whole robots.txt fetch (redirects and body included) may take.
    pub fetch_timeout: HumanDuration,
    /// How long an unreachable verdict is kept before the next fetch attempt.
    pub unreachable_ttl: HumanDuration,
    /// While robots.txt is unreachable, the last good copy is used if younger than this.
    pub max_stale_age: HumanDuration,
    /// `Crawl-delay` values above this are capped (and the cap recorded).
    pub max_crawl_delay: HumanDuration,
    /// Most origins whose robots.txt is cached.
    pub cache_max_entries: u64,
    /// Most bytes of robots.txt bodies cached.
    pub cache_max_bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum On429 {
    Unreachable,
    Allow,
}

/// Limits that keep crawlers polite towards each origin.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolitenessConfig {
    /// Requests in flight to one origin (scheme, host, port) at once; more wait their turn.
    pub max_concurrent_per_origin: usize,
}

/// Response inspection.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct InspectConfig {
    /// Scan the `<head>` of HTML responses for robots meta (`noai`) and TDMRep meta.
    pub html: bool,
    /// Decoded bytes of HTML read to find the end of `<head>`; the prefix is held, then released
    /// or withheld, and the rest streams.
    pub max_head_bytes: usize,
}

impl Default for InspectConfig {
    fn default() -> Self {
        Self { html: true, max_head_bytes: 256 * 1024 }
    }
}

/// What happens when a policy source is unknown.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    /// An AI policy file (ai.txt, tdmrep.json) that cannot be fetched for a reason other than
    /// absence: `allow` records it as unreachable; `block` disallows its purposes (fail closed).
    /// robots.txt is always fail-closed (RFC 9309).
    pub on_signal_unreachable: OnUnreachable,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnUnreachable {
    #[default]
    Allow,
    Block,
}

/// Readings of AI signals where the standards leave a choice.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SignalsConfig {
    /// Map legacy aipref labels (`ai=n`, `train-genai=n`, `all=n`, ...) to `train-ai=n`.
    pub aipref_legacy: bool,
    /// A TDM reservation also disallows `search` (EU-strict reading of CDSM Art. 4).
    pub eu_strict: bool,
}

impl SignalsConfig {
    pub fn reading(&self) -> crate::policy::findings::Reading {
        crate::policy::findings::Reading { aipref_legacy: self.aipref_legacy, eu_strict: self.eu_strict }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// The crawler's answer waits until its record is committed.
    Sync,
    /// Records are queued (bounded, with back-pressure) and committed in the background.
    Async,
}

/// Who is crawling and why; selected by `Proxy-Authorization: Basic name:password`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CrawlerProfile {
    pub name: String,
    /// Empty or absent: the profile needs no password (and, if named `default`, no credentials).
    #[serde(default)]
    pub password: String,
    /// The robots.txt product token this crawler obeys.
    pub token: String,
    /// The `User-Agent` sent upstream; replaces the crawler's own when set.
    #[serde(default)]
    pub user_agent: Option<String>,
    pub purposes: Vec<Purpose>,
    /// Extra robots.txt tokens this crawler also obeys; `@ai-training` names the curated list.
    #[serde(default)]
    pub honor_tokens: Vec<String>,
    /// Overrides `proxy.mode` for this crawler.
    #[serde(default)]
    pub mode: Option<Mode>,
    /// RSL licences this crawler holds: a held licence satisfies a licence-required usage, and
    /// requests under it are forwarded with `Authorization: License <token>`.
    #[serde(default)]
    pub licenses: Vec<HeldLicense>,
}

/// An RSL licence held by a crawler: the licence document's URL and the token the licence
/// server issued.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HeldLicense {
    pub url: String,
    pub token: String,
}

// === defaults ===

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("consentry-data"),
            node: String::new(),
            proxy: ProxyConfig::default(),
            tls: TlsConfig::default(),
            upstream: UpstreamConfig::default(),
            admin: AdminConfig::default(),
            public: PublicConfig::default(),
            storage: StorageConfig::default(),
            robots: RobotsConfig::default(),
            politeness: PolitenessConfig::default(),
            signals: SignalsConfig::default(),
            policy: PolicyConfig::default(),
            inspect: InspectConfig::default(),
            registry: RegistryConfig::default(),
            tlog: TlogConfig::default(),
            crawlers: Vec::new(),
        }
    }
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 3128)),
            mode: Mode::Enforce,
            block_status: 451,
            allow_private_destinations: false,
            max_connections: 10_000,
            max_connections_per_client: 0,
            header_read_timeout: HumanDuration::secs(30),
            max_header_bytes: 64 * 1024,
            max_headers: 100,
            client_write_timeout: HumanDuration::secs(60),
            drain_timeout: HumanDuration::secs(10),
        }
    }
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self { intercept: true, upstream_roots: Vec::new(), leaf_cache_size: 10_000 }
    }
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        Self {
            resolve: BTreeMap::new(),
            connect_timeout: HumanDuration::secs(10),
            response_timeout: HumanDuration::secs(60),
            pool_idle_timeout: HumanDuration::secs(90),
            pool_max_idle_per_host: 32,
        }
    }
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self { listen: SocketAddr::from(([127, 0, 0, 1], 9128)), token: String::new(), max_failed_auth_per_minute: 10 }
    }
}

impl Default for PublicConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 9129)),
            claim_ttl: HumanDuration::secs(7 * 24 * 3600),
            rate_limit_per_ip: 60,
            rate_limit_per_key: 120,
            max_body_bytes: 64 * 1024,
            dns_nameservers: Vec::new(),
            verify_timeout: HumanDuration::secs(10),
        }
    }
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self { sync_interval: HumanDuration::millis(250), max_feed_bytes: 64 * 1024 * 1024, feeds: Vec::new() }
    }
}

impl Default for TlogConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            origin: String::new(),
            key_file: PathBuf::new(),
            batch_interval: HumanDuration::secs(1),
            max_batch: 4096,
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self { url: String::new(), durability: Durability::Sync, queue_size: 10_000 }
    }
}

impl Default for RobotsConfig {
    fn default() -> Self {
        Self {
            max_bytes: 512_000,
            cache_ttl: HumanDuration::secs(24 * 3600),
            on_429: On429::Unreachable,
            fetch_timeout: HumanDuration::secs(30),
            unreachable_ttl: HumanDuration::secs(60),
            max_stale_age: HumanDuration::secs(30 * 24 * 3600),
            max_crawl_delay: HumanDuration::secs(60),
            cache_max_entries: 100_000,
            cache_max_bytes: 256 * 1024 * 1024,
        }
    }
}

impl Default for PolitenessConfig {
    fn default() -> Self {
        Self { max_concurrent_per_origin: 8 }
    }
}

impl CrawlerProfile {
    /// The profile used when no config file names any crawler: no credentials needed.
    pub fn builtin_default() -> Self {
        Self {
            name: DEFAULT_PROFILE.into(),
            password: String::new(),
            token: "Consentry".into(),
            user_agent: None,
            purposes: vec![Purpose::AiTrain],
            honor_tokens: vec!["@ai-training".into()],
            mode: None,
            licenses: Vec::new(),
        }
    }

    /// Whether this profile accepts requests that carry no credentials at all.
    pub fn is_anonymous(&self) -> bool {
        self.name == DEFAULT_PROFILE && self.password.is_empty()
    }
}

// === loading ===

/// One problem in a config file, naming the file and the full key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: `{key}`: {problem}")]
pub struct ConfigError {
    pub file: String,
    pub key: String,
    pub problem: String,
}

/// All problems found in one config file.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl Config {
    /// The built-in configuration `consentry run` uses when there is no file.
    pub fn builtin() -> Self {
        let mut config = Self::default();
        config.crawlers.push(CrawlerProfile::builtin_default());
        config
    }

    /// The audit store's URL: `storage.url`, or SQLite in `data_dir` when it is empty.
    pub fn storage_url(&self) -> String {
        if self.storage.url.is_empty() {
            format!("sqlite://{}", self.data_dir.join("consentry.db").display())
        } else {
            self.storage.url.clone()
        }
    }

    /// This node's name: `node`, else the host name, else "consentry".
    pub fn node_name(&self) -> String {
        if !self.node.is_empty() {
            return self.node.clone();
        }
        std::env::var("HOSTNAME")
            .ok()
            .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
            .map(|name| name.trim().to_string())
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| "consentry".into())
    }

    /// Reads and validates a config file, with the `CONSENTRY_*` environment overrides applied.
    pub fn load(path: &Path) -> Result<Self, ConfigErrors> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![ConfigError { file: file.clone(), key: "(file)".into(), problem: e.to_string() }])
        })?;
        Self::from_sources(&text, &file, std::env::vars())
    }

    /// The built-in defaults with the `CONSENTRY_*` environment overrides applied (no file).
    pub fn from_environment() -> Result<Self, ConfigErrors> {
        Self::from_sources("", "(built-in defaults)", std::env::vars())
    }

    /// `text` with the `CONSENTRY_*` variables among `vars` applied on top (see [`env`]).
    pub fn from_sources(
        text: &str,
        file: &str,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigErrors> {
        let overrides = env::overrides(vars)?;
        if overrides.is_empty() {
            return Self::from_toml(text, file);
        }
        let mut table: toml::Table =
            toml::from_str(text).map_err(|e| ConfigErrors(vec![parse_error(file, text, String::new(), &e)]))?;
        env::apply(&mut table, &overrides)?;
        let mut config: Config = serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
            let path = e.path().to_string();
            env::attribute(ConfigErrors(vec![parse_error(file, "", path, e.inner())]), &overrides)
        })?;
        if config.crawlers.is_empty() {
            config.crawlers.push(CrawlerProfile::builtin_default());
        }
        config.validate(file).map_err(|errors| env::attribute(errors, &overrides))?;
        Ok(config)
    }

    /// Parses and validates TOML text; `file` only names the source in errors.
    pub fn from_toml(text: &str, file: &str) -> Result<Self, ConfigErrors> {
        let deserializer = toml::de::Deserializer::parse(text)
            .map_err(|e| ConfigErrors(vec![parse_error(file, text, String::new(), &e)]))?;
        let mut config: Config = serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let path = e.path().to_string();
            ConfigErrors(vec![parse_error(file, text, path, e.inner())])
        })?;
        if config.crawlers.is_empty() {
            config.crawlers.push(CrawlerProfile::builtin_default());
        }
        config.validate(file)?;
        Ok(config)
    }

    /// Checks what serde cannot: ranges, cross-field rules, files that must exist.
    pub fn validate(&self, file: &str) -> Result<(), ConfigErrors> {
        let mut problems = Problems { file, found: Vec::new() };
        self.validate_proxy(&mut problems);
        self.validate_tls(&mut problems);
        self.validate_upstream(&mut problems);
        self.validate_storage(&mut problems);
        self.validate_robots(&mut problems);
        self.validate_crawlers(&mut problems);
        self.validate_registry(&mut problems);
        self.validate_tlog(&mut problems);
        if problems.found.is_empty() { Ok(()) } else { Err(ConfigErrors(problems.found)) }
    }

    fn validate_proxy(&self, p: &mut Problems<'_>) {
        let proxy = &self.proxy;
        if proxy.block_status != 451 && proxy.block_status != 403 {
            p.add("proxy.block_status", format!("must be 403 or 451, got {}", proxy.block_status));
        }
        if proxy.max_connections == 0 {
            p.add("proxy.max_connections", "must be at least 1".into());
        }
        if proxy.max_header_bytes < 8192 {
            p.add("proxy.max_header_bytes", format!("must be at least 8192, got {}", proxy.max_header_bytes));
        }
        if proxy.max_headers == 0 {
            p.add("proxy.max_headers", "must be at least 1".into());
        }
        if proxy.header_read_timeout.0.is_zero() {
            p.add("proxy.header_read_timeout", "must be longer than zero".into());
        }
        if proxy.client_write_timeout.0.is_zero() {
            p.add("proxy.client_write_timeout", "must be longer than zero".into());
        }
        let listeners = [
            ("proxy.listen", self.proxy.listen),
            ("admin.listen", self.admin.listen),
            ("public.listen", self.public.listen),
        ];
        for (i, (key, addr)) in listeners.iter().enumerate() {
            let clash = listeners[..i].iter().find(|(_, other)| *other == *addr && addr.port() != 0);
            if let Some((other_key, _)) = clash {
                p.add(key, format!("{addr} is also used by `{other_key}`"));
            }
        }
    }

    fn validate_tls(&self, p: &mut Problems<'_>) {
        for (i, path) in self.tls.upstream_roots.iter().enumerate() {
            let key = format!("tls.upstream_roots[{i}]");
            match crate::tls::read_pem_certificates(path) {
                Ok(certs) if certs.is_empty() => p.add(&key, format!("{} holds no PEM certificate", path.display())),
                Ok(_) => {}
                Err(e) => p.add(&key, format!("cannot read {}: {e}", path.display())),
            }
        }
        if self.tls.leaf_cache_size == 0 {
            p.add("tls.leaf_cache_size", "must be at least 1".into());
        }
    }

    fn validate_upstream(&self, p: &mut Problems<'_>) {
        for (from, to) in &self.upstream.resolve {
            let key = format!("upstream.resolve.\"{from}\"");
            if split_host_port(from).is_none() {
                p.add(&key, format!("the key must be host:port, got {from:?}"));
            }
            if SocketAddr::from_str(to).is_err() {
                p.add(&key, format!("the value must be ip:port (e.g. \"127.0.0.1:8443\"), got {to:?}"));
            }
        }
        for (key, value) in [
            ("upstream.connect_timeout", self.upstream.connect_timeout),
            ("upstream.response_timeout", self.upstream.response_timeout),
        ] {
            if value.0.is_zero() {
                p.add(key, "must be longer than zero".into());
            }
        }
    }

    fn validate_storage(&self, p: &mut Problems<'_>) {
        let url = &self.storage.url;
        let known = url.is_empty()
            || url == "none"
            || ["sqlite://", "postgres://", "postgresql://"].iter().any(|s| url.starts_with(s));
        if !known {
            p.add(
                "storage.url",
                format!("must start with sqlite:// or postgres:// (or be empty or \"none\"), got {url:?}"),
            );
        }
        if self.storage.queue_size == 0 {
            p.add("storage.queue_size", "must be at least 1".into());
        }
    }

    fn validate_robots(&self, p: &mut Problems<'_>) {
        let robots = &self.robots;
        if robots.max_bytes < 512_000 {
            p.add("robots.max_bytes", format!("must be at least 512000 (RFC 9309 §2.5), got {}", robots.max_bytes));
        }
        if robots.cache_ttl.0 > Duration::from_secs(24 * 3600) {
            p.add("robots.cache_ttl", "must be at most 24h (RFC 9309 §2.4)".into());
        }
        for (key, value) in [
            ("robots.cache_ttl", robots.cache_ttl),
            ("robots.fetch_timeout", robots.fetch_timeout),
            ("robots.unreachable_ttl", robots.unreachable_ttl),
        ] {
            if value.0.is_zero() {
                p.add(key, "must be longer than zero".into());
            }
        }
        if robots.cache_max_entries == 0 || robots.cache_max_bytes < robots.max_bytes as u64 {
            p.add(
                "robots.cache_max_bytes",
                format!("must hold at least one file of robots.max_bytes ({}) bytes", robots.max_bytes),
            );
        }
        if self.politeness.max_concurrent_per_origin == 0 {
            p.add("politeness.max_concurrent_per_origin", "must be at least 1".into());
        }
    }

    fn validate_registry(&self, p: &mut Problems<'_>) {
        let public = &self.public;
        for (key, value) in [
            ("public.rate_limit_per_ip", public.rate_limit_per_ip),
            ("public.rate_limit_per_key", public.rate_limit_per_key),
            ("admin.max_failed_auth_per_minute", self.admin.max_failed_auth_per_minute),
        ] {
            if value == 0 {
                p.add(key, "must be at least 1 (requests per minute)".into());
            }
        }
        if public.max_body_bytes < 1024 {
            p.add("public.max_body_bytes", format!("must be at least 1024, got {}", public.max_body_bytes));
        }
        for (key, value) in [
            ("public.claim_ttl", public.claim_ttl),
            ("public.verify_timeout", public.verify_timeout),
            ("registry.sync_interval", self.registry.sync_interval),
        ] {
            if value.0.is_zero() {
                p.add(key, "must be longer than zero".into());
            }
        }
        let mut urls = BTreeSet::new();
        for (i, feed) in self.registry.feeds.iter().enumerate() {
            let key = |field: &str| format!("registry.feeds[{i}].{field}");
            if !(feed.url.starts_with("https://") || feed.url.starts_with("http://"))
                || feed.url.parse::<http::Uri>().is_err()
            {
                p.add(&key("url"), format!("must be an http(s) URL, got {:?}", feed.url));
            } else if !urls.insert(feed.url.as_str()) {
                p.add(&key("url"), format!("{:?} is listed more than once", feed.url));
            }
            if feed.interval.0 < Duration::from_secs(1) {
                p.add(&key("interval"), "must be at least 1s".into());
            }
            if !feed.public_key.is_empty() && crate::registry::feed::parse_public_key(&feed.public_key).is_err() {
                p.add(&key("public_key"), "must be a base64 Ed25519 public key (32 bytes)".into());
            }
            if !feed.signature_url.is_empty() && !feed.signature_url.starts_with("http") {
                p.add(&key("signature_url"), format!("must be an http(s) URL, got {:?}", feed.signature_url));
            }
        }
    }

    fn validate_tlog(&self, p: &mut Problems<'_>) {
        let tlog = &self.tlog;
        if !tlog.origin.is_empty() && !crate::tlog::is_valid_origin(&tlog.origin) {
            p.add(
                "tlog.origin",
                format!("must be non-empty printable ASCII without spaces or '+', got {:?}", tlog.origin),
            );
        }
        if tlog.batch_interval.0 < Duration::from_millis(10) {
            p.add("tlog.batch_interval", "must be at least 10ms".into());
        }
        if tlog.max_batch == 0 {
            p.add("tlog.max_batch", "must be at least 1".into());
        }
        if !tlog.key_file.as_os_str().is_empty() && !tlog.key_file.is_file() {
            p.add("tlog.key_file", format!("{} is not a readable file", tlog.key_file.display()));
        }
    }

    fn validate_crawlers(&self, p: &mut Problems<'_>) {
        let mut names = BTreeSet::new();
        for (i, crawler) in self.crawlers.iter().enumerate() {
            let key = |field: &str| format!("crawlers[{i}].{field}");
            if crawler.name.is_empty() || crawler.name.contains(':') {
                p.add(&key("name"), format!("must be non-empty and contain no ':', got {:?}", crawler.name));
            } else if !names.insert(crawler.name.as_str()) {
                p.add(&key("name"), format!("{:?} names more than one crawler", crawler.name));
            }
            if !is_product_token(&crawler.token) {
                p.add(&key("token"), format!("must be letters, digits, '-', '_' or '.', got {:?}", crawler.token));
            }
            if crawler.purposes.is_empty() {
                p.add(&key("purposes"), "name at least one of search, ai-input, ai-train, tdm".into());
            }
            if let Some(agent) = &crawler.user_agent
                && (agent.is_empty() || http::HeaderValue::from_str(agent).is_err())
            {
                p.add(&key("user_agent"), "must be a non-empty, printable header value".into());
            }
            for (j, held) in crawler.licenses.iter().enumerate() {
                if !(held.url.starts_with("https://") || held.url.starts_with("http://")) {
                    p.add(
                        &format!("crawlers[{i}].licenses[{j}].url"),
                        format!("must be an http(s) URL, got {:?}", held.url),
                    );
                }
                if held.token.is_empty() || http::HeaderValue::from_str(&format!("License {}", held.token)).is_err() {
                    p.add(&format!("crawlers[{i}].licenses[{j}].token"), "must be a non-empty, printable token".into());
                }
            }
            for (j, token) in crawler.honor_tokens.iter().enumerate() {
                let list = token.strip_prefix('@');
                let valid = match list {
                    Some(name) => KNOWN_TOKEN_LISTS.contains(&name),
                    None => is_product_token(token),
                };
                if !valid {
                    p.add(
                        &format!("crawlers[{i}].honor_tokens[{j}]"),
                        format!("{token:?} is neither a product token nor one of @{}", KNOWN_TOKEN_LISTS.join(", @")),
                    );
                }
            }
        }
    }
}

/// Curated token lists a profile may name with `@name` in `honor_tokens`.
pub const KNOWN_TOKEN_LISTS: &[&str] = &["ai-training"];

/// Letters, digits, `-`, `_`, `.`: RFC 9309 tokens plus the digits and dots real bots use.
pub fn is_product_token(token: &str) -> bool {
    !token.is_empty() && token.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Splits `host:port` (with `[v6]:port` support); `None` when the port is missing or invalid.
pub fn split_host_port(text: &str) -> Option<(&str, u16)> {
    let (host, port) = text.rsplit_once(':')?;
    let port = port.parse().ok()?;
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    (!host.is_empty()).then_some((host, port))
}

struct Problems<'a> {
    file: &'a str,
    found: Vec<ConfigError>,
}

impl Problems<'_> {
    fn add(&mut self, key: &str, problem: String) {
        self.found.push(ConfigError { file: self.file.into(), key: key.into(), problem });
    }
}

/// Turns a TOML/serde error into a [`ConfigError`] naming the full key and, when known, the line.
fn parse_error(file: &str, text: &str, path: String, error: &toml::de::Error) -> ConfigError {
    let message = error.message().to_string();
    let mut key = if path == "." { String::new() } else { path };
    // Some deserializers report an unknown key at its parent; always name the key itself.
    if let Some(unknown) = message.strip_prefix("unknown field `").and_then(|rest| rest.split('`').next())
        && key.rsplit('.').next() != Some(unknown)
    {
        key = if key.is_empty() { unknown.to_string() } else { format!("{key}.{unknown}") };
    }
    if key.is_empty() {
        key = "(document)".into();
    }
    let line = error.span().map(|span| line_of(text, span.start));
    let problem = match line {
        Some(line) => format!("{message} (line {line})"),
        None => message,
    };
    ConfigError { file: file.into(), key, problem }
}

/// 1-based line number of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end].iter().filter(|&&b| b == b'\n').count() + 1
}

// === durations ===

/// A duration written as `"30s"`, `"500ms"`, `"15m"` (humantime syntax) or a number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    pub const fn secs(secs: u64) -> Self {
        Self(Duration::from_secs(secs))
    }

    pub const fn millis(millis: u64) -> Self {
        Self(Duration::from_millis(millis))
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Seconds(u64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Seconds(secs) => Ok(Self::secs(secs)),
            Raw::Text(text) => humantime::parse_duration(&text).map(Self).map_err(|e| {
                serde::de::Error::custom(format!("{text:?} is not a duration like \"30s\" or \"500ms\": {e}"))
            }),
        }
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&humantime::format_duration(self.0).to_string())
    }
}

#[cfg(test)]
mod tests;

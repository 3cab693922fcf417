//! Registry entries: what a creator objects to, validated and normalised once, on the way in.
//!
//! An entry names either one exact URL (an image, a page) or a domain, optionally with its
//! subdomains and a list of robots-style path patterns (`*` and `$`), and the purposes it
//! objects to. Everything that reaches the store and the index went through [`EntryDraft::validate`],
//! so matching never has to second-guess its input.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::decide::Purpose;
use crate::signals::pattern::normalize_path;

/// Purposes an entry objects to when it names none (DESIGN §3).
pub const DEFAULT_PURPOSES: [Purpose; 3] = [Purpose::AiInput, Purpose::AiTrain, Purpose::Tdm];

const MAX_ID: usize = 128;
const MAX_CREATOR: usize = 200;
const MAX_CONTACT: usize = 320;
const MAX_URL: usize = 2048;
const MAX_PATH: usize = 1024;
pub const MAX_PATHS: usize = 100;

/// A stored, valid registry entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub id: String,
    pub creator: String,
    pub contact: String,
    #[serde(flatten)]
    pub target: EntryTarget,
    pub purposes: Vec<Purpose>,
    /// `import`, `feed:<url>` or `claim:<claim id>`.
    pub source: String,
    /// Milliseconds since the Unix epoch.
    pub created_ms: i64,
    pub updated_ms: i64,
}

/// What an entry covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EntryTarget {
    /// One exact URL, normalised (see [`normalize_url`]).
    Url { url: String },
    /// A domain (ASCII, lower-case), optionally its subdomains, optionally only some paths.
    Domain {
        domain: String,
        include_subdomains: bool,
        /// Robots-style path patterns; empty means every path.
        paths: Vec<String>,
    },
}

impl EntryTarget {
    /// The host an entry is filed under: the URL's host or the domain.
    pub fn host(&self) -> &str {
        match self {
            EntryTarget::Url { url } => url_host(url).unwrap_or(""),
            EntryTarget::Domain { domain, .. } => domain,
        }
    }
}

/// An entry as submitted (import line, feed line, portal request), before validation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryDraft {
    pub id: Option<String>,
    pub creator: Option<String>,
    pub contact: Option<String>,
    pub url: Option<String>,
    pub domain: Option<String>,
    pub include_subdomains: Option<bool>,
    pub paths: Option<Vec<String>>,
    pub purposes: Option<Vec<String>>,
}

/// A valid entry that has not been given its id, source and times yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidEntry {
    pub id: Option<String>,
    pub creator: String,
    pub contact: String,
    pub target: EntryTarget,
    pub purposes: Vec<Purpose>,
}

impl ValidEntry {
    /// The stored entry, with `id` (the draft's own, else `fallback_id`), `source` and times.
    pub fn into_entry(self, fallback_id: impl FnOnce() -> String, source: &str, now_ms: i64) -> Entry {
        Entry {
            id: self.id.unwrap_or_else(fallback_id),
            creator: self.creator,
            contact: self.contact,
            target: self.target,
            purposes: self.purposes,
            source: source.to_string(),
            created_ms: now_ms,
            updated_ms: now_ms,
        }
    }
}

/// One problem with one field of a draft.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: &'static str,
    pub problem: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}`: {}", self.field, self.problem)
    }
}

impl EntryDraft {
    /// Validates and normalises every field, reporting every problem (not only the first).
    pub fn validate(self) -> Result<ValidEntry, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut problem = |field: &'static str, problem: String| errors.push(FieldError { field, problem });
        if let Some(id) = &self.id
            && let Err(p) = validate_id(id)
        {
            problem("id", p);
        }
        let creator = self.creator.unwrap_or_default().trim().to_string();
        if let Err(p) = validate_text(&creator, MAX_CREATOR, true) {
            problem("creator", p);
        }
        let contact = self.contact.unwrap_or_default().trim().to_string();
        if let Err(p) = validate_text(&contact, MAX_CONTACT, false) {
            problem("contact", p);
        }
        let target = match (self.url, self.domain) {
            (Some(_), Some(_)) => {
                problem("url", "give either `url` or `domain`, not both".into());
                None
            }
            (None, None) => {
                problem("domain", "give either `url` (one exact URL) or `domain`".into());
                None
            }
            (Some(url), None) => {
                if self.include_subdomains.is_some() {
                    problem("include_subdomains", "only applies to `domain` entries".into());
                }
                if self.paths.is_some() {
                    problem("paths", "only applies to `domain` entries".into());
                }
                normalize_url(&url).map_err(|p| problem("url", p)).ok().map(|url| EntryTarget::Url { url })
            }
            (None, Some(domain)) => {
                let domain = normalize_domain(&domain).map_err(|p| problem("domain", p)).ok();
                let paths = validate_paths(self.paths.unwrap_or_default()).map_err(|p| problem("paths", p)).ok();
                domain.zip(paths).map(|(domain, paths)| EntryTarget::Domain {
                    domain,
                    include_subdomains: self.include_subdomains.unwrap_or(true),
                    paths,
                })
            }
        };
        let purposes = match self.purposes {
            None => DEFAULT_PURPOSES.to_vec(),
            Some(names) => parse_purposes(&names).unwrap_or_else(|p| {
                problem("purposes", p);
                Vec::new()
            }),
        };
        match target {
            Some(target) if errors.is_empty() => Ok(ValidEntry { id: self.id, creator, contact, target, purposes }),
            _ => Err(errors),
        }
    }
}

fn validate_id(id: &str) -> Result<(), String> {
    let ok_chars = id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    if id.is_empty() || id.len() > MAX_ID || !ok_chars {
        return Err(format!("{id:?} is not a valid id (1 to {MAX_ID} of A-Z a-z 0-9 - _ . :)"));
    }
    Ok(())
}

fn validate_text(text: &str, max: usize, required: bool) -> Result<(), String> {
    if required && text.is_empty() {
        return Err("is required".into());
    }
    if text.chars().count() > max {
        return Err(format!("longer than {max} characters"));
    }
    if text.chars().any(char::is_control) {
        return Err("contains control characters".into());
    }
    Ok(())
}

/// Purpose names (`search`, `ai-input`, `ai-train`, `tdm`), sorted and deduplicated.
pub fn parse_purposes(names: &[String]) -> Result<Vec<Purpose>, String> {
    if names.is_empty() {
        return Err("is empty; leave it out for the default (ai-input, ai-train, tdm)".into());
    }
    let mut purposes = Vec::with_capacity(names.len());
    for name in names {
        let name = name.trim();
        let purpose = Purpose::ALL
            .into_iter()
            .find(|p| p.as_str() == name)
            .ok_or_else(|| format!("unknown purpose {name:?} (expected search, ai-input, ai-train or tdm)"))?;
        purposes.push(purpose);
    }
    purposes.sort();
    purposes.dedup();
    Ok(purposes)
}

/// A domain as stored and matched: IDNA to ASCII, lower-case, no trailing dot, at least two
/// labels, no IP address, no wildcard (use `include_subdomains`).
pub fn normalize_domain(raw: &str) -> Result<String, String> {
    let trimmed = raw.trim();
    let trimmed = trimmed.strip_suffix('.').unwrap_or(trimmed);
    if trimmed.starts_with("*.") {
        return Err(format!("{raw:?}: no wildcards; name the domain and set include_subdomains"));
    }
    if trimmed.contains(['/', ':', '@', ' ']) {
        return Err(format!("{raw:?} is not a domain name (give the host only, e.g. example.com)"));
    }
    let host = url::Host::parse(trimmed).map_err(|e| format!("{raw:?} is not a valid domain name: {e}"))?;
    let url::Host::Domain(domain) = host else {
        return Err(format!("{raw:?} is an IP address; registry entries name domains"));
    };
    let labels_ok = domain.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    if !labels_ok || domain.len() > 253 {
        return Err(format!("{raw:?} is not a valid domain name (letters, digits and '-' per label)"));
    }
    if !domain.contains('.') {
        return Err(format!("{raw:?} has a single label; name a registrable domain such as example.com"));
    }
    Ok(domain)
}

fn validate_paths(paths: Vec<String>) -> Result<Vec<String>, String> {
    if paths.len() > MAX_PATHS {
        return Err(format!("{} paths, more than the {MAX_PATHS} accepted", paths.len()));
    }
    let mut out = Vec::with_capacity(paths.len());
    for path in paths {
        let path = path.trim().to_string();
        if !(path.starts_with('/') || path.starts_with('*')) {
            return Err(format!("{path:?} must start with '/' (robots-style pattern; '*' and '$' allowed)"));
        }
        if path.len() > MAX_PATH {
            return Err(format!("a path is longer than {MAX_PATH} bytes"));
        }
        if path.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(format!("{path:?} contains whitespace or control characters"));
        }
        out.push(path);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// An exact-URL entry's key: `scheme://host[:port]` (IDNA to ASCII, lower-case, default port
/// left out) followed by the path and query, percent-encoding normalised and dot segments
/// resolved. A request matches when its own key, built by [`request_key`], is equal.
pub fn normalize_url(raw: &str) -> Result<String, String> {
    let raw = raw.trim();
    if raw.len() > MAX_URL {
        return Err(format!("longer than {MAX_URL} bytes"));
    }
    let parsed = url::Url::parse(raw).map_err(|e| format!("{raw:?} is not a valid URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("{raw:?}: only http and https URLs can be objected to"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(format!("{raw:?}: a URL with userinfo is not accepted"));
    }
    if parsed.fragment().is_some() {
        return Err(format!("{raw:?}: remove the #fragment (it is never sent to a server)"));
    }
    let host = match parsed.host() {
        Some(url::Host::Domain(d)) => d.strip_suffix('.').unwrap_or(d).to_string(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => format!("[{ip}]"),
        None => return Err(format!("{raw:?} has no host")),
    };
    let authority = match parsed.port() {
        Some(port) => format!("{host}:{port}"),
        None => host,
    };
    let path_and_query = &parsed[url::Position::BeforePath..url::Position::AfterQuery];
    Ok(format!("{}://{authority}{}", parsed.scheme(), canonical_path(path_and_query)))
}

/// The key of a request for exact-URL matching (see [`normalize_url`]); `authority` is the
/// target's authority as the proxy normalised it (default port already left out).
pub fn request_key(scheme: &str, authority: &str, path_and_query: &str) -> String {
    format!("{scheme}://{authority}{}", canonical_path(&url_encoded(scheme, authority, path_and_query)))
}

/// The path and query as the `url` crate writes them, which is how [`normalize_url`] stored the
/// entry's: it percent-encodes octets a request may carry raw (`{`, `|`, `^`, a `'` in a
/// query, ...). Read any other way, a request for `/{` would step around the entry for the very
/// same URL (stored as `/%7B`). A target the `url` crate refuses is taken as received.
fn url_encoded<'a>(scheme: &str, authority: &str, path_and_query: &'a str) -> Cow<'a, str> {
    // The usual target holds only octets the `url` crate writes as they are: no need to parse.
    if path_and_query.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~!$&()*+,;=:@/%?".contains(&b)) {
        return Cow::Borrowed(path_and_query);
    }
    match url::Url::parse(&format!("{scheme}://{authority}{path_and_query}")) {
        Ok(parsed) => Cow::Owned(parsed[url::Position::BeforePath..url::Position::AfterQuery].to_string()),
        Err(_) => Cow::Borrowed(path_and_query),
    }
}

/// Percent-encoding normalisation plus dot-segment removal (RFC 3986 §5.2.4) and merged empty
/// segments on the path part, so that `/a/../b`, `/%2e%2e/` and `//b` cannot step around an entry.
pub fn canonical_path(path_and_query: &str) -> String {
    // The same dot-segment and empty-segment rules the proxy applies to every request target,
    // so an entry is keyed exactly as a request for it is.
    crate::proxy::target::normalise_path(&normalize_path(path_and_query))
}

/// The host part of a normalised URL key (without port or brackets).
fn url_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split('/').next()?;
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next();
    }
    authority.split(':').next()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(json: &str) -> EntryDraft {
        serde_json::from_str(json).expect("test draft parses")
    }

    #[test]
    fn domain_entries_are_normalised_with_defaults() {
        let entry =
            draft(r#"{"creator":" Ann ","domain":"Bücher.Example.","paths":["/b","/a*"]}"#).validate().expect("valid");
        assert_eq!(entry.creator, "Ann");
        assert_eq!(
            entry.target,
            EntryTarget::Domain {
                domain: "xn--bcher-kva.example".into(),
                include_subdomains: true,
                paths: vec!["/a*".into(), "/b".into()]
            }
        );
        assert_eq!(entry.purposes, DEFAULT_PURPOSES.to_vec());
    }

    #[test]
    fn url_entries_are_normalised() {
        let url = |raw: &str| normalize_url(raw);
        assert_eq!(url("HTTPS://Example.COM:443/a/./b/../c%7e?x=1").as_deref(), Ok("https://example.com/a/c~?x=1"));
        assert_eq!(url("http://example.com:8080").as_deref(), Ok("http://example.com:8080/"));
        assert!(url("ftp://example.com/x").is_err());
        assert!(url("https://user@example.com/x").is_err());
        assert!(url("https://example.com/x#frag").is_err());
        assert!(url("not a url").is_err());
    }

    #[test]
    fn request_keys_equal_entry_keys() {
        assert_eq!(request_key("https", "example.com", "/a/%2e%2e/c%7E?x=1"), "https://example.com/c~?x=1");
        assert_eq!(request_key("http", "example.com:8080", "/"), "http://example.com:8080/");
    }

    #[test]
    fn dot_segments_cannot_escape_the_root() {
        assert_eq!(canonical_path("/../../a"), "/a");
        assert_eq!(canonical_path("/a/.."), "/");
        assert_eq!(canonical_path("/a/./"), "/a/");
        assert_eq!(canonical_path("/a/b?x=/../"), "/a/b?x=/../");
    }

    #[test]
    fn every_problem_is_reported_with_its_field() {
        let errors = draft(r#"{"id":"bad id","domain":"*.example.com","purposes":["ai-train","teleport"]}"#)
            .validate()
            .expect_err("invalid");
        let fields: Vec<&str> = errors.iter().map(|e| e.field).collect();
        assert_eq!(fields, ["id", "creator", "domain", "purposes"]);
        assert!(errors[3].problem.contains("teleport"), "{errors:?}");
    }

    #[test]
    fn invalid_domains_say_why() {
        for bad in ["localhost", "127.0.0.1", "exa mple.com", "example.com/path", "-a.example", "a..b", ""] {
            assert!(normalize_domain(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(normalize_domain("WWW.Example.org").as_deref(), Ok("www.example.org"));
    }

    #[test]
    fn url_and_domain_are_exclusive_and_paths_need_a_slash() {
        let errors =
            draft(r#"{"creator":"a","url":"https://x.example/","domain":"x.example"}"#).validate().expect_err("both");
        assert_eq!(errors[0].field, "url");
        let errors = draft(r#"{"creator":"a","domain":"x.example","paths":["private"]}"#).validate().expect_err("path");
        assert_eq!(errors[0].field, "paths");
        let errors =
            draft(r#"{"creator":"a","url":"https://x.example/","paths":["/a"]}"#).validate().expect_err("paths on url");
        assert_eq!(errors[0].field, "paths");
    }

    #[test]
    fn purposes_parse_sorted_and_deduplicated() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(parse_purposes(&names(&["tdm", "search", "tdm"])), Ok(vec![Purpose::Search, Purpose::Tdm]));
        assert!(parse_purposes(&[]).is_err());
    }

    #[test]
    fn entries_serialise_flat() {
        let entry = Entry {
            id: "e1".into(),
            creator: "Ann".into(),
            contact: "ann@example.org".into(),
            target: EntryTarget::Domain { domain: "example.org".into(), include_subdomains: false, paths: vec![] },
            purposes: vec![Purpose::AiTrain],
            source: "import".into(),
            created_ms: 1,
            updated_ms: 2,
        };
        let json = serde_json::to_value(&entry).expect("serialises");
        assert_eq!(json["domain"], "example.org");
        assert_eq!(json["include_subdomains"], false);
        let back: Entry = serde_json::from_value(json).expect("round trip");
        assert_eq!(back, entry);
        assert_eq!(back.target.host(), "example.org");
        let url = EntryTarget::Url { url: "https://[::1]:8443/a".into() };
        assert_eq!(url.host(), "::1");
    }
}

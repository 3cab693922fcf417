//! RSL (Really Simple Licensing 1.0): the licence document, its evaluation for a URL and a
//! purpose, and where licences are announced (robots.txt `License:` lines, the `Link` header).
//!
//! Follows SIGNALS.md §7 (the RSL 1.0 spec text itself was not read; the section is built from a
//! third-party summary and the rsl-wp reference plugin, so details are marked there as [S]) and
//! DESIGN §3/§4:
//! - the document is `<rsl>` (namespace `https://rslstandard.org/rsl`, any prefix) with
//!   `<content url server?>` entries, each holding `<license>`s with `<permits type="usage">` /
//!   `<prohibits type="usage">` space-separated token lists and `<payment type>`;
//! - a URL is governed by the `<content>` with the narrowest matching `url` (a full URL or a
//!   robots.txt path pattern; `url=""` is the placement scope); equally narrow entries combine
//!   most-restrictively;
//! - for a purpose, a licence: prohibits it (token covers it) → prohibited; lists it both as
//!   permitted and prohibited → not permitted; has `<permits type="usage">` without it → not
//!   permitted; otherwise permitted, or licence-required when the content names a licence
//!   `server` or a payment other than `free`/`attribution` is asked. Several licences in one
//!   `<content>` are alternatives: the most favourable one counts;
//! - tokens (DESIGN §3): `all` covers every purpose, `ai-all` every AI purpose, `ai-train`,
//!   `ai-input`, `search`; `ai-index` maps to ai-input when prohibited, but permitting it does not
//!   permit ai-input (retrieval is broader than indexing); launch-era tokens (`train-ai`,
//!   `train-genai`, `ai-use`, `ai-summarize`) and comma-separated lists are recorded; legacy
//!   prohibitions always count, legacy permissions only when `legacy` is set;
//! - a malformed document grants nothing: it is recorded and gives no signal ("unlicensed").

use quick_xml::XmlVersion;
use quick_xml::events::{BytesStart, Event};

use super::pattern::PathPattern;
use super::prefs::Prefs;
use crate::decide::Purpose;

mod link;

pub use self::link::{LicenseChallenge, LicenseLink, license_challenge, license_links};

/// The RSL namespace; other namespaces' elements are extensions and ignored.
pub const NAMESPACE: &str = "https://rslstandard.org/rsl";

/// Elements of the RSL vocabulary this parser knows but does not evaluate.
const OTHER_RSL_ELEMENTS: &[&str] =
    &["alternate", "schema", "copyright", "terms", "reporting", "legal", "standard", "custom", "amount", "accepts"];

/// Payment types that need no licence token (no `<payment>` at all means free).
const FREE_PAYMENTS: &[&str] = &["free", "attribution"];

/// One `<license>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RslLicense {
    /// Usage tokens of `<permits type="usage">` (normalised); `None` when absent.
    pub permits: Option<Vec<String>>,
    /// Usage tokens of `<prohibits type="usage">` (normalised); `None` when absent.
    pub prohibits: Option<Vec<String>>,
    /// `<payment type>` values.
    pub payments: Vec<String>,
    /// Conditions not evaluated here (`permits type="user"`, `geo`, ...), as `kind type: tokens`.
    pub conditions: Vec<String>,
    /// 1-based line of `<license>`.
    pub line: u32,
}

/// One `<content>` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RslContent {
    /// The `url` attribute as written.
    pub url: String,
    /// The licence server (OLP); when set a licence token is required even for free use.
    pub server: Option<String>,
    pub licenses: Vec<RslLicense>,
    /// 1-based line of `<content>`.
    pub line: u32,
}

/// A parsed RSL document.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RslDocument {
    pub contents: Vec<RslContent>,
    /// `max-age` in days, when given (RSL default: 30).
    pub max_age_days: Option<u32>,
    /// False when the document is malformed: it then grants and prohibits nothing.
    pub valid: bool,
    /// Everything not understood, with its line.
    pub problems: Vec<(u32, String)>,
}

/// What a licence says about one purpose, from most to least favourable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RslStatus {
    /// Free to use for this purpose.
    Permitted,
    /// Use needs a licence token (a `server`, or a payment).
    LicenseRequired,
    /// `<permits>` lists other usages only, or lists this one while also prohibiting it.
    NotPermitted,
    /// `<prohibits>` covers this usage.
    Prohibited,
}

/// The outcome of a document for one URL and purpose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RslEvaluation<'a> {
    pub status: RslStatus,
    /// The deciding `<content>` and `<license>`.
    pub content: &'a RslContent,
    pub license: Option<&'a RslLicense>,
    /// Why, in words (for the reason's detail).
    pub detail: String,
}

impl RslEvaluation<'_> {
    /// Whether the purpose may go ahead; a held licence (from the crawler profile) satisfies
    /// `LicenseRequired` only: prohibited or unpermitted usage is not licensable.
    pub fn allowed(&self, holds_license: bool) -> bool {
        match self.status {
            RslStatus::Permitted => true,
            RslStatus::LicenseRequired => holds_license,
            RslStatus::NotPermitted | RslStatus::Prohibited => false,
        }
    }
}

impl RslDocument {
    /// Parses a document; `legacy` lets launch-era tokens in `<permits>` grant (see module docs).
    pub fn parse(body: &[u8], legacy: bool) -> Self {
        let text = String::from_utf8_lossy(body);
        let mut parser = DocParser {
            text: &text,
            legacy,
            doc: RslDocument::default(),
            stack: Vec::new(),
            list: None,
            root_seen: false,
            skipping_content: false,
        };
        match parser.run() {
            Ok(()) => {
                parser.doc.valid = true;
                parser.doc
            }
            Err((line, problem)) => {
                let mut doc = parser.doc;
                doc.contents.clear();
                doc.problems.push((line, format!("{problem}: the document grants nothing")));
                doc
            }
        }
    }

    /// The narrowest `<content>` entries governing `url` (absolute `http(s)` URL); several only
    /// when equally narrow.
    pub fn contents_for(&self, url: &str) -> Vec<&RslContent> {
        let (origin, path) = split_url(url);
        let mut best: Vec<&RslContent> = Vec::new();
        let mut best_len = 0;
        for content in &self.contents {
            let Some(len) = scope_match(&content.url, &origin, path) else {
                continue;
            };
            if best.is_empty() || len > best_len {
                best = vec![content];
                best_len = len;
            } else if len == best_len {
                best.push(content);
            }
        }
        best
    }

    /// What the document says for `url` and `purpose`; `None` = unlicensed (no entry governs the
    /// URL, or the document is malformed).
    pub fn evaluate(&self, url: &str, purpose: Purpose) -> Option<RslEvaluation<'_>> {
        self.contents_for(url).into_iter().map(|c| evaluate_content(c, purpose)).max_by_key(|e| e.status)
    }

    /// Per-purpose reading for a crawler; `holds_license` says whether its profile holds a licence
    /// for this document.
    pub fn prefs(&self, url: &str, holds_license: bool) -> Prefs {
        let mut prefs = Prefs::UNKNOWN;
        for purpose in Purpose::ALL {
            if let Some(e) = self.evaluate(url, purpose) {
                prefs.restrict(purpose, e.allowed(holds_license));
            }
        }
        prefs
    }
}

// === evaluation ===

fn evaluate_content(content: &RslContent, purpose: Purpose) -> RslEvaluation<'_> {
    let best = content
        .licenses
        .iter()
        .map(|l| (license_status(content, l, purpose), l))
        .min_by_key(|((status, _), _)| *status);
    match best {
        Some(((status, detail), license)) => RslEvaluation { status, content, license: Some(license), detail },
        // A `<content>` without licences offers nothing: not permitted.
        None => RslEvaluation {
            status: RslStatus::NotPermitted,
            content,
            license: None,
            detail: "the content entry has no licence".to_string(),
        },
    }
}

fn license_status(content: &RslContent, license: &RslLicense, purpose: Purpose) -> (RslStatus, String) {
    let usage = purpose.as_str();
    let prohibited = license.prohibits.as_deref().is_some_and(|t| covers(t, purpose, PROHIBIT_COVER));
    let permitted = license.permits.as_deref().is_some_and(|t| covers(t, purpose, PERMIT_COVER));
    if prohibited && permitted {
        return (RslStatus::NotPermitted, format!("{usage} is both permitted and prohibited"));
    }
    if prohibited {
        return (RslStatus::Prohibited, format!("{usage} is prohibited"));
    }
    if license.permits.is_some() && !permitted {
        return (RslStatus::NotPermitted, format!("{usage} is not among the permitted usages"));
    }
    if let Some(server) = &content.server {
        return (RslStatus::LicenseRequired, format!("{usage} needs a licence token from {server}"));
    }
    if let Some(pay) = license.payments.iter().find(|p| !FREE_PAYMENTS.contains(&p.as_str())) {
        return (RslStatus::LicenseRequired, format!("{usage} needs a licence (payment `{pay}`)"));
    }
    (RslStatus::Permitted, format!("{usage} is permitted"))
}

/// Usage tokens that, when prohibited, cover each purpose (DESIGN §3: `ai-index` → ai-input).
const PROHIBIT_COVER: &[(Purpose, &[&str])] = &[
    (Purpose::Search, &["search", "all"]),
    (Purpose::AiInput, &["ai-input", "ai-index", "ai-all", "all"]),
    (Purpose::AiTrain, &["ai-train", "ai-all", "all"]),
    (Purpose::Tdm, &["all"]),
];

/// Usage tokens that, when permitted, cover each purpose (no `ai-index` for ai-input).
const PERMIT_COVER: &[(Purpose, &[&str])] = &[
    (Purpose::Search, &["search", "all"]),
    (Purpose::AiInput, &["ai-input", "ai-all", "all"]),
    (Purpose::AiTrain, &["ai-train", "ai-all", "all"]),
    (Purpose::Tdm, &["all"]),
];

fn covers(tokens: &[String], purpose: Purpose, table: &[(Purpose, &[&str])]) -> bool {
    let cover = table.iter().find(|(p, _)| *p == purpose).map_or(&[][..], |(_, c)| *c);
    tokens.iter().any(|t| cover.contains(&t.as_str()))
}

/// The 1.0 usage vocabulary.
const USAGE_TOKENS: &[&str] = &["all", "ai-all", "ai-train", "ai-input", "ai-index", "search"];

/// Launch-era (rsl-wp, aipref-02 style) tokens and their 1.0 equivalents (SIGNALS.md §7.2).
const LEGACY_TOKENS: &[(&str, &str)] =
    &[("train-ai", "ai-train"), ("train-genai", "ai-train"), ("ai-use", "ai-input"), ("ai-summarize", "ai-input")];

// === URL scopes ===

/// Lower-cased `scheme://authority` (empty for a bare path) and the path plus query.
fn split_url(url: &str) -> (String, &str) {
    let Some(scheme_end) = url.find("://") else {
        return (String::new(), url);
    };
    let after = scheme_end + 3;
    let rest = url.get(after..).unwrap_or_default();
    let path_start = rest.find(['/', '?', '#']).map_or(url.len(), |i| after + i);
    let origin = without_default_port(url.get(..path_start).unwrap_or(url).to_ascii_lowercase());
    let path = url.get(path_start..).unwrap_or_default();
    let path = path.split('#').next().unwrap_or_default();
    (origin, if path.is_empty() { "/" } else { path })
}

/// A lower-cased origin without its scheme's default port: `https://example.com:443` is
/// `https://example.com` (RFC 3986 §6.2.3), and request URLs never carry the default port, so a
/// `<content url>` written with it would otherwise govern nothing.
fn without_default_port(origin: String) -> String {
    let default = match origin.split_once("://") {
        Some(("https", _)) => ":443",
        Some(("http", _)) => ":80",
        _ => return origin,
    };
    match origin.strip_suffix(default) {
        Some(bare) => bare.to_string(),
        None => origin,
    }
}

/// How narrowly a `<content url>` matches (`None` = not at all).
fn scope_match(scope: &str, origin: &str, path: &str) -> Option<usize> {
    if scope.is_empty() {
        return Some(0);
    }
    let (scope_origin, scope_path) = split_url(scope);
    if !scope_origin.is_empty() && scope_origin != origin {
        return None;
    }
    if !(scope_path.starts_with('/') || scope_path.starts_with('*')) {
        return None;
    }
    let pattern = PathPattern::new(scope_path);
    pattern.matches(path).then(|| pattern.specificity())
}

// === parsing ===

/// The permits/prohibits list being read.
struct ListInProgress {
    prohibit: bool,
    kind: String,
    text: String,
    line: u32,
}

struct DocParser<'t> {
    text: &'t str,
    legacy: bool,
    doc: RslDocument,
    /// Local names of the open elements.
    stack: Vec<String>,
    list: Option<ListInProgress>,
    root_seen: bool,
    /// Inside a `<content>` that was rejected (no `url`).
    skipping_content: bool,
}

type ParseError = (u32, String);

impl DocParser<'_> {
    fn run(&mut self) -> Result<(), ParseError> {
        let mut reader = quick_xml::Reader::from_str(self.text);
        loop {
            let at = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
            let line = self.line_at(at);
            let event = reader.read_event().map_err(|e| {
                (self.line_at(usize::try_from(reader.error_position()).unwrap_or(at)), format!("malformed XML ({e})"))
            })?;
            match event {
                Event::Start(e) => {
                    self.open(&e, line)?;
                    self.stack.push(local_name(&e));
                }
                Event::Empty(e) => {
                    self.open(&e, line)?;
                    self.close(&local_name(&e));
                }
                Event::End(e) => {
                    let name = e.local_name().as_ref().to_string();
                    self.stack.pop();
                    self.close(&name);
                }
                Event::Text(t) => self.text_content(&t.xml10_content()),
                Event::CData(t) => self.text_content(&t.xml10_content()),
                Event::GeneralRef(r) => self.text_content(&resolve_entity(&r)),
                Event::Eof => break,
                _ => {}
            }
        }
        if !self.root_seen {
            return Err((1, "no <rsl> root element".to_string()));
        }
        if !self.stack.is_empty() {
            return Err((self.line_at(self.text.len()), "document ends inside an element".to_string()));
        }
        Ok(())
    }

    fn line_at(&self, offset: usize) -> u32 {
        let prefix = self.text.as_bytes().get(..offset).unwrap_or(self.text.as_bytes());
        u32::try_from(prefix.iter().filter(|&&b| b == b'\n').count() + 1).unwrap_or(u32::MAX)
    }

    fn open(&mut self, e: &BytesStart<'_>, line: u32) -> Result<(), ParseError> {
        let name = local_name(e);
        let parent = self.stack.last().map(String::as_str);
        match (parent, name.as_str()) {
            (None, "rsl") if !self.root_seen => self.open_root(e, line),
            (None, other) => return Err((line, format!("<{other}> outside the single <rsl> root"))),
            (Some("rsl"), "content") => self.open_content(e, line),
            (Some("content"), "license") => self.open_license(line),
            (Some("license"), "permits" | "prohibits") => {
                self.list = Some(ListInProgress {
                    prohibit: name == "prohibits",
                    kind: attr(e, "type").unwrap_or_default(),
                    text: String::new(),
                    line,
                });
            }
            (Some("license"), "payment") => self.open_payment(e),
            (_, other) if OTHER_RSL_ELEMENTS.contains(&other) => {}
            (Some(p), other) if self.is_rsl_element(e) => {
                self.doc.problems.push((line, format!("unknown element <{other}> in <{p}>: ignored")));
            }
            _ => {}
        }
        Ok(())
    }

    /// Unprefixed elements, or prefixed ones we cannot resolve cheaply, count as RSL; foreign
    /// namespaced extensions are ignored (errata 2026-08-07).
    fn is_rsl_element(&self, e: &BytesStart<'_>) -> bool {
        e.name().prefix().is_none()
    }

    fn open_root(&mut self, e: &BytesStart<'_>, line: u32) {
        self.root_seen = true;
        let namespaced = e.attributes().flatten().any(|a| {
            let key: &str = a.key.as_ref();
            let value = a.normalized_value(XmlVersion::Implicit1_0);
            (key == "xmlns" || key.starts_with("xmlns:")) && value.is_ok_and(|v| v.trim_end_matches('/') == NAMESPACE)
        });
        if !namespaced {
            self.doc.problems.push((line, format!("<rsl> does not declare the namespace {NAMESPACE}")));
        }
        if let Some(age) = attr(e, "max-age") {
            match age.trim().parse::<u32>() {
                Ok(days) => self.doc.max_age_days = Some(days),
                Err(_) => self.doc.problems.push((line, format!("max-age `{age}` is not a number of days: ignored"))),
            }
        }
    }

    fn open_content(&mut self, e: &BytesStart<'_>, line: u32) {
        let Some(url) = attr(e, "url") else {
            self.doc.problems.push((line, "<content> without url: ignored".to_string()));
            // Its licences must not attach to the previous entry.
            self.skipping_content = true;
            return;
        };
        let server = attr(e, "server").filter(|s| !s.trim().is_empty());
        self.doc.contents.push(RslContent { url, server, licenses: Vec::new(), line });
    }

    fn open_license(&mut self, line: u32) {
        if self.skipping_content {
            return;
        }
        if let Some(content) = self.doc.contents.last_mut() {
            content.licenses.push(RslLicense { line, ..RslLicense::default() });
        }
    }

    fn open_payment(&mut self, e: &BytesStart<'_>) {
        let kind = attr(e, "type").unwrap_or_else(|| "unspecified".to_string());
        if let Some(license) = self.current_license() {
            license.payments.push(kind.trim().to_ascii_lowercase());
        }
    }

    fn current_license(&mut self) -> Option<&mut RslLicense> {
        if self.skipping_content {
            return None;
        }
        self.doc.contents.last_mut()?.licenses.last_mut()
    }

    fn text_content(&mut self, text: &str) {
        if let Some(list) = &mut self.list {
            list.text.push_str(text);
        }
    }

    fn close(&mut self, name: &str) {
        if name == "content" {
            self.skipping_content = false;
        }
        if name != "permits" && name != "prohibits" {
            return;
        }
        let Some(list) = self.list.take() else { return };
        self.finish_list(list);
    }

    fn finish_list(&mut self, list: ListInProgress) {
        let kind = if list.kind.is_empty() {
            self.doc.problems.push((list.line, "list without type: read as usage".to_string()));
            "usage".to_string()
        } else {
            list.kind.trim().to_ascii_lowercase()
        };
        if kind != "usage" {
            let what = if list.prohibit { "prohibits" } else { "permits" };
            let condition = format!("{what} {kind}: {}", list.text.trim());
            if let Some(license) = self.current_license() {
                license.conditions.push(condition);
            }
            return;
        }
        let tokens = self.usage_tokens(&list);
        let Some(license) = self.current_license() else { return };
        let slot = if list.prohibit { &mut license.prohibits } else { &mut license.permits };
        slot.get_or_insert_with(Vec::new).extend(tokens);
    }

    /// Splits and normalises a usage list, recording launch-era forms.
    fn usage_tokens(&mut self, list: &ListInProgress) -> Vec<String> {
        if list.text.contains(',') {
            self.doc
                .problems
                .push((list.line, "comma-separated usage list (launch-era RSL): split on commas".to_string()));
        }
        let mut out = Vec::new();
        for raw in list.text.split(|c: char| c.is_whitespace() || c == ',').filter(|t| !t.is_empty()) {
            let token = raw.to_ascii_lowercase();
            if USAGE_TOKENS.contains(&token.as_str()) {
                out.push(token);
            } else if let Some((_, modern)) = LEGACY_TOKENS.iter().find(|(old, _)| *old == token) {
                out.extend(self.legacy_token(list, &token, modern));
            } else {
                self.doc.problems.push((list.line, format!("unknown usage token `{raw}` ignored")));
            }
        }
        out
    }

    fn legacy_token(&mut self, list: &ListInProgress, token: &str, modern: &str) -> Option<String> {
        // A legacy prohibition only restricts, so it always counts; a legacy permission grants,
        // so it counts only when the operator opted in.
        if list.prohibit || self.legacy {
            self.doc.problems.push((list.line, format!("launch-era token `{token}` read as `{modern}`")));
            Some(modern.to_string())
        } else {
            self.doc.problems.push((list.line, format!("launch-era token `{token}` in permits ignored")));
            None
        }
    }
}

fn local_name(e: &BytesStart<'_>) -> String {
    e.local_name().as_ref().to_string()
}

/// An attribute's unescaped value, matched by local name.
fn attr(e: &BytesStart<'_>, name: &str) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.local_name().as_ref() == name)
        .and_then(|a| a.normalized_value(XmlVersion::Implicit1_0).ok().map(|v| v.into_owned()))
}

/// The five predefined XML entities and character references; anything else is dropped.
fn resolve_entity(r: &quick_xml::events::BytesRef<'_>) -> String {
    if let Ok(Some(c)) = r.resolve_char_ref() {
        return c.to_string();
    }
    match r.as_ref() {
        "amp" => "&",
        "lt" => "<",
        "gt" => ">",
        "quot" => "\"",
        "apos" => "'",
        _ => "",
    }
    .to_string()
}

// === robots.txt `License:` lines ===

/// A licence document announced in robots.txt or a header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicenseRef {
    pub url: String,
    /// 1-based robots.txt line.
    pub line: u32,
}

/// The licences that apply to a crawler from robots.txt.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RobotsLicenses {
    pub licenses: Vec<LicenseRef>,
    /// True when the crawler's group had its own `License` lines (which replace the global ones).
    pub from_group: bool,
    pub problems: Vec<(u32, String)>,
}

/// Reads `License:` extension lines, `(value, line)` pairs from outside any group (`global`) and
/// from the group selected for the crawler (`group`): the group's lines, when any are usable,
/// replace the global ones (SIGNALS.md §7.1). Values must be absolute `http(s)` URLs.
pub fn robots_licenses<G, H, S, T>(global: G, group: H) -> RobotsLicenses
where
    G: IntoIterator<Item = (S, u32)>,
    H: IntoIterator<Item = (T, u32)>,
    S: AsRef<str>,
    T: AsRef<str>,
{
    let mut out = RobotsLicenses::default();
    let group = license_refs(group, &mut out.problems);
    let global = license_refs(global, &mut out.problems);
    out.from_group = !group.is_empty();
    out.licenses = if out.from_group { group } else { global };
    out
}

fn license_refs<I, S>(lines: I, problems: &mut Vec<(u32, String)>) -> Vec<LicenseRef>
where
    I: IntoIterator<Item = (S, u32)>,
    S: AsRef<str>,
{
    let mut out = Vec::new();
    for (value, line) in lines {
        let url = value.as_ref().split('#').next().unwrap_or_default().trim();
        if is_http_url(url) {
            out.push(LicenseRef { url: url.to_string(), line });
        } else {
            problems.push((line, format!("License `{url}` is not an absolute http(s) URL: ignored")));
        }
    }
    out
}

fn is_http_url(s: &str) -> bool {
    let lower = s.get(..8).unwrap_or(s).to_ascii_lowercase();
    let rest = if lower.starts_with("https://") {
        s.get(8..)
    } else if lower.starts_with("http://") {
        s.get(7..)
    } else {
        None
    };
    rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/') && !r.contains(char::is_whitespace))
}

#[cfg(test)]
#[path = "rsl/tests.rs"]
mod tests;

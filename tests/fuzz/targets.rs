//! The fuzz targets: one input type and one `check_*` function per parser, shared by the
//! proptest runner (`tests/fuzz.rs`) and the AFL++ entry point (`tests/fuzz/afl`).
//!
//! A check runs the parser on one input and panics when a property fails; both fuzzers treat a
//! panic as a finding. Inputs are either arbitrary bytes (what AFL++ and the seed corpora give:
//! see [`run_bytes`]) or structured values the proptest strategies build, for which the check
//! knows what the parser must find (a model), or knows two inputs that must read the same.
//! Nothing here does I/O except the `config_env` target's `_FILE` variables, which only ever
//! name files it created.

// Each check reads better as one list of properties than split up.
#![allow(clippy::too_many_lines, dead_code)]

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use consentry::config::{Config, ConfigErrors, env};
use consentry::decide::Purpose;
use consentry::proxy::inspect::{HeadSignals, scan_head};
use consentry::proxy::target::{Scheme, parse_absolute, parse_connect, parse_host_header};
use consentry::public::transparency::{TileCoordinate, parse_tile_path};
use consentry::registry::import::{self, Format, LineError};
use consentry::signals::ai_txt::{self, AiTxt};
use consentry::signals::content_signal::{ContentSignal, ContentSignalRules};
use consentry::signals::content_usage::{ContentUsage, ContentUsageRules};
use consentry::signals::pattern::{PathPattern, normalize_path};
use consentry::signals::prefs::Prefs;
use consentry::signals::robots::{DEFAULT_MAX_BYTES, RobotsTxt};
use consentry::signals::robots_tag::RobotsTag;
use consentry::signals::rsl::{self, RslDocument};
use consentry::signals::tdmrep::{TdmRepFile, TdmValue};
use consentry::tlog::leaf::{encode_hash, entry_bytes};
use consentry::tlog::receipt::{RECEIPT_FORMAT, Receipt, ReceiptRecord, verify_checkpoint, verify_receipt};
use consentry::tlog::{NoteSigner, NoteVerifier};
use ed25519_dalek::SigningKey;
use tlog_tiles::{Checkpoint, Hash, HashReader};

/// Every target, by the name `run_bytes`, the corpus folders and `run.sh` use.
pub const TARGETS: &[&str] = &[
    "robots",
    "ai_txt",
    "tdmrep",
    "content_usage",
    "content_signal",
    "robots_tag",
    "html_head",
    "rsl",
    "registry_import",
    "config",
    "config_env",
    "target",
    "note",
    "receipt",
    "tile_path",
];

/// Runs target `name` on raw bytes; `false` for an unknown name.
pub fn run_bytes(name: &str, data: &[u8]) -> bool {
    match name {
        "robots" => check_robots(&RobotsCase::from_bytes(data)),
        "ai_txt" => check_ai_txt(&AiTxtCase::from_bytes(data)),
        "tdmrep" => check_tdmrep(&TdmRepCase::from_bytes(data)),
        "content_usage" => check_content_usage(&ContentUsageCase::from_bytes(data)),
        "content_signal" => check_content_signal(&ContentSignalCase::from_bytes(data)),
        "robots_tag" => check_robots_tag(&RobotsTagCase::from_bytes(data)),
        "html_head" => check_html_head(&HtmlHeadCase::from_bytes(data)),
        "rsl" => check_rsl(&RslCase::from_bytes(data)),
        "registry_import" => check_registry_import(&ImportCase::from_bytes(data)),
        "config" => check_config(&ConfigCase::from_bytes(data)),
        "config_env" => check_config_env(&EnvCase::from_bytes(data)),
        "target" => check_target(&TargetCase::from_bytes(data)),
        "note" => check_note(&NoteCase::from_bytes(data)),
        "receipt" => check_receipt(&ReceiptCase::from_bytes(data)),
        "tile_path" => check_tile_path(&TilePathCase::from_bytes(data)),
        _ => return false,
    }
    true
}

// === helpers ===

/// Raw fuzzer bytes carry several inputs separated by `\0\n` (a seed file is only the first).
fn fields(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    while let Some(at) = rest.windows(2).position(|w| w == b"\0\n") {
        out.push(&rest[..at]);
        rest = &rest[at + 2..];
    }
    out.push(rest);
    out
}

fn field(fields: &[&[u8]], i: usize) -> Option<String> {
    fields.get(i).map(|f| String::from_utf8_lossy(f).into_owned())
}

/// Field `i` split into lines, or `default` when the input has no such field.
fn field_lines(fields: &[&[u8]], i: usize, default: &[&str]) -> Vec<String> {
    match field(fields, i) {
        Some(text) => text.split('\n').map(str::to_string).collect(),
        None => default.iter().map(|s| s.to_string()).collect(),
    }
}

/// A small number from the first byte of field `i`.
fn field_byte(fields: &[&[u8]], i: usize) -> u8 {
    fields.get(i).and_then(|f| f.first()).copied().unwrap_or(0)
}

/// Lines as robots.txt parsers number them: split at `\r\n`, `\r` or `\n`; the text after the
/// last line ending is a line too.
fn robots_lines(bytes: &[u8]) -> u32 {
    let mut lines = 1u32;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'\n' || b == b'\r' {
            lines += 1;
            if b == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
                i += 1;
            }
        }
        i += 1;
    }
    lines
}

/// 1 + the number of `\n`: the last line a parser that counts newlines can name.
fn newline_lines(bytes: &[u8]) -> usize {
    1 + bytes.iter().filter(|&&b| b == b'\n').count()
}

/// Flips the case of the hex digits of every `%XX` escape (RFC 3986 §2.1: hex case never matters).
fn flip_hex_case(path: &str) -> String {
    let mut bytes = path.as_bytes().to_vec();
    let mut i = 0;
    while i + 2 < bytes.len() {
        if bytes[i] == b'%' && bytes[i + 1].is_ascii_hexdigit() && bytes[i + 2].is_ascii_hexdigit() {
            for b in &mut bytes[i + 1..i + 3] {
                *b = if b.is_ascii_uppercase() { b.to_ascii_lowercase() } else { b.to_ascii_uppercase() };
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    String::from_utf8(bytes).unwrap_or_else(|_| path.to_string())
}

/// `*` and `$` in a request path written as `%2A` and `%24` (RFC 9309 §2.2.3: a path's own
/// `*` and `$` are literal, so both spellings are the same path).
fn escape_star_dollar(path: &str) -> String {
    path.replace('*', "%2A").replace('$', "%24")
}

fn percent_encode_non_ascii(text: &str, lower: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                if lower {
                    out.push_str(&format!("%{b:02x}"));
                } else {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
        }
    }
    out
}

/// The Allow/Disallow values of a UTF-8 robots.txt with their non-ASCII characters
/// percent-encoded (RFC 9309 §2.2.2: the same pattern); `None` when the body does not qualify.
fn encode_rule_values(body: &[u8], lower: bool) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(body).ok()?;
    if text.is_ascii() {
        return None;
    }
    let mut out = String::with_capacity(text.len() * 2);
    let mut rest = text;
    loop {
        let end = rest.find(['\r', '\n']).unwrap_or(rest.len());
        let line = &rest[..end];
        // Encoding triples a character's length: stay far below the parser's line limit.
        if line.len() > 4000 {
            return None;
        }
        match line.split_once(':') {
            Some((key, value))
                if key.trim().eq_ignore_ascii_case("allow") || key.trim().eq_ignore_ascii_case("disallow") =>
            {
                out.push_str(key);
                out.push(':');
                // The comment is not part of the pattern; leave it as it is.
                let (pattern, comment) = value.split_once('#').map_or((value, None), |(p, c)| (p, Some(c)));
                out.push_str(&percent_encode_non_ascii(pattern, lower));
                if let Some(comment) = comment {
                    out.push('#');
                    out.push_str(comment);
                }
            }
            _ => out.push_str(line),
        }
        if end == rest.len() {
            break;
        }
        let ending = if rest[end..].starts_with("\r\n") { 2 } else { 1 };
        out.push_str(&rest[end..end + ending]);
        rest = &rest[end + ending..];
    }
    Some(out.into_bytes())
}

// === robots.txt ===

/// Paths tried when the input names none: percent-encodings, wildcards' own characters,
/// queries, fragments, the missing slash and the empty target.
const ROBOTS_PATHS: &[&str] = &[
    "/",
    "/robots.txt",
    "/private/x",
    "/a%2Fb?q=1",
    "/%7Euser/",
    "/%e3%83%84",
    "/*star$",
    "/index.html",
    "p?x#frag",
    "",
];

#[derive(Debug, Clone)]
pub struct RobotsCase {
    pub body: Vec<u8>,
    pub max_bytes: usize,
    pub token: String,
    pub paths: Vec<String>,
}

impl RobotsCase {
    pub fn from_bytes(data: &[u8]) -> Self {
        let f = fields(data);
        Self {
            body: f[0].to_vec(),
            max_bytes: match field_byte(&f, 3) {
                0 => DEFAULT_MAX_BYTES,
                n => usize::from(n) * 7,
            },
            token: field(&f, 1).unwrap_or_else(|| "GPTBot".to_string()),
            paths: field_lines(&f, 2, ROBOTS_PATHS),
        }
    }
}

/// robots.txt parse and the compiled matcher.
///
/// - never panics; parsing is deterministic; `/robots.txt` is always allowed;
/// - `max_bytes` is a prefix cut: parsing with it equals parsing the prefix;
/// - a verdict is explained: a disallow names its rule, the rule's kind is the verdict, lines
///   named exist; `check_specific` agrees with `check`;
/// - the same path spelled differently where RFC 3986/9309 say it is the same (hex case of an
///   escape, `*`/`$` as `%2A`/`%24`) gets the same verdict;
/// - the same pattern spelled with raw UTF-8 or percent-encoded gives the same verdicts.
pub fn check_robots(case: &RobotsCase) {
    let parsed = RobotsTxt::parse(&case.body, case.max_bytes);
    let again = RobotsTxt::parse(&case.body, case.max_bytes);
    let used = &case.body[..case.body.len().min(case.max_bytes)];
    let cut = RobotsTxt::parse(used, usize::MAX);
    let lines = robots_lines(used);
    assert_eq!(parsed.stats(), again.stats());
    assert_eq!(parsed.stats(), cut.stats(), "max_bytes must be a plain prefix cut");
    assert_eq!(parsed.global_extensions(), again.global_extensions());
    for ext in parsed.global_extensions() {
        assert!((1..=lines).contains(&ext.line), "global extension on line {} of {lines}", ext.line);
    }
    let tokens = [case.token.as_str(), "GPTBot", "*", ""];
    for token in tokens {
        assert_eq!(parsed.crawl_delay(token), again.crawl_delay(token));
        let extensions = parsed.group_extensions(token);
        assert_eq!(extensions, again.group_extensions(token));
        for ext in &extensions {
            assert!((1..=lines).contains(&ext.line), "extension on line {} of {lines}", ext.line);
        }
        if let Some((delay, line)) = parsed.crawl_delay(token) {
            assert!(delay.is_finite() && delay >= 0.0 && (1..=lines).contains(&line));
        }
        assert!(parsed.check(token, "/robots.txt").allowed, "/robots.txt must always be allowed");
        for path in &case.paths {
            let verdict = parsed.check(token, path);
            assert_eq!(verdict, again.check(token, path), "not deterministic");
            assert_eq!(verdict, cut.check(token, path), "max_bytes is not a prefix cut");
            if let Some(rule) = &verdict.rule {
                assert_eq!(rule.allow, verdict.allowed, "the deciding rule must be of the verdict's kind");
                assert!((1..=lines).contains(&rule.line), "rule on line {} of {lines}", rule.line);
                let key = if rule.allow { "Allow: " } else { "Disallow: " };
                assert!(rule.text.starts_with(key), "{:?}", rule.text);
                assert!(verdict.group.is_some(), "a rule decided but no group is named");
            } else {
                assert!(verdict.allowed, "a disallow must name its rule");
            }
            if let Some(group) = &verdict.group {
                assert!((1..=lines).contains(&group.line), "group on line {} of {lines}", group.line);
            }
            if let Some(specific) = parsed.check_specific(token, path) {
                assert_eq!(specific, verdict);
            }
            let flipped = flip_hex_case(path);
            assert_eq!(
                parsed.check(token, &flipped).allowed,
                verdict.allowed,
                "hex case changed the verdict: {flipped:?}"
            );
            let escaped = escape_star_dollar(path);
            assert_eq!(parsed.check(token, &escaped).allowed, verdict.allowed, "{escaped:?} read differently");
        }
    }
    if let Some(body) = google_comparable(case) {
        for path in case.paths.iter().filter(|p| google_comparable_path(p)) {
            let google_allows = robotstxt::DefaultMatcher::default().one_agent_allowed_by_robots(
                body,
                &case.token,
                &format!("http://example.com{path}"),
            );
            assert!(
                google_allows || !parsed.check(&case.token, path).allowed,
                "Google's matcher disallows {path:?} for {:?} but Consentry allows it (an invented allow)",
                case.token
            );
        }
    }
    for lower in [false, true] {
        let Some(encoded) = encode_rule_values(&case.body, lower) else { break };
        let raw = RobotsTxt::parse(&case.body, usize::MAX);
        let other = RobotsTxt::parse(&encoded, usize::MAX);
        assert_eq!(raw.stats(), other.stats());
        for token in tokens {
            for path in &case.paths {
                assert_eq!(
                    raw.check(token, path).allowed,
                    other.check(token, path).allowed,
                    "a pattern percent-encoded reads differently: {path:?} with\n{}",
                    String::from_utf8_lossy(&encoded)
                );
            }
        }
    }
}

/// The body, when Google's matcher (the `robotstxt` crate) reads the same file: UTF-8, read
/// whole, lines short enough for the crate, and none of the documented differences of
/// DESIGN §4 that may make Consentry allow what Google disallows: digits and dots in product
/// tokens (`AI2Bot` is not `AI`), and `DisallowAITraining`, a purpose signal and not a rule.
fn google_comparable(case: &RobotsCase) -> Option<&str> {
    let body = std::str::from_utf8(&case.body).ok()?;
    let token_ok =
        !case.token.is_empty() && case.token.chars().all(|c| c.is_ascii_alphabetic() || c == '-' || c == '_');
    let lines_ok = body.split(['\r', '\n']).all(|line| {
        let lower = line.to_ascii_lowercase();
        line.len() < 2000 && !(lower.contains("agent") && line.contains(|c: char| c.is_ascii_digit() || c == '.'))
    });
    let ok = token_ok && lines_ok && case.max_bytes >= body.len() && !body.to_ascii_lowercase().contains("disallowai");
    ok.then_some(body)
}

/// A path Google's matcher reads as Consentry does: `/`, printable ASCII, no fragment, and not
/// `/robots.txt` itself (always allowed, RFC 9309 §2.2.2; Google does not special-case it).
fn google_comparable_path(path: &str) -> bool {
    let mut decoded = String::new();
    let mut rest = path;
    while let Some(c) = rest.chars().next() {
        let escape = rest
            .get(1..3)
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .filter(|b| b.is_ascii_alphanumeric() || b"-._~".contains(b));
        match (c, escape) {
            ('%', Some(b)) => {
                decoded.push(char::from(b));
                rest = &rest[3..];
            }
            _ => {
                decoded.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    path.starts_with('/') && path.bytes().all(|b| b.is_ascii_graphic() && b != b'#') && decoded != "/robots.txt"
}

// === ai.txt ===

#[derive(Debug, Clone)]
pub struct AiTxtCase {
    pub body: Vec<u8>,
    pub tokens: Vec<String>,
    pub paths: Vec<String>,
}

impl AiTxtCase {
    pub fn from_bytes(data: &[u8]) -> Self {
        let f = fields(data);
        Self {
            body: f[0].to_vec(),
            tokens: field_lines(&f, 1, &["GPTBot", "CCBot"]),
            paths: field_lines(&f, 2, &["/", "/a.jpg", "/img/x.JPG?x=1", "/doc.pdf", "/%E3%83%84.png", "/a.jpgfoo"]),
        }
    }
}

/// Spawning ai.txt: deterministic; problems and rules name lines that exist; a match is
/// explained by a rule that matches, of the verdict's kind, from a group of the crawler (or
/// `*`); an unrecognised file says nothing; CRLF reads as LF.
pub fn check_ai_txt(case: &AiTxtCase) {
    let file = AiTxt::parse(&case.body);
    assert_eq!(file, AiTxt::parse(&case.body), "not deterministic");
    let used = &case.body[..case.body.len().min(ai_txt::MAX_BYTES)];
    let used = used.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(used);
    let lines = u32::try_from(String::from_utf8_lossy(used).lines().count().max(1)).unwrap_or(u32::MAX);
    for (line, problem) in &file.problems {
        assert!((1..=lines).contains(line), "problem on line {line} of {lines}: {problem}");
    }
    if !case.body.contains(&b'\r') && case.body.len() * 2 < ai_txt::MAX_BYTES {
        let crlf: Vec<u8> =
            case.body.iter().flat_map(|&b| if b == b'\n' { vec![b'\r', b'\n'] } else { vec![b] }).collect();
        assert_eq!(AiTxt::parse(&crlf), file, "CRLF line endings read differently");
    }
    let tokens: Vec<&str> = case.tokens.iter().map(String::as_str).collect();
    for path in &case.paths {
        let m = file.check(&tokens, path);
        if !file.recognized {
            assert!(m.rule.is_none() && m.group.is_none() && !m.disallowed);
        }
        match m.rule {
            Some(rule) => {
                assert!(rule.pattern.matches(path), "rule {} does not match {path:?}", rule.text());
                assert_eq!(m.disallowed, !rule.allow);
                assert_eq!(m.prefs().get(Purpose::AiTrain), Some(rule.allow));
                assert!((1..=lines).contains(&rule.line));
                assert!(m.group.is_some());
            }
            None => {
                assert!(!m.disallowed);
                assert_eq!(m.prefs(), Prefs::UNKNOWN);
            }
        }
        if let Some(group) = m.group {
            assert!(group == "*" || tokens.iter().any(|t| t.eq_ignore_ascii_case(group)), "group {group:?}");
        }
    }
}

// === tdmrep ===

/// A `tdm-reservation` value as written in JSON, and what it means.
pub const TDM_RESERVATIONS: &[(&str, Option<bool>)] = &[
    ("1", Some(true)),
    ("0", Some(false)),
    ("1.0", Some(true)),
    ("0e0", Some(false)),
    ("-0", Some(false)),
    ("\"1\"", None),
    ("true", None),
    ("2", None),
    ("null", None),
    ("[1]", None),
];

/// One element of a generated `tdmrep.json` array.
#[derive(Debug, Clone)]
pub enum TdmItem {
    Rule {
        location: String,
        /// Index into [`TDM_RESERVATIONS`]; `None` leaves the key out.
        reservation: Option<usize>,
        policy: Option<String>,
        /// An unknown member, written first.
        extra: Option<(String, String)>,
    },
    /// Not an object, or an object without a string `location`: dropped with a problem.
    Other(String),
}

#[derive(Debug, Clone)]
pub enum TdmBody {
    Raw(Vec<u8>),
    /// Array elements with the whitespace before each (which may hold newlines).
    Json {
        items: Vec<(String, TdmItem)>,
        bom: bool,
        tail: String,
    },
}

#[derive(Debug, Clone)]
pub struct TdmRepCase {
    pub body: TdmBody,
    pub paths: Vec<String>,
    pub reservations: Vec<String>,
    pub policies: Vec<String>,
}

impl TdmRepCase {
    pub fn from_bytes(data: &[u8]) -> Self {
        let f = fields(data);
        Self {
            body: TdmBody::Raw(f[0].to_vec()),
            paths: field_lines(&f, 1, &["/", "/a/b.html", "/%7Eu/x?y", "/x$"]),
            reservations: field_lines(&f, 2, &["1"]),
            policies: field_lines(&f, 3, &["https://e.com/p.json"]),
        }
    }
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).expect("a string serialises")
}

/// Renders a generated file and, per element, its expected line and (for usable rules) its
/// reservation.
/// Per usable rule: its array index, the line its object starts on, and its reservation.
type ExpectedRules = Vec<(usize, u32, Option<bool>)>;

fn render_tdm(items: &[(String, TdmItem)], bom: bool, tail: &str) -> (Vec<u8>, ExpectedRules) {
    let mut text = String::from("[");
    let mut expected = Vec::new();
    for (i, (space, item)) in items.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        text.push_str(space);
        let line = u32::try_from(1 + text.matches('\n').count()).unwrap_or(u32::MAX);
        match item {
            TdmItem::Rule { location, reservation, policy, extra } => {
                let mut members = Vec::new();
                if let Some((k, v)) = extra {
                    members.push(format!("{}:{}", json_string(k), json_string(v)));
                }
                members.push(format!("\"location\" :\n {}", json_string(location)));
                if let Some(r) = reservation {
                    members.push(format!("\"tdm-reservation\": {}", TDM_RESERVATIONS[*r % TDM_RESERVATIONS.len()].0));
                }
                if let Some(p) = policy {
                    members.push(format!("\"tdm-policy\": {}", json_string(p)));
                }
                text.push_str(&format!("{{{}}}", members.join(",\n  ")));
                let reserved = reservation.and_then(|r| TDM_RESERVATIONS[r % TDM_RESERVATIONS.len()].1);
                expected.push((i, line, reserved));
            }
            TdmItem::Other(json) => text.push_str(json),
        }
    }
    text.push_str(tail);
    text.push(']');
    let mut body = if bom { b"\xEF\xBB\xBF".to_vec() } else { Vec::new() };
    body.extend_from_slice(text.as_bytes());
    (body, expected)
}

/// TDMRep file, headers and meta values: deterministic; lines named exist; rules come in
/// array order with the line their object starts on (strings holding brackets, quotes and
/// escapes included); `lookup` is the first matching rule; repeated headers must agree.
pub fn check_tdmrep(case: &TdmRepCase) {
    let (body, expected) = match &case.body {
        TdmBody::Raw(bytes) => (bytes.clone(), None),
        TdmBody::Json { items, bom, tail } => {
            let (body, expected) = render_tdm(items, *bom, tail);
            (body, Some(expected))
        }
    };
    let file = TdmRepFile::parse(&body);
    assert_eq!(file, TdmRepFile::parse(&body), "not deterministic");
    let lines = u32::try_from(newline_lines(&body)).unwrap_or(u32::MAX);
    for (line, problem) in &file.problems {
        assert!((1..=lines).contains(line), "problem on line {line} of {lines}: {problem}");
    }
    if !file.valid {
        assert!(file.rules.is_empty() && !file.problems.is_empty());
    }
    for pair in file.rules.windows(2) {
        assert!(pair[0].index < pair[1].index && pair[0].line <= pair[1].line);
    }
    for rule in &file.rules {
        assert!((1..=lines).contains(&rule.line), "rule {} on line {} of {lines}", rule.index, rule.line);
    }
    if let Some(expected) = expected {
        assert!(file.valid, "a generated array is valid: {:?}", file.problems);
        let found: ExpectedRules = file.rules.iter().map(|r| (r.index, r.line, r.value.reservation)).collect();
        assert_eq!(found, expected, "{}", String::from_utf8_lossy(&body));
    }
    for path in &case.paths {
        let first = file.rules.iter().find(|r| r.location.matches(path));
        assert_eq!(file.lookup(path).map(|r| r.index), first.map(|r| r.index));
    }
    let header = TdmValue::from_headers(&case.reservations, &case.policies);
    let parsed: Vec<Option<bool>> = case
        .reservations
        .iter()
        .map(|v| match v.trim() {
            "1" => Some(true),
            "0" => Some(false),
            _ => None,
        })
        .collect();
    let expected = match parsed.split_first() {
        Some((first, rest)) if rest.iter().all(|v| v == first) => *first,
        _ => None,
    };
    assert_eq!(header.reservation, expected, "{:?}", case.reservations);
    let policy = case.policies.iter().map(|p| p.trim()).find(|p| !p.is_empty()).map(str::to_string);
    assert_eq!(header.policy, policy);
    let meta = TdmValue::from_meta(case.reservations.first().map(String::as_str), None);
    assert_eq!(meta.reservation, parsed.first().copied().flatten());
}

// === Content-Usage ===

/// Dictionary keys: the vocab-07 labels, legacy labels, an unknown one.
pub const CU_KEYS: &[&str] =
    &["train-ai", "search", "ai", "genai", "tdm", "all", "train-genai", "bots", "inference", "foo-bar"];
const CU_LEGACY_TRAINING: &[&str] = &["ai", "genai", "tdm", "all", "train-genai", "bots"];
/// Member values as written (`""` is a bare key, i.e. boolean true) and their reading.
pub const CU_VALUES: &[(&str, Option<bool>)] = &[
    ("=y", Some(true)),
    ("=n", Some(false)),
    ("=n;q=1", Some(false)),
    ("=y;a", Some(true)),
    ("", None),
    ("=?1", None),
    ("=\"y\"", None),
    ("=1", None),
    ("=(y n)", None),
    ("=yes", None),
];
/// Separators between members (RFC 9651: optional SP/HTAB around the comma).
const CU_SEPARATORS: &[&str] = &[", ", ",", " , ", ",\t"];

#[derive(Debug, Clone)]
pub struct ContentUsageCase {
    /// Raw field lines.
    pub lines: Vec<Vec<u8>>,
    pub legacy: bool,
    /// `(key, value, separator)` indexes into the tables above; `upper` spoils one key.
    pub members: Vec<(usize, usize, usize)>,
    pub upper: bool,
    /// robots.txt `Content-Usage` rule values.
    pub rules: Vec<String>,
    pub paths: Vec<String>,
}

impl ContentUsageCase {
    pub fn from_bytes(data: &[u8]) -> Self {
        let f = fields(data);
        Self {
            lines: f[0].split(|&b| b == b'\n').map(<[u8]>::to_vec).collect(),
            legacy: field_byte(&f, 1) & 1 == 1,
            members: Vec::new(),
            upper: false,
            rules: field_lines(&f, 2, &["/a/ train-ai=n", "train-ai=y", "/a/b search=n"]),
            paths: field_lines(&f, 3, &["/", "/a/x", "/a/b/c"]),
        }
    }
}

/// Content-Usage fields and robots.txt rules: deterministic; field lines read as one joined
/// value; generated dictionaries read as the vocab-07 algorithm says (last duplicate wins,
/// parameters ignored, any parse failure = all unknown, legacy `=n` only restricts); the rules
/// chosen for a path are exactly the longest matching ones.
pub fn check_content_usage(case: &ContentUsageCase) {
    let parsed = ContentUsage::parse_field_lines(&case.lines, case.legacy);
    assert_eq!(parsed, ContentUsage::parse_field_lines(&case.lines, case.legacy), "not deterministic");
    let joined = case.lines.join(&b", "[..]);
    assert_eq!(parsed, ContentUsage::parse(&joined, case.legacy));
    if parsed.train_ai.is_some() || parsed.search.is_some() {
        assert!(parsed.problems.iter().all(|p| !p.contains("not an RFC 9651 dictionary")));
    }
    if !case.members.is_empty() {
        let mut text = String::new();
        let mut last: BTreeMap<&str, Option<bool>> = BTreeMap::new();
        let mut pieces = Vec::new();
        for (i, &(k, v, s)) in case.members.iter().enumerate() {
            let (key, (value, reading)) = (CU_KEYS[k % CU_KEYS.len()], CU_VALUES[v % CU_VALUES.len()]);
            if i > 0 {
                text.push_str(CU_SEPARATORS[s % CU_SEPARATORS.len()]);
            }
            let member = if case.upper && i == 0 {
                format!("{}{value}", key.to_ascii_uppercase())
            } else {
                format!("{key}{value}")
            };
            text.push_str(&member);
            pieces.push(member);
            last.insert(key, reading);
        }
        let legacy_n = case.legacy && CU_LEGACY_TRAINING.iter().any(|l| last.get(l) == Some(&Some(false)));
        let (train, search) = if case.upper {
            (None, None)
        } else if legacy_n {
            (Some(false), last.get("search").copied().flatten())
        } else {
            (last.get("train-ai").copied().flatten(), last.get("search").copied().flatten())
        };
        let usage = ContentUsage::parse(text.as_bytes(), case.legacy);
        assert_eq!((usage.train_ai, usage.search), (train, search), "{text:?}: {:?}", usage.problems);
        // The same members sent as one field line each read the same.
        let split = ContentUsage::parse_field_lines(&pieces, case.legacy);
        assert_eq!((split.train_ai, split.search), (train, search), "{pieces:?}");
    }
    let rules = ContentUsageRules::parse(case.rules.iter().enumerate().map(|(i, r)| (r, i as u32 + 1)), case.legacy);
    for path in &case.paths {
        let normalized = normalize_path(path);
        let specificity = |r: &consentry::signals::content_usage::ContentUsageRule| match &r.path {
            None => Some(0),
            Some(p) => p.matches_normalized_path(&normalized).then(|| p.specificity()),
        };
        let best = rules.rules.iter().filter_map(specificity).max();
        match rules.evaluate(path) {
            None => assert_eq!(best, None),
            Some(m) => {
                let want: Vec<u32> = rules
                    .rules
                    .iter()
                    .filter(|r| specificity(r).is_some() && specificity(r) == best)
                    .map(|r| r.line)
                    .collect();
                let got: Vec<u32> = m.rules.iter().map(|r| r.line).collect();
                assert_eq!(got, want, "longest matches for {path:?}");
            }
        }
    }
}

// === Content-Signal ===

pub const CS_KEYS: &[(&str, Option<Purpose>)] = &[
    ("search", Some(Purpose::Search)),
    ("ai-input", Some(Purpose::AiInput)),
    ("ai-train", Some(Purpose::AiTrain)),
    ("AI-Train", Some(Purpose::AiTrain)),
    ("use", None),
    ("tdm", None),
];
pub const CS_VALUES: &[(&str, Option<bool>)] =
    &[("yes", Some(true)), ("no", Some(false)), ("YES", Some(true)), ("No", Some(false)), ("maybe", None), ("", None)];

#[derive(Debug, Clone)]
pub struct ContentSignalCase {
    pub value: String,
    /// `(key, value, padding)` indexes; padding puts spaces around `=`; `None` is junk.
    pub pairs: Vec<Option<(usize, usize, bool)>>,
    pub rules: Vec<String>,
    pub paths: Vec<String>,
}

impl ContentSignalCase {
    pub fn from_bytes(data: &[u8]) -> Self {
        let f = fields(data);
        Self {
            value: String::from_utf8_lossy(f[0]).into_owned(),
            pairs: Vec::new(),
            rules: field_lines(&f, 1, &["/blog/ ai-train=no", "search=yes, ai-train=yes"]),
            paths: field_lines(&f, 2, &["/", "/blog/x"]),
        }
    }
}

/// Content-Signal: deterministic; generated lists read per the Cloudflare policy (case-
/// insensitive `yes`/`no`, unknown keys ignored, repeats most restrictive); field lines read
/// as one list; the rules chosen are the longest matching ones.
pub fn check_content_signal(case: &ContentSignalCase) {
    let parsed = ContentSignal::parse(&case.value);
    assert_eq!(parsed, ContentSignal::parse(&case.value));
    let lines: Vec<&str> = case.value.split('\n').collect();
    assert_eq!(ContentSignal::parse_field_lines(&lines).prefs, ContentSignal::parse(&lines.join(", ")).prefs);
    if !case.pairs.is_empty() {
        let mut expected = Prefs::UNKNOWN;
        let mut elements = Vec::new();
        for pair in &case.pairs {
            let Some((k, v, pad)) = *pair else {
                elements.push("junk".to_string());
                continue;
            };
            let ((key, purpose), (value, allowed)) = (CS_KEYS[k % CS_KEYS.len()], CS_VALUES[v % CS_VALUES.len()]);
            elements.push(if pad { format!(" {key} = {value} ") } else { format!("{key}={value}") });
            if let (Some(purpose), Some(allowed)) = (purpose, allowed) {
                expected.restrict(purpose, allowed);
            }
        }
        let text = elements.join(",");
        assert_eq!(ContentSignal::parse(&text).prefs, expected, "{text:?}");
        assert_eq!(ContentSignal::parse_field_lines(&elements).prefs, expected, "{elements:?}");
    }
    let rules = ContentSignalRules::parse(case.rules.iter().enumerate().map(|(i, r)| (r, i as u32 + 1)));
    for path in &case.paths {
        let normalized = normalize_path(path);
        let specificity = |p: &Option<PathPattern>| match p {
            None => Some(0),
            Some(p) => p.matches_normalized_path(&normalized).then(|| p.specificity()),
        };
        let best = rules.rules.iter().filter_map(|r| specificity(&r.path)).max();
        let want: Vec<u32> =
            rules.rules.iter().filter(|r| best.is_some() && specificity(&r.path) == best).map(|r| r.line).collect();
        let got: Vec<u32> = rules.evaluate(path).map(|m| m.rules.iter().map(|r| r.line).collect()).unwrap_or_default();
        assert_eq!(got, want, "longest matches for {path:?}");
    }
}

// === X-Robots-Tag ===

/// Bot names (plausible tokens; one equals a directive's name).
pub const TAG_BOTS: &[&str] = &["GPTBot", "googlebot", "CCBot", "other-bot", "bot.v2", "noai"];
/// Directives as written, and whether each is `noai` / `noimageai`.
pub const TAG_DIRECTIVES: &[(&str, bool, bool)] = &[
    ("noai", true, false),
    ("NoAI", true, false),
    ("noimageai", false, true),
    ("noindex", false, false),
    ("nofollow", false, false),
    ("none", false, false),
    ("noai noimageai", true, true),
    ("max-snippet: 50", false, false),
    ("unavailable_after: Saturday, 01-Jul-17 11:00:00 PST", false, false),
    ("unavailable_after: 2025-07-01", false, false),
];

/// One field line: directives for everyone, then scopes `(bot, directives)`.
#[derive(Debug, Clone)]
pub struct TagLine {
    pub global: Vec<usize>,
    pub scoped: Vec<(usize, Vec<usize>)>,
}

#[derive(Debug, Clone)]
pub struct RobotsTagCase {
    pub raw: Vec<String>,
    pub lines: Vec<TagLine>,
    /// The crawler's tokens, as indexes into [`TAG_BOTS`].
    pub tokens: Vec<usize>,
    pub is_image: bool,
}

impl RobotsTagCase {
    pub fn from_bytes(data: &[u8]) -> Self {
        let f = fields(data);
        Self {
            raw: String::from_utf8_lossy(f[0]).split('\n').map(str::to_string).collect(),
            lines: Vec::new(),
            tokens: vec![0, usize::from(field_byte(&f, 1))],
            is_image: field_byte(&f, 2) & 1 == 1,
        }
    }
}

/// X-Robots-Tag and robots metas: deterministic; generated headers read per Google's syntax as
/// SIGNALS.md §4 extends it: a `bot:` scope runs to the next scope or the end of the line,
/// names match case-insensitively, `noimageai` counts on images only, valued directives and
/// dates split by commas are never bot names.
pub fn check_robots_tag(case: &RobotsTagCase) {
    let tokens: Vec<&str> = case.tokens.iter().map(|&t| TAG_BOTS[t % TAG_BOTS.len()]).collect();
    let tag = RobotsTag::parse_header(&case.raw);
    assert_eq!(tag, RobotsTag::parse_header(&case.raw));
    let m = tag.evaluate(&tokens, case.is_image);
    assert_eq!(m.prefs == Prefs::UNKNOWN, m.directives.is_empty());
    for d in &m.directives {
        assert!(d.name == "noai" || (case.is_image && d.name == "noimageai"));
        assert!(d.bot.as_ref().is_none_or(|b| tokens.iter().any(|t| t.eq_ignore_ascii_case(b))));
        assert!(d.source < case.raw.len());
    }
    let meta = RobotsTag::parse_meta(case.raw.iter().map(|c| ("robots", c.as_str())));
    if !m.directives.is_empty() && tag.directives.iter().all(|d| d.bot.is_none()) {
        assert_eq!(meta.evaluate(&tokens, case.is_image).prefs, m.prefs, "meta robots reads like the header");
    }
    if case.lines.is_empty() {
        return;
    }
    let mut expected = false;
    let mut rendered = Vec::new();
    let applies = |bot: &str| tokens.iter().any(|t| t.eq_ignore_ascii_case(bot));
    let opts_out = |d: usize| {
        let (_, noai, noimageai) = TAG_DIRECTIVES[d % TAG_DIRECTIVES.len()];
        noai || (case.is_image && noimageai)
    };
    let text = |d: &usize| TAG_DIRECTIVES[d % TAG_DIRECTIVES.len()].0;
    for line in &case.lines {
        let mut elements: Vec<String> = line.global.iter().map(|d| text(d).to_string()).collect();
        expected |= line.global.iter().any(|&d| opts_out(d));
        for (bot, directives) in &line.scoped {
            let bot = TAG_BOTS[bot % TAG_BOTS.len()];
            let Some((first, rest)) = directives.split_first() else { continue };
            elements.push(format!("{bot}: {}", text(first)));
            elements.extend(rest.iter().map(|d| text(d).to_string()));
            expected |= applies(bot) && directives.iter().any(|&d| opts_out(d));
        }
        rendered.push(elements.join(", "));
    }
    let tag = RobotsTag::parse_header(&rendered);
    let got = tag.evaluate(&tokens, case.is_image).prefs != Prefs::UNKNOWN;
    assert_eq!(got, expected, "{rendered:?} for {tokens:?} (image: {}): {:?}", case.is_image, tag.directives);
    assert!(tag.problems.is_empty(), "{rendered:?}: {:?}", tag.problems);
}

// === HTML head scan ===

/// One thing in a generated `<head>`.
#[derive(Debug, Clone)]
pub enum HeadItem {
    /// `<meta name content>`: name, content, quote style (0 `"`, 1 `'`, 2 none when possible).
    Meta(String, String, u8),
    /// `<link rel href type>`: rel, href, type.
    Link(String, String, Option<String>),
    Title(String),
    /// Raw text holders and inert parts whose content must never be collected.
    Script(String),
    Comment(String),
    Template(String),
    Space(String),
}

#[derive(Debug, Clone)]
pub enum HtmlPage {
    Raw(Vec<u8>),
    Head { items: Vec<HeadItem>, head_tag: bool, close: u8, after: Vec<HeadItem> },
}

#[derive(Debug, Clone)]
pub struct HtmlHeadCase {
    pub page: HtmlPage,
    /// Frame sizes (cycled).
    pub frames: Vec<usize>,
    /// `Content-Encoding` to send (the body is encoded with it when generated).
    pub coding: Option<String>,
    pub max_head_bytes: usize,
}

impl HtmlHeadCase {
    pub fn from_bytes(data: &[u8]) -> Self {
        let f = fields(data);
        let coding = match field_byte(&f, 1) % 4 {
            0 => None,
            1 => Some("gzip"),
            2 => Some("br"),
            _ => Some("deflate"),
        };
        Self {
            page: HtmlPage::Raw(f[0].to_vec()),
            frames: vec![usize::from(field_byte(&f, 2)).max(1)],
            coding: coding.map(str::to_string),
            max_head_bytes: match field_byte(&f, 3) {
                0 => consentry::proxy::inspect::DEFAULT_MAX_HEAD_BYTES,
                n => usize::from(n) * 16,
            },
        }
    }
}

fn attribute(name: &str, value: &str, quote: u8) -> String {
    let unquoted_ok = !value.is_empty() && !value.contains(|c: char| c.is_ascii_whitespace() || "\"'=<>`".contains(c));
    match quote % 3 {
        2 if unquoted_ok => format!("{name}={value}"),
        1 => format!("{name}='{value}'"),
        _ => format!("{name}=\"{value}\""),
    }
}

/// The character references generated attribute values may hold, and what a browser reads.
pub const HTML_REFERENCES: &[(&str, &str)] = &[
    ("&amp;", "&"),
    ("&#44;", ","),
    ("&#x6E;", "n"),
    ("&#X6e;", "n"),
    ("&#110;", "n"),
    ("&quot;", "\""),
    ("&lt;", "<"),
    ("&#114;", "r"),
];

/// A generated attribute value as a browser reads it: its character references decoded (the
/// generator writes `&` only as part of one of [`HTML_REFERENCES`]).
fn browser_reads(raw: &str) -> String {
    let mut out = String::new();
    let mut rest = raw;
    while !rest.is_empty() {
        match HTML_REFERENCES.iter().find(|(r, _)| rest.starts_with(r)) {
            Some((r, c)) => {
                out.push_str(c);
                rest = &rest[r.len()..];
            }
            None => {
                let c = rest.chars().next().expect("non-empty");
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    out
}

/// Renders items; returns the HTML and the metas and licence links a browser would see.
fn render_head_items(
    items: &[HeadItem],
    out: &mut String,
    metas: &mut Vec<(String, String)>,
    links: &mut Vec<(String, Option<String>)>,
) {
    for item in items {
        match item {
            HeadItem::Meta(name, content, quote) => {
                out.push_str(&format!(
                    "<meta {} {}>",
                    attribute("name", name, *quote),
                    attribute("content", content, *quote)
                ));
                let name = browser_reads(name).trim_ascii().to_ascii_lowercase();
                if !name.is_empty() {
                    metas.push((name, browser_reads(content)));
                }
            }
            HeadItem::Link(rel, href, kind) => {
                let kind_attr = kind.as_ref().map(|k| format!(" {}", attribute("type", k, 0))).unwrap_or_default();
                out.push_str(&format!("<link {} {}{kind_attr}>", attribute("rel", rel, 0), attribute("href", href, 0)));
                let is_license = browser_reads(rel).split_ascii_whitespace().any(|t| t.eq_ignore_ascii_case("license"));
                let href = browser_reads(href);
                let href = href.trim_ascii();
                if is_license && !href.is_empty() {
                    links.push((href.to_string(), kind.as_ref().map(|k| browser_reads(k).trim_ascii().to_string())));
                }
            }
            HeadItem::Title(text) => out.push_str(&format!("<title>{text}</title>")),
            HeadItem::Script(text) => out.push_str(&format!("<script>{text}</script>")),
            HeadItem::Comment(text) => out.push_str(&format!("<!--{text}-->")),
            HeadItem::Template(text) => out.push_str(&format!("<template>{text}</template>")),
            HeadItem::Space(text) => out.push_str(text),
        }
    }
}

/// Metas `(name, content)` and licence links `(href, type)`, as a browser reads them.
type Metas = Vec<(String, String)>;
type Links = Vec<(String, Option<String>)>;

fn render_page(items: &[HeadItem], head_tag: bool, close: u8, after: &[HeadItem]) -> (Vec<u8>, Metas, Links) {
    let (mut html, mut metas, mut links) = (String::from("<!DOCTYPE html>\n<html lang=en>"), Vec::new(), Vec::new());
    if head_tag {
        html.push_str("<head>");
    }
    render_head_items(items, &mut html, &mut metas, &mut links);
    match close % 3 {
        0 if head_tag => html.push_str("</head>\n<body>"),
        1 => html.push_str("<body class=x>"),
        _ => html.push_str("<p>body text</p>"),
    }
    // Nothing after the head's end is collected.
    render_head_items(after, &mut html, &mut Vec::new(), &mut Vec::new());
    html.push_str("\n<p>the end</p></body></html>\n");
    (html.into_bytes(), metas, links)
}

fn encode(coding: Option<&str>, data: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    match coding {
        Some("gzip") => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(data).expect("in memory");
            e.finish().expect("in memory")
        }
        Some("deflate") => {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(data).expect("in memory");
            e.finish().expect("in memory")
        }
        _ => data.to_vec(),
    }
}

struct Frames(std::collections::VecDeque<bytes::Bytes>);

impl http_body::Body for Frames {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
        std::task::Poll::Ready(self.0.pop_front().map(|b| Ok(http_body::Frame::data(b))))
    }
}

fn frames(data: &[u8], sizes: &[usize]) -> Frames {
    let mut out = std::collections::VecDeque::new();
    let (mut at, mut i) = (0, 0);
    while at < data.len() {
        let size = sizes.get(i % sizes.len().max(1)).copied().unwrap_or(data.len()).max(1);
        let end = (at + size).min(data.len());
        out.push_back(bytes::Bytes::copy_from_slice(&data[at..end]));
        (at, i) = (end, i + 1);
    }
    Frames(out)
}

fn scan(data: &[u8], sizes: &[usize], coding: Option<&str>, max: usize) -> (HeadSignals, Vec<u8>) {
    use http_body_util::BodyExt as _;
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    runtime.block_on(async {
        let inspected = scan_head(frames(data, sizes), coding, max).await.expect("the body never fails");
        let delivered = inspected.body.collect().await.expect("the body never fails").to_bytes().to_vec();
        (inspected.signals, delivered)
    })
}

/// The HTML head scan: never panics; the body is delivered byte for byte whatever happens; a
/// generated head's metas and licence links are all found, in order, and nothing from scripts,
/// comments, templates or the body; a smaller limit finds a prefix of them; framing and
/// content coding change nothing.
pub fn check_html_head(case: &HtmlHeadCase) {
    let coding = case.coding.as_deref();
    match &case.page {
        HtmlPage::Raw(bytes) => {
            let (signals, delivered) = scan(bytes, &case.frames, coding, case.max_head_bytes);
            assert_eq!(delivered, *bytes, "the body must be delivered unchanged");
            assert!(!(signals.complete && signals.truncated));
            if coding.is_none() {
                let (whole, _) = scan(bytes, &[bytes.len().max(1)], None, case.max_head_bytes);
                if whole.complete && signals.complete {
                    assert_eq!(whole.metas, signals.metas, "framing changed what was found");
                }
            }
        }
        HtmlPage::Head { items, head_tag, close, after } => {
            let (html, metas, links) = render_page(items, *head_tag, *close, after);
            let encoded = encode(coding, &html);
            let limit = consentry::proxy::inspect::DEFAULT_MAX_HEAD_BYTES;
            let (signals, delivered) = scan(&encoded, &case.frames, coding, limit);
            assert_eq!(delivered, encoded);
            let page = String::from_utf8_lossy(&html);
            assert!(signals.complete, "{page}: {:?}", signals.problems);
            assert_eq!(signals.metas, metas, "{page}");
            assert_eq!(signals.license_links, links, "{page}");
            let (small, delivered) = scan(&encoded, &case.frames, coding, case.max_head_bytes);
            assert_eq!(delivered, encoded);
            assert!(
                signals.metas.starts_with(&small.metas),
                "{page}\nlimit {}: {:?}",
                case.max_head_bytes,
                small.metas
            );
            if small.complete {
                assert_eq!(small.metas, signals.metas);
            }
        }
    }
}

// === RSL ===

pub const RSL_USAGES: &[&str] =
    &["all", "ai-all", "ai-train", "ai-input", "ai-index", "search", "train-ai", "ai-use", "AI-Train", "bogus"];
pub const RSL_SCOPES: &[&str] =
    &["", "/", "/a/", "/a/*.html", "/b$", "https://example.com/", "https://EXAMPLE.com/a/", "https://other.org/"];
pub const RSL_PAYMENTS: &[&str] = &["free", "attribution", "purchase", "subscription"];

/// One `<license>`: permits and prohibits (usage indexes), payment, and a `user` condition.
#[derive(Debug, Clone)]
pub struct RslLicenseSpec {
    pub permits: Option<Vec<usize>>,
    pub prohibits: Option<Vec<usize>>,
    pub payment: Option<usize>,
    pub user_condition: bool,
}

#[derive(Debug, Clone)]
pub struct RslContentSpec {
    pub scope: usize,
    pub server: bool,
    pub licenses: Vec<RslLicenseSpec>,
}

/// How the same document is written: quotes, spacing, a namespace prefix, comments, entity or
/// CDATA spellings of tokens.
#[derive(Debug, Clone, Copy)]
pub struct RslStyle {
    pub single_quotes: bool,
    pub newlines: bool,
    pub prefix: bool,
    pub comments: bool,
    pub entities: bool,
    pub cdata: bool,
    /// Absolute `https` scopes written with the default port `:443` (RFC 3986 §6.2.3: the same URL).
    pub default_port: bool,
}

#[derive(Debug, Clone)]
pub struct RslCase {
    pub raw: Vec<u8>,
    pub doc: Option<(Vec<RslContentSpec>, RslStyle)>,
    pub legacy: bool,
    pub urls: Vec<String>,
}

impl RslCase {
    pub fn from_bytes(data: &[u8]) -> Self {
        let f = fields(data);
        Self {
            raw: f[0].to_vec(),
            doc: None,
            legacy: field_byte(&f, 1) & 1 == 1,
            urls: field_lines(
                &f,
                2,
                &["https://example.com/", "https://example.com/a/x.html", "https://example.com/b"],
            ),
        }
    }
}

fn render_rsl(contents: &[RslContentSpec], style: RslStyle, all_prohibited: bool) -> String {
    let q = if style.single_quotes { '\'' } else { '"' };
    let nl = if style.newlines { "\n  " } else { "" };
    let p = if style.prefix { "rsl:" } else { "" };
    let ns = if style.prefix { "xmlns:rsl" } else { "xmlns" };
    let comment = if style.comments { "<!-- c <content url=\"/\"> -->" } else { "" };
    let tokens = |list: &[usize]| -> String {
        let text: Vec<String> = list
            .iter()
            .map(|&u| {
                let usage = RSL_USAGES[u % RSL_USAGES.len()];
                match usage.split_at_checked(1) {
                    Some((first, rest)) if style.entities => {
                        format!("&#{};{rest}", u32::from(first.chars().next().unwrap_or('a')))
                    }
                    _ => usage.to_string(),
                }
            })
            .collect();
        let joined = text.join(" ");
        if style.cdata && !style.entities { format!("<![CDATA[{joined}]]>") } else { joined }
    };
    let mut xml = format!("<?xml version={q}1.0{q}?>{nl}<{p}rsl {ns}={q}https://rslstandard.org/rsl{q}>{nl}");
    for content in contents {
        let mut scope = RSL_SCOPES[content.scope % RSL_SCOPES.len()].replace('&', "&amp;");
        if style.default_port && scope.starts_with("https://") {
            let host_end = scope[8..].find('/').map_or(scope.len(), |i| i + 8);
            scope.insert_str(host_end, ":443");
        }
        let server = if content.server { format!(" server={q}https://l.example/{q}") } else { String::new() };
        xml.push_str(&format!("<{p}content url={q}{scope}{q}{server}>{nl}{comment}"));
        for license in &content.licenses {
            xml.push_str(&format!("<{p}license>{nl}"));
            if let Some(list) = &license.permits {
                xml.push_str(&format!("<{p}permits type={q}usage{q}>{}</{p}permits>{nl}", tokens(list)));
            }
            if let Some(list) = &license.prohibits {
                xml.push_str(&format!("<{p}prohibits type={q}usage{q}>{}</{p}prohibits>{nl}", tokens(list)));
            }
            if all_prohibited {
                xml.push_str(&format!("<{p}prohibits type={q}usage{q}>all</{p}prohibits>{nl}"));
            }
            if license.user_condition {
                xml.push_str(&format!("<{p}permits type={q}user{q}>education</{p}permits>{nl}"));
            }
            if let Some(pay) = license.payment {
                xml.push_str(&format!("<{p}payment type={q}{}{q}/>{nl}", RSL_PAYMENTS[pay % RSL_PAYMENTS.len()]));
            }
            xml.push_str(&format!("</{p}license>{nl}"));
        }
        xml.push_str(&format!("</{p}content>{nl}"));
    }
    xml.push_str(&format!("</{p}rsl>\n"));
    xml
}

fn rsl_readings(doc: &RslDocument, urls: &[String]) -> Vec<Option<(consentry::signals::rsl::RslStatus, u32)>> {
    let mut out = Vec::new();
    for url in urls {
        for purpose in Purpose::ALL {
            out.push(doc.evaluate(url, purpose).map(|e| (e.status, e.content.line)));
        }
    }
    out
}

/// RSL: deterministic; lines named exist; a malformed document grants nothing; `prefs` is what
/// `evaluate` says; the deciding content governs the URL; the same document written in other
/// XML spellings evaluates the same; prohibiting `all` in every licence leaves nothing allowed.
pub fn check_rsl(case: &RslCase) {
    let check_one = |body: &[u8]| -> RslDocument {
        let doc = RslDocument::parse(body, case.legacy);
        assert_eq!(doc, RslDocument::parse(body, case.legacy), "not deterministic");
        let lines = u32::try_from(newline_lines(body)).unwrap_or(u32::MAX);
        for (line, problem) in &doc.problems {
            assert!((1..=lines).contains(line), "problem on line {line} of {lines}: {problem}");
        }
        if !doc.valid {
            assert!(doc.contents.is_empty());
        }
        for content in &doc.contents {
            assert!((1..=lines).contains(&content.line));
            for license in &content.licenses {
                assert!(content.line <= license.line && license.line <= lines);
            }
        }
        for url in &case.urls {
            let governing = doc.contents_for(url);
            for holds in [false, true] {
                let prefs = doc.prefs(url, holds);
                for purpose in Purpose::ALL {
                    let evaluation = doc.evaluate(url, purpose);
                    assert_eq!(prefs.get(purpose), evaluation.as_ref().map(|e| e.allowed(holds)));
                    if let Some(e) = evaluation {
                        assert!(governing.iter().any(|c| std::ptr::eq(*c, e.content)));
                    }
                }
            }
        }
        doc
    };
    check_one(&case.raw);
    let _ = rsl::license_links(String::from_utf8_lossy(&case.raw).split('\n'));
    let _ = rsl::license_challenge(String::from_utf8_lossy(&case.raw).split('\n'));
    let Some((contents, style)) = &case.doc else { return };
    let plain = RslStyle {
        single_quotes: false,
        newlines: true,
        prefix: false,
        comments: false,
        entities: false,
        cdata: false,
        default_port: false,
    };
    let reference = check_one(render_rsl(contents, plain, false).as_bytes());
    let styled_text = render_rsl(contents, *style, false);
    let styled = check_one(styled_text.as_bytes());
    assert!(reference.valid && styled.valid, "{styled_text}\n{:?}", styled.problems);
    let statuses = |doc: &RslDocument| -> Vec<Option<consentry::signals::rsl::RslStatus>> {
        rsl_readings(doc, &case.urls).into_iter().map(|r| r.map(|(s, _)| s)).collect()
    };
    assert_eq!(statuses(&styled), statuses(&reference), "{styled_text}");
    let closed = check_one(render_rsl(contents, *style, true).as_bytes());
    for url in &case.urls {
        for holds in [false, true] {
            let prefs = closed.prefs(url, holds);
            assert!(
                Purpose::ALL.iter().all(|&p| prefs.get(p) != Some(true)),
                "prohibiting all allowed something for {url}"
            );
        }
    }
}

// === registry import ===

/// A generated registry entry: fields as strings (possibly invalid); `None` leaves it out.
#[derive(Debug, Clone, Default)]
pub struct DraftSpec {
    pub id: Option<String>,
    pub creator: Option<String>,
    pub contact: Option<String>,
    pub url: Option<String>,
    pub domain: Option<String>,
    pub include_subdomains: Option<bool>,
    pub paths: Option<Vec<String>>,
    pub purposes: Option<Vec<String>>,
}

/// Lines between entries: blank, a comment, or nothing.
#[derive(Debug, Clone)]
pub struct ImportCase {
    pub raw: Vec<u8>,
    pub entries: Vec<(DraftSpec, u8)>,
    pub crlf: bool,
    /// Exact URLs an entry may object to, each also sent as a request target.
    pub urls: Vec<String>,
}

impl ImportCase {
    pub fn from_bytes(data: &[u8]) -> Self {
        let urls = String::from_utf8_lossy(data).lines().filter(|l| l.contains("://")).map(str::to_string).collect();
        Self { raw: data.to_vec(), entries: Vec::new(), crlf: false, urls }
    }
}

fn draft_json(d: &DraftSpec) -> String {
    let mut map = serde_json::Map::new();
    let mut put = |k: &str, v: serde_json::Value| {
        map.insert(k.to_string(), v);
    };
    if let Some(v) = &d.id {
        put("id", v.clone().into());
    }
    if let Some(v) = &d.creator {
        put("creator", v.clone().into());
    }
    if let Some(v) = &d.contact {
        put("contact", v.clone().into());
    }
    if let Some(v) = &d.url {
        put("url", v.clone().into());
    }
    if let Some(v) = &d.domain {
        put("domain", v.clone().into());
    }
    if let Some(v) = d.include_subdomains {
        put("include_subdomains", v.into());
    }
    if let Some(v) = &d.paths {
        put("paths", v.clone().into());
    }
    if let Some(v) = &d.purposes {
        put("purposes", v.clone().into());
    }
    serde_json::Value::Object(map).to_string()
}

fn csv_cell(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) || value.starts_with(['#', ' ']) || value.ends_with(' ') {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_string()
    }
}

fn draft_csv(d: &DraftSpec) -> String {
    let list = |l: &Option<Vec<String>>| l.as_ref().map(|v| v.join("|")).unwrap_or_default();
    [
        d.id.clone().unwrap_or_default(),
        d.creator.clone().unwrap_or_default(),
        d.contact.clone().unwrap_or_default(),
        d.url.clone().unwrap_or_default(),
        d.domain.clone().unwrap_or_default(),
        d.include_subdomains.map(|b| b.to_string()).unwrap_or_default(),
        list(&d.paths),
        list(&d.purposes),
    ]
    .iter()
    .map(|c| csv_cell(c))
    .collect::<Vec<_>>()
    .join(",")
}

fn check_located(result: &Result<Vec<(usize, consentry::registry::ValidEntry)>, Vec<LineError>>, lines: usize) {
    match result {
        Ok(entries) => {
            assert!(!entries.is_empty());
            for pair in entries.windows(2) {
                assert!(pair[0].0 < pair[1].0, "entries out of line order");
            }
            for (line, _) in entries {
                assert!((1..=lines).contains(line), "entry on line {line} of {lines}");
            }
        }
        Err(problems) => {
            assert!(!problems.is_empty());
            assert!(problems.len() <= import::MAX_REPORTED_PROBLEMS + 1);
            for p in problems {
                assert!((1..=lines).contains(&p.line), "problem on line {} of {lines}: {p}", p.line);
            }
        }
    }
}

/// Registry JSONL/CSV import: never panics; every entry and problem names a line of the file;
/// the same entries written as JSON Lines and as CSV (quoting, CRLF, blank and comment lines in
/// between) import the same, from the same lines.
pub fn check_registry_import(case: &ImportCase) {
    let lines = newline_lines(&case.raw);
    for format in [Format::JsonLines, Format::Csv] {
        let result = import::parse_bytes(&case.raw, format);
        assert_eq!(result, import::parse_bytes(&case.raw, format), "not deterministic");
        check_located(&result, lines);
    }
    let _ = Format::detect(Path::new("registry"), &String::from_utf8_lossy(&case.raw));
    // An exact-URL entry must match the request for that very URL, however the proxy receives it.
    for url in &case.urls {
        let (Ok(key), Ok(uri)) = (consentry::registry::entry::normalize_url(url), url.trim().parse::<http::Uri>())
        else {
            continue;
        };
        let Ok(target) = parse_absolute(&uri) else { continue };
        let request = consentry::registry::entry::request_key(
            target.scheme.as_str(),
            &target.authority(),
            &target.path_and_query,
        );
        assert_eq!(request, key, "the entry for {url:?} does not match the request for it");
    }
    if case.entries.is_empty() {
        return;
    }
    let nl = if case.crlf { "\r\n" } else { "\n" };
    let mut jsonl = String::new();
    let mut csv = format!("# export{nl}id,creator,contact,url,domain,include_subdomains,paths,purposes{nl}");
    let mut line = 1;
    let mut csv_line = 3;
    let mut expected_lines = Vec::new();
    for (draft, gap) in &case.entries {
        let filler = match gap % 3 {
            0 => "",
            1 => nl,
            _ => "# a comment, with \"quotes\"",
        };
        if !filler.is_empty() {
            jsonl.push_str(filler);
            csv.push_str(filler);
            if filler != nl {
                jsonl.push_str(nl);
                csv.push_str(nl);
            }
            line += 1;
            csv_line += 1;
        }
        jsonl.push_str(&draft_json(draft));
        jsonl.push_str(nl);
        let row = draft_csv(draft);
        csv.push_str(&row);
        csv.push_str(nl);
        expected_lines.push((line, csv_line));
        line += 1;
        // A quoted cell may hold line breaks: the next record starts further down.
        csv_line += 1 + row.matches('\n').count();
    }
    let from_jsonl = import::parse(&jsonl, Format::JsonLines);
    let from_csv = import::parse(&csv, Format::Csv);
    check_located(&from_jsonl, newline_lines(jsonl.as_bytes()));
    check_located(&from_csv, newline_lines(csv.as_bytes()));
    match (&from_jsonl, &from_csv) {
        (Ok(j), Ok(c)) => {
            assert_eq!(j.len(), case.entries.len());
            let j_lines: Vec<usize> = j.iter().map(|e| e.0).collect();
            let c_lines: Vec<usize> = c.iter().map(|e| e.0).collect();
            assert_eq!(j_lines, expected_lines.iter().map(|l| l.0).collect::<Vec<_>>());
            assert_eq!(c_lines, expected_lines.iter().map(|l| l.1).collect::<Vec<_>>(), "{csv}");
            let entries =
                |v: &Vec<(usize, consentry::registry::ValidEntry)>| v.iter().map(|e| e.1.clone()).collect::<Vec<_>>();
            assert_eq!(entries(j), entries(c), "{jsonl}\n{csv}");
        }
        (Err(j), Err(c)) => {
            // Problems name the entry's own line in both files.
            let j_data: Vec<usize> = expected_lines.iter().map(|l| l.0).collect();
            let c_data: Vec<usize> = expected_lines.iter().map(|l| l.1).collect();
            for p in j.iter().filter(|p| !p.problem.contains("more problems")) {
                assert!(j_data.contains(&p.line) || p.problem == "no entries", "{p} in\n{jsonl}");
            }
            for p in c.iter().filter(|p| !p.problem.contains("more problems")) {
                assert!(c_data.contains(&p.line) || p.problem == "no entries", "{p} in\n{csv}");
            }
        }
        _ => panic!("JSON Lines and CSV disagree:\n{jsonl}=> {from_jsonl:?}\n{csv}=> {from_csv:?}"),
    }
}

// === config ===

/// Keys and values a generated config file uses: `(section, key, valid values, invalid values)`.
pub const CONFIG_KEYS: &[(&str, &str, &[&str], &[&str])] = &[
    ("", "node", &["\"n1\"", "''"], &["1", "[]"]),
    ("", "data_dir", &["\"/tmp/consentry-fuzz\""], &["true"]),
    ("proxy", "listen", &["\"127.0.0.1:3128\"", "\"[::1]:0\""], &["\"localhost\"", "3128"]),
    ("proxy", "mode", &["\"enforce\"", "\"monitor\""], &["\"Enforce\"", "1"]),
    ("proxy", "block_status", &["451", "403"], &["404", "-1", "70000", "\"451\""]),
    ("proxy", "max_connections", &["1", "1024"], &["0", "-5"]),
    ("proxy", "header_read_timeout", &["\"30s\"", "5", "\"1h 2m\""], &["0", "\"soon\"", "\"-1s\"", "1.5"]),
    ("proxy", "max_header_bytes", &["65536"], &["100"]),
    ("robots", "max_bytes", &["512000", "1000000"], &["4096"]),
    ("robots", "cache_ttl", &["\"1h\"", "86400"], &["\"2d\"", "0"]),
    ("robots", "on_429", &["\"allow\"", "\"unreachable\""], &["\"deny\""]),
    ("storage", "url", &["\"\"", "\"none\"", "\"sqlite:///tmp/x.db\""], &["\"mysql://x\""]),
    ("storage", "durability", &["\"sync\"", "\"async\""], &["\"fast\""]),
    ("tlog", "batch_interval", &["\"100ms\"", "1"], &["\"1ms\""]),
    ("tlog", "origin", &["\"log.example\""], &["\"a b\""]),
    ("signals", "eu_strict", &["true", "false"], &["\"yes\""]),
    ("inspect", "max_head_bytes", &["1024", "262144"], &["true"]),
    ("public", "rate_limit_per_ip", &["60"], &["0"]),
    ("upstream", "connect_timeout", &["\"10s\""], &["0"]),
];

#[derive(Debug, Clone)]
pub struct ConfigCase {
    pub text: String,
    /// `(key index, value index, valid?)`: a generated file; at most one invalid setting.
    pub settings: Vec<(usize, usize)>,
    /// The one fault: `(setting position, kind)`: 0 invalid value, 1 unknown key, 2 stray line.
    pub fault: Option<(usize, u8, usize)>,
}

impl ConfigCase {
    pub fn from_bytes(data: &[u8]) -> Self {
        Self { text: String::from_utf8_lossy(data).into_owned(), settings: Vec::new(), fault: None }
    }
}

fn config_outcome(text: &str) -> Result<String, ConfigErrors> {
    Config::from_toml(text, "fuzz.toml").map(|c| toml::to_string(&c).expect("a config serialises"))
}

/// `(line)` numbers quoted in problems, as `(line N)`.
fn quoted_line(problem: &str) -> Option<usize> {
    let at = problem.rfind("(line ")?;
    problem[at + 6..].split(')').next()?.parse().ok()
}

fn check_config_errors(errors: &ConfigErrors, text: &str) {
    assert!(!errors.0.is_empty());
    let lines = newline_lines(text.as_bytes());
    for e in &errors.0 {
        assert_eq!(e.file, "fuzz.toml");
        assert!(!e.key.is_empty(), "an error names no key: {e}");
        if let Some(line) = quoted_line(&e.problem) {
            assert!((1..=lines).contains(&line), "{e}: line {line} of {lines}");
        }
    }
}

/// Config files: never panic; every error names the file and a key (and a line that exists);
/// a valid config written back out reads back the same; a generated file with one fault is
/// rejected naming the faulty key (and its line, for syntax and type errors).
pub fn check_config(case: &ConfigCase) {
    match config_outcome(&case.text) {
        Ok(written) => match config_outcome(&written) {
            Ok(again) => assert_eq!(again, written, "a config does not survive being written out"),
            Err(e) => panic!("a valid config, written out, is rejected: {e}\n{written}"),
        },
        Err(errors) => check_config_errors(&errors, &case.text),
    }
    if case.settings.is_empty() {
        return;
    }
    // Settings grouped by section, each key once, in a fixed order so lines are known.
    let mut chosen: BTreeMap<(&str, &str), String> = BTreeMap::new();
    for &(k, v) in &case.settings {
        let (section, key, valid, _) = CONFIG_KEYS[k % CONFIG_KEYS.len()];
        chosen.insert((section, key), valid[v % valid.len()].to_string());
    }
    let mut faulty: Option<String> = None;
    if let Some((at, kind, v)) = case.fault {
        let count = chosen.len();
        let ((section, key), value) = chosen.iter_mut().nth(at % count).expect("non-empty");
        let dotted = if section.is_empty() { key.to_string() } else { format!("{section}.{key}") };
        match kind % 2 {
            0 => {
                let invalid = CONFIG_KEYS.iter().find(|c| c.0 == *section && c.1 == *key).expect("listed").3;
                *value = invalid[v % invalid.len()].to_string();
                faulty = Some(dotted);
            }
            _ => {
                *value = format!("{value}\n{}_typo = 1", key);
                faulty = Some(if section.is_empty() { format!("{key}_typo") } else { format!("{section}.{key}_typo") });
            }
        }
    }
    let mut text = String::from("# generated\n");
    let mut section_now = "";
    for ((section, key), value) in &chosen {
        if *section != section_now {
            text.push_str(&format!("\n[{section}]\n"));
            section_now = section;
        }
        text.push_str(&format!("{key} = {value}\n"));
    }
    match (config_outcome(&text), faulty) {
        (Ok(_), None) => {}
        (Ok(_), Some(key)) => panic!("a fault in `{key}` was accepted:\n{text}"),
        (Err(errors), None) => panic!("a valid file was rejected: {errors}\n{text}"),
        (Err(errors), Some(key)) => {
            check_config_errors(&errors, &text);
            assert!(errors.0.iter().any(|e| e.key == key), "no error names `{key}`: {errors}\n{text}");
        }
    }
}

// === config environment overrides ===

#[derive(Debug, Clone)]
pub struct EnvCase {
    pub base: String,
    pub vars: Vec<(String, String)>,
}

impl EnvCase {
    pub fn from_bytes(data: &[u8]) -> Self {
        let f = fields(data);
        let vars = f
            .get(1..)
            .unwrap_or_default()
            .iter()
            .map(|v| {
                let text = String::from_utf8_lossy(v);
                let (name, value) = text.split_once('=').unwrap_or((&text, ""));
                (name.to_string(), value.to_string())
            })
            .collect();
        Self { base: String::from_utf8_lossy(f[0]).into_owned(), vars }
    }
}

/// A variable name that would read a file gets a path that cannot exist: the fuzzer must never
/// make the overrides read `/dev/zero` or a terminal.
fn defuse(vars: &[(String, String)]) -> Vec<(String, String)> {
    vars.iter()
        .map(|(name, value)| {
            if name.ends_with("_FILE") {
                (name.clone(), "/nonexistent/consentry-fuzz/secret".to_string())
            } else {
                (name.clone(), value.clone())
            }
        })
        .collect()
}

fn lookup<'a>(table: &'a toml::Table, key: &[String]) -> Option<&'a toml::Value> {
    let (first, rest) = key.split_first()?;
    let mut value = table.get(first)?;
    for part in rest {
        value = match value {
            toml::Value::Table(t) => t.get(part)?,
            toml::Value::Array(a) => a.get(part.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(value)
}

/// `CONSENTRY_*` overrides: never panic; names map to key paths; an applied override is read
/// back at its key (unless a later one replaced it or a table under it); errors from a
/// variable name it; with no `CONSENTRY_*` variable the environment changes nothing.
pub fn check_config_env(case: &EnvCase) {
    let vars = defuse(&case.vars);
    match env::overrides(vars.clone()) {
        Err(errors) => {
            for e in &errors.0 {
                assert!(e.file.starts_with("environment CONSENTRY_"), "{e}");
            }
        }
        Ok(found) => {
            for o in &found {
                assert!(o.var.starts_with(env::PREFIX));
                let name = o.var[env::PREFIX.len()..].trim_end_matches("_FILE");
                assert!(!o.key.is_empty() && o.key.iter().all(|k| !k.is_empty()));
                assert_eq!(o.dotted_key(), name.split("__").map(str::to_ascii_lowercase).collect::<Vec<_>>().join("."));
            }
            if let Ok(mut table) = toml::from_str::<toml::Table>(&case.base) {
                match env::apply(&mut table, &found) {
                    Ok(()) => {
                        for (i, o) in found.iter().enumerate() {
                            let later =
                                found[i + 1..].iter().any(|l| l.key.starts_with(&o.key) || o.key.starts_with(&l.key));
                            if !later {
                                assert_eq!(lookup(&table, &o.key), Some(&o.value), "{} not applied", o.var);
                            }
                        }
                    }
                    Err(errors) => {
                        for e in &errors.0 {
                            assert!(found.iter().any(|o| e.file == format!("environment {}", o.var)), "{e}");
                        }
                    }
                }
            }
        }
    }
    let others: Vec<(String, String)> = vars.iter().filter(|(n, _)| !n.starts_with(env::PREFIX)).cloned().collect();
    let plain = Config::from_toml(&case.base, "fuzz.toml").map(|c| toml::to_string(&c).expect("serialises"));
    let with_env =
        Config::from_sources(&case.base, "fuzz.toml", others).map(|c| toml::to_string(&c).expect("serialises"));
    match (&plain, &with_env) {
        (Ok(a), Ok(b)) => assert_eq!(a, b),
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
        _ => panic!("variables without the prefix changed the outcome"),
    }
    if let Err(errors) = Config::from_sources(&case.base, "fuzz.toml", vars.clone()) {
        for e in &errors.0 {
            assert!(!e.key.is_empty(), "{e}");
        }
    }
}

// === request targets ===

#[derive(Debug, Clone)]
pub struct TargetCase {
    pub text: String,
}

impl TargetCase {
    pub fn from_bytes(data: &[u8]) -> Self {
        Self { text: String::from_utf8_lossy(data).into_owned() }
    }
}

fn check_host_port(hp: &consentry::proxy::target::HostPort) {
    assert_ne!(hp.port, 0, "port 0 accepted");
    assert!(!hp.host.is_empty());
    assert_eq!(hp.host, hp.host.to_ascii_lowercase(), "host not lower-cased");
    assert!(!hp.host.ends_with('.') && !hp.host.starts_with('['), "{:?}", hp.host);
    let again = parse_connect(&hp.with_port().parse().expect("with_port is an authority")).expect("with_port parses");
    assert_eq!(&again, hp, "CONNECT {} reads differently", hp.with_port());
    for scheme in [Scheme::Http, Scheme::Https] {
        let again = parse_host_header(&hp.authority_for(scheme), scheme.default_port()).expect("authority parses");
        assert_eq!(&again, hp);
    }
}

/// CONNECT authorities, absolute-form targets and Host headers: never panic; what is accepted
/// is normalised (lower-case host, no trailing dot, no port 0) and normalising again changes
/// nothing; the forwarded URI and every authority form read back as the same target.
pub fn check_target(case: &TargetCase) {
    if let Ok(hp) = parse_host_header(&case.text, 443) {
        check_host_port(&hp);
    }
    let Ok(uri) = case.text.parse::<http::Uri>() else { return };
    if let Ok(target) = parse_absolute(&uri) {
        check_host_port(&target.host_port);
        assert!(!target.path_and_query.is_empty());
        let forwarded = target.uri().expect("a parsed target builds a URI");
        assert_eq!(parse_absolute(&forwarded).as_ref(), Ok(&target), "the forwarded URI reads differently");
        let shown: http::Uri = target.to_string().parse().expect("a target displays as a URI");
        assert_eq!(parse_absolute(&shown).as_ref(), Ok(&target));
        assert_eq!(target.origin(), format!("{}://{}", target.scheme.as_str(), target.authority()));
    }
    if let Ok(hp) = parse_connect(&uri) {
        check_host_port(&hp);
    }
}

// === signed notes ===

/// A note to sign: key name, key seed, text, other keys' signature lines, a byte to flip.
pub type SignedNote = (String, [u8; 32], String, Vec<String>, Option<usize>);

#[derive(Debug, Clone)]
pub struct NoteCase {
    pub raw: String,
    /// A note to sign: key name, key seed, text, foreign signature lines, and a byte to flip.
    pub signed: Option<SignedNote>,
}

impl NoteCase {
    pub fn from_bytes(data: &[u8]) -> Self {
        Self { raw: String::from_utf8_lossy(data).into_owned(), signed: None }
    }
}

fn fixed_verifier() -> NoteVerifier {
    let signer = NoteSigner::new("log.consentry.example", SigningKey::from_bytes(&[7; 32])).expect("valid name");
    NoteVerifier::parse(&signer.verifier_key()).expect("own key parses")
}

/// Signed notes: parsing keys and verifying notes never panic; an accepted note's text is its
/// prefix; what a signer signs verifies to exactly its text, also with other keys' signature
/// lines around it; a changed text or a key of the same name never verifies.
pub fn check_note(case: &NoteCase) {
    if let Ok(verifier) = NoteVerifier::parse(&case.raw) {
        assert!(!verifier.name().is_empty() && !verifier.name().contains('+'));
    }
    let verifier = fixed_verifier();
    if let Ok(text) = verifier.verify(&case.raw) {
        assert!(case.raw.starts_with(text) && text.ends_with('\n'));
    }
    let Some((name, seed, text, foreign, flip)) = &case.signed else { return };
    let Ok(signer) = NoteSigner::new(name, SigningKey::from_bytes(seed)) else {
        assert!(name.is_empty() || name.contains(|c: char| c.is_whitespace() || c.is_control() || c == '+'));
        return;
    };
    let key = signer.verifier_key();
    let verifier = NoteVerifier::parse(&key).unwrap_or_else(|e| panic!("own verifier key {key:?}: {e}"));
    assert_eq!(verifier.name(), name);
    let Ok(note) = signer.sign(text) else { return };
    assert_eq!(verifier.verify(&note).ok(), Some(text.as_str()), "{note:?}");
    let mut with_others = note.clone();
    for line in foreign {
        with_others.push_str(line);
        with_others.push('\n');
    }
    if foreign
        .iter()
        .all(|l| !l.contains('\n') && l.starts_with("\u{2014} ") && !l[4..].starts_with(&format!("{name} ")))
    {
        // Well-formed lines by other keys are ignored; badly formed ones make the note invalid.
        match verifier.verify(&with_others) {
            Ok(t) => assert_eq!(t, text),
            Err(e) => {
                assert!(
                    foreign.iter().any(|l| l[4..].split_once(' ').is_none_or(
                        |(_, b)| STANDARD.decode(b).is_err() || STANDARD.decode(b).is_ok_and(|b| b.len() <= 4)
                    ) || l.chars().any(|c| c < ' ')),
                    "{e}: {with_others:?}"
                )
            }
        }
    }
    let impostor = NoteSigner::new(name, SigningKey::from_bytes(&seed.map(|b| b ^ 0x55))).expect("valid name");
    if let Ok(forged) = impostor.sign(text) {
        assert!(verifier.verify(&forged).is_err(), "a key with the same name verified");
    }
    if let Some(at) = flip {
        let mut bytes = note.clone().into_bytes();
        let at = at % text.len();
        bytes[at] ^= 0x01;
        if let Ok(altered) = String::from_utf8(bytes)
            && altered != note
            && let Ok(t) = verifier.verify(&altered)
        {
            panic!("an altered note verified: {altered:?} -> {t:?}");
        }
    }
}

// === receipts ===

const LOG: &str = "log.consentry.example";

struct Storage(Vec<Hash>);

impl HashReader for Storage {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
        let read = |&i: &u64| self.0.get(usize::try_from(i).ok()?).copied();
        indexes.iter().map(read).collect::<Option<_>>().ok_or(tlog_tiles::Error::IndexesNotInTree)
    }
}

/// A genuine log of `hosts`' records and the receipt for `example.org`.
fn genuine_receipt(signer: &NoteSigner, hosts: &[String]) -> Receipt {
    let mut storage = Storage(Vec::new());
    let mut leaves = Vec::new();
    for (n, host) in hosts.iter().enumerate() {
        let prev = hosts[..n].iter().rposition(|h| h == host).map(|p| p as u64);
        let record = format!(r#"{{"request_id":"r{n}","host":"{host}"}}"#);
        let salt = [n as u8; 32];
        let hashes =
            tlog_tiles::stored_hashes(n as u64, &entry_bytes(&salt, prev, &record), &storage).expect("in order");
        storage.0.extend(hashes);
        leaves.push((host.clone(), salt, prev, record));
    }
    let size = hosts.len() as u64;
    let root = tlog_tiles::tree_hash(size, &storage).expect("a tree");
    let text = Checkpoint::new(LOG, size, root, "").expect("checkpoint").to_bytes();
    let checkpoint = signer.sign(&String::from_utf8(text).expect("ASCII")).expect("signs");
    let records = leaves
        .iter()
        .enumerate()
        .filter(|(_, l)| l.0 == "example.org" || l.0.ends_with(".example.org"))
        .map(|(i, (_, salt, prev, record))| ReceiptRecord {
            leaf_index: i as u64,
            prev_leaf_index: *prev,
            salt: STANDARD.encode(salt),
            record: record.clone(),
            inclusion_proof: tlog_tiles::prove_record(size, i as u64, &storage)
                .expect("proof")
                .iter()
                .map(encode_hash)
                .collect(),
        })
        .collect();
    Receipt {
        format: RECEIPT_FORMAT.to_string(),
        domain: "example.org".to_string(),
        since: None,
        until: None,
        checkpoint,
        records,
    }
}

/// What to do to a genuine receipt.
#[derive(Debug, Clone)]
pub enum ReceiptChange {
    None,
    LeafIndex(usize, u64),
    Prev(usize, Option<u64>),
    SaltByte(usize, usize),
    RecordText(usize, String),
    ProofHash(usize, usize),
    DropRecord(usize),
    SwapRecords(usize, usize),
    CheckpointByte(usize),
    Domain(String),
}

#[derive(Debug, Clone)]
pub enum ReceiptInput {
    /// JSON text, read as a receipt when it is one.
    Json(String),
    /// A genuine receipt, changed.
    Genuine { hosts: Vec<String>, change: ReceiptChange },
    /// A signed checkpoint of any size and root, with records of any index and proof.
    Forged { size: u64, root: [u8; 32], records: Vec<(u64, Option<u64>, Vec<[u8; 32]>)> },
}

#[derive(Debug, Clone)]
pub struct ReceiptCase {
    pub input: ReceiptInput,
}

impl ReceiptCase {
    pub fn from_bytes(data: &[u8]) -> Self {
        Self { input: ReceiptInput::Json(String::from_utf8_lossy(data).into_owned()) }
    }
}

/// Receipts: verifying any JSON never panics and never passes without a valid checkpoint; a
/// genuine receipt verifies; any change to it (an index, a link, a salt, a record, a proof
/// hash, a dropped or reordered record, the checkpoint) fails; checkpoints of any size and
/// proofs of any shape reach `tlog_tiles` only in the ranges it accepts.
pub fn check_receipt(case: &ReceiptCase) {
    let signer = NoteSigner::new(LOG, SigningKey::from_bytes(&[9; 32])).expect("valid name");
    let verifier = NoteVerifier::parse(&signer.verifier_key()).expect("own key");
    let report_of = |receipt: &Receipt| {
        let report = verify_receipt(&verifier, receipt);
        assert!(report.checks.len() >= 4, "format, checkpoint, leaf order and summary are always checked");
        if report.ok() {
            assert!(verify_checkpoint(&verifier, &receipt.checkpoint).is_ok());
        }
        report
    };
    match &case.input {
        ReceiptInput::Json(text) => {
            if let Ok(receipt) = serde_json::from_str::<Receipt>(text) {
                let _ = report_of(&receipt);
            }
            let _ = verify_checkpoint(&verifier, text);
        }
        ReceiptInput::Forged { size, root, records } => {
            let text = match Checkpoint::new(LOG, *size, Hash(*root), "") {
                Ok(c) => String::from_utf8(c.to_bytes()).expect("ASCII"),
                Err(_) => return,
            };
            let checkpoint = signer.sign(&text).expect("signs");
            let receipt = Receipt {
                format: RECEIPT_FORMAT.to_string(),
                domain: "example.org".to_string(),
                since: None,
                until: None,
                checkpoint,
                records: records
                    .iter()
                    .map(|(leaf, prev, proof)| ReceiptRecord {
                        leaf_index: *leaf,
                        prev_leaf_index: *prev,
                        salt: STANDARD.encode([1u8; 32]),
                        record: r#"{"request_id":"x","host":"example.org"}"#.to_string(),
                        inclusion_proof: proof.iter().map(|h| STANDARD.encode(h)).collect(),
                    })
                    .collect(),
            };
            let report = report_of(&receipt);
            assert!(!report.ok() || receipt.records.is_empty() || *size == 1, "a forged receipt verified");
        }
        ReceiptInput::Genuine { hosts, change } => {
            let mut receipt = genuine_receipt(&signer, hosts);
            let original = receipt.clone();
            assert!(
                report_of(&receipt).ok(),
                "a genuine receipt fails: {:?}",
                report_of(&receipt).failures().collect::<Vec<_>>()
            );
            let n = receipt.records.len();
            let pick = |i: usize| (n > 0).then(|| i % n);
            match change {
                ReceiptChange::None => {}
                ReceiptChange::LeafIndex(i, to) => {
                    if let Some(i) = pick(*i) {
                        receipt.records[i].leaf_index = *to;
                    }
                }
                ReceiptChange::Prev(i, to) => {
                    if let Some(i) = pick(*i) {
                        receipt.records[i].prev_leaf_index = *to;
                    }
                }
                ReceiptChange::SaltByte(i, b) => {
                    if let Some(i) = pick(*i) {
                        let mut salt = STANDARD.decode(&receipt.records[i].salt).expect("own salt");
                        salt[b % 32] ^= 1;
                        receipt.records[i].salt = STANDARD.encode(salt);
                    }
                }
                ReceiptChange::RecordText(i, text) => {
                    if let Some(i) = pick(*i) {
                        receipt.records[i].record = text.clone();
                    }
                }
                ReceiptChange::ProofHash(i, h) => {
                    if let Some(i) = pick(*i) {
                        let proof = &mut receipt.records[i].inclusion_proof;
                        if !proof.is_empty() {
                            let at = h % proof.len();
                            let mut hash = STANDARD.decode(&proof[at]).expect("own hash");
                            hash[h % 32] ^= 0x80;
                            proof[at] = STANDARD.encode(hash);
                        }
                    }
                }
                ReceiptChange::DropRecord(i) => {
                    if let Some(i) = pick(*i) {
                        receipt.records.remove(i);
                    }
                }
                ReceiptChange::SwapRecords(i, j) => {
                    if let (Some(i), Some(j)) = (pick(*i), pick(*j)) {
                        receipt.records.swap(i, j);
                    }
                }
                ReceiptChange::CheckpointByte(at) => {
                    let mut bytes = receipt.checkpoint.clone().into_bytes();
                    let at = at % bytes.len();
                    bytes[at] ^= 0x01;
                    if let Ok(text) = String::from_utf8(bytes) {
                        receipt.checkpoint = text;
                    }
                }
                ReceiptChange::Domain(domain) => receipt.domain = domain.clone(),
            }
            let report = report_of(&receipt);
            // A receipt without records proves nothing about anyone: any change to it is moot.
            if receipt != original && !original.records.is_empty() {
                // Dropping the host's last record leaves a shorter, still true receipt; any
                // other change must be caught.
                let dropped_tail = matches!(change, ReceiptChange::DropRecord(_))
                    && receipt.records.iter().all(|r| original.records.contains(r));
                let harmless_domain = matches!(change, ReceiptChange::Domain(d) if d.trim_end_matches('.').eq_ignore_ascii_case("example.org") && !d.trim().is_empty());
                if report.ok() && !dropped_tail && !harmless_domain {
                    panic!("a changed receipt verified: {change:?}");
                }
            }
        }
    }
}

// === tile paths ===

#[derive(Debug, Clone)]
pub struct TilePathCase {
    pub text: String,
    pub tile: Option<(u8, u64, u32)>,
}

impl TilePathCase {
    pub fn from_bytes(data: &[u8]) -> Self {
        Self { text: String::from_utf8_lossy(data).into_owned(), tile: None }
    }
}

/// Hash tile paths: never panic; an accepted path is canonical (tlog_tiles writes it back
/// byte for byte and reads it as the same tile); every tile tlog_tiles can name below level 8
/// parses back to its coordinate.
pub fn check_tile_path(case: &TilePathCase) {
    if let Some(c) = parse_tile_path(&case.text) {
        assert!(c.level < 8 && (1..=256).contains(&c.width));
        let width = u32::try_from(c.width).expect("at most 256");
        let path = tlog_tiles::Tile::new(8, c.level, c.index, width, false).path();
        assert_eq!(path, format!("tile/8/{}", case.text), "an accepted path is not canonical");
        let tile = tlog_tiles::Tile::from_path(&path).expect("tlog_tiles reads its own path");
        assert_eq!((tile.level(), tile.level_index(), u64::from(tile.width())), (c.level, c.index, c.width));
    }
    if let Some((level, index, width)) = case.tile {
        let (level, width) = (level % 8, width % 256 + 1);
        let path = tlog_tiles::Tile::new(8, level, index, width, false).path();
        let c2sp = path.strip_prefix("tile/8/").expect("tlog_tiles path");
        assert_eq!(parse_tile_path(c2sp), Some(TileCoordinate { level, index, width: u64::from(width) }), "{c2sp}");
        let data = tlog_tiles::Tile::new(8, 0, index, width, true).path();
        assert_eq!(parse_tile_path(data.strip_prefix("tile/8/").expect("prefix")), None, "{data}");
    }
}

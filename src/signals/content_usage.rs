//! IETF aipref `Content-Usage`: the HTTP response field and the robots.txt rule.
//!
//! Follows draft-ietf-aipref-vocab-07 (labels, processing algorithm, combining) and
//! draft-ietf-aipref-attach-05 (the `Content-Usage` field and the robots.txt rule), as summarised
//! in SIGNALS.md §5 and chosen in DESIGN §4 ("Other signals"):
//! - the value is an RFC 9651 Dictionary, parsed with `sfv`; several field lines are joined with
//!   `", "` first (RFC 9110 field combination); **any** parse failure (including an uppercase key)
//!   makes every preference unknown, and the failure is recorded;
//! - only the vocab-07 labels `train-ai` (→ [`Purpose::AiTrain`]) and `search`
//!   (→ [`Purpose::Search`]) count; Token `y` allows, Token `n` disallows, anything else
//!   (strings, booleans, other tokens, inner lists) is unknown; parameters are disregarded;
//!   duplicate keys keep the last value (RFC 9651 §4.2.2);
//! - unknown labels are recorded and ignored; the legacy labels of earlier drafts (SIGNALS.md §5.3)
//!   are unknown unless `legacy` is set (`signals.aipref_legacy`), in which case `=n` on `ai`,
//!   `genai`, `tdm`, `all`, `train-genai` or `bots` is read as `train-ai=n` (and recorded);
//! - robots.txt rules (`Content-Usage: [path] dictionary`) select by longest path (octets of the
//!   encoded path; no path = length 0) and identical paths combine most-restrictively. They apply
//!   only to crawlable paths: the caller checks Allow/Disallow first.

use super::pattern::{PathPattern, longest_matches, split_path_scope};
use super::prefs::Prefs;
use crate::decide::Purpose;

/// Labels of earlier drafts whose `=n` implies "no AI training" (SIGNALS.md §5.3), with the
/// drafts they come from; read only when `legacy` is set.
const LEGACY_TRAINING_LABELS: &[(&str, &str)] = &[
    ("ai", "vocab-01"),
    ("genai", "vocab-01"),
    ("tdm", "vocab-01"),
    ("all", "vocab-02"),
    ("train-genai", "vocab-02/03"),
    ("bots", "vocab-03/04"),
];

/// Labels of earlier drafts with no training meaning: recorded, never mapped.
const LEGACY_OTHER_LABELS: &[&str] = &["inference", "ai-use", "ai-output"];

/// One parsed `Content-Usage` value (a header, or the preference part of a robots.txt rule).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContentUsage {
    /// The value as parsed (field lines joined with `", "`), decoded lossily for display.
    pub raw: String,
    /// `train-ai`: `Some(false)` = disallowed.
    pub train_ai: Option<bool>,
    /// `search`: `Some(false)` = disallowed.
    pub search: Option<bool>,
    /// What could not be understood (parse failure, unknown labels, non-token values, ...).
    pub problems: Vec<String>,
}

impl ContentUsage {
    /// Parses the field lines of one response (each a header value, in order).
    pub fn parse_field_lines<I, B>(lines: I, legacy: bool) -> Self
    where
        I: IntoIterator<Item = B>,
        B: AsRef<[u8]>,
    {
        let mut joined = Vec::new();
        for (i, line) in lines.into_iter().enumerate() {
            if i > 0 {
                joined.extend_from_slice(b", ");
            }
            joined.extend_from_slice(line.as_ref());
        }
        Self::parse(&joined, legacy)
    }

    /// Parses one value per the vocab-07 processing algorithm.
    pub fn parse(value: &[u8], legacy: bool) -> Self {
        let mut out = ContentUsage { raw: String::from_utf8_lossy(value).into_owned(), ..Self::default() };
        match sfv::Parser::new(value).parse_dictionary::<sfv::Dictionary>() {
            Ok(dict) => {
                for (key, entry) in &dict {
                    out.apply_member(key.as_str(), entry, legacy);
                }
            }
            // vocab-07: "If the parsing of the Dictionary fails, preferences are unknown."
            Err(e) => out.problems.push(format!("not an RFC 9651 dictionary ({e}): all preferences unknown")),
        }
        out
    }

    fn apply_member(&mut self, key: &str, entry: &sfv::ListEntry, legacy: bool) {
        let value = token_value(entry);
        match key {
            "train-ai" => {
                let v = self.checked(key, entry, value);
                // Keys are unique, but a legacy label seen earlier may already have disallowed.
                if self.train_ai != Some(false) {
                    self.train_ai = v;
                }
            }
            "search" => self.search = self.checked(key, entry, value),
            _ => self.apply_other_label(key, value, legacy),
        }
    }

    /// A known label's value, recording why it is unknown when it is neither `y` nor `n`.
    fn checked(&mut self, key: &str, entry: &sfv::ListEntry, value: Option<bool>) -> Option<bool> {
        if value.is_none() {
            self.problems.push(format!("`{key}`: value {} is not the token y or n: unknown", describe(entry)));
        }
        value
    }

    fn apply_other_label(&mut self, key: &str, value: Option<bool>, legacy: bool) {
        if let Some((_, draft)) = LEGACY_TRAINING_LABELS.iter().find(|(l, _)| *l == key) {
            if legacy && value == Some(false) {
                // Most restrictive: a legacy `n` can only add a disallow, whatever `train-ai` says.
                self.train_ai = Some(false);
                self.problems.push(format!("legacy label `{key}` (aipref {draft}): `{key}=n` read as train-ai=n"));
            } else {
                self.problems.push(format!("legacy label `{key}` (aipref {draft}) ignored: unknown"));
            }
        } else if LEGACY_OTHER_LABELS.contains(&key) {
            self.problems.push(format!("legacy label `{key}` ignored: unknown"));
        } else {
            self.problems.push(format!("unknown label `{key}` ignored"));
        }
    }

    /// The per-purpose reading (DESIGN §3): `train-ai` → ai-train, `search` → search.
    pub fn prefs(&self) -> Prefs {
        let mut p = Prefs::UNKNOWN;
        if let Some(v) = self.train_ai {
            p.restrict(Purpose::AiTrain, v);
        }
        if let Some(v) = self.search {
            p.restrict(Purpose::Search, v);
        }
        p
    }
}

/// `y` → allow, `n` → disallow, anything else unknown (parameters disregarded).
fn token_value(entry: &sfv::ListEntry) -> Option<bool> {
    let sfv::ListEntry::Item(item) = entry else {
        return None;
    };
    match item.bare_item.as_token().map(|t| t.as_str()) {
        Some("y") => Some(true),
        Some("n") => Some(false),
        _ => None,
    }
}

/// A short description of a member value for problem messages.
fn describe(entry: &sfv::ListEntry) -> String {
    let item = match entry {
        sfv::ListEntry::Item(item) => item,
        sfv::ListEntry::InnerList(_) => return "(an inner list)".to_string(),
    };
    match &item.bare_item {
        sfv::BareItem::Token(t) => format!("token `{}`", t.as_str()),
        sfv::BareItem::String(s) => format!("string \"{}\"", s.as_str()),
        sfv::BareItem::Boolean(b) => format!("boolean {b}"),
        sfv::BareItem::Integer(_) | sfv::BareItem::Decimal(_) => "(a number)".to_string(),
        _ => "(not a token)".to_string(),
    }
}

// === robots.txt rules ===

/// One `Content-Usage:` line of a robots.txt group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentUsageRule {
    /// The optional path scope; `None` applies to every path (length 0).
    pub path: Option<PathPattern>,
    /// The preference part, parsed.
    pub usage: ContentUsage,
    /// 1-based line in robots.txt.
    pub line: u32,
}

/// The `Content-Usage` rules of the robots.txt group selected for the crawler.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContentUsageRules {
    pub rules: Vec<ContentUsageRule>,
}

/// The rules deciding for one path and their combined reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentUsageMatch<'a> {
    /// Most-restrictive combination of the deciding rules.
    pub prefs: Prefs,
    /// The longest-path rules (several only when their paths tie).
    pub rules: Vec<&'a ContentUsageRule>,
}

impl ContentUsageRules {
    /// Parses `(value, line)` pairs of the group's `Content-Usage` extension lines.
    pub fn parse<I, S>(lines: I, legacy: bool) -> Self
    where
        I: IntoIterator<Item = (S, u32)>,
        S: AsRef<str>,
    {
        let rules = lines.into_iter().map(|(value, line)| parse_rule(value.as_ref(), line, legacy)).collect();
        Self { rules }
    }

    /// What the rules say for a path (plus query); `None` when no rule matches.
    pub fn evaluate(&self, path_and_query: &str) -> Option<ContentUsageMatch<'_>> {
        let rules = longest_matches(&self.rules, path_and_query, |r| r.path.as_ref());
        if rules.is_empty() {
            return None;
        }
        let prefs = rules.iter().fold(Prefs::UNKNOWN, |acc, r| acc.combine(r.usage.prefs()));
        Some(ContentUsageMatch { prefs, rules })
    }

    /// Every problem, with the line it was found on.
    pub fn problems(&self) -> Vec<(u32, &str)> {
        self.rules.iter().flat_map(|r| r.usage.problems.iter().map(move |p| (r.line, p.as_str()))).collect()
    }
}

fn parse_rule(value: &str, line: u32, legacy: bool) -> ContentUsageRule {
    // attach-05: the rule value ends at the first `#` (a comment).
    let value = value.split('#').next().unwrap_or_default();
    let (path, prefs) = split_path_scope(value);
    ContentUsageRule { path: path.map(PathPattern::new), usage: ContentUsage::parse(prefs.as_bytes(), legacy), line }
}

#[cfg(test)]
#[path = "content_usage/tests.rs"]
mod tests;

//! Cloudflare Content Signals Policy: `Content-Signal:` in robots.txt groups and as a response
//! header (Cloudflare "Markdown for Agents").
//!
//! Follows SIGNALS.md §6 (Cloudflare `managed-robots-txt.mdx`, draft-romm-aipref-contentsignals)
//! and DESIGN §3/§4:
//! - the value is a comma-separated list of `signal=value` pairs; `search` → [`Purpose::Search`],
//!   `ai-input` → [`Purpose::AiInput`], `ai-train` → [`Purpose::AiTrain`]; `yes` allows, `no`
//!   disallows; values (and, leniently, keys) are case-insensitive; a missing signal "neither
//!   grants nor restricts" (unknown);
//! - unknown keys (including the reported `use=` extension) and bad values are recorded and
//!   ignored; a signal repeated in one value combines most-restrictively (unspecified upstream);
//! - in robots.txt an optional leading path (`Content-Signal: /blog/ ai-train=no`) scopes the
//!   line; the longest matching path wins and identical paths combine most-restrictively (the
//!   aipref rule, which SIGNALS.md recommends). Lines from several groups for the same token (the
//!   Cloudflare managed file's two `*` groups) are simply passed in together. Signals apply only
//!   to crawlable paths: the caller checks Allow/Disallow first.

use super::pattern::{PathPattern, longest_matches, split_path_scope};
use super::prefs::Prefs;
use crate::decide::Purpose;

/// One parsed `Content-Signal` value.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContentSignal {
    /// The value as written (header lines joined with `", "`).
    pub raw: String,
    /// `search`, `ai-input`, `ai-train` mapped to purposes.
    pub prefs: Prefs,
    /// What could not be understood.
    pub problems: Vec<String>,
}

impl ContentSignal {
    /// Parses a value: `search=yes, ai-train=no`.
    pub fn parse(value: &str) -> Self {
        let mut out = ContentSignal { raw: value.to_string(), ..Self::default() };
        let mut seen: Vec<Purpose> = Vec::new();
        for pair in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            out.apply_pair(pair, &mut seen);
        }
        out
    }

    /// Parses the field lines of one response (`Content-Signal` header, in order).
    pub fn parse_field_lines<I, S>(lines: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let joined: Vec<String> = lines.into_iter().map(|l| l.as_ref().to_string()).collect();
        Self::parse(&joined.join(", "))
    }

    fn apply_pair(&mut self, pair: &str, seen: &mut Vec<Purpose>) {
        let Some((key, value)) = pair.split_once('=') else {
            self.problems.push(format!("`{pair}` is not signal=value: ignored"));
            return;
        };
        let (key, value) = (key.trim().to_ascii_lowercase(), value.trim());
        let Some(purpose) = purpose_of(&key) else {
            self.problems.push(format!("unknown signal `{key}` ignored"));
            return;
        };
        let allowed = match value.to_ascii_lowercase().as_str() {
            "yes" => true,
            "no" => false,
            _ => {
                self.problems.push(format!("`{key}`: value `{value}` is neither yes nor no: unknown"));
                return;
            }
        };
        if seen.contains(&purpose) {
            self.problems.push(format!("`{key}` given twice: the most restrictive value applies"));
        }
        seen.push(purpose);
        self.prefs.restrict(purpose, allowed);
    }
}

/// The DESIGN §3 mapping of Content Signals to purposes.
fn purpose_of(key: &str) -> Option<Purpose> {
    match key {
        "search" => Some(Purpose::Search),
        "ai-input" => Some(Purpose::AiInput),
        "ai-train" => Some(Purpose::AiTrain),
        _ => None,
    }
}

// === robots.txt rules ===

/// One `Content-Signal:` line of a robots.txt group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentSignalRule {
    /// The optional path scope; `None` applies to every path.
    pub path: Option<PathPattern>,
    pub signal: ContentSignal,
    /// 1-based line in robots.txt.
    pub line: u32,
}

/// The `Content-Signal` lines of the robots.txt group(s) selected for the crawler.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContentSignalRules {
    pub rules: Vec<ContentSignalRule>,
}

/// The deciding rules for one path and their combined reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentSignalMatch<'a> {
    pub prefs: Prefs,
    /// The longest-path rules (several only when their paths tie).
    pub rules: Vec<&'a ContentSignalRule>,
}

impl ContentSignalRules {
    /// Parses `(value, line)` pairs of the group's `Content-Signal` extension lines.
    pub fn parse<I, S>(lines: I) -> Self
    where
        I: IntoIterator<Item = (S, u32)>,
        S: AsRef<str>,
    {
        let rules = lines.into_iter().map(|(v, line)| parse_rule(v.as_ref(), line)).collect();
        Self { rules }
    }

    /// What the rules say for a path (plus query); `None` when no rule matches.
    pub fn evaluate(&self, path_and_query: &str) -> Option<ContentSignalMatch<'_>> {
        let rules = longest_matches(&self.rules, path_and_query, |r| r.path.as_ref());
        if rules.is_empty() {
            return None;
        }
        let prefs = rules.iter().fold(Prefs::UNKNOWN, |acc, r| acc.combine(r.signal.prefs));
        Some(ContentSignalMatch { prefs, rules })
    }

    /// Every problem, with the line it was found on.
    pub fn problems(&self) -> Vec<(u32, &str)> {
        self.rules.iter().flat_map(|r| r.signal.problems.iter().map(move |p| (r.line, p.as_str()))).collect()
    }
}

fn parse_rule(value: &str, line: u32) -> ContentSignalRule {
    // As for other robots.txt records, a `#` starts a comment.
    let value = value.split('#').next().unwrap_or_default();
    let (path, signals) = split_path_scope(value);
    ContentSignalRule { path: path.map(PathPattern::new), signal: ContentSignal::parse(signals), line }
}

#[cfg(test)]
#[path = "content_signal/tests.rs"]
mod tests;

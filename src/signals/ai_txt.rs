//! Spawning `ai.txt` (`/ai.txt`): a robots.txt-like file saying which media may be used in AI
//! training datasets.
//!
//! Follows SIGNALS.md §2 (no formal spec exists; the generator output is the reference) and
//! DESIGN §3:
//! - robots.txt grammar: `User-Agent` lines start a group, `Allow`/`Disallow` rules follow; keys
//!   case-insensitive; `#` comments; groups for the same token merge; a specific group replaces
//!   `*`; rules before any group are ignored (RFC 9309 §2.2.1–§2.2.2);
//! - rules are robots.txt path patterns, which is why `*.jpg` matches anywhere in the path (the
//!   leading `*` eats the `/`), also in `/a.jpg?x=1` and `/a.jpgfoo` (there is no implicit `$`);
//!   a pattern that starts with neither `/` nor `*` (`.pdf`) is read as `*`-prefixed, recorded;
//! - longest pattern wins, a tie goes to Allow; a matching Disallow disallows ai-train only;
//! - only files with robots-style `User-Agent`/`Allow`/`Disallow` lines are Spawning ai.txt (the
//!   name is shared with unrelated proposals): anything else is no signal, recorded.

use super::pattern::{PathPattern, normalize_path};
use super::prefs::Prefs;
use crate::decide::Purpose;

/// Bytes of the file that are read; like robots.txt (RFC 9309 §2.5 minimum).
pub const MAX_BYTES: usize = 512_000;

/// One Allow/Disallow rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AiTxtRule {
    pub allow: bool,
    pub pattern: PathPattern,
    /// 1-based line.
    pub line: u32,
}

impl AiTxtRule {
    /// The rule as written, e.g. `Disallow: *.jpg`.
    pub fn text(&self) -> String {
        format!("{}: {}", if self.allow { "Allow" } else { "Disallow" }, self.pattern.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Group {
    tokens: Vec<String>,
    rules: Vec<AiTxtRule>,
}

/// A parsed `ai.txt`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AiTxt {
    groups: Vec<Group>,
    /// False when the file is not in Spawning's robots-like format: then it gives no signal.
    pub recognized: bool,
    /// Lines not understood, and the reason when the file is not recognised.
    pub problems: Vec<(u32, String)>,
}

/// The outcome for one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AiTxtMatch<'a> {
    /// True when the deciding rule is a Disallow.
    pub disallowed: bool,
    /// The deciding rule; `None` when no rule matched (no signal).
    pub rule: Option<&'a AiTxtRule>,
    /// The group token that was used (`*` or the crawler's token as written in the file).
    pub group: Option<&'a str>,
}

impl AiTxtMatch<'_> {
    /// DESIGN §3: a Disallow matching the path disallows ai-train; an Allow allows it.
    pub fn prefs(&self) -> Prefs {
        match self.rule {
            None => Prefs::UNKNOWN,
            Some(_) => Prefs::UNKNOWN.with(Purpose::AiTrain, !self.disallowed),
        }
    }
}

impl AiTxt {
    /// Parses the file body (first [`MAX_BYTES`] bytes, BOM skipped, UTF-8 decoded lossily).
    pub fn parse(body: &[u8]) -> Self {
        let body = &body[..body.len().min(MAX_BYTES)];
        let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
        let text = String::from_utf8_lossy(body);
        let mut out = AiTxt::default();
        let mut in_rules = true;
        for (i, line) in text.lines().enumerate() {
            let line_no = u32::try_from(i + 1).unwrap_or(u32::MAX);
            out.parse_line(line, line_no, &mut in_rules);
        }
        if !out.recognized {
            out.problems.push((1, "no User-Agent/Allow/Disallow lines: not a Spawning ai.txt, no signal".to_string()));
        }
        out
    }

    fn parse_line(&mut self, line: &str, line_no: u32, in_rules: &mut bool) {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            return;
        }
        let Some((key, value)) = line.split_once(':') else {
            self.problems.push((line_no, format!("`{line}` is not `key: value`: ignored")));
            return;
        };
        let value = value.trim();
        match key.trim().to_ascii_lowercase().as_str() {
            "user-agent" | "useragent" | "user agent" => {
                self.recognized = true;
                if *in_rules || self.groups.is_empty() {
                    self.groups.push(Group::default());
                }
                *in_rules = false;
                if let Some(g) = self.groups.last_mut() {
                    g.tokens.push(product_token(value).to_string());
                }
            }
            k @ ("allow" | "disallow") => {
                self.recognized = true;
                *in_rules = true;
                self.push_rule(k == "allow", value, line_no);
            }
            other => self.problems.push((line_no, format!("unknown key `{other}` ignored"))),
        }
    }

    fn push_rule(&mut self, allow: bool, value: &str, line_no: u32) {
        if value.is_empty() {
            return; // An empty pattern matches nothing (RFC 9309).
        }
        let Some(group) = self.groups.last_mut() else {
            self.problems.push((line_no, "rule before any User-Agent line: ignored".to_string()));
            return;
        };
        let pattern = if value.starts_with('/') || value.starts_with('*') {
            PathPattern::new(value)
        } else {
            self.problems.push((line_no, format!("pattern `{value}` read as `*{value}`")));
            PathPattern::new(&format!("*{value}"))
        };
        group.rules.push(AiTxtRule { allow, pattern, line: line_no });
    }

    /// The outcome for a path (plus query) and a crawler with these tokens: the groups of any
    /// matching token merged, else the `*` groups; longest pattern wins, a tie goes to Allow.
    pub fn check<'a>(&'a self, tokens: &[&str], path_and_query: &str) -> AiTxtMatch<'a> {
        let none = AiTxtMatch { disallowed: false, rule: None, group: None };
        if !self.recognized {
            return none;
        }
        let specific: Vec<(&Group, &str)> = self.groups_for(|t| tokens.iter().any(|k| k.eq_ignore_ascii_case(t)));
        let groups = if specific.is_empty() { self.groups_for(|t| t == "*") } else { specific };
        let path = normalize_path(path_and_query);
        let best = groups
            .iter()
            .flat_map(|(g, token)| g.rules.iter().map(move |r| (r, *token)))
            .filter(|(r, _)| r.pattern.matches_normalized_path(&path))
            .fold(None, |best: Option<(&AiTxtRule, &str)>, cand| match best {
                // Keep the first of equally ranked rules, so the reported line is stable.
                Some(b) if rank(b.0) >= rank(cand.0) => Some(b),
                _ => Some(cand),
            });
        match best {
            None => AiTxtMatch { group: groups.first().map(|(_, t)| *t), ..none },
            Some((rule, token)) => AiTxtMatch { disallowed: !rule.allow, rule: Some(rule), group: Some(token) },
        }
    }

    fn groups_for(&self, wanted: impl Fn(&str) -> bool) -> Vec<(&Group, &str)> {
        self.groups.iter().filter_map(|g| g.tokens.iter().find(|t| wanted(t)).map(|t| (g, t.as_str()))).collect()
    }
}

/// Longest pattern first; on a tie Allow outranks Disallow (RFC 9309 §2.2.2).
fn rank(rule: &AiTxtRule) -> (usize, bool) {
    (rule.pattern.specificity(), rule.allow)
}

/// The product token of a User-Agent value: up to the first whitespace or `/` (DESIGN §4).
fn product_token(value: &str) -> &str {
    value.split(|c: char| c.is_whitespace() || c == '/').next().unwrap_or_default()
}

#[cfg(test)]
#[path = "ai_txt/tests.rs"]
mod tests;

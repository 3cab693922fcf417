//! robots.txt (RFC 9309): a pure parser and a compiled matcher, built once per fetch and asked
//! "may crawler `token` fetch this path?" for every request to the origin.
//!
//! Consentry's profile (DESIGN.md §4): RFC 9309 first, leniency only where it can never invent
//! an allow.
//! - Parsing: the first `max_bytes` bytes, a UTF-8 BOM skipped, invalid UTF-8 decoded lossily;
//!   lines split and keys read by the `robotstxt` crate's parser (typos such as `dissallow` and a
//!   missing colon accepted), behind a sanitiser that keeps it from panicking (see `parse`).
//! - Groups: consecutive `User-agent` lines share a group, which ends at the next `User-agent`
//!   line after a rule; other lines (`Sitemap`, `Crawl-delay`, `Content-Usage`, unknown keys)
//!   never end a group. Rules before the first `User-agent` line are ignored. The product token
//!   is matched case-insensitively and exactly (`AI2Bot` is `AI2Bot`, never `AI`); groups for
//!   the same token merge; a token's own group replaces `*`; several `*` groups merge.
//! - Matching: the longest pattern (octets after normalisation, `*` and `$` included) wins, a tie
//!   goes to `Allow`; `*` and a final `$`; the path includes the query; `/robots.txt` is always
//!   allowed. Patterns and paths are compared under two readings, RFC 3986 normalisation and
//!   Google's literal one, and the verdict is disallow if either disallows (see `pattern`).
//!   No `index.html` leniency.
//!
//! No I/O, no clock, no logging: the policy side fetches and caches, the decision engine asks.

mod index;
mod parse;
mod pattern;
mod tokens;

#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use index::{Best, Index};
use parse::{AgentKey, Draft, GroupDraft, RuleDraft};
use pattern::{Pattern, View, normalise_path};

pub use tokens::token_list;

/// RFC 9309 §2.5 minimum parsing limit (500 KiB), our default `robots.max_bytes`.
pub const DEFAULT_MAX_BYTES: usize = 512_000;

/// A robots.txt compiled once per fetch. Cheap to clone (shared).
#[derive(Debug, Clone)]
pub struct RobotsTxt {
    inner: Arc<Compiled>,
}

/// A line the matcher does not interpret (`Content-Usage`, `Content-Signal`, `License`,
/// `Crawl-delay`, `Sitemap`, unknown keys), for the AI-signals stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtensionLine {
    /// The key as written, e.g. `Content-Usage`.
    pub key: String,
    /// The value, comment and surrounding whitespace removed.
    pub value: String,
    /// 1-based line number in the body.
    pub line: u32,
}

/// Size of the parsed file, for logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RobotsStats {
    /// Groups as written (before merging groups of the same token).
    pub groups: usize,
    /// Effective `Allow`/`Disallow` rules inside groups (empty patterns not counted).
    pub rules: usize,
}

/// The verdict for one path and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RobotsMatch {
    pub allowed: bool,
    /// Which group decided: the token as written on its `User-agent` line(s) (e.g. "GPTBot" or
    /// "*"), and the line of the first such `User-agent` line; `None` when no group applied
    /// (allow), and for `/robots.txt` itself.
    pub group: Option<GroupRef>,
    /// The rule that decided; `None` when no rule matched (allow), or for `/robots.txt` itself.
    pub rule: Option<MatchedRule>,
}

/// A group, named by the token it was selected for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRef {
    pub token: String,
    pub line: u32,
}

/// The rule that decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchedRule {
    pub allow: bool,
    /// e.g. "Disallow: /private": the key normalised to "Allow"/"Disallow", the pattern as
    /// written.
    pub text: String,
    pub line: u32,
}

#[derive(Debug, Default)]
struct Compiled {
    /// Lower-cased product token -> its merged groups.
    specific: HashMap<String, Selection>,
    star: Option<Selection>,
    sets: Vec<RuleSet>,
    global_extensions: Vec<ExtensionLine>,
    stats: RobotsStats,
}

/// What a token selects: the group reference to report and the merged rule set.
#[derive(Debug, Clone)]
struct Selection {
    group: GroupRef,
    set: usize,
}

/// The merged rules and extension lines of the groups one token selects.
#[derive(Debug, Default)]
struct RuleSet {
    rules: Vec<Rule>,
    normalised: Index,
    /// Only when some pattern reads differently literally; otherwise `normalised` serves both.
    literal: Option<Index>,
    extensions: Vec<ExtensionLine>,
    crawl_delay: Option<(f64, u32)>,
}

#[derive(Debug)]
struct Rule {
    allow: bool,
    text: String,
    line: u32,
}

impl RobotsTxt {
    /// Parses `body` as fetched: only the first `max_bytes` bytes are used (DESIGN: default
    /// [`DEFAULT_MAX_BYTES`]), a UTF-8 BOM is skipped, invalid UTF-8 decoded lossily. Never
    /// panics.
    pub fn parse(body: &[u8], max_bytes: usize) -> Self {
        Self { inner: Arc::new(Compiled::new(parse::parse(body, max_bytes))) }
    }

    /// An empty rule set (allow all): used for 4xx.
    pub fn allow_all() -> Self {
        Self { inner: Arc::new(Compiled::default()) }
    }

    /// The verdict for `token` (the crawler's own product token) on `path_and_query` (the request
    /// target as sent, starting with '/', may contain a query, raw non-ASCII or
    /// percent-encoding). Uses the token's own group(s) if any (case-insensitive, merged), else
    /// the `*` group(s), else allows.
    pub fn check(&self, token: &str, path_and_query: &str) -> RobotsMatch {
        self.inner.decide(self.inner.select(token), path_and_query)
    }

    /// Like [`check`](Self::check), but only when `token` has a group of its own (never falls
    /// back to `*`): used for honoured extra tokens such as GPTBot or Google-Extended, so a
    /// crawler honouring them is not judged twice by `*`.
    pub fn check_specific(&self, token: &str, path_and_query: &str) -> Option<RobotsMatch> {
        let selection = self.inner.specific(token)?;
        Some(self.inner.decide(Some(selection), path_and_query))
    }

    /// `Crawl-delay` of the group that applies to `token` (same selection as `check`): seconds
    /// (fractional allowed) and line. Invalid values are ignored; of several, the largest wins
    /// (never crawl faster than any line asks).
    pub fn crawl_delay(&self, token: &str) -> Option<(f64, u32)> {
        self.inner.select(token).and_then(|s| self.inner.sets.get(s.set)?.crawl_delay)
    }

    /// Lines the matcher does not interpret (e.g. Content-Usage, Content-Signal, License,
    /// Crawl-delay, Sitemap, unknown keys) in the group that applies to `token` (same selection
    /// as `check`), in line order.
    pub fn group_extensions(&self, token: &str) -> Vec<ExtensionLine> {
        self.inner
            .select(token)
            .and_then(|s| self.inner.sets.get(s.set))
            .map(|set| set.extensions.clone())
            .unwrap_or_default()
    }

    /// Lines outside any group (before the first `User-agent` line, e.g. a global `License:` or
    /// `Sitemap:`), with line numbers.
    pub fn global_extensions(&self) -> &[ExtensionLine] {
        &self.inner.global_extensions
    }

    /// Number of groups and rules (for logs/metrics).
    pub fn stats(&self) -> RobotsStats {
        self.inner.stats
    }
}

/// Whether `token` is a crawler product token we match: letters, digits, `-`, `_`, `.`. Anything
/// else (empty, spaces, `/`) has no group of its own and gets the `*` group.
fn is_valid_token(token: &str) -> bool {
    !token.is_empty() && token.chars().all(parse::is_token_char)
}

impl Compiled {
    fn new(draft: Draft) -> Self {
        let Draft { groups, globals } = draft;
        let mut compiled = Self {
            global_extensions: globals,
            stats: RobotsStats {
                groups: groups.len(),
                rules: groups.iter().flat_map(|g| &g.rules).filter(|r| effective_pattern(r).is_some()).count(),
            },
            ..Self::default()
        };
        let mut set_of: HashMap<Vec<usize>, usize> = HashMap::new();
        for (key, (group, members)) in tokens_to_groups(&groups) {
            let set = *set_of.entry(members).or_insert_with_key(|members| {
                compiled.sets.push(RuleSet::new(members.iter().filter_map(|&g| groups.get(g))));
                compiled.sets.len() - 1
            });
            let selection = Selection { group, set };
            match key {
                AgentKey::Star => compiled.star = Some(selection),
                AgentKey::Token(token) => {
                    compiled.specific.insert(token, selection);
                }
                AgentKey::Nobody => {}
            }
        }
        compiled
    }

    fn specific(&self, token: &str) -> Option<&Selection> {
        if !is_valid_token(token) {
            return None;
        }
        // Lower-case on the stack: this runs on every request.
        let mut buffer = [0_u8; 64];
        match buffer.get_mut(..token.len()) {
            Some(lower) => {
                lower.copy_from_slice(token.as_bytes());
                lower.make_ascii_lowercase();
                self.specific.get(std::str::from_utf8(lower).ok()?)
            }
            None => self.specific.get(&token.to_ascii_lowercase()),
        }
    }

    fn select(&self, token: &str) -> Option<&Selection> {
        self.specific(token).or(self.star.as_ref())
    }

    fn decide(&self, selection: Option<&Selection>, path_and_query: &str) -> RobotsMatch {
        let path = request_path(path_and_query);
        let normalised = normalise_path(&path, View::Normalised);
        // RFC 9309 §2.2.2: "The /robots.txt URI is implicitly allowed."
        let set = selection.and_then(|s| Some((s, self.sets.get(s.set)?)));
        let Some((selection, set)) = set.filter(|_| *normalised != *b"/robots.txt") else {
            return RobotsMatch { allowed: true, group: None, rule: None };
        };
        let best = set.best(&path, &normalised);
        RobotsMatch {
            allowed: best.is_none_or(|b| b.allow),
            group: Some(selection.group.clone()),
            rule: best.and_then(|b| set.rules.get(b.rule)).map(|rule| MatchedRule {
                allow: rule.allow,
                text: rule.text.clone(),
                line: rule.line,
            }),
        }
    }
}

/// For every group key: the reference to report (the first `User-agent` line naming it) and the
/// indices of all groups naming it, in file order.
fn tokens_to_groups(groups: &[GroupDraft]) -> HashMap<AgentKey, (GroupRef, Vec<usize>)> {
    let mut map: HashMap<AgentKey, (GroupRef, Vec<usize>)> = HashMap::new();
    for (index, group) in groups.iter().enumerate() {
        for agent in &group.agents {
            let (_, members) = map
                .entry(agent.key.clone())
                .or_insert_with(|| (GroupRef { token: agent.written.clone(), line: agent.line }, Vec::new()));
            if members.last() != Some(&index) {
                members.push(index);
            }
        }
    }
    map
}

/// The pattern a rule draft contributes, if any.
///
/// - An empty pattern matches nothing (RFC 9309 §2.2.2; `Disallow:` allows all).
/// - A pattern must start with `/` (RFC 9309 ABNF) or `*` (accepted by Google, common in the
///   wild). Otherwise: a `Disallow` is read as if it started with `/` (`Disallow: private/`
///   surely means `/private/`, and reading it so can only restrict), an `Allow` is ignored
///   (Google's matcher never matches it either; guessing could invent an allow).
/// - A line longer than the parser's line limit was cut: a cut `Disallow` pattern is a prefix of
///   the written one and matches more (restricts more), a cut `Allow` is dropped.
fn effective_pattern(rule: &RuleDraft) -> Option<Cow<'_, str>> {
    let pattern = rule.pattern.as_str();
    if pattern.is_empty() || (rule.allow && rule.truncated) {
        return None;
    }
    if pattern.starts_with(['/', '*']) {
        Some(Cow::Borrowed(pattern))
    } else if rule.allow {
        None
    } else {
        Some(Cow::Owned(format!("/{pattern}")))
    }
}

impl RuleSet {
    fn new<'a>(groups: impl Iterator<Item = &'a GroupDraft>) -> Self {
        let mut drafts: Vec<&RuleDraft> = Vec::new();
        let mut extensions: Vec<ExtensionLine> = Vec::new();
        for group in groups {
            drafts.extend(&group.rules);
            extensions.extend(group.extensions.iter().cloned());
        }
        drafts.sort_by_key(|r| r.line);
        extensions.sort_by_key(|e| e.line);

        let mut rules = Vec::new();
        let mut normalised = Vec::new();
        let mut literal = Vec::new();
        for draft in drafts {
            let Some(pattern) = effective_pattern(draft) else {
                continue;
            };
            let index = rules.len();
            normalised.push((Pattern::compile(&pattern, View::Normalised), draft.allow, index));
            literal.push((Pattern::compile(&pattern, View::Literal), draft.allow, index));
            let key = if draft.allow { "Allow" } else { "Disallow" };
            rules.push(Rule { allow: draft.allow, text: format!("{key}: {}", draft.pattern), line: draft.line });
        }
        let same = normalised.iter().zip(&literal).all(|(n, l)| n.0 == l.0);
        Self {
            rules,
            normalised: Index::new(normalised),
            literal: (!same).then(|| Index::new(literal)),
            crawl_delay: crawl_delay(&extensions),
            extensions,
        }
    }

    /// The deciding rule: under the normalised reading, and under the literal reading unless the
    /// first already disallows. Disallow if either reading disallows.
    fn best(&self, path: &[u8], normalised: &[u8]) -> Option<Best> {
        let by_normalised = self.normalised.best(normalised);
        if by_normalised.is_some_and(|b| !b.allow) {
            return by_normalised;
        }
        let literal_path = normalise_path(path, View::Literal);
        let by_literal = match &self.literal {
            Some(index) => index.best(&literal_path),
            None if *literal_path == *normalised => by_normalised,
            None => self.normalised.best(&literal_path),
        };
        if by_literal.is_some_and(|b| !b.allow) {
            return by_literal;
        }
        by_normalised.or(by_literal)
    }
}

/// The largest valid `Crawl-delay` among `extensions`, with its (first) line.
fn crawl_delay(extensions: &[ExtensionLine]) -> Option<(f64, u32)> {
    extensions
        .iter()
        .filter(|e| e.key.eq_ignore_ascii_case("crawl-delay"))
        .filter_map(|e| Some((parse_seconds(&e.value)?, e.line)))
        .fold(None, |best: Option<(f64, u32)>, (delay, line)| match best {
            Some((max, _)) if max >= delay => best,
            _ => Some((delay, line)),
        })
}

/// Non-negative decimal seconds: digits with at most one `.` (`10`, `0.5`, `.5`, `2.`). Rejects
/// signs, exponents, `inf`, `NaN` and anything else `f64::from_str` would accept.
fn parse_seconds(value: &str) -> Option<f64> {
    let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.len() + fraction.len() == 0 || !digits(whole) || !digits(fraction) {
        return None;
    }
    value.parse::<f64>().ok().filter(|d| d.is_finite())
}

/// The request target as matched: the fragment (never sent, but tolerated) removed, `/` added
/// when missing so the match starts at the first octet of the path.
fn request_path(path_and_query: &str) -> Cow<'_, [u8]> {
    let path = path_and_query.split_once('#').map_or(path_and_query, |(path, _)| path);
    if path.starts_with('/') { Cow::Borrowed(path.as_bytes()) } else { Cow::Owned([b"/", path.as_bytes()].concat()) }
}

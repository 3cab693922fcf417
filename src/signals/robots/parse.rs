//! From fetched bytes to groups: size cut, BOM, lossy UTF-8, a sanitiser that keeps the
//! `robotstxt` crate from panicking, and a [`RobotsParseHandler`] that builds the groups with
//! RFC 9309 group boundaries (only a rule ends a run of `User-agent` lines; other lines never
//! end a group).
//!
//! The crate is used for what it does well (line splitting, line numbers, key typos, a missing
//! colon). Values are re-read from our own copy of the line, because the crate rewrites rule
//! and extension values with an escaper that drops octets after a malformed `%`.

use robotstxt::parser::RobotsTxtParser;
use robotstxt::{RobotsParseHandler, parse_robotstxt};

use super::ExtensionLine;

/// Longest line handed to the crate, in bytes. The crate's own limit (16,663 bytes) counts the
/// skipped tail in characters, not bytes, and panics ("not a char boundary") on a longer line
/// with multi-byte characters (Folyd/robotstxt#5): cutting every line below it first makes that
/// branch unreachable. Google ignores the bytes past 16,664 on a line, so this loses nothing a
/// Google-compatible file relies on.
const MAX_LINE_BYTES: usize = 16_000;

const UTF8_BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

/// The file as groups, before compilation.
#[derive(Debug, Default)]
pub(super) struct Draft {
    pub(super) groups: Vec<GroupDraft>,
    /// Non-rule lines before the first `User-agent` line.
    pub(super) globals: Vec<ExtensionLine>,
}

#[derive(Debug, Default)]
pub(super) struct GroupDraft {
    pub(super) agents: Vec<Agent>,
    pub(super) rules: Vec<RuleDraft>,
    pub(super) extensions: Vec<ExtensionLine>,
}

/// One `User-agent` line.
#[derive(Debug)]
pub(super) struct Agent {
    pub(super) key: AgentKey,
    /// The product token as written (`*` for the global group).
    pub(super) written: String,
    pub(super) line: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum AgentKey {
    /// `*` (also `* anything`, as Google reads it).
    Star,
    /// A product token, lower-cased.
    Token(String),
    /// No usable product token (e.g. `User-agent: /foo`): the line still opens a group, which
    /// applies to nobody.
    Nobody,
}

/// One `Allow`/`Disallow` line inside a group.
#[derive(Debug)]
pub(super) struct RuleDraft {
    pub(super) allow: bool,
    /// The pattern as written (comment and surrounding whitespace removed).
    pub(super) pattern: String,
    pub(super) line: u32,
    /// The line was longer than [`MAX_LINE_BYTES`] and was cut.
    pub(super) truncated: bool,
}

/// Whether `c` may appear in a product token. RFC 9309 allows letters, `-` and `_`; real
/// crawlers also use digits and dots (`AI2Bot`, `bigsur.ai`), so we accept those too.
pub(super) fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

/// The group key of a `User-agent` value: `*` (alone or followed by whitespace), else the
/// product token: the value up to the first character that cannot be in a token (whitespace,
/// `/`, `*`, `(`, ...). `AI2Bot` stays `AI2Bot`; `Googlebot/2.1` is `Googlebot`; `foobot*` is
/// `foobot`.
pub(super) fn agent_key(value: &str) -> (AgentKey, String) {
    if let Some(after) = value.strip_prefix('*')
        && after.chars().next().is_none_or(char::is_whitespace)
    {
        return (AgentKey::Star, "*".to_owned());
    }
    let end = value.find(|c| !is_token_char(c)).unwrap_or(value.len());
    let token = value.get(..end).unwrap_or_default();
    if token.is_empty() {
        (AgentKey::Nobody, value.to_owned())
    } else {
        (AgentKey::Token(token.to_ascii_lowercase()), token.to_owned())
    }
}

/// One line of the sanitised text, as the crate numbers them.
struct Line<'a> {
    text: &'a str,
    truncated: bool,
}

/// Parses `body` as fetched into groups. Never panics.
pub(super) fn parse(body: &[u8], max_bytes: usize) -> Draft {
    let body = body.get(..max_bytes).unwrap_or(body);
    let text = String::from_utf8_lossy(skip_bom(body));
    let (sanitised, truncated) = sanitise(&text);
    let lines = split_lines(&sanitised, &truncated);
    let mut handler = Handler { lines: &lines, draft: Draft::default(), in_agent_lines: false };
    parse_robotstxt(&sanitised, &mut handler);
    handler.draft
}

/// Skips a UTF-8 byte order mark, or the start of one (the conformance suite expects a file
/// starting with a truncated BOM `EF BB` to parse, as Google does).
fn skip_bom(body: &[u8]) -> &[u8] {
    let skip = body.iter().zip(UTF8_BOM).take_while(|(b, bom)| **b == *bom).count();
    body.get(skip..).unwrap_or_default()
}

/// Cuts every line to at most [`MAX_LINE_BYTES`] bytes (at a character boundary), keeping the
/// line endings, so the crate numbers lines exactly as [`split_lines`] does. Returns the text and,
/// per line, whether it was cut.
fn sanitise(text: &str) -> (String, Vec<bool>) {
    let mut out = String::with_capacity(text.len());
    let mut truncated = Vec::new();
    let mut rest = text;
    loop {
        let end = rest.find(['\r', '\n']).unwrap_or(rest.len());
        let line = rest.get(..end).unwrap_or_default();
        let cut = floor_char_boundary(line, MAX_LINE_BYTES);
        out.push_str(line.get(..cut).unwrap_or_default());
        truncated.push(cut < line.len());
        let ending = line_ending(rest.get(end..).unwrap_or_default());
        if ending == 0 {
            return (out, truncated);
        }
        out.push_str(rest.get(end..end + ending).unwrap_or_default());
        rest = rest.get(end + ending..).unwrap_or_default();
    }
}

/// Length of the line ending at the start of `rest`: `\r\n`, `\r`, `\n`, or 0 at the end.
fn line_ending(rest: &str) -> usize {
    if rest.starts_with("\r\n") {
        2
    } else if rest.starts_with(['\r', '\n']) {
        1
    } else {
        0
    }
}

fn floor_char_boundary(s: &str, max: usize) -> usize {
    if s.len() <= max {
        return s.len();
    }
    (0..=max).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0)
}

/// The lines as the crate sees them: split at `\r\n`, `\r` or `\n`; the text after the last
/// line ending is a line too.
fn split_lines<'a>(text: &'a str, truncated: &[bool]) -> Vec<Line<'a>> {
    let mut lines = Vec::with_capacity(truncated.len());
    let mut rest = text;
    for (n, &cut) in truncated.iter().enumerate() {
        let end = rest.find(['\r', '\n']).unwrap_or(rest.len());
        let mut line = rest.get(..end).unwrap_or_default();
        if n == 0 {
            line = skip_crate_bom_chars(line);
        }
        lines.push(Line { text: line, truncated: cut });
        rest = rest.get(end + line_ending(rest.get(end..).unwrap_or_default())..).unwrap_or_default();
    }
    lines
}

/// The crate compares *characters* with the BOM bytes, so it skips a leading `ï`, `ï»` or
/// `ï»¿` (a BOM decoded as Latin-1 and re-encoded). Mirrored here so our copy of line 1 is the
/// one the crate parsed.
fn skip_crate_bom_chars(line: &str) -> &str {
    let mut rest = line;
    for c in ['\u{EF}', '\u{BB}', '\u{BF}'] {
        match rest.strip_prefix(c) {
            Some(after) => rest = after,
            None => break,
        }
    }
    rest
}

/// Keys the crate accepts as `Disallow` only because they *start with* `disallow`, but which
/// name a purpose signal, not a crawl rule (draft-canel-robots-ai-control). Kept as extensions.
const NOT_DISALLOW_RULES: [&str; 1] = ["disallowaitraining"];

/// The exact spellings the crate recognises for `allow` (it also accepts any longer key starting
/// with `allow`, such as `AllowAITraining`, which we never treat as an allow rule).
const ALLOW_KEYS: [&str; 1] = ["allow"];

struct Handler<'a> {
    lines: &'a [Line<'a>],
    draft: Draft,
    /// The last `User-agent` or rule line was a `User-agent` line: a following `User-agent` line
    /// joins the same group. Other lines leave this unchanged (they never end a group).
    in_agent_lines: bool,
}

impl Handler<'_> {
    fn line(&self, line_num: u32) -> Option<&Line<'_>> {
        let index = usize::try_from(line_num).ok()?.checked_sub(1)?;
        self.lines.get(index)
    }

    /// Key and value of line `line_num` as written (the crate's split, our unescaped text).
    fn key_value(&self, line_num: u32) -> Option<(String, String)> {
        let line = self.line(line_num)?;
        match RobotsTxtParser::<Self>::parse_key_value(line.text) {
            (key, value, true) => Some((key.to_owned(), value.to_owned())),
            _ => None,
        }
    }

    fn extension(&mut self, line_num: u32) {
        let Some((key, value)) = self.key_value(line_num) else {
            return;
        };
        let extension = ExtensionLine { key, value, line: line_num };
        match self.draft.groups.last_mut() {
            Some(group) => group.extensions.push(extension),
            None => self.draft.globals.push(extension),
        }
    }

    fn rule(&mut self, line_num: u32, allow: bool) {
        let Some((key, pattern)) = self.key_value(line_num) else {
            return;
        };
        let key = key.to_ascii_lowercase();
        let not_a_rule =
            if allow { !ALLOW_KEYS.contains(&key.as_str()) } else { NOT_DISALLOW_RULES.contains(&key.as_str()) };
        if not_a_rule {
            return self.extension(line_num);
        }
        let truncated = self.line(line_num).is_some_and(|l| l.truncated);
        // Rules before the first `User-agent` line belong to no group: ignored (RFC 9309 §2.2.2).
        if let Some(group) = self.draft.groups.last_mut() {
            group.rules.push(RuleDraft { allow, pattern, line: line_num, truncated });
            self.in_agent_lines = false;
        }
    }
}

impl RobotsParseHandler for Handler<'_> {
    fn handle_robots_start(&mut self) {}

    fn handle_robots_end(&mut self) {}

    fn handle_user_agent(&mut self, line_num: u32, user_agent: &str) {
        if !self.in_agent_lines || self.draft.groups.is_empty() {
            self.draft.groups.push(GroupDraft::default());
        }
        self.in_agent_lines = true;
        let (key, written) = agent_key(user_agent);
        if let Some(group) = self.draft.groups.last_mut() {
            group.agents.push(Agent { key, written, line: line_num });
        }
    }

    fn handle_allow(&mut self, line_num: u32, _escaped: &str) {
        self.rule(line_num, true);
    }

    fn handle_disallow(&mut self, line_num: u32, _escaped: &str) {
        self.rule(line_num, false);
    }

    fn handle_sitemap(&mut self, line_num: u32, _value: &str) {
        self.extension(line_num);
    }

    fn handle_unknown_action(&mut self, line_num: u32, _action: &str, _escaped: &str) {
        self.extension(line_num);
    }
}

//! `X-Robots-Tag` response header values and `<meta name="robots">` / `<meta name="<token>">`
//! content values, read for the AI directives `noai` and `noimageai`.
//!
//! Follows SIGNALS.md §4 (MDN and Google's robots meta syntax; DeviantArt's `noai`/`noimageai`)
//! and DESIGN §3:
//! - a header value is a comma list of directives; a `botname:` prefix scopes the directives
//!   that follow it, up to the next prefix or the end of that field line; directives before any
//!   prefix, and `<meta name="robots">`, apply to every crawler; repeated field lines and several
//!   meta tags add up (the sum of negative rules);
//! - a scope applies only when the bot name equals (ASCII case-insensitively) one of the crawler's
//!   tokens; `unavailable_after:`, `max-snippet:`, `max-image-preview:`, `max-video-preview:` are
//!   directives with a value, never bot names, and a date split by the comma list is glued back;
//! - `noai` disallows ai-input, ai-train and tdm; `noimageai` does too, but only for image
//!   responses (the caller says which); every other directive is kept but ignored here.

use super::prefs::Prefs;
use crate::decide::Purpose;

/// Purposes `noai` (and `noimageai` on images) disallow (DESIGN §3).
const NOAI_PURPOSES: [Purpose; 3] = [Purpose::AiInput, Purpose::AiTrain, Purpose::Tdm];

/// Directives whose name is followed by `:` and a value (Google's robots meta spec); a prefix
/// with one of these names is not a bot name.
const VALUED_DIRECTIVES: &[&str] = &["unavailable_after", "max-snippet", "max-image-preview", "max-video-preview"];

/// One directive as found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// The bot it is scoped to, as written; `None` = every crawler.
    pub bot: Option<String>,
    /// Lower-cased directive name (`noai`, `noindex`, `unavailable_after`, ...).
    pub name: String,
    /// The value of a valued directive (`max-snippet: 50` → `50`).
    pub value: Option<String>,
    /// 0-based index of the field line (or meta tag) it came from.
    pub source: usize,
}

/// The directives of all `X-Robots-Tag` field lines, or of all robots meta tags, of a response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RobotsTag {
    /// Every value as written, in order.
    pub raw: Vec<String>,
    pub directives: Vec<Directive>,
    /// What could not be understood.
    pub problems: Vec<String>,
}

/// The AI opt-outs that apply to a crawler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RobotsTagMatch<'a> {
    pub prefs: Prefs,
    /// The `noai` / `noimageai` directives that decided.
    pub directives: Vec<&'a Directive>,
}

impl RobotsTag {
    /// Parses the `X-Robots-Tag` field lines of one response.
    pub fn parse_header<I, S>(lines: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut out = RobotsTag::default();
        for line in lines {
            out.push_header_line(line.as_ref());
        }
        out
    }

    /// Parses robots meta tags, each as `(name attribute, content attribute)`: `robots` applies to
    /// every crawler, any other name to that crawler token only. Names that are not robots
    /// directives carriers (e.g. `description`) should not be passed in.
    pub fn parse_meta<I, N, C>(tags: I) -> Self
    where
        I: IntoIterator<Item = (N, C)>,
        N: AsRef<str>,
        C: AsRef<str>,
    {
        let mut out = RobotsTag::default();
        for (name, content) in tags {
            let name = name.as_ref().trim();
            let bot = (!name.eq_ignore_ascii_case("robots")).then(|| name.to_string());
            out.push_meta(bot, content.as_ref());
        }
        out
    }

    fn push_header_line(&mut self, line: &str) {
        let source = self.raw.len();
        self.raw.push(line.to_string());
        let mut bot: Option<String> = None;
        for element in line.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            match element.split_once(':') {
                Some((prefix, rest)) if is_bot_name(prefix) => {
                    bot = Some(prefix.trim().to_string());
                    self.push_directives(&bot, rest, source);
                }
                _ => self.push_directives(&bot, element, source),
            }
        }
    }

    fn push_meta(&mut self, bot: Option<String>, content: &str) {
        let source = self.raw.len();
        self.raw.push(content.to_string());
        for element in content.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            self.push_directives(&bot, element, source);
        }
    }

    /// Adds the directive(s) in one comma element. Words separated by spaces without a colon
    /// (`noai noimageai`) are read as several directives; leniency that can only add opt-outs.
    fn push_directives(&mut self, bot: &Option<String>, element: &str, source: usize) {
        let element = element.trim();
        if element.is_empty() {
            return;
        }
        if let Some((name, value)) = element.split_once(':') {
            let name = name.trim().to_ascii_lowercase();
            if VALUED_DIRECTIVES.contains(&name.as_str()) {
                self.push(bot, name, Some(value.trim().to_string()), source);
            } else if !self.continue_date(element, source) {
                self.problems.push(format!("`{element}` not understood: ignored"));
            }
            return;
        }
        if self.continue_date(element, source) {
            return;
        }
        for word in element.split_ascii_whitespace() {
            self.push(bot, word.to_ascii_lowercase(), None, source);
        }
    }

    /// `unavailable_after: Saturday, 01-Jul-17 11:00:00 PST` is cut by the comma list; glue an
    /// element that starts with a digit back onto a preceding `unavailable_after` value.
    fn continue_date(&mut self, element: &str, source: usize) -> bool {
        let Some(last) = self.directives.last_mut() else {
            return false;
        };
        let is_date_part = element.starts_with(|c: char| c.is_ascii_digit());
        if last.source != source || last.name != "unavailable_after" || !is_date_part {
            return false;
        }
        let value = last.value.get_or_insert_with(String::new);
        value.push_str(", ");
        value.push_str(element);
        true
    }

    fn push(&mut self, bot: &Option<String>, name: String, value: Option<String>, source: usize) {
        self.directives.push(Directive { bot: bot.clone(), name, value, source });
    }

    /// The directives that apply to a crawler with these robots tokens: global ones and those
    /// scoped to one of the tokens (ASCII case-insensitive).
    pub fn applicable<'a>(&'a self, tokens: &'a [&str]) -> impl Iterator<Item = &'a Directive> + 'a {
        self.directives.iter().filter(move |d| match &d.bot {
            None => true,
            Some(bot) => tokens.iter().any(|t| t.eq_ignore_ascii_case(bot)),
        })
    }

    /// What the AI directives say for this crawler; `noimageai` counts only when `is_image`.
    pub fn evaluate<'a>(&'a self, tokens: &'a [&str], is_image: bool) -> RobotsTagMatch<'a> {
        let directives: Vec<&Directive> =
            self.applicable(tokens).filter(|d| d.name == "noai" || (is_image && d.name == "noimageai")).collect();
        let prefs = if directives.is_empty() { Prefs::UNKNOWN } else { Prefs::UNKNOWN.with_all(&NOAI_PURPOSES, false) };
        RobotsTagMatch { prefs, directives }
    }
}

/// A `prefix:` is a bot name when it is a plausible user-agent token (letters, digits, `-`,
/// `_`, `.`, `/`) and not a valued directive; a date fragment like `01-Jul-17 11` is not.
fn is_bot_name(prefix: &str) -> bool {
    let prefix = prefix.trim();
    let plausible = !prefix.is_empty()
        && prefix.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
        && prefix.chars().any(|c| c.is_ascii_alphabetic());
    plausible && !VALUED_DIRECTIVES.iter().any(|d| d.eq_ignore_ascii_case(prefix))
}

#[cfg(test)]
#[path = "robots_tag/tests.rs"]
mod tests;

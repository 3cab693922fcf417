//! The HTTP side of RSL discovery: `Link` header values (RFC 8288 §3) naming an RSL licence
//! (`rel="license"; type="application/rsl+xml"`), and the CAP challenge
//! `WWW-Authenticate: License error="…"` (RFC 9110 §11.6.1 syntax) on 401/402 answers.
//!
//! A small, careful parser over characters: quoted strings with `\` escapes, commas inside `<…>`
//! or quotes, parameters without values, and garbage are all handled without panicking; a
//! link-value that cannot be read is skipped and recorded, the rest of the field still counts.

use std::iter::Peekable;
use std::str::Chars;

/// The RSL licence media type.
const RSL_TYPE: &str = "application/rsl+xml";

/// A `Link` target announced as an RSL licence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicenseLink {
    /// The target URI as written (RSL requires an absolute URL; relative ones are recorded).
    pub url: String,
    /// 0-based index of the field line.
    pub source: usize,
}

/// Licence links found in the `Link` field lines of a response, and what could not be read.
pub fn license_links<I, S>(lines: I) -> (Vec<LicenseLink>, Vec<String>)
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let (mut links, mut problems) = (Vec::new(), Vec::new());
    for (source, line) in lines.into_iter().enumerate() {
        for link in parse_link_field(line.as_ref(), &mut problems) {
            if !is_rsl_license(&link) {
                continue;
            }
            if !link.target.contains("://") {
                problems.push(format!("licence link `{}` is not an absolute URL", link.target));
            }
            links.push(LicenseLink { url: link.target, source });
        }
    }
    (links, problems)
}

/// One parsed link-value.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Link {
    target: String,
    /// Parameters with lower-cased names; only the first occurrence of each (RFC 8288 §3.3).
    params: Vec<(String, Option<String>)>,
}

impl Link {
    fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(n, _)| n == name).and_then(|(_, v)| v.as_deref())
    }
}

/// `rel` holds space-separated relation types (case-insensitive); `type` is compared without
/// parameters, case-insensitively.
fn is_rsl_license(link: &Link) -> bool {
    let rel = link.param("rel").unwrap_or_default();
    let is_license = rel.split_ascii_whitespace().any(|r| r.eq_ignore_ascii_case("license"));
    let media = link.param("type").unwrap_or_default();
    let media = media.split(';').next().unwrap_or_default().trim();
    is_license && media.eq_ignore_ascii_case(RSL_TYPE)
}

/// Parses one `Link` field value: `<uri>; param=value; …, <uri2>; …`.
fn parse_link_field(value: &str, problems: &mut Vec<String>) -> Vec<Link> {
    let mut cur = value.chars().peekable();
    let mut links = Vec::new();
    loop {
        skip_while(&mut cur, |c| c == ',' || is_ows(c));
        if cur.peek().is_none() {
            break;
        }
        match parse_link_value(&mut cur) {
            Some(link) => links.push(link),
            None => {
                problems.push(format!("unreadable Link value in `{value}`: skipped"));
                skip_to_next_value(&mut cur);
            }
        }
    }
    links
}

fn parse_link_value(cur: &mut Peekable<Chars<'_>>) -> Option<Link> {
    if cur.next() != Some('<') {
        return None;
    }
    let target: String = take_while(cur, |c| c != '>');
    if cur.next() != Some('>') {
        return None;
    }
    let mut link = Link { target: target.trim().to_string(), params: Vec::new() };
    parse_params(cur, ';', &mut link.params)?;
    skip_while(cur, is_ows);
    match cur.peek() {
        None | Some(',') => Some(link),
        Some(_) => None,
    }
}

/// Reads `sep name[=value]` repetitions; values are tokens or quoted strings. Stops before a
/// `,` or the end; `None` on malformed input.
fn parse_params(cur: &mut Peekable<Chars<'_>>, sep: char, out: &mut Vec<(String, Option<String>)>) -> Option<()> {
    loop {
        skip_while(cur, is_ows);
        if cur.peek() != Some(&sep) {
            return Some(());
        }
        cur.next();
        skip_while(cur, is_ows);
        let (name, value) = parse_param(cur)?;
        if !name.is_empty() && !out.iter().any(|(n, _)| *n == name) {
            out.push((name, value));
        }
    }
}

/// One `name[=value]`, name lower-cased; `name*` (RFC 8187) is kept as named.
fn parse_param(cur: &mut Peekable<Chars<'_>>) -> Option<(String, Option<String>)> {
    let name = take_while(cur, is_token_char).to_ascii_lowercase();
    skip_while(cur, is_ows);
    if cur.peek() != Some(&'=') {
        return Some((name, None));
    }
    cur.next();
    skip_while(cur, is_ows);
    // Unquoted values should be tokens; read leniently up to a delimiter, since producers write
    // `type=application/rsl+xml` although `/` is not a token character.
    let value = if cur.peek() == Some(&'"') {
        quoted_string(cur)?
    } else {
        take_while(cur, |c| !matches!(c, ';' | ',' | '"') && !is_ows(c))
    };
    Some((name, Some(value)))
}

/// A quoted-string (RFC 9110 §5.6.4) with backslash escapes; `None` when unterminated.
fn quoted_string(cur: &mut Peekable<Chars<'_>>) -> Option<String> {
    cur.next(); // the opening quote
    let mut out = String::new();
    loop {
        match cur.next()? {
            '"' => return Some(out),
            '\\' => out.push(cur.next()?),
            c => out.push(c),
        }
    }
}

/// After an unreadable value: skip to the next top-level comma (outside quotes and `<…>`).
fn skip_to_next_value(cur: &mut Peekable<Chars<'_>>) {
    let (mut in_quote, mut in_angle) = (false, false);
    while let Some(c) = cur.next() {
        match c {
            '\\' if in_quote => {
                cur.next();
            }
            '"' if !in_angle => in_quote = !in_quote,
            '<' if !in_quote => in_angle = true,
            '>' if !in_quote => in_angle = false,
            ',' if !in_quote && !in_angle => return,
            _ => {}
        }
    }
}

fn is_ows(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// RFC 9110 `tchar`, plus `*` for extended parameter names.
fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

fn skip_while(cur: &mut Peekable<Chars<'_>>, f: impl Fn(char) -> bool) {
    while cur.next_if(|&c| f(c)).is_some() {}
}

fn take_while(cur: &mut Peekable<Chars<'_>>, f: impl Fn(char) -> bool) -> String {
    let mut out = String::new();
    while let Some(c) = cur.next_if(|&c| f(c)) {
        out.push(c);
    }
    out
}

// === WWW-Authenticate: License ===

/// A CAP challenge (`WWW-Authenticate: License error="…", error_description="…"`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LicenseChallenge {
    /// `invalid_request`, `invalid_token`, `insufficient_scope`, `server_error`, or another value.
    pub error: Option<String>,
    pub error_description: Option<String>,
    /// The field value as written.
    pub raw: String,
}

/// The `License` challenge among `WWW-Authenticate` field lines, if any. Only the common
/// one-challenge-per-line form is read: parameters after the scheme up to the next scheme.
pub fn license_challenge<I, S>(lines: I) -> Option<LicenseChallenge>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    lines.into_iter().find_map(|line| parse_challenge(line.as_ref()))
}

fn parse_challenge(value: &str) -> Option<LicenseChallenge> {
    let trimmed = value.trim_start();
    let scheme_len = trimmed.find(|c: char| !is_token_char(c)).unwrap_or(trimmed.len());
    let (scheme, rest) = trimmed.split_at(scheme_len);
    if !scheme.eq_ignore_ascii_case("license") {
        return None;
    }
    // auth-params are comma-separated: read them as `,`-separated parameters; whatever cannot
    // be read (a token68, a second challenge) is left out.
    let mut params = Vec::new();
    let with_sep = format!(",{rest}");
    let _ = parse_params(&mut with_sep.chars().peekable(), ',', &mut params);
    let get = |n: &str| params.iter().find(|(k, _)| k == n).and_then(|(_, v)| v.clone());
    Some(LicenseChallenge { error: get("error"), error_description: get("error_description"), raw: value.to_string() })
}

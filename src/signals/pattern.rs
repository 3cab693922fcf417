//! Path patterns shared by the AI-signal parsers (Content-Usage and Content-Signal path scopes,
//! TDMRep `location`, ai.txt rules, RSL `<content url>`).
//!
//! All of them reuse the robots.txt path syntax of RFC 9309 §2.2.2–§2.2.3 (SIGNALS.md §1.7–§1.9):
//! a pattern matches from the first octet of the path (path plus query), `*` matches any run of
//! octets, and a `$` as the last character anchors the match at the end. Specificity is the
//! number of octets of the normalised pattern, wildcards included (Google's reading, SIGNALS.md
//! G9). Patterns and paths are compared after the same percent-encoding normalisation (DESIGN §4):
//! non-ASCII octets, controls and space are encoded, hex digits upper-cased, and encoded
//! unreserved characters decoded. A literal `*` or `$` in a path is encoded (`%2A`, `%24`) so that
//! only a pattern's own `*`/`$` are special (RFC 9309 §2.2.3).

/// A robots.txt-style path pattern, kept as written and in normalised form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPattern {
    raw: String,
    normalized: String,
}

impl PathPattern {
    /// Builds a pattern from its text as written in the signal.
    pub fn new(raw: &str) -> Self {
        Self { raw: raw.to_string(), normalized: normalize(raw, true) }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// Specificity: octets of the normalised pattern (longer wins).
    pub fn specificity(&self) -> usize {
        self.normalized.len()
    }

    /// Does the pattern match this path (path plus query, as sent in the request line)?
    pub fn matches(&self, path_and_query: &str) -> bool {
        matches_normalized(&normalize(path_and_query, false), &self.normalized)
    }

    /// Like [`PathPattern::matches`] for a path already passed through [`normalize_path`];
    /// saves re-normalising the same path for every rule.
    pub fn matches_normalized_path(&self, normalized_path: &str) -> bool {
        matches_normalized(normalized_path, &self.normalized)
    }
}

/// Normalises a request path (plus query) for matching against [`PathPattern`]s.
pub fn normalize_path(path_and_query: &str) -> String {
    normalize(path_and_query, false)
}

/// Splits a robots.txt extension value into an optional leading path scope and the rest
/// (aipref attach-05 §"robots.txt": "if the value starts with `/` it has a path, which ends at
/// the first SP or HTAB; otherwise the whole value is the preference").
pub fn split_path_scope(value: &str) -> (Option<&str>, &str) {
    let value = value.trim_matches([' ', '\t']);
    if !value.starts_with('/') {
        return (None, value);
    }
    match value.find([' ', '\t']) {
        Some(end) => (Some(&value[..end]), value[end..].trim_start_matches([' ', '\t'])),
        None => (Some(value), ""),
    }
}

/// Among `items`, the ones whose pattern matches `path_and_query` with the greatest specificity;
/// an item without a pattern matches everything with specificity 0. Several items are returned
/// only when they tie, so that callers can combine them (most restrictively, per aipref).
pub fn longest_matches<'a, T>(
    items: &'a [T],
    path_and_query: &str,
    pattern_of: impl Fn(&T) -> Option<&PathPattern>,
) -> Vec<&'a T> {
    let path = normalize_path(path_and_query);
    let mut best: Vec<&T> = Vec::new();
    let mut best_len = 0usize;
    for item in items {
        let len = match pattern_of(item) {
            None => 0,
            Some(p) if p.matches_normalized_path(&path) => p.specificity(),
            Some(_) => continue,
        };
        if best.is_empty() || len > best_len {
            best.clear();
            best_len = len;
            best.push(item);
        } else if len == best_len {
            best.push(item);
        }
    }
    best
}

/// RFC 3986 unreserved characters: their percent-encoding is decoded before comparison.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn hex_value(b: u8) -> Option<u8> {
    char::from(b).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

/// Percent-encoding normalisation (see the module docs). In a pattern `*` and `$` stay special;
/// in a path they are literal and therefore encoded.
fn normalize(input: &str, is_pattern: bool) -> String {
    let bytes = input.as_bytes();
    let mut out = String::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let escape =
            bytes.get(i + 1).zip(bytes.get(i + 2)).and_then(|(&h, &l)| Some((hex_value(h)? << 4) | hex_value(l)?));
        match (b, escape) {
            (b'%', Some(v)) if is_unreserved(v) => {
                out.push(char::from(v));
                i += 3;
                continue;
            }
            (b'%', Some(v)) => push_encoded(&mut out, v),
            (b'*' | b'$', _) if !is_pattern => push_encoded(&mut out, b),
            (0x21..=0x7e, _) => out.push(char::from(b)),
            _ => push_encoded(&mut out, b),
        }
        i += if b == b'%' && escape.is_some() { 3 } else { 1 };
    }
    out
}

fn push_encoded(out: &mut String, b: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(char::from(HEX[usize::from(b >> 4)]));
    out.push(char::from(HEX[usize::from(b & 0x0f)]));
}

/// Google's wildcard matcher (robots.cc `Matches`): tracks every position in the path the
/// pattern prefix can end at. O(path × pattern), no recursion, no backtracking blow-up.
fn matches_normalized(path: &str, pattern: &str) -> bool {
    let (path, pattern) = (path.as_bytes(), pattern.as_bytes());
    let mut positions: Vec<usize> = vec![0];
    for (i, &c) in pattern.iter().enumerate() {
        if c == b'$' && i + 1 == pattern.len() {
            return positions.last() == Some(&path.len());
        }
        if c == b'*' {
            let first = positions.first().copied().unwrap_or(0);
            positions = (first..=path.len()).collect();
            continue;
        }
        positions = positions.iter().filter(|&&p| path.get(p) == Some(&c)).map(|&p| p + 1).collect();
        if positions.is_empty() {
            return false;
        }
    }
    true
}

/// Test helpers shared by the signal parsers' tests.
#[cfg(test)]
pub(crate) mod testing {
    /// The text of a shared example file (`../shared/data/examples/<name>`).
    pub(crate) fn example(name: &str) -> String {
        let path = format!("{}/../shared/data/examples/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// `(value, line)` pairs of `key:` lines in every group whose user-agent is `agent`
    /// (case-insensitive; several groups for the same agent merge as in RFC 9309): a stand-in for
    /// the robots.txt parser's extension lines.
    pub(crate) fn extension_lines(robots: &str, agent: &str, key: &str) -> Vec<(String, u32)> {
        let mut out = Vec::new();
        let (mut in_agent, mut last_was_agent) = (false, false);
        for (i, line) in robots.lines().enumerate() {
            let Some((k, v)) = line.split_once(':') else { continue };
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            if k == "user-agent" {
                in_agent = (last_was_agent && in_agent) || v.eq_ignore_ascii_case(agent);
                last_was_agent = true;
                continue;
            }
            last_was_agent = false;
            if in_agent && k == key {
                out.push((v.to_string(), i as u32 + 1));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn pattern_matching_table() {
        let cases: &[(&str, &str, bool)] = &[
            ("/", "/anything", true),
            ("/a/", "/a/b", true),
            ("/a/", "/a", false),
            ("/a/*.jpg", "/a/b/c.jpg", true),
            ("/a/*.jpg", "/a/b/c.png", false),
            ("*.jpg", "/img/x.jpg", true),
            ("*.jpg", "/img/x.jpg?size=2", true),
            ("*.jpg", "/img/x.jpgfoo", true),
            ("*.jpg$", "/img/x.jpgfoo", false),
            ("*.jpg$", "/img/x.jpg", true),
            ("/exact$", "/exact", true),
            ("/exact$", "/exactly", false),
            ("*", "/", true),
            ("", "/", true),
            ("/path/file-with-a-%2A.html", "/path/file-with-a-*.html", true),
            ("/path/file-with-a-*.html", "/path/file-with-a-xyz.html", true),
            ("/foo/bar/%62%61%7A", "/foo/bar/baz", true),
            ("/foo/bar/ツ", "/foo/bar/%E3%83%84", true),
            ("/foo/bar/%e3%83%84", "/foo/bar/ツ", true),
            ("/Case", "/case", false),
            ("/a%2Fb", "/a/b", false),
        ];
        for &(pattern, path, want) in cases {
            assert_eq!(PathPattern::new(pattern).matches(path), want, "{pattern} vs {path}");
        }
    }

    #[test]
    fn split_path_scope_table() {
        let cases: &[(&str, Option<&str>, &str)] = &[
            ("train-ai=n", None, "train-ai=n"),
            ("/ai-ok/ train-ai=y", Some("/ai-ok/"), "train-ai=y"),
            (" /blog/\tai-train=no, search=yes ", Some("/blog/"), "ai-train=no, search=yes"),
            ("/only", Some("/only"), ""),
            ("", None, ""),
        ];
        for &(value, path, rest) in cases {
            assert_eq!(split_path_scope(value), (path, rest), "{value:?}");
        }
    }

    #[test]
    fn longest_match_returns_ties() {
        let items = [
            (Some(PathPattern::new("/a/")), 1),
            (None, 2),
            (Some(PathPattern::new("/a/")), 3),
            (Some(PathPattern::new("/b/")), 4),
        ];
        let ids = |path| -> Vec<i32> { longest_matches(&items, path, |i| i.0.as_ref()).iter().map(|i| i.1).collect() };
        assert_eq!(ids("/a/x"), vec![1, 3]);
        assert_eq!(ids("/c"), vec![2]);
        assert_eq!(ids("/b/"), vec![4]);
    }

    proptest! {
        #[test]
        fn matching_never_panics(pattern in ".{0,40}", path in ".{0,60}") {
            let p = PathPattern::new(&pattern);
            let _ = p.matches(&path);
            let _ = split_path_scope(&pattern);
        }
    }
}

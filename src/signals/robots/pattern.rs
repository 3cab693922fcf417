//! Octet-level normalisation of robots.txt path patterns and request paths, and matching of one
//! compiled pattern against one path.
//!
//! Two readings ("views") of the same bytes are produced, and the matcher decides under both and
//! keeps the more restrictive verdict (see [`View`]):
//! - [`View::Normalised`]: RFC 9309 §2.2.2 / RFC 3986 §6.2.2: `%XX` of an unreserved character is
//!   decoded, every other `%XX` gets upper-case hex, non-ASCII octets and octets not allowed in a
//!   URI are percent-encoded, on both the pattern and the path.
//! - [`View::Literal`]: Google's reading (google/robotstxt, the conformance suite): only the
//!   pattern is escaped (non-ASCII octets encoded); the path is compared as sent. Hex digits are
//!   upper-cased on both sides (RFC 3986 §2.1: hex case never matters).
//!
//! In both views a literal `*` or `$` in the path is encoded as `%2A` / `%24`, so a pattern
//! `%2A` matches it and a pattern `*` or `$` never does by accident (RFC 9309 §2.2.3).

use std::borrow::Cow;

/// Which reading of the octets to produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum View {
    /// Full RFC 3986 percent-encoding normalisation of pattern and path.
    Normalised,
    /// Google's reading: pattern escaped, path as sent.
    Literal,
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// RFC 3986 §2.3 unreserved characters.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Octets that stay as they are in a normalised path: unreserved plus the reserved characters
/// that may appear literally in a path or query. `*`, `$`, `#` and `%` are handled separately.
fn is_plain(b: u8) -> bool {
    is_unreserved(b)
        || matches!(b, b'/' | b'?' | b':' | b'@' | b'!' | b'&' | b'\'' | b'(' | b')' | b'+' | b',' | b';' | b'=')
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn push_encoded(out: &mut Vec<u8>, b: u8) {
    out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 0x0f)]]);
}

/// The decoded value of a `%XX` escape starting at `bytes[i]` (which is `%`), if well-formed.
fn escape_at(bytes: &[u8], i: usize) -> Option<u8> {
    let hi = hex_value(*bytes.get(i + 1)?)?;
    let lo = hex_value(*bytes.get(i + 2)?)?;
    Some(hi << 4 | lo)
}

/// Whether the octets are a path or a pattern segment (patterns never contain `*`: the caller
/// splits on it; a `$` in a segment is literal because the anchor was already removed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Path,
    Pattern,
}

/// Appends the normalised form of `bytes` to `out`.
fn normalise_into(bytes: &[u8], view: View, side: Side, out: &mut Vec<u8>) {
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        i += 1;
        if b == b'%' {
            match escape_at(bytes, i - 1) {
                Some(v) => {
                    i += 2;
                    if view == View::Normalised && is_unreserved(v) {
                        out.push(v);
                    } else {
                        push_encoded(out, v);
                    }
                }
                // A lone `%` is not valid in a URI: encode it in the normalised view, keep it as
                // written in the literal view (Google compares it verbatim).
                None if view == View::Normalised => push_encoded(out, b'%'),
                None => out.push(b'%'),
            }
            continue;
        }
        normalise_octet(b, view, side, out);
    }
}

fn normalise_octet(b: u8, view: View, side: Side, out: &mut Vec<u8>) {
    match b {
        b'*' | b'$' => push_encoded(out, b),
        _ if is_plain(b) => out.push(b),
        // Google escapes non-ASCII octets in patterns only and compares the path as sent.
        _ if view == View::Literal && (b < 0x80 || side == Side::Path) => out.push(b),
        _ => push_encoded(out, b),
    }
}

/// The path as compared in `view`. Borrowed when nothing changes (the common case).
pub(super) fn normalise_path(path: &[u8], view: View) -> Cow<'_, [u8]> {
    if path.iter().all(|&b| is_plain(b)) {
        return Cow::Borrowed(path);
    }
    let mut out = Vec::with_capacity(path.len() + 16);
    normalise_into(path, view, Side::Path, &mut out);
    Cow::Owned(out)
}

/// One compiled `Allow`/`Disallow` pattern in one view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Pattern {
    /// The literal octets before the first `*`: every path this pattern matches starts with them.
    pub(super) prefix: Box<[u8]>,
    /// The literal segments after each `*`, in order (empty when the pattern has no `*`).
    pub(super) rest: Box<[Box<[u8]>]>,
    /// The pattern ended with `$`: the match must reach the end of the path.
    pub(super) anchored: bool,
    /// Priority: octets of the normalised pattern, `*` and `$` included (RFC 9309 §2.2.2 "most
    /// octets"; Google counts the same way).
    pub(super) len: usize,
    /// [`octet_set`] of the segments after the prefix: a path lacking one of them cannot match,
    /// which rejects most wildcard patterns without searching (`/*?utm_` on a path without `?`).
    pub(super) needs: u128,
}

/// A 128-bit summary of which octets occur in `bytes` (octets above 127 share bits with ASCII
/// ones: the summary may say "maybe present", never "absent" wrongly).
pub(super) fn octet_set(bytes: &[u8]) -> u128 {
    bytes.iter().fold(0, |set, &b| set | 1 << (b & 0x7f))
}

impl Pattern {
    /// Compiles a pattern that starts with `/` or `*` (the caller checks) in `view`.
    pub(super) fn compile(pattern: &str, view: View) -> Self {
        let (body, anchored) = match pattern.strip_suffix('$') {
            Some(body) => (body, true),
            None => (pattern, false),
        };
        let mut segments = body.split('*').map(|segment| {
            let mut out = Vec::with_capacity(segment.len());
            normalise_into(segment.as_bytes(), view, Side::Pattern, &mut out);
            out.into_boxed_slice()
        });
        let prefix = segments.next().unwrap_or_default();
        let rest: Box<[Box<[u8]>]> = segments.collect();
        let len = prefix.len() + rest.iter().map(|s| s.len() + 1).sum::<usize>() + usize::from(anchored);
        let needs = rest.iter().fold(0, |set, segment| set | octet_set(segment));
        Self { prefix, rest, anchored, len, needs }
    }

    /// Whether the pattern matches `path`, which the caller knows starts with `self.prefix` and
    /// to contain the octets in `self.needs` (both only speed-ups: checked again here).
    pub(super) fn matches_after_prefix(&self, path: &[u8]) -> bool {
        let mut pos = self.prefix.len();
        let Some((last, middle)) = self.rest.split_last() else {
            return !self.anchored || path.len() == pos;
        };
        if self.anchored && !path.ends_with(last) {
            return false;
        }
        // `*` only: the leftmost placement of each middle segment leaves the most room for the
        // rest, so a greedy scan is exact.
        for segment in middle {
            match find(path.get(pos..).unwrap_or_default(), segment) {
                Some(at) => pos += at + segment.len(),
                None => return false,
            }
        }
        if self.anchored {
            path.len() >= pos + last.len()
        } else {
            find(path.get(pos..).unwrap_or_default(), last).is_some()
        }
    }
}

/// The first position of `needle` in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, tail) = match needle.split_first() {
        Some(split) => split,
        None => return Some(0),
    };
    let last_start = haystack.len().checked_sub(needle.len())?;
    (0..=last_start).find(|&i| haystack[i] == first && haystack[i + 1..].starts_with(tail))
}

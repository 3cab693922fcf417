//! The rules of one (merged) group in one view, indexed by literal prefix so a decision looks at
//! the few rules that can match instead of every rule of a huge group.
//!
//! Entries are sorted by prefix. The prefixes of one path are nested, so they are found by
//! repeated binary search from the longest down (each step shortens the query), and inside an
//! entry the patterns are sorted by priority so the scan stops as soon as nothing can beat the
//! best match so far.

use super::pattern::{Pattern, octet_set};

/// The best match found so far: the priority, whether it is an `Allow`, and the rule's index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Best {
    pub(super) len: usize,
    pub(super) allow: bool,
    pub(super) rule: usize,
}

impl Best {
    /// RFC 9309 §2.2.2: the longest pattern wins; on a tie `Allow` wins; then the earliest rule
    /// (so the rule reported is stable).
    fn beats(&self, other: &Self) -> bool {
        (self.len, self.allow, std::cmp::Reverse(self.rule)) > (other.len, other.allow, std::cmp::Reverse(other.rule))
    }

    /// Whether a pattern of priority `len` could still beat `self` (an `Allow` wins ties).
    fn could_lose_to(&self, len: usize) -> bool {
        len > self.len || (len == self.len && !self.allow)
    }
}

#[derive(Debug, Clone)]
struct Entry {
    prefix: Box<[u8]>,
    /// Sorted by priority, longest first.
    patterns: Vec<(Pattern, bool, usize)>,
}

/// Patterns of one view, grouped by literal prefix.
#[derive(Debug, Clone, Default)]
pub(super) struct Index {
    entries: Vec<Entry>,
}

impl Index {
    /// Builds the index from `(pattern, allow, rule index)` triples.
    pub(super) fn new(patterns: impl IntoIterator<Item = (Pattern, bool, usize)>) -> Self {
        let mut all: Vec<_> = patterns.into_iter().collect();
        all.sort_by(|a, b| a.0.prefix.cmp(&b.0.prefix).then(b.0.len.cmp(&a.0.len)).then(a.2.cmp(&b.2)));
        let mut entries: Vec<Entry> = Vec::new();
        for item in all {
            match entries.last_mut() {
                Some(entry) if entry.prefix == item.0.prefix => entry.patterns.push(item),
                _ => entries.push(Entry { prefix: item.0.prefix.clone(), patterns: vec![item] }),
            }
        }
        Self { entries }
    }

    /// The best matching rule for `path`, if any.
    pub(super) fn best(&self, path: &[u8]) -> Option<Best> {
        let mut best: Option<Best> = None;
        let has = octet_set(path);
        let mut query = path;
        // Every later query sorts before the current one, so the search range only shrinks.
        let mut end = self.entries.len();
        while let Some((at, entry)) = self.greatest_at_most(query, end) {
            end = at;
            if query.starts_with(&entry.prefix) {
                Self::scan(entry, path, has, &mut best);
                // The next candidate is a strictly shorter prefix of the path.
                match entry.prefix.len().checked_sub(1) {
                    Some(shorter) => query = &path[..shorter],
                    None => break,
                }
            } else {
                // No prefix of `query` longer than the common part can be in the index: it would
                // sort between `entry.prefix` and `query`.
                let common = entry.prefix.iter().zip(query).take_while(|(a, b)| a == b).count();
                query = &path[..common];
            }
        }
        best
    }

    /// The entry (and its position) with the greatest prefix that sorts at or before `query`,
    /// among the first `end` entries.
    fn greatest_at_most(&self, query: &[u8], end: usize) -> Option<(usize, &Entry)> {
        let entries = self.entries.get(..end)?;
        let at = entries.partition_point(|entry| *entry.prefix <= *query).checked_sub(1)?;
        Some((at, entries.get(at)?))
    }

    fn scan(entry: &Entry, path: &[u8], has: u128, best: &mut Option<Best>) {
        for (pattern, allow, rule) in &entry.patterns {
            if best.is_some_and(|b| !b.could_lose_to(pattern.len)) {
                break;
            }
            if pattern.needs & !has != 0 {
                continue;
            }
            let candidate = Best { len: pattern.len, allow: *allow, rule: *rule };
            if pattern.matches_after_prefix(path) && best.is_none_or(|b| candidate.beats(&b)) {
                *best = Some(candidate);
            }
        }
    }
}

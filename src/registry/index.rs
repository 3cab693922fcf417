//! The in-memory registry index: which entries cover a request, answered on every proxied request.
//!
//! The proxy asks it once per request, so a lookup must stay well under a microsecond with a
//! million entries loaded, and must cost next to nothing (no allocation) when nothing matches,
//! which is the common case. Entries arrive one by one (imports, feed sync, claims) while requests
//! are being served, so the index is updated in place rather than rebuilt.
//!
//! Layout:
//! - `hosts`: host name → the domain entries filed under that exact name, plus how many exact-URL
//!   entries have that host. A lookup walks the request host's suffixes label by label
//!   (`a.b.example.com`, `b.example.com`, `example.com`); a hit on a strict suffix only counts for
//!   entries that include subdomains. The URL counter lets a request skip building its URL key
//!   (an allocation and a normalisation) when no URL entry could match.
//! - `urls`: normalised URL key → exact-URL entries; compared by string equality with the
//!   request's [`request_key`].
//! - `by_id`: entry id → entry, to find what an upsert replaces or a removal removes.
//!
//! Entries sit behind [`Arc`] so that a lookup copies pointers out of a map shard and releases the
//! shard's lock before it runs any path pattern. Path patterns are compiled once, at upsert.
//!
//! Writers are serialised by one mutex (updates are rare next to lookups and several maps change
//! together); readers normally never take it. A lookup must never miss an entry that is merely
//! being edited: an upsert that keeps the entry's key replaces it in place under one shard lock,
//! and one that moves it to another key (domain changed, URL became a domain, ...) adds the new
//! entry before withdrawing the old one. A lookup reads several keys one after another, though, so
//! it could read the new key before the add and the old key after the withdrawal; moves therefore
//! bump a sequence counter around themselves (a seqlock), and a lookup that overlapped one is
//! retried, in the end under the writer mutex.

use std::collections::HashMap;
use std::mem::size_of;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering, fence};
use std::sync::{Arc, Mutex, PoisonError};

use dashmap::DashMap;
use dashmap::mapref::entry::Entry as MapEntry;

use crate::decide::Purpose;
use crate::registry::entry::{Entry, EntryTarget, canonical_path, request_key};
use crate::signals::pattern::{PathPattern, normalize_path};

/// The pattern reported for a domain entry that covers every path.
const WHOLE_DOMAIN: &str = "/*";

/// The concurrent index of registry entries (see the module docs).
#[derive(Debug, Default)]
pub struct RegistryIndex {
    hosts: DashMap<Arc<str>, HostSlot>,
    urls: DashMap<Arc<str>, Bucket>,
    by_id: DashMap<Arc<str>, Arc<Indexed>>,
    /// Serialises writers; holds the interned creators and sources.
    writer: Mutex<Interner>,
    /// Heap bytes outside the maps' own tables (strings, entries, patterns, bucket vectors).
    heap_bytes: AtomicUsize,
    /// Seqlock over entries moving between keys: odd while a move is under way.
    moves: AtomicU64,
}

/// One entry matching a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryMatch {
    pub entry_id: String,
    pub creator: String,
    pub source: String,
    pub purposes: Vec<Purpose>,
    /// What matched, as shown to the crawler: the URL for URL entries; for domain entries
    /// "{domain}{path pattern}" (path pattern "/*" when the entry has no paths), prefixed "*." when
    /// it matched through a subdomain, e.g. "example.com/private/*", "*.example.com/*".
    pub pattern: String,
}

/// An entry as the index keeps it: only what matching and reporting need, strings shared.
#[derive(Debug)]
struct Indexed {
    id: Arc<str>,
    /// Interned: one creator typically files many entries, and sources repeat even more.
    creator: Arc<str>,
    source: Arc<str>,
    purposes: PurposeSet,
    target: Target,
}

#[derive(Debug)]
enum Target {
    /// `host` is the `hosts` key the URL is counted under; `url` is the `urls` key.
    Url { host: Arc<str>, url: Arc<str> },
    /// `domain` is the `hosts` key; no paths means every path.
    Domain { domain: Arc<str>, include_subdomains: bool, paths: Box<[PathRule]> },
}

impl Indexed {
    fn includes_subdomains(&self) -> bool {
        matches!(self.target, Target::Domain { include_subdomains: true, .. })
    }

    /// Are both filed in the same bucket (so that one replaces the other in place)?
    fn same_key(&self, other: &Indexed) -> bool {
        match (&self.target, &other.target) {
            (Target::Url { url: a, .. }, Target::Url { url: b, .. }) => a == b,
            (Target::Domain { domain: a, .. }, Target::Domain { domain: b, .. }) => a == b,
            _ => false,
        }
    }

    /// The `hosts` key the entry is filed or counted under.
    fn host(&self) -> &Arc<str> {
        match &self.target {
            Target::Url { host, .. } => host,
            Target::Domain { domain, .. } => domain,
        }
    }

    /// Heap bytes owned by this entry alone. The id (shared with its replacement), host keys and
    /// interned strings are counted where they are created.
    fn heap_bytes(&self) -> usize {
        arc_bytes::<Indexed>()
            + match &self.target {
                Target::Url { url, .. } => arc_str_bytes(url),
                Target::Domain { paths, .. } => paths.iter().map(PathRule::heap_bytes).sum::<usize>(),
            }
    }

    fn to_match(&self, pattern: String) -> RegistryMatch {
        RegistryMatch {
            entry_id: self.id.to_string(),
            creator: self.creator.to_string(),
            source: self.source.to_string(),
            purposes: self.purposes.to_vec(),
            pattern,
        }
    }
}

/// A domain entry's path pattern, compiled at upsert. Most registry patterns are plain prefixes
/// (`/private/`, `/private/*`) or exact paths (`/page$`): those are matched by string comparison,
/// without the general wildcard matcher and its per-character allocations.
#[derive(Debug)]
struct PathRule {
    /// As the entry wrote it, for the reported pattern.
    raw: Box<str>,
    /// [`PathPattern::specificity`]: the longest matching pattern is reported.
    specificity: usize,
    matcher: Matcher,
}

#[derive(Debug)]
enum Matcher {
    /// The canonical path starts with this (a pattern without wildcards, or with only trailing
    /// `*`s, which add nothing to a prefix match).
    Prefix(Literal),
    /// The canonical path is exactly this (a pattern whose only wildcard is the final `$`).
    Exact(Literal),
    /// Boxed: rare, and three times the size of the other two.
    Wildcard(Box<PathPattern>),
}

/// Normalised literal text; usually the start of the raw pattern itself, which saves a copy.
#[derive(Debug)]
enum Literal {
    RawPrefix(usize),
    Owned(Box<str>),
}

impl Literal {
    fn new(raw: &str, text: &str) -> Self {
        let normalized = normalize_path(text);
        if raw.starts_with(normalized.as_str()) {
            Literal::RawPrefix(normalized.len())
        } else {
            Literal::Owned(normalized.into())
        }
    }

    fn text<'a>(&'a self, raw: &'a str) -> &'a str {
        match self {
            Literal::RawPrefix(len) => raw.get(..*len).unwrap_or(raw),
            Literal::Owned(text) => text,
        }
    }

    fn heap_bytes(&self) -> usize {
        match self {
            Literal::RawPrefix(_) => 0,
            Literal::Owned(text) => text.len(),
        }
    }
}

impl PathRule {
    fn new(raw: &str) -> Self {
        let pattern = PathPattern::new(raw);
        let plain = |s: &str| !s.contains(['*', '$']);
        let stem = raw.trim_end_matches('*');
        // Without `*` and `$` a pattern normalises exactly as a path does.
        let matcher = match raw.strip_suffix('$') {
            Some(exact) if plain(exact) => Matcher::Exact(Literal::new(raw, exact)),
            _ if plain(stem) => Matcher::Prefix(Literal::new(raw, stem)),
            _ => Matcher::Wildcard(Box::new(pattern.clone())),
        };
        Self { raw: raw.into(), specificity: pattern.specificity(), matcher }
    }

    /// Does the rule match this path, already passed through [`canonical_path`]?
    fn matches(&self, canonical: &str) -> bool {
        match &self.matcher {
            Matcher::Prefix(prefix) => canonical.starts_with(prefix.text(&self.raw)),
            Matcher::Exact(exact) => canonical == exact.text(&self.raw),
            Matcher::Wildcard(pattern) => pattern.matches_normalized_path(canonical),
        }
    }

    fn heap_bytes(&self) -> usize {
        size_of::<PathRule>()
            + self.raw.len()
            + match &self.matcher {
                Matcher::Prefix(text) | Matcher::Exact(text) => text.heap_bytes(),
                Matcher::Wildcard(p) => size_of::<PathPattern>() + p.as_str().len() + p.specificity(),
            }
    }
}

/// Purposes as a bitset: one byte instead of a vector per entry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct PurposeSet(u8);

impl PurposeSet {
    fn bit(purpose: Purpose) -> u8 {
        1 << (purpose as u8)
    }

    fn from_slice(purposes: &[Purpose]) -> Self {
        Self(purposes.iter().fold(0, |bits, &p| bits | Self::bit(p)))
    }

    /// In [`Purpose::ALL`] order, which is the sorted order entries store.
    fn to_vec(self) -> Vec<Purpose> {
        Purpose::ALL.into_iter().filter(|&p| self.0 & Self::bit(p) != 0).collect()
    }
}

/// The entries under one key. Most keys have exactly one entry, which `One` stores without a
/// vector allocation.
#[derive(Debug, Default)]
enum Bucket {
    #[default]
    Empty,
    One(Arc<Indexed>),
    Many(Vec<Arc<Indexed>>),
}

impl Bucket {
    fn as_slice(&self) -> &[Arc<Indexed>] {
        match self {
            Bucket::Empty => &[],
            Bucket::One(entry) => std::slice::from_ref(entry),
            Bucket::Many(entries) => entries,
        }
    }

    fn is_empty(&self) -> bool {
        self.as_slice().is_empty()
    }

    /// Replaces the entry with the same id, if any, else adds `entry`; returns whether it replaced.
    fn replace_or_push(&mut self, entry: Arc<Indexed>) -> bool {
        let replaced = match self {
            Bucket::Empty => None,
            Bucket::One(old) => (old.id == entry.id).then_some(old),
            Bucket::Many(all) => all.iter_mut().find(|old| old.id == entry.id),
        };
        if let Some(old) = replaced {
            *old = entry;
            return true;
        }
        match std::mem::take(self) {
            Bucket::Empty => *self = Bucket::One(entry),
            Bucket::One(first) => *self = Bucket::Many(vec![first, entry]),
            Bucket::Many(mut all) => {
                all.push(entry);
                *self = Bucket::Many(all);
            }
        }
        false
    }

    /// Removes this very entry (not merely one with the same id: its replacement may share the
    /// bucket); returns whether it was there.
    fn remove(&mut self, entry: &Arc<Indexed>) -> bool {
        match self {
            Bucket::Empty => false,
            Bucket::One(only) if Arc::ptr_eq(only, entry) => {
                *self = Bucket::Empty;
                true
            }
            Bucket::One(_) => false,
            Bucket::Many(all) => {
                let Some(at) = all.iter().position(|e| Arc::ptr_eq(e, entry)) else { return false };
                all.remove(at);
                if let [only] = all.as_slice() {
                    *self = Bucket::One(Arc::clone(only));
                } else if all.len() * 4 < all.capacity() {
                    all.shrink_to_fit();
                }
                true
            }
        }
    }

    fn heap_bytes(&self) -> usize {
        match self {
            Bucket::Many(all) => all.capacity() * size_of::<Arc<Indexed>>(),
            Bucket::Empty | Bucket::One(_) => 0,
        }
    }
}

/// What the index holds for one host name.
#[derive(Debug, Default)]
struct HostSlot {
    /// Domain entries for exactly this name.
    domains: Bucket,
    /// Exact-URL entries whose URL has this host.
    urls: u32,
}

impl HostSlot {
    fn is_empty(&self) -> bool {
        self.domains.is_empty() && self.urls == 0
    }
}

/// Reference-counted string interning for creators and sources, owned by the writer lock.
#[derive(Debug, Default)]
struct Interner {
    strings: HashMap<Arc<str>, usize>,
}

impl Interner {
    /// The shared copy of `s`, and the heap bytes a new copy cost.
    fn intern(&mut self, s: &str) -> (Arc<str>, usize) {
        if let Some((shared, _)) = self.strings.get_key_value(s) {
            let shared = Arc::clone(shared);
            if let Some(count) = self.strings.get_mut(s) {
                *count += 1;
            }
            return (shared, 0);
        }
        let shared: Arc<str> = Arc::from(s);
        self.strings.insert(Arc::clone(&shared), 1);
        let bytes = arc_str_bytes(&shared);
        (shared, bytes)
    }

    /// Drops one use of `s`; returns the heap bytes freed.
    fn release(&mut self, s: &Arc<str>) -> usize {
        match self.strings.get_mut(s) {
            Some(count) if *count > 1 => {
                *count -= 1;
                0
            }
            Some(_) => {
                self.strings.remove(s);
                arc_str_bytes(s)
            }
            None => 0,
        }
    }

    fn table_bytes(&self) -> usize {
        self.strings.capacity() * (size_of::<(Arc<str>, usize)>() + 1)
    }
}

impl RegistryIndex {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `entry`, replacing any entry with the same id (its old key may differ: e.g. domain changed).
    pub fn upsert(&self, entry: &Entry) {
        let mut interner = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let (creator, creator_bytes) = interner.intern(&entry.creator);
        let (source, source_bytes) = interner.intern(&entry.source);
        let mut added = creator_bytes + source_bytes;
        let (id, previous) = match self.by_id.get(entry.id.as_str()) {
            Some(existing) => (Arc::clone(existing.key()), Some(Arc::clone(existing.value()))),
            None => (Arc::from(entry.id.as_str()), None),
        };
        let host = match self.hosts.get(entry.target.host()) {
            Some(slot) => Arc::clone(slot.key()),
            None => Arc::from(entry.target.host()),
        };
        let target = match &entry.target {
            EntryTarget::Url { url } => {
                let url = match self.urls.get(url.as_str()) {
                    Some(bucket) => Arc::clone(bucket.key()),
                    None => Arc::from(url.as_str()),
                };
                Target::Url { host, url }
            }
            EntryTarget::Domain { include_subdomains, paths, .. } => Target::Domain {
                domain: host,
                include_subdomains: *include_subdomains,
                paths: paths.iter().map(|p| PathRule::new(p)).collect(),
            },
        };
        let purposes = PurposeSet::from_slice(&entry.purposes);
        let new = Arc::new(Indexed { id: Arc::clone(&id), creator, source, purposes, target });
        added += new.heap_bytes();

        // The new entry goes in first (replacing the old one in place when the key is unchanged),
        // so that lookups never see the id missing; see the module docs for moves.
        let moving = previous.is_some_and(|old| !old.same_key(&new));
        if moving {
            self.moves.fetch_add(1, Ordering::Relaxed);
            fence(Ordering::Release);
        }
        let replaced_in_place = self.file(&new, &mut added);
        let old = self.by_id.insert(id, Arc::clone(&new));
        if old.is_none() {
            added += arc_str_bytes(&new.id);
        }
        self.heap_bytes.fetch_add(added, Ordering::Relaxed);
        if let Some(old) = old {
            let mut freed = old.heap_bytes() + interner.release(&old.creator) + interner.release(&old.source);
            if !replaced_in_place {
                freed += self.unfile(&old);
            }
            self.heap_bytes.fetch_sub(freed, Ordering::Relaxed);
        }
        if moving {
            self.moves.fetch_add(1, Ordering::Release);
        }
    }

    /// Removes the entry with this id; returns whether it was present.
    pub fn remove(&self, id: &str) -> bool {
        let mut interner = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let Some((_, old)) = self.by_id.remove(id) else { return false };
        let freed = old.heap_bytes()
            + arc_str_bytes(&old.id)
            + interner.release(&old.creator)
            + interner.release(&old.source)
            + self.unfile(&old);
        self.heap_bytes.fetch_sub(freed, Ordering::Relaxed);
        true
    }

    /// Removes every entry (a full resync starts here).
    pub fn clear(&self) {
        let mut interner = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        self.by_id.clear();
        self.urls.clear();
        self.hosts.clear();
        // Release the tables too: a cleared index is usually refilled from scratch (full resync),
        // and the old capacity would otherwise count as memory held.
        self.by_id.shrink_to_fit();
        self.urls.shrink_to_fit();
        self.hosts.shrink_to_fit();
        *interner = Interner::default();
        self.heap_bytes.store(0, Ordering::Relaxed);
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// The ids of every entry (for a full resync: whatever the store no longer has goes).
    pub fn ids(&self) -> Vec<String> {
        self.by_id.iter().map(|e| e.key().to_string()).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Estimate of the heap bytes the index holds (strings, vectors, map slots), for the
    /// `consentry_registry_index_bytes` metric and the "memory per entry" benchmark.
    pub fn approx_bytes(&self) -> usize {
        let tables = table_bytes(&self.hosts) + table_bytes(&self.urls) + table_bytes(&self.by_id);
        let interned = self.writer.lock().unwrap_or_else(PoisonError::into_inner).table_bytes();
        tables + interned + self.heap_bytes.load(Ordering::Relaxed)
    }

    /// Every entry matching a request. `host` is the target host (lower-case, no trailing dot,
    /// IPv6 without brackets); `authority` is host[:port] as in URLs (default port left out, IPv6 bracketed);
    /// `path_and_query` is the raw request path plus query.
    pub fn lookup(&self, scheme: &str, host: &str, authority: &str, path_and_query: &str) -> Vec<RegistryMatch> {
        const OPTIMISTIC_TRIES: usize = 3;
        for _ in 0..OPTIMISTIC_TRIES {
            let before = self.moves.load(Ordering::Acquire);
            if before % 2 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let found = self.lookup_once(scheme, host, authority, path_and_query);
            fence(Ordering::Acquire);
            if self.moves.load(Ordering::Relaxed) == before {
                return found;
            }
        }
        // Moves keep overlapping: wait for the writer and look up with writers held off.
        let _writers = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        self.lookup_once(scheme, host, authority, path_and_query)
    }

    /// One pass of [`RegistryIndex::lookup`], without the guard against concurrent moves.
    fn lookup_once(&self, scheme: &str, host: &str, authority: &str, path_and_query: &str) -> Vec<RegistryMatch> {
        // Candidates are copied out (pointer copies) so that no shard lock is held while path
        // patterns run; `Vec::new` does not allocate until something is found.
        let mut candidates: Vec<(Arc<Indexed>, bool)> = Vec::new();
        let mut host_has_urls = false;
        if let Some(slot) = self.hosts.get(host) {
            host_has_urls = slot.urls > 0;
            candidates.extend(slot.domains.as_slice().iter().map(|e| (Arc::clone(e), false)));
        }
        if !is_ip_literal(host) {
            // Stored domains have at least two labels, so the walk stops before the last one.
            let mut suffix = host;
            while let Some((_, parent)) = suffix.split_once('.')
                && parent.contains('.')
            {
                suffix = parent;
                if let Some(slot) = self.hosts.get(suffix) {
                    let covering = slot.domains.as_slice().iter().filter(|e| e.includes_subdomains());
                    candidates.extend(covering.map(|e| (Arc::clone(e), true)));
                }
            }
        }

        let mut matches = Vec::new();
        if host_has_urls {
            let key = request_key(scheme, authority, path_and_query);
            // No pattern to run here: the matches are built under the shard's read lock.
            if let Some(bucket) = self.urls.get(key.as_str()) {
                matches.extend(bucket.as_slice().iter().map(|e| e.to_match(key.clone())));
            }
        }
        if candidates.is_empty() {
            return matches;
        }
        let mut canonical: Option<String> = None;
        for (entry, via_subdomain) in &candidates {
            let Target::Domain { domain, paths, .. } = &entry.target else { continue };
            let pattern = if paths.is_empty() {
                WHOLE_DOMAIN
            } else {
                let path = canonical.get_or_insert_with(|| canonical_path(path_and_query));
                let best = paths.iter().filter(|p| p.matches(path)).max_by_key(|p| p.specificity);
                match best {
                    Some(p) => &*p.raw,
                    None => continue,
                }
            };
            let prefix = if *via_subdomain { "*." } else { "" };
            let mut shown = String::with_capacity(prefix.len() + domain.len() + pattern.len());
            shown.push_str(prefix);
            shown.push_str(domain);
            shown.push_str(pattern);
            matches.push(entry.to_match(shown));
        }
        matches
    }

    /// Files `entry` under its key, replacing an entry with the same id there; returns whether it
    /// replaced one. Adds the bytes of any new key or grown bucket to `added`.
    fn file(&self, entry: &Arc<Indexed>, added: &mut usize) -> bool {
        let host = Arc::clone(entry.host());
        let mut slot = match self.hosts.entry(Arc::clone(&host)) {
            MapEntry::Occupied(slot) => slot.into_ref(),
            MapEntry::Vacant(slot) => {
                *added += arc_str_bytes(&host);
                slot.insert(HostSlot::default())
            }
        };
        match &entry.target {
            Target::Domain { .. } => {
                let before = slot.domains.heap_bytes();
                let replaced = slot.domains.replace_or_push(Arc::clone(entry));
                *added += slot.domains.heap_bytes().saturating_sub(before);
                replaced
            }
            Target::Url { url, .. } => {
                // Counted up front so that a lookup never finds the URL without the host saying
                // it has URLs; at worst the host claims one URL too many for a moment.
                slot.urls += 1;
                drop(slot);
                let mut bucket = self.urls.entry(Arc::clone(url)).or_default();
                let before = bucket.heap_bytes();
                let replaced = bucket.replace_or_push(Arc::clone(entry));
                *added += bucket.heap_bytes().saturating_sub(before);
                drop(bucket);
                if replaced && let Some(mut slot) = self.hosts.get_mut(host.as_ref()) {
                    slot.urls = slot.urls.saturating_sub(1);
                }
                replaced
            }
        }
    }

    /// Withdraws this very entry from its key; returns the heap bytes freed (emptied keys, shrunk
    /// buckets).
    fn unfile(&self, entry: &Arc<Indexed>) -> usize {
        let mut freed = 0;
        let mut url_removed = false;
        if let Target::Url { url, .. } = &entry.target {
            // An emptied key needs no accounting: it is an entry's URL string, counted with it.
            self.urls.remove_if_mut(url.as_ref(), |_, bucket| {
                let before = bucket.heap_bytes();
                url_removed = bucket.remove(entry);
                freed += before.saturating_sub(bucket.heap_bytes());
                bucket.is_empty()
            });
        }
        let host = entry.host();
        let emptied = self.hosts.remove_if_mut(host.as_ref(), |_, slot| {
            match &entry.target {
                Target::Url { .. } if url_removed => slot.urls = slot.urls.saturating_sub(1),
                Target::Url { .. } => {}
                Target::Domain { .. } => {
                    let before = slot.domains.heap_bytes();
                    slot.domains.remove(entry);
                    freed += before.saturating_sub(slot.domains.heap_bytes());
                }
            }
            slot.is_empty()
        });
        if let Some((key, _)) = emptied {
            freed += arc_str_bytes(&key);
        }
        freed
    }
}

/// IP literals only ever match exact-URL entries. An IPv6 host has colons; a host whose last label
/// is numeric is an IPv4 address to URL parsers (WHATWG "ends in a number"), and no stored domain
/// can end that way.
fn is_ip_literal(host: &str) -> bool {
    let last = host.rsplit('.').next().unwrap_or(host);
    host.contains(':') || (!last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()))
}

/// Bytes of an `Arc<T>` allocation (two reference counts plus the value).
fn arc_bytes<T>() -> usize {
    2 * size_of::<usize>() + size_of::<T>()
}

fn arc_str_bytes(s: &Arc<str>) -> usize {
    2 * size_of::<usize>() + s.len()
}

/// Bytes of a map's hash tables: one slot and one control byte per bucket of capacity.
fn table_bytes<K: Eq + std::hash::Hash, V>(map: &DashMap<K, V>) -> usize {
    map.capacity() * (size_of::<(K, V)>() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::entry::{DEFAULT_PURPOSES, normalize_url};
    use proptest::prelude::*;

    fn entry(id: &str, target: EntryTarget) -> Entry {
        Entry {
            id: id.into(),
            creator: format!("creator of {id}"),
            contact: String::new(),
            target,
            purposes: DEFAULT_PURPOSES.to_vec(),
            source: "import".into(),
            created_ms: 0,
            updated_ms: 0,
        }
    }

    fn domain(id: &str, domain: &str, include_subdomains: bool, paths: &[&str]) -> Entry {
        let paths = paths.iter().map(|p| p.to_string()).collect();
        entry(id, EntryTarget::Domain { domain: domain.into(), include_subdomains, paths })
    }

    fn url(id: &str, raw: &str) -> Entry {
        entry(id, EntryTarget::Url { url: normalize_url(raw).expect("test URL is valid") })
    }

    fn index(entries: &[Entry]) -> RegistryIndex {
        let index = RegistryIndex::new();
        for e in entries {
            index.upsert(e);
        }
        index
    }

    /// `(id, pattern)` of every match for a request written as `scheme://authority/raw-path`
    /// (the path is passed on untouched, unlike a URL parser would).
    fn hits(index: &RegistryIndex, request: &str) -> Vec<(String, String)> {
        let (scheme, rest) = request.split_once("://").expect("scheme");
        let at = rest.find('/').unwrap_or(rest.len());
        let (authority, path) = rest.split_at(at);
        let host = match authority.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or(v6),
            None => authority.split(':').next().unwrap_or(authority),
        };
        let path = if path.is_empty() { "/" } else { path };
        let mut out: Vec<(String, String)> =
            index.lookup(scheme, host, authority, path).into_iter().map(|m| (m.entry_id, m.pattern)).collect();
        out.sort();
        out
    }

    fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = expected.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        out.sort();
        out
    }

    #[test]
    fn exact_urls_match_after_the_same_normalisation() {
        let index = index(&[url("u", "HTTPS://Example.COM/a/b~c?x=1")]);
        let want = pairs(&[("u", "https://example.com/a/b~c?x=1")]);
        assert_eq!(hits(&index, "https://example.com/a/b~c?x=1"), want);
        assert_eq!(hits(&index, "https://example.com/a/b%7Ec?x=1"), want);
        assert_eq!(hits(&index, "https://example.com/a/b%7ec?x=1"), want);
        assert_eq!(hits(&index, "https://example.com/a/x/../b~c?x=1"), want);
        assert_eq!(hits(&index, "https://example.com/a/./b~c?x=1"), want);
        for other in [
            "https://example.com/a/b~c",
            "https://example.com/a/b~c?x=2",
            "https://example.com/a/b~c/",
            "http://example.com/a/b~c?x=1",
            "https://example.com:8443/a/b~c?x=1",
            "https://www.example.com/a/b~c?x=1",
        ] {
            assert_eq!(hits(&index, other), [], "{other}");
        }
    }

    #[test]
    fn subdomains_match_only_when_included() {
        let index = index(&[domain("com", "example.com", true, &[]), domain("org", "example.org", false, &[])]);
        assert_eq!(hits(&index, "https://example.com/x"), pairs(&[("com", "example.com/*")]));
        assert_eq!(hits(&index, "https://www.example.com/x"), pairs(&[("com", "*.example.com/*")]));
        assert_eq!(hits(&index, "http://a.b.c.example.com:8080/"), pairs(&[("com", "*.example.com/*")]));
        assert_eq!(hits(&index, "https://example.org/x"), pairs(&[("org", "example.org/*")]));
        assert_eq!(hits(&index, "https://www.example.org/x"), []);
        for miss in ["https://notexample.com/", "https://example.com.evil.net/", "https://com/", "https://xample.com/"]
        {
            assert_eq!(hits(&index, miss), [], "{miss}");
        }
    }

    #[test]
    fn path_patterns_use_robots_syntax_and_report_the_longest_match() {
        let index = index(&[domain("d", "example.com", false, &["/private/*", "*.jpg$", "/exact$", "/a/", "/a/b/*"])]);
        let hit = |path: &str| -> Vec<String> {
            hits(&index, &format!("https://example.com{path}")).into_iter().map(|(_, p)| p).collect()
        };
        let none: Vec<String> = Vec::new();
        assert_eq!(hit("/private/x"), ["example.com/private/*"]);
        assert_eq!(hit("/private/"), ["example.com/private/*"]);
        assert_eq!(hit("/private"), none);
        assert_eq!(hit("/img/a.jpg"), ["example.com*.jpg$"]);
        assert_eq!(hit("/img/a.jpg?w=2"), none);
        assert_eq!(hit("/exact"), ["example.com/exact$"]);
        assert_eq!(hit("/exactly"), none);
        assert_eq!(hit("/a/x"), ["example.com/a/"]);
        assert_eq!(hit("/a/b/c"), ["example.com/a/b/*"]);
        assert_eq!(hit("/public/page"), none);
        // Paths are canonicalised before matching: no stepping around a pattern.
        assert_eq!(hit("/public/../private/y"), ["example.com/private/*"]);
        assert_eq!(hit("/%70rivate/y"), ["example.com/private/*"]);
    }

    #[test]
    fn several_entries_for_one_domain_all_match() {
        let index = index(&[
            domain("whole", "example.com", true, &[]),
            domain("blog", "example.com", true, &["/blog/"]),
            domain("exact-only", "example.com", false, &[]),
            domain("sub", "sub.example.com", false, &["/blog/*"]),
            url("img", "https://sub.example.com/blog/1.jpg"),
        ]);
        assert_eq!(
            hits(&index, "https://sub.example.com/blog/1.jpg"),
            pairs(&[
                ("whole", "*.example.com/*"),
                ("blog", "*.example.com/blog/"),
                ("sub", "sub.example.com/blog/*"),
                ("img", "https://sub.example.com/blog/1.jpg"),
            ])
        );
        assert_eq!(
            hits(&index, "https://example.com/blog/"),
            pairs(&[("whole", "example.com/*"), ("blog", "example.com/blog/"), ("exact-only", "example.com/*")])
        );
    }

    #[test]
    fn matches_carry_the_entry_details() {
        let mut e = domain("d", "example.com", true, &[]);
        e.purposes = vec![Purpose::AiTrain, Purpose::Tdm];
        e.source = "feed:https://feed.example/x".into();
        let index = index(&[e]);
        let found = index.lookup("https", "example.com", "example.com", "/");
        assert_eq!(
            found,
            [RegistryMatch {
                entry_id: "d".into(),
                creator: "creator of d".into(),
                source: "feed:https://feed.example/x".into(),
                purposes: vec![Purpose::AiTrain, Purpose::Tdm],
                pattern: "example.com/*".into(),
            }]
        );
    }

    #[test]
    fn upsert_replaces_an_entry_even_when_its_key_changed() {
        let index = index(&[domain("x", "example.com", true, &[]), domain("y", "example.com", true, &[])]);
        index.upsert(&domain("x", "example.org", false, &[]));
        assert_eq!(index.len(), 2);
        assert_eq!(hits(&index, "https://example.com/"), pairs(&[("y", "example.com/*")]));
        assert_eq!(hits(&index, "https://example.org/"), pairs(&[("x", "example.org/*")]));

        // Same key, new paths: replaced in place, not duplicated.
        index.upsert(&domain("x", "example.org", false, &["/p/"]));
        assert_eq!(hits(&index, "https://example.org/"), []);
        assert_eq!(hits(&index, "https://example.org/p/1"), pairs(&[("x", "example.org/p/")]));

        // Domain entry to URL entry and back.
        index.upsert(&url("x", "https://example.org/q"));
        assert_eq!(hits(&index, "https://example.org/p/1"), []);
        assert_eq!(hits(&index, "https://example.org/q"), pairs(&[("x", "https://example.org/q")]));
        index.upsert(&url("x", "https://example.net/q"));
        assert_eq!(hits(&index, "https://example.org/q"), []);
        assert_eq!(hits(&index, "https://example.net/q"), pairs(&[("x", "https://example.net/q")]));
        index.upsert(&domain("x", "example.net", false, &[]));
        assert_eq!(hits(&index, "https://example.net/q"), pairs(&[("x", "example.net/*")]));
        assert_eq!(index.len(), 2);
    }

    #[test]
    fn remove_and_clear() {
        let index = index(&[
            domain("a", "example.com", true, &[]),
            domain("b", "example.com", true, &[]),
            url("c", "https://example.com/x"),
            url("d", "https://example.com/x"),
        ]);
        assert_eq!(index.len(), 4);
        assert!(index.remove("a"));
        assert!(!index.remove("a"));
        assert!(index.remove("c"));
        assert_eq!(index.len(), 2);
        assert_eq!(
            hits(&index, "https://example.com/x"),
            pairs(&[("b", "example.com/*"), ("d", "https://example.com/x")])
        );
        assert!(index.remove("d"));
        assert_eq!(hits(&index, "https://example.com/x"), pairs(&[("b", "example.com/*")]));
        assert!(!index.is_empty());
        index.clear();
        assert!(index.is_empty());
        assert_eq!(index.len(), 0);
        assert_eq!(hits(&index, "https://example.com/x"), []);
        assert!(!index.remove("b"));
    }

    #[test]
    fn ip_hosts_only_match_exact_urls() {
        let index = index(&[
            url("v6", "http://[2001:DB8::1]:8080/x"),
            url("v4", "https://192.0.2.1/a"),
            domain("d", "example.com", true, &[]),
        ]);
        assert_eq!(
            index
                .lookup("http", "2001:db8::1", "[2001:db8::1]:8080", "/x")
                .into_iter()
                .map(|m| m.pattern)
                .collect::<Vec<_>>(),
            ["http://[2001:db8::1]:8080/x"]
        );
        assert_eq!(index.lookup("http", "2001:db8::1", "[2001:db8::1]", "/x"), []);
        assert_eq!(hits(&index, "https://192.0.2.1/a"), pairs(&[("v4", "https://192.0.2.1/a")]));
        assert_eq!(hits(&index, "https://192.0.2.1/b"), []);
        assert_eq!(hits(&index, "https://10.0.0.1/"), []);
        assert!(is_ip_literal("::1") && is_ip_literal("10.0.0.1") && !is_ip_literal("a1.example"));
    }

    #[test]
    fn byte_accounting_returns_to_zero() {
        let index = RegistryIndex::new();
        for round in 0..3 {
            for i in 0..50 {
                index.upsert(&domain(&format!("d{i}"), &format!("site{}.example", i % 7), i % 2 == 0, &["/a/*"]));
                index.upsert(&url(&format!("u{i}"), &format!("https://img{}.example/{}", i % 5, i % 3)));
            }
            // Replacements that move keys, then removal of everything.
            for i in 0..50 {
                index.upsert(&url(&format!("d{i}"), &format!("https://moved{round}.example/{i}")));
            }
            assert!(index.heap_bytes.load(Ordering::Relaxed) > 0);
            assert!(index.approx_bytes() > index.heap_bytes.load(Ordering::Relaxed));
            for i in 0..50 {
                assert!(index.remove(&format!("d{i}")));
                assert!(index.remove(&format!("u{i}")));
            }
            assert_eq!(index.heap_bytes.load(Ordering::Relaxed), 0, "round {round}");
            assert!(index.hosts.is_empty() && index.urls.is_empty() && index.by_id.is_empty());
        }
    }

    #[test]
    fn concurrent_replacement_never_hides_the_entry() {
        let index = Arc::new(index(&[domain("x", "www.example.com", false, &[])]));
        let writer = {
            let index = Arc::clone(&index);
            std::thread::spawn(move || {
                // Moves between maps, between keys of one map, and in place.
                let targets = [
                    url("x", "https://www.example.com/"),
                    domain("x", "www.example.com", false, &[]),
                    domain("x", "example.com", true, &[]),
                    domain("x", "example.com", true, &["/"]),
                    url("x", "https://www.example.com/"),
                    domain("x", "example.com", true, &[]),
                ];
                for i in 0..6_000 {
                    index.upsert(&targets[i % targets.len()]);
                }
            })
        };
        while !writer.is_finished() {
            let found = index.lookup("https", "www.example.com", "www.example.com", "/");
            assert!(!found.is_empty());
        }
        writer.join().expect("writer thread");
        assert_eq!(index.len(), 1);
    }

    fn label() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec!["a", "b", "ex", "example", "notexample", "xample", "com", "org"])
    }

    fn name(min: usize, max: usize) -> impl Strategy<Value = String> {
        prop::collection::vec(label(), min..=max).prop_map(|labels| labels.join("."))
    }

    #[test]
    fn compiled_rules_pick_the_fast_matchers() {
        let kind = |raw: &str| {
            let rule = PathRule::new(raw);
            match &rule.matcher {
                Matcher::Prefix(p) => format!("prefix {}", p.text(&rule.raw)),
                Matcher::Exact(e) => format!("exact {}", e.text(&rule.raw)),
                Matcher::Wildcard(_) => "wildcard".to_string(),
            }
        };
        assert_eq!(kind("/private/*"), "prefix /private/");
        assert_eq!(kind("/a%7eb/"), "prefix /a~b/");
        assert_eq!(kind("*"), "prefix ");
        assert_eq!(kind("/page$"), "exact /page");
        assert_eq!(kind("/a/*/b"), "wildcard");
        assert_eq!(kind("*.jpg$"), "wildcard");
        assert_eq!(kind("/a$b"), "wildcard");
        assert_eq!(PathRule::new("/private/*").specificity, PathPattern::new("/private/*").specificity());
        assert!(matches!(PathRule::new("/private/*").matcher, Matcher::Prefix(Literal::RawPrefix(9))));
        assert!(matches!(PathRule::new("/%7e/").matcher, Matcher::Prefix(Literal::Owned(_))));
        assert!(size_of::<PathRule>() <= 48, "{}", size_of::<PathRule>());
    }

    proptest! {
        /// The fast matchers agree with the general robots-style matcher.
        #[test]
        fn compiled_rules_match_like_path_patterns(
            pattern in "[/ab.%7eE*$]{0,8}",
            path in "/[/ab.%7eE*$?]{0,10}",
        ) {
            let canonical = canonical_path(&path);
            let general = PathPattern::new(&pattern);
            let rule = PathRule::new(&pattern);
            prop_assert_eq!(rule.matches(&canonical), general.matches_normalized_path(&canonical));
            prop_assert_eq!(rule.specificity, general.specificity());
        }

        /// The index agrees with the definition: a domain entry matches a host exactly when the
        /// host is the domain, or ends with "." + domain and the entry includes subdomains.
        #[test]
        fn matches_only_on_label_boundaries(
            domains in prop::collection::vec((name(2, 3), any::<bool>()), 1..8),
            hosts in prop::collection::vec(name(1, 5), 1..8),
        ) {
            let entries: Vec<Entry> = domains
                .iter()
                .enumerate()
                .map(|(i, (d, subs))| domain(&format!("e{i}"), d, *subs, &[]))
                .collect();
            let index = index(&entries);
            for host in &hosts {
                let mut found: Vec<String> =
                    index.lookup("https", host, host, "/").into_iter().map(|m| m.entry_id).collect();
                found.sort();
                let mut want: Vec<String> = domains
                    .iter()
                    .enumerate()
                    .filter(|(_, (d, subs))| host == d || (*subs && host.ends_with(&format!(".{d}"))))
                    .map(|(i, _)| format!("e{i}"))
                    .collect();
                want.sort();
                prop_assert_eq!(found, want, "host {}", host);
            }
        }
    }
}

//! W3C TDMRep (Text and Data Mining Reservation Protocol, CG Final Report): the
//! `/.well-known/tdmrep.json` file, the `tdm-reservation` / `tdm-policy` response headers, the
//! HTML `<meta>` values, and the carriers' precedence.
//!
//! Follows SIGNALS.md §3 and DESIGN §3/§4:
//! - `tdm-reservation` is `1` (reserved) or `0` (not reserved); "other values are considered
//!   protocol errors … MUST consider that `tdm-reservation` is unset" (§3.1): recorded, unset;
//! - the file is a JSON array of `{location, tdm-reservation, tdm-policy?}`; **first match in
//!   array order wins** (not longest match); `location` is a robots.txt path pattern (`*`, `$`,
//!   RFC 9309 percent-encoding); no match = unset; a file that is not a JSON array is "not
//!   implemented" (no signal, recorded);
//! - precedence (§3.6): file → header → meta, later overrides earlier, and absence never resets;
//!   each property is taken separately (see [`combine`]);
//! - purposes (DESIGN §3): a reservation disallows ai-input, ai-train and tdm, and search only in
//!   `eu_strict` mode; `0` allows the same purposes.

use super::pattern::PathPattern;
use super::prefs::Prefs;
use crate::decide::Purpose;

/// Purposes a TDM reservation speaks to outside `eu_strict` mode.
const TDM_PURPOSES: [Purpose; 3] = [Purpose::AiInput, Purpose::AiTrain, Purpose::Tdm];

/// The two TDMRep properties as one carrier gives them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TdmValue {
    /// `Some(true)` for `1`, `Some(false)` for `0`, `None` when absent or invalid.
    pub reservation: Option<bool>,
    /// The `tdm-policy` URL as written (only meaningful when reserved, §3.1).
    pub policy: Option<String>,
    /// Invalid values and other things not understood.
    pub problems: Vec<String>,
}

impl TdmValue {
    /// What the reservation says per purpose; `eu_strict` adds search (DESIGN §3).
    pub fn prefs(&self, eu_strict: bool) -> Prefs {
        let Some(reserved) = self.reservation else {
            return Prefs::UNKNOWN;
        };
        let prefs = Prefs::UNKNOWN.with_all(&TDM_PURPOSES, !reserved);
        if eu_strict { prefs.with(Purpose::Search, !reserved) } else { prefs }
    }

    /// From the `tdm-reservation` and `tdm-policy` response header values (each possibly
    /// repeated).
    pub fn from_headers<R, P, S, T>(reservation: R, policy: P) -> Self
    where
        R: IntoIterator<Item = S>,
        P: IntoIterator<Item = T>,
        S: AsRef<str>,
        T: AsRef<str>,
    {
        let mut out = TdmValue::default();
        let values: Vec<String> = reservation.into_iter().map(|v| v.as_ref().to_string()).collect();
        out.reservation = out.reservation_from_lines("tdm-reservation header", &values);
        let policies: Vec<String> = policy.into_iter().map(|v| v.as_ref().trim().to_string()).collect();
        out.policy = out.single_policy("tdm-policy header", policies);
        out
    }

    /// From the `content` attributes of `<meta name="tdm-reservation">` and
    /// `<meta name="tdm-policy">` (the HTML scan happens elsewhere).
    pub fn from_meta(reservation: Option<&str>, policy: Option<&str>) -> Self {
        let mut out = TdmValue::default();
        if let Some(v) = reservation {
            out.reservation = out.reservation_value("tdm-reservation meta", v);
        }
        out.policy = out.single_policy("tdm-policy meta", policy.map(|p| p.trim().to_string()));
        out
    }

    /// Repeated header lines must agree; otherwise the value is a protocol error (unset).
    fn reservation_from_lines(&mut self, carrier: &str, values: &[String]) -> Option<bool> {
        let parsed: Vec<Option<bool>> = values.iter().map(|v| self.reservation_value(carrier, v)).collect();
        match parsed.split_first() {
            None => None,
            Some((first, rest)) if rest.iter().all(|v| v == first) => *first,
            Some(_) => {
                self.problems.push(format!("{carrier}: conflicting values {values:?}: unset"));
                None
            }
        }
    }

    fn reservation_value(&mut self, carrier: &str, value: &str) -> Option<bool> {
        match value.trim() {
            "1" => Some(true),
            "0" => Some(false),
            other => {
                self.problems.push(format!("{carrier}: value `{other}` is neither 1 nor 0: unset"));
                None
            }
        }
    }

    fn single_policy(&mut self, carrier: &str, values: impl IntoIterator<Item = String>) -> Option<String> {
        let values: Vec<String> = values.into_iter().filter(|v| !v.is_empty()).collect();
        if values.len() > 1 {
            self.problems.push(format!("{carrier}: several policies, the first is used"));
        }
        values.into_iter().next()
    }
}

/// Which TDMRep carrier an effective value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carrier {
    File,
    Header,
    Meta,
}

/// The effective TDMRep value after precedence, with where each property came from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TdmEffective {
    pub reservation: Option<bool>,
    pub reservation_from: Option<Carrier>,
    pub policy: Option<String>,
    pub policy_from: Option<Carrier>,
}

impl TdmEffective {
    /// What the effective reservation says per purpose (see [`TdmValue::prefs`]).
    pub fn prefs(&self, eu_strict: bool) -> Prefs {
        let value = TdmValue { reservation: self.reservation, ..TdmValue::default() };
        value.prefs(eu_strict)
    }
}

/// TDMRep precedence (§3.6): file, then header, then meta; a later carrier's value supersedes an
/// earlier one, and "the absence of `tdm-reservation` and `tdm-policy` MUST not reset current
/// values", so each property is taken from the last carrier that defines it. This lets a page's
/// explicit `0` lift a site-wide `1` — within TDMRep only (SIGNALS.md §11.5).
pub fn combine(file: Option<&TdmValue>, header: Option<&TdmValue>, meta: Option<&TdmValue>) -> TdmEffective {
    let mut out = TdmEffective::default();
    for (carrier, value) in [(Carrier::File, file), (Carrier::Header, header), (Carrier::Meta, meta)] {
        let Some(value) = value else { continue };
        if let Some(r) = value.reservation {
            out.reservation = Some(r);
            out.reservation_from = Some(carrier);
        }
        if let Some(p) = &value.policy {
            out.policy = Some(p.clone());
            out.policy_from = Some(carrier);
        }
    }
    out
}

// === /.well-known/tdmrep.json ===

/// One rule of a `tdmrep.json` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TdmRule {
    pub location: PathPattern,
    pub value: TdmValue,
    /// 0-based index in the array.
    pub index: usize,
    /// 1-based line where the rule's object starts.
    pub line: u32,
}

/// A parsed `/.well-known/tdmrep.json`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TdmRepFile {
    /// The usable rules, in file order (rules without a usable `location` are dropped).
    pub rules: Vec<TdmRule>,
    /// File-level problems (malformed JSON, not an array, dropped rules), with their line.
    pub problems: Vec<(u32, String)>,
    /// False when the file is malformed: it then gives no signal (protocol not implemented).
    pub valid: bool,
}

impl TdmRepFile {
    /// Parses the file body.
    pub fn parse(body: &[u8]) -> Self {
        let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
        let json: serde_json::Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => return Self::malformed(e.line(), format!("not JSON ({e}): no signal")),
        };
        let serde_json::Value::Array(items) = json else {
            return Self::malformed(1, "not a JSON array of rules: no signal".to_string());
        };
        let offsets = element_offsets(body);
        let mut out = TdmRepFile { valid: true, ..Self::default() };
        for (index, item) in items.iter().enumerate() {
            let line = offsets.get(index).map_or(1, |&o| line_of(body, o));
            out.push_rule(index, line, item);
        }
        out
    }

    fn malformed(line: usize, problem: String) -> Self {
        TdmRepFile { problems: vec![(u32::try_from(line.max(1)).unwrap_or(u32::MAX), problem)], ..Self::default() }
    }

    fn push_rule(&mut self, index: usize, line: u32, item: &serde_json::Value) {
        let Some(obj) = item.as_object() else {
            self.problems.push((line, format!("rule {index} is not an object: ignored")));
            return;
        };
        let Some(location) = obj.get("location").and_then(|l| l.as_str()) else {
            self.problems.push((line, format!("rule {index} has no string `location`: ignored")));
            return;
        };
        let mut value = TdmValue::default();
        value.reservation = reservation_from_json(obj.get("tdm-reservation"), &mut value.problems);
        value.policy = obj.get("tdm-policy").and_then(|p| p.as_str()).map(str::to_string);
        let location = self.location_pattern(index, line, location);
        self.rules.push(TdmRule { location, value, index, line });
    }

    /// `location` should be a path pattern; leniently accept a full URL (its path) and a
    /// pattern missing its leading `/`, recording both.
    fn location_pattern(&mut self, index: usize, line: u32, location: &str) -> PathPattern {
        if let Some(path) = path_of_absolute_url(location) {
            self.problems.push((line, format!("rule {index}: `location` is a full URL; its path `{path}` is used")));
            return PathPattern::new(path);
        }
        if location.starts_with('/') || location.starts_with('*') {
            return PathPattern::new(location);
        }
        self.problems.push((
            line,
            format!("rule {index}: `location` `{location}` does not start with `/`; read as `/{location}`"),
        ));
        PathPattern::new(&format!("/{location}"))
    }

    /// The first rule whose location matches (TDMRep: "The most specific match is the first in
    /// sequence"); `None` = unset for this path, or no valid file.
    pub fn lookup(&self, path_and_query: &str) -> Option<&TdmRule> {
        self.rules.iter().find(|r| r.location.matches(path_and_query))
    }
}

/// The JSON value of `tdm-reservation`: only the numbers 1 and 0 are valid (strings and booleans
/// are "other values", hence unset, recorded).
fn reservation_from_json(value: Option<&serde_json::Value>, problems: &mut Vec<String>) -> Option<bool> {
    let Some(value) = value else {
        problems.push("`tdm-reservation` missing: unset".to_string());
        return None;
    };
    match value.as_f64() {
        Some(1.0) => Some(true),
        Some(0.0) => Some(false),
        _ => {
            problems.push(format!("`tdm-reservation` value {value} is neither 1 nor 0: unset"));
            None
        }
    }
}

/// The path (plus query) of an `http(s)://` URL, `/` when it has none.
fn path_of_absolute_url(s: &str) -> Option<&str> {
    let lower = s.get(..8).unwrap_or(s).to_ascii_lowercase();
    let rest = if lower.starts_with("https://") {
        s.get(8..)?
    } else if lower.starts_with("http://") {
        s.get(7..)?
    } else {
        return None;
    };
    Some(rest.find(['/', '?']).and_then(|i| rest.get(i..)).unwrap_or("/"))
}

/// Byte offsets of the elements of a top-level JSON array (the input is known to be valid
/// JSON): a tiny scanner that tracks strings and nesting depth, so rules can be reported by line
/// without a JSON parser that keeps positions.
fn element_offsets(body: &[u8]) -> Vec<usize> {
    let (mut depth, mut in_string, mut escaped, mut expect_value) = (0usize, false, false, false);
    let mut out = Vec::new();
    for (i, &b) in body.iter().enumerate() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        if depth == 1 && expect_value && !b.is_ascii_whitespace() && b != b']' {
            out.push(i);
            expect_value = false;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                expect_value = depth == 1;
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b',' if depth == 1 => expect_value = true,
            _ => {}
        }
    }
    out
}

fn line_of(body: &[u8], offset: usize) -> u32 {
    let newlines = body.get(..offset).map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count());
    u32::try_from(newlines + 1).unwrap_or(u32::MAX)
}

#[cfg(test)]
#[path = "tdmrep/tests.rs"]
mod tests;

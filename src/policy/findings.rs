//! From parsed signals to [`Finding`]s (pure): the bridge between the parsers in
//! [`crate::signals`] and the decision engine.
//!
//! Every finding names its source, the purposes it speaks to, the raw value seen and where it was
//! seen (the robots.txt URL and line, or the URL and header name). Parse problems are recorded as
//! `unknown` findings: the decision keeps them without blocking on them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use http::HeaderMap;

use crate::decide::{Effect, Finding, Purpose, Source};
use crate::signals::ai_txt::AiTxt;
use crate::signals::content_signal::{ContentSignal, ContentSignalRules};
use crate::signals::content_usage::{ContentUsage, ContentUsageRules};
use crate::signals::prefs::Prefs;
use crate::signals::robots::RobotsTxt;
use crate::signals::robots_tag::RobotsTag;
use crate::signals::rsl::RslDocument;
use crate::signals::tdmrep::{Carrier, TdmRepFile, TdmValue, combine};

use super::files::{FileState, SiteFile};

/// How signals are read where the standards leave a choice (`[signals]` in the config).
#[derive(Debug, Clone, Copy, Default)]
pub struct Reading {
    /// Map legacy aipref labels (`ai=n`, `train-genai=n`, ...) to `train-ai=n`.
    pub aipref_legacy: bool,
    /// A TDM reservation also disallows search (EU-strict reading of CDSM Art. 4).
    pub eu_strict: bool,
}

/// The AI signals inside one robots.txt group, parsed once per (file, token).
#[derive(Debug, Default)]
pub struct EmbeddedSignals {
    content_usage: ContentUsageRules,
    content_signal: ContentSignalRules,
    /// RSL licence documents named by `License:` lines (the group's replace the global ones).
    licenses: Vec<String>,
}

/// Memo of [`EmbeddedSignals`] per token for one fetched robots.txt.
#[derive(Debug, Default, Clone)]
pub struct EmbeddedMemo(Arc<Mutex<HashMap<String, Arc<EmbeddedSignals>>>>);

impl EmbeddedMemo {
    /// The group's signals for `token`, parsed on first use.
    pub fn get(&self, rules: &RobotsTxt, token: &str, reading: Reading) -> Arc<EmbeddedSignals> {
        let key = token.to_ascii_lowercase();
        let mut memo = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        memo.entry(key).or_insert_with(|| Arc::new(EmbeddedSignals::parse(rules, token, reading))).clone()
    }
}

impl EmbeddedSignals {
    fn parse(rules: &RobotsTxt, token: &str, reading: Reading) -> Self {
        let lines = rules.group_extensions(token);
        let with_key = |key: &str| -> Vec<(String, u32)> {
            lines.iter().filter(|l| l.key.eq_ignore_ascii_case(key)).map(|l| (l.value.clone(), l.line)).collect()
        };
        let global: Vec<(String, u32)> = rules
            .global_extensions()
            .iter()
            .filter(|l| l.key.eq_ignore_ascii_case("license"))
            .map(|l| (l.value.clone(), l.line))
            .collect();
        let licenses = crate::signals::rsl::robots_licenses(global, with_key("license"));
        Self {
            content_usage: ContentUsageRules::parse(with_key("content-usage"), reading.aipref_legacy),
            content_signal: ContentSignalRules::parse(with_key("content-signal")),
            licenses: licenses.licenses.into_iter().map(|l| l.url).collect(),
        }
    }

    /// The RSL licence documents robots.txt names for this token.
    pub fn licenses(&self) -> &[String] {
        &self.licenses
    }

    /// Findings for one path of the origin (`robots_url` and its hash are the evidence).
    pub fn findings(&self, path_and_query: &str, robots_url: &str, sha256: Option<&str>) -> Vec<Finding> {
        let mut found = Vec::new();
        let at = |line: u32| Location { evidence: robots_url, sha256, line: Some(line), detail: None };
        if let Some(matched) = self.content_usage.evaluate(path_and_query) {
            for rule in &matched.rules {
                let text = format!("Content-Usage: {}", rule.usage.raw);
                found.extend(prefs_findings(
                    Source::ContentUsage,
                    matched.prefs,
                    &text,
                    &rule.usage.problems,
                    at(rule.line),
                ));
            }
        }
        if let Some(matched) = self.content_signal.evaluate(path_and_query) {
            for rule in &matched.rules {
                let text = format!("Content-Signal: {}", rule.signal.raw);
                let problems = &rule.signal.problems;
                found.extend(prefs_findings(Source::ContentSignal, matched.prefs, &text, problems, at(rule.line)));
            }
        }
        found
    }
}

/// Where a signal was seen.
#[derive(Debug, Clone, Copy)]
pub struct Location<'a> {
    pub evidence: &'a str,
    pub sha256: Option<&'a str>,
    pub line: Option<u32>,
    pub detail: Option<&'a str>,
}

/// Findings for what one signal said: one `disallow` naming every disallowed purpose, one `allow`
/// for explicit allows, and one `unknown` when parts could not be understood.
pub fn prefs_findings(source: Source, prefs: Prefs, rule: &str, problems: &[String], at: Location<'_>) -> Vec<Finding> {
    let make = |effect: Effect, purposes: Vec<Purpose>, detail: Option<String>| Finding {
        source,
        effect,
        purposes,
        rule: Some(rule.to_string()),
        line: at.line,
        evidence: Some(at.evidence.to_string()),
        evidence_sha256: at.sha256.map(str::to_string),
        detail: detail.or_else(|| at.detail.map(str::to_string)),
        entry_id: None,
        creator: None,
    };
    let mut found = Vec::new();
    let disallowed = prefs.disallowed();
    if !disallowed.is_empty() {
        found.push(make(Effect::Disallow, disallowed, None));
    }
    let allowed: Vec<Purpose> = Purpose::ALL.into_iter().filter(|&p| prefs.get(p) == Some(true)).collect();
    if !allowed.is_empty() {
        found.push(make(Effect::Allow, allowed, None));
    }
    if !problems.is_empty() {
        found.push(make(Effect::Unknown, Vec::new(), Some(problems.join("; "))));
    }
    found
}

/// Purposes `ai.txt` speaks to (DESIGN §3: a Disallow concerns training).
const AI_TXT_PURPOSES: [Purpose; 1] = [Purpose::AiTrain];
/// Purposes a TDM reservation speaks to (search only in EU-strict reading).
const TDM_PURPOSES: [Purpose; 3] = [Purpose::AiInput, Purpose::AiTrain, Purpose::Tdm];

/// A policy file that could not be fetched: recorded as `unreachable`, or as a disallow of the
/// file's purposes when `policy.on_signal_unreachable = "block"` (fail closed).
fn unreachable_finding(source: Source, url: &str, reason: &str, purposes: &[Purpose], block: bool) -> Finding {
    Finding {
        source,
        effect: if block { Effect::Disallow } else { Effect::Unreachable },
        purposes: purposes.to_vec(),
        rule: Some(format!("{url} unreachable: {reason}")),
        line: None,
        evidence: Some(url.to_string()),
        evidence_sha256: None,
        detail: block.then(|| "policy.on_signal_unreachable = \"block\"".to_string()),
        entry_id: None,
        creator: None,
    }
}

/// The ai.txt findings for a request (before the fetch).
pub fn ai_txt_findings(
    file: &SiteFile<AiTxt>,
    tokens: &[&str],
    path_and_query: &str,
    block_unreachable: bool,
) -> Vec<Finding> {
    match &file.state {
        FileState::Absent { .. } => Vec::new(),
        FileState::Unreachable { reason } => {
            vec![unreachable_finding(Source::AiTxt, &file.url, reason, &AI_TXT_PURPOSES, block_unreachable)]
        }
        FileState::Found(ai_txt) => {
            let matched = ai_txt.check(tokens, path_and_query);
            let Some(rule) = matched.rule else { return Vec::new() };
            let at =
                Location { evidence: &file.url, sha256: file.sha256.as_deref(), line: Some(rule.line), detail: None };
            let prefs = Prefs::UNKNOWN.with_all(&AI_TXT_PURPOSES, !matched.disallowed);
            prefs_findings(Source::AiTxt, prefs, &rule.text(), &[], at)
        }
    }
}

/// What one RSL licence document says for `request_url`: a `disallow` for every purpose it
/// prohibits, does not permit, or requires a licence for that the crawler does not hold. An
/// unreachable or invalid document grants nothing and is recorded.
pub fn rsl_findings(
    doc: &SiteFile<RslDocument>,
    request_url: &str,
    holds_license: bool,
    announced: &str,
) -> Vec<Finding> {
    let at = Location { evidence: &doc.url, sha256: doc.sha256.as_deref(), line: None, detail: Some(announced) };
    match &doc.state {
        FileState::Absent { status } => {
            let rule = format!("RSL licence {} is unavailable ({status}): it grants nothing", doc.url);
            prefs_findings(Source::Rsl, Prefs::UNKNOWN, &rule, &[format!("licence document answered {status}")], at)
        }
        FileState::Unreachable { reason } => {
            let rule = format!("RSL licence {} unreachable: it grants nothing", doc.url);
            prefs_findings(Source::Rsl, Prefs::UNKNOWN, &rule, std::slice::from_ref(reason), at)
        }
        FileState::Found(rsl) if !rsl.valid => {
            let problems: Vec<String> = rsl.problems.iter().map(|(line, p)| format!("line {line}: {p}")).collect();
            prefs_findings(Source::Rsl, Prefs::UNKNOWN, "invalid RSL licence: it grants nothing", &problems, at)
        }
        FileState::Found(rsl) => {
            let prefs = rsl.prefs(request_url, holds_license);
            let detail = Purpose::ALL
                .into_iter()
                .filter_map(|p| rsl.evaluate(request_url, p).map(|e| format!("{}: {}", p.as_str(), e.detail)))
                .collect::<Vec<_>>()
                .join("; ");
            let line = rsl.contents_for(request_url).first().map(|c| c.line);
            let rule = format!("RSL licence {}", doc.url);
            let full_detail = format!("{announced}; {detail}");
            let at = Location { line, detail: Some(&full_detail), ..at };
            prefs_findings(Source::Rsl, prefs, &rule, &[], at)
        }
    }
}

/// The TDMRep file's say for a path, carried to the response stage where header and meta may
/// override it (TDMRep precedence: file, then header, then meta).
#[derive(Debug, Clone, Default)]
pub struct TdmFileValue {
    pub value: Option<TdmValue>,
    pub url: String,
    pub sha256: Option<String>,
    pub line: Option<u32>,
}

/// What tdmrep.json says for a request: its first matching rule (carried forward), plus an
/// `unreachable` finding when it could not be fetched.
pub fn tdm_file_value(
    file: &SiteFile<TdmRepFile>,
    path_and_query: &str,
    block_unreachable: bool,
) -> (TdmFileValue, Vec<Finding>) {
    let mut carried = TdmFileValue { url: file.url.clone(), sha256: file.sha256.clone(), ..TdmFileValue::default() };
    match &file.state {
        FileState::Absent { .. } => (carried, Vec::new()),
        FileState::Unreachable { reason } => {
            (carried, vec![unreachable_finding(Source::Tdmrep, &file.url, reason, &TDM_PURPOSES, block_unreachable)])
        }
        FileState::Found(tdmrep) => {
            if let Some(rule) = tdmrep.lookup(path_and_query) {
                carried.value = Some(rule.value.clone());
                carried.line = Some(rule.line);
            }
            let problems: Vec<String> = tdmrep.problems.iter().map(|(line, p)| format!("line {line}: {p}")).collect();
            let mut found = Vec::new();
            if !tdmrep.valid {
                let at = Location { evidence: &file.url, sha256: file.sha256.as_deref(), line: None, detail: None };
                found.extend(prefs_findings(
                    Source::Tdmrep,
                    Prefs::UNKNOWN,
                    "malformed tdmrep.json: no signal",
                    &problems,
                    at,
                ));
            }
            (carried, found)
        }
    }
}

/// TDMRep after precedence (file → header → meta), cited at the carrier that decided.
pub fn tdm_findings(
    file: &TdmFileValue,
    header: Option<&TdmValue>,
    meta: Option<&TdmValue>,
    url: &str,
    reading: Reading,
) -> Vec<Finding> {
    let effective = combine(file.value.as_ref(), header, meta);
    let Some(reserved) = effective.reservation else { return Vec::new() };
    let value = if reserved { "1" } else { "0" };
    let (rule, at) = match effective.reservation_from {
        Some(Carrier::File) => (
            format!("\"tdm-reservation\": {value}"),
            Location {
                evidence: &file.url,
                sha256: file.sha256.as_deref(),
                line: file.line,
                detail: Some("tdmrep.json"),
            },
        ),
        Some(Carrier::Meta) => (
            format!("<meta name=\"tdm-reservation\" content=\"{value}\">"),
            Location { evidence: url, sha256: None, line: None, detail: Some("HTML meta") },
        ),
        _ => (
            format!("tdm-reservation: {value}"),
            Location { evidence: url, sha256: None, line: None, detail: Some("response header") },
        ),
    };
    let mut problems = Vec::new();
    for carried in [header, meta].into_iter().flatten() {
        problems.extend(carried.problems.iter().cloned());
    }
    prefs_findings(Source::Tdmrep, effective.prefs(reading.eu_strict), &rule, &problems, at)
}

/// What a response carries that may hold signals.
#[derive(Debug, Clone, Copy)]
pub struct ResponseSignals<'a> {
    pub headers: &'a HeaderMap,
    /// `<meta name content>` pairs of the HTML `<head>` (name lower-cased), when it was scanned.
    pub metas: Option<&'a [(String, String)]>,
    /// `noimageai` counts for images only.
    pub is_image: bool,
    /// tdmrep.json's rule for this path (TDMRep precedence: file, then header, then meta).
    pub tdm_file: &'a TdmFileValue,
}

/// The response's signals: `X-Robots-Tag`, `Content-Usage`, `Content-Signal` headers, robots meta
/// tags (`noai`, `noimageai`), and TDMRep across file, header and meta. `tokens` are the
/// crawler's robots tokens (own first, then honoured).
pub fn response_findings(response: &ResponseSignals<'_>, url: &str, tokens: &[&str], reading: Reading) -> Vec<Finding> {
    let headers = response.headers;
    let values = |name: &str| -> Vec<String> {
        headers.get_all(name).iter().map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()).collect()
    };
    let at = |detail: &'static str| Location { evidence: url, sha256: None, line: None, detail: Some(detail) };
    let mut found = Vec::new();

    let robots_tag_lines = values("x-robots-tag");
    if !robots_tag_lines.is_empty() {
        let tag = RobotsTag::parse_header(&robots_tag_lines);
        let matched = tag.evaluate(tokens, response.is_image);
        let rule = format!("X-Robots-Tag: {}", robots_tag_lines.join(", "));
        found.extend(prefs_findings(Source::XRobotsTag, matched.prefs, &rule, &tag.problems, at("response header")));
    }
    let usage_lines: Vec<Vec<u8>> = headers.get_all("content-usage").iter().map(|v| v.as_bytes().to_vec()).collect();
    if !usage_lines.is_empty() {
        let usage = ContentUsage::parse_field_lines(&usage_lines, reading.aipref_legacy);
        let rule = format!("Content-Usage: {}", usage.raw);
        found.extend(prefs_findings(
            Source::ContentUsage,
            usage.prefs(),
            &rule,
            &usage.problems,
            at("response header"),
        ));
    }
    let signal_lines = values("content-signal");
    if !signal_lines.is_empty() {
        let signal = ContentSignal::parse_field_lines(&signal_lines);
        let rule = format!("Content-Signal: {}", signal.raw);
        found.extend(prefs_findings(
            Source::ContentSignal,
            signal.prefs,
            &rule,
            &signal.problems,
            at("response header"),
        ));
    }
    let metas = response.metas.unwrap_or(&[]);
    found.extend(meta_robots_findings(metas, url, tokens, response.is_image));

    let reservation = values("tdm-reservation");
    let policy = values("tdm-policy");
    let header = (!reservation.is_empty() || !policy.is_empty()).then(|| TdmValue::from_headers(&reservation, &policy));
    let meta_value = |name: &str| metas.iter().find(|(n, _)| n == name).map(|(_, content)| content.as_str());
    let meta = match (meta_value("tdm-reservation"), meta_value("tdm-policy")) {
        (None, None) => None,
        (reservation, policy) => Some(TdmValue::from_meta(reservation, policy)),
    };
    found.extend(tdm_findings(response.tdm_file, header.as_ref(), meta.as_ref(), url, reading));
    found
}

/// `<meta name="robots">` and `<meta name="<token>">` with `noai` / `noimageai`.
fn meta_robots_findings(metas: &[(String, String)], url: &str, tokens: &[&str], is_image: bool) -> Vec<Finding> {
    let relevant: Vec<(&str, &str)> = metas
        .iter()
        .filter(|(name, _)| name == "robots" || tokens.iter().any(|t| t.eq_ignore_ascii_case(name)))
        .map(|(name, content)| (name.as_str(), content.as_str()))
        .collect();
    if relevant.is_empty() {
        return Vec::new();
    }
    let tag = RobotsTag::parse_meta(relevant.iter().copied());
    let matched = tag.evaluate(tokens, is_image);
    let Some(directive) = matched.directives.first() else { return Vec::new() };
    let (name, content) = relevant.get(directive.source).copied().unwrap_or(("robots", ""));
    let rule = format!("<meta name=\"{name}\" content=\"{content}\">");
    let at = Location { evidence: url, sha256: None, line: None, detail: Some("HTML <head>") };
    prefs_findings(Source::MetaRobots, matched.prefs, &rule, &tag.problems, at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn header_findings(
        h: &HeaderMap,
        url: &str,
        tokens: &[&str],
        is_image: bool,
        tdm: &TdmFileValue,
        reading: Reading,
    ) -> Vec<Finding> {
        let signals = ResponseSignals { headers: h, metas: None, is_image, tdm_file: tdm };
        response_findings(&signals, url, tokens, reading)
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    fn disallowed(found: &[Finding], source: Source) -> Vec<Purpose> {
        found
            .iter()
            .filter(|f| f.source == source && f.effect == Effect::Disallow)
            .flat_map(|f| f.purposes.clone())
            .collect()
    }

    #[test]
    fn response_headers_map_to_the_design_table() {
        let reading = Reading::default();
        let h = headers(&[("x-robots-tag", "noai")]);
        let found = header_findings(&h, "https://s/p", &["Bot"], false, &TdmFileValue::default(), reading);
        assert_eq!(disallowed(&found, Source::XRobotsTag), [Purpose::AiInput, Purpose::AiTrain, Purpose::Tdm]);

        let h = headers(&[("x-robots-tag", "otherbot: noai")]);
        assert!(
            header_findings(&h, "u", &["Bot"], false, &TdmFileValue::default(), reading)
                .iter()
                .all(|f| f.effect != Effect::Disallow)
        );
        let h = headers(&[("x-robots-tag", "bot: noai")]);
        assert!(
            !disallowed(
                &header_findings(&h, "u", &["Bot"], false, &TdmFileValue::default(), reading),
                Source::XRobotsTag
            )
            .is_empty()
        );

        let h = headers(&[("content-usage", "train-ai=n")]);
        assert_eq!(
            disallowed(
                &header_findings(&h, "u", &["Bot"], false, &TdmFileValue::default(), reading),
                Source::ContentUsage
            ),
            [Purpose::AiTrain]
        );
        let h = headers(&[("content-signal", "search=yes, ai-input=no")]);
        let found = header_findings(&h, "u", &["Bot"], false, &TdmFileValue::default(), reading);
        assert_eq!(disallowed(&found, Source::ContentSignal), [Purpose::AiInput]);
        assert!(found.iter().any(|f| f.effect == Effect::Allow && f.purposes == [Purpose::Search]));

        let h = headers(&[("tdm-reservation", "1")]);
        let found = header_findings(&h, "u", &["Bot"], false, &TdmFileValue::default(), reading);
        assert_eq!(disallowed(&found, Source::Tdmrep), [Purpose::AiInput, Purpose::AiTrain, Purpose::Tdm]);
        let strict = Reading { eu_strict: true, ..reading };
        assert!(
            disallowed(&header_findings(&h, "u", &["Bot"], false, &TdmFileValue::default(), strict), Source::Tdmrep)
                .contains(&Purpose::Search)
        );
    }

    #[test]
    fn unparseable_values_are_recorded_as_unknown() {
        let h = headers(&[("content-usage", "train-ai=n, (((")]);
        let found = header_findings(&h, "u", &["Bot"], false, &TdmFileValue::default(), Reading::default());
        assert!(found.iter().all(|f| f.effect != Effect::Disallow), "any parse failure: all unknown");
        assert!(found.iter().any(|f| f.effect == Effect::Unknown));
    }

    #[test]
    fn robots_embedded_signals_apply_by_longest_path() {
        let body = "User-agent: *\nContent-Usage: train-ai=n\nContent-Usage: /public/ train-ai=y\nContent-Signal: ai-input=no\nAllow: /\n";
        let rules = RobotsTxt::parse(body.as_bytes(), 512_000);
        let memo = EmbeddedMemo::default();
        let signals = memo.get(&rules, "Bot", Reading::default());
        let found = signals.findings("/news/1", "https://s/robots.txt", None);
        assert_eq!(disallowed(&found, Source::ContentUsage), [Purpose::AiTrain]);
        assert_eq!(disallowed(&found, Source::ContentSignal), [Purpose::AiInput]);
        assert_eq!(found.iter().find(|f| f.source == Source::ContentUsage).and_then(|f| f.line), Some(2));
        let found = signals.findings("/public/x", "https://s/robots.txt", None);
        assert!(disallowed(&found, Source::ContentUsage).is_empty(), "the longer /public/ rule allows");
        assert!(Arc::ptr_eq(&signals, &memo.get(&rules, "BOT", Reading::default())), "parsed once per token");
    }
}

#[cfg(test)]
mod head_tests {
    use super::*;

    fn metas(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(n, c)| (n.to_string(), c.to_string())).collect()
    }

    fn findings(metas: &[(String, String)], headers: &HeaderMap, file: &TdmFileValue) -> Vec<Finding> {
        let signals = ResponseSignals { headers, metas: Some(metas), is_image: false, tdm_file: file };
        response_findings(&signals, "https://s/p", &["Bot", "GPTBot"], Reading::default())
    }

    fn blocked_by(found: &[Finding], source: Source) -> bool {
        found.iter().any(|f| f.source == source && f.effect == Effect::Disallow)
    }

    #[test]
    fn meta_noai_applies_globally_and_per_token() {
        let none = HeaderMap::new();
        let file = TdmFileValue::default();
        assert!(blocked_by(&findings(&metas(&[("robots", "noai")]), &none, &file), Source::MetaRobots));
        assert!(blocked_by(&findings(&metas(&[("gptbot", "noai")]), &none, &file), Source::MetaRobots));
        assert!(!blocked_by(&findings(&metas(&[("otherbot", "noai")]), &none, &file), Source::MetaRobots));
        assert!(!blocked_by(&findings(&metas(&[("robots", "noindex")]), &none, &file), Source::MetaRobots));
        let found = findings(&metas(&[("robots", "noai")]), &none, &file);
        assert_eq!(found[0].rule.as_deref(), Some("<meta name=\"robots\" content=\"noai\">"));
    }

    #[test]
    fn tdmrep_precedence_is_file_then_header_then_meta() {
        let reserved_file = TdmFileValue {
            value: Some(TdmValue { reservation: Some(true), ..TdmValue::default() }),
            url: "https://s/.well-known/tdmrep.json".into(),
            sha256: Some("ab".into()),
            line: Some(3),
        };
        let none = HeaderMap::new();
        let found = findings(&[], &none, &reserved_file);
        assert!(blocked_by(&found, Source::Tdmrep), "the file alone reserves");
        assert_eq!(found[0].line, Some(3));
        let mut header0 = HeaderMap::new();
        header0.insert("tdm-reservation", http::HeaderValue::from_static("0"));
        assert!(!blocked_by(&findings(&[], &header0, &reserved_file), Source::Tdmrep), "header overrides file");
        let meta1 = metas(&[("tdm-reservation", "1")]);
        let found = findings(&meta1, &header0, &reserved_file);
        assert!(blocked_by(&found, Source::Tdmrep), "meta overrides header");
        assert_eq!(found[0].detail.as_deref(), Some("HTML meta"));
    }
}

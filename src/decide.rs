//! The pure decision engine: `(request facts, crawler, evidence, config) -> Decision`.
//!
//! No I/O, no clock, no logging: everything the engine needs is passed in, so every rule is
//! unit-tested in isolation and benchmarked. The policy sources (robots.txt, AI signals, the
//! creators' registry) turn what they fetched into [`Finding`]s; the engine maps them to the
//! crawler's declared purposes and combines them: any finding that disallows one of the crawler's
//! purposes blocks; no signal at all allows, and the decision says so.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What a crawl job does with the content it fetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Purpose {
    /// A classic search index.
    Search,
    /// RAG, grounding, live answers.
    AiInput,
    /// Training or fine-tuning models.
    AiTrain,
    /// Other text and data mining.
    Tdm,
}

impl Purpose {
    pub const ALL: [Purpose; 4] = [Purpose::Search, Purpose::AiInput, Purpose::AiTrain, Purpose::Tdm];

    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Search => "search",
            Purpose::AiInput => "ai-input",
            Purpose::AiTrain => "ai-train",
            Purpose::Tdm => "tdm",
        }
    }
}

/// Enforce blocks; monitor forwards and records what would have been blocked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Enforce,
    Monitor,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Allow,
    Block,
}

/// Where in the pipeline the decision was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// Before the fetch: a blocked request never reaches the origin.
    Request,
    /// After inspecting the origin's response: the body is withheld.
    Response,
}

/// Which kind of signal a reason comes from (the `source` field of the block answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    Robots,
    ContentUsage,
    ContentSignal,
    Tdmrep,
    XRobotsTag,
    MetaRobots,
    AiTxt,
    Rsl,
    Registry,
    NetworkPolicy,
}

/// What a signal says about a purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    Disallow,
    Allow,
    /// The signal was present but could not be understood.
    Unknown,
    /// The signal could not be fetched for a reason other than absence (5xx, timeout).
    Unreachable,
}

/// One reason in a decision, as shown to the crawler, the operator and the creator.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Reason {
    pub source: Source,
    pub effect: Effect,
    /// The purpose this reason speaks to; `None` when it applies whatever the purpose.
    pub purpose: Option<Purpose>,
    /// The rule as written, e.g. `Disallow: /private`.
    pub rule: Option<String>,
    /// Line of the rule in its evidence document, 1-based.
    pub line: Option<u32>,
    /// Where the rule was found (a URL, or a description for built-in policy).
    pub evidence: Option<String>,
    /// SHA-256 (hex) of the evidence document as fetched.
    pub evidence_sha256: Option<String>,
    /// Source-specific context, e.g. for robots.txt the token and group matched and how the file
    /// was fetched (status, redirects, cache age).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// For a registry objection: the entry's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_id: Option<String>,
    /// For a registry objection: the creator who filed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creator: Option<String>,
}

/// What a policy source found, before it is mapped to the crawler's purposes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub source: Source,
    pub effect: Effect,
    /// The purposes the finding speaks to; empty means every purpose (an access rule).
    pub purposes: Vec<Purpose>,
    pub rule: Option<String>,
    pub line: Option<u32>,
    pub evidence: Option<String>,
    pub evidence_sha256: Option<String>,
    pub detail: Option<String>,
    /// Registry objections only: the entry id and the creator's name.
    pub entry_id: Option<String>,
    pub creator: Option<String>,
}

/// Everything the policy sources gathered for one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evidence {
    pub findings: Vec<Finding>,
    /// Facts worth recording that are not findings (e.g. "interception off: host-level only").
    pub notes: Vec<String>,
}

/// The crawler as the engine sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crawler<'a> {
    pub name: &'a str,
    pub purposes: &'a [Purpose],
    pub mode: Mode,
}

/// The outcome for one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub verdict: Verdict,
    pub stage: Stage,
    pub mode: Mode,
    pub reasons: Vec<Reason>,
    pub notes: Vec<String>,
}

impl Decision {
    /// What the crawler is told in `Consentry-Decision`.
    pub fn header_value(&self) -> &'static str {
        match (self.verdict, self.mode) {
            (Verdict::Allow, _) => "allow",
            (Verdict::Block, Mode::Enforce) => "block",
            (Verdict::Block, Mode::Monitor) => "would-block",
        }
    }

    /// Folds the decision taken on the response into the request's: reasons add up, and a
    /// response-stage block makes the whole decision a block at stage `response`.
    pub fn absorb_response(&mut self, response: Decision) {
        if response.verdict == Verdict::Block && self.verdict == Verdict::Allow {
            self.verdict = Verdict::Block;
            self.stage = Stage::Response;
        }
        self.reasons.extend(response.reasons);
        // Disallowing reasons first, whichever stage they came from (the sort is stable).
        self.reasons.sort_by_key(|r| r.effect != Effect::Disallow);
        self.notes.extend(response.notes);
    }

    /// Whether the request must be answered by Consentry instead of the origin.
    pub fn stops_request(&self) -> bool {
        self.verdict == Verdict::Block && self.mode == Mode::Enforce
    }
}

// === wire names (the same as their serde names) ===

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Block => "block",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Request => "request",
            Stage::Response => "response",
        }
    }
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Monitor => "monitor",
        }
    }
}

impl Effect {
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Disallow => "disallow",
            Effect::Allow => "allow",
            Effect::Unknown => "unknown",
            Effect::Unreachable => "unreachable",
        }
    }
}

impl Source {
    pub const ALL: [Source; 10] = [
        Source::Robots,
        Source::ContentUsage,
        Source::ContentSignal,
        Source::Tdmrep,
        Source::XRobotsTag,
        Source::MetaRobots,
        Source::AiTxt,
        Source::Rsl,
        Source::Registry,
        Source::NetworkPolicy,
    ];

    /// The name in the block answer, the API and the metrics (`robots`, `content-usage`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Robots => "robots",
            Source::ContentUsage => "content-usage",
            Source::ContentSignal => "content-signal",
            Source::Tdmrep => "tdmrep",
            Source::XRobotsTag => "x-robots-tag",
            Source::MetaRobots => "meta-robots",
            Source::AiTxt => "ai-txt",
            Source::Rsl => "rsl",
            Source::Registry => "registry",
            Source::NetworkPolicy => "network-policy",
        }
    }
}

/// Decides a request at `stage` from the evidence gathered for it.
///
/// A finding blocks when it disallows and speaks to every purpose (an access rule such as a
/// robots.txt `Disallow`) or to one of the crawler's purposes. Every finding that applies to the
/// crawler is kept as a reason, so an allow still records what was seen (e.g. `unknown` values).
pub fn decide(crawler: &Crawler<'_>, evidence: &Evidence, stage: Stage) -> Decision {
    let mut reasons = Vec::new();
    let mut blocked = false;
    for finding in &evidence.findings {
        let Some(purpose) = applicable_purpose(finding, crawler.purposes) else {
            continue;
        };
        blocked |= finding.effect == Effect::Disallow;
        reasons.push(reason_for(finding, purpose));
    }
    // Disallowing reasons first: they are what the crawler needs to read.
    reasons.sort_by_key(|r| r.effect != Effect::Disallow);
    Decision {
        verdict: if blocked { Verdict::Block } else { Verdict::Allow },
        stage,
        mode: crawler.mode,
        reasons,
        notes: evidence.notes.clone(),
    }
}

/// `Some(None)` for a finding about every purpose, `Some(Some(p))` for the first of the crawler's
/// purposes it names, `None` when it does not concern this crawler.
fn applicable_purpose(finding: &Finding, crawler_purposes: &[Purpose]) -> Option<Option<Purpose>> {
    if finding.purposes.is_empty() {
        return Some(None);
    }
    finding.purposes.iter().copied().find(|p| crawler_purposes.contains(p)).map(Some)
}

fn reason_for(finding: &Finding, purpose: Option<Purpose>) -> Reason {
    Reason {
        source: finding.source,
        effect: finding.effect,
        purpose,
        rule: finding.rule.clone(),
        line: finding.line,
        evidence: finding.evidence.clone(),
        evidence_sha256: finding.evidence_sha256.clone(),
        detail: finding.detail.clone(),
        entry_id: finding.entry_id.clone(),
        creator: finding.creator.clone(),
    }
}

#[cfg(test)]
mod tests;

//! `consentry check`: fetch the policy for one URL live and explain the pre-fetch decision, like
//! a robots.txt tester that also knows every other signal Consentry reads.

use std::fmt::Write as _;
use std::sync::Arc;

use http::{HeaderMap, Method, Uri};

use crate::config::Config;
use crate::decide::{Decision, Verdict};
use crate::proxy::target::parse_absolute;
use crate::proxy::{Exchange, ProxyState, block_body, judge, network_policy_decision, new_request_id};
use crate::registry::{Registry, RegistryStore};

/// The outcome of a check: the decision and the request as it was judged.
pub struct CheckReport {
    pub exchange: Exchange,
    pub decision: Decision,
}

impl CheckReport {
    pub fn blocked(&self) -> bool {
        self.decision.verdict == Verdict::Block
    }

    /// The decision as JSON, in the shape of the block answer.
    pub fn to_json(&self) -> String {
        let url = self.exchange.target.to_string();
        serde_json::to_string_pretty(&block_body(&self.exchange, &self.decision, &url)).unwrap_or_default()
    }

    /// The decision in words, one reason per paragraph.
    pub fn to_text(&self) -> String {
        let exchange = &self.exchange;
        let profile = &exchange.profile;
        let purposes: Vec<&str> = profile.purposes.iter().map(|p| p.as_str()).collect();
        let mut out = String::new();
        let _ = writeln!(out, "url:      {}", exchange.target);
        let _ = writeln!(out, "crawler:  {} (token {}, purposes {})", profile.name, profile.token, purposes.join(", "));
        let verdict = match self.decision.header_value() {
            "allow" => "ALLOW",
            "would-block" => "BLOCK (monitor mode: would-block, forwarded)",
            _ => "BLOCK",
        };
        let _ = writeln!(out, "verdict:  {verdict}");
        if self.decision.reasons.is_empty() {
            let _ = writeln!(out, "reasons:  none (no signal found)");
        }
        for reason in &self.decision.reasons {
            let _ = write!(out, "- {} {}", reason.source.as_str(), reason.effect.as_str());
            if let Some(purpose) = reason.purpose {
                let _ = write!(out, " ({})", purpose.as_str());
            }
            let _ = writeln!(out, ": {}", reason.rule.as_deref().unwrap_or(""));
            if let Some(line) = reason.line {
                let _ = writeln!(out, "    line:     {line}");
            }
            if let Some(evidence) = &reason.evidence {
                let _ = writeln!(out, "    evidence: {evidence}");
            }
            if let Some(sha) = &reason.evidence_sha256 {
                let _ = writeln!(out, "    sha256:   {sha}");
            }
            if let (Some(id), Some(creator)) = (&reason.entry_id, &reason.creator) {
                let _ = writeln!(out, "    entry:    {id} (filed by {creator})");
            }
            if let Some(detail) = &reason.detail {
                let _ = writeln!(out, "    detail:   {detail}");
            }
        }
        for note in &self.decision.notes {
            let _ = writeln!(out, "note:     {note}");
        }
        out
    }
}

/// Fetches the policy for `url` live, as crawler `crawler_name`, and decides.
pub async fn check(config: Config, crawler_name: &str, url: &str) -> Result<CheckReport, String> {
    let uri: Uri = url.parse().map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    let target = parse_absolute(&uri).map_err(|e| e.to_string())?;
    let registry = match config.storage.url.as_str() {
        "none" => None,
        _ => {
            let db = crate::storage::Database::open(&config.storage_url()).await.map_err(|e| e.to_string())?;
            Some(Registry::load(RegistryStore::new(&db)).await.map_err(|e| e.to_string())?)
        }
    };
    let state = ProxyState::new(Arc::new(config), None, None, registry).map_err(|e| e.to_string())?;
    let profile = state.profiles.by_name(crawler_name).ok_or_else(|| {
        let known: Vec<&str> = state.config.crawlers.iter().map(|c| c.name.as_str()).collect();
        format!("no crawler named {crawler_name:?} (configured: {})", known.join(", "))
    })?;
    let exchange = Exchange::new(new_request_id(), profile, target, Method::GET, &HeaderMap::new());
    let decision = match judge(&state, &exchange).await {
        Ok(judgement) => judgement.decision,
        Err(refused) => network_policy_decision(refused),
    };
    Ok(CheckReport { exchange, decision })
}

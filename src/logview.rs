//! `consentry log`: the audit log from the command line, as a table or JSON Lines.

use std::fmt::Write as _;
use std::time::SystemTime;

use crate::admin::parse_time;
use crate::audit::{AuditRecord, AuditStore, Filter};
use crate::config::Config;

/// What `consentry log` was asked for.
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    pub verdict: Option<String>,
    pub crawler: Option<String>,
    pub host: Option<String>,
    pub source: Option<String>,
    /// Epoch ms, RFC 3339, or a duration back from now (`1h`).
    pub since: Option<String>,
    pub limit: u32,
    pub json: bool,
}

/// Reads the store named by `config` and renders the matching records, newest first.
pub async fn render(config: &Config, query: &LogQuery) -> Result<String, String> {
    if config.storage.url == "none" {
        return Err("storage.url = \"none\": there is no audit log to read".into());
    }
    let since = query.since.as_deref().map(|t| parse_time(t, SystemTime::now())).transpose()?;
    let store = AuditStore::open(&config.storage_url()).await.map_err(|e| e.to_string())?;
    let filter = Filter {
        verdict: query.verdict.clone(),
        crawler: query.crawler.clone(),
        host: query.host.clone(),
        source: query.source.clone(),
        since,
        limit: Some(query.limit),
        ..Filter::default()
    };
    let page = store.list(&filter).await.map_err(|e| e.to_string())?;
    store.close().await;
    Ok(if query.json { crate::admin::to_json_lines(&page.items) } else { table(&page.items) })
}

/// A fixed-width table: time, decision, status, crawler, URL, first blocking rule.
fn table(records: &[AuditRecord]) -> String {
    let mut out =
        format!("{:<24} {:<11} {:>6} {:<16} {:<50} {}\n", "time", "decision", "status", "crawler", "url", "why");
    for r in records {
        let time = humantime::format_rfc3339_seconds(
            SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(r.time_ms).unwrap_or(0)),
        );
        let why = r
            .reasons
            .iter()
            .find(|reason| reason.effect == crate::decide::Effect::Disallow)
            .map(|reason| {
                let source = reason.source.as_str();
                format!("{source}: {}", reason.rule.as_deref().unwrap_or(""))
            })
            .unwrap_or_default();
        let _ = writeln!(out, "{time:<24} {:<11} {:>6} {:<16} {:<50} {why}", r.decision, r.status, r.crawler, r.url);
    }
    out
}

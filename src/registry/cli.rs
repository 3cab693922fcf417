//! `consentry registry import | list | remove`: the registry from the command line.
//!
//! The commands write to the database the running nodes follow, so an import made here is
//! honoured by every node within `registry.sync_interval`.

use std::fmt::Write as _;
use std::path::Path;

use super::entry::{Entry, EntryTarget};
use super::import::{self, Format};
use super::store::{ListFilter, RegistryStore, WriteSummary};
use crate::config::Config;
use crate::storage::{Database, now_ms};

/// Why a registry command failed; the text is printed as is.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Usage(String),
    #[error("{path}: nothing was imported; {count} problem(s):\n{listing}")]
    Invalid { path: String, count: usize, listing: String },
    #[error("{0}")]
    Store(#[from] crate::storage::StoreError),
}

async fn open(config: &Config) -> Result<RegistryStore, CliError> {
    if config.storage.url == "none" {
        return Err(CliError::Usage(
            "storage.url = \"none\": the registry lives only inside the running process; set storage.url".into(),
        ));
    }
    Ok(RegistryStore::new(&Database::open(&config.storage_url()).await?))
}

/// Imports a JSON Lines or CSV file: every entry, or nothing and every problem.
pub async fn import(config: &Config, path: &Path) -> Result<String, CliError> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| CliError::Usage(format!("cannot read {shown}: {e}")))?;
    let format = Format::detect(path, &String::from_utf8_lossy(&bytes[..bytes.len().min(4096)]));
    let lines = import::parse_bytes(&bytes, format).map_err(|errors| CliError::Invalid {
        path: shown.clone(),
        count: errors.len(),
        listing: errors.iter().map(|e| format!("  {shown}: {e}")).collect::<Vec<_>>().join("\n"),
    })?;
    let now = now_ms();
    let entries: Vec<Entry> =
        lines.into_iter().map(|(_, valid)| valid.into_entry(new_entry_id, "import", now)).collect();
    let store = open(config).await?;
    let WriteSummary { added, updated, .. } = store.upsert(&entries, now).await?;
    Ok(format!("{shown}: imported {} entries ({added} new, {updated} replaced)\n", entries.len()))
}

/// Lists entries, optionally only those filed under `domain` or its subdomains.
pub async fn list(config: &Config, domain: Option<&str>, json: bool) -> Result<String, CliError> {
    let store = open(config).await?;
    let mut filter = ListFilter { domain: domain.map(str::to_string), limit: Some(10_000), ..ListFilter::default() };
    let mut out = String::new();
    loop {
        let page = store.list(&filter).await?;
        for entry in &page {
            if json {
                out.push_str(&serde_json::to_string(entry).unwrap_or_default());
                out.push('\n');
            } else {
                out.push_str(&table_row(entry));
            }
        }
        match page.last() {
            Some(last) if page.len() == 10_000 => filter.after_id = Some(last.id.clone()),
            _ => break,
        }
    }
    if out.is_empty() && !json {
        out.push_str("no registry entries\n");
    }
    Ok(out)
}

/// Removes one entry by id.
pub async fn remove(config: &Config, id: &str) -> Result<String, CliError> {
    let store = open(config).await?;
    if store.remove(id, now_ms()).await? {
        Ok(format!("removed {id}\n"))
    } else {
        Err(CliError::Usage(format!("no registry entry has the id {id:?}")))
    }
}

fn table_row(entry: &Entry) -> String {
    let target = match &entry.target {
        EntryTarget::Url { url } => url.clone(),
        EntryTarget::Domain { domain, include_subdomains, paths } => {
            let mut text = if *include_subdomains { format!("{domain} (+subdomains)") } else { domain.clone() };
            if !paths.is_empty() {
                let _ = write!(text, " {}", paths.join(" "));
            }
            text
        }
    };
    let purposes: Vec<&str> = entry.purposes.iter().map(|p| p.as_str()).collect();
    format!("{}\t{}\t{}\t{}\t{}\n", entry.id, entry.creator, target, purposes.join(","), entry.source)
}

/// A new entry id: time-ordered and unique across nodes.
pub fn new_entry_id() -> String {
    format!("r-{}", uuid::Uuid::now_v7().simple())
}

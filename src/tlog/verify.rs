//! `consentry verify` and `consentry ca --tlog-key`: the command-line edges of the
//! transparency log. The checks themselves are pure and live in [`super::receipt`]; this module
//! reads the files, fetches a consistency proof, and prints the report.

use std::path::Path;

use http_body_util::{BodyExt, Empty, Limited};

use super::receipt::{self, Receipt, Report, verify_checkpoint};
use super::{NoteVerifier, TlogStore};
use crate::config::Config;
use crate::storage::Database;

/// Largest proof answer read from a log.
const MAX_PROOF_BYTES: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path} is not a receipt: {problem}")]
    NotAReceipt { path: String, problem: String },
    #[error("--key: {0}")]
    Key(String),
    #[error("cannot fetch the consistency proof from {url}: {problem}")]
    Fetch { url: String, problem: String },
    #[error("{0}")]
    Other(String),
}

/// The verifier key from `--key`: the key itself (`name+id+base64`) or a file holding it.
pub fn load_verifier(key: &str) -> Result<NoteVerifier, VerifyError> {
    let text = if Path::new(key).is_file() {
        std::fs::read_to_string(key).map_err(|source| VerifyError::Read { path: key.to_string(), source })?
    } else {
        key.to_string()
    };
    NoteVerifier::parse(text.trim()).map_err(|e| VerifyError::Key(e.to_string()))
}

fn read(path: &Path) -> Result<String, VerifyError> {
    std::fs::read_to_string(path).map_err(|source| VerifyError::Read { path: path.display().to_string(), source })
}

/// `consentry verify receipt`: checks a receipt offline.
pub fn receipt_report(path: &Path, key: &str) -> Result<Report, VerifyError> {
    let verifier = load_verifier(key)?;
    let text = read(path)?;
    let receipt: Receipt = serde_json::from_str(&text)
        .map_err(|e| VerifyError::NotAReceipt { path: path.display().to_string(), problem: e.to_string() })?;
    Ok(receipt::verify_receipt(&verifier, &receipt))
}

/// `consentry verify consistency`: checks that `new` extends `old`, with a proof from `from`.
pub async fn consistency_report(key: &str, old: &Path, new: &Path, from: Option<&str>) -> Result<Report, VerifyError> {
    let verifier = load_verifier(key)?;
    let (old_note, new_note) = (read(old)?, read(new)?);
    let sizes = (verify_checkpoint(&verifier, &old_note), verify_checkpoint(&verifier, &new_note));
    let proof = match (sizes, from) {
        (_, None) => Vec::new(),
        ((Ok(old), Ok(new)), Some(from)) if old.size >= 1 && old.size < new.size => {
            fetch_consistency_proof(from, old.size, new.size).await?
        }
        _ => Vec::new(),
    };
    Ok(receipt::verify_consistency(&verifier, &old_note, &new_note, &proof))
}

async fn fetch_consistency_proof(from: &str, old: u64, new: u64) -> Result<Vec<String>, VerifyError> {
    let base = from.trim_end_matches('/').trim_end_matches("/tlog");
    let url = format!("{base}/tlog/proof/consistency?old={old}&new={new}");
    let failed = |problem: String| VerifyError::Fetch { url: url.clone(), problem };
    let uri: http::Uri = url.parse().map_err(|e| failed(format!("not a URL: {e}")))?;
    let tls = crate::tls::upstream_client_config(&[]).map_err(|e| failed(e.to_string()))?;
    let connector =
        hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls).https_or_http().enable_http1().build();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build::<_, Empty<bytes::Bytes>>(connector);
    let response = client.get(uri).await.map_err(|e| failed(e.to_string()))?;
    let status = response.status();
    let body = Limited::new(response.into_body(), MAX_PROOF_BYTES)
        .collect()
        .await
        .map_err(|e| failed(format!("reading the answer: {e}")))?
        .to_bytes();
    if !status.is_success() {
        return Err(failed(format!("{status}: {}", String::from_utf8_lossy(&body))));
    }
    #[derive(serde::Deserialize)]
    struct Answer {
        proof: Vec<String>,
    }
    let answer: Answer = serde_json::from_slice(&body).map_err(|e| failed(format!("not a proof: {e}")))?;
    Ok(answer.proof)
}

/// The report as text: one line per check, then the verdict.
pub fn render(report: &Report) -> String {
    let mut text = String::new();
    for check in &report.checks {
        let mark = if check.ok { "ok  " } else { "FAIL" };
        let detail = if check.detail.is_empty() { String::new() } else { format!(": {}", check.detail) };
        text.push_str(&format!("{mark} {}{detail}\n", check.what));
    }
    let failures = report.failures().count();
    if report.ok() {
        text.push_str("verified: every check passed\n");
    } else {
        text.push_str(&format!("NOT VERIFIED: {failures} check(s) failed\n"));
    }
    text
}

/// `consentry ca --tlog-key`: the verifier key of this deployment's log (its stored name when
/// the log exists; the key is created when missing, as at first start).
pub async fn verifier_key(config: &Config) -> Result<String, VerifyError> {
    let stored = match config.storage_url() {
        url if url == "none" => None,
        url => {
            let db = Database::open(&url).await.map_err(|e| VerifyError::Other(e.to_string()))?;
            let head = TlogStore::new(&db).head().await.map_err(|e| VerifyError::Other(e.to_string()))?;
            db.close().await;
            head.map(|h| h.origin)
        }
    };
    let signer = super::signer(config, stored.as_deref()).map_err(|e| VerifyError::Other(e.to_string()))?;
    Ok(format!("{}\n", signer.verifier_key()))
}

//! The transparency log: every audit record as a leaf of an append-only Merkle tree (RFC 6962
//! hashing, C2SP tlog-tiles layout) with Ed25519-signed checkpoints (C2SP tlog-checkpoint and
//! signed-note), so an operator cannot rewrite history without being caught and a creator can
//! check their own records offline.
//!
//! - [`leaf`]: what a leaf commits to (salted record, chained per host).
//! - [`note`]: signed notes (signing and verifying).
//! - [`store`]: the tables; sequencing, tiles and proofs.
//! - [`sequencer`]: the one task per deployment that appends pending records and signs heads.
//! - [`receipt`]: the creator's receipt and its offline verification (pure).
//! - [`verify`]: `consentry verify` and `consentry ca --tlog-key`.
//!
//! The record's *canonical JSON* is `serde_json`'s serialisation of [`AuditRecord`]: fields in
//! the order the struct declares them (request_id, time, time_ms, node, crawler, purposes,
//! method, url, host, verdict, decision, stage, mode, reasons, notes, status, bytes, evidence,
//! duration_ms), no whitespace; reasons' optional `detail`, `entry_id` and `creator` are omitted
//! when empty. The leaf commits to these exact bytes (through their SHA-256); a receipt carries
//! them as a string.

pub mod leaf;
pub mod note;
pub mod receipt;
pub mod sequencer;
pub mod store;
pub mod verify;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod crosscheck;

use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};

use crate::audit::AuditRecord;
use crate::config::Config;
pub use note::{NoteSigner, NoteVerifier};
pub use store::{TlogError, TlogStore, TreeHead};

/// File in `data_dir` that holds the generated signing key when `tlog.key_file` is empty.
pub const KEY_FILE: &str = "tlog-key.pem";

/// The exact bytes a leaf commits to for `record` (see the module documentation).
pub fn canonical_record(record: &AuditRecord) -> String {
    serde_json::to_string(record).unwrap_or_default()
}

/// A C2SP origin / note key name: printable ASCII, no spaces, no `+`.
pub fn is_valid_origin(origin: &str) -> bool {
    !origin.is_empty() && origin.bytes().all(|b| b.is_ascii_graphic() && b != b'+')
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read the transparency log key {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a PKCS#8 PEM Ed25519 private key (`openssl genpkey -algorithm ed25519`): {problem}")]
    Invalid { path: PathBuf, problem: String },
    #[error("cannot create the transparency log key {path}: {problem}")]
    Create { path: PathBuf, problem: String },
    #[error("`tlog.origin`: {0:?} is not a valid log name (printable ASCII without spaces or '+')")]
    Origin(String),
}

/// Where the signing key is: `tlog.key_file`, else `<data_dir>/tlog-key.pem`.
pub fn key_path(config: &Config) -> PathBuf {
    if config.tlog.key_file.as_os_str().is_empty() {
        config.data_dir.join(KEY_FILE)
    } else {
        config.tlog.key_file.clone()
    }
}

/// Loads the signing key; generates and stores it (0600) first when it is the default file and
/// does not exist yet.
pub fn load_or_create_key(config: &Config) -> Result<SigningKey, KeyError> {
    let path = key_path(config);
    if config.tlog.key_file.as_os_str().is_empty() && !path.exists() {
        create_key(&config.data_dir, &path)?;
    }
    let pem = std::fs::read_to_string(&path).map_err(|source| KeyError::Read { path: path.clone(), source })?;
    SigningKey::from_pkcs8_pem(&pem).map_err(|e| KeyError::Invalid { path, problem: e.to_string() })
}

fn create_key(data_dir: &Path, path: &Path) -> Result<(), KeyError> {
    let failed = |problem: String| KeyError::Create { path: path.to_path_buf(), problem };
    crate::tls::create_private_dir(data_dir).map_err(|e| failed(e.to_string()))?;
    let key = SigningKey::from_bytes(&rand::random());
    let pem = key.to_pkcs8_pem(Default::default()).map_err(|e| failed(e.to_string()))?;
    // Without clobbering: a concurrent first start may have published its key; then it is the key.
    crate::tls::publish_new(path, pem.as_bytes(), 0o600).map_err(|e| failed(e.to_string()))?;
    Ok(())
}

/// The log's name: `tlog.origin`, else the name the stored log already has, else
/// `consentry.local/<node>`.
pub fn origin(config: &Config, stored: Option<&str>) -> String {
    if !config.tlog.origin.is_empty() {
        return config.tlog.origin.clone();
    }
    if let Some(stored) = stored {
        return stored.to_string();
    }
    let node: String =
        config.node_name().chars().map(|c| if c.is_ascii_graphic() && c != '+' { c } else { '-' }).collect();
    format!("consentry.local/{node}")
}

/// The signer of this node's checkpoints.
pub fn signer(config: &Config, stored_origin: Option<&str>) -> Result<NoteSigner, KeyError> {
    signer_for(&origin(config, stored_origin), load_or_create_key(config)?)
}

/// A signer for the log named `origin`.
pub fn signer_for(origin: &str, key: SigningKey) -> Result<NoteSigner, KeyError> {
    NoteSigner::new(origin, key).map_err(|_| KeyError::Origin(origin.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_follow_the_c2sp_key_name_rules() {
        assert!(is_valid_origin("consentry.example/eu-1"));
        assert!(!is_valid_origin(""));
        assert!(!is_valid_origin("has space"));
        assert!(!is_valid_origin("a+b"));
        assert!(!is_valid_origin("café"));
    }

    #[test]
    fn the_key_is_generated_once_and_then_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = Config { data_dir: dir.path().join("data"), ..Config::default() };
        let first = load_or_create_key(&config).expect("created");
        let second = load_or_create_key(&config).expect("loaded");
        assert_eq!(first.to_bytes(), second.to_bytes());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(key_path(&config)).expect("key file").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_configured_key_file_that_is_not_a_key_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bad.pem");
        std::fs::write(&path, "not a key").expect("write");
        let mut config = Config::default();
        config.tlog.key_file = path.clone();
        let error = load_or_create_key(&config).expect_err("not a key").to_string();
        assert!(error.contains(&path.display().to_string()) && error.contains("PKCS#8"), "{error}");
    }

    #[test]
    fn the_origin_prefers_config_then_storage_then_the_node() {
        let mut config = Config { node: "node a".into(), ..Config::default() };
        assert_eq!(origin(&config, None), "consentry.local/node-a");
        assert_eq!(origin(&config, Some("stored.example/x")), "stored.example/x");
        config.tlog.origin = "mine.example/log".into();
        assert_eq!(origin(&config, Some("stored.example/x")), "mine.example/log");
    }
}

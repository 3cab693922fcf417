//! What a leaf of the transparency log commits to.
//!
//! Every audit record becomes one leaf. The leaf's *entry* (the bytes hashed as
//! `SHA-256(0x00 ‖ entry)`, RFC 6962) is:
//!
//! ```text
//! consentry-decision/v1\n
//! salt <base64 of 32 random bytes>\n
//! prev <leaf index of the previous record for the same host, or "none">\n
//! record <hex SHA-256 of the record's canonical JSON>\n
//! ```
//!
//! The leaf commits to the record through its hash, so the queue of records waiting for a leaf
//! holds 32 bytes per record rather than the record a second time.
//!
//! The salt keeps the public leaf hashes from revealing what was crawled (no one can test a
//! guessed URL against them); the creator receives the record and its salt and recomputes the
//! leaf. `prev` chains each host's records, so a receipt with a record missing from the middle
//! of a host's history shows the gap.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest as _, Sha256};
use tlog_tiles::Hash;

/// First line of every entry; changes only with a new entry format.
pub const ENTRY_FORMAT: &str = "consentry-decision/v1";

/// Bytes of salt per record.
pub const SALT_BYTES: usize = 32;

/// The hex SHA-256 of a record's canonical JSON, as the entry names it.
pub fn record_digest(record_json: &str) -> String {
    hex::encode(Sha256::digest(record_json.as_bytes()))
}

/// The entry bytes of one record, given its digest (see the module documentation).
pub fn entry_bytes_for_digest(salt: &[u8; SALT_BYTES], prev: Option<u64>, record_digest: &str) -> Vec<u8> {
    let prev = prev.map_or_else(|| "none".to_string(), |p| p.to_string());
    format!("{ENTRY_FORMAT}\nsalt {}\nprev {prev}\nrecord {record_digest}\n", STANDARD.encode(salt)).into_bytes()
}

/// The entry bytes of one record (see the module documentation).
pub fn entry_bytes(salt: &[u8; SALT_BYTES], prev: Option<u64>, record_json: &str) -> Vec<u8> {
    entry_bytes_for_digest(salt, prev, &record_digest(record_json))
}

/// The RFC 6962 leaf hash of one record: `SHA-256(0x00 ‖ entry)`.
pub fn leaf_hash(salt: &[u8; SALT_BYTES], prev: Option<u64>, record_json: &str) -> Hash {
    tlog_tiles::record_hash(&entry_bytes(salt, prev, record_json))
}

/// A hash as standard base64 (the encoding of checkpoints and proofs).
pub fn encode_hash(hash: &Hash) -> String {
    STANDARD.encode(hash.0)
}

/// Parses a base64 hash; `None` when it is not 32 bytes of base64.
pub fn decode_hash(text: &str) -> Option<Hash> {
    let bytes = STANDARD.decode(text).ok()?;
    Some(Hash(bytes.try_into().ok()?))
}

/// Parses a base64 salt; `None` when it is not 32 bytes of base64.
pub fn decode_salt(text: &str) -> Option<[u8; SALT_BYTES]> {
    STANDARD.decode(text).ok()?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest;

    #[test]
    fn leaf_hash_is_rfc6962_over_the_documented_entry() {
        let salt = [7u8; SALT_BYTES];
        // SHA-256 of {"a":1}, computed elsewhere (printf '{"a":1}' | sha256sum).
        let digest = "015abd7f5cc57a2dd94b7590f04ad8084273905ee33ec5cebeae62276a97f862";
        assert_eq!(record_digest("{\"a\":1}"), digest);
        let entry = format!("consentry-decision/v1\nsalt {}\nprev 41\nrecord {digest}\n", STANDARD.encode(salt));
        let mut hasher = Sha256::new();
        hasher.update([0u8]);
        hasher.update(entry.as_bytes());
        let expected: [u8; 32] = hasher.finalize().into();
        assert_eq!(leaf_hash(&salt, Some(41), "{\"a\":1}").0, expected);
        assert_ne!(leaf_hash(&salt, None, "{\"a\":1}"), leaf_hash(&salt, Some(41), "{\"a\":1}"));
    }

    #[test]
    fn hashes_and_salts_round_trip_through_base64() {
        let hash = Hash([9u8; 32]);
        assert_eq!(decode_hash(&encode_hash(&hash)), Some(hash));
        assert_eq!(decode_hash("AAAA"), None);
        assert_eq!(decode_salt(&STANDARD.encode([1u8; 32])), Some([1u8; 32]));
        assert_eq!(decode_salt("not base64!"), None);
    }
}

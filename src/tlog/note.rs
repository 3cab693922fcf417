//! Signed notes (c2sp.org/signed-note) with Ed25519 keys.
//!
//! The log signs its checkpoints as signed notes, and anyone holding the log's verifier key
//! (`<name>+<key id>+<base64 key>`) can check them offline. A signed note is a text ending in a
//! newline, a blank line, then one or more signature lines `— <key name> <base64(key id ‖
//! signature)>`. Signature lines by other keys (witnesses' cosignatures, for example) are
//! ignored, as the spec requires; every line by *our* key must verify.
//!
//! Parsing never panics: a note comes from whoever handed it to us.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

/// Signature type byte of Ed25519 keys in key ids and verifier keys.
const ALG_ED25519: u8 = 0x01;

/// Starts every signature line: em dash (U+2014) and a space.
const SIGNATURE_PREFIX: &str = "\u{2014} ";

/// Largest note we parse; checkpoints are a few hundred bytes.
const MAX_NOTE_BYTES: usize = 1_000_000;

/// Most signature lines we accept (the spec asks verifiers for a limit of at least 16).
const MAX_SIGNATURE_LINES: usize = 100;

/// Bytes of key id at the start of every signature.
const KEY_ID_BYTES: usize = 4;

/// What is wrong with a key, a text to sign or a signed note.
#[derive(Debug, thiserror::Error)]
pub enum NoteError {
    #[error("the key name {0:?} is invalid: it must be non-empty, without whitespace, '+' or control characters")]
    InvalidKeyName(String),
    #[error("the verifier key must look like <name>+<8 hex digits>+<base64 key>")]
    VerifierKeyFormat,
    #[error("the verifier key's key is not base64")]
    VerifierKeyNotBase64,
    #[error("the verifier key is of signature type {0:#04x}; only Ed25519 (0x01) is supported")]
    UnsupportedKeyType(u8),
    #[error("the verifier key's Ed25519 public key is {0} bytes long, not 32")]
    PublicKeyLength(usize),
    #[error("the verifier key's public key is not a usable Ed25519 key")]
    InvalidPublicKey,
    #[error("the verifier key's key id {found} does not match its name and key (expected {expected})")]
    VerifierKeyIdMismatch { found: String, expected: String },
    #[error("the text to sign is empty")]
    EmptyText,
    #[error("the text to sign does not end with a newline")]
    TextWithoutFinalNewline,
    #[error("the note is {0} bytes long, more than the {MAX_NOTE_BYTES} accepted")]
    NoteTooLarge(usize),
    #[error("line {line} contains the control character U+{code:04X}; only newlines are allowed")]
    ControlCharacter { line: usize, code: u32 },
    #[error("the note does not end with a newline")]
    NoteWithoutFinalNewline,
    #[error("the note has no blank line between its text and its signatures")]
    NoBlankLine,
    #[error("the note's text is empty: the note starts with the blank line")]
    EmptyNoteText,
    #[error("the note has no signature lines after its blank line")]
    NoSignatureLines,
    #[error("the note has more than {MAX_SIGNATURE_LINES} signature lines")]
    TooManySignatureLines,
    #[error("signature line {0} does not start with an em dash and a space")]
    SignatureLinePrefix(usize),
    #[error("signature line {0} has no space between the key name and the signature")]
    SignatureLineNoSpace(usize),
    #[error("signature line {0} has an invalid key name")]
    SignatureLineKeyName(usize),
    #[error("signature line {0} is not base64")]
    SignatureLineNotBase64(usize),
    #[error("signature line {0} is too short: it must hold a 4-byte key id and a signature")]
    SignatureLineTooShort(usize),
    #[error("the note has no signature line by key {name}")]
    NoSignatureByKey { name: String },
    #[error(
        "the note is signed by a key named {name} with key id {found}, not {expected}: it was signed by another key"
    )]
    KeyIdMismatch { name: String, expected: String, found: String },
    #[error("the signature by {name} on signature line {line} is {len} bytes long, not an Ed25519 signature's 64")]
    SignatureLength { name: String, line: usize, len: usize },
    #[error("the signature by {name} does not verify: the note was altered or signed by another key")]
    BadSignature { name: String },
}

/// Signs notes with one Ed25519 key under one key name.
pub struct NoteSigner {
    name: String,
    key: SigningKey,
    key_id: [u8; KEY_ID_BYTES],
}

impl NoteSigner {
    /// `name` must be non-empty, without whitespace or '+' (C2SP rules).
    pub fn new(name: &str, key: SigningKey) -> Result<Self, NoteError> {
        check_key_name(name)?;
        let key_id = key_id(name, key.verifying_key().as_bytes());
        Ok(Self { name: name.to_string(), key, key_id })
    }

    /// The key name, written on every signature line.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// C2SP verifier key: "<name>+<key id as 8 lowercase hex>+<base64(0x01 ‖ 32-byte public key)>".
    pub fn verifier_key(&self) -> String {
        let mut key = vec![ALG_ED25519];
        key.extend_from_slice(self.key.verifying_key().as_bytes());
        format!("{}+{}+{}", self.name, hex_id(self.key_id), STANDARD.encode(key))
    }

    /// Signs `text` (non-empty, ending in '\n', no control characters but newlines) and
    /// returns the signed note: the text, a blank line and one signature line.
    pub fn sign(&self, text: &str) -> Result<String, NoteError> {
        check_text(text)?;
        let signature = self.key.sign(text.as_bytes());
        let mut blob = self.key_id.to_vec();
        blob.extend_from_slice(&signature.to_bytes());
        Ok(format!("{text}\n{SIGNATURE_PREFIX}{} {}\n", self.name, STANDARD.encode(blob)))
    }
}

/// Checks notes against one trusted Ed25519 key.
#[derive(Clone, Debug)]
pub struct NoteVerifier {
    name: String,
    key_id: [u8; KEY_ID_BYTES],
    key: VerifyingKey,
}

impl NoteVerifier {
    /// Parses a verifier key `<name>+<8 hex digits>+<base64(0x01 ‖ public key)>`; surrounding
    /// whitespace is ignored.
    pub fn parse(verifier_key: &str) -> Result<Self, NoteError> {
        // The name cannot contain '+', but the base64 key can: split only twice.
        let (name, rest) = verifier_key.trim().split_once('+').ok_or(NoteError::VerifierKeyFormat)?;
        let (id_hex, key_b64) = rest.split_once('+').ok_or(NoteError::VerifierKeyFormat)?;
        check_key_name(name)?;
        let found_id = parse_hex_id(id_hex).ok_or(NoteError::VerifierKeyFormat)?;
        let key = parse_public_key(key_b64)?;
        let expected_id = key_id(name, key.as_bytes());
        if found_id != expected_id {
            return Err(NoteError::VerifierKeyIdMismatch { found: id_hex.to_string(), expected: hex_id(expected_id) });
        }
        Ok(Self { name: name.to_string(), key_id: expected_id, key })
    }

    /// The key name the signature lines must carry.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id the signatures must start with.
    pub fn key_id(&self) -> [u8; 4] {
        self.key_id
    }

    /// Checks that `note` carries a valid signature by this key (other signature lines, e.g.
    /// witnesses', are ignored) and returns the signed text (everything before the blank line,
    /// including its final '\n').
    pub fn verify<'a>(&self, note: &'a str) -> Result<&'a str, NoteError> {
        let (text, signature_block) = split_note(note)?;
        let lines = signature_lines(signature_block)?;
        let mut verified = false;
        let mut other_id = None;
        for (number, line) in lines.iter().enumerate().map(|(i, line)| (i + 1, line)) {
            let (name, id, signature) = parse_signature_line(number, line)?;
            if name != self.name {
                continue;
            }
            if id != self.key_id {
                // Spec: a signature that shares only the name with a known key is ignored.
                other_id.get_or_insert(id);
                continue;
            }
            self.check_signature(number, text, &signature)?;
            verified = true;
        }
        match (verified, other_id) {
            (true, _) => Ok(text),
            (false, Some(found)) => Err(NoteError::KeyIdMismatch {
                name: self.name.clone(),
                expected: hex_id(self.key_id),
                found: hex_id(found),
            }),
            (false, None) => Err(NoteError::NoSignatureByKey { name: self.name.clone() }),
        }
    }

    fn check_signature(&self, line: usize, text: &str, signature: &[u8]) -> Result<(), NoteError> {
        let bytes: [u8; 64] = signature.try_into().map_err(|_| NoteError::SignatureLength {
            name: self.name.clone(),
            line,
            len: signature.len(),
        })?;
        self.key
            .verify_strict(text.as_bytes(), &Signature::from_bytes(&bytes))
            .map_err(|_| NoteError::BadSignature { name: self.name.clone() })
    }
}

/// Key id per spec: first 4 bytes of SHA-256(name ‖ "\n" ‖ 0x01 ‖ public key).
pub fn key_id(name: &str, public_key: &[u8; 32]) -> [u8; 4] {
    let mut hasher = Sha256::new();
    hasher.update(name.as_bytes());
    hasher.update(b"\n");
    hasher.update([ALG_ED25519]);
    hasher.update(public_key);
    let digest = hasher.finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

fn hex_id(id: [u8; KEY_ID_BYTES]) -> String {
    format!("{:08x}", u32::from_be_bytes(id))
}

fn parse_hex_id(text: &str) -> Option<[u8; KEY_ID_BYTES]> {
    // from_str_radix alone would accept a leading '+': require exactly 8 hex digits.
    if text.len() != 8 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(text, 16).ok().map(u32::to_be_bytes)
}

fn parse_public_key(key_b64: &str) -> Result<VerifyingKey, NoteError> {
    let key = STANDARD.decode(key_b64).map_err(|_| NoteError::VerifierKeyNotBase64)?;
    let (&alg, public) = key.split_first().ok_or(NoteError::VerifierKeyFormat)?;
    if alg != ALG_ED25519 {
        return Err(NoteError::UnsupportedKeyType(alg));
    }
    let public: [u8; 32] = public.try_into().map_err(|_| NoteError::PublicKeyLength(public.len()))?;
    let key = VerifyingKey::from_bytes(&public).map_err(|_| NoteError::InvalidPublicKey)?;
    // verify_strict rejects every signature by a small-order key: refuse such a key up front.
    if key.is_weak() {
        return Err(NoteError::InvalidPublicKey);
    }
    Ok(key)
}

fn is_valid_key_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c.is_control() || c == '+')
}

fn check_key_name(name: &str) -> Result<(), NoteError> {
    if is_valid_key_name(name) { Ok(()) } else { Err(NoteError::InvalidKeyName(name.to_string())) }
}

/// The spec's rules for a note's text: non-empty, ends in a newline, no control characters but
/// newlines. Empty lines are allowed: a note's text ends at its *last* blank line.
fn check_text(text: &str) -> Result<(), NoteError> {
    if text.is_empty() {
        return Err(NoteError::EmptyText);
    }
    if !text.ends_with('\n') {
        return Err(NoteError::TextWithoutFinalNewline);
    }
    check_size(text)?;
    check_control_characters(text)
}

fn check_size(text: &str) -> Result<(), NoteError> {
    if text.len() > MAX_NOTE_BYTES { Err(NoteError::NoteTooLarge(text.len())) } else { Ok(()) }
}

fn check_control_characters(text: &str) -> Result<(), NoteError> {
    for (index, line) in text.split('\n').enumerate() {
        if let Some(c) = line.chars().find(|&c| c < ' ') {
            return Err(NoteError::ControlCharacter { line: index + 1, code: u32::from(c) });
        }
    }
    Ok(())
}

/// Splits a note at its last blank line into the text (with its final newline) and the
/// signature block.
fn split_note(note: &str) -> Result<(&str, &str), NoteError> {
    check_size(note)?;
    check_control_characters(note)?;
    if !note.ends_with('\n') {
        return Err(NoteError::NoteWithoutFinalNewline);
    }
    match note.rfind("\n\n") {
        Some(at) => Ok((&note[..=at], &note[at + 2..])),
        None if note.starts_with('\n') => Err(NoteError::EmptyNoteText),
        None => Err(NoteError::NoBlankLine),
    }
}

fn signature_lines(block: &str) -> Result<Vec<&str>, NoteError> {
    let block = block.strip_suffix('\n').unwrap_or(block);
    if block.is_empty() {
        return Err(NoteError::NoSignatureLines);
    }
    let lines: Vec<&str> = block.split('\n').collect();
    if lines.len() > MAX_SIGNATURE_LINES {
        return Err(NoteError::TooManySignatureLines);
    }
    Ok(lines)
}

/// Parses `— <name> <base64(key id ‖ signature)>` into name, key id and signature bytes.
fn parse_signature_line(number: usize, line: &str) -> Result<(&str, [u8; 4], Vec<u8>), NoteError> {
    let rest = line.strip_prefix(SIGNATURE_PREFIX).ok_or(NoteError::SignatureLinePrefix(number))?;
    let (name, blob) = rest.split_once(' ').ok_or(NoteError::SignatureLineNoSpace(number))?;
    if !is_valid_key_name(name) {
        return Err(NoteError::SignatureLineKeyName(number));
    }
    let blob = STANDARD.decode(blob).map_err(|_| NoteError::SignatureLineNotBase64(number))?;
    if blob.len() <= KEY_ID_BYTES {
        return Err(NoteError::SignatureLineTooShort(number));
    }
    let (id, signature) = blob.split_at(KEY_ID_BYTES);
    let id = [id[0], id[1], id[2], id[3]];
    Ok((name, id, signature.to_vec()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use signed_note::{Note, Signer as _, StandardSigner, StandardVerifier, VerifierList};

    const TEXT: &str = "consentry.example/a\n42\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";

    // A known-answer vector from the signed_note crate's documentation (originally from Go's
    // golang.org/x/mod/sumdb/note): an independent implementation's key, verifier key and note.
    const GO_SIGNER_KEY: &str = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const GO_VERIFIER_KEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const GO_TEXT: &str =
        "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
    const GO_NOTE: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n\n\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

    fn signer(name: &str, seed: u8) -> NoteSigner {
        NoteSigner::new(name, SigningKey::from_bytes(&[seed; 32])).unwrap()
    }

    fn verifier_of(signer: &NoteSigner) -> NoteVerifier {
        NoteVerifier::parse(&signer.verifier_key()).unwrap()
    }

    /// The signed_note private key string of a seed; signed_note checks the key id itself.
    fn signed_note_signer(name: &str, seed: u8) -> Result<StandardSigner, signed_note::SignerError> {
        let ours = signer(name, seed);
        let id = hex_id(key_id(name, ours.key.verifying_key().as_bytes()));
        let mut key = vec![ALG_ED25519];
        key.extend_from_slice(&[seed; 32]);
        StandardSigner::new(&format!("PRIVATE+KEY+{name}+{id}+{}", STANDARD.encode(key)))
    }

    fn go_seed() -> [u8; 32] {
        // The base64 key itself may contain '+': it is everything after the fourth one.
        let key = GO_SIGNER_KEY.splitn(5, '+').nth(4).unwrap();
        STANDARD.decode(key).unwrap()[1..].try_into().unwrap()
    }

    #[test]
    fn round_trip() {
        let signer = signer("consentry.example/a", 1);
        let note = signer.sign(TEXT).unwrap();
        let verifier = verifier_of(&signer);
        assert_eq!(verifier.verify(&note).unwrap(), TEXT);
        assert_eq!(verifier.name(), "consentry.example/a");
        assert_eq!(verifier.key_id(), key_id("consentry.example/a", signer.key.verifying_key().as_bytes()));
        assert!(note.starts_with(TEXT));
        assert!(note.contains("\n\n\u{2014} consentry.example/a "));
    }

    #[test]
    fn text_with_empty_lines_round_trips() {
        let signer = signer("consentry.example/a", 1);
        let text = "a\n\nb\n\n";
        let note = signer.sign(text).unwrap();
        assert_eq!(verifier_of(&signer).verify(&note).unwrap(), text);
    }

    #[test]
    fn matches_the_known_answer_of_another_implementation() {
        let ours = NoteSigner::new("PeterNeumann", SigningKey::from_bytes(&go_seed())).unwrap();
        assert_eq!(ours.verifier_key(), GO_VERIFIER_KEY);
        assert_eq!(ours.sign(GO_TEXT).unwrap(), GO_NOTE);
        let verifier = NoteVerifier::parse(GO_VERIFIER_KEY).unwrap();
        assert_eq!(verifier.key_id(), [0xc7, 0x4f, 0x20, 0xa3]);
        assert_eq!(verifier.verify(GO_NOTE).unwrap(), GO_TEXT);
    }

    #[test]
    fn signed_note_verifies_our_notes_and_accepts_our_verifier_key() {
        let ours = signer("consentry.example/a", 3);
        let theirs = StandardVerifier::new(&ours.verifier_key()).unwrap();
        assert_eq!(signed_note::Verifier::key_id(&theirs).to_be_bytes(), verifier_of(&ours).key_id());
        let note = Note::from_bytes(ours.sign(TEXT).unwrap().as_bytes()).unwrap();
        let (verified, _) = note.verify(&VerifierList::new(vec![Box::new(theirs)])).unwrap();
        assert_eq!(verified.len(), 1);
        assert_eq!(note.text(), TEXT.as_bytes());
    }

    #[test]
    fn we_verify_notes_signed_by_signed_note_and_accept_its_keys() {
        // signed_note recomputes the key id from the key we give it: a wrong id is refused.
        let theirs = signed_note_signer("consentry.example/a", 4).unwrap();
        let mut note = Note::new(TEXT.as_bytes(), &[]).unwrap();
        note.add_sigs(&[&theirs]).unwrap();
        let note = String::from_utf8(note.to_bytes()).unwrap();
        let ours = verifier_of(&signer("consentry.example/a", 4));
        assert_eq!(ours.key_id(), theirs.key_id().to_be_bytes());
        assert_eq!(ours.verify(&note).unwrap(), TEXT);
        assert!(StandardVerifier::new(GO_VERIFIER_KEY).is_ok());
        assert!(NoteVerifier::parse(GO_VERIFIER_KEY).is_ok());
    }

    #[test]
    fn both_implementations_refuse_a_wrong_key_id() {
        let good = signer("consentry.example/a", 5).verifier_key();
        let (name, rest) = good.split_once('+').unwrap();
        let (_, key) = rest.split_once('+').unwrap();
        let tampered = format!("{name}+00000000+{key}");
        assert!(StandardVerifier::new(&tampered).is_err());
        assert!(matches!(NoteVerifier::parse(&tampered), Err(NoteError::VerifierKeyIdMismatch { .. })));
        let mut seed_key = vec![ALG_ED25519];
        seed_key.extend_from_slice(&[5u8; 32]);
        let wrong_signer = format!("PRIVATE+KEY+{name}+00000000+{}", STANDARD.encode(seed_key));
        assert!(StandardSigner::new(&wrong_signer).is_err());
    }

    #[test]
    fn tampered_text_fails() {
        let signer = signer("consentry.example/a", 1);
        let note = signer.sign(TEXT).unwrap().replacen("42", "43", 1);
        let err = verifier_of(&signer).verify(&note).unwrap_err();
        assert!(matches!(err, NoteError::BadSignature { .. }), "{err}");
        assert!(err.to_string().contains("the note was altered or signed by another key"));
    }

    #[test]
    fn tampered_signature_fails() {
        let signer = signer("consentry.example/a", 1);
        let note = signer.sign(TEXT).unwrap();
        let (head, signature) = note.trim_end().rsplit_once(' ').unwrap();
        let mut blob = STANDARD.decode(signature).unwrap();
        blob[10] ^= 1;
        let note = format!("{head} {}\n", STANDARD.encode(blob));
        assert!(matches!(verifier_of(&signer).verify(&note), Err(NoteError::BadSignature { .. })));
    }

    #[test]
    fn signature_by_another_key_name_is_not_ours() {
        let note = signer("consentry.example/b", 1).sign(TEXT).unwrap();
        let err = verifier_of(&signer("consentry.example/a", 1)).verify(&note).unwrap_err();
        assert!(matches!(err, NoteError::NoSignatureByKey { .. }));
        assert_eq!(err.to_string(), "the note has no signature line by key consentry.example/a");
    }

    #[test]
    fn signature_by_another_key_of_the_same_name_is_reported() {
        let note = signer("consentry.example/a", 2).sign(TEXT).unwrap();
        let err = verifier_of(&signer("consentry.example/a", 1)).verify(&note).unwrap_err();
        assert!(matches!(err, NoteError::KeyIdMismatch { .. }), "{err}");
    }

    #[test]
    fn unknown_signature_lines_are_ignored() {
        let ours = signer("consentry.example/a", 1);
        let witness = signer("witness.example/w", 9);
        let note = ours.sign(TEXT).unwrap();
        let witness_note = witness.sign(TEXT).unwrap();
        let witness_line = witness_note.rsplit_once("\n\n").unwrap().1;
        let same_name_other_id = format!("\u{2014} consentry.example/a {}\n", STANDARD.encode([7u8; 68]));
        let both = format!("{note}{witness_line}{same_name_other_id}");
        assert_eq!(verifier_of(&ours).verify(&both).unwrap(), TEXT);
        let witness_first = format!("{}\n{witness_line}{}", TEXT, note.rsplit_once("\n\n").unwrap().1);
        assert_eq!(verifier_of(&ours).verify(&witness_first).unwrap(), TEXT);
    }

    #[test]
    fn malformed_notes_give_specific_errors() {
        let signer = signer("consentry.example/a", 1);
        let verifier = verifier_of(&signer);
        let note = signer.sign(TEXT).unwrap();
        let sig_line = note.rsplit_once("\n\n").unwrap().1;
        type Expectation = fn(&NoteError) -> bool;
        let cases: Vec<(String, Expectation)> = vec![
            (format!("{TEXT}{sig_line}"), |e| matches!(e, NoteError::NoBlankLine)),
            (note.trim_end().to_string(), |e| matches!(e, NoteError::NoteWithoutFinalNewline)),
            (format!("\n{sig_line}"), |e| matches!(e, NoteError::EmptyNoteText)),
            (format!("{TEXT}\n"), |e| matches!(e, NoteError::NoSignatureLines)),
            (format!("{note}garbage\n"), |e| matches!(e, NoteError::SignatureLinePrefix(2))),
            (format!("{note}\u{2014} nospace\n"), |e| matches!(e, NoteError::SignatureLineNoSpace(2))),
            (format!("{note}\u{2014} x !!!\n"), |e| matches!(e, NoteError::SignatureLineNotBase64(2))),
            (format!("{note}\u{2014} x AAAA\n"), |e| matches!(e, NoteError::SignatureLineTooShort(2))),
            (format!("a\tb\n\n{sig_line}"), |e| matches!(e, NoteError::ControlCharacter { line: 1, code: 9 })),
            (note.replacen("\n\n\u{2014}", "\n\n\u{2013}", 1), |e| matches!(e, NoteError::SignatureLinePrefix(1))),
        ];
        for (note, expected) in cases {
            let err = verifier.verify(&note).unwrap_err();
            assert!(expected(&err), "{note:?} gave {err}");
        }
        let err = verifier.verify(&format!("{TEXT}\n{}", sig_line.repeat(101))).unwrap_err();
        assert!(matches!(err, NoteError::TooManySignatureLines));
    }

    #[test]
    fn signing_refuses_texts_the_spec_forbids() {
        let signer = signer("consentry.example/a", 1);
        assert!(matches!(signer.sign(""), Err(NoteError::EmptyText)));
        assert!(matches!(signer.sign("no newline"), Err(NoteError::TextWithoutFinalNewline)));
        assert!(matches!(signer.sign("a\rb\n"), Err(NoteError::ControlCharacter { line: 1, code: 13 })));
        assert!(NoteSigner::new("", SigningKey::from_bytes(&[1; 32])).is_err());
        assert!(NoteSigner::new("a b", SigningKey::from_bytes(&[1; 32])).is_err());
        assert!(NoteSigner::new("a+b", SigningKey::from_bytes(&[1; 32])).is_err());
    }

    #[test]
    fn malformed_verifier_keys_give_specific_errors() {
        let good = signer("consentry.example/a", 1).verifier_key();
        let (name, rest) = good.split_once('+').unwrap();
        let (id, key) = rest.split_once('+').unwrap();
        let format_error = "the verifier key must look like <name>+<8 hex digits>+<base64 key>";
        for bad in
            ["", "name", "name+1234abcd", &format!("{name}+{}+{key}", &id[..7]), &format!("{name}+zzzzzzzz+{key}")]
        {
            let err = NoteVerifier::parse(bad).unwrap_err();
            assert_eq!(err.to_string(), format_error, "{bad:?}");
        }
        assert!(matches!(NoteVerifier::parse(&format!("{name}+{id}+!!")), Err(NoteError::VerifierKeyNotBase64)));
        let other_type = STANDARD.encode([2u8; 33]);
        assert!(matches!(
            NoteVerifier::parse(&format!("{name}+{id}+{other_type}")),
            Err(NoteError::UnsupportedKeyType(2))
        ));
        let short = STANDARD.encode([1u8; 20]);
        assert!(matches!(NoteVerifier::parse(&format!("{name}+{id}+{short}")), Err(NoteError::PublicKeyLength(19))));
        assert!(matches!(NoteVerifier::parse(&format!("a b+{id}+{key}")), Err(NoteError::InvalidKeyName(_))));
        assert!(NoteVerifier::parse(&format!("  {good}\n")).is_ok());
    }

    proptest! {
        #[test]
        fn parse_and_verify_never_panic(input in any::<String>(), tail in "[\u{2014} a-zA-Z0-9+/=\n]{0,200}") {
            let verifier = verifier_of(&signer("consentry.example/a", 1));
            let _ = NoteVerifier::parse(&input);
            let _ = verifier.verify(&input);
            let _ = verifier.verify(&format!("{TEXT}\n{tail}"));
            let _ = verifier.verify(&format!("{TEXT}\n\u{2014} consentry.example/a {tail}\n"));
        }
    }
}

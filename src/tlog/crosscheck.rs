//! Cross-checks of `tlog_tiles`' Merkle trees against `ct-merkle`, an independent RFC 6962
//! implementation, over the log's real leaf entries: if either disagreed with the RFC, receipts
//! would not verify with other people's tools.

use ct_merkle::digest::{FixedOutput, HashMarker, Output, OutputSizeUser, Update, consts::U32};
use ct_merkle::mem_backed_tree::MemoryBackedTree;
use ct_merkle::{ConsistencyProof, InclusionProof, RootHash};
use sha2::Digest as _;
use tlog_tiles::{
    Hash, HashReader, check_record, check_tree, prove_record, prove_tree, record_hash, stored_hashes, tree_hash,
};

use super::leaf::{SALT_BYTES, entry_bytes};

/// SHA-256 for ct-merkle, which speaks digest 0.11 while the crate's sha2 speaks digest 0.10.
#[derive(Clone, Default)]
struct Sha256(sha2::Sha256);

impl HashMarker for Sha256 {}

impl OutputSizeUser for Sha256 {
    type OutputSize = U32;
}

impl Update for Sha256 {
    fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }
}

impl FixedOutput for Sha256 {
    fn finalize_into(self, out: &mut Output<Self>) {
        out.copy_from_slice(&self.0.finalize());
    }
}

struct Storage(Vec<Hash>);

impl HashReader for Storage {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
        let read = |&i: &u64| self.0.get(usize::try_from(i).ok()?).copied();
        indexes.iter().map(read).collect::<Option<_>>().ok_or(tlog_tiles::Error::IndexesNotInTree)
    }
}

/// The same leaf entries in both trees: ct-merkle hashes a leaf as SHA-256(0x00 ‖ leaf) itself,
/// exactly as `tlog_tiles::stored_hashes` does with the entry bytes.
struct Trees {
    entries: Vec<Vec<u8>>,
    tlog: Storage,
    ct: MemoryBackedTree<Sha256, Vec<u8>>,
}

impl Trees {
    fn new(size: u64) -> Self {
        let mut trees = Trees { entries: Vec::new(), tlog: Storage(Vec::new()), ct: MemoryBackedTree::new() };
        for n in 0..size {
            let salt = [(n % 251) as u8; SALT_BYTES];
            let prev = n.checked_sub(3);
            let entry = entry_bytes(&salt, prev, &format!(r#"{{"request_id":"r{n}","host":"h{}.example"}}"#, n % 3));
            let hashes = stored_hashes(n, &entry, &trees.tlog).unwrap();
            trees.tlog.0.extend(hashes);
            trees.ct.push(entry.clone());
            trees.entries.push(entry);
        }
        trees
    }

    fn size(&self) -> u64 {
        self.entries.len() as u64
    }

    fn tlog_root(&self, size: u64) -> Hash {
        tree_hash(size, &self.tlog).unwrap()
    }

    fn ct_root(&self) -> RootHash<Sha256> {
        self.ct.root()
    }
}

fn to_hashes(bytes: &[u8]) -> Vec<Hash> {
    bytes.chunks(32).map(|chunk| Hash(chunk.try_into().unwrap())).collect()
}

fn indexes_to_prove(size: u64) -> Vec<u64> {
    if size <= 9 { (0..size).collect() } else { vec![0, 1, size / 2, size - 2, size - 1] }
}

const SIZES: [u64; 8] = [1, 2, 3, 7, 8, 9, 1000, 1025];

#[test]
fn roots_agree() {
    for size in SIZES {
        let trees = Trees::new(size);
        assert_eq!(trees.tlog_root(size).0, trees.ct_root().as_bytes().as_slice(), "size {size}");
    }
}

#[test]
fn ct_merkle_inclusion_proofs_verify_with_tlog_tiles() {
    for size in SIZES {
        let trees = Trees::new(size);
        let root = trees.tlog_root(size);
        for n in indexes_to_prove(size) {
            let proof = to_hashes(trees.ct.prove_inclusion(n as usize).as_bytes());
            let leaf = record_hash(&trees.entries[n as usize]);
            assert!(check_record(&proof, size, root, n, leaf).is_ok(), "size {size}, leaf {n}");
            let wrong = record_hash(b"another entry");
            assert!(check_record(&proof, size, root, n, wrong).is_err(), "size {size}, leaf {n}");
        }
    }
}

#[test]
fn tlog_tiles_inclusion_proofs_verify_with_ct_merkle() {
    for size in SIZES {
        let trees = Trees::new(size);
        let root = trees.ct_root();
        for n in indexes_to_prove(size) {
            let proof = prove_record(size, n, &trees.tlog).unwrap();
            let digests: Vec<Output<Sha256>> = proof.iter().map(|h| h.0.into()).collect();
            let proof = InclusionProof::<Sha256>::from_digests(&digests);
            assert!(root.verify_inclusion(&trees.entries[n as usize], n, &proof).is_ok(), "size {size}, leaf {n}");
        }
    }
}

#[test]
fn consistency_proofs_agree() {
    let trees = Trees::new(1025);
    let new_size = trees.size();
    let ct_new_root = trees.ct_root();
    for old_size in [1, 2, 3, 7, 8, 9, 1000, 1024] {
        // tlog_tiles' proof, checked by ct-merkle.
        let proof = prove_tree(new_size, old_size, &trees.tlog).unwrap();
        let digests: Vec<Output<Sha256>> = proof.iter().map(|h| h.0.into()).collect();
        let old_root = RootHash::<Sha256>::new(trees.tlog_root(old_size).0.into(), old_size);
        let ct_proof = ConsistencyProof::<Sha256>::from_digests(&digests);
        assert!(ct_new_root.verify_consistency(&old_root, &ct_proof).is_ok(), "old size {old_size}");
        // ct-merkle's proof, checked by tlog_tiles.
        let ct_proof = trees.ct.prove_consistency((new_size - old_size) as usize);
        let proof = to_hashes(ct_proof.as_bytes());
        let (new_root, old_root) = (trees.tlog_root(new_size), trees.tlog_root(old_size));
        assert!(check_tree(&proof, new_size, new_root, old_size, old_root).is_ok(), "old size {old_size}");
    }
}

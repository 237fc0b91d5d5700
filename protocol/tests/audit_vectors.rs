//! The audit log against public vectors kept under `docs/vectors/public/` (provenance and
//! licences in its SOURCES.md): the RFC 6962 reference tree, transparency-dev/merkle's
//! inclusion and consistency proof cases, and the C2SP / Go signed-note vectors.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use godwit_protocol::audit::merkle::{
    Hash, MemoryTree, consistency_proof, inclusion_proof, leaf_hash, verify_consistency, verify_inclusion,
};
use godwit_protocol::audit::note::{Note, key_id, sign, verified};
use godwit_protocol::identity::{IdentityKey, NodeId};
use serde_json::Value;
use sha2::{Digest, Sha256};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/vectors/public")
}

fn json(path: &std::path::Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn b64(v: &Value) -> Vec<u8> {
    B64.decode(v.as_str().unwrap()).unwrap()
}

/// A hash from base64, or `None` when the vector gives something that is not 32 bytes (a
/// deliberately wrong root): such a case must fail.
fn hash(v: &Value) -> Option<Hash> {
    b64(v).try_into().ok()
}

/// A root as the consistency cases give it. Some cases ("sizes are equal …") give arbitrary
/// byte strings that only need to be equal or not; those are stood for by their SHA-256, which
/// keeps equality, and no 32-byte root the vectors give is one.
fn root(v: &Value) -> Hash {
    hash(v).unwrap_or_else(|| Sha256::digest(b64(v)).into())
}

fn hashes(v: &Value) -> Option<Vec<Hash>> {
    v.as_array().map_or(Some(Vec::new()), |a| a.iter().map(hash).collect())
}

fn reference_tree() -> (MemoryTree, Vec<Hash>) {
    let v = json(&dir().join("rfc6962-reference-tree.json"));
    let mut t = MemoryTree::new();
    for leaf in v["leaf_inputs_hex"].as_array().unwrap() {
        t.push(&hex::decode(leaf.as_str().unwrap()).unwrap());
    }
    let roots = v["root_hashes_by_size_hex"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| hex::decode(r.as_str().unwrap()).unwrap().try_into().unwrap())
        .collect();
    (t, roots)
}

#[test]
fn the_rfc6962_reference_tree_has_its_root_at_every_size_and_our_proofs_check() {
    let (t, roots) = reference_tree();
    assert_eq!(roots.len(), 9);
    for (size, root) in roots.iter().enumerate() {
        let size = size as u64;
        assert_eq!(&t.root_at(size).unwrap(), root, "root of the first {size} leaves");
        for old in 1..=size {
            let p = consistency_proof(&t, old, size).unwrap();
            verify_consistency(old, size, &roots[old as usize], root, &p).unwrap();
        }
    }
    let v = json(&dir().join("rfc6962-reference-tree.json"));
    for (i, leaf) in v["leaf_inputs_hex"].as_array().unwrap().iter().enumerate() {
        let leaf = leaf_hash(&hex::decode(leaf.as_str().unwrap()).unwrap());
        let p = inclusion_proof(&t, i as u64, 8).unwrap();
        verify_inclusion(i as u64, 8, &leaf, &p, &roots[8]).unwrap();
    }
}

fn walk(dir: &std::path::Path, out: &mut Vec<(PathBuf, Value)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for e in entries {
        if e.is_dir() {
            walk(&e, out);
        } else {
            let v = json(&e);
            out.push((e, v));
        }
    }
}

fn cases(kind: &str) -> Vec<(PathBuf, Value)> {
    let mut out = Vec::new();
    walk(&dir().join("transparency-dev-merkle/testdata").join(kind), &mut out);
    out
}

#[test]
fn transparency_dev_inclusion_cases_are_judged_as_the_vectors_say() {
    let all = cases("inclusion");
    assert!(all.len() >= 98, "{} cases", all.len());
    let (mut good, mut bad) = (0, 0);
    for (path, v) in all {
        let want_err = v["wantErr"].as_bool().unwrap();
        let ok = match (hash(&v["leafHash"]), hash(&v["root"]), hashes(&v["proof"])) {
            (Some(leaf), Some(root), Some(proof)) => verify_inclusion(
                v["leafIdx"].as_u64().unwrap(),
                v["treeSize"].as_u64().unwrap(),
                &leaf,
                &proof,
                &root,
            )
            .is_ok(),
            _ => false,
        };
        assert_eq!(ok, !want_err, "{}: {}", path.display(), v["desc"]);
        if ok { good += 1 } else { bad += 1 }
    }
    assert!(good > 0 && bad > 0);
}

#[test]
fn transparency_dev_consistency_cases_are_judged_as_the_vectors_say() {
    let all = cases("consistency");
    assert!(all.len() >= 98, "{} cases", all.len());
    let (mut good, mut bad) = (0, 0);
    for (path, v) in all {
        let want_err = v["wantErr"].as_bool().unwrap();
        let ok = match (root(&v["root1"]), root(&v["root2"]), hashes(&v["proof"])) {
            (r1, r2, Some(proof)) => verify_consistency(
                v["size1"].as_u64().unwrap(),
                v["size2"].as_u64().unwrap(),
                &r1,
                &r2,
                &proof,
            )
            .is_ok(),
            _ => false,
        };
        assert_eq!(ok, !want_err, "{}: {}", path.display(), v["desc"]);
        if ok { good += 1 } else { bad += 1 }
    }
    assert!(good > 0 && bad > 0);
}

/// `name+hash+base64(0x01 ‖ key)`: the name and key, the key hash checked.
fn vkey(v: &str) -> (String, NodeId) {
    let mut parts = v.splitn(3, '+');
    let (name, id, key) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
    let raw = B64.decode(key).unwrap();
    assert_eq!(raw[0], 1, "Ed25519");
    let key: [u8; 32] = raw[1..].try_into().unwrap();
    assert_eq!(hex::encode(key_id(name, 1, &key)), id, "key id of {name}");
    (name.to_string(), NodeId::from_bytes(key).unwrap())
}

#[test]
fn c2sp_and_go_signed_notes_verify_and_signing_reproduces_the_go_note_byte_for_byte() {
    let v = json(&dir().join("signed-note-vectors.json"));
    let cases = v["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 3);
    for c in cases {
        let (name, key) = vkey(c["vkey"].as_str().unwrap());
        let text = c["note"].as_str().unwrap();
        let note = Note::parse(text).unwrap();
        assert_eq!(note.to_text(), text, "{}: the note round-trips", c["name"]);
        assert!(verified(&note, &name, &key), "{}", c["name"]);
        // The same note under another key, or with its text changed, does not verify.
        let other = IdentityKey::from_seed(&[9; 32]).node_id();
        assert!(!verified(&note, &name, &other));
        let changed = Note { text: note.text.replacen('e', "E", 1), ..note.clone() };
        assert!(!verified(&changed, &name, &key));
        if let Some(skey) = c["skey"].as_str() {
            // PRIVATE+KEY+name+hash+base64(0x01 ‖ seed)
            let raw = B64.decode(skey.splitn(5, '+').nth(4).unwrap()).unwrap();
            let seed: [u8; 32] = raw[1..].try_into().unwrap();
            let id = IdentityKey::from_seed(&seed);
            assert_eq!(id.node_id(), key);
            let body = c["text"].as_str().unwrap();
            let signed = Note { text: body.to_string(), signatures: vec![sign(&id, &name, body).unwrap()] };
            assert_eq!(signed.to_text(), text);
        }
    }
}

//! Known-answer tests against the public vectors kept in the repository under
//! `docs/vectors/public/` (provenance and licences in its SOURCES.md): the cose-wg EdDSA example,
//! RFC 9180 Appendix A (our HPKE suite), Wycheproof Ed25519 and the C2SP CCTV Ed25519 edge cases.

#![allow(clippy::unwrap_used, clippy::type_complexity)] // test code: a panic is the failure report

use std::path::PathBuf;

use godwit_protocol::crypto::{hpke_open, hpke_seal};
use godwit_protocol::envelope::{Envelope, EnvelopeError, sig_structure};
use godwit_protocol::identity::{EncryptionKey, EncryptionPublicKey, IdentityKey};
use serde_json::Value;

fn public(rel: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/vectors/public").join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn hx(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

#[test]
fn cose_wg_eddsa_sig_01_signature_and_tbs_are_byte_exact() {
    let v = public("cose-wg-Examples/eddsa-examples/eddsa-sig-01.json");
    let key = &v["input"]["sign0"]["key"];
    let seed: [u8; 32] = hx(&key["d_hex"]).try_into().unwrap();
    let id = IdentityKey::from_seed(&seed);
    assert_eq!(id.node_id().as_bytes().to_vec(), hx(&key["x_hex"]));

    let cose = hx(&v["output"]["cbor"]);
    // protected = A2 01 27 03 00 ({alg: EdDSA, content type: 0}); payload = "This is the content."
    let protected = &cose[3..8];
    let payload = v["input"]["plaintext"].as_str().unwrap().as_bytes();
    let tbs = sig_structure(protected, payload);
    assert_eq!(tbs, hx(&v["intermediates"]["ToBeSign_hex"]));
    let sig = id.sign(&tbs);
    assert_eq!(sig.to_vec(), cose[cose.len() - 64..].to_vec(), "Ed25519 signature over the Sig_structure");
    assert!(id.node_id().verify_strict(&tbs, &sig));

    // A valid COSE_Sign1, but not a Godwit envelope: extra protected parameter and an
    // unprotected kid. Refused by name.
    assert_eq!(
        Envelope::verify(&cose).unwrap_err(),
        EnvelopeError::ProtectedHeader("expected exactly alg and a 32-byte kid")
    );
}

/// Yields fixed bytes: feeds RFC 9180's `ikmE` to HPKE's ephemeral key generation.
struct FixedRng(Vec<u8>);
impl rand_core::RngCore for FixedRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        assert!(dest.len() <= self.0.len(), "vector ran out of randomness");
        let rest = self.0.split_off(dest.len());
        dest.copy_from_slice(&self.0);
        self.0 = rest;
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}
impl rand_core::CryptoRng for FixedRng {}

#[test]
fn hpke_rfc9180_appendix_a_x25519_sha256_chacha20poly1305_base_mode() {
    let all = public("hpke-rfc9180-appendixA.json");
    let v = all
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["mode"] == 0 && v["kem_id"] == 32 && v["kdf_id"] == 1 && v["aead_id"] == 3)
        .expect("suite present in Appendix A");
    let info = hx(&v["info"]);
    let first = &v["encryptions"][0];
    let (pt, aad, ct) = (hx(&first["pt"]), hx(&first["aad"]), hx(&first["ct"]));
    let pk_r = EncryptionPublicKey::from_bytes(hx(&v["pkRm"]).try_into().unwrap());

    let sealed = hpke_seal(&mut FixedRng(hx(&v["ikmE"])), &pk_r, &info, &aad, &pt).unwrap();
    assert_eq!(sealed[..32].to_vec(), hx(&v["enc"]), "encapsulated key");
    assert_eq!(sealed[32..].to_vec(), ct, "ciphertext of the first (single-shot) encryption");

    let sk_r = EncryptionKey::from_secret(&hx(&v["skRm"]).try_into().unwrap());
    assert_eq!(sk_r.public(), pk_r);
    assert_eq!(hpke_open(&sk_r, &info, &aad, &sealed).unwrap().as_slice(), pt.as_slice());
    let mut bad = sealed.clone();
    bad[40] ^= 1;
    assert!(hpke_open(&sk_r, &info, &aad, &bad).is_err());
    assert!(hpke_open(&sk_r, b"other info", &aad, &sealed).is_err());
}

fn strict(pk: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    let (Ok(pk), Ok(sig)) = (<[u8; 32]>::try_from(pk), <[u8; 64]>::try_from(sig)) else { return false };
    let Ok(vk) = ed25519_dalek::VerifyingKey::from_bytes(&pk) else { return false };
    vk.verify_strict(msg, &ed25519_dalek::Signature::from_bytes(&sig)).is_ok()
}

fn lax(pk: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    use ed25519_dalek::Verifier;
    let (Ok(pk), Ok(sig)) = (<[u8; 32]>::try_from(pk), <[u8; 64]>::try_from(sig)) else { return false };
    let Ok(vk) = ed25519_dalek::VerifyingKey::from_bytes(&pk) else { return false };
    vk.verify(msg, &ed25519_dalek::Signature::from_bytes(&sig)).is_ok()
}

/// Godwit's signature check as used on envelopes (`NodeId::from_bytes` + `verify_strict`).
fn godwit(pk: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    let (Ok(pk), Ok(sig)) = (<[u8; 32]>::try_from(pk), <[u8; 64]>::try_from(sig)) else { return false };
    godwit_protocol::identity::NodeId::from_bytes(pk).is_ok_and(|id| id.verify_strict(msg, &sig))
}

#[test]
fn wycheproof_ed25519_verdicts_match_exactly() {
    let w = public("wycheproof/ed25519_test.json");
    let mut n = 0;
    for g in w["testGroups"].as_array().unwrap() {
        let pk = hx(&g["publicKey"]["pk"]);
        for t in g["tests"].as_array().unwrap() {
            let want = t["result"] == "valid";
            let got = godwit(&pk, &hx(&t["msg"]), &hx(&t["sig"]));
            assert_eq!(got, want, "tcId {} ({})", t["tcId"], t["comment"]);
            n += 1;
        }
    }
    assert_eq!(n, 151);
}

#[test]
fn cctv_ed25519_accepts_only_a_strict_subset() {
    let v = public("cctv-ed25519/ed25519vectors.json");
    let (mut accepted, mut lax_accepted) = (0, 0);
    for t in v.as_array().unwrap() {
        let (pk, sig) = (hx(&t["key"]), hx(&t["sig"]));
        let msg = t["msg"].as_str().unwrap().as_bytes();
        let flags: Vec<&str> = t["flags"]
            .as_array()
            .map(|f| f.iter().map(|x| x.as_str().unwrap()).collect())
            .unwrap_or_default();
        let s = godwit(&pk, msg, &sig);
        assert_eq!(s, strict(&pk, msg, &sig), "vector {}", t["number"]);
        let l = lax(&pk, msg, &sig);
        lax_accepted += usize::from(l);
        if s {
            accepted += 1;
            assert!(l, "vector {}: strict accepted what cofactorless RFC 8032 rejects", t["number"]);
            for f in ["low_order_A", "low_order_R", "non_canonical_A", "non_canonical_R", "low_order_residue"]
            {
                assert!(!flags.contains(&f), "vector {} accepted with flag {f}", t["number"]);
            }
        }
    }
    assert!(accepted < lax_accepted, "strict must refuse some of what lax accepts");
    // Pinned so that a dependency upgrade that changes the verdicts fails loudly.
    assert_eq!((accepted, lax_accepted), (EXPECTED_STRICT, EXPECTED_LAX));
}

const EXPECTED_STRICT: usize = 43;
const EXPECTED_LAX: usize = 208;

#[test]
fn every_public_vector_file_has_its_provenance_in_sources_md() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/vectors/public");
    let sources = std::fs::read_to_string(dir.join("SOURCES.md")).unwrap();
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name == "SOURCES.md" || name == "LICENSES" {
            continue;
        }
        assert!(sources.contains(&format!("`{name}")), "{name} has no row in SOURCES.md");
        checked += 1;
    }
    assert!(checked >= 9, "{checked} entries");
    for licence in ["wycheproof-LICENSE", "cctv-LICENSE", "transparency-dev-merkle-LICENSE", "c2sp-LICENSE"] {
        assert!(dir.join("LICENSES").join(licence).is_file(), "{licence} missing");
        assert!(sources.contains(licence), "{licence} not named in SOURCES.md");
    }
}

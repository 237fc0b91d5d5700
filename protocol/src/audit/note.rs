//! Checkpoints as text: the C2SP `signed-note`, `tlog-checkpoint` and `tlog-cosignature`
//! formats, so that an inspector can check a node's log with independent tools.
//!
//! A node's log is named by its origin line `godwit/<NodeId>/log/<generation>`; the node signs
//! its checkpoints and cosigns its peers' under the key name `godwit/<NodeId>` with its
//! identity key (Ed25519). The two signatures have distinct key ids (signature types 0x01 and
//! 0x04) and distinct signed messages: a checkpoint's text starts with its origin line, a
//! cosigned message with `cosignature/v1`, and Godwit's other signatures cover COSE or
//! context-prefixed bytes — no signature can be taken for another.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use sha2::{Digest, Sha256};

use super::merkle::Hash;
use crate::identity::{IdentityKey, NodeId};

/// The most signatures a note may carry (C2SP asks verifiers to take at least 16).
pub const MAX_SIGNATURES: usize = 100;
/// The most bytes a note may have.
pub const MAX_NOTE_BYTES: usize = 16 << 10;
/// The most extension lines a checkpoint may have.
pub const MAX_EXTENSIONS: usize = 16;

/// Ed25519 signature type (signed-note).
const ALG_ED25519: u8 = 0x01;
/// Ed25519 cosignature/v1 type (tlog-cosignature).
const ALG_COSIGNATURE: u8 = 0x04;

/// Why a note, checkpoint or signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NoteError {
    /// The note is not well formed.
    #[error("malformed note: {0}")]
    Malformed(&'static str),
    /// The checkpoint body is not well formed.
    #[error("malformed checkpoint: {0}")]
    Checkpoint(&'static str),
    /// The origin line is not one of a Godwit node's logs.
    #[error("origin {0:?} is not a Godwit log (godwit/<NodeId>/log/<generation>)")]
    Origin(String),
    /// No signature of the expected key, or one that does not verify.
    #[error("no valid signature by {0}")]
    Unsigned(String),
    /// A key name is not allowed.
    #[error("key name {0:?} is not allowed (empty, or with spaces or '+')")]
    KeyName(String),
}

/// One signature line: `— <name> base64(key id ‖ signature)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    /// The key name.
    pub name: String,
    /// The key id: the first four bytes of `SHA-256(name ‖ "\n" ‖ type ‖ public key)`.
    pub key_id: [u8; 4],
    /// The signature bytes after the key id (64 for Ed25519; 8 + 64 for a cosignature).
    pub sig: Vec<u8>,
}

impl NoteSignature {
    /// The signature line, with its final newline.
    pub fn line(&self) -> String {
        let mut raw = self.key_id.to_vec();
        raw.extend_from_slice(&self.sig);
        format!("\u{2014} {} {}\n", self.name, B64.encode(raw))
    }

    /// Reads one signature line (without its newline).
    ///
    /// # Errors
    /// [`NoteError::Malformed`] or [`NoteError::KeyName`].
    pub fn parse_line(line: &str) -> Result<Self, NoteError> {
        let rest = line
            .strip_prefix("\u{2014} ")
            .ok_or(NoteError::Malformed("a signature line must start with '— '"))?;
        let (name, sig) = rest
            .split_once(' ')
            .ok_or(NoteError::Malformed("a signature line needs a name and a signature"))?;
        check_name(name)?;
        let raw = B64.decode(sig).map_err(|_| NoteError::Malformed("a signature is not base64"))?;
        if raw.len() < 5 {
            return Err(NoteError::Malformed("a signature is shorter than its key id"));
        }
        let key_id = [raw[0], raw[1], raw[2], raw[3]];
        Ok(Self { name: name.to_string(), key_id, sig: raw[4..].to_vec() })
    }
}

/// A signed note: text and signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The text, ending with a newline.
    pub text: String,
    /// The signatures, in order.
    pub signatures: Vec<NoteSignature>,
}

impl Note {
    /// Reads a note: text, a blank line, one or more signature lines.
    ///
    /// # Errors
    /// [`NoteError::Malformed`] or [`NoteError::KeyName`].
    pub fn parse(note: &str) -> Result<Self, NoteError> {
        if note.len() > MAX_NOTE_BYTES {
            return Err(NoteError::Malformed("longer than 16 KiB"));
        }
        if note.chars().any(|c| c.is_control() && c != '\n') {
            return Err(NoteError::Malformed("control characters other than newline"));
        }
        let split = note.rfind("\n\n").ok_or(NoteError::Malformed("no blank line before the signatures"))?;
        let (text, sigs) = (&note[..=split], &note[split + 2..]);
        if !sigs.ends_with('\n') {
            return Err(NoteError::Malformed("the last signature line does not end with a newline"));
        }
        let mut signatures = Vec::new();
        for line in sigs[..sigs.len() - 1].split('\n') {
            if signatures.len() == MAX_SIGNATURES {
                return Err(NoteError::Malformed("more than 100 signatures"));
            }
            signatures.push(NoteSignature::parse_line(line)?);
        }
        Ok(Self { text: text.to_string(), signatures })
    }

    /// The note as text.
    pub fn to_text(&self) -> String {
        let mut out = self.text.clone();
        out.push('\n');
        for s in &self.signatures {
            out.push_str(&s.line());
        }
        out
    }

    /// Adds a signature unless one of the same key is there already.
    pub fn add(&mut self, sig: NoteSignature) {
        if !self.signatures.iter().any(|s| s.name == sig.name && s.key_id == sig.key_id) {
            self.signatures.push(sig);
        }
    }
}

fn check_name(name: &str) -> Result<(), NoteError> {
    if name.is_empty() || name.contains('+') || name.chars().any(char::is_whitespace) {
        return Err(NoteError::KeyName(name.to_string()));
    }
    Ok(())
}

/// A key id: the first four bytes of `SHA-256(name ‖ "\n" ‖ alg ‖ key)`.
pub fn key_id(name: &str, alg: u8, key: &[u8; 32]) -> [u8; 4] {
    let h = Sha256::new()
        .chain_update(name.as_bytes())
        .chain_update(b"\n")
        .chain_update([alg])
        .chain_update(key)
        .finalize();
    [h[0], h[1], h[2], h[3]]
}

/// Signs `text` as a signed-note Ed25519 signature under `name`.
///
/// # Errors
/// [`NoteError::KeyName`].
pub fn sign(key: &IdentityKey, name: &str, text: &str) -> Result<NoteSignature, NoteError> {
    check_name(name)?;
    let id = key_id(name, ALG_ED25519, key.node_id().as_bytes());
    Ok(NoteSignature { name: name.to_string(), key_id: id, sig: key.sign(text.as_bytes()).to_vec() })
}

/// Whether `note` carries a valid signed-note Ed25519 signature of `signer` under `name`
/// (lines of other keys are ignored, as the format asks).
pub fn verified(note: &Note, name: &str, signer: &NodeId) -> bool {
    let id = key_id(name, ALG_ED25519, signer.as_bytes());
    note.signatures.iter().any(|s| {
        s.name == name
            && s.key_id == id
            && <[u8; 64]>::try_from(s.sig.as_slice())
                .is_ok_and(|sig| signer.verify_strict(note.text.as_bytes(), &sig))
    })
}

/// The message a cosignature/v1 signs: two header lines, then the checkpoint's whole body.
fn cosigned_message(time: u64, body: &str) -> String {
    format!("cosignature/v1\ntime {time}\n{body}")
}

/// Cosigns a checkpoint body at `time` (POSIX seconds) under `name` (C2SP tlog-cosignature).
///
/// # Errors
/// [`NoteError::KeyName`].
pub fn cosign(key: &IdentityKey, name: &str, time: u64, body: &str) -> Result<NoteSignature, NoteError> {
    check_name(name)?;
    let id = key_id(name, ALG_COSIGNATURE, key.node_id().as_bytes());
    let mut sig = time.to_be_bytes().to_vec();
    sig.extend_from_slice(&key.sign(cosigned_message(time, body).as_bytes()));
    Ok(NoteSignature { name: name.to_string(), key_id: id, sig })
}

/// The time of `sig` if it is a valid cosignature of `body` by `witness` under `name`.
pub fn cosignature_time(sig: &NoteSignature, name: &str, witness: &NodeId, body: &str) -> Option<u64> {
    if sig.name != name
        || sig.key_id != key_id(name, ALG_COSIGNATURE, witness.as_bytes())
        || sig.sig.len() != 72
    {
        return None;
    }
    let time = u64::from_be_bytes(sig.sig[..8].try_into().ok()?);
    if time > i64::MAX as u64 {
        return None;
    }
    let s: [u8; 64] = sig.sig[8..].try_into().ok()?;
    witness.verify_strict(cosigned_message(time, body).as_bytes(), &s).then_some(time)
}

/// A checkpoint (C2SP tlog-checkpoint): origin, size, root, extension lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The origin line.
    pub origin: String,
    /// The number of entries.
    pub size: u64,
    /// The root hash over them.
    pub root: Hash,
    /// Extension lines (Godwit writes none; they are kept and signed over if present).
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// The checkpoint's text: each line ending with a newline.
    pub fn body(&self) -> String {
        let mut s = format!("{}\n{}\n{}\n", self.origin, self.size, B64.encode(self.root));
        for e in &self.extensions {
            s.push_str(e);
            s.push('\n');
        }
        s
    }

    /// Reads a checkpoint's text.
    ///
    /// # Errors
    /// [`NoteError::Checkpoint`].
    pub fn parse(body: &str) -> Result<Self, NoteError> {
        let lines = body.strip_suffix('\n').ok_or(NoteError::Checkpoint("does not end with a newline"))?;
        let mut it = lines.split('\n');
        let origin = it.next().filter(|o| !o.is_empty()).ok_or(NoteError::Checkpoint("no origin line"))?;
        let size = it.next().ok_or(NoteError::Checkpoint("no size line"))?;
        if size.is_empty()
            || (size.len() > 1 && size.starts_with('0'))
            || !size.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(NoteError::Checkpoint("the size is not a decimal number without leading zeros"));
        }
        let size: u64 = size.parse().map_err(|_| NoteError::Checkpoint("the size does not fit 64 bits"))?;
        let root = it.next().ok_or(NoteError::Checkpoint("no root hash line"))?;
        let root: Hash = B64
            .decode(root)
            .ok()
            .and_then(|r| r.try_into().ok())
            .ok_or(NoteError::Checkpoint("the root hash is not 32 bytes of base64"))?;
        let extensions: Vec<String> = it.map(str::to_string).collect();
        if extensions.len() > MAX_EXTENSIONS || extensions.iter().any(String::is_empty) {
            return Err(NoteError::Checkpoint("empty or too many extension lines"));
        }
        Ok(Self { origin: origin.to_string(), size, root, extensions })
    }
}

/// The key name a node signs and cosigns under.
pub fn key_name(node: &NodeId) -> String {
    format!("godwit/{node}")
}

/// The origin line of a node's log generation.
pub fn origin(node: &NodeId, generation: u64) -> String {
    format!("godwit/{node}/log/{generation}")
}

/// The node and generation an origin line names.
///
/// # Errors
/// [`NoteError::Origin`].
pub fn parse_origin(origin: &str) -> Result<(NodeId, u64), NoteError> {
    let bad = || NoteError::Origin(origin.chars().take(120).collect());
    let rest = origin.strip_prefix("godwit/").ok_or_else(bad)?;
    let (node, gen_) = rest.split_once("/log/").ok_or_else(bad)?;
    let node: NodeId = node.parse().map_err(|_| bad())?;
    if gen_.is_empty()
        || (gen_.len() > 1 && gen_.starts_with('0'))
        || !gen_.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    Ok((node, gen_.parse().map_err(|_| bad())?))
}

/// A node's signed checkpoint, read and checked: the note (with whatever cosignatures it
/// carries), its checkpoint, and the node and generation its origin names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    /// The note.
    pub note: Note,
    /// Its checkpoint.
    pub checkpoint: Checkpoint,
    /// The log's node.
    pub node: NodeId,
    /// The log's generation.
    pub generation: u64,
}

impl SignedCheckpoint {
    /// Signs a checkpoint of `key`'s own log.
    ///
    /// # Errors
    /// [`NoteError::Origin`] when the checkpoint's origin is not `key`'s.
    pub fn sign(key: &IdentityKey, checkpoint: Checkpoint) -> Result<Self, NoteError> {
        let (node, generation) = parse_origin(&checkpoint.origin)?;
        if node != key.node_id() {
            return Err(NoteError::Origin(checkpoint.origin));
        }
        let text = checkpoint.body();
        let sig = sign(key, &key_name(&node), &text)?;
        Ok(Self { note: Note { text, signatures: vec![sig] }, checkpoint, node, generation })
    }

    /// Reads a signed checkpoint and checks the signature of the node its origin names.
    ///
    /// # Errors
    /// Any [`NoteError`].
    pub fn open(text: &str) -> Result<Self, NoteError> {
        let note = Note::parse(text)?;
        let checkpoint = Checkpoint::parse(&note.text)?;
        let (node, generation) = parse_origin(&checkpoint.origin)?;
        if !verified(&note, &key_name(&node), &node) {
            return Err(NoteError::Unsigned(key_name(&node)));
        }
        Ok(Self { note, checkpoint, node, generation })
    }

    /// The witnesses among `witnesses` whose valid cosignatures it carries, with their times.
    pub fn cosigners<'a>(&self, witnesses: impl IntoIterator<Item = &'a NodeId>) -> Vec<(NodeId, u64)> {
        witnesses
            .into_iter()
            .filter_map(|w| {
                let name = key_name(w);
                self.note
                    .signatures
                    .iter()
                    .find_map(|s| cosignature_time(s, &name, w, &self.note.text))
                    .map(|t| (*w, t))
            })
            .collect()
    }

    /// The cosignature lines it carries (every line but the log's own signature).
    pub fn cosignature_lines(&self) -> impl Iterator<Item = &NoteSignature> {
        let own = key_id(&key_name(&self.node), ALG_ED25519, self.node.as_bytes());
        self.note.signatures.iter().filter(move |s| s.key_id != own)
    }

    /// The names of the cosigning nodes its signature lines claim (unchecked): a key name
    /// `godwit/<NodeId>` with a cosignature-type key id.
    pub fn claimed_cosigners(&self) -> Vec<NodeId> {
        self.cosignature_lines()
            .filter_map(|s| {
                let node: NodeId = s.name.strip_prefix("godwit/")?.parse().ok()?;
                (s.key_id == key_id(&s.name, ALG_COSIGNATURE, node.as_bytes())).then_some(node)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> IdentityKey {
        IdentityKey::from_seed(&[b; 32])
    }

    #[test]
    fn a_checkpoint_signed_by_its_node_opens_and_its_text_round_trips() {
        let k = key(1);
        let cp = Checkpoint { origin: origin(&k.node_id(), 0), size: 17, root: [7; 32], extensions: vec![] };
        let s = SignedCheckpoint::sign(&k, cp.clone()).unwrap();
        let text = s.note.to_text();
        assert!(text.starts_with(&format!("godwit/{}/log/0\n17\n", k.node_id())));
        let o = SignedCheckpoint::open(&text).unwrap();
        assert_eq!((o.checkpoint, o.node, o.generation), (cp, k.node_id(), 0));
    }

    #[test]
    fn a_checkpoint_with_a_bad_signature_or_anothers_origin_is_refused() {
        let (a, b) = (key(1), key(2));
        let cp = Checkpoint { origin: origin(&a.node_id(), 0), size: 3, root: [1; 32], extensions: vec![] };
        assert!(matches!(SignedCheckpoint::sign(&b, cp.clone()), Err(NoteError::Origin(_))));
        let text = SignedCheckpoint::sign(&a, cp).unwrap().note.to_text();
        // Another size under the same signature.
        let forged = text.replacen("\n3\n", "\n4\n", 1);
        assert!(matches!(SignedCheckpoint::open(&forged), Err(NoteError::Unsigned(_))));
        // A signature by another key under the node's name.
        let mut n = Note::parse(&text).unwrap();
        n.signatures =
            vec![NoteSignature { key_id: n.signatures[0].key_id, ..sign(&b, "x", &n.text).unwrap() }];
        n.signatures[0].name = key_name(&a.node_id());
        assert!(matches!(SignedCheckpoint::open(&n.to_text()), Err(NoteError::Unsigned(_))));
    }

    #[test]
    fn cosignatures_verify_only_for_their_witness_and_body() {
        let (log, w, other) = (key(1), key(2), key(3));
        let cp = Checkpoint { origin: origin(&log.node_id(), 2), size: 9, root: [4; 32], extensions: vec![] };
        let mut s = SignedCheckpoint::sign(&log, cp).unwrap();
        let c = cosign(&w, &key_name(&w.node_id()), 1_795_000_000, &s.note.text).unwrap();
        s.note.add(c.clone());
        let reopened = SignedCheckpoint::open(&s.note.to_text()).unwrap();
        assert_eq!(reopened.cosigners(&[w.node_id(), other.node_id()]), vec![(w.node_id(), 1_795_000_000)]);
        assert_eq!(reopened.claimed_cosigners(), vec![w.node_id()]);
        // A forged one: the witness's name and key id, another key's signature.
        let mut forged = cosign(&other, &key_name(&w.node_id()), 1_795_000_000, &s.note.text).unwrap();
        forged.key_id = c.key_id;
        assert_eq!(cosignature_time(&forged, &key_name(&w.node_id()), &w.node_id(), &s.note.text), None);
        // The right cosignature over another body.
        assert_eq!(cosignature_time(&c, &key_name(&w.node_id()), &w.node_id(), "other\n1\nAAAA\n"), None);
    }

    #[test]
    fn malformed_notes_and_checkpoints_are_refused_by_name() {
        let k = key(1);
        let good = SignedCheckpoint::sign(
            &k,
            Checkpoint { origin: origin(&k.node_id(), 0), size: 1, root: [0; 32], extensions: vec![] },
        )
        .unwrap()
        .note
        .to_text();
        let line = good.lines().last().unwrap().to_string();
        let text = good.split("\n\n").next().unwrap().to_string() + "\n";
        for (bad, why) in [
            (text.clone(), "text only"),
            (format!("{text}\n"), "no signature"),
            (good.trim_end_matches('\n').to_string(), "no final newline"),
            (format!("\u{1}{good}"), "control byte"),
            (good.replacen(&format!("godwit/{}", k.node_id()), "Bad Name", 1), "bad name"),
            (format!("{good}extra\n"), "extra line"),
            (format!("{text}\n{}", format!("{line}\n").repeat(101)), "101 signatures"),
        ] {
            assert!(SignedCheckpoint::open(&bad).is_err(), "{why}: accepted");
        }
        for body in ["o\n01\nAAAA\n", "o\n1\nAAAA\n", "o\n1\n", "\n1\nAA==\n", "o\nx\nAA==\n"] {
            assert!(matches!(Checkpoint::parse(body), Err(NoteError::Checkpoint(_))), "{body:?}");
        }
        assert!(matches!(parse_origin("godwit/xyz/log/0"), Err(NoteError::Origin(_))));
        assert!(matches!(parse_origin(&format!("godwit/{}/log/01", k.node_id())), Err(NoteError::Origin(_))));
        assert!(matches!(parse_origin(&format!("godwit/{}/log/+1", k.node_id())), Err(NoteError::Origin(_))));
    }
}

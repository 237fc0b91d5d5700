//! Control records: the one signed format for what is not a message but steers the network —
//! node cards, channel states, channel keys, revocations, successions and audit checkpoints.
//!
//! ```cddl
//! control-record = {
//!   "sig": bstr .size 64,
//!   "body": bstr .cbor any,     ; the typed body, exactly as signed
//!   "kind": control-kind,
//!   "signer": node-id,
//! }
//! control-kind = "node-card" / "channel-state" / "channel-key" / "revocation" /
//!                "succession" / "checkpoint"
//! ```
//! Signature: `Ed25519(signer, "godwit/v1 " ‖ kind ‖ "\0" ‖ body)` — a context string per kind,
//! so a signature over one kind never verifies as another — checked with strict Ed25519. The
//! record is clear text: relays check it without any key but the signer's, and carry it with
//! feeds and catch-up. What a body means, and who may sign it, is the kind's own rule.

use serde::{Deserialize, Serialize};

use crate::codec::{self, CodecError};
use crate::identity::{IdentityKey, NodeId};

/// What a control record carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Kind {
    /// A node's signed card (keys, addresses, versions).
    NodeCard,
    /// A channel's membership and rights at one epoch.
    ChannelState,
    /// A channel epoch key sealed to each member.
    ChannelKey,
    /// A revocation list passed on.
    Revocation,
    /// A node handing its role to a successor.
    Succession,
    /// A signed audit-log checkpoint.
    Checkpoint,
}

impl Kind {
    /// The kind's name on the wire and in its signature context.
    pub fn name(self) -> &'static str {
        match self {
            Kind::NodeCard => "node-card",
            Kind::ChannelState => "channel-state",
            Kind::ChannelKey => "channel-key",
            Kind::Revocation => "revocation",
            Kind::Succession => "succession",
            Kind::Checkpoint => "checkpoint",
        }
    }

    /// What is signed: the kind's context string, then the body.
    fn signed(self, body: &[u8]) -> Vec<u8> {
        [b"godwit/v1 ", self.name().as_bytes(), b"\0", body].concat()
    }
}

/// A control record whose signature verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlRecord {
    /// Its kind.
    pub kind: Kind,
    /// Who signed it.
    pub signer: NodeId,
    /// The body, exactly as signed (decode it as the kind says).
    pub body: Vec<u8>,
}

/// Why a control record was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// The record's CBOR was refused.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// Another kind than expected.
    #[error("a {expected} record was expected, this is a {found} record")]
    WrongKind {
        /// The kind expected.
        expected: &'static str,
        /// The kind found.
        found: &'static str,
    },
    /// The signature is not 64 bytes.
    #[error("the signature of a {kind} record must be 64 bytes, got {len}")]
    SignatureLength {
        /// The record's kind.
        kind: &'static str,
        /// Its length.
        len: usize,
    },
    /// The signature does not verify.
    #[error("the signature by {signer} does not verify over the {kind} record")]
    BadSignature {
        /// The record's kind.
        kind: &'static str,
        /// The claimed signer.
        signer: NodeId,
    },
}

/// Fields in deterministic-CBOR key order.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    #[serde(with = "serde_bytes")]
    sig: Vec<u8>,
    #[serde(with = "serde_bytes")]
    body: Vec<u8>,
    kind: Kind,
    signer: NodeId,
}

/// The kind a record claims (not yet verified).
///
/// # Errors
/// [`ControlError::Codec`] if it is not a control record.
pub fn kind_of(bytes: &[u8]) -> Result<Kind, ControlError> {
    let w: Wire = codec::from_slice("control record", bytes)?;
    Ok(w.kind)
}

/// Signs `body` as a record of `kind` by `key`; returns the encoded record.
pub fn sign(key: &IdentityKey, kind: Kind, body: &[u8]) -> Vec<u8> {
    let sig = key.sign(&kind.signed(body)).to_vec();
    codec::to_vec(&Wire { sig, body: body.to_vec(), kind, signer: key.node_id() })
}

/// Decodes a record, checks it is of `kind` and verifies its signature.
///
/// # Errors
/// [`ControlError`] naming what is wrong.
pub fn verify(bytes: &[u8], kind: Kind) -> Result<ControlRecord, ControlError> {
    let w: Wire = codec::from_slice("control record", bytes)?;
    if w.kind != kind {
        return Err(ControlError::WrongKind { expected: kind.name(), found: w.kind.name() });
    }
    let sig: [u8; 64] = w
        .sig
        .as_slice()
        .try_into()
        .map_err(|_| ControlError::SignatureLength { kind: kind.name(), len: w.sig.len() })?;
    if !w.signer.verify_strict(&kind.signed(&w.body), &sig) {
        return Err(ControlError::BadSignature { kind: kind.name(), signer: w.signer });
    }
    Ok(ControlRecord { kind, signer: w.signer, body: w.body })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_verifies_as_its_own_kind_only() {
        let key = IdentityKey::from_seed(&[3; 32]);
        let rec = sign(&key, Kind::Checkpoint, b"tree size 7");
        let ok = verify(&rec, Kind::Checkpoint).unwrap();
        assert_eq!(
            (ok.kind, ok.signer, ok.body.as_slice()),
            (Kind::Checkpoint, key.node_id(), &b"tree size 7"[..])
        );
        assert_eq!(
            verify(&rec, Kind::ChannelState).unwrap_err(),
            ControlError::WrongKind { expected: "channel-state", found: "checkpoint" }
        );
    }

    #[test]
    fn the_signature_covers_the_kind_and_the_body() {
        let key = IdentityKey::from_seed(&[3; 32]);
        // The same body signed as another kind, relabelled: the context string differs.
        let mut w: Wire = codec::from_slice("control record", &sign(&key, Kind::Revocation, b"x")).unwrap();
        w.kind = Kind::Succession;
        let relabelled = codec::to_vec(&w);
        assert!(matches!(verify(&relabelled, Kind::Succession), Err(ControlError::BadSignature { .. })));
        let mut w: Wire = codec::from_slice("control record", &sign(&key, Kind::Revocation, b"x")).unwrap();
        w.body = b"y".to_vec();
        assert!(matches!(
            verify(&codec::to_vec(&w), Kind::Revocation),
            Err(ControlError::BadSignature { .. })
        ));
    }

    #[test]
    fn the_context_strings_are_those_of_the_earlier_formats() {
        // Node cards and channel keys were signed under these contexts before they became
        // control records; the signatures stay the same.
        assert_eq!(Kind::NodeCard.signed(b"b"), b"godwit/v1 node-card\0b");
        assert_eq!(Kind::ChannelKey.signed(b"b"), b"godwit/v1 channel-key\0b");
    }

    #[test]
    fn unknown_fields_and_kinds_are_refused() {
        let key = IdentityKey::from_seed(&[3; 32]);
        let rec = sign(&key, Kind::NodeCard, b"b");
        let mut v: ciborium::Value = ciborium::from_reader(rec.as_slice()).unwrap();
        if let ciborium::Value::Map(m) = &mut v {
            m.push((ciborium::Value::Text("zz".into()), ciborium::Value::Integer(1.into())));
        }
        let mut extra = Vec::new();
        ciborium::into_writer(&v, &mut extra).unwrap();
        assert!(matches!(verify(&extra, Kind::NodeCard), Err(ControlError::Codec(_))));
        let other = rec.windows(9).position(|w| w == b"node-card").unwrap();
        let mut bad = rec.clone();
        bad[other..other + 9].copy_from_slice(b"node-carx");
        assert!(matches!(verify(&bad, Kind::NodeCard), Err(ControlError::Codec(_))));
    }
}

#[cfg(test)]
mod known_answer {
    use super::*;

    /// The record for a fixed key and body, byte for byte: the wire format must not drift
    /// (Ed25519 signatures are deterministic).
    #[test]
    fn a_checkpoint_record_has_this_encoding() {
        let key = IdentityKey::from_seed(&[7; 32]);
        let rec = sign(&key, Kind::Checkpoint, b"godwit checkpoint");
        let hex: String = rec.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, KAT, "encoding changed");
        assert_eq!(verify(&rec, Kind::Checkpoint).unwrap().signer, key.node_id());
    }

    const KAT: &str = concat!(
        "a4637369675840e7e8b96b1d19fabac7504e42806fce71c9a35abcd7b4e34658d4334cfecb6e5a38fda7084cc5c0",
        "ac7ef27b4b146e4e3ba6c826adf2ce4c86bd0aef863014920b64626f647951676f6477697420636865636b706f69",
        "6e74646b696e646a636865636b706f696e74667369676e65725820ea4a6c63e29c520abef5507b132ec5f9954776",
        "aebebe7b92421eea691446d22c"
    );
}

//! The signed envelope: a COSE_Sign1 (RFC 9052) with EdDSA, whose payload is the signed header
//! and the ciphertexts.
//!
//! ```text
//! envelope  = 18([ protected: bstr, unprotected: {}, payload: bstr, signature: bstr .size 64 ])
//! protected = { 1: -8, 4: bstr .size 32 }         ; alg EdDSA, kid = author NodeId, nothing else
//! payload   = [ header: bstr .cbor Header, body: bstr, personal: bstr / null ]
//! id        = SHA-256("godwit/v1 message-id\0" ‖ protected ‖ payload)
//! ```
//! Every byte is deterministic CBOR; [`Envelope::verify`] re-derives the canonical bytes and
//! refuses anything else, then checks the signature with `verify_strict` over the bytes as
//! received. Relays verify without decrypting.

use coset::{CoseSign1, CoseSign1Builder, HeaderBuilder, TaggedCborSerializable, iana};
use std::collections::HashMap;

use ed25519_dalek::{Signature, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::codec::{self, CodecError, bounded};
use crate::content::Tlp;
use crate::crypto::{SealedKey, check_sealed_list};
use crate::identity::{IdentityError, IdentityKey, NodeId};
use crate::ids::{ChannelId, FeedId, MessageId};
use crate::limits::{LIMITS, MAX_RECIPIENTS};
use crate::time::Timestamp;

/// The protocol version this crate writes.
pub const PROTOCOL_VERSION: u16 = 1;
/// Protocol versions this crate reads.
pub const SUPPORTED_VERSIONS: &[u16] = &[1];

/// Largest sequence number (2^53 − 1: exact in every JSON and CBOR consumer, never near overflow).
pub const MAX_SEQ: u64 = (1 << 53) - 1;
/// Longest lifetime (`expires - created`) of a message, in milliseconds: 366 days. Relays keep
/// and pass on a message until it expires, so its author cannot make them hold it forever.
pub const MAX_LIFETIME_MS: u64 = 366 * 86_400_000;

const ID_CONTEXT: &[u8] = b"godwit/v1 message-id\0";
const DIRECT_FEED_CONTEXT: &[u8] = b"godwit/v1 direct-feed\0";
const CONTROL_FEED_CONTEXT: &[u8] = b"godwit/v1 control-feed\0";
/// The protected header is always `{1: -8, 4: h'<32 bytes>'}`: these 6 bytes, then the kid.
const PROTECTED_PREFIX: [u8; 6] = [0xa2, 0x01, 0x27, 0x04, 0x58, 0x20];

/// Why an envelope was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// Larger than the envelope limit; nothing was parsed.
    #[error("envelope is {len} bytes, over the limit of {max}")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not a tagged COSE_Sign1.
    #[error("not a COSE_Sign1 envelope: {0}")]
    Malformed(String),
    /// A COSE_Sign1, but not in deterministic encoding.
    #[error("envelope is not in deterministic CBOR encoding")]
    NotDeterministic,
    /// The protected header is not exactly `{alg: EdDSA, kid: 32 bytes}`.
    #[error("protected header must be exactly {{alg: EdDSA, kid: 32-byte NodeId}}: {0}")]
    ProtectedHeader(&'static str),
    /// The unprotected header is not empty.
    #[error("unprotected header must be empty: relays could alter it without breaking the signature")]
    UnprotectedHeader,
    /// The payload is detached (nil).
    #[error("payload is detached; Godwit envelopes carry their payload")]
    DetachedPayload,
    /// The signature is not 64 bytes.
    #[error("signature is {0} bytes, expected 64")]
    SignatureLength(usize),
    /// The kid is not a usable Ed25519 key.
    #[error("author key in kid is unusable: {0}")]
    AuthorKey(IdentityError),
    /// The payload's CBOR was refused.
    #[error("payload: {0}")]
    Payload(CodecError),
    /// The protocol version is not one this node reads.
    #[error("protocol version {got} is not supported (this node reads {SUPPORTED_VERSIONS:?})")]
    UnsupportedVersion {
        /// The version in the message.
        got: u16,
    },
    /// The header's author differs from the kid.
    #[error("header author {header} differs from the signing key {kid}")]
    AuthorMismatch {
        /// The kid.
        kid: NodeId,
        /// The header's author.
        header: NodeId,
    },
    /// A header field is out of range or inconsistent.
    #[error("invalid header: {0}")]
    InvalidHeader(String),
    /// The signature does not verify (strict Ed25519).
    #[error("signature by {0} does not verify: the envelope was altered or signed by another key")]
    BadSignature(NodeId),
}

/// How urgently a message must move. Flash never waits behind routine traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// Act now (e.g. a courier boarding within hours).
    Flash,
    /// Act today.
    Immediate,
    /// Normal.
    Routine,
}

/// Which feed a message belongs to, with its encryption parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Feed {
    /// A channel message, encrypted under the channel's epoch key.
    Channel(ChannelFeed),
    /// A direct message: a fresh content key sealed to each named recipient, sorted by NodeId.
    Direct(#[serde(deserialize_with = "bounded::vec::<_, _, MAX_RECIPIENTS>")] Vec<SealedKey>),
    /// A control record ([`crate::control`]) in clear text, for every node: the author's feed of
    /// records of one kind, carried and caught up like any other feed.
    Control(ControlFeed),
}

/// The kind of the records of a control feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlFeed {
    /// The records' kind.
    pub kind: crate::control::Kind,
}

/// The channel and epoch of a channel message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelFeed {
    /// The channel.
    pub id: ChannelId,
    /// The epoch whose key encrypts the body.
    pub epoch: u64,
}

impl Feed {
    /// The feed id: the channel id, or `SHA-256("godwit/v1 direct-feed\0" ‖ sorted recipient ids)`.
    pub fn id(&self) -> FeedId {
        match self {
            Feed::Channel(c) => FeedId(c.id.0),
            Feed::Direct(to) => {
                let mut h = Sha256::new().chain_update(DIRECT_FEED_CONTEXT);
                to.iter().for_each(|s| h.update(s.to.as_bytes()));
                FeedId(h.finalize().into())
            }
            Feed::Control(c) => control_feed_id(c.kind),
        }
    }

    /// The named recipients of a direct message (empty for channel messages).
    pub fn recipients(&self) -> impl Iterator<Item = &NodeId> {
        let list: &[SealedKey] = match self {
            Feed::Direct(to) => to,
            Feed::Channel(_) | Feed::Control(_) => &[],
        };
        list.iter().map(|s| &s.to)
    }
}

/// The feed id of the control feed of records of `kind`:
/// `SHA-256("godwit/v1 control-feed\0" ‖ kind name)` (one such feed per author and kind).
pub fn control_feed_id(kind: crate::control::Kind) -> FeedId {
    FeedId(Sha256::new().chain_update(CONTROL_FEED_CONTEXT).chain_update(kind.name()).finalize().into())
}

/// The feed id of a direct feed to `recipients` (which must be sorted, as in the header).
pub fn direct_feed_id(recipients: &[NodeId]) -> FeedId {
    let mut h = Sha256::new().chain_update(DIRECT_FEED_CONTEXT);
    recipients.iter().for_each(|r| h.update(r.as_bytes()));
    FeedId(h.finalize().into())
}

/// The signed header, visible to relays. Fields in deterministic-CBOR key order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// Protocol version.
    pub v: u16,
    /// Sequence number in the author's feed, from 1.
    pub seq: u64,
    /// The feed and its encryption parameters.
    pub feed: Feed,
    /// The id of the author's previous message in this feed (`None` exactly when `seq` is 1).
    pub prev: Option<MessageId>,
    /// The author (equal to the COSE kid).
    pub author: NodeId,
    /// When the author created the message.
    pub created: Timestamp,
    /// After this, nodes stop relaying and delivering it.
    pub expires: Timestamp,
    /// The TLP 2.0 handling marking (immutable: it is signed).
    pub marking: Tlp,
    /// Keys of the personal-data section, sealed to its named recipients; `None` if there is none.
    #[serde(deserialize_with = "bounded::opt_vec::<_, _, MAX_RECIPIENTS>")]
    pub personal: Option<Vec<SealedKey>>,
    /// Urgency.
    pub priority: Priority,
}

impl Header {
    /// Checks the header's own consistency.
    ///
    /// # Errors
    /// [`EnvelopeError::InvalidHeader`] naming the problem.
    pub fn validate(&self) -> Result<(), EnvelopeError> {
        let bad = |m: String| Err(EnvelopeError::InvalidHeader(m));
        if !SUPPORTED_VERSIONS.contains(&self.v) {
            return Err(EnvelopeError::UnsupportedVersion { got: self.v });
        }
        if self.seq == 0 {
            return bad("sequence numbers start at 1".into());
        }
        if self.seq > MAX_SEQ {
            return bad(format!("seq {} is beyond the largest allowed ({MAX_SEQ})", self.seq));
        }
        if (self.seq == 1) != self.prev.is_none() {
            return bad(format!(
                "seq {} must {}have a prev id",
                self.seq,
                if self.seq == 1 { "not " } else { "" }
            ));
        }
        if self.expires <= self.created {
            return bad(format!("expires ({}) is not after created ({})", self.expires, self.created));
        }
        if self.expires.as_millis() - self.created.as_millis() > MAX_LIFETIME_MS {
            return bad(format!(
                "a lifetime of {} ms (created {}, expires {}) is longer than the {MAX_LIFETIME_MS} ms allowed",
                self.expires.as_millis() - self.created.as_millis(),
                self.created,
                self.expires
            ));
        }
        match &self.feed {
            Feed::Channel(_) if self.marking == Tlp::Red => {
                return bad("TLP:RED travels only as a direct message to named recipients".into());
            }
            Feed::Channel(_) => {}
            Feed::Direct(to) => check_sealed_list(to, MAX_RECIPIENTS)
                .map_err(|m| EnvelopeError::InvalidHeader(format!("direct recipients: {m}")))?,
            // Control records are for every node, in clear text.
            Feed::Control(_) if self.marking != Tlp::Clear => {
                return bad(format!("a control record is TLP:CLEAR, not {}", self.marking.as_str()));
            }
            Feed::Control(_) if self.personal.is_some() => {
                return bad("a control record carries no personal data".into());
            }
            Feed::Control(_) => {}
        }
        if let Some(p) = &self.personal {
            check_sealed_list(p, MAX_RECIPIENTS)
                .map_err(|m| EnvelopeError::InvalidHeader(format!("personal-data recipients: {m}")))?;
            if let Feed::Direct(to) = &self.feed {
                if let Some(x) = p.iter().find(|x| to.binary_search_by(|t| t.to.cmp(&x.to)).is_err()) {
                    return bad(format!(
                        "personal-data recipient {} is not a recipient of the message",
                        x.to
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The payload of the COSE_Sign1: `[header bstr, body bstr, personal bstr / null]`.
#[derive(Debug, Serialize, Deserialize)]
struct Payload(
    #[serde(with = "serde_bytes")] Vec<u8>,
    #[serde(with = "serde_bytes")] Vec<u8>,
    Option<serde_bytes::ByteBuf>,
);

/// Only the version of a header, read before the full header so that an unknown version is
/// reported as such rather than as a malformed header.
#[derive(Deserialize)]
struct VersionOnly {
    v: u16,
}

/// Reads `"v"`, which deterministic encoding puts first (`map-header 0x61 'v' uint`); anything
/// else goes through the general decoder.
fn header_version(header: &[u8]) -> Result<u16, EnvelopeError> {
    match header {
        [0xa0..=0xb7, 0x61, b'v', v @ 0..=0x17, ..] => Ok(u16::from(*v)),
        _ => codec::from_slice_lenient::<VersionOnly>("header version", header)
            .map(|h| h.v)
            .map_err(EnvelopeError::Payload),
    }
}

/// An envelope whose structure and signature have been verified. Its content is still sealed.
#[derive(Debug, Clone)]
pub struct Envelope {
    id: MessageId,
    header: Header,
    header_bytes: Vec<u8>,
    body: Vec<u8>,
    personal: Option<Vec<u8>>,
}

impl Envelope {
    /// Parses `bytes` strictly and verifies the author's signature over them.
    ///
    /// # Errors
    /// An [`EnvelopeError`] naming the first problem found.
    pub fn verify(bytes: &[u8]) -> Result<Envelope, EnvelopeError> {
        Self::verify_inner(bytes, None)
    }

    /// Like [`Envelope::verify`], with decompressed author keys kept in `cache`: a node sees the
    /// same few hundred authors again and again.
    ///
    /// # Errors
    /// As [`Envelope::verify`].
    pub fn verify_cached(bytes: &[u8], cache: &mut KeyCache) -> Result<Envelope, EnvelopeError> {
        Self::verify_inner(bytes, Some(cache))
    }

    fn verify_inner(bytes: &[u8], cache: Option<&mut KeyCache>) -> Result<Envelope, EnvelopeError> {
        if bytes.len() > LIMITS.max_envelope_len {
            return Err(EnvelopeError::TooLarge { len: bytes.len(), max: LIMITS.max_envelope_len });
        }
        let cose =
            CoseSign1::from_tagged_slice(bytes).map_err(|e| EnvelopeError::Malformed(e.to_string()))?;
        let protected = cose.protected.original_data.as_deref().unwrap_or_default();
        let kid = check_protected(protected)?;
        if !cose.unprotected.is_empty() {
            return Err(EnvelopeError::UnprotectedHeader);
        }
        let payload = cose.payload.as_deref().ok_or(EnvelopeError::DetachedPayload)?;
        let sig: [u8; 64] = cose
            .signature
            .as_slice()
            .try_into()
            .map_err(|_| EnvelopeError::SignatureLength(cose.signature.len()))?;
        if encode_cose(protected, payload, &sig) != bytes {
            return Err(EnvelopeError::NotDeterministic);
        }
        let author = NodeId::from_wire(kid);

        let Payload(header_bytes, body, personal) =
            codec::from_slice("envelope payload", payload).map_err(EnvelopeError::Payload)?;
        let v = header_version(&header_bytes)?;
        if !SUPPORTED_VERSIONS.contains(&v) {
            return Err(EnvelopeError::UnsupportedVersion { got: v });
        }
        let header: Header =
            codec::from_slice("signed header", &header_bytes).map_err(EnvelopeError::Payload)?;
        if header.author != author {
            return Err(EnvelopeError::AuthorMismatch { kid: author, header: header.author });
        }
        header.validate()?;
        if header.personal.is_some() != personal.is_some() {
            return Err(EnvelopeError::InvalidHeader(
                "personal-data keys and personal-data section must be both present or both absent".into(),
            ));
        }
        let key = match cache {
            Some(c) => c.get(&author)?,
            None => author.verifying_key().map_err(EnvelopeError::AuthorKey)?,
        };
        if key.verify_strict(&sig_structure(protected, payload), &Signature::from_bytes(&sig)).is_err() {
            return Err(EnvelopeError::BadSignature(author));
        }
        Ok(Envelope {
            id: message_id(protected, payload),
            header,
            header_bytes,
            body,
            personal: personal.map(|p| p.into_vec()),
        })
    }

    /// The id that `bytes` would have if they verify, read without verifying anything: only
    /// the canonical layout `18([h'<38-byte protected>', {}, h'<payload>', h'<64-byte sig>'])`
    /// is recognised, so no allocation and no CBOR decoding happens. A relay uses it to answer a
    /// replay of a message it holds before paying for a signature check; `None` when the bytes
    /// do not have that layout (full verification then names the problem).
    pub fn peek_id(bytes: &[u8]) -> Option<MessageId> {
        let rest = bytes.strip_prefix(&[0xd2, 0x84])?;
        let (protected, rest) = take_bstr(rest)?;
        let rest = rest.strip_prefix(&[0xa0])?;
        let (payload, rest) = take_bstr(rest)?;
        let (sig, rest) = take_bstr(rest)?;
        (protected.len() == 38 && sig.len() == 64 && rest.is_empty()).then(|| message_id(protected, payload))
    }

    /// The message id.
    pub fn id(&self) -> MessageId {
        self.id
    }
    /// The signed header.
    pub fn header(&self) -> &Header {
        &self.header
    }
    /// The author.
    pub fn author(&self) -> NodeId {
        self.header.author
    }
    /// The header exactly as signed: the AEAD associated data.
    pub fn header_bytes(&self) -> &[u8] {
        &self.header_bytes
    }
    /// The sealed body.
    pub fn sealed_body(&self) -> &[u8] {
        &self.body
    }
    /// The sealed personal-data section, if any.
    pub fn sealed_personal(&self) -> Option<&[u8]> {
        self.personal.as_deref()
    }
}

/// A bounded cache of decompressed Ed25519 verifying keys, by NodeId.
#[derive(Debug, Default)]
pub struct KeyCache {
    keys: HashMap<NodeId, VerifyingKey>,
}

impl KeyCache {
    /// Most keys held; the cache is cleared when it would grow past this (simple and bounded:
    /// a network has a few hundred nodes).
    pub const CAPACITY: usize = 4096;

    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    fn get(&mut self, id: &NodeId) -> Result<VerifyingKey, EnvelopeError> {
        if let Some(k) = self.keys.get(id) {
            return Ok(*k);
        }
        let k = id.verifying_key().map_err(EnvelopeError::AuthorKey)?;
        if self.keys.len() >= Self::CAPACITY {
            self.keys.clear();
        }
        self.keys.insert(*id, k);
        Ok(k)
    }
}

/// Signs a header and ciphertexts into envelope bytes; returns them with the message id.
pub(crate) fn sign(
    key: &IdentityKey,
    header_bytes: Vec<u8>,
    body: Vec<u8>,
    personal: Option<Vec<u8>>,
) -> (Vec<u8>, MessageId) {
    let payload = codec::to_vec(&Payload(header_bytes, body, personal.map(serde_bytes::ByteBuf::from)));
    let protected_header = HeaderBuilder::new()
        .algorithm(iana::Algorithm::EdDSA)
        .key_id(key.node_id().as_bytes().to_vec())
        .build();
    let cose = CoseSign1Builder::new()
        .protected(protected_header)
        .payload(payload)
        .create_signature(&[], |tbs| key.sign(tbs).to_vec())
        .build();
    let protected = protected_bytes(&key.node_id());
    let id = message_id(&protected, cose.payload.as_deref().unwrap_or_default());
    // Invariant: a CoseSign1 built from valid parts always serialises.
    let bytes = cose.to_tagged_vec().expect("COSE_Sign1 serialises");
    (bytes, id)
}

/// The canonical protected header for `kid`.
fn protected_bytes(kid: &NodeId) -> Vec<u8> {
    [PROTECTED_PREFIX.as_slice(), kid.as_bytes()].concat()
}

/// Checks the protected header bytes and returns the kid.
fn check_protected(p: &[u8]) -> Result<[u8; 32], EnvelopeError> {
    if p.len() >= 3 && p[1..3] != [0x01, 0x27] {
        return Err(EnvelopeError::ProtectedHeader("alg is not EdDSA (-8)"));
    }
    if p.len() != 38 || p[..6] != PROTECTED_PREFIX {
        return Err(EnvelopeError::ProtectedHeader("expected exactly alg and a 32-byte kid"));
    }
    let mut kid = [0u8; 32];
    kid.copy_from_slice(&p[6..]);
    Ok(kid)
}

/// `SHA-256("godwit/v1 message-id\0" ‖ protected ‖ payload)`.
pub fn message_id(protected: &[u8], payload: &[u8]) -> MessageId {
    MessageId(
        Sha256::new()
            .chain_update(ID_CONTEXT)
            .chain_update(protected)
            .chain_update(payload)
            .finalize()
            .into(),
    )
}

/// The COSE Sig_structure `["Signature1", protected, h'', payload]`, the exact signed bytes.
pub fn sig_structure(protected: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(protected.len() + payload.len() + 24);
    out.push(0x84);
    out.push(0x6a);
    out.extend_from_slice(b"Signature1");
    bstr(&mut out, protected);
    out.push(0x40);
    bstr(&mut out, payload);
    out
}

/// The canonical tagged COSE_Sign1 bytes for these parts.
fn encode_cose(protected: &[u8], payload: &[u8], sig: &[u8; 64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(protected.len() + payload.len() + 80);
    out.extend_from_slice(&[0xd2, 0x84]);
    bstr(&mut out, protected);
    out.push(0xa0);
    bstr(&mut out, payload);
    bstr(&mut out, sig);
    out
}

/// Splits a CBOR byte string off the front of `b` (any definite length form: `peek_id` only
/// finds the id to look up; verification later insists on the canonical encoding).
fn take_bstr(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let (&first, rest) = b.split_first()?;
    let (len, rest) = match first {
        0x40..=0x57 => (usize::from(first - 0x40), rest),
        0x58 => (usize::from(*rest.first()?), rest.get(1..)?),
        0x59 => (usize::from(u16::from_be_bytes(rest.get(..2)?.try_into().ok()?)), rest.get(2..)?),
        0x5a => (usize::try_from(u32::from_be_bytes(rest.get(..4)?.try_into().ok()?)).ok()?, rest.get(4..)?),
        _ => return None,
    };
    (rest.len() >= len).then(|| rest.split_at(len))
}

/// Appends a CBOR byte string with its shortest-form length.
fn bstr(out: &mut Vec<u8>, b: &[u8]) {
    let n = b.len() as u64;
    match n {
        0..=23 => out.push(0x40 | n as u8),
        24..=0xff => out.extend_from_slice(&[0x58, n as u8]),
        0x100..=0xffff => {
            out.push(0x59);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(0x5a);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
        _ => {
            out.push(0x5b);
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
    out.extend_from_slice(b);
}

/// Low-level building blocks, without any checks: for tests, fuzzing and generating test
/// vectors (including deliberately broken ones). Production code uses
/// [`crate::message::seal`] and [`Envelope::verify`].
pub mod raw {
    use super::{Payload, bstr};
    use crate::codec::{self, CodecError};

    /// The canonical protected header for a kid: `{1: -8, 4: h'<kid>'}`.
    pub fn protected(kid: &[u8; 32]) -> Vec<u8> {
        [super::PROTECTED_PREFIX.as_slice(), kid].concat()
    }

    /// Tagged COSE_Sign1 bytes from raw parts; `unprotected` is inserted as given (CBOR map).
    pub fn assemble(
        protected: &[u8],
        unprotected: &[u8],
        payload: Option<&[u8]>,
        signature: &[u8],
    ) -> Vec<u8> {
        let mut out = vec![0xd2, 0x84];
        bstr(&mut out, protected);
        out.extend_from_slice(unprotected);
        match payload {
            Some(p) => bstr(&mut out, p),
            None => out.push(0xf6),
        }
        bstr(&mut out, signature);
        out
    }

    /// Encodes the payload array `[header, body, personal]`.
    pub fn encode_payload(header: &[u8], body: &[u8], personal: Option<&[u8]>) -> Vec<u8> {
        codec::to_vec(&Payload(header.to_vec(), body.to_vec(), personal.map(serde_bytes::ByteBuf::from)))
    }

    /// Decodes the payload array into (header, body, personal).
    ///
    /// # Errors
    /// The codec error.
    #[allow(clippy::type_complexity)]
    pub fn decode_payload(payload: &[u8]) -> Result<(Vec<u8>, Vec<u8>, Option<Vec<u8>>), CodecError> {
        let Payload(h, b, p) = codec::from_slice("envelope payload", payload)?;
        Ok((h, b, p.map(|p| p.into_vec())))
    }

    /// Splits canonical envelope bytes into (protected, payload, signature), as a relay sees them.
    pub fn split(bytes: &[u8]) -> Option<(Vec<u8>, Vec<u8>, Vec<u8>)> {
        use coset::TaggedCborSerializable;
        let c = coset::CoseSign1::from_tagged_slice(bytes).ok()?;
        Some((c.protected.original_data?, c.payload?, c.signature))
    }
}

#[cfg(test)]
mod tests;

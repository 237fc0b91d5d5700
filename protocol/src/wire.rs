//! Transport frames: what two connected nodes say to each other, inside length-prefixed frames
//! (see [`crate::frame`]) on their QUIC streams.
//!
//! Envelopes travel inside [`Frame::Msg`] with a hop count that is deliberately *outside* the
//! signature: relays increment it. Everything else is link control: hello, acknowledgements,
//! typed refusals, reachability announcements and catch-up requests.

use serde::{Deserialize, Serialize};

use crate::codec::{self, CodecError, bounded};
use crate::identity::NodeId;
use crate::ids::{FeedId, MessageId};
use crate::limits::MAX_RECIPIENTS;

/// Most hops a message may travel (author → hub → hub → member is 3).
pub const MAX_HOPS: u8 = 8;
/// Most ids in one acknowledgement frame.
pub const MAX_ACK_IDS: usize = 1024;
/// Most feed heads in one frame.
pub const MAX_HEADS: usize = 4096;

/// A frame on a link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Frame {
    /// First frame each side sends.
    Hello(Hello),
    /// A signed envelope, relayed.
    Msg(Msg),
    /// These messages are stored durably (or were already held): stop resending them.
    Ack(#[serde(deserialize_with = "bounded::vec::<_, _, MAX_ACK_IDS>")] Vec<MessageId>),
    /// A message was refused, with the reason.
    Reject(Reject),
    /// The sender can deliver to these nodes (only hubs announce others than themselves).
    Reach(#[serde(deserialize_with = "bounded::vec::<_, _, MAX_RECIPIENTS>")] Vec<NodeId>),
    /// Feed heads the sender holds: the receiver sends what lies above them, or takes them as
    /// its own heads when recovering.
    Heads(#[serde(deserialize_with = "bounded::vec::<_, _, MAX_HEADS>")] Vec<FeedHead>),
    /// Please send messages `from..=to` of this feed.
    Want(Want),
    /// The network CA's revocation list as the sender holds it (DER). The newest valid list wins.
    Crl(#[serde(with = "serde_bytes")] Vec<u8>),
    /// Between hubs: certificates (DER) of members the sender serves. A hub's `reach` is believed
    /// only for members whose certificate, checked against the network CA, names the sending
    /// hub's region.
    Vouch(#[serde(deserialize_with = "bounded::vec::<_, _, MAX_RECIPIENTS>")] Vec<serde_bytes::ByteBuf>),
    /// Witnessing of audit logs (checkpoints, proofs, cosignatures).
    Audit(AuditFrame),
}

/// Witnessing between peers: a node shows its checkpoints, its peers cosign those consistent
/// with what they cosigned before and pass them on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditFrame {
    /// A checkpoint of the sender's own log (C2SP signed note), with a consistency proof from
    /// `from`, the size the receiver last cosigned as far as the sender knows (0: none).
    Checkpoint {
        /// The signed note.
        note: String,
        /// The older size the proof starts from.
        from: u64,
        /// The proof's hashes.
        #[serde(deserialize_with = "bounded::vec::<_, _, { crate::audit::merkle::MAX_PROOF }>")]
        proof: Vec<serde_bytes::ByteBuf>,
    },
    /// Please prove that sizes `from` and `to` of your log are one history.
    Prove {
        /// The log's origin line.
        origin: String,
        /// The smaller size.
        from: u64,
        /// The larger size.
        to: u64,
    },
    /// The answer to [`AuditFrame::Prove`].
    Proof {
        /// The log's origin line.
        origin: String,
        /// The smaller size.
        from: u64,
        /// The larger size.
        to: u64,
        /// The proof's hashes.
        #[serde(deserialize_with = "bounded::vec::<_, _, { crate::audit::merkle::MAX_PROOF }>")]
        proof: Vec<serde_bytes::ByteBuf>,
    },
    /// The sender cosigned the receiver's checkpoint of `size`: the signature line.
    Cosigned {
        /// The log's origin line.
        origin: String,
        /// The checkpoint's size.
        size: u64,
        /// The C2SP cosignature line.
        line: String,
    },
    /// A checkpoint of a third node's log that the sender cosigned, passed on (note text with
    /// the log's signature and the sender's cosignature).
    Witnessed {
        /// The signed note.
        note: String,
    },
}

/// The opening frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hello {
    /// Link protocol version, 1.
    pub v: u16,
    /// The sender was restored from a backup and must learn its own feed heads before it
    /// authors anything.
    pub recovering: bool,
}

/// A relayed envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Msg {
    /// The envelope bytes, exactly as signed.
    #[serde(with = "serde_bytes")]
    pub env: Vec<u8>,
    /// Hops travelled so far (0 from the author).
    pub hop: u8,
}

/// Why a message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RejectReason {
    /// The frame could not be decoded (malformed, too deep, not deterministic).
    Malformed,
    /// The envelope failed verification (structure or signature).
    Invalid,
    /// Already held; treat as acknowledged.
    Duplicate,
    /// Past its expiry.
    Expired,
    /// The author may not publish in this feed (not a member of the channel).
    NotAuthorized,
    /// The author equivocated: another message holds this place in the feed.
    Fork,
    /// The feed is frozen after a fork.
    FeedFrozen,
    /// Too many hops.
    HopLimit,
    /// The peer is sending faster than its allowed rate.
    RateLimited,
    /// The frame exceeds the size limit.
    Oversize,
    /// Nothing to do with this message here (no route, unknown channel).
    Unroutable,
    /// The peer speaks a link protocol version this node does not (the link is closed).
    UnsupportedVersion,
    /// A frame the link does not allow yet: before its `hello`, a peer may send only `reach`,
    /// `hello` and `crl`. Not final: a message refused so is sent again later.
    TooEarly,
    /// The author has used up the storage this node gives one author (bytes stored per day);
    /// the sender stops offering it here.
    OverQuota,
    /// This node's store has reached its configured size: nothing new is stored until space is
    /// freed. Not final: send again later.
    StorageFull,
}

impl RejectReason {
    /// Whether the sender should count the message as delivered to this peer (it will never be
    /// accepted, or it already is).
    pub fn is_final(self) -> bool {
        !matches!(self, RejectReason::RateLimited | RejectReason::TooEarly | RejectReason::StorageFull)
    }

    /// Its code, as on the wire and in `docs/protocol.md` §10 (e.g. `too_early`).
    pub fn code(self) -> &'static str {
        match self {
            RejectReason::Malformed => "malformed",
            RejectReason::Invalid => "invalid",
            RejectReason::Duplicate => "duplicate",
            RejectReason::Expired => "expired",
            RejectReason::NotAuthorized => "not_authorized",
            RejectReason::Fork => "fork",
            RejectReason::FeedFrozen => "feed_frozen",
            RejectReason::HopLimit => "hop_limit",
            RejectReason::RateLimited => "rate_limited",
            RejectReason::Oversize => "oversize",
            RejectReason::Unroutable => "unroutable",
            RejectReason::UnsupportedVersion => "unsupported_version",
            RejectReason::TooEarly => "too_early",
            RejectReason::OverQuota => "over_quota",
            RejectReason::StorageFull => "storage_full",
        }
    }
}

/// A refusal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reject {
    /// The refused message, when its id could be computed.
    pub id: Option<MessageId>,
    /// Human-readable detail for the operator's log (no message content).
    pub detail: String,
    /// Why.
    pub reason: RejectReason,
}

/// The head of one feed as the sender holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedHead {
    /// Highest sequence number held (there may be gaps below it).
    pub seq: u64,
    /// The feed.
    pub feed: FeedId,
    /// Its author.
    pub author: NodeId,
}

/// A request for part of a feed: `from..=to`. It is answered with at most one window of
/// messages (the requester asks again for the rest), within the answer budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Want {
    /// Last sequence number wanted.
    pub to: u64,
    /// The feed.
    pub feed: FeedId,
    /// First sequence number wanted.
    pub from: u64,
    /// Its author.
    pub author: NodeId,
}

/// Encodes `Frame::Msg` from a borrowed envelope, without copying it into a `Frame` first (the
/// relay sends one stored envelope to many peers). Byte-identical to `Frame::Msg(..).encode()`.
pub fn encode_msg(env: &[u8], hop: u8) -> Vec<u8> {
    #[derive(Serialize)]
    #[serde(rename_all = "snake_case")]
    enum FrameRef<'a> {
        Msg(MsgRef<'a>),
    }
    #[derive(Serialize)]
    struct MsgRef<'a> {
        #[serde(with = "serde_bytes")]
        env: &'a [u8],
        hop: u8,
    }
    // Sized for the envelope and the frame's few bytes of CBOR around it: one allocation.
    codec::to_vec_sized(&FrameRef::Msg(MsgRef { env, hop }), env.len() + 32)
}

impl Frame {
    /// Encodes as deterministic CBOR (the frame body, without the length prefix).
    pub fn encode(&self) -> Vec<u8> {
        codec::to_vec(self)
    }

    /// Decodes a frame body strictly.
    ///
    /// # Errors
    /// [`CodecError`] naming the problem.
    pub fn decode(bytes: &[u8]) -> Result<Frame, CodecError> {
        codec::from_slice("link frame", bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_codes_are_the_wire_names() {
        use RejectReason::*;
        for r in [
            Malformed,
            Invalid,
            Duplicate,
            Expired,
            NotAuthorized,
            Fork,
            FeedFrozen,
            HopLimit,
            RateLimited,
            Oversize,
            Unroutable,
            UnsupportedVersion,
            TooEarly,
            OverQuota,
            StorageFull,
        ] {
            let wire: String = ciborium::from_reader(&codec::to_vec(&r)[..]).unwrap();
            assert_eq!(r.code(), wire);
        }
    }

    #[test]
    fn frames_round_trip() {
        let id = crate::identity::IdentityKey::from_seed(&[1; 32]).node_id();
        let frames = vec![
            Frame::Hello(Hello { v: 1, recovering: true }),
            Frame::Msg(Msg { env: vec![1, 2, 3], hop: 2 }),
            Frame::Ack(vec![MessageId([3; 32])]),
            Frame::Reject(Reject { id: None, detail: "bad signature".into(), reason: RejectReason::Invalid }),
            Frame::Reach(vec![id]),
            Frame::Heads(vec![FeedHead { seq: 4, feed: FeedId([5; 32]), author: id }]),
            Frame::Want(Want { to: 9, feed: FeedId([5; 32]), from: 7, author: id }),
            Frame::Crl(vec![0x30, 0x00]),
            Frame::Vouch(vec![serde_bytes::ByteBuf::from(vec![0x30, 0x00])]),
        ];
        for f in frames {
            assert_eq!(Frame::decode(&f.encode()).unwrap(), f);
            let v: ciborium::Value = codec::from_slice("f", &f.encode()).unwrap();
            crate::content::tests::assert_canonical(&v, "frame");
        }
    }

    #[test]
    fn refuses_oversized_ack_lists_while_reading() {
        let mut bytes = vec![0xa1, 0x63, b'a', b'c', b'k', 0x9a, 0x00, 0x10, 0x00, 0x00];
        bytes.extend_from_slice(&[0x58, 0x20]);
        let e = Frame::decode(&bytes).unwrap_err();
        assert!(e.to_string().contains("exceeds the limit of 1024"), "{e}");
    }

    #[test]
    fn borrowed_msg_encoding_is_identical() {
        let env = vec![9u8; 300];
        assert_eq!(encode_msg(&env, 3), Frame::Msg(Msg { env: env.clone(), hop: 3 }).encode());
    }

    #[test]
    fn only_rate_limiting_is_retryable() {
        assert!(!RejectReason::RateLimited.is_final());
        assert!(RejectReason::Duplicate.is_final() && RejectReason::Invalid.is_final());
    }
}

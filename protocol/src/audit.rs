//! The audit journal's events: one per state change, written in the same durable batch as the
//! change it records, never carrying message bodies, personal data or keys. (The Merkle log and
//! its checkpoints build on these entries.)

pub mod merkle;
pub mod note;
pub mod witness;

use serde::{Deserialize, Serialize};

use crate::identity::NodeId;
use crate::ids::{FeedId, MessageId};
use crate::wire::RejectReason;

/// An audit event, written in the same batch as the state change it records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// A message authored here.
    Authored {
        /// Its id.
        id: MessageId,
    },
    /// A message received from a peer and stored.
    Received {
        /// Its id.
        id: MessageId,
        /// The peer.
        from: NodeId,
    },
    /// Messages or frames from one peer refused for one reason, aggregated: one entry per
    /// link and reason (and at least once a minute), not one per refusal.
    Rejected {
        /// The peer that sent them.
        from: NodeId,
        /// Why.
        reason: RejectReason,
        /// How many.
        count: u64,
        /// The first refused message's id, when computable.
        first: Option<MessageId>,
        /// The last refused message's id, when computable.
        last: Option<MessageId>,
    },
    /// Messages a peer acknowledged (aggregated per acknowledgement).
    Relayed {
        /// The peer.
        to: NodeId,
        /// The ids.
        ids: Vec<MessageId>,
    },
    /// A message delivered into this node's inbox.
    Delivered {
        /// Its id.
        id: MessageId,
    },
    /// An author equivocated; the feed is frozen.
    Fork {
        /// The author.
        author: NodeId,
        /// The contested seq.
        seq: u64,
        /// The id held.
        existing: MessageId,
        /// The other id.
        conflicting: MessageId,
    },
    /// A gap in a feed that peers have been asked to fill.
    Gap {
        /// The author.
        author: NodeId,
        /// The feed.
        feed: FeedId,
        /// First missing seq.
        from: u64,
        /// Last missing seq.
        to: u64,
    },
    /// A link to a peer came up.
    Connected {
        /// The peer.
        peer: NodeId,
    },
    /// A link to a peer went down.
    Disconnected {
        /// The peer.
        peer: NodeId,
        /// Why, as the transport or this node said it (at most 200 characters; absent in entries
        /// of older versions).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        reason: String,
    },
    /// The envelopes of expired messages were dropped (their ids stay known).
    Pruned {
        /// How many.
        count: u64,
    },
    /// What was left of long-expired messages (ids, feed places, log positions) was removed.
    Forgotten {
        /// How many.
        count: u64,
    },
    /// This node's own feed heads were learned from a peer after a restore.
    Recovered {
        /// The peer that told us.
        from: NodeId,
        /// Feeds whose head moved.
        feeds: u64,
    },
    /// An operator's request through the admin socket changed something.
    Admin {
        /// The caller's OS user id (`SO_PEERCRED`; `u32::MAX` if unknown).
        uid: u32,
        /// What was asked, e.g. `peers add <NodeId> <address>`.
        action: String,
    },
    /// A message whose stored envelope was found damaged was fetched again from a peer, checked
    /// against its id and stored anew.
    Repaired {
        /// Its id.
        id: MessageId,
        /// The peer it came from.
        from: NodeId,
    },
    /// A new generation of this node's audit log starts after the operator repaired a damaged
    /// one: its first entry, naming the old generation's last good checkpoint.
    Generation {
        /// The generation that ended.
        previous: u64,
        /// The size of its last good checkpoint.
        size: u64,
        /// That checkpoint, as signed (note text; empty if it had none).
        checkpoint: String,
    },
    /// Something the node's operation depends on was loaded or changed: its configuration at
    /// start, a revocation list, a node card, a key.
    Loaded {
        /// What: `configuration`, `revocation list`, `node card`, `encryption key`.
        what: String,
        /// Which, in words (never a secret).
        detail: String,
    },
    /// A peer's audit log misbehaved: the checkpoint held and the one presented, both signed by
    /// that log, kept as evidence.
    AuditAlarm {
        /// The log's node.
        node: NodeId,
        /// What was seen.
        kind: witness::AlarmKind,
        /// Sizes and roots, in words.
        detail: String,
        /// The checkpoint held (note text).
        held: String,
        /// The checkpoint presented (note text).
        presented: String,
    },
    /// A channel state became its channel's head here: membership and rights changed.
    ChannelState {
        /// The channel.
        channel: crate::ids::ChannelId,
        /// Its epoch now.
        epoch: u64,
    },
}

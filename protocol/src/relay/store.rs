//! What the relay needs from storage, as a trait, and an in-memory implementation for the
//! simulator and tests. The node implements the same trait on sled.
//!
//! Every mutating call is one atomic state change *with* its audit event: implementations write
//! both in the same batch, so there is no event without its change and no change without its
//! event. Durability is separate: the relay asks for a commit ([`super::Output::Commit`]) and
//! only acknowledges what was written before the commit completed.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::audit::Event;
use crate::envelope::Priority;
use crate::identity::NodeId;
use crate::ids::{ChannelId, FeedId, MessageId};
use crate::time::Timestamp;

/// Where a stored message came from and where it may go, kept beside the envelope so routing
/// never re-parses it. Fields in deterministic-CBOR key order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MsgMeta {
    /// Hop count on arrival (0 when authored here).
    pub hop: u8,
    /// Sequence number in its feed.
    pub seq: u64,
    /// Its feed id.
    pub feed: FeedId,
    /// The peer it came from (`None` when authored here).
    pub from: Option<NodeId>,
    /// Position in this node's log: the order of acceptance here.
    pub local: u64,
    /// The author.
    pub author: NodeId,
    /// The channel, for channel messages.
    pub channel: Option<ChannelId>,
    /// Expiry.
    pub expires: Timestamp,
    /// Urgency.
    pub priority: Priority,
    /// Named recipients, for direct messages.
    pub recipients: Vec<NodeId>,
}

/// The head of a feed as stored: the highest contiguous seq, its id, the highest seq held at
/// all (above `seq` there are gaps), and whether a fork froze the feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadRec {
    /// Id at `seq`.
    pub id: Option<MessageId>,
    /// Highest contiguous seq held (0: none).
    pub seq: u64,
    /// Highest seq held at all.
    pub top: u64,
    /// Frozen after a fork.
    pub frozen: bool,
}

/// One feed slot as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlotRec {
    /// The message at this seq.
    pub id: MessageId,
    /// Its `prev`.
    pub prev: Option<MessageId>,
}

/// A message to store, with everything written in the same batch.
#[derive(Debug, Clone)]
pub struct Insert<'a> {
    /// Its id.
    pub id: MessageId,
    /// The envelope bytes.
    pub env: &'a [u8],
    /// Routing metadata (its `local` field is assigned by the store).
    pub meta: MsgMeta,
    /// Its feed slot.
    pub slot: SlotRec,
    /// The feed head after inserting it.
    pub head: HeadRec,
    /// Whether it goes into this node's inbox.
    pub inbox: bool,
    /// The audit events.
    pub events: Vec<Event>,
}

/// Storage as the relay sees it.
pub trait Store {
    /// The storage error.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Metadata of a held message.
    fn meta(&self, id: &MessageId) -> Result<Option<MsgMeta>, Self::Error>;
    /// Envelope bytes of a held message.
    fn envelope(&self, id: &MessageId) -> Result<Option<Vec<u8>>, Self::Error>;
    /// The slot at `seq` of a feed.
    fn slot(&self, author: &NodeId, feed: &FeedId, seq: u64) -> Result<Option<SlotRec>, Self::Error>;
    /// A feed's head.
    fn head(&self, author: &NodeId, feed: &FeedId) -> Result<Option<HeadRec>, Self::Error>;
    /// Heads of every feed of `author`.
    fn heads_of(&self, author: &NodeId) -> Result<Vec<(FeedId, HeadRec)>, Self::Error>;
    /// Stores a message, its slot, head, log position, inbox entry and events atomically;
    /// returns its log position.
    fn insert(&mut self, ins: Insert<'_>) -> Result<u64, Self::Error>;
    /// Sets a feed head (e.g. learned while recovering, or frozen by a fork) with its event.
    fn set_head(
        &mut self,
        author: &NodeId,
        feed: &FeedId,
        head: HeadRec,
        event: Event,
    ) -> Result<(), Self::Error>;
    /// Up to `limit` log entries after position `after`, in order.
    fn log_after(&self, after: u64, limit: usize) -> Result<Vec<(u64, MessageId)>, Self::Error>;
    /// Up to `limit` log entries of flash messages after position `after`, in order: what a
    /// returning peer is sent before its routine backlog.
    fn flash_after(&self, after: u64, limit: usize) -> Result<Vec<(u64, MessageId)>, Self::Error>;
    /// A peer's delivery cursor: every log entry at or below it is done for that peer.
    fn cursor(&self, peer: &NodeId) -> Result<u64, Self::Error>;
    /// Moves a peer's cursor, with its event.
    fn set_cursor(&mut self, peer: &NodeId, cursor: u64, event: Option<Event>) -> Result<(), Self::Error>;
    /// Records an event with no other state change.
    fn record(&mut self, event: Event) -> Result<(), Self::Error>;
    /// Inbox entries in order.
    fn inbox(&self) -> Result<Vec<MessageId>, Self::Error>;
}

/// An in-memory [`Store`] for tests and the simulator. Its "disk" is itself: a simulated crash
/// keeps exactly what was committed (see [`MemoryStore::committed_copy`]).
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    msgs: HashMap<MessageId, (Vec<u8>, MsgMeta)>,
    slots: HashMap<(NodeId, FeedId, u64), SlotRec>,
    heads: HashMap<(NodeId, FeedId), HeadRec>,
    log: BTreeMap<u64, MessageId>,
    flash: BTreeMap<u64, MessageId>,
    cursors: HashMap<NodeId, u64>,
    inbox: Vec<MessageId>,
    /// The audit journal, in order.
    pub journal: Vec<Event>,
}

/// The in-memory store never fails.
#[derive(Debug, thiserror::Error)]
#[error("in-memory store error")]
pub struct NoError;

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
    /// Number of messages held.
    pub fn len(&self) -> usize {
        self.msgs.len()
    }
    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.msgs.is_empty()
    }
    /// Every feed head held: author, feed, head.
    pub fn heads(&self) -> Vec<(NodeId, FeedId, HeadRec)> {
        let mut v: Vec<_> = self.heads.iter().map(|((a, f), h)| (*a, *f, *h)).collect();
        v.sort_by_key(|(a, f, _)| (*a, *f));
        v
    }
}

impl Store for MemoryStore {
    type Error = NoError;

    fn meta(&self, id: &MessageId) -> Result<Option<MsgMeta>, NoError> {
        Ok(self.msgs.get(id).map(|(_, m)| m.clone()))
    }
    fn envelope(&self, id: &MessageId) -> Result<Option<Vec<u8>>, NoError> {
        Ok(self.msgs.get(id).map(|(e, _)| e.clone()))
    }
    fn slot(&self, author: &NodeId, feed: &FeedId, seq: u64) -> Result<Option<SlotRec>, NoError> {
        Ok(self.slots.get(&(*author, *feed, seq)).copied())
    }
    fn head(&self, author: &NodeId, feed: &FeedId) -> Result<Option<HeadRec>, NoError> {
        Ok(self.heads.get(&(*author, *feed)).copied())
    }
    fn heads_of(&self, author: &NodeId) -> Result<Vec<(FeedId, HeadRec)>, NoError> {
        let mut v: Vec<_> =
            self.heads.iter().filter(|((a, _), _)| a == author).map(|((_, f), h)| (*f, *h)).collect();
        v.sort_by_key(|(f, _)| *f);
        Ok(v)
    }
    fn insert(&mut self, ins: Insert<'_>) -> Result<u64, NoError> {
        let local = self.log.keys().next_back().copied().unwrap_or(0) + 1;
        let mut meta = ins.meta;
        meta.local = local;
        let flash = meta.priority == Priority::Flash;
        self.slots.insert((meta.author, meta.feed, meta.seq), ins.slot);
        self.heads.insert((meta.author, meta.feed), ins.head);
        self.msgs.insert(ins.id, (ins.env.to_vec(), meta));
        self.log.insert(local, ins.id);
        if flash {
            self.flash.insert(local, ins.id);
        }
        if ins.inbox {
            self.inbox.push(ins.id);
        }
        self.journal.extend(ins.events);
        Ok(local)
    }
    fn set_head(
        &mut self,
        author: &NodeId,
        feed: &FeedId,
        head: HeadRec,
        event: Event,
    ) -> Result<(), NoError> {
        self.heads.insert((*author, *feed), head);
        self.journal.push(event);
        Ok(())
    }
    fn log_after(&self, after: u64, limit: usize) -> Result<Vec<(u64, MessageId)>, NoError> {
        Ok(self.log.range(after + 1..).take(limit).map(|(k, v)| (*k, *v)).collect())
    }
    fn flash_after(&self, after: u64, limit: usize) -> Result<Vec<(u64, MessageId)>, NoError> {
        Ok(self.flash.range(after + 1..).take(limit).map(|(k, v)| (*k, *v)).collect())
    }
    fn cursor(&self, peer: &NodeId) -> Result<u64, NoError> {
        Ok(self.cursors.get(peer).copied().unwrap_or(0))
    }
    fn set_cursor(&mut self, peer: &NodeId, cursor: u64, event: Option<Event>) -> Result<(), NoError> {
        self.cursors.insert(*peer, cursor);
        self.journal.extend(event);
        Ok(())
    }
    fn record(&mut self, event: Event) -> Result<(), NoError> {
        self.journal.push(event);
        Ok(())
    }
    fn inbox(&self) -> Result<Vec<MessageId>, NoError> {
        Ok(self.inbox.clone())
    }
}

impl MemoryStore {
    /// A copy of the store, standing for what survives a crash after the last commit.
    pub fn committed_copy(&self) -> MemoryStore {
        self.clone()
    }
}

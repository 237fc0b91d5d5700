//! What the relay needs from storage, as a trait, and an in-memory implementation for the
//! simulator and tests. The node implements the same trait on sled.
//!
//! Reads see what was committed; writes arrive as one [`Batch`] per group commit, every state
//! change *with* its audit events, applied atomically: there is no event without its change and
//! no change without its event. The relay hands the batch out as [`super::Output::Commit`] and
//! acknowledges what it holds only once the shell reports it committed.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::audit::Event;
use crate::envelope::Priority;
use crate::identity::NodeId;
use crate::ids::{ChannelId, FeedId, MessageId};
use crate::time::Timestamp;

pub use crate::feed::{HeadRec, SlotRec};

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
    /// The epoch of a channel message (0 for direct messages).
    pub epoch: u64,
    /// Position in this node's log: the order of acceptance here.
    pub local: u64,
    /// The author.
    pub author: NodeId,
    /// The channel, for channel messages.
    pub channel: Option<ChannelId>,
    /// Whether it is a control message (for every node).
    pub control: bool,
    /// Expiry.
    pub expires: Timestamp,
    /// Urgency.
    pub priority: Priority,
    /// Named recipients, for direct messages.
    pub recipients: Vec<NodeId>,
}

/// One state change in a [`Batch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// A message: its envelope, metadata (with its log position), feed slot, flash index entry
    /// (for flash messages) and inbox entry.
    Message {
        /// Its id.
        id: MessageId,
        /// The envelope bytes (shared with the relay's hot state).
        env: Arc<[u8]>,
        /// Routing metadata; `local` is its log position, assigned by the relay.
        meta: MsgMeta,
        /// Its feed slot.
        slot: SlotRec,
        /// Whether it goes into this node's inbox.
        inbox: bool,
    },
    /// A feed head.
    Head {
        /// The author.
        author: NodeId,
        /// The feed.
        feed: FeedId,
        /// The head.
        head: HeadRec,
    },
    /// A peer's delivery cursor: every log entry at or below it is done for that peer.
    Cursor {
        /// The peer.
        peer: NodeId,
        /// The cursor.
        cursor: u64,
    },
    /// Evidence of a fork, kept beside the journal's `Fork` event: the envelope that conflicts
    /// with what the feed holds (the held one stays in the store).
    Evidence {
        /// The author.
        author: NodeId,
        /// The feed.
        feed: FeedId,
        /// The contested seq.
        seq: u64,
        /// The id held there.
        existing: MessageId,
        /// The conflicting envelope, as received.
        env: Arc<[u8]>,
    },
    /// An expired message leaves the expiry index; with `envelope`, its envelope bytes are
    /// dropped too (metadata, feed slot and log position stay, so its id is still known and
    /// catch-up steps over it).
    Prune {
        /// Its id.
        id: MessageId,
        /// Its expiry (the index key).
        expires: Timestamp,
        /// Its log position (the index key).
        local: u64,
        /// Whether its envelope is dropped (not for the top message of a feed, which a restored
        /// author needs to learn where its feed stands).
        envelope: bool,
    },
    /// What this node knows of a peer it has been connected to: its role and administration
    /// (from its certificate) and when the link last came up.
    Peer {
        /// The peer.
        peer: NodeId,
        /// Its role.
        role: crate::identity::Role,
        /// Its administration.
        administration: String,
        /// When its link last came up.
        at: Timestamp,
        /// Its certificate (DER), as it presented it: a hub vouches with it for the members it
        /// serves.
        cert: Vec<u8>,
    },
    /// What is left of a long-expired, pruned message is removed: its metadata, feed slot, log
    /// and flash-index entries (`place`: author, feed, seq, flash), or with `place` `None` only
    /// its entry in the index of pruned messages (it is still its feed's top).
    Forget {
        /// Its id.
        id: MessageId,
        /// Its expiry (the index key).
        expires: Timestamp,
        /// Its log position (the index key).
        local: u64,
        /// Where it sits.
        place: Option<(NodeId, FeedId, u64, bool)>,
    },
    /// A peer the operator added (`address` its `ip:port`) or removed (`None`): dialled from the
    /// next start too, beside the configuration file's.
    Dial {
        /// The peer.
        node: NodeId,
        /// Where to dial it, or `None` once removed.
        address: Option<String>,
    },
    /// A node the operator blocked (refused until unblocked), or unblocked.
    Block {
        /// The node.
        node: NodeId,
        /// Whether it is blocked.
        blocked: bool,
    },
    /// An operator marked a message of the inbox read or actioned (replacing an earlier mark).
    Mark {
        /// The message.
        id: MessageId,
        /// The mark.
        mark: Mark,
    },
    /// What the shell keeps of a seizure report, correction or retraction this node authored
    /// (opaque to the relay; the node keeps the envelope and the body it sealed, never the
    /// personal section): a direct message's author cannot open it again, an envelope is
    /// dropped when it expires, and the node reports its own seizures (the CITES annual illegal
    /// trade report).
    Own {
        /// The message.
        id: MessageId,
        /// The record.
        record: Vec<u8>,
    },
    /// A node card, checked by the shell, as the directory entry of `node` (replacing the one
    /// before).
    Card {
        /// The node.
        node: NodeId,
        /// The signed card (a control record).
        record: Vec<u8>,
    },
    /// A channel state this node took (or holds until its predecessor arrives), at its log
    /// position `local`, with the time this node took it: replayed in order at start.
    ChannelState {
        /// The control message's log position.
        local: u64,
        /// When this node took it (its own clock).
        at: Timestamp,
        /// The signed state (a control record).
        record: Vec<u8>,
    },
    /// The envelope of a held message whose stored copy was damaged, fetched again and checked
    /// against its id: it replaces the damaged copy.
    Repair {
        /// Its id.
        id: MessageId,
        /// The envelope bytes.
        env: Arc<[u8]>,
    },
    /// An audit event, appended to the journal in order.
    Event(Event),
}

/// How far an operator got with a message of the inbox: read, or actioned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mark {
    /// `Read` or `Actioned` (`Delivered` is every inbox message's state before a mark).
    pub status: crate::content::ReceiptStatus,
    /// When the operator said so.
    pub at: Timestamp,
    /// The operator's OS uid (`u32::MAX` when unknown).
    pub uid: u32,
    /// The operator's note, e.g. what was done.
    pub note: Option<String>,
    /// An operator purged the message's personal-data section here: it is never opened again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub purged: bool,
}

/// Every state change of one group commit, in order, with its journal entries: the store
/// applies it atomically (all or nothing) and, when [`Batch::sync`] is set, makes it durable
/// before the relay is told it was committed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    /// The changes, in order.
    pub writes: Vec<Write>,
    /// Whether acknowledgements or publications wait on it: then it must reach stable storage
    /// (flush and fsync) before [`super::Relay::handle_committed`]. Without it (cursor moves
    /// and refusal tallies only), losing it in a crash costs resends, nothing else.
    pub sync: bool,
}

impl Batch {
    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }
}

/// Storage as the relay sees it: reads of what was committed, and one atomic write per group
/// commit. What is not committed yet the relay holds in memory and serves itself.
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
    /// Up to `limit` log entries after position `after`, in order.
    fn log_after(&self, after: u64, limit: usize) -> Result<Vec<(u64, MessageId)>, Self::Error>;
    /// Up to `limit` log entries of flash messages after position `after`, in order: what a
    /// returning peer is sent before its routine backlog.
    fn flash_after(&self, after: u64, limit: usize) -> Result<Vec<(u64, MessageId)>, Self::Error>;
    /// The last log position written (0: none).
    fn log_last(&self) -> Result<u64, Self::Error>;
    /// A peer's delivery cursor.
    fn cursor(&self, peer: &NodeId) -> Result<u64, Self::Error>;
    /// Inbox entries in order.
    fn inbox(&self) -> Result<Vec<MessageId>, Self::Error>;
    /// Up to `limit` messages expired at `now` and not yet pruned, oldest expiry first (messages
    /// delivered into this node's inbox are not indexed: they are the operator's).
    fn expired(&self, now: Timestamp, limit: usize) -> Result<Vec<(Timestamp, u64, MessageId)>, Self::Error>;
    /// Up to `limit` pruned messages that expired before `before`, oldest expiry first: what
    /// is left of them may be removed.
    fn forgettable(
        &self,
        before: Timestamp,
        limit: usize,
    ) -> Result<Vec<(Timestamp, u64, MessageId)>, Self::Error>;
    /// The channel states taken, in the order taken: when, and the signed record.
    fn channel_states(&self) -> Result<Vec<(Timestamp, Vec<u8>)>, Self::Error>;
    /// Applies a batch atomically: after a crash either all of it is there or none of it.
    /// Durability is the shell's next step (see [`Batch::sync`]).
    fn write(&mut self, batch: &Batch) -> Result<(), Self::Error>;
}

/// Fork evidence as the in-memory store keeps it: the id held and the conflicting envelope.
pub type Evidence = (MessageId, Arc<[u8]>);

/// An in-memory [`Store`] for tests and the simulator. It holds only what was committed: the
/// relay keeps everything else in memory, so a simulated crash (dropping the relay, keeping the
/// store) loses exactly what a real one would.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    msgs: HashMap<MessageId, (Arc<[u8]>, MsgMeta)>,
    slots: HashMap<(NodeId, FeedId, u64), SlotRec>,
    heads: HashMap<(NodeId, FeedId), HeadRec>,
    log: BTreeMap<u64, MessageId>,
    flash: BTreeMap<u64, MessageId>,
    expiry: BTreeMap<(Timestamp, u64), MessageId>,
    pruned: BTreeMap<(Timestamp, u64), MessageId>,
    cursors: HashMap<NodeId, u64>,
    inbox: Vec<MessageId>,
    /// Peers this node has been connected to: role, administration, when last connected.
    pub peers: BTreeMap<NodeId, (crate::identity::Role, String, Timestamp)>,
    /// Their certificates.
    pub peer_certs: BTreeMap<NodeId, Vec<u8>>,
    /// The directory: each node's newest checked card.
    pub cards: BTreeMap<NodeId, Vec<u8>>,
    /// Peers the operator added, and nodes blocked.
    pub dials: BTreeMap<NodeId, String>,
    /// Nodes the operator blocked.
    pub blocked: std::collections::BTreeSet<NodeId>,
    /// Operators' marks on inbox messages.
    pub marks: BTreeMap<MessageId, Mark>,
    /// The records of this node's own reports ([`Write::Own`]).
    pub own: BTreeMap<MessageId, Vec<u8>>,
    /// Fork evidence: author, feed and seq → the id held and the conflicting envelope.
    pub evidence: BTreeMap<(NodeId, FeedId, u64), Evidence>,
    /// Channel states taken, by log position: when, and the record.
    pub channel_states: BTreeMap<u64, (Timestamp, Vec<u8>)>,
    /// The audit journal, in order.
    pub journal: Vec<Event>,
    /// Batches written.
    pub commits: u64,
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
        Ok(self.msgs.get(id).map(|(e, _)| e.to_vec()))
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
    fn log_after(&self, after: u64, limit: usize) -> Result<Vec<(u64, MessageId)>, NoError> {
        Ok(self.log.range(after + 1..).take(limit).map(|(k, v)| (*k, *v)).collect())
    }
    fn flash_after(&self, after: u64, limit: usize) -> Result<Vec<(u64, MessageId)>, NoError> {
        Ok(self.flash.range(after + 1..).take(limit).map(|(k, v)| (*k, *v)).collect())
    }
    fn log_last(&self) -> Result<u64, NoError> {
        Ok(self.log.keys().next_back().copied().unwrap_or(0))
    }
    fn cursor(&self, peer: &NodeId) -> Result<u64, NoError> {
        Ok(self.cursors.get(peer).copied().unwrap_or(0))
    }
    fn inbox(&self) -> Result<Vec<MessageId>, NoError> {
        Ok(self.inbox.clone())
    }
    fn expired(&self, now: Timestamp, limit: usize) -> Result<Vec<(Timestamp, u64, MessageId)>, NoError> {
        Ok(self
            .expiry
            .iter()
            .take_while(|((t, _), _)| *t <= now)
            .take(limit)
            .map(|((t, l), id)| (*t, *l, *id))
            .collect())
    }
    fn forgettable(
        &self,
        before: Timestamp,
        limit: usize,
    ) -> Result<Vec<(Timestamp, u64, MessageId)>, NoError> {
        Ok(self
            .pruned
            .iter()
            .take_while(|((t, _), _)| *t < before)
            .take(limit)
            .map(|((t, l), id)| (*t, *l, *id))
            .collect())
    }
    fn channel_states(&self) -> Result<Vec<(Timestamp, Vec<u8>)>, NoError> {
        Ok(self.channel_states.values().cloned().collect())
    }
    fn write(&mut self, batch: &Batch) -> Result<(), NoError> {
        self.commits += 1;
        for w in &batch.writes {
            match w {
                Write::Message { id, env, meta, slot, inbox } => {
                    self.slots.insert((meta.author, meta.feed, meta.seq), *slot);
                    self.log.insert(meta.local, *id);
                    if meta.priority == Priority::Flash {
                        self.flash.insert(meta.local, *id);
                    }
                    if *inbox {
                        self.inbox.push(*id);
                    } else {
                        self.expiry.insert((meta.expires, meta.local), *id);
                    }
                    self.msgs.insert(*id, (env.clone(), meta.clone()));
                }
                Write::Head { author, feed, head } => {
                    self.heads.insert((*author, *feed), *head);
                }
                Write::Cursor { peer, cursor } => {
                    self.cursors.insert(*peer, *cursor);
                }
                Write::Evidence { author, feed, seq, existing, env } => {
                    self.evidence.insert((*author, *feed, *seq), (*existing, env.clone()));
                }
                Write::Prune { id, expires, local, envelope } => {
                    self.expiry.remove(&(*expires, *local));
                    self.pruned.insert((*expires, *local), *id);
                    if *envelope {
                        if let Some((env, _)) = self.msgs.get_mut(id) {
                            *env = Arc::from(&[][..]);
                        }
                    }
                }
                Write::Peer { peer, role, administration, at, cert } => {
                    self.peers.insert(*peer, (*role, administration.clone(), *at));
                    self.peer_certs.insert(*peer, cert.clone());
                }
                Write::Forget { id, expires, local, place } => {
                    self.pruned.remove(&(*expires, *local));
                    if let Some((author, feed, seq, _)) = place {
                        self.msgs.remove(id);
                        self.slots.remove(&(*author, *feed, *seq));
                        self.log.remove(local);
                        self.flash.remove(local);
                    }
                }
                Write::Card { node, record } => {
                    self.cards.insert(*node, record.clone());
                }
                Write::ChannelState { local, at, record } => {
                    self.channel_states.insert(*local, (*at, record.clone()));
                }
                Write::Dial { node, address } => match address {
                    Some(a) => {
                        self.dials.insert(*node, a.clone());
                    }
                    None => {
                        self.dials.remove(node);
                    }
                },
                Write::Block { node, blocked } => {
                    if *blocked {
                        self.blocked.insert(*node);
                    } else {
                        self.blocked.remove(node);
                    }
                }
                Write::Mark { id, mark } => {
                    self.marks.insert(*id, mark.clone());
                }
                Write::Own { id, record } => {
                    self.own.insert(*id, record.clone());
                }
                Write::Repair { id, env } => {
                    if let Some((held, _)) = self.msgs.get_mut(id) {
                        *held = env.clone();
                    }
                }
                Write::Event(e) => self.journal.push(e.clone()),
            }
        }
        Ok(())
    }
}

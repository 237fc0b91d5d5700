//! The relay: validation, storage decisions, interest routing, per-peer delivery and catch-up,
//! as a sans-IO state machine.
//!
//! The node shell feeds it link events ([`Relay::connect`], [`Relay::disconnect`]), received
//! frames ([`Relay::handle_frame`]), timer ticks ([`Relay::handle_timeout`]) and local
//! publications ([`Relay::publish`]), and pulls [`Output`]s. Decisions read the hot state in
//! memory ([`hot`]); the [`Store`] is the durable copy. Every input adds its state changes, with
//! their journal entries, to one write batch; when the shell has drained every other output the
//! relay hands the batch out as [`Output::Commit`], and the shell applies it atomically, makes it
//! durable and calls [`Relay::handle_committed`]. Acknowledgements and publication replies are
//! released only then, and this node's own messages leave it only once committed, so a node
//! that loses power loses nothing it acknowledged and never reuses a sequence number. The same
//! code runs in the deterministic simulator ([`crate::sim`]).
//!
//! Delivery to a peer follows a *cursor* into this node's log (not a copy per peer): every log
//! entry at or below the cursor has been acknowledged by the peer or does not concern it. On
//! every (re)connect the peer's pump resumes from its cursor, oldest first, with at most
//! `window` messages in flight: that is the catch-up. Flash messages jump the queue.

mod delivery;
mod hot;
mod incoming;
mod link;
mod membership;
mod recovery;
mod store;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use self::link::{Budgets, Link, strike_weight};
pub use self::link::{Connection, keep_new};

use rand_core::CryptoRngCore;

pub use store::{Batch, Evidence, HeadRec, Mark, MemoryStore, MsgMeta, NoError, SlotRec, Store, Write};

pub use crate::audit::Event;
pub use crate::identity::Role;

use crate::content::{Body, PersonalData, Tlp};
use crate::envelope::{Envelope, EnvelopeError, Feed, KeyCache, Priority};
use crate::feed;
use crate::identity::{EncryptionPublicKey, IdentityKey, NodeId};
use crate::ids::{ChannelId, FeedId, MessageId};
use crate::message::{self, Audience, Draft, SealError};
use crate::time::Timestamp;
use crate::wire::{FeedHead, Frame, Hello, MAX_ACK_IDS, MAX_HOPS, Msg, Reject, RejectReason, Want};

/// The link protocol version this node speaks.
pub const LINK_VERSION: u16 = 1;

/// A channel as static configuration describes it, until channel state lands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelConfig {
    /// The channel.
    pub id: ChannelId,
    /// Its members; every member may publish.
    pub members: BTreeSet<NodeId>,
}

/// The relay's configuration.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// This node.
    pub me: NodeId,
    /// Its role.
    pub role: Role,
    /// Channels this node knows.
    pub channels: Vec<ChannelConfig>,
    /// For hubs: the members this hub serves (announced to peers as reachable through it).
    pub serves: BTreeSet<NodeId>,
    /// Most unacknowledged messages in flight per peer.
    pub window: usize,
    /// Messages a peer may send per second, sustained.
    pub rate_per_sec: u32,
    /// Burst allowance above the sustained rate.
    pub rate_burst: u32,
    /// Refusals (invalid or rate-limited messages) a peer may cause per minute before it is
    /// disconnected as abusive.
    pub abuse_limit: u32,
    /// Most envelope bytes in flight per peer (one message always fits).
    pub window_bytes: usize,
    /// Control frames (hello, reach, ack, reject, heads, crl) a peer may send per second,
    /// sustained, counted apart from its messages.
    pub control_per_sec: u32,
    /// Control frames above the sustained rate.
    pub control_burst: u32,
    /// Envelope bytes a peer may send per second, sustained.
    pub bytes_per_sec: u64,
    /// Envelope bytes a peer may send above the sustained rate.
    pub bytes_burst: u64,
    /// Bytes per second a peer may make this node send in answer to its requests (wants and
    /// recovery), sustained.
    pub answer_bytes_per_sec: u64,
    /// Answer bytes above the sustained rate.
    pub answer_bytes_burst: u64,
    /// Resend an unacknowledged message after this many milliseconds.
    pub resend_after_ms: u64,
    /// Start in recovering mode (restored from a backup).
    pub recovering: bool,
    /// The peers this node is configured to use (it dials them). Only their feed heads end
    /// recovery (anyone else's are taken only as a floor for this node's own sequence
    /// numbers), and a member believes reach announcements, and sends direct messages it has
    /// no route for, only to configured hubs.
    pub configured_peers: BTreeSet<NodeId>,
    /// Bytes of recent messages (envelopes and bookkeeping) kept in memory beside the store;
    /// what is not yet committed is always kept.
    pub tail_bytes: usize,
    /// Envelope bytes one author may add to this node's store per day, sustained (messages of
    /// authors this node does not know share one such budget).
    pub author_bytes_per_day: u64,
    /// Envelope bytes one author may add above the sustained rate.
    pub author_bytes_burst: u64,
    /// Envelope bytes the messages one peer passes on may add to this node's store per day,
    /// whoever authored them (a hub passes on many authors' messages: set it for that).
    pub peer_bytes_per_day: u64,
    /// Envelope bytes one peer's messages may add above the sustained rate.
    pub peer_bytes_burst: u64,
    /// How often expired messages are pruned (their envelopes dropped), in milliseconds.
    pub prune_every_ms: u64,
    /// How long after its expiry a pruned message's metadata (its id, feed slot and log
    /// position) is kept before it is removed too, in milliseconds. Until then a replay is
    /// recognised by its id before any signature is checked; after it, a replay is still
    /// refused as expired once verified.
    pub forget_after_ms: u64,
    /// How long after this node took a channel's newer epoch messages of the epoch before are
    /// still accepted, in milliseconds (by this node's clock, never the author's).
    pub epoch_grace_ms: u64,
}

impl RelayConfig {
    /// Defaults for a node `me` with `role`.
    pub fn new(me: NodeId, role: Role) -> Self {
        RelayConfig {
            me,
            role,
            channels: Vec::new(),
            serves: BTreeSet::new(),
            window: 256,
            rate_per_sec: 500,
            rate_burst: 2_000,
            abuse_limit: 100,
            window_bytes: 16 << 20,
            control_per_sec: 2_000,
            control_burst: 8_000,
            bytes_per_sec: 16 << 20,
            bytes_burst: 64 << 20,
            answer_bytes_per_sec: 4 << 20,
            answer_bytes_burst: 16 << 20,
            resend_after_ms: 30_000,
            recovering: false,
            configured_peers: BTreeSet::new(),
            tail_bytes: 64 << 20,
            author_bytes_per_day: 1 << 30,
            author_bytes_burst: 1 << 30,
            peer_bytes_per_day: 16 << 30,
            peer_bytes_burst: 16 << 30,
            prune_every_ms: 10_000,
            forget_after_ms: 7 * 86_400_000,
            epoch_grace_ms: 3_600_000,
        }
    }
}

/// Which stream a frame goes on: flash traffic never waits behind routine traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    /// Link control and flash messages.
    Urgent,
    /// Immediate-priority messages.
    Immediate,
    /// Routine messages.
    Routine,
}

impl Class {
    fn of(p: Priority) -> Class {
        match p {
            Priority::Flash => Class::Urgent,
            Priority::Immediate => Class::Immediate,
            Priority::Routine => Class::Routine,
        }
    }
}

/// What the relay asks the shell to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send an encoded frame to a peer on the stream of `class`.
    Send {
        /// The peer.
        peer: NodeId,
        /// The stream class.
        class: Class,
        /// The encoded frame body (the shell adds the length prefix).
        frame: Vec<u8>,
    },
    /// Close the connection to a peer.
    Close {
        /// The peer.
        peer: NodeId,
        /// Why, for the operator.
        reason: String,
        /// Whether the peer was abusive (the shell then refuses it for a while).
        abusive: bool,
    },
    /// Apply this batch to the store atomically — durably (flush and fsync) when its `sync` is
    /// set — then call [`Relay::handle_committed`]. Handed out only when every other output
    /// has been taken, so one commit covers all the inputs handled since the last.
    Commit(Batch),
    /// A message authored here is committed: its publication succeeded.
    Published(MessageId),
    /// A message was delivered into this node's inbox (reported once committed).
    Delivered(MessageId),
    /// A peer acknowledged messages (they are durably stored there).
    Acked {
        /// The peer.
        peer: NodeId,
        /// How many ids its acknowledgement named.
        count: usize,
    },
    /// A message from a peer was refused (log it at `warn`).
    Refused {
        /// The peer.
        peer: NodeId,
        /// The message, if its id is known.
        id: Option<MessageId>,
        /// Why.
        reason: RejectReason,
        /// Detail, without content.
        detail: String,
    },
    /// A feed has a gap that peers were asked to fill (show it to the operator).
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
    /// An author signed two messages for one place in a feed; the feed is frozen.
    Fork {
        /// The author.
        author: NodeId,
        /// The contested seq.
        seq: u64,
    },
    /// Recovery finished: own feed heads learned from `from`.
    Recovered {
        /// The peer.
        from: NodeId,
    },
    /// A peer's audit-log witnessing frame, for the shell's audit log and witness.
    Audit {
        /// The peer.
        from: NodeId,
        /// The frame.
        frame: crate::wire::AuditFrame,
    },
    /// A peer passed on a revocation list (DER); the shell checks it and installs it if newer.
    Crl {
        /// The peer.
        from: NodeId,
        /// The list.
        der: Vec<u8>,
    },
    /// A message whose stored envelope was damaged has been fetched again and stored anew
    /// (with the next commit).
    Repaired(MessageId),
    /// A control message was stored (received, or authored here): its record, checked by the
    /// relay (signature and kind), for the shell to act on (a node card goes into the
    /// directory once its certificate is checked).
    Control {
        /// The message's id.
        id: MessageId,
        /// The control record.
        record: Vec<u8>,
    },
    /// A channel state became the head of its channel here (stored with the next commit).
    ChannelHead {
        /// The channel.
        channel: ChannelId,
        /// Its epoch now.
        epoch: u64,
    },
    /// A hub peer vouched for members with their certificates (DER). The shell checks each
    /// against the network CA and its revocation list, keeps those of members (not hubs) whose
    /// region is the peer's own, and reports them with [`Relay::handle_vouched`].
    Vouch {
        /// The hub peer.
        peer: NodeId,
        /// The certificates.
        certs: Vec<Vec<u8>>,
    },
}

/// A relay failure: only storage can fail; network input never causes one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError<E: std::error::Error + 'static> {
    /// The store failed.
    #[error("storage: {0}")]
    Store(#[source] E),
}

/// Why a local publication failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError<E: std::error::Error + 'static> {
    /// The node is recovering its feed heads and must not author yet.
    #[error("this node is recovering after a restore: it learns its feed heads from peers before authoring")]
    Recovering,
    /// The store has reached its configured size.
    #[error(
        "the store is full (max_store_bytes reached, or the disk's free space below min_free_disk_bytes): free disk space or raise the limit in [limits]"
    )]
    StorageFull,
    /// The feed is frozen after a fork.
    #[error("the feed is frozen after a fork; an operator must resolve it")]
    Frozen,
    /// Sealing failed.
    #[error(transparent)]
    Seal(#[from] SealError),
    /// This node may not publish there (not a member with publish rights, a superseded epoch,
    /// a channel that ended).
    #[error("this node may not publish here: {0}")]
    NotPermitted(String),
    /// A channel state this node may not take.
    #[error(transparent)]
    Channel(#[from] crate::channel::StateError),
    /// The store failed.
    #[error("storage: {0}")]
    Store(#[source] E),
}

/// What to publish.
#[derive(Debug, Clone, Copy)]
pub struct Publication<'a> {
    /// The audience.
    pub audience: Audience<'a>,
    /// Urgency.
    pub priority: Priority,
    /// Handling marking.
    pub marking: Tlp,
    /// Lifetime in milliseconds.
    pub ttl_ms: u64,
    /// The content.
    pub body: &'a Body,
    /// Personal data and its named recipients.
    pub personal: Option<(&'a PersonalData, &'a [(NodeId, EncryptionPublicKey)])>,
}

/// The relay state machine. Performs no I/O and never reads the clock.
#[derive(Debug)]
pub struct Relay<S: Store> {
    cfg: RelayConfig,
    store: S,
    hot: hot::Hot,
    membership: membership::Membership,
    keys: KeyCache,
    /// Ordered maps throughout: the relay's outputs must not depend on hash order, or the
    /// simulator would not replay a seed exactly.
    peers: BTreeMap<NodeId, Link>,
    /// Verdicts waiting for the batch being built, and for the batch in commit.
    pending_acks: BTreeMap<NodeId, Vec<Verdict>>,
    releasable: BTreeMap<NodeId, Vec<Verdict>>,
    /// Messages authored into the batch being built, and into the batch in commit.
    authored: Vec<MessageId>,
    publishing: Vec<MessageId>,
    /// Messages delivered into the inbox by the batch being built, and by the batch in commit:
    /// reported only once committed.
    inboxed: Vec<MessageId>,
    delivering: Vec<MessageId>,
    /// Sequence numbers of this node's own feeds that peers reported while it was recovering:
    /// it never authors at or below them.
    own_floor: BTreeMap<FeedId, u64>,
    /// No flash message lies above this log position (`None` until the flash index was read
    /// once): spares the pump a look at the index when there is nothing flash to send.
    flash_top: Option<u64>,
    /// Storage budgets of the authors this node knows, and the one all others share.
    author_budgets: BTreeMap<NodeId, link::TokenBucket>,
    /// Storage budgets of the peers that pass messages on to this node (peers have
    /// certificates: the map is bounded by the network's size).
    peer_budgets: BTreeMap<NodeId, link::TokenBucket>,
    strangers_budget: Option<link::TokenBucket>,
    /// The store has reached its configured size (the shell says so).
    storage_full: bool,
    /// When expired messages were last pruned.
    pruned_at: Option<Timestamp>,
    /// The revocation list this node holds (checked by the shell), passed to every peer.
    crl: Option<Vec<u8>>,
    /// What the links of disconnected peers left behind (budgets, strikes), for a while.
    retired: BTreeMap<NodeId, (Timestamp, link::Standing)>,
    /// Peers that have been connected since start: their certificates vouch for them.
    seen: BTreeSet<NodeId>,
    /// For hubs: direct messages held for recipients that no peer was vouched to reach when
    /// they arrived, by recipient — offered to a hub peer as soon as it is vouched for one
    /// (routing from the log has passed them by then) — and the same by log position.
    parked: BTreeMap<NodeId, BTreeMap<u64, MessageId>>,
    parked_at: BTreeMap<u64, Vec<NodeId>>,
    /// Held messages whose stored envelope the shell found damaged: where each sits in its
    /// feed, so that peers can be asked for it again.
    damaged: BTreeMap<MessageId, (NodeId, FeedId, u64, Timestamp)>,
    /// For hubs: the certificates of the members this hub serves, as they presented them; sent
    /// to hub peers so that they believe this hub's reach.
    member_certs: BTreeMap<NodeId, Vec<u8>>,
    /// Refusals per peer and reason not yet journalled.
    refusals: BTreeMap<(NodeId, RejectReason), Tally>,
    /// Cursors moved since the last commit, with the ids acknowledged meanwhile: written once
    /// per commit rather than once per acknowledgement.
    dirty_cursors: BTreeMap<NodeId, (u64, Vec<MessageId>)>,
    /// When cursor moves that nothing else is written with get a commit of their own (see
    /// [`CURSOR_LINGER_MS`]); `None` when none wait.
    cursors_due: Option<Timestamp>,
    out: VecDeque<Output>,
    recovering: bool,
    now: Timestamp,
}

type R<S> = Result<(), RelayError<<S as Store>::Error>>;

/// Most members one hub peer can be vouched for (a hub's own reach is capped by the frame's
/// list: this leaves room for re-announcements).
const MAX_VOUCHED: usize = 4 * crate::limits::MAX_RECIPIENTS;

/// Most direct messages a hub holds on the side for recipients nobody was vouched to reach
/// (beyond it they wait for the next connection of the recipient itself).
const MAX_PARKED: usize = 65_536;

impl<S: Store> Relay<S> {
    /// A relay over `store`.
    ///
    /// # Errors
    /// Storage errors only.
    pub fn new(cfg: RelayConfig, store: S) -> Result<Self, RelayError<S::Error>> {
        let recovering = cfg.recovering;
        let hot = hot::Hot::new(&store, cfg.tail_bytes).map_err(RelayError::Store)?;
        let mut membership = membership::Membership::new(&cfg.channels, cfg.epoch_grace_ms);
        // The channel states taken before, in the order taken, each at the time it was taken.
        for (at, record) in store.channel_states().map_err(RelayError::Store)? {
            if let Ok(v) = crate::channel::ChannelState::verify(&record) {
                let _ = membership.take_state(v, at);
            }
        }
        Ok(Relay {
            cfg,
            store,
            hot,
            membership,
            keys: KeyCache::new(),
            peers: BTreeMap::new(),
            pending_acks: BTreeMap::new(),
            releasable: BTreeMap::new(),
            authored: Vec::new(),
            publishing: Vec::new(),
            author_budgets: BTreeMap::new(),
            peer_budgets: BTreeMap::new(),
            strangers_budget: None,
            storage_full: false,
            pruned_at: None,
            crl: None,
            inboxed: Vec::new(),
            delivering: Vec::new(),
            dirty_cursors: BTreeMap::new(),
            cursors_due: None,
            own_floor: BTreeMap::new(),
            refusals: BTreeMap::new(),
            seen: BTreeSet::new(),
            member_certs: BTreeMap::new(),
            parked: BTreeMap::new(),
            damaged: BTreeMap::new(),
            parked_at: BTreeMap::new(),
            retired: BTreeMap::new(),
            flash_top: None,
            out: VecDeque::new(),
            recovering,
            now: Timestamp(0),
        })
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The store, mutably: the shell applies [`Output::Commit`] batches to it.
    pub fn store_mut(&mut self) -> &mut S {
        &mut self.store
    }

    /// The store, giving up the relay and everything it held in memory (a simulated crash).
    pub fn into_store(self) -> S {
        self.store
    }

    /// Envelope bytes of a held message, committed or not.
    ///
    /// # Errors
    /// Storage errors only.
    pub fn envelope(&self, id: &MessageId) -> Result<Option<Vec<u8>>, RelayError<S::Error>> {
        Ok(self.hot.held(&self.store, id).map_err(RelayError::Store)?.map(|h| h.env.to_vec()))
    }

    /// The inbox in order, including messages not committed yet.
    ///
    /// # Errors
    /// Storage errors only.
    pub fn inbox(&self) -> Result<Vec<MessageId>, RelayError<S::Error>> {
        self.hot.inbox(&self.store).map_err(RelayError::Store)
    }

    /// Bytes of recent messages held in memory.
    pub fn tail_bytes(&self) -> usize {
        self.hot.tail_bytes()
    }

    /// This node's configuration.
    pub fn config(&self) -> &RelayConfig {
        &self.cfg
    }

    /// Notes a node whose certificate this node has seen before (e.g. a peer recorded in the
    /// store by an earlier run): direct messages to it are routable.
    pub fn add_known(&mut self, node: NodeId) {
        self.seen.insert(node);
    }

    /// Adds a peer this node is configured to use (it dials it); see
    /// [`RelayConfig::configured_peers`].
    pub fn add_configured_peer(&mut self, peer: NodeId) {
        self.cfg.configured_peers.insert(peer);
    }

    /// No longer uses `peer` (the operator removed it): a member stops believing its reach.
    pub fn remove_configured_peer(&mut self, peer: &NodeId) {
        self.cfg.configured_peers.remove(peer);
        self.believe_reach(*peer);
    }

    /// Installs the revocation list the shell checked and holds (DER): it goes to every peer
    /// now, and to every peer that connects. (Verifying a list against the network CA is the
    /// shell's: it needs X.509.)
    pub fn set_crl(&mut self, der: Vec<u8>) {
        let peers: Vec<NodeId> = self.peers.keys().copied().collect();
        for peer in peers {
            self.send(peer, Class::Urgent, &Frame::Crl(der.clone()));
        }
        self.crl = Some(der);
    }

    /// Records what the connected `peer`'s certificate says of it (its administration; its role
    /// is the link's) and the certificate itself (DER), with a `Connected` journal entry, in the
    /// batch being built. A hub keeps the certificates of the members it serves and vouches
    /// with a new one to its hub peers at once.
    pub fn record_peer(&mut self, peer: NodeId, administration: String, cert: Vec<u8>) {
        let Some(role) = self.peers.get(&peer).map(|p| p.role) else { return };
        if self.add_member_cert(peer, &cert) {
            let hubs: Vec<NodeId> =
                self.peers.iter().filter(|(_, p)| p.role == Role::Hub).map(|(id, _)| *id).collect();
            for hub in hubs {
                self.send(hub, Class::Urgent, &Frame::Vouch(vec![serde_bytes::ByteBuf::from(cert.clone())]));
            }
        }
        self.hot.write(Write::Peer { peer, role, administration, at: self.now, cert });
        self.hot.record(Event::Connected { peer });
    }

    /// Held messages whose stored envelope the shell found damaged (it set them aside): each is
    /// asked for again from every peer that says hello, and stored anew when a copy that
    /// matches its id arrives ([`Output::Repaired`]).
    /// Each is given with its author, feed, seq and expiry; once expired it is no longer asked
    /// for (peers no longer hand it out).
    pub fn set_damaged(
        &mut self,
        damaged: impl IntoIterator<Item = (MessageId, NodeId, FeedId, u64, Timestamp)>,
    ) {
        self.damaged = damaged.into_iter().map(|(id, a, f, s, e)| (id, (a, f, s, e))).collect();
    }

    /// How many held messages still wait for a sound copy.
    pub fn damaged(&self) -> usize {
        self.damaged.len()
    }

    /// Asks `peer` for the damaged messages (at most a window of them per link: a peer's
    /// request budget is not spent on one node's bad disk).
    fn ask_for_damaged(&mut self, peer: NodeId) {
        let now = self.now;
        self.damaged.retain(|_, (.., expires)| *expires > now);
        let wants: Vec<Want> = self
            .damaged
            .values()
            .take(self.cfg.window)
            .map(|(author, feed, seq, _)| Want { to: *seq, feed: *feed, from: *seq, author: *author })
            .collect();
        for w in wants {
            self.send(peer, Class::Urgent, &Frame::Want(w));
        }
    }

    /// A copy of a damaged message arrived: stored anew if it is the message its id names.
    fn repair(&mut self, peer: NodeId, id: MessageId, bytes: &[u8]) -> R<S> {
        match Envelope::verify_cached(bytes, &mut self.keys) {
            Ok(env) if env.id() == id => {
                self.damaged.remove(&id);
                self.hot.write(Write::Repair { id, env: bytes.into() });
                self.hot.batch.sync = true;
                self.hot.record(Event::Repaired { id, from: peer });
                self.out.push_back(Output::Repaired(id));
                self.pending_acks.entry(peer).or_default().push(Verdict::Stored(id));
                Ok(())
            }
            Ok(_) => {
                self.refuse(peer, Some(id), RejectReason::Invalid, "its id does not match its bytes".into())
            }
            Err(e) => self.refuse(peer, Some(id), RejectReason::Invalid, e.to_string()),
        }
    }

    /// Keeps a node card the shell checked (its certificate too) as the directory entry of
    /// `node`, in the batch being built.
    pub fn record_card(&mut self, node: NodeId, record: Vec<u8>) {
        self.hot.write(Write::Card { node, record });
    }

    /// Sends an audit-log witnessing frame to a connected peer (after its hello: before it,
    /// the peer would refuse it as too early).
    pub fn send_audit(&mut self, peer: NodeId, frame: crate::wire::AuditFrame) {
        if self.peers.get(&peer).is_some_and(|p| p.hello) {
            self.send(peer, Class::Urgent, &Frame::Audit(frame));
        }
    }

    /// Journals an event the shell observed (audit-log alarms and generations), in the batch
    /// being built, durably.
    pub fn record_event(&mut self, event: Event) {
        self.hot.record(event);
        self.hot.batch.sync = true;
    }

    /// Journals an operator's request that changed nothing (what was read), in the batch being
    /// built; it does not make the batch wait for the disk.
    pub fn record_read(&mut self, uid: u32, action: String) {
        self.hot.record(Event::Admin { uid, action });
    }

    /// Journals an operator's request (from the admin socket) with the caller's uid, in the batch
    /// being built.
    pub fn record_admin(&mut self, uid: u32, action: String) {
        self.hot.record(Event::Admin { uid, action });
        self.hot.batch.sync = true;
    }

    /// Journals an operator's request with the operator's setting it changed (a peer to dial or
    /// no longer, a node blocked or unblocked, a message marked), in one batch; other writes are
    /// not the operator's and are ignored.
    pub fn record_setting(&mut self, uid: u32, action: String, setting: Write) {
        if matches!(setting, Write::Dial { .. } | Write::Block { .. } | Write::Mark { .. }) {
            self.hot.write(setting);
        }
        self.record_admin(uid, action);
    }

    /// Keeps the shell's record of a report this node just authored ([`Write::Own`]) in the
    /// batch that holds the message: durable with it, or not at all.
    pub fn keep_own(&mut self, id: MessageId, record: Vec<u8>) {
        self.hot.write(Write::Own { id, record });
    }

    /// Notes the certificate (DER) of a member this hub serves, e.g. from a peer record of an
    /// earlier run. Returns whether it is new. (Other nodes' certificates are not kept.)
    pub fn add_member_cert(&mut self, member: NodeId, cert: &[u8]) -> bool {
        if self.cfg.role != Role::Hub || !self.cfg.serves.contains(&member) || cert.is_empty() {
            return false;
        }
        if self.member_certs.get(&member).is_some_and(|c| c == cert) {
            return false;
        }
        self.member_certs.insert(member, cert.to_vec());
        true
    }

    /// The shell checked the certificates a hub peer vouched with (see [`Output::Vouch`]):
    /// `members` are those it found valid and of the peer's region. The peer's reach is
    /// believed for them from now on.
    ///
    /// # Errors
    /// Storage errors only.
    pub fn handle_vouched(&mut self, peer: NodeId, members: Vec<NodeId>) -> R<S> {
        let Some(p) = self.peers.get_mut(&peer) else { return Ok(()) };
        p.vouch_settled = true;
        for m in members {
            if p.vouched.len() >= MAX_VOUCHED {
                break;
            }
            p.vouched.insert(m);
        }
        self.believe_reach(peer);
        // `pump` offers what was held for them too, a window at a time.
        self.pump(peer)
    }

    /// Offers `peer` (a hub) the direct messages held for members it is believed to reach,
    /// within its window: the rest follow as acknowledgements free room, and what a lost link
    /// had in flight is offered again on the next one (entries leave only when acknowledged).
    pub(super) fn offer_parked(&mut self, peer: NodeId) -> R<S> {
        let (window, window_bytes) = (self.cfg.window, self.cfg.window_bytes);
        let Some(p) = self.peers.get(&peer) else { return Ok(()) };
        if p.role != Role::Hub || !p.hello || !p.routable() {
            return Ok(());
        }
        let waiting: Vec<(u64, MessageId)> = p
            .reach
            .iter()
            .filter_map(|m| self.parked.get(m))
            .flat_map(|w| w.iter().map(|(l, id)| (*l, *id)))
            .collect();
        for (local, id) in waiting {
            let Some(p) = self.peers.get(&peer) else { return Ok(()) };
            if !p.has_room(window, window_bytes) {
                break;
            }
            if p.is_in_flight(local) {
                continue;
            }
            if let Some(held) = self.hot.held(&self.store, &id).map_err(RelayError::Store)? {
                if held.meta.expires > self.now && self.needs(&peer, &held.meta) {
                    self.send_held(peer, &held);
                }
            }
        }
        Ok(())
    }

    /// Notes a direct message held at `local` for recipients no peer was vouched to reach.
    fn park(&mut self, local: u64, id: MessageId, recipients: Vec<NodeId>) {
        if recipients.is_empty() || self.parked_at.len() >= MAX_PARKED {
            return;
        }
        for r in &recipients {
            self.parked.entry(*r).or_default().insert(local, id);
        }
        self.parked_at.insert(local, recipients);
    }

    /// `peer` acknowledged the message at `local`: it is no longer waiting for the recipients
    /// the peer reaches.
    pub(super) fn unpark(&mut self, peer: &NodeId, local: u64) {
        let Some(waiting) = self.parked_at.get_mut(&local) else { return };
        let reach = self.peers.get(peer).map(|p| &p.reach);
        let reached: Vec<NodeId> =
            waiting.iter().filter(|r| *r == peer || reach.is_some_and(|s| s.contains(r))).copied().collect();
        self.forget_parked(local, &reached);
    }

    /// The message at `local` no longer waits for `recipients`.
    fn forget_parked(&mut self, local: u64, recipients: &[NodeId]) {
        if let Some(waiting) = self.parked_at.get_mut(&local) {
            waiting.retain(|r| !recipients.contains(r));
            if waiting.is_empty() {
                self.parked_at.remove(&local);
            }
        }
        for r in recipients {
            if let Some(w) = self.parked.get_mut(r) {
                w.remove(&local);
                if w.is_empty() {
                    self.parked.remove(r);
                }
            }
        }
    }

    /// What this node believes `peer` reaches, from its last claim: a member believes a hub
    /// only when it is one it is configured to use; a hub believes another hub only for
    /// members vouched for by certificates of that hub's region; anyone else reaches itself.
    fn believe_reach(&mut self, peer: NodeId) {
        let me_hub = self.cfg.role == Role::Hub;
        let configured = self.cfg.configured_peers.contains(&peer);
        let Some(p) = self.peers.get_mut(&peer) else { return };
        let believed: BTreeSet<NodeId> = match (p.role == Role::Hub, me_hub) {
            (false, _) => BTreeSet::new(),
            (true, false) if configured => p.claimed.iter().copied().collect(),
            (true, false) => BTreeSet::new(),
            (true, true) => p.claimed.iter().filter(|n| p.vouched.contains(n)).copied().collect(),
        };
        p.reach = believed.into_iter().chain([peer]).collect();
    }

    /// The shell reports whether the store has reached its configured size: while it has,
    /// new messages are refused (`storage_full`, not final) and publishing fails.
    pub fn set_storage_full(&mut self, full: bool) {
        self.storage_full = full;
    }

    /// Whether the store was reported full.
    pub fn is_storage_full(&self) -> bool {
        self.storage_full
    }

    /// The seqs of a feed still missing below the highest one held, as `(first, last)` of the
    /// range that contains them, or `None` when the feed is whole up to its top.
    ///
    /// # Errors
    /// Storage errors only.
    pub fn missing(
        &mut self,
        author: &NodeId,
        feed: &FeedId,
    ) -> Result<Option<(u64, u64)>, RelayError<S::Error>> {
        let h =
            self.hot.head(&self.store, author, feed).map_err(RelayError::Store)?.unwrap_or(HeadRec::EMPTY);
        Ok((h.top > h.seq + 1).then_some((h.seq + 1, h.top - 1)))
    }

    /// Whether the node is still recovering its own feed heads.
    pub fn is_recovering(&self) -> bool {
        self.recovering
    }

    /// Connected peers.
    pub fn peers(&self) -> impl Iterator<Item = &NodeId> {
        self.peers.keys()
    }

    /// Next output to carry out; call until `None` after each `handle_*`. When nothing else is
    /// left, the write batch of everything handled since the last commit comes out as
    /// [`Output::Commit`].
    pub fn poll_output(&mut self) -> Option<Output> {
        if let Some(o) = self.out.pop_front() {
            return Some(o);
        }
        self.prepare_commit()
    }

    fn prepare_commit(&mut self) -> Option<Output> {
        if self.hot.in_commit.is_some() {
            return None;
        }
        // Cursor moves are written once per commit, with one `Relayed` entry per peer. Alone
        // (nothing else to write, no verdict or publication waiting) they wait a little for a
        // commit that is made anyway.
        let alone = self.hot.batch.is_empty() && self.pending_acks.is_empty() && self.authored.is_empty();
        let linger = alone
            && self.cursors_due.is_some_and(|due| self.now < due)
            && self.dirty_cursors.values().all(|(_, ids)| ids.len() < MAX_ACK_IDS);
        if linger {
            return None;
        }
        self.cursors_due = None;
        for (peer, (cursor, ids)) in std::mem::take(&mut self.dirty_cursors) {
            if !ids.is_empty() {
                self.hot.record(Event::Relayed { to: peer, ids });
            }
            self.hot.set_cursor(peer, cursor);
        }
        if self.hot.batch.is_empty() {
            // Verdicts on what earlier batches stored: those are committed already.
            if self.pending_acks.is_empty() {
                return None;
            }
            self.releasable = std::mem::take(&mut self.pending_acks);
            self.release();
            return self.out.pop_front();
        }
        if !self.pending_acks.is_empty() || !self.authored.is_empty() {
            self.hot.batch.sync = true;
        }
        let batch = self.hot.take_batch()?;
        self.releasable = std::mem::take(&mut self.pending_acks);
        self.publishing = std::mem::take(&mut self.authored);
        self.delivering = std::mem::take(&mut self.inboxed);
        Some(Output::Commit(batch))
    }

    /// The batch of the last [`Output::Commit`] is applied (and durable, if it asked for
    /// that): acknowledge what it stored, report the publications it holds, and pass on the
    /// messages authored in it.
    ///
    /// # Errors
    /// Storage errors only.
    pub fn handle_committed(&mut self) -> R<S> {
        self.hot.committed();
        self.release();
        let delivered = std::mem::take(&mut self.delivering);
        self.out.extend(delivered.into_iter().map(Output::Delivered));
        let published = std::mem::take(&mut self.publishing);
        let any = !published.is_empty();
        self.out.extend(published.into_iter().map(Output::Published));
        if any { self.fan_out() } else { Ok(()) }
    }

    /// Sends the verdicts whose batch is committed.
    fn release(&mut self) {
        for (peer, verdicts) in std::mem::take(&mut self.releasable) {
            if !self.peers.contains_key(&peer) {
                continue;
            }
            let mut acks = Vec::new();
            for v in verdicts {
                match v {
                    Verdict::Stored(id) => acks.push(id),
                    Verdict::Refused(id, reason, detail) => self.send(
                        peer,
                        Class::Urgent,
                        &Frame::Reject(Reject { id: Some(id), detail, reason }),
                    ),
                    Verdict::Held(id) => self.send(
                        peer,
                        Class::Urgent,
                        &Frame::Reject(Reject {
                            id: Some(id),
                            detail: "already held".into(),
                            reason: RejectReason::Duplicate,
                        }),
                    ),
                }
            }
            for chunk in acks.chunks(MAX_ACK_IDS) {
                self.send(peer, Class::Urgent, &Frame::Ack(chunk.to_vec()));
            }
        }
    }

    /// A link to `peer` is up (its certificate says `role`).
    ///
    /// # Errors
    /// Storage errors only.
    pub fn connect(&mut self, now: Timestamp, peer: NodeId, role: Role) -> R<S> {
        self.now = now;
        let cursor = self.cursor_of(&peer)?;
        let c = &self.cfg;
        let budgets = Budgets {
            msgs_per_sec: u64::from(c.rate_per_sec),
            msgs_burst: u64::from(c.rate_burst),
            bytes_per_sec: c.bytes_per_sec,
            bytes_burst: c.bytes_burst,
            asked_bytes_per_sec: c.answer_bytes_per_sec,
            asked_bytes_burst: c.answer_bytes_burst,
            control_per_sec: u64::from(c.control_per_sec),
            control_burst: u64::from(c.control_burst),
        };
        // Budgets and strikes belong to the peer, not to the connection.
        let horizon = now.as_millis().saturating_sub(CARRY_MS);
        self.retired.retain(|_, (at, _)| at.as_millis() >= horizon);
        let link = match self.retired.remove(&peer) {
            Some((_, standing)) => Link::resume(now, peer, role, cursor, budgets, standing),
            None => Link::new(now, peer, role, cursor, budgets),
        };
        self.peers.insert(peer, link);
        self.seen.insert(peer);
        let mut reach: Vec<NodeId> = vec![self.cfg.me];
        if self.cfg.role == Role::Hub {
            reach.extend(self.cfg.serves.iter().filter(|n| **n != peer));
            if role == Role::Hub {
                // The certificates that make a hub peer believe this reach come first (an
                // empty list when there are none: the peer waits for it before routing).
                let certs: Vec<serde_bytes::ByteBuf> = self
                    .member_certs
                    .iter()
                    .filter(|(n, _)| **n != peer)
                    .map(|(_, c)| serde_bytes::ByteBuf::from(c.clone()))
                    .collect();
                if certs.is_empty() {
                    self.send(peer, Class::Urgent, &Frame::Vouch(Vec::new()));
                }
                for chunk in certs.chunks(crate::limits::MAX_RECIPIENTS) {
                    self.send(peer, Class::Urgent, &Frame::Vouch(chunk.to_vec()));
                }
                if let Some(p) = self.peers.get_mut(&peer) {
                    p.vouch_settled = false;
                }
            }
        }
        // Reach first: the peer starts sending when it sees Hello, and must know our reach by then.
        self.send(peer, Class::Urgent, &Frame::Reach(reach));
        let hello = Hello { v: LINK_VERSION, recovering: self.recovering };
        self.send(peer, Class::Urgent, &Frame::Hello(hello));
        // Revocations spread with every connection: the newest list wins everywhere.
        if let Some(der) = self.crl.clone() {
            self.send(peer, Class::Urgent, &Frame::Crl(der));
        }
        Ok(())
    }

    /// The link to `peer` is down, for `reason` (journalled, cut to 200 characters without
    /// control characters). Unacknowledged messages are resent from its cursor on the next
    /// connect; its refusals so far are journalled.
    ///
    /// # Errors
    /// Storage errors only.
    pub fn disconnect(&mut self, peer: &NodeId, reason: &str) -> R<S> {
        if self.peers.contains_key(peer) {
            self.hot.record(Event::Disconnected { peer: *peer, reason: journal_text(reason) });
        }
        self.drop_link(peer);
        self.pending_acks.remove(peer);
        self.journal_refusals(|p, _| p == peer)
    }

    /// Writes the aggregated refusals that `pick` selects into the journal.
    fn journal_refusals(&mut self, mut pick: impl FnMut(&NodeId, &Tally) -> bool) -> R<S> {
        let keys: Vec<(NodeId, RejectReason)> =
            self.refusals.iter().filter(|((p, _), t)| pick(p, t)).map(|(k, _)| *k).collect();
        for (from, reason) in keys {
            if let Some(t) = self.refusals.remove(&(from, reason)) {
                let event = Event::Rejected { from, reason, count: t.count, first: t.first, last: t.last };
                self.hot.record(event);
            }
        }
        Ok(())
    }

    /// Handles one frame body received from `peer`.
    ///
    /// # Errors
    /// Storage errors only: bad input produces refusals, never errors.
    pub fn handle_frame(&mut self, now: Timestamp, peer: NodeId, bytes: &[u8]) -> R<S> {
        self.now = now;
        if !self.peers.contains_key(&peer) {
            return Ok(());
        }
        let frame = match Frame::decode(bytes) {
            Ok(f) => f,
            Err(e) => return self.refuse(peer, None, RejectReason::Malformed, e.to_string()),
        };
        // Control frames have a budget of their own, so that acknowledgements of a busy link
        // never eat into its message rate, and a flood of them is refused like any other.
        if !matches!(frame, Frame::Msg(_) | Frame::Want(_))
            && !self.peer(&peer).is_some_and(|p| p.take_control(now))
        {
            return self.refuse(
                peer,
                None,
                RejectReason::RateLimited,
                "over the per-peer control-frame rate".into(),
            );
        }
        // Until the peer's hello says which protocol version it speaks, nothing but the link's
        // set-up is taken.
        if !matches!(frame, Frame::Hello(_) | Frame::Reach(_) | Frame::Crl(_) | Frame::Vouch(_))
            && !self.peers.get(&peer).is_some_and(|p| p.hello)
        {
            let id = match &frame {
                Frame::Msg(m) => {
                    // Refused without a strike, so it costs the peer its message budget.
                    let now = self.now;
                    if !self.peer(&peer).is_some_and(|p| p.take_message(now, m.env.len())) {
                        let detail = format!("over the per-peer rate ({} bytes refused)", m.env.len());
                        return self.refuse(peer, None, RejectReason::RateLimited, detail);
                    }
                    Envelope::peek_id(&m.env)
                }
                Frame::Want(_) => {
                    // Wants have no control budget of their own: the request budget pays.
                    let now = self.now;
                    if !self.peer(&peer).is_some_and(|p| p.take_requests(now, 1)) {
                        let detail = "over the per-peer request rate".to_string();
                        return self.refuse(peer, None, RejectReason::RateLimited, detail);
                    }
                    None
                }
                _ => None,
            };
            return self.refuse(peer, id, RejectReason::TooEarly, "sent before the peer's hello".into());
        }
        match frame {
            Frame::Hello(h) => {
                if h.v != LINK_VERSION {
                    let detail = format!(
                        "link protocol version {} is not supported (this node speaks {LINK_VERSION})",
                        h.v
                    );
                    self.refuse(peer, None, RejectReason::UnsupportedVersion, detail.clone())?;
                    self.close_link(peer, detail, false);
                    return Ok(());
                }
                let Some(p) = self.peer(&peer) else { return Ok(()) };
                p.hello = true;
                // A restored peer is answered once per link: asking again costs it nothing and
                // would make this node send every head again.
                if h.recovering && !std::mem::replace(&mut p.recovery_answered, true) {
                    self.answer_recovery(peer)?;
                }
                if !self.damaged.is_empty() {
                    self.ask_for_damaged(peer);
                }
                self.pump(peer)
            }
            Frame::Reach(nodes) => {
                // Believed only as far as this node can check it (`believe_reach`): a stranger's
                // claims would draw direct messages away, and pull channel traffic.
                if let Some(p) = self.peer(&peer) {
                    // Each announcement replaces the last (bounded by the frame's list cap).
                    p.claimed = nodes;
                    p.reach_known = true;
                }
                self.believe_reach(peer);
                self.pump(peer)
            }
            Frame::Vouch(certs) => {
                // Only a hub vouches, and only a hub needs to check it.
                let hubs =
                    self.cfg.role == Role::Hub && self.peers.get(&peer).is_some_and(|p| p.role == Role::Hub);
                if !hubs {
                    return Ok(());
                }
                if certs.is_empty() {
                    // Nothing to check: routing towards the peer can start.
                    return self.handle_vouched(peer, Vec::new());
                }
                let certs = certs.into_iter().map(serde_bytes::ByteBuf::into_vec).collect();
                self.out.push_back(Output::Vouch { peer, certs });
                Ok(())
            }
            Frame::Msg(m) => self.handle_msg(peer, m),
            Frame::Ack(ids) => {
                self.out.push_back(Output::Acked { peer, count: ids.len() });
                self.handle_ack(peer, &ids)
            }
            Frame::Reject(r) => self.handle_reject(peer, r),
            Frame::Heads(heads) => self.handle_heads(peer, &heads),
            Frame::Want(w) => self.handle_want(peer, w),
            Frame::Crl(der) => {
                self.out.push_back(Output::Crl { from: peer, der });
                Ok(())
            }
            Frame::Audit(frame) => {
                self.out.push_back(Output::Audit { from: peer, frame });
                Ok(())
            }
        }
    }

    /// The shell refused a frame from `peer` that it could not even read (its announced length
    /// over the limit, its body not arriving within the read deadline): journalled, counted
    /// against the peer and answered like every refusal.
    ///
    /// # Errors
    /// Storage errors only.
    pub fn handle_frame_refused(
        &mut self,
        now: Timestamp,
        peer: NodeId,
        reason: RejectReason,
        detail: String,
    ) -> R<S> {
        self.now = now;
        if !self.peers.contains_key(&peer) {
            return Ok(());
        }
        self.refuse(peer, None, reason, detail)
    }

    /// Timer: resends what has waited too long for an acknowledgement.
    ///
    /// # Errors
    /// Storage errors only.
    pub fn handle_timeout(&mut self, now: Timestamp) -> R<S> {
        self.now = now;
        // Refusals of links that stay up are journalled at least once a window.
        self.journal_refusals(|_, t| {
            now.as_millis().saturating_sub(t.since.as_millis()) >= REFUSAL_WINDOW_MS
        })?;
        self.prune(now)?;
        let peers: Vec<NodeId> = self
            .peers
            .iter()
            .filter(|(_, l)| l.next_deadline().is_some_and(|t| t <= now))
            .map(|(p, _)| *p)
            .collect();
        for peer in peers {
            let Some(p) = self.peers.get(&peer) else { continue };
            let stale: Vec<(u64, MessageId, u32)> =
                p.due(now).into_iter().map(|(l, f)| (l, f.id, f.sends)).collect();
            if stale.iter().any(|(_, _, tries)| *tries >= MAX_SENDS) {
                // A peer that never acknowledges would pin its cursor and grow its state.
                let reason = format!("peer did not acknowledge a message after {MAX_SENDS} sends");
                self.close_link(peer, reason, false);
                continue;
            }
            for (local, id, _) in stale {
                self.send_msg(peer, local, id)?;
            }
        }
        Ok(())
    }

    /// When [`Relay::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.peers.values().filter_map(Link::next_deadline).chain(self.cursors_due).min()
    }

    /// Cursor moves still waiting for a commit go into the next one (before a shutdown).
    pub fn flush_cursors(&mut self) {
        self.cursors_due = None;
    }

    /// Authors a message: assigns the next seq of its feed, seals it, stores it and starts
    /// relaying it. Returns the sealed message.
    ///
    /// # Errors
    /// [`PublishError::Recovering`] while recovering, [`PublishError::Frozen`] on a forked feed,
    /// sealing and storage errors.
    pub fn publish(
        &mut self,
        now: Timestamp,
        rng: &mut impl CryptoRngCore,
        key: &IdentityKey,
        p: &Publication<'_>,
    ) -> Result<message::SealedMessage, PublishError<S::Error>> {
        self.now = now;
        if let Audience::Channel { id, epoch, .. } = p.audience {
            let me = self.cfg.me;
            if let Err(d) = self.membership.may_publish(&id, epoch, &me, now, now) {
                return Err(PublishError::NotPermitted(format!("channel {} epoch {epoch}: {d}", id.short())));
            }
            // Its own messages go under the current epoch: the grace window is for others.
            if let Some(head) = self.membership.book().head(&id).map(|h| h.state.epoch) {
                if head != epoch {
                    return Err(PublishError::NotPermitted(format!(
                        "channel {} is at epoch {head}, not {epoch}",
                        id.short()
                    )));
                }
            }
        }
        let feed = match p.audience {
            Audience::Channel { id, .. } => FeedId(id.0),
            Audience::Direct(to) => {
                let mut ids: Vec<NodeId> = to.iter().map(|(n, _)| *n).collect();
                ids.sort();
                crate::envelope::direct_feed_id(&ids)
            }
        };
        let (seq, prev) = self.next_place(&feed)?;
        let draft = Draft {
            audience: p.audience,
            seq,
            prev,
            created: now,
            expires: now.plus_millis(p.ttl_ms),
            priority: p.priority,
            marking: p.marking,
            body: p.body,
            personal: p.personal,
        };
        let sealed = message::seal(rng, key, &draft)?;
        self.author(sealed)
    }

    /// Authors a control message carrying `record` (a signed control record) in this node's
    /// control feed of the record's kind: it reaches every node. Returns the sealed message.
    ///
    /// # Errors
    /// As [`Relay::publish`]; [`SealError::Control`] if the record does not verify.
    pub fn publish_control(
        &mut self,
        now: Timestamp,
        key: &IdentityKey,
        record: &[u8],
        ttl_ms: u64,
        priority: Priority,
    ) -> Result<message::SealedMessage, PublishError<S::Error>> {
        self.now = now;
        let kind = crate::control::kind_of(record).map_err(|e| PublishError::Seal(SealError::Control(e)))?;
        if kind == crate::control::Kind::ChannelState {
            let v = crate::channel::ChannelState::verify(record)?;
            self.membership.check_state(&v)?;
        }
        let (seq, prev) = self.next_place(&crate::envelope::control_feed_id(kind))?;
        let draft = message::ControlDraft {
            seq,
            prev,
            created: now,
            expires: now.plus_millis(ttl_ms),
            priority,
            record,
        };
        let sealed = message::seal_control(key, &draft)?;
        self.author(sealed)
    }

    /// The signed channel states this node holds.
    pub fn channels(&self) -> &crate::channel::Book {
        self.membership.book()
    }

    /// The next place in this node's feed `feed`: its seq and prev.
    fn next_place(&mut self, feed: &FeedId) -> Result<(u64, Option<MessageId>), PublishError<S::Error>> {
        if self.recovering {
            return Err(PublishError::Recovering);
        }
        if self.storage_full {
            return Err(PublishError::StorageFull);
        }
        let me = self.cfg.me;
        let head =
            self.hot.head(&self.store, &me, feed).map_err(PublishError::Store)?.unwrap_or(HeadRec::EMPTY);
        if head.frozen {
            return Err(PublishError::Frozen);
        }
        let prev = self.hot.slot(&self.store, &me, feed, head.top, &head).map_err(PublishError::Store)?;
        // A peer reported a sequence number of this feed that this node does not hold yet: it
        // was asked for those messages and authors only once it has them (never a fork).
        match self.own_floor.get(feed) {
            Some(floor) if *floor > head.top => return Err(PublishError::Recovering),
            Some(_) => {
                self.own_floor.remove(feed);
            }
            None => {}
        }
        Ok((head.top + 1, prev.map(|s| s.id)))
    }

    /// Stores a message this node sealed and starts passing it on once committed.
    fn author(
        &mut self,
        sealed: message::SealedMessage,
    ) -> Result<message::SealedMessage, PublishError<S::Error>> {
        let env = Envelope::verify_cached(&sealed.bytes, &mut self.keys)
            .map_err(|e| PublishError::Seal(SealError::Header(e)))?;
        let stored = self
            .accept(None, 0, &env, &sealed.bytes)
            .map_err(|RelayError::Store(e)| PublishError::Store(e))?;
        if !stored {
            // Only a frozen feed refuses its own author's next message.
            return Err(PublishError::Frozen);
        }
        self.authored.push(sealed.id);
        Ok(sealed)
    }

    /// Drops the envelopes of expired messages, a bounded number per call and at most once per
    /// `prune_every_ms`: they are never sent again, and their authors' budgets let the space be
    /// used again. A feed's top message keeps its envelope (a restored author learns from it
    /// where its feed stands); every pruning is journalled in one entry.
    fn prune(&mut self, now: Timestamp) -> R<S> {
        if self.pruned_at.is_some_and(|at| now.as_millis() < at.as_millis() + self.cfg.prune_every_ms) {
            return Ok(());
        }
        self.pruned_at = Some(now);
        let expired = self.store.expired(now, PRUNE_BATCH).map_err(RelayError::Store)?;
        let mut count = 0;
        for (expires, local, id) in expired {
            let Some(meta) = self.store.meta(&id).map_err(RelayError::Store)? else { continue };
            let head = self.hot.head(&self.store, &meta.author, &meta.feed).map_err(RelayError::Store)?;
            let envelope = head.is_none_or(|h| h.top != meta.seq);
            count += u64::from(envelope);
            self.hot.prune(id, expires, local, envelope);
            // Expired: no longer waiting for anyone.
            let waiting = self.parked_at.get(&local).cloned().unwrap_or_default();
            self.forget_parked(local, &waiting);
        }
        if count > 0 {
            self.hot.record(Event::Pruned { count });
        }
        // Long expired: what is left of them goes too, except a feed's top (a restored author
        // learns from it where its feed stands).
        let before = Timestamp(now.as_millis().saturating_sub(self.cfg.forget_after_ms));
        let old = self.store.forgettable(before, PRUNE_BATCH).map_err(RelayError::Store)?;
        let mut forgotten = 0;
        for (expires, local, id) in old {
            let meta = self.store.meta(&id).map_err(RelayError::Store)?;
            let whole = match &meta {
                Some(m) => {
                    let head = self.hot.head(&self.store, &m.author, &m.feed).map_err(RelayError::Store)?;
                    head.is_none_or(|h| h.top != m.seq)
                }
                None => false,
            };
            let place =
                meta.filter(|_| whole).map(|m| (m.author, m.feed, m.seq, m.priority == Priority::Flash));
            forgotten += u64::from(place.is_some());
            self.hot.forget(id, expires, local, place);
        }
        if forgotten > 0 {
            self.hot.record(Event::Forgotten { count: forgotten });
        }
        Ok(())
    }

    // ---- helpers -------------------------------------------------------------------------

    fn refuse(&mut self, peer: NodeId, id: Option<MessageId>, reason: RejectReason, detail: String) -> R<S> {
        self.refuse_relayed(peer, id, reason, detail, false)
    }

    /// Refuses, journals and answers; `relayed` is whether the peer passed on a message it did
    /// not author (it weighs membership and route refusals lightly).
    fn refuse_relayed(
        &mut self,
        peer: NodeId,
        id: Option<MessageId>,
        reason: RejectReason,
        detail: String,
        relayed: bool,
    ) -> R<S> {
        self.out.push_back(Output::Refused { peer, id, reason, detail: detail.clone() });
        if peer == self.cfg.me {
            self.hot.record(Event::Rejected { from: peer, reason, count: 1, first: id, last: id });
            return Ok(());
        }
        // Journalled in aggregate: a flood of refusals is one entry, not one per frame.
        let now = self.now;
        let t = self.refusals.entry((peer, reason)).or_insert(Tally {
            since: now,
            count: 0,
            first: id,
            last: id,
        });
        t.count += 1;
        t.first = t.first.or(id);
        t.last = id.or(t.last);
        match (reason, id) {
            // A fork refusal is final for its sender and rests on state (the frozen head, the
            // evidence) in the batch being built: it waits for the commit, like an ack.
            (RejectReason::Fork, Some(id)) => {
                self.pending_acks.entry(peer).or_default().push(Verdict::Refused(id, reason, detail));
            }
            _ => self.send(peer, Class::Urgent, &Frame::Reject(Reject { id, detail, reason })),
        }
        self.strike(peer, strike_weight(reason, relayed))
    }

    fn strike(&mut self, peer: NodeId, weight: u32) -> R<S> {
        let (now, limit) = (self.now, self.cfg.abuse_limit);
        let Some(p) = self.peers.get_mut(&peer) else { return Ok(()) };
        if p.strike(now, weight, limit) {
            let reason = format!("abusive: more than {limit} refused messages' worth within a minute");
            self.close_link(peer, reason, true);
        }
        Ok(())
    }

    fn send(&mut self, peer: NodeId, class: Class, frame: &Frame) {
        self.out.push_back(Output::Send { peer, class, frame: frame.encode() });
    }

    /// Ends the link to `peer`, keeping what carries over to its next one.
    /// Ends the link to `peer` for `reason`, journalled with its disconnection (the shell's
    /// later notice of the closed connection then finds no link and records nothing more).
    fn close_link(&mut self, peer: NodeId, reason: String, abusive: bool) {
        if self.peers.contains_key(&peer) {
            let why = journal_text(&format!("closed by this node: {reason}"));
            self.hot.record(Event::Disconnected { peer, reason: why });
        }
        self.drop_link(&peer);
        self.out.push_back(Output::Close { peer, reason, abusive });
    }

    fn drop_link(&mut self, peer: &NodeId) {
        if let Some(link) = self.peers.remove(peer) {
            self.retired.insert(*peer, (self.now, link.into_standing()));
        }
    }

    fn peer(&mut self, peer: &NodeId) -> Option<&mut Link> {
        self.peers.get_mut(peer)
    }
}

/// A reason as journalled: control characters dropped, at most 200 characters (a peer's
/// close reason is its own text).
fn journal_text(reason: &str) -> String {
    reason.chars().filter(|c| !c.is_control()).take(200).collect()
}

/// Refusals of one peer for one reason, counted until they are journalled.
#[derive(Debug, Clone, Copy)]
struct Tally {
    since: Timestamp,
    count: u64,
    first: Option<MessageId>,
    last: Option<MessageId>,
}

/// Sequence numbers of a `want` range that cost one request token.
const WANT_SEQS_PER_TOKEN: u64 = 16;

/// How long a disconnected peer's budgets and strikes are kept for its next link.
const CARRY_MS: u64 = 600_000;

/// How far ahead of this node's clock a message's creation time may be.
const MAX_CLOCK_SKEW_MS: u64 = 600_000;

/// Refusals of a link that stays up are journalled at least this often.
const REFUSAL_WINDOW_MS: u64 = 60_000;

/// A verdict on a received message that waits for the commit before it is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    /// Stored by this batch: acknowledged.
    Stored(MessageId),
    /// Already held (perhaps stored by this very batch): refused as a duplicate, which the
    /// sender takes as an acknowledgement, so it too waits until the store is durable.
    Held(MessageId),
    /// Refused for good on grounds this batch writes (a fork: the frozen head, the evidence).
    Refused(MessageId, RejectReason, String),
}

/// The hop count a stored message carries when this node passes it on.
fn outgoing_hop(m: &MsgMeta) -> u8 {
    if m.from.is_some() { m.hop.saturating_add(1) } else { 0 }
}

/// How soon a message refused as `too_early` is sent again, in milliseconds.
const TOO_EARLY_RESEND_MS: u64 = 1_000;

/// Most expired messages pruned per call.
const PRUNE_BATCH: usize = 1_024;

/// Sends of one message to one peer before the peer is considered stuck and disconnected.
const MAX_SENDS: u32 = 5;

/// How long cursor moves (and their `Relayed` entries) with nothing else to write wait for a
/// commit made anyway. Acknowledgements arrive one peer at a time, each its own pass of the
/// core: written at once, each was a commit of its own — hundreds of small sled batches for a
/// few commits of messages. A crash loses at most this much of cursor moves, and the messages
/// behind them are offered again (the peer answers "already held").
pub const CURSOR_LINGER_MS: u64 = 200;

#[cfg(test)]
mod tests;

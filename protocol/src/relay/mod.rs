//! The relay: validation, storage decisions, interest routing, per-peer delivery and catch-up,
//! as a sans-IO state machine.
//!
//! The node shell feeds it link events ([`Relay::connect`], [`Relay::disconnect`]), received
//! frames ([`Relay::handle_frame`]), timer ticks ([`Relay::handle_timeout`]) and local
//! publications ([`Relay::publish`]), and pulls [`Output`]s. Storage goes through the [`Store`]
//! trait. Acknowledgements are released only after the shell has made the store durable
//! ([`Relay::wants_commit`] → flush → [`Relay::committed`]), so a node that loses power loses
//! nothing it acknowledged. The same code runs in the deterministic simulator ([`crate::sim`]).
//!
//! Delivery to a peer follows a *cursor* into this node's log (not a copy per peer): every log
//! entry at or below the cursor has been acknowledged by the peer or does not concern it. On
//! every (re)connect the peer's pump resumes from its cursor, oldest first, with at most
//! `window` messages in flight: that is the catch-up. Flash messages jump the queue.

mod link;
mod store;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use self::link::{Budgets, Link, strike_weight};

use rand_core::CryptoRngCore;

pub use store::{HeadRec, Insert, MemoryStore, MsgMeta, NoError, SlotRec, Store};

pub use crate::audit::Event;
pub use crate::identity::Role;

use crate::content::{Body, PersonalData, Tlp};
use crate::envelope::{Envelope, EnvelopeError, Feed, KeyCache, Priority};
use crate::identity::{EncryptionPublicKey, IdentityKey, NodeId};
use crate::ids::{ChannelId, FeedId, MessageId};
use crate::message::{self, Audience, Draft, SealError};
use crate::time::Timestamp;
use crate::wire::{FeedHead, Frame, Hello, MAX_ACK_IDS, MAX_HOPS, Msg, Reject, RejectReason, Want};

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
    /// A message was delivered into this node's inbox.
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
    /// A peer passed on a revocation list (DER); the shell checks it and installs it if newer.
    Crl {
        /// The peer.
        from: NodeId,
        /// The list.
        der: Vec<u8>,
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
    /// The feed is frozen after a fork.
    #[error("the feed is frozen after a fork; an operator must resolve it")]
    Frozen,
    /// Sealing failed.
    #[error(transparent)]
    Seal(#[from] SealError),
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
    keys: KeyCache,
    /// Ordered maps throughout: the relay's outputs must not depend on hash order, or the
    /// simulator would not replay a seed exactly.
    peers: BTreeMap<NodeId, Link>,
    pending_acks: BTreeMap<NodeId, Vec<Verdict>>,
    releasable: BTreeMap<NodeId, Vec<Verdict>>,
    /// Sequence numbers of this node's own feeds that peers reported while it was recovering:
    /// it never authors at or below them.
    own_floor: BTreeMap<FeedId, u64>,
    /// What the links of disconnected peers left behind (budgets, strikes), for a while.
    retired: BTreeMap<NodeId, (Timestamp, link::Carry)>,
    /// Peers that have been connected since start: their certificates vouch for them.
    seen: BTreeSet<NodeId>,
    /// Refusals per peer and reason not yet journalled.
    refusals: BTreeMap<(NodeId, RejectReason), Tally>,
    /// Cursors moved since the last commit, with the ids acknowledged meanwhile: written once
    /// per commit rather than once per acknowledgement.
    dirty_cursors: BTreeMap<NodeId, (u64, Vec<MessageId>)>,
    out: VecDeque<Output>,
    recovering: bool,
    now: Timestamp,
}

type R<S> = Result<(), RelayError<<S as Store>::Error>>;

impl<S: Store> Relay<S> {
    /// A relay over `store`.
    pub fn new(cfg: RelayConfig, store: S) -> Self {
        let recovering = cfg.recovering;
        Relay {
            cfg,
            store,
            keys: KeyCache::new(),
            peers: BTreeMap::new(),
            pending_acks: BTreeMap::new(),
            releasable: BTreeMap::new(),
            dirty_cursors: BTreeMap::new(),
            own_floor: BTreeMap::new(),
            refusals: BTreeMap::new(),
            seen: BTreeSet::new(),
            retired: BTreeMap::new(),
            out: VecDeque::new(),
            recovering,
            now: Timestamp(0),
        }
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The store, mutably (for the shell's flush).
    pub fn store_mut(&mut self) -> &mut S {
        &mut self.store
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

    /// Whether the node is still recovering its own feed heads.
    pub fn is_recovering(&self) -> bool {
        self.recovering
    }

    /// Connected peers.
    pub fn peers(&self) -> impl Iterator<Item = &NodeId> {
        self.peers.keys()
    }

    /// Next output to carry out; call until `None` after each `handle_*`.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// Whether acknowledgements wait for a durable commit. The shell then makes the store
    /// durable and calls [`Relay::committed`].
    pub fn wants_commit(&self) -> bool {
        !self.pending_acks.is_empty() || !self.releasable.is_empty() || !self.dirty_cursors.is_empty()
    }

    /// Marks the point where the shell starts a commit: moved cursors are written (with their
    /// `Relayed` events) and everything stored so far will be covered by the commit. Returns
    /// whether acknowledgements wait on it (then it must reach stable storage before
    /// [`Relay::committed`]); cursor moves alone may be lost in a crash at the price of resends.
    ///
    /// # Errors
    /// Storage errors only.
    pub fn begin_commit(&mut self) -> Result<bool, RelayError<S::Error>> {
        for (peer, (cursor, ids)) in std::mem::take(&mut self.dirty_cursors) {
            let event = (!ids.is_empty()).then_some(Event::Relayed { to: peer, ids });
            self.store.set_cursor(&peer, cursor, event).map_err(RelayError::Store)?;
        }
        // Acknowledgements left over from a commit that failed still need a successful one.
        let needs_sync = !self.pending_acks.is_empty() || !self.releasable.is_empty();
        for (peer, ids) in std::mem::take(&mut self.pending_acks) {
            self.releasable.entry(peer).or_default().extend(ids);
        }
        Ok(needs_sync)
    }

    /// The commit begun by [`Relay::begin_commit`] reached stable storage: acknowledge.
    pub fn committed(&mut self) {
        for (peer, verdicts) in std::mem::take(&mut self.releasable) {
            if !self.peers.contains_key(&peer) {
                continue;
            }
            let mut acks = Vec::new();
            for v in verdicts {
                match v {
                    Verdict::Stored(id) => acks.push(id),
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
            Some((_, carry)) => Link::resume(now, peer, role, cursor, budgets, carry),
            None => Link::new(now, peer, role, cursor, budgets),
        };
        self.peers.insert(peer, link);
        self.seen.insert(peer);
        let mut reach: Vec<NodeId> = vec![self.cfg.me];
        if self.cfg.role == Role::Hub {
            reach.extend(self.cfg.serves.iter().filter(|n| **n != peer));
        }
        // Reach first: the peer starts sending when it sees Hello, and must know our reach by then.
        self.send(peer, Class::Urgent, &Frame::Reach(reach));
        let hello = Hello { v: LINK_VERSION, recovering: self.recovering };
        self.send(peer, Class::Urgent, &Frame::Hello(hello));
        Ok(())
    }

    /// The link to `peer` is down. Unacknowledged messages are resent from its cursor on the
    /// next connect; its refusals so far are journalled.
    ///
    /// # Errors
    /// Storage errors only.
    pub fn disconnect(&mut self, peer: &NodeId) -> R<S> {
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
                self.store.record(event).map_err(RelayError::Store)?;
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
        match frame {
            Frame::Hello(h) => {
                if h.v != LINK_VERSION {
                    let detail = format!(
                        "link protocol version {} is not supported (this node speaks {LINK_VERSION})",
                        h.v
                    );
                    self.refuse(peer, None, RejectReason::UnsupportedVersion, detail.clone())?;
                    self.drop_link(&peer);
                    self.out.push_back(Output::Close { peer, reason: detail, abusive: false });
                    return Ok(());
                }
                let Some(p) = self.peer(&peer) else { return Ok(()) };
                p.hello = true;
                // A restored peer is answered once per link: asking again costs it nothing and
                // would make this node send every head again.
                if h.recovering && !std::mem::replace(&mut p.recovery_answered, true) {
                    self.answer_recovery(peer)?;
                }
                self.pump(peer)
            }
            Frame::Reach(nodes) => {
                // A member believes what a hub reaches only from the hubs it is configured to
                // use; a stranger's claims would draw its direct messages away.
                let me_member = self.cfg.role != Role::Hub;
                let configured = self.cfg.configured_peers.contains(&peer);
                if let Some(p) = self.peer(&peer) {
                    let hub = p.role == Role::Hub && (!me_member || configured);
                    // Each announcement replaces the last (bounded by the frame's list cap).
                    p.reach = nodes.into_iter().filter(|n| *n == peer || hub).chain([peer]).collect();
                    p.reach_known = true;
                }
                self.pump(peer)
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
                self.drop_link(&peer);
                let reason = format!("peer did not acknowledge a message after {MAX_SENDS} sends");
                self.out.push_back(Output::Close { peer, reason, abusive: false });
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
        self.peers.values().filter_map(Link::next_deadline).min()
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
        if self.recovering {
            return Err(PublishError::Recovering);
        }
        let feed = match p.audience {
            Audience::Channel { id, .. } => FeedId(id.0),
            Audience::Direct(to) => {
                let mut ids: Vec<NodeId> = to.iter().map(|(n, _)| *n).collect();
                ids.sort();
                crate::envelope::direct_feed_id(&ids)
            }
        };
        let me = self.cfg.me;
        let head = self.store.head(&me, &feed).map_err(PublishError::Store)?.unwrap_or(EMPTY_HEAD);
        if head.frozen {
            return Err(PublishError::Frozen);
        }
        let prev = match head.top {
            0 => None,
            top => self.store.slot(&me, &feed, top).map_err(PublishError::Store)?.map(|s| s.id),
        };
        // A peer reported a sequence number of this feed that this node does not hold yet: it
        // was asked for those messages and authors only once it has them (never a fork).
        match self.own_floor.get(&feed) {
            Some(floor) if *floor > head.top => return Err(PublishError::Recovering),
            Some(_) => {
                self.own_floor.remove(&feed);
            }
            None => {}
        }
        let draft = Draft {
            audience: p.audience,
            seq: head.top + 1,
            prev,
            created: now,
            expires: now.plus_millis(p.ttl_ms),
            priority: p.priority,
            marking: p.marking,
            body: p.body,
            personal: p.personal,
        };
        let sealed = message::seal(rng, key, &draft)?;
        let env = Envelope::verify_cached(&sealed.bytes, &mut self.keys)
            .map_err(|e| PublishError::Seal(SealError::Header(e)))?;
        self.accept(None, 0, &env, &sealed.bytes).map_err(|RelayError::Store(e)| PublishError::Store(e))?;
        Ok(sealed)
    }

    // ---- incoming messages --------------------------------------------------------------

    fn handle_msg(&mut self, peer: NodeId, m: Msg) -> R<S> {
        // Cheap refusals first: the rate, then a replay of what is held (by an id read without
        // verifying), then the hop count; the signature check comes last.
        let id = Envelope::peek_id(&m.env);
        let now = self.now;
        if !self.peer(&peer).is_some_and(|p| p.take_message(now, m.env.len())) {
            let detail = format!("over the per-peer rate ({} bytes refused)", m.env.len());
            return self.refuse(peer, id, RejectReason::RateLimited, detail);
        }
        if let Some(id) = id {
            if self.store.meta(&id).map_err(RelayError::Store)?.is_some() {
                // A resend after a lost acknowledgement, or a replay. Answered once the store
                // is durable, like an acknowledgement: a sender takes it as one.
                self.pending_acks.entry(peer).or_default().push(Verdict::Held(id));
                return self.strike(peer, strike_weight(RejectReason::Duplicate, m.hop > 0));
            }
        }
        if m.hop >= MAX_HOPS {
            let detail = format!("hop count {} reached the limit of {MAX_HOPS}", m.hop);
            return self.refuse(peer, id, RejectReason::HopLimit, detail);
        }
        let env = match Envelope::verify_cached(&m.env, &mut self.keys) {
            Ok(e) => e,
            Err(e) => {
                let reason = match e {
                    EnvelopeError::Payload(_)
                    | EnvelopeError::Malformed(_)
                    | EnvelopeError::NotDeterministic => RejectReason::Malformed,
                    EnvelopeError::TooLarge { .. } => RejectReason::Oversize,
                    _ => RejectReason::Invalid,
                };
                return self.refuse(peer, None, reason, e.to_string());
            }
        };
        let id = env.id();
        if self.store.meta(&id).map_err(RelayError::Store)?.is_some() {
            // Held, though not in the canonical layout peek_id reads (cannot happen for bytes
            // that verified; kept so a duplicate is never stored twice).
            self.pending_acks.entry(peer).or_default().push(Verdict::Held(id));
            return Ok(());
        }
        let h = env.header();
        // Our own messages we do not hold (learned back after a restore, or a gap filled) are
        // always taken, even expired: they tell us which sequence numbers are used.
        let own = h.author == self.cfg.me;
        if h.expires <= self.now && !own {
            return self.refuse(peer, Some(id), RejectReason::Expired, format!("expired at {}", h.expires));
        }
        // A message "from the future" would outlive the lifetime limit here.
        if h.created > self.now.plus_millis(MAX_CLOCK_SKEW_MS) && !own {
            let detail = format!(
                "created at {}, more than {MAX_CLOCK_SKEW_MS} ms ahead of this node's clock",
                h.created
            );
            return self.refuse(peer, Some(id), RejectReason::Invalid, detail);
        }
        // Whether the peer passed on someone else's message: membership and routes are then
        // refusals it may not have been able to foresee.
        let relayed = h.author != peer;
        // Storage is earned: a direct message must name at least one node this network knows
        // (this node, a peer it has seen, a member it serves, a node a hub announces, a channel
        // member), or junk feeds to made-up recipients would be stored and passed on.
        if let Feed::Direct(to) = &h.feed {
            if !own && !to.iter().any(|s| self.is_known(&s.to)) {
                let detail = format!("none of its {} recipients is a node this network knows", to.len());
                return self.refuse_relayed(peer, Some(id), RejectReason::Unroutable, detail, relayed);
            }
        }
        if let Feed::Channel(c) = &h.feed {
            match self.channel(&c.id) {
                None => {
                    let detail = format!("unknown channel {}", c.id.short());
                    return self.refuse_relayed(peer, Some(id), RejectReason::Unroutable, detail, relayed);
                }
                Some(ch) if !ch.members.contains(&h.author) => {
                    let detail = format!("{} is not a member of channel {}", h.author.short(), c.id.short());
                    return self.refuse_relayed(peer, Some(id), RejectReason::NotAuthorized, detail, relayed);
                }
                Some(_) => {}
            }
        }
        let accepted = self.accept(Some(peer), m.hop, &env, &m.env)?;
        if accepted {
            self.pending_acks.entry(peer).or_default().push(Verdict::Stored(id));
        }
        Ok(())
    }

    /// Feed checks, then store and fan out. Returns whether the message was stored.
    fn accept(
        &mut self,
        from: Option<NodeId>,
        hop: u8,
        env: &Envelope,
        bytes: &[u8],
    ) -> Result<bool, RelayError<S::Error>> {
        let h = env.header();
        let (author, feed, seq, id) = (h.author, h.feed.id(), h.seq, env.id());
        let head = self.store.head(&author, &feed).map_err(RelayError::Store)?.unwrap_or(EMPTY_HEAD);
        let peer = from.unwrap_or(self.cfg.me);
        if head.frozen {
            return self
                .refuse(peer, Some(id), RejectReason::FeedFrozen, "feed frozen after a fork".into())
                .map(|_| false);
        }
        // Equivocation: another id at this seq, or neighbours whose prev links disagree.
        let here = self.store.slot(&author, &feed, seq).map_err(RelayError::Store)?;
        let below =
            if seq > 1 { self.store.slot(&author, &feed, seq - 1).map_err(RelayError::Store)? } else { None };
        let above = self.store.slot(&author, &feed, seq.saturating_add(1)).map_err(RelayError::Store)?;
        let fork = match (here, below, above) {
            (Some(s), _, _) if s.id != id => Some((seq, s.id)),
            (_, Some(b), _) if Some(b.id) != h.prev => Some((seq - 1, b.id)),
            (_, _, Some(a)) if a.prev != Some(id) => Some((seq, a.prev.unwrap_or(MessageId([0; 32])))),
            _ => None,
        };
        if let Some((at, existing)) = fork {
            let event = Event::Fork { author, seq: at, existing, conflicting: id };
            self.store
                .set_head(&author, &feed, HeadRec { frozen: true, ..head }, event)
                .map_err(RelayError::Store)?;
            self.out.push_back(Output::Fork { author, seq: at });
            return self
                .refuse(
                    peer,
                    Some(id),
                    RejectReason::Fork,
                    format!("seq {at} already holds {}", existing.short()),
                )
                .map(|_| false);
        }
        // Advance the contiguous head over what is now held.
        let mut new = HeadRec { top: head.top.max(seq), ..head };
        if seq == head.seq + 1 {
            new.seq = seq;
            new.id = Some(id);
            while let Some(next) = self.store.slot(&author, &feed, new.seq + 1).map_err(RelayError::Store)? {
                new.seq += 1;
                new.id = Some(next.id);
            }
        }
        let (channel, recipients) = match &h.feed {
            Feed::Channel(c) => (Some(c.id), Vec::new()),
            Feed::Direct(to) => (None, to.iter().map(|s| s.to).collect()),
        };
        let inbox = author != self.cfg.me
            && match channel {
                Some(c) => self.channel(&c).is_some_and(|ch| ch.members.contains(&self.cfg.me)),
                None => recipients.contains(&self.cfg.me),
            };
        let mut events = vec![match from {
            None => Event::Authored { id },
            Some(p) => Event::Received { id, from: p },
        }];
        if inbox {
            events.push(Event::Delivered { id });
        }
        let gap = (new.seq + 1 < seq).then(|| (new.seq + 1, seq - 1));
        if let Some((gfrom, gto)) = gap {
            events.push(Event::Gap { author, feed, from: gfrom, to: gto });
        }
        let meta = MsgMeta {
            hop,
            seq,
            feed,
            from,
            local: 0,
            author,
            channel,
            expires: h.expires,
            priority: h.priority,
            recipients,
        };
        self.store
            .insert(Insert {
                id,
                env: bytes,
                meta,
                slot: SlotRec { id, prev: h.prev },
                head: new,
                inbox,
                events,
            })
            .map_err(RelayError::Store)?;
        if inbox {
            self.out.push_back(Output::Delivered(id));
        }
        if let (Some((gfrom, gto)), Some(p)) = (gap, from) {
            self.out.push_back(Output::Gap { author, feed, from: gfrom, to: gto });
            self.send(p, Class::Urgent, &Frame::Want(Want { to: gto, feed, from: gfrom, author }));
        }
        self.fan_out()?;
        Ok(true)
    }

    /// Offers a newly stored message to every connected peer.
    fn fan_out(&mut self) -> R<S> {
        let peers: Vec<NodeId> = self.peers.keys().copied().collect();
        for peer in peers {
            self.pump(peer)?;
        }
        Ok(())
    }

    // ---- outgoing delivery ---------------------------------------------------------------

    /// Sends what the peer still lacks: flash messages first, then the rest oldest first, up to
    /// the window.
    fn pump(&mut self, peer: NodeId) -> R<S> {
        self.pump_flash(peer)?;
        loop {
            let Some(p) = self.peers.get(&peer) else { return Ok(()) };
            if !p.hello || !p.reach_known || !p.has_room(self.cfg.window, self.cfg.window_bytes) {
                break;
            }
            let batch = self.store.log_after(p.next, 64).map_err(RelayError::Store)?;
            if batch.is_empty() {
                break;
            }
            for (local, id) in batch {
                let Some(p) = self.peer(&peer) else { return Ok(()) };
                p.next = local;
                if p.is_in_flight(local) || p.done.contains(&local) {
                    continue;
                }
                let meta = self.store.meta(&id).map_err(RelayError::Store)?;
                let wanted = meta.is_some_and(|m| m.expires > self.now && self.needs(&peer, &m));
                if wanted {
                    self.send_msg(peer, local, id)?;
                } else if let Some(p) = self.peer(&peer) {
                    p.done.insert(local);
                }
                if self.peers.get(&peer).is_none_or(|p| !p.has_room(self.cfg.window, self.cfg.window_bytes)) {
                    break;
                }
            }
        }
        self.advance_cursor(peer, Vec::new())
    }

    /// Flash messages above the peer's cursor go before its routine backlog — on catch-up after
    /// an absence (read from the store's flash index, so also after this node restarted) and
    /// as they arrive. They may take a second window beside the routine one: a full window of
    /// routine messages never holds a flash back.
    fn pump_flash(&mut self, peer: NodeId) -> R<S> {
        let (window, window_bytes) = (self.cfg.window, self.cfg.window_bytes);
        let Some(p) = self.peers.get(&peer) else { return Ok(()) };
        if !p.hello || !p.reach_known {
            return Ok(());
        }
        let from = p.next.max(p.flash_seen);
        for (local, id) in self.store.flash_after(from, window).map_err(RelayError::Store)? {
            let Some(p) = self.peer(&peer) else { return Ok(()) };
            if !p.has_room(2 * window, 2 * window_bytes) {
                break;
            }
            p.flash_seen = local;
            if p.is_in_flight(local) || p.done.contains(&local) {
                continue;
            }
            let meta = self.store.meta(&id).map_err(RelayError::Store)?;
            if meta.is_some_and(|m| m.expires > self.now && self.needs(&peer, &m)) {
                self.send_msg(peer, local, id)?;
            }
        }
        Ok(())
    }

    fn send_msg(&mut self, peer: NodeId, local: u64, id: MessageId) -> R<S> {
        let (Some(env), Some(meta)) = (
            self.store.envelope(&id).map_err(RelayError::Store)?,
            self.store.meta(&id).map_err(RelayError::Store)?,
        ) else {
            if let Some(p) = self.peer(&peer) {
                p.done.insert(local);
            }
            return Ok(());
        };
        let hop = outgoing_hop(&meta);
        let due = self.now.plus_millis(self.cfg.resend_after_ms);
        let Some(p) = self.peer(&peer) else { return Ok(()) };
        p.sent(local, id, env.len(), due);
        let frame = crate::wire::encode_msg(&env, hop);
        self.out.push_back(Output::Send { peer, class: Class::of(meta.priority), frame });
        Ok(())
    }

    /// Whether `peer` should receive a message: interest routing.
    fn needs(&self, peer: &NodeId, m: &MsgMeta) -> bool {
        let Some(p) = self.peers.get(peer) else { return false };
        if m.from == Some(*peer) || m.author == *peer {
            return false;
        }
        // The next hop would refuse it: a relay never passes on what it can tell is refused.
        if outgoing_hop(m) >= MAX_HOPS {
            return false;
        }
        match m.channel {
            Some(c) => {
                let Some(ch) = self.channel(&c) else { return false };
                ch.members.contains(peer)
                    || (p.role == Role::Hub
                        && p.reach.iter().any(|n| {
                            *n != self.cfg.me
                                && n != &m.author
                                && ch.members.contains(n)
                                && Some(*n) != m.from
                        }))
            }
            None => m.recipients.iter().any(|r| {
                *r == *peer
                    || (*r != self.cfg.me
                        && !self.peers.contains_key(r)
                        && (p.reach.contains(r)
                            || (p.role == Role::Hub
                                && self.cfg.role != Role::Hub
                                && self.cfg.configured_peers.contains(peer)
                                && !self.any_peer_reaches(r))))
            }),
        }
    }

    /// Whether `n` is a node this network knows, as far as this node can tell.
    fn is_known(&self, n: &NodeId) -> bool {
        *n == self.cfg.me
            || self.seen.contains(n)
            || self.cfg.serves.contains(n)
            || self.any_peer_reaches(n)
            || self.cfg.channels.iter().any(|c| c.members.contains(n))
    }

    fn any_peer_reaches(&self, r: &NodeId) -> bool {
        self.peers.values().any(|p| p.reach.contains(r))
    }

    fn handle_ack(&mut self, peer: NodeId, ids: &[MessageId]) -> R<S> {
        let mut acked = Vec::new();
        for id in ids {
            if let Some(meta) = self.store.meta(id).map_err(RelayError::Store)? {
                let Some(p) = self.peer(&peer) else { return Ok(()) };
                if p.finish(meta.local) {
                    acked.push(*id);
                }
            }
        }
        self.advance_cursor(peer, acked)?;
        self.pump(peer)
    }

    fn handle_reject(&mut self, peer: NodeId, r: Reject) -> R<S> {
        if let Some(id) = r.id {
            if r.reason.is_final() {
                // The peer will never take it (or already has it): done for this peer.
                return self.handle_ack(peer, &[id]);
            }
        }
        Ok(())
    }

    /// Moves the cursor over finished positions and notes acknowledged ids; both are written
    /// at the next commit.
    fn advance_cursor(&mut self, peer: NodeId, acked: Vec<MessageId>) -> R<S> {
        let old = self.cursor_of(&peer)?;
        let Some(p) = self.peers.get_mut(&peer) else { return Ok(()) };
        let mut c = old;
        while p.done.remove(&(c + 1)) {
            c += 1;
        }
        if c != old || !acked.is_empty() {
            let entry = self.dirty_cursors.entry(peer).or_insert((old, Vec::new()));
            entry.0 = c;
            entry.1.extend(acked);
        }
        Ok(())
    }

    /// A peer's cursor, including moves not yet written.
    fn cursor_of(&self, peer: &NodeId) -> Result<u64, RelayError<S::Error>> {
        match self.dirty_cursors.get(peer) {
            Some((c, _)) => Ok(*c),
            None => self.store.cursor(peer).map_err(RelayError::Store),
        }
    }

    // ---- recovery and gap filling --------------------------------------------------------

    /// A restored peer asks for its own feed heads: send the top message of each of its feeds
    /// we hold, then the heads.
    fn answer_recovery(&mut self, peer: NodeId) -> R<S> {
        let heads = self.store.heads_of(&peer).map_err(RelayError::Store)?;
        let mut out = Vec::new();
        let now = self.now;
        for (feed, h) in heads.into_iter().take(crate::wire::MAX_HEADS) {
            if let Some(slot) = self.store.slot(&peer, &feed, h.top).map_err(RelayError::Store)? {
                if let Some(env) = self.store.envelope(&slot.id).map_err(RelayError::Store)? {
                    // Budgeted like wants; a head whose message is not sent is still reported,
                    // and the peer asks for the message itself.
                    if self.peer(&peer).is_some_and(|p| p.take_answer(now, env.len())) {
                        self.send(peer, Class::Urgent, &Frame::Msg(Msg { env, hop: 0 }));
                    }
                }
            }
            out.push(FeedHead { seq: h.top, feed, author: peer });
        }
        self.send(peer, Class::Urgent, &Frame::Heads(out));
        Ok(())
    }

    fn handle_heads(&mut self, peer: NodeId, heads: &[FeedHead]) -> R<S> {
        // Heads are unsigned claims: only the peers this node is configured to use are
        // believed, or a stranger could claim a huge sequence number and block this node's
        // publishing in that feed for good. Anyone else's heads change nothing.
        if !self.recovering || !self.cfg.configured_peers.contains(&peer) {
            return Ok(());
        }
        let me = self.cfg.me;
        let mut mine = 0;
        for h in heads.iter().filter(|h| h.author == me) {
            mine += 1;
            let floor = self.own_floor.entry(h.feed).or_insert(0);
            *floor = (*floor).max(h.seq);
            // Ask the reporter for what this node lacks of its own feed (a window at a time).
            let top = self.store.head(&me, &h.feed).map_err(RelayError::Store)?.map_or(0, |x| x.top);
            if h.seq > top {
                let to = h.seq.min(top + self.cfg.window as u64);
                self.send(
                    peer,
                    Class::Urgent,
                    &Frame::Want(Want { to, feed: h.feed, from: top + 1, author: me }),
                );
            }
        }
        self.recovering = false;
        self.store.record(Event::Recovered { from: peer, feeds: mine }).map_err(RelayError::Store)?;
        self.out.push_back(Output::Recovered { from: peer });
        let peers: Vec<NodeId> = self.peers.keys().copied().collect();
        for p in peers {
            let hello = Frame::Hello(Hello { v: LINK_VERSION, recovering: false });
            self.send(p, Class::Urgent, &hello);
        }
        Ok(())
    }

    fn handle_want(&mut self, peer: NodeId, w: Want) -> R<S> {
        let now = self.now;
        // At most one window per request; replies are not tracked (the requester asks again).
        // A request costs by the range it makes this node look up, not one token flat.
        if w.from > w.to {
            return Ok(());
        }
        let to = w.to.min(w.from.saturating_add(self.cfg.window as u64 - 1));
        let cost = 1 + (to - w.from) / WANT_SEQS_PER_TOKEN;
        if !self.peer(&peer).is_some_and(|p| p.take_requests(now, cost)) {
            return self.refuse(
                peer,
                None,
                RejectReason::RateLimited,
                "over the per-peer request rate".into(),
            );
        }
        for seq in w.from..=to {
            let Some(slot) = self.store.slot(&w.author, &w.feed, seq).map_err(RelayError::Store)? else {
                continue;
            };
            let Some(meta) = self.store.meta(&slot.id).map_err(RelayError::Store)? else { continue };
            let entitled = self.needs(&peer, &meta) || meta.from == Some(peer) || w.author == peer;
            if entitled && (meta.expires > self.now || w.author == peer) {
                if let Some(env) = self.store.envelope(&slot.id).map_err(RelayError::Store)? {
                    // What a peer can make this node send is budgeted in bytes: the rest of the
                    // range is for a later request.
                    if !self.peer(&peer).is_some_and(|p| p.take_answer(now, env.len())) {
                        break;
                    }
                    let frame = crate::wire::encode_msg(&env, outgoing_hop(&meta));
                    self.out.push_back(Output::Send { peer, class: Class::of(meta.priority), frame });
                }
            }
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
            let event = Event::Rejected { from: peer, reason, count: 1, first: id, last: id };
            return self.store.record(event).map_err(RelayError::Store);
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
        self.send(peer, Class::Urgent, &Frame::Reject(Reject { id, detail, reason }));
        self.strike(peer, strike_weight(reason, relayed))
    }

    fn strike(&mut self, peer: NodeId, weight: u32) -> R<S> {
        let (now, limit) = (self.now, self.cfg.abuse_limit);
        let Some(p) = self.peers.get_mut(&peer) else { return Ok(()) };
        if p.strike(now, weight, limit) {
            let reason = format!("abusive: more than {limit} refused messages' worth within a minute");
            self.drop_link(&peer);
            self.out.push_back(Output::Close { peer, reason, abusive: true });
        }
        Ok(())
    }

    fn send(&mut self, peer: NodeId, class: Class, frame: &Frame) {
        self.out.push_back(Output::Send { peer, class, frame: frame.encode() });
    }

    fn channel(&self, id: &ChannelId) -> Option<&ChannelConfig> {
        self.cfg.channels.iter().find(|c| c.id == *id)
    }

    /// Ends the link to `peer`, keeping what carries over to its next one.
    fn drop_link(&mut self, peer: &NodeId) {
        if let Some(link) = self.peers.remove(peer) {
            self.retired.insert(*peer, (self.now, link.carry()));
        }
    }

    fn peer(&mut self, peer: &NodeId) -> Option<&mut Link> {
        self.peers.get_mut(peer)
    }
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// Stored by this batch: acknowledged.
    Stored(MessageId),
    /// Already held (perhaps stored by this very batch): refused as a duplicate, which the
    /// sender takes as an acknowledgement, so it too waits until the store is durable.
    Held(MessageId),
}

/// The hop count a stored message carries when this node passes it on.
fn outgoing_hop(m: &MsgMeta) -> u8 {
    if m.from.is_some() { m.hop.saturating_add(1) } else { 0 }
}

/// The link protocol version this node speaks.
pub const LINK_VERSION: u16 = 1;

/// Sends of one message to one peer before the peer is considered stuck and disconnected.
const MAX_SENDS: u32 = 5;

const EMPTY_HEAD: HeadRec = HeadRec { id: None, seq: 0, top: 0, frozen: false };

#[cfg(test)]
mod tests;

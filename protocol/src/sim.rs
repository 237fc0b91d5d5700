//! A deterministic N-node simulator over the sans-IO [`Relay`]: virtual clock, per-link delay,
//! link failures ("loss": QUIC never loses stream data, it loses connections), duplicated
//! frames, partitions and crash-restarts. Same seed, same run.
//!
//! Durable and volatile state are apart, as in the node: the relay keeps what it handled in
//! memory and hands out one write batch per group commit ([`Output::Commit`]); the store (the
//! "disk") receives a batch only when its commit completes, a random time later. A crash drops
//! the relay and everything it held in memory; a batch whose commit was under way is kept or
//! lost at random, as a real disk may or may not have written it. So a missing commit, an
//! acknowledgement released before its commit, or a message passed on before it was durable
//! shows up as a lost message or a reused sequence number.
//!
//! ```
//! use godwit_protocol::sim::{Sim, SimBuilder};
//! use godwit_protocol::relay::Role;
//! let mut b = SimBuilder::new(7);
//! let hub = b.node(Role::Hub);
//! let (a, c) = (b.node(Role::Member), b.node(Role::Member));
//! b.link(hub, a);
//! b.link(hub, c);
//! let ch = b.channel(&[hub, a, c]);
//! let mut sim = b.build();
//! let id = sim.publish_channel(a, ch).unwrap();
//! sim.run_for(5_000);
//! assert!(sim.inbox(c).contains(&id));
//! ```

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

use crate::content::{Body, Content, Receipt, ReceiptStatus, Tlp};
use crate::crypto::EpochKey;
use crate::envelope::Priority;
use crate::identity::{EncryptionKey, IdentityKey, NodeId};
use crate::ids::{ChannelId, MessageId};
use crate::message::Audience;
use crate::relay::{
    Batch, ChannelConfig, Class, MemoryStore, Output, Publication, Relay, RelayConfig, Role, Store,
};
use crate::time::Timestamp;

/// Index of a simulated node.
pub type Ix = usize;

/// Builds a simulated network.
#[derive(Debug)]
pub struct SimBuilder {
    seed: u64,
    roles: Vec<Role>,
    links: BTreeSet<(Ix, Ix)>,
    channels: Vec<Vec<Ix>>,
    serves: BTreeMap<Ix, Vec<Ix>>,
}

impl SimBuilder {
    /// A new network; `seed` fixes every random choice.
    pub fn new(seed: u64) -> Self {
        SimBuilder {
            seed,
            roles: Vec::new(),
            links: BTreeSet::new(),
            channels: Vec::new(),
            serves: BTreeMap::new(),
        }
    }
    /// Adds a node.
    pub fn node(&mut self, role: Role) -> Ix {
        self.roles.push(role);
        self.roles.len() - 1
    }
    /// Connects two nodes. A hub linked to a member serves it.
    pub fn link(&mut self, a: Ix, b: Ix) {
        self.links.insert((a.min(b), a.max(b)));
        for (h, m) in [(a, b), (b, a)] {
            if self.roles[h] == Role::Hub && self.roles[m] != Role::Hub {
                self.serves.entry(h).or_default().push(m);
            }
        }
    }
    /// Declares a channel with these members; returns its index.
    pub fn channel(&mut self, members: &[Ix]) -> usize {
        self.channels.push(members.to_vec());
        self.channels.len() - 1
    }
    /// Creates the nodes and brings every link up.
    pub fn build(self) -> Sim {
        let mut rng = ChaCha20Rng::seed_from_u64(self.seed);
        let keys: Vec<(IdentityKey, EncryptionKey)> = self
            .roles
            .iter()
            .map(|_| (IdentityKey::generate(&mut rng), EncryptionKey::generate(&mut rng)))
            .collect();
        let ids: Vec<NodeId> = keys.iter().map(|(k, _)| k.node_id()).collect();
        let channels: Vec<(ChannelConfig, EpochKey)> = self
            .channels
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let mut id = [0u8; 32];
                id[..8].copy_from_slice(&(i as u64 + 1).to_be_bytes());
                let cfg = ChannelConfig { id: ChannelId(id), members: m.iter().map(|x| ids[*x]).collect() };
                (cfg, EpochKey::generate(&mut rng))
            })
            .collect();
        let mut nodes = Vec::new();
        for (ix, (key, enc)) in keys.into_iter().enumerate() {
            let mut cfg = RelayConfig::new(ids[ix], self.roles[ix]);
            cfg.channels = channels.iter().map(|(c, _)| c.clone()).collect();
            cfg.serves =
                self.serves.get(&ix).map(|v| v.iter().map(|m| ids[*m]).collect()).unwrap_or_default();
            cfg.resend_after_ms = 3_000;
            // A node recovers from the nodes it is linked to (its configured peers).
            cfg.configured_peers = self
                .links
                .iter()
                .filter_map(|(a, b)| {
                    if *a == ix {
                        Some(ids[*b])
                    } else if *b == ix {
                        Some(ids[*a])
                    } else {
                        None
                    }
                })
                .collect();
            let relay = Relay::new(cfg.clone(), MemoryStore::new()).expect("the in-memory store never fails");
            nodes.push(SimNode {
                relay,
                key,
                enc,
                syncing: None,
                batches: 0,
                restored: None,
                cfg,
                up: true,
                life: 0,
                dirty: false,
                crashes: 0,
            });
        }
        let mut sim = Sim {
            now: Timestamp(1_795_000_000_000),
            rng,
            nodes,
            ids,
            roles: self.roles,
            links: self.links.iter().map(|l| (*l, LinkState::Down)).collect(),
            channels,
            queue: BinaryHeap::new(),
            fifo: BTreeMap::new(),
            seq: 0,
            epochs: BTreeMap::new(),
            partition: None,
            loss: 0.0,
            duplication: 0.0,
            commit_delay_ms: 2,
            async_publish: false,
            published: BTreeSet::new(),
            delay_ms: (5, 50),
            stats: SimStats::default(),
        };
        let links: Vec<(Ix, Ix)> = sim.links.keys().copied().collect();
        for (a, b) in links {
            sim.schedule(0, Ev::Connect(a, b));
        }
        sim.schedule(1_000, Ev::Tick);
        sim
    }
}

#[derive(Debug)]
struct SimNode {
    relay: Relay<MemoryStore>,
    key: IdentityKey,
    enc: EncryptionKey,
    /// The batch whose commit is under way, and its number.
    syncing: Option<(u64, Batch)>,
    /// Batches handed out so far.
    batches: u64,
    /// The backup the node is restored from at its next restart.
    restored: Option<MemoryStore>,
    cfg: RelayConfig,
    up: bool,
    /// Incremented at every restart: commits scheduled in an earlier life are void.
    life: u64,
    /// Inputs were handled whose outputs are not taken yet.
    dirty: bool,
    /// Crashes so far: a crash while down extends the downtime.
    crashes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LinkState {
    Up,
    Down,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    Connect(Ix, Ix),
    Frame {
        from: Ix,
        to: Ix,
        epoch: u64,
        bytes: Vec<u8>,
    },
    Tick,
    /// The restart after crash number `crash` of node `ix` (a later crash voids it).
    Restart(Ix, u64),
    /// Node `ix` (in its life `life`) takes its outputs, the commit batch among them.
    Commit(Ix, u64),
    /// Batch number `n` handed out by node `ix` is on disk.
    Synced(Ix, u64),
}

/// Counters of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Frames delivered.
    pub frames: u64,
    /// Link resets caused by simulated loss.
    pub resets: u64,
    /// Messages refused by some node.
    pub refused: u64,
}

/// A running simulation.
#[derive(Debug)]
pub struct Sim {
    now: Timestamp,
    rng: ChaCha20Rng,
    nodes: Vec<SimNode>,
    ids: Vec<NodeId>,
    roles: Vec<Role>,
    links: BTreeMap<(Ix, Ix), LinkState>,
    channels: Vec<(ChannelConfig, EpochKey)>,
    queue: BinaryHeap<Reverse<(u64, u64, Ev)>>,
    /// Per directed link and class: when the last frame is delivered (keeps stream order).
    fifo: BTreeMap<(Ix, Ix, Class), u64>,
    seq: u64,
    /// Per link: incremented when it goes down, so frames of a dead connection are dropped.
    epochs: BTreeMap<(Ix, Ix), u64>,
    partition: Option<BTreeSet<Ix>>,
    loss: f64,
    duplication: f64,
    commit_delay_ms: u64,
    async_publish: bool,
    /// Messages whose publication was committed.
    published: BTreeSet<MessageId>,
    delay_ms: (u64, u64),
    stats: SimStats,
}

impl Sim {
    /// The network most tests use: hub A serves members 1 and 2, hub B serves members 3 and 4,
    /// the hubs are linked, and one channel has all six. Returns the simulation, the nodes
    /// `[hub A, hub B, m1, m2, m3, m4]` and the channel.
    pub fn two_regions(seed: u64) -> (Sim, [Ix; 6], usize) {
        let mut b = SimBuilder::new(seed);
        let ha = b.node(Role::Hub);
        let hb = b.node(Role::Hub);
        let ms: Vec<Ix> = (0..4).map(|_| b.node(Role::Member)).collect();
        b.link(ha, hb);
        for (hub, m) in [(ha, ms[0]), (ha, ms[1]), (hb, ms[2]), (hb, ms[3])] {
            b.link(hub, m);
        }
        let ch = b.channel(&[ha, hb, ms[0], ms[1], ms[2], ms[3]]);
        (b.build(), [ha, hb, ms[0], ms[1], ms[2], ms[3]], ch)
    }

    /// The NodeId of node `ix`.
    pub fn id(&self, ix: Ix) -> NodeId {
        self.ids[ix]
    }
    /// Current virtual time.
    pub fn now(&self) -> Timestamp {
        self.now
    }
    /// Counters so far.
    pub fn stats(&self) -> SimStats {
        self.stats
    }
    /// Probability that a frame in flight breaks its link (the link is re-established after a
    /// back-off, as QUIC would).
    pub fn set_loss(&mut self, p: f64) {
        self.loss = p;
    }
    /// Probability that a frame is delivered twice (the relay must be idempotent).
    pub fn set_duplication(&mut self, p: f64) {
        self.duplication = p;
    }
    /// Longest time between handling an input and the group commit that makes it durable, in
    /// milliseconds (each commit waits a random time up to this). A crash in between loses the
    /// input's effects.
    pub fn set_commit_delay(&mut self, ms: u64) {
        self.commit_delay_ms = ms;
    }
    /// Whether a publication returns before it is committed (it is committed with the node's
    /// next group commit, and [`Sim::is_published`] tells when it was): a crash in between loses
    /// it, and the node must not have passed it on — or it would author another message at the
    /// same sequence number after the restart.
    pub fn set_async_publish(&mut self, on: bool) {
        self.async_publish = on;
    }
    /// Whether the publication of message `id` succeeded (it was committed).
    pub fn is_published(&self, id: &MessageId) -> bool {
        self.published.contains(id)
    }
    /// Per-frame delay range in milliseconds.
    pub fn set_delay(&mut self, min_ms: u64, max_ms: u64) {
        self.delay_ms = (min_ms, max_ms.max(min_ms));
    }
    /// Cuts every link between `side` and the rest.
    pub fn partition(&mut self, side: &[Ix]) {
        self.partition = Some(side.iter().copied().collect());
        let links: Vec<(Ix, Ix)> = self.links.keys().copied().collect();
        for (a, b) in links {
            if self.cut(a, b) {
                self.link_down(a, b);
            }
        }
    }
    /// Heals the partition; links come back.
    pub fn heal(&mut self) {
        self.partition = None;
        let links: Vec<(Ix, Ix)> = self.links.keys().copied().collect();
        for (a, b) in links {
            if self.links[&(a, b)] == LinkState::Down {
                {
                    let wait = self.backoff();
                    self.schedule(wait, Ev::Connect(a, b));
                }
            }
        }
    }
    /// Crashes node `ix`: it loses everything not committed and is restarted after `down_ms`.
    pub fn crash(&mut self, ix: Ix, down_ms: u64) {
        self.nodes[ix].up = false;
        // A commit under way may or may not have reached the disk.
        if let Some((_, batch)) = self.nodes[ix].syncing.take() {
            if self.rng.next_u64() % 2 == 0 {
                let _ = self.nodes[ix].relay.store_mut().write(&batch);
            }
        }
        let links: Vec<(Ix, Ix)> = self.links.keys().copied().filter(|(a, b)| *a == ix || *b == ix).collect();
        for (a, b) in links {
            self.link_down(a, b);
        }
        self.nodes[ix].crashes += 1;
        let crash = self.nodes[ix].crashes;
        self.schedule(down_ms, Ev::Restart(ix, crash));
    }
    /// What node `ix` has made durable: a backup taken now.
    pub fn backup(&self, ix: Ix) -> MemoryStore {
        self.nodes[ix].relay.store().clone()
    }

    /// Replaces node `ix` by one restored from `backup`, after `down_ms`; it starts in
    /// recovering mode and must learn its own feed heads from peers before authoring.
    pub fn restore(&mut self, ix: Ix, backup: MemoryStore, down_ms: u64) {
        self.crash(ix, down_ms);
        self.nodes[ix].restored = Some(backup);
        self.nodes[ix].cfg.recovering = true;
    }

    /// Whether node `ix` is still recovering.
    pub fn is_recovering(&self, ix: Ix) -> bool {
        self.nodes[ix].relay.is_recovering()
    }

    /// The head node `ix` holds of `author`'s feed in channel `ch`.
    pub fn channel_head(&self, ix: Ix, author: Ix, ch: usize) -> Option<crate::relay::HeadRec> {
        let feed = crate::ids::FeedId(self.channels[ch].0.id.0);
        self.nodes[ix].relay.store().head(&self.ids[author], &feed).ok().flatten()
    }

    /// Delivers a raw frame body to node `to` as if `from` had sent it; returns the refusals
    /// it caused.
    pub fn inject(&mut self, from: Ix, to: Ix, bytes: &[u8]) -> Vec<Output> {
        let (now, id) = (self.now, self.ids[from]);
        let _ = self.nodes[to].relay.handle_frame(now, id, bytes);
        self.finish_commit(to);
        let mut seen = Vec::new();
        while let Some(out) = self.nodes[to].relay.poll_output() {
            match out {
                Output::Commit(batch) => {
                    let r = &mut self.nodes[to].relay;
                    let _ = r.store_mut().write(&batch);
                    let _ = r.handle_committed();
                }
                Output::Published(id) => {
                    self.published.insert(id);
                }
                other => seen.push(other),
            }
        }
        seen
    }

    /// Node `ix`'s identity key (to forge test messages).
    pub fn key(&self, ix: Ix) -> &IdentityKey {
        &self.nodes[ix].key
    }

    /// The channel id and epoch key of channel `ch`.
    pub fn channel_key(&self, ch: usize) -> (ChannelId, EpochKey) {
        (self.channels[ch].0.id, self.channels[ch].1.clone())
    }

    /// Node `ix` publishes a short alert to channel `ch`; returns its id.
    ///
    /// # Errors
    /// The publish error, as text.
    pub fn publish_channel(&mut self, ix: Ix, ch: usize) -> Result<MessageId, String> {
        self.publish_channel_with(ix, ch, Priority::Routine)
    }
    /// As [`Sim::publish_channel`] with a priority.
    ///
    /// # Errors
    /// The publish error, as text.
    pub fn publish_channel_with(
        &mut self,
        ix: Ix,
        ch: usize,
        priority: Priority,
    ) -> Result<MessageId, String> {
        let (cfg, key) = (&self.channels[ch].0, self.channels[ch].1.clone());
        let audience = Audience::Channel { id: cfg.id, epoch: 1, key: &key };
        self.publish(ix, audience, priority)
    }
    /// Node `ix` publishes a short alert to the signed channel `id` under `epoch` with `key`.
    ///
    /// # Errors
    /// The publish error, as text.
    pub fn publish_in(
        &mut self,
        ix: Ix,
        id: ChannelId,
        epoch: u64,
        key: &EpochKey,
    ) -> Result<MessageId, String> {
        self.publish(ix, Audience::Channel { id, epoch, key }, Priority::Routine)
    }

    /// Node `ix` publishes a signed control record (a channel state, say) in its control feed.
    ///
    /// # Errors
    /// The publish error, as text.
    pub fn publish_control(&mut self, ix: Ix, record: &[u8]) -> Result<MessageId, String> {
        let now = self.now;
        let node = &mut self.nodes[ix];
        if !node.up {
            return Err(format!("node {ix} is down"));
        }
        let ttl = 30 * 86_400_000;
        let sealed = node
            .relay
            .publish_control(now, &node.key, record, ttl, Priority::Flash)
            .map_err(|e| e.to_string())?;
        self.finish_commit(ix);
        self.drain(ix);
        self.finish_commit(ix);
        self.drain(ix);
        Ok(sealed.id)
    }

    /// The epoch of signed channel `id` that node `ix` holds.
    pub fn channel_epoch(&self, ix: Ix, id: &ChannelId) -> Option<u64> {
        self.nodes[ix].relay.channels().head(id).map(|t| t.state.epoch)
    }

    /// Node `ix` sends a direct message to `to`; returns its id.
    ///
    /// # Errors
    /// The publish error, as text.
    pub fn publish_direct(&mut self, ix: Ix, to: Ix) -> Result<MessageId, String> {
        let rcpt = [(self.ids[to], self.nodes[to].enc.public())];
        self.publish(ix, Audience::Direct(&rcpt), Priority::Immediate)
    }
    fn publish(&mut self, ix: Ix, audience: Audience<'_>, priority: Priority) -> Result<MessageId, String> {
        let body = Body::new(Content::Receipt(Receipt {
            at: self.now,
            note: None,
            status: ReceiptStatus::Delivered,
            message: MessageId([7; 32]),
        }));
        let marking = if matches!(audience, Audience::Direct(_)) { Tlp::Red } else { Tlp::Green };
        let p = Publication {
            audience,
            priority,
            marking,
            ttl_ms: 7 * 24 * 3_600_000,
            body: &body,
            personal: None,
        };
        let now = self.now;
        let node = &mut self.nodes[ix];
        if !node.up {
            return Err(format!("node {ix} is down"));
        }
        let sealed = node.relay.publish(now, &mut self.rng, &node.key, &p).map_err(|e| e.to_string())?;
        if self.async_publish {
            // Committed with the node's next group commit, like any input.
            self.schedule_commit(ix);
            return Ok(sealed.id);
        }
        // A publication succeeds once it is committed, as in the node.
        self.finish_commit(ix);
        self.drain(ix);
        self.finish_commit(ix);
        self.drain(ix);
        Ok(sealed.id)
    }
    /// Message ids in node `ix`'s inbox, in delivery order.
    pub fn inbox(&self, ix: Ix) -> Vec<MessageId> {
        self.nodes[ix].relay.inbox().unwrap_or_default()
    }
    /// Every feed head node `ix` holds: author, feed, head.
    pub fn heads(&self, ix: Ix) -> Vec<(NodeId, crate::ids::FeedId, crate::relay::HeadRec)> {
        self.nodes[ix].relay.store().heads()
    }
    /// Node `ix`'s store: what it has committed.
    pub fn store(&self, ix: Ix) -> &MemoryStore {
        self.nodes[ix].relay.store()
    }
    /// Whether node `ix` is up.
    pub fn is_up(&self, ix: Ix) -> bool {
        self.nodes[ix].up
    }
    /// Number of messages node `ix` has committed.
    pub fn held(&self, ix: Ix) -> usize {
        self.nodes[ix].relay.store().len()
    }
    /// Runs until node `ix` has handled an input that is not committed yet (at most `ms` of
    /// virtual time); returns whether it got there. A crash then loses that input's effects.
    pub fn run_until_uncommitted(&mut self, ix: Ix, ms: u64) -> bool {
        self.run_until(ms, |sim| sim.nodes[ix].dirty)
    }

    /// Runs until node `ix` has handed out a batch whose commit is under way (at most `ms` of
    /// virtual time); returns whether it got there. A crash then may or may not keep it.
    pub fn run_until_committing(&mut self, ix: Ix, ms: u64) -> bool {
        self.run_until(ms, |sim| sim.nodes[ix].syncing.is_some())
    }

    /// Handles events until `done` holds (at most `ms` of virtual time); returns whether it did.
    fn run_until(&mut self, ms: u64, done: impl Fn(&Sim) -> bool) -> bool {
        let end = self.now.as_millis() + ms;
        while !done(self) {
            let Some(Reverse((t, _, _))) = self.queue.peek() else { return false };
            if *t > end {
                return false;
            }
            let Some(Reverse((t, _, ev))) = self.queue.pop() else { return false };
            self.now = Timestamp(t);
            self.handle(ev);
        }
        true
    }

    /// Runs for `ms` of virtual time.
    pub fn run_for(&mut self, ms: u64) {
        let end = self.now.as_millis() + ms;
        while let Some(Reverse((t, _, _))) = self.queue.peek() {
            if *t > end {
                break;
            }
            let Some(Reverse((t, _, ev))) = self.queue.pop() else { break };
            self.now = Timestamp(t);
            self.handle(ev);
        }
        self.now = Timestamp(end);
    }

    fn handle(&mut self, ev: Ev) {
        match ev {
            Ev::Connect(a, b) => {
                if !self.nodes[a].up
                    || !self.nodes[b].up
                    || self.cut(a, b)
                    || self.links[&(a, b)] == LinkState::Up
                {
                    return;
                }
                self.links.insert((a, b), LinkState::Up);
                for (x, y) in [(a, b), (b, a)] {
                    let (now, id, role) = (self.now, self.ids[y], self.roles[y]);
                    // The in-memory store cannot fail.
                    let _ = self.nodes[x].relay.connect(now, id, role);
                    // A simulated node's "certificate" is its NodeId.
                    self.nodes[x].relay.record_peer(id, String::new(), id.as_bytes().to_vec());
                }
                self.drain(a);
                self.drain(b);
            }
            Ev::Frame { from, to, epoch, bytes } => {
                let key = (from.min(to), from.max(to));
                if self.links.get(&key) != Some(&LinkState::Up) || epoch != self.link_epoch(key) {
                    return;
                }
                self.stats.frames += 1;
                let (now, id) = (self.now, self.ids[from]);
                let _ = self.nodes[to].relay.handle_frame(now, id, &bytes);
                self.schedule_commit(to);
            }
            Ev::Tick => {
                for ix in 0..self.nodes.len() {
                    if self.nodes[ix].up {
                        let now = self.now;
                        let _ = self.nodes[ix].relay.handle_timeout(now);
                        self.schedule_commit(ix);
                    }
                }
                self.schedule(1_000, Ev::Tick);
            }
            Ev::Commit(ix, life) => {
                if self.nodes[ix].up && self.nodes[ix].life == life {
                    self.nodes[ix].dirty = false;
                    self.drain(ix);
                }
            }
            Ev::Synced(ix, n) => {
                if self.nodes[ix].up && self.nodes[ix].syncing.as_ref().is_some_and(|(k, _)| *k == n) {
                    self.finish_commit(ix);
                    self.drain(ix);
                }
            }
            Ev::Restart(ix, crash) => {
                let n = &mut self.nodes[ix];
                if n.crashes != crash {
                    return;
                }
                // Everything not committed is gone: the relay restarts from its store (or from
                // the backup it is restored from).
                let store = match n.restored.take() {
                    Some(backup) => backup,
                    None => std::mem::take(n.relay.store_mut()),
                };
                let certs: Vec<(NodeId, Vec<u8>)> =
                    store.peer_certs.iter().map(|(p, c)| (*p, c.clone())).collect();
                n.relay = Relay::new(n.cfg.clone(), store).expect("the in-memory store never fails");
                // As the node does: the certificates of its members, from its peer records.
                for (peer, cert) in certs {
                    n.relay.add_member_cert(peer, &cert);
                }
                n.cfg.recovering = false;
                n.up = true;
                n.life += 1;
                n.dirty = false;
                let links: Vec<(Ix, Ix)> =
                    self.links.keys().copied().filter(|(a, b)| *a == ix || *b == ix).collect();
                for (a, b) in links {
                    {
                        let wait = self.backoff();
                        self.schedule(wait, Ev::Connect(a, b));
                    }
                }
            }
        }
    }

    /// Schedules node `ix`'s next group commit, unless one is pending; its outputs wait for it.
    fn schedule_commit(&mut self, ix: Ix) {
        if self.nodes[ix].dirty {
            return;
        }
        self.nodes[ix].dirty = true;
        let wait = self.rng.next_u64() % (self.commit_delay_ms + 1);
        let life = self.nodes[ix].life;
        self.schedule(wait, Ev::Commit(ix, life));
    }

    /// The commit under way reaches the disk: the store takes the batch, the relay hears of it.
    fn finish_commit(&mut self, ix: Ix) {
        let n = &mut self.nodes[ix];
        if let Some((_, batch)) = n.syncing.take() {
            // The in-memory store never fails.
            let _ = n.relay.store_mut().write(&batch);
            let _ = n.relay.handle_committed();
        }
    }

    fn drain(&mut self, ix: Ix) {
        // Links that broke during this drain: what was still to be sent on them is lost with
        // the connection, as in QUIC.
        let mut broken = BTreeSet::new();
        while let Some(out) = self.nodes[ix].relay.poll_output() {
            match out {
                Output::Send { peer, class, frame } => {
                    let Some(to) = self.ids.iter().position(|i| *i == peer) else { continue };
                    let key = (ix.min(to), ix.max(to));
                    if broken.contains(&to) || self.links.get(&key) != Some(&LinkState::Up) {
                        continue;
                    }
                    if self.rng.next_u64() as f64 / u64::MAX as f64 <= self.loss {
                        self.stats.resets += 1;
                        self.link_down(key.0, key.1);
                        broken.insert(to);
                        let wait = self.backoff();
                        self.schedule(wait, Ev::Connect(key.0, key.1));
                        continue;
                    }
                    let (lo, hi) = self.delay_ms;
                    let delay = lo + self.rng.next_u64() % (hi - lo + 1);
                    let at = (self.now.as_millis() + delay)
                        .max(self.fifo.get(&(ix, to, class)).copied().unwrap_or(0));
                    self.fifo.insert((ix, to, class), at);
                    let epoch = self.link_epoch(key);
                    if self.rng.next_u64() as f64 / u64::MAX as f64 <= self.duplication {
                        self.seq += 1;
                        let copy = Ev::Frame { from: ix, to, epoch, bytes: frame.clone() };
                        self.queue.push(Reverse((at, self.seq, copy)));
                    }
                    self.seq += 1;
                    self.queue.push(Reverse((at, self.seq, Ev::Frame { from: ix, to, epoch, bytes: frame })));
                }
                Output::Close { peer, .. } => {
                    if let Some(to) = self.ids.iter().position(|i| *i == peer) {
                        self.link_down(ix.min(to), ix.max(to));
                    }
                }
                Output::Refused { .. } => self.stats.refused += 1,
                Output::Vouch { peer, certs } => {
                    // The shell's check, simulated: a "certificate" (a NodeId) counts when the
                    // vouching hub serves that member.
                    let Some(hub) = self.ids.iter().position(|i| *i == peer) else { continue };
                    let members: Vec<NodeId> = certs
                        .iter()
                        .filter_map(|c| <[u8; 32]>::try_from(c.as_slice()).ok())
                        .filter_map(|b| NodeId::from_bytes(b).ok())
                        .filter(|m| self.nodes[hub].cfg.serves.contains(m))
                        .collect();
                    let _ = self.nodes[ix].relay.handle_vouched(peer, members);
                }
                Output::Published(id) => {
                    self.published.insert(id);
                }
                Output::Commit(batch) => {
                    let n = &mut self.nodes[ix];
                    n.batches += 1;
                    let number = n.batches;
                    n.syncing = Some((number, batch));
                    let wait = self.rng.next_u64() % (self.commit_delay_ms + 1);
                    self.schedule(wait, Ev::Synced(ix, number));
                }
                _ => {}
            }
        }
    }

    fn link_down(&mut self, a: Ix, b: Ix) {
        if self.links.insert((a, b), LinkState::Down) == Some(LinkState::Up) {
            // The in-memory store never fails.
            let _ = self.nodes[a].relay.disconnect(&self.ids[b], "partition");
            let _ = self.nodes[b].relay.disconnect(&self.ids[a], "partition");
            // Frames still in flight on the old connection are dropped with it.
            *self.epochs.entry((a, b)).or_insert(0) += 1;
        }
    }

    fn link_epoch(&self, key: (Ix, Ix)) -> u64 {
        self.epochs.get(&key).copied().unwrap_or(0)
    }

    fn cut(&self, a: Ix, b: Ix) -> bool {
        self.partition.as_ref().is_some_and(|side| side.contains(&a) != side.contains(&b))
    }

    fn backoff(&mut self) -> u64 {
        500 + self.rng.next_u64() % 1_500
    }

    fn schedule(&mut self, after_ms: u64, ev: Ev) {
        self.seq += 1;
        self.queue.push(Reverse((self.now.as_millis() + after_ms, self.seq, ev)));
    }
}

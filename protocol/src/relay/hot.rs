//! The relay's hot state: the recent tail of the log (decoded metadata beside shared envelope
//! bytes), feed heads, delivery cursors and the write batch being built. Decisions read here;
//! the store is the durable copy, read only for what has left the tail.
//!
//! Everything not yet committed is in the hot state (entries are evicted only once the batch
//! that wrote them was committed), so reads through it see every write, committed or not.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use super::store::{Batch, HeadRec, MsgMeta, SlotRec, Store, Write};
use crate::audit::Event;
use crate::envelope::Priority;
use crate::identity::NodeId;
use crate::ids::{FeedId, MessageId};

/// A held message as the relay works with it.
#[derive(Debug)]
pub(super) struct Held {
    pub(super) id: MessageId,
    pub(super) meta: MsgMeta,
    pub(super) env: Arc<[u8]>,
    /// The batch generation that wrote it (0: read back from the store, so committed).
    generation: u64,
}

/// Most feed heads kept in memory beyond those not yet committed.
const HEADS_HOT_MAX: usize = 65_536;

#[derive(Debug)]
pub(super) struct Hot {
    /// The recent log tail by position.
    tail: BTreeMap<u64, Arc<Held>>,
    by_id: HashMap<MessageId, u64>,
    slots: HashMap<(NodeId, FeedId, u64), SlotRec>,
    /// Inbox entries not yet committed, with their generation.
    inbox: Vec<(u64, MessageId)>,
    flash: BTreeSet<u64>,
    /// Every position at or above this one is in the tail.
    tail_from: u64,
    tail_bytes: usize,
    tail_budget: usize,
    /// Feed heads, with the generation that wrote them (0: read from the store).
    heads: HashMap<(NodeId, FeedId), (HeadRec, u64)>,
    /// Delivery cursors as written (moves not yet written are the relay's `dirty_cursors`).
    cursors: HashMap<NodeId, u64>,
    log_last: u64,
    /// The batch being built, and its generation.
    pub(super) batch: Batch,
    generation: u64,
    /// The generation handed out for commit and not yet reported committed.
    pub(super) in_commit: Option<u64>,
    committed: u64,
}

impl Hot {
    pub(super) fn new<S: Store>(store: &S, tail_budget: usize) -> Result<Hot, S::Error> {
        let log_last = store.log_last()?;
        Ok(Hot {
            tail: BTreeMap::new(),
            by_id: HashMap::new(),
            slots: HashMap::new(),
            inbox: Vec::new(),
            flash: BTreeSet::new(),
            tail_from: log_last + 1,
            tail_bytes: 0,
            tail_budget,
            heads: HashMap::new(),
            cursors: HashMap::new(),
            log_last,
            batch: Batch::default(),
            generation: 1,
            in_commit: None,
            committed: 0,
        })
    }

    /// Whether a message is committed (so its author may pass it on).
    pub(super) fn is_durable(&self, h: &Held) -> bool {
        h.generation <= self.committed
    }

    /// Records a new message at the next log position; returns the position.
    pub(super) fn insert(
        &mut self,
        id: MessageId,
        env: Arc<[u8]>,
        mut meta: MsgMeta,
        slot: SlotRec,
        inbox: bool,
    ) -> u64 {
        self.log_last += 1;
        let local = self.log_last;
        meta.local = local;
        self.batch.writes.push(Write::Message { id, env: env.clone(), meta: meta.clone(), slot, inbox });
        self.batch.sync = true;
        if meta.priority == Priority::Flash {
            self.flash.insert(local);
        }
        self.by_id.insert(id, local);
        self.slots.insert((meta.author, meta.feed, meta.seq), slot);
        if inbox {
            self.inbox.push((self.generation, id));
        }
        self.tail_bytes += env.len() + HELD_OVERHEAD;
        let held = Held { id, meta, env, generation: self.generation };
        self.tail.insert(local, Arc::new(held));
        self.evict();
        local
    }

    pub(super) fn set_head(&mut self, author: NodeId, feed: FeedId, head: HeadRec) {
        self.heads.insert((author, feed), (head, self.generation));
        self.batch.writes.push(Write::Head { author, feed, head });
    }

    pub(super) fn set_cursor(&mut self, peer: NodeId, cursor: u64) {
        self.cursors.insert(peer, cursor);
        self.batch.writes.push(Write::Cursor { peer, cursor });
    }

    pub(super) fn record_evidence(
        &mut self,
        author: NodeId,
        feed: FeedId,
        seq: u64,
        existing: MessageId,
        env: Arc<[u8]>,
    ) {
        self.batch.writes.push(Write::Evidence { author, feed, seq, existing, env });
        self.batch.sync = true;
    }

    pub(super) fn prune(
        &mut self,
        id: MessageId,
        expires: crate::time::Timestamp,
        local: u64,
        envelope: bool,
    ) {
        self.batch.writes.push(Write::Prune { id, expires, local, envelope });
    }

    /// Removes what is left of a long-expired message (`place`: its author, feed, seq and
    /// whether it is flash), or with `None` only its entry in the index of pruned messages.
    pub(super) fn forget(
        &mut self,
        id: MessageId,
        expires: crate::time::Timestamp,
        local: u64,
        place: Option<(NodeId, FeedId, u64, bool)>,
    ) {
        if place.is_some() {
            if let Some(held) = self.tail.remove(&local) {
                self.tail_bytes -= held.env.len() + HELD_OVERHEAD;
                self.by_id.remove(&held.id);
                self.slots.remove(&(held.meta.author, held.meta.feed, held.meta.seq));
                self.flash.remove(&local);
            }
        }
        self.batch.writes.push(Write::Forget { id, expires, local, place });
    }

    pub(super) fn write(&mut self, w: Write) {
        self.batch.writes.push(w);
    }

    pub(super) fn record(&mut self, event: Event) {
        self.batch.writes.push(Write::Event(event));
    }

    /// Hands out the batch built so far for commit, if there is one and none is in commit.
    pub(super) fn take_batch(&mut self) -> Option<Batch> {
        if self.in_commit.is_some() || self.batch.is_empty() {
            return None;
        }
        self.in_commit = Some(self.generation);
        self.generation += 1;
        Some(std::mem::take(&mut self.batch))
    }

    /// The batch in commit was committed: what it wrote may leave memory.
    pub(super) fn committed(&mut self) {
        if let Some(g) = self.in_commit.take() {
            self.committed = g;
        }
        let committed = self.committed;
        self.inbox.retain(|(g, _)| *g > committed);
        self.evict();
        if self.heads.len() > HEADS_HOT_MAX {
            self.heads.retain(|_, (_, g)| *g > committed);
        }
    }

    fn evict(&mut self) {
        while self.tail_bytes > self.tail_budget {
            let Some(entry) = self.tail.first_entry() else { break };
            if entry.get().generation > self.committed {
                break;
            }
            let (local, held) = entry.remove_entry();
            self.tail_bytes -= held.env.len() + HELD_OVERHEAD;
            self.by_id.remove(&held.id);
            self.slots.remove(&(held.meta.author, held.meta.feed, held.meta.seq));
            self.flash.remove(&local);
            self.tail_from = local + 1;
        }
    }

    // ---- reads ----------------------------------------------------------------------------

    /// A held message by id.
    pub(super) fn held<S: Store>(&self, store: &S, id: &MessageId) -> Result<Option<Arc<Held>>, S::Error> {
        if let Some(local) = self.by_id.get(id) {
            return Ok(self.tail.get(local).cloned());
        }
        from_store(store, id)
    }

    /// The log position of a held message.
    pub(super) fn local_of<S: Store>(&self, store: &S, id: &MessageId) -> Result<Option<u64>, S::Error> {
        if let Some(local) = self.by_id.get(id) {
            return Ok(Some(*local));
        }
        Ok(store.meta(id)?.map(|m| m.local))
    }

    /// Whether a message is held.
    pub(super) fn holds<S: Store>(&self, store: &S, id: &MessageId) -> Result<bool, S::Error> {
        Ok(self.local_of(store, id)?.is_some())
    }

    /// Up to `limit` held messages after log position `after`, in order.
    pub(super) fn log_after<S: Store>(
        &self,
        store: &S,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Arc<Held>>, S::Error> {
        let older = if after + 1 < self.tail_from { store.log_after(after, limit)? } else { Vec::new() };
        let tail = self.tail.range(after + 1..).map(|(_, h)| h.clone());
        self.merge(store, older, tail, limit)
    }

    /// Up to `limit` held flash messages after log position `after`, in order.
    pub(super) fn flash_after<S: Store>(
        &self,
        store: &S,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Arc<Held>>, S::Error> {
        let older = if after + 1 < self.tail_from { store.flash_after(after, limit)? } else { Vec::new() };
        let tail = self.flash.range(after + 1..).filter_map(|l| self.tail.get(l).cloned());
        self.merge(store, older, tail, limit)
    }

    /// What the store holds below the tail (read back), then what the tail holds, up to `limit`.
    fn merge<S: Store>(
        &self,
        store: &S,
        older: Vec<(u64, MessageId)>,
        tail: impl Iterator<Item = Arc<Held>>,
        limit: usize,
    ) -> Result<Vec<Arc<Held>>, S::Error> {
        let mut out = Vec::new();
        for (_, id) in older.into_iter().take_while(|(local, _)| *local < self.tail_from) {
            out.extend(from_store(store, &id)?);
        }
        let rest = limit.saturating_sub(out.len());
        out.extend(tail.take(rest));
        Ok(out)
    }

    /// A feed's head.
    pub(super) fn head<S: Store>(
        &mut self,
        store: &S,
        author: &NodeId,
        feed: &FeedId,
    ) -> Result<Option<HeadRec>, S::Error> {
        if let Some((h, _)) = self.heads.get(&(*author, *feed)) {
            return Ok(Some(*h));
        }
        let h = store.head(author, feed)?;
        if let Some(h) = h {
            self.heads.insert((*author, *feed), (h, 0));
        }
        Ok(h)
    }

    /// Heads of every feed of `author`, in feed order.
    pub(super) fn heads_of<S: Store>(
        &self,
        store: &S,
        author: &NodeId,
    ) -> Result<Vec<(FeedId, HeadRec)>, S::Error> {
        let mut all: BTreeMap<FeedId, HeadRec> = store.heads_of(author)?.into_iter().collect();
        for ((a, f), (h, _)) in &self.heads {
            if a == author {
                all.insert(*f, *h);
            }
        }
        Ok(all.into_iter().collect())
    }

    /// The slot at `seq` of a feed whose head is `head`.
    pub(super) fn slot<S: Store>(
        &self,
        store: &S,
        author: &NodeId,
        feed: &FeedId,
        seq: u64,
        head: &HeadRec,
    ) -> Result<Option<SlotRec>, S::Error> {
        // Nothing is held above the head's top.
        if seq == 0 || seq > head.top {
            return Ok(None);
        }
        if let Some(slot) = self.slots.get(&(*author, *feed, seq)) {
            return Ok(Some(*slot));
        }
        store.slot(author, feed, seq)
    }

    /// A peer's cursor as written.
    pub(super) fn cursor<S: Store>(&mut self, store: &S, peer: &NodeId) -> Result<u64, S::Error> {
        if let Some(c) = self.cursors.get(peer) {
            return Ok(*c);
        }
        let c = store.cursor(peer)?;
        self.cursors.insert(*peer, c);
        Ok(c)
    }

    /// Inbox entries in order, including those not yet committed.
    pub(super) fn inbox<S: Store>(&self, store: &S) -> Result<Vec<MessageId>, S::Error> {
        let mut v = store.inbox()?;
        v.extend(self.inbox.iter().map(|(_, id)| *id));
        Ok(v)
    }

    /// Memory held by the tail, in bytes (envelopes plus a fixed overhead per message).
    pub(super) fn tail_bytes(&self) -> usize {
        self.tail_bytes
    }
}

/// Bookkeeping bytes counted per message in the tail beside its envelope.
const HELD_OVERHEAD: usize = 256;

fn from_store<S: Store>(store: &S, id: &MessageId) -> Result<Option<Arc<Held>>, S::Error> {
    let (Some(meta), Some(env)) = (store.meta(id)?, store.envelope(id)?) else { return Ok(None) };
    Ok(Some(Arc::new(Held { id: *id, meta, env: env.into(), generation: 0 })))
}

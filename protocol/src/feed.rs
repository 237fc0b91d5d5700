//! Feeds: the per-(author, feed) chain of sequence numbers and `prev` ids, and the
//! [`FeedState`] that accepts the next message and classifies everything else.
//!
//! A message is the *next* one when its seq is one above the head and its `prev` is the head's
//! id. Everything else is a duplicate (same seq, same id), a fork (same seq, another id, or a
//! `prev` that contradicts what we hold — both ids are kept as evidence and the feed is frozen),
//! a gap (seq further ahead: the missing range is reported and the message held until the gap
//! fills), or expired. An expired message that is next in the chain still advances the head, so
//! expiry never shows up later as a false gap.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use crate::envelope::Envelope;
use crate::ids::MessageId;
use crate::limits::LIMITS;
use crate::time::Timestamp;

/// What the feed logic needs to know of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedEntry {
    /// Sequence number.
    pub seq: u64,
    /// Message id.
    pub id: MessageId,
    /// The author's previous message in the feed.
    pub prev: Option<MessageId>,
    /// Expiry time.
    pub expires: Timestamp,
}

impl FeedEntry {
    /// The entry for a verified envelope.
    pub fn of(env: &Envelope) -> Self {
        let h = env.header();
        FeedEntry { seq: h.seq, id: env.id(), prev: h.prev, expires: h.expires }
    }
}

/// Looks up the id accepted at a sequence number (the node's storage implements this).
pub trait FeedHistory {
    /// The id accepted at `seq`, if still known.
    fn id_at(&self, seq: u64) -> Option<MessageId>;
}

impl FeedHistory for BTreeMap<u64, MessageId> {
    fn id_at(&self, seq: u64) -> Option<MessageId> {
        self.get(&seq).copied()
    }
}

/// Two different messages signed by one author for the same place in one feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForkEvidence {
    /// The contested sequence number.
    pub seq: u64,
    /// The id this node accepted (or held) at `seq`.
    pub existing: MessageId,
    /// The other id the author signed (or referenced as `prev`) for `seq`.
    pub conflicting: MessageId,
}

/// How a message fits its feed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// The next message: accept it. `released` are held messages that now follow in order
    /// (accept them too, in this order). `expired` means it is past its expiry: record the link,
    /// do not deliver or relay it.
    Next {
        /// Past expiry: chain link only.
        expired: bool,
        /// Held messages that now follow, in order.
        released: Vec<FeedEntry>,
    },
    /// Already accepted.
    Duplicate,
    /// Ahead of the head: `missing` must be fetched. `held` says whether this message is being
    /// kept until then (false when the hold is full).
    Gap {
        /// The missing sequence numbers.
        missing: RangeInclusive<u64>,
        /// Whether the message is held.
        held: bool,
    },
    /// The author signed two messages for one place in the feed. The feed is now frozen.
    Fork(ForkEvidence),
    /// Past its expiry and not the next in the chain: drop it.
    Expired,
    /// Below the head, but the history no longer knows that seq: cannot be classified further.
    Stale,
    /// The feed is frozen after a fork; nothing more is accepted until an operator acts.
    Frozen(ForkEvidence),
}

/// The state of one (author, feed) chain as this node knows it.
#[derive(Debug, Clone, Default)]
pub struct FeedState {
    head: Option<(u64, MessageId)>,
    pending: BTreeMap<u64, FeedEntry>,
    fork: Option<ForkEvidence>,
}

impl FeedState {
    /// A feed with nothing accepted yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A feed resumed at a known head (e.g. loaded from storage).
    pub fn at(head_seq: u64, head_id: MessageId) -> Self {
        FeedState { head: Some((head_seq, head_id)), ..Self::default() }
    }

    /// The last accepted (seq, id).
    pub fn head(&self) -> Option<(u64, MessageId)> {
        self.head
    }

    /// The fork that froze this feed, if any.
    pub fn fork(&self) -> Option<ForkEvidence> {
        self.fork
    }

    /// The sequence numbers still missing below the highest held message, if any.
    pub fn missing(&self) -> Option<RangeInclusive<u64>> {
        let first_held = *self.pending.keys().next()?;
        Some(self.head_seq() + 1..=first_held - 1)
    }

    /// Classifies `entry` at time `now`; advances the head when it is the next message.
    pub fn observe(&mut self, entry: FeedEntry, now: Timestamp, history: &impl FeedHistory) -> Verdict {
        if let Some(f) = self.fork {
            return Verdict::Frozen(f);
        }
        let head_seq = self.head_seq();
        if entry.seq <= head_seq {
            return match history.id_at(entry.seq) {
                Some(id) if id == entry.id => Verdict::Duplicate,
                Some(existing) => {
                    self.freeze(ForkEvidence { seq: entry.seq, existing, conflicting: entry.id })
                }
                None => Verdict::Stale,
            };
        }
        if entry.seq == head_seq + 1 {
            if let Some(v) = self.check_prev(&entry) {
                return v;
            }
            let expired = entry.expires <= now;
            self.head = Some((entry.seq, entry.id));
            return match self.release() {
                Ok(released) => Verdict::Next { expired, released },
                Err(fork) => fork,
            };
        }
        if entry.expires <= now {
            return Verdict::Expired;
        }
        match self.pending.get(&entry.seq) {
            Some(held) if held.id == entry.id => {}
            Some(held) => {
                let existing = held.id;
                return self.freeze(ForkEvidence { seq: entry.seq, existing, conflicting: entry.id });
            }
            None if self.pending.len() < LIMITS.max_feed_pending => {
                self.pending.insert(entry.seq, entry);
            }
            None => {
                return Verdict::Gap { missing: head_seq + 1..=entry.seq - 1, held: false };
            }
        }
        let first_held = self.pending.keys().next().copied().unwrap_or(entry.seq);
        Verdict::Gap { missing: head_seq + 1..=first_held - 1, held: true }
    }

    fn head_seq(&self) -> u64 {
        self.head.map_or(0, |(s, _)| s)
    }

    /// For the next message: does its prev match our head?
    fn check_prev(&mut self, entry: &FeedEntry) -> Option<Verdict> {
        match (self.head, entry.prev) {
            (None, None) => None,
            (Some((_, head_id)), Some(prev)) if prev == head_id => None,
            (Some((seq, existing)), Some(conflicting)) => {
                Some(self.freeze(ForkEvidence { seq, existing, conflicting }))
            }
            // Structural mismatches (seq 1 with a prev, or later seqs without) are refused by
            // header validation before they reach the feed; treat them as forks of the head.
            (head, _) => {
                let existing = head.map_or(MessageId([0; 32]), |(_, id)| id);
                Some(self.freeze(ForkEvidence { seq: self.head_seq(), existing, conflicting: entry.id }))
            }
        }
    }

    /// Moves held messages that now follow the head onto the chain.
    fn release(&mut self) -> Result<Vec<FeedEntry>, Verdict> {
        let mut released = Vec::new();
        while let Some(next) = self.pending.remove(&(self.head_seq() + 1)) {
            if let Some(v) = self.check_prev(&next) {
                return Err(v);
            }
            self.head = Some((next.seq, next.id));
            released.push(next);
        }
        Ok(released)
    }

    fn freeze(&mut self, evidence: ForkEvidence) -> Verdict {
        self.fork = Some(evidence);
        self.pending.clear();
        Verdict::Fork(evidence)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> MessageId {
        MessageId([n; 32])
    }

    /// A chain 1..=n with ids 1..=n.
    fn entry(seq: u64) -> FeedEntry {
        FeedEntry {
            seq,
            id: id(seq as u8),
            prev: (seq > 1).then(|| id(seq as u8 - 1)),
            expires: Timestamp(1_000),
        }
    }

    const NOW: Timestamp = Timestamp(10);

    fn accept(state: &mut FeedState, hist: &mut BTreeMap<u64, MessageId>, e: FeedEntry) -> Verdict {
        let v = state.observe(e, NOW, hist);
        if let Verdict::Next { released, .. } = &v {
            hist.insert(e.seq, e.id);
            released.iter().for_each(|r| {
                hist.insert(r.seq, r.id);
            });
        }
        v
    }

    #[test]
    fn accepts_the_chain_in_order() {
        let (mut s, mut h) = (FeedState::new(), BTreeMap::new());
        for seq in 1..=5 {
            assert_eq!(
                accept(&mut s, &mut h, entry(seq)),
                Verdict::Next { expired: false, released: vec![] }
            );
        }
        assert_eq!(s.head(), Some((5, id(5))));
    }

    #[test]
    fn classifies_duplicates() {
        let (mut s, mut h) = (FeedState::new(), BTreeMap::new());
        accept(&mut s, &mut h, entry(1));
        accept(&mut s, &mut h, entry(2));
        assert_eq!(accept(&mut s, &mut h, entry(1)), Verdict::Duplicate);
        assert_eq!(accept(&mut s, &mut h, entry(2)), Verdict::Duplicate);
    }

    #[test]
    fn reports_gaps_and_releases_held_messages_when_filled() {
        let (mut s, mut h) = (FeedState::new(), BTreeMap::new());
        accept(&mut s, &mut h, entry(1));
        assert_eq!(accept(&mut s, &mut h, entry(4)), Verdict::Gap { missing: 2..=3, held: true });
        assert_eq!(accept(&mut s, &mut h, entry(5)), Verdict::Gap { missing: 2..=3, held: true });
        assert_eq!(s.missing(), Some(2..=3));
        assert_eq!(accept(&mut s, &mut h, entry(3)), Verdict::Gap { missing: 2..=2, held: true });
        assert_eq!(
            accept(&mut s, &mut h, entry(2)),
            Verdict::Next { expired: false, released: vec![entry(3), entry(4), entry(5)] }
        );
        assert_eq!(s.head(), Some((5, id(5))));
        assert_eq!(s.missing(), None);
    }

    #[test]
    fn same_seq_different_id_is_a_fork_with_both_ids_and_freezes_the_feed() {
        let (mut s, mut h) = (FeedState::new(), BTreeMap::new());
        accept(&mut s, &mut h, entry(1));
        accept(&mut s, &mut h, entry(2));
        let evil = FeedEntry { id: id(99), ..entry(2) };
        let fork = ForkEvidence { seq: 2, existing: id(2), conflicting: id(99) };
        assert_eq!(accept(&mut s, &mut h, evil), Verdict::Fork(fork));
        assert_eq!(s.fork(), Some(fork));
        assert_eq!(accept(&mut s, &mut h, entry(3)), Verdict::Frozen(fork));
    }

    #[test]
    fn a_prev_that_contradicts_the_head_is_a_fork() {
        let (mut s, mut h) = (FeedState::new(), BTreeMap::new());
        accept(&mut s, &mut h, entry(1));
        let e = FeedEntry { prev: Some(id(77)), ..entry(2) };
        assert_eq!(
            accept(&mut s, &mut h, e),
            Verdict::Fork(ForkEvidence { seq: 1, existing: id(1), conflicting: id(77) })
        );
    }

    #[test]
    fn a_held_message_with_a_conflicting_twin_is_a_fork() {
        let (mut s, mut h) = (FeedState::new(), BTreeMap::new());
        accept(&mut s, &mut h, entry(1));
        accept(&mut s, &mut h, entry(3));
        let twin = FeedEntry { id: id(33), ..entry(3) };
        assert_eq!(
            accept(&mut s, &mut h, twin),
            Verdict::Fork(ForkEvidence { seq: 3, existing: id(3), conflicting: id(33) })
        );
    }

    #[test]
    fn expired_next_message_still_links_the_chain() {
        let (mut s, mut h) = (FeedState::new(), BTreeMap::new());
        accept(&mut s, &mut h, entry(1));
        let old = FeedEntry { expires: Timestamp(5), ..entry(2) };
        assert_eq!(accept(&mut s, &mut h, old), Verdict::Next { expired: true, released: vec![] });
        assert_eq!(accept(&mut s, &mut h, entry(3)), Verdict::Next { expired: false, released: vec![] });
        let old_future = FeedEntry { expires: Timestamp(5), ..entry(9) };
        assert_eq!(accept(&mut s, &mut h, old_future), Verdict::Expired);
    }

    #[test]
    fn below_head_without_history_is_stale() {
        let mut s = FeedState::at(10, id(10));
        assert_eq!(s.observe(entry(4), NOW, &BTreeMap::new()), Verdict::Stale);
        assert_eq!(
            s.observe(entry(11), NOW, &BTreeMap::new()),
            Verdict::Next { expired: false, released: vec![] }
        );
    }

    #[test]
    fn first_message_must_not_claim_a_prev() {
        let mut s = FeedState::new();
        let e = FeedEntry { seq: 1, id: id(1), prev: Some(id(0)), expires: Timestamp(100) };
        assert!(matches!(s.observe(e, NOW, &BTreeMap::new()), Verdict::Fork(_)));
    }

    #[test]
    fn hold_is_bounded() {
        let (mut s, h) = (FeedState::new(), BTreeMap::new());
        let base = 10u64;
        for i in 0..LIMITS.max_feed_pending as u64 {
            let e = FeedEntry { seq: base + i, id: MessageId([1; 32]), prev: None, expires: Timestamp(100) };
            let mut e = e;
            e.id.0[..8].copy_from_slice(&(base + i).to_be_bytes());
            assert!(matches!(s.observe(e, NOW, &h), Verdict::Gap { held: true, .. }));
        }
        let e = FeedEntry { seq: 1_000_000, id: id(5), prev: None, expires: Timestamp(100) };
        assert_eq!(s.observe(e, NOW, &h), Verdict::Gap { missing: 1..=999_999, held: false });
    }
}

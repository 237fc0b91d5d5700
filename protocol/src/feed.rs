//! Feeds: the per-(author, feed) chain of sequence numbers and `prev` ids, and the one classifier
//! that decides how an arriving message fits it. The relay uses it for every message it stores
//! (reading the feed's slots through its hot state and the store); the demo shows it at work.
//!
//! A feed is stored as its [`HeadRec`] (highest contiguous seq, its id, the highest seq held at
//! all, and whether a fork froze it) and one [`SlotRec`] per held seq (id and `prev`). Messages
//! are stored out of order: one ahead of the head is stored and leaves a gap to fill, and the
//! head moves over everything contiguous once the gap fills. An author that signs two messages
//! for one place — another id at the same seq, or neighbours whose `prev` links disagree — has
//! forked its feed: both ids and the conflicting envelope are kept as evidence and the feed is
//! frozen. Duplicates are recognised by id before the classifier runs; expiry is the relay's.

use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};

use crate::ids::MessageId;

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

impl HeadRec {
    /// The head of a feed nothing is held of.
    pub const EMPTY: HeadRec = HeadRec { id: None, seq: 0, top: 0, frozen: false };
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

/// Two messages of one author for one place in a feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForkEvidence {
    /// The contested seq.
    pub seq: u64,
    /// The id held there (or the id whose link the newcomer contradicts).
    pub existing: MessageId,
    /// The newcomer's id.
    pub conflicting: MessageId,
}

/// How a message fits its feed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// Store it; the feed's head becomes `head`. `gap` is the range below it still missing,
    /// when the message arrived ahead of the head.
    Store {
        /// The head after storing it.
        head: HeadRec,
        /// Sequence numbers missing below it.
        gap: Option<RangeInclusive<u64>>,
    },
    /// This very message is held at its place already.
    Duplicate,
    /// The author signed two messages for one place: the feed must be frozen.
    Fork(ForkEvidence),
    /// The feed is frozen after a fork; nothing more is accepted until an operator acts.
    Frozen,
}

/// What the classifier needs of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// Its seq (from 1).
    pub seq: u64,
    /// Its id.
    pub id: MessageId,
    /// Its `prev`.
    pub prev: Option<MessageId>,
}

/// Classifies `entry` against a feed whose head is `head`, reading the feed's slots with
/// `slot` (asked only for seqs at or below `head.top`, at most three plus one per message the
/// head moves over).
///
/// # Errors
/// Whatever `slot` fails with.
pub fn classify<E>(
    head: &HeadRec,
    entry: Entry,
    mut slot: impl FnMut(u64) -> Result<Option<SlotRec>, E>,
) -> Result<Verdict, E> {
    if head.frozen {
        return Ok(Verdict::Frozen);
    }
    let Entry { seq, id, prev } = entry;
    // Nothing is held above the top.
    let mut at = |s: u64| if s == 0 || s > head.top { Ok(None) } else { slot(s) };
    if let Some(here) = at(seq)? {
        if here.id == id {
            return Ok(Verdict::Duplicate);
        }
        return Ok(Verdict::Fork(ForkEvidence { seq, existing: here.id, conflicting: id }));
    }
    // The first message claims no predecessor; every later one names one.
    if (seq == 1) != prev.is_none() {
        let existing = head.id.unwrap_or(MessageId([0; 32]));
        return Ok(Verdict::Fork(ForkEvidence { seq, existing, conflicting: id }));
    }
    if let Some(below) = at(seq - 1)? {
        if Some(below.id) != prev {
            return Ok(Verdict::Fork(ForkEvidence { seq: seq - 1, existing: below.id, conflicting: id }));
        }
    }
    if let Some(above) = at(seq.saturating_add(1))? {
        if above.prev != Some(id) {
            let existing = above.prev.unwrap_or(MessageId([0; 32]));
            return Ok(Verdict::Fork(ForkEvidence { seq, existing, conflicting: id }));
        }
    }
    // Advance the contiguous head over what is now held.
    let mut new = HeadRec { top: head.top.max(seq), ..*head };
    if seq == head.seq + 1 {
        new.seq = seq;
        new.id = Some(id);
        while new.seq < new.top {
            let Some(next) = at(new.seq + 1)? else { break };
            new.seq += 1;
            new.id = Some(next.id);
        }
    }
    let gap = (new.seq + 1 < seq).then(|| new.seq + 1..=seq - 1);
    Ok(Verdict::Store { head: new, gap })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::convert::Infallible;

    use super::*;

    fn id(n: u8) -> MessageId {
        MessageId([n; 32])
    }

    /// Seq `n` of the chain whose ids are 1, 2, 3, …
    fn entry(seq: u64) -> Entry {
        Entry { seq, id: id(seq as u8), prev: (seq > 1).then(|| id(seq as u8 - 1)) }
    }

    /// A feed as the relay keeps it: head and slots.
    #[derive(Default)]
    struct Feed {
        head: Option<HeadRec>,
        slots: BTreeMap<u64, SlotRec>,
        asked: Vec<u64>,
    }

    impl Feed {
        fn offer(&mut self, e: Entry) -> Verdict {
            let head = self.head.unwrap_or(HeadRec::EMPTY);
            let (slots, asked) = (&self.slots, &mut self.asked);
            let v = classify(&head, e, |s| {
                asked.push(s);
                Ok::<_, Infallible>(slots.get(&s).copied())
            })
            .unwrap_or_else(|e| match e {});
            match &v {
                Verdict::Store { head, .. } => {
                    self.slots.insert(e.seq, SlotRec { id: e.id, prev: e.prev });
                    self.head = Some(*head);
                }
                Verdict::Fork(_) => self.head = Some(HeadRec { frozen: true, ..head }),
                _ => {}
            }
            v
        }
    }

    #[test]
    fn accepts_the_chain_in_order_reading_only_the_slot_below() {
        let mut f = Feed::default();
        for seq in 1..=5 {
            let v = f.offer(entry(seq));
            let head = HeadRec { id: Some(id(seq as u8)), seq, top: seq, frozen: false };
            assert_eq!(v, Verdict::Store { head, gap: None });
        }
        // In order, only the slot below each newcomer is looked at: nothing is above the top.
        assert_eq!(f.asked, [1, 2, 3, 4]);
    }

    #[test]
    fn recognises_the_same_message_at_its_place() {
        let mut f = Feed::default();
        f.offer(entry(1));
        f.offer(entry(2));
        assert_eq!(f.offer(entry(1)), Verdict::Duplicate);
        assert_eq!(f.offer(entry(2)), Verdict::Duplicate);
    }

    #[test]
    fn reports_gaps_and_moves_the_head_over_them_once_filled() {
        let mut f = Feed::default();
        f.offer(entry(1));
        assert!(matches!(f.offer(entry(4)), Verdict::Store { gap: Some(g), .. } if g == (2..=3)));
        assert!(matches!(f.offer(entry(5)), Verdict::Store { gap: Some(g), .. } if g == (2..=4)));
        assert!(matches!(f.offer(entry(3)), Verdict::Store { gap: Some(g), .. } if g == (2..=2)));
        let head = HeadRec { id: Some(id(5)), seq: 5, top: 5, frozen: false };
        assert_eq!(f.offer(entry(2)), Verdict::Store { head, gap: None });
    }

    #[test]
    fn same_seq_different_id_is_a_fork_with_both_ids_and_freezes_the_feed() {
        let mut f = Feed::default();
        f.offer(entry(1));
        let twin = Entry { seq: 1, id: id(99), prev: None };
        assert_eq!(
            f.offer(twin),
            Verdict::Fork(ForkEvidence { seq: 1, existing: id(1), conflicting: id(99) })
        );
        assert_eq!(f.offer(entry(2)), Verdict::Frozen, "nothing more after a fork");
    }

    #[test]
    fn a_prev_that_contradicts_the_message_below_is_a_fork() {
        let mut f = Feed::default();
        f.offer(entry(1));
        let bad = Entry { seq: 2, id: id(2), prev: Some(id(77)) };
        assert_eq!(f.offer(bad), Verdict::Fork(ForkEvidence { seq: 1, existing: id(1), conflicting: id(2) }));
    }

    #[test]
    fn a_message_the_one_above_does_not_link_to_is_a_fork() {
        let mut f = Feed::default();
        f.offer(entry(1));
        f.offer(entry(3));
        // Seq 3 names id 2 as its prev; another seq 2 contradicts it.
        let other = Entry { seq: 2, id: id(98), prev: Some(id(1)) };
        assert_eq!(
            f.offer(other),
            Verdict::Fork(ForkEvidence { seq: 2, existing: id(2), conflicting: id(98) })
        );
    }

    #[test]
    fn the_first_message_claims_no_predecessor_and_later_ones_do() {
        let mut f = Feed::default();
        assert!(matches!(f.offer(Entry { seq: 1, id: id(1), prev: Some(id(0)) }), Verdict::Fork(_)));
        let mut f = Feed::default();
        f.offer(entry(1));
        assert!(matches!(f.offer(Entry { seq: 2, id: id(2), prev: None }), Verdict::Fork(_)));
    }
}

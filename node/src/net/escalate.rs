//! Flash messages this node sent, watched until every recipient has read them: one not read
//! (acknowledged or actioned) by a recipient within `escalate_after_ms` is flagged for
//! escalation — in `godwit status`, a metric, the log and the local alert hook.
//!
//! The watch is in memory and bounded: the newest [`MAX_WATCHED`] flash messages; a restart
//! forgets it (the receipts themselves stay in the inbox, for `godwit receipts`).

use std::collections::{BTreeMap, BTreeSet};

use godwit_protocol::identity::NodeId;
use godwit_protocol::ids::MessageId;

/// Flash messages watched at most (the oldest give way).
pub(super) const MAX_WATCHED: usize = 1_024;

#[derive(Debug)]
struct Watch {
    sent_ms: u64,
    waiting: BTreeSet<NodeId>,
    flagged: bool,
}

/// The flash messages watched.
#[derive(Debug, Default)]
pub(super) struct Escalations {
    watched: BTreeMap<MessageId, Watch>,
}

impl Escalations {
    /// A flash message sent at `now_ms` to `recipients`.
    pub(super) fn sent(&mut self, id: MessageId, recipients: impl IntoIterator<Item = NodeId>, now_ms: u64) {
        let waiting: BTreeSet<NodeId> = recipients.into_iter().collect();
        if waiting.is_empty() {
            return;
        }
        if self.watched.len() >= MAX_WATCHED {
            if let Some(oldest) = self.watched.iter().min_by_key(|(_, w)| w.sent_ms).map(|(id, _)| *id) {
                self.watched.remove(&oldest);
            }
        }
        self.watched.insert(id, Watch { sent_ms: now_ms, waiting, flagged: false });
    }

    /// `from` read (or actioned) `id`.
    pub(super) fn read(&mut self, id: &MessageId, from: &NodeId) {
        if let Some(w) = self.watched.get_mut(id) {
            w.waiting.remove(from);
            if w.waiting.is_empty() {
                self.watched.remove(id);
            }
        }
    }

    /// Messages that became overdue at `now_ms` (flagged once each), with who has not read them.
    pub(super) fn newly_overdue(&mut self, now_ms: u64, after_ms: u64) -> Vec<(MessageId, Vec<NodeId>)> {
        let mut out = Vec::new();
        for (id, w) in &mut self.watched {
            if !w.flagged && now_ms.saturating_sub(w.sent_ms) >= after_ms {
                w.flagged = true;
                out.push((*id, w.waiting.iter().copied().collect()));
            }
        }
        out
    }

    /// Every overdue message, with who has not read it, oldest first.
    pub(super) fn overdue(&self) -> Vec<(MessageId, u64, Vec<NodeId>)> {
        let mut v: Vec<_> = self
            .watched
            .iter()
            .filter(|(_, w)| w.flagged)
            .map(|(id, w)| (*id, w.sent_ms, w.waiting.iter().copied().collect()))
            .collect();
        v.sort_by_key(|(_, at, _)| *at);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use godwit_protocol::identity::IdentityKey;

    #[test]
    fn a_flash_message_is_flagged_once_when_a_recipient_has_not_read_it_in_time() {
        let (a, b) = (IdentityKey::from_seed(&[1; 32]).node_id(), IdentityKey::from_seed(&[2; 32]).node_id());
        let (m, n) = (MessageId([1; 32]), MessageId([2; 32]));
        let mut e = Escalations::default();
        e.sent(m, [a, b], 1_000);
        e.sent(n, [a], 1_000);
        e.read(&m, &a);
        e.read(&n, &a);
        assert!(e.newly_overdue(1_500, 1_000).is_empty(), "not yet");
        assert_eq!(e.newly_overdue(2_000, 1_000), vec![(m, vec![b])], "n was read by all");
        assert!(e.newly_overdue(3_000, 1_000).is_empty(), "flagged once");
        assert_eq!(e.overdue(), vec![(m, 1_000, vec![b])]);
        e.read(&m, &b);
        assert!(e.overdue().is_empty());
        for i in 0..=MAX_WATCHED as u64 {
            let mut id = [0; 32];
            id[..8].copy_from_slice(&i.to_be_bytes());
            e.sent(MessageId(id), [a], 10 + i);
        }
        assert_eq!(e.watched.len(), MAX_WATCHED, "bounded");
    }
}

//! Who belongs to which channel: the one place the relay asks "may this author publish here?"
//! and "is this node entitled to this message?". Its sources are the signed channel states this
//! node took (a [`Book`]) and, for closed test networks, static configuration
//! ([`ChannelConfig`]).

use std::collections::{BTreeMap, BTreeSet};

use super::ChannelConfig;
use crate::channel::{Book, BookLimits, Disposition, StateError, Verified};
use crate::identity::NodeId;
use crate::ids::ChannelId;
use crate::time::Timestamp;

/// Why an author may not publish in a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Denied {
    /// This node knows no such channel.
    UnknownChannel,
    /// The author is not a member with publish rights in that epoch.
    NotMember,
    /// The epoch is newer than the channel state this node holds (its state is on its way).
    EpochAhead {
        /// The epoch this node holds.
        head: u64,
    },
    /// The epoch was superseded longer ago than the grace window (by this node's clock).
    StaleEpoch {
        /// The epoch this node holds.
        head: u64,
    },
    /// The channel ended before the message was created.
    Closed {
        /// Its end.
        ends: Timestamp,
    },
}

impl std::fmt::Display for Denied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Denied::UnknownChannel => write!(f, "no such channel is known here"),
            Denied::NotMember => write!(f, "not a member with publish rights in that epoch"),
            Denied::EpochAhead { head } => write!(f, "an epoch newer than the one held here ({head})"),
            Denied::StaleEpoch { head } => {
                write!(f, "an epoch superseded longer ago than the grace window (now {head})")
            }
            Denied::Closed { ends } => write!(f, "the channel ended at {ends}"),
        }
    }
}

/// The channels this node knows and their members.
#[derive(Debug, Clone, Default)]
pub(super) struct Membership {
    configured: BTreeMap<ChannelId, BTreeSet<NodeId>>,
    book: Book,
    /// How long after a newer epoch was taken here messages of the one before are accepted.
    grace_ms: u64,
}

impl Membership {
    pub(super) fn new(channels: &[ChannelConfig], grace_ms: u64) -> Membership {
        Membership {
            configured: channels.iter().map(|c| (c.id, c.members.clone())).collect(),
            book: Book::new(BookLimits::default()),
            grace_ms,
        }
    }

    /// The signed channel states held.
    pub(super) fn book(&self) -> &Book {
        &self.book
    }

    /// What taking a channel state would do (changes nothing).
    pub(super) fn check_state(&self, v: &Verified) -> Result<Disposition, StateError> {
        if self.configured.contains_key(&v.channel) {
            let detail = format!(
                "channel {} is configured statically here: it takes no signed state",
                v.channel.short()
            );
            return Err(StateError::Invalid(detail));
        }
        self.book.check(v)
    }

    /// Takes a channel state at `now`; returns the `(channel, epoch)` heads it made.
    pub(super) fn take_state(
        &mut self,
        v: Verified,
        now: Timestamp,
    ) -> Result<Vec<(ChannelId, u64)>, StateError> {
        self.check_state(&v)?;
        self.book.take(v, now)
    }

    /// Whether `author` may publish in `channel` under `epoch` a message created at `created`,
    /// received at `now`.
    pub(super) fn may_publish(
        &self,
        channel: &ChannelId,
        epoch: u64,
        author: &NodeId,
        created: Timestamp,
        now: Timestamp,
    ) -> Result<(), Denied> {
        if let Some(m) = self.configured.get(channel) {
            return if m.contains(author) { Ok(()) } else { Err(Denied::NotMember) };
        }
        let Some(head) = self.book.head(channel) else { return Err(Denied::UnknownChannel) };
        let head_epoch = head.state.epoch;
        if let Some(ends) = head.state.ends {
            if created > ends || now > ends.plus_millis(self.grace_ms) {
                return Err(Denied::Closed { ends });
            }
        }
        if epoch > head_epoch {
            return Err(Denied::EpochAhead { head: head_epoch });
        }
        let Some((state, after)) = self.book.at(channel, epoch) else {
            return Err(Denied::StaleEpoch { head: head_epoch });
        };
        if !state.state.publishes(author) {
            return Err(Denied::NotMember);
        }
        match after {
            Some(next) if now > next.at.plus_millis(self.grace_ms) => {
                Err(Denied::StaleEpoch { head: head_epoch })
            }
            _ => Ok(()),
        }
    }

    /// Whether `node` is entitled to read messages of `channel` under `epoch`: it reads that
    /// epoch (messages from before it joined are not its).
    pub(super) fn is_entitled(&self, channel: &ChannelId, epoch: u64, node: &NodeId) -> bool {
        if let Some(m) = self.configured.get(channel) {
            return m.contains(node);
        }
        self.book.at(channel, epoch).is_some_and(|(t, _)| t.state.reads(node))
    }

    /// Whether `node` is a member of any channel this node knows.
    pub(super) fn is_member_anywhere(&self, node: &NodeId) -> bool {
        self.configured.values().any(|m| m.contains(node))
            || self.book.channels().any(|(_, t)| t.state.member(node).is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::IdentityKey;

    #[test]
    fn answers_from_the_configured_members() {
        let (a, b, c) = (
            IdentityKey::from_seed(&[1; 32]).node_id(),
            IdentityKey::from_seed(&[2; 32]).node_id(),
            IdentityKey::from_seed(&[3; 32]).node_id(),
        );
        let ch = ChannelId([7; 32]);
        let m = Membership::new(&[ChannelConfig { id: ch, members: [a, b].into() }], 0);
        let t = Timestamp(1);
        assert_eq!(m.may_publish(&ch, 1, &a, t, t), Ok(()));
        assert_eq!(m.may_publish(&ch, 1, &c, t, t), Err(Denied::NotMember));
        assert_eq!(m.may_publish(&ChannelId([8; 32]), 1, &a, t, t), Err(Denied::UnknownChannel));
        assert!(m.is_entitled(&ch, 1, &b));
        assert!(!m.is_entitled(&ch, 1, &c));
        assert!(!m.is_entitled(&ChannelId([8; 32]), 1, &a));
        assert!(m.is_member_anywhere(&a) && !m.is_member_anywhere(&c));
    }
}

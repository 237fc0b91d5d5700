//! Who belongs to which channel: the one place the relay asks "may this author publish here?"
//! and "is this node entitled to this message?". Its source is static configuration today
//! ([`ChannelConfig`]); signed channel state replaces the source, not the questions.

use std::collections::{BTreeMap, BTreeSet};

use super::ChannelConfig;
use crate::identity::NodeId;
use crate::ids::ChannelId;

/// Why an author may not publish in a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Denied {
    /// This node knows no such channel.
    UnknownChannel,
    /// The author is not a member with publish rights in that epoch.
    NotMember,
}

/// The channels this node knows and their members.
#[derive(Debug, Clone, Default)]
pub(super) struct Membership {
    channels: BTreeMap<ChannelId, BTreeSet<NodeId>>,
}

impl Membership {
    pub(super) fn new(channels: &[ChannelConfig]) -> Membership {
        Membership { channels: channels.iter().map(|c| (c.id, c.members.clone())).collect() }
    }

    /// Whether `author` may publish in `channel` under `epoch`. (With static configuration
    /// every member may publish in every epoch.)
    pub(super) fn may_publish(
        &self,
        channel: &ChannelId,
        _epoch: u64,
        author: &NodeId,
    ) -> Result<(), Denied> {
        match self.channels.get(channel) {
            None => Err(Denied::UnknownChannel),
            Some(m) if !m.contains(author) => Err(Denied::NotMember),
            Some(_) => Ok(()),
        }
    }

    /// Whether `node` is entitled to read messages of `channel` under `epoch`.
    pub(super) fn is_entitled(&self, channel: &ChannelId, _epoch: u64, node: &NodeId) -> bool {
        self.channels.get(channel).is_some_and(|m| m.contains(node))
    }

    /// Whether `node` is a member of any channel this node knows.
    pub(super) fn is_member_anywhere(&self, node: &NodeId) -> bool {
        self.channels.values().any(|m| m.contains(node))
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
        let m = Membership::new(&[ChannelConfig { id: ch, members: [a, b].into() }]);
        assert_eq!(m.may_publish(&ch, 1, &a), Ok(()));
        assert_eq!(m.may_publish(&ch, 1, &c), Err(Denied::NotMember));
        assert_eq!(m.may_publish(&ChannelId([8; 32]), 1, &a), Err(Denied::UnknownChannel));
        assert!(m.is_entitled(&ch, 1, &b));
        assert!(!m.is_entitled(&ch, 1, &c));
        assert!(!m.is_entitled(&ChannelId([8; 32]), 1, &a));
        assert!(m.is_member_anywhere(&a) && !m.is_member_anywhere(&c));
    }
}

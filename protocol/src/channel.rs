//! Channels as signed state: a chain of [`ChannelState`]s, each a control record signed by the
//! channel's owner (or its deputy), and the [`Book`] in which a node keeps the chains it knows.
//!
//! ```cddl
//! channel-state = {
//!   "v": 1,
//!   "ends": time / null,          ; an operation channel refuses new messages after it
//!   "name": tstr,                 ; 1..=120 characters, no control characters
//!   "prev": state-id / null,      ; null only in the first state
//!   "epoch": uint,                ; higher than the predecessor's
//!   "owner": node-id,
//!   "deputy": node-id / null,     ; may act while the owner is offline
//!   "retain": uint,               ; days the epoch keys are kept after "ends"
//!   "channel": channel-id / null, ; null only in the first state
//!   "created": time,
//!   "members": [+ member],        ; ascending by node, at most 256
//!   "purpose": tstr,              ; at most 1,000 characters
//! }
//! member = { "node": node-id, "read": bool, "publish": bool }
//! ```
//!
//! Identity: a state's id is `SHA-256("godwit/v1 channel-state\0" ‖ body)` over the signed
//! body; the channel's id is the id of its first state. Each later state names its predecessor
//! and carries a higher epoch; it is signed by the predecessor's owner or deputy (only the owner
//! may name a new owner or deputy). A node takes only forward moves from the state it holds: a
//! replayed old state, or a second successor of the same state, changes nothing.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::codec::{self, bounded};
use crate::control::{self, Kind};
use crate::identity::{IdentityKey, NodeId};
use crate::ids::ChannelId;
use crate::limits::MAX_RECIPIENTS;
use crate::time::Timestamp;

/// The current channel-state format version.
pub const CHANNEL_STATE_VERSION: u16 = 1;
/// Most members a channel has (every reader is sealed the epoch key).
pub const MAX_MEMBERS: usize = MAX_RECIPIENTS;
/// Longest channel name, in characters.
pub const MAX_NAME: usize = 120;
/// Longest purpose, in characters.
pub const MAX_PURPOSE: usize = 1000;
/// Longest key retention after a channel's end, in days.
pub const MAX_RETAIN_DAYS: u32 = 3650;

const STATE_ID_CONTEXT: &[u8] = b"godwit/v1 channel-state\0";

/// The id of one channel state: the hash of its signed body.
pub type StateId = ChannelId;

/// A member and its rights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    /// The member node.
    pub node: NodeId,
    /// Whether it is sealed the epoch key (reads the channel).
    pub read: bool,
    /// Whether it may publish.
    pub publish: bool,
}

/// A channel's membership and rights from one epoch on. Fields in deterministic-CBOR key order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelState {
    /// Format version; must be [`CHANNEL_STATE_VERSION`].
    #[serde(rename = "v")]
    pub format: u16,
    /// When an operation channel ends: it refuses messages created after it.
    pub ends: Option<Timestamp>,
    /// Its name for operators, e.g. "RILO Asia-Pacific alerts".
    pub name: String,
    /// The state this one follows (`None` in the first).
    pub prev: Option<StateId>,
    /// The epoch: the key generation messages are encrypted under.
    pub epoch: u64,
    /// The owner node (normally a hub).
    pub owner: NodeId,
    /// A deputy owner who may act while the owner is offline.
    pub deputy: Option<NodeId>,
    /// Days every member keeps the epoch keys after `ends` before destroying them.
    pub retain: u32,
    /// The channel (`None` in the first state, whose id it is).
    pub channel: Option<ChannelId>,
    /// When the state was made (the signer's clock; informational).
    pub created: Timestamp,
    /// The members, ascending by node.
    #[serde(deserialize_with = "bounded::vec::<_, _, MAX_MEMBERS>")]
    pub members: Vec<Member>,
    /// What the channel is for.
    pub purpose: String,
}

/// Why a channel state was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// Not a valid signed channel-state record.
    #[error("not a valid channel state: {0}")]
    Invalid(String),
    /// Signed by a node that may not change the channel.
    #[error("channel {channel}: state signed by {signer}, who is neither its owner nor its deputy")]
    NotOwner {
        /// The channel.
        channel: String,
        /// The signer.
        signer: NodeId,
    },
    /// Not a forward move from the state this node holds.
    #[error("channel {channel}: a state for epoch {epoch} is not a forward move from epoch {head}")]
    NotForward {
        /// The channel.
        channel: String,
        /// The refused state's epoch.
        epoch: u64,
        /// The epoch this node holds.
        head: u64,
    },
    /// The book has no room for it.
    #[error("{0}")]
    Full(String),
}

/// A channel state whose record verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The state.
    pub state: ChannelState,
    /// Who signed it.
    pub signer: NodeId,
    /// Its id.
    pub id: StateId,
    /// The channel it belongs to.
    pub channel: ChannelId,
    /// The signed record, as received.
    pub record: Vec<u8>,
}

impl ChannelState {
    /// The member entry of `node`, if it is one.
    pub fn member(&self, node: &NodeId) -> Option<&Member> {
        self.members.binary_search_by(|m| m.node.cmp(node)).ok().map(|i| &self.members[i])
    }

    /// Whether `node` reads this epoch (is sealed its key).
    pub fn reads(&self, node: &NodeId) -> bool {
        self.member(node).is_some_and(|m| m.read)
    }

    /// Whether `node` may publish under this epoch.
    pub fn publishes(&self, node: &NodeId) -> bool {
        self.member(node).is_some_and(|m| m.publish)
    }

    /// Whether `node` may sign the next state.
    pub fn may_change(&self, node: &NodeId) -> bool {
        self.owner == *node || self.deputy == Some(*node)
    }

    /// Checks the state's own fields (not its place in a chain).
    ///
    /// # Errors
    /// [`StateError::Invalid`] naming the field.
    pub fn validate(&self) -> Result<(), StateError> {
        let bad = |m: String| Err(StateError::Invalid(m));
        if self.format != CHANNEL_STATE_VERSION {
            return bad(format!(
                "format {} is not supported (expected {CHANNEL_STATE_VERSION})",
                self.format
            ));
        }
        if self.epoch == 0 {
            return bad("epochs start at 1".into());
        }
        if self.prev.is_some() != self.channel.is_some() {
            return bad("\"prev\" and \"channel\" are both absent (a first state) or both present".into());
        }
        let n = self.name.chars().count();
        if n == 0 || n > MAX_NAME || self.name.chars().any(char::is_control) {
            return bad(format!("the name must be 1 to {MAX_NAME} characters without control characters"));
        }
        if self.purpose.chars().count() > MAX_PURPOSE {
            return bad(format!("the purpose is longer than {MAX_PURPOSE} characters"));
        }
        if self.retain > MAX_RETAIN_DAYS {
            return bad(format!("keys are retained at most {MAX_RETAIN_DAYS} days, not {}", self.retain));
        }
        if self.members.windows(2).any(|w| w[0].node >= w[1].node) {
            return bad("members must be ascending by node, each once".into());
        }
        for (role, node) in [("owner", Some(self.owner)), ("deputy", self.deputy)] {
            let Some(node) = node else { continue };
            if !self.member(&node).is_some_and(|m| m.read && m.publish) {
                return bad(format!("the {role} {} must be a member who reads and publishes", node.short()));
            }
        }
        if self.deputy == Some(self.owner) {
            return bad("the deputy must be another node than the owner".into());
        }
        Ok(())
    }

    /// Signs the state as a control record.
    pub fn sign(&self, key: &IdentityKey) -> Vec<u8> {
        control::sign(key, Kind::ChannelState, &codec::to_vec(self))
    }

    /// Decodes and verifies a signed channel state (its fields and signature; its place in the
    /// chain is for the [`Book`]).
    ///
    /// # Errors
    /// [`StateError::Invalid`] naming what is wrong.
    pub fn verify(record: &[u8]) -> Result<Verified, StateError> {
        let rec =
            control::verify(record, Kind::ChannelState).map_err(|e| StateError::Invalid(e.to_string()))?;
        let state: ChannelState =
            codec::from_slice("channel state", &rec.body).map_err(|e| StateError::Invalid(e.to_string()))?;
        state.validate()?;
        let id =
            ChannelId(Sha256::new().chain_update(STATE_ID_CONTEXT).chain_update(&rec.body).finalize().into());
        if state.prev.is_none() && rec.signer != state.owner {
            return Err(StateError::NotOwner { channel: id.short(), signer: rec.signer });
        }
        let channel = state.channel.unwrap_or(id);
        Ok(Verified { state, signer: rec.signer, id, channel, record: record.to_vec() })
    }
}

/// A state a node took, and when (by its own clock: grace windows are timed from it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taken {
    /// Its id.
    pub id: StateId,
    /// The state.
    pub state: ChannelState,
    /// When this node took it.
    pub at: Timestamp,
    bytes: usize,
}

/// One channel's chain as this node holds it: the newest states, the head last.
#[derive(Debug, Clone, Default)]
struct Chain {
    states: VecDeque<Taken>,
    bytes: usize,
}

impl Chain {
    fn head(&self) -> &Taken {
        // Invariant: a chain is created with its first state and never emptied.
        self.states.back().expect("a chain holds at least its head")
    }
}

/// What the book does with a verified state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// A forward move: it becomes the channel's head.
    Apply,
    /// Its predecessor (or the channel) is not known yet: it waits for it.
    Hold,
    /// Held already: nothing changes.
    Known,
}

/// Limits of a [`Book`], in states and bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BookLimits {
    /// Channels a book holds.
    pub channels: usize,
    /// Channels one owner may create.
    pub per_owner: usize,
    /// States kept per channel (older epochs are past any grace window).
    pub states_per_channel: usize,
    /// Bytes of states kept per channel.
    pub bytes_per_channel: usize,
    /// States waiting for their predecessor, and their bytes.
    pub waiting: usize,
    /// Bytes of the states waiting.
    pub waiting_bytes: usize,
    /// States of one signer waiting.
    pub waiting_per_signer: usize,
}

impl Default for BookLimits {
    fn default() -> Self {
        BookLimits {
            channels: 256,
            per_owner: 64,
            states_per_channel: 16,
            bytes_per_channel: 256 * 1024,
            waiting: 64,
            waiting_bytes: 1024 * 1024,
            waiting_per_signer: 8,
        }
    }
}

/// The channel chains a node holds, bounded in bytes.
#[derive(Debug, Clone, Default)]
pub struct Book {
    limits: BookLimits,
    chains: BTreeMap<ChannelId, Chain>,
    /// States waiting for their predecessor, by the predecessor's id.
    waiting: BTreeMap<StateId, Vec<Verified>>,
    waiting_bytes: usize,
}

impl Book {
    /// An empty book.
    pub fn new(limits: BookLimits) -> Book {
        Book { limits, ..Book::default() }
    }

    /// The channels held, with their head states.
    pub fn channels(&self) -> impl Iterator<Item = (&ChannelId, &Taken)> {
        self.chains.iter().map(|(c, ch)| (c, ch.head()))
    }

    /// The head of `channel`.
    pub fn head(&self, channel: &ChannelId) -> Option<&Taken> {
        self.chains.get(channel).map(Chain::head)
    }

    /// The state of `channel` at `epoch`, if still held, and the one after it.
    pub fn at(&self, channel: &ChannelId, epoch: u64) -> Option<(&Taken, Option<&Taken>)> {
        let chain = self.chains.get(channel)?;
        let i = chain.states.iter().position(|t| t.state.epoch == epoch)?;
        Some((&chain.states[i], chain.states.get(i + 1)))
    }

    /// What taking `v` would do, or why it is refused. Changes nothing.
    ///
    /// # Errors
    /// [`StateError::NotOwner`], [`StateError::NotForward`] or [`StateError::Full`].
    pub fn check(&self, v: &Verified) -> Result<Disposition, StateError> {
        let Some(chain) = self.chains.get(&v.channel) else {
            if v.state.prev.is_none() {
                if self.chains.len() >= self.limits.channels {
                    return Err(StateError::Full(format!(
                        "this node holds {} channels, its most",
                        self.limits.channels
                    )));
                }
                let owned = self.chains.values().filter(|c| c.head().state.owner == v.state.owner).count();
                if owned >= self.limits.per_owner {
                    return Err(StateError::Full(format!(
                        "{} owns {owned} channels already, the most one owner may",
                        v.state.owner.short()
                    )));
                }
                return Ok(Disposition::Apply);
            }
            if !v.state.may_change(&v.signer) {
                return Err(StateError::NotOwner { channel: v.channel.short(), signer: v.signer });
            }
            return self.check_wait(v);
        };
        let head = chain.head();
        if chain.states.iter().any(|t| t.id == v.id) || self.is_waiting(v) {
            return Ok(Disposition::Known);
        }
        let not_forward = || StateError::NotForward {
            channel: v.channel.short(),
            epoch: v.state.epoch,
            head: head.state.epoch,
        };
        if v.state.prev == Some(head.id) {
            if !head.state.may_change(&v.signer) {
                return Err(StateError::NotOwner { channel: v.channel.short(), signer: v.signer });
            }
            if v.state.owner != head.state.owner {
                return Err(StateError::Invalid(format!(
                    "channel {}: its owner never changes (a succession is another record)",
                    v.channel.short()
                )));
            }
            // Naming the deputy, ending the channel and shortening how long its keys are kept
            // are the owner's alone: a deputy cannot make every member destroy their keys.
            let owners_only = v.state.deputy != head.state.deputy
                || v.state.ends != head.state.ends
                || v.state.retain < head.state.retain;
            if owners_only && v.signer != head.state.owner {
                return Err(StateError::NotOwner { channel: v.channel.short(), signer: v.signer });
            }
            if v.state.epoch != head.state.epoch + 1 {
                return Err(not_forward());
            }
            return Ok(Disposition::Apply);
        }
        // It names an older state, or one this node has not seen.
        if v.state.epoch <= head.state.epoch || chain.states.iter().any(|t| Some(t.id) == v.state.prev) {
            return Err(not_forward());
        }
        // Held only if its signer may change the channel as this node knows it.
        if v.state.owner != head.state.owner || !head.state.may_change(&v.signer) {
            return Err(StateError::NotOwner { channel: v.channel.short(), signer: v.signer });
        }
        self.check_wait(v)
    }

    fn is_waiting(&self, v: &Verified) -> bool {
        v.state.prev.and_then(|p| self.waiting.get(&p)).is_some_and(|w| w.iter().any(|x| x.id == v.id))
    }

    fn check_wait(&self, v: &Verified) -> Result<Disposition, StateError> {
        if self.is_waiting(v) {
            return Ok(Disposition::Known);
        }
        let count: usize = self.waiting.values().map(Vec::len).sum();
        if count >= self.limits.waiting || self.waiting_bytes + v.record.len() > self.limits.waiting_bytes {
            return Err(StateError::Full(format!(
                "{count} channel states wait for their predecessor here already, the most"
            )));
        }
        // One signer cannot fill the waiting room for everyone else.
        let by_signer = self.waiting.values().flatten().filter(|w| w.signer == v.signer).count();
        if by_signer >= self.limits.waiting_per_signer {
            return Err(StateError::Full(format!(
                "{by_signer} channel states signed by {} wait for their predecessor here already, the most",
                v.signer.short()
            )));
        }
        Ok(Disposition::Hold)
    }

    /// Takes `v` at `now` if [`Book::check`] allows it; returns the `(channel, epoch)` of every
    /// state that became a head (`v`, and any waiting state it released).
    ///
    /// # Errors
    /// As [`Book::check`]; nothing changes then.
    pub fn take(&mut self, v: Verified, now: Timestamp) -> Result<Vec<(ChannelId, u64)>, StateError> {
        match self.check(&v)? {
            Disposition::Known => Ok(Vec::new()),
            Disposition::Hold => {
                self.waiting_bytes += v.record.len();
                // Invariant: Hold is only answered for a state with a predecessor.
                let prev = v.state.prev.expect("a held state names its predecessor");
                self.waiting.entry(prev).or_default().push(v);
                Ok(Vec::new())
            }
            Disposition::Apply => {
                let mut taken = Vec::new();
                let mut next = vec![v];
                while let Some(v) = next.pop() {
                    if !matches!(self.check(&v), Ok(Disposition::Apply)) {
                        continue;
                    }
                    let id = v.id;
                    taken.push((v.channel, v.state.epoch));
                    self.push(v, now);
                    if let Some(w) = self.waiting.remove(&id) {
                        self.waiting_bytes -= w.iter().map(|x| x.record.len()).sum::<usize>();
                        next.extend(w);
                    }
                }
                Ok(taken)
            }
        }
    }

    fn push(&mut self, v: Verified, now: Timestamp) {
        let bytes = v.record.len();
        let chain = self.chains.entry(v.channel).or_default();
        chain.states.push_back(Taken { id: v.id, state: v.state, at: now, bytes });
        chain.bytes += bytes;
        while chain.states.len() > 1
            && (chain.states.len() > self.limits.states_per_channel
                || chain.bytes > self.limits.bytes_per_channel)
        {
            if let Some(old) = chain.states.pop_front() {
                chain.bytes -= old.bytes;
            }
        }
    }
}

#[cfg(test)]
mod tests;

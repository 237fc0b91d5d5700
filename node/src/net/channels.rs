//! Channels on a node: the epoch keys it holds, and the changes its operators make to the
//! channels it owns.
//!
//! Epoch keys arrive in channel-key control records, sealed (HPKE) to each reader's encryption
//! key; a node takes a key only from the owner or deputy of that epoch's state, and keeps it in
//! a 0600 file under `channel-keys/` (so it survives a restart). A key record that arrives
//! before the state of its epoch waits for it, in memory and bounded. An owner's change is one
//! step on the core thread: the next state, signed and published, then a fresh epoch key sealed
//! to every reader of it and published, then kept here.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};

use godwit_protocol::Timestamp;
use godwit_protocol::channel::{Book, CHANNEL_STATE_VERSION, ChannelState, Member};
use godwit_protocol::crypto::{ChannelKey, EpochKey};
use godwit_protocol::identity::{EncryptionPublicKey, IdentityKey, NodeId};
use godwit_protocol::ids::ChannelId;

/// Key records waiting for their epoch's state, at most, and their bytes at most.
const MAX_WAITING: usize = 256;
const MAX_WAITING_BYTES: usize = 1 << 20;

/// The epoch keys this node holds: from channel-key records, and from configuration.
pub(super) struct EpochKeys {
    dir: PathBuf,
    keys: BTreeMap<(ChannelId, u64), EpochKey>,
    /// Channels from static configuration: their names, and the one epoch each has.
    configured: Vec<super::ChannelKeySpec>,
    waiting: VecDeque<Vec<u8>>,
    /// Names of the channels with a signed state (set as their states arrive).
    names: BTreeMap<ChannelId, String>,
}

impl std::fmt::Debug for EpochKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the keys themselves.
        f.debug_struct("EpochKeys")
            .field("keys", &self.keys.len())
            .field("waiting", &self.waiting.len())
            .finish()
    }
}

impl EpochKeys {
    /// The keys kept under `data_dir/channel-keys`, and the configured ones.
    ///
    /// # Errors
    /// A key file that cannot be read, named.
    pub(super) fn load(data_dir: &Path, configured: Vec<super::ChannelKeySpec>) -> Result<EpochKeys, String> {
        let dir = data_dir.join("channel-keys");
        let mut keys = BTreeMap::new();
        for c in &configured {
            keys.insert((c.id, c.epoch), c.key.clone());
        }
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(EpochKeys {
                    dir,
                    keys,
                    configured,
                    waiting: VecDeque::new(),
                    names: BTreeMap::new(),
                });
            }
            Err(e) => return Err(format!("{}: {e}", dir.display())),
        };
        for entry in entries {
            let path = entry.map_err(|e| format!("{}: {e}", dir.display()))?.path();
            let Some((channel, epoch)) = path.file_name().and_then(|n| n.to_str()).and_then(parse_name)
            else {
                continue;
            };
            // A file a crash left half-written costs that one epoch, not the node's start.
            match godwit_certs::keyfile::read_channel_key(&path) {
                Ok(key) => {
                    keys.insert((channel, epoch), EpochKey::from_bytes(*key));
                }
                Err(e) => {
                    tracing::error!(path = %path.display(), "a channel key file cannot be read, its epoch stays sealed: {e}")
                }
            }
        }
        Ok(EpochKeys { dir, keys, configured, waiting: VecDeque::new(), names: BTreeMap::new() })
    }

    /// The key of `channel` at `epoch`.
    pub(super) fn get(&self, channel: &ChannelId, epoch: u64) -> Option<&EpochKey> {
        self.keys.get(&(*channel, epoch))
    }

    /// A channel's name for operators.
    pub(super) fn name(&self, channel: &ChannelId) -> Option<String> {
        self.names
            .get(channel)
            .cloned()
            .or_else(|| self.configured.iter().find(|c| c.id == *channel).map(|c| c.name.clone()))
    }

    /// Notes a channel's name (from its newest state).
    pub(super) fn set_name(&mut self, channel: ChannelId, name: &str) {
        if self.names.get(&channel).map(String::as_str) != Some(name) {
            self.names.insert(channel, name.to_string());
        }
    }

    /// The configured (static) channels.
    pub(super) fn configured(&self) -> &[super::ChannelKeySpec] {
        &self.configured
    }

    /// Keeps a key: on disk (0600) first.
    ///
    /// # Errors
    /// Why the file could not be written; the key is then not kept.
    pub(super) fn insert(&mut self, channel: ChannelId, epoch: u64, key: EpochKey) -> Result<(), String> {
        if self.keys.contains_key(&(channel, epoch)) {
            return Ok(());
        }
        godwit_certs::files::create_private_dir(&self.dir)
            .map_err(|e| format!("{}: {e}", self.dir.display()))?;
        let path = self.dir.join(format!("{channel}-{epoch}.key"));
        godwit_certs::keyfile::write_channel_key(&path, key.expose())
            .map_err(|e| format!("{}: {e}", path.display()))?;
        self.keys.insert((channel, epoch), key);
        Ok(())
    }

    /// Keeps the key of a new epoch this node (the owner or deputy) is about to publish,
    /// replacing one an earlier attempt left behind that was never published.
    ///
    /// # Errors
    /// Why the file could not be written.
    pub(super) fn replace(&mut self, channel: ChannelId, epoch: u64, key: EpochKey) -> Result<(), String> {
        let path = self.dir.join(format!("{channel}-{epoch}.key"));
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("{}: {e}", path.display())),
        }
        self.keys.remove(&(channel, epoch));
        self.insert(channel, epoch, key)
    }

    /// A channel-key record: the key sealed to `me` is taken if its issuer owns (or deputises
    /// for) that epoch's state in `book`; it waits if the state is not here yet. Returns the
    /// channel and epoch of a key taken.
    ///
    /// # Errors
    /// Why the record is not taken.
    pub(super) fn on_record(
        &mut self,
        record: &[u8],
        book: &Book,
        me: &NodeId,
        ring: &super::keys::KeyRing,
    ) -> Result<Option<(ChannelId, u64)>, String> {
        let ck = ChannelKey::verify(record).map_err(|e| e.to_string())?;
        if !ck.members.iter().any(|s| s.to == *me) || self.keys.contains_key(&(ck.channel, ck.epoch)) {
            return Ok(None);
        }
        let Some((taken, _)) = book.at(&ck.channel, ck.epoch) else {
            let superseded = book.head(&ck.channel).is_some_and(|h| h.state.epoch > ck.epoch);
            if superseded {
                return Err(format!(
                    "epoch {} of channel {} is no longer held here",
                    ck.epoch,
                    ck.channel.short()
                ));
            }
            // The oldest give way: bounded in count and bytes.
            while !self.waiting.is_empty()
                && (self.waiting.len() >= MAX_WAITING
                    || self.waiting.iter().map(Vec::len).sum::<usize>() + record.len() > MAX_WAITING_BYTES)
            {
                self.waiting.pop_front();
            }
            self.waiting.push_back(record.to_vec());
            return Ok(None);
        };
        if !taken.state.may_change(&ck.issuer) {
            return Err(format!(
                "the key of epoch {} of channel {} was issued by {}, neither its owner nor its deputy",
                ck.epoch,
                ck.channel.short(),
                ck.issuer.short()
            ));
        }
        let key = ring.unseal_channel_key(&ck, me).map_err(|e| e.to_string())?;
        self.insert(ck.channel, ck.epoch, key)?;
        Ok(Some((ck.channel, ck.epoch)))
    }

    /// Destroys the keys of every channel that ended more than its retention ago (its files
    /// first; a file that cannot be removed keeps its key, to be tried again). Returns each
    /// channel and how many keys went.
    pub(super) fn destroy_ended(&mut self, book: &Book, now: Timestamp) -> Vec<(ChannelId, usize)> {
        let ended: Vec<ChannelId> = book
            .channels()
            .filter(|(_, h)| {
                h.state.ends.is_some_and(|e| now > e.plus_millis(u64::from(h.state.retain) * 86_400_000))
            })
            .map(|(c, _)| *c)
            .collect();
        let mut out = Vec::new();
        for channel in ended {
            let epochs: Vec<u64> =
                self.keys.range((channel, 0)..=(channel, u64::MAX)).map(|((_, e), _)| *e).collect();
            let mut n = 0;
            for epoch in epochs {
                let path = self.dir.join(format!("{channel}-{epoch}.key"));
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        tracing::warn!(path = %path.display(), "cannot destroy a channel key: {e}");
                        continue;
                    }
                }
                self.keys.remove(&(channel, epoch));
                n += 1;
            }
            if n > 0 {
                out.push((channel, n));
            }
        }
        out
    }

    /// The waiting key records, tried again (a state arrived): the keys taken.
    pub(super) fn retry(
        &mut self,
        book: &Book,
        me: &NodeId,
        ring: &super::keys::KeyRing,
    ) -> Vec<(ChannelId, u64)> {
        let waiting: Vec<Vec<u8>> = self.waiting.drain(..).collect();
        waiting.iter().filter_map(|r| self.on_record(r, book, me, ring).ok().flatten()).collect()
    }
}

fn parse_name(name: &str) -> Option<(ChannelId, u64)> {
    let stem = name.strip_suffix(".key")?;
    let (id, epoch) = stem.split_once('-')?;
    Some((id.parse().ok()?, epoch.parse().ok()?))
}

/// The next state of a channel for a change, from the head `head` (`None` to create one).
///
/// # Errors
/// What makes the change impossible, for the operator.
pub(super) fn next_state(
    head: Option<(&ChannelId, &godwit_protocol::channel::Taken)>,
    me: NodeId,
    change: &Change,
    now: Timestamp,
) -> Result<ChannelState, String> {
    let Some((channel, head)) = head else {
        let Change::Create { name, purpose, deputy, ends, retain_days } = change else {
            return Err("no such channel".into());
        };
        let mut members = vec![Member { node: me, read: true, publish: true }];
        if let Some(d) = deputy {
            members.push(Member { node: *d, read: true, publish: true });
            members.sort_by_key(|m| m.node);
        }
        let state = ChannelState {
            format: CHANNEL_STATE_VERSION,
            ends: *ends,
            name: name.trim().to_string(),
            prev: None,
            epoch: 1,
            owner: me,
            deputy: *deputy,
            retain: *retain_days,
            channel: None,
            created: now,
            members,
            purpose: purpose.trim().to_string(),
        };
        state.validate().map_err(|e| e.to_string())?;
        return Ok(state);
    };
    let s = &head.state;
    if !s.may_change(&me) {
        return Err(format!(
            "only its owner {} or deputy may change channel {:?}; this node is neither",
            s.owner.short(),
            s.name
        ));
    }
    let epoch =
        s.epoch.checked_add(1).ok_or_else(|| format!("channel {:?} has used up its epochs", s.name))?;
    let mut next =
        ChannelState { prev: Some(head.id), channel: Some(*channel), epoch, created: now, ..s.clone() };
    if let Some(ends) = s.ends {
        if now > ends {
            return Err(format!("channel {:?} ended at {ends}: it takes no changes", s.name));
        }
    }
    match change {
        Change::Create { name, .. } => return Err(format!("a channel called {name:?} exists already")),
        Change::Admit { node, read, publish } => {
            if !read && !publish {
                return Err("a member reads, publishes or both".into());
            }
            if s.may_change(node) {
                return Err("the owner and deputy always read and publish".into());
            }
            let m = Member { node: *node, read: *read, publish: *publish };
            match next.members.binary_search_by(|x| x.node.cmp(node)) {
                Ok(i) if next.members[i] == m => {
                    return Err(format!("{} is a member with these rights already", node.short()));
                }
                Ok(i) => next.members[i] = m,
                Err(i) => next.members.insert(i, m),
            }
        }
        Change::Remove { node } => {
            if s.may_change(node) {
                return Err("the owner or deputy cannot be removed".into());
            }
            let before = next.members.len();
            next.members.retain(|m| m.node != *node);
            if next.members.len() == before {
                return Err(format!("{} is not a member of channel {:?}", node.short(), s.name));
            }
        }
        Change::Revoked { nodes } => {
            if nodes.contains(&s.owner) {
                return Err("the owner's own certificate was revoked: it cannot change the channel".into());
            }
            next.members.retain(|m| !nodes.contains(&m.node));
            if next.deputy.is_some_and(|d| nodes.contains(&d)) {
                next.deputy = None;
            }
            if next.members.len() == s.members.len() {
                return Err("none of them is a member".into());
            }
        }
        Change::Close => next.ends = Some(now),
        Change::Rekey => {}
    }
    next.validate().map_err(|e| e.to_string())?;
    Ok(next)
}

/// A change, with its nodes resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Change {
    Create {
        name: String,
        purpose: String,
        deputy: Option<NodeId>,
        ends: Option<Timestamp>,
        retain_days: u32,
    },
    Admit {
        node: NodeId,
        read: bool,
        publish: bool,
    },
    Remove {
        node: NodeId,
    },
    /// Members whose certificates were revoked, all at once (a revoked deputy is no longer one).
    Revoked {
        nodes: Vec<NodeId>,
    },
    Close,
    Rekey,
}

impl Change {
    /// The change in the journal's words, e.g. `admit <NodeId> read,publish`.
    pub(super) fn words(&self) -> String {
        match self {
            Change::Create { name, deputy, ends, .. } => format!(
                "create {name:?}{}{}",
                deputy.map(|d| format!(" deputy {d}")).unwrap_or_default(),
                ends.map(|e| format!(" ends {e}")).unwrap_or_default()
            ),
            Change::Admit { node, read, publish } => {
                let rights = match (read, publish) {
                    (true, true) => "read,publish",
                    (true, false) => "read",
                    _ => "publish",
                };
                format!("admit {node} {rights}")
            }
            Change::Remove { node } => format!("remove {node}"),
            Change::Revoked { nodes } => {
                format!(
                    "remove revoked {}",
                    nodes.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
                )
            }
            Change::Close => "close".into(),
            Change::Rekey => "rekey".into(),
        }
    }
}

/// Lifetime of channel-state and channel-key messages: as long as a message may live.
pub(super) const CONTROL_TTL_MS: u64 = godwit_protocol::envelope::MAX_LIFETIME_MS;

/// The signed state, and a fresh epoch key sealed to its readers, as control records.
///
/// # Errors
/// A reader whose card (encryption key) this node does not know, named.
pub(super) fn sign_change(
    rng: &mut impl rand_core::CryptoRngCore,
    key: &IdentityKey,
    state: &ChannelState,
    channel_of: impl Fn(&[u8]) -> Result<ChannelId, String>,
    encryption_key: impl Fn(&NodeId) -> Option<EncryptionPublicKey>,
    now: Timestamp,
) -> Result<(Vec<u8>, Vec<u8>, ChannelId, EpochKey), String> {
    let record = state.sign(key);
    let channel = channel_of(&record)?;
    let mut readers = Vec::new();
    for m in state.members.iter().filter(|m| m.read) {
        let k = encryption_key(&m.node).ok_or_else(|| {
            format!("no node card of {} is known here: it cannot be sealed the channel key", m.node.short())
        })?;
        readers.push((m.node, k));
    }
    let epoch_key = EpochKey::generate(rng);
    let key_record = ChannelKey::issue(rng, key, channel, state.epoch, &epoch_key, &readers, now)
        .map_err(|e| e.to_string())?;
    Ok((record, key_record, channel, epoch_key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use godwit_protocol::channel::BookLimits;

    fn state(owner: &IdentityKey, name: &str, ends: Option<Timestamp>) -> godwit_protocol::channel::Verified {
        let me = owner.node_id();
        let s = next_state(
            None,
            me,
            &Change::Create { name: name.into(), purpose: String::new(), deputy: None, ends, retain_days: 0 },
            Timestamp(1_000),
        )
        .unwrap();
        ChannelState::verify(&s.sign(owner)).unwrap()
    }

    #[test]
    fn keys_are_kept_in_private_files_and_destroyed_after_an_ended_channels_retention() {
        let dir = tempfile::tempdir().unwrap();
        let owner = IdentityKey::from_seed(&[4; 32]);
        let mut book = Book::new(BookLimits::default());
        let op = state(&owner, "Operation Tusk", Some(Timestamp(5_000)));
        let standing = state(&owner, "RILO ESA alerts", None);
        let (op_id, standing_id) = (op.channel, standing.channel);
        book.take(op, Timestamp(1_000)).unwrap();
        book.take(standing, Timestamp(1_000)).unwrap();
        let mut keys = EpochKeys::load(dir.path(), Vec::new()).unwrap();
        keys.insert(op_id, 1, EpochKey::from_bytes([1; 32])).unwrap();
        keys.insert(standing_id, 1, EpochKey::from_bytes([2; 32])).unwrap();
        let file = dir.path().join("channel-keys").join(format!("{op_id}-1.key"));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
        // Kept across a restart.
        let mut keys = EpochKeys::load(dir.path(), Vec::new()).unwrap();
        assert_eq!(keys.get(&op_id, 1).map(|k| *k.expose()), Some([1; 32]));
        // Before its end nothing goes; after it (retention 0 days) the operation's key goes.
        assert!(keys.destroy_ended(&book, Timestamp(5_000)).is_empty());
        assert_eq!(keys.destroy_ended(&book, Timestamp(5_001)), vec![(op_id, 1)]);
        assert!(keys.get(&op_id, 1).is_none() && !file.exists());
        assert!(keys.get(&standing_id, 1).is_some(), "a channel that has not ended keeps its keys");
        assert!(EpochKeys::load(dir.path(), Vec::new()).unwrap().get(&op_id, 1).is_none());
    }

    #[test]
    fn only_the_owner_or_deputy_changes_a_channel_and_each_change_names_what_is_wrong() {
        let owner = IdentityKey::from_seed(&[4; 32]);
        let other = IdentityKey::from_seed(&[5; 32]).node_id();
        let mut book = Book::new(BookLimits::default());
        let g = state(&owner, "RILO ESA alerts", None);
        let id = g.channel;
        book.take(g, Timestamp(1_000)).unwrap();
        let head = book.channels().next().unwrap();
        let t = Timestamp(2_000);
        let e = next_state(Some(head), other, &Change::Rekey, t).unwrap_err();
        assert!(e.contains("only its owner"), "{e}");
        let admit = Change::Admit { node: other, read: true, publish: false };
        let s = next_state(Some(head), owner.node_id(), &admit, t).unwrap();
        assert_eq!(
            (s.epoch, s.prev, s.channel, s.reads(&other), s.publishes(&other)),
            (2, Some(head.1.id), Some(id), true, false)
        );
        let e = next_state(Some(head), owner.node_id(), &Change::Remove { node: other }, t).unwrap_err();
        assert!(e.contains("is not a member"), "{e}");
        let e = next_state(Some(head), owner.node_id(), &Change::Remove { node: owner.node_id() }, t)
            .unwrap_err();
        assert!(e.contains("cannot be removed"), "{e}");
        let none = Change::Admit { node: other, read: false, publish: false };
        assert!(
            next_state(Some(head), owner.node_id(), &none, t)
                .unwrap_err()
                .contains("reads, publishes or both")
        );
    }
}

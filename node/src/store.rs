//! Durable storage on sled, behind one narrow module: the relay's [`Store`] trait, the event
//! journal with its hash chain, and the durability rule.
//!
//! Layout (one sled tree each):
//!
//! | tree | key | value |
//! | --- | --- | --- |
//! | `msgs` | message id | envelope bytes |
//! | `meta` | message id | [`MsgMeta`] (CBOR) |
//! | `slots` | author ‖ feed ‖ seq (BE) | [`SlotRec`] |
//! | `heads` | author ‖ feed | [`HeadRec`] |
//! | `log` | local position (BE) | message id |
//! | `flash` | local position (BE) of a flash message | message id (sent first on catch-up) |
//! | `inbox` | local position (BE) | message id |
//! | `cursors` | peer NodeId | cursor (BE u64) |
//! | `journal` | journal seq (BE) | [`JournalEntry`] |
//! | `state` | name | value (schema version, journal head, last log position) |
//! | `peers` | peer NodeId | [`PeerRecord`]: who it is, when it was last connected |
//!
//! Every state change and its journal entry are written in one sled transaction. **Durability**:
//! [`SledStore::commit`] calls sled's `flush()` — which in sled 0.34 ends in
//! `sync_file_range`, not an fsync — and then fsyncs every file of the database and the
//! directory itself, so acknowledged data survives power loss. On open, the journal hash chain
//! and every message id are recomputed; damage is reported, never trusted.

use std::path::{Path, PathBuf};

use godwit_protocol::audit::Event;
use godwit_protocol::codec;
use godwit_protocol::envelope::{Priority, message_id, raw};
use godwit_protocol::identity::NodeId;
use godwit_protocol::ids::{FeedId, MessageId};
use godwit_protocol::relay::{HeadRec, Insert, MsgMeta, SlotRec, Store};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use sled::{Transactional, Tree};

/// The storage schema version this code reads and writes.
pub const SCHEMA_VERSION: u32 = 1;

const JOURNAL_CONTEXT: &[u8] = b"godwit/v1 journal\0";

/// A storage failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// sled reported an error.
    #[error("database error in {path}: {source}")]
    Sled {
        /// The database directory.
        path: PathBuf,
        /// The error.
        source: sled::Error,
    },
    /// Making data durable failed.
    #[error("cannot fsync {path}: {source}")]
    Sync {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A stored record could not be decoded.
    #[error("stored record in {tree} is corrupt: {detail}")]
    Corrupt {
        /// The tree.
        tree: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// The database was written by another schema version.
    #[error("database schema version {found} is not supported (this godwitd uses {SCHEMA_VERSION})")]
    Schema {
        /// The version found.
        found: u32,
    },
}

/// One journal entry: an event, chained to its predecessor by hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalEntry {
    /// Position in the journal, from 1.
    pub seq: u64,
    /// Hash of the previous entry (zeros for the first).
    #[serde(with = "serde_bytes")]
    pub prev: [u8; 32],
    /// The event.
    pub event: Event,
}

/// What checking the store on open found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IntegrityReport {
    /// Messages checked.
    pub messages: u64,
    /// Journal entries checked.
    pub journal: u64,
    /// Problems found; empty when the store is sound.
    pub damage: Vec<String>,
}

const MSGS: usize = 0;
const META: usize = 1;
const SLOTS: usize = 2;
const HEADS: usize = 3;
const LOG: usize = 4;
const INBOX: usize = 5;
const CURSORS: usize = 6;
const JOURNAL: usize = 7;
const STATE: usize = 8;
const PEERS: usize = 9;
const FLASH: usize = 10;
const TREES: [&str; 11] =
    ["msgs", "meta", "slots", "heads", "log", "inbox", "cursors", "journal", "state", "peers", "flash"];

/// What the node remembers of a peer it has been connected to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerRecord {
    /// Role from its certificate (`member`, `hub`, `authority`).
    pub role: String,
    /// Administration from its certificate.
    pub admin: String,
    /// Last time a connection came up (ms since the epoch).
    pub last_seen: u64,
}

/// The node's store.
#[derive(Debug, Clone)]
pub struct SledStore {
    path: PathBuf,
    db: sled::Db,
    trees: Vec<Tree>,
    #[cfg(feature = "fault-injection")]
    faults: std::sync::Arc<StoreFaults>,
}

/// Faults a test can make the store show (feature `fault-injection`): a disk that stops
/// syncing, to check that nothing is acknowledged after a failed commit.
#[cfg(feature = "fault-injection")]
#[derive(Debug, Default)]
pub struct StoreFaults {
    fail_commits: std::sync::atomic::AtomicBool,
}

#[cfg(feature = "fault-injection")]
impl StoreFaults {
    /// From now on, every commit fails as an fsync error would.
    pub fn fail_commits(&self) {
        self.fail_commits.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

type TxResult<T> = Result<T, ConflictableTransactionError<String>>;

impl SledStore {
    /// Opens (or creates) the store in `dir` and checks its integrity.
    ///
    /// # Errors
    /// [`StoreError`] if the database cannot be opened or has another schema version.
    pub fn open(dir: &Path) -> Result<(SledStore, IntegrityReport), StoreError> {
        let sled_err = |source| StoreError::Sled { path: dir.to_owned(), source };
        let db = sled::Config::new().path(dir).mode(sled::Mode::HighThroughput).open().map_err(sled_err)?;
        let trees = TREES.iter().map(|t| db.open_tree(t)).collect::<Result<Vec<_>, _>>().map_err(sled_err)?;
        let store = SledStore {
            path: dir.to_owned(),
            db,
            trees,
            #[cfg(feature = "fault-injection")]
            faults: std::sync::Arc::default(),
        };
        match store.trees[STATE].get("schema").map_err(sled_err)? {
            None => {
                store.trees[STATE].insert("schema", &SCHEMA_VERSION.to_be_bytes()).map_err(sled_err)?;
                store.commit()?;
            }
            Some(v) => {
                let found = u32::from_be_bytes(v.as_ref().try_into().unwrap_or([0xff; 4]));
                if found != SCHEMA_VERSION {
                    return Err(StoreError::Schema { found });
                }
            }
        }
        let report = store.check()?;
        Ok((store, report))
    }

    /// Makes everything written so far durable: sled flush, then fsync of its files.
    ///
    /// # Errors
    /// [`StoreError::Sled`] or [`StoreError::Sync`].
    pub fn commit(&self) -> Result<(), StoreError> {
        #[cfg(feature = "fault-injection")]
        if self.faults.fail_commits.load(std::sync::atomic::Ordering::SeqCst) {
            let source = std::io::Error::other("injected fault: the disk stopped syncing");
            return Err(StoreError::Sync { path: self.path.clone(), source });
        }
        self.db.flush().map_err(|source| StoreError::Sled { path: self.path.clone(), source })?;
        fsync_tree(&self.path)
    }

    /// The store's fault switches (feature `fault-injection`).
    #[cfg(feature = "fault-injection")]
    pub fn faults(&self) -> std::sync::Arc<StoreFaults> {
        self.faults.clone()
    }

    /// Recomputes the journal hash chain and every message id.
    fn check(&self) -> Result<IntegrityReport, StoreError> {
        let mut r = IntegrityReport::default();
        let mut prev = [0u8; 32];
        for item in self.trees[JOURNAL].iter() {
            let (k, v) = item.map_err(|source| StoreError::Sled { path: self.path.clone(), source })?;
            r.journal += 1;
            let seq = be_u64(&k);
            match codec::from_slice::<JournalEntry>("journal entry", &v) {
                Ok(e) if e.seq == seq && e.prev == prev => prev = chain(&prev, &v),
                Ok(e) => {
                    r.damage.push(format!(
                        "journal entry {seq} does not chain to its predecessor (seq field {})",
                        e.seq
                    ));
                    prev = chain(&prev, &v);
                }
                Err(e) => r.damage.push(format!("journal entry {seq} is unreadable: {e}")),
            }
        }
        if let Some(head) = self.get(STATE, b"journal_head")? {
            if head.len() == 40 && head[8..] != prev {
                r.damage.push("journal head hash does not match the entries".into());
            }
        }
        for item in self.trees[MSGS].iter() {
            let (k, v) = item.map_err(|source| StoreError::Sled { path: self.path.clone(), source })?;
            r.messages += 1;
            let ok = raw::split(&v).is_some_and(|(p, payload, _)| message_id(&p, &payload).0[..] == k[..]);
            if !ok {
                r.damage.push(format!("message {} does not hash to its id", hex32(&k)));
            }
            if self.get(META, &k)?.is_none() {
                r.damage.push(format!("message {} has no metadata", hex32(&k)));
            }
        }
        self.check_references(&mut r.damage)?;
        Ok(r)
    }

    /// The cross-references between trees: every message's metadata, log position, feed slot,
    /// head and flash entry agree; log, inbox, flash and slot entries name held messages;
    /// heads and cursors are within what is held.
    fn check_references(&self, damage: &mut Vec<String>) -> Result<(), StoreError> {
        let sled_err = |source| StoreError::Sled { path: self.path.clone(), source };
        let log_last = self.get(STATE, b"log_last")?.map_or(0, |v| be_u64(&v));
        for item in self.trees[META].iter() {
            let (k, v) = item.map_err(sled_err)?;
            let id = hex32(&k);
            let meta = match codec::from_slice::<MsgMeta>("message metadata", &v) {
                Ok(m) => m,
                Err(e) => {
                    damage.push(format!("metadata of message {id} is unreadable: {e}"));
                    continue;
                }
            };
            if self.get(MSGS, &k)?.is_none() {
                damage.push(format!("metadata of message {id} has no message"));
            }
            if self.get(LOG, &meta.local.to_be_bytes())?.as_deref() != Some(&k[..]) {
                damage.push(format!("message {id} is not at its log position {}", meta.local));
            }
            let slot = self.get(SLOTS, &slot_key(&meta.author, &meta.feed, meta.seq))?;
            let slot = slot.and_then(|v| codec::from_slice::<SlotRec>("feed slot", &v).ok());
            if slot.is_none_or(|s| s.id.0[..] != k[..]) {
                damage.push(format!("message {id} is not in its feed slot (seq {})", meta.seq));
            }
            let head = self.get(HEADS, &head_key(&meta.author, &meta.feed))?;
            let head = head.and_then(|v| codec::from_slice::<HeadRec>("feed head", &v).ok());
            if head.is_none_or(|h| h.top < meta.seq) {
                damage.push(format!(
                    "the head of message {id}'s feed is missing or below its seq {}",
                    meta.seq
                ));
            }
            let flash = self.get(FLASH, &meta.local.to_be_bytes())?.is_some();
            if flash != (meta.priority == Priority::Flash) {
                damage.push(format!("the flash index disagrees with message {id}'s priority"));
            }
        }
        for (tree, name) in [(LOG, "log"), (INBOX, "inbox"), (FLASH, "flash index")] {
            for item in self.trees[tree].iter() {
                let (k, v) = item.map_err(sled_err)?;
                if be_u64(&k) > log_last {
                    damage.push(format!(
                        "{name} position {} is beyond the last log position {log_last}",
                        be_u64(&k)
                    ));
                }
                if self.get(META, &v)?.is_none() {
                    damage.push(format!(
                        "{name} position {} names message {}, which is not held",
                        be_u64(&k),
                        hex32(&v)
                    ));
                }
            }
        }
        for item in self.trees[SLOTS].iter() {
            let (_, v) = item.map_err(sled_err)?;
            match codec::from_slice::<SlotRec>("feed slot", &v) {
                Ok(slot) if self.get(MSGS, slot.id.as_bytes())?.is_none() => {
                    damage.push(format!("a feed slot names message {}, which is not held", slot.id))
                }
                Ok(_) => {}
                Err(e) => damage.push(format!("a feed slot is unreadable: {e}")),
            }
        }
        for item in self.trees[HEADS].iter() {
            let (_, v) = item.map_err(sled_err)?;
            match codec::from_slice::<HeadRec>("feed head", &v) {
                Ok(h) if h.seq > h.top => {
                    damage.push(format!("a feed head's seq {} is above its top {}", h.seq, h.top))
                }
                Ok(_) => {}
                Err(e) => damage.push(format!("a feed head is unreadable: {e}")),
            }
        }
        for item in self.trees[CURSORS].iter() {
            let (k, v) = item.map_err(sled_err)?;
            if be_u64(&v) > log_last {
                damage.push(format!(
                    "the cursor of peer {} is at {}, beyond the last log position {log_last}",
                    hex32(&k),
                    be_u64(&v)
                ));
            }
        }
        Ok(())
    }

    /// Records that `peer` connected (not journalled: connections are not state changes of the
    /// message store).
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn record_peer(&self, peer: &NodeId, rec: &PeerRecord) -> Result<(), StoreError> {
        self.trees[PEERS]
            .insert(peer.as_bytes(), codec::to_vec(rec))
            .map(|_| ())
            .map_err(|source| StoreError::Sled { path: self.path.clone(), source })
    }

    /// Every peer ever connected, with what is known of it.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn peers(&self) -> Result<Vec<(NodeId, PeerRecord)>, StoreError> {
        self.trees[PEERS]
            .iter()
            .map(|item| {
                let (k, v) = item.map_err(|source| StoreError::Sled { path: self.path.clone(), source })?;
                let id: [u8; 32] = k.as_ref().try_into().map_err(|_| StoreError::Corrupt {
                    tree: "peers",
                    detail: "key is not a NodeId".into(),
                })?;
                let id = NodeId::from_bytes(id)
                    .map_err(|e| StoreError::Corrupt { tree: "peers", detail: e.to_string() })?;
                Ok((id, Self::decode("peers", &v)?))
            })
            .collect()
    }

    /// Journal entries in order (for `godwit audit` and tests).
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn journal(&self) -> Result<Vec<JournalEntry>, StoreError> {
        self.trees[JOURNAL]
            .iter()
            .map(|item| {
                let (_, v) = item.map_err(|source| StoreError::Sled { path: self.path.clone(), source })?;
                codec::from_slice("journal entry", &v)
                    .map_err(|e| StoreError::Corrupt { tree: "journal", detail: e.to_string() })
            })
            .collect()
    }

    fn get(&self, tree: usize, key: &[u8]) -> Result<Option<sled::IVec>, StoreError> {
        self.trees[tree].get(key).map_err(|source| StoreError::Sled { path: self.path.clone(), source })
    }

    fn decode<T: serde::de::DeserializeOwned + Serialize>(
        tree: &'static str,
        bytes: &[u8],
    ) -> Result<T, StoreError> {
        codec::from_slice(tree, bytes).map_err(|e| StoreError::Corrupt { tree, detail: e.to_string() })
    }

    /// Runs `f` in one transaction over all trees, appending `events` to the journal in it.
    /// Up to `limit` entries of a position-keyed tree (`log`, `flash`) after `after`.
    fn positions(&self, tree: usize, after: u64, limit: usize) -> Result<Vec<(u64, MessageId)>, StoreError> {
        self.trees[tree]
            .range((after + 1).to_be_bytes()..)
            .take(limit)
            .map(|item| {
                let (k, v) = item.map_err(|source| StoreError::Sled { path: self.path.clone(), source })?;
                Ok((be_u64(&k), id_of(&v)?))
            })
            .collect()
    }

    fn tx<T>(
        &self,
        events: &[Event],
        f: impl Fn(&[TransactionalTree]) -> TxResult<T>,
    ) -> Result<T, StoreError> {
        let res = self.trees.as_slice().transaction(|t| {
            let out = f(t)?;
            let (mut seq, mut prev) = match t[STATE].get("journal_head")? {
                Some(h) if h.len() == 40 => {
                    (be_u64(&h[..8]), <[u8; 32]>::try_from(&h[8..]).unwrap_or([0; 32]))
                }
                _ => (0, [0u8; 32]),
            };
            for event in events {
                seq += 1;
                let bytes = codec::to_vec(&JournalEntry { seq, prev, event: event.clone() });
                t[JOURNAL].insert(&seq.to_be_bytes(), bytes.as_slice())?;
                prev = chain(&prev, &bytes);
            }
            if !events.is_empty() {
                t[STATE].insert("journal_head", [seq.to_be_bytes().as_slice(), &prev].concat())?;
            }
            Ok(out)
        });
        res.map_err(|e| match e {
            TransactionError::Abort(detail) => StoreError::Corrupt { tree: "transaction", detail },
            TransactionError::Storage(source) => StoreError::Sled { path: self.path.clone(), source },
        })
    }
}

impl Store for SledStore {
    type Error = StoreError;

    fn meta(&self, id: &MessageId) -> Result<Option<MsgMeta>, StoreError> {
        self.get(META, id.as_bytes())?.map(|v| Self::decode("meta", &v)).transpose()
    }
    fn envelope(&self, id: &MessageId) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.get(MSGS, id.as_bytes())?.map(|v| v.to_vec()))
    }
    fn slot(&self, author: &NodeId, feed: &FeedId, seq: u64) -> Result<Option<SlotRec>, StoreError> {
        self.get(SLOTS, &slot_key(author, feed, seq))?.map(|v| Self::decode("slots", &v)).transpose()
    }
    fn head(&self, author: &NodeId, feed: &FeedId) -> Result<Option<HeadRec>, StoreError> {
        self.get(HEADS, &head_key(author, feed))?.map(|v| Self::decode("heads", &v)).transpose()
    }
    fn heads_of(&self, author: &NodeId) -> Result<Vec<(FeedId, HeadRec)>, StoreError> {
        self.trees[HEADS]
            .scan_prefix(author.as_bytes())
            .map(|item| {
                let (k, v) = item.map_err(|source| StoreError::Sled { path: self.path.clone(), source })?;
                let feed = FeedId(
                    k[32..64]
                        .try_into()
                        .map_err(|_| StoreError::Corrupt { tree: "heads", detail: "short key".into() })?,
                );
                Ok((feed, Self::decode("heads", &v)?))
            })
            .collect()
    }
    fn insert(&mut self, ins: Insert<'_>) -> Result<u64, StoreError> {
        let slot = codec::to_vec(&ins.slot);
        let head = codec::to_vec(&ins.head);
        let (author, feed, seq) = (ins.meta.author, ins.meta.feed, ins.meta.seq);
        self.tx(&ins.events, |t| {
            let local = t[STATE].get("log_last")?.map_or(0, |v| be_u64(&v)) + 1;
            let mut meta = ins.meta.clone();
            meta.local = local;
            t[MSGS].insert(ins.id.as_bytes(), ins.env)?;
            t[META].insert(ins.id.as_bytes(), codec::to_vec(&meta))?;
            t[SLOTS].insert(slot_key(&author, &feed, seq).as_slice(), slot.as_slice())?;
            t[HEADS].insert(head_key(&author, &feed).as_slice(), head.as_slice())?;
            t[LOG].insert(&local.to_be_bytes(), ins.id.as_bytes())?;
            if ins.meta.priority == Priority::Flash {
                t[FLASH].insert(&local.to_be_bytes(), ins.id.as_bytes())?;
            }
            if ins.inbox {
                t[INBOX].insert(&local.to_be_bytes(), ins.id.as_bytes())?;
            }
            t[STATE].insert("log_last", &local.to_be_bytes())?;
            Ok(local)
        })
    }
    fn set_head(
        &mut self,
        author: &NodeId,
        feed: &FeedId,
        head: HeadRec,
        event: Event,
    ) -> Result<(), StoreError> {
        let v = codec::to_vec(&head);
        self.tx(&[event], |t| {
            t[HEADS].insert(head_key(author, feed).as_slice(), v.as_slice())?;
            Ok(())
        })
    }
    fn log_after(&self, after: u64, limit: usize) -> Result<Vec<(u64, MessageId)>, StoreError> {
        self.positions(LOG, after, limit)
    }
    fn flash_after(&self, after: u64, limit: usize) -> Result<Vec<(u64, MessageId)>, StoreError> {
        self.positions(FLASH, after, limit)
    }
    fn cursor(&self, peer: &NodeId) -> Result<u64, StoreError> {
        Ok(self.get(CURSORS, peer.as_bytes())?.map_or(0, |v| be_u64(&v)))
    }
    fn set_cursor(&mut self, peer: &NodeId, cursor: u64, event: Option<Event>) -> Result<(), StoreError> {
        let events: Vec<Event> = event.into_iter().collect();
        self.tx(&events, |t| {
            t[CURSORS].insert(peer.as_bytes(), &cursor.to_be_bytes())?;
            Ok(())
        })
    }
    fn record(&mut self, event: Event) -> Result<(), StoreError> {
        self.tx(&[event], |_| Ok(()))
    }
    fn inbox(&self) -> Result<Vec<MessageId>, StoreError> {
        self.trees[INBOX]
            .iter()
            .map(|item| {
                let (_, v) = item.map_err(|source| StoreError::Sled { path: self.path.clone(), source })?;
                id_of(&v)
            })
            .collect()
    }
}

fn chain(prev: &[u8; 32], entry: &[u8]) -> [u8; 32] {
    Sha256::new().chain_update(JOURNAL_CONTEXT).chain_update(prev).chain_update(entry).finalize().into()
}

fn slot_key(author: &NodeId, feed: &FeedId, seq: u64) -> [u8; 72] {
    let mut k = [0u8; 72];
    k[..32].copy_from_slice(author.as_bytes());
    k[32..64].copy_from_slice(feed.as_bytes());
    k[64..].copy_from_slice(&seq.to_be_bytes());
    k
}

fn head_key(author: &NodeId, feed: &FeedId) -> [u8; 64] {
    let mut k = [0u8; 64];
    k[..32].copy_from_slice(author.as_bytes());
    k[32..].copy_from_slice(feed.as_bytes());
    k
}

fn be_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    let n = b.len().min(8);
    a[8 - n..].copy_from_slice(&b[..n]);
    u64::from_be_bytes(a)
}

fn id_of(v: &[u8]) -> Result<MessageId, StoreError> {
    v.try_into()
        .map(MessageId)
        .map_err(|_| StoreError::Corrupt { tree: "log", detail: format!("id of {} bytes", v.len()) })
}

fn hex32(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// fsyncs every regular file under `dir` (one level of subdirectories, as sled uses) and the
/// directories themselves.
fn fsync_tree(dir: &Path) -> Result<(), StoreError> {
    let sync = |p: &Path| -> Result<(), StoreError> {
        std::fs::File::open(p)
            .and_then(|f| f.sync_all())
            .map_err(|source| StoreError::Sync { path: p.to_owned(), source })
    };
    let entries =
        std::fs::read_dir(dir).map_err(|source| StoreError::Sync { path: dir.to_owned(), source })?;
    for e in entries.flatten() {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_file() => sync(&p)?,
            Ok(t) if t.is_dir() => {
                for f in std::fs::read_dir(&p)
                    .map_err(|source| StoreError::Sync { path: p.clone(), source })?
                    .flatten()
                {
                    if f.file_type().is_ok_and(|t| t.is_file()) {
                        sync(&f.path())?;
                    }
                }
                sync(&p)?;
            }
            _ => {}
        }
    }
    sync(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use godwit_protocol::envelope::Priority;
    use godwit_protocol::identity::IdentityKey;

    fn meta(author: NodeId, seq: u64) -> MsgMeta {
        MsgMeta {
            hop: 0,
            seq,
            feed: FeedId([1; 32]),
            from: None,
            local: 0,
            author,
            channel: None,
            expires: godwit_protocol::Timestamp(10),
            priority: Priority::Routine,
            recipients: vec![],
        }
    }

    fn envelope() -> (MessageId, Vec<u8>) {
        let key = IdentityKey::from_seed(&[1; 32]);
        let p = raw::protected(key.node_id().as_bytes());
        let payload = raw::encode_payload(b"h", b"b", None);
        let bytes = raw::assemble(&p, &[0xa0], Some(&payload), &[0; 64]);
        (message_id(&p, &payload), bytes)
    }

    #[test]
    fn stores_and_reopens_with_a_sound_journal() {
        let dir = tempfile::tempdir().unwrap();
        let author = IdentityKey::from_seed(&[1; 32]).node_id();
        let (id, env) = envelope();
        {
            let (mut s, r) = SledStore::open(dir.path()).unwrap();
            assert!(r.damage.is_empty());
            let head = HeadRec { id: Some(id), seq: 1, top: 1, frozen: false };
            let local = s
                .insert(Insert {
                    id,
                    env: &env,
                    meta: meta(author, 1),
                    slot: SlotRec { id, prev: None },
                    head,
                    inbox: true,
                    events: vec![Event::Authored { id }, Event::Delivered { id }],
                })
                .unwrap();
            assert_eq!(local, 1);
            s.set_cursor(&author, 1, Some(Event::Relayed { to: author, ids: vec![id] })).unwrap();
            s.commit().unwrap();
        }
        let (s, r) = SledStore::open(dir.path()).unwrap();
        assert_eq!(r, IntegrityReport { messages: 1, journal: 3, damage: vec![] });
        assert_eq!(s.inbox().unwrap(), vec![id]);
        assert_eq!(s.log_after(0, 10).unwrap(), vec![(1, id)]);
        assert_eq!(s.meta(&id).unwrap().unwrap().local, 1);
        assert_eq!(s.cursor(&author).unwrap(), 1);
        assert_eq!(s.head(&author, &FeedId([1; 32])).unwrap().unwrap().seq, 1);
        assert_eq!(s.heads_of(&author).unwrap().len(), 1);
        let j = s.journal().unwrap();
        assert_eq!(j.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 2, 3]);
        assert_eq!(j[0].prev, [0; 32]);
        let rec = PeerRecord { role: "hub".into(), admin: "RILO ESA".into(), last_seen: 5 };
        s.record_peer(&author, &rec).unwrap();
        assert_eq!(s.peers().unwrap(), vec![(author, rec)]);
    }

    #[test]
    fn reports_a_tampered_journal_and_message() {
        let dir = tempfile::tempdir().unwrap();
        let (id, env) = envelope();
        // The check that `open` runs, run on the open store after tampering with it.
        let (mut s, _) = SledStore::open(dir.path()).unwrap();
        for _ in 0..3 {
            s.record(Event::Delivered { id }).unwrap();
        }
        s.trees[MSGS].insert(id.as_bytes(), &env[..env.len() - 1]).unwrap();
        // Rewrite entry 2 with a different event: the chain breaks at entry 3.
        let e = JournalEntry { seq: 2, prev: [9; 32], event: Event::Authored { id } };
        s.trees[JOURNAL].insert(2u64.to_be_bytes(), codec::to_vec(&e)).unwrap();
        let r = s.check().unwrap();
        assert!(r.damage.iter().any(|d| d.contains("journal entry 2 does not chain")), "{:?}", r.damage);
        assert!(r.damage.iter().any(|d| d.contains("does not hash to its id")), "{:?}", r.damage);
    }

    #[test]
    fn reports_broken_references_between_trees_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let author = IdentityKey::from_seed(&[1; 32]).node_id();
        let (id, env) = envelope();
        // The check that `open` runs, run on the open store before and after tampering with it.
        let (mut s, _) = SledStore::open(dir.path()).unwrap();
        let head = HeadRec { id: Some(id), seq: 1, top: 1, frozen: false };
        let ins = Insert {
            id,
            env: &env,
            meta: meta(author, 1),
            slot: SlotRec { id, prev: None },
            head,
            inbox: true,
            events: vec![Event::Delivered { id }],
        };
        s.insert(ins).unwrap();
        assert_eq!(s.check().unwrap().damage, Vec::<String>::new(), "sound before the damage");
        s.trees[LOG].remove(1u64.to_be_bytes()).unwrap();
        s.trees[INBOX].insert(7u64.to_be_bytes(), &[9u8; 32][..]).unwrap();
        s.trees[CURSORS].insert(author.as_bytes(), &99u64.to_be_bytes()).unwrap();
        s.trees[SLOTS].remove(slot_key(&author, &meta(author, 1).feed, 1)).unwrap();
        let damage = s.check().unwrap().damage;
        for expected in [
            "is not at its log position 1",
            "is not in its feed slot (seq 1)",
            "inbox position 7 is beyond the last log position 1",
            "inbox position 7 names message 0909",
            "beyond the last log position 1",
        ] {
            assert!(damage.iter().any(|d| d.contains(expected)), "{expected:?} not in {damage:?}");
        }
    }

    #[test]
    fn refuses_another_schema_version() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (s, _) = SledStore::open(dir.path()).unwrap();
            s.trees[STATE].insert("schema", &7u32.to_be_bytes()).unwrap();
            s.commit().unwrap();
        }
        let e = SledStore::open(dir.path()).unwrap_err();
        assert!(e.to_string().contains("schema version 7 is not supported"), "{e}");
    }
}

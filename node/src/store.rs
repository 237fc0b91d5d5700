//! Durable storage on sled, behind one narrow module: the relay's [`Store`] trait, the event
//! journal with its hash chain, and the durability rule.
//!
//! Layout: one sled tree (`godwit`), one keyspace, each table a one-byte key prefix:
//!
//! | table | prefix | key | value |
//! | --- | --- | --- | --- |
//! | `msgs` | `m` | message id | envelope bytes (empty once pruned after expiry) |
//! | `meta` | `M` | message id | [`MsgMeta`] (CBOR) |
//! | `slots` | `s` | author ‖ feed ‖ seq (BE) | [`SlotRec`] |
//! | `heads` | `h` | author ‖ feed | [`HeadRec`] |
//! | `log` | `l` | local position (BE) | message id |
//! | `flash` | `f` | local position (BE) of a flash message | message id (sent first on catch-up) |
//! | `inbox` | `i` | local position (BE) | message id |
//! | `cursors` | `c` | peer NodeId | cursor (BE u64) |
//! | `journal` | `J` | seq / 16 (BE) | 16 consecutive [`JournalEntry`]s, each length-prefixed (a pack; the last one partial; see `journal.rs`) |
//! | `state` | `S` | name | value (schema version, journal head, last log position) |
//! | `peers` | `p` | peer NodeId | [`PeerRecord`]: who it is, when it was last connected |
//! | `expiry` | `x` | expires (BE) ‖ local position (BE) | message id, until pruned (inbox messages are not indexed) |
//! | `evidence` | `e` | author ‖ feed ‖ seq (BE) | [`ForkRecord`]: the id held and the conflicting envelope |
//! | `pruned` | `y` | expires (BE) ‖ local position (BE) | message id, once pruned: removed whole after the retention |
//! | `dials` | `D` | NodeId | `ip:port` of a peer the operator added (`godwit peers add`) |
//! | `blocked` | `B` | NodeId | empty: a node the operator blocked |
//! | `directory` | `d` | NodeId | the node's newest checked card (a signed control record) |
//! | `quarantine` | `q` | message id | a damaged envelope, set aside on open until a sound copy is fetched again |
//! | `own` | `o` | message id | [`OwnRecord`]: a seizure report, correction or retraction this node authored, its envelope and body (never its personal section) |
//!
//! **Atomicity**: the relay's group commit arrives as one [`Batch`], every state change with its
//! journal entries, and is written as one sled batch on the one tree — sled applies a batch
//! atomically, so after a crash either all of it is there or none of it (one keyspace is what
//! makes that one cheap write rather than a transaction over many trees). **Durability**:
//! [`SledStore::commit`] calls sled's `flush()` — which in sled 0.34 ends in `sync_file_range`,
//! not an fsync — and then fsyncs every file of the database and the directory itself, so
//! acknowledged data survives power loss. On open, the journal hash chain and every message id
//! are recomputed; damage is reported, never trusted. An envelope that no longer hashes to its id
//! is set aside (`quarantine`) and fetched again from peers while the node runs.

use std::path::{Path, PathBuf};

use godwit_protocol::Timestamp;
use godwit_protocol::audit::Event;
use godwit_protocol::codec;
use godwit_protocol::envelope::{Priority, message_id, raw};
use godwit_protocol::identity::NodeId;
use godwit_protocol::ids::{FeedId, MessageId};
use godwit_protocol::relay::{Batch, HeadRec, Mark, MsgMeta, SlotRec, Store, Write};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sled::Tree;

mod audit;
mod journal;

pub use audit::{AuditReader, CheckpointRec, GenerationRec, GenerationReport};

/// Bytes of sled's page cache (sled's default is 1 GiB).
const CACHE_BYTES: u64 = 64 << 20;

/// How long opening waits for the store's file lock. sled releases it from background threads
/// moments after its last handle is dropped, so a reopen in the same process (a restart, an
/// offline command right after the daemon stopped) may find it still held; a store another
/// process keeps open is refused once this has passed.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The store's file lock (sled's `flock` on `<dir>/db`), as found after sled refused to open:
/// its error is classified by the lock's state, not by its message text.
enum Lock {
    /// Nobody holds it: sled refused for another reason.
    Free,
    /// It was held, and has been let go since.
    Released,
    /// It is still held at the deadline.
    Held,
}

/// Looks at the store's lock and, when it is held, waits until it is let go or `deadline`
/// passes. The wait is a blocking `flock` on a thread of its own, woken by the release itself;
/// past the deadline that thread is left to end with the release.
fn wait_for_lock(dir: &Path, deadline: std::time::Instant) -> Lock {
    use fs2::FileExt;
    let Ok(file) = std::fs::File::open(dir.join("db")) else { return Lock::Free };
    match file.try_lock_exclusive() {
        Ok(()) => return Lock::Free, // let go again when `file` is closed
        Err(e) if e.raw_os_error() != fs2::lock_contended_error().raw_os_error() => return Lock::Free,
        Err(_) => {}
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = std::thread::Builder::new().name("godwit-store-lock".into()).spawn(move || {
        // Taken, then let go at once as `file` is closed: only the moment counts.
        let _ = tx.send(file.lock_exclusive().is_ok());
    });
    if waiter.is_err() {
        return Lock::Held;
    }
    match rx.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now())) {
        Ok(true) => Lock::Released,
        _ => Lock::Held,
    }
}

/// The storage schema version this code reads and writes.
pub const SCHEMA_VERSION: u32 = 3;

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
    /// Another process (or another handle in this one) holds the store open.
    #[error("the store {path} is in use by another process (is godwitd already running on it?)")]
    InUse {
        /// The database directory.
        path: PathBuf,
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
    /// When it was written (ms since the epoch, UTC; 0 in entries of older versions, which do
    /// not carry it). First: deterministic CBOR orders the key `at` before the others.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub at: u64,
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
    /// Messages whose envelope was damaged, set aside to be fetched again: id and metadata.
    pub quarantined: Vec<(MessageId, MsgMeta)>,
}

/// A table of the one keyspace: its key prefix and its name (for damage reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Table(u8, &'static str);

const MSGS: Table = Table(b'm', "msgs");
const META: Table = Table(b'M', "meta");
const SLOTS: Table = Table(b's', "slots");
const HEADS: Table = Table(b'h', "heads");
const LOG: Table = Table(b'l', "log");
const INBOX: Table = Table(b'i', "inbox");
const CURSORS: Table = Table(b'c', "cursors");
const JOURNAL: Table = Table(b'J', "journal");
const STATE: Table = Table(b'S', "state");
const PEERS: Table = Table(b'p', "peers");
const FLASH: Table = Table(b'f', "flash");
const EVIDENCE: Table = Table(b'e', "evidence");
const EXPIRY: Table = Table(b'x', "expiry");
const QUARANTINE: Table = Table(b'q', "quarantine");
const PRUNED: Table = Table(b'y', "pruned");
const CARDS: Table = Table(b'd', "directory");
const DIALS: Table = Table(b'D', "dials");
const BLOCKED: Table = Table(b'B', "blocked");
const MARKS: Table = Table(b'k', "marks");
const CHANNEL_STATES: Table = Table(b'C', "channel states");
const OWN: Table = Table(b'o', "own reports");

/// The key of `key` in table `t`.
fn k(t: Table, key: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(1 + key.len());
    v.push(t.0);
    v.extend_from_slice(key);
    v
}

/// What the node remembers of a peer it has been connected to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerRecord {
    /// Its certificate (DER), as it last presented it (absent in records of older versions).
    #[serde(default, skip_serializing_if = "Vec::is_empty", with = "serde_bytes")]
    pub cert: Vec<u8>,
    /// Role from its certificate (`member`, `hub`, `authority`).
    pub role: String,
    /// Administration from its certificate.
    pub admin: String,
    /// Last time a connection came up (ms since the epoch).
    pub last_seen: u64,
}

/// A report this node authored, as kept (table `own`): the envelope it signed (kept after the
/// message expires and its stored copy is dropped) and the body it sealed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OwnRecord {
    /// The envelope, as signed.
    #[serde(with = "serde_bytes")]
    pub envelope: Vec<u8>,
    /// The body (Godwit's CBOR), without the personal section.
    #[serde(with = "serde_bytes")]
    pub body: Vec<u8>,
}

/// Evidence of a fork: an author signed two messages for one place in a feed. The held message
/// is in the store; this keeps the other, as received, so that both can be shown to anyone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForkRecord {
    /// The contested seq.
    pub seq: u64,
    /// The feed.
    pub feed: FeedId,
    /// The author.
    pub author: NodeId,
    /// The id held at that place.
    pub existing: MessageId,
    /// The conflicting envelope, as received.
    #[serde(with = "serde_bytes")]
    pub envelope: Vec<u8>,
}

/// The inbox as the announcer reads it (through the core thread): entries appear only once their commit
/// is written, and the announcer's cursor (`state/announced`, the last inbox position announced)
/// is its own. The cursor is advisory: if a crash loses its last move, those messages are
/// announced again — at least once, never not at all.
#[derive(Debug, Clone)]
pub struct InboxView {
    tree: Tree,
    path: PathBuf,
}

impl InboxView {
    /// Up to `limit` inbox entries after position `after`: position, id and envelope.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn after(&self, after: u64, limit: usize) -> Result<Vec<(u64, MessageId, Vec<u8>)>, StoreError> {
        let err = |source| StoreError::Sled { path: self.path.clone(), source };
        let mut out = Vec::new();
        for item in self.tree.range(k(INBOX, &(after + 1).to_be_bytes())..vec![INBOX.0 + 1]).take(limit) {
            let (key, v) = item.map_err(err)?;
            let id = id_of(&v)?;
            let env =
                self.tree.get(k(MSGS, id.as_bytes())).map_err(err)?.map(|e| e.to_vec()).unwrap_or_default();
            out.push((be_u64(&key[1..]), id, env));
        }
        Ok(out)
    }

    /// The last inbox position (0: empty).
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn last(&self) -> Result<u64, StoreError> {
        let last = self
            .tree
            .range(k(INBOX, &[])..vec![INBOX.0 + 1])
            .next_back()
            .transpose()
            .map_err(|source| StoreError::Sled { path: self.path.clone(), source })?;
        Ok(last.map_or(0, |(key, _)| be_u64(&key[1..])))
    }

    /// The position just before the `n` newest inbox entries (0 when there are no more than
    /// `n`), or the last position for `n` 0: [`InboxView::after`] it lists those `n` and what
    /// follows. (Inbox positions are log positions, which start at 1.)
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn back(&self, n: usize) -> Result<u64, StoreError> {
        if n == 0 {
            return self.last();
        }
        let mut oldest = None;
        for item in self.tree.range(k(INBOX, &[])..vec![INBOX.0 + 1]).rev().take(n) {
            let (key, _) = item.map_err(|source| StoreError::Sled { path: self.path.clone(), source })?;
            oldest = Some(be_u64(&key[1..]));
        }
        Ok(oldest.map_or(0, |p| p.saturating_sub(1)))
    }

    /// The last inbox position announced (0: none).
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn announced(&self) -> Result<u64, StoreError> {
        let v = self
            .tree
            .get(k(STATE, b"announced"))
            .map_err(|source| StoreError::Sled { path: self.path.clone(), source })?;
        Ok(v.map_or(0, |v| be_u64(&v)))
    }

    /// Moves the cursor (made durable with the store's next commit).
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn set_announced(&self, position: u64) -> Result<(), StoreError> {
        self.tree
            .insert(k(STATE, b"announced"), &position.to_be_bytes())
            .map(|_| ())
            .map_err(|source| StoreError::Sled { path: self.path.clone(), source })
    }
}

/// The node's store.
#[derive(Debug)]
pub struct SledStore {
    path: PathBuf,
    db: sled::Db,
    tree: Tree,
    /// The journal's last entry: its seq and hash (what the next entry chains to).
    journal_head: (u64, [u8; 32]),
    /// The last log position written.
    log_last: u64,
    /// The audit log's current generation.
    audit: audit::AuditHead,
    /// The journal's last pack while it is partial: its value as stored.
    journal_pack: Vec<u8>,
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

impl SledStore {
    /// Opens (or creates) the store in `dir` and checks its integrity.
    ///
    /// # Errors
    /// [`StoreError`] if the database cannot be opened or has another schema version.
    pub fn open(dir: &Path) -> Result<(SledStore, IntegrityReport), StoreError> {
        let sled_err = |source| StoreError::Sled { path: dir.to_owned(), source };
        // sled's page cache would grow to 1 GiB by default: the node's memory is budgeted.
        let config =
            sled::Config::new().path(dir).mode(sled::Mode::HighThroughput).cache_capacity(CACHE_BYTES);
        let deadline = std::time::Instant::now() + LOCK_WAIT;
        // One more attempt when the lock was free by the time it was looked at.
        let mut retried = false;
        let db = loop {
            match config.open() {
                Ok(db) => break db,
                Err(e @ sled::Error::Io(_)) => match wait_for_lock(dir, deadline) {
                    Lock::Released => {}
                    Lock::Held => return Err(StoreError::InUse { path: dir.to_owned() }),
                    Lock::Free if !std::mem::replace(&mut retried, true) => {}
                    Lock::Free => return Err(sled_err(e)),
                },
                Err(e) => return Err(sled_err(e)),
            }
        };
        let tree = db.open_tree("godwit").map_err(sled_err)?;
        let mut store = SledStore {
            path: dir.to_owned(),
            db,
            tree,
            journal_head: (0, [0; 32]),
            log_last: 0,
            audit: audit::AuditHead::default(),
            journal_pack: Vec::new(),
            #[cfg(feature = "fault-injection")]
            faults: std::sync::Arc::default(),
        };
        match store.get(STATE, b"schema")? {
            None => {
                // Schema 1 kept each table in a tree of its own.
                if store.db.tree_names().iter().any(|n| n.as_ref() == b"state") {
                    let old = store.db.open_tree("state").map_err(sled_err)?;
                    if let Some(v) = old.get("schema").map_err(sled_err)? {
                        let found = u32::from_be_bytes(v.as_ref().try_into().unwrap_or([0xff; 4]));
                        return Err(StoreError::Schema { found });
                    }
                }
                store.tree.insert(k(STATE, b"schema"), &SCHEMA_VERSION.to_be_bytes()).map_err(sled_err)?;
                store.commit()?;
            }
            Some(v) => {
                let found = u32::from_be_bytes(v.as_ref().try_into().unwrap_or([0xff; 4]));
                if found == 2 {
                    // Schema 2 kept one journal entry per key: moved into packs, then marked.
                    journal::migrate(&store.tree, 4096).map_err(sled_err)?;
                    store
                        .tree
                        .insert(k(STATE, b"schema"), &SCHEMA_VERSION.to_be_bytes())
                        .map_err(sled_err)?;
                    store.commit()?;
                } else if found != SCHEMA_VERSION {
                    return Err(StoreError::Schema { found });
                }
            }
        }
        if let Some(h) = store.get(STATE, b"journal_head")? {
            if h.len() == 40 {
                store.journal_head = (be_u64(&h[..8]), h[8..].try_into().unwrap_or([0; 32]));
            }
        }
        store.log_last = store.get(STATE, b"log_last")?.map_or(0, |v| be_u64(&v));
        if let Some(p) = journal::partial(store.journal_head.0) {
            store.journal_pack = store.get(JOURNAL, &p.to_be_bytes())?.map_or(Vec::new(), |v| v.to_vec());
        }
        store.open_audit()?;
        let mut report = store.check()?;
        store.quarantine(&mut report)?;
        Ok((store, report))
    }

    /// Sets aside every envelope that no longer hashes to its id (its metadata readable): the
    /// damaged bytes move to `quarantine` and the message reads as held without its envelope
    /// until a sound copy is fetched again. Lists everything set aside, now or on earlier opens.
    fn quarantine(&mut self, report: &mut IntegrityReport) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        let mut moved = false;
        for item in self.scan(MSGS) {
            let (key, v) = item?;
            if v.is_empty()
                || raw::split(&v).is_some_and(|(p, payload, _)| message_id(&p, &payload).0[..] == key[..])
            {
                continue;
            }
            if self.get(META, &key)?.is_some() {
                batch.insert(k(QUARANTINE, &key), v);
                batch.insert(k(MSGS, &key), &[][..]);
                moved = true;
            }
        }
        if moved {
            self.tree.apply_batch(batch).map_err(|e| self.sled_err(e))?;
            self.commit()?;
        }
        for item in self.scan(QUARANTINE) {
            let (key, _) = item?;
            let id: [u8; 32] = key.as_ref().try_into().map_err(|_| StoreError::Corrupt {
                tree: "quarantine",
                detail: "key is not a message id".into(),
            })?;
            let Some(meta) = self.get(META, &key)? else { continue };
            let meta: MsgMeta = Self::decode(META, &meta)?;
            if !report.damage.iter().any(|d| d.contains(&hex32(&key))) {
                report.damage.push(format!(
                    "message {} was damaged and is set aside until a peer sends it again",
                    hex32(&key)
                ));
            }
            report.quarantined.push((MessageId(id), meta));
        }
        Ok(())
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

    /// The size of the store on disk, in bytes.
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        self.db.size_on_disk().map_err(|e| self.sled_err(e))
    }

    /// Free space on the disk that holds the store, in bytes.
    ///
    /// # Errors
    /// The I/O error.
    pub fn free_space(&self) -> std::io::Result<u64> {
        fs2::available_space(&self.path)
    }

    /// Flips one bit of a stored envelope, as a failing disk would (feature `fault-injection`).
    ///
    /// # Errors
    /// [`StoreError::Sled`].
    #[cfg(feature = "fault-injection")]
    pub fn damage_envelope(&self, id: &MessageId) -> Result<(), StoreError> {
        let Some(v) = self.get(MSGS, id.as_bytes())? else { return Ok(()) };
        let mut bad = v.to_vec();
        let at = bad.len() / 2;
        bad[at] ^= 0x01;
        self.tree.insert(k(MSGS, id.as_bytes()), bad).map_err(|e| self.sled_err(e))?;
        self.commit()
    }

    /// The store's fault switches (feature `fault-injection`).
    #[cfg(feature = "fault-injection")]
    pub fn faults(&self) -> std::sync::Arc<StoreFaults> {
        self.faults.clone()
    }

    fn sled_err(&self, source: sled::Error) -> StoreError {
        StoreError::Sled { path: self.path.clone(), source }
    }

    /// Every entry of table `t`, in key order: the key without its prefix, and the value.
    fn scan(&self, t: Table) -> impl Iterator<Item = Result<(sled::IVec, sled::IVec), StoreError>> + '_ {
        self.tree.scan_prefix([t.0]).map(move |item| {
            let (key, v) = item.map_err(|e| self.sled_err(e))?;
            Ok((key.subslice(1, key.len() - 1), v))
        })
    }

    /// Recomputes the journal hash chain and every message id.
    fn check(&self) -> Result<IntegrityReport, StoreError> {
        let mut r = IntegrityReport::default();
        self.check_journal(&mut r)?;
        self.check_messages(&mut r)?;
        self.check_references(&mut r.damage)?;
        self.check_audit(&mut r.damage);
        Ok(r)
    }

    /// The journal's hash chain and its recorded head.
    fn check_journal(&self, r: &mut IntegrityReport) -> Result<(), StoreError> {
        let mut prev = [0u8; 32];
        for item in self.journal_entries(1, u64::MAX) {
            let (seq, v) = item?;
            r.journal += 1;
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
        let head = self.journal_head.0;
        if !journal::partial_is_sound(&self.journal_pack, head) {
            r.damage.push(format!(
                "the journal's last pack ({}) does not hold exactly the entries up to its head {head}: entries written from now on are placed after what it holds (restore the data directory from a backup if the audit log matters)",
                head / journal::PACK
            ));
        }
        Ok(())
    }

    /// Every message id recomputed over its envelope.
    fn check_messages(&self, r: &mut IntegrityReport) -> Result<(), StoreError> {
        for item in self.scan(MSGS) {
            let (key, v) = item?;
            r.messages += 1;
            // Pruned after expiry: the envelope is gone, its metadata stays.
            if v.is_empty() {
                continue;
            }
            let ok = raw::split(&v).is_some_and(|(p, payload, _)| message_id(&p, &payload).0[..] == key[..]);
            if !ok {
                r.damage.push(format!("message {} does not hash to its id", hex32(&key)));
            }
            if self.get(META, &key)?.is_none() {
                r.damage.push(format!("message {} has no metadata", hex32(&key)));
            }
        }
        Ok(())
    }

    /// The cross-references between tables: every message's metadata, log position, feed slot,
    /// head and flash entry agree; log, inbox, flash and slot entries name held messages;
    /// heads and cursors are within what is held.
    fn check_references(&self, damage: &mut Vec<String>) -> Result<(), StoreError> {
        let log_last = self.get(STATE, b"log_last")?.map_or(0, |v| be_u64(&v));
        for item in self.scan(META) {
            let (key, v) = item?;
            let id = hex32(&key);
            let meta = match codec::from_slice::<MsgMeta>("message metadata", &v) {
                Ok(m) => m,
                Err(e) => {
                    damage.push(format!("metadata of message {id} is unreadable: {e}"));
                    continue;
                }
            };
            if self.get(MSGS, &key)?.is_none() {
                damage.push(format!("metadata of message {id} has no message"));
            }
            if self.get(LOG, &meta.local.to_be_bytes())?.as_deref() != Some(&key[..]) {
                damage.push(format!("message {id} is not at its log position {}", meta.local));
            }
            let slot = self.get(SLOTS, &slot_key(&meta.author, &meta.feed, meta.seq))?;
            let slot = slot.and_then(|v| codec::from_slice::<SlotRec>("feed slot", &v).ok());
            if slot.is_none_or(|s| s.id.0[..] != key[..]) {
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
        for (table, name) in [(LOG, "log"), (INBOX, "inbox"), (FLASH, "flash index")] {
            for item in self.scan(table) {
                let (key, v) = item?;
                if be_u64(&key) > log_last {
                    damage.push(format!(
                        "{name} position {} is beyond the last log position {log_last}",
                        be_u64(&key)
                    ));
                }
                if self.get(META, &v)?.is_none() {
                    damage.push(format!(
                        "{name} position {} names message {}, which is not held",
                        be_u64(&key),
                        hex32(&v)
                    ));
                }
            }
        }
        for item in self.scan(SLOTS) {
            let (_, v) = item?;
            match codec::from_slice::<SlotRec>("feed slot", &v) {
                Ok(slot) if self.get(MSGS, slot.id.as_bytes())?.is_none() => {
                    damage.push(format!("a feed slot names message {}, which is not held", slot.id))
                }
                Ok(_) => {}
                Err(e) => damage.push(format!("a feed slot is unreadable: {e}")),
            }
        }
        for item in self.scan(HEADS) {
            let (_, v) = item?;
            match codec::from_slice::<HeadRec>("feed head", &v) {
                Ok(h) if h.seq > h.top => {
                    damage.push(format!("a feed head's seq {} is above its top {}", h.seq, h.top))
                }
                Ok(_) => {}
                Err(e) => damage.push(format!("a feed head is unreadable: {e}")),
            }
        }
        for item in self.scan(CURSORS) {
            let (key, v) = item?;
            if be_u64(&v) > log_last {
                damage.push(format!(
                    "the cursor of peer {} is at {}, beyond the last log position {log_last}",
                    hex32(&key),
                    be_u64(&v)
                ));
            }
        }
        Ok(())
    }

    /// Every peer ever connected, with what is known of it.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn peers(&self) -> Result<Vec<(NodeId, PeerRecord)>, StoreError> {
        self.scan(PEERS)
            .map(|item| {
                let (key, v) = item?;
                let id: [u8; 32] = key.as_ref().try_into().map_err(|_| StoreError::Corrupt {
                    tree: "peers",
                    detail: "key is not a NodeId".into(),
                })?;
                let id = NodeId::from_bytes(id)
                    .map_err(|e| StoreError::Corrupt { tree: "peers", detail: e.to_string() })?;
                Ok((id, Self::decode(PEERS, &v)?))
            })
            .collect()
    }

    /// Every fork recorded, with its evidence.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn forks(&self) -> Result<Vec<ForkRecord>, StoreError> {
        self.scan(EVIDENCE)
            .map(|item| {
                let (_, v) = item?;
                Self::decode(EVIDENCE, &v)
            })
            .collect()
    }

    /// Journal entries in order (for `godwit audit` and tests).
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn journal(&self) -> Result<Vec<JournalEntry>, StoreError> {
        self.journal_entries(1, u64::MAX)
            .map(|item| {
                let (_, v) = item?;
                Self::decode(JOURNAL, &v)
            })
            .collect()
    }

    /// The journal entries with seq in `from..to`, in order: seq and exact bytes.
    fn journal_entries(
        &self,
        from: u64,
        to: u64,
    ) -> impl Iterator<Item = Result<(u64, sled::IVec), StoreError>> + '_ {
        journal::entries(&self.tree, from, to).map(|item| item.map_err(|e| self.sled_err(e)))
    }

    /// The reports this node authored ([`Write::Own`]), by id.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn own_reports(&self) -> Result<Vec<(MessageId, OwnRecord)>, StoreError> {
        self.scan(OWN)
            .map(|item| {
                let (key, v) = item?;
                let id: [u8; 32] = key.as_ref().try_into().map_err(|_| StoreError::Corrupt {
                    tree: OWN.1,
                    detail: "key is not a message id".into(),
                })?;
                Ok((MessageId(id), Self::decode(OWN, &v)?))
            })
            .collect()
    }

    /// Peers the operator added, with their addresses.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn dials(&self) -> Result<Vec<(NodeId, String)>, StoreError> {
        self.scan(DIALS)
            .map(|item| {
                let (key, v) = item?;
                let bad = |d: String| StoreError::Corrupt { tree: "dials", detail: d };
                let id: [u8; 32] = key.as_ref().try_into().map_err(|_| bad("key is not a NodeId".into()))?;
                let id = NodeId::from_bytes(id).map_err(|e| bad(e.to_string()))?;
                Ok((id, String::from_utf8_lossy(&v).into_owned()))
            })
            .collect()
    }

    /// Nodes the operator blocked.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn blocked(&self) -> Result<Vec<NodeId>, StoreError> {
        self.scan(BLOCKED)
            .map(|item| {
                let (key, _) = item?;
                let bad = |d: String| StoreError::Corrupt { tree: "blocked", detail: d };
                let id: [u8; 32] = key.as_ref().try_into().map_err(|_| bad("key is not a NodeId".into()))?;
                NodeId::from_bytes(id).map_err(|e| bad(e.to_string()))
            })
            .collect()
    }

    /// The operator's mark on a message of the inbox, if any.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn mark(&self, id: &MessageId) -> Result<Option<Mark>, StoreError> {
        match self.get(MARKS, id.as_bytes())? {
            Some(v) => Ok(Some(Self::decode(MARKS, &v)?)),
            None => Ok(None),
        }
    }

    /// A view of the inbox for the announcer (see [`InboxView`]).
    pub fn inbox_view(&self) -> InboxView {
        InboxView { tree: self.tree.clone(), path: self.path.clone() }
    }

    /// The directory as stored: each node's newest checked card (signed record bytes).
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn cards(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        self.scan(CARDS).map(|item| item.map(|(_, v)| v.to_vec())).collect()
    }

    /// The last `n` journal entries, oldest first.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn journal_tail(&self, n: usize) -> Result<Vec<JournalEntry>, StoreError> {
        let mut v: Vec<JournalEntry> = Vec::with_capacity(n.min(4096));
        'packs: for item in self.tree.scan_prefix([JOURNAL.0]).rev() {
            let (key, value) = item.map_err(|e| self.sled_err(e))?;
            for (_, entry) in journal::unpack(be_u64(&key[1..]), &value).iter().rev() {
                if v.len() == n {
                    break 'packs;
                }
                v.push(Self::decode(JOURNAL, entry)?);
            }
        }
        v.reverse();
        Ok(v)
    }

    /// Up to `limit` journal entries after `seq`, oldest first.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn journal_after(&self, seq: u64, limit: usize) -> Result<Vec<JournalEntry>, StoreError> {
        self.journal_entries(seq + 1, u64::MAX)
            .take(limit)
            .map(|item| {
                let (_, v) = item?;
                Self::decode(JOURNAL, &v)
            })
            .collect()
    }

    /// The number of the last journal entry (0: none).
    pub fn journal_last(&self) -> u64 {
        self.journal_head.0
    }

    /// Recomputes the journal's hash chain: the number of entries and the problems found.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn verify_journal(&self) -> Result<(u64, Vec<String>), StoreError> {
        let mut r = IntegrityReport::default();
        self.check_journal(&mut r)?;
        Ok((r.journal, r.damage))
    }

    fn get(&self, t: Table, key: &[u8]) -> Result<Option<sled::IVec>, StoreError> {
        self.tree.get(k(t, key)).map_err(|e| self.sled_err(e))
    }

    fn decode<T: serde::de::DeserializeOwned + Serialize>(t: Table, bytes: &[u8]) -> Result<T, StoreError> {
        codec::from_slice(t.1, bytes).map_err(|e| StoreError::Corrupt { tree: t.1, detail: e.to_string() })
    }

    /// Up to `limit` entries of a position-keyed table (`log`, `flash`) after `after`.
    fn positions(&self, t: Table, after: u64, limit: usize) -> Result<Vec<(u64, MessageId)>, StoreError> {
        let end = [t.0 + 1];
        self.tree
            .range(k(t, &(after + 1).to_be_bytes())..end.to_vec())
            .take(limit)
            .map(|item| {
                let (key, v) = item.map_err(|e| self.sled_err(e))?;
                Ok((be_u64(&key[1..]), id_of(&v)?))
            })
            .collect()
    }
}

impl Store for SledStore {
    type Error = StoreError;

    fn meta(&self, id: &MessageId) -> Result<Option<MsgMeta>, StoreError> {
        self.get(META, id.as_bytes())?.map(|v| Self::decode(META, &v)).transpose()
    }
    fn envelope(&self, id: &MessageId) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.get(MSGS, id.as_bytes())?.map(|v| v.to_vec()))
    }
    fn slot(&self, author: &NodeId, feed: &FeedId, seq: u64) -> Result<Option<SlotRec>, StoreError> {
        self.get(SLOTS, &slot_key(author, feed, seq))?.map(|v| Self::decode(SLOTS, &v)).transpose()
    }
    fn head(&self, author: &NodeId, feed: &FeedId) -> Result<Option<HeadRec>, StoreError> {
        self.get(HEADS, &head_key(author, feed))?.map(|v| Self::decode(HEADS, &v)).transpose()
    }
    fn heads_of(&self, author: &NodeId) -> Result<Vec<(FeedId, HeadRec)>, StoreError> {
        self.tree
            .scan_prefix(k(HEADS, author.as_bytes()))
            .map(|item| {
                let (key, v) = item.map_err(|e| self.sled_err(e))?;
                let feed = FeedId(
                    key[33..65]
                        .try_into()
                        .map_err(|_| StoreError::Corrupt { tree: "heads", detail: "short key".into() })?,
                );
                Ok((feed, Self::decode(HEADS, &v)?))
            })
            .collect()
    }
    fn log_after(&self, after: u64, limit: usize) -> Result<Vec<(u64, MessageId)>, StoreError> {
        self.positions(LOG, after, limit)
    }
    fn flash_after(&self, after: u64, limit: usize) -> Result<Vec<(u64, MessageId)>, StoreError> {
        self.positions(FLASH, after, limit)
    }
    fn channel_states(&self) -> Result<Vec<(Timestamp, Vec<u8>)>, StoreError> {
        self.scan(CHANNEL_STATES)
            .map(|item| {
                let (_, v) = item?;
                if v.len() < 8 {
                    let detail = format!("an entry of {} bytes is shorter than its time", v.len());
                    return Err(StoreError::Corrupt { tree: CHANNEL_STATES.1, detail });
                }
                Ok((Timestamp(be_u64(&v[..8])), v[8..].to_vec()))
            })
            .collect()
    }
    fn log_last(&self) -> Result<u64, StoreError> {
        Ok(self.log_last)
    }
    fn cursor(&self, peer: &NodeId) -> Result<u64, StoreError> {
        Ok(self.get(CURSORS, peer.as_bytes())?.map_or(0, |v| be_u64(&v)))
    }
    fn inbox(&self) -> Result<Vec<MessageId>, StoreError> {
        self.scan(INBOX)
            .map(|item| {
                let (_, v) = item?;
                id_of(&v)
            })
            .collect()
    }
    fn expired(&self, now: Timestamp, limit: usize) -> Result<Vec<(Timestamp, u64, MessageId)>, StoreError> {
        let end = k(EXPIRY, &expiry_key(now, u64::MAX));
        self.tree
            .range(k(EXPIRY, &[])..=end)
            .take(limit)
            .map(|item| {
                let (key, v) = item.map_err(|e| self.sled_err(e))?;
                Ok((Timestamp(be_u64(&key[1..9])), be_u64(&key[9..17]), id_of(&v)?))
            })
            .collect()
    }
    fn forgettable(
        &self,
        before: Timestamp,
        limit: usize,
    ) -> Result<Vec<(Timestamp, u64, MessageId)>, StoreError> {
        let end = k(PRUNED, &expiry_key(before, 0));
        self.tree
            .range(k(PRUNED, &[])..end)
            .take(limit)
            .map(|item| {
                let (key, v) = item.map_err(|e| self.sled_err(e))?;
                Ok((Timestamp(be_u64(&key[1..9])), be_u64(&key[9..17]), id_of(&v)?))
            })
            .collect()
    }
    fn write(&mut self, batch: &Batch) -> Result<(), StoreError> {
        self.write_with(sled::Batch::default(), batch)
    }
}

impl SledStore {
    /// [`Store::write`], adding to `b` (written in the same atomic sled batch).
    fn write_with(&mut self, mut b: sled::Batch, batch: &Batch) -> Result<(), StoreError> {
        let (mut seq, mut prev) = self.journal_head;
        let mut log_last = self.log_last;
        let mut audit = self.audit.clone();
        let mut pack = self.journal_pack.clone();
        let at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        for w in &batch.writes {
            match w {
                Write::Message { id, env, meta, slot, inbox } => {
                    let local = meta.local.to_be_bytes();
                    b.insert(k(MSGS, id.as_bytes()), env.as_ref());
                    b.insert(k(META, id.as_bytes()), codec::to_vec(meta));
                    b.insert(k(SLOTS, &slot_key(&meta.author, &meta.feed, meta.seq)), codec::to_vec(slot));
                    b.insert(k(LOG, &local), id.as_bytes());
                    if meta.priority == Priority::Flash {
                        b.insert(k(FLASH, &local), id.as_bytes());
                    }
                    if *inbox {
                        b.insert(k(INBOX, &local), id.as_bytes());
                    } else {
                        b.insert(k(EXPIRY, &expiry_key(meta.expires, meta.local)), id.as_bytes());
                    }
                    log_last = log_last.max(meta.local);
                }
                Write::Head { author, feed, head } => {
                    b.insert(k(HEADS, &head_key(author, feed)), codec::to_vec(head));
                }
                Write::Cursor { peer, cursor } => {
                    b.insert(k(CURSORS, peer.as_bytes()), &cursor.to_be_bytes());
                }
                Write::Evidence { author, feed, seq: at, existing, env } => {
                    let rec = ForkRecord {
                        seq: *at,
                        feed: *feed,
                        author: *author,
                        existing: *existing,
                        envelope: env.to_vec(),
                    };
                    b.insert(k(EVIDENCE, &slot_key(author, feed, *at)), codec::to_vec(&rec));
                }
                Write::Prune { id, expires, local, envelope } => {
                    b.remove(k(EXPIRY, &expiry_key(*expires, *local)));
                    b.insert(k(PRUNED, &expiry_key(*expires, *local)), id.as_bytes());
                    if *envelope {
                        b.insert(k(MSGS, id.as_bytes()), &[][..]);
                    }
                }
                Write::Peer { peer, role, administration, at, cert } => {
                    let rec = PeerRecord {
                        cert: cert.clone(),
                        role: format!("{role:?}").to_lowercase(),
                        admin: administration.clone(),
                        last_seen: at.as_millis(),
                    };
                    b.insert(k(PEERS, peer.as_bytes()), codec::to_vec(&rec));
                }
                Write::Forget { id, expires, local, place } => {
                    b.remove(k(PRUNED, &expiry_key(*expires, *local)));
                    if let Some((author, feed, seq, flash)) = place {
                        b.remove(k(MSGS, id.as_bytes()));
                        b.remove(k(META, id.as_bytes()));
                        b.remove(k(SLOTS, &slot_key(author, feed, *seq)));
                        b.remove(k(LOG, &local.to_be_bytes()));
                        if *flash {
                            b.remove(k(FLASH, &local.to_be_bytes()));
                        }
                    }
                }
                Write::Card { node, record } => {
                    b.insert(k(CARDS, node.as_bytes()), &record[..]);
                }
                Write::ChannelState { local, at, record } => {
                    let value = [&at.as_millis().to_be_bytes()[..], record].concat();
                    b.insert(k(CHANNEL_STATES, &local.to_be_bytes()), value);
                }
                Write::Dial { node, address } => match address {
                    Some(a) => b.insert(k(DIALS, node.as_bytes()), a.as_bytes()),
                    None => b.remove(k(DIALS, node.as_bytes())),
                },
                Write::Block { node, blocked } => {
                    if *blocked {
                        b.insert(k(BLOCKED, node.as_bytes()), &[][..]);
                    } else {
                        b.remove(k(BLOCKED, node.as_bytes()));
                    }
                }
                Write::Mark { id, mark } => {
                    b.insert(k(MARKS, id.as_bytes()), codec::to_vec(mark));
                }
                Write::Own { id, record } => {
                    b.insert(k(OWN, id.as_bytes()), &record[..]);
                }
                Write::Repair { id, env } => {
                    b.insert(k(MSGS, id.as_bytes()), &env[..]);
                    b.remove(k(QUARANTINE, id.as_bytes()));
                }
                Write::Event(event) => {
                    seq += 1;
                    let bytes = codec::to_vec(&JournalEntry { seq, prev, event: event.clone(), at });
                    prev = chain(&prev, &bytes);
                    Self::audit_append(&mut audit, &bytes, &mut b);
                    journal::push(&mut pack, seq, &bytes, &mut b);
                }
            }
        }
        if seq != self.journal_head.0 {
            b.insert(k(STATE, b"journal_head"), [seq.to_be_bytes().as_slice(), &prev].concat());
            journal::flush(&pack, seq, &mut b);
            Self::audit_flush(&audit, &mut b);
            b.insert(k(STATE, b"audit"), Self::audit_state(&audit));
        }
        if log_last != self.log_last {
            b.insert(k(STATE, b"log_last"), &log_last.to_be_bytes());
        }
        self.tree.apply_batch(b).map_err(|e| self.sled_err(e))?;
        self.journal_head = (seq, prev);
        self.log_last = log_last;
        self.audit = audit;
        self.journal_pack = pack;
        Ok(())
    }
}

fn is_zero(v: &u64) -> bool {
    *v == 0
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

fn expiry_key(expires: Timestamp, local: u64) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&expires.as_millis().to_be_bytes());
    key[8..].copy_from_slice(&local.to_be_bytes());
    key
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
    sync_files(&files_to_sync(dir)?)
}

/// The files and directories a commit fsyncs: each directory after the files in it.
fn files_to_sync(dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
    let list =
        |d: &Path| std::fs::read_dir(d).map_err(|source| StoreError::Sync { path: d.to_owned(), source });
    let mut paths = Vec::new();
    for e in list(dir)?.flatten() {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_file() => paths.push(p),
            Ok(t) if t.is_dir() => {
                let files = match std::fs::read_dir(&p) {
                    // Removed since `dir` was listed: nothing in it to sync.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    r => r.map_err(|source| StoreError::Sync { path: p.clone(), source })?,
                };
                for f in files.flatten() {
                    if f.file_type().is_ok_and(|t| t.is_file()) {
                        paths.push(f.path());
                    }
                }
                paths.push(p);
            }
            _ => {}
        }
    }
    paths.push(dir.to_owned());
    Ok(paths)
}

/// fsyncs each of `paths`. One that no longer exists is passed over: sled deletes files of its
/// own (a blob whose node was rewritten) between the listing and the sync, and the deletion is
/// made durable by the fsync of its directory, which comes after.
fn sync_files(paths: &[PathBuf]) -> Result<(), StoreError> {
    for p in paths {
        match std::fs::File::open(p).and_then(|f| f.sync_all()) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            r => r.map_err(|source| StoreError::Sync { path: p.to_owned(), source })?,
        }
    }
    Ok(())
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
            epoch: 0,
            local: seq,
            author,
            channel: None,
            control: false,
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
            s.write(&message_batch(author, id, &env)).unwrap();
            let cursor = Batch {
                writes: vec![
                    Write::Event(Event::Relayed { to: author, ids: vec![id] }),
                    Write::Cursor { peer: author, cursor: 1 },
                ],
                sync: false,
            };
            s.write(&cursor).unwrap();
            s.commit().unwrap();
        }
        let (mut s, r) = SledStore::open(dir.path()).unwrap();
        assert_eq!(r, IntegrityReport { messages: 1, journal: 3, damage: vec![], quarantined: vec![] });
        assert_eq!(s.log_last().unwrap(), 1);
        assert_eq!(s.inbox().unwrap(), vec![id]);
        assert_eq!(s.log_after(0, 10).unwrap(), vec![(1, id)]);
        assert_eq!(s.meta(&id).unwrap().unwrap().local, 1);
        assert_eq!(s.cursor(&author).unwrap(), 1);
        assert_eq!(s.head(&author, &FeedId([1; 32])).unwrap().unwrap().seq, 1);
        assert_eq!(s.heads_of(&author).unwrap().len(), 1);
        let j = s.journal().unwrap();
        assert_eq!(j.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 2, 3]);
        assert_eq!(j[0].prev, [0; 32]);
        let peer = Write::Peer {
            peer: author,
            role: godwit_protocol::identity::Role::Hub,
            administration: "RILO ESA".into(),
            at: godwit_protocol::Timestamp(5),
            cert: vec![0x30, 0x00],
        };
        s.write(&Batch { writes: vec![peer], sync: false }).unwrap();
        let rec =
            PeerRecord { cert: vec![0x30, 0x00], role: "hub".into(), admin: "RILO ESA".into(), last_seen: 5 };
        assert_eq!(s.peers().unwrap(), vec![(author, rec)]);
    }

    #[test]
    fn reports_a_tampered_journal_and_message() {
        let dir = tempfile::tempdir().unwrap();
        let (id, env) = envelope();
        // The check that `open` runs, run on the open store after tampering with it.
        let (mut s, _) = SledStore::open(dir.path()).unwrap();
        let events = Batch { writes: vec![Write::Event(Event::Delivered { id }); 3], sync: false };
        s.write(&events).unwrap();
        s.tree.insert(k(MSGS, id.as_bytes()), &env[..env.len() - 1]).unwrap();
        // Rewrite entry 2 with a different event: the chain breaks at entry 3.
        let e = JournalEntry { seq: 2, prev: [9; 32], event: Event::Authored { id }, at: 0 };
        s.tamper_entry(2, Some(&codec::to_vec(&e))).unwrap();
        let r = s.check().unwrap();
        assert!(r.damage.iter().any(|d| d.contains("journal entry 2 does not chain")), "{:?}", r.damage);
        assert!(r.damage.iter().any(|d| d.contains("does not hash to its id")), "{:?}", r.damage);
    }

    #[test]
    fn sets_a_damaged_envelope_aside_until_a_sound_copy_repairs_it() {
        let dir = tempfile::tempdir().unwrap();
        let author = IdentityKey::from_seed(&[1; 32]).node_id();
        let (id, env) = envelope();
        {
            let (mut s, _) = SledStore::open(dir.path()).unwrap();
            s.write(&message_batch(author, id, &env)).unwrap();
            s.tree.insert(k(MSGS, id.as_bytes()), &env[..env.len() - 1]).unwrap();
            s.commit().unwrap();
        }
        let (s, r) = SledStore::open(dir.path()).unwrap();
        assert_eq!(r.quarantined.iter().map(|(q, _)| *q).collect::<Vec<_>>(), vec![id]);
        assert!(r.damage.iter().any(|d| d.contains("does not hash to its id")), "{:?}", r.damage);
        assert_eq!(s.envelope(&id).unwrap().as_deref(), Some(&[][..]), "the damaged bytes are not served");
        drop(s);
        // Still set aside on the next open, now named as such.
        let (mut s, r) = SledStore::open(dir.path()).unwrap();
        assert_eq!(r.quarantined.len(), 1);
        assert!(r.damage.iter().any(|d| d.contains("set aside")), "{:?}", r.damage);
        s.write(&Batch { writes: vec![Write::Repair { id, env: env.clone().into() }], sync: true }).unwrap();
        drop(s);
        let (s, r) = SledStore::open(dir.path()).unwrap();
        assert_eq!((r.quarantined.len(), r.damage.len()), (0, 0), "{:?}", r.damage);
        assert_eq!(s.envelope(&id).unwrap().as_deref(), Some(&env[..]));
    }

    #[test]
    fn reports_broken_references_between_trees_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let author = IdentityKey::from_seed(&[1; 32]).node_id();
        let (id, env) = envelope();
        // The check that `open` runs, run on the open store before and after tampering with it.
        let (mut s, _) = SledStore::open(dir.path()).unwrap();
        s.write(&message_batch(author, id, &env)).unwrap();
        assert_eq!(s.check().unwrap().damage, Vec::<String>::new(), "sound before the damage");
        s.tree.remove(k(LOG, &1u64.to_be_bytes())).unwrap();
        s.tree.insert(k(INBOX, &7u64.to_be_bytes()), &[9u8; 32][..]).unwrap();
        s.tree.insert(k(CURSORS, author.as_bytes()), &99u64.to_be_bytes()).unwrap();
        s.tree.remove(k(SLOTS, &slot_key(&author, &meta(author, 1).feed, 1))).unwrap();
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

    /// sled keeps a node larger than a quarter of its segment as a file of its own under
    /// `blobs/` and deletes it when the node is rewritten, in its own threads: a commit that
    /// lists the files to fsync must not fail on one deleted before it was opened (a hub with
    /// 50 members stopped on this, "cannot fsync …/blobs/…: No such file or directory").
    #[test]
    fn a_commit_is_not_failed_by_a_file_sled_deleted_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = SledStore::open(dir.path()).unwrap();
        // A value over 128 KiB: its node is a blob.
        s.tree.insert(b"big", vec![7u8; 200 << 10]).unwrap();
        s.commit().unwrap();
        let listed = files_to_sync(dir.path()).unwrap();
        let blob = listed.iter().find(|p| p.parent().is_some_and(|d| d.ends_with("blobs"))).unwrap().clone();
        std::fs::remove_file(&blob).unwrap();
        sync_files(&listed).unwrap();
        s.commit().unwrap();
        // Any other failure still fails the commit: here a path through a file (ENOTDIR).
        let e = sync_files(&[dir.path().join("db").join("x")]).unwrap_err();
        assert!(e.to_string().contains("cannot fsync"), "{e}");
    }

    /// sled releases its file lock from background threads, moments after the last handle is
    /// dropped: a reopen right after a close waits for it instead of failing.
    #[test]
    fn opens_a_store_closed_moments_before() {
        let dir = tempfile::tempdir().unwrap();
        for round in 0..20u32 {
            let (opened, go) = (std::sync::mpsc::channel(), std::sync::mpsc::channel::<()>());
            let path = dir.path().to_owned();
            let holder = std::thread::spawn(move || {
                let (s, _) = SledStore::open(&path).unwrap();
                s.tree.insert(k(STATE, b"round"), &round.to_be_bytes()).unwrap();
                s.commit().unwrap();
                opened.0.send(()).unwrap();
                go.1.recv().unwrap();
            });
            opened.1.recv().unwrap();
            go.0.send(()).unwrap();
            holder.join().unwrap();
            let (s, _) = SledStore::open(dir.path()).unwrap_or_else(|e| panic!("round {round}: {e}"));
            assert_eq!(s.get(STATE, b"round").unwrap().as_deref(), Some(&round.to_be_bytes()[..]));
        }
    }

    /// A store another process (or handle) keeps open is named as in use, not as a database error.
    #[test]
    fn a_store_in_use_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let _first = SledStore::open(dir.path()).unwrap();
        let e = SledStore::open(dir.path()).unwrap_err();
        assert!(matches!(e, StoreError::InUse { .. }), "{e:?}");
        assert!(e.to_string().contains("is in use by another process"), "{e}");
    }

    #[test]
    fn refuses_another_schema_version() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (s, _) = SledStore::open(dir.path()).unwrap();
            s.tree.insert(k(STATE, b"schema"), &7u32.to_be_bytes()).unwrap();
            s.commit().unwrap();
        }
        let e = SledStore::open(dir.path()).unwrap_err();
        assert!(e.to_string().contains("schema version 7 is not supported"), "{e}");
    }

    #[test]
    fn refuses_a_store_of_schema_one_by_name() {
        let dir = tempfile::tempdir().unwrap();
        {
            // Schema 1 kept each table in a tree of its own.
            let db = sled::open(dir.path()).unwrap();
            db.open_tree("state").unwrap().insert("schema", &1u32.to_be_bytes()).unwrap();
            db.flush().unwrap();
        }
        let e = SledStore::open(dir.path()).unwrap_err();
        assert!(e.to_string().contains("schema version 1 is not supported"), "{e}");
    }

    #[test]
    fn a_batch_is_written_whole_and_the_journal_chains_across_batches() {
        let dir = tempfile::tempdir().unwrap();
        let author = IdentityKey::from_seed(&[1; 32]).node_id();
        let (id, env) = envelope();
        {
            let (mut s, _) = SledStore::open(dir.path()).unwrap();
            s.write(&message_batch(author, id, &env)).unwrap();
            let more = Batch { writes: vec![Write::Event(Event::Delivered { id }); 2], sync: true };
            s.write(&more).unwrap();
            s.commit().unwrap();
        }
        // Reopened, the journal head is read back: a third batch chains on.
        {
            let (mut s, r) = SledStore::open(dir.path()).unwrap();
            assert_eq!(r.journal, 4);
            s.write(&Batch { writes: vec![Write::Event(Event::Delivered { id })], sync: true }).unwrap();
            s.commit().unwrap();
        }
        let (s, r) = SledStore::open(dir.path()).unwrap();
        assert_eq!(r, IntegrityReport { messages: 1, journal: 5, damage: vec![], quarantined: vec![] });
        assert_eq!(s.journal().unwrap().iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
    }

    #[test]
    fn fork_evidence_keeps_the_conflicting_envelope() {
        let dir = tempfile::tempdir().unwrap();
        let author = IdentityKey::from_seed(&[1; 32]).node_id();
        let (id, env) = envelope();
        let (mut s, _) = SledStore::open(dir.path()).unwrap();
        s.write(&message_batch(author, id, &env)).unwrap();
        let other = b"the other message for seq 1".to_vec();
        let evidence = Write::Evidence {
            author,
            feed: FeedId([1; 32]),
            seq: 1,
            existing: id,
            env: other.as_slice().into(),
        };
        s.write(&Batch { writes: vec![evidence], sync: true }).unwrap();
        let forks = s.forks().unwrap();
        assert_eq!(forks.len(), 1);
        assert_eq!((forks[0].seq, forks[0].existing, forks[0].author), (1, id, author));
        assert_eq!(forks[0].envelope, other);
    }

    #[test]
    fn a_pruned_message_keeps_its_metadata_and_the_store_stays_sound() {
        let dir = tempfile::tempdir().unwrap();
        let author = IdentityKey::from_seed(&[1; 32]).node_id();
        let (id, env) = envelope();
        {
            let (mut s, _) = SledStore::open(dir.path()).unwrap();
            let mut batch = message_batch(author, id, &env);
            if let Write::Message { inbox, .. } = &mut batch.writes[0] {
                *inbox = false;
            }
            s.write(&batch).unwrap();
            let expires = meta(author, 1).expires;
            assert!(s.expired(Timestamp(expires.as_millis() - 1), 10).unwrap().is_empty());
            assert_eq!(s.expired(expires, 10).unwrap(), vec![(expires, 1, id)]);
            let prune = Write::Prune { id, expires, local: 1, envelope: true };
            s.write(&Batch { writes: vec![prune], sync: true }).unwrap();
            s.commit().unwrap();
            assert!(s.expired(Timestamp(u64::MAX), 10).unwrap().is_empty());
        }
        let (mut s, r) = SledStore::open(dir.path()).unwrap();
        assert!(r.damage.is_empty(), "{:?}", r.damage);
        assert_eq!(s.envelope(&id).unwrap(), Some(vec![]));
        assert!(s.meta(&id).unwrap().is_some());
        // After the retention, what is left of it goes, and the store stays sound.
        let expires = meta(author, 1).expires;
        assert!(s.forgettable(expires, 10).unwrap().is_empty(), "only what expired before");
        assert_eq!(s.forgettable(expires.plus_millis(1), 10).unwrap(), vec![(expires, 1, id)]);
        let place = Some((author, meta(author, 1).feed, 1, false));
        s.write(&Batch { writes: vec![Write::Forget { id, expires, local: 1, place }], sync: true }).unwrap();
        drop(s);
        let (s, r) = SledStore::open(dir.path()).unwrap();
        assert!(r.damage.is_empty(), "{:?}", r.damage);
        assert!(s.meta(&id).unwrap().is_none() && s.envelope(&id).unwrap().is_none());
        assert!(s.log_after(0, 10).unwrap().is_empty());
        assert!(s.forgettable(Timestamp(u64::MAX), 10).unwrap().is_empty());
    }

    /// One message with its head, inbox entry and events, as the relay batches it.
    fn message_batch(author: NodeId, id: MessageId, env: &[u8]) -> Batch {
        let head = HeadRec { id: Some(id), seq: 1, top: 1, frozen: false };
        Batch {
            writes: vec![
                Write::Message {
                    id,
                    env: env.into(),
                    meta: meta(author, 1),
                    slot: SlotRec { id, prev: None },
                    inbox: true,
                },
                Write::Head { author, feed: FeedId([1; 32]), head },
                Write::Event(Event::Authored { id }),
                Write::Event(Event::Delivered { id }),
            ],
            sync: true,
        }
    }
}

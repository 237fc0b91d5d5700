//! The audit log: an RFC 6962 Merkle tree whose leaves are the journal's entries, exactly as
//! stored. Each entry's leaf and the tree nodes it completes are written in the same sled batch
//! as the entry (and so as the state change it records); the tree's right edge (its frontier)
//! is kept in `state`, so an append costs O(log n) and no reads.
//!
//! | table | prefix | key | value |
//! | --- | --- | --- | --- |
//! | `audit leaves` | `L` | generation (BE) ‖ tile (BE) | the leaf hashes of 16 consecutive entries (a tile; the last one partial) |
//! | `audit tree` | `t` | generation (BE) ‖ level ‖ index (BE) | a node's hash, for levels 4 and up (below, computed from its tile) |
//! | `checkpoints` | `K` | generation (BE) ‖ size (BE) | [`CheckpointRec`]: the signed note with its cosignatures, the frontier at that size |
//! | `generations` | `g` | generation (BE) | [`GenerationRec`]: the journal seq of its first entry, and its last size once ended |
//! | `witnessed` | `W` | NodeId | the newest checkpoint of that node's log this node cosigned (note text) |
//!
//! A generation's leaf `i` is journal entry `start + i`. A node whose log is found damaged
//! stops signing; after the operator's repair a new generation starts, whose first entry names
//! the old generation's last good checkpoint. Entries are never deleted.

use godwit_protocol::audit::merkle::{self, Frontier, Hash, MerkleError, Nodes};
use godwit_protocol::audit::note::{self, Checkpoint, SignedCheckpoint};
use serde_bytes::ByteBuf;

use super::{JOURNAL, JournalEntry, STATE, SledStore, StoreError, Table, be_u64, chain, journal, k};
use godwit_protocol::codec;
use godwit_protocol::identity::NodeId;
use serde::{Deserialize, Serialize};

pub(super) const TREE: Table = Table(b't', "audit tree");
pub(super) const LEAVES: Table = Table(b'L', "audit leaves");

/// Nodes below this level are not stored: they are computed from their tile of leaf hashes
/// (one value per 16 entries instead of three keys per entry).
const TILE_LEVEL: u8 = 4;
/// Leaves per tile.
const TILE: u64 = 1 << TILE_LEVEL;
pub(super) const CHECKPOINTS: Table = Table(b'K', "checkpoints");
pub(super) const GENERATIONS: Table = Table(b'g', "generations");
pub(super) const WITNESSED: Table = Table(b'W', "witnessed");

/// The current generation's state, as kept in memory and in `state`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct AuditHead {
    /// The generation.
    pub generation: u64,
    /// The journal seq of its leaf 0.
    pub start: u64,
    /// Its right edge.
    pub frontier: Frontier,
    /// The leaf hashes of its last, partial tile.
    pub tile: Vec<Hash>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditStateRec {
    generation: u64,
    start: u64,
    size: u64,
    frontier: Vec<ByteBuf>,
}

/// A signed checkpoint of this node's log, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointRec {
    /// The signed note, with the cosignatures collected so far.
    pub note: String,
    /// The frontier at its size (where the next checkpoint's recomputation starts).
    pub frontier: Vec<ByteBuf>,
    /// When it was signed (ms since the epoch).
    pub at: u64,
}

/// A generation of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerationRec {
    /// The journal seq of its first entry.
    pub start: u64,
    /// Its size when it ended (absent for the current one).
    pub ended: Option<u64>,
}

/// What `godwit audit verify` found in one generation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenerationReport {
    /// The generation.
    pub generation: u64,
    /// Entries read.
    pub entries: u64,
    /// The size the store records for it.
    pub size: u64,
    /// Checkpoints checked (root and signature).
    pub checkpoints: u64,
    /// Valid cosignatures found on them.
    pub cosignatures: u64,
    /// The first bad leaf index and what is wrong, if any.
    pub first_bad: Option<(u64, String)>,
    /// Problems with checkpoints (a root or signature that does not hold).
    pub bad_checkpoints: Vec<String>,
}

fn tree_key(generation: u64, level: u8, index: u64) -> [u8; 17] {
    let mut key = [0u8; 17];
    key[..8].copy_from_slice(&generation.to_be_bytes());
    key[8] = level;
    key[9..].copy_from_slice(&index.to_be_bytes());
    key
}

fn pair_key(a: u64, b: u64) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&a.to_be_bytes());
    key[8..].copy_from_slice(&b.to_be_bytes());
    key
}

fn hashes(v: &[ByteBuf]) -> Result<Vec<Hash>, StoreError> {
    v.iter()
        .map(|h| {
            h.as_slice().try_into().map_err(|_| StoreError::Corrupt {
                tree: "state",
                detail: "a frontier hash is not 32 bytes".into(),
            })
        })
        .collect()
}

fn bufs(v: &[Hash]) -> Vec<ByteBuf> {
    v.iter().map(|h| ByteBuf::from(h.to_vec())).collect()
}

impl From<MerkleError> for StoreError {
    fn from(e: MerkleError) -> Self {
        StoreError::Corrupt { tree: "audit tree", detail: e.to_string() }
    }
}

/// One generation's stored nodes, for proofs.
struct GenNodes<'a> {
    store: &'a SledStore,
    generation: u64,
}

impl Nodes for GenNodes<'_> {
    type Error = StoreError;
    fn node(&self, level: u8, index: u64) -> Result<Option<Hash>, StoreError> {
        if level >= TILE_LEVEL {
            return Ok(self
                .store
                .get(TREE, &tree_key(self.generation, level, index))?
                .and_then(|v| v.as_ref().try_into().ok()));
        }
        let first = index << level;
        let Some(tile) = self.store.tile(self.generation, first / TILE)? else { return Ok(None) };
        let at = (first % TILE) as usize;
        let Some(leaves) = tile.get(at..at + (1 << level)) else { return Ok(None) };
        Ok(Some(perfect(leaves)))
    }
}

/// The root of a perfect subtree over `leaves` (a power of two of them).
fn perfect(leaves: &[Hash]) -> Hash {
    let mut level: Vec<Hash> = leaves.to_vec();
    while level.len() > 1 {
        level = level.chunks(2).map(|p| merkle::node_hash(&p[0], &p[1])).collect();
    }
    level[0]
}

/// `seq` and `prev` of a stored journal entry, read from its deterministic CBOR without
/// decoding the event: `{ ? "at": uint, "seq": uint, "prev": bstr .size 32, "event": … }`.
fn seq_prev(b: &[u8]) -> Option<(u64, [u8; 32])> {
    fn uint(b: &[u8], at: &mut usize) -> Option<u64> {
        let first = *b.get(*at)?;
        if first >> 5 != 0 {
            return None;
        }
        *at += 1;
        let n = match first & 0x1f {
            v @ 0..=23 => return Some(u64::from(v)),
            24 => 1,
            25 => 2,
            26 => 4,
            27 => 8,
            _ => return None,
        };
        let bytes = b.get(*at..*at + n)?;
        *at += n;
        Some(bytes.iter().fold(0u64, |a, x| (a << 8) | u64::from(*x)))
    }
    let mut at = 1; // the map's header
    if b.get(at..at + 3) == Some(&[0x62, b'a', b't'][..]) {
        at += 3;
        uint(b, &mut at)?;
    }
    if b.get(at..at + 4) != Some(&[0x63, b's', b'e', b'q'][..]) {
        return None;
    }
    at += 4;
    let seq = uint(b, &mut at)?;
    if b.get(at..at + 7) != Some(&[0x64, b'p', b'r', b'e', b'v', 0x58, 0x20][..]) {
        return None;
    }
    at += 7;
    Some((seq, b.get(at..at + 32)?.try_into().ok()?))
}

impl SledStore {
    /// Reads the audit state, or builds the tree over an older store's journal (generation 0).
    pub(super) fn open_audit(&mut self) -> Result<(), StoreError> {
        if let Some(v) = self.get(STATE, b"audit")? {
            let rec: AuditStateRec = Self::decode(STATE, &v)?;
            let frontier = Frontier::from_parts(rec.size, hashes(&rec.frontier)?)?;
            let tile = if rec.size % TILE == 0 {
                Vec::new()
            } else {
                self.tile(rec.generation, rec.size / TILE)?.unwrap_or_default()
            };
            self.audit = AuditHead { generation: rec.generation, start: rec.start, frontier, tile };
            return Ok(());
        }
        // A store from before the audit log: its journal becomes generation 0.
        let mut head = AuditHead { generation: 0, start: 1, ..AuditHead::default() };
        let mut batch = sled::Batch::default();
        let mut pending = 0usize;
        for item in self.journal_entries(1, u64::MAX) {
            let (_, bytes) = item?;
            Self::audit_append(&mut head, &bytes, &mut batch);
            pending += 1;
            if pending == 10_000 {
                self.tree.apply_batch(std::mem::take(&mut batch)).map_err(|e| self.sled_err(e))?;
                pending = 0;
            }
        }
        batch.insert(
            k(GENERATIONS, &0u64.to_be_bytes()),
            codec::to_vec(&GenerationRec { start: 1, ended: None }),
        );
        Self::audit_flush(&head, &mut batch);
        batch.insert(k(STATE, b"audit"), Self::audit_state(&head));
        self.tree.apply_batch(batch).map_err(|e| self.sled_err(e))?;
        self.commit()?;
        self.audit = head;
        Ok(())
    }

    /// The leaf hashes of tile `tile` of `generation`.
    fn tile(&self, generation: u64, tile: u64) -> Result<Option<Vec<Hash>>, StoreError> {
        Ok(self
            .get(LEAVES, &pair_key(generation, tile))?
            .map(|v| v.chunks_exact(32).map(|c| c.try_into().unwrap_or([0; 32])).collect()))
    }

    /// Writes the current partial tile (at the end of a batch).
    pub(super) fn audit_flush(head: &AuditHead, batch: &mut sled::Batch) {
        if !head.tile.is_empty() {
            let key = pair_key(head.generation, head.frontier.size() / TILE);
            batch.insert(k(LEAVES, &key), head.tile.concat());
        }
    }

    pub(super) fn audit_state(head: &AuditHead) -> Vec<u8> {
        codec::to_vec(&AuditStateRec {
            generation: head.generation,
            start: head.start,
            size: head.frontier.size(),
            frontier: bufs(head.frontier.hashes()),
        })
    }

    /// Appends a journal entry's bytes as the next leaf of the current generation: the leaf and
    /// the nodes it completes go into `batch`.
    pub(super) fn audit_append(head: &mut AuditHead, bytes: &[u8], batch: &mut sled::Batch) {
        let generation = head.generation;
        let leaf = merkle::leaf_hash(bytes);
        head.frontier.push(leaf, |level, index, h| {
            if level >= TILE_LEVEL {
                batch.insert(k(TREE, &tree_key(generation, level, index)), &h[..]);
            }
        });
        head.tile.push(leaf);
        if head.tile.len() as u64 == TILE {
            let key = pair_key(generation, (head.frontier.size() - 1) / TILE);
            batch.insert(k(LEAVES, &key), head.tile.concat());
            head.tile.clear();
        }
    }

    /// Whether the log's recorded size agrees with the journal (checked on open).
    pub(super) fn check_audit(&self, damage: &mut Vec<String>) {
        let want = self.journal_head.0.saturating_sub(self.audit.start - 1);
        if self.audit.frontier.size() != want {
            damage.push(format!(
                "the audit log records {} entries in generation {} but the journal holds {want}",
                self.audit.frontier.size(),
                self.audit.generation
            ));
        }
    }

    /// The current generation, its size and its root (from the frontier).
    pub fn audit_head(&self) -> (u64, u64, Hash) {
        (self.audit.generation, self.audit.frontier.size(), self.audit.frontier.root())
    }

    /// Every generation, oldest first.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn generations(&self) -> Result<Vec<(u64, GenerationRec)>, StoreError> {
        self.scan(GENERATIONS)
            .map(|item| {
                let (key, v) = item?;
                Ok((be_u64(&key), Self::decode(GENERATIONS, &v)?))
            })
            .collect()
    }

    fn generation(&self, generation: u64) -> Result<GenerationRec, StoreError> {
        match self.get(GENERATIONS, &generation.to_be_bytes())? {
            Some(v) => Self::decode(GENERATIONS, &v),
            None => Err(StoreError::Corrupt {
                tree: "generations",
                detail: format!("no generation {generation}"),
            }),
        }
    }

    /// The size of `generation` (its last size once ended).
    ///
    /// # Errors
    /// [`StoreError`] for a generation that does not exist.
    pub fn generation_size(&self, generation: u64) -> Result<u64, StoreError> {
        if generation == self.audit.generation {
            return Ok(self.audit.frontier.size());
        }
        Ok(self.generation(generation)?.ended.unwrap_or(0))
    }

    /// Leaf `index` of `generation`: its exact bytes and the entry they hold.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn audit_entry(
        &self,
        generation: u64,
        index: u64,
    ) -> Result<Option<(Vec<u8>, JournalEntry)>, StoreError> {
        let g = self.generation(generation)?;
        if index >= self.generation_size(generation)? {
            return Ok(None);
        }
        match self.journal_entries(g.start + index, g.start + index + 1).next().transpose()? {
            Some((_, v)) => Ok(Some((v.to_vec(), Self::decode(JOURNAL, &v)?))),
            None => Ok(None),
        }
    }

    /// Up to `limit` leaves of `generation` from `from`: index, exact bytes, entry.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn audit_entries(
        &self,
        generation: u64,
        from: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>, JournalEntry)>, StoreError> {
        let g = self.generation(generation)?;
        let size = self.generation_size(generation)?;
        if from >= size {
            return Ok(Vec::new());
        }
        self.journal_entries(g.start + from, g.start + size)
            .take(limit)
            .map(|item| {
                let (seq, v) = item?;
                Ok((seq - g.start, v.to_vec(), Self::decode(JOURNAL, &v)?))
            })
            .collect()
    }

    /// The root of the first `size` leaves of `generation`, from stored nodes.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn audit_root(&self, generation: u64, size: u64) -> Result<Hash, StoreError> {
        merkle::root(&GenNodes { store: self, generation }, size)
    }

    /// The inclusion proof of leaf `index` in the first `size` leaves of `generation`.
    ///
    /// # Errors
    /// [`StoreError`], including a proof outside the tree.
    pub fn audit_inclusion(&self, generation: u64, index: u64, size: u64) -> Result<Vec<Hash>, StoreError> {
        self.within(generation, size)?;
        merkle::inclusion_proof(&GenNodes { store: self, generation }, index, size)
    }

    /// The consistency proof between sizes `old` and `new` of `generation`.
    ///
    /// # Errors
    /// [`StoreError`], including sizes outside the tree.
    pub fn audit_consistency(&self, generation: u64, old: u64, new: u64) -> Result<Vec<Hash>, StoreError> {
        self.within(generation, new)?;
        merkle::consistency_proof(&GenNodes { store: self, generation }, old, new)
    }

    fn within(&self, generation: u64, size: u64) -> Result<(), StoreError> {
        let have = self.generation_size(generation)?;
        if size > have {
            return Err(MerkleError::IndexOutOfRange { index: size, size: have }.into());
        }
        Ok(())
    }

    /// The checkpoints of `generation`, oldest first: size and record.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn checkpoints(&self, generation: u64) -> Result<Vec<(u64, CheckpointRec)>, StoreError> {
        self.tree
            .scan_prefix(k(CHECKPOINTS, &generation.to_be_bytes()))
            .map(|item| {
                let (key, v) = item.map_err(|e| self.sled_err(e))?;
                Ok((be_u64(&key[9..]), Self::decode(CHECKPOINTS, &v)?))
            })
            .collect()
    }

    /// The newest checkpoint of `generation`.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn last_checkpoint(&self, generation: u64) -> Result<Option<(u64, CheckpointRec)>, StoreError> {
        match self.tree.scan_prefix(k(CHECKPOINTS, &generation.to_be_bytes())).next_back() {
            Some(item) => {
                let (key, v) = item.map_err(|e| self.sled_err(e))?;
                Ok(Some((be_u64(&key[9..]), Self::decode(CHECKPOINTS, &v)?)))
            }
            None => Ok(None),
        }
    }

    /// The checkpoint of `generation` at `size`, if one was signed.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn checkpoint_at(&self, generation: u64, size: u64) -> Result<Option<CheckpointRec>, StoreError> {
        match self.get(CHECKPOINTS, &pair_key(generation, size))? {
            Some(v) => Ok(Some(Self::decode(CHECKPOINTS, &v)?)),
            None => Ok(None),
        }
    }

    /// What the next checkpoint would say, recomputed: the root over the entries added since
    /// the last checkpoint, started from that checkpoint's frontier (itself checked against
    /// its signed root), and compared with the tree the store keeps. `node` names the origin.
    ///
    /// # Errors
    /// `Err(Ok(reason))` when the log is damaged (nothing must be signed); `Err(Err(_))` for
    /// storage errors.
    pub fn next_checkpoint(
        &self,
        node: &NodeId,
    ) -> Result<(Checkpoint, Vec<Hash>), Result<String, StoreError>> {
        let generation = self.audit.generation;
        let size = self.audit.frontier.size();
        let mut frontier = Frontier::new();
        if let Some((at, rec)) = self.last_checkpoint(generation).map_err(Err)? {
            let f = hashes(&rec.frontier).and_then(|h| Ok(Frontier::from_parts(at, h)?)).map_err(Err)?;
            let signed = SignedCheckpoint::open(&rec.note)
                .map_err(|e| Ok(format!("checkpoint {at} is damaged: {e}")))?;
            if f.root() != signed.checkpoint.root {
                return Err(Ok(format!(
                    "the stored frontier of checkpoint {at} does not match its signed root"
                )));
            }
            if at > size {
                return Err(Ok(format!("checkpoint {at} is beyond the log's {size} entries")));
            }
            frontier = f;
        }
        let g = self.generation(generation).map_err(Err)?;
        let mut prev: Option<[u8; 32]> = None;
        let from = frontier.size();
        for item in self.journal_entries(g.start + from, g.start + size) {
            let (seq, v) = item.map_err(Err)?;
            let index = seq - g.start;
            if index != frontier.size() {
                return Err(Ok(format!("entry {} of generation {generation} is missing", frontier.size())));
            }
            let entry: JournalEntry = codec::from_slice("journal entry", &v)
                .map_err(|e| Ok(format!("entry {index} of generation {generation} is unreadable: {e}")))?;
            if let Some(p) = prev {
                if entry.prev != p {
                    return Err(Ok(format!("entry {} of generation {generation} was changed", index - 1)));
                }
            }
            prev = Some(chain(&entry.prev, &v));
            frontier.push(merkle::leaf_hash(&v), |_, _, _| ());
        }
        if frontier.size() != size {
            return Err(Ok(format!("entry {} of generation {generation} is missing", frontier.size())));
        }
        if frontier.root() != self.audit.frontier.root() {
            return Err(Ok(format!(
                "the entries since checkpoint {from} do not hash to the tree's root: the log was changed"
            )));
        }
        let checkpoint = Checkpoint {
            origin: note::origin(node, generation),
            size,
            root: frontier.root(),
            extensions: Vec::new(),
        };
        Ok((checkpoint, frontier.hashes().to_vec()))
    }

    /// Stores a signed checkpoint of the current generation (or its cosignatures, added later),
    /// durably.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn put_checkpoint(&self, generation: u64, size: u64, rec: &CheckpointRec) -> Result<(), StoreError> {
        self.tree
            .insert(k(CHECKPOINTS, &pair_key(generation, size)), codec::to_vec(rec))
            .map_err(|e| self.sled_err(e))?;
        self.commit()
    }

    /// Ends the current generation and starts the next: its first entry is `first` (which names
    /// the old generation's last good checkpoint), written durably.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn start_generation(&mut self, first: godwit_protocol::audit::Event) -> Result<u64, StoreError> {
        let old = self.audit.clone();
        let ended = GenerationRec { start: old.start, ended: Some(old.frontier.size()) };
        let generation = old.generation + 1;
        let start = self.journal_head.0 + 1;
        let mut b = sled::Batch::default();
        b.insert(k(GENERATIONS, &old.generation.to_be_bytes()), codec::to_vec(&ended));
        b.insert(
            k(GENERATIONS, &generation.to_be_bytes()),
            codec::to_vec(&GenerationRec { start, ended: None }),
        );
        // The new generation and its first entry in one atomic batch: the entry's write appends
        // it to the head set here and writes the new state.
        self.audit = AuditHead { generation, start, ..AuditHead::default() };
        let entry = godwit_protocol::relay::Batch {
            writes: vec![godwit_protocol::relay::Write::Event(first)],
            sync: true,
        };
        if let Err(e) = self.write_with(b, &entry) {
            self.audit = old;
            return Err(e);
        }
        self.commit()?;
        Ok(generation)
    }

    /// Rebuilds every generation's tree from its entries and checks it (see
    /// [`AuditReader::verify`]).
    ///
    /// # Errors
    /// [`StoreError`] for storage failures (damage is reported, not returned).
    pub fn verify_audit(
        &self,
        node: &NodeId,
        witnesses: &[NodeId],
        progress: impl FnMut(u64, u64),
    ) -> Result<Vec<GenerationReport>, StoreError> {
        self.audit_reader().verify(node, witnesses, progress)
    }

    /// A read-only view of the log as it is now, for verifying it on another thread while the
    /// node goes on appending.
    pub fn audit_reader(&self) -> AuditReader {
        AuditReader {
            tree: self.tree.clone(),
            path: self.path.clone(),
            current: self.audit.generation,
            size: self.audit.frontier.size(),
            head: self.journal_head.1,
        }
    }

    /// The newest checkpoint of `node`'s log this node cosigned, as note text.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn witnessed(&self) -> Result<Vec<(NodeId, String)>, StoreError> {
        self.scan(WITNESSED)
            .filter_map(|item| {
                let (key, v) = match item {
                    Ok(kv) => kv,
                    Err(e) => return Some(Err(e)),
                };
                let id: [u8; 32] = key.as_ref().try_into().ok()?;
                Some(Ok((NodeId::from_bytes(id).ok()?, String::from_utf8_lossy(&v).into_owned())))
            })
            .collect()
    }

    /// Records the newest checkpoint of `node`'s log this node cosigned, durably: a witness
    /// must never cosign an inconsistent one after a restart either.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn put_witnessed(&self, node: &NodeId, note: &str) -> Result<(), StoreError> {
        self.tree.insert(k(WITNESSED, node.as_bytes()), note.as_bytes()).map_err(|e| self.sled_err(e))?;
        self.commit()
    }

    /// Reads every journal entry's bytes, nothing else (benchmarks: the floor under verify).
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn scan_journal_bytes(&self) -> Result<(u64, u64), StoreError> {
        let (mut n, mut bytes) = (0u64, 0u64);
        for item in self.journal_entries(1, u64::MAX) {
            let (_, v) = item?;
            n += 1;
            bytes += v.len() as u64;
        }
        Ok((n, bytes))
    }

    /// Overwrites a stored journal entry's bytes, as a failing disk or an intruder would (tests).
    ///
    /// # Errors
    /// [`StoreError`].
    #[cfg(any(test, feature = "fault-injection"))]
    ///
    /// With `None`, the entry and every later one of its pack of 16 are removed (truncation).
    pub fn tamper_entry(&mut self, seq: u64, bytes: Option<&[u8]>) -> Result<(), StoreError> {
        let pack = seq / journal::PACK;
        let Some(value) = self.get(JOURNAL, &pack.to_be_bytes())? else { return Ok(()) };
        let new = journal::rewrite(pack, &value, seq, bytes);
        if journal::partial(self.journal_head.0) == Some(pack) {
            self.journal_pack.clone_from(&new);
        }
        if new.is_empty() {
            self.tree.remove(journal::key(pack))
        } else {
            self.tree.insert(journal::key(pack), new)
        }
        .map(|_| ())
        .map_err(|e| self.sled_err(e))
    }
}

/// A read-only view of the audit log at one moment (see [`SledStore::audit_reader`]): entries
/// appended later are beyond its size and not looked at.
#[derive(Debug, Clone)]
pub struct AuditReader {
    tree: sled::Tree,
    path: std::path::PathBuf,
    current: u64,
    size: u64,
    head: [u8; 32],
}

impl AuditReader {
    fn sled_err(&self, source: sled::Error) -> StoreError {
        StoreError::Sled { path: self.path.clone(), source }
    }

    fn get(&self, t: Table, key: &[u8]) -> Result<Option<sled::IVec>, StoreError> {
        self.tree.get(k(t, key)).map_err(|e| self.sled_err(e))
    }

    fn generations(&self) -> Result<Vec<(u64, GenerationRec)>, StoreError> {
        self.tree
            .scan_prefix([GENERATIONS.0])
            .map(|item| {
                let (key, v) = item.map_err(|e| self.sled_err(e))?;
                Ok((be_u64(&key[1..]), SledStore::decode(GENERATIONS, &v)?))
            })
            .collect()
    }

    fn generation_size(&self, generation: u64) -> Result<u64, StoreError> {
        if generation == self.current {
            return Ok(self.size);
        }
        let g = self.get(GENERATIONS, &generation.to_be_bytes())?;
        Ok(match g {
            Some(v) => SledStore::decode::<GenerationRec>(GENERATIONS, &v)?.ended.unwrap_or(0),
            None => 0,
        })
    }

    fn checkpoints(&self, generation: u64) -> Result<Vec<(u64, CheckpointRec)>, StoreError> {
        self.tree
            .scan_prefix(k(CHECKPOINTS, &generation.to_be_bytes()))
            .map(|item| {
                let (key, v) = item.map_err(|e| self.sled_err(e))?;
                Ok((be_u64(&key[9..]), SledStore::decode(CHECKPOINTS, &v)?))
            })
            .collect()
    }

    fn tile(&self, generation: u64, tile: u64) -> Result<Option<Vec<Hash>>, StoreError> {
        Ok(self
            .get(LEAVES, &pair_key(generation, tile))?
            .map(|v| v.chunks_exact(32).map(|c| c.try_into().unwrap_or([0; 32])).collect()))
    }

    /// Rebuilds every generation's tree from its entries and checks each against the stored
    /// tree, the journal's hash chain and every checkpoint (root, the node's signature, the
    /// cosignatures of `witnesses`). `progress(done, total)` is called now and then.
    ///
    /// # Errors
    /// [`StoreError`] for storage failures (damage is reported, not returned).
    pub fn verify(
        &self,
        node: &NodeId,
        witnesses: &[NodeId],
        mut progress: impl FnMut(u64, u64),
    ) -> Result<Vec<GenerationReport>, StoreError> {
        let gens: Vec<(u64, GenerationRec)> =
            self.generations()?.into_iter().filter(|(g, _)| *g <= self.current).collect();
        let total: u64 = gens.iter().map(|(g, _)| self.generation_size(*g).unwrap_or(0)).sum();
        let mut done = 0u64;
        let mut out = Vec::new();
        for (generation, g) in gens {
            let size = self.generation_size(generation)?;
            let mut r = GenerationReport { generation, size, ..GenerationReport::default() };
            let mut checkpoints = self.checkpoints(generation)?;
            // Checkpoints signed after this view was taken are not its business.
            checkpoints.retain(|(at, _)| generation != self.current || *at <= self.size);
            let mut cps = checkpoints.iter().peekable();
            let mut frontier = Frontier::new();
            let mut prev: Option<[u8; 32]> = None;
            let mut tile: Vec<Hash> = Vec::new();
            let mut last: Option<(u64, [u8; 32])> = None;
            let bad = |r: &mut GenerationReport, i: u64, why: String| {
                if r.first_bad.is_none() {
                    r.first_bad = Some((i, why));
                }
            };
            for item in journal::entries(&self.tree, g.start, g.start + size) {
                let (seq, v) = item.map_err(|e| self.sled_err(e))?;
                let index = seq - g.start;
                if index != frontier.size() {
                    let i = frontier.size();
                    bad(&mut r, i, format!("entry {i} is missing"));
                    break;
                }
                let leaf = merkle::leaf_hash(&v);
                if index % TILE == 0 {
                    tile = self.tile(generation, index / TILE)?.unwrap_or_default();
                }
                if tile.get((index % TILE) as usize) != Some(&leaf) {
                    bad(&mut r, index, format!("entry {index} does not match the leaf logged for it"));
                }
                match seq_prev(&v) {
                    Some((seq, p)) => {
                        if seq != g.start + index {
                            bad(&mut r, index, format!("entry {index} says it is journal entry {seq}"));
                        }
                        if prev.is_some_and(|c| c != p) {
                            bad(
                                &mut r,
                                index - 1,
                                format!("entry {} was changed (the next entry's chain breaks)", index - 1),
                            );
                        }
                        prev = Some(chain(&p, &v));
                    }
                    None => {
                        bad(&mut r, index, format!("entry {index} is unreadable"));
                        prev = None;
                    }
                }
                last = prev.map(|p| (index, p));
                let mut stored_bad = None;
                frontier.push(leaf, |level, i, h| {
                    if level >= TILE_LEVEL && stored_bad.is_none() {
                        let stored = self.get(TREE, &tree_key(generation, level, i)).ok().flatten();
                        if stored.is_none_or(|s| s.as_ref() != h) {
                            stored_bad = Some(i << level);
                        }
                    }
                });
                if let Some(first) = stored_bad {
                    bad(&mut r, first, format!("the tree node over entries {first} to {index} was changed"));
                }
                r.entries += 1;
                done += 1;
                if done % 65_536 == 0 {
                    progress(done, total);
                }
                while let Some((at, rec)) = cps.next_if(|(at, _)| *at <= frontier.size()) {
                    r.checkpoints += 1;
                    self.check_checkpoint(node, witnesses, generation, *at, rec, &frontier, &mut r);
                }
            }
            if r.entries < size {
                let i = r.entries;
                bad(&mut r, i, format!("entries {i} to {} are missing", size - 1));
            } else if generation == self.current {
                // The last entry has no successor to chain to it: the journal's head does.
                if let Some((i, c)) = last {
                    if c != self.head {
                        bad(
                            &mut r,
                            i,
                            format!("entry {i} was changed (the journal's head does not chain to it)"),
                        );
                    }
                }
            }
            for (at, _) in cps {
                r.bad_checkpoints.push(format!("checkpoint {at} is beyond the entries held"));
            }
            out.push(r);
        }
        progress(done, total);
        Ok(out)
    }

    #[allow(clippy::too_many_arguments)]
    fn check_checkpoint(
        &self,
        node: &NodeId,
        witnesses: &[NodeId],
        generation: u64,
        at: u64,
        rec: &CheckpointRec,
        frontier: &Frontier,
        r: &mut GenerationReport,
    ) {
        match SignedCheckpoint::open(&rec.note) {
            Ok(s) if s.node != *node || s.generation != generation || s.checkpoint.size != at => {
                r.bad_checkpoints.push(format!("checkpoint {at} names another log or size"));
            }
            Ok(s) if frontier.size() != at || s.checkpoint.root != frontier.root() => {
                r.bad_checkpoints.push(format!("checkpoint {at}'s root does not match the entries"));
            }
            Ok(s) => {
                let claimed = s.claimed_cosigners();
                let valid = s.cosigners(witnesses.iter().chain(claimed.iter()));
                let seen: std::collections::BTreeSet<NodeId> = valid.iter().map(|(w, _)| *w).collect();
                r.cosignatures += seen.len() as u64;
                for c in claimed {
                    if !seen.contains(&c) {
                        r.bad_checkpoints.push(format!(
                            "checkpoint {at} carries a cosignature of {c} that does not verify"
                        ));
                    }
                }
            }
            Err(e) => r.bad_checkpoints.push(format!("checkpoint {at}: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use godwit_protocol::audit::Event;
    use godwit_protocol::identity::IdentityKey;
    use godwit_protocol::relay::{Batch, Store, Write};

    fn store_with(n: u64) -> (tempfile::TempDir, SledStore, IdentityKey) {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, _) = SledStore::open(dir.path()).unwrap();
        let key = IdentityKey::from_seed(&[5; 32]);
        let writes = (0..n).map(|i| Write::Event(Event::Pruned { count: i })).collect();
        s.write(&Batch { writes, sync: true }).unwrap();
        (dir, s, key)
    }

    fn sign(s: &SledStore, key: &IdentityKey) -> String {
        let (cp, frontier) = s.next_checkpoint(&key.node_id()).unwrap();
        let size = cp.size;
        let signed = SignedCheckpoint::sign(key, cp).unwrap();
        let note = signed.note.to_text();
        s.put_checkpoint(
            s.audit_head().0,
            size,
            &CheckpointRec { note: note.clone(), frontier: bufs(&frontier), at: 0 },
        )
        .unwrap();
        note
    }

    #[test]
    fn entries_are_leaves_written_with_them_and_proofs_check_against_signed_checkpoints() {
        let (dir, mut s, key) = store_with(37);
        let first = SignedCheckpoint::open(&sign(&s, &key)).unwrap();
        assert_eq!(first.checkpoint.size, 37);
        s.write(&Batch { writes: vec![Write::Event(Event::Pruned { count: 99 }); 30], sync: true }).unwrap();
        let second = SignedCheckpoint::open(&sign(&s, &key)).unwrap();
        assert_eq!(second.checkpoint.size, 67);
        assert_eq!(s.audit_root(0, 67).unwrap(), second.checkpoint.root);
        let p = s.audit_consistency(0, 37, 67).unwrap();
        merkle::verify_consistency(37, 67, &first.checkpoint.root, &second.checkpoint.root, &p).unwrap();
        let (bytes, entry) = s.audit_entry(0, 40).unwrap().unwrap();
        assert_eq!(entry.seq, 41);
        let p = s.audit_inclusion(0, 40, 67).unwrap();
        merkle::verify_inclusion(40, 67, &merkle::leaf_hash(&bytes), &p, &second.checkpoint.root).unwrap();
        // Reopened, the log goes on from its stored frontier.
        drop(s);
        let (s, report) = SledStore::open(dir.path()).unwrap();
        assert!(report.damage.is_empty(), "{:?}", report.damage);
        assert_eq!(s.audit_head().1, 67);
        let r = s.verify_audit(&key.node_id(), &[], |_, _| ()).unwrap();
        assert_eq!((r[0].entries, r[0].checkpoints, &r[0].first_bad), (67, 2, &None));
        assert!(r[0].bad_checkpoints.is_empty(), "{:?}", r[0].bad_checkpoints);
    }

    #[test]
    fn verify_names_the_first_bad_index_for_any_flipped_byte_or_truncation() {
        // Signed at 20; then 20 more. Signing rechecks only what came after the last
        // checkpoint; verify checks everything.
        let (_dir, mut s, key) = store_with(20);
        sign(&s, &key);
        s.write(&Batch { writes: vec![Write::Event(Event::Pruned { count: 7 }); 20], sync: true }).unwrap();
        let node = key.node_id();
        for index in [0u64, 1, 17, 38, 39] {
            let (orig, _) = s.audit_entry(0, index).unwrap().unwrap();
            for at in [0, orig.len() / 2, orig.len() - 1] {
                let mut bad = orig.clone();
                bad[at] ^= 0x10;
                s.tamper_entry(index + 1, Some(&bad)).unwrap();
                let r = s.verify_audit(&node, &[], |_, _| ()).unwrap();
                assert_eq!(r[0].first_bad.as_ref().map(|b| b.0), Some(index), "byte {at} of entry {index}");
                if index >= 20 {
                    assert!(matches!(s.next_checkpoint(&node), Err(Ok(_))), "a damaged log is not signed");
                }
                s.tamper_entry(index + 1, Some(&orig)).unwrap();
            }
        }
        assert!(s.verify_audit(&node, &[], |_, _| ()).unwrap()[0].first_bad.is_none());
        // A stored tree node or tile changed (proofs would not hold): named by its first entry.
        let key = k(TREE, &tree_key(0, 4, 1));
        let orig = s.tree.get(&key).unwrap().unwrap();
        s.tree.insert(&key, &[0u8; 32][..]).unwrap();
        assert_eq!(
            s.verify_audit(&node, &[], |_, _| ()).unwrap()[0].first_bad.as_ref().map(|b| b.0),
            Some(16)
        );
        s.tree.insert(&key, orig).unwrap();
        let key = k(LEAVES, &pair_key(0, 2));
        let orig = s.tree.get(&key).unwrap().unwrap();
        let mut bad = orig.to_vec();
        bad[3 * 32] ^= 1;
        s.tree.insert(&key, bad).unwrap();
        assert_eq!(
            s.verify_audit(&node, &[], |_, _| ()).unwrap()[0].first_bad.as_ref().map(|b| b.0),
            Some(35)
        );
        s.tree.insert(&key, orig).unwrap();
        assert!(s.verify_audit(&node, &[], |_, _| ()).unwrap()[0].first_bad.is_none());
        // Truncated below the checkpoint: the last 25 entries removed.
        for seq in 16..=40 {
            s.tamper_entry(seq, None).unwrap();
        }
        let r = s.verify_audit(&node, &[], |_, _| ()).unwrap();
        assert_eq!(r[0].first_bad.as_ref().map(|b| b.0), Some(15));
        assert!(r[0].bad_checkpoints.iter().any(|b| b.contains("beyond")), "{:?}", r[0].bad_checkpoints);
    }

    #[test]
    fn entries_of_older_versions_without_a_time_are_read_and_verified() {
        // An entry as an older version wrote it: no `at`.
        let old = JournalEntry { at: 0, seq: 1, prev: [0; 32], event: Event::Pruned { count: 1 } };
        let bytes = codec::to_vec(&old);
        assert_eq!(codec::from_slice::<JournalEntry>("journal entry", &bytes).unwrap(), old);
        assert_eq!(seq_prev(&bytes), Some((1, [0; 32])));
        let new = JournalEntry { at: 1_795_000_000_000, ..old };
        let b2 = codec::to_vec(&new);
        assert_eq!(codec::from_slice::<JournalEntry>("journal entry", &b2).unwrap(), new);
        assert_eq!(seq_prev(&b2), Some((1, [0; 32])));
    }

    #[test]
    fn a_new_generation_starts_empty_and_names_the_old_ones_last_checkpoint() {
        let (_dir, mut s, key) = store_with(10);
        let note = sign(&s, &key);
        let g = s
            .start_generation(Event::Generation { previous: 0, size: 10, checkpoint: note.clone() })
            .unwrap();
        assert_eq!((g, s.audit_head().1), (1, 1));
        let (_, first) = s.audit_entry(1, 0).unwrap().unwrap();
        assert_eq!(first.event, Event::Generation { previous: 0, size: 10, checkpoint: note });
        let cp = SignedCheckpoint::open(&sign(&s, &key)).unwrap();
        assert_eq!((cp.generation, cp.checkpoint.size), (1, 1));
        let r = s.verify_audit(&key.node_id(), &[], |_, _| ()).unwrap();
        assert_eq!(r.len(), 2);
        assert!(r.iter().all(|g| g.first_bad.is_none() && g.bad_checkpoints.is_empty()), "{r:?}");
    }
}

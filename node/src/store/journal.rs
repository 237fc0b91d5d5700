//! The journal's layout: entries kept [`PACK`] to a sled value, so that appending and reading
//! cost one sled key per 16 entries rather than one per entry (sled's per-key cost dominated
//! both; `docs/benchmarks.md`, "Audit log").
//!
//! Pack `p` holds the entries with seq `max(16p, 1)` up to `16p + 15`, in order, each as a
//! 4-byte big-endian length and the entry's exact bytes (its leaf in the audit log). The last
//! pack is partial and rewritten with each commit that adds to it; its bytes are kept in memory.
//! An entry's seq is its place in its pack: a damaged length garbles the entries after it in
//! that pack, never those of another pack, and the first damaged entry is the one named.

use sled::IVec;

use super::{JOURNAL, be_u64, k};

/// The prefix of schema 2's journal, one key per entry (moved into packs on open).
const OLD_JOURNAL: u8 = b'j';

/// Entries per pack.
pub(super) const PACK: u64 = 16;

/// The sled key of pack `pack`.
pub(super) fn key(pack: u64) -> Vec<u8> {
    k(JOURNAL, &pack.to_be_bytes())
}

/// The first seq held by pack `pack` (seq 0 does not exist).
fn first_seq(pack: u64) -> u64 {
    pack.saturating_mul(PACK).max(1)
}

/// One past the last seq pack `pack` can hold.
fn end_seq(pack: u64) -> u64 {
    pack.saturating_add(1).saturating_mul(PACK)
}

/// Adds the entry `seq` to the current partial pack; a pack that is full goes into `batch`.
pub(super) fn push(pack: &mut Vec<u8>, seq: u64, bytes: &[u8], batch: &mut sled::Batch) {
    append(pack, bytes);
    if seq % PACK == PACK - 1 {
        batch.insert(key(seq / PACK), std::mem::take(pack));
    }
}

/// Adds an entry's length and bytes to a pack's value.
fn append(pack: &mut Vec<u8>, bytes: &[u8]) {
    // Entries are far below 4 GiB: the largest event carries two 16 KiB notes.
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    pack.extend_from_slice(&len.to_be_bytes());
    pack.extend_from_slice(bytes);
}

/// Writes the current partial pack, whose last entry is `seq` (at the end of a batch).
pub(super) fn flush(pack: &[u8], seq: u64, batch: &mut sled::Batch) {
    if !pack.is_empty() {
        batch.insert(key(seq / PACK), pack);
    }
}

/// The entries of one pack's value, with their seqs.
pub(super) fn unpack(pack: u64, value: &IVec) -> Vec<(u64, IVec)> {
    Unpack { value: value.clone(), at: 0, seq: first_seq(pack), end: end_seq(pack) }.collect()
}

/// The pack the entry after the journal's head `head` goes into, when that pack is already
/// begun (partial, its value kept in memory); `None` when the next entry starts a new pack.
pub(super) fn partial(head: u64) -> Option<u64> {
    let next = head + 1;
    (next % PACK != 0).then_some(next / PACK)
}

/// Whether the stored partial pack holds exactly the entries up to the journal's head `head`
/// (checked on open: entries appended to a damaged one would land in the wrong places).
pub(super) fn partial_is_sound(value: &[u8], head: u64) -> bool {
    partial(head).is_none_or(|p| unpack(p, &IVec::from(value)).len() as u64 == head + 1 - first_seq(p))
}

/// Replaces entry `seq` of a pack's value (or, with `None`, drops it and every later entry of
/// the pack): as a failing disk or an intruder would change it (tests and fault injection).
#[cfg(any(test, feature = "fault-injection"))]
pub(super) fn rewrite(pack: u64, value: &IVec, seq: u64, bytes: Option<&[u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for (s, entry) in unpack(pack, value) {
        let entry: &[u8] = match (s == seq, bytes) {
            (false, _) => &entry,
            (true, Some(b)) => b,
            (true, None) => break,
        };
        append(&mut out, entry);
    }
    out
}

struct Unpack {
    value: IVec,
    at: usize,
    seq: u64,
    end: u64,
}

impl Iterator for Unpack {
    type Item = (u64, IVec);
    fn next(&mut self) -> Option<(u64, IVec)> {
        let len = self.value.len();
        if self.at >= len || self.seq >= self.end {
            return None;
        }
        // A length beyond the value is damage: what is left, length included, is this entry (it
        // will not hash to its leaf, even where the bytes after the length are the whole entry).
        let n = self
            .value
            .get(self.at..self.at + 4)
            .map(|l| u32::from_be_bytes([l[0], l[1], l[2], l[3]]) as usize);
        let (start, stop) = match n {
            // `at + 4 <= len` here: the length was there.
            Some(n) if n <= len - (self.at + 4) => (self.at + 4, self.at + 4 + n),
            _ => (self.at, len),
        };
        let entry = self.value.subslice(start, stop - start);
        self.at = stop;
        self.seq += 1;
        Some((self.seq - 1, entry))
    }
}

/// The entries with seq in `from..to`, in order: seq and exact bytes.
pub(super) fn entries(tree: &sled::Tree, from: u64, to: u64) -> Entries {
    let start = key(from / PACK);
    let iter = if to == u64::MAX {
        tree.range(start..vec![JOURNAL.0 + 1])
    } else {
        tree.range(start..key(to.saturating_sub(1) / PACK + 1))
    };
    Entries { iter, pack: None, from, to }
}

/// See [`entries`].
pub(super) struct Entries {
    iter: sled::Iter,
    pack: Option<Unpack>,
    from: u64,
    to: u64,
}

impl Iterator for Entries {
    type Item = Result<(u64, IVec), sled::Error>;
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some((seq, entry)) = self.pack.as_mut().and_then(Iterator::next) {
                if seq >= self.to {
                    return None;
                }
                if seq >= self.from {
                    return Some(Ok((seq, entry)));
                }
                continue;
            }
            let (key, value) = match self.iter.next()? {
                Ok(kv) => kv,
                Err(e) => return Some(Err(e)),
            };
            let pack = be_u64(&key[1..]);
            self.pack = Some(Unpack { value, at: 0, seq: first_seq(pack), end: end_seq(pack) });
        }
    }
}

/// Moves a journal of one key per entry (schema 2, table `j`) into packs, a few thousand
/// packs per atomic batch: each batch writes whole packs and removes their old keys together, so
/// a crash in between leaves every entry in exactly one of the two layouts and the next open
/// goes on where it stopped.
pub(super) fn migrate(tree: &sled::Tree, packs_per_batch: usize) -> Result<(), sled::Error> {
    loop {
        let mut batch = sled::Batch::default();
        let mut pack: Option<(u64, Vec<u8>, u64)> = None;
        let mut packs = 0;
        let mut more = false;
        for item in tree.scan_prefix([OLD_JOURNAL]) {
            let (key, value) = item?;
            let seq = be_u64(&key[1..]);
            let p = seq / PACK;
            if pack.as_ref().is_some_and(|(q, _, _)| *q != p) {
                let Some((q, bytes, _)) = pack.take() else { break };
                batch.insert(self::key(q), bytes);
                packs += 1;
                if packs == packs_per_batch {
                    more = true;
                    break;
                }
            }
            // `next`: the seq the pack's next entry has.
            let (_, bytes, next) = pack.get_or_insert_with(|| (p, Vec::new(), first_seq(p)));
            // A missing entry keeps its place as an empty one (never a valid entry: named as
            // damaged, like the hole it was), so that the entries after it keep their seqs.
            while *next < seq {
                append(bytes, &[]);
                *next += 1;
            }
            append(bytes, &value);
            *next += 1;
            batch.remove(key);
        }
        if let Some((q, bytes, _)) = pack {
            batch.insert(self::key(q), bytes);
        }
        tree.apply_batch(batch)?;
        if !more {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{JournalEntry, STATE, SledStore, chain};
    use super::*;
    use godwit_protocol::audit::Event;
    use godwit_protocol::codec;
    use godwit_protocol::identity::IdentityKey;
    use godwit_protocol::relay::{Batch, Store, Write};

    fn events(s: &mut SledStore, n: u64) {
        let writes = (0..n).map(|i| Write::Event(Event::Pruned { count: i })).collect();
        s.write(&Batch { writes, sync: true }).unwrap();
    }

    fn seqs(s: &SledStore) -> Vec<u64> {
        s.journal().unwrap().iter().map(|e| e.seq).collect()
    }

    fn sound(s: &SledStore, n: u64) {
        let j = s.journal().unwrap();
        assert_eq!(j.iter().map(|e| e.seq).collect::<Vec<_>>(), (1..=n).collect::<Vec<_>>());
        let mut prev = [0u8; 32];
        for (e, (_, bytes)) in j.iter().zip(journal_bytes(s)) {
            assert_eq!(e.prev, prev, "entry {}", e.seq);
            prev = chain(&prev, &bytes);
        }
        let key = IdentityKey::from_seed(&[5; 32]);
        let r = s.verify_audit(&key.node_id(), &[], |_, _| ()).unwrap();
        assert_eq!((r[0].entries, &r[0].first_bad), (n, &None));
    }

    fn journal_bytes(s: &SledStore) -> Vec<(u64, IVec)> {
        entries(&s.tree, 1, u64::MAX).map(Result::unwrap).collect()
    }

    #[test]
    fn entries_are_packed_sixteen_to_a_key_and_a_partial_pack_goes_on_after_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut s, _) = SledStore::open(dir.path()).unwrap();
            for n in [1, 14, 3, 20] {
                events(&mut s, n);
            }
            s.commit().unwrap();
            // 38 entries: packs 0 (seq 1–15), 1 (16–31) and 2 (32–38, partial).
            assert_eq!(s.tree.scan_prefix([JOURNAL.0]).count(), 3);
            assert_eq!(
                s.journal_after(30, 3).unwrap().iter().map(|e| e.seq).collect::<Vec<_>>(),
                [31, 32, 33]
            );
            assert_eq!(
                s.journal_tail(9).unwrap().iter().map(|e| e.seq).collect::<Vec<_>>(),
                (30..=38).collect::<Vec<_>>()
            );
            assert_eq!(s.audit_entry(0, 15).unwrap().unwrap().1.seq, 16);
        }
        let (mut s, r) = SledStore::open(dir.path()).unwrap();
        assert!(r.damage.is_empty(), "{:?}", r.damage);
        assert_eq!(r.journal, 38);
        events(&mut s, 11);
        assert_eq!(seqs(&s).len(), 49);
        sound(&s, 49);
        assert_eq!(s.journal_tail(100).unwrap().len(), 49);
    }

    #[test]
    fn any_byte_flipped_in_a_pack_is_named_by_the_entry_it_belongs_to() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, _) = SledStore::open(dir.path()).unwrap();
        events(&mut s, 40);
        let node = IdentityKey::from_seed(&[5; 32]).node_id();
        // Pack 1 whole (seq 16–31) and pack 2 partial (seq 32–40), lengths included.
        for pack in [1u64, 2] {
            let orig = s.tree.get(key(pack)).unwrap().unwrap();
            let mut owner = Vec::new();
            for (seq, entry) in unpack(pack, &orig) {
                owner.extend(std::iter::repeat_n(seq, 4 + entry.len()));
            }
            assert_eq!(owner.len(), orig.len());
            for (at, seq) in owner.iter().enumerate() {
                let mut bad = orig.to_vec();
                bad[at] ^= 0x04;
                s.tree.insert(key(pack), bad).unwrap();
                let r = s.verify_audit(&node, &[], |_, _| ()).unwrap();
                assert_eq!(r[0].first_bad.as_ref().map(|b| b.0 + 1), Some(*seq), "byte {at} of pack {pack}");
            }
            s.tree.insert(key(pack), orig).unwrap();
        }
        sound(&s, 40);
    }

    /// Rewrites the journal as schema 2 kept it (one key per entry under `j`), from seq `from`.
    fn unmigrate(s: &SledStore, from: u64) {
        for (seq, bytes) in journal_bytes(s) {
            if seq >= from {
                s.tree.insert([&[OLD_JOURNAL][..], &seq.to_be_bytes()].concat(), bytes).unwrap();
            }
        }
        let packs: Vec<_> = s.tree.scan_prefix([JOURNAL.0]).keys().map(Result::unwrap).collect();
        for k in packs {
            if first_seq(be_u64(&k[1..])) >= from {
                s.tree.remove(k).unwrap();
            }
        }
        s.tree.insert(super::super::k(STATE, b"schema"), &2u32.to_be_bytes()).unwrap();
        s.commit().unwrap();
    }

    #[test]
    fn a_schema_two_journal_is_moved_into_packs_whole_even_when_a_move_was_interrupted() {
        // From the start, and with the first pack already moved (a crash after one batch).
        for from in [1, 16] {
            let dir = tempfile::tempdir().unwrap();
            let before = {
                let (mut s, _) = SledStore::open(dir.path()).unwrap();
                events(&mut s, 70);
                let j = journal_bytes(&s);
                unmigrate(&s, from);
                assert_eq!(s.tree.scan_prefix([OLD_JOURNAL]).count() as u64, 71 - from);
                j
            };
            let (mut s, r) = SledStore::open(dir.path()).unwrap();
            assert!(r.damage.is_empty(), "{:?}", r.damage);
            assert_eq!(s.tree.scan_prefix([OLD_JOURNAL]).count(), 0);
            assert_eq!(journal_bytes(&s), before);
            events(&mut s, 5);
            sound(&s, 75);
        }
        // Batches of two packs: every batch ends on a pack's end.
        let dir = tempfile::tempdir().unwrap();
        let (mut s, _) = SledStore::open(dir.path()).unwrap();
        events(&mut s, 100);
        let before = journal_bytes(&s);
        unmigrate(&s, 1);
        migrate(&s.tree, 2).unwrap();
        assert_eq!(journal_bytes(&s), before);
        assert_eq!(s.tree.scan_prefix([JOURNAL.0]).count(), 7);
        let e: JournalEntry = codec::from_slice("journal entry", &before[99].1).unwrap();
        assert_eq!(e.seq, 100);
    }

    #[test]
    fn a_hole_in_a_schema_two_journal_keeps_its_place_and_is_named() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut s, _) = SledStore::open(dir.path()).unwrap();
            events(&mut s, 40);
            unmigrate(&s, 1);
            // Entries 5 and 16 (the first of pack 1) lost.
            for seq in [5u64, 16] {
                s.tree.remove([&[OLD_JOURNAL][..], &seq.to_be_bytes()].concat()).unwrap();
            }
            s.commit().unwrap();
        }
        let (s, r) = SledStore::open(dir.path()).unwrap();
        assert!(r.damage.iter().any(|d| d.contains("journal entry 5 is unreadable")), "{:?}", r.damage);
        assert!(r.damage.iter().any(|d| d.contains("journal entry 16 is unreadable")), "{:?}", r.damage);
        let seqs: Vec<u64> = journal_bytes(&s).iter().map(|(q, _)| *q).collect();
        assert_eq!(seqs, (1..=40).collect::<Vec<_>>(), "every other entry keeps its seq");
        let node = IdentityKey::from_seed(&[5; 32]).node_id();
        let v = s.verify_audit(&node, &[], |_, _| ()).unwrap();
        assert_eq!(v[0].first_bad.as_ref().map(|b| b.0), Some(4));
    }

    #[test]
    fn a_damaged_last_pack_is_reported_on_open_and_lengths_never_overflow() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut s, _) = SledStore::open(dir.path()).unwrap();
            events(&mut s, 20);
            let mut v = s.tree.get(key(1)).unwrap().unwrap().to_vec();
            v[0] ^= 0x80; // the first length of the partial pack (seq 16–20)
            s.tree.insert(key(1), v).unwrap();
            s.commit().unwrap();
        }
        let (_, r) = SledStore::open(dir.path()).unwrap();
        assert!(r.damage.iter().any(|d| d.contains("the journal's last pack (1)")), "{:?}", r.damage);
        // Lengths near 4 GiB: one entry, the rest of the value, no overflow.
        let v = IVec::from(&[0xff, 0xff, 0xff, 0xff, 1, 2, 3][..]);
        assert_eq!(unpack(1, &v).len(), 1);
        assert_eq!(unpack(1, &v), vec![(16, v.clone())]);
        assert_eq!(unpack(1, &IVec::from(&[0, 0, 0, 1, 9, 0, 0][..])).len(), 2);
        assert_eq!(unpack(1, &IVec::from(&[][..])).len(), 0);
    }
}

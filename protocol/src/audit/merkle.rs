//! The audit log's Merkle tree, as RFC 6962 / RFC 9162 define it: leaf hash
//! `SHA-256(0x00 ‖ entry)`, interior hash `SHA-256(0x01 ‖ left ‖ right)`, the empty tree's root
//! `SHA-256()`.
//!
//! A log grows by appending to its [`Frontier`] (the roots of the perfect subtrees along its
//! right edge: at most 64 hashes) in O(log n). Every node that becomes complete is handed to the
//! caller to store, keyed by its level and index, and proofs are built from those stored nodes
//! ([`Nodes`]) with O(log n) lookups. Verification ([`verify_inclusion`],
//! [`verify_consistency`]) follows RFC 9162 §2.1.3.2 and §2.1.4.2 and needs nothing but the
//! hashes.

use sha2::{Digest, Sha256};

/// A SHA-256 hash of the tree.
pub type Hash = [u8; 32];

/// The most hashes a proof of a tree of up to 2^64 − 1 leaves can need.
pub const MAX_PROOF: usize = 64;

/// Why a proof does not hold or cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MerkleError {
    /// The leaf index is not inside the tree.
    #[error("leaf {index} is outside a tree of {size} entries")]
    IndexOutOfRange {
        /// The index.
        index: u64,
        /// The tree's size.
        size: u64,
    },
    /// The older size is larger than the newer one.
    #[error("a tree of {old} entries cannot be a prefix of one of {new}")]
    SizesOutOfOrder {
        /// The older size.
        old: u64,
        /// The newer size.
        new: u64,
    },
    /// A consistency proof from the empty tree proves nothing and is refused (every tree
    /// extends the empty one; a witness takes a log's first checkpoint as it is).
    #[error("a consistency proof from the empty tree proves nothing")]
    FromEmpty,
    /// The proof has the wrong number of hashes for the sizes it is for.
    #[error("the proof has {got} hashes; these sizes need {want}")]
    ProofLength {
        /// Hashes given.
        got: usize,
        /// Hashes needed.
        want: usize,
    },
    /// The proof's hashes do not lead to the root (or roots) given.
    #[error("the proof does not lead to the root given")]
    RootMismatch,
    /// A frontier's hashes do not match its size.
    #[error("a frontier of {size} entries has {count} hashes, not {want}")]
    BadFrontier {
        /// The size.
        size: u64,
        /// Hashes given.
        count: usize,
        /// Hashes a tree of that size has on its right edge.
        want: u32,
    },
    /// A node needed for a proof is not stored.
    #[error("tree node at level {level}, index {index} is missing")]
    MissingNode {
        /// Its level (0: leaves).
        level: u8,
        /// Its index at that level.
        index: u64,
    },
}

/// The hash of a leaf: `SHA-256(0x00 ‖ entry)`.
pub fn leaf_hash(entry: &[u8]) -> Hash {
    Sha256::new().chain_update([0u8]).chain_update(entry).finalize().into()
}

/// The hash of an interior node: `SHA-256(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    Sha256::new().chain_update([1u8]).chain_update(left).chain_update(right).finalize().into()
}

/// The root of the empty tree: `SHA-256()`.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The right edge of a tree: the roots of its perfect subtrees, largest (leftmost) first — one
/// for each bit set in its size.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    hashes: Vec<Hash>,
}

impl Frontier {
    /// The empty tree's frontier.
    pub fn new() -> Self {
        Self::default()
    }

    /// A frontier from its stored parts, checked for shape.
    ///
    /// # Errors
    /// [`MerkleError::BadFrontier`] when the number of hashes is not the number of bits set in
    /// `size`.
    pub fn from_parts(size: u64, hashes: Vec<Hash>) -> Result<Self, MerkleError> {
        if hashes.len() != size.count_ones() as usize {
            return Err(MerkleError::BadFrontier { size, count: hashes.len(), want: size.count_ones() });
        }
        Ok(Self { size, hashes })
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The right edge's hashes, largest subtree first.
    pub fn hashes(&self) -> &[Hash] {
        &self.hashes
    }

    /// Appends a leaf by its hash. `complete` is called for every node this completes, the
    /// leaf itself first: `(level, index, hash)`, the node covering leaves
    /// `index << level .. (index + 1) << level`.
    pub fn push(&mut self, leaf: Hash, mut complete: impl FnMut(u8, u64, &Hash)) {
        let (mut level, mut index, mut hash) = (0u8, self.size, leaf);
        complete(level, index, &hash);
        while index & 1 == 1 {
            // The left sibling is the smallest subtree on the edge.
            let left = self.hashes.pop().unwrap_or_default();
            hash = node_hash(&left, &hash);
            level += 1;
            index >>= 1;
            complete(level, index, &hash);
        }
        self.hashes.push(hash);
        self.size += 1;
    }

    /// The tree's root hash.
    pub fn root(&self) -> Hash {
        let mut it = self.hashes.iter().rev();
        let Some(last) = it.next() else { return empty_root() };
        it.fold(*last, |acc, left| node_hash(left, &acc))
    }
}

/// Where a proof's hashes come from: the complete nodes the frontier handed out.
pub trait Nodes {
    /// A storage error.
    type Error: From<MerkleError>;

    /// The complete node at `level`, `index`, if stored.
    ///
    /// # Errors
    /// Storage errors.
    fn node(&self, level: u8, index: u64) -> Result<Option<Hash>, Self::Error>;
}

fn need<N: Nodes>(nodes: &N, level: u8, index: u64) -> Result<Hash, N::Error> {
    nodes.node(level, index)?.ok_or_else(|| MerkleError::MissingNode { level, index }.into())
}

/// The hash of the RFC 9162 subtree over leaves `lo..hi`: a perfect, aligned subtree is one
/// stored node; a right-edge subtree folds the perfect subtrees it decomposes into.
fn range_hash<N: Nodes>(nodes: &N, lo: u64, hi: u64) -> Result<Hash, N::Error> {
    let mut parts = Vec::with_capacity(MAX_PROOF);
    let mut at = lo;
    while at < hi {
        // The largest perfect subtree that starts at `at` (aligned) and fits before `hi`.
        let align = if at == 0 { 63 } else { at.trailing_zeros() };
        let fit = 63 - (hi - at).leading_zeros();
        let level = align.min(fit);
        parts.push(need(nodes, level as u8, at >> level)?);
        at += 1 << level;
    }
    let mut it = parts.into_iter().rev();
    let Some(last) = it.next() else { return Ok(empty_root()) };
    Ok(it.fold(last, |acc, left| node_hash(&left, &acc)))
}

/// The root of the first `size` leaves, from stored nodes.
///
/// # Errors
/// A node missing from storage.
pub fn root<N: Nodes>(nodes: &N, size: u64) -> Result<Hash, N::Error> {
    range_hash(nodes, 0, size)
}

/// The largest power of two below `n` (n ≥ 2).
fn split(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// The inclusion proof of leaf `index` in the tree of the first `size` leaves (RFC 9162
/// §2.1.3.1), leaf side first.
///
/// # Errors
/// [`MerkleError::IndexOutOfRange`], or a node missing from storage.
pub fn inclusion_proof<N: Nodes>(nodes: &N, index: u64, size: u64) -> Result<Vec<Hash>, N::Error> {
    if index >= size {
        return Err(MerkleError::IndexOutOfRange { index, size }.into());
    }
    let mut out = Vec::new();
    let (mut lo, mut hi) = (0, size);
    // Walk down from the root, collecting the sibling of each step, then reverse.
    while hi - lo > 1 {
        let k = split(hi - lo);
        if index < lo + k {
            out.push(range_hash(nodes, lo + k, hi)?);
            hi = lo + k;
        } else {
            out.push(range_hash(nodes, lo, lo + k)?);
            lo += k;
        }
    }
    out.reverse();
    Ok(out)
}

/// The consistency proof between the trees of the first `old` and `new` leaves (RFC 9162
/// §2.1.4.1); empty when `old` is 0 or equals `new`.
///
/// # Errors
/// [`MerkleError::SizesOutOfOrder`], or a node missing from storage.
pub fn consistency_proof<N: Nodes>(nodes: &N, old: u64, new: u64) -> Result<Vec<Hash>, N::Error> {
    if old > new {
        return Err(MerkleError::SizesOutOfOrder { old, new }.into());
    }
    if old == 0 || old == new {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    let (mut m, mut lo, mut hi, mut whole) = (old, 0u64, new, true);
    loop {
        let n = hi - lo;
        if m == n {
            if !whole {
                out.push(range_hash(nodes, lo, hi)?);
            }
            break;
        }
        let k = split(n);
        if m <= k {
            out.push(range_hash(nodes, lo + k, hi)?);
            hi = lo + k;
        } else {
            out.push(range_hash(nodes, lo, lo + k)?);
            lo += k;
            m -= k;
            whole = false;
        }
    }
    out.reverse();
    Ok(out)
}

/// Checks that `leaf` is leaf `index` of the tree of `size` leaves with root `root` (RFC 9162
/// §2.1.3.2).
///
/// # Errors
/// [`MerkleError::IndexOutOfRange`], [`MerkleError::ProofLength`] or
/// [`MerkleError::RootMismatch`].
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), MerkleError> {
    if index >= size {
        return Err(MerkleError::IndexOutOfRange { index, size });
    }
    let want = inclusion_len(index, size);
    if proof.len() != want {
        return Err(MerkleError::ProofLength { got: proof.len(), want });
    }
    let (mut f, mut s, mut r) = (index, size - 1, *leaf);
    for p in proof {
        if s == 0 {
            return Err(MerkleError::RootMismatch);
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    if s == 0 && r == *root { Ok(()) } else { Err(MerkleError::RootMismatch) }
}

/// Checks that the tree of `old` leaves with root `old_root` is a prefix of the tree of `new`
/// leaves with root `new_root` (RFC 9162 §2.1.4.2). Equal sizes need an empty proof and equal
/// roots; a proof from the empty tree is refused ([`MerkleError::FromEmpty`]).
///
/// # Errors
/// [`MerkleError::SizesOutOfOrder`], [`MerkleError::FromEmpty`], [`MerkleError::ProofLength`] or
/// [`MerkleError::RootMismatch`].
pub fn verify_consistency(
    old: u64,
    new: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), MerkleError> {
    if old > new {
        return Err(MerkleError::SizesOutOfOrder { old, new });
    }
    let want = consistency_len(old, new);
    if proof.len() != want {
        return Err(MerkleError::ProofLength { got: proof.len(), want });
    }
    if old == 0 {
        return Err(MerkleError::FromEmpty);
    }
    if old == new {
        return if old_root == new_root { Ok(()) } else { Err(MerkleError::RootMismatch) };
    }
    // A power-of-two old tree is itself a node of the new one: its root starts the path.
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let (mut f, mut s) = (old - 1, new - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if s == 0 {
            return Err(MerkleError::RootMismatch);
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    if s == 0 && fr == *old_root && sr == *new_root { Ok(()) } else { Err(MerkleError::RootMismatch) }
}

/// The number of hashes in the inclusion proof of `index` in a tree of `size`.
fn inclusion_len(index: u64, size: u64) -> usize {
    let (mut lo, mut hi, mut n) = (0u64, size, 0usize);
    while hi - lo > 1 {
        let k = split(hi - lo);
        if index < lo + k {
            hi = lo + k
        } else {
            lo += k
        }
        n += 1;
    }
    n
}

/// The number of hashes in the consistency proof from `old` to `new` (old ≤ new).
fn consistency_len(old: u64, new: u64) -> usize {
    if old == 0 || old == new {
        return 0;
    }
    let (mut m, mut lo, mut hi, mut whole, mut n) = (old, 0u64, new, true, 0usize);
    loop {
        let len = hi - lo;
        if m == len {
            return n + usize::from(!whole);
        }
        let k = split(len);
        if m <= k {
            hi = lo + k;
        } else {
            lo += k;
            m -= k;
            whole = false;
        }
        n += 1;
    }
}

/// Complete nodes kept in memory, for tests, tools and small trees.
#[derive(Debug, Clone, Default)]
pub struct MemoryTree {
    frontier: Frontier,
    levels: Vec<Vec<Hash>>,
}

impl MemoryTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends an entry (its bytes, hashed as a leaf).
    pub fn push(&mut self, entry: &[u8]) {
        self.push_hash(leaf_hash(entry));
    }

    /// Appends a leaf by its hash.
    pub fn push_hash(&mut self, leaf: Hash) {
        let levels = &mut self.levels;
        self.frontier.push(leaf, |level, _, hash| {
            let level = usize::from(level);
            if levels.len() <= level {
                levels.resize_with(level + 1, Vec::new);
            }
            levels[level].push(*hash);
        });
    }

    /// The frontier.
    pub fn frontier(&self) -> &Frontier {
        &self.frontier
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.frontier.size()
    }

    /// The root of the first `size` leaves.
    ///
    /// # Errors
    /// [`MerkleError::IndexOutOfRange`] when `size` is beyond the tree.
    pub fn root_at(&self, size: u64) -> Result<Hash, MerkleError> {
        if size > self.size() {
            return Err(MerkleError::IndexOutOfRange { index: size, size: self.size() });
        }
        range_hash(self, 0, size)
    }
}

impl Nodes for MemoryTree {
    type Error = MerkleError;
    fn node(&self, level: u8, index: u64) -> Result<Option<Hash>, MerkleError> {
        let at = usize::try_from(index).unwrap_or(usize::MAX);
        Ok(self.levels.get(usize::from(level)).and_then(|l| l.get(at)).copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(n: u64) -> MemoryTree {
        let mut t = MemoryTree::new();
        for i in 0..n {
            t.push(&i.to_be_bytes());
        }
        t
    }

    /// RFC 6962's MTH, written out recursively, to check the stored-node arithmetic against.
    fn mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split(n as u64) as usize;
                node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }

    #[test]
    fn every_proof_of_small_trees_is_built_and_checks_and_a_changed_hash_fails_it() {
        let t = tree(70);
        let leaves: Vec<Hash> = (0..70u64).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        for size in 1..=70u64 {
            let root = t.root_at(size).unwrap();
            assert_eq!(root, mth(&leaves[..size as usize]), "size {size}");
            for index in 0..size {
                let p = inclusion_proof(&t, index, size).unwrap();
                verify_inclusion(index, size, &leaves[index as usize], &p, &root).unwrap();
                if let Some(first) = p.first() {
                    let mut bad = p.clone();
                    bad[0] = node_hash(first, first);
                    assert_eq!(
                        verify_inclusion(index, size, &leaves[index as usize], &bad, &root),
                        Err(MerkleError::RootMismatch)
                    );
                }
            }
            for old in 0..=size {
                let p = consistency_proof(&t, old, size).unwrap();
                let old_root = t.root_at(old).unwrap();
                if old == 0 {
                    assert_eq!(
                        verify_consistency(old, size, &old_root, &root, &p),
                        Err(MerkleError::FromEmpty)
                    );
                    continue;
                }
                verify_consistency(old, size, &old_root, &root, &p).unwrap();
                if old > 0 && old < size {
                    assert!(verify_consistency(old, size, &root, &old_root, &p).is_err());
                    let mut short = p.clone();
                    short.pop();
                    assert!(matches!(
                        verify_consistency(old, size, &old_root, &root, &short),
                        Err(MerkleError::ProofLength { .. })
                    ));
                }
            }
        }
    }

    #[test]
    fn a_frontier_rebuilt_from_its_parts_goes_on_growing_the_same_tree() {
        let mut t = tree(45);
        let f = Frontier::from_parts(45, t.frontier().hashes().to_vec()).unwrap();
        let mut g = f.clone();
        for i in 45..100u64 {
            t.push(&i.to_be_bytes());
            g.push(leaf_hash(&i.to_be_bytes()), |_, _, _| ());
        }
        assert_eq!(g.root(), t.root_at(100).unwrap());
        assert!(matches!(Frontier::from_parts(45, vec![[0; 32]]), Err(MerkleError::BadFrontier { .. })));
    }

    #[test]
    fn proofs_outside_the_tree_are_refused_by_name() {
        let t = tree(5);
        assert!(matches!(inclusion_proof(&t, 5, 5), Err(MerkleError::IndexOutOfRange { .. })));
        assert!(matches!(consistency_proof(&t, 6, 5), Err(MerkleError::SizesOutOfOrder { .. })));
        assert!(matches!(consistency_proof(&t, 3, 9), Err(MerkleError::MissingNode { .. })));
    }
}

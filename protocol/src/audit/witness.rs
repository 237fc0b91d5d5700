//! Witnessing peers' logs: a node cosigns a peer's checkpoint only once it is consistent with
//! the newest one it cosigned before, and raises an alarm — with both checkpoints as evidence —
//! when a log shows it a smaller tree than before (a rollback), two different trees of one size
//! (a split view), or a tree its proof cannot join to the one held (an inconsistency).
//! Checkpoints a witness cosigned are passed on to its other peers, so that a log cannot show
//! different histories to different peers: each witness compares what it is told with what it
//! holds. Sans-IO: the shell carries the frames and keeps what is held durable.

use std::collections::HashMap;

use super::merkle::{self, Hash};
use super::note::{NoteSignature, SignedCheckpoint, cosign, key_name};
use crate::identity::{IdentityKey, NodeId};

/// The most logs one witness follows.
pub const MAX_LOGS: usize = 1024;

/// What kind of misbehaviour a witness saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmKind {
    /// The log showed a smaller tree, or an older generation, than one already cosigned.
    Rollback,
    /// Two checkpoints of one size with different roots.
    SplitView,
    /// A newer checkpoint whose consistency proof does not join it to the one held.
    Inconsistent,
}

impl AlarmKind {
    /// Its name, as in the journal, metrics and the alert hook.
    pub fn name(self) -> &'static str {
        match self {
            AlarmKind::Rollback => "rollback",
            AlarmKind::SplitView => "split_view",
            AlarmKind::Inconsistent => "inconsistent",
        }
    }
}

/// Evidence that a log misbehaved: the checkpoint held and the one presented, both signed by
/// the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alarm {
    /// The log's node.
    pub node: NodeId,
    /// What was seen.
    pub kind: AlarmKind,
    /// The checkpoint held (note text).
    pub held: String,
    /// The checkpoint presented (note text).
    pub presented: String,
    /// Sizes and roots, in words.
    pub detail: String,
}

/// What to do with a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Consistent with what was held and now held: cosign it (this cosignature), keep it
    /// durably, send the cosignature to the log and pass the checkpoint on.
    Cosign(NoteSignature),
    /// The very checkpoint held, shown again by the log: only the cosignature goes back
    /// (nothing new to keep or pass on).
    CosignAgain(NoteSignature),
    /// Taken as the first checkpoint seen of this log from a third party (nothing to check it
    /// against, nothing to cosign): keep it.
    Noted,
    /// Nothing new.
    Same,
    /// A consistency proof between these sizes is needed (ask the log when connected to it).
    NeedProof {
        /// The smaller size.
        from: u64,
        /// The larger size.
        to: u64,
    },
    /// The log misbehaved.
    Alarm(Alarm),
    /// Not taken: too many logs followed already.
    Full,
}

struct Held {
    checkpoint: SignedCheckpoint,
    text: String,
}

/// One witness's view of the logs it follows.
#[derive(Default)]
pub struct Witness {
    held: HashMap<NodeId, Held>,
    /// One checkpoint per log waiting for its proof.
    pending: HashMap<NodeId, SignedCheckpoint>,
}

impl std::fmt::Debug for Witness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Witness")
            .field("logs", &self.held.len())
            .field("pending", &self.pending.len())
            .finish()
    }
}

fn size_root(c: &SignedCheckpoint) -> (u64, Hash) {
    (c.checkpoint.size, c.checkpoint.root)
}

impl Witness {
    /// An empty witness.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes again what was held before a restart (checkpoint texts this node cosigned).
    pub fn restore(&mut self, text: &str) {
        if let Ok(c) = SignedCheckpoint::open(text) {
            if self.held.len() < MAX_LOGS {
                self.held.insert(c.node, Held { checkpoint: c, text: text.to_string() });
            }
        }
    }

    /// The checkpoints held, per log: node, generation, size, note text.
    pub fn held(&self) -> impl Iterator<Item = (&NodeId, u64, u64, &str)> {
        self.held
            .iter()
            .map(|(n, h)| (n, h.checkpoint.generation, h.checkpoint.checkpoint.size, h.text.as_str()))
    }

    /// The held checkpoint of `node`'s log.
    pub fn held_of(&self, node: &NodeId) -> Option<&SignedCheckpoint> {
        self.held.get(node).map(|h| &h.checkpoint)
    }

    fn alarm(&self, kind: AlarmKind, held: &Held, presented: &SignedCheckpoint, detail: String) -> Verdict {
        Verdict::Alarm(Alarm {
            node: presented.node,
            kind,
            held: held.text.clone(),
            presented: strip(presented),
            detail,
        })
    }

    fn take(&mut self, key: &IdentityKey, c: SignedCheckpoint, now_secs: u64) -> Verdict {
        let text = strip(&c);
        let sig = match cosign(key, &key_name(&key.node_id()), now_secs, &c.note.text) {
            Ok(s) => s,
            Err(_) => return Verdict::Same,
        };
        self.pending.remove(&c.node);
        self.held.insert(c.node, Held { checkpoint: c, text });
        Verdict::Cosign(sig)
    }

    /// Judges a checkpoint of `c.node`'s log, presented by the log itself (`direct`) or passed
    /// on by another witness, with a consistency proof from `proof.0` if one came with it.
    /// `key` cosigns; `now_secs` is the cosignature's time.
    pub fn check(
        &mut self,
        key: &IdentityKey,
        c: SignedCheckpoint,
        direct: bool,
        proof: Option<(u64, &[Hash])>,
        now_secs: u64,
    ) -> Verdict {
        if c.node == key.node_id() {
            return Verdict::Same;
        }
        let Some(held) = self.held.get(&c.node) else {
            if self.held.len() >= MAX_LOGS {
                return Verdict::Full;
            }
            if direct {
                return self.take(key, c, now_secs);
            }
            let text = strip(&c);
            self.held.insert(c.node, Held { checkpoint: c, text });
            return Verdict::Noted;
        };
        let (hs, hr) = size_root(&held.checkpoint);
        let (ps, pr) = size_root(&c);
        let (hg, pg) = (held.checkpoint.generation, c.generation);
        if pg < hg {
            // Passed on by a third party, an old generation's checkpoint is history, not a claim.
            if !direct {
                return Verdict::Same;
            }
            let detail = format!("generation {pg} shown after generation {hg} was cosigned");
            return self.alarm(AlarmKind::Rollback, held, &c, detail);
        }
        if pg > hg {
            // A new generation after a repair starts afresh; its first entry names the old one.
            // Passed on by a third party, it waits until the log shows it itself.
            return if direct { self.take(key, c, now_secs) } else { Verdict::Same };
        }
        if ps == hs {
            if pr != hr {
                let detail = format!("two roots for size {ps}");
                return self.alarm(AlarmKind::SplitView, held, &c, detail);
            }
            if !direct {
                return Verdict::Same;
            }
            return match cosign(key, &key_name(&key.node_id()), now_secs, &c.note.text) {
                Ok(sig) => Verdict::CosignAgain(sig),
                Err(_) => Verdict::Same,
            };
        }
        if ps < hs {
            if direct {
                let detail = format!("size {ps} shown after size {hs} was cosigned");
                return self.alarm(AlarmKind::Rollback, held, &c, detail);
            }
            // An older checkpoint passed on: it must be a prefix of the one held. It never
            // displaces one the log showed itself.
            if self.pending.get(&c.node).is_some_and(|p| p.checkpoint.size > hs) {
                return Verdict::Same;
            }
            self.pending.insert(c.node, c);
            return Verdict::NeedProof { from: ps, to: hs };
        }
        if !direct {
            // A newer checkpoint passed on waits until the log shows it itself.
            return Verdict::Same;
        }
        match proof {
            Some((from, p)) if from == hs => match merkle::verify_consistency(hs, ps, &hr, &pr, p) {
                Ok(()) => self.take(key, c, now_secs),
                Err(e) => {
                    let detail = format!("size {ps} does not extend size {hs}: {e}");
                    self.alarm(AlarmKind::Inconsistent, held, &c, detail)
                }
            },
            _ => {
                self.pending.insert(c.node, c);
                Verdict::NeedProof { from: hs, to: ps }
            }
        }
    }

    /// Takes a consistency proof the log sent for its pending checkpoint.
    pub fn proved(
        &mut self,
        key: &IdentityKey,
        node: &NodeId,
        from: u64,
        to: u64,
        proof: &[Hash],
        now_secs: u64,
    ) -> Verdict {
        let (Some(held), Some(pending)) = (self.held.get(node), self.pending.get(node)) else {
            return Verdict::Same;
        };
        let (hs, hr) = size_root(&held.checkpoint);
        let (ps, pr) = size_root(pending);
        let (old, new, old_root, new_root) = if ps > hs { (hs, ps, hr, pr) } else { (ps, hs, pr, hr) };
        if (from, to) != (old, new) || held.checkpoint.generation != pending.generation {
            return Verdict::Same;
        }
        match merkle::verify_consistency(old, new, &old_root, &new_root, proof) {
            Ok(()) if ps > hs => {
                let c = pending.clone();
                self.take(key, c, now_secs)
            }
            Ok(()) => {
                self.pending.remove(node);
                Verdict::Same
            }
            Err(e) => {
                let c = pending.clone();
                let held = self.held.get(node).map_or_else(String::new, |h| h.text.clone());
                self.pending.remove(node);
                Verdict::Alarm(Alarm {
                    node: *node,
                    kind: AlarmKind::Inconsistent,
                    held,
                    presented: strip(&c),
                    detail: format!("sizes {old} and {new} are not one history: {e}"),
                })
            }
        }
    }
}

/// The checkpoint with the log's own signature only (cosignatures of others are not evidence
/// of the log's claim).
fn strip(c: &SignedCheckpoint) -> String {
    let mut n = c.note.clone();
    let own: Vec<NoteSignature> =
        n.signatures.iter().filter(|s| !c.cosignature_lines().any(|o| o == *s)).cloned().collect();
    n.signatures = own;
    n.to_text()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::merkle::{MemoryTree, consistency_proof};
    use crate::audit::note::{Checkpoint, origin};

    fn key(b: u8) -> IdentityKey {
        IdentityKey::from_seed(&[b; 32])
    }

    fn cp(log: &IdentityKey, t: &MemoryTree, size: u64, generation: u64) -> SignedCheckpoint {
        let c = Checkpoint {
            origin: origin(&log.node_id(), generation),
            size,
            root: t.root_at(size).unwrap(),
            extensions: vec![],
        };
        SignedCheckpoint::sign(log, c).unwrap()
    }

    fn tree(n: u64, salt: u8) -> MemoryTree {
        let mut t = MemoryTree::new();
        for i in 0..n {
            t.push(&[salt, i as u8]);
        }
        t
    }

    #[test]
    fn a_witness_cosigns_only_what_extends_what_it_cosigned() {
        let (log, w) = (key(1), key(2));
        let t = tree(20, 0);
        let mut wit = Witness::new();
        assert!(matches!(wit.check(&w, cp(&log, &t, 5, 0), true, None, 1), Verdict::Cosign(_)));
        // Newer without a proof: asked for one; with the wrong one: an alarm; with the right one: cosigned.
        assert_eq!(wit.check(&w, cp(&log, &t, 9, 0), true, None, 2), Verdict::NeedProof { from: 5, to: 9 });
        let p = consistency_proof(&t, 5, 9).unwrap();
        assert!(matches!(wit.proved(&w, &log.node_id(), 5, 9, &p, 3), Verdict::Cosign(_)));
        assert_eq!(wit.held_of(&log.node_id()).unwrap().checkpoint.size, 9);
        let other = tree(20, 1);
        let bad = consistency_proof(&other, 9, 14).unwrap();
        match wit.check(&w, cp(&log, &t, 14, 0), true, Some((9, &bad)), 4) {
            Verdict::Alarm(a) => assert_eq!(a.kind, AlarmKind::Inconsistent),
            v => panic!("{v:?}"),
        }
        assert_eq!(wit.held_of(&log.node_id()).unwrap().checkpoint.size, 9, "an alarm changes nothing held");
    }

    #[test]
    fn a_smaller_tree_or_older_generation_from_the_log_is_a_rollback() {
        let (log, w) = (key(1), key(2));
        let t = tree(20, 0);
        let mut wit = Witness::new();
        wit.check(&w, cp(&log, &t, 12, 1), true, None, 1);
        for (c, why) in [(cp(&log, &t, 8, 1), "smaller"), (cp(&log, &t, 15, 0), "older generation")] {
            match wit.check(&w, c, true, None, 2) {
                Verdict::Alarm(a) => {
                    assert_eq!(a.kind, AlarmKind::Rollback, "{why}");
                    assert!(
                        SignedCheckpoint::open(&a.held).is_ok()
                            && SignedCheckpoint::open(&a.presented).is_ok()
                    );
                }
                v => panic!("{why}: {v:?}"),
            }
        }
    }

    #[test]
    fn two_trees_of_one_size_are_a_split_view_whoever_passes_them_on() {
        let (log, w) = (key(1), key(2));
        let mut wit = Witness::new();
        assert!(matches!(wit.check(&w, cp(&log, &tree(8, 0), 8, 0), false, None, 1), Verdict::Noted));
        match wit.check(&w, cp(&log, &tree(8, 1), 8, 0), true, None, 2) {
            Verdict::Alarm(a) => assert_eq!(a.kind, AlarmKind::SplitView),
            v => panic!("{v:?}"),
        }
        // An older checkpoint passed on is checked by proof: one that is no prefix is caught.
        let t = tree(20, 0);
        let mut wit = Witness::new();
        wit.check(&w, cp(&log, &t, 16, 0), true, None, 1);
        let forked = tree(20, 3);
        assert_eq!(
            wit.check(&w, cp(&log, &forked, 6, 0), false, None, 2),
            Verdict::NeedProof { from: 6, to: 16 }
        );
        let p = consistency_proof(&t, 6, 16).unwrap();
        assert!(matches!(wit.proved(&w, &log.node_id(), 6, 16, &p, 3), Verdict::Alarm(_)));
    }

    #[test]
    fn what_third_parties_pass_on_raises_no_rollback_and_cosigns_nothing() {
        let (log, w) = (key(1), key(2));
        let t = tree(20, 0);
        let mut wit = Witness::new();
        wit.check(&w, cp(&log, &t, 10, 1), true, None, 1);
        // An old generation's checkpoint replayed, or a newer one passed on: nothing happens.
        assert_eq!(wit.check(&w, cp(&log, &t, 15, 0), false, None, 2), Verdict::Same);
        assert_eq!(wit.check(&w, cp(&log, &t, 15, 1), false, None, 2), Verdict::Same);
        assert_eq!(wit.held_of(&log.node_id()).unwrap().checkpoint.size, 10);
        // The log showing the same checkpoint again gets its cosignature, nothing more.
        assert!(matches!(wit.check(&w, cp(&log, &t, 10, 1), true, None, 3), Verdict::CosignAgain(_)));
    }

    #[test]
    fn a_witness_follows_a_bounded_number_of_logs() {
        let w = key(2);
        let mut wit = Witness::new();
        let t = tree(1, 0);
        for i in 0..MAX_LOGS as u32 {
            let mut seed = [7u8; 32];
            seed[..4].copy_from_slice(&i.to_be_bytes());
            let log = IdentityKey::from_seed(&seed);
            assert!(!matches!(wit.check(&w, cp(&log, &t, 1, 0), false, None, 1), Verdict::Full));
        }
        assert_eq!(wit.check(&w, cp(&key(1), &t, 1, 0), true, None, 1), Verdict::Full);
    }
}

//! The audit log on the core thread: signing checkpoints (periodically and on demand, each
//! recomputed from the last before it is signed), showing them to peers with a consistency
//! proof, collecting their cosignatures, and witnessing the peers' logs in turn — cosigning
//! only what extends what was cosigned before, passing on what was cosigned, and raising an
//! alarm (log, metric, `godwit status`, the alert hook, the journal with both checkpoints) on a
//! rollback, a split view or an inconsistent proof.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use godwit_admin_api::audit::{
    AuditAlarmView, AuditAnswer, AuditEntry, AuditRequest, GenerationCheck, WitnessedLog,
};
use godwit_protocol::audit::Event;
use godwit_protocol::audit::merkle::{self, Hash};
use godwit_protocol::audit::note::{self, NoteSignature, SignedCheckpoint};
use godwit_protocol::audit::witness::{Alarm, AlarmKind, Verdict, Witness};
use godwit_protocol::identity::NodeId;
use godwit_protocol::wire::AuditFrame;
use serde_bytes::ByteBuf;
use tracing::{debug, info, warn};

use super::core::Core;
use super::{NodeEvent, now};
use crate::store::CheckpointRec;

/// Cosignatures kept with one checkpoint (C2SP asks every verifier to take at least 16).
const MAX_COSIGNATURES: usize = 16;
/// Alarms kept for `godwit status` and `godwit audit witnesses`.
const ALARMS_KEPT: usize = 32;
/// Witnessing frames taken from one peer per window: an honest peer sends a handful per
/// checkpoint interval (each costs a signature check or a proof); more are ignored.
const FRAMES_PER_WINDOW: u32 = 256;
/// An alarm of one kind about one log is journalled, told to the hook and shown again at most
/// this often (it is counted in the metric every time).
const ALARM_REPEAT: std::time::Duration = std::time::Duration::from_secs(3600);
/// Logs whose alarms are remembered at most.
const ALARMS_REMEMBERED: usize = 4096;
/// The window of that budget.
const WINDOW: std::time::Duration = std::time::Duration::from_secs(10);

/// The audit log's state on the core thread.
#[derive(Debug, Default)]
pub(super) struct AuditState {
    witness: Witness,
    /// Per peer: the newest size of this node's current generation it cosigned.
    cosigned: HashMap<NodeId, u64>,
    /// When the last checkpoint was signed (or tried).
    last_signed: Option<Instant>,
    /// Why the log is not signed any more, once found damaged.
    damaged: Option<String>,
    alarms: VecDeque<Alarm>,
    /// When each log's alarm of each kind was last journalled and told: at most once per
    /// `ALARM_REPEAT`, so that a hostile log cannot grow the journal with alarms.
    raised: HashMap<(NodeId, AlarmKind), Instant>,
    /// Why keeping audit state failed: the node stops (as for any failed commit).
    pub(super) storage_failed: Option<String>,
    /// Per peer: the start of its budget window and the frames taken in it.
    budget: HashMap<NodeId, (Instant, u32)>,
}

impl AuditState {
    /// The state, with the checkpoints of peers' logs this node cosigned before.
    pub(super) fn restore(witnessed: &[(NodeId, String)]) -> Self {
        let mut s = Self::default();
        for (_, text) in witnessed {
            s.witness.restore(text);
        }
        s
    }
}

fn hx(h: &Hash) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

fn bufs(v: &[Hash]) -> Vec<ByteBuf> {
    v.iter().map(|h| ByteBuf::from(h.to_vec())).collect()
}

fn unbufs(v: &[ByteBuf]) -> Option<Vec<Hash>> {
    v.iter().map(|b| b.as_slice().try_into().ok()).collect()
}

/// `verify`'s reports as the admin API's answer.
pub(super) fn verified(r: Vec<crate::store::GenerationReport>) -> AuditAnswer {
    AuditAnswer::Verified(
        r.into_iter()
            .map(|g| GenerationCheck {
                generation: g.generation,
                entries: g.entries,
                size: g.size,
                checkpoints: g.checkpoints,
                cosignatures: g.cosignatures,
                first_bad: g.first_bad,
                bad_checkpoints: g.bad_checkpoints,
            })
            .collect(),
    )
}

/// What verifying the log off the core thread needs: a view of it, this node, its peers.
#[derive(Debug)]
pub(super) struct VerifyJob {
    pub(super) reader: crate::store::AuditReader,
    pub(super) me: NodeId,
    pub(super) witnesses: Vec<NodeId>,
}

fn now_secs() -> u64 {
    now().as_millis() / 1000
}

impl Core {
    /// Once a second: signs a checkpoint when the interval has passed and entries were added,
    /// and shows the newest to every peer that has not cosigned it.
    pub(super) fn check_audit(&mut self) {
        let every = std::time::Duration::from_millis(self.shared.limits.checkpoint_every_ms);
        if self.audit.last_signed.is_some_and(|t| t.elapsed() < every) {
            return;
        }
        self.audit.last_signed = Some(Instant::now());
        if let Err(e) = self.sign_checkpoint() {
            debug!("no checkpoint signed: {e}");
        }
        self.show_checkpoint();
    }

    /// Signs a checkpoint of the current generation if entries were added since the last.
    /// Returns the newest checkpoint's size.
    fn sign_checkpoint(&mut self) -> Result<u64, String> {
        if let Some(d) = &self.audit.damaged {
            return Err(format!("the audit log is damaged ({d}): checkpoints are not signed"));
        }
        let store = self.relay.store();
        let (generation, size, _) = store.audit_head();
        let last = store.last_checkpoint(generation).map_err(|e| e.to_string())?;
        if last.as_ref().is_some_and(|(at, _)| *at == size) || size == 0 {
            return Ok(size);
        }
        match store.next_checkpoint(&self.key.node_id()) {
            Ok((checkpoint, frontier)) => {
                let signed = SignedCheckpoint::sign(&self.key, checkpoint).map_err(|e| e.to_string())?;
                let rec = CheckpointRec {
                    note: signed.note.to_text(),
                    frontier: bufs(&frontier),
                    at: now().as_millis(),
                };
                if let Err(e) = store.put_checkpoint(generation, size, &rec) {
                    // Never show a checkpoint that may not survive a crash.
                    self.audit.storage_failed = Some(format!("cannot keep a signed checkpoint: {e}"));
                    return Err(e.to_string());
                }
                debug!(generation, size, "audit checkpoint signed");
                Ok(size)
            }
            Err(Ok(reason)) => {
                warn!(
                    "the audit log is damaged: {reason}; no checkpoint is signed until a new generation starts"
                );
                metrics::counter!("godwit_audit_damaged_total", "node" => self.label.clone()).increment(1);
                self.audit.damaged = Some(reason.clone());
                self.note_audit_warnings();
                Err(reason)
            }
            Err(Err(e)) => Err(e.to_string()),
        }
    }

    /// Shows the newest checkpoint to each connected peer that has not cosigned it, with a
    /// consistency proof from the size it last cosigned.
    fn show_checkpoint(&mut self) {
        let store = self.relay.store();
        let (generation, _, _) = store.audit_head();
        let Ok(Some((size, rec))) = store.last_checkpoint(generation) else { return };
        let peers: Vec<NodeId> = self.conns.keys().copied().collect();
        let mut frames = Vec::new();
        for peer in peers {
            let from = self.audit.cosigned.get(&peer).copied().unwrap_or(0);
            if from >= size {
                continue;
            }
            let proof = if from == 0 {
                Vec::new()
            } else {
                match store.audit_consistency(generation, from, size) {
                    Ok(p) => p,
                    // No proof: shown without one, the witness asks for it.
                    Err(_) => {
                        frames.push((
                            peer,
                            AuditFrame::Checkpoint { note: rec.note.clone(), from: 0, proof: vec![] },
                        ));
                        continue;
                    }
                }
            };
            frames.push((peer, AuditFrame::Checkpoint { note: rec.note.clone(), from, proof: bufs(&proof) }));
        }
        for (peer, f) in frames {
            self.relay.send_audit(peer, f);
        }
    }

    /// A peer's witnessing frame.
    pub(super) fn handle_audit(&mut self, from: NodeId, frame: AuditFrame) {
        let me = self.key.node_id();
        if self.audit.budget.len() > 4 * self.conns.len() + 64 {
            // Bounded by the peers: entries of peers long gone are dropped.
            let conns = &self.conns;
            self.audit.budget.retain(|p, _| conns.contains_key(p));
        }
        let (start, n) = self.audit.budget.entry(from).or_insert((Instant::now(), 0));
        if start.elapsed() > WINDOW {
            (*start, *n) = (Instant::now(), 0);
        }
        *n += 1;
        if *n > FRAMES_PER_WINDOW {
            if *n == FRAMES_PER_WINDOW + 1 {
                warn!(peer = %from.short(), "over its budget of witnessing frames: ignored for now");
            }
            return;
        }
        match frame {
            AuditFrame::Checkpoint { note, from: pfrom, proof } => {
                let Ok(c) = SignedCheckpoint::open(&note) else {
                    debug!(peer = %from.short(), "a checkpoint that does not open was ignored");
                    return;
                };
                // A log shows only itself; what others cosigned comes as `witnessed`.
                if c.node != from {
                    return;
                }
                let proof = unbufs(&proof).unwrap_or_default();
                let v =
                    self.audit.witness.check(&self.key, c.clone(), true, Some((pfrom, &proof)), now_secs());
                self.act(from, c, v);
            }
            AuditFrame::Witnessed { note } => {
                let Ok(c) = SignedCheckpoint::open(&note) else { return };
                if c.node == me || c.node == from {
                    return;
                }
                // Only logs of nodes this node knows (connected, or in its directory of
                // CA-checked cards): made-up logs would fill the witness.
                let known = self.conns.contains_key(&c.node)
                    || self.shared.directory.lock().is_ok_and(|d| d.get(&c.node).is_some());
                if !known {
                    return;
                }
                let v = self.audit.witness.check(&self.key, c.clone(), false, None, now_secs());
                self.act(from, c, v);
            }
            AuditFrame::Prove { origin, from: a, to: b } => {
                let store = self.relay.store();
                let (generation, _, _) = store.audit_head();
                if origin != note::origin(&me, generation) {
                    return;
                }
                if let Ok(proof) = store.audit_consistency(generation, a, b) {
                    let f = AuditFrame::Proof { origin, from: a, to: b, proof: bufs(&proof) };
                    self.relay.send_audit(from, f);
                }
            }
            AuditFrame::Proof { origin, from: a, to: b, proof } => {
                let Ok((node, _)) = note::parse_origin(&origin) else { return };
                if node != from {
                    return;
                }
                let proof = unbufs(&proof).unwrap_or_default();
                let Some(pending) = self.audit.witness.held_of(&node).cloned() else { return };
                let v = self.audit.witness.proved(&self.key, &node, a, b, &proof, now_secs());
                let c = match &v {
                    Verdict::Cosign(_) => self.audit.witness.held_of(&node).cloned().unwrap_or(pending),
                    _ => pending,
                };
                self.act(from, c, v);
            }
            AuditFrame::Cosigned { origin, size, line } => self.take_cosignature(from, &origin, size, &line),
        }
    }

    /// A witness's cosignature of this node's checkpoint: checked against the witness that sent
    /// it and the checkpoint of that size, then kept with it.
    fn take_cosignature(&mut self, witness: NodeId, origin: &str, size: u64, line: &str) {
        let me = self.key.node_id();
        let store = self.relay.store();
        let (generation, _, _) = store.audit_head();
        if origin != note::origin(&me, generation) {
            return;
        }
        let Ok(Some(mut rec)) = store.checkpoint_at(generation, size) else { return };
        let Ok(sig) = NoteSignature::parse_line(line.trim_end_matches('\n')) else { return };
        let Ok(mut signed) = SignedCheckpoint::open(&rec.note) else { return };
        if note::cosignature_time(&sig, &note::key_name(&witness), &witness, &signed.note.text).is_none() {
            warn!(peer = %witness.short(), size, "a cosignature that does not verify was refused");
            return;
        }
        let before = signed.note.signatures.len();
        // At most `MAX_COSIGNATURES` are kept with a checkpoint: a note must stay within the
        // signed-note limits for every reader (and a hub has more peers than a note has room).
        if before <= MAX_COSIGNATURES {
            signed.note.add(sig);
        }
        if signed.note.signatures.len() > before {
            rec.note = signed.note.to_text();
            if let Err(e) = store.put_checkpoint(generation, size, &rec) {
                self.audit.storage_failed = Some(format!("cannot keep a cosignature: {e}"));
                return;
            }
        }
        let had = self.audit.cosigned.insert(witness, size);
        if had.is_none_or(|h| h < size) {
            debug!(witness = %witness.short(), size, "checkpoint cosigned");
        }
        let _ = self.events.send(NodeEvent::Cosigned { witness, size });
    }

    fn act(&mut self, peer: NodeId, c: SignedCheckpoint, v: Verdict) {
        match v {
            Verdict::Cosign(sig) => {
                let held = self.audit.witness.held(); // the new one is held now
                let text = held.filter(|(n, ..)| **n == c.node).map(|(.., t)| t.to_string()).next();
                if let Some(text) = text {
                    if let Err(e) = self.relay.store().put_witnessed(&c.node, &text) {
                        self.audit.storage_failed = Some(format!("cannot keep a witnessed checkpoint: {e}"));
                        return;
                    }
                }
                let (origin, size) = (c.checkpoint.origin.clone(), c.checkpoint.size);
                self.relay.send_audit(c.node, AuditFrame::Cosigned { origin, size, line: sig.line() });
                // Passed on with this cosignature, so that the other peers compare it with
                // what the log showed them.
                let mut n = c.note.clone();
                n.signatures.retain(|s| !c.cosignature_lines().any(|o| o == s));
                n.add(sig);
                let note = n.to_text();
                let others: Vec<NodeId> = self.conns.keys().filter(|p| **p != c.node).copied().collect();
                for p in others {
                    self.relay.send_audit(p, AuditFrame::Witnessed { note: note.clone() });
                }
            }
            Verdict::CosignAgain(sig) => {
                let (origin, size) = (c.checkpoint.origin.clone(), c.checkpoint.size);
                self.relay.send_audit(c.node, AuditFrame::Cosigned { origin, size, line: sig.line() });
            }
            Verdict::NeedProof { from, to } => {
                let f = AuditFrame::Prove { origin: c.checkpoint.origin.clone(), from, to };
                self.relay.send_audit(c.node, f);
            }
            Verdict::Alarm(a) => self.raise(peer, a),
            Verdict::Noted | Verdict::Same | Verdict::Full => {}
        }
    }

    fn raise(&mut self, peer: NodeId, a: Alarm) {
        metrics::counter!("godwit_audit_alarms_total", "node" => self.label.clone(), "kind" => a.kind.name())
            .increment(1);
        let key = (a.node, a.kind);
        if self.audit.raised.get(&key).is_some_and(|t| t.elapsed() < ALARM_REPEAT) {
            debug!(log = %a.node.short(), kind = a.kind.name(), "audit alarm repeated: {}", a.detail);
            return;
        }
        if self.audit.raised.len() >= ALARMS_REMEMBERED {
            self.audit.raised.retain(|_, t| t.elapsed() < ALARM_REPEAT);
            if self.audit.raised.len() >= ALARMS_REMEMBERED {
                return;
            }
        }
        self.audit.raised.insert(key, Instant::now());
        warn!(log = %a.node.short(), via = %peer.short(), kind = a.kind.name(), "audit log misbehaviour: {}", a.detail);
        self.relay.record_event(Event::AuditAlarm {
            node: a.node,
            kind: a.kind,
            detail: a.detail.clone(),
            held: a.held.clone(),
            presented: a.presented.clone(),
        });
        let _ = self.events.send(NodeEvent::AuditAlarm { node: a.node, kind: a.kind });
        if self.audit.alarms.len() == ALARMS_KEPT {
            self.audit.alarms.pop_front();
        }
        self.audit.alarms.push_back(a);
        self.note_audit_warnings();
    }

    fn note_audit_warnings(&self) {
        let mut lines: Vec<String> = self
            .audit
            .alarms
            .iter()
            .rev()
            .take(10)
            .map(|a| {
                format!(
                    "audit log of {} shows a {}: {} (godwit audit witnesses)",
                    a.node.short(),
                    a.kind.name().replace('_', " "),
                    a.detail
                )
            })
            .collect();
        if let Some(d) = &self.audit.damaged {
            lines.push(format!(
                "this node's audit log is damaged ({d}): no checkpoint is signed; after repair, godwit audit new-generation"
            ));
        }
        if let Ok(mut w) = self.shared.audit_warnings.lock() {
            *w = lines;
        }
    }

    /// An operator's `godwit audit` request.
    pub(super) fn audit_query(&mut self, uid: u32, req: AuditRequest) -> Result<AuditAnswer, String> {
        let failed = |e: crate::store::StoreError| format!("cannot read the audit log: {e}");
        let (current, _, _) = self.relay.store().audit_head();
        let entry =
            |generation: u64, (index, bytes, e): (u64, Vec<u8>, crate::store::JournalEntry)| AuditEntry {
                generation,
                index,
                seq: e.seq,
                at: e.at,
                event: format!("{:?}", e.event),
                leaf_hex: bytes.iter().map(|b| format!("{b:02x}")).collect(),
            };
        match req {
            AuditRequest::Tail { last } => {
                let store = self.relay.store();
                let size = store.generation_size(current).map_err(failed)?;
                let from = size.saturating_sub(u64::from(last.min(10_000)));
                let v = store.audit_entries(current, from, last as usize).map_err(failed)?;
                Ok(AuditAnswer::Entries(v.into_iter().map(|e| entry(current, e)).collect()))
            }
            AuditRequest::Entries { generation, from, limit } => {
                let g = generation.unwrap_or(current);
                let v =
                    self.relay.store().audit_entries(g, from, limit.min(10_000) as usize).map_err(failed)?;
                Ok(AuditAnswer::Entries(v.into_iter().map(|e| entry(g, e)).collect()))
            }
            // Taken before it gets here: verified on a read-only view off the core thread.
            AuditRequest::Verify => Err("verify runs on a read-only view of the log, not here".into()),
            AuditRequest::ProveInclusion { generation, index, size } => {
                let g = generation.unwrap_or(current);
                let store = self.relay.store();
                let size = match size {
                    Some(s) => s,
                    None => store
                        .last_checkpoint(g)
                        .map_err(failed)?
                        .map(|(s, _)| s)
                        .ok_or("no checkpoint signed yet: give --size")?,
                };
                let proof = store.audit_inclusion(g, index, size).map_err(|e| e.to_string())?;
                let (bytes, _) = store.audit_entry(g, index).map_err(failed)?.ok_or("no such entry")?;
                let root = store.audit_root(g, size).map_err(failed)?;
                let checkpoint = store.checkpoint_at(g, size).map_err(failed)?.map(|r| r.note);
                Ok(AuditAnswer::Inclusion {
                    generation: g,
                    index,
                    size,
                    leaf_hash: hx(&merkle::leaf_hash(&bytes)),
                    proof: proof.iter().map(hx).collect(),
                    root: hx(&root),
                    checkpoint,
                })
            }
            AuditRequest::ProveConsistency { generation, old, new } => {
                let g = generation.unwrap_or(current);
                let store = self.relay.store();
                let proof = store.audit_consistency(g, old, new).map_err(|e| e.to_string())?;
                let roots = (
                    hx(&store.audit_root(g, old).map_err(failed)?),
                    hx(&store.audit_root(g, new).map_err(failed)?),
                );
                Ok(AuditAnswer::Consistency {
                    generation: g,
                    old,
                    new,
                    proof: proof.iter().map(hx).collect(),
                    roots,
                })
            }
            AuditRequest::Checkpoint => {
                self.sign_checkpoint()?;
                self.show_checkpoint();
                self.newest_checkpoint()
            }
            AuditRequest::Checkpoints { generation } => {
                let g = generation.unwrap_or(current);
                let v = self.relay.store().checkpoints(g).map_err(failed)?;
                Ok(AuditAnswer::Checkpoints(v.into_iter().map(|(_, r)| r.note).collect()))
            }
            AuditRequest::Witnesses => {
                let dir = self.shared.directory.lock().ok();
                let name = |n: &NodeId| {
                    dir.as_ref()
                        .and_then(|d| d.get(n).map(|e| e.cert.administration.clone()))
                        .unwrap_or_default()
                };
                let mut witnessing: Vec<WitnessedLog> = self
                    .audit
                    .witness
                    .held()
                    .map(|(n, generation, size, _)| WitnessedLog {
                        node: *n,
                        name: name(n),
                        generation,
                        size,
                    })
                    .collect();
                witnessing.sort_by_key(|w| w.node);
                let mut cosigned_by: Vec<(NodeId, u64)> =
                    self.audit.cosigned.iter().map(|(n, s)| (*n, *s)).collect();
                cosigned_by.sort();
                let alarms = self
                    .audit
                    .alarms
                    .iter()
                    .map(|a| AuditAlarmView {
                        node: a.node,
                        kind: a.kind.name().into(),
                        detail: a.detail.clone(),
                        held: a.held.clone(),
                        presented: a.presented.clone(),
                    })
                    .collect();
                Ok(AuditAnswer::Witnesses {
                    cosigned_by,
                    witnessing,
                    alarms,
                    damaged: self.audit.damaged.clone(),
                })
            }
            AuditRequest::NewGeneration => {
                let store = self.relay.store();
                let (size, checkpoint) = match store.last_checkpoint(current).map_err(failed)? {
                    Some((s, r)) => (s, r.note),
                    None => (0, String::new()),
                };
                let first = Event::Generation { previous: current, size, checkpoint };
                let g = self.relay.store_mut().start_generation(first).map_err(failed)?;
                info!(generation = g, "a new generation of the audit log started");
                self.relay.record_admin(uid, format!("audit new-generation {g}"));
                self.audit.damaged = None;
                self.audit.cosigned.clear();
                self.audit.last_signed = None;
                self.note_audit_warnings();
                Ok(AuditAnswer::Generation(g))
            }
        }
    }

    fn newest_checkpoint(&self) -> Result<AuditAnswer, String> {
        let store = self.relay.store();
        let (generation, _, _) = store.audit_head();
        let required = self.shared.limits.audit_cosignatures;
        let all = store.checkpoints(generation).map_err(|e| e.to_string())?;
        let Some((_, newest)) = all.last() else {
            return Err("no checkpoint signed yet: the log is empty".into());
        };
        let claimed = |r: &CheckpointRec| -> Vec<NodeId> {
            SignedCheckpoint::open(&r.note)
                .map(|s| {
                    let c = s.claimed_cosigners();
                    s.cosigners(c.iter()).into_iter().map(|(n, _)| n).collect()
                })
                .unwrap_or_default()
        };
        let witnessed = all
            .iter()
            .rev()
            .find(|(_, r)| claimed(r).len() >= required as usize)
            .map(|(_, r)| r.note.clone());
        Ok(AuditAnswer::Checkpoint {
            note: newest.note.clone(),
            cosigners: claimed(newest),
            required,
            witnessed,
        })
    }
}

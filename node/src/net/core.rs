//! The relay core thread: owns the relay and the store, handles a batch of inputs, then carries
//! out the relay's outputs — among them the one write batch of everything it handled, which it
//! applies atomically and makes durable (flush + fsync) before telling the relay, which then
//! releases the acknowledgements and publication replies it held back.

use std::collections::HashMap;
use std::sync::{Arc, mpsc};
use std::time::Duration;

use godwit_protocol::identity::{IdentityKey, NodeId};
use godwit_protocol::ids::MessageId;
use godwit_protocol::message::Audience;
use godwit_protocol::relay::{Batch, Connection, Output, Publication, PublishError, Relay, Store, keep_new};
use rand_core::OsRng;
use tokio::sync::{broadcast, mpsc as tmpsc, oneshot};
use tracing::{debug, error, info, warn};

use super::{ConnHandle, CoreMsg, NodeError, NodeEvent, PublishRequest, Shared, Target, now};
use crate::store::SledStore;

pub(super) struct Core {
    pub(super) crl_tx: tmpsc::Sender<(NodeId, Vec<u8>)>,
    pub(super) vouch_tx: tmpsc::Sender<super::VouchRequest>,
    /// The `node` label of this node's metrics.
    pub(super) label: String,
    /// Publications not yet committed, answered once the commit that holds them returned.
    pub(super) published: HashMap<MessageId, oneshot::Sender<Result<MessageId, NodeError>>>,
    /// Operators' requests journalled (with their settings) but not committed yet: answered
    /// once their batch is durable.
    pub(super) recorded: Vec<(oneshot::Sender<super::admin::Answer>, super::admin::Answer)>,
    pub(super) relay: Relay<SledStore>,
    pub(super) key: IdentityKey,
    pub(super) conns: HashMap<NodeId, ConnHandle>,
    pub(super) events: broadcast::Sender<NodeEvent>,
    pub(super) shared: Arc<Shared>,
    /// When the store's size and the disk's free space were last looked at.
    pub(super) space_checked: Option<std::time::Instant>,
    /// When this node's card and key were last looked at.
    pub(super) card_checked: Option<std::time::Instant>,
    /// The encryption key's scheduled lifetime.
    pub(super) rotate_every_ms: Option<u64>,
    /// Where this node listens (its card says so).
    pub(super) addr: std::net::SocketAddr,
    /// Feeds with a gap peers were asked to fill, from when it was seen (at most
    /// [`MAX_GAPS_WATCHED`]).
    pub(super) gaps: HashMap<(NodeId, godwit_protocol::ids::FeedId), std::time::Instant>,
    /// Flash messages sent here, watched for read receipts.
    pub(super) escalations: super::escalate::Escalations,
    /// The audit log's checkpoints and the witness of the peers' logs.
    pub(super) audit: super::audit::AuditState,
}

/// Feed gaps watched at most for `godwit status` (a new one then replaces the oldest; every gap
/// is journalled all the same).
const MAX_GAPS_WATCHED: usize = 4_096;
/// Stale gaps `godwit status` names one by one.
const STALE_GAPS_SHOWN: usize = 10;

impl Core {
    pub(super) fn run(mut self, rx: mpsc::Receiver<CoreMsg>) {
        let detail = format!(
            "godwitd {}, {:?} {}, listening on {}, {} peers configured",
            env!("CARGO_PKG_VERSION"),
            self.relay.config().role,
            self.key.node_id(),
            self.addr,
            self.relay.peers().count(),
        );
        self.relay
            .record_event(godwit_protocol::audit::Event::Loaded { what: "configuration".into(), detail });
        let held: Vec<_> = self.relay.channels().channels().map(|(c, _)| *c).collect();
        for channel in held {
            self.channel_taken(channel);
        }
        loop {
            let wait = self
                .relay
                .poll_timeout()
                .map(|t| Duration::from_millis(t.as_millis().saturating_sub(now().as_millis())))
                .unwrap_or(Duration::from_secs(1))
                .min(Duration::from_secs(1));
            let first = match rx.recv_timeout(wait) {
                Ok(m) => Some(m),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            };
            let mut batch: Vec<CoreMsg> = first.into_iter().collect();
            batch.extend(rx.try_iter().take(1024));
            self.check_space();
            self.check_card();
            let mut stop = None;
            for msg in batch {
                if let CoreMsg::Kill = msg {
                    return;
                }
                if let CoreMsg::Shutdown(tx) = msg {
                    stop = Some(tx);
                    continue;
                }
                // Only storage fails the relay; a store that fails a write cannot be trusted
                // with the acknowledgements of this batch either.
                if let Err(e) = self.handle(msg) {
                    self.fail(&format!("storage error: {e}"));
                    return;
                }
            }
            if let Err(e) = self.relay.handle_timeout(now()) {
                self.fail(&format!("storage error: {e}"));
                return;
            }
            if let Err(reason) = self.drain() {
                self.fail(&reason);
                return;
            }
            if let Some(reason) = self.audit.storage_failed.take() {
                self.fail(&reason);
                return;
            }
            if let Some(tx) = stop {
                // Cursor moves still waiting for a commit are written before the store closes.
                self.relay.flush_cursors();
                if let Err(reason) = self.drain() {
                    self.fail(&reason);
                    return;
                }
                for (_, c) in self.conns.drain() {
                    c.close("shutting down");
                }
                let _ = self.relay.store().commit();
                let _ = tx.send(());
                return;
            }
        }
    }

    /// Group commit: the relay's batch for everything handled since the last one, written in
    /// one atomic sled batch, then — when acknowledgements or publications wait on it — one
    /// flush + fsync. Only then does the relay release what waited.
    ///
    /// # Errors
    /// Why the store could not be written or made durable: nothing of the batch was released.
    fn commit(&mut self, batch: &Batch) -> Result<(), String> {
        let started = std::time::Instant::now();
        self.relay.store_mut().write(batch).map_err(|e| format!("cannot write to the store: {e}"))?;
        if batch.sync {
            self.relay.store().commit().map_err(|e| format!("cannot make the store durable: {e}"))?;
        }
        metrics::histogram!("godwit_commit_seconds", "node" => self.label.clone()).record(started.elapsed());
        let received = batch
            .writes
            .iter()
            .filter(|w| {
                matches!(
                    w,
                    godwit_protocol::relay::Write::Event(godwit_protocol::audit::Event::Received { .. })
                )
            })
            .count();
        if received > 0 {
            metrics::counter!("godwit_messages_received_total", "node" => self.label.clone())
                .increment(received as u64);
        }
        self.shared.committed.notify_waiters();
        self.relay.handle_committed().map_err(|e| format!("storage error: {e}"))?;
        if batch.sync {
            for (reply, answer) in self.recorded.drain(..) {
                let _ = reply.send(answer);
            }
        }
        Ok(())
    }

    /// At most once a minute: the encryption key is rotated when its time has come, and this
    /// node's card published again when the one the network holds is half-way to expiring or
    /// names another key or certificate (a long-running node's card never lapses).
    fn check_card(&mut self) {
        let t = std::time::Instant::now();
        if self.card_checked.is_some_and(|at| t.duration_since(at) < Duration::from_secs(60)) {
            return;
        }
        self.card_checked = Some(t);
        self.destroy_ended_keys();
        if let Some(every) = self.rotate_every_ms {
            let due = self.shared.keys.lock().is_ok_and(|k| k.due(now().as_millis(), every));
            if due {
                match self.rotate_key() {
                    Ok(()) => self.relay.record_admin(u32::MAX, "keys rotate (scheduled)".into()),
                    Err(e) => warn!("cannot rotate the encryption key: {e}"),
                }
                return;
            }
        }
        self.publish_card();
    }

    /// The catch-up lag, as gauges: feeds with messages missing that peers were asked for, and
    /// how many messages are missing in all (filled gaps are no longer watched).
    fn count_gaps(&mut self) {
        let mut missing = 0u64;
        let watched: Vec<_> = self.gaps.keys().copied().collect();
        for (author, feed) in watched {
            match self.relay.missing(&author, &feed) {
                Ok(Some((from, to))) => missing += to + 1 - from,
                Ok(None) => {
                    self.gaps.remove(&(author, feed));
                }
                Err(_) => {}
            }
        }
        let node = self.label.clone();
        metrics::gauge!("godwit_feed_gaps", "node" => node.clone()).set(self.gaps.len() as f64);
        metrics::gauge!("godwit_missing_messages", "node" => node).set(missing as f64);
    }

    /// For `godwit status`: the watched gaps still open after `gap_warn_after_ms`, described
    /// in `shared.stale_gaps`; those filled since are no longer watched.
    fn note_stale_gaps(&mut self) -> Result<(), NodeError> {
        let after = Duration::from_millis(self.shared.limits.gap_warn_after_ms);
        let mut stale = Vec::new();
        let watched: Vec<_> = self.gaps.iter().map(|(k, at)| (*k, *at)).collect();
        for ((author, feed), at) in watched {
            match self.relay.missing(&author, &feed)? {
                None => {
                    self.gaps.remove(&(author, feed));
                }
                Some((from, to)) if at.elapsed() >= after => {
                    let who = self
                        .shared
                        .directory
                        .lock()
                        .ok()
                        .and_then(|d| d.get(&author).map(|e| e.cert.administration.clone()))
                        .unwrap_or_else(|| author.short());
                    let mins = at.elapsed().as_secs() / 60;
                    stale.push(format!(
                        "feed {} of {who} misses seq {from}..={to} for {mins} min: no peer has sent it (expired or lost at its source?)",
                        feed.short()
                    ));
                }
                Some(_) => {}
            }
        }
        // The first few by name; the rest counted (a status stays readable).
        if stale.len() > STALE_GAPS_SHOWN {
            let more = stale.len() - STALE_GAPS_SHOWN;
            stale.truncate(STALE_GAPS_SHOWN);
            stale.push(format!("… and {more} more feeds with gaps no peer fills"));
        }
        if let Ok(mut s) = self.shared.stale_gaps.lock() {
            *s = stale;
        }
        Ok(())
    }

    /// A new encryption key, on disk before a card announces it.
    pub(super) fn rotate_key(&mut self) -> Result<(), String> {
        self.shared.keys.lock().map_err(|_| "key state poisoned".to_string())?.rotate(now().as_millis())?;
        info!("encryption key rotated: a new card announces it");
        self.relay.record_event(godwit_protocol::audit::Event::Loaded {
            what: "encryption key".into(),
            detail: "rotated; the retired key is kept to open what was sealed to it".into(),
        });
        self.publish_card();
        Ok(())
    }

    fn publish_card(&mut self) {
        let Ok(tls) = self.shared.tls.lock().map(|m| m.clone()) else { return };
        super::publish_own_card(&mut self.relay, &self.key, &tls, &self.shared, self.addr);
    }

    /// At most once a second: whether the store reached its configured size or the disk its
    /// reserve of free space. While so, the relay refuses new messages (`storage_full`) instead
    /// of letting a write fail half-way; what is stored stays as it is.
    fn check_space(&mut self) {
        let t = std::time::Instant::now();
        if self.space_checked.is_some_and(|at| t.duration_since(at) < Duration::from_secs(1)) {
            return;
        }
        self.space_checked = Some(t);
        self.count_gaps();
        self.check_escalations();
        self.check_audit();
        let limits = &self.shared.limits;
        let store = self.relay.store();
        let size = store.size_on_disk().unwrap_or(0);
        let free = store.free_space().unwrap_or(u64::MAX);
        let node = self.label.clone();
        metrics::gauge!("godwit_store_bytes", "node" => node.clone()).set(size as f64);
        metrics::gauge!("godwit_peers_connected", "node" => node.clone()).set(self.conns.len() as f64);
        let queued: usize =
            self.conns.values().map(|c| c.queued.load(std::sync::atomic::Ordering::Relaxed)).sum();
        metrics::gauge!("godwit_queued_bytes", "node" => node.clone()).set(queued as f64);
        metrics::gauge!("godwit_storage_full", "node" => node).set(if self.relay.is_storage_full() {
            1.0
        } else {
            0.0
        });
        let full = (limits.max_store_bytes > 0 && size >= limits.max_store_bytes)
            || free < limits.min_free_disk_bytes;
        if full != self.relay.is_storage_full() {
            if full {
                warn!(
                    size,
                    free,
                    max_store_bytes = limits.max_store_bytes,
                    min_free_disk_bytes = limits.min_free_disk_bytes,
                    "storage full: new messages are refused until space is freed"
                );
            } else {
                info!(size, free, "storage no longer full: new messages are taken again");
            }
            self.relay.set_storage_full(full);
        }
    }

    /// A commit failed: an fsync that failed once cannot be trusted to succeed on a retry, so
    /// the node acknowledges nothing more, drops every connection and stops; its supervisor
    /// restarts it, and what was not durable is sent again by its peers.
    fn fail(&mut self, reason: &str) {
        error!("{reason}: stopping, nothing more is acknowledged");
        for (_, reply) in self.published.drain() {
            let _ = reply.send(Err(NodeError::NotDurable(reason.to_owned())));
        }
        for (reply, _) in self.recorded.drain(..) {
            let _ = reply.send(super::admin::Answer::Failed(format!("not durable: {reason}")));
        }
        for (_, c) in self.conns.drain() {
            c.close("the node's storage failed");
        }
        if let Ok(mut c) = self.shared.connected.lock() {
            c.clear();
        }
        self.shared.changed.notify_waiters();
        // `send_replace` stores the reason even while nobody is subscribed (`send` would drop
        // it), so a later `Node::failed` still sees it.
        self.shared.fatal.send_replace(Some(reason.to_owned()));
        let _ = self.events.send(NodeEvent::Fatal(reason.to_owned()));
    }

    fn handle(&mut self, msg: CoreMsg) -> Result<(), NodeError> {
        match msg {
            CoreMsg::Connected { peer, handle } => {
                let id = peer.node_id;
                // A list installed after this connection's handshake but before it got here
                // must still end it: the revocation pass only sees registered connections.
                let revoked = self
                    .shared
                    .tls
                    .lock()
                    .ok()
                    .and_then(|m| m.crl.as_ref().and_then(|c| crate::certs::crl_info(c).ok()))
                    .is_some_and(|(_, serials)| serials.contains(&handle.serial));
                if revoked {
                    let reason = "certificate revoked by the network CA".to_string();
                    warn!(peer = %id, "disconnecting: {reason}");
                    handle.close(&reason);
                    self.shared.note_error(id, &reason);
                    let _ = self.events.send(NodeEvent::Closed { peer: id, reason });
                    return Ok(());
                }
                if let Some(old) = self.conns.get(&id) {
                    // The relay's rule (`relay::keep_new`): a new connection replaces a stale
                    // one, except when both sides dialled at once.
                    let after = handle.since.saturating_duration_since(old.since).as_millis() as u64;
                    let was = Connection { since_ms: 0, dialer: old.dialer };
                    let is = Connection { since_ms: after, dialer: handle.dialer };
                    if !keep_new(self.shared.me, id, was, is, self.shared.limits.handshake_timeout_ms) {
                        handle.close("duplicate connection");
                        return Ok(());
                    }
                    debug!(old = old.id, "replacing a connection to the same peer");
                    old.close("duplicate connection");
                    self.relay.disconnect(&id, "replaced by a newer connection")?;
                }
                if let Ok(mut c) = self.shared.connected.lock() {
                    c.insert(id);
                }
                self.shared.changed.notify_waiters();
                self.conns.insert(id, handle);
                self.relay.connect(now(), id, peer.role)?;
                // Written with the journal's `Connected` entry in the next group commit.
                self.relay.record_peer(id, peer.administration.clone(), peer.der.clone());
                let _ = self.events.send(NodeEvent::PeerUp(id));
            }
            CoreMsg::Disconnected { peer, conn, reason } => {
                if self.conns.get(&peer).is_some_and(|c| c.id == conn) {
                    let reason = match self.conns.remove(&peer).and_then(|c| c.closed.get().cloned()) {
                        Some(ours) => format!("closed by this node: {ours}"),
                        None => reason,
                    };
                    if let Ok(mut c) = self.shared.connected.lock() {
                        c.remove(&peer);
                    }
                    self.shared.changed.notify_waiters();
                    self.relay.disconnect(&peer, &reason)?;
                    let _ = self.events.send(NodeEvent::PeerDown(peer));
                }
            }
            CoreMsg::Vouched { peer, conn, members } => {
                if self.conns.get(&peer).is_some_and(|c| c.id == conn) {
                    self.relay.handle_vouched(peer, members)?;
                }
            }
            CoreMsg::Frame { peer, conn, bytes, credit, charge } => {
                credit.add_permits(charge);
                if self.conns.get(&peer).is_some_and(|c| c.id == conn) {
                    self.relay.handle_frame(now(), peer, &bytes)?;
                }
            }
            CoreMsg::Refuse { peer, conn, reason, detail } => {
                // Framing refusals are the relay's decision like any other: journalled, counted
                // against the peer, answered.
                if self.conns.get(&peer).is_some_and(|c| c.id == conn) {
                    self.relay.handle_frame_refused(now(), peer, reason, detail)?;
                }
            }
            CoreMsg::Publish(req, reply) => match self.publish(&req) {
                Ok(id) => {
                    self.published.insert(id, reply);
                }
                // A storage failure may come after the message entered the batch: the node
                // stops (its caller hears so) rather than report a failure that is not one.
                Err(NodeError::Publish(PublishError::Store(e))) => return Err(NodeError::Store(e)),
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
            CoreMsg::Inbox(reply) => {
                let _ = reply.send(self.relay.inbox()?);
            }
            CoreMsg::Envelope(id, reply) => {
                let _ = reply.send(self.relay.envelope(&id)?);
            }
            CoreMsg::Revoke(serials) => {
                self.relay.record_event(godwit_protocol::audit::Event::Loaded {
                    what: "revocation list".into(),
                    detail: format!("{} certificates revoked", serials.len()),
                });
                let revoked_nodes =
                    self.shared.directory.lock().map(|mut d| d.revoke(&serials)).unwrap_or_default();
                self.remove_revoked(&revoked_nodes);
                // The relay passes the list on to every peer: the newest list wins everywhere.
                if let Some(der) =
                    self.shared.tls.lock().ok().and_then(|m| m.crl.as_ref().map(|c| c.to_vec()))
                {
                    self.relay.set_crl(der);
                }
                let revoked: Vec<NodeId> = self
                    .conns
                    .iter()
                    .filter(|(_, c)| serials.contains(&c.serial))
                    .map(|(id, _)| *id)
                    .collect();
                for id in revoked {
                    let reason = "certificate revoked by the network CA".to_string();
                    warn!(peer = %id, "disconnecting: {reason}");
                    if let Some(c) = self.conns.get(&id) {
                        c.close(&reason);
                    }
                    self.shared.note_error(id, &reason);
                    let _ = self.events.send(NodeEvent::Closed { peer: id, reason });
                }
            }
            CoreMsg::AddPeer(id) => self.relay.add_configured_peer(id),
            CoreMsg::RemovePeer(peer) => self.relay.remove_configured_peer(&peer),
            CoreMsg::Drop { peer, reason } => {
                if let Some(c) = self.conns.get(&peer) {
                    info!(peer = %peer.short(), "closing: {reason}");
                    self.shared.note_error(peer, &reason);
                    c.close(&reason);
                }
            }
            CoreMsg::Admin(q, reply) => {
                if matches!(q, super::admin::Query::Status) {
                    self.note_stale_gaps()?;
                }
                if matches!(q, super::admin::Query::Peers | super::admin::Query::Status) {
                    let queued = self
                        .conns
                        .iter()
                        .map(|(p, c)| (*p, c.queued.load(std::sync::atomic::Ordering::Relaxed) as u64))
                        .collect();
                    if let Ok(mut q) = self.shared.queued.lock() {
                        *q = queued;
                    }
                }
                if let super::admin::Query::Audit {
                    req: godwit_admin_api::audit::AuditRequest::Verify, ..
                } = q
                {
                    // A long read: the admin task does it on a view, the core goes on.
                    let job = super::audit::VerifyJob {
                        reader: self.relay.store().audit_reader(),
                        me: self.key.node_id(),
                        witnesses: self.conns.keys().copied().collect(),
                    };
                    let _ = reply.send(super::admin::Answer::AuditVerify(Box::new(job)));
                    return Ok(());
                }
                if let super::admin::Query::Audit { uid, req } = q {
                    let mutating = matches!(req, godwit_admin_api::audit::AuditRequest::NewGeneration);
                    match self.audit_query(uid, req) {
                        Ok(a) if mutating => {
                            self.recorded.push((reply, super::admin::Answer::Audit(Box::new(a))))
                        }
                        Ok(a) => {
                            let _ = reply.send(super::admin::Answer::Audit(Box::new(a)));
                        }
                        Err(e) => {
                            let _ = reply.send(super::admin::Answer::Failed(e));
                        }
                    }
                    return Ok(());
                }
                if let super::admin::Query::Channels = q {
                    let _ = reply.send(super::admin::Answer::Channels(self.channel_views()));
                    return Ok(());
                }
                if let super::admin::Query::ChangeChannel { uid, channel, change } = q {
                    match self.change_channel(channel.as_deref(), &change) {
                        Ok((id, epoch, action)) => {
                            self.relay.record_admin(uid, action);
                            let answer = super::admin::Answer::ChannelChanged { channel: id, epoch };
                            self.recorded.push((reply, answer));
                        }
                        Err(e) => {
                            let _ = reply.send(super::admin::Answer::Failed(e));
                        }
                    }
                    return Ok(());
                }
                if let super::admin::Query::RotateKey { uid } = q {
                    match self.rotate_key() {
                        Ok(()) => {
                            self.relay.record_admin(uid, "keys rotate".into());
                            self.recorded.push((reply, super::admin::Answer::Done));
                        }
                        Err(e) => {
                            let _ = reply.send(super::admin::Answer::Failed(e));
                        }
                    }
                    return Ok(());
                }
                let conns = &self.conns;
                let queues = || {
                    conns
                        .iter()
                        .filter_map(|(peer, c)| {
                            let queued = c.queued.load(std::sync::atomic::Ordering::Relaxed);
                            let percent = (queued.saturating_mul(100) / c.queue_cap.max(1)).min(100);
                            (percent >= 50).then_some((*peer, percent as u8))
                        })
                        .collect()
                };
                let record = matches!(q, super::admin::Query::Record { .. });
                match super::admin::on_core(&mut self.relay, q, queues) {
                    // Answered once durable (the journal entry made its batch one to sync).
                    super::admin::Answer::Done if record => {
                        self.recorded.push((reply, super::admin::Answer::Done))
                    }
                    a => {
                        let _ = reply.send(a);
                    }
                }
            }
            CoreMsg::Shutdown(_) | CoreMsg::Kill => {}
        }
        Ok(())
    }

    fn publish(&mut self, req: &PublishRequest) -> Result<MessageId, NodeError> {
        // A signed channel's epoch is the one it is at now, picked here on the core thread: a
        // member removed after the caller looked is sealed nothing sent from now on.
        let current;
        let audience = match &req.target {
            Target::Channel { id, epoch, key } => match self.relay.channels().head(id).map(|h| h.state.epoch)
            {
                Some(head) if head != *epoch => {
                    current = self
                        .shared
                        .epoch_keys
                        .lock()
                        .ok()
                        .and_then(|k| k.get(id, head).cloned())
                        .ok_or_else(|| {
                            NodeError::Publish(PublishError::NotPermitted(format!(
                                "channel {} is at epoch {head}, whose key this node does not hold yet",
                                id.short()
                            )))
                        })?;
                    Audience::Channel { id: *id, epoch: head, key: &current }
                }
                _ => Audience::Channel { id: *id, epoch: *epoch, key },
            },
            Target::Direct(to) => Audience::Direct(to),
        };
        let p = Publication {
            audience,
            priority: req.priority,
            marking: req.marking,
            ttl_ms: req.ttl_ms,
            body: &req.body,
            personal: req.personal.as_ref().map(|(d, r)| (d, r.as_slice())),
        };
        // Stored now, durable with this batch's group commit; the caller hears of it only then.
        let sealed = self.relay.publish(now(), &mut OsRng, &self.key, &p)?;
        // This node's own seizure reports, and what amends them, kept readable here: a direct
        // message's author cannot open it again, and the node reports its own seizures.
        if matches!(req.body.content.kind(), "seizure_report" | "correction" | "retraction") {
            let record = crate::store::OwnRecord { envelope: sealed.bytes.clone(), body: req.body.encode() };
            self.relay.keep_own(sealed.id, godwit_protocol::codec::to_vec(&record));
        }
        if req.priority == godwit_protocol::envelope::Priority::Flash {
            let me = self.shared.me;
            let readers: Vec<NodeId> = match &req.target {
                Target::Direct(to) => to.iter().map(|(n, _)| *n).collect(),
                Target::Channel { id, epoch, .. } => match self.relay.channels().at(id, *epoch) {
                    Some((t, _)) => t.state.members.iter().filter(|m| m.read).map(|m| m.node).collect(),
                    None => self
                        .relay
                        .config()
                        .channels
                        .iter()
                        .filter(|c| c.id == *id)
                        .flat_map(|c| c.members.iter().copied())
                        .collect(),
                },
            };
            self.escalations.sent(sealed.id, readers.into_iter().filter(|n| *n != me), now().as_millis());
        }
        Ok(sealed.id)
    }

    /// Flash messages sent here that a recipient has not read in time: flagged once each (log,
    /// metric, event, alert hook), and listed for `godwit status`.
    fn check_escalations(&mut self) {
        let after = self.shared.limits.escalate_after_ms;
        for (id, unread) in self.escalations.newly_overdue(now().as_millis(), after) {
            warn!(id = %id.short(), unread = unread.len(), "flash message not read in time by every recipient: escalate");
            metrics::counter!("godwit_escalations_total", "node" => self.label.clone()).increment(1);
            let _ = self.events.send(NodeEvent::Escalation { id, unread });
        }
        let overdue = self.escalations.overdue();
        metrics::gauge!("godwit_escalations_open", "node" => self.label.clone()).set(overdue.len() as f64);
        // Nothing overdue, nothing to name: the directory is not locked once a second for it.
        if overdue.is_empty() && self.shared.overdue.lock().is_ok_and(|o| o.is_empty()) {
            return;
        }
        let dir = self.shared.directory.lock().ok();
        let name = |n: &NodeId| {
            dir.as_ref()
                .and_then(|d| d.get(n).map(|e| e.cert.administration.clone()))
                .unwrap_or_else(|| n.short())
        };
        let lines: Vec<String> = overdue
            .iter()
            .take(10)
            .map(|(id, _, unread)| {
                let who: Vec<String> = unread.iter().map(&name).collect();
                format!("flash message {} not read in time by: {} (escalate)", id.short(), who.join(", "))
            })
            .collect();
        drop(dir);
        if let Ok(mut o) = self.shared.overdue.lock() {
            *o = lines;
        }
    }

    /// A flash or immediate message delivered here is receipted to its author ("delivered",
    /// signed, sealed to the author's newest card); routine messages, receipts and this node's
    /// own messages are not.
    ///
    /// # Errors
    /// A storage error while publishing it.
    fn delivered_receipt(&mut self, id: MessageId) -> Result<(), String> {
        use godwit_protocol::content::{Body, Content, Receipt, ReceiptStatus, Tlp};
        use godwit_protocol::envelope::{Envelope, Feed, Priority};
        // Cheap first, from the stored metadata: routine channel messages (most traffic) need
        // neither a receipt nor a look inside.
        let Ok(Some(meta)) = self.relay.store().meta(&id) else { return Ok(()) };
        if meta.author == self.shared.me
            || meta.control
            || (meta.channel.is_some() && meta.priority == Priority::Routine)
        {
            return Ok(());
        }
        let Ok(Some(bytes)) = self.relay.envelope(&id) else { return Ok(()) };
        let Ok(env) = Envelope::verify(&bytes) else { return Ok(()) };
        let h = env.header();
        if h.author == self.shared.me {
            return Ok(());
        }
        if let Feed::Direct(_) = h.feed {
            // Only direct messages can be receipts: a read receipt ends an escalation watch; a
            // receipt is not receipted, nor a direct message that does not open.
            let opened = self.shared.keys.lock().ok().and_then(|k| k.open_direct(&env, &self.shared.me).ok());
            match opened.map(|b| b.content) {
                Some(Content::ChannelRequest(r)) if r.leave => {
                    self.leave(r.channel, h.author);
                    return Ok(());
                }
                Some(Content::Receipt(r)) => {
                    if r.status != ReceiptStatus::Delivered {
                        self.escalations.read(&r.message, &h.author);
                    }
                    return Ok(());
                }
                None => return Ok(()),
                Some(_) => {}
            }
        }
        if h.priority == Priority::Routine {
            return Ok(());
        }
        let Some(card) =
            self.shared.directory.lock().ok().and_then(|d| d.get(&h.author).map(|e| e.card.clone()))
        else {
            debug!(id = %id.short(), "no card of its author known here: no delivered receipt");
            return Ok(());
        };
        let body = Body::new(Content::Receipt(Receipt {
            at: now(),
            note: None,
            status: ReceiptStatus::Delivered,
            message: id,
        }));
        let to = [(h.author, card.encryption_key)];
        let p = Publication {
            audience: Audience::Direct(&to),
            priority: Priority::Routine,
            marking: if h.marking == Tlp::Clear { Tlp::Green } else { h.marking },
            ttl_ms: 30 * 86_400_000,
            body: &body,
            personal: None,
        };
        match self.relay.publish(now(), &mut OsRng, &self.key, &p) {
            Ok(_) => Ok(()),
            Err(PublishError::Store(e)) => Err(format!("storage error: {e}")),
            Err(e) => {
                warn!(id = %id.short(), "cannot send its delivered receipt: {e}");
                Ok(())
            }
        }
    }

    /// A channel state became a head: its name is noted, and key records waiting for it are
    /// tried again.
    fn channel_taken(&mut self, channel: godwit_protocol::ids::ChannelId) {
        let me = self.shared.me;
        let (Ok(ring), Ok(mut keys)) = (self.shared.keys.lock(), self.shared.epoch_keys.lock()) else {
            return;
        };
        if let Some(head) = self.relay.channels().head(&channel) {
            keys.set_name(channel, &head.state.name);
        }
        for (c, epoch) in keys.retry(self.relay.channels(), &me, &ring) {
            info!(channel = %c.short(), epoch, "channel key taken");
            let _ = self.events.send(NodeEvent::ChannelKey { channel: c, epoch });
        }
    }

    /// A channel-key record: the key sealed to this node is kept.
    fn channel_key(&mut self, id: MessageId, record: &[u8]) {
        let me = self.shared.me;
        let (Ok(ring), Ok(mut keys)) = (self.shared.keys.lock(), self.shared.epoch_keys.lock()) else {
            return;
        };
        match keys.on_record(record, self.relay.channels(), &me, &ring) {
            Ok(Some((c, epoch))) => {
                info!(channel = %c.short(), epoch, "channel key taken");
                let _ = self.events.send(NodeEvent::ChannelKey { channel: c, epoch });
            }
            Ok(None) => {}
            Err(e) => warn!(id = %id.short(), "channel key not taken: {e}"),
        }
    }

    /// A member asked to leave a channel this node owns (or deputises for): removed at once,
    /// journalled.
    fn leave(&mut self, channel: godwit_protocol::ids::ChannelId, node: NodeId) {
        let me = self.shared.me;
        let Some(head) = self.relay.channels().head(&channel) else { return };
        // The owner acts (its deputy too would fork the channel).
        if head.state.owner != me || head.state.member(&node).is_none() || head.state.may_change(&node) {
            return;
        }
        let id = channel.to_string();
        match self.change_channel(Some(&id), &super::channels::Change::Remove { node }) {
            Ok((_, epoch, action)) => {
                info!(channel = %channel.short(), node = %node.short(), epoch, "a member left the channel");
                self.relay.record_admin(u32::MAX, format!("leave requested by {node}: {action}"));
            }
            Err(e) => {
                warn!(channel = %channel.short(), node = %node.short(), "cannot remove a member that asked to leave: {e}")
            }
        }
    }

    /// Every channel this node owns (or deputises for) loses the members whose certificates
    /// were revoked: a new state and epoch key without them, journalled.
    fn remove_revoked(&mut self, revoked: &[NodeId]) {
        // The owner acts, not its deputy too: two successors of one state would fork it.
        let me = self.shared.me;
        let mut changes: Vec<(String, Vec<NodeId>)> = Vec::new();
        for (id, h) in self.relay.channels().channels() {
            let nodes: Vec<NodeId> =
                revoked.iter().filter(|n| h.state.member(n).is_some()).copied().collect();
            if h.state.owner == me && !nodes.is_empty() {
                changes.push((id.to_string(), nodes));
            }
        }
        for (channel, nodes) in changes {
            let n = nodes.len();
            match self.change_channel(Some(&channel), &super::channels::Change::Revoked { nodes }) {
                Ok((_, epoch, action)) => {
                    warn!(channel = %&channel[..12], removed = n, epoch, "certificates revoked: their nodes are removed from the channel");
                    self.relay.record_admin(u32::MAX, format!("revocation: {action}"));
                }
                Err(e) => {
                    error!(channel = %&channel[..12], "certificates revoked, but their nodes stay members: {e}")
                }
            }
        }
    }

    /// The keys of channels that ended longer ago than they are retained are destroyed
    /// (memory and files), journalled.
    fn destroy_ended_keys(&mut self) {
        let destroyed = match self.shared.epoch_keys.lock() {
            Ok(mut k) => k.destroy_ended(self.relay.channels(), now()),
            Err(_) => return,
        };
        for (channel, n) in destroyed {
            info!(channel = %channel.short(), keys = n, "channel ended and its retention passed: its keys are destroyed");
            self.relay.record_admin(
                u32::MAX,
                format!("channel {channel} keys destroyed ({n}) after its retention"),
            );
        }
    }

    /// The channels this node knows, for operators.
    fn channel_views(&self) -> Vec<godwit_admin_api::ChannelView> {
        let keys = self.shared.epoch_keys.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let dir = self.shared.directory.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let admin_of = |n: &NodeId| dir.get(n).map(|e| e.cert.administration.clone()).unwrap_or_default();
        let mut out: Vec<godwit_admin_api::ChannelView> = keys
            .configured()
            .iter()
            .map(|c| godwit_admin_api::ChannelView {
                id: c.id.to_string(),
                name: c.name.clone(),
                purpose: String::new(),
                epoch: c.epoch,
                owner: self.shared.me,
                deputy: None,
                ends_ms: None,
                members: Vec::new(),
                has_key: true,
                configured: true,
            })
            .collect();
        for (id, head) in self.relay.channels().channels() {
            let s = &head.state;
            out.push(godwit_admin_api::ChannelView {
                id: id.to_string(),
                name: s.name.clone(),
                purpose: s.purpose.clone(),
                epoch: s.epoch,
                owner: s.owner,
                deputy: s.deputy,
                ends_ms: s.ends.map(|t| t.as_millis()),
                members: s
                    .members
                    .iter()
                    .map(|m| godwit_admin_api::ChannelMemberView {
                        node: m.node,
                        administration: admin_of(&m.node),
                        read: m.read,
                        publish: m.publish,
                    })
                    .collect(),
                has_key: keys.get(id, s.epoch).is_some(),
                configured: false,
            });
        }
        out
    }

    /// An owner's (or deputy's) change: the next state and a fresh epoch key sealed to its
    /// readers, published; the key kept here first. Returns the channel, its new epoch and the
    /// journal's words for it.
    fn change_channel(
        &mut self,
        channel: Option<&str>,
        change: &super::channels::Change,
    ) -> Result<(String, u64, String), String> {
        let t = now();
        let book = self.relay.channels();
        let head = match channel {
            None => {
                if let super::channels::Change::Create { name, .. } = change {
                    if book.channels().any(|(_, h)| h.state.name.eq_ignore_ascii_case(name.trim())) {
                        return Err(format!("a channel called {:?} exists already", name.trim()));
                    }
                }
                None
            }
            Some(name) => Some(find_channel(book, name)?),
        };
        let state = super::channels::next_state(head, self.shared.me, change, t)?;
        let (record, key_record, channel, epoch_key) = {
            let dir = self.shared.directory.lock().map_err(|_| "state poisoned".to_string())?;
            let mine =
                self.shared.keys.lock().map_err(|_| "key state poisoned".to_string())?.current().public();
            let me = self.shared.me;
            super::channels::sign_change(
                &mut OsRng,
                &self.key,
                &state,
                |r| {
                    godwit_protocol::channel::ChannelState::verify(r)
                        .map(|v| v.channel)
                        .map_err(|e| e.to_string())
                },
                |n| if *n == me { Some(mine) } else { dir.get(n).map(|e| e.card.encryption_key) },
                t,
            )?
        };
        // Everything that could refuse the state, checked before anything is kept: a key is
        // never kept for an epoch that is not published.
        let verified = godwit_protocol::channel::ChannelState::verify(&record).map_err(|e| e.to_string())?;
        match self.relay.channels().check(&verified) {
            Ok(godwit_protocol::channel::Disposition::Apply) => {}
            Ok(_) => {
                return Err(format!(
                    "channel {:?} changed meanwhile (epoch {} is taken already): look again with godwit channels show, then repeat",
                    state.name, state.epoch
                ));
            }
            Err(e) => return Err(e.to_string()),
        }
        if self.relay.is_recovering() || self.relay.is_storage_full() {
            return Err("this node is recovering or its store is full: it publishes nothing now".into());
        }
        // The key first: this node never publishes an epoch it could not read itself.
        self.shared.epoch_keys.lock().map_err(|_| "key state poisoned".to_string())?.replace(
            channel,
            state.epoch,
            epoch_key,
        )?;
        let flash = godwit_protocol::envelope::Priority::Flash;
        let ttl = super::channels::CONTROL_TTL_MS;
        self.relay.publish_control(t, &self.key, &record, ttl, flash).map_err(|e| e.to_string())?;
        self.relay.publish_control(t, &self.key, &key_record, ttl, flash).map_err(|e| e.to_string())?;
        let action = format!("channels {} {channel} -> epoch {}", change.words(), state.epoch);
        Ok((channel.to_string(), state.epoch, action))
    }

    /// Carries out the relay's outputs, the group commit among them.
    ///
    /// # Errors
    /// Why a commit failed.
    fn drain(&mut self) -> Result<(), String> {
        while let Some(out) = self.relay.poll_output() {
            match out {
                Output::Commit(batch) => self.commit(&batch)?,
                Output::Published(id) => {
                    metrics::counter!("godwit_messages_authored_total", "node" => self.label.clone())
                        .increment(1);
                    if let Some(reply) = self.published.remove(&id) {
                        info!(id = %id.short(), "authored");
                        let _ = reply.send(Ok(id));
                    }
                }
                Output::Send { peer, class, frame } => {
                    let class_name = match class {
                        godwit_protocol::relay::Class::Urgent => "urgent",
                        godwit_protocol::relay::Class::Immediate => "immediate",
                        godwit_protocol::relay::Class::Routine => "routine",
                    };
                    metrics::counter!("godwit_frames_sent_total", "node" => self.label.clone(), "class" => class_name).increment(1);
                    metrics::counter!("godwit_frame_bytes_sent_total", "node" => self.label.clone(), "class" => class_name)
                        .increment(frame.len() as u64);
                    if let Some(c) = self.conns.get(&peer) {
                        c.send(class, frame);
                    }
                }
                Output::Close { peer, reason, abusive } => {
                    if abusive {
                        self.shared.admission.ban(std::time::Instant::now(), peer);
                    }
                    warn!(peer = %peer, "closing: {reason}");
                    if let Some(c) = self.conns.get(&peer) {
                        c.close(&reason);
                    }
                    self.shared.note_error(peer, &reason);
                    let _ = self.events.send(NodeEvent::Closed { peer, reason });
                }
                Output::Acked { peer, count } => {
                    let _ = self.events.send(NodeEvent::Acked(peer, count));
                }
                Output::Delivered(id) => {
                    info!(id = %id.short(), "delivered to the inbox");
                    metrics::counter!("godwit_messages_delivered_total", "node" => self.label.clone())
                        .increment(1);
                    let _ = self.events.send(NodeEvent::Delivered(id));
                    // Committed: the announcer reads it from the store.
                    self.shared.delivered.notify_waiters();
                    self.delivered_receipt(id)?;
                }
                Output::Refused { peer, id, reason, detail } => {
                    metrics::counter!("godwit_messages_refused_total", "node" => self.label.clone(), "reason" => reason.code())
                        .increment(1);
                    warn!(peer = %peer.short(), id = ?id.map(|i| i.short()), ?reason, %detail, "refused a message");
                    let _ = self.events.send(NodeEvent::Refused { peer, reason, detail });
                }
                Output::Gap { author, feed, from, to } => {
                    warn!(author = %author.short(), from, to, "feed gap: asked peers to fill it");
                    // Full: the oldest watched gap makes room (it has been warned of longest).
                    if self.gaps.len() >= MAX_GAPS_WATCHED && !self.gaps.contains_key(&(author, feed)) {
                        if let Some(oldest) = self.gaps.iter().min_by_key(|(_, at)| **at).map(|(k, _)| *k) {
                            self.gaps.remove(&oldest);
                        }
                    }
                    self.gaps.entry((author, feed)).or_insert_with(std::time::Instant::now);
                    let _ = self.events.send(NodeEvent::Gap { author, from, to });
                }
                Output::Fork { author, seq } => {
                    error!(author = %author, seq, "author signed two messages for one place in a feed: feed frozen, evidence kept");
                }
                Output::ChannelHead { channel, epoch } => {
                    info!(channel = %channel.short(), epoch, "channel state taken");
                    self.channel_taken(channel);
                    let _ = self.events.send(NodeEvent::ChannelState { channel, epoch });
                }
                Output::Control { id, record } => {
                    let kind = godwit_protocol::control::kind_of(&record).ok();
                    if kind == Some(godwit_protocol::control::Kind::ChannelKey) {
                        self.channel_key(id, &record);
                    }
                    if kind == Some(godwit_protocol::control::Kind::NodeCard) {
                        let material = self.shared.tls.lock().map(|m| m.clone());
                        let admitted = match (material, self.shared.directory.lock()) {
                            (Ok(m), Ok(mut d)) => d.admit(&record, &m, now()),
                            _ => Err("state poisoned".into()),
                        };
                        match admitted {
                            Ok(Some(node)) => {
                                info!(node = %node.short(), "node card taken into the directory");
                                self.relay.record_card(node, record);
                                self.relay.record_event(godwit_protocol::audit::Event::Loaded {
                                    what: "node card".into(),
                                    detail: node.to_string(),
                                });
                                let _ = self.events.send(NodeEvent::Card(node));
                            }
                            Ok(None) => {}
                            Err(e) => debug!(id = %id.short(), "node card not taken: {e}"),
                        }
                    }
                }
                Output::Audit { from, frame } => self.handle_audit(from, frame),
                Output::Crl { from, der } => {
                    if self.crl_tx.try_send((from, der)).is_err() {
                        debug!(from = %from.short(), "revocation list dropped: the check queue is full");
                    }
                }
                Output::Vouch { peer, certs } => {
                    if let Some(c) = self.conns.get(&peer) {
                        let req = super::VouchRequest { peer, conn: c.id, region: c.region.clone(), certs };
                        if self.vouch_tx.try_send(req).is_err() {
                            // The link must not wait for a check that will never come: it goes
                            // on with no member vouched for (the hub vouches again on its next
                            // connection).
                            warn!(hub = %peer.short(), "vouching certificates dropped: the check queue is full");
                            if let Err(e) = self.relay.handle_vouched(peer, Vec::new()) {
                                return Err(format!("storage error: {e}"));
                            }
                        }
                    }
                }
                Output::Repaired(id) => {
                    info!(id = %id.short(), "damaged message fetched again and stored anew");
                    let hex = id.to_string();
                    if let Ok(mut d) = self.shared.damage.lock() {
                        d.retain(|p| !p.contains(&hex));
                    }
                    let _ = self.events.send(NodeEvent::Repaired(id));
                }
                Output::Recovered { from } => {
                    info!(from = %from.short(), "recovered own feed heads from a peer");
                    let _ = self.events.send(NodeEvent::Recovered);
                }
            }
        }
        Ok(())
    }
}

/// The channel a name (or id, or a prefix of at least 8 hex digits) stands for.
///
/// # Errors
/// No such channel, or more than one.
pub(super) fn find_channel<'a>(
    book: &'a godwit_protocol::channel::Book,
    name: &str,
) -> Result<(&'a godwit_protocol::ids::ChannelId, &'a godwit_protocol::channel::Taken), String> {
    let want = name.trim();
    let all: Vec<_> = book.channels().collect();
    let found =
        godwit_admin_api::select_channels(&all, want, |(id, _)| id.to_string(), |(_, h)| &h.state.name);
    match found.as_slice() {
        [one] => Ok(**one),
        [] => {
            let known: Vec<String> = book.channels().map(|(_, h)| format!("{:?}", h.state.name)).collect();
            Err(format!(
                "no channel called {want:?} is known here (known: {})",
                if known.is_empty() { "none".to_string() } else { known.join(", ") }
            ))
        }
        many => Err(format!("{want:?} names {} channels: give its id", many.len())),
    }
}

//! Delivery to peers: the pump (flash first, then the backlog from each peer's cursor, within
//! its window), interest routing, acknowledgements and cursor moves.

use super::*;

impl<S: Store> Relay<S> {
    /// Sends what the peer still lacks: flash messages first, then the rest oldest first, up to
    /// the window.
    pub(super) fn pump(&mut self, peer: NodeId) -> R<S> {
        self.pump_flash(peer)?;
        'fill: loop {
            let Some(p) = self.peers.get(&peer) else { return Ok(()) };
            if !p.hello || !p.routable() || !p.has_room(self.cfg.window, self.cfg.window_bytes) {
                break;
            }
            let batch = self.hot.log_after(&self.store, p.next, 64).map_err(RelayError::Store)?;
            if batch.is_empty() {
                break;
            }
            for held in batch {
                let local = held.meta.local;
                if held.meta.from.is_none() && !self.hot.is_durable(&held) {
                    // This node's own message leaves it only once committed: a crash before
                    // could make it author another message at the same place.
                    break 'fill;
                }
                let Some(p) = self.peer(&peer) else { return Ok(()) };
                p.next = local;
                if p.is_in_flight(local) || p.done.contains(&local) {
                    continue;
                }
                if held.meta.expires > self.now && self.needs(&peer, &held.meta) {
                    self.send_held(peer, &held);
                } else if let Some(p) = self.peer(&peer) {
                    p.done.insert(local);
                }
                if self.peers.get(&peer).is_none_or(|p| !p.has_room(self.cfg.window, self.cfg.window_bytes)) {
                    break;
                }
            }
        }
        if !self.parked.is_empty() {
            self.offer_parked(peer)?;
        }
        self.advance_cursor(peer, Vec::new())
    }

    /// Flash messages above the peer's cursor go before its routine backlog — on catch-up after
    /// an absence (read from the flash index, so also after this node restarted) and as they
    /// arrive. They may take a second window beside the routine one: a full window of routine
    /// messages never holds a flash back.
    pub(super) fn pump_flash(&mut self, peer: NodeId) -> R<S> {
        let (window, window_bytes) = (self.cfg.window, self.cfg.window_bytes);
        let Some(p) = self.peers.get(&peer) else { return Ok(()) };
        if !p.hello || !p.routable() {
            return Ok(());
        }
        let from = p.next.max(p.flash_seen);
        // Most pumps have no flash message to send: skip the index then.
        if self.flash_top.is_some_and(|top| top <= from) {
            return Ok(());
        }
        let batch = self.hot.flash_after(&self.store, from, window).map_err(RelayError::Store)?;
        if batch.len() < window {
            // The index is exhausted beyond `from`: nothing flash lies above the last entry.
            let last = batch.last().map_or(from, |h| h.meta.local).max(from);
            self.flash_top = Some(self.flash_top.map_or(last, |top| top.max(last)));
        }
        for held in batch {
            let local = held.meta.local;
            if held.meta.from.is_none() && !self.hot.is_durable(&held) {
                break;
            }
            let Some(p) = self.peer(&peer) else { return Ok(()) };
            if !p.has_room(2 * window, 2 * window_bytes) {
                break;
            }
            p.flash_seen = local;
            if p.is_in_flight(local) || p.done.contains(&local) {
                continue;
            }
            if held.meta.expires > self.now && self.needs(&peer, &held.meta) {
                self.send_held(peer, &held);
            }
        }
        Ok(())
    }

    /// Sends a message held at log position `local` (again, on a resend).
    pub(super) fn send_msg(&mut self, peer: NodeId, local: u64, id: MessageId) -> R<S> {
        match self.hot.held(&self.store, &id).map_err(RelayError::Store)? {
            Some(held) => self.send_held(peer, &held),
            None => {
                if let Some(p) = self.peer(&peer) {
                    p.done.insert(local);
                }
            }
        }
        Ok(())
    }

    pub(super) fn send_held(&mut self, peer: NodeId, held: &hot::Held) {
        let (now, due) = (self.now, self.now.plus_millis(self.cfg.resend_after_ms));
        let Some(p) = self.peer(&peer) else { return };
        if held.env.is_empty() || held.meta.expires <= now {
            // Expired (and perhaps pruned) while in flight: never sent again, done for this peer.
            p.finish(held.meta.local);
            return;
        }
        p.sent(held.meta.local, held.id, held.env.len(), due);
        let frame = crate::wire::encode_msg(&held.env, outgoing_hop(&held.meta));
        self.out.push_back(Output::Send { peer, class: Class::of(held.meta.priority), frame });
    }

    /// Whether `peer` should receive a message: interest routing.
    pub(super) fn needs(&self, peer: &NodeId, m: &MsgMeta) -> bool {
        let Some(p) = self.peers.get(peer) else { return false };
        if m.from == Some(*peer) || m.author == *peer {
            return false;
        }
        // The next hop would refuse it: a relay never passes on what it can tell is refused.
        if outgoing_hop(m) >= MAX_HOPS {
            return false;
        }
        if m.control {
            // Control records are for every node.
            return true;
        }
        match m.channel {
            Some(c) => {
                let entitled = |n: &NodeId| self.membership.is_entitled(&c, m.epoch, n);
                entitled(peer)
                    || (p.role == Role::Hub
                        && p.reach.iter().any(|n| {
                            *n != self.cfg.me && n != &m.author && entitled(n) && Some(*n) != m.from
                        }))
            }
            None => m.recipients.iter().any(|r| {
                *r == *peer
                    || (*r != self.cfg.me
                        && !self.peers.contains_key(r)
                        && (p.reach.contains(r)
                            || (p.role == Role::Hub
                                && self.cfg.role != Role::Hub
                                && self.cfg.configured_peers.contains(peer)
                                && !self.any_peer_reaches(r))))
            }),
        }
    }

    /// Whether `n` is a node this network knows, as far as this node can tell.
    pub(super) fn is_known(&self, n: &NodeId) -> bool {
        *n == self.cfg.me
            || self.seen.contains(n)
            || self.cfg.serves.contains(n)
            || self.any_peer_reaches(n)
            || self.membership.is_member_anywhere(n)
    }

    pub(super) fn any_peer_reaches(&self, r: &NodeId) -> bool {
        self.peers.values().any(|p| p.reach.contains(r))
    }

    pub(super) fn handle_ack(&mut self, peer: NodeId, ids: &[MessageId]) -> R<S> {
        let mut acked = Vec::new();
        for id in ids {
            if let Some(local) = self.hot.local_of(&self.store, id).map_err(RelayError::Store)? {
                let Some(p) = self.peer(&peer) else { return Ok(()) };
                if p.finish(local) {
                    acked.push(*id);
                }
                if !self.parked_at.is_empty() {
                    self.unpark(&peer, local);
                }
            }
        }
        self.advance_cursor(peer, acked)?;
        self.pump(peer)
    }

    pub(super) fn handle_reject(&mut self, peer: NodeId, r: Reject) -> R<S> {
        if let Some(id) = r.id {
            if r.reason.is_final() {
                // The peer will never take it (or already has it): done for this peer.
                return self.handle_ack(peer, &[id]);
            }
            if r.reason == RejectReason::TooEarly {
                // It overtook our hello (or theirs): the peer takes it in a moment, so it is
                // sent again soon rather than after the full resend delay.
                let due = self.now.plus_millis(TOO_EARLY_RESEND_MS);
                if let Some(local) = self.hot.local_of(&self.store, &id).map_err(RelayError::Store)? {
                    if let Some(p) = self.peer(&peer) {
                        p.resend_by(local, due);
                    }
                }
            }
        }
        Ok(())
    }

    /// Moves the cursor over finished positions and notes acknowledged ids; both are written
    /// at the next commit.
    pub(super) fn advance_cursor(&mut self, peer: NodeId, acked: Vec<MessageId>) -> R<S> {
        let old = self.cursor_of(&peer)?;
        let Some(p) = self.peers.get_mut(&peer) else { return Ok(()) };
        let mut c = old;
        while p.done.remove(&(c + 1)) {
            c += 1;
        }
        // Positions at or below the cursor are done by definition (a late duplicate answer or
        // acknowledgement may have marked one again).
        while p.done.first().is_some_and(|l| *l <= c) {
            p.done.pop_first();
        }
        if c != old || !acked.is_empty() {
            let entry = self.dirty_cursors.entry(peer).or_insert((old, Vec::new()));
            entry.0 = c;
            entry.1.extend(acked);
            if self.cursors_due.is_none() {
                self.cursors_due = Some(self.now.plus_millis(CURSOR_LINGER_MS));
            }
        }
        Ok(())
    }

    /// A peer's cursor, including moves not yet written.
    pub(super) fn cursor_of(&mut self, peer: &NodeId) -> Result<u64, RelayError<S::Error>> {
        match self.dirty_cursors.get(peer) {
            Some((c, _)) => Ok(*c),
            None => self.hot.cursor(&self.store, peer).map_err(RelayError::Store),
        }
    }
}

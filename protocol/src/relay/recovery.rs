//! Recovery after a restore (own feed heads from configured peers) and gap filling (`want`,
//! answered within the peer's answer budget).

use super::*;

impl<S: Store> Relay<S> {
    /// A restored peer asks for its own feed heads: send the top message of each of its feeds
    /// we hold, then the heads.
    pub(super) fn answer_recovery(&mut self, peer: NodeId) -> R<S> {
        let heads = self.hot.heads_of(&self.store, &peer).map_err(RelayError::Store)?;
        let mut out = Vec::new();
        let now = self.now;
        for (feed, h) in heads.into_iter().take(crate::wire::MAX_HEADS) {
            if let Some(slot) =
                self.hot.slot(&self.store, &peer, &feed, h.top, &h).map_err(RelayError::Store)?
            {
                if let Some(held) = self.hot.held(&self.store, &slot.id).map_err(RelayError::Store)? {
                    // Budgeted like wants; a head whose message is not sent is still reported,
                    // and the peer asks for the message itself.
                    if self.peer(&peer).is_some_and(|p| p.take_answer(now, held.env.len())) {
                        let frame = crate::wire::encode_msg(&held.env, 0);
                        self.out.push_back(Output::Send { peer, class: Class::Urgent, frame });
                    }
                }
            }
            out.push(FeedHead { seq: h.top, feed, author: peer });
        }
        self.send(peer, Class::Urgent, &Frame::Heads(out));
        Ok(())
    }

    pub(super) fn handle_heads(&mut self, peer: NodeId, heads: &[FeedHead]) -> R<S> {
        // Heads are unsigned claims: only the peers this node is configured to use are
        // believed, or a stranger could claim a huge sequence number and block this node's
        // publishing in that feed for good. Anyone else's heads change nothing.
        if !self.recovering || !self.cfg.configured_peers.contains(&peer) {
            return Ok(());
        }
        let me = self.cfg.me;
        let mut mine = 0;
        for h in heads.iter().filter(|h| h.author == me) {
            mine += 1;
            let floor = self.own_floor.entry(h.feed).or_insert(0);
            *floor = (*floor).max(h.seq);
            // Ask the reporter for what this node lacks of its own feed (a window at a time).
            let top =
                self.hot.head(&self.store, &me, &h.feed).map_err(RelayError::Store)?.map_or(0, |x| x.top);
            if h.seq > top {
                let to = h.seq.min(top + self.cfg.window as u64);
                self.send(
                    peer,
                    Class::Urgent,
                    &Frame::Want(Want { to, feed: h.feed, from: top + 1, author: me }),
                );
            }
        }
        self.recovering = false;
        self.hot.record(Event::Recovered { from: peer, feeds: mine });
        self.out.push_back(Output::Recovered { from: peer });
        let peers: Vec<NodeId> = self.peers.keys().copied().collect();
        for p in peers {
            let hello = Frame::Hello(Hello { v: LINK_VERSION, recovering: false });
            self.send(p, Class::Urgent, &hello);
        }
        Ok(())
    }

    pub(super) fn handle_want(&mut self, peer: NodeId, w: Want) -> R<S> {
        let now = self.now;
        // At most one window per request; replies are not tracked (the requester asks again).
        // A request costs by the range it makes this node look up, not one token flat.
        if w.from > w.to {
            return Ok(());
        }
        let to = w.to.min(w.from.saturating_add(self.cfg.window as u64 - 1));
        let cost = 1 + (to - w.from) / WANT_SEQS_PER_TOKEN;
        if !self.peer(&peer).is_some_and(|p| p.take_requests(now, cost)) {
            return self.refuse(
                peer,
                None,
                RejectReason::RateLimited,
                "over the per-peer request rate".into(),
            );
        }
        let Some(head) = self.hot.head(&self.store, &w.author, &w.feed).map_err(RelayError::Store)? else {
            return Ok(());
        };
        for seq in w.from..=to.min(head.top) {
            let slot =
                self.hot.slot(&self.store, &w.author, &w.feed, seq, &head).map_err(RelayError::Store)?;
            let Some(slot) = slot else { continue };
            let Some(held) = self.hot.held(&self.store, &slot.id).map_err(RelayError::Store)? else {
                continue;
            };
            if held.env.is_empty() {
                // Pruned after it expired.
                continue;
            }
            let meta = &held.meta;
            // This node's own messages leave it only once committed.
            if meta.from.is_none() && !self.hot.is_durable(&held) {
                break;
            }
            let entitled = self.needs(&peer, meta) || meta.from == Some(peer) || w.author == peer;
            if entitled && (meta.expires > self.now || w.author == peer) {
                // What a peer can make this node send is budgeted in bytes: the rest of the
                // range is for a later request.
                if !self.peer(&peer).is_some_and(|p| p.take_answer(now, held.env.len())) {
                    break;
                }
                let frame = crate::wire::encode_msg(&held.env, outgoing_hop(meta));
                self.out.push_back(Output::Send { peer, class: Class::of(meta.priority), frame });
            }
        }
        Ok(())
    }
}

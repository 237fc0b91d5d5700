//! Messages arriving from peers: the cheap refusals first, then verification, the channel and
//! route rules, the feed checks, storage and fan-out.

use super::*;

impl<S: Store> Relay<S> {
    pub(super) fn handle_msg(&mut self, peer: NodeId, m: Msg) -> R<S> {
        // Cheap refusals first: the rate, then a replay of what is held (by an id read without
        // verifying), then the hop count; the signature check comes last.
        let id = Envelope::peek_id(&m.env);
        let now = self.now;
        if !self.peer(&peer).is_some_and(|p| p.take_message(now, m.env.len())) {
            let detail = format!("over the per-peer rate ({} bytes refused)", m.env.len());
            return self.refuse(peer, id, RejectReason::RateLimited, detail);
        }
        if let Some(id) = id {
            if self.damaged.contains_key(&id) {
                return self.repair(peer, id, &m.env);
            }
            if self.hot.holds(&self.store, &id).map_err(RelayError::Store)? {
                // A resend after a lost acknowledgement, or a replay. Answered once the store
                // is durable, like an acknowledgement: a sender takes it as one.
                self.pending_acks.entry(peer).or_default().push(Verdict::Held(id));
                return self.strike(peer, strike_weight(RejectReason::Duplicate, m.hop > 0));
            }
        }
        if m.hop >= MAX_HOPS {
            let detail = format!("hop count {} reached the limit of {MAX_HOPS}", m.hop);
            return self.refuse(peer, id, RejectReason::HopLimit, detail);
        }
        if self.storage_full {
            let detail = "this node's store is full (its size limit or its disk's free-space reserve is reached): offer it again later".to_string();
            return self.refuse(peer, id, RejectReason::StorageFull, detail);
        }
        let env = match Envelope::verify_cached(&m.env, &mut self.keys) {
            Ok(e) => e,
            Err(e) => {
                let reason = match e {
                    EnvelopeError::Payload(_)
                    | EnvelopeError::Malformed(_)
                    | EnvelopeError::NotDeterministic => RejectReason::Malformed,
                    EnvelopeError::TooLarge { .. } => RejectReason::Oversize,
                    _ => RejectReason::Invalid,
                };
                // Named by the id its bytes claim, so that its sender can match the refusal.
                return self.refuse(peer, id, reason, e.to_string());
            }
        };
        let id = env.id();
        if self.hot.holds(&self.store, &id).map_err(RelayError::Store)? {
            // Held, though not in the canonical layout peek_id reads (cannot happen for bytes
            // that verified; kept so a duplicate is never stored twice).
            self.pending_acks.entry(peer).or_default().push(Verdict::Held(id));
            return Ok(());
        }
        let h = env.header();
        // Our own messages we do not hold (learned back after a restore, or a gap filled) are
        // always taken, even expired: they tell us which sequence numbers are used.
        let own = h.author == self.cfg.me;
        if h.expires <= self.now && !own {
            return self.refuse(peer, Some(id), RejectReason::Expired, format!("expired at {}", h.expires));
        }
        // A message "from the future" would outlive the lifetime limit here.
        if h.created > self.now.plus_millis(MAX_CLOCK_SKEW_MS) && !own {
            let detail = format!(
                "created at {}, more than {MAX_CLOCK_SKEW_MS} ms ahead of this node's clock",
                h.created
            );
            return self.refuse(peer, Some(id), RejectReason::Invalid, detail);
        }
        // Whether the peer passed on someone else's message: membership and routes are then
        // refusals it may not have been able to foresee.
        let relayed = h.author != peer;
        // Storage is earned: a direct message must name at least one node this network knows
        // (this node, a peer it has seen, a member it serves, a node a hub announces, a channel
        // member), or junk feeds to made-up recipients would be stored and passed on.
        if let Feed::Direct(to) = &h.feed {
            if !own && !to.iter().any(|s| self.is_known(&s.to)) {
                let detail = format!("none of its {} recipients is a node this network knows", to.len());
                return self.refuse_relayed(peer, Some(id), RejectReason::Unroutable, detail, relayed);
            }
        }
        // A control message carries its record in clear text: the record is checked like the
        // envelope, before anything is stored or passed on.
        if let Err(e) = env.open_control() {
            if matches!(h.feed, Feed::Control(_)) {
                return self.refuse(peer, Some(id), RejectReason::Invalid, e.to_string());
            }
        }
        if matches!(h.feed, Feed::Control(f) if f.kind == crate::control::Kind::ChannelState) {
            let checked = crate::channel::ChannelState::verify(env.sealed_body()).and_then(|v| {
                if v.signer != h.author {
                    let detail =
                        format!("signed by {} but published by {}", v.signer.short(), h.author.short());
                    return Err(crate::channel::StateError::Invalid(detail));
                }
                self.membership.check_state(&v)
            });
            if let Err(e) = checked {
                let reason = match e {
                    crate::channel::StateError::NotOwner { .. } => RejectReason::NotAuthorized,
                    crate::channel::StateError::Full(_) => RejectReason::OverQuota,
                    _ => RejectReason::Invalid,
                };
                return self.refuse(peer, Some(id), reason, e.to_string());
            }
        }
        if let Feed::Channel(c) = &h.feed {
            match self.membership.may_publish(&c.id, c.epoch, &h.author, h.created, self.now) {
                Err(membership::Denied::UnknownChannel) => {
                    let detail = format!("unknown channel {}", c.id.short());
                    return self.refuse_relayed(peer, Some(id), RejectReason::Unroutable, detail, relayed);
                }
                Err(membership::Denied::EpochAhead { head }) => {
                    // Its channel state is on its way: the message is offered again later.
                    let detail = format!(
                        "epoch {} of channel {} is newer than the state held here (epoch {head})",
                        c.epoch,
                        c.id.short()
                    );
                    return self.refuse(peer, Some(id), RejectReason::TooEarly, detail);
                }
                Err(membership::Denied::StaleEpoch { head }) => {
                    let detail = format!(
                        "epoch {} of channel {} was superseded (now epoch {head}) longer ago than the grace window",
                        c.epoch,
                        c.id.short()
                    );
                    return self.refuse_relayed(peer, Some(id), RejectReason::NotAuthorized, detail, relayed);
                }
                Err(membership::Denied::Closed { ends }) => {
                    let detail = format!("channel {} ended at {ends}", c.id.short());
                    return self.refuse_relayed(peer, Some(id), RejectReason::NotAuthorized, detail, relayed);
                }
                Err(membership::Denied::NotMember) => {
                    let detail = format!(
                        "{} may not publish in channel {} (epoch {})",
                        h.author.short(),
                        c.id.short(),
                        c.epoch
                    );
                    return self.refuse_relayed(peer, Some(id), RejectReason::NotAuthorized, detail, relayed);
                }
                Ok(()) => {}
            }
        }
        // Storage is budgeted per author in bytes (checked on a verified author, so nobody can
        // spend another's budget): a junk feed fills its author's budget, not the disk.
        if !own && !self.take_peer_bytes(peer, m.env.len()) {
            let detail = format!(
                "the messages {} passes on have used up the storage this node gives one peer ({} bytes a day)",
                peer.short(),
                self.cfg.peer_bytes_per_day
            );
            return self.refuse_relayed(peer, Some(id), RejectReason::OverQuota, detail, relayed);
        }
        if !own && !self.take_author_bytes(h.author, m.env.len()) {
            let detail = format!(
                "{} has used up the storage this node gives one author ({} bytes a day)",
                h.author.short(),
                self.cfg.author_bytes_per_day
            );
            return self.refuse_relayed(peer, Some(id), RejectReason::OverQuota, detail, relayed);
        }
        let accepted = self.accept(Some(peer), m.hop, &env, &m.env)?;
        if accepted {
            self.pending_acks.entry(peer).or_default().push(Verdict::Stored(id));
        }
        Ok(())
    }

    /// Takes `len` bytes from `author`'s storage budget (authors this node does not know share
    /// one budget, so made-up authors gain nothing); returns whether they were there.
    fn take_author_bytes(&mut self, author: NodeId, len: usize) -> bool {
        let (now, c) = (self.now, &self.cfg);
        let fresh = || link::TokenBucket::new(now, c.author_bytes_per_day / 86_400, c.author_bytes_burst);
        let bucket = if self.is_known(&author) {
            self.author_budgets.entry(author).or_insert_with(fresh)
        } else {
            self.strangers_budget.get_or_insert_with(fresh)
        };
        bucket.take(now, len as u64)
    }

    /// A feed's top message keeps its envelope past its expiry (a restored author learns from
    /// it where its feed stands) and leaves the expiry index: once a newer message tops the
    /// feed, the former top's envelope goes, unless it is in this node's inbox.
    fn prune_former_top(&mut self, author: NodeId, feed: FeedId, head: &HeadRec) -> R<S> {
        let Some(slot) =
            self.hot.slot(&self.store, &author, &feed, head.top, head).map_err(RelayError::Store)?
        else {
            return Ok(());
        };
        let Some(held) = self.hot.held(&self.store, &slot.id).map_err(RelayError::Store)? else {
            return Ok(());
        };
        let m = &held.meta;
        let mine = m.author != self.cfg.me
            && match m.channel {
                Some(c) => self.membership.is_entitled(&c, m.epoch, &self.cfg.me),
                None => m.recipients.contains(&self.cfg.me),
            };
        if m.expires <= self.now && !mine && !held.env.is_empty() {
            self.hot.prune(held.id, m.expires, m.local, true);
        }
        Ok(())
    }

    /// Takes `len` bytes from the storage budget of `peer`, which passes the message on.
    fn take_peer_bytes(&mut self, peer: NodeId, len: usize) -> bool {
        let (now, c) = (self.now, &self.cfg);
        let bucket = self.peer_budgets.entry(peer).or_insert_with(|| {
            link::TokenBucket::new(now, c.peer_bytes_per_day / 86_400, c.peer_bytes_burst)
        });
        bucket.take(now, len as u64)
    }

    /// Feed checks, then store and fan out. Returns whether the message was stored.
    pub(super) fn accept(
        &mut self,
        from: Option<NodeId>,
        hop: u8,
        env: &Envelope,
        bytes: &[u8],
    ) -> Result<bool, RelayError<S::Error>> {
        let h = env.header();
        let (author, feed, seq, id) = (h.author, h.feed.id(), h.seq, env.id());
        let head = self.hot.head(&self.store, &author, &feed).map_err(RelayError::Store)?;
        let head = head.unwrap_or(HeadRec::EMPTY);
        let peer = from.unwrap_or(self.cfg.me);
        let entry = feed::Entry { seq, id, prev: h.prev };
        let verdict = feed::classify(&head, entry, |s| self.hot.slot(&self.store, &author, &feed, s, &head))
            .map_err(RelayError::Store)?;
        let (new, gap) = match verdict {
            // Only sequence numbers this message newly shows to be missing are reported and
            // asked for: one gap is one request, not one per message stored beyond it (a storm
            // the peer's request budget would refuse, with strikes).
            feed::Verdict::Store { head: new, gap } => {
                let fresh = gap.map(|g| (head.top.max(*g.start() - 1) + 1, *g.end())).filter(|(f, t)| f <= t);
                (new, fresh)
            }
            feed::Verdict::Frozen => {
                let detail = "feed frozen after a fork".to_string();
                return self.refuse(peer, Some(id), RejectReason::FeedFrozen, detail).map(|_| false);
            }
            feed::Verdict::Fork(ev) => {
                self.hot.set_head(author, feed, HeadRec { frozen: true, ..head });
                let (at, existing) = (ev.seq, ev.existing);
                self.hot.record_evidence(author, feed, at, existing, bytes.into());
                self.hot.record(Event::Fork { author, seq: at, existing, conflicting: id });
                self.out.push_back(Output::Fork { author, seq: at });
                let detail = format!("seq {at} already holds {}", existing.short());
                return self.refuse(peer, Some(id), RejectReason::Fork, detail).map(|_| false);
            }
            // Held under its id already (the duplicate check before verifying finds it first).
            _ => return Ok(false),
        };
        let (channel, epoch, recipients) = match &h.feed {
            Feed::Channel(c) => (Some(c.id), c.epoch, Vec::new()),
            Feed::Direct(to) => (None, 0, to.iter().map(|s| s.to).collect()),
            Feed::Control(_) => (None, 0, Vec::new()),
        };
        let control = matches!(h.feed, Feed::Control(_));
        let inbox = author != self.cfg.me
            && match channel {
                Some(c) => self.membership.is_entitled(&c, epoch, &self.cfg.me),
                None => recipients.contains(&self.cfg.me),
            };
        let meta = MsgMeta {
            hop,
            seq,
            feed,
            from,
            epoch,
            local: 0,
            control,
            author,
            channel,
            expires: h.expires,
            priority: h.priority,
            recipients,
        };
        let flash = h.priority == Priority::Flash;
        let unrouted: Vec<NodeId> = if self.cfg.role == Role::Hub {
            let me = self.cfg.me;
            let routed = |r: &NodeId| *r == me || self.peers.contains_key(r) || self.any_peer_reaches(r);
            meta.recipients.iter().filter(|r| !routed(r)).copied().collect()
        } else {
            Vec::new()
        };
        let local = self.hot.insert(id, bytes.into(), meta, SlotRec { id, prev: h.prev }, inbox);
        if matches!(h.feed, Feed::Control(f) if f.kind == crate::control::Kind::ChannelState) {
            // Checked before: signed by its author, a move this book takes or holds.
            if let Ok(v) = crate::channel::ChannelState::verify(env.sealed_body()) {
                let record = v.record.clone();
                if let Ok(heads) = self.membership.take_state(v, self.now) {
                    self.hot.write(Write::ChannelState { local, at: self.now, record });
                    for (channel, epoch) in heads {
                        self.hot.record(Event::ChannelState { channel, epoch });
                        self.out.push_back(Output::ChannelHead { channel, epoch });
                    }
                }
            }
        }
        self.park(local, id, unrouted);
        if new.top > head.top {
            self.prune_former_top(author, feed, &head)?;
        }
        self.hot.set_head(author, feed, new);
        self.hot.record(match from {
            None => Event::Authored { id },
            Some(p) => Event::Received { id, from: p },
        });
        if inbox {
            self.hot.record(Event::Delivered { id });
        }
        if let Some((gfrom, gto)) = gap {
            self.hot.record(Event::Gap { author, feed, from: gfrom, to: gto });
        }
        if flash {
            self.flash_top = self.flash_top.map(|top| top.max(local));
        }
        if inbox {
            self.inboxed.push(id);
        }
        if control {
            self.out.push_back(Output::Control { id, record: env.sealed_body().to_vec() });
        }
        if let (Some((gfrom, gto)), Some(p)) = (gap, from) {
            self.out.push_back(Output::Gap { author, feed, from: gfrom, to: gto });
            self.send(p, Class::Urgent, &Frame::Want(Want { to: gto, feed, from: gfrom, author }));
        }
        self.fan_out()?;
        Ok(true)
    }

    /// Offers a newly stored message to every connected peer.
    pub(super) fn fan_out(&mut self) -> R<S> {
        let peers: Vec<NodeId> = self.peers.keys().copied().collect();
        for peer in peers {
            self.pump(peer)?;
        }
        Ok(())
    }
}

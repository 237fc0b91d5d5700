//! Per-peer link state: what is in flight and when it is due again, the budgets a peer spends
//! (messages and bytes it sends, bytes it makes this node send), and the weighted strikes that
//! end the link of an abusive peer. Performs no I/O and never reads the clock.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::Role;
use crate::identity::NodeId;
use crate::ids::MessageId;
use crate::time::Timestamp;
use crate::wire::RejectReason;

/// Strike weight of a refusal that an honest peer can never cause: it fails a check the peer
/// makes itself before sending (a relay verifies what it passes on).
pub(super) const FULL_STRIKE: u32 = 16;
/// Strike weight of a refusal an honest peer causes now and then (a resend after a lost
/// acknowledgement, a message that expired in transit, a fork it could not know about).
pub(super) const LIGHT_STRIKE: u32 = 1;
/// The window over which strikes are counted.
const STRIKE_WINDOW_MS: u64 = 60_000;

/// How much a refusal counts against the peer that sent the refused message. `relayed` is
/// whether the peer passed on someone else's message rather than authoring it.
pub(super) fn strike_weight(reason: RejectReason, relayed: bool) -> u32 {
    match reason {
        RejectReason::Duplicate | RejectReason::Expired | RejectReason::Fork | RejectReason::FeedFrozen => {
            LIGHT_STRIKE
        }
        // Honest traffic causes it a window at a time: messages on the routine stream overtake
        // the `hello` on the urgent one. It costs the peer its budgets instead.
        RejectReason::TooEarly => 0,
        // The receiver's state, not the sender's doing (a relay cannot see another node's
        // quotas or disk).
        RejectReason::OverQuota => LIGHT_STRIKE,
        RejectReason::StorageFull => 0,
        // Membership and routes are configuration that two honest nodes may see differently for
        // a while: the author should know, a relay may not.
        RejectReason::NotAuthorized | RejectReason::Unroutable if relayed => LIGHT_STRIKE,
        _ => FULL_STRIKE,
    }
}

/// A connection to a peer as the duplicate-connection rule sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connection {
    /// When it came up (milliseconds on any clock the caller uses consistently).
    pub since_ms: u64,
    /// Which side dialled it.
    pub dialer: NodeId,
}

/// Whether a new connection to `peer` replaces the one this node (`me`) has. A new connection
/// proves the old one stale (the peer restarted, or lost it), unless both came up within
/// `window_ms` of each other: then both sides dialled at once and both keep the one dialled by
/// the lower NodeId. A dead connection is never kept over a live one.
pub fn keep_new(me: NodeId, peer: NodeId, old: Connection, new: Connection, window_ms: u64) -> bool {
    let together = new.since_ms.saturating_sub(old.since_ms) < window_ms;
    !together || new.dialer == old.dialer || new.dialer == me.min(peer)
}

/// A token bucket: `rate` tokens per second up to `burst`.
#[derive(Debug, Clone)]
pub(super) struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: Timestamp,
}

impl TokenBucket {
    /// A full bucket.
    pub(super) fn new(now: Timestamp, rate_per_sec: u64, burst: u64) -> Self {
        TokenBucket { rate: rate_per_sec as f64, burst: burst as f64, tokens: burst as f64, at: now }
    }

    /// Takes `n` tokens if they are there.
    pub(super) fn take(&mut self, now: Timestamp, n: u64) -> bool {
        let elapsed = now.as_millis().saturating_sub(self.at.as_millis()) as f64 / 1000.0;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.at = self.at.max(now);
        if self.tokens >= n as f64 {
            self.tokens -= n as f64;
            true
        } else {
            false
        }
    }
}

/// One message sent to the peer and not yet acknowledged.
#[derive(Debug, Clone, Copy)]
pub(super) struct InFlight {
    /// Its id.
    pub(super) id: MessageId,
    /// When it is due for a resend.
    pub(super) due: Timestamp,
    /// How often it was sent.
    pub(super) sends: u32,
    /// Its envelope length.
    pub(super) len: usize,
}

/// The protocol state of the link to one peer.
#[derive(Debug)]
pub(super) struct Link {
    /// The peer's role, from its certificate.
    pub(super) role: Role,
    /// Whether the peer's Hello arrived.
    pub(super) hello: bool,
    /// Whether the peer's Reach arrived: routing towards it depends on what it reaches, so
    /// nothing is sent to it before (a Hello alone, e.g. a stale one, is not enough).
    pub(super) reach_known: bool,
    /// Nodes the peer can deliver to (itself, and for hubs the members it serves), as believed.
    pub(super) reach: BTreeSet<NodeId>,
    /// Whether the certificates a hub peer vouches with were checked (always, for links that
    /// are not between two hubs): until then nothing is routed to it, since what it needs
    /// depends on whom it serves.
    pub(super) vouch_settled: bool,
    /// What its last `reach` claimed.
    pub(super) claimed: Vec<NodeId>,
    /// Members the shell found vouched for by certificates naming this (hub) peer's region.
    pub(super) vouched: BTreeSet<NodeId>,
    /// Next log position to consider.
    pub(super) next: u64,
    /// Log positions above the cursor that are finished (acknowledged or not for this peer).
    pub(super) done: BTreeSet<u64>,
    /// Whether this link already answered a recovery request (once per link).
    pub(super) recovery_answered: bool,
    /// The highest log position of a flash message considered for this peer.
    pub(super) flash_seen: u64,
    in_flight: BTreeMap<u64, InFlight>,
    /// Resend deadlines in order, so the next wake-up is found in O(log n).
    deadlines: BTreeSet<(Timestamp, u64)>,
    in_flight_bytes: usize,
    standing: Standing,
}

/// What a peer has left of its budgets, and its strikes: they belong to the peer, not to the
/// link, and carry over to its next link, so a reconnection does not start them afresh.
#[derive(Debug, Clone)]
pub(super) struct Standing {
    /// Messages the peer may send.
    msgs: TokenBucket,
    /// Envelope bytes the peer may send.
    bytes_in: TokenBucket,
    /// Bytes the peer may make this node send in answer to requests (wants, recovery).
    bytes_asked: TokenBucket,
    /// Control frames (hello, reach, ack, reject, heads, crl) the peer may send.
    control: TokenBucket,
    /// Refusals within the strike window: when, and their weight.
    strikes: VecDeque<(Timestamp, u32)>,
    strike_sum: u32,
}

/// The budgets of one link, from the relay's configuration.
#[derive(Debug, Clone, Copy)]
pub(super) struct Budgets {
    /// Messages per second, sustained.
    pub(super) msgs_per_sec: u64,
    /// Messages above the sustained rate.
    pub(super) msgs_burst: u64,
    /// Envelope bytes per second the peer may send, sustained.
    pub(super) bytes_per_sec: u64,
    /// Envelope bytes above the sustained rate.
    pub(super) bytes_burst: u64,
    /// Bytes per second the peer may make this node send in answer to its requests.
    pub(super) asked_bytes_per_sec: u64,
    /// Answer bytes above the sustained rate.
    pub(super) asked_bytes_burst: u64,
    /// Control frames per second, sustained.
    pub(super) control_per_sec: u64,
    /// Control frames above the sustained rate.
    pub(super) control_burst: u64,
}

impl Link {
    /// A new link starting at cursor `next`.
    pub(super) fn new(now: Timestamp, peer: NodeId, role: Role, next: u64, b: Budgets) -> Self {
        Link {
            role,
            hello: false,
            reach_known: false,
            reach: BTreeSet::from([peer]),
            claimed: Vec::new(),
            vouch_settled: true,
            vouched: BTreeSet::new(),
            next,
            done: BTreeSet::new(),
            recovery_answered: false,
            flash_seen: next,
            in_flight: BTreeMap::new(),
            deadlines: BTreeSet::new(),
            in_flight_bytes: 0,
            standing: Standing {
                msgs: TokenBucket::new(now, b.msgs_per_sec, b.msgs_burst),
                bytes_in: TokenBucket::new(now, b.bytes_per_sec, b.bytes_burst),
                bytes_asked: TokenBucket::new(now, b.asked_bytes_per_sec, b.asked_bytes_burst),
                control: TokenBucket::new(now, b.control_per_sec, b.control_burst),
                strikes: VecDeque::new(),
                strike_sum: 0,
            },
        }
    }

    /// A link for a peer whose previous link left `standing`.
    pub(super) fn resume(
        now: Timestamp,
        peer: NodeId,
        role: Role,
        next: u64,
        b: Budgets,
        standing: Standing,
    ) -> Self {
        Link { standing, ..Link::new(now, peer, role, next, b) }
    }

    /// Whether routing towards the peer can be decided: its reach arrived, and between hubs its
    /// vouching was checked.
    pub(super) fn routable(&self) -> bool {
        self.reach_known && self.vouch_settled
    }

    /// What this link leaves for the peer's next one.
    pub(super) fn into_standing(self) -> Standing {
        self.standing
    }

    /// Spends the budget for one received message of `len` bytes; false when over the rate.
    pub(super) fn take_message(&mut self, now: Timestamp, len: usize) -> bool {
        // Both budgets must allow it; a refused message costs no byte tokens.
        if !self.standing.msgs.take(now, 1) {
            return false;
        }
        self.standing.bytes_in.take(now, len as u64)
    }

    /// Spends `n` request tokens (a want costs by its range); false when over the rate.
    pub(super) fn take_requests(&mut self, now: Timestamp, n: u64) -> bool {
        self.standing.msgs.take(now, n)
    }

    /// Spends the budget for one control frame; false when over the rate.
    pub(super) fn take_control(&mut self, now: Timestamp) -> bool {
        self.standing.control.take(now, 1)
    }

    /// Spends `len` bytes of what the peer may make this node send; false when spent.
    pub(super) fn take_answer(&mut self, now: Timestamp, len: usize) -> bool {
        self.standing.bytes_asked.take(now, len as u64)
    }

    /// Counts a refusal of `weight`; true when the peer is now over `limit` full strikes within
    /// the strike window and must be disconnected as abusive.
    pub(super) fn strike(&mut self, now: Timestamp, weight: u32, limit: u32) -> bool {
        self.standing.strikes.push_back((now, weight));
        self.standing.strike_sum = self.standing.strike_sum.saturating_add(weight);
        while let Some(&(t, w)) = self.standing.strikes.front() {
            if now.as_millis().saturating_sub(t.as_millis()) <= STRIKE_WINDOW_MS {
                break;
            }
            self.standing.strikes.pop_front();
            self.standing.strike_sum -= w;
        }
        self.standing.strike_sum > limit.saturating_mul(FULL_STRIKE)
    }

    /// Whether another message may be put in flight: fewer than `window` messages and
    /// `window_bytes` bytes are (one message always fits, however large).
    pub(super) fn has_room(&self, window: usize, window_bytes: usize) -> bool {
        self.in_flight.is_empty() || (self.in_flight.len() < window && self.in_flight_bytes < window_bytes)
    }

    /// Whether log position `local` is in flight.
    pub(super) fn is_in_flight(&self, local: u64) -> bool {
        self.in_flight.contains_key(&local)
    }

    /// Records a send of `local`, due again at `due`; returns how often it was sent.
    pub(super) fn sent(&mut self, local: u64, id: MessageId, len: usize, due: Timestamp) -> u32 {
        let sends = match self.in_flight.remove(&local) {
            Some(old) => {
                self.deadlines.remove(&(old.due, local));
                self.in_flight_bytes -= old.len;
                old.sends + 1
            }
            None => 1,
        };
        self.in_flight.insert(local, InFlight { id, due, sends, len });
        self.deadlines.insert((due, local));
        self.in_flight_bytes += len;
        sends
    }

    /// Moves the resend of `local`, if it is in flight, to `due` when that is sooner.
    pub(super) fn resend_by(&mut self, local: u64, due: Timestamp) {
        if let Some(f) = self.in_flight.get_mut(&local) {
            if due < f.due {
                self.deadlines.remove(&(f.due, local));
                f.due = due;
                self.deadlines.insert((due, local));
            }
        }
    }

    /// The peer acknowledged `local` (or it is finished otherwise): true if it was in flight.
    pub(super) fn finish(&mut self, local: u64) -> bool {
        self.done.insert(local);
        match self.in_flight.remove(&local) {
            Some(f) => {
                self.deadlines.remove(&(f.due, local));
                self.in_flight_bytes -= f.len;
                true
            }
            None => false,
        }
    }

    /// Messages due for a resend at `now`, oldest deadline first.
    pub(super) fn due(&self, now: Timestamp) -> Vec<(u64, InFlight)> {
        self.deadlines
            .iter()
            .take_while(|(t, _)| *t <= now)
            .filter_map(|(_, l)| self.in_flight.get(l).map(|f| (*l, *f)))
            .collect()
    }

    /// The next resend deadline.
    pub(super) fn next_deadline(&self) -> Option<Timestamp> {
        self.deadlines.first().map(|(t, _)| *t)
    }

    /// Messages in flight.
    #[cfg(test)]
    fn in_flight(&self) -> usize {
        self.in_flight.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_connection_replaces_a_stale_one_and_simultaneous_dials_agree() {
        let x = crate::identity::IdentityKey::from_seed(&[1; 32]).node_id();
        let y = crate::identity::IdentityKey::from_seed(&[2; 32]).node_id();
        let (lo, hi) = (x.min(y), x.max(y));
        let at = |since_ms, dialer| Connection { since_ms, dialer };
        // Long after the old one: the old one is stale, whoever dialled.
        assert!(keep_new(lo, hi, at(0, lo), at(60_000, hi), 10_000));
        assert!(keep_new(hi, lo, at(0, lo), at(60_000, hi), 10_000));
        // Both dialled at once: both sides keep the one the lower NodeId dialled.
        assert!(!keep_new(lo, hi, at(0, lo), at(5, hi), 10_000));
        assert!(!keep_new(hi, lo, at(0, lo), at(5, hi), 10_000));
        assert!(keep_new(lo, hi, at(0, hi), at(5, lo), 10_000));
        assert!(keep_new(hi, lo, at(0, hi), at(5, lo), 10_000));
        // The same side dialled again: its new connection wins.
        assert!(keep_new(lo, hi, at(0, hi), at(5, hi), 10_000));
    }

    fn link() -> Link {
        let peer = crate::identity::IdentityKey::from_seed(&[7; 32]).node_id();
        let b = Budgets {
            msgs_per_sec: 10,
            msgs_burst: 20,
            bytes_per_sec: 1_000,
            bytes_burst: 4_000,
            asked_bytes_per_sec: 1_000,
            asked_bytes_burst: 2_000,
            control_per_sec: 10,
            control_burst: 20,
        };
        Link::new(Timestamp(0), peer, Role::Member, 0, b)
    }

    #[test]
    fn token_bucket_refills_at_its_rate_up_to_its_burst() {
        let mut b = TokenBucket::new(Timestamp(0), 10, 5);
        assert!((0..5).all(|_| b.take(Timestamp(0), 1)));
        assert!(!b.take(Timestamp(0), 1));
        assert!(b.take(Timestamp(100), 1), "one token after 100 ms at 10/s");
        assert!(!b.take(Timestamp(100), 1));
        assert!(!b.take(Timestamp(100_000), 6), "never more than the burst");
    }

    #[test]
    fn messages_spend_both_the_count_and_the_byte_budget() {
        let mut l = link();
        assert!(l.take_message(Timestamp(0), 3_000));
        assert!(!l.take_message(Timestamp(0), 3_000), "over the byte burst");
        assert!(l.take_message(Timestamp(0), 500));
    }

    #[test]
    fn answers_are_budgeted_in_bytes() {
        let mut l = link();
        assert!(l.take_answer(Timestamp(0), 1_500));
        assert!(!l.take_answer(Timestamp(0), 1_500));
        assert!(l.take_answer(Timestamp(2_000), 1_500), "refilled after two seconds");
    }

    #[test]
    fn light_strikes_weigh_a_sixteenth_and_expire_after_a_minute() {
        let mut l = link();
        // Limit 2 full strikes = 32 units: 32 light strikes are tolerated, the 33rd is not.
        assert!((0..32).all(|_| !l.strike(Timestamp(0), LIGHT_STRIKE, 2)));
        assert!(l.strike(Timestamp(0), LIGHT_STRIKE, 2));
        let mut l = link();
        assert!(!l.strike(Timestamp(0), FULL_STRIKE, 2));
        assert!(!l.strike(Timestamp(0), FULL_STRIKE, 2));
        assert!(!l.strike(Timestamp(60_001), FULL_STRIKE, 2), "the first two expired");
        assert!(!l.strike(Timestamp(60_001), FULL_STRIKE, 2));
        assert!(l.strike(Timestamp(60_001), FULL_STRIKE, 2));
    }

    #[test]
    fn strike_weights_follow_who_could_have_prevented_the_refusal() {
        assert_eq!(strike_weight(RejectReason::Invalid, true), FULL_STRIKE);
        assert_eq!(strike_weight(RejectReason::HopLimit, true), FULL_STRIKE);
        assert_eq!(strike_weight(RejectReason::Duplicate, false), LIGHT_STRIKE);
        assert_eq!(strike_weight(RejectReason::NotAuthorized, false), FULL_STRIKE);
        assert_eq!(strike_weight(RejectReason::NotAuthorized, true), LIGHT_STRIKE);
    }

    #[test]
    fn in_flight_is_bounded_by_count_and_bytes_and_resends_come_due_in_order() {
        let mut l = link();
        let id = MessageId([1; 32]);
        assert!(l.has_room(2, 100));
        assert_eq!(l.sent(1, id, 150, Timestamp(30)), 1);
        assert!(!l.has_room(2, 100), "over the byte window");
        assert!(l.has_room(2, 1_000));
        l.sent(2, id, 10, Timestamp(20));
        assert!(!l.has_room(2, 1_000), "over the count window");
        assert_eq!(l.next_deadline(), Some(Timestamp(20)));
        assert_eq!(l.due(Timestamp(25)).iter().map(|(p, _)| *p).collect::<Vec<_>>(), [2]);
        assert_eq!(l.sent(2, id, 10, Timestamp(50)), 2, "a resend counts");
        assert_eq!(l.next_deadline(), Some(Timestamp(30)));
        assert!(l.finish(1));
        assert!(!l.finish(1));
        assert_eq!(l.in_flight(), 1);
        assert_eq!(l.next_deadline(), Some(Timestamp(50)));
    }
}

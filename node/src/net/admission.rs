//! Who may take a connection slot, and when. Handshakes are rate-limited and capped; a
//! connection is *pending* until its first exchange completed (streams opened both ways) within
//! the handshake deadline, and one certificate holds only a few pending connections; only then
//! does it count against `max_peers`. A peer disconnected as abusive is refused for a growing
//! period. Refusals are logged at a bounded rate.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use godwit_protocol::identity::NodeId;
use tracing::warn;

/// Pending connections one certificate may hold at once.
pub(super) const MAX_PENDING_PER_NODE: usize = 3;
/// Handshakes in progress at once.
const MAX_HANDSHAKES: usize = 256;
/// New handshakes per second, sustained, and the burst above it.
const HANDSHAKES_PER_SEC: f64 = 50.0;
const HANDSHAKE_BURST: f64 = 200.0;
/// The first refusal period of a peer dropped as abusive; it doubles with every drop, up to
/// `MAX_BAN`, and is forgotten after a quiet `MAX_BAN`.
const FIRST_BAN: Duration = Duration::from_secs(10);
const MAX_BAN: Duration = Duration::from_secs(3_600);
/// Refused-connection warnings per window; the rest are counted and summarised.
const LOG_WARNINGS: u32 = 10;
const LOG_WINDOW: Duration = Duration::from_secs(10);

/// Connection admission state, shared by the accept and dial tasks and the core.
#[derive(Debug)]
pub(super) struct Admission {
    max_peers: usize,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    tokens: f64,
    refilled: Instant,
    handshakes: usize,
    established: usize,
    pending: HashMap<NodeId, usize>,
    bans: HashMap<NodeId, Ban>,
    /// Nodes the operator blocked (refused until unblocked).
    blocked: std::collections::BTreeSet<NodeId>,
    log_window: Instant,
    logged: u32,
    suppressed: u32,
}

#[derive(Debug, Clone, Copy)]
struct Ban {
    until: Instant,
    period: Duration,
}

impl Admission {
    pub(super) fn new(max_peers: usize) -> Arc<Self> {
        let now = Instant::now();
        Arc::new(Admission {
            max_peers,
            state: Mutex::new(State {
                tokens: HANDSHAKE_BURST,
                refilled: now,
                handshakes: 0,
                established: 0,
                pending: HashMap::new(),
                bans: HashMap::new(),
                blocked: std::collections::BTreeSet::new(),
                log_window: now,
                logged: 0,
                suppressed: 0,
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the counters inconsistent in a way that
        // matters more than refusing all connections would.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Admits a new handshake, within the rate and the number in progress.
    pub(super) fn handshake(self: &Arc<Self>, now: Instant) -> Result<Handshake, &'static str> {
        let mut s = self.lock();
        s.tokens = (s.tokens + now.duration_since(s.refilled).as_secs_f64() * HANDSHAKES_PER_SEC)
            .min(HANDSHAKE_BURST);
        s.refilled = now;
        if s.handshakes >= MAX_HANDSHAKES {
            return Err("too many handshakes in progress");
        }
        if s.tokens < 1.0 {
            return Err("over the handshake rate");
        }
        if s.established >= self.max_peers {
            return Err("at the maximum number of peers");
        }
        s.tokens -= 1.0;
        s.handshakes += 1;
        Ok(Handshake(self.clone()))
    }

    /// Admits an authenticated connection of `node` as pending: not banned, and fewer than
    /// [`MAX_PENDING_PER_NODE`] of its connections pending.
    pub(super) fn pending(self: &Arc<Self>, now: Instant, node: NodeId) -> Result<Pending, String> {
        let mut s = self.lock();
        if s.blocked.contains(&node) {
            return Err("blocked by this node's operator".into());
        }
        if let Some(b) = s.bans.get(&node).copied() {
            if b.until > now {
                let secs = b.until.duration_since(now).as_millis().div_ceil(1000);
                return Err(format!("disconnected as abusive; refused for another {secs} s"));
            }
        }
        let n = s.pending.entry(node).or_insert(0);
        if *n >= MAX_PENDING_PER_NODE {
            return Err(format!("more than {MAX_PENDING_PER_NODE} pending connections from this node"));
        }
        *n += 1;
        Ok(Pending { admission: self.clone(), node, done: false })
    }

    /// A pending connection completed its first exchange: it now takes a slot, if one is free.
    pub(super) fn establish(self: &Arc<Self>, mut p: Pending) -> Result<Established, &'static str> {
        let mut s = self.lock();
        p.release(&mut s);
        if s.established >= self.max_peers {
            return Err("at the maximum number of peers");
        }
        s.established += 1;
        Ok(Established(self.clone()))
    }

    /// Refuses `node` from now on (`blocked`), or no longer.
    pub(super) fn set_blocked(&self, node: NodeId, blocked: bool) {
        let mut s = self.lock();
        if blocked {
            s.blocked.insert(node);
        } else {
            s.blocked.remove(&node);
        }
    }

    /// `node` was disconnected as abusive: refuse it for a period that doubles with every drop.
    pub(super) fn ban(&self, now: Instant, node: NodeId) {
        let mut s = self.lock();
        let period = match s.bans.get(&node) {
            // A peer quiet for longer than the longest period starts again from the first.
            Some(b) if now < b.until + MAX_BAN => (b.period * 2).min(MAX_BAN),
            _ => FIRST_BAN,
        };
        s.bans.insert(node, Ban { until: now + period, period });
        s.bans.retain(|_, b| now < b.until + MAX_BAN);
    }

    /// Logs a refused connection at `warn`, at most [`LOG_WARNINGS`] per window; the rest are
    /// counted and reported in one line when the next window opens.
    pub(super) fn log_refusal(&self, now: Instant, remote: SocketAddr, reason: &str) {
        let mut s = self.lock();
        if now.duration_since(s.log_window) >= LOG_WINDOW {
            if s.suppressed > 0 {
                warn!(suppressed = s.suppressed, "more connections were refused in the last {LOG_WINDOW:?}");
            }
            s.log_window = now;
            s.logged = 0;
            s.suppressed = 0;
        }
        if s.logged < LOG_WARNINGS {
            s.logged += 1;
            warn!(%remote, "refused a connection: {reason}");
        } else {
            s.suppressed += 1;
        }
    }

    /// Connections holding a slot.
    #[cfg(test)]
    fn established(&self) -> usize {
        self.lock().established
    }
}

/// A handshake in progress; released when dropped.
#[derive(Debug)]
pub(super) struct Handshake(Arc<Admission>);

impl Drop for Handshake {
    fn drop(&mut self) {
        self.0.lock().handshakes -= 1;
    }
}

/// A pending connection of one node; released when dropped or established.
#[derive(Debug)]
pub(super) struct Pending {
    admission: Arc<Admission>,
    node: NodeId,
    done: bool,
}

impl Pending {
    fn release(&mut self, s: &mut State) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        if let Some(n) = s.pending.get_mut(&self.node) {
            *n -= 1;
            if *n == 0 {
                s.pending.remove(&self.node);
            }
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        let admission = self.admission.clone();
        self.release(&mut admission.lock());
    }
}

/// An established connection's slot; released when dropped.
#[derive(Debug)]
pub(super) struct Established(Arc<Admission>);

impl Drop for Established {
    fn drop(&mut self) {
        self.0.lock().established -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One instant for a whole test: the rates are checked without the wall clock moving.
    fn t0() -> Instant {
        static T0: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        *T0.get_or_init(Instant::now)
    }

    fn node(n: u8) -> NodeId {
        godwit_protocol::identity::IdentityKey::from_seed(&[n; 32]).node_id()
    }

    #[test]
    fn a_node_holds_at_most_a_few_pending_connections() {
        let a = Admission::new(10);
        let held: Vec<Pending> =
            (0..MAX_PENDING_PER_NODE).map(|_| a.pending(t0(), node(1)).unwrap()).collect();
        assert!(a.pending(t0(), node(1)).unwrap_err().contains("pending connections"));
        assert!(a.pending(t0(), node(2)).is_ok(), "other nodes are not affected");
        drop(held);
        assert!(a.pending(t0(), node(1)).is_ok());
    }

    #[test]
    fn only_established_connections_take_slots() {
        let a = Admission::new(1);
        let p1 = a.pending(t0(), node(1)).unwrap();
        let p2 = a.pending(t0(), node(2)).unwrap();
        let e1 = a.establish(p1).unwrap();
        assert_eq!(a.established(), 1);
        assert_eq!(a.establish(p2).unwrap_err(), "at the maximum number of peers");
        drop(e1);
        assert_eq!(a.established(), 0);
        let e = a.establish(a.pending(t0(), node(2)).unwrap()).unwrap();
        drop(e);
    }

    #[test]
    fn handshakes_are_rate_limited() {
        let a = Admission::new(10_000);
        let held: Vec<Handshake> = std::iter::from_fn(|| a.handshake(t0()).ok()).take(1_000).collect();
        assert_eq!(held.len(), HANDSHAKE_BURST as usize);
        assert_eq!(a.handshake(t0()).unwrap_err(), "over the handshake rate");
    }

    #[test]
    fn an_abusive_peer_is_refused_for_a_growing_period() {
        let a = Admission::new(10);
        a.ban(t0(), node(1));
        let first = a.pending(t0(), node(1)).unwrap_err();
        assert!(first.contains("abusive") && first.contains("10 s"), "{first}");
        a.ban(t0(), node(1));
        assert!(a.pending(t0(), node(1)).unwrap_err().contains("20 s"));
        assert!(a.pending(t0(), node(2)).is_ok());
    }
}

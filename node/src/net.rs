//! The running node: a QUIC endpoint (accepting and dialling peers), one task per connection,
//! and the relay core on its own thread with the sled store. The core is the only owner of the
//! relay state; connection tasks talk to it over channels.
//!
//! Per connection each side opens three unidirectional streams, one per priority class, with
//! QUIC stream priorities set so that urgent traffic (control and flash) is sent before
//! immediate, and immediate before routine. Each stream carries length-prefixed frames.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use godwit_protocol::content::{Body, PersonalData, Tlp};
use godwit_protocol::crypto::EpochKey;
use godwit_protocol::envelope::Priority;
use godwit_protocol::frame::{FRAME_HEADER_LEN, frame_len};
use godwit_protocol::identity::{EncryptionPublicKey, IdentityKey, NodeId};
use godwit_protocol::ids::{ChannelId, MessageId};
use godwit_protocol::message::Audience;
use godwit_protocol::relay::{Class, Output, Publication, Relay, RelayConfig, Role, Store};
use godwit_protocol::wire::{Frame, Reject, RejectReason};
use godwit_protocol::{LIMITS, Timestamp};
use rand_core::{OsRng, RngCore};
use rustls_pki_types::CertificateRevocationListDer;
use tokio::sync::{broadcast, mpsc as tmpsc, oneshot};
use tracing::{Instrument, debug, error, info, info_span, warn};

use crate::certs::{self, PeerCert};
use crate::store::SledStore;
use crate::tls::{self, NetLimits, TlsMaterial};

/// A peer this node dials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerSpec {
    /// The peer's NodeId: the pin its certificate must match.
    pub node_id: NodeId,
    /// Where it listens.
    pub address: SocketAddr,
}

/// Everything a node needs to run.
#[derive(Debug)]
pub struct NodeSpec {
    /// The identity key.
    pub identity: IdentityKey,
    /// Certificates and CRL.
    pub tls: TlsMaterial,
    /// Where to listen.
    pub listen: SocketAddr,
    /// The store directory.
    pub data_dir: PathBuf,
    /// Relay configuration (role, channels, served members).
    pub relay: RelayConfig,
    /// Peers to dial.
    pub peers: Vec<PeerSpec>,
    /// Transport limits.
    pub limits: NetLimits,
}

/// Something that happened, for tests, the demo and operators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeEvent {
    /// A peer connection is up.
    PeerUp(NodeId),
    /// A peer connection went down.
    PeerDown(NodeId),
    /// A message was delivered into the inbox.
    Delivered(MessageId),
    /// A peer acknowledged messages (they are durably stored there).
    Acked(NodeId, usize),
    /// A message from a peer was refused.
    Refused {
        /// The peer.
        peer: NodeId,
        /// Why.
        reason: RejectReason,
        /// Detail.
        detail: String,
    },
    /// A connection attempt was refused at the TLS level.
    ConnectionRefused {
        /// The remote address.
        remote: SocketAddr,
        /// Why, for the operator.
        reason: String,
    },
    /// A connection was closed by this node.
    Closed {
        /// The peer.
        peer: NodeId,
        /// Why.
        reason: String,
    },
    /// A feed gap was detected.
    Gap {
        /// The author.
        author: NodeId,
        /// First missing seq.
        from: u64,
        /// Last missing seq.
        to: u64,
    },
    /// Recovery after a restore finished.
    Recovered,
    /// A newer revocation list was installed (its CRL number).
    CrlInstalled(u64),
}

/// Who a message is for, owned (for [`Node::publish`]).
#[derive(Debug, Clone)]
pub enum Target {
    /// A channel.
    Channel {
        /// The channel.
        id: ChannelId,
        /// The epoch.
        epoch: u64,
        /// Its key.
        key: EpochKey,
    },
    /// Named recipients.
    Direct(Vec<(NodeId, EncryptionPublicKey)>),
}

/// A message to author.
#[derive(Debug, Clone)]
pub struct PublishRequest {
    /// Audience.
    pub target: Target,
    /// Urgency.
    pub priority: Priority,
    /// Marking.
    pub marking: Tlp,
    /// Lifetime in milliseconds.
    pub ttl_ms: u64,
    /// Content.
    pub body: Body,
    /// Personal data and its recipients.
    pub personal: Option<(PersonalData, Vec<(NodeId, EncryptionPublicKey)>)>,
}

enum ConnCmd {
    Frame(Class, Vec<u8>),
    Close(String),
}

/// Frames queued towards one connection's writer before the peer counts as not reading.
const CONN_QUEUE: usize = 4096;
/// Frames read from one connection that may wait for the core (backpressure into QUIC).
const CONN_CREDIT: usize = 256;
/// Streams a peer may open over a connection's life (3 are used).
const MAX_STREAMS_PER_CONN: usize = 16;

/// The core's handle on one connection.
#[derive(Debug)]
struct ConnHandle {
    id: u64,
    serial: Vec<u8>,
    dialer: NodeId,
    conn: quinn::Connection,
    tx: tmpsc::Sender<ConnCmd>,
}

impl ConnHandle {
    /// Queues a frame; a peer whose queue is full is not reading and is disconnected.
    fn send(&self, class: Class, frame: Vec<u8>) {
        if self.tx.try_send(ConnCmd::Frame(class, frame)).is_err() {
            self.conn.close(6u32.into(), b"peer is not reading");
        }
    }
    fn close(&self, reason: &str) {
        let _ = self.tx.try_send(ConnCmd::Close(reason.to_owned()));
        self.conn.close(2u32.into(), reason.as_bytes());
    }
}

enum CoreMsg {
    Connected { peer: PeerCert, handle: ConnHandle },
    Disconnected { peer: NodeId, conn: u64 },
    Frame { peer: NodeId, conn: u64, bytes: Vec<u8>, credit: Arc<tokio::sync::Semaphore> },
    Refuse { peer: NodeId, conn: u64, reason: RejectReason, detail: String },
    Publish(Box<PublishRequest>, oneshot::Sender<Result<MessageId, String>>),
    Inbox(oneshot::Sender<Vec<MessageId>>),
    Envelope(MessageId, oneshot::Sender<Option<Vec<u8>>>),
    Revoke(Vec<Vec<u8>>),
    Shutdown(oneshot::Sender<()>),
    Kill,
}

/// A running node.
#[derive(Debug)]
pub struct Node {
    id: NodeId,
    addr: SocketAddr,
    endpoint: quinn::Endpoint,
    core: mpsc::Sender<CoreMsg>,
    events: broadcast::Sender<NodeEvent>,
    shared: Arc<Shared>,
    core_thread: Option<std::thread::JoinHandle<()>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

#[derive(Debug)]
struct Shared {
    me: NodeId,
    limits: NetLimits,
    client: Mutex<quinn::ClientConfig>,
    tls: Mutex<TlsMaterial>,
    conn_ids: AtomicU64,
    active: AtomicUsize,
    connected: Mutex<BTreeSet<NodeId>>,
    addresses: Mutex<HashMap<NodeId, SocketAddr>>,
}

impl Node {
    /// Opens the store, binds the endpoint and starts accepting and dialling.
    ///
    /// # Errors
    /// When the store, the TLS material or the socket cannot be set up; the message says which.
    pub async fn start(spec: NodeSpec) -> Result<Node> {
        let me = spec.identity.node_id();
        let (store, report) = SledStore::open(&spec.data_dir.join("store"))
            .with_context(|| format!("cannot open the store in {}", spec.data_dir.display()))?;
        if !report.damage.is_empty() {
            bail!(
                "the store in {} is damaged ({} problems, first: {}); restore it from a backup",
                spec.data_dir.display(),
                report.damage.len(),
                report.damage[0]
            );
        }
        info!(messages = report.messages, journal = report.journal, "store checked");
        let mut spec = spec;
        if let Ok(saved) = std::fs::read(spec.data_dir.join("crl.der")) {
            let current = spec.tls.crl.as_ref().and_then(|c| certs::crl_info(c).ok()).map_or(0, |(n, _)| n);
            match tls::check_crl(&spec.tls, &saved, &me) {
                Ok((n, _)) if n > current => {
                    info!(crl_number = n, "using the newer revocation list received from a peer");
                    spec.tls.crl = Some(CertificateRevocationListDer::from(saved));
                }
                Ok(_) => {}
                Err(e) => warn!("ignoring the saved revocation list: {e}"),
            }
        }
        let server = tls::server_config(&spec.tls, &spec.limits).context("TLS server configuration")?;
        let client = tls::client_config(&spec.tls, &spec.limits).context("TLS client configuration")?;
        let mut endpoint = quinn::Endpoint::server(server, spec.listen)
            .with_context(|| format!("cannot listen on {}", spec.listen))?;
        endpoint.set_default_client_config(client.clone());
        let addr = endpoint.local_addr()?;
        let (events, _) = broadcast::channel(4096);
        let (core_tx, core_rx) = mpsc::channel();
        let shared = Arc::new(Shared {
            me,
            limits: spec.limits.clone(),
            client: Mutex::new(client),
            tls: Mutex::new(spec.tls.clone()),
            conn_ids: AtomicU64::new(1),
            active: AtomicUsize::new(0),
            connected: Mutex::new(BTreeSet::new()),
            addresses: Mutex::new(spec.peers.iter().map(|p| (p.node_id, p.address)).collect()),
        });
        let mut relay_cfg = spec.relay;
        relay_cfg.window = spec.limits.window;
        relay_cfg.rate_per_sec = spec.limits.rate_per_sec;
        relay_cfg.rate_burst = spec.limits.rate_burst;
        relay_cfg.abuse_limit = spec.limits.abuse_limit;
        let (crl_tx, crl_rx) = tmpsc::unbounded_channel();
        let core = Core {
            crl_tx,
            relay: Relay::new(relay_cfg, store),
            key: spec.identity,
            conns: HashMap::new(),
            events: events.clone(),
            shared: shared.clone(),
        };
        let core_thread = std::thread::Builder::new()
            .name(format!("godwit-core-{}", me.short()))
            .spawn(move || core.run(core_rx))
            .context("cannot start the relay thread")?;
        let mut tasks = Vec::new();
        let crl_file = spec.data_dir.join("crl.der");
        let (ep, c, ev, sh) = (endpoint.clone(), core_tx.clone(), events.clone(), shared.clone());
        tasks.push(tokio::spawn(crl_loop(crl_rx, ep, c, ev, sh, crl_file)));
        let (ep, c, ev, sh) = (endpoint.clone(), core_tx.clone(), events.clone(), shared.clone());
        tasks.push(tokio::spawn(
            accept_loop(ep, c, ev, sh).instrument(info_span!("accept", node = %me.short())),
        ));
        for p in spec.peers {
            let (ep, c, ev, sh) = (endpoint.clone(), core_tx.clone(), events.clone(), shared.clone());
            let span = info_span!("dial", node = %me.short(), peer = %p.node_id.short());
            tasks.push(tokio::spawn(dial_loop(ep, p, c, ev, sh).instrument(span)));
        }
        info!(node = %me, %addr, "godwitd listening");
        Ok(Node {
            id: me,
            addr,
            endpoint,
            core: core_tx,
            events,
            shared,
            core_thread: Some(core_thread),
            tasks,
        })
    }

    /// This node's NodeId.
    pub fn node_id(&self) -> NodeId {
        self.id
    }
    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
    /// Subscribes to node events (subscribe before causing the event you wait for).
    pub fn events(&self) -> broadcast::Receiver<NodeEvent> {
        self.events.subscribe()
    }
    /// Currently connected peers.
    pub fn connected(&self) -> BTreeSet<NodeId> {
        self.shared.connected.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// Changes where a peer is dialled (e.g. after it moved).
    pub fn set_peer_address(&self, peer: NodeId, address: SocketAddr) {
        if let Ok(mut a) = self.shared.addresses.lock() {
            a.insert(peer, address);
        }
    }

    /// Starts dialling another peer.
    pub fn add_peer(&mut self, p: PeerSpec) {
        self.set_peer_address(p.node_id, p.address);
        let (ep, c, ev, sh) =
            (self.endpoint.clone(), self.core.clone(), self.events.clone(), self.shared.clone());
        let span = info_span!("dial", node = %self.id.short(), peer = %p.node_id.short());
        self.tasks.push(tokio::spawn(dial_loop(ep, p, c, ev, sh).instrument(span)));
    }

    /// Authors a message; returns its id once it is stored here.
    ///
    /// # Errors
    /// The reason publishing failed.
    pub async fn publish(&self, req: PublishRequest) -> Result<MessageId> {
        let (tx, rx) = oneshot::channel();
        self.core
            .send(CoreMsg::Publish(Box::new(req), tx))
            .map_err(|_| anyhow!("the node is shutting down"))?;
        rx.await.map_err(|_| anyhow!("the node is shutting down"))?.map_err(|e| anyhow!(e))
    }

    /// The inbox, in delivery order.
    ///
    /// # Errors
    /// If the node is shutting down.
    pub async fn inbox(&self) -> Result<Vec<MessageId>> {
        let (tx, rx) = oneshot::channel();
        self.core.send(CoreMsg::Inbox(tx)).map_err(|_| anyhow!("the node is shutting down"))?;
        rx.await.map_err(|_| anyhow!("the node is shutting down"))
    }

    /// A stored envelope.
    ///
    /// # Errors
    /// If the node is shutting down.
    pub async fn envelope(&self, id: MessageId) -> Result<Option<Vec<u8>>> {
        let (tx, rx) = oneshot::channel();
        self.core.send(CoreMsg::Envelope(id, tx)).map_err(|_| anyhow!("the node is shutting down"))?;
        rx.await.map_err(|_| anyhow!("the node is shutting down"))
    }

    /// Installs a new revocation list: new handshakes check it, and peers whose certificates it
    /// revokes are disconnected at once.
    ///
    /// # Errors
    /// If the CRL cannot be read or the TLS configuration rebuilt.
    pub fn reload_crl(&self, crl: CertificateRevocationListDer<'static>) -> Result<()> {
        let (number, revoked) =
            install_crl(&self.endpoint, &self.shared, &crl, false).map_err(|e| anyhow!(e))?;
        let _ = self.events.send(NodeEvent::CrlInstalled(number));
        self.core.send(CoreMsg::Revoke(revoked)).map_err(|_| anyhow!("the node is shutting down"))?;
        Ok(())
    }

    /// Stops abruptly, as a crash would: tasks and connections are dropped at once, nothing
    /// more is flushed. (Whatever was acknowledged was already durable.)
    pub fn kill(mut self) {
        for t in &self.tasks {
            t.abort();
        }
        self.endpoint.close(0u32.into(), b"killed");
        let _ = self.core.send(CoreMsg::Kill);
        if let Some(t) = self.core_thread.take() {
            let _ = t.join();
        }
    }

    /// Stops: closes connections, makes the store durable, ends the tasks.
    pub async fn shutdown(mut self) {
        for t in &self.tasks {
            t.abort();
        }
        self.endpoint.close(0u32.into(), b"shutting down");
        let (tx, rx) = oneshot::channel();
        if self.core.send(CoreMsg::Shutdown(tx)).is_ok() {
            let _ = rx.await;
        }
        if let Some(t) = self.core_thread.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
        self.endpoint.wait_idle().await;
    }
}

/// Checks and installs a revocation list: new handshakes use it at once. With `newer_only`, a
/// list whose number is not above the current one is ignored (as from peers: newest wins).
fn install_crl(
    endpoint: &quinn::Endpoint,
    shared: &Shared,
    der: &[u8],
    newer_only: bool,
) -> Result<(u64, Vec<Vec<u8>>), String> {
    let mut m = shared.tls.lock().map_err(|_| "TLS state poisoned".to_string())?;
    let current = m.crl.as_ref().and_then(|c| certs::crl_info(c).ok()).map_or(0, |(n, _)| n);
    let (number, revoked) = tls::check_crl(&m, der, &shared.me)?;
    if newer_only && number <= current {
        return Err(format!("revocation list number {number} is not newer than the installed {current}"));
    }
    m.crl = Some(CertificateRevocationListDer::from(der.to_vec()));
    endpoint.set_server_config(Some(tls::server_config(&m, &shared.limits).map_err(|e| e.to_string())?));
    let client = tls::client_config(&m, &shared.limits).map_err(|e| e.to_string())?;
    *shared.client.lock().map_err(|_| "TLS state poisoned".to_string())? = client;
    info!(crl_number = number, revoked = revoked.len(), "revocation list installed");
    Ok((number, revoked))
}

/// Revocation lists passed on by peers: checked, installed when newer, saved, and acted on.
async fn crl_loop(
    mut rx: tmpsc::UnboundedReceiver<(NodeId, Vec<u8>)>,
    endpoint: quinn::Endpoint,
    core: mpsc::Sender<CoreMsg>,
    events: broadcast::Sender<NodeEvent>,
    shared: Arc<Shared>,
    file: PathBuf,
) {
    while let Some((from, der)) = rx.recv().await {
        match install_crl(&endpoint, &shared, &der, true) {
            Ok((number, revoked)) => {
                info!(from = %from.short(), crl_number = number, "newer revocation list received from a peer");
                if let Err(e) = std::fs::write(&file, &der) {
                    warn!("cannot save the revocation list to {}: {e}", file.display());
                }
                let _ = events.send(NodeEvent::CrlInstalled(number));
                let _ = core.send(CoreMsg::Revoke(revoked));
            }
            Err(e) => debug!(from = %from.short(), "revocation list from peer not installed: {e}"),
        }
    }
}

/// Milliseconds since the epoch, from the system clock (the only clock read in Godwit).
pub fn now() -> Timestamp {
    Timestamp(SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0))
}

// ---- the core thread ---------------------------------------------------------------------

struct Core {
    crl_tx: tmpsc::UnboundedSender<(NodeId, Vec<u8>)>,
    relay: Relay<SledStore>,
    key: IdentityKey,
    conns: HashMap<NodeId, ConnHandle>,
    events: broadcast::Sender<NodeEvent>,
    shared: Arc<Shared>,
}

impl Core {
    fn run(mut self, rx: mpsc::Receiver<CoreMsg>) {
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
            let mut stop = None;
            for msg in batch {
                if let CoreMsg::Kill = msg {
                    return;
                }
                if let CoreMsg::Shutdown(tx) = msg {
                    stop = Some(tx);
                    continue;
                }
                if let Err(e) = self.handle(msg) {
                    error!("relay storage error: {e:#}");
                }
            }
            if let Err(e) = self.relay.handle_timeout(now()) {
                error!("relay storage error: {e:#}");
            }
            self.commit();
            self.drain();
            if let Some(tx) = stop {
                for (_, c) in self.conns.drain() {
                    c.close("shutting down");
                }
                let _ = self.relay.store().commit();
                let _ = tx.send(());
                return;
            }
        }
    }

    /// Group commit: one flush + fsync for everything handled in this batch, then the acks.
    fn commit(&mut self) {
        if !self.relay.wants_commit() {
            return;
        }
        match self.relay.begin_commit() {
            Ok(false) => self.relay.committed(),
            Ok(true) => match self.relay.store().commit() {
                Ok(()) => self.relay.committed(),
                Err(e) => error!("cannot make the store durable, acknowledgements withheld: {e}"),
            },
            Err(e) => error!("cannot write delivery cursors: {e}"),
        }
    }

    fn handle(&mut self, msg: CoreMsg) -> Result<()> {
        match msg {
            CoreMsg::Connected { peer, handle } => {
                let id = peer.node_id;
                if let Some(old) = self.conns.get(&id) {
                    // Both sides dialled: keep the connection dialled by the lower NodeId. A
                    // new connection from the same dialer replaces a stale one (the peer restarted).
                    let keep_new = handle.dialer == old.dialer || handle.dialer == self.shared.me.min(id);
                    if !keep_new {
                        handle.close("duplicate connection");
                        return Ok(());
                    }
                    debug!(old = old.id, "replacing a connection to the same peer");
                    old.close("duplicate connection");
                    self.relay.disconnect(&id);
                }
                let rec = crate::store::PeerRecord {
                    role: format!("{:?}", peer.role).to_lowercase(),
                    admin: peer.administration.clone(),
                    last_seen: now().as_millis(),
                };
                if let Err(e) = self.relay.store().record_peer(&id, &rec) {
                    warn!("cannot record peer {}: {e}", id.short());
                }
                if let Ok(mut c) = self.shared.connected.lock() {
                    c.insert(id);
                }
                let crl = self.shared.tls.lock().ok().and_then(|m| m.crl.as_ref().map(|c| c.to_vec()));
                if let Some(der) = crl {
                    handle.send(Class::Urgent, Frame::Crl(der).encode());
                }
                self.conns.insert(id, handle);
                self.relay.connect(now(), id, peer.role)?;
                let _ = self.events.send(NodeEvent::PeerUp(id));
            }
            CoreMsg::Disconnected { peer, conn } => {
                if self.conns.get(&peer).is_some_and(|c| c.id == conn) {
                    self.conns.remove(&peer);
                    if let Ok(mut c) = self.shared.connected.lock() {
                        c.remove(&peer);
                    }
                    self.relay.disconnect(&peer);
                    let _ = self.events.send(NodeEvent::PeerDown(peer));
                }
            }
            CoreMsg::Frame { peer, conn, bytes, credit } => {
                credit.add_permits(1);
                if self.conns.get(&peer).is_some_and(|c| c.id == conn) {
                    if let Ok(Frame::Ack(ids)) = Frame::decode(&bytes) {
                        let _ = self.events.send(NodeEvent::Acked(peer, ids.len()));
                    }
                    self.relay.handle_frame(now(), peer, &bytes)?;
                }
            }
            CoreMsg::Refuse { peer, conn, reason, detail } => {
                warn!(peer = %peer.short(), ?reason, %detail, "refused a frame");
                let _ = self.events.send(NodeEvent::Refused { peer, reason, detail: detail.clone() });
                if let Some(c) = self.conns.get(&peer) {
                    if c.id == conn {
                        c.send(Class::Urgent, Frame::Reject(Reject { id: None, detail, reason }).encode());
                    }
                }
            }
            CoreMsg::Publish(req, reply) => {
                let _ = reply.send(self.publish(&req));
            }
            CoreMsg::Inbox(reply) => {
                let _ = reply.send(self.relay.store().inbox().unwrap_or_default());
            }
            CoreMsg::Envelope(id, reply) => {
                let _ = reply.send(self.relay.store().envelope(&id).ok().flatten());
            }
            CoreMsg::Revoke(serials) => {
                // Pass the list on to every peer: the newest list wins everywhere.
                if let Some(der) =
                    self.shared.tls.lock().ok().and_then(|m| m.crl.as_ref().map(|c| c.to_vec()))
                {
                    for c in self.conns.values() {
                        c.send(Class::Urgent, Frame::Crl(der.clone()).encode());
                    }
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
                    let _ = self.events.send(NodeEvent::Closed { peer: id, reason });
                }
            }
            CoreMsg::Shutdown(_) | CoreMsg::Kill => {}
        }
        Ok(())
    }

    fn publish(&mut self, req: &PublishRequest) -> Result<MessageId, String> {
        let audience = match &req.target {
            Target::Channel { id, epoch, key } => Audience::Channel { id: *id, epoch: *epoch, key },
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
        let sealed = self.relay.publish(now(), &mut OsRng, &self.key, &p).map_err(|e| e.to_string())?;
        // Authored messages are durable before publish returns.
        self.relay.store().commit().map_err(|e| e.to_string())?;
        info!(id = %sealed.id.short(), "authored");
        Ok(sealed.id)
    }

    fn drain(&mut self) {
        while let Some(out) = self.relay.poll_output() {
            match out {
                Output::Send { peer, class, frame } => {
                    if let Some(c) = self.conns.get(&peer) {
                        c.send(class, frame);
                    }
                }
                Output::Close { peer, reason } => {
                    warn!(peer = %peer, "closing: {reason}");
                    if let Some(c) = self.conns.get(&peer) {
                        c.close(&reason);
                    }
                    let _ = self.events.send(NodeEvent::Closed { peer, reason });
                }
                Output::Delivered(id) => {
                    info!(id = %id.short(), "delivered to the inbox");
                    let _ = self.events.send(NodeEvent::Delivered(id));
                }
                Output::Refused { peer, id, reason, detail } => {
                    warn!(peer = %peer.short(), id = ?id.map(|i| i.short()), ?reason, %detail, "refused a message");
                    let _ = self.events.send(NodeEvent::Refused { peer, reason, detail });
                }
                Output::Gap { author, from, to, .. } => {
                    warn!(author = %author.short(), from, to, "feed gap: asked peers to fill it");
                    let _ = self.events.send(NodeEvent::Gap { author, from, to });
                }
                Output::Fork { author, seq } => {
                    error!(author = %author, seq, "author signed two messages for one place in a feed: feed frozen, evidence kept");
                }
                Output::Crl { from, der } => {
                    let _ = self.crl_tx.send((from, der));
                }
                Output::Recovered { from } => {
                    info!(from = %from.short(), "recovered own feed heads from a peer");
                    let _ = self.events.send(NodeEvent::Recovered);
                }
            }
        }
    }
}

// ---- connections ---------------------------------------------------------------------------

async fn accept_loop(
    endpoint: quinn::Endpoint,
    core: mpsc::Sender<CoreMsg>,
    events: broadcast::Sender<NodeEvent>,
    shared: Arc<Shared>,
) {
    while let Some(incoming) = endpoint.accept().await {
        let remote = incoming.remote_address();
        if shared.active.load(Ordering::Relaxed) >= shared.limits.max_peers {
            warn!(%remote, max = shared.limits.max_peers, "refused a connection: at the maximum number of peers");
            incoming.refuse();
            continue;
        }
        let (core, events, shared) = (core.clone(), events.clone(), shared.clone());
        tokio::spawn(async move {
            let timeout = Duration::from_millis(shared.limits.handshake_timeout_ms);
            let conn = match tokio::time::timeout(timeout, async { incoming.accept()?.await }).await {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => return refused(&events, remote, &e.to_string()),
                Err(_) => return refused(&events, remote, "handshake timed out"),
            };
            match identify(&conn) {
                Ok(peer) => {
                    let dialer = peer.node_id;
                    if let Err(e) = run_conn(conn, peer, dialer, core, shared).await {
                        refused(&events, remote, &e);
                    }
                }
                Err(e) => {
                    conn.close(1u32.into(), b"not a Godwit node certificate");
                    refused(&events, remote, &e);
                }
            }
        });
    }
}

fn refused(events: &broadcast::Sender<NodeEvent>, remote: SocketAddr, error: &str) {
    let reason = tls::explain_refusal(error);
    warn!(%remote, "refused a connection: {reason}");
    let _ = events.send(NodeEvent::ConnectionRefused { remote, reason });
}

fn identify(conn: &quinn::Connection) -> Result<PeerCert, String> {
    let certs = conn
        .peer_identity()
        .and_then(|i| i.downcast::<Vec<rustls_pki_types::CertificateDer<'static>>>().ok())
        .ok_or("no peer certificate")?;
    let first = certs.first().ok_or("no peer certificate")?;
    certs::parse_peer(first).map_err(|e| e.to_string())
}

async fn dial_loop(
    endpoint: quinn::Endpoint,
    peer: PeerSpec,
    core: mpsc::Sender<CoreMsg>,
    events: broadcast::Sender<NodeEvent>,
    shared: Arc<Shared>,
) {
    let mut delay = shared.limits.reconnect_min_ms;
    loop {
        let connected = shared.connected.lock().map(|c| c.contains(&peer.node_id)).unwrap_or(false);
        if !connected {
            let address = shared
                .addresses
                .lock()
                .ok()
                .and_then(|a| a.get(&peer.node_id).copied())
                .unwrap_or(peer.address);
            let client = shared.client.lock().map(|c| c.clone()).ok();
            let attempt = match client {
                Some(client) => endpoint.connect_with(client, address, &certs::dns_name(&peer.node_id)),
                None => return,
            };
            let timeout = Duration::from_millis(shared.limits.handshake_timeout_ms);
            let result = match attempt {
                Ok(connecting) => match tokio::time::timeout(timeout, connecting).await {
                    Ok(Ok(conn)) => Ok(conn),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err("handshake timed out".to_string()),
                },
                Err(e) => Err(e.to_string()),
            };
            match result.and_then(|c| identify(&c).map(|p| (c, p))) {
                Ok((conn, p)) if p.node_id == peer.node_id => {
                    delay = shared.limits.reconnect_min_ms;
                    if let Err(e) = run_conn(conn, p, shared.me, core.clone(), shared.clone()).await {
                        let reason = tls::explain_refusal(&e);
                        debug!(%address, "refused by the peer: {reason}");
                        let _ = events.send(NodeEvent::ConnectionRefused { remote: address, reason });
                    }
                }
                Ok((conn, p)) => {
                    conn.close(1u32.into(), b"unexpected NodeId");
                    refused(
                        &events,
                        peer.address,
                        &format!("not valid for name: expected {}, got {}", peer.node_id, p.node_id),
                    );
                }
                Err(e) => {
                    let reason = tls::explain_refusal(&e);
                    debug!(%address, "cannot connect: {reason}");
                    let _ = events.send(NodeEvent::ConnectionRefused { remote: address, reason });
                }
            }
        }
        // Exponential back-off with full jitter.
        let wait = delay / 2 + OsRng.next_u64() % (delay / 2 + 1);
        tokio::time::sleep(Duration::from_millis(wait)).await;
        delay = (delay * 2).min(shared.limits.reconnect_max_ms);
    }
}

/// Runs one connection until it ends. The connection counts as established only once the
/// peer has opened its first stream: with TLS 1.3 a client finishes its handshake before the
/// server has checked the client certificate, so a refused client would otherwise believe it
/// was connected. Returns the refusal reason when the peer closed before that.
async fn run_conn(
    conn: quinn::Connection,
    peer: PeerCert,
    dialer: NodeId,
    core: mpsc::Sender<CoreMsg>,
    shared: Arc<Shared>,
) -> Result<(), String> {
    let id = shared.conn_ids.fetch_add(1, Ordering::Relaxed);
    let span = info_span!("peer", peer = %peer.node_id.short(), remote = %conn.remote_address(), conn = id);
    shared.active.fetch_add(1, Ordering::Relaxed);
    let result = async {
        let node_id = peer.node_id;
        let mut streams = Vec::new();
        for (class, prio) in [(0u8, 2), (1, 1), (2, 0)] {
            let mut s = conn.open_uni().await.map_err(|e| e.to_string())?;
            let _ = s.set_priority(prio);
            // A stream is invisible to the peer until it carries data: announce it at once.
            s.write_all(&[STREAM_MAGIC, class]).await.map_err(|e| e.to_string())?;
            streams.push(s);
        }
        let timeout = Duration::from_millis(shared.limits.handshake_timeout_ms);
        let first = match tokio::time::timeout(timeout, conn.accept_uni()).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(e.to_string()),
            Err(_) => {
                conn.close(1u32.into(), b"no stream opened in time");
                return Err("handshake timed out".into());
            }
        };
        info!(role = ?peer.role, administration = %peer.administration, "connected");
        let (tx, mut rx) = tmpsc::channel(CONN_QUEUE);
        let handle = ConnHandle { id, serial: peer.serial.clone(), dialer, conn: conn.clone(), tx };
        if core.send(CoreMsg::Connected { peer, handle }).is_err() {
            return Ok(());
        }
        let writer_conn = conn.clone();
        let writer = tokio::spawn(async move {
            while let Some(cmd) = rx.recv().await {
                match cmd {
                    ConnCmd::Frame(class, body) => {
                        let s = &mut streams[class as usize];
                        let mut buf = (body.len() as u32).to_be_bytes().to_vec();
                        buf.extend_from_slice(&body);
                        if s.write_all(&buf).await.is_err() {
                            // The peer stopped a stream or vanished: end the connection, so
                            // that both sides notice and reconnect cleanly.
                            writer_conn.close(7u32.into(), b"stream failed");
                            break;
                        }
                    }
                    ConnCmd::Close(reason) => {
                        writer_conn.close(2u32.into(), reason.as_bytes());
                        break;
                    }
                }
            }
        });
        let limits = shared.limits.clone();
        let credit = Arc::new(tokio::sync::Semaphore::new(CONN_CREDIT));
        let mut readers = tokio::task::JoinSet::new();
        readers.spawn(read_stream(first, node_id, id, core.clone(), limits.clone(), credit.clone()));
        let mut streams_opened = 1;
        loop {
            match conn.accept_uni().await {
                Ok(recv) => {
                    streams_opened += 1;
                    if streams_opened > MAX_STREAMS_PER_CONN {
                        warn!("closing: the peer opened more than {MAX_STREAMS_PER_CONN} streams");
                        conn.close(8u32.into(), b"too many streams");
                        break;
                    }
                    while readers.try_join_next().is_some() {}
                    readers.spawn(read_stream(
                        recv,
                        node_id,
                        id,
                        core.clone(),
                        limits.clone(),
                        credit.clone(),
                    ));
                }
                Err(e) => {
                    info!("disconnected: {e}");
                    break;
                }
            }
        }
        writer.abort();
        readers.abort_all();
        let _ = core.send(CoreMsg::Disconnected { peer: node_id, conn: id });
        Ok(())
    }
    .instrument(span)
    .await;
    shared.active.fetch_sub(1, Ordering::Relaxed);
    result
}

/// First byte of every stream (then its class, 0–2).
const STREAM_MAGIC: u8 = 0x67;

/// Reads length-prefixed frames from one stream. The length is checked before the body is
/// read; the body must then arrive within the frame read deadline.
async fn read_stream(
    mut recv: quinn::RecvStream,
    peer: NodeId,
    conn: u64,
    core: mpsc::Sender<CoreMsg>,
    limits: NetLimits,
    credit: Arc<tokio::sync::Semaphore>,
) {
    let max = limits.max_frame_len.min(LIMITS.max_frame_len);
    let mut preamble = [0u8; 2];
    if recv.read_exact(&mut preamble).await.is_err() || preamble[0] != STREAM_MAGIC || preamble[1] > 2 {
        let _ = recv.stop(5u32.into());
        return;
    }
    loop {
        let mut prefix = [0u8; FRAME_HEADER_LEN];
        if recv.read_exact(&mut prefix).await.is_err() {
            return;
        }
        let len = match frame_len(prefix, max) {
            Ok(n) => n,
            Err(e) => {
                let reason = if matches!(e, godwit_protocol::frame::FrameError::Oversize { .. }) {
                    RejectReason::Oversize
                } else {
                    RejectReason::Malformed
                };
                // The stream's framing is lost: stop it; the connection and its other streams go on.
                let _ = recv.stop(3u32.into());
                let _ = core.send(CoreMsg::Refuse { peer, conn, reason, detail: e.to_string() });
                return;
            }
        };
        let mut body = vec![0u8; len];
        let deadline = Duration::from_millis(limits.frame_read_timeout_ms);
        match tokio::time::timeout(deadline, recv.read_exact(&mut body)).await {
            Ok(Ok(())) => {
                // Wait for the core to catch up before reading more: QUIC flow control then
                // slows a peer that sends faster than this node can handle.
                match credit.acquire().await {
                    Ok(p) => p.forget(),
                    Err(_) => return,
                }
                if core.send(CoreMsg::Frame { peer, conn, bytes: body, credit: credit.clone() }).is_err() {
                    return;
                }
            }
            Ok(Err(_)) => return,
            Err(_) => {
                let _ = recv.stop(4u32.into());
                let detail = format!(
                    "frame body of {len} bytes not received within {} ms",
                    limits.frame_read_timeout_ms
                );
                let _ = core.send(CoreMsg::Refuse { peer, conn, reason: RejectReason::Malformed, detail });
                return;
            }
        }
    }
}

/// Keeps `Role` in the public surface of this module for callers building specs.
pub type NodeRole = Role;

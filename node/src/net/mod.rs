//! The running node: a QUIC endpoint (accepting and dialling peers), one task per connection,
//! and the relay core on its own thread with the sled store. The core is the only owner of the
//! relay state; connection tasks talk to it over channels.
//!
//! Per connection each side opens three unidirectional streams, one per priority class, with
//! QUIC stream priorities set so that urgent traffic (control and flash) is sent before
//! immediate, and immediate before routine. Each stream carries length-prefixed frames.

mod admin;
mod admission;
mod announce;
mod audit;
mod channels;
mod directory;
mod error;
mod escalate;
mod keys;
mod metrics;

pub use error::NodeError;
mod conn;
mod core;

use self::conn::{accept_loop, dial_loop};
use self::core::Core;

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{SystemTime, UNIX_EPOCH};

use godwit_protocol::Timestamp;
use godwit_protocol::content::{Body, PersonalData, Tlp};
use godwit_protocol::crypto::EpochKey;
use godwit_protocol::envelope::Priority;
use godwit_protocol::identity::{EncryptionPublicKey, IdentityKey, NodeId, Role};
use godwit_protocol::ids::{ChannelId, MessageId};
use godwit_protocol::relay::{Class, Relay, RelayConfig};
use godwit_protocol::wire::RejectReason;
use rustls_pki_types::CertificateRevocationListDer;
use tokio::sync::{broadcast, mpsc as tmpsc, oneshot, watch};
use tracing::{Instrument, debug, info, info_span, warn};

use crate::certs::{self, PeerCert};
use crate::store::SledStore;
use crate::tls::{self, NetLimits, TlsMaterial};

/// The dial loop of each peer this node dials.
type Dials = Arc<Mutex<HashMap<NodeId, tokio::task::JoinHandle<()>>>>;

/// Starts dialling `p` (replacing a dial loop of the same peer).
fn spawn_dial(
    dials: &Dials,
    endpoint: &quinn::Endpoint,
    core: &mpsc::Sender<CoreMsg>,
    events: &broadcast::Sender<NodeEvent>,
    shared: &Arc<Shared>,
    p: PeerSpec,
) {
    if let Ok(mut c) = shared.configured.lock() {
        c.insert(p.node_id);
    }
    if let Ok(mut a) = shared.addresses.lock() {
        a.insert(p.node_id, p.address);
    }
    let _ = core.send(CoreMsg::AddPeer(p.node_id));
    let Ok(mut d) = dials.lock() else { return };
    // A loop that still runs dials the new address from its next attempt on.
    if d.get(&p.node_id).is_some_and(|t| !t.is_finished()) {
        return;
    }
    let span = info_span!("dial", node = %shared.me.short(), peer = %p.node_id.short());
    let node = p.node_id;
    let task = tokio::spawn(
        dial_loop(endpoint.clone(), p, core.clone(), events.clone(), shared.clone()).instrument(span),
    );
    d.insert(node, task);
}

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
    /// The encryption key its card announces (direct messages and keys are sealed to it) —
    /// unless the data directory's `encryption.key` holds a newer one after a rotation; earlier
    /// keys (`encryption-*.key`) are kept to open what was sealed to them.
    pub encryption: godwit_protocol::identity::EncryptionKey,
    /// Rotate the encryption key once it has been in use this long (a new card announces the
    /// new key); `None`: only when an operator asks (`godwit keys rotate`).
    pub encryption_rotate_ms: Option<u64>,
    /// Keys of the statically configured channels this node reads and writes (signed channels'
    /// keys arrive in channel-key records).
    pub channel_keys: Vec<ChannelKeySpec>,
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
    /// The group that may use the admin socket (`None`: godwitd's own group).
    pub admin_group: Option<String>,
    /// A command run for each flash message delivered here (arguments: id, channel, author).
    pub alert_command: Option<PathBuf>,
    /// Where Prometheus metrics are served (a loopback address), if at all.
    pub metrics: Option<SocketAddr>,
    /// The local accounts and the officers or roles each is addressed as.
    pub accounts: Vec<Account>,
}

/// A local account (an OS user of the admin socket) and the officers or roles it is addressed
/// as: messages addressed to named officers are shown only to their accounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Its OS uid.
    pub uid: u32,
    /// The officers or roles it stands for, e.g. "head of the intelligence unit".
    pub roles: Vec<String>,
}

/// A channel this node holds the key of.
#[derive(Debug, Clone)]
pub struct ChannelKeySpec {
    /// The channel.
    pub id: ChannelId,
    /// Its name for operators.
    pub name: String,
    /// The current epoch.
    pub epoch: u64,
    /// That epoch's key.
    pub key: EpochKey,
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
    /// The node stopped because its storage failed (why); it acknowledges nothing more.
    Fatal(String),
    /// A message whose stored copy was damaged was fetched again from a peer and stored anew.
    Repaired(MessageId),
    /// A node's card (new or newer) was taken into the directory.
    Card(NodeId),
    /// A peer's audit log misbehaved (rollback, split view, inconsistent proof).
    AuditAlarm {
        /// The log's node.
        node: NodeId,
        /// What was seen.
        kind: godwit_protocol::audit::witness::AlarmKind,
    },
    /// A witness cosigned this node's checkpoint of `size`.
    Cosigned {
        /// The witness.
        witness: NodeId,
        /// The checkpoint's size.
        size: u64,
    },
    /// A flash message this node sent was not read by these recipients in time.
    Escalation {
        /// The message.
        id: MessageId,
        /// Who has not read it.
        unread: Vec<NodeId>,
    },
    /// A channel state became its channel's head here.
    ChannelState {
        /// The channel.
        channel: ChannelId,
        /// Its epoch.
        epoch: u64,
    },
    /// The key of a channel epoch sealed to this node was taken (kept on disk).
    ChannelKey {
        /// The channel.
        channel: ChannelId,
        /// Its epoch.
        epoch: u64,
    },
    /// A message in the inbox was announced (the alert command run for a flash message): at
    /// least once, also after a crash.
    Announced(MessageId),
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

/// Revocation lists from peers waiting to be checked; more are dropped (the newest list is
/// passed on again by every peer that installs it).
const CRL_QUEUE: usize = 8;
/// Vouching requests from hub peers waiting to be checked (more are dropped: a hub re-sends
/// its certificates with every connection).
const VOUCH_QUEUE: usize = 16;
/// Frames queued towards one stream's writer before the peer counts as not reading.
const CONN_QUEUE_FRAMES: usize = 4096;
/// Bytes read from one connection that may wait for the core (backpressure into QUIC); at
/// least two frames of the largest size.
const CONN_INBOUND_BYTES: usize = 8 << 20;
/// Streams a peer may open over a connection's life (3 are used).
const MAX_STREAMS_PER_CONN: usize = 16;

/// The core's handle on one connection.
#[derive(Debug)]
struct ConnHandle {
    id: u64,
    /// When the connection was established.
    since: std::time::Instant,
    serial: Vec<u8>,
    /// The peer's region, from its certificate.
    region: Option<String>,
    dialer: NodeId,
    conn: quinn::Connection,
    /// One queue per stream class, each with its own writer: an acknowledgement or a flash
    /// message never waits behind routine bytes that the peer's flow control holds back.
    tx: [tmpsc::Sender<Vec<u8>>; 3],
    /// Frame bytes queued towards the peer and not yet handed to QUIC, and the cap on them.
    queued: Arc<AtomicUsize>,
    queue_cap: usize,
    /// Why this node closed it, if it did (journalled with the disconnection).
    closed: Arc<std::sync::OnceLock<String>>,
}

impl ConnHandle {
    /// Queues a frame; a peer whose queues are full (in bytes or frames) is not reading and is
    /// disconnected.
    fn send(&self, class: Class, frame: Vec<u8>) {
        let len = frame.len();
        let queued = self.queued.fetch_add(len, std::sync::atomic::Ordering::Relaxed) + len;
        if queued > self.queue_cap || self.tx[class as usize].try_send(frame).is_err() {
            let _ = self.closed.set("the peer is not reading".into());
            self.conn.close(6u32.into(), b"peer is not reading");
        }
    }
    fn close(&self, reason: &str) {
        let _ = self.closed.set(reason.into());
        self.conn.close(2u32.into(), reason.as_bytes());
    }
}

enum CoreMsg {
    Connected {
        peer: Box<PeerCert>,
        handle: ConnHandle,
    },
    Disconnected {
        peer: NodeId,
        conn: u64,
        /// Why, as the transport said it.
        reason: String,
    },
    /// The members a hub peer's certificates vouched for, checked.
    Vouched {
        peer: NodeId,
        conn: u64,
        members: Vec<NodeId>,
    },
    Frame {
        peer: NodeId,
        conn: u64,
        bytes: Vec<u8>,
        credit: Arc<tokio::sync::Semaphore>,
        charge: usize,
    },
    Refuse {
        peer: NodeId,
        conn: u64,
        reason: RejectReason,
        detail: String,
    },
    Publish(Box<PublishRequest>, oneshot::Sender<Result<MessageId, NodeError>>),
    Inbox(oneshot::Sender<Vec<MessageId>>),
    Envelope(MessageId, oneshot::Sender<Option<Vec<u8>>>),
    Revoke(Vec<Vec<u8>>),
    AddPeer(NodeId),
    Admin(admin::Query, oneshot::Sender<admin::Answer>),
    /// The operator removed a peer: no longer one this node uses.
    RemovePeer(NodeId),
    /// Close the connection to a peer (removed or blocked by the operator).
    Drop {
        peer: NodeId,
        reason: String,
    },
    Shutdown(oneshot::Sender<()>),
    Kill,
}

/// A running node.
#[derive(Debug)]
pub struct Node {
    #[cfg(feature = "fault-injection")]
    faults: Arc<crate::store::StoreFaults>,
    id: NodeId,
    addr: SocketAddr,
    endpoint: quinn::Endpoint,
    core: mpsc::Sender<CoreMsg>,
    events: broadcast::Sender<NodeEvent>,
    shared: Arc<Shared>,
    core_thread: Option<std::thread::JoinHandle<()>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    dials: Dials,
    socket: PathBuf,
}

#[derive(Debug)]
struct Shared {
    me: NodeId,
    limits: NetLimits,
    client: Mutex<quinn::ClientConfig>,
    tls: Mutex<TlsMaterial>,
    conn_ids: AtomicU64,
    admission: Arc<admission::Admission>,
    connected: Mutex<BTreeSet<NodeId>>,
    addresses: Mutex<HashMap<NodeId, SocketAddr>>,
    /// Set once, when the node stops because its storage failed.
    fatal: watch::Sender<Option<String>>,
    /// Woken whenever `connected` changes: dial loops wait on it while their peer is connected.
    changed: tokio::sync::Notify,
    /// What the integrity check on open found and is not repaired yet: while it is not empty
    /// the node runs degraded.
    damage: Mutex<Vec<String>>,
    /// Peers this node dials.
    configured: Mutex<BTreeSet<NodeId>>,
    /// Every node's newest valid card.
    directory: Mutex<directory::Directory>,
    /// Woken after each commit that delivered something into the inbox.
    delivered: Arc<tokio::sync::Notify>,
    /// Woken after each commit.
    committed: Arc<tokio::sync::Notify>,
    /// This node's encryption keys: the current one and those it retired.
    keys: Mutex<keys::KeyRing>,
    /// The channel epoch keys this node holds.
    epoch_keys: Mutex<channels::EpochKeys>,
    /// Feed gaps no peer filled in time, described for `godwit status` (set by the core as it
    /// answers a status query).
    stale_gaps: Mutex<Vec<String>>,
    /// Flash messages sent here that a recipient has not read in time, described for
    /// `godwit status` (set by the core once a second).
    overdue: Mutex<Vec<String>>,
    /// Audit alarms and a damaged own log, described for `godwit status` (set by the core).
    audit_warnings: Mutex<Vec<String>>,
    /// Bytes queued towards each connected peer (set by the core as it answers a peers query).
    queued: Mutex<HashMap<NodeId, u64>>,
    /// Why the last connection to or from each peer ended or failed, for `godwit peers` (only
    /// for peers this node dials or was connected to: bounded by those).
    last_error: Mutex<HashMap<NodeId, String>>,
}

impl Shared {
    /// Notes why a connection with `peer` ended or could not be made.
    fn note_error(&self, peer: NodeId, reason: &str) {
        if let Ok(mut m) = self.last_error.lock() {
            let mut r: String = reason.chars().take(300).collect();
            r.shrink_to_fit();
            m.insert(peer, r);
        }
    }
}

impl Node {
    /// Opens the store, binds the endpoint and starts accepting and dialling.
    ///
    /// # Errors
    /// [`NodeError`] when the store, the TLS material or the socket cannot be set up.
    pub async fn start(spec: NodeSpec) -> Result<Node, NodeError> {
        let me = spec.identity.node_id();
        crate::files::create_private_dir(&spec.data_dir)
            .map_err(|source| NodeError::DataDir { path: spec.data_dir.clone(), source })?;
        let (store, report) = SledStore::open(&spec.data_dir.join("store"))
            .map_err(|source| NodeError::OpenStore { path: spec.data_dir.clone(), source })?;
        // Damage does not stop the node: it runs degraded, says what is damaged, and fetches
        // the damaged messages again from its peers.
        for d in report.damage.iter().take(20) {
            warn!(data_dir = %spec.data_dir.display(), "store damaged, running degraded: {d}");
        }
        if report.damage.len() > 20 {
            warn!("… and {} more problems in the store", report.damage.len() - 20);
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
        let server = tls::server_config(&spec.tls, &spec.limits)?;
        let client = tls::client_config(&spec.tls, &spec.limits)?;
        let listen = |source| NodeError::Listen { addr: spec.listen, source };
        let socket = std::net::UdpSocket::bind(spec.listen).map_err(listen)?;
        let runtime = quinn::default_runtime().ok_or(NodeError::NoRuntime)?;
        let mut endpoint =
            quinn::Endpoint::new(endpoint_config(&spec.identity), Some(server), socket, runtime)
                .map_err(listen)?;
        endpoint.set_default_client_config(client.clone());
        let addr = endpoint.local_addr().map_err(listen)?;
        let (events, _) = broadcast::channel(4096);
        let (core_tx, core_rx) = mpsc::channel();
        let ring = keys::KeyRing::load(&spec.data_dir, &spec.encryption, now().as_millis())
            .map_err(NodeError::Keys)?;
        let epoch_keys =
            channels::EpochKeys::load(&spec.data_dir, spec.channel_keys.clone()).map_err(NodeError::Keys)?;
        let shared = Arc::new(Shared {
            me,
            epoch_keys: Mutex::new(epoch_keys),
            limits: spec.limits.clone(),
            client: Mutex::new(client),
            tls: Mutex::new(spec.tls.clone()),
            conn_ids: AtomicU64::new(1),
            admission: admission::Admission::new(spec.limits.max_peers),
            connected: Mutex::new(BTreeSet::new()),
            addresses: Mutex::new(spec.peers.iter().map(|p| (p.node_id, p.address)).collect()),
            fatal: watch::channel(None).0,
            changed: tokio::sync::Notify::new(),
            damage: Mutex::new(report.damage.clone()),
            configured: Mutex::new(spec.peers.iter().map(|p| p.node_id).collect()),
            directory: Mutex::new(directory::Directory::default()),
            delivered: Arc::new(tokio::sync::Notify::new()),
            committed: Arc::new(tokio::sync::Notify::new()),
            keys: Mutex::new(ring),
            stale_gaps: Mutex::new(Vec::new()),
            overdue: Mutex::new(Vec::new()),
            audit_warnings: Mutex::new(Vec::new()),
            queued: Mutex::new(HashMap::new()),
            last_error: Mutex::new(HashMap::new()),
        });
        let mut relay_cfg = spec.relay;
        relay_cfg.window = spec.limits.window;
        relay_cfg.rate_per_sec = spec.limits.rate_per_sec;
        relay_cfg.rate_burst = spec.limits.rate_burst;
        relay_cfg.abuse_limit = spec.limits.abuse_limit;
        relay_cfg.window_bytes = spec.limits.window_bytes;
        relay_cfg.control_per_sec = spec.limits.control_per_sec;
        relay_cfg.control_burst = spec.limits.control_burst;
        relay_cfg.bytes_per_sec = spec.limits.bytes_per_sec;
        relay_cfg.bytes_burst = spec.limits.bytes_burst;
        relay_cfg.answer_bytes_per_sec = spec.limits.answer_bytes_per_sec;
        relay_cfg.answer_bytes_burst = spec.limits.answer_bytes_burst;
        relay_cfg.author_bytes_per_day = spec.limits.author_bytes_per_day;
        relay_cfg.author_bytes_burst = spec.limits.author_bytes_burst;
        relay_cfg.peer_bytes_per_day = spec.limits.peer_bytes_per_day;
        relay_cfg.peer_bytes_burst = spec.limits.peer_bytes_burst;
        relay_cfg.forget_after_ms = spec.limits.forget_expired_after_ms;
        relay_cfg.configured_peers.extend(spec.peers.iter().map(|p| p.node_id));
        let (crl_tx, crl_rx) = tmpsc::channel(CRL_QUEUE);
        let (vouch_tx, vouch_rx) = tmpsc::channel(VOUCH_QUEUE);
        #[cfg(feature = "fault-injection")]
        let faults = store.faults();
        // Peers recorded by earlier runs: their certificates vouched for them, so direct
        // messages to them are routable after a restart too.
        let known = store.peers()?;
        let cards = store.cards()?;
        // Peers the operator added through the socket, and nodes blocked, by earlier runs.
        let configured: BTreeSet<NodeId> = spec.peers.iter().map(|p| p.node_id).collect();
        let stored_dials: Vec<PeerSpec> = store
            .dials()?
            .into_iter()
            .filter(|(n, _)| !configured.contains(n))
            .filter_map(|(node_id, a)| a.parse().ok().map(|address| PeerSpec { node_id, address }))
            .collect();
        for node in store.blocked()? {
            shared.admission.set_blocked(node, true);
        }
        let witnessed = store.witnessed().unwrap_or_default();
        let mut relay = Relay::new(relay_cfg, store)?;
        for (id, rec) in known {
            relay.add_known(id);
            relay.add_member_cert(id, &rec.cert);
        }
        // Expired ones are past their life anyway: peers no longer hand them out.
        let t = now();
        relay.set_damaged(
            report
                .quarantined
                .iter()
                .filter(|(_, m)| m.expires > t)
                .map(|(id, m)| (*id, m.author, m.feed, m.seq, m.expires)),
        );
        if let Some(crl) = &spec.tls.crl {
            relay.set_crl(crl.to_vec());
        }
        // The directory as stored, checked again (cards expire, certificates are revoked).
        if let Ok(mut d) = shared.directory.lock() {
            for record in &cards {
                if let Err(e) = d.admit(record, &spec.tls, t) {
                    debug!("stored card no longer taken: {e}");
                }
            }
        }
        publish_own_card(&mut relay, &spec.identity, &spec.tls, &shared, addr);
        let core = Core {
            label: me.short()[..8].to_string(),
            crl_tx,
            vouch_tx,
            published: HashMap::new(),
            recorded: Vec::new(),
            relay,
            key: spec.identity,
            conns: HashMap::new(),
            events: events.clone(),
            shared: shared.clone(),
            space_checked: None,
            // The card was just published above: the first check is a minute from now (checking
            // at once would publish a second card before the first one is in the directory).
            card_checked: Some(std::time::Instant::now()),
            gaps: HashMap::new(),
            escalations: escalate::Escalations::default(),
            audit: audit::AuditState::restore(&witnessed),
            rotate_every_ms: spec.encryption_rotate_ms,
            addr,
        };
        let core_thread = std::thread::Builder::new()
            .name(format!("godwit-core-{}", me.short()))
            .spawn(move || core.run(core_rx))
            .map_err(NodeError::Thread)?;
        let mut tasks = Vec::new();
        let crl_file = spec.data_dir.join("crl.der");
        let (ep, c, ev, sh) = (endpoint.clone(), core_tx.clone(), events.clone(), shared.clone());
        tasks.push(tokio::spawn(crl_loop(crl_rx, ep, c, ev, sh, crl_file)));
        tasks.push(tokio::spawn(vouch_loop(vouch_rx, core_tx.clone(), shared.clone())));
        if let Some(listen) = spec.metrics {
            let serve = metrics::start(listen).map_err(|reason| NodeError::Metrics { listen, reason })?;
            tasks.push(tokio::spawn(async move {
                if let Err(e) = serve.await {
                    warn!("the metrics exporter stopped: {e:?}");
                }
            }));
            info!(%listen, "metrics served");
        }
        let wake = shared.delivered.clone();
        if let Some(cmd) = spec.alert_command.clone() {
            tasks.push(tokio::spawn(announce::escalations(events.subscribe(), cmd)));
        }
        tasks.push(tokio::spawn(announce::run(
            core_tx.clone(),
            spec.alert_command.clone(),
            wake,
            events.clone(),
        )));
        let (ep, c, ev, sh) = (endpoint.clone(), core_tx.clone(), events.clone(), shared.clone());
        tasks.push(tokio::spawn(
            accept_loop(ep, c, ev, sh).instrument(info_span!("accept", node = %me.short())),
        ));
        let dials: Dials = Arc::new(Mutex::new(HashMap::new()));
        for p in spec.peers.into_iter().chain(stored_dials) {
            spawn_dial(&dials, &endpoint, &core_tx, &events, &shared, p);
        }
        // The admin socket, in the data directory.
        let own = certs::parse_peer(&spec.tls.cert).map_err(NodeError::OwnCertificate)?;
        let socket = spec.data_dir.join(godwit_admin_api::SOCKET_NAME);
        let listener = admin::bind(&socket, spec.admin_group.as_deref())
            .map_err(|reason| NodeError::AdminSocket { path: socket.clone(), reason })?;
        let ctx = Arc::new(admin::Ctx {
            endpoint: endpoint.clone(),
            core: core_tx.clone(),
            events: events.clone(),
            shared: shared.clone(),
            own,
            accounts: spec.accounts.clone(),
            started: std::time::Instant::now(),
            dials: dials.clone(),
        });
        tasks.push(tokio::spawn(admin::serve(listener, ctx, socket.clone())));
        info!(node = %me, %addr, "godwitd listening");
        Ok(Node {
            #[cfg(feature = "fault-injection")]
            faults,
            id: me,
            addr,
            endpoint,
            core: core_tx,
            events,
            shared,
            core_thread: Some(core_thread),
            tasks,
            dials,
            socket,
        })
    }

    /// This node's NodeId.
    pub fn node_id(&self) -> NodeId {
        self.id
    }
    /// What is damaged in its store and not repaired yet (empty when sound): while it is not
    /// empty the node runs degraded.
    pub fn damage(&self) -> Vec<String> {
        self.shared.damage.lock().map(|d| d.clone()).unwrap_or_default()
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

    /// Resolves when the node stops because its storage failed, with the reason. A supervisor
    /// (godwitd's `run`) exits non-zero then, so the node is restarted on a fresh start.
    pub async fn failed(&self) -> String {
        let mut rx = self.shared.fatal.subscribe();
        loop {
            if let Some(reason) = rx.borrow_and_update().clone() {
                return reason;
            }
            if rx.changed().await.is_err() {
                return "the node stopped".into();
            }
        }
    }

    /// The store's fault switches (feature `fault-injection`).
    #[cfg(feature = "fault-injection")]
    pub fn store_faults(&self) -> Arc<crate::store::StoreFaults> {
        self.faults.clone()
    }

    /// Changes where a peer is dialled (e.g. after it moved).
    pub fn set_peer_address(&self, peer: NodeId, address: SocketAddr) {
        if let Ok(mut a) = self.shared.addresses.lock() {
            a.insert(peer, address);
        }
    }

    /// Starts dialling another peer.
    pub fn add_peer(&mut self, p: PeerSpec) {
        spawn_dial(&self.dials, &self.endpoint, &self.core, &self.events, &self.shared, p);
    }

    /// Authors a message; returns its id once it is stored here.
    ///
    /// # Errors
    /// [`NodeError::Publish`] with the relay's reason, [`NodeError::NotDurable`] if the node
    /// stopped first, [`NodeError::ShuttingDown`].
    pub async fn publish(&self, req: PublishRequest) -> Result<MessageId, NodeError> {
        let (tx, rx) = oneshot::channel();
        self.core.send(CoreMsg::Publish(Box::new(req), tx)).map_err(|_| NodeError::ShuttingDown)?;
        rx.await.map_err(|_| NodeError::ShuttingDown)?
    }

    /// The inbox, in delivery order.
    ///
    /// # Errors
    /// [`NodeError::ShuttingDown`].
    pub async fn inbox(&self) -> Result<Vec<MessageId>, NodeError> {
        let (tx, rx) = oneshot::channel();
        self.core.send(CoreMsg::Inbox(tx)).map_err(|_| NodeError::ShuttingDown)?;
        rx.await.map_err(|_| NodeError::ShuttingDown)
    }

    /// A stored envelope.
    ///
    /// # Errors
    /// [`NodeError::ShuttingDown`].
    pub async fn envelope(&self, id: MessageId) -> Result<Option<Vec<u8>>, NodeError> {
        let (tx, rx) = oneshot::channel();
        self.core.send(CoreMsg::Envelope(id, tx)).map_err(|_| NodeError::ShuttingDown)?;
        rx.await.map_err(|_| NodeError::ShuttingDown)
    }

    /// Installs a new revocation list: new handshakes check it, and peers whose certificates it
    /// revokes are disconnected at once.
    ///
    /// # Errors
    /// [`NodeError::Crl`] if the CRL cannot be read or the TLS configuration rebuilt.
    pub fn reload_crl(&self, crl: CertificateRevocationListDer<'static>) -> Result<(), NodeError> {
        let (number, revoked) =
            install_crl(&self.endpoint, &self.shared, &crl, false).map_err(NodeError::Crl)?;
        let _ = self.events.send(NodeEvent::CrlInstalled(number));
        self.core.send(CoreMsg::Revoke(revoked)).map_err(|_| NodeError::ShuttingDown)?;
        Ok(())
    }

    /// Stops abruptly, as a crash would: tasks and connections are dropped at once, nothing
    /// more is flushed. (Whatever was acknowledged was already durable.)
    pub fn kill(mut self) {
        self.end_tasks();
        self.endpoint.close(0u32.into(), b"killed");
        let _ = self.core.send(CoreMsg::Kill);
        if let Some(t) = self.core_thread.take() {
            let _ = t.join();
        }
    }

    /// Ends the node's tasks (and dial loops started through the admin socket) and removes
    /// the admin socket.
    fn end_tasks(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        if let Ok(d) = self.dials.lock() {
            d.values().for_each(tokio::task::JoinHandle::abort);
        }
        let _ = std::fs::remove_file(&self.socket);
    }

    /// Stops: closes connections, makes the store durable, ends the tasks.
    pub async fn shutdown(mut self) {
        self.end_tasks();
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
    let installed =
        |m: &TlsMaterial| m.crl.as_ref().and_then(|c| certs::crl_info(c).ok()).map_or(0, |(n, _)| n);
    let not_newer = |number, current| {
        format!("revocation list number {number} is not newer than the installed {current}")
    };
    // The cheap check first, and the signature check without holding the lock the core and
    // the handshakes need: a peer may send lists to make this node work.
    let material = shared.tls.lock().map_err(|_| "TLS state poisoned".to_string())?.clone();
    let (claimed, _) = certs::crl_info(der).map_err(|e| e.to_string())?;
    if newer_only && claimed <= installed(&material) {
        return Err(not_newer(claimed, installed(&material)));
    }
    let (number, revoked) = tls::check_crl(&material, der, &shared.me)?;
    let mut m = shared.tls.lock().map_err(|_| "TLS state poisoned".to_string())?;
    let current = installed(&m);
    if newer_only && number <= current {
        return Err(not_newer(number, current));
    }
    m.crl = Some(CertificateRevocationListDer::from(der.to_vec()));
    endpoint.set_server_config(Some(tls::server_config(&m, &shared.limits).map_err(|e| e.to_string())?));
    let client = tls::client_config(&m, &shared.limits).map_err(|e| e.to_string())?;
    *shared.client.lock().map_err(|_| "TLS state poisoned".to_string())? = client;
    info!(crl_number = number, revoked = revoked.len(), "revocation list installed");
    Ok((number, revoked))
}

/// How long a node card is valid; a new one is published at start once half of it has passed
/// or the encryption key changed.
const CARD_VALID_MS: u64 = 30 * 86_400_000;

/// Publishes this node's card (its encryption key, address and certificate) as a control record
/// unless the directory already holds a current one.
fn publish_own_card(
    relay: &mut Relay<SledStore>,
    identity: &IdentityKey,
    tls: &TlsMaterial,
    shared: &Shared,
    addr: SocketAddr,
) {
    let t = now();
    let me = identity.node_id();
    let Ok(enc) = shared.keys.lock().map(|k| k.current().public()) else { return };
    let current = shared.directory.lock().ok().is_some_and(|d| {
        d.get(&me).is_some_and(|e| {
            e.card.encryption_key == enc
                && e.card.cert == tls.cert.as_ref()
                && e.card.not_after.as_millis() > t.as_millis() + CARD_VALID_MS / 2
        })
    });
    if current {
        return;
    }
    let card = godwit_protocol::identity::NodeCard {
        format: godwit_protocol::identity::NODE_CARD_VERSION,
        id: me,
        not_after: t.plus_millis(CARD_VALID_MS),
        not_before: t,
        encryption_key: enc,
        cert: tls.cert.to_vec(),
        addresses: if addr.ip().is_unspecified() { Vec::new() } else { vec![addr.to_string()] },
        versions: vec![1],
    };
    let published = card.sign(identity).map_err(|e| e.to_string()).and_then(|record| {
        relay
            .publish_control(
                t,
                identity,
                &record,
                CARD_VALID_MS,
                godwit_protocol::envelope::Priority::Routine,
            )
            .map_err(|e| e.to_string())
    });
    match published {
        Ok(m) => info!(id = %m.id.short(), "published this node's card"),
        Err(e) => warn!("cannot publish this node's card yet: {e}"),
    }
}

/// Certificates hub peers vouch with: each checked against the network CA and the installed
/// revocation list, off the core thread; a member (not a hub) of the vouching hub's own region
/// counts.
async fn vouch_loop(mut rx: tmpsc::Receiver<VouchRequest>, core: mpsc::Sender<CoreMsg>, shared: Arc<Shared>) {
    while let Some(req) = rx.recv().await {
        let Ok(material) = shared.tls.lock().map(|m| m.clone()) else { return };
        let VouchRequest { peer, conn, region, certs } = req;
        let checked = tokio::task::spawn_blocking(move || {
            let mut members = Vec::new();
            for der in &certs {
                match tls::check_node_cert(&material, der) {
                    Ok(c) if c.role != Role::Hub && region.is_some() && c.region == region => {
                        members.push(c.node_id);
                    }
                    Ok(c) => debug!(
                        hub = %peer.short(),
                        member = %c.node_id.short(),
                        "vouched certificate not believed: not a member of the hub's region"
                    ),
                    Err(e) => debug!(hub = %peer.short(), "vouched certificate not believed: {e}"),
                }
            }
            members
        })
        .await;
        if let Ok(members) = checked {
            let _ = core.send(CoreMsg::Vouched { peer, conn, members });
        }
    }
}

/// A hub peer's certificates to check (see [`vouch_loop`]).
struct VouchRequest {
    peer: NodeId,
    conn: u64,
    region: Option<String>,
    certs: Vec<Vec<u8>>,
}

/// Revocation lists passed on by peers: checked, installed when newer, saved, and acted on.
async fn crl_loop(
    mut rx: tmpsc::Receiver<(NodeId, Vec<u8>)>,
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
                if let Err(e) = crate::files::write_atomic(&file, &der) {
                    warn!("cannot save the revocation list to {}: {e}", file.display());
                }
                let _ = events.send(NodeEvent::CrlInstalled(number));
                let _ = core.send(CoreMsg::Revoke(revoked));
            }
            Err(e) => debug!(from = %from.short(), "revocation list from peer not installed: {e}"),
        }
    }
}

/// The QUIC endpoint configuration. Its stateless-reset key and the key that marks its
/// connection ids are derived from the identity key, so a node restarted on the same address
/// recognises the connection ids of its previous life and answers their packets with a valid
/// stateless reset: peers learn at their next packet (a keep-alive, at most a second later)
/// that the old connection is gone, instead of waiting for the idle timeout.
fn endpoint_config(identity: &IdentityKey) -> quinn::EndpointConfig {
    use sha2::{Digest, Sha256};
    let seed = identity.to_seed();
    let derive = |label: &[u8]| -> zeroize::Zeroizing<[u8; 32]> {
        zeroize::Zeroizing::new(Sha256::new().chain_update(label).chain_update(&seed[..]).finalize().into())
    };
    let reset = derive(b"godwit/v1 quic stateless-reset key\0");
    let cid = derive(b"godwit/v1 quic connection-id key\0");
    let cid_key = u64::from_be_bytes([cid[0], cid[1], cid[2], cid[3], cid[4], cid[5], cid[6], cid[7]]);
    let mut config =
        quinn::EndpointConfig::new(Arc::new(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &*reset)));
    config.cid_generator(move || Box::new(quinn_proto::HashedConnectionIdGenerator::from_key(cid_key)));
    config
}

/// Milliseconds since the epoch, from the system clock (the only clock read in Godwit).
pub fn now() -> Timestamp {
    Timestamp(SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0))
}

//! A small Godwit network on 127.0.0.1 with temporary directories: a test CA, node
//! certificates, and helpers that await node events (never sleeps) with a bounded timeout.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use godwit_node::certs::{Authority, Issued, NodeAttrs, pkcs8};
use godwit_node::net::{Node, NodeEvent, NodeSpec, PeerSpec, PublishRequest, Target, now};
use godwit_node::tls::{NetLimits, TlsMaterial};
use godwit_protocol::content::{Body, Content, Tlp};
use godwit_protocol::crypto::EpochKey;
use godwit_protocol::envelope::Priority;
use godwit_protocol::identity::{EncryptionKey, IdentityKey, NodeId};
use godwit_protocol::ids::{ChannelId, MessageId};
use godwit_protocol::relay::{ChannelConfig, RelayConfig, Role};
use godwit_protocol::samples;
use rustls_pki_types::CertificateRevocationListDer;
use tokio::sync::broadcast;

pub const DAY: u64 = 86_400_000;
/// Every wait in these tests is bounded by this.
pub const WAIT: Duration = Duration::from_secs(60);

/// One node's keys, certificate and directory, whether or not it is running.
pub struct Member {
    pub name: &'static str,
    pub seed: [u8; 32],
    pub enc: EncryptionKey,
    pub role: Role,
    pub cert: Issued,
    pub dir: PathBuf,
    pub listen: SocketAddr,
    pub node: Option<Node>,
}

impl Member {
    pub fn id(&self) -> NodeId {
        IdentityKey::from_seed(&self.seed).node_id()
    }
    pub fn node(&self) -> &Node {
        self.node.as_ref().expect("node is running")
    }
    pub fn addr(&self) -> SocketAddr {
        self.node().local_addr()
    }
}

pub struct Net {
    pub ca: Authority,
    pub tmp: tempfile::TempDir,
    pub members: Vec<Member>,
    pub channel: ChannelId,
    pub epoch_key: EpochKey,
    pub crl: Option<CertificateRevocationListDer<'static>>,
    /// Limits for nodes started from now on (tests of the limits lower them).
    pub limits: NetLimits,
    /// The alert command of nodes started from now on.
    pub alert_command: Option<PathBuf>,
    /// The admin socket's group for the nodes started from now on.
    pub admin_group: Option<String>,
    /// The local accounts of the nodes started from now on.
    pub accounts: Vec<godwit_node::net::Account>,
    /// Where the next node started serves its metrics (taken by it).
    pub metrics: Option<SocketAddr>,
    serial: u64,
}

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
        .with_test_writer()
        .try_init();
}

impl Net {
    pub fn new() -> Net {
        init_tracing();
        let t = now().as_millis();
        Net {
            ca: Authority::new("Godwit Test Network CA", t - DAY, t + 365 * DAY).unwrap(),
            tmp: tempfile::tempdir().unwrap(),
            members: Vec::new(),
            channel: ChannelId([0x47; 32]),
            epoch_key: EpochKey::from_bytes([0x11; 32]),
            crl: None,
            limits: NetLimits { reconnect_min_ms: 50, reconnect_max_ms: 1_000, ..NetLimits::default() },
            alert_command: None,
            admin_group: None,
            accounts: Vec::new(),
            metrics: None,
            serial: 1,
        }
    }

    /// Adds a node (not started); returns its index.
    pub fn add(&mut self, name: &'static str, role: Role) -> usize {
        let t = now().as_millis();
        self.add_with_validity(name, role, t - DAY, t + 90 * DAY)
    }

    /// Adds a node of `region` (not started); returns its index.
    pub fn add_in(&mut self, name: &'static str, role: Role, region: &'static str) -> usize {
        let t = now().as_millis();
        self.add_full(name, role, region, t - DAY, t + 90 * DAY)
    }

    pub fn add_with_validity(&mut self, name: &'static str, role: Role, nb: u64, na: u64) -> usize {
        self.add_full(name, role, "ESA", nb, na)
    }

    fn add_full(&mut self, name: &'static str, role: Role, region: &'static str, nb: u64, na: u64) -> usize {
        let mut seed = [0u8; 32];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut seed);
        let key = IdentityKey::from_seed(&seed);
        self.serial += 1;
        let attrs = NodeAttrs {
            administration: name.into(),
            country: "KE".parse().unwrap(),
            region: region.into(),
            role,
        };
        let cert = self.ca.issue(&key, &attrs, self.serial, nb, na).unwrap();
        let dir = self.tmp.path().join(format!("node-{}", self.members.len()));
        self.members.push(Member {
            name,
            seed,
            enc: EncryptionKey::generate(&mut rand_core::OsRng),
            role,
            cert,
            dir,
            listen: "127.0.0.1:0".parse().unwrap(),
            node: None,
        });
        self.members.len() - 1
    }

    pub fn material(&self, ix: usize) -> TlsMaterial {
        let m = &self.members[ix];
        TlsMaterial {
            ca: self.ca.cert_der(),
            cert: m.cert.der.clone(),
            key: pkcs8(&IdentityKey::from_seed(&m.seed)),
            crl: self.crl.clone(),
        }
    }

    fn spec(&self, ix: usize, peers: &[usize], channel_members: &[usize]) -> NodeSpec {
        let m = &self.members[ix];
        let mut relay = RelayConfig::new(m.id(), m.role);
        relay.channels = vec![ChannelConfig {
            id: self.channel,
            members: channel_members.iter().map(|i| self.members[*i].id()).collect(),
        }];
        if m.role == Role::Hub {
            relay.serves = peers
                .iter()
                .filter(|p| self.members[**p].role != Role::Hub)
                .map(|p| self.members[*p].id())
                .collect();
        }
        NodeSpec {
            identity: IdentityKey::from_seed(&m.seed),
            encryption: EncryptionKey::from_secret(&m.enc.to_secret()),
            channel_keys: vec![godwit_node::net::ChannelKeySpec {
                id: self.channel,
                name: "test alerts".into(),
                epoch: 1,
                key: self.epoch_key.clone(),
            }],
            tls: self.material(ix),
            listen: m.listen,
            data_dir: m.dir.clone(),
            relay,
            peers: Vec::new(),
            limits: self.limits.clone(),
            admin_group: self.admin_group.clone(),
            encryption_rotate_ms: None,
            alert_command: self.alert_command.clone(),
            metrics: self.metrics,
            accounts: self.accounts.clone(),
        }
    }

    /// Starts node `ix`; hubs serve the non-hub nodes in `serves`; all nodes in `channel` are
    /// members of the test channel.
    pub async fn start(&mut self, ix: usize, serves: &[usize], channel: &[usize]) {
        self.start_with(ix, serves, channel, false).await;
    }

    /// Starts node `ix`, or says why it does not start.
    pub async fn try_start(
        &mut self,
        ix: usize,
        serves: &[usize],
        channel: &[usize],
    ) -> Result<(), godwit_node::net::NodeError> {
        let spec = self.spec(ix, serves, channel);
        self.metrics = None;
        let node = Node::start(spec).await?;
        self.members[ix].listen = node.local_addr();
        self.members[ix].node = Some(node);
        Ok(())
    }

    /// Starts node `ix`, in recovering mode if `recovering` (after a restore from backup).
    pub async fn start_with(&mut self, ix: usize, serves: &[usize], channel: &[usize], recovering: bool) {
        let mut spec = self.spec(ix, serves, channel);
        self.metrics = None;
        spec.relay.recovering = recovering;
        let node = Node::start(spec).await.unwrap();
        self.members[ix].listen = node.local_addr();
        self.members[ix].node = Some(node);
    }

    /// Makes `a` dial `b` (which must be running).
    pub fn dial(&mut self, a: usize, b: usize) {
        let p = PeerSpec { node_id: self.members[b].id(), address: self.members[b].addr() };
        self.members[a].node.as_mut().unwrap().add_peer(p);
    }

    /// Makes `a` dial `b` and waits until `a` is connected; returns `a`'s event receiver.
    pub async fn join(&mut self, a: usize, b: usize) -> broadcast::Receiver<NodeEvent> {
        let mut events = self.members[a].node().events();
        self.dial(a, b);
        let peer = self.members[b].id();
        wait_connected(self.members[a].node(), &mut events, peer).await;
        events
    }

    pub async fn stop(&mut self, ix: usize) {
        if let Some(n) = self.members[ix].node.take() {
            n.shutdown().await;
        }
    }

    pub fn channel_alert(&self, priority: Priority) -> PublishRequest {
        PublishRequest {
            target: Target::Channel { id: self.channel, epoch: 1, key: self.epoch_key.clone() },
            priority,
            marking: Tlp::Green,
            ttl_ms: DAY,
            body: Body::new(Content::Warning(samples::warning())),
            personal: None,
        }
    }

    pub fn direct(&self, to: usize) -> PublishRequest {
        let m = &self.members[to];
        PublishRequest {
            target: Target::Direct(vec![(m.id(), m.enc.public())]),
            priority: Priority::Immediate,
            marking: Tlp::Red,
            ttl_ms: DAY,
            body: Body::new(Content::SeizureReport(samples::seizure_report())),
            personal: None,
        }
    }
}

/// Waits (bounded) for an event matching `pred`.
pub async fn wait_for(
    rx: &mut broadcast::Receiver<NodeEvent>,
    what: &str,
    mut pred: impl FnMut(&NodeEvent) -> bool,
) -> NodeEvent {
    let fut = async {
        loop {
            match rx.recv().await {
                Ok(e) if pred(&e) => return e,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => {
                    panic!("event stream closed while waiting for {what}")
                }
            }
        }
    };
    tokio::time::timeout(WAIT, fut).await.unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// Waits until `n` distinct messages were delivered.
pub async fn wait_delivered(rx: &mut broadcast::Receiver<NodeEvent>, n: usize) -> BTreeSet<MessageId> {
    let mut got = BTreeSet::new();
    while got.len() < n {
        if let NodeEvent::Delivered(id) = wait_for(rx, &format!("delivery {} of {n}", got.len() + 1), |e| {
            matches!(e, NodeEvent::Delivered(_))
        })
        .await
        {
            got.insert(id);
        }
    }
    got
}

/// Waits until the node is connected to `peer`.
pub async fn wait_connected(node: &Node, rx: &mut broadcast::Receiver<NodeEvent>, peer: NodeId) {
    if node.connected().contains(&peer) {
        return;
    }
    wait_for(rx, "the peer connection", |e| {
        *e == NodeEvent::PeerUp(peer) || matches!(e, NodeEvent::PeerUp(_))
    })
    .await;
    if !node.connected().contains(&peer) {
        wait_for(rx, "the peer connection", |e| *e == NodeEvent::PeerUp(peer)).await;
    }
}

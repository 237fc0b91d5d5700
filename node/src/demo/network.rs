//! `godwitd demo`, act 2: a real network on loopback — two RILO hubs and four national contact
//! points, each a full node (QUIC with mutual TLS, sled store, relay) in a temporary directory.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use godwit_protocol::content::{Body, Content, Tlp};
use godwit_protocol::crypto::EpochKey;
use godwit_protocol::envelope::{Envelope, Priority};
use godwit_protocol::identity::Role;
use godwit_protocol::identity::{EncryptionKey, IdentityKey, NodeId};
use godwit_protocol::ids::ChannelId;
use godwit_protocol::relay::{ChannelConfig, RelayConfig};
use godwit_protocol::samples;
use rand_core::OsRng;
use tokio::sync::broadcast;

use crate::certs::{Authority, NodeAttrs, pkcs8};
use crate::net::{Node, NodeEvent, NodeSpec, PeerSpec, PublishRequest, Target, now};
use crate::tls::{NetLimits, TlsMaterial};

const DAY: u64 = 86_400_000;
const WAIT: Duration = Duration::from_secs(30);

struct Site {
    name: &'static str,
    country: &'static str,
    region: &'static str,
    role: Role,
    key: IdentityKey,
    enc: EncryptionKey,
    tls: TlsMaterial,
    dir: std::path::PathBuf,
}

/// What act 2 established.
#[derive(Debug, Default)]
pub struct NetworkReport {
    /// Nodes that received the flash alert, with the time it took.
    pub alert_latency_ms: BTreeMap<&'static str, u128>,
    /// Whether the direct message reached the member that had been offline.
    pub direct_after_outage: bool,
    /// Inbox sizes at the end, per node.
    pub inboxes: BTreeMap<&'static str, usize>,
}

/// Runs act 2.
///
/// # Errors
/// If a node cannot start or an expected delivery does not happen in time.
/// The demo channel's name, as `godwit send channel --channel …` takes it.
const CHANNEL_NAME: &str = "Operation demo 2026";

/// Runs act 2. With `keep`, the network stays up after the story, with the `godwit` command
/// line for each node printed, until Ctrl-C.
pub async fn run(out: &mut impl Write, keep: bool) -> Result<NetworkReport> {
    let mut report = NetworkReport::default();
    writeln!(out, "\nGodwit demo — act 2: a network of real nodes on 127.0.0.1\n")?;
    let tmp = tempfile::tempdir().context("cannot create a temporary directory")?;
    let t = now().as_millis();
    let ca = Authority::new("Godwit Demo Network CA", t - DAY, t + 365 * DAY)?;
    let plan: [(&str, &str, &str, Role); 6] = [
        ("RILO Eastern & Southern Africa", "KE", "ESA", Role::Hub),
        ("RILO Asia-Pacific", "KR", "AP", Role::Hub),
        ("Tanzania NCP", "TZ", "ESA", Role::Member),
        ("Uganda NCP", "UG", "ESA", Role::Member),
        ("Viet Nam NCP", "VN", "AP", Role::Member),
        ("Thailand NCP", "TH", "AP", Role::Member),
    ];
    let mut sites = Vec::new();
    for (i, (name, country, region, role)) in plan.into_iter().enumerate() {
        let key = IdentityKey::generate(&mut OsRng);
        let attrs =
            NodeAttrs { administration: name.into(), country: country.parse()?, region: region.into(), role };
        let cert = ca.issue(&key, &attrs, i as u64 + 1, t - DAY, t + 90 * DAY)?;
        let tls = TlsMaterial { ca: ca.cert_der(), cert: cert.der, key: pkcs8(&key), crl: None };
        let dir = tmp.path().join(format!("node-{i}"));
        sites.push(Site {
            name,
            country,
            region,
            role,
            key,
            enc: EncryptionKey::generate(&mut OsRng),
            tls,
            dir,
        });
    }
    writeln!(out, "A network CA issues six node certificates (Ed25519, the key is the NodeId):")?;
    for s in &sites {
        writeln!(
            out,
            "  {:<32} {} {:<3} {:<6} {}",
            s.name,
            s.country,
            s.region,
            format!("{:?}", s.role).to_lowercase(),
            s.key.node_id().short()
        )?;
    }
    let ids: Vec<NodeId> = sites.iter().map(|s| s.key.node_id()).collect();
    let channel = ChannelId(sha256(b"Operation demo 2026: ivory and pangolin scales"));
    let epoch_key = EpochKey::generate(&mut OsRng);
    let members: std::collections::BTreeSet<NodeId> = ids.iter().copied().collect();
    let serves = |h: usize| -> Vec<usize> { if h == 0 { vec![2, 3] } else { vec![4, 5] } };

    let mut nodes: Vec<Option<Node>> = Vec::new();
    for i in 0..sites.len() {
        nodes.push(Some(start(&sites, i, &ids, &members, (channel, &epoch_key), &serves).await?));
    }
    let mut events: Vec<broadcast::Receiver<NodeEvent>> =
        nodes.iter().flatten().map(|n| n.events()).collect();
    // Hubs peer with each other; members dial their regional hub.
    let addr = |nodes: &Vec<Option<Node>>, i: usize| nodes[i].as_ref().map(|n| n.local_addr());
    for (from, to) in [(0, 1), (2, 0), (3, 0), (4, 1), (5, 1)] {
        let a = addr(&nodes, to).context("hub is running")?;
        if let Some(n) = nodes[from].as_mut() {
            n.add_peer(PeerSpec { node_id: ids[to], address: a });
        }
    }
    for (i, e) in events.iter_mut().enumerate().skip(2) {
        let hub = if i < 4 { 0 } else { 1 };
        wait(e, |ev| *ev == NodeEvent::PeerUp(ids[hub]))
            .await
            .with_context(|| format!("{} could not reach its hub", sites[i].name))?;
    }
    wait(&mut events[0], |ev| *ev == NodeEvent::PeerUp(ids[1]))
        .await
        .context("the hubs could not connect")?;
    writeln!(
        out,
        "\nAll six nodes are up: QUIC, TLS 1.3 with mutual certificates; members -> regional hub, hub <-> hub."
    )?;

    // 1. A flash alert from Tanzania to the whole operation channel, across both regions.
    let alert = PublishRequest {
        target: Target::Channel { id: channel, epoch: 1, key: epoch_key.clone() },
        priority: Priority::Flash,
        marking: Tlp::Amber,
        ttl_ms: 7 * DAY,
        body: Body { content: Content::Warning(samples::warning()), grading: Some("B2".parse()?) },
        personal: None,
    };
    let started = Instant::now();
    let id = nodes[2].as_ref().context("running")?.publish(alert).await?;
    writeln!(
        out,
        "\nTanzania NCP publishes a flash Warning (TLP:AMBER) to the operation channel: {}",
        id.short()
    )?;
    for i in [0, 1, 3, 4, 5] {
        wait(&mut events[i], |ev| *ev == NodeEvent::Delivered(id))
            .await
            .with_context(|| format!("{} did not receive the alert", sites[i].name))?;
        let ms = started.elapsed().as_millis();
        report.alert_latency_ms.insert(sites[i].name, ms);
        let env = nodes[i].as_ref().context("running")?.envelope(id).await?.context("stored")?;
        let body = Envelope::verify(&env)?.open_channel(&epoch_key)?;
        let title = match &body.content {
            Content::Warning(w) => w.title.clone(),
            other => other.kind().to_string(),
        };
        writeln!(out, "  {:<32} received, verified and opened after {ms:>4} ms: \"{title}\"", sites[i].name)?;
    }

    // 2. A direct TLP:RED seizure report from Viet Nam to Uganda, while Uganda is offline.
    if let Some(n) = nodes[3].take() {
        n.shutdown().await;
    }
    writeln!(out, "\nUganda NCP goes offline.")?;
    let to = vec![(ids[3], sites[3].enc.public())];
    let report_req = PublishRequest {
        target: Target::Direct(to),
        priority: Priority::Immediate,
        marking: Tlp::Red,
        ttl_ms: 30 * DAY,
        body: Body::new(Content::SeizureReport(samples::seizure_report())),
        personal: None,
    };
    let direct = nodes[4].as_ref().context("running")?.publish(report_req).await?;
    writeln!(
        out,
        "Viet Nam NCP sends Uganda a direct TLP:RED seizure report ({}), relayed via both hubs.",
        direct.short()
    )?;
    // The claim, checked: the report is stored at Uganda's hub (the Asia-Pacific hub hears the
    // ESA hub's acknowledgement of each message it passed on) before Uganda comes back.
    let esa = nodes[0].as_ref().context("running")?;
    let held = async {
        loop {
            if esa.envelope(direct).await?.is_some() {
                return Ok::<(), anyhow::Error>(());
            }
            wait(&mut events[1], |ev| matches!(ev, NodeEvent::Acked(p, _) if *p == ids[0])).await?;
        }
    };
    tokio::time::timeout(WAIT, held).await.context("the report never reached the ESA hub")??;
    writeln!(out, "  It waits at the ESA hub for Uganda, stored there and sealed.")?;
    let restarted = start(&sites, 3, &ids, &members, (channel, &epoch_key), &serves).await?;
    let mut e3 = restarted.events();
    let hub_addr = addr(&nodes, 0).context("hub running")?;
    let mut restarted = restarted;
    restarted.add_peer(PeerSpec { node_id: ids[0], address: hub_addr });
    nodes[3] = Some(restarted);
    wait(&mut e3, |ev| *ev == NodeEvent::Delivered(direct)).await.context("Uganda did not catch up")?;
    let env = nodes[3].as_ref().context("running")?.envelope(direct).await?.context("stored")?;
    let body = Envelope::verify(&env)?.open_direct(&ids[3], &sites[3].enc)?;
    report.direct_after_outage = matches!(body.content, Content::SeizureReport(_));
    writeln!(out, "Uganda NCP comes back, catches up from its hub, and opens the report (only it can).")?;
    let hub_inbox = nodes[0].as_ref().context("running")?.inbox().await?;
    writeln!(
        out,
        "  The ESA hub relayed it but holds it sealed: in its inbox? {}",
        hub_inbox.contains(&direct)
    )?;

    for (i, n) in nodes.iter().enumerate() {
        if let Some(n) = n {
            report.inboxes.insert(sites[i].name, n.inbox().await?.len());
        }
    }
    if keep {
        writeln!(out, "\nThe network keeps running until Ctrl-C. Each node answers the godwit tool:")?;
        for (i, n) in nodes.iter().enumerate() {
            if n.is_some() {
                let socket = sites[i].dir.join(godwit_admin_api::SOCKET_NAME);
                writeln!(out, "  {:<32} godwit --socket {} status", sites[i].name, socket.display())?;
            }
        }
        writeln!(
            out,
            "  for example: godwit --socket {} send channel --channel {CHANNEL_NAME:?} --priority flash --file docs/examples/warning.json",
            sites[2].dir.join(godwit_admin_api::SOCKET_NAME).display()
        )?;
        out.flush()?;
        tokio::signal::ctrl_c().await.context("cannot wait for Ctrl-C")?;
    }
    let stopping: Vec<_> = nodes.into_iter().flatten().map(|n| tokio::spawn(n.shutdown())).collect();
    for s in stopping {
        let _ = s.await;
    }
    let slowest = report.alert_latency_ms.values().max().copied().unwrap_or(0);
    writeln!(
        out,
        "\nWhat act 2 showed, with real nodes: a flash alert reached all five other nodes in both"
    )?;
    writeln!(
        out,
        "regions within {slowest} ms, signed and end-to-end encrypted, stored durably at each hop and"
    )?;
    writeln!(
        out,
        "acknowledged; a direct message waited at the hub for an offline member and was delivered"
    )?;
    writeln!(
        out,
        "when it returned. Not shown yet: channel management, receipts, the audit log, the operator CLI."
    )?;
    Ok(report)
}

async fn start(
    sites: &[Site],
    i: usize,
    ids: &[NodeId],
    members: &std::collections::BTreeSet<NodeId>,
    (channel, key): (ChannelId, &EpochKey),
    serves: &dyn Fn(usize) -> Vec<usize>,
) -> Result<Node> {
    let s = &sites[i];
    let mut relay = RelayConfig::new(ids[i], s.role);
    relay.channels = vec![ChannelConfig { id: channel, members: members.clone() }];
    if s.role == Role::Hub {
        relay.serves = serves(i).into_iter().map(|m| ids[m]).collect();
    }
    let spec = NodeSpec {
        identity: IdentityKey::from_seed(&s.key.to_seed()),
        encryption: EncryptionKey::from_secret(&s.enc.to_secret()),
        channel_keys: vec![crate::net::ChannelKeySpec {
            id: channel,
            name: CHANNEL_NAME.into(),
            epoch: 1,
            key: key.clone(),
        }],
        tls: s.tls.clone(),
        listen: "127.0.0.1:0".parse()?,
        data_dir: s.dir.clone(),
        relay,
        peers: Vec::new(),
        limits: NetLimits { reconnect_min_ms: 50, reconnect_max_ms: 1_000, ..NetLimits::default() },
        admin_group: None,
        alert_command: None,
        metrics: None,
    };
    Node::start(spec).await.with_context(|| format!("cannot start {}", s.name))
}

async fn wait(
    rx: &mut broadcast::Receiver<NodeEvent>,
    mut pred: impl FnMut(&NodeEvent) -> bool,
) -> Result<()> {
    let fut = async {
        loop {
            match rx.recv().await {
                Ok(e) if pred(&e) => return Ok(()),
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => bail!("the node stopped"),
            }
        }
    };
    tokio::time::timeout(WAIT, fut).await.context("timed out")?
}

fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(data).into()
}

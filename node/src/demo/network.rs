//! `godwitd demo`, act 2: a real network on loopback — two RILO hubs and four national contact
//! points, each a full node (QUIC with mutual TLS, sled store, relay) in a temporary directory.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use godwit_protocol::content::{Body, Content};
use godwit_protocol::crypto::EpochKey;
use godwit_protocol::identity::Role;
use godwit_protocol::identity::{EncryptionKey, IdentityKey, NodeId};
use godwit_protocol::ids::ChannelId;
use godwit_protocol::relay::{ChannelConfig, RelayConfig};
use godwit_protocol::samples;
use rand_core::OsRng;
use tokio::sync::broadcast;

use godwit_admin_api::{Request, Response};

use super::operator::Operator;
use crate::certs::{Authority, NodeAttrs, pkcs8};
use crate::net::{Node, NodeEvent, NodeSpec, PeerSpec, now};
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
    /// Receipts for the alert that reached its author, the ESA hub.
    pub receipts: usize,
    /// Whether the hub's feedback named the alert and the seizure report.
    pub feedback_linked: bool,
    /// Whether the other region's bulletin reached both ESA members.
    pub bulletin_crossed: bool,
    /// Whether the seizure report named its count, air waybill and airport code.
    pub seizure_detail: bool,
    /// Whether the forensic result and the case outcome reached the hub linked to the report.
    pub case_linked: bool,
    /// Whether the operation channel's admitted members read its alert, and the member removed
    /// afterwards held no key for the next one.
    pub channel_rotated: bool,
    /// Whether the ESA hub's checkpoint was cosigned by its peers and its log verified sound.
    pub audit_witnessed: bool,
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

    // Every operator acts through its node's admin socket, as `godwit` does.
    let ops: Vec<Operator> = sites.iter().map(|s| Operator::of(&s.dir)).collect();
    // Each node's signed card reaches every other node's directory: operators name nodes by
    // administration or country, and direct messages seal to the newest card.
    for i in 0..sites.len() {
        let node = nodes[i].as_ref().context("running")?;
        loop {
            let mut cards = node.events();
            if ops[i].directory().await?.len() >= sites.len() {
                break;
            }
            wait(&mut cards, |ev| matches!(ev, NodeEvent::Card(_)))
                .await
                .with_context(|| format!("{} did not learn every node's card", sites[i].name))?;
        }
    }
    let clock = Instant::now();
    let at = || format!("[{:>6.3} s]", clock.elapsed().as_secs_f64());
    writeln!(out, "Every node holds every other node's signed card (its directory).\n")?;

    // 1. The ESA hub broadcasts a flash alert to the operation channel, across both regions.
    let warning = Body { grading: Some("B2".parse()?), ..Body::new(Content::Warning(samples::warning())) };
    let started = Instant::now();
    let alert = ops[0].send_channel(CHANNEL_NAME, "flash", "TLP:AMBER", &warning).await?;
    writeln!(
        out,
        "{} RILO ESA: godwit send alert --channel {CHANNEL_NAME:?} --priority flash --marking amber\n           -> {}",
        at(),
        alert.short()
    )?;
    for i in [1, 2, 3, 4, 5] {
        wait(&mut events[i], |ev| *ev == NodeEvent::Delivered(alert))
            .await
            .with_context(|| format!("{} did not receive the alert", sites[i].name))?;
        let ms = started.elapsed().as_millis();
        report.alert_latency_ms.insert(sites[i].name, ms);
        let (_, body) =
            ops[i].show(alert).await.with_context(|| format!("{} cannot open the alert", sites[i].name))?;
        let title = match &body.content {
            Content::Warning(w) => w.title.clone(),
            other => other.kind().to_string(),
        };
        writeln!(out, "  {:<32} received, verified and opened after {ms:>4} ms: \"{title}\"", sites[i].name)?;
    }

    // 2. The four NCPs acknowledge it: each receipt goes back to the hub, signed.
    let mut receipts = Vec::new();
    for i in [2, 3, 4, 5] {
        let r = ops[i].ack(alert, "received by the duty officer").await?.context("no receipt sent")?;
        receipts.push(r);
    }
    for r in &receipts {
        wait(&mut events[0], |ev| *ev == NodeEvent::Delivered(*r))
            .await
            .context("a receipt did not reach the hub")?;
    }
    let hub_inbox = ops[0].inbox().await?;
    let acked: Vec<&str> = hub_inbox
        .iter()
        .filter(|m| m.kind == "receipt" && m.refers_to == Some(alert) && m.title.starts_with("read "))
        .map(|m| m.administration.as_str())
        .collect();
    let delivered = hub_inbox
        .iter()
        .filter(|m| m.kind == "receipt" && m.refers_to == Some(alert) && m.title.starts_with("delivered "))
        .count();
    report.receipts = acked.len();
    writeln!(
        out,
        "{} The NCPs: godwit inbox ack {} --note \"received by the duty officer\"",
        at(),
        alert.short()
    )?;
    writeln!(
        out,
        "  RILO ESA's inbox holds {} signed read receipts for the alert ({}), and {delivered} \"delivered\" receipts their nodes sent themselves",
        acked.len(),
        acked.join(", ")
    )?;

    // 3. Tanzania seizes the goods, reports to the channel and gives the hub feedback linked to
    //    the alert and the report.
    let mut seized = samples::seizure_report();
    seized.warning = Some(alert);
    let seizure = ops[2]
        .send_channel(CHANNEL_NAME, "immediate", "TLP:AMBER", &Body::new(Content::SeizureReport(seized)))
        .await?;
    let feedback = Body::new(Content::Feedback(samples::feedback(alert, seizure)));
    let fb = ops[2].send_direct(&[sites[0].name], "immediate", "TLP:AMBER", &feedback).await?;
    writeln!(out, "{} Tanzania NCP: godwit send seizure --channel … -> {}", at(), seizure.short())?;
    writeln!(
        out,
        "           godwit send feedback --to {:?} --warning {} --outcome seized --seizure {} -> {}",
        sites[0].name,
        alert.short(),
        seizure.short(),
        fb.short()
    )?;
    wait(&mut events[0], |ev| *ev == NodeEvent::Delivered(fb))
        .await
        .context("the feedback did not reach the hub")?;
    let (_, body) = ops[0].show(fb).await?;
    report.feedback_linked =
        matches!(&body.content, Content::Feedback(f) if f.warning == alert && f.seizure == Some(seizure));
    writeln!(
        out,
        "  RILO ESA opens the feedback: outcome seized, linked to alert {} and report {}: {}",
        alert.short(),
        seizure.short(),
        report.feedback_linked
    )?;
    // What the report says, as the hub's analyst reads it: how many tusks, which air waybill,
    // which port.
    let (_, body) = ops[0].show(seizure).await?;
    if let Content::SeizureReport(r) = &body.content {
        let tusks = &r.items[0];
        let count = tusks.measures.iter().find(|m| m.unit.is_none()).map(|m| m.amount.to_string());
        let awb = r.shipment.iter().find(|t| t.kind() == "air_waybill").map(ToString::to_string);
        report.seizure_detail = count.is_some() && awb.is_some() && r.place.iata.is_some();
        writeln!(
            out,
            "  RILO ESA reads the report: {} tusks ({} kg) of {}, {}, at {} ({} / {}), linked to the alert: {}",
            count.unwrap_or_default(),
            tusks.quantity.as_ref().map(ToString::to_string).unwrap_or_default(),
            tusks.taxon.scientific,
            awb.unwrap_or_default(),
            r.place.name,
            r.place.iata.map(|a| a.to_string()).unwrap_or_default(),
            r.place.locode.as_ref().map(ToString::to_string).unwrap_or_default(),
            r.warning == Some(alert)
        )?;
    }
    // The case goes on: a DNA origin result and the court's outcome, each linked to the report.
    let forensic = ops[2]
        .send_channel(
            CHANNEL_NAME,
            "routine",
            "TLP:AMBER",
            &Body::new(Content::ForensicSample(samples::forensic_sample(seizure))),
        )
        .await?;
    let case = ops[2]
        .send_channel(
            CHANNEL_NAME,
            "routine",
            "TLP:AMBER",
            &Body::new(Content::CaseFollowUp(samples::case_follow_up(seizure))),
        )
        .await?;
    for m in [forensic, case] {
        wait(&mut events[0], |ev| *ev == NodeEvent::Delivered(m))
            .await
            .context("the case record did not reach the hub")?;
    }
    let linked = ops[0].inbox().await?;
    let follow_ups: Vec<&str> = linked
        .iter()
        .filter(|m| {
            m.refers_to == Some(seizure) && matches!(m.kind.as_str(), "forensic_sample" | "case_follow_up")
        })
        .map(|m| m.title.as_str())
        .collect();
    report.case_linked = follow_ups.len() == 2;
    writeln!(
        out,
        "{} Tanzania NCP: a forensic result and the case outcome, linked to report {}:",
        at(),
        seizure.short()
    )?;
    for t in &follow_ups {
        writeln!(out, "  RILO ESA's inbox: {t}")?;
    }

    // 4. The Asia-Pacific hub's bulletin crosses into the other region.
    let bulletin = ops[1]
        .send_channel(
            CHANNEL_NAME,
            "routine",
            "TLP:GREEN",
            &Body::new(Content::Bulletin(samples::bulletin())),
        )
        .await?;
    writeln!(out, "{} RILO Asia-Pacific: godwit send bulletin --channel … -> {}", at(), bulletin.short())?;
    for i in [2, 3] {
        wait(&mut events[i], |ev| *ev == NodeEvent::Delivered(bulletin))
            .await
            .with_context(|| format!("{} did not receive the bulletin", sites[i].name))?;
        writeln!(out, "  {:<32} received it from the other region", sites[i].name)?;
    }
    report.bulletin_crossed = true;

    // 5. A direct TLP:RED seizure report from Viet Nam to Uganda alone, while Uganda is offline.
    if let Some(n) = nodes[3].take() {
        n.shutdown().await;
    }
    writeln!(out, "\n{} Uganda NCP goes offline.", at())?;
    let red = Body::new(Content::SeizureReport(samples::seizure_report()));
    let direct = ops[4].send_direct(&["UG"], "immediate", "TLP:RED", &red).await?;
    writeln!(
        out,
        "{} Viet Nam NCP: godwit send seizure --to UG --marking red -> {}, sealed to Uganda's card, relayed via both hubs",
        at(),
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
    events[3] = restarted.events();
    let hub_addr = addr(&nodes, 0).context("hub running")?;
    let mut restarted = restarted;
    restarted.add_peer(PeerSpec { node_id: ids[0], address: hub_addr });
    nodes[3] = Some(restarted);
    wait(&mut e3, |ev| *ev == NodeEvent::Delivered(direct)).await.context("Uganda did not catch up")?;
    let (view, body) = ops[3].show(direct).await?;
    report.direct_after_outage =
        matches!(body.content, Content::SeizureReport(_)) && view.item.marking == "TLP:RED";
    writeln!(
        out,
        "{} Uganda NCP comes back, catches up from its hub, and opens the report (only it can).",
        at()
    )?;
    let hub_has = ops[0].inbox().await?.iter().any(|m| m.id == direct);
    let thailand_has = ops[5].inbox().await?.iter().any(|m| m.id == direct);
    writeln!(
        out,
        "  The ESA hub relayed it but holds it sealed: in its inbox? {hub_has}; Thailand's? {thailand_has}"
    )?;
    if hub_has || thailand_has {
        bail!("a TLP:RED message reached an inbox other than its recipient's");
    }

    // 6. The ESA hub opens a closed operation channel, admits Tanzania and Uganda, broadcasts,
    //    then removes Uganda: the next alert is sealed under a key Uganda never receives.
    report.channel_rotated = operation_channel(out, &ops, &sites, &ids, &mut events, &at).await?;

    // 7. The audit log: the ESA hub checkpoints what it did; its peers cosign it only as an
    //    extension of what they cosigned before; an inspector's check rebuilds it.
    report.audit_witnessed = audit_log(out, &ops, &sites, &ids, &mut events, &at).await?;

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
        "acknowledged; every operator acted through its node's admin socket (the godwit tool's API):"
    )?;
    writeln!(
        out,
        "receipts went back to the alert's author, feedback linked the alert to the seizure, a bulletin"
    )?;
    writeln!(
        out,
        "crossed regions, and a TLP:RED report waited at the hub for an offline member and reached it alone."
    )?;
    writeln!(
        out,
        "An operation channel admitted two NCPs by signed state and removed one: the next alert's key"
    )?;
    writeln!(out, "was sealed to the remaining members only.")?;
    writeln!(
        out,
        "Receipts showed per member who had the alert and who read it; a retraction reached its holder."
    )?;
    writeln!(
        out,
        "Every node's audit log is a Merkle tree of what it did; the hub's signed checkpoint was cosigned"
    )?;
    writeln!(out, "by its peers, and verify rebuilt it from the entries.")?;
    writeln!(
        out,
        "Not shown here: a node caught rolling its log back or lying to its peers (the tests do that)."
    )?;
    Ok(report)
}

/// Step 7: the ESA hub's audit log, checkpointed, cosigned and verified; returns whether it was.
async fn audit_log(
    out: &mut impl Write,
    ops: &[Operator],
    sites: &[Site],
    ids: &[NodeId],
    events: &mut [broadcast::Receiver<NodeEvent>],
    at: &impl Fn() -> String,
) -> Result<bool> {
    use godwit_admin_api::audit::{AuditAnswer, AuditRequest};
    let ask = |req| async move {
        match ops[0].ask(Request::Audit(req)).await? {
            Response::Audit(a) => Ok(*a),
            other => bail!("unexpected answer {other:?}"),
        }
    };
    writeln!(out, "\n{} RILO ESA's operator: godwit audit checkpoint", at())?;
    let AuditAnswer::Checkpoint { note, .. } = ask(AuditRequest::Checkpoint).await? else {
        bail!("no checkpoint");
    };
    let signed = godwit_protocol::audit::note::SignedCheckpoint::open(&note)?;
    let size = signed.checkpoint.size;
    writeln!(out, "  checkpoint of {size} entries, signed as a C2SP note:")?;
    for line in note.lines().filter(|l| !l.is_empty()) {
        writeln!(out, "    {line}")?;
    }
    // Cosigned by its peers: the two NCPs it serves and the other hub.
    let mut missing: Vec<NodeId> = vec![ids[1], ids[2], ids[3]];
    let rx = &mut events[0];
    wait(rx, |e| {
        if let NodeEvent::Cosigned { witness, size: s } = e {
            if *s >= size {
                missing.retain(|m| m != witness);
            }
        }
        missing.is_empty()
    })
    .await
    .context("the hub's checkpoint was not cosigned by its three peers")?;
    let name = |n: &NodeId| ids.iter().position(|i| i == n).map_or("?", |i| sites[i].name);
    writeln!(
        out,
        "  cosigned (C2SP tlog-cosignature) by {}, {} and {}: each checked it extends what it cosigned before",
        name(&ids[1]),
        name(&ids[2]),
        name(&ids[3])
    )?;
    writeln!(out, "{} RILO ESA's operator: godwit audit verify", at())?;
    let AuditAnswer::Verified(gens) = ask(AuditRequest::Verify).await? else { bail!("no verify answer") };
    let sound = gens.iter().all(|g| g.first_bad.is_none() && g.bad_checkpoints.is_empty());
    let (entries, checkpoints, cosignatures) =
        gens.iter().fold((0, 0, 0), |a, g| (a.0 + g.entries, a.1 + g.checkpoints, a.2 + g.cosignatures));
    writeln!(
        out,
        "  {entries} entries rebuilt into the tree, {checkpoints} checkpoint(s) and {cosignatures} cosignatures checked: sound? {sound}"
    )?;
    Ok(sound && cosignatures >= 3)
}

/// Step 6: an operation channel with signed state; returns whether it went as it should.
async fn operation_channel(
    out: &mut impl Write,
    ops: &[Operator],
    sites: &[Site],
    ids: &[NodeId],
    events: &mut [broadcast::Receiver<NodeEvent>],
    at: &impl Fn() -> String,
) -> Result<bool> {
    use godwit_admin_api::ChannelChange as C;
    const OP: &str = "Operation Tusk";
    let (channel, epoch) = ops[0]
        .change_channel(C::Create {
            name: OP.into(),
            purpose: "ivory through Dar es Salaam and Entebbe".into(),
            deputy: None,
            ends_ms: None,
            retain_days: 365,
        })
        .await?;
    writeln!(
        out,
        "\n{} RILO ESA: godwit channels create {OP:?} -> channel {} (epoch {epoch}, signed state)",
        at(),
        &channel[..12]
    )?;
    let channel_id: godwit_protocol::ids::ChannelId = channel.parse()?;
    let mut last = epoch;
    for i in [2, 3] {
        let (_, e) = ops[0]
            .change_channel(C::Admit {
                channel: channel.clone(),
                node: ids[i].to_string(),
                read: true,
                publish: true,
            })
            .await?;
        writeln!(out, "{} RILO ESA: godwit channels admit {OP:?} {:?} -> epoch {e}", at(), sites[i].name)?;
        last = e;
    }
    for i in [2, 3] {
        wait(&mut events[i], |ev| *ev == NodeEvent::ChannelKey { channel: channel_id, epoch: last })
            .await
            .with_context(|| format!("{} did not receive the channel key", sites[i].name))?;
    }
    writeln!(out, "  Tanzania and Uganda each open the epoch key sealed to their own encryption key.")?;
    let warning = Body::new(Content::Warning(samples::warning()));
    let first = ops[0].send_channel(OP, "flash", "TLP:AMBER", &warning).await?;
    let mut read = 0;
    for i in [2, 3] {
        wait(&mut events[i], |ev| *ev == NodeEvent::Delivered(first)).await.context("the operation alert")?;
        if matches!(ops[i].show(first).await?.1.content, Content::Warning(_)) {
            read += 1;
        }
    }
    writeln!(out, "{} RILO ESA: alert {} to {OP:?}: read by {read} of 2 members", at(), first.short())?;
    // Tanzania's officer acknowledges it; the hub sees per member what its nodes and officers said.
    let tz_ack = ops[2].ack(first, "duty officer").await?.context("no receipt sent")?;
    wait(&mut events[0], |ev| *ev == NodeEvent::Delivered(tz_ack)).await.context("the receipt")?;
    // Each member's node receipts the flash alert as delivered by itself: wait for both.
    let rows = tokio::time::timeout(WAIT, async {
        loop {
            let mut next = events[0].resubscribe();
            let rows = ops[0].receipts(first).await?;
            if rows.rows.iter().filter(|r| r.delivered_ms.is_some()).count() >= 2 {
                return Ok::<_, anyhow::Error>(rows);
            }
            wait(&mut next, |ev| matches!(ev, NodeEvent::Delivered(_))).await?;
        }
    })
    .await
    .context("the delivered receipts did not reach the hub")??;
    writeln!(out, "{} RILO ESA: godwit receipts {}", at(), first.short())?;
    let mut receipted = 0;
    for r in &rows.rows {
        let seen = |t: Option<u64>| if t.is_some() { "yes" } else { "-" };
        writeln!(
            out,
            "  {:<32} delivered {:<3}  read {:<3}  actioned {}",
            r.administration,
            seen(r.delivered_ms),
            seen(r.read_ms),
            seen(r.actioned_ms)
        )?;
        receipted += usize::from(r.delivered_ms.is_some());
    }
    let (_, removed) =
        ops[0].change_channel(C::Remove { channel: channel.clone(), node: ids[3].to_string() }).await?;
    writeln!(out, "{} RILO ESA: godwit channels remove {OP:?} \"Uganda NCP\" -> epoch {removed}", at())?;
    wait(&mut events[2], |ev| *ev == NodeEvent::ChannelKey { channel: channel_id, epoch: removed })
        .await
        .context("Tanzania did not receive the new key")?;
    wait(&mut events[3], |ev| *ev == NodeEvent::ChannelState { channel: channel_id, epoch: removed })
        .await
        .context("Uganda did not learn of its removal")?;
    let second = ops[0].send_channel(OP, "flash", "TLP:AMBER", &warning).await?;
    wait(&mut events[2], |ev| *ev == NodeEvent::Delivered(second)).await.context("the second alert")?;
    let uganda = ops[3].channel(OP).await?;
    let uganda_has = ops[3].inbox().await?.iter().any(|m| m.id == second);
    writeln!(
        out,
        "{} RILO ESA: alert {}: Tanzania reads it; Uganda holds the key of epoch {removed}? {}; has the alert? {uganda_has}",
        at(),
        second.short(),
        uganda.has_key
    )?;
    // The hub finds the second alert wrong and retracts it: Tanzania's inbox shows so.
    let retraction = ops[0].retract(second, "wrong flight number").await?;
    wait(&mut events[2], |ev| *ev == NodeEvent::Delivered(retraction)).await.context("the retraction")?;
    let status =
        ops[2].inbox().await?.into_iter().find(|m| m.id == second).map(|m| m.status).unwrap_or_default();
    writeln!(
        out,
        "{} RILO ESA: godwit send retract {} --reason \"wrong flight number\" -> Tanzania's inbox shows it {status}",
        at(),
        second.short()
    )?;
    Ok(read == 2
        && receipted == 2
        && !uganda.has_key
        && !uganda_has
        && uganda.epoch == removed
        && status == "retracted")
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
        encryption_rotate_ms: None,
        alert_command: None,
        metrics: None,
        accounts: Vec::new(),
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

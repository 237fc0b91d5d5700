//! The audit log over real QUIC: nodes witness each other's checkpoints, a node rolled back
//! from a backup is caught by its peers, and a node that shows two peers different checkpoints
//! is caught — each raised as an alarm with both checkpoints as evidence. The inspector's side
//! too: `godwit audit export` is enough to recompute a checkpoint's root independently.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod support;

use std::path::Path;
use std::process::Output;

use godwit_admin_api as api;
use godwit_node::net::NodeEvent;
use godwit_protocol::audit::merkle::MemoryTree;
use godwit_protocol::audit::note::{self, Checkpoint, SignedCheckpoint};
use godwit_protocol::audit::witness::AlarmKind;
use godwit_protocol::identity::{IdentityKey, Role};
use godwit_protocol::wire::{AuditFrame, Frame};
use support::network::*;
use support::raw::Raw;
use support::stderr;

async fn godwit(socket: &Path, rest: &[&str]) -> Output {
    let mut v = vec!["--socket".to_string(), socket.display().to_string()];
    v.extend(rest.iter().map(|s| (*s).to_string()));
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = v.iter().map(String::as_str).collect();
        support::godwit(&args)
    })
    .await
    .unwrap()
}

async fn json(socket: &Path, rest: &[&str]) -> serde_json::Value {
    let mut v = vec!["--json"];
    v.extend_from_slice(rest);
    let o = godwit(socket, &v).await;
    assert!(o.status.success(), "godwit {rest:?}: {}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn fast(net: &mut Net) {
    net.limits.checkpoint_every_ms = 100;
}

/// Waits until `witness` cosigned a checkpoint of at least `size` of the node whose events these
/// are; returns the size.
async fn cosigned(
    events: &mut tokio::sync::broadcast::Receiver<NodeEvent>,
    witness: godwit_protocol::identity::NodeId,
    size: u64,
) -> u64 {
    match wait_for(
        events,
        "a cosignature",
        |e| matches!(e, NodeEvent::Cosigned { witness: w, size: s } if *w == witness && *s >= size),
    )
    .await
    {
        NodeEvent::Cosigned { size, .. } => size,
        _ => unreachable!(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_witness_each_other_and_an_inspector_recomputes_the_root_from_the_export() {
    let mut net = Net::new();
    fast(&mut net);
    let hub = net.add("RILO ESA", Role::Hub);
    let a = net.add("Tanzania NCP", Role::Member);
    let b = net.add("Uganda Revenue Authority", Role::Member);
    let all = [hub, a, b];
    net.start(hub, &[a, b], &all).await;
    net.start(a, &[], &all).await;
    net.start(b, &[], &all).await;
    let mut eh = net.members[hub].node().events();
    let mut ea = net.join(a, hub).await;
    let mut eb = net.join(b, hub).await;
    let (idh, ida, idb) = (net.members[hub].id(), net.members[a].id(), net.members[b].id());
    // Some traffic, so that every log has entries: an alert through the hub.
    net.members[a]
        .node()
        .publish(net.channel_alert(godwit_protocol::envelope::Priority::Flash))
        .await
        .unwrap();
    // The hub's log is cosigned by both members, each member's by the hub (in any order).
    let mut want = [(idh, ida), (idh, idb), (ida, idh), (idb, idh)].to_vec();
    let fut = async {
        while !want.is_empty() {
            let (log, e) = tokio::select! {
                e = eh.recv() => (idh, e),
                e = ea.recv() => (ida, e),
                e = eb.recv() => (idb, e),
            };
            if let Ok(NodeEvent::Cosigned { witness, .. }) = e {
                want.retain(|w| *w != (log, witness));
            }
        }
    };
    tokio::time::timeout(WAIT, fut).await.expect("every log cosigned by its peers");

    let socket = net.members[hub].dir.join(api::SOCKET_NAME);
    let cp = json(&socket, &["audit", "checkpoint"]).await;
    // The checkpoint just signed may not be cosigned yet; an earlier one, cosigned, counts.
    let witnessed =
        SignedCheckpoint::open(cp["witnessed"].as_str().expect("a witnessed checkpoint")).unwrap();
    assert!(!witnessed.cosigners(&[ida, idb]).is_empty(), "{cp}");
    // The member saw the other member's log through the hub (passed on, cosigned by the hub).
    let w = json(&net.members[b].dir.join(api::SOCKET_NAME), &["audit", "witnesses"]).await;
    let witnessing = w["witnessing"].as_array().unwrap();
    let nodes: Vec<&str> = witnessing.iter().map(|l| l["node"].as_str().unwrap()).collect();
    assert!(nodes.contains(&idh.to_string().as_str()) && nodes.contains(&ida.to_string().as_str()), "{w}");
    assert!(w["alarms"].as_array().unwrap().is_empty(), "{w}");

    // verify, prove, export — and the export alone recomputes the newest checkpoint's root.
    let v = godwit(&socket, &["audit", "verify"]).await;
    assert!(v.status.success(), "{}", stderr(&v));
    let p = json(&socket, &["audit", "prove", "inclusion", "0"]).await;
    assert!(p["inclusion"]["proof"].is_array(), "{p}");
    let o = godwit(&socket, &["audit", "export"]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    let mut tree = MemoryTree::new();
    let mut checkpoints = Vec::new();
    for line in String::from_utf8(o.stdout).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        match v["type"].as_str().unwrap() {
            "entry" => {
                assert_eq!(v["index"].as_u64().unwrap(), tree.size());
                tree.push(&hex::decode(v["leaf_hex"].as_str().unwrap()).unwrap());
            }
            "checkpoint" => checkpoints.push(v["note"].as_str().unwrap().to_string()),
            t => panic!("unknown line type {t}"),
        }
    }
    assert!(!checkpoints.is_empty());
    for c in &checkpoints {
        let s = SignedCheckpoint::open(c).unwrap();
        assert_eq!(s.node, idh);
        assert_eq!(
            tree.root_at(s.checkpoint.size).unwrap(),
            s.checkpoint.root,
            "checkpoint {}",
            s.checkpoint.size
        );
    }
    let newest = SignedCheckpoint::open(checkpoints.last().unwrap()).unwrap();
    assert!(!newest.cosigners(&[ida, idb]).is_empty(), "the export carries the cosignatures");
    for ix in all {
        net.stop(ix).await;
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let t = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &t);
        } else if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), &t).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_rolled_back_from_a_backup_is_caught_by_its_peers() {
    let mut net = Net::new();
    fast(&mut net);
    net.alert_command = None;
    let hub = net.add("RILO ESA", Role::Hub);
    let a = net.add("Tanzania NCP", Role::Member);
    let all = [hub, a];
    net.start(hub, &[a], &all).await;
    net.start(a, &[], &all).await;
    let mut eh = net.members[hub].node().events();
    let mut ea = net.join(a, hub).await;
    let idh = net.members[hub].id();
    let ida = net.members[a].id();
    let first = cosigned(&mut ea, idh, 1).await;
    net.stop(a).await;
    let backup = net.tmp.path().join("backup");
    copy_dir(&net.members[a].dir, &backup);
    // Back up, the node goes on: more entries, a larger checkpoint cosigned by the hub.
    net.members[a].listen = "127.0.0.1:0".parse().unwrap();
    net.start(a, &[], &all).await;
    let mut ea = net.join(a, hub).await;
    for _ in 0..5 {
        net.members[a]
            .node()
            .publish(net.channel_alert(godwit_protocol::envelope::Priority::Routine))
            .await
            .unwrap();
    }
    let second = cosigned(&mut ea, idh, first + 5).await;
    assert!(second > first);
    net.stop(a).await;
    // Restored from the backup: its log is shorter than what the hub cosigned.
    std::fs::remove_dir_all(&net.members[a].dir).unwrap();
    copy_dir(&backup, &net.members[a].dir);
    net.members[a].listen = "127.0.0.1:0".parse().unwrap();
    net.start_with(a, &[], &all, true).await;
    net.dial(a, hub);
    let e = wait_for(
        &mut eh,
        "the hub's alarm",
        |e| matches!(e, NodeEvent::AuditAlarm { node, .. } if *node == ida),
    )
    .await;
    // Smaller than what the hub cosigned (a rollback), or — if it grew past it meanwhile — not
    // an extension of it.
    assert!(matches!(e, NodeEvent::AuditAlarm { .. }), "{e:?}");
    // Told to the operator, with both checkpoints kept as evidence in the hub's own log.
    let socket = net.members[hub].dir.join(api::SOCKET_NAME);
    let status = json(&socket, &["status"]).await;
    let warnings = status["warnings"].to_string();
    assert!(warnings.contains("audit log of"), "{warnings}");
    let w = json(&socket, &["audit", "witnesses"]).await;
    let alarm = &w["alarms"][0];
    let (held, presented) = (alarm["held"].as_str().unwrap(), alarm["presented"].as_str().unwrap());
    let (held, presented) =
        (SignedCheckpoint::open(held).unwrap(), SignedCheckpoint::open(presented).unwrap());
    assert_eq!((held.node, presented.node), (ida, ida));
    assert_ne!(held.checkpoint, presented.checkpoint);
    let tail = json(&socket, &["audit", "tail", "-n", "50"]).await;
    assert!(tail.to_string().contains("AuditAlarm"), "{tail}");
    for ix in all {
        net.stop(ix).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_showing_two_peers_different_checkpoints_is_caught() {
    let mut net = Net::new();
    fast(&mut net);
    let west = net.add_in("RILO WCA", Role::Hub, "WCA");
    let east = net.add_in("RILO ESA", Role::Hub, "ESA");
    let liar = net.add_in("Compromised NCP", Role::Member, "ESA");
    let all = [west, east, liar];
    net.start(west, &[], &all).await;
    net.start(east, &[liar], &all).await;
    let mut ew = net.members[west].node().events();
    let mut ee = net.join(east, west).await;
    let key = IdentityKey::from_seed(&net.members[liar].seed);
    let id = key.node_id();
    // Two histories of the same size, one for each hub.
    let sign = |salt: u8| {
        let mut t = MemoryTree::new();
        for i in 0..5u8 {
            t.push(&[salt, i]);
        }
        let c = Checkpoint {
            origin: note::origin(&id, 0),
            size: 5,
            root: t.root_at(5).unwrap(),
            extensions: vec![],
        };
        SignedCheckpoint::sign(&key, c).unwrap().note.to_text()
    };
    let mut to_west = Raw::hello(&net, liar, west, false).await;
    let mut to_east = Raw::hello(&net, liar, east, false).await;
    to_west.send(&Frame::Audit(AuditFrame::Checkpoint { note: sign(1), from: 0, proof: vec![] })).await;
    to_east.send(&Frame::Audit(AuditFrame::Checkpoint { note: sign(2), from: 0, proof: vec![] })).await;
    // Each hub cosigned what it was shown, as a witness does on first sight ...
    let f = to_west
        .next("the west hub's cosignature", |f| matches!(f, Frame::Audit(AuditFrame::Cosigned { .. })))
        .await;
    let Frame::Audit(AuditFrame::Cosigned { line, size, .. }) = f else { unreachable!() };
    assert_eq!(size, 5);
    let sig = note::NoteSignature::parse_line(line.trim_end()).unwrap();
    let wid = net.members[west].id();
    let body = SignedCheckpoint::open(&sign(1)).unwrap().note.text;
    assert!(
        note::cosignature_time(&sig, &note::key_name(&wid), &wid, &body).is_some(),
        "a valid C2SP cosignature"
    );
    // ... and passed it on: the other hub, holding another root for size 5, catches the lie.
    let caught = async {
        tokio::select! {
            e = wait_for(&mut ew, "the west hub's alarm", |e| matches!(e, NodeEvent::AuditAlarm { node, .. } if *node == id)) => e,
            e = wait_for(&mut ee, "the east hub's alarm", |e| matches!(e, NodeEvent::AuditAlarm { node, .. } if *node == id)) => e,
        }
    };
    let e = caught.await;
    assert!(matches!(e, NodeEvent::AuditAlarm { kind: AlarmKind::SplitView, .. }), "{e:?}");
    for ix in [west, east] {
        net.stop(ix).await;
    }
}

//! Channels as signed state, over real QUIC: a hub creates a channel, admits NCPs and removes
//! one; epoch keys reach the readers only; a removed NCP cannot read what is sent after; a new
//! member is not sent what came before it; a closed channel refuses new messages.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod support;

use std::process::Output;

use godwit_admin_api as api;
use godwit_node::net::NodeEvent;
use godwit_protocol::identity::Role;
use godwit_protocol::ids::{ChannelId, MessageId};
use support::network::*;
use support::{stderr, stdout};

/// Runs `godwit` off the runtime's threads (the nodes under test need them).
async fn godwit(socket: &std::path::Path, rest: &[&str]) -> Output {
    let mut args = vec!["--socket".to_string(), socket.display().to_string()];
    args.extend(rest.iter().map(|s| (*s).to_string()));
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        support::godwit(&args)
    })
    .await
    .unwrap()
}

async fn json(socket: &std::path::Path, rest: &[&str]) -> serde_json::Value {
    let mut args = vec!["--json"];
    args.extend_from_slice(rest);
    let o = godwit(socket, &args).await;
    assert!(o.status.success(), "godwit {rest:?}: {}", stderr(&o));
    serde_json::from_str(&stdout(&o)).unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(&o)))
}

async fn bulletin(socket: &std::path::Path, channel: &str, title: &str) -> Result<MessageId, String> {
    let o = godwit(
        socket,
        &[
            "--json",
            "send",
            "bulletin",
            "--channel",
            channel,
            "--title",
            title,
            "--summary",
            "ivory via NBO",
            "--text",
            "analysis",
        ],
    )
    .await;
    if !o.status.success() {
        return Err(stderr(&o));
    }
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    Ok(v["id"].as_str().unwrap().parse().unwrap())
}

/// The inbox as (id, kind) pairs.
async fn inbox(socket: &std::path::Path) -> Vec<(MessageId, String)> {
    let v = json(socket, &["inbox", "list"]).await;
    v.as_array()
        .unwrap()
        .iter()
        .map(|i| (i["id"].as_str().unwrap().parse().unwrap(), i["kind"].as_str().unwrap().to_string()))
        .collect()
}

async fn key_at(
    rx: &mut tokio::sync::broadcast::Receiver<NodeEvent>,
    who: &str,
    channel: ChannelId,
    epoch: u64,
) {
    wait_for(rx, &format!("{who} takes the key of epoch {epoch}"), |e| {
        *e == NodeEvent::ChannelKey { channel, epoch }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_admits_and_removes_members_and_only_current_members_read() {
    let mut net = Net::new();
    let hub = net.add("RILO ESA", Role::Hub);
    let ncps = [
        net.add("Kenya NCP", Role::Member),
        net.add("Tanzania NCP", Role::Member),
        net.add("Uganda NCP", Role::Member),
        net.add("Rwanda NCP", Role::Member),
    ];
    let all: Vec<usize> = std::iter::once(hub).chain(ncps).collect();
    net.start(hub, &ncps, &[]).await;
    let mut eh = net.members[hub].node().events();
    let mut events = Vec::new();
    for n in ncps {
        net.start(n, &[], &[]).await;
        events.push(net.join(n, hub).await);
    }
    for n in ncps {
        let id = net.members[n].id();
        wait_for(&mut eh, "each NCP's card at the hub", |e| *e == NodeEvent::Card(id)).await;
    }
    let sockets: Vec<std::path::PathBuf> = net.members.iter().map(|m| m.dir.join(api::SOCKET_NAME)).collect();
    let socket = |ix: usize| sockets[ix].clone();
    let (hs, ids): (_, Vec<String>) =
        (socket(hub), ncps.iter().map(|n| net.members[*n].id().to_string()).collect());

    // Created: the hub is its only member, and holds the key of epoch 1.
    let made = json(&hs, &["channels", "create", "ESA alerts", "--purpose", "regional alerts"]).await;
    assert_eq!(made["epoch"], 1, "{made}");
    let channel: ChannelId = made["channel"].as_str().unwrap().parse().unwrap();
    // A second channel of the same name is refused.
    let o = godwit(&hs, &["channels", "create", "esa ALERTS"]).await;
    assert!(!o.status.success() && stderr(&o).contains("exists already"), "{}", stderr(&o));

    // Three NCPs admitted: each change is an epoch whose key is sealed to every reader.
    for (i, id) in ids.iter().take(3).enumerate() {
        let v = json(&hs, &["channels", "admit", "ESA alerts", id]).await;
        assert_eq!(v["epoch"], 2 + i as u64, "{v}");
    }
    for (i, rx) in events.iter_mut().take(3).enumerate() {
        key_at(rx, &format!("NCP {i}"), channel, 4).await;
    }
    let shown = json(&socket(ncps[0]), &["channels", "show", "ESA alerts"]).await;
    let c = &shown[0];
    assert_eq!((c["epoch"].as_u64(), c["has_key"].as_bool()), (Some(4), Some(true)), "{shown}");
    assert_eq!(c["members"].as_array().unwrap().len(), 4, "hub and three NCPs: {shown}");
    assert_eq!(c["owner"], net.members[hub].id().to_string());

    // The hub broadcasts: all three decrypt it.
    let first = bulletin(&hs, "ESA alerts", "Ivory via NBO, week 48").await.unwrap();
    for (i, rx) in events.iter_mut().take(3).enumerate() {
        wait_for(rx, &format!("NCP {i} receives the first alert"), |e| *e == NodeEvent::Delivered(first))
            .await;
        let got = inbox(&socket(ncps[i])).await;
        assert_eq!(got, vec![(first, "bulletin".to_string())], "NCP {i} reads it");
    }

    // A member removed: the next epoch's key is sealed to the two others only.
    let removed = ncps[2];
    let v = json(&hs, &["channels", "remove", "ESA alerts", &ids[2]]).await;
    assert_eq!(v["epoch"], 5);
    wait_for(&mut events[2], "the removed NCP takes epoch 5's state", |e| {
        *e == NodeEvent::ChannelState { channel, epoch: 5 }
    })
    .await;
    for (i, rx) in events.iter_mut().take(2).enumerate() {
        key_at(rx, &format!("NCP {i}"), channel, 5).await;
    }
    let second = bulletin(&hs, "ESA alerts", "Pangolin scales via DAR").await.unwrap();
    for (i, rx) in events.iter_mut().take(2).enumerate() {
        wait_for(rx, &format!("NCP {i} receives the second alert"), |e| *e == NodeEvent::Delivered(second))
            .await;
    }
    // The removed NCP holds no key for epoch 5, and the alert is not its.
    let at_removed = json(&socket(removed), &["channels", "show", "ESA alerts"]).await;
    assert_eq!(
        (at_removed[0]["epoch"].as_u64(), at_removed[0]["has_key"].as_bool()),
        (Some(5), Some(false)),
        "{at_removed}"
    );
    assert!(!net.members[removed].dir.join("channel-keys").join(format!("{channel}-5.key")).exists());
    assert_eq!(inbox(&socket(removed)).await, vec![(first, "bulletin".to_string())]);
    // Nor may it publish there: its node refuses, and so would every other.
    let refused = bulletin(&socket(removed), "ESA alerts", "not a member").await.unwrap_err();
    assert!(refused.contains("may not publish"), "{refused}");

    // A new member is not sent what came before it joined.
    let late = ncps[3];
    let v = json(&hs, &["channels", "admit", "ESA alerts", &ids[3], "--read-only"]).await;
    assert_eq!(v["epoch"], 6);
    key_at(&mut events[3], "the new member", channel, 6).await;
    let third = bulletin(&hs, "ESA alerts", "Rhino horn via EBB").await.unwrap();
    wait_for(&mut events[3], "the new member receives the third alert", |e| {
        *e == NodeEvent::Delivered(third)
    })
    .await;
    assert_eq!(inbox(&socket(late)).await, vec![(third, "bulletin".to_string())], "only what came after it");
    // It reads only: its node refuses to publish.
    assert!(
        bulletin(&socket(late), "ESA alerts", "read only").await.unwrap_err().contains("may not publish")
    );

    // Only the owner changes the channel.
    let o = godwit(&socket(ncps[0]), &["channels", "remove", "ESA alerts", &ids[1]]).await;
    assert!(!o.status.success() && stderr(&o).contains("only its owner"), "{}", stderr(&o));

    // Closed: no new messages, here or anywhere.
    let v = json(&hs, &["channels", "close", "ESA alerts"]).await;
    assert_eq!(v["epoch"], 7);
    let after = bulletin(&hs, "ESA alerts", "too late").await.unwrap_err();
    assert!(after.contains("ended"), "{after}");

    // The keys and states survive a restart.
    wait_for(&mut events[0], "NCP 0 takes the closing state", |e| {
        *e == NodeEvent::ChannelState { channel, epoch: 7 }
    })
    .await;
    net.stop(ncps[0]).await;
    net.members[ncps[0]].listen = "127.0.0.1:0".parse().unwrap();
    net.start(ncps[0], &[], &[]).await;
    let again = json(&socket(ncps[0]), &["channels", "show", "ESA alerts"]).await;
    assert_eq!(again[0]["epoch"], 7, "{again}");
    let got = inbox(&socket(ncps[0])).await;
    assert!(got.iter().all(|(_, kind)| kind == "bulletin") && got.len() == 3, "{got:?}");
    for ix in all {
        net.stop(ix).await;
    }
}

//! Real nodes over QUIC on 127.0.0.1 with mutual TLS and sled stores in temporary directories.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod support;

use godwit_node::net::NodeEvent;
use godwit_protocol::envelope::{Envelope, Priority};
use godwit_protocol::identity::Role;
use support::network::*;

/// A hub serving two members (Tanzania, Uganda), all in the test channel; only the hub is started.
async fn one_region(net: &mut Net) -> [usize; 3] {
    let hub = net.add("RILO ESA", Role::Hub);
    let a = net.add("Tanzania NCP", Role::Member);
    let b = net.add("Uganda NCP", Role::Member);
    net.start(hub, &[a, b], &[hub, a, b]).await;
    [hub, a, b]
}

/// Hub A (ESA) serves m1, hub B (Asia-Pacific) serves m2, the hubs dial each other; everyone is
/// in the test channel. m2 is started and connected only if `m2_online`.
async fn two_regions(net: &mut Net, m2_online: bool) -> [usize; 4] {
    let ha = net.add("RILO ESA", Role::Hub);
    let hb = net.add("RILO Asia-Pacific", Role::Hub);
    let m1 = net.add("Kenya NCP", Role::Member);
    let m2 = net.add("Viet Nam NCP", Role::Member);
    let all = [ha, hb, m1, m2];
    net.start(ha, &[m1, hb], &all).await;
    net.start(hb, &[m2, ha], &all).await;
    net.start(m1, &[], &all).await;
    net.dial(hb, ha); // both hubs dial each other: one connection survives
    net.join(ha, hb).await;
    net.join(m1, ha).await;
    if m2_online {
        net.start(m2, &[], &all).await;
        net.join(m2, hb).await;
    }
    [ha, hb, m1, m2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ncp_hub_ncp_delivery_with_acknowledgement() {
    let mut net = Net::new();
    let [hub, a, b] = one_region(&mut net).await;
    let all = [hub, a, b];
    net.start(a, &[], &all).await;
    net.start(b, &[], &all).await;
    let mut ea = net.join(a, hub).await;
    let mut eb = net.join(b, hub).await;
    let hub_id = net.members[hub].id();

    let id = net.members[a].node().publish(net.channel_alert(Priority::Flash)).await.unwrap();
    let got = wait_delivered(&mut eb, 1).await;
    assert!(got.contains(&id));
    // The hub acknowledges both of a's messages, its card and the alert, in one frame or two
    // (a card refused as too early is sent again with the alert).
    let mut acked = 0;
    while acked < 2 {
        if let NodeEvent::Acked(_, n) = wait_for(
            &mut ea,
            "the hub's acknowledgements",
            |e| matches!(e, NodeEvent::Acked(p, _) if *p == hub_id),
        )
        .await
        {
            acked += n;
        }
    }
    assert_eq!(acked, 2, "nothing else of a's was acknowledged");
    let env = net.members[b].node().envelope(id).await.unwrap().unwrap();
    let env = Envelope::verify(&env).unwrap();
    assert_eq!(env.open_channel(&net.epoch_key).unwrap().content.kind(), "warning");
    for ix in all {
        net.stop(ix).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hubs_relay_across_regions_without_loops_or_duplicates() {
    let mut net = Net::new();
    let [ha, hb, m1, m2] = two_regions(&mut net, true).await;
    let all = [ha, hb, m1, m2];
    let mut e2 = net.members[m2].node().events();

    let mut sent = std::collections::BTreeSet::new();
    for _ in 0..10 {
        sent.insert(net.members[m1].node().publish(net.channel_alert(Priority::Routine)).await.unwrap());
    }
    let direct = net.members[m1].node().publish(net.direct(m2)).await.unwrap();
    sent.insert(direct);
    let got = wait_delivered(&mut e2, 11).await;
    assert_eq!(got, sent);
    let inbox = net.members[m2].node().inbox().await.unwrap();
    assert_eq!(inbox.len(), 11, "delivered exactly once");
    assert_eq!(net.members[ha].node().connected().len(), 2, "one connection between the hubs");
    // The channel messages also reached both hubs (members of the channel), once each.
    for h in [ha, hb] {
        assert_eq!(net.members[h].node().inbox().await.unwrap().len(), 10);
    }
    for ix in all {
        net.stop(ix).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_offline_while_1000_messages_flow_catches_up_fully() {
    let mut net = Net::new();
    let [hub, a, b] = one_region(&mut net).await;
    let all = [hub, a, b];
    net.start(a, &[], &all).await;
    let mut ea = net.members[a].node().events();
    net.dial(a, hub);
    wait_connected(net.members[a].node(), &mut ea, net.members[hub].id()).await;
    let mut ehub = net.members[hub].node().events();
    let mut sent = std::collections::BTreeSet::new();
    for _ in 0..1_000 {
        sent.insert(net.members[a].node().publish(net.channel_alert(Priority::Routine)).await.unwrap());
    }
    wait_delivered(&mut ehub, 1_000).await;
    // b comes online only now, and catches up from the hub.
    net.start(b, &[], &all).await;
    let mut eb = net.members[b].node().events();
    net.dial(b, hub);
    let got = wait_delivered(&mut eb, 1_000).await;
    assert_eq!(got, sent);
    for ix in all {
        net.stop(ix).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_message_to_a_member_behind_another_hub_arrives_after_it_was_offline() {
    let mut net = Net::new();
    // m2 has been connected to its hub (which thereby holds its certificate and vouches for it
    // to hub A), then goes offline.
    let [ha, hb, m1, m2] = two_regions(&mut net, true).await;
    let all = [ha, hb, m1, m2];
    net.stop(m2).await;
    // It comes back on another port (it dials out; nobody dials it).
    net.members[m2].listen = "127.0.0.1:0".parse().unwrap();
    let mut eha = net.members[ha].node().events();
    let id = net.members[m1].node().publish(net.direct(m2)).await.unwrap();
    // hub B stores it for its member, which is offline.
    wait_for(
        &mut eha,
        "hub B's acknowledgement",
        |e| matches!(e, NodeEvent::Acked(p, _) if *p == net.members[hb].id()),
    )
    .await;
    assert!(
        !net.members[hb].node().inbox().await.unwrap().contains(&id),
        "a hub does not read others' direct messages"
    );
    net.start(m2, &[], &all).await;
    let mut e2 = net.members[m2].node().events();
    net.dial(m2, hb);
    let got = wait_delivered(&mut e2, 1).await;
    assert!(got.contains(&id));
    let env = Envelope::verify(&net.members[m2].node().envelope(id).await.unwrap().unwrap()).unwrap();
    let body = env.open_direct(&net.members[m2].id(), &net.members[m2].enc).unwrap();
    assert_eq!(body.content.kind(), "seizure_report");
    for ix in all {
        net.stop(ix).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_message_to_a_member_never_seen_yet_waits_at_the_senders_hub_until_its_hub_vouches() {
    let mut net = Net::new();
    let [ha, hb, m1, m2] = two_regions(&mut net, false).await;
    let all = [ha, hb, m1, m2];
    let mut e1 = net.members[m1].node().events();
    let id = net.members[m1].node().publish(net.direct(m2)).await.unwrap();
    // Hub A takes it (m2 is a node the network knows) but has no route it can believe yet.
    wait_for(&mut e1, "hub A's acknowledgement", |e| matches!(e, NodeEvent::Acked(..))).await;
    // m2 connects to its hub for the first time: hub B vouches for it with its certificate,
    // and hub A passes the message on at once.
    net.start(m2, &[], &all).await;
    let mut e2 = net.members[m2].node().events();
    net.dial(m2, hb);
    let got = wait_delivered(&mut e2, 1).await;
    assert!(got.contains(&id));
    for ix in all {
        net.stop(ix).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_killed_mid_stream_and_restarted_loses_nothing_and_delivers_nothing_twice() {
    let mut net = Net::new();
    let [hub, a, b] = one_region(&mut net).await;
    let all = [hub, a, b];
    net.start(a, &[], &all).await;
    net.start(b, &[], &all).await;
    net.join(a, hub).await;
    let mut eb = net.join(b, hub).await;
    let mut sent = std::collections::BTreeSet::new();
    for i in 0..300 {
        sent.insert(net.members[a].node().publish(net.channel_alert(Priority::Routine)).await.unwrap());
        if i == 150 {
            // Kill the hub mid-stream (no graceful flush beyond what it acknowledged), then
            // restart it from the same data directory; the members learn its new address.
            let node = net.members[hub].node.take().unwrap();
            node.kill();
            net.members[hub].listen = "127.0.0.1:0".parse().unwrap();
            net.start(hub, &[a, b], &all).await;
            let (hub_id, addr) = (net.members[hub].id(), net.members[hub].addr());
            net.members[a].node().set_peer_address(hub_id, addr);
            net.members[b].node().set_peer_address(hub_id, addr);
        }
    }
    let got = wait_delivered(&mut eb, 300).await;
    assert_eq!(got, sent);
    let inbox = net.members[b].node().inbox().await.unwrap();
    assert_eq!(inbox.len(), 300, "no message delivered twice");
    for ix in all {
        net.stop(ix).await;
    }
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_restored_from_backup_resumes_above_its_published_sequence() {
    let mut net = Net::new();
    let [hub, a, b] = one_region(&mut net).await;
    let all = [hub, a, b];
    net.start(b, &[], &all).await;
    let mut eb = net.members[b].node().events();
    net.dial(b, hub);
    wait_connected(net.members[b].node(), &mut eb, net.members[hub].id()).await;

    let connect = async |net: &mut Net| {
        let mut ea = net.members[a].node().events();
        net.dial(a, hub);
        wait_connected(net.members[a].node(), &mut ea, net.members[hub].id()).await;
        ea
    };
    net.start(a, &[], &all).await;
    let mut ea = connect(&mut net).await;
    net.members[a].node().publish(net.channel_alert(Priority::Routine)).await.unwrap();
    wait_for(&mut ea, "the hub's acknowledgement", |e| matches!(e, NodeEvent::Acked(_, _))).await;
    net.stop(a).await;
    let backup = net.tmp.path().join("backup-a");
    copy_dir(&net.members[a].dir, &backup);
    // After the backup, a publishes two more.
    net.members[a].listen = "127.0.0.1:0".parse().unwrap();
    net.start(a, &[], &all).await;
    let mut ea = connect(&mut net).await;
    for _ in 0..2 {
        net.members[a].node().publish(net.channel_alert(Priority::Routine)).await.unwrap();
        wait_for(&mut ea, "the hub's acknowledgement", |e| matches!(e, NodeEvent::Acked(_, _))).await;
    }
    wait_delivered(&mut eb, 3).await;
    net.stop(a).await;

    // The disk fails; a is restored from the backup and started in recovering mode.
    std::fs::remove_dir_all(&net.members[a].dir).unwrap();
    copy_dir(&backup, &net.members[a].dir);
    net.members[a].listen = "127.0.0.1:0".parse().unwrap();
    net.start_with(a, &[], &all, true).await;
    let refused = net.members[a].node().publish(net.channel_alert(Priority::Routine)).await.unwrap_err();
    assert!(refused.to_string().contains("recovering"), "{refused}");
    let mut ea = connect(&mut net).await;
    wait_for(&mut ea, "recovery from the hub", |e| *e == NodeEvent::Recovered).await;
    let fourth = net.members[a].node().publish(net.channel_alert(Priority::Routine)).await.unwrap();
    // b receives it: the hub accepted seq 4 (no fork, no reused sequence number).
    let got = wait_delivered(&mut eb, 1).await;
    assert!(got.contains(&fourth));
    let env = godwit_protocol::envelope::Envelope::verify(
        &net.members[b].node().envelope(fourth).await.unwrap().unwrap(),
    )
    .unwrap();
    assert_eq!(env.header().seq, 4);
    for ix in all {
        net.stop(ix).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flash_stored_behind_a_routine_backlog_reaches_a_returning_member_in_its_first_window() {
    let mut net = Net::new();
    let [hub, a, b] = one_region(&mut net).await;
    let all = [hub, a, b];
    net.start(a, &[], &all).await;
    let mut ea = net.join(a, hub).await;
    // b is away while a publishes a routine backlog and then a flash alert.
    for _ in 0..600 {
        net.members[a].node().publish(net.channel_alert(Priority::Routine)).await.unwrap();
    }
    let flash = net.members[a].node().publish(net.channel_alert(Priority::Flash)).await.unwrap();
    let hub_id = net.members[hub].id();
    let mut acked = 0;
    while acked < 601 {
        if let NodeEvent::Acked(p, n) =
            wait_for(&mut ea, "the hub's acknowledgements", |e| matches!(e, NodeEvent::Acked(..))).await
        {
            if p == hub_id {
                acked += n;
            }
        }
    }
    net.start(b, &[], &all).await;
    let mut eb = net.join(b, hub).await;
    wait_delivered(&mut eb, 601).await;
    let inbox = net.members[b].node().inbox().await.unwrap();
    let pos = inbox.iter().position(|i| *i == flash).expect("flash delivered");
    // The window is 256 messages: the flash is in the first, not behind 600 routine ones.
    assert!(pos < 256, "the flash arrived at position {pos} of {}", inbox.len());
    for ix in all {
        net.stop(ix).await;
    }
}

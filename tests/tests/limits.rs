//! The configured limits, enforced against a peer with a valid certificate: per-frame read
//! deadline, per-peer message rate, abuse disconnection and the maximum number of peers.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod support;

use godwit_node::net::NodeEvent;
use godwit_protocol::identity::Role;
use godwit_protocol::wire::{Frame, Msg, RejectReason};
use support::network::*;
use support::raw::Raw;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_body_that_does_not_arrive_in_time_is_refused() {
    let mut net = Net::new();
    net.limits.frame_read_timeout_ms = 300;
    let hub = net.add("RILO ESA", Role::Hub);
    let m = net.add("Slow NCP", Role::Member);
    net.start(hub, &[m], &[hub, m]).await;
    let mut eh = net.members[hub].node().events();
    let mut raw = Raw::hello(&net, m, hub, false).await;
    // Announce 1,000 bytes, send 10, then stall.
    raw.stream.write_all(&1_000u32.to_be_bytes()).await.unwrap();
    raw.stream.write_all(&[0u8; 10]).await.unwrap();
    let e = wait_for(&mut eh, "the read deadline", |e| matches!(e, NodeEvent::Refused { .. })).await;
    assert!(
        matches!(&e, NodeEvent::Refused { reason: RejectReason::Malformed, detail, .. } if detail.contains("not received within 300 ms")),
        "{e:?}"
    );
    net.stop(hub).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_over_its_rate_is_refused_and_an_abusive_one_disconnected() {
    let mut net = Net::new();
    net.limits.rate_per_sec = 1;
    net.limits.rate_burst = 3;
    net.limits.abuse_limit = 5;
    let hub = net.add("RILO ESA", Role::Hub);
    let m = net.add("Noisy NCP", Role::Member);
    net.start(hub, &[m], &[hub, m]).await;
    let mut eh = net.members[hub].node().events();
    let mut raw = Raw::hello(&net, m, hub, false).await;
    // Garbage envelopes: the first 3 use the burst and are refused as invalid, then the rate
    // limit refuses, and after more than 5 refusals the hub hangs up.
    for _ in 0..12 {
        // The hub may end the link before all are written.
        if !raw.try_send(&Frame::Msg(Msg { env: vec![0xd2, 0x84, 0x40, 0xa0, 0x40, 0x40], hop: 0 })).await {
            break;
        }
    }
    let mut reasons = Vec::new();
    let closed = loop {
        match wait_for(&mut eh, "refusals", |e| {
            matches!(e, NodeEvent::Refused { .. } | NodeEvent::Closed { .. })
        })
        .await
        {
            NodeEvent::Refused { reason, .. } => reasons.push(reason),
            NodeEvent::Closed { reason, .. } => break reason,
            _ => unreachable!(),
        }
    };
    assert!(
        reasons.contains(&RejectReason::Malformed) || reasons.contains(&RejectReason::Invalid),
        "{reasons:?}"
    );
    assert!(reasons.contains(&RejectReason::RateLimited), "{reasons:?}");
    assert!(closed.contains("abusive"), "{closed}");
    let err = tokio::time::timeout(WAIT, raw.conn.closed()).await.unwrap();
    assert!(err.to_string().contains("abusive"), "{err}");
    wait_for(&mut eh, "the link down", |e| matches!(e, NodeEvent::PeerDown(p) if *p == net.members[m].id()))
        .await;
    net.stop(hub).await;
    // The hub's journal says why the link went down.
    let (store, _) = godwit_node::store::SledStore::open(&net.members[hub].dir.join("store")).unwrap();
    let why: Vec<String> = store
        .journal()
        .unwrap()
        .into_iter()
        .filter_map(|e| match e.event {
            godwit_protocol::audit::Event::Disconnected { peer, reason } if peer == net.members[m].id() => {
                Some(reason)
            }
            _ => None,
        })
        .collect();
    assert!(why.iter().any(|r| r.starts_with("closed by this node") && r.contains("abusive")), "{why:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_max_peers_are_refused() {
    let mut net = Net::new();
    net.limits.max_peers = 1;
    let hub = net.add("RILO ESA", Role::Hub);
    let a = net.add("Tanzania NCP", Role::Member);
    let b = net.add("Uganda NCP", Role::Member);
    net.start(hub, &[a, b], &[hub, a, b]).await;
    net.start(a, &[], &[hub, a, b]).await;
    let mut ea = net.members[a].node().events();
    net.dial(a, hub);
    wait_connected(net.members[a].node(), &mut ea, net.members[hub].id()).await;
    net.start(b, &[], &[hub, a, b]).await;
    let mut eb = net.members[b].node().events();
    net.dial(b, hub);
    let e = wait_for(&mut eb, "a refused connection", |e| {
        matches!(e, NodeEvent::ConnectionRefused { .. } | NodeEvent::PeerUp(_))
    })
    .await;
    assert!(matches!(e, NodeEvent::ConnectionRefused { .. }), "{e:?}");
    assert_eq!(net.members[hub].node().connected().len(), 1);
    for ix in [hub, a, b] {
        net.stop(ix).await;
    }
}

//! Real nodes over QUIC on 127.0.0.1 with mutual TLS and sled stores in temporary directories.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod support;

use godwit_node::net::NodeEvent;
use godwit_protocol::envelope::{Envelope, Priority};
use godwit_protocol::relay::Role;
use support::network::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ncp_hub_ncp_delivery_with_acknowledgement() {
    let mut net = Net::new();
    let hub = net.add("RILO ESA", Role::Hub);
    let a = net.add("Tanzania NCP", Role::Member);
    let b = net.add("Uganda NCP", Role::Member);
    let all = [hub, a, b];
    net.start(hub, &[a, b], &all).await;
    net.start(a, &[], &all).await;
    net.start(b, &[], &all).await;
    let (mut ea, mut eb) = (net.members[a].node().events(), net.members[b].node().events());
    net.dial(a, hub);
    net.dial(b, hub);
    let hub_id = net.members[hub].id();
    wait_connected(net.members[a].node(), &mut ea, hub_id).await;
    wait_connected(net.members[b].node(), &mut eb, hub_id).await;

    let id = net.members[a].node().publish(net.channel_alert(Priority::Flash)).await.unwrap();
    let got = wait_delivered(&mut eb, 1).await;
    assert!(got.contains(&id));
    wait_for(&mut ea, "the hub's acknowledgement", |e| matches!(e, NodeEvent::Acked(p, 1) if *p == hub_id))
        .await;
    let env = net.members[b].node().envelope(id).await.unwrap().unwrap();
    let env = Envelope::verify(&env).unwrap();
    assert_eq!(env.open_channel(&net.epoch_key).unwrap().content.kind(), "warning");
    for ix in all {
        net.stop(ix).await;
    }
}

//! A disk that stops syncing: after a failed commit the node releases no acknowledgement of any
//! kind (an `Ack`, or a `Duplicate` refusal, which senders take as one), drops its connections
//! and stops, saying why, so that its supervisor restarts it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod support;

use godwit_node::net::NodeEvent;
use godwit_protocol::envelope::Priority;
use godwit_protocol::identity::Role;
use godwit_protocol::wire::{Frame, Msg, RejectReason};
use support::network::*;
use support::raw::Raw;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_failed_commit_nothing_is_acknowledged_and_the_node_stops() {
    let mut net = Net::new();
    let hub = net.add("RILO ESA", Role::Hub);
    let a = net.add("Tanzania NCP", Role::Member);
    let b = net.add("Uganda NCP", Role::Member);
    let all = [hub, a, b];
    net.start(hub, &[a, b], &all).await;
    net.start(b, &[], &all).await;
    net.join(b, hub).await;
    let mut raw = Raw::hello(&net, a, hub, false).await;
    let m1 = raw.channel_msg(&net, 1, None);
    raw.send_msg(&m1.bytes, 0).await;
    raw.next("the acknowledgement", |f| matches!(f, Frame::Ack(ids) if ids == &[m1.id])).await;

    // The hub's disk stops syncing. A new message, its resend, and a resend of the durable one.
    let mut eh = net.members[hub].node().events();
    net.members[hub].node().store_faults().fail_commits();
    let m2 = raw.channel_msg(&net, 2, Some(m1.id));
    // (The hub may stop, and close the link, before all three are written.)
    for env in [&m2.bytes, &m2.bytes, &m1.bytes] {
        if !raw.try_send(&Frame::Msg(Msg { env: env.clone(), hop: 0 })).await {
            break;
        }
    }
    wait_for(&mut eh, "the hub's failure", |e| matches!(e, NodeEvent::Fatal(_))).await;
    // Asked after the fact, the node still says why it stopped.
    let reason = tokio::time::timeout(WAIT, net.members[hub].node().failed()).await.expect("the hub stops");
    assert!(reason.contains("cannot make the store durable"), "{reason}");
    let closed = tokio::time::timeout(WAIT, raw.conn.closed()).await.expect("the hub drops the link");
    assert!(closed.to_string().contains("storage failed"), "{closed}");
    // Of everything the hub sent until then, nothing counts as an acknowledgement.
    while let Some((_, f)) = tokio::time::timeout(WAIT, raw.frames.recv()).await.expect("readers end") {
        assert!(
            !matches!(&f, Frame::Ack(_))
                && !matches!(&f, Frame::Reject(r) if r.reason == RejectReason::Duplicate),
            "released after a failed commit: {f:?}"
        );
    }
    // (A received message may have been passed on before its commit failed: that is harmless,
    // its author holds it unacknowledged and sends it again to the restarted hub. This node's
    // own messages leave it only once committed, which the simulator's crash tests check.)
    let refused = net.members[hub].node().publish(net.channel_alert(Priority::Routine)).await.unwrap_err();
    assert!(
        refused.to_string().contains("shutting down") || refused.to_string().contains("stopped"),
        "{refused}"
    );
    net.stop(b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_store_runs_degraded_and_fetches_what_is_damaged_again_from_its_hub() {
    let mut net = Net::new();
    let hub = net.add("RILO ESA", Role::Hub);
    let a = net.add("Tanzania NCP", Role::Member);
    let b = net.add("Uganda NCP", Role::Member);
    let all = [hub, a, b];
    net.start(hub, &[a, b], &all).await;
    net.start(a, &[], &all).await;
    net.start(b, &[], &all).await;
    net.join(a, hub).await;
    let mut eb = net.join(b, hub).await;
    let id = net.members[a].node().publish(net.channel_alert(Priority::Routine)).await.unwrap();
    wait_for(&mut eb, "the alert at b", |e| *e == NodeEvent::Delivered(id)).await;
    net.stop(b).await;
    // A bit flips on b's disk.
    {
        let (store, _) = godwit_node::store::SledStore::open(&net.members[b].dir.join("store")).unwrap();
        store.damage_envelope(&id).unwrap();
    }
    // b starts anyway, says what is damaged, and gets a sound copy from its hub.
    net.members[b].listen = "127.0.0.1:0".parse().unwrap();
    net.start(b, &[], &all).await;
    let damage = net.members[b].node().damage();
    assert!(damage.iter().any(|d| d.contains(&id.to_string())), "{damage:?}");
    let mut eb = net.members[b].node().events();
    net.dial(b, hub);
    wait_for(&mut eb, "the repair", |e| *e == NodeEvent::Repaired(id)).await;
    assert_eq!(net.members[b].node().damage(), Vec::<String>::new(), "sound again");
    let env = net.members[b].node().envelope(id).await.unwrap().unwrap();
    assert_eq!(godwit_protocol::envelope::Envelope::verify(&env).unwrap().id(), id);
    // And it stays sound across a restart.
    net.stop(b).await;
    net.members[b].listen = "127.0.0.1:0".parse().unwrap();
    net.start(b, &[], &all).await;
    assert_eq!(net.members[b].node().damage(), Vec::<String>::new());
    for ix in all {
        net.stop(ix).await;
    }
}

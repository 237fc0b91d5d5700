//! A hostile peer with a valid certificate: bad signatures, replays, an oversize frame and a
//! CBOR bomb are refused with the right reason while other traffic flows.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod support;

use godwit_protocol::identity::Role;
use godwit_protocol::wire::{Frame, RejectReason};
use support::network::*;
use support::raw::Raw;

/// The hub's verdict on the last message: acknowledged (how many ids) or refused (why).
async fn verdict(raw: &mut Raw) -> Result<usize, RejectReason> {
    match raw.next("a verdict", |f| matches!(f, Frame::Reject(_) | Frame::Ack(_))).await {
        Frame::Reject(r) => Err(r.reason),
        Frame::Ack(ids) => Ok(ids.len()),
        _ => unreachable!("only verdicts are waited for"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_frames_are_refused_with_reasons_while_other_traffic_flows() {
    let mut net = Net::new();
    let hub = net.add("RILO ESA", Role::Hub);
    let evil = net.add("Compromised NCP", Role::Member);
    let good = net.add("Uganda NCP", Role::Member);
    let all = [hub, evil, good];
    net.start(hub, &[evil, good], &all).await;
    net.start(good, &[], &all).await;
    let mut eg = net.members[good].node().events();
    net.dial(good, hub);
    wait_connected(net.members[good].node(), &mut eg, net.members[hub].id()).await;

    // The hostile peer speaks raw frames over a properly authenticated connection.
    let mut raw = Raw::hello(&net, evil, hub, false).await;
    let first = raw.channel_msg(&net, 1, None);

    // 1. A bad signature.
    let mut bad = first.bytes.clone();
    let n = bad.len();
    bad[n - 1] ^= 1;
    raw.send_msg(&bad, 0).await;
    assert_eq!(verdict(&mut raw).await, Err(RejectReason::Invalid));
    // 2. The real message: stored and acknowledged.
    raw.send_msg(&first.bytes, 0).await;
    assert_eq!(verdict(&mut raw).await, Ok(1));
    // 3. A replay of it.
    raw.send_msg(&first.bytes, 0).await;
    assert_eq!(verdict(&mut raw).await, Err(RejectReason::Duplicate));
    // 4. A CBOR bomb: 100,000 nested arrays.
    raw.send_bytes(&vec![0x81; 100_000]).await;
    assert_eq!(verdict(&mut raw).await, Err(RejectReason::Malformed));
    // 5. An oversize frame on another stream: that stream is stopped, the connection lives on.
    let mut s2 = raw.conn.open_uni().await.unwrap();
    s2.write_all(&[0x67, 1]).await.unwrap();
    s2.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
    assert_eq!(verdict(&mut raw).await, Err(RejectReason::Oversize));
    // 6. Other traffic still flows, from this peer and to the others.
    let second = raw.channel_msg(&net, 2, Some(first.id));
    raw.send_msg(&second.bytes, 0).await;
    assert_eq!(verdict(&mut raw).await, Ok(1));
    let got = wait_delivered(&mut eg, 2).await;
    assert!(got.contains(&first.id) && got.contains(&second.id));
    assert!(
        net.members[hub].node().connected().contains(&net.members[evil].id()),
        "not disconnected for a few bad frames"
    );
    raw.conn.close(0u32.into(), b"done");
    for ix in [hub, good] {
        net.stop(ix).await;
    }
}

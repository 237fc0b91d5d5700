//! A hostile peer with a valid certificate: bad signatures, replays, an oversize frame and a
//! CBOR bomb are refused with the right reason while other traffic flows.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod support;

use godwit_node::tls::{self, NetLimits};
use godwit_protocol::content::{Body, Content, Tlp};
use godwit_protocol::envelope::Priority;
use godwit_protocol::identity::IdentityKey;
use godwit_protocol::identity::Role;
use godwit_protocol::message::{Audience, Draft, seal};
use godwit_protocol::wire::{Frame, Hello, Msg, RejectReason};
use godwit_protocol::{Timestamp, samples};
use support::network::*;
use tokio::sync::mpsc;

async fn write_frame(s: &mut quinn::SendStream, f: &[u8]) {
    s.write_all(&(f.len() as u32).to_be_bytes()).await.unwrap();
    s.write_all(f).await.unwrap();
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
    let client = tls::client_config(&net.material(evil), &NetLimits::default()).unwrap();
    let ep = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    let name = godwit_node::certs::dns_name(&net.members[hub].id());
    let conn = ep.connect_with(client, net.members[hub].addr(), &name).unwrap().await.unwrap();
    let mut s = conn.open_uni().await.unwrap();
    s.write_all(&[0x67, 0]).await.unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let reader_conn = conn.clone();
    tokio::spawn(async move {
        while let Ok(mut r) = reader_conn.accept_uni().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut pre = [0u8; 2];
                r.read_exact(&mut pre).await.unwrap();
                loop {
                    let mut len = [0u8; 4];
                    if r.read_exact(&mut len).await.is_err() {
                        return;
                    }
                    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
                    r.read_exact(&mut body).await.unwrap();
                    let _ = tx.send(Frame::decode(&body).unwrap());
                }
            });
        }
    });
    let mut next_verdict = async || loop {
        match tokio::time::timeout(WAIT, rx.recv())
            .await
            .expect("a verdict in time")
            .expect("connection open")
        {
            Frame::Reject(r) => return Err(r.reason),
            Frame::Ack(ids) => return Ok(ids.len()),
            _ => {}
        }
    };
    write_frame(&mut s, &Frame::Hello(Hello { v: 1, recovering: false }).encode()).await;

    let key = IdentityKey::from_seed(&net.members[evil].seed);
    let body = Body::new(Content::Warning(samples::warning()));
    let now = godwit_node::net::now();
    let draft = |seq: u64, prev| Draft {
        audience: Audience::Channel { id: net.channel, epoch: 1, key: &net.epoch_key },
        seq,
        prev,
        created: now,
        expires: Timestamp(now.as_millis() + DAY),
        priority: Priority::Routine,
        marking: Tlp::Green,
        body: &body,
        personal: None,
    };
    let mut rng = rand_core::OsRng;
    let first = seal(&mut rng, &key, &draft(1, None)).unwrap();

    // 1. A bad signature.
    let mut bad = first.bytes.clone();
    let n = bad.len();
    bad[n - 1] ^= 1;
    write_frame(&mut s, &Frame::Msg(Msg { env: bad, hop: 0 }).encode()).await;
    assert_eq!(next_verdict().await, Err(RejectReason::Invalid));
    // 2. The real message: stored and acknowledged.
    write_frame(&mut s, &Frame::Msg(Msg { env: first.bytes.clone(), hop: 0 }).encode()).await;
    assert_eq!(next_verdict().await, Ok(1));
    // 3. A replay of it.
    write_frame(&mut s, &Frame::Msg(Msg { env: first.bytes.clone(), hop: 0 }).encode()).await;
    assert_eq!(next_verdict().await, Err(RejectReason::Duplicate));
    // 4. A CBOR bomb: 100,000 nested arrays.
    write_frame(&mut s, &vec![0x81; 100_000]).await;
    assert_eq!(next_verdict().await, Err(RejectReason::Malformed));
    // 5. An oversize frame on another stream: that stream is stopped, the connection lives on.
    let mut s2 = conn.open_uni().await.unwrap();
    s2.write_all(&[0x67, 1]).await.unwrap();
    s2.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
    assert_eq!(next_verdict().await, Err(RejectReason::Oversize));
    // 6. Other traffic still flows, from this peer and to the others.
    let second = seal(&mut rng, &key, &draft(2, Some(first.id))).unwrap();
    write_frame(&mut s, &Frame::Msg(Msg { env: second.bytes, hop: 0 }).encode()).await;
    assert_eq!(next_verdict().await, Ok(1));
    let got = wait_delivered(&mut eg, 2).await;
    assert!(got.contains(&first.id) && got.contains(&second.id));
    assert!(
        net.members[hub].node().connected().contains(&net.members[evil].id()),
        "not disconnected for a few bad frames"
    );
    conn.close(0u32.into(), b"done");
    for ix in [hub, good] {
        net.stop(ix).await;
    }
}

use super::*;
use crate::content::{Content, Receipt, ReceiptStatus};
use crate::identity::EncryptionKey;
use crate::test_rng;

fn body() -> Body {
    Body::new(Content::Receipt(Receipt {
        at: Timestamp(1),
        note: None,
        status: ReceiptStatus::Read,
        message: MessageId([1; 32]),
    }))
}

fn sends_to(r: &mut Relay<MemoryStore>, peer: NodeId) -> Vec<Frame> {
    let mut v = Vec::new();
    while let Some(o) = r.poll_output() {
        if let Output::Send { peer: p, frame, .. } = o {
            if p == peer {
                v.push(Frame::decode(&frame).unwrap());
            }
        }
    }
    v
}

#[test]
fn only_hubs_may_announce_downstream_nodes() {
    let mut rng = test_rng(1);
    let me = IdentityKey::generate(&mut rng);
    let (member, hub, target) = (
        IdentityKey::generate(&mut rng).node_id(),
        IdentityKey::generate(&mut rng).node_id(),
        IdentityKey::generate(&mut rng),
    );
    let target_enc = EncryptionKey::generate(&mut rng);
    let mut cfg = RelayConfig::new(me.node_id(), Role::Hub);
    cfg.window = 16;
    let mut r = Relay::new(cfg, MemoryStore::new());
    let now = Timestamp(1_795_000_000_000);
    for (p, role) in [(member, Role::Member), (hub, Role::Hub)] {
        r.connect(now, p, role).unwrap();
        r.handle_frame(now, p, &Frame::Hello(Hello { v: 1, channels: vec![], recovering: false }).encode())
            .unwrap();
    }
    // Both claim to reach `target`; only the hub's claim counts.
    for p in [member, hub] {
        r.handle_frame(now, p, &Frame::Reach(vec![p, target.node_id()]).encode()).unwrap();
    }
    while r.poll_output().is_some() {}
    let b = body();
    let to = [(target.node_id(), target_enc.public())];
    let p = Publication {
        audience: Audience::Direct(&to),
        priority: Priority::Routine,
        marking: Tlp::Red,
        ttl_ms: 60_000,
        body: &b,
        personal: None,
    };
    r.publish(now, &mut rng, &me, &p).unwrap();
    let outs: Vec<Output> = std::iter::from_fn(|| r.poll_output()).collect();
    let to_peer = |peer: NodeId| {
        outs.iter().any(|o| matches!(o, Output::Send { peer: x, frame, .. } if *x == peer && matches!(Frame::decode(frame), Ok(Frame::Msg(_)))))
    };
    assert!(to_peer(hub), "routed through the hub that announced the target");
    assert!(!to_peer(member), "a member's claim to reach others is ignored");
    let _ = sends_to(&mut r, hub);
}

#[test]
fn acknowledgements_wait_for_the_commit() {
    let mut rng = test_rng(2);
    let (a, b) = (IdentityKey::generate(&mut rng), IdentityKey::generate(&mut rng));
    let ch = ChannelConfig { id: ChannelId([9; 32]), members: [a.node_id(), b.node_id()].into() };
    let mut ca = RelayConfig::new(a.node_id(), Role::Member);
    ca.channels = vec![ch.clone()];
    let mut cb = RelayConfig::new(b.node_id(), Role::Member);
    cb.channels = vec![ch.clone()];
    let (mut ra, mut rb) = (Relay::new(ca, MemoryStore::new()), Relay::new(cb, MemoryStore::new()));
    let now = Timestamp(1_795_000_000_000);
    ra.connect(now, b.node_id(), Role::Member).unwrap();
    rb.connect(now, a.node_id(), Role::Member).unwrap();
    for f in sends_to(&mut ra, b.node_id()) {
        rb.handle_frame(now, a.node_id(), &f.encode()).unwrap();
    }
    for f in sends_to(&mut rb, a.node_id()) {
        ra.handle_frame(now, b.node_id(), &f.encode()).unwrap();
    }
    let key = EpochKey::generate(&mut rng);
    let body = body();
    let p = Publication {
        audience: Audience::Channel { id: ch.id, epoch: 1, key: &key },
        priority: Priority::Routine,
        marking: Tlp::Green,
        ttl_ms: 60_000,
        body: &body,
        personal: None,
    };
    ra.publish(now, &mut rng, &a, &p).unwrap();
    let msgs = sends_to(&mut ra, b.node_id());
    assert!(matches!(msgs.last(), Some(Frame::Msg(_))));
    for f in &msgs {
        rb.handle_frame(now, a.node_id(), &f.encode()).unwrap();
    }
    let before: Vec<Frame> = sends_to(&mut rb, a.node_id());
    assert!(!before.iter().any(|f| matches!(f, Frame::Ack(_))), "no ack before the commit");
    assert!(rb.wants_commit());
    assert!(rb.begin_commit().unwrap());
    rb.committed();
    let after = sends_to(&mut rb, a.node_id());
    assert!(after.iter().any(|f| matches!(f, Frame::Ack(ids) if ids.len() == 1)));
}

use crate::crypto::EpochKey;

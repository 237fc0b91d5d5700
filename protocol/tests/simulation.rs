//! The relay in the deterministic simulator: delivery, catch-up, partitions, loss, crashes,
//! recovery and hostile input. Every run is bounded in virtual time.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::collections::BTreeSet;

use godwit_protocol::content::{Body, Content, Tlp};
use godwit_protocol::envelope::Priority;
use godwit_protocol::message::{Audience, Draft, seal};
use godwit_protocol::relay::{Output, Role, Store};
use godwit_protocol::sim::{Sim, SimBuilder};
use godwit_protocol::wire::{Frame, Msg, RejectReason};
use godwit_protocol::{Timestamp, samples};

fn unique(v: &[godwit_protocol::ids::MessageId]) -> bool {
    v.iter().collect::<BTreeSet<_>>().len() == v.len()
}

#[test]
fn ncp_hub_ncp_delivery_with_acknowledgement() {
    let mut b = SimBuilder::new(1);
    let hub = b.node(Role::Hub);
    let (a, c) = (b.node(Role::Member), b.node(Role::Member));
    b.link(hub, a);
    b.link(hub, c);
    let ch = b.channel(&[hub, a, c]);
    let mut sim = b.build();
    sim.run_for(2_000);
    let id = sim.publish_channel(a, ch).unwrap();
    sim.run_for(5_000);
    assert_eq!(sim.inbox(c), vec![id]);
    assert_eq!(sim.inbox(hub), vec![id]);
    assert!(sim.inbox(a).is_empty(), "the author does not deliver to itself");
    assert_eq!(sim.channel_head(hub, a, ch).unwrap().seq, 1);
}

#[test]
fn two_hubs_relay_across_regions_without_loops_or_duplicates() {
    let (mut sim, [ha, hb, m1, m2, m3, m4], ch) = Sim::two_regions(2);
    sim.run_for(2_000);
    let mut ids = Vec::new();
    for author in [m1, m3, m2, m4] {
        for _ in 0..5 {
            ids.push(sim.publish_channel(author, ch).unwrap());
        }
    }
    sim.run_for(20_000);
    for n in [ha, hb, m1, m2, m3, m4] {
        let inbox = sim.inbox(n);
        assert!(unique(&inbox), "node {n} got duplicates");
        assert_eq!(sim.held(n), 20, "node {n} holds every message exactly once");
        assert_eq!(inbox.len(), 20 - if n >= 2 { 5 } else { 0 }, "node {n}");
    }
    assert_eq!(sim.stats().refused, 0);
}

#[test]
fn member_offline_while_1000_messages_flow_catches_up_fully() {
    let (mut sim, [_ha, _hb, m1, _m2, m3, _m4], ch) = Sim::two_regions(3);
    sim.run_for(2_000);
    sim.partition(&[m3]);
    let mut ids = BTreeSet::new();
    for _ in 0..1_000 {
        ids.insert(sim.publish_channel(m1, ch).unwrap());
    }
    sim.run_for(30_000);
    assert!(sim.inbox(m3).is_empty());
    sim.heal();
    sim.run_for(60_000);
    let got: BTreeSet<_> = sim.inbox(m3).into_iter().collect();
    assert_eq!(got.len(), 1_000);
    assert_eq!(got, ids);
    assert_eq!(sim.channel_head(m3, m1, ch).unwrap().seq, 1_000, "no gap left");
}

#[test]
fn direct_message_reaches_a_member_behind_another_hub_after_it_was_offline() {
    let (mut sim, [_ha, _hb, m1, _m2, m3, _m4], _ch) = Sim::two_regions(4);
    sim.run_for(2_000);
    sim.crash(m3, 20_000);
    let id = sim.publish_direct(m1, m3).unwrap();
    sim.run_for(10_000);
    assert!(sim.inbox(m3).is_empty());
    sim.run_for(30_000);
    assert_eq!(sim.inbox(m3), vec![id]);
}

#[test]
fn hub_killed_mid_stream_loses_nothing_and_delivers_nothing_twice() {
    let (mut sim, [ha, _hb, m1, m2, m3, m4], ch) = Sim::two_regions(5);
    sim.run_for(2_000);
    let mut ids = BTreeSet::new();
    for i in 0..200 {
        ids.insert(sim.publish_channel(m1, ch).unwrap());
        if i == 80 {
            sim.run_for(37);
            sim.crash(ha, 5_000);
        }
        sim.run_for(13);
    }
    sim.run_for(60_000);
    for n in [m2, m3, m4] {
        let inbox = sim.inbox(n);
        assert!(unique(&inbox), "node {n} got a duplicate");
        assert_eq!(inbox.into_iter().collect::<BTreeSet<_>>(), ids, "node {n} missed messages");
    }
}

#[test]
fn runs_with_loss_and_partitions_converge() {
    for seed in 10..14 {
        let (mut sim, nodes, ch) = Sim::two_regions(seed);
        sim.set_loss(0.01);
        sim.set_delay(1, 200);
        sim.run_for(2_000);
        let mut ids = BTreeSet::new();
        for round in 0..10 {
            for &author in &nodes[2..] {
                ids.insert(sim.publish_channel(author, ch).unwrap());
            }
            match round {
                3 => sim.partition(&[nodes[0], nodes[2], nodes[3]]),
                6 => sim.heal(),
                _ => {}
            }
            sim.run_for(1_000);
        }
        sim.set_loss(0.0);
        sim.heal();
        sim.run_for(120_000);
        for &n in &nodes {
            assert_eq!(sim.held(n), ids.len(), "seed {seed}: node {n} did not converge ({:?})", sim.stats());
            assert!(unique(&sim.inbox(n)));
        }
        assert!(sim.stats().resets > 0, "seed {seed}: the run had no loss");
    }
}

#[test]
fn flash_is_delivered_before_a_routine_backlog() {
    let (mut sim, [_ha, _hb, m1, _m2, m3, _m4], ch) = Sim::two_regions(6);
    sim.run_for(2_000);
    sim.partition(&[m3]);
    for _ in 0..600 {
        sim.publish_channel(m1, ch).unwrap();
    }
    let flash = sim.publish_channel_with(m1, ch, Priority::Flash).unwrap();
    sim.run_for(10_000);
    sim.heal();
    // Let the link come back and the first window go out, but not the whole backlog.
    let mut waited = 0;
    while !sim.inbox(m3).contains(&flash) && waited < 30_000 {
        sim.run_for(100);
        waited += 100;
    }
    let inbox = sim.inbox(m3);
    let pos = inbox.iter().position(|i| *i == flash).expect("flash delivered");
    assert!(pos < 300, "flash was delivered at position {pos}, behind the routine backlog");
}

#[test]
fn restored_node_recovers_its_heads_and_never_reuses_a_sequence_number() {
    let (mut sim, [ha, _hb, m1, m2, _m3, _m4], ch) = Sim::two_regions(7);
    sim.run_for(2_000);
    sim.publish_channel(m1, ch).unwrap();
    sim.run_for(3_000);
    let backup = sim.backup(m1);
    for _ in 0..3 {
        sim.publish_channel(m1, ch).unwrap();
    }
    sim.run_for(5_000);
    assert_eq!(sim.channel_head(ha, m1, ch).unwrap().top, 4);
    sim.restore(m1, backup, 1_000);
    sim.run_for(500);
    assert!(sim.publish_channel(m1, ch).unwrap_err().contains("down"));
    sim.run_for(600); // restarted from the backup, links not yet back
    assert!(sim.is_recovering(m1));
    let e = sim.publish_channel(m1, ch).unwrap_err();
    assert!(e.contains("recovering"), "{e}");
    sim.run_for(10_000);
    assert!(!sim.is_recovering(m1));
    let id = sim.publish_channel(m1, ch).unwrap();
    sim.run_for(10_000);
    assert_eq!(sim.channel_head(ha, m1, ch).unwrap().seq, 5, "resumed above the learned head");
    assert!(sim.inbox(m2).contains(&id));
    assert_eq!(sim.stats().refused, 0, "no fork, nothing refused");
}

#[test]
fn hostile_frames_are_refused_with_reasons_while_other_traffic_flows() {
    let (mut sim, [ha, _hb, m1, m2, _m3, _m4], ch) = Sim::two_regions(8);
    sim.run_for(2_000);
    let reasons = |outs: Vec<Output>| -> Vec<RejectReason> {
        outs.into_iter()
            .filter_map(|o| if let Output::Refused { reason, .. } = o { Some(reason) } else { None })
            .collect()
    };
    // A CBOR bomb: 10,000 nested arrays.
    let bomb = vec![0x81; 10_000];
    assert_eq!(reasons(sim.inject(m1, ha, &bomb)), vec![RejectReason::Malformed]);
    // A message with a bad signature.
    let (cid, key) = sim.channel_key(ch);
    let body = Body::new(Content::Warning(samples::warning()));
    let now = sim.now();
    let d = Draft {
        audience: Audience::Channel { id: cid, epoch: 1, key: &key },
        seq: 1,
        prev: None,
        created: now,
        expires: Timestamp(now.as_millis() + 3_600_000),
        priority: Priority::Routine,
        marking: Tlp::Green,
        body: &body,
        personal: None,
    };
    let mut rng = rand_core::OsRng;
    let sealed = seal(&mut rng, sim.key(m2), &d).unwrap();
    let mut bad = sealed.bytes.clone();
    let n = bad.len();
    bad[n - 1] ^= 1;
    let f = Frame::Msg(Msg { env: bad, hop: 0 }).encode();
    assert_eq!(reasons(sim.inject(m1, ha, &f)), vec![RejectReason::Invalid]);
    // An expired message (a replay of something old).
    let old = Draft { created: Timestamp(1_000), expires: Timestamp(2_000), ..d };
    let old = seal(&mut rng, sim.key(m2), &old).unwrap();
    let f = Frame::Msg(Msg { env: old.bytes, hop: 0 }).encode();
    assert_eq!(reasons(sim.inject(m1, ha, &f)), vec![RejectReason::Expired]);
    // Too many hops.
    let f = Frame::Msg(Msg { env: sealed.bytes.clone(), hop: 200 }).encode();
    assert_eq!(reasons(sim.inject(m1, ha, &f)), vec![RejectReason::HopLimit]);
    // The valid message itself is accepted; sent again it is a duplicate (acknowledged, not an error).
    let f = Frame::Msg(Msg { env: sealed.bytes.clone(), hop: 0 }).encode();
    assert!(reasons(sim.inject(m1, ha, &f)).is_empty());
    let again = sim.inject(m1, ha, &f);
    assert!(reasons(again.clone()).is_empty());
    assert!(again.iter().any(|o| matches!(o, Output::Send { frame, .. } if matches!(Frame::decode(frame), Ok(Frame::Reject(r)) if r.reason == RejectReason::Duplicate))));
    // Other traffic still flows.
    let id = sim.publish_channel(m1, ch).unwrap();
    sim.run_for(5_000);
    assert!(sim.inbox(m2).contains(&id));
}

#[test]
fn equivocation_is_a_fork_and_freezes_the_feed() {
    let (mut sim, [ha, _hb, m1, m2, _m3, _m4], ch) = Sim::two_regions(9);
    sim.run_for(2_000);
    let (cid, key) = sim.channel_key(ch);
    let body = Body::new(Content::Warning(samples::warning()));
    let now = sim.now();
    let mut rng = rand_core::OsRng;
    let mk = |b: &Body, rng: &mut rand_core::OsRng, sim: &Sim| {
        let d = Draft {
            audience: Audience::Channel { id: cid, epoch: 1, key: &key },
            seq: 1,
            prev: None,
            created: now,
            expires: Timestamp(now.as_millis() + 3_600_000),
            priority: Priority::Routine,
            marking: Tlp::Green,
            body: b,
            personal: None,
        };
        Frame::Msg(Msg { env: seal(rng, sim.key(m2), &d).unwrap().bytes, hop: 0 }).encode()
    };
    let first = mk(&body, &mut rng, &sim);
    let second = mk(&Body::new(Content::Bulletin(samples::bulletin())), &mut rng, &sim);
    assert!(sim.inject(m1, ha, &first).iter().all(|o| !matches!(o, Output::Refused { .. })));
    let outs = sim.inject(m1, ha, &second);
    assert!(outs.iter().any(|o| matches!(o, Output::Fork { seq: 1, .. })), "{outs:?}");
    assert!(sim.channel_head(ha, m2, ch).unwrap().frozen);
    // Both messages are kept: the first as held, the second as the fork's evidence, byte for
    // byte as received.
    let evidence: Vec<_> = sim.store(ha).evidence.values().collect();
    let Ok(Frame::Msg(second)) = Frame::decode(&second) else { panic!("a message frame") };
    let Ok(Frame::Msg(first)) = Frame::decode(&first) else { panic!("a message frame") };
    let first_id = godwit_protocol::envelope::Envelope::peek_id(&first.env).unwrap();
    assert_eq!(evidence.len(), 1);
    assert_eq!(evidence[0].0, first_id);
    assert_eq!(&evidence[0].1[..], &second.env[..]);
    assert!(sim.store(ha).meta(&first_id).unwrap().is_some());
}

#[test]
fn a_hub_cut_off_from_another_hub_catches_up_its_members_backlog() {
    let (mut sim, [_ha, hb, m1, _m2, m3, m4], ch) = Sim::two_regions(21);
    sim.run_for(2_000);
    sim.partition(&[hb, m3, m4]);
    let mut ids = BTreeSet::new();
    for _ in 0..50 {
        ids.insert(sim.publish_channel(m1, ch).unwrap());
    }
    sim.run_for(10_000);
    assert!(sim.inbox(m3).is_empty());
    sim.heal();
    sim.run_for(30_000);
    for n in [hb, m3, m4] {
        assert_eq!(sim.inbox(n).into_iter().collect::<BTreeSet<_>>(), ids, "node {n}");
    }
}

#[test]
fn a_flash_stored_behind_a_routine_backlog_reaches_a_returning_member_in_its_first_window() {
    for restart_hub in [false, true] {
        let (mut sim, [_ha, hb, m1, _m2, m3, _m4], ch) = Sim::two_regions(8);
        sim.run_for(2_000);
        sim.partition(&[m3]);
        for _ in 0..600 {
            sim.publish_channel(m1, ch).unwrap();
        }
        let flash = sim.publish_channel_with(m1, ch, Priority::Flash).unwrap();
        sim.run_for(15_000);
        if restart_hub {
            // The flash is then known to m3's hub only from its store, not from memory.
            sim.crash(hb, 1_000);
            sim.run_for(5_000);
        }
        sim.heal();
        let mut waited = 0;
        while !sim.inbox(m3).contains(&flash) && waited < 30_000 {
            sim.run_for(50);
            waited += 50;
        }
        let pos = sim.inbox(m3).iter().position(|i| *i == flash).expect("flash delivered");
        // The window is 256: the flash is in the first one, not behind 600 routine messages.
        assert!(pos < 256, "restart {restart_hub}: the flash arrived at position {pos}");
        sim.run_for(60_000);
        assert_eq!(sim.inbox(m3).len(), 601, "the backlog follows");
    }
}

#[test]
fn a_deputy_changes_a_channel_while_its_owner_is_cut_off_and_every_node_converges() {
    use godwit_protocol::channel::{CHANNEL_STATE_VERSION, ChannelState, Member};
    use godwit_protocol::crypto::EpochKey;
    let (mut sim, [ha, hb, m1, m2, m3, m4], _) = Sim::two_regions(31);
    sim.run_for(2_000);
    let all = [ha, hb, m1, m2, m3, m4];
    let mut members: Vec<Member> =
        all.iter().map(|i| Member { node: sim.id(*i), read: true, publish: true }).collect();
    members.sort_by_key(|m| m.node);
    let genesis = ChannelState {
        format: CHANNEL_STATE_VERSION,
        ends: None,
        name: "Operation Tusk".into(),
        prev: None,
        epoch: 1,
        owner: sim.id(ha),
        deputy: Some(sim.id(hb)),
        retain: 30,
        channel: None,
        created: sim.now(),
        members,
        purpose: String::new(),
    };
    let g = ChannelState::verify(&genesis.sign(sim.key(ha))).unwrap();
    sim.publish_control(ha, &g.record).unwrap();
    sim.run_for(5_000);
    for ix in all {
        assert_eq!(sim.channel_epoch(ix, &g.channel), Some(1), "node {ix} holds the first state");
    }
    let (k1, k2) = (EpochKey::from_bytes([1; 32]), EpochKey::from_bytes([2; 32]));
    let first = sim.publish_in(m1, g.channel, 1, &k1).unwrap();
    sim.run_for(5_000);
    assert!(sim.inbox(m4).contains(&first));

    // The owner's region is cut off; the deputy removes m4 from its own region.
    sim.partition(&[ha]);
    let without = genesis.members.iter().copied().filter(|m| m.node != sim.id(m4)).collect();
    let second = ChannelState {
        prev: Some(g.id),
        channel: Some(g.channel),
        epoch: 2,
        members: without,
        ..genesis.clone()
    };
    let s2 = ChannelState::verify(&second.sign(sim.key(hb))).unwrap();
    sim.publish_control(hb, &s2.record).unwrap();
    sim.run_for(5_000);
    for ix in [hb, m3, m4] {
        assert_eq!(sim.channel_epoch(ix, &g.channel), Some(2), "node {ix} took the deputy's state");
    }
    for ix in [ha, m1, m2] {
        assert_eq!(sim.channel_epoch(ix, &g.channel), Some(1), "node {ix} is cut off with the owner");
    }
    // The removed member may no longer publish under the new epoch, nor is it sent it.
    let refused = sim.publish_in(m4, g.channel, 2, &k2).unwrap_err();
    assert!(refused.contains("not a member"), "{refused}");
    let after = sim.publish_in(m3, g.channel, 2, &k2).unwrap();
    sim.run_for(5_000);
    assert!(sim.inbox(hb).contains(&after));
    assert!(!sim.inbox(m4).contains(&after), "a removed member is not entitled");

    // Healed, the owner catches up: the state, then what was sent under it.
    sim.heal();
    sim.run_for(30_000);
    assert_eq!(sim.channel_epoch(ha, &g.channel), Some(2));
    for ix in [ha, m1, m2] {
        assert_eq!(sim.channel_epoch(ix, &g.channel), Some(2), "node {ix} caught up with the state");
        assert!(sim.inbox(ix).contains(&after), "node {ix} gets the new epoch's messages");
    }
    assert!(!sim.inbox(m4).contains(&after), "still not the removed member's");
    assert!(unique(&sim.inbox(m1)));
    // A replay of an older move is refused by the owner's own node, and changes nothing.
    let replay = ChannelState { prev: Some(g.id), channel: Some(g.channel), epoch: 5, ..genesis };
    let e = sim.publish_control(ha, &replay.sign(sim.key(ha))).unwrap_err();
    assert!(e.contains("not a forward move"), "{e}");
    for ix in all {
        assert_eq!(sim.channel_epoch(ix, &g.channel), Some(2));
    }
}

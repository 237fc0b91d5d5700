//! A sequence of frames from one peer (a hub, so that every frame kind is honoured) into a
//! relay: it never panics, never fails (only storage can), and everything it sends is a valid
//! frame. The input is split into frames by a one-byte length, with a byte of clock between.
#![no_main]

use godwit_protocol::Timestamp;
use godwit_protocol::identity::IdentityKey;
use godwit_protocol::ids::ChannelId;
use godwit_protocol::relay::{ChannelConfig, MemoryStore, Output, Relay, RelayConfig, Role, Store};
use godwit_protocol::wire::Frame;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let me = IdentityKey::from_seed(&[1; 32]).node_id();
    let peer = IdentityKey::from_seed(&[2; 32]).node_id();
    let member = IdentityKey::from_seed(&[3; 32]).node_id();
    let mut cfg = RelayConfig::new(me, Role::Hub);
    cfg.channels = vec![ChannelConfig { id: ChannelId([5; 32]), members: [me, peer, member].into() }];
    cfg.serves = [member].into();
    cfg.recovering = data.first().is_some_and(|b| b & 1 == 1);
    cfg.configured_peers = [peer].into();
    let mut relay = Relay::new(cfg, MemoryStore::new()).expect("the in-memory store never fails");
    let mut now = Timestamp(1_795_000_000_000);
    relay.connect(now, peer, Role::Hub).expect("the in-memory store never fails");
    relay.connect(now, member, Role::Member).expect("the in-memory store never fails");
    let mut rest = data.get(1..).unwrap_or_default();
    while let Some((&len, tail)) = rest.split_first() {
        let (frame, tail) = tail.split_at(usize::from(len).min(tail.len()));
        relay.handle_frame(now, peer, frame).expect("network input never fails the relay");
        if let Some((&tick, tail)) = tail.split_first() {
            now = now.plus_millis(u64::from(tick) * 500);
            relay.handle_timeout(now).expect("timers never fail the relay");
            rest = tail;
        } else {
            rest = tail;
        }
        while let Some(out) = relay.poll_output() {
            match out {
                Output::Send { frame, .. } => {
                    assert!(Frame::decode(&frame).is_ok(), "the relay sends only valid frames");
                }
                Output::Commit(batch) => {
                    relay.store_mut().write(&batch).expect("the in-memory store never fails");
                    relay.handle_committed().expect("the in-memory store never fails");
                }
                _ => {}
            }
        }
    }
});

//! Channel benchmarks: an epoch rotation (the owner's new signed state and a fresh epoch key
//! sealed to every reader; a member checking both and opening its key) for 50 and 200 members,
//! and publishing to a channel against a direct message to 10 recipients — each beside the raw
//! Ed25519 sign and HPKE seal rates of the same run.
//!
//! Run: `cargo bench -p godwit-protocol --bench channels`; results go to docs/benchmarks.md.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use criterion::{Criterion, Throughput, black_box, criterion_group, criterion_main};
use godwit_protocol::channel::{CHANNEL_STATE_VERSION, ChannelState, Member};
use godwit_protocol::content::{Body, Content, Tlp};
use godwit_protocol::crypto::{ChannelKey, EpochKey, hpke_seal};
use godwit_protocol::envelope::Priority;
use godwit_protocol::identity::{EncryptionKey, EncryptionPublicKey, IdentityKey, NodeId};
use godwit_protocol::ids::ChannelId;
use godwit_protocol::message::{Audience, Draft, seal};
use godwit_protocol::{Timestamp, samples};
use rand_core::SeedableRng;

const NOW: Timestamp = Timestamp(1_795_000_000_000);

/// `n` members (the owner among them), with their encryption keys.
fn members(
    rng: &mut rand_chacha::ChaCha20Rng,
    owner: &IdentityKey,
    n: usize,
) -> (Vec<Member>, Vec<(NodeId, EncryptionPublicKey)>, EncryptionKey, NodeId) {
    let mut list = vec![Member { node: owner.node_id(), read: true, publish: true }];
    let mut keys = vec![(owner.node_id(), EncryptionKey::generate(rng).public())];
    let reader_key = EncryptionKey::generate(rng);
    let reader = IdentityKey::generate(rng).node_id();
    list.push(Member { node: reader, read: true, publish: true });
    keys.push((reader, reader_key.public()));
    while list.len() < n {
        let node = IdentityKey::generate(rng).node_id();
        list.push(Member { node, read: true, publish: false });
        keys.push((node, EncryptionKey::generate(rng).public()));
    }
    list.sort_by_key(|m| m.node);
    keys.sort_by_key(|(n, _)| *n);
    (list, keys, reader_key, reader)
}

fn benches(c: &mut Criterion) {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(9);
    let owner = IdentityKey::generate(&mut rng);
    let msg = vec![0x5a; 1024];
    let mut g = c.benchmark_group("limits");
    g.throughput(Throughput::Elements(1));
    g.bench_function("ed25519_sign_1KiB", |b| b.iter(|| owner.sign(black_box(&msg))));
    let recipient = EncryptionKey::generate(&mut rng).public();
    g.bench_function("hpke_seal_per_recipient", |b| {
        b.iter(|| {
            hpke_seal(&mut rng, &recipient, b"godwit/v1 epoch-key", &[0; 64], black_box(&[7u8; 32])).unwrap()
        })
    });
    g.finish();

    for n in [50usize, 200] {
        let (list, keys, reader_key, reader) = members(&mut rng, &owner, n);
        let first = ChannelState {
            format: CHANNEL_STATE_VERSION,
            ends: None,
            name: "RILO Asia-Pacific alerts".into(),
            prev: None,
            epoch: 1,
            owner: owner.node_id(),
            deputy: None,
            retain: 365,
            channel: None,
            created: NOW,
            members: list,
            purpose: "regional alerts".into(),
        };
        let genesis = ChannelState::verify(&first.sign(&owner)).unwrap();
        let next = ChannelState { prev: Some(genesis.id), channel: Some(genesis.channel), epoch: 2, ..first };
        let channel = genesis.channel;
        let state_record = next.sign(&owner);
        let epoch_key = EpochKey::generate(&mut rng);
        let key_record = ChannelKey::issue(&mut rng, &owner, channel, 2, &epoch_key, &keys, NOW).unwrap();
        println!(
            "{n} members: state record {} bytes, key record {} bytes ({} per member)",
            state_record.len(),
            key_record.len(),
            key_record.len() / n
        );
        let mut g = c.benchmark_group(format!("epoch_rotation_{n}_members"));
        g.throughput(Throughput::Elements(1));
        g.sample_size(10);
        g.bench_function("owner_state_and_key", |b| {
            b.iter(|| {
                let s = next.sign(&owner);
                let k = EpochKey::generate(&mut rng);
                let r = ChannelKey::issue(&mut rng, &owner, channel, 2, &k, black_box(&keys), NOW).unwrap();
                (s, r)
            })
        });
        g.bench_function("member_checks_both_and_opens_its_key", |b| {
            b.iter(|| {
                let s = ChannelState::verify(black_box(&state_record)).unwrap();
                let ck = ChannelKey::verify(black_box(&key_record)).unwrap();
                (s.id, ck.unseal(&reader, &reader_key).unwrap())
            })
        });
        g.finish();
    }

    // Publishing a 1 KiB bulletin: to a channel (one AEAD under the epoch key) or directly to
    // 10 recipients (a content key sealed to each).
    let mut bulletin = samples::bulletin();
    bulletin.body = "x".repeat(700);
    let body = Body::new(Content::Bulletin(bulletin));
    let key = EpochKey::generate(&mut rng);
    let ten: Vec<(NodeId, EncryptionPublicKey)> = (0..10)
        .map(|_| (IdentityKey::generate(&mut rng).node_id(), EncryptionKey::generate(&mut rng).public()))
        .collect();
    let draft = |audience| Draft {
        audience,
        seq: 7,
        prev: Some(godwit_protocol::ids::MessageId([2; 32])),
        created: NOW,
        expires: NOW.plus_hours(24),
        priority: Priority::Flash,
        marking: Tlp::Amber,
        body: &body,
        personal: None,
    };
    let to_channel = draft(Audience::Channel { id: ChannelId([1; 32]), epoch: 2, key: &key });
    let to_ten = draft(Audience::Direct(&ten));
    let mut g = c.benchmark_group("publish");
    g.throughput(Throughput::Elements(1));
    g.bench_function("channel_message", |b| {
        b.iter(|| seal(&mut rng, &owner, black_box(&to_channel)).unwrap())
    });
    g.bench_function("direct_message_10_recipients", |b| {
        b.iter(|| seal(&mut rng, &owner, black_box(&to_ten)).unwrap())
    });
    g.finish();
}

criterion_group! {
    name = channels;
    config = Criterion::default().warm_up_time(std::time::Duration::from_secs(1)).measurement_time(std::time::Duration::from_secs(3));
    targets = benches
}
criterion_main!(channels);

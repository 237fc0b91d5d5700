//! Protocol benchmarks: sealing and opening a 1 KiB channel message, HPKE per recipient, and
//! decoding, each beside the raw Ed25519 sign and verify_strict rates of the same run.
//!
//! Run: `cargo bench -p godwit-protocol --bench envelope`; results go to docs/benchmarks.md.

#![allow(clippy::unwrap_used, clippy::type_complexity)] // test code: a panic is the failure report

use criterion::{Criterion, Throughput, black_box, criterion_group, criterion_main};
use godwit_protocol::content::{Body, Content, Tlp};
use godwit_protocol::crypto::{EpochKey, hpke_seal};
use godwit_protocol::envelope::{Envelope, Priority};
use godwit_protocol::identity::{EncryptionKey, IdentityKey};
use godwit_protocol::ids::ChannelId;
use godwit_protocol::message::{Audience, Draft, seal};
use godwit_protocol::{Timestamp, samples};
use rand_core::SeedableRng;

/// A bulletin whose encoded body is 1 KiB.
fn body_1k() -> Body {
    let mut b = samples::bulletin();
    b.body = String::new();
    let base = Body::new(Content::Bulletin(b.clone())).encode().len();
    b.body = "x".repeat(1024 - base - 2);
    let body = Body::new(Content::Bulletin(b));
    assert_eq!(body.encode().len(), 1024);
    body
}

fn benches(c: &mut Criterion) {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
    let author = IdentityKey::generate(&mut rng);
    let key = EpochKey::generate(&mut rng);
    let body = body_1k();
    let msg = vec![0x5a; 1024];
    let sig = author.sign(&msg);
    let id = author.node_id();
    let vk = id.verifying_key().unwrap();
    let dalek_sig = ed25519_dalek::Signature::from_bytes(&sig);
    let draft = Draft {
        audience: Audience::Channel { id: ChannelId([1; 32]), epoch: 1, key: &key },
        seq: 7,
        prev: Some(godwit_protocol::ids::MessageId([2; 32])),
        created: Timestamp(1_795_000_000_000),
        expires: Timestamp(1_795_086_400_000),
        priority: Priority::Flash,
        marking: Tlp::Amber,
        body: &body,
        personal: None,
    };
    let sealed = seal(&mut rng, &author, &draft).unwrap();
    println!("1 KiB body -> envelope of {} bytes", sealed.bytes.len());

    let mut g = c.benchmark_group("ed25519_raw_1KiB");
    g.throughput(Throughput::Elements(1));
    g.bench_function("sign", |b| b.iter(|| author.sign(black_box(&msg))));
    g.bench_function("verify_strict", |b| b.iter(|| vk.verify_strict(black_box(&msg), &dalek_sig).is_ok()));
    g.finish();

    let mut g = c.benchmark_group("channel_message_1KiB");
    g.throughput(Throughput::Elements(1));
    g.bench_function("sign_encrypt", |b| b.iter(|| seal(&mut rng, &author, black_box(&draft)).unwrap()));
    g.bench_function("verify_decrypt", |b| {
        b.iter(|| Envelope::verify(black_box(&sealed.bytes)).unwrap().open_channel(&key).unwrap())
    });
    let mut cache = godwit_protocol::envelope::KeyCache::new();
    g.bench_function("verify_decrypt_cached_key", |b| {
        b.iter(|| {
            Envelope::verify_cached(black_box(&sealed.bytes), &mut cache).unwrap().open_channel(&key).unwrap()
        })
    });
    g.bench_function("verify_only", |b| b.iter(|| Envelope::verify(black_box(&sealed.bytes)).unwrap()));
    g.finish();

    let recipient = EncryptionKey::generate(&mut rng).public();
    let content_key = [7u8; 32];
    let mut g = c.benchmark_group("hpke");
    g.throughput(Throughput::Elements(1));
    g.bench_function("seal_content_key_per_recipient", |b| {
        b.iter(|| {
            hpke_seal(&mut rng, &recipient, b"godwit/v1 content-key", &[0; 64], black_box(&content_key))
                .unwrap()
        })
    });
    g.finish();

    let encoded = body.encode();
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Bytes(encoded.len() as u64));
    g.bench_function("body_1KiB", |b| b.iter(|| Body::decode(black_box(&encoded)).unwrap()));
    g.finish();
}

criterion_group! {
    name = protocol;
    config = Criterion::default().warm_up_time(std::time::Duration::from_secs(1)).measurement_time(std::time::Duration::from_secs(3));
    targets = benches
}
criterion_main!(protocol);

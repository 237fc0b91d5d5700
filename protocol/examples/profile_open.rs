//! Opens the same 1 KiB channel message in a loop, for profilers:
//! `cargo build --release -p godwit-protocol --example profile_open` then
//! `perf record -g target/release/examples/profile_open` (or valgrind --tool=callgrind).

#![allow(clippy::unwrap_used, clippy::type_complexity)] // test code: a panic is the failure report

use godwit_protocol::content::{Body, Content, Tlp};
use godwit_protocol::crypto::EpochKey;
use godwit_protocol::envelope::{Envelope, KeyCache, Priority};
use godwit_protocol::identity::IdentityKey;
use godwit_protocol::ids::ChannelId;
use godwit_protocol::message::{Audience, Draft, seal};
use godwit_protocol::{Timestamp, samples};
use rand_core::SeedableRng;

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let cold = std::env::args().nth(2).is_some_and(|a| a == "cold");
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
    let author = IdentityKey::generate(&mut rng);
    let key = EpochKey::generate(&mut rng);
    let mut b = samples::bulletin();
    b.body = "x".repeat(700);
    let body = Body::new(Content::Bulletin(b));
    let draft = Draft {
        audience: Audience::Channel { id: ChannelId([1; 32]), epoch: 1, key: &key },
        seq: 1,
        prev: None,
        created: Timestamp(0),
        expires: Timestamp(1),
        priority: Priority::Routine,
        marking: Tlp::Green,
        body: &body,
        personal: None,
    };
    let sealed = seal(&mut rng, &author, &draft).expect("seal");
    let mut cache = KeyCache::new();
    let mut ok = 0;
    for _ in 0..n {
        let env = if cold {
            Envelope::verify(&sealed.bytes)
        } else {
            Envelope::verify_cached(&sealed.bytes, &mut cache)
        }
        .expect("verify");
        ok += usize::from(env.open_channel(&key).is_ok());
    }
    println!("opened {ok} of {n}");
}

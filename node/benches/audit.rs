//! The audit log's append rate in batched durable commits and `verify` over a large log, each
//! beside the same-run SHA-256 rate over the same entries (the tree costs one leaf hash and on
//! average one interior hash per entry) and the time the store takes to read every entry and do
//! nothing else (the floor under verify).
//!
//! `cargo bench -p godwit-node --bench audit [-- ENTRIES [BATCH]]` (default 1,000,000 entries
//! in batches of 10,000).

#![allow(clippy::unwrap_used, clippy::print_stdout)] // a benchmark: a panic is the failure report

use std::time::Instant;

use godwit_node::store::SledStore;
use godwit_protocol::audit::Event;
use godwit_protocol::identity::{IdentityKey, NodeId};
use godwit_protocol::ids::MessageId;
use godwit_protocol::relay::{Batch, Store, Write};
use sha2::{Digest, Sha256};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let n: u64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let batch: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = SledStore::open(dir.path()).unwrap();
    let key = IdentityKey::from_seed(&[3; 32]);
    let peer: NodeId = IdentityKey::from_seed(&[4; 32]).node_id();
    // A typical entry: a message relayed to one peer.
    let event = |i: u64| {
        let mut id = [0u8; 32];
        id[..8].copy_from_slice(&i.to_be_bytes());
        Event::Relayed { to: peer, ids: vec![MessageId(id)] }
    };

    let started = Instant::now();
    let mut written = 0;
    while written < n {
        let k = batch.min(n - written);
        let writes = (written..written + k).map(|i| Write::Event(event(i))).collect();
        store.write(&Batch { writes, sync: true }).unwrap();
        store.commit().unwrap();
        written += k;
    }
    let append = started.elapsed();

    // The same-run limit: SHA-256 over the stored entries' bytes, as often as the tree hashes.
    let entries = store.audit_entries(0, 0, 100_000).unwrap();
    let started = Instant::now();
    let mut acc = [0u8; 32];
    for (_, bytes, _) in &entries {
        acc = Sha256::new().chain_update([0u8]).chain_update(bytes).finalize().into();
        acc = Sha256::new().chain_update([1u8]).chain_update(acc).chain_update(acc).finalize().into();
    }
    let sha = started.elapsed().as_secs_f64() / entries.len() as f64;
    std::hint::black_box(acc);

    let started = Instant::now();
    std::hint::black_box(store.scan_journal_bytes().unwrap());
    let cold = started.elapsed();
    let started = Instant::now();
    std::hint::black_box(store.scan_journal_bytes().unwrap());
    let warm = started.elapsed();
    let started = Instant::now();
    let r = store.verify_audit(&key.node_id(), &[], |_, _| ()).unwrap();
    let verify = started.elapsed();
    assert!(r[0].first_bad.is_none() && r[0].entries == n);
    let avg = entries.iter().map(|(_, b, _)| b.len()).sum::<usize>() / entries.len();
    println!("entries {n} ({avg} bytes each), durable commits of {batch}");
    println!(
        "append: {:.0} entries/s ({:.2} µs each); same-run SHA-256 leaf + interior: {:.0} entries/s ({:.2} µs)",
        n as f64 / append.as_secs_f64(),
        append.as_secs_f64() * 1e6 / n as f64,
        1.0 / sha,
        sha * 1e6
    );
    println!(
        "verify: {:.2} s for {n} entries ({:.2} µs each); same-run floor, the store reading every entry and nothing else: {:.2} s first, {:.2} s again",
        verify.as_secs_f64(),
        verify.as_secs_f64() * 1e6 / n as f64,
        cold.as_secs_f64(),
        warm.as_secs_f64()
    );
}

//! What sled charges per key of a write batch, for the store's layout decisions: batches of 10
//! records are applied to one tree (as the group commit does) and flushed, in a fresh store, for
//! several record shapes. A letter per key written for each record: `r` a random 32-byte key
//! with a 32-byte value (as `meta` and `msgs` are keyed by message id), `s` a sequential key
//! with a 32-byte value (as `log` and `expiry`), and in capitals the same with a 1,420-byte value
//! (an envelope). Every batch also rewrites 9 fixed keys (as nine cursors did). Reports µs per
//! record of `apply_batch` alone and with the flush.
//!
//! Run: `cargo bench -p godwit-node --bench store_keys` (or name the shapes: `-- r s rSss`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // benchmark code: a panic is the failure report

use std::time::{Duration, Instant};

const RECORDS: u64 = 6_000;
const PER_BATCH: u64 = 10;

fn xorshift(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

fn run(shape: &str) -> (f64, f64) {
    let dir = tempfile::tempdir().unwrap();
    let db = sled::Config::new()
        .path(dir.path())
        .mode(sled::Mode::HighThroughput)
        .cache_capacity(64 << 20)
        .open()
        .unwrap();
    let tree = db.open_tree("bench").unwrap();
    let envelope = vec![7u8; 1_420];
    let mut seed = 0x1234_5678_u64;
    let mut local = 0u64;
    let mut apply = Duration::ZERO;
    let started = Instant::now();
    for _ in 0..RECORDS / PER_BATCH {
        let mut batch = sled::Batch::default();
        for _ in 0..PER_BATCH {
            local += 1;
            let mut id = [0u8; 32];
            for chunk in id.chunks_mut(8) {
                chunk.copy_from_slice(&xorshift(&mut seed).to_be_bytes());
            }
            for (table, kind) in (b'a'..).zip(shape.chars()) {
                let mut key = vec![table];
                match kind.to_ascii_lowercase() {
                    'r' => key.extend_from_slice(&id),
                    _ => key.extend_from_slice(&local.to_be_bytes()),
                }
                let value: &[u8] = if kind.is_ascii_uppercase() { &envelope } else { &id };
                batch.insert(key, value);
            }
        }
        for peer in 0..9u8 {
            batch.insert(&[b'z', peer][..], &local.to_be_bytes());
        }
        let t = Instant::now();
        tree.apply_batch(batch).unwrap();
        apply += t.elapsed();
        db.flush().unwrap();
    }
    let per = |d: Duration| d.as_secs_f64() * 1e6 / RECORDS as f64;
    (per(apply), per(started.elapsed()))
}

fn main() {
    let named: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let shapes: Vec<&str> = if named.is_empty() {
        vec!["", "r", "s", "R", "S", "rsss", "Rrsss"]
    } else {
        named.iter().map(String::as_str).collect()
    };
    println!("store keys: {RECORDS} records in batches of {PER_BATCH}, 9 fixed keys rewritten per batch");
    for shape in shapes {
        let (apply, total) = run(shape);
        let label = if shape.is_empty() { "(fixed keys only)" } else { shape };
        println!("  {label:18} apply_batch {apply:6.1} µs per record   with flush {total:6.1} µs per record");
    }
}

//! The relay under faults in the simulator, where a crash loses everything not yet committed:
//! crashes between handling and committing, and seeded random schedules of loss, delay,
//! duplication, partitions and crashes, each checked against the invariants (every message
//! whose publication succeeded reaches every entitled member exactly once, no feed holes, no
//! forks, bounded state). `GODWIT_SIM_SEEDS=N` runs N schedules instead of the 200 CI runs.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::collections::{BTreeMap, BTreeSet};

use godwit_protocol::ids::MessageId;
use godwit_protocol::sim::{Ix, Sim};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

/// Checks the invariants once the network is quiet; `published` maps each message whose
/// publication succeeded to the nodes entitled to it; `attempted` counts every publication
/// (one whose commit was under way at a crash may or may not have survived).
fn check(
    sim: &Sim,
    nodes: &[Ix],
    published: &BTreeMap<MessageId, Vec<Ix>>,
    attempted: usize,
) -> Result<(), String> {
    for &n in nodes {
        let inbox = sim.inbox(n);
        let distinct: BTreeSet<&MessageId> = inbox.iter().collect();
        if distinct.len() != inbox.len() {
            return Err(format!("node {n} delivered a message twice"));
        }
        for (author, feed, head) in sim.heads(n) {
            if head.frozen {
                return Err(format!("node {n} froze feed {feed:?} of {}: a fork", author.short()));
            }
            if head.seq != head.top {
                return Err(format!(
                    "node {n} has a hole in a feed of {}: {} of {}",
                    author.short(),
                    head.seq,
                    head.top
                ));
            }
        }
        if sim.held(n) > attempted {
            return Err(format!("node {n} holds {} messages of {attempted} published", sim.held(n)));
        }
    }
    for (id, entitled) in published {
        for &n in entitled {
            if !sim.inbox(n).contains(id) {
                return Err(format!("node {n} never received {}", id.short()));
            }
        }
    }
    Ok(())
}

#[test]
fn a_crash_between_handling_and_committing_loses_nothing_acknowledged() {
    for seed in 0..8 {
        let (mut sim, nodes, ch) = Sim::two_regions(100 + seed);
        let [ha, _hb, m1, m2, m3, m4] = nodes;
        // Long commits: most crashes fall between handling a message and committing it.
        sim.set_commit_delay(40);
        sim.run_for(2_000);
        let mut published = BTreeMap::new();
        let mut crashes = 0;
        for i in 0..120 {
            if let Ok(id) = sim.publish_channel(m1, ch) {
                published.insert(id, vec![ha, nodes[1], m2, m3, m4]);
            }
            if i % 10 == 7 {
                // Exactly between handling a message and committing it.
                if sim.run_until_uncommitted(ha, 1_000) {
                    sim.crash(ha, 1_500);
                    crashes += 1;
                }
            }
            if i % 40 == 21 {
                sim.crash(m3, 800);
            }
            sim.run_for(11);
        }
        sim.run_for(90_000);
        assert!(crashes >= 10, "seed {seed}: only {crashes} crashes before a commit");
        check(&sim, &nodes, &published, published.len()).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    }
}

#[test]
fn a_crash_between_authoring_and_committing_never_reuses_a_sequence_number() {
    let mut lost = 0;
    for seed in 0..8 {
        let (mut sim, nodes, ch) = Sim::two_regions(300 + seed);
        let [ha, hb, m1, m2, m3, m4] = nodes;
        sim.set_commit_delay(200);
        sim.set_delay(5, 10);
        sim.set_async_publish(true);
        sim.run_for(2_000);
        let mut published = BTreeMap::new();
        for _ in 0..6 {
            let id = sim.publish_channel(m1, ch).unwrap();
            published.insert(id, vec![ha, hb, m2, m3, m4]);
            // The author's commit is under way: a crash now may lose the message, which must
            // then not have left the node, or its successor would fork the feed.
            assert!(sim.run_until_committing(m1, 1_000), "seed {seed}: no commit under way");
            // Long enough for anything it sent to arrive, mostly too short for the commit.
            sim.run_for(15);
            sim.crash(m1, 300);
            sim.run_for(3_000);
            lost += usize::from(!sim.is_published(&id));
            // Authored again after the restart, at the sequence number the lost one had.
            let again = sim.publish_channel(m1, ch).unwrap();
            published.insert(again, vec![ha, hb, m2, m3, m4]);
            sim.run_for(2_000);
        }
        sim.run_for(60_000);
        let attempted = published.len();
        published.retain(|id, _| sim.is_published(id));
        check(&sim, &nodes, &published, attempted).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    }
    assert!(lost >= 10, "only {lost} publications were lost in a crash: the test did not test");
}

/// One seeded schedule of faults and publications, then quiet; the invariants must hold.
fn schedule(seed: u64) -> Result<(), String> {
    let (mut sim, nodes, ch) = Sim::two_regions(seed);
    let mut rng = ChaCha20Rng::seed_from_u64(seed ^ 0x5eed);
    let mut roll = |n: u64| rng.next_u64() % n;
    sim.set_delay(1, 1 + roll(150));
    sim.set_commit_delay(roll(30));
    sim.set_duplication(roll(3) as f64 / 100.0);
    // Half the schedules publish without waiting for the commit, so crashes also fall between
    // authoring a message and committing it.
    sim.set_async_publish(roll(2) == 0);
    sim.run_for(2_000);
    let mut published = BTreeMap::new();
    for _ in 0..30 {
        match roll(12) {
            0..=5 => {
                let author = nodes[roll(6) as usize];
                if let Ok(id) = sim.publish_channel(author, ch) {
                    published.insert(id, nodes.iter().copied().filter(|n| *n != author).collect());
                }
            }
            6 | 7 => {
                let (from, to) = (nodes[2 + roll(4) as usize], nodes[2 + roll(4) as usize]);
                if from != to {
                    if let Ok(id) = sim.publish_direct(from, to) {
                        published.insert(id, vec![to]);
                    }
                }
            }
            8 => sim.crash(nodes[roll(6) as usize], 200 + roll(4_000)),
            9 => {
                let side: Vec<Ix> = nodes.iter().copied().filter(|_| roll(2) == 0).collect();
                sim.partition(&side);
            }
            10 => sim.heal(),
            _ => sim.set_loss(roll(4) as f64 / 100.0),
        }
        sim.run_for(10 + roll(700));
    }
    sim.set_loss(0.0);
    sim.set_duplication(0.0);
    sim.heal();
    sim.run_for(180_000);
    if let Some(n) = nodes.iter().find(|n| !sim.is_up(**n)) {
        return Err(format!("node {n} did not come back"));
    }
    // Only publications that were committed succeeded; one lost in a crash must leave no trace
    // (no fork when its sequence number is used again).
    let attempted = published.len();
    published.retain(|id, _| sim.is_published(id));
    check(&sim, &nodes, &published, attempted)
}

#[test]
fn seeded_fault_schedules_keep_the_invariants() {
    let seeds: u64 = std::env::var("GODWIT_SIM_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(200);
    let failed: Vec<String> =
        (0..seeds).filter_map(|seed| schedule(seed).err().map(|e| format!("seed {seed}: {e}"))).collect();
    assert!(
        failed.is_empty(),
        "{} of {seeds} schedules broke an invariant:\n{}",
        failed.len(),
        failed.join("\n")
    );
}

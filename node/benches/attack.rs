//! Memory under attack: one hub (`godwitd run`, a separate process); rounds of hostile members,
//! each with its own valid certificate, connect and send invalid messages until the hub drops
//! them as abusive. After every round the hub's resident memory (VmRSS, from /proc) is printed,
//! so that growth with the number of rounds shows. Rounds are paced to the hub's handshake rate
//! (50 a second), so every connection is admitted. Bounded: a fixed number of rounds, and every
//! wait has a deadline.
//!
//! Run: `cargo bench -p godwit-node --bench attack` (10 rounds of 60 connections; `-- 20 100`
//! for 20 rounds of 100). With `--reuse`, the same hostile members (the same certificates) come
//! back every round, as a compromised member would: they are refused while their ban lasts.

#![allow(clippy::unwrap_used, clippy::expect_used)] // benchmark code: a panic is the failure report

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use godwit_node::certs::{Authority, NodeAttrs, pkcs8};
use godwit_node::config::write_identity;
use godwit_node::net::now;
use godwit_node::tls::{NetLimits, TlsMaterial, client_config};
use godwit_protocol::identity::{IdentityKey, Role};
use godwit_protocol::wire::{Frame, Hello, Msg};
use rand_core::OsRng;

const DAY: u64 = 86_400_000;
/// An envelope that does not decode: a full-weight refusal.
const GARBAGE: [u8; 6] = [0xd2, 0x84, 0x40, 0xa0, 0x40, 0x40];

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

async fn frame(s: &mut quinn::SendStream, f: &Frame) -> bool {
    let b = f.encode();
    let mut buf = (b.len() as u32).to_be_bytes().to_vec();
    buf.extend_from_slice(&b);
    s.write_all(&buf).await.is_ok()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let nums: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let rounds = nums.first().copied().unwrap_or(10);
    let per_round = nums.get(1).copied().unwrap_or(60);
    let reuse = std::env::args().any(|a| a == "--reuse");
    let tmp = tempfile::tempdir().unwrap();
    let t = now().as_millis();
    let ca = Authority::new("Bench CA", t - DAY, t + DAY).unwrap();
    let hub_key = IdentityKey::generate(&mut OsRng);
    let attrs = |role| NodeAttrs {
        administration: "Bench".into(),
        country: "KE".parse().unwrap(),
        region: "ESA".into(),
        role,
    };
    let hub_cert = ca.issue(&hub_key, &attrs(Role::Hub), 1, t - DAY, t + DAY).unwrap();
    std::fs::create_dir_all(tmp.path().join("data")).unwrap();
    write_identity(&tmp.path().join("data/identity.key"), &hub_key).unwrap();
    std::fs::write(tmp.path().join("ca.pem"), ca.cert_pem()).unwrap();
    std::fs::write(tmp.path().join("hub.pem"), &hub_cert.pem).unwrap();
    let cfg = format!(
        "[node]\ndata_dir = {:?}\nlisten = \"127.0.0.1:0\"\n[tls]\nca = {:?}\ncertificate = {:?}\n[limits]\nabuse_limit = 4\nmax_peers = 1024\n",
        tmp.path().join("data"),
        tmp.path().join("ca.pem"),
        tmp.path().join("hub.pem"),
    );
    std::fs::write(tmp.path().join("hub.toml"), cfg).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_godwitd"))
        .args(["run", "--config", tmp.path().join("hub.toml").to_str().unwrap()])
        .env("RUST_LOG", "warn,godwit_node::net=info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr: std::net::SocketAddr = loop {
        let l = lines.next().unwrap().unwrap();
        if let Some(r) = l.split("addr=").nth(1).filter(|_| l.contains("godwitd listening")) {
            break r.split_whitespace().next().unwrap().parse().unwrap();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let pid = child.id();
    let who = if reuse { "the same" } else { "new" };
    println!("attack bench: {rounds} rounds of {per_round} {who} hostile members, each dropped as abusive");
    println!("  before the first round  VmRSS {} KiB", rss_kib(pid));
    let ep = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    let mut serial = 100;
    let mut issue = || {
        serial += 1;
        let key = IdentityKey::generate(&mut OsRng);
        let cert = ca.issue(&key, &attrs(Role::Member), serial, t - DAY, t + DAY).unwrap();
        (key, cert)
    };
    let same: Vec<_> = if reuse { (0..per_round).map(|_| issue()).collect() } else { Vec::new() };
    let start = Instant::now();
    for round in 1..=rounds {
        let mut dropped = 0;
        let mut tasks = Vec::new();
        for i in 0..per_round {
            let (key, cert) = match same.get(i) {
                Some((key, cert)) => (IdentityKey::from_seed(&key.to_seed()), cert.clone()),
                None => issue(),
            };
            let tls = TlsMaterial { ca: ca.cert_der(), cert: cert.der, key: pkcs8(&key), crl: None };
            let client = client_config(&tls, &NetLimits::default()).unwrap();
            let name = godwit_node::certs::dns_name(&hub_key.node_id());
            let connecting = ep.connect_with(client, addr, &name).unwrap();
            let me = key.node_id();
            tasks.push(tokio::spawn(async move {
                let conn = tokio::time::timeout(Duration::from_secs(10), connecting).await.ok()?.ok()?;
                let mut s = conn.open_uni().await.ok()?;
                s.write_all(&[0x67, 0]).await.ok()?;
                frame(&mut s, &Frame::Reach(vec![me])).await;
                frame(&mut s, &Frame::Hello(Hello { v: 1, recovering: false })).await;
                for _ in 0..20 {
                    if !frame(&mut s, &Frame::Msg(Msg { env: GARBAGE.to_vec(), hop: 0 })).await {
                        break;
                    }
                }
                let closed = tokio::time::timeout(Duration::from_secs(10), conn.closed()).await.ok()?;
                Some(closed.to_string().contains("abusive"))
            }));
        }
        for task in tasks {
            if task.await.ok().flatten() == Some(true) {
                dropped += 1;
            }
        }
        println!(
            "  after round {round:>3}  {dropped:>4} of {per_round} dropped as abusive  VmRSS {} KiB",
            rss_kib(pid)
        );
        // The hub admits 50 handshakes a second (burst 200): pace the rounds so that each
        // round's connections are admitted and dropped for their behaviour, not refused.
        tokio::time::sleep(Duration::from_millis(per_round as u64 * 20 + 100)).await;
    }
    println!("  {} rounds in {:.1} s", rounds, start.elapsed().as_secs_f64());
    let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status();
    let _ = child.wait();
}

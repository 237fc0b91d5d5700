//! Relay benchmark: one hub (`godwitd run`, a separate process) with 10 members played by
//! lightweight in-process QUIC clients. One member publishes N channel messages; the hub
//! verifies, stores (fsync per group commit), acknowledges and relays each to the 9 others,
//! which acknowledge. Reports the hub's CPU per message (from /proc) beside the raw
//! verify_strict cost measured in the same run, the CPU per delivered copy, and the latency
//! from a message leaving its author to its arrival at a member (p50, p99).
//!
//! Run: `cargo bench -p godwit-node --bench relay` (N defaults to 2000; `-- 5000` to change;
//! `-- --members 50` for another number of members, `-- --window 1` for the publisher to wait
//! for each acknowledgement before the next message: the latency of an idle hub). Members
//! acknowledge as a node does, every id that arrived while they were writing in one `Ack`
//! frame; `-- --ack-each` makes them send one `Ack` per message instead (the heavier load on the
//! hub, the form of the runs before 2026-12-02). With 10 members or fewer every member
//! verifies what it receives; with more, members read the id only, so that the benchmark
//! process does not take the CPU the hub is measured on. `BENCH_HUB_LOG=1` passes the hub's
//! log through to stderr.
//!
//! `-- --floor` puts a stand-in in the hub's place, run the same way as a process of its own:
//! the same mutual-TLS QUIC endpoint and stream shape as a node (three streams per link, one
//! write per frame), which verifies each message (`Envelope::verify_cached`, as the relay does),
//! writes it to the other members and acknowledges it, with nothing stored, routed or
//! journalled. Its CPU per message is what verification and the transport alone cost: the floor
//! under any relay core on this machine, measured beside the same-run `verify_strict`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // benchmark code: a panic is the failure report

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use godwit_node::certs::{Authority, NodeAttrs, pkcs8};
use godwit_node::config::write_identity;
use godwit_node::net::now;
use godwit_node::tls::{NetLimits, TlsMaterial, client_config};
use godwit_protocol::content::{Body, Content, Tlp};
use godwit_protocol::crypto::EpochKey;
use godwit_protocol::envelope::Priority;
use godwit_protocol::identity::IdentityKey;
use godwit_protocol::identity::Role;
use godwit_protocol::ids::ChannelId;
use godwit_protocol::message::{Audience, Draft, seal};
use godwit_protocol::wire::{Frame, Hello, MAX_ACK_IDS, Msg};
use godwit_protocol::{Timestamp, samples};
use rand_core::OsRng;
use tokio::sync::{Semaphore, mpsc};

const DAY: u64 = 86_400_000;

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

fn clk_tck() -> u64 {
    let o = Command::new("getconf").arg("CLK_TCK").output().unwrap();
    String::from_utf8_lossy(&o.stdout).trim().parse().unwrap_or(100)
}

async fn frame(s: &mut quinn::SendStream, f: &Frame) {
    let b = f.encode();
    let mut buf = (b.len() as u32).to_be_bytes().to_vec();
    buf.extend_from_slice(&b);
    // The hub closes every link when the run ends: a member still writing then is not an error.
    let _ = s.write_all(&buf).await;
}

/// The `--floor` stand-in for the hub: verify, write to every other member, acknowledge.
/// Reads its TLS material from `dir` (`ca.der`, `hub.der`, `hub.key`).
async fn floor_hub(dir: &std::path::Path) {
    use godwit_protocol::envelope::{Envelope, KeyCache};
    use godwit_protocol::ids::MessageId;
    let read = |f: &str| std::fs::read(dir.join(f)).unwrap();
    let tls = TlsMaterial {
        ca: read("ca.der").into(),
        cert: read("hub.der").into(),
        key: read("hub.key").into(),
        crl: None,
    };
    let server = godwit_node::tls::server_config(&tls, &NetLimits::default()).unwrap();
    let ep = quinn::Endpoint::server(server, "127.0.0.1:0".parse().unwrap()).unwrap();
    eprintln!("floor hub: godwitd listening addr={}", ep.local_addr().unwrap());
    enum Out {
        Msg(Arc<Vec<u8>>),
        Ack(MessageId),
    }
    type Links = Arc<Mutex<Vec<(usize, mpsc::UnboundedSender<Out>)>>>;
    let links: Links = Arc::default();
    let mut next = 0usize;
    while let Some(incoming) = ep.accept().await {
        let Ok(conn) = incoming.await else { continue };
        let me = next;
        next += 1;
        let (tx, mut rx) = mpsc::unbounded_channel::<Out>();
        links.lock().unwrap().push((me, tx));
        let c2 = conn.clone();
        tokio::spawn(async move {
            // A node's three streams, announced with their preamble; messages on the routine
            // one, acknowledgements on the urgent one.
            let mut streams = Vec::new();
            for class in [0u8, 1, 2] {
                let mut s = c2.open_uni().await.unwrap();
                s.write_all(&[0x67, class]).await.unwrap();
                streams.push(s);
            }
            let mut pending = rx.recv().await;
            while let Some(out) = pending.take() {
                let (stream, body) = match out {
                    Out::Msg(framed) => (&mut streams[2], framed.to_vec()),
                    Out::Ack(id) => {
                        let mut ids = vec![id];
                        while ids.len() < MAX_ACK_IDS {
                            match rx.try_recv() {
                                Ok(Out::Ack(more)) => ids.push(more),
                                Ok(other) => {
                                    pending = Some(other);
                                    break;
                                }
                                Err(_) => break,
                            }
                        }
                        let b = Frame::Ack(ids).encode();
                        let mut buf = (b.len() as u32).to_be_bytes().to_vec();
                        buf.extend_from_slice(&b);
                        (&mut streams[0], buf)
                    }
                };
                if stream.write_all(&body).await.is_err() {
                    return;
                }
                if pending.is_none() {
                    pending = rx.recv().await;
                }
            }
        });
        let links = links.clone();
        tokio::spawn(async move {
            while let Ok(mut r) = conn.accept_uni().await {
                let links = links.clone();
                tokio::spawn(async move {
                    let mut keys = KeyCache::new();
                    let mut pre = [0u8; 2];
                    if r.read_exact(&mut pre).await.is_err() {
                        return;
                    }
                    loop {
                        let mut len = [0u8; 4];
                        if r.read_exact(&mut len).await.is_err() {
                            return;
                        }
                        let mut b = vec![0u8; u32::from_be_bytes(len) as usize];
                        if r.read_exact(&mut b).await.is_err() {
                            return;
                        }
                        let Ok(Frame::Msg(m)) = Frame::decode(&b) else { continue };
                        let id = Envelope::verify_cached(&m.env, &mut keys).unwrap().id();
                        let f = Frame::Msg(Msg { env: m.env, hop: m.hop + 1 }).encode();
                        let mut framed = (f.len() as u32).to_be_bytes().to_vec();
                        framed.extend_from_slice(&f);
                        let framed = Arc::new(framed);
                        for (i, tx) in links.lock().unwrap().iter() {
                            let _ = tx.send(if *i == me { Out::Ack(id) } else { Out::Msg(framed.clone()) });
                        }
                    }
                });
            }
        });
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(dir) = args.iter().position(|a| a == "--floor-hub").and_then(|i| args.get(i + 1)) {
        return floor_hub(std::path::Path::new(dir)).await;
    }
    let floor = args.iter().any(|a| a == "--floor");
    let opt = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1));
    let (members_arg, window_arg) = (opt("--members"), opt("--window"));
    #[allow(non_snake_case)]
    let MEMBERS: usize = members_arg.and_then(|m| m.parse().ok()).unwrap_or(10);
    let in_flight: usize = window_arg.and_then(|m| m.parse().ok()).unwrap_or(256);
    let n: usize = args
        .iter()
        .filter(|a| Some(*a) != members_arg && Some(*a) != window_arg)
        .find_map(|a| a.parse().ok())
        .unwrap_or(2_000);
    let verify_all = MEMBERS <= 10;
    let ack_each = args.iter().any(|a| a == "--ack-each");
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
    let members: Vec<IdentityKey> = (0..MEMBERS).map(|_| IdentityKey::generate(&mut OsRng)).collect();
    let channel = ChannelId([0x42; 32]);
    std::fs::create_dir_all(tmp.path().join("data")).unwrap();
    write_identity(&tmp.path().join("data/identity.key"), &hub_key).unwrap();
    std::fs::write(tmp.path().join("ca.pem"), ca.cert_pem()).unwrap();
    std::fs::write(tmp.path().join("hub.pem"), &hub_cert.pem).unwrap();
    let ids: Vec<String> = members.iter().map(|m| format!("{:?}", m.node_id().to_string())).collect();
    let cfg = format!(
        "[node]\ndata_dir = {:?}\nlisten = \"127.0.0.1:0\"\n[tls]\nca = {:?}\ncertificate = {:?}\n[limits]\nrate_per_sec = 1000000\nrate_burst = 1000000\n[[channels]]\nid = \"{}\"\nmembers = [{}]\n[hub]\nserves = [{}]\n",
        tmp.path().join("data"),
        tmp.path().join("ca.pem"),
        tmp.path().join("hub.pem"),
        channel,
        ids.join(", "),
        ids.join(", ")
    );
    std::fs::write(tmp.path().join("hub.toml"), cfg).unwrap();
    std::fs::write(tmp.path().join("ca.der"), ca.cert_der()).unwrap();
    std::fs::write(tmp.path().join("hub.der"), &hub_cert.der).unwrap();
    std::fs::write(tmp.path().join("hub.key"), pkcs8(&hub_key).secret_pkcs8_der()).unwrap();
    let mut hub = if floor {
        let mut c = Command::new(std::env::current_exe().unwrap());
        c.args(["--floor-hub", tmp.path().to_str().unwrap()]);
        c
    } else {
        let mut c = Command::new(env!("CARGO_BIN_EXE_godwitd"));
        c.args(["run", "--config", tmp.path().join("hub.toml").to_str().unwrap()]);
        c
    };
    let mut child = hub.env("RUST_LOG", "warn,godwit_node::net=info").stderr(Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr: std::net::SocketAddr = loop {
        let l = lines.next().unwrap().unwrap();
        if let Some(r) = l.split("addr=").nth(1).filter(|_| l.contains("godwitd listening")) {
            break r.split_whitespace().next().unwrap().parse().unwrap();
        }
    };
    // `BENCH_HUB_LOG=1` shows the hub's log (warnings, connections) on stderr.
    let show = std::env::var_os("BENCH_HUB_LOG").is_some();
    std::thread::spawn(move || {
        // Read to the end whatever it holds: a hub blocked on a full pipe would stall the run.
        for l in lines {
            if let (true, Ok(l)) = (show, l) {
                eprintln!("hub: {l}");
            }
        }
    });

    // Members connect.
    let ep = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    let received = Arc::new(AtomicUsize::new(0));
    let all_in = Arc::new(tokio::sync::Notify::new());
    let want = n * (MEMBERS - 1);
    let acked = Arc::new(Semaphore::new(0));
    // When each message left its author (ns since `origin`), by id; latencies at arrival.
    let origin = Instant::now();
    let sent_at: Arc<Mutex<std::collections::HashMap<[u8; 32], u64>>> = Arc::default();
    let latencies: Arc<Mutex<Vec<u64>>> = Arc::default();
    let mut senders = Vec::new();
    for (i, m) in members.iter().enumerate() {
        let cert = ca.issue(m, &attrs(Role::Member), 10 + i as u64, t - DAY, t + DAY).unwrap();
        let tls = TlsMaterial { ca: ca.cert_der(), cert: cert.der, key: pkcs8(m), crl: None };
        let conn = ep
            .connect_with(
                client_config(&tls, &NetLimits::default()).unwrap(),
                addr,
                &godwit_node::certs::dns_name(&hub_key.node_id()),
            )
            .unwrap()
            .await
            .unwrap();
        let mut s = conn.open_uni().await.unwrap();
        s.write_all(&[0x67, 0]).await.unwrap();
        frame(&mut s, &Frame::Reach(vec![m.node_id()])).await;
        frame(&mut s, &Frame::Hello(Hello { v: 1, recovering: false })).await;
        let (tx, mut rx) = mpsc::unbounded_channel::<Frame>();
        tokio::spawn(async move {
            let mut next = rx.recv().await;
            while let Some(f) = next.take() {
                let f = match f {
                    // The ids that arrived while the last frame was written go out together.
                    Frame::Ack(mut ids) if !ack_each => {
                        while ids.len() < MAX_ACK_IDS {
                            match rx.try_recv() {
                                Ok(Frame::Ack(more)) => ids.extend(more),
                                Ok(other) => {
                                    next = Some(other);
                                    break;
                                }
                                Err(_) => break,
                            }
                        }
                        Frame::Ack(ids)
                    }
                    f => f,
                };
                frame(&mut s, &f).await;
                if next.is_none() {
                    next = rx.recv().await;
                }
            }
        });
        let (received, acked, tx2, all_in) = (received.clone(), acked.clone(), tx.clone(), all_in.clone());
        let (sent_at, latencies) = (sent_at.clone(), latencies.clone());
        tokio::spawn(async move {
            while let Ok(mut r) = conn.accept_uni().await {
                let (received, acked, tx, all_in) =
                    (received.clone(), acked.clone(), tx2.clone(), all_in.clone());
                let (sent_at, latencies) = (sent_at.clone(), latencies.clone());
                tokio::spawn(async move {
                    let mut pre = [0u8; 2];
                    if r.read_exact(&mut pre).await.is_err() {
                        return;
                    }
                    loop {
                        let mut len = [0u8; 4];
                        if r.read_exact(&mut len).await.is_err() {
                            return;
                        }
                        let mut b = vec![0u8; u32::from_be_bytes(len) as usize];
                        r.read_exact(&mut b).await.unwrap();
                        match Frame::decode(&b).unwrap() {
                            Frame::Msg(m) => {
                                let id = if verify_all {
                                    godwit_protocol::envelope::Envelope::verify(&m.env).unwrap().id()
                                } else {
                                    godwit_protocol::envelope::Envelope::peek_id(&m.env).unwrap()
                                };
                                let at = origin.elapsed().as_nanos() as u64;
                                // Only the benchmark's own messages count: the hub's card (a
                                // control message) reaches members too.
                                let ours = sent_at.lock().unwrap().get(&id.0).copied();
                                let _ = tx.send(Frame::Ack(vec![id]));
                                if let Some(t) = ours {
                                    latencies.lock().unwrap().push(at.saturating_sub(t));
                                    if received.fetch_add(1, Ordering::Relaxed) + 1 == want {
                                        all_in.notify_one();
                                    }
                                }
                            }
                            Frame::Ack(ids) => acked.add_permits(ids.len()),
                            _ => {}
                        }
                    }
                });
            }
        });
        senders.push(tx);
    }

    // Pre-seal the publisher's feed (not part of the hub's cost).
    let key = EpochKey::generate(&mut OsRng);
    let mut b = samples::bulletin();
    b.body = "x".repeat(700);
    let body = Body::new(Content::Bulletin(b));
    let mut prev = None;
    let mut msgs = Vec::with_capacity(n);
    let now = now();
    for seq in 1..=n as u64 {
        let d = Draft {
            audience: Audience::Channel { id: channel, epoch: 1, key: &key },
            seq,
            prev,
            created: now,
            expires: Timestamp(now.as_millis() + DAY),
            priority: Priority::Routine,
            marking: Tlp::Green,
            body: &body,
            personal: None,
        };
        let s = seal(&mut OsRng, &members[0], &d).unwrap();
        prev = Some(s.id);
        msgs.push((s.id, s.bytes));
    }
    let env_len = msgs[0].1.len();

    let cpu0 = cpu_ticks(child.id());
    let start = Instant::now();
    let window = Arc::new(Semaphore::new(in_flight));
    let w2 = window.clone();
    let a2 = acked.clone();
    tokio::spawn(async move {
        loop {
            let p = a2.acquire().await.unwrap();
            p.forget();
            w2.add_permits(1);
        }
    });
    for (id, env) in msgs {
        window.acquire().await.unwrap().forget();
        sent_at.lock().unwrap().insert(id.0, origin.elapsed().as_nanos() as u64);
        senders[0].send(Frame::Msg(Msg { env, hop: 0 })).unwrap();
    }
    // Bounded: a benchmark that stalls ends after 10 minutes and reports what arrived.
    let _ = tokio::time::timeout(Duration::from_secs(600), all_in.notified()).await;
    let elapsed = start.elapsed();
    let cpu = cpu_ticks(child.id()) - cpu0;
    let got = received.load(Ordering::Relaxed);
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = child.wait();

    // Raw verify_strict on a 1 KiB message, same machine, same run.
    let vk = members[1].node_id().verifying_key().unwrap();
    let msg = vec![7u8; 1024];
    let sig = ed25519_dalek::Signature::from_bytes(&members[1].sign(&msg));
    let (mut k, t0) = (0u64, Instant::now());
    while t0.elapsed() < Duration::from_secs(1) {
        let _ = vk.verify_strict(&msg, &sig);
        k += 1;
    }
    let verify_us = t0.elapsed().as_secs_f64() * 1e6 / k as f64;
    let cpu_us = cpu as f64 * 1e6 / clk_tck() as f64 / n as f64;
    println!(
        "relay bench: {} + {MEMBERS} members, {n} channel messages of {env_len} bytes, each relayed to {} members",
        if floor { "floor stand-in for the hub (verify and QUIC only)" } else { "hub" },
        MEMBERS - 1
    );
    println!(
        "  delivered          {got} / {want} in {:.2} s  ({:.0} messages/s in, {:.0} deliveries/s out)",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64(),
        got as f64 / elapsed.as_secs_f64()
    );
    println!(
        "  hub CPU            {cpu_us:.0} µs per message (all threads: {})",
        if floor { "verify and QUIC/TLS only" } else { "verify, store + fsync, relay, QUIC/TLS" }
    );
    println!(
        "  raw verify_strict  {verify_us:.1} µs  → hub CPU per message = {:.1} × verify_strict",
        cpu_us / verify_us
    );
    println!("  per delivered copy {:.1} µs of hub CPU", cpu_us / (MEMBERS - 1) as f64);
    let mut lat = latencies.lock().unwrap().clone();
    lat.sort_unstable();
    let pct = |p: f64| lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1))).copied();
    if let (Some(p50), Some(p99)) = (pct(0.50), pct(0.99)) {
        println!(
            "  publish → delivered p50 {:.1} ms, p99 {:.1} ms (with up to {in_flight} messages in flight)",
            p50 as f64 / 1e6,
            p99 as f64 / 1e6
        );
    }
    assert_eq!(got, want, "every member received every message");
}

//! Prometheus metrics on a loopback address, scraped over HTTP while messages flow. (Its own
//! test binary: the exporter is one per process.)

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod support;

use std::io::{Read, Write};

use godwit_node::net::NodeEvent;
use godwit_protocol::envelope::Priority;
use godwit_protocol::identity::Role;
use support::network::*;

fn scrape(addr: std::net::SocketAddr) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    write!(s, "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_serves_its_metrics_on_loopback_and_refuses_any_other_address() {
    let mut net = Net::new();
    let hub = net.add("RILO ESA", Role::Hub);
    let a = net.add("Tanzania NCP", Role::Member);
    let b = net.add("Uganda NCP", Role::Member);
    let all = [hub, a, b];
    // A node configured to serve metrics elsewhere than on loopback does not start.
    let exposed = net.add("Exposed NCP", Role::Member);
    net.metrics = Some("0.0.0.0:9464".parse().unwrap());
    let e = net.try_start(exposed, &[], &[exposed]).await.unwrap_err();
    assert!(e.to_string().contains("is not a loopback address"), "{e}");
    // A free loopback port (the exporter binds it itself).
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    net.metrics = Some(port);
    net.start(b, &[], &all).await;
    net.start(hub, &[a, b], &all).await;
    net.start(a, &[], &all).await;
    net.join(a, hub).await;
    let mut eb = net.join(b, hub).await;
    let id = net.members[a].node().publish(net.channel_alert(Priority::Routine)).await.unwrap();
    wait_for(&mut eb, "the alert at b", |e| *e == NodeEvent::Delivered(id)).await;
    let label = net.members[b].id().short()[..8].to_string();
    let page = scrape(port);
    assert!(page.contains(&format!("godwit_messages_delivered_total{{node=\"{label}\"}}")), "{page}");
    assert!(page.contains(&format!("godwit_messages_received_total{{node=\"{label}\"}}")), "{page}");
    assert!(page.contains(&format!("godwit_missing_messages{{node=\"{label}\"}} 0")), "catch-up lag: {page}");
    assert!(page.contains("godwit_commit_seconds"), "{page}");
    assert!(page.contains("godwit_frames_sent_total"), "{page}");
    for ix in all {
        net.stop(ix).await;
    }
}

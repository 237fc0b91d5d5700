//! Every TLS refusal case, with a reason an operator can act on, and revocation mid-session.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod support;

use std::sync::Arc;

use godwit_node::certs::{Authority, NodeAttrs};
use godwit_node::net::{NodeEvent, PeerSpec, now};
use godwit_node::tls;
use godwit_protocol::identity::IdentityKey;
use godwit_protocol::identity::Role;
use support::network::*;

/// Starts a hub and returns the net, the hub index and the hub's event receiver.
async fn hub_net() -> (Net, usize) {
    let mut net = Net::new();
    let hub = net.add("RILO ESA", Role::Hub);
    net.start(hub, &[], &[hub]).await;
    (net, hub)
}

async fn refused_at_hub(net: &mut Net, hub: usize, member: usize) -> String {
    let mut eh = net.members[hub].node().events();
    net.start(member, &[], &[hub]).await;
    let mut em = net.members[member].node().events();
    net.dial(member, hub);
    let e = wait_for(&mut eh, "a refused connection at the hub", |e| {
        matches!(e, NodeEvent::ConnectionRefused { .. })
    })
    .await;
    // The member never gets a connection either.
    let m = wait_for(&mut em, "a failed dial at the member", |e| {
        matches!(e, NodeEvent::ConnectionRefused { .. } | NodeEvent::PeerUp(_))
    })
    .await;
    assert!(matches!(m, NodeEvent::ConnectionRefused { .. }), "{m:?}");
    match e {
        NodeEvent::ConnectionRefused { reason, .. } => reason,
        _ => unreachable!(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_a_certificate_from_another_ca() {
    let (mut net, hub) = hub_net().await;
    let m = net.add("Impostor", Role::Member);
    let t = now().as_millis();
    let rogue = Authority::new("Rogue CA", t - DAY, t + DAY).unwrap();
    let attrs = NodeAttrs {
        administration: "Impostor".into(),
        country: "KE".parse().unwrap(),
        region: "ESA".into(),
        role: Role::Member,
    };
    net.members[m].cert =
        rogue.issue(&IdentityKey::from_seed(&net.members[m].seed), &attrs, 99, t - DAY, t + DAY).unwrap();
    let reason = refused_at_hub(&mut net, hub, m).await;
    assert!(reason.contains("not issued by this network's CA"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_an_expired_certificate() {
    let (mut net, hub) = hub_net().await;
    let t = now().as_millis();
    let m = net.add_with_validity("Expired NCP", Role::Member, t - 10 * DAY, t - DAY);
    let reason = refused_at_hub(&mut net, hub, m).await;
    assert!(reason.contains("has expired"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_a_certificate_not_yet_valid() {
    let (mut net, hub) = hub_net().await;
    let t = now().as_millis();
    let m = net.add_with_validity("Future NCP", Role::Member, t + DAY, t + 10 * DAY);
    let reason = refused_at_hub(&mut net, hub, m).await;
    assert!(reason.contains("not valid yet"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_a_revoked_certificate() {
    let mut net = Net::new();
    let hub = net.add("RILO ESA", Role::Hub);
    let m = net.add("Revoked NCP", Role::Member);
    let t = now().as_millis();
    net.crl = Some(net.ca.crl(1, &[net.members[m].cert.serial], t - 1_000, t + DAY).unwrap());
    net.start(hub, &[], &[hub]).await;
    let reason = refused_at_hub(&mut net, hub, m).await;
    assert!(reason.contains("revoked"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_when_the_revocation_list_has_expired() {
    let mut net = Net::new();
    let hub = net.add("RILO ESA", Role::Hub);
    let m = net.add("Tanzania NCP", Role::Member);
    let t = now().as_millis();
    net.crl = Some(net.ca.crl(1, &[], t - 2 * DAY, t - DAY).unwrap());
    net.start(hub, &[], &[hub]).await;
    let reason = refused_at_hub(&mut net, hub, m).await;
    assert!(reason.contains("revocation list has expired"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_a_peer_that_does_not_match_its_pin() {
    let (mut net, hub) = hub_net().await;
    let m = net.add("Tanzania NCP", Role::Member);
    let other = net.add("Someone else", Role::Member);
    net.start(m, &[], &[hub]).await;
    let mut em = net.members[m].node().events();
    // m dials the hub's address but is pinned to another NodeId.
    let p = PeerSpec { node_id: net.members[other].id(), address: net.members[hub].addr() };
    net.members[m].node.as_mut().unwrap().add_peer(p);
    let e = wait_for(&mut em, "a pin mismatch", |e| matches!(e, NodeEvent::ConnectionRefused { .. })).await;
    let NodeEvent::ConnectionRefused { reason, .. } = e else { unreachable!() };
    assert!(reason.contains("differs from the configured pin"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_a_client_without_a_certificate() {
    let (net, hub) = hub_net().await;
    let mut eh = net.members[hub].node().events();
    // A raw QUIC client that verifies the hub properly but presents no certificate.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(net.ca.cert_der()).unwrap();
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![tls::ALPN.to_vec()];
    let quic = quinn::crypto::rustls::QuicClientConfig::try_from(cfg).unwrap();
    let mut ep = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    ep.set_default_client_config(quinn::ClientConfig::new(Arc::new(quic)));
    let name = godwit_node::certs::dns_name(&net.members[hub].id());
    let res = ep.connect(net.members[hub].addr(), &name).unwrap().await;
    // TLS 1.3: the client may finish its side before the server's refusal arrives.
    if let Ok(conn) = res {
        let _ = conn.closed().await;
    }
    let e = wait_for(&mut eh, "the refusal", |e| matches!(e, NodeEvent::ConnectionRefused { .. })).await;
    let NodeEvent::ConnectionRefused { reason, .. } = e else { unreachable!() };
    assert!(reason.contains("presented no client certificate"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crl_reload_disconnects_a_now_revoked_peer_mid_session() {
    let mut net = Net::new();
    let hub = net.add("RILO ESA", Role::Hub);
    let m = net.add("Tanzania NCP", Role::Member);
    net.start(hub, &[m], &[hub, m]).await;
    net.start(m, &[], &[hub, m]).await;
    let mut em = net.members[m].node().events();
    let mut eh = net.members[hub].node().events();
    net.dial(m, hub);
    wait_connected(net.members[m].node(), &mut em, net.members[hub].id()).await;
    let t = now().as_millis();
    let crl = net.ca.crl(2, &[net.members[m].cert.serial], t - 1_000, t + DAY).unwrap();
    net.members[hub].node().reload_crl(crl).unwrap();
    let e = wait_for(&mut eh, "the revoked peer's disconnection", |e| matches!(e, NodeEvent::Closed { .. }))
        .await;
    assert!(
        matches!(&e, NodeEvent::Closed { peer, reason } if *peer == net.members[m].id() && reason.contains("revoked")),
        "{e:?}"
    );
    wait_for(&mut em, "the member's disconnection", |e| matches!(e, NodeEvent::PeerDown(_))).await;
    // Its reconnection attempts are refused from now on.
    let r = wait_for(&mut eh, "a refused reconnection", |e| matches!(e, NodeEvent::ConnectionRefused { .. }))
        .await;
    assert!(matches!(r, NodeEvent::ConnectionRefused { reason, .. } if reason.contains("revoked")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_crl_is_passed_on_by_peers_and_enforced_by_them() {
    let mut net = Net::new();
    let hub = net.add("RILO ESA", Role::Hub);
    let m = net.add("Tanzania NCP", Role::Member);
    let x = net.add("Compromised NCP", Role::Member);
    let t = now().as_millis();
    net.crl = Some(net.ca.crl(1, &[], t - 1_000, t + DAY).unwrap());
    net.start(hub, &[m], &[hub, m]).await;
    net.start(m, &[], &[hub, m]).await;
    let mut em = net.members[m].node().events();
    net.dial(m, hub);
    wait_connected(net.members[m].node(), &mut em, net.members[hub].id()).await;
    // The authority revokes x; only the hub's operator installs the new list.
    let crl2 = net.ca.crl(2, &[net.members[x].cert.serial], t - 1_000, t + DAY).unwrap();
    net.members[hub].node().reload_crl(crl2).unwrap();
    wait_for(&mut em, "the member installing the list from its hub", |e| *e == NodeEvent::CrlInstalled(2))
        .await;
    assert!(net.members[m].dir.join("crl.der").exists(), "saved for the next start");
    // An older list from a peer does not win.
    // x now tries the member directly and is refused there.
    net.start(x, &[], &[x]).await;
    let p = PeerSpec { node_id: net.members[m].id(), address: net.members[m].addr() };
    net.members[x].node.as_mut().unwrap().add_peer(p);
    let e =
        wait_for(&mut em, "x refused by the member", |e| matches!(e, NodeEvent::ConnectionRefused { .. }))
            .await;
    assert!(matches!(&e, NodeEvent::ConnectionRefused { reason, .. } if reason.contains("revoked")), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_ends_when_the_peers_certificate_expires() {
    let (mut net, hub) = hub_net().await;
    let t = now().as_millis();
    // Valid for a few more seconds (time enough to connect on a loaded machine): the handshake
    // passes, the connection must not outlive it.
    let m = net.add_with_validity("Short-lived NCP", Role::Member, t - DAY, t + 6_000);
    net.start(m, &[], &[hub, m]).await;
    let mut eh = net.members[hub].node().events();
    net.join(m, hub).await;
    let member = net.members[m].id();
    wait_for(&mut eh, "the hub dropping the expired peer", |e| *e == NodeEvent::PeerDown(member)).await;
    // And it is refused from then on.
    let e =
        wait_for(&mut eh, "the refused reconnection", |e| matches!(e, NodeEvent::ConnectionRefused { .. }))
            .await;
    assert!(
        matches!(&e, NodeEvent::ConnectionRefused { reason, .. } if reason.contains("has expired")),
        "{e:?}"
    );
    for ix in [hub, m] {
        net.stop(ix).await;
    }
}

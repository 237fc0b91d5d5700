//! Certificates without openssl: `godwit init` on each node, `godwit ca init|issue|revoke|crl`
//! at the network CA, `godwit cert show` — and the two nodes configured with what they made
//! connect to each other over QUIC with mutual TLS; a certificate the CA revoked is refused.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod support;

use std::path::Path;

use godwit_node::config::Config;
use godwit_node::net::{Node, NodeEvent};
use support::network::{wait_connected, wait_for};
use support::{godwit, stderr};

use support::godwit_ok as ok;

fn node_id_of(init_output: &str) -> String {
    init_output.lines().find_map(|l| l.strip_prefix("NodeId ")).expect("init prints the NodeId").to_owned()
}

fn config(dir: &Path, listen: &str, peers: &str) -> Config {
    let text = format!(
        "[node]\ndata_dir = {:?}\nlisten = {listen:?}\n[tls]\nca = {:?}\ncertificate = {:?}\n{peers}",
        dir.join("data"),
        dir.join("ca/ca.pem"),
        dir.join("node.pem"),
    );
    let path = dir.join("godwitd.toml");
    std::fs::write(&path, text).unwrap();
    Config::load(&path).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_network_set_up_with_the_godwit_tool_alone_connects_and_refuses_a_revoked_node() {
    let tmp = tempfile::tempdir().unwrap();
    let (hub, member) = (tmp.path().join("hub"), tmp.path().join("member"));
    let ca = tmp.path().join("ca");
    let p = |x: &Path| x.to_str().unwrap().to_owned();
    let hub_id = node_id_of(&ok(&["init", "--data-dir", &p(&hub.join("data"))]));
    let member_id = node_id_of(&ok(&["init", "--data-dir", &p(&member.join("data"))]));
    ok(&["ca", "init", "--dir", &p(&ca), "--name", "Godwit Test Network CA"]);
    let refused = godwit(&["ca", "init", "--dir", &p(&ca), "--name", "again"]);
    assert!(
        !refused.status.success() && stderr(&refused).contains("already holds a CA"),
        "{}",
        stderr(&refused)
    );
    for (dir, id, admin, country, role) in [
        (&hub, &hub_id, "RILO ESA", "KE", "hub"),
        (&member, &member_id, "Tanzania Revenue Authority", "TZ", "member"),
    ] {
        let out = ok(&[
            "ca",
            "issue",
            "--dir",
            &p(&ca),
            "--node-id",
            id,
            "--administration",
            admin,
            "--country",
            country,
            "--region",
            "ESA",
            "--role",
            role,
            "--out",
            &p(&dir.join("node.pem")),
        ]);
        assert!(out.contains("certificate serial"), "{out}");
        std::fs::create_dir_all(dir.join("ca")).unwrap();
        std::fs::copy(ca.join("ca.pem"), dir.join("ca/ca.pem")).unwrap();
        let shown = ok(&["cert", "show", &p(&dir.join("node.pem"))]);
        assert!(shown.contains(id.as_str()) && shown.contains(admin) && shown.contains(role), "{shown}");
    }
    let bad_country = godwit(&[
        "ca",
        "issue",
        "--dir",
        &p(&ca),
        "--node-id",
        &member_id,
        "--administration",
        "x",
        "--country",
        "XX",
        "--region",
        "ESA",
        "--role",
        "member",
        "--out",
        &p(&tmp.path().join("x.pem")),
    ]);
    assert!(
        stderr(&bad_country).contains("not an ISO 3166-1 alpha-2 country code"),
        "{}",
        stderr(&bad_country)
    );

    // The two nodes, configured with what the tool made, connect.
    let hub_node = Node::start(config(&hub, "127.0.0.1:0", "").into_spec().unwrap()).await.unwrap();
    let peers = format!("[[peers]]\nnode_id = {hub_id:?}\naddress = \"{}\"\n", hub_node.local_addr());
    let member_node = Node::start(config(&member, "127.0.0.1:0", &peers).into_spec().unwrap()).await.unwrap();
    let mut em = member_node.events();
    wait_connected(&member_node, &mut em, hub_node.node_id()).await;

    // The CA revokes the member (serial 3: the hub got 2); the hub installs the new list and
    // drops it.
    ok(&["ca", "revoke", "--dir", &p(&ca), "--serial", "3"]);
    let crl_path = tmp.path().join("crl.pem");
    let out = ok(&["ca", "crl", "--dir", &p(&ca), "--out", &p(&crl_path)]);
    assert!(out.contains("number 1 (1 revoked)"), "{out}");
    let mut eh = hub_node.events();
    use rustls_pki_types::pem::PemObject;
    let crl = rustls_pki_types::CertificateRevocationListDer::from_pem_file(&crl_path).unwrap();
    hub_node.reload_crl(crl).unwrap();
    let closed =
        wait_for(&mut eh, "the revoked member's disconnection", |e| matches!(e, NodeEvent::Closed { .. }))
            .await;
    assert!(matches!(&closed, NodeEvent::Closed { reason, .. } if reason.contains("revoked")), "{closed:?}");
    member_node.shutdown().await;
    hub_node.shutdown().await;
}

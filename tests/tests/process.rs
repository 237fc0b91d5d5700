//! `godwitd run` as an operator runs it: a configuration file, a real process, a peer that
//! connects to it, and a clean stop on SIGTERM.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod support;

use std::process::Command;

use godwit_node::net::{NodeEvent, PeerSpec};
use godwit_protocol::identity::IdentityKey;
use godwit_protocol::identity::Role;
use support::daemon::Daemon;
use support::network::*;

fn write_config(dir: &std::path::Path, extra: &str) -> std::path::PathBuf {
    let cfg = format!(
        "[node]\ndata_dir = {:?}\nlisten = \"127.0.0.1:0\"\n\n[tls]\nca = {:?}\ncertificate = {:?}\n\n[limits]\nmax_peers = 16\n{extra}",
        dir.join("data"),
        dir.join("ca.pem"),
        dir.join("node.pem"),
    );
    let path = dir.join("godwitd.toml");
    std::fs::write(&path, cfg).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn godwitd_run_serves_peers_and_stops_cleanly_on_sigterm() {
    let mut net = Net::new();
    let dir = tempfile::tempdir().unwrap();
    let key = IdentityKey::generate(&mut rand_core::OsRng);
    let mut hub = Daemon::new(&net, dir.path(), key, Role::Hub, 500);
    hub.start("[limits]\nmax_peers = 16\n");
    // An in-process member connects to the process.
    let m = net.add("Tanzania NCP", Role::Member);
    net.start(m, &[], &[m]).await;
    let mut em = net.members[m].node().events();
    let address = hub.addr.unwrap();
    net.members[m].node.as_mut().unwrap().add_peer(PeerSpec { node_id: hub.id(), address });
    wait_connected(net.members[m].node(), &mut em, hub.id()).await;

    let (ok, rest) = hub.stop();
    assert!(ok, "godwitd did not exit 0: {rest:?}");
    assert!(rest.iter().any(|l| l.contains("stopped")), "{rest:?}");
    wait_for(&mut em, "the member noticing the stop", |e| matches!(e, NodeEvent::PeerDown(_))).await;
    net.stop(m).await;
}

#[test]
fn godwitd_run_names_configuration_errors() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "colour = \"blue\"\n");
    let o = Command::new(env!("CARGO_BIN_EXE_test-godwitd"))
        .args(["run", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("unknown field `colour`"), "{err}");

    let missing = dir.path().join("nope.toml");
    let o = Command::new(env!("CARGO_BIN_EXE_test-godwitd"))
        .args(["run", "--config", missing.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot read the configuration file"));

    let config = write_config(dir.path(), "");
    let o = Command::new(env!("CARGO_BIN_EXE_test-godwitd"))
        .args(["run", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("cannot read the identity key"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

const EXAMPLE_NODES: [&str; 6] = ["hub-esa", "hub-ap", "ke", "ug", "vn", "th"];

#[test]
fn the_example_configurations_are_valid() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for node in EXAMPLE_NODES {
        let path = root.join(format!("certs-example/{node}/godwitd.toml"));
        let c = godwit_node::config::Config::load(&path).unwrap();
        assert_eq!(c.channels.len(), 1, "{node}");
        let cert = std::fs::read(root.join(format!("certs-example/{node}/node.pem"))).unwrap();
        assert!(String::from_utf8_lossy(&cert).starts_with("-----BEGIN CERTIFICATE-----"));
    }
}

#[test]
fn the_example_network_is_regenerated_with_the_godwit_tool_alone() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = tempfile::tempdir().unwrap();
    let o = std::process::Command::new("sh")
        .arg(root.join("certs-example/generate.sh"))
        .arg(out.path())
        .env("GODWIT", env!("CARGO_BIN_EXE_test-godwit"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Every node's configuration loads with its keys and certificate (key and certificate match).
    let mut ids = std::collections::BTreeSet::new();
    for node in EXAMPLE_NODES {
        let c = godwit_node::config::Config::load(&out.path().join(format!("{node}/godwitd.toml"))).unwrap();
        let spec = c.into_spec().unwrap_or_else(|e| panic!("{node}: {e}"));
        assert_eq!(spec.channel_keys.len(), 1, "{node} holds the channel key");
        ids.insert(spec.identity.node_id());
    }
    assert_eq!(ids.len(), 6, "six different nodes");
    assert!(!out.path().join("ca/ca.key").exists(), "the CA's private key is not left in the example");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_node_on_the_same_data_directory_is_refused_by_name() {
    let mut net = Net::new();
    let a = net.add("Tanzania NCP", Role::Member);
    net.start(a, &[], &[a]).await;
    // Same identity, same data directory: the store is locked by the first.
    let spec = godwit_node::net::NodeSpec {
        identity: IdentityKey::from_seed(&net.members[a].seed),
        encryption: godwit_protocol::identity::EncryptionKey::generate(&mut rand_core::OsRng),
        channel_keys: Vec::new(),
        tls: net.material(a),
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: net.members[a].dir.clone(),
        relay: godwit_protocol::relay::RelayConfig::new(net.members[a].id(), Role::Member),
        peers: vec![],
        limits: net.limits.clone(),
        admin_group: None,
        alert_command: None,
        encryption_rotate_ms: None,
        metrics: None,
        accounts: Vec::new(),
    };
    let e = godwit_node::net::Node::start(spec).await.unwrap_err();
    assert!(format!("{e:#}").contains("is another godwitd using this data directory?"), "{e:#}");
    net.stop(a).await;
}

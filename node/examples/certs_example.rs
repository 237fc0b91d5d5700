//! Regenerates `certs-example/`: an example network CA, a hub and a member with identity keys,
//! certificates and configuration files, for trying `godwitd run` by hand.
//!
//! Run from the repository root: `cargo run -p godwit-node --example certs_example`.
//! The keys are examples: never use them for anything real.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a one-off generator: a panic is the report

use std::path::Path;

use godwit_node::certs::{Authority, NodeAttrs};
use godwit_node::config::write_identity;
use godwit_node::net::now;
use godwit_protocol::identity::IdentityKey;
use godwit_protocol::identity::Role;

fn main() {
    let out = Path::new("certs-example");
    let t = now().as_millis();
    let year = 365 * 86_400_000;
    let ca = Authority::new("Godwit Example Network CA", t - 86_400_000, t + 5 * year).unwrap();
    std::fs::write(out.join("ca.pem"), ca.cert_pem()).unwrap();
    let nodes = [
        ("hub", "RILO Eastern and Southern Africa (example)", "KE", Role::Hub, 7401u16),
        ("member", "Tanzania Revenue Authority (example)", "TZ", Role::Member, 7402u16),
    ];
    let keys: Vec<IdentityKey> = nodes.iter().map(|_| IdentityKey::generate(&mut rand_core::OsRng)).collect();
    for (i, (dir, admin, country, role, port)) in nodes.iter().enumerate() {
        let d = out.join(dir);
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        write_identity(&d.join("identity.key"), &keys[i]).unwrap();
        let attrs = NodeAttrs {
            administration: (*admin).into(),
            country: country.parse().unwrap(),
            region: "ESA".into(),
            role: *role,
        };
        let cert = ca.issue(&keys[i], &attrs, i as u64 + 1, t - 86_400_000, t + 2 * year).unwrap();
        std::fs::write(d.join("node.pem"), cert.pem).unwrap();
        let ids = format!("{:?}, {:?}", keys[0].node_id().to_string(), keys[1].node_id().to_string());
        let mut cfg = format!(
            "# Example configuration: run from the repository root with\n#   godwitd run --config certs-example/{dir}/godwitd.toml\n\
             [node]\ndata_dir = \"certs-example/{dir}/data\"\nlisten = \"127.0.0.1:{port}\"\n\
             identity_key = \"../identity.key\"\n\n\
             [tls]\nca = \"certs-example/ca.pem\"\ncertificate = \"certs-example/{dir}/node.pem\"\n\n\
             [[channels]]\nid = \"{}\"\nmembers = [{ids}]\n",
            "47".repeat(32)
        );
        if *role == Role::Hub {
            cfg.push_str(&format!("\n[hub]\nserves = [{:?}]\n", keys[1].node_id().to_string()));
        } else {
            cfg.push_str(&format!(
                "\n[[peers]]\nnode_id = {:?}\naddress = \"127.0.0.1:{}\"\n",
                keys[0].node_id().to_string(),
                nodes[0].4
            ));
        }
        std::fs::write(d.join("godwitd.toml"), cfg).unwrap();
        println!("{dir}: NodeId {}", keys[i].node_id());
    }
}

//! `godwitd run` as a separate process: its files (identity key, certificates, configuration)
//! in a temporary folder, its listening address read from its log, and kill -9 / restart.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

use godwit_node::certs::NodeAttrs;
use godwit_node::config::write_identity;
use godwit_node::net::now;
use godwit_protocol::identity::Role;
use godwit_protocol::identity::{IdentityKey, NodeId};

use super::network::{DAY, Net};

/// A godwitd process's folder and, while it runs, the process.
pub struct Daemon {
    pub key: IdentityKey,
    pub dir: PathBuf,
    pub addr: Option<SocketAddr>,
    child: Option<Child>,
    /// Its log lines (stderr) after the address, read by a thread so the pipe never fills.
    pub log: Option<mpsc::Receiver<String>>,
}

impl Daemon {
    /// Writes identity key, CA and node certificate for a node with `key` and `role` under `dir`.
    pub fn new(net: &Net, dir: &Path, key: IdentityKey, role: Role, serial: u64) -> Daemon {
        let t = now().as_millis();
        let attrs = NodeAttrs {
            administration: format!("{role:?} process"),
            country: "KE".parse().unwrap(),
            region: "ESA".into(),
            role,
        };
        let cert = net.ca.issue(&key, &attrs, serial, t - DAY, t + DAY).unwrap();
        std::fs::create_dir_all(dir.join("data")).unwrap();
        write_identity(&dir.join("data/identity.key"), &key).unwrap();
        std::fs::write(dir.join("ca.pem"), net.ca.cert_pem()).unwrap();
        std::fs::write(dir.join("node.pem"), &cert.pem).unwrap();
        Daemon { key, dir: dir.to_owned(), addr: None, child: None, log: None }
    }

    pub fn id(&self) -> NodeId {
        self.key.node_id()
    }

    /// Writes the configuration (`extra` appended: peers, channels, hub) and starts the
    /// process, on the address it had before if it ran already; waits until it listens.
    pub fn start(&mut self, extra: &str) {
        let listen = self.addr.map_or("127.0.0.1:0".to_string(), |a| a.to_string());
        let cfg = format!(
            "[node]\ndata_dir = {:?}\nlisten = \"{listen}\"\n\n[tls]\nca = {:?}\ncertificate = {:?}\n\n{extra}",
            self.dir.join("data"),
            self.dir.join("ca.pem"),
            self.dir.join("node.pem"),
        );
        let config = self.dir.join("godwitd.toml");
        std::fs::write(&config, cfg).unwrap();
        let (child, addr, rx) = spawn(&config, &[]);
        self.addr = Some(addr);
        self.child = Some(child);
        self.log = Some(rx);
    }

    /// Kills the process as a power cut would (SIGKILL) and waits for it to be gone.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
        self.log = None;
    }

    /// Sends SIGTERM and waits for the exit; returns whether it exited 0, and the rest of its log.
    pub fn stop(&mut self) -> (bool, Vec<String>) {
        let Some(mut c) = self.child.take() else { return (true, Vec::new()) };
        let status = Command::new("kill").args(["-TERM", &c.id().to_string()]).status().unwrap();
        assert!(status.success());
        let ok = c.wait().unwrap().success();
        let rest = self.log.take().map(|l| l.iter().collect()).unwrap_or_default();
        (ok, rest)
    }
}

/// Starts `godwitd run --config config` (with `extra` arguments) and waits until it listens;
/// returns the process, its address and its further log lines (read by a thread, so the pipe
/// never fills or closes early).
pub fn spawn(config: &Path, extra: &[&str]) -> (Child, SocketAddr, mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_test-godwitd"))
        .args(["run", "--config", config.to_str().unwrap()])
        .args(extra)
        // "godwitd listening" is an info line, whatever the caller's RUST_LOG says.
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("godwitd printed its address").unwrap();
        if let Some(rest) = line.split("addr=").nth(1).filter(|_| line.contains("godwitd listening")) {
            break rest.split_whitespace().next().unwrap().parse().unwrap();
        }
    };
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    (child, addr, rx)
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

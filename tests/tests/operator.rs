//! The operator's afternoon, with separate `godwitd` processes: three nodes set up only with
//! `godwit init`, `godwit ca`, `godwit channel-key` and configuration files exchange a channel
//! alert and a TLP:RED direct message driven only by `godwit` over the nodes' admin sockets.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::godwit_ok as ok;

fn p(x: &Path) -> String {
    x.to_str().unwrap().to_owned()
}

/// A running `godwitd run` and its log lines.
struct Proc {
    child: Child,
    addr: SocketAddr,
    log: mpsc::Receiver<String>,
}

impl Proc {
    fn start(config: &Path) -> Proc {
        let (child, addr, log) = support::daemon::spawn(config, &[]);
        Proc { child, addr, log }
    }

    /// Waits (bounded) for a log line containing every one of `words`.
    fn wait_log(&self, what: &str, words: &[&str]) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.log.recv_timeout(left) {
                Ok(line) if words.iter().all(|w| line.contains(w)) => return,
                Ok(_) => {}
                Err(_) => panic!("timed out waiting for {what}"),
            }
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
    }
}

#[test]
fn three_nodes_set_up_with_the_godwit_tool_exchange_an_alert_and_a_direct_message_driven_by_godwit() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = tmp.path().join("ca");
    ok(&["ca", "init", "--dir", &p(&ca), "--name", "RILO ESA Network CA"]);
    let channel_key = tmp.path().join("alerts.key");
    ok(&["channel-key", "--out", &p(&channel_key)]);
    let channel_id = "47".repeat(32);
    let mut nodes: Vec<(PathBuf, String)> = Vec::new();
    for (name, admin, country, role) in [
        ("hub", "RILO ESA", "KE", "hub"),
        ("ke", "Kenya Revenue Authority", "KE", "member"),
        ("ug", "Uganda Revenue Authority", "UG", "member"),
    ] {
        let dir = tmp.path().join(name);
        let out = ok(&["init", "--data-dir", &p(&dir.join("data"))]);
        let id = out.lines().find_map(|l| l.strip_prefix("NodeId ")).unwrap().to_owned();
        let cert = dir.join("node.pem");
        ok(&[
            "ca",
            "issue",
            "--dir",
            &p(&ca),
            "--node-id",
            &id,
            "--administration",
            admin,
            "--country",
            country,
            "--region",
            "ESA",
            "--role",
            role,
            "--out",
            &p(&cert),
        ]);
        std::fs::copy(&channel_key, dir.join("data/alerts.key")).unwrap();
        nodes.push((dir, id));
    }
    let ids: Vec<String> = nodes.iter().map(|(_, id)| format!("{id:?}")).collect();
    let channel = format!(
        "[[channels]]\nid = \"{channel_id}\"\nmembers = [{}]\nname = \"RILO ESA alerts\"\nkey_file = \"alerts.key\"\n",
        ids.join(", ")
    );
    let config = |dir: &Path, extra: &str| {
        let text = format!(
            "[node]\ndata_dir = {:?}\nlisten = \"127.0.0.1:0\"\n[tls]\nca = {:?}\ncertificate = {:?}\n{channel}{extra}",
            dir.join("data"),
            ca.join("ca.pem"),
            dir.join("node.pem"),
        );
        let path = dir.join("godwitd.toml");
        std::fs::write(&path, text).unwrap();
        path
    };
    let hub = Proc::start(&config(&nodes[0].0, &format!("[hub]\nserves = [{}, {}]\n", ids[1], ids[2])));
    let peer = format!("[[peers]]\nnode_id = {}\naddress = \"{}\"\n", ids[0], hub.addr);
    let ke = Proc::start(&config(&nodes[1].0, &peer));
    let ug = Proc::start(&config(&nodes[2].0, &peer));
    let socket = |i: usize| p(&nodes[i].0.join("data/admin.sock"));
    // Each member learns the other's card through the hub.
    let short = |i: usize| nodes[i].1[..8].to_string();
    ke.wait_log("Uganda's card at Kenya", &["node card taken into the directory", &short(2)]);
    ug.wait_log("Kenya's card at Uganda", &["node card taken into the directory", &short(1)]);
    let status = ok(&["--socket", &socket(1), "status"]);
    assert!(status.contains("Kenya Revenue Authority") && status.contains("peers connected 1"), "{status}");

    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/examples");
    // A flash alert to the channel, by its name.
    let alert = ok(&[
        "--socket",
        &socket(1),
        "send",
        "channel",
        "--channel",
        "RILO ESA alerts",
        "--priority",
        "flash",
        "--file",
        &p(&examples.join("warning.json")),
    ])
    .trim()
    .to_string();
    ug.wait_log("the alert at Uganda", &["delivered to the inbox", &alert[..12]]);
    let shown = ok(&["--socket", &socket(2), "--json", "inbox", "show", &alert]);
    let shown: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert!(shown["body"]["content"]["warning"].is_object(), "{shown}");
    assert_eq!(shown["message"]["administration"], "Kenya Revenue Authority");

    // A TLP:RED seizure report to Uganda, named by its country code.
    let direct = ok(&[
        "--socket",
        &socket(1),
        "send",
        "direct",
        "--to",
        "UG",
        "--file",
        &p(&examples.join("seizure_report.json")),
    ])
    .trim()
    .to_string();
    ug.wait_log("the report at Uganda", &["delivered to the inbox", &direct[..12]]);
    let inbox: serde_json::Value =
        serde_json::from_str(&ok(&["--socket", &socket(2), "--json", "inbox"])).unwrap();
    let entry = inbox.as_array().unwrap().iter().find(|m| m["id"] == direct.as_str()).expect("listed");
    assert_eq!(entry["marking"], "TLP:RED");
    let shown = ok(&["--socket", &socket(2), "inbox", "show", &direct]);
    assert!(shown.contains("of TUS (Tusks)") && shown.contains("KE (Kenya)"), "{shown}");
    // The hub relayed both but reads neither the report nor its own copy of it.
    let hub_inbox: serde_json::Value =
        serde_json::from_str(&ok(&["--socket", &socket(0), "--json", "inbox"])).unwrap();
    assert!(!hub_inbox.as_array().unwrap().iter().any(|m| m["id"] == direct.as_str()));
    let journal = ok(&["--socket", &socket(1), "journal", "tail", "-n", "100"]);
    assert!(journal.contains("send direct") && journal.contains("send channel"), "{journal}");
    drop((ke, ug, hub));
}

#[test]
fn godwitd_logs_json_lines_for_a_log_collector() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = tmp.path().join("ca");
    ok(&["ca", "init", "--dir", &p(&ca), "--name", "Log CA"]);
    let dir = tmp.path().join("n");
    let out = ok(&["init", "--data-dir", &p(&dir.join("data"))]);
    let id = out.lines().find_map(|l| l.strip_prefix("NodeId ")).unwrap().to_owned();
    ok(&[
        "ca",
        "issue",
        "--dir",
        &p(&ca),
        "--node-id",
        &id,
        "--administration",
        "Kenya Revenue Authority",
        "--country",
        "KE",
        "--region",
        "ESA",
        "--role",
        "member",
        "--out",
        &p(&dir.join("node.pem")),
    ]);
    let config = dir.join("godwitd.toml");
    std::fs::write(
        &config,
        format!(
            "[node]\ndata_dir = {:?}\nlisten = \"127.0.0.1:0\"\n[tls]\nca = {:?}\ncertificate = {:?}\n",
            dir.join("data"),
            ca.join("ca.pem"),
            dir.join("node.pem")
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_test-godwitd"))
        .args(["run", "--config", &p(&config), "--log-format", "json"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // SIGTERM goes out at its first log line, while it is still starting: a service manager may
    // stop it at any moment, and it must still stop cleanly (exit 0), not die of the signal.
    let mut listening = None;
    let mut signalled = false;
    for line in BufReader::new(child.stderr.take().unwrap()).lines().map_while(Result::ok) {
        let v: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        if !signalled {
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            signalled = true;
        }
        if v["fields"]["message"] == "godwitd listening" {
            listening = Some(v);
        }
    }
    assert!(child.wait().unwrap().success(), "SIGTERM while starting ends it with 0");
    let v = listening.expect("the listening line");
    assert_eq!(v["fields"]["node"], id.as_str(), "{v}");
    assert!(v["fields"]["addr"].as_str().unwrap().starts_with("127.0.0.1:"), "{v}");
}

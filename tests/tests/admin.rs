//! The admin socket and the `godwit` commands that use it, run as a user runs them against real
//! nodes on loopback: tables, `--json` parsed here, errors with their messages and exit codes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod support;

use std::os::unix::fs::PermissionsExt;
use std::process::Output;

use godwit_admin_api::{self as api, Hello, MAX_RESPONSE, Welcome};
use godwit_protocol::identity::Role;
use support::network::*;
use support::{stderr, stdout};

/// Runs `godwit` off the runtime's threads (the node under test needs them).
async fn godwit(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        support::godwit(&args)
    })
    .await
    .unwrap()
}

fn args(socket: &std::path::Path, rest: &[&str]) -> Vec<String> {
    let mut v = vec!["--socket".to_string(), socket.display().to_string()];
    v.extend(rest.iter().map(|s| (*s).to_string()));
    v
}

fn json(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "{}", stderr(o));
    serde_json::from_str(&stdout(o)).unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(o)))
}

/// A hub and two members, "Tanzania NCP" and "Uganda Revenue Authority", joined, each member
/// holding the other's card; with the members' event receivers.
async fn region(
    net: &mut Net,
) -> (
    [usize; 3],
    tokio::sync::broadcast::Receiver<godwit_node::net::NodeEvent>,
    tokio::sync::broadcast::Receiver<godwit_node::net::NodeEvent>,
) {
    use godwit_node::net::NodeEvent;
    let hub = net.add("RILO ESA", Role::Hub);
    let a = net.add("Tanzania NCP", Role::Member);
    let b = net.add("Uganda Revenue Authority", Role::Member);
    let all = [hub, a, b];
    net.start(hub, &[a, b], &all).await;
    net.start(a, &[], &all).await;
    net.start(b, &[], &all).await;
    let mut ea = net.members[a].node().events();
    net.join(a, hub).await;
    let mut eb = net.join(b, hub).await;
    let (ida, idb) = (net.members[a].id(), net.members[b].id());
    wait_for(&mut ea, "b's card at a", |e| *e == NodeEvent::Card(idb)).await;
    wait_for(&mut eb, "a's card at b", |e| *e == NodeEvent::Card(ida)).await;
    (all, ea, eb)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_sees_status_peers_and_journal_and_adds_a_peer_through_the_socket() {
    let mut net = Net::new();
    let hub = net.add("RILO ESA", Role::Hub);
    let a = net.add("Tanzania NCP", Role::Member);
    let b = net.add("Uganda NCP", Role::Member);
    let all = [hub, a, b];
    net.start(hub, &[a, b], &all).await;
    net.start(a, &[], &all).await;
    net.start(b, &[], &all).await;
    net.join(a, hub).await;
    let socket = net.members[a].dir.join(api::SOCKET_NAME);
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660, "the socket is for godwitd's group only");

    let s = json(&godwit(args(&socket, &["--json", "status"])).await);
    assert_eq!(s["node"], net.members[a].id().to_string());
    assert_eq!(s["administration"], "Tanzania NCP");
    assert_eq!(
        (s["role"].as_str(), s["region"].as_str(), s["country"].as_str()),
        (Some("member"), Some("ESA"), Some("KE"))
    );
    assert_eq!(s["peers_connected"], 1);
    assert!(s["queued_bytes"].is_u64(), "queue depth in all: {s}");
    assert!(s["warnings"].as_array().unwrap().is_empty(), "{s}");
    let table = godwit(args(&socket, &["status"])).await;
    assert!(stdout(&table).contains("administration  Tanzania NCP"), "{}", stdout(&table));

    let peers = json(&godwit(args(&socket, &["peers", "--json"])).await);
    let peers = peers.as_array().unwrap();
    assert_eq!(peers.len(), 1, "{peers:?}");
    assert_eq!(peers[0]["node"], net.members[hub].id().to_string());
    assert_eq!((peers[0]["connected"].as_bool(), peers[0]["configured"].as_bool()), (Some(true), Some(true)));
    assert_eq!(peers[0]["administration"], "RILO ESA");

    // A peer added through the socket is dialled, and the request journalled with the caller's uid.
    let mut ea = net.members[a].node().events();
    let (b_id, b_addr) = (net.members[b].id().to_string(), net.members[b].addr().to_string());
    let o = godwit(args(&socket, &["peers", "add", &b_id, &b_addr])).await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "done");
    wait_connected(net.members[a].node(), &mut ea, net.members[b].id()).await;
    let peers = json(&godwit(args(&socket, &["--json", "peers", "list"])).await);
    assert!(
        peers.as_array().unwrap().iter().any(|p| p["node"] == b_id.as_str() && p["connected"] == true),
        "{peers}"
    );
    let journal = json(&godwit(args(&socket, &["--json", "journal", "tail", "-n", "50"])).await);
    let uid =
        std::fs::metadata(&net.members[a].dir).map(|m| std::os::unix::fs::MetadataExt::uid(&m)).unwrap();
    let admin: Vec<&str> = journal
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .filter(|e| e.contains("Admin"))
        .collect();
    let added = admin.iter().find(|e| e.contains("peers add")).expect("the change journalled");
    assert!(
        added.contains(&format!("uid: {uid}")) && added.contains(&format!("peers add {b_id}")),
        "{added}"
    );
    // What only reads is journalled too, with who asked.
    let read =
        admin.iter().find(|e| e.contains("action: \"status\"")).expect("the status request journalled");
    assert!(read.contains(&format!("uid: {uid}")), "{read}");
    let v = godwit(args(&socket, &["journal", "verify"])).await;
    assert!(stdout(&v).contains("journal sound"), "{}", stdout(&v));

    // Bad input is refused before anything is sent, with what is wrong.
    let o = godwit(args(&socket, &["peers", "add", "not-a-node-id", "127.0.0.1:1"])).await;
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("\"not-a-node-id\" is not a valid NodeId"), "{}", stderr(&o));
    let o = godwit(args(&socket, &["peers", "add", &b_id, "somewhere"])).await;
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("is not an address (ip:port"), "{}", stderr(&o));
    for ix in all {
        net.stop(ix).await;
    }
    // The node is gone: its socket with it.
    assert!(!socket.exists());
    let o = godwit(args(&socket, &["status"])).await;
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("cannot reach godwitd at") && stderr(&o).contains("are you in group godwit?"),
        "{}",
        stderr(&o)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_api_version_is_told_so_by_name_on_both_sides() {
    let mut net = Net::new();
    let a = net.add("Tanzania NCP", Role::Member);
    net.start(a, &[], &[a]).await;
    let socket = net.members[a].dir.join(api::SOCKET_NAME);
    // A client of another version.
    let s = socket.clone();
    let w = tokio::task::spawn_blocking(move || {
        let mut c = std::os::unix::net::UnixStream::connect(&s).unwrap();
        api::write(&mut c, &Hello { version: 99 }).unwrap();
        api::read::<Welcome>(&mut c, MAX_RESPONSE).unwrap()
    })
    .await
    .unwrap();
    assert_eq!(w, Welcome::VersionMismatch { node_speaks: api::API_VERSION });
    net.stop(a).await;
    // A node of another version, as the CLI sees it.
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("admin.sock");
    let listener = std::os::unix::net::UnixListener::bind(&fake).unwrap();
    let server = std::thread::spawn(move || {
        let (mut c, _) = listener.accept().unwrap();
        let _: Hello = api::read(&mut c, api::MAX_REQUEST).unwrap();
        api::write(&mut c, &Welcome::VersionMismatch { node_speaks: api::API_VERSION + 1 }).unwrap();
    });
    let o = godwit(args(&fake, &["status"])).await;
    server.join().unwrap();
    assert_eq!(o.status.code(), Some(4));
    let expected = format!(
        "version mismatch: this godwit speaks admin API {}, the node speaks {}",
        api::API_VERSION,
        api::API_VERSION + 1
    );
    assert!(stderr(&o).contains(&expected), "{}", stderr(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_or_broken_client_does_not_stall_the_node() {
    let mut net = Net::new();
    let a = net.add("Tanzania NCP", Role::Member);
    net.start(a, &[], &[a]).await;
    let socket = net.members[a].dir.join(api::SOCKET_NAME);
    // One client connects and says nothing; another announces a huge message and sends junk.
    let silent = std::os::unix::net::UnixStream::connect(&socket).unwrap();
    let mut broken = std::os::unix::net::UnixStream::connect(&socket).unwrap();
    std::io::Write::write_all(&mut broken, &u32::MAX.to_be_bytes()).unwrap();
    // Others are still served.
    let s = json(&godwit(args(&socket, &["--json", "status"])).await);
    assert_eq!(s["node"], net.members[a].id().to_string());
    drop((silent, broken));
    net.stop(a).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_nodes_card_reaches_the_directory_and_nodes_are_named_by_country_or_administration() {
    let mut net = Net::new();
    let hub = net.add("RILO ESA", Role::Hub);
    let a = net.add("Tanzania NCP", Role::Member);
    let b = net.add_in("Uganda Revenue Authority", Role::Member, "ESA");
    let all = [hub, a, b];
    net.start(hub, &[a, b], &all).await;
    net.start(a, &[], &all).await;
    let mut ea = net.members[a].node().events();
    net.join(a, hub).await;
    net.start(b, &[], &all).await;
    net.join(b, hub).await;
    // The hub's card and b's reach a through the hub, as control records, in either order.
    let mut cards = std::collections::BTreeSet::from([net.members[hub].id(), net.members[b].id()]);
    while !cards.is_empty() {
        let e = wait_for(
            &mut ea,
            "the hub's and b's cards",
            |e| matches!(e, godwit_node::net::NodeEvent::Card(id) if cards.contains(id)),
        )
        .await;
        if let godwit_node::net::NodeEvent::Card(id) = e {
            cards.remove(&id);
        }
    }
    let socket = net.members[a].dir.join(api::SOCKET_NAME);
    let dir = json(&godwit(args(&socket, &["--json", "directory"])).await);
    let nodes: Vec<&str> = dir.as_array().unwrap().iter().map(|e| e["node"].as_str().unwrap()).collect();
    for ix in all {
        assert!(nodes.contains(&net.members[ix].id().to_string().as_str()), "{ix} missing from {dir}");
    }
    let b_entry =
        dir.as_array().unwrap().iter().find(|e| e["node"] == net.members[b].id().to_string()).unwrap();
    assert_eq!(
        (b_entry["administration"].as_str(), b_entry["country"].as_str()),
        (Some("Uganda Revenue Authority"), Some("KE"))
    );
    let enc_hex: String = net.members[b].enc.public().as_bytes().iter().map(|x| format!("{x:02x}")).collect();
    assert_eq!(b_entry["encryption_key"], enc_hex.as_str(), "the key the card announces");
    // By administration name (any case) and by country.
    let one =
        json(&godwit(args(&socket, &["--json", "directory", "show", "uganda revenue authority"])).await);
    assert_eq!(one.as_array().unwrap().len(), 1);
    let kenya = json(&godwit(args(&socket, &["--json", "directory", "show", "ke"])).await);
    assert_eq!(kenya.as_array().unwrap().len(), 3, "{kenya}");
    let o = godwit(args(&socket, &["directory", "show", "FR"])).await;
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no node called \"FR\" is known"), "{}", stderr(&o));
    for ix in all {
        net.stop(ix).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_message_sent_with_godwit_is_read_with_godwit_by_its_recipient_only() {
    let mut net = Net::new();
    let (all, _, mut eb) = region(&mut net).await;
    let [hub, a, b] = all;
    let (sa, sb) = (net.members[a].dir.join(api::SOCKET_NAME), net.members[b].dir.join(api::SOCKET_NAME));
    let example =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/examples/seizure_report.json");
    let example = example.to_str().unwrap();
    // Named by administration; sealed to b's card.
    let o = godwit(args(
        &sa,
        &["--json", "send", "direct", "--to", "Uganda Revenue Authority", "--file", example],
    ))
    .await;
    let sent = json(&o);
    assert_eq!(sent["to"], serde_json::json!([net.members[b].id().to_string()]));
    let id: godwit_protocol::ids::MessageId = {
        let hex = sent["id"].as_str().unwrap();
        let bytes: Vec<u8> =
            (0..32).map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap()).collect();
        godwit_protocol::ids::MessageId(bytes.try_into().unwrap())
    };
    wait_for(&mut eb, "the message at b", |e| *e == godwit_node::net::NodeEvent::Delivered(id)).await;
    let inbox = json(&godwit(args(&sb, &["--json", "inbox"])).await);
    let entry = inbox.as_array().unwrap().iter().find(|m| m["id"] == id.to_string()).expect("listed");
    assert_eq!((entry["marking"].as_str(), entry["mode"].as_str()), (Some("TLP:RED"), Some("direct")));
    assert_eq!(entry["administration"], "Tanzania NCP");
    // The hub relayed it but holds it sealed: not in its inbox.
    let sh = net.members[hub].dir.join(api::SOCKET_NAME);
    let hub_inbox = json(&godwit(args(&sh, &["--json", "inbox"])).await);
    assert!(!hub_inbox.as_array().unwrap().iter().any(|m| m["id"] == id.to_string()), "{hub_inbox}");
    let shown = json(&godwit(args(&sb, &["--json", "inbox", "show", &id.to_string()[..12]])).await);
    assert_eq!(shown["body"]["content"]["seizure_report"]["items"][0]["term"], "TUS", "{shown}");
    // The exact bytes, for an inspector.
    let raw = net.tmp.path().join("message.cose");
    let o = godwit(args(&sb, &["inbox", "show", &id.to_string(), "--raw", raw.to_str().unwrap()])).await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(godwit_protocol::envelope::Envelope::verify(&std::fs::read(&raw).unwrap()).unwrap().id(), id);
    // An alert to the channel, by its name: every member reads it with the channel's key.
    let warning = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/examples/warning.json");
    let o = godwit(args(
        &sa,
        &[
            "send",
            "channel",
            "--channel",
            "test alerts",
            "--priority",
            "flash",
            "--file",
            warning.to_str().unwrap(),
        ],
    ))
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let alert = stdout(&o).trim().to_string();
    wait_for(
        &mut eb,
        "the alert at b",
        |e| matches!(e, godwit_node::net::NodeEvent::Delivered(i) if i.to_string() == alert),
    )
    .await;
    let shown = json(&godwit(args(&sb, &["--json", "inbox", "show", &alert])).await);
    assert_eq!(
        (shown["message"]["mode"].as_str(), shown["message"]["priority"].as_str()),
        (Some("channel"), Some("flash"))
    );
    assert!(shown["body"]["content"]["warning"].is_object(), "{shown}");
    let o = godwit(args(&sa, &["send", "channel", "--channel", "nope", "--file", warning.to_str().unwrap()]))
        .await;
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("no channel called \"nope\" is known here (known: \"test alerts\")"),
        "{}",
        stderr(&o)
    );
    let o = godwit(args(
        &sa,
        &[
            "send",
            "channel",
            "--channel",
            "test alerts",
            "--marking",
            "red",
            "--file",
            warning.to_str().unwrap(),
        ],
    ))
    .await;
    assert_eq!(o.status.code(), Some(1), "TLP:RED is never sent to a channel");
    // Mistakes are named, with exit code 1.
    let o = godwit(args(&sa, &["send", "direct", "--to", "Atlantis", "--file", example])).await;
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no node called \"Atlantis\" is known"), "{}", stderr(&o));
    let bad = net.tmp.path().join("bad.json");
    std::fs::write(&bad, r#"{"content": {"seizure_report": {"date": "yesterday"}}}"#).unwrap();
    let o = godwit(args(&sa, &["send", "direct", "--to", "UG", "--file", bad.to_str().unwrap()])).await;
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("is not a message body"), "{}", stderr(&o));
    let o = godwit(args(&sb, &["inbox", "show", "0123456789abcdef"])).await;
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no message 0123456789abcdef in this node's inbox"), "{}", stderr(&o));
    for ix in all {
        net.stop(ix).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flash_alert_runs_the_alert_command_at_least_once_even_across_a_crash() {
    use std::os::unix::fs::PermissionsExt;
    let mut net = Net::new();
    let hub = net.add("RILO ESA", Role::Hub);
    let a = net.add("Tanzania NCP", Role::Member);
    let b = net.add("Uganda NCP", Role::Member);
    let all = [hub, a, b];
    let (fifo, log) = (net.tmp.path().join("pager.fifo"), net.tmp.path().join("alerts.log"));
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let script = |name: &str, body: String| {
        let path = net.tmp.path().join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    };
    // A pager that hangs (it waits for a line on a FIFO nobody writes), then a working one.
    let hanging =
        script("hanging.sh", format!("read x < {}\necho \"$@\" >> {}\n", fifo.display(), log.display()));
    let working = script("working.sh", format!("echo \"$@\" >> {}\n", log.display()));
    net.start(hub, &[a, b], &all).await;
    net.start(a, &[], &all).await;
    net.alert_command = Some(hanging);
    net.start(b, &[], &all).await;
    net.join(a, hub).await;
    let mut eb = net.join(b, hub).await;
    let id = net.members[a]
        .node()
        .publish(net.channel_alert(godwit_protocol::envelope::Priority::Flash))
        .await
        .unwrap();
    wait_for(&mut eb, "the alert at b", |e| *e == godwit_node::net::NodeEvent::Delivered(id)).await;
    // b crashes while its pager hangs: the alert is stored, not yet announced.
    net.members[b].node.take().unwrap().kill();
    assert!(!std::fs::read_to_string(&log).unwrap_or_default().contains(&id.to_string()));
    // After the restart it is announced: the command gets the id, the channel and the author.
    net.alert_command = Some(working);
    net.members[b].listen = "127.0.0.1:0".parse().unwrap();
    net.start(b, &[], &all).await;
    let mut eb = net.members[b].node().events();
    // (The announcement may already have run: the log says so either way.)
    let announced = std::fs::read_to_string(&log).unwrap_or_default();
    if !announced.contains(&id.to_string()) {
        wait_for(&mut eb, "the announcement after the restart", |e| {
            *e == godwit_node::net::NodeEvent::Announced(id)
        })
        .await;
    }
    let line = std::fs::read_to_string(&log).unwrap();
    let expected = format!("{id} {} {}", net.channel, net.members[a].id());
    assert!(line.lines().any(|l| l == expected), "{line:?} lacks {expected:?}");
    for ix in all {
        net.stop(ix).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_added_through_the_socket_stay_after_a_restart_and_can_be_blocked_and_removed() {
    let mut net = Net::new();
    let a = net.add("Tanzania NCP", Role::Member);
    let b = net.add("Uganda NCP", Role::Member);
    net.start(a, &[], &[a, b]).await;
    net.start(b, &[], &[a, b]).await;
    let socket = net.members[a].dir.join(api::SOCKET_NAME);
    let (b_id, b_addr) = (net.members[b].id(), net.members[b].addr().to_string());
    let mut ea = net.members[a].node().events();
    let o = godwit(args(&socket, &["peers", "add", &b_id.to_string(), &b_addr])).await;
    assert!(o.status.success(), "{}", stderr(&o));
    wait_connected(net.members[a].node(), &mut ea, b_id).await;
    // a restarts: it dials b again without being told.
    net.stop(a).await;
    net.members[a].listen = "127.0.0.1:0".parse().unwrap();
    net.start(a, &[], &[a, b]).await;
    let mut ea = net.members[a].node().events();
    if !net.members[a].node().connected().contains(&b_id) {
        wait_connected(net.members[a].node(), &mut ea, b_id).await;
    }
    // Blocked: the connection ends and is not made again until unblocked.
    let o = godwit(args(&socket, &["peers", "block", &b_id.to_string()])).await;
    assert!(o.status.success(), "{}", stderr(&o));
    wait_for(&mut ea, "b's disconnection", |e| *e == godwit_node::net::NodeEvent::PeerDown(b_id)).await;
    wait_for(&mut ea, "a refused reconnection", |e| {
        matches!(e, godwit_node::net::NodeEvent::ConnectionRefused { reason, .. } if reason.contains("blocked by this node's operator"))
    })
    .await;
    assert!(!net.members[a].node().connected().contains(&b_id));
    let o = godwit(args(&socket, &["peers", "unblock", &b_id.to_string()])).await;
    assert!(o.status.success(), "{}", stderr(&o));
    wait_connected(net.members[a].node(), &mut ea, b_id).await;
    // Removed: no longer dialled, and listed as such.
    let o = godwit(args(&socket, &["peers", "remove", &b_id.to_string()])).await;
    assert!(o.status.success(), "{}", stderr(&o));
    wait_for(&mut ea, "b's disconnection", |e| *e == godwit_node::net::NodeEvent::PeerDown(b_id)).await;
    let peers = json(&godwit(args(&socket, &["--json", "peers"])).await);
    let entry =
        peers.as_array().unwrap().iter().find(|p| p["node"] == b_id.to_string()).expect("still known");
    assert_eq!(entry["configured"], false, "{peers}");
    assert_eq!(entry["queued_bytes"], 0, "not connected: {peers}");
    assert!(!entry["last_error"].as_str().unwrap().is_empty(), "why its last connection ended: {peers}");
    let table = stdout(&godwit(args(&socket, &["peers"])).await);
    assert!(table.lines().next().unwrap().contains("last error"), "{table}");
    let o = godwit(args(&socket, &["peers", "remove", &b_id.to_string()])).await;
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("is not a peer this node dials"), "{}", stderr(&o));
    let journal = json(&godwit(args(&socket, &["--json", "journal", "tail", "-n", "100"])).await);
    let text = journal.to_string();
    for what in ["peers add", "peers block", "peers unblock", "peers remove"] {
        assert!(text.contains(what), "{what} not journalled: {text}");
    }
    for ix in [a, b] {
        net.stop(ix).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbox_and_journal_follow_print_what_arrives_from_now_on() {
    use std::io::BufRead;
    let mut net = Net::new();
    let hub = net.add("RILO ESA", Role::Hub);
    let a = net.add("Tanzania NCP", Role::Member);
    let b = net.add("Uganda NCP", Role::Member);
    let all = [hub, a, b];
    net.start(hub, &[a, b], &all).await;
    net.start(a, &[], &all).await;
    net.start(b, &[], &all).await;
    net.join(a, hub).await;
    let mut eb = net.join(b, hub).await;
    let socket = net.members[b].dir.join(api::SOCKET_NAME);
    // Two followers at b, as an analyst's terminal and an auditor's would be.
    let spawn = |rest: &[&str]| {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_test-godwit"))
            .args(args(&socket, rest))
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        (child, rx)
    };
    let (mut inbox, inbox_lines) = spawn(&["--json", "inbox", "--follow"]);
    let (mut journal, journal_lines) = spawn(&["journal", "tail", "-n", "1", "--follow"]);
    // Each has printed its current state (an empty inbox; the last journal entry) first.
    assert_eq!(inbox_lines.recv_timeout(WAIT).unwrap(), "[]");
    journal_lines.recv_timeout(WAIT).unwrap();
    let id = net.members[a]
        .node()
        .publish(net.channel_alert(godwit_protocol::envelope::Priority::Flash))
        .await
        .unwrap();
    wait_for(&mut eb, "the alert at b", |e| *e == godwit_node::net::NodeEvent::Delivered(id)).await;
    let seen = |rx: &std::sync::mpsc::Receiver<String>, what: &str| {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = rx.recv_timeout(left).unwrap_or_else(|_| panic!("{what} never printed"));
            if line.contains(&id.to_string()) || line.contains(&format!("{:?}", id)) {
                return;
            }
        }
    };
    seen(&inbox_lines, "the followed inbox");
    seen(&journal_lines, "the followed journal");
    // A follower started now begins with what is stored (one request: nothing falls between
    // the listing and the stream).
    let (mut late, late_lines) = spawn(&["--json", "inbox", "--follow", "--kind", "warning"]);
    seen(&late_lines, "the stored alert, first thing a new follower prints");
    for c in [&mut inbox, &mut journal, &mut late] {
        c.kill().unwrap();
        c.wait().unwrap();
    }
    for ix in all {
        net.stop(ix).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_warns_of_a_fork_and_of_a_revocation_list_about_to_expire() {
    let mut net = Net::new();
    let t = godwit_node::net::now().as_millis();
    net.crl = Some(net.ca.crl(1, &[], t - 1_000, t + 2 * DAY).unwrap());
    let a = net.add("Tanzania NCP", Role::Member);
    let evil = net.add("Compromised NCP", Role::Member);
    net.start(a, &[], &[a, evil]).await;
    let socket = net.members[a].dir.join(api::SOCKET_NAME);
    // A member signs two messages for one place in its feed.
    let mut raw = support::raw::Raw::hello(&net, evil, a, false).await;
    let (m1, m1b) = (raw.channel_msg(&net, 1, None), raw.channel_msg(&net, 1, None));
    raw.send_msg(&m1.bytes, 0).await;
    raw.send_msg(&m1b.bytes, 0).await;
    raw.next("the fork refusal", |f| {
        matches!(f, godwit_protocol::wire::Frame::Reject(r) if r.reason == godwit_protocol::wire::RejectReason::Fork)
    })
    .await;
    let s = json(&godwit(args(&socket, &["--json", "status"])).await);
    let warnings = s["warnings"].to_string();
    assert!(warnings.contains("1 feeds are frozen after their author signed two messages"), "{warnings}");
    assert!(warnings.contains("the revocation list expires in"), "{warnings}");
    net.stop(a).await;
}

/// Runs `godwit` as another user (`uid`, primary group `gid`, no other groups), from a copy of
/// the binary any user may run.
async fn godwit_as(bin: std::path::PathBuf, uid: u32, gid: u32, args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        use std::os::unix::process::CommandExt;
        std::process::Command::new(bin).args(args).uid(uid).gid(gid).output().unwrap()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_socket_serves_its_group_and_tells_anyone_else_permission_denied() {
    let mut net = Net::new();
    // The group of the unprivileged user that exists everywhere.
    net.admin_group = Some("nogroup".into());
    let hub = net.add("RILO ESA", Role::Hub);
    net.start(hub, &[], &[hub]).await;
    let socket = net.members[hub].dir.join(api::SOCKET_NAME);
    if nix::unistd::geteuid().is_root() {
        // Others may pass through the test's own directory to the node's (0710, the group's).
        std::fs::set_permissions(net.tmp.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        let bin = net.tmp.path().join("godwit");
        std::fs::copy(env!("CARGO_BIN_EXE_test-godwit"), &bin).unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        let dir_mode = std::fs::metadata(&net.members[hub].dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(dir_mode, 0o710, "the data directory lets the group through, nobody else");
        // nobody:nogroup is in the socket's group.
        let o = godwit_as(bin.clone(), 65534, 65534, args(&socket, &["--json", "status"])).await;
        assert!(o.status.success(), "a member of the group uses the socket: {}", stderr(&o));
        assert_eq!(json(&o)["administration"], "RILO ESA");
        // nobody in another group is not.
        let o = godwit_as(bin, 65534, 1, args(&socket, &["status"])).await;
        assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
        assert!(stderr(&o).contains("permission denied on godwitd's socket"), "{}", stderr(&o));
        assert!(stderr(&o).contains("ask an administrator to add you to that group"), "{}", stderr(&o));
    } else {
        // Not root: the owner itself is refused by a socket of mode 0000.
        std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o000)).unwrap();
        let o = godwit(args(&socket, &["status"])).await;
        assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
        assert!(stderr(&o).contains("permission denied on godwitd's socket"), "{}", stderr(&o));
    }
    net.stop(hub).await;
}

fn id_of(hex: &str) -> godwit_protocol::ids::MessageId {
    let bytes: Vec<u8> = (0..32).map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap()).collect();
    godwit_protocol::ids::MessageId(bytes.try_into().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_analyst_sends_filters_acknowledges_and_exports_with_godwit() {
    use godwit_node::net::NodeEvent;
    let mut net = Net::new();
    let ([hub, a, b], mut ea, mut eb) = region(&mut net).await;
    let all = [hub, a, b];
    let (sa, sb) = (net.members[a].dir.join(api::SOCKET_NAME), net.members[b].dir.join(api::SOCKET_NAME));
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/examples");
    let file = |n: &str| examples.join(n).to_str().unwrap().to_string();

    // An alert to the channel; the kind is checked against the file.
    let o = godwit(args(
        &sa,
        &["send", "alert", "--channel", "test alerts", "--file", &file("seizure_report.json")],
    ))
    .await;
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("holds a seizure report, not a warning"), "{}", stderr(&o));
    let sent = json(
        &godwit(args(
            &sa,
            &[
                "--json",
                "send",
                "alert",
                "--channel",
                "test alerts",
                "--priority",
                "flash",
                "--grading",
                "b2",
                "--file",
                &file("warning.json"),
            ],
        ))
        .await,
    );
    let alert = id_of(sent["id"].as_str().unwrap());
    wait_for(&mut eb, "the alert at b", |e| *e == NodeEvent::Delivered(alert)).await;
    // A bulletin from flags, and one from a TOML file.
    let o = godwit(args(
        &sa,
        &[
            "send",
            "bulletin",
            "--channel",
            "test alerts",
            "--title",
            "Pangolin scales via Entebbe",
            "--summary",
            "Three seizures in November",
            "--text",
            "Analysis follows.",
            "--country",
            "UG",
        ],
    ))
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let bulletin = id_of(stdout(&o).trim());
    let o = godwit(args(
        &sa,
        &["send", "bulletin", "--channel", "test alerts", "--file", &file("bulletin.toml")],
    ))
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let toml_bulletin = id_of(stdout(&o).trim());
    for m in [bulletin, toml_bulletin] {
        wait_for(&mut eb, "the bulletins at b", |e| *e == NodeEvent::Delivered(m)).await;
    }

    // Filters: by kind (alert names a warning), by marking, unread.
    let warnings = json(&godwit(args(&sb, &["--json", "inbox", "--kind", "alert"])).await);
    let warnings = warnings.as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let w = &warnings[0];
    assert_eq!(
        (w["id"].as_str(), w["kind"].as_str(), w["status"].as_str()),
        (Some(&*alert.to_string()), Some("warning"), Some("new"))
    );
    assert_eq!(w["title"], "Worked ivory declared as unworked under 0507.10");
    assert_eq!(w["channel_name"], "test alerts");
    let bulletins =
        json(&godwit(args(&sb, &["--json", "inbox", "list", "--kind", "bulletin", "--since", "1h"])).await);
    assert_eq!(bulletins.as_array().unwrap().len(), 2, "{bulletins}");
    let red = json(&godwit(args(&sb, &["--json", "inbox", "--marking", "red"])).await);
    assert!(red.as_array().unwrap().is_empty(), "{red}");
    let o = godwit(args(&sb, &["inbox", "--since", "last tuesday"])).await;
    assert_eq!(o.status.code(), Some(2), "a usage error: {}", stderr(&o));
    assert!(stderr(&o).contains("is not a date (2026-11-30) or a time back from now"), "{}", stderr(&o));

    // b reads it: marked, and a signed receipt goes to its author.
    let marked = json(
        &godwit(args(
            &sb,
            &["--json", "inbox", "ack", &alert.to_string()[..10], "--note", "seen by the duty officer"],
        ))
        .await,
    );
    let receipt = id_of(marked["receipt"].as_str().expect("a receipt was sent"));
    wait_for(&mut ea, "the receipt at a", |e| *e == NodeEvent::Delivered(receipt)).await;
    let receipts = json(&godwit(args(&sa, &["--json", "inbox", "--kind", "receipt"])).await);
    let receipts = receipts.as_array().unwrap();
    // The flash alert was receipted "delivered" by b's node itself, then "read" by its officer.
    assert!(
        receipts.iter().any(|x| x["refers_to"] == alert.to_string().as_str()
            && x["title"].as_str().unwrap().starts_with("delivered ")),
        "{receipts:?}"
    );
    let r = receipts.iter().find(|x| x["id"] == receipt.to_string().as_str()).unwrap();
    assert_eq!(r["refers_to"], alert.to_string());
    assert!(r["title"].as_str().unwrap().starts_with("read "), "{r}");
    assert!(r["title"].as_str().unwrap().ends_with(": seen by the duty officer"), "{r}");
    let unread = json(&godwit(args(&sb, &["--json", "inbox", "--unread", "--kind", "warning"])).await);
    assert!(unread.as_array().unwrap().is_empty(), "read now: {unread}");
    let again = json(&godwit(args(&sb, &["--json", "inbox", "ack", &alert.to_string()])).await);
    assert!(again["receipt"].is_null(), "already read: no second receipt");

    // b seizes, reports it to a directly, and gives feedback on the alert from flags.
    let o = godwit(args(
        &sb,
        &["send", "seizure", "--to", "Tanzania NCP", "--file", &file("seizure_report.json")],
    ))
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let seizure = id_of(stdout(&o).trim());
    let o = godwit(args(
        &sb,
        &[
            "send",
            "feedback",
            "--to",
            "Tanzania NCP",
            "--warning",
            &alert.to_string(),
            "--outcome",
            "seized",
            "--details",
            "412.5 kg of tusks found",
            "--seizure",
            &seizure.to_string(),
        ],
    ))
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let feedback = id_of(stdout(&o).trim());
    // Invalid codes are named.
    let o = godwit(args(
        &sa,
        &["send", "bulletin", "--channel", "test alerts", "--title", "t", "--country", "XX"],
    ))
    .await;
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--country") && stderr(&o).contains("XX"), "{}", stderr(&o));
    let o = godwit(args(
        &sa,
        &["send", "alert", "--channel", "test alerts", "--grading", "Z9", "--file", &file("warning.json")],
    ))
    .await;
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--grading") && stderr(&o).contains("Z9"), "{}", stderr(&o));
    let o = godwit(args(&sb, &["send", "feedback", "--to", "TZ", "--warning", "abc", "--outcome", "seized"]))
        .await;
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--warning \"abc\" is not a message id"), "{}", stderr(&o));
    for m in [seizure, feedback] {
        wait_for(&mut ea, "the report and feedback at a", |e| *e == NodeEvent::Delivered(m)).await;
    }
    let o = json(&godwit(args(&sa, &["--json", "inbox", "--kind", "feedback"])).await);
    assert_eq!(o[0]["refers_to"], alert.to_string());
    let marked = json(
        &godwit(args(
            &sb,
            &["--json", "inbox", "action", &alert.to_string(), "--note", "seized, see report"],
        ))
        .await,
    );
    assert!(marked["receipt"].is_string(), "actioned after read: a new receipt");

    // The report, shown with what its codes mean.
    let shown = godwit(args(&sa, &["inbox", "show", &seizure.to_string()])).await;
    let text = stdout(&shown);
    for expected in [
        "TUS (Tusks)",
        "KE (Kenya)",
        "destination VN (Vietnam)",
        "0507.10",
        "ivory; ivory powder and waste, unworked",
        "CITES appendix I",
    ] {
        let expected = expected.replace("0507.10", "050710");
        assert!(text.contains(&expected), "{expected:?} in:\n{text}");
    }

    // The export: one row per seized line, in a spreadsheet's columns.
    let o = godwit(args(&sa, &["inbox", "export", "--csv"])).await;
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    let mut rows = csv::Reader::from_reader(text.as_bytes());
    let header = rows.headers().unwrap().clone();
    let records: Vec<csv::StringRecord> = rows.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), 2, "two seized lines");
    let col =
        |r: &csv::StringRecord, name: &str| r[header.iter().position(|h| h == name).unwrap()].to_string();
    assert_eq!(
        (col(&records[0], "term"), col(&records[0], "unit"), col(&records[0], "quantity")),
        ("TUS".into(), "KIL".into(), "412.5".into())
    );
    assert_eq!(col(&records[0], "scientific_name"), "Loxodonta africana");
    assert_eq!(col(&records[1], "term"), "SCA");
    assert_eq!((col(&records[1], "message_id"), col(&records[1], "line")), (seizure.to_string(), "2".into()));
    assert_eq!(col(&records[0], "administration"), "Uganda Revenue Authority");
    let rows = json(&godwit(args(&sa, &["--json", "inbox", "export"])).await);
    assert_eq!(rows.as_array().unwrap().len(), 2);
    assert_eq!(rows[0]["hs_found"], "050710");
    let out = net.tmp.path().join("seizures.csv");
    let o = godwit(args(&sa, &["inbox", "export", "--out", out.to_str().unwrap()])).await;
    assert!(stdout(&o).contains("2 rows written"), "{}", stderr(&o));
    let o = godwit(args(&sa, &["inbox", "export", "--out", out.to_str().unwrap()])).await;
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("exists: refusing to overwrite it"), "{}", stderr(&o));
    // As MISP events that conform to Godwit's object templates and the taxonomies, and as the
    // ETIS ivory form.
    let events = json(&godwit(args(&sa, &["inbox", "export", "--format", "misp"])).await);
    let events = events.as_array().unwrap();
    assert_eq!(events.len(), 1);
    godwit_admin::misp::check_event(&events[0]).unwrap();
    assert_eq!(events[0]["Event"]["Tag"][0]["name"], "tlp:red", "the report's marking");
    let etis = stdout(&godwit(args(&sa, &["inbox", "export", "--format", "etis"])).await);
    let mut etis = csv::Reader::from_reader(etis.as_bytes());
    let header = etis.headers().unwrap().clone();
    let row = etis.records().next().unwrap().unwrap();
    let col = |name: &str| row[header.iter().position(|h| h == name).unwrap()].to_string();
    assert_eq!((col("raw_pieces"), col("raw_kg")), ("38".to_string(), "412.5".to_string()));
    // The author's own export: the Party's own seizures, from the copy it kept (the direct
    // message is sealed to its recipient only; its author could not open it again).
    let own = json(&godwit(args(&sb, &["--json", "inbox", "export", "--own"])).await);
    assert_eq!(own.as_array().unwrap().len(), 2, "{own}");
    assert_eq!(
        (own[0]["message_id"].as_str(), own[0]["hs_found"].as_str()),
        (Some(&*seizure.to_string()), Some("050710"))
    );
    assert_eq!(own[0]["administration"], "Uganda Revenue Authority");
    let theirs = json(&godwit(args(&sa, &["--json", "inbox", "export", "--own"])).await);
    assert!(theirs.as_array().unwrap().is_empty(), "a received report is not the receiver's own: {theirs}");
    // Its author retracts it: the export leaves it out.
    let retraction = godwit_protocol::content::Body::new(godwit_protocol::content::Content::Retraction(
        godwit_protocol::content::Retraction { reason: "Entered twice".into(), target: seizure },
    ));
    let file = net.tmp.path().join("retraction.json");
    std::fs::write(&file, serde_json::to_string(&retraction).unwrap()).unwrap();
    let o = godwit(args(&sb, &["send", "direct", "--to", "Tanzania NCP", "--file", file.to_str().unwrap()]))
        .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let retracted = id_of(stdout(&o).trim());
    wait_for(&mut ea, "the retraction at a", |e| *e == NodeEvent::Delivered(retracted)).await;
    let rows = json(&godwit(args(&sa, &["--json", "inbox", "export"])).await);
    assert!(rows.as_array().unwrap().is_empty(), "retracted: {rows}");
    let own = json(&godwit(args(&sb, &["--json", "inbox", "export", "--own"])).await);
    assert!(own.as_array().unwrap().is_empty(), "retracted by its author: {own}");
    // Marks are journalled with the operator's uid.
    let journal = stdout(&godwit(args(&sb, &["journal", "tail", "-n", "50"])).await);
    assert!(
        journal.contains(&format!("inbox ack {alert}")) && journal.contains(&format!("inbox action {alert}")),
        "{journal}"
    );
    for ix in all {
        net.stop(ix).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_encryption_key_reaches_the_network_and_what_was_sealed_before_still_opens() {
    use godwit_node::net::NodeEvent;
    let mut net = Net::new();
    let ([hub, a, b], mut ea, mut eb) = region(&mut net).await;
    let all = [hub, a, b];
    let bid = net.members[b].id();
    let (sa, sb) = (net.members[a].dir.join(api::SOCKET_NAME), net.members[b].dir.join(api::SOCKET_NAME));
    let report =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/examples/seizure_report.json");
    let report = report.to_str().unwrap();
    let key_at_a = |d: serde_json::Value| d[0]["encryption_key"].as_str().unwrap().to_string();
    let send = |sa: std::path::PathBuf| async move {
        let o = godwit(args(&sa, &["send", "seizure", "--to", "Uganda Revenue Authority", "--file", report]))
            .await;
        assert!(o.status.success(), "{}", stderr(&o));
        id_of(stdout(&o).trim())
    };
    let first = send(sa.clone()).await;
    wait_for(&mut eb, "the first report at b", |e| *e == NodeEvent::Delivered(first)).await;
    let old = key_at_a(json(&godwit(args(&sa, &["--json", "directory", "show", &bid.to_string()])).await));

    // b's operator rotates: the new card reaches a, whose next message is sealed to the new key.
    let rotated = json(&godwit(args(&sb, &["--json", "keys", "rotate"])).await);
    let new = rotated["encryption_key"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    let shown_at_a = || async {
        key_at_a(json(&godwit(args(&sa, &["--json", "directory", "show", &bid.to_string()])).await))
    };
    while shown_at_a().await != new {
        wait_for(&mut ea, "b's new card at a", |e| *e == NodeEvent::Card(bid)).await;
    }
    let second = send(sa.clone()).await;
    wait_for(&mut eb, "the second report at b", |e| *e == NodeEvent::Delivered(second)).await;
    let opens = |sb: std::path::PathBuf, id: godwit_protocol::ids::MessageId| async move {
        let shown = json(&godwit(args(&sb, &["--json", "inbox", "show", &id.to_string()])).await);
        assert!(shown["body"]["content"]["seizure_report"].is_object(), "{shown}");
    };
    opens(sb.clone(), first).await;
    opens(sb.clone(), second).await;
    let journal = stdout(&godwit(args(&sb, &["journal", "tail", "-n", "20"])).await);
    assert!(journal.contains("keys rotate"), "{journal}");

    // After a restart (given its first key again, as at first start) b keeps the new key, still
    // opens both, and announces no older key.
    net.stop(b).await;
    net.members[b].listen = "127.0.0.1:0".parse().unwrap();
    net.start(b, &[], &all).await;
    opens(sb.clone(), first).await;
    opens(sb.clone(), second).await;
    let own = key_at_a(json(&godwit(args(&sb, &["--json", "directory", "show", &bid.to_string()])).await));
    assert_eq!(own, new, "its own card still names the new key");
    let key_files: Vec<std::path::PathBuf> = std::fs::read_dir(&net.members[b].dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with("encryption"))
        .collect();
    assert_eq!(key_files.len(), 2, "the new key and the retired one: {key_files:?}");
    for f in &key_files {
        let mode = std::fs::metadata(f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", f.display());
    }
    for ix in all {
        net.stop(ix).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_warns_of_a_feed_gap_no_peer_fills_until_it_is_filled() {
    use godwit_node::net::NodeEvent;
    let mut net = Net::new();
    // Warn of any gap still open when asked (ten minutes by default).
    net.limits.gap_warn_after_ms = 0;
    let hub = net.add("RILO ESA", Role::Hub);
    let m = net.add("Tanzania NCP", Role::Member);
    net.start(hub, &[m], &[hub, m]).await;
    let mut eh = net.members[hub].node().events();
    // A member whose second message never comes, though the hub asks for it.
    let mut raw = support::raw::Raw::hello(&net, m, hub, false).await;
    let m1 = raw.channel_msg(&net, 1, None);
    let m2 = raw.channel_msg(&net, 2, Some(m1.id));
    let m3 = raw.channel_msg(&net, 3, Some(m2.id));
    raw.send_msg(&m1.bytes, 0).await;
    raw.send_msg(&m3.bytes, 0).await;
    wait_for(&mut eh, "the gap", |e| matches!(e, NodeEvent::Gap { from: 2, to: 2, .. })).await;
    let socket = net.members[hub].dir.join(api::SOCKET_NAME);
    let gap_warnings = |status: serde_json::Value| -> Vec<String> {
        status["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w.as_str().unwrap().to_string())
            .filter(|w| w.contains("misses seq"))
            .collect()
    };
    let warned = gap_warnings(json(&godwit(args(&socket, &["--json", "status"])).await));
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(
        warned[0].contains("misses seq 2..=2") && warned[0].contains("no peer has sent it"),
        "{warned:?}"
    );
    // Once the missing message arrives, the warning goes.
    raw.send_msg(&m2.bytes, 0).await;
    wait_for(&mut eh, "the missing message", |e| *e == NodeEvent::Delivered(m2.id)).await;
    let warned = gap_warnings(json(&godwit(args(&socket, &["--json", "status"])).await));
    assert!(warned.is_empty(), "{warned:?}");
    net.stop(hub).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_warns_before_the_disk_is_too_full_to_take_messages() {
    let mut net = Net::new();
    let free = nix::sys::statvfs::statvfs(net.tmp.path()).unwrap();
    let free = free.blocks_available() as u64 * free.fragment_size() as u64;
    // The reserve is two thirds of what is free: not reached, but less than half is left above it.
    net.limits.min_free_disk_bytes = free / 3 * 2;
    let hub = net.add("RILO ESA", Role::Hub);
    net.start(hub, &[], &[hub]).await;
    let socket = net.members[hub].dir.join(api::SOCKET_NAME);
    let status = json(&godwit(args(&socket, &["--json", "status"])).await);
    assert_eq!(status["storage_full"], false, "{status}");
    let warnings = status["warnings"].to_string();
    assert!(warnings.contains("the disk is filling") && warnings.contains("MiB free"), "{warnings}");
    net.stop(hub).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_addressed_to_named_officers_is_shown_only_to_their_accounts() {
    use godwit_node::net::NodeEvent;
    let mut net = Net::new();
    // The account running this test is the duty officer, and nobody the head of unit.
    let me = nix::unistd::getuid().as_raw();
    net.accounts = vec![godwit_node::net::Account { uid: me, roles: vec!["Duty officer".into()] }];
    let ([hub, a, b], _, mut eb) = region(&mut net).await;
    let all = [hub, a, b];
    let (sa, sb) = (net.members[a].dir.join(api::SOCKET_NAME), net.members[b].dir.join(api::SOCKET_NAME));
    let report =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/examples/seizure_report.json");
    let send = |to: &'static str| {
        let (sa, report) = (sa.clone(), report.clone());
        async move {
            let args = args(
                &sa,
                &[
                    "send",
                    "seizure",
                    "--to",
                    "Uganda Revenue Authority",
                    "--addressee",
                    to,
                    "--file",
                    report.to_str().unwrap(),
                ],
            );
            let o = godwit(args).await;
            assert!(o.status.success(), "{}", stderr(&o));
            id_of(stdout(&o).trim())
        }
    };
    let for_head = send("head of the intelligence unit").await;
    let for_duty = send("duty officer").await;
    for m in [for_head, for_duty] {
        wait_for(&mut eb, "the reports at b", |e| *e == NodeEvent::Delivered(m)).await;
    }
    let shown = json(&godwit(args(&sb, &["--json", "inbox", "show", &for_duty.to_string()])).await);
    assert!(shown["body"]["content"]["seizure_report"].is_object(), "the duty officer reads it: {shown}");
    let withheld = json(&godwit(args(&sb, &["--json", "inbox", "show", &for_head.to_string()])).await);
    assert!(withheld["body"].is_null(), "not for this account: {withheld}");
    let why = withheld["unopened"].as_str().unwrap();
    assert!(
        why.contains("addressed to head of the intelligence unit only") && why.contains(&format!("uid {me}")),
        "{why}"
    );
    let listed = json(&godwit(args(&sb, &["--json", "inbox"])).await);
    let entry = listed.as_array().unwrap().iter().find(|m| m["id"] == for_head.to_string()).unwrap();
    assert_eq!(entry["kind"], "sealed", "the listing does not tell what it is about either: {entry}");
    for ix in all {
        net.stop(ix).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_starting_node_publishes_its_card_once() {
    let mut net = Net::new();
    let hub = net.add("RILO ESA", Role::Hub);
    net.start(hub, &[], &[hub]).await;
    let socket = net.members[hub].dir.join(api::SOCKET_NAME);
    // Each request is answered by the core after a turn of its loop, so by the second answer
    // whatever its first turns authored is committed.
    for _ in 0..2 {
        json(&godwit(args(&socket, &["--json", "status"])).await);
    }
    let journal = json(&godwit(args(&socket, &["--json", "journal", "tail", "-n", "50"])).await).to_string();
    assert_eq!(journal.matches("Authored").count(), 1, "one card: {journal}");
    net.stop(hub).await;
}

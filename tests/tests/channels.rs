//! Channels as signed state, over real QUIC: a hub creates a channel, admits NCPs and removes
//! one; epoch keys reach the readers only; a removed NCP cannot read what is sent after; a new
//! member is not sent what came before it; a closed channel refuses new messages.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod support;

use std::process::Output;

use godwit_admin_api as api;
use godwit_node::net::NodeEvent;
use godwit_protocol::identity::Role;
use godwit_protocol::ids::{ChannelId, MessageId};
use support::network::*;
use support::{stderr, stdout};

/// Runs `godwit` off the runtime's threads (the nodes under test need them).
async fn godwit(socket: &std::path::Path, rest: &[&str]) -> Output {
    let mut args = vec!["--socket".to_string(), socket.display().to_string()];
    args.extend(rest.iter().map(|s| (*s).to_string()));
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        support::godwit(&args)
    })
    .await
    .unwrap()
}

async fn json(socket: &std::path::Path, rest: &[&str]) -> serde_json::Value {
    let mut args = vec!["--json"];
    args.extend_from_slice(rest);
    let o = godwit(socket, &args).await;
    assert!(o.status.success(), "godwit {rest:?}: {}", stderr(&o));
    serde_json::from_str(&stdout(&o)).unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(&o)))
}

async fn bulletin(socket: &std::path::Path, channel: &str, title: &str) -> Result<MessageId, String> {
    bulletin_marked(socket, channel, title, "amber").await
}

async fn bulletin_marked(
    socket: &std::path::Path,
    channel: &str,
    title: &str,
    marking: &str,
) -> Result<MessageId, String> {
    let o = godwit(
        socket,
        &[
            "--json",
            "send",
            "bulletin",
            "--channel",
            channel,
            "--title",
            title,
            "--summary",
            "ivory via NBO",
            "--text",
            "analysis",
            "--priority",
            "flash",
            "--marking",
            marking,
        ],
    )
    .await;
    if !o.status.success() {
        return Err(stderr(&o));
    }
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    Ok(v["id"].as_str().unwrap().parse().unwrap())
}

/// The inbox as (id, kind) pairs.
async fn inbox(socket: &std::path::Path) -> Vec<(MessageId, String)> {
    let v = json(socket, &["inbox", "list"]).await;
    v.as_array()
        .unwrap()
        .iter()
        .map(|i| (i["id"].as_str().unwrap().parse().unwrap(), i["kind"].as_str().unwrap().to_string()))
        .collect()
}

/// Waits (bounded) until each of `want` has been seen, in whatever order they come; `pick` says
/// which one an event is, if any.
async fn wait_each<T: Ord>(
    rx: &mut tokio::sync::broadcast::Receiver<NodeEvent>,
    what: &str,
    mut want: std::collections::BTreeSet<T>,
    pick: impl Fn(&NodeEvent) -> Option<T>,
) {
    while !want.is_empty() {
        let e = wait_for(rx, what, |e| pick(e).is_some_and(|x| want.contains(&x))).await;
        if let Some(x) = pick(&e) {
            want.remove(&x);
        }
    }
}

async fn key_at(
    rx: &mut tokio::sync::broadcast::Receiver<NodeEvent>,
    who: &str,
    channel: ChannelId,
    epoch: u64,
) {
    wait_for(rx, &format!("{who} takes the key of epoch {epoch}"), |e| {
        *e == NodeEvent::ChannelKey { channel, epoch }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_admits_and_removes_members_and_only_current_members_read() {
    let mut net = Net::new();
    // A flash alert not read by a recipient within two seconds is flagged for escalation.
    net.limits.escalate_after_ms = 2_000;
    let hub = net.add("RILO ESA", Role::Hub);
    let ncps = [
        net.add("Kenya NCP", Role::Member),
        net.add("Tanzania NCP", Role::Member),
        net.add("Uganda NCP", Role::Member),
        net.add("Rwanda NCP", Role::Member),
    ];
    let all: Vec<usize> = std::iter::once(hub).chain(ncps).collect();
    net.start(hub, &ncps, &[]).await;
    let mut eh = net.members[hub].node().events();
    let mut events = Vec::new();
    for n in ncps {
        net.start(n, &[], &[]).await;
        events.push(net.join(n, hub).await);
    }
    let cards = ncps.iter().map(|n| net.members[*n].id()).collect();
    wait_each(&mut eh, "each NCP's card at the hub", cards, |e| match e {
        NodeEvent::Card(id) => Some(*id),
        _ => None,
    })
    .await;
    let sockets: Vec<std::path::PathBuf> = net.members.iter().map(|m| m.dir.join(api::SOCKET_NAME)).collect();
    let socket = |ix: usize| sockets[ix].clone();
    let net_hub_id = net.members[hub].id().to_string();
    let (hs, ids): (_, Vec<String>) =
        (socket(hub), ncps.iter().map(|n| net.members[*n].id().to_string()).collect());

    // Created: the hub is its only member, and holds the key of epoch 1.
    let made = json(&hs, &["channels", "create", "ESA alerts", "--purpose", "regional alerts"]).await;
    assert_eq!(made["epoch"], 1, "{made}");
    let channel: ChannelId = made["channel"].as_str().unwrap().parse().unwrap();
    // A second channel of the same name is refused.
    let o = godwit(&hs, &["channels", "create", "esa ALERTS"]).await;
    assert!(!o.status.success() && stderr(&o).contains("exists already"), "{}", stderr(&o));

    // Three NCPs admitted: each change is an epoch whose key is sealed to every reader.
    for (i, id) in ids.iter().take(3).enumerate() {
        let v = json(&hs, &["channels", "admit", "ESA alerts", id]).await;
        assert_eq!(v["epoch"], 2 + i as u64, "{v}");
    }
    for (i, rx) in events.iter_mut().take(3).enumerate() {
        key_at(rx, &format!("NCP {i}"), channel, 4).await;
    }
    let shown = json(&socket(ncps[0]), &["channels", "show", "ESA alerts"]).await;
    let c = &shown[0];
    assert_eq!((c["epoch"].as_u64(), c["has_key"].as_bool()), (Some(4), Some(true)), "{shown}");
    assert_eq!(c["members"].as_array().unwrap().len(), 4, "hub and three NCPs: {shown}");
    assert_eq!(c["owner"], net.members[hub].id().to_string());

    // The hub broadcasts: all three decrypt it.
    let first = bulletin(&hs, "ESA alerts", "Ivory via NBO, week 48").await.unwrap();
    for (i, rx) in events.iter_mut().take(3).enumerate() {
        wait_for(rx, &format!("NCP {i} receives the first alert"), |e| *e == NodeEvent::Delivered(first))
            .await;
        let got = inbox(&socket(ncps[i])).await;
        assert_eq!(got, vec![(first, "bulletin".to_string())], "NCP {i} reads it");
    }

    // Each NCP's node receipts the flash alert as delivered; an officer's ack adds "read".
    wait_delivered(&mut eh, 3).await;
    let o = godwit(&socket(ncps[0]), &["inbox", "ack", &first.to_string()]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    wait_delivered(&mut eh, 1).await;
    let r = json(&hs, &["receipts", &first.to_string()]).await;
    let rows = r["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "one row per reader but the hub: {r}");
    for (i, id) in ids.iter().take(3).enumerate() {
        let row = rows.iter().find(|x| x["node"] == id.as_str()).unwrap();
        assert!(row["delivered_ms"].is_u64() && row["expected"] == true, "{row}");
        assert_eq!(row["read_ms"].is_u64(), i == 0, "{row}");
    }
    let table = godwit(&hs, &["receipts", &first.to_string()]).await;
    assert!(stdout(&table).contains("Kenya NCP"), "{}", stdout(&table));
    // The two that never read it are flagged for escalation, in `godwit status` too.
    let unread = match wait_for(
        &mut eh,
        "the escalation",
        |e| matches!(e, NodeEvent::Escalation { id, .. } if *id == first),
    )
    .await
    {
        NodeEvent::Escalation { unread, .. } => unread,
        _ => unreachable!(),
    };
    for n in &ncps[1..3] {
        assert!(unread.contains(&net.members[*n].id()), "{unread:?}");
    }
    let status = json(&hs, &["status"]).await;
    let warned = status["warnings"].as_array().unwrap().iter().any(|w| {
        w.as_str()
            .is_some_and(|w| w.contains(&first.short()) && w.contains("Uganda NCP") && w.contains("escalate"))
    });
    assert!(warned, "{status}");

    // Kenya answers the alert with feedback: the hub sees the thread, across administrations.
    let o = godwit(
        &socket(ncps[0]),
        &[
            "--json",
            "send",
            "feedback",
            "--to",
            &net_hub_id,
            "--warning",
            &first.to_string(),
            "--outcome",
            "nothing_found",
            "--details",
            "two crates examined on arrival",
        ],
    )
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let feedback: MessageId = serde_json::from_str::<serde_json::Value>(&stdout(&o)).unwrap()["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    wait_for(&mut eh, "the feedback at the hub", |e| *e == NodeEvent::Delivered(feedback)).await;
    let thread = json(&hs, &["inbox", "thread", &first.to_string()]).await;
    let kinds: Vec<(&str, &str)> = thread
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["kind"].as_str().unwrap(), i["refers_to"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(kinds, vec![("feedback", first.to_string().as_str())], "{thread}");

    // A member removed: the next epoch's key is sealed to the two others only.
    let removed = ncps[2];
    let v = json(&hs, &["channels", "remove", "ESA alerts", &ids[2]]).await;
    assert_eq!(v["epoch"], 5);
    wait_for(&mut events[2], "the removed NCP takes epoch 5's state", |e| {
        *e == NodeEvent::ChannelState { channel, epoch: 5 }
    })
    .await;
    for (i, rx) in events.iter_mut().take(2).enumerate() {
        key_at(rx, &format!("NCP {i}"), channel, 5).await;
    }
    let second = bulletin(&hs, "ESA alerts", "Pangolin scales via DAR").await.unwrap();
    for (i, rx) in events.iter_mut().take(2).enumerate() {
        wait_for(rx, &format!("NCP {i} receives the second alert"), |e| *e == NodeEvent::Delivered(second))
            .await;
    }
    // Its author retracts it: every holder shows it so. Nobody else may retract it.
    let o = godwit(&hs, &["--json", "send", "retract", &second.to_string(), "--reason", "wrong route"]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    let retraction: MessageId = serde_json::from_str::<serde_json::Value>(&stdout(&o)).unwrap()["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    for (i, rx) in events.iter_mut().take(2).enumerate() {
        wait_for(rx, &format!("NCP {i} receives the retraction"), |e| *e == NodeEvent::Delivered(retraction))
            .await;
        let list = json(&socket(ncps[i]), &["inbox", "list"]).await;
        let item =
            list.as_array().unwrap().iter().find(|x| x["id"] == second.to_string().as_str()).unwrap().clone();
        assert_eq!(item["status"], "retracted", "{item}");
    }
    let o = godwit(&socket(ncps[0]), &["send", "retract", &first.to_string(), "--reason", "mine now"]).await;
    assert!(!o.status.success() && stderr(&o).contains("only its author"), "{}", stderr(&o));

    // The removed NCP holds no key for epoch 5, and the alert is not its.
    let at_removed = json(&socket(removed), &["channels", "show", "ESA alerts"]).await;
    assert_eq!(
        (at_removed[0]["epoch"].as_u64(), at_removed[0]["has_key"].as_bool()),
        (Some(5), Some(false)),
        "{at_removed}"
    );
    assert!(!net.members[removed].dir.join("channel-keys").join(format!("{channel}-5.key")).exists());
    assert_eq!(inbox(&socket(removed)).await, vec![(first, "bulletin".to_string())]);
    // Nor may it publish there: its node refuses, and so would every other.
    let refused = bulletin(&socket(removed), "ESA alerts", "not a member").await.unwrap_err();
    assert!(refused.contains("may not publish"), "{refused}");

    // A node asks to join; the owner's administrator sees the request, refuses the removed
    // NCP's, and admits the other.
    let mut asked = Vec::new();
    for n in [ncps[3], removed] {
        let v = json(&socket(n), &["channels", "join", "ESA alerts", "--note", "asking to join"]).await;
        asked.push(v["id"].as_str().unwrap().parse::<MessageId>().unwrap());
    }
    wait_each(&mut eh, "the join requests at the hub", asked.iter().copied().collect(), |e| match e {
        NodeEvent::Delivered(id) => Some(*id),
        _ => None,
    })
    .await;
    let pending = json(&hs, &["channels", "requests"]).await;
    let from: Vec<&str> = pending.as_array().unwrap().iter().map(|r| r["node"].as_str().unwrap()).collect();
    assert_eq!(from.len(), 2, "{pending}");
    assert!(from.contains(&ids[3].as_str()) && from.contains(&ids[2].as_str()), "{pending}");
    let o =
        godwit(&hs, &["channels", "refuse", &asked[1].to_string(), "--reason", "removed last week"]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    // A member asking to join again is told it is one already.
    let o = godwit(&socket(ncps[0]), &["channels", "join", "ESA alerts"]).await;
    assert!(!o.status.success() && stderr(&o).contains("is a member of"), "{}", stderr(&o));

    // A new member is not sent what came before it joined.
    let late = ncps[3];
    let v = json(&hs, &["channels", "admit", "ESA alerts", &ids[3], "--read-only"]).await;
    assert_eq!(v["epoch"], 6);
    key_at(&mut events[3], "the new member", channel, 6).await;
    let third = bulletin_marked(&hs, "ESA alerts", "Rhino horn via EBB", "green").await.unwrap();
    wait_for(&mut events[3], "the new member receives the third alert", |e| {
        *e == NodeEvent::Delivered(third)
    })
    .await;
    assert_eq!(inbox(&socket(late)).await, vec![(third, "bulletin".to_string())], "only what came after it");
    // A TLP:GREEN alert may be forwarded within the network (here to the NCP removed from the
    // channel): it carries the original as signed. A TLP:AMBER one may not, without consent.
    wait_for(&mut events[0], "NCP 0 receives the third alert", |e| *e == NodeEvent::Delivered(third)).await;
    let o = godwit(
        &socket(ncps[0]),
        &["--json", "send", "forward", &third.to_string(), "--to", &ids[2], "--comment", "FYI"],
    )
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let fwd: MessageId = serde_json::from_str::<serde_json::Value>(&stdout(&o)).unwrap()["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    wait_for(&mut events[2], "the forward at the removed NCP", |e| *e == NodeEvent::Delivered(fwd)).await;
    let got = inbox(&socket(removed)).await;
    assert!(got.contains(&(fwd, "forward".to_string())), "{got:?}");
    let o = godwit(&socket(ncps[0]), &["send", "forward", &first.to_string(), "--to", &ids[2]]).await;
    assert!(!o.status.success() && stderr(&o).contains("originator's consent"), "{}", stderr(&o));

    // It reads only: its node refuses to publish.
    assert!(
        bulletin(&socket(late), "ESA alerts", "read only").await.unwrap_err().contains("may not publish")
    );

    // Only the owner changes the channel.
    let o = godwit(&socket(ncps[0]), &["channels", "remove", "ESA alerts", &ids[1]]).await;
    assert!(!o.status.success() && stderr(&o).contains("only its owner"), "{}", stderr(&o));

    // Answered requests are no longer pending.
    let pending = json(&hs, &["channels", "requests"]).await;
    assert!(pending.as_array().unwrap().is_empty(), "{pending}");

    // A member leaves: the owner's node removes it at once.
    let o = godwit(&socket(ncps[1]), &["channels", "leave", "ESA alerts"]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    wait_for(&mut events[1], "the leaver's removal", |e| *e == NodeEvent::ChannelState { channel, epoch: 7 })
        .await;
    let shown = json(&hs, &["channels", "show", "ESA alerts"]).await;
    assert!(!shown[0]["members"].as_array().unwrap().iter().any(|m| m["node"] == ids[1].as_str()), "{shown}");

    // A member whose certificate is revoked is removed by the owner's node: a new epoch.
    let t = godwit_node::net::now().as_millis();
    let crl = net.ca.crl(2, &[net.members[late].cert.serial], t - 1_000, t + 86_400_000).unwrap();
    net.members[hub].node().reload_crl(crl).unwrap();
    wait_for(&mut eh, "the revoked member's removal", |e| {
        *e == NodeEvent::ChannelState { channel, epoch: 8 }
    })
    .await;
    let shown = json(&hs, &["channels", "show", "ESA alerts"]).await;
    assert!(!shown[0]["members"].as_array().unwrap().iter().any(|m| m["node"] == ids[3].as_str()), "{shown}");
    let journal = json(&hs, &["journal", "tail", "-n", "30"]).await;
    assert!(journal.to_string().contains("revocation: channels remove revoked"), "{journal}");

    // Closed: no new messages, here or anywhere.
    let v = json(&hs, &["channels", "close", "ESA alerts"]).await;
    assert_eq!(v["epoch"], 9);
    let after = bulletin(&hs, "ESA alerts", "too late").await.unwrap_err();
    assert!(after.contains("ended"), "{after}");

    // The keys and states survive a restart.
    wait_for(&mut events[0], "NCP 0 takes the closing state", |e| {
        *e == NodeEvent::ChannelState { channel, epoch: 9 }
    })
    .await;
    net.stop(ncps[0]).await;
    net.members[ncps[0]].listen = "127.0.0.1:0".parse().unwrap();
    net.start(ncps[0], &[], &[]).await;
    let again = json(&socket(ncps[0]), &["channels", "show", "ESA alerts"]).await;
    assert_eq!(again[0]["epoch"], 9, "{again}");
    let got = inbox(&socket(ncps[0])).await;
    assert_eq!(got.iter().filter(|(_, kind)| kind == "bulletin").count(), 3, "{got:?}");
    for ix in all {
        net.stop(ix).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn personal_data_in_a_channel_message_opens_only_for_its_named_recipient_and_can_be_purged() {
    let mut net = Net::new();
    let hub = net.add("RILO ESA", Role::Hub);
    let (ke, tz) = (net.add("Kenya NCP", Role::Member), net.add("Tanzania NCP", Role::Member));
    net.start(hub, &[ke, tz], &[]).await;
    let mut eh = net.members[hub].node().events();
    net.start(ke, &[], &[]).await;
    net.start(tz, &[], &[]).await;
    let mut eke = net.join(ke, hub).await;
    let mut etz = net.join(tz, hub).await;
    let cards = [ke, tz].iter().map(|n| net.members[*n].id()).collect();
    wait_each(&mut eh, "the NCPs' cards", cards, |e| match e {
        NodeEvent::Card(id) => Some(*id),
        _ => None,
    })
    .await;
    let s = |ix: usize| net.members[ix].dir.join(api::SOCKET_NAME);
    let (ke_id, tz_id) = (net.members[ke].id().to_string(), net.members[tz].id().to_string());
    let made = json(&s(hub), &["channels", "create", "ESA seizures"]).await;
    let channel: ChannelId = made["channel"].as_str().unwrap().parse().unwrap();
    for id in [&ke_id, &tz_id] {
        json(&s(hub), &["channels", "admit", "ESA seizures", id]).await;
    }
    key_at(&mut eke, "Kenya", channel, 3).await;
    key_at(&mut etz, "Tanzania", channel, 3).await;

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("persons.json");
    std::fs::write(&file, serde_json::to_string(&godwit_protocol::samples::personal_data()).unwrap())
        .unwrap();
    let file = file.to_str().unwrap();
    // Sealed to someone who does not read the channel: refused before anything is sent.
    let base = [
        "--json",
        "send",
        "bulletin",
        "--channel",
        "ESA seizures",
        "--title",
        "Courier network",
        "--summary",
        "s",
        "--text",
        "t",
    ];
    let mut args: Vec<&str> = base.to_vec();
    args.extend(["--personal", file, "--personal-to", "nobody-here"]);
    let o = godwit(&s(hub), &args).await;
    assert!(!o.status.success() && stderr(&o).contains("nobody-here"), "{}", stderr(&o));
    let mut args: Vec<&str> = base.to_vec();
    args.extend(["--personal", file, "--personal-to", &ke_id]);
    let o = godwit(&s(hub), &args).await;
    assert!(o.status.success(), "{}", stderr(&o));
    let id: MessageId = serde_json::from_str::<serde_json::Value>(&stdout(&o)).unwrap()["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    wait_for(&mut eke, "Kenya receives it", |e| *e == NodeEvent::Delivered(id)).await;
    wait_for(&mut etz, "Tanzania receives it", |e| *e == NodeEvent::Delivered(id)).await;

    // Kenya opens the personal data; Tanzania reads the bulletin but sees only that it exists.
    let shown = json(&s(ke), &["inbox", "show", &id.to_string()]).await;
    assert_eq!(shown["personal_status"], "opened", "{shown}");
    assert_eq!(shown["personal"]["persons"][0]["name"], "John Example Doe", "{shown}");
    let shown = json(&s(tz), &["inbox", "show", &id.to_string()]).await;
    assert_eq!(shown["personal_status"], "sealed to others", "{shown}");
    assert!(shown["body"].is_object() && shown["personal"].is_null(), "{shown}");
    assert!(!shown.to_string().contains("John Example Doe"));
    let table = godwit(&s(tz), &["inbox", "show", &id.to_string()]).await;
    assert!(stdout(&table).contains("personal data sealed to others"), "{}", stdout(&table));

    // Kenya purges it: never shown again, and the journal says so.
    let o = godwit(&s(ke), &["inbox", "purge-personal", &id.to_string()]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    let shown = json(&s(ke), &["inbox", "show", &id.to_string()]).await;
    assert_eq!(shown["personal_status"], "purged", "{shown}");
    assert!(!shown.to_string().contains("John Example Doe"));
    let journal = json(&s(ke), &["journal", "tail", "-n", "20"]).await;
    assert!(journal.to_string().contains(&format!("inbox purge-personal {id}")), "{journal}");
    // The mark stays when the message is acknowledged afterwards.
    let o = godwit(&s(ke), &["inbox", "ack", &id.to_string()]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    let shown = json(&s(ke), &["inbox", "show", &id.to_string()]).await;
    assert_eq!(shown["personal_status"], "purged", "{shown}");
    for ix in [hub, ke, tz] {
        net.stop(ix).await;
    }
}

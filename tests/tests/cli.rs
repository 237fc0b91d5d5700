//! The binaries as a user runs them: output, errors and exit codes.

#![allow(clippy::unwrap_used, clippy::type_complexity)] // test code: a panic is the failure report

use godwit_protocol::content::{Body, Content, Tlp};
use godwit_protocol::envelope::Priority;
use godwit_protocol::identity::{EncryptionKey, IdentityKey};
use godwit_protocol::message::{Audience, Draft, seal};
use godwit_protocol::{Timestamp, samples};
mod support;

use support::{godwit, godwitd, stderr, stdout};

#[test]
fn demo_runs_the_protocol_end_to_end_and_says_what_it_showed() {
    let o = godwitd(&["demo"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert_eq!(out.matches("opens it:").count(), 2, "{out}");
    assert!(out.contains("Viet Nam NCP (not in the channel)        is refused"), "{out}");
    assert!(out.contains("does not verify"), "{out}");
    assert!(out.contains("Not shown here"), "the demo says plainly what it does not show");
    // Act 2: real nodes over QUIC.
    assert_eq!(out.matches("received, verified and opened after").count(), 5, "{out}");
    assert!(out.contains("Uganda NCP comes back, catches up from its hub, and opens the report"), "{out}");
    assert!(out.contains("in its inbox? false; Thailand's? false"), "{out}");
    // Operators act through the admin socket: receipts, linked feedback, a bulletin across regions.
    assert!(out.contains("RILO ESA's inbox holds 4 signed read receipts for the alert"), "{out}");
    assert!(out.contains("outcome seized, linked to alert") && out.contains(": true"), "{out}");
    assert_eq!(out.matches("received it from the other region").count(), 2, "{out}");
    // The report says how many tusks, which air waybill, which port; a forensic result and the
    // case outcome follow it, linked.
    assert!(out.contains("38 tusks (412.5 kg)") && out.contains("air waybill 176-12345675"), "{out}");
    assert!(out.contains("(NBO / KENBO), linked to the alert: true"), "{out}");
    assert!(
        out.contains("forensic dna origin of seizure") && out.contains(": convicted, 2 arrested"),
        "{out}"
    );
    // An operation channel by signed state: admitted members read, the removed one gets no key.
    assert!(out.contains("godwit channels create \"Operation Tusk\""), "{out}");
    assert!(out.contains("read by 2 of 2 members"), "{out}");
    assert!(out.contains("Uganda holds the key of epoch 4? false; has the alert? false"), "{out}");
    // The hub's audit log: checkpointed, cosigned by its three peers, verified.
    assert!(out.contains("godwit audit checkpoint") && out.contains("/log/0"), "{out}");
    assert!(out.contains("cosigned (C2SP tlog-cosignature) by"), "{out}");
    assert!(out.contains("cosignatures checked: sound? true"), "{out}");
    for secret in ["John Example Doe", "passport X0000000"] {
        assert!(!out.contains(secret), "personal data printed: {secret}");
    }
}

#[test]
fn godwitd_help_lists_demo_and_unknown_commands_fail() {
    let o = godwitd(&["--help"]);
    assert!(o.status.success());
    assert!(stdout(&o).contains("demo"));
    let o = godwitd(&["fly"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("unrecognized subcommand 'fly'"), "{}", stderr(&o));
}

#[test]
fn node_id_check_accepts_canonical_and_names_the_error() {
    let id = IdentityKey::from_seed(&[1; 32]).node_id().to_string();
    let o = godwit(&["node-id", &id]);
    assert!(o.status.success());
    assert_eq!(stdout(&o).trim(), id);
    let o = godwit(&["node-id", &id.to_uppercase()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("at position 1 is not allowed"), "{}", stderr(&o));
    let o = godwit(&["node-id", &id[..54]]);
    assert!(stderr(&o).contains("got 54 characters"), "{}", stderr(&o));
}

#[test]
fn codes_lists_real_code_lists() {
    let o = godwit(&["codes", "term"]);
    assert!(stdout(&o).lines().any(|l| l.starts_with("TUS") && l.ends_with("Tusks")));
    let o = godwit(&["codes", "countries"]);
    assert_eq!(stdout(&o).lines().count(), 249);
    let o = godwit(&["codes", "grading"]);
    assert!(stdout(&o).contains("B2                source usually reliable; information probably true"));
    let o = godwit(&["codes", "nonsense"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn inspect_shows_the_signed_header_and_refuses_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rand_core::OsRng;
    let author = IdentityKey::generate(&mut rng);
    let to = [(IdentityKey::generate(&mut rng).node_id(), EncryptionKey::generate(&mut rng).public())];
    let body = Body::new(Content::Warning(samples::warning()));
    let d = Draft {
        audience: Audience::Direct(&to),
        seq: 1,
        prev: None,
        created: Timestamp(1_795_000_000_000),
        expires: Timestamp(1_795_086_400_000),
        priority: Priority::Flash,
        marking: Tlp::Red,
        body: &body,
        personal: None,
    };
    let sealed = seal(&mut rng, &author, &d).unwrap();
    let good = dir.path().join("msg.cose");
    std::fs::write(&good, &sealed.bytes).unwrap();
    let o = godwit(&["inspect", good.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains(&format!("message   {}", sealed.id)), "{out}");
    assert!(out.contains("marking   TLP:RED") && out.contains("priority  Flash"), "{out}");
    assert!(out.contains(&format!("created   {}", Timestamp(1_795_000_000_000))), "{out}");
    assert!(!out.contains("Worked ivory"), "inspect must not show encrypted content");

    let mut t = sealed.bytes.clone();
    let n = t.len();
    t[n - 10] ^= 1;
    let bad = dir.path().join("bad.cose");
    std::fs::write(&bad, &t).unwrap();
    let o = godwit(&["inspect", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("is not a valid Godwit envelope: signature by"), "{}", stderr(&o));

    let o = godwit(&["inspect", dir.path().join("missing").to_str().unwrap()]);
    assert!(stderr(&o).contains("cannot open"), "{}", stderr(&o));
}

#[test]
fn shell_completions_and_the_man_page_come_from_the_command_definitions() {
    let o = godwit(&["completions", "bash"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let script = stdout(&o);
    assert!(
        script.contains("_godwit()") && script.contains("status") && script.contains("journal"),
        "{script}"
    );
    let o = godwit(&["completions", "zsh"]);
    assert!(stdout(&o).starts_with("#compdef godwit"), "{}", stdout(&o));
    let o = godwit(&["man"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let page = stdout(&o);
    assert!(page.contains(".TH godwit 1") && page.contains("peers"), "{page}");
    let o = godwit(&["completions", "tcsh"]);
    assert_eq!(o.status.code(), Some(2), "an unknown shell is a usage error");
}

#[test]
fn the_demo_can_leave_its_network_running_for_the_godwit_tool() {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_test-godwitd"))
        .args(["demo", "--keep"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut sockets = Vec::new();
    for line in lines.by_ref().map_while(Result::ok) {
        if let Some(rest) = line.split("godwit --socket ").nth(1) {
            if line.trim_start().starts_with("for example") {
                break;
            }
            sockets.push((line.clone(), rest.trim_end_matches(" status").to_string()));
        }
    }
    assert_eq!(sockets.len(), 6, "{sockets:?}");
    let (line, socket) = sockets.iter().find(|(l, _)| l.contains("Thailand NCP")).unwrap();
    let o = godwit(&["--socket", socket, "status"]);
    assert!(o.status.success(), "{line}: {}", stderr(&o));
    assert!(stdout(&o).contains("administration  Thailand NCP"), "{}", stdout(&o));
    let o = godwit(&["--socket", socket, "--json", "inbox"]);
    assert!(
        stdout(&o).contains("\"mode\": \"channel\"") && stdout(&o).contains("\"priority\": \"flash\""),
        "the demo's flash alert is in its inbox: {}",
        stdout(&o)
    );
    let _ = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status();
    let drain = std::thread::spawn(move || lines.map_while(Result::ok).count());
    assert!(child.wait().unwrap().success(), "Ctrl-C ends the kept network with 0");
    drain.join().unwrap();
}

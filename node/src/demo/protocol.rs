//! `godwitd demo`, act 1 (the protocol layer): a RILO hub and three national contact points create their
//! identities and node cards; the hub opens a channel epoch for two members and circulates a
//! signed, encrypted seizure report with a personal-data section sealed to one of them; each
//! node verifies and opens what it is entitled to, and is refused — with the typed error — what
//! it is not. Nothing here is simulated: every signature, seal and refusal below is computed by
//! `godwit-protocol`. Networking, storage and relay are not part of this act.

use std::io::Write;

use anyhow::{Context, Result, anyhow, bail};
use godwit_protocol::content::{Body, Content, Tlp};
use godwit_protocol::crypto::{ChannelKey, EpochKey};
use godwit_protocol::envelope::{Envelope, Priority};
use godwit_protocol::feed::{self, HeadRec, SlotRec, Verdict};
use godwit_protocol::identity::{EncryptionKey, IdentityKey, NODE_CARD_VERSION, NodeCard, NodeId};
use godwit_protocol::ids::{ChannelId, MessageId};
use godwit_protocol::message::{Audience, Draft, seal};
use godwit_protocol::{Timestamp, samples};
use rand_core::{CryptoRngCore, OsRng};

/// One participant of the demo.
struct Node {
    name: &'static str,
    id: IdentityKey,
    enc: EncryptionKey,
    card: Vec<u8>,
}

impl Node {
    fn new(rng: &mut impl CryptoRngCore, name: &'static str, now: Timestamp) -> Result<Self> {
        let id = IdentityKey::generate(rng);
        let enc = EncryptionKey::generate(rng);
        let card = NodeCard {
            format: NODE_CARD_VERSION,
            id: id.node_id(),
            not_after: now.plus_hours(24 * 90),
            not_before: now,
            encryption_key: enc.public(),
            cert: Vec::new(),
            addresses: vec!["127.0.0.1:7400".into()],
            versions: vec![1],
        }
        .sign(&id)?;
        Ok(Node { name, id, enc, card })
    }
    fn node_id(&self) -> NodeId {
        self.id.node_id()
    }
}

/// What the demo established, for tests and for the summary.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct DemoReport {
    /// Members that opened the channel seizure report.
    pub opened_report: Vec<&'static str>,
    /// Nodes refused the report, with the error.
    pub refused_report: Vec<(&'static str, String)>,
    /// Nodes that opened the personal-data section.
    pub opened_personal: Vec<&'static str>,
    /// Nodes refused the personal-data section, with the error.
    pub refused_personal: Vec<(&'static str, String)>,
    /// The error a single flipped byte in transit produced.
    pub tamper_error: String,
    /// How the feed classified the replayed and the out-of-order message.
    pub feed_verdicts: Vec<String>,
}

/// Runs act 1 and writes a plain account to `out`.
///
/// # Errors
/// Only if the demo itself cannot run (e.g. `out` is closed); every refusal it shows is expected.
pub fn run(out: &mut impl Write, now: Timestamp) -> Result<DemoReport> {
    let mut rng = OsRng;
    let mut report = DemoReport::default();
    writeln!(out, "Godwit demo — act 1: identities, signed envelopes, end-to-end encryption\n")?;

    let hub = Node::new(&mut rng, "RILO Eastern & Southern Africa (hub)", now)?;
    let tz = Node::new(&mut rng, "Tanzania NCP", now)?;
    let ug = Node::new(&mut rng, "Uganda NCP", now)?;
    let vn = Node::new(&mut rng, "Viet Nam NCP (not in the channel)", now)?;
    let all = [&hub, &tz, &ug, &vn];
    for n in all {
        let card = NodeCard::verify(&n.card, now).with_context(|| format!("card of {}", n.name))?;
        writeln!(out, "  {:<40} NodeId {}  (card signed, {} bytes)", n.name, card.id, n.card.len())?;
    }

    let channel = ChannelId(sha256(b"Operation demo: ivory and pangolin scales, air cargo, 2026"));
    let epoch_key = EpochKey::generate(&mut rng);
    let members: Vec<_> = [&tz, &ug].iter().map(|n| (n.node_id(), n.enc.public())).collect();
    let ck_bytes = ChannelKey::issue(&mut rng, &hub.id, channel, 1, &epoch_key, &members, now)?;
    let ck = ChannelKey::verify(&ck_bytes)?;
    writeln!(
        out,
        "\nThe hub seals epoch 1 of channel {} to Tanzania and Uganda ({} bytes, HPKE per member).",
        channel.short(),
        ck_bytes.len()
    )?;

    let mut keys: Vec<(&Node, Option<EpochKey>)> = Vec::new();
    for n in [&tz, &ug, &vn] {
        match ck.unseal(&n.node_id(), &n.enc) {
            Ok(k) => keys.push((n, Some(k))),
            Err(e) => {
                writeln!(out, "  {:<40} cannot open the epoch key: {e}", n.name)?;
                keys.push((n, None));
            }
        }
    }

    let body =
        Body { grading: Some("B2".parse()?), ..Body::new(Content::SeizureReport(samples::seizure_report())) };
    let personal = samples::personal_data();
    let personal_to = [(tz.node_id(), tz.enc.public())];
    let draft = Draft {
        audience: Audience::Channel { id: channel, epoch: 1, key: &epoch_key },
        seq: 1,
        prev: None,
        created: now,
        expires: now.plus_hours(24 * 30),
        priority: Priority::Immediate,
        marking: Tlp::Amber,
        body: &body,
        personal: Some((&personal, &personal_to)),
    };
    let sealed = seal(&mut rng, &hub.id, &draft)?;
    writeln!(
        out,
        "\nThe hub signs and encrypts a seizure report (TLP:AMBER, graded B2): message {} ({} bytes).",
        sealed.id.short(),
        sealed.bytes.len()
    )?;
    writeln!(out, "  Personal data (1 person, 1 company) is sealed separately, to Tanzania only.")?;

    let env = Envelope::verify(&sealed.bytes)?;
    writeln!(
        out,
        "  Any relay can check it without decrypting: signature by {} verifies (verify_strict).",
        env.author().short()
    )?;
    for (n, key) in &keys {
        let opened = match key {
            Some(k) => env.open_channel(k).map_err(|e| e.to_string()),
            None => Err(format!(
                "no epoch key: {}",
                ck.unseal(&n.node_id(), &n.enc).err().map(|e| e.to_string()).unwrap_or_default()
            )),
        };
        match opened {
            Ok(b) if b == body => {
                let Content::SeizureReport(s) = &b.content else { bail!("wrong kind opened") };
                let item = &s.items[0];
                writeln!(
                    out,
                    "  {:<40} opens it: {}{} {} {} of {} ({}), {} -> {}",
                    n.name,
                    item.measures
                        .iter()
                        .find(|m| m.unit.is_none())
                        .map(|m| format!("{} pieces, ", m.amount))
                        .unwrap_or_default(),
                    item.quantity.as_ref().map(ToString::to_string).unwrap_or_else(|| "unknown".into()),
                    item.unit.map(|u| u.as_str()).unwrap_or(""),
                    item.term.description().to_lowercase(),
                    item.taxon.scientific,
                    item.appendix.map(|a| format!("CITES App. {a}")).unwrap_or_default(),
                    s.route.origin.map(|c| c.to_string()).unwrap_or_default(),
                    s.route.destination.map(|c| c.to_string()).unwrap_or_default(),
                )?;
                report.opened_report.push(n.name);
            }
            Ok(_) => bail!("{} opened different content", n.name),
            Err(e) => {
                writeln!(out, "  {:<40} is refused: {e}", n.name)?;
                report.refused_report.push((n.name, e));
            }
        }
    }
    for n in [&tz, &ug, &vn] {
        match env.open_personal(&n.node_id(), &n.enc) {
            Ok(p) if p == personal => {
                writeln!(
                    out,
                    "  {:<40} opens the personal data ({} person, {} company)",
                    n.name,
                    p.persons.len(),
                    p.companies.len()
                )?;
                report.opened_personal.push(n.name);
            }
            Ok(_) => bail!("{} opened different personal data", n.name),
            Err(e) => {
                writeln!(out, "  {:<40} cannot open the personal data: {e}", n.name)?;
                report.refused_personal.push((n.name, e.to_string()));
            }
        }
    }

    let mut tampered = sealed.bytes.clone();
    let at = tampered.len() / 2;
    tampered[at] ^= 0x01;
    let err = Envelope::verify(&tampered).err().ok_or_else(|| anyhow!("a tampered envelope verified"))?;
    writeln!(out, "\nOne bit flipped in transit (byte {at}): refused — {err}")?;
    report.tamper_error = err.to_string();

    // The feed: the next message chains to the first; a replay, a message ahead of the head and
    // a second message for a taken place are classified by the relay's own feed classifier.
    let mut head = HeadRec::EMPTY;
    let mut slots = std::collections::BTreeMap::<u64, SlotRec>::new();
    let second = Draft { seq: 2, prev: Some(sealed.id), personal: None, ..draft };
    let second = Envelope::verify(&seal(&mut rng, &hub.id, &second)?.bytes)?;
    let fourth = Draft { seq: 4, prev: Some(MessageId([0; 32])), personal: None, ..draft };
    let fourth = Envelope::verify(&seal(&mut rng, &hub.id, &fourth)?.bytes)?;
    // Sealed again: a fresh nonce makes another message for the same place.
    let twin = Draft { seq: 2, prev: Some(sealed.id), personal: None, ..draft };
    let twin = Envelope::verify(&seal(&mut rng, &hub.id, &twin)?.bytes)?;
    writeln!(out, "\nThe hub's feed in this channel, as a member sees it:")?;
    for (label, e) in [
        ("report (seq 1)", &env),
        ("next (seq 2)", &second),
        ("replay of seq 1", &env),
        ("seq 4 arrives early", &fourth),
        ("another seq 2", &twin),
    ] {
        let h = e.header();
        let entry = feed::Entry { seq: h.seq, id: e.id(), prev: h.prev };
        let v = feed::classify(&head, entry, |s| Ok::<_, std::convert::Infallible>(slots.get(&s).copied()))
            .unwrap_or_else(|never| match never {});
        let text = match &v {
            Verdict::Store { gap: None, .. } if h.seq == 1 => "stored, first message of the feed".to_string(),
            Verdict::Store { gap: None, .. } => "stored, chained to the previous message".to_string(),
            Verdict::Store { gap: Some(g), .. } => {
                format!("stored ahead; gap reported: seq {}..={} missing", g.start(), g.end())
            }
            Verdict::Duplicate => "duplicate, dropped".to_string(),
            Verdict::Fork(f) => format!("fork at seq {}: both kept as evidence, feed frozen", f.seq),
            other => format!("{other:?}"),
        };
        match v {
            Verdict::Store { head: new, .. } => {
                head = new;
                slots.insert(h.seq, SlotRec { id: e.id(), prev: h.prev });
            }
            Verdict::Fork(_) => head.frozen = true,
            _ => {}
        }
        writeln!(out, "  {label:<22} {text}")?;
        report.feed_verdicts.push(text);
    }

    writeln!(out, "\nWhat this act showed, computed for real: node cards signed and verified; an epoch key")?;
    writeln!(out, "sealed to exactly two members; a signed seizure report that both members open and the")?;
    writeln!(out, "outsider cannot; personal data readable only by its one named recipient; tampering")?;
    writeln!(out, "refused by signature; feed chaining with duplicate, gap and fork detection.")?;
    writeln!(out, "Networking follows in act 2.")?;
    Ok(report)
}

fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(data).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_members_open_the_report_and_the_outsider_is_refused() {
        let mut out = Vec::new();
        let r = run(&mut out, Timestamp(1_795_000_000_000)).unwrap();
        assert_eq!(r.opened_report, vec!["Tanzania NCP", "Uganda NCP"]);
        assert_eq!(r.refused_report.len(), 1);
        assert!(r.refused_report[0].1.contains("is not a recipient"), "{:?}", r.refused_report);
        assert_eq!(r.opened_personal, vec!["Tanzania NCP"]);
        assert_eq!(r.refused_personal.len(), 2);
        assert!(r.tamper_error.contains("does not verify"), "{}", r.tamper_error);
        assert_eq!(r.feed_verdicts[2], "duplicate, dropped");
        assert!(r.feed_verdicts[3].contains("seq 3..=3 missing"), "{:?}", r.feed_verdicts);
        assert!(r.feed_verdicts[4].contains("fork at seq 2"), "{:?}", r.feed_verdicts);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("Networking follows in act 2"));
        assert!(!text.contains("John Example Doe"), "personal data must never be printed");
    }
}

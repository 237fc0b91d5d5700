//! Envelope and whole-message tests: one per refusal, plus the round trips.

use super::raw;
use super::*;
use crate::content::{Body, Content, PersonalData};
use crate::crypto::{CryptoError, EpochKey};
use crate::identity::{EncryptionKey, EncryptionPublicKey, IdentityKey};
use crate::message::{Audience, Draft, OpenError, SealError, seal};
use crate::{samples, test_rng};

struct Net {
    rng: rand_chacha::ChaCha20Rng,
    hub: IdentityKey,
    members: Vec<(IdentityKey, EncryptionKey)>,
    outsider: (IdentityKey, EncryptionKey),
    epoch_key: EpochKey,
}

fn net() -> Net {
    let mut rng = test_rng(42);
    let hub = IdentityKey::generate(&mut rng);
    let members =
        (0..3).map(|_| (IdentityKey::generate(&mut rng), EncryptionKey::generate(&mut rng))).collect();
    let outsider = (IdentityKey::generate(&mut rng), EncryptionKey::generate(&mut rng));
    let epoch_key = EpochKey::generate(&mut rng);
    Net { rng, hub, members, outsider, epoch_key }
}

impl Net {
    fn pubs(&self, idx: &[usize]) -> Vec<(NodeId, EncryptionPublicKey)> {
        idx.iter().map(|&i| (self.members[i].0.node_id(), self.members[i].1.public())).collect()
    }
}

const NOW: Timestamp = Timestamp(1_795_000_000_000);

fn body() -> Body {
    Body::new(Content::SeizureReport(samples::seizure_report()))
}

fn draft<'a>(audience: Audience<'a>, body: &'a Body) -> Draft<'a> {
    Draft {
        audience,
        seq: 1,
        prev: None,
        created: NOW,
        expires: NOW.plus_hours(24),
        priority: Priority::Immediate,
        marking: Tlp::Amber,
        body,
        personal: None,
    }
}

fn channel_msg(n: &mut Net) -> Vec<u8> {
    let b = body();
    let key = n.epoch_key.clone();
    let a = Audience::Channel { id: ChannelId([5; 32]), epoch: 1, key: &key };
    seal(&mut n.rng, &n.hub, &draft(a, &b)).unwrap().bytes
}

/// Re-signs `payload` under `key` with the canonical protected header.
fn resign(key: &IdentityKey, payload: &[u8]) -> Vec<u8> {
    let p = raw::protected(key.node_id().as_bytes());
    let sig = key.sign(&sig_structure(&p, payload));
    raw::assemble(&p, &[0xa0], Some(payload), &sig)
}

/// Decodes the header of `bytes`, lets `f` change it, re-encodes and re-signs with `key`.
fn with_header(bytes: &[u8], key: &IdentityKey, f: impl FnOnce(&mut Header)) -> Vec<u8> {
    let (_, payload, _) = raw::split(bytes).unwrap();
    let (h, b, p) = raw::decode_payload(&payload).unwrap();
    let mut header: Header = codec::from_slice("h", &h).unwrap();
    f(&mut header);
    resign(key, &raw::encode_payload(&codec::to_vec(&header), &b, p.as_deref()))
}

#[test]
fn coset_and_our_canonical_encoder_agree() {
    let mut n = net();
    let bytes = channel_msg(&mut n);
    let (p, payload, sig) = raw::split(&bytes).unwrap();
    assert_eq!(raw::assemble(&p, &[0xa0], Some(&payload), &sig), bytes);
    assert_eq!(p, raw::protected(n.hub.node_id().as_bytes()));
    assert_eq!(bytes[0], 0xd2, "tag 18");
}

#[test]
fn channel_message_round_trip_and_id() {
    let mut n = net();
    let bytes = channel_msg(&mut n);
    let env = Envelope::verify(&bytes).unwrap();
    let (p, payload, _) = raw::split(&bytes).unwrap();
    assert_eq!(env.id(), message_id(&p, &payload));
    assert_eq!(env.author(), n.hub.node_id());
    assert_eq!(env.open_channel(&n.epoch_key).unwrap(), body());
    let wrong = EpochKey::generate(&mut n.rng);
    assert_eq!(env.open_channel(&wrong), Err(OpenError::Crypto(CryptoError::Decrypt)));
    assert_eq!(
        env.open_direct(&n.members[0].0.node_id(), &n.members[0].1),
        Err(OpenError::WrongMode { expected: "direct", actual: "channel" })
    );
}

#[test]
fn direct_message_opens_for_recipients_only() {
    let mut n = net();
    let b = body();
    let to = n.pubs(&[0, 1]);
    let sealed = seal(&mut n.rng, &n.hub, &draft(Audience::Direct(&to), &b)).unwrap();
    let env = Envelope::verify(&sealed.bytes).unwrap();
    for i in 0..2 {
        assert_eq!(env.open_direct(&n.members[i].0.node_id(), &n.members[i].1).unwrap(), b);
    }
    let (m2, k2) = &n.members[2];
    assert_eq!(env.open_direct(&m2.node_id(), k2), Err(OpenError::NotARecipient(m2.node_id())));
    // A non-recipient who claims a recipient's identity still lacks its key.
    let m0 = n.members[0].0.node_id();
    assert_eq!(env.open_direct(&m0, &n.outsider.1), Err(OpenError::Crypto(CryptoError::Unseal(m0))));
    assert_eq!(
        env.open_channel(&n.epoch_key),
        Err(OpenError::WrongMode { expected: "channel", actual: "direct" })
    );
    assert_eq!(env.header().feed.recipients().count(), 2);
}

#[test]
fn personal_section_is_sealed_to_named_recipients_only() {
    let mut n = net();
    let b = body();
    let pd = samples::personal_data();
    let named = n.pubs(&[0]);
    let key = n.epoch_key.clone();
    let mut d = draft(Audience::Channel { id: ChannelId([5; 32]), epoch: 1, key: &key }, &b);
    d.personal = Some((&pd, &named));
    let sealed = seal(&mut n.rng, &n.hub, &d).unwrap();
    let env = Envelope::verify(&sealed.bytes).unwrap();
    // Every member reads the body; only member 0 reads the personal data.
    assert_eq!(env.open_channel(&n.epoch_key).unwrap(), b);
    assert_eq!(env.open_personal(&n.members[0].0.node_id(), &n.members[0].1).unwrap(), pd);
    let m1 = n.members[1].0.node_id();
    assert_eq!(env.open_personal(&m1, &n.members[1].1), Err(OpenError::NotARecipient(m1)));
    // The personal data does not appear in the clear anywhere in the envelope.
    let name = pd.persons[0].name.as_bytes();
    assert!(!sealed.bytes.windows(name.len()).any(|w| w == name));
    // Without a personal section:
    let plain = channel_msg(&mut n);
    let env = Envelope::verify(&plain).unwrap();
    assert_eq!(
        env.open_personal(&n.members[0].0.node_id(), &n.members[0].1),
        Err(OpenError::NoPersonalSection)
    );
}

#[test]
fn personal_recipients_of_a_direct_message_must_be_its_recipients() {
    let mut n = net();
    let b = body();
    let pd = PersonalData { permits: vec![], ..samples::personal_data() };
    let to = n.pubs(&[0]);
    let other = n.pubs(&[1]);
    let mut d = draft(Audience::Direct(&to), &b);
    d.personal = Some((&pd, &other));
    assert!(
        matches!(seal(&mut n.rng, &n.hub, &d), Err(SealError::Header(EnvelopeError::InvalidHeader(m))) if m.contains("not a recipient"))
    );
}

#[test]
fn tlp_red_is_refused_on_a_channel() {
    let mut n = net();
    let b = body();
    let key = n.epoch_key.clone();
    let mut d = draft(Audience::Channel { id: ChannelId([5; 32]), epoch: 1, key: &key }, &b);
    d.marking = Tlp::Red;
    let err = seal(&mut n.rng, &n.hub, &d).unwrap_err();
    assert!(err.to_string().contains("TLP:RED travels only as a direct message"), "{err}");
    // And a relay refuses one that was signed anyway.
    let bytes = with_header(&channel_msg(&mut n), &n.hub, |h| h.marking = Tlp::Red);
    assert!(matches!(Envelope::verify(&bytes), Err(EnvelopeError::InvalidHeader(_))));
}

#[test]
fn invalid_content_is_refused_before_sealing() {
    let mut n = net();
    let mut s = samples::seizure_report();
    s.items.clear();
    let b = Body::new(Content::SeizureReport(s));
    let to = n.pubs(&[0]);
    assert!(matches!(
        seal(&mut n.rng, &n.hub, &draft(Audience::Direct(&to), &b)),
        Err(SealError::Content(_))
    ));
}

#[test]
fn every_single_byte_change_is_refused() {
    let mut n = net();
    let b = body();
    let to = n.pubs(&[0]);
    let sealed = seal(&mut n.rng, &n.hub, &draft(Audience::Direct(&to), &b)).unwrap();
    let (me, key) = (&n.members[0].0.node_id(), &n.members[0].1);
    for i in 0..sealed.bytes.len() {
        let mut t = sealed.bytes.clone();
        t[i] ^= 0x01;
        let opened = Envelope::verify(&t).map(|e| e.open_direct(me, key));
        assert!(!matches!(opened, Ok(Ok(_))), "byte {i} changed and still accepted");
    }
}

#[test]
fn refuses_oversize_envelope() {
    let bytes = vec![0u8; LIMITS.max_envelope_len + 1];
    assert_eq!(
        Envelope::verify(&bytes).unwrap_err(),
        EnvelopeError::TooLarge { len: LIMITS.max_envelope_len + 1, max: LIMITS.max_envelope_len }
    );
}

#[test]
fn refuses_garbage_and_untagged() {
    assert!(matches!(Envelope::verify(&[1, 2, 3]), Err(EnvelopeError::Malformed(_))));
    let mut n = net();
    let bytes = channel_msg(&mut n);
    assert!(matches!(Envelope::verify(&bytes[1..]), Err(EnvelopeError::Malformed(_))));
    let mut wrong_tag = bytes.clone();
    wrong_tag[0] = 0xd1; // tag 17 = COSE_Mac0
    assert!(matches!(Envelope::verify(&wrong_tag), Err(EnvelopeError::Malformed(_))));
}

#[test]
fn refuses_non_deterministic_encoding() {
    let mut n = net();
    let bytes = channel_msg(&mut n);
    let (p, _, _) = raw::split(&bytes).unwrap();
    // The same parts, but the 38-byte protected header length written in 2 bytes (0x59 0x00 0x26).
    let mut t = vec![0xd2, 0x84, 0x59, 0x00, 0x26];
    t.extend_from_slice(&p);
    t.extend_from_slice(&bytes[2 + 2 + p.len()..]);
    assert_eq!(Envelope::verify(&t).unwrap_err(), EnvelopeError::NotDeterministic);
}

#[test]
fn refuses_wrong_algorithm_and_extra_protected_parameters() {
    let mut n = net();
    let bytes = channel_msg(&mut n);
    let (p, payload, sig) = raw::split(&bytes).unwrap();
    let mut es256 = p.clone();
    es256[2] = 0x26; // alg -7
    assert_eq!(
        Envelope::verify(&raw::assemble(&es256, &[0xa0], Some(&payload), &sig)).unwrap_err(),
        EnvelopeError::ProtectedHeader("alg is not EdDSA (-8)")
    );
    // {1: -8, 3: 0, 4: kid}: a content type added
    let mut extra = vec![0xa3, 0x01, 0x27, 0x03, 0x00, 0x04, 0x58, 0x20];
    extra.extend_from_slice(n.hub.node_id().as_bytes());
    assert_eq!(
        Envelope::verify(&raw::assemble(&extra, &[0xa0], Some(&payload), &sig)).unwrap_err(),
        EnvelopeError::ProtectedHeader("expected exactly alg and a 32-byte kid")
    );
}

#[test]
fn refuses_unprotected_header_use() {
    let mut n = net();
    let bytes = channel_msg(&mut n);
    let (p, payload, sig) = raw::split(&bytes).unwrap();
    let unprotected = [0xa1, 0x04, 0x42, 0x31, 0x31]; // {4: h'3131'}
    assert_eq!(
        Envelope::verify(&raw::assemble(&p, &unprotected, Some(&payload), &sig)).unwrap_err(),
        EnvelopeError::UnprotectedHeader
    );
}

#[test]
fn refuses_detached_payload_and_short_signature() {
    let mut n = net();
    let bytes = channel_msg(&mut n);
    let (p, payload, sig) = raw::split(&bytes).unwrap();
    assert_eq!(
        Envelope::verify(&raw::assemble(&p, &[0xa0], None, &sig)).unwrap_err(),
        EnvelopeError::DetachedPayload
    );
    assert_eq!(
        Envelope::verify(&raw::assemble(&p, &[0xa0], Some(&payload), &sig[..63])).unwrap_err(),
        EnvelopeError::SignatureLength(63)
    );
}

#[test]
fn refuses_small_order_author_key() {
    let mut n = net();
    let mut kid = [0u8; 32];
    kid[0] = 1; // the identity point: anyone could "sign" for it
    let weak = NodeId::from_wire(kid);
    let signed = with_header(&channel_msg(&mut n), &n.hub, |h| h.author = weak);
    let (_, payload, sig) = raw::split(&signed).unwrap();
    let e =
        Envelope::verify(&raw::assemble(&raw::protected(&kid), &[0xa0], Some(&payload), &sig)).unwrap_err();
    assert!(matches!(e, EnvelopeError::AuthorKey(IdentityError::InvalidKey(_))), "{e}");
}

#[test]
fn refuses_malformed_payload() {
    let n = net();
    let bytes = resign(&n.hub, &[0x83, 0x01, 0x02, 0x03]);
    assert!(matches!(Envelope::verify(&bytes), Err(EnvelopeError::Payload(_))));
}

#[test]
fn refuses_unknown_version_by_name() {
    let mut n = net();
    let bytes = with_header(&channel_msg(&mut n), &n.hub, |h| h.v = 2);
    assert_eq!(Envelope::verify(&bytes).unwrap_err(), EnvelopeError::UnsupportedVersion { got: 2 });
    assert!(EnvelopeError::UnsupportedVersion { got: 2 }.to_string().contains("version 2 is not supported"));
}

#[test]
fn refuses_header_author_differing_from_kid() {
    let mut n = net();
    let other = n.members[0].0.node_id();
    let bytes = with_header(&channel_msg(&mut n), &n.hub, |h| h.author = other);
    assert_eq!(
        Envelope::verify(&bytes).unwrap_err(),
        EnvelopeError::AuthorMismatch { kid: n.hub.node_id(), header: other }
    );
}

#[test]
fn refuses_inconsistent_headers() {
    let mut n = net();
    let bytes = channel_msg(&mut n);
    type Edit = Box<dyn FnOnce(&mut Header)>;
    let cases: Vec<(Edit, &str)> = vec![
        (Box::new(|h| h.seq = 0), "start at 1"),
        (
            Box::new(|h| {
                h.seq = MAX_SEQ + 1;
                h.prev = Some(MessageId([1; 32]))
            }),
            "beyond the largest",
        ),
        (Box::new(|h| h.seq = 2), "must have a prev"),
        (Box::new(|h| h.prev = Some(MessageId([1; 32]))), "must not have a prev"),
        (Box::new(|h| h.expires = h.created), "not after created"),
        (Box::new(|h| h.expires = Timestamp(u64::MAX)), "longer than the"),
        (Box::new(|h| h.expires = h.created.plus_millis(MAX_LIFETIME_MS + 1)), "longer than the"),
        (Box::new(|h| h.feed = Feed::Direct(vec![])), "empty"),
    ];
    for (f, msg) in cases {
        let t = with_header(&bytes, &n.hub, f);
        match Envelope::verify(&t) {
            Err(EnvelopeError::InvalidHeader(m)) => assert!(m.contains(msg), "{m} / {msg}"),
            other => panic!("{msg}: {other:?}"),
        }
    }
}

#[test]
fn refuses_personal_keys_without_section() {
    let mut n = net();
    let bytes = channel_msg(&mut n);
    let (_, payload, _) = raw::split(&bytes).unwrap();
    let (h, b, _) = raw::decode_payload(&payload).unwrap();
    let t = resign(&n.hub, &raw::encode_payload(&h, &b, Some(b"x")));
    assert!(
        matches!(Envelope::verify(&t), Err(EnvelopeError::InvalidHeader(m)) if m.contains("both present"))
    );
}

#[test]
fn refuses_bad_signature() {
    let mut n = net();
    let mut bytes = channel_msg(&mut n);
    let last = bytes.len() - 1;
    bytes[last] ^= 0x80;
    assert_eq!(Envelope::verify(&bytes).unwrap_err(), EnvelopeError::BadSignature(n.hub.node_id()));
}

#[test]
fn ciphertext_resigned_by_another_author_does_not_open() {
    let mut n = net();
    let bytes = channel_msg(&mut n);
    let thief = IdentityKey::generate(&mut n.rng);
    let stolen = with_header(&bytes, &thief, |h| h.author = thief.node_id());
    let env = Envelope::verify(&stolen).unwrap(); // a valid signature by the thief…
    assert_eq!(env.open_channel(&n.epoch_key), Err(OpenError::Crypto(CryptoError::Decrypt))); // …but not their content
}

#[test]
fn expiry_and_priority_are_in_the_signed_header() {
    let mut n = net();
    let bytes = channel_msg(&mut n);
    let env = Envelope::verify(&bytes).unwrap();
    assert_eq!(env.header().priority, Priority::Immediate);
    assert_eq!(env.header().expires, NOW.plus_hours(24));
    assert!(Priority::Flash < Priority::Routine);
}

#[test]
fn peek_id_equals_the_verified_id_and_ignores_the_signature() {
    let mut n = net();
    let bytes = channel_msg(&mut n);
    let id = Envelope::verify(&bytes).unwrap().id();
    assert_eq!(Envelope::peek_id(&bytes), Some(id));
    // The id covers only signed bytes: a copy with a broken signature has the same id (a relay
    // answers it as a replay of what it holds; it is never stored or passed on).
    let mut bad = bytes.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert_eq!(Envelope::peek_id(&bad), Some(id));
    // Anything not in the canonical layout has no cheap id.
    assert_eq!(Envelope::peek_id(&bytes[..bytes.len() - 1]), None);
    assert_eq!(Envelope::peek_id(&[bytes.as_slice(), &[0]].concat()), None);
    assert_eq!(Envelope::peek_id(&bytes[1..]), None);
    assert_eq!(Envelope::peek_id(&[]), None);
}

#[test]
fn a_control_message_is_clear_text_without_personal_data_and_has_its_own_feed() {
    use crate::control::Kind;
    let author = IdentityKey::from_seed(&[4; 32]);
    let mut h = Header {
        v: PROTOCOL_VERSION,
        seq: 1,
        feed: Feed::Control(ControlFeed { kind: Kind::NodeCard }),
        prev: None,
        author: author.node_id(),
        created: Timestamp(1),
        expires: Timestamp(2),
        marking: Tlp::Clear,
        personal: None,
        priority: Priority::Routine,
    };
    assert_eq!(h.validate(), Ok(()));
    assert_eq!(h.feed.id(), control_feed_id(Kind::NodeCard));
    assert_ne!(control_feed_id(Kind::NodeCard), control_feed_id(Kind::ChannelState));
    h.marking = Tlp::Green;
    assert!(matches!(h.validate(), Err(EnvelopeError::InvalidHeader(m)) if m.contains("TLP:CLEAR")));
    // Opening one as a channel message says what it is.
    let record = crate::control::sign(&author, Kind::NodeCard, b"card");
    let draft = crate::message::ControlDraft {
        seq: 1,
        prev: None,
        created: Timestamp(1),
        expires: Timestamp(2),
        priority: Priority::Routine,
        record: &record,
    };
    let env = Envelope::verify(&crate::message::seal_control(&author, &draft).unwrap().bytes).unwrap();
    let key = EpochKey::generate(&mut test_rng(4));
    assert_eq!(
        env.open_channel(&key).unwrap_err(),
        OpenError::WrongMode { expected: "channel", actual: "control" }
    );
}

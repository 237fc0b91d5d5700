use super::*;
use crate::codec;
use crate::ids::MessageId;
use crate::samples;
use ciborium::Value;

/// Walks a CBOR value and asserts every map's keys are in deterministic order (RFC 8949
/// §4.2.1: bytewise order of the encoded keys).
pub(crate) fn assert_canonical(v: &Value, path: &str) {
    match v {
        Value::Map(entries) => {
            let keys: Vec<Vec<u8>> = entries.iter().map(|(k, _)| codec::to_vec(k)).collect();
            for w in keys.windows(2) {
                assert!(
                    w[0] < w[1],
                    "{path}: keys out of canonical order: {:?}",
                    entries.iter().map(|(k, _)| k).collect::<Vec<_>>()
                );
            }
            for (k, val) in entries {
                assert_canonical(val, &format!("{path}.{k:?}"));
            }
        }
        Value::Array(items) => items.iter().for_each(|i| assert_canonical(i, path)),
        Value::Tag(_, inner) => assert_canonical(inner, path),
        _ => {}
    }
}

/// Seals `body` as `author`'s first message to channel `[6; 32]` under `key`.
fn seal_on_channel(
    key: &crate::crypto::EpochKey,
    author: &crate::identity::IdentityKey,
    marking: Tlp,
    body: &Body,
    personal: Option<(&PersonalData, &[(crate::identity::NodeId, crate::identity::EncryptionPublicKey)])>,
) -> Result<crate::message::SealedMessage, crate::message::SealError> {
    let draft = crate::message::Draft {
        audience: crate::message::Audience::Channel { id: crate::ids::ChannelId([6; 32]), epoch: 1, key },
        seq: 1,
        prev: None,
        created: crate::Timestamp(2_000),
        expires: crate::Timestamp(2_000 + 86_400_000),
        priority: crate::envelope::Priority::Routine,
        marking,
        body,
        personal,
    };
    crate::message::seal(&mut rand_core::OsRng, author, &draft)
}

/// A warning signed and sealed to a channel by `[9; 32]`, marked `marking`.
fn original(marking: Tlp) -> crate::message::SealedMessage {
    let author = crate::identity::IdentityKey::from_seed(&[9; 32]);
    let key = crate::crypto::EpochKey::generate(&mut rand_core::OsRng);
    let body = Body::new(Content::Warning(samples::warning()));
    // TLP:RED travels only direct.
    let to = [(
        crate::identity::IdentityKey::from_seed(&[8; 32]).node_id(),
        crate::identity::EncryptionKey::from_secret(&[8; 32]).public(),
    )];
    let audience = if marking == Tlp::Red {
        crate::message::Audience::Direct(&to)
    } else {
        crate::message::Audience::Channel { id: crate::ids::ChannelId([5; 32]), epoch: 1, key: &key }
    };
    let draft = crate::message::Draft {
        audience,
        seq: 1,
        prev: None,
        created: crate::Timestamp(1_000),
        expires: crate::Timestamp(1_000 + 86_400_000),
        priority: crate::envelope::Priority::Immediate,
        marking,
        body: &body,
        personal: None,
    };
    crate::message::seal(&mut rand_core::OsRng, &author, &draft).unwrap()
}

/// A forward of [`original`].
fn forward_of(marking: Tlp) -> Forward {
    let o = original(marking);
    Forward {
        author: crate::identity::IdentityKey::from_seed(&[9; 32]).node_id(),
        comment: Some("For your region".into()),
        consent: None,
        content: Box::new(Content::Warning(samples::warning())),
        marking,
        envelope: o.bytes,
        original: o.id,
    }
}

fn all_bodies() -> Vec<Body> {
    let w = MessageId([1; 32]);
    let s = MessageId([2; 32]);
    vec![
        Body {
            content: Content::SeizureReport(samples::seizure_report()),
            grading: Some("B2".parse().unwrap()),
            handling: vec![HandlingCode::H1, HandlingCode::H3],
            addressees: vec!["Head of the intelligence unit".into()],
            statements: vec![GradedStatement {
                text: "The consignee is a front company.".into(),
                grading: "4x4:B3".parse().unwrap(),
            }],
            handling_note: Some("Not to be shared with the consignee's bank".into()),
        },
        Body {
            grading: Some("3x5x2:2BC".parse().unwrap()),
            ..Body::new(Content::Bulletin(samples::bulletin()))
        },
        Body::new(Content::Warning(samples::warning())),
        Body::new(Content::Feedback(samples::feedback(w, s))),
        Body::new(Content::Bulletin(samples::bulletin())),
        Body::new(Content::Forward(forward_of(Tlp::Green))),
        Body::new(Content::Retraction(Retraction {
            reason: "Duplicate of an earlier report".into(),
            target: s,
        })),
        Body::new(Content::Correction(Correction {
            reason: "Quantity was in grams, not kilograms".into(),
            target: s,
            corrected: Box::new(Content::SeizureReport(samples::seizure_report())),
        })),
        Body::new(Content::CaseFollowUp(samples::case_follow_up(s))),
        Body::new(Content::ForensicSample(samples::forensic_sample(s))),
        Body::new(Content::Receipt(Receipt {
            at: crate::Timestamp(5),
            note: None,
            status: ReceiptStatus::Actioned,
            message: w,
        })),
    ]
}

#[test]
fn every_map_is_in_canonical_key_order() {
    for b in all_bodies() {
        let v: Value = codec::from_slice_lenient("body", &b.encode()).unwrap();
        assert_canonical(&v, b.content.kind());
    }
    let p: Value = codec::from_slice_lenient("p", &codec::to_vec(&samples::personal_data())).unwrap();
    assert_canonical(&p, "personal");
    let mut pd = samples::personal_data();
    pd.permits.push(PermitPseudonym::derive(&[7; 16], "KE".parse().unwrap(), "KE 123").unwrap());
    let p: Value = codec::from_slice_lenient("p", &codec::to_vec(&pd)).unwrap();
    assert_canonical(&p, "personal");
}

#[test]
fn every_kind_round_trips_and_validates() {
    for b in all_bodies() {
        b.validate().unwrap_or_else(|e| panic!("{}: {e}", b.content.kind()));
        assert_eq!(Body::decode(&b.encode()).unwrap(), b);
    }
    let p = samples::personal_data();
    assert_eq!(PersonalData::decode(&codec::to_vec(&p)).unwrap(), p);
}

fn seizure_with(f: impl FnOnce(&mut SeizureReport)) -> Body {
    let mut s = samples::seizure_report();
    f(&mut s);
    Body::new(Content::SeizureReport(s))
}

fn field_of(b: &Body) -> String {
    match b.validate() {
        Err(ContentError::Invalid { field, .. }) => field,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn validation_errors_name_the_field() {
    assert_eq!(field_of(&seizure_with(|s| s.items.clear())), "seizure_report.items");
    assert_eq!(
        field_of(&seizure_with(|s| s.items[1].taxon.scientific = "pangolin".into())),
        "seizure_report.items[1].taxon.scientific"
    );
    assert_eq!(
        field_of(&seizure_with(|s| s.items[0].quantity = Some("0".parse().unwrap()))),
        "seizure_report.items[0].quantity"
    );
    assert_eq!(field_of(&seizure_with(|s| s.place.name = " ".into())), "seizure_report.place.name");
    assert_eq!(
        field_of(&seizure_with(|s| s.route.transit = vec!["KE".parse().unwrap(); 65])),
        "seizure_report.route.transit"
    );
    assert_eq!(field_of(&seizure_with(|s| s.narrative = Some("a\u{7}b".into()))), "seizure_report.narrative");
    assert_eq!(
        field_of(&seizure_with(|s| s.attachments[0].data = vec![0; LIMITS.max_attachment_len + 1])),
        "seizure_report.attachments[0].data"
    );
    assert_eq!(
        field_of(&seizure_with(|s| s.attachments[0].data.clear())),
        "seizure_report.attachments[0].data"
    );
    assert_eq!(
        field_of(&seizure_with(|s| s.attachments = vec![s.attachments[0].clone(); 9])),
        "seizure_report.attachments"
    );
    let big = Attachment {
        data: vec![1; LIMITS.max_attachment_len],
        name: None,
        media: "image/png".parse().unwrap(),
    };
    assert_eq!(field_of(&seizure_with(|s| s.attachments = vec![big; 4])), "seizure_report.attachments");
    let e =
        seizure_with(|s| s.items[0].taxon.scientific = "loxodonta africana".into()).validate().unwrap_err();
    assert!(e.to_string().contains("is not a scientific name"), "{e}");
}

use crate::limits::LIMITS;

#[test]
fn scientific_names_follow_the_usual_forms() {
    for good in [
        "Loxodonta",
        "Loxodonta africana",
        "Manis spp.",
        "Crocodylus niloticus niloticus",
        "Python bivittatus",
    ] {
        // (Line 2: line 1's ivory pieces are for elephants only.)
        let b = seizure_with(|s| s.items[1].taxon.scientific = good.into());
        assert!(b.validate().is_ok(), "{good}");
    }
    for bad in [
        "",
        "L",
        "loxodonta",
        "Loxodonta Africana",
        "Loxodonta  africana",
        "Manis spp. x",
        "Manis africana spp.",
    ] {
        let b = seizure_with(|s| s.items[0].taxon.scientific = bad.into());
        assert!(b.validate().is_err(), "{bad:?}");
    }
}

#[test]
fn feedback_with_seized_outcome_must_link_the_seizure() {
    let mut fb = samples::feedback(MessageId([1; 32]), MessageId([2; 32]));
    fb.seizure = None;
    assert_eq!(field_of(&Body::new(Content::Feedback(fb))), "feedback.seizure");
}

#[test]
fn forwards_and_corrections_nest_one_substantive_level_only() {
    let inner = Content::Receipt(Receipt {
        at: crate::Timestamp(1),
        note: None,
        status: ReceiptStatus::Read,
        message: MessageId([1; 32]),
    });
    let fwd = |content| {
        Content::Forward(Forward {
            author: crate::identity::IdentityKey::from_seed(&[1; 32]).node_id(),
            comment: None,
            consent: None,
            content: Box::new(content),
            marking: Tlp::Clear,
            envelope: Vec::new(),
            original: MessageId([3; 32]),
        })
    };
    assert_eq!(field_of(&Body::new(fwd(inner))), "forward.content");
    assert_eq!(field_of(&Body::new(fwd(fwd(Content::Warning(samples::warning()))))), "forward.content");
}

#[test]
fn personal_data_validation() {
    assert_eq!(
        PersonalData::default().validate(),
        Err(ContentError::Invalid {
            field: "personal".into(),
            problem: "an empty personal-data section must be left out".into()
        })
    );
    let mut p = samples::personal_data();
    p.persons[0].name = String::new();
    assert!(
        matches!(p.validate(), Err(ContentError::Invalid { field, .. }) if field == "personal.persons[0].name")
    );
    let mut p = samples::personal_data();
    p.companies[0].registration = Some("x".repeat(300));
    assert!(
        matches!(p.validate(), Err(ContentError::Invalid { field, .. }) if field == "personal.companies[0].registration")
    );
}

#[test]
fn permit_pseudonyms_are_stable_salted_and_normalised() {
    let ke: Country = "KE".parse().unwrap();
    let a = PermitPseudonym::derive(&[1; 16], ke, "ke 2026/123").unwrap();
    assert_eq!(a, PermitPseudonym::derive(&[1; 16], ke, "KE2026/123").unwrap());
    assert_ne!(a, PermitPseudonym::derive(&[2; 16], ke, "KE2026/123").unwrap());
    assert_ne!(a, PermitPseudonym::derive(&[1; 16], "TZ".parse().unwrap(), "KE2026/123").unwrap());
    assert!(PermitPseudonym::derive(&[1; 8], ke, "x").is_err());
}

#[test]
fn decoding_refuses_unknown_fields_and_bad_codes() {
    // A body whose grading is "Z9" (not Admiralty) is refused while decoding.
    let mut b = Body::new(Content::Receipt(Receipt {
        at: crate::Timestamp(1),
        note: None,
        status: ReceiptStatus::Read,
        message: MessageId([1; 32]),
    }));
    b.grading = Some("A1".parse().unwrap());
    let mut bytes = b.encode();
    let pos = bytes.windows(2).position(|w| w == b"A1").unwrap();
    bytes[pos..pos + 2].copy_from_slice(b"Z9");
    let e = Body::decode(&bytes).unwrap_err();
    assert!(e.to_string().contains("is not a grading: Admiralty B2"), "{e}");
    // An extra field is refused.
    let mut v: Value = codec::from_slice_lenient("b", &b.encode()).unwrap();
    if let Value::Map(m) = &mut v {
        m.push((Value::Text("zz_extra".into()), Value::Bool(true)));
    }
    assert!(matches!(Body::decode(&codec::to_vec(&v)), Err(ContentError::Codec(_))));
}

#[test]
fn attachment_hash_is_sha256_of_the_bytes() {
    let a = &samples::seizure_report().attachments[0];
    use sha2::Digest;
    assert_eq!(a.sha256(), <[u8; 32]>::from(sha2::Sha256::digest(&a.data)));
}

#[test]
fn codes_are_shown_with_their_meaning() {
    let c = |s: &str| s.parse::<Country>().unwrap();
    assert_eq!((c("KE").name(), c("TZ").name(), c("CN").name()), ("Kenya", "Tanzania", "China"));
    let names = country_names::COUNTRY_NAMES;
    assert!(names.windows(2).all(|w| w[0].0 < w[1].0), "sorted for the binary search");
    assert_eq!(names.len(), 249);
    assert!(names.iter().all(|(code, name)| code.parse::<Country>().is_ok() && !name.is_empty()));
    let hs = |s: &str| s.parse::<HsCode>().unwrap().description();
    assert_eq!(hs("050710"), "ivory; ivory powder and waste, unworked");
    assert_eq!(hs("05079010"), hs("050790"), "a longer code falls back to its subheading");
    assert!(hs("9601").starts_with("worked ivory"), "{}", hs("9601"));
    assert!(hs("8703").starts_with("Motor cars"), "a heading without a short name has its HS 2022 text");
    assert!(hs("87").starts_with("vehicles"), "{}", hs("87"));
    assert_eq!(hs("9801"), "", "a national chapter");
    let table = hs_names::HS_NAMES;
    assert!(table.windows(2).all(|w| w[0].0 < w[1].0), "sorted for the binary search");
    assert!(table.iter().all(|(code, _)| code.parse::<HsCode>().is_ok()));
    assert_eq!(table.iter().filter(|(code, _)| code.len() == 2).count(), 96, "every chapter but 77");
}

#[test]
fn a_seizure_line_has_a_quantity_or_says_it_is_unknown_and_measures_are_other_units() {
    let line = |f: fn(&mut SeizedItem)| field_of(&seizure_with(|s| f(&mut s.items[0])));
    assert_eq!(line(|i| i.quantity = None), "seizure_report.items[0].quantity");
    assert_eq!(line(|i| i.amount_unknown = true), "seizure_report.items[0].amount_unknown");
    let unknown = seizure_with(|s| {
        s.items[0].quantity = None;
        s.items[0].amount_unknown = true;
    });
    unknown.validate().unwrap();
    assert_eq!(line(|i| i.measures[0].unit = i.unit), "seizure_report.items[0].measures[0].unit");
    assert_eq!(
        line(|i| i.measures[0].amount = "0".parse().unwrap()),
        "seizure_report.items[0].measures[0].amount"
    );
    assert_eq!(line(|i| i.live = Some(3)), "seizure_report.items[0].live", "tusks are not alive");
    assert_eq!(
        field_of(&seizure_with(|s| s.items[1].ivory = Some(IvoryPieces::default()))),
        "seizure_report.items[1].ivory",
        "pangolin scales are not ivory"
    );
}

#[test]
fn coded_places_and_shipments_are_checked_against_each_other() {
    assert_eq!(
        field_of(&seizure_with(|s| s.place.locode = Some("TZDAR".parse().unwrap()))),
        "seizure_report.place.locode"
    );
    assert_eq!(
        field_of(&seizure_with(|s| s.place.iata = Some("EBB".parse().unwrap()))),
        "seizure_report.place.iata"
    );
    assert_eq!(
        field_of(&seizure_with(
            |s| s.place.coordinates = Some(Coordinates { lat: "100".into(), lon: "0".into() })
        )),
        "seizure_report.place.coordinates"
    );
    assert_eq!(
        field_of(&seizure_with(|s| s.shipment.push(TransportRef::BillOfLading("lower case".into())))),
        "seizure_report.shipment[3]"
    );
    // An air waybill with a wrong check digit does not even decode.
    let b = Body::new(Content::SeizureReport(samples::seizure_report())).encode();
    let pos = b.windows(12).position(|w| w == b"176-12345675").unwrap();
    let mut bad = b.clone();
    bad[pos + 11] = b'4';
    let e = Body::decode(&bad).unwrap_err().to_string();
    assert!(e.contains("check digit is 4") && e.contains("gives 5"), "{e}");
}

#[test]
fn case_follow_ups_and_forensic_samples_are_checked() {
    let s = MessageId([2; 32]);
    let case = |f: fn(&mut CaseFollowUp)| {
        let mut c = samples::case_follow_up(s);
        f(&mut c);
        field_of(&Body::new(Content::CaseFollowUp(c)))
    };
    assert_eq!(case(|c| c.penalties[0].amount = None), "case_follow_up.penalties[0]");
    assert_eq!(case(|c| c.penalties[1].months = None), "case_follow_up.penalties[1]");
    assert_eq!(case(|c| c.penalties.clear()), "case_follow_up.penalties");
    assert_eq!(case(|c| c.charges.push(String::new())), "case_follow_up.charges[1]");
    let sample = |f: fn(&mut ForensicSample)| {
        let mut x = samples::forensic_sample(s);
        f(&mut x);
        field_of(&Body::new(Content::ForensicSample(x)))
    };
    assert_eq!(sample(|x| x.samples = 0), "forensic_sample.samples");
    assert_eq!(sample(|x| x.line = Some(0)), "forensic_sample.line");
    assert_eq!(sample(|x| x.result = None), "forensic_sample.result");
    assert_eq!(sample(|x| x.completed = Some("2026-01-01".parse().unwrap())), "forensic_sample.completed");
    // Neither nests inside a forward.
    let fw = Body::new(Content::Forward(Forward {
        author: crate::identity::IdentityKey::from_seed(&[9; 32]).node_id(),
        comment: None,
        consent: None,
        content: Box::new(Content::CaseFollowUp(samples::case_follow_up(s))),
        marking: Tlp::Green,
        envelope: Vec::new(),
        original: s,
    }));
    assert_eq!(field_of(&fw), "forward.content");
}

#[test]
fn currencies_are_iso_4217() {
    assert_eq!("KES".parse::<Currency>().unwrap().name(), "Kenyan Shilling");
    assert!("ABC".parse::<Currency>().is_err(), "three letters are not enough");
}

#[test]
fn a_grading_is_read_in_its_own_scheme() {
    let admiralty: Grading = "B3".parse().unwrap();
    let europol: Grading = "4x4:B3".parse().unwrap();
    assert_eq!((admiralty.scheme(), europol.scheme()), (GradingScheme::Admiralty, GradingScheme::Europol4x4));
    assert!(admiralty.explain().contains("possibly true"));
    assert!(!europol.explain().contains("possibly true"), "a Europol B3 is not an Admiralty B3");
    assert!(europol.explain().contains("corroborated"), "{}", europol.explain());
    let uk: Grading = "3x5x2:1AP".parse().unwrap();
    assert_eq!((uk.reliability(), uk.credibility(), uk.handling()), ('1', 1, Some('P')));
    assert!(uk.explain().contains("lawful sharing permitted"), "{}", uk.explain());
    for bad in ["G1", "B7", "4x4:D1", "4x4:B5", "3x5x2:4AP", "3x5x2:1FP", "3x5x2:1A", "b2", "4X4:B3"] {
        let e = bad.parse::<Grading>().unwrap_err().to_string();
        assert!(e.contains("is not a grading"), "{bad}: {e}");
    }
}

#[test]
fn handling_codes_are_listed_once_and_h3_says_what_it_restricts() {
    let with = |handling: Vec<HandlingCode>, note: Option<&str>| {
        let b = Body {
            handling,
            handling_note: note.map(Into::into),
            ..Body::new(Content::Bulletin(samples::bulletin()))
        };
        b.validate().err().map(|e| e.to_string())
    };
    assert_eq!(with(vec![HandlingCode::H1, HandlingCode::H2], None), None);
    assert!(with(vec![HandlingCode::H2, HandlingCode::H1], None).unwrap().contains("body.handling"));
    assert!(with(vec![HandlingCode::H0, HandlingCode::H1], None).unwrap().contains("H0"));
    assert!(with(vec![HandlingCode::H3], None).unwrap().contains("body.handling_note"));
    assert!(with(vec![], Some("x")).unwrap().contains("body.handling_note"));
    assert_eq!(with(vec![HandlingCode::H3], Some("only for the case file")), None);
}

#[test]
fn a_forward_carries_its_verified_original_and_never_widens_a_strict_marking() {
    let ok = |f: Forward| Body::new(Content::Forward(f)).validate().err().map(|e| e.to_string());
    assert_eq!(ok(forward_of(Tlp::Green)), None);
    let mut f = forward_of(Tlp::Green);
    let last = f.envelope.len() - 1;
    f.envelope[last] ^= 1;
    assert!(ok(f).unwrap().contains("forward.envelope"), "a tampered original does not verify");
    let mut f = forward_of(Tlp::Green);
    f.original = MessageId([1; 32]);
    assert!(ok(f).unwrap().contains("not the original"));
    let mut f = forward_of(Tlp::Green);
    f.marking = Tlp::Clear;
    assert!(ok(f).unwrap().contains("the original is marked TLP:GREEN"));
    let mut f = forward_of(Tlp::Green);
    f.author = crate::identity::IdentityKey::from_seed(&[1; 32]).node_id();
    assert!(ok(f).unwrap().contains("forward.author"));
    for never in [Tlp::Red, Tlp::AmberStrict] {
        assert!(ok(forward_of(never)).unwrap().contains("is never forwarded"), "{never}");
    }
    assert!(ok(forward_of(Tlp::Amber)).unwrap().contains("forward.consent"));
    let mut f = forward_of(Tlp::Amber);
    f.consent = Some(Consent { by: f.author, message: MessageId([4; 32]) });
    assert_eq!(ok(f.clone()), None, "AMBER with the originator's consent");
    f.consent = Some(Consent {
        by: crate::identity::IdentityKey::from_seed(&[1; 32]).node_id(),
        message: MessageId([4; 32]),
    });
    assert!(ok(f).unwrap().contains("original author's"));
}

#[test]
fn a_forward_marked_less_strictly_than_its_original_does_not_open() {
    let key = crate::crypto::EpochKey::generate(&mut rand_core::OsRng);
    let author = crate::identity::IdentityKey::from_seed(&[3; 32]);
    let body = Body::new(Content::Forward(forward_of(Tlp::Green)));
    let seal_as = |marking| {
        let sealed = seal_on_channel(&key, &author, marking, &body, None).unwrap();
        crate::envelope::Envelope::verify(&sealed.bytes).unwrap().open_channel(&key)
    };
    assert!(seal_as(Tlp::Green).is_ok());
    assert!(seal_as(Tlp::Amber).is_ok(), "stricter is allowed");
    let e = seal_as(Tlp::Clear).unwrap_err();
    assert!(
        matches!(e, crate::message::OpenError::LoosenedMarking { original: Tlp::Green, forward: Tlp::Clear }),
        "{e}"
    );
}

#[test]
fn a_route_goes_point_by_point_in_order_and_agrees_with_its_countries() {
    let with = |f: fn(&mut Route)| field_of(&seizure_with(|s| f(&mut s.route)));
    assert_eq!(with(|r| r.points.swap(0, 3)), "seizure_report.route.points[1]");
    assert_eq!(with(|r| r.destination = Some("CN".parse().unwrap())), "seizure_report.route.destination");
    assert_eq!(
        with(|r| r.points[1].at = RouteLocation::Region(String::new())),
        "seizure_report.route.points[1].at"
    );
    // An unknown origin, the high seas and a region are route points like any other.
    let ok = seizure_with(|s| {
        s.route.points.insert(0, RoutePoint { at: RouteLocation::Unknown, role: RouteRole::Origin });
        s.route.points.insert(2, RoutePoint { at: RouteLocation::HighSeas, role: RouteRole::Transit });
        s.route.points.insert(
            3,
            RoutePoint { at: RouteLocation::Region("Gulf of Aden".into()), role: RouteRole::Transit },
        );
    });
    ok.validate().unwrap();
    assert_eq!(Body::decode(&ok.encode()).unwrap(), ok);
}

#[test]
fn a_personal_section_carries_its_own_stricter_marking_legal_basis_and_retention() {
    let key = crate::crypto::EpochKey::generate(&mut rand_core::OsRng);
    let author = crate::identity::IdentityKey::from_seed(&[3; 32]);
    let reader = crate::identity::IdentityKey::from_seed(&[4; 32]).node_id();
    let enc = crate::identity::EncryptionKey::from_secret(&[4; 32]);
    let to = [(reader, enc.public())];
    let body = Body::new(Content::SeizureReport(samples::seizure_report()));
    let seal_with = |personal: Option<Tlp>| {
        let mut p = samples::personal_data();
        p.marking = personal;
        seal_on_channel(&key, &author, Tlp::Amber, &body, Some((&p, &to)))
    };
    let sealed = seal_with(Some(Tlp::AmberStrict)).unwrap();
    let opened =
        crate::envelope::Envelope::verify(&sealed.bytes).unwrap().open_personal(&reader, &enc).unwrap();
    assert_eq!(opened.marking, Some(Tlp::AmberStrict));
    assert!(opened.legal_basis.as_deref().unwrap().contains("Nairobi Convention"));
    assert_eq!(opened.retain_until.unwrap().as_str(), "2031-11-20");
    let e = seal_with(Some(Tlp::Green)).unwrap_err().to_string();
    assert!(e.contains("personal.marking") && e.contains("looser"), "{e}");
}

#[test]
fn an_hs_code_outside_hs_2022_is_read_as_received_and_refused_when_written() {
    let b = seizure_with(|s| s.items[0].hs_actual = Some("050720".parse().unwrap()));
    // Received: it opens (a code of another edition still reads).
    assert_eq!(Body::decode(&b.encode()).unwrap(), b);
    // Written: refused, naming the field and the missing subheading.
    match b.validate_authored() {
        Err(ContentError::Invalid { field, problem }) => {
            assert_eq!(field, "seizure_report.items[0].hs_actual");
            assert!(problem.contains("no subheading 050720"), "{problem}");
        }
        other => panic!("{other:?}"),
    }
    let corrected = Body::new(Content::Correction(Correction {
        reason: "the subheading".into(),
        target: MessageId([7; 32]),
        corrected: Box::new(b.content.clone()),
    }));
    assert!(corrected.validate().is_ok());
    assert!(corrected.validate_authored().is_err(), "a correction is checked like what it corrects");
    assert!(seizure_with(|_| ()).validate_authored().is_ok());
}

//! Property tests: every type round-trips through its encoding, and arbitrary bytes never panic
//! a decoder.

#![allow(clippy::unwrap_used, clippy::type_complexity)] // test code: a panic is the failure report

use godwit_protocol::codec;
use godwit_protocol::content::*;
use godwit_protocol::crypto::{ChannelKey, EpochKey};
use godwit_protocol::envelope::{Envelope, Priority};
use godwit_protocol::frame::{FrameDecoder, encode_frame};
use godwit_protocol::identity::{EncryptionKey, IdentityKey, NodeCard, NodeId};
use godwit_protocol::ids::{ChannelId, MessageId};
use godwit_protocol::message::{Audience, Draft, seal};
use godwit_protocol::{Timestamp, samples};
use proptest::prelude::*;
use rand_core::SeedableRng;

fn rng(seed: u64) -> rand_chacha::ChaCha20Rng {
    rand_chacha::ChaCha20Rng::seed_from_u64(seed)
}

fn pick<T: Clone + std::fmt::Debug + 'static>(all: Vec<T>) -> impl Strategy<Value = T> {
    proptest::sample::select(all)
}

fn country() -> impl Strategy<Value = Country> {
    pick(
        ["KE", "VN", "CN", "NG", "TH", "FR", "BE", "ZA", "MZ", "UG"]
            .iter()
            .map(|c| c.parse().unwrap())
            .collect(),
    )
}

fn text() -> impl Strategy<Value = String> {
    "[A-Za-z0-9 ,.()/-]{0,40}[A-Za-z0-9]"
}

fn amount() -> impl Strategy<Value = Amount> {
    (0u64..1_000_000_000, proptest::option::of(1u32..999_999)).prop_map(|(i, f)| {
        let s = match f {
            Some(f) => format!("{i}.{}", format!("{f:06}").trim_end_matches('0')),
            None => i.to_string(),
        };
        s.parse().unwrap()
    })
}

fn taxon() -> impl Strategy<Value = Taxon> {
    (proptest::option::of(text()), "[A-Z][a-z]{2,12}( [a-z]{3,12}){0,2}")
        .prop_map(|(common, scientific)| Taxon { common, scientific })
}

fn hs() -> impl Strategy<Value = HsCode> {
    pick(
        ["0106", "0301", "050710", "050790", "0508", "0510", "4403", "9601", "96011000"]
            .iter()
            .map(|c| c.parse().unwrap())
            .collect(),
    )
}

fn item() -> impl Strategy<Value = SeizedItem> {
    (
        pick(TermCode::all().collect()),
        proptest::option::of(pick(UnitCode::all().collect())),
        taxon(),
        proptest::option::of(pick(SourceCode::all().collect())),
        proptest::option::of(pick(PurposeCode::all().collect())),
        proptest::option::of(pick(vec![Appendix::I, Appendix::II, Appendix::III])),
        proptest::option::of(amount().prop_filter("non-zero", |a| a.as_str() != "0")),
        proptest::option::of(hs()),
        proptest::option::of(hs()),
        1u32..100_000,
    )
        .prop_map(
            |(term, unit, taxon, source, purpose, appendix, quantity, hs_actual, hs_declared, count)| {
                // A weight comes with its count of specimens; a missing quantity is "amount unknown".
                let measures = match unit {
                    Some(_) => vec![Measure { unit: None, amount: count.to_string().parse().unwrap() }],
                    None => vec![],
                };
                SeizedItem {
                    dead: None,
                    live: None,
                    term,
                    unit,
                    ivory: None,
                    taxon,
                    source,
                    purpose,
                    appendix,
                    measures,
                    amount_unknown: quantity.is_none(),
                    quantity,
                    hs_actual,
                    hs_declared,
                }
            },
        )
}

/// An air waybill with its check digit computed, and a flight.
fn shipment() -> impl Strategy<Value = Vec<TransportRef>> {
    (100u32..999, 0u32..10_000_000, "[A-Z]{2}", 1u32..9999).prop_map(|(prefix, serial, airline, number)| {
        let awb = format!("{prefix:03}-{serial:07}{}", serial % 7);
        vec![
            TransportRef::AirWaybill(awb.parse().unwrap()),
            TransportRef::Flight(Flight {
                date: "2026-11-20".parse().unwrap(),
                number: number.to_string(),
                airline,
            }),
        ]
    })
}

fn route() -> impl Strategy<Value = Route> {
    (
        proptest::option::of(country()),
        proptest::collection::vec(country(), 0..4),
        proptest::option::of(country()),
        proptest::option::of(country()),
    )
        .prop_map(|(origin, transit, departure, destination)| Route {
            // The same route point by point, with the high seas between transit and departure.
            points: origin
                .iter()
                .map(|c| (RouteLocation::Country(*c), RouteRole::Origin))
                .chain(transit.iter().map(|c| (RouteLocation::Country(*c), RouteRole::Transit)))
                .chain([(RouteLocation::HighSeas, RouteRole::Transit)])
                .chain(departure.iter().map(|c| (RouteLocation::Country(*c), RouteRole::Departure)))
                .chain(destination.iter().map(|c| (RouteLocation::Country(*c), RouteRole::Destination)))
                .map(|(at, role)| RoutePoint { at, role })
                .collect(),
            origin,
            transit,
            departure,
            destination,
        })
}

fn seizure() -> impl Strategy<Value = SeizureReport> {
    (
        proptest::collection::vec(item(), 1..4),
        route(),
        proptest::option::of(text()),
        any::<bool>(),
        any::<bool>(),
        proptest::option::of(amount().prop_filter("non-zero", |a| a.as_str() != "0")),
        shipment(),
    )
        .prop_map(|(items, route, narrative, oc, corr, value, shipment)| SeizureReport {
            items,
            route,
            narrative,
            shipment,
            indicators: Indicators {
                value: value.map(|amount| Money { amount, currency: "USD".parse().unwrap() }),
                corruption: corr,
                value_date: None,
                value_basis: None,
                organised_crime: oc,
            },
            ..samples::seizure_report()
        })
}

fn content() -> impl Strategy<Value = Content> {
    prop_oneof![
        seizure().prop_map(Content::SeizureReport),
        (text(), proptest::collection::vec(taxon(), 0..3), proptest::collection::vec(hs(), 0..3), route())
            .prop_map(|(title, species, hs_codes, route)| Content::Warning(Warning {
                title,
                species,
                hs_codes,
                route,
                ..samples::warning()
            })),
        (text(), any::<[u8; 32]>())
            .prop_map(|(reason, t)| Content::Retraction(Retraction { reason, target: MessageId(t) })),
        (any::<[u8; 32]>(), 0u32..50, proptest::collection::vec(text(), 0..3)).prop_map(
            |(s, arrests, charges)| {
                Content::CaseFollowUp(CaseFollowUp {
                    arrests,
                    charges,
                    ..samples::case_follow_up(MessageId(s))
                })
            }
        ),
        (any::<[u8; 32]>(), 1u32..1000, proptest::collection::vec(country(), 0..3)).prop_map(
            |(s, samples, origin)| {
                Content::ForensicSample(ForensicSample {
                    samples,
                    origin,
                    ..samples::forensic_sample(MessageId(s))
                })
            }
        ),
        (
            any::<u64>(),
            pick(vec![ReceiptStatus::Delivered, ReceiptStatus::Read, ReceiptStatus::Actioned]),
            any::<[u8; 32]>()
        )
            .prop_map(|(at, status, m)| Content::Receipt(Receipt {
                at: Timestamp(at),
                note: None,
                status,
                message: MessageId(m)
            })),
    ]
}

fn grading() -> impl Strategy<Value = Grading> {
    ("[A-F]", 1u8..=6).prop_map(|(r, c)| Grading::new(r.chars().next().unwrap(), c).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// No text, however malformed (multi-byte characters where ASCII is expected, any length),
    /// makes a code or identifier parser panic: each says no by name.
    #[test]
    fn identifier_and_code_parsers_refuse_any_text_without_panicking(s in "([A-Z0-9:x.\\- ]|é|д|\\PC){0,14}") {
        let _ = s.parse::<AirWaybill>();
        let _ = AirWaybill::parse_lenient(&s);
        let _ = s.parse::<ContainerNumber>();
        let _ = ContainerNumber::parse_lenient(&s);
        let _ = s.parse::<ImoNumber>();
        let _ = s.parse::<PostalItem>();
        let _ = PostalItem::parse_lenient(&s);
        let _ = s.parse::<UnLocode>();
        let _ = s.parse::<IataAirport>();
        let _ = s.parse::<Grading>();
        let _ = s.parse::<Currency>();
        let _ = s.parse::<Country>();
        let _ = s.parse::<Date>();
        let _ = s.parse::<Amount>();
        let _ = Coordinates { lat: s.clone(), lon: s.clone() }.check();
    }

    #[test]
    fn body_round_trips(content in content(), grading in proptest::option::of(grading())) {
        let b = Body { grading, ..Body::new(content) };
        b.validate().unwrap();
        prop_assert_eq!(Body::decode(&b.encode()).unwrap(), b);
    }

    #[test]
    fn codes_round_trip_through_text(c in country(), h in hs(), a in amount(), g in grading(),
                                     y in 1900u16..2100, m in 1u8..=12, d in 1u8..=28) {
        prop_assert_eq!(c.to_string().parse::<Country>().unwrap(), c);
        prop_assert_eq!(h.to_string().parse::<HsCode>().unwrap(), h.clone());
        prop_assert_eq!(a.to_string().parse::<Amount>().unwrap(), a.clone());
        prop_assert_eq!(g.to_string().parse::<Grading>().unwrap(), g);
        let date = Date::new(y, m, d).unwrap();
        prop_assert_eq!(date.to_string().parse::<Date>().unwrap(), date);
        prop_assert_eq!(date.ymd(), (y, m, d));
        for t in [Tlp::Red, Tlp::AmberStrict, Tlp::Amber, Tlp::Green, Tlp::Clear] {
            prop_assert_eq!(t.to_string().parse::<Tlp>().unwrap(), t);
            prop_assert_eq!(Tlp::parse_lenient(&t.to_string().to_lowercase()).unwrap(), t);
        }
    }

    #[test]
    fn ids_round_trip(seed in any::<[u8; 32]>(), raw in any::<[u8; 32]>()) {
        let id = IdentityKey::from_seed(&seed).node_id();
        prop_assert_eq!(id.to_string().parse::<NodeId>().unwrap(), id);
        prop_assert_eq!(codec::from_slice::<NodeId>("id", &codec::to_vec(&id)).unwrap(), id);
        let m = MessageId(raw);
        prop_assert_eq!(m.to_string().parse::<MessageId>().unwrap(), m);
        prop_assert_eq!(codec::from_slice::<MessageId>("id", &codec::to_vec(&m)).unwrap(), m);
    }

    #[test]
    fn messages_round_trip_through_seal_and_verify(
        content in content(), seq in 1u64..1000, created in 0u64..4_000_000_000_000, ttl in 1u64..10_000_000,
        flash in any::<bool>(), direct in any::<bool>(), n in 1usize..4, seed in any::<u64>(),
    ) {
        let mut r = rng(seed);
        let author = IdentityKey::generate(&mut r);
        let members: Vec<(IdentityKey, EncryptionKey)> = (0..n).map(|_| (IdentityKey::generate(&mut r), EncryptionKey::generate(&mut r))).collect();
        let pubs: Vec<_> = members.iter().map(|(i, e)| (i.node_id(), e.public())).collect();
        let key = EpochKey::generate(&mut r);
        let body = Body::new(content);
        let audience = if direct { Audience::Direct(&pubs) } else { Audience::Channel { id: ChannelId([3; 32]), epoch: seq, key: &key } };
        let d = Draft {
            audience, seq, prev: (seq > 1).then_some(MessageId([1; 32])),
            created: Timestamp(created), expires: Timestamp(created + ttl),
            priority: if flash { Priority::Flash } else { Priority::Routine },
            marking: if direct { Tlp::Red } else { Tlp::Green }, body: &body, personal: None,
        };
        let sealed = seal(&mut r, &author, &d).unwrap();
        let env = Envelope::verify(&sealed.bytes).unwrap();
        prop_assert_eq!(env.id(), sealed.id);
        prop_assert_eq!(env.header().seq, seq);
        for (id, enc) in &members {
            let opened = if direct { env.open_direct(&id.node_id(), enc).unwrap() } else { env.open_channel(&key).unwrap() };
            prop_assert_eq!(&opened, &body);
        }
    }

    #[test]
    fn node_cards_round_trip(seed in any::<u64>(), port in 1u16.., versions in proptest::collection::btree_set(1u16..20, 1..5)) {
        let mut r = rng(seed);
        let key = IdentityKey::generate(&mut r);
        let card = NodeCard {
            format: 1, id: key.node_id(), not_after: Timestamp(2_000), not_before: Timestamp(1_000),
            encryption_key: EncryptionKey::generate(&mut r).public(), cert: Vec::new(),
            addresses: vec![format!("127.0.0.1:{port}")], versions: versions.into_iter().collect(),
        };
        prop_assert_eq!(NodeCard::verify(&card.sign(&key).unwrap(), Timestamp(1_000)).unwrap(), card);
    }

    #[test]
    fn frames_round_trip(bodies in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..300), 1..5), chunk in 1usize..64) {
        let wire: Vec<u8> = bodies.iter().flat_map(|b| encode_frame(b, 1024).unwrap()).collect();
        let mut d = FrameDecoder::new(1024);
        let mut got = Vec::new();
        for c in wire.chunks(chunk) {
            d.push(c);
            while let Some(f) = d.next_frame().unwrap() { got.push(f); }
        }
        prop_assert_eq!(got, bodies);
    }

    // ---- arbitrary bytes never panic a decoder ------------------------------------------

    #[test]
    fn arbitrary_bytes_never_panic_decoders(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = Envelope::verify(&bytes);
        let _ = Body::decode(&bytes);
        let _ = PersonalData::decode(&bytes);
        let _ = NodeCard::verify(&bytes, Timestamp(0));
        let _ = ChannelKey::verify(&bytes);
        let _ = codec::from_slice::<ciborium::Value>("any", &bytes);
        let mut d = FrameDecoder::new(1024);
        d.push(&bytes);
        while let Ok(Some(_)) = d.next_frame() {}
        let _ = d.finish();
        let text = String::from_utf8_lossy(&bytes);
        let _ = text.parse::<NodeId>();
        let _ = text.parse::<Date>();
        let _ = text.parse::<Amount>();
        let _ = HsCode::parse_lenient(&text);
        let _ = Tlp::parse_lenient(&text);
    }

    #[test]
    fn mutated_envelopes_never_panic_and_never_open(seed in any::<u64>(), flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..), 1..4)) {
        let mut r = rng(seed);
        let author = IdentityKey::generate(&mut r);
        let key = EpochKey::generate(&mut r);
        let body = Body::new(Content::SeizureReport(samples::seizure_report()));
        let d = Draft { audience: Audience::Channel { id: ChannelId([1; 32]), epoch: 1, key: &key }, seq: 1, prev: None,
            created: Timestamp(0), expires: Timestamp(10), priority: Priority::Routine, marking: Tlp::Amber, body: &body, personal: None };
        let mut bytes = seal(&mut r, &author, &d).unwrap().bytes;
        for (i, x) in flips {
            let i = i.index(bytes.len());
            bytes[i] ^= x;
        }
        let opened = Envelope::verify(&bytes).map(|e| e.open_channel(&key));
        prop_assert!(!matches!(opened, Ok(Ok(_))));
    }
}

//! Realistic example content: what the demo sends and what tests and benchmarks use.
//!
//! The values are invented but shaped like real CENcomm and RILO products (species, CITES
//! codes, HS headings and routes of actual trafficking patterns).

use crate::content::*;
use crate::ids::MessageId;

fn taxon(scientific: &str, common: &str) -> Taxon {
    Taxon { common: Some(common.to_owned()), scientific: scientific.to_owned() }
}

fn code<T: std::str::FromStr>(s: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    // Invariant: every code below is on its list (tests exercise all of them).
    s.parse().expect("sample codes are valid")
}

/// A seizure of raw ivory and pangolin scales found by X-ray in air cargo at Nairobi, declared
/// as "bone handicrafts" under 0507.10: 38 tusks of 412.5 kg on air waybill 176-12345675,
/// flight KQ 860.
pub fn seizure_report() -> SeizureReport {
    SeizureReport {
        date: code("2026-11-20"),
        items: vec![
            SeizedItem {
                dead: None,
                live: None,
                term: code("TUS"),
                unit: Some(code("KIL")),
                ivory: Some(IvoryPieces {
                    raw_kg: Some(code("412.5")),
                    worked_kg: None,
                    raw_pieces: Some(38),
                    worked_pieces: None,
                }),
                taxon: taxon("Loxodonta africana", "African savanna elephant"),
                source: Some(code("W")),
                purpose: Some(code("T")),
                appendix: Some(Appendix::I),
                measures: vec![Measure { unit: None, amount: code("38") }],
                quantity: Some(code("412.5")),
                hs_actual: Some(code("050710")),
                hs_declared: Some(code("9601")),
                amount_unknown: false,
            },
            SeizedItem {
                dead: None,
                live: None,
                term: code("SCA"),
                unit: Some(code("KIL")),
                ivory: None,
                taxon: taxon("Smutsia gigantea", "Giant pangolin"),
                source: Some(code("W")),
                purpose: Some(code("T")),
                appendix: Some(Appendix::I),
                measures: vec![],
                quantity: Some(code("96")),
                hs_actual: Some(code("050790")),
                hs_declared: Some(code("9601")),
                amount_unknown: false,
            },
        ],
        place: airport_nbo(),
        route: Route {
            origin: Some(code("CD")),
            points: vec![
                RoutePoint { at: RouteLocation::Country(code("CD")), role: RouteRole::Origin },
                RoutePoint { at: RouteLocation::Country(code("UG")), role: RouteRole::Transit },
                RoutePoint { at: RouteLocation::Airport(code("NBO")), role: RouteRole::Departure },
                RoutePoint { at: RouteLocation::Airport(code("HAN")), role: RouteRole::Destination },
            ],
            transit: vec![code("UG"), code("KE")],
            departure: Some(code("KE")),
            destination: Some(code("VN")),
        },
        agency: Some("Kenya Revenue Authority, Customs and Border Control".into()),
        reason: Some(SeizureReason::FalseDeclaration),
        related: vec![],
        warning: None,
        packages: Some(14),
        shipment: vec![
            TransportRef::AirWaybill(code("176-12345675")),
            TransportRef::Flight(Flight {
                date: code("2026-11-20"),
                number: "860".into(),
                airline: "KQ".into(),
            }),
            TransportRef::Carrier(Carrier { code: Some("KQ".into()), name: "Kenya Airways".into() }),
        ],
        detection: vec![
            DetectionMethod::RiskProfile,
            DetectionMethod::XRay,
            DetectionMethod::PhysicalExamination,
        ],
        narrative: Some(
            "Consignment of 14 crates manifested as bone handicrafts. X-ray images showed dense \
             elongated shapes; physical examination found tusks wrapped in carbon paper under a \
             layer of carved souvenirs."
                .into(),
        ),
        operation: Some("Operation Thunder 2026".into()),
        reporting: code("KE"),
        conveyance: Conveyance::AirCargo,
        indicators: Indicators {
            value: Some(Money { amount: code("1250000"), currency: code("USD") }),
            corruption: false,
            value_date: Some(code("2026-11-21")),
            value_basis: Some(ValueBasis::IllicitMarketEstimate),
            organised_crime: true,
        },
        attachments: vec![Attachment {
            data: vec![0xff, 0xd8, 0xff, 0xe0, 0, 0x10, b'J', b'F', b'I', b'F'],
            name: Some("xray-crate-07.jpg".into()),
            media: code("image/jpeg"),
        }],
        concealment: Some("Tusks wrapped in carbon paper beneath carved wooden souvenirs.".into()),
        nationalities: vec![code("KE"), code("VN")],
        case_reference: Some("KRA/JKIA/2026/0412".into()),
        declared_goods: Some("bone handicrafts".into()),
        transport_mode: Some(TransportMode::Air),
        concealment_method: Some(ConcealmentMethod::MixedWithGoods),
    }
}

/// Jomo Kenyatta International Airport, Nairobi.
fn airport_nbo() -> Place {
    Place {
        iata: Some(code("NBO")),
        kind: PlaceKind::Airport,
        name: "Jomo Kenyatta International Airport".into(),
        locode: Some(code("KENBO")),
        country: code("KE"),
        coordinates: Some(Coordinates { lat: "-1.31924".into(), lon: "36.9278".into() }),
    }
}

/// What became of the case of `seizure`: two arrests, a conviction, the ivory kept as evidence.
pub fn case_follow_up(seizure: MessageId) -> CaseFollowUp {
    CaseFollowUp {
        date: code("2027-03-02"),
        court: Some("Chief Magistrate's Court, Milimani".into()),
        arrests: 2,
        charges: vec!["dealing in wildlife trophies of an endangered species".into()],
        details: None,
        outcome: CaseOutcome::Convicted,
        seizure,
        disposal: vec![Disposal { date: None, kind: DisposalKind::Evidence }],
        penalties: vec![
            Penalty {
                kind: PenaltyKind::Fine,
                amount: Some(Money { amount: code("20000000"), currency: code("KES") }),
                months: None,
            },
            Penalty { kind: PenaltyKind::Imprisonment, amount: None, months: Some(60) },
        ],
        case_number: Some("MCCR/E1234/2026".into()),
    }
}

/// DNA samples of the tusks of `seizure` (its line 1), assigned to a savanna population.
pub fn forensic_sample(seizure: MessageId) -> ForensicSample {
    ForensicSample {
        line: Some(1),
        origin: vec![code("TZ"), code("MZ")],
        result: Some(
            "Assigned to the savanna elephant population of southern Tanzania and northern Mozambique."
                .into(),
        ),
        samples: 12,
        seizure,
        analysis: AnalysisKind::DnaOrigin,
        completed: Some(code("2027-01-15")),
        requested: code("2026-11-25"),
        laboratory: "Wildlife forensic laboratory (example)".into(),
    }
}

/// A Warning about worked ivory declared as unworked ivory under 0507.10, routed via Bangkok.
pub fn warning() -> Warning {
    Warning {
        hs_codes: vec![code("050710"), code("9601")],
        route: Route {
            origin: Some(code("NG")),
            points: vec![],
            transit: vec![code("TH")],
            departure: Some(code("NG")),
            destination: Some(code("CN")),
        },
        title: "Worked ivory declared as unworked under 0507.10".into(),
        action: "Examine matching air cargo consignments and report by Feedback.".into(),
        arrival: Some(Arrival { at: crate::Timestamp(1_795_694_400_000), place: airport_nbo() }),
        species: vec![taxon("Loxodonta africana", "African savanna elephant")],
        summary: "Consignments of carved ivory declared under HS 0507.10 (unworked ivory) instead \
                  of 9601, consolidated by freight forwarders in Lagos and routed via Bangkok."
            .into(),
        shipment: vec![
            TransportRef::AirWaybill(code("176-12345675")),
            TransportRef::Container(code("CSQU3054383")),
        ],
        commodity: "Worked ivory".into(),
        conveyance: vec![Conveyance::AirCargo, Conveyance::ExpressCourier],
        indicators: vec![
            "Declared under 0507.10 but invoiced as handicrafts".into(),
            "New consignee, prepaid freight".into(),
        ],
        attachments: vec![],
        concealment: Some("Mixed with wooden carvings, painted to look like wood.".into()),
        valid_until: Some(code("2027-02-28")),
    }
}

/// Personal data belonging with [`seizure_report`]: one passenger-courier and the exporter.
pub fn personal_data() -> PersonalData {
    PersonalData {
        marking: None,
        permits: vec![],
        persons: vec![Person {
            born: Some(code("1984-03-02")),
            name: "John Example Doe".into(),
            role: Some("consignor's agent".into()),
            document: Some("passport X0000000".into()),
            nationality: Some(code("KE")),
        }],
        companies: vec![Company {
            name: "Example Handicrafts Export Ltd".into(),
            role: Some("exporter".into()),
            country: Some(code("KE")),
            registration: None,
        }],
        legal_basis: Some("Nairobi Convention (1977), art. 7: mutual administrative assistance".into()),
        retain_until: Some(code("2031-11-20")),
    }
}

/// A Feedback on `warning`: examined, seized, linked to `seizure`.
pub fn feedback(warning: MessageId, seizure: MessageId) -> Feedback {
    Feedback {
        date: code("2026-11-21"),
        place: None,
        details: "Consignment examined on arrival; 38 carved pieces seized.".into(),
        outcome: Outcome::Seized,
        seizure: Some(seizure),
        warning,
        shipment: vec![TransportRef::AirWaybill(code("176-12345675"))],
    }
}

/// A short intelligence bulletin.
pub fn bulletin() -> IntelligenceBulletin {
    IntelligenceBulletin {
        body: "Pangolin scale seizures in the region doubled in the third quarter; most left \
               through two air cargo hubs with consolidation in a transit country."
            .into(),
        title: "Quarterly pangolin scales trends".into(),
        species: vec![
            taxon("Smutsia gigantea", "Giant pangolin"),
            taxon("Phataginus tricuspis", "White-bellied pangolin"),
        ],
        summary: "Seizures up; air cargo via transit hubs dominates.".into(),
        countries: vec![code("CM"), code("NG"), code("VN")],
        reference: Some("RILO WCA 2026/11".into()),
        attachments: vec![],
    }
}

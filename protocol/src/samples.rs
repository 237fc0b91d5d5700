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
/// as "bone handicrafts" under 0507.10.
pub fn seizure_report() -> SeizureReport {
    SeizureReport {
        date: code("2026-11-20"),
        items: vec![
            SeizedItem {
                term: code("TUS"),
                unit: Some(code("KIL")),
                taxon: taxon("Loxodonta africana", "African savanna elephant"),
                source: Some(code("W")),
                purpose: Some(code("T")),
                appendix: Some(Appendix::I),
                quantity: code("412.5"),
                hs_actual: Some(code("050710")),
                hs_declared: Some(code("9601")),
            },
            SeizedItem {
                term: code("SCA"),
                unit: Some(code("KIL")),
                taxon: taxon("Smutsia gigantea", "Giant pangolin"),
                source: Some(code("W")),
                purpose: Some(code("T")),
                appendix: Some(Appendix::I),
                quantity: code("96"),
                hs_actual: Some(code("050790")),
                hs_declared: Some(code("9601")),
            },
        ],
        place: Place {
            kind: PlaceKind::Airport,
            name: "Jomo Kenyatta International Airport".into(),
            country: code("KE"),
        },
        route: Route {
            origin: Some(code("CD")),
            transit: vec![code("UG"), code("KE")],
            departure: Some(code("KE")),
            destination: Some(code("VN")),
        },
        detection: vec![DetectionMethod::RiskProfile, DetectionMethod::XRay],
        narrative: Some(
            "Consignment of 14 crates manifested as bone handicrafts. X-ray images showed dense \
             elongated shapes; physical examination found tusks wrapped in carbon paper under a \
             layer of carved souvenirs."
                .into(),
        ),
        reporting: code("KE"),
        conveyance: Conveyance::AirCargo,
        indicators: Indicators {
            value: Some(Money { amount: code("1250000"), currency: code("USD") }),
            corruption: false,
            organised_crime: true,
        },
        attachments: vec![Attachment {
            data: vec![0xff, 0xd8, 0xff, 0xe0, 0, 0x10, b'J', b'F', b'I', b'F'],
            name: Some("xray-crate-07.jpg".into()),
            media: code("image/jpeg"),
        }],
        concealment: Some("Tusks wrapped in carbon paper beneath carved wooden souvenirs.".into()),
    }
}

/// A Warning about worked ivory declared as unworked ivory under 0507.10, routed via Bangkok.
pub fn warning() -> Warning {
    Warning {
        hs_codes: vec![code("050710"), code("9601")],
        route: Route {
            origin: Some(code("NG")),
            transit: vec![code("TH")],
            departure: Some(code("NG")),
            destination: Some(code("CN")),
        },
        title: "Worked ivory declared as unworked under 0507.10".into(),
        action: "Examine matching air cargo consignments and report by Feedback.".into(),
        species: vec![taxon("Loxodonta africana", "African savanna elephant")],
        summary: "Consignments of carved ivory declared under HS 0507.10 (unworked ivory) instead \
                  of 9601, consolidated by freight forwarders in Lagos and routed via Bangkok."
            .into(),
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

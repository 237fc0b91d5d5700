//! The content kinds an analyst works with: CENcomm Warning / Feedback / Seizure, RILO
//! intelligence bulletins, forwards, retractions, corrections and receipts.
//!
//! Struct fields are declared in deterministic-CBOR key order (shorter keys first, then
//! bytewise); `tests::every_map_is_in_canonical_key_order` checks it.

use serde::{Deserialize, Serialize};

use super::codes::{
    Amount, Appendix, Country, Currency, Date, HsCode, MediaType, PurposeCode, SourceCode, TermCode, Tlp,
    UnitCode,
};
use super::transport::{Coordinates, IataAirport, TransportRef, UnLocode};
use crate::codec::bounded;
use crate::identity::NodeId;
use crate::ids::MessageId;
use crate::limits::{MAX_ATTACHMENTS, MAX_LIST_LEN};
use crate::time::Timestamp;

/// What a message says: one of the content kinds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Content {
    /// A profile of a shipment or traveller that should be examined (CENcomm Warning / alert).
    Warning(Warning),
    /// What was done about a Warning (CENcomm Feedback).
    Feedback(Feedback),
    /// The details of a seizure (CENcomm Seizure).
    SeizureReport(SeizureReport),
    /// An analysis product: periodic or ad-hoc bulletin, intelligence profile.
    Bulletin(IntelligenceBulletin),
    /// An earlier message re-shared to a new audience.
    Forward(Forward),
    /// Withdraws an earlier message of the same author.
    Retraction(Retraction),
    /// Replaces the content of an earlier message of the same author.
    Correction(Correction),
    /// Delivered / read / actioned, returned to the author of a message.
    Receipt(Receipt),
    /// What became of the case a seizure opened: arrests, charges, court, penalties, disposal.
    CaseFollowUp(CaseFollowUp),
    /// Samples taken from seized specimens for forensic analysis, and the result.
    ForensicSample(ForensicSample),
    /// A node asks a channel's owner to admit it, or to let it leave.
    ChannelRequest(ChannelRequest),
}

impl Content {
    /// The kind's name as used on the wire and in tables, e.g. `seizure_report`.
    pub fn kind(&self) -> &'static str {
        match self {
            Content::Warning(_) => "warning",
            Content::Feedback(_) => "feedback",
            Content::SeizureReport(_) => "seizure_report",
            Content::Bulletin(_) => "bulletin",
            Content::Forward(_) => "forward",
            Content::Retraction(_) => "retraction",
            Content::Correction(_) => "correction",
            Content::Receipt(_) => "receipt",
            Content::CaseFollowUp(_) => "case_follow_up",
            Content::ForensicSample(_) => "forensic_sample",
            Content::ChannelRequest(_) => "channel_request",
        }
    }
}

/// A species or other taxon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Taxon {
    /// Common name in the author's language, e.g. "African elephant".
    pub common: Option<String>,
    /// Scientific name: `Genus`, `Genus species`, `Genus species subspecies` or `Genus spp.`.
    pub scientific: String,
}

/// The way a consignment or traveller went: the countries (ISO 3166 alpha-2) and, where known,
/// the ordered points in more detail (ports, airports, regions, the high seas).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Country of origin of the specimens.
    pub origin: Option<Country>,
    /// The route in order, point by point, when known more precisely than by country: several
    /// origins may be given; the country fields then summarise it.
    #[serde(default, deserialize_with = "bounded::vec::<_, _, MAX_LIST_LEN>")]
    pub points: Vec<RoutePoint>,
    /// Transit countries, in order.
    #[serde(deserialize_with = "bounded::vec::<_, _, MAX_LIST_LEN>")]
    pub transit: Vec<Country>,
    /// Country of departure / export.
    pub departure: Option<Country>,
    /// Country of destination.
    pub destination: Option<Country>,
}

/// One point of a route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutePoint {
    /// Where.
    pub at: RouteLocation,
    /// What it is on the route.
    pub role: RouteRole,
}

/// What a point is on a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteRole {
    /// Where the specimens came from.
    Origin,
    /// Passed through.
    Transit,
    /// Where the goods were exported or left from.
    Departure,
    /// Where they were going.
    Destination,
}

/// Where a route point is, as precisely as known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteLocation {
    /// A country.
    Country(Country),
    /// A port or other location by UN/LOCODE.
    Locode(UnLocode),
    /// An airport by IATA code.
    Airport(IataAirport),
    /// A region, e.g. "West Africa", "Gulf of Guinea".
    Region(String),
    /// International waters.
    HighSeas,
    /// Not known (e.g. an origin the investigation has not established).
    Unknown,
}

impl RouteLocation {
    /// Its country, when it has one.
    pub fn country(&self) -> Option<Country> {
        match self {
            RouteLocation::Country(c) => Some(*c),
            RouteLocation::Locode(l) => Some(l.country()),
            RouteLocation::Airport(a) => a.country().parse().ok(),
            _ => None,
        }
    }
}

/// How goods or a traveller moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Conveyance {
    /// Air passenger (checked or cabin baggage, on the person).
    AirPassenger,
    /// Air cargo.
    AirCargo,
    /// Sea container.
    SeaContainer,
    /// Road vehicle.
    Road,
    /// Rail.
    Rail,
    /// Postal item.
    Postal,
    /// Express courier.
    ExpressCourier,
    /// Anything else (explain in the narrative).
    Other,
}

/// The kind of place where a seizure happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlaceKind {
    /// An airport.
    Airport,
    /// A seaport.
    Seaport,
    /// A land border crossing.
    LandBorder,
    /// A postal or express-courier hub.
    PostalHub,
    /// Inland (warehouse, market, road check).
    Inland,
}

/// Where something happened: its kind, name and country, and where known its codes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Place {
    /// Its IATA airport code, for an airport (its country must be the place's).
    #[serde(default)]
    pub iata: Option<IataAirport>,
    /// The kind of place.
    pub kind: PlaceKind,
    /// Its name, e.g. "Jomo Kenyatta International Airport".
    pub name: String,
    /// Its UN/LOCODE, e.g. `KENBO` (its country must be the place's).
    #[serde(default)]
    pub locode: Option<UnLocode>,
    /// Its country.
    pub country: Country,
    /// Its position.
    #[serde(default)]
    pub coordinates: Option<Coordinates>,
}

/// How a seizure was detected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DetectionMethod {
    /// Selected by a risk profile.
    RiskProfile,
    /// X-ray or other non-intrusive inspection.
    XRay,
    /// Detector dog.
    DetectorDog,
    /// Document check.
    DocumentCheck,
    /// Prior intelligence.
    Intelligence,
    /// Random selection.
    Random,
    /// Physical examination of the goods or baggage.
    PhysicalExamination,
}

/// How the goods crossed the border: UN/CEFACT Recommendation 19 modes of transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransportMode {
    /// 0: not known.
    NotKnown,
    /// 1: maritime.
    Maritime,
    /// 2: rail.
    Rail,
    /// 3: road.
    Road,
    /// 4: air.
    Air,
    /// 5: mail.
    Mail,
    /// 6: multimodal.
    Multimodal,
    /// 7: fixed transport installation.
    FixedInstallation,
    /// 8: inland water.
    InlandWater,
    /// 9: not applicable.
    NotApplicable,
}

impl TransportMode {
    /// The Recommendation 19 code digit.
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// How the goods were concealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConcealmentMethod {
    /// Not concealed.
    NotConcealed,
    /// In checked baggage.
    CheckedBaggage,
    /// In cabin baggage.
    CabinBaggage,
    /// On the body or in clothing.
    OnBody,
    /// Inside the body.
    InBody,
    /// In a false compartment, double bottom or hollowed object.
    FalseCompartment,
    /// Mixed with other goods of the consignment.
    MixedWithGoods,
    /// Disguised as other goods (painted, declared as something else).
    Disguised,
    /// In a vehicle's structure.
    InVehicle,
    /// In a postal or courier item.
    InPostalItem,
    /// Anything else (say how in `concealment`).
    Other,
}

/// Why the goods were seized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeizureReason {
    /// No CITES permit or certificate.
    NoPermit,
    /// A permit that is invalid, forged or not for these goods.
    InvalidPermit,
    /// More than the permit allows.
    ExceedsPermit,
    /// Falsely declared (other goods, other species, other origin).
    FalseDeclaration,
    /// Not declared at all.
    Undeclared,
    /// Trade prohibited (e.g. Appendix I for commercial purposes, a national ban).
    Prohibited,
    /// Anything else (say why in the narrative).
    Other,
}

/// What a value is based on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueBasis {
    /// As declared.
    Declared,
    /// An estimate of the legal market value.
    MarketEstimate,
    /// An estimate of the illicit market value.
    IllicitMarketEstimate,
    /// An official valuation (customs, court).
    OfficialValuation,
}

/// Where and when a consignment or traveller is expected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Arrival {
    /// When, ms since the epoch.
    pub at: Timestamp,
    /// Where.
    pub place: Place,
}

/// A file attached to a message: bytes and their media type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attachment {
    /// The bytes.
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
    /// A file name for display, if any.
    pub name: Option<String>,
    /// The media type, e.g. `image/jpeg`.
    pub media: MediaType,
}

impl Attachment {
    /// SHA-256 of the bytes, to cite the attachment (e.g. in a seizure database).
    pub fn sha256(&self) -> [u8; 32] {
        use sha2::Digest;
        sha2::Sha256::digest(&self.data).into()
    }
}

/// An amount of money.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Money {
    /// The amount.
    pub amount: Amount,
    /// The currency.
    pub currency: Currency,
}

/// A CENcomm Warning: a profile to act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Warning {
    /// HS codes under which the goods are (or may be mis-)declared.
    #[serde(rename = "hs", deserialize_with = "bounded::vec::<_, _, MAX_LIST_LEN>")]
    pub hs_codes: Vec<HsCode>,
    /// The route of concern.
    pub route: Route,
    /// A one-line title.
    pub title: String,
    /// What recipients are asked to do, e.g. "examine and report via Feedback".
    pub action: String,
    /// Where and when the consignment or traveller is expected, if known.
    #[serde(default)]
    pub arrival: Option<Arrival>,
    /// Species concerned.
    #[serde(deserialize_with = "bounded::vec::<_, _, MAX_LIST_LEN>")]
    pub species: Vec<Taxon>,
    /// The profile in prose.
    pub summary: String,
    /// The consignment's documents and conveyance, as far as known: what to stop.
    #[serde(default, deserialize_with = "bounded::vec::<_, _, MAX_LIST_LEN>")]
    pub shipment: Vec<TransportRef>,
    /// The commodity, e.g. "raw ivory", "pangolin scales".
    pub commodity: String,
    /// Conveyances of concern.
    #[serde(deserialize_with = "bounded::vec::<_, _, MAX_LIST_LEN>")]
    pub conveyance: Vec<Conveyance>,
    /// Risk indicators, e.g. "declared as 0507.10 but worked ivory (9601)".
    #[serde(deserialize_with = "bounded::vec::<_, _, MAX_LIST_LEN>")]
    pub indicators: Vec<String>,
    /// Photos and documents.
    #[serde(deserialize_with = "bounded::vec::<_, _, MAX_ATTACHMENTS>")]
    pub attachments: Vec<Attachment>,
    /// Known or suspected concealment method.
    pub concealment: Option<String>,
    /// Last day the warning applies.
    pub valid_until: Option<Date>,
}

/// What was done about a Warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Examined; nothing found.
    NothingFound,
    /// Examined; goods seized (link the SeizureReport).
    Seized,
    /// The shipment or traveller was not located.
    NotLocated,
    /// Not examined (say why in the details).
    NotExamined,
    /// Action still ongoing (e.g. controlled delivery).
    Ongoing,
}

/// A CENcomm Feedback: action taken on a Warning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Feedback {
    /// When the action was taken.
    pub date: Date,
    /// Where, if relevant.
    pub place: Option<Place>,
    /// What was done, in prose.
    pub details: String,
    /// The outcome.
    pub outcome: Outcome,
    /// The SeizureReport that followed, if any.
    pub seizure: Option<MessageId>,
    /// The Warning this is feedback on.
    pub warning: MessageId,
    /// The consignment examined: its documents and conveyance.
    #[serde(default, deserialize_with = "bounded::vec::<_, _, MAX_LIST_LEN>")]
    pub shipment: Vec<TransportRef>,
}

/// One seized commodity line: one taxon, one CITES term.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeizedItem {
    /// Of live specimens, how many were dead on seizure.
    #[serde(default)]
    pub dead: Option<u32>,
    /// Of live specimens, how many were alive on seizure.
    #[serde(default)]
    pub live: Option<u32>,
    /// What the specimen is (CITES term code).
    pub term: TermCode,
    /// Unit of the quantity; none means a count of specimens.
    pub unit: Option<UnitCode>,
    /// For elephant ivory: raw and worked pieces and weights (the ETIS seizure form's).
    #[serde(default)]
    pub ivory: Option<IvoryPieces>,
    /// The taxon.
    pub taxon: Taxon,
    /// CITES source code as declared.
    pub source: Option<SourceCode>,
    /// CITES purpose code as declared.
    pub purpose: Option<PurposeCode>,
    /// The CITES appendix the taxon is listed in (none if not CITES-listed).
    pub appendix: Option<Appendix>,
    /// Further measures of the same line, e.g. the count beside a weight (6 tusks of 412.5 kg).
    #[serde(default, deserialize_with = "bounded::vec::<_, _, MAX_LIST_LEN>")]
    pub measures: Vec<Measure>,
    /// The quantity, in `unit`; none only when `amount_unknown`.
    #[serde(default)]
    pub quantity: Option<Amount>,
    /// HS code found on examination.
    pub hs_actual: Option<HsCode>,
    /// HS code as declared.
    pub hs_declared: Option<HsCode>,
    /// Present, but the amount is not known (yet): then there is no `quantity`.
    #[serde(default)]
    pub amount_unknown: bool,
}

/// An amount in a unit (none: a count of specimens).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Measure {
    /// The unit.
    pub unit: Option<UnitCode>,
    /// The amount (greater than zero).
    pub amount: Amount,
}

/// Elephant ivory as the ETIS seizure data form records it: raw and worked, pieces and kg.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IvoryPieces {
    /// Raw ivory, kg.
    pub raw_kg: Option<Amount>,
    /// Worked ivory, kg.
    pub worked_kg: Option<Amount>,
    /// Raw ivory, pieces (tusks and cut pieces).
    pub raw_pieces: Option<u32>,
    /// Worked ivory, pieces.
    pub worked_pieces: Option<u32>,
}

/// Indicators of organised crime and corruption, and the estimated value.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Indicators {
    /// Estimated value.
    pub value: Option<Money>,
    /// Corruption suspected.
    pub corruption: bool,
    /// When the value was assessed.
    #[serde(default)]
    pub value_date: Option<Date>,
    /// What the value is based on.
    #[serde(default)]
    pub value_basis: Option<ValueBasis>,
    /// Organised crime suspected.
    pub organised_crime: bool,
}

/// A CENcomm Seizure report, with what a CITES annual illegal trade report row asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeizureReport {
    /// Date of the seizure.
    pub date: Date,
    /// What was seized, one line per taxon and term.
    #[serde(deserialize_with = "bounded::vec::<_, _, MAX_LIST_LEN>")]
    pub items: Vec<SeizedItem>,
    /// Where.
    pub place: Place,
    /// The route of the goods.
    pub route: Route,
    /// The seizing agency, e.g. "Kenya Revenue Authority, Customs and Border Control".
    #[serde(default)]
    pub agency: Option<String>,
    /// Why the goods were seized.
    #[serde(default)]
    pub reason: Option<SeizureReason>,
    /// Other seizures of the same case or consignment (their reports' ids).
    #[serde(default, deserialize_with = "bounded::vec::<_, _, MAX_LIST_LEN>")]
    pub related: Vec<MessageId>,
    /// The Warning that led to it, if any.
    #[serde(default)]
    pub warning: Option<MessageId>,
    /// Number of packages in the consignment.
    #[serde(default)]
    pub packages: Option<u32>,
    /// The consignment's documents and conveyance.
    #[serde(default, deserialize_with = "bounded::vec::<_, _, MAX_LIST_LEN>")]
    pub shipment: Vec<TransportRef>,
    /// How it was detected.
    #[serde(deserialize_with = "bounded::vec::<_, _, MAX_LIST_LEN>")]
    pub detection: Vec<DetectionMethod>,
    /// Free-text account (no personal data: that goes in the personal section).
    pub narrative: Option<String>,
    /// The operation it was part of, if any.
    #[serde(default)]
    pub operation: Option<String>,
    /// The reporting administration's country.
    pub reporting: Country,
    /// How the goods moved.
    pub conveyance: Conveyance,
    /// Organised crime, corruption and value.
    pub indicators: Indicators,
    /// Photos (concealment, specimens) and documents.
    #[serde(deserialize_with = "bounded::vec::<_, _, MAX_ATTACHMENTS>")]
    pub attachments: Vec<Attachment>,
    /// How the goods were concealed, in words.
    pub concealment: Option<String>,
    /// The offenders' nationalities (non-nominal: names go in the personal section).
    #[serde(default, deserialize_with = "bounded::vec::<_, _, MAX_LIST_LEN>")]
    pub nationalities: Vec<Country>,
    /// The national case reference, for de-duplication across reports.
    #[serde(default)]
    pub case_reference: Option<String>,
    /// What was declared, e.g. "wooden handicrafts".
    #[serde(default)]
    pub declared_goods: Option<String>,
    /// The mode of transport at the border (UN/CEFACT Recommendation 19).
    #[serde(default)]
    pub transport_mode: Option<TransportMode>,
    /// How the goods were concealed, coded.
    #[serde(default)]
    pub concealment_method: Option<ConcealmentMethod>,
}

/// A RILO intelligence bulletin or profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntelligenceBulletin {
    /// The analysis.
    pub body: String,
    /// The title.
    pub title: String,
    /// Species concerned.
    #[serde(deserialize_with = "bounded::vec::<_, _, MAX_LIST_LEN>")]
    pub species: Vec<Taxon>,
    /// Key findings in a few lines.
    pub summary: String,
    /// Countries concerned.
    #[serde(deserialize_with = "bounded::vec::<_, _, MAX_LIST_LEN>")]
    pub countries: Vec<Country>,
    /// The issuing office's own reference, e.g. "RILO ESA 2026/14".
    pub reference: Option<String>,
    /// Charts, tables, documents.
    #[serde(deserialize_with = "bounded::vec::<_, _, MAX_ATTACHMENTS>")]
    pub attachments: Vec<Attachment>,
}

/// Re-sharing an earlier message to a new audience: its content, and its signed envelope so
/// that its author, marking and time can be checked by anyone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Forward {
    /// The original author.
    pub author: NodeId,
    /// Why it is forwarded.
    pub comment: Option<String>,
    /// The originator's consent, which a TLP:AMBER original needs to leave its audience.
    #[serde(default)]
    pub consent: Option<Consent>,
    /// The original content (not itself a forward or receipt).
    pub content: Box<Content>,
    /// The original message's handling marking.
    pub marking: Tlp,
    /// The original envelope, exactly as signed (its body stays sealed to its own audience).
    #[serde(default, with = "serde_bytes")]
    pub envelope: Vec<u8>,
    /// The original message's id.
    pub original: MessageId,
}

/// An originator's consent to a forward.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Consent {
    /// Who gave it: the original's author.
    pub by: NodeId,
    /// The originator's message that gave it.
    pub message: MessageId,
}

/// A request to a channel's owner, sent to it directly: admit the sender (the owner's
/// administrator decides), or remove it (its node does so at once).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelRequest {
    /// Why, or who asks, for the owner's administrator.
    pub note: String,
    /// `true`: the sender leaves the channel; `false`: it asks to join.
    pub leave: bool,
    /// The channel.
    pub channel: crate::ids::ChannelId,
}

/// Withdrawal of an earlier message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retraction {
    /// Why.
    pub reason: String,
    /// The message withdrawn.
    pub target: MessageId,
}

/// Replacement content for an earlier message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Correction {
    /// What was wrong.
    pub reason: String,
    /// The message corrected.
    pub target: MessageId,
    /// The corrected content, of the same kind as the original.
    pub corrected: Box<Content>,
}

/// How far a recipient got with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptStatus {
    /// Stored at the recipient's node.
    Delivered,
    /// Read by an officer.
    Read,
    /// Acted upon.
    Actioned,
}

/// A signed receipt, sent by a recipient back to a message's author.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    /// When the status was reached.
    pub at: Timestamp,
    /// An optional note, e.g. who actioned it.
    pub note: Option<String>,
    /// The status reached.
    pub status: ReceiptStatus,
    /// The message receipted.
    pub message: MessageId,
}

/// How a case ended, or where it stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseOutcome {
    /// Still before the prosecutor or the court.
    Pending,
    /// Convicted.
    Convicted,
    /// Acquitted.
    Acquitted,
    /// Dismissed or withdrawn.
    Dismissed,
    /// Settled out of court or by an administrative penalty.
    Settled,
    /// Anything else (say what in the details).
    Other,
}

/// A penalty imposed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Penalty {
    /// What kind.
    pub kind: PenaltyKind,
    /// A fine's amount.
    pub amount: Option<Money>,
    /// A sentence's length in months.
    pub months: Option<u32>,
}

/// The kind of a penalty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PenaltyKind {
    /// A fine.
    Fine,
    /// Imprisonment.
    Imprisonment,
    /// A suspended sentence.
    SuspendedSentence,
    /// Confiscation of assets or conveyances.
    Confiscation,
    /// Community service.
    CommunityService,
    /// Anything else.
    Other,
}

/// What was done with the seized specimens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Disposal {
    /// When.
    pub date: Option<Date>,
    /// What.
    pub kind: DisposalKind,
}

/// The kind of a disposal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisposalKind {
    /// Destroyed.
    Destroyed,
    /// Returned to the country of origin.
    Repatriated,
    /// Kept as evidence.
    Evidence,
    /// Kept in a government stockpile.
    Stockpiled,
    /// Live specimens placed in a rescue centre or zoo.
    Rehomed,
    /// Live specimens released to the wild.
    Released,
    /// Anything else.
    Other,
}

/// What became of the case a seizure opened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseFollowUp {
    /// As of when.
    pub date: Date,
    /// The court, if the case went to one.
    pub court: Option<String>,
    /// How many people were arrested.
    pub arrests: u32,
    /// The charges, e.g. "unlawful possession of wildlife trophies".
    #[serde(deserialize_with = "bounded::vec::<_, _, MAX_LIST_LEN>")]
    pub charges: Vec<String>,
    /// Anything else worth knowing (no personal data).
    pub details: Option<String>,
    /// Where the case stands.
    pub outcome: CaseOutcome,
    /// The seizure report of the case.
    pub seizure: MessageId,
    /// What was done with the specimens.
    #[serde(deserialize_with = "bounded::vec::<_, _, MAX_LIST_LEN>")]
    pub disposal: Vec<Disposal>,
    /// Penalties imposed.
    #[serde(deserialize_with = "bounded::vec::<_, _, MAX_LIST_LEN>")]
    pub penalties: Vec<Penalty>,
    /// The court's or prosecutor's case number.
    pub case_number: Option<String>,
}

/// What a forensic analysis looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnalysisKind {
    /// DNA: which species.
    DnaSpecies,
    /// DNA: where the animals came from (e.g. ivory origin assignment).
    DnaOrigin,
    /// DNA: matching individuals across seizures.
    DnaIndividual,
    /// Stable isotopes: origin.
    StableIsotope,
    /// Radiocarbon: age (e.g. pre-Convention ivory).
    Radiocarbon,
    /// Morphology.
    Morphology,
    /// Anything else (say what in the result).
    Other,
}

/// Samples taken from seized specimens for forensic analysis, and the result once known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForensicSample {
    /// The seized line sampled (1-based, as in the report), if one.
    pub line: Option<u32>,
    /// Where the specimens came from, as the analysis assigned it.
    #[serde(deserialize_with = "bounded::vec::<_, _, MAX_LIST_LEN>")]
    pub origin: Vec<Country>,
    /// The result in words, once known.
    pub result: Option<String>,
    /// How many samples were taken.
    pub samples: u32,
    /// The seizure report of the specimens.
    pub seizure: MessageId,
    /// What the analysis looks for.
    pub analysis: AnalysisKind,
    /// When the result came, if it has.
    pub completed: Option<Date>,
    /// When the analysis was requested.
    pub requested: Date,
    /// The laboratory.
    pub laboratory: String,
}

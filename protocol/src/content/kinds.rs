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

/// The countries a consignment or traveller passed through (ISO 3166 alpha-2).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Country of origin of the specimens.
    pub origin: Option<Country>,
    /// Transit countries, in order.
    #[serde(deserialize_with = "bounded::vec::<_, _, MAX_LIST_LEN>")]
    pub transit: Vec<Country>,
    /// Country of departure / export.
    pub departure: Option<Country>,
    /// Country of destination.
    pub destination: Option<Country>,
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

/// Where something happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Place {
    /// The kind of place.
    pub kind: PlaceKind,
    /// Its name, e.g. "Jomo Kenyatta International Airport".
    pub name: String,
    /// Its country.
    pub country: Country,
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
    /// Species concerned.
    #[serde(deserialize_with = "bounded::vec::<_, _, MAX_LIST_LEN>")]
    pub species: Vec<Taxon>,
    /// The profile in prose.
    pub summary: String,
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
}

/// One seized commodity line: one taxon, one CITES term.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeizedItem {
    /// What the specimen is (CITES term code).
    pub term: TermCode,
    /// Unit of the quantity; none means a count of specimens.
    pub unit: Option<UnitCode>,
    /// The taxon.
    pub taxon: Taxon,
    /// CITES source code as declared.
    pub source: Option<SourceCode>,
    /// CITES purpose code as declared.
    pub purpose: Option<PurposeCode>,
    /// The CITES appendix the taxon is listed in (none if not CITES-listed).
    pub appendix: Option<Appendix>,
    /// The quantity.
    pub quantity: Amount,
    /// HS code found on examination.
    pub hs_actual: Option<HsCode>,
    /// HS code as declared.
    pub hs_declared: Option<HsCode>,
}

/// Indicators of organised crime and corruption, and the estimated value.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Indicators {
    /// Estimated value.
    pub value: Option<Money>,
    /// Corruption suspected.
    pub corruption: bool,
    /// Organised crime suspected.
    pub organised_crime: bool,
}

/// A CENcomm Seizure report.
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
    /// How it was detected.
    #[serde(deserialize_with = "bounded::vec::<_, _, MAX_LIST_LEN>")]
    pub detection: Vec<DetectionMethod>,
    /// Free-text account (no personal data: that goes in the personal section).
    pub narrative: Option<String>,
    /// The reporting administration's country.
    pub reporting: Country,
    /// How the goods moved.
    pub conveyance: Conveyance,
    /// Organised crime, corruption and value.
    pub indicators: Indicators,
    /// Photos (concealment, specimens) and documents.
    #[serde(deserialize_with = "bounded::vec::<_, _, MAX_ATTACHMENTS>")]
    pub attachments: Vec<Attachment>,
    /// How the goods were concealed.
    pub concealment: Option<String>,
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

/// Re-sharing an earlier message to a new audience.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Forward {
    /// The original author.
    pub author: NodeId,
    /// Why it is forwarded.
    pub comment: Option<String>,
    /// The original content (not itself a forward or receipt).
    pub content: Box<Content>,
    /// The original message's handling marking.
    pub marking: Tlp,
    /// The original message's id.
    pub original: MessageId,
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

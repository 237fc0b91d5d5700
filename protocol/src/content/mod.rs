//! Message content: what travels inside the ciphertext. The kinds (Warning, Feedback,
//! SeizureReport, IntelligenceBulletin, Forward, Retraction, Correction, Receipt), their coded
//! fields, the grading, and the separately encrypted personal-data section.
//!
//! Everything here is validated before it is sealed and after it is opened
//! ([`Body::validate`], [`PersonalData::validate`]); errors name the field by its path, e.g.
//! `seizure_report.items[0].taxon.scientific`.

mod airports;
mod cites_tables;
pub mod codes;
mod country_names;
mod currencies;
mod hs2022;
mod hs_names;
mod kinds;
pub mod transport;
mod validate;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use codes::{
    Amount, Appendix, CodeError, Country, Currency, Date, Grading, GradingScheme, HsCode, MediaType,
    PurposeCode, SourceCode, TermCode, Tlp, UnitCode,
};
pub use kinds::{
    AnalysisKind, Arrival, Attachment, CaseFollowUp, CaseOutcome, ChannelRequest, ConcealmentMethod, Consent,
    Content, Conveyance, Correction, DetectionMethod, Disposal, DisposalKind, Feedback, ForensicSample,
    Forward, Indicators, IntelligenceBulletin, IvoryPieces, Measure, Money, Outcome, Penalty, PenaltyKind,
    Place, PlaceKind, Receipt, ReceiptStatus, Retraction, Route, RouteLocation, RoutePoint, RouteRole,
    SeizedItem, SeizureReason, SeizureReport, Taxon, TransportMode, ValueBasis, Warning,
};
pub use transport::{
    AirWaybill, Carrier, ContainerNumber, Coordinates, Flight, IataAirport, IdentifierError, ImoNumber,
    PostalItem, TransportRef, UnLocode, Vehicle,
};

use crate::codec::{self, CodecError, bounded};
use crate::limits::MAX_LIST_LEN;

/// Why content was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ContentError {
    /// A field's value is not acceptable.
    #[error("{field}: {problem}")]
    Invalid {
        /// The field's path, e.g. `seizure_report.items[0].quantity`.
        field: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The content's CBOR was refused.
    #[error(transparent)]
    Codec(#[from] CodecError),
}

/// The encrypted body of a message: its content, the author's grading of it and how it may be
/// used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Body {
    /// What the message says.
    pub content: Content,
    /// Grading of source and information, in its scheme, if the author gives one.
    pub grading: Option<Grading>,
    /// How the information may be used, beyond its TLP marking (Europol handling codes).
    #[serde(default, deserialize_with = "bounded::vec::<_, _, MAX_LIST_LEN>")]
    pub handling: Vec<HandlingCode>,
    /// The officers or roles at the recipient administrations it is for, e.g. "head of the
    /// intelligence unit" (TLP:RED's individual recipients): a node shows it only to the local
    /// accounts its operator mapped to one of them. Empty: every operator of a recipient node.
    #[serde(default, deserialize_with = "bounded::vec::<_, _, MAX_LIST_LEN>")]
    pub addressees: Vec<String>,
    /// Statements graded one by one, where they differ from the grading of the whole.
    #[serde(default, deserialize_with = "bounded::vec::<_, _, MAX_LIST_LEN>")]
    pub statements: Vec<GradedStatement>,
    /// What H3 ("other restrictions") restricts.
    #[serde(default)]
    pub handling_note: Option<String>,
}

/// A Europol handling code: how the information may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum HandlingCode {
    /// H0: no restriction beyond the marking.
    H0,
    /// H1: not to be used as evidence in judicial proceedings without the provider's consent
    /// (not for evidential use).
    H1,
    /// H2: not to be disseminated further without the provider's consent.
    H2,
    /// H3: other restrictions apply (`handling_note` says which).
    H3,
}

impl HandlingCode {
    /// What the code means.
    pub fn explain(self) -> &'static str {
        match self {
            HandlingCode::H0 => "no restriction beyond the marking",
            HandlingCode::H1 => "not for evidential use without the provider's consent",
            HandlingCode::H2 => "not to be disseminated further without the provider's consent",
            HandlingCode::H3 => "other restrictions apply",
        }
    }
}

/// One statement of the content with its own grading.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GradedStatement {
    /// The statement, e.g. "the consignee is a front company".
    pub text: String,
    /// Its grading.
    pub grading: Grading,
}

impl Body {
    /// A body without grading or handling codes.
    pub fn new(content: Content) -> Self {
        Body {
            content,
            grading: None,
            handling: Vec::new(),
            addressees: Vec::new(),
            statements: Vec::new(),
            handling_note: None,
        }
    }

    /// Checks every field against the limits and code lists.
    ///
    /// # Errors
    /// [`ContentError::Invalid`] naming the first bad field.
    pub fn validate(&self) -> Result<(), ContentError> {
        validate::body(self)
    }

    /// [`Body::validate`], and what only new content must meet: every HS code in the HS 2022
    /// nomenclature (a node authoring content checks this; one opening content does not, so that
    /// a code of another edition still reads).
    ///
    /// # Errors
    /// [`ContentError::Invalid`] naming the first bad field.
    pub fn validate_authored(&self) -> Result<(), ContentError> {
        validate::body(self)?;
        validate::authored(self)
    }

    /// Encodes as deterministic CBOR.
    pub fn encode(&self) -> Vec<u8> {
        codec::to_vec(self)
    }

    /// Decodes strictly and validates.
    ///
    /// # Errors
    /// [`ContentError::Codec`] or [`ContentError::Invalid`].
    pub fn decode(bytes: &[u8]) -> Result<Self, ContentError> {
        let body: Body = codec::from_slice("message body", bytes)?;
        body.validate()?;
        Ok(body)
    }
}

/// Personal data about persons and companies, and pseudonymised permit numbers: sealed
/// separately, only to named recipients, never part of a channel-wide body.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersonalData {
    /// Its own handling marking, when stricter than the message's (never looser).
    #[serde(default)]
    pub marking: Option<Tlp>,
    /// Permit numbers, pseudonymised.
    #[serde(deserialize_with = "bounded::vec::<_, _, MAX_LIST_LEN>")]
    pub permits: Vec<PermitPseudonym>,
    /// Persons involved.
    #[serde(deserialize_with = "bounded::vec::<_, _, MAX_LIST_LEN>")]
    pub persons: Vec<Person>,
    /// Companies involved.
    #[serde(deserialize_with = "bounded::vec::<_, _, MAX_LIST_LEN>")]
    pub companies: Vec<Company>,
    /// The legal basis on which it is shared, e.g. "Nairobi Convention art. 7; EAC Customs
    /// Management Act s. 236".
    #[serde(default)]
    pub legal_basis: Option<String>,
    /// The last day recipients may keep it.
    #[serde(default)]
    pub retain_until: Option<Date>,
}

impl PersonalData {
    /// Checks every field.
    ///
    /// # Errors
    /// [`ContentError::Invalid`] naming the first bad field.
    pub fn validate(&self) -> Result<(), ContentError> {
        validate::personal(self)
    }

    /// Decodes strictly and validates.
    ///
    /// # Errors
    /// [`ContentError::Codec`] or [`ContentError::Invalid`].
    pub fn decode(bytes: &[u8]) -> Result<Self, ContentError> {
        let p: PersonalData = codec::from_slice("personal data", bytes)?;
        p.validate()?;
        Ok(p)
    }
}

/// A person involved (suspect, passenger, consignee).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Person {
    /// Date of birth.
    pub born: Option<Date>,
    /// Full name as in the travel document.
    pub name: String,
    /// Role, e.g. "passenger", "consignee".
    pub role: Option<String>,
    /// Travel-document type and number.
    pub document: Option<String>,
    /// Nationality.
    pub nationality: Option<Country>,
}

/// A company involved (exporter, importer, freight forwarder).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Company {
    /// Registered name.
    pub name: String,
    /// Role, e.g. "exporter".
    pub role: Option<String>,
    /// Country of registration.
    pub country: Option<Country>,
    /// Registration or EORI-like number.
    pub registration: Option<String>,
}

/// A permit number replaced by a salted hash, so that analysts holding the same salt can match
/// permits across reports without the number travelling in clear.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PermitPseudonym(#[serde(with = "serde_bytes")] pub [u8; 32]);

impl PermitPseudonym {
    /// `SHA-256("godwit/v1 permit\0" ‖ len(salt) as u8 ‖ salt ‖ issuing country ‖ permit number)`,
    /// the permit number upper-cased with spaces removed.
    ///
    /// # Errors
    /// [`ContentError::Invalid`] if the salt is shorter than 16 or longer than 255 bytes.
    pub fn derive(salt: &[u8], issuer: Country, permit: &str) -> Result<Self, ContentError> {
        if !(16..=255).contains(&salt.len()) {
            return Err(ContentError::Invalid {
                field: "permit salt".into(),
                problem: format!("must be 16 to 255 bytes, got {}", salt.len()),
            });
        }
        let normal: String =
            permit.chars().filter(|c| !c.is_whitespace()).flat_map(char::to_uppercase).collect();
        let h = Sha256::new()
            .chain_update(b"godwit/v1 permit\0")
            .chain_update([salt.len() as u8])
            .chain_update(salt)
            .chain_update(issuer.as_str())
            .chain_update(normal.as_bytes())
            .finalize();
        Ok(PermitPseudonym(h.into()))
    }
}

#[cfg(test)]
pub(crate) mod tests;

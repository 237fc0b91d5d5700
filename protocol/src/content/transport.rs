//! What an analyst matches a consignment on: transport documents and conveyance identifiers with
//! their check digits, and coded places.
//!
//! Each identifier type has one canonical text form (`FromStr` accepts only it, so a decoded
//! message re-encodes byte for byte); `parse_lenient` takes what people type (spaces, dashes,
//! lower case) and returns the canonical form, or says which rule failed.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::codes::text_form;

use super::codes::{Country, Date};

/// Why an identifier or place code was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentifierError {
    /// Wrong shape (length, characters).
    #[error("{value:?} is not {what}: {rule}")]
    Shape {
        /// What it should have been.
        what: &'static str,
        /// The refused value.
        value: String,
        /// The rule it breaks.
        rule: &'static str,
    },
    /// The check digit does not match.
    #[error("{value:?} is not {what}: its check digit is {got}, the number before it gives {want}")]
    CheckDigit {
        /// What it should have been.
        what: &'static str,
        /// The refused value.
        value: String,
        /// The check digit written.
        got: char,
        /// The check digit computed.
        want: char,
    },
}

/// `text_form!` (Display, Serialize, Deserialize through `FromStr`) and the canonical text and
/// lenient parser of a `String`-backed identifier.
macro_rules! ident_text {
    ($t:ty) => {
        text_form!($t);
        impl $t {
            /// The canonical text form.
            pub fn as_str(&self) -> &str {
                &self.0
            }
            /// What people type: spaces, dashes and dots are dropped, letters upper-cased.
            ///
            /// # Errors
            /// As `FromStr`.
            pub fn parse_lenient(s: &str) -> Result<Self, IdentifierError> {
                let compact: String = s
                    .chars()
                    .filter(|c| !matches!(c, ' ' | '-' | '.' | '\t'))
                    .map(|c| c.to_ascii_uppercase())
                    .collect();
                compact.parse()
            }
        }
    };
}

fn digit(c: u8) -> u32 {
    u32::from(c - b'0')
}

fn shape(what: &'static str, value: &str, rule: &'static str) -> IdentifierError {
    IdentifierError::Shape { what, value: value.to_owned(), rule }
}

fn check(what: &'static str, value: &str, got: u8, want: u32) -> Result<(), IdentifierError> {
    let want = char::from_digit(want, 10).unwrap_or('?');
    if char::from(got) == want {
        Ok(())
    } else {
        Err(IdentifierError::CheckDigit { what, value: value.to_owned(), got: char::from(got), want })
    }
}

/// An IATA air waybill number: a 3-digit airline prefix and an 8-digit serial whose last digit
/// is the first seven modulo 7. Canonical form `020-12345675`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AirWaybill(String);

impl FromStr for AirWaybill {
    type Err = IdentifierError;
    fn from_str(s: &str) -> Result<Self, IdentifierError> {
        const WHAT: &str = "an air waybill number";
        let b = s.as_bytes();
        let digits: Vec<u8> = b.iter().copied().filter(|c| *c != b'-').collect();
        if b.len() != 12 || b[3] != b'-' || digits.len() != 11 || !digits.iter().all(u8::is_ascii_digit) {
            return Err(shape(WHAT, s, "3 prefix digits, a dash and 8 serial digits, e.g. 020-12345675"));
        }
        let serial = digits[3..10].iter().fold(0u32, |n, c| n * 10 + digit(*c));
        check(WHAT, s, digits[10], serial % 7)?;
        Ok(AirWaybill(s.to_owned()))
    }
}

impl AirWaybill {
    /// From 11 digits with or without the dash and spaces.
    ///
    /// # Errors
    /// As `FromStr`.
    pub fn parse_lenient(s: &str) -> Result<Self, IdentifierError> {
        let d: String = s.chars().filter(char::is_ascii_digit).collect();
        if d.len() != 11 || s.chars().any(|c| !c.is_ascii_digit() && !matches!(c, ' ' | '-')) {
            return Err(shape(
                "an air waybill number",
                s,
                "11 digits: 3 prefix and 8 serial, e.g. 020-12345675",
            ));
        }
        format!("{}-{}", &d[..3], &d[3..]).parse()
    }

    /// The canonical text form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The airline prefix (IATA accounting code).
    pub fn prefix(&self) -> &str {
        &self.0[..3]
    }
}

text_form!(AirWaybill);

/// An ISO 6346 freight container number: a 3-letter owner code, a category letter (U, J or Z),
/// a 6-digit serial and a check digit. Canonical form `CSQU3054383`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContainerNumber(String);

impl FromStr for ContainerNumber {
    type Err = IdentifierError;
    fn from_str(s: &str) -> Result<Self, IdentifierError> {
        const WHAT: &str = "an ISO 6346 container number";
        let b = s.as_bytes();
        if b.len() != 11
            || !b[..3].iter().all(u8::is_ascii_uppercase)
            || !matches!(b[3], b'U' | b'J' | b'Z')
            || !b[4..].iter().all(u8::is_ascii_digit)
        {
            return Err(shape(
                WHAT,
                s,
                "3 owner letters, U, J or Z, 6 digits and a check digit, e.g. CSQU3054383",
            ));
        }
        // Letters count 10 upwards, skipping the multiples of 11; position i weighs 2^i.
        let value = |c: u8| -> u32 {
            if c.is_ascii_digit() {
                return digit(c);
            }
            let mut v = 10 + u32::from(c - b'A');
            v += (v - 1) / 10; // 11, 22, 33 are skipped
            v
        };
        let sum: u32 = b[..10].iter().enumerate().map(|(i, c)| value(*c) << i).sum();
        check(WHAT, s, b[10], sum % 11 % 10)?;
        Ok(ContainerNumber(s.to_owned()))
    }
}
ident_text!(ContainerNumber);

/// An IMO ship identification number: 7 digits, the last a check digit (the first six weighted
/// 7 to 2, modulo 10). Canonical form `9074729` (shown as "IMO 9074729").
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImoNumber(String);

impl FromStr for ImoNumber {
    type Err = IdentifierError;
    fn from_str(s: &str) -> Result<Self, IdentifierError> {
        const WHAT: &str = "an IMO ship number";
        let b = s.as_bytes();
        if b.len() != 7 || !b.iter().all(u8::is_ascii_digit) {
            return Err(shape(WHAT, s, "7 digits, e.g. 9074729 (without \"IMO\")"));
        }
        let sum: u32 = b[..6].iter().zip((2..=7).rev()).map(|(c, w)| digit(*c) * w).sum();
        check(WHAT, s, b[6], sum % 10)?;
        Ok(ImoNumber(s.to_owned()))
    }
}
ident_text!(ImoNumber);

/// A UPU S10 postal item identifier: 2 service letters, an 8-digit serial, a check digit and
/// the ISO 3166 code of the issuing country. Canonical form `EE123456785GB`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PostalItem(String);

impl FromStr for PostalItem {
    type Err = IdentifierError;
    fn from_str(s: &str) -> Result<Self, IdentifierError> {
        const WHAT: &str = "a UPU S10 postal item number";
        let b = s.as_bytes();
        if !s.is_ascii()
            || b.len() != 13
            || !b[..2].iter().all(u8::is_ascii_uppercase)
            || !b[2..11].iter().all(u8::is_ascii_digit)
            || s[11..].parse::<Country>().is_err()
        {
            return Err(shape(
                WHAT,
                s,
                "2 letters, 8 digits, a check digit and a country code, e.g. EE123456785GB",
            ));
        }
        let sum: u32 = b[2..10].iter().zip([8, 6, 4, 2, 3, 5, 9, 7]).map(|(c, w)| digit(*c) * w).sum();
        let want = match 11 - sum % 11 {
            10 => 0,
            11 => 5,
            d => d,
        };
        check(WHAT, s, b[10], want)?;
        Ok(PostalItem(s.to_owned()))
    }
}
ident_text!(PostalItem);

/// A UN/LOCODE: the ISO 3166 country code and three letters or digits 2-9 (e.g. `KEMBA`
/// Mombasa, `KENBO` Nairobi). Checked for its form and country; the full UN/LOCODE list is not
/// vendored.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UnLocode(String);

impl FromStr for UnLocode {
    type Err = IdentifierError;
    fn from_str(s: &str) -> Result<Self, IdentifierError> {
        const WHAT: &str = "a UN/LOCODE";
        let b = s.as_bytes();
        if !s.is_ascii()
            || b.len() != 5
            || s[..2].parse::<Country>().is_err()
            || !b[2..].iter().all(|c| c.is_ascii_uppercase() || (b'2'..=b'9').contains(c))
        {
            return Err(shape(WHAT, s, "a country code and 3 letters or digits 2-9, e.g. KEMBA"));
        }
        Ok(UnLocode(s.to_owned()))
    }
}
ident_text!(UnLocode);

impl UnLocode {
    /// Its country.
    pub fn country(&self) -> Country {
        // Invariant: checked in `from_str`.
        self.0[..2].parse().unwrap_or_else(|_| unreachable!("checked on parse"))
    }
}

/// An IATA airport code, from the vendored list (`protocol/data/iata_airports.tsv`, from the
/// `airportsdata` package, MIT): e.g. `NBO` Jomo Kenyatta International, Nairobi.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IataAirport(&'static str, &'static str, &'static str);

impl FromStr for IataAirport {
    type Err = IdentifierError;
    fn from_str(s: &str) -> Result<Self, IdentifierError> {
        let table = super::airports::airports();
        match table.binary_search_by(|(c, _, _)| (*c).cmp(s)) {
            Ok(i) => Ok(IataAirport(table[i].0, table[i].1, table[i].2)),
            Err(_) => {
                Err(shape("an IATA airport code", s, "3 upper-case letters of a listed airport, e.g. NBO"))
            }
        }
    }
}

impl IataAirport {
    /// The code.
    pub fn as_str(&self) -> &'static str {
        self.0
    }
    /// The airport's name.
    pub fn name(&self) -> &'static str {
        self.1
    }
    /// Its country (ISO 3166 alpha-2).
    pub fn country(&self) -> &'static str {
        self.2
    }
}

text_form!(IataAirport);

/// A flight: the airline's IATA (2 characters) or ICAO (3 letters) designator, the flight
/// number (1-4 digits and an optional letter) and the date of departure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flight {
    /// The date of departure.
    pub date: Date,
    /// The flight number, e.g. `310`.
    pub number: String,
    /// The airline designator, e.g. `KQ` or `KQA`.
    pub airline: String,
}

impl Flight {
    /// Checks the designator and number.
    ///
    /// # Errors
    /// Which one is malformed.
    pub fn check(&self) -> Result<(), IdentifierError> {
        let a = self.airline.as_bytes();
        let iata = a.len() == 2
            && a.iter().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
            && !a.iter().all(u8::is_ascii_digit);
        let icao = a.len() == 3 && a.iter().all(u8::is_ascii_uppercase);
        if !iata && !icao {
            return Err(shape(
                "an airline designator",
                &self.airline,
                "2 IATA characters or 3 ICAO letters, e.g. KQ",
            ));
        }
        let n = self.number.as_bytes();
        let digits = n.iter().take_while(|c| c.is_ascii_digit()).count();
        let suffix_ok = n.len() == digits || (n.len() == digits + 1 && n[digits].is_ascii_uppercase());
        if !(1..=4).contains(&digits) || !suffix_ok {
            return Err(shape(
                "a flight number",
                &self.number,
                "1 to 4 digits and an optional letter, e.g. 310",
            ));
        }
        Ok(())
    }
}

/// A road vehicle by its registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vehicle {
    /// The plate as registered, e.g. `KDA 123A`.
    pub plate: String,
    /// The registering country.
    pub country: Country,
}

/// A carrier (airline, shipping line, courier, haulier).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Carrier {
    /// Its code, if it has one: IATA (2) or ICAO (3) airline designator, or SCAC (4 letters).
    pub code: Option<String>,
    /// Its name.
    pub name: String,
}

/// One identifier of a consignment or of how it moved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransportRef {
    /// An air waybill.
    AirWaybill(AirWaybill),
    /// A freight container.
    Container(ContainerNumber),
    /// A vessel, by its IMO number.
    Vessel(ImoNumber),
    /// A flight.
    Flight(Flight),
    /// A bill of lading, as issued (1-35 letters, digits, dashes or slashes).
    BillOfLading(String),
    /// A road vehicle.
    Vehicle(Vehicle),
    /// A postal item.
    PostalItem(PostalItem),
    /// The carrier.
    Carrier(Carrier),
}

impl TransportRef {
    /// Checks what the types alone do not (flight, bill of lading, carrier code).
    ///
    /// # Errors
    /// What is wrong.
    pub fn check(&self) -> Result<(), IdentifierError> {
        match self {
            TransportRef::Flight(f) => f.check(),
            TransportRef::BillOfLading(b) => {
                let ok = (1..=35).contains(&b.len())
                    && b.bytes()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'-' || c == b'/');
                if ok {
                    Ok(())
                } else {
                    Err(shape("a bill of lading number", b, "1 to 35 upper-case letters, digits, - or /"))
                }
            }
            TransportRef::Carrier(Carrier { code: Some(c), .. }) => {
                let b = c.as_bytes();
                let ok = match b.len() {
                    2 => b.iter().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()),
                    3 | 4 => b.iter().all(u8::is_ascii_uppercase),
                    _ => false,
                };
                if ok {
                    Ok(())
                } else {
                    Err(shape("a carrier code", c, "an IATA (2), ICAO (3) or SCAC (4) code"))
                }
            }
            _ => Ok(()),
        }
    }

    /// Its kind, as in the encoding (`air_waybill`, `container`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            TransportRef::AirWaybill(_) => "air_waybill",
            TransportRef::Container(_) => "container",
            TransportRef::Vessel(_) => "vessel",
            TransportRef::Flight(_) => "flight",
            TransportRef::BillOfLading(_) => "bill_of_lading",
            TransportRef::Vehicle(_) => "vehicle",
            TransportRef::PostalItem(_) => "postal_item",
            TransportRef::Carrier(_) => "carrier",
        }
    }
}

impl fmt::Display for TransportRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransportRef::AirWaybill(a) => write!(f, "air waybill {a}"),
            TransportRef::Container(c) => write!(f, "container {c}"),
            TransportRef::Vessel(v) => write!(f, "vessel IMO {v}"),
            TransportRef::Flight(x) => write!(f, "flight {}{} of {}", x.airline, x.number, x.date),
            TransportRef::BillOfLading(b) => write!(f, "bill of lading {b}"),
            TransportRef::Vehicle(v) => write!(f, "vehicle {} ({})", v.plate, v.country),
            TransportRef::PostalItem(p) => write!(f, "postal item {p}"),
            TransportRef::Carrier(c) => match &c.code {
                Some(code) => write!(f, "carrier {} ({code})", c.name),
                None => write!(f, "carrier {}", c.name),
            },
        }
    }
}

/// A point as decimal degrees (WGS 84), e.g. `{"lat": "-1.31924", "lon": "36.9278"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Coordinates {
    /// Latitude, -90 to 90, at most 6 decimals.
    pub lat: String,
    /// Longitude, -180 to 180, at most 6 decimals.
    pub lon: String,
}

impl Coordinates {
    /// Checks both are decimal degrees in range.
    ///
    /// # Errors
    /// Which is not.
    pub fn check(&self) -> Result<(), IdentifierError> {
        let ok = |s: &str, max: f64| -> bool {
            let body = s.strip_prefix('-').unwrap_or(s);
            let (int, frac) = body.split_once('.').unwrap_or((body, ""));
            let shape = !int.is_empty()
                && int.len() <= 3
                && int.bytes().all(|c| c.is_ascii_digit())
                && frac.len() <= 6
                && frac.bytes().all(|c| c.is_ascii_digit())
                && !(body.contains('.') && frac.is_empty());
            shape && s.parse::<f64>().is_ok_and(|v| v.abs() <= max)
        };
        if !ok(&self.lat, 90.0) {
            return Err(shape("a latitude", &self.lat, "decimal degrees from -90 to 90, at most 6 decimals"));
        }
        if !ok(&self.lon, 180.0) {
            return Err(shape(
                "a longitude",
                &self.lon,
                "decimal degrees from -180 to 180, at most 6 decimals",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn digit_error<T: FromStr<Err = IdentifierError> + fmt::Debug>(s: &str) -> (char, char) {
        match s.parse::<T>() {
            Err(IdentifierError::CheckDigit { got, want, .. }) => (got, want),
            other => panic!("{s}: expected a check-digit error, got {other:?}"),
        }
    }

    #[test]
    fn air_waybills_check_their_mod_7_digit() {
        // 1234567 mod 7 = 5.
        assert_eq!("176-12345675".parse::<AirWaybill>().unwrap().prefix(), "176");
        assert_eq!(digit_error::<AirWaybill>("176-12345674"), ('4', '5'));
        assert_eq!(AirWaybill::parse_lenient("176 1234 5675").unwrap().as_str(), "176-12345675");
        assert_eq!(AirWaybill::parse_lenient("17612345675").unwrap().as_str(), "176-12345675");
        for bad in ["17612345675", "176-1234567", "176-1234567X", "1761-2345675"] {
            assert!(matches!(bad.parse::<AirWaybill>(), Err(IdentifierError::Shape { .. })), "{bad}");
        }
    }

    #[test]
    fn container_numbers_check_their_iso_6346_digit() {
        // The standard's own example, and one whose remainder 10 folds to 0.
        assert!("CSQU3054383".parse::<ContainerNumber>().is_ok());
        assert!("CSQU0000070".parse::<ContainerNumber>().is_ok());
        assert_eq!(digit_error::<ContainerNumber>("CSQU3054384"), ('4', '3'));
        assert_eq!(ContainerNumber::parse_lenient("csqu 305438-3").unwrap().as_str(), "CSQU3054383");
        for bad in ["CSQX3054383", "CSQU305438", "C5QU3054383", "CSQU30543833"] {
            assert!(matches!(bad.parse::<ContainerNumber>(), Err(IdentifierError::Shape { .. })), "{bad}");
        }
    }

    #[test]
    fn imo_numbers_check_their_weighted_digit() {
        // 9×7 + 0×6 + 7×5 + 4×4 + 7×3 + 2×2 = 139: check digit 9.
        assert!("9074729".parse::<ImoNumber>().is_ok());
        assert_eq!(digit_error::<ImoNumber>("9074728"), ('8', '9'));
        assert!(matches!("907472".parse::<ImoNumber>(), Err(IdentifierError::Shape { .. })));
    }

    #[test]
    fn postal_items_check_their_s10_digit() {
        // 1×8 + 2×6 + 3×4 + 4×2 + 5×3 + 6×5 + 7×9 + 8×7 = 204; 11 − 204 mod 11 = 5.
        assert!("EE123456785GB".parse::<PostalItem>().is_ok());
        assert_eq!(digit_error::<PostalItem>("EE123456784GB"), ('4', '5'));
        // 11 − r = 10 gives 0; 11 − r = 11 gives 5.
        assert!("RR100000140KE".parse::<PostalItem>().is_ok());
        assert!("RR100000025KE".parse::<PostalItem>().is_ok());
        assert!(matches!("EE123456785XX".parse::<PostalItem>(), Err(IdentifierError::Shape { .. })));
        assert_eq!(PostalItem::parse_lenient("ee 123 456 785 gb").unwrap().as_str(), "EE123456785GB");
    }

    #[test]
    fn places_are_coded_by_un_locode_and_iata_airport() {
        let l: UnLocode = "KEMBA".parse().unwrap();
        assert_eq!(l.country().as_str(), "KE");
        for bad in ["XXMBA", "KEMB1", "KEMB", "kemba", "Aé12", "KÉNBO"] {
            assert!(bad.parse::<UnLocode>().is_err(), "{bad}");
        }
        let a: IataAirport = "NBO".parse().unwrap();
        assert_eq!((a.name(), a.country()), ("Jomo Kenyatta International Airport", "KE"));
        assert!("NB0".parse::<IataAirport>().is_err());
        let c = |lat: &str, lon: &str| Coordinates { lat: lat.into(), lon: lon.into() }.check();
        assert!(c("-1.31924", "36.9278").is_ok() && c("90", "-180").is_ok());
        for (lat, lon) in
            [("91", "0"), ("0", "180.5"), ("1.1234567", "0"), ("1.", "0"), ("+1", "0"), ("", "0")]
        {
            assert!(c(lat, lon).is_err(), "{lat} {lon}");
        }
    }

    #[test]
    fn flights_bills_of_lading_and_carriers_are_checked() {
        let f = |airline: &str, number: &str| {
            TransportRef::Flight(Flight {
                date: "2026-11-20".parse().unwrap(),
                number: number.into(),
                airline: airline.into(),
            })
            .check()
        };
        assert!(f("KQ", "860").is_ok() && f("KQA", "310A").is_ok() && f("U2", "1").is_ok());
        for (a, n) in
            [("K", "860"), ("KQ", "12345"), ("KQ", ""), ("KQ", "86AB"), ("12", "860"), ("kq", "860")]
        {
            assert!(f(a, n).is_err(), "{a} {n}");
        }
        assert!(TransportRef::BillOfLading("MAEU123456789".into()).check().is_ok());
        assert!(TransportRef::BillOfLading("maeu 1".into()).check().is_err());
        let carrier =
            |code: &str| TransportRef::Carrier(Carrier { code: Some(code.into()), name: "x".into() }).check();
        assert!(carrier("KQ").is_ok() && carrier("KQA").is_ok() && carrier("MAEU").is_ok());
        assert!(carrier("MAERSK").is_err());
        let t = TransportRef::AirWaybill("176-12345675".parse().unwrap());
        assert_eq!((t.kind(), t.to_string()), ("air_waybill", "air waybill 176-12345675".to_string()));
    }
}

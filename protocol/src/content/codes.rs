//! Coded fields, validated against the real code lists: ISO 3166-1 alpha-2 countries, CITES
//! appendices and term / unit / source / purpose codes, HS codes, TLP 2.0 labels, Admiralty
//! grading, calendar dates and decimal amounts.
//!
//! Every type here has exactly one canonical text form. `FromStr` accepts only that form, so a
//! decoded message can be re-encoded byte for byte; the few lenient parsers for human input are
//! named as such (`parse_lenient`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::cites_tables::{PURPOSE_CODES, SOURCE_CODES, TERM_CODES, UNIT_CODES};

/// Why a coded field was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodeError {
    /// Not an officially assigned ISO 3166-1 alpha-2 code.
    #[error("{0:?} is not an ISO 3166-1 alpha-2 country code (two upper-case letters, e.g. KE)")]
    Country(String),
    /// Not a CITES appendix (I, II or III).
    #[error("{0:?} is not a CITES appendix: use I, II or III")]
    Appendix(String),
    /// Not on the CITES trade database list for this kind of code.
    #[error("{value:?} is not a CITES {list} code (see the CITES trade database code lists)")]
    Cites {
        /// Which list: term, unit, source or purpose.
        list: &'static str,
        /// The refused value.
        value: String,
    },
    /// Not a valid HS code.
    #[error("{value:?} is not an HS code: {reason}")]
    Hs {
        /// The refused value.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An HS code of the right form that the HS 2022 nomenclature does not have.
    #[error("{value:?} is not in the HS 2022 nomenclature: it has no {level} {missing}")]
    HsUnknown {
        /// The refused value.
        value: String,
        /// `chapter`, `heading` or `subheading`.
        level: &'static str,
        /// The first part of the code that does not exist.
        missing: String,
    },
    /// Not a TLP 2.0 label.
    #[error("{0:?} is not a TLP 2.0 label: use TLP:RED, TLP:AMBER+STRICT, TLP:AMBER, TLP:GREEN or TLP:CLEAR")]
    Tlp(String),
    /// Not a grading of a known scheme.
    #[error(
        "{0:?} is not a grading: Admiralty B2 (source A-F, information 1-6), Europol 4x4:B3 (source A, B, C or X, information 1-4) or UK 3x5x2:1AP (source 1-3, intelligence A-E, handling P or C)"
    )]
    Grading(String),
    /// Not a calendar date in the form YYYY-MM-DD.
    #[error("{0:?} is not a date in the form YYYY-MM-DD")]
    Date(String),
    /// Not a non-negative decimal amount.
    #[error(
        "{0:?} is not an amount: digits with at most one decimal point and 6 decimals, no sign, no leading zeros"
    )]
    Amount(String),
    /// Not an ISO 4217 currency code.
    #[error("{0:?} is not an ISO 4217 currency code (three upper-case letters, e.g. USD, KES)")]
    Currency(String),
    /// Not a media type of the form type/subtype.
    #[error("{0:?} is not a media type of the form type/subtype (e.g. image/jpeg)")]
    MediaType(String),
}

/// Implements `Display`, `Serialize` (as text) and `Deserialize` (through `FromStr`).
macro_rules! text_form {
    ($t:ty) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
pub(super) use text_form;

// ---------------------------------------------------------------------------------------------
// Countries

/// An officially assigned ISO 3166-1 alpha-2 country code, e.g. `KE`, `VN`, `FR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Country([u8; 2]);

impl Country {
    /// The code as text.
    pub fn as_str(&self) -> &str {
        // Invariant: only constructed from two ASCII upper-case letters.
        std::str::from_utf8(&self.0).expect("country codes are ASCII")
    }

    /// Its English short name (`KE` → Kenya), for people.
    pub fn name(&self) -> &'static str {
        let names = super::country_names::COUNTRY_NAMES;
        names.binary_search_by(|(c, _)| (*c).cmp(self.as_str())).map_or("", |i| names[i].1)
    }
}

impl FromStr for Country {
    type Err = CodeError;
    fn from_str(s: &str) -> Result<Self, CodeError> {
        // The list is sorted, space-separated, 3 bytes per entry: binary search on the bytes.
        let list = ISO_3166_ALPHA2.as_bytes();
        let code: [u8; 2] = s.as_bytes().try_into().map_err(|_| CodeError::Country(s.to_owned()))?;
        let (mut lo, mut hi) = (0, list.len().div_ceil(3));
        while lo < hi {
            let mid = (lo + hi) / 2;
            match list[mid * 3..mid * 3 + 2].cmp(&code[..]) {
                std::cmp::Ordering::Equal => return Ok(Country(code)),
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
            }
        }
        Err(CodeError::Country(s.to_owned()))
    }
}
text_form!(Country);

/// The 249 officially assigned ISO 3166-1 alpha-2 codes, sorted.
const ISO_3166_ALPHA2: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ \
BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ \
CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET \
FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU \
ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ \
LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ \
NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW \
SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ \
UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";

// ---------------------------------------------------------------------------------------------
// CITES

/// The CITES appendix a species is listed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Appendix {
    /// Appendix I: threatened with extinction; trade only in exceptional circumstances.
    I,
    /// Appendix II: trade controlled to avoid use incompatible with survival.
    II,
    /// Appendix III: protected in at least one Party that asked others for help.
    III,
}

impl Appendix {
    /// The appendix as text: `I`, `II` or `III`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Appendix::I => "I",
            Appendix::II => "II",
            Appendix::III => "III",
        }
    }
}

impl FromStr for Appendix {
    type Err = CodeError;
    fn from_str(s: &str) -> Result<Self, CodeError> {
        match s {
            "I" => Ok(Appendix::I),
            "II" => Ok(Appendix::II),
            "III" => Ok(Appendix::III),
            _ => Err(CodeError::Appendix(s.to_owned())),
        }
    }
}
text_form!(Appendix);

macro_rules! cites_code {
    ($(#[$doc:meta])* $t:ident, $table:ident, $list:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $t(&'static str, &'static str);

        impl $t {
            /// The code as text.
            pub fn as_str(&self) -> &'static str {
                self.0
            }
            /// The English description from the CITES code list.
            pub fn description(&self) -> &'static str {
                self.1
            }
            /// Every code on the list, in code order.
            pub fn all() -> impl Iterator<Item = $t> {
                $table.iter().map(|&(c, d)| $t(c, d))
            }
        }

        impl FromStr for $t {
            type Err = CodeError;
            fn from_str(s: &str) -> Result<Self, CodeError> {
                $table
                    .binary_search_by(|(c, _)| (*c).cmp(s))
                    .map(|i| $t($table[i].0, $table[i].1))
                    .map_err(|_| CodeError::Cites { list: $list, value: s.to_owned() })
            }
        }
        text_form!($t);
    };
}

cites_code!(
    /// A CITES term code: what the specimen is (e.g. `TUS` tusks, `IVC` ivory carvings).
    TermCode, TERM_CODES, "term"
);
cites_code!(
    /// A CITES unit code (e.g. `KIL` kilograms); no unit means a count of specimens.
    UnitCode, UNIT_CODES, "unit"
);
cites_code!(
    /// A CITES source code (e.g. `W` taken from the wild, `C` bred in captivity).
    SourceCode, SOURCE_CODES, "source"
);
cites_code!(
    /// A CITES purpose code (e.g. `T` commercial, `P` personal).
    PurposeCode, PURPOSE_CODES, "purpose"
);

// ---------------------------------------------------------------------------------------------
// HS codes

/// A Harmonized System code of 2, 4, 6, 8 or 10 digits, stored without dots (`050710`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HsCode(String);

impl HsCode {
    /// The digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Parses human input such as `0507.10` or `9601 10`: dots and spaces are removed first.
    ///
    /// # Errors
    /// [`CodeError::Hs`] if what remains is not a valid HS code.
    pub fn parse_lenient(s: &str) -> Result<Self, CodeError> {
        let digits: String = s.chars().filter(|c| *c != '.' && *c != ' ').collect();
        let code: HsCode = digits.parse().map_err(|_| CodeError::Hs {
            value: s.to_owned(),
            reason: "expected 2, 4, 6, 8 or 10 digits (dots and spaces allowed) with a chapter 01-99 other than 77",
        })?;
        code.check_nomenclature().map_err(|e| match e {
            CodeError::HsUnknown { level, missing, .. } => {
                CodeError::HsUnknown { value: s.to_owned(), level, missing }
            }
            e => e,
        })?;
        Ok(code)
    }

    /// Whether the code is in the HS 2022 nomenclature: its chapter, heading and subheading (as
    /// far as it has digits) must each exist; digits 7–10 are national, and chapters 98 and 99
    /// are left to national use. Checked for content being written and for an operator's input;
    /// content received is read without it (a code of another edition still reads).
    ///
    /// # Errors
    /// [`CodeError::HsUnknown`] naming the first level that does not exist.
    pub fn check_nomenclature(&self) -> Result<(), CodeError> {
        let s = &self.0;
        if !matches!(&s[..2], "98" | "99") {
            for (len, level) in [(2, "chapter"), (4, "heading"), (6, "subheading")] {
                if s.len() >= len && super::hs2022::description(&s[..len]).is_none() {
                    let missing = s[..len].to_owned();
                    return Err(CodeError::HsUnknown { value: s.clone(), level, missing });
                }
            }
        }
        Ok(())
    }

    /// The two-digit HS chapter.
    pub fn chapter(&self) -> &str {
        &self.0[..2]
    }

    /// What the code covers, for people, from its most precise level: Godwit's short wording
    /// where it has one (the headings wildlife trade is declared or mis-declared under, e.g.
    /// `050710` → "ivory; ivory powder and waste, unworked"), else the HS 2022 description.
    /// Empty for the national chapters 98 and 99.
    pub fn description(&self) -> String {
        let table = super::hs_names::HS_NAMES;
        for len in [6, 4, 2] {
            if self.0.len() < len {
                continue;
            }
            let code = &self.0[..len];
            if let Ok(i) = table.binary_search_by(|(c, _)| (*c).cmp(code)) {
                return table[i].1.to_string();
            }
            if let Some(d) = super::hs2022::description(code) {
                return d.to_string();
            }
        }
        String::new()
    }
}

impl FromStr for HsCode {
    type Err = CodeError;
    fn from_str(s: &str) -> Result<Self, CodeError> {
        let err = |reason| Err(CodeError::Hs { value: s.to_owned(), reason });
        if !s.bytes().all(|b| b.is_ascii_digit()) {
            return err("only digits are allowed");
        }
        if !matches!(s.len(), 2 | 4 | 6 | 8 | 10) {
            return err("expected 2, 4, 6, 8 or 10 digits");
        }
        // Chapter 77 is reserved for future use in the HS; 00 does not exist.
        if matches!(&s[..2], "00" | "77") {
            return err("chapter 00 and 77 do not exist");
        }
        Ok(HsCode(s.to_owned()))
    }
}
text_form!(HsCode);

// ---------------------------------------------------------------------------------------------
// TLP 2.0

/// A TLP 2.0 handling marking. Ordered from most to least restrictive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tlp {
    /// TLP:RED — for the named recipients only; travels only as a direct message.
    Red,
    /// TLP:AMBER+STRICT — within the recipient's organisation only.
    AmberStrict,
    /// TLP:AMBER — the recipient's organisation and those it must inform to act.
    Amber,
    /// TLP:GREEN — within the community (the channel's membership), not public.
    Green,
    /// TLP:CLEAR — no restriction.
    Clear,
}

impl Tlp {
    /// The label as written in TLP 2.0, e.g. `TLP:AMBER+STRICT`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Tlp::Red => "TLP:RED",
            Tlp::AmberStrict => "TLP:AMBER+STRICT",
            Tlp::Amber => "TLP:AMBER",
            Tlp::Green => "TLP:GREEN",
            Tlp::Clear => "TLP:CLEAR",
        }
    }

    /// Parses human input: case-insensitive, `TLP:` prefix optional, TLP 1.0 `WHITE` read as
    /// `CLEAR`.
    ///
    /// # Errors
    /// [`CodeError::Tlp`] for anything else.
    pub fn parse_lenient(s: &str) -> Result<Self, CodeError> {
        let up = s.trim().to_ascii_uppercase();
        let bare = up.strip_prefix("TLP:").unwrap_or(&up);
        match bare {
            "WHITE" => Ok(Tlp::Clear),
            _ => format!("TLP:{bare}").parse().map_err(|_| CodeError::Tlp(s.to_owned())),
        }
    }
}

impl FromStr for Tlp {
    type Err = CodeError;
    fn from_str(s: &str) -> Result<Self, CodeError> {
        [Tlp::Red, Tlp::AmberStrict, Tlp::Amber, Tlp::Green, Tlp::Clear]
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| CodeError::Tlp(s.to_owned()))
    }
}
text_form!(Tlp);

// ---------------------------------------------------------------------------------------------
// Grading

/// The grading scheme a grading is in: the same two characters mean different things in
/// each (an Admiralty "B3" is "possibly true", a Europol 4x4 "B3" is corroborated).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GradingScheme {
    /// Admiralty (NATO) code: source reliability A-F, information credibility 1-6. Written
    /// `B2`.
    Admiralty,
    /// The Europol / EU 4x4 system: source A, B, C or X, information 1-4. Written `4x4:B3`.
    Europol4x4,
    /// The UK 3x5x2 system: source 1-3, intelligence A-E, handling P or C. Written
    /// `3x5x2:1AP`.
    Uk3x5x2,
}

/// A grading of source and information, in its scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Grading {
    scheme: GradingScheme,
    text: [u8; 9],
    len: u8,
}

impl Grading {
    /// Builds an Admiralty grading from its two parts.
    ///
    /// # Errors
    /// [`CodeError::Grading`] if the letter is not A-F or the digit not 1-6.
    pub fn new(reliability: char, credibility: u8) -> Result<Self, CodeError> {
        format!("{reliability}{credibility}").parse()
    }
    /// Its scheme.
    pub fn scheme(&self) -> GradingScheme {
        self.scheme
    }
    /// The source's evaluation: Admiralty `A`-`F`, 4x4 `A`, `B`, `C` or `X`, 3x5x2 `1`-`3`.
    pub fn reliability(&self) -> char {
        char::from(self.code()[0])
    }
    /// The information's evaluation: Admiralty 1-6, 4x4 1-4, 3x5x2 `A`-`E` as 1-5.
    pub fn credibility(&self) -> u8 {
        let c = self.code()[1];
        if c.is_ascii_digit() { c - b'0' } else { c - b'A' + 1 }
    }
    /// The 3x5x2 handling code (`P` or `C`).
    pub fn handling(&self) -> Option<char> {
        (self.scheme == GradingScheme::Uk3x5x2).then(|| char::from(self.code()[2]))
    }
    /// The grading after its scheme prefix, e.g. `B3`, `1AP`.
    fn code(&self) -> &[u8] {
        let t = &self.text[..usize::from(self.len)];
        match self.scheme {
            GradingScheme::Admiralty => t,
            GradingScheme::Europol4x4 => &t[4..],
            GradingScheme::Uk3x5x2 => &t[6..],
        }
    }
    /// The grading as text, e.g. `B2`, `4x4:B3`, `3x5x2:1AP`.
    pub fn as_str(&self) -> &str {
        // Invariant: ASCII (checked in from_str).
        std::str::from_utf8(&self.text[..usize::from(self.len)]).expect("grading is ASCII")
    }
    /// A short English explanation in the grading's own scheme, e.g. "source usually reliable;
    /// information probably true".
    pub fn explain(&self) -> String {
        let code = self.code();
        match self.scheme {
            GradingScheme::Admiralty => {
                let r = [
                    "completely reliable",
                    "usually reliable",
                    "fairly reliable",
                    "not usually reliable",
                    "unreliable",
                    "reliability cannot be judged",
                ];
                let c = [
                    "confirmed by other sources",
                    "probably true",
                    "possibly true",
                    "doubtful",
                    "improbable",
                    "truth cannot be judged",
                ];
                format!(
                    "source {}; information {}",
                    r[usize::from(code[0] - b'A')],
                    c[usize::from(code[1] - b'1')]
                )
            }
            GradingScheme::Europol4x4 => {
                let r = match code[0] {
                    b'A' => "no doubt of its authenticity, trustworthiness and competence",
                    b'B' => "in most instances proved reliable",
                    b'C' => "in most instances proved unreliable",
                    _ => "reliability cannot be assessed",
                };
                let c = [
                    "known to be true without reservation",
                    "known personally to the source, not to the officer passing it on",
                    "not known personally to the source, but corroborated",
                    "cannot be judged",
                ];
                format!("4x4: source {r}; information {}", c[usize::from(code[1] - b'1')])
            }
            GradingScheme::Uk3x5x2 => {
                let r = ["reliable", "untested", "not reliable"];
                let c = [
                    "known directly to the source",
                    "known indirectly to the source and corroborated",
                    "known indirectly to the source",
                    "not known",
                    "suspected to be false",
                ];
                let h = if code[2] == b'P' {
                    "lawful sharing permitted"
                } else {
                    "lawful sharing permitted subject to conditions"
                };
                format!(
                    "3x5x2: source {}; intelligence {}; {h}",
                    r[usize::from(code[0] - b'1')],
                    c[usize::from(code[1] - b'A')]
                )
            }
        }
    }
}

impl FromStr for Grading {
    type Err = CodeError;
    fn from_str(s: &str) -> Result<Self, CodeError> {
        let scheme = match s.as_bytes() {
            [b'A'..=b'F', b'1'..=b'6'] => GradingScheme::Admiralty,
            [b'4', b'x', b'4', b':', b'A' | b'B' | b'C' | b'X', b'1'..=b'4'] => GradingScheme::Europol4x4,
            [b'3', b'x', b'5', b'x', b'2', b':', b'1'..=b'3', b'A'..=b'E', b'P' | b'C'] => {
                GradingScheme::Uk3x5x2
            }
            _ => return Err(CodeError::Grading(s.to_owned())),
        };
        let mut text = [0u8; 9];
        text[..s.len()].copy_from_slice(s.as_bytes());
        Ok(Grading { scheme, text, len: s.len() as u8 })
    }
}
text_form!(Grading);

// ---------------------------------------------------------------------------------------------
// Dates and amounts

/// A calendar date (proleptic Gregorian), written `YYYY-MM-DD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Date {
    year: u16,
    month: u8,
    day: u8,
    text: [u8; 10],
}

impl Date {
    /// Builds a date, checking that the day exists.
    ///
    /// # Errors
    /// [`CodeError::Date`] if it does not.
    pub fn new(year: u16, month: u8, day: u8) -> Result<Self, CodeError> {
        format!("{year:04}-{month:02}-{day:02}").parse()
    }
    /// The year, month and day.
    pub fn ymd(&self) -> (u16, u8, u8) {
        (self.year, self.month, self.day)
    }
    /// The date as `YYYY-MM-DD`.
    pub fn as_str(&self) -> &str {
        // Invariant: built from ASCII digits and dashes.
        std::str::from_utf8(&self.text).expect("dates are ASCII")
    }
}

impl FromStr for Date {
    type Err = CodeError;
    fn from_str(s: &str) -> Result<Self, CodeError> {
        let err = || CodeError::Date(s.to_owned());
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return Err(err());
        }
        let num = |r: std::ops::Range<usize>| -> Result<u16, CodeError> {
            let part = &s[r];
            match part.bytes().all(|c| c.is_ascii_digit()) {
                true => part.parse().map_err(|_| err()),
                false => Err(err()),
            }
        };
        let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
        let days = match month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if leap => 29,
            2 => 28,
            _ => return Err(err()),
        };
        if year < 1900 || day == 0 || day > days {
            return Err(err());
        }
        let mut text = [0u8; 10];
        text.copy_from_slice(b);
        // month and day are < 256 by the checks above
        Ok(Date { year, month: month as u8, day: day as u8, text })
    }
}
text_form!(Date);

/// A non-negative decimal amount such as `12`, `0.5` or `1250.75`, kept exactly as text (no
/// floating point: quantities and values must survive every node unchanged).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Amount(String);

impl Amount {
    /// The amount as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Amount {
    type Err = CodeError;
    fn from_str(s: &str) -> Result<Self, CodeError> {
        let err = || CodeError::Amount(s.to_owned());
        let (int, frac) = match s.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (s, None),
        };
        let digits = |p: &str| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit());
        if !digits(int) || int.len() > 15 || (int.len() > 1 && int.starts_with('0')) {
            return Err(err());
        }
        if let Some(f) = frac {
            // no trailing zeros keeps one canonical form per value
            if !digits(f) || f.len() > 6 || f.ends_with('0') {
                return Err(err());
            }
        }
        Ok(Amount(s.to_owned()))
    }
}
text_form!(Amount);

/// A currency code: three upper-case letters (ISO 4217 form, e.g. `USD`, `EUR`, `KES`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency([u8; 3]);

impl Currency {
    /// The code as text.
    pub fn as_str(&self) -> &str {
        // Invariant: three ASCII upper-case letters.
        std::str::from_utf8(&self.0).expect("currency codes are ASCII")
    }

    /// Its name (`KES` → Kenyan Shilling), for people.
    pub fn name(&self) -> &'static str {
        let t = super::currencies::CURRENCIES;
        t.binary_search_by(|(c, _)| (*c).cmp(self.as_str())).map_or("", |i| t[i].1)
    }
}

impl FromStr for Currency {
    type Err = CodeError;
    fn from_str(s: &str) -> Result<Self, CodeError> {
        let listed = super::currencies::CURRENCIES.binary_search_by(|(c, _)| (*c).cmp(s)).is_ok();
        match s.as_bytes() {
            [a, b, c] if listed => Ok(Currency([*a, *b, *c])),
            _ => Err(CodeError::Currency(s.to_owned())),
        }
    }
}
text_form!(Currency);

/// A media type such as `image/jpeg` or `application/pdf` (RFC 6838 restricted names, lower case).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MediaType(String);

impl MediaType {
    /// The media type as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for MediaType {
    type Err = CodeError;
    fn from_str(s: &str) -> Result<Self, CodeError> {
        let name = |p: &str| {
            (1..=64).contains(&p.len())
                && p.as_bytes()[0].is_ascii_alphanumeric()
                && p.bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"!#$&-^_.+".contains(&c))
        };
        match s.split_once('/') {
            Some((t, sub)) if name(t) && name(sub) => Ok(MediaType(s.to_owned())),
            _ => Err(CodeError::MediaType(s.to_owned())),
        }
    }
}
text_form!(MediaType);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn countries_accept_assigned_codes_only() {
        assert_eq!("KE".parse::<Country>().unwrap().as_str(), "KE");
        assert_eq!(ISO_3166_ALPHA2.split(' ').count(), 249);
        for c in ISO_3166_ALPHA2.split(' ') {
            assert_eq!(c.parse::<Country>().unwrap().as_str(), c);
        }
        assert!(ISO_3166_ALPHA2.split(' ').all(|c| c.len() == 2), "3 bytes per entry");
        for bad in ["ke", "XK", "EU", "K", "KEN", "", "UK"] {
            assert_eq!(bad.parse::<Country>(), Err(CodeError::Country(bad.to_owned())), "{bad}");
        }
        let list: Vec<&str> = ISO_3166_ALPHA2.split(' ').collect();
        let mut sorted = list.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(list, sorted);
    }

    #[test]
    fn appendix_parses_roman_numerals_only() {
        assert_eq!("II".parse::<Appendix>(), Ok(Appendix::II));
        assert_eq!("2".parse::<Appendix>(), Err(CodeError::Appendix("2".into())));
    }

    #[test]
    fn cites_codes_match_the_trade_database_lists() {
        let tsv = include_str!("../../data/cites_codes.tsv");
        let mut n = 0;
        for line in tsv.lines().skip(1) {
            let mut f = line.split('\t');
            let (list, code, desc) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
            let got = match list {
                "term" => code.parse::<TermCode>().map(|c| c.description()),
                "unit" => code.parse::<UnitCode>().map(|c| c.description()),
                "source" => code.parse::<SourceCode>().map(|c| c.description()),
                "purpose" => code.parse::<PurposeCode>().map(|c| c.description()),
                other => panic!("unknown list {other}"),
            };
            assert_eq!(got, Ok(desc), "{list} {code}");
            n += 1;
        }
        let total = TermCode::all().count()
            + UnitCode::all().count()
            + SourceCode::all().count()
            + PurposeCode::all().count();
        assert_eq!(n, total);
        assert_eq!("TUS".parse::<TermCode>().unwrap().description(), "Tusks");
    }

    #[test]
    fn cites_codes_reject_unknown_values() {
        assert_eq!("TUSK".parse::<TermCode>(), Err(CodeError::Cites { list: "term", value: "TUSK".into() }));
        assert_eq!("kil".parse::<UnitCode>(), Err(CodeError::Cites { list: "unit", value: "kil".into() }));
        // Y (assisted production, Res. Conf. 11.11 (Rev. CoP18)) is on the current list.
        assert_eq!("Y".parse::<SourceCode>().map(|s| s.as_str()), Ok("Y"));
        assert!("Z".parse::<SourceCode>().is_err());
        assert!("A".parse::<PurposeCode>().is_err());
        let e = "ZZZ".parse::<TermCode>().unwrap_err().to_string();
        assert!(e.contains("CITES term code"), "{e}");
    }

    #[test]
    fn hs_codes_are_digits_of_even_length_with_a_real_chapter() {
        assert_eq!(HsCode::parse_lenient("0507.10").unwrap().as_str(), "050710");
        assert_eq!("9601".parse::<HsCode>().unwrap().chapter(), "96");
        for bad in ["050", "0507.10", "7701", "00", "12345678901", "ab"] {
            assert!(matches!(bad.parse::<HsCode>(), Err(CodeError::Hs { .. })), "{bad}");
        }
        assert!(HsCode::parse_lenient("05x7").is_err());
        // Checked against HS 2022 to six digits; national digits beyond, and chapters 98–99, are not.
        let strict = |s: &str| s.parse::<HsCode>().and_then(|h| h.check_nomenclature().map(|()| h));
        assert!(strict("05071000").is_ok() && strict("9801").is_ok());
        // Read as received (its form only), checked when written.
        assert!("050720".parse::<HsCode>().is_ok());
        for (bad, level, missing) in [
            ("9800", "", ""),
            ("0599", "heading", "0599"),
            ("050720", "subheading", "050720"),
            ("05072099", "subheading", "050720"),
            ("0509", "heading", "0509"),
        ] {
            match strict(bad) {
                Ok(_) if level.is_empty() => {}
                Err(CodeError::HsUnknown { level: l, missing: m, .. }) => {
                    assert_eq!((l, m.as_str()), (level, missing), "{bad}");
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
        let e = HsCode::parse_lenient("0507.20").unwrap_err().to_string();
        assert_eq!(e, "\"0507.20\" is not in the HS 2022 nomenclature: it has no subheading 050720");
    }

    #[test]
    fn tlp_labels_are_exact_and_white_maps_to_clear() {
        assert_eq!("TLP:AMBER+STRICT".parse::<Tlp>(), Ok(Tlp::AmberStrict));
        assert_eq!("TLP:amber".parse::<Tlp>(), Err(CodeError::Tlp("TLP:amber".into())));
        assert_eq!(Tlp::parse_lenient("white"), Ok(Tlp::Clear));
        assert_eq!(Tlp::parse_lenient("tlp:white"), Ok(Tlp::Clear));
        assert_eq!(Tlp::parse_lenient("amber+strict"), Ok(Tlp::AmberStrict));
        assert_eq!(Tlp::parse_lenient("purple"), Err(CodeError::Tlp("purple".into())));
        assert!(Tlp::Red < Tlp::Clear);
    }

    #[test]
    fn grading_is_letter_then_digit() {
        let g: Grading = "B2".parse().unwrap();
        assert_eq!((g.reliability(), g.credibility()), ('B', 2));
        assert_eq!(g.explain(), "source usually reliable; information probably true");
        for bad in ["G1", "A7", "a1", "B", "B22", "2B"] {
            assert_eq!(bad.parse::<Grading>(), Err(CodeError::Grading(bad.into())));
        }
        assert_eq!(Grading::new('F', 6).unwrap().as_str(), "F6");
    }

    #[test]
    fn dates_must_exist() {
        assert_eq!(Date::new(2024, 2, 29).unwrap().as_str(), "2024-02-29");
        for bad in [
            "2023-02-29",
            "2024-13-01",
            "2024-00-10",
            "2024-1-01",
            "24-01-01",
            "2024/01/01",
            "2024-01-+1",
            "1850-01-01",
        ] {
            assert_eq!(bad.parse::<Date>(), Err(CodeError::Date(bad.into())), "{bad}");
        }
    }

    #[test]
    fn amounts_have_one_canonical_form() {
        for good in ["0", "12", "0.5", "1250.75"] {
            assert_eq!(good.parse::<Amount>().unwrap().as_str(), good);
        }
        for bad in ["", "01", "1.", ".5", "1.50", "-1", "1e3", "1.2345678", "1,5"] {
            assert_eq!(bad.parse::<Amount>(), Err(CodeError::Amount(bad.into())), "{bad}");
        }
    }

    #[test]
    fn currencies_and_media_types() {
        assert!("USD".parse::<Currency>().is_ok());
        assert_eq!("usd".parse::<Currency>(), Err(CodeError::Currency("usd".into())));
        assert!("image/jpeg".parse::<MediaType>().is_ok());
        assert!("application/vnd.godwit+cbor".parse::<MediaType>().is_ok());
        for bad in ["image", "Image/JPEG", "/x", "a/", "a b/c"] {
            assert_eq!(bad.parse::<MediaType>(), Err(CodeError::MediaType(bad.into())), "{bad}");
        }
    }
}

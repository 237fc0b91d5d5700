//! Deterministic CBOR: encoding, strict decoding, and bounded list decoding.
//!
//! Every structure Godwit signs is encoded with RFC 8949 §4.2.1 core deterministic encoding:
//! definite lengths, shortest integer forms, map keys in bytewise order of their encodings. Our
//! serde types declare their fields in that order, so encoding is deterministic by construction.
//! Decoding is strict: after decoding, the value is encoded again and must give back exactly the
//! bytes received. That one check rejects indefinite lengths, non-shortest integers, unsorted or
//! duplicate keys, unknown fields, tags, byte strings sent as arrays and trailing bytes.

use serde::{Serialize, de::DeserializeOwned};

use crate::limits::LIMITS;

/// Why a CBOR item was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The bytes are not well-formed CBOR or do not have the expected structure.
    #[error("malformed CBOR for {what}: {detail}")]
    Malformed {
        /// The structure being decoded.
        what: &'static str,
        /// What the decoder reported.
        detail: String,
    },
    /// The CBOR nests deeper than the protocol allows.
    #[error("CBOR for {what} nests deeper than the limit of {limit} levels")]
    TooDeep {
        /// The structure being decoded.
        what: &'static str,
        /// The nesting limit.
        limit: usize,
    },
    /// The CBOR is valid but not in deterministic encoding (or has trailing bytes).
    #[error(
        "CBOR for {what} is not in deterministic encoding (RFC 8949 §4.2.1): re-encoding gives different bytes"
    )]
    NotDeterministic {
        /// The structure being decoded.
        what: &'static str,
    },
}

/// Encodes `value` as deterministic CBOR.
///
/// Infallible for Godwit's own types (they contain no maps with non-string keys, no floats and
/// nothing that can fail to serialise); the `expect` guards that invariant.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    to_vec_sized(value, 128)
}

/// [`to_vec`] into a buffer allocated for `capacity` bytes (the expected size: no regrowth).
pub fn to_vec_sized<T: Serialize + ?Sized>(value: &T, capacity: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(capacity);
    // Invariant: serialising into a Vec cannot fail with an I/O error, and our types only use
    // serde data model items that ciborium supports.
    ciborium::ser::into_writer(value, &mut out).expect("encoding Godwit types into a Vec cannot fail");
    out
}

/// Decodes `bytes` as `T`, strictly: nesting limited to `LIMITS.max_cbor_depth` and the encoding
/// required to be deterministic (re-encoding must reproduce `bytes` exactly).
///
/// # Errors
/// [`CodecError::Malformed`], [`CodecError::TooDeep`] or [`CodecError::NotDeterministic`].
pub fn from_slice<T: DeserializeOwned + Serialize>(
    what: &'static str,
    bytes: &[u8],
) -> Result<T, CodecError> {
    let value = from_slice_lenient::<T>(what, bytes)?;
    if to_vec(&value) != bytes {
        return Err(CodecError::NotDeterministic { what });
    }
    Ok(value)
}

/// Decodes `bytes` with the nesting limit but without the determinism check. Only for data that
/// is not signed and not compared (e.g. JSON-free local files); network input uses [`from_slice`].
pub(crate) fn from_slice_lenient<T: DeserializeOwned>(
    what: &'static str,
    bytes: &[u8],
) -> Result<T, CodecError> {
    let limit = LIMITS.max_cbor_depth;
    ciborium::de::from_reader_with_recursion_limit(bytes, limit).map_err(|e| match e {
        ciborium::de::Error::RecursionLimitExceeded => CodecError::TooDeep { what, limit },
        other => CodecError::Malformed { what, detail: describe(other) },
    })
}

fn describe(e: ciborium::de::Error<std::io::Error>) -> String {
    match e {
        ciborium::de::Error::Io(io) => format!("input ended early ({io})"),
        ciborium::de::Error::Syntax(offset) => format!("syntax error at byte {offset}"),
        ciborium::de::Error::Semantic(offset, msg) => match offset {
            Some(o) => format!("{msg} (at byte {o})"),
            None => msg,
        },
        ciborium::de::Error::RecursionLimitExceeded => "nesting too deep".to_owned(),
    }
}

/// Serde helpers that refuse a list as soon as it exceeds its cap, before allocating for it.
pub(crate) mod bounded {
    use std::fmt;
    use std::marker::PhantomData;

    use serde::de::{Deserialize, Deserializer, Error, SeqAccess, Visitor};

    /// Deserialises a `Vec<T>` of at most `MAX` items.
    pub(crate) fn vec<'de, D, T, const MAX: usize>(d: D) -> Result<Vec<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de>,
    {
        d.deserialize_seq(BoundedVisitor::<T, MAX>(PhantomData))
    }

    /// Deserialises an `Option<Vec<T>>` of at most `MAX` items.
    pub(crate) fn opt_vec<'de, D, T, const MAX: usize>(d: D) -> Result<Option<Vec<T>>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de>,
    {
        struct Wrap<T, const MAX: usize>(Vec<T>);
        impl<'de, T: Deserialize<'de>, const MAX: usize> Deserialize<'de> for Wrap<T, MAX> {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                vec::<D, T, MAX>(d).map(Wrap)
            }
        }
        Ok(Option::<Wrap<T, MAX>>::deserialize(d)?.map(|w| w.0))
    }

    struct BoundedVisitor<T, const MAX: usize>(PhantomData<T>);

    impl<'de, T: Deserialize<'de>, const MAX: usize> Visitor<'de> for BoundedVisitor<T, MAX> {
        type Value = Vec<T>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "a list of at most {MAX} items")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            if let Some(n) = seq.size_hint() {
                if n > MAX {
                    return Err(A::Error::custom(format_args!(
                        "list of {n} items exceeds the limit of {MAX}"
                    )));
                }
            }
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(MAX));
            while let Some(item) = seq.next_element()? {
                if out.len() == MAX {
                    return Err(A::Error::custom(format_args!("list exceeds the limit of {MAX} items")));
                }
                out.push(item);
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        a: u32,
        #[serde(with = "serde_bytes")]
        b: Vec<u8>,
        #[serde(deserialize_with = "bounded::vec::<_, _, 3>")]
        c: Vec<u8>,
    }

    fn sample() -> Sample {
        Sample { a: 1, b: vec![1, 2], c: vec![7] }
    }

    #[test]
    fn round_trips_deterministic_bytes() {
        let bytes = to_vec(&sample());
        assert_eq!(from_slice::<Sample>("sample", &bytes).unwrap(), sample());
    }

    #[test]
    fn rejects_non_shortest_integer() {
        let mut bytes = to_vec(&sample());
        // a: 1 is encoded as 0x01 right after the key "a" (0x61 0x61); use the 1-byte form 0x18 0x01.
        let pos = bytes.windows(3).position(|w| w == [0x61, 0x61, 0x01]).unwrap();
        bytes.splice(pos + 2..pos + 3, [0x18, 0x01]);
        assert_eq!(
            from_slice::<Sample>("sample", &bytes),
            Err(CodecError::NotDeterministic { what: "sample" })
        );
    }

    #[test]
    fn rejects_trailing_bytes() {
        let mut bytes = to_vec(&sample());
        bytes.push(0);
        assert_eq!(
            from_slice::<Sample>("sample", &bytes),
            Err(CodecError::NotDeterministic { what: "sample" })
        );
    }

    #[test]
    fn rejects_malformed_input() {
        assert!(matches!(
            from_slice::<Sample>("sample", &[0xa3, 0x61]),
            Err(CodecError::Malformed { what: "sample", .. })
        ));
    }

    #[test]
    fn rejects_too_deep_nesting() {
        let mut bytes = vec![0x81; 100]; // [[[[...0]]]]
        bytes.push(0);
        assert_eq!(
            from_slice::<ciborium::Value>("sample", &bytes),
            Err(CodecError::TooDeep { what: "sample", limit: LIMITS.max_cbor_depth })
        );
    }

    #[test]
    fn rejects_list_over_cap_before_reading_items() {
        // c is a list declared with 1,000,000 items but carrying none: refused from the header.
        let mut bytes = to_vec(&sample());
        let pos = bytes.windows(3).position(|w| w == [0x61, 0x63, 0x81]).unwrap();
        bytes.truncate(pos + 2);
        bytes.extend_from_slice(&[0x9a, 0x00, 0x0f, 0x42, 0x40]);
        let err = from_slice::<Sample>("sample", &bytes).unwrap_err();
        assert!(err.to_string().contains("exceeds the limit of 3"), "{err}");
    }

    #[test]
    fn error_messages_name_the_structure() {
        let e = from_slice::<Sample>("node card", &[0xff]).unwrap_err();
        assert!(e.to_string().starts_with("malformed CBOR for node card"), "{e}");
    }

    /// A public vector file kept in the repository (`docs/vectors/public/`, see SOURCES.md).
    fn public_vectors(name: &str) -> Vec<serde_json::Value> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/vectors/public").join(name);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn refuses_every_not_well_formed_item_of_the_cbor_failure_vectors() {
        let cases = public_vectors("cbor-fail.json");
        assert!(cases.len() > 600, "{} cases", cases.len());
        for case in &cases {
            let bytes = hex::decode(case["hex"].as_str().unwrap()).unwrap();
            assert!(
                from_slice::<ciborium::Value>("vector", &bytes).is_err(),
                "accepted the not-well-formed item {}",
                case["hex"]
            );
        }
    }

    #[test]
    fn reads_the_rfc_8949_appendix_a_examples_and_keeps_the_deterministic_ones_byte_exact() {
        let cases = public_vectors("cbor-appendix_a.json");
        assert_eq!(cases.len(), 82);
        let (mut strict, mut unassigned_simple) = (0, Vec::new());
        for case in &cases {
            let hex = case["hex"].as_str().unwrap();
            let bytes = hex::decode(hex).unwrap();
            // Every example is well-formed and read, except the unassigned simple values, which
            // no Godwit structure uses and the decoder refuses by name.
            let value = match from_slice_lenient::<ciborium::Value>("vector", &bytes) {
                Ok(v) => v,
                Err(e) => {
                    assert!(e.to_string().contains("simple"), "{hex}: {e}");
                    unassigned_simple.push(hex);
                    continue;
                }
            };
            // The strict decoder accepts exactly those it would encode the same way again.
            match from_slice::<ciborium::Value>("vector", &bytes) {
                Ok(v) => {
                    // Compared through their encodings: NaN is not equal to itself.
                    assert_eq!(to_vec(&v), bytes);
                    assert_eq!(to_vec(&value), bytes);
                    strict += 1;
                }
                Err(e) => {
                    assert_eq!(e, CodecError::NotDeterministic { what: "vector" }, "{}", case["hex"]);
                    assert_ne!(to_vec(&value), bytes);
                }
            }
        }
        assert_eq!(unassigned_simple, ["f0", "f818", "f8ff"]);
        assert!(strict > 40, "only {strict} examples in deterministic form");
    }
}

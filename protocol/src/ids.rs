//! 32-byte identifiers derived by hashing: message ids, channel ids and feed ids.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why an identifier's text form was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdParseError {
    /// Not exactly 64 lower-case hexadecimal digits.
    #[error("a {what} is 64 lower-case hexadecimal digits, got {got:?}")]
    Hex {
        /// Which identifier.
        what: &'static str,
        /// The refused text (truncated to 80 characters).
        got: String,
    },
}

macro_rules! hash_id {
    ($(#[$doc:meta])* $t:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $t(pub [u8; 32]);

        impl $t {
            /// The 32 bytes.
            pub fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }
            /// The first 12 hex digits, for log lines and tables.
            pub fn short(&self) -> String {
                self.to_string()[..12].to_owned()
            }
        }

        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
            }
        }

        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($t), "({})"), self)
            }
        }

        impl FromStr for $t {
            type Err = IdParseError;
            fn from_str(s: &str) -> Result<Self, IdParseError> {
                parse_hex32(s)
                    .map($t)
                    .ok_or_else(|| IdParseError::Hex { what: $what, got: s.chars().take(80).collect() })
            }
        }

        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                crate::identity::fixed_bytes::<D, 32>(d, $what).map($t)
            }
        }
    };
}

hash_id!(
    /// A message's id: SHA-256 over a domain-separation string and the envelope's signed bytes
    /// (see [`crate::envelope`]). No relay can change it.
    MessageId, "message id"
);
hash_id!(
    /// A channel's id: the hash of the channel's first ChannelState.
    ChannelId, "channel id"
);
hash_id!(
    /// The id of a feed: the channel id for channel feeds, or a hash of the sorted recipient
    /// set for direct feeds (see [`crate::envelope::Feed::id`]).
    FeedId, "feed id"
);

fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    let b = s.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let nib = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = (nib(b[2 * i])? << 4) | nib(b[2 * i + 1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_errors() {
        let id = MessageId([0xab; 32]);
        assert_eq!(id.to_string().parse::<MessageId>(), Ok(id));
        assert_eq!(id.short(), "abababababab");
        let e = "AB".repeat(32).parse::<ChannelId>().unwrap_err();
        assert_eq!(e, IdParseError::Hex { what: "channel id", got: "AB".repeat(32) });
        assert!("00".parse::<FeedId>().is_err());
        assert!(e.to_string().contains("a channel id is 64 lower-case hexadecimal digits"));
    }
}

//! Node identities: the Ed25519 identity key and its public half, the [`NodeId`]; the X25519
//! encryption key; and the [`NodeCard`] a node signs to publish its encryption key, addresses and
//! protocol versions.

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand_core::CryptoRngCore;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::codec::{self, CodecError, bounded};
use crate::limits::{LIMITS, MAX_CARD_ADDRESSES, MAX_CARD_VERSIONS};
use crate::time::Timestamp;

/// Length of the canonical text form of a [`NodeId`].
pub const NODE_ID_TEXT_LEN: usize = 55;

const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
const CHECKSUM_CONTEXT: &[u8] = b"godwit/v1 node-id checksum\0";

/// Why an identity, key or node card was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The text is not 55 characters long.
    #[error("a NodeId is {NODE_ID_TEXT_LEN} characters of lower-case base32, got {0} characters")]
    TextLength(usize),
    /// The text contains a character outside the lower-case base32 alphabet.
    #[error("a NodeId uses only a-z and 2-7; {ch:?} at position {position} is not allowed")]
    TextCharacter {
        /// The offending character.
        ch: char,
        /// Its 1-based position.
        position: usize,
    },
    /// The checksum does not match: the NodeId was mistyped or truncated.
    #[error("NodeId checksum mismatch: the text was mistyped or altered")]
    TextChecksum,
    /// The 32 bytes are not a usable Ed25519 public key.
    #[error("not a usable Ed25519 public key: {0}")]
    InvalidKey(&'static str),
    /// A signature over a node card (or other identity-signed structure) did not verify.
    #[error("signature by {signer} does not verify over the {what}")]
    BadSignature {
        /// What was signed.
        what: &'static str,
        /// The claimed signer.
        signer: NodeId,
    },
    /// The card's CBOR was refused.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// A node card field is out of range.
    #[error("invalid node card: {0}")]
    InvalidCard(String),
    /// The card is not valid at the given time.
    #[error("node card of {id} is valid from {not_before} to {not_after}, not at {now}")]
    CardNotValidNow {
        /// The card's node.
        id: NodeId,
        /// Start of validity.
        not_before: Timestamp,
        /// End of validity.
        not_after: Timestamp,
        /// The time of the check.
        now: Timestamp,
    },
    /// Two cards share no protocol version.
    #[error("no protocol version is supported by every recipient")]
    NoCommonVersion,
}

/// A node's role, as its network certificate states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// A national contact point.
    Member,
    /// A regional hub (RILO): relays for the members it serves.
    Hub,
    /// The network authority.
    Authority,
}

// ---------------------------------------------------------------------------------------------
// NodeId

/// A node's identity: its Ed25519 public key, the key its network certificate certifies.
///
/// Canonical text form: 55 characters of lower-case RFC 4648 base32 (no padding) over the 32 key
/// bytes followed by a 2-byte checksum, `SHA-256("godwit/v1 node-id checksum\0" ‖ key)[..2]`, so
/// that a mistyped pin in a configuration file is caught rather than trusted.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId([u8; 32]);

impl NodeId {
    /// Builds a NodeId from key bytes, checking that they are a usable Ed25519 public key
    /// (a canonical encoding of a point that is not of small order). Use this for NodeIds from
    /// configuration and operators. NodeIds inside signed CBOR structures are read without this
    /// check (it costs a point decompression each); they are checked when a signature is
    /// verified under them.
    ///
    /// # Errors
    /// [`IdentityError::InvalidKey`].
    pub fn from_bytes(bytes: [u8; 32]) -> Result<Self, IdentityError> {
        let key = NodeId(bytes).verifying_key()?;
        // RFC 8032 §5.1.3: y must be below p. Decompression reduces y modulo p (and accepts a
        // "negative zero" x), so compare the point's own encoding with the bytes given.
        if key.to_edwards().compress().as_bytes() != &bytes {
            return Err(IdentityError::InvalidKey("not the canonical encoding of its point"));
        }
        Ok(NodeId(bytes))
    }

    /// The 32 key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The Ed25519 verifying key (decompresses the point: cache it where it is used often).
    ///
    /// # Errors
    /// [`IdentityError::InvalidKey`] for a NodeId read from the wire that is not a usable key.
    pub fn verifying_key(&self) -> Result<VerifyingKey, IdentityError> {
        let key = VerifyingKey::from_bytes(&self.0)
            .map_err(|_| IdentityError::InvalidKey("not a point on Edwards25519"))?;
        if key.is_weak() {
            return Err(IdentityError::InvalidKey("a small-order point, which anyone can sign for"));
        }
        Ok(key)
    }

    /// Verifies `sig` over `msg` with `verify_strict` (no small-order keys or R, canonical S).
    /// False also when this NodeId is not a usable key.
    pub fn verify_strict(&self, msg: &[u8], sig: &[u8; 64]) -> bool {
        self.verifying_key().is_ok_and(|k| k.verify_strict(msg, &Signature::from_bytes(sig)).is_ok())
    }

    /// Wraps 32 bytes read from the wire without decompressing the point. Such a NodeId is only
    /// an identifier (a recipient, a map key) until a signature verifies under it.
    pub(crate) fn from_wire(bytes: [u8; 32]) -> Self {
        NodeId(bytes)
    }

    /// The first 8 characters of the text form, for log lines and tables.
    pub fn short(&self) -> String {
        self.to_string()[..8].to_owned()
    }

    fn checksum(&self) -> [u8; 2] {
        let h = Sha256::new().chain_update(CHECKSUM_CONTEXT).chain_update(self.0).finalize();
        [h[0], h[1]]
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut raw = [0u8; 34];
        raw[..32].copy_from_slice(&self.0);
        raw[32..].copy_from_slice(&self.checksum());
        let mut out = String::with_capacity(NODE_ID_TEXT_LEN);
        let (mut acc, mut bits) = (0u32, 0u32);
        for b in raw {
            acc = (acc << 8) | u32::from(b);
            bits += 8;
            while bits >= 5 {
                bits -= 5;
                out.push(char::from(BASE32[((acc >> bits) & 31) as usize]));
            }
        }
        if bits > 0 {
            out.push(char::from(BASE32[((acc << (5 - bits)) & 31) as usize]));
        }
        f.write_str(&out)
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({self})")
    }
}

impl FromStr for NodeId {
    type Err = IdentityError;
    fn from_str(s: &str) -> Result<Self, IdentityError> {
        let n = s.chars().count();
        if n != NODE_ID_TEXT_LEN {
            return Err(IdentityError::TextLength(n));
        }
        let mut raw = [0u8; 34];
        let (mut acc, mut bits, mut i) = (0u32, 0u32, 0usize);
        for (pos, ch) in s.chars().enumerate() {
            let v = match ch {
                'a'..='z' => ch as u32 - 'a' as u32,
                '2'..='7' => ch as u32 - '2' as u32 + 26,
                _ => return Err(IdentityError::TextCharacter { ch, position: pos + 1 }),
            };
            acc = (acc << 5) | v;
            bits += 5;
            if bits >= 8 {
                bits -= 8;
                raw[i] = (acc >> bits) as u8;
                i += 1;
            }
        }
        // 55 * 5 = 275 bits = 34 bytes + 3 bits that must be zero in the canonical form.
        if acc & ((1 << bits) - 1) != 0 {
            return Err(IdentityError::TextChecksum);
        }
        let mut key = [0u8; 32];
        key.copy_from_slice(&raw[..32]);
        let id = NodeId::from_bytes(key)?;
        if id.checksum() != raw[32..] {
            return Err(IdentityError::TextChecksum);
        }
        Ok(id)
    }
}

impl Serialize for NodeId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for NodeId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let bytes = serde_bytes::ByteBuf::deserialize(d)?;
        let arr: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            serde::de::Error::custom(format_args!("NodeId must be 32 bytes, got {}", bytes.len()))
        })?;
        Ok(NodeId::from_wire(arr))
    }
}

// ---------------------------------------------------------------------------------------------
// Keys

/// A node's Ed25519 identity (signing) key. `Debug` never prints the secret.
pub struct IdentityKey(SigningKey);

impl IdentityKey {
    /// Generates a new key from `rng`.
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        IdentityKey(SigningKey::generate(rng))
    }
    /// Rebuilds a key from its 32-byte seed (as stored on disk).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        IdentityKey(SigningKey::from_bytes(seed))
    }
    /// The 32-byte seed, for storage in a mode-0600 file. Zeroised on drop.
    pub fn to_seed(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }
    /// This key's [`NodeId`].
    pub fn node_id(&self) -> NodeId {
        NodeId(self.0.verifying_key().to_bytes())
    }
    /// Signs `msg` (Ed25519, deterministic).
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.0.sign(msg).to_bytes()
    }
}

impl fmt::Debug for IdentityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdentityKey({}, ..)", self.node_id())
    }
}

/// The public half of a node's X25519 encryption key, published in its [`NodeCard`].
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct EncryptionPublicKey(pub(crate) [u8; 32]);

impl EncryptionPublicKey {
    /// Wraps 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        EncryptionPublicKey(bytes)
    }
    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for EncryptionPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "EncryptionPublicKey({:02x}{:02x}{:02x}{:02x}..)",
            self.0[0], self.0[1], self.0[2], self.0[3]
        )
    }
}

impl Serialize for EncryptionPublicKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for EncryptionPublicKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        fixed_bytes::<D, 32>(d, "encryption key").map(EncryptionPublicKey)
    }
}

/// Deserialises exactly `N` bytes from a CBOR byte string.
pub(crate) fn fixed_bytes<'de, D: Deserializer<'de>, const N: usize>(
    d: D,
    what: &'static str,
) -> Result<[u8; N], D::Error> {
    let bytes = serde_bytes::ByteBuf::deserialize(d)?;
    bytes
        .as_slice()
        .try_into()
        .map_err(|_| serde::de::Error::custom(format_args!("{what} must be {N} bytes, got {}", bytes.len())))
}

/// A node's X25519 encryption (secret) key, separate from its identity key and rotated on a
/// schedule. `Debug` never prints the secret.
pub struct EncryptionKey {
    secret: Zeroizing<[u8; 32]>,
    public: EncryptionPublicKey,
}

impl EncryptionKey {
    /// Generates a new key from `rng`.
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        let mut secret = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(&mut secret[..]);
        Self::from_secret(&secret)
    }
    /// Rebuilds a key from its 32 secret bytes (as stored on disk).
    pub fn from_secret(secret: &[u8; 32]) -> Self {
        let s = x25519_dalek::StaticSecret::from(*secret);
        let public = EncryptionPublicKey(x25519_dalek::PublicKey::from(&s).to_bytes());
        EncryptionKey { secret: Zeroizing::new(s.to_bytes()), public }
    }
    /// The secret bytes, for storage in a mode-0600 file. Zeroised on drop.
    pub fn to_secret(&self) -> Zeroizing<[u8; 32]> {
        self.secret.clone()
    }
    /// The public half.
    pub fn public(&self) -> EncryptionPublicKey {
        self.public
    }
    pub(crate) fn secret_bytes(&self) -> &[u8; 32] {
        &self.secret
    }
}

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EncryptionKey({:?}, ..)", self.public)
    }
}

// ---------------------------------------------------------------------------------------------
// Node cards

/// The current node-card format version.
pub const NODE_CARD_VERSION: u16 = 1;

/// What a node publishes about itself, signed by its identity key: its X25519 encryption key,
/// where it can be reached, which protocol versions it speaks, and for how long this holds.
///
/// Fields are declared in deterministic-CBOR key order (shorter keys first, then bytewise).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeCard {
    /// Card format version; must be [`NODE_CARD_VERSION`].
    #[serde(rename = "v")]
    pub format: u16,
    /// The node this card describes (and whose key signs it).
    pub id: NodeId,
    /// End of validity (exclusive).
    #[serde(rename = "na")]
    pub not_after: Timestamp,
    /// Start of validity.
    #[serde(rename = "nb")]
    pub not_before: Timestamp,
    /// The node's current X25519 encryption key.
    #[serde(rename = "enc")]
    pub encryption_key: EncryptionPublicKey,
    /// The node's certificate from the network CA (DER), so that nodes that never connect to it
    /// learn who it is; empty when not carried (omitted from the encoding).
    #[serde(default, skip_serializing_if = "Vec::is_empty", with = "serde_bytes")]
    pub cert: Vec<u8>,
    /// Addresses (`host:port`) where the node accepts QUIC connections.
    #[serde(rename = "addrs", deserialize_with = "bounded::vec::<_, _, MAX_CARD_ADDRESSES>")]
    pub addresses: Vec<String>,
    /// Protocol versions the node speaks, ascending, without repeats.
    #[serde(deserialize_with = "bounded::vec::<_, _, MAX_CARD_VERSIONS>")]
    pub versions: Vec<u16>,
}

/// Largest certificate (DER) a node card may carry.
pub const MAX_CARD_CERT: usize = 4096;

impl NodeCard {
    /// Checks the card's own fields (not its signature or validity time).
    ///
    /// # Errors
    /// [`IdentityError::InvalidCard`] naming the field.
    pub fn validate(&self) -> Result<(), IdentityError> {
        let bad = |m: String| Err(IdentityError::InvalidCard(m));
        if self.format != NODE_CARD_VERSION {
            return bad(format!(
                "card format {} is not supported (expected {NODE_CARD_VERSION})",
                self.format
            ));
        }
        if self.not_after <= self.not_before {
            return bad("validity ends before it starts".into());
        }
        if self.versions.is_empty() || !self.versions.windows(2).all(|w| w[0] < w[1]) {
            return bad("protocol versions must be listed ascending without repeats".into());
        }
        if self.addresses.len() > LIMITS.max_card_addresses || self.versions.len() > LIMITS.max_card_versions
        {
            return bad("too many addresses or versions".into());
        }
        if self.cert.len() > MAX_CARD_CERT {
            return bad(format!(
                "a certificate of {} bytes is over the limit of {MAX_CARD_CERT}",
                self.cert.len()
            ));
        }
        for a in &self.addresses {
            let ok = (3..=LIMITS.max_short_text_len).contains(&a.len())
                && a.rsplit_once(':')
                    .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p != 0))
                && a.bytes().all(|b| b.is_ascii_graphic());
            if !ok {
                return bad(format!("address {a:?} is not host:port"));
            }
        }
        Ok(())
    }

    /// Signs the card with `key`, which must be the card's own identity.
    ///
    /// # Errors
    /// [`IdentityError::InvalidCard`] if the card is invalid or `key` is not the card's node.
    pub fn sign(&self, key: &IdentityKey) -> Result<Vec<u8>, IdentityError> {
        self.validate()?;
        if key.node_id() != self.id {
            return Err(IdentityError::InvalidCard("a node card must be signed by its own node".into()));
        }
        Ok(crate::control::sign(key, crate::control::Kind::NodeCard, &codec::to_vec(self)))
    }

    /// Decodes and verifies a signed card and checks it is valid at `now`.
    ///
    /// # Errors
    /// [`IdentityError::Codec`], [`IdentityError::InvalidCard`], [`IdentityError::BadSignature`]
    /// or [`IdentityError::CardNotValidNow`].
    pub fn verify(bytes: &[u8], now: Timestamp) -> Result<NodeCard, IdentityError> {
        use crate::control::{self, ControlError, Kind};
        let rec = control::verify(bytes, Kind::NodeCard).map_err(|e| match e {
            ControlError::Codec(c) => IdentityError::Codec(c),
            ControlError::BadSignature { signer, .. } => {
                IdentityError::BadSignature { what: "node card", signer }
            }
            other => IdentityError::InvalidCard(other.to_string()),
        })?;
        let card: NodeCard = codec::from_slice("node card", &rec.body)?;
        card.validate()?;
        if rec.signer != card.id {
            return Err(IdentityError::InvalidCard(format!(
                "the card of {} is signed by {}: a node card must be signed by its own node",
                card.id, rec.signer
            )));
        }
        if now < card.not_before || now >= card.not_after {
            return Err(IdentityError::CardNotValidNow {
                id: card.id,
                not_before: card.not_before,
                not_after: card.not_after,
                now,
            });
        }
        Ok(card)
    }
}

/// The highest protocol version that every card lists: what an author uses for a message to
/// all of them.
///
/// # Errors
/// [`IdentityError::NoCommonVersion`] if there is none (or `cards` is empty).
pub fn highest_common_version<'a>(
    cards: impl IntoIterator<Item = &'a NodeCard>,
) -> Result<u16, IdentityError> {
    let mut common: Option<Vec<u16>> = None;
    for c in cards {
        common = Some(match common {
            None => c.versions.clone(),
            Some(v) => v.into_iter().filter(|x| c.versions.contains(x)).collect(),
        });
    }
    common.and_then(|v| v.into_iter().max()).ok_or(IdentityError::NoCommonVersion)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rng;

    #[test]
    fn a_card_carries_its_nodes_certificate_in_canonical_order_and_bounded() {
        let mut rng = test_rng(77);
        let (key, enc) = (IdentityKey::generate(&mut rng), EncryptionKey::generate(&mut rng));
        let mut c = card(&key, &enc);
        c.cert = vec![0x30, 0x03, 0x02, 0x01, 0x07];
        let signed = c.sign(&key).unwrap();
        assert_eq!(NodeCard::verify(&signed, Timestamp(1_500)).unwrap(), c);
        c.cert = vec![0; MAX_CARD_CERT + 1];
        assert!(c.sign(&key).unwrap_err().to_string().contains("over the limit"));
    }

    fn card(key: &IdentityKey, enc: &EncryptionKey) -> NodeCard {
        NodeCard {
            format: NODE_CARD_VERSION,
            id: key.node_id(),
            not_after: Timestamp(2_000),
            not_before: Timestamp(1_000),
            encryption_key: enc.public(),
            cert: Vec::new(),
            addresses: vec!["127.0.0.1:4433".into(), "hub.example:4433".into()],
            versions: vec![1],
        }
    }

    #[test]
    fn node_id_text_round_trips() {
        let mut rng = test_rng(1);
        for _ in 0..50 {
            let id = IdentityKey::generate(&mut rng).node_id();
            let text = id.to_string();
            assert_eq!(text.len(), NODE_ID_TEXT_LEN);
            assert_eq!(text.parse::<NodeId>().unwrap(), id);
        }
    }

    #[test]
    fn node_id_text_errors_name_the_problem() {
        let id = IdentityKey::generate(&mut test_rng(2)).node_id().to_string();
        assert_eq!("abc".parse::<NodeId>(), Err(IdentityError::TextLength(3)));
        let upper = id.to_uppercase();
        assert!(matches!(upper.parse::<NodeId>(), Err(IdentityError::TextCharacter { position: 1, .. })));
        let mut typo: Vec<char> = id.chars().collect();
        typo[10] = if typo[10] == 'a' { 'b' } else { 'a' };
        let typo: String = typo.into_iter().collect();
        assert!(matches!(
            typo.parse::<NodeId>(),
            Err(IdentityError::TextChecksum | IdentityError::InvalidKey(_))
        ));
        let mut last: Vec<char> = id.chars().collect();
        last[54] = if last[54] == 'a' { 'b' } else { 'a' };
        assert_eq!(last.into_iter().collect::<String>().parse::<NodeId>(), Err(IdentityError::TextChecksum));
        let e = IdentityError::TextCharacter { ch: '0', position: 3 }.to_string();
        assert!(e.contains("'0' at position 3"), "{e}");
    }

    #[test]
    fn node_id_refuses_small_order_and_non_canonical_keys() {
        // The identity point (small order).
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(matches!(NodeId::from_bytes(identity), Err(IdentityError::InvalidKey(_))));
        // y = p (non-canonical encoding of y = 0)
        let mut p = [0xffu8; 32];
        p[0] = 0xed;
        p[31] = 0x7f;
        assert!(matches!(NodeId::from_bytes(p), Err(IdentityError::InvalidKey(_))));
    }

    #[test]
    fn node_id_refuses_a_non_canonical_encoding_of_a_usable_point_even_with_a_correct_checksum() {
        // y = p + k for small k encodes the same point as y = k: find the k whose point is a
        // usable (not small-order) key, and check both the bytes and the text form are refused.
        let mut refused = 0;
        for k in 0u8..19 {
            for sign in [0u8, 0x80] {
                let mut y = [0xffu8; 32];
                y[0] = 0xed + k; // p = 2^255 - 19: 0xed, 0xff…0xff, 0x7f (little-endian)
                y[31] = 0x7f | sign;
                let Ok(point) = VerifyingKey::from_bytes(&y) else { continue };
                if point.is_weak() {
                    continue;
                }
                let canonical = point.to_edwards().compress().to_bytes();
                assert_ne!(canonical, y);
                assert!(NodeId::from_bytes(canonical).is_ok(), "the canonical form of k = {k} is usable");
                assert_eq!(
                    NodeId::from_bytes(y),
                    Err(IdentityError::InvalidKey("not the canonical encoding of its point"))
                );
                // The text form carries a correct checksum over the non-canonical bytes.
                let text = NodeId::from_wire(y).to_string();
                assert_eq!(
                    text.parse::<NodeId>(),
                    Err(IdentityError::InvalidKey("not the canonical encoding of its point"))
                );
                refused += 1;
            }
        }
        assert!(refused > 0, "no non-canonical encoding of a usable point was tried");
    }

    #[test]
    fn identity_key_debug_hides_secret() {
        let key = IdentityKey::generate(&mut test_rng(3));
        let seed_hex: String = key.to_seed().iter().map(|b| format!("{b:02x}")).collect();
        let dbg = format!("{key:?}");
        assert!(!dbg.contains(&seed_hex[..16]));
        assert!(dbg.ends_with("..)"));
        let enc = EncryptionKey::generate(&mut test_rng(3));
        assert!(format!("{enc:?}").ends_with("..)"));
        assert_eq!(IdentityKey::from_seed(&key.to_seed()).node_id(), key.node_id());
        assert_eq!(EncryptionKey::from_secret(&enc.to_secret()).public(), enc.public());
    }

    #[test]
    fn node_card_signs_and_verifies() {
        let mut rng = test_rng(4);
        let key = IdentityKey::generate(&mut rng);
        let enc = EncryptionKey::generate(&mut rng);
        let c = card(&key, &enc);
        let bytes = c.sign(&key).unwrap();
        assert_eq!(NodeCard::verify(&bytes, Timestamp(1_500)).unwrap(), c);
    }

    #[test]
    fn node_card_refuses_tampering_other_signers_and_time() {
        let mut rng = test_rng(5);
        let key = IdentityKey::generate(&mut rng);
        let other = IdentityKey::generate(&mut rng);
        let enc = EncryptionKey::generate(&mut rng);
        let c = card(&key, &enc);
        assert!(matches!(c.sign(&other), Err(IdentityError::InvalidCard(_))));
        let bytes = c.sign(&key).unwrap();
        assert!(matches!(
            NodeCard::verify(&bytes, Timestamp(2_000)),
            Err(IdentityError::CardNotValidNow { .. })
        ));
        assert!(matches!(
            NodeCard::verify(&bytes, Timestamp(999)),
            Err(IdentityError::CardNotValidNow { .. })
        ));
        let last = bytes.len() - 1; // last byte of the embedded card (the last version number)
        let mut t = bytes.clone();
        t[last] ^= 0x01;
        let e = NodeCard::verify(&t, Timestamp(1_500));
        assert!(matches!(e, Err(IdentityError::BadSignature { .. })), "{e:?}");
        let mut t = bytes.clone();
        t[10] ^= 0x01; // inside the signature (after a2 63 "sig" 58 40)
        assert!(matches!(NodeCard::verify(&t, Timestamp(1_500)), Err(IdentityError::BadSignature { .. })));
    }

    #[test]
    fn node_card_validation_names_the_field() {
        let mut rng = test_rng(6);
        let key = IdentityKey::generate(&mut rng);
        let enc = EncryptionKey::generate(&mut rng);
        let mut c = card(&key, &enc);
        c.versions = vec![2, 1];
        assert!(c.validate().unwrap_err().to_string().contains("ascending"));
        let mut c = card(&key, &enc);
        c.addresses = vec!["no-port".into()];
        assert!(c.validate().unwrap_err().to_string().contains("\"no-port\""));
        let mut c = card(&key, &enc);
        c.format = 9;
        assert!(c.validate().unwrap_err().to_string().contains("card format 9"));
        let mut c = card(&key, &enc);
        c.not_after = c.not_before;
        assert!(c.validate().is_err());
    }

    #[test]
    fn highest_common_version_picks_the_max_shared() {
        let mut rng = test_rng(7);
        let key = IdentityKey::generate(&mut rng);
        let enc = EncryptionKey::generate(&mut rng);
        let mut a = card(&key, &enc);
        a.versions = vec![1, 2, 3];
        let mut b = a.clone();
        b.versions = vec![1, 2];
        assert_eq!(highest_common_version([&a, &b]), Ok(2));
        b.versions = vec![4];
        assert_eq!(highest_common_version([&a, &b]), Err(IdentityError::NoCommonVersion));
        assert_eq!(highest_common_version([]), Err(IdentityError::NoCommonVersion));
    }
}

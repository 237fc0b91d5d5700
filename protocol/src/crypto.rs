//! Encryption: the body AEAD (XChaCha20-Poly1305 with random 192-bit nonces), HPKE (RFC 9180,
//! DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / ChaCha20Poly1305, base mode) for sealing keys to
//! named recipients, channel epoch keys and the [`ChannelKey`] control structure that
//! distributes them.
//!
//! Nonces are random, never derived from sequence numbers: a node restored from a backup would
//! otherwise reuse them.

use std::fmt;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hpke::{Deserializable, OpModeR, OpModeS, Serializable};
use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::codec::{self, CodecError, bounded};
use crate::identity::{EncryptionKey, EncryptionPublicKey, IdentityKey, NodeId};
use crate::ids::ChannelId;
use crate::limits::MAX_RECIPIENTS;
use crate::time::Timestamp;

type Kem = hpke::kem::X25519HkdfSha256;
type Kdf = hpke::kdf::HkdfSha256;
type HpkeAead = hpke::aead::ChaCha20Poly1305;

/// Bytes of an XChaCha20-Poly1305 nonce, prefixed to every body ciphertext.
pub const NONCE_LEN: usize = 24;
/// Bytes of a Poly1305 tag.
pub const TAG_LEN: usize = 16;
/// Bytes of a sealed 32-byte key: HPKE encapsulated key (32) ‖ ciphertext (32) ‖ tag (16).
pub const SEALED_KEY_LEN: usize = 32 + 32 + TAG_LEN;

/// HPKE `info` for content keys of direct messages.
pub(crate) const INFO_CONTENT_KEY: &[u8] = b"godwit/v1 content-key";
/// HPKE `info` for keys of personal-data sections.
pub(crate) const INFO_PERSONAL_KEY: &[u8] = b"godwit/v1 personal-key";
/// HPKE `info` prefix for channel epoch keys (followed by channel id and epoch).
const INFO_EPOCH_KEY: &[u8] = b"godwit/v1 epoch-key";

/// Why something could not be encrypted or decrypted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// AEAD authentication failed: the ciphertext or its header was altered, or the key is wrong.
    #[error("decryption failed: the ciphertext or the signed header was altered, or the key is wrong")]
    Decrypt,
    /// A ciphertext is shorter than nonce plus tag.
    #[error("ciphertext of {0} bytes is too short to hold a nonce and a tag")]
    Truncated(usize),
    /// HPKE could not open a sealed key: it was sealed to someone else or altered.
    #[error("cannot open the key sealed to {0}: it was sealed to another key or altered")]
    Unseal(NodeId),
    /// HPKE could not seal to a recipient's public key (e.g. a low-order X25519 point).
    #[error("cannot seal to {0}: its X25519 key is not usable")]
    Seal(NodeId),
    /// A sealed key has the wrong length.
    #[error("a sealed key is {SEALED_KEY_LEN} bytes, got {0}")]
    SealedKeyLength(usize),
    /// The node is not among the recipients the key was sealed to.
    #[error("{0} is not a recipient of this key")]
    NotARecipient(NodeId),
    /// A channel-key structure was refused.
    #[error("invalid channel key: {0}")]
    InvalidChannelKey(String),
    /// Its CBOR was refused.
    #[error(transparent)]
    Codec(#[from] CodecError),
}

/// A 256-bit symmetric key: a channel epoch key or a per-message content key. Zeroised on drop;
/// `Debug` never prints it.
#[derive(Clone)]
pub struct SymmetricKey(Zeroizing<[u8; 32]>);

/// A channel's epoch key: all messages in one epoch of a channel are encrypted under it.
pub type EpochKey = SymmetricKey;

impl SymmetricKey {
    /// Generates a fresh random key.
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        let mut k = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(&mut k[..]);
        SymmetricKey(k)
    }
    /// Wraps existing key bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        SymmetricKey(Zeroizing::new(bytes))
    }
    /// The key bytes. Handle with care.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    /// Encrypts `plaintext` with a fresh random nonce; returns `nonce ‖ ciphertext ‖ tag`.
    pub fn seal(&self, rng: &mut impl CryptoRngCore, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        let cipher = XChaCha20Poly1305::new((&*self.0).into());
        // Invariant: XChaCha20-Poly1305 encryption only fails for plaintexts over 256 GiB,
        // far beyond any frame limit.
        let ct = cipher
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: plaintext, aad })
            .expect("plaintext within XChaCha20-Poly1305 limits");
        let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    /// Decrypts `nonce ‖ ciphertext ‖ tag` produced by [`SymmetricKey::seal`].
    ///
    /// # Errors
    /// [`CryptoError::Truncated`] or [`CryptoError::Decrypt`].
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        if sealed.len() < NONCE_LEN + TAG_LEN {
            return Err(CryptoError::Truncated(sealed.len()));
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        let cipher = XChaCha20Poly1305::new((&*self.0).into());
        cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad })
            .map(Zeroizing::new)
            .map_err(|_| CryptoError::Decrypt)
    }
}

impl fmt::Debug for SymmetricKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SymmetricKey(..)")
    }
}

/// A 32-byte key sealed with HPKE to one recipient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealedKey {
    /// The recipient.
    pub to: NodeId,
    /// `enc ‖ ct ‖ tag`, [`SEALED_KEY_LEN`] bytes.
    #[serde(with = "serde_bytes")]
    pub key: Vec<u8>,
}

/// Seals `key` to `recipient` with HPKE base mode.
///
/// `info` names the purpose; `aad` binds sender and recipient (see `docs/protocol.md`).
///
/// # Errors
/// [`CryptoError::Seal`] if the recipient's public key is unusable.
pub fn hpke_seal(
    rng: &mut impl CryptoRngCore,
    recipient: &EncryptionPublicKey,
    info: &[u8],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, hpke::HpkeError> {
    let pk = <Kem as hpke::Kem>::PublicKey::from_bytes(recipient.as_bytes())?;
    let (enc, ct) =
        hpke::single_shot_seal::<HpkeAead, Kdf, Kem, _>(&OpModeS::Base, &pk, info, plaintext, aad, rng)?;
    let mut out = enc.to_bytes().to_vec();
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Opens `enc ‖ ct` produced by [`hpke_seal`].
///
/// # Errors
/// The HPKE error (wrong key, altered ciphertext, malformed `enc`).
pub fn hpke_open(
    key: &EncryptionKey,
    info: &[u8],
    aad: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, hpke::HpkeError> {
    if sealed.len() < 32 {
        return Err(hpke::HpkeError::IncorrectInputLength(32, sealed.len()));
    }
    let (enc, ct) = sealed.split_at(32);
    let sk = <Kem as hpke::Kem>::PrivateKey::from_bytes(key.secret_bytes())?;
    let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(enc)?;
    hpke::single_shot_open::<HpkeAead, Kdf, Kem>(&OpModeR::Base, &sk, &enc, info, ct, aad).map(Zeroizing::new)
}

/// Seals a symmetric key to each recipient, sorted by NodeId, with `aad = sender ‖ recipient`.
pub(crate) fn seal_to_each(
    rng: &mut impl CryptoRngCore,
    key: &SymmetricKey,
    info: &[u8],
    sender: &NodeId,
    recipients: &[(NodeId, EncryptionPublicKey)],
) -> Result<Vec<SealedKey>, CryptoError> {
    let mut out = Vec::with_capacity(recipients.len());
    for (id, pk) in recipients {
        let aad = [sender.as_bytes().as_slice(), id.as_bytes()].concat();
        let sealed = hpke_seal(rng, pk, info, &aad, key.expose()).map_err(|_| CryptoError::Seal(*id))?;
        out.push(SealedKey { to: *id, key: sealed });
    }
    out.sort_by_key(|s| s.to);
    Ok(out)
}

/// Finds `me` among `sealed` and opens its key.
pub(crate) fn unseal_from(
    sealed: &[SealedKey],
    info: &[u8],
    sender: &NodeId,
    me: &NodeId,
    key: &EncryptionKey,
) -> Result<SymmetricKey, CryptoError> {
    let entry = sealed
        .binary_search_by(|s| s.to.cmp(me))
        .map(|i| &sealed[i])
        .map_err(|_| CryptoError::NotARecipient(*me))?;
    if entry.key.len() != SEALED_KEY_LEN {
        return Err(CryptoError::SealedKeyLength(entry.key.len()));
    }
    let aad = [sender.as_bytes().as_slice(), me.as_bytes()].concat();
    let pt = hpke_open(key, info, &aad, &entry.key).map_err(|_| CryptoError::Unseal(*me))?;
    let bytes: [u8; 32] = pt.as_slice().try_into().map_err(|_| CryptoError::Unseal(*me))?;
    Ok(SymmetricKey::from_bytes(bytes))
}

/// Checks a list of sealed keys: non-empty, at most `max`, sorted by recipient, no repeats,
/// each of the right length.
pub(crate) fn check_sealed_list(list: &[SealedKey], max: usize) -> Result<(), String> {
    if list.is_empty() {
        return Err("recipient list is empty".into());
    }
    if list.len() > max {
        return Err(format!("{} recipients exceed the limit of {max}", list.len()));
    }
    if !list.windows(2).all(|w| w[0].to < w[1].to) {
        return Err("recipients must be sorted by NodeId without repeats".into());
    }
    if let Some(s) = list.iter().find(|s| s.key.len() != SEALED_KEY_LEN) {
        return Err(format!("sealed key for {} is {} bytes, expected {SEALED_KEY_LEN}", s.to, s.key.len()));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// ChannelKey

/// The current channel-key format version.
pub const CHANNEL_KEY_VERSION: u16 = 1;

/// A channel epoch key sealed to each member, signed by the channel owner who issued it.
///
/// Control structure (signed, not secret). Fields in deterministic-CBOR key order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelKey {
    /// Format version; must be [`CHANNEL_KEY_VERSION`].
    #[serde(rename = "v")]
    pub format: u16,
    /// The epoch this key belongs to.
    pub epoch: u64,
    /// The issuing node (the channel owner).
    pub issuer: NodeId,
    /// The channel.
    pub channel: ChannelId,
    /// When it was issued.
    pub created: Timestamp,
    /// The epoch key sealed to each member, sorted by NodeId.
    #[serde(deserialize_with = "bounded::vec::<_, _, MAX_RECIPIENTS>")]
    pub members: Vec<SealedKey>,
}

impl ChannelKey {
    /// Seals `key` for `epoch` of `channel` to every member and signs the result.
    ///
    /// # Errors
    /// [`CryptoError::Seal`] for an unusable member key, [`CryptoError::InvalidChannelKey`] for
    /// an empty or oversized member list.
    pub fn issue(
        rng: &mut impl CryptoRngCore,
        issuer: &IdentityKey,
        channel: ChannelId,
        epoch: u64,
        key: &EpochKey,
        members: &[(NodeId, EncryptionPublicKey)],
        now: Timestamp,
    ) -> Result<Vec<u8>, CryptoError> {
        let info = epoch_info(&channel, epoch);
        let sealed = seal_to_each(rng, key, &info, &issuer.node_id(), members)?;
        check_sealed_list(&sealed, MAX_RECIPIENTS).map_err(CryptoError::InvalidChannelKey)?;
        let ck = ChannelKey {
            format: CHANNEL_KEY_VERSION,
            epoch,
            issuer: issuer.node_id(),
            channel,
            created: now,
            members: sealed,
        };
        Ok(crate::control::sign(issuer, crate::control::Kind::ChannelKey, &codec::to_vec(&ck)))
    }

    /// Decodes a signed channel key and verifies the issuer's signature.
    ///
    /// Whether the issuer may issue keys for this channel is for the caller (the channel state)
    /// to decide.
    ///
    /// # Errors
    /// [`CryptoError::Codec`] or [`CryptoError::InvalidChannelKey`].
    pub fn verify(bytes: &[u8]) -> Result<ChannelKey, CryptoError> {
        use crate::control::{self, ControlError, Kind};
        let rec = control::verify(bytes, Kind::ChannelKey).map_err(|e| match e {
            ControlError::Codec(c) => CryptoError::Codec(c),
            other => CryptoError::InvalidChannelKey(other.to_string()),
        })?;
        let ck: ChannelKey = codec::from_slice("channel key", &rec.body)?;
        if ck.format != CHANNEL_KEY_VERSION {
            return Err(CryptoError::InvalidChannelKey(format!("format {} is not supported", ck.format)));
        }
        check_sealed_list(&ck.members, MAX_RECIPIENTS).map_err(CryptoError::InvalidChannelKey)?;
        if rec.signer != ck.issuer {
            return Err(CryptoError::InvalidChannelKey(format!(
                "issued by {} but signed by {}",
                ck.issuer, rec.signer
            )));
        }
        Ok(ck)
    }

    /// Opens the epoch key sealed to `me`.
    ///
    /// # Errors
    /// [`CryptoError::NotARecipient`] or [`CryptoError::Unseal`].
    pub fn unseal(&self, me: &NodeId, key: &EncryptionKey) -> Result<EpochKey, CryptoError> {
        unseal_from(&self.members, &epoch_info(&self.channel, self.epoch), &self.issuer, me, key)
    }
}

fn epoch_info(channel: &ChannelId, epoch: u64) -> Vec<u8> {
    [INFO_EPOCH_KEY, channel.as_bytes(), &epoch.to_be_bytes()].concat()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rng;

    fn member(rng: &mut impl CryptoRngCore) -> (IdentityKey, EncryptionKey) {
        (IdentityKey::generate(rng), EncryptionKey::generate(rng))
    }

    #[test]
    fn symmetric_seal_open_and_failures() {
        let mut rng = test_rng(10);
        let k = SymmetricKey::generate(&mut rng);
        let ct = k.seal(&mut rng, b"hdr", b"body");
        assert_eq!(ct.len(), NONCE_LEN + 4 + TAG_LEN);
        assert_eq!(k.open(b"hdr", &ct).unwrap().as_slice(), b"body");
        assert_eq!(k.open(b"hdx", &ct), Err(CryptoError::Decrypt));
        assert_eq!(k.open(b"hdr", &ct[..10]), Err(CryptoError::Truncated(10)));
        let other = SymmetricKey::generate(&mut rng);
        assert_eq!(other.open(b"hdr", &ct), Err(CryptoError::Decrypt));
        // random nonces: the same plaintext twice gives different ciphertexts
        assert_ne!(k.seal(&mut rng, b"", b"x"), k.seal(&mut rng, b"", b"x"));
        assert_eq!(format!("{k:?}"), "SymmetricKey(..)");
    }

    #[test]
    fn channel_key_reaches_members_only() {
        let mut rng = test_rng(11);
        let (hub, _) = member(&mut rng);
        let (a, a_enc) = member(&mut rng);
        let (b, b_enc) = member(&mut rng);
        let (c, c_enc) = member(&mut rng);
        let channel = ChannelId([7; 32]);
        let epoch_key = EpochKey::generate(&mut rng);
        let members = [(a.node_id(), a_enc.public()), (b.node_id(), b_enc.public())];
        let bytes =
            ChannelKey::issue(&mut rng, &hub, channel, 3, &epoch_key, &members, Timestamp(5)).unwrap();
        let ck = ChannelKey::verify(&bytes).unwrap();
        assert_eq!((ck.epoch, ck.channel, ck.issuer), (3, channel, hub.node_id()));
        assert_eq!(ck.unseal(&a.node_id(), &a_enc).unwrap().expose(), epoch_key.expose());
        assert_eq!(ck.unseal(&b.node_id(), &b_enc).unwrap().expose(), epoch_key.expose());
        assert_eq!(ck.unseal(&c.node_id(), &c_enc).unwrap_err(), CryptoError::NotARecipient(c.node_id()));
        // c claiming to be a with its own key cannot open a's entry
        assert_eq!(ck.unseal(&a.node_id(), &c_enc).unwrap_err(), CryptoError::Unseal(a.node_id()));
    }

    #[test]
    fn channel_key_sealed_for_one_epoch_does_not_open_as_another() {
        let mut rng = test_rng(12);
        let (hub, _) = member(&mut rng);
        let (a, a_enc) = member(&mut rng);
        let key = EpochKey::generate(&mut rng);
        let bytes = ChannelKey::issue(
            &mut rng,
            &hub,
            ChannelId([1; 32]),
            1,
            &key,
            &[(a.node_id(), a_enc.public())],
            Timestamp(0),
        )
        .unwrap();
        let mut ck = ChannelKey::verify(&bytes).unwrap();
        ck.epoch = 2;
        assert_eq!(ck.unseal(&a.node_id(), &a_enc).unwrap_err(), CryptoError::Unseal(a.node_id()));
    }

    #[test]
    fn channel_key_refuses_bad_signature_and_empty_members() {
        let mut rng = test_rng(13);
        let (hub, _) = member(&mut rng);
        let (a, a_enc) = member(&mut rng);
        let key = EpochKey::generate(&mut rng);
        let empty = ChannelKey::issue(&mut rng, &hub, ChannelId([1; 32]), 1, &key, &[], Timestamp(0));
        assert!(matches!(empty, Err(CryptoError::InvalidChannelKey(m)) if m.contains("empty")));
        let mut bytes = ChannelKey::issue(
            &mut rng,
            &hub,
            ChannelId([1; 32]),
            1,
            &key,
            &[(a.node_id(), a_enc.public())],
            Timestamp(0),
        )
        .unwrap();
        let n = bytes.len();
        bytes[n - 1] ^= 1; // last byte of the body (inside the last sealed key)
        let err = ChannelKey::verify(&bytes).unwrap_err();
        assert!(matches!(&err, CryptoError::InvalidChannelKey(m) if m.contains("does not verify")), "{err}");
    }

    #[test]
    fn sealing_to_an_unusable_key_and_opening_a_bad_entry_are_refused() {
        let mut rng = test_rng(15);
        let (a, a_enc) = member(&mut rng);
        let k = SymmetricKey::generate(&mut rng);
        // The all-zero X25519 key gives an all-zero shared secret, which HPKE refuses.
        let zero = [(a.node_id(), EncryptionPublicKey::from_bytes([0; 32]))];
        assert_eq!(
            seal_to_each(&mut rng, &k, INFO_CONTENT_KEY, &a.node_id(), &zero),
            Err(CryptoError::Seal(a.node_id()))
        );
        let short = [SealedKey { to: a.node_id(), key: vec![0; 79] }];
        assert_eq!(
            unseal_from(&short, INFO_CONTENT_KEY, &a.node_id(), &a.node_id(), &a_enc).unwrap_err(),
            CryptoError::SealedKeyLength(79)
        );
        assert!(matches!(ChannelKey::verify(&[0xa0]), Err(CryptoError::Codec(_))));
    }

    #[test]
    fn sealed_list_checks_name_the_problem() {
        let mut rng = test_rng(14);
        let (a, _) = member(&mut rng);
        let (b, _) = member(&mut rng);
        let k = |to: NodeId, n: usize| SealedKey { to, key: vec![0; n] };
        let (lo, hi) =
            if a.node_id() < b.node_id() { (a.node_id(), b.node_id()) } else { (b.node_id(), a.node_id()) };
        assert!(check_sealed_list(&[k(lo, 80), k(hi, 80)], 10).is_ok());
        assert!(check_sealed_list(&[k(hi, 80), k(lo, 80)], 10).unwrap_err().contains("sorted"));
        assert!(check_sealed_list(&[k(lo, 80), k(lo, 80)], 10).unwrap_err().contains("sorted"));
        assert!(check_sealed_list(&[k(lo, 79)], 10).unwrap_err().contains("79 bytes"));
        assert!(check_sealed_list(&[k(lo, 80), k(hi, 80)], 1).unwrap_err().contains("limit of 1"));
    }
}

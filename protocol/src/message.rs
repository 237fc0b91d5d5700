//! Sealing and opening whole messages: validate content, encrypt it for its audience, sign the
//! envelope — and the reverse.
//!
//! Channel messages are encrypted under the channel's epoch key (O(1) per message, whatever the
//! membership); direct messages under a fresh content key sealed with HPKE to each recipient.
//! A personal-data section always gets its own fresh key, sealed only to its named recipients.
//! The AEAD associated data is always the signed header bytes, which name the author, the feed,
//! the recipients and the epoch: a ciphertext cannot be re-signed by another author or moved to
//! another audience.

use std::borrow::Cow;

use rand_core::CryptoRngCore;

use crate::codec;
use crate::content::{Body, ContentError, PersonalData, Tlp};
use crate::crypto::{self, CryptoError, EpochKey, INFO_CONTENT_KEY, INFO_PERSONAL_KEY, SymmetricKey};
use crate::envelope::{self, ChannelFeed, Envelope, EnvelopeError, Feed, Header, PROTOCOL_VERSION, Priority};
use crate::identity::{EncryptionKey, EncryptionPublicKey, IdentityKey, NodeId};
use crate::ids::{ChannelId, MessageId};
use crate::limits::LIMITS;
use crate::time::Timestamp;

/// Why a message could not be sealed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The content is invalid.
    #[error("content: {0}")]
    Content(#[from] ContentError),
    /// The header would be invalid.
    #[error(transparent)]
    Header(#[from] EnvelopeError),
    /// A key could not be sealed to a recipient.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The control record to carry does not verify.
    #[error("control record: {0}")]
    Control(#[from] crate::control::ControlError),
    /// The signed envelope would exceed the envelope limit.
    #[error(
        "sealed message is {len} bytes, over the envelope limit of {max}: send fewer or smaller attachments"
    )]
    TooLarge {
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
}

/// Why a verified envelope could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// Tried to open a direct message with a channel key, or the reverse.
    #[error("message is a {actual} message, not a {expected} message")]
    WrongMode {
        /// What the caller expected.
        expected: &'static str,
        /// What the message is.
        actual: &'static str,
    },
    /// The node is not a named recipient.
    #[error("{0} is not a named recipient of this message")]
    NotARecipient(NodeId),
    /// The message has no personal-data section.
    #[error("message has no personal-data section")]
    NoPersonalSection,
    /// Decryption failed.
    #[error(transparent)]
    Crypto(CryptoError),
    /// The decrypted content is invalid.
    #[error("content: {0}")]
    Content(#[from] ContentError),
    /// The control record it carries is refused.
    #[error("control record: {0}")]
    Control(#[from] crate::control::ControlError),
    /// A personal-data section marked less strictly than its message.
    #[error("a personal-data section marked {personal} in a message marked {message}: it is never looser")]
    LooserPersonal {
        /// The message's marking.
        message: Tlp,
        /// The section's.
        personal: Tlp,
    },
    /// A forward marked less strictly than the original it carries.
    #[error("a forward marked {forward} of an original marked {original}: a marking is never loosened")]
    LoosenedMarking {
        /// The original's marking.
        original: Tlp,
        /// The forward's.
        forward: Tlp,
    },
}

/// A forward's own marking must be at least as strict as its original's.
fn not_loosened(header: &Header, body: Body) -> Result<Body, OpenError> {
    if let crate::content::Content::Forward(f) = &body.content {
        if header.marking > f.marking {
            return Err(OpenError::LoosenedMarking { original: f.marking, forward: header.marking });
        }
    }
    Ok(body)
}

impl From<CryptoError> for OpenError {
    fn from(e: CryptoError) -> Self {
        match e {
            CryptoError::NotARecipient(id) => OpenError::NotARecipient(id),
            other => OpenError::Crypto(other),
        }
    }
}

/// Who can read a message.
#[derive(Debug, Clone, Copy)]
pub enum Audience<'a> {
    /// Every current member of a channel, through the epoch key.
    Channel {
        /// The channel.
        id: ChannelId,
        /// The epoch of `key`.
        epoch: u64,
        /// The channel's key for that epoch.
        key: &'a EpochKey,
    },
    /// Named recipients, each with its current encryption key.
    Direct(&'a [(NodeId, EncryptionPublicKey)]),
}

/// Everything needed to seal one message.
#[derive(Debug, Clone, Copy)]
pub struct Draft<'a> {
    /// Who can read it.
    pub audience: Audience<'a>,
    /// Sequence number in the author's feed (from 1).
    pub seq: u64,
    /// The author's previous message in this feed (`None` for seq 1).
    pub prev: Option<MessageId>,
    /// Creation time.
    pub created: Timestamp,
    /// Expiry time.
    pub expires: Timestamp,
    /// Urgency.
    pub priority: Priority,
    /// Handling marking.
    pub marking: Tlp,
    /// The content.
    pub body: &'a Body,
    /// Personal data and the named recipients it is sealed to.
    pub personal: Option<(&'a PersonalData, &'a [(NodeId, EncryptionPublicKey)])>,
}

/// A signed, encrypted message ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedMessage {
    /// Its id.
    pub id: MessageId,
    /// The envelope bytes.
    pub bytes: Vec<u8>,
}

/// Validates, encrypts and signs a message.
///
/// # Errors
/// [`SealError`] naming the problem: invalid content, an invalid header (e.g. TLP:RED on a
/// channel), a recipient key that cannot be sealed to, or an oversized result.
/// What a control message needs beside the record it carries.
#[derive(Debug, Clone, Copy)]
pub struct ControlDraft<'a> {
    /// Sequence number in the author's control feed of the record's kind.
    pub seq: u64,
    /// The previous message in that feed.
    pub prev: Option<MessageId>,
    /// Creation time.
    pub created: Timestamp,
    /// Expiry.
    pub expires: Timestamp,
    /// Urgency.
    pub priority: Priority,
    /// The signed control record ([`crate::control::sign`]), carried in clear text.
    pub record: &'a [u8],
}

/// Signs a control message: the record travels in clear text in the author's control feed of
/// its kind, marked TLP:CLEAR, to every node. The record is checked first.
///
/// # Errors
/// [`SealError::Control`] if the record does not verify, header and size errors.
pub fn seal_control(author: &IdentityKey, draft: &ControlDraft<'_>) -> Result<SealedMessage, SealError> {
    let kind = crate::control::kind_of(draft.record)?;
    crate::control::verify(draft.record, kind)?;
    let header = Header {
        v: PROTOCOL_VERSION,
        seq: draft.seq,
        feed: Feed::Control(envelope::ControlFeed { kind }),
        prev: draft.prev,
        author: author.node_id(),
        created: draft.created,
        expires: draft.expires,
        marking: Tlp::Clear,
        personal: None,
        priority: draft.priority,
    };
    header.validate()?;
    let (bytes, id) = envelope::sign(author, codec::to_vec(&header), draft.record.to_vec(), None);
    if bytes.len() > LIMITS.max_envelope_len {
        return Err(SealError::TooLarge { len: bytes.len(), max: LIMITS.max_envelope_len });
    }
    Ok(SealedMessage { id, bytes })
}

/// What a message is, for error messages.
fn mode(feed: &Feed) -> &'static str {
    match feed {
        Feed::Channel(_) => "channel",
        Feed::Direct(_) => "direct",
        Feed::Control(_) => "control",
    }
}

pub fn seal(
    rng: &mut impl CryptoRngCore,
    author: &IdentityKey,
    draft: &Draft<'_>,
) -> Result<SealedMessage, SealError> {
    draft.body.validate_authored()?;
    let me = author.node_id();
    let (feed, body_key) = match draft.audience {
        Audience::Channel { id, epoch, key } => {
            (Feed::Channel(ChannelFeed { id, epoch }), Cow::Borrowed(key))
        }
        Audience::Direct(recipients) => {
            let k = SymmetricKey::generate(rng);
            (Feed::Direct(crypto::seal_to_each(rng, &k, INFO_CONTENT_KEY, &me, recipients)?), Cow::Owned(k))
        }
    };
    let personal = match draft.personal {
        None => None,
        Some((data, recipients)) => {
            data.validate()?;
            if data.marking.is_some_and(|m| m > draft.marking) {
                return Err(SealError::Content(ContentError::Invalid {
                    field: "personal.marking".into(),
                    problem: format!(
                        "is looser than the message's {}: a personal section is never",
                        draft.marking
                    ),
                }));
            }
            let k = SymmetricKey::generate(rng);
            Some((data, crypto::seal_to_each(rng, &k, INFO_PERSONAL_KEY, &me, recipients)?, k))
        }
    };
    let header = Header {
        v: PROTOCOL_VERSION,
        seq: draft.seq,
        feed,
        prev: draft.prev,
        author: me,
        created: draft.created,
        expires: draft.expires,
        marking: draft.marking,
        personal: personal.as_ref().map(|(_, sealed, _)| sealed.clone()),
        priority: draft.priority,
    };
    header.validate()?;
    let header_bytes = codec::to_vec(&header);
    let body = body_key.seal(rng, &header_bytes, &draft.body.encode());
    let personal_ct = personal.map(|(data, _, k)| k.seal(rng, &header_bytes, &codec::to_vec(data)));
    let (bytes, id) = envelope::sign(author, header_bytes, body, personal_ct);
    if bytes.len() > LIMITS.max_envelope_len {
        return Err(SealError::TooLarge { len: bytes.len(), max: LIMITS.max_envelope_len });
    }
    Ok(SealedMessage { id, bytes })
}

impl Envelope {
    /// Opens a channel message with the channel's key for the message's epoch.
    ///
    /// # Errors
    /// [`OpenError::WrongMode`] for a direct message, [`OpenError::Crypto`] if the key is not
    /// the right one or anything signed was altered, [`OpenError::Content`] for invalid content.
    pub fn open_channel(&self, key: &EpochKey) -> Result<Body, OpenError> {
        if !matches!(self.header().feed, Feed::Channel(_)) {
            return Err(OpenError::WrongMode { expected: "channel", actual: mode(&self.header().feed) });
        }
        let pt = key.open(self.header_bytes(), self.sealed_body())?;
        not_loosened(self.header(), Body::decode(&pt)?)
    }

    /// Opens a direct message as recipient `me` with its encryption key.
    ///
    /// # Errors
    /// [`OpenError::WrongMode`], [`OpenError::NotARecipient`], [`OpenError::Crypto`] or
    /// [`OpenError::Content`].
    pub fn open_direct(&self, me: &NodeId, key: &EncryptionKey) -> Result<Body, OpenError> {
        let Feed::Direct(sealed) = &self.header().feed else {
            return Err(OpenError::WrongMode { expected: "direct", actual: mode(&self.header().feed) });
        };
        let k = crypto::unseal_from(sealed, INFO_CONTENT_KEY, &self.author(), me, key)?;
        let pt = k.open(self.header_bytes(), self.sealed_body())?;
        not_loosened(self.header(), Body::decode(&pt)?)
    }

    /// The control record a control message carries, its signature checked (it is clear text:
    /// no key is needed).
    ///
    /// # Errors
    /// [`OpenError::WrongMode`] for another message, [`OpenError::Control`] if the record is
    /// refused.
    pub fn open_control(&self) -> Result<crate::control::ControlRecord, OpenError> {
        let Feed::Control(c) = &self.header().feed else {
            return Err(OpenError::WrongMode { expected: "control", actual: mode(&self.header().feed) });
        };
        Ok(crate::control::verify(self.sealed_body(), c.kind)?)
    }

    /// Opens the personal-data section as named recipient `me`.
    ///
    /// # Errors
    /// [`OpenError::NoPersonalSection`], [`OpenError::NotARecipient`], [`OpenError::Crypto`] or
    /// [`OpenError::Content`].
    pub fn open_personal(&self, me: &NodeId, key: &EncryptionKey) -> Result<PersonalData, OpenError> {
        let (Some(sealed), Some(ct)) = (&self.header().personal, self.sealed_personal()) else {
            return Err(OpenError::NoPersonalSection);
        };
        let k = crypto::unseal_from(sealed, INFO_PERSONAL_KEY, &self.author(), me, key)?;
        let pt = k.open(self.header_bytes(), ct)?;
        let p = PersonalData::decode(&pt)?;
        if let Some(m) = p.marking.filter(|m| *m > self.header().marking) {
            return Err(OpenError::LooserPersonal { message: self.header().marking, personal: m });
        }
        Ok(p)
    }
}

//! Every size and count limit of protocol version 1, in one place.
//!
//! The limits that shape the wire format (list lengths, text lengths, nesting depth) are the same
//! on every node: a message that one node accepts must be acceptable to all of them. They are
//! therefore constants of the protocol version, collected in [`LIMITS`] and documented in
//! `docs/protocol.md`. Decoders check them *before* allocating: frame lengths before reading a
//! frame, list counts while a list is being read, nesting depth while CBOR is parsed.

/// The protocol-wide limits of Godwit protocol version 1.
///
/// Fields are public so that operators and tests can read them; a node may lower
/// [`Limits::max_frame_len`] for its own links (never raise it above this value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest transport frame body in bytes (the 4-byte length prefix excluded).
    pub max_frame_len: usize,
    /// Largest signed envelope in bytes (a frame carries an envelope plus a little framing).
    pub max_envelope_len: usize,
    /// Deepest CBOR nesting accepted by any decoder (arrays, maps and tags each count one level).
    pub max_cbor_depth: usize,
    /// Most items in any list inside a message body (species, HS codes, route transits, ...).
    pub max_list_len: usize,
    /// Most named recipients of a direct message or of a personal-data section.
    pub max_recipients: usize,
    /// Longest free-text field in bytes of UTF-8 (titles, narratives, concealment descriptions).
    pub max_text_len: usize,
    /// Longest short text field in bytes (names, places, references).
    pub max_short_text_len: usize,
    /// Largest single attachment in bytes.
    pub max_attachment_len: usize,
    /// Most attachments on one message.
    pub max_attachments: usize,
    /// Most attachment bytes on one message, all attachments together.
    pub max_attachments_total: usize,
    /// Most addresses on a node card.
    pub max_card_addresses: usize,
    /// Most protocol versions a node card may list.
    pub max_card_versions: usize,
}

/// The limits of protocol version 1.
pub const LIMITS: Limits = Limits {
    max_frame_len: 4 * 1024 * 1024,
    max_envelope_len: 4 * 1024 * 1024 - 1024,
    max_cbor_depth: 16,
    max_list_len: MAX_LIST_LEN,
    max_recipients: MAX_RECIPIENTS,
    max_text_len: 64 * 1024,
    max_short_text_len: 256,
    max_attachment_len: 1024 * 1024,
    max_attachments: MAX_ATTACHMENTS,
    max_attachments_total: 3 * 1024 * 1024,
    max_card_addresses: MAX_CARD_ADDRESSES,
    max_card_versions: MAX_CARD_VERSIONS,
};

impl Default for Limits {
    fn default() -> Self {
        LIMITS
    }
}

// Counts used as const generics by the bounded list decoders (see `codec::bounded`).
pub(crate) const MAX_LIST_LEN: usize = 64;
pub(crate) const MAX_RECIPIENTS: usize = 256;
pub(crate) const MAX_ATTACHMENTS: usize = 8;
pub(crate) const MAX_CARD_ADDRESSES: usize = 8;
pub(crate) const MAX_CARD_VERSIONS: usize = 8;

//! # godwit-admin-api
//!
//! What a node's admin socket speaks (DESIGN §9): the client opens with [`Hello`] naming its API
//! version, the node answers with [`Welcome`], then each [`Request`] gets one [`Response`]. Every
//! message is deterministic CBOR behind a 4-byte big-endian length, bounded before anything is
//! allocated for it ([`MAX_REQUEST`], [`MAX_RESPONSE`]). The node and the `godwit` CLI share this
//! crate; the CLI does not link the node.

pub mod audit;

use std::io::{Read, Write};

use godwit_protocol::codec;
use godwit_protocol::identity::NodeId;
use godwit_protocol::ids::MessageId;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// This API's version. A client of another version is refused with [`Welcome::VersionMismatch`].
pub const API_VERSION: u16 = 3;
/// Largest request body in bytes.
pub const MAX_REQUEST: usize = 1 << 20;
/// Largest response body in bytes.
pub const MAX_RESPONSE: usize = 16 << 20;
/// The socket's file name in the node's data directory.
pub const SOCKET_NAME: &str = "admin.sock";

/// The client's first message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hello {
    /// The API version the client speaks.
    pub version: u16,
}

/// The node's answer to [`Hello`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Welcome {
    /// Same version: requests may follow.
    Ok {
        /// The node's NodeId.
        node: NodeId,
    },
    /// Another version: the connection ends.
    VersionMismatch {
        /// The version the node speaks.
        node_speaks: u16,
    },
}

/// A request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Request {
    /// What the node is and how it is doing.
    Status,
    /// The peers it knows: configured, connected, or connected once.
    Peers,
    /// Dial a peer from now on (mutating: journalled with the caller's uid).
    AddPeer {
        /// Its NodeId (its certificate must match).
        node: NodeId,
        /// Where it listens (`ip:port`).
        address: String,
    },
    /// Stop dialling a peer and close its connection (mutating: journalled).
    RemovePeer {
        /// A NodeId, or a directory name naming one node.
        node: String,
    },
    /// Refuse a node from now on, also after restarts, and close its connection (mutating).
    Block {
        /// A NodeId, or a directory name naming one node.
        node: String,
    },
    /// Take a blocked node again (mutating).
    Unblock {
        /// A NodeId, or a directory name naming one node.
        node: String,
    },
    /// The last entries of the audit journal, oldest first.
    Journal {
        /// How many.
        last: u32,
    },
    /// Recompute the journal's hash chain.
    VerifyJournal,
    /// The audit log (`godwit audit`); `new_generation` is mutating and journalled.
    Audit(audit::AuditRequest),
    /// Send a direct message to named recipients (mutating: journalled with the caller's uid).
    /// The node seals it to each recipient's newest card.
    SendDirect {
        /// Recipients: NodeIds, ISO 3166 country codes or administration names.
        to: Vec<String>,
        /// `flash`, `immediate` or `routine`.
        priority: String,
        /// TLP 2.0 marking: `red`, `amber+strict`, `amber`, `green`, `clear`.
        marking: String,
        /// Lifetime in hours.
        ttl_hours: u32,
        /// The body (content and grading), as Godwit's deterministic CBOR.
        #[serde(with = "serde_bytes")]
        body: Vec<u8>,
        /// Personal data, sealed to named recipients only.
        #[serde(default)]
        personal: Option<PersonalPart>,
    },
    /// Send a message to a channel this node holds the key of (mutating: journalled).
    SendChannel {
        /// The channel: its name in the node's configuration, or its id (64 hex digits).
        channel: String,
        /// `flash`, `immediate` or `routine`.
        priority: String,
        /// TLP 2.0 marking (not `TLP:RED`: that travels only as a direct message).
        marking: String,
        /// Lifetime in hours.
        ttl_hours: u32,
        /// The body, as Godwit's deterministic CBOR.
        #[serde(with = "serde_bytes")]
        body: Vec<u8>,
        /// Personal data, sealed only to the named readers of the channel.
        #[serde(default)]
        personal: Option<PersonalPart>,
    },
    /// The inbox, oldest first.
    Inbox,
    /// The seizure reports this node authored and the corrections and retractions it sent of
    /// them, oldest first, with their bodies ([`Response::OwnReports`]): what its CITES annual
    /// illegal trade report is made of. They are never in its own inbox. A page of at most 128
    /// from the `skip`th; a shorter page is the last.
    OwnReports {
        /// How many to pass over.
        skip: u32,
    },
    /// The newest `replay` messages already in the inbox (as one first [`Response::Inbox`]
    /// batch, sent even when empty), then every message delivered from then on, with no gap
    /// between them; with `journal`, the same of journal entries ([`Response::Journal`]).
    /// Until the client closes the connection. Driven by the durable inbox and journal: what a
    /// batch lists is stored.
    Follow {
        /// Follow the journal instead of the inbox.
        journal: bool,
        /// How many of the newest stored entries come first.
        replay: u32,
    },
    /// One message of the inbox: its signed header, and its content when this node can open it.
    Show {
        /// Its id (64 hex digits, or a unique prefix of at least 8).
        id: String,
    },
    /// Mark a message of the inbox read, or actioned (mutating: journalled with the caller's
    /// uid), and tell its author so with a signed receipt (a direct message).
    Mark {
        /// Its id (64 hex digits, or a unique prefix of at least 8).
        id: String,
        /// Actioned rather than only read.
        actioned: bool,
        /// What was done, e.g. "container examined, 3 tusks found" (it goes to the author).
        note: Option<String>,
    },
    /// Retire this node's encryption key for a new one and publish a card announcing it
    /// (mutating: journalled). Earlier keys are kept to open what was sealed to them.
    RotateKey,
    /// The directory: every node's newest valid card, or those a name stands for (a NodeId, an
    /// ISO 3166 country code, an administration's name).
    Directory {
        /// The name, or `None` for all.
        name: Option<String>,
    },
    /// The channels this node knows, with their members and whether it holds their key.
    Channels,
    /// Never open a message's personal-data section here again (mutating: journalled). The
    /// sealed bytes stay inside the signed envelope until the message expires.
    PurgePersonal {
        /// The message (an id or a prefix of at least 8 hex digits).
        id: String,
    },
    /// Forward a message from this node's inbox to a new audience (mutating: journalled): it
    /// carries the original envelope as signed and keeps its marking. TLP:RED and AMBER+STRICT
    /// are never forwarded; TLP:AMBER only with its originator's consent.
    Forward {
        /// The original (full id, or a prefix of an inbox message's id).
        id: String,
        /// To a channel (name or id) …
        channel: Option<String>,
        /// … or to named recipients.
        to: Vec<String>,
        /// Why it is forwarded.
        comment: Option<String>,
        /// The originator's message consenting (needed for TLP:AMBER).
        consent: Option<String>,
        /// `flash`, `immediate` or `routine`.
        priority: String,
    },
    /// Withdraw (retract) or correct a message this node sent: to the same audience (the
    /// channel's current members, or the same recipients), with the same marking (mutating:
    /// journalled). Only its author may.
    Withdraw {
        /// The message's full id.
        id: String,
        /// Why.
        reason: String,
        /// For a correction: the corrected body (its content must be of the original's kind).
        #[serde(with = "serde_bytes")]
        corrected: Option<Vec<u8>>,
    },
    /// Ask a channel's owner to admit this node (its administrator decides), or leave a channel
    /// (its owner's node removes this node at once): a direct message to the owner.
    RequestChannel {
        /// The channel (name or id).
        channel: String,
        /// `true` to leave, `false` to ask to join.
        leave: bool,
        /// Why, or who asks.
        note: String,
    },
    /// Requests to join the channels this node owns (or deputises for) from nodes that are not
    /// members yet, and not refused.
    ChannelRequests,
    /// The thread a message belongs to, across administrations: the messages it refers to
    /// (a seizure's Warning, say) and those that refer to them (feedback, seizure reports, case
    /// follow-ups, forensic results, retractions), oldest first; receipts left out.
    Thread {
        /// The message: a full id, or a prefix of an inbox message's id.
        id: String,
    },
    /// Who has receipted a message: per expected recipient (a direct message's recipients, a
    /// channel's readers) delivered / read / actioned, with times; missing ones too.
    Receipts {
        /// The message: its full id (also one this node sent), or a prefix of an inbox message.
        id: String,
    },
    /// A channel change by its owner or deputy (mutating: journalled): a new signed state and
    /// a new epoch key sealed to every reader.
    ChangeChannel(ChannelChange),
}

/// What an owner (or deputy) changes in a channel. Nodes are named as for [`Request::SendDirect`]
/// (NodeId, country code, administration) and must each be one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ChannelChange {
    /// A new channel owned by this node (which reads and publishes in it).
    Create {
        /// Its name, unique among the channels this node knows.
        name: String,
        /// What it is for.
        purpose: String,
        /// A deputy owner (a member that reads and publishes).
        deputy: Option<String>,
        /// When an operation channel ends (ms since the epoch).
        ends_ms: Option<u64>,
        /// Days members keep its keys after it ends.
        retain_days: u32,
    },
    /// Admit a node, or change its rights.
    Admit {
        /// The channel (name or id).
        channel: String,
        /// The node.
        node: String,
        /// Whether it reads.
        read: bool,
        /// Whether it publishes.
        publish: bool,
    },
    /// Remove a node: it cannot read anything sent from now on.
    Remove {
        /// The channel.
        channel: String,
        /// The node.
        node: String,
    },
    /// End an operation channel now: it refuses messages created after this.
    Close {
        /// The channel.
        channel: String,
    },
    /// A new epoch key for the same members (after a suspected leak, or on a schedule).
    Rekey {
        /// The channel.
        channel: String,
    },
}

/// Personal data (persons, companies, pseudonymised permits) for a message, sealed only to the
/// named recipients: other readers see that it exists, not what it says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersonalPart {
    /// The section (Godwit's CBOR of `PersonalData`).
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
    /// Who may open it, named as recipients are (empty for a direct message: every recipient).
    pub to: Vec<String>,
}

/// `godwit receipts MSG`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptsView {
    /// The message.
    pub id: MessageId,
    /// One row per expected recipient (in order), then any other node that receipted it.
    pub rows: Vec<ReceiptRow>,
}

/// What one node has receipted (times in ms since the epoch, by the receipting node's clock).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptRow {
    /// The node.
    pub node: NodeId,
    /// Its administration, from its card.
    pub administration: String,
    /// Whether it was expected to receive the message.
    pub expected: bool,
    /// Stored at its node.
    pub delivered_ms: Option<u64>,
    /// Read by an officer.
    pub read_ms: Option<u64>,
    /// Acted upon.
    pub actioned_ms: Option<u64>,
    /// The newest note.
    pub note: Option<String>,
}

/// A request to join a channel this node owns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelRequestView {
    /// The request (an inbox message: `godwit inbox action ID --note "refused: …"` refuses it).
    pub id: MessageId,
    /// The channel's id.
    pub channel: String,
    /// Its name.
    pub channel_name: String,
    /// Who asks.
    pub node: NodeId,
    /// Its administration, from its certificate.
    pub administration: String,
    /// What it says.
    pub note: String,
    /// When it was sent (ms since the epoch).
    pub created_ms: u64,
}

/// One channel as `godwit channels list|show` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelView {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// What it is for.
    pub purpose: String,
    /// The epoch this node holds.
    pub epoch: u64,
    /// Its owner.
    pub owner: NodeId,
    /// Its deputy owner.
    pub deputy: Option<NodeId>,
    /// When it ends (ms since the epoch), if it is an operation channel.
    pub ends_ms: Option<u64>,
    /// Its members and their rights.
    pub members: Vec<ChannelMemberView>,
    /// Whether this node holds the current epoch's key.
    pub has_key: bool,
    /// Whether the channel comes from static configuration (no signed state).
    pub configured: bool,
}

/// The channels a name stands for, in this order of precedence: the one whose id it is (a
/// channel may be named like another's id), else those of that name (any case), else those
/// whose id starts with it (8 hex digits or more). `id` and `name` give each item's.
pub fn select_channels<'a, T>(
    items: &'a [T],
    want: &str,
    id: impl Fn(&T) -> String,
    name: impl Fn(&T) -> &str,
) -> Vec<&'a T> {
    let want = want.trim();
    let lower = want.to_ascii_lowercase();
    let exact: Vec<&T> = items.iter().filter(|c| id(c) == lower).collect();
    if !exact.is_empty() {
        return exact;
    }
    let named: Vec<&T> = items.iter().filter(|c| name(c).eq_ignore_ascii_case(want)).collect();
    if !named.is_empty() || lower.len() < 8 {
        return named;
    }
    items.iter().filter(|c| id(c).starts_with(&lower)).collect()
}

/// A member of a channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelMemberView {
    /// The node.
    pub node: NodeId,
    /// Its administration, from its card (empty when its card is not known).
    pub administration: String,
    /// Whether it reads.
    pub read: bool,
    /// Whether it publishes.
    pub publish: bool,
}

/// A response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    /// Answer to [`Request::Status`].
    Status(Box<Status>),
    /// Answer to [`Request::Peers`].
    Peers(Vec<PeerView>),
    /// Answer to [`Request::Journal`].
    Journal(Vec<JournalView>),
    /// Answer to [`Request::VerifyJournal`].
    JournalVerified {
        /// Entries checked.
        entries: u64,
        /// Problems found (empty: the chain is sound).
        problems: Vec<String>,
    },
    /// Answer to [`Request::Directory`].
    Directory(Vec<DirectoryView>),
    /// Answer to [`Request::Audit`].
    Audit(Box<audit::AuditAnswer>),
    /// A message was authored and is stored durably here.
    Sent {
        /// Its id.
        id: MessageId,
        /// The nodes it is sealed to.
        to: Vec<NodeId>,
    },
    /// Answer to [`Request::Inbox`].
    Inbox(Vec<InboxItem>),
    /// Answer to [`Request::Show`].
    Message(Box<MessageView>),
    /// Answer to [`Request::OwnReports`] (without envelopes; no personal sections: they are not
    /// kept).
    OwnReports(Vec<MessageView>),
    /// Answer to [`Request::Mark`]: the mark is stored durably.
    Marked {
        /// The message marked.
        id: MessageId,
        /// The receipt sent to its author (`None` when this node is the author, or its card
        /// is not known yet).
        receipt: Option<MessageId>,
    },
    /// Answer to [`Request::RotateKey`]: the new key is on disk and its card published.
    Rotated {
        /// The new public encryption key (X25519).
        #[serde(with = "serde_bytes")]
        encryption_key: Vec<u8>,
    },
    /// Answer to [`Request::Channels`].
    Channels(Vec<ChannelView>),
    /// Answer to [`Request::Receipts`].
    Receipts(ReceiptsView),
    /// Answer to [`Request::ChannelRequests`].
    ChannelRequests(Vec<ChannelRequestView>),
    /// Answer to [`Request::ChangeChannel`]: the new state and key are published (durable here).
    ChannelChanged {
        /// The channel.
        channel: String,
        /// Its new epoch.
        epoch: u64,
    },
    /// A mutating request was carried out.
    Done,
    /// The node refused the request.
    Refused(Refusal),
}

/// Why the node refused a request: a stable code and a message saying what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Refusal {
    /// `bad_request`, `not_found`, `too_large`, `unavailable`.
    pub code: String,
    /// For the operator.
    pub message: String,
}

/// `godwit status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Status {
    /// The node's NodeId.
    pub node: NodeId,
    /// Its administration, from its certificate.
    pub administration: String,
    /// Its country (ISO 3166-1 alpha-2), from its certificate.
    pub country: Option<String>,
    /// Its region, from its certificate.
    pub region: Option<String>,
    /// Its role: `member`, `hub` or `authority`.
    pub role: String,
    /// The godwitd version.
    pub version: String,
    /// Seconds since it started.
    pub uptime_s: u64,
    /// Peers connected now.
    pub peers_connected: u32,
    /// Messages in its inbox.
    pub inbox: u64,
    /// Bytes its store takes on disk.
    pub store_bytes: u64,
    /// Its certificate's end of validity, seconds since the epoch.
    pub certificate_not_after: i64,
    /// Whether it is recovering its own feed heads after a restore.
    pub recovering: bool,
    /// Whether its store is full (new messages refused).
    pub storage_full: bool,
    /// Bytes queued towards its peers now, in all (per peer: [`Request::Peers`]).
    pub queued_bytes: u64,
    /// What needs the operator's attention (damage, certificate expiring, a full store, …).
    pub warnings: Vec<String>,
}

/// One peer in `godwit peers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerView {
    /// Its NodeId.
    pub node: NodeId,
    /// Its administration (empty if never connected).
    pub administration: String,
    /// Its role (empty if never connected).
    pub role: String,
    /// Whether this node dials it.
    pub configured: bool,
    /// Whether it is connected now.
    pub connected: bool,
    /// When it last connected, ms since the epoch (0: never).
    pub last_seen_ms: u64,
    /// Bytes queued towards it now (0 when not connected).
    pub queued_bytes: u64,
    /// Why the last connection with it ended or could not be made (empty: none seen).
    pub last_error: String,
}

/// One message in `godwit inbox`: what its signed header says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboxItem {
    /// Its id.
    pub id: MessageId,
    /// Its author.
    pub author: NodeId,
    /// The author's administration, from the directory (empty if unknown).
    pub administration: String,
    /// `channel` or `direct`.
    pub mode: String,
    /// The channel's id, for channel messages.
    pub channel: Option<String>,
    /// The channel's name in this node's configuration, when it has one.
    pub channel_name: Option<String>,
    /// Its TLP marking, e.g. `TLP:RED`.
    pub marking: String,
    /// `flash`, `immediate` or `routine`.
    pub priority: String,
    /// When its author created it, ms since the epoch.
    pub created_ms: u64,
    /// Its content's kind (`warning`, `feedback`, `seizure_report`,
    /// `receipt`, …; `bulletin` for an intelligence bulletin), or `sealed` when this node cannot
    /// open it.
    pub kind: String,
    /// One line saying what it is about (its title, or what it answers).
    pub title: String,
    /// The message it answers or refers to (feedback, receipt, retraction, …), if any.
    pub refers_to: Option<MessageId>,
    /// `new`, `read` or `actioned`: how far this node's operators got with it.
    pub status: String,
}

/// One message in `godwit inbox show`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageView {
    /// Its header, as in the inbox list.
    pub item: InboxItem,
    /// The exact envelope bytes, as signed.
    #[serde(with = "serde_bytes")]
    pub envelope: Vec<u8>,
    /// The opened body (Godwit's CBOR), when this node can open it.
    #[serde(with = "serde_bytes")]
    pub body: Vec<u8>,
    /// Why it could not be opened, when it could not.
    pub unopened: Option<String>,
    /// Its personal-data section, opened (Godwit's CBOR), when this node may see it.
    #[serde(default, with = "serde_bytes")]
    pub personal: Vec<u8>,
    /// `none`, `opened`, `sealed to others`, `purged` or `retention passed`.
    #[serde(default)]
    pub personal_status: String,
}

/// One node in `godwit directory`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryView {
    /// Its NodeId.
    pub node: NodeId,
    /// Its administration, from its certificate.
    pub administration: String,
    /// Its country, from its certificate.
    pub country: Option<String>,
    /// Its region, from its certificate.
    pub region: Option<String>,
    /// Its role.
    pub role: String,
    /// Its current X25519 encryption key.
    #[serde(with = "serde_bytes")]
    pub encryption_key: Vec<u8>,
    /// Where it accepts connections.
    pub addresses: Vec<String>,
    /// End of its card's validity, ms since the epoch.
    pub card_not_after_ms: u64,
}

/// One journal entry in `godwit journal`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalView {
    /// Its position, from 1.
    pub seq: u64,
    /// The event, as text (ids, reasons, counts — never message bodies).
    pub event: String,
}

/// Why a message could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The other side closed the connection.
    #[error("the connection was closed")]
    Closed,
    /// Reading or writing failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The announced length is over the limit.
    #[error("a message of {len} bytes is over the limit of {max}")]
    TooLarge {
        /// Announced.
        len: usize,
        /// Allowed.
        max: usize,
    },
    /// The body is not a valid message.
    #[error("{0}")]
    Malformed(#[from] codec::CodecError),
}

/// The bytes of one message: length prefix and deterministic CBOR.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let body = codec::to_vec(value);
    let mut out = Vec::with_capacity(4 + body.len());
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// Decodes one message body (without its length prefix).
///
/// # Errors
/// [`FrameError::Malformed`].
pub fn decode<T: DeserializeOwned + Serialize>(body: &[u8]) -> Result<T, FrameError> {
    Ok(codec::from_slice("admin message", body)?)
}

/// Writes one message.
///
/// # Errors
/// [`FrameError::Io`].
pub fn write<T: Serialize>(w: &mut impl Write, value: &T) -> Result<(), FrameError> {
    w.write_all(&encode(value))?;
    w.flush()?;
    Ok(())
}

/// Reads one message of at most `max` bytes; the body grows as it arrives, never allocated
/// at the announced length up front.
///
/// # Errors
/// [`FrameError`].
pub fn read<T: DeserializeOwned + Serialize>(r: &mut impl Read, max: usize) -> Result<T, FrameError> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(FrameError::Closed),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    let mut body = Vec::new();
    r.take(len as u64).read_to_end(&mut body)?;
    if body.len() < len {
        return Err(FrameError::Closed);
    }
    decode(&body)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_channel_is_named_by_exact_id_before_name_before_id_prefix() {
        let id_a = "a".repeat(64);
        let id_b = "b".repeat(64);
        // Channel b is named like channel a's id: the exact id still names a.
        let list = [(id_a.clone(), "ESA alerts".to_string()), (id_b.clone(), id_a.clone())];
        let pick = |want: &str| -> Vec<String> {
            select_channels(&list, want, |c| c.0.clone(), |c| c.1.as_str())
                .into_iter()
                .map(|c| c.0.clone())
                .collect()
        };
        assert_eq!(pick(&id_a), vec![id_a.clone()]);
        assert_eq!(pick(" esa ALERTS "), vec![id_a.clone()]);
        assert_eq!(pick("bbbbbbbb"), vec![id_b.clone()]);
        assert!(pick("bbbb").is_empty(), "a prefix is at least 8 hex digits");
        assert!(pick("nope").is_empty());
    }

    #[test]
    fn messages_round_trip_and_oversized_ones_are_refused_before_reading_them() {
        let req = Request::AddPeer {
            node: godwit_protocol::identity::IdentityKey::from_seed(&[1; 32]).node_id(),
            address: "127.0.0.1:4433".into(),
        };
        let bytes = encode(&req);
        assert_eq!(read::<Request>(&mut &bytes[..], MAX_REQUEST).unwrap(), req);
        let e = read::<Request>(&mut &bytes[..], 8).unwrap_err();
        assert!(matches!(e, FrameError::TooLarge { max: 8, .. }), "{e}");
        let e = read::<Request>(&mut &bytes[..bytes.len() - 1], MAX_REQUEST).unwrap_err();
        assert!(matches!(e, FrameError::Closed), "{e}");
        assert!(matches!(read::<Request>(&mut &[][..], MAX_REQUEST), Err(FrameError::Closed)));
        let junk = [0, 0, 0, 2, 0xff, 0xff];
        assert!(matches!(read::<Request>(&mut &junk[..], MAX_REQUEST), Err(FrameError::Malformed(_))));
    }
}

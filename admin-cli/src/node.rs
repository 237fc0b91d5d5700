//! Commands that talk to a running node over its admin socket.

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Subcommand;
use godwit_admin_api::{self as api, API_VERSION, Hello, MAX_RESPONSE, Request, Response, Welcome};
use godwit_protocol::content::{Body, Content};
use godwit_protocol::identity::NodeId;
use serde_json::json;

/// Why a command failed, with the exit code it gives.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    /// 1: refused by the node or bad input; 3: node unreachable; 4: version mismatch.
    pub code: u8,
    /// What to do about it.
    pub message: String,
}

/// Exit code: the node refused the request, or the input was wrong.
pub const EXIT_REFUSED: u8 = 1;
/// Exit code: the node cannot be reached over its socket.
pub const EXIT_UNREACHABLE: u8 = 3;
/// Exit code: the node speaks another admin API version.
pub const EXIT_VERSION: u8 = 4;
/// Exit code: the socket exists but this user may not use it (not in its group).
pub const EXIT_PERMISSION: u8 = 5;

pub(crate) fn fail(code: u8, message: String) -> anyhow::Error {
    Failure { code, message }.into()
}

/// `godwit peers …`.
#[derive(Debug, Subcommand)]
pub enum PeersCommand {
    /// The peers the node knows: configured, connected, or connected once (the default).
    List,
    /// Dial a peer from now on.
    Add {
        /// Its NodeId (its certificate must match).
        node_id: String,
        /// Where it listens (`ip:port`).
        address: String,
    },
    /// Stop dialling a peer and close its connection.
    Remove {
        /// Its NodeId, or a name the directory knows for exactly one node.
        node: String,
    },
    /// Refuse a node from now on (also after restarts) and close its connection.
    Block {
        /// Its NodeId, or a name the directory knows for exactly one node.
        node: String,
    },
    /// Take a blocked node again.
    Unblock {
        /// Its NodeId, or a name the directory knows for exactly one node.
        node: String,
    },
}

/// `godwit directory …`.
#[derive(Debug, Subcommand)]
pub enum DirectoryCommand {
    /// Every node whose card this node holds (the default).
    List,
    /// The nodes a name stands for: a NodeId, an ISO 3166 country code (KE) or an
    /// administration's name ("Kenya Revenue Authority").
    Show {
        /// The name.
        node: String,
    },
}

/// Where a message goes: a channel, or named recipients.
#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
pub struct Audience {
    /// A channel: its name in the node's configuration, or its id.
    #[arg(long)]
    channel: Option<String>,
    /// A recipient of a direct message: a NodeId, an ISO 3166 country code (every node of that
    /// country) or an administration's name. Repeat for several.
    #[arg(long = "to")]
    to: Vec<String>,
}

/// `godwit send …`.
#[derive(Debug, Subcommand)]
pub enum SendCommand {
    /// Forward a message from the inbox to a channel or to named recipients: it carries the
    /// original as signed and keeps its marking (RED and AMBER+STRICT never; AMBER only with
    /// the originator's consent).
    Forward {
        /// The original's id (or a unique prefix).
        id: String,
        /// Where it goes.
        #[command(flatten)]
        audience: Audience,
        /// Why it is forwarded.
        #[arg(long)]
        comment: Option<String>,
        /// The originator's message consenting to it (needed for TLP:AMBER).
        #[arg(long)]
        consent: Option<String>,
        /// flash, immediate or routine.
        #[arg(long, default_value = "routine")]
        priority: String,
    },
    /// Retract a message this node sent: every holder shows it as retracted.
    Retract {
        /// Its full id.
        id: String,
        /// Why, e.g. "the container number was wrong".
        #[arg(long)]
        reason: String,
    },
    /// Correct a message this node sent with a new body of the same kind (JSON or TOML file).
    Correct {
        /// Its full id.
        id: String,
        /// What was wrong.
        #[arg(long)]
        reason: String,
        /// The corrected body.
        #[arg(long)]
        file: PathBuf,
    },
    /// A Warning (an alert: a risk profile to act on), from a JSON or TOML file.
    Alert {
        /// Where it goes.
        #[command(flatten)]
        audience: Audience,
        /// TLP 2.0 marking (default: amber to a channel, red direct).
        #[arg(long)]
        marking: Option<String>,
        /// What to send.
        #[command(flatten)]
        message: Publication,
    },
    /// An intelligence bulletin, from a file or from --title, --summary and --text.
    Bulletin {
        /// Where it goes.
        #[command(flatten)]
        audience: Audience,
        /// TLP 2.0 marking (default: amber to a channel, red direct).
        #[arg(long)]
        marking: Option<String>,
        /// Its title.
        #[arg(long, conflicts_with = "file")]
        title: Option<String>,
        /// Its key findings in a few lines.
        #[arg(long, conflicts_with = "file")]
        summary: Option<String>,
        /// The analysis.
        #[arg(long, conflicts_with = "file")]
        text: Option<String>,
        /// A country concerned (ISO 3166 code); repeat for several.
        #[arg(long = "country", conflicts_with = "file")]
        countries: Vec<String>,
        /// The issuing office's reference, e.g. "RILO ESA 2026/14".
        #[arg(long, conflicts_with = "file")]
        reference: Option<String>,
        /// What to send.
        #[command(flatten)]
        message: Publication,
    },
    /// A seizure report, from a JSON or TOML file.
    Seizure {
        /// Where it goes.
        #[command(flatten)]
        audience: Audience,
        /// TLP 2.0 marking (default: amber to a channel, red direct).
        #[arg(long)]
        marking: Option<String>,
        /// What to send.
        #[command(flatten)]
        message: Publication,
    },
    /// Feedback on a Warning (what was done about it), from a file or from --warning,
    /// --outcome and --details.
    Feedback {
        /// Where it goes (normally the Warning's channel, or its author with --to).
        #[command(flatten)]
        audience: Audience,
        /// TLP 2.0 marking (default: amber to a channel, red direct).
        #[arg(long)]
        marking: Option<String>,
        /// The Warning's id (64 hex digits).
        #[arg(long, conflicts_with = "file")]
        warning: Option<String>,
        /// nothing_found, seized, not_located, not_examined or ongoing.
        #[arg(long, conflicts_with = "file")]
        outcome: Option<String>,
        /// What was done.
        #[arg(long, conflicts_with = "file")]
        details: Option<String>,
        /// When (YYYY-MM-DD; default today).
        #[arg(long, conflicts_with = "file")]
        date: Option<String>,
        /// The seizure report that followed (its id).
        #[arg(long, conflicts_with = "file")]
        seizure: Option<String>,
        /// What to send.
        #[command(flatten)]
        message: Publication,
    },
    /// A direct message to named recipients, sealed to each one's newest card (relayed through
    /// hubs, which cannot read it). Prints its id once the node holds it durably.
    Direct {
        /// A recipient: a NodeId, an ISO 3166 country code (every node of that country) or an
        /// administration's name. Repeat for several.
        #[arg(long = "to", required = true)]
        to: Vec<String>,
        /// TLP 2.0 marking: red, amber+strict, amber, green or clear.
        #[arg(long, default_value = "red")]
        marking: String,
        /// What to send.
        #[command(flatten)]
        message: Publication,
    },
    /// A message to a channel (an alert, a bulletin, …), to every member: sealed with the
    /// channel's epoch key, which this node must hold.
    Channel {
        /// The channel: its name in the node's configuration, or its id.
        #[arg(long)]
        channel: String,
        /// TLP 2.0 marking: amber+strict, amber, green or clear (TLP:RED goes only direct).
        #[arg(long, default_value = "green")]
        marking: String,
        /// What to send.
        #[command(flatten)]
        message: Publication,
    },
}

/// Reads a message body from a JSON file, a TOML file (`.toml`), or - for JSON on standard
/// input; with `kind`, it must be of that kind.
fn read_body(file: &Path, kind: Option<&str>) -> anyhow::Result<Body> {
    let text = if file.as_os_str() == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
        s
    } else {
        std::fs::read_to_string(file)
            .map_err(|e| fail(EXIT_REFUSED, format!("cannot read {}: {e}", file.display())))?
    };
    let not_body = |e: String| {
        fail(EXIT_REFUSED, format!("{} is not a message body: {e} (see docs/examples/)", file.display()))
    };
    let body: Body = if file.extension().is_some_and(|e| e.eq_ignore_ascii_case("toml")) {
        toml::from_str(&text).map_err(|e| not_body(e.to_string()))?
    } else {
        serde_json::from_str(&text).map_err(|e| not_body(e.to_string()))?
    };
    if let Some(k) = kind {
        if body.content.kind() != k {
            return Err(fail(
                EXIT_REFUSED,
                format!("{} holds a {}, not a {k}", file.display(), body.content.kind().replace('_', " ")),
            ));
        }
    }
    Ok(body)
}

/// Checks a body and encodes it for the node, with `--grading` if given.
fn finish(mut body: Body, message: &Publication, what: &str) -> anyhow::Result<Vec<u8>> {
    let grading = message.grading.as_deref();
    if !message.addressees.is_empty() {
        body.addressees = message.addressees.iter().map(|a| a.trim().to_string()).collect();
    }
    if let Some(g) = grading {
        body.grading = Some(
            g.trim()
                .to_ascii_uppercase()
                .parse()
                .map_err(|e| fail(EXIT_REFUSED, format!("--grading: {e}")))?,
        );
    }
    body.validate().map_err(|e| fail(EXIT_REFUSED, format!("{what}: {e}")))?;
    Ok(body.encode())
}

fn need_file(message: &Publication) -> anyhow::Result<&Path> {
    message
        .file
        .as_deref()
        .ok_or_else(|| fail(EXIT_REFUSED, "give the message with --file (see docs/examples/)".into()))
}

fn message_id(text: &str, flag: &str) -> anyhow::Result<godwit_protocol::ids::MessageId> {
    let t = text.trim().to_ascii_lowercase();
    let bytes: Option<Vec<u8>> = (t.len() == 64 && t.is_ascii())
        .then(|| (0..32).map(|i| u8::from_str_radix(&t[2 * i..2 * i + 2], 16).ok()).collect())
        .flatten();
    match bytes.and_then(|b| <[u8; 32]>::try_from(b).ok()) {
        Some(b) => Ok(godwit_protocol::ids::MessageId(b)),
        None => Err(fail(EXIT_REFUSED, format!("{flag} {text:?} is not a message id (64 hex digits)"))),
    }
}

/// The body of a `send alert|bulletin|seizure|feedback`.
fn kind_body(cmd: &SendCommand) -> anyhow::Result<Vec<u8>> {
    use godwit_protocol::content::{Feedback, IntelligenceBulletin, Outcome};
    let bad = |m: String| fail(EXIT_REFUSED, m);
    match cmd {
        SendCommand::Retract { .. } | SendCommand::Correct { .. } | SendCommand::Forward { .. } => {
            Err(bad("not a new message".into()))
        }
        SendCommand::Alert { message, .. } => {
            let file = need_file(message)?;
            finish(read_body(file, Some("warning"))?, message, &file.display().to_string())
        }
        SendCommand::Seizure { message, .. } => {
            let file = need_file(message)?;
            finish(read_body(file, Some("seizure_report"))?, message, &file.display().to_string())
        }
        SendCommand::Bulletin { message, title, summary, text, countries, reference, .. } => {
            let body = match (&message.file, title) {
                (Some(file), _) => read_body(file, Some("bulletin"))?,
                (None, Some(title)) => {
                    let countries = countries
                        .iter()
                        .map(|c| {
                            c.trim().to_ascii_uppercase().parse().map_err(|e| bad(format!("--country: {e}")))
                        })
                        .collect::<anyhow::Result<Vec<_>>>()?;
                    Body::new(Content::Bulletin(IntelligenceBulletin {
                        body: text.clone().unwrap_or_default(),
                        title: title.clone(),
                        species: Vec::new(),
                        summary: summary.clone().unwrap_or_default(),
                        countries,
                        reference: reference.clone(),
                        attachments: Vec::new(),
                    }))
                }
                (None, None) => return Err(bad("give the bulletin with --file, or at least --title".into())),
            };
            finish(body, message, "the bulletin")
        }
        SendCommand::Feedback { message, warning, outcome, details, date, seizure, .. } => {
            let body = match (&message.file, warning) {
                (Some(file), _) => read_body(file, Some("feedback"))?,
                (None, Some(warning)) => {
                    let outcome: Outcome = match outcome {
                        Some(o) => serde_json::from_value(serde_json::Value::String(o.trim().to_ascii_lowercase().replace(['-', ' '], "_")))
                            .map_err(|_| bad(format!("--outcome {o:?} is not nothing_found, seized, not_located, not_examined or ongoing")))?,
                        None => return Err(bad("give --outcome (nothing_found, seized, not_located, not_examined, ongoing)".into())),
                    };
                    let date = date.clone().unwrap_or_else(crate::inbox::today);
                    Body::new(Content::Feedback(Feedback {
                        date: date.trim().parse().map_err(|e| bad(format!("--date: {e}")))?,
                        place: None,
                        details: details.clone().unwrap_or_default(),
                        outcome,
                        seizure: seizure.as_deref().map(|s| message_id(s, "--seizure")).transpose()?,
                        warning: message_id(warning, "--warning")?,
                        shipment: Vec::new(),
                    }))
                }
                (None, None) => {
                    return Err(bad("give the feedback with --file, or with --warning and --outcome".into()));
                }
            };
            finish(body, message, "the feedback")
        }
        SendCommand::Direct { message, .. } | SendCommand::Channel { message, .. } => {
            let file = need_file(message)?;
            finish(read_body(file, None)?, message, &file.display().to_string())
        }
    }
}

/// `red` → `TLP:RED`.
pub(crate) fn tlp(marking: &str) -> String {
    let m = marking.trim().to_ascii_uppercase();
    if m.starts_with("TLP:") { m } else { format!("TLP:{m}") }
}

/// The fields every message to send has.
#[derive(Debug, clap::Args)]
pub struct Publication {
    /// The message body as JSON or TOML (`.toml`): content and grading (see docs/examples/),
    /// or - for JSON on standard input.
    #[arg(long)]
    file: Option<PathBuf>,
    /// Grading of source and information (Admiralty B2, Europol 4x4:B3, UK 3x5x2:1AP; replaces
    /// the file's).
    #[arg(long)]
    grading: Option<String>,
    /// An officer or role at the recipient administration it is for (e.g. "head of the
    /// intelligence unit"): its node shows it only to the accounts mapped to one. Repeat for
    /// several.
    #[arg(long = "addressee")]
    addressees: Vec<String>,
    /// flash, immediate or routine.
    #[arg(long, default_value = "immediate")]
    priority: String,
    /// Lifetime in hours.
    #[arg(long, default_value_t = 24 * 30)]
    ttl_hours: u32,
    /// Personal data (persons, companies, pseudonymised permits) as JSON or TOML, sealed only
    /// to --personal-to (a direct message's recipients by default); other readers see that it
    /// exists, not what it says.
    #[arg(long)]
    personal: Option<PathBuf>,
    /// Who may open the personal data (a node name); repeat for several.
    #[arg(long = "personal-to", requires = "personal")]
    personal_to: Vec<String>,
}

/// The personal-data section a send command names, read and encoded.
fn personal_of(message: &Publication) -> anyhow::Result<Option<api::PersonalPart>> {
    let Some(file) = &message.personal else { return Ok(None) };
    let text = std::fs::read_to_string(file)
        .map_err(|e| fail(EXIT_REFUSED, format!("cannot read {}: {e}", file.display())))?;
    let bad = |e: String| fail(EXIT_REFUSED, format!("{} is not personal data: {e}", file.display()));
    let data: godwit_protocol::content::PersonalData =
        if file.extension().is_some_and(|e| e.eq_ignore_ascii_case("toml")) {
            toml::from_str(&text).map_err(|e| bad(e.to_string()))?
        } else {
            serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?
        };
    data.validate().map_err(|e| bad(e.to_string()))?;
    Ok(Some(api::PersonalPart {
        data: godwit_protocol::codec::to_vec(&data),
        to: message.personal_to.clone(),
    }))
}

/// `godwit inbox …`.
#[derive(Debug, Subcommand)]
pub enum InboxCommand {
    /// The messages delivered to this node, oldest first (the default).
    List {
        /// Then keep printing every message delivered from now on, until interrupted.
        #[arg(long)]
        follow: bool,
        /// Which messages.
        #[command(flatten)]
        filter: crate::inbox::Filter,
    },
    /// Never open a message's personal-data section on this node again (journalled): for data
    /// no longer needed, or whose legal basis ended.
    PurgePersonal {
        /// The message's id (or a unique prefix).
        id: String,
    },
    /// A thread across administrations: the Warning, its feedback and seizure reports, their
    /// case follow-ups and forensic results, retractions — oldest first.
    Thread {
        /// Any message of it: a full id, or a prefix of an inbox message's id.
        id: String,
    },
    /// One message: its signed header and, when this node can open it, its content.
    Show {
        /// Its id (or a unique prefix of at least 8 hex digits).
        id: String,
        /// Write the exact envelope bytes to this file instead.
        #[arg(long)]
        raw: Option<PathBuf>,
    },
    /// Mark a message read, and tell its author with a signed receipt.
    Ack {
        /// Its id (or a unique prefix of at least 8 hex digits).
        id: String,
        /// A note for the author.
        #[arg(long)]
        note: Option<String>,
    },
    /// Mark a message actioned (something was done about it), and tell its author.
    Action {
        /// Its id (or a unique prefix of at least 8 hex digits).
        id: String,
        /// What was done, for the author.
        #[arg(long)]
        note: String,
    },
    /// The seizure reports of the inbox for a spreadsheet: one row per seized line, in the
    /// columns of a CITES annual illegal trade report.
    Export {
        /// As CSV: the default; with --json, a JSON array of the same rows instead.
        #[arg(long, conflicts_with = "format")]
        csv: bool,
        /// rows (CSV, or JSON with --json), misp (a JSON array of MISP events, with Godwit's
        /// object templates of docs/misp/) or etis (the ETIS ivory seizure form, CSV).
        #[arg(long, value_enum, default_value = "rows")]
        format: ExportFormat,
        /// Only reports created since a date (2026-11-30) or for a time (36h, 7d).
        #[arg(long, value_parser = crate::inbox::parse_since)]
        since: Option<u64>,
        /// The seizure reports this node sent instead of those it received: the Party's own
        /// seizures, for its CITES annual illegal trade report (its corrections applied, what
        /// it retracted left out).
        #[arg(long)]
        own: bool,
        /// Write to this file instead of standard output (refused if it exists).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// `godwit keys …`.
#[derive(Debug, Subcommand)]
pub enum ChannelsCommand {
    /// Every channel this node knows (the default).
    List,
    /// One channel with its members and their rights.
    Show {
        /// Its name or id.
        channel: String,
    },
    /// A new channel owned by this node: it signs the channel's states and seals each epoch key
    /// to the members.
    Create {
        /// Its name, e.g. "RILO Asia-Pacific alerts".
        name: String,
        /// What it is for.
        #[arg(long, default_value = "")]
        purpose: String,
        /// A deputy owner who may change the channel while this node is offline (a node name).
        #[arg(long)]
        deputy: Option<String>,
        /// An operation channel's end (YYYY-MM-DD, UTC midnight): it refuses messages created
        /// after it.
        #[arg(long)]
        ends: Option<String>,
        /// Days members keep the channel's keys after it ends.
        #[arg(long, default_value_t = 365)]
        retain_days: u32,
    },
    /// Admit a node (or change its rights): a new epoch, whose key is sealed to it.
    Admit {
        /// The channel.
        channel: String,
        /// The node: NodeId, country code or administration.
        node: String,
        /// It reads but does not publish.
        #[arg(long, conflicts_with = "publish_only")]
        read_only: bool,
        /// It publishes (e.g. seizure reports to the hub) but does not read.
        #[arg(long)]
        publish_only: bool,
    },
    /// Remove a node at once: it cannot read anything sent from now on.
    Remove {
        /// The channel.
        channel: String,
        /// The node.
        node: String,
    },
    /// End an operation channel now.
    Close {
        /// The channel.
        channel: String,
    },
    /// A new epoch key for the same members.
    Rekey {
        /// The channel.
        channel: String,
    },
    /// Ask a channel's owner to admit this node (its administrator decides).
    Join {
        /// The channel.
        channel: String,
        /// Why, or who asks.
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Leave a channel: its owner's node removes this node at once.
    Leave {
        /// The channel.
        channel: String,
    },
    /// Requests to join the channels this node owns, not yet answered.
    Requests,
    /// Refuse a request to join (the requester's node is told, with the reason).
    Refuse {
        /// The request's id (from `godwit channels requests`).
        request: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
}

/// `godwit keys …`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Retire the encryption key for a new one now (e.g. after a suspected compromise) and
    /// publish a card announcing it; the old key is kept to open what was sealed to it.
    Rotate,
}

/// What `godwit inbox export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// One row per seized line (CSV, or JSON with --json).
    Rows,
    /// MISP events.
    Misp,
    /// ETIS elephant-ivory seizure form rows (CSV).
    Etis,
}

/// `godwit journal …`.
#[derive(Debug, Subcommand)]
pub enum JournalCommand {
    /// The last entries of the audit journal.
    Tail {
        /// How many.
        #[arg(short, default_value_t = 20)]
        n: u32,
        /// Then keep printing every new entry, until interrupted.
        #[arg(long)]
        follow: bool,
    },
    /// Recompute the journal's hash chain.
    Verify,
}

/// A connection to a node's admin socket.
#[derive(Debug)]
pub struct Client {
    stream: UnixStream,
}

impl Client {
    /// Connects and checks the API version.
    ///
    /// # Errors
    /// A [`Failure`] saying what to do.
    pub fn connect(socket: &Path) -> anyhow::Result<Client> {
        let stream = UnixStream::connect(socket).map_err(|e| {
            if e.kind() == std::io::ErrorKind::PermissionDenied {
                return fail(
                    EXIT_PERMISSION,
                    format!(
                        "permission denied on godwitd's socket {}: only its owner and the members of its group (godwit unless configured otherwise) may use it: ask an administrator to add you to that group",
                        socket.display()
                    ),
                );
            }
            fail(
                EXIT_UNREACHABLE,
                format!(
                    "cannot reach godwitd at {}: {e}: is it running, and are you in group godwit? (set --socket or GODWIT_SOCKET for another node)",
                    socket.display()
                ),
            )
        })?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        stream.set_write_timeout(Some(Duration::from_secs(30)))?;
        let mut c = Client { stream };
        api::write(&mut c.stream, &Hello { version: API_VERSION }).map_err(|e| c.lost(e))?;
        match api::read::<Welcome>(&mut c.stream, MAX_RESPONSE).map_err(|e| c.lost(e))? {
            Welcome::Ok { .. } => Ok(c),
            Welcome::VersionMismatch { node_speaks } => Err(fail(
                EXIT_VERSION,
                format!(
                    "version mismatch: this godwit speaks admin API {API_VERSION}, the node speaks {node_speaks}: use the godwit of the same release as godwitd"
                ),
            )),
        }
    }

    /// Streams the newest `replay` stored entries (inbox messages, or journal entries), then
    /// what the node reports from then on, to `each`, until the node goes away.
    ///
    /// # Errors
    /// A [`Failure`].
    pub fn follow(
        &mut self,
        journal: bool,
        replay: u32,
        mut each: impl FnMut(Response) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        self.stream.set_read_timeout(None)?;
        api::write(&mut self.stream, &Request::Follow { journal, replay }).map_err(|e| self.lost(e))?;
        loop {
            match api::read::<Response>(&mut self.stream, MAX_RESPONSE) {
                Ok(Response::Refused(r)) => {
                    return Err(fail(EXIT_REFUSED, format!("the node refused: {}", r.message)));
                }
                Ok(r) => each(r)?,
                Err(api::FrameError::Closed) => {
                    return Err(fail(
                        EXIT_UNREACHABLE,
                        "the node closed the connection (it stopped?)".into(),
                    ));
                }
                Err(e) => return Err(self.lost(e)),
            }
        }
    }

    fn lost(&self, e: api::FrameError) -> anyhow::Error {
        fail(EXIT_UNREACHABLE, format!("the connection to godwitd failed: {e}"))
    }

    /// Sends a request and returns its answer; a refusal becomes a [`Failure`].
    ///
    /// # Errors
    /// A [`Failure`].
    pub fn ask(&mut self, req: &Request) -> anyhow::Result<Response> {
        api::write(&mut self.stream, req).map_err(|e| self.lost(e))?;
        match api::read::<Response>(&mut self.stream, MAX_RESPONSE).map_err(|e| self.lost(e))? {
            Response::Refused(r) => {
                Err(fail(EXIT_REFUSED, format!("the node refused: {} ({})", r.message, r.code)))
            }
            other => Ok(other),
        }
    }
}

/// What a node command asks for.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // one per command run: boxing buys nothing
pub enum NodeCommand {
    /// `godwit status`.
    Status,
    /// `godwit peers …`.
    Peers(PeersCommand),
    /// `godwit journal …`.
    Journal(JournalCommand),
    /// `godwit directory …`.
    Directory(DirectoryCommand),
    /// `godwit send …`.
    Send(SendCommand),
    /// `godwit inbox …`.
    Inbox(InboxCommand),
    /// `godwit keys …`.
    Keys(KeysCommand),
    /// `godwit channels …`.
    Channels(ChannelsCommand),
    /// `godwit receipts MSG`.
    Receipts(String),
}

/// Runs a node command over `socket`, printing a table, or JSON with `json`.
///
/// # Errors
/// A [`Failure`].
pub fn run(socket: &Path, json: bool, cmd: NodeCommand, out: &mut impl std::io::Write) -> anyhow::Result<()> {
    if let NodeCommand::Inbox(InboxCommand::Export { csv, format, since, own, out: file }) = &cmd {
        return crate::export::export(socket, (*format, json && !csv), (*since, *own), file.as_deref(), out);
    }
    let req = match &cmd {
        NodeCommand::Status => Request::Status,
        NodeCommand::Peers(PeersCommand::List) => Request::Peers,
        NodeCommand::Peers(PeersCommand::Add { node_id, address }) => {
            let node: NodeId = node_id.trim().parse().map_err(|e| {
                fail(EXIT_REFUSED, format!("{:?} is not a valid NodeId: {e}", node_id.trim()))
            })?;
            address.parse::<std::net::SocketAddr>().map_err(|e| {
                fail(
                    EXIT_REFUSED,
                    format!("{address:?} is not an address (ip:port, e.g. 192.0.2.10:4433): {e}"),
                )
            })?;
            Request::AddPeer { node, address: address.clone() }
        }
        NodeCommand::Peers(PeersCommand::Remove { node }) => Request::RemovePeer { node: node.clone() },
        NodeCommand::Peers(PeersCommand::Block { node }) => Request::Block { node: node.clone() },
        NodeCommand::Peers(PeersCommand::Unblock { node }) => Request::Unblock { node: node.clone() },
        NodeCommand::Journal(JournalCommand::Tail { n, .. }) => Request::Journal { last: *n },
        NodeCommand::Journal(JournalCommand::Verify) => Request::VerifyJournal,
        NodeCommand::Directory(DirectoryCommand::List) => Request::Directory { name: None },
        NodeCommand::Directory(DirectoryCommand::Show { node }) => {
            Request::Directory { name: Some(node.clone()) }
        }
        NodeCommand::Send(SendCommand::Forward { id, audience, comment, consent, priority }) => {
            Request::Forward {
                id: id.clone(),
                channel: audience.channel.clone(),
                to: audience.to.clone(),
                comment: comment.clone(),
                consent: consent.clone(),
                priority: priority.clone(),
            }
        }
        NodeCommand::Send(SendCommand::Retract { id, reason }) => {
            Request::Withdraw { id: id.clone(), reason: reason.clone(), corrected: None }
        }
        NodeCommand::Send(SendCommand::Correct { id, reason, file }) => Request::Withdraw {
            id: id.clone(),
            reason: reason.clone(),
            corrected: Some(read_body(file, None)?.encode()),
        },
        NodeCommand::Send(send @ SendCommand::Direct { to, marking, message }) => Request::SendDirect {
            to: to.clone(),
            priority: message.priority.clone(),
            marking: tlp(marking),
            ttl_hours: message.ttl_hours,
            body: kind_body(send)?,
            personal: personal_of(message)?,
        },
        NodeCommand::Send(send @ SendCommand::Channel { channel, marking, message }) => {
            Request::SendChannel {
                channel: channel.clone(),
                priority: message.priority.clone(),
                marking: tlp(marking),
                ttl_hours: message.ttl_hours,
                body: kind_body(send)?,
                personal: personal_of(message)?,
            }
        }
        NodeCommand::Send(
            send @ (SendCommand::Alert { audience, marking, message }
            | SendCommand::Seizure { audience, marking, message }
            | SendCommand::Bulletin { audience, marking, message, .. }
            | SendCommand::Feedback { audience, marking, message, .. }),
        ) => {
            let body = kind_body(send)?;
            match &audience.channel {
                Some(channel) => Request::SendChannel {
                    channel: channel.clone(),
                    priority: message.priority.clone(),
                    marking: tlp(marking.as_deref().unwrap_or("amber")),
                    ttl_hours: message.ttl_hours,
                    body,
                    personal: personal_of(message)?,
                },
                None => Request::SendDirect {
                    to: audience.to.clone(),
                    priority: message.priority.clone(),
                    marking: tlp(marking.as_deref().unwrap_or("red")),
                    ttl_hours: message.ttl_hours,
                    body,
                    personal: personal_of(message)?,
                },
            }
        }
        NodeCommand::Inbox(InboxCommand::List { .. }) => Request::Inbox,
        NodeCommand::Inbox(InboxCommand::Show { id, .. }) => Request::Show { id: id.clone() },
        NodeCommand::Inbox(InboxCommand::PurgePersonal { id }) => Request::PurgePersonal { id: id.clone() },
        NodeCommand::Inbox(InboxCommand::Ack { id, note }) => {
            Request::Mark { id: id.clone(), actioned: false, note: note.clone() }
        }
        NodeCommand::Inbox(InboxCommand::Action { id, note }) => {
            Request::Mark { id: id.clone(), actioned: true, note: Some(note.clone()) }
        }
        NodeCommand::Inbox(InboxCommand::Export { .. }) => unreachable!("answered above"),
        NodeCommand::Keys(KeysCommand::Rotate) => Request::RotateKey,
        NodeCommand::Channels(ChannelsCommand::List | ChannelsCommand::Show { .. }) => Request::Channels,
        NodeCommand::Channels(ChannelsCommand::Join { channel, note }) => {
            Request::RequestChannel { channel: channel.clone(), leave: false, note: note.clone() }
        }
        NodeCommand::Channels(ChannelsCommand::Leave { channel }) => {
            Request::RequestChannel { channel: channel.clone(), leave: true, note: String::new() }
        }
        NodeCommand::Channels(ChannelsCommand::Requests) => Request::ChannelRequests,
        NodeCommand::Channels(ChannelsCommand::Refuse { request, reason }) => Request::Mark {
            id: request.clone(),
            actioned: true,
            note: Some(format!("refused: {}", reason.trim())),
        },
        NodeCommand::Channels(c) => Request::ChangeChannel(channel_change(c)?),
        NodeCommand::Receipts(id) => Request::Receipts { id: id.clone() },
        NodeCommand::Inbox(InboxCommand::Thread { id }) => Request::Thread { id: id.clone() },
    };
    let follow = match &cmd {
        NodeCommand::Inbox(InboxCommand::List { follow: true, .. }) => Some((false, INBOX_REPLAY)),
        NodeCommand::Journal(JournalCommand::Tail { follow: true, n }) => Some((true, *n)),
        _ => None,
    };
    let filter = match &cmd {
        NodeCommand::Inbox(InboxCommand::List { filter, .. }) => Some(filter.clone()),
        _ => None,
    };
    let only = |resp: Response| match (resp, &filter) {
        (Response::Inbox(items), Some(f)) => {
            Response::Inbox(items.into_iter().filter(|i| f.matches(i)).collect())
        }
        (other, _) => other,
    };
    let mut client = Client::connect(socket)?;
    if let Some((journal, replay)) = follow {
        // One request: what is stored, then what arrives, with nothing lost between them.
        let mut header = true;
        return client.follow(journal, replay, |resp| {
            print_with(only(resp), json, header, out)?;
            header = false;
            out.flush()?;
            Ok(())
        });
    }
    // Long work shows its progress on a terminal only (indicatif draws nothing otherwise).
    let spinner = matches!(req, Request::VerifyJournal).then(|| {
        let p = indicatif::ProgressBar::new_spinner().with_message("recomputing the journal's hash chain");
        p.enable_steady_tick(Duration::from_millis(120));
        p
    });
    let resp = client.ask(&req);
    if let Some(p) = spinner {
        p.finish_and_clear();
    }
    let resp = resp?;
    if let (NodeCommand::Inbox(InboxCommand::Show { raw: Some(path), .. }), Response::Message(m)) =
        (&cmd, &resp)
    {
        if path.exists() {
            return Err(fail(EXIT_REFUSED, format!("{} exists: refusing to overwrite it", path.display())));
        }
        std::fs::write(path, &m.envelope)
            .map_err(|e| fail(EXIT_REFUSED, format!("cannot write {}: {e}", path.display())))?;
        writeln!(out, "{} bytes written to {}", m.envelope.len(), path.display())?;
        return Ok(());
    }
    if let (NodeCommand::Channels(c), Response::Channels(list)) = (&cmd, &resp) {
        let only = match c {
            ChannelsCommand::Show { channel } => Some(channel.clone()),
            _ => None,
        };
        return print_channels(list, &only, json, out);
    }
    print(only(resp), json, out)
}

/// How many of the newest inbox messages `inbox --follow` shows before what arrives (as many as
/// the plain listing).
const INBOX_REPLAY: u32 = 1_000;

fn item_json(i: &api::InboxItem) -> serde_json::Value {
    json!({
        "id": i.id.to_string(),
        "author": i.author.to_string(),
        "administration": i.administration,
        "mode": i.mode,
        "channel": i.channel,
        "marking": i.marking,
        "priority": i.priority,
        "created_ms": i.created_ms,
        "channel_name": i.channel_name,
        "kind": i.kind,
        "title": i.title,
        "refers_to": i.refers_to.map(|m| m.to_string()),
        "status": i.status,
    })
}

fn print(resp: Response, json: bool, out: &mut impl std::io::Write) -> anyhow::Result<()> {
    print_with(resp, json, true, out)
}

/// Prints an answer; `header`: a table's header line (once per table, not per followed batch).
fn print_with(resp: Response, json: bool, header: bool, out: &mut impl std::io::Write) -> anyhow::Result<()> {
    match resp {
        Response::Status(s) => {
            if json {
                let v = json!({
                    "node": s.node.to_string(),
                    "administration": s.administration,
                    "country": s.country,
                    "region": s.region,
                    "role": s.role,
                    "version": s.version,
                    "uptime_s": s.uptime_s,
                    "peers_connected": s.peers_connected,
                    "inbox": s.inbox,
                    "store_bytes": s.store_bytes,
                    "certificate_not_after": s.certificate_not_after,
                    "recovering": s.recovering,
                    "storage_full": s.storage_full,
                    "queued_bytes": s.queued_bytes,
                    "warnings": s.warnings,
                });
                writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
            } else {
                writeln!(out, "node            {}", s.node)?;
                writeln!(out, "administration  {}", s.administration)?;
                writeln!(out, "country         {}", s.country.as_deref().unwrap_or("-"))?;
                writeln!(out, "region          {}", s.region.as_deref().unwrap_or("-"))?;
                writeln!(out, "role            {}", s.role)?;
                writeln!(out, "godwitd         {}, up {} s", s.version, s.uptime_s)?;
                writeln!(out, "peers connected {}", s.peers_connected)?;
                writeln!(out, "inbox           {} messages", s.inbox)?;
                writeln!(
                    out,
                    "queued          {} bytes towards peers (per peer: godwit peers)",
                    s.queued_bytes
                )?;
                writeln!(
                    out,
                    "store           {} bytes{}",
                    s.store_bytes,
                    if s.storage_full { " (FULL)" } else { "" }
                )?;
                if s.warnings.is_empty() {
                    writeln!(out, "warnings        none")?;
                }
                for w in &s.warnings {
                    writeln!(out, "warning         {w}")?;
                }
            }
        }
        Response::Peers(peers) => {
            if json {
                let v: Vec<_> = peers
                    .iter()
                    .map(|p| {
                        json!({
                            "node": p.node.to_string(),
                            "administration": p.administration,
                            "role": p.role,
                            "configured": p.configured,
                            "connected": p.connected,
                            "last_seen_ms": p.last_seen_ms,
                            "queued_bytes": p.queued_bytes,
                            "last_error": p.last_error,
                        })
                    })
                    .collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
            } else {
                writeln!(
                    out,
                    "{:<14} {:<10} {:<7} {:<11} {:<17} {:>9} {:<32} last error",
                    "node", "role", "dialled", "state", "last seen (UTC)", "queued", "administration"
                )?;
                for p in &peers {
                    let state = if p.connected { "connected" } else { "down" };
                    let dialled = if p.configured { "yes" } else { "no" };
                    writeln!(
                        out,
                        "{:<14} {:<10} {:<7} {:<11} {:<17} {:>9} {:<32} {}",
                        p.node.short(),
                        p.role,
                        dialled,
                        state,
                        crate::inbox::utc_minute(p.last_seen_ms),
                        p.queued_bytes,
                        p.administration,
                        if p.last_error.is_empty() { "-" } else { &p.last_error }
                    )?;
                }
            }
        }
        Response::Audit(a) => writeln!(out, "{}", serde_json::to_string_pretty(&*a)?)?,
        Response::Journal(entries) => {
            if json {
                let v: Vec<_> = entries.iter().map(|e| json!({ "seq": e.seq, "event": e.event })).collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
            } else {
                for e in &entries {
                    writeln!(out, "{:>8}  {}", e.seq, e.event)?;
                }
            }
        }
        Response::JournalVerified { entries, problems } => {
            if json {
                writeln!(
                    out,
                    "{}",
                    serde_json::to_string_pretty(&json!({ "entries": entries, "problems": problems }))?
                )?;
            } else if problems.is_empty() {
                writeln!(out, "journal sound: {entries} entries, hash chain verified")?;
            } else {
                for p in &problems {
                    writeln!(out, "problem: {p}")?;
                }
            }
            if !problems.is_empty() {
                return Err(fail(
                    EXIT_REFUSED,
                    format!("the journal's hash chain is broken ({} problems)", problems.len()),
                ));
            }
        }
        Response::Directory(entries) => {
            if json {
                let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
                let v: Vec<_> = entries
                    .iter()
                    .map(|e| {
                        json!({
                            "node": e.node.to_string(),
                            "administration": e.administration,
                            "country": e.country,
                            "region": e.region,
                            "role": e.role,
                            "encryption_key": hex(&e.encryption_key),
                            "addresses": e.addresses,
                            "card_not_after_ms": e.card_not_after_ms,
                        })
                    })
                    .collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
            } else {
                writeln!(out, "{:<14} {:<3} {:<7} {:<10} administration", "node", "cc", "region", "role")?;
                for e in &entries {
                    writeln!(
                        out,
                        "{:<14} {:<3} {:<7} {:<10} {}",
                        e.node.short(),
                        e.country.as_deref().unwrap_or("-"),
                        e.region.as_deref().unwrap_or("-"),
                        e.role,
                        e.administration
                    )?;
                }
            }
        }
        Response::Sent { id, to } => {
            if json {
                let to: Vec<String> = to.iter().map(ToString::to_string).collect();
                writeln!(out, "{}", json!({ "id": id.to_string(), "to": to }))?;
            } else {
                writeln!(out, "{id}")?;
            }
        }
        Response::Inbox(items) => {
            if json {
                let v: Vec<_> = items.iter().map(item_json).collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
            } else {
                if header {
                    writeln!(
                        out,
                        "{:<14} {:<8} {:<9} {:<16} {:<14} {:<24} title",
                        "id", "status", "priority", "marking", "kind", "from"
                    )?;
                }
                for i in &items {
                    let from =
                        if i.administration.is_empty() { i.author.short() } else { i.administration.clone() };
                    writeln!(
                        out,
                        "{:<14} {:<8} {:<9} {:<16} {:<14} {:<24} {}",
                        i.id.short(),
                        i.status,
                        i.priority,
                        i.marking,
                        i.kind,
                        from,
                        i.title
                    )?;
                }
            }
        }
        Response::Message(m) => {
            let body = if m.body.is_empty() || m.item.mode == "control" {
                None
            } else {
                Some(Body::decode(&m.body).map_err(|e| {
                    fail(EXIT_REFUSED, format!("the node sent a body that does not decode: {e}"))
                })?)
            };
            let content = match &body {
                Some(b) => serde_json::to_value(b)?,
                None => serde_json::Value::Null,
            };
            if json {
                let personal = if m.personal_status == "opened" {
                    let p: godwit_protocol::content::PersonalData =
                        godwit_protocol::codec::from_slice("personal data", &m.personal).map_err(|e| {
                            fail(EXIT_REFUSED, format!("personal data that does not decode: {e}"))
                        })?;
                    serde_json::to_value(p)?
                } else {
                    serde_json::Value::Null
                };
                let v = json!({
                    "message": item_json(&m.item),
                    "body": content,
                    "unopened": m.unopened,
                    "personal": personal,
                    "personal_status": m.personal_status,
                });
                writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
            } else {
                writeln!(out, "id            {}", m.item.id)?;
                writeln!(out, "from          {} {}", m.item.author, m.item.administration)?;
                let to = match &m.item.channel_name {
                    Some(name) => format!("channel {name}"),
                    None => m.item.mode.clone(),
                };
                writeln!(
                    out,
                    "marking       {}   priority {}   {to}   {}",
                    m.item.marking, m.item.priority, m.item.status
                )?;
                match (&body, &m.unopened) {
                    (Some(b), _) => crate::inbox::render(b, out)?,
                    (None, Some(why)) => writeln!(out, "content   not shown: {why}")?,
                    (None, None) => writeln!(out, "content   (a control record)")?,
                }
                match m.personal_status.as_str() {
                    "" | "none" => {}
                    "opened" => {
                        let p: godwit_protocol::content::PersonalData =
                            godwit_protocol::codec::from_slice("personal data", &m.personal).map_err(
                                |e| {
                                    fail(
                                        EXIT_REFUSED,
                                        format!("the node sent personal data that does not decode: {e}"),
                                    )
                                },
                            )?;
                        writeln!(out, "personal data (sealed to named recipients; do not copy beyond them)")?;
                        let v = serde_json::to_string_pretty(&p)?;
                        for line in v.lines() {
                            writeln!(out, "  {line}")?;
                        }
                    }
                    other => writeln!(out, "personal data {other}")?,
                }
            }
        }
        // Asked for by `inbox export --own` only, which writes them itself.
        Response::OwnReports(v) => {
            writeln!(out, "{} reports of this node's own", v.len())?;
        }
        Response::Marked { id, receipt } => {
            if json {
                writeln!(
                    out,
                    "{}",
                    json!({ "id": id.to_string(), "receipt": receipt.map(|r| r.to_string()) })
                )?;
            } else {
                match receipt {
                    Some(r) => {
                        writeln!(out, "{} marked; receipt {} sent to its author", id.short(), r.short())?
                    }
                    None => writeln!(out, "{} marked", id.short())?,
                }
            }
        }
        Response::Channels(list) => print_channels(&list, &None, json, out)?,
        Response::ChannelRequests(list) => {
            if json {
                let v: Vec<_> = list
                    .iter()
                    .map(|r| {
                        json!({
                            "id": r.id.to_string(),
                            "channel": r.channel,
                            "channel_name": r.channel_name,
                            "node": r.node.to_string(),
                            "administration": r.administration,
                            "note": r.note,
                            "created_ms": r.created_ms,
                        })
                    })
                    .collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
            } else {
                writeln!(
                    out,
                    "{:<14} {:<16} {:<14} {:<24} {:<20} note",
                    "request", "sent", "node", "administration", "channel"
                )?;
                for r in &list {
                    writeln!(
                        out,
                        "{:<14} {:<16} {:<14} {:<24} {:<20} {}",
                        r.id.short(),
                        crate::inbox::utc_minute(r.created_ms),
                        r.node.short(),
                        r.administration,
                        r.channel_name,
                        r.note
                    )?;
                }
            }
        }
        Response::Receipts(r) => {
            let t = |ms: Option<u64>| ms.map_or_else(|| "-".to_string(), crate::inbox::utc_minute);
            if json {
                let rows: Vec<_> = r
                    .rows
                    .iter()
                    .map(|x| {
                        json!({
                            "node": x.node.to_string(),
                            "administration": x.administration,
                            "expected": x.expected,
                            "delivered_ms": x.delivered_ms,
                            "read_ms": x.read_ms,
                            "actioned_ms": x.actioned_ms,
                            "note": x.note,
                        })
                    })
                    .collect();
                writeln!(out, "{}", json!({ "id": r.id.to_string(), "rows": rows }))?;
            } else {
                writeln!(
                    out,
                    "{:<14} {:<16} {:<16} {:<16} {:<24} note",
                    "node", "delivered", "read", "actioned", "administration"
                )?;
                for x in &r.rows {
                    let missing = x.delivered_ms.is_none() && x.read_ms.is_none() && x.actioned_ms.is_none();
                    writeln!(
                        out,
                        "{:<14} {:<16} {:<16} {:<16} {:<24} {}",
                        x.node.short(),
                        if missing { "missing".to_string() } else { t(x.delivered_ms) },
                        t(x.read_ms),
                        t(x.actioned_ms),
                        x.administration,
                        match (&x.note, x.expected) {
                            (Some(n), _) => n.clone(),
                            (None, false) => "(not a recipient)".into(),
                            (None, true) => String::new(),
                        }
                    )?;
                }
            }
        }
        Response::ChannelChanged { channel, epoch } => {
            if json {
                writeln!(out, "{}", json!({ "channel": channel, "epoch": epoch }))?;
            } else {
                writeln!(out, "channel {channel} is at epoch {epoch}: its state and key are published")?;
            }
        }
        Response::Rotated { encryption_key } => {
            let hex: String = encryption_key.iter().map(|b| format!("{b:02x}")).collect();
            if json {
                writeln!(out, "{}", json!({ "encryption_key": hex }))?;
            } else {
                writeln!(out, "new encryption key {hex}: its card is published, the old key is kept")?;
            }
        }
        Response::Done => {
            if json {
                writeln!(out, "{}", json!({ "done": true }))?;
            } else {
                writeln!(out, "done")?;
            }
        }
        Response::Refused(r) => return Err(fail(EXIT_REFUSED, r.message)),
    }
    Ok(())
}

/// The change a `godwit channels` command asks for.
fn channel_change(c: &ChannelsCommand) -> anyhow::Result<godwit_admin_api::ChannelChange> {
    use godwit_admin_api::ChannelChange as C;
    Ok(match c {
        ChannelsCommand::List
        | ChannelsCommand::Show { .. }
        | ChannelsCommand::Join { .. }
        | ChannelsCommand::Leave { .. }
        | ChannelsCommand::Requests
        | ChannelsCommand::Refuse { .. } => {
            return Err(fail(EXIT_REFUSED, "not a change".into()));
        }
        ChannelsCommand::Create { name, purpose, deputy, ends, retain_days } => {
            let ends_ms = ends
                .as_deref()
                .map(|d| {
                    d.trim()
                        .parse::<godwit_protocol::content::Date>()
                        .map_err(|e| fail(EXIT_REFUSED, format!("--ends {d:?}: {e}")))
                        .and_then(|_| crate::inbox::parse_since(d).map_err(|e| fail(EXIT_REFUSED, e)))
                })
                .transpose()?;
            C::Create {
                name: name.clone(),
                purpose: purpose.clone(),
                deputy: deputy.clone(),
                ends_ms,
                retain_days: *retain_days,
            }
        }
        ChannelsCommand::Admit { channel, node, read_only, publish_only } => C::Admit {
            channel: channel.clone(),
            node: node.clone(),
            read: !publish_only,
            publish: !read_only,
        },
        ChannelsCommand::Remove { channel, node } => {
            C::Remove { channel: channel.clone(), node: node.clone() }
        }
        ChannelsCommand::Close { channel } => C::Close { channel: channel.clone() },
        ChannelsCommand::Rekey { channel } => C::Rekey { channel: channel.clone() },
    })
}

/// `godwit channels list|show`: a table, or JSON.
fn print_channels(
    list: &[godwit_admin_api::ChannelView],
    only: &Option<String>,
    json: bool,
    out: &mut impl std::io::Write,
) -> anyhow::Result<()> {
    let shown: Vec<&godwit_admin_api::ChannelView> = match only {
        None => list.iter().collect(),
        Some(want) => {
            let found = godwit_admin_api::select_channels(list, want, |c| c.id.clone(), |c| c.name.as_str());
            if found.is_empty() {
                return Err(fail(EXIT_REFUSED, format!("no channel called {want:?} is known to this node")));
            }
            found
        }
    };
    if json {
        let v: Vec<_> = shown
            .iter()
            .map(|c| {
                let members: Vec<_> = c
                    .members
                    .iter()
                    .map(|m| {
                        json!({
                            "node": m.node.to_string(),
                            "administration": m.administration,
                            "read": m.read,
                            "publish": m.publish,
                        })
                    })
                    .collect();
                json!({
                    "id": c.id,
                    "name": c.name,
                    "purpose": c.purpose,
                    "epoch": c.epoch,
                    "owner": c.owner.to_string(),
                    "deputy": c.deputy.map(|d| d.to_string()),
                    "ends_ms": c.ends_ms,
                    "members": members,
                    "has_key": c.has_key,
                    "configured": c.configured,
                })
            })
            .collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(());
    }
    if only.is_none() {
        writeln!(out, "{:<14} {:>5} {:>7} {:<3} {:<14} name", "channel", "epoch", "members", "key", "owner")?;
        for c in &shown {
            writeln!(
                out,
                "{:<14} {:>5} {:>7} {:<3} {:<14} {}{}",
                &c.id[..12],
                c.epoch,
                c.members.len(),
                if c.has_key { "yes" } else { "no" },
                if c.configured { "(configured)".to_string() } else { c.owner.short() },
                c.name,
                c.ends_ms.map(|t| format!(" (ends {})", crate::inbox::utc_minute(t))).unwrap_or_default()
            )?;
        }
        return Ok(());
    }
    for c in shown {
        writeln!(out, "channel  {}\nname     {}\nepoch    {}", c.id, c.name, c.epoch)?;
        if !c.purpose.is_empty() {
            writeln!(out, "purpose  {}", c.purpose)?;
        }
        writeln!(out, "owner    {}", c.owner)?;
        if let Some(d) = c.deputy {
            writeln!(out, "deputy   {d}")?;
        }
        if let Some(t) = c.ends_ms {
            writeln!(out, "ends     {} UTC", crate::inbox::utc_minute(t))?;
        }
        writeln!(
            out,
            "key      {}",
            if c.has_key { "held for this epoch" } else { "not held for this epoch" }
        )?;
        writeln!(out, "{:<14} {:<7} administration", "member", "rights")?;
        for m in &c.members {
            let rights = match (m.read, m.publish) {
                (true, true) => "read+pub",
                (true, false) => "read",
                _ => "publish",
            };
            writeln!(out, "{:<14} {:<7} {}", m.node.short(), rights, m.administration)?;
        }
    }
    Ok(())
}

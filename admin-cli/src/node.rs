//! Commands that talk to a running node over its admin socket.

use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use clap::Subcommand;
use godwit_admin_api::{self as api, API_VERSION, Hello, MAX_RESPONSE, Request, Response, Welcome};
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

fn fail(code: u8, message: String) -> anyhow::Error {
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

/// `godwit journal …`.
#[derive(Debug, Subcommand)]
pub enum JournalCommand {
    /// The last entries of the audit journal.
    Tail {
        /// How many.
        #[arg(short, default_value_t = 20)]
        n: u32,
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
pub enum NodeCommand {
    /// `godwit status`.
    Status,
    /// `godwit peers …`.
    Peers(PeersCommand),
    /// `godwit journal …`.
    Journal(JournalCommand),
    /// `godwit directory …`.
    Directory(DirectoryCommand),
}

/// Runs a node command over `socket`, printing a table, or JSON with `json`.
///
/// # Errors
/// A [`Failure`].
pub fn run(socket: &Path, json: bool, cmd: NodeCommand, out: &mut impl std::io::Write) -> anyhow::Result<()> {
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
        NodeCommand::Journal(JournalCommand::Tail { n }) => Request::Journal { last: *n },
        NodeCommand::Journal(JournalCommand::Verify) => Request::VerifyJournal,
        NodeCommand::Directory(DirectoryCommand::List) => Request::Directory { name: None },
        NodeCommand::Directory(DirectoryCommand::Show { node }) => {
            Request::Directory { name: Some(node.clone()) }
        }
    };
    let mut client = Client::connect(socket)?;
    let resp = client.ask(&req)?;
    print(resp, json, out)
}

fn print(resp: Response, json: bool, out: &mut impl std::io::Write) -> anyhow::Result<()> {
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
                        })
                    })
                    .collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
            } else {
                writeln!(
                    out,
                    "{:<14} {:<10} {:<7} {:<11} administration",
                    "node", "role", "dialled", "state"
                )?;
                for p in &peers {
                    let state = if p.connected { "connected" } else { "down" };
                    let dialled = if p.configured { "yes" } else { "no" };
                    writeln!(
                        out,
                        "{:<14} {:<10} {:<7} {:<11} {}",
                        p.node.short(),
                        p.role,
                        dialled,
                        state,
                        p.administration
                    )?;
                }
            }
        }
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

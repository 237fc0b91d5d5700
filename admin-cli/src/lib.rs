//! # godwit-admin
//!
//! The `godwit` command-line tool for node administrators and analysts. This stage offers the
//! offline commands that need no running node: checking NodeIds, listing the code lists
//! messages use, and inspecting an envelope file. Commands that talk to a node over its admin
//! socket follow with the operator CLI.

pub mod audit;
pub mod export;
pub mod inbox;
pub mod misp;
pub mod node;

use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use godwit_protocol::content::{Country, PurposeCode, SourceCode, TermCode, UnitCode};
use godwit_protocol::envelope::{Envelope, Feed};
use godwit_protocol::identity::{IdentityKey, NodeId, Role};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// godwit — administer a Godwit node and work with Godwit messages.
#[derive(Debug, Parser)]
#[command(name = "godwit", version, about, long_about = None)]
pub struct Cli {
    /// The node's admin socket (for the commands that talk to a running node).
    #[arg(long, global = true, env = "GODWIT_SOCKET", default_value = "/var/lib/godwit/admin.sock")]
    pub socket: PathBuf,
    /// Print JSON instead of tables (a stable shape, see docs/operations.md).
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// What the running node is and how it is doing (identity, peers, storage, warnings).
    Status,
    /// The node's peers.
    Peers {
        /// What to do (default: list).
        #[command(subcommand)]
        command: Option<node::PeersCommand>,
    },
    /// The node's audit log: a Merkle tree over the journal, checkpoints its peers cosign.
    Audit {
        /// What to do.
        #[command(subcommand)]
        command: audit::AuditCommand,
    },
    /// The node's audit journal.
    Journal {
        /// What to do.
        #[command(subcommand)]
        command: node::JournalCommand,
    },
    /// The directory: the nodes of the network this node knows, from their signed cards.
    Directory {
        /// What to do (default: list).
        #[command(subcommand)]
        command: Option<node::DirectoryCommand>,
    },
    /// Send a message through the node.
    Send {
        /// What to send.
        #[command(subcommand)]
        command: node::SendCommand,
    },
    /// The node's inbox.
    Inbox {
        /// What to do (default: list).
        #[command(subcommand)]
        command: Option<node::InboxCommand>,
        /// With the list: keep printing every message delivered from now on.
        #[arg(long)]
        follow: bool,
        /// With the list: which messages.
        #[command(flatten)]
        filter: inbox::Filter,
    },
    /// Channels: the network's subscriptions, owned by a node (normally a hub) that admits and
    /// removes members.
    Channels {
        /// What to do (default: list).
        #[command(subcommand)]
        command: Option<node::ChannelsCommand>,
    },
    /// Who has receipted a message this node sent: per recipient (a channel's readers, a direct
    /// message's recipients) when it was delivered, read and actioned, or that it is missing.
    Receipts {
        /// The message id (full), or a prefix of an inbox message's id.
        id: String,
    },
    /// This node's encryption key.
    Keys {
        /// What to do.
        #[command(subcommand)]
        command: node::KeysCommand,
    },
    /// Make a channel epoch key file (mode 0600) to give a statically configured channel's
    /// members out of band, for `[[channels]] key_file` (signed channels distribute their own).
    ChannelKey {
        /// Where to write it.
        #[arg(long)]
        out: PathBuf,
    },
    /// Print a shell completion script (e.g. `godwit completions bash > /etc/bash_completion.d/godwit`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff; e.g. `godwit man > /usr/share/man/man1/godwit.1`).
    Man,
    /// Check a NodeId as written in a configuration file or a message, and print its canonical form.
    NodeId {
        /// The NodeId text (55 characters of lower-case base32).
        text: String,
    },
    /// List a code list used in messages (CITES codes, countries, TLP labels, grading).
    Codes {
        /// Which list.
        list: CodeList,
    },
    /// Verify a signed envelope file and show its signed header (the content stays encrypted).
    Inspect {
        /// The envelope file, or - for standard input.
        file: PathBuf,
    },
    /// Create this node's identity key (mode 0600) in a data directory and print its NodeId.
    Init {
        /// The node's data directory (created 0700 if missing).
        #[arg(long, default_value = "/var/lib/godwit")]
        data_dir: PathBuf,
    },
    /// Run the network CA kept in a folder (offline: no node and no openssl needed).
    Ca {
        /// What to do.
        #[command(subcommand)]
        command: CaCommand,
    },
    /// Work with certificates.
    Cert {
        /// What to do.
        #[command(subcommand)]
        command: CertCommand,
    },
}

/// `godwit ca …`.
#[derive(Debug, Subcommand)]
pub enum CaCommand {
    /// Create the network CA in a new folder: its key (0600), certificate and state.
    Init {
        /// The CA folder.
        #[arg(long)]
        dir: PathBuf,
        /// The CA's name, e.g. "WCO RILO ESA Network CA".
        #[arg(long)]
        name: String,
        /// Validity in days.
        #[arg(long, default_value_t = 3_650)]
        days: u64,
    },
    /// Issue a node certificate for a NodeId (the node's key never leaves the node).
    Issue {
        /// The CA folder.
        #[arg(long)]
        dir: PathBuf,
        /// The node's NodeId (printed by `godwit init` on that node).
        #[arg(long)]
        node_id: String,
        /// The administration, e.g. "Kenya Revenue Authority".
        #[arg(long)]
        administration: String,
        /// Its ISO 3166-1 alpha-2 country code, e.g. KE.
        #[arg(long)]
        country: String,
        /// Its region, e.g. ESA.
        #[arg(long)]
        region: String,
        /// Its role.
        #[arg(long, value_enum)]
        role: RoleArg,
        /// Validity in days.
        #[arg(long, default_value_t = 730)]
        days: u64,
        /// Where to write the certificate (PEM).
        #[arg(long)]
        out: PathBuf,
    },
    /// Revoke a certificate by serial number (listed from the next CRL on).
    Revoke {
        /// The CA folder.
        #[arg(long)]
        dir: PathBuf,
        /// The certificate's serial number (printed by `issue` and `godwit cert show`).
        #[arg(long)]
        serial: u64,
    },
    /// Make the next revocation list (PEM) for nodes to install.
    Crl {
        /// The CA folder.
        #[arg(long)]
        dir: PathBuf,
        /// Validity in days (nodes refuse an expired list: make a new one before).
        #[arg(long, default_value_t = 30)]
        days: u64,
        /// Where to write it.
        #[arg(long)]
        out: PathBuf,
    },
}

/// `godwit cert …`.
#[derive(Debug, Subcommand)]
pub enum CertCommand {
    /// Show what a node certificate says.
    Show {
        /// The certificate (PEM).
        file: PathBuf,
    },
}

/// A node's role, as certificates state it.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RoleArg {
    /// A national contact point.
    Member,
    /// A regional hub (RILO).
    Hub,
    /// A network authority.
    Authority,
}

/// The code lists `godwit codes` can print.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CodeList {
    /// CITES term codes (what the specimen is).
    Term,
    /// CITES unit codes.
    Unit,
    /// CITES source codes.
    Source,
    /// CITES purpose codes.
    Purpose,
    /// ISO 3166-1 alpha-2 country codes accepted in messages.
    Countries,
    /// TLP 2.0 handling markings.
    Tlp,
    /// Admiralty grading (source reliability, information credibility).
    Grading,
}

/// Parses the command line and runs it.
///
/// # Errors
/// A message saying what was wrong with the input.
pub fn main() -> Result<()> {
    let cli = Cli::parse();
    let mut out = std::io::stdout().lock();
    let on_node = |c| node::run(&cli.socket, cli.json, c, &mut std::io::stdout().lock());
    match cli.command {
        Command::Status => on_node(node::NodeCommand::Status),
        Command::Peers { command } => {
            on_node(node::NodeCommand::Peers(command.unwrap_or(node::PeersCommand::List)))
        }
        Command::Journal { command } => on_node(node::NodeCommand::Journal(command)),
        Command::Audit { command } => audit::run(&cli.socket, cli.json, command, &mut out),
        Command::Directory { command } => {
            on_node(node::NodeCommand::Directory(command.unwrap_or(node::DirectoryCommand::List)))
        }
        Command::Send { command } => on_node(node::NodeCommand::Send(command)),
        Command::Keys { command } => on_node(node::NodeCommand::Keys(command)),
        Command::Receipts { id } => on_node(node::NodeCommand::Receipts(id)),
        Command::Channels { command } => {
            on_node(node::NodeCommand::Channels(command.unwrap_or(node::ChannelsCommand::List)))
        }
        Command::Inbox { command, follow, filter } => {
            on_node(node::NodeCommand::Inbox(command.unwrap_or(node::InboxCommand::List { follow, filter })))
        }
        command => run(command, &mut out),
    }
}

/// The exit code for an error (documented in docs/operations.md): 1 refused by the node or bad
/// input, 3 node unreachable, 4 version mismatch, 5 permission denied on the socket (clap
/// itself exits 2 on usage errors).
pub fn exit_code(e: &anyhow::Error) -> u8 {
    e.downcast_ref::<node::Failure>().map_or(1, |f| f.code)
}

/// Runs one command, writing to `out`.
///
/// # Errors
/// A message saying what was wrong with the input.
pub fn run(command: Command, out: &mut impl std::io::Write) -> Result<()> {
    match command {
        Command::NodeId { text } => {
            let id: NodeId =
                text.trim().parse().with_context(|| format!("{:?} is not a valid NodeId", text.trim()))?;
            writeln!(out, "{id}")?;
        }
        Command::Codes { list } => codes(list, out)?,
        Command::Inspect { file } => inspect(&file, out)?,
        Command::Init { data_dir } => {
            godwit_certs::files::create_private_dir(&data_dir)
                .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
            let path = data_dir.join("identity.key");
            let key = IdentityKey::generate(&mut rand_core::OsRng);
            godwit_certs::keyfile::write_identity(&path, &key)?;
            writeln!(out, "identity key written to {} (mode 0600)", path.display())?;
            let enc = data_dir.join("encryption.key");
            if !enc.exists() {
                let k = godwit_protocol::identity::EncryptionKey::generate(&mut rand_core::OsRng);
                godwit_certs::keyfile::write_encryption(&enc, &k)?;
                writeln!(out, "encryption key written to {} (mode 0600)", enc.display())?;
            }
            writeln!(out, "NodeId {}", key.node_id())?;
            writeln!(
                out,
                "Send this NodeId to the network CA for a certificate (godwit ca issue --node-id …)."
            )?;
        }
        Command::Ca { command } => ca(command, out)?,
        Command::ChannelKey { out: file } => {
            let mut key = zeroize::Zeroizing::new([0u8; 32]);
            rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut key[..]);
            godwit_certs::keyfile::write_channel_key(&file, &key)?;
            writeln!(out, "channel key written to {} (mode 0600)", file.display())?;
        }
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut <Cli as clap::CommandFactory>::command(), "godwit", out);
        }
        Command::Man => clap_mangen::Man::new(<Cli as clap::CommandFactory>::command()).render(out)?,
        Command::Status
        | Command::Peers { .. }
        | Command::Journal { .. }
        | Command::Audit { .. }
        | Command::Directory { .. }
        | Command::Send { .. }
        | Command::Keys { .. }
        | Command::Channels { .. }
        | Command::Receipts { .. }
        | Command::Inbox { .. } => {
            bail!("this command talks to a running node: use godwit_admin::main")
        }
        Command::Cert { command: CertCommand::Show { file } } => {
            let der = CertificateDer::from_pem_file(&file)
                .with_context(|| format!("cannot read the certificate {}", file.display()))?;
            let c = godwit_certs::parse_peer(&der)?;
            let serial = c.serial.iter().fold(0u128, |n, b| (n << 8) | u128::from(*b));
            writeln!(out, "NodeId          {}", c.node_id)?;
            writeln!(out, "administration  {}", c.administration)?;
            writeln!(out, "country         {}", c.country.as_deref().unwrap_or("-"))?;
            writeln!(out, "role            {}", format!("{:?}", c.role).to_lowercase())?;
            writeln!(out, "serial          {serial}")?;
            writeln!(out, "not after       {} (seconds since 1970)", c.not_after)?;
        }
    }
    Ok(())
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

const DAY_MS: u64 = 86_400_000;

fn ca(command: CaCommand, out: &mut impl std::io::Write) -> Result<()> {
    use godwit_certs::ca::CaDir;
    match command {
        CaCommand::Init { dir, name, days } => {
            let key = IdentityKey::generate(&mut rand_core::OsRng);
            let ca = CaDir::init(&dir, &name, now_ms(), days.saturating_mul(DAY_MS), &key)?;
            writeln!(out, "network CA {name:?} created in {}", dir.display())?;
            writeln!(
                out,
                "give every node {} as its [tls] ca; keep ca.key offline",
                dir.join("ca.pem").display()
            )?;
            drop(ca);
        }
        CaCommand::Issue { dir, node_id, administration, country, region, role, days, out: file } => {
            let node: NodeId = node_id
                .trim()
                .parse()
                .with_context(|| format!("{:?} is not a valid NodeId", node_id.trim()))?;
            let country: Country = country
                .parse()
                .with_context(|| format!("{country:?} is not an ISO 3166-1 alpha-2 country code"))?;
            let role = match role {
                RoleArg::Member => Role::Member,
                RoleArg::Hub => Role::Hub,
                RoleArg::Authority => Role::Authority,
            };
            let attrs = godwit_certs::NodeAttrs { administration, country, region, role };
            let mut ca = CaDir::open(&dir)?;
            if file.exists() {
                bail!("{} exists: refusing to overwrite a certificate", file.display());
            }
            let issued = ca.issue(&node, &attrs, now_ms(), days.saturating_mul(DAY_MS))?;
            godwit_certs::files::write_atomic(&file, issued.pem.as_bytes())
                .with_context(|| format!("cannot write {}", file.display()))?;
            writeln!(out, "certificate serial {} for {node} written to {}", issued.serial, file.display())?;
        }
        CaCommand::Revoke { dir, serial } => {
            let mut ca = CaDir::open(&dir)?;
            ca.revoke(serial)?;
            writeln!(out, "serial {serial} revoked; make and distribute a new list: godwit ca crl")?;
        }
        CaCommand::Crl { dir, days, out: file } => {
            let mut ca = CaDir::open(&dir)?;
            let (number, pem) = ca.crl(now_ms(), days.saturating_mul(DAY_MS))?;
            godwit_certs::files::write_atomic(&file, pem.as_bytes())
                .with_context(|| format!("cannot write {}", file.display()))?;
            writeln!(
                out,
                "revocation list number {number} ({} revoked) written to {}; install it on any node (peers pass it on)",
                ca.revoked().len(),
                file.display()
            )?;
        }
    }
    Ok(())
}

fn codes(list: CodeList, out: &mut impl std::io::Write) -> Result<()> {
    let rows: Vec<(String, String)> = match list {
        CodeList::Term => TermCode::all().map(|c| (c.to_string(), c.description().to_owned())).collect(),
        CodeList::Unit => UnitCode::all().map(|c| (c.to_string(), c.description().to_owned())).collect(),
        CodeList::Source => SourceCode::all().map(|c| (c.to_string(), c.description().to_owned())).collect(),
        CodeList::Purpose => {
            PurposeCode::all().map(|c| (c.to_string(), c.description().to_owned())).collect()
        }
        CodeList::Countries => (b'A'..=b'Z')
            .flat_map(|a| (b'A'..=b'Z').map(move |b| String::from_utf8_lossy(&[a, b]).into_owned()))
            .filter(|c| c.parse::<Country>().is_ok())
            .map(|c| {
                let name = c.parse::<Country>().map(|x| x.name()).unwrap_or_default().to_string();
                (c, name)
            })
            .collect(),
        CodeList::Tlp => vec![
            ("TLP:RED".into(), "named recipients only; sent only as a direct message".into()),
            ("TLP:AMBER+STRICT".into(), "the recipient's organisation only".into()),
            ("TLP:AMBER".into(), "the recipient's organisation and those it must inform to act".into()),
            ("TLP:GREEN".into(), "the channel's community, not public".into()),
            ("TLP:CLEAR".into(), "no restriction (TLP:WHITE is read as CLEAR)".into()),
        ],
        CodeList::Grading => {
            // The three schemes, each read in its own terms.
            let admiralty = ('A'..='F').flat_map(|r| (1..=6).map(move |c| format!("{r}{c}")));
            let europol =
                ['A', 'B', 'C', 'X'].into_iter().flat_map(|r| (1..=4).map(move |c| format!("4x4:{r}{c}")));
            let uk = (1..=3).flat_map(|r| {
                ('A'..='E').flat_map(move |c| ['P', 'C'].into_iter().map(move |h| format!("3x5x2:{r}{c}{h}")))
            });
            admiralty
                .chain(europol)
                .chain(uk)
                .filter_map(|t| t.parse::<godwit_protocol::content::Grading>().ok())
                .map(|g| (g.to_string(), g.explain()))
                .collect()
        }
    };
    for (code, desc) in rows {
        writeln!(out, "{code:<18}{desc}")?;
    }
    Ok(())
}

fn inspect(file: &PathBuf, out: &mut impl std::io::Write) -> Result<()> {
    let mut bytes = Vec::new();
    let limit = godwit_protocol::LIMITS.max_envelope_len as u64 + 1;
    if file.as_os_str() == "-" {
        std::io::stdin().take(limit).read_to_end(&mut bytes).context("cannot read standard input")?;
    } else {
        std::fs::File::open(file)
            .with_context(|| format!("cannot open {}", file.display()))?
            .take(limit)
            .read_to_end(&mut bytes)
            .with_context(|| format!("cannot read {}", file.display()))?;
    }
    if bytes.is_empty() {
        bail!("{} is empty: expected a signed Godwit envelope", file.display());
    }
    let env = Envelope::verify(&bytes)
        .with_context(|| format!("{} is not a valid Godwit envelope", file.display()))?;
    let h = env.header();
    writeln!(out, "message   {}", env.id())?;
    writeln!(out, "author    {}  (signature verified)", h.author)?;
    match &h.feed {
        Feed::Channel(c) => writeln!(out, "feed      channel {} epoch {}", c.id, c.epoch)?,
        Feed::Direct(to) => {
            writeln!(out, "feed      direct, {} recipient(s)", to.len())?;
            for r in to {
                writeln!(out, "          to {}", r.to)?;
            }
        }
        Feed::Control(c) => writeln!(out, "feed      control, {} records (clear text)", c.kind.name())?,
    }
    writeln!(out, "seq       {}", h.seq)?;
    writeln!(out, "prev      {}", h.prev.map(|p| p.to_string()).unwrap_or_else(|| "-".into()))?;
    writeln!(out, "created   {}", h.created)?;
    writeln!(out, "expires   {}", h.expires)?;
    writeln!(out, "priority  {:?}", h.priority)?;
    writeln!(out, "marking   {}", h.marking)?;
    writeln!(
        out,
        "personal  {}",
        h.personal.as_ref().map_or("none".to_string(), |p| format!("sealed to {} recipient(s)", p.len()))
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    #[test]
    fn the_example_message_bodies_are_valid() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/examples");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let text = || std::fs::read_to_string(&path).unwrap();
            let body: godwit_protocol::content::Body = match path.extension().and_then(|e| e.to_str()) {
                Some("json") => serde_json::from_str(&text()).unwrap(),
                Some("toml") => toml::from_str(&text()).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
                _ => continue,
            };
            body.validate().unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            seen += 1;
        }
        assert!(seen >= 3, "examples in {}", dir.display());
    }
}

//! # godwit-admin
//!
//! The `godwit` command-line tool for node administrators and analysts. This stage offers the
//! offline commands that need no running node: checking NodeIds, listing the code lists
//! messages use, and inspecting an envelope file. Commands that talk to a node over its admin
//! socket follow with the operator CLI.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use godwit_protocol::content::{Country, PurposeCode, SourceCode, TermCode, UnitCode};
use godwit_protocol::envelope::{Envelope, Feed};
use godwit_protocol::identity::NodeId;

/// godwit — administer a Godwit node and work with Godwit messages.
#[derive(Debug, Parser)]
#[command(name = "godwit", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
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
    run(cli.command, &mut out)
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
            .map(|c| (c, String::new()))
            .collect(),
        CodeList::Tlp => vec![
            ("TLP:RED".into(), "named recipients only; sent only as a direct message".into()),
            ("TLP:AMBER+STRICT".into(), "the recipient's organisation only".into()),
            ("TLP:AMBER".into(), "the recipient's organisation and those it must inform to act".into()),
            ("TLP:GREEN".into(), "the channel's community, not public".into()),
            ("TLP:CLEAR".into(), "no restriction (TLP:WHITE is read as CLEAR)".into()),
        ],
        CodeList::Grading => ('A'..='F')
            .flat_map(|r| (1..=6).map(move |c| (r, c)))
            .filter_map(|(r, c)| godwit_protocol::content::Grading::new(r, c).ok())
            .map(|g| (g.to_string(), g.explain()))
            .collect(),
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

//! The `godwitd` command line.

use anyhow::Result;
use clap::{Parser, Subcommand};

/// godwitd — the Godwit node: secure exchange of customs enforcement alerts, intelligence
/// bulletins and seizure reports.
#[derive(Debug, Parser)]
#[command(name = "godwitd", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// godwitd's subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a small demonstration of what Godwit does, for real, and print what happened.
    Demo,
}

/// Parses the command line and runs it.
///
/// # Errors
/// Whatever the subcommand reports.
pub fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Demo => crate::demo::main(),
    }
}

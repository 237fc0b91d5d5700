//! The `godwitd` command line.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use tracing::info;

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
    /// Run a small network of real nodes on loopback, for real, and print what happened.
    Demo {
        /// Leave the network running afterwards (until Ctrl-C), with the `godwit --socket …`
        /// line of each node printed.
        #[arg(long)]
        keep: bool,
    },
    /// Run the node.
    Run {
        /// The configuration file (TOML).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Log lines as text or as JSON objects (one per line, for a log collector). Logs never
        /// hold message bodies or keys.
        #[arg(long, value_enum, default_value = "text")]
        log_format: LogFormat,
    },
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable text.
    Text,
    /// One JSON object per line.
    Json,
}

/// Parses the command line and runs it.
///
/// # Errors
/// Whatever the subcommand reports.
pub fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Demo { keep } => crate::demo::main(keep),
        Command::Run { config, log_format } => run(&config, log_format),
    }
}

fn run(config: &std::path::Path, log_format: LogFormat) -> Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs =
        tracing_subscriber::fmt().with_writer(std::io::stderr).with_ansi(false).with_env_filter(filter);
    let _ = match log_format {
        LogFormat::Text => logs.try_init(),
        LogFormat::Json => logs.json().try_init(),
    };
    let spec = crate::config::Config::load(config)?.into_spec()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async {
        // Listen for the stop signals before starting: a SIGTERM while the node is starting
        // (a service manager stopping it early) must stop it cleanly, not kill it mid-write.
        let stop = stop_signal()?;
        let node = crate::net::Node::start(spec).await?;
        info!(node = %node.node_id(), addr = %node.local_addr(), "running; stop with SIGTERM or Ctrl-C");
        tokio::select! {
            r = stop => r?,
            reason = node.failed() => {
                anyhow::bail!("stopped: {reason}; restart godwitd once the disk is repaired (peers resend what was not acknowledged)");
            }
        }
        info!("stopping");
        node.shutdown().await;
        info!("stopped");
        Ok(())
    })
}

/// Installs the SIGTERM and Ctrl-C handlers now; the returned future ends at the first signal.
fn stop_signal() -> Result<impl std::future::Future<Output = Result<()>>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
        let mut int = signal(SignalKind::interrupt()).context("cannot listen for Ctrl-C")?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            Ok(())
        })
    }
    #[cfg(not(unix))]
    Ok(async { tokio::signal::ctrl_c().await.context("cannot listen for Ctrl-C") })
}

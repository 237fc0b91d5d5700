//! `godwitd demo`: what exists so far, run for real and reported plainly, in two acts — the
//! protocol layer on its own ([`protocol`]), then a real network of nodes on loopback
//! ([`network`]).

use anyhow::{Context, Result, bail};
use godwit_protocol::Timestamp;

pub mod network;
pub mod operator;
pub mod protocol;

/// Runs the demo with the current time, printing to stdout.
///
/// # Errors
/// As [`protocol::run`] and [`network::run`].
pub fn main(keep: bool) -> Result<()> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .context("system clock before 1970")?;
    let report = protocol::run(&mut std::io::stdout().lock(), Timestamp(now.as_millis() as u64))?;
    if report.opened_report.len() != 2 || report.refused_report.len() != 1 {
        bail!("demo outcome unexpected: {report:?}");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let net = rt.block_on(network::run(&mut std::io::stdout(), keep))?;
    if net.alert_latency_ms.len() != 5
        || !net.direct_after_outage
        || net.receipts != 4
        || !net.feedback_linked
        || !net.bulletin_crossed
        || !net.seizure_detail
        || !net.case_linked
        || !net.channel_rotated
        || !net.audit_witnessed
    {
        bail!("network demo outcome unexpected: {net:?}");
    }
    Ok(())
}

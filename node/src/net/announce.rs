//! Announcements of what reached the inbox, driven by the durable inbox: after each commit that
//! delivered something (and once at start, for whatever a crash left unannounced) the announcer
//! reads the inbox after its cursor, runs the configured alert command for each flash message,
//! reports each message, and moves its cursor. A message stored just before a crash is announced
//! after the restart: at least once, never not at all.
//!
//! The alert command gets the message id, the channel id (or `direct`) and the author's NodeId as
//! arguments — never the content — and has [`COMMAND_DEADLINE`] to finish.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use godwit_protocol::envelope::{Envelope, Feed, Priority};
use tokio::sync::{Notify, broadcast, oneshot};
use tracing::{info, warn};

use super::admin::{Answer, Query};
use super::{CoreMsg, NodeEvent};

/// Time the alert command has for one message before it is killed.
pub(super) const COMMAND_DEADLINE: Duration = Duration::from_secs(30);
/// Wait before reading the inbox again after a failed read.
const RETRY: Duration = Duration::from_secs(1);
/// Inbox entries read at a time.
const BATCH: usize = 256;

/// Runs until the node stops. It reads the inbox through the core (it holds no handle on the
/// store, so a stopped node's store is free at once).
pub(super) async fn run(
    core: std::sync::mpsc::Sender<CoreMsg>,
    command: Option<PathBuf>,
    wake: Arc<Notify>,
    events: broadcast::Sender<NodeEvent>,
) {
    let mut after = None;
    loop {
        // Registered before reading, so a commit between the read and the wait still wakes us.
        let woken = wake.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let (tx, rx) = oneshot::channel();
        if core.send(CoreMsg::Admin(Query::Unannounced { after, limit: BATCH }, tx)).is_err() {
            return;
        }
        let (mut cursor, batch) = match rx.await {
            Ok(Answer::Unannounced { cursor, entries }) => (cursor, entries),
            Ok(Answer::Failed(e)) => {
                // The cursor stays where it was (never back to the start): try again shortly.
                warn!("cannot read the inbox for announcements, trying again: {e}");
                tokio::time::sleep(RETRY).await;
                continue;
            }
            _ => return,
        };
        let full = batch.len() == BATCH;
        for (position, id, env) in batch {
            if let Ok(e) = Envelope::verify(&env) {
                let h = e.header();
                if let (Priority::Flash, Some(cmd)) = (h.priority, &command) {
                    let channel = match &h.feed {
                        Feed::Channel(c) => c.id.to_string(),
                        Feed::Direct(_) => "direct".into(),
                        Feed::Control(_) => "control".into(),
                    };
                    alert(cmd, &id.to_string(), &channel, &h.author.to_string()).await;
                }
            }
            let _ = events.send(NodeEvent::Announced(id));
            cursor = position;
            let (tx, _rx) = oneshot::channel();
            if core.send(CoreMsg::Admin(Query::Announced(cursor), tx)).is_err() {
                return;
            }
        }
        after = Some(cursor);
        if !full {
            woken.await;
        }
    }
}

/// Runs the alert command for each flash message flagged for escalation (arguments: its id,
/// `escalation`, and the NodeIds that have not read it, comma-separated), until the node stops.
pub(super) async fn escalations(mut events: broadcast::Receiver<NodeEvent>, command: PathBuf) {
    loop {
        match events.recv().await {
            Ok(NodeEvent::Escalation { id, unread }) => {
                let who: Vec<String> = unread.iter().map(ToString::to_string).collect();
                alert(&command, &id.to_string(), "escalation", &who.join(",")).await;
            }
            Ok(NodeEvent::AuditAlarm { node, kind }) => {
                alert(&command, &node.to_string(), "audit", kind.name()).await;
            }
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Runs the alert command for one flash message.
async fn alert(cmd: &PathBuf, id: &str, channel: &str, author: &str) {
    let child = tokio::process::Command::new(cmd)
        .args([id, channel, author])
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            warn!(command = %cmd.display(), "cannot run the alert command: {e}");
            return;
        }
    };
    match tokio::time::timeout(COMMAND_DEADLINE, child.wait()).await {
        Ok(Ok(status)) if status.success() => info!(id = &id[..12], "alert command run"),
        Ok(Ok(status)) => warn!(command = %cmd.display(), %status, "the alert command failed"),
        Ok(Err(e)) => warn!(command = %cmd.display(), "the alert command failed: {e}"),
        Err(_) => {
            let _ = child.kill().await;
            warn!(command = %cmd.display(), "the alert command took longer than {COMMAND_DEADLINE:?}: killed");
        }
    }
}

//! The admin socket (DESIGN §9): a Unix socket in the data directory, mode 0660, group
//! configurable, speaking [`godwit_admin_api`]. Every client has its own task, bounded in number;
//! a slow or silent client holds only that task (every read and write has a deadline), never the
//! core. Mutating requests are journalled with the caller's uid (`SO_PEERCRED`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use godwit_admin_api::{
    self as api, API_VERSION, DirectoryView, Hello, InboxItem, JournalView, MAX_REQUEST, MAX_RESPONSE,
    MessageView, PeerView, Request, Response, Status, Welcome,
};
use godwit_protocol::content::{Body, Tlp};
use godwit_protocol::envelope::{Envelope, Feed, Priority};
use godwit_protocol::identity::NodeId;
use godwit_protocol::ids::MessageId;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{broadcast, oneshot};
use tracing::{Instrument, debug, info, info_span, warn};

use godwit_protocol::content::{Content, Receipt, ReceiptStatus};
use godwit_protocol::relay::{Mark, Write};

mod view;

use view::{item, item_opened, open, readable};

use super::{CoreMsg, NodeEvent, PeerSpec, Shared};
use crate::certs::PeerCert;

/// Admin clients served at once; more wait for the socket's backlog.
const MAX_CLIENTS: usize = 64;
/// Time a client has for each message it sends once it started it, and the node for each answer.
const IO_DEADLINE: Duration = Duration::from_secs(10);
/// A client silent for this long is disconnected.
const IDLE: Duration = Duration::from_secs(300);

/// What a query asks of the core thread.
#[derive(Debug)]
pub(super) enum Query {
    /// Inbox size, store size, recovering, storage full.
    Status,
    /// The peers recorded in the store.
    Peers,
    /// The last journal entries.
    Journal(u32),
    /// The journal's hash chain, recomputed.
    VerifyJournal,
    /// A mutating request was carried out: journal it with the caller's uid, with the setting it
    /// changed (if any).
    Record { uid: u32, action: String, setting: Option<Box<Write>> },
    /// Journal a request that changed nothing (in the next commit, not forced to disk).
    Read { uid: u32, action: String },
    /// The inbox's ids and envelopes, oldest first (at most `limit`, the newest).
    Inbox { limit: usize },
    /// The inbox messages whose id starts with `prefix` (hex): with the envelope when there is
    /// exactly one, without (empty) otherwise — only one envelope is ever copied.
    Find { prefix: String },
    /// For the announcer: its cursor and up to `limit` inbox entries after `after` (`None`:
    /// after the stored cursor).
    Unannounced { after: Option<u64>, limit: usize },
    /// For the announcer: its cursor moved.
    Announced(u64),
    /// For a follower: the inbox position just before its `n` newest entries (its last
    /// position for 0).
    InboxBack(usize),
    /// For a follower: up to `limit` journal entries after `after` (`None`: the last seq, no
    /// entries).
    JournalAfter { after: Option<u64>, limit: usize },
    /// The operators' marks on these messages.
    Marks(Vec<MessageId>),
    /// This node's own reports: id, envelope, body.
    OwnReports,
    /// A new encryption key and a card announcing it (carried out by the core itself).
    RotateKey { uid: u32 },
    /// The channels known here (answered by the core itself).
    Channels,
    /// A held message's envelope (also one this node authored).
    Envelope(MessageId),
    /// An owner's change to a channel (`None`: a new one), carried out by the core itself.
    ChangeChannel { uid: u32, channel: Option<String>, change: super::channels::Change },
    /// `godwit audit`, answered by the core itself.
    Audit { uid: u32, req: godwit_admin_api::audit::AuditRequest },
}

/// The core's answer to a [`Query`].
#[derive(Debug)]
pub(super) enum Answer {
    Status {
        inbox: u64,
        store_bytes: u64,
        free_bytes: u64,
        recovering: bool,
        storage_full: bool,
        forks: usize,
        queues: Vec<(NodeId, u8)>,
    },
    Peers(Vec<(NodeId, crate::store::PeerRecord)>),
    Journal(Vec<JournalView>),
    Verified {
        entries: u64,
        problems: Vec<String>,
    },
    Inbox(Vec<(MessageId, Vec<u8>)>),
    Unannounced {
        cursor: u64,
        entries: Vec<(u64, MessageId, Vec<u8>)>,
    },
    Position(u64),
    Marks(Vec<Option<Mark>>),
    OwnReports(Vec<(MessageId, Vec<u8>, Vec<u8>)>),
    JournalAfter {
        last: u64,
        entries: Vec<JournalView>,
    },
    Channels(Vec<godwit_admin_api::ChannelView>),
    ChannelChanged {
        channel: String,
        epoch: u64,
    },
    Done,
    Failed(String),
    /// A `godwit audit` answer.
    Audit(Box<godwit_admin_api::audit::AuditAnswer>),
    /// `godwit audit verify`: what the admin task verifies off the core thread.
    AuditVerify(Box<super::audit::VerifyJob>),
}

/// What the admin tasks share.
pub(super) struct Ctx {
    pub(super) endpoint: quinn::Endpoint,
    pub(super) core: std::sync::mpsc::Sender<CoreMsg>,
    pub(super) events: broadcast::Sender<NodeEvent>,
    pub(super) shared: Arc<Shared>,
    pub(super) own: PeerCert,
    /// The local accounts (OS uids) and the officers or roles each is addressed as.
    pub(super) accounts: Vec<super::Account>,
    pub(super) started: Instant,
    /// Dial loops started through the socket, ended with the node.
    pub(super) dials: super::Dials,
}

/// Binds the socket at `path`: a stale file from an earlier run is replaced, a socket another
/// node is serving is not. Mode 0660, group `group` when given.
///
/// # Errors
/// Why the socket cannot be set up.
pub(super) fn bind(path: &Path, group: Option<&str>) -> Result<UnixListener, String> {
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(format!(
                "{} is in use: is another godwitd running on this data directory?",
                path.display()
            ));
        }
        std::fs::remove_file(path)
            .map_err(|e| format!("cannot remove the stale socket {}: {e}", path.display()))?;
    }
    let listener = UnixListener::bind(path).map_err(|e| format!("cannot bind {}: {e}", path.display()))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .map_err(|e| format!("cannot set the mode of {}: {e}", path.display()))?;
    if let Some(name) = group {
        match nix::unistd::Group::from_name(name) {
            Ok(Some(g)) => {
                std::os::unix::fs::chown(path, None, Some(g.gid.as_raw()))
                    .map_err(|e| format!("cannot give {} to group {name}: {e}", path.display()))?;
                // The group must be able to reach the socket: its members may pass through the
                // data directory (0710), not list it; its files stay the owner's alone.
                if let Some(dir) = path.parent() {
                    let mode = std::fs::metadata(dir).map(|m| m.permissions().mode() & 0o7777);
                    let opened = std::os::unix::fs::chown(dir, None, Some(g.gid.as_raw())).and_then(|()| {
                        let want = (mode.unwrap_or(0o700) & 0o700) | 0o010;
                        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(want))
                    });
                    if let Err(e) = opened {
                        warn!(dir = %dir.display(), "members of group {name:?} cannot reach the admin socket: cannot let them pass through the data directory: {e}");
                    }
                }
            }
            Ok(None) => warn!(
                socket = %path.display(),
                "admin group {name:?} does not exist: the socket keeps godwitd's own group (create the group, or set node.admin_group)"
            ),
            Err(e) => warn!(socket = %path.display(), "cannot look up admin group {name:?}: {e}"),
        }
    }
    Ok(listener)
}

/// Serves admin clients until the node stops.
pub(super) async fn serve(listener: UnixListener, ctx: Arc<Ctx>, path: PathBuf) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CLIENTS));
    info!(socket = %path.display(), "admin socket ready");
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else { return };
        let Ok((stream, _)) = listener.accept().await else { continue };
        let ctx = ctx.clone();
        let uid = stream.peer_cred().map(|c| c.uid()).ok();
        let span = info_span!("admin", uid = ?uid);
        tokio::spawn(
            async move {
                if let Err(e) = client(stream, uid, &ctx).await {
                    debug!("admin client ended: {e}");
                }
                drop(permit);
            }
            .instrument(span),
        );
    }
}

async fn client(mut stream: UnixStream, uid: Option<u32>, ctx: &Ctx) -> Result<(), api::FrameError> {
    let hello: Hello = within(IO_DEADLINE, read(&mut stream, MAX_REQUEST)).await?;
    if hello.version != API_VERSION {
        let w = Welcome::VersionMismatch { node_speaks: API_VERSION };
        return within(IO_DEADLINE, write(&mut stream, &w)).await;
    }
    within(IO_DEADLINE, write(&mut stream, &Welcome::Ok { node: ctx.shared.me })).await?;
    loop {
        let req: Request = match tokio::time::timeout(IDLE, read(&mut stream, MAX_REQUEST)).await {
            Ok(r) => r?,
            Err(_) => return Ok(()),
        };
        // Every request is journalled with the caller's uid: those that change something with
        // their change, the others here, as what was asked.
        if let Some(action) = read_action(&req) {
            let _ = ask(ctx, Query::Read { uid: uid.unwrap_or(u32::MAX), action }).await;
        }
        if let Request::Follow { journal, replay } = req {
            return follow(stream, uid, journal, replay, ctx).await;
        }
        let resp = answer(req, uid, ctx).await;
        within(IO_DEADLINE, write(&mut stream, &resp)).await?;
    }
}

/// Streams new inbox entries (or journal entries) to a follower until it goes away. Each batch
/// is written within the deadline: a follower that does not read is dropped.
async fn follow(
    mut stream: UnixStream,
    uid: Option<u32>,
    journal: bool,
    replay: u32,
    ctx: &Ctx,
) -> Result<(), api::FrameError> {
    let gone = || api::FrameError::Closed;
    let mut inbox_at = None;
    let mut journal_at = None;
    // Where the stream starts, read once on the core: whatever is stored after it is sent.
    if journal {
        if let Ok(Answer::JournalAfter { last, .. }) =
            ask(ctx, Query::JournalAfter { after: None, limit: 0 }).await
        {
            journal_at = Some(last.saturating_sub(u64::from(replay)));
        }
    } else if let Ok(Answer::Position(p)) = ask(ctx, Query::InboxBack(replay as usize)).await {
        inbox_at = Some(p);
    }
    if inbox_at.is_none() && journal_at.is_none() {
        return Err(gone());
    }
    // The first batch goes out even when empty: the follower then knows it is following.
    let mut first = true;
    loop {
        // Registered before reading, so a commit between the read and the wait still wakes us.
        let wake = if journal { ctx.shared.committed.clone() } else { ctx.shared.delivered.clone() };
        let woken = wake.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        if journal {
            let Ok(Answer::JournalAfter { last, entries }) =
                ask(ctx, Query::JournalAfter { after: journal_at, limit: 1_000 }).await
            else {
                return Err(gone());
            };
            journal_at = Some(last);
            if !entries.is_empty() || first {
                first = false;
                within(IO_DEADLINE, write(&mut stream, &Response::Journal(entries))).await?;
                continue;
            }
        } else {
            let Ok(Answer::Unannounced { entries, .. }) =
                ask(ctx, Query::Unannounced { after: inbox_at, limit: 256 }).await
            else {
                return Err(gone());
            };
            if !entries.is_empty() || first {
                first = false;
                if let Some((p, _, _)) = entries.last() {
                    inbox_at = Some(*p);
                }
                let Ok(marks) = marks(ctx, entries.iter().map(|(_, id, _)| *id).collect()).await else {
                    return Err(gone());
                };
                let items: Vec<InboxItem> = entries
                    .iter()
                    .zip(&marks)
                    .filter_map(|((_, id, env), mark)| item(ctx, uid, *id, env, mark.as_ref()))
                    .collect();
                within(IO_DEADLINE, write(&mut stream, &Response::Inbox(items))).await?;
                continue;
            }
        }
        // Wait for the next commit, but notice a follower that hung up.
        let mut probe = [0u8; 1];
        tokio::select! {
            () = &mut woken => {}
            r = stream.read(&mut probe) => {
                if matches!(r, Ok(0) | Err(_)) {
                    return Ok(());
                }
            }
        }
    }
}

async fn within<T>(
    d: Duration,
    f: impl std::future::Future<Output = Result<T, api::FrameError>>,
) -> Result<T, api::FrameError> {
    tokio::time::timeout(d, f).await.unwrap_or_else(|_| {
        Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "admin client too slow").into())
    })
}

async fn read<T: DeserializeOwned + Serialize>(
    r: &mut (impl AsyncRead + Unpin),
    max: usize,
) -> Result<T, api::FrameError> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(api::FrameError::Closed),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(api::FrameError::TooLarge { len, max });
    }
    let mut body = Vec::new();
    r.take(len as u64).read_to_end(&mut body).await?;
    if body.len() < len {
        return Err(api::FrameError::Closed);
    }
    api::decode(&body)
}

async fn write<T: Serialize>(w: &mut (impl AsyncWrite + Unpin), value: &T) -> Result<(), api::FrameError> {
    let bytes = api::encode(value);
    if bytes.len() > MAX_RESPONSE + 4 {
        let r = refused("too_large", "the answer is over the admin API's size limit: ask for less".into());
        w.write_all(&api::encode(&r)).await?;
        return Ok(());
    }
    w.write_all(&bytes).await?;
    Ok(())
}

fn refused(code: &str, message: String) -> Response {
    Response::Refused(api::Refusal { code: code.into(), message })
}

async fn ask(ctx: &Ctx, q: Query) -> Result<Answer, Response> {
    let (tx, rx) = oneshot::channel();
    let gone = || refused("unavailable", "the node is stopping".into());
    ctx.core.send(CoreMsg::Admin(q, tx)).map_err(|_| gone())?;
    match rx.await.map_err(|_| gone())? {
        Answer::Failed(e) => Err(refused("unavailable", e)),
        a => Ok(a),
    }
}

/// What a request that changes nothing asked, for the journal (no content: ids and names as
/// the operator gave them, cut short); `None` for requests that journal their change themselves.
fn read_action(req: &Request) -> Option<String> {
    let cut = |s: &str| s.chars().take(80).collect::<String>();
    Some(match req {
        Request::Status => "status".into(),
        Request::Peers => "peers".into(),
        Request::Journal { last } => format!("journal tail {last}"),
        Request::VerifyJournal => "journal verify".into(),
        Request::Audit(godwit_admin_api::audit::AuditRequest::NewGeneration) => return None,
        Request::Audit(a) => cut(&format!("audit {a:?}")),
        Request::Inbox => "inbox list".into(),
        Request::OwnReports { skip } => format!("inbox own from {skip}"),
        Request::Follow { journal: true, .. } => "journal follow".into(),
        Request::Follow { journal: false, .. } => "inbox follow".into(),
        Request::Show { id } => format!("inbox show {}", cut(id)),
        Request::Directory { name } => format!("directory {}", cut(name.as_deref().unwrap_or("list"))),
        Request::Channels => "channels list".into(),
        Request::ChannelRequests => "channels requests".into(),
        Request::Thread { id } => format!("inbox thread {}", cut(id)),
        Request::Receipts { id } => format!("receipts {}", cut(id)),
        _ => return None,
    })
}

async fn answer(req: Request, uid: Option<u32>, ctx: &Ctx) -> Response {
    match handle(req, uid, ctx).await {
        Ok(r) | Err(r) => r,
    }
}

async fn handle(req: Request, uid: Option<u32>, ctx: &Ctx) -> Result<Response, Response> {
    match req {
        Request::Status => {
            let Answer::Status { inbox, store_bytes, free_bytes, recovering, storage_full, forks, queues } =
                ask(ctx, Query::Status).await?
            else {
                return Err(refused("unavailable", "unexpected answer".into()));
            };
            let connected = ctx.shared.connected.lock().map(|c| c.len()).unwrap_or(0);
            let mut warnings: Vec<String> = ctx.shared.damage.lock().map(|d| d.clone()).unwrap_or_default();
            let now_s = super::now().as_millis() as i64 / 1000;
            let left_days = (ctx.own.not_after - now_s) / 86_400;
            if left_days < 30 {
                warnings.push(format!(
                    "this node's certificate expires in {left_days} days: ask the network CA for a renewed one"
                ));
            }
            let limits = &ctx.shared.limits;
            if storage_full {
                warnings.push("the store is full: new messages are refused until space is freed".into());
            } else if limits.max_store_bytes > 0 && store_bytes >= limits.max_store_bytes / 10 * 8 {
                warnings.push(format!(
                    "the store is {}% of its limit (max_store_bytes {}): new messages are refused when it is full",
                    store_bytes.saturating_mul(100) / limits.max_store_bytes,
                    limits.max_store_bytes
                ));
            } else if free_bytes < limits.min_free_disk_bytes.saturating_mul(2) {
                warnings.push(format!(
                    "the disk is filling: {} MiB free, new messages are refused below {} MiB",
                    free_bytes >> 20,
                    limits.min_free_disk_bytes >> 20
                ));
            }
            if forks > 0 {
                warnings.push(format!(
                    "{forks} feeds are frozen after their author signed two messages for one place (evidence kept in the store)"
                ));
            }
            for (peer, percent) in queues {
                warnings.push(format!(
                    "the queue towards {} is {percent}% full: it reads slowly or not at all",
                    peer.short()
                ));
            }
            if let Some(days) = ctx.shared.tls.lock().ok().and_then(|m| crl_days_left(&m)) {
                if days < 7 {
                    warnings.push(format!(
                        "the revocation list expires in {days} days: install the network CA's next one (an expired list refuses every connection)"
                    ));
                }
            }
            if let Ok(gaps) = ctx.shared.stale_gaps.lock() {
                warnings.extend(gaps.iter().cloned());
            }
            if let Ok(overdue) = ctx.shared.overdue.lock() {
                warnings.extend(overdue.iter().cloned());
            }
            if let Ok(audit) = ctx.shared.audit_warnings.lock() {
                warnings.extend(audit.iter().cloned());
            }
            if recovering {
                warnings.push(
                    "recovering: this node authors nothing until its hubs told it its feed heads".into(),
                );
            }
            Ok(Response::Status(Box::new(Status {
                node: ctx.shared.me,
                administration: ctx.own.administration.clone(),
                country: ctx.own.country.clone(),
                region: ctx.own.region.clone(),
                role: format!("{:?}", ctx.own.role).to_lowercase(),
                version: env!("CARGO_PKG_VERSION").into(),
                uptime_s: ctx.started.elapsed().as_secs(),
                peers_connected: connected as u32,
                inbox,
                store_bytes,
                certificate_not_after: ctx.own.not_after,
                recovering,
                storage_full,
                queued_bytes: ctx.shared.queued.lock().map(|q| q.values().sum()).unwrap_or(0),
                warnings,
            })))
        }
        Request::Peers => {
            let Answer::Peers(recorded) = ask(ctx, Query::Peers).await? else {
                return Err(refused("unavailable", "unexpected answer".into()));
            };
            let connected = ctx.shared.connected.lock().map(|c| c.clone()).unwrap_or_default();
            let configured = ctx.shared.configured.lock().map(|c| c.clone()).unwrap_or_default();
            let queued = ctx.shared.queued.lock().map(|q| q.clone()).unwrap_or_default();
            let errors = ctx.shared.last_error.lock().map(|e| e.clone()).unwrap_or_default();
            let queued_bytes = |n: &NodeId| queued.get(n).copied().unwrap_or(0);
            let last_error = |n: &NodeId| errors.get(n).cloned().unwrap_or_default();
            let mut peers: Vec<PeerView> = recorded
                .into_iter()
                .map(|(node, rec)| PeerView {
                    node,
                    administration: rec.admin,
                    role: rec.role,
                    configured: configured.contains(&node),
                    connected: connected.contains(&node),
                    last_seen_ms: rec.last_seen,
                    queued_bytes: queued_bytes(&node),
                    last_error: last_error(&node),
                })
                .collect();
            let never: Vec<NodeId> =
                configured.iter().filter(|n| !peers.iter().any(|p| p.node == **n)).copied().collect();
            for node in &never {
                peers.push(PeerView {
                    node: *node,
                    administration: String::new(),
                    role: String::new(),
                    configured: true,
                    connected: connected.contains(node),
                    last_seen_ms: 0,
                    queued_bytes: queued_bytes(node),
                    last_error: last_error(node),
                });
            }
            Ok(Response::Peers(peers))
        }
        Request::AddPeer { node, address } => {
            let address: std::net::SocketAddr = address.parse().map_err(|e| {
                refused("bad_request", format!("{address:?} is not an address (ip:port): {e}"))
            })?;
            if node == ctx.shared.me {
                return Err(refused("bad_request", "that is this node's own NodeId".into()));
            }
            let action = format!("peers add {node} {address}");
            journal(ctx, uid, action, Some(Write::Dial { node, address: Some(address.to_string()) })).await?;
            let p = PeerSpec { node_id: node, address };
            super::spawn_dial(&ctx.dials, &ctx.endpoint, &ctx.core, &ctx.events, &ctx.shared, p);
            Ok(Response::Done)
        }
        Request::RemovePeer { node } => {
            let node = named(ctx, &node)?;
            let dialled = ctx.shared.configured.lock().map(|mut c| c.remove(&node)).unwrap_or(false);
            if !dialled {
                return Err(refused("not_found", format!("{node} is not a peer this node dials")));
            }
            // Its dial loop ends by itself once the connection has (aborting it would cut the
            // connection without telling the core); its handle stays, so that a quick `peers
            // add` finds it running and the node's stop still ends it.
            let _ = ctx.core.send(CoreMsg::RemovePeer(node));
            let action = format!("peers remove {node}");
            journal(ctx, uid, action, Some(Write::Dial { node, address: None })).await?;
            let _ =
                ctx.core.send(CoreMsg::Drop { peer: node, reason: "removed by this node's operator".into() });
            Ok(Response::Done)
        }
        Request::Block { node } => {
            let node = named(ctx, &node)?;
            if node == ctx.shared.me {
                return Err(refused("bad_request", "that is this node itself".into()));
            }
            ctx.shared.admission.set_blocked(node, true);
            let action = format!("peers block {node}");
            journal(ctx, uid, action, Some(Write::Block { node, blocked: true })).await?;
            let _ =
                ctx.core.send(CoreMsg::Drop { peer: node, reason: "blocked by this node's operator".into() });
            Ok(Response::Done)
        }
        Request::Unblock { node } => {
            let node = named(ctx, &node)?;
            ctx.shared.admission.set_blocked(node, false);
            let action = format!("peers unblock {node}");
            journal(ctx, uid, action, Some(Write::Block { node, blocked: false })).await?;
            Ok(Response::Done)
        }
        Request::Journal { last } => match ask(ctx, Query::Journal(last.min(10_000))).await? {
            Answer::Journal(entries) => Ok(Response::Journal(entries)),
            _ => Err(refused("unavailable", "unexpected answer".into())),
        },
        Request::SendDirect { to, priority, marking, ttl_hours, body, personal } => {
            let bad = |m: String| refused("bad_request", m);
            let (priority, marking, ttl_ms, body) = publication(&priority, &marking, ttl_hours, &body)?;
            let recipients: Vec<(NodeId, godwit_protocol::identity::EncryptionPublicKey)> = {
                let d = ctx
                    .shared
                    .directory
                    .lock()
                    .map_err(|_| refused("unavailable", "state poisoned".into()))?;
                let mut r = Vec::new();
                for name in &to {
                    for e in d.find(name).map_err(|e| refused("not_found", e))? {
                        if e.card.id != ctx.shared.me && !r.iter().any(|(n, _)| *n == e.card.id) {
                            r.push((e.card.id, e.card.encryption_key));
                        }
                    }
                }
                r
            };
            if recipients.is_empty() {
                return Err(bad("no recipient other than this node itself".into()));
            }
            let nodes: Vec<NodeId> = recipients.iter().map(|(n, _)| *n).collect();
            let personal = personal_part(ctx, personal, Some(&recipients), marking)?;
            let req = super::PublishRequest {
                target: super::Target::Direct(recipients),
                priority,
                marking,
                ttl_ms,
                body,
                personal,
            };
            let id = publish(ctx, req).await?;
            let action = format!(
                "send direct {id} to {}",
                nodes.iter().map(|n| n.short()).collect::<Vec<_>>().join(",")
            );
            journal(ctx, uid, action, None).await?;
            Ok(Response::Sent { id, to: nodes })
        }
        Request::SendChannel { channel, priority, marking, ttl_hours, body, personal } => {
            let c = channel_named(ctx, &channel).await?;
            let me = ctx.shared.me;
            if !c.configured && !c.members.iter().any(|m| m.node == me && m.publish) {
                return Err(refused(
                    "refused",
                    format!("this node may not publish in channel {:?} (epoch {})", c.name, c.epoch),
                ));
            }
            let id: godwit_protocol::ids::ChannelId =
                c.id.parse().map_err(|e| refused("unavailable", format!("{e}")))?;
            let key = ctx
                .shared
                .epoch_keys
                .lock()
                .map_err(|_| refused("unavailable", "key state poisoned".into()))?
                .get(&id, c.epoch)
                .cloned()
                .ok_or_else(|| {
                    refused(
                        "unavailable",
                        format!(
                            "this node does not hold the key of epoch {} of channel {:?} yet: it comes from the channel's owner",
                            c.epoch, c.name
                        ),
                    )
                })?;
            let (priority, marking, ttl_ms, body) = publication(&priority, &marking, ttl_hours, &body)?;
            let personal = personal_part(ctx, personal, None, marking)?;
            if let Some((_, to)) = &personal {
                // Named readers of the channel only: a non-member would never receive it.
                let reads = |n: &NodeId| c.configured || c.members.iter().any(|m| m.node == *n && m.read);
                if let Some((n, _)) = to.iter().find(|(n, _)| !reads(n)) {
                    return Err(refused(
                        "bad_request",
                        format!(
                            "{} does not read channel {:?}: it cannot be sealed its personal data",
                            n.short(),
                            c.name
                        ),
                    ));
                }
            }
            let req = super::PublishRequest {
                target: super::Target::Channel { id, epoch: c.epoch, key },
                priority,
                marking,
                ttl_ms,
                body,
                personal,
            };
            let id = publish(ctx, req).await?;
            let action = format!("send channel {id} to {}", c.name);
            journal(ctx, uid, action, None).await?;
            Ok(Response::Sent { id, to: Vec::new() })
        }
        Request::Receipts { id } => receipts(ctx, &id).await.map(Response::Receipts),
        Request::PurgePersonal { id } => {
            let (mid, env) = find_one(ctx, &id).await?;
            let has = Envelope::verify(&env).is_ok_and(|e| e.header().personal.is_some());
            if !has {
                return Err(refused("bad_request", format!("{} has no personal-data section", mid.short())));
            }
            let before = marks(ctx, vec![mid]).await?.pop().flatten();
            if before.as_ref().is_some_and(|m| m.purged) {
                return Ok(Response::Done);
            }
            let mark = match before {
                Some(m) => Mark { purged: true, ..m },
                None => Mark {
                    status: ReceiptStatus::Delivered,
                    at: super::now(),
                    uid: uid.unwrap_or(u32::MAX),
                    note: None,
                    purged: true,
                },
            };
            journal(ctx, uid, format!("inbox purge-personal {mid}"), Some(Write::Mark { id: mid, mark }))
                .await?;
            Ok(Response::Done)
        }
        Request::Thread { id } => thread(ctx, uid, &id).await.map(Response::Inbox),
        Request::RequestChannel { channel, leave, note } => {
            let c = channel_named(ctx, &channel).await?;
            if c.configured {
                return Err(refused(
                    "refused",
                    format!("{:?} is a configured channel: it has no owner to ask", c.name),
                ));
            }
            let me = ctx.shared.me;
            let member = c.members.iter().any(|m| m.node == me);
            if member != leave {
                let why = if leave { "is not a member of" } else { "is a member of" };
                return Err(refused("refused", format!("this node {why} channel {:?} already", c.name)));
            }
            if leave && (c.owner == me || c.deputy == Some(me)) {
                return Err(refused("refused", "the owner or deputy does not leave its channel".into()));
            }
            let id: godwit_protocol::ids::ChannelId =
                c.id.parse().map_err(|e| refused("unavailable", format!("{e}")))?;
            let card = ctx.shared.directory.lock().ok().and_then(|d| d.get(&c.owner).map(|e| e.card.clone()));
            let card = card.ok_or_else(|| {
                refused("unavailable", format!("the owner {}'s card is not known here yet", c.owner.short()))
            })?;
            let note = note.trim().to_string();
            let note = if note.is_empty() {
                if leave { "leaving".to_string() } else { "please admit us".to_string() }
            } else {
                note
            };
            let body = Body::new(Content::ChannelRequest(godwit_protocol::content::ChannelRequest {
                note,
                leave,
                channel: id,
            }));
            let body = Body::decode(&body.encode())
                .map_err(|e| refused("bad_request", format!("the request is refused: {e}")))?;
            let req = super::PublishRequest {
                target: super::Target::Direct(vec![(c.owner, card.encryption_key)]),
                priority: Priority::Routine,
                marking: Tlp::Green,
                ttl_ms: 30 * 86_400_000,
                body,
                personal: None,
            };
            let sent = publish(ctx, req).await?;
            let verb = if leave { "leave" } else { "join" };
            journal(ctx, uid, format!("channels {verb} {} ({sent})", c.id), None).await?;
            Ok(Response::Sent { id: sent, to: vec![c.owner] })
        }
        Request::ChannelRequests => channel_requests(ctx, uid).await.map(Response::ChannelRequests),
        Request::Forward { id, channel, to, comment, consent, priority } => {
            let (original, body, marking) = forward_body(ctx, &id, comment, consent.as_deref()).await?;
            let marking = marking.to_string();
            let send = match channel {
                Some(channel) => Request::SendChannel {
                    channel,
                    priority,
                    marking,
                    ttl_hours: 24 * 30,
                    body,
                    personal: None,
                },
                None => {
                    Request::SendDirect { to, priority, marking, ttl_hours: 24 * 30, body, personal: None }
                }
            };
            let sent = Box::pin(handle(send, uid, ctx)).await?;
            if let Response::Sent { id, .. } = &sent {
                journal(ctx, uid, format!("send forward {original} as {id}"), None).await?;
            }
            Ok(sent)
        }
        Request::Withdraw { id, reason, corrected } => {
            let (new, full, to) = withdraw(ctx, &id, &reason, corrected.as_deref()).await?;
            let verb = if corrected.is_some() { "correct" } else { "retract" };
            journal(ctx, uid, format!("send {verb} {full} ({new})"), None).await?;
            Ok(Response::Sent { id: new, to })
        }
        Request::Channels => match ask(ctx, Query::Channels).await? {
            Answer::Channels(list) => Ok(Response::Channels(list)),
            _ => Err(refused("unavailable", "unexpected answer".into())),
        },
        Request::ChangeChannel(change) => {
            let uid = uid.unwrap_or(u32::MAX);
            let (channel, change) = resolve_change(ctx, change)?;
            match ask(ctx, Query::ChangeChannel { uid, channel, change }).await? {
                Answer::ChannelChanged { channel, epoch } => Ok(Response::ChannelChanged { channel, epoch }),
                Answer::Failed(e) => Err(refused("refused", e)),
                _ => Err(refused("unavailable", "unexpected answer".into())),
            }
        }
        Request::Follow { .. } => Err(refused("bad_request", "follow is answered as a stream".into())),
        Request::Inbox => {
            let Answer::Inbox(list) = ask(ctx, Query::Inbox { limit: INBOX_LIST_MAX }).await? else {
                return Err(refused("unavailable", "unexpected answer".into()));
            };
            let marks = marks(ctx, list.iter().map(|(id, _)| *id).collect()).await?;
            let mut items: Vec<godwit_admin_api::InboxItem> = list
                .iter()
                .zip(&marks)
                .filter_map(|((id, env), mark)| item(ctx, uid, *id, env, mark.as_ref()))
                .collect();
            withdrawn(&mut items);
            Ok(Response::Inbox(items))
        }
        Request::Mark { id, actioned, note } => {
            let (mid, env) = find_one(ctx, &id).await?;
            let status = if actioned { ReceiptStatus::Actioned } else { ReceiptStatus::Read };
            let note = note.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty());
            if note.as_ref().is_some_and(|n| n.len() > MAX_NOTE || n.chars().any(char::is_control)) {
                return Err(refused(
                    "bad_request",
                    format!("a note is one line of at most {MAX_NOTE} bytes"),
                ));
            }
            let before = marks(ctx, vec![mid]).await?.pop().flatten();
            if before.as_ref().is_some_and(|m| m.status >= status) {
                // Already so (or further): nothing new to say to the author.
                return Ok(Response::Marked { id: mid, receipt: None });
            }
            let e = Envelope::verify(&env)
                .map_err(|err| refused("unavailable", format!("a stored envelope does not verify: {err}")))?;
            let (author, marking) = (e.header().author, e.header().marking);
            let card = ctx.shared.directory.lock().ok().and_then(|d| d.get(&author).map(|x| x.card.clone()));
            // The receipt goes to the author alone, marked like the message it answers: that
            // this node read it says no less than the message itself.
            // Receipts are not receipted.
            let is_receipt = open(ctx, &e)
                .is_ok_and(|b| matches!(b.content, godwit_protocol::content::Content::Receipt(_)));
            let receipt = match card {
                Some(card) if author != ctx.shared.me && !is_receipt => {
                    let body = Body::new(Content::Receipt(Receipt {
                        at: super::now(),
                        note: note.clone(),
                        status,
                        message: mid,
                    }));
                    let req = super::PublishRequest {
                        target: super::Target::Direct(vec![(author, card.encryption_key)]),
                        priority: Priority::Routine,
                        marking: if marking == Tlp::Clear { Tlp::Green } else { marking },
                        ttl_ms: 30 * 86_400_000,
                        body,
                        personal: None,
                    };
                    Some(publish(ctx, req).await?)
                }
                _ => None,
            };
            let verb = if actioned { "action" } else { "ack" };
            let action = match receipt {
                Some(r) => format!("inbox {verb} {mid} (receipt {r} to {})", author.short()),
                None => format!("inbox {verb} {mid}"),
            };
            let purged = before.as_ref().is_some_and(|m| m.purged);
            let mark = Mark { status, at: super::now(), uid: uid.unwrap_or(u32::MAX), note, purged };
            journal(ctx, uid, action, Some(Write::Mark { id: mid, mark })).await?;
            Ok(Response::Marked { id: mid, receipt })
        }
        Request::Show { id } => {
            let (mid, env) = find_one(ctx, &id).await?;
            let mark = marks(ctx, vec![mid]).await?.pop().flatten();
            let item = item(ctx, uid, mid, &env, mark.as_ref())
                .ok_or_else(|| refused("unavailable", "a stored envelope does not verify".into()))?;
            let (body, unopened) = match Envelope::verify(&env) {
                Ok(e) if matches!(e.header().feed, Feed::Control(_)) => (e.sealed_body().to_vec(), None),
                Ok(e) => match open(ctx, &e).and_then(|b| readable(ctx, uid, b)) {
                    Ok(b) => (b.encode(), None),
                    Err(why) => (Vec::new(), Some(why)),
                },
                Err(err) => (Vec::new(), Some(format!("it does not verify: {err}"))),
            };
            let (personal, personal_status) = personal_view(ctx, &env, mark.as_ref());
            Ok(Response::Message(Box::new(MessageView {
                item,
                envelope: env,
                body,
                unopened,
                personal,
                personal_status,
            })))
        }
        Request::OwnReports { skip } => {
            let Answer::OwnReports(mut own) = ask(ctx, Query::OwnReports).await? else {
                return Err(refused("unavailable", "unexpected answer".into()));
            };
            // Oldest first, in pages: the order is the envelopes' creation time, then id.
            let created = |env: &[u8]| Envelope::verify(env).map_or(0, |e| e.header().created.as_millis());
            own.sort_by_cached_key(|(id, env, _)| (created(env), *id));
            let mut views = Vec::new();
            for (id, env, body) in own.into_iter().skip(skip as usize).take(OWN_PAGE) {
                // This node wrote it: a TLP:RED report's addressees are at its recipients, and
                // its own operators (the socket's group) see what they sent (docs/security.md).
                let opened = godwit_protocol::content::Body::decode(&body)
                    .map_err(|e| format!("its kept body does not decode: {e}"));
                let Some(item) = item_opened(ctx, id, &env, None, opened.clone()) else {
                    return Err(refused(
                        "unavailable",
                        format!(
                            "this node's kept copy of its report {id} is damaged (its envelope does not verify): restore the data directory from a backup to export it"
                        ),
                    ));
                };
                let (body, unopened) = match opened {
                    Ok(b) => (b.encode(), None),
                    Err(why) => (Vec::new(), Some(why)),
                };
                // The envelope stays here (the export needs the body); personal sections are not kept.
                let personal_status = "not kept".to_string();
                views.push(MessageView {
                    item,
                    envelope: Vec::new(),
                    body,
                    unopened,
                    personal: Vec::new(),
                    personal_status,
                });
            }
            Ok(Response::OwnReports(views))
        }
        Request::Directory { name } => {
            let d =
                ctx.shared.directory.lock().map_err(|_| refused("unavailable", "state poisoned".into()))?;
            let entries: Vec<&super::directory::Entry> = match &name {
                None => d.entries().collect(),
                Some(n) => d.find(n).map_err(|e| refused("not_found", e))?,
            };
            Ok(Response::Directory(
                entries
                    .into_iter()
                    .map(|e| DirectoryView {
                        node: e.card.id,
                        administration: e.cert.administration.clone(),
                        country: e.cert.country.clone(),
                        region: e.cert.region.clone(),
                        role: format!("{:?}", e.cert.role).to_lowercase(),
                        encryption_key: e.card.encryption_key.as_bytes().to_vec(),
                        addresses: e.card.addresses.clone(),
                        card_not_after_ms: e.card.not_after.as_millis(),
                    })
                    .collect(),
            ))
        }
        Request::RotateKey => {
            ask(ctx, Query::RotateKey { uid: uid.unwrap_or(u32::MAX) }).await?;
            let key =
                ctx.shared.keys.lock().map(|k| k.current().public().as_bytes().to_vec()).unwrap_or_default();
            Ok(Response::Rotated { encryption_key: key })
        }
        Request::Audit(req) => {
            let uid = uid.unwrap_or(u32::MAX);
            match ask(ctx, Query::Audit { uid, req }).await? {
                Answer::Audit(a) => Ok(Response::Audit(a)),
                Answer::AuditVerify(job) => {
                    let r = tokio::task::spawn_blocking(move || {
                        job.reader.verify(&job.me, &job.witnesses, |_, _| ())
                    })
                    .await
                    .map_err(|e| refused("unavailable", format!("the verification stopped: {e}")))?
                    .map_err(|e| refused("unavailable", format!("cannot read the audit log: {e}")))?;
                    Ok(Response::Audit(Box::new(super::audit::verified(r))))
                }
                Answer::Failed(e) => Err(refused("refused", e)),
                _ => Err(refused("unavailable", "unexpected answer".into())),
            }
        }
        Request::VerifyJournal => match ask(ctx, Query::VerifyJournal).await? {
            Answer::Verified { entries, problems } => Ok(Response::JournalVerified { entries, problems }),
            _ => Err(refused("unavailable", "unexpected answer".into())),
        },
    }
}

/// Journals an operator's request with the caller's uid (`u32::MAX` when unknown) and the
/// setting it changed, if any.
async fn journal(
    ctx: &Ctx,
    uid: Option<u32>,
    action: String,
    setting: Option<Write>,
) -> Result<(), Response> {
    let q = Query::Record { uid: uid.unwrap_or(u32::MAX), action, setting: setting.map(Box::new) };
    ask(ctx, q).await.map(|_| ())
}

/// The one node a name stands for: a NodeId, or a directory name naming exactly one node.
fn named(ctx: &Ctx, name: &str) -> Result<NodeId, Response> {
    if let Ok(id) = name.trim().parse::<NodeId>() {
        return Ok(id);
    }
    let d = ctx.shared.directory.lock().map_err(|_| refused("unavailable", "state poisoned".into()))?;
    match d.find(name).map_err(|e| refused("not_found", e))?.as_slice() {
        [one] => Ok(one.card.id),
        many => Err(refused(
            "bad_request",
            format!("{name:?} stands for {} nodes: name one by its NodeId or administration", many.len()),
        )),
    }
}

/// Days until the installed revocation list's next update, if there is one.
fn crl_days_left(m: &crate::tls::TlsMaterial) -> Option<i64> {
    use x509_parser::prelude::FromDer;
    let der = m.crl.as_ref()?;
    let (_, crl) = x509_parser::revocation_list::CertificateRevocationList::from_der(der).ok()?;
    let next = crl.next_update()?.timestamp();
    Some((next - super::now().as_millis() as i64 / 1000) / 86_400)
}

/// The body of a forward of an inbox message: the original's id, the encoded body, and the
/// original's marking (which the forward keeps).
async fn forward_body(
    ctx: &Ctx,
    id: &str,
    comment: Option<String>,
    consent: Option<&str>,
) -> Result<(MessageId, Vec<u8>, Tlp), Response> {
    use godwit_protocol::content::{Consent, Forward};
    let (original, env) = find_one(ctx, id).await?;
    let e = Envelope::verify(&env)
        .map_err(|err| refused("unavailable", format!("a stored envelope does not verify: {err}")))?;
    let h = e.header();
    let opened = open(ctx, &e)
        .map_err(|why| refused("refused", format!("{} cannot be forwarded: {why}", original.short())))?;
    if matches!(opened.content, Content::Forward(_) | Content::Receipt(_) | Content::ChannelRequest(_)) {
        return Err(refused(
            "bad_request",
            format!("a {} is not forwarded", opened.content.kind().replace('_', " ")),
        ));
    }
    let consent = match consent {
        None => None,
        Some(c) => {
            let (cid, cenv) = find_one(ctx, c).await?;
            let by = Envelope::verify(&cenv)
                .map(|x| x.header().author)
                .map_err(|err| refused("unavailable", format!("{err}")))?;
            if by != h.author {
                return Err(refused(
                    "refused",
                    format!(
                        "consent must come from the original's author {}, not {}",
                        h.author.short(),
                        by.short()
                    ),
                ));
            }
            Some(Consent { by, message: cid })
        }
    };
    let body = Body::new(Content::Forward(Forward {
        author: h.author,
        comment: comment.map(|c| c.trim().to_string()).filter(|c| !c.is_empty()),
        consent,
        content: Box::new(opened.content),
        marking: h.marking,
        envelope: env.clone(),
        original,
    }));
    // The rules (never RED or AMBER+STRICT, AMBER only with consent) are the content's own.
    let encoded = body.encode();
    Body::decode(&encoded)
        .map_err(|err| refused("refused", format!("{} cannot be forwarded: {err}", original.short())))?;
    Ok((original, encoded, h.marking))
}

/// A retraction (or correction) of a message this node sent, to its audience: the new
/// message's id, the original's, and the nodes it is sealed to (none for a channel).
async fn withdraw(
    ctx: &Ctx,
    id: &str,
    reason: &str,
    corrected: Option<&[u8]>,
) -> Result<(MessageId, MessageId, Vec<NodeId>), Response> {
    use godwit_protocol::content::{Correction, Retraction};
    let bad = |m: String| refused("bad_request", m);
    let full: MessageId = id.trim().parse().map_err(|_| {
        bad(format!("{id:?} is not a full message id (64 hex digits, as `godwit send` printed it)"))
    })?;
    let env = match ask(ctx, Query::Envelope(full)).await? {
        Answer::Inbox(mut v) if v.len() == 1 => v.remove(0).1,
        _ => return Err(refused("not_found", format!("no message {full} is held here"))),
    };
    let e = Envelope::verify(&env)
        .map_err(|err| refused("unavailable", format!("a stored envelope does not verify: {err}")))?;
    let h = e.header();
    if h.author != ctx.shared.me {
        return Err(refused(
            "refused",
            format!(
                "only its author may retract or correct {}: it was sent by {}",
                full.short(),
                h.author.short()
            ),
        ));
    }
    let reason = reason.trim().to_string();
    if reason.is_empty() {
        return Err(bad("give the reason (--reason)".into()));
    }
    let content = match corrected {
        None => Content::Retraction(Retraction { reason, target: full }),
        Some(b) => {
            let body = Body::decode(b)
                .and_then(|b| b.validate_authored().map(|()| b))
                .map_err(|err| bad(format!("the corrected content is refused: {err}")))?;
            // A channel message this node sent it can open: the correction keeps its kind.
            if let Ok(original) = open(ctx, &e) {
                if original.content.kind() != body.content.kind() {
                    return Err(bad(format!(
                        "{} is a {}: its correction must be one too, not a {}",
                        full.short(),
                        original.content.kind(),
                        body.content.kind()
                    )));
                }
            }
            Content::Correction(Correction { reason, target: full, corrected: Box::new(body.content) })
        }
    };
    let body = Body::decode(&Body::new(content).encode())
        .map_err(|err| bad(format!("the retraction is refused: {err}")))?;
    let (target, to) = match &h.feed {
        Feed::Channel(c) => {
            let view = channel_named(ctx, &c.id.to_string()).await?;
            let key = ctx
                .shared
                .epoch_keys
                .lock()
                .map_err(|_| refused("unavailable", "key state poisoned".into()))?
                .get(&c.id, view.epoch)
                .cloned()
                .ok_or_else(|| {
                    refused(
                        "unavailable",
                        format!("no key of epoch {} of its channel is held here", view.epoch),
                    )
                })?;
            (super::Target::Channel { id: c.id, epoch: view.epoch, key }, Vec::new())
        }
        Feed::Direct(sealed) => {
            let d =
                ctx.shared.directory.lock().map_err(|_| refused("unavailable", "state poisoned".into()))?;
            let mut to = Vec::new();
            for s in sealed.iter() {
                let card = d.get(&s.to).ok_or_else(|| {
                    refused("unavailable", format!("no card of recipient {} is known here", s.to.short()))
                })?;
                to.push((s.to, card.card.encryption_key));
            }
            let nodes = to.iter().map(|(n, _)| *n).collect();
            (super::Target::Direct(to), nodes)
        }
        Feed::Control(_) => {
            return Err(bad("a control record is not retracted: a newer one replaces it".into()));
        }
    };
    let req = super::PublishRequest {
        target,
        priority: Priority::Immediate,
        marking: h.marking,
        ttl_ms: 30 * 86_400_000,
        body,
        personal: None,
    };
    Ok((publish(ctx, req).await?, full, to))
}

/// Messages their own author retracted or corrected show so (`retracted`, `corrected`); a
/// retraction by anyone else changes nothing.
fn withdrawn(items: &mut [godwit_admin_api::InboxItem]) {
    let by: Vec<(MessageId, NodeId, &'static str)> = items
        .iter()
        .filter_map(|i| match i.kind.as_str() {
            "retraction" => i.refers_to.map(|t| (t, i.author, "retracted")),
            "correction" => i.refers_to.map(|t| (t, i.author, "corrected")),
            _ => None,
        })
        .collect();
    for (target, author, status) in by {
        if let Some(original) = items.iter_mut().find(|i| i.id == target && i.author == author) {
            if original.status != "retracted" {
                original.status = status.to_string();
            }
        }
    }
}

/// Requests to join the channels this node may change, from nodes not yet members, not refused
/// (an operator marked a request actioned: it is answered).
async fn channel_requests(
    ctx: &Ctx,
    uid: Option<u32>,
) -> Result<Vec<godwit_admin_api::ChannelRequestView>, Response> {
    let Answer::Channels(channels) = ask(ctx, Query::Channels).await? else {
        return Err(refused("unavailable", "unexpected answer".into()));
    };
    let me = ctx.shared.me;
    let Answer::Inbox(list) = ask(ctx, Query::Inbox { limit: RECEIPT_SCAN }).await? else {
        return Err(refused("unavailable", "unexpected answer".into()));
    };
    let marks = marks(ctx, list.iter().map(|(id, _)| *id).collect()).await?;
    let mut out = Vec::new();
    for ((id, env), mark) in list.iter().zip(&marks) {
        if mark.as_ref().is_some_and(|m| m.status == godwit_protocol::content::ReceiptStatus::Actioned) {
            continue;
        }
        let Ok(e) = Envelope::verify(env) else { continue };
        if !matches!(e.header().feed, Feed::Direct(_)) {
            continue;
        }
        let Ok(Content::ChannelRequest(r)) =
            open(ctx, &e).and_then(|b| readable(ctx, uid, b)).map(|b| b.content)
        else {
            continue;
        };
        let from = e.header().author;
        let Some(c) = channels.iter().find(|c| c.id == r.channel.to_string()) else { continue };
        let owns = c.owner == me || c.deputy == Some(me);
        if r.leave || !owns || c.members.iter().any(|m| m.node == from) {
            continue;
        }
        let administration = ctx
            .shared
            .directory
            .lock()
            .ok()
            .and_then(|d| d.get(&from).map(|x| x.cert.administration.clone()))
            .unwrap_or_default();
        out.push(godwit_admin_api::ChannelRequestView {
            id: *id,
            channel: c.id.clone(),
            channel_name: c.name.clone(),
            node: from,
            administration,
            note: r.note,
            created_ms: e.header().created.as_millis(),
        });
    }
    Ok(out)
}

/// The thread of a message: up through what it refers to while that is held here, then every
/// inbox message that refers, directly or not, to one in the thread; receipts left out.
async fn thread(ctx: &Ctx, uid: Option<u32>, id: &str) -> Result<Vec<godwit_admin_api::InboxItem>, Response> {
    let start = match id.trim().parse::<MessageId>() {
        Ok(full) => full,
        Err(_) => find_one(ctx, id).await?.0,
    };
    let Answer::Inbox(list) = ask(ctx, Query::Inbox { limit: RECEIPT_SCAN }).await? else {
        return Err(refused("unavailable", "unexpected answer".into()));
    };
    let marks = marks(ctx, list.iter().map(|(id, _)| *id).collect()).await?;
    let items: Vec<godwit_admin_api::InboxItem> = list
        .iter()
        .zip(&marks)
        .filter_map(|((id, env), mark)| item(ctx, uid, *id, env, mark.as_ref()))
        .filter(|i| i.kind != "receipt")
        .collect();
    let by_id: std::collections::HashMap<MessageId, &godwit_admin_api::InboxItem> =
        items.iter().map(|i| (i.id, i)).collect();
    // Up to the root (bounded by the inbox: each step is a different message).
    let mut root = start;
    let mut seen = std::collections::HashSet::new();
    while let Some(up) = by_id.get(&root).and_then(|i| i.refers_to) {
        if !seen.insert(root) {
            break;
        }
        root = up;
    }
    // Down from it, to a fixed point.
    let mut thread: std::collections::HashSet<MessageId> = [root].into();
    loop {
        let before = thread.len();
        for i in &items {
            if i.refers_to.is_some_and(|r| thread.contains(&r)) {
                thread.insert(i.id);
            }
        }
        if thread.len() == before {
            break;
        }
    }
    let mut out: Vec<godwit_admin_api::InboxItem> =
        items.into_iter().filter(|i| thread.contains(&i.id)).collect();
    if out.is_empty() && !thread.contains(&start) {
        return Err(refused(
            "not_found",
            format!("no message of the thread of {} is in this node's inbox", start.short()),
        ));
    }
    withdrawn(&mut out);
    out.sort_by_key(|i| i.created_ms);
    Ok(out)
}

/// A message's personal-data section as this node may show it: opened (CBOR) when it is sealed
/// to this node, not purged and within its retention; otherwise why not.
fn personal_view(ctx: &Ctx, env: &[u8], mark: Option<&Mark>) -> (Vec<u8>, String) {
    let Ok(e) = Envelope::verify(env) else { return (Vec::new(), "none".into()) };
    if e.header().personal.is_none() {
        return (Vec::new(), "none".into());
    }
    if mark.is_some_and(|m| m.purged) {
        return (Vec::new(), "purged".into());
    }
    let keys = ctx.shared.keys.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    match keys.open_personal(&e, &ctx.shared.me) {
        Ok(p) => {
            // The day (UTC) from the node's clock: `2026-12-01T…`.
            let today = super::now()
                .to_string()
                .get(..10)
                .and_then(|d| d.parse::<godwit_protocol::content::Date>().ok());
            if p.retain_until.is_some_and(|d| today.is_some_and(|t| d < t)) {
                return (Vec::new(), "retention passed".into());
            }
            (godwit_protocol::codec::to_vec(&p), "opened".into())
        }
        Err(godwit_protocol::message::OpenError::NotARecipient(_)) => (Vec::new(), "sealed to others".into()),
        Err(err) => (Vec::new(), format!("cannot open it: {err}")),
    }
}

/// Most inbox messages `godwit receipts` looks through for receipts (the newest).
const RECEIPT_SCAN: usize = 20_000;

/// Who receipted a message, per expected recipient.
async fn receipts(ctx: &Ctx, id: &str) -> Result<godwit_admin_api::ReceiptsView, Response> {
    use godwit_admin_api::ReceiptRow;
    let (mid, env) = match id.trim().parse::<MessageId>() {
        Ok(full) => match ask(ctx, Query::Envelope(full)).await? {
            Answer::Inbox(mut v) if v.len() == 1 => v.remove(0),
            _ => return Err(refused("not_found", format!("no message {full} is held here"))),
        },
        Err(_) => find_one(ctx, id).await?,
    };
    let e = Envelope::verify(&env)
        .map_err(|err| refused("unavailable", format!("a stored envelope does not verify: {err}")))?;
    let me = ctx.shared.me;
    let expected: Vec<NodeId> = match &e.header().feed {
        Feed::Direct(to) => to.iter().map(|s| s.to).collect(),
        Feed::Channel(c) => match ask(ctx, Query::Channels).await? {
            Answer::Channels(list) => list
                .into_iter()
                .find(|v| v.id == c.id.to_string())
                .map(|v| v.members.into_iter().filter(|m| m.read).map(|m| m.node).collect())
                .unwrap_or_default(),
            _ => Vec::new(),
        },
        Feed::Control(_) => Vec::new(),
    };
    let author = e.header().author;
    let admin_of = |n: &NodeId| {
        ctx.shared
            .directory
            .lock()
            .ok()
            .and_then(|d| d.get(n).map(|x| x.cert.administration.clone()))
            .unwrap_or_default()
    };
    let mut rows: Vec<ReceiptRow> = expected
        .iter()
        .filter(|n| **n != author && **n != me)
        .map(|n| ReceiptRow {
            node: *n,
            administration: admin_of(n),
            expected: true,
            delivered_ms: None,
            read_ms: None,
            actioned_ms: None,
            note: None,
        })
        .collect();
    let Answer::Inbox(list) = ask(ctx, Query::Inbox { limit: RECEIPT_SCAN }).await? else {
        return Err(refused("unavailable", "unexpected answer".into()));
    };
    for (_, renv) in list {
        let Ok(r) = Envelope::verify(&renv) else { continue };
        if !matches!(r.header().feed, Feed::Direct(_)) {
            continue;
        }
        let Ok(Content::Receipt(receipt)) = open(ctx, &r).map(|b| b.content) else { continue };
        if receipt.message != mid {
            continue;
        }
        let from = r.header().author;
        let i = match rows.iter().position(|x| x.node == from) {
            Some(i) => i,
            None => {
                rows.push(ReceiptRow {
                    node: from,
                    administration: admin_of(&from),
                    expected: false,
                    delivered_ms: None,
                    read_ms: None,
                    actioned_ms: None,
                    note: None,
                });
                rows.len() - 1
            }
        };
        let row = &mut rows[i];
        let at = receipt.at.as_millis();
        let slot = match receipt.status {
            ReceiptStatus::Delivered => &mut row.delivered_ms,
            ReceiptStatus::Read => &mut row.read_ms,
            ReceiptStatus::Actioned => &mut row.actioned_ms,
        };
        *slot = Some(slot.map_or(at, |t| t.min(at)));
        if receipt.note.is_some() {
            row.note = receipt.note;
        }
    }
    Ok(godwit_admin_api::ReceiptsView { id: mid, rows })
}

/// The channel a name (or id) stands for, as the core sees it now.
async fn channel_named(ctx: &Ctx, name: &str) -> Result<godwit_admin_api::ChannelView, Response> {
    let Answer::Channels(list) = ask(ctx, Query::Channels).await? else {
        return Err(refused("unavailable", "unexpected answer".into()));
    };
    let want = name.trim();
    let found = godwit_admin_api::select_channels(&list, want, |c| c.id.clone(), |c| c.name.as_str());
    match found.as_slice() {
        [one] => Ok((*one).clone()),
        [] => {
            let known: Vec<String> = list.iter().map(|c| format!("{:?}", c.name)).collect();
            Err(refused(
                "not_found",
                format!(
                    "no channel called {want:?} is known here (known: {})",
                    if known.is_empty() { "none".to_string() } else { known.join(", ") }
                ),
            ))
        }
        many => Err(refused("bad_request", format!("{want:?} names {} channels: give its id", many.len()))),
    }
}

/// A channel change with its nodes resolved (each name must stand for one node).
fn resolve_change(
    ctx: &Ctx,
    change: godwit_admin_api::ChannelChange,
) -> Result<(Option<String>, super::channels::Change), Response> {
    use super::channels::Change;
    use godwit_admin_api::ChannelChange as C;
    Ok(match change {
        C::Create { name, purpose, deputy, ends_ms, retain_days } => {
            let deputy = deputy.map(|d| named(ctx, &d)).transpose()?;
            let ends = ends_ms.map(godwit_protocol::Timestamp);
            (None, Change::Create { name, purpose, deputy, ends, retain_days })
        }
        C::Admit { channel, node, read, publish } => {
            (Some(channel), Change::Admit { node: named(ctx, &node)?, read, publish })
        }
        C::Remove { channel, node } => (Some(channel), Change::Remove { node: named(ctx, &node)? }),
        C::Close { channel } => (Some(channel), Change::Close),
        C::Rekey { channel } => (Some(channel), Change::Rekey),
    })
}

/// Who may open a personal-data section: its recipients with their encryption keys.
type PersonalRecipients = Vec<(NodeId, godwit_protocol::identity::EncryptionPublicKey)>;

/// A message's personal-data section, checked, with who may open it: the named nodes, or for
/// a direct message with none named, every recipient.
fn personal_part(
    ctx: &Ctx,
    part: Option<godwit_admin_api::PersonalPart>,
    recipients: Option<&[(NodeId, godwit_protocol::identity::EncryptionPublicKey)]>,
    marking: Tlp,
) -> Result<Option<(godwit_protocol::content::PersonalData, PersonalRecipients)>, Response> {
    let bad = |m: String| refused("bad_request", m);
    let Some(part) = part else { return Ok(None) };
    let data = godwit_protocol::content::PersonalData::decode(&part.data)
        .map_err(|e| bad(format!("the personal data is refused: {e}")))?;
    if data.marking.is_some_and(|m| m > marking) {
        return Err(bad(format!(
            "the personal data may not be marked more loosely than the message ({marking})"
        )));
    }
    let mut to: PersonalRecipients = Vec::new();
    if part.to.is_empty() {
        match recipients {
            Some(r) => to.extend_from_slice(r),
            None => return Err(bad("name who may open the personal data (--personal-to)".into())),
        }
    } else {
        let d = ctx.shared.directory.lock().map_err(|_| refused("unavailable", "state poisoned".into()))?;
        for name in &part.to {
            for e in d.find(name).map_err(|e| refused("not_found", e))? {
                if e.card.id != ctx.shared.me && !to.iter().any(|(n, _)| *n == e.card.id) {
                    to.push((e.card.id, e.card.encryption_key));
                }
            }
        }
    }
    if let Some(r) = recipients {
        if let Some((n, _)) = to.iter().find(|(n, _)| !r.iter().any(|(x, _)| x == n)) {
            return Err(bad(format!(
                "{} is not a recipient of the message: it cannot be sealed its personal data",
                n.short()
            )));
        }
    }
    if to.is_empty() {
        return Err(bad("nobody other than this node would open the personal data".into()));
    }
    to.sort_by_key(|(n, _)| *n);
    Ok(Some((data, to)))
}

/// The common fields of a message to send, checked.
fn publication(
    priority: &str,
    marking: &str,
    ttl_hours: u32,
    body: &[u8],
) -> Result<(Priority, Tlp, u64, Body), Response> {
    let bad = |m: String| refused("bad_request", m);
    let priority = match priority.to_ascii_lowercase().as_str() {
        "flash" => Priority::Flash,
        "immediate" => Priority::Immediate,
        "routine" => Priority::Routine,
        other => return Err(bad(format!("priority {other:?} is not flash, immediate or routine"))),
    };
    let marking: Tlp = marking.parse().map_err(|e| bad(format!("{e}")))?;
    if ttl_hours == 0 || ttl_hours > 366 * 24 {
        return Err(bad(format!("a lifetime of {ttl_hours} hours is not between 1 and {}", 366 * 24)));
    }
    let body = Body::decode(body).and_then(|b| b.validate_authored().map(|()| b));
    let body = body.map_err(|e| bad(format!("the message content is refused: {e}")))?;
    Ok((priority, marking, u64::from(ttl_hours) * 3_600_000, body))
}

/// Authors a message; its id once it is durable here.
async fn publish(ctx: &Ctx, req: super::PublishRequest) -> Result<MessageId, Response> {
    let (tx, rx) = oneshot::channel();
    let gone = || refused("unavailable", "the node is stopping".into());
    ctx.core.send(CoreMsg::Publish(Box::new(req), tx)).map_err(|_| gone())?;
    rx.await.map_err(|_| gone())?.map_err(|e| refused("refused", e.to_string()))
}

/// Most of this node's own reports one answer holds (a body is at most 64 KiB of text fields).
const OWN_PAGE: usize = 128;

/// Most inbox entries one listing returns (the newest).
const INBOX_LIST_MAX: usize = 1_000;

/// Longest note an operator can attach to a mark (it travels in the receipt: a short text).
const MAX_NOTE: usize = godwit_protocol::LIMITS.max_short_text_len;

/// The one inbox message an id or unique prefix (at least 8 hex digits) names, with its
/// envelope.
async fn find_one(ctx: &Ctx, id: &str) -> Result<(MessageId, Vec<u8>), Response> {
    let want = id.trim().to_ascii_lowercase();
    if want.len() < 8 || want.len() > 64 || !want.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(refused(
            "bad_request",
            format!("{id:?} is not a message id (64 hex digits, or a prefix of at least 8)"),
        ));
    }
    let Answer::Inbox(list) = ask(ctx, Query::Find { prefix: want.clone() }).await? else {
        return Err(refused("unavailable", "unexpected answer".into()));
    };
    let mut found: Vec<(MessageId, Vec<u8>)> =
        list.into_iter().filter(|(m, _)| m.to_string().starts_with(&want)).collect();
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(refused("not_found", format!("no message {want} in this node's inbox"))),
        n => Err(refused("bad_request", format!("{want} is the start of {n} ids: give more digits"))),
    }
}

/// The operators' marks on `ids`, in order.
async fn marks(ctx: &Ctx, ids: Vec<MessageId>) -> Result<Vec<Option<Mark>>, Response> {
    let n = ids.len();
    match ask(ctx, Query::Marks(ids)).await? {
        Answer::Marks(m) if m.len() == n => Ok(m),
        _ => Err(refused("unavailable", "unexpected answer".into())),
    }
}

/// Carries out a query on the core thread.
/// `queues`: connections whose outbound queue is at least half full, with how full (percent).
pub(super) fn on_core(
    relay: &mut godwit_protocol::relay::Relay<crate::store::SledStore>,
    q: Query,
    queues: impl FnOnce() -> Vec<(NodeId, u8)>,
) -> Answer {
    let failed = |e: crate::store::StoreError| Answer::Failed(format!("cannot read the store: {e}"));
    match q {
        Query::Status => {
            let inbox = match relay.inbox() {
                Ok(i) => i.len() as u64,
                Err(e) => return Answer::Failed(format!("cannot read the inbox: {e}")),
            };
            Answer::Status {
                inbox,
                store_bytes: relay.store().size_on_disk().unwrap_or(0),
                free_bytes: relay.store().free_space().unwrap_or(u64::MAX),
                recovering: relay.is_recovering(),
                storage_full: relay.is_storage_full(),
                forks: relay.store().forks().map_or(0, |f| f.len()),
                queues: queues(),
            }
        }
        Query::Peers => relay.store().peers().map_or_else(failed, Answer::Peers),
        Query::Journal(last) => match relay.store().journal_tail(last as usize) {
            Ok(entries) => Answer::Journal(
                entries
                    .into_iter()
                    .map(|e| JournalView { seq: e.seq, event: format!("{:?}", e.event) })
                    .collect(),
            ),
            Err(e) => failed(e),
        },
        Query::VerifyJournal => match relay.store().verify_journal() {
            Ok((entries, problems)) => Answer::Verified { entries, problems },
            Err(e) => failed(e),
        },
        Query::Read { uid, action } => {
            relay.record_read(uid, action);
            Answer::Done
        }
        Query::Record { uid, action, setting } => {
            match setting {
                Some(s) => relay.record_setting(uid, action, *s),
                None => relay.record_admin(uid, action),
            }
            Answer::Done
        }
        Query::Unannounced { after, limit } => {
            let view = relay.store().inbox_view();
            let cursor = match after {
                Some(c) => c,
                None => match view.announced() {
                    Ok(c) => c,
                    Err(e) => return failed(e),
                },
            };
            match view.after(cursor, limit) {
                Ok(entries) => Answer::Unannounced { cursor, entries },
                Err(e) => failed(e),
            }
        }
        Query::InboxBack(n) => match relay.store().inbox_view().back(n) {
            Ok(p) => Answer::Position(p),
            Err(e) => failed(e),
        },
        Query::JournalAfter { after, limit } => {
            let Some(after) = after else {
                return Answer::JournalAfter { last: relay.store().journal_last(), entries: Vec::new() };
            };
            match relay.store().journal_after(after, limit) {
                Ok(entries) => Answer::JournalAfter {
                    last: entries.last().map_or(after, |e| e.seq),
                    entries: entries
                        .into_iter()
                        .map(|e| JournalView { seq: e.seq, event: format!("{:?}", e.event) })
                        .collect(),
                },
                Err(e) => failed(e),
            }
        }
        Query::Announced(position) => match relay.store().inbox_view().set_announced(position) {
            Ok(()) => Answer::Done,
            Err(e) => failed(e),
        },
        Query::Find { prefix } => {
            let ids = match relay.inbox() {
                Ok(i) => i,
                Err(e) => return Answer::Failed(format!("cannot read the inbox: {e}")),
            };
            let found: Vec<MessageId> =
                ids.into_iter().filter(|m| m.to_string().starts_with(&prefix)).collect();
            if let [one] = found.as_slice() {
                return match relay.envelope(one) {
                    Ok(Some(env)) => Answer::Inbox(vec![(*one, env)]),
                    Ok(None) => Answer::Inbox(Vec::new()),
                    Err(e) => Answer::Failed(format!("cannot read the store: {e}")),
                };
            }
            Answer::Inbox(found.into_iter().map(|m| (m, Vec::new())).collect())
        }
        Query::Envelope(id) => match relay.envelope(&id) {
            Ok(Some(env)) => Answer::Inbox(vec![(id, env)]),
            Ok(None) => Answer::Inbox(Vec::new()),
            Err(e) => Answer::Failed(format!("cannot read the store: {e}")),
        },
        Query::RotateKey { .. } | Query::Channels | Query::ChangeChannel { .. } | Query::Audit { .. } => {
            Answer::Failed("the core answers this itself".into())
        }
        Query::OwnReports => match relay.store().own_reports() {
            Ok(own) => Answer::OwnReports(own.into_iter().map(|(id, r)| (id, r.envelope, r.body)).collect()),
            Err(e) => failed(e),
        },
        Query::Marks(ids) => {
            let mut marks = Vec::with_capacity(ids.len());
            for id in &ids {
                match relay.store().mark(id) {
                    Ok(m) => marks.push(m),
                    Err(e) => return failed(e),
                }
            }
            Answer::Marks(marks)
        }
        Query::Inbox { limit } => {
            let ids = match relay.inbox() {
                Ok(i) => i,
                Err(e) => return Answer::Failed(format!("cannot read the inbox: {e}")),
            };
            let mut out = Vec::new();
            for id in ids.iter().rev().take(limit).rev() {
                match relay.envelope(id) {
                    Ok(Some(env)) => out.push((*id, env)),
                    Ok(None) => {}
                    Err(e) => return Answer::Failed(format!("cannot read the store: {e}")),
                }
            }
            Answer::Inbox(out)
        }
    }
}

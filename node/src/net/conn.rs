//! Connection tasks: accepting and dialling peers, the per-connection writer and stream
//! readers. They only move bytes; every decision is the core's.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use godwit_protocol::LIMITS;
use godwit_protocol::frame::{FRAME_HEADER_LEN, frame_len};
use godwit_protocol::identity::NodeId;
use godwit_protocol::wire::RejectReason;
use rand_core::{OsRng, RngCore};
use tokio::sync::{broadcast, mpsc as tmpsc};
use tracing::{Instrument, debug, info, info_span, warn};

use super::admission::Pending;
use super::{
    CONN_INBOUND_BYTES, CONN_QUEUE_FRAMES, ConnHandle, CoreMsg, MAX_STREAMS_PER_CONN, NodeEvent, PeerSpec,
    Shared,
};
use crate::certs::{self, PeerCert};
use crate::tls::{self, NetLimits, Refusal};

pub(super) async fn accept_loop(
    endpoint: quinn::Endpoint,
    core: mpsc::Sender<CoreMsg>,
    events: broadcast::Sender<NodeEvent>,
    shared: Arc<Shared>,
) {
    while let Some(incoming) = endpoint.accept().await {
        let remote = incoming.remote_address();
        // Before any cryptography: the handshake rate, the handshakes in progress, free slots.
        let handshake = match shared.admission.handshake(std::time::Instant::now()) {
            Ok(h) => h,
            Err(reason) => {
                incoming.refuse();
                refused(&events, &shared, remote, &Refusal::Admission(reason.into()));
                continue;
            }
        };
        let (core, events, shared) = (core.clone(), events.clone(), shared.clone());
        tokio::spawn(async move {
            let timeout = Duration::from_millis(shared.limits.handshake_timeout_ms);
            let conn = match tokio::time::timeout(timeout, async { incoming.accept()?.await }).await {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => return refused(&events, &shared, remote, &Refusal::of_connection(&e)),
                Err(_) => return refused(&events, &shared, remote, &Refusal::TimedOut),
            };
            drop(handshake);
            let peer = match identify(&conn) {
                Ok(peer) => peer,
                Err(e) => {
                    conn.close(1u32.into(), b"not a Godwit node certificate");
                    return refused(&events, &shared, remote, &Refusal::NotGodwit(e));
                }
            };
            let pending = match shared.admission.pending(std::time::Instant::now(), peer.node_id) {
                Ok(p) => p,
                Err(reason) => {
                    conn.close(3u32.into(), reason.as_bytes());
                    return refused(&events, &shared, remote, &Refusal::Admission(reason));
                }
            };
            let dialer = peer.node_id;
            if let Err(e) = run_conn(conn, peer, dialer, pending, core, shared.clone()).await {
                refused(&events, &shared, remote, &e);
            }
        });
    }
}

fn refused(events: &broadcast::Sender<NodeEvent>, shared: &Shared, remote: SocketAddr, why: &Refusal) {
    let reason = explain(shared, why);
    shared.admission.log_refusal(std::time::Instant::now(), remote, &reason);
    let _ = events.send(NodeEvent::ConnectionRefused { remote, reason });
}

/// The operator's reason for a refusal.
fn explain(shared: &Shared, why: &Refusal) -> String {
    let crl_expired = shared.tls.lock().is_ok_and(|m| tls::crl_expired(&m));
    why.explain(crl_expired)
}

fn identify(conn: &quinn::Connection) -> Result<PeerCert, String> {
    let certs = conn
        .peer_identity()
        .and_then(|i| i.downcast::<Vec<rustls_pki_types::CertificateDer<'static>>>().ok())
        .ok_or("no peer certificate")?;
    let first = certs.first().ok_or("no peer certificate")?;
    certs::parse_peer(first).map_err(|e| e.to_string())
}

pub(super) async fn dial_loop(
    endpoint: quinn::Endpoint,
    peer: PeerSpec,
    core: mpsc::Sender<CoreMsg>,
    events: broadcast::Sender<NodeEvent>,
    shared: Arc<Shared>,
) {
    let mut delay = shared.limits.reconnect_min_ms;
    loop {
        // Removed by the operator: no more dialling (a connection that runs ends first).
        if shared.configured.lock().is_ok_and(|c| !c.contains(&peer.node_id)) {
            return;
        }
        let changed = shared.changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        let connected = shared.connected.lock().map(|c| c.contains(&peer.node_id)).unwrap_or(false);
        if connected {
            // Connected, perhaps by the peer's own dial: wait until that changes, then redial at
            // once (a connection that ended is no reason to wait).
            let _ =
                tokio::time::timeout(Duration::from_millis(shared.limits.reconnect_max_ms), changed).await;
            delay = shared.limits.reconnect_min_ms;
            continue;
        }
        let address =
            shared.addresses.lock().ok().and_then(|a| a.get(&peer.node_id).copied()).unwrap_or(peer.address);
        let client = shared.client.lock().map(|c| c.clone()).ok();
        let attempt = match client {
            Some(client) => endpoint.connect_with(client, address, &certs::dns_name(&peer.node_id)),
            None => return,
        };
        let timeout = Duration::from_millis(shared.limits.handshake_timeout_ms);
        let result = match attempt {
            Ok(connecting) => match tokio::time::timeout(timeout, connecting).await {
                Ok(Ok(conn)) => Ok(conn),
                Ok(Err(e)) => Err(Refusal::of_connection(&e)),
                Err(_) => Err(Refusal::TimedOut),
            },
            Err(e) => Err(Refusal::Other(e.to_string())),
        };
        match result.and_then(|c| identify(&c).map(|p| (c, p)).map_err(Refusal::NotGodwit)) {
            Ok((conn, p)) if p.node_id == peer.node_id => {
                delay = shared.limits.reconnect_min_ms;
                match shared.admission.pending(std::time::Instant::now(), p.node_id) {
                    Ok(pending) => {
                        if let Err(e) =
                            run_conn(conn, p, shared.me, pending, core.clone(), shared.clone()).await
                        {
                            let reason = explain(&shared, &e);
                            debug!(%address, "refused by the peer: {reason}");
                            shared.note_error(peer.node_id, &reason);
                            let _ = events.send(NodeEvent::ConnectionRefused { remote: address, reason });
                        }
                    }
                    Err(reason) => {
                        shared.note_error(peer.node_id, &reason);
                        conn.close(3u32.into(), reason.as_bytes());
                        refused(&events, &shared, address, &Refusal::Admission(reason));
                    }
                }
            }
            Ok((conn, p)) => {
                shared.note_error(
                    peer.node_id,
                    &format!("at {address} answers another node, {}", p.node_id.short()),
                );
                conn.close(1u32.into(), b"unexpected NodeId");
                refused(
                    &events,
                    &shared,
                    peer.address,
                    &Refusal::PinMismatch { expected: peer.node_id, got: p.node_id },
                );
            }
            Err(e) => {
                let reason = explain(&shared, &e);
                debug!(%address, "cannot connect: {reason}");
                shared.note_error(peer.node_id, &reason);
                let _ = events.send(NodeEvent::ConnectionRefused { remote: address, reason });
            }
        }
        // Exponential back-off with full jitter.
        let wait = delay / 2 + OsRng.next_u64() % (delay / 2 + 1);
        tokio::time::sleep(Duration::from_millis(wait)).await;
        delay = (delay * 2).min(shared.limits.reconnect_max_ms);
    }
}

/// Runs one connection until it ends. The connection counts as established only once the
/// peer has opened its first stream: with TLS 1.3 a client finishes its handshake before the
/// server has checked the client certificate, so a refused client would otherwise believe it
/// was connected. Returns the refusal reason when the peer closed before that.
async fn run_conn(
    conn: quinn::Connection,
    peer: PeerCert,
    dialer: NodeId,
    pending: Pending,
    core: mpsc::Sender<CoreMsg>,
    shared: Arc<Shared>,
) -> Result<(), Refusal> {
    let id = shared.conn_ids.fetch_add(1, Ordering::Relaxed);
    let span = info_span!("peer", peer = %peer.node_id.short(), remote = %conn.remote_address(), conn = id);
    async {
        let node_id = peer.node_id;
        // The first exchange, within the handshake deadline: our three streams announced (a
        // peer that grants no stream credit or no flow-control window stalls here) and the
        // peer's first stream received. Until then the connection is only pending.
        let timeout = Duration::from_millis(shared.limits.handshake_timeout_ms);
        let (streams, first) = match tokio::time::timeout(timeout, first_exchange(&conn)).await {
            Ok(Ok(x)) => x,
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                conn.close(1u32.into(), b"first exchange not completed in time");
                return Err(Refusal::TimedOut);
            }
        };
        let _slot = match shared.admission.establish(pending) {
            Ok(slot) => slot,
            Err(reason) => {
                conn.close(3u32.into(), reason.as_bytes());
                return Err(Refusal::Admission(reason.into()));
            }
        };
        info!(role = ?peer.role, administration = %peer.administration, "connected");
        // The handshake checked the certificate's validity once; the connection must not
        // outlive it.
        let expiry_conn = conn.clone();
        // Why this node closes it, if it does: journalled with the disconnection.
        let closed: Arc<std::sync::OnceLock<String>> = Arc::default();
        let expiry_closed = closed.clone();
        let remaining =
            u64::try_from(peer.not_after.saturating_sub(super::now().as_millis() as i64 / 1000)).unwrap_or(0);
        let expiry = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(remaining)).await;
            let _ = expiry_closed.set("the peer's certificate expired".into());
            expiry_conn.close(9u32.into(), b"the peer's certificate expired");
        });
        let queued = Arc::new(AtomicUsize::new(0));
        let mut writers = tokio::task::JoinSet::new();
        let mut senders = Vec::new();
        for stream in streams {
            let (tx, rx) = tmpsc::channel(CONN_QUEUE_FRAMES);
            senders.push(tx);
            writers.spawn(write_stream(stream, rx, conn.clone(), queued.clone(), closed.clone()));
        }
        let Ok(tx) = <[_; 3]>::try_from(senders) else {
            return Err(Refusal::Other("stream setup failed".into()));
        };
        // What budgets allow towards one peer — the routine and the flash window in flight, and
        // the answer burst — twice over, plus room for control frames.
        let l = &shared.limits;
        let queue_cap = 2 * (2 * l.window_bytes + l.answer_bytes_burst as usize) + CONTROL_QUEUE_BYTES;
        let since = std::time::Instant::now();
        let serial = peer.serial.clone();
        let region = peer.region.clone();
        let handle = ConnHandle {
            id,
            since,
            serial,
            region,
            dialer,
            conn: conn.clone(),
            tx,
            queued,
            queue_cap,
            closed: closed.clone(),
        };
        if core.send(CoreMsg::Connected { peer: Box::new(peer), handle }).is_err() {
            expiry.abort();
            return Ok(());
        }
        let limits = shared.limits.clone();
        let budget = (2 * limits.max_frame_len.min(LIMITS.max_frame_len)).max(CONN_INBOUND_BYTES);
        let credit = Arc::new(tokio::sync::Semaphore::new(budget));
        let mut readers = tokio::task::JoinSet::new();
        readers.spawn(read_stream(first, node_id, id, core.clone(), limits.clone(), credit.clone()));
        let mut streams_opened = 1;
        let reason = loop {
            match conn.accept_uni().await {
                Ok(recv) => {
                    streams_opened += 1;
                    if streams_opened > MAX_STREAMS_PER_CONN {
                        warn!("closing: the peer opened more than {MAX_STREAMS_PER_CONN} streams");
                        conn.close(8u32.into(), b"too many streams");
                        break format!("the peer opened more than {MAX_STREAMS_PER_CONN} streams");
                    }
                    while readers.try_join_next().is_some() {}
                    readers.spawn(read_stream(
                        recv,
                        node_id,
                        id,
                        core.clone(),
                        limits.clone(),
                        credit.clone(),
                    ));
                }
                Err(e) => {
                    info!("disconnected: {e}");
                    break e.to_string();
                }
            }
        };
        writers.abort_all();
        expiry.abort();
        readers.abort_all();
        let _ = core.send(CoreMsg::Disconnected { peer: node_id, conn: id, reason });
        Ok(())
    }
    .instrument(span)
    .await
}

/// Opens this side's three streams (announced with their preamble) and waits for the peer's
/// first stream.
async fn first_exchange(
    conn: &quinn::Connection,
) -> Result<(Vec<quinn::SendStream>, quinn::RecvStream), Refusal> {
    let mut streams = Vec::new();
    for (class, prio) in [(0u8, 2), (1, 1), (2, 0)] {
        let mut s = conn.open_uni().await.map_err(|e| Refusal::of_connection(&e))?;
        let _ = s.set_priority(prio);
        // A stream is invisible to the peer until it carries data: announce it at once.
        s.write_all(&[STREAM_MAGIC, class]).await.map_err(|e| match e {
            quinn::WriteError::ConnectionLost(c) => Refusal::of_connection(&c),
            other => Refusal::Other(other.to_string()),
        })?;
        streams.push(s);
    }
    let first = conn.accept_uni().await.map_err(|e| Refusal::of_connection(&e))?;
    Ok((streams, first))
}

/// Room for control frames in a connection's outbound queues, beyond the message budgets.
const CONTROL_QUEUE_BYTES: usize = 8 << 20;

/// Writes the frames queued for one stream. A failed write (the peer stopped the stream or
/// vanished) ends the connection, so that both sides notice and reconnect cleanly.
async fn write_stream(
    mut stream: quinn::SendStream,
    mut rx: tmpsc::Receiver<Vec<u8>>,
    conn: quinn::Connection,
    queued: Arc<AtomicUsize>,
    closed: Arc<std::sync::OnceLock<String>>,
) {
    while let Some(body) = rx.recv().await {
        let mut buf = (body.len() as u32).to_be_bytes().to_vec();
        buf.extend_from_slice(&body);
        let written = stream.write_all(&buf).await;
        queued.fetch_sub(body.len(), Ordering::Relaxed);
        if let Err(e) = written {
            let _ = closed.set(format!("a write to the peer failed: {e}"));
            conn.close(7u32.into(), b"stream failed");
            return;
        }
    }
}

/// First byte of every stream (then its class, 0–2).
const STREAM_MAGIC: u8 = 0x67;

/// What each received frame costs of its connection's inbound budget beyond its length, so
/// that a flood of tiny frames is bounded too.
pub(super) const FRAME_CHARGE_BYTES: usize = 64;

/// Reads a frame body of `len` bytes, growing the buffer as data arrives rather than allocating
/// the announced length up front; `None` if the stream ends first.
async fn read_body(recv: &mut quinn::RecvStream, len: usize) -> Option<Vec<u8>> {
    let mut body = Vec::with_capacity(len.min(READ_CHUNK_BYTES));
    while body.len() < len {
        let chunk = recv.read_chunk(len - body.len(), true).await.ok()??;
        body.extend_from_slice(&chunk.bytes);
    }
    Some(body)
}

/// The first allocation for a frame body; it grows from there as data arrives.
const READ_CHUNK_BYTES: usize = 16 * 1024;

/// Reads length-prefixed frames from one stream. The length is checked before the body is
/// read; the body must then arrive within the frame read deadline.
async fn read_stream(
    mut recv: quinn::RecvStream,
    peer: NodeId,
    conn: u64,
    core: mpsc::Sender<CoreMsg>,
    limits: NetLimits,
    credit: Arc<tokio::sync::Semaphore>,
) {
    let max = limits.max_frame_len.min(LIMITS.max_frame_len);
    let mut preamble = [0u8; 2];
    if recv.read_exact(&mut preamble).await.is_err() || preamble[0] != STREAM_MAGIC || preamble[1] > 2 {
        let _ = recv.stop(5u32.into());
        return;
    }
    loop {
        let mut prefix = [0u8; FRAME_HEADER_LEN];
        if recv.read_exact(&mut prefix).await.is_err() {
            return;
        }
        let len = match frame_len(prefix, max) {
            Ok(n) => n,
            Err(e) => {
                let reason = if matches!(e, godwit_protocol::frame::FrameError::Oversize { .. }) {
                    RejectReason::Oversize
                } else {
                    RejectReason::Malformed
                };
                // The stream's framing is lost: stop it; the connection and its other streams go on.
                let _ = recv.stop(3u32.into());
                let _ = core.send(CoreMsg::Refuse { peer, conn, reason, detail: e.to_string() });
                return;
            }
        };
        // Inbound bytes waiting for the core are bounded per connection: reserve this frame's
        // share before reading it (QUIC flow control holds the peer back meanwhile); the core
        // gives it back once the frame is handled.
        let charge = len + FRAME_CHARGE_BYTES;
        match credit.acquire_many(u32::try_from(charge).unwrap_or(u32::MAX)).await {
            Ok(p) => p.forget(),
            Err(_) => return,
        }
        let deadline = Duration::from_millis(limits.frame_read_timeout_ms);
        match tokio::time::timeout(deadline, read_body(&mut recv, len)).await {
            Ok(Some(bytes)) => {
                let credit = credit.clone();
                if core.send(CoreMsg::Frame { peer, conn, bytes, credit, charge }).is_err() {
                    return;
                }
            }
            Ok(None) => {
                credit.add_permits(charge);
                return;
            }
            Err(_) => {
                credit.add_permits(charge);
                let _ = recv.stop(4u32.into());
                let detail = format!(
                    "frame body of {len} bytes not received within {} ms",
                    limits.frame_read_timeout_ms
                );
                let _ = core.send(CoreMsg::Refuse { peer, conn, reason: RejectReason::Malformed, detail });
                return;
            }
        }
    }
}

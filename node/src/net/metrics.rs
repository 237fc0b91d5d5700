//! Prometheus metrics, when `[metrics] listen` is set: served by `metrics-exporter-prometheus`
//! on a loopback address (a local agent scrapes it). Every series carries the node's label
//! `node` (the first characters of its NodeId). Names:
//!
//! | metric | kind | what |
//! | --- | --- | --- |
//! | `godwit_peers_connected` | gauge | peers connected now |
//! | `godwit_messages_authored_total` | counter | messages authored here, once durable |
//! | `godwit_messages_delivered_total` | counter | messages delivered into the inbox |
//! | `godwit_messages_refused_total` | counter | messages and frames refused, by `reason` (the §10 code) |
//! | `godwit_frames_sent_total` | counter | frames queued towards peers, by `class` |
//! | `godwit_frame_bytes_sent_total` | counter | their bytes, by `class` |
//! | `godwit_queued_bytes` | gauge | bytes queued towards peers and not yet handed to QUIC |
//! | `godwit_commit_seconds` | histogram | group commit latency (write, flush, fsync) |
//! | `godwit_store_bytes` | gauge | the store's size on disk |
//! | `godwit_storage_full` | gauge | 1 while new messages are refused for want of space |

use std::net::SocketAddr;

use metrics_exporter_prometheus::{ExporterFuture, PrometheusBuilder};

/// Installs the exporter on `listen` (which must be a loopback address). Returns the future
/// that serves it.
///
/// # Errors
/// Why it cannot be served.
pub(super) fn start(listen: SocketAddr) -> Result<ExporterFuture, String> {
    if !listen.ip().is_loopback() {
        return Err(format!(
            "metrics listen address {listen} is not a loopback address: metrics are served to a local agent only"
        ));
    }
    let (recorder, serve) = PrometheusBuilder::new()
        .with_http_listener(listen)
        .build()
        .map_err(|e| format!("cannot serve metrics on {listen}: {e}"))?;
    metrics::set_global_recorder(recorder)
        .map_err(|_| "metrics are already exported by another node in this process".to_string())?;
    Ok(serve)
}

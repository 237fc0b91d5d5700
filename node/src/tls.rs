//! TLS 1.3 for QUIC: mutual authentication against the network CA, CRLs, ALPN `godwit/1`,
//! 0-RTT off, ring as the only crypto provider.

use std::sync::Arc;
use std::time::Duration;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::RootCertStore;
use rustls::client::danger::ServerCertVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde::{Deserialize, Serialize};

/// The ALPN protocol id.
pub const ALPN: &[u8] = b"godwit/1";

/// Transport limits, all configurable (`[limits]` in the configuration file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetLimits {
    /// Largest frame body in bytes (at most the protocol's 4 MiB).
    pub max_frame_len: usize,
    /// Unidirectional streams a peer may open at once (3 are used: one per priority class).
    pub max_concurrent_streams: u32,
    /// Per-stream receive window in bytes.
    pub stream_receive_window: u32,
    /// Per-connection receive window in bytes.
    pub connection_receive_window: u32,
    /// Messages a peer may send per second, sustained.
    pub rate_per_sec: u32,
    /// Burst allowance.
    pub rate_burst: u32,
    /// Refused messages per minute before a peer is disconnected as abusive.
    pub abuse_limit: u32,
    /// Unacknowledged messages in flight per peer.
    pub window: usize,
    /// Unacknowledged envelope bytes in flight per peer (one message always fits).
    pub window_bytes: usize,
    /// Control frames (hello, reach, ack, reject, heads, crl) a peer may send per second.
    pub control_per_sec: u32,
    /// Control frames above the sustained rate.
    pub control_burst: u32,
    /// Envelope bytes a peer may send per second, sustained.
    pub bytes_per_sec: u64,
    /// Envelope bytes a peer may send above the sustained rate.
    pub bytes_burst: u64,
    /// Bytes per second a peer may make this node send in answer to its requests (wants and
    /// recovery), sustained.
    pub answer_bytes_per_sec: u64,
    /// Answer bytes above the sustained rate.
    pub answer_bytes_burst: u64,
    /// Envelope bytes one author may add to the store per day, sustained (authors this node
    /// does not know share one such budget).
    pub author_bytes_per_day: u64,
    /// Envelope bytes one author may add above the sustained rate.
    pub author_bytes_burst: u64,
    /// Envelope bytes the messages one peer passes on may add to the store per day (whoever
    /// authored them).
    pub peer_bytes_per_day: u64,
    /// Envelope bytes one peer's messages may add above the sustained rate.
    pub peer_bytes_burst: u64,
    /// Largest size of the store on disk in bytes before new messages are refused
    /// (`storage_full`); 0: no limit but the disk's free space.
    pub max_store_bytes: u64,
    /// Free space the disk of the data directory keeps: below it, new messages are refused
    /// (`storage_full`) rather than risk a write failing half-way.
    pub min_free_disk_bytes: u64,
    /// How long after its expiry what is left of a pruned message (its id, feed place and log
    /// position) is kept before it is removed too, in milliseconds.
    pub forget_expired_after_ms: u64,
    /// How long a feed's gap stays open, its peers asked, before `godwit status` warns of it as
    /// one no peer fills, in milliseconds.
    pub gap_warn_after_ms: u64,
    /// How long a flash message this node sent may go without a read receipt from a recipient
    /// before it is flagged for escalation, in milliseconds.
    pub escalate_after_ms: u64,
    /// How often this node signs a checkpoint of its audit log (when entries were added) and
    /// shows it to its peers, in milliseconds.
    pub checkpoint_every_ms: u64,
    /// Cosignatures from peers a checkpoint needs to count as witnessed.
    pub audit_cosignatures: u32,
    /// Time allowed for the QUIC + TLS handshake, in milliseconds.
    pub handshake_timeout_ms: u64,
    /// Once a frame's length has arrived, time allowed for its body, in milliseconds.
    pub frame_read_timeout_ms: u64,
    /// A connection with no traffic for this long is closed, in milliseconds.
    pub idle_timeout_ms: u64,
    /// Keep-alive interval, in milliseconds (below the idle timeout).
    pub keep_alive_ms: u64,
    /// Most simultaneous peer connections.
    pub max_peers: usize,
    /// First reconnect delay in milliseconds (doubles up to `reconnect_max_ms`, with jitter).
    pub reconnect_min_ms: u64,
    /// Longest reconnect delay in milliseconds.
    pub reconnect_max_ms: u64,
}

impl Default for NetLimits {
    fn default() -> Self {
        NetLimits {
            max_frame_len: godwit_protocol::LIMITS.max_frame_len,
            max_concurrent_streams: 8,
            stream_receive_window: 8 * 1024 * 1024,
            connection_receive_window: 32 * 1024 * 1024,
            rate_per_sec: 500,
            rate_burst: 2_000,
            abuse_limit: 100,
            window: 256,
            window_bytes: 16 << 20,
            control_per_sec: 2_000,
            control_burst: 8_000,
            bytes_per_sec: 16 << 20,
            bytes_burst: 64 << 20,
            answer_bytes_per_sec: 4 << 20,
            answer_bytes_burst: 16 << 20,
            author_bytes_per_day: 1 << 30,
            author_bytes_burst: 1 << 30,
            peer_bytes_per_day: 16 << 30,
            peer_bytes_burst: 16 << 30,
            max_store_bytes: 0,
            min_free_disk_bytes: 256 << 20,
            forget_expired_after_ms: 7 * 86_400_000,
            gap_warn_after_ms: 10 * 60_000,
            escalate_after_ms: 30 * 60_000,
            checkpoint_every_ms: 60_000,
            audit_cosignatures: 1,
            handshake_timeout_ms: 10_000,
            frame_read_timeout_ms: 30_000,
            idle_timeout_ms: 5_000,
            keep_alive_ms: 1_000,
            max_peers: 512,
            reconnect_min_ms: 200,
            reconnect_max_ms: 30_000,
        }
    }
}

/// Why TLS could not be configured.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// The verifier could not be built (e.g. an unparseable CRL).
    #[error("certificate verifier: {0}")]
    Verifier(String),
    /// QUIC refused the TLS configuration.
    #[error("QUIC TLS configuration: {0}")]
    Quic(String),
}

/// A node's TLS material.
#[derive(Debug)]
pub struct TlsMaterial {
    /// The network CA (trust anchor).
    pub ca: CertificateDer<'static>,
    /// This node's certificate.
    pub cert: CertificateDer<'static>,
    /// This node's identity key, PKCS#8.
    pub key: PrivatePkcs8KeyDer<'static>,
    /// The current revocation list, if any.
    pub crl: Option<CertificateRevocationListDer<'static>>,
}

impl Clone for TlsMaterial {
    fn clone(&self) -> Self {
        TlsMaterial {
            ca: self.ca.clone(),
            cert: self.cert.clone(),
            key: self.key.clone_key(),
            crl: self.crl.clone(),
        }
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn roots(m: &TlsMaterial) -> Result<Arc<RootCertStore>, TlsError> {
    let mut roots = RootCertStore::empty();
    roots.add(m.ca.clone())?;
    Ok(Arc::new(roots))
}

fn transport(l: &NetLimits) -> Arc<quinn::TransportConfig> {
    let mut t = quinn::TransportConfig::default();
    t.max_concurrent_uni_streams(l.max_concurrent_streams.into());
    t.max_concurrent_bidi_streams(0u32.into());
    t.stream_receive_window(l.stream_receive_window.into());
    t.receive_window(l.connection_receive_window.into());
    t.max_idle_timeout(Duration::from_millis(l.idle_timeout_ms).try_into().ok());
    t.keep_alive_interval(Some(Duration::from_millis(l.keep_alive_ms)));
    Arc::new(t)
}

/// The server side: requires a client certificate from the network CA, checks the CRL
/// (an expired CRL is an error).
///
/// # Errors
/// [`TlsError`].
pub fn server_config(m: &TlsMaterial, l: &NetLimits) -> Result<quinn::ServerConfig, TlsError> {
    let mut verifier = WebPkiClientVerifier::builder_with_provider(roots(m)?, provider());
    if let Some(crl) = &m.crl {
        verifier = verifier.with_crls([crl.clone()]).enforce_revocation_expiration();
    }
    let verifier = verifier.build().map_err(|e| TlsError::Verifier(e.to_string()))?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![m.cert.clone()], PrivateKeyDer::Pkcs8(m.key.clone_key()))?;
    cfg.alpn_protocols = vec![ALPN.to_vec()];
    cfg.max_early_data_size = 0;
    // No session resumption: a resumed session would skip the client certificate and
    // revocation checks that every connection must pass.
    cfg.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    cfg.send_tls13_tickets = 0;
    let quic = QuicServerConfig::try_from(cfg).map_err(|e| TlsError::Quic(e.to_string()))?;
    let mut sc = quinn::ServerConfig::with_crypto(Arc::new(quic));
    sc.transport_config(transport(l));
    Ok(sc)
}

/// The client side: presents this node's certificate, verifies the server against the network
/// CA, its NodeId-derived name and the CRL.
///
/// # Errors
/// [`TlsError`].
pub fn client_config(m: &TlsMaterial, l: &NetLimits) -> Result<quinn::ClientConfig, TlsError> {
    let mut verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(roots(m)?, provider());
    if let Some(crl) = &m.crl {
        verifier = verifier.with_crls([crl.clone()]).enforce_revocation_expiration();
    }
    let verifier = verifier.build().map_err(|e| TlsError::Verifier(e.to_string()))?;
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_webpki_verifier(verifier)
        .with_client_auth_cert(vec![m.cert.clone()], PrivateKeyDer::Pkcs8(m.key.clone_key()))?;
    cfg.alpn_protocols = vec![ALPN.to_vec()];
    cfg.enable_early_data = false;
    cfg.resumption = rustls::client::Resumption::disabled();
    let quic = QuicClientConfig::try_from(cfg).map_err(|e| TlsError::Quic(e.to_string()))?;
    let mut cc = quinn::ClientConfig::new(Arc::new(quic));
    cc.transport_config(transport(l));
    Ok(cc)
}

/// Why a connection attempt failed, classified from the transport's typed error (the TLS
/// alert code and which side sent it), never from message text.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// This node refused the peer's certificate with this TLS alert.
    WeRefused(u8),
    /// The peer refused this node's certificate (or the handshake) with this TLS alert.
    PeerRefused(u8),
    /// The handshake or the first exchange did not complete in time.
    TimedOut,
    /// The peer ended the connection with a reason of its own (e.g. it is full, or this node
    /// was dropped as abusive).
    ClosedByPeer(String),
    /// The dialled address answered with another node than the one configured there.
    PinMismatch {
        /// The NodeId configured.
        expected: godwit_protocol::identity::NodeId,
        /// The NodeId of the certificate presented.
        got: godwit_protocol::identity::NodeId,
    },
    /// The certificate chains to the network CA but is not a Godwit node certificate.
    NotGodwit(String),
    /// This node's admission control refused it (rate, slots, a ban).
    Admission(String),
    /// Anything else the transport reported.
    Other(String),
}

/// QUIC carries a TLS alert as transport error code 0x100 + alert (RFC 9001 §4.8).
fn alert_of(code: quinn::TransportErrorCode) -> Option<u8> {
    let c = u64::from(code);
    (0x100..=0x1ff).contains(&c).then(|| (c - 0x100) as u8)
}

impl Refusal {
    /// Classifies a connection error.
    pub fn of_connection(e: &quinn::ConnectionError) -> Refusal {
        use quinn::ConnectionError as E;
        match e {
            E::TransportError(t) => {
                alert_of(t.code).map_or(Refusal::Other(e.to_string()), Refusal::WeRefused)
            }
            E::ConnectionClosed(c) => {
                alert_of(c.error_code).map_or(Refusal::Other(e.to_string()), Refusal::PeerRefused)
            }
            E::ApplicationClosed(c) => Refusal::ClosedByPeer(String::from_utf8_lossy(&c.reason).into_owned()),
            E::TimedOut => Refusal::TimedOut,
            other => Refusal::Other(other.to_string()),
        }
    }

    /// A reason an operator can act on. `crl_expired`: whether this node's own revocation list
    /// has expired (a webpki refusal for it and for an unknown issuer share one alert).
    pub fn explain(&self, crl_expired: bool) -> String {
        // TLS alerts (RFC 8446 §6): 42 bad certificate, 44 revoked, 45 expired (or not yet
        // valid), 46 certificate unknown, 48 unknown CA, 51 decrypt error (a bad signature),
        // 116 certificate required.
        match self {
            Refusal::WeRefused(44) => "the peer's certificate is revoked by the network CA's revocation list".into(),
            Refusal::PeerRefused(44) => "the peer refused this node's certificate as revoked by the network CA".into(),
            Refusal::WeRefused(45) => "the peer's certificate has expired or is not valid yet: it needs a renewed certificate from the network CA, or one of the two clocks is wrong".into(),
            Refusal::PeerRefused(45) => "the peer refused this node's certificate as expired or not valid yet: renew it with the network CA, or check both clocks".into(),
            Refusal::WeRefused(48) if crl_expired => "the revocation list has expired: install the network CA's current CRL".into(),
            Refusal::WeRefused(48 | 51) => "the peer's certificate is not issued by this network's CA (wrong network, or a forged certificate)".into(),
            Refusal::PeerRefused(48 | 51) => "the peer does not accept this node's certificate as one of its network's (another network's CA, or its revocation list has expired)".into(),
            Refusal::WeRefused(116) => "the peer presented no client certificate: every node must authenticate with its network certificate".into(),
            Refusal::WeRefused(42) => "the peer is not the node this one is pinned to (its NodeId differs from the configured pin), or its certificate is unusable".into(),
            Refusal::PeerRefused(42 | 46) => "the peer refused this node's certificate (not yet valid, or unusable): check the certificate's dates and both clocks".into(),
            Refusal::WeRefused(a) => format!("this node refused the peer's handshake (TLS alert {a})"),
            Refusal::PeerRefused(a) => format!("the peer refused this node's handshake (TLS alert {a})"),
            Refusal::TimedOut => "the handshake timed out: the peer is unreachable or too slow".into(),
            Refusal::ClosedByPeer(r) => format!("the peer closed the connection: {r}"),
            Refusal::PinMismatch { expected, got } => format!(
                "the peer is not the node this one is pinned to: its NodeId differs from the configured pin (expected {expected}, got {got})"
            ),
            Refusal::NotGodwit(e) => format!("not a Godwit node certificate: {e}"),
            Refusal::Admission(r) => r.clone(),
            Refusal::Other(e) => format!("the TLS handshake failed ({e})"),
        }
    }
}

/// Whether a revocation list (DER) is past its next update.
pub fn crl_expired(m: &TlsMaterial) -> bool {
    use x509_parser::prelude::FromDer;
    let Some(der) = &m.crl else { return false };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    x509_parser::revocation_list::CertificateRevocationList::from_der(der)
        .ok()
        .and_then(|(_, crl)| crl.next_update().map(|t| t.timestamp() <= now))
        .unwrap_or(false)
}

/// Checks a revocation list before installing it: parseable, not expired, and signed by the
/// network CA (checked by verifying this node's own certificate against it with webpki, which
/// rejects a CRL whose signature does not verify). A list that revokes this node itself is
/// still authentic. Returns its CRL number and revoked serials.
///
/// # Errors
/// A reason naming what is wrong with the list.
pub fn check_crl(
    m: &TlsMaterial,
    der: &[u8],
    me: &godwit_protocol::identity::NodeId,
) -> Result<(u64, Vec<Vec<u8>>), String> {
    use x509_parser::prelude::FromDer;
    let (number, revoked) = crate::certs::crl_info(der).map_err(|e| e.to_string())?;
    let (_, crl) = x509_parser::revocation_list::CertificateRevocationList::from_der(der)
        .map_err(|e| format!("unparseable CRL: {e}"))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    match crl.next_update() {
        Some(t) if t.timestamp() > now => {}
        _ => return Err(format!("revocation list number {number} has expired or has no next update")),
    }
    let crl_der = CertificateRevocationListDer::from(der.to_vec());
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
        roots(m).map_err(|e| e.to_string())?,
        provider(),
    )
    .with_crls([crl_der])
    .build()
    .map_err(|e| e.to_string())?;
    let name =
        rustls_pki_types::ServerName::try_from(crate::certs::dns_name(me)).map_err(|e| e.to_string())?;
    let res = verifier.verify_server_cert(&m.cert, &[], &name, &[], rustls_pki_types::UnixTime::now());
    match res {
        Ok(_) | Err(rustls::Error::InvalidCertificate(rustls::CertificateError::Revoked)) => {
            Ok((number, revoked))
        }
        Err(e) => Err(format!("revocation list number {number} is not valid for this network: {e}")),
    }
}

/// Checks a node certificate received other than in a handshake (a hub vouching for its members, a
/// node card; DESIGN §3): issued by the network CA, valid now, not
/// revoked by the installed list, a Godwit node certificate. Returns what it says.
///
/// # Errors
/// A reason naming what is wrong with it.
pub fn check_node_cert(m: &TlsMaterial, der: &[u8]) -> Result<crate::certs::PeerCert, String> {
    let mut verifier =
        WebPkiClientVerifier::builder_with_provider(roots(m).map_err(|e| e.to_string())?, provider());
    if let Some(crl) = &m.crl {
        verifier = verifier.with_crls([crl.clone()]);
    }
    let verifier = verifier.build().map_err(|e| e.to_string())?;
    let cert = CertificateDer::from(der.to_vec());
    verifier
        .verify_client_cert(&cert, &[], rustls_pki_types::UnixTime::now())
        .map_err(|e| format!("not a valid certificate of this network: {e}"))?;
    crate::certs::parse_peer(der).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certs::{Authority, NodeAttrs, pkcs8};
    use godwit_protocol::identity::IdentityKey;
    use godwit_protocol::identity::Role;

    const DAY: u64 = 86_400_000;

    fn material(ca: &Authority, t: u64) -> (TlsMaterial, IdentityKey) {
        let key = IdentityKey::from_seed(&[8; 32]);
        let attrs = NodeAttrs {
            administration: "X".into(),
            country: "KE".parse().unwrap(),
            region: "ESA".into(),
            role: Role::Member,
        };
        let cert = ca.issue(&key, &attrs, 3, t - DAY, t + DAY).unwrap();
        (TlsMaterial { ca: ca.cert_der(), cert: cert.der, key: pkcs8(&key), crl: None }, key)
    }

    #[test]
    fn crls_from_another_ca_or_expired_are_refused() {
        let t = crate::net::now().as_millis();
        let ca = Authority::new("CA", t - DAY, t + DAY).unwrap();
        let rogue = Authority::new("CA", t - DAY, t + DAY).unwrap();
        let (m, key) = material(&ca, t);
        assert_eq!(check_crl(&m, &ca.crl(4, &[9], t - 1000, t + DAY).unwrap(), &key.node_id()).unwrap().0, 4);
        let self_revoking = ca.crl(5, &[3], t - 1000, t + DAY).unwrap();
        assert!(
            check_crl(&m, &self_revoking, &key.node_id()).is_ok(),
            "a list revoking this node is still authentic"
        );
        let e = check_crl(&m, &rogue.crl(6, &[], t - 1000, t + DAY).unwrap(), &key.node_id()).unwrap_err();
        assert!(e.contains("not valid for this network"), "{e}");
        let e = check_crl(&m, &ca.crl(7, &[], t - 2 * DAY, t - DAY).unwrap(), &key.node_id()).unwrap_err();
        assert!(e.contains("expired"), "{e}");
        assert!(check_crl(&m, b"garbage", &key.node_id()).is_err());
    }

    #[test]
    fn refusals_are_classified_by_their_alert_and_side() {
        use quinn::{ConnectionError, TransportErrorCode};
        let local = |alert: u8| {
            let mut t = quinn_proto::TransportError::from(TransportErrorCode::crypto(alert));
            t.reason = "any text at all".into();
            Refusal::of_connection(&ConnectionError::TransportError(t))
        };
        assert_eq!(local(44), Refusal::WeRefused(44));
        assert!(local(44).explain(false).contains("revoked"));
        assert!(local(45).explain(false).contains("has expired or is not valid yet"));
        assert!(local(48).explain(false).contains("not issued by this network's CA"));
        assert!(local(48).explain(true).contains("revocation list has expired"));
        assert!(local(116).explain(false).contains("no client certificate"));
        assert_eq!(Refusal::of_connection(&ConnectionError::TimedOut), Refusal::TimedOut);
        let other = Refusal::of_connection(&ConnectionError::TransportError(
            quinn_proto::TransportError::from(TransportErrorCode::PROTOCOL_VIOLATION),
        ));
        assert!(matches!(other, Refusal::Other(_)), "{other:?}");
        assert!(other.explain(false).starts_with("the TLS handshake failed"));
    }
}

//! The node library's errors: typed, each naming the problem and what to do about it.

use std::net::SocketAddr;
use std::path::PathBuf;

use godwit_protocol::relay::{PublishError, RelayError};

use crate::store::StoreError;
use crate::tls::TlsError;

/// Why the node could not start or could not do what it was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The data directory could not be created.
    #[error("cannot create the data directory {}: {source}", path.display())]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The store could not be opened.
    #[error("cannot open the store in {} (is another godwitd using this data directory?): {source}", path.display())]
    OpenStore {
        /// The data directory.
        path: PathBuf,
        /// The error.
        source: StoreError,
    },
    /// Reading the store failed.
    #[error("cannot read the store: {0}")]
    Store(#[from] StoreError),
    /// The TLS configuration could not be built.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// This node's own certificate is not a Godwit node certificate.
    #[error("this node's certificate: {0}")]
    OwnCertificate(#[source] crate::certs::CertError),
    /// Metrics cannot be served.
    #[error("metrics on {listen}: {reason}")]
    Metrics {
        /// The address configured.
        listen: std::net::SocketAddr,
        /// Why.
        reason: String,
    },
    /// This node's encryption keys cannot be read.
    #[error("encryption keys: {0}")]
    Keys(String),
    /// The admin socket cannot be set up.
    #[error("admin socket {}: {reason}", path.display())]
    AdminSocket {
        /// Its path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// The relay thread could not be started.
    #[error("cannot start the relay thread: {0}")]
    Thread(std::io::Error),
    /// No async runtime is running for QUIC.
    #[error("no async runtime for QUIC: start the node inside a tokio runtime")]
    NoRuntime,
    /// Publishing was refused.
    #[error(transparent)]
    Publish(#[from] PublishError<StoreError>),
    /// The node stopped before what was asked was durable.
    #[error("not stored durably ({0}); the node stopped")]
    NotDurable(String),
    /// A revocation list was refused.
    #[error("revocation list refused: {0}")]
    Crl(String),
    /// The node is shutting down (or has stopped).
    #[error("the node is shutting down")]
    ShuttingDown,
}

impl From<RelayError<StoreError>> for NodeError {
    fn from(e: RelayError<StoreError>) -> Self {
        match e {
            RelayError::Store(s) => NodeError::Store(s),
            // Non-exhaustive: any further relay failure is a storage failure today.
            #[allow(unreachable_patterns)]
            other => NodeError::NotDurable(other.to_string()),
        }
    }
}

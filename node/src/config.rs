//! `godwitd.toml`: the node's configuration file. Unknown keys are refused; every limit has a
//! documented default (`docs/operations.md`).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use godwit_protocol::identity::NodeId;
use godwit_protocol::ids::ChannelId;
use godwit_protocol::relay::{ChannelConfig, RelayConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer};
use serde::Deserialize;

use crate::certs;
use crate::net::{NodeSpec, PeerSpec};
use crate::tls::{NetLimits, TlsMaterial};

/// Why a configuration could not be loaded; each names the file or field and the problem.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read the configuration file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not a valid configuration (names the key or value).
    #[error("{} is not a valid godwitd configuration: {source}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The error.
        source: Box<toml::de::Error>,
    },
    /// The data directory could not be created.
    #[error("cannot create the data directory {}: {source}", path.display())]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The identity key could not be read.
    #[error(transparent)]
    Key(#[from] godwit_certs::keyfile::KeyFileError),
    /// A PEM file could not be read.
    #[error("cannot read the {what} {}: {source}", path.display())]
    Pem {
        /// Which file (CA certificate, node certificate, CRL).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The error.
        source: rustls_pki_types::pem::Error,
    },
    /// The node certificate is not a Godwit node certificate.
    #[error("{} is not a Godwit node certificate: {source}", path.display())]
    NotNodeCertificate {
        /// The file.
        path: PathBuf,
        /// The error.
        source: certs::CertError,
    },
    /// The certificate and the identity key are for different nodes.
    #[error("the certificate {} is for NodeId {cert_id}, but the identity key {} is NodeId {key_id}", cert.display(), key.display())]
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// Its NodeId.
        cert_id: NodeId,
        /// The key file.
        key: PathBuf,
        /// Its NodeId.
        key_id: NodeId,
    },
    /// A field's value is not valid.
    #[error("{field}: {detail}")]
    Field {
        /// The field, e.g. `channels[0].members[2]`.
        field: String,
        /// What is wrong.
        detail: String,
    },
}

/// The configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// This node.
    pub node: NodeSection,
    /// Certificates.
    pub tls: TlsSection,
    /// Transport limits.
    #[serde(default)]
    pub limits: NetLimits,
    /// Peers to dial.
    #[serde(default)]
    pub peers: Vec<PeerSection>,
    /// Statically configured channels, for closed test networks (signed channels need none).
    #[serde(default)]
    pub channels: Vec<ChannelSection>,
    /// For hubs: the members served.
    #[serde(default)]
    pub hub: HubSection,
    /// What happens when a flash message arrives.
    #[serde(default)]
    pub alerts: AlertsSection,
    /// Prometheus metrics.
    #[serde(default)]
    pub metrics: MetricsSection,
    /// Local accounts and the officers or roles messages may be addressed to.
    #[serde(default)]
    pub accounts: Vec<AccountSection>,
}

/// `[[accounts]]`: an OS user of the admin socket and what it is addressed as.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountSection {
    /// Its OS uid.
    pub uid: u32,
    /// The officers or roles it stands for, e.g. "head of the intelligence unit".
    pub roles: Vec<String>,
}

/// `[metrics]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSection {
    /// Where to serve them (a loopback address, e.g. `127.0.0.1:9464`); unset: not served.
    pub listen: Option<SocketAddr>,
}

/// `[alerts]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsSection {
    /// A local command run for each flash message delivered here, with the message id, the
    /// channel id (or `direct`) and the author's NodeId as arguments — never the content.
    pub command: Option<PathBuf>,
}

/// `[node]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSection {
    /// Data directory (the store lives in `<data_dir>/store`).
    pub data_dir: PathBuf,
    /// UDP address to listen on, e.g. `0.0.0.0:7400`.
    pub listen: SocketAddr,
    /// The identity key file (hex seed, mode 0600); relative paths are under `data_dir`.
    #[serde(default = "default_key")]
    pub identity_key: PathBuf,
    /// The group that may use the admin socket (`admin.sock` in `data_dir`, mode 0660); empty:
    /// godwitd's own group.
    #[serde(default = "default_admin_group")]
    pub admin_group: String,
    /// Start in recovering mode (after restoring the data directory from a backup).
    #[serde(default)]
    pub recovering: bool,
    /// Rotate the encryption key after this many days in use (a new card announces the new
    /// key; the old one is kept to open what was sealed to it); 0: only on `godwit keys rotate`.
    #[serde(default = "default_rotate_days")]
    pub encryption_rotate_days: u32,
}

fn default_rotate_days() -> u32 {
    90
}

/// The encryption key file in the data directory.
pub const ENCRYPTION_KEY: &str = "encryption.key";

fn default_admin_group() -> String {
    "godwit".into()
}

fn default_key() -> PathBuf {
    PathBuf::from("identity.key")
}

/// `[tls]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// The network CA certificate (PEM).
    pub ca: PathBuf,
    /// This node's certificate (PEM).
    pub certificate: PathBuf,
    /// The network CA's revocation list (PEM), if any.
    pub crl: Option<PathBuf>,
}

/// `[[peers]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerSection {
    /// The peer's NodeId: its certificate must match (the pin).
    pub node_id: String,
    /// Where it listens (`ip:port`).
    pub address: SocketAddr,
}

/// `[[channels]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelSection {
    /// The channel id (64 hex digits).
    pub id: String,
    /// Member NodeIds.
    pub members: Vec<String>,
    /// A name operators use for it (e.g. "RILO ESA alerts").
    #[serde(default)]
    pub name: String,
    /// The current epoch.
    #[serde(default = "one")]
    pub epoch: u64,
    /// The epoch key file (64 hex digits, 0600; `godwit channel-key --out FILE` makes one), when
    /// this node reads or writes the channel; relative paths are under `data_dir`. Until channel
    /// management lands, members share it out of band.
    pub key_file: Option<PathBuf>,
}

fn one() -> u64 {
    1
}

/// `[hub]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubSection {
    /// NodeIds of the members this hub serves.
    #[serde(default)]
    pub serves: Vec<String>,
}

impl Config {
    /// Reads and checks a configuration file.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file and the problem.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse { path: path.to_owned(), source: Box::new(e) })
    }

    /// Loads keys and certificates and builds what [`crate::net::Node::start`] needs.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file or field and the problem.
    pub fn into_spec(self) -> Result<NodeSpec, ConfigError> {
        crate::files::create_private_dir(&self.node.data_dir)
            .map_err(|source| ConfigError::DataDir { path: self.node.data_dir.clone(), source })?;
        let key_path = if self.node.identity_key.is_absolute() {
            self.node.identity_key.clone()
        } else {
            self.node.data_dir.join(&self.node.identity_key)
        };
        let identity = read_identity(&key_path)?;
        // The encryption key is the node's own business: made on first start if missing.
        let enc_path = self.node.data_dir.join(ENCRYPTION_KEY);
        let encryption = if enc_path.exists() {
            godwit_certs::keyfile::read_encryption(&enc_path)?
        } else {
            let k = godwit_protocol::identity::EncryptionKey::generate(&mut rand_core::OsRng);
            godwit_certs::keyfile::write_encryption(&enc_path, &k)?;
            tracing::info!(path = %enc_path.display(), "encryption key created (mode 0600)");
            k
        };
        fn pem(what: &'static str, path: &Path) -> impl FnOnce(rustls_pki_types::pem::Error) -> ConfigError {
            let path = path.to_owned();
            move |source| ConfigError::Pem { what, path, source }
        }
        let ca = CertificateDer::from_pem_file(&self.tls.ca).map_err(pem("CA certificate", &self.tls.ca))?;
        let cert = CertificateDer::from_pem_file(&self.tls.certificate)
            .map_err(pem("node certificate", &self.tls.certificate))?;
        let crl = match &self.tls.crl {
            Some(p) => Some(CertificateRevocationListDer::from_pem_file(p).map_err(pem("CRL", p))?),
            None => None,
        };
        let own = certs::parse_peer(&cert).map_err(|source| ConfigError::NotNodeCertificate {
            path: self.tls.certificate.clone(),
            source,
        })?;
        if own.node_id != identity.node_id() {
            return Err(ConfigError::KeyMismatch {
                cert: self.tls.certificate.clone(),
                cert_id: own.node_id,
                key: key_path,
                key_id: identity.node_id(),
            });
        }
        let mut relay = RelayConfig::new(identity.node_id(), own.role);
        let mut channel_keys = Vec::new();
        relay.recovering = self.node.recovering;
        for (i, c) in self.channels.iter().enumerate() {
            let id: ChannelId = c.id.parse().map_err(|e| field(format!("channels[{i}].id"), e))?;
            let members = ids(&c.members, &format!("channels[{i}].members"))?;
            relay.channels.push(ChannelConfig { id, members });
            if let Some(f) = &c.key_file {
                let path = if f.is_absolute() { f.clone() } else { self.node.data_dir.join(f) };
                let key = godwit_certs::keyfile::read_channel_key(&path)?;
                let name = if c.name.is_empty() { id.to_string() } else { c.name.clone() };
                channel_keys.push(crate::net::ChannelKeySpec {
                    id,
                    name,
                    epoch: c.epoch,
                    key: godwit_protocol::crypto::EpochKey::from_bytes(*key),
                });
            }
        }
        relay.serves = ids(&self.hub.serves, "hub.serves")?;
        let peers = self
            .peers
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let node_id = p.node_id.parse().map_err(|e| field(format!("peers[{i}].node_id"), e))?;
                Ok(PeerSpec { node_id, address: p.address })
            })
            .collect::<Result<Vec<_>, ConfigError>>()?;
        Ok(NodeSpec {
            tls: TlsMaterial { ca, cert, key: certs::pkcs8(&identity), crl },
            identity,
            encryption,
            channel_keys,
            listen: self.node.listen,
            data_dir: self.node.data_dir,
            relay,
            peers,
            limits: self.limits,
            admin_group: Some(self.node.admin_group.clone()).filter(|g| !g.is_empty()),
            encryption_rotate_ms: (self.node.encryption_rotate_days > 0)
                .then(|| u64::from(self.node.encryption_rotate_days) * 86_400_000),
            alert_command: self.alerts.command,
            metrics: self.metrics.listen,
            accounts: self
                .accounts
                .into_iter()
                .map(|a| crate::net::Account { uid: a.uid, roles: a.roles })
                .collect(),
        })
    }
}

fn ids(list: &[String], name: &str) -> Result<BTreeSet<NodeId>, ConfigError> {
    list.iter()
        .enumerate()
        .map(|(i, s)| s.parse().map_err(|e| field(format!("{name}[{i}] ({s:?})"), e)))
        .collect()
}

fn field(field: String, e: impl std::fmt::Display) -> ConfigError {
    ConfigError::Field { field, detail: e.to_string() }
}

pub use godwit_certs::keyfile::{read_identity, write_identity};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_unknown_keys_by_name() {
        let e = toml::from_str::<Config>(
            "[node]\ndata_dir='/x'\nlisten='127.0.0.1:1'\ncolour='blue'\n[tls]\nca='a'\ncertificate='b'\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("unknown field `colour`"), "{e}");
    }

    #[test]
    fn limits_default_and_can_be_lowered() {
        let c: Config = toml::from_str(
            "[node]\ndata_dir='/x'\nlisten='127.0.0.1:1'\n[tls]\nca='a'\ncertificate='b'\n[limits]\nmax_peers = 3\n",
        )
        .unwrap();
        assert_eq!(c.limits.max_peers, 3);
        assert_eq!(c.limits.window, NetLimits::default().window);
    }
}

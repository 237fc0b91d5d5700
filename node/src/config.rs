//! `godwitd.toml`: the node's configuration file. Unknown keys are refused; every limit has a
//! documented default (`docs/operations.md`).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use godwit_protocol::identity::NodeId;
use godwit_protocol::ids::ChannelId;
use godwit_protocol::relay::{ChannelConfig, RelayConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer};
use serde::Deserialize;

use crate::certs;
use crate::net::{NodeSpec, PeerSpec};
use crate::tls::{NetLimits, TlsMaterial};

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
    /// Channels (static membership until channel state lands).
    #[serde(default)]
    pub channels: Vec<ChannelSection>,
    /// For hubs: the members served.
    #[serde(default)]
    pub hub: HubSection,
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
    /// Start in recovering mode (after restoring the data directory from a backup).
    #[serde(default)]
    pub recovering: bool,
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
    /// A message naming the file and the problem.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the configuration file {}", path.display()))?;
        toml::from_str(&text)
            .with_context(|| format!("{} is not a valid godwitd configuration", path.display()))
    }

    /// Loads keys and certificates and builds what [`crate::net::Node::start`] needs.
    ///
    /// # Errors
    /// A message naming the file or field and the problem.
    pub fn into_spec(self) -> Result<NodeSpec> {
        crate::files::create_private_dir(&self.node.data_dir)
            .with_context(|| format!("cannot create the data directory {}", self.node.data_dir.display()))?;
        let key_path = if self.node.identity_key.is_absolute() {
            self.node.identity_key.clone()
        } else {
            self.node.data_dir.join(&self.node.identity_key)
        };
        let identity = read_identity(&key_path)?;
        let ca = CertificateDer::from_pem_file(&self.tls.ca)
            .with_context(|| format!("cannot read the CA certificate {}", self.tls.ca.display()))?;
        let cert = CertificateDer::from_pem_file(&self.tls.certificate).with_context(|| {
            format!("cannot read the node certificate {}", self.tls.certificate.display())
        })?;
        let crl = match &self.tls.crl {
            Some(p) => Some(
                CertificateRevocationListDer::from_pem_file(p)
                    .with_context(|| format!("cannot read the CRL {}", p.display()))?,
            ),
            None => None,
        };
        let own = certs::parse_peer(&cert).with_context(|| {
            format!("{} is not a Godwit node certificate", self.tls.certificate.display())
        })?;
        if own.node_id != identity.node_id() {
            bail!(
                "the certificate {} is for NodeId {}, but the identity key {} is NodeId {}",
                self.tls.certificate.display(),
                own.node_id,
                key_path.display(),
                identity.node_id()
            );
        }
        let mut relay = RelayConfig::new(identity.node_id(), own.role);
        relay.recovering = self.node.recovering;
        for (i, c) in self.channels.iter().enumerate() {
            let id: ChannelId = c.id.parse().with_context(|| format!("channels[{i}].id"))?;
            let members = ids(&c.members, &format!("channels[{i}].members"))?;
            relay.channels.push(ChannelConfig { id, members });
        }
        relay.serves = ids(&self.hub.serves, "hub.serves")?;
        let peers = self
            .peers
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let node_id = p.node_id.parse().with_context(|| format!("peers[{i}].node_id"))?;
                Ok(PeerSpec { node_id, address: p.address })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(NodeSpec {
            tls: TlsMaterial { ca, cert, key: certs::pkcs8(&identity), crl },
            identity,
            listen: self.node.listen,
            data_dir: self.node.data_dir,
            relay,
            peers,
            limits: self.limits,
        })
    }
}

fn ids(list: &[String], field: &str) -> Result<BTreeSet<NodeId>> {
    list.iter().enumerate().map(|(i, s)| s.parse().with_context(|| format!("{field}[{i}]: {s:?}"))).collect()
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

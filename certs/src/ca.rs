//! The network CA kept in a folder, for the offline `godwit ca …` commands:
//!
//! | file | holds |
//! | --- | --- |
//! | `ca.key` | the CA's Ed25519 key (64 hex digits, mode 0600) |
//! | `ca.pem` | the CA certificate: the trust anchor every node configures |
//! | `ca.toml` | name, validity, the next serial number, the last CRL number, revoked serials |
//!
//! The certificate is rebuilt from the key and `ca.toml` on every load and must equal `ca.pem`
//! byte for byte (the CA certificate is deterministic), so a changed file is noticed, not used.
//! Every change is written atomically.

use std::path::{Path, PathBuf};

use godwit_protocol::identity::{IdentityKey, NodeId};
use serde::{Deserialize, Serialize};

use crate::keyfile::{self, KeyFileError};
use crate::x509::{Authority, CertError, Issued, NodeAttrs};

/// Why the CA folder could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaError {
    /// A file could not be read or written.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The CA key file.
    #[error(transparent)]
    Key(#[from] KeyFileError),
    /// `ca.toml` is not valid.
    #[error("{} is not a valid CA state file: {detail}", path.display())]
    State {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The folder already holds a CA.
    #[error("{} already holds a CA (ca.key exists): refusing to replace it", path.display())]
    Exists {
        /// The folder.
        path: PathBuf,
    },
    /// `ca.pem` does not match the key and `ca.toml`.
    #[error("{} does not match the CA key and ca.toml: the folder was changed; restore it from a backup", path.display())]
    Mismatch {
        /// The certificate file.
        path: PathBuf,
    },
    /// A certificate or CRL could not be made.
    #[error(transparent)]
    Cert(#[from] CertError),
    /// A serial that was never issued.
    #[error("serial {0} was never issued by this CA")]
    UnknownSerial(u64),
}

/// What `ca.toml` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct State {
    name: String,
    not_before_ms: u64,
    not_after_ms: u64,
    /// The serial the next certificate gets (the CA certificate itself is 1).
    next_serial: u64,
    /// The number of the last CRL made (0: none yet).
    crl_number: u64,
    revoked: Vec<u64>,
}

/// A network CA kept in a folder.
#[derive(Debug)]
pub struct CaDir {
    dir: PathBuf,
    state: State,
    authority: Authority,
}

impl CaDir {
    /// Creates a CA named `name` in `dir` (created 0700), valid from `now_ms` for `valid_ms`.
    ///
    /// # Errors
    /// [`CaError::Exists`] if `dir` holds a CA already; I/O errors.
    pub fn init(
        dir: &Path,
        name: &str,
        now_ms: u64,
        valid_ms: u64,
        key: &IdentityKey,
    ) -> Result<CaDir, CaError> {
        crate::files::create_private_dir(dir).map_err(|source| io("create", dir, source))?;
        if dir.join("ca.key").exists() {
            return Err(CaError::Exists { path: dir.to_owned() });
        }
        let state = State {
            name: name.to_owned(),
            not_before_ms: now_ms,
            not_after_ms: now_ms.saturating_add(valid_ms),
            next_serial: 2,
            crl_number: 0,
            revoked: Vec::new(),
        };
        let authority = Authority::from_key(key, name, state.not_before_ms, state.not_after_ms)?;
        keyfile::write_identity(&dir.join("ca.key"), key)?;
        let ca = CaDir { dir: dir.to_owned(), state, authority };
        let pem = ca.dir.join("ca.pem");
        crate::files::write_atomic(&pem, ca.authority.cert_pem().as_bytes())
            .map_err(|e| io("write", &pem, e))?;
        ca.save()?;
        Ok(ca)
    }

    /// Opens the CA in `dir` and checks its certificate against its key and state.
    ///
    /// # Errors
    /// [`CaError`] naming the file and the problem.
    pub fn open(dir: &Path) -> Result<CaDir, CaError> {
        let key = keyfile::read_identity(&dir.join("ca.key"))?;
        let path = dir.join("ca.toml");
        let text = std::fs::read_to_string(&path).map_err(|e| io("read", &path, e))?;
        let state: State = toml::from_str(&text)
            .map_err(|e| CaError::State { path: path.clone(), detail: e.to_string() })?;
        let authority = Authority::from_key(&key, &state.name, state.not_before_ms, state.not_after_ms)?;
        let pem = dir.join("ca.pem");
        let stored = std::fs::read_to_string(&pem).map_err(|e| io("read", &pem, e))?;
        if stored != authority.cert_pem() {
            return Err(CaError::Mismatch { path: pem });
        }
        Ok(CaDir { dir: dir.to_owned(), state, authority })
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> String {
        self.authority.cert_pem()
    }

    /// Issues a node certificate for `node` with `attrs`, valid from `now_ms` for `valid_ms`;
    /// the serial is the next one.
    ///
    /// # Errors
    /// [`CaError`].
    pub fn issue(
        &mut self,
        node: &NodeId,
        attrs: &NodeAttrs,
        now_ms: u64,
        valid_ms: u64,
    ) -> Result<Issued, CaError> {
        let serial = self.state.next_serial;
        let issued =
            self.authority.issue_for(node, attrs, serial, now_ms, now_ms.saturating_add(valid_ms))?;
        self.state.next_serial += 1;
        self.save()?;
        Ok(issued)
    }

    /// Marks `serial` revoked (it is listed from the next CRL on).
    ///
    /// # Errors
    /// [`CaError::UnknownSerial`] for a serial this CA never issued; I/O errors.
    pub fn revoke(&mut self, serial: u64) -> Result<(), CaError> {
        if serial < 2 || serial >= self.state.next_serial {
            return Err(CaError::UnknownSerial(serial));
        }
        if !self.state.revoked.contains(&serial) {
            self.state.revoked.push(serial);
            self.state.revoked.sort_unstable();
            self.save()?;
        }
        Ok(())
    }

    /// Makes the next CRL (PEM), valid from `now_ms` for `valid_ms`; returns its number too.
    ///
    /// # Errors
    /// [`CaError`].
    pub fn crl(&mut self, now_ms: u64, valid_ms: u64) -> Result<(u64, String), CaError> {
        let number = self.state.crl_number + 1;
        let pem =
            self.authority.crl_pem(number, &self.state.revoked, now_ms, now_ms.saturating_add(valid_ms))?;
        self.state.crl_number = number;
        self.save()?;
        Ok((number, pem))
    }

    /// Serials revoked so far.
    pub fn revoked(&self) -> &[u64] {
        &self.state.revoked
    }

    fn save(&self) -> Result<(), CaError> {
        let path = self.dir.join("ca.toml");
        let text = toml::to_string(&self.state)
            .map_err(|e| CaError::State { path: path.clone(), detail: e.to_string() })?;
        crate::files::write_atomic(&path, text.as_bytes()).map_err(|e| io("write", &path, e))
    }
}

fn io(action: &'static str, path: &Path, source: std::io::Error) -> CaError {
    CaError::Io { action, path: path.to_owned(), source }
}

#[cfg(test)]
mod tests {
    use super::*;
    use godwit_protocol::identity::Role;

    #[test]
    fn a_ca_kept_in_a_folder_issues_revokes_and_is_reloaded_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca");
        let now = 1_795_000_000_000;
        let key = IdentityKey::from_seed(&[9; 32]);
        let mut ca = CaDir::init(&path, "Godwit Test CA", now, 86_400_000, &key).unwrap();
        assert!(matches!(CaDir::init(&path, "again", now, 1, &key), Err(CaError::Exists { .. })));
        let node = IdentityKey::from_seed(&[5; 32]).node_id();
        let attrs = NodeAttrs {
            administration: "Kenya Revenue Authority".into(),
            country: "KE".parse().unwrap(),
            region: "ESA".into(),
            role: Role::Member,
        };
        let cert = ca.issue(&node, &attrs, now, 3_600_000).unwrap();
        assert_eq!(cert.serial, 2);
        let peer = crate::x509::parse_peer(&cert.der).unwrap();
        assert_eq!(
            (peer.node_id, peer.role, peer.administration.as_str()),
            (node, Role::Member, "Kenya Revenue Authority")
        );
        assert!(matches!(ca.revoke(7), Err(CaError::UnknownSerial(7))));
        ca.revoke(2).unwrap();
        let (n, pem) = ca.crl(now, 86_400_000).unwrap();
        assert_eq!(n, 1);
        assert!(pem.contains("BEGIN X509 CRL"));
        // Reloaded: the same certificate, the state carried on.
        let mut again = CaDir::open(&path).unwrap();
        assert_eq!(again.cert_pem(), ca.cert_pem());
        assert_eq!(again.revoked(), &[2]);
        assert_eq!(again.issue(&node, &attrs, now, 60_000).unwrap().serial, 3);
        assert_eq!(again.crl(now, 60_000).unwrap().0, 2);
        // A changed state file is noticed.
        let toml = std::fs::read_to_string(path.join("ca.toml")).unwrap();
        std::fs::write(path.join("ca.toml"), toml.replace("Godwit Test CA", "Other CA")).unwrap();
        assert!(matches!(CaDir::open(&path), Err(CaError::Mismatch { .. })));
    }
}

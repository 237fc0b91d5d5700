//! Key files: the node's Ed25519 identity seed and its X25519 encryption secret, each as 64
//! hexadecimal digits in a file only its owner can read (created with mode 0600; refused when
//! others can read it).

use std::path::{Path, PathBuf};

use godwit_protocol::identity::{EncryptionKey, IdentityKey};
use zeroize::Zeroizing;

/// Why a key file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyFileError {
    /// The file could not be read, created or written.
    #[error("cannot {action} the {what} {}: {source}", path.display())]
    Io {
        /// What was being done (read, create, write, sync).
        action: &'static str,
        /// Which key ("identity key", "encryption key").
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Other users can read the file.
    #[error("the {what} {} is readable by other users (mode {mode:o}): run chmod 600 on it", path.display())]
    Exposed {
        /// Which key.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file does not hold a key.
    #[error("{} is not an {what} (64 hexadecimal digits expected)", path.display())]
    NotAKey {
        /// Which key.
        what: &'static str,
        /// The file.
        path: PathBuf,
    },
}

const IDENTITY: &str = "identity key";
const ENCRYPTION: &str = "encryption key";
const CHANNEL: &str = "channel key";

/// Reads an identity key file: 64 hex digits (the Ed25519 seed), readable by its owner only.
///
/// # Errors
/// [`KeyFileError`] if the file is missing, readable by others, or not a key.
pub fn read_identity(path: &Path) -> Result<IdentityKey, KeyFileError> {
    Ok(IdentityKey::from_seed(&*read_secret(path, IDENTITY)?))
}

/// Writes an identity key file with mode 0600 (created that way, never world-readable); an
/// existing file is never overwritten.
///
/// # Errors
/// [`KeyFileError::Io`] if the file exists or cannot be written.
pub fn write_identity(path: &Path, key: &IdentityKey) -> Result<(), KeyFileError> {
    write_secret(path, IDENTITY, &key.to_seed())
}

/// Reads an encryption key file: 64 hex digits (the X25519 secret), readable by its owner only.
///
/// # Errors
/// [`KeyFileError`] if the file is missing, readable by others, or not a key.
pub fn read_encryption(path: &Path) -> Result<EncryptionKey, KeyFileError> {
    Ok(EncryptionKey::from_secret(&*read_secret(path, ENCRYPTION)?))
}

/// Writes an encryption key file with mode 0600; an existing file is never overwritten.
///
/// # Errors
/// [`KeyFileError::Io`] if the file exists or cannot be written.
pub fn write_encryption(path: &Path, key: &EncryptionKey) -> Result<(), KeyFileError> {
    write_secret(path, ENCRYPTION, &key.to_secret())
}

/// Reads a channel key file (64 hex digits, readable by its owner only).
///
/// # Errors
/// [`KeyFileError`] if the file is missing, readable by others, or not a key.
pub fn read_channel_key(path: &Path) -> Result<Zeroizing<[u8; 32]>, KeyFileError> {
    read_secret(path, CHANNEL)
}

/// Writes a channel key file with mode 0600; an existing file is never overwritten.
///
/// # Errors
/// [`KeyFileError::Io`] if the file exists or cannot be written.
pub fn write_channel_key(path: &Path, key: &[u8; 32]) -> Result<(), KeyFileError> {
    write_secret(path, CHANNEL, key)
}

fn read_secret(path: &Path, what: &'static str) -> Result<Zeroizing<[u8; 32]>, KeyFileError> {
    let io = |action, source| KeyFileError::Io { action, what, path: path.to_owned(), source };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).map_err(|e| io("read", e))?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(KeyFileError::Exposed { what, path: path.to_owned(), mode: mode & 0o777 });
        }
    }
    // The file's text holds the secret: wiped when dropped, like the secret itself.
    let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| io("read", e))?);
    let hex = text.trim();
    let not_a_key = || KeyFileError::NotAKey { what, path: path.to_owned() };
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(not_a_key());
    }
    let mut secret = Zeroizing::new([0u8; 32]);
    for (i, b) in secret.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| not_a_key())?;
    }
    Ok(secret)
}

fn write_secret(path: &Path, what: &'static str, secret: &[u8; 32]) -> Result<(), KeyFileError> {
    use std::io::Write;
    let io = |action, source| KeyFileError::Io { action, what, path: path.to_owned(), source };
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(|e| io("create", e))?;
    let hex: Zeroizing<String> = Zeroizing::new(secret.iter().map(|b| format!("{b:02x}")).collect());
    writeln!(f, "{}", hex.as_str()).map_err(|e| io("write", e))?;
    f.sync_all().map_err(|e| io("sync", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_keys_are_written_0600_and_refused_when_readable_by_others() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("identity.key");
        let key = IdentityKey::from_seed(&[5; 32]);
        write_identity(&p, &key).unwrap();
        assert_eq!(read_identity(&p).unwrap().node_id(), key.node_id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
            let e = read_identity(&p).unwrap_err().to_string();
            assert!(e.contains("chmod 600"), "{e}");
        }
    }

    #[test]
    fn refusals_name_the_file_and_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("identity.key");
        let e = read_identity(&p).unwrap_err();
        assert!(matches!(e, KeyFileError::Io { action: "read", .. }), "{e}");
        assert!(e.to_string().contains("identity.key"), "{e}");
        write_identity(&p, &IdentityKey::from_seed(&[5; 32])).unwrap();
        let again = write_identity(&p, &IdentityKey::from_seed(&[6; 32])).unwrap_err();
        assert!(
            matches!(again, KeyFileError::Io { action: "create", .. }),
            "an existing key is never overwritten"
        );
        let q = dir.path().join("short.key");
        std::fs::write(&q, "abcd\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&q, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        assert!(matches!(read_identity(&q).unwrap_err(), KeyFileError::NotAKey { .. }));
    }

    #[test]
    fn encryption_keys_round_trip_in_their_own_0600_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("encryption.key");
        let key = EncryptionKey::from_secret(&[7; 32]);
        write_encryption(&p, &key).unwrap();
        assert_eq!(read_encryption(&p).unwrap().public(), key.public());
        std::fs::write(dir.path().join("bad.key"), "zz\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let bad = dir.path().join("bad.key");
            std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o600)).unwrap();
            let e = read_encryption(&bad).unwrap_err().to_string();
            assert!(e.contains("is not an encryption key"), "{e}");
        }
    }
}

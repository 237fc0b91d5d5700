//! This node's encryption keys: the current one, which its card announces and direct messages
//! are sealed to, and the earlier ones, kept to open what was sealed to them before a rotation.
//!
//! On disk, in the data directory, each readable by its owner only (0600): `encryption.key` the
//! current key, `encryption-<ms>.key` each earlier one (named by when it was retired). A
//! rotation writes the retired key's file first, then replaces `encryption.key` atomically, and
//! only then is the new card published: a crash at any point loses no key.

use std::path::{Path, PathBuf};

use godwit_protocol::content::Body;
use godwit_protocol::envelope::Envelope;
use godwit_protocol::identity::{EncryptionKey, NodeId};
use godwit_protocol::message::OpenError;

use crate::config::ENCRYPTION_KEY;

/// Earlier keys kept at most (the oldest go first): at a 30-day rotation, more than a year of
/// messages, longer than any message lives.
const MAX_PREVIOUS: usize = 16;

/// The node's encryption keys.
pub(super) struct KeyRing {
    dir: PathBuf,
    current: EncryptionKey,
    /// When the current key came into use, ms since the epoch.
    since_ms: u64,
    /// Earlier keys, newest first.
    previous: Vec<EncryptionKey>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Public halves only.
        f.debug_struct("KeyRing")
            .field("current", &self.current.public())
            .field("since_ms", &self.since_ms)
            .field("previous", &self.previous.len())
            .finish_non_exhaustive()
    }
}

impl KeyRing {
    /// The keys of the data directory `dir`: its `encryption.key` when there is one (it holds
    /// the newest key after a rotation), else `given`; every `encryption-*.key` as an earlier
    /// key, and `given` too when it is not the current one.
    ///
    /// # Errors
    /// A key file that cannot be read or is readable by others, named.
    pub(super) fn load(dir: &Path, given: &EncryptionKey, now_ms: u64) -> Result<KeyRing, String> {
        let path = dir.join(ENCRYPTION_KEY);
        let (current, since_ms) = if path.exists() {
            let k = godwit_certs::keyfile::read_encryption(&path)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            (k, modified_ms(&path).unwrap_or(now_ms))
        } else {
            (EncryptionKey::from_secret(&given.to_secret()), now_ms)
        };
        let mut retired: Vec<(u64, EncryptionKey)> = Vec::new();
        let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(ms) = name
                .to_str()
                .and_then(|n| n.strip_prefix("encryption-"))
                .and_then(|n| n.strip_suffix(".key"))
                .and_then(|n| n.split('-').next())
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            let k = godwit_certs::keyfile::read_encryption(&entry.path())
                .map_err(|e| format!("{}: {e}", entry.path().display()))?;
            retired.push((ms, k));
        }
        retired.sort_by_key(|r| std::cmp::Reverse(r.0));
        let mut previous: Vec<EncryptionKey> = Vec::new();
        if given.public() != current.public() {
            previous.push(EncryptionKey::from_secret(&given.to_secret()));
        }
        for (_, k) in retired {
            if k.public() != current.public() && !previous.iter().any(|p| p.public() == k.public()) {
                previous.push(k);
            }
        }
        previous.truncate(MAX_PREVIOUS);
        Ok(KeyRing { dir: dir.to_path_buf(), current, since_ms, previous })
    }

    /// The key the card announces.
    pub(super) fn current(&self) -> &EncryptionKey {
        &self.current
    }

    /// Opens a direct message to `me` with the current key or, failing that, an earlier one.
    ///
    /// # Errors
    /// What the current key's attempt said, when no key opens it.
    pub(super) fn open_direct(&self, e: &Envelope, me: &NodeId) -> Result<Body, OpenError> {
        match e.open_direct(me, &self.current) {
            Ok(b) => Ok(b),
            Err(first) => self.previous.iter().find_map(|k| e.open_direct(me, k).ok()).ok_or(first),
        }
    }

    /// Opens the personal-data section sealed to `me`, with the current key or an earlier one.
    ///
    /// # Errors
    /// What the current key's attempt said, when no key opens it.
    pub(super) fn open_personal(
        &self,
        e: &Envelope,
        me: &NodeId,
    ) -> Result<godwit_protocol::content::PersonalData, OpenError> {
        match e.open_personal(me, &self.current) {
            Ok(p) => Ok(p),
            Err(first) => self.previous.iter().find_map(|k| e.open_personal(me, k).ok()).ok_or(first),
        }
    }

    /// Opens the epoch key a channel-key record seals to `me`, with the current key or an
    /// earlier one.
    ///
    /// # Errors
    /// What the current key's attempt said, when no key opens it.
    pub(super) fn unseal_channel_key(
        &self,
        ck: &godwit_protocol::crypto::ChannelKey,
        me: &NodeId,
    ) -> Result<godwit_protocol::crypto::EpochKey, godwit_protocol::crypto::CryptoError> {
        match ck.unseal(me, &self.current) {
            Ok(k) => Ok(k),
            Err(first) => self.previous.iter().find_map(|k| ck.unseal(me, k).ok()).ok_or(first),
        }
    }

    /// Whether the current key has been in use for `every_ms` or longer.
    pub(super) fn due(&self, now_ms: u64, every_ms: u64) -> bool {
        now_ms.saturating_sub(self.since_ms) >= every_ms
    }

    /// Retires the current key for a new one, on disk first.
    ///
    /// # Errors
    /// Why a key file could not be written; the keys in use are then unchanged.
    pub(super) fn rotate(&mut self, now_ms: u64) -> Result<(), String> {
        // A name of its own (a clock stepped back may repeat one), written and made durable
        // before the current key is replaced.
        let mut retired = self.dir.join(format!("encryption-{now_ms}.key"));
        let mut n = 0u32;
        while retired.exists() {
            n += 1;
            retired = self.dir.join(format!("encryption-{now_ms}-{n}.key"));
        }
        godwit_certs::keyfile::write_encryption(&retired, &self.current)
            .map_err(|e| format!("{}: {e}", retired.display()))?;
        std::fs::File::open(&retired)
            .and_then(|f| f.sync_all())
            .map_err(|e| format!("{}: {e}", retired.display()))?;
        std::fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| format!("{}: {e}", self.dir.display()))?;
        let fresh = EncryptionKey::generate(&mut rand_core::OsRng);
        let next = self.dir.join(format!("{ENCRYPTION_KEY}.new"));
        let _ = std::fs::remove_file(&next);
        godwit_certs::keyfile::write_encryption(&next, &fresh)
            .map_err(|e| format!("{}: {e}", next.display()))?;
        let path = self.dir.join(ENCRYPTION_KEY);
        std::fs::File::open(&next)
            .and_then(|f| f.sync_all())
            .and_then(|()| std::fs::rename(&next, &path))
            .and_then(|()| std::fs::File::open(&self.dir)?.sync_all())
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let old = std::mem::replace(&mut self.current, fresh);
        self.previous.insert(0, old);
        self.previous.truncate(MAX_PREVIOUS);
        self.since_ms = now_ms;
        Ok(())
    }
}

fn modified_ms(path: &Path) -> Option<u64> {
    let t = std::fs::metadata(path).ok()?.modified().ok()?;
    Some(t.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_rotation_keeps_the_old_key_on_disk_and_a_restart_finds_both() {
        let dir = tempfile::tempdir().unwrap();
        let given = EncryptionKey::generate(&mut rand_core::OsRng);
        let mut ring = KeyRing::load(dir.path(), &given, 1_000).unwrap();
        assert_eq!(ring.current().public(), given.public());
        assert!(!ring.due(1_000 + 99, 100) && ring.due(1_000 + 100, 100));
        ring.rotate(2_000).unwrap();
        assert_ne!(ring.current().public(), given.public());
        let again = KeyRing::load(dir.path(), &given, 3_000).unwrap();
        assert_eq!(again.current().public(), ring.current().public(), "encryption.key holds the new key");
        assert_eq!(again.previous.len(), 1, "the old key once, though given and on disk");
        assert_eq!(again.previous[0].public(), given.public());
        // A second rotation in the same millisecond keeps both retired keys.
        let mut ring = again;
        let second = ring.current().public();
        ring.rotate(2_000).unwrap();
        let third = KeyRing::load(dir.path(), &given, 4_000).unwrap();
        assert!(third.previous.iter().any(|k| k.public() == second), "the key retired second is kept");
        assert!(third.previous.iter().any(|k| k.public() == given.public()), "and the first");
        use std::os::unix::fs::PermissionsExt;
        for f in ["encryption.key", "encryption-2000.key"] {
            let mode = std::fs::metadata(dir.path().join(f)).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{f}");
        }
    }
}

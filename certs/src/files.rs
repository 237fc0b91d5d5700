//! Files a node writes outside its store (and the tool writes for it): created private,
//! replaced atomically.

use std::io::Write;
use std::path::Path;

/// Creates `dir` (and its parents) readable by the node's user only (mode 0700 on Unix); an
/// existing folder is left as it is.
///
/// # Errors
/// The I/O error.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
}

/// Replaces `path` with `bytes` so that a crash leaves either the old or the new content, never
/// a torn file: write a temporary file beside it, fsync it, rename it over `path`, fsync the
/// folder.
///
/// # Errors
/// The I/O error; `path` is then unchanged.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_data_directory_is_private() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("a/b");
        create_private_dir(&dir).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
        }
        create_private_dir(&dir).unwrap();
    }

    #[test]
    fn an_atomic_write_replaces_the_content_and_leaves_no_temporary_file() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("crl.der");
        write_atomic(&path, b"old").unwrap();
        write_atomic(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 1);
        // A folder that does not exist: an error, and nothing is left behind.
        assert!(write_atomic(&t.path().join("missing/crl.der"), b"x").is_err());
    }
}

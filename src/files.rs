//! Files overlayd writes that others read while it runs (the alert state, overlay files the
//! dashboard writes, uploads into a theme): written beside under a temporary name, then renamed
//! over the old one, so a reader (the watcher, a restart) never sees half a file. Blocking: call
//! it off the runtime threads.

use std::path::{Path, PathBuf};

/// Replaces `path` with `bytes`, creating its folder if need be. The temporary file is
/// `<path>.tmp`, a name the theme and overlay watchers ignore.
pub fn replace(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut tmp = PathBuf::from(path).into_os_string();
    tmp.push(".tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// Writes `bytes` to `path` readable by this user only: mode 0600 on Unix; on Windows the file
/// inherits the permissions of the user's profile folder it lives in. For tokens and cookies.
#[cfg(unix)]
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(not(unix))]
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_file_is_replaced_whole_and_its_folder_made() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a/b/state.json");
        super::replace(&path, b"one").expect("first");
        super::replace(&path, b"two").expect("second");
        assert_eq!(std::fs::read(&path).expect("read"), b"two");
        assert!(!dir.path().join("a/b/state.json.tmp").exists());
    }
}

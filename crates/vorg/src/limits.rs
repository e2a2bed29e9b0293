//! What the process may hold: open files (raised to the hard limit at start, so streams and
//! connections are not cut short by a low default), the caps on SSE streams derived from it,
//! and private permissions on the data directory and the SQLite file (password hashes and
//! the generated JWT secret live there).

use std::path::Path;

use anyhow::Context;
use vorg_api::stream_limits::StreamCaps;

use crate::config::Settings;

/// File descriptors kept free for the database pool, upstream calls, log files and the
/// listener, whatever the streams do.
const RESERVED_FDS: u64 = 512;

/// Raises the soft limit on open files to the hard limit; returns the limit in force.
pub fn raise_fd_limit() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => Some(n),
        Err(e) => {
            tracing::warn!(error = %e, "could not raise the open-files limit");
            rlimit::getrlimit(rlimit::Resource::NOFILE)
                .ok()
                .map(|(soft, _)| soft)
        }
    }
}

/// The stream caps from the settings; the global cap stays below three quarters of the
/// open-files limit (each stream is a connection, and so a descriptor).
pub fn stream_caps(settings: &Settings) -> StreamCaps {
    let fd_room = raise_fd_limit()
        .map(|n| (n.saturating_sub(RESERVED_FDS) * 3 / 4).max(16))
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(usize::MAX);
    let wanted = settings.streams_max.unwrap_or(StreamCaps::default().global);
    if wanted > fd_room {
        tracing::warn!(
            wanted,
            allowed = fd_room,
            "VORG_STREAMS_MAX is above what the open-files limit leaves room for; using the lower number"
        );
    }
    StreamCaps {
        per_caller: settings.streams_per_caller.max(1),
        per_ip: settings.streams_per_ip.max(1),
        global: wanted.min(fd_room).max(1),
    }
}

/// Creates the data directory readable by its owner only (0700), and tightens an existing
/// one that others could read.
pub fn private_dir(dir: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .with_context(|| format!("creating the data directory {}", dir.display()))?;
        }
        tighten(dir, 0o700)?;
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating the data directory {}", dir.display()))?;
    Ok(())
}

/// Creates the SQLite file of `url` (when it is one) readable by its owner only (0600), so
/// SQLite's journal and WAL files, which take the database file's mode, are private too;
/// tightens an existing one.
pub fn private_sqlite_file(url: &str) -> anyhow::Result<()> {
    let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    else {
        return Ok(());
    };
    let path = Path::new(path.split('?').next().unwrap_or(path));
    if path.as_os_str().is_empty() || path.to_str() == Some(":memory:") {
        return Ok(());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        if !path.exists() {
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(path)
                .with_context(|| format!("creating the database file {}", path.display()))?;
        }
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let file = std::path::PathBuf::from(format!("{}{suffix}", path.display()));
            if file.exists() {
                tighten(&file, 0o600)?;
            }
        }
    }
    Ok(())
}

#[cfg(unix)]
fn tighten(path: &Path, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let current = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .permissions()
        .mode()
        & 0o777;
    if current & !mode != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("making {} private", path.display()))?;
        tracing::info!(path = %path.display(), from = format!("{current:o}"), to = format!("{mode:o}"), "tightened permissions");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[cfg(unix)]
    #[test]
    fn the_data_dir_and_database_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = std::env::temp_dir().join(format!("vorg-perms-{}", std::process::id()));
        let dir = tmp.join("data");
        private_dir(&dir).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        let db = dir.join("vorg.db");
        private_sqlite_file(&format!("sqlite://{}", db.display())).unwrap();
        assert_eq!(mode(&db), 0o600);
        // An existing world-readable file is tightened.
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
        private_sqlite_file(&format!("sqlite://{}", db.display())).unwrap();
        assert_eq!(mode(&db), 0o600);
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}

//! Where `CHECKPOINT dest` may write. Unrestricted, it let any client copy the whole
//! database wherever the kvd user can write (another disk, a web root, a planted symlink).
//! Now a destination is a name inside `backup-dir`, or an absolute path inside it; paths
//! elsewhere need `enable-checkpoint-anywhere` (modelled on Redis's
//! `enable-protected-configs`: `no`, `yes`, or `local` for loopback clients only). Both
//! settings are fixed at start: CONFIG SET cannot widen them.

use std::path::{Component, Path, PathBuf};

/// `enable-checkpoint-anywhere`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Anywhere {
    /// Only inside `backup-dir` (the default).
    #[default]
    No,
    /// Any absolute path, from any client.
    Yes,
    /// Any absolute path, from loopback clients only.
    Local,
}

impl Anywhere {
    /// Parses `no`, `yes` or `local`.
    pub fn parse(v: &str) -> Result<Anywhere, String> {
        match v.to_ascii_lowercase().as_str() {
            "no" => Ok(Anywhere::No),
            "yes" => Ok(Anywhere::Yes),
            "local" => Ok(Anywhere::Local),
            _ => Err("argument(s) must be one of the following: no, yes, local".into()),
        }
    }

    /// The setting's name.
    pub fn name(self) -> &'static str {
        match self {
            Anywhere::No => "no",
            Anywhere::Yes => "yes",
            Anywhere::Local => "local",
        }
    }
}

/// True for paths without `.`/`..` components (so prefix checks mean what they say).
fn is_plain(p: &Path) -> bool {
    p.components()
        .all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
}

/// The directory a checkpoint named `dest` goes to, or why it may not.
pub fn destination(
    dest: &str,
    backup_dir: Option<&Path>,
    anywhere: Anywhere,
    client_is_local: bool,
) -> Result<PathBuf, String> {
    let path = Path::new(dest);
    if dest.is_empty() || !is_plain(path) {
        return Err(
            "the destination must be a plain name or an absolute path without '.' or '..'".into(),
        );
    }
    if path.is_absolute() {
        if backup_dir.is_some_and(|b| path.starts_with(b) && path != b) {
            return Ok(path.to_path_buf());
        }
        let allowed = match anywhere {
            Anywhere::Yes => true,
            Anywhere::Local => client_is_local,
            Anywhere::No => false,
        };
        if allowed {
            return Ok(path.to_path_buf());
        }
        return Err(match backup_dir {
            Some(b) => format!("{dest} is outside backup-dir {}; start kvd with enable-checkpoint-anywhere yes|local to allow it", b.display()),
            None => "no backup-dir is configured; start kvd with --backup-dir DIR, or enable-checkpoint-anywhere yes|local".into(),
        });
    }
    if path.components().count() != 1 {
        return Err("a relative destination must be a single name inside backup-dir".into());
    }
    match backup_dir {
        Some(b) => Ok(b.join(path)),
        None => Err("no backup-dir is configured for a relative destination; start kvd with --backup-dir DIR".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_stay_inside_backup_dir_unless_allowed() {
        let b = Some(Path::new("/backups"));
        let ok = |d, b, a, l| destination(d, b, a, l);
        assert_eq!(
            ok("today", b, Anywhere::No, false).unwrap(),
            Path::new("/backups/today")
        );
        assert_eq!(
            ok("/backups/x", b, Anywhere::No, false).unwrap(),
            Path::new("/backups/x")
        );
        assert!(ok("/backups", b, Anywhere::No, false).is_err());
        assert!(ok("/backups/../etc", b, Anywhere::No, false).is_err());
        assert!(ok("../etc", b, Anywhere::Yes, true).is_err());
        assert!(ok("a/b", b, Anywhere::Yes, true).is_err());
        assert!(ok("/tmp/x", b, Anywhere::No, true).is_err());
        assert!(ok("/tmp/x", b, Anywhere::Local, false).is_err());
        assert_eq!(
            ok("/tmp/x", b, Anywhere::Local, true).unwrap(),
            Path::new("/tmp/x")
        );
        assert_eq!(
            ok("/tmp/x", None, Anywhere::Yes, false).unwrap(),
            Path::new("/tmp/x")
        );
        assert!(ok("today", None, Anywhere::Yes, true).is_err());
        assert!(ok("", b, Anywhere::Yes, true).is_err());
    }
}

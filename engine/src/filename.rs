//! Names of the files in a data directory.
//!
//! ```text
//! LOCK               held (flock) by the process that owns the directory
//! CURRENT            one line: the name of the live MANIFEST, replaced atomically
//! MANIFEST-NNNNNN    log of version edits (WAL record format)
//! NNNNNN.log         write-ahead log (one per memtable generation)
//! NNNNNN.sst         sorted table
//! NNNNNN.dbtmp       a file being written that is not yet part of the database
//! ```
//! All numbers come from one counter (`next_file_number` in the manifest).

use std::path::{Path, PathBuf};

/// The kinds of file the engine keeps in its directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// `NNNNNN.log`
    Wal(u64),
    /// `NNNNNN.sst`
    Table(u64),
    /// `MANIFEST-NNNNNN`
    Manifest(u64),
    /// `CURRENT`
    Current,
    /// `LOCK`
    Lock,
    /// `NNNNNN.dbtmp`
    Temp(u64),
}

/// Name of the lock file.
pub const LOCK: &str = "LOCK";
/// Name of the file naming the live manifest.
pub const CURRENT: &str = "CURRENT";

/// Path of WAL number `n`.
pub fn wal_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{n:06}.log"))
}

/// Path of table number `n`.
pub fn table_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{n:06}.sst"))
}

/// File name of manifest number `n`.
pub fn manifest_name(n: u64) -> String {
    format!("MANIFEST-{n:06}")
}

/// Path of temporary file number `n`.
pub fn temp_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{n:06}.dbtmp"))
}

/// Classifies a file name; `None` for files the engine does not own.
pub fn parse(name: &str) -> Option<FileKind> {
    match name {
        LOCK => return Some(FileKind::Lock),
        CURRENT => return Some(FileKind::Current),
        _ => {}
    }
    if let Some(num) = name.strip_prefix("MANIFEST-") {
        return num.parse().ok().map(FileKind::Manifest);
    }
    let (num, ext) = name.split_once('.')?;
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = num.parse().ok()?;
    match ext {
        "log" => Some(FileKind::Wal(n)),
        "sst" => Some(FileKind::Table(n)),
        "dbtmp" => Some(FileKind::Temp(n)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let d = Path::new("/d");
        let name = |p: PathBuf| p.file_name().unwrap().to_str().unwrap().to_string();
        assert_eq!(parse(&name(wal_path(d, 7))), Some(FileKind::Wal(7)));
        assert_eq!(
            parse(&name(table_path(d, 1234567))),
            Some(FileKind::Table(1234567))
        );
        assert_eq!(parse(&manifest_name(3)), Some(FileKind::Manifest(3)));
        assert_eq!(parse("CURRENT"), Some(FileKind::Current));
        assert_eq!(parse("notes.txt"), None);
        assert_eq!(parse(".log"), None);
    }
}

//! The engine's typed errors. Nothing read from disk may panic; it becomes one of these.

use std::path::PathBuf;

/// Result alias used throughout the engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong inside the engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The operating system (or the injected file system) refused an operation.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory the operation was about.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// Bytes on disk do not match their checksum or their grammar.
    #[error("corruption in {file} at offset {offset}: {what}")]
    Corruption {
        /// The file holding the bad bytes.
        file: PathBuf,
        /// Byte offset of the first bad byte (or of the record/block that holds it).
        offset: u64,
        /// What is wrong, in words.
        what: String,
    },
    /// The caller asked for something that cannot be done.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The data directory is locked by another process or another `Db` in this one.
    #[error("data directory {0} is in use by another process (LOCK is held)")]
    Busy(PathBuf),
    /// The database has been closed or a background error made it read-only.
    #[error("database is closed or read-only after an earlier error: {0}")]
    Closed(String),
    /// Writes are refused for now: background work failed for want of a resource that
    /// may come back (descriptors, disk space), and the engine retries it by itself
    /// (see `Options::max_bg_error_resume_count`). Reads keep working.
    #[error("writes are suspended until a passing background error clears: {0}")]
    Suspended(String),
}

impl Error {
    /// An I/O error about `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// A corruption error at `offset` of `file`.
    pub fn corruption(file: impl Into<PathBuf>, offset: u64, what: impl Into<String>) -> Self {
        Error::Corruption {
            file: file.into(),
            offset,
            what: what.into(),
        }
    }

    /// A copy, for handing one failure to every writer of a commit group
    /// (`std::io::Error` is not `Clone`).
    pub fn duplicate(&self) -> Error {
        match self {
            Error::Io { path, source } => Error::Io {
                path: path.clone(),
                // Keep the OS error code: whether an error can pass depends on it.
                source: match source.raw_os_error() {
                    Some(code) => std::io::Error::from_raw_os_error(code),
                    None => std::io::Error::new(source.kind(), source.to_string()),
                },
            },
            Error::Corruption { file, offset, what } => Error::Corruption {
                file: file.clone(),
                offset: *offset,
                what: what.clone(),
            },
            Error::InvalidArgument(s) => Error::InvalidArgument(s.clone()),
            Error::Busy(p) => Error::Busy(p.clone()),
            Error::Closed(s) => Error::Closed(s.clone()),
            Error::Suspended(s) => Error::Suspended(s.clone()),
        }
    }

    /// True for `Error::Corruption`.
    pub fn is_corruption(&self) -> bool {
        matches!(self, Error::Corruption { .. })
    }
}

//! The file-system seam. Every byte the engine reads or writes goes through [`Fs`], so
//! tests can swap in [`MemFs`] (which knows what was synced and can simulate a power
//! cut) or wrap either in [`FaultFs`] (which fails writes and fsyncs on demand).

mod fault;
mod mem;
mod real;

pub use fault::{FaultFs, FaultSwitch};
pub use mem::{CrashMode, MemFs};
pub use real::RealFs;

use crate::error::Result;
use std::path::Path;
use std::sync::Arc;

/// A file system the engine can live on.
pub trait Fs: Send + Sync + std::fmt::Debug + 'static {
    /// Creates `dir` and its parents.
    fn create_dir_all(&self, dir: &Path) -> Result<()>;
    /// Creates (or truncates) `path` for appending.
    fn create(&self, path: &Path) -> Result<Box<dyn WritableFile>>;
    /// Opens `path` for positional reads.
    fn open(&self, path: &Path) -> Result<Arc<dyn RandomAccessFile>>;
    /// Atomically replaces `to` with `from` (durable once the directory is synced).
    fn rename(&self, from: &Path, to: &Path) -> Result<()>;
    /// Removes a file.
    fn remove_file(&self, path: &Path) -> Result<()>;
    /// Names (not paths) of the entries of `dir`.
    fn list_dir(&self, dir: &Path) -> Result<Vec<String>>;
    /// True if `path` exists.
    fn exists(&self, path: &Path) -> bool;
    /// Size of the file at `path`.
    fn file_size(&self, path: &Path) -> Result<u64>;
    /// Makes the creations, renames and removals in `dir` durable.
    fn sync_dir(&self, dir: &Path) -> Result<()>;
    /// Takes an exclusive lock on `path` (created if missing); `Error::Busy` if held.
    fn lock(&self, path: &Path) -> Result<Box<dyn FileLock>>;
    /// Makes `to` a copy of `from`: a hard link where the file system allows it.
    fn link_or_copy(&self, from: &Path, to: &Path) -> Result<()>;

    /// Prepares `dir` to receive new files that nobody else placed there: creates it (and
    /// its parents), or accepts an existing empty directory; refuses anything else with
    /// `InvalidArgument`. The real file system does this without a window in which another
    /// process could plant files or symlinks.
    fn create_empty_dir(&self, dir: &Path) -> Result<()> {
        if self.exists(dir) && !self.list_dir(dir)?.is_empty() {
            return Err(crate::Error::InvalidArgument(format!(
                "{} exists and is not empty",
                dir.display()
            )));
        }
        self.create_dir_all(dir)
    }

    /// Reads a whole file.
    fn read_all(&self, path: &Path) -> Result<Vec<u8>> {
        let file = self.open(path)?;
        let len = usize::try_from(file.len()).map_err(|_| {
            crate::Error::InvalidArgument(format!("{} is too large to read", path.display()))
        })?;
        let mut buf = vec![0; len];
        file.read_exact_at(0, &mut buf)?;
        Ok(buf)
    }

    /// Writes a whole file and syncs it (not its directory).
    fn write_all_synced(&self, path: &Path, data: &[u8]) -> Result<()> {
        let mut f = self.create(path)?;
        f.append(data)?;
        f.sync()
    }
}

/// A file being written sequentially.
pub trait WritableFile: Send {
    /// Appends bytes (possibly buffered in user space).
    fn append(&mut self, data: &[u8]) -> Result<()>;
    /// Hands buffered bytes to the operating system: they survive a process crash.
    fn flush(&mut self) -> Result<()>;
    /// Flushes and fsyncs: the bytes survive a power cut.
    fn sync(&mut self) -> Result<()>;
    /// Bytes appended so far.
    fn len(&self) -> u64;
    /// True if nothing has been appended.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// A handle that fsyncs this file apart from the writer: what was handed to the
    /// operating system (`flush`) before its `sync` is called survives a power cut, while
    /// the writer goes on appending. `None` if the file has no such handle; then `sync`
    /// is the way.
    fn sync_handle(&self) -> Option<Box<dyn FileSync>> {
        None
    }
}

/// Fsyncs one file apart from its writer ([`WritableFile::sync_handle`]).
pub trait FileSync: Send {
    /// Makes every byte handed to the operating system before this call durable.
    fn sync(&self) -> Result<()>;
}

/// A file read at arbitrary offsets.
pub trait RandomAccessFile: Send + Sync {
    /// Fills `buf` from `offset`; an error if the file is shorter.
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<()>;
    /// Length of the file in bytes.
    fn len(&self) -> u64;
    /// True if the file is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A held directory lock; released when dropped.
pub trait FileLock: Send + Sync {}

/// The real file system, shared.
pub fn real() -> Arc<dyn Fs> {
    Arc::new(RealFs)
}

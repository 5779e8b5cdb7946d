//! Appends records to a log, cutting each into fragments that never cross a block.
//! Spec: docs/format/wal.md.
//!
//! ```text
//! file     := block*
//! block    := fragment* trailer?
//! fragment := checksum:fixed32-LE length:fixed16-LE type:u8 payload
//! ```
//! After any failed append, flush or sync the writer refuses further work: a failed
//! append may have left a partial fragment (the framing is no longer known), and after
//! a failed fsync the kernel may have dropped the dirty pages, so retrying could report
//! durability that does not exist. The owner must start a new log.

use super::format::{encode_header, RecordType, BLOCK_SIZE, HEADER_SIZE};
use crate::error::{Error, Result};
use crate::fs::{FileSync, WritableFile};
use std::path::{Path, PathBuf};

/// Appends records to one log file (WAL or MANIFEST).
pub struct LogWriter {
    path: PathBuf,
    file: Box<dyn WritableFile>,
    /// Bytes already used in the current block.
    block_offset: usize,
    /// Set after the first failure; every later call fails with it.
    failed: Option<String>,
}

impl std::fmt::Debug for LogWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogWriter")
            .field("path", &self.path)
            .field("len", &self.len())
            .field("failed", &self.failed)
            .finish()
    }
}

impl LogWriter {
    /// A writer appending to `file`, a fresh empty file at `path`.
    pub fn new(path: PathBuf, file: Box<dyn WritableFile>) -> Self {
        let block_offset = (file.len() % BLOCK_SIZE as u64) as usize;
        LogWriter {
            path,
            file,
            block_offset,
            failed: None,
        }
    }

    /// Appends one record (buffered in the file; see [`Self::flush`] and [`Self::sync`]).
    /// A payload longer than `u32::MAX` bytes is refused with `InvalidArgument`.
    pub fn add_record(&mut self, payload: &[u8]) -> Result<()> {
        if u32::try_from(payload.len()).is_err() {
            return Err(Error::InvalidArgument(format!(
                "log record of {} bytes is larger than u32::MAX",
                payload.len()
            )));
        }
        self.check_healthy()?;
        let result = self.emit_fragments(payload);
        self.note(result)
    }

    /// Hands buffered bytes to the operating system.
    pub fn flush(&mut self) -> Result<()> {
        self.check_healthy()?;
        let result = self.file.flush();
        self.note(result)
    }

    /// Flushes, then returns a handle that fsyncs the log apart from this writer: every
    /// record added before this call survives a power cut once the handle's `sync`
    /// returns, while new records may be added meanwhile. `Ok(None)`: the file has no
    /// such handle (the records are flushed; use [`Self::sync`]).
    pub fn flush_for_sync(&mut self) -> Result<Option<Box<dyn FileSync>>> {
        self.flush()?;
        Ok(self.file.sync_handle())
    }

    /// Flushes and fsyncs: every record added so far survives a power cut.
    pub fn sync(&mut self) -> Result<()> {
        self.check_healthy()?;
        let result = self.file.sync();
        self.note(result)
    }

    /// Bytes written to the file so far (headers and trailers included).
    pub fn len(&self) -> u64 {
        self.file.len()
    }

    /// True if nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn emit_fragments(&mut self, payload: &[u8]) -> Result<()> {
        let mut rest = payload;
        let mut first = true;
        loop {
            let leftover = BLOCK_SIZE - self.block_offset;
            if leftover < HEADER_SIZE {
                // Too small for a header: zero-fill the trailer, move to the next block.
                self.file.append(&[0u8; HEADER_SIZE][..leftover])?;
                self.block_offset = 0;
            }
            let room = BLOCK_SIZE - self.block_offset - HEADER_SIZE;
            let (fragment, after) = rest.split_at(rest.len().min(room));
            let last = after.is_empty();
            let kind = match (first, last) {
                (true, true) => RecordType::Full,
                (true, false) => RecordType::First,
                (false, false) => RecordType::Middle,
                (false, true) => RecordType::Last,
            };
            self.file.append(&encode_header(kind, fragment))?;
            self.file.append(fragment)?;
            self.block_offset += HEADER_SIZE + fragment.len();
            rest = after;
            first = false;
            if last {
                return Ok(());
            }
        }
    }

    fn check_healthy(&self) -> Result<()> {
        match &self.failed {
            None => Ok(()),
            Some(why) => Err(Error::io(
                &self.path,
                std::io::Error::other(format!("log writer failed earlier: {why}")),
            )),
        }
    }

    fn note(&mut self, result: Result<()>) -> Result<()> {
        if let Err(e) = &result {
            self.failed = Some(e.to_string());
        }
        result
    }
}

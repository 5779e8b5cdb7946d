//! Write-ahead log: LevelDB-style 32 KiB blocks of checksummed fragment records.
//! Spec: docs/format/wal.md.
//!
//! The same record format carries the MANIFEST (see [`crate::manifest`]).
//! [`LogWriter`] appends whole records, cutting them into fragments at block
//! boundaries; [`LogReader`] reassembles them and, where reading has to stop, says
//! why in a [`ReadEnd`]: a clean end, a torn tail (normal after a crash) or
//! corruption in the middle of the file.

pub mod format;
mod reader;
mod writer;

pub use reader::{read_all, LogReader, LogRecord, ReadEnd};
pub use writer::LogWriter;

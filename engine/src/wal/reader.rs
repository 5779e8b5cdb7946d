//! Reads records back from a log, block by block, and says why reading stopped.
//! Spec: docs/format/wal.md.
//!
//! ```text
//! file     := block*
//! block    := fragment* trailer?
//! fragment := checksum:fixed32-LE length:fixed16-LE type:u8 payload
//! record   := Full | First Middle* Last
//! ```
//! Reading stops at the first bad thing: a checksum mismatch, a length running past its
//! block, an unknown or `Zero` type, a `First` without its `Last`, a `Middle`/`Last`
//! without a `First`, or a header or payload cut short by the end of the file. The rest
//! of the file is then scanned, at every byte position, for any fragment whose checksum
//! verifies: if there is one, valid data was lost in the middle ([`ReadEnd::Corrupt`]);
//! if not, the file merely has a torn tail ([`ReadEnd::TornTail`]).

use super::format::{check_fragment, RawHeader, RecordType, BLOCK_SIZE, HEADER_SIZE};
use crate::error::Result;
use crate::fs::{Fs, RandomAccessFile};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A record as read: the file offset of its first fragment and its payload.
pub type LogRecord = (u64, Vec<u8>);

/// Why reading stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadEnd {
    /// The file ended exactly at a record boundary (or in a block trailer).
    Clean,
    /// An incomplete or bad record with nothing valid after it: normal after a crash.
    /// `offset` is where the first lost record starts; `dropped_bytes` runs to the end.
    TornTail {
        /// File offset of the first byte not returned as part of a record.
        offset: u64,
        /// Bytes from `offset` to the end of the file.
        dropped_bytes: u64,
    },
    /// A bad record followed by at least one valid fragment later in the file: data
    /// that was once durable is lost. An I/O error while reading also ends here, with
    /// `what` starting "I/O error".
    Corrupt {
        /// File offset of the first byte not returned as part of a record.
        offset: u64,
        /// What was wrong with the bytes at the stop (which may be after `offset` when a
        /// multi-fragment record was interrupted).
        what: String,
        /// Bytes from `offset` to the end of the file.
        dropped_bytes: u64,
    },
}

/// Where reading stopped and why, before the rest of the file has been scanned.
struct Stop {
    /// Start of the first record not returned.
    record_start: u64,
    /// The scan for later valid fragments starts here: just after a bad fragment, or
    /// at a fragment that verifies but is out of place (itself proof of lost data).
    scan_from: u64,
    what: String,
}

enum Fragment {
    Good {
        offset: u64,
        kind: RecordType,
        payload: Vec<u8>,
    },
    Bad {
        offset: u64,
        what: String,
    },
    Eof,
}

/// Reads the records of one log file (WAL or MANIFEST) in order.
pub struct LogReader {
    path: PathBuf,
    file: Arc<dyn RandomAccessFile>,
    file_len: u64,
    /// The current block (shorter than `BLOCK_SIZE` only at the end of the file).
    block: Vec<u8>,
    /// File offset of `block[0]`.
    block_start: u64,
    /// Read position within `block`.
    pos: usize,
    done: bool,
    end: ReadEnd,
}

impl LogReader {
    /// A reader over `file`, whose name `path` is used in messages.
    pub fn new(path: PathBuf, file: Arc<dyn RandomAccessFile>) -> Self {
        let file_len = file.len();
        LogReader {
            path,
            file,
            file_len,
            block: Vec::new(),
            block_start: 0,
            pos: 0,
            done: false,
            end: ReadEnd::Clean,
        }
    }

    /// The file being read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The next whole record and the file offset of its first fragment; `None` at the
    /// end, after which [`Self::end`] says why.
    pub fn next_record(&mut self) -> Option<LogRecord> {
        if self.done {
            return None;
        }
        let mut partial: Option<(u64, Vec<u8>)> = None;
        let stop = loop {
            let (offset, kind, payload) = match self.next_fragment() {
                Fragment::Good {
                    offset,
                    kind,
                    payload,
                } => (offset, kind, payload),
                Fragment::Bad { offset, what } => {
                    let record_start = partial.as_ref().map_or(offset, |p| p.0);
                    break Stop {
                        record_start,
                        scan_from: offset + 1,
                        what,
                    };
                }
                Fragment::Eof => match partial {
                    None => {
                        self.done = true;
                        return None;
                    }
                    Some((start, _)) => {
                        break Stop {
                            record_start: start,
                            scan_from: self.file_len,
                            what: "record cut short by the end of the file".to_string(),
                        }
                    }
                },
            };
            match (kind, partial.take()) {
                (RecordType::Full, None) => return Some((offset, payload)),
                (RecordType::First, None) => partial = Some((offset, payload)),
                (RecordType::Middle, Some((start, mut buf))) => {
                    buf.extend_from_slice(&payload);
                    partial = Some((start, buf));
                }
                (RecordType::Last, Some((start, mut buf))) => {
                    buf.extend_from_slice(&payload);
                    return Some((start, buf));
                }
                (RecordType::Full | RecordType::First, Some((start, _))) => {
                    break Stop {
                        record_start: start,
                        scan_from: offset,
                        what: format!("{kind:?} fragment inside an unfinished record"),
                    }
                }
                (RecordType::Middle | RecordType::Last | RecordType::Zero, None) => {
                    break Stop {
                        record_start: offset,
                        scan_from: offset,
                        what: format!("{kind:?} fragment without a First"),
                    }
                }
                (RecordType::Zero, Some((start, _))) => {
                    break Stop {
                        record_start: start,
                        scan_from: offset,
                        what: "Zero fragment inside a record".to_string(),
                    }
                }
            }
        };
        self.finish(stop);
        None
    }

    /// Why reading stopped; meaningful once [`Self::next_record`] has returned `None`.
    pub fn end(&self) -> &ReadEnd {
        &self.end
    }

    fn finish(&mut self, stop: Stop) {
        self.done = true;
        let dropped_bytes = self.file_len.saturating_sub(stop.record_start);
        let valid_later =
            stop.what.starts_with("I/O error") || self.valid_fragment_from(stop.scan_from);
        self.end = if valid_later {
            ReadEnd::Corrupt {
                offset: stop.record_start,
                what: stop.what,
                dropped_bytes,
            }
        } else {
            ReadEnd::TornTail {
                offset: stop.record_start,
                dropped_bytes,
            }
        };
    }

    fn next_fragment(&mut self) -> Fragment {
        loop {
            let at_eof = self.block_start + self.block.len() as u64 >= self.file_len;
            let rest = self.block.get(self.pos..).unwrap_or_default();
            let offset = self.block_start + self.pos as u64;
            if rest.len() < HEADER_SIZE {
                if !at_eof {
                    // A trailer (or an empty initial buffer): go to the next block.
                    if let Err(e) = self.load_block(self.block_start + self.block.len() as u64) {
                        return Fragment::Bad {
                            offset,
                            what: format!("I/O error: {e}"),
                        };
                    }
                    continue;
                }
                if rest.is_empty() || self.block.len() == BLOCK_SIZE {
                    return Fragment::Eof;
                }
                return Fragment::Bad {
                    offset,
                    what: "fragment header cut short by the end of the file".to_string(),
                };
            }
            return match check_fragment(rest) {
                Ok((kind, payload)) => {
                    let payload = payload.to_vec();
                    self.pos += HEADER_SIZE + payload.len();
                    Fragment::Good {
                        offset,
                        kind,
                        payload,
                    }
                }
                Err(what) => {
                    let cut_by_eof = at_eof
                        && self.block.len() < BLOCK_SIZE
                        && RawHeader::parse(rest)
                            .is_some_and(|h| HEADER_SIZE + h.length > rest.len());
                    Fragment::Bad {
                        offset,
                        what: if cut_by_eof {
                            "fragment payload cut short by the end of the file".to_string()
                        } else {
                            what
                        },
                    }
                }
            };
        }
    }

    /// Loads the block starting at file offset `start` (a multiple of `BLOCK_SIZE`).
    fn load_block(&mut self, start: u64) -> Result<()> {
        let len = (self.file_len - start).min(BLOCK_SIZE as u64) as usize;
        self.block.resize(len, 0);
        self.block_start = start;
        self.pos = 0;
        self.file.read_exact_at(start, &mut self.block)
    }

    /// True if some fragment whose checksum verifies starts at or after file offset `from`.
    /// An I/O error during the scan counts as "yes": the reader cannot prove the tail
    /// is only torn, and `Corrupt` is the answer that asks a human.
    fn valid_fragment_from(&mut self, from: u64) -> bool {
        let first_block = from / BLOCK_SIZE as u64 * BLOCK_SIZE as u64;
        let mut start = first_block;
        while start < self.file_len {
            if self.load_block(start).is_err() {
                return true;
            }
            let skip = from.saturating_sub(start) as usize;
            let found = (skip..self.block.len().saturating_sub(HEADER_SIZE - 1)).any(|p| {
                self.block
                    .get(p..)
                    .is_some_and(|frag| check_fragment(frag).is_ok())
            });
            if found {
                return true;
            }
            start += BLOCK_SIZE as u64;
        }
        false
    }
}

/// Reads every record of the log at `path`: the records with their offsets, and why
/// reading stopped. Only opening the file can fail; bad bytes end up in the `ReadEnd`.
pub fn read_all(fs: &dyn Fs, path: &Path) -> Result<(Vec<LogRecord>, ReadEnd)> {
    let mut reader = LogReader::new(path.to_path_buf(), fs.open(path)?);
    let mut records = Vec::new();
    while let Some(r) = reader.next_record() {
        records.push(r);
    }
    Ok((records, reader.end().clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::MemFs;
    use crate::wal::LogWriter;

    #[test]
    fn reads_back_what_the_writer_wrote_and_stays_ended() {
        let fs = MemFs::new();
        let path = PathBuf::from("/l");
        let mut w = LogWriter::new(path.clone(), fs.create(&path).unwrap());
        w.add_record(b"one").unwrap();
        w.add_record(&[9u8; 40_000]).unwrap();
        w.flush().unwrap();
        let mut r = LogReader::new(path.clone(), fs.open(&path).unwrap());
        assert_eq!(r.next_record(), Some((0, b"one".to_vec())));
        assert_eq!(r.next_record(), Some((10, vec![9u8; 40_000])));
        assert_eq!(r.next_record(), None);
        assert_eq!(r.end(), &ReadEnd::Clean);
        assert_eq!(r.next_record(), None);
    }

    #[test]
    fn a_short_header_at_the_end_is_a_torn_tail() {
        let fs = MemFs::new();
        let path = PathBuf::from("/l");
        fs.write_all_synced(&path, &[1, 2, 3]).unwrap();
        let (records, end) = read_all(&fs, &path).unwrap();
        assert!(records.is_empty());
        assert_eq!(
            end,
            ReadEnd::TornTail {
                offset: 0,
                dropped_bytes: 3
            }
        );
    }
}

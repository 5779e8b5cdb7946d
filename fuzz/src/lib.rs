//! Helpers shared by the fuzz targets in `fuzz_targets/`.
//!
//! Every on-disk format checks a CRC before it parses anything, so random mutations of
//! a real file almost always stop at "checksum mismatch" and never reach the decoders
//! behind it. Each target therefore runs twice per input: once on the bytes as given
//! (the checksum paths) and once after [`fix_log_checksums`] or [`fix_table_checksums`]
//! has rewritten every checksum the reader will verify (the decoders).

use kv_engine::fs::{Fs, MemFs, RandomAccessFile};
use kv_engine::sst::{FORMAT_VERSION, MAGIC};
use kv_engine::wal::format::{checksum, RawHeader, RecordType, BLOCK_SIZE, HEADER_SIZE};
use std::path::Path;
use std::sync::Arc;

/// Bytes of an SST footer: three 16-byte handles, version, crc, magic
/// (docs/format/sstable.md).
pub const SST_FOOTER_LEN: usize = 64;
/// Bytes after every SST block payload: compression type and crc32.
const SST_BLOCK_TRAILER_LEN: usize = 5;

/// `bytes` as a file at `path` of a fresh in-memory file system, opened for reading.
pub fn mem_file(path: &Path, bytes: &[u8]) -> (MemFs, Arc<dyn RandomAccessFile>) {
    let fs = MemFs::new();
    if let Some(dir) = path.parent() {
        fs.create_dir_all(dir).expect("MemFs creates directories");
    }
    fs.write_all_synced(path, bytes)
        .expect("MemFs stores any bytes");
    let file = fs.open(path).expect("MemFs opens what it stored");
    (fs, file)
}

/// Runs `read` on a log image as given, then with its checksums made valid.
pub fn read_log_both_ways(log: &[u8], read: impl Fn(&[u8])) {
    read(log);
    let mut fixed = log.to_vec();
    fix_log_checksums(&mut fixed);
    read(&fixed);
}

/// Rewrites the checksum of every fragment header of a WAL/MANIFEST log whose length
/// fits its block and whose type is known, walking blocks the way `LogReader` does.
pub fn fix_log_checksums(log: &mut [u8]) {
    for block in log.chunks_mut(BLOCK_SIZE) {
        let mut pos = 0;
        while let Some(h) = block.get(pos..).and_then(RawHeader::parse) {
            let end = pos + HEADER_SIZE + h.length;
            let (Some(kind), Some(payload)) = (
                RecordType::from_u8(h.kind),
                block.get(pos + HEADER_SIZE..end),
            ) else {
                break;
            };
            let sum = checksum(kind, payload);
            block[pos..pos + 4].copy_from_slice(&sum.to_le_bytes());
            pos = end;
        }
    }
}

/// Makes the footer of an SST image valid (magic, version, crc) and rewrites the
/// trailer crc of every block its handles point to inside the file. Returns false if
/// the image is too short to hold a footer.
pub fn fix_table_checksums(table: &mut [u8]) -> bool {
    let Some(footer_at) = table.len().checked_sub(SST_FOOTER_LEN) else {
        return false;
    };
    let footer = &mut table[footer_at..];
    footer[48..52].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    let crc = crc32(&footer[..52]);
    footer[52..56].copy_from_slice(&crc.to_le_bytes());
    footer[56..64].copy_from_slice(&MAGIC.to_le_bytes());
    let handles: Vec<(u64, u64)> = (0..3)
        .map(|i| (fixed64(footer, i * 16), fixed64(footer, i * 16 + 8)))
        .collect();
    for (offset, size) in handles {
        fix_block_checksum(&mut table[..footer_at], offset, size);
    }
    true
}

/// Rewrites the trailer crc of the SST block at (`offset`, `size`) if it lies in `file`.
pub fn fix_block_checksum(file: &mut [u8], offset: u64, size: u64) {
    let Some((start, end)) = block_span(offset, size) else {
        return;
    };
    if end
        .checked_add(SST_BLOCK_TRAILER_LEN)
        .is_none_or(|e| e > file.len())
    {
        return;
    }
    let crc = crc32(&file[start..=end]);
    file[end + 1..end + SST_BLOCK_TRAILER_LEN].copy_from_slice(&crc.to_le_bytes());
}

/// Start and end (exclusive) of a block's payload, if they fit in memory.
fn block_span(offset: u64, size: u64) -> Option<(usize, usize)> {
    let start = usize::try_from(offset).ok()?;
    Some((start, start.checked_add(usize::try_from(size).ok()?)?))
}

fn fixed64(buf: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&buf[at..at + 8]);
    u64::from_le_bytes(b)
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(bytes);
    h.finalize()
}

/// A deterministic stream of small numbers drawn from fuzz bytes (xorshift seeded by
/// them), for choices such as chunk sizes that should vary but need not be mutated
/// byte by byte.
pub struct Choices(u64);

impl Choices {
    /// A stream seeded from `seed`.
    pub fn new(seed: &[u8]) -> Self {
        let mut s = 0x9e37_79b9_7f4a_7c15u64;
        for &b in seed {
            s = (s ^ b as u64).wrapping_mul(0x1000_0000_01b3);
        }
        Choices(s | 1)
    }

    /// A number in `1..=max` (`max` >= 1).
    pub fn upto(&mut self, max: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % max as u64) as usize + 1
    }
}

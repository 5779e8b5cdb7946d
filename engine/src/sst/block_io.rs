//! How a block sits in the file: its payload, optionally compressed, then a trailer.
//! Spec: docs/format/sstable.md.
//!
//! ```text
//! stored_block     := payload compression_type:u8 crc32:fixed32
//! payload (type 0) := block_contents
//! payload (type 1) := uncompressed_len:varint64 lz4_block(block_contents)
//! crc32            := crc32(payload ++ compression_type), little-endian, unmasked
//! ```

use super::footer::BlockHandle;
use crate::coding::{get_varint, put_varint};
use crate::error::{Error, Result};
use crate::fs::RandomAccessFile;
use crate::options::Compression;
use std::path::Path;

/// Bytes after every block payload: compression type and crc32.
pub(crate) const BLOCK_TRAILER_LEN: usize = 5;

/// Compress a block only if that saves at least 1/8 of it (LevelDB's rule): smaller
/// gains cost more in decompression time than they save in I/O and cache.
const MIN_COMPRESSION_SAVING_DIVISOR: usize = 8;

/// LZ4 cannot expand data by more than ~255x (a match length byte codes at most 255
/// bytes); an `uncompressed_len` above this ratio is corruption, not data, and is refused
/// before allocating.
const LZ4_MAX_RATIO: u64 = 256;

/// Largest block we ever decompress (a block holds at least one whole entry, and the
/// WAL caps a batch at 1 GiB).
const MAX_UNCOMPRESSED_BLOCK: u64 = crate::constants::MAX_BATCH_BYTES as u64 + 4096;

/// Produces the stored form (payload and trailer) of `raw` into `out` (cleared first),
/// compressing it when asked and worthwhile. Returns the payload length.
pub(crate) fn encode_block(raw: &[u8], compression: Compression, out: &mut Vec<u8>) -> usize {
    out.clear();
    let mut kind = Compression::None;
    if compression == Compression::Lz4 {
        put_varint(out, raw.len() as u64);
        out.extend_from_slice(&lz4_flex::block::compress(raw));
        if out.len() <= raw.len() - raw.len() / MIN_COMPRESSION_SAVING_DIVISOR {
            kind = Compression::Lz4;
        }
    }
    if kind == Compression::None {
        out.clear();
        out.extend_from_slice(raw);
    }
    let payload_len = out.len();
    out.push(kind as u8);
    let crc = crc32fast::hash(out);
    out.extend_from_slice(&crc.to_le_bytes());
    payload_len
}

/// Reads the block at `handle`, checks its trailer and returns its uncompressed contents.
/// Every failure is a `Corruption` naming `path` and the block's offset.
pub(crate) fn read_block(
    file: &dyn RandomAccessFile,
    path: &Path,
    handle: BlockHandle,
) -> Result<Vec<u8>> {
    let len = stored_len(file, path, handle)?;
    let mut buf = vec![0; len];
    file.read_exact_at(handle.offset, &mut buf)?;
    decode_stored(buf, path, handle)
}

/// Bytes the block at `handle` takes in the file, its trailer included; a `Corruption`
/// if that runs past the end of the file.
pub(crate) fn stored_len(
    file: &dyn RandomAccessFile,
    path: &Path,
    handle: BlockHandle,
) -> Result<usize> {
    let bad = |what: String| Error::corruption(path, handle.offset, what);
    let end = handle
        .end_with_trailer()
        .filter(|&end| end <= file.len())
        .ok_or_else(|| {
            bad(format!(
                "block handle (offset {}, size {}) runs past the end of the {}-byte file",
                handle.offset,
                handle.size,
                file.len()
            ))
        })?;
    usize::try_from(end - handle.offset).map_err(|_| bad("block too large".into()))
}

/// The uncompressed contents of `buf`, the stored block at `handle` (payload and
/// trailer, as [`stored_len`] measures it), once its checksum matches.
pub(crate) fn decode_stored(mut buf: Vec<u8>, path: &Path, handle: BlockHandle) -> Result<Vec<u8>> {
    let bad = |what: String| Error::corruption(path, handle.offset, what);
    let Some(payload_len) = buf.len().checked_sub(BLOCK_TRAILER_LEN) else {
        return Err(bad("block shorter than its trailer".into()));
    };
    let stored_crc = crate::coding::get_fixed32(&buf, payload_len + 1);
    let covered = buf.get(..payload_len + 1).unwrap_or_default();
    if stored_crc != Some(crc32fast::hash(covered)) {
        return Err(bad("block checksum mismatch".into()));
    }
    let kind = buf.get(payload_len).copied().unwrap_or(u8::MAX);
    buf.truncate(payload_len);
    match super::compression_from_u8(kind) {
        Some(Compression::None) => Ok(buf),
        Some(Compression::Lz4) => decompress_lz4(&buf).map_err(bad),
        None => Err(bad(format!("unknown compression type {kind}"))),
    }
}

fn decompress_lz4(payload: &[u8]) -> std::result::Result<Vec<u8>, String> {
    let (claimed, n) = get_varint(payload).ok_or("bad uncompressed length varint")?;
    let compressed = payload.get(n..).unwrap_or_default();
    if claimed > MAX_UNCOMPRESSED_BLOCK || claimed > compressed.len() as u64 * LZ4_MAX_RATIO {
        return Err(format!(
            "uncompressed length {claimed} is impossible for {} compressed bytes",
            compressed.len()
        ));
    }
    let mut out = vec![0; claimed as usize];
    match lz4_flex::block::decompress_into(compressed, &mut out) {
        Ok(written) if written as u64 == claimed => Ok(out),
        Ok(written) => Err(format!(
            "lz4 block decompressed to {written} bytes, expected {claimed}"
        )),
        Err(e) => Err(format!("lz4 decompression failed: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::{Fs, MemFs};

    fn store(fs: &MemFs, path: &Path, stored: &[u8]) -> std::sync::Arc<dyn RandomAccessFile> {
        fs.write_all_synced(path, stored).unwrap();
        fs.open(path).unwrap()
    }

    #[test]
    fn compressible_blocks_are_compressed_and_round_trip() {
        let raw = vec![b'x'; 4000];
        let mut out = Vec::new();
        let n = encode_block(&raw, Compression::Lz4, &mut out);
        assert!(n < 200, "4000 equal bytes compress well, got {n}");
        assert_eq!(out[n], Compression::Lz4 as u8);
        let fs = MemFs::new();
        let p = Path::new("/b");
        let f = store(&fs, p, &out);
        let h = BlockHandle {
            offset: 0,
            size: n as u64,
        };
        assert_eq!(read_block(f.as_ref(), p, h).unwrap(), raw);
    }

    #[test]
    fn incompressible_blocks_are_stored_raw() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let raw: Vec<u8> = (0..1000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let mut out = Vec::new();
        let n = encode_block(&raw, Compression::Lz4, &mut out);
        assert_eq!(n, raw.len());
        assert_eq!(out[n], Compression::None as u8);
    }

    #[test]
    fn absurd_uncompressed_length_is_corruption() {
        let mut payload = Vec::new();
        put_varint(&mut payload, 1 << 40);
        payload.extend_from_slice(&[0x10, b'a']);
        assert!(decompress_lz4(&payload).unwrap_err().contains("impossible"));
    }

    #[test]
    fn handle_past_end_and_bad_crc_are_corruption() {
        let mut out = Vec::new();
        let n = encode_block(b"hello", Compression::None, &mut out);
        let fs = MemFs::new();
        let p = Path::new("/b");
        let f = store(&fs, p, &out);
        let h = BlockHandle {
            offset: 0,
            size: n as u64 + 1,
        };
        assert!(read_block(f.as_ref(), p, h).unwrap_err().is_corruption());
        fs.corrupt_byte(p, 1).unwrap();
        let h = BlockHandle {
            offset: 0,
            size: n as u64,
        };
        let e = read_block(f.as_ref(), p, h).unwrap_err();
        assert!(e.to_string().contains("checksum"), "{e}");
    }
}

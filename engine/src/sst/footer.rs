//! Block handles and the fixed-size footer that ends every table. Spec:
//! docs/format/sstable.md.
//!
//! ```text
//! handle (in index entries) := offset:varint64 size:varint64
//! footer (64 bytes)         := index_handle filter_handle properties_handle
//!                              format_version:fixed32 footer_crc:fixed32 magic:fixed64
//! footer handle             := offset:fixed64 size:fixed64
//! ```
//! `size` counts the block's payload, not its 5-byte trailer. A filter handle of size 0
//! means "no filter". `footer_crc` is crc32 over the 52 bytes before it. All fixed-width
//! integers are little-endian.

use crate::coding::{get_varint, put_fixed32, put_fixed64, put_varint, Decoder};
use crate::error::{Error, Result};
use std::path::Path;

/// The last 8 bytes of every table: the ASCII bytes `kvdSST01` read as a little-endian u64.
pub const MAGIC: u64 = u64::from_le_bytes(*b"kvdSST01");

/// Version of the table layout this code writes. Readers refuse any other (see the spec's
/// versioning rules); bump it, never reuse it, when the layout changes.
pub const FORMAT_VERSION: u32 = 1;

/// Bytes in a footer: three 16-byte handles, version, crc, magic.
pub(crate) const FOOTER_LEN: usize = 3 * 16 + 4 + 4 + 8;

/// Bytes of the footer covered by its checksum (everything before the crc).
const FOOTER_CRC_COVERS: usize = 3 * 16 + 4;

/// Where a block's payload lies in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BlockHandle {
    /// File offset of the first payload byte.
    pub offset: u64,
    /// Payload length in bytes, excluding the 5-byte block trailer.
    pub size: u64,
}

impl BlockHandle {
    /// Appends the varint encoding used in index entries.
    pub(crate) fn encode_to(&self, out: &mut Vec<u8>) {
        put_varint(out, self.offset);
        put_varint(out, self.size);
    }

    /// Decodes an index entry's value; `None` if malformed or followed by extra bytes.
    pub(crate) fn decode(buf: &[u8]) -> Option<BlockHandle> {
        let (offset, n) = get_varint(buf)?;
        let (size, m) = get_varint(buf.get(n..)?)?;
        (n + m == buf.len()).then_some(BlockHandle { offset, size })
    }

    /// Offset one past the block's trailer, or `None` on overflow.
    pub(crate) fn end_with_trailer(&self) -> Option<u64> {
        self.offset
            .checked_add(self.size)?
            .checked_add(super::block_io::BLOCK_TRAILER_LEN as u64)
    }
}

/// The decoded footer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Footer {
    pub(crate) index: BlockHandle,
    /// `None` when the table has no filter block.
    pub(crate) filter: Option<BlockHandle>,
    pub(crate) properties: BlockHandle,
}

impl Footer {
    /// Encodes the footer, exactly [`FOOTER_LEN`] bytes.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(FOOTER_LEN);
        let filter = self.filter.unwrap_or_default();
        for h in [self.index, filter, self.properties] {
            put_fixed64(&mut out, h.offset);
            put_fixed64(&mut out, h.size);
        }
        put_fixed32(&mut out, FORMAT_VERSION);
        let crc = crc32fast::hash(&out);
        put_fixed32(&mut out, crc);
        put_fixed64(&mut out, MAGIC);
        debug_assert_eq!(out.len(), FOOTER_LEN);
        out
    }

    /// Decodes the footer read from `offset` of `path`, checking magic, checksum and
    /// version, in that order, each failure naming the field's file offset.
    pub(crate) fn decode(path: &Path, offset: u64, buf: &[u8]) -> Result<Footer> {
        let bad = |at: usize, what: String| Error::corruption(path, offset + at as u64, what);
        if buf.len() != FOOTER_LEN {
            return Err(bad(
                0,
                format!("footer is {} bytes, not {FOOTER_LEN}", buf.len()),
            ));
        }
        let mut d = Decoder::new(buf);
        let mut handles = [BlockHandle::default(); 3];
        for h in handles.iter_mut() {
            h.offset = d.fixed64().ok_or_else(|| bad(0, "short footer".into()))?;
            h.size = d.fixed64().ok_or_else(|| bad(0, "short footer".into()))?;
        }
        let version = d.fixed32().ok_or_else(|| bad(48, "short footer".into()))?;
        let crc = d.fixed32().ok_or_else(|| bad(52, "short footer".into()))?;
        let magic = d.fixed64().ok_or_else(|| bad(56, "short footer".into()))?;
        if magic != MAGIC {
            return Err(bad(
                56,
                format!("bad magic {magic:#018x} (not an SSTable, or truncated)"),
            ));
        }
        let covered = buf.get(..FOOTER_CRC_COVERS).unwrap_or_default();
        if crc32fast::hash(covered) != crc {
            return Err(bad(52, "footer checksum mismatch".into()));
        }
        if version != FORMAT_VERSION {
            return Err(bad(
                48,
                format!("unsupported format version {version} (this build reads {FORMAT_VERSION})"),
            ));
        }
        let [index, filter, properties] = handles;
        Ok(Footer {
            index,
            filter: (filter.size != 0).then_some(filter),
            properties,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Footer {
        Footer {
            index: BlockHandle {
                offset: 900,
                size: 40,
            },
            filter: Some(BlockHandle {
                offset: 100,
                size: 17,
            }),
            properties: BlockHandle {
                offset: 200,
                size: 300,
            },
        }
    }

    #[test]
    fn footer_round_trips() {
        let f = sample();
        let buf = f.encode();
        assert_eq!(buf.len(), FOOTER_LEN);
        assert_eq!(&buf[56..], b"kvdSST01");
        assert_eq!(Footer::decode(Path::new("t"), 0, &buf).unwrap(), f);
        let none = Footer { filter: None, ..f };
        assert_eq!(
            Footer::decode(Path::new("t"), 0, &none.encode()).unwrap(),
            none
        );
    }

    #[test]
    fn every_flipped_byte_is_caught_with_its_offset() {
        let buf = sample().encode();
        for i in 0..buf.len() {
            let mut b = buf.clone();
            b[i] ^= 0x01;
            match Footer::decode(Path::new("t"), 1000, &b) {
                Err(Error::Corruption { offset, .. }) => assert!((1000..1064).contains(&offset)),
                other => panic!("byte {i}: {other:?}"),
            }
        }
    }

    #[test]
    fn handle_decoding_rejects_trailing_bytes() {
        let mut buf = Vec::new();
        let h = BlockHandle {
            offset: 1 << 40,
            size: 4096,
        };
        h.encode_to(&mut buf);
        assert_eq!(BlockHandle::decode(&buf), Some(h));
        buf.push(0);
        assert_eq!(BlockHandle::decode(&buf), None);
        assert_eq!(BlockHandle::decode(&[0x80]), None);
    }
}

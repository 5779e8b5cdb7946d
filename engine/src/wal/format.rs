//! The fragment header shared by [`super::LogWriter`] and [`super::LogReader`].
//! Spec: docs/format/wal.md.
//!
//! ```text
//! file     := block*
//! block    := fragment* trailer?           ; every block but the last is WAL_BLOCK_SIZE bytes
//! fragment := checksum:fixed32-LE length:fixed16-LE type:u8 payload:byte{length}
//! trailer  := 0x00{0..6}                   ; when fewer than HEADER_SIZE bytes remain
//! checksum := mask(crc32(type ++ payload))
//! mask(c)  := ((c >> 15) | (c << 17)) + 0xa282ead8   (wrapping, LevelDB's mask)
//! ```
//! A fragment never crosses a block boundary; a record is one `Full` fragment or a
//! `First`, any number of `Middle`s and a `Last`.

/// Bytes of a fragment header: checksum (4), length (2), type (1).
pub const HEADER_SIZE: usize = 7;

/// Size of a block; re-exported from [`crate::constants::WAL_BLOCK_SIZE`].
pub const BLOCK_SIZE: usize = crate::constants::WAL_BLOCK_SIZE;

/// Added to the rotated CRC so that a CRC computed over bytes that themselves hold
/// CRCs (a log stored inside a log) is not trivially predictable (LevelDB's constant).
const MASK_DELTA: u32 = 0xa282_ead8;

/// Fragment types. On disk: never change or reuse a value.
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordType {
    /// Reserved (zero-filled, e.g. preallocated, space); never written, a reader stops on it.
    Zero = 0,
    /// A whole record in one fragment.
    Full = 1,
    /// The first fragment of a record.
    First = 2,
    /// An inner fragment of a record.
    Middle = 3,
    /// The last fragment of a record.
    Last = 4,
}

impl RecordType {
    /// Decodes a type byte; `None` for values no version has defined.
    pub fn from_u8(b: u8) -> Option<RecordType> {
        match b {
            0 => Some(RecordType::Zero),
            1 => Some(RecordType::Full),
            2 => Some(RecordType::First),
            3 => Some(RecordType::Middle),
            4 => Some(RecordType::Last),
            _ => None,
        }
    }
}

/// The masked checksum stored in a fragment header.
pub fn checksum(kind: RecordType, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&[kind as u8]);
    h.update(payload);
    let crc = h.finalize();
    crc.rotate_right(15).wrapping_add(MASK_DELTA)
}

/// Encodes the header of a fragment holding `payload` (at most `u16::MAX` bytes).
pub fn encode_header(kind: RecordType, payload: &[u8]) -> [u8; HEADER_SIZE] {
    debug_assert!(payload.len() <= BLOCK_SIZE - HEADER_SIZE);
    let mut h = [0u8; HEADER_SIZE];
    h[..4].copy_from_slice(&checksum(kind, payload).to_le_bytes());
    h[4..6].copy_from_slice(&(payload.len() as u16).to_le_bytes());
    h[6] = kind as u8;
    h
}

/// A fragment header as read, not yet checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawHeader {
    /// Stored checksum.
    pub checksum: u32,
    /// Payload length.
    pub length: usize,
    /// Raw type byte.
    pub kind: u8,
}

impl RawHeader {
    /// Reads a header from the front of `buf`; `None` if `buf` is shorter than a header.
    pub fn parse(buf: &[u8]) -> Option<RawHeader> {
        let checksum = crate::coding::get_fixed32(buf, 0)?;
        let len = buf.get(4..6)?;
        let kind = *buf.get(6)?;
        Some(RawHeader {
            checksum,
            length: u16::from_le_bytes(len.try_into().ok()?) as usize,
            kind,
        })
    }
}

/// Checks the fragment at the front of `buf` (which must not extend past its block).
/// Returns its type and payload, or what is wrong with it.
pub fn check_fragment(buf: &[u8]) -> Result<(RecordType, &[u8]), String> {
    let h = RawHeader::parse(buf).ok_or_else(|| "truncated fragment header".to_string())?;
    let payload = buf
        .get(HEADER_SIZE..HEADER_SIZE + h.length)
        .ok_or_else(|| format!("fragment length {} runs past the block", h.length))?;
    let kind = match RecordType::from_u8(h.kind) {
        Some(RecordType::Zero) | None => return Err(format!("bad fragment type {}", h.kind)),
        Some(k) => k,
    };
    if checksum(kind, payload) != h.checksum {
        return Err("fragment checksum mismatch".to_string());
    }
    Ok((kind, payload))
}

/// The file offset of byte `payload_pos` of the record whose first fragment starts at
/// `record_start`: skips the headers and block trailers in between, so a decoder's error
/// position inside a record can be reported as a position in the file.
pub fn payload_file_offset(record_start: u64, payload_pos: usize) -> u64 {
    let block = BLOCK_SIZE as u64;
    let header = HEADER_SIZE as u64;
    let mut pos = record_start;
    let mut left = payload_pos as u64;
    loop {
        let room_in_block = block - pos % block;
        if room_in_block < header {
            pos += room_in_block;
            continue;
        }
        let room = room_in_block - header;
        if left < room {
            return pos + header + left;
        }
        left -= room;
        pos += room_in_block;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_checks() {
        let payload = b"hello";
        let mut frag = encode_header(RecordType::Full, payload).to_vec();
        frag.extend_from_slice(payload);
        assert_eq!(check_fragment(&frag), Ok((RecordType::Full, &payload[..])));
        frag[HEADER_SIZE] ^= 1;
        assert!(check_fragment(&frag).is_err());
    }

    #[test]
    fn payload_offsets_skip_headers_and_trailers() {
        assert_eq!(payload_file_offset(0, 0), 7);
        assert_eq!(payload_file_offset(10, 5), 22);
        let first_room = BLOCK_SIZE - 100 - HEADER_SIZE;
        assert_eq!(
            payload_file_offset(100, first_room - 1),
            BLOCK_SIZE as u64 - 1
        );
        assert_eq!(
            payload_file_offset(100, first_room),
            (BLOCK_SIZE + HEADER_SIZE) as u64
        );
        // A record starting in a trailer position begins at the next block.
        assert_eq!(
            payload_file_offset(BLOCK_SIZE as u64 - 3, 0),
            (BLOCK_SIZE + HEADER_SIZE) as u64
        );
    }

    #[test]
    fn zero_filled_space_is_not_a_fragment() {
        assert!(check_fragment(&[0u8; 64]).is_err());
    }

    #[test]
    fn type_values_are_fixed() {
        for (b, t) in [
            (0, RecordType::Zero),
            (1, RecordType::Full),
            (2, RecordType::First),
            (3, RecordType::Middle),
            (4, RecordType::Last),
        ] {
            assert_eq!(t as u8, b);
            assert_eq!(RecordType::from_u8(b), Some(t));
        }
        assert_eq!(RecordType::from_u8(5), None);
    }
}

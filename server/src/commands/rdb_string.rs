//! Redis's DUMP payload for a string value (docs/compatibility.md, "DUMP and RESTORE"):
//!
//! ```text
//! payload := type:u8 (0 = string) string rdb_version:u16le crc64:u64le
//! string  := len bytes | 0xC0 i8 | 0xC1 i16le | 0xC2 i32le | 0xC3 clen len lzf-bytes
//! len     := 00xxxxxx | 01xxxxxx u8 | 0x80 u32be | 0x81 u64be
//! ```
//!
//! The CRC is Redis's CRC-64/Jones (reflected, polynomial 0xad93d23594c935a9, initial
//! value 0, no final xor) over everything before it. kvd writes integers in the integer
//! encodings and other strings of a key plainly (never LZF), and reads all four
//! encodings. The pieces (lengths, strings, the footer, [`Reader`]) also serve FUNCTION
//! DUMP / RESTORE (scripting/function_dump.rs), whose strings are LZF-compressed as
//! Redis compresses them ([`write_string_compressed`]).

use super::lzf;

/// RDB version kvd writes (Redis 7.0's RDB_VERSION); payloads up to it are accepted.
pub const RDB_VERSION: u16 = 10;
/// RDB object type of a string.
const TYPE_STRING: u8 = 0;
const ENC_INT8: u8 = 0;
const ENC_INT16: u8 = 1;
const ENC_INT32: u8 = 2;
const ENC_LZF: u8 = 3;

/// Redis compresses only strings longer than this ("unable to compress even
/// aaaaaaaaaaaaaaaaaa" below), and only when LZF saves at least
/// [`MIN_COMPRESS_GAIN`] bytes.
const MIN_COMPRESS_LEN: usize = 20;
const MIN_COMPRESS_GAIN: usize = 4;

/// Why a payload was refused, mapped to Redis's two RESTORE errors.
#[derive(Debug, PartialEq, Eq)]
pub enum PayloadError {
    /// Too short, a newer RDB version, or a checksum mismatch.
    VersionOrChecksum,
    /// The object does not parse.
    BadFormat,
    /// A valid object of a type kvd does not store (its RDB type byte).
    NotAString(u8),
}

/// Redis's crc64 (CRC-64/Jones, reflected).
pub fn crc64(mut crc: u64, data: &[u8]) -> u64 {
    const POLY_REFLECTED: u64 = 0x95ac_9329_ac4b_c9b5; // 0xad93d23594c935a9 bit-reversed
    for &b in data {
        crc ^= b as u64;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ POLY_REFLECTED
            } else {
                crc >> 1
            };
        }
    }
    crc
}

/// The DUMP payload of string `value`.
pub fn dump_string(value: &[u8]) -> Vec<u8> {
    let mut out = vec![TYPE_STRING];
    write_string(&mut out, value);
    seal(&mut out);
    out
}

/// Redis's rdbTryIntegerEncoding: a canonical integer of at most 11 characters that
/// fits 32 bits.
fn small_integer(v: &[u8]) -> Option<i32> {
    if v.len() > 11 {
        return None;
    }
    let n = crate::protocol::parser::parse_i64(v)?;
    i32::try_from(n).ok()
}

fn write_string(out: &mut Vec<u8>, v: &[u8]) {
    if !write_integer(out, v) {
        write_len(out, v.len() as u64);
        out.extend_from_slice(v);
    }
}

/// Redis's `rdbSaveRawString` with `rdbcompression yes` (its default): an integer in an
/// integer encoding, a string of more than 20 bytes LZF-compressed when that saves 4
/// bytes, else the string as it is.
pub fn write_string_compressed(out: &mut Vec<u8>, v: &[u8]) {
    if write_integer(out, v) {
        return;
    }
    if v.len() > MIN_COMPRESS_LEN {
        if let Some(c) = lzf::compress(v, v.len() - MIN_COMPRESS_GAIN) {
            out.push(0xC0 | ENC_LZF);
            write_len(out, c.len() as u64);
            write_len(out, v.len() as u64);
            out.extend_from_slice(&c);
            return;
        }
    }
    write_len(out, v.len() as u64);
    out.extend_from_slice(v);
}

/// Writes `v` in an integer encoding if it is a small canonical integer.
fn write_integer(out: &mut Vec<u8>, v: &[u8]) -> bool {
    if let Some(n) = small_integer(v) {
        if let Ok(b) = i8::try_from(n) {
            out.extend_from_slice(&[0xC0 | ENC_INT8, b as u8]);
        } else if let Ok(s) = i16::try_from(n) {
            out.push(0xC0 | ENC_INT16);
            out.extend_from_slice(&s.to_le_bytes());
        } else {
            out.push(0xC0 | ENC_INT32);
            out.extend_from_slice(&n.to_le_bytes());
        }
        return true;
    }
    false
}

/// An RDB length.
pub fn write_len(out: &mut Vec<u8>, n: u64) {
    if n < 1 << 6 {
        out.push(n as u8);
    } else if n < 1 << 14 {
        out.extend_from_slice(&[0x40 | (n >> 8) as u8, n as u8]);
    } else if n <= u32::MAX as u64 {
        out.push(0x80);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// Ends a payload: the RDB version, then the CRC64 of everything before it.
pub fn seal(out: &mut Vec<u8>) {
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64(0, out);
    out.extend_from_slice(&crc.to_le_bytes());
}

/// The body of a payload whose footer holds (Redis's verifyDumpPayload: at most
/// [`RDB_VERSION`], the right CRC64).
pub fn verify(payload: &[u8]) -> Result<&[u8], PayloadError> {
    if payload.len() < 10 {
        return Err(PayloadError::VersionOrChecksum);
    }
    let (body, footer) = payload.split_at(payload.len() - 10);
    let version = u16::from_le_bytes([footer[0], footer[1]]);
    let mut crc = [0u8; 8];
    crc.copy_from_slice(&footer[2..]);
    if version > RDB_VERSION || crc64(0, &payload[..payload.len() - 8]) != u64::from_le_bytes(crc) {
        return Err(PayloadError::VersionOrChecksum);
    }
    Ok(body)
}

/// Checks the footer and returns the string inside.
pub fn restore_string(payload: &[u8]) -> Result<Vec<u8>, PayloadError> {
    let mut r = Reader::new(verify(payload)?);
    let ty = r.byte()?;
    if ty != TYPE_STRING {
        return Err(PayloadError::NotAString(ty));
    }
    r.string()
}

/// Reads RDB bytes, lengths and strings off the front of a payload's body.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

/// A length, or the encoding of a specially encoded string.
enum Len {
    Plain(u64),
    Encoded(u8),
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }

    /// Whether everything was read.
    pub fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// The next `n` bytes as they are.
    pub fn take(&mut self, n: usize) -> Result<&[u8], PayloadError> {
        let end = self.pos.checked_add(n).ok_or(PayloadError::BadFormat)?;
        let s = self.buf.get(self.pos..end).ok_or(PayloadError::BadFormat)?;
        self.pos = end;
        Ok(s)
    }

    /// One byte.
    pub fn byte(&mut self) -> Result<u8, PayloadError> {
        Ok(self.take(1)?[0])
    }

    fn len(&mut self) -> Result<Len, PayloadError> {
        let b = self.byte()?;
        Ok(match b >> 6 {
            0 => Len::Plain((b & 0x3F) as u64),
            1 => Len::Plain((((b & 0x3F) as u64) << 8) | self.byte()? as u64),
            3 => Len::Encoded(b & 0x3F),
            _ if b == 0x80 => {
                let s = self.take(4)?;
                Len::Plain(u32::from_be_bytes([s[0], s[1], s[2], s[3]]) as u64)
            }
            _ if b == 0x81 => {
                let mut x = [0u8; 8];
                x.copy_from_slice(self.take(8)?);
                Len::Plain(u64::from_be_bytes(x))
            }
            _ => return Err(PayloadError::BadFormat),
        })
    }

    /// A length (not a string's special encoding).
    pub fn plain_len(&mut self) -> Result<usize, PayloadError> {
        match self.len()? {
            Len::Plain(n) => usize::try_from(n).map_err(|_| PayloadError::BadFormat),
            Len::Encoded(_) => Err(PayloadError::BadFormat),
        }
    }

    /// A string in any of its encodings.
    pub fn string(&mut self) -> Result<Vec<u8>, PayloadError> {
        match self.len()? {
            Len::Plain(n) => {
                let n = usize::try_from(n).map_err(|_| PayloadError::BadFormat)?;
                Ok(self.take(n)?.to_vec())
            }
            Len::Encoded(ENC_INT8) => Ok((self.byte()? as i8).to_string().into_bytes()),
            Len::Encoded(ENC_INT16) => {
                let s = self.take(2)?;
                Ok(i16::from_le_bytes([s[0], s[1]]).to_string().into_bytes())
            }
            Len::Encoded(ENC_INT32) => {
                let s = self.take(4)?;
                Ok(i32::from_le_bytes([s[0], s[1], s[2], s[3]])
                    .to_string()
                    .into_bytes())
            }
            Len::Encoded(ENC_LZF) => {
                let clen = self.plain_len()?;
                let len = self.plain_len()?;
                let compressed = self.take(clen)?;
                lzf::decompress(compressed, len).ok_or(PayloadError::BadFormat)
            }
            Len::Encoded(_) => Err(PayloadError::BadFormat),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc64_check_value() {
        // Redis's own crc64 test vector.
        assert_eq!(crc64(0, b"123456789"), 0xe9c6d914c4b8d9ca);
    }

    #[test]
    fn dump_of_12_is_byte_for_byte_redis() {
        // `redis-cli DUMP k` after `SET k 12` on Redis 7.0.15.
        let redis = [
            0x00, 0xc0, 0x0c, 0x0a, 0x00, 0x3c, 0x2a, 0xf8, 0x51, 0x5c, 0x04, 0xbc, 0xd5,
        ];
        assert_eq!(dump_string(b"12"), redis);
        assert_eq!(restore_string(&redis).unwrap(), b"12");
    }

    #[test]
    fn round_trips_and_refusals() {
        for v in [
            &b""[..],
            b"-129",
            b"40000",
            b"-2147483648",
            b"2147483648",
            b"012",
            &[7u8; 70],
            &[1u8; 20000],
        ] {
            assert_eq!(restore_string(&dump_string(v)).unwrap(), v);
        }
        let mut p = dump_string(b"hello");
        p[1] ^= 1;
        assert_eq!(restore_string(&p), Err(PayloadError::VersionOrChecksum));
        assert_eq!(restore_string(b"x"), Err(PayloadError::VersionOrChecksum));
    }

    #[test]
    fn lzf_literal_and_back_reference() {
        // "aaaaaaaaaa": literal 'a', then a back-reference of 9 bytes at distance 1.
        let input = [0x00, b'a', 0xE0, 0x00, 0x00];
        assert_eq!(lzf::decompress(&input, 10).unwrap(), b"aaaaaaaaaa");
        assert!(lzf::decompress(&input, 11).is_none());
    }
}

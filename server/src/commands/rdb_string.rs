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
//! encodings and other strings plainly (never LZF), and reads all four encodings.

/// RDB version kvd writes (Redis 7.0's RDB_VERSION); payloads up to it are accepted.
pub const RDB_VERSION: u16 = 10;
/// RDB object type of a string.
const TYPE_STRING: u8 = 0;
const ENC_INT8: u8 = 0;
const ENC_INT16: u8 = 1;
const ENC_INT32: u8 = 2;
const ENC_LZF: u8 = 3;

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
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64(0, &out);
    out.extend_from_slice(&crc.to_le_bytes());
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
        return;
    }
    write_len(out, v.len() as u64);
    out.extend_from_slice(v);
}

fn write_len(out: &mut Vec<u8>, n: u64) {
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

/// Checks the footer (Redis's verifyDumpPayload) and returns the string inside.
pub fn restore_string(payload: &[u8]) -> Result<Vec<u8>, PayloadError> {
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
    let mut r = Reader { buf: body, pos: 0 };
    let ty = r.byte()?;
    if ty != TYPE_STRING {
        return Err(PayloadError::NotAString(ty));
    }
    r.string()
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

/// A length, or the encoding of a specially encoded string.
enum Len {
    Plain(u64),
    Encoded(u8),
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], PayloadError> {
        let end = self.pos.checked_add(n).ok_or(PayloadError::BadFormat)?;
        let s = self.buf.get(self.pos..end).ok_or(PayloadError::BadFormat)?;
        self.pos = end;
        Ok(s)
    }

    fn byte(&mut self) -> Result<u8, PayloadError> {
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

    fn plain_len(&mut self) -> Result<usize, PayloadError> {
        match self.len()? {
            Len::Plain(n) => usize::try_from(n).map_err(|_| PayloadError::BadFormat),
            Len::Encoded(_) => Err(PayloadError::BadFormat),
        }
    }

    fn string(&mut self) -> Result<Vec<u8>, PayloadError> {
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
                lzf_decompress(compressed, len)
            }
            Len::Encoded(_) => Err(PayloadError::BadFormat),
        }
    }
}

/// liblzf's decompressor; the output must be exactly `len` bytes (as Redis checks).
fn lzf_decompress(input: &[u8], len: usize) -> Result<Vec<u8>, PayloadError> {
    // The output is never longer than the expected length: a forged `len` cannot make
    // this allocate more than the payload describes and then fails below.
    let mut out: Vec<u8> = Vec::with_capacity(len.min(input.len().saturating_mul(264)));
    let mut i = 0;
    while i < input.len() {
        let ctrl = input[i] as usize;
        i += 1;
        if ctrl < 32 {
            let n = ctrl + 1; // literal run
            let lit = input.get(i..i + n).ok_or(PayloadError::BadFormat)?;
            if out.len() + n > len {
                return Err(PayloadError::BadFormat);
            }
            out.extend_from_slice(lit);
            i += n;
        } else {
            let mut n = ctrl >> 5;
            if n == 7 {
                n += *input.get(i).ok_or(PayloadError::BadFormat)? as usize;
                i += 1;
            }
            n += 2;
            let low = *input.get(i).ok_or(PayloadError::BadFormat)? as usize;
            i += 1;
            let back = ((ctrl & 0x1F) << 8) + low + 1;
            if back > out.len() || out.len() + n > len {
                return Err(PayloadError::BadFormat);
            }
            let start = out.len() - back;
            for k in 0..n {
                let b = out[start + k]; // may overlap what this copy writes
                out.push(b);
            }
        }
    }
    if out.len() != len {
        return Err(PayloadError::BadFormat);
    }
    Ok(out)
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
        assert_eq!(lzf_decompress(&input, 10).unwrap(), b"aaaaaaaaaa");
        assert!(lzf_decompress(&input, 11).is_err());
    }
}

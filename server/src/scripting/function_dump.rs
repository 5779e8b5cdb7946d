//! FUNCTION DUMP / RESTORE payloads in Redis 7's format, byte for byte
//! (docs/format/function-dump.md; Redis's `functionDumpCommand`, `rdbSaveFunctions`,
//! `rdbFunctionLoad`, `verifyDumpPayload`):
//!
//! ```text
//! payload  := library* rdb_version:u16 LE  crc:u64 LE     (crc64 Jones of all before it)
//! library  := 0xF5 string                                 (RDB_OPCODE_FUNCTION2: the code)
//!           | 0xF6 string string len [string] string      (7.0 rc's: name, engine, has
//!                                                          description, description, body)
//! string   := len bytes | 0xC0 i8 | 0xC1 i16 LE | 0xC2 i32 LE | 0xC3 clen len lzf-bytes
//! len      := 00xxxxxx | 01xxxxxx xxxxxxxx | 0x80 u32 BE | 0x81 u64 BE
//! ```
//!
//! Strings, lengths, the footer and LZF are the RDB pieces of `commands/rdb_string.rs`
//! (and `commands/lzf.rs`), shared with DUMP / RESTORE of keys. Payloads of kvd's
//! earlier format (`KVDFUNC1`, [`decode_kvd1`]) still restore.

use crate::commands::rdb_string::{self, PayloadError, Reader};
use bytes::Bytes;

/// Opcode before each library's code (Redis's RDB_OPCODE_FUNCTION2).
const OPCODE_FUNCTION2: u8 = 245;
/// Opcode of Redis 7.0 rc1/rc2 libraries (RDB_OPCODE_FUNCTION_PRE_GA), still read.
const OPCODE_FUNCTION_PRE_GA: u8 = 246;
/// Magic of kvd's earlier payloads (u32 LE count, u32 LE length + code each, CRC-32).
const KVD1_MAGIC: &[u8] = b"KVDFUNC1";

/// Why a payload does not restore; [`DumpError::message`] is Redis's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DumpError {
    /// Too short, a newer RDB version than Redis 7.0's (10), or a wrong checksum.
    VersionOrChecksum,
    /// An opcode other than a function library's.
    NotAFunction,
    /// A string that does not decode (the message names which one).
    Failed(&'static str),
}

impl DumpError {
    /// Redis's error text, without the `ERR ` code.
    pub fn message(self) -> &'static str {
        match self {
            DumpError::VersionOrChecksum => "DUMP payload version or checksum are wrong",
            DumpError::NotAFunction => "given type is not a function",
            DumpError::Failed(what) => what,
        }
    }
}

/// The payload of `codes` (libraries in that order), as Redis 7.0 writes it with
/// `rdbcompression yes` (its default).
pub fn encode<'a>(codes: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for code in codes {
        out.push(OPCODE_FUNCTION2);
        rdb_string::write_string_compressed(&mut out, code);
    }
    rdb_string::seal(&mut out);
    out
}

/// The library codes of a payload, in its order. A payload of a newer RDB version or
/// with a wrong checksum is refused as Redis 7.0 refuses it; a `KVDFUNC1` payload
/// (kvd's earlier format) is read too.
pub fn decode(payload: &[u8]) -> Result<Vec<Bytes>, DumpError> {
    if payload.starts_with(KVD1_MAGIC) {
        if let Some(codes) = decode_kvd1(payload) {
            return Ok(codes);
        }
    }
    let body = rdb_string::verify(payload).map_err(|_| DumpError::VersionOrChecksum)?;
    let mut r = Reader::new(body);
    let mut codes = Vec::new();
    while !r.at_end() {
        let code = match r.byte() {
            Ok(OPCODE_FUNCTION2) => r
                .string()
                .map_err(|_| DumpError::Failed("Failed loading library payload"))?,
            Ok(OPCODE_FUNCTION_PRE_GA) => pre_ga_library(&mut r)?,
            _ => return Err(DumpError::NotAFunction),
        };
        codes.push(Bytes::from(code));
    }
    Ok(codes)
}

/// A 7.0 rc library (name, engine, optional description, body) as the code Redis makes
/// of it: `#!<engine> name=<name>\n<body>`.
fn pre_ga_library(r: &mut Reader<'_>) -> Result<Vec<u8>, DumpError> {
    let failed = |what: &'static str| move |_: PayloadError| DumpError::Failed(what);
    let name = r.string().map_err(failed("Failed loading library name"))?;
    let engine = r.string().map_err(failed("Failed loading engine name"))?;
    let has_description = r
        .plain_len()
        .map_err(failed("Failed loading library description indicator"))?;
    if has_description != 0 {
        r.string()
            .map_err(failed("Failed loading library description"))?;
    }
    let body = r.string().map_err(failed("Failed loading library blob"))?;
    let mut code = b"#!".to_vec();
    code.extend_from_slice(&engine);
    code.extend_from_slice(b" name=");
    code.extend_from_slice(&name);
    code.push(b'\n');
    code.extend_from_slice(&body);
    Ok(code)
}

/// The library codes of a payload in kvd's earlier format, if it is whole:
/// `KVDFUNC1`, u32 LE count, per library u32 LE length and code, CRC-32 (IEEE) LE of
/// everything before it.
pub fn decode_kvd1(p: &[u8]) -> Option<Vec<Bytes>> {
    let body_len = p.len().checked_sub(4)?;
    let (body, crc) = p.split_at(body_len);
    if crc32fast::hash(body).to_le_bytes() != crc || !body.starts_with(KVD1_MAGIC) {
        return None;
    }
    let mut r = Reader::new(&body[KVD1_MAGIC.len()..]);
    let count = u32_le(&mut r)?;
    let mut codes = Vec::new();
    for _ in 0..count {
        let len = u32_le(&mut r)? as usize;
        codes.push(Bytes::copy_from_slice(r.take(len).ok()?));
    }
    r.at_end().then_some(codes)
}

fn u32_le(r: &mut Reader<'_>) -> Option<u32> {
    Some(u32::from_le_bytes(r.take(4).ok()?.try_into().ok()?))
}

#[cfg(test)]
#[path = "function_dump_tests.rs"]
mod tests;

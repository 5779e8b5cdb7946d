//! Tests of function_dump.rs against payloads captured from redis-server 7.0.15.

use super::*;
use crate::commands::rdb_string::crc64;

/// `FUNCTION DUMP` of redis-server 7.0.15 holding only this library (LZF-compressed).
const MYLIB: &[u8] =
    b"#!lua name=mylib\nredis.register_function('myfunc', function(keys, args) return args[1] end)";
const MYLIB_DUMP: &str = "f5c34056405b1f23216c7561206e616d653d6d796c69620a72656469732e72656769737465725f0b66756e6374696f6e28276d79400b02272c2040066012116b6579732c2061726773292072657475726e600c075b315d20656e64290a008d5936adc6e707da";
/// The same for a library LZF cannot shorten by 4 bytes (stored as it is).
const X: &[u8] = b"#!lua name=x\nredis.register_function('f', function() return 1 end)";
const X_DUMP: &str = "f5404223216c7561206e616d653d780a72656469732e72656769737465725f66756e6374696f6e282766272c2066756e6374696f6e28292072657475726e203120656e64290a0024df6f43a8d16ed9";
/// And with no library at all.
const EMPTY_DUMP: &str = "0a005d9b5c400f7fa2da";

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// `body` with the RDB version and CRC64 footer.
fn sealed(mut body: Vec<u8>, version: u16) -> Vec<u8> {
    body.extend_from_slice(&version.to_le_bytes());
    let crc = crc64(0, &body);
    body.extend_from_slice(&crc.to_le_bytes());
    body
}

#[test]
fn encodes_redis_bytes_exactly() {
    assert_eq!(encode([MYLIB]), hex(MYLIB_DUMP));
    assert_eq!(encode([X]), hex(X_DUMP));
    assert_eq!(encode([]), hex(EMPTY_DUMP));
}

#[test]
fn decodes_what_redis_wrote() {
    assert_eq!(decode(&hex(MYLIB_DUMP)).unwrap(), vec![MYLIB]);
    assert_eq!(decode(&hex(X_DUMP)).unwrap(), vec![X]);
    assert!(decode(&hex(EMPTY_DUMP)).unwrap().is_empty());
}

#[test]
fn round_trips_every_length_encoding() {
    let big: Vec<u8> = (0u32..70_000)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let codes: Vec<Vec<u8>> = vec![
        b"#!lua name=a\n".to_vec(), // 6-bit length
        [MYLIB, MYLIB].concat(),    // compressed
        big,                        // 32-bit length
        b"-123".to_vec(),           // int8
        b"30000".to_vec(),          // int16
        b"-2000000000".to_vec(),    // int32
        b"007".to_vec(),            // not canonical: a string
    ];
    let p = encode(codes.iter().map(|c| c.as_slice()));
    assert_eq!(decode(&p).unwrap(), codes);
    assert_eq!(p[p.len() - 10..p.len() - 8], [10, 0]);
    let ints = encode([b"-123".as_slice()]);
    assert_eq!(ints[..3], [OPCODE_FUNCTION2, 0xC0, (-123i8) as u8]);
}

#[test]
fn reads_64_bit_lengths_and_pre_ga_libraries() {
    let mut body = vec![OPCODE_FUNCTION2, 0x81];
    body.extend_from_slice(&3u64.to_be_bytes());
    body.extend_from_slice(b"abc");
    // 7.0 rc: name "lib", engine "LUA", a description, then the body.
    body.extend_from_slice(&[
        OPCODE_FUNCTION_PRE_GA,
        3,
        b'l',
        b'i',
        b'b',
        3,
        b'L',
        b'U',
        b'A',
    ]);
    body.extend_from_slice(&[1, 4, b'd', b'e', b's', b'c', 6]);
    body.extend_from_slice(b"body()");
    assert_eq!(
        decode(&sealed(body, 10)).unwrap(),
        vec![Bytes::from("abc"), Bytes::from("#!LUA name=lib\nbody()")]
    );
}

#[test]
fn a_newer_rdb_version_or_damage_is_refused_with_redis_errors() {
    let good = hex(MYLIB_DUMP);
    let newer = sealed(good[..good.len() - 10].to_vec(), 11);
    assert_eq!(decode(&newer), Err(DumpError::VersionOrChecksum));
    let older = sealed(good[..good.len() - 10].to_vec(), 9);
    assert_eq!(decode(&older).unwrap(), vec![MYLIB]);
    for i in 0..good.len() {
        let mut bad = good.clone();
        bad[i] ^= 0x10;
        assert!(decode(&bad).is_err(), "flipped byte {i}");
    }
    for cut in 0..good.len() {
        assert!(decode(&good[..cut]).is_err(), "cut at {cut}");
    }
    assert_eq!(
        decode(&sealed(vec![0x00, 1, b'a'], 10)),
        Err(DumpError::NotAFunction)
    );
    // A checksum that holds over broken contents: every cut of the body.
    let body = &good[..good.len() - 10];
    for cut in 1..body.len() {
        assert_eq!(
            decode(&sealed(body[..cut].to_vec(), 10)),
            Err(DumpError::Failed("Failed loading library payload")),
            "body cut at {cut}"
        );
    }
    assert_eq!(
        decode(&sealed(vec![OPCODE_FUNCTION_PRE_GA, 3, b'l'], 10)),
        Err(DumpError::Failed("Failed loading library name"))
    );
    assert_eq!(
        DumpError::VersionOrChecksum.message(),
        "DUMP payload version or checksum are wrong"
    );
}

#[test]
fn kvd_payloads_of_the_earlier_format_still_decode() {
    let mut p = KVD1_MAGIC.to_vec();
    p.extend_from_slice(&1u32.to_le_bytes());
    p.extend_from_slice(&3u32.to_le_bytes());
    p.extend_from_slice(b"abc");
    let crc = crc32fast::hash(&p);
    p.extend_from_slice(&crc.to_le_bytes());
    assert_eq!(decode(&p).unwrap(), vec![Bytes::from("abc")]);
    p[10] ^= 1;
    assert_eq!(decode(&p), Err(DumpError::VersionOrChecksum));
}

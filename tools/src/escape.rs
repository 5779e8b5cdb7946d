//! Binary-safe text for keys and values: printable ASCII stays as it is, everything else
//! becomes an escape, so any byte string prints on one line and reads back exactly.
//!
//! ```text
//! \\  backslash      \n \r \t  newline, return, tab      \xNN  any other byte
//! ```
//! The same grammar is accepted on the command line (`--range 'user\x00' 'user\xff'`).

use std::fmt::Write;

/// `bytes` as printable ASCII with escapes.
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x20..=0x7e => out.push(b as char),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    out
}

/// The bytes an escaped string stands for; `Err` names the bad escape.
pub fn unescape(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len());
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let bad = || {
            format!("bad escape at character {i} of {text:?} (use \\\\, \\n, \\r, \\t or \\xNN)")
        };
        match bytes.get(i + 1) {
            Some(b'\\') => out.push(b'\\'),
            Some(b'n') => out.push(b'\n'),
            Some(b'r') => out.push(b'\r'),
            Some(b't') => out.push(b'\t'),
            Some(b'x') => {
                let hex = text.get(i + 2..i + 4).ok_or_else(bad)?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
                i += 2;
            }
            _ => return Err(bad()),
        }
        i += 2;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_round_trips() {
        let all: Vec<u8> = (0..=255u8).collect();
        let text = escape(&all);
        assert!(text.bytes().all(|b| (0x20..=0x7e).contains(&b)));
        assert_eq!(unescape(&text).unwrap(), all);
    }

    #[test]
    fn readable_keys_stay_readable() {
        assert_eq!(escape(b"user:1000"), "user:1000");
        assert_eq!(escape(b"a\\b\n\x00\xff"), "a\\\\b\\n\\x00\\xff");
    }

    #[test]
    fn bad_escapes_are_refused() {
        for bad in ["\\", "\\q", "\\x", "\\x1", "\\xzz"] {
            assert!(unescape(bad).is_err(), "{bad:?}");
        }
    }
}

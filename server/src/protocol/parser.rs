//! Request framing: RESP multibulk (`*N\r\n$len\r\narg\r\n...`) and inline commands,
//! with Redis 7's limits and exact protocol error strings (`networking.c`).
//!
//! Hand-written rather than `redis-protocol`'s decoder because Redis's behaviour on bad
//! input is part of the contract: the exact `Protocol error: ...` texts, inline-command
//! quoting (`sdssplitargs`), the 64 KiB inline/header limit, the unauthenticated limits,
//! and never reserving memory for a claimed length that has not arrived.

use bytes::{Bytes, BytesMut};

/// Longest inline command or `*`/`$` header line Redis accepts (PROTO_INLINE_MAX_SIZE).
pub const INLINE_MAX: usize = 64 * 1024;
/// Largest multibulk count Redis accepts (INT_MAX).
const MULTIBULK_MAX: i64 = i32::MAX as i64;
/// Limits for connections that must still authenticate (Redis 7: 10 args, 16 KiB bulks).
const UNAUTH_MULTIBULK_MAX: i64 = 10;
const UNAUTH_BULK_MAX: i64 = 16384;

/// Why a request could not be framed; the connection replies `-ERR <text>` and closes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(pub String);

/// Limits that apply to one parse.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// `proto-max-bulk-len`.
    pub max_bulk: i64,
    /// The client has not authenticated yet while a password is required.
    pub unauthenticated: bool,
}

/// Result of trying to take one command from the buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A complete command (possibly empty: blank inline lines and `*0` are skipped).
    Command(Vec<Bytes>),
    /// More bytes are needed; at least this many in total before trying again.
    Incomplete(usize),
}

fn err(s: &str) -> ProtocolError {
    ProtocolError(format!("Protocol error: {s}"))
}

fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    buf[from..]
        .iter()
        .position(|&b| b == b'\r')
        .map(|p| p + from)
}

/// Parses a decimal integer the way Redis's `string2ll` does (no spaces, no `+`).
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    let (neg, digits) = match s[0] {
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || (digits[0] == b'0' && digits.len() > 1) {
        return None;
    }
    let mut v: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        let digit = (d - b'0') as i64;
        v = if neg {
            v.checked_mul(10)?.checked_sub(digit)?
        } else {
            v.checked_mul(10)?.checked_add(digit)?
        };
    }
    if neg && v == 0 {
        return None; // "-0" is not accepted by string2ll
    }
    Some(v)
}

/// Takes one command from the front of `buf`, consuming its bytes when complete.
pub fn parse(buf: &mut BytesMut, limits: Limits) -> Result<Parsed, ProtocolError> {
    if buf.is_empty() {
        return Ok(Parsed::Incomplete(1));
    }
    if buf[0] == b'*' {
        parse_multibulk(buf, limits)
    } else {
        parse_inline(buf)
    }
}

fn parse_inline(buf: &mut BytesMut) -> Result<Parsed, ProtocolError> {
    let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
        if buf.len() > INLINE_MAX {
            return Err(err("too big inline request"));
        }
        return Ok(Parsed::Incomplete(buf.len() + 1));
    };
    let line = buf.split_to(nl + 1);
    let mut end = nl;
    if end > 0 && line[end - 1] == b'\r' {
        end -= 1;
    }
    let args = split_args(&line[..end]).ok_or_else(|| err("unbalanced quotes in request"))?;
    Ok(Parsed::Command(args.into_iter().map(Bytes::from).collect()))
}

fn parse_multibulk(buf: &mut BytesMut, limits: Limits) -> Result<Parsed, ProtocolError> {
    let Some(cr) = find_crlf(buf, 0) else {
        if buf.len() > INLINE_MAX {
            return Err(err("too big mbulk count string"));
        }
        return Ok(Parsed::Incomplete(buf.len() + 1));
    };
    let count = match parse_i64(&buf[1..cr]) {
        Some(n) if n <= MULTIBULK_MAX => n,
        _ => return Err(err("invalid multibulk length")),
    };
    if limits.unauthenticated && count > UNAUTH_MULTIBULK_MAX {
        return Err(err("unauthenticated multibulk length"));
    }
    let mut pos = cr + 2;
    if count <= 0 {
        if buf.len() < pos {
            return Ok(Parsed::Incomplete(pos));
        }
        let _ = buf.split_to(pos);
        return Ok(Parsed::Command(Vec::new()));
    }
    // Headers first, without consuming: (start, len) of every argument.
    let mut spans = Vec::with_capacity(count.min(1024) as usize);
    for _ in 0..count {
        if pos >= buf.len() {
            return Ok(Parsed::Incomplete(pos + 1));
        }
        let Some(cr) = find_crlf(buf, pos) else {
            if buf.len() - pos > INLINE_MAX {
                return Err(err("too big bulk count string"));
            }
            return Ok(Parsed::Incomplete(buf.len() + 1));
        };
        if buf[pos] != b'$' {
            return Err(ProtocolError(format!(
                "Protocol error: expected '$', got '{}'",
                buf[pos] as char
            )));
        }
        let len = match parse_i64(&buf[pos + 1..cr]) {
            Some(n) if n >= 0 && n <= limits.max_bulk => n,
            _ => return Err(err("invalid bulk length")),
        };
        if limits.unauthenticated && len > UNAUTH_BULK_MAX {
            return Err(err("unauthenticated bulk length"));
        }
        let start = cr + 2;
        let need = start + len as usize + 2;
        if buf.len() < need {
            return Ok(Parsed::Incomplete(need));
        }
        spans.push((start, len as usize));
        pos = need; // like Redis, the two bytes after the payload are not checked
    }
    let frame = buf.split_to(pos).freeze();
    Ok(Parsed::Command(
        spans
            .into_iter()
            .map(|(s, l)| frame.slice(s..s + l))
            .collect(),
    ))
}

/// C's `isspace`: space, \t, \n, \v, \f, \r.
fn c_isspace(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn hex_digit(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Splits an inline command line like Redis's `sdssplitargs`: whitespace-separated words,
/// `"..."` with `\n \r \t \b \a \\ \" \xHH` escapes, `'...'` with `\'`. A closing quote
/// must be followed by whitespace or the end. `None` on unbalanced quotes.
pub fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    // Redis parses the line as a C string: it ends at the first NUL.
    let line = match line.iter().position(|&b| b == 0) {
        Some(end) => &line[..end],
        None => line,
    };
    let mut out = Vec::new();
    let mut i = 0;
    let n = line.len();
    loop {
        while i < n && c_isspace(line[i]) {
            i += 1;
        }
        if i >= n {
            return Some(out);
        }
        let mut cur = Vec::new();
        let (mut inq, mut insq) = (false, false);
        loop {
            if inq {
                if i >= n {
                    return None;
                }
                let c = line[i];
                if c == b'\\'
                    && i + 3 < n
                    && line[i + 1] == b'x'
                    && hex_digit(line[i + 2]).is_some()
                    && hex_digit(line[i + 3]).is_some()
                {
                    let hi = hex_digit(line[i + 2])?;
                    let lo = hex_digit(line[i + 3])?;
                    cur.push(hi * 16 + lo);
                    i += 3;
                } else if c == b'\\' && i + 1 < n {
                    i += 1;
                    cur.push(match line[i] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        other => other,
                    });
                } else if c == b'"' {
                    if i + 1 < n && !c_isspace(line[i + 1]) {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    cur.push(c);
                }
            } else if insq {
                if i >= n {
                    return None;
                }
                let c = line[i];
                if c == b'\\' && i + 1 < n && line[i + 1] == b'\'' {
                    i += 1;
                    cur.push(b'\'');
                } else if c == b'\'' {
                    if i + 1 < n && !c_isspace(line[i + 1]) {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    cur.push(c);
                }
            } else {
                if i >= n {
                    break;
                }
                match line[i] {
                    b' ' | b'\n' | b'\r' | b'\t' => break,
                    b'"' => inq = true,
                    b'\'' => insq = true,
                    c => cur.push(c),
                }
            }
            i += 1;
        }
        out.push(cur);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: Limits = Limits {
        max_bulk: 512 * 1024 * 1024,
        unauthenticated: false,
    };

    fn one(input: &[u8]) -> Result<Parsed, ProtocolError> {
        parse(&mut BytesMut::from(input), L)
    }

    fn cmd(parts: &[&str]) -> Parsed {
        Parsed::Command(
            parts
                .iter()
                .map(|p| Bytes::copy_from_slice(p.as_bytes()))
                .collect(),
        )
    }

    #[test]
    fn multibulk_and_pipeline() {
        let mut b = BytesMut::from(&b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1\r\n$4\r\nPING\r\n"[..]);
        assert_eq!(parse(&mut b, L).unwrap(), cmd(&["GET", "k"]));
        assert_eq!(parse(&mut b, L).unwrap(), cmd(&["PING"]));
        assert!(b.is_empty());
    }

    #[test]
    fn incomplete_frames_wait_without_consuming() {
        let full = b"*2\r\n$3\r\nSET\r\n$5\r\nhello\r\n";
        for cut in 1..full.len() {
            let mut b = BytesMut::from(&full[..cut]);
            match parse(&mut b, L).unwrap() {
                Parsed::Incomplete(n) => assert!(n > cut, "cut {cut}"),
                other => panic!("cut {cut}: {other:?}"),
            }
            assert_eq!(b.len(), cut);
        }
    }

    #[test]
    fn huge_claimed_length_only_asks_for_more() {
        let mut b = BytesMut::from(&b"*1\r\n$536870912\r\nabc"[..]);
        assert!(matches!(parse(&mut b, L).unwrap(), Parsed::Incomplete(n) if n > 536870912));
        assert_eq!(
            one(b"*1\r\n$1073741824\r\n").unwrap_err().0,
            "Protocol error: invalid bulk length"
        );
    }

    #[test]
    fn redis_error_texts() {
        assert_eq!(
            one(b"*x\r\n").unwrap_err().0,
            "Protocol error: invalid multibulk length"
        );
        assert_eq!(
            one(b"*3000000000\r\n").unwrap_err().0,
            "Protocol error: invalid multibulk length"
        );
        assert_eq!(
            one(b"*1\r\n+foo\r\n").unwrap_err().0,
            "Protocol error: expected '$', got '+'"
        );
        assert_eq!(
            one(b"*1\r\n$-1\r\n").unwrap_err().0,
            "Protocol error: invalid bulk length"
        );
        assert_eq!(
            one(b"SET \"abc\r\n").unwrap_err().0,
            "Protocol error: unbalanced quotes in request"
        );
        let long = vec![b'a'; INLINE_MAX + 1];
        assert_eq!(
            one(&long).unwrap_err().0,
            "Protocol error: too big inline request"
        );
        let unauth = Limits {
            unauthenticated: true,
            ..L
        };
        assert_eq!(
            parse(&mut BytesMut::from(&b"*11\r\n"[..]), unauth)
                .unwrap_err()
                .0,
            "Protocol error: unauthenticated multibulk length"
        );
    }

    #[test]
    fn inline_commands_split_like_sdssplitargs() {
        assert_eq!(one(b"SET k v\r\n").unwrap(), cmd(&["SET", "k", "v"]));
        assert_eq!(one(b"  PING  \n").unwrap(), cmd(&["PING"]));
        assert_eq!(one(b"\r\n").unwrap(), Parsed::Command(vec![]));
        assert_eq!(
            one(b"SET \"a b\\x41\\n\" 'it\\'s'\r\n").unwrap(),
            cmd(&["SET", "a bA\n", "it's"])
        );
        assert!(one(b"SET \"a\"b\r\n").is_err());
        // A NUL ends the line (C string); \v and \f separate words only between words.
        assert_eq!(one(b"PING\0garbage\r\n").unwrap(), cmd(&["PING"]));
        assert_eq!(one(b"a\x0b\x0cb\r\n").unwrap(), cmd(&["a\x0b\x0cb"]));
        assert_eq!(one(b"\x0b a\r\n").unwrap(), cmd(&["a"]));
    }

    #[test]
    fn integers_parse_like_string2ll() {
        assert_eq!(parse_i64(b"-12"), Some(-12));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b""[..],
            b"+1",
            b" 1",
            b"01",
            b"1a",
            b"9223372036854775808",
            b"-0",
        ] {
            assert_eq!(parse_i64(bad), None, "{:?}", bad);
        }
    }
}

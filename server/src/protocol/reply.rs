//! Replies and their RESP2/RESP3 encoding.
//!
//! A command builds a [`Reply`] tree; the connection encodes it for the client's protocol
//! (RESP3 maps, sets, doubles, booleans and nulls degrade to RESP2 arrays, bulk strings,
//! integers and `$-1`/`*-1` the way Redis does).

use bytes::{BufMut, Bytes, BytesMut};
use std::borrow::Cow;

/// Version of a key as seen by a reply: known, or "the write at batch index i" until the
/// command's batch commits and the engine assigns its sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// Sequence number of the committed write.
    Committed(u64),
    /// Index of the write in the not-yet-committed batch.
    Pending(usize),
}

/// One reply.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `+OK`.
    Ok,
    /// `+<text>`.
    Status(Cow<'static, str>),
    /// `-<text>`: the full text including its code (`ERR ...`, `WRONGTYPE ...`).
    Error(Cow<'static, str>),
    /// `:<n>`.
    Int(i64),
    /// `$<len>`.
    Bulk(Bytes),
    /// Null bulk string (`$-1`; RESP3 `_`).
    Nil,
    /// Null array (`*-1`; RESP3 `_`).
    NilArray,
    /// `*<n>`.
    Array(Vec<Reply>),
    /// RESP3 `%` map; RESP2 flat array.
    Map(Vec<(Reply, Reply)>),
    /// RESP3 `~` set; RESP2 array.
    Set(Vec<Reply>),
    /// RESP3 `,` double; RESP2 bulk string.
    Double(f64),
    /// RESP3 `#`; RESP2 integer 1/0.
    Bool(bool),
    /// RESP3 `=` verbatim text (`txt`); RESP2 bulk string.
    Verbatim(String),
    /// RESP3 `(` big number (its digits); RESP2 bulk string. Only scripts make one
    /// (`{big_number = "..."}`), as in Redis.
    BigNumber(String),
    /// A key version (integer once resolved).
    Version(Version),
    /// RESP3 `>` push (pub/sub messages, invalidations); RESP2 array.
    Push(Vec<Reply>),
    /// Several replies sent back to back for one command (SUBSCRIBE a b: one
    /// confirmation per channel, as Redis writes them).
    Frames(Vec<Reply>),
}

impl Reply {
    /// About how many bytes the reply takes on the wire (payloads plus a few bytes of
    /// framing per element): enough to bound what a group of pipelined commands builds.
    pub fn approx_len(&self) -> usize {
        const FRAME: usize = 8;
        FRAME
            + match self {
                Reply::Status(t) | Reply::Error(t) => t.len(),
                Reply::Bulk(b) => b.len(),
                Reply::Verbatim(t) | Reply::BigNumber(t) => t.len(),
                Reply::Array(v) | Reply::Set(v) | Reply::Push(v) | Reply::Frames(v) => {
                    v.iter().map(Reply::approx_len).sum()
                }
                Reply::Map(v) => v.iter().map(|(k, v)| k.approx_len() + v.approx_len()).sum(),
                _ => 16,
            }
    }

    /// An error reply from any string.
    pub fn error(s: impl Into<Cow<'static, str>>) -> Reply {
        Reply::Error(s.into())
    }

    /// A bulk string from anything byte-like.
    pub fn bulk(b: impl Into<Bytes>) -> Reply {
        Reply::Bulk(b.into())
    }

    /// A bulk string copied from a slice.
    pub fn bulk_from(b: &[u8]) -> Reply {
        Reply::Bulk(Bytes::copy_from_slice(b))
    }

    /// A status reply.
    pub fn status(s: impl Into<Cow<'static, str>>) -> Reply {
        Reply::Status(s.into())
    }

    /// True for error replies.
    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }

    /// Replaces pending versions with committed ones, once the batch's first sequence is known.
    pub fn resolve_versions(&mut self, first_seq: u64) {
        self.map_pending(&|i| first_seq + i as u64);
    }

    /// Replaces every pending version with `version`: on the ring a command's writes to
    /// its key commit as one record, with one version.
    pub fn commit_versions(&mut self, version: u64) {
        self.map_pending(&|_| version);
    }

    /// Replaces each pending version `i` with `Committed(committed(i))`.
    fn map_pending(&mut self, committed: &dyn Fn(usize) -> u64) {
        match self {
            Reply::Version(v @ Version::Pending(_)) => {
                if let Version::Pending(i) = *v {
                    *v = Version::Committed(committed(i));
                }
            }
            Reply::Array(items) | Reply::Set(items) | Reply::Push(items) | Reply::Frames(items) => {
                items.iter_mut().for_each(|r| r.map_pending(committed))
            }
            Reply::Map(pairs) => pairs.iter_mut().for_each(|(k, v)| {
                k.map_pending(committed);
                v.map_pending(committed)
            }),
            _ => {}
        }
    }

    /// Appends the encoding of this reply for protocol 2 or 3.
    pub fn encode(&self, out: &mut BytesMut, resp3: bool) {
        match self {
            Reply::Ok => out.put_slice(b"+OK\r\n"),
            Reply::Status(s) => line(out, b'+', s.as_bytes()),
            Reply::Error(s) => line(out, b'-', s.as_bytes()),
            Reply::Int(n) => int_line(out, b':', *n),
            Reply::Bulk(b) => bulk(out, b),
            Reply::Nil if resp3 => out.put_slice(b"_\r\n"),
            Reply::Nil => out.put_slice(b"$-1\r\n"),
            Reply::NilArray if resp3 => out.put_slice(b"_\r\n"),
            Reply::NilArray => out.put_slice(b"*-1\r\n"),
            Reply::Array(items) => {
                int_line(out, b'*', items.len() as i64);
                items.iter().for_each(|r| r.encode(out, resp3));
            }
            Reply::Set(items) => {
                int_line(out, if resp3 { b'~' } else { b'*' }, items.len() as i64);
                items.iter().for_each(|r| r.encode(out, resp3));
            }
            Reply::Map(pairs) => {
                if resp3 {
                    int_line(out, b'%', pairs.len() as i64);
                } else {
                    int_line(out, b'*', 2 * pairs.len() as i64);
                }
                for (k, v) in pairs {
                    k.encode(out, resp3);
                    v.encode(out, resp3);
                }
            }
            Reply::Double(d) => {
                let s = format_double(*d);
                if resp3 {
                    line(out, b',', s.as_bytes());
                } else {
                    bulk(out, s.as_bytes());
                }
            }
            Reply::Bool(b) if resp3 => out.put_slice(if *b { b"#t\r\n" } else { b"#f\r\n" }),
            Reply::Bool(b) => int_line(out, b':', *b as i64),
            Reply::Verbatim(s) if resp3 => {
                int_line(out, b'=', s.len() as i64 + 4);
                out.put_slice(b"txt:");
                out.put_slice(s.as_bytes());
                out.put_slice(b"\r\n");
            }
            Reply::Verbatim(s) => bulk(out, s.as_bytes()),
            Reply::BigNumber(s) if resp3 => line(out, b'(', s.as_bytes()),
            Reply::BigNumber(s) => bulk(out, s.as_bytes()),
            Reply::Version(Version::Committed(seq)) => int_line(out, b':', *seq as i64),
            Reply::Push(items) => {
                int_line(out, if resp3 { b'>' } else { b'*' }, items.len() as i64);
                items.iter().for_each(|r| r.encode(out, resp3));
            }
            Reply::Frames(items) => items.iter().for_each(|r| r.encode(out, resp3)),
            // Unresolved only if a batch failed to commit; never sent in practice.
            Reply::Version(Version::Pending(_)) => out.put_slice(b"_\r\n"),
        }
    }
}

fn line(out: &mut BytesMut, tag: u8, s: &[u8]) {
    out.reserve(s.len() + 3);
    out.put_u8(tag);
    // Status and error lines cannot carry CR/LF; Redis replaces them with spaces.
    for &c in s {
        out.put_u8(if c == b'\r' || c == b'\n' { b' ' } else { c });
    }
    out.put_slice(b"\r\n");
}

fn int_line(out: &mut BytesMut, tag: u8, n: i64) {
    let mut buf = [0u8; 21];
    let digits = fmt_i64(n, &mut buf);
    out.reserve(digits.len() + 3);
    out.put_u8(tag);
    out.put_slice(digits);
    out.put_slice(b"\r\n");
}

fn bulk(out: &mut BytesMut, b: &[u8]) {
    int_line(out, b'$', b.len() as i64);
    out.reserve(b.len() + 2);
    out.put_slice(b);
    out.put_slice(b"\r\n");
}

/// Formats `n` into `buf`, returning the used tail (no allocation).
pub fn fmt_i64(n: i64, buf: &mut [u8; 21]) -> &[u8] {
    let mut i = buf.len();
    let neg = n < 0;
    let mut v = n.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if neg {
        i -= 1;
        buf[i] = b'-';
    }
    &buf[i..]
}

/// Formats a double as Redis does in replies: `inf`, `-inf`, `nan`, integers without a
/// fraction, otherwise the shortest text that reads back to the same value.
pub fn format_double(d: f64) -> String {
    if d.is_nan() {
        "nan".into()
    } else if d.is_infinite() {
        if d > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        format!("{d}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(r: &Reply, resp3: bool) -> String {
        let mut b = BytesMut::new();
        r.encode(&mut b, resp3);
        String::from_utf8(b.to_vec()).unwrap()
    }

    #[test]
    fn resp2_and_resp3_encodings() {
        assert_eq!(enc(&Reply::Int(-42), false), ":-42\r\n");
        assert_eq!(enc(&Reply::bulk_from(b"hi"), false), "$2\r\nhi\r\n");
        assert_eq!(enc(&Reply::Nil, false), "$-1\r\n");
        assert_eq!(enc(&Reply::Nil, true), "_\r\n");
        assert_eq!(enc(&Reply::NilArray, false), "*-1\r\n");
        let m = Reply::Map(vec![(Reply::bulk_from(b"a"), Reply::Int(1))]);
        assert_eq!(enc(&m, false), "*2\r\n$1\r\na\r\n:1\r\n");
        assert_eq!(enc(&m, true), "%1\r\n$1\r\na\r\n:1\r\n");
        assert_eq!(enc(&Reply::Double(1.5), true), ",1.5\r\n");
        assert_eq!(enc(&Reply::Double(1.5), false), "$3\r\n1.5\r\n");
        assert_eq!(enc(&Reply::Bool(true), true), "#t\r\n");
        assert_eq!(enc(&Reply::error("ERR a\r\nb"), false), "-ERR a  b\r\n");
        assert_eq!(enc(&Reply::Verbatim("x".into()), true), "=5\r\ntxt:x\r\n");
        assert_eq!(enc(&Reply::BigNumber("12".into()), true), "(12\r\n");
        assert_eq!(enc(&Reply::BigNumber("12".into()), false), "$2\r\n12\r\n");
        let p = Reply::Push(vec![Reply::bulk_from(b"m"), Reply::Int(1)]);
        assert_eq!(enc(&p, true), ">2\r\n$1\r\nm\r\n:1\r\n");
        assert_eq!(enc(&p, false), "*2\r\n$1\r\nm\r\n:1\r\n");
        let f = Reply::Frames(vec![Reply::Int(1), Reply::Int(2)]);
        assert_eq!(enc(&f, false), ":1\r\n:2\r\n");
    }

    #[test]
    fn pending_versions_resolve_after_commit() {
        let mut r = Reply::Array(vec![Reply::Version(Version::Pending(2)), Reply::Nil]);
        r.resolve_versions(100);
        assert_eq!(enc(&r, false), "*2\r\n:102\r\n$-1\r\n");
    }

    #[test]
    fn integer_formatting_covers_extremes() {
        let mut b = [0u8; 21];
        assert_eq!(fmt_i64(i64::MIN, &mut b), b"-9223372036854775808");
        assert_eq!(fmt_i64(0, &mut b), b"0");
    }
}

//! Request framing: RESP multibulk (`*N\r\n$len\r\narg\r\n...`) and inline commands,
//! with Redis 7's limits and exact protocol error strings (`networking.c`).
//!
//! Hand-written rather than `redis-protocol`'s decoder because Redis's behaviour on bad
//! input is part of the contract: the exact `Protocol error: ...` texts, inline-command
//! quoting (`sdssplitargs`), the 64 KiB inline/header limit, the unauthenticated limits,
//! and never reserving memory for a claimed length that has not arrived.

use bytes::{Buf, Bytes, BytesMut};

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

/// Framing state of one connection, kept between reads so that a large request arriving in
/// many pieces is examined once, not again from its first byte at every read (which made
/// a multibulk of many arguments cost quadratic CPU). Each complete argument is split off
/// the buffer as soon as it has arrived, and a line still missing its end is not searched
/// again from the start.
#[derive(Debug, Default)]
pub struct RequestParser {
    partial: Option<PartialMultibulk>,
    /// Bytes at the front of the buffer already searched for the current line's end.
    searched: usize,
    /// Bytes searched for line ends in total: parsing is linear when this stays within
    /// the bytes received (tests check it).
    examined: u64,
}

/// A multibulk request whose header has been read but not all of its arguments.
#[derive(Debug)]
struct PartialMultibulk {
    remaining: u64,
    args: Vec<Bytes>,
    /// The next argument's length, once its `$len` header has been read.
    bulk_len: Option<usize>,
    /// Memory held by `args`, for the query buffer limit.
    held: usize,
}

/// Most arguments of a request [`RequestParser::parse_whole`] frames (more go the
/// general way, which also bounds the memory a request in progress holds).
const FAST_MAX_ARGS: usize = 16;
/// Longest `*n`/`$n` header line it reads: the tag, 18 digits and `\r`.
const FAST_MAX_HEADER: usize = 20;

/// Memory charged per argument on top of its bytes (the `Bytes` handle and vector slot),
/// so many empty arguments still count toward the query buffer limit.
const ARG_OVERHEAD: usize = 32;

impl RequestParser {
    /// A parser with no request in progress.
    pub fn new() -> RequestParser {
        RequestParser::default()
    }

    /// Memory held by the arguments of a request still in progress (besides the buffer).
    pub fn held_bytes(&self) -> usize {
        self.partial.as_ref().map_or(0, |p| p.held)
    }

    /// Bytes searched for line ends so far (see the field).
    pub fn examined(&self) -> u64 {
        self.examined
    }

    /// Takes one command from the front of `buf`. Complete arguments of a request still in
    /// progress are consumed and kept here; `Incomplete(n)` asks for `n` bytes in `buf`.
    pub fn parse(&mut self, buf: &mut BytesMut, limits: Limits) -> Result<Parsed, ProtocolError> {
        if self.partial.is_none() {
            if buf.is_empty() {
                return Ok(Parsed::Incomplete(1));
            }
            if buf[0] != b'*' {
                return self.parse_inline(buf);
            }
            if self.searched == 0 {
                if let Some(args) = self.parse_whole(buf, limits) {
                    return Ok(Parsed::Command(args));
                }
            }
            match self.multibulk_header(buf, limits)? {
                Some(0) => return Ok(Parsed::Command(Vec::new())),
                Some(count) => {
                    self.partial = Some(PartialMultibulk {
                        remaining: count,
                        args: Vec::with_capacity(count.min(1024) as usize),
                        bulk_len: None,
                        held: 0,
                    })
                }
                None => return Ok(Parsed::Incomplete(self.searched.max(buf.len()) + 1)),
            }
        }
        self.parse_arguments(buf, limits)
    }

    /// Frames a small request that is wholly in `buf` in one pass, the common case of a
    /// client or a pipeline: `Some(args)` with the request consumed, or `None` with `buf`
    /// and the parser untouched when it is incomplete, has more than [`FAST_MAX_ARGS`]
    /// arguments or a header longer than [`FAST_MAX_HEADER`], or breaks a rule or limit;
    /// the general path then frames it and words the error. The arguments are slices of
    /// one frozen frame: one split for the request instead of one per argument plus a
    /// consume per header line. Bytes searched count toward `examined` only when the
    /// request is taken; a try that falls back searched at most a bounded prefix.
    fn parse_whole(&mut self, buf: &mut BytesMut, limits: Limits) -> Option<Vec<Bytes>> {
        // A `*n` or `$n` header at `at`: its number and where the line after it starts.
        // Only what `parse_i64` reads the same is taken here (1 to 18 digits, no sign, no
        // leading zero), digits read as they are searched; anything else goes the
        // general way.
        let header = |at: usize| -> Option<(i64, usize)> {
            let digits = &buf[at + 1..buf.len().min(at + FAST_MAX_HEADER)];
            let mut n: i64 = 0;
            let mut used = 0;
            for &b in digits {
                if !b.is_ascii_digit() {
                    break;
                }
                if used == 18 {
                    return None; // before a 19th digit could overflow
                }
                n = n * 10 + i64::from(b - b'0');
                used += 1;
            }
            let cr = at + 1 + used;
            let ok = used > 0 && (digits[0] != b'0' || used == 1) && buf.get(cr) == Some(&b'\r');
            (ok && cr + 2 <= buf.len()).then_some((n, cr + 2))
        };
        let (count, mut at) = header(0)?;
        let mut searched = at as u64 - 1;
        if count < 1 || count as usize > FAST_MAX_ARGS {
            return None;
        }
        if limits.unauthenticated && count > UNAUTH_MULTIBULK_MAX {
            return None;
        }
        let mut spans = [(0usize, 0usize); FAST_MAX_ARGS];
        for span in spans.iter_mut().take(count as usize) {
            if buf.get(at) != Some(&b'$') {
                return None;
            }
            let (len, start) = header(at)?;
            searched += (start - at - 1) as u64;
            if len < 0 || len > limits.max_bulk {
                return None;
            }
            if limits.unauthenticated && len > UNAUTH_BULK_MAX {
                return None;
            }
            let end = start.checked_add(len as usize)?;
            if end.checked_add(2)? > buf.len() {
                return None;
            }
            *span = (start, end);
            at = end + 2; // like Redis, the two bytes after the payload are not checked
        }
        self.examined += searched;
        let frame = buf.split_to(at).freeze();
        Some(
            spans[..count as usize]
                .iter()
                .map(|&(start, end)| frame.slice(start..end))
                .collect(),
        )
    }

    /// Finds `byte` in `buf`, searching only what was not searched before.
    fn find(&mut self, buf: &[u8], byte: u8) -> Option<usize> {
        let from = self.searched.min(buf.len());
        match buf[from..].iter().position(|&b| b == byte) {
            Some(i) => {
                self.examined += i as u64 + 1;
                self.searched = from + i; // found again at once if we must wait for `\n`
                Some(from + i)
            }
            None => {
                self.examined += (buf.len() - from) as u64;
                self.searched = buf.len();
                None
            }
        }
    }

    /// Consumes `n` bytes of finished input. `advance` moves the buffer's start; a
    /// `split_to` here built and dropped a handle (two reference-count updates) for every
    /// header and line end (docs/performance.md, "Framing and per-command bookkeeping").
    fn consume(&mut self, buf: &mut BytesMut, n: usize) {
        buf.advance(n);
        self.searched = 0;
    }

    fn parse_inline(&mut self, buf: &mut BytesMut) -> Result<Parsed, ProtocolError> {
        let Some(nl) = self.find(buf, b'\n') else {
            if buf.len() > INLINE_MAX {
                return Err(err("too big inline request"));
            }
            return Ok(Parsed::Incomplete(buf.len() + 1));
        };
        let line = buf.split_to(nl + 1);
        self.searched = 0;
        let mut end = nl;
        if end > 0 && line[end - 1] == b'\r' {
            end -= 1;
        }
        let args = split_args(&line[..end]).ok_or_else(|| err("unbalanced quotes in request"))?;
        Ok(Parsed::Command(args.into_iter().map(Bytes::from).collect()))
    }

    /// Reads `*count\r\n`: `Some(count)` (0 for an empty or negative count) once consumed,
    /// `None` while incomplete.
    fn multibulk_header(
        &mut self,
        buf: &mut BytesMut,
        limits: Limits,
    ) -> Result<Option<u64>, ProtocolError> {
        let Some(cr) = self.find(buf, b'\r') else {
            if buf.len() > INLINE_MAX {
                return Err(err("too big mbulk count string"));
            }
            return Ok(None);
        };
        let count = match parse_i64(&buf[1..cr]) {
            Some(n) if n <= MULTIBULK_MAX => n,
            _ => return Err(err("invalid multibulk length")),
        };
        if limits.unauthenticated && count > UNAUTH_MULTIBULK_MAX {
            return Err(err("unauthenticated multibulk length"));
        }
        if buf.len() < cr + 2 {
            return Ok(None);
        }
        self.consume(buf, cr + 2);
        Ok(Some(count.max(0) as u64))
    }

    /// Reads arguments of the request in progress until it is complete or input runs out.
    fn parse_arguments(
        &mut self,
        buf: &mut BytesMut,
        limits: Limits,
    ) -> Result<Parsed, ProtocolError> {
        loop {
            let len = match self.partial.as_ref().and_then(|p| p.bulk_len) {
                Some(len) => len,
                None => match self.bulk_header(buf, limits)? {
                    Some(len) => len,
                    None => return Ok(Parsed::Incomplete(self.searched.max(buf.len()) + 1)),
                },
            };
            if buf.len() < len + 2 {
                return Ok(Parsed::Incomplete(len + 2));
            }
            let arg = buf.split_to(len).freeze();
            self.consume(buf, 2); // like Redis, the two bytes after the payload are not checked
            let Some(p) = self.partial.as_mut() else {
                return Err(err("internal framing state lost"));
            };
            p.bulk_len = None;
            p.held += arg.len() + ARG_OVERHEAD;
            p.args.push(arg);
            p.remaining -= 1;
            if p.remaining == 0 {
                let args = std::mem::take(&mut p.args);
                self.partial = None;
                return Ok(Parsed::Command(args));
            }
        }
    }

    /// Reads `$len\r\n` of the next argument: `Some(len)` once consumed (and remembered
    /// in the request in progress), `None` while incomplete.
    fn bulk_header(
        &mut self,
        buf: &mut BytesMut,
        limits: Limits,
    ) -> Result<Option<usize>, ProtocolError> {
        if buf.is_empty() {
            return Ok(None);
        }
        let Some(cr) = self.find(buf, b'\r') else {
            if buf.len() > INLINE_MAX {
                return Err(err("too big bulk count string"));
            }
            return Ok(None);
        };
        if buf[0] != b'$' {
            return Err(ProtocolError(format!(
                "Protocol error: expected '$', got '{}'",
                buf[0] as char
            )));
        }
        let len = match parse_i64(&buf[1..cr]) {
            Some(n) if n >= 0 && n <= limits.max_bulk => n as usize,
            _ => return Err(err("invalid bulk length")),
        };
        if limits.unauthenticated && len as i64 > UNAUTH_BULK_MAX {
            return Err(err("unauthenticated bulk length"));
        }
        if buf.len() < cr + 2 {
            return Ok(None);
        }
        self.consume(buf, cr + 2);
        if let Some(p) = self.partial.as_mut() {
            p.bulk_len = Some(len);
        }
        Ok(Some(len))
    }
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

    /// One parse with a fresh parser (these tests hold whole requests; a fresh parser
    /// would drop a consumed header of an incomplete one, so this stays test-only).
    fn parse(buf: &mut BytesMut, limits: Limits) -> Result<Parsed, ProtocolError> {
        RequestParser::new().parse(buf, limits)
    }

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

    /// Feeds `input` in pieces of `step` bytes to one parser, as reads deliver them.
    fn fed_in_pieces(input: &[u8], step: usize) -> (Vec<Parsed>, RequestParser) {
        let mut p = RequestParser::new();
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for piece in input.chunks(step) {
            buf.extend_from_slice(piece);
            loop {
                match p.parse(&mut buf, L).unwrap() {
                    Parsed::Incomplete(n) => {
                        assert!(n > buf.len(), "asks for {n} with {} buffered", buf.len());
                        break;
                    }
                    cmd => out.push(cmd),
                }
            }
        }
        assert!(buf.is_empty());
        (out, p)
    }

    #[test]
    fn requests_cut_anywhere_frame_the_same() {
        let full = b"*2\r\n$3\r\nSET\r\n$5\r\nhello\r\nPING x\r\n*0\r\n*1\r\n$0\r\n\r\n";
        let whole = fed_in_pieces(full, full.len()).0;
        assert_eq!(whole.len(), 4);
        for step in 1..full.len() {
            assert_eq!(fed_in_pieces(full, step).0, whole, "pieces of {step}");
        }
    }

    /// Frames `input` fed in pieces of `step` bytes: the commands, then the error that
    /// ended it (`None` if it ended waiting for more).
    fn framed(input: &[u8], step: usize, limits: Limits) -> (Vec<Vec<Bytes>>, Option<String>) {
        let mut p = RequestParser::new();
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for piece in input.chunks(step.max(1)) {
            buf.extend_from_slice(piece);
            loop {
                match p.parse(&mut buf, limits) {
                    Ok(Parsed::Incomplete(_)) => break,
                    Ok(Parsed::Command(c)) => out.push(c),
                    Err(e) => return (out, Some(e.0)),
                }
            }
        }
        (out, None)
    }

    proptest::proptest! {
        /// The one-pass path for whole requests (taken when a request is all in the
        /// buffer) frames exactly what the general path frames when the same bytes come
        /// one at a time (never whole), errors included: valid requests of up to 20
        /// arguments with payloads holding CR and LF, then bytes overwritten anywhere.
        #[test]
        fn whole_requests_frame_as_byte_by_byte(
            requests in proptest::collection::vec(
                proptest::collection::vec(proptest::collection::vec(
                    proptest::prop_oneof![proptest::strategy::Just(b'\r'), proptest::strategy::Just(b'\n'), proptest::strategy::Just(b'$'), proptest::strategy::Just(b'*'), proptest::num::u8::ANY],
                    0..12,
                ), 0..20),
                1..6,
            ),
            damage in proptest::collection::vec((proptest::num::usize::ANY, proptest::num::u8::ANY), 0..3),
            unauthenticated in proptest::bool::ANY,
            max_bulk in 4i64..16,
        ) {
            let mut input = Vec::new();
            for args in &requests {
                input.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
                for a in args {
                    input.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
                    input.extend_from_slice(a);
                    input.extend_from_slice(b"\r\n");
                }
            }
            for (at, byte) in damage {
                let at = at % input.len();
                input[at] = byte;
            }
            let limits = Limits { max_bulk, unauthenticated };
            let whole = framed(&input, input.len(), limits);
            let by_byte = framed(&input, 1, limits);
            proptest::prop_assert_eq!(whole, by_byte);
        }
    }

    /// Counts and lengths of 17 to 21 digits (around what `parse_whole` reads itself,
    /// past what an i64 holds) frame whole as they do byte by byte; a 19-digit count
    /// overflowed the one-pass path's digits once (found by the fuzz target).
    #[test]
    fn long_headers_frame_as_byte_by_byte() {
        let limits = Limits {
            max_bulk: i64::MAX,
            unauthenticated: false,
        };
        for digits in 17..=21 {
            for lead in [b'1', b'9'] {
                let mut number = vec![lead];
                number.resize(digits, b'9');
                let number = String::from_utf8(number).unwrap();
                let inputs = [
                    format!("*{number}\r\n$1\r\nx\r\n"),
                    format!("*1\r\n${number}\r\nx\r\n"),
                    format!("*1\r\n$00000000000000001\r\nx\r\n*{number}\r\n"),
                ];
                for input in inputs {
                    let input = input.as_bytes();
                    assert_eq!(
                        framed(input, input.len(), limits),
                        framed(input, 1, limits),
                        "{}",
                        String::from_utf8_lossy(input)
                    );
                }
            }
        }
    }

    /// A request of many arguments arriving in small pieces is searched once: the bytes
    /// examined stay within the bytes received (the old parser started over at every
    /// read, about n^2 / piece bytes).
    #[test]
    fn large_requests_in_small_pieces_cost_linear_work() {
        let args: Vec<Vec<u8>> = (0..20_000)
            .map(|i| format!("argument-{i}").into_bytes())
            .collect();
        let mut input = format!("*{}\r\n", args.len()).into_bytes();
        for a in &args {
            input.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            input.extend_from_slice(a);
            input.extend_from_slice(b"\r\n");
        }
        for step in [1, 7, 4096] {
            let (cmds, p) = fed_in_pieces(&input, step);
            let Parsed::Command(got) = &cmds[0] else {
                panic!()
            };
            assert_eq!(got.len(), args.len());
            assert_eq!(got[19_999], args[19_999]);
            assert!(
                p.examined() <= input.len() as u64,
                "{} > {}",
                p.examined(),
                input.len()
            );
        }
        // A header line dribbled one byte at a time is not searched again from its start.
        let mut p = RequestParser::new();
        let mut buf = BytesMut::new();
        let long_inline = vec![b'a'; 60_000];
        for b in &long_inline {
            buf.extend_from_slice(&[*b]);
            assert!(matches!(
                p.parse(&mut buf, L).unwrap(),
                Parsed::Incomplete(_)
            ));
        }
        assert!(p.examined() <= long_inline.len() as u64);
    }

    #[test]
    fn arguments_of_a_request_in_progress_count_as_held_memory() {
        let mut p = RequestParser::new();
        let mut buf = BytesMut::from(&b"*3\r\n$4\r\nabcd\r\n$2\r\nxy\r\n$9\r\nabc"[..]);
        assert!(matches!(
            p.parse(&mut buf, L).unwrap(),
            Parsed::Incomplete(11)
        ));
        assert_eq!(p.held_bytes(), 6 + 2 * ARG_OVERHEAD);
        assert_eq!(&buf[..], b"abc");
        buf.extend_from_slice(b"defghi\r\n");
        assert_eq!(
            p.parse(&mut buf, L).unwrap(),
            cmd(&["abcd", "xy", "abcdefghi"])
        );
        assert_eq!(p.held_bytes(), 0);
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

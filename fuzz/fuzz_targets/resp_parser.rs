//! The RESP request parser (`kv_server::protocol::RequestParser`) on hostile bytes.
//!
//! Input: `flags:u8 split_seed:u8 stream...`. `flags` picks the limits (authenticated
//! or not, and a `proto-max-bulk-len` that CONFIG SET allows); `split_seed` picks how
//! the stream is cut into reads. The stream is framed twice, each time with one parser
//! as a connection keeps: all at once, and read by read the way `connection.rs` does it
//! (parse only once the `need` bytes the last `Incomplete` asked for are buffered).
//! Checked: no panic; `Incomplete(n)` always asks for more than is buffered (else the
//! connection loop would spin); the bytes searched for line ends stay linear in the
//! bytes received (one re-check per call at most); and reading in pieces frames exactly
//! the commands framed from one buffer, ending the same way, except that a piecewise
//! reader may hit a size limit ("too big ...") sooner, as Redis's does.
#![no_main]

use bytes::{Bytes, BytesMut};
use kv_fuzz::Choices;
use kv_server::protocol::{Limits, Parsed, ProtocolError, RequestParser};
use libfuzzer_sys::fuzz_target;

/// `proto-max-bulk-len` values CONFIG SET accepts: its minimum, the default, the largest.
const MAX_BULKS: [i64; 3] = [1024 * 1024, 512 * 1024 * 1024, i64::MAX];

/// How framing a stream ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    /// Waiting for more bytes.
    Waiting,
    Error(ProtocolError),
}

fuzz_target!(|data: &[u8]| {
    let [flags, split_seed, stream @ ..] = data else {
        return;
    };
    let limits = Limits {
        max_bulk: MAX_BULKS[(flags >> 1) as usize % MAX_BULKS.len()],
        unauthenticated: flags & 1 == 1,
    };
    let whole = frame(stream, limits, &mut |rest| rest);
    let mut choices = Choices::new(&[*split_seed]);
    let pieces = frame(stream, limits, &mut |rest| choices.upto(rest.min(4096)));
    match &pieces.1 {
        End::Error(e) if whole.1 != End::Error(e.clone()) => {
            assert!(
                e.0.contains("too big"),
                "pieces: {e:?}, whole: {:?}",
                whole.1
            );
            assert!(
                whole.0.starts_with(&pieces.0),
                "pieces framed other commands"
            );
        }
        _ => assert_eq!(
            pieces, whole,
            "pieces framed other commands or ended otherwise"
        ),
    }
});

/// Frames `stream` delivered in reads of `read(bytes left)` bytes with one parser,
/// parsing only once the buffer holds the `need` the last `Incomplete` asked for, as the
/// connection loop does. Checks the parser's contract on every call.
fn frame(
    stream: &[u8],
    limits: Limits,
    read: &mut dyn FnMut(usize) -> usize,
) -> (Vec<Vec<Bytes>>, End) {
    let mut parser = RequestParser::new();
    let (mut buf, mut out, mut need, mut rest) = (BytesMut::new(), Vec::new(), 1, stream);
    let mut calls = 0u64;
    loop {
        while buf.len() >= need {
            calls += 1;
            let parsed = parser.parse(&mut buf, limits);
            let received = (stream.len() - rest.len()) as u64;
            assert!(
                parser.examined() <= received + calls,
                "searched {} bytes for line ends in {received} received",
                parser.examined()
            );
            match parsed {
                Ok(Parsed::Command(cmd)) => {
                    out.push(cmd);
                    need = 1;
                }
                Ok(Parsed::Incomplete(n)) => {
                    assert!(
                        n > buf.len(),
                        "Incomplete({n}) with {} bytes buffered",
                        buf.len()
                    );
                    need = n;
                }
                Err(e) => return (out, End::Error(e)),
            }
        }
        if rest.is_empty() {
            return (out, End::Waiting);
        }
        let n = read(rest.len()).clamp(1, rest.len());
        buf.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
    }
}

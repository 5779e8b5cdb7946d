//! The RESP request parser (`kv_server::protocol::parse`) on hostile bytes.
//!
//! Input: `flags:u8 split_seed:u8 stream...`. `flags` picks the limits (authenticated
//! or not, and a `proto-max-bulk-len` that CONFIG SET allows); `split_seed` picks how
//! the stream is cut into reads. The stream is framed twice: all at once, and read by
//! read the way `connection.rs` does it (parse only once `need` bytes are buffered).
//! Checked: no panic; `Incomplete(n)` always asks for more than is buffered and leaves
//! the buffer alone; and reading in pieces frames exactly the commands framed from one
//! buffer, ending the same way, except that a piecewise reader may hit a size limit
//! ("too big ...") sooner, as Redis's does.
#![no_main]

use bytes::{Bytes, BytesMut};
use kv_fuzz::Choices;
use kv_server::protocol::{parse, Limits, Parsed, ProtocolError};
use libfuzzer_sys::fuzz_target;

/// `proto-max-bulk-len` values CONFIG SET accepts: its minimum, the default, the largest.
const MAX_BULKS: [i64; 3] = [1024 * 1024, 512 * 1024 * 1024, i64::MAX];

/// How framing a stream ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    /// Waiting for more bytes, with this many buffered.
    Waiting(usize),
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
    let (whole, whole_end) = frame_at_once(stream, limits);
    let (pieces, pieces_end) = frame_in_reads(stream, limits, &mut Choices::new(&[*split_seed]));
    match &pieces_end {
        End::Error(e) if e != &whole_end_error(&whole_end) => {
            assert!(
                e.0.contains("too big"),
                "pieces: {e:?}, whole: {whole_end:?}"
            );
            assert!(whole.starts_with(&pieces), "pieces framed other commands");
        }
        _ => {
            assert_eq!(pieces, whole, "pieces framed other commands");
            assert_eq!(pieces_end, whole_end);
        }
    }
});

fn whole_end_error(end: &End) -> ProtocolError {
    match end {
        End::Error(e) => e.clone(),
        End::Waiting(_) => ProtocolError(String::new()),
    }
}

/// Frames every command of `stream` from one buffer.
fn frame_at_once(stream: &[u8], limits: Limits) -> (Vec<Vec<Bytes>>, End) {
    let mut buf = BytesMut::from(stream);
    let mut out = Vec::new();
    loop {
        if buf.is_empty() {
            return (out, End::Waiting(0));
        }
        match step(&mut buf, limits) {
            Ok(Parsed::Command(cmd)) => out.push(cmd),
            Ok(Parsed::Incomplete(_)) => return (out, End::Waiting(buf.len())),
            Err(e) => return (out, End::Error(e)),
        }
    }
}

/// Frames `stream` delivered in reads of random sizes, parsing only once the buffer
/// holds the `need` the last `Incomplete` asked for, as the connection loop does.
fn frame_in_reads(stream: &[u8], limits: Limits, choices: &mut Choices) -> (Vec<Vec<Bytes>>, End) {
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut need = 1;
    let mut rest = stream;
    loop {
        while buf.len() >= need {
            match step(&mut buf, limits) {
                Ok(Parsed::Command(cmd)) => {
                    out.push(cmd);
                    need = 1;
                }
                Ok(Parsed::Incomplete(n)) => {
                    need = n;
                    break;
                }
                Err(e) => return (out, End::Error(e)),
            }
        }
        if rest.is_empty() {
            return (out, End::Waiting(buf.len()));
        }
        let read = choices.upto(rest.len().min(4096));
        buf.extend_from_slice(&rest[..read]);
        rest = &rest[read..];
    }
}

/// One parse, checking its contract: a command consumes bytes; `Incomplete(n)` asks
/// for more than is buffered and consumes nothing.
fn step(buf: &mut BytesMut, limits: Limits) -> Result<Parsed, ProtocolError> {
    let before = buf.clone();
    let parsed = parse(buf, limits)?;
    match &parsed {
        Parsed::Command(_) => assert!(buf.len() < before.len(), "a command consumed no bytes"),
        Parsed::Incomplete(n) => {
            assert!(
                *n > before.len(),
                "Incomplete({n}) with {} bytes buffered",
                before.len()
            );
            assert_eq!(*buf, before, "Incomplete consumed bytes");
        }
    }
    Ok(parsed)
}

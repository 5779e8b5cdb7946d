//! Pipelined commands whose replies are `+status` or `-error` (SELECT, SET, AUTH): many
//! requests go out in one write, then their replies are read in order. kvd reads
//! pipelines in batches and answers each batch with one write, so a load costs one round
//! trip per batch instead of one per key.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

/// How long one batch's replies may take before the load gives up on kvd.
const REPLY_TIMEOUT: Duration = Duration::from_secs(120);

/// A connection that queues commands and sends them together.
pub struct Pipeline {
    addr: String,
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    queued: Vec<u8>,
    count: usize,
}

impl Pipeline {
    /// Connects to `addr` and authenticates with `password` if given.
    pub fn connect(addr: &str, password: Option<&str>) -> Result<Pipeline, String> {
        let stream = TcpStream::connect(addr)
            .map_err(|e| format!("cannot connect to kvd at {addr}: {e}"))?;
        let _ = stream.set_nodelay(true);
        let _ = stream.set_read_timeout(Some(REPLY_TIMEOUT));
        let writer = stream
            .try_clone()
            .map_err(|e| format!("cannot use the connection to {addr}: {e}"))?;
        let mut pipeline = Pipeline {
            addr: addr.to_string(),
            reader: BufReader::new(stream),
            writer,
            queued: Vec::new(),
            count: 0,
        };
        if let Some(pw) = password {
            pipeline.push(&[b"AUTH", pw.as_bytes()]);
            if let Some(e) = pipeline.send().first_error() {
                return Err(format!("kvd refused AUTH: {e}"));
            }
        }
        Ok(pipeline)
    }

    /// Queues one command.
    pub fn push(&mut self, args: &[&[u8]]) {
        let q = &mut self.queued;
        q.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
        for a in args {
            q.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            q.extend_from_slice(a);
            q.extend_from_slice(b"\r\n");
        }
        self.count += 1;
    }

    /// Commands queued and not yet sent.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes queued and not yet sent.
    pub fn queued_bytes(&self) -> usize {
        self.queued.len()
    }

    /// Sends the queued commands and reads their replies in order.
    pub fn send(&mut self) -> Replies {
        let mut out = Replies {
            replies: Vec::with_capacity(self.count),
            broken: None,
        };
        let n = std::mem::take(&mut self.count);
        let sent = self.writer.write_all(&self.queued);
        self.queued.clear();
        if let Err(e) = sent {
            out.broken = Some(format!("connection to kvd at {} failed: {e}", self.addr));
            return out;
        }
        let mut line = Vec::new();
        while out.replies.len() < n {
            line.clear();
            if let Err(e) = self.reader.read_until(b'\n', &mut line) {
                out.broken = Some(format!("connection to kvd at {} failed: {e}", self.addr));
                break;
            }
            let text = String::from_utf8_lossy(line.strip_suffix(b"\r\n").unwrap_or(&line));
            match line.first() {
                Some(b'+') => out.replies.push(Ok(())),
                Some(b'-') => out.replies.push(Err(text[1..].to_string())),
                None => {
                    out.broken = Some(format!("kvd at {} closed the connection", self.addr));
                    break;
                }
                Some(_) => {
                    out.broken = Some(format!("unexpected reply from kvd: {text:?}"));
                    break;
                }
            }
        }
        out
    }
}

/// The replies to one batch.
pub struct Replies {
    /// `Ok` for `+status`, `Err(text)` for `-error`, in the order the commands were queued.
    pub replies: Vec<Result<(), String>>,
    /// Why the remaining commands got no reply (the connection broke, or a reply of another
    /// kind came); whether kvd applied them is unknown.
    pub broken: Option<String>,
}

impl Replies {
    /// The first error: a broken connection, else the first `-error` reply.
    pub fn first_error(&self) -> Option<&str> {
        self.broken.as_deref().or_else(|| {
            self.replies
                .iter()
                .find_map(|r| r.as_ref().err().map(String::as_str))
        })
    }
}

//! A minimal blocking RESP2 client: enough to send kvd's admin commands (`COMPACT`,
//! `CHECKPOINT`, `INFO`, `AUTH`) and read their replies. Requests are arrays of bulk
//! strings; replies are parsed recursively.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A reply from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+text`
    Status(String),
    /// `-text`
    Error(String),
    /// `:n`
    Integer(i64),
    /// `$n\r\nbytes` (`None` for `$-1`)
    Bulk(Option<Vec<u8>>),
    /// `*n` elements (`None` for `*-1`)
    Array(Option<Vec<Reply>>),
}

/// A connection to a kvd (or any RESP server).
pub struct Connection {
    addr: String,
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

/// Replies deeper than this are refused rather than recursed into.
const MAX_DEPTH: usize = 16;

/// Bulk strings longer than this are refused (a confused peer, not a kvd reply).
const MAX_BULK: usize = 512 * 1024 * 1024;

impl Connection {
    /// Connects to `addr` (`HOST:PORT`) and authenticates with `password` if given.
    pub fn open(addr: &str, password: Option<&str>) -> Result<Connection, String> {
        let stream = TcpStream::connect(addr)
            .map_err(|e| format!("cannot connect to kvd at {addr}: {e}"))?;
        let _ = stream.set_nodelay(true);
        let writer = stream
            .try_clone()
            .map_err(|e| format!("cannot use the connection to {addr}: {e}"))?;
        let mut conn = Connection {
            addr: addr.to_string(),
            reader: BufReader::new(stream),
            writer,
        };
        if let Some(pw) = password {
            conn.expect_ok(&[b"AUTH", pw.as_bytes()])?;
        }
        Ok(conn)
    }

    /// Limits how long one reply may take (`None`: wait forever, for COMPACT on big data).
    pub fn set_timeout(&self, timeout: Option<Duration>) {
        let _ = self.writer.set_read_timeout(timeout);
    }

    /// Sends one command and reads its reply.
    pub fn call(&mut self, args: &[&[u8]]) -> Result<Reply, String> {
        let mut req = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            req.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            req.extend_from_slice(a);
            req.extend_from_slice(b"\r\n");
        }
        let io = |e: std::io::Error| format!("connection to {} failed: {e}", self.addr);
        self.writer.write_all(&req).map_err(io)?;
        read_reply(&mut self.reader, 0).map_err(|e| format!("bad reply from {}: {e}", self.addr))
    }

    /// Sends a command that must answer `+OK`; an error reply becomes `Err` with its text.
    pub fn expect_ok(&mut self, args: &[&[u8]]) -> Result<(), String> {
        let name = String::from_utf8_lossy(args.first().copied().unwrap_or_default()).to_string();
        match self.call(args)? {
            Reply::Status(s) if s == "OK" => Ok(()),
            Reply::Error(e) => Err(format!("kvd refused {name}: {e}")),
            other => Err(format!("kvd answered {name} with {other:?} instead of +OK")),
        }
    }

    /// `INFO [section]` as `field -> value` pairs (comments and blank lines skipped).
    pub fn info(&mut self, section: Option<&str>) -> Result<Vec<(String, String)>, String> {
        let mut args: Vec<&[u8]> = vec![b"INFO"];
        if let Some(s) = section {
            args.push(s.as_bytes());
        }
        match self.call(&args)? {
            Reply::Bulk(Some(text)) => Ok(parse_info(&String::from_utf8_lossy(&text))),
            Reply::Error(e) => Err(format!("kvd refused INFO: {e}")),
            other => Err(format!("kvd answered INFO with {other:?}")),
        }
    }
}

/// Parses INFO text into `field -> value` pairs.
pub fn parse_info(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn read_line(r: &mut impl BufRead) -> Result<String, String> {
    let mut line = Vec::new();
    r.read_until(b'\n', &mut line).map_err(|e| e.to_string())?;
    if line.is_empty() {
        return Err("connection closed".into());
    }
    if !line.ends_with(b"\r\n") {
        return Err("line without CRLF".into());
    }
    line.truncate(line.len() - 2);
    String::from_utf8(line).map_err(|_| "line is not UTF-8".to_string())
}

fn read_reply(r: &mut impl BufRead, depth: usize) -> Result<Reply, String> {
    if depth > MAX_DEPTH {
        return Err("reply nested too deeply".into());
    }
    let line = read_line(r)?;
    let (kind, rest) = line.split_at(line.len().min(1));
    let number = || {
        rest.parse::<i64>()
            .map_err(|_| format!("bad number {rest:?}"))
    };
    match kind {
        "+" => Ok(Reply::Status(rest.to_string())),
        "-" => Ok(Reply::Error(rest.to_string())),
        ":" => Ok(Reply::Integer(number()?)),
        "$" => {
            let n = number()?;
            if n < 0 {
                return Ok(Reply::Bulk(None));
            }
            let n = usize::try_from(n).map_err(|_| "bulk length out of range".to_string())?;
            if n > MAX_BULK {
                return Err(format!("bulk string of {n} bytes"));
            }
            let mut buf = vec![0; n + 2];
            r.read_exact(&mut buf).map_err(|e| e.to_string())?;
            if !buf.ends_with(b"\r\n") {
                return Err("bulk string without CRLF".into());
            }
            buf.truncate(n);
            Ok(Reply::Bulk(Some(buf)))
        }
        "*" => {
            let n = number()?;
            if n < 0 {
                return Ok(Reply::Array(None));
            }
            let items = (0..n)
                .map(|_| read_reply(r, depth + 1))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Reply::Array(Some(items)))
        }
        _ => Err(format!("unknown reply type in {line:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Result<Reply, String> {
        read_reply(&mut &bytes[..], 0)
    }

    #[test]
    fn replies_parse() {
        assert_eq!(parse(b"+OK\r\n"), Ok(Reply::Status("OK".into())));
        assert_eq!(parse(b"-ERR no\r\n"), Ok(Reply::Error("ERR no".into())));
        assert_eq!(parse(b":42\r\n"), Ok(Reply::Integer(42)));
        assert_eq!(
            parse(b"$3\r\na\r\n\r\n"),
            Ok(Reply::Bulk(Some(b"a\r\n".to_vec())))
        );
        assert_eq!(parse(b"$-1\r\n"), Ok(Reply::Bulk(None)));
        assert_eq!(
            parse(b"*2\r\n:1\r\n$1\r\nx\r\n"),
            Ok(Reply::Array(Some(vec![
                Reply::Integer(1),
                Reply::Bulk(Some(b"x".to_vec()))
            ])))
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [
            &b""[..],
            b"?x\r\n",
            b"$5\r\nab\r\n",
            b":x\r\n",
            b"+OK\n",
            b"\r\n",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn info_fields_parse() {
        let f = parse_info("# Engine\r\ncompaction_running:1\r\n\r\nlevels:3\r\n");
        assert_eq!(
            f,
            vec![
                ("compaction_running".into(), "1".into()),
                ("levels".into(), "3".into())
            ]
        );
    }
}

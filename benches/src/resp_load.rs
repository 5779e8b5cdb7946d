//! A pipelined RESP loader: SETs keys `key:%012d` (redis-benchmark's `-r` key shape) with
//! db_bench-like half-compressible values over a few connections, to fill a server before
//! measuring its memory.

use crate::dbbench::workload::ValueGenerator;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Commands sent before reading their replies.
const PIPELINE: u64 = 1000;

/// Sends one PING; true if the server answered +PONG.
pub fn ping(port: u16) -> bool {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"*1\r\n$4\r\nPING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 7];
    s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}

/// Appends `SET key:<n> <value>` in RESP to `out`.
pub fn encode_set(out: &mut Vec<u8>, n: u64, value: &[u8]) {
    let key = format!("key:{n:012}");
    out.extend_from_slice(
        format!(
            "*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n${}\r\n",
            key.len(),
            value.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Loads keys `0..count` with `value_size`-byte values over `connections` connections;
/// returns the time it took.
pub fn load(
    port: u16,
    count: u64,
    value_size: usize,
    connections: u64,
) -> Result<Duration, String> {
    let started = Instant::now();
    let per = count.div_ceil(connections.max(1));
    let results: Vec<Result<(), String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..connections.max(1))
            .map(|c| {
                let (from, to) = (c * per, ((c + 1) * per).min(count));
                s.spawn(move || load_range(port, from, to, value_size))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("loader thread panicked".into()))
            })
            .collect()
    });
    results.into_iter().collect::<Result<Vec<()>, String>>()?;
    Ok(started.elapsed())
}

fn load_range(port: u16, from: u64, to: u64, value_size: usize) -> Result<(), String> {
    let stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    let mut writer = stream.try_clone().map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(stream);
    let mut values = ValueGenerator::new(value_size, 0.5);
    let mut buf = Vec::with_capacity(PIPELINE as usize * (value_size + 64));
    let mut line = String::new();
    let mut n = from;
    while n < to {
        let end = (n + PIPELINE).min(to);
        buf.clear();
        for k in n..end {
            encode_set(&mut buf, k, values.generate(value_size));
        }
        writer.write_all(&buf).map_err(|e| format!("write: {e}"))?;
        for _ in n..end {
            line.clear();
            reader
                .read_line(&mut line)
                .map_err(|e| format!("read: {e}"))?;
            if !line.starts_with('+') {
                return Err(format!("SET failed: {}", line.trim_end()));
            }
        }
        n = end;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_is_valid_resp() {
        let mut out = Vec::new();
        encode_set(&mut out, 42, b"vv");
        assert_eq!(
            out,
            b"*3\r\n$3\r\nSET\r\n$16\r\nkey:000000000042\r\n$2\r\nvv\r\n"
        );
    }
}

//! Helpers shared by the end-to-end tests: spawning real `kvd` processes on free ports in
//! temporary directories, waiting for readiness with a deadline, clients (the `redis`
//! crate, RESP2 or RESP3) and a raw socket for protocol-level tests; `tls` adds
//! certificates, TLS clients and a TLS-only server.
//!
//! A server's log lives in its temporary directory and goes away with it; run a failing
//! test with `KVD_KEEP_LOGS=/some/dir` to keep the logs of the servers it started
//! (copied there as `kvd-PORT.log` when the test panics).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test support: failing loudly is the point

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub mod client_programs;
pub mod cluster;
pub mod fenced_resource;
pub mod history_outcome;
pub mod http;
pub mod layout_change;
pub mod layout_history;
pub mod linearizable_workload;
pub mod nemesis;
pub mod netns;
pub mod replica_dumps;
pub mod rolling;
pub mod scripts;
pub mod tls;

/// How long a server gets to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Path of the server binary built alongside this test executable: this package's
/// `kvd-test-server` (the kvd entry point, always built by cargo for these tests), else
/// `kvd`; `KVD_BIN` overrides.
pub fn kvd_binary() -> PathBuf {
    if let Ok(p) = std::env::var("KVD_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test>-<hash> -> target/<profile>/kvd
    let mut dir = exe.parent().expect("exe dir").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    for name in ["kvd-test-server", "kvd"] {
        let bin = dir.join(name);
        if bin.exists() {
            return bin;
        }
    }
    panic!(
        "no kvd binary in {} (run the tests with `cargo test -p kv-tests`, or set KVD_BIN)",
        dir.display()
    )
}

/// A port that was free a moment ago, below Linux's ephemeral range (32768-60999).
/// Ports the kernel hands out (`bind(0)`) are also the local ports of outgoing
/// connections, so one chosen that way and released could be taken by any client socket
/// before kvd binds it (a cluster test failed on exactly that). Ports are taken in turn
/// from a per-process starting point, so tests running at once in one process never get
/// the same one.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    // 10000..19999; 20000..32767 is left to `free_base_port`.
    const LOW: u32 = 10_000;
    const SPAN: u32 = 10_000;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let start = (std::process::id() % 100) * (SPAN / 100);
    let _ = NEXT.compare_exchange(u32::MAX, start, Ordering::Relaxed, Ordering::Relaxed);
    for _ in 0..SPAN {
        let port = (LOW + NEXT.fetch_add(1, Ordering::Relaxed) % SPAN) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {LOW}..{}", LOW + SPAN)
}

/// A base port `p` such that `p..p+nodes` and `p+10000..p+10000+nodes` (the cluster bus
/// ports kvd defaults to) were free a moment ago: bases from 20000 to 22767, so that
/// neither range meets [`free_port`]'s or the ephemeral range, handed out in turn.
pub fn free_base_port(nodes: u16) -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 20_000;
    const SPAN: u32 = 2_700;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let nodes = u32::from(nodes.max(1));
    let start = (std::process::id() % 100) * (SPAN / 100);
    let _ = NEXT.compare_exchange(u32::MAX, start, Ordering::Relaxed, Ordering::Relaxed);
    let free = |q: u32| TcpListener::bind(("127.0.0.1", q as u16)).is_ok();
    for _ in 0..SPAN {
        let base = LOW + NEXT.fetch_add(nodes, Ordering::Relaxed) % (SPAN - nodes);
        if (0..nodes).all(|i| free(base + i) && free(base + i + 10_000)) {
            return base as u16;
        }
    }
    panic!("no free block of {nodes} ports from {LOW}")
}

/// A running (or stopped) kvd process with its own data directory.
pub struct Kvd {
    /// Data directory (kept across restarts).
    pub dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    /// Port it listens on.
    pub port: u16,
    /// Extra flags given at every start.
    pub args: Vec<String>,
    /// RLIMIT_NOFILE (soft and hard) to start the process with, if not inherited.
    pub nofile: Option<u64>,
    /// The kvd executable every (re)start runs: [`kvd_binary`] unless changed (a rolling
    /// upgrade restarts a node on another build, tests/tests/cluster_mixed_upgrade.rs).
    pub binary: PathBuf,
    child: Option<Child>,
    log: PathBuf,
}

impl Kvd {
    /// Starts kvd in a fresh temporary directory with extra flags.
    pub fn start(args: &[&str]) -> Kvd {
        Kvd::launch(args, None)
    }

    /// Starts kvd on `port` (chosen by the caller, for example because other processes'
    /// flags name it) in a fresh temporary directory.
    pub fn start_at(port: u16, args: &[&str]) -> Kvd {
        Kvd::start_binary_at(kvd_binary(), port, args)
    }

    /// [`Kvd::start_at`] running `binary` rather than this build's kvd.
    pub fn start_binary_at(binary: PathBuf, port: u16, args: &[&str]) -> Kvd {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut k = Kvd {
            dir: tmp.path().join("data"),
            log: tmp.path().join("kvd.log"),
            _tmp: Some(tmp),
            port,
            args: args.iter().map(|s| s.to_string()).collect(),
            nofile: None,
            binary,
            child: None,
        };
        k.spawn_ready();
        assert_eq!(
            k.port,
            port,
            "port {port} was taken; log:\n{}",
            k.log_text()
        );
        k
    }

    /// Starts kvd in a fresh directory with an open files limit of `nofile`.
    pub fn start_with_nofile(nofile: u64, args: &[&str]) -> Kvd {
        Kvd::launch(args, Some(nofile))
    }

    fn launch(args: &[&str], nofile: Option<u64>) -> Kvd {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut k = Kvd {
            dir: tmp.path().join("data"),
            log: tmp.path().join("kvd.log"),
            _tmp: Some(tmp),
            port: 0,
            args: args.iter().map(|s| s.to_string()).collect(),
            nofile,
            binary: kvd_binary(),
            child: None,
        };
        k.spawn_ready();
        k
    }

    /// Starts kvd with default flags.
    pub fn start_default() -> Kvd {
        Kvd::start(&[])
    }

    fn spawn_ready(&mut self) {
        for attempt in 0..5 {
            let port = if self.port != 0 && attempt == 0 {
                self.port
            } else {
                free_port()
            };
            if self.spawn_once(port) {
                return;
            }
        }
        panic!("kvd did not become ready; log:\n{}", self.log_text());
    }

    /// Starts the process once on `port` and waits until it answers: false if it exited
    /// (or never answered) first, and then it is not running.
    fn spawn_once(&mut self, port: u16) -> bool {
        self.port = port;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let mut command = Command::new(&self.binary);
        if let Some(limit) = self.nofile {
            use std::os::unix::process::CommandExt;
            // SAFETY: between fork and exec the closure only calls setrlimit, which is
            // async-signal-safe, and touches no memory shared with other threads.
            unsafe {
                command.pre_exec(move || {
                    let r = libc::rlimit {
                        rlim_cur: limit,
                        rlim_max: limit,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &r) == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
        }
        let child = command
            .arg("--port")
            .arg(port.to_string())
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn kvd");
        self.child = Some(child);
        if self.wait_ready() {
            return true;
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        false
    }

    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + READY_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(_)) = c.try_wait() {
                    return false; // exited (port taken?)
                }
            }
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                if s.write_all(b"PING\r\n").is_ok() {
                    let mut buf = [0u8; 64];
                    if let Ok(n) = s.read(&mut buf) {
                        // -NOAUTH also proves the server is up.
                        if n > 0 && (buf.starts_with(b"+PONG") || buf.starts_with(b"-NOAUTH")) {
                            return true;
                        }
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// The server's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `redis://127.0.0.1:port/` (with `?protocol=resp3` if asked).
    pub fn url(&self, resp3: bool) -> String {
        if resp3 {
            format!("redis://127.0.0.1:{}/?protocol=resp3", self.port)
        } else {
            format!("redis://127.0.0.1:{}/", self.port)
        }
    }

    /// A RESP2 client.
    pub fn client(&self) -> redis::Connection {
        self.client_with(false)
    }

    /// A client speaking RESP2 or RESP3.
    pub fn client_with(&self, resp3: bool) -> redis::Connection {
        let c = redis::Client::open(self.url(resp3)).expect("client");
        let conn = c
            .get_connection_with_timeout(Duration::from_secs(10))
            .expect("connect");
        conn.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        conn
    }

    /// A raw socket to the server.
    pub fn raw(&self) -> RawConn {
        let s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        RawConn { s }
    }

    /// Process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// SIGKILL, no chance to flush.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Freezes the process (SIGSTOP): it keeps its connections open and answers nothing,
    /// as in a long GC pause, until [`Kvd::resume`].
    pub fn pause(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// Lets a paused process run again (SIGCONT).
    pub fn resume(&self) {
        self.signal(libc::SIGCONT);
    }

    fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid with a valid signal number.
        unsafe {
            libc::kill(self.pid() as i32, sig);
        }
    }

    /// Sends `sig` and waits (bounded) for the exit status.
    pub fn signal_and_wait(&mut self, sig: i32) -> ExitStatus {
        let mut c = self.child.take().expect("running");
        // SAFETY: kill(2) on our own child's pid with a valid signal number.
        unsafe {
            libc::kill(c.id() as i32, sig);
        }
        wait_bounded(&mut c, Duration::from_secs(30))
    }

    /// Waits (bounded) for the process to exit by itself (e.g. after SHUTDOWN).
    pub fn wait_exit(&mut self) -> ExitStatus {
        let mut c = self.child.take().expect("running");
        wait_bounded(&mut c, Duration::from_secs(30))
    }

    /// Starts again on the same directory and port (or a new port if taken).
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn_ready();
    }

    /// Starts again on the same directory and port, once: false if the process exited
    /// before it answered (a start the binary refuses; [`Kvd::log_text`] says why).
    pub fn try_restart(&mut self) -> bool {
        self.kill9();
        self.spawn_once(self.port)
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// The data directory's path.
    pub fn data_dir(&self) -> &Path {
        &self.dir
    }
}

pub(crate) fn wait_bounded(c: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(st) = c.try_wait().expect("try_wait") {
            return st;
        }
        if Instant::now() > deadline {
            let _ = c.kill();
            panic!("kvd did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

impl Drop for Kvd {
    fn drop(&mut self) {
        self.kill9();
        // A failing test's server logs, kept where KVD_KEEP_LOGS names (they live in a
        // temporary directory that goes away with the Kvd).
        if let (true, Some(dir)) = (std::thread::panicking(), std::env::var_os("KVD_KEEP_LOGS")) {
            let dir = PathBuf::from(dir);
            let _ = std::fs::create_dir_all(&dir);
            let _ = std::fs::copy(&self.log, dir.join(format!("kvd-{}.log", self.port)));
        }
    }
}

/// A raw TCP connection for byte-level protocol tests.
pub struct RawConn {
    /// The socket.
    pub s: TcpStream,
}

impl RawConn {
    /// Sends bytes.
    pub fn send(&mut self, b: &[u8]) {
        self.s.write_all(b).expect("write");
    }

    /// Sends all `cmds` in one write (so the server reads them as one pipeline) and
    /// returns their replies as text, in order.
    pub fn pipeline(&mut self, cmds: &[&[&str]]) -> Vec<String> {
        let mut bytes = Vec::new();
        for c in cmds {
            let args: Vec<&[u8]> = c.iter().map(|a| a.as_bytes()).collect();
            bytes.extend(encode_command(&args));
        }
        self.send(&bytes);
        cmds.iter()
            .map(|_| String::from_utf8_lossy(&self.reply()).into_owned())
            .collect()
    }

    /// Reads one complete RESP reply (bytes as received).
    pub fn reply(&mut self) -> Vec<u8> {
        let mut buf = Vec::new();
        let mut byte = [0u8; 1];
        loop {
            match self.s.read(&mut byte) {
                Ok(0) => return buf,
                Ok(_) => buf.push(byte[0]),
                Err(e) => panic!("read failed after {:?}: {e}", String::from_utf8_lossy(&buf)),
            }
            if resp_complete(&buf).is_some() {
                return buf;
            }
        }
    }

    /// Sends a command as a multibulk and returns the reply as text.
    pub fn cmd(&mut self, args: &[&[u8]]) -> String {
        self.send(&encode_command(args));
        String::from_utf8_lossy(&self.reply()).into_owned()
    }

    /// True if the server closed the connection (read returns EOF or reset).
    pub fn is_closed(&mut self) -> bool {
        let mut b = [0u8; 256];
        loop {
            match self.s.read(&mut b) {
                Ok(0) => return true,
                Ok(_) => continue, // drain pending replies
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
                Err(_) => return false,
            }
        }
    }
}

/// Encodes a command as a RESP multibulk.
pub fn encode_command(args: &[&[u8]]) -> Vec<u8> {
    let mut v = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        v.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        v.extend_from_slice(a);
        v.extend_from_slice(b"\r\n");
    }
    v
}

/// If `buf` starts with one complete RESP2/RESP3 value, its length.
pub fn resp_complete(buf: &[u8]) -> Option<usize> {
    let line_end = buf.windows(2).position(|w| w == b"\r\n")?;
    let line = std::str::from_utf8(&buf[1..line_end]).ok()?;
    let after = line_end + 2;
    match buf[0] {
        b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => Some(after),
        b'$' | b'=' | b'!' => {
            let n: i64 = line.parse().ok()?;
            if n < 0 {
                return Some(after);
            }
            let end = after + n as usize + 2;
            (buf.len() >= end).then_some(end)
        }
        b'*' | b'~' | b'%' | b'>' => {
            let n: i64 = line.parse().ok()?;
            if n < 0 {
                return Some(after);
            }
            let items = if buf[0] == b'%' { 2 * n } else { n };
            let mut pos = after;
            for _ in 0..items {
                pos += resp_complete(&buf[pos..])?;
            }
            Some(pos)
        }
        _ => None,
    }
}

/// Path of Debian's redis-server if installed.
pub fn redis_server_binary() -> Option<PathBuf> {
    ["/usr/bin/redis-server", "/usr/local/bin/redis-server"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// A real redis-server for differential tests.
pub struct RedisServer {
    child: Child,
    /// Its port.
    pub port: u16,
    _tmp: tempfile::TempDir,
}

impl RedisServer {
    /// Starts redis-server without persistence on a free port; `None` if not installed.
    pub fn start() -> Option<RedisServer> {
        let bin = redis_server_binary()?;
        let tmp = tempfile::tempdir().expect("tempdir");
        for _ in 0..5 {
            let port = free_port();
            let mut child = Command::new(&bin)
                .args([
                    "--port",
                    &port.to_string(),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ])
                .arg("--dir")
                .arg(tmp.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn redis-server");
            let deadline = Instant::now() + READY_TIMEOUT;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
                    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                    let mut b = [0u8; 16];
                    if s.write_all(b"PING\r\n").is_ok() && matches!(s.read(&mut b), Ok(n) if n > 0)
                    {
                        return Some(RedisServer {
                            child,
                            port,
                            _tmp: tmp,
                        });
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("redis-server did not start");
    }

    /// A raw connection.
    pub fn raw(&self) -> RawConn {
        let s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        RawConn { s }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `cond` every 10 ms until it holds; panics with `what` after `timeout`.
pub fn eventually(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Resident memory of process `pid` in KiB (0 if it cannot be read).
pub fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// The value of an integer reply's text (`:42\r\n`); panics on anything else.
pub fn int_reply(reply: &str) -> i64 {
    reply
        .trim()
        .trim_start_matches(':')
        .parse()
        .unwrap_or_else(|_| panic!("not an integer reply: {reply:?}"))
}

/// The value of `field` in an INFO reply's text.
pub fn info_field(info: &str, field: &str) -> Option<String> {
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .map(|v| v.trim().to_string())
}

/// Copies directory `from` into `to` recursively (a crash image or an old backup of a
/// node's data directory, for the restore tests).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resp_framing_of_replies() {
        assert_eq!(resp_complete(b"+OK\r\n"), Some(5));
        assert_eq!(resp_complete(b"$3\r\nabc\r\n"), Some(9));
        assert_eq!(resp_complete(b"$3\r\nab"), None);
        assert_eq!(resp_complete(b"*2\r\n:1\r\n$-1\r\n"), Some(13));
        assert_eq!(resp_complete(b"%1\r\n+a\r\n:1\r\n"), Some(12));
        assert_eq!(resp_complete(b"*1\r\n"), None);
    }
}

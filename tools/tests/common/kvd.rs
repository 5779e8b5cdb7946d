//! A real kvd for end-to-end tests, when one is built: `KVD_BIN`, else `kvd` or
//! `kvd-test-server` (kvd's entry point, which `cargo test --workspace` builds in the
//! kv-tests crate) beside the kvtool binary, or `kvd` in `target/release`.

use super::s;
use kvtool::resp::{Connection, Reply};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The kvd binary to test against, if there is one.
pub fn find_kvd() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("KVD_BIN") {
        return Some(PathBuf::from(p));
    }
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_kvtool"));
    let profile_dir = exe.parent()?;
    // kvd-test-server is kvd's entry point built by the kv-tests crate: a workspace test
    // run builds it, not `kvd` itself, so without it these tests skipped in CI.
    [
        profile_dir.join("kvd"),
        profile_dir.join("kvd-test-server"),
        profile_dir.parent()?.join("release/kvd"),
    ]
    .into_iter()
    .find(|p| p.exists())
}

/// [`find_kvd`], printing why the test is skipped when there is none.
pub fn find_or_skip() -> Option<PathBuf> {
    let found = find_kvd();
    if found.is_none() {
        println!("skipped: no kvd binary (set KVD_BIN or build kv-server first)");
    }
    found
}

/// [`start_kvd`], printing why the test is skipped when it does not come up.
pub fn start_or_skip(bin: &Path, dir: &Path) -> Option<(Server, String)> {
    start_kvd(bin, dir)
        .map_err(|why| println!("skipped: {why}"))
        .ok()
}

/// A running kvd, killed when dropped.
pub struct Server(pub Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `bin` on a free port over `dir`; `Err` says why it did not come up.
pub fn start_kvd(bin: &Path, dir: &Path) -> Result<(Server, String), String> {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(bin)
        .args(["--port", &port.to_string(), "--dir", s(dir)])
        // kvtool backup --addr names an absolute destination from loopback.
        .args(["--enable-checkpoint-anywhere", "local"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    let mut server = Server(child);
    let addr = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(&addr).is_err() {
        if let Ok(Some(status)) = server.0.try_wait() {
            return Err(format!(
                "{} --port {port} --dir ... exited with {status}",
                bin.display()
            ));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{} did not listen on {addr} within 10 s",
                bin.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok((server, addr))
}

/// Sends one command; panics on a broken connection.
pub fn call(conn: &mut Connection, args: &[&str]) -> Reply {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    conn.call(&args).unwrap()
}

/// Asks kvd to shut down (flushing and syncing) and waits until it has exited.
pub fn shutdown(server: &mut Server, addr: &str) {
    if let Ok(mut conn) = Connection::open(addr, None) {
        let _ = conn.call(&[b"SHUTDOWN"]);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = server.0.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("kvd did not exit after SHUTDOWN");
}

/// `GET key` through `conn`.
pub fn get(conn: &mut Connection, key: &str) -> Option<Vec<u8>> {
    match call(conn, &["GET", key]) {
        Reply::Bulk(v) => v,
        other => panic!("GET {key}: {other:?}"),
    }
}

/// A client port `p` such that `p..p+nodes` and their bus ports (`+10000`) are free, for
/// a local cluster laid out as `kvtool cluster up` lays it out.
pub fn free_base_port(nodes: u16) -> u16 {
    kv_tests::free_base_port(nodes)
}

//! Client libraries as their users run them, against a real kvd: one program per library
//! in tests/clients/<lang>/ (redis-py, node-redis, redigo, Predis, hiredis; what each
//! does is in tests/clients/README.md), and the Rust `redis` crate in this file. The
//! libraries' own client-side caches are in client_side_caches.rs.
//!
//! Each program must exit 0 and print `OK` last. When Debian's redis-server is installed
//! the same program also runs against it first, so an expectation that only kvd meets
//! cannot hide in a program. A library or toolchain missing here prints
//! `SKIPPED: <lib>: <why>` and the case returns (CI installs them all in .ci/run).

use kv_tests::client_programs::{clients_dir, run_program, skipped, succeeds};
use kv_tests::{eventually, Kvd, RedisServer};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Runs a compiler command for `lib`'s program; panics with its messages if it fails.
fn compile(lib: &str, mut compiler: Command) {
    let out = compiler
        .output()
        .unwrap_or_else(|e| panic!("{lib}: cannot run {compiler:?}: {e}"));
    assert!(
        out.status.success(),
        "{lib}: {compiler:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs the program against redis-server when installed (checks the program), then
/// against a fresh kvd (checks kvd).
fn run_against_servers(lib: &str, program: &Path, args: &[&str], env: &[(&str, &str)]) {
    match RedisServer::start() {
        Some(redis) => run_program(lib, "redis-server", redis.port, program, args, env),
        None => eprintln!("{lib}: redis-server is not installed; running against kvd only"),
    }
    let kvd = Kvd::start_default();
    run_program(lib, "kvd", kvd.port, program, args, env);
}

/// Runs an interpreted program, `tests/clients/<script>`, after probing that the
/// interpreter runs and loads the library (`load` are its arguments for that).
fn run_script(
    lib: &str,
    interpreter: &str,
    load: &[&str],
    package: &str,
    script: &str,
    env: &[(&str, &str)],
) {
    if !succeeds(interpreter, &["--version"], env) {
        return skipped(lib, &format!("{interpreter} is not installed"));
    }
    if !succeeds(interpreter, load, env) {
        return skipped(lib, &format!("{package} is not installed"));
    }
    let script = clients_dir(script);
    let interpreter = Path::new(interpreter);
    run_against_servers(lib, interpreter, &[&script.to_string_lossy()], env);
}

#[test]
fn redis_py() {
    // Debian's python3-redis is found by the system interpreter, not by a pyenv's.
    run_script(
        "redis-py",
        "/usr/bin/python3",
        &["-c", "import redis"],
        "python3-redis",
        "python/kvd_client_check.py",
        &[],
    );
}

#[test]
fn node_redis() {
    // Debian's node-redis lives in /usr/share/nodejs, which Debian's node searches by
    // itself and other builds of node (NodeSource's) only through NODE_PATH.
    run_script(
        "node-redis",
        "node",
        &["-e", "require('redis')"],
        "node-redis",
        "node/kvd_client_check.js",
        &[("NODE_PATH", "/usr/share/nodejs")],
    );
}

#[test]
fn predis() {
    run_script(
        "predis",
        "php",
        &["-r", "require 'Predis/autoload.php';"],
        "php-predis",
        "php/kvd_client_check.php",
        &[],
    );
}

#[test]
fn redigo() {
    const DEBIAN_GOPATH: &str = "/usr/share/gocode";
    if !succeeds("go", &["version"], &[]) {
        return skipped("redigo", "go is not installed");
    }
    if !Path::new(DEBIAN_GOPATH)
        .join("src/github.com/gomodule/redigo/redis")
        .is_dir()
    {
        return skipped(
            "redigo",
            "golang-github-gomodule-redigo-dev is not installed",
        );
    }
    // GOPATH mode: no module proxy is reachable, Debian's sources are the dependencies.
    let build = tempfile::tempdir().expect("tempdir");
    let binary = build.path().join("kvdclientcheck");
    let gopath = format!("{}:{DEBIAN_GOPATH}", clients_dir("go").display());
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("go-build-cache");
    let mut go_build = Command::new("go");
    go_build
        .args(["build", "-o"])
        .arg(&binary)
        .arg("kvdclientcheck")
        .env("GO111MODULE", "off")
        .env("GOPATH", &gopath)
        .env("GOCACHE", &cache);
    compile("redigo", go_build);
    run_against_servers("redigo", &binary, &[], &[]);
}

#[test]
fn hiredis() {
    if !succeeds("gcc", &["--version"], &[]) {
        return skipped("hiredis", "gcc is not installed");
    }
    if !Path::new("/usr/include/hiredis/hiredis.h").exists() {
        return skipped("hiredis", "libhiredis-dev is not installed");
    }
    let build = tempfile::tempdir().expect("tempdir");
    let binary = build.path().join("kvd_client_check");
    let mut gcc = Command::new("gcc");
    gcc.args(["-Wall", "-Wextra", "-Werror", "-O1", "-o"])
        .arg(&binary)
        .arg(clients_dir("c/kvd_client_check.c"))
        .arg("-lhiredis");
    compile("hiredis", gcc);
    run_against_servers("hiredis", &binary, &[], &[]);
}

/// The Rust `redis` crate (the version in Cargo.lock): binary values, a pipeline, the
/// crate's `transaction` helper retrying after another connection changed the watched
/// key, an error reply leaving the connection usable.
#[test]
fn rust_redis_crate_resp2() {
    let kvd = Kvd::start_default();
    let mut c = kvd.client();
    let mut other = kvd.client();

    let binary: Vec<u8> = (0..=255u8).chain(*b"\r\n\0end").collect();
    redis::cmd("SET")
        .arg(b"bin\0key\xff")
        .arg(&binary)
        .exec(&mut c)
        .expect("SET");
    let got: Vec<u8> = redis::cmd("GET")
        .arg(b"bin\0key\xff")
        .query(&mut c)
        .expect("GET");
    assert_eq!(got, binary);

    let mut pipe = redis::pipe();
    for i in 0..500 {
        pipe.cmd("SET").arg(format!("p:{i}")).arg(i).ignore();
    }
    for i in 0..500 {
        pipe.cmd("GET").arg(format!("p:{i}"));
    }
    let values: Vec<i64> = pipe.query(&mut c).expect("pipeline");
    assert_eq!(values, (0..500).collect::<Vec<i64>>());

    redis::cmd("SET")
        .arg("balance")
        .arg(100)
        .exec(&mut c)
        .expect("SET");
    let mut runs = 0;
    let (new_balance,): (i64,) = redis::transaction(&mut c, &["balance"], |c, pipe| {
        runs += 1;
        let balance: i64 = redis::cmd("GET").arg("balance").query(c)?;
        if runs == 1 {
            redis::cmd("INCRBY")
                .arg("balance")
                .arg(50)
                .exec(&mut other)?;
        }
        pipe.cmd("DECRBY").arg("balance").arg(30).ignore();
        pipe.cmd("GET").arg("balance");
        let reply: Option<(i64,)> = pipe.query(c)?;
        assert!(
            runs > 1 || reply.is_none(),
            "EXEC ran despite the watched change (balance {balance})"
        );
        Ok(reply)
    })
    .expect("transaction");
    assert_eq!((runs, new_balance), (2, 120));

    redis::cmd("SET")
        .arg("text")
        .arg("not a number")
        .exec(&mut c)
        .expect("SET");
    let err = redis::cmd("INCR")
        .arg("text")
        .query::<i64>(&mut c)
        .expect_err("INCR of a non-integer");
    assert_eq!(err.kind(), redis::ErrorKind::ResponseError);
    assert_eq!(
        err.detail(),
        Some("value is not an integer or out of range")
    );
    let text: String = redis::cmd("GET")
        .arg("text")
        .query(&mut c)
        .expect("GET after error");
    assert_eq!(text, "not a number");
}

/// The Rust `redis` crate over RESP3 (`?protocol=resp3`: the crate sends HELLO 3): the
/// connection is RESP3 on the server's side, and client-side caching with the crate's
/// push channel: a tracked read, another connection's write, and the `invalidate` push
/// delivered to the sender the crate was given.
#[test]
fn rust_redis_crate_resp3_tracking() {
    let kvd = Kvd::start_default();
    let mut c = kvd.client_with(true);
    let mut other = kvd.client();
    let info: String = redis::cmd("CLIENT")
        .arg("INFO")
        .query(&mut c)
        .expect("CLIENT INFO");
    assert!(info.contains(" resp=3"), "not RESP3: {info}");

    let (tx, rx) = std::sync::mpsc::channel();
    c.set_push_sender(tx);
    redis::cmd("CLIENT")
        .arg("TRACKING")
        .arg("ON")
        .exec(&mut c)
        .expect("CLIENT TRACKING ON");
    redis::cmd("SET")
        .arg("cached")
        .arg("v1")
        .exec(&mut other)
        .expect("SET");
    let v: String = redis::cmd("GET")
        .arg("cached")
        .query(&mut c)
        .expect("tracked GET");
    assert_eq!(v, "v1");
    redis::cmd("SET")
        .arg("cached")
        .arg("v2")
        .exec(&mut other)
        .expect("SET");
    // A blocking connection reads pushes only while it reads a reply: ping until the
    // invalidation has come through.
    let mut push = None;
    eventually(
        "the invalidate push arrives",
        Duration::from_secs(10),
        || {
            redis::cmd("PING").exec(&mut c).expect("PING");
            push = rx.try_recv().ok();
            push.is_some()
        },
    );
    let push = push.expect("push");
    assert_eq!(push.kind, redis::PushKind::Invalidate);
    assert_eq!(
        push.data,
        vec![redis::Value::Array(vec![redis::Value::BulkString(
            b"cached".to_vec()
        )])]
    );
}

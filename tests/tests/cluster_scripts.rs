//! Lua scripts and functions on a 3-node cluster (docs/scripting.md, "Cluster mode"): a
//! read-modify-write script run concurrently through every node counts each call
//! exactly once (it runs as the change function of its key's consensus round); scripts
//! naming keys of several slots, or touching a key they did not declare, are refused; redis-py's
//! `Lock` works with its clients spread over the nodes; FUNCTION LOAD through one node
//! is callable through every node, reaches a node that was down, and so does DELETE.

use kv_tests::cluster::{assert_increments_count_once, connect, urls, Cluster};
use kv_tests::{eventually, Kvd};
use std::process::Command;
use std::time::Duration;

/// An increment written as a read, then a write: two runs against the same value would
/// both return the same number, so only a linearizable script run counts correctly.
const READ_THEN_WRITE: &str = "local v = tonumber(redis.call('GET', KEYS[1]) or '0') + 1 \
                               redis.call('SET', KEYS[1], v) return v";

const LIBRARY: &str = "#!lua name=counters\n\
    redis.register_function('bump', function(keys, args) return redis.call('INCRBY', keys[1], args[1]) end)";

fn eval(conn: &mut redis::Connection, script: &str, keys: &[&str]) -> redis::RedisResult<i64> {
    redis::cmd("EVAL")
        .arg(script)
        .arg(keys.len())
        .arg(keys)
        .query(conn)
}

#[test]
fn scripts_run_once_per_call_through_every_node_and_stay_on_their_key() {
    let c = Cluster::start(3, &["--cluster-eventual-databases", "1"]);
    let urls = urls(&c);
    assert_increments_count_once(&urls, "counter", 6, 20, |conn, key| {
        eval(conn, READ_THEN_WRITE, &[key])
    });

    let mut conn = connect(&urls[1]);
    // Several keys in different slots: refused before anything runs (several keys of
    // one slot are a transaction: cluster_transactions.rs).
    let e = eval(
        &mut conn,
        "return redis.call('SET', KEYS[2], 1)",
        &["a", "b"],
    )
    .unwrap_err();
    assert_eq!(e.code(), Some("CROSSSLOT"), "{e}");
    assert_eq!(
        e.detail(),
        Some("Keys in request don't hash to the same slot")
    );
    let b: Option<String> = redis::cmd("GET").arg("b").query(&mut conn).unwrap();
    assert_eq!(b, None);
    // The same key twice is one key.
    assert_eq!(
        eval(
            &mut conn,
            "return redis.call('INCR', KEYS[2])",
            &["same", "same"]
        )
        .unwrap(),
        1
    );
    // A key the script did not declare: refused inside the script, nothing written.
    let e = eval(
        &mut conn,
        "redis.call('SET', KEYS[1], 'x') return redis.call('SET', 'undeclared', 1)",
        &["declared"],
    )
    .unwrap_err();
    assert_eq!(e.code(), Some("CROSSSLOT"), "{e}");
    assert!(e.to_string().contains("'undeclared'"), "{e}");
    let undeclared: Option<String> = redis::cmd("GET")
        .arg("undeclared")
        .query(&mut conn)
        .unwrap();
    assert_eq!(undeclared, None);
    // As on one node and in Redis, what a failing script wrote before failing stays.
    let declared: Option<String> = redis::cmd("GET").arg("declared").query(&mut conn).unwrap();
    assert_eq!(declared.as_deref(), Some("x"));
    // A script without keys runs on the node reached; it may not touch keys.
    let pong: String = redis::cmd("EVAL")
        .arg("return redis.call('PING')['ok']")
        .arg(0)
        .query(&mut conn)
        .unwrap();
    assert_eq!(pong, "PONG");
    let e = eval(&mut conn, "return redis.call('GET', 'counter')", &[]).unwrap_err();
    assert_eq!(e.code(), Some("CROSSSLOT"), "{e}");
    // Read-only scripts run through the round too and see the newest value.
    let read: i64 = redis::cmd("EVAL_RO")
        .arg("return tonumber(redis.call('GET', KEYS[1]))")
        .arg(1)
        .arg("counter")
        .query(&mut conn)
        .unwrap();
    assert!(read >= 60, "EVAL_RO read {read}, below half the increments");
    // An eventual database refuses scripts, like every read-modify-write command.
    let _: () = redis::cmd("SELECT").arg(1).query(&mut conn).unwrap();
    let e = eval(&mut conn, READ_THEN_WRITE, &["counter"]).unwrap_err();
    assert!(e.to_string().contains("eventual"), "{e}");
}

#[test]
fn functions_loaded_through_one_node_run_everywhere_and_reach_a_node_that_was_down() {
    let mut c = Cluster::start(3, &[]);
    c.nodes[2].kill9();
    let mut n0 = connect(&c.nodes[0].url(false));
    let name: String = redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg(LIBRARY)
        .query(&mut n0)
        .unwrap();
    assert_eq!(name, "counters");
    let mut n1 = connect(&c.nodes[1].url(false));
    let v: i64 = redis::cmd("FCALL")
        .arg(&["bump", "1", "fk", "5"])
        .query(&mut n1)
        .unwrap();
    assert_eq!(v, 5);

    // The node that was down learns the library when it is back.
    c.nodes[2].restart();
    let url2 = c.nodes[2].url(false);
    eventually(
        "the restarted node runs the function",
        Duration::from_secs(30),
        || {
            redis::cmd("FCALL")
                .arg(&["bump", "1", "fk", "1"])
                .query::<i64>(&mut connect(&url2))
                .is_ok()
        },
    );
    let total: i64 = redis::cmd("GET").arg("fk").query(&mut n0).unwrap();
    assert!(total >= 6, "fk is {total}");

    // A deletion through that node removes it everywhere.
    let _: () = redis::cmd("FUNCTION")
        .arg(&["DELETE", "counters"])
        .query(&mut connect(&url2))
        .unwrap();
    for node in &c.nodes {
        let e = redis::cmd("FCALL")
            .arg(&["bump", "1", "fk", "1"])
            .query::<i64>(&mut connect(&node.url(false)))
            .unwrap_err();
        assert!(
            e.to_string().contains("Function not found"),
            "{}: {e}",
            node.url(false)
        );
    }
}

fn python_with_redis_py() -> Option<&'static str> {
    let python = "/usr/bin/python3";
    let ok = Command::new(python)
        .args(["-c", "import redis"])
        .status()
        .is_ok_and(|s| s.success());
    ok.then_some(python)
}

fn run_python(python: &str, script: &str, nodes: &[&Kvd]) {
    let path = format!("{}/scripts/{script}", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(python)
        .arg(&path)
        .args(nodes.iter().map(|n| n.port.to_string()))
        .output()
        .expect("run python3");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "OK",
        "{script} failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn redis_py_lock_works_with_its_clients_on_different_nodes() {
    let Some(python) = python_with_redis_py() else {
        eprintln!(
            "SKIPPED: redis-py is not installed (apt-get install python3-redis); CI installs it"
        );
        return;
    };
    let c = Cluster::start(3, &[]);
    let nodes: Vec<&Kvd> = c.nodes.iter().collect();
    run_python(python, "redis_py_lock_cluster.py", &nodes);
    // The single-node walk-through (reacquire, SCRIPT FLUSH then NOSCRIPT and EVAL)
    // through one node of the ring.
    run_python(python, "redis_py_lock.py", &nodes[1..2]);
}

/// The token-bucket rate limiter script (EVALSHA, loaded on NOSCRIPT as libraries do)
/// raced by clients through every node: the bucket never gives more than it holds, as
/// on one node (scripting_clients.rs).
#[test]
fn a_rate_limiter_raced_through_every_node_never_gives_more_than_its_tokens() {
    let c = Cluster::start(3, &[]);
    let urls = urls(&c);
    let (granted, failed) = std::thread::scope(|s| {
        let handles: Vec<_> = urls
            .iter()
            .map(|url| {
                s.spawn(move || {
                    let mut conn = connect(url);
                    let (mut granted, mut failed) = (0, 0);
                    for _ in 0..12 {
                        match kv_tests::scripts::try_take(&mut conn, "shared", 10, 5_000) {
                            Ok((allowed, _)) => granted += allowed,
                            Err(e) => {
                                eprintln!("a take failed: {e}");
                                failed += 1;
                            }
                        }
                    }
                    (granted, failed)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("client"))
            .fold((0, 0), |(g, f), (g2, f2)| (g + g2, f + f2))
    });
    assert!(granted <= 10, "the bucket of 10 gave {granted} tokens");
    if failed == 0 {
        assert_eq!(granted, 10, "36 takes and no failure, yet {granted} tokens");
    }
}

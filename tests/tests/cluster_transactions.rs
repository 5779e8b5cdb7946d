//! Multi-key transactions on a ring of real kvd processes (docs/consistency.md,
//! "Transactions on the ring"): MULTI/EXEC, WATCH, multi-key commands and multi-key
//! scripts whose keys share a slot, atomic and linearizable whichever node each client
//! reached, also when a coordinator is killed in the middle of its transactions.

use kv_tests::cluster::{cluster_info, connect, nothing_written, urls, Cluster};
use kv_tests::eventually;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Keys of one slot (one hash tag).
const ACCOUNTS: [&str; 3] = ["{bank}a", "{bank}b", "{bank}c"];
const START: i64 = 1000;

/// Every account holds START.
fn fund(url: &str) {
    let mut setup = connect(url);
    for k in ACCOUNTS {
        let _: () = redis::cmd("SET")
            .arg(k)
            .arg(START)
            .query(&mut setup)
            .expect("SET");
    }
}

/// MULTI; DECRBY from; INCRBY to; EXEC.
fn transfer(
    conn: &mut redis::Connection,
    from: &str,
    to: &str,
    amount: i64,
) -> redis::RedisResult<()> {
    let _: Vec<i64> = redis::pipe()
        .atomic()
        .cmd("DECRBY")
        .arg(from)
        .arg(amount)
        .cmd("INCRBY")
        .arg(to)
        .arg(amount)
        .query(conn)?;
    Ok(())
}

/// The three balances read in one transaction (MULTI; GET; GET; GET; EXEC).
fn balances(conn: &mut redis::Connection) -> redis::RedisResult<Vec<i64>> {
    let mut pipe = redis::pipe();
    pipe.atomic();
    for k in ACCOUNTS {
        pipe.cmd("GET").arg(k);
    }
    pipe.query(conn)
}

/// Transfers through every node while readers take atomic snapshots; a node is killed
/// with -9 in the middle (its coordinators die mid-transaction, leaving locks others
/// must resolve) and restarted. Every snapshot sums to the total, and so does the end.
#[test]
fn transfers_keep_the_total_through_a_kill_9() {
    let mut c = Cluster::start(3, &["--cluster-consensus-timeout-ms", "1000"]);
    let urls = urls(&c);
    fund(&urls[0]);
    let stop = Arc::new(AtomicBool::new(false));
    let movers: Vec<_> = (0..3)
        .map(|i| {
            let (url, stop) = (urls[i].clone(), stop.clone());
            std::thread::spawn(move || {
                let (mut ok, mut failed) = (0u32, 0u32);
                let mut conn = connect(&url);
                let mut n = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let from = ACCOUNTS[(i + n) % 3];
                    let to = ACCOUNTS[(i + n + 1) % 3];
                    match transfer(&mut conn, from, to, (n % 7 + 1) as i64) {
                        Ok(()) => ok += 1,
                        Err(e) => {
                            failed += 1;
                            if e.is_connection_dropped() || e.is_io_error() {
                                std::thread::sleep(Duration::from_millis(100));
                                match redis::Client::open(url.as_str()).and_then(|c| {
                                    c.get_connection_with_timeout(Duration::from_secs(2))
                                }) {
                                    Ok(fresh) => conn = fresh,
                                    Err(_) => continue,
                                }
                            }
                        }
                    }
                }
                (ok, failed)
            })
        })
        .collect();
    let readers: Vec<_> = (0..2)
        .map(|i| {
            let (url, stop) = (urls[i].clone(), stop.clone());
            std::thread::spawn(move || {
                let mut conn = connect(&url);
                let mut snapshots = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(b) = balances(&mut conn) {
                        let sum: i64 = b.iter().sum();
                        assert_eq!(sum, 3 * START, "a snapshot saw a half transfer: {b:?}");
                        snapshots += 1;
                    }
                }
                snapshots
            })
        })
        .collect();
    // Let transfers run, kill node 3 with -9 mid-stream, let the others resolve what
    // it left, restart it.
    eventually("transactions commit", Duration::from_secs(30), || {
        cluster_info(&c.nodes[0], "kvd_txn_committed")
            .is_some_and(|n| n.parse::<u64>().unwrap_or(0) >= 15)
    });
    c.nodes[2].kill9();
    eventually(
        "transactions commit without node 3",
        Duration::from_secs(60),
        || {
            cluster_info(&c.nodes[0], "kvd_txn_committed")
                .is_some_and(|n| n.parse::<u64>().unwrap_or(0) >= 40)
        },
    );
    c.nodes[2].restart();
    c.wait_formed();
    eventually(
        "transactions commit after the restart",
        Duration::from_secs(60),
        || {
            cluster_info(&c.nodes[0], "kvd_txn_committed")
                .is_some_and(|n| n.parse::<u64>().unwrap_or(0) >= 55)
        },
    );
    stop.store(true, Ordering::Relaxed);
    let mut committed = 0;
    for m in movers {
        let (ok, failed) = m.join().expect("mover");
        eprintln!("mover: {ok} transfers acknowledged, {failed} failed");
        committed += ok;
    }
    let snapshots: u32 = readers.into_iter().map(|r| r.join().expect("reader")).sum();
    eprintln!("{committed} transfers acknowledged, {snapshots} snapshots");
    assert!(snapshots > 0, "no reader got a snapshot");
    // Every node agrees on the total, whatever locks the dead coordinator left: reading
    // at SERIAL resolves them.
    for url in &urls {
        let mut conn = connect(url);
        let _: () = redis::cmd("CLUSTER")
            .arg("CONSISTENCY")
            .arg("SERIAL")
            .query(&mut conn)
            .expect("SERIAL");
        let mut values = Vec::new();
        eventually(
            &format!("{url} reads every balance at SERIAL"),
            Duration::from_secs(30),
            || {
                let read: redis::RedisResult<Vec<i64>> = ACCOUNTS
                    .iter()
                    .map(|k| redis::cmd("GET").arg(*k).query(&mut conn))
                    .collect();
                match read {
                    Ok(v) => {
                        values = v;
                        true
                    }
                    Err(e) => {
                        eprintln!("{url}: final read failed: {e}");
                        false
                    }
                }
            },
        );
        assert_eq!(values.iter().sum::<i64>(), 3 * START, "{url}: {values:?}");
    }
}

/// INCRs of one account through single-key consensus race with transfers through other
/// nodes: both kinds are ordered on the key, so the total grows by exactly the
/// acknowledged increments (within the unknown ones).
#[test]
fn single_key_writes_and_transactions_are_ordered_on_a_key() {
    let c = Cluster::start(3, &[]);
    let urls = urls(&c);
    fund(&urls[0]);
    let movers: Vec<_> = (0..2)
        .map(|i| {
            let url = urls[i].clone();
            std::thread::spawn(move || {
                let mut conn = connect(&url);
                for n in 0..30usize {
                    let _ = transfer(&mut conn, ACCOUNTS[n % 3], ACCOUNTS[(n + 1 + i) % 3], 3);
                }
            })
        })
        .collect();
    let incr = {
        let url = urls[2].clone();
        std::thread::spawn(move || {
            let mut conn = connect(&url);
            let (mut acked, mut unknown) = (0i64, 0i64);
            for n in 0..60usize {
                let r: redis::RedisResult<i64> =
                    redis::cmd("INCR").arg(ACCOUNTS[n % 3]).query(&mut conn);
                match r {
                    Ok(_) => acked += 1,
                    Err(e) if nothing_written(&e) => {}
                    Err(_) => unknown += 1,
                }
            }
            (acked, unknown)
        })
    };
    for m in movers {
        m.join().expect("mover");
    }
    let (acked, unknown) = incr.join().expect("incr");
    let mut conn = connect(&urls[0]);
    let total: i64 = balances(&mut conn).expect("balances").iter().sum();
    assert!(
        total >= 3 * START + acked && total <= 3 * START + acked + unknown,
        "total {total} after {acked} acknowledged and {unknown} unknown INCRs"
    );
}

/// WATCH through one node sees a write made through another: EXEC returns nil and
/// writes nothing; unchanged, EXEC commits.
#[test]
fn watch_sees_writes_through_other_nodes() {
    let c = Cluster::start(3, &[]);
    let urls = urls(&c);
    let (mut a, mut b) = (connect(&urls[0]), connect(&urls[1]));
    let _: () = redis::cmd("SET")
        .arg("{w}k")
        .arg("1")
        .query(&mut a)
        .expect("SET");
    let _: () = redis::cmd("WATCH")
        .arg("{w}k")
        .query(&mut a)
        .expect("WATCH");
    let _: () = redis::cmd("SET")
        .arg("{w}k")
        .arg("2")
        .query(&mut b)
        .expect("SET via node 2");
    let _: () = redis::cmd("MULTI").query(&mut a).expect("MULTI");
    let _: () = redis::cmd("SET")
        .arg("{w}k")
        .arg("3")
        .query(&mut a)
        .expect("queued");
    let _: () = redis::cmd("SET")
        .arg("{w}other")
        .arg("x")
        .query(&mut a)
        .expect("queued");
    let exec: redis::Value = redis::cmd("EXEC").query(&mut a).expect("EXEC");
    assert_eq!(exec, redis::Value::Nil, "EXEC after a watched key changed");
    let k: String = redis::cmd("GET").arg("{w}k").query(&mut b).expect("GET");
    assert_eq!(k, "2");
    let other: Option<String> = redis::cmd("GET")
        .arg("{w}other")
        .query(&mut b)
        .expect("GET");
    assert_eq!(other, None, "an aborted transaction wrote");

    let _: () = redis::cmd("WATCH")
        .arg("{w}k")
        .query(&mut a)
        .expect("WATCH");
    let _: () = redis::cmd("MULTI").query(&mut a).expect("MULTI");
    let _: () = redis::cmd("INCR")
        .arg("{w}k")
        .query(&mut a)
        .expect("queued");
    let _: () = redis::cmd("GET").arg("{w}k").query(&mut a).expect("queued");
    let exec: (i64, String) = redis::cmd("EXEC").query(&mut a).expect("EXEC");
    assert_eq!(exec, (3, "3".to_string()));
    let k: String = redis::cmd("GET").arg("{w}k").query(&mut b).expect("GET");
    assert_eq!(k, "3");
}

/// Commands over several keys of one slot run atomically; keys of different slots get
/// Redis Cluster's CROSSSLOT, in a command and across a MULTI.
#[test]
fn multi_key_commands_in_one_slot_and_crossslot_elsewhere() {
    let c = Cluster::start(3, &[]);
    let urls = urls(&c);
    let (mut a, mut b) = (connect(&urls[0]), connect(&urls[1]));
    let set: i64 = redis::cmd("MSETNX")
        .arg("{m}x")
        .arg("1")
        .arg("{m}y")
        .arg("2")
        .query(&mut a)
        .expect("MSETNX");
    assert_eq!(set, 1);
    let set: i64 = redis::cmd("MSETNX")
        .arg("{m}x")
        .arg("9")
        .arg("{m}z")
        .arg("9")
        .query(&mut b)
        .expect("MSETNX");
    assert_eq!(set, 0, "MSETNX over an existing key");
    let z: Option<String> = redis::cmd("GET").arg("{m}z").query(&mut a).expect("GET");
    assert_eq!(z, None, "MSETNX wrote part of its keys");

    let _: () = redis::cmd("RENAME")
        .arg("{m}x")
        .arg("{m}renamed")
        .query(&mut b)
        .expect("RENAME");
    let old: Option<String> = redis::cmd("GET").arg("{m}x").query(&mut a).expect("GET");
    let new: Option<String> = redis::cmd("GET")
        .arg("{m}renamed")
        .query(&mut a)
        .expect("GET");
    assert_eq!((old, new), (None, Some("1".to_string())));
    let copied: i64 = redis::cmd("COPY")
        .arg("{m}y")
        .arg("{m}copy")
        .query(&mut a)
        .expect("COPY");
    assert_eq!(copied, 1);
    let copy: String = redis::cmd("GET").arg("{m}copy").query(&mut b).expect("GET");
    assert_eq!(copy, "2");

    let e = redis::cmd("RENAME")
        .arg("alpha")
        .arg("beta")
        .query::<()>(&mut a)
        .expect_err("RENAME across slots");
    assert_eq!(e.code(), Some("CROSSSLOT"), "{e}");
    let _: () = redis::cmd("MULTI").query(&mut a).expect("MULTI");
    let _: () = redis::cmd("SET")
        .arg("alpha")
        .arg("1")
        .query(&mut a)
        .expect("queued");
    let _: () = redis::cmd("SET")
        .arg("beta")
        .arg("1")
        .query(&mut a)
        .expect("queued");
    let e = redis::cmd("EXEC")
        .query::<()>(&mut a)
        .expect_err("EXEC across slots");
    assert_eq!(e.code(), Some("CROSSSLOT"), "{e}");
    let alpha: Option<String> = redis::cmd("GET").arg("alpha").query(&mut b).expect("GET");
    assert_eq!(alpha, None, "a refused EXEC wrote");
}

/// A script that declares several keys of one slot runs as one transaction.
#[test]
fn a_script_over_several_keys_is_atomic() {
    let c = Cluster::start(3, &[]);
    let urls = urls(&c);
    let mut a = connect(&urls[0]);
    let _: () = redis::cmd("SET")
        .arg("{s}from")
        .arg("10")
        .query(&mut a)
        .expect("SET");
    let script = "local v = tonumber(redis.call('GET', KEYS[1])) \
                  redis.call('SET', KEYS[1], v - ARGV[1]) \
                  return redis.call('INCRBY', KEYS[2], ARGV[1])";
    let threads: Vec<_> = (0..3)
        .map(|i| {
            let url = urls[i].clone();
            std::thread::spawn(move || {
                let mut conn = connect(&url);
                let mut acked = 0;
                for _ in 0..5 {
                    let r: redis::RedisResult<i64> = redis::cmd("EVAL")
                        .arg(script)
                        .arg(2)
                        .arg("{s}from")
                        .arg("{s}to")
                        .arg(1)
                        .query(&mut conn);
                    match r {
                        Ok(_) => acked += 1,
                        Err(e) => eprintln!("script failed: {e}"),
                    }
                }
                acked
            })
        })
        .collect();
    let acked: i64 = threads
        .into_iter()
        .map(|t| t.join().expect("script client"))
        .sum();
    let mut b = connect(&urls[1]);
    let from: i64 = redis::cmd("GET").arg("{s}from").query(&mut b).expect("GET");
    let to: i64 = redis::cmd("GET").arg("{s}to").query(&mut b).expect("GET");
    assert_eq!(
        from + to,
        10,
        "the script moved part of a unit: from {from}, to {to}"
    );
    assert!(to >= acked, "{acked} scripts acknowledged, to is {to}");
    let e = redis::cmd("EVAL")
        .arg("return 1")
        .arg(2)
        .arg("alpha")
        .arg("beta")
        .query::<i64>(&mut b)
        .expect_err("script across slots");
    assert_eq!(e.code(), Some("CROSSSLOT"), "{e}");
}

//! Every write of a key in a linearizable database runs through single-key consensus
//! (docs/consistency.md), so plain reads and writes of one key by many concurrent
//! writers stay linearizable, with real processes and faults: clients through all three
//! nodes GET (at SERIAL), SET and DEL a few keys, any
//! client writing any key, while one node is killed with SIGKILL and restarted and
//! another is paused with SIGSTOP; the history every client saw must have a legal
//! sequential order per key (kv-checker, itself tested on known-bad histories).
//!
//! Why this holds: a write is acknowledged once a majority accepted it in a consensus
//! round, and every later round's majority of promises meets it, so it is never ordered
//! before a write acknowledged earlier; a SERIAL read is a consensus round that first
//! makes the value it returns chosen, so no later round discards it.
//!
//! Reads at QUORUM are not in this history: they are not linearizable with respect to a
//! round in progress (docs/consistency.md, "Reads"). This test once ran half its clients
//! at QUORUM and caught exactly that: a QUORUM read returned a value only a minority had
//! accepted (its write's outcome unknown), and a later read returned the older value
//! again, restated by a round that had prepared without it.
//!
//! Before consensus (last-writer-wins with a retry on a stale version) this test failed
//! with concurrent writers of one key: a write refused as stale by one replica was
//! retried with a newer version, and if its first attempt was already visible on another
//! replica, a reader could see it, then a concurrent write, then it again.

use kv_checker::register::{Input, Output, Register};
use kv_checker::{check_per_key, Operation, Outcome};
use kv_tests::cluster::{cluster_info, Cluster};
use kv_tests::eventually;
use kv_tests::history_outcome::{outcome_of_error, spoils_connection};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const KEYS: u64 = 3;
/// Every client reads and writes every key.
const CLIENTS: u64 = 6;

type Op = Operation<Input<u64>, Output<u64>>;

struct Shared {
    start: Instant,
    done_ops: AtomicU64,
    stop: AtomicBool,
    history: Mutex<Vec<(u64, Op)>>,
}

impl Shared {
    fn now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }
}

fn client(id: u64, urls: Vec<String>, shared: Arc<Shared>) {
    let mut rng_state = id.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        // xorshift: the workload needs variety, not quality.
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        rng_state
    };
    let mut node = id as usize % urls.len();
    let mut conn: Option<redis::Connection> = None;
    let mut seq = 0;
    while !shared.stop.load(Ordering::Relaxed) {
        if conn.is_none() {
            conn = redis::Client::open(urls[node].as_str())
                .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(2)))
                .ok();
            if let Some(c) = &conn {
                let _ = c.set_read_timeout(Some(Duration::from_secs(3)));
            }
            // Every client reads at SERIAL (through consensus): QUORUM reads are not
            // linearizable against rounds in progress (module comment).
            {
                let serial = conn.as_mut().map(|c| {
                    redis::cmd("CLUSTER")
                        .arg("CONSISTENCY")
                        .arg("SERIAL")
                        .query::<()>(c)
                });
                if !matches!(serial, Some(Ok(()))) {
                    conn = None;
                }
            }
        }
        let Some(c) = conn.as_mut() else {
            node = (node + 1) % urls.len();
            std::thread::yield_now();
            continue;
        };
        let key = next() % KEYS;
        let name = format!("lin{key}");
        seq += 1;
        let value = id * 1_000_000 + seq;
        let roll = next() % 10;
        let invoked = shared.now();
        let (input, result) = if roll < 5 {
            let r: redis::RedisResult<Option<u64>> = redis::cmd("GET").arg(&name).query(c);
            (Input::Read, r.map(Output::Value))
        } else if roll < 9 {
            let r: redis::RedisResult<()> = redis::cmd("SET").arg(&name).arg(value).query(c);
            (Input::Write(value), r.map(|()| Output::Done))
        } else {
            let r: redis::RedisResult<i64> = redis::cmd("DEL").arg(&name).query(c);
            (Input::Delete, r.map(|_| Output::Done))
        };
        let returned = shared.now();
        let outcome = match result {
            Ok(out) => Outcome::Ok(out),
            Err(e) => {
                let cannot_coordinate = e.code() == Some("TRYAGAIN");
                if spoils_connection(&e) || cannot_coordinate {
                    // The connection is no good any more, or its node cannot coordinate
                    // for now (its clock resumed ahead after the kill -9): try the next
                    // node, as a client library that knows several nodes would.
                    conn = None;
                    node = (node + 1) % urls.len();
                }
                outcome_of_error(&e)
            }
        };
        shared.history.lock().unwrap().push((
            key,
            Operation {
                client: id,
                invoked,
                returned,
                input,
                outcome,
            },
        ));
        shared.done_ops.fetch_add(1, Ordering::Relaxed);
    }
}

/// Waits until clients completed `n` more operations (progress, not time, paces the
/// faults).
fn after_ops(shared: &Shared, n: u64) {
    let target = shared.done_ops.load(Ordering::Relaxed) + n;
    eventually(
        &format!("clients complete {n} more operations"),
        Duration::from_secs(120),
        || shared.done_ops.load(Ordering::Relaxed) >= target,
    );
}

fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) on our own child's pid with a valid signal number.
    unsafe {
        libc::kill(pid as i32, sig);
    }
}

#[test]
fn concurrent_writers_stay_linearizable_through_kill_9_and_pauses() {
    let mut c = Cluster::start(
        3,
        &[
            "--cluster-anti-entropy-interval-ms",
            "1000",
            "--cluster-request-timeout-ms",
            "1000",
            // Below the clients' read timeout: a contended command ends with the server's
            // answer, not a client-side timeout.
            "--cluster-consensus-timeout-ms",
            "2000",
        ],
    );
    let urls: Vec<String> = c.nodes.iter().map(|n| n.url(false)).collect();
    let shared = Arc::new(Shared {
        start: Instant::now(),
        done_ops: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        history: Mutex::new(Vec::new()),
    });
    let clients: Vec<_> = (0..CLIENTS)
        .map(|id| {
            let (urls, shared) = (urls.clone(), shared.clone());
            std::thread::spawn(move || client(id, urls, shared))
        })
        .collect();

    after_ops(&shared, 300);
    c.nodes[2].kill9();
    after_ops(&shared, 1000);
    c.nodes[2].restart();
    eventually(
        "the restarted node rejoins",
        Duration::from_secs(60),
        || cluster_info(&c.nodes[2], "cluster_state").as_deref() == Some("ok"),
    );
    // After the kill -9 it catches up before its reads count; with another node paused
    // meanwhile, quorum reads of its partitions would wait out their timeouts (as
    // docs/cluster.md says), and the pause below would last minutes in operations.
    eventually(
        "the restarted node catches up",
        Duration::from_secs(60),
        || cluster_info(&c.nodes[2], "kvd_catching_up").as_deref() == Some("0"),
    );
    after_ops(&shared, 300);
    let paused = c.nodes[1].pid();
    signal(paused, libc::SIGSTOP);
    // Long enough that requests time out against the paused node and the others mark it
    // suspect.
    after_ops(&shared, 1500);
    signal(paused, libc::SIGCONT);
    after_ops(&shared, 500);

    shared.stop.store(true, Ordering::Relaxed);
    for t in clients {
        t.join().unwrap();
    }
    let history = std::mem::take(&mut *shared.history.lock().unwrap());
    let total = history.len();
    let acknowledged = history
        .iter()
        .filter(|(_, op)| matches!(op.outcome, Outcome::Ok(_)))
        .count();
    let unknown = history
        .iter()
        .filter(|(_, op)| matches!(op.outcome, Outcome::Unknown))
        .count();
    eprintln!("{total} operations: {acknowledged} acknowledged, {unknown} unknown");
    // A run where (nearly) nothing succeeded would prove nothing.

    assert!(
        acknowledged * 2 > total,
        "only {acknowledged} of {total} operations succeeded"
    );
    let kept = history.clone();
    let bad = check_per_key(&Register::new(), history);
    if !bad.is_empty() {
        // Keep the history for whoever debugs it.
        let path =
            std::env::temp_dir().join(format!("kvd-linearizable-{}.txt", std::process::id()));
        let text: String = kept.iter().map(|(k, op)| format!("{k} {op:?}\n")).collect();
        let _ = std::fs::write(&path, text);
        panic!(
            "not linearizable: {bad:?}\nhistory kept in {}\nnode 0 log:\n{}",
            path.display(),
            c.nodes[0].log_text()
        );
    }
}

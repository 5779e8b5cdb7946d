//! The workload of the real-process linearizability tests (docs/history-checker.md):
//! clients through the cluster's nodes GET at SERIAL, SET and DEL a few keys, any client
//! any key, and record every call with its invocation and return times; the history must
//! have a legal sequential order per key (kv-checker's `Register`).
//!
//! Reads are at SERIAL because QUORUM reads are not linearizable against consensus
//! rounds in progress (docs/consistency.md, "Reads"); tests/tests/cluster_linearizable.rs
//! says how that was found.
//!
//! The nodes a client may use can change while it runs ([`Workload::set_urls`]): a node
//! that joins is added, one that leaves is dropped, and a client whose node was dropped
//! moves on to one still listed.

use crate::eventually;
use crate::history_outcome::{node_was_removed, outcome_of_error, spoils_connection};
use kv_checker::register::{Input, Output, Register};
use kv_checker::{check_per_key, Operation, Outcome};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One call of the history: a register's read, write or delete.
pub type Op = Operation<Input<u64>, Output<u64>>;

/// How long [`Workload::after_ops`] waits for the clients' progress.
const PROGRESS_TIMEOUT: Duration = Duration::from_secs(120);

/// What the clients share with the test.
struct Shared {
    start: Instant,
    keys: Vec<String>,
    urls: Mutex<Vec<String>>,
    done_ops: AtomicU64,
    stop: AtomicBool,
    history: Mutex<Vec<(String, Op)>>,
}

impl Shared {
    fn now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    fn listed(&self, url: &str) -> bool {
        self.urls.lock().unwrap().iter().any(|u| u == url)
    }

    /// The `n`th listed url (modulo how many there are now).
    fn url(&self, n: usize) -> String {
        let urls = self.urls.lock().unwrap();
        urls[n % urls.len()].clone()
    }
}

/// Clients running the workload until [`Workload::check`] stops them.
pub struct Workload {
    shared: Arc<Shared>,
    clients: Vec<JoinHandle<()>>,
}

impl Workload {
    /// Starts `clients` clients, spread over `urls`, each reading and writing every one
    /// of `keys`.
    pub fn start(urls: Vec<String>, keys: Vec<String>, clients: u64) -> Workload {
        assert!(!urls.is_empty() && !keys.is_empty());
        let shared = Arc::new(Shared {
            start: Instant::now(),
            keys,
            urls: Mutex::new(urls),
            done_ops: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            history: Mutex::new(Vec::new()),
        });
        let clients = (0..clients)
            .map(|id| {
                let shared = shared.clone();
                std::thread::spawn(move || client(id, &shared))
            })
            .collect();
        Workload { shared, clients }
    }

    /// The nodes clients use from now on; a client on a node not in `urls` moves to one
    /// that is before its next call.
    pub fn set_urls(&self, urls: Vec<String>) {
        assert!(!urls.is_empty());
        *self.shared.urls.lock().unwrap() = urls;
    }

    /// Waits until clients completed `n` more operations (progress, not time, paces the
    /// faults and changes).
    pub fn after_ops(&self, n: u64) {
        let done = &self.shared.done_ops;
        let target = done.load(Ordering::Relaxed) + n;
        eventually(
            &format!("clients complete {n} more operations"),
            PROGRESS_TIMEOUT,
            || done.load(Ordering::Relaxed) >= target,
        );
    }

    /// Stops the clients and checks their history: more than half the calls were
    /// acknowledged (a run where nearly nothing succeeded would prove nothing) and every
    /// key's calls are linearizable. On a violation the history is kept in a temporary
    /// file and the panic shows it with `context()` (a server log, say).
    pub fn check(self, context: impl FnOnce() -> String) {
        self.shared.stop.store(true, Ordering::Relaxed);
        for t in self.clients {
            t.join().unwrap();
        }
        let history = std::mem::take(&mut *self.shared.history.lock().unwrap());
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
                "not linearizable: {bad:?}\nhistory kept in {}\n{}",
                path.display(),
                context()
            );
        }
    }
}

/// One client: random calls on random keys through one node at a time, at SERIAL,
/// until stopped.
fn client(id: u64, shared: &Shared) {
    let mut rng_state = id.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        // xorshift: the workload needs variety, not quality.
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        rng_state
    };
    let mut node = id as usize;
    let mut conn: Option<(String, redis::Connection)> = None;
    let mut seq = 0;
    while !shared.stop.load(Ordering::Relaxed) {
        if conn.as_ref().is_some_and(|(url, _)| !shared.listed(url)) {
            conn = None;
        }
        if conn.is_none() {
            let url = shared.url(node);
            conn = serial_connection(&url).map(|c| (url, c));
        }
        let Some((_, c)) = conn.as_mut() else {
            node += 1;
            std::thread::yield_now();
            continue;
        };
        let key = &shared.keys[(next() % shared.keys.len() as u64) as usize];
        seq += 1;
        let value = id * 1_000_000 + seq;
        let roll = next() % 10;
        let invoked = shared.now();
        let (input, result) = if roll < 5 {
            let r: redis::RedisResult<Option<u64>> = redis::cmd("GET").arg(key).query(c);
            (Input::Read, r.map(Output::Value))
        } else if roll < 9 {
            let r: redis::RedisResult<()> = redis::cmd("SET").arg(key).arg(value).query(c);
            (Input::Write(value), r.map(|()| Output::Done))
        } else {
            let r: redis::RedisResult<i64> = redis::cmd("DEL").arg(key).query(c);
            (Input::Delete, r.map(|_| Output::Done))
        };
        let returned = shared.now();
        let outcome = match result {
            Ok(out) => Outcome::Ok(out),
            Err(e) => {
                let cannot_coordinate = e.code() == Some("TRYAGAIN") || node_was_removed(&e);
                if spoils_connection(&e) || cannot_coordinate {
                    // The connection is no good any more, or its node cannot coordinate
                    // for now (its clock resumed ahead after a kill -9) or ever (it left
                    // the cluster): try the next node, as a client library that knows
                    // several nodes would.
                    conn = None;
                    node += 1;
                }
                outcome_of_error(&e)
            }
        };
        shared.history.lock().unwrap().push((
            key.clone(),
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

/// A connection to `url` that reads at SERIAL (through consensus), or `None` if the node
/// does not answer.
fn serial_connection(url: &str) -> Option<redis::Connection> {
    let mut c = redis::Client::open(url)
        .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(2)))
        .ok()?;
    // Above the servers' consensus timeout (2 s in these tests), so a contended command
    // ends with the server's answer, not a client-side timeout.
    c.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    redis::cmd("CLUSTER")
        .arg("CONSISTENCY")
        .arg("SERIAL")
        .query::<()>(&mut c)
        .ok()?;
    Some(c)
}

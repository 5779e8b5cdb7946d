//! The workload of the rolling restart and rolling upgrade tests
//! (tests/tests/cluster_rolling_restart.rs, cluster_mixed_upgrade.rs; docs/operations.md
//! "Rolling restart and rolling upgrade"): clients writing (INCR and SET, both through
//! consensus in the default linearizable database, and SET in an eventual database if
//! the cluster has one) and reading continuously through every node while the test
//! restarts nodes; what they saw, checked afterwards through every node.

use crate::cluster::{cluster_info, nothing_written, Cluster};
use crate::eventually;
use redis::Commands;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Clients of the workload.
pub const CLIENTS: usize = 3;
/// How long a restarted node gets to rejoin, and the clients to make progress.
pub const REJOIN_TIMEOUT: Duration = Duration::from_secs(90);

/// What the clients and the test share: the nodes' URLs (a restarted node may come
/// back on another port), the stop and pause flags and the count of acknowledged
/// operations.
struct Shared {
    urls: RwLock<Vec<String>>,
    stop: AtomicBool,
    pause: AtomicBool,
    /// Clients that saw `pause` and send nothing until it is cleared.
    paused: AtomicUsize,
    acked: AtomicU64,
    /// The eventual database the clients also SET keys in, if any.
    eventual_db: Option<u32>,
}

/// What one client saw.
#[derive(Default)]
pub struct ClientLog {
    /// (key, value) of every acknowledged SET in database 0 (each key is written once).
    pub sets: Vec<(String, String)>,
    /// (key, value) of every acknowledged SET in the eventual database.
    pub eventual_sets: Vec<(String, String)>,
    /// The values acknowledged INCRs of this client's counter returned.
    pub increments: Vec<i64>,
    /// INCRs whose outcome is unknown (an error that does not say nothing was written).
    pub unknown_increments: usize,
    /// Reads of an acknowledged SET that answered something else.
    pub wrong_reads: Vec<String>,
    /// Operations that failed.
    pub errors: u64,
    /// The longest time from a first error to the next success.
    pub longest_error_stretch: Duration,
}

/// The counter client `client` increments.
pub fn counter(client: usize) -> String {
    format!("rolling:counter:{client}")
}

/// One connection per node, made on first use and dropped after an error (the node
/// may have restarted).
struct Connections(Vec<Option<redis::Connection>>);

impl Connections {
    fn get(&mut self, node: usize, url: &str) -> redis::RedisResult<&mut redis::Connection> {
        if self.0[node].is_none() {
            let c =
                redis::Client::open(url)?.get_connection_with_timeout(Duration::from_secs(2))?;
            c.set_read_timeout(Some(Duration::from_secs(15)))?;
            self.0[node] = Some(c);
        }
        Ok(self.0[node].as_mut().expect("just connected"))
    }
}

/// The clients running against a cluster.
pub struct RollingClients {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<ClientLog>>,
}

impl RollingClients {
    /// Starts [`CLIENTS`] clients on `c`'s nodes; with `eventual_db`, each step also SETs
    /// a new key in that (eventual) database.
    pub fn start(c: &Cluster, eventual_db: Option<u32>) -> RollingClients {
        let shared = Arc::new(Shared {
            urls: RwLock::new(c.nodes.iter().map(|n| n.url(false)).collect()),
            stop: AtomicBool::new(false),
            pause: AtomicBool::new(false),
            paused: AtomicUsize::new(0),
            acked: AtomicU64::new(0),
            eventual_db,
        });
        let threads = (0..CLIENTS)
            .map(|id| {
                let shared = shared.clone();
                std::thread::spawn(move || run_client(id, shared))
            })
            .collect();
        RollingClients { shared, threads }
    }

    /// Waits until the clients acknowledged `more` operations beyond now.
    pub fn progress(&self, more: u64, what: &str) {
        let from = self.shared.acked.load(Ordering::Relaxed);
        eventually(what, REJOIN_TIMEOUT, || {
            self.shared.acked.load(Ordering::Relaxed) >= from + more
        });
    }

    /// Points the clients at node `i`'s URL again (a restart may change its port).
    pub fn node_moved(&self, c: &Cluster, i: usize) {
        self.shared.urls.write().expect("urls")[i] = c.nodes[i].url(false);
    }

    /// Stops the clients between two operations and waits until all have.
    pub fn pause(&self) {
        self.shared.pause.store(true, Ordering::Relaxed);
        eventually("clients paused", REJOIN_TIMEOUT, || {
            self.shared.paused.load(Ordering::Relaxed) == CLIENTS
        });
    }

    /// Lets paused clients go on.
    pub fn resume(&self) {
        self.shared.pause.store(false, Ordering::Relaxed);
    }

    /// Stops the clients and returns what each saw.
    pub fn finish(self) -> Vec<ClientLog> {
        self.shared.pause.store(false, Ordering::Relaxed);
        self.shared.stop.store(true, Ordering::Relaxed);
        self.threads
            .into_iter()
            .map(|t| t.join().expect("client thread"))
            .collect()
    }
}

/// Runs one client until told to stop: each step SETs a new key, INCRs the client's
/// counter, reads back an acknowledged key and (with an eventual database) SETs a key
/// there, each through the next node in turn.
fn run_client(id: usize, shared: Arc<Shared>) -> ClientLog {
    let mut log = ClientLog::default();
    let nodes = shared.urls.read().expect("urls").len();
    let mut conns = Connections((0..nodes).map(|_| None).collect());
    let mut eventual_conns = Connections((0..nodes).map(|_| None).collect());
    let ops = if shared.eventual_db.is_some() { 4 } else { 3 };
    let mut turn = id;
    let mut failing_since: Option<Instant> = None;
    let mut step = 0u64;
    let mut paused = false;
    while !shared.stop.load(Ordering::Relaxed) {
        if shared.pause.load(Ordering::Relaxed) {
            if !paused {
                paused = true;
                shared.paused.fetch_add(1, Ordering::Relaxed);
            }
            // Idle while the test looks at a quiet cluster; not a synchronization.
            std::thread::sleep(Duration::from_millis(5));
            continue;
        }
        if paused {
            paused = false;
            shared.paused.fetch_sub(1, Ordering::Relaxed);
        }
        step += 1;
        turn += 1;
        for op in 0..ops {
            // Each kind of operation goes through every node in turn.
            let node = (turn + op) % nodes;
            let url = shared.urls.read().expect("urls")[node].clone();
            let result = match op {
                3 => {
                    let db = shared.eventual_db.unwrap_or_default();
                    let (k, v) = (format!("rolling:eventual:{id}:{step}"), format!("e{step}"));
                    eventual_conns
                        .get(node, &format!("{url}{db}"))
                        .and_then(|conn| conn.set::<_, _, ()>(&k, &v))
                        .map(|()| log.eventual_sets.push((k, v)))
                }
                _ => conns
                    .get(node, &url)
                    .and_then(|conn| linearizable_op(id, step, op, conn, &url, &mut log)),
            };
            match result {
                Ok(()) => {
                    shared.acked.fetch_add(1, Ordering::Relaxed);
                    if let Some(since) = failing_since.take() {
                        log.longest_error_stretch = log.longest_error_stretch.max(since.elapsed());
                    }
                }
                Err(_) => {
                    log.errors += 1;
                    conns.0[node] = None;
                    eventual_conns.0[node] = None;
                    failing_since.get_or_insert_with(Instant::now);
                }
            }
        }
    }
    if let Some(since) = failing_since {
        log.longest_error_stretch = log.longest_error_stretch.max(since.elapsed());
    }
    log
}

/// Operation `op` (0 SET, 1 INCR, 2 GET of the last acknowledged SET) of step `step` in
/// database 0, recorded in `log`.
fn linearizable_op(
    id: usize,
    step: u64,
    op: usize,
    conn: &mut redis::Connection,
    url: &str,
    log: &mut ClientLog,
) -> redis::RedisResult<()> {
    match op {
        0 => {
            let (k, v) = (format!("rolling:{id}:{step}"), format!("v{step}"));
            conn.set::<_, _, ()>(&k, &v)?;
            log.sets.push((k, v));
            Ok(())
        }
        1 => match conn.incr::<_, _, i64>(counter(id), 1) {
            Ok(v) => {
                log.increments.push(v);
                Ok(())
            }
            Err(e) => {
                if !nothing_written(&e) {
                    log.unknown_increments += 1;
                    if log.unknown_increments <= 3 {
                        eprintln!("client {id}: INCR of unknown outcome: {e}");
                    }
                }
                Err(e)
            }
        },
        _ => {
            let Some((k, v)) = log.sets.last().cloned() else {
                return Ok(());
            };
            let got: Option<String> = conn.get(&k)?;
            if got.as_deref() != Some(v.as_str()) {
                log.wrong_reads
                    .push(format!("{k} read {got:?} through {url}"));
            }
            Ok(())
        }
    }
}

/// Waits until node `i` serves again and every node sees all of them up.
pub fn rejoined(c: &Cluster, i: usize) {
    let all = c.nodes.len().to_string();
    eventually(&format!("node {i} rejoined"), REJOIN_TIMEOUT, || {
        cluster_info(&c.nodes[i], "kvd_catching_up").as_deref() == Some("0")
                // After kill -9 the clock resumes ahead of the wall clock (its floor is
                // persisted ahead) and the node coordinates no writes until it caught up.
                && cluster_info(&c.nodes[i], "kvd_clock_state").as_deref() == Some("ok")
                && c.nodes.iter().all(|n| {
                    cluster_info(n, "cluster_state").as_deref() == Some("ok")
                        && cluster_info(n, "kvd_nodes_up").as_deref() == Some(all.as_str())
                })
    });
}

/// Checks what the clients saw through every node of `c`: no wrong read, every
/// acknowledged SET (and eventual SET, in `eventual_db`) reads back, and every counter
/// counts each acknowledged INCR once and at most the unknown ones besides.
pub fn assert_every_write_survived(c: &Cluster, logs: &[ClientLog], eventual_db: Option<u32>) {
    let mut conns: Vec<redis::Connection> = c.nodes.iter().map(|n| n.client()).collect();
    for (id, log) in logs.iter().enumerate() {
        assert!(
            log.wrong_reads.is_empty(),
            "client {id}: {:?}",
            log.wrong_reads
        );
        assert!(!log.sets.is_empty() && !log.increments.is_empty());
        assert_reads_back(&mut conns, 0, &log.sets, &format!("client {id}'s keys"));
        if let Some(db) = eventual_db {
            assert!(
                !log.eventual_sets.is_empty(),
                "client {id}: no eventual SET"
            );
            assert_reads_back(
                &mut conns,
                db,
                &log.eventual_sets,
                &format!("client {id}'s keys in database {db}"),
            );
        }
        // The counter: every acknowledged INCR got its own value, and the final value
        // counts each acknowledged one and at most the unknown ones besides.
        let distinct: HashSet<i64> = log.increments.iter().copied().collect();
        assert_eq!(
            distinct.len(),
            log.increments.len(),
            "client {id}: an INCR value twice"
        );
        let acked = log.increments.len();
        for (n, conn) in conns.iter_mut().enumerate() {
            let total: i64 = conn.get(counter(id)).expect("GET counter");
            let total = total as usize;
            assert!(
                total >= acked && total <= acked + log.unknown_increments,
                "client {id}'s counter is {total} through node {n} after {acked} acknowledged and {} unknown INCRs",
                log.unknown_increments
            );
        }
    }
}

/// MGETs `pairs` (key, value) in database `db` through every connection, in batches,
/// and compares; leaves the connections in database 0.
pub fn assert_reads_back(
    conns: &mut [redis::Connection],
    db: u32,
    pairs: &[(String, String)],
    what: &str,
) {
    for conn in conns.iter_mut() {
        redis::cmd("SELECT")
            .arg(db)
            .query::<()>(conn)
            .expect("SELECT");
    }
    for chunk in pairs.chunks(200) {
        let keys: Vec<&str> = chunk.iter().map(|(k, _)| k.as_str()).collect();
        let want: Vec<Option<String>> = chunk.iter().map(|(_, v)| Some(v.clone())).collect();
        for (n, conn) in conns.iter_mut().enumerate() {
            let got: Vec<Option<String>> = redis::cmd("MGET").arg(&keys).query(conn).expect("MGET");
            assert_eq!(got, want, "{what} through node {n}");
        }
    }
    for conn in conns.iter_mut() {
        redis::cmd("SELECT")
            .arg(0)
            .query::<()>(conn)
            .expect("SELECT");
    }
}

/// Prints each client's counts and the longest stretch in which a client saw only
/// errors (a measurement, not a bound), each line starting with `label`.
pub fn report(label: &str, logs: &[ClientLog]) {
    for (id, log) in logs.iter().enumerate() {
        eprintln!(
            "{label}: client {id}: {} SETs, {} eventual SETs and {} INCRs acknowledged, {} unknown INCRs, {} errors, longest error stretch {:?}",
            log.sets.len(),
            log.eventual_sets.len(),
            log.increments.len(),
            log.unknown_increments,
            log.errors,
            log.longest_error_stretch
        );
    }
    let longest = logs
        .iter()
        .map(|l| l.longest_error_stretch)
        .max()
        .unwrap_or_default();
    eprintln!("{label}: longest interval in which a client saw only errors: {longest:?}");
}

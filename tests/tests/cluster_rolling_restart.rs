//! Rolling restart (docs/operations.md, "Rolling upgrade"), with real processes: three
//! nodes, clients writing (INCR and SET, both through consensus in the default
//! linearizable database) and reading continuously through every node, while each node
//! in turn stops with SIGTERM and starts again on its directory, and then one is killed
//! with kill -9 and restarted. Each restart waits for the node to rejoin (CLUSTER INFO).
//! Afterwards every acknowledged SET reads back through every node, and every counter
//! holds at least its acknowledged increments and at most those plus the ones of unknown
//! outcome. The longest stretch in which a client saw only errors is printed: a
//! measurement, not a bound.

use kv_tests::cluster::{cluster_info, nothing_written, Cluster};
use kv_tests::eventually;
use redis::Commands;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

const CLIENTS: usize = 3;
const REJOIN_TIMEOUT: Duration = Duration::from_secs(90);

/// What the clients and the test share: the nodes' URLs (a restarted node may come
/// back on another port), the stop flag and the count of acknowledged operations.
struct Shared {
    urls: RwLock<Vec<String>>,
    stop: AtomicBool,
    acked: AtomicU64,
}

/// What one client saw.
#[derive(Default)]
struct ClientLog {
    /// (key, value) of every acknowledged SET (each key is written once).
    sets: Vec<(String, String)>,
    /// The values acknowledged INCRs of this client's counter returned.
    increments: Vec<i64>,
    /// INCRs whose outcome is unknown (an error that does not say nothing was written).
    unknown_increments: usize,
    /// Reads of an acknowledged SET that answered something else.
    wrong_reads: Vec<String>,
    errors: u64,
    /// The longest time from a first error to the next success.
    longest_error_stretch: Duration,
}

fn counter(client: usize) -> String {
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

/// Runs one client until told to stop: each step SETs a new key, INCRs the client's
/// counter and reads back an acknowledged key, each through the next node in turn.
fn run_client(id: usize, shared: Arc<Shared>) -> ClientLog {
    let mut log = ClientLog::default();
    let mut conns = Connections((0..3).map(|_| None).collect());
    let mut turn = id;
    let mut failing_since: Option<Instant> = None;
    let mut step = 0u64;
    while !shared.stop.load(Ordering::Relaxed) {
        step += 1;
        turn += 1;
        for op in 0..3 {
            // Each kind of operation goes through every node in turn.
            let node = (turn + op) % 3;
            let url = shared.urls.read().expect("urls")[node].clone();
            let result = conns.get(node, &url).and_then(|conn| match op {
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
            });
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

/// Waits until the clients acknowledged `more` operations beyond now: the cluster
/// serves while a node is down or just back.
fn clients_progress(shared: &Shared, more: u64, what: &str) {
    let from = shared.acked.load(Ordering::Relaxed);
    eventually(what, REJOIN_TIMEOUT, || {
        shared.acked.load(Ordering::Relaxed) >= from + more
    });
}

/// Waits until node `i` serves again and every node sees all three up.
fn rejoined(c: &Cluster, i: usize) {
    eventually(&format!("node {i} rejoined"), REJOIN_TIMEOUT, || {
        cluster_info(&c.nodes[i], "kvd_catching_up").as_deref() == Some("0")
                // After kill -9 the clock resumes ahead of the wall clock (its floor is
                // persisted ahead) and the node coordinates no writes until it caught up.
                && cluster_info(&c.nodes[i], "kvd_clock_state").as_deref() == Some("ok")
                && c.nodes.iter().all(|n| {
                    cluster_info(n, "cluster_state").as_deref() == Some("ok")
                        && cluster_info(n, "kvd_nodes_up").as_deref() == Some("3")
                })
    });
}

#[test]
fn every_acknowledged_write_survives_a_rolling_restart_of_every_node() {
    let mut c = Cluster::start(3, &[]);
    let shared = Arc::new(Shared {
        urls: RwLock::new(c.nodes.iter().map(|n| n.url(false)).collect()),
        stop: AtomicBool::new(false),
        acked: AtomicU64::new(0),
    });
    let clients: Vec<_> = (0..CLIENTS)
        .map(|id| {
            let shared = shared.clone();
            std::thread::spawn(move || run_client(id, shared))
        })
        .collect();
    clients_progress(&shared, 50, "clients running");

    // SIGTERM each node in turn, then kill -9 one: clients keep going throughout.
    let steps: [(usize, bool); 4] = [(0, false), (1, false), (2, false), (1, true)];
    for (i, kill9) in steps {
        if kill9 {
            c.nodes[i].kill9();
        } else {
            let status = c.nodes[i].signal_and_wait(libc::SIGTERM);
            assert!(status.success(), "node {i} stopped with {status:?}");
        }
        clients_progress(
            &shared,
            150,
            &format!("clients served while node {i} is down"),
        );
        c.nodes[i].restart();
        shared.urls.write().expect("urls")[i] = c.nodes[i].url(false);
        rejoined(&c, i);
        clients_progress(
            &shared,
            150,
            &format!("clients served after node {i} rejoined"),
        );
    }

    shared.stop.store(true, Ordering::Relaxed);
    let logs: Vec<ClientLog> = clients
        .into_iter()
        .map(|t| t.join().expect("client thread"))
        .collect();

    let mut conns: Vec<redis::Connection> = c.nodes.iter().map(|n| n.client()).collect();
    for (id, log) in logs.iter().enumerate() {
        assert!(
            log.wrong_reads.is_empty(),
            "client {id}: {:?}",
            log.wrong_reads
        );
        assert!(!log.sets.is_empty() && !log.increments.is_empty());
        // Every acknowledged SET, through every node, in batches.
        for chunk in log.sets.chunks(200) {
            let keys: Vec<&str> = chunk.iter().map(|(k, _)| k.as_str()).collect();
            let want: Vec<Option<String>> = chunk.iter().map(|(_, v)| Some(v.clone())).collect();
            for (n, conn) in conns.iter_mut().enumerate() {
                let got: Vec<Option<String>> = redis::cmd("MGET").arg(&keys).query(conn).unwrap();
                assert_eq!(got, want, "client {id}'s keys through node {n}");
            }
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
            let total: i64 = conn.get(counter(id)).unwrap();
            let total = total as usize;
            assert!(
                total >= acked && total <= acked + log.unknown_increments,
                "client {id}'s counter is {total} through node {n} after {acked} acknowledged and {} unknown INCRs",
                log.unknown_increments
            );
        }
    }
    let longest = logs
        .iter()
        .map(|l| l.longest_error_stretch)
        .max()
        .unwrap_or_default();
    for (id, log) in logs.iter().enumerate() {
        eprintln!(
            "rolling restart: client {id}: {} SETs and {} INCRs acknowledged, {} unknown INCRs, {} errors, longest error stretch {:?}",
            log.sets.len(),
            log.increments.len(),
            log.unknown_increments,
            log.errors,
            log.longest_error_stretch
        );
    }
    eprintln!("rolling restart: longest interval in which a client saw only errors: {longest:?}");
}

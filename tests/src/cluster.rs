//! A local cluster of real kvd processes on loopback for the cluster tests: fixed client
//! and bus ports chosen up front (every node's `--cluster-seeds` names them), readiness
//! polled through CLUSTER INFO, and per-node access to kill -9, SIGSTOP and restart.

use crate::{eventually, free_port, info_field, kvd_binary, Kvd};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// How long a cluster gets to form.
pub const FORM_TIMEOUT: Duration = Duration::from_secs(60);

/// Nodes of one cluster.
pub struct Cluster {
    /// The nodes, in start order.
    pub nodes: Vec<Kvd>,
}

impl Cluster {
    /// Starts `n` nodes that bootstrap one cluster (N = min(3, n), W and R quorums of
    /// it) with `extra` flags on every node, and waits until every node reports
    /// `cluster_state:ok`.
    pub fn start(n: usize, extra: &[&str]) -> Cluster {
        Cluster::start_per_node(n, |_| extra.iter().map(|s| s.to_string()).collect())
    }

    /// [`Cluster::start`] with flags of its own for each node: node `i` gets `extra(i)`
    /// (an HTTP port per node, for example).
    pub fn start_per_node(n: usize, extra: impl Fn(usize) -> Vec<String>) -> Cluster {
        Cluster::start_built(&kvd_binary(), n, extra)
    }

    /// [`Cluster::start_per_node`] with every node running `binary` (an older build, for
    /// a rolling upgrade) rather than this build's kvd.
    pub fn start_built(binary: &Path, n: usize, extra: impl Fn(usize) -> Vec<String>) -> Cluster {
        let plan = Plan::new(n);
        let nodes = (0..n)
            .map(|i| {
                let own = extra(i);
                let own: Vec<&str> = own.iter().map(String::as_str).collect();
                let args = plan.args(i, &own);
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                Kvd::start_binary_at(binary.to_path_buf(), plan.ports[i].0, &args)
            })
            .collect();
        let c = Cluster { nodes };
        c.wait_formed();
        c
    }

    /// Waits until every node's failure detector reports every peer up: a node just
    /// started sees a peer up only after two of its heartbeats (before gossip reports a
    /// peer at all, it counts it up for a grace period, and may then see it suspect for
    /// a moment), and until then may route differently from the others (a key's
    /// proposer, docs/consistency.md).
    pub fn wait_all_up(&self) {
        let peers = (self.nodes.len() - 1).to_string();
        for (i, node) in self.nodes.iter().enumerate() {
            eventually(
                &format!("node {i} has gossip report all {peers} peers up"),
                FORM_TIMEOUT,
                || cluster_info(node, "kvd_peers_reported_up").as_deref() == Some(peers.as_str()),
            );
        }
    }

    /// Waits until every running node reports `cluster_state:ok`.
    pub fn wait_formed(&self) {
        for (i, node) in self.nodes.iter().enumerate() {
            eventually(
                &format!("node {i} reports cluster_state:ok"),
                FORM_TIMEOUT,
                || cluster_info(node, "cluster_state").as_deref() == Some("ok"),
            );
        }
    }
}

/// Ports and flags of a cluster's nodes, fixed before any starts (every node's
/// `--cluster-seeds` names all bus ports).
pub struct Plan {
    /// (client port, bus port) per node.
    pub ports: Vec<(u16, u16)>,
}

impl Plan {
    /// Free ports for `n` nodes.
    pub fn new(n: usize) -> Plan {
        Plan {
            ports: (0..n).map(|_| (free_port(), free_port())).collect(),
        }
    }

    /// The flags of node `i` (N = min(3, n), W and R quorums of it), plus `extra`.
    pub fn args(&self, i: usize, extra: &[&str]) -> Vec<String> {
        let n = self.ports.len();
        let seeds: Vec<String> = self
            .ports
            .iter()
            .map(|(_, b)| format!("127.0.0.1:{b}"))
            .collect();
        let replicas = n.min(3);
        let quorum = replicas / 2 + 1;
        let mut args: Vec<String> = [
            "--cluster-enabled",
            "yes",
            "--cluster-port",
            &self.ports[i].1.to_string(),
            "--cluster-seeds",
            &seeds.join(","),
            "--cluster-replicas",
            &replicas.to_string(),
            "--cluster-write-quorum",
            &quorum.to_string(),
            "--cluster-read-quorum",
            &quorum.to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }
}

/// One field of a node's CLUSTER INFO (`None` if the node does not answer).
pub fn cluster_info(node: &Kvd, field: &str) -> Option<String> {
    cluster_info_at(&node.url(false), field)
}

/// One field of CLUSTER INFO of the node at `url` (`redis://host:port/`); `None` if it
/// does not answer.
pub fn cluster_info_at(url: &str, field: &str) -> Option<String> {
    let mut conn = short_lived_client(url, Duration::from_secs(5))?;
    let text: String = redis::cmd("CLUSTER").arg("INFO").query(&mut conn).ok()?;
    info_field(&text, field)
}

/// A node's Merkle roots (CLUSTER MERKLE), one hex string per partition.
pub fn merkle_roots(node: &Kvd) -> Option<Vec<String>> {
    merkle_roots_at(&node.url(false))
}

/// The Merkle roots (CLUSTER MERKLE) of the node at `url`, one hex string per partition.
pub fn merkle_roots_at(url: &str) -> Option<Vec<String>> {
    let mut conn = short_lived_client(url, Duration::from_secs(30))?;
    redis::cmd("CLUSTER").arg("MERKLE").query(&mut conn).ok()
}

/// A connection for one probe: `None` rather than a panic when the node does not answer,
/// because callers poll until it does.
fn short_lived_client(url: &str, read_timeout: Duration) -> Option<redis::Connection> {
    let client = redis::Client::open(url).ok()?;
    let conn = client
        .get_connection_with_timeout(Duration::from_secs(2))
        .ok()?;
    conn.set_read_timeout(Some(read_timeout)).ok()?;
    Some(conn)
}

/// A client of one node for a cluster test (connect and read timeouts long enough for
/// consensus rounds that retry under contention).
pub fn connect(url: &str) -> redis::Connection {
    let c = redis::Client::open(url)
        .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(5)))
        .expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(15)))
        .expect("read timeout");
    c
}

/// Whether an error says for sure that nothing was written (docs/consistency.md).
pub fn nothing_written(e: &redis::RedisError) -> bool {
    matches!(e.code(), Some("CLUSTERDOWN")) || e.to_string().contains("nothing was written")
}

/// The client URLs of every node.
pub fn urls(c: &Cluster) -> Vec<String> {
    c.nodes.iter().map(|n| n.url(false)).collect()
}

/// How long the clients of [`assert_increments_count_once`] may take to get all their
/// increments acknowledged: generous, because a loaded machine slows consensus rounds
/// (they time out and are retried) without making them wrong; a livelock or a node
/// that stopped serving still fails it.
const INCREMENTS_DEADLINE: Duration = Duration::from_secs(120);

/// Runs `increment` (a command that adds one to `key` and returns the new value) on each
/// of `clients` connections spread over `urls`, all starting together, each retrying
/// after errors until `each` of its calls are acknowledged, and checks the counter
/// counted every call once: every acknowledged call got its own result, every client
/// got its `each` acknowledgements before [`INCREMENTS_DEADLINE`], and every node reads
/// the counter between the acknowledged and the acknowledged-plus-unknown count (an
/// error that does not say nothing was written is an unknown outcome).
///
/// Liveness is judged as a client would see it, by retrying: a count of calls that
/// succeeded at the first attempt would depend on how loaded the machine is.
pub fn assert_increments_count_once(
    urls: &[String],
    key: &'static str,
    clients: usize,
    each: usize,
    increment: fn(&mut redis::Connection, &str) -> redis::RedisResult<i64>,
) {
    use std::collections::HashSet;
    use std::sync::{Arc, Barrier};
    use std::time::Instant;
    let start = Arc::new(Barrier::new(clients));
    let threads: Vec<_> = (0..clients)
        .map(|i| {
            let (url, start) = (urls[i % urls.len()].clone(), start.clone());
            std::thread::spawn(move || {
                let mut conn = connect(&url);
                start.wait();
                let deadline = Instant::now() + INCREMENTS_DEADLINE;
                let (mut acked, mut unknown, mut refused) = (Vec::new(), 0, 0);
                while acked.len() < each && Instant::now() < deadline {
                    match increment(&mut conn, key) {
                        Ok(v) => acked.push(v),
                        Err(e) if nothing_written(&e) => refused += 1,
                        Err(e) => {
                            eprintln!("unknown outcome: {e}");
                            unknown += 1;
                            if e.is_io_error() {
                                // A timed-out read leaves the reply in flight: start afresh.
                                conn = connect(&url);
                            }
                        }
                    }
                }
                (acked, unknown, refused)
            })
        })
        .collect();
    let mut seen = HashSet::new();
    let (mut acked, mut unknown, mut refused) = (0, 0, 0);
    for t in threads {
        let (values, u, r) = t.join().expect("client thread");
        assert_eq!(
            values.len(),
            each,
            "a client got only {} of its {each} increments acknowledged in {INCREMENTS_DEADLINE:?} \
             ({u} unknown outcomes, {r} refused)",
            values.len()
        );
        acked += values.len();
        unknown += u;
        refused += r;
        for v in values {
            // A linearizable counter gives every acknowledged call its own result.
            assert!(seen.insert(v), "two increments both returned {v}");
        }
    }
    eprintln!("{key}: {acked} acknowledged, {unknown} unknown, {refused} refused");
    for url in urls {
        let total: i64 = redis::cmd("GET")
            .arg(key)
            .query(&mut connect(url))
            .expect("GET");
        assert!(
            total as usize >= acked && total as usize <= acked + unknown,
            "{key} is {total} after {acked} acknowledged and {unknown} unknown increments"
        );
    }
}

/// CLUSTER LAYOUT `args` on `node` (docs/cluster.md, "Changing the layout").
pub fn layout_command(node: &Kvd, args: &[&str]) -> redis::RedisResult<String> {
    let mut c = connect(&node.url(false));
    redis::cmd("CLUSTER").arg("LAYOUT").arg(args).query(&mut c)
}

/// Polls until every partition is held by exactly `replicas` of `nodes` with equal
/// Merkle roots (a layout change's anti-entropy may still be finishing). CLUSTER MERKLE
/// reports the partitions a node's layout gives it, so this does not see data a node
/// gave away and has not deleted yet: `layout_change::wait_cleaned` waits for that, and
/// `replica_dumps` checks it offline.
pub fn assert_placed_exactly(nodes: &[&Kvd], replicas: usize, timeout: Duration) {
    // The partitions that did not hold at the last poll, printed if the wait times out
    // (which partitions, and how many holders each had), to tell a partition some node
    // does not hold from one whose replicas differ.
    let mut last_bad: Vec<(usize, usize, bool)> = Vec::new();
    // Since when each partition has been wrong in every poll: under a load that keeps
    // writing, a partition whose replicas differ only for writes in flight comes and
    // goes, and one whose trees really disagree stays.
    let mut wrong_since: BTreeMap<usize, std::time::Instant> = BTreeMap::new();
    let mut polls = 0u64;
    let mut placed = |last_bad: &mut Vec<(usize, usize, bool)>| {
        let Some(roots) = nodes
            .iter()
            .map(|n| merkle_roots(n))
            .collect::<Option<Vec<_>>>()
        else {
            return false;
        };
        polls += 1;
        last_bad.clear();
        for p in 0..256 {
            let held: Vec<&String> = roots
                .iter()
                .map(|r| &r[p])
                .filter(|root| !root.is_empty())
                .collect();
            let equal = held.windows(2).all(|w| w[0] == w[1]);
            if held.len() != replicas || !equal {
                last_bad.push((p, held.len(), equal));
            }
        }
        let now = std::time::Instant::now();
        wrong_since.retain(|p, _| last_bad.iter().any(|b| b.0 == *p));
        for b in last_bad.iter() {
            wrong_since.entry(b.0).or_insert(now);
        }
        last_bad.is_empty()
    };
    let deadline = std::time::Instant::now() + timeout;
    while !placed(&mut last_bad) {
        if std::time::Instant::now() >= deadline {
            let stuck: Vec<(usize, u64)> = wrong_since
                .iter()
                .map(|(p, t)| (*p, t.elapsed().as_secs()))
                .filter(|(_, secs)| *secs >= 10)
                .collect();
            panic!(
                "timed out waiting until every partition is on exactly {replicas} nodes with equal Merkle roots; \
                 at the last of {polls} polls (partition, holders, roots equal): {last_bad:?}; \
                 wrong in every poll for 10 s or more (partition, seconds): {stuck:?}; \
                 anti-entropy per node (rounds, keys repaired, failures): {:?}",
                anti_entropy_counts(nodes)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Each node's anti-entropy counters from CLUSTER INFO, for a failure message: rounds
/// that keep going with no keys repaired while roots differ point at the trees, not at
/// the data.
fn anti_entropy_counts(nodes: &[&Kvd]) -> Vec<[Option<String>; 3]> {
    nodes
        .iter()
        .map(|n| {
            [
                "kvd_anti_entropy_rounds",
                "kvd_anti_entropy_keys_repaired",
                "kvd_anti_entropy_failures",
            ]
            .map(|field| cluster_info(n, field))
        })
        .collect()
}

/// The node's id (CLUSTER MYID).
pub fn my_id(node: &Kvd) -> String {
    let mut c = connect(&node.url(false));
    redis::cmd("CLUSTER")
        .arg("MYID")
        .query(&mut c)
        .expect("MYID")
}

//! Rolling upgrade with two builds mixed (docs/operations.md, "Rolling restart and rolling
//! upgrade"), with real processes: three nodes start on a previous build
//! (`KVD_PREVIOUS_BIN`, made by tests/scripts/build-previous-kvd.sh), clients write
//! (SET and INCR through consensus in database 0, SET in the eventual database 1) and
//! read through every node continuously, and each node in turn is stopped with SIGTERM
//! and started on this build on the same directory and port. While the builds are
//! mixed, writes and reads at CLUSTER CONSISTENCY ALL through every node prove that each
//! build's coordinators are served by the other build's replicas, new nodes count the
//! old ones' untagged requests, and with the clients paused every node reports the same
//! Merkle roots (anti-entropy agrees across builds). Afterwards every acknowledged write
//! reads back through every node, counters hold their acknowledged increments and at
//! most the unknown ones besides, and the untagged counters stop growing. Last, a
//! downgrade: the previous build started on a directory this build wrote either serves
//! every acknowledged write from its own copy or refuses to start with a message that
//! says why; both are reported; then the node is rolled forward again. A second test
//! does the same with `--cluster-forward-consensus yes` on the upgraded nodes (a flag
//! the previous build does not know): while mixed they send commands to old proposers,
//! which refuse the unknown Propose RPC, and run them themselves.
//!
//! Without `KVD_PREVIOUS_BIN` the test prints SKIPPED and how to run it.

use kv_tests::cluster::{assert_placed_exactly, cluster_info, connect, Cluster};
use kv_tests::rolling::{
    assert_every_write_survived, assert_reads_back, counter, rejoined, report, ClientLog,
    RollingClients, CLIENTS, REJOIN_TIMEOUT,
};
use kv_tests::{kvd_binary, Kvd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The eventual database the clients also write (the previous build has them too).
const EVENTUAL_DB: u32 = 1;
const UNTAGGED: &str = "kvd_layout_untagged_requests";
/// Commands a node with forwarding on ran itself because the proposer did not.
const FALLBACKS: &str = "kvd_consensus_forward_fallbacks";
/// A key written under IDEMPOTENT (a format 2 record) before the downgrade.
const IDEMPOTENT_KEY: &str = "mixed:idempotent";

/// The previous build, or `None` (and a loud SKIPPED) when the environment names none.
fn previous_binary() -> Option<PathBuf> {
    let Some(path) = std::env::var_os("KVD_PREVIOUS_BIN") else {
        eprintln!(
            "SKIPPED: cluster_mixed_upgrade needs a kvd of an older revision: run \
             `tests/scripts/build-previous-kvd.sh` and then \
             `KVD_PREVIOUS_BIN=<the path it prints> CARGO_INCREMENTAL=0 cargo test --workspace \
             --test cluster_mixed_upgrade -- --nocapture`"
        );
        return None;
    };
    let path = PathBuf::from(path);
    assert!(
        path.is_file(),
        "KVD_PREVIOUS_BIN={} is not a file",
        path.display()
    );
    Some(path)
}

#[test]
fn a_rolling_upgrade_from_the_previous_build_keeps_every_acknowledged_write() {
    run_upgrade("mixed upgrade", &[]);
}

/// With one proposer per key on the upgraded nodes: they send consensus commands whose
/// proposer is an old node to it, which does not know the Propose RPC, so they run them
/// themselves.
#[test]
fn a_rolling_upgrade_with_forwarding_on_the_new_nodes_keeps_every_acknowledged_write() {
    run_upgrade(
        "mixed upgrade with forwarding",
        &["--cluster-forward-consensus", "yes"],
    );
}

/// What one rolling upgrade knows besides its cluster.
struct Upgrade {
    /// Starts each printed line.
    label: &'static str,
    previous: PathBuf,
    current: PathBuf,
    /// Each node's flags on the previous build.
    previous_args: Vec<Vec<String>>,
    /// Flags only this build knows, given to a node from its upgrade on.
    new_flags: &'static [&'static str],
    /// The previous build predates layout tags (it reports no untagged counter): the new
    /// nodes must count the old ones' requests while the builds are mixed.
    previous_untagged: bool,
    /// The previous build predates the Propose RPC (it reports no forwarding counter).
    previous_without_propose: bool,
}

impl Upgrade {
    /// Makes node `i` run this build (with the new flags) or the previous one at its next
    /// start.
    fn set_build(&self, node: &mut Kvd, i: usize, current: bool) {
        node.args = self.previous_args[i].clone();
        if current {
            node.binary = self.current.clone();
            node.args
                .extend(self.new_flags.iter().map(|f| f.to_string()));
        } else {
            node.binary = self.previous.clone();
        }
    }
}

fn run_upgrade(label: &'static str, new_flags: &'static [&'static str]) {
    let Some(previous) = previous_binary() else {
        return;
    };
    let eventual = EVENTUAL_DB.to_string();
    let flags = move |_| vec!["--cluster-eventual-databases".to_string(), eventual.clone()];
    let mut c = Cluster::start_built(&previous, 3, flags);
    let u = Upgrade {
        label,
        previous,
        current: kvd_binary(),
        previous_args: c.nodes.iter().map(|n| n.args.clone()).collect(),
        new_flags,
        previous_untagged: cluster_info(&c.nodes[0], UNTAGGED).is_none(),
        previous_without_propose: cluster_info(&c.nodes[0], FALLBACKS).is_none(),
    };
    eprintln!(
        "{label}: the previous build predates layout tags: {}, the Propose RPC: {}",
        u.previous_untagged, u.previous_without_propose
    );

    let clients = RollingClients::start(&c, Some(EVENTUAL_DB));
    clients.progress(50, "clients running on the previous build");
    for i in 0..3 {
        let status = c.nodes[i].signal_and_wait(libc::SIGTERM);
        assert!(status.success(), "node {i} stopped with {status:?}");
        clients.progress(150, &format!("clients served while node {i} is down"));
        u.set_build(&mut c.nodes[i], i, true);
        c.nodes[i].restart();
        clients.node_moved(&c, i);
        rejoined(&c, i);
        clients.progress(150, &format!("clients served after node {i} upgraded"));
        if i < 2 {
            check_mixed(&u, &c, &clients, i + 1);
        }
    }
    untagged_requests_stop(&u, &c, &clients);

    let logs = clients.finish();
    assert_every_write_survived(&c, &logs, Some(EVENTUAL_DB));
    report(label, &logs);

    downgrade_one_node(&u, &mut c, &logs);
}

/// Checks while nodes `0..upgraded` run this build and the others the previous one.
fn check_mixed(u: &Upgrade, c: &Cluster, clients: &RollingClients, upgraded: usize) {
    let stage = format!("{upgraded} of 3 upgraded");
    writes_cross_builds(u, c, upgraded);
    for (i, node) in c.nodes.iter().enumerate().take(upgraded) {
        let count = |field| {
            cluster_info(node, field)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        if u.previous_untagged {
            // The old nodes coordinate client requests, whose replica RPCs reach this
            // one without a tag and are served.
            kv_tests::eventually(
                &format!("{stage}: node {i} counts untagged requests"),
                REJOIN_TIMEOUT,
                || count(UNTAGGED) > 0,
            );
        }
        if u.previous_without_propose && !u.new_flags.is_empty() {
            // Consensus commands whose proposer is an old node: Propose is refused as
            // unknown and this node runs them itself.
            kv_tests::eventually(
                &format!("{stage}: node {i} runs commands an old proposer refused"),
                REJOIN_TIMEOUT,
                || count(FALLBACKS) > 0,
            );
        }
        eprintln!(
            "{}: {stage}: node {i} {UNTAGGED}:{} {FALLBACKS}:{}",
            u.label,
            count(UNTAGGED),
            count(FALLBACKS)
        );
    }
    // Anti-entropy compares Merkle trees across builds: with the clients paused the
    // three replicas of every partition must agree, or repair would run for ever.
    clients.pause();
    let nodes: Vec<_> = c.nodes.iter().collect();
    assert_placed_exactly(&nodes, 3, REJOIN_TIMEOUT);
    clients.resume();
}

/// Through every node, at CLUSTER CONSISTENCY ALL: a SET and an INCR through consensus
/// and a SET in the eventual database, then reads of all of them through every node at
/// ALL. Acknowledged at ALL, a write was applied by every replica, so each build's
/// coordinators (Prepare, Accept, Write) and readers (Read) were served by the other's.
/// A request may fail for a moment (a consensus round meeting a client's); a build
/// that cannot serve the other fails it until the deadline.
fn writes_cross_builds(u: &Upgrade, c: &Cluster, upgraded: usize) {
    let mut written = Vec::new();
    for (n, node) in c.nodes.iter().enumerate() {
        let key = format!("mixed:{upgraded}:{n}");
        let eventual_key = format!("mixed:eventual:{upgraded}:{n}");
        let value = format!("through node {n}");
        retry_all(
            u,
            &format!("writes at ALL through node {n}"),
            &node.url(false),
            |conn| {
                redis::cmd("SET").arg(&key).arg(&value).query::<()>(conn)?;
                redis::cmd("INCR")
                    .arg(format!("mixed:counter:{upgraded}"))
                    .query::<i64>(conn)?;
                redis::cmd("SELECT").arg(EVENTUAL_DB).query::<()>(conn)?;
                redis::cmd("SET")
                    .arg(&eventual_key)
                    .arg(&value)
                    .query::<()>(conn)
            },
        );
        written.push((key, eventual_key, value));
    }
    for (n, node) in c.nodes.iter().enumerate() {
        retry_all(
            u,
            &format!("reads at ALL through node {n}"),
            &node.url(false),
            |conn| {
                for (key, eventual_key, value) in &written {
                    redis::cmd("SELECT").arg(0).query::<()>(conn)?;
                    let got: Option<String> = redis::cmd("GET").arg(key).query(conn)?;
                    assert_eq!(
                        got.as_deref(),
                        Some(value.as_str()),
                        "{key} through node {n}"
                    );
                    redis::cmd("SELECT").arg(EVENTUAL_DB).query::<()>(conn)?;
                    let got: Option<String> = redis::cmd("GET").arg(eventual_key).query(conn)?;
                    assert_eq!(
                        got.as_deref(),
                        Some(value.as_str()),
                        "{eventual_key} through node {n}"
                    );
                }
                Ok(())
            },
        );
    }
}

/// Runs `f` on a fresh connection to `url` at CLUSTER CONSISTENCY ALL until it succeeds,
/// printing each error, for at most [`REJOIN_TIMEOUT`].
fn retry_all(
    u: &Upgrade,
    what: &str,
    url: &str,
    mut f: impl FnMut(&mut redis::Connection) -> redis::RedisResult<()>,
) {
    let deadline = Instant::now() + REJOIN_TIMEOUT;
    loop {
        let mut conn = connect(url);
        let result = redis::cmd("CLUSTER")
            .arg("CONSISTENCY")
            .arg("ALL")
            .query::<()>(&mut conn)
            .and_then(|()| f(&mut conn));
        match result {
            Ok(()) => return,
            Err(e) => {
                eprintln!("{}: {what}: {e}", u.label);
                assert!(Instant::now() < deadline, "{what}: still failing: {e}");
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
}

/// Once every node runs this build, no replica request arrives untagged any more: the
/// counters stay where they are while the clients go on.
fn untagged_requests_stop(u: &Upgrade, c: &Cluster, clients: &RollingClients) {
    let counts =
        || -> Vec<Option<String>> { c.nodes.iter().map(|n| cluster_info(n, UNTAGGED)).collect() };
    let before = counts();
    assert!(
        before.iter().all(Option::is_some),
        "every node runs this build, which reports {UNTAGGED}: {before:?}"
    );
    clients.progress(150, "clients served after the upgrade");
    assert_eq!(
        counts(),
        before,
        "untagged replica requests after every node was upgraded"
    );
    eprintln!(
        "{}: {UNTAGGED} after the upgrade, per node: {before:?}",
        u.label
    );
}

/// Starts the previous build on node 2's directory, which this build wrote: either it
/// serves, and then reads every acknowledged write from its own copy (CLUSTER
/// CONSISTENCY ONE: a coordinator reads itself first), or it refuses to start with a
/// message naming the reason. Then node 2 is rolled forward again.
fn downgrade_one_node(u: &Upgrade, c: &mut Cluster, logs: &[ClientLog]) {
    // Node 2 must hold every write before it goes back (hints drained, repair done).
    let nodes: Vec<_> = c.nodes.iter().collect();
    assert_placed_exactly(&nodes, 3, REJOIN_TIMEOUT);
    let mut on_node0 = c.nodes[0].client();
    let totals: Vec<i64> = (0..CLIENTS)
        .map(|id| {
            redis::cmd("GET")
                .arg(counter(id))
                .query(&mut on_node0)
                .expect("counter")
        })
        .collect();

    // A record only this build writes (format 2, with a request record), on every
    // replica: the previous build must refuse it, not misread it.
    retry_all(u, "IDEMPOTENT SET at ALL", &c.nodes[0].url(false), |conn| {
        redis::cmd("IDEMPOTENT")
            .arg("mixed-upgrade-1")
            .arg("SET")
            .arg(IDEMPOTENT_KEY)
            .arg("written once")
            .query::<()>(conn)
    });

    let status = c.nodes[2].signal_and_wait(libc::SIGTERM);
    assert!(status.success(), "node 2 stopped with {status:?}");
    let log_before = c.nodes[2].log_text().len();
    u.set_build(&mut c.nodes[2], 2, false);
    if c.nodes[2].try_restart() {
        rejoined(c, 2);
        let mut conn = connect(&c.nodes[2].url(false));
        redis::cmd("CLUSTER")
            .arg("CONSISTENCY")
            .arg("ONE")
            .query::<()>(&mut conn)
            .expect("CONSISTENCY ONE");
        let mut conns = [conn];
        for (id, log) in logs.iter().enumerate() {
            let what = format!("downgraded node 2's own copy of client {id}'s keys");
            assert_reads_back(&mut conns, 0, &log.sets, &what);
            assert_reads_back(&mut conns, EVENTUAL_DB, &log.eventual_sets, &what);
            let total: i64 = redis::cmd("GET")
                .arg(counter(id))
                .query(&mut conns[0])
                .expect("counter");
            assert_eq!(
                total, totals[id],
                "client {id}'s counter on downgraded node 2"
            );
        }
        let newer: redis::RedisResult<Option<String>> =
            redis::cmd("GET").arg(IDEMPOTENT_KEY).query(&mut conns[0]);
        match &newer {
            Err(e) => {
                let log = c.nodes[2].log_text();
                let logged = log[log_before..]
                    .lines()
                    .find(|l| l.contains(IDEMPOTENT_KEY) || l.contains("corrupt"))
                    .unwrap_or("(nothing about it in its log)")
                    .to_string();
                eprintln!(
                    "{}: downgrade: a format 2 record read on the previous build: {e}; \
                     its log: {logged}",
                    u.label
                );
            }
            Ok(v) => assert_eq!(
                v.as_deref(),
                Some("written once"),
                "the previous build misread a format 2 record"
            ),
        }
        eprintln!(
            "{}: downgrade: the previous build started on node 2's directory, rejoined \
             and read every acknowledged write from its own copy",
            u.label
        );
    } else {
        let log = c.nodes[2].log_text();
        let why = log[log_before..].trim();
        assert!(
            !why.is_empty(),
            "the previous build refused node 2's directory without saying why"
        );
        eprintln!(
            "{}: downgrade refused by the previous build:\n{why}",
            u.label
        );
    }

    // Forward again, onto the directory the previous build may have written.
    if c.nodes[2].is_running() {
        let status = c.nodes[2].signal_and_wait(libc::SIGTERM);
        assert!(
            status.success(),
            "downgraded node 2 stopped with {status:?}"
        );
    }
    u.set_build(&mut c.nodes[2], 2, true);
    c.nodes[2].restart();
    rejoined(c, 2);
    eprintln!("{}: node 2 rolled forward again and rejoined", u.label);
}

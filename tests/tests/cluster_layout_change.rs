//! Growing, shrinking and healing a live cluster (docs/cluster.md, "Changing the
//! layout"), with real kvd processes: nodes join, leave and are replaced while a client
//! keeps writing and reading through every node; a node is killed with -9 in the middle
//! of a change. Afterwards every acknowledged write reads back through every node, and
//! every partition sits on exactly its new replicas with equal Merkle roots.

use kv_tests::cluster::{cluster_info, connect, my_id, Cluster};
use kv_tests::layout_change::{self, CHANGE_FLAGS as FLAGS};
use kv_tests::{eventually, Kvd};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long one layout change may take on a loaded two-core machine.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(120);

fn start_joiner(bus_ports: &[u16]) -> (Kvd, u16) {
    layout_change::start_joiner(bus_ports, FLAGS)
}

fn apply_change(via: &Kvd, change: &[&str]) -> u64 {
    layout_change::apply_change(via, change, CHANGE_TIMEOUT)
}

fn wait_ended(nodes: &[&Kvd], next: u64) -> u64 {
    layout_change::wait_ended(nodes, next, CHANGE_TIMEOUT)
}

/// Stages `change` through `via`, checks the plan, applies it, and waits until every
/// node of `nodes` holds the layout that ends the change. Returns that version.
fn change_layout(via: &Kvd, change: &[&str], nodes: &[&Kvd]) -> u64 {
    let next = apply_change(via, change);
    wait_ended(nodes, next)
}

/// A client writing fresh keys through every node in turn and reading back earlier ones,
/// until stopped. Acknowledged keys are recorded; a read that returns anything but the
/// acknowledged value is a violation (errors are allowed while nodes die).
struct Load {
    stop: Arc<AtomicBool>,
    urls: Arc<Mutex<Vec<String>>>,
    /// Held by the client for each write and read, and by [`Load::pause`]; the client
    /// hands it over fairly, so a pause waits for at most one turn.
    turn: Arc<parking_lot::Mutex<()>>,
    thread: Option<std::thread::JoinHandle<(Vec<u64>, Vec<String>)>>,
}

impl Load {
    fn start(urls: Vec<String>) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let urls = Arc::new(Mutex::new(urls));
        let turn = Arc::new(parking_lot::Mutex::new(()));
        let (s, u, t) = (stop.clone(), urls.clone(), turn.clone());
        let thread = std::thread::spawn(move || {
            let mut acked: Vec<u64> = Vec::new();
            let mut violations = Vec::new();
            let mut conns: BTreeMap<String, redis::Connection> = BTreeMap::new();
            let mut i = 0u64;
            while !s.load(Ordering::Relaxed) {
                let turn = t.lock();
                let now: Vec<String> = u.lock().expect("urls").clone();
                let url = &now[i as usize % now.len()];
                if !conns.contains_key(url) {
                    match redis::Client::open(url.as_str())
                        .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(2)))
                    {
                        Ok(c) => {
                            let _ = c.set_read_timeout(Some(Duration::from_secs(10)));
                            conns.insert(url.clone(), c);
                        }
                        Err(_) => {
                            i += 1;
                            continue;
                        }
                    }
                }
                let Some(c) = conns.get_mut(url) else {
                    continue;
                };
                let set: redis::RedisResult<()> =
                    redis::cmd("SET").arg(format!("key:{i}")).arg(i).query(c);
                match set {
                    Ok(()) => acked.push(i),
                    Err(e) if e.is_io_error() || e.is_timeout() => {
                        conns.remove(url);
                    }
                    Err(_) => {}
                }
                if let Some(&j) = acked.get((i as usize * 7919) % acked.len().max(1)) {
                    if let Some(c) = conns.get_mut(url) {
                        match redis::cmd("GET")
                            .arg(format!("key:{j}"))
                            .query::<Option<u64>>(c)
                        {
                            Ok(Some(v)) if v == j => {}
                            Ok(other) => {
                                violations.push(format!("key:{j} read {other:?} via {url}"))
                            }
                            Err(e) if e.is_io_error() || e.is_timeout() => {
                                conns.remove(url);
                            }
                            Err(_) => {}
                        }
                    }
                }
                i += 1;
                // Straight to a pause waiting for it, if any (the other ends of a turn
                // are rare errors, where parking_lot's eventual fairness suffices).
                parking_lot::MutexGuard::unlock_fair(turn);
            }
            (acked, violations)
        });
        Load {
            stop,
            urls,
            turn,
            thread: Some(thread),
        }
    }

    /// Stops the client between two requests until the guard is dropped: Merkle roots
    /// are compared while it pauses, because under writes replicas differ for a moment
    /// by design (a write is acknowledged by W of them and reaches the last one after).
    fn pause(&self) -> parking_lot::MutexGuard<'_, ()> {
        self.turn.lock()
    }

    fn set_urls(&self, urls: Vec<String>) {
        *self.urls.lock().expect("urls") = urls;
    }

    fn finish(mut self) -> Vec<u64> {
        self.stop.store(true, Ordering::Relaxed);
        let (acked, violations) = self
            .thread
            .take()
            .expect("running")
            .join()
            .expect("load thread");
        assert!(
            violations.is_empty(),
            "reads saw other values: {violations:?}"
        );
        assert!(
            acked.len() >= 10,
            "the load made progress: {} writes",
            acked.len()
        );
        acked
    }
}

/// Every partition is held by exactly three of `nodes`, with equal Merkle roots
/// (anti-entropy and clean-up may still be finishing: polled).
fn assert_placed_exactly(nodes: &[&Kvd]) {
    kv_tests::cluster::assert_placed_exactly(nodes, 3, CHANGE_TIMEOUT);
}

#[test]
fn a_cluster_grows_to_four_and_shrinks_to_three_under_load() {
    let mut cluster = Cluster::start(3, FLAGS);
    let load = Load::start(cluster.nodes.iter().map(|n| n.url(false)).collect());

    // Grow: a fourth node joins; node 2 is killed with -9 and restarted while data moves.
    let (mut joiner, joiner_bus) = start_joiner(&bus_of(&cluster));
    let joiner_bus_addr = format!("127.0.0.1:{joiner_bus}");
    layout_change::wait_met(&cluster.nodes[0], joiner_bus, CHANGE_TIMEOUT);
    let next = apply_change(&cluster.nodes[0], &["ASSIGN", &joiner_bus_addr]);
    cluster.nodes[1].restart();
    let mut all: Vec<&Kvd> = cluster.nodes.iter().collect();
    all.push(&joiner);
    load.set_urls(all.iter().map(|n| n.url(false)).collect());
    let v = wait_ended(&all, next);
    assert_eq!(
        cluster_info(&joiner, "kvd_layout_version"),
        Some(v.to_string())
    );
    let paused = load.pause();
    assert_placed_exactly(&all);
    drop(paused);

    // Shrink: node 1 leaves; it streams its partitions away and then refuses requests.
    let leaver = my_id(&cluster.nodes[0]);
    let rest: Vec<&Kvd> = vec![&cluster.nodes[1], &cluster.nodes[2], &joiner];
    load.set_urls(rest.iter().map(|n| n.url(false)).collect());
    change_layout(&cluster.nodes[1], &["REMOVE", &leaver], &rest);
    let acked = load.finish();
    eventually("node 1 knows it was removed", CHANGE_TIMEOUT, || {
        cluster_info(&cluster.nodes[0], "kvd_removed_in_layout").is_some_and(|v| v != "0")
    });
    let mut c = connect(&cluster.nodes[0].url(false));
    let refused: redis::RedisResult<()> = redis::cmd("SET").arg("late").arg(1).query(&mut c);
    let refused = refused.expect_err("a removed node refuses writes");
    assert!(refused.to_string().contains("removed"), "{refused}");
    layout_change::assert_all_readable(&acked, &rest);
    assert_placed_exactly(&rest);
    joiner.kill9();
}

/// The bus ports the cluster's nodes listen on (`Cluster::start` chose them).
fn bus_of(cluster: &Cluster) -> Vec<u16> {
    cluster.nodes.iter().map(layout_change::bus_port).collect()
}

#[test]
fn a_dead_node_is_replaced_by_a_new_one() {
    let mut cluster = Cluster::start(3, FLAGS);
    let acked = layout_change::write_numbered_keys(&cluster.nodes[0], 300);
    assert_eq!(acked.len(), 300);
    let bus = bus_of(&cluster);
    // Node 3 dies for good: its directory is gone.
    let dead = my_id(&cluster.nodes[2]);
    cluster.nodes[2].kill9();
    std::fs::remove_dir_all(cluster.nodes[2].data_dir()).expect("wipe node 3");
    let (new, new_bus) = start_joiner(&bus[..2]);
    layout_change::wait_met(&cluster.nodes[0], new_bus, CHANGE_TIMEOUT);
    let new_bus = format!("127.0.0.1:{new_bus}");
    let survivors: Vec<&Kvd> = vec![&cluster.nodes[0], &cluster.nodes[1], &new];
    change_layout(&cluster.nodes[0], &["REPLACE", &dead, &new_bus], &survivors);
    layout_change::assert_all_readable(&acked, &survivors);
    assert_placed_exactly(&survivors);
}
